//! Layer 9: the feedback loop. It measures layers 1–6 against their targets over the
//! last 30 days, turns every metric well below target into an insight, the strongest
//! insights into prioritised optimizations, and applies those to the parameters layers
//! 1–3 read (pitch variant weights, send hours, category priorities). Every change is
//! recorded with its before and after values and can be rolled back.

use crate::layers::outreach::SendHours;
use crate::layers::params;
use crate::{Ctx, JobError};
use cep_shared::clock::{DAY, HOUR, MINUTE};
use cep_shared::config::FeedbackRules;
use cep_shared::ids::stable_id;
use cep_shared::jobs::PeriodJob;
use cep_shared::phi::ratio;
use cep_shared::queue::NewJob;
use cep_shared::{JobKind, Layer};
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
        "client_conversion" => "follow up every meeting with a proposal within a day",
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
    const CONVERSIONS: [&str; 3] = ["prospect_conversion", "booking_rate", "client_conversion"];
    measures
        .iter()
        .filter(|m| CONVERSIONS.contains(&m.metric.as_str()))
        .filter(|m| m.value.is_some_and(|v| v < below))
        .min_by(|a, b| a.value.unwrap_or(0.0).total_cmp(&b.value.unwrap_or(0.0)))
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FeedbackResult {
    pub period: String,
    pub measures: Vec<Measure>,
    pub insights: Vec<Insight>,
    pub bottleneck: Option<String>,
    pub low_coherence: bool,
    pub optimizations: Vec<Optimization>,
    /// Ids of the parameter changes applied (each can be rolled back).
    pub changes: Vec<String>,
}

async fn scalar(ctx: &Ctx, sql: &'static str, from: i64, to: i64) -> Result<Option<f64>, JobError> {
    let (v,): (Option<f64>,) = sqlx::query_as(sql)
        .bind(from)
        .bind(to)
        .fetch_one(ctx.store.pool())
        .await?;
    Ok(v)
}

async fn measure(ctx: &Ctx, from: i64, to: i64) -> Result<Vec<Measure>, JobError> {
    let r = &ctx.settings.layers.feedback_loop;
    let s = &ctx.store;
    let n = |layer, kind| async move {
        s.count_events(layer, kind, from, to)
            .await
            .map(|n| n as f64)
    };
    let found = n(Layer::Prospecting, "prospect_found").await?;
    let contacted = n(Layer::Outreach, "contacted").await?;
    let replied = n(Layer::Outreach, "replied").await?;
    let bookings =
        (n(Layer::Booking, "booked").await? - n(Layer::Booking, "canceled").await?).max(0.0);
    let started = n(Layer::Onboarding, "started").await?;
    let confidence = scalar(
        ctx,
        "SELECT AVG(confidence) FROM pitches WHERE created_at >= $1 AND created_at < $2",
        from,
        to,
    )
    .await?;
    let (held, meetings): (i64, i64) = sqlx::query_as(
        "SELECT COALESCE(SUM(CASE WHEN status = 'scheduled' THEN 1 ELSE 0 END), 0), COUNT(*)
           FROM meetings WHERE start_at >= $1 AND start_at < $2",
    )
    .bind(from)
    .bind(to)
    .fetch_one(ctx.store.pool())
    .await?;
    let gains: Vec<(String,)> = sqlx::query_as(
        "SELECT data FROM events WHERE layer = 'optimization' AND kind = 'optimized'
           AND occurred_at >= $1 AND occurred_at < $2",
    )
    .bind(from)
    .bind(to)
    .fetch_all(ctx.store.pool())
    .await?;
    let mut per_client: BTreeMap<String, f64> = BTreeMap::new();
    for (data,) in gains {
        let v: serde_json::Value = serde_json::from_str(&data)?;
        let client = v["client"].as_str().unwrap_or_default().to_owned();
        *per_client.entry(client).or_default() += v["score_gain"].as_f64().unwrap_or(0.0);
    }
    let score_gain = (!per_client.is_empty())
        .then(|| per_client.values().sum::<f64>() / per_client.len() as f64);
    let vis = ctx.settings.layers.optimization.visibility_per_point;
    let days = (to - from) as f64 / DAY as f64;
    let m = |layer, metric: &str, value, target| Measure {
        layer,
        metric: metric.into(),
        value,
        target,
    };
    Ok(vec![
        m(
            Layer::Prospecting,
            "prospect_conversion",
            ratio(contacted, found),
            r.target_prospect_conversion,
        ),
        m(
            Layer::Prospecting,
            "prospects_per_day",
            Some(found / days),
            r.target_prospects_per_day,
        ),
        m(
            Layer::PitchGeneration,
            "pitch_confidence",
            confidence,
            r.target_pitch_confidence,
        ),
        m(
            Layer::Outreach,
            "response_rate",
            ratio(replied, contacted),
            r.target_response_rate,
        ),
        m(
            Layer::Outreach,
            "booking_rate",
            ratio(bookings, contacted),
            r.target_booking_rate,
        ),
        m(
            Layer::Booking,
            "show_rate",
            ratio(held as f64, meetings as f64),
            r.target_show_rate,
        ),
        m(
            Layer::Booking,
            "client_conversion",
            ratio(started, held as f64),
            r.target_client_conversion,
        ),
        m(
            Layer::Optimization,
            "score_gain",
            score_gain,
            r.target_score_gain,
        ),
        m(
            Layer::Optimization,
            "visibility_gain",
            score_gain.map(|g| g * vis),
            r.target_visibility_gain,
        ),
    ])
}

/// Reply rate per pitch variant over the window: `(replied, contacted)` by variant.
async fn replies_by(
    ctx: &Ctx,
    column: &'static str,
    from: i64,
    to: i64,
) -> Result<BTreeMap<String, (f64, f64)>, JobError> {
    let sql = format!(
        "SELECT {column}, e.kind FROM events e JOIN prospects p ON p.id = e.subject
           JOIN pitches pi ON pi.prospect_id = p.id AND pi.channel = 'email'
          WHERE e.layer = 'outreach' AND e.kind IN ('contacted', 'replied')
            AND e.occurred_at >= $1 AND e.occurred_at < $2"
    );
    let rows: Vec<(String, String)> = sqlx::query_as(sqlx::AssertSqlSafe(sql))
        .bind(from)
        .bind(to)
        .fetch_all(ctx.store.pool())
        .await?;
    let mut out: BTreeMap<String, (f64, f64)> = BTreeMap::new();
    for (key, kind) in rows {
        let e = out.entry(key).or_default();
        if kind == "replied" {
            e.0 += 1.0;
        } else {
            e.1 += 1.0;
        }
    }
    Ok(out)
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

async fn apply(
    ctx: &Ctx,
    o: &Optimization,
    period: &str,
    from: i64,
    to: i64,
) -> Result<Option<String>, JobError> {
    let reason = format!("{}: {} (impact {:.0})", o.metric, o.action, o.impact);
    let key = format!("{period}:{}", o.metric);
    match o.metric.as_str() {
        "pitch_confidence" | "response_rate" => {
            let variants = &ctx.settings.layers.pitch_generation.variants;
            let current: BTreeMap<String, f64> = params::get(ctx, params::PITCH_VARIANT_WEIGHTS)
                .await?
                .unwrap_or_else(|| variants.iter().map(|v| (v.clone(), 1.0)).collect());
            let rates = replies_by(ctx, "pi.variant", from, to).await?;
            match reweight(&current, &rates) {
                Some(next) => {
                    params::set(ctx, params::PITCH_VARIANT_WEIGHTS, &next, &reason, &key).await
                }
                None => Ok(None),
            }
        }
        "booking_rate" => {
            let o = &ctx.settings.layers.outreach;
            let current: SendHours =
                params::get(ctx, params::SEND_HOURS)
                    .await?
                    .unwrap_or(SendHours {
                        start: o.send_start_hour,
                        end: o.send_end_hour,
                    });
            // Narrow the window by an hour on its weaker side, keeping at least 6 hours.
            if current.end - current.start <= 6 {
                return Ok(None);
            }
            let morning = replies_in_hours(ctx, from, to, current.start, 12).await?;
            let afternoon = replies_in_hours(ctx, from, to, 12, current.end).await?;
            let next = match (morning, afternoon) {
                (Some(m), Some(a)) if m > a => SendHours {
                    start: current.start,
                    end: current.end - 1,
                },
                (Some(m), Some(a)) if a > m => SendHours {
                    start: current.start + 1,
                    end: current.end,
                },
                _ => return Ok(None),
            };
            params::set(ctx, params::SEND_HOURS, &next, &reason, &key).await
        }
        "prospect_conversion" | "prospects_per_day" => {
            let rates = replies_by(ctx, "p.category", from, to).await?;
            let total: (f64, f64) = rates
                .values()
                .fold((0.0, 0.0), |a, b| (a.0 + b.0, a.1 + b.1));
            if total.0 == 0.0 || total.1 == 0.0 {
                return Ok(None);
            }
            let avg = total.0 / total.1;
            let priorities: BTreeMap<String, f64> = rates
                .iter()
                .filter(|(_, (_, n))| *n > 0.0)
                .map(|(c, (r, n))| (c.clone(), ((r / n) / avg).clamp(0.5, 2.0)))
                .map(|(c, p)| (c, (p * 100.0).round() / 100.0))
                .collect();
            params::set(ctx, params::CATEGORY_PRIORITIES, &priorities, &reason, &key).await
        }
        _ => Ok(None),
    }
}

/// Reply rate of email sends whose prospect-local hour was in `[start, end)`.
async fn replies_in_hours(
    ctx: &Ctx,
    from: i64,
    to: i64,
    start: u32,
    end: u32,
) -> Result<Option<f64>, JobError> {
    let rows: Vec<(i64, i64, String)> = sqlx::query_as(
        "SELECT m.sent_at, p.utc_offset_minutes, p.status FROM messages m JOIN prospects p ON p.id = m.prospect_id
          WHERE m.channel = 'email' AND m.step = 0 AND m.sent_at >= $1 AND m.sent_at < $2",
    )
    .bind(from)
    .bind(to)
    .fetch_all(ctx.store.pool())
    .await?;
    let mut sent = 0.0;
    let mut replied = 0.0;
    for (at, offset, status) in rows {
        let hour = ((at + offset * MINUTE).rem_euclid(DAY) / HOUR) as u32;
        if (start..end).contains(&hour) {
            sent += 1.0;
            if ["replied", "booked", "client"].contains(&status.as_str()) {
                replied += 1.0;
            }
        }
    }
    Ok(ratio(replied, sent))
}

/// subject, metric, value, target, details
type InsightRow = (String, String, Option<f64>, Option<f64>, serde_json::Value);

pub async fn handle(ctx: &Ctx, job: PeriodJob) -> Result<FeedbackResult, JobError> {
    let r = &ctx.settings.layers.feedback_loop;
    let now = ctx.now();
    let from = now - 30 * DAY;
    let measures = measure(ctx, from, now).await?;
    let mut insights: Vec<Insight> = measures.iter().filter_map(|m| insight(m, r)).collect();
    insights.sort_by(|a, b| {
        b.impact
            .total_cmp(&a.impact)
            .then_with(|| a.metric.cmp(&b.metric))
    });
    let neck = bottleneck(&measures, r.bottleneck_below).map(|m| m.metric.clone());
    let phi: Option<(Option<f64>,)> =
        sqlx::query_as("SELECT phi_sync FROM coherence_metrics ORDER BY computed_at DESC LIMIT 1")
            .fetch_optional(ctx.store.pool())
            .await?;
    let phi = phi.and_then(|(p,)| p);
    let low_coherence = phi.is_some_and(|p| p < r.low_coherence_below);
    let opts = optimizations(&insights, phi, r);

    let pool = ctx.store.pool();
    let mut rows: Vec<InsightRow> = insights
        .iter()
        .map(|i| {
            (
                i.layer.as_str().to_owned(),
                i.metric.clone(),
                Some(i.value),
                Some(i.target),
                serde_json::to_value(i).unwrap_or_default(),
            )
        })
        .collect();
    if let Some(m) = &neck {
        rows.push((
            "sales".into(),
            format!("bottleneck:{m}"),
            None,
            Some(r.bottleneck_below),
            serde_json::json!({ "bottleneck": m }),
        ));
    }
    if low_coherence {
        rows.push((
            "meta".into(),
            "low_coherence".into(),
            phi,
            Some(r.low_coherence_below),
            serde_json::json!({ "phi_sync": phi }),
        ));
    }
    for o in &opts {
        rows.push((
            o.layer.as_str().to_owned(),
            format!("optimization:{}", o.metric),
            None,
            None,
            serde_json::to_value(o)?,
        ));
    }
    for (subject, metric, value, target, details) in rows {
        sqlx::query(
            "INSERT INTO insights (id, source, period, subject, metric, value, target, details, created_at)
             VALUES ($1, 'feedback_loop', $2, $3, $4, $5, $6, $7, $8) ON CONFLICT (id) DO NOTHING",
        )
        .bind(stable_id("ins", &["feedback_loop", &job.period, &subject, &metric]))
        .bind(&job.period)
        .bind(&subject)
        .bind(&metric)
        .bind(value)
        .bind(target)
        .bind(details.to_string())
        .bind(now)
        .execute(pool)
        .await?;
    }
    let mut changes = Vec::new();
    if r.auto_apply {
        for o in &opts {
            if let Some(id) = apply(ctx, o, &job.period, from, now).await? {
                changes.push(id);
            }
        }
    }
    // Feedback loop → Φ_sync aggregation of the month.
    ctx.queue
        .push(
            NewJob::new(
                JobKind::AGGREGATION,
                &PeriodJob {
                    period: job.period.clone(),
                },
                now,
            )
            .key(format!("aggregation:{}", job.period)),
        )
        .await?;
    Ok(FeedbackResult {
        period: job.period,
        measures,
        insights,
        bottleneck: neck,
        low_coherence,
        optimizations: opts,
        changes,
    })
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
}
