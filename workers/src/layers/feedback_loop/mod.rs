//! Layer 9: the feedback loop. It measures layers 1–6 against their targets over the
//! last 30 days, turns every metric well below target into an insight, the strongest
//! insights into prioritised optimizations, and applies those to the parameters layers
//! 1–3 read (pitch variant weights, send hours, category priorities). Every change is
//! recorded with its before and after values and can be rolled back.
//!
//! `rules` decides, `measure` reads what happened, `apply` moves the parameters,
//! `store` keeps the insights.

pub mod apply;
pub mod measure;
pub mod rules;
pub mod store;

pub use rules::{
    Insight, Measure, Optimization, bottleneck, clearly_better, insight, optimizations, reweight,
};

use crate::{Ctx, JobError};
use cep_shared::clock::DAY;
use cep_shared::jobs::{AggregationJob, FeedbackJob};
use cep_shared::queue::NewJob;
use serde::{Deserialize, Serialize};
use store::InsightRow;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FeedbackResult {
    pub period: String,
    pub measures: Vec<Measure>,
    pub insights: Vec<Insight>,
    pub bottleneck: Option<String>,
    pub low_coherence: bool,
    pub optimizations: Vec<Optimization>,
    /// Ids of the parameter changes applied (each can be rolled back).
    pub changes: Vec<String>,
}

pub async fn handle(ctx: &Ctx, job: FeedbackJob) -> Result<FeedbackResult, JobError> {
    let r = &ctx.settings.layers.feedback_loop;
    let now = ctx.now();
    let from = now - 30 * DAY;
    let counts = measure::counts(ctx, from, now).await?;
    let vis = ctx.settings.layers.optimization.visibility_per_point;
    let measures = rules::measures(&counts, from, now, vis, &ctx.settings.targets);
    let mut insights: Vec<Insight> = measures.iter().filter_map(|m| insight(m, r)).collect();
    insights.sort_by(|a, b| {
        b.impact
            .total_cmp(&a.impact)
            .then_with(|| a.metric.cmp(&b.metric))
    });
    let neck = bottleneck(&measures, r.bottleneck_below).map(|m| m.metric.clone());
    let latest = store::latest_phi(ctx).await?;
    let phi = latest.map(|(p, _)| p);
    // Low coherence is judged on a complete Φ_sync only, never a partial one.
    let low_coherence = latest.is_some_and(|(p, complete)| {
        complete && cep_shared::phi::round6(p) < cep_shared::phi::round6(r.low_coherence_below)
    });
    let opts = optimizations(&insights, phi, r);
    let rows = insight_rows(
        &insights,
        neck.as_deref(),
        low_coherence.then_some(phi),
        &opts,
        r,
    )?;
    store::save_insights(ctx, &job.period, &rows).await?;
    let mut changes = Vec::new();
    if r.auto_apply {
        for o in &opts {
            if let Some(id) = apply::apply(ctx, o, &job.period, from, now).await? {
                changes.push(id);
            }
        }
    }
    // Feedback loop → Φ_sync aggregation of the month.
    ctx.queue
        .push(NewJob::of(&AggregationJob::new(&job.period), now))
        .await?;
    Ok(FeedbackResult {
        period: job.period,
        measures,
        insights,
        bottleneck: neck,
        low_coherence,
        optimizations: opts,
        changes,
    })
}

/// The `insights` rows of a run: each insight, the bottleneck, low coherence (with the
/// Φ_sync that was low) and each optimization.
fn insight_rows(
    insights: &[Insight],
    bottleneck: Option<&str>,
    low_phi: Option<Option<f64>>,
    opts: &[Optimization],
    r: &cep_shared::config::FeedbackRules,
) -> Result<Vec<InsightRow>, JobError> {
    let mut rows: Vec<InsightRow> = insights
        .iter()
        .map(|i| InsightRow {
            subject: i.layer.as_str().to_owned(),
            metric: i.metric.clone(),
            value: Some(i.value),
            target: Some(i.target),
            details: serde_json::to_value(i).unwrap_or_default(),
        })
        .collect();
    if let Some(m) = bottleneck {
        rows.push(InsightRow {
            subject: "sales".into(),
            metric: format!("bottleneck:{m}"),
            value: None,
            target: Some(r.bottleneck_below),
            details: serde_json::json!({ "bottleneck": m }),
        });
    }
    if let Some(phi) = low_phi {
        rows.push(InsightRow {
            subject: "meta".into(),
            metric: "low_coherence".into(),
            value: phi,
            target: Some(r.low_coherence_below),
            details: serde_json::json!({ "phi_sync": phi }),
        });
    }
    for o in opts {
        rows.push(InsightRow {
            subject: o.layer.as_str().to_owned(),
            metric: format!("optimization:{}", o.metric),
            value: None,
            target: None,
            details: serde_json::to_value(o)?,
        });
    }
    Ok(rows)
}
