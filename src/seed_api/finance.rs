//! The finance container's seed inputs: layer 7's and layer 8's clients, layer 9's
//! performance data.

use super::dry_run_only;
use anyhow::Context as _;
use cep_shared::period::{Kind, Period};
use cep_shared::{JobKind, Layer};
use cep_workers::Ctx;
use serde::Deserialize;
use serde_json::{Value, json};

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct FeedbackInput {
    /// Per seed layer name, metric name → value.
    performance_data: std::collections::BTreeMap<String, std::collections::BTreeMap<String, f64>>,
    phi_sync: Option<f64>,
    #[serde(default)]
    historical_data: Vec<PhiAt>,
    #[serde(default)]
    dry_run: Option<bool>,
}

#[derive(Deserialize)]
struct PhiAt {
    phi_sync: f64,
    date: chrono::NaiveDate,
}

/// The seed's layer and metric names, and ours with the target they are held to.
fn seed_metric(
    layer: &str,
    metric: &str,
    t: &cep_shared::config::Targets,
) -> Option<(Layer, &'static str, f64)> {
    Some(match (layer, metric) {
        ("prospector", "conversion_rate") => (
            Layer::Prospecting,
            "prospect_conversion",
            t.prospect_conversion,
        ),
        ("prospector", "prospects_per_day") => {
            (Layer::Prospecting, "prospects_per_day", t.prospects_per_day)
        }
        ("pitch_gen", "confidence_score") => (
            Layer::PitchGeneration,
            "pitch_confidence",
            t.pitch_confidence,
        ),
        ("outreach", "response_rate") => (Layer::Outreach, "response_rate", t.response_rate),
        ("outreach", "booking_rate") => (Layer::Outreach, "booking_rate", t.booking_rate),
        ("booking_handler", "show_rate") => (Layer::Booking, "show_rate", t.show_rate),
        ("booking_handler", "close_rate") => (Layer::Booking, "close_rate", t.close_rate),
        ("gbp_optimizer", "score_improvement") => (Layer::Optimization, "score_gain", t.score_gain),
        _ => return None,
    })
}

/// Layer 9 on performance data handed in: each metric against the one targets table,
/// the insights and optimizations the rules give, and the Φ_sync gain they expect.
/// Nothing is applied: the loop changes parameters only from what the store recorded.
pub(super) fn feedback(ctx: &Ctx, input: &Value) -> anyhow::Result<Value> {
    use cep_workers::layers::feedback_loop::rules;
    let f: FeedbackInput = serde_json::from_value(input.clone()).context(
        "layer 9's seed input is {\"performance_data\": {\"outreach\": {\"response_rate\": 0.35}}, \"phi_sync\": 0.88, \"historical_data\": [{\"phi_sync\": 0.8, \"date\": \"2026-01-01\"}]}",
    )?;
    dry_run_only(f.dry_run)?;
    if let Some(phi) = f.phi_sync {
        anyhow::ensure!(
            (0.0..=1.0).contains(&phi),
            "`phi_sync` {phi} is not between 0 and 1"
        );
    }
    let t = &ctx.settings.targets;
    let mut measures = Vec::new();
    for (layer, metrics) in &f.performance_data {
        for (metric, value) in metrics {
            let Some((ours, name, target)) = seed_metric(layer, metric, t) else {
                anyhow::bail!(
                    "`{layer}.{metric}` is not a metric this loop measures: prospector.conversion_rate, prospector.prospects_per_day, pitch_gen.confidence_score, outreach.response_rate, outreach.booking_rate, booking_handler.show_rate, booking_handler.close_rate, gbp_optimizer.score_improvement"
                );
            };
            anyhow::ensure!(
                value.is_finite() && *value >= 0.0,
                "`{layer}.{metric}` is {value}"
            );
            // Rates are shares (0–1); the seed's example gives a percentage (15.0).
            let is_rate = !matches!(name, "prospects_per_day" | "score_gain");
            let value = if is_rate && *value > 1.0 {
                value / 100.0
            } else {
                *value
            };
            measures.push(rules::Measure {
                layer: ours,
                metric: name.into(),
                value: Some(value),
                target,
            });
        }
    }
    let r = &ctx.settings.layers.feedback_loop;
    let insights: Vec<rules::Insight> = measures
        .iter()
        .filter_map(|m| rules::insight(m, r))
        .collect();
    let optimizations = rules::optimizations(&insights, f.phi_sync, r);
    let gain: f64 = optimizations.iter().map(|o| o.expected_phi_gain).sum();
    let headroom = 1.0 - f.phi_sync.unwrap_or(0.0);
    let mut history = f.historical_data;
    history.sort_by_key(|h| h.date);
    let trend = match (history.first(), history.last()) {
        (Some(a), Some(b)) if history.len() > 1 => Some(b.phi_sync - a.phi_sync),
        _ => None,
    };
    Ok(json!({
        "insights_generated": insights.len(),
        "optimizations_created": optimizations.len(),
        "phi_sync_improvement": gain.min(headroom),
        "phi_sync_change_over_history": trend,
        "measures": measures,
        "bottleneck": rules::bottleneck(&measures, r.bottleneck_below).map(|m| m.metric.clone()),
        "insights": insights,
        "optimizations": optimizations,
        "applied": false,
    }))
}

/// One of the seed's `clients`: its id, and what else it says about the client.
#[derive(Deserialize)]
struct SeedClient {
    id: String,
    #[serde(flatten)]
    given: std::collections::BTreeMap<String, Value>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ReportingInput {
    clients: Vec<SeedClient>,
    /// `daily`, `weekly` or `monthly`: the period of that kind under way now.
    #[serde(default)]
    report_type: Option<String>,
    /// A day, ISO week or month instead (`2026-01`).
    #[serde(default)]
    period: Option<String>,
    #[serde(default)]
    dry_run: Option<bool>,
}

/// The period a seed input names: `period` as given, or the one of `report_type`'s
/// kind under way now (reported up to now).
fn period_of(ctx: &Ctx, report_type: Option<&str>, period: Option<&str>) -> anyhow::Result<Period> {
    let kind = match report_type {
        None => None,
        Some("daily") => Some(Kind::Day),
        Some("weekly") => Some(Kind::Week),
        Some("monthly") => Some(Kind::Month),
        Some(other) => anyhow::bail!(
            "`report_type` {other:?} is not made here: periods are calendar days, ISO weeks and months (daily, weekly, monthly)"
        ),
    };
    match (period, kind) {
        (Some(p), kind) => {
            let p = Period::parse(p).map_err(anyhow::Error::msg)?;
            if let Some(k) = kind {
                anyhow::ensure!(
                    p.kind == k,
                    "`period` {p} is not {}",
                    report_type.unwrap_or_default()
                );
            }
            Ok(p)
        }
        (None, kind) => Ok(Period::containing(kind.unwrap_or(Kind::Month), ctx.now())),
    }
}

/// Layer 7 on the seed's clients: the period's reports (every client's, as the
/// scheduled run writes them), those of the clients named answered. The figures a
/// client entry carries are answered back as not used: reports read the store.
pub(super) async fn reporting(ctx: &Ctx, input: &Value) -> anyhow::Result<Value> {
    let r: ReportingInput = serde_json::from_value(input.clone()).context(
        "layer 7's seed input is {\"clients\": [{\"id\": …}], \"report_type\": \"weekly\" | \"monthly\"} (or \"period\": \"2026-01\")",
    )?;
    dry_run_only(r.dry_run)?;
    anyhow::ensure!(!r.clients.is_empty(), "`clients` is empty");
    for c in &r.clients {
        cep_workers::layers::optimization::store::client(ctx, &c.id).await?;
    }
    let period = period_of(ctx, r.report_type.as_deref(), r.period.as_deref())?;
    let job = json!({ "period": period.to_string() });
    let run = cep_workers::handle(ctx, JobKind::Layer(Layer::Reporting), &job.to_string()).await?;
    let all = run["reports"].as_array().cloned().unwrap_or_default();
    let mut reports = Vec::new();
    let mut not_reported = Vec::new();
    for c in &r.clients {
        match all.iter().find(|x| x["client_id"] == c.id.as_str()) {
            Some(report) => reports.push(report.clone()),
            None => not_reported.push(json!({
                "id": c.id,
                "why": format!("not a client in {period}"),
            })),
        }
    }
    let count = |field: &str| -> usize {
        reports
            .iter()
            .map(|x| x[field].as_array().map_or(0, Vec::len))
            .sum()
    };
    Ok(json!({
        "period": period.to_string(),
        "reports_generated": reports.len(),
        "metrics_analyzed": count("metrics"),
        "insights_count": count("insights"),
        "reports": reports,
        "not_reported": not_reported,
        "not_used": not_used(&r.clients, &[], "reports read what the store recorded"),
    }))
}

/// A client entry's fields other than `id` and those `checked`, answered back.
fn not_used(clients: &[SeedClient], checked: &[&str], why: &str) -> Vec<Value> {
    clients
        .iter()
        .filter_map(|c| {
            let rest: serde_json::Map<String, Value> = c
                .given
                .iter()
                .filter(|(k, _)| !checked.contains(&k.as_str()))
                .map(|(k, v)| (k.clone(), v.clone()))
                .collect();
            (!rest.is_empty()).then(|| json!({ "id": c.id, "fields": rest, "why": why }))
        })
        .collect()
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct FinanceInput {
    clients: Vec<SeedClient>,
    /// The month to close; the one under way (up to now) when not given.
    #[serde(default)]
    period: Option<String>,
    #[serde(default)]
    dry_run: Option<bool>,
}

/// Layer 8 on the seed's clients: the month's close (every client's invoices, as the
/// scheduled close issues them, once), those of the clients named answered. A client's
/// `billing_tier` or `new_client` that is not what the store records is refused.
pub(super) async fn finance(ctx: &Ctx, input: &Value) -> anyhow::Result<Value> {
    use cep_workers::layers::finance::store;
    let f: FinanceInput = serde_json::from_value(input.clone()).context(
        "layer 8's seed input is {\"clients\": [{\"id\": …, \"billing_tier\": …, \"new_client\": true}]} (and \"period\": \"2026-01\", the month under way when not given)",
    )?;
    dry_run_only(f.dry_run)?;
    anyhow::ensure!(!f.clients.is_empty(), "`clients` is empty");
    let period = period_of(ctx, Some("monthly"), f.period.as_deref())?;
    let name = period.to_string();
    let (from, end) = period.span_millis();
    for c in &f.clients {
        let bill = store::bill(ctx, &c.id, &name, from, end)
            .await?
            .with_context(|| format!("no client `{}`", c.id))?;
        if let Some(tier) = c.given.get("billing_tier") {
            anyhow::ensure!(
                tier.as_str() == Some(bill.tier.as_str()),
                "client `{}` is billed at {:?}, not {tier}: the tier is the one sold",
                c.id,
                bill.tier
            );
        }
        if let Some(new) = c.given.get("new_client").and_then(Value::as_bool) {
            anyhow::ensure!(
                new == bill.first,
                "client `{}` {} in {name}",
                c.id,
                if bill.first {
                    "is new: its first invoice is"
                } else {
                    "is not new: it was invoiced before"
                }
            );
        }
    }
    let job = json!({ "period": name });
    let run = cep_workers::handle(ctx, JobKind::Layer(Layer::Finance), &job.to_string()).await?;
    let mut invoices = Vec::new();
    let (mut transactions, mut received) = (0, 0);
    for c in &f.clients {
        let bill = store::bill(ctx, &c.id, &name, from, end)
            .await?
            .with_context(|| format!("no client `{}`", c.id))?;
        transactions += bill.transactions;
        received += bill.received_cents;
        invoices.push(json!({
            "client_id": c.id,
            "billing_tier": bill.tier,
            "new_client": bill.first,
            "invoice": bill.invoice.map(|(id, total_cents, paid_at)| json!({
                "id": id, "total_cents": total_cents, "paid_at": paid_at,
            })),
        }));
    }
    let generated = invoices.iter().filter(|i| !i["invoice"].is_null()).count();
    Ok(json!({
        "period": name,
        "transactions_processed": transactions,
        "invoices_generated": generated,
        "payments_received_cents": received,
        "payments_received": cep_shared::format::dollars(received),
        "invoices": invoices,
        "metrics": run["metrics"],
        "not_used": not_used(&f.clients, &["billing_tier", "new_client"], "the close reads what the store recorded"),
    }))
}
