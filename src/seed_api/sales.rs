//! The sales container's seed inputs: layer 2's prospects and channels, layer 3's
//! pitches, layer 4's webhook payload.

use super::dry_run_only;
use anyhow::Context as _;
use cep_shared::jobs::OutreachJob;
use cep_shared::queue::NewJob;
use cep_shared::vocabulary::{BookingAction, Channel, MeetingState, MessageStatus};
use cep_shared::{JobKind, Layer};
use cep_workers::{Ctx, JobError};
use serde::Deserialize;
use serde_json::{Value, json};

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
pub(super) async fn pitches(ctx: &Ctx, input: &Value) -> anyhow::Result<Value> {
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
                // Layer 3's input names each pitch's prospect.
                let mut pitch = pitch.clone();
                pitch["prospect_id"] = json!(prospect.id);
                pitches.push(pitch);
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
struct OutreachInput {
    /// Layer 2's pitches; only their prospects are read (each gets the sequence).
    pitches: Vec<PitchRef>,
    #[serde(default)]
    channels: Vec<Channel>,
    #[serde(default)]
    dry_run: Option<bool>,
}

#[derive(Deserialize)]
struct PitchRef {
    prospect_id: String,
}

/// Layer 3 on layer 2's pitches: each pitched prospect's sequence, its first step
/// delivered now (recorded, not sent, in a dry run) and the rest queued on their days.
pub(super) async fn outreach(ctx: &Ctx, input: &Value) -> anyhow::Result<Value> {
    let o: OutreachInput = serde_json::from_value(input.clone()).context(
        "layer 3's seed input is {\"pitches\": [{\"prospect_id\": …}], \"channels\": [\"email\"]} (layer 2's answer gives each pitch its prospect_id)",
    )?;
    dry_run_only(o.dry_run)?;
    anyhow::ensure!(!o.pitches.is_empty(), "`pitches` is empty");
    let steps = &ctx.settings.layers.outreach.sequence;
    let first = steps
        .first()
        .context("`layers.outreach.sequence` has no steps")?;
    anyhow::ensure!(
        o.channels.is_empty() || o.channels.iter().any(|c| c.as_str() == first.channel),
        "the sequence starts with {} (`layers.outreach.sequence`), which `channels` leaves out; its later steps follow on their days",
        first.channel
    );
    let mut prospects: Vec<&str> = Vec::new();
    for p in &o.pitches {
        if !prospects.contains(&p.prospect_id.as_str()) {
            prospects.push(&p.prospect_id);
        }
    }
    let mut sequences = Vec::new();
    let mut statuses = Vec::new();
    for prospect in prospects {
        let job = OutreachJob {
            prospect_id: prospect.to_owned(),
            step: 0,
        };
        let payload = serde_json::to_string(&job)?;
        let out = match cep_workers::handle(ctx, JobKind::Layer(Layer::Outreach), &payload).await {
            Ok(out) => out,
            // A send window or a day's cap: the step is queued for when it opens.
            Err(JobError::Deferred { until, reason }) => {
                ctx.queue.push(NewJob::of(&job, until)).await?;
                json!({
                    "prospect_id": prospect, "step": 0, "status": MessageStatus::Deferred,
                    "reason": reason, "next_step_at": until,
                })
            }
            Err(e) => return Err(anyhow::Error::new(e).context(format!("prospect `{prospect}`"))),
        };
        let status: MessageStatus = serde_json::from_value(out["status"].clone())?;
        statuses.push(status);
        sequences.push(json!({
            "prospect_id": prospect,
            "steps": steps,
            "first_step": out,
        }));
    }
    let count = |s: MessageStatus| statuses.iter().filter(|x| **x == s).count();
    Ok(json!({
        // Sent means sent: a dry run records its messages and sends none.
        "messages_sent": count(MessageStatus::Sent),
        "prospects_contacted": count(MessageStatus::Sent),
        "messages_recorded": count(MessageStatus::Recorded),
        "tasks_for_a_person": count(MessageStatus::Task),
        "messages_deferred": count(MessageStatus::Deferred),
        "sequences": sequences,
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
pub(super) async fn booking(ctx: &Ctx, input: &Value) -> anyhow::Result<Value> {
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
