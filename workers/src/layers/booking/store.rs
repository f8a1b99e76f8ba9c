//! Booking's SQL: which prospect and pitch a booking belongs to, and the meeting row
//! with its event and the prospect's new status, in one transaction.

use crate::layers::outreach::verify_booking_signature;
use crate::{Ctx, JobError};
use cep_shared::jobs::BookingJob;
use cep_shared::vocabulary::{
    AttributedBy, BookingAction, Channel, EventKind, MeetingState, MessageStatus, ProspectStatus,
};

/// The prospect and pitch (with its variant) a booking came from, and how that is known.
pub struct Attribution {
    pub prospect_id: Option<String>,
    pub pitch_id: Option<String>,
    pub variant: Option<String>,
    /// None: unattributed, waiting for the operator.
    pub by: Option<AttributedBy>,
}

impl Attribution {
    fn none() -> Self {
        Self {
            prospect_id: None,
            pitch_id: None,
            variant: None,
            by: None,
        }
    }
}

/// Maps a booking to its prospect and pitch. The booking link's tracking counts only
/// when its signature verifies (anyone can book through the public page and write any
/// tracking values). Otherwise the invitee's address, only one our email went to, and
/// flagged for the operator. Otherwise nobody: the operator links it.
pub async fn attribute(ctx: &Ctx, job: &BookingJob) -> Result<Attribution, JobError> {
    let pool = ctx.store.pool();
    let signed = match (
        ctx.secrets.booking_link_key.as_deref(),
        job.utm_campaign.as_deref(),
        job.utm_content.as_deref(),
        job.utm_term.as_deref(),
    ) {
        (Some(key), Some(prospect), Some(pitch), Some(sig))
            if verify_booking_signature(key, prospect, pitch, sig) =>
        {
            Some((prospect, pitch))
        }
        _ => None,
    };
    if let Some((prospect, pitch)) = signed {
        let found: Option<(String,)> = sqlx::query_as("SELECT id FROM prospects WHERE id = $1")
            .bind(prospect)
            .fetch_optional(pool)
            .await?;
        if found.is_some() {
            let row: Option<(String, String)> = sqlx::query_as(
                "SELECT id, variant FROM pitches WHERE id = $1 AND prospect_id = $2",
            )
            .bind(pitch)
            .bind(prospect)
            .fetch_optional(pool)
            .await?;
            let (pitch_id, variant) = row.unzip();
            return Ok(Attribution {
                prospect_id: Some(prospect.to_owned()),
                pitch_id,
                variant,
                by: Some(AttributedBy::Link),
            });
        }
    }
    let wrote_to: Option<(String,)> = sqlx::query_as(
        "SELECT prospect_id FROM messages WHERE address = $1 AND channel = $2 AND status IN ($3, $4)
          ORDER BY sent_at DESC, id LIMIT 1",
    )
    .bind(job.email.trim().to_lowercase())
    .bind(Channel::Email.as_str())
    .bind(MessageStatus::Sent.as_str())
    .bind(MessageStatus::Unknown.as_str())
    .fetch_optional(pool)
    .await?;
    Ok(match wrote_to {
        Some((prospect,)) => Attribution {
            prospect_id: Some(prospect),
            by: Some(AttributedBy::Email),
            ..Attribution::none()
        },
        None => Attribution::none(),
    })
}

/// A booking or a cancel, recorded: the meeting row (a cancel may arrive before its
/// booking; either order leaves one row), its event, and the prospect's status — a
/// booking stops the sequence, a cancel that is not a reschedule ends it. A cancel
/// changes only a meeting still scheduled (one held, missed or decided keeps what
/// happened). Returns the meeting's state.
pub async fn record(
    ctx: &Ctx,
    job: &BookingJob,
    action: BookingAction,
    meeting_id: &str,
    meeting_type: &str,
    start_at: Option<i64>,
    a: &Attribution,
) -> Result<MeetingState, JobError> {
    let now = ctx.now();
    let canceling = action == BookingAction::Canceled;
    let state = if canceling {
        MeetingState::Canceled
    } else {
        MeetingState::Scheduled
    };
    let mut tx = ctx.store.pool().begin().await?;
    sqlx::query(
        "INSERT INTO meetings (id, prospect_id, pitch_variant, pitch_id, email, name, meeting_type, status, rescheduled, start_at, created_at, updated_at, attribution)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $11, $12)
         ON CONFLICT (id) DO NOTHING",
    )
    .bind(meeting_id)
    .bind(&a.prospect_id)
    .bind(&a.variant)
    .bind(&a.pitch_id)
    .bind(job.email.trim().to_lowercase())
    .bind(&job.name)
    .bind(meeting_type)
    .bind(state.as_str())
    .bind(i64::from(job.rescheduled))
    .bind(start_at)
    .bind(now)
    .bind(a.by.map(AttributedBy::as_str))
    .execute(&mut *tx)
    .await?;
    if canceling {
        sqlx::query(
            "UPDATE meetings SET status = $4, rescheduled = $2, updated_at = $3 WHERE id = $1 AND status = $5",
        )
        .bind(meeting_id)
        .bind(i64::from(job.rescheduled))
        .bind(now)
        .bind(MeetingState::Canceled.as_str())
        .bind(MeetingState::Scheduled.as_str())
        .execute(&mut *tx)
        .await?;
    }
    let (status,): (String,) = sqlx::query_as("SELECT status FROM meetings WHERE id = $1")
        .bind(meeting_id)
        .fetch_one(&mut *tx)
        .await?;
    let now_state: MeetingState = status
        .parse()
        .map_err(|e| JobError::Invalid(format!("meeting `{meeting_id}`: {e}")))?;
    if canceling && now_state != MeetingState::Canceled {
        // Too late to cancel: the meeting is held, missed or decided.
        tx.commit().await?;
        return Ok(now_state);
    }
    let event = if canceling {
        EventKind::Canceled
    } else {
        EventKind::Booked
    };
    let data = serde_json::json!({
        "prospect": a.prospect_id, "variant": a.variant, "type": meeting_type,
        "rescheduled": job.rescheduled, "attributed_by": a.by,
    });
    ctx.store
        .record_event(&mut *tx, event, meeting_id, data, now)
        .await?;
    // A booking stops the sequence (a client stays a client); a cancel that is not a
    // reschedule ends it.
    match (&a.prospect_id, action) {
        (Some(pid), BookingAction::Created) => book_prospect(&mut tx, pid, now).await?,
        (Some(pid), BookingAction::Canceled) if !job.rescheduled => {
            sqlx::query(
                "UPDATE prospects SET status = $3, updated_at = $2 WHERE id = $1 AND status = $4",
            )
            .bind(pid)
            .bind(now)
            .bind(ProspectStatus::Stopped.as_str())
            .bind(ProspectStatus::Booked.as_str())
            .execute(&mut *tx)
            .await?;
        }
        _ => {}
    }
    tx.commit().await?;
    Ok(now_state)
}

/// The prospect a meeting is tied to, and how.
pub async fn attributed(
    ctx: &Ctx,
    meeting_id: &str,
) -> Result<(Option<String>, Option<AttributedBy>), JobError> {
    let (prospect, by): (Option<String>, Option<String>) =
        sqlx::query_as("SELECT prospect_id, attribution FROM meetings WHERE id = $1")
            .bind(meeting_id)
            .fetch_one(ctx.store.pool())
            .await?;
    let by = by
        .map(|b| b.parse())
        .transpose()
        .map_err(|e| JobError::Invalid(format!("meeting `{meeting_id}`: {e}")))?;
    Ok((prospect, by))
}

/// A prospect booked a meeting: its sequence stops (a client stays a client) and its
/// open tasks for a person close.
async fn book_prospect(
    tx: &mut sqlx::Transaction<'_, sqlx::Any>,
    prospect_id: &str,
    now: i64,
) -> Result<(), JobError> {
    sqlx::query("UPDATE prospects SET status = $3, updated_at = $2 WHERE id = $1 AND status <> $4")
        .bind(prospect_id)
        .bind(now)
        .bind(ProspectStatus::Booked.as_str())
        .bind(ProspectStatus::Client.as_str())
        .execute(&mut **tx)
        .await?;
    crate::layers::outreach::store::close_open(
        &mut **tx,
        prospect_id,
        "closed: the prospect booked",
        now,
    )
    .await
}

/// Meetings waiting for the operator, oldest first: with no prospect or one matched by
/// email alone; past their start with no attendance recorded; held with nothing decided.
pub async fn to_review(ctx: &Ctx) -> Result<Vec<super::ToReview>, JobError> {
    use super::Needs;
    type Row = (
        String,
        String,
        String,
        String,
        Option<i64>,
        Option<String>,
        Option<String>,
        Option<String>,
    );
    let rows: Vec<Row> = sqlx::query_as(
        "SELECT m.id, m.email, m.name, m.status, m.start_at, m.prospect_id, m.attribution, p.lead_class
           FROM meetings m LEFT JOIN prospects p ON p.id = m.prospect_id
          WHERE (m.status NOT IN ($1, $2, $3)
                 AND (m.attribution IS NULL OR m.attribution = $4))
             OR (m.status = $5 AND m.start_at <= $7)
             OR m.status = $6
          ORDER BY m.created_at, m.id",
    )
    .bind(MeetingState::Canceled.as_str())
    .bind(MeetingState::Won.as_str())
    .bind(MeetingState::Lost.as_str())
    .bind(AttributedBy::Email.as_str())
    .bind(MeetingState::Scheduled.as_str())
    .bind(MeetingState::Held.as_str())
    .bind(ctx.now())
    .fetch_all(ctx.store.pool())
    .await?;
    let r = &ctx.settings.layers.onboarding;
    rows.into_iter()
        .map(
            |(id, email, name, status, start_at, prospect_id, by, class)| {
                let invalid = |e: cep_shared::layer::UnknownName| {
                    JobError::Invalid(format!("meeting `{id}`: {e}"))
                };
                let status: MeetingState = status.parse().map_err(invalid)?;
                let attributed_by: Option<AttributedBy> =
                    by.map(|b| b.parse()).transpose().map_err(invalid)?;
                let needs = match (attributed_by, status) {
                    (None, _) => Needs::Link,
                    (Some(AttributedBy::Email), _) => Needs::Confirm,
                    (_, MeetingState::Held) => Needs::Decision,
                    _ => Needs::Attendance,
                };
                let suggested_tier = match class {
                    Some(c) => Some(
                        crate::layers::onboarding::rules::tier_for(c.parse().map_err(invalid)?, r)
                            .to_owned(),
                    ),
                    None => None,
                };
                Ok(super::ToReview {
                    needs,
                    status,
                    attributed_by,
                    meeting_id: id,
                    email,
                    name,
                    start_at,
                    prospect_id,
                    suggested_tier,
                })
            },
        )
        .collect()
}

/// Ties `meeting_id` to `prospect_id` by hand; a scheduled meeting books its prospect.
/// Returns the meeting's state.
pub async fn link(
    ctx: &Ctx,
    meeting_id: &str,
    prospect_id: &str,
) -> Result<MeetingState, JobError> {
    let pool = ctx.store.pool();
    let now = ctx.now();
    let prospect: Option<(String,)> = sqlx::query_as("SELECT id FROM prospects WHERE id = $1")
        .bind(prospect_id)
        .fetch_optional(pool)
        .await?;
    if prospect.is_none() {
        return Err(JobError::Invalid(format!("no prospect `{prospect_id}`")));
    }
    let mut tx = pool.begin().await?;
    let meeting: Option<(String,)> = sqlx::query_as("SELECT status FROM meetings WHERE id = $1")
        .bind(meeting_id)
        .fetch_optional(&mut *tx)
        .await?;
    let Some((status,)) = meeting else {
        return Err(JobError::Invalid(format!("no meeting `{meeting_id}`")));
    };
    let state: MeetingState = status
        .parse()
        .map_err(|e| JobError::Invalid(format!("meeting `{meeting_id}`: {e}")))?;
    if matches!(state, MeetingState::Won | MeetingState::Lost) {
        return Err(JobError::Invalid(format!(
            "meeting `{meeting_id}` is {state} already; its prospect stays as recorded"
        )));
    }
    sqlx::query(
        "UPDATE meetings SET prospect_id = $2, attribution = $3, updated_at = $4 WHERE id = $1",
    )
    .bind(meeting_id)
    .bind(prospect_id)
    .bind(AttributedBy::Operator.as_str())
    .bind(now)
    .execute(&mut *tx)
    .await?;
    if !matches!(state, MeetingState::Canceled) {
        book_prospect(&mut tx, prospect_id, now).await?;
    }
    tx.commit().await?;
    Ok(state)
}
