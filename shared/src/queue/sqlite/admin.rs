//! The operator's actions on the embedded queue: dead letters (`Killed` rows) made
//! `Pending` again with no attempts used, or deleted; the paused queues as rows of
//! `paused_queues`.

use super::{SqliteQueue, secs};
use crate::queue::QueueError;
use crate::queue::admin::{Found, MAX_FOUND, MAX_PICKED, MAX_WORKERS, Pick, Search, WorkerSeen};
use std::collections::BTreeSet;

impl SqliteQueue {
    /// The ids of `queue`'s dead letters that `pick` takes.
    async fn picked(&self, queue: &str, pick: Pick<'_>) -> Result<Vec<String>, QueueError> {
        if let Pick::Id(id) = pick {
            return Ok(vec![id.to_owned()]);
        }
        let rows: Vec<(String, Vec<u8>, Option<String>)> = sqlx::query_as(
            "SELECT id, job, json_extract(last_result, '$.Err') FROM Jobs
              WHERE job_type = $1 AND status = 'Killed' ORDER BY id",
        )
        .bind(queue)
        .fetch_all(&self.pool)
        .await?;
        Ok(rows
            .into_iter()
            .filter(|(id, payload, reason)| {
                pick.takes(
                    id,
                    &String::from_utf8_lossy(payload),
                    reason.as_deref().unwrap_or_default(),
                )
            })
            .take(MAX_PICKED)
            .map(|(id, _, _)| id)
            .collect())
    }

    pub(in crate::queue) async fn retry_dead(
        &self,
        queue: &str,
        pick: Pick<'_>,
    ) -> Result<usize, QueueError> {
        let ids = self.picked(queue, pick).await?;
        let now = secs(self.ctx.clock.now_millis());
        let mut tx = self.pool.begin().await?;
        let mut moved = 0;
        for id in &ids {
            let r = sqlx::query(
                "UPDATE Jobs SET status = 'Pending', attempts = 0, run_at = $3, lock_by = NULL,
                        lock_at = NULL, done_at = NULL, last_result = NULL
                  WHERE id = $1 AND job_type = $2 AND status = 'Killed'",
            )
            .bind(id)
            .bind(queue)
            .bind(now)
            .execute(&mut *tx)
            .await?;
            moved += r.rows_affected() as usize;
        }
        tx.commit().await?;
        Ok(moved)
    }

    pub(in crate::queue) async fn discard_dead(
        &self,
        queue: &str,
        pick: Pick<'_>,
    ) -> Result<usize, QueueError> {
        let ids = self.picked(queue, pick).await?;
        let mut tx = self.pool.begin().await?;
        let mut gone = 0;
        for id in &ids {
            let r = sqlx::query(
                "DELETE FROM Jobs WHERE id = $1 AND job_type = $2 AND status = 'Killed'",
            )
            .bind(id)
            .bind(queue)
            .execute(&mut *tx)
            .await?;
            gone += r.rows_affected() as usize;
        }
        tx.commit().await?;
        Ok(gone)
    }

    pub(in crate::queue) async fn set_paused(
        &self,
        queue: &str,
        paused: bool,
    ) -> Result<bool, QueueError> {
        let r = if paused {
            sqlx::query(
                "INSERT INTO paused_queues (queue, paused_at) VALUES ($1, $2) ON CONFLICT (queue) DO NOTHING",
            )
            .bind(queue)
            .bind(self.ctx.clock.now_millis())
            .execute(&self.pool)
            .await?
        } else {
            sqlx::query("DELETE FROM paused_queues WHERE queue = $1")
                .bind(queue)
                .execute(&self.pool)
                .await?
        };
        Ok(r.rows_affected() == 1)
    }

    pub(in crate::queue) async fn paused(&self) -> Result<BTreeSet<String>, QueueError> {
        let rows: Vec<(String,)> = sqlx::query_as("SELECT queue FROM paused_queues")
            .fetch_all(&self.pool)
            .await?;
        Ok(rows.into_iter().map(|(q,)| q).collect())
    }
}

impl SqliteQueue {
    pub(in crate::queue) async fn workers(&self) -> Result<Vec<WorkerSeen>, QueueError> {
        let rows: Vec<(String, i64, i64)> = sqlx::query_as(
            "SELECT w.id, w.last_seen,
                    (SELECT COUNT(*) FROM Jobs j WHERE j.lock_by = w.id AND j.status = 'Running')
               FROM Workers w ORDER BY w.last_seen DESC, w.id LIMIT $1",
        )
        .bind(MAX_WORKERS as i64)
        .fetch_all(&self.pool)
        .await?;
        Ok(rows
            .into_iter()
            .map(|(name, seen, n)| WorkerSeen {
                name,
                last_seen: seen * 1000,
                in_flight: n as u64,
            })
            .collect())
    }
}

impl SqliteQueue {
    pub(in crate::queue) async fn find(&self, text: &str) -> Result<Search, QueueError> {
        let now = secs(self.ctx.clock.now_millis());
        let rows: Vec<(String, String, String, Vec<u8>, i64, i64)> = sqlx::query_as(
            "SELECT id, job_type, status, job, attempts, run_at FROM Jobs
              WHERE status IN ('Pending', 'Running', 'Killed')
                AND (id = $1 OR instr(CAST(job AS TEXT), $1) > 0)
              ORDER BY id LIMIT $2",
        )
        .bind(text)
        .bind(MAX_FOUND as i64)
        .fetch_all(&self.pool)
        .await?;
        let found = rows
            .into_iter()
            .map(|(id, queue, status, job, attempts, run_at)| Found {
                id,
                queue,
                state: match status.as_str() {
                    "Running" => "running",
                    "Killed" => "dead",
                    _ if run_at > now => "scheduled",
                    _ => "ready",
                },
                attempts: attempts as u32,
                payload: String::from_utf8_lossy(&job).into_owned(),
            })
            .collect();
        Ok(Search {
            found,
            complete: true,
        })
    }
}
