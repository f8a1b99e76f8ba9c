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
