//! The feedback loop's pure rules: measures against targets, the insights and
//! optimizations they give, the bottleneck, and how parameters move (reply rates
//! compared with a two-proportion test; a send window narrowed on its weaker side;
//! category priorities by reply rate).

use crate::layers::outreach::SendHours;
use cep_shared::Layer;
use cep_shared::clock::DAY;
use cep_shared::config::{FeedbackRules, Targets};
use cep_shared::phi::ratio;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// One measured metric of a layer, with its target.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Measure {
    pub layer: Layer,
    pub metric: String,
    pub value: Option<f64>,
    pub target: f64,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Insight {
    pub layer: Layer,
    pub metric: String,
    pub value: f64,
    pub target: f64,
    pub gap_percent: f64,
    pub confidence: String,
    pub impact: f64,
    pub expected_improvement_percent: f64,
}

/// An insight when the metric is at least `insight_gap_share` below its target.
pub fn insight(m: &Measure, r: &FeedbackRules) -> Option<Insight> {
    let value = m.value?;
    if m.target <= 0.0 || value > m.target * (1.0 - r.insight_gap_share) + 1e-12 {
        return None;
    }
    let gap = (m.target - value) / m.target * 100.0;
    Some(Insight {
        layer: m.layer,
        metric: m.metric.clone(),
        value,
        target: m.target,
        gap_percent: gap,
        confidence: if gap > r.high_confidence_gap_percent {
            "high"
        } else {
            "medium"
        }
        .into(),
        impact: (2.0 * gap).min(100.0),
        expected_improvement_percent: gap / 2.0,
    })
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Optimization {
    pub layer: Layer,
    pub metric: String,
    pub priority: String,
    pub impact: f64,
    /// In Φ units; never enough to push Φ above 1.
    pub expected_phi_gain: f64,
    pub action: String,
}

fn action_for(metric: &str) -> &'static str {
    match metric {
        "pitch_confidence" | "response_rate" => {
            "shift pitch variant weights toward the variant that gets replies"
        }
        "booking_rate" => "move the send window toward the hours that get replies",
        "prospect_conversion" | "prospects_per_day" => {
            "raise the priority of the categories that book"
        }
        "show_rate" => "send a reminder the day before each meeting",
        "close_rate" => "follow up every meeting with a proposal within a day",
        "score_gain" | "visibility_gain" => {
            "add the remaining optimization kinds to the weekly run"
        }
        _ => "review this layer's inputs",
    }
}

/// Optimizations for the insights with impact ≥ the minimum: highest impact first, at
/// most `max_optimizations`.
pub fn optimizations(
    insights: &[Insight],
    phi: Option<f64>,
    r: &FeedbackRules,
) -> Vec<Optimization> {
    let headroom = 1.0 - phi.unwrap_or(0.0).clamp(0.0, 1.0);
    let mut out: Vec<Optimization> = insights
        .iter()
        .filter(|i| i.impact >= r.optimization_min_impact)
        .map(|i| Optimization {
            layer: i.layer,
            metric: i.metric.clone(),
            priority: if i.impact > r.critical_above {
                "critical"
            } else if i.impact > r.high_above {
                "high"
            } else {
                "medium"
            }
            .into(),
            impact: i.impact,
            expected_phi_gain: (r.impact_weights.get(i.layer) * i.expected_improvement_percent
                / 100.0)
                .min(headroom),
            action: action_for(&i.metric).into(),
        })
        .collect();
    out.sort_by(|a, b| {
        b.impact
            .total_cmp(&a.impact)
            .then_with(|| a.metric.cmp(&b.metric))
    });
    out.truncate(r.max_optimizations);
    out
}

/// Layers 1–4's conversions; the lowest below the bar is the bottleneck.
pub fn bottleneck(measures: &[Measure], below: f64) -> Option<&Measure> {
    const CONVERSIONS: [&str; 3] = ["prospect_conversion", "booking_rate", "close_rate"];
    measures
        .iter()
        .filter(|m| CONVERSIONS.contains(&m.metric.as_str()))
        .filter(|m| m.value.is_some_and(|v| v < below))
        .min_by(|a, b| a.value.unwrap_or(0.0).total_cmp(&b.value.unwrap_or(0.0)))
}

/// What the window recorded, counted: the inputs of every measure.
#[derive(Debug, Clone, Default)]
pub struct Counts {
    pub found: f64,
    pub contacted: f64,
    pub replied: f64,
    /// Bookings less cancellations, never below zero.
    pub bookings: f64,
    pub pitch_confidence: Option<f64>,
    /// Meetings that started in the window: held (won, lost or undecided), missed, won.
    pub held: f64,
    pub no_show: f64,
    pub won: f64,
    /// The mean score gained per optimized client; `None` without any.
    pub score_gain: Option<f64>,
}

/// Layers 1–6 measured against their targets over `[from, to)`.
pub fn measures(
    c: &Counts,
    from: i64,
    to: i64,
    visibility_per_point: f64,
    t: &Targets,
) -> Vec<Measure> {
    let days = (to - from) as f64 / DAY as f64;
    let m = |layer, metric: &str, value, target| Measure {
        layer,
        metric: metric.into(),
        value,
        target,
    };
    vec![
        m(
            Layer::Prospecting,
            "prospect_conversion",
            ratio(c.contacted, c.found),
            t.prospect_conversion,
        ),
        m(
            Layer::Prospecting,
            "prospects_per_day",
            Some(c.found / days),
            t.prospects_per_day,
        ),
        m(
            Layer::PitchGeneration,
            "pitch_confidence",
            c.pitch_confidence,
            t.pitch_confidence,
        ),
        m(
            Layer::Outreach,
            "response_rate",
            ratio(c.replied, c.contacted),
            t.response_rate,
        ),
        m(
            Layer::Outreach,
            "booking_rate",
            ratio(c.bookings, c.contacted),
            t.booking_rate,
        ),
        m(
            Layer::Booking,
            "show_rate",
            ratio(c.held, c.held + c.no_show),
            t.show_rate,
        ),
        m(
            Layer::Booking,
            "close_rate",
            ratio(c.won, c.held),
            t.close_rate,
        ),
        m(
            Layer::Optimization,
            "score_gain",
            c.score_gain,
            t.score_gain,
        ),
        m(
            Layer::Optimization,
            "visibility_gain",
            c.score_gain.map(|g| g * visibility_per_point),
            t.visibility_gain,
        ),
    ]
}

/// Whether two reply rates differ beyond chance: a two-proportion z-test at 95 %,
/// with at least `min` sends on each side.
pub fn clearly_better(best: (f64, f64), worst: (f64, f64), min: f64) -> bool {
    let ((r1, n1), (r2, n2)) = (best, worst);
    if n1 < min || n2 < min {
        return false;
    }
    let pooled = (r1 + r2) / (n1 + n2);
    let se = (pooled * (1.0 - pooled) * (1.0 / n1 + 1.0 / n2)).sqrt();
    se > 0.0 && (r1 / n1 - r2 / n2) / se >= 1.96
}

/// New weights: the best-replying option gains half its weight, the worst loses a
/// quarter, others keep theirs. `None` unless the best clearly beats the worst.
pub fn reweight(
    current: &BTreeMap<String, f64>,
    rates: &BTreeMap<String, (f64, f64)>,
) -> Option<BTreeMap<String, f64>> {
    let scored: Vec<(&String, (f64, f64))> = rates
        .iter()
        .filter(|(k, (_, n))| *n > 0.0 && current.contains_key(*k))
        .map(|(k, v)| (k, *v))
        .collect();
    let rate = |v: &(f64, f64)| v.0 / v.1;
    let best = scored
        .iter()
        .max_by(|a, b| rate(&a.1).total_cmp(&rate(&b.1)).then_with(|| b.0.cmp(a.0)))?;
    let worst = scored
        .iter()
        .min_by(|a, b| rate(&a.1).total_cmp(&rate(&b.1)).then_with(|| a.0.cmp(b.0)))?;
    if best.0 == worst.0 || !clearly_better(best.1, worst.1, 30.0) {
        return None;
    }
    let mut next = current.clone();
    *next.get_mut(best.0)? *= 1.5;
    *next.get_mut(worst.0)? *= 0.75;
    for v in next.values_mut() {
        *v = (*v * 1000.0).round() / 1000.0;
    }
    Some(next)
}

/// The send window narrowed by an hour on its weaker side (keeping at least 6 hours),
/// when one side clearly gets more replies.
pub fn narrower_window(
    current: SendHours,
    morning: Option<f64>,
    afternoon: Option<f64>,
) -> Option<SendHours> {
    if current.end - current.start <= 6 {
        return None;
    }
    match (morning, afternoon) {
        (Some(m), Some(a)) if m > a => Some(SendHours {
            start: current.start,
            end: current.end - 1,
        }),
        (Some(m), Some(a)) if a > m => Some(SendHours {
            start: current.start + 1,
            end: current.end,
        }),
        _ => None,
    }
}

/// Each category's priority: its reply rate against the average, within 0.5–2; `None`
/// without a reply or a send.
pub fn category_priorities(rates: &BTreeMap<String, (f64, f64)>) -> Option<BTreeMap<String, f64>> {
    let total: (f64, f64) = rates
        .values()
        .fold((0.0, 0.0), |a, b| (a.0 + b.0, a.1 + b.1));
    if total.0 == 0.0 || total.1 == 0.0 {
        return None;
    }
    let avg = total.0 / total.1;
    Some(
        rates
            .iter()
            .filter(|(_, (_, n))| *n > 0.0)
            .map(|(c, (r, n))| (c.clone(), ((r / n) / avg).clamp(0.5, 2.0)))
            .map(|(c, p)| (c, (p * 100.0).round() / 100.0))
            .collect(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn m(metric: &str, value: f64, target: f64) -> Measure {
        Measure {
            layer: Layer::Outreach,
            metric: metric.into(),
            value: Some(value),
            target,
        }
    }

    #[test]
    fn insight_worked_numbers() {
        let r = FeedbackRules::default();
        // response 0.12 vs 0.30: gap 60 %, high, impact 100 (capped), improvement 30 %.
        let i = insight(&m("response_rate", 0.12, 0.30), &r).unwrap();
        assert!((i.gap_percent - 60.0).abs() < 1e-9);
        assert_eq!(i.confidence, "high");
        assert_eq!(i.impact, 100.0);
        assert!((i.expected_improvement_percent - 30.0).abs() < 1e-9);
        // 0.75 vs 0.80 show rate: gap 6.25 % < 10 % → no insight.
        assert!(insight(&m("show_rate", 0.75, 0.80), &r).is_none());
        // exactly 10 % below counts; 20 % gap is medium with impact 40.
        assert!(insight(&m("x", 0.27, 0.30), &r).is_some());
        let i = insight(&m("x", 0.8, 1.0), &r).unwrap();
        assert_eq!(i.confidence, "medium");
        assert!((i.impact - 40.0).abs() < 1e-9);
    }

    #[test]
    fn optimizations_prioritise_and_never_push_phi_above_one() {
        let r = FeedbackRules::default();
        let ins = vec![
            insight(&m("response_rate", 0.0, 0.30), &r).unwrap(), // gap 100 → impact 100
            insight(&m("booking_rate", 0.06, 0.10), &r).unwrap(), // gap 40 → impact 80
            insight(&m("x", 0.7, 1.0), &r).unwrap(),              // gap 30 → impact 60
        ];
        let o = optimizations(&ins, Some(0.95), &r);
        assert_eq!(o.len(), 2);
        assert_eq!(o[0].priority, "critical");
        assert_eq!(o[1].priority, "high");
        // outreach weight 0.2 × 50 % = 0.10, but only 0.05 of headroom is left.
        assert!((o[0].expected_phi_gain - 0.05).abs() < 1e-9);
        let o = optimizations(&ins, Some(0.5), &r);
        assert!((o[0].expected_phi_gain - 0.10).abs() < 1e-9);
    }

    #[test]
    fn the_bottleneck_is_the_lowest_conversion_below_ten_percent() {
        let ms = vec![
            m("prospect_conversion", 0.08, 0.15),
            m("booking_rate", 0.04, 0.10),
            m("response_rate", 0.01, 0.30),
        ];
        assert_eq!(bottleneck(&ms, 0.10).unwrap().metric, "booking_rate");
        assert!(bottleneck(&ms[..1], 0.05).is_none());
    }

    #[test]
    fn reweighting_favours_the_variant_that_gets_replies() {
        let current: BTreeMap<String, f64> = [("a".into(), 1.0), ("b".into(), 1.0)].into();
        // 5 % vs 15 % of 100 sends each: z ≈ 2.4, a clear winner.
        let rates: BTreeMap<String, (f64, f64)> =
            [("a".into(), (5.0, 100.0)), ("b".into(), (15.0, 100.0))].into();
        let next = reweight(&current, &rates).unwrap();
        assert_eq!(next["b"], 1.5);
        assert_eq!(next["a"], 0.75);
        // 38/194 vs 37/198 is chance, and 2/40 vs 6/40 too few to tell: nothing moves.
        let close: BTreeMap<String, (f64, f64)> =
            [("a".into(), (38.0, 194.0)), ("b".into(), (37.0, 198.0))].into();
        assert!(reweight(&current, &close).is_none());
        let small: BTreeMap<String, (f64, f64)> =
            [("a".into(), (2.0, 40.0)), ("b".into(), (6.0, 40.0))].into();
        assert!(reweight(&current, &small).is_none());
        let one: BTreeMap<String, (f64, f64)> = [("a".into(), (2.0, 40.0))].into();
        assert!(reweight(&current, &one).is_none());
    }

    #[test]
    fn the_send_window_narrows_on_its_weaker_side_but_never_below_six_hours() {
        let w = |start, end| SendHours { start, end };
        assert_eq!(
            narrower_window(w(9, 17), Some(0.2), Some(0.1)),
            Some(w(9, 16))
        );
        assert_eq!(
            narrower_window(w(9, 17), Some(0.1), Some(0.2)),
            Some(w(10, 17))
        );
        assert_eq!(narrower_window(w(9, 17), Some(0.1), Some(0.1)), None);
        assert_eq!(narrower_window(w(9, 17), None, Some(0.1)), None);
        assert_eq!(narrower_window(w(9, 15), Some(0.2), Some(0.1)), None);
    }

    #[test]
    fn categories_that_reply_more_get_priority_within_half_and_double() {
        let rates = BTreeMap::from([
            ("dental".to_string(), (10.0, 50.0)),
            ("hvac".to_string(), (0.0, 50.0)),
            ("spa".to_string(), (0.0, 0.0)),
        ]);
        let p = category_priorities(&rates).unwrap();
        assert_eq!(p["dental"], 2.0);
        assert_eq!(p["hvac"], 0.5);
        assert!(!p.contains_key("spa"));
        assert_eq!(category_priorities(&BTreeMap::new()), None);
    }

    #[test]
    fn the_loop_measures_against_the_one_targets_table_and_meetings_by_outcome() {
        let t = Targets {
            show_rate: 0.9,
            close_rate: 0.5,
            ..Targets::default()
        };
        // 9 held and 3 no-shows: show 0.75 against 0.9; 3 won of 9 held: close 1/3.
        let c = Counts {
            held: 9.0,
            no_show: 3.0,
            won: 3.0,
            ..Counts::default()
        };
        let ms = measures(&c, 0, DAY, 0.8, &t);
        let get = |name: &str| ms.iter().find(|m| m.metric == name).unwrap();
        assert_eq!(
            (get("show_rate").value, get("show_rate").target),
            (Some(0.75), 0.9)
        );
        assert_eq!(
            (get("close_rate").value, get("close_rate").target),
            (Some(1.0 / 3.0), 0.5)
        );
        // No meeting at all: unknown, not zero.
        let none = measures(&Counts::default(), 0, DAY, 0.8, &t);
        assert_eq!(
            none.iter()
                .find(|m| m.metric == "close_rate")
                .unwrap()
                .value,
            None
        );
    }
}
