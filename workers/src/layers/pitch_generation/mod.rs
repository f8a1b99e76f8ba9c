//! Layer 2: a personalised pitch per channel for each hot or warm prospect, stored
//! before anything is sent, then the first outreach step chained.

pub mod llm;
pub mod prompt;
pub mod writer;

use crate::layers::params;
use crate::{Ctx, JobError};
use cep_shared::Layer;
use cep_shared::config::PitchRules;
use cep_shared::ids::stable_id;
use cep_shared::jobs::PitchJob;
use cep_shared::store::Event;
use serde::{Deserialize, Serialize};
use writer::{Brief, Channel};

use crate::layers::prospecting::rules::ProfileSignals;

/// Pain points, at most `max`, in the order of the rules.
pub fn pain_points(s: &ProfileSignals, revenue_lost: u64, max: usize) -> Vec<String> {
    let mut out = Vec::new();
    let mut add = |cond: bool, text: &str| {
        if cond {
            out.push(text.to_owned());
        }
    };
    add(!s.has_profile, "no Google Business Profile");
    add(s.has_profile && !s.claimed, "an unclaimed profile");
    add(s.reviews < 10, "fewer than 10 reviews");
    add(s.reviews > 0 && s.rating < 4.0, "a rating below 4.0");
    add(s.photos == 0, "no photos");
    add(!s.posted_last_30_days, "no recent posts");
    add(!s.hours_listed, "no opening hours");
    add(
        revenue_lost > 100_000,
        "an estimated six-figure yearly loss",
    );
    out.truncate(max);
    out
}

/// Confidence of one channel's pitch, capped at 1.
pub fn confidence(
    score: u32,
    opportunities: usize,
    revenue_lost: u64,
    words: usize,
    limit: u32,
    offers_audit: bool,
    r: &PitchRules,
) -> f64 {
    let mut c = r.confidence_start;
    c += if score < 30 {
        r.confidence_hot
    } else if score < 60 {
        r.confidence_warm
    } else {
        r.confidence_other
    };
    if opportunities >= 3 {
        c += r.confidence_many_opportunities;
    }
    if revenue_lost > 100_000 {
        c += r.confidence_big_loss;
    }
    if words as f64 >= r.length_bonus_share * f64::from(limit) {
        c += r.confidence_per_channel_length;
    }
    if offers_audit {
        c += r.confidence_per_channel_audit;
    }
    c.min(1.0)
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Pitch {
    pub id: String,
    pub channel: Channel,
    pub variant: String,
    pub subject: Option<String>,
    pub body: String,
    pub word_count: usize,
    pub confidence: f64,
}

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

/// Picks the variant for a prospect from the weights the feedback loop maintains;
/// deterministic per prospect so a rerun writes the same pitch.
async fn variant_for(ctx: &Ctx, prospect_id: &str) -> Result<String, JobError> {
    let variants = &ctx.settings.layers.pitch_generation.variants;
    let stored: Option<std::collections::BTreeMap<String, f64>> =
        params::get(ctx, params::PITCH_VARIANT_WEIGHTS).await?;
    let weights: Vec<f64> = match stored {
        Some(map) => variants
            .iter()
            .map(|v| map.get(v).copied().unwrap_or(1.0).max(0.0))
            .collect(),
        None => vec![1.0; variants.len()],
    };
    let total: f64 = weights.iter().sum();
    let mut pick = cep_shared::ids::SeededRng::for_decision(0, &["variant", prospect_id]).unit()
        * total.max(f64::MIN_POSITIVE);
    for (v, w) in variants.iter().zip(&weights) {
        if pick < *w {
            return Ok(v.clone());
        }
        pick -= w;
    }
    Ok(variants.last().cloned().unwrap_or_else(|| "a".into()))
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
        .take(MAX_FACTS)
        .map(|f| format!("{} ({})", f.fact, f.source))
        .collect())
}

/// Researched facts a pitch brief carries at most.
const MAX_FACTS: usize = 5;

/// The pitches a prospect already has, all four channels, or none.
async fn written(
    ctx: &Ctx,
    prospect_id: &str,
) -> Result<Option<Vec<writer::PitchDraft>>, JobError> {
    let rows: Vec<(String, String, String, Option<String>, String)> = sqlx::query_as(
        "SELECT channel, tone, variant, subject, body FROM pitches WHERE prospect_id = $1",
    )
    .bind(prospect_id)
    .fetch_all(ctx.store.pool())
    .await?;
    let mut drafts = Vec::new();
    for channel in Channel::ALL {
        let Some((_, tone, variant, subject, body)) = rows.iter().find(|r| r.0 == channel.as_str())
        else {
            return Ok(None);
        };
        drafts.push(writer::PitchDraft {
            channel,
            tone: tone.clone(),
            variant: variant.clone(),
            subject: subject.clone(),
            body: body.clone(),
        });
    }
    Ok(Some(drafts))
}

pub async fn handle(ctx: &Ctx, job: PitchJob) -> Result<PitchGenerationResult, JobError> {
    let rules = &ctx.settings.layers.pitch_generation;
    type Row = (
        String,
        String,
        String,
        String,
        i64,
        i64,
        String,
        Option<String>,
    );
    let row: Option<Row> = sqlx::query_as(
        "SELECT name, category, location, signals, gbp_score, revenue_lost, opportunities, website FROM prospects WHERE id = $1",
    )
    .bind(&job.prospect_id)
    .fetch_optional(ctx.store.pool())
    .await?;
    let Some((name, category, location, signals, score, revenue_lost, opportunities, site)) = row
    else {
        return Err(JobError::Invalid(format!(
            "no prospect `{}`",
            job.prospect_id
        )));
    };
    let mut signals: ProfileSignals = serde_json::from_str(&signals)?;
    // The testing engine audits the site once, before the first pitch.
    if ctx.settings.engines.testing.audit_websites && signals.website.is_none() && site.is_some() {
        signals.website = Some(
            crate::engines::audit::prospect(ctx, &job.prospect_id)
                .await?
                .signal,
        );
    }
    let opportunities: Vec<String> = serde_json::from_str(&opportunities)?;
    let pains = pain_points(&signals, revenue_lost as u64, rules.max_pain_points);
    let variant = variant_for(ctx, &job.prospect_id).await?;
    // A redelivered job keeps the pitches already written (and spends no LLM call).
    let (drafts, written_by) = match written(ctx, &job.prospect_id).await? {
        Some(drafts) => (drafts, "stored"),
        None => {
            // Google's terms keep its names out of our store: read it now.
            let name = match job.prospect_id.strip_prefix("places:") {
                Some(place) => crate::layers::prospecting::places::details(ctx, place).await?,
                None => name,
            };
            let website = signals.website.map_or_else(Vec::new, |w| {
                w.findings(ctx.settings.engines.testing.slow_load_ms)
            });
            let facts = researched_facts(ctx, &job.prospect_id).await?;
            let brief = Brief {
                business: &name,
                category: &category,
                location: &location,
                pain_points: &pains,
                revenue_lost: revenue_lost as u64,
                website: &website,
                facts: &facts,
            };
            llm::drafts(ctx, &brief, &rules.default_tone, &variant).await?
        }
    };
    let now = ctx.now();
    let mut pitches = Vec::new();
    let mut tx = ctx.store.pool().begin().await?;
    for draft in drafts {
        let channel = draft.channel;
        let variant = &draft.variant;
        let limit = channel.word_limit(rules);
        let body = writer::cut_to(&draft.body, limit as usize);
        let words = writer::word_count(&body);
        let conf = confidence(
            score as u32,
            opportunities.len(),
            revenue_lost as u64,
            words,
            limit,
            body.to_lowercase().contains("free audit"),
            rules,
        );
        let id = stable_id("pitch", &[&job.prospect_id, channel.as_str()]);
        sqlx::query(
            "INSERT INTO pitches (id, prospect_id, channel, tone, variant, subject, body, word_count, confidence, created_at, writer)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)
             ON CONFLICT (id) DO NOTHING",
        )
        .bind(&id)
        .bind(&job.prospect_id)
        .bind(channel.as_str())
        .bind(&draft.tone)
        .bind(variant)
        .bind(&draft.subject)
        .bind(&body)
        .bind(words as i64)
        .bind(conf)
        .bind(now)
        .bind(written_by)
        .execute(&mut *tx)
        .await?;
        pitches.push(Pitch {
            id,
            channel,
            variant: variant.clone(),
            subject: draft.subject,
            body,
            word_count: words,
            confidence: conf,
        });
    }
    sqlx::query(
        "UPDATE prospects SET status = 'pitched', updated_at = $2 WHERE id = $1 AND status = 'new'",
    )
    .bind(&job.prospect_id)
    .bind(now)
    .execute(&mut *tx)
    .await?;
    ctx.store
        .record_event(
            &mut *tx,
            Event {
                layer: Layer::PitchGeneration,
                kind: "pitched",
                subject: &job.prospect_id,
                data: serde_json::json!({ "variant": variant }),
                occurred_at: now,
            },
        )
        .await?;
    tx.commit().await?;
    // The sequence starts now; its first step waits for the send window by itself.
    ctx.queue
        .push(crate::layers::outreach::step_job(&job.prospect_id, 0, now))
        .await?;
    let avg = pitches.iter().map(|p| p.confidence).sum::<f64>() / pitches.len() as f64;
    Ok(PitchGenerationResult {
        pitches_generated: pitches.len(),
        avg_confidence: avg,
        writer: written_by.to_owned(),
        pitches,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pain_points_follow_the_rule_order_and_stop_at_three() {
        let s = ProfileSignals::default();
        assert_eq!(
            pain_points(&s, 250_000, 3),
            [
                "no Google Business Profile",
                "fewer than 10 reviews",
                "no photos"
            ]
        );
    }

    #[test]
    fn a_low_rating_counts_only_when_there_are_reviews() {
        let no_reviews = ProfileSignals {
            has_profile: true,
            claimed: true,
            photos: 3,
            posted_last_30_days: true,
            hours_listed: true,
            ..Default::default()
        };
        assert!(
            !pain_points(&no_reviews, 0, 8)
                .iter()
                .any(|p| p.contains("rating"))
        );
        let low = ProfileSignals {
            reviews: 12,
            rating: 3.5,
            ..no_reviews
        };
        assert_eq!(pain_points(&low, 0, 8), ["a rating below 4.0"]);
    }

    #[test]
    fn confidence_worked_example_and_cap() {
        let r = PitchRules::default();
        // 0.5 + 0.2 (warm) + 0.1 (≥3 opportunities) + 0.05 (length) + 0.05 (audit) = 0.9
        let c = confidence(45, 3, 100_000, 130, 150, true, &r);
        assert!((c - 0.9).abs() < 1e-9);
        // everything: 0.5 + 0.3 + 0.1 + 0.1 + 0.05 + 0.05 = 1.1 → capped
        assert_eq!(confidence(10, 5, 250_000, 150, 150, true, &r), 1.0);
        // short text without an audit offer earns no channel bonus
        assert!((confidence(70, 1, 25_000, 20, 150, false, &r) - 0.6).abs() < 1e-9);
    }

    #[test]
    fn every_channel_fits_its_word_limit_and_offers_an_audit() {
        let r = PitchRules::default();
        let pains = vec!["no photos".to_string(), "no recent posts".to_string()];
        let brief = Brief {
            business: "Oak Family Dental",
            category: "dental",
            location: "Miami, FL",
            pain_points: &pains,
            revenue_lost: 250_000,
            website: &[],
            facts: &[],
        };
        for tone in ["professional", "casual", "direct", "consultative"] {
            for ch in Channel::ALL {
                let d = writer::write(&brief, ch, tone, "a");
                let body = writer::cut_to(&d.body, ch.word_limit(&r) as usize);
                assert!(writer::word_count(&body) <= ch.word_limit(&r) as usize);
                assert!(
                    body.to_lowercase().contains("free audit"),
                    "{ch:?} {tone}: {body}"
                );
            }
        }
    }
}
