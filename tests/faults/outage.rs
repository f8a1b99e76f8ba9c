//! A Redis outage longer than the orphan window: when the workers reconnect, and a
//! worker starts (a pod rescheduled during the outage), every heartbeat it finds is old.
//! None may take a live worker's jobs: every job runs once.

use super::OwnRedis;
use crate::helpers::*;
use cep_shared::queue::{Leased, NewJob, Queue, RedisQueue, worker_name};
use cep_shared::store::Store;
use cep_shared::{Clock, JobKind, Layer, Settings};
use cep_workers::runtime::{Probe, Work, WorkerOptions};
use futures::future::BoxFuture;
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

const Q: JobKind = JobKind::Layer(Layer::Outreach);

/// A long job body that counts how often each job ran.
#[derive(Default)]
struct Counted(Mutex<HashMap<String, u32>>);

impl Probe for Counted {
    fn run<'a>(&'a self, job: &'a Leased) -> BoxFuture<'a, ()> {
        Box::pin(async move {
            *self.0.lock().unwrap().entry(job.id.clone()).or_default() += 1;
            tokio::time::sleep(Duration::from_secs(20)).await;
        })
    }
}

async fn connect(url: &str, s: &Settings) -> Queue {
    Queue::Redis(
        RedisQueue::connect(url, qctx(s, Clock::System))
            .await
            .expect("the test's own Redis"),
    )
}

/// A worker of its own connection and store, running the counting probe.
async fn spawn_worker(
    name: String,
    (store, store_dir): (Store, TempDir),
    url: &str,
    s: &Settings,
    probe: &Arc<Counted>,
    rx: tokio::sync::watch::Receiver<bool>,
) -> tokio::task::JoinHandle<anyhow::Result<u64>> {
    let ctx = ctx(s.clone(), store, connect(url, s).await, Clock::System);
    let options = WorkerOptions {
        name,
        kinds: vec![Q],
        concurrency: 4,
        work: Work::Probe(probe.clone()),
    };
    tokio::spawn(async move {
        let ran = cep_workers::runtime::run(ctx, options, rx).await;
        drop(store_dir);
        ran
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn after_an_outage_longer_than_the_orphan_window_no_live_worker_is_reaped() {
    let dir = TempDir::new();
    let mut redis = OwnRedis::start(&dir.0);
    // A 2 s orphan window (heartbeats every second, two missed), and an outage long
    // enough that the workers' connections give up and reconnect each on its own.
    let s = settings_with_short_orphan_window();
    let url = redis.url();
    let queue = connect(&url, &s).await;
    for n in 0..8 {
        queue.push(NewJob::new(Q, &n, 0)).await.unwrap();
    }
    let probe = Arc::new(Counted::default());
    let (stop, rx) = tokio::sync::watch::channel(false);
    let mut workers = Vec::new();
    for name in ["a", "b"] {
        let store = fresh_sqlite().await;
        let worker = spawn_worker(worker_name(name), store, &url, &s, &probe, rx.clone()).await;
        workers.push(worker);
    }
    let deadline = Instant::now() + Duration::from_secs(10);
    while probe.0.lock().unwrap().len() < 8 {
        assert!(
            Instant::now() < deadline,
            "the two workers did not take 4 jobs each"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    redis.down();
    let store_c = fresh_sqlite().await;
    tokio::time::sleep(Duration::from_secs(13)).await;
    redis.up();
    // A worker that starts the moment Redis is back finds only old heartbeats, and has
    // room for four jobs.
    let c = spawn_worker(worker_name("c"), store_c, &url, &s, &probe, rx.clone()).await;
    workers.push(c);

    // The jobs finish where they started.
    let deadline = Instant::now() + Duration::from_secs(40);
    loop {
        if let Ok(st) = queue.stats(&[Q.queue()]).await
            && (st[0].ready, st[0].running) == (0, 0)
        {
            break;
        }
        assert!(Instant::now() < deadline, "the queue did not go idle");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    // Past another window: a reap that came late would show now.
    tokio::time::sleep(Duration::from_secs(3)).await;
    let runs = probe.0.lock().unwrap().clone();
    assert_eq!(runs.len(), 8);
    let twice: Vec<_> = runs.iter().filter(|(_, n)| **n > 1).collect();
    assert!(
        twice.is_empty(),
        "jobs of a live worker ran again: {twice:?}"
    );
    stop.send(true).unwrap();
    let mut ran = 0;
    for w in workers {
        ran += w.await.unwrap().expect("a worker stops cleanly");
    }
    assert_eq!(ran, 8);
    if let Queue::Redis(r) = &queue {
        r.purge().await.unwrap();
    }
}
