//! Pitch generation's pure rules: the pain points a brief names, each pitch's
//! confidence, and the variant a prospect gets from the feedback loop's weights.

use cep_shared::config::PitchRules;
use cep_shared::ids::SeededRng;
use cep_shared::signals::ProfileSignals;
use std::collections::BTreeMap;

/// Researched facts a pitch brief carries at most.
pub const MAX_FACTS: usize = 5;

/// Pain points, at most `max`, in the order of the rules.
pub fn pain_points(s: &ProfileSignals, revenue_lost: u64, max: usize) -> Vec<String> {
    use cep_shared::signals::Signal::*;
    let mut out = Vec::new();
    let mut add = |cond: bool, text: &str| {
        if cond {
            out.push(text.to_owned());
        }
    };
    // Known signals only: what no source told is not a pain point.
    let k = |signal| s.knows(signal);
    add(k(Profile) && !s.has_profile, "no Google Business Profile");
    add(
        s.has_profile && k(Claimed) && !s.claimed,
        "an unclaimed profile",
    );
    add(k(Reviews) && s.reviews < 10, "fewer than 10 reviews");
    add(
        k(Rating) && s.reviews > 0 && s.rating < 4.0,
        "a rating below 4.0",
    );
    add(k(Photos) && s.photos == 0, "no photos");
    add(k(RecentPost) && !s.posted_last_30_days, "no recent posts");
    add(k(Hours) && !s.hours_listed, "no opening hours");
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

/// The variant for a prospect, drawn by the feedback loop's weights (1 each when it set
/// none); deterministic per prospect so a rerun writes the same pitch.
pub fn pick_variant(
    variants: &[String],
    weights: Option<&BTreeMap<String, f64>>,
    prospect_id: &str,
) -> String {
    let weights: Vec<f64> = match weights {
        Some(map) => variants
            .iter()
            .map(|v| map.get(v).copied().unwrap_or(1.0).max(0.0))
            .collect(),
        None => vec![1.0; variants.len()],
    };
    let total: f64 = weights.iter().sum();
    let mut pick =
        SeededRng::for_decision(0, &["variant", prospect_id]).unit() * total.max(f64::MIN_POSITIVE);
    for (v, w) in variants.iter().zip(&weights) {
        if pick < *w {
            return v.clone();
        }
        pick -= w;
    }
    variants.last().cloned().unwrap_or_else(|| "a".into())
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
    fn a_variant_weighted_zero_is_never_picked_and_the_pick_is_stable() {
        let variants = vec!["a".to_string(), "b".to_string()];
        let only_b = BTreeMap::from([("a".to_string(), 0.0), ("b".to_string(), 1.0)]);
        for p in ["p1", "p2", "p3", "p4"] {
            assert_eq!(pick_variant(&variants, Some(&only_b), p), "b");
            assert_eq!(
                pick_variant(&variants, None, p),
                pick_variant(&variants, None, p)
            );
        }
    }

    #[test]
    fn an_unknown_signal_is_never_a_pain_point() {
        use cep_shared::signals::Signal;
        // Places told the profile, its photos, reviews and hours; not its posts or claim.
        let s = ProfileSignals {
            has_profile: true,
            photos: 0,
            reviews: 2,
            rating: 4.5,
            known: Some(
                [
                    Signal::Profile,
                    Signal::Photos,
                    Signal::Reviews,
                    Signal::Hours,
                ]
                .into(),
            ),
            ..ProfileSignals::default()
        };
        assert_eq!(
            pain_points(&s, 100_000, 8),
            ["fewer than 10 reviews", "no photos", "no opening hours"],
            "no unclaimed profile, rating or posts claimed without knowing them"
        );
    }
}
