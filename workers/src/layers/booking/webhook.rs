//! Calendly's v2 webhook body, the parts this layer reads, and the booking job it
//! becomes.

use cep_shared::jobs::BookingJob;
use cep_shared::vocabulary::BookingAction;
use serde::Deserialize;

/// The parts of a Calendly v2 webhook body this layer reads.
#[derive(Debug, Deserialize)]
pub struct Webhook {
    pub event: String,
    #[serde(default)]
    pub created_at: Option<String>,
    /// The invitee, for every event this layer reads (a no-show's too).
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
    pub utm_term: Option<String>,
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
        self.event.parse::<BookingAction>().ok()?;
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
            utm_term: tracking.utm_term,
            sent_at: self.created_at,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_v2_webhook_becomes_a_job_and_events_of_other_kinds_are_ignored() {
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
        assert!(other.into_job().is_some());
        let other: Webhook = serde_json::from_value(serde_json::json!({
            "event": "routing_form_submission.created",
            "payload": {"uri": "u", "email": "e", "name": "n"}
        }))
        .unwrap();
        assert!(other.into_job().is_none());
    }
}
