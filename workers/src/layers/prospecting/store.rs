//! Prospecting's SQL: the businesses earlier runs found, and a run's prospects, their
//! events and its research log, in one transaction.

use super::directory::Business;
use super::rules::Prospect;
use crate::{Ctx, JobError};
use cep_shared::Layer;
use cep_shared::ids::stable_id;
use cep_shared::jobs::ProspectingJob;
use cep_shared::vocabulary::{EventKind, ProspectStatus};
use std::collections::HashSet;

/// Businesses of the job's campaign an earlier period already found.
pub async fn found_earlier(ctx: &Ctx, job: &ProspectingJob) -> Result<HashSet<String>, JobError> {
    let earlier: Vec<(String,)> = sqlx::query_as(
        "SELECT id FROM prospects WHERE location = $1 AND category = $2 AND first_period < $3",
    )
    .bind(&job.location)
    .bind(&job.category)
    .bind(&job.period)
    .fetch_all(ctx.store.pool())
    .await?;
    Ok(earlier.into_iter().map(|(id,)| id).collect())
}

/// What one run found: each prospect (a rerun of the same run updates its scores), its
/// `prospect_found` event, and the run's research log with the source's citation.
pub async fn save(
    ctx: &Ctx,
    job: &ProspectingJob,
    kept: &[(Business, Prospect)],
    total_found: usize,
    citation: &str,
) -> Result<(), JobError> {
    let now = ctx.now();
    let mut tx = ctx.store.pool().begin().await?;
    for (b, p) in kept {
        sqlx::query(
            "INSERT INTO prospects (id, name, category, location, email, phone, website, utc_offset_minutes, signals,
                                    gbp_score, lead_class, revenue_lost, opportunities, first_period, status, updated_at, coverage)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $16, $15, $17)
             ON CONFLICT (id) DO UPDATE SET signals = $9, gbp_score = $10, lead_class = $11, revenue_lost = $12,
                                            opportunities = $13, updated_at = $15, coverage = $17",
        )
        .bind(&b.id)
        .bind(&b.name)
        .bind(&b.category)
        .bind(&b.location)
        .bind(&b.email)
        .bind(&b.phone)
        .bind(&b.website)
        .bind(i64::from(b.utc_offset_minutes))
        .bind(serde_json::to_string(&b.signals)?)
        .bind(i64::from(p.gbp_score))
        .bind(p.lead_class.as_str())
        // 0 while it needs data: nothing reads it before the prospect is classed.
        .bind(p.revenue_lost.unwrap_or(0) as i64)
        .bind(serde_json::to_string(&p.opportunities)?)
        .bind(&job.period)
        .bind(now)
        .bind(ProspectStatus::New.as_str())
        .bind(p.coverage)
        .execute(&mut *tx)
        .await?;
        let data = serde_json::json!({
            "score": p.gbp_score, "coverage": p.coverage, "class": p.lead_class,
        });
        ctx.store
            .record_event(&mut *tx, EventKind::ProspectFound, &b.id, data, now)
            .await?;
    }
    let query = format!("{} in {}", job.category, job.location);
    sqlx::query(
        "INSERT INTO research_logs (id, layer, query, result, citations, created_at) VALUES ($1, $2, $3, $4, $5, $6)
         ON CONFLICT (id) DO NOTHING",
    )
    .bind(stable_id("rl", &["prospecting", &job.period, &query]))
    .bind(Layer::Prospecting.as_str())
    .bind(&query)
    .bind(serde_json::json!({ "total_found": total_found, "kept": kept.len() }).to_string())
    .bind(serde_json::json!([citation]).to_string())
    .bind(now)
    .execute(&mut *tx)
    .await?;
    tx.commit().await?;
    Ok(())
}
