//! The main job: 90 simulated days of the agency through every layer, on the embedded
//! default and on Redis + Postgres, giving the same funnel and the same Φ_sync series.

use crate::helpers::*;
use cep::tools::simulate::{self, Options, Summary};
use cep_shared::Clock;

async fn simulate(backend: Backend, days: u32, seed: u64) -> (Summary, TempDir) {
    let dir = TempDir::new();
    let mut s = settings();
    s.data_dir = dir.0.clone();
    let start = Options::default_start();
    let clock = Clock::simulated(start);
    let h = harness(backend, s, clock).await;
    let opts = Options {
        days,
        seed,
        start,
        progress: false,
    };
    let queue = h.ctx.queue.clone();
    let summary = simulate::run(h.ctx.clone(), &opts).await.unwrap();
    if let cep_shared::queue::Queue::Redis(r) = &queue {
        r.purge().await.unwrap();
    }
    (summary, dir)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ninety_days_give_the_same_funnel_and_phi_series_on_both_backends() {
    let ((embedded, dir), (fleet, _fleet_dir)) = tokio::join!(
        simulate(Backend::Embedded, 90, 11),
        simulate(Backend::Fleet, 90, 11)
    );
    assert_eq!(embedded.backend, "sqlite");
    assert_eq!(fleet.backend, "redis");
    assert_eq!(embedded.funnel, fleet.funnel);
    assert_eq!(embedded.phi_series, fleet.phi_series);
    assert_eq!(embedded.parameter_changes, fleet.parameter_changes);
    assert_eq!(embedded.jobs_run, fleet.jobs_run);

    // Every layer did its part.
    let f = &embedded.funnel;
    for stage in [
        "prospects_found",
        "pitched",
        "messages_recorded",
        "contacted",
        "replied",
        "meetings_booked",
        "clients",
        "clients_live",
        "invoices",
        "invoices_paid",
        "posts_scheduled",
        "revenue_cents",
        "mrr_cents",
    ] {
        assert!(f[stage] > 0, "{stage} is 0: {f:?}");
    }
    assert!(f["prospects_found"] >= 1000, "{f:?}");
    assert!(f["contacted"] <= f["pitched"]);
    assert!(f["clients"] <= f["meetings_booked"]);
    assert!(f["invoices_paid"] <= f["invoices"]);
    // Caps bind: never more than 50 emails a day from the one mailbox.
    assert!(f["messages_recorded"] <= 90 * (50 + 25 + 20));
    assert_eq!(embedded.dead_letters, 0);
    assert_eq!(
        embedded.webhooks_refused, 0,
        "every signed booking was accepted"
    );

    // One aggregation a day at least, each container with data at some point.
    assert!(
        embedded.phi_series.len() >= 90,
        "{}",
        embedded.phi_series.len()
    );
    assert!(embedded.phi_series.iter().any(|p| p.sales.is_some()));
    assert!(embedded.phi_series.iter().any(|p| p.operations.is_some()));
    assert!(embedded.phi_series.iter().any(|p| p.finance.is_some()));
    assert!(embedded.final_phi_sync.is_some());

    // Reports are HTML files a person can open, each with a chart.
    assert!(embedded.reports > 0);
    let mut files = 0;
    for period in std::fs::read_dir(dir.0.join("reports")).unwrap() {
        for file in std::fs::read_dir(period.unwrap().path()).unwrap() {
            let html = std::fs::read_to_string(file.unwrap().path()).unwrap();
            assert!(html.starts_with("<!doctype html>"));
            assert!(html.contains("<svg"), "a chart in every report");
            files += 1;
        }
    }
    assert_eq!(files as i64, embedded.reports);
    let text = simulate::render(&embedded);
    assert!(text.contains("Final Φ_sync"));
}

#[tokio::test]
async fn the_same_seed_gives_the_same_numbers_and_another_seed_does_not() {
    let (a, _da) = simulate(Backend::Embedded, 21, 3).await;
    let (mut b, _db) = simulate(Backend::Embedded, 21, 3).await;
    b.reports_dir = a.reports_dir.clone();
    let (c, _dc) = simulate(Backend::Embedded, 21, 4).await;
    assert_eq!(a, b);
    assert_ne!(a.funnel, c.funnel);
}
