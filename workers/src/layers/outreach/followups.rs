//! What a person settles in outreach: a message whose outcome is unknown (it may or may
//! not have gone out: marked sent after checking the mailbox, sent again, or dropped),
//! and a reply, marked answered once someone has.

use crate::{Ctx, JobError};
use cep_shared::jobs::{Job, OutreachJob};
use cep_shared::queue::NewJob;
use cep_shared::vocabulary::{EventKind, MessageStatus, ProspectStatus};
use serde::{Deserialize, Serialize};

/// What becomes of a message in the `unknown` state.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Resolution {
    /// It did go out (seen in the mailbox's sent folder, say).
    Sent,
    /// It did not: send it again, now.
    Resend,
    /// Leave it: nothing more goes out for this step.
    Drop,
}

impl std::str::FromStr for Resolution {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "sent" => Ok(Self::Sent),
            "resend" => Ok(Self::Resend),
            "drop" => Ok(Self::Drop),
            other => Err(format!("`{other}` is not sent, resend or drop")),
        }
    }
}

/// A message of unknown outcome, as the inbox shows it.
#[derive(Debug, Clone, PartialEq, Serialize, sqlx::FromRow)]
pub struct UnknownMessage {
    pub id: String,
    pub prospect_id: String,
    pub prospect: String,
    pub channel: String,
    pub step: i64,
    pub reason: Option<String>,
    pub updated_at: i64,
}

pub async fn unknown(ctx: &Ctx, limit: u32) -> Result<Vec<UnknownMessage>, JobError> {
    Ok(sqlx::query_as(
        "SELECT m.id, m.prospect_id, p.name AS prospect, m.channel, m.step, m.reason, m.updated_at
           FROM messages m JOIN prospects p ON p.id = m.prospect_id
          WHERE m.status = $1 ORDER BY m.sent_at, m.id LIMIT $2",
    )
    .bind(MessageStatus::Unknown.as_str())
    .bind(i64::from(limit))
    .fetch_all(ctx.store.pool())
    .await?)
}

/// Settles a message of unknown outcome; refused for one in any other state.
pub async fn resolve(ctx: &Ctx, id: &str, how: Resolution) -> Result<MessageStatus, JobError> {
    let now = ctx.now();
    let (to, reason) = match how {
        Resolution::Sent => (MessageStatus::Sent, None),
        // Claimable again: the send takes the day's cap and the window as any send does.
        Resolution::Resend => (MessageStatus::Pending, None),
        Resolution::Drop => (MessageStatus::Skipped, Some("dropped by a person")),
    };
    let changed = sqlx::query(
        "UPDATE messages SET status = $2, reason = $3, updated_at = $4 WHERE id = $1 AND status = $5",
    )
    .bind(id)
    .bind(to.as_str())
    .bind(reason)
    .bind(now)
    .bind(MessageStatus::Unknown.as_str())
    .execute(ctx.store.pool())
    .await?;
    if changed.rows_affected() != 1 {
        let state: Option<(String,)> = sqlx::query_as("SELECT status FROM messages WHERE id = $1")
            .bind(id)
            .fetch_optional(ctx.store.pool())
            .await?;
        return Err(JobError::Invalid(match state {
            None => format!("no outreach message `{id}`"),
            Some((s,)) => format!("message `{id}` is {s}, not of unknown outcome"),
        }));
    }
    if how == Resolution::Sent {
        went_out(ctx, id, now).await?;
    }
    if how == Resolution::Resend {
        let (prospect_id, step): (String, i64) =
            sqlx::query_as("SELECT prospect_id, step FROM messages WHERE id = $1")
                .bind(id)
                .fetch_one(ctx.store.pool())
                .await?;
        let job = OutreachJob {
            prospect_id,
            step: step as u32,
        };
        // A key of its own: the step's first job may still hold its deduplication key.
        let key = format!("{}:resend:{now}", job.key());
        ctx.queue.push(NewJob::of(&job, now).key(key)).await?;
    }
    Ok(to)
}

/// A message a person says went out counts as a delivery did: delivered, and for a step
/// of the sequence the prospect contacted (each recorded once, whoever records it).
async fn went_out(ctx: &Ctx, id: &str, now: i64) -> Result<(), JobError> {
    let (prospect_id, step, channel): (String, i64, String) =
        sqlx::query_as("SELECT prospect_id, step, channel FROM messages WHERE id = $1")
            .bind(id)
            .fetch_one(ctx.store.pool())
            .await?;
    let data = serde_json::json!({ "channel": channel, "step": step, "by": "a person" });
    let mut tx = ctx.store.pool().begin().await?;
    ctx.store
        .record_event(&mut *tx, EventKind::Delivered, id, data.clone(), now)
        .await?;
    let in_sequence =
        usize::try_from(step).is_ok_and(|s| s < ctx.settings.layers.outreach.sequence.len());
    if in_sequence {
        ctx.store
            .record_event(&mut *tx, EventKind::Contacted, &prospect_id, data, now)
            .await?;
        sqlx::query(
            "UPDATE prospects SET status = $3, updated_at = $2 WHERE id = $1 AND status IN ($4, $5)",
        )
        .bind(&prospect_id)
        .bind(now)
        .bind(ProspectStatus::Contacted.as_str())
        .bind(ProspectStatus::New.as_str())
        .bind(ProspectStatus::Pitched.as_str())
        .execute(&mut *tx)
        .await?;
    }
    tx.commit().await?;
    Ok(())
}

/// A prospect's reply that waits for an answer, as the inbox shows it.
#[derive(Debug, Clone, PartialEq, Serialize, sqlx::FromRow)]
pub struct Reply {
    pub prospect_id: String,
    pub prospect: String,
    pub email: Option<String>,
    pub phone: Option<String>,
    pub replied_at: i64,
}

/// Replies nobody has marked answered, oldest first.
pub async fn unanswered(ctx: &Ctx, limit: u32) -> Result<Vec<Reply>, JobError> {
    Ok(sqlx::query_as(
        "SELECT id AS prospect_id, name AS prospect, email, phone, updated_at AS replied_at
           FROM prospects WHERE status = $1 AND answered_at IS NULL
          ORDER BY updated_at, id LIMIT $2",
    )
    .bind(ProspectStatus::Replied.as_str())
    .bind(i64::from(limit))
    .fetch_all(ctx.store.pool())
    .await?)
}

/// Marks a prospect's reply answered by `by`; `false` when it was already.
pub async fn answered(ctx: &Ctx, prospect_id: &str, by: &str) -> Result<bool, JobError> {
    let r = sqlx::query(
        "UPDATE prospects SET answered_at = $2, answered_by = $3
          WHERE id = $1 AND status = $4 AND answered_at IS NULL",
    )
    .bind(prospect_id)
    .bind(ctx.now())
    .bind(by)
    .bind(ProspectStatus::Replied.as_str())
    .execute(ctx.store.pool())
    .await?;
    if r.rows_affected() == 0 {
        let row: Option<(String, Option<i64>)> =
            sqlx::query_as("SELECT status, answered_at FROM prospects WHERE id = $1")
                .bind(prospect_id)
                .fetch_optional(ctx.store.pool())
                .await?;
        return match row {
            None => Err(JobError::Invalid(format!("no prospect `{prospect_id}`"))),
            Some((_, Some(_))) => Ok(false),
            Some((s, None)) => Err(JobError::Invalid(format!(
                "prospect `{prospect_id}` is {s}: there is no reply to answer"
            ))),
        };
    }
    Ok(true)
}
