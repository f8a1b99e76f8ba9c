//! A job whose worker dies on its last attempt is dead-lettered by the worker that
//! recovers it, and its failure is recorded where the error rates and Φ_sync read it.

use crate::helpers::*;
use cep_shared::queue::{DIED_EVERY_ATTEMPT, NewJob, Queue, worker_name};
use cep_shared::{Clock, JobKind, Layer};
use cep_workers::runtime::{Work, WorkerOptions};
use std::time::{Duration, Instant};

const Q: JobKind = JobKind::Layer(Layer::Outreach);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_job_dead_lettered_by_recovery_is_recorded_as_failed() {
    let s = settings_with_short_orphan_window();
    let h = harness(Backend::Fleet, s, Clock::System).await;
    let queue = h.ctx.queue.clone();
    queue
        .push(NewJob::new(Q, &"last try", 0).max_attempts(1))
        .await
        .unwrap();
    // A worker takes it, starts it and dies: it is never heard from again.
    let held = queue
        .fetch(&[Q.queue()], "dies", 1)
        .await
        .unwrap()
        .remove(0);
    assert_eq!(queue.start("dies", &[&held]).await.unwrap(), [true]);
    let (stop, rx) = tokio::sync::watch::channel(false);
    let options = WorkerOptions {
        name: worker_name("reaper"),
        kinds: vec![Q],
        concurrency: 4,
        work: Work::Layers,
    };
    let worker = tokio::spawn(cep_workers::runtime::run(h.ctx.clone(), options, rx));
    let deadline = Instant::now() + Duration::from_secs(20);
    let row = loop {
        let row: Option<(String, i64, Option<String>)> =
            sqlx::query_as("SELECT outcome, attempts, error FROM job_outcomes WHERE job_id = $1")
                .bind(&held.id)
                .fetch_optional(h.ctx.store.pool())
                .await
                .unwrap();
        if let Some(row) = row {
            break row;
        }
        assert!(
            Instant::now() < deadline,
            "no outcome was recorded for the dead job"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    assert_eq!(row, ("failed".into(), 1, Some(DIED_EVERY_ATTEMPT.into())));
    let dead = queue.dead_letters(Q.queue(), 10).await.unwrap();
    assert_eq!(dead.len(), 1);
    assert_eq!(dead[0].reason, DIED_EVERY_ATTEMPT);
    stop.send(true).unwrap();
    worker.await.unwrap().expect("the worker stops cleanly");
    if let Queue::Redis(r) = &queue {
        r.purge().await.unwrap();
    }
}
