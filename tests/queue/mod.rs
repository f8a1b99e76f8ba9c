//! The queue's promises, on SQLite (embedded) and Redis (fleet) alike; `admin` holds
//! those of the operator's actions (dead letters retried or discarded, queues paused).

mod admin;

use crate::helpers::*;
use cep_shared::queue::{NewJob, Queue, Settle};
use cep_shared::{Clock, JobKind, Layer, Settings};
use chrono::TimeZone;

const Q: JobKind = JobKind::Layer(Layer::Outreach);

/// The queue under test; the guard keeps an embedded queue's database alive.
async fn queue_on(backend: Backend, settings: &Settings, clock: Clock) -> (Queue, Option<TempDir>) {
    match backend {
        Backend::Embedded => {
            let dir = TempDir::new();
            (sqlite_queue(&dir, settings, clock).await, Some(dir))
        }
        Backend::Fleet => (redis_queue(settings, clock).await, None),
    }
}

/// How long the conformance tests wait for a dead worker's jobs: the 2 s orphan window
/// they set, the second the embedded queue may add (it keeps a worker's last sign of
/// life in whole seconds, as apalis does), and a margin.
const ORPHANED: std::time::Duration = std::time::Duration::from_secs(5);

/// Recovers orphans until `n` jobs came back, failing when none do within [`ORPHANED`].
async fn recovered(q: &Queue, n: usize) -> cep_shared::queue::Recovered {
    let deadline = std::time::Instant::now() + ORPHANED;
    loop {
        let r = q.recover_orphans().await.unwrap();
        if r.jobs > 0 {
            assert_eq!(r.jobs, n, "recovered another number of jobs");
            return r;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "no orphan came back within {ORPHANED:?}"
        );
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
}

/// Writes `raw` into a Redis list as another writer would, past the queue's checks.
async fn push_raw(command: &str, key: String, raw: &[u8]) {
    let client = redis::Client::open(redis_url()).unwrap();
    let mut conn = client.get_multiplexed_async_connection().await.unwrap();
    let _: () = redis::cmd(command)
        .arg(key)
        .arg(raw)
        .query_async(&mut conn)
        .await
        .unwrap();
}

/// Leases one job for `worker` and starts it, as a worker does right before running it.
async fn take(q: &Queue, worker: &str) -> cep_shared::queue::Leased {
    let job = q.fetch(&[Q.queue()], worker, 1).await.unwrap().remove(0);
    assert_eq!(
        q.start(worker, &[&job]).await.unwrap(),
        [true],
        "a held job starts"
    );
    job
}

fn start() -> Clock {
    Clock::simulated(chrono::Utc.with_ymd_and_hms(2026, 1, 5, 9, 0, 0).unwrap())
}

macro_rules! conformance {
    ($($backend:ident => $module:ident),*) => {$(
        mod $module {
            use super::*;

            #[tokio::test]
            async fn a_job_with_a_taken_key_is_enqueued_once() {
                let s = settings();
                let (q, _d) = queue_on(Backend::$backend, &s, start()).await;
                let job = || NewJob::new(Q, &serde_json::json!({"n": 1}), 0).key("outreach:p1:0");
                assert!(q.push(job()).await.unwrap());
                assert!(!q.push(job()).await.unwrap());
                let got = q.fetch(&[Q.queue()], "w1", 10).await.unwrap();
                assert_eq!(got.len(), 1);
            }

            #[tokio::test]
            async fn a_delayed_job_waits_for_its_due_time_on_the_scheduling_clock() {
                let s = settings();
                let clock = start();
                let (q, _d) = queue_on(Backend::$backend, &s, clock.clone()).await;
                let due = clock.now_millis() + 24 * 3_600_000;
                q.push(NewJob::new(Q, &1, due)).await.unwrap();
                assert!(q.fetch(&[Q.queue()], "w1", 10).await.unwrap().is_empty());
                assert_eq!(q.next_due(&[Q.queue()]).await.unwrap(), Some(due));
                clock.set(chrono::Utc.timestamp_millis_opt(due).unwrap());
                let got = q.fetch(&[Q.queue()], "w1", 10).await.unwrap();
                assert_eq!(got.len(), 1);
                assert_eq!(got[0].attempt, 1);
            }

            #[tokio::test]
            async fn retries_count_attempts_and_dead_letters_keep_the_reason() {
                let s = settings();
                let clock = start();
                let (q, _d) = queue_on(Backend::$backend, &s, clock.clone()).await;
                q.push(NewJob::new(Q, &"x", 0).max_attempts(2)).await.unwrap();
                let a = q.fetch(&[Q.queue()], "w1", 1).await.unwrap().remove(0);
                assert!(q.settle("w1", &a, Settle::Retry { run_at: 0, reason: "smtp down".into() }).await.unwrap());
                let b = q.fetch(&[Q.queue()], "w1", 1).await.unwrap().remove(0);
                assert_eq!((b.id.as_str(), b.attempt), (a.id.as_str(), 2));
                assert!(q.settle("w1", &b, Settle::Dead { reason: "gave up: smtp down".into() }).await.unwrap());
                let dead = q.dead_letters(Q.queue(), 10).await.unwrap();
                assert_eq!(dead.len(), 1);
                assert_eq!(dead[0].reason, "gave up: smtp down");
                assert_eq!(dead[0].payload, "\"x\"");
                let st = &q.stats(&[Q.queue()]).await.unwrap()[0];
                assert_eq!((st.ready, st.running, st.dead), (0, 0, 1));
            }

            #[tokio::test]
            async fn a_dead_workers_jobs_return_to_the_queue_and_its_late_ack_is_refused() {
                let s = settings_with_short_orphan_window();
                let (q, _d) = queue_on(Backend::$backend, &s, start()).await;
                q.push(NewJob::new(Q, &"work", 0)).await.unwrap();
                let held = take(&q, "dies").await;
                assert_eq!(q.recover_orphans().await.unwrap().jobs, 0, "a live worker keeps its job");
                recovered(&q, 1).await;
                let again = q.fetch(&[Q.queue()], "survivor", 1).await.unwrap().remove(0);
                assert_eq!((again.id.as_str(), again.attempt), (held.id.as_str(), 2));
                assert!(!q.settle("dies", &held, Settle::Done).await.unwrap(), "the dead worker's ack is refused");
                assert!(q.settle("survivor", &again, Settle::Done).await.unwrap());
            }

            #[tokio::test]
            async fn a_job_whose_worker_dies_on_its_last_attempt_is_dead_lettered_with_why() {
                let s = settings_with_short_orphan_window();
                let (q, _d) = queue_on(Backend::$backend, &s, start()).await;
                let payload = serde_json::json!({"note": "pipes | and | bars"});
                q.push(NewJob::new(Q, &payload, 0).max_attempts(2)).await.unwrap();
                let first = take(&q, "dies-1").await;
                recovered(&q, 1).await;
                let second = take(&q, "dies-2").await;
                assert_eq!((second.id.as_str(), second.attempt), (first.id.as_str(), 2));
                let last = recovered(&q, 1).await;
                let dead: Vec<_> = last.dead.iter().map(|o| (o.id.as_str(), o.queue.as_str(), o.attempts)).collect();
                assert_eq!(dead, [(first.id.as_str(), Q.queue(), 2)], "recovery names the job it dead-lettered");
                assert!(q.fetch(&[Q.queue()], "survivor", 1).await.unwrap().is_empty());
                let dead = q.dead_letters(Q.queue(), 10).await.unwrap();
                assert_eq!(dead.len(), 1);
                assert_eq!((dead[0].id.as_str(), dead[0].attempts), (first.id.as_str(), 2));
                assert_eq!(dead[0].payload, payload.to_string());
                assert_eq!(dead[0].reason, "its worker stopped answering during every attempt");
                let st = &q.stats(&[Q.queue()]).await.unwrap()[0];
                assert_eq!((st.ready, st.running, st.dead), (0, 0, 1));
            }

            #[tokio::test]
            async fn a_payload_over_the_limit_is_refused_naming_it_and_a_limit_of_none_never_runs() {
                let mut s = settings();
                s.queue.max_payload_bytes = 1024;
                let (q, _d) = queue_on(Backend::$backend, &s, start()).await;
                let big = "x".repeat(2000);
                let err = q.push(NewJob::new(Q, &big, 0)).await.unwrap_err().to_string();
                assert!(err.contains("over queue.max_payload_bytes (1024)"), "{err}");
                assert_eq!(q.stats(&[Q.queue()]).await.unwrap()[0].ready, 0, "nothing enqueued");
                q.push(NewJob::new(Q, &"never", 0).max_attempts(0)).await.unwrap();
                q.push(NewJob::new(Q, &"runs", 0)).await.unwrap();
                let got = q.fetch(&[Q.queue()], "w", 10).await.unwrap();
                assert_eq!(got.len(), 1);
                assert_eq!(got[0].payload, "\"runs\"");
                let dead = q.dead_letters(Q.queue(), 10).await.unwrap();
                assert_eq!(dead.len(), 1);
                assert_eq!(dead[0].reason, "attempt 1 of at most 0: past its attempt limit");
            }

            #[tokio::test]
            async fn released_jobs_do_not_use_up_attempts() {
                let s = settings();
                let (q, _d) = queue_on(Backend::$backend, &s, start()).await;
                q.push(NewJob::new(Q, &"cap", 0).max_attempts(1)).await.unwrap();
                let a = q.fetch(&[Q.queue()], "w", 1).await.unwrap().remove(0);
                q.settle("w", &a, Settle::Release { run_at: 0 }).await.unwrap();
                let b = q.fetch(&[Q.queue()], "w", 1).await.unwrap().remove(0);
                assert_eq!(b.attempt, 1);
            }
        }
    )*};
}

conformance!(Embedded => embedded, Fleet => fleet);

#[tokio::test]
async fn only_the_jobs_a_dead_worker_started_use_an_attempt() {
    let s = settings_with_short_orphan_window();
    let q = redis_queue(&s, start()).await;
    for n in 0..3 {
        q.push(NewJob::new(Q, &n, 0).max_attempts(1)).await.unwrap();
    }
    // The worker leases three jobs, starts one and dies: the other two were only held.
    let held = q.fetch(&[Q.queue()], "dies", 3).await.unwrap();
    assert_eq!(held.len(), 3);
    assert_eq!(q.start("dies", &[&held[0]]).await.unwrap(), [true]);
    let r = recovered(&q, 3).await;
    let dead: Vec<&str> = r.dead.iter().map(|o| o.id.as_str()).collect();
    assert_eq!(
        dead,
        [held[0].id.as_str()],
        "the started job used its one attempt"
    );
    // A job recovered from a worker thought dead is not started by it any more.
    assert_eq!(q.start("dies", &[&held[1]]).await.unwrap(), [false]);
    let mut again = q.fetch(&[Q.queue()], "survivor", 10).await.unwrap();
    again.sort_by(|a, b| a.id.cmp(&b.id));
    let got: Vec<(&str, u32)> = again.iter().map(|j| (j.id.as_str(), j.attempt)).collect();
    let mut want = vec![(held[1].id.as_str(), 1), (held[2].id.as_str(), 1)];
    want.sort();
    assert_eq!(
        got, want,
        "the held jobs came back with their attempt unused"
    );
    let st = &q.stats(&[Q.queue()]).await.unwrap()[0];
    assert_eq!((st.ready, st.running, st.dead), (0, 2, 1));
}

/// The embedded queue on the wall clock, as `cep run` and `cep worker` keep it, and a
/// pool of apalis-sqlite's own on the same file.
async fn embedded_queue_and_apalis_pool() -> (Queue, apalis_sqlite::SqlitePool, TempDir) {
    let dir = TempDir::new();
    let q = sqlite_queue(&dir, &settings(), Clock::System).await;
    let url = format!(
        "sqlite://{}",
        dir.0.join(cep_shared::queue::QUEUE_FILE).display()
    );
    let pool = apalis_sqlite::SqlitePool::connect(&url).await.unwrap();
    (q, pool, dir)
}

#[tokio::test]
async fn an_apalis_sqlite_worker_runs_a_job_the_embedded_queue_holds() {
    use apalis::prelude::*;
    use apalis_sqlite::{Config, SqliteStorage};
    let (q, pool, _dir) = embedded_queue_and_apalis_pool().await;
    let payload = serde_json::json!({"prospect_id": "p-1", "step": 2});
    let now = Clock::System.now_millis();
    assert!(
        q.push(NewJob::new(Q, &payload, now).key("outreach:p-1:2"))
            .await
            .unwrap()
    );

    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel::<serde_json::Value>();
    async fn handle(
        args: serde_json::Value,
        worker: WorkerContext,
        seen: Data<tokio::sync::mpsc::UnboundedSender<serde_json::Value>>,
    ) -> Result<(), BoxDynError> {
        seen.send(args)?;
        worker.stop()?;
        Ok(())
    }
    let storage = SqliteStorage::<serde_json::Value>::new(&pool)
        .with_config(Config::default().queue(Q.queue()));
    let worker = WorkerBuilder::new("apalis-native")
        .backend(storage)
        .data(tx)
        .build(handle);
    tokio::time::timeout(std::time::Duration::from_secs(30), worker.run())
        .await
        .expect("the apalis-sqlite worker found the job")
        .unwrap();
    assert_eq!(rx.recv().await.unwrap(), payload);
    let st = &q.stats(&[Q.queue()]).await.unwrap()[0];
    assert_eq!((st.ready, st.scheduled, st.running, st.dead), (0, 0, 0, 0));
}

#[tokio::test]
async fn a_job_apalis_sqlite_enqueued_reaches_a_cep_worker_once_per_key() {
    use apalis::prelude::*;
    use apalis_sqlite::{Config, SqliteStorage};
    let (q, pool, _dir) = embedded_queue_and_apalis_pool().await;
    let mut storage = SqliteStorage::<serde_json::Value>::new(&pool)
        .with_config(Config::default().queue(Q.queue()));
    let payload = serde_json::json!({"prospect_id": "p-2", "step": 1});
    for _ in 0..2 {
        let task = TaskBuilder::new(payload.clone())
            .idempotency_key("outreach:p-2:1")
            .build();
        storage.push_task(task).await.unwrap();
    }
    // cep's key for the same step is the same key: not enqueued a second time.
    let now = Clock::System.now_millis();
    assert!(
        !q.push(NewJob::new(Q, &payload, now).key("outreach:p-2:1"))
            .await
            .unwrap()
    );
    let got = q.fetch(&[Q.queue()], "cep-worker", 10).await.unwrap();
    assert_eq!(got.len(), 1);
    let got_payload: serde_json::Value = serde_json::from_str(&got[0].payload).unwrap();
    assert_eq!((got_payload, got[0].attempt), (payload, 1));
    assert!(q.settle("cep-worker", &got[0], Settle::Done).await.unwrap());
}

#[tokio::test]
async fn jobs_another_writer_queued_under_an_unknown_name_show_in_the_embedded_queue() {
    use apalis::prelude::*;
    use apalis_sqlite::{Config, SqliteStorage};
    let (q, pool, _dir) = embedded_queue_and_apalis_pool().await;
    assert!(q.strays().await.unwrap().is_empty());
    let mut storage = SqliteStorage::<serde_json::Value>::new(&pool)
        .with_config(Config::default().queue("outreach_v0"));
    storage
        .push_task(TaskBuilder::new(serde_json::json!({"step": 1})).build())
        .await
        .unwrap();
    let strays = q.strays().await.unwrap();
    let counts: Vec<(&str, u64)> = strays.iter().map(|s| (s.queue.as_str(), s.ready)).collect();
    assert_eq!(counts, [("outreach_v0", 1)]);
}

#[tokio::test]
async fn a_done_jobs_key_is_remembered_for_the_idempotency_ttl_and_then_forgotten() {
    let (q, pool, _dir) = embedded_queue_and_apalis_pool().await;
    let now = Clock::System.now_millis();
    let key = "prospecting:2026-01-05:austin:plumber";
    assert!(
        q.push(NewJob::new(Q, &"first", now).key(key))
            .await
            .unwrap()
    );
    let job = q.fetch(&[Q.queue()], "w", 1).await.unwrap().remove(0);
    assert!(q.settle("w", &job, Settle::Done).await.unwrap());
    q.recover_orphans().await.unwrap();
    assert!(
        !q.push(NewJob::new(Q, &"again", now).key(key))
            .await
            .unwrap(),
        "remembered"
    );
    // Done 41 days ago: past the 40-day default, as a Redis key would have expired.
    sqlx::query("UPDATE Jobs SET done_at = done_at - 41 * 86400 WHERE id = $1")
        .bind(&job.id)
        .execute(&pool)
        .await
        .unwrap();
    q.recover_orphans().await.unwrap();
    assert!(
        q.push(NewJob::new(Q, &"again", now).key(key))
            .await
            .unwrap(),
        "forgotten"
    );
}

#[tokio::test]
async fn jobs_an_earlier_build_queued_in_the_store_move_into_the_apalis_sqlite_queue() {
    let (store, dir) = fresh_sqlite().await;
    let clock = start();
    let now = clock.now_millis();
    sqlx::query(
        "CREATE TABLE queue_jobs (id TEXT PRIMARY KEY, queue TEXT NOT NULL, dedup_key TEXT UNIQUE,
            payload TEXT NOT NULL, status TEXT NOT NULL, run_at BIGINT NOT NULL, attempts BIGINT NOT NULL,
            max_attempts BIGINT NOT NULL, worker TEXT, lease_until BIGINT, last_error TEXT,
            enqueued_at BIGINT NOT NULL, trace TEXT)",
    )
    .execute(store.pool())
    .await
    .unwrap();
    for (id, key, status, run_at, attempts, error) in [
        ("a", Some("outreach:p-1:1"), "ready", now - 5_000, 0, None),
        ("b", None, "running", now - 9_000, 1, None),
        ("c", None, "dead", now - 60_000, 3, Some("no such prospect")),
        ("d", None, "done", now - 90_000, 1, None),
        ("e", None, "ready", now + 3_600_000, 0, None),
    ] {
        sqlx::query(
            "INSERT INTO queue_jobs (id, queue, dedup_key, payload, status, run_at, attempts, max_attempts,
                                     last_error, enqueued_at)
             VALUES ($1, 'outreach', $2, $3, $4, $5, $6, 3, $7, 0)",
        )
        .bind(id)
        .bind(key)
        .bind(format!("{{\"job\":\"{id}\"}}"))
        .bind(status)
        .bind(run_at)
        .bind(attempts)
        .bind(error)
        .execute(store.pool())
        .await
        .unwrap();
    }
    let q = sqlite_queue(&dir, &settings(), clock.clone()).await;
    let Queue::Sqlite(sq) = &q else {
        unreachable!()
    };
    assert_eq!(
        sq.adopt_legacy(store.pool()).await.unwrap(),
        4,
        "all but the done job"
    );
    assert_eq!(
        sq.adopt_legacy(store.pool()).await.unwrap(),
        0,
        "nothing twice"
    );
    let st = &q.stats(&[Q.queue()]).await.unwrap()[0];
    assert_eq!((st.ready, st.scheduled, st.running, st.dead), (2, 1, 0, 1));
    let dead = q.dead_letters(Q.queue(), 10).await.unwrap();
    assert_eq!(
        (
            dead[0].id.as_str(),
            dead[0].reason.as_str(),
            dead[0].attempts
        ),
        ("c", "no such prospect", 3)
    );
    assert!(
        !q.push(NewJob::new(Q, &"again", now).key("outreach:p-1:1"))
            .await
            .unwrap(),
        "keys move too"
    );
    let mut got = q.fetch(&[Q.queue()], "w", 10).await.unwrap();
    got.sort_by(|x, y| x.id.cmp(&y.id));
    let seen: Vec<(&str, &str, u32)> = got
        .iter()
        .map(|j| (j.id.as_str(), j.payload.as_str(), j.attempt))
        .collect();
    assert_eq!(
        seen,
        [("a", r#"{"job":"a"}"#, 1), ("b", r#"{"job":"b"}"#, 2)]
    );
    let left: Option<(String,)> =
        sqlx::query_as("SELECT name FROM sqlite_master WHERE name = 'queue_jobs'")
            .fetch_optional(store.pool())
            .await
            .unwrap();
    assert!(left.is_none(), "the old table is gone");
}

#[tokio::test]
async fn a_100k_backlog_already_due_in_redis_drains_with_none_lost_and_none_twice() {
    let s = settings();
    let clock = start();
    let q = redis_queue(&s, clock.clone()).await;
    let n = 100_000;
    // Enqueued as delayed jobs that all come due at once, the case that breaks a fetch
    // which promotes a whole backlog in one script.
    let due = clock.now_millis() + 1000;
    let jobs: Vec<NewJob> = (0..n).map(|i| NewJob::new(Q, &i, due)).collect();
    assert_eq!(q.push_many(jobs).await.unwrap(), n);
    clock.set(chrono::Utc.timestamp_millis_opt(due).unwrap());
    let mut seen = std::collections::HashSet::new();
    loop {
        let batch = q.fetch(&[Q.queue()], "drainer", 1000).await.unwrap();
        if batch.is_empty() {
            break;
        }
        for job in &batch {
            assert!(
                seen.insert(job.payload.clone()),
                "job {} delivered twice",
                job.payload
            );
            assert!(q.settle("drainer", job, Settle::Done).await.unwrap());
        }
    }
    assert_eq!(seen.len(), n);
    let st = &q.stats(&[Q.queue()]).await.unwrap()[0];
    assert_eq!((st.ready, st.scheduled, st.running), (0, 0, 0));
    if let Queue::Redis(r) = &q {
        r.purge().await.unwrap();
    }
}

#[tokio::test]
async fn an_unreadable_redis_entry_is_set_aside_and_the_rest_of_the_batch_runs() {
    let s = settings();
    let q = redis_queue(&s, start()).await;
    q.push(NewJob::new(Q, &"good", 0)).await.unwrap();
    // A bare id, as a queue written by something else would hold.
    let prefix = format!("{{{}}}", s.queue.key_prefix);
    let client = redis::Client::open(redis_url()).unwrap();
    let mut conn = client.get_multiplexed_async_connection().await.unwrap();
    push_raw(
        "RPUSH",
        format!("{prefix}:ready:{}", Q.queue()),
        b"0193abcdef",
    )
    .await;
    let got = q.fetch(&[Q.queue()], "w", 10).await.unwrap();
    assert_eq!(got.len(), 1);
    assert_eq!(got[0].payload, "\"good\"");
    let aside: Vec<String> = redis::cmd("LRANGE")
        .arg(format!("{prefix}:unreadable"))
        .arg(0)
        .arg(-1)
        .query_async(&mut conn)
        .await
        .unwrap();
    assert_eq!(aside, ["0193abcdef"]);
    assert!(q.settle("w", &got[0], Settle::Done).await.unwrap());
    let st = &q.stats(&[Q.queue()]).await.unwrap()[0];
    assert_eq!((st.ready, st.running), (0, 0), "nothing left leased");
    // Shown, with why, where an operator looks.
    let strays = q.strays().await.unwrap();
    assert_eq!(strays.len(), 1);
    assert_eq!(
        (strays[0].queue.as_str(), strays[0].dead),
        ("unreadable", 1)
    );
    let shown = q.dead_letters("unreadable", 10).await.unwrap();
    assert_eq!(shown.len(), 1);
    assert_eq!(shown[0].payload, "0193abcdef");
    assert!(
        shown[0].reason.contains("not a job entry"),
        "{}",
        shown[0].reason
    );
    if let Queue::Redis(r) = &q {
        r.purge().await.unwrap();
    }
}

#[tokio::test]
async fn jobs_under_an_unknown_queue_name_are_never_run_and_are_shown_where_operators_look() {
    let s = settings();
    let q = redis_queue(&s, start()).await;
    let prefix = format!("{{{}}}", s.queue.key_prefix);
    q.push(NewJob::new(Q, &"good", 0)).await.unwrap();
    // A well-formed entry naming a queue the fleet does not have, in a list it serves,
    // and two more in lists of that name, as an older build or another writer leaves.
    let stray = b"v1|0|5|0|outreach_v0|s1||{}";
    push_raw("RPUSH", format!("{prefix}:ready:{}", Q.queue()), stray).await;
    push_raw(
        "RPUSH",
        format!("{prefix}:ready:outreach_v0"),
        b"v1|0|5|0|outreach_v0|s2||{}",
    )
    .await;
    push_raw(
        "RPUSH",
        format!("{prefix}:dead:outreach_v0"),
        b"v1|5|5|0|outreach_v0|s3||{}",
    )
    .await;
    let got = q.fetch(&[Q.queue()], "w", 10).await.unwrap();
    let payloads: Vec<&str> = got.iter().map(|j| j.payload.as_str()).collect();
    assert_eq!(payloads, ["\"good\""], "the stray entry is not run");
    let mut strays = q.strays().await.unwrap();
    strays.sort_by(|a, b| a.queue.cmp(&b.queue));
    let counts: Vec<(&str, u64, u64)> = strays
        .iter()
        .map(|s| (s.queue.as_str(), s.ready, s.dead))
        .collect();
    assert_eq!(counts, [("outreach_v0", 1, 1), ("unreadable", 0, 1)]);
    let aside = q.dead_letters("unreadable", 10).await.unwrap();
    assert!(
        aside[0].reason.contains("unknown queue `outreach_v0`"),
        "{}",
        aside[0].reason
    );
    let dead = q.dead_letters("outreach_v0", 10).await.unwrap();
    assert_eq!((dead[0].id.as_str(), dead[0].attempts), ("s3", 5));
    if let Queue::Redis(r) = &q {
        r.purge().await.unwrap();
    }
}

#[tokio::test]
async fn bytes_that_are_not_utf8_are_set_aside_whole_and_neither_the_batch_nor_the_views_fail() {
    let s = settings();
    let q = redis_queue(&s, start()).await;
    let prefix = format!("{{{}}}", s.queue.key_prefix);
    let client = redis::Client::open(redis_url()).unwrap();
    let mut conn = client.get_multiplexed_async_connection().await.unwrap();
    let poison = b"v1|0|5|0|outreach|p1||{\"n\":\xff\xfe}".to_vec();
    // The poison sits in the middle of 15 good jobs, so one fetch takes them all.
    for n in 0..8 {
        q.push(NewJob::new(Q, &n, 0)).await.unwrap();
    }
    push_raw("RPUSH", format!("{prefix}:ready:{}", Q.queue()), &poison).await;
    for n in 8..15 {
        q.push(NewJob::new(Q, &n, 0)).await.unwrap();
    }
    // And one in the dead letters, as a worker of another build could leave it.
    push_raw("RPUSH", format!("{prefix}:dead:{}", Q.queue()), &poison).await;
    assert_eq!(q.oldest_due(&[Q.queue()]).await.unwrap().len(), 1);
    let got = q.fetch(&[Q.queue()], "w", 20).await.unwrap();
    assert_eq!(got.len(), 15, "every readable job of the batch is leased");
    let aside: Vec<Vec<u8>> = redis::cmd("LRANGE")
        .arg(format!("{prefix}:unreadable"))
        .arg(0)
        .arg(-1)
        .query_async(&mut conn)
        .await
        .unwrap();
    assert_eq!(aside, [poison], "set aside whole, byte for byte");
    for job in &got {
        assert!(q.settle("w", job, Settle::Done).await.unwrap());
    }
    let st = &q.stats(&[Q.queue()]).await.unwrap()[0];
    assert_eq!(
        (st.ready, st.running, st.dead),
        (0, 0, 1),
        "nothing left leased"
    );
    let dead = q.dead_letters(Q.queue(), 10).await.unwrap();
    assert_eq!(dead.len(), 1);
    assert_eq!(dead[0].id, "(unreadable)");
    assert!(dead[0].reason.contains("not UTF-8"), "{}", dead[0].reason);
    if let Queue::Redis(r) = &q {
        r.purge().await.unwrap();
    }
}

#[tokio::test]
async fn entries_past_their_attempts_or_size_found_in_redis_are_dead_lettered_saying_why() {
    let mut s = settings();
    s.queue.max_payload_bytes = 1024;
    let q = redis_queue(&s, start()).await;
    let prefix = format!("{{{}}}", s.queue.key_prefix);
    let ready = format!("{prefix}:ready:{}", Q.queue());
    let big = format!("v1|0|5|0|outreach|big||\"{}\"", "x".repeat(2000));
    for raw in [
        "v1|98|5|0|outreach|tired||{}",
        &big,
        "v1|0|5|0|outreach|fine||{}",
    ] {
        push_raw("LPUSH", ready.clone(), raw.as_bytes()).await;
    }
    let got = q.fetch(&[Q.queue()], "w", 10).await.unwrap();
    assert_eq!(got.len(), 1);
    assert_eq!(got[0].id, "fine");
    let mut dead = q.dead_letters(Q.queue(), 10).await.unwrap();
    dead.sort_by(|a, b| a.id.cmp(&b.id));
    assert_eq!(dead.len(), 2);
    assert_eq!(dead[0].id, "big");
    assert_eq!(
        dead[0].reason,
        "payload of 2002 bytes is over queue.max_payload_bytes (1024)"
    );
    assert_eq!(dead[1].id, "tired");
    assert_eq!(
        dead[1].reason,
        "attempt 99 of at most 5: past its attempt limit"
    );
    if let Queue::Redis(r) = &q {
        r.purge().await.unwrap();
    }
}

#[tokio::test]
async fn a_worker_with_free_slots_starts_what_it_fetches_and_holds_only_the_rest() {
    let s = settings_with_short_orphan_window();
    let q = redis_queue(&s, start()).await;
    for n in 0..5 {
        q.push(NewJob::new(Q, &n, 0).max_attempts(1)).await.unwrap();
    }
    // Two free slots: two jobs start with the fetch, three are held.
    let (got, started) = q.fetch_starting(&[Q.queue()], "dies", 5, 2).await.unwrap();
    assert_eq!((got.len(), started), (5, 2));
    let r = recovered(&q, 5).await;
    let mut dead: Vec<&str> = r.dead.iter().map(|o| o.id.as_str()).collect();
    dead.sort();
    let mut want = vec![got[0].id.as_str(), got[1].id.as_str()];
    want.sort();
    assert_eq!(dead, want, "only the two started jobs used their attempt");
    let st = &q.stats(&[Q.queue()]).await.unwrap()[0];
    assert_eq!((st.ready, st.dead), (3, 2));
}
