//! The sales chain end to end through the real queue and store: prospecting → pitch
//! generation, on the embedded default and on Redis + Postgres.

use crate::helpers::*;
use cep_shared::jobs::ProspectingJob;
use cep_shared::queue::NewJob;
use cep_shared::{Clock, JobKind, Layer};
use chrono::TimeZone;

fn clock() -> Clock {
    Clock::simulated(chrono::Utc.with_ymd_and_hms(2026, 1, 5, 6, 0, 0).unwrap())
}

async fn counts(h: &Harness) -> (i64, i64, i64) {
    let pool = h.ctx.store.pool();
    let (p,): (i64,) = sqlx::query_as("SELECT COUNT(*) FROM prospects")
        .fetch_one(pool)
        .await
        .unwrap();
    let (pi,): (i64,) = sqlx::query_as("SELECT COUNT(*) FROM pitches")
        .fetch_one(pool)
        .await
        .unwrap();
    let (q,): (i64,) =
        sqlx::query_as("SELECT COUNT(*) FROM prospects WHERE lead_class IN ('hot', 'warm')")
            .fetch_one(pool)
            .await
            .unwrap();
    (p, pi, q)
}

async fn prospect_and_pitch(backend: Backend) -> (i64, i64, i64) {
    let h = harness(backend, settings(), clock()).await;
    let job = ProspectingJob {
        period: "2026-01-05".into(),
        location: "Miami, FL".into(),
        category: "dental".into(),
        max_prospects: Some(5),
    };
    let kind = JobKind::Layer(Layer::Prospecting);
    h.ctx
        .queue
        .push(NewJob::new(kind, &job, 0).key("prospecting:2026-01-05:miami:dental"))
        .await
        .unwrap();
    drain(&h.ctx).await;
    let first = counts(&h).await;
    assert_eq!(first.0, 5, "{first:?}");
    assert_eq!(
        first.1,
        first.2 * 4,
        "four channel pitches per hot or warm prospect"
    );

    // The same run delivered again (a retry after a crash) changes nothing.
    h.ctx.queue.push(NewJob::new(kind, &job, 0)).await.unwrap();
    drain(&h.ctx).await;
    assert_eq!(counts(&h).await, first);

    // The next day's run finds other businesses, never the ones already found.
    let next = ProspectingJob {
        period: "2026-01-06".into(),
        ..job
    };
    h.ctx.queue.push(NewJob::new(kind, &next, 0)).await.unwrap();
    drain(&h.ctx).await;
    let second = counts(&h).await;
    assert!(second.0 > first.0);
    if let cep_shared::queue::Queue::Redis(r) = &h.ctx.queue {
        r.purge().await.unwrap();
    }
    first
}

#[tokio::test]
async fn prospects_and_pitches_are_the_same_on_both_backends() {
    let embedded = prospect_and_pitch(Backend::Embedded).await;
    let fleet = prospect_and_pitch(Backend::Fleet).await;
    assert_eq!(embedded, fleet);
}

#[tokio::test]
async fn a_malformed_payload_is_dead_lettered_with_its_reason() {
    for backend in [Backend::Embedded, Backend::Fleet] {
        let h = harness(backend, settings(), clock()).await;
        let kind = JobKind::Layer(Layer::PitchGeneration);
        let bad = NewJob {
            payload: "{\"prospect\": 7".into(),
            ..NewJob::new(kind, &0, 0)
        };
        h.ctx.queue.push(bad).await.unwrap();
        h.ctx
            .queue
            .push(NewJob::new(
                kind,
                &serde_json::json!({"prospect_id": "nobody"}),
                0,
            ))
            .await
            .unwrap();
        drain(&h.ctx).await;
        let dead = h.ctx.queue.dead_letters(kind.queue(), 10).await.unwrap();
        assert_eq!(dead.len(), 2, "{backend:?}: {dead:?}");
        assert!(
            dead.iter()
                .any(|d| d.reason.starts_with("malformed payload")),
            "{dead:?}"
        );
        assert!(
            dead.iter()
                .any(|d| d.reason.contains("no prospect `nobody`")),
            "{dead:?}"
        );
        for d in &dead {
            assert_eq!(d.attempts, 1, "a permanent error is not retried");
        }
        let (failed,): (i64,) =
            sqlx::query_as("SELECT COUNT(*) FROM job_outcomes WHERE outcome = 'failed'")
                .fetch_one(h.ctx.store.pool())
                .await
                .unwrap();
        assert_eq!(failed, 2, "failures count towards the sales error rate");
        if let cep_shared::queue::Queue::Redis(r) = &h.ctx.queue {
            r.purge().await.unwrap();
        }
    }
}

#[tokio::test]
async fn two_schedulers_at_once_enqueue_each_period_exactly_once() {
    let s = settings();
    let h = harness(Backend::Fleet, s.clone(), clock()).await;
    let from = chrono::Utc.with_ymd_and_hms(2026, 1, 4, 0, 0, 0).unwrap();
    let to = from + chrono::Duration::days(14);
    let q2 = redis_queue(&s, clock()).await;
    let (a, b) = tokio::join!(
        cep_scheduler::enqueue_between(&h.ctx.queue, &s, from, to),
        cep_scheduler::enqueue_between(&q2, &s, from, to),
    );
    let total = a.unwrap() + b.unwrap();
    // 14 daily prospecting campaigns, 2 weekly onboarding reviews, 14 aggregations.
    assert_eq!(total, 30);
    let again = cep_scheduler::enqueue_between(&q2, &s, from, to)
        .await
        .unwrap();
    assert_eq!(again, 0, "a restart re-enqueues nothing");
    if let cep_shared::queue::Queue::Redis(r) = &h.ctx.queue {
        r.purge().await.unwrap();
    }
}

#[tokio::test]
async fn aggregation_reports_no_data_rather_than_zero_and_stores_the_row() {
    let h = harness(Backend::Embedded, settings(), clock()).await;
    let out = cep_workers::handle(&h.ctx, JobKind::AGGREGATION, "{\"period\":\"2026-01-05\"}")
        .await
        .unwrap();
    assert_eq!(out["phi_sync"], serde_json::Value::Null);
    assert_eq!(out["status"], "no data");
    let (n,): (i64,) = sqlx::query_as("SELECT COUNT(*) FROM coherence_metrics")
        .fetch_one(h.ctx.store.pool())
        .await
        .unwrap();
    assert_eq!(n, 1);
}

#[tokio::test]
async fn a_migrated_postgres_store_reports_its_migrations_applied() {
    let store = fresh_postgres().await;
    assert!(store.migrations_applied().await.unwrap());
    sqlx::query(
        "DELETE FROM _sqlx_migrations WHERE version = (SELECT MAX(version) FROM _sqlx_migrations)",
    )
    .execute(store.pool())
    .await
    .unwrap();
    assert!(
        !store.migrations_applied().await.unwrap(),
        "a missing migration is noticed"
    );
}

#[tokio::test]
async fn a_value_postgres_refuses_dead_letters_the_job_at_once_instead_of_retrying_it() {
    let h = harness(Backend::Fleet, settings(), clock()).await;
    let job = ProspectingJob {
        period: "2026-01-05".into(),
        location: "Miami\u{0}, FL".into(),
        category: "dental".into(),
        max_prospects: None,
    };
    h.ctx.queue.push(NewJob::of(&job, 0)).await.unwrap();
    let kind = JobKind::Layer(Layer::Prospecting);
    let leased = h
        .ctx
        .queue
        .fetch(&[kind.queue()], "w", 1)
        .await
        .unwrap()
        .remove(0);
    let outcome =
        cep_workers::run_one(&h.ctx, "w", &leased, std::time::Duration::from_secs(30)).await;
    let cep_workers::Outcome::DeadLettered(reason) = outcome else {
        panic!("not dead-lettered at its first attempt: {outcome:?}");
    };
    assert!(reason.contains("database error"), "{reason}");
    let dead = h.ctx.queue.dead_letters(kind.queue(), 10).await.unwrap();
    assert_eq!(dead.len(), 1);
    assert_eq!(dead[0].attempts, 1);
}

/// Records `n` events of `kind` at `at`, each about a subject of its own.
async fn events(ctx: &cep_workers::Ctx, kind: cep_shared::vocabulary::EventKind, n: u32, at: i64) {
    for i in 0..n {
        ctx.store
            .record_event(
                ctx.store.pool(),
                kind,
                &format!("{kind}-{at}-{i}"),
                serde_json::json!({}),
                at,
            )
            .await
            .unwrap();
    }
}

#[tokio::test]
async fn on_a_weekend_the_sales_window_reaches_back_to_friday_and_a_sample_one_short_is_no_data() {
    use cep_shared::Container;
    use cep_shared::vocabulary::EventKind;
    let at = |d: u32, h: u32| {
        chrono::Utc
            .with_ymd_and_hms(2026, 3, d, h, 0, 0)
            .unwrap()
            .timestamp_millis()
    };
    // Friday 6 March: 20 prospects contacted, 1 booked, 20 messages due, 19 delivered.
    let friday = at(6, 14);
    let h = harness(Backend::Embedded, settings(), clock()).await;
    let ctx = &h.ctx;
    events(ctx, EventKind::Contacted, 20, friday).await;
    events(ctx, EventKind::Booked, 1, friday).await;
    events(ctx, EventKind::Due, 20, friday).await;
    events(ctx, EventKind::Delivered, 19, friday).await;
    // Sunday 23:00: the last day is empty; two more days reach Friday afternoon.
    let sunday = at(8, 23);
    let i = cep_workers::aggregation::container_inputs(ctx, Container::Sales, sunday)
        .await
        .unwrap();
    let w = i.window.expect("the widened window has the sample");
    assert_eq!(w.widened, 2);
    assert_eq!(w.from, at(5, 23));
    assert_eq!((i.conversion_sample, i.efficiency_sample), (20, 20));
    assert_eq!(i.conversion_rate, Some(0.05));
    assert_eq!(i.efficiency, Some(0.95));
    let c = cep_workers::aggregation::compute(ctx, sunday)
        .await
        .unwrap();
    let sales = &c.containers[0];
    // 5 % booked is the target (score 1); 95 % of 98 % scores 0.969388; no job ended.
    assert!((sales.health.unwrap() - (1.0 + 0.95 / 0.98) / 2.0).abs() < 1e-9);
    // Operations and finance have no data: Φ_sync is sales alone, and partial.
    assert_eq!(c.missing.len(), 2);
    assert!(
        c.shown()
            .contains("partial: operations no data, finance no data"),
        "{}",
        c.shown()
    );

    // One contact short of the minimum sample, over every window: no data, not a rate.
    let h = harness(Backend::Embedded, settings(), clock()).await;
    let ctx = &h.ctx;
    events(ctx, EventKind::Contacted, 19, friday).await;
    events(ctx, EventKind::Due, 20, friday).await;
    let i = cep_workers::aggregation::container_inputs(ctx, Container::Sales, sunday)
        .await
        .unwrap();
    assert_eq!(i.window, None);
    assert_eq!(i.conversion_rate, None);
    assert_eq!(i.conversion_sample, 19);

    // The sample past the widening limit: 8 days back needs max_widen 7, 9 days 8.
    for (max_widen, found) in [(7, false), (8, true)] {
        let mut s = settings();
        s.phi.max_widen = max_widen;
        let h = harness(Backend::Embedded, s, clock()).await;
        let ctx = &h.ctx;
        let nine_days_before = sunday - 9 * 24 * 3_600_000 + 3_600_000;
        events(ctx, EventKind::Contacted, 20, nine_days_before).await;
        events(ctx, EventKind::Due, 20, nine_days_before).await;
        let i = cep_workers::aggregation::container_inputs(ctx, Container::Sales, sunday)
            .await
            .unwrap();
        assert_eq!(i.window.is_some(), found, "max_widen {max_widen}");
    }
}

#[tokio::test]
async fn the_feedback_loop_calls_coherence_low_only_on_a_complete_phi_sync() {
    let h = harness(Backend::Embedded, settings(), clock()).await;
    let ctx = &h.ctx;
    let mut low = Vec::new();
    // Φ_sync 0.5 with finance missing, then the same value complete.
    for (n, finance) in [(1, None), (2, Some(0.5))] {
        sqlx::query(
            "INSERT INTO coherence_metrics (id, computed_at, phi_sync, status, sales_health, operations_health, finance_health, details)
             VALUES ($1, $2, 0.5, 'infrastructure', 0.5, 0.5, $3, '{}')",
        )
        .bind(format!("phi_{n}"))
        .bind(i64::from(n))
        .bind(finance)
        .execute(ctx.store.pool())
        .await
        .unwrap();
        let out = cep_workers::handle(
            ctx,
            JobKind::Layer(Layer::FeedbackLoop),
            &serde_json::json!({ "period": "2026-01" }).to_string(),
        )
        .await
        .unwrap();
        low.push(out["low_coherence"].as_bool().unwrap());
    }
    assert_eq!(low, [false, true]);
}
