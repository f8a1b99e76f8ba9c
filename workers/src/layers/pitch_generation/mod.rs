//! Layer 2: a personalised pitch per channel for each hot or warm prospect, stored
//! before anything is sent, then the first outreach step chained.
//!
//! `rules` picks the pain points, the variant and each pitch's confidence; `writer` is
//! the template writer, `prompt` and `llm` the LLM writer's prompt, validation and call;
//! `store` reads the prospect and keeps the pitches.

pub mod llm;
pub mod prompt;
pub mod rules;
pub mod store;
pub mod writer;

pub use rules::{confidence, pain_points};

use crate::layers::params;
use crate::{Ctx, JobError};
use cep_shared::ids::stable_id;
use cep_shared::jobs::{OutreachJob, PitchJob};
use cep_shared::queue::NewJob;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
pub use writer::Pitch;
use writer::{Brief, PitchDraft};

/// The seed API's `PitchGenerationResult`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PitchGenerationResult {
    pub pitches: Vec<Pitch>,
    pub pitches_generated: usize,
    pub avg_confidence: f64,
    /// `template`, the LLM that wrote them, or `stored` when they existed already.
    #[serde(default)]
    pub writer: String,
}

pub async fn handle(ctx: &Ctx, job: PitchJob) -> Result<PitchGenerationResult, JobError> {
    let rules = &ctx.settings.layers.pitch_generation;
    let mut p = store::prospect(ctx, &job.prospect_id).await?;
    // The testing engine audits the site once, before the first pitch.
    if ctx.settings.engines.testing.audit_websites
        && p.signals.website.is_none()
        && p.website.is_some()
    {
        let audit = crate::engines::audit::prospect(ctx, &job.prospect_id).await?;
        p.signals.website = Some(audit.signal);
    }
    let pains = pain_points(&p.signals, p.revenue_lost, rules.max_pain_points);
    let weights: Option<BTreeMap<String, f64>> =
        params::get(ctx, params::PITCH_VARIANT_WEIGHTS).await?;
    let variant = rules::pick_variant(&rules.variants, weights.as_ref(), &job.prospect_id);
    // A redelivered job keeps the pitches already written (and spends no LLM call).
    let (drafts, written_by) = match store::written(ctx, &job.prospect_id).await? {
        Some(drafts) => (drafts, "stored"),
        None => write(ctx, &job.prospect_id, &p, &pains, &variant).await?,
    };
    let pitches: Vec<(Pitch, String)> = drafts
        .into_iter()
        .map(|d| finish(&job.prospect_id, &p, d, rules))
        .collect();
    store::save(ctx, &job.prospect_id, &pitches, written_by, &variant).await?;
    // The sequence starts now; its first step waits for the send window by itself.
    let first = OutreachJob {
        prospect_id: job.prospect_id.clone(),
        step: 0,
    };
    ctx.queue.push(NewJob::of(&first, ctx.now())).await?;
    let pitches: Vec<Pitch> = pitches.into_iter().map(|(p, _)| p).collect();
    let avg = pitches.iter().map(|p| p.confidence).sum::<f64>() / pitches.len() as f64;
    Ok(PitchGenerationResult {
        pitches_generated: pitches.len(),
        avg_confidence: avg,
        writer: written_by.to_owned(),
        pitches,
    })
}

/// New drafts by the configured writer, from a brief of what we know.
async fn write(
    ctx: &Ctx,
    prospect_id: &str,
    p: &store::Prospect,
    pains: &[String],
    variant: &str,
) -> Result<(Vec<PitchDraft>, &'static str), JobError> {
    // Google's terms keep its names out of our store: read it now.
    let name = match prospect_id.strip_prefix("places:") {
        Some(place) => crate::layers::prospecting::places::details(ctx, place).await?,
        None => p.name.clone(),
    };
    let website = p.signals.website.map_or_else(Vec::new, |w| {
        w.findings(ctx.settings.engines.testing.slow_load_ms)
    });
    let facts = researched_facts(ctx, prospect_id).await?;
    let brief = Brief {
        business: &name,
        category: &p.category,
        location: &p.location,
        pain_points: pains,
        revenue_lost: p.revenue_lost,
        website: &website,
        facts: &facts,
    };
    let tone = &ctx.settings.layers.pitch_generation.default_tone;
    llm::drafts(ctx, &brief, tone, variant).await
}

/// A draft cut to its channel's word limit and scored; with its tone.
fn finish(
    prospect_id: &str,
    p: &store::Prospect,
    draft: PitchDraft,
    rules: &cep_shared::config::PitchRules,
) -> (Pitch, String) {
    let limit = rules.word_limits.get(draft.channel);
    let body = writer::cut_to(&draft.body, limit as usize);
    let words = writer::word_count(&body);
    let conf = confidence(
        p.gbp_score,
        p.opportunities.len(),
        p.revenue_lost,
        words,
        limit,
        body.to_lowercase().contains("free audit"),
        rules,
    );
    let pitch = Pitch {
        id: stable_id("pitch", &[prospect_id, draft.channel.as_str()]),
        channel: draft.channel,
        variant: draft.variant,
        subject: draft.subject,
        body,
        word_count: words,
        confidence: conf,
    };
    (pitch, draft.tone)
}

/// Facts about the prospect with their sources, when `engines.research.before_pitch`
/// asks for research (cached, so a redelivered job does not search again).
async fn researched_facts(ctx: &Ctx, prospect_id: &str) -> Result<Vec<String>, JobError> {
    if !ctx.settings.engines.research.researches_before_pitch() {
        return Ok(Vec::new());
    }
    let research = crate::engines::research::prospect(ctx, prospect_id).await?;
    Ok(research
        .findings
        .iter()
        .take(rules::MAX_FACTS)
        .map(|f| format!("{} ({})", f.fact, f.source))
        .collect())
}
