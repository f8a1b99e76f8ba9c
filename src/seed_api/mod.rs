//! The seed API document's parameters for `cep layer`, where a layer's job takes another
//! shape: layer 2's `prospects` and `channels`, layer 4's `webhook_payload`, layer 9's
//! `performance_data`. Each is mapped onto the layer's own jobs or rules, and the result
//! carries the seed's fields beside ours. Other inputs go to the layer as they are.

use anyhow::Context as _;
use cep_shared::vocabulary::{BookingAction, Channel, MeetingState};
use cep_shared::{JobKind, Layer};
use cep_workers::Ctx;
use serde::Deserialize;
use serde_json::{Value, json};

/// Runs `input` when it is the seed's shape for `kind`'s layer; `None` otherwise.
pub async fn run(ctx: &Ctx, kind: JobKind, input: &Value) -> Option<anyhow::Result<Value>> {
    match kind {
        JobKind::Layer(Layer::PitchGeneration) if input.get("prospects").is_some() => {
            Some(pitches(ctx, input).await)
        }
        JobKind::Layer(Layer::Booking) if input.get("webhook_payload").is_some() => {
            Some(booking(ctx, input).await)
        }
        JobKind::Layer(Layer::FeedbackLoop) if input.get("performance_data").is_some() => {
            Some(feedback(ctx, input))
        }
        _ => None,
    }
}

/// The seed's `dry_run`: this fleet's dry runs are its configuration's, so only `true`
/// (or nothing) is taken.
fn dry_run_only(dry_run: Option<bool>) -> anyhow::Result<()> {
    anyhow::ensure!(
        dry_run != Some(false),
        "`dry_run: false` is not taken from a layer's input: sending follows the configuration (`layers.outreach.dry_run`, `providers.gbp.dry_run`)"
    );
    Ok(())
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct PitchInput {
    /// Layer 1's prospects; only their ids are read (the store holds the rest).
    prospects: Vec<ProspectRef>,
    #[serde(default)]
    channels: Vec<Channel>,
    #[serde(default)]
    dry_run: Option<bool>,
}

#[derive(Deserialize)]
struct ProspectRef {
    id: String,
}

/// Layer 2 on layer 1's prospects: each one's pitches, those of `channels` shown.
async fn pitches(ctx: &Ctx, input: &Value) -> anyhow::Result<Value> {
    let p: PitchInput = serde_json::from_value(input.clone())
        .context("layer 2's seed input is {\"prospects\": [{\"id\": …}], \"channels\": [\"email\", \"linkedin\", \"phone\", \"sms\"]}")?;
    dry_run_only(p.dry_run)?;
    anyhow::ensure!(!p.prospects.is_empty(), "`prospects` is empty");
    let mut pitches = Vec::new();
    let mut runs = Vec::new();
    for prospect in &p.prospects {
        let job = json!({ "prospect_id": prospect.id });
        let out = cep_workers::handle(
            ctx,
            JobKind::Layer(Layer::PitchGeneration),
            &job.to_string(),
        )
        .await
        .with_context(|| format!("prospect `{}`", prospect.id))?;
        for pitch in out["pitches"].as_array().into_iter().flatten() {
            let channel: Channel = serde_json::from_value(pitch["channel"].clone())?;
            if p.channels.is_empty() || p.channels.contains(&channel) {
                pitches.push(pitch.clone());
            }
        }
        runs.push(out);
    }
    let confidences: Vec<f64> = pitches
        .iter()
        .filter_map(|x| x["confidence"].as_f64())
        .collect();
    let avg = (!confidences.is_empty())
        .then(|| confidences.iter().sum::<f64>() / confidences.len() as f64);
    Ok(json!({
        "pitches_generated": pitches.len(),
        "avg_confidence": avg,
        "pitches": pitches,
        "per_prospect": runs,
    }))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct BookingInput {
    webhook_payload: SeedWebhook,
    /// A signature cannot be checked without the raw body Calendly signed: signed
    /// deliveries come through `POST /webhooks/calendly`.
    #[serde(default)]
    signature: Option<String>,
    #[serde(default)]
    dry_run: Option<bool>,
}

#[derive(Deserialize)]
struct SeedWebhook {
    event: SeedEvent,
    payload: SeedInvitee,
}

/// `"event": "invitee.created"` (Calendly's) or `"event": {"action": …}` (the seed's).
#[derive(Deserialize)]
#[serde(untagged)]
enum SeedEvent {
    Name(String),
    Action { action: String },
}

#[derive(Deserialize)]
struct SeedInvitee {
    email: String,
    name: String,
    #[serde(default)]
    event_type: String,
    #[serde(default)]
    uri: Option<String>,
    #[serde(default)]
    start_time: Option<String>,
}

/// Layer 4 on the seed's webhook payload: the booking the operator hands in. Its
/// tracking is unsigned, so it is attributed only by the invitee's address (or waits
/// in `cep meetings` for the operator to link).
async fn booking(ctx: &Ctx, input: &Value) -> anyhow::Result<Value> {
    let b: BookingInput = serde_json::from_value(input.clone()).context(
        "layer 4's seed input is {\"webhook_payload\": {\"event\": {\"action\": \"invitee.created\"}, \"payload\": {\"email\": …, \"name\": …, \"event_type\": …}}}",
    )?;
    dry_run_only(b.dry_run)?;
    anyhow::ensure!(
        b.signature.is_none(),
        "a `signature` cannot be checked here (it signs the raw body): send signed deliveries to POST /webhooks/calendly"
    );
    let action = match b.webhook_payload.event {
        SeedEvent::Name(n) | SeedEvent::Action { action: n } => n,
    };
    let parsed: BookingAction = action.parse()?;
    let p = b.webhook_payload.payload;
    let uri = p.uri.unwrap_or_else(|| {
        format!(
            "seed:{:x}",
            cep_shared::ids::stable_hash(&[&p.email, &p.name, &p.event_type])
        )
    });
    let job = json!({
        "action": action, "invitee_uri": uri, "email": p.email, "name": p.name,
        "event_type": p.event_type, "start_time": p.start_time,
    });
    let mut out =
        cep_workers::handle(ctx, JobKind::Layer(Layer::Booking), &job.to_string()).await?;
    let state: MeetingState = serde_json::from_value(out["state"].clone())?;
    out["webhook_processed"] = json!(true);
    out["meeting_created"] =
        json!(parsed == BookingAction::Created && state == MeetingState::Scheduled);
    // Calendly sends the invitation, not this fleet: unknown here.
    out["calendar_invite_sent"] = Value::Null;
    Ok(out)
}

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
fn feedback(ctx: &Ctx, input: &Value) -> anyhow::Result<Value> {
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
