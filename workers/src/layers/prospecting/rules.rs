//! The GBP score, lead class, revenue lost and opportunities of `business-rules.md`.

use super::directory::Business;
use cep_shared::config::{ProspectSource, ProspectingRules};
pub use cep_shared::signals::ProfileSignals;
pub use cep_shared::vocabulary::LeadClass;
use serde::{Deserialize, Serialize};

pub fn gbp_score(s: &ProfileSignals, r: &ProspectingRules) -> u32 {
    let p = &r.score;
    let mut score = 0;
    let mut add = |cond: bool, pts: u32| {
        if cond {
            score += pts;
        }
    };
    add(s.has_profile, p.has_profile);
    add(s.has_profile && s.claimed, p.claimed);
    add(s.photos > 0, p.has_photos);
    add(s.photos >= 10, p.ten_photos);
    add(s.reviews > 0, p.has_reviews);
    add(s.reviews >= 10, p.ten_reviews);
    add(s.reviews > 0 && s.rating >= 4.0, p.rating_4);
    add(s.posted_last_30_days, p.recent_post);
    add(s.services_listed, p.services);
    add(s.hours_listed, p.hours);
    add(s.website_linked, p.website);
    add(s.description, p.description);
    add(s.reviews > 0 && s.owner_reply_share >= 0.5, p.owner_replies);
    score.min(100)
}

pub fn lead_class(score: u32, r: &ProspectingRules) -> LeadClass {
    if score < r.hot_below {
        LeadClass::Hot
    } else if score < r.warm_below {
        LeadClass::Warm
    } else if score < r.cold_below {
        LeadClass::Cold
    } else {
        LeadClass::NotQualified
    }
}

/// Estimated yearly revenue lost, in dollars.
pub fn revenue_lost(score: u32, r: &ProspectingRules) -> u64 {
    if score < r.hot_below {
        r.revenue_lost_hot
    } else if score < r.warm_below {
        r.revenue_lost_warm
    } else {
        r.revenue_lost_other
    }
}

/// Opportunities, in the order the rules give.
pub fn opportunities(s: &ProfileSignals) -> Vec<&'static str> {
    let mut out = Vec::new();
    if !s.has_profile {
        out.push("create the profile");
    } else if !s.claimed {
        out.push("claim the profile");
    }
    if s.photos < 10 {
        out.push("add more photos");
    }
    if s.reviews < 10 {
        out.push("get more reviews");
    }
    if !s.posted_last_30_days {
        out.push("start posting");
    }
    if !s.services_listed {
        out.push("list products and services");
    }
    if !s.hours_listed {
        out.push("add opening hours");
    }
    if !s.website_linked {
        out.push("link the website");
    }
    out
}

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

/// Scores and ranks what a source found: hottest (lowest score) first, ties by id.
pub fn rank(found: Vec<Business>, ctx_rules: &ProspectingRules) -> Vec<(Business, Prospect)> {
    let mut ranked: Vec<(Business, Prospect)> = found
        .into_iter()
        .map(|b| {
            let score = gbp_score(&b.signals, ctx_rules);
            let p = Prospect {
                id: b.id.clone(),
                name: b.name.clone(),
                category: b.category.clone(),
                location: b.location.clone(),
                gbp_score: score,
                lead_class: lead_class(score, ctx_rules),
                revenue_lost: revenue_lost(score, ctx_rules),
                opportunities: opportunities(&b.signals)
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

/// How many prospects a campaign keeps: an explicit `max_prospects` wins, else the
/// configured number scaled by the feedback loop's priority for the category.
pub fn campaign_size(explicit: Option<u32>, priority: Option<f64>, r: &ProspectingRules) -> usize {
    match explicit {
        Some(n) => n as usize,
        None => (f64::from(r.max_prospects) * priority.unwrap_or(1.0))
            .round()
            .max(1.0) as usize,
    }
}

/// Where a source's data came from, for research logs (and its attribution).
pub fn citation(source: ProspectSource) -> &'static str {
    match source {
        ProspectSource::Offline => "offline directory",
        ProspectSource::Overpass => "© OpenStreetMap contributors (Overpass API)",
        ProspectSource::Places => "Google Places API (New)",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn full() -> ProfileSignals {
        ProfileSignals {
            has_profile: true,
            claimed: true,
            photos: 25,
            reviews: 40,
            rating: 4.6,
            posted_last_30_days: true,
            services_listed: true,
            hours_listed: true,
            website_linked: true,
            description: true,
            owner_reply_share: 0.7,
            website: None,
        }
    }

    #[test]
    fn a_complete_profile_scores_100_not_90() {
        let r = ProspectingRules::default();
        assert_eq!(gbp_score(&full(), &r), 100);
        assert_eq!(lead_class(100, &r), LeadClass::NotQualified);
        assert!(opportunities(&full()).is_empty());
    }

    #[test]
    fn no_profile_scores_only_what_lives_outside_it() {
        let r = ProspectingRules::default();
        let s = ProfileSignals {
            website_linked: true,
            ..ProfileSignals::default()
        };
        assert_eq!(gbp_score(&s, &r), 10);
        assert_eq!(lead_class(10, &r), LeadClass::Hot);
        assert_eq!(revenue_lost(10, &r), 250_000);
        assert_eq!(
            opportunities(&s),
            [
                "create the profile",
                "add more photos",
                "get more reviews",
                "start posting",
                "list products and services",
                "add opening hours"
            ]
        );
    }

    #[test]
    fn worked_example_of_an_unclaimed_profile_with_few_reviews() {
        let r = ProspectingRules::default();
        let s = ProfileSignals {
            has_profile: true,
            claimed: false,
            photos: 4,
            reviews: 6,
            rating: 3.8,
            hours_listed: true,
            ..ProfileSignals::default()
        };
        // profile 10 + photos 10 + reviews 10 + hours 5 = 35
        assert_eq!(gbp_score(&s, &r), 35);
        assert_eq!(lead_class(35, &r), LeadClass::Warm);
        assert_eq!(revenue_lost(35, &r), 100_000);
        assert_eq!(opportunities(&s)[0], "claim the profile");
    }

    #[test]
    fn class_boundaries_are_strictly_below() {
        let r = ProspectingRules::default();
        assert_eq!(lead_class(29, &r), LeadClass::Hot);
        assert_eq!(lead_class(30, &r), LeadClass::Warm);
        assert_eq!(lead_class(59, &r), LeadClass::Warm);
        assert_eq!(lead_class(60, &r), LeadClass::Cold);
        assert_eq!(lead_class(79, &r), LeadClass::Cold);
        assert_eq!(lead_class(80, &r), LeadClass::NotQualified);
        assert_eq!(revenue_lost(60, &r), 25_000);
        assert!(LeadClass::Warm.qualifies() && !LeadClass::Cold.qualifies());
    }

    #[test]
    fn a_campaign_keeps_the_explicit_number_else_the_configured_one_scaled_by_priority() {
        let r = ProspectingRules::default();
        assert_eq!(campaign_size(Some(3), Some(2.0), &r), 3);
        assert_eq!(campaign_size(None, None, &r), r.max_prospects as usize);
        assert_eq!(
            campaign_size(None, Some(0.5), &r),
            (f64::from(r.max_prospects) * 0.5).round() as usize
        );
        assert_eq!(campaign_size(None, Some(0.0), &r), 1);
    }
}
