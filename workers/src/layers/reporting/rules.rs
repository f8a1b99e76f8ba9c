//! Reporting's rules, what a report says: each metric against the previous report *as
//! recorded* (no earlier report, no trend — never an invented one), the insights worth
//! a line and at most a handful of recommendations where a metric is behind its target.

use cep_shared::config::{ReportingRules, Targets};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Trend {
    Up,
    Down,
    Flat,
}

/// Change in percent against the previous value; `None` without a previous value
/// (or from zero, where a percentage means nothing).
pub fn change_percent(current: f64, previous: Option<f64>) -> Option<f64> {
    let p = previous?;
    (p != 0.0).then(|| (current - p) / p.abs() * 100.0)
}

pub fn trend(change: Option<f64>, r: &ReportingRules) -> Option<Trend> {
    change.map(|c| {
        if c > r.trend_percent {
            Trend::Up
        } else if c < -r.trend_percent {
            Trend::Down
        } else {
            Trend::Flat
        }
    })
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Better {
    Higher,
    Lower,
}

/// A metric is worse than `share` of its target, respecting direction: for "lower is
/// better" metrics (cost, days) worse means above `target ÷ share`.
pub fn below_target(value: f64, target: f64, better: Better, share: f64) -> bool {
    match better {
        Better::Higher => value < share * target,
        Better::Lower => value > target / share,
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Metric {
    pub name: String,
    pub value: f64,
    pub previous: Option<f64>,
    pub change_percent: Option<f64>,
    pub trend: Option<Trend>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Report {
    pub id: String,
    pub client_id: String,
    pub title: String,
    pub report_type: String,
    pub period_start: i64,
    pub period_end: i64,
    pub metrics: Vec<Metric>,
    /// The agency's report: Φ_sync as last computed in the period, partial when a
    /// container had no data ("0.712 (partial: finance no data), status factory, on
    /// 2026-01-31").
    #[serde(default)]
    pub coherence: Option<String>,
    pub insights: Vec<String>,
    pub recommendations: Vec<String>,
    pub path: Option<String>,
}

/// Each value with the previous report's value of the same metric and the trend.
pub fn metrics(
    values: Vec<(String, f64)>,
    previous: &BTreeMap<String, f64>,
    r: &ReportingRules,
) -> Vec<Metric> {
    values
        .into_iter()
        .map(|(name, value)| {
            let previous = previous.get(&name).copied();
            let change = change_percent(value, previous);
            Metric {
                trend: trend(change, r),
                change_percent: change,
                previous,
                value,
                name,
            }
        })
        .collect()
}

/// Targets a metric is held to, and which way is better.
/// A metric's target from the one table (`targets`), in the metric's own unit, and
/// which way is better.
fn target_of(name: &str, t: &Targets) -> Option<(f64, Better)> {
    match name {
        "conversion_percent" => Some((t.booking_rate * 100.0, Better::Higher)),
        "show_rate_percent" => Some((t.show_rate * 100.0, Better::Higher)),
        "close_rate_percent" => Some((t.close_rate * 100.0, Better::Higher)),
        "gbp_score" => Some((t.gbp_score, Better::Higher)),
        "score_gain" => Some((t.score_gain, Better::Higher)),
        "onboarding_days" => Some((t.onboarding_days, Better::Lower)),
        "acquisition_cost" => Some((t.acquisition_cost_cents as f64 / 100.0, Better::Lower)),
        _ => None,
    }
}

const SALES: [&str; 3] = ["bookings", "conversion_percent", "contacted"];
const FINANCE: [&str; 2] = ["revenue", "mrr"];

/// Insights and recommendations for a set of metrics, in a stable order.
pub fn assess(
    metrics: &[Metric],
    r: &ReportingRules,
    targets: &Targets,
) -> (Vec<String>, Vec<String>) {
    let mut insights = Vec::new();
    let mut recs = Vec::new();
    for m in metrics {
        let ch = m.change_percent;
        if SALES.contains(&m.name.as_str()) && ch.is_some_and(|c| c > r.insight_sales_up_percent) {
            insights.push(format!(
                "{} rose {:.0} % on the previous period.",
                label(&m.name),
                ch.unwrap_or_default()
            ));
        }
        if FINANCE.contains(&m.name.as_str())
            && ch.is_some_and(|c| c < -r.insight_finance_down_percent)
        {
            insights.push(format!(
                "{} fell {:.0} % on the previous period.",
                label(&m.name),
                -ch.unwrap_or_default()
            ));
        }
        if m.name == "gbp_score" && m.value < r.insight_gbp_below {
            insights.push(format!(
                "The profile scores {:.0}, below {:.0}: customers comparing listings see a thin profile.",
                m.value, r.insight_gbp_below
            ));
        }
        if let Some((target, better)) = target_of(&m.name, targets)
            && below_target(m.value, target, better, r.recommend_below_share)
        {
            recs.push(recommendation(&m.name, m.value, target));
        }
    }
    recs.truncate(r.max_recommendations);
    (insights, recs)
}

pub fn label(name: &str) -> &str {
    match name {
        "gbp_score" => "Profile score",
        "score_gain" => "Score gained (measured)",
        "observed_score_before" => "Profile score read before",
        "observed_score_after" => "Profile score read after",
        "visibility_gain" => "Visibility gained",
        "posts_scheduled" => "Posts scheduled",
        "onboarding_days" => "Days to go live",
        "prospects_found" => "Prospects found",
        "contacted" => "Prospects contacted",
        "bookings" => "Bookings",
        "conversion_percent" => "Conversion (%)",
        "meetings_held" => "Meetings held",
        "no_shows" => "No-shows",
        "show_rate_percent" => "Show rate (%)",
        "meetings_won" => "Meetings won",
        "close_rate_percent" => "Close rate (%)",
        "new_clients" => "New clients",
        "replied" => "Prospects who replied",
        "canceled_clients" => "Clients canceled",
        "churn_percent" => "Churn (%)",
        "acquisition_cost" => "Acquisition cost",
        "revenue" => "Revenue",
        "mrr" => "Monthly recurring revenue",
        other => other,
    }
}

/// A metric's value as a person reads it: counts whole with separators, money as
/// dollars, rates as percentages, days with one decimal.
pub fn shown(name: &str, value: f64) -> String {
    match name {
        n if n.ends_with("_percent") => format!("{value:.1} %"),
        "acquisition_cost" | "revenue" | "mrr" => {
            cep_shared::format::dollars((value * 100.0).round() as i64)
        }
        "onboarding_days" => format!("{value:.1} days"),
        "visibility_gain" => format!("{value:.1}"),
        _ => cep_shared::format::thousands(value.round() as i64),
    }
}

fn recommendation(name: &str, value: f64, target: f64) -> String {
    match name {
        "conversion_percent" => format!(
            "Conversion is {value:.1} % against a {target:.0} % target: test a new pitch variant and follow up faster on replies."
        ),
        "gbp_score" => format!(
            "The profile scores {value:.0} against {target:.0}: add photos, answer reviews and keep the weekly posts going."
        ),
        "onboarding_days" => format!(
            "Going live takes {value:.1} days against {target:.0}: collect documents on the first call."
        ),
        "acquisition_cost" => format!(
            "Each new client costs ${value:.0} against ${target:.0}: focus campaigns on the categories that book."
        ),
        _ => format!(
            "{} is behind its target ({value:.1} vs {target:.1}).",
            label(name)
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn trends_use_the_recorded_previous_value() {
        let r = ReportingRules::default();
        assert_eq!(change_percent(110.0, Some(100.0)), Some(10.0));
        assert_eq!(trend(Some(10.0), &r), Some(Trend::Up));
        assert_eq!(trend(Some(-5.0), &r), Some(Trend::Flat));
        assert_eq!(trend(Some(-5.1), &r), Some(Trend::Down));
        // Nothing recorded before: no trend, never an invented one.
        assert_eq!(change_percent(110.0, None), None);
        assert_eq!(trend(None, &r), None);
    }

    #[test]
    fn worse_respects_direction() {
        // conversion 11 % vs 15 %: 11 < 12 → worse
        assert!(below_target(11.0, 15.0, Better::Higher, 0.8));
        assert!(!below_target(12.5, 15.0, Better::Higher, 0.8));
        // acquisition cost $400 vs $300 is worse (above 375); $200 is not
        assert!(below_target(400.0, 300.0, Better::Lower, 0.8));
        assert!(!below_target(200.0, 300.0, Better::Lower, 0.8));
    }

    fn metric(name: &str, value: f64, previous: Option<f64>) -> Metric {
        let change = change_percent(value, previous);
        Metric {
            name: name.into(),
            value,
            previous,
            change_percent: change,
            trend: trend(change, &ReportingRules::default()),
        }
    }

    #[test]
    fn insights_and_recommendations_follow_the_rules() {
        let r = ReportingRules::default();
        let ms = vec![
            metric("bookings", 12.0, Some(10.0)),
            metric("revenue", 800.0, Some(1000.0)),
            metric("gbp_score", 55.0, Some(50.0)),
            metric("acquisition_cost", 500.0, None),
            metric("conversion_percent", 14.0, Some(20.0)),
        ];
        let (insights, recs) = assess(&ms, &r, &Targets::default());
        assert_eq!(insights.len(), 3, "{insights:?}");
        assert!(insights[0].starts_with("Bookings rose 20"));
        assert!(insights[1].starts_with("Revenue fell 20"));
        assert!(insights[2].contains("55"));
        // gbp 55 < 68 and cost 500 > 375 earn one; conversion 14 % is past its 5 %.
        assert_eq!(recs.len(), 2, "{recs:?}");
        assert!(recs[0].contains("profile scores 55"));
        assert!(recs[1].contains("$500"));
    }

    #[test]
    fn the_reports_hold_their_metrics_to_the_one_targets_table() {
        let r = ReportingRules::default();
        let t = Targets {
            booking_rate: 0.20,
            close_rate: 0.50,
            ..Targets::default()
        };
        // Φ_sync's sales conversion is the same number.
        assert_eq!(t.get(cep_shared::Container::Sales).conversion, 0.20);
        let ms = vec![
            metric("conversion_percent", 14.0, None),
            metric("close_rate_percent", 30.0, None),
            metric("show_rate_percent", 70.0, None),
        ];
        let (_, recs) = assess(&ms, &r, &t);
        // 14 < 0.8 × 20 and 30 < 0.8 × 50; show rate 70 ≥ 0.8 × 80 is near enough.
        assert_eq!(recs.len(), 2, "{recs:?}");
        assert!(recs[0].contains("14.0 % against a 20 % target"), "{recs:?}");
        assert!(
            recs[1].contains("Close rate (%) is behind its target (30.0 vs 50.0)"),
            "{recs:?}"
        );
    }

    #[test]
    fn every_insight_and_recommendation_reads_right() {
        let r = ReportingRules::default();
        let names = [
            "bookings",
            "contacted",
            "conversion_percent",
            "revenue",
            "mrr",
            "gbp_score",
            "score_gain",
            "onboarding_days",
            "acquisition_cost",
            "show_rate_percent",
            "close_rate_percent",
            "meetings_held",
        ];
        let mut sentences = 0;
        for name in names {
            // Far below and far above its target, rising and falling.
            for (value, previous) in [(1.0, Some(100.0)), (900.0, Some(10.0)), (0.0, None)] {
                let (insights, recs) =
                    assess(&[metric(name, value, previous)], &r, &Targets::default());
                for text in insights.iter().chain(&recs) {
                    if let Some(why) = crate::layers::text_checks::broken(text) {
                        panic!("{why}: {text}");
                    }
                    sentences += 1;
                }
            }
        }
        assert!(sentences >= 12, "{sentences}");
    }
}
