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
    /// 1 when the score was ever known: found by prospecting, or read from the profile.
    pub score_known: i64,
}

pub async fn client(ctx: &Ctx, client_id: &str) -> Result<Client, JobError> {
    sqlx::query_as(
        "SELECT c.business_type, c.gbp_score, c.canceled_at, c.gbp_location, c.business_name, p.website,
                CASE WHEN c.prospect_id IS NOT NULL
                       OR EXISTS (SELECT 1 FROM profile_observations o WHERE o.client_id = c.id)
                     THEN 1 ELSE 0 END AS score_known
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

/// What a run did, in one transaction: each optimization it proposes (at the score as
/// recorded: a proposal gains nothing), the calendar's new posts and the `optimized`
/// event. Returns the posts added.
pub async fn save_run(
    ctx: &Ctx,
    job: &OptimizationJob,
    proposed: &[&String],
    score: u32,
    posts: &[PlannedPost],
    event: serde_json::Value,
) -> Result<usize, JobError> {
    let now = ctx.now();
    let mut tx = ctx.store.pool().begin().await?;
    for kind in proposed {
        sqlx::query(
            "INSERT INTO optimizations (id, client_id, period, kind, score_before, score_after, created_at)
             VALUES ($1, $2, $3, $4, $5, $6, $7) ON CONFLICT (id) DO NOTHING",
        )
        .bind(stable_id("opt", &[&job.client_id, kind]))
        .bind(&job.client_id)
        .bind(&job.period)
        .bind(kind.as_str())
        .bind(i64::from(score))
        .bind(i64::from(score))
        .bind(now)
        .execute(&mut *tx)
        .await?;
    }
    let mut added = 0;
    for p in posts {
        let auto = ctx.settings.layers.optimization.auto_approve;
        let inserted = sqlx::query(
            "INSERT INTO posts (id, client_id, scheduled_for, topic, body, approved_at, approved_by)
             VALUES ($1, $2, $3, $4, $5, $6, $7) ON CONFLICT (id) DO NOTHING",
        )
        .bind(&p.id)
        .bind(&job.client_id)
        .bind(p.scheduled_for)
        .bind(p.topic)
        .bind(&p.body)
        .bind(auto.then_some(now))
        .bind(auto.then_some("auto_approve"))
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

/// A planned post, as the operator reviews it.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize, sqlx::FromRow)]
pub struct PostRow {
    pub id: String,
    pub client_id: String,
    pub business_name: String,
    pub scheduled_for: i64,
    pub topic: String,
    pub body: String,
    pub approved_at: Option<i64>,
    pub approved_by: Option<String>,
    pub published_at: Option<i64>,
}

/// Posts, soonest first: only those waiting for approval when `pending`; one client's
/// when given.
pub async fn posts(
    ctx: &Ctx,
    pending: bool,
    client_id: Option<&str>,
    limit: u32,
) -> Result<Vec<PostRow>, JobError> {
    Ok(sqlx::query_as(
        "SELECT p.id, p.client_id, c.business_name, p.scheduled_for, p.topic, p.body,
                p.approved_at, p.approved_by, p.published_at
           FROM posts p JOIN clients c ON c.id = p.client_id
          WHERE ($1 = 0 OR (p.approved_at IS NULL AND p.published_at IS NULL))
            AND ($2 IS NULL OR p.client_id = $2)
          ORDER BY p.scheduled_for, p.id LIMIT $3",
    )
    .bind(i64::from(pending))
    .bind(client_id)
    .bind(i64::from(limit))
    .fetch_all(ctx.store.pool())
    .await?)
}

/// The operator approves a post: it will be published when its date comes. Refused for
/// a post that does not exist; approving twice changes nothing.
pub async fn approve(ctx: &Ctx, post_id: &str, by: &str) -> Result<bool, JobError> {
    let done = sqlx::query(
        "UPDATE posts SET approved_at = $2, approved_by = $3 WHERE id = $1 AND approved_at IS NULL",
    )
    .bind(post_id)
    .bind(ctx.now())
    .bind(by)
    .execute(ctx.store.pool())
    .await?;
    if done.rows_affected() == 1 {
        return Ok(true);
    }
    let (n,): (i64,) = sqlx::query_as("SELECT COUNT(*) FROM posts WHERE id = $1")
        .bind(post_id)
        .fetch_one(ctx.store.pool())
        .await?;
    if n == 0 {
        return Err(JobError::Invalid(format!("no post `{post_id}`")));
    }
    Ok(false)
}

/// A profile as the weekly run observed it: stored with its gain over the client's last
/// observation, and the client's score set to it. Returns the gain (none for a first
/// observation).
pub async fn observed(
    ctx: &Ctx,
    client_id: &str,
    signals: &cep_shared::signals::ProfileSignals,
    score: u32,
    coverage: f64,
) -> Result<Option<i64>, JobError> {
    let now = ctx.now();
    let mut tx = ctx.store.pool().begin().await?;
    let last: Option<(i64,)> = sqlx::query_as(
        "SELECT score FROM profile_observations WHERE client_id = $1 AND observed_at < $2
          ORDER BY observed_at DESC, id LIMIT 1",
    )
    .bind(client_id)
    .bind(now)
    .fetch_optional(&mut *tx)
    .await?;
    let gain = last.map(|(before,)| i64::from(score) - before);
    sqlx::query(
        "INSERT INTO profile_observations (id, client_id, observed_at, score, coverage, gain, signals)
         VALUES ($1, $2, $3, $4, $5, $6, $7) ON CONFLICT (id) DO NOTHING",
    )
    .bind(stable_id("obs", &[client_id, &now.to_string()]))
    .bind(client_id)
    .bind(now)
    .bind(i64::from(score))
    .bind(coverage)
    .bind(gain)
    .bind(serde_json::to_string(signals)?)
    .execute(&mut *tx)
    .await?;
    sqlx::query("UPDATE clients SET gbp_score = $2 WHERE id = $1")
        .bind(client_id)
        .bind(i64::from(score))
        .execute(&mut *tx)
        .await?;
    tx.commit().await?;
    Ok(gain)
}

/// The measured score gains of a client's observations in `[from, to)`, summed, and the
/// first and last scores observed; `None` when nothing was observed.
pub async fn measured(
    ctx: &Ctx,
    client_id: &str,
    from: i64,
    to: i64,
) -> Result<Option<(Option<i64>, i64, i64)>, JobError> {
    let rows: Vec<(i64, Option<i64>)> = sqlx::query_as(
        "SELECT score, gain FROM profile_observations
          WHERE client_id = $1 AND observed_at >= $2 AND observed_at < $3 ORDER BY observed_at, id",
    )
    .bind(client_id)
    .bind(from)
    .bind(to)
    .fetch_all(ctx.store.pool())
    .await?;
    let (Some(first), Some(last)) = (rows.first(), rows.last()) else {
        return Ok(None);
    };
    let gains: Vec<i64> = rows.iter().filter_map(|r| r.1).collect();
    let gain = (!gains.is_empty()).then(|| gains.iter().sum());
    // Before: the score ahead of the period's first observation, when it had one.
    let before = first.0 - first.1.unwrap_or(0);
    Ok(Some((gain, before, last.0)))
}
