//! Layer 3: each prospect's sequence (email, LinkedIn, SMS, phone) as delayed jobs, with
//! per-mailbox daily caps, the prospect's local send window, a suppression list and
//! RFC 8058 one-click unsubscribe on every email. A message is sent at most once
//! (`message.rs`).
//!
//! `rules` decides who gets what, `compose` writes it, `message` claims, sends and
//! settles it, `suppression` keeps the opt-outs, `sequence` enqueues the next step,
//! `store` reads what a step needs; `smtp` (in the clients), `twilio` and `tasks` (for a
//! person) carry it out; `inbound` reads what comes back.

pub mod compose;
pub mod followups;
pub mod inbound;
pub mod message;
pub mod rules;
pub mod sequence;
pub mod store;
pub mod suppression;
pub mod tasks;
pub mod twilio;
pub mod window;

pub use compose::{
    BookingLinks, booking_signature, unsubscribe_token, verify_booking_signature,
    verify_unsubscribe_token,
};
pub use message::{bounce, message_row_id, record_reply};
pub use rules::{SendHours, follow_up_step, texts_on};
pub use suppression::{recipient_of, suppress};

use crate::{Ctx, JobError};
use cep_shared::jobs::{FollowUpJob, OutreachJob, OutreachWork};
use cep_shared::vocabulary::{Channel, MessageStatus};
use compose::{PitchRow, follow_up_text};
use message::{Delivery, Settled, deliver};
use rules::{address_for, follow_up_is_warm, sequence_skip, skip};
use serde::{Deserialize, Serialize};
use suppression::is_suppressed;

/// The seed API's `OutreachResult` for one step.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct OutreachResult {
    pub message_id: String,
    pub prospect_id: String,
    pub step: u32,
    pub channel: Channel,
    pub status: MessageStatus,
    pub reason: Option<String>,
    pub next_step_at: Option<i64>,
}

pub async fn handle(ctx: &Ctx, work: OutreachWork) -> Result<OutreachResult, JobError> {
    let delivery = match &work {
        OutreachWork::Step(job) => sequence_step(ctx, job).await?,
        OutreachWork::FollowUp(job) => follow_up(ctx, job).await?,
    };
    let (prospect_id, step, channel) = (
        delivery.prospect_id.to_owned(),
        delivery.step,
        delivery.channel,
    );
    let Settled {
        status,
        reason,
        next_step_at,
    } = deliver(ctx, delivery).await?;
    Ok(OutreachResult {
        message_id: message_row_id(&prospect_id, step),
        prospect_id,
        step,
        channel,
        status,
        reason,
        next_step_at,
    })
}

/// A step of the sequence: stops at the first reply, booking, bounce or opt-out.
async fn sequence_step<'a>(ctx: &Ctx, job: &'a OutreachJob) -> Result<Delivery<'a>, JobError> {
    let rules = &ctx.settings.layers.outreach;
    let step = rules.sequence.get(job.step as usize).ok_or_else(|| {
        JobError::Invalid(format!(
            "step {} is past the end of the {}-step sequence",
            job.step,
            rules.sequence.len()
        ))
    })?;
    let channel: Channel = step
        .channel
        .parse()
        .map_err(|e| JobError::Invalid(format!("step {}: {e}", job.step)))?;
    let prospect = store::load_prospect(ctx, &job.prospect_id).await?;
    let pitch = store::load_pitch(ctx, &job.prospect_id, channel).await?;
    let address = address_for(
        channel,
        prospect.email.as_deref(),
        prospect.phone.as_deref(),
    );
    let skip = match sequence_skip(prospect.status, channel, address.as_deref()) {
        None if channel == Channel::Email => suppressed(ctx, address.as_deref()).await?,
        decided => decided,
    };
    Ok(Delivery {
        prospect_id: &job.prospect_id,
        step: job.step,
        channel,
        prospect,
        pitch,
        address,
        chain: Some(job),
        skip,
    })
}

/// A warm text: a booking's confirmation, or the booking link after a reply.
async fn follow_up<'a>(ctx: &Ctx, job: &'a FollowUpJob) -> Result<Delivery<'a>, JobError> {
    let prospect = store::load_prospect(ctx, &job.prospect_id).await?;
    let o = &ctx.settings.layers.outreach;
    let person = store::contact_name(ctx, &job.prospect_id).await?;
    let body = follow_up_text(
        job.follow_up,
        person.as_deref(),
        &o.from_name,
        BookingLinks::of(ctx),
        &job.prospect_id,
    );
    let address = prospect.phone.clone();
    let skip = if !follow_up_is_warm(job.follow_up, prospect.status) {
        let f = job.follow_up.as_str();
        let reason = format!(
            "no cold SMS: a {f} follow-up needs a prospect who {f}, this one is {}",
            prospect.status
        );
        skip(reason, false)
    } else if address.is_none() {
        skip("the prospect has no phone number", false)
    } else {
        suppressed(ctx, address.as_deref()).await?
    };
    Ok(Delivery {
        prospect_id: &job.prospect_id,
        step: rules::follow_up_step(job.follow_up),
        channel: Channel::Sms,
        prospect,
        pitch: PitchRow {
            id: format!("follow-up:{}", job.follow_up.as_str()),
            subject: None,
            body,
            with_link: false,
        },
        address,
        chain: None,
        skip,
    })
}

/// A skip when the address is on the suppression list.
async fn suppressed(ctx: &Ctx, address: Option<&str>) -> Result<Option<rules::Skip>, JobError> {
    Ok(match address {
        Some(a) if is_suppressed(ctx, a).await? => {
            skip(format!("{a} is on the suppression list"), false)
        }
        _ => None,
    })
}
