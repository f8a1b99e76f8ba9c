//! The embedded queue: apalis-sqlite's storage in `data_dir/queue.db`, so the laptop
//! default needs no server.
//!
//! The tables are apalis-sqlite's own (`Jobs`, `Workers`), created by its migrations,
//! and jobs are enqueued through its sink with their deduplication key as apalis's
//! idempotency key, so apalis-sqlite tools read this queue as theirs. Leasing, settling
//! and orphan recovery are statements of ours on those tables, for two reasons:
//! apalis-sqlite's fetch compares due times with the wall clock, which `cep simulate`
//! does not run on, and its orphan recovery re-enqueues a job without limit, where a
//! job that kills its worker on the last attempt must end dead-lettered.
//!
//! Statuses are apalis's: `Pending` (ready or scheduled), `Running` (leased),
//! `Done`, `Killed` (dead-lettered, the reason in `last_result` as `{"Err": …}`).
//! `run_at` is in whole seconds of the scheduling clock; a worker's liveness is its
//! `Workers.last_seen`, in wall-clock seconds.

mod admin;

use super::{
    DIED_EVERY_ATTEMPT, DeadLetter, Leased, NewJob, Orphan, QueueContext, QueueError, QueueStats,
    Recovered, Settle, is_known, new_job_id, whole_second,
};
use crate::clock::wall_millis;
use apalis_core::task::builder::TaskBuilder;
use apalis_core::task::metadata::MetadataStore;
use apalis_core::task::task_id::TaskId;
use sqlx::SqlitePool;
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions};
use std::collections::HashMap;
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::Duration;

#[derive(Debug, Clone)]
pub struct SqliteQueue {
    pub(super) pool: SqlitePool,
    pub(super) ctx: QueueContext,
    /// The wall-clock second each of this process's workers was last recorded alive
    /// in. `last_seen` holds whole seconds, so a fetch writes it at most once a second
    /// instead of on every poll.
    seen_in: Arc<Mutex<HashMap<String, i64>>>,
}

/// The queue's file in the data directory.
pub const QUEUE_FILE: &str = "queue.db";

/// Our tables beside apalis's: fleet-wide rate limits (`limits.rs`), the paused queues
/// (`admin.rs`) and the research cache (`cache.rs`).
const SCHEMA: &[&str] = &[
    "CREATE TABLE IF NOT EXISTS rate_windows (
        key           TEXT NOT NULL,     -- provider:scope:per
        window_start  BIGINT NOT NULL,   -- scheduling clock
        used          BIGINT NOT NULL,
        CONSTRAINT rate_windows_pk PRIMARY KEY (key, window_start)
    )",
    "CREATE TABLE IF NOT EXISTS paused_queues (
        queue      TEXT NOT NULL,
        paused_at  BIGINT NOT NULL,      -- scheduling clock
        CONSTRAINT paused_queues_pk PRIMARY KEY (queue)
    )",
    "CREATE TABLE IF NOT EXISTS cache_entries (
        key         TEXT NOT NULL,
        value       TEXT NOT NULL,
        expires_at  BIGINT NOT NULL,     -- scheduling clock
        CONSTRAINT cache_entries_pk PRIMARY KEY (key)
    )",
];

/// Where a job's enqueuer's `traceparent` sits in apalis's metadata.
const TRACE_KEY: &str = "traceparent";

/// id, queue, payload, attempts, max_attempts, trace
type LeaseRow = (String, String, Vec<u8>, i64, i64, Option<String>);

/// id, queue, payload, attempts, reason
type DeadRow = (String, String, Vec<u8>, i64, Option<String>);

fn placeholders(from: usize, n: usize) -> String {
    (from..from + n)
        .map(|i| format!("${i}"))
        .collect::<Vec<_>>()
        .join(", ")
}

/// A failure as apalis records it in `last_result`.
fn failure(reason: &str) -> String {
    serde_json::json!({ "Err": reason }).to_string()
}

/// Milliseconds to the whole second they fall in, as apalis keeps times.
fn secs(ms: i64) -> i64 {
    ms.div_euclid(1000)
}

impl SqliteQueue {
    /// Opens (creating when absent) the queue at `path` and brings apalis-sqlite's
    /// tables up to date.
    pub async fn open(path: &Path, ctx: QueueContext) -> Result<Self, QueueError> {
        let connect = |reason: String| QueueError::Connect {
            target: path.display().to_string(),
            reason,
        };
        let options = SqliteConnectOptions::new()
            .filename(path)
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            .busy_timeout(Duration::from_secs(10))
            .foreign_keys(true);
        // One connection: SQLite has one writer anyway, and a second connection in the
        // same process only adds lock upgrades that fail with "database is locked".
        let pool = SqlitePoolOptions::new()
            .max_connections(1)
            .acquire_timeout(Duration::from_secs(60))
            .connect_with(options)
            .await
            .map_err(|e| connect(e.to_string()))?;
        apalis_sqlite::SqliteStorage::setup(&pool)
            .await
            .map_err(|e| connect(format!("apalis-sqlite migrations: {e}")))?;
        // apalis-sqlite's setup turns synchronous off; a committed job must survive a
        // power cut as the store's rows do.
        sqlx::query("PRAGMA synchronous = NORMAL")
            .execute(&pool)
            .await?;
        for stmt in SCHEMA {
            sqlx::query(*stmt).execute(&pool).await?;
        }
        Ok(Self {
            pool,
            ctx,
            seen_in: Default::default(),
        })
    }

    /// Moves the jobs an earlier build kept in the store's `queue_jobs` table into this
    /// queue — waiting and running ones as pending (their worker stopped with that
    /// build), dead letters with their reason — then drops that table and its rate-limit
    /// and cache siblings from the store. Safe to repeat: a job already moved keeps its
    /// id and is not moved twice. Returns how many jobs it moved.
    pub async fn adopt_legacy(&self, store: &sqlx::AnyPool) -> Result<usize, QueueError> {
        let present: Option<(String,)> = sqlx::query_as(
            "SELECT name FROM sqlite_master WHERE type = 'table' AND name = 'queue_jobs'",
        )
        .fetch_optional(store)
        .await?;
        if present.is_none() {
            return Ok(0);
        }
        type Legacy = (
            String,
            String,
            Option<String>,
            String,
            String,
            i64,
            i64,
            i64,
            Option<String>,
            Option<String>,
        );
        let rows: Vec<Legacy> = sqlx::query_as(
            "SELECT id, queue, dedup_key, payload, status, run_at, attempts, max_attempts, last_error, trace
               FROM queue_jobs WHERE status IN ('ready', 'running', 'dead')",
        )
        .fetch_all(store)
        .await?;
        let mut tx = self.pool.begin().await?;
        let mut moved = 0;
        for (id, queue, key, payload, status, run_at, attempts, max, error, trace) in rows {
            let status = if status == "dead" {
                "Killed"
            } else {
                "Pending"
            };
            let meta = trace.map(|t| serde_json::json!({ TRACE_KEY: t }).to_string());
            moved += sqlx::query(
                "INSERT INTO Jobs (job, id, job_type, status, attempts, max_attempts, run_at, last_result,
                                   priority, metadata, idempotency_key)
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8, 0, $9, $10) ON CONFLICT DO NOTHING",
            )
            .bind(payload.into_bytes())
            .bind(id)
            .bind(queue)
            .bind(status)
            .bind(attempts)
            .bind(max)
            .bind(secs(whole_second(run_at, self.ctx.clock.now_millis())))
            .bind(error.as_deref().map(failure))
            .bind(meta)
            .bind(key)
            .execute(&mut *tx)
            .await?
            .rows_affected() as usize;
        }
        tx.commit().await?;
        for table in ["queue_jobs", "rate_windows", "cache_entries"] {
            sqlx::query(sqlx::AssertSqlSafe(format!("DROP TABLE IF EXISTS {table}")))
                .execute(store)
                .await?;
        }
        if moved > 0 {
            tracing::info!(
                moved,
                "moved the jobs of an earlier build's queue into queue.db"
            );
        }
        Ok(moved)
    }

    /// The scheduling clock in whole seconds, as `run_at` is kept.
    fn now_secs(&self) -> i64 {
        secs(self.ctx.clock.now_millis())
    }

    pub(super) async fn push_many(&self, jobs: Vec<NewJob>) -> Result<usize, QueueError> {
        let mut tx = self.pool.begin().await?;
        let (before,): (i64,) = sqlx::query_as("SELECT total_changes()")
            .fetch_one(&mut *tx)
            .await?;
        for job in jobs {
            let max = job.max_attempts.unwrap_or(self.ctx.settings.max_attempts);
            let mut meta = MetadataStore::new();
            if let Some(trace) = job.trace {
                let _ = meta.insert(TRACE_KEY, trace);
            }
            let mut task = TaskBuilder::new(job.payload.into_bytes())
                .task_id(TaskId::from_string(new_job_id()))
                .max_attempts(max as usize)
                .run_at_timestamp(secs(job.run_at).max(0) as u64)
                .with_metadata(meta);
            if let Some(key) = &job.key {
                task = task.idempotency_key(key);
            }
            apalis_sqlite::queries::push_tasks(&mut *tx, job.kind.queue(), &[task.build()]).await?;
        }
        let (after,): (i64,) = sqlx::query_as("SELECT total_changes()")
            .fetch_one(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok((after - before) as usize)
    }

    /// Records `worker` as alive now (apalis's `Workers` row, which a lease refers to).
    async fn seen(&self, worker: &str, queues: Option<&[&str]>) -> Result<(), QueueError> {
        let now = secs(wall_millis());
        sqlx::query(
            "INSERT INTO Workers (id, worker_type, storage_name, layers, last_seen, started_at)
             VALUES ($1, 'cep', 'cep', $2, $3, $3)
             ON CONFLICT (id) DO UPDATE SET last_seen = excluded.last_seen,
                    layers = COALESCE(excluded.layers, Workers.layers)",
        )
        .bind(worker)
        .bind(queues.map(|q| q.join(",")))
        .bind(now)
        .execute(&self.pool)
        .await?;
        self.seen_now().insert(worker.to_owned(), now);
        Ok(())
    }

    fn seen_now(&self) -> std::sync::MutexGuard<'_, HashMap<String, i64>> {
        self.seen_in.lock().unwrap_or_else(|e| e.into_inner())
    }

    pub(super) async fn fetch(
        &self,
        queues: &[&str],
        worker: &str,
        limit: usize,
    ) -> Result<Vec<Leased>, QueueError> {
        if queues.is_empty() || limit == 0 {
            return Ok(Vec::new());
        }
        if self.seen_now().get(worker) != Some(&secs(wall_millis())) {
            self.seen(worker, Some(queues)).await?;
        }
        let sql = format!(
            "UPDATE Jobs SET status = 'Running', lock_by = $1, lock_at = $2, attempts = attempts + 1
             WHERE ROWID IN (SELECT ROWID FROM Jobs
                              WHERE status = 'Pending' AND lock_by IS NULL AND run_at <= $3
                                AND job_type IN ({})
                              ORDER BY run_at, id LIMIT $4)
             RETURNING id, job_type, job, attempts, max_attempts,
                       json_extract(metadata, '$.{TRACE_KEY}')",
            placeholders(5, queues.len())
        );
        let mut q = sqlx::query_as::<_, LeaseRow>(sqlx::AssertSqlSafe(sql))
            .bind(worker)
            .bind(secs(wall_millis()))
            .bind(self.now_secs())
            .bind(limit as i64);
        for name in queues {
            q = q.bind(*name);
        }
        let mut rows = q.fetch_all(&self.pool).await?;
        rows.sort_by(|a, b| a.0.cmp(&b.0));
        let mut leased = Vec::with_capacity(rows.len());
        for (id, queue, payload, attempts, max, trace) in rows {
            let mut job = Leased {
                id,
                queue,
                payload: String::new(),
                attempt: attempts as u32,
                max_attempts: max as u32,
                trace,
                receipt: String::new(),
            };
            match String::from_utf8(payload) {
                Ok(p) => {
                    job.payload = p;
                    leased.push(job);
                }
                // Written by something other than this fleet: no worker can read it.
                Err(_) => {
                    tracing::warn!(job = %job.id, queue = %job.queue, "dead-lettered a job whose payload is not UTF-8 text");
                    let reason = "payload is not UTF-8 text".to_owned();
                    self.settle(worker, &job, Settle::Dead { reason }).await?;
                }
            }
        }
        Ok(leased)
    }

    pub(super) async fn settle(
        &self,
        worker: &str,
        job: &Leased,
        how: Settle,
    ) -> Result<bool, QueueError> {
        const HELD: &str = "id = $1 AND lock_by = $2 AND status = 'Running'";
        let q = match how {
            Settle::Done => sqlx::query(sqlx::AssertSqlSafe(format!(
                "UPDATE Jobs SET status = 'Done', lock_by = NULL, done_at = $3, job = x'',
                        last_result = '{{\"Ok\":null}}'
                 WHERE {HELD}"
            )))
            .bind(&job.id)
            .bind(worker)
            .bind(secs(wall_millis())),
            Settle::Retry { run_at, reason } => sqlx::query(sqlx::AssertSqlSafe(format!(
                "UPDATE Jobs SET status = 'Pending', lock_by = NULL, lock_at = NULL, run_at = $3,
                        last_result = $4
                 WHERE {HELD}"
            )))
            .bind(&job.id)
            .bind(worker)
            .bind(secs(run_at))
            .bind(failure(&reason)),
            Settle::Dead { reason } => sqlx::query(sqlx::AssertSqlSafe(format!(
                "UPDATE Jobs SET status = 'Killed', lock_by = NULL, done_at = $3, last_result = $4
                 WHERE {HELD}"
            )))
            .bind(&job.id)
            .bind(worker)
            .bind(secs(wall_millis()))
            .bind(failure(&reason)),
            Settle::Release { run_at } => sqlx::query(sqlx::AssertSqlSafe(format!(
                "UPDATE Jobs SET status = 'Pending', lock_by = NULL, lock_at = NULL, run_at = $3,
                        attempts = attempts - 1
                 WHERE {HELD}"
            )))
            .bind(&job.id)
            .bind(worker)
            .bind(secs(run_at)),
        };
        Ok(q.execute(&self.pool).await?.rows_affected() == 1)
    }

    pub(super) async fn heartbeat(&self, worker: &str) -> Result<(), QueueError> {
        self.seen(worker, None).await
    }

    /// Jobs held by workers silent for longer than the orphan window go back to their
    /// queue (their delivery was counted when they were leased), or to the dead letters
    /// when that was their last attempt. Workers silent that long and holding nothing are
    /// forgotten, and so are jobs done longer ago than `idempotency_ttl_days`, their
    /// deduplication keys with them, as Redis expires its keys.
    pub(super) async fn recover_orphans(&self) -> Result<Recovered, QueueError> {
        // `last_seen` is a whole second, at most a second before the worker's last
        // sign of life: a worker counts as gone once a full window has passed since
        // the end of that second, so a live one is never robbed of its jobs.
        let window = self.ctx.settings.orphan_window().as_millis() as i64;
        let cutoff = secs(wall_millis() - window);
        let mut tx = self.pool.begin().await?;
        let dead: Vec<(String, String, i64)> = sqlx::query_as(
            "UPDATE Jobs SET status = 'Killed', lock_by = NULL, done_at = $2, last_result = $3
             WHERE status = 'Running' AND attempts >= max_attempts
               AND lock_by IN (SELECT id FROM Workers WHERE last_seen < $1)
             RETURNING id, job_type, attempts",
        )
        .bind(cutoff)
        .bind(secs(wall_millis()))
        .bind(failure(DIED_EVERY_ATTEMPT))
        .fetch_all(&mut *tx)
        .await?;
        let back = sqlx::query(
            "UPDATE Jobs SET status = 'Pending', lock_by = NULL, lock_at = NULL, last_result = $2
             WHERE status = 'Running' AND lock_by IN (SELECT id FROM Workers WHERE last_seen < $1)",
        )
        .bind(cutoff)
        .bind(failure("its worker stopped answering; delivered again"))
        .execute(&mut *tx)
        .await?
        .rows_affected();
        sqlx::query(
            "DELETE FROM Workers WHERE last_seen < $1
               AND NOT EXISTS (SELECT 1 FROM Jobs WHERE Jobs.lock_by = Workers.id)",
        )
        .bind(cutoff)
        .execute(&mut *tx)
        .await?;
        let ttl = i64::from(self.ctx.settings.idempotency_ttl_days) * 86_400;
        sqlx::query("DELETE FROM Jobs WHERE status = 'Done' AND done_at < $1")
            .bind(secs(wall_millis()) - ttl)
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok(Recovered {
            jobs: dead.len() + back as usize,
            dead: dead
                .into_iter()
                .map(|(id, queue, attempts)| Orphan {
                    id,
                    queue,
                    attempts: attempts as u32,
                })
                .collect(),
        })
    }

    /// A worker leaving cleanly holds no job: its row goes.
    pub(super) async fn leased_to(&self, worker: &str) -> Result<Vec<Leased>, QueueError> {
        let rows: Vec<LeaseRow> = sqlx::query_as(sqlx::AssertSqlSafe(format!(
            "SELECT id, job_type, job, attempts, max_attempts, json_extract(metadata, '$.{TRACE_KEY}')
               FROM Jobs WHERE status = 'Running' AND lock_by = $1"
        )))
        .bind(worker)
        .fetch_all(&self.pool)
        .await?;
        Ok(rows
            .into_iter()
            .map(|(id, queue, payload, attempts, max, trace)| Leased {
                id,
                queue,
                payload: String::from_utf8_lossy(&payload).into_owned(),
                attempt: attempts as u32,
                max_attempts: max as u32,
                trace,
                receipt: String::new(),
            })
            .collect())
    }

    pub(super) async fn deregister(&self, worker: &str) -> Result<(), QueueError> {
        self.seen_now().remove(worker);
        sqlx::query(
            "DELETE FROM Workers WHERE id = $1
               AND NOT EXISTS (SELECT 1 FROM Jobs WHERE Jobs.lock_by = Workers.id)",
        )
        .bind(worker)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    pub(super) async fn oldest_due(
        &self,
        queues: &[&str],
    ) -> Result<Vec<(String, Option<i64>)>, QueueError> {
        if queues.is_empty() {
            return Ok(Vec::new());
        }
        let sql = format!(
            "SELECT job_type, MIN(run_at) * 1000 FROM Jobs
              WHERE status = 'Pending' AND run_at <= $1 AND job_type IN ({}) GROUP BY job_type",
            placeholders(2, queues.len())
        );
        let mut q = sqlx::query_as::<_, (String, Option<i64>)>(sqlx::AssertSqlSafe(sql))
            .bind(self.now_secs());
        for name in queues {
            q = q.bind(*name);
        }
        let rows: std::collections::HashMap<String, Option<i64>> =
            q.fetch_all(&self.pool).await?.into_iter().collect();
        Ok(queues
            .iter()
            .map(|n| (n.to_string(), rows.get(*n).copied().flatten()))
            .collect())
    }

    pub(super) async fn stats(&self, queues: &[&str]) -> Result<Vec<QueueStats>, QueueError> {
        if queues.is_empty() {
            return Ok(Vec::new());
        }
        let sql = format!(
            "SELECT job_type,
                    COALESCE(SUM(CASE WHEN status = 'Pending' AND run_at <= $1 THEN 1 ELSE 0 END), 0),
                    COALESCE(SUM(CASE WHEN status = 'Pending' AND run_at > $1 THEN 1 ELSE 0 END), 0),
                    COALESCE(SUM(CASE WHEN status = 'Running' THEN 1 ELSE 0 END), 0),
                    COALESCE(SUM(CASE WHEN status = 'Killed' THEN 1 ELSE 0 END), 0)
             FROM Jobs WHERE status IN ('Pending', 'Running', 'Killed') AND job_type IN ({})
             GROUP BY job_type",
            placeholders(2, queues.len())
        );
        let mut q = sqlx::query_as::<_, (String, i64, i64, i64, i64)>(sqlx::AssertSqlSafe(sql))
            .bind(self.now_secs());
        for name in queues {
            q = q.bind(*name);
        }
        let rows = q.fetch_all(&self.pool).await?;
        Ok(queues
            .iter()
            .map(|name| {
                let row = rows.iter().find(|r| r.0 == *name);
                let n =
                    |f: fn(&(String, i64, i64, i64, i64)) -> i64| row.map(f).unwrap_or(0) as u64;
                QueueStats {
                    queue: (*name).to_owned(),
                    ready: n(|r| r.1),
                    scheduled: n(|r| r.2),
                    running: n(|r| r.3),
                    dead: n(|r| r.4),
                }
            })
            .collect())
    }

    pub(super) async fn dead_letters(
        &self,
        queue: &str,
        limit: usize,
    ) -> Result<Vec<DeadLetter>, QueueError> {
        let rows: Vec<DeadRow> = sqlx::query_as(
            "SELECT id, job_type, job, attempts, json_extract(last_result, '$.Err') FROM Jobs
             WHERE job_type = $1 AND status = 'Killed' ORDER BY id LIMIT $2",
        )
        .bind(queue)
        .bind(limit as i64)
        .fetch_all(&self.pool)
        .await?;
        Ok(rows
            .into_iter()
            .map(|(id, queue, payload, attempts, reason)| DeadLetter {
                id,
                queue,
                payload: String::from_utf8_lossy(&payload).into_owned(),
                attempts: attempts as u32,
                reason: reason.unwrap_or_default(),
            })
            .collect())
    }

    /// Queue names the fleet does not know that hold jobs (rows another writer added).
    pub(super) async fn strays(&self) -> Result<Vec<QueueStats>, QueueError> {
        let names: Vec<(String,)> = sqlx::query_as(
            "SELECT DISTINCT job_type FROM Jobs WHERE status IN ('Pending', 'Running', 'Killed')",
        )
        .fetch_all(&self.pool)
        .await?;
        let strays: Vec<&str> = names
            .iter()
            .map(|(n,)| n.as_str())
            .filter(|n| !is_known(n))
            .collect();
        self.stats(&strays).await
    }

    pub(super) async fn next_due(&self, queues: &[&str]) -> Result<Option<i64>, QueueError> {
        if queues.is_empty() {
            return Ok(None);
        }
        let sql = format!(
            "SELECT MIN(run_at) * 1000 FROM Jobs WHERE status = 'Pending' AND job_type IN ({})",
            placeholders(1, queues.len())
        );
        let mut q = sqlx::query_as::<_, (Option<i64>,)>(sqlx::AssertSqlSafe(sql));
        for name in queues {
            q = q.bind(*name);
        }
        Ok(q.fetch_one(&self.pool).await?.0)
    }
}
