//! The audit log: every console action, who took it, when, on what, and the subject as
//! it stood before and became after. Written in the action's own transaction where the
//! action has one, right after it otherwise; read by the audit page.

use crate::{Ctx, JobError};
use serde_json::Value;

/// One action, as the log keeps it.
#[derive(Debug, Clone, PartialEq, serde::Serialize, sqlx::FromRow)]
pub struct Entry {
    pub id: String,
    pub at: i64,
    pub actor: String,
    pub action: String,
    pub subject: String,
    pub before: Option<String>,
    pub after: Option<String>,
}

/// Orders one process's entries of the same millisecond (a simulated clock stands
/// still); the random part keeps replicas' ids apart.
static SEQUENCE: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);

/// Records that `actor` did `action` to `subject`.
pub async fn record(
    ctx: &Ctx,
    actor: &str,
    action: &str,
    subject: &str,
    before: Option<Value>,
    after: Option<Value>,
) -> Result<(), JobError> {
    let mut bytes = [0u8; 8];
    getrandom::fill(&mut bytes).map_err(|e| JobError::Transient(format!("no randomness: {e}")))?;
    let now = ctx.now();
    sqlx::query(
        "INSERT INTO audit_log (id, at, actor, action, subject, before, after)
         VALUES ($1, $2, $3, $4, $5, $6, $7)",
    )
    .bind(format!(
        "aud_{now:013}_{:010}_{}",
        SEQUENCE.fetch_add(1, std::sync::atomic::Ordering::Relaxed),
        hex::encode(bytes)
    ))
    .bind(now)
    .bind(actor)
    .bind(action)
    .bind(subject)
    .bind(before.map(|v| v.to_string()))
    .bind(after.map(|v| v.to_string()))
    .execute(ctx.store.pool())
    .await?;
    Ok(())
}

/// The newest entries first, those before `before_id` when paging (keyset, so a page
/// costs the same however long the log).
pub async fn page(ctx: &Ctx, before_id: Option<&str>, limit: u32) -> Result<Vec<Entry>, JobError> {
    Ok(sqlx::query_as(
        "SELECT id, at, actor, action, subject, before, after FROM audit_log
          WHERE ($1 IS NULL OR id < $1) ORDER BY id DESC LIMIT $2",
    )
    .bind(before_id)
    .bind(i64::from(limit))
    .fetch_all(ctx.store.pool())
    .await?)
}
