//! Frequent kills under a real layer load, on a schedule drawn from a seed so a failure
//! reproduces: `cep worker` processes SIGKILLed at random every 0.5–3 s and replaced,
//! the Redis server killed mid-drain (appending to its file every second) and started
//! again, and malformed entries of every kind mixed into the batches. Afterwards every
//! job has exactly one outcome, nothing malformed ran, the jobs that ran twice number
//! no more than the killed workers could have held, and the queue goes idle with no
//! lease left, without anything restarted by hand.
//!
//! `CEP_FAULT_SEED` replays a schedule (each run prints its own); `CEP_SOAK_SECONDS`
//! keeps the kills going longer than the default 20 s, under a larger load.

use super::OwnRedis;
use crate::helpers::*;
use cep_shared::queue::{Queue, RedisQueue};
use cep_shared::{Clock, JobKind, Layer};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

const Q: JobKind = JobKind::Layer(Layer::Prospecting);
const WORKERS: usize = 3;
const CONCURRENCY: usize = 4;

/// A whole schedule from one number (the project's seeded generator).
struct Schedule(cep_shared::ids::SeededRng);

impl Schedule {
    fn next(&mut self) -> u64 {
        self.0.next_u64()
    }

    /// A duration in `[from, to)` milliseconds.
    fn millis(&mut self, from: u64, to: u64) -> Duration {
        Duration::from_millis(from + self.next() % (to - from))
    }

    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
}

fn worker(redis: &str, database: &str, prefix: &str, dir: &std::path::Path) -> Child {
    Command::new(env!("CARGO_BIN_EXE_cep"))
        .args(["worker", "--layers", "prospecting"])
        .env("REDIS_URL", redis)
        .env("DATABASE_URL", database)
        .env("CEP__QUEUE__KEY_PREFIX", prefix)
        .env("CEP__QUEUE__HEARTBEAT_INTERVAL_SECONDS", "1")
        .env("CEP__QUEUE__MISSED_HEARTBEATS", "3")
        .env("CEP__WORKER__SHUTDOWN_DEADLINE_SECONDS", "2")
        .env("CEP__WORKER__CONCURRENCY", CONCURRENCY.to_string())
        .env("CEP__DATA_DIR", dir)
        .env("CEP__SERVER__BIND", "127.0.0.1:0")
        .env("RUST_LOG", "error")
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

/// Entries no fleet worker wrote, each with where it must end: set aside as unreadable,
/// or dead-lettered (the last one runs and fails: its payload does not decode).
fn malformed() -> (Vec<Vec<u8>>, usize, usize) {
    let q = Q.queue();
    let huge = format!("v1|0|5|0|{q}|m-huge||\"{}\"", "x".repeat(300 * 1024));
    let entries = vec![
        b"0193abcdef".to_vec(),
        format!("v1|0|5|0|{q}|m-utf8||{{\"n\":")
            .into_bytes()
            .into_iter()
            .chain([0xff, 0xfe, b'}'])
            .collect(),
        b"v1|0|5|0|prospecting_v0|m-unknown||{}".to_vec(),
        format!("v1|99|5|0|{q}|m-spent||{{}}").into_bytes(),
        format!("v1|0|0|0|{q}|m-none||{{}}").into_bytes(),
        huge.into_bytes(),
        format!("v1|0|5|0|{q}|m-json||{{not json").into_bytes(),
    ];
    (entries, 3, 4)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn random_kills_a_redis_crash_and_poison_entries_lose_nothing_and_stall_nothing() {
    let seed = std::env::var("CEP_FAULT_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| cep_shared::clock::wall_millis() as u64);
    let soak: u64 = std::env::var("CEP_SOAK_SECONDS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(20);
    eprintln!("fault schedule: CEP_FAULT_SEED={seed} CEP_SOAK_SECONDS={soak}");
    let mut plan = Schedule(cep_shared::ids::SeededRng::new(seed));

    let dir = TempDir::new();
    let redis_dir = dir.0.join("redis");
    std::fs::create_dir_all(&redis_dir).unwrap();
    let mut redis = OwnRedis::start(&redis_dir);
    let (database, store) = fresh_postgres_with_url().await;
    let s = settings_with_short_orphan_window();
    let prefix = s.queue.key_prefix.clone();
    let queue = Queue::Redis(
        RedisQueue::connect(&redis.url(), qctx(&s, Clock::System))
            .await
            .expect("the test's own Redis"),
    );

    // The load, with the malformed entries in the middle of it.
    // More than the workers get through while the kills go on: 136 jobs a day, three
    // days of them a second.
    let days = (1 + soak * 3).min(365) as u32;
    let mut load = prospecting_load(1..days, 2);
    let total = load.len() as i64;
    let rest = load.split_off(load.len() / 2);
    queue.push_many(load).await.unwrap();
    let (poison, unreadable, dead) = malformed();
    let client = redis::Client::open(redis.url()).unwrap();
    let mut conn = client.get_multiplexed_async_connection().await.unwrap();
    for raw in &poison {
        let _: () = redis::cmd("LPUSH")
            .arg(format!("{{{prefix}}}:ready:{}", Q.queue()))
            .arg(raw)
            .query_async(&mut conn)
            .await
            .unwrap();
    }
    queue.push_many(rest).await.unwrap();
    // Everything enqueued is on disk before anything is killed.
    tokio::time::sleep(Duration::from_millis(1500)).await;

    let data = dir.0.join("workers");
    let mut workers: Vec<Child> = (0..WORKERS)
        .map(|_| worker(&redis.url(), &database, &prefix, &data))
        .collect();
    let chaos = Duration::from_secs(soak);
    let redis_crash_at = plan.millis(chaos.as_millis() as u64 / 4, chaos.as_millis() as u64 / 2);
    let started = Instant::now();
    let (mut kills, mut crashed) = (0usize, false);
    while started.elapsed() < chaos {
        tokio::time::sleep(plan.millis(500, 3000)).await;
        if !crashed && started.elapsed() >= redis_crash_at {
            // SIGKILL: whatever the last second wrote may be gone from its file.
            redis.kill();
            tokio::time::sleep(plan.millis(500, 2000)).await;
            redis.up();
            crashed = true;
            continue;
        }
        let victim = plan.below(workers.len());
        workers[victim].kill().expect("SIGKILL a worker");
        workers[victim].wait().unwrap();
        workers[victim] = worker(&redis.url(), &database, &prefix, &data);
        kills += 1;
    }
    assert!(crashed, "the schedule crashed Redis once");
    let ended = scalar(&store, "SELECT COUNT(*) FROM job_outcomes").await;
    eprintln!("seed {seed}: {ended} of {total} jobs had ended when the kills stopped");

    // Left alone, the fleet finishes: one outcome per job, and the queue idle.
    let deadline = Instant::now() + Duration::from_secs(180);
    loop {
        let done = scalar(&store, "SELECT COUNT(*) FROM job_outcomes WHERE queue = 'prospecting' AND job_id NOT LIKE 'm-%'").await;
        // This process's own connection may need a call to notice Redis came back.
        let counts = queue
            .stats(&[Q.queue()])
            .await
            .map(|st| (st[0].ready, st[0].scheduled, st[0].running));
        if done == total && counts.as_ref().is_ok_and(|c| *c == (0, 0, 0)) {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "seed {seed}: the queue did not drain: {done} of {total} jobs have an outcome; \
             (ready, scheduled, running) {counts:?}"
        );
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    let succeeded = scalar(
        &store,
        "SELECT COUNT(*) FROM job_outcomes WHERE outcome = 'succeeded' AND job_id NOT LIKE 'm-%'",
    )
    .await;
    assert_eq!(succeeded, total, "seed {seed}: every job succeeded, once");
    // Ran again: a delivery its killed worker had started counts, so a job that ran more
    // than once shows it in its attempts. A kill costs at most what its worker was
    // running, and the Redis crash at most what every worker was running (their chained
    // enqueues fail, and they retry).
    let reran = scalar(
        &store,
        "SELECT COUNT(*) FROM job_outcomes WHERE attempts > 1",
    )
    .await;
    eprintln!(
        "seed {seed}: {total} jobs, {kills} workers killed, Redis killed once; \
         {reran} jobs ran more than once"
    );
    let bound = (kills + WORKERS) * CONCURRENCY;
    assert!(
        reran as usize <= bound,
        "seed {seed}: {reran} jobs ran again, more than {bound} ({kills} kills of workers \
         running {CONCURRENCY} each, and one Redis crash)"
    );

    // Nothing malformed ran: each was set aside or dead-lettered, saying why.
    let ran_bad = scalar(
        &store,
        "SELECT COUNT(*) FROM job_outcomes WHERE job_id LIKE 'm-%' AND job_id <> 'm-json'",
    )
    .await;
    assert_eq!(ran_bad, 0, "seed {seed}: a malformed entry ran");
    let strays = queue.strays().await.unwrap();
    let aside = strays
        .iter()
        .find(|s| s.queue == "unreadable")
        .map_or(0, |s| s.dead);
    assert_eq!(
        aside as usize, unreadable,
        "seed {seed}: unreadable entries set aside"
    );
    let letters = queue.dead_letters(Q.queue(), 100).await.unwrap();
    let mut ids: Vec<&str> = letters.iter().map(|d| d.id.as_str()).collect();
    ids.sort();
    assert_eq!(ids.len(), dead, "seed {seed}: dead letters {ids:?}");
    assert_eq!(ids, ["m-huge", "m-json", "m-none", "m-spent"]);

    // SIGTERM under load is in tests/fleet.rs; here the survivors just leave.
    for mut w in workers {
        let _ = Command::new("kill")
            .args(["-TERM", &w.id().to_string()])
            .status();
        let exit = w.wait().unwrap();
        assert!(
            exit.success(),
            "seed {seed}: a worker did not drain cleanly: {exit}"
        );
    }
    let st = &queue.stats(&[Q.queue()]).await.unwrap()[0];
    assert_eq!(
        (st.ready, st.running),
        (0, 0),
        "seed {seed}: no lease is left"
    );
}
