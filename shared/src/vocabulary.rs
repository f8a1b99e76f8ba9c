//! The fleet's named states, each a type modelled on [`crate::Layer`]: `ALL`, `as_str()`
//! (the value SQL, JSON and metric labels see) and `FromStr`. Code compares states as
//! values of these types, never as string literals, so a typo is a compile error rather
//! than a ratio that silently reads zero.

use crate::layer::{Layer, UnknownName};

/// Declares a closed set of names: the enum, `ALL`, `as_str`, `Display`, `FromStr` and
/// serde under the same names.
macro_rules! vocabulary {
    ($(#[$meta:meta])* $name:ident ($what:literal) {
        $($(#[$vmeta:meta])* $variant:ident = $text:literal,)+
    }) => {
        $(#[$meta])*
        #[derive(
            Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord,
            serde::Serialize, serde::Deserialize,
        )]
        pub enum $name {
            $($(#[$vmeta])* #[serde(rename = $text)] $variant,)+
        }

        impl $name {
            pub const ALL: &'static [$name] = &[$($name::$variant,)+];

            pub const fn as_str(self) -> &'static str {
                match self {
                    $($name::$variant => $text,)+
                }
            }
        }

        impl std::fmt::Display for $name {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str(self.as_str())
            }
        }

        impl std::str::FromStr for $name {
            type Err = UnknownName;

            fn from_str(s: &str) -> Result<Self, Self::Err> {
                Self::ALL
                    .iter()
                    .copied()
                    .find(|v| v.as_str() == s)
                    .ok_or_else(|| UnknownName::new($what, s))
            }
        }
    };
}

vocabulary! {
    /// Where an outreach message stands (`messages.status`). It moves
    /// `pending → sending → sent | recorded | task`, or ends `skipped`, `bounced` or
    /// `unknown`; `deferred` waits for a window or a cap.
    MessageStatus("message status") {
        Pending = "pending",
        Deferred = "deferred",
        /// Claimed with the day's cap; the send is under way.
        Sending = "sending",
        Sent = "sent",
        /// A dry run: composed and kept, not sent.
        Recorded = "recorded",
        /// Waiting for a person (LinkedIn, calls, texts without an SMS account).
        Task = "task",
        /// A person's task, done.
        Done = "done",
        Skipped = "skipped",
        Bounced = "bounced",
        /// May or may not have gone out: flagged for a person, never resent.
        Unknown = "unknown",
    }
}

impl MessageStatus {
    /// Whether a delivery has already happened or been settled for good, so a
    /// redelivered job only makes sure the sequence goes on.
    pub const fn delivered(self) -> bool {
        matches!(
            self,
            Self::Sent | Self::Recorded | Self::Unknown | Self::Task | Self::Done
        )
    }

    /// Whether a send may still be claimed from this status.
    pub const fn claimable(self) -> bool {
        matches!(self, Self::Pending | Self::Deferred)
    }
}

vocabulary! {
    /// What a console user may do, each role all the one before it may: a viewer reads,
    /// an operator acts on the business, an admin also on the fleet and on users.
    Role("role") {
        Viewer = "viewer",
        Operator = "operator",
        Admin = "admin",
    }
}

vocabulary! {
    /// Where a prospect stands in the funnel (`prospects.status`).
    ProspectStatus("prospect status") {
        New = "new",
        Pitched = "pitched",
        Contacted = "contacted",
        Replied = "replied",
        Booked = "booked",
        Client = "client",
        /// Met us and did not buy (the operator recorded the meeting lost).
        Lost = "lost",
        /// Opted out or bounced: nothing more goes out.
        Stopped = "stopped",
    }
}

impl ProspectStatus {
    /// Whether the prospect answered us at some point (and may have gone further).
    pub const fn has_replied(self) -> bool {
        matches!(
            self,
            Self::Replied | Self::Booked | Self::Client | Self::Lost
        )
    }

    /// Prospects in these states get no further message of the sequence.
    pub const fn sequence_stopped(self) -> bool {
        matches!(
            self,
            Self::Replied | Self::Booked | Self::Client | Self::Lost | Self::Stopped
        )
    }
}

vocabulary! {
    /// How promising a prospect is, from its profile score (`prospects.lead_class`).
    LeadClass("lead class") {
        Hot = "hot",
        Warm = "warm",
        Cold = "cold",
        NotQualified = "not_qualified",
        /// Too few of its profile's signals are known to score it: kept, not classed or
        /// pitched until a lookup tells more.
        NeedsData = "needs_data",
    }
}

vocabulary! {
    /// A fact about a business's Google Business Profile that a source may tell or not
    /// (business rules, revision 2: an unknown signal is never counted as absent).
    Signal("profile signal") {
        Profile = "profile",
        Claimed = "claimed",
        Photos = "photos",
        Reviews = "reviews",
        Rating = "rating",
        RecentPost = "recent_post",
        Services = "services",
        Hours = "hours",
        Website = "website",
        Description = "description",
        OwnerReplies = "owner_replies",
    }
}

impl LeadClass {
    /// Only hot and warm leads go on to pitching.
    pub const fn qualifies(self) -> bool {
        matches!(self, Self::Hot | Self::Warm)
    }
}

vocabulary! {
    /// A channel a pitch is written for and a message goes out on.
    Channel("channel") {
        Email = "email",
        Linkedin = "linkedin",
        Phone = "phone",
        Sms = "sms",
    }
}

vocabulary! {
    /// A client's onboarding state (`clients.state`), in the order a client moves through
    /// them.
    ClientState("client state") {
        NotStarted = "not started",
        DocumentsRequested = "documents requested",
        DocumentsReceived = "documents received",
        ContractSent = "contract sent",
        ContractSigned = "contract signed",
        AccountSetUp = "account set up",
        PaymentSetUp = "payment set up",
        TrainingScheduled = "training scheduled",
        TrainingCompleted = "training completed",
        Live = "live",
    }
}

vocabulary! {
    /// A booked meeting's state (`meetings.status`): `scheduled → held | no_show |
    /// canceled`, then `held → won | lost`. Only a won meeting makes a client.
    MeetingState("meeting state") {
        Scheduled = "scheduled",
        Canceled = "canceled",
        Held = "held",
        NoShow = "no_show",
        /// Held and sold: the tier is recorded and onboarding starts.
        Won = "won",
        /// Held and not sold: the reason is recorded.
        Lost = "lost",
    }
}

impl MeetingState {
    /// Whether the meeting took place (whatever came of it).
    pub const fn was_held(self) -> bool {
        matches!(self, Self::Held | Self::Won | Self::Lost)
    }

    /// Whether the meeting's story is over: nothing more can be recorded on it.
    pub const fn is_final(self) -> bool {
        matches!(self, Self::Canceled | Self::Won | Self::Lost)
    }
}

vocabulary! {
    /// How a meeting was tied to its prospect (`meetings.attribution`; none: not yet).
    AttributedBy("attribution") {
        /// The booking link's tracking, its signature verified.
        Link = "link",
        /// The invitee's address, one we wrote to: for the operator to confirm.
        Email = "email",
        /// Linked by hand (`cep meeting-link`).
        Operator = "operator",
    }
}

vocabulary! {
    /// A Business Profile edit's state (`gbp_edits.status`): recorded only in dry run,
    /// then `applying → applied`, or `failed` (free for a retry), or `unknown` (the call
    /// got no answer: never made again).
    EditStatus("profile edit status") {
        DryRun = "dry_run",
        Applying = "applying",
        Applied = "applied",
        Failed = "failed",
        Unknown = "unknown",
    }
}

vocabulary! {
    /// What a Calendly webhook says happened to a booking (its `event`).
    BookingAction("booking action") {
        Created = "invitee.created",
        Canceled = "invitee.canceled",
        /// The host marked the invitee a no-show.
        NoShow = "invitee_no_show.created",
        /// The host took the no-show mark back.
        NoShowUndone = "invitee_no_show.deleted",
    }
}

vocabulary! {
    /// The business facts the containers' ratios and the reports count (`events.kind`).
    EventKind("event kind") {
        /// Prospecting found and kept a business.
        ProspectFound = "prospect_found",
        /// A prospect's pitches are written.
        Pitched = "pitched",
        /// An outreach message came due (after caps and suppression).
        Due = "due",
        /// An outreach message went out (or was recorded, or became a task).
        Delivered = "delivered",
        /// A prospect's first message of the sequence went out.
        Contacted = "contacted",
        Replied = "replied",
        /// A message whose outcome is unknown was flagged.
        SendUnknown = "send_unknown",
        Suppressed = "suppressed",
        /// An out-of-office or other automatic answer to one of our messages.
        AutoReply = "auto_reply",
        /// A temporary delivery failure reported for one of our messages.
        SoftBounce = "soft_bounce",
        /// A person closed an outreach task.
        TaskDone = "task_done",
        Booked = "booked",
        Canceled = "canceled",
        /// A meeting took place.
        Held = "held",
        /// The invitee did not come (`data.undone`: the mark was taken back).
        NoShow = "no_show",
        /// A held meeting sold a tier.
        Won = "won",
        /// A held meeting did not sell.
        Lost = "lost",
        /// Onboarding started a client.
        Started = "started",
        /// Onboarding finished a client (the last checklist task).
        Completed = "completed",
        /// A client's profile was optimized.
        Optimized = "optimized",
        Invoiced = "invoiced",
        Paid = "paid",
        /// A client cancelled its subscription.
        Closed = "closed",
    }
}

impl EventKind {
    /// The layer that records events of this kind.
    pub const fn layer(self) -> Layer {
        match self {
            Self::ProspectFound => Layer::Prospecting,
            Self::Pitched => Layer::PitchGeneration,
            Self::Due
            | Self::Delivered
            | Self::Contacted
            | Self::Replied
            | Self::SendUnknown
            | Self::Suppressed
            | Self::AutoReply
            | Self::SoftBounce
            | Self::TaskDone => Layer::Outreach,
            Self::Booked | Self::Canceled | Self::Held | Self::NoShow | Self::Won | Self::Lost => {
                Layer::Booking
            }
            Self::Started | Self::Completed => Layer::Onboarding,
            Self::Optimized => Layer::Optimization,
            Self::Invoiced | Self::Paid | Self::Closed => Layer::Finance,
        }
    }
}

vocabulary! {
    /// Where Φ_sync stands: the highest threshold it meets, `critical` below them all,
    /// `no data` when no container has any.
    PhiStatus("Φ_sync status") {
        NoData = "no data",
        Critical = "critical",
        Infrastructure = "infrastructure",
        Factory = "factory",
        Sales = "sales",
        Operations = "operations",
        Machine = "machine",
        Production = "production",
    }
}

vocabulary! {
    /// How an attempt ended: the `outcome` label of `cep_jobs_total`.
    JobOutcome("job outcome") {
        Succeeded = "succeeded",
        Retried = "retried",
        /// Not now: a window, a cap or a rate limit opens later (no attempt used).
        Deferred = "deferred",
        Dead = "dead",
        /// The lease had been lost (the job was recovered elsewhere).
        LeaseLost = "lease_lost",
    }
}

vocabulary! {
    /// What became of a webhook delivery: the `result` label of `cep_webhooks_total`.
    WebhookResult("webhook result") {
        Queued = "queued",
        Duplicate = "duplicate",
        Ignored = "ignored",
        BadSignature = "bad_signature",
        BadBody = "bad_body",
        /// The signing secret is not set, so every delivery is refused.
        Unconfigured = "unconfigured",
        /// The queue or store did not answer; the sender retries.
        Unavailable = "unavailable",
    }
}

vocabulary! {
    /// Where a job sits in the queue: the `state` label of `cep_queue_jobs`.
    QueueState("queue state") {
        Ready = "ready",
        Scheduled = "scheduled",
        Running = "running",
        Dead = "dead",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_name_reads_back_as_itself_and_a_typo_is_refused() {
        fn round_trip<T: Copy + PartialEq + std::fmt::Debug + std::str::FromStr>(
            all: &[T],
            text: fn(T) -> &'static str,
        ) where
            T::Err: std::fmt::Debug,
        {
            for v in all {
                assert_eq!(text(*v).parse::<T>().unwrap(), *v);
                let json = serde_json::to_string(text(*v)).unwrap();
                assert_eq!(json, format!("\"{}\"", text(*v)));
            }
        }
        round_trip(MessageStatus::ALL, MessageStatus::as_str);
        round_trip(ProspectStatus::ALL, ProspectStatus::as_str);
        round_trip(Signal::ALL, Signal::as_str);
        round_trip(LeadClass::ALL, LeadClass::as_str);
        round_trip(Channel::ALL, Channel::as_str);
        round_trip(ClientState::ALL, ClientState::as_str);
        round_trip(MeetingState::ALL, MeetingState::as_str);
        round_trip(AttributedBy::ALL, AttributedBy::as_str);
        round_trip(BookingAction::ALL, BookingAction::as_str);
        round_trip(PhiStatus::ALL, PhiStatus::as_str);
        round_trip(EditStatus::ALL, EditStatus::as_str);
        round_trip(LeadClass::ALL, LeadClass::as_str);
        round_trip(EventKind::ALL, EventKind::as_str);
        round_trip(JobOutcome::ALL, JobOutcome::as_str);
        round_trip(WebhookResult::ALL, WebhookResult::as_str);
        round_trip(QueueState::ALL, QueueState::as_str);
        assert_eq!(
            serde_json::to_string(&EventKind::ProspectFound).unwrap(),
            "\"prospect_found\""
        );
        let e = "contactd".parse::<EventKind>().unwrap_err();
        assert!(e.to_string().contains("contactd"), "{e}");
    }
}
