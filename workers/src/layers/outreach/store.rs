//! Outreach's reads and simple writes: the prospect and pitch a step sends, the send
//! window in force, a message's status. The claim-and-settle transactions of a send live
//! with the status machine in `message.rs`.

use super::compose::PitchRow;
use super::rules::{SendHours, send_window};
use crate::layers::params;
use crate::{Ctx, JobError};
use cep_shared::vocabulary::{Channel, MessageStatus, ProspectStatus};

/// The prospect a step goes to.
pub struct Prospect {
    pub name: String,
    pub email: Option<String>,
    pub phone: Option<String>,
    pub status: ProspectStatus,
    pub utc_offset_minutes: i64,
}

type ProspectRow = (String, Option<String>, Option<String>, String, i64);

pub async fn load_prospect(ctx: &Ctx, id: &str) -> Result<Prospect, JobError> {
    let row: Option<ProspectRow> = sqlx::query_as(
        "SELECT name, email, phone, status, utc_offset_minutes FROM prospects WHERE id = $1",
    )
    .bind(id)
    .fetch_optional(ctx.store.pool())
    .await?;
    let (name, email, phone, status, utc_offset_minutes) =
        row.ok_or_else(|| JobError::Invalid(format!("no prospect `{id}`")))?;
    Ok(Prospect {
        name,
        email,
        phone,
        status: status
            .parse()
            .map_err(|e| JobError::Invalid(format!("prospect `{id}`: {e}")))?,
        utc_offset_minutes,
    })
}

pub async fn load_pitch(
    ctx: &Ctx,
    prospect_id: &str,
    channel: Channel,
) -> Result<PitchRow, JobError> {
    let row: Option<(String, Option<String>, String)> = sqlx::query_as(
        "SELECT id, subject, body FROM pitches WHERE prospect_id = $1 AND channel = $2",
    )
    .bind(prospect_id)
    .bind(channel.as_str())
    .fetch_optional(ctx.store.pool())
    .await?;
    let (id, subject, body) = row.ok_or_else(|| {
        JobError::Invalid(format!(
            "prospect `{prospect_id}` has no {channel} pitch; pitch generation must run first"
        ))
    })?;
    Ok(PitchRow {
        id,
        subject,
        body,
        with_link: true,
    })
}

/// The send window in force: the feedback loop's `send_hours`, else the configuration.
pub async fn send_hours(ctx: &Ctx) -> Result<(u32, u32), JobError> {
    let learned: Option<SendHours> = params::get(ctx, params::SEND_HOURS).await?;
    Ok(send_window(learned, &ctx.settings.layers.outreach))
}

pub async fn set_status(
    ctx: &Ctx,
    row_id: &str,
    status: MessageStatus,
    reason: Option<&str>,
) -> Result<(), JobError> {
    sqlx::query("UPDATE messages SET status = $2, reason = $3, updated_at = $4 WHERE id = $1")
        .bind(row_id)
        .bind(status.as_str())
        .bind(reason)
        .bind(ctx.now())
        .execute(ctx.store.pool())
        .await?;
    Ok(())
}

/// When the prospect's first message of the sequence went out, if it has.
pub async fn first_sent_at(ctx: &Ctx, prospect_id: &str) -> Result<Option<i64>, JobError> {
    let first: Option<(Option<i64>,)> =
        sqlx::query_as("SELECT sent_at FROM messages WHERE prospect_id = $1 AND step = 0")
            .bind(prospect_id)
            .fetch_optional(ctx.store.pool())
            .await?;
    Ok(first.and_then(|(t,)| t))
}

/// Closes a prospect's open tasks: nobody should call or message a prospect who
/// replied, booked or opted out. They end `skipped`, saying why.
pub async fn close_open<'e, E>(
    exec: E,
    prospect_id: &str,
    why: &str,
    at: i64,
) -> Result<(), JobError>
where
    E: sqlx::Executor<'e, Database = sqlx::Any>,
{
    sqlx::query(
        "UPDATE messages SET status = $4, reason = $2, updated_at = $3 WHERE prospect_id = $1 AND status = $5",
    )
    .bind(prospect_id)
    .bind(why)
    .bind(at)
    .bind(MessageStatus::Skipped.as_str())
    .bind(MessageStatus::Task.as_str())
    .execute(exec)
    .await?;
    Ok(())
}

/// The name a person of the prospect gave us: the latest meeting's invitee.
pub async fn contact_name(ctx: &Ctx, prospect_id: &str) -> Result<Option<String>, JobError> {
    let row: Option<(String,)> = sqlx::query_as(
        "SELECT name FROM meetings WHERE prospect_id = $1 ORDER BY created_at DESC, id LIMIT 1",
    )
    .bind(prospect_id)
    .fetch_optional(ctx.store.pool())
    .await?;
    Ok(row.map(|(n,)| n))
}
