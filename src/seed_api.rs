//! The seed API document's parameters for `cep layer`, where a layer's job takes another
//! shape: layer 2's `prospects` and `channels`, layer 4's `webhook_payload`. Each is
//! mapped onto the layer's own jobs, and the result carries the seed's fields beside
//! ours. Other inputs go to the layer as they are.

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
