//! The job contracts between layers: what each queue's payload holds.

use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ProspectingJob {
    /// The period this run belongs to (`2026-01-05`); part of every id it writes.
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
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, tag = "action", rename_all = "snake_case")]
pub enum OnboardingJob {
    /// Start onboarding the client a booked meeting brought (after the meeting).
    Start { meeting_id: String },
    /// The weekly pass: move every client's state along its finished tasks.
    Review { period: String },
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OptimizationJob {
    pub client_id: String,
    pub period: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PeriodJob {
    /// `2026-02` for monthly work, `2026-01-05` for daily.
    pub period: String,
}
