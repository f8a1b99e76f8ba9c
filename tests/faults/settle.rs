//! A settle that fails is tried again, never forgotten: jobs that finish while Redis is
//! down are settled once it is back, and the queue goes idle without any restart.

use super::OwnRedis;
use crate::helpers::*;
use cep_shared::queue::{Leased, NewJob, Queue, RedisQueue, worker_name};
use cep_shared::{Clock, JobKind, Layer};
use cep_workers::runtime::{Probe, Work, WorkerOptions};
use futures::future::BoxFuture;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

const Q: JobKind = JobKind::Layer(Layer::Outreach);

/// Longer than the queue's Redis connection waits for an answer (10 s).
const OUTAGE: Duration = Duration::from_secs(13);

/// A job body that takes a while, and counts the jobs it ran.
struct Slow {
    takes: Duration,
    ran: AtomicUsize,
}

impl Probe for Slow {
    fn run<'a>(&'a self, _job: &'a Leased) -> BoxFuture<'a, ()> {
        Box::pin(async move {
            tokio::time::sleep(self.takes).await;
            self.ran.fetch_add(1, Ordering::SeqCst);
        })
    }
}

/// Waits until the queue's jobs are `(ready, running)`, failing after `within`.
async fn until_counts(q: &Queue, want: (u64, u64), within: Duration) {
    let deadline = Instant::now() + within;
    loop {
        if let Ok(st) = q.stats(&[Q.queue()]).await {
            if (st[0].ready, st[0].running) == want {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "(ready, running) is ({}, {}), not {want:?}, after {within:?}",
                st[0].ready,
                st[0].running
            );
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn jobs_that_finish_while_redis_is_down_are_settled_once_it_is_back() {
    let dir = TempDir::new();
    let mut redis = OwnRedis::start(&dir.0);
    let s = settings();
    let clock = Clock::System;
    let queue = Queue::Redis(
        RedisQueue::connect(&redis.url(), qctx(&s, clock.clone()))
            .await
            .expect("the test's own Redis"),
    );
    let (store, _store_dir) = fresh_sqlite().await;
    let ctx = ctx(s, store, queue.clone(), clock);
    for n in 0..10 {
        queue.push(NewJob::new(Q, &n, 0)).await.unwrap();
    }
    let probe = Arc::new(Slow {
        takes: Duration::from_secs(2),
        ran: AtomicUsize::new(0),
    });
    let (stop, rx) = tokio::sync::watch::channel(false);
    let options = WorkerOptions {
        name: worker_name("settle"),
        kinds: vec![Q],
        concurrency: 16,
        work: Work::Probe(probe.clone()),
    };
    let worker = tokio::spawn(cep_workers::runtime::run(ctx, options, rx));
    until_counts(&queue, (0, 10), Duration::from_secs(10)).await;

    // Every job finishes while Redis is down, for longer than a command waits for an
    // answer: each settle fails, more than once.
    redis.down();
    tokio::time::sleep(OUTAGE).await;
    assert_eq!(
        probe.ran.load(Ordering::SeqCst),
        10,
        "the jobs ran during the outage"
    );
    redis.up();

    // Back up, the same worker settles them: nothing stays leased, nothing ran twice.
    until_counts(&queue, (0, 0), Duration::from_secs(20)).await;
    assert_eq!(probe.ran.load(Ordering::SeqCst), 10);
    stop.send(true).unwrap();
    let ran = worker.await.unwrap().expect("the worker stops cleanly");
    assert_eq!(ran, 10);
    if let Queue::Redis(r) = &queue {
        r.purge().await.unwrap();
    }
}
