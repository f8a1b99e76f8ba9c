//! Booking's SQL: which prospect and pitch a booking belongs to, and the meeting row
//! with its event and the prospect's new status, in one transaction.

use crate::{Ctx, JobError};
use cep_shared::jobs::BookingJob;
use cep_shared::vocabulary::{BookingAction, EventKind, MeetingState, ProspectStatus};

/// The prospect and pitch (with its variant) a booking came from.
pub struct Attribution {
    pub prospect_id: Option<String>,
    pub pitch_id: Option<String>,
    pub variant: Option<String>,
}

/// Maps a booking to its prospect and pitch: the booking link's UTM fields first, the
/// invitee's email otherwise.
pub async fn attribute(ctx: &Ctx, job: &BookingJob) -> Result<Attribution, JobError> {
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
    Ok(Attribution {
        prospect_id: prospect,
        pitch_id,
        variant,
    })
}

/// A booking or a cancel, recorded: the meeting row (a cancel may arrive before its
/// booking; either order leaves one row), its event, and the prospect's status — a
/// booking stops the sequence, a cancel that is not a reschedule ends it.
pub async fn record(
    ctx: &Ctx,
    job: &BookingJob,
    action: BookingAction,
    meeting_id: &str,
    meeting_type: &str,
    start_at: Option<i64>,
    a: &Attribution,
) -> Result<(), JobError> {
    let now = ctx.now();
    let state = match action {
        BookingAction::Created => MeetingState::Scheduled,
        BookingAction::Canceled => MeetingState::Canceled,
    };
    let mut tx = ctx.store.pool().begin().await?;
    sqlx::query(
        "INSERT INTO meetings (id, prospect_id, pitch_variant, pitch_id, email, name, meeting_type, status, rescheduled, start_at, created_at, updated_at)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $11)
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
    .execute(&mut *tx)
    .await?;
    if state == MeetingState::Canceled {
        sqlx::query(
            "UPDATE meetings SET status = $4, rescheduled = $2, updated_at = $3 WHERE id = $1",
        )
        .bind(meeting_id)
        .bind(i64::from(job.rescheduled))
        .bind(now)
        .bind(state.as_str())
        .execute(&mut *tx)
        .await?;
    }
    let event = match action {
        BookingAction::Created => EventKind::Booked,
        BookingAction::Canceled => EventKind::Canceled,
    };
    let data = serde_json::json!({
        "prospect": a.prospect_id, "variant": a.variant, "type": meeting_type,
        "rescheduled": job.rescheduled,
    });
    ctx.store
        .record_event(&mut *tx, event, meeting_id, data, now)
        .await?;
    // A booking stops the sequence (a client stays a client); a cancel that is not a
    // reschedule ends it.
    let update = match action {
        BookingAction::Created => Some((
            "UPDATE prospects SET status = $3, updated_at = $2 WHERE id = $1 AND status <> $4",
            ProspectStatus::Booked,
            ProspectStatus::Client,
        )),
        BookingAction::Canceled if !job.rescheduled => Some((
            "UPDATE prospects SET status = $3, updated_at = $2 WHERE id = $1 AND status = $4",
            ProspectStatus::Stopped,
            ProspectStatus::Booked,
        )),
        BookingAction::Canceled => None,
    };
    if let (Some(pid), Some((sql, to, from))) = (&a.prospect_id, update) {
        sqlx::query(sql)
            .bind(pid)
            .bind(now)
            .bind(to.as_str())
            .bind(from.as_str())
            .execute(&mut *tx)
            .await?;
    }
    tx.commit().await?;
    Ok(())
}
