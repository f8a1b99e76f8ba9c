//! Crash safety across real processes: a worker killed with SIGKILL while it holds jobs
//! loses none of them; another worker takes them over once the orphan window passes, and
//! each job's effect is recorded once.

use crate::helpers::*;
use cep_shared::jobs::ProspectingJob;
use cep_shared::queue::NewJob;
use cep_shared::{Clock, JobKind, Layer};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

fn worker(database_url: &str, prefix: &str, dir: &std::path::Path) -> Child {
    Command::new(env!("CARGO_BIN_EXE_cep"))
        .args(["worker", "--layers", "prospecting"])
        .env("REDIS_URL", redis_url())
        .env("DATABASE_URL", database_url)
        .env("CEP__QUEUE__KEY_PREFIX", prefix)
        .env("CEP__QUEUE__HEARTBEAT_INTERVAL_SECONDS", "1")
        .env("CEP__QUEUE__MISSED_HEARTBEATS", "2")
        .env("CEP__WORKER__SHUTDOWN_DEADLINE_SECONDS", "1")
        .env("CEP__WORKER__CONCURRENCY", "4")
        .env("CEP__DATA_DIR", dir)
        .env("CEP__SERVER__BIND", "127.0.0.1:0")
        .env("RUST_LOG", "warn")
        .stdout(Stdio::null())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("start a cep worker process")
}

async fn scalar(store: &cep_shared::store::Store, sql: &str) -> i64 {
    let (n,): (i64,) = sqlx::query_as(sqlx::AssertSqlSafe(sql.to_owned()))
        .fetch_one(store.pool())
        .await
        .unwrap();
    n
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_worker_killed_mid_job_loses_nothing_and_runs_nothing_twice() {
    let (url, store) = fresh_postgres_with_url().await;
    let s = settings_with_short_orphan_window();
    let queue = redis_queue(&s, Clock::System).await;
    let dir = TempDir::new();

    // One prospecting job per city × category × day: 8 × 17 × 3 = 408 jobs.
    let jobs = prospecting_load(5..8, 3);
    let total = jobs.len() as i64;
    assert_eq!(queue.push_many(jobs).await.unwrap() as i64, total);

    // Kill a worker while it holds leased jobs and has finished some. Between two
    // fetches a worker holds nothing for a moment; a kill that lands there proves
    // nothing, so that worker is replaced and killed again.
    let deadline = Instant::now() + Duration::from_secs(120);
    let mut kills = 0;
    loop {
        let mut first = worker(&url, &s.queue.key_prefix, &dir.0);
        loop {
            let done = scalar(&store, "SELECT COUNT(*) FROM job_outcomes").await;
            let running = queue.stats(&["prospecting"]).await.unwrap()[0].running;
            if done > 0 && running > 0 {
                break;
            }
            assert!(
                Instant::now() < deadline,
                "the first worker never got going"
            );
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        first.kill().expect("SIGKILL the first worker");
        first.wait().unwrap();
        kills += 1;
        if queue.stats(&["prospecting"]).await.unwrap()[0].running > 0 {
            break;
        }
        assert!(kills < 5, "no kill landed while the worker held jobs");
    }
    let done_before = scalar(&store, "SELECT COUNT(*) FROM job_outcomes").await;
    assert!(done_before < total);

    // A second worker recovers them after the orphan window and finishes the rest.
    let mut second = worker(&url, &s.queue.key_prefix, &dir.0);
    loop {
        let done = scalar(
            &store,
            "SELECT COUNT(*) FROM job_outcomes WHERE queue = 'prospecting'",
        )
        .await;
        if done == total {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "only {done} of {total} jobs finished"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    // SIGTERM: the second worker drains and exits cleanly.
    let status = Command::new("kill")
        .args(["-TERM", &second.id().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
    let exit = second.wait().unwrap();
    assert!(exit.success(), "a drained worker exits 0, got {exit}");

    // Every job succeeded once; the ones the killed worker held ran again elsewhere.
    assert_eq!(
        scalar(
            &store,
            "SELECT COUNT(*) FROM job_outcomes WHERE queue = 'prospecting' AND outcome = 'succeeded'"
        )
        .await,
        total
    );
    // The killed worker's in-flight jobs were recovered (checked below: nothing is left
    // running). Whether any of them still shows attempt 2 depends on the kill's timing:
    // a job whose outcome was recorded just before the kill keeps its first record.
    // Each run's effect once: one research log per run, one event per prospect found.
    assert_eq!(
        scalar(&store, "SELECT COUNT(*) FROM research_logs").await,
        total
    );
    assert_eq!(
        scalar(
            &store,
            "SELECT COUNT(*) FROM events WHERE kind = 'prospect_found'"
        )
        .await,
        scalar(&store, "SELECT COUNT(*) FROM prospects").await
    );
    let stats = queue.stats(&["prospecting"]).await.unwrap();
    assert_eq!((stats[0].ready, stats[0].running, stats[0].dead), (0, 0, 0));
    if let cep_shared::queue::Queue::Redis(r) = &queue {
        r.purge().await.unwrap();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_idle_worker_is_woken_by_a_push_from_another_process() {
    let (url, store) = fresh_postgres_with_url().await;
    let s = settings();
    let queue = redis_queue(&s, Clock::System).await;
    let dir = TempDir::new();
    // An idle poll of ten minutes: only the wake-up can bring the job in quickly.
    let _worker = KillOnDrop(
        Command::new(env!("CARGO_BIN_EXE_cep"))
            .args(["worker", "--layers", "prospecting"])
            .env("REDIS_URL", redis_url())
            .env("DATABASE_URL", &url)
            .env("CEP__QUEUE__KEY_PREFIX", &s.queue.key_prefix)
            .env("CEP__QUEUE__IDLE_POLL_MILLIS", "600000")
            .env("CEP__DATA_DIR", &dir.0)
            .env("CEP__SERVER__BIND", "127.0.0.1:0")
            .env("RUST_LOG", "warn")
            .stdout(Stdio::null())
            .stderr(Stdio::inherit())
            .spawn()
            .unwrap(),
    );
    // Let it start, find nothing and go idle.
    tokio::time::sleep(Duration::from_secs(2)).await;
    let job = ProspectingJob {
        period: "2026-01-05".into(),
        location: "Austin, TX".into(),
        category: "spa".into(),
        max_prospects: Some(2),
    };
    queue
        .push(NewJob::new(JobKind::Layer(Layer::Prospecting), &job, 0))
        .await
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(20);
    while scalar(&store, "SELECT COUNT(*) FROM job_outcomes").await == 0 {
        assert!(
            Instant::now() < deadline,
            "the idle worker was not woken by the push"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    if let cep_shared::queue::Queue::Redis(r) = &queue {
        r.purge().await.unwrap();
    }
}

/// A job body that outlasts any drain.
struct Stuck;

impl cep_workers::runtime::Probe for Stuck {
    fn run<'a>(&'a self, _: &'a cep_shared::queue::Leased) -> futures::future::BoxFuture<'a, ()> {
        Box::pin(tokio::time::sleep(Duration::from_secs(600)))
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_job_still_running_at_the_drain_deadline_is_handed_back_at_once_uncounted() {
    let mut s = settings();
    // An orphan window of 50 s: the job must come back long before it.
    s.queue.heartbeat_interval_seconds = 5;
    s.queue.missed_heartbeats = 10;
    s.worker.shutdown_deadline_seconds = 1;
    let h = harness(Backend::Fleet, s, Clock::System).await;
    let kind = JobKind::Layer(Layer::Prospecting);
    h.ctx
        .queue
        .push(NewJob::new(kind, &"slow", 0))
        .await
        .unwrap();
    let (stop, stopped) = tokio::sync::watch::channel(false);
    let opts = cep_workers::runtime::WorkerOptions {
        name: cep_shared::queue::worker_name("drain"),
        kinds: vec![kind],
        concurrency: 2,
        work: cep_workers::runtime::Work::Probe(std::sync::Arc::new(Stuck)),
    };
    let worker = tokio::spawn(cep_workers::runtime::run(h.ctx.clone(), opts, stopped));
    let started = Instant::now();
    loop {
        let st = &h.ctx.queue.stats(&[kind.queue()]).await.unwrap()[0];
        if st.running == 1 {
            break;
        }
        assert!(
            started.elapsed() < Duration::from_secs(10),
            "the job never started"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    stop.send(true).unwrap();
    let asked = Instant::now();
    let ran = tokio::time::timeout(Duration::from_secs(10), worker)
        .await
        .expect("the worker stops at its deadline")
        .unwrap()
        .unwrap();
    let took = asked.elapsed();
    assert!(
        took >= Duration::from_millis(900),
        "it waited for the job: {took:?}"
    );
    assert_eq!(ran, 0, "the job did not finish");
    let st = &h.ctx.queue.stats(&[kind.queue()]).await.unwrap()[0];
    assert_eq!(
        (st.ready, st.running),
        (1, 0),
        "handed back, not left leased"
    );
    let again = h.ctx.queue.fetch(&[kind.queue()], "next", 1).await.unwrap();
    assert_eq!(
        again[0].attempt, 1,
        "a hand-back does not use up an attempt"
    );
}
