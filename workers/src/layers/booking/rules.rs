//! Booking's pure rules: a meeting's id and type, and when it starts.

use crate::JobError;
use cep_shared::ids::stable_id;

pub fn meeting_id(invitee_uri: &str) -> String {
    stable_id("mtg", &[invitee_uri])
}

/// The meeting's start in milliseconds, from Calendly's RFC 3339 `start_time`.
pub fn start_at(start_time: Option<&str>) -> Result<Option<i64>, JobError> {
    start_time
        .map(|t| {
            chrono::DateTime::parse_from_rfc3339(t)
                .map(|d| d.timestamp_millis())
                .map_err(|e| JobError::Invalid(format!("start_time `{t}`: {e}")))
        })
        .transpose()
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
}
