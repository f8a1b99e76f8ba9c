//! The GBP score, lead class, revenue lost and opportunities of `business-rules.md`.

use super::directory::Business;
use cep_shared::config::{ProspectSource, ProspectingRules};
pub use cep_shared::signals::ProfileSignals;
pub use cep_shared::vocabulary::LeadClass;
use serde::{Deserialize, Serialize};

/// A profile's score over the signals known, and how much of the score they cover.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Scored {
    /// Points earned ÷ points of the known signals × 100, rounded.
    pub score: u32,
    /// Points of the known signals ÷ all the points, 0–1.
    pub coverage: f64,
}

pub fn gbp_score(s: &ProfileSignals, r: &ProspectingRules) -> Scored {
    use cep_shared::signals::Signal::*;
    let p = &r.score;
    let no_reviews_known = s.knows(Reviews) && s.reviews == 0;
    // Each item: whether its signal is known, whether it is earned, its points.
    let items = [
        (s.knows(Profile), s.has_profile, p.has_profile),
        (s.knows(Claimed), s.has_profile && s.claimed, p.claimed),
        (s.knows(Photos), s.photos > 0, p.has_photos),
        (s.knows(Photos), s.photos >= 10, p.ten_photos),
        (s.knows(Reviews), s.reviews > 0, p.has_reviews),
        (s.knows(Reviews), s.reviews >= 10, p.ten_reviews),
        (
            s.knows(Rating) || no_reviews_known,
            s.reviews > 0 && s.rating >= 4.0,
            p.rating_4,
        ),
        (s.knows(RecentPost), s.posted_last_30_days, p.recent_post),
        (s.knows(Services), s.services_listed, p.services),
        (s.knows(Hours), s.hours_listed, p.hours),
        (s.knows(Website), s.website_linked, p.website),
        (s.knows(Description), s.description, p.description),
        (
            s.knows(OwnerReplies) || no_reviews_known,
            s.reviews > 0 && s.owner_reply_share >= 0.5,
            p.owner_replies,
        ),
    ];
    let total: u32 = items.iter().map(|i| i.2).sum();
    let known: u32 = items.iter().filter(|i| i.0).map(|i| i.2).sum();
    let earned: u32 = items.iter().filter(|i| i.0 && i.1).map(|i| i.2).sum();
    Scored {
        score: if known == 0 {
            0
        } else {
            ((f64::from(earned) * 100.0 / f64::from(known)).round() as u32).min(100)
        },
        coverage: if total == 0 {
            0.0
        } else {
            f64::from(known) / f64::from(total)
        },
    }
}

/// The lead class of a scored profile: needs data below the minimum coverage, else by
/// its score.
pub fn classify(s: Scored, r: &ProspectingRules) -> LeadClass {
    if s.coverage < r.min_coverage {
        LeadClass::NeedsData
    } else {
        lead_class(s.score, r)
    }
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

/// Opportunities, in the order the rules give, from known signals only.
pub fn opportunities(s: &ProfileSignals) -> Vec<&'static str> {
    use cep_shared::signals::Signal::*;
    let mut out = Vec::new();
    if s.knows(Profile) && !s.has_profile {
        out.push("create the profile");
    } else if s.has_profile && s.knows(Claimed) && !s.claimed {
        out.push("claim the profile");
    }
    let mut add = |signal, missing: bool, text| {
        if s.knows(signal) && missing {
            out.push(text);
        }
    };
    add(Photos, s.photos < 10, "add more photos");
    add(Reviews, s.reviews < 10, "get more reviews");
    add(RecentPost, !s.posted_last_30_days, "start posting");
    add(Services, !s.services_listed, "list products and services");
    add(Hours, !s.hours_listed, "add opening hours");
    add(Website, !s.website_linked, "link the website");
    out
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Prospect {
    pub id: String,
    pub name: String,
    pub category: String,
    pub location: String,
    /// Over the known signals only.
    pub gbp_score: u32,
    /// Share of the score's points whose signals are known.
    pub coverage: f64,
    /// The signals no source told yet.
    pub unknown_signals: Vec<cep_shared::signals::Signal>,
    pub lead_class: LeadClass,
    /// Dollars a year; unknown while the prospect needs data.
    pub revenue_lost: Option<u64>,
    pub opportunities: Vec<String>,
}

/// Scores and ranks what a source found: hottest (lowest score) first, ties by id, and
/// those that need data last.
pub fn rank(found: Vec<Business>, ctx_rules: &ProspectingRules) -> Vec<(Business, Prospect)> {
    let mut ranked: Vec<(Business, Prospect)> = found
        .into_iter()
        .map(|b| {
            let scored = gbp_score(&b.signals, ctx_rules);
            let class = classify(scored, ctx_rules);
            let p = Prospect {
                id: b.id.clone(),
                name: b.name.clone(),
                category: b.category.clone(),
                location: b.location.clone(),
                gbp_score: scored.score,
                coverage: scored.coverage,
                unknown_signals: b.signals.unknown(),
                lead_class: class,
                revenue_lost: (class != LeadClass::NeedsData)
                    .then(|| revenue_lost(scored.score, ctx_rules)),
                opportunities: opportunities(&b.signals)
                    .into_iter()
                    .map(String::from)
                    .collect(),
            };
            (b, p)
        })
        .collect();
    // Classed prospects first, hottest first; those that need data after them.
    ranked.sort_by(|a, b| {
        let needs = |p: &Prospect| p.lead_class == LeadClass::NeedsData;
        needs(&a.1)
            .cmp(&needs(&b.1))
            .then_with(|| a.1.gbp_score.cmp(&b.1.gbp_score))
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
    use cep_shared::signals::Signal;

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
            known: None,
        }
    }

    fn scored(score: u32, coverage: f64) -> Scored {
        Scored { score, coverage }
    }

    #[test]
    fn a_complete_profile_scores_100_not_90() {
        let r = ProspectingRules::default();
        assert_eq!(gbp_score(&full(), &r), scored(100, 1.0));
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
        assert_eq!(gbp_score(&s, &r), scored(10, 1.0));
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
        assert_eq!(gbp_score(&s, &r), scored(35, 1.0));
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

    fn told(signals: &[Signal]) -> Option<std::collections::BTreeSet<Signal>> {
        Some(signals.iter().copied().collect())
    }

    #[test]
    fn an_unknown_signal_is_not_absent_the_score_covers_what_is_known() {
        use Signal::*;
        let r = ProspectingRules::default();
        // OpenStreetMap: nothing of the profile is known. Not "no profile, $250,000".
        let osm = ProfileSignals {
            known: told(&[]),
            ..ProfileSignals::default()
        };
        assert_eq!(gbp_score(&osm, &r), scored(0, 0.0));
        assert_eq!(classify(gbp_score(&osm, &r), &r), LeadClass::NeedsData);
        assert!(
            opportunities(&osm).is_empty(),
            "nothing known, nothing claimed"
        );
        // Places: profile 10, photos 15, reviews 15, rating 5, hours 5, website 10 = 60
        // known points; earned: profile 10, photos 10, reviews 15, rating 5, hours 5 =
        // 45 → 45 ÷ 60 = 75, coverage 0.60: cold, not "no recent posts".
        let places = ProfileSignals {
            has_profile: true,
            photos: 4,
            reviews: 14,
            rating: 4.5,
            hours_listed: true,
            known: told(&[Profile, Photos, Reviews, Rating, Hours, Website]),
            ..ProfileSignals::default()
        };
        assert_eq!(gbp_score(&places, &r), scored(75, 0.6));
        assert_eq!(classify(gbp_score(&places, &r), &r), LeadClass::Cold);
        assert_eq!(
            opportunities(&places),
            ["add more photos", "link the website"]
        );
        // Coverage just under the minimum: 45 of 100 points known (profile 10, photos
        // 15, reviews 15, hours 5; with 3 reviews their rating and replies are unknown).
        let thin = ProfileSignals {
            has_profile: true,
            known: told(&[Profile, Photos, Reviews, Hours]),
            photos: 12,
            reviews: 3,
            ..ProfileSignals::default()
        };
        let s = gbp_score(&thin, &r);
        assert_eq!(s.coverage, 0.45);
        assert_eq!(classify(s, &r), LeadClass::NeedsData);
        // A lookup that found no profile tells everything about it.
        let none = ProfileSignals {
            known: told(&[Profile]),
            ..ProfileSignals::default()
        };
        assert_eq!(gbp_score(&none, &r), scored(0, 1.0));
        assert_eq!(classify(gbp_score(&none, &r), &r), LeadClass::Hot);
    }
}
