//! Layer 4: bookings from Calendly webhooks. A booking is the sales conversion and stops
//! the prospect's outreach; a cancel reverses it (a reschedule is a cancel marked
//! `rescheduled` followed by a new booking). Each booking chains onboarding.
//!
//! `webhook` reads Calendly's body, `rules` names and times the meeting, `store` records
//! it, `calendly_api` keeps Calendly's webhook subscription pointed here.

pub mod calendly_api;
pub mod rules;
pub mod store;
pub mod webhook;

pub use rules::{meeting_id, meeting_type};
pub use webhook::Webhook;

use crate::layers::outreach;
use crate::{Ctx, JobError};
use cep_shared::clock::HOUR;
use cep_shared::jobs::{BookingJob, FollowUp, FollowUpJob, OnboardingJob};
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
    pub onboarding_at: Option<i64>,
}

/// A meeting the operator should look at: nobody attributed, or matched by the
/// invitee's address alone.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ToReview {
    pub meeting_id: String,
    pub email: String,
    pub name: String,
    pub status: MeetingState,
    pub start_at: Option<i64>,
    pub prospect_id: Option<String>,
    pub attributed_by: Option<AttributedBy>,
}

/// Meetings waiting for the operator, oldest first.
pub async fn to_review(ctx: &Ctx) -> Result<Vec<ToReview>, JobError> {
    store::to_review(ctx).await
}

/// What linking a meeting did.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Linked {
    pub meeting_id: String,
    pub prospect_id: String,
    /// When onboarding starts, for a scheduled meeting not yet onboarded.
    pub onboarding_at: Option<i64>,
}

/// The operator ties a meeting to its prospect (or confirms an email match): the
/// prospect is booked, as a signed link would have done, and onboarding starts.
pub async fn link(ctx: &Ctx, meeting_id: &str, prospect_id: &str) -> Result<Linked, JobError> {
    let start_at = store::link(ctx, meeting_id, prospect_id).await?;
    let onboarding_at = match start_at {
        Some(start_at) => {
            let now = ctx.now();
            let hours = i64::from(ctx.settings.layers.onboarding.start_after_meeting_hours);
            let at = start_at.unwrap_or(now).max(now) + hours * HOUR;
            let start = OnboardingJob::Start {
                meeting_id: meeting_id.to_owned(),
            };
            ctx.queue.push(NewJob::of(&start, at)).await?;
            Some(at)
        }
        None => None,
    };
    Ok(Linked {
        meeting_id: meeting_id.to_owned(),
        prospect_id: prospect_id.to_owned(),
        onboarding_at,
    })
}

pub async fn handle(ctx: &Ctx, job: BookingJob) -> Result<BookingResult, JobError> {
    let action: BookingAction = job.action.parse().map_err(|_| {
        JobError::Invalid(format!(
            "booking action `{}` is neither {} nor {}",
            job.action,
            BookingAction::Created,
            BookingAction::Canceled
        ))
    })?;
    let start_at = rules::start_at(job.start_time.as_deref())?;
    let kind = meeting_type(&job.answers, &job.event_type);
    let attribution = store::attribute(ctx, &job).await?;
    let id = meeting_id(&job.invitee_uri);
    store::record(ctx, &job, action, &id, kind, start_at, &attribution).await?;

    let mut onboarding_at = None;
    if action == BookingAction::Created {
        let now = ctx.now();
        let hours = i64::from(ctx.settings.layers.onboarding.start_after_meeting_hours);
        let at = start_at.unwrap_or(now).max(now) + hours * HOUR;
        let start = OnboardingJob::Start {
            meeting_id: id.clone(),
        };
        ctx.queue.push(NewJob::of(&start, at)).await?;
        onboarding_at = Some(at);
        if let Some(pid) = &attribution.prospect_id
            && outreach::texts_on(&ctx.settings.layers.outreach)
        {
            let text = FollowUpJob {
                prospect_id: pid.clone(),
                follow_up: FollowUp::Booked,
            };
            ctx.queue.push(NewJob::of(&text, now)).await?;
        }
    }
    Ok(BookingResult {
        meeting_id: id,
        attributed_by: attribution.by,
        action: job.action,
        meeting_type: kind.into(),
        prospect_id: attribution.prospect_id,
        pitch_id: attribution.pitch_id,
        pitch_variant: attribution.variant,
        onboarding_at,
    })
}
