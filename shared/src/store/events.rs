//! Writes shared by every layer: business events and job outcomes.

use super::{Store, StoreError};
use crate::layer::JobKind;
use crate::vocabulary::EventKind;

impl Store {
    /// Records one business fact a container's ratios count: `kind` of `subject` at
    /// `at`, with `data`. The id is derived from the fact, so recording it twice is
    /// harmless; returns whether it was new.
    pub async fn record_event<'e, E>(
        &self,
        exec: E,
        kind: EventKind,
        subject: &str,
        data: serde_json::Value,
        at: i64,
    ) -> Result<bool, StoreError>
    where
        E: sqlx::Executor<'e, Database = sqlx::Any>,
    {
        let layer = kind.layer();
        let container = layer.container().map(|c| c.as_str()).unwrap_or("meta");
        let id = crate::ids::stable_id("ev", &[layer.as_str(), kind.as_str(), subject]);
        let done = sqlx::query(
            "INSERT INTO events (id, container, layer, kind, subject, data, occurred_at)
             VALUES ($1, $2, $3, $4, $5, $6, $7) ON CONFLICT (id) DO NOTHING",
        )
        .bind(id)
        .bind(container)
        .bind(layer.as_str())
        .bind(kind.as_str())
        .bind(subject)
        .bind(data.to_string())
        .bind(at)
        .execute(exec)
        .await?;
        Ok(done.rows_affected() == 1)
    }

    /// Counts events of `kind` in `[from, to)`.
    pub async fn count_events(
        &self,
        kind: EventKind,
        from: i64,
        to: i64,
    ) -> Result<i64, StoreError> {
        let layer = kind.layer();
        let container = layer.container().map(|c| c.as_str()).unwrap_or("meta");
        let (n,): (i64,) = sqlx::query_as(
            "SELECT COUNT(*) FROM events WHERE container = $1 AND kind = $2 AND layer = $3
               AND occurred_at >= $4 AND occurred_at < $5",
        )
        .bind(container)
        .bind(kind.as_str())
        .bind(layer.as_str())
        .bind(from)
        .bind(to)
        .fetch_one(&self.pool)
        .await?;
        Ok(n)
    }

    /// Records how a job ended, once per job.
    pub async fn record_outcome(
        &self,
        job_id: &str,
        kind: JobKind,
        succeeded: bool,
        attempts: u32,
        error: Option<&str>,
        finished_at: i64,
    ) -> Result<(), StoreError> {
        let container = kind.layer().and_then(|l| l.container()).map(|c| c.as_str());
        sqlx::query(
            "INSERT INTO job_outcomes (job_id, queue, container, outcome, attempts, error, finished_at)
             VALUES ($1, $2, $3, $4, $5, $6, $7) ON CONFLICT (job_id) DO NOTHING",
        )
        .bind(job_id)
        .bind(kind.queue())
        .bind(container)
        .bind(if succeeded { "succeeded" } else { "failed" })
        .bind(i64::from(attempts))
        .bind(error)
        .bind(finished_at)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    /// `(failed, ended)` jobs of a container's layers in `[from, to)`.
    pub async fn outcome_counts(
        &self,
        container: crate::layer::Container,
        from: i64,
        to: i64,
    ) -> Result<(i64, i64), StoreError> {
        let (failed, ended): (i64, i64) = sqlx::query_as(
            "SELECT COALESCE(SUM(CASE WHEN outcome = 'failed' THEN 1 ELSE 0 END), 0), COUNT(*)
               FROM job_outcomes WHERE container = $1 AND finished_at >= $2 AND finished_at < $3",
        )
        .bind(container.as_str())
        .bind(from)
        .bind(to)
        .fetch_one(&self.pool)
        .await?;
        Ok((failed, ended))
    }
}
