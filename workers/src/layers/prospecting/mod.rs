//! Layer 1: find local businesses, score their profiles, keep the qualified leads and
//! chain pitch generation for the hot and warm ones.

pub mod directory;
pub mod overpass;
pub mod places;
pub mod rules;

use crate::clients::provider;
use crate::layers::params;
use crate::{Ctx, JobError};
use cep_shared::JobKind;
use cep_shared::Layer;
use cep_shared::config::ProspectSource as ProspectSourceKind;
use cep_shared::ids::stable_id;
use cep_shared::jobs::{PitchJob, ProspectingJob};
use cep_shared::queue::NewJob;
use cep_shared::store::Event;
use directory::{Business, OfflineDirectory, ProspectSource};
use rules::LeadClass;
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Prospect {
    pub id: String,
    pub name: String,
    pub category: String,
    pub location: String,
    pub gbp_score: u32,
    pub lead_class: LeadClass,
    pub revenue_lost: u64,
    pub opportunities: Vec<String>,
}

/// The seed API's `ProspectSearchResult`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ProspectSearchResult {
    pub prospects: Vec<Prospect>,
    pub total_found: usize,
    pub hot_leads: usize,
    pub warm_leads: usize,
}

/// Businesses of `category` in `location` from the configured source.
async fn find(ctx: &Ctx, location: &str, category: &str) -> Result<Vec<Business>, JobError> {
    let source = ctx.settings.providers.prospects.source;
    let ttl = ctx.settings.engines.research.cache.prospect_search_seconds;
    let key = format!("prospects:{source:?}:{category}:{location}");
    let found = match source {
        ProspectSourceKind::Offline => return Ok(OfflineDirectory.search(location, category)),
        ProspectSourceKind::Overpass => {
            provider::cached(ctx, &key, ttl, overpass::search(ctx, location, category)).await
        }
        ProspectSourceKind::Places => {
            provider::cached(ctx, &key, ttl, places::search(ctx, location, category)).await
        }
    };
    found.map(|(businesses, _)| businesses)
}

/// Where a source's data came from, for research logs (and its attribution).
fn citation(ctx: &Ctx) -> &'static str {
    match ctx.settings.providers.prospects.source {
        ProspectSourceKind::Offline => "offline directory",
        ProspectSourceKind::Overpass => "© OpenStreetMap contributors (Overpass API)",
        ProspectSourceKind::Places => "Google Places API (New)",
    }
}

/// Scores and ranks what a source found: hottest (lowest score) first, ties by id.
pub fn rank(
    found: Vec<Business>,
    ctx_rules: &cep_shared::config::ProspectingRules,
) -> Vec<(Business, Prospect)> {
    let mut ranked: Vec<(Business, Prospect)> = found
        .into_iter()
        .map(|b| {
            let score = rules::gbp_score(&b.signals, ctx_rules);
            let p = Prospect {
                id: b.id.clone(),
                name: b.name.clone(),
                category: b.category.clone(),
                location: b.location.clone(),
                gbp_score: score,
                lead_class: rules::lead_class(score, ctx_rules),
                revenue_lost: rules::revenue_lost(score, ctx_rules),
                opportunities: rules::opportunities(&b.signals)
                    .into_iter()
                    .map(String::from)
                    .collect(),
            };
            (b, p)
        })
        .collect();
    ranked.sort_by(|a, b| {
        a.1.gbp_score
            .cmp(&b.1.gbp_score)
            .then_with(|| a.1.id.cmp(&b.1.id))
    });
    ranked
}

pub async fn handle(ctx: &Ctx, job: ProspectingJob) -> Result<ProspectSearchResult, JobError> {
    let rules = &ctx.settings.layers.prospecting;
    if job.location.trim().is_empty() || job.category.trim().is_empty() {
        return Err(JobError::Invalid(
            "location and category are required".into(),
        ));
    }
    // The feedback loop's category priorities scale a campaign's size; an explicit
    // `max_prospects` wins.
    let max = match job.max_prospects {
        Some(n) => n as usize,
        None => {
            let priorities: Option<std::collections::BTreeMap<String, f64>> =
                params::get(ctx, params::CATEGORY_PRIORITIES).await?;
            let p = priorities
                .and_then(|m| m.get(&job.category).copied())
                .unwrap_or(1.0);
            (f64::from(rules.max_prospects) * p).round().max(1.0) as usize
        }
    };
    let found = find(ctx, &job.location, &job.category).await?;
    let total_found = found.len();
    let pool = ctx.store.pool();

    // Businesses an earlier run already found are not prospects of this run; a rerun of
    // this same run finds the same ones again and updates them.
    let earlier: Vec<(String,)> = sqlx::query_as(
        "SELECT id FROM prospects WHERE location = $1 AND category = $2 AND first_period < $3",
    )
    .bind(&job.location)
    .bind(&job.category)
    .bind(&job.period)
    .fetch_all(pool)
    .await?;
    let earlier: std::collections::HashSet<String> = earlier.into_iter().map(|(id,)| id).collect();
    let ranked: Vec<_> = rank(found, rules)
        .into_iter()
        .filter(|(b, p)| !earlier.contains(&b.id) && p.lead_class != LeadClass::NotQualified)
        .take(max)
        .collect();

    let now = ctx.now();
    let mut tx = pool.begin().await?;
    let mut chained = Vec::new();
    for (b, p) in &ranked {
        sqlx::query(
            "INSERT INTO prospects (id, name, category, location, email, phone, website, utc_offset_minutes, signals,
                                    gbp_score, lead_class, revenue_lost, opportunities, first_period, status, updated_at)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, 'new', $15)
             ON CONFLICT (id) DO UPDATE SET signals = $9, gbp_score = $10, lead_class = $11, revenue_lost = $12,
                                            opportunities = $13, updated_at = $15",
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
        .bind(p.revenue_lost as i64)
        .bind(serde_json::to_string(&p.opportunities)?)
        .bind(&job.period)
        .bind(now)
        .execute(&mut *tx)
        .await?;
        ctx.store
            .record_event(
                &mut *tx,
                Event {
                    layer: Layer::Prospecting,
                    kind: "prospect_found",
                    subject: &b.id,
                    data: serde_json::json!({ "score": p.gbp_score, "class": p.lead_class }),
                    occurred_at: now,
                },
            )
            .await?;
        if p.lead_class.qualifies() {
            chained.push(
                NewJob::new(
                    JobKind::Layer(Layer::PitchGeneration),
                    &PitchJob {
                        prospect_id: b.id.clone(),
                    },
                    now,
                )
                .key(format!("pitch_generation:{}", b.id)),
            );
        }
    }
    let query = format!("{} in {}", job.category, job.location);
    sqlx::query(
        "INSERT INTO research_logs (id, layer, query, result, citations, created_at) VALUES ($1, $2, $3, $4, $5, $6)
         ON CONFLICT (id) DO NOTHING",
    )
    .bind(stable_id("rl", &["prospecting", &job.period, &query]))
    .bind(Layer::Prospecting.as_str())
    .bind(&query)
    .bind(serde_json::json!({ "total_found": total_found, "kept": ranked.len() }).to_string())
    .bind(serde_json::json!([citation(ctx)]).to_string())
    .bind(now)
    .execute(&mut *tx)
    .await?;
    tx.commit().await?;
    // Chained after the commit; the keys make a redelivered run enqueue nothing new.
    ctx.queue.push_many(chained).await?;

    let prospects: Vec<Prospect> = ranked.into_iter().map(|(_, p)| p).collect();
    Ok(ProspectSearchResult {
        hot_leads: prospects
            .iter()
            .filter(|p| p.lead_class == LeadClass::Hot)
            .count(),
        warm_leads: prospects
            .iter()
            .filter(|p| p.lead_class == LeadClass::Warm)
            .count(),
        total_found,
        prospects,
    })
}
