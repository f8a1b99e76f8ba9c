//! Layer 4: bookings from Calendly webhooks. A booking is the sales conversion and stops
//! the prospect's outreach; a cancel reverses it (a reschedule is a cancel marked
//! `rescheduled` followed by a new booking). A meeting is then held or missed, and a
//! held one won or lost; only a won meeting chains onboarding.
//!
//! `webhook` reads Calendly's body, `rules` names and times the meeting, `store` records
//! it, `outcome` records what came of it, `calendly_api` keeps Calendly's webhook
//! subscription pointed here.

pub mod calendly_api;
pub mod outcome;
pub mod rules;
pub mod store;
pub mod webhook;

pub use rules::{meeting_id, meeting_type};
pub use webhook::Webhook;

pub use outcome::{Outcome, Recorded, Reporter};

use crate::layers::outreach;
use crate::{Ctx, JobError};
use cep_shared::jobs::{BookingJob, FollowUp, FollowUpJob};
use cep_shared::queue::NewJob;
use cep_shared::vocabulary::{AttributedBy, BookingAction, MeetingState};
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct BookingResult {
    pub meeting_id: String,
    pub action: String,
    pub meeting_type: String,
    pub prospect_id: Option<String>,
    pub pitch_id: Option<String>,
    pub pitch_variant: Option<String>,
    /// How the prospect is known; none: unattributed, for the operator to link.
    pub attributed_by: Option<AttributedBy>,
    /// The meeting's state after this event.
    pub state: MeetingState,
}

/// What a meeting waits for from the operator.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Needs {
    /// No signed link or sent email ties it to a prospect: `cep meeting-link`.
    Link,
    /// Matched by the invitee's address alone: confirm with `cep meeting-link`.
    Confirm,
    /// Its start has passed: held or no-show.
    Attendance,
    /// Held: won (with the tier) or lost (with a reason).
    Decision,
}

/// A meeting the operator should look at.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ToReview {
    pub meeting_id: String,
    pub needs: Needs,
    pub email: String,
    pub name: String,
    pub status: MeetingState,
    pub start_at: Option<i64>,
    pub prospect_id: Option<String>,
    pub attributed_by: Option<AttributedBy>,
    /// The tier the prospect's lead class suggests, for a meeting to decide.
    pub suggested_tier: Option<String>,
}

/// Meetings waiting for the operator, oldest first: to link or confirm, past their
/// start with no attendance recorded, held with nothing decided.
pub async fn to_review(ctx: &Ctx) -> Result<Vec<ToReview>, JobError> {
    store::to_review(ctx).await
}

/// What linking a meeting did.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Linked {
    pub meeting_id: String,
    pub prospect_id: String,
    pub state: MeetingState,
}

/// The operator ties a meeting to its prospect (or confirms an email match): a
/// scheduled meeting books the prospect, as a signed link would have done. What came
/// of the meeting is recorded with [`outcome::record`].
pub async fn link(ctx: &Ctx, meeting_id: &str, prospect_id: &str) -> Result<Linked, JobError> {
    let state = store::link(ctx, meeting_id, prospect_id).await?;
    Ok(Linked {
        meeting_id: meeting_id.to_owned(),
        prospect_id: prospect_id.to_owned(),
        state,
    })
}

pub async fn handle(ctx: &Ctx, job: BookingJob) -> Result<BookingResult, JobError> {
    let action: BookingAction = job.action.parse().map_err(|_| {
        let names: Vec<&str> = BookingAction::ALL.iter().map(|a| a.as_str()).collect();
        JobError::Invalid(format!(
            "booking action `{}` is not one of {}",
            job.action,
            names.join(", ")
        ))
    })?;
    let id = meeting_id(&job.invitee_uri);
    let kind = meeting_type(&job.answers, &job.event_type);
    if let Some(outcome) = match action {
        BookingAction::NoShow => Some(Outcome::NoShow),
        BookingAction::NoShowUndone => Some(Outcome::NoShowUndone),
        BookingAction::Created | BookingAction::Canceled => None,
    } {
        let r = outcome::record(ctx, &id, outcome, Reporter::Calendly).await?;
        let (prospect_id, by) = store::attributed(ctx, &id).await?;
        return Ok(BookingResult {
            meeting_id: id,
            action: job.action,
            meeting_type: kind.into(),
            prospect_id,
            pitch_id: None,
            pitch_variant: None,
            attributed_by: by,
            state: r.state,
        });
    }
    let start_at = rules::start_at(job.start_time.as_deref())?;
    let attribution = store::attribute(ctx, &job).await?;
    let state = store::record(ctx, &job, action, &id, kind, start_at, &attribution).await?;

    if action == BookingAction::Created
        && let Some(pid) = &attribution.prospect_id
        && outreach::texts_on(&ctx.settings.layers.outreach)
    {
        let text = FollowUpJob {
            prospect_id: pid.clone(),
            follow_up: FollowUp::Booked,
        };
        ctx.queue.push(NewJob::of(&text, ctx.now())).await?;
    }
    Ok(BookingResult {
        meeting_id: id,
        attributed_by: attribution.by,
        action: job.action,
        meeting_type: kind.into(),
        prospect_id: attribution.prospect_id,
        pitch_id: attribution.pitch_id,
        pitch_variant: attribution.variant,
        state,
    })
}
