//! Layer 6: profile (GBP) optimization. A run proposes the default optimizations a
//! client does not have yet and keeps a rolling content calendar of posts, weeks ahead.
//! A client linked to its Business Profile gets the edits made there ([`gbp`]); only
//! edits the API accepted count as done. No score gain is claimed for proposals
//! (business rules, revision 2: the score is measured, not added).
//!
//! `rules` scores and plans the calendar, `store` keeps the run, `gbp` edits the real
//! profile through Google's APIs, `performance` reads what the profile did (views,
//! calls, clicks, reviews) for the client's reports.

pub mod gbp;
pub mod performance;
pub mod posts;
pub mod rules;
pub mod store;

pub use rules::{posts_per_week, visibility_gain};

use crate::{Ctx, JobError};
use cep_shared::jobs::OptimizationJob;
use gbp::GbpSync;
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct OptimizationResult {
    pub client_id: String,
    pub period: String,
    /// Edits the Business Profile API accepted (none without a linked profile, none in
    /// dry run).
    pub optimizations_completed: Vec<String>,
    /// What the client is due and nobody has done on its profile yet.
    pub optimizations_proposed: Vec<String>,
    /// The client's score as last recorded; unknown for a client sold outside the
    /// pipeline whose profile was never read.
    pub score_before: Option<u32>,
    /// The score the linked profile shows, read this run; unknown without one.
    pub score_after: Option<u32>,
    /// The measured change since the profile's last reading; unknown for the first.
    pub score_gain: Option<i64>,
    /// 0.8 × the measured gain; unknown without a measurement.
    pub visibility_gain: Option<f64>,
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
        optimizations_proposed: Vec::new(),
        score_before: (client.score_known == 1).then_some(before),
        score_after: None,
        score_gain: None,
        visibility_gain: None,
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
    let category = &client.business_type;
    let posts = rules::calendar(
        &job.client_id,
        &client.business_name,
        category,
        ctx.now(),
        r,
    );
    // Nothing is measured here: the event says so rather than claiming a gain.
    let event = serde_json::json!({
        "client": job.client_id, "proposed": todo.len(),
        "score_gain": null, "visibility_gain": null,
    });
    result.posts_scheduled = store::save_run(ctx, &job, &todo, before, &posts, event).await?;
    result.optimizations_proposed = todo.into_iter().cloned().collect();
    if let Some(location) = &client.gbp_location {
        // The score is what the profile shows, read before this run's edits (their
        // effect shows in next week's reading).
        let reading = gbp::observe(ctx, location).await?;
        // What the profile did since it was last read, for the client's reports.
        performance::pull(ctx, &job.client_id, location).await?;
        if let Some(reading) = &reading {
            performance::keep_reviews(ctx, &job.client_id, &reading.reviews()).await?;
            let prospecting = &ctx.settings.layers.prospecting;
            let signals = &reading.signals;
            let scored = crate::layers::prospecting::rules::gbp_score(signals, prospecting);
            let gain = store::observed(ctx, &job.client_id, signals, scored.score, scored.coverage)
                .await?;
            result.score_after = Some(scored.score);
            result.score_gain = gain;
            result.visibility_gain = gain.map(|g| visibility_gain(g, r));
            let event = serde_json::json!({
                "client": job.client_id, "observed": scored.score, "score_gain": gain,
                "visibility_gain": result.visibility_gain,
            });
            let run = cep_shared::ids::stable_id("optobs", &[&job.client_id, &job.period]);
            ctx.store
                .record_event(
                    ctx.store.pool(),
                    cep_shared::vocabulary::EventKind::Optimized,
                    &run,
                    event,
                    ctx.now(),
                )
                .await?;
        }
        let linked = gbp::Client {
            id: &job.client_id,
            business_name: &client.business_name,
            category,
            website: client.website.as_deref(),
            location,
        };
        let synced = gbp::sync(ctx, &linked, reading.as_ref()).await?;
        if !synced.dry_run {
            result.optimizations_completed = synced
                .profile_fields
                .iter()
                .map(|f| format!("profile field {f}"))
                .chain((synced.posts > 0).then(|| format!("posts published: {}", synced.posts)))
                .chain(
                    (synced.review_replies > 0)
                        .then(|| format!("reviews answered: {}", synced.review_replies)),
                )
                .collect();
        }
        result.gbp = Some(synced);
    }
    Ok(result)
}
