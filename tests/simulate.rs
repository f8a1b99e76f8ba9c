//! The main job: 90 simulated days of the agency through every layer, on the embedded
//! default and on Redis + Postgres, giving the same funnel and the same Φ_sync series.

use crate::helpers::*;
use cep::tools::simulate::{self, Options, Summary};
use cep_shared::Clock;

async fn simulate(backend: Backend, days: u32, seed: u64) -> (Summary, TempDir) {
    simulate_with(backend, days, seed, settings()).await
}

async fn simulate_with(
    backend: Backend,
    days: u32,
    seed: u64,
    mut s: cep_shared::Settings,
) -> (Summary, TempDir) {
    let dir = TempDir::new();
    s.data_dir = dir.0.clone();
    let start = Options::default_start();
    let clock = Clock::simulated(start);
    let h = harness(backend, s, clock).await;
    let opts = Options {
        days,
        seed,
        start,
        progress: simulate::Progress::None,
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
        "meetings_held",
        "no_shows",
        "meetings_won",
        "meetings_lost",
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
    // Only a won meeting makes a client; each client's simulated profile is linked, read
    // weekly, and the edits the layer made show as measured points.
    assert_eq!(f["clients"], f["meetings_won"], "{f:?}");
    assert_eq!(f["profiles_linked"], f["clients"], "{f:?}");
    assert!(f["profile_points_measured"] > 0, "{f:?}");
    assert!(f["meetings_held"] + f["no_shows"] <= f["meetings_booked"] - f["meetings_canceled"]);
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
            assert!(html.to_ascii_lowercase().starts_with("<!doctype html>"));
            assert!(html.contains("<svg"), "a chart in every report");
            files += 1;
        }
    }
    assert_eq!(files as i64, embedded.reports);
    let text = simulate::render(&embedded);
    assert!(text.contains("Final Φ_sync"));
    // The funnel reads in funnel order, money as currency, and the world's planted
    // rates are printed as assumptions.
    let at = |needle: &str| {
        text.find(needle)
            .unwrap_or_else(|| panic!("`{needle}` missing:\n{text}"))
    };
    assert!(at("prospects found") < at("pitched"));
    assert!(at("pitched") < at("contacted"));
    assert!(at("contacted") < at("meetings booked"));
    assert!(at("meetings booked") < at("meetings held"));
    assert!(at("meetings held") < at("meetings won"));
    assert!(at("meetings won") < at("clients"));
    // Rates carry their sample; dates read as dates.
    let held = f["meetings_held"];
    assert!(
        text.contains(&format!("% of {} meetings", held + f["no_shows"])),
        "{text}"
    );
    assert!(text.contains(&format!("% of {held} held")), "{text}");
    assert!(
        text.contains("90 days, 2026-01-05 to 2026-04-04 (UTC)"),
        "{text}"
    );
    assert!(text.contains("2026-W02 (Jan 05)"), "{text}");
    let mrr = embedded.funnel["mrr_cents"];
    let line = text
        .lines()
        .find(|l| l.trim_start().starts_with("mrr"))
        .unwrap();
    assert!(line.contains('$'), "{line}");
    assert!(
        line.trim_end().ends_with(&format!(".{:02}", mrr % 100)),
        "{line}"
    );
    assert_eq!(line.contains(','), mrr >= 100_000, "{line}");
    assert!(at("Assumptions") > at("Final Φ_sync"));
    assert!(text.contains("email reply                 3.5 %"), "{text}");
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

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_worlds_rates_come_from_the_configuration() {
    // A world where nobody books: replies still come, meetings never do.
    let mut s = settings();
    s.simulate.world.book_after_reply = 0.0;
    s.simulate.world.book_from_link = 0.0;
    s.simulate.world.email_reply = 0.2;
    let (summary, _dir) = simulate_with(Backend::Embedded, 14, 3, s).await;
    let f = &summary.funnel;
    assert!(f["replied"] > 0, "{f:?}");
    assert_eq!(f.get("meetings_booked").copied().unwrap_or(0), 0, "{f:?}");
    let text = simulate::render(&summary);
    assert!(text.contains("book after reply            0.0 %"), "{text}");
    assert!(text.contains("email reply                20.0 %"), "{text}");

    // A world where every booking is a no-show: no meeting is won, so no client.
    let mut s = settings();
    s.simulate.world.email_reply = 0.2;
    s.simulate.world.book_after_reply = 1.0;
    s.simulate.world.show = 0.0;
    let (summary, _dir) = simulate_with(Backend::Embedded, 14, 3, s).await;
    let f = &summary.funnel;
    assert!(f["no_shows"] > 0, "{f:?}");
    assert_eq!((f["meetings_held"], f["clients"]), (0, 0), "{f:?}");
    assert!(simulate::render(&summary).contains("show rate                0.0 % of"));
}

#[test]
fn without_a_terminal_the_run_shows_its_progress_as_a_line_a_week() {
    let dir = TempDir::new();
    let out = cep_embedded(&dir, &["simulate", "--days", "8"])
        .output()
        .unwrap();
    assert!(out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    let lines: Vec<&str> = err.lines().filter(|l| l.starts_with("simulat")).collect();
    assert_eq!(lines.len(), 3, "{err}");
    assert!(
        lines[0].starts_with("simulating 2026-01-05 (day 1 of 8)"),
        "{err}"
    );
    assert!(
        lines[1].starts_with("simulating 2026-01-12 (day 8 of 8)"),
        "{err}"
    );
    assert!(
        lines[2].starts_with("simulated 8 days to 2026-01-12"),
        "{err}"
    );
    assert!(!err.contains('\r'), "no bar redrawn into a file");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn on_the_fleet_simulate_migrates_an_empty_database_itself() {
    let dir = TempDir::new();
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_cep"))
        .args(["simulate", "--days", "2", "--json"])
        .env("DATABASE_URL", empty_postgres_url().await)
        .env("REDIS_URL", redis_url())
        .env("CEP__QUEUE__KEY_PREFIX", unique("sim"))
        .env("CEP__DATA_DIR", &dir.0)
        .current_dir(&dir.0)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let summary: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(summary["backend"], "redis");
    assert!(summary["funnel"]["prospects_found"].as_i64().unwrap() > 0);
}
