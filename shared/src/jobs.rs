//! The job contracts between layers: what each queue's payload holds. A payload knows
//! its queue and its deduplication key ([`Job`]), so enqueuing one is a single call —
//! `NewJob::of(&job, due)` — and no layer imports another's job builder.

use crate::layer::{JobKind, Layer};
use serde::{Deserialize, Serialize};

/// A job payload: the queue it travels on and the key that makes enqueuing it twice
/// harmless (a second job with the same key, within the TTL, is dropped).
pub trait Job: Serialize {
    fn kind(&self) -> JobKind;
    fn key(&self) -> String;
}

impl Job for ProspectingJob {
    fn kind(&self) -> JobKind {
        JobKind::Layer(Layer::Prospecting)
    }
    fn key(&self) -> String {
        format!(
            "prospecting:{}:{}:{}",
            self.period, self.location, self.category
        )
    }
}

impl Job for PitchJob {
    fn kind(&self) -> JobKind {
        JobKind::Layer(Layer::PitchGeneration)
    }
    fn key(&self) -> String {
        format!("pitch_generation:{}", self.prospect_id)
    }
}

impl Job for OutreachJob {
    fn kind(&self) -> JobKind {
        JobKind::Layer(Layer::Outreach)
    }
    fn key(&self) -> String {
        format!("outreach:{}:{}", self.prospect_id, self.step)
    }
}

impl Job for FollowUpJob {
    fn kind(&self) -> JobKind {
        JobKind::Layer(Layer::Outreach)
    }
    fn key(&self) -> String {
        format!("outreach:{}:{}", self.prospect_id, self.follow_up.as_str())
    }
}

impl Job for BookingJob {
    fn kind(&self) -> JobKind {
        JobKind::Layer(Layer::Booking)
    }
    fn key(&self) -> String {
        // A no-show can be marked, taken back and marked again: each delivery is its own
        // (a retry of one carries the same `created_at`).
        match &self.sent_at {
            Some(at) if self.action.starts_with("invitee_no_show.") => {
                format!("booking:{}:{}:{at}", self.action, self.invitee_uri)
            }
            _ => format!("booking:{}:{}", self.action, self.invitee_uri),
        }
    }
}

impl Job for OnboardingJob {
    fn kind(&self) -> JobKind {
        JobKind::Layer(Layer::Onboarding)
    }
    fn key(&self) -> String {
        match self {
            OnboardingJob::Start { meeting_id } => format!("onboarding:start:{meeting_id}"),
            OnboardingJob::Review { period } => format!("onboarding:review:{period}"),
        }
    }
}

impl Job for OptimizationJob {
    fn kind(&self) -> JobKind {
        JobKind::Layer(Layer::Optimization)
    }
    fn key(&self) -> String {
        format!("optimization:{}:{}", self.client_id, self.period)
    }
}

/// The monthly chain and the aggregation run once a period: the payload is the period
/// and the key is the queue and the period.
macro_rules! period_job {
    ($(#[$meta:meta])* $name:ident => $kind:expr) => {
        $(#[$meta])*
        #[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
        #[serde(deny_unknown_fields)]
        pub struct $name {
            /// `2026-02` for monthly work, `2026-W05` for weekly, `2026-01-05` for daily.
            #[serde(deserialize_with = "crate::period::deserialize")]
            pub period: String,
        }

        impl $name {
            pub fn new(period: impl Into<String>) -> Self {
                Self { period: period.into() }
            }
        }

        impl Job for $name {
            fn kind(&self) -> JobKind {
                $kind
            }
            fn key(&self) -> String {
                format!("{}:{}", self.kind().queue(), self.period)
            }
        }
    };
}

period_job!(
    /// Layer 7: the period's reports; chains finance.
    ReportingJob => JobKind::Layer(Layer::Reporting)
);
period_job!(
    /// Layer 8: the period's invoices and the agency's numbers; chains the feedback loop.
    FinanceJob => JobKind::Layer(Layer::Finance)
);
period_job!(
    /// Layer 9: the period's insights and parameter changes; chains the aggregation.
    FeedbackJob => JobKind::Layer(Layer::FeedbackLoop)
);
period_job!(
    /// Φ_sync over the containers' windows ending now.
    AggregationJob => JobKind::AGGREGATION
);

/// A client's report sent by email (with its link and PDF): the month's close sends
/// round 1; an operator's send or resend is the next round.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DeliveryJob {
    pub report_id: String,
    pub round: u32,
    /// Who asked: `schedule` for the month's close, else the operator's email.
    pub requested_by: String,
}

impl Job for DeliveryJob {
    fn kind(&self) -> JobKind {
        JobKind::Layer(Layer::Reporting)
    }
    fn key(&self) -> String {
        format!("reporting:deliver:{}:{}", self.report_id, self.round)
    }
}

/// What a reporting job carries: a period's reports, or one report's delivery.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(untagged)]
pub enum ReportingWork {
    Period(ReportingJob),
    Deliver(DeliveryJob),
}

impl<'de> Deserialize<'de> for ReportingWork {
    /// Told apart by the `report_id` key, so a bad payload's error names its fields.
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let v = serde_json::Value::deserialize(d)?;
        let work = if v.get("report_id").is_some() {
            serde_json::from_value(v).map(ReportingWork::Deliver)
        } else {
            serde_json::from_value(v).map(ReportingWork::Period)
        };
        work.map_err(serde::de::Error::custom)
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ProspectingJob {
    /// The period this run belongs to (`2026-01-05`); part of every id it writes.
    #[serde(deserialize_with = "crate::period::deserialize")]
    pub period: String,
    pub location: String,
    pub category: String,
    #[serde(default)]
    pub max_prospects: Option<u32>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PitchJob {
    pub prospect_id: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OutreachJob {
    pub prospect_id: String,
    /// Index into the configured sequence (0 = first email).
    pub step: u32,
}

/// Why a prospect gets a text: SMS is never cold, only after a reply or a booking.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FollowUp {
    /// A confirmation of the meeting they booked.
    Booked,
    /// The booking link, after they answered one of our messages.
    Replied,
}

impl FollowUp {
    pub fn as_str(self) -> &'static str {
        match self {
            FollowUp::Booked => "booked",
            FollowUp::Replied => "replied",
        }
    }
}

/// A warm follow-up text outside the sequence.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FollowUpJob {
    pub prospect_id: String,
    pub follow_up: FollowUp,
}

/// What an outreach job carries: a step of the sequence or a warm follow-up.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(untagged)]
pub enum OutreachWork {
    Step(OutreachJob),
    FollowUp(FollowUpJob),
}

impl<'de> Deserialize<'de> for OutreachWork {
    /// Told apart by the `follow_up` key, so a bad payload's error names its fields
    /// rather than "matches no variant".
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let v = serde_json::Value::deserialize(d)?;
        let work = if v.get("follow_up").is_some() {
            serde_json::from_value(v).map(OutreachWork::FollowUp)
        } else {
            serde_json::from_value(v).map(OutreachWork::Step)
        };
        work.map_err(serde::de::Error::custom)
    }
}

/// A verified Calendly `invitee.created` / `invitee.canceled` event.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BookingJob {
    pub action: String,
    pub invitee_uri: String,
    pub email: String,
    pub name: String,
    pub event_type: String,
    #[serde(default)]
    pub answers: Vec<String>,
    #[serde(default)]
    pub rescheduled: bool,
    #[serde(default)]
    pub start_time: Option<String>,
    #[serde(default)]
    pub utm_source: Option<String>,
    #[serde(default)]
    pub utm_campaign: Option<String>,
    #[serde(default)]
    pub utm_content: Option<String>,
    /// The booking link's signature of `utm_campaign` and `utm_content`.
    #[serde(default)]
    pub utm_term: Option<String>,
    /// When Calendly sent the event (its `created_at`).
    #[serde(default)]
    pub sent_at: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, tag = "action", rename_all = "snake_case")]
pub enum OnboardingJob {
    /// Start onboarding the client a won meeting brought.
    Start { meeting_id: String },
    /// The weekly pass: move every client's state along its finished tasks.
    Review {
        #[serde(deserialize_with = "crate::period::deserialize")]
        period: String,
    },
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OptimizationJob {
    pub client_id: String,
    #[serde(deserialize_with = "crate::period::deserialize")]
    pub period: String,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_payload_names_its_queue_and_a_key_that_tells_apart_what_must_run_twice() {
        let step = |step| OutreachJob {
            prospect_id: "p1".into(),
            step,
        };
        assert_eq!(step(0).kind().queue(), "outreach");
        assert_ne!(step(0).key(), step(1).key());
        let text = FollowUpJob {
            prospect_id: "p1".into(),
            follow_up: FollowUp::Booked,
        };
        assert_eq!(text.key(), "outreach:p1:booked");
        assert_eq!(FinanceJob::new("2026-02").key(), "finance:2026-02");
        assert_eq!(FeedbackJob::new("2026-02").key(), "feedback_loop:2026-02");
        assert_eq!(AggregationJob::new("2026-02").kind(), JobKind::AGGREGATION);
        assert_eq!(
            serde_json::to_string(&ReportingJob::new("2026-02")).unwrap(),
            r#"{"period":"2026-02"}"#
        );
    }
}
