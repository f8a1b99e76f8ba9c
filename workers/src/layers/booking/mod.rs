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
use cep_shared::vocabulary::BookingAction;
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct BookingResult {
    pub meeting_id: String,
    pub action: String,
    pub meeting_type: String,
    pub prospect_id: Option<String>,
    pub pitch_id: Option<String>,
    pub pitch_variant: Option<String>,
    pub onboarding_at: Option<i64>,
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
        action: job.action,
        meeting_type: kind.into(),
        prospect_id: attribution.prospect_id,
        pitch_id: attribution.pitch_id,
        pitch_variant: attribution.variant,
        onboarding_at,
    })
}
