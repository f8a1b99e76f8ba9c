//! A Redis outage longer than the orphan window does not make live workers reap each
//! other: after reconnecting, a worker reaps only once it has been heard without a break
//! for a whole window, by when every live worker has been heard again too.

use super::{Count, OwnRedis};
use crate::helpers::*;
use cep_shared::queue::{NewJob, Queue, RedisQueue, worker_name};
use cep_shared::{Clock, JobKind, Layer};
use cep_workers::runtime::{Work, WorkerOptions};
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// The queue `cep bench-worker` serves.
const Q: JobKind = JobKind::Layer(Layer::Outreach);

fn signal(pid: u32, sig: &str) {
    let ok = Command::new("kill")
        .args([sig, &pid.to_string()])
        .status()
        .is_ok_and(|s| s.success());
    assert!(ok, "kill {sig} {pid}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn after_an_outage_longer_than_the_orphan_window_no_live_worker_is_reaped() {
    let dir = TempDir::new();
    let mut redis = OwnRedis::start(&dir.0);
    let mut s = settings();
    s.queue.heartbeat_interval_seconds = 1;
    s.queue.missed_heartbeats = 6;
    let window = s.queue.orphan_window();
    let queue = Queue::Redis(
        RedisQueue::connect(&redis.url(), qctx(&s, Clock::System))
            .await
            .expect("the test's own Redis"),
    );
    // Worker B, a process of its own, runs four jobs that each wait a minute on an API.
    let api = wiremock::MockServer::start().await;
    wiremock::Mock::given(wiremock::matchers::any())
        .respond_with(wiremock::ResponseTemplate::new(200).set_delay(Duration::from_secs(60)))
        .mount(&api)
        .await;
    for n in 0..4 {
        queue.push(NewJob::new(Q, &n, 0)).await.unwrap();
    }
    let b = Command::new(env!("CARGO_BIN_EXE_cep"))
        .args([
            "bench-worker",
            "--probe",
            "http",
            "--concurrency",
            "4",
            "--url",
        ])
        .arg(api.uri())
        .env("REDIS_URL", redis.url())
        .env_remove("DATABASE_URL")
        .env("CEP__QUEUE__KEY_PREFIX", &s.queue.key_prefix)
        .env("CEP__QUEUE__HEARTBEAT_INTERVAL_SECONDS", "1")
        .env("CEP__QUEUE__MISSED_HEARTBEATS", "6")
        .env("CEP__DATA_DIR", dir.0.join("b"))
        .env("CEP__MODE", "prod")
        .env("RUST_LOG", "error")
        .stdout(Stdio::null())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("start cep bench-worker");
    let b = KillOnDrop(b);
    let deadline = Instant::now() + Duration::from_secs(20);
    while queue
        .stats(&[Q.queue()])
        .await
        .is_ok_and(|st| st[0].running < 4)
    {
        assert!(Instant::now() < deadline, "worker B did not take the jobs");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }

    // Worker A, in this process, serves the same queue and has nothing to do.
    let (store, _store_dir) = fresh_sqlite().await;
    let a_ran = Arc::new(Count::default());
    let (stop, rx) = tokio::sync::watch::channel(false);
    let options = WorkerOptions {
        name: worker_name("a"),
        kinds: vec![Q],
        concurrency: 4,
        work: Work::Probe(a_ran.clone()),
    };
    let a = tokio::spawn(cep_workers::runtime::run(
        ctx(s, store, queue.clone(), Clock::System),
        options,
        rx,
    ));
    tokio::time::sleep(Duration::from_secs(2)).await;

    // Redis goes away for longer than the orphan window. B is slower to come back than
    // A (held still until a moment after Redis returns), as a worker on a busier node is.
    signal(b.0.id(), "-STOP");
    redis.down();
    tokio::time::sleep(window + Duration::from_secs(2)).await;
    redis.up();
    tokio::time::sleep(window * 2 / 3).await;
    signal(b.0.id(), "-CONT");

    // Both are live: B keeps its jobs and A runs none of them.
    tokio::time::sleep(window * 3 / 2).await;
    assert_eq!(
        a_ran.ran(),
        0,
        "a live worker's jobs were reaped and ran again"
    );
    let st = &queue.stats(&[Q.queue()]).await.unwrap()[0];
    assert_eq!(
        (st.ready, st.running),
        (0, 4),
        "B still holds its four jobs"
    );
    stop.send(true).unwrap();
    a.await.unwrap().expect("worker A stops cleanly");
    drop(b);
}
