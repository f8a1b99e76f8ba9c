//! Layer 1: find local businesses, score their profiles, keep the qualified leads and
//! chain pitch generation for the hot and warm ones.
//!
//! `rules` scores and ranks, `store` keeps what a run found; the sources are the offline
//! `directory`, `overpass` (OpenStreetMap) and `places` (Google Places API).

pub mod directory;
pub mod overpass;
pub mod places;
pub mod rules;
pub mod store;

pub use rules::{Prospect, rank};

use crate::clients::provider;
use crate::layers::params;
use crate::{Ctx, JobError};
use cep_shared::config::ProspectSource as Source;
use cep_shared::jobs::{PitchJob, ProspectingJob};
use cep_shared::queue::NewJob;
use directory::{Business, OfflineDirectory, ProspectSource};
use rules::LeadClass;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// The seed API's `ProspectSearchResult`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ProspectSearchResult {
    pub prospects: Vec<Prospect>,
    pub total_found: usize,
    pub hot_leads: usize,
    pub warm_leads: usize,
}

pub async fn handle(ctx: &Ctx, job: ProspectingJob) -> Result<ProspectSearchResult, JobError> {
    let rules = &ctx.settings.layers.prospecting;
    if job.location.trim().is_empty() || job.category.trim().is_empty() {
        return Err(JobError::Invalid(
            "location and category are required".into(),
        ));
    }
    let priorities: Option<BTreeMap<String, f64>> = match job.max_prospects {
        Some(_) => None,
        None => params::get(ctx, params::CATEGORY_PRIORITIES).await?,
    };
    let priority = priorities.and_then(|m| m.get(&job.category).copied());
    let max = rules::campaign_size(job.max_prospects, priority, rules);
    let mut found = find(ctx, &job.location, &job.category).await?;
    enrich(ctx, &mut found, max).await;
    let total_found = found.len();

    // Businesses an earlier run already found are not prospects of this run; a rerun of
    // this same run finds the same ones again and updates them.
    let earlier = store::found_earlier(ctx, &job).await?;
    let kept: Vec<_> = rank(found, rules)
        .into_iter()
        .filter(|(b, p)| !earlier.contains(&b.id) && p.lead_class != LeadClass::NotQualified)
        .take(max)
        .collect();
    let source = ctx.settings.providers.prospects.source;
    store::save(ctx, &job, &kept, total_found, rules::citation(source)).await?;
    // Chained after the commit; the keys make a redelivered run enqueue nothing new.
    let now = ctx.now();
    let chained = kept
        .iter()
        .filter(|(_, p)| p.lead_class.qualifies())
        .map(|(b, _)| {
            let pitch = PitchJob {
                prospect_id: b.id.clone(),
            };
            NewJob::of(&pitch, now)
        })
        .collect();
    ctx.queue.push_many(chained).await?;

    let prospects: Vec<Prospect> = kept.into_iter().map(|(_, p)| p).collect();
    let count = |class| prospects.iter().filter(|p| p.lead_class == class).count();
    Ok(ProspectSearchResult {
        hot_leads: count(LeadClass::Hot),
        warm_leads: count(LeadClass::Warm),
        total_found,
        prospects,
    })
}

/// Fills in what the source did not tell, for at most `max` businesses that need data:
/// a Places lookup by name and address (when a Places key is set; cached, under the
/// fleet-wide Places limit). A lookup that fails leaves the rest as they are: they stay
/// "needs data" and a later run tries again.
async fn enrich(ctx: &Ctx, found: &mut [Business], max: usize) {
    let rules = &ctx.settings.layers.prospecting;
    if ctx.secrets.places_api_key.is_none() {
        return;
    }
    let ttl = ctx.settings.engines.research.cache.prospect_search_seconds;
    let mut needing: Vec<&mut Business> = found
        .iter_mut()
        .filter(|b| rules::gbp_score(&b.signals, rules).coverage < rules.min_coverage)
        .collect();
    needing.sort_by(|a, b| a.id.cmp(&b.id));
    for b in needing.into_iter().take(max) {
        let key = format!("places-lookup:{}:{}", b.name, b.location);
        match provider::cached(ctx, &key, ttl, places::lookup(ctx, &b.name, &b.location)).await {
            Ok((told, _)) => b.signals = b.signals.merged(&told),
            Err(e) => {
                tracing::warn!(error = %e, business = %b.id, "places lookup failed; the rest stay needs data");
                break;
            }
        }
    }
}

/// Businesses of `category` in `location` from the configured source.
async fn find(ctx: &Ctx, location: &str, category: &str) -> Result<Vec<Business>, JobError> {
    let source = ctx.settings.providers.prospects.source;
    let ttl = ctx.settings.engines.research.cache.prospect_search_seconds;
    let key = format!("prospects:{source:?}:{category}:{location}");
    let found = match source {
        Source::Offline => return Ok(OfflineDirectory.search(location, category)),
        Source::Overpass => {
            provider::cached(ctx, &key, ttl, overpass::search(ctx, location, category)).await
        }
        Source::Places => {
            provider::cached(ctx, &key, ttl, places::search(ctx, location, category)).await
        }
    };
    found.map(|(businesses, _)| businesses)
}
