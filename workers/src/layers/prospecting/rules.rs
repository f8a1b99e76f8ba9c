//! The GBP score, lead class, revenue lost and opportunities of `business-rules.md`.

use cep_shared::config::ProspectingRules;
pub use cep_shared::signals::ProfileSignals;
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum LeadClass {
    Hot,
    Warm,
    Cold,
    NotQualified,
}

impl LeadClass {
    pub fn as_str(self) -> &'static str {
        match self {
            LeadClass::Hot => "hot",
            LeadClass::Warm => "warm",
            LeadClass::Cold => "cold",
            LeadClass::NotQualified => "not_qualified",
        }
    }

    /// Only hot and warm leads go on to pitching.
    pub fn qualifies(self) -> bool {
        matches!(self, LeadClass::Hot | LeadClass::Warm)
    }
}

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
}
