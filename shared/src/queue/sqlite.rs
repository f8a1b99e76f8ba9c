//! The embedded queue: one SQLite table beside the store, so the laptop default needs
//! no server.

use super::{DeadLetter, Leased, NewJob, QueueContext, QueueError, QueueStats, Settle, new_job_id};
use crate::clock::wall_millis;
use sqlx::AnyPool;

#[derive(Debug, Clone)]
pub struct SqliteQueue {
    pub(super) pool: AnyPool,
    pub(super) ctx: QueueContext,
}

const SCHEMA: &[&str] = &[
    "CREATE TABLE IF NOT EXISTS queue_jobs (
        id            TEXT NOT NULL,
        queue         TEXT NOT NULL,
        dedup_key     TEXT,
        payload       TEXT NOT NULL,
        status        TEXT NOT NULL,     -- ready | running | done | dead
        run_at        BIGINT NOT NULL,   -- scheduling clock
        attempts      BIGINT NOT NULL,
        max_attempts  BIGINT NOT NULL,
        worker        TEXT,
        lease_until   BIGINT,            -- wall clock
        last_error    TEXT,
        enqueued_at   BIGINT NOT NULL,
        trace         TEXT,              -- the enqueuer's traceparent
        CONSTRAINT queue_jobs_pk PRIMARY KEY (id),
        CONSTRAINT queue_jobs_dedup_uq UNIQUE (dedup_key)
    )",
    "CREATE INDEX IF NOT EXISTS queue_jobs_due_idx ON queue_jobs (status, queue, run_at)",
    "CREATE INDEX IF NOT EXISTS queue_jobs_worker_idx ON queue_jobs (worker, status)",
    // Fleet-wide rate limits: calls used per provider window (see `limits.rs`).
    "CREATE TABLE IF NOT EXISTS rate_windows (
        key           TEXT NOT NULL,     -- provider:scope:per
        window_start  BIGINT NOT NULL,   -- scheduling clock
        used          BIGINT NOT NULL,
        CONSTRAINT rate_windows_pk PRIMARY KEY (key, window_start)
    )",
    // The research cache (see `cache.rs`).
    "CREATE TABLE IF NOT EXISTS cache_entries (
        key         TEXT NOT NULL,
        value       TEXT NOT NULL,
        expires_at  BIGINT NOT NULL,     -- scheduling clock
        CONSTRAINT cache_entries_pk PRIMARY KEY (key)
    )",
];

/// id, queue, payload, attempts, max_attempts, trace
type LeaseRow = (String, String, String, i64, i64, Option<String>);

fn placeholders(from: usize, n: usize) -> String {
    (from..from + n)
        .map(|i| format!("${i}"))
        .collect::<Vec<_>>()
        .join(", ")
}

impl SqliteQueue {
    pub async fn open(pool: AnyPool, ctx: QueueContext) -> Result<Self, QueueError> {
        for stmt in SCHEMA {
            sqlx::query(*stmt).execute(&pool).await?;
        }
        // Data directories from before traces were carried lack the column.
        let columns: Vec<(String,)> =
            sqlx::query_as("SELECT name FROM pragma_table_info('queue_jobs')")
                .fetch_all(&pool)
                .await?;
        if !columns.iter().any(|(c,)| c == "trace") {
            sqlx::query("ALTER TABLE queue_jobs ADD COLUMN trace TEXT")
                .execute(&pool)
                .await?;
        }
        Ok(Self { pool, ctx })
    }

    fn lease_until(&self) -> i64 {
        wall_millis() + self.ctx.settings.orphan_window().as_millis() as i64
    }

    pub(super) async fn push_many(&self, jobs: Vec<NewJob>) -> Result<usize, QueueError> {
        let mut tx = self.pool.begin().await?;
        let mut added = 0;
        for job in jobs {
            let max = job.max_attempts.unwrap_or(self.ctx.settings.max_attempts);
            let done = sqlx::query(
                "INSERT INTO queue_jobs (id, queue, dedup_key, payload, status, run_at, attempts, max_attempts, enqueued_at, trace)
                 VALUES ($1, $2, $3, $4, 'ready', $5, 0, $6, $7, $8) ON CONFLICT (dedup_key) DO NOTHING",
            )
            .bind(new_job_id())
            .bind(job.kind.queue())
            .bind(job.key)
            .bind(job.payload)
            .bind(job.run_at)
            .bind(i64::from(max))
            .bind(self.ctx.clock.now_millis())
            .bind(job.trace)
            .execute(&mut *tx)
            .await?;
            added += done.rows_affected() as usize;
        }
        tx.commit().await?;
        Ok(added)
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
        let sql = format!(
            "UPDATE queue_jobs SET status = 'running', worker = $1, lease_until = $2, attempts = attempts + 1
             WHERE id IN (SELECT id FROM queue_jobs WHERE status = 'ready' AND run_at <= $3 AND queue IN ({})
                          ORDER BY run_at, id LIMIT $4)
             RETURNING id, queue, payload, attempts, max_attempts, trace",
            placeholders(5, queues.len())
        );
        let mut q = sqlx::query_as::<_, LeaseRow>(sqlx::AssertSqlSafe(sql))
            .bind(worker)
            .bind(self.lease_until())
            .bind(self.ctx.clock.now_millis())
            .bind(limit as i64);
        for name in queues {
            q = q.bind(*name);
        }
        let mut rows = q.fetch_all(&self.pool).await?;
        rows.sort_by(|a, b| a.0.cmp(&b.0));
        Ok(rows
            .into_iter()
            .map(|(id, queue, payload, attempts, max, trace)| Leased {
                id,
                queue,
                payload,
                attempt: attempts as u32,
                max_attempts: max as u32,
                trace,
                receipt: String::new(),
            })
            .collect())
    }

    pub(super) async fn settle(
        &self,
        worker: &str,
        job: &Leased,
        how: Settle,
    ) -> Result<bool, QueueError> {
        let q = match how {
            Settle::Done => sqlx::query(
                "UPDATE queue_jobs SET status = 'done', worker = NULL, lease_until = NULL, payload = ''
                 WHERE id = $1 AND worker = $2 AND status = 'running'",
            )
            .bind(&job.id)
            .bind(worker),
            Settle::Retry { run_at, reason } => sqlx::query(
                "UPDATE queue_jobs SET status = 'ready', worker = NULL, lease_until = NULL, run_at = $3, last_error = $4
                 WHERE id = $1 AND worker = $2 AND status = 'running'",
            )
            .bind(&job.id)
            .bind(worker)
            .bind(run_at)
            .bind(reason),
            Settle::Dead { reason } => sqlx::query(
                "UPDATE queue_jobs SET status = 'dead', worker = NULL, lease_until = NULL, last_error = $3
                 WHERE id = $1 AND worker = $2 AND status = 'running'",
            )
            .bind(&job.id)
            .bind(worker)
            .bind(reason),
            Settle::Release { run_at } => sqlx::query(
                "UPDATE queue_jobs SET status = 'ready', worker = NULL, lease_until = NULL, run_at = $3,
                        attempts = attempts - 1
                 WHERE id = $1 AND worker = $2 AND status = 'running'",
            )
            .bind(&job.id)
            .bind(worker)
            .bind(run_at),
        };
        Ok(q.execute(&self.pool).await?.rows_affected() == 1)
    }

    /// Liveness is the lease itself: a heartbeat pushes the worker's leases forward.
    pub(super) async fn heartbeat(&self, worker: &str) -> Result<(), QueueError> {
        sqlx::query(
            "UPDATE queue_jobs SET lease_until = $1 WHERE worker = $2 AND status = 'running'",
        )
        .bind(self.lease_until())
        .bind(worker)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    pub(super) async fn recover_orphans(&self) -> Result<usize, QueueError> {
        let now = wall_millis();
        let dead = sqlx::query(
            "UPDATE queue_jobs SET status = 'dead', worker = NULL, lease_until = NULL,
                    last_error = 'its worker stopped answering during every attempt'
             WHERE status = 'running' AND lease_until < $1 AND attempts >= max_attempts",
        )
        .bind(now)
        .execute(&self.pool)
        .await?
        .rows_affected();
        let back = sqlx::query(
            "UPDATE queue_jobs SET status = 'ready', worker = NULL, lease_until = NULL,
                    last_error = 'its worker stopped answering; delivered again'
             WHERE status = 'running' AND lease_until < $1",
        )
        .bind(now)
        .execute(&self.pool)
        .await?
        .rows_affected();
        Ok((dead + back) as usize)
    }

    /// Nothing to do: a worker holds no state beyond its leases.
    pub(super) async fn deregister(&self, _worker: &str) -> Result<(), QueueError> {
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
            "SELECT queue, MIN(run_at) FROM queue_jobs
              WHERE status = 'ready' AND run_at <= $1 AND queue IN ({}) GROUP BY queue",
            placeholders(2, queues.len())
        );
        let mut q = sqlx::query_as::<_, (String, Option<i64>)>(sqlx::AssertSqlSafe(sql))
            .bind(self.ctx.clock.now_millis());
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
            "SELECT queue,
                    COALESCE(SUM(CASE WHEN status = 'ready' AND run_at <= $1 THEN 1 ELSE 0 END), 0),
                    COALESCE(SUM(CASE WHEN status = 'ready' AND run_at > $1 THEN 1 ELSE 0 END), 0),
                    COALESCE(SUM(CASE WHEN status = 'running' THEN 1 ELSE 0 END), 0),
                    COALESCE(SUM(CASE WHEN status = 'dead' THEN 1 ELSE 0 END), 0)
             FROM queue_jobs WHERE status IN ('ready', 'running', 'dead') AND queue IN ({})
             GROUP BY queue",
            placeholders(2, queues.len())
        );
        let mut q = sqlx::query_as::<_, (String, i64, i64, i64, i64)>(sqlx::AssertSqlSafe(sql))
            .bind(self.ctx.clock.now_millis());
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
        let rows: Vec<(String, String, String, i64, Option<String>)> = sqlx::query_as(
            "SELECT id, queue, payload, attempts, last_error FROM queue_jobs
             WHERE queue = $1 AND status = 'dead' ORDER BY id LIMIT $2",
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
                payload,
                attempts: attempts as u32,
                reason: reason.unwrap_or_default(),
            })
            .collect())
    }

    pub(super) async fn next_due(&self, queues: &[&str]) -> Result<Option<i64>, QueueError> {
        if queues.is_empty() {
            return Ok(None);
        }
        let sql = format!(
            "SELECT MIN(run_at) FROM queue_jobs WHERE status = 'ready' AND queue IN ({})",
            placeholders(1, queues.len())
        );
        let mut q = sqlx::query_as::<_, (Option<i64>,)>(sqlx::AssertSqlSafe(sql));
        for name in queues {
            q = q.bind(*name);
        }
        Ok(q.fetch_one(&self.pool).await?.0)
    }
}
