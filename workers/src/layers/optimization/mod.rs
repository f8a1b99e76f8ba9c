//! Layer 6: profile (GBP) optimization. A run completes the default optimizations a
//! client does not have yet (+5 points each, visibility 0.8 × the gain) and keeps a
//! rolling content calendar of posts, weeks ahead. A client linked to its Business
//! Profile gets the edits made there too ([`gbp`]).
//!
//! `rules` scores and plans the calendar, `store` keeps the run, `gbp` edits the real
//! profile through Google's APIs.

pub mod gbp;
pub mod rules;
pub mod store;

pub use rules::{posts_per_week, score_after, visibility_gain};

use crate::{Ctx, JobError};
use cep_shared::jobs::OptimizationJob;
use gbp::GbpSync;
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct OptimizationResult {
    pub client_id: String,
    pub period: String,
    pub optimizations_completed: Vec<String>,
    pub score_before: u32,
    pub score_after: u32,
    pub visibility_gain: f64,
    pub posts_scheduled: usize,
    pub reason: Option<String>,
    /// The edits on the client's Business Profile, when it is linked.
    pub gbp: Option<GbpSync>,
}

pub async fn handle(ctx: &Ctx, job: OptimizationJob) -> Result<OptimizationResult, JobError> {
    let r = &ctx.settings.layers.optimization;
    let client = store::client(ctx, &job.client_id).await?;
    let before = client.gbp_score.clamp(0, 100) as u32;
    let mut result = OptimizationResult {
        client_id: job.client_id.clone(),
        period: job.period.clone(),
        optimizations_completed: Vec::new(),
        score_before: before,
        score_after: before,
        visibility_gain: 0.0,
        posts_scheduled: 0,
        reason: None,
        gbp: None,
    };
    if client.canceled_at.is_some() {
        result.reason = Some("the client has canceled".into());
        return Ok(result);
    }
    let done = store::done(ctx, &job.client_id).await?;
    let todo = rules::todo(&done, r);
    let after = score_after(before, todo.len() as u32, r);
    let gain = after - before;
    let category = &client.business_type;
    let posts = rules::calendar(&job.client_id, category, ctx.now(), r);
    let event = serde_json::json!({
        "client": job.client_id, "completed": todo.len(),
        "score_gain": gain, "visibility_gain": visibility_gain(gain, r),
    });
    result.posts_scheduled =
        store::save_run(ctx, &job, &todo, (before, after), &posts, event).await?;
    result.optimizations_completed = todo.into_iter().cloned().collect();
    result.score_after = after;
    result.visibility_gain = visibility_gain(gain, r);
    if let Some(location) = &client.gbp_location {
        let linked = gbp::Client {
            id: &job.client_id,
            business_name: &client.business_name,
            category,
            website: client.website.as_deref(),
            location,
        };
        result.gbp = Some(gbp::sync(ctx, &linked).await?);
    }
    Ok(result)
}
