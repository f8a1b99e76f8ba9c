//! Layer 4: bookings from Calendly webhooks. A booking is the sales conversion and stops
//! the prospect's outreach; a cancel reverses it (a reschedule is a cancel marked
//! `rescheduled` followed by a new booking). Each booking chains onboarding.

pub mod calendly_api;

use crate::layers::outreach;
use crate::{Ctx, JobError};
use cep_shared::clock::HOUR;
use cep_shared::ids::stable_id;
use cep_shared::jobs::{BookingJob, FollowUp, OnboardingJob};
use cep_shared::queue::NewJob;
use cep_shared::store::Event;
use cep_shared::{JobKind, Layer};
use serde::{Deserialize, Serialize};

pub const CREATED: &str = "invitee.created";
pub const CANCELED: &str = "invitee.canceled";

/// The parts of a Calendly v2 webhook body this layer reads.
#[derive(Debug, Deserialize)]
pub struct Webhook {
    pub event: String,
    pub payload: Invitee,
}

#[derive(Debug, Deserialize)]
pub struct Invitee {
    pub uri: String,
    pub email: String,
    pub name: String,
    #[serde(default)]
    pub rescheduled: bool,
    #[serde(default)]
    pub questions_and_answers: Vec<QuestionAnswer>,
    #[serde(default)]
    pub tracking: Option<Tracking>,
    #[serde(default)]
    pub scheduled_event: Option<ScheduledEvent>,
}

#[derive(Debug, Deserialize)]
pub struct QuestionAnswer {
    #[serde(default)]
    pub answer: String,
}

#[derive(Debug, Default, Deserialize)]
pub struct Tracking {
    pub utm_source: Option<String>,
    pub utm_campaign: Option<String>,
    pub utm_content: Option<String>,
}

#[derive(Debug, Deserialize)]
pub struct ScheduledEvent {
    #[serde(default)]
    pub name: String,
    pub start_time: Option<String>,
}

impl Webhook {
    /// The job for an event this layer handles; `None` for other event kinds.
    pub fn into_job(self) -> Option<BookingJob> {
        if self.event != CREATED && self.event != CANCELED {
            return None;
        }
        let p = self.payload;
        let tracking = p.tracking.unwrap_or_default();
        let (event_type, start_time) = p
            .scheduled_event
            .map(|e| (e.name, e.start_time))
            .unwrap_or_default();
        Some(BookingJob {
            action: self.event,
            invitee_uri: p.uri,
            email: p.email,
            name: p.name,
            event_type,
            answers: p
                .questions_and_answers
                .into_iter()
                .map(|q| q.answer)
                .collect(),
            rescheduled: p.rescheduled,
            start_time,
            utm_source: tracking.utm_source,
            utm_campaign: tracking.utm_campaign,
            utm_content: tracking.utm_content,
        })
    }
}

/// The queue job for a verified webhook, keyed by event and invitee so Calendly's
/// retries enqueue it once.
pub fn job_for(job: &BookingJob, now: i64) -> NewJob {
    NewJob::new(JobKind::Layer(Layer::Booking), job, now)
        .key(format!("booking:{}:{}", job.action, job.invitee_uri))
}

/// Meeting type: from the invitee's answers, else the event type's name.
pub fn meeting_type(answers: &[String], event_type: &str) -> &'static str {
    const TYPES: [(&str, &str); 4] = [
        ("demo", "demo"),
        ("consultation", "consultation"),
        ("follow-up", "follow-up"),
        ("follow up", "follow-up"),
    ];
    let find = |text: &str| {
        let text = text.to_lowercase();
        TYPES
            .iter()
            .find(|(word, _)| text.contains(word))
            .map(|(_, t)| *t)
    };
    answers
        .iter()
        .find_map(|a| find(a))
        .or_else(|| find(event_type))
        .unwrap_or("discovery")
}

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

pub fn meeting_id(invitee_uri: &str) -> String {
    stable_id("mtg", &[invitee_uri])
}

/// Maps a booking to its prospect and pitch: the booking link's UTM fields first, the
/// invitee's email otherwise.
async fn attribute(
    ctx: &Ctx,
    job: &BookingJob,
) -> Result<(Option<String>, Option<String>, Option<String>), JobError> {
    let pool = ctx.store.pool();
    let mut prospect = None;
    if let Some(id) = job.utm_campaign.as_deref() {
        let row: Option<(String,)> = sqlx::query_as("SELECT id FROM prospects WHERE id = $1")
            .bind(id)
            .fetch_optional(pool)
            .await?;
        prospect = row.map(|(id,)| id);
    }
    if prospect.is_none() {
        let row: Option<(String,)> =
            sqlx::query_as("SELECT id FROM prospects WHERE LOWER(email) = $1 ORDER BY id LIMIT 1")
                .bind(job.email.trim().to_lowercase())
                .fetch_optional(pool)
                .await?;
        prospect = row.map(|(id,)| id);
    }
    let mut pitch = None;
    if let (Some(pid), Some(content)) = (&prospect, job.utm_content.as_deref()) {
        let row: Option<(String, String)> =
            sqlx::query_as("SELECT id, variant FROM pitches WHERE id = $1 AND prospect_id = $2")
                .bind(content)
                .bind(pid)
                .fetch_optional(pool)
                .await?;
        pitch = row;
    }
    let (pitch_id, variant) = pitch.unzip();
    Ok((prospect, pitch_id, variant))
}

pub async fn handle(ctx: &Ctx, job: BookingJob) -> Result<BookingResult, JobError> {
    let created = match job.action.as_str() {
        CREATED => true,
        CANCELED => false,
        other => {
            return Err(JobError::Invalid(format!(
                "booking action `{other}` is neither {CREATED} nor {CANCELED}"
            )));
        }
    };
    let start_at = match job.start_time.as_deref() {
        Some(t) => Some(
            chrono::DateTime::parse_from_rfc3339(t)
                .map_err(|e| JobError::Invalid(format!("start_time `{t}`: {e}")))?
                .timestamp_millis(),
        ),
        None => None,
    };
    let kind = meeting_type(&job.answers, &job.event_type);
    let (prospect_id, pitch_id, variant) = attribute(ctx, &job).await?;
    let id = meeting_id(&job.invitee_uri);
    let now = ctx.now();
    let mut tx = ctx.store.pool().begin().await?;
    // A cancel may arrive before its booking; either order leaves one row.
    sqlx::query(
        "INSERT INTO meetings (id, prospect_id, pitch_variant, pitch_id, email, name, meeting_type, status, rescheduled, start_at, created_at, updated_at)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $11)
         ON CONFLICT (id) DO NOTHING",
    )
    .bind(&id)
    .bind(&prospect_id)
    .bind(&variant)
    .bind(&pitch_id)
    .bind(job.email.trim().to_lowercase())
    .bind(&job.name)
    .bind(kind)
    .bind(if created { "scheduled" } else { "canceled" })
    .bind(i64::from(job.rescheduled))
    .bind(start_at)
    .bind(now)
    .execute(&mut *tx)
    .await?;
    if !created {
        sqlx::query(
            "UPDATE meetings SET status = 'canceled', rescheduled = $2, updated_at = $3 WHERE id = $1",
        )
        .bind(&id)
        .bind(i64::from(job.rescheduled))
        .bind(now)
        .execute(&mut *tx)
        .await?;
    }
    ctx.store
        .record_event(
            &mut *tx,
            Event {
                layer: Layer::Booking,
                kind: if created { "booked" } else { "canceled" },
                subject: &id,
                data: serde_json::json!({
                    "prospect": prospect_id, "variant": variant, "type": kind,
                    "rescheduled": job.rescheduled,
                }),
                occurred_at: now,
            },
        )
        .await?;
    if let Some(pid) = &prospect_id {
        // A booking stops the sequence; a cancel that is not a reschedule ends it.
        let update = if created {
            Some(
                "UPDATE prospects SET status = 'booked', updated_at = $2 WHERE id = $1 AND status <> 'client'",
            )
        } else if !job.rescheduled {
            Some(
                "UPDATE prospects SET status = 'stopped', updated_at = $2 WHERE id = $1 AND status = 'booked'",
            )
        } else {
            None
        };
        if let Some(sql) = update {
            sqlx::query(sql)
                .bind(pid)
                .bind(now)
                .execute(&mut *tx)
                .await?;
        }
    }
    tx.commit().await?;

    let mut onboarding_at = None;
    if created {
        let hours = i64::from(ctx.settings.layers.onboarding.start_after_meeting_hours);
        let at = start_at.unwrap_or(now).max(now) + hours * HOUR;
        ctx.queue
            .push(
                NewJob::new(
                    JobKind::Layer(Layer::Onboarding),
                    &OnboardingJob::Start {
                        meeting_id: id.clone(),
                    },
                    at,
                )
                .key(format!("onboarding:start:{id}")),
            )
            .await?;
        onboarding_at = Some(at);
        if let Some(pid) = prospect_id.as_deref().filter(|_| outreach::texts_on(ctx)) {
            ctx.queue
                .push(outreach::follow_up_job(pid, FollowUp::Booked, now))
                .await?;
        }
    }
    Ok(BookingResult {
        meeting_id: id,
        action: job.action,
        meeting_type: kind.into(),
        prospect_id,
        pitch_id,
        pitch_variant: variant,
        onboarding_at,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn meeting_type_prefers_answers_then_event_type() {
        let a = |s: &str| vec![s.to_string()];
        assert_eq!(
            meeting_type(&a("I'd like a demo"), "Discovery call"),
            "demo"
        );
        assert_eq!(meeting_type(&[], "30 min Consultation"), "consultation");
        assert_eq!(meeting_type(&a("Follow up on pricing"), ""), "follow-up");
        assert_eq!(meeting_type(&a("just curious"), "Intro"), "discovery");
    }

    #[test]
    fn a_v2_webhook_becomes_a_job_and_other_events_are_ignored() {
        let body = serde_json::json!({
            "event": "invitee.created",
            "created_at": "2026-07-02T12:00:00.000000Z",
            "payload": {
                "uri": "https://api.calendly.com/scheduled_events/E1/invitees/I1",
                "email": "owner@oak.example", "name": "Pat Oak", "status": "active",
                "rescheduled": false,
                "questions_and_answers": [{"question": "Topic?", "answer": "A demo please", "position": 0}],
                "tracking": {"utm_source": "cep", "utm_campaign": "p1", "utm_content": "pitch_1", "utm_medium": null},
                "scheduled_event": {"name": "Discovery", "start_time": "2026-07-03T15:00:00.000000Z"}
            }
        });
        let w: Webhook = serde_json::from_value(body).unwrap();
        let job = w.into_job().unwrap();
        assert_eq!(job.utm_campaign.as_deref(), Some("p1"));
        assert_eq!(job.answers, ["A demo please"]);
        assert_eq!(
            job.start_time.as_deref(),
            Some("2026-07-03T15:00:00.000000Z")
        );
        let other: Webhook = serde_json::from_value(serde_json::json!({
            "event": "invitee_no_show.created",
            "payload": {"uri": "u", "email": "e", "name": "n"}
        }))
        .unwrap();
        assert!(other.into_job().is_none());
    }
}
