//! Pitches by the configured LLM writer, cached by their whole prompt, with the template
//! writer standing in whenever the model fails or breaks the rules.

use super::prompt::{prompt, validate};
use super::writer::{self, Brief, Channel, PitchDraft};
use crate::clients::llm::{self, Failure};
use crate::clients::provider;
use crate::{Ctx, JobError};

/// The four drafts for a prospect and who wrote them (`template` or the LLM's name).
pub async fn drafts(
    ctx: &Ctx,
    brief: &Brief<'_>,
    tone: &str,
    variant: &str,
) -> Result<(Vec<PitchDraft>, &'static str), JobError> {
    let rules = &ctx.settings.layers.pitch_generation;
    let cfg = &ctx.settings.providers.llm;
    let template = || {
        Channel::ALL
            .iter()
            .map(|c| writer::write(brief, *c, tone, variant))
            .collect::<Vec<_>>()
    };
    let Some(llm) = llm::adapter(cfg.writer) else {
        return Ok((template(), "template"));
    };
    let provider = llm.0;
    let p = prompt(brief, tone, variant, rules);
    // The same brief asked again within the cache's lifetime gets the same pitch.
    let key = format!(
        "pitch:{}:{}",
        provider.as_str(),
        cep_shared::ids::stable_id("brief", &[&p.system, &p.user])
    );
    let ttl = ctx.settings.engines.research.cache.pitch_seconds;
    if let Some(hit) = ctx.queue.cache_get(&key).await?
        && let Ok(drafts) = serde_json::from_str::<Vec<PitchDraft>>(&hit)
    {
        return Ok((drafts, provider.as_str()));
    }
    provider::take_budget(ctx, provider, "").await?;
    let result = match llm::ask(ctx, cfg, llm, &p).await {
        Ok(text) => validate(&text, tone, variant, rules).map_err(Failure::Invalid),
        Err(f) => Err(f),
    };
    if let Ok(drafts) = &result {
        ctx.queue
            .cache_put(&key, &serde_json::to_string(drafts)?, ttl)
            .await?;
    }
    match result {
        Ok(drafts) => Ok((drafts, provider.as_str())),
        Err(failure) => {
            tracing::warn!(writer = provider.as_str(), %failure, "pitch written by the template writer instead");
            cep_shared::metrics::get()
                .pitch_fallbacks
                .with_label_values(&[provider.as_str(), failure.label()])
                .inc();
            Ok((template(), "template"))
        }
    }
}
