//! Parameters layers 1–3 read and the feedback loop moves. Every change is kept with
//! its before and after values, so any change can be rolled back.

use crate::{Ctx, JobError};
use cep_shared::ids::stable_id;
use serde::Serialize;
use serde::de::DeserializeOwned;

pub const PITCH_VARIANT_WEIGHTS: &str = "pitch_variant_weights";
pub const SEND_HOURS: &str = "send_hours";
pub const CATEGORY_PRIORITIES: &str = "category_priorities";

/// The current value of a parameter, when one was ever set.
pub async fn get<T: DeserializeOwned>(ctx: &Ctx, name: &str) -> Result<Option<T>, JobError> {
    let row: Option<(String,)> = sqlx::query_as("SELECT value FROM parameters WHERE name = $1")
        .bind(name)
        .fetch_optional(ctx.store.pool())
        .await?;
    row.map(|(v,)| serde_json::from_str(&v).map_err(JobError::from))
        .transpose()
}

/// Sets a parameter and records the change; `change_key` makes a rerun of the same
/// decision a no-op. Returns the change id, or `None` when the value did not change.
pub async fn set<T: Serialize>(
    ctx: &Ctx,
    name: &str,
    value: &T,
    reason: &str,
    change_key: &str,
) -> Result<Option<String>, JobError> {
    let after = serde_json::to_string(value)?;
    let id = stable_id("chg", &[name, change_key]);
    let mut tx = ctx.store.pool().begin().await?;
    // Changes to one parameter are strictly ordered in time, so "later" is well defined.
    let (last,): (Option<i64>,) =
        sqlx::query_as("SELECT MAX(changed_at) FROM parameter_changes WHERE name = $1")
            .bind(name)
            .fetch_one(&mut *tx)
            .await?;
    let now = last.map_or(ctx.now(), |l| ctx.now().max(l + 1));
    let seen: Option<(String,)> = sqlx::query_as("SELECT id FROM parameter_changes WHERE id = $1")
        .bind(&id)
        .fetch_optional(&mut *tx)
        .await?;
    if seen.is_some() {
        return Ok(None);
    }
    let before: Option<(String,)> = sqlx::query_as("SELECT value FROM parameters WHERE name = $1")
        .bind(name)
        .fetch_optional(&mut *tx)
        .await?;
    let before = before.map(|(v,)| v);
    if before.as_deref() == Some(after.as_str()) {
        return Ok(None);
    }
    sqlx::query(
        "INSERT INTO parameters (name, value, updated_at) VALUES ($1, $2, $3)
         ON CONFLICT (name) DO UPDATE SET value = $2, updated_at = $3",
    )
    .bind(name)
    .bind(&after)
    .bind(now)
    .execute(&mut *tx)
    .await?;
    sqlx::query(
        "INSERT INTO parameter_changes (id, name, before_value, after_value, reason, changed_at)
         VALUES ($1, $2, $3, $4, $5, $6)",
    )
    .bind(&id)
    .bind(name)
    .bind(&before)
    .bind(&after)
    .bind(reason)
    .bind(now)
    .execute(&mut *tx)
    .await?;
    tx.commit().await?;
    Ok(Some(id))
}

/// Puts a parameter back to its value before `change_id` (removing it when it had
/// none). Refuses when a later change to the same parameter is still in force.
pub async fn rollback(ctx: &Ctx, change_id: &str) -> Result<String, JobError> {
    let mut tx = ctx.store.pool().begin().await?;
    let row: Option<(String, Option<String>, i64, Option<i64>)> = sqlx::query_as(
        "SELECT name, before_value, changed_at, rolled_back_at FROM parameter_changes WHERE id = $1",
    )
    .bind(change_id)
    .fetch_optional(&mut *tx)
    .await?;
    let Some((name, before, changed_at, rolled_back)) = row else {
        return Err(JobError::Invalid(format!(
            "no parameter change `{change_id}`"
        )));
    };
    if rolled_back.is_some() {
        return Err(JobError::Invalid(format!(
            "change `{change_id}` was already rolled back"
        )));
    }
    let (later,): (i64,) = sqlx::query_as(
        "SELECT COUNT(*) FROM parameter_changes
          WHERE name = $1 AND changed_at > $3 AND rolled_back_at IS NULL AND id <> $2",
    )
    .bind(&name)
    .bind(change_id)
    .bind(changed_at)
    .fetch_one(&mut *tx)
    .await?;
    if later > 0 {
        return Err(JobError::Invalid(format!(
            "`{name}` changed again after `{change_id}`; roll back the later change first"
        )));
    }
    let now = ctx.now();
    match &before {
        Some(v) => {
            sqlx::query("UPDATE parameters SET value = $2, updated_at = $3 WHERE name = $1")
                .bind(&name)
                .bind(v)
                .bind(now)
                .execute(&mut *tx)
                .await?;
        }
        None => {
            sqlx::query("DELETE FROM parameters WHERE name = $1")
                .bind(&name)
                .execute(&mut *tx)
                .await?;
        }
    }
    sqlx::query("UPDATE parameter_changes SET rolled_back_at = $2 WHERE id = $1")
        .bind(change_id)
        .bind(now)
        .execute(&mut *tx)
        .await?;
    tx.commit().await?;
    Ok(name)
}
