//! A lease never outlives what its worker knows: a job the queue counts as leased to a
//! live worker that the worker does not hold (a fetch whose answer never came back, a
//! Redis restarted from a file a moment behind) is handed back and runs.

use super::Count;
use crate::helpers::*;
use cep_shared::queue::{Queue, worker_name};
use cep_shared::{Clock, JobKind, Layer};
use cep_workers::runtime::{Work, WorkerOptions};
use std::sync::Arc;
use std::time::{Duration, Instant};

const Q: JobKind = JobKind::Layer(Layer::Outreach);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_job_leased_to_a_live_worker_that_does_not_know_it_is_handed_back_and_runs() {
    let mut s = settings();
    s.queue.heartbeat_interval_seconds = 1;
    let queue = redis_queue(&s, Clock::System).await;
    let (store, _dir) = fresh_sqlite().await;
    let ctx = ctx(s, store, queue.clone(), Clock::System);
    let name = worker_name("lease");
    let probe = Arc::new(Count::default());
    let (stop, rx) = tokio::sync::watch::channel(false);
    let options = WorkerOptions {
        name: name.clone(),
        kinds: vec![Q],
        concurrency: 4,
        work: Work::Probe(probe.clone()),
    };
    let worker = tokio::spawn(cep_workers::runtime::run(ctx, options, rx));
    // Leased in the worker's name, as a fetch leaves it whose answer never came back.
    let client = redis::Client::open(redis_url()).unwrap();
    let mut conn = client.get_multiplexed_async_connection().await.unwrap();
    let held = format!("{{{}}}:held:{name}", queue.settings().key_prefix);
    let _: () = redis::cmd("LPUSH")
        .arg(&held)
        .arg(format!("v1|0|5|0|{}|lost-1||\"lost\"", Q.queue()))
        .query_async(&mut conn)
        .await
        .unwrap();
    // No check that it shows as running first: the live worker may hand it back before
    // a check could look (it did once). It runs only if it is handed back.
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        let st = &queue.stats(&[Q.queue()]).await.unwrap()[0];
        if probe.ran() == 1 && (st.ready, st.running) == (0, 0) {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the lease the worker lost track of is still held: ran {}, running {}",
            probe.ran(),
            st.running
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    stop.send(true).unwrap();
    worker.await.unwrap().expect("the worker stops cleanly");
    if let Queue::Redis(r) = &queue {
        r.purge().await.unwrap();
    }
}
