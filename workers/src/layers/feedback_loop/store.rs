//! The feedback loop's writes and the one figure it reads back: the latest Φ_sync, and
//! the period's insights, bottleneck, low coherence and optimizations as `insights` rows.

use crate::{Ctx, JobError};
use cep_shared::ids::stable_id;

/// The latest Φ_sync the aggregator recorded, when it knew one, and whether it was
/// complete (every container had data).
pub async fn latest_phi(ctx: &Ctx) -> Result<Option<(f64, bool)>, JobError> {
    type Row = (Option<f64>, Option<f64>, Option<f64>, Option<f64>);
    let row: Option<Row> = sqlx::query_as(
        "SELECT phi_sync, sales_health, operations_health, finance_health
           FROM coherence_metrics ORDER BY computed_at DESC LIMIT 1",
    )
    .fetch_optional(ctx.store.pool())
    .await?;
    Ok(row.and_then(|(phi, s, o, f)| phi.map(|p| (p, s.is_some() && o.is_some() && f.is_some()))))
}

/// One row of `insights`: its subject, metric, value, target and details.
pub struct InsightRow {
    pub subject: String,
    pub metric: String,
    pub value: Option<f64>,
    pub target: Option<f64>,
    pub details: serde_json::Value,
}

/// The period's rows, each once (its id is derived from period, subject and metric).
pub async fn save_insights(ctx: &Ctx, period: &str, rows: &[InsightRow]) -> Result<(), JobError> {
    let now = ctx.now();
    for r in rows {
        sqlx::query(
            "INSERT INTO insights (id, source, period, subject, metric, value, target, details, created_at)
             VALUES ($1, 'feedback_loop', $2, $3, $4, $5, $6, $7, $8) ON CONFLICT (id) DO NOTHING",
        )
        .bind(stable_id("ins", &["feedback_loop", period, &r.subject, &r.metric]))
        .bind(period)
        .bind(&r.subject)
        .bind(&r.metric)
        .bind(r.value)
        .bind(r.target)
        .bind(r.details.to_string())
        .bind(now)
        .execute(ctx.store.pool())
        .await?;
    }
    Ok(())
}
