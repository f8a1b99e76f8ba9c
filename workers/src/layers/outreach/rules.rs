//! Outreach's pure rules: who a step goes to, the day's cap per channel, the send
//! window in force, why a message will not go out, and the follow-up texts.

use cep_shared::config::OutreachRules;
use cep_shared::jobs::FollowUp;
use cep_shared::vocabulary::{Channel, ProspectStatus};
use serde::{Deserialize, Serialize};

/// The send window the feedback loop may set (`send_hours`), in the prospect's hours.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct SendHours {
    pub start: u32,
    pub end: u32,
}

/// The send window in force: the feedback loop's `send_hours` when it is a real window,
/// else the configuration's.
pub fn send_window(learned: Option<SendHours>, o: &OutreachRules) -> (u32, u32) {
    learned
        .filter(|h| h.start < h.end && h.end <= 24)
        .map(|h| (h.start, h.end))
        .unwrap_or((o.send_start_hour, o.send_end_hour))
}

/// Where a message on `channel` goes: an email address or a phone number (none for
/// LinkedIn).
pub fn address_for(channel: Channel, email: Option<&str>, phone: Option<&str>) -> Option<String> {
    match channel {
        Channel::Email => email,
        Channel::Sms | Channel::Phone => phone,
        Channel::Linkedin => None,
    }
    .map(str::to_owned)
}

/// Why a message will not go out, and whether the sequence goes on without it.
#[derive(Debug, Clone, PartialEq)]
pub struct Skip {
    pub reason: String,
    pub go_on: bool,
}

pub fn skip(reason: impl Into<String>, go_on: bool) -> Option<Skip> {
    Some(Skip {
        reason: reason.into(),
        go_on,
    })
}

/// Why a sequence step will not go out, before the suppression list is asked: the
/// prospect left the sequence, has no address, or the step is a cold text.
pub fn sequence_skip(
    status: ProspectStatus,
    channel: Channel,
    address: Option<&str>,
) -> Option<Skip> {
    if status.sequence_stopped() {
        return skip(format!("sequence stopped: the prospect is {status}"), false);
    }
    match channel {
        Channel::Email if address.is_none() => skip("the prospect has no email address", true),
        // No cold SMS: texts go only to prospects who replied or booked (follow-ups),
        // and those have left the sequence already.
        Channel::Sms => skip("no cold SMS: the prospect has not replied or booked", true),
        _ => None,
    }
}

/// Whether a follow-up text may go to a prospect in `status`: a booking's confirmation
/// to one who booked, the booking link to one who replied.
pub fn follow_up_is_warm(f: FollowUp, status: ProspectStatus) -> bool {
    match f {
        FollowUp::Booked => matches!(status, ProspectStatus::Booked | ProspectStatus::Client),
        FollowUp::Replied => status == ProspectStatus::Replied,
    }
}

/// The step number a follow-up's message row carries: past any sequence.
pub fn follow_up_step(f: FollowUp) -> u32 {
    match f {
        FollowUp::Booked => 100,
        FollowUp::Replied => 101,
    }
}

/// Whether follow-up texts are worth enqueueing at all: the SMS cap is on.
pub fn texts_on(o: &OutreachRules) -> bool {
    o.daily_caps.sms > 0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_learned_window_is_used_only_when_it_is_a_real_window() {
        let o = OutreachRules::default();
        let default = (o.send_start_hour, o.send_end_hour);
        assert_eq!(send_window(None, &o), default);
        assert_eq!(
            send_window(Some(SendHours { start: 10, end: 12 }), &o),
            (10, 12)
        );
        assert_eq!(
            send_window(Some(SendHours { start: 12, end: 10 }), &o),
            default
        );
        assert_eq!(
            send_window(Some(SendHours { start: 20, end: 25 }), &o),
            default
        );
    }

    #[test]
    fn a_stopped_prospect_and_a_cold_text_are_skipped_but_only_the_text_goes_on() {
        let stopped = sequence_skip(ProspectStatus::Replied, Channel::Email, Some("a@b")).unwrap();
        assert!(!stopped.go_on);
        assert_eq!(stopped.reason, "sequence stopped: the prospect is replied");
        let cold = sequence_skip(ProspectStatus::Contacted, Channel::Sms, Some("+1")).unwrap();
        assert!(cold.go_on);
        assert!(
            sequence_skip(ProspectStatus::Contacted, Channel::Email, None)
                .unwrap()
                .go_on
        );
        assert_eq!(
            sequence_skip(ProspectStatus::New, Channel::Email, Some("a@b")),
            None
        );
        assert_eq!(
            sequence_skip(ProspectStatus::New, Channel::Linkedin, None),
            None
        );
    }

    #[test]
    fn follow_ups_go_only_to_warm_prospects_and_take_their_own_step() {
        assert!(follow_up_is_warm(FollowUp::Booked, ProspectStatus::Client));
        assert!(!follow_up_is_warm(
            FollowUp::Booked,
            ProspectStatus::Replied
        ));
        assert!(follow_up_is_warm(
            FollowUp::Replied,
            ProspectStatus::Replied
        ));
        assert!(!follow_up_is_warm(
            FollowUp::Replied,
            ProspectStatus::Contacted
        ));
        assert_ne!(
            follow_up_step(FollowUp::Booked),
            follow_up_step(FollowUp::Replied)
        );
        assert_eq!(
            address_for(Channel::Sms, Some("a@b"), Some("+1")).as_deref(),
            Some("+1")
        );
        assert_eq!(
            address_for(Channel::Linkedin, Some("a@b"), Some("+1")),
            None
        );
    }
}
