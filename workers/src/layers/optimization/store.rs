//! Optimization's SQL: the client a run works on, what it has done already, and a
//! run's optimizations, score, posts and event in one transaction.

use super::rules::PlannedPost;
use crate::{Ctx, JobError};
use cep_shared::ids::stable_id;
use cep_shared::jobs::OptimizationJob;
use cep_shared::vocabulary::EventKind;
use std::collections::HashSet;

/// The client as a run needs it; `website` from the prospect it was won from.
#[derive(sqlx::FromRow)]
pub struct Client {
    pub business_type: String,
    pub gbp_score: i64,
    pub canceled_at: Option<i64>,
    pub gbp_location: Option<String>,
    pub business_name: String,
    pub website: Option<String>,
}

pub async fn client(ctx: &Ctx, client_id: &str) -> Result<Client, JobError> {
    sqlx::query_as(
        "SELECT c.business_type, c.gbp_score, c.canceled_at, c.gbp_location, c.business_name, p.website
           FROM clients c LEFT JOIN prospects p ON p.id = c.prospect_id WHERE c.id = $1",
    )
    .bind(client_id)
    .fetch_optional(ctx.store.pool())
    .await?
    .ok_or_else(|| JobError::Invalid(format!("no client `{client_id}`")))
}

/// The optimizations a client has had.
pub async fn done(ctx: &Ctx, client_id: &str) -> Result<HashSet<String>, JobError> {
    let done: Vec<(String,)> =
        sqlx::query_as("SELECT kind FROM optimizations WHERE client_id = $1")
            .bind(client_id)
            .fetch_all(ctx.store.pool())
            .await?;
    Ok(done.into_iter().map(|(k,)| k).collect())
}

/// What a run did, in one transaction: each optimization, the client's new score, the
/// calendar's new posts and the `optimized` event. Returns the posts added.
pub async fn save_run(
    ctx: &Ctx,
    job: &OptimizationJob,
    completed: &[&String],
    (before, after): (u32, u32),
    posts: &[PlannedPost],
    event: serde_json::Value,
) -> Result<usize, JobError> {
    let now = ctx.now();
    let mut tx = ctx.store.pool().begin().await?;
    for kind in completed {
        sqlx::query(
            "INSERT INTO optimizations (id, client_id, period, kind, score_before, score_after, created_at)
             VALUES ($1, $2, $3, $4, $5, $6, $7) ON CONFLICT (id) DO NOTHING",
        )
        .bind(stable_id("opt", &[&job.client_id, kind]))
        .bind(&job.client_id)
        .bind(&job.period)
        .bind(kind.as_str())
        .bind(i64::from(before))
        .bind(i64::from(after))
        .bind(now)
        .execute(&mut *tx)
        .await?;
    }
    sqlx::query("UPDATE clients SET gbp_score = $2 WHERE id = $1")
        .bind(&job.client_id)
        .bind(i64::from(after))
        .execute(&mut *tx)
        .await?;
    let mut added = 0;
    for p in posts {
        let inserted = sqlx::query(
            "INSERT INTO posts (id, client_id, scheduled_for, topic, body) VALUES ($1, $2, $3, $4, $5)
             ON CONFLICT (id) DO NOTHING",
        )
        .bind(&p.id)
        .bind(&job.client_id)
        .bind(p.scheduled_for)
        .bind(p.topic)
        .bind(&p.body)
        .execute(&mut *tx)
        .await?;
        added += inserted.rows_affected() as usize;
    }
    let run = stable_id("optrun", &[&job.client_id, &job.period]);
    ctx.store
        .record_event(&mut *tx, EventKind::Optimized, &run, event, now)
        .await?;
    tx.commit().await?;
    Ok(added)
}
