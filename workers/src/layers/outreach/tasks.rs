//! LinkedIn messages and calls (and texts, without an SMS account) are work for a
//! person. Outside dry run each becomes a message in state `task`, counted against its
//! channel's daily cap when it is handed out; a person lists them (`cep tasks`), does
//! them, and closes each (`cep task-done`), saying whether the prospect answered.

use crate::{Ctx, JobError};
use cep_shared::vocabulary::{Channel, EventKind, MessageStatus};
use serde::Serialize;

/// One piece of outreach waiting for a person.
#[derive(Debug, Clone, PartialEq, Serialize, sqlx::FromRow)]
pub struct OpenTask {
    pub id: String,
    pub channel: String,
    pub prospect_id: String,
    pub prospect: String,
    /// Whom to call or text; LinkedIn has no address of ours.
    pub phone: Option<String>,
    pub website: Option<String>,
    /// The script or message, with its booking link.
    pub body: Option<String>,
    pub handed_out_at: Option<i64>,
}

/// How a person's task ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum TaskOutcome {
    /// Done; no answer yet.
    Done,
    /// The prospect answered: the sequence stops, as for an email reply.
    Replied,
    /// The prospect asked not to be contacted: their number or address is suppressed.
    OptedOut,
}

impl std::str::FromStr for TaskOutcome {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "done" => Ok(TaskOutcome::Done),
            "replied" => Ok(TaskOutcome::Replied),
            "opted_out" => Ok(TaskOutcome::OptedOut),
            other => Err(format!(
                "`{other}` is not an outcome: done, replied or opted_out"
            )),
        }
    }
}

/// Open tasks, oldest first (`channel`: only that one).
pub async fn open(
    ctx: &Ctx,
    channel: Option<Channel>,
    limit: u32,
) -> Result<Vec<OpenTask>, JobError> {
    Ok(sqlx::query_as(
        "SELECT m.id, m.channel, m.prospect_id, p.name AS prospect, p.phone, p.website, m.body,
                m.sent_at AS handed_out_at
           FROM messages m JOIN prospects p ON p.id = m.prospect_id
          WHERE m.status = $3 AND ($1 IS NULL OR m.channel = $1)
          ORDER BY m.sent_at, m.id LIMIT $2",
    )
    .bind(channel.map(Channel::as_str))
    .bind(i64::from(limit))
    .bind(MessageStatus::Task.as_str())
    .fetch_all(ctx.store.pool())
    .await?)
}

/// Whether `id` names an outreach message (of any state).
pub async fn is_message(ctx: &Ctx, id: &str) -> Result<bool, JobError> {
    let row: Option<(String,)> = sqlx::query_as("SELECT id FROM messages WHERE id = $1")
        .bind(id)
        .fetch_optional(ctx.store.pool())
        .await?;
    Ok(row.is_some())
}

/// Closes an open task with its outcome.
pub async fn complete(ctx: &Ctx, id: &str, outcome: TaskOutcome, at: i64) -> Result<(), JobError> {
    let closed = sqlx::query(
        "UPDATE messages SET status = $3, updated_at = $2 WHERE id = $1 AND status = $4",
    )
    .bind(id)
    .bind(at)
    .bind(MessageStatus::Done.as_str())
    .bind(MessageStatus::Task.as_str())
    .execute(ctx.store.pool())
    .await?;
    if closed.rows_affected() != 1 {
        let state: Option<(String,)> = sqlx::query_as("SELECT status FROM messages WHERE id = $1")
            .bind(id)
            .fetch_optional(ctx.store.pool())
            .await?;
        return Err(JobError::Invalid(match state {
            None => format!("no outreach message `{id}`"),
            Some((s,)) => format!("message `{id}` is not an open task (it is {s})"),
        }));
    }
    ctx.store
        .record_event(
            ctx.store.pool(),
            EventKind::TaskDone,
            id,
            serde_json::json!({ "outcome": outcome }),
            at,
        )
        .await?;
    match outcome {
        TaskOutcome::Done => {}
        TaskOutcome::Replied => {
            super::message::record_reply(ctx, id, at).await?;
        }
        TaskOutcome::OptedOut => {
            if let Some(address) = super::suppression::recipient_of(ctx, id).await? {
                super::suppression::suppress(ctx, &address, "opted out to a person", at).await?;
            }
        }
    }
    Ok(())
}
