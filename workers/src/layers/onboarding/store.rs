//! Onboarding's SQL: the meeting a client comes from, the new client with its
//! documents and checklist (one transaction), tasks done, and the weekly review's reads.

use super::rules::PlannedTask;
use crate::{Ctx, JobError};
use cep_shared::ids::stable_id;
use cep_shared::vocabulary::{ClientState, EventKind, LeadClass, MeetingState, ProspectStatus};

/// The meeting a client comes from.
pub struct Meeting {
    pub prospect_id: Option<String>,
    pub email: String,
    pub contact: String,
    pub state: MeetingState,
    /// The tier sold, for a won meeting.
    pub tier: Option<String>,
}

pub async fn meeting(ctx: &Ctx, meeting_id: &str) -> Result<Meeting, JobError> {
    type Row = (Option<String>, String, String, String, Option<String>);
    let row: Option<Row> =
        sqlx::query_as("SELECT prospect_id, email, name, status, tier FROM meetings WHERE id = $1")
            .bind(meeting_id)
            .fetch_optional(ctx.store.pool())
            .await?;
    let Some((prospect_id, email, contact, status, tier)) = row else {
        return Err(JobError::Invalid(format!("no meeting `{meeting_id}`")));
    };
    let state = status
        .parse()
        .map_err(|e| JobError::Invalid(format!("meeting `{meeting_id}`: {e}")))?;
    Ok(Meeting {
        prospect_id,
        email,
        contact,
        state,
        tier,
    })
}

/// The business a new client is: from its prospect, or the meeting's contact alone.
pub struct Business {
    pub name: String,
    pub category: String,
    pub phone: Option<String>,
    pub lead_class: LeadClass,
    pub gbp_score: i64,
}

pub async fn business(ctx: &Ctx, m: &Meeting) -> Result<Business, JobError> {
    let row: Option<(String, String, Option<String>, String, i64)> =
        match &m.prospect_id {
            Some(id) => sqlx::query_as(
                "SELECT name, category, phone, lead_class, gbp_score FROM prospects WHERE id = $1",
            )
            .bind(id)
            .fetch_optional(ctx.store.pool())
            .await?,
            None => None,
        };
    // A booking from outside the pipeline is taken as a warm lead of no known category.
    let Some((name, category, phone, lead_class, gbp_score)) = row else {
        return Ok(Business {
            name: m.contact.clone(),
            category: "other".into(),
            phone: None,
            lead_class: LeadClass::Warm,
            gbp_score: 0,
        });
    };
    Ok(Business {
        name,
        category,
        phone,
        lead_class: lead_class
            .parse()
            .map_err(|e| JobError::Invalid(format!("meeting `{}`'s prospect: {e}", m.contact)))?,
        gbp_score,
    })
}

/// A new client, in one transaction: its row, documents and checklist, its prospect
/// become a client, what winning it cost, and the `started` event. `false` when it was
/// a client already (a redelivery, or a second meeting of the same business).
pub async fn insert_client(
    ctx: &Ctx,
    client_id: &str,
    m: &Meeting,
    b: &Business,
    tier: &str,
    docs: &[String],
    tasks: &[PlannedTask],
) -> Result<bool, JobError> {
    let now = ctx.now();
    let mut tx = ctx.store.pool().begin().await?;
    let inserted = sqlx::query(
        "INSERT INTO clients (id, prospect_id, client_name, business_name, email, phone, business_type, billing_tier,
                              state, gbp_score, started_at)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $11, $9, $10)
         ON CONFLICT (id) DO NOTHING",
    )
    .bind(client_id)
    .bind(&m.prospect_id)
    .bind(&m.contact)
    .bind(&b.name)
    .bind(&m.email)
    .bind(&b.phone)
    .bind(&b.category)
    .bind(tier)
    .bind(b.gbp_score)
    .bind(now)
    .bind(ClientState::DocumentsRequested.as_str())
    .execute(&mut *tx)
    .await?;
    if inserted.rows_affected() == 0 {
        tx.rollback().await?;
        return Ok(false);
    }
    for d in docs {
        sqlx::query("INSERT INTO documents (id, client_id, name) VALUES ($1, $2, $3)")
            .bind(stable_id("doc", &[client_id, d]))
            .bind(client_id)
            .bind(d)
            .execute(&mut *tx)
            .await?;
    }
    for t in tasks {
        sqlx::query(
            "INSERT INTO tasks (id, client_id, seq, name, priority, depends_on, due_at) VALUES ($1, $2, $3, $4, $5, $6, $7)",
        )
        .bind(&t.id)
        .bind(client_id)
        .bind(i64::from(t.seq))
        .bind(&t.name)
        .bind(&t.priority)
        .bind(&t.depends_on)
        .bind(t.due_at)
        .execute(&mut *tx)
        .await?;
    }
    if let Some(pid) = &m.prospect_id {
        sqlx::query("UPDATE prospects SET status = $3, updated_at = $2 WHERE id = $1")
            .bind(pid)
            .bind(now)
            .bind(ProspectStatus::Client.as_str())
            .execute(&mut *tx)
            .await?;
    }
    let data = serde_json::json!({ "tier": tier, "category": b.category });
    ctx.store
        .record_event(&mut *tx, EventKind::Started, client_id, data, now)
        .await?;
    tx.commit().await?;
    Ok(true)
}

pub async fn client_state(ctx: &Ctx, client_id: &str) -> Result<ClientState, JobError> {
    let (state,): (String,) = sqlx::query_as("SELECT state FROM clients WHERE id = $1")
        .bind(client_id)
        .fetch_one(ctx.store.pool())
        .await?;
    state
        .parse()
        .map_err(|e| JobError::Invalid(format!("client `{client_id}`: {e}")))
}

/// A checklist task as stored.
#[derive(sqlx::FromRow)]
pub struct TaskRow {
    pub client_id: String,
    pub seq: i64,
    pub name: String,
    pub depends_on: Option<String>,
    pub due_at: i64,
    pub done_at: Option<i64>,
}

pub async fn task(ctx: &Ctx, task_id: &str) -> Result<TaskRow, JobError> {
    sqlx::query_as(
        "SELECT client_id, seq, name, depends_on, due_at, done_at FROM tasks WHERE id = $1",
    )
    .bind(task_id)
    .fetch_optional(ctx.store.pool())
    .await?
    .ok_or_else(|| JobError::Invalid(format!("no task `{task_id}`")))
}

/// The name of the task `depends_on` names, when it is not done yet.
pub async fn undone_dependency(ctx: &Ctx, depends_on: &str) -> Result<Option<String>, JobError> {
    let (done, name): (Option<i64>, String) =
        sqlx::query_as("SELECT done_at, name FROM tasks WHERE id = $1")
            .bind(depends_on)
            .fetch_one(ctx.store.pool())
            .await?;
    Ok(done.is_none().then_some(name))
}

pub async fn last_seq(ctx: &Ctx, client_id: &str) -> Result<i64, JobError> {
    let (last,): (i64,) = sqlx::query_as("SELECT MAX(seq) FROM tasks WHERE client_id = $1")
        .bind(client_id)
        .fetch_one(ctx.store.pool())
        .await?;
    Ok(last)
}

/// A task done, in one transaction: the task, go-live's due date when this was the task
/// before it, the client's new state, and `completed` when the client went live.
pub async fn finish_task(
    ctx: &Ctx,
    task_id: &str,
    t: &TaskRow,
    last_seq: i64,
    state: ClientState,
    at: i64,
) -> Result<(), JobError> {
    let live = state == ClientState::Live;
    let mut tx = ctx.store.pool().begin().await?;
    sqlx::query("UPDATE tasks SET done_at = $2 WHERE id = $1 AND done_at IS NULL")
        .bind(task_id)
        .bind(at)
        .execute(&mut *tx)
        .await?;
    if t.seq + 1 == last_seq {
        // The task before go-live: go-live falls due a set number of days after it.
        let days = i64::from(ctx.settings.layers.onboarding.go_live_days_after_training);
        sqlx::query("UPDATE tasks SET due_at = $3 WHERE client_id = $1 AND seq = $2")
            .bind(&t.client_id)
            .bind(last_seq)
            .bind(at + days * cep_shared::clock::DAY)
            .execute(&mut *tx)
            .await?;
    }
    sqlx::query("UPDATE clients SET state = $2, live_at = CASE WHEN $3 = 1 THEN $4 ELSE live_at END WHERE id = $1")
        .bind(&t.client_id)
        .bind(state.as_str())
        .bind(i64::from(live))
        .bind(at)
        .execute(&mut *tx)
        .await?;
    if live {
        ctx.store
            .record_event(
                &mut *tx,
                EventKind::Completed,
                &t.client_id,
                serde_json::Value::Null,
                at,
            )
            .await?;
    }
    tx.commit().await?;
    Ok(())
}

/// Open tasks of active clients due by `now`, with their due times.
pub async fn overdue_tasks(ctx: &Ctx, now: i64) -> Result<Vec<(String, i64)>, JobError> {
    Ok(sqlx::query_as(
        "SELECT t.id, t.due_at FROM tasks t JOIN clients c ON c.id = t.client_id
          WHERE t.done_at IS NULL AND t.due_at <= $1 AND c.canceled_at IS NULL",
    )
    .bind(now)
    .fetch_all(ctx.store.pool())
    .await?)
}

pub async fn active_clients(ctx: &Ctx) -> Result<Vec<String>, JobError> {
    let rows: Vec<(String,)> =
        sqlx::query_as("SELECT id FROM clients WHERE canceled_at IS NULL ORDER BY id")
            .fetch_all(ctx.store.pool())
            .await?;
    Ok(rows.into_iter().map(|(id,)| id).collect())
}

/// How many of a client's checklist tasks are done.
pub async fn tasks_done(ctx: &Ctx, client_id: &str) -> Result<i64, JobError> {
    let (n,): (i64,) =
        sqlx::query_as("SELECT COUNT(*) FROM tasks WHERE client_id = $1 AND done_at IS NOT NULL")
            .bind(client_id)
            .fetch_one(ctx.store.pool())
            .await?;
    Ok(n)
}

/// An onboarding task past its due date, as the inbox shows it.
#[derive(Debug, Clone, PartialEq, serde::Serialize, sqlx::FromRow)]
pub struct OverdueTask {
    pub id: String,
    pub client_id: String,
    pub business_name: String,
    pub name: String,
    pub due_at: i64,
}

/// Open tasks of active clients due before `now`, longest overdue first.
pub async fn overdue(ctx: &Ctx, now: i64, limit: u32) -> Result<Vec<OverdueTask>, JobError> {
    Ok(sqlx::query_as(
        "SELECT t.id, t.client_id, c.business_name, t.name, t.due_at
           FROM tasks t JOIN clients c ON c.id = t.client_id
          WHERE t.done_at IS NULL AND t.due_at < $1 AND c.canceled_at IS NULL
          ORDER BY t.due_at, t.id LIMIT $2",
    )
    .bind(now)
    .bind(i64::from(limit))
    .fetch_all(ctx.store.pool())
    .await?)
}
