//! The suppression list every send checks: opt-outs and hard bounces. Suppressing an
//! address takes its prospects out of the sequence.

use crate::{Ctx, JobError};
use cep_shared::vocabulary::{Channel, EventKind, MessageStatus, ProspectStatus};

pub async fn is_suppressed(ctx: &Ctx, address: &str) -> Result<bool, JobError> {
    let row: Option<(String,)> =
        sqlx::query_as("SELECT reason FROM suppressions WHERE address = $1")
            .bind(address.to_lowercase())
            .fetch_optional(ctx.store.pool())
            .await?;
    Ok(row.is_some())
}

/// An opt-out or hard bounce: the address goes on the suppression list every later send
/// checks, and its prospects leave the sequence.
pub async fn suppress(ctx: &Ctx, address: &str, reason: &str, at: i64) -> Result<(), JobError> {
    let address = address.trim().to_lowercase();
    let mut tx = ctx.store.pool().begin().await?;
    sqlx::query(
        "INSERT INTO suppressions (address, reason, created_at) VALUES ($1, $2, $3) ON CONFLICT (address) DO NOTHING",
    )
    .bind(&address)
    .bind(reason)
    .bind(at)
    .execute(&mut *tx)
    .await?;
    sqlx::query(
        "UPDATE prospects SET status = $3, updated_at = $2
          WHERE (LOWER(email) = $1 OR phone = $1) AND status IN ($4, $5, $6, $7)",
    )
    .bind(&address)
    .bind(at)
    .bind(ProspectStatus::Stopped.as_str())
    .bind(ProspectStatus::New.as_str())
    .bind(ProspectStatus::Pitched.as_str())
    .bind(ProspectStatus::Contacted.as_str())
    .bind(ProspectStatus::Replied.as_str())
    .execute(&mut *tx)
    .await?;
    // Their open tasks close too: nobody calls someone who opted out or bounced.
    sqlx::query(
        "UPDATE messages SET status = $3, reason = $4, updated_at = $2
          WHERE status = $5 AND prospect_id IN (SELECT id FROM prospects WHERE LOWER(email) = $1 OR phone = $1)",
    )
    .bind(&address)
    .bind(at)
    .bind(MessageStatus::Skipped.as_str())
    .bind(format!("closed: {reason}"))
    .bind(MessageStatus::Task.as_str())
    .execute(&mut *tx)
    .await?;
    ctx.store
        .record_event(
            &mut *tx,
            EventKind::Suppressed,
            &address,
            serde_json::json!({ "reason": reason }),
            at,
        )
        .await?;
    tx.commit().await?;
    Ok(())
}

/// The address a message went to (an email address, or a phone number for texts and
/// calls), for the unsubscribe endpoint and bounces: the one recorded when it was sent,
/// or the prospect's for a message not sent yet.
pub async fn recipient_of(ctx: &Ctx, message_row_id: &str) -> Result<Option<String>, JobError> {
    let row: Option<(Option<String>,)> = sqlx::query_as(
        "SELECT COALESCE(m.address, CASE WHEN m.channel IN ($2, $3) THEN p.phone ELSE p.email END)
           FROM messages m JOIN prospects p ON p.id = m.prospect_id WHERE m.id = $1",
    )
    .bind(message_row_id)
    .bind(Channel::Sms.as_str())
    .bind(Channel::Phone.as_str())
    .fetch_optional(ctx.store.pool())
    .await?;
    Ok(row.and_then(|(address,)| address))
}
