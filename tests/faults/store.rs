//! The store goes away under load: `/readyz` says so while it lasts, jobs wait for it
//! without using their attempts, jobs that cannot record how they ended keep trying
//! instead of being forgotten, and the backlog drains after with one outcome per job and
//! no dead letter.

use super::OwnPostgres;
use crate::helpers::*;
use cep_shared::queue::{Queue, worker_name};
use cep_shared::store::Store;
use cep_shared::{Clock, JobKind, Layer};
use cep_workers::runtime::{Work, WorkerOptions};
use std::time::{Duration, Instant};

const Q: JobKind = JobKind::Layer(Layer::Prospecting);

async fn outcomes(store: &Store) -> Option<(i64, i64)> {
    sqlx::query_as(
        "SELECT COUNT(*), COALESCE(SUM(CASE WHEN outcome = 'succeeded' THEN 1 ELSE 0 END), 0)
           FROM job_outcomes",
    )
    .fetch_one(store.pool())
    .await
    .ok()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_store_outage_is_reported_and_the_backlog_drains_after_with_one_outcome_each() {
    let dir = TempDir::new();
    let mut pg = OwnPostgres::start(&dir.0);
    let store = Store::connect(&pg.url())
        .await
        .expect("the test's own Postgres");
    store.migrate().await.unwrap();
    // One attempt each: a job that spent it on the outage would die.
    let mut s = settings();
    s.queue.max_attempts = 1;
    s.queue.backoff_base_seconds = 1;
    let queue = redis_queue(&s, Clock::System).await;
    let ctx = ctx(s, store.clone(), queue.clone(), Clock::System);
    let load = prospecting_load(1..32, 2);
    let total = load.len() as i64;
    queue.push_many(load).await.unwrap();
    let (stop, rx) = tokio::sync::watch::channel(false);
    let options = WorkerOptions {
        name: worker_name("store-outage"),
        kinds: vec![Q],
        concurrency: 8,
        work: Work::Layers,
    };
    let worker = tokio::spawn(cep_workers::runtime::run(ctx.clone(), options, rx));
    let deadline = Instant::now() + Duration::from_secs(30);
    while outcomes(&store).await.is_none_or(|(n, _)| n < 10) {
        assert!(Instant::now() < deadline, "the worker did not get going");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }

    pg.down();
    let checks = cep_workers::http::ops::readiness(&ctx).await;
    let (_, store_check) = checks.iter().find(|(name, _)| *name == "store").unwrap();
    assert!(store_check.is_err(), "/readyz must say the store is down");
    // Longer than the store's pool waits for a connection (10 s), so jobs fail and
    // recording how jobs ended fails meanwhile.
    tokio::time::sleep(Duration::from_secs(15)).await;
    pg.up();

    // Back up: every job ends, once, and none was given up on.
    let deadline = Instant::now() + Duration::from_secs(120);
    loop {
        let done = outcomes(&store).await;
        if done.is_some_and(|(n, _)| n == total) {
            let st = &queue.stats(&[Q.queue()]).await.unwrap()[0];
            if (st.ready, st.scheduled, st.running) == (0, 0, 0) {
                break;
            }
        }
        assert!(
            Instant::now() < deadline,
            "the backlog did not drain: {done:?} of {total} jobs have an outcome"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    assert_eq!(
        outcomes(&store).await,
        Some((total, total)),
        "every job succeeded, once"
    );
    assert!(queue.dead_letters(Q.queue(), 10).await.unwrap().is_empty());
    assert!(
        cep_workers::http::ops::readiness(&ctx)
            .await
            .iter()
            .all(|(_, r)| r.is_ok())
    );
    stop.send(true).unwrap();
    worker.await.unwrap().expect("the worker stops cleanly");
    if let Queue::Redis(r) = &queue {
        r.purge().await.unwrap();
    }
}
