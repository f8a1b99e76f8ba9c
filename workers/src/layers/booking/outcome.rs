//! What came of a meeting: held, no-show, won (with the tier sold) or lost (with a
//! reason). The operator records them (`cep meeting <id> …`); Calendly's
//! `invitee_no_show.*` events mark and unmark a no-show. Only a won meeting starts
//! onboarding, which makes the client and its billing.

use crate::{Ctx, JobError};
use cep_shared::clock::HOUR;
use cep_shared::jobs::OnboardingJob;
use cep_shared::queue::NewJob;
use cep_shared::vocabulary::{EventKind, MeetingState, ProspectStatus};
use serde::{Deserialize, Serialize};

/// The longest reason a lost meeting keeps.
pub const MAX_REASON_CHARS: usize = 500;

/// What happened, as someone reports it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    Held,
    NoShow,
    /// A no-show mark taken back (Calendly's `invitee_no_show.deleted`).
    NoShowUndone,
    Won {
        tier: String,
    },
    Lost {
        reason: String,
    },
}

/// Who reports an outcome.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Reporter {
    Operator,
    Calendly,
}

impl Reporter {
    fn as_str(self) -> &'static str {
        match self {
            Reporter::Operator => "operator",
            Reporter::Calendly => "calendly",
        }
    }
}

/// The state `outcome` moves a meeting in `current` to: `Ok(None)` when it is there
/// already (a repeat changes nothing), an error naming why it cannot.
pub fn next_state(
    current: MeetingState,
    outcome: &Outcome,
) -> Result<Option<MeetingState>, String> {
    use MeetingState::*;
    let to = match outcome {
        Outcome::Held => Held,
        Outcome::NoShow => NoShow,
        Outcome::NoShowUndone => {
            return Ok((current == NoShow).then_some(Scheduled));
        }
        Outcome::Won { .. } => Won,
        Outcome::Lost { .. } => Lost,
    };
    if current == to {
        return Ok(None);
    }
    match (current, to) {
        (Canceled, _) => Err("the meeting was canceled".into()),
        (Won | Lost, _) => Err(format!("the meeting is {current} already; that is final")),
        (Scheduled, _) | (Held, NoShow) | (NoShow, Held) | (Held, Won | Lost) => Ok(Some(to)),
        (NoShow, _) => Err("the meeting was a no-show: record it held first".into()),
        _ => Err(format!("a {current} meeting cannot become {to}")),
    }
}

/// What recording an outcome did.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Recorded {
    pub meeting_id: String,
    pub previous: MeetingState,
    pub state: MeetingState,
    /// False when the meeting was in that state already.
    pub changed: bool,
    pub tier: Option<String>,
    pub lost_reason: Option<String>,
    /// When onboarding starts, for a meeting just won.
    pub onboarding_at: Option<i64>,
}

/// The meeting as the outcome needs it.
struct Meeting {
    state: MeetingState,
    prospect_id: Option<String>,
    start_at: Option<i64>,
    tier: Option<String>,
    lost_reason: Option<String>,
}

async fn meeting(ctx: &Ctx, meeting_id: &str) -> Result<Meeting, JobError> {
    type Row = (
        String,
        Option<String>,
        Option<i64>,
        Option<String>,
        Option<String>,
    );
    let row: Option<Row> = sqlx::query_as(
        "SELECT status, prospect_id, start_at, tier, lost_reason FROM meetings WHERE id = $1",
    )
    .bind(meeting_id)
    .fetch_optional(ctx.store.pool())
    .await?;
    let Some((status, prospect_id, start_at, tier, lost_reason)) = row else {
        return Err(JobError::Invalid(format!("no meeting `{meeting_id}`")));
    };
    Ok(Meeting {
        state: status
            .parse()
            .map_err(|e| JobError::Invalid(format!("meeting `{meeting_id}`: {e}")))?,
        prospect_id,
        start_at,
        tier,
        lost_reason,
    })
}

/// Checks what the outcome carries: a tier the agency sells, a reason that says
/// something.
fn checked(ctx: &Ctx, outcome: Outcome) -> Result<Outcome, JobError> {
    Ok(match outcome {
        Outcome::Won { tier } => {
            let tier = tier.trim().to_owned();
            if ctx.settings.layers.finance.tier(&tier).is_none() {
                return Err(JobError::Invalid(format!(
                    "unknown tier `{tier}`: the tiers are starter, professional, enterprise"
                )));
            }
            Outcome::Won { tier }
        }
        Outcome::Lost { reason } => {
            let reason = reason.trim().to_owned();
            if reason.is_empty() {
                return Err(JobError::Invalid(
                    "a lost meeting needs a reason (`--reason`)".into(),
                ));
            }
            if reason.chars().count() > MAX_REASON_CHARS {
                return Err(JobError::Invalid(format!(
                    "the reason is longer than {MAX_REASON_CHARS} characters"
                )));
            }
            Outcome::Lost { reason }
        }
        other => other,
    })
}

/// Records `outcome` for `meeting_id`, reported by `by`: the meeting's state, its
/// event, a lost prospect's status, in one transaction; a win then queues onboarding.
pub async fn record(
    ctx: &Ctx,
    meeting_id: &str,
    outcome: Outcome,
    by: Reporter,
) -> Result<Recorded, JobError> {
    let outcome = checked(ctx, outcome)?;
    let m = meeting(ctx, meeting_id).await?;
    let now = ctx.now();
    let unchanged = |m: Meeting| Recorded {
        meeting_id: meeting_id.to_owned(),
        previous: m.state,
        state: m.state,
        changed: false,
        tier: m.tier,
        lost_reason: m.lost_reason,
        onboarding_at: None,
    };
    let to = match next_state(m.state, &outcome)
        .map_err(|why| JobError::Invalid(format!("meeting `{meeting_id}`: {why}")))?
    {
        Some(to) => to,
        None => {
            if let (Outcome::Won { tier }, Some(sold)) = (&outcome, &m.tier)
                && tier != sold
            {
                return Err(JobError::Invalid(format!(
                    "meeting `{meeting_id}` is won already, with tier `{sold}`"
                )));
            }
            return Ok(unchanged(m));
        }
    };
    if by == Reporter::Operator
        && outcome != Outcome::NoShowUndone
        && let Some(start) = m.start_at
        && start > now
    {
        return Err(JobError::Invalid(format!(
            "meeting `{meeting_id}` starts at {}; record what happened after it",
            cep_shared::clock::from_millis(start).format("%Y-%m-%d %H:%M UTC")
        )));
    }
    if matches!(outcome, Outcome::Won { .. }) && m.prospect_id.is_none() {
        return Err(JobError::Invalid(format!(
            "meeting `{meeting_id}` is not linked to a prospect: `cep meeting-link {meeting_id} <prospect>` first"
        )));
    }
    let (tier, reason) = match &outcome {
        Outcome::Won { tier } => (Some(tier.clone()), None),
        Outcome::Lost { reason } => (None, Some(reason.clone())),
        _ => (None, None),
    };

    let mut tx = ctx.store.pool().begin().await?;
    let updated = sqlx::query(
        "UPDATE meetings SET status = $3, tier = COALESCE($4, tier), lost_reason = COALESCE($5, lost_reason),
                outcome_at = $6, outcome_by = $7, updated_at = $6
          WHERE id = $1 AND status = $2",
    )
    .bind(meeting_id)
    .bind(m.state.as_str())
    .bind(to.as_str())
    .bind(&tier)
    .bind(&reason)
    .bind(now)
    .bind(by.as_str())
    .execute(&mut *tx)
    .await?;
    if updated.rows_affected() == 0 {
        return Err(JobError::Invalid(format!(
            "meeting `{meeting_id}` changed meanwhile; look again and retry"
        )));
    }
    let mut events = Vec::new();
    if m.state == MeetingState::Scheduled && matches!(to, MeetingState::Won | MeetingState::Lost) {
        // Won or lost straight from scheduled: it was held.
        events.push((EventKind::Held, serde_json::json!({})));
    }
    events.push(match to {
        MeetingState::Held => (EventKind::Held, serde_json::json!({})),
        MeetingState::NoShow => (EventKind::NoShow, serde_json::json!({})),
        MeetingState::Won => (EventKind::Won, serde_json::json!({ "tier": tier })),
        MeetingState::Lost => (EventKind::Lost, serde_json::json!({ "reason": reason })),
        _ => (EventKind::NoShow, serde_json::json!({ "undone": true })),
    });
    for (kind, mut data) in events {
        data["prospect"] = serde_json::json!(m.prospect_id);
        data["by"] = serde_json::json!(by.as_str());
        ctx.store
            .record_event(&mut *tx, kind, meeting_id, data, now)
            .await?;
    }
    if let (MeetingState::Lost, Some(pid)) = (to, &m.prospect_id) {
        sqlx::query(
            "UPDATE prospects SET status = $3, updated_at = $2 WHERE id = $1 AND status = $4",
        )
        .bind(pid)
        .bind(now)
        .bind(ProspectStatus::Lost.as_str())
        .bind(ProspectStatus::Booked.as_str())
        .execute(&mut *tx)
        .await?;
    }
    tx.commit().await?;

    let mut onboarding_at = None;
    if to == MeetingState::Won {
        let hours = i64::from(ctx.settings.layers.onboarding.start_after_won_hours);
        let at = now + hours * HOUR;
        let start = OnboardingJob::Start {
            meeting_id: meeting_id.to_owned(),
        };
        ctx.queue.push(NewJob::of(&start, at)).await?;
        onboarding_at = Some(at);
    }
    Ok(Recorded {
        meeting_id: meeting_id.to_owned(),
        previous: m.state,
        state: to,
        changed: true,
        tier: tier.or(m.tier),
        lost_reason: reason.or(m.lost_reason),
        onboarding_at,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use MeetingState::*;

    fn won() -> Outcome {
        Outcome::Won {
            tier: "starter".into(),
        }
    }

    fn lost() -> Outcome {
        Outcome::Lost {
            reason: "price".into(),
        }
    }

    #[test]
    fn a_meeting_moves_scheduled_to_held_or_no_show_then_held_to_won_or_lost() {
        assert_eq!(next_state(Scheduled, &Outcome::Held), Ok(Some(Held)));
        assert_eq!(next_state(Scheduled, &Outcome::NoShow), Ok(Some(NoShow)));
        assert_eq!(next_state(Held, &won()), Ok(Some(Won)));
        assert_eq!(next_state(Held, &lost()), Ok(Some(Lost)));
        // Won or lost straight after the call: it was held.
        assert_eq!(next_state(Scheduled, &won()), Ok(Some(Won)));
        // A mistaken mark is corrected while nothing is decided.
        assert_eq!(next_state(Held, &Outcome::NoShow), Ok(Some(NoShow)));
        assert_eq!(next_state(NoShow, &Outcome::Held), Ok(Some(Held)));
        // Calendly takes a no-show back; on any other state that changes nothing.
        assert_eq!(
            next_state(NoShow, &Outcome::NoShowUndone),
            Ok(Some(Scheduled))
        );
        assert_eq!(next_state(Held, &Outcome::NoShowUndone), Ok(None));
        // A repeat changes nothing.
        assert_eq!(next_state(Won, &won()), Ok(None));
        assert_eq!(next_state(Held, &Outcome::Held), Ok(None));
    }

    #[test]
    fn a_decided_canceled_or_missed_meeting_refuses_what_cannot_follow() {
        let err = |s, o: &Outcome| next_state(s, o).unwrap_err();
        assert_eq!(
            err(Won, &lost()),
            "the meeting is won already; that is final"
        );
        assert_eq!(
            err(Lost, &Outcome::Held),
            "the meeting is lost already; that is final"
        );
        assert_eq!(err(Canceled, &Outcome::Held), "the meeting was canceled");
        assert_eq!(
            err(NoShow, &won()),
            "the meeting was a no-show: record it held first"
        );
    }
}
