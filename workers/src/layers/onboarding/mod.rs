//! Layer 5: a booked meeting becomes a client with its documents to collect and a
//! checklist whose tasks depend on each other and fall due after the start. The weekly
//! review flags overdue tasks and starts the week's profile optimization for every
//! active client.

use crate::{Ctx, JobError};
use cep_shared::clock::{DAY, HOUR};
use cep_shared::config::OnboardingRules;
use cep_shared::ids::stable_id;
use cep_shared::jobs::{OnboardingJob, OptimizationJob};
use cep_shared::queue::NewJob;
use cep_shared::store::Event;
use cep_shared::{JobKind, Layer};
use serde::{Deserialize, Serialize};

/// The client states, in order.
pub const STATES: [&str; 10] = [
    "not started",
    "documents requested",
    "documents received",
    "contract sent",
    "contract signed",
    "account set up",
    "payment set up",
    "training scheduled",
    "training completed",
    "live",
];

/// The state a client reaches when a checklist task of this name is done.
pub fn state_after(task: &str) -> Option<&'static str> {
    match task {
        "collect documents" => Some("documents received"),
        "prepare contract" => Some("contract signed"),
        "set up account" => Some("account set up"),
        "set up payment" => Some("payment set up"),
        "schedule training" => Some("training scheduled"),
        "go live" => Some("live"),
        _ => None,
    }
}

/// Documents a client of `category` must hand in.
pub fn documents_for(category: &str, r: &OnboardingRules) -> Vec<String> {
    let mut docs = r.documents.clone();
    match category {
        "hvac" => docs.extend(r.hvac_documents.iter().cloned()),
        "dental" => docs.extend(r.dental_documents.iter().cloned()),
        _ => {}
    }
    docs
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PlannedTask {
    pub id: String,
    pub seq: u32,
    pub name: String,
    pub priority: String,
    pub depends_on: Option<String>,
    pub due_at: i64,
}

/// The checklist from `start`: each task depends on the one before it.
pub fn checklist(client_id: &str, start: i64, r: &OnboardingRules) -> Vec<PlannedTask> {
    let mut out: Vec<PlannedTask> = Vec::new();
    for (seq, t) in r.checklist.iter().enumerate() {
        out.push(PlannedTask {
            id: stable_id("task", &[client_id, &seq.to_string()]),
            seq: seq as u32,
            name: t.name.clone(),
            priority: t.priority.clone(),
            depends_on: out.last().map(|p| p.id.clone()),
            due_at: start + i64::from(t.due_days) * DAY,
        });
    }
    out
}

pub fn client_id_for(prospect_id: Option<&str>, email: &str) -> String {
    stable_id("cli", &[prospect_id.unwrap_or(email)])
}

/// The seed API's `OnboardingResult`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct OnboardingResult {
    pub client_id: Option<String>,
    pub state: String,
    pub billing_tier: Option<String>,
    pub documents_required: Vec<String>,
    pub tasks: Vec<PlannedTask>,
    pub reason: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ReviewResult {
    pub period: String,
    pub tasks_overdue: usize,
    pub optimizations_enqueued: usize,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum OnboardingOutput {
    Started(OnboardingResult),
    Reviewed(ReviewResult),
}

pub async fn handle(ctx: &Ctx, job: OnboardingJob) -> Result<OnboardingOutput, JobError> {
    match job {
        OnboardingJob::Start { meeting_id } => {
            start(ctx, &meeting_id).await.map(OnboardingOutput::Started)
        }
        OnboardingJob::Review { period } => {
            review(ctx, &period).await.map(OnboardingOutput::Reviewed)
        }
    }
}

async fn start(ctx: &Ctx, meeting_id: &str) -> Result<OnboardingResult, JobError> {
    let r = &ctx.settings.layers.onboarding;
    let pool = ctx.store.pool();
    let meeting: Option<(Option<String>, String, String, String)> =
        sqlx::query_as("SELECT prospect_id, email, name, status FROM meetings WHERE id = $1")
            .bind(meeting_id)
            .fetch_optional(pool)
            .await?;
    let Some((prospect_id, email, contact, status)) = meeting else {
        return Err(JobError::Invalid(format!("no meeting `{meeting_id}`")));
    };
    let skipped = |reason: String| OnboardingResult {
        client_id: None,
        state: "not started".into(),
        billing_tier: None,
        documents_required: Vec::new(),
        tasks: Vec::new(),
        reason: Some(reason),
    };
    if status != "scheduled" {
        return Ok(skipped(format!("the meeting was {status}")));
    }
    let prospect: Option<(String, String, Option<String>, String, i64)> =
        match &prospect_id {
            Some(id) => sqlx::query_as(
                "SELECT name, category, phone, lead_class, gbp_score FROM prospects WHERE id = $1",
            )
            .bind(id)
            .fetch_optional(pool)
            .await?,
            None => None,
        };
    let (business, category, phone, lead_class, score) =
        prospect.unwrap_or_else(|| (contact.clone(), "other".into(), None, "warm".into(), 0));
    let tier = if lead_class == "hot" {
        &r.hot_tier
    } else {
        &r.warm_tier
    };
    let client_id = client_id_for(prospect_id.as_deref(), &email);
    let now = ctx.now();
    let docs = documents_for(&category, r);
    let tasks = checklist(&client_id, now, r);

    let mut tx = pool.begin().await?;
    let inserted = sqlx::query(
        "INSERT INTO clients (id, prospect_id, client_name, business_name, email, phone, business_type, billing_tier,
                              state, gbp_score, started_at)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, 'documents requested', $9, $10)
         ON CONFLICT (id) DO NOTHING",
    )
    .bind(&client_id)
    .bind(&prospect_id)
    .bind(&contact)
    .bind(&business)
    .bind(&email)
    .bind(&phone)
    .bind(&category)
    .bind(tier)
    .bind(score)
    .bind(now)
    .execute(&mut *tx)
    .await?;
    if inserted.rows_affected() == 0 {
        // Already a client (a redelivery, or a second meeting of the same business).
        tx.rollback().await?;
        let (state,): (String,) = sqlx::query_as("SELECT state FROM clients WHERE id = $1")
            .bind(&client_id)
            .fetch_one(pool)
            .await?;
        return Ok(OnboardingResult {
            client_id: Some(client_id),
            state,
            billing_tier: Some(tier.clone()),
            documents_required: docs,
            tasks: Vec::new(),
            reason: Some("already onboarding".into()),
        });
    }
    for d in &docs {
        sqlx::query("INSERT INTO documents (id, client_id, name) VALUES ($1, $2, $3)")
            .bind(stable_id("doc", &[&client_id, d]))
            .bind(&client_id)
            .bind(d)
            .execute(&mut *tx)
            .await?;
    }
    for t in &tasks {
        sqlx::query(
            "INSERT INTO tasks (id, client_id, seq, name, priority, depends_on, due_at) VALUES ($1, $2, $3, $4, $5, $6, $7)",
        )
        .bind(&t.id)
        .bind(&client_id)
        .bind(i64::from(t.seq))
        .bind(&t.name)
        .bind(&t.priority)
        .bind(&t.depends_on)
        .bind(t.due_at)
        .execute(&mut *tx)
        .await?;
    }
    if let Some(pid) = &prospect_id {
        sqlx::query("UPDATE prospects SET status = 'client', updated_at = $2 WHERE id = $1")
            .bind(pid)
            .bind(now)
            .execute(&mut *tx)
            .await?;
    }
    // What winning this client cost, for CAC and the finance container's margin.
    crate::layers::finance::record_cost(
        &mut *tx,
        &stable_id("txn", &[&client_id, "acquisition"]),
        "acquisition",
        &client_id,
        ctx.settings.layers.finance.acquisition_cost_cents,
        now,
    )
    .await?;
    ctx.store
        .record_event(
            &mut *tx,
            Event {
                layer: Layer::Onboarding,
                kind: "started",
                subject: &client_id,
                data: serde_json::json!({ "tier": tier, "category": category }),
                occurred_at: now,
            },
        )
        .await?;
    tx.commit().await?;
    // Onboarding → optimization: the first profile pass starts with onboarding.
    ctx.queue
        .push(optimization_job(&client_id, &iso_week(now), now))
        .await?;
    Ok(OnboardingResult {
        client_id: Some(client_id),
        state: "documents requested".into(),
        billing_tier: Some(tier.clone()),
        documents_required: docs,
        tasks,
        reason: None,
    })
}

pub fn iso_week(at: i64) -> String {
    use chrono::Datelike;
    let t = chrono::DateTime::<chrono::Utc>::from_timestamp_millis(at).unwrap_or_default();
    let w = t.iso_week();
    format!("{}-W{:02}", w.year(), w.week())
}

fn optimization_job(client_id: &str, period: &str, at: i64) -> NewJob {
    NewJob::new(
        JobKind::Layer(Layer::Optimization),
        &OptimizationJob {
            client_id: client_id.into(),
            period: period.into(),
        },
        at,
    )
    .key(format!("optimization:{client_id}:{period}"))
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TaskDone {
    pub task_id: String,
    pub client_id: String,
    pub on_time: bool,
    pub state: String,
    pub live: bool,
}

#[derive(sqlx::FromRow)]
struct TaskRow {
    client_id: String,
    seq: i64,
    name: String,
    depends_on: Option<String>,
    due_at: i64,
    done_at: Option<i64>,
}

/// A person marks a task done. Its dependency must be done first; the client's state
/// moves along, and the last task done makes the client live.
pub async fn complete_task(ctx: &Ctx, task_id: &str, at: i64) -> Result<TaskDone, JobError> {
    let r = &ctx.settings.layers.onboarding;
    let pool = ctx.store.pool();
    let row: Option<TaskRow> = sqlx::query_as(
        "SELECT client_id, seq, name, depends_on, due_at, done_at FROM tasks WHERE id = $1",
    )
    .bind(task_id)
    .fetch_optional(pool)
    .await?;
    let Some(TaskRow {
        client_id,
        seq,
        name,
        depends_on,
        due_at,
        done_at,
    }) = row
    else {
        return Err(JobError::Invalid(format!("no task `{task_id}`")));
    };
    if let Some(dep) = &depends_on {
        let (dep_done, dep_name): (Option<i64>, String) =
            sqlx::query_as("SELECT done_at, name FROM tasks WHERE id = $1")
                .bind(dep)
                .fetch_one(pool)
                .await?;
        if dep_done.is_none() {
            return Err(JobError::Invalid(format!(
                "`{name}` depends on `{dep_name}`, which is not done yet"
            )));
        }
    }
    let (state,): (String,) = sqlx::query_as("SELECT state FROM clients WHERE id = $1")
        .bind(&client_id)
        .fetch_one(pool)
        .await?;
    if let Some(done) = done_at {
        return Ok(TaskDone {
            task_id: task_id.into(),
            on_time: done <= due_at,
            live: state == "live",
            client_id,
            state,
        });
    }
    let (last_seq,): (i64,) = sqlx::query_as("SELECT MAX(seq) FROM tasks WHERE client_id = $1")
        .bind(&client_id)
        .fetch_one(pool)
        .await?;
    let live = seq == last_seq;
    let new_state = if live {
        "live"
    } else {
        state_after(&name).unwrap_or(&state)
    };
    let mut tx = pool.begin().await?;
    sqlx::query("UPDATE tasks SET done_at = $2 WHERE id = $1 AND done_at IS NULL")
        .bind(task_id)
        .bind(at)
        .execute(&mut *tx)
        .await?;
    if seq + 1 == last_seq {
        // The task before go-live: go-live falls due a set number of days after it.
        sqlx::query("UPDATE tasks SET due_at = $3 WHERE client_id = $1 AND seq = $2")
            .bind(&client_id)
            .bind(last_seq)
            .bind(at + i64::from(r.go_live_days_after_training) * DAY)
            .execute(&mut *tx)
            .await?;
    }
    sqlx::query("UPDATE clients SET state = $2, live_at = CASE WHEN $3 = 1 THEN $4 ELSE live_at END WHERE id = $1")
        .bind(&client_id)
        .bind(new_state)
        .bind(i64::from(live))
        .bind(at)
        .execute(&mut *tx)
        .await?;
    if live {
        ctx.store
            .record_event(
                &mut *tx,
                Event {
                    layer: Layer::Onboarding,
                    kind: "completed",
                    subject: &client_id,
                    data: serde_json::Value::Null,
                    occurred_at: at,
                },
            )
            .await?;
    }
    tx.commit().await?;
    Ok(TaskDone {
        task_id: task_id.into(),
        client_id,
        on_time: at <= due_at,
        state: new_state.into(),
        live,
    })
}

/// The weekly pass: counts the overdue tasks and starts this week's optimization run
/// for every active client.
async fn review(ctx: &Ctx, period: &str) -> Result<ReviewResult, JobError> {
    let now = ctx.now();
    let pool = ctx.store.pool();
    let overdue: Vec<(String, i64)> = sqlx::query_as(
        "SELECT t.id, t.due_at FROM tasks t JOIN clients c ON c.id = t.client_id
          WHERE t.done_at IS NULL AND t.due_at <= $1 AND c.canceled_at IS NULL",
    )
    .bind(now)
    .fetch_all(pool)
    .await?;
    for (id, due_at) in &overdue {
        tracing::info!(task = %id, overdue_hours = (now - due_at) / HOUR, "onboarding task overdue");
    }
    let clients: Vec<(String,)> =
        sqlx::query_as("SELECT id FROM clients WHERE canceled_at IS NULL ORDER BY id")
            .fetch_all(pool)
            .await?;
    let jobs: Vec<NewJob> = clients
        .iter()
        .map(|(id,)| optimization_job(id, period, now))
        .collect();
    let enqueued = ctx.queue.push_many(jobs).await?;
    Ok(ReviewResult {
        period: period.into(),
        tasks_overdue: overdue.len(),
        optimizations_enqueued: enqueued,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_checklist_chains_dependencies_and_due_dates() {
        let r = OnboardingRules::default();
        let t = checklist("c1", 0, &r);
        let days: Vec<i64> = t.iter().map(|t| t.due_at / DAY).collect();
        assert_eq!(days, [3, 5, 7, 8, 10, 14]);
        assert_eq!(t[0].depends_on, None);
        for w in t.windows(2) {
            assert_eq!(w[1].depends_on.as_deref(), Some(w[0].id.as_str()));
        }
        assert_eq!(t[0].priority, "critical");
        assert_eq!(t[5].name, "go live");
    }

    #[test]
    fn documents_depend_on_the_category() {
        let r = OnboardingRules::default();
        assert_eq!(documents_for("plumbing", &r).len(), 5);
        assert_eq!(documents_for("hvac", &r).len(), 6);
        let dental = documents_for("dental", &r);
        assert_eq!(dental.len(), 8);
        assert!(dental.contains(&"pricing".to_string()));
    }

    #[test]
    fn every_task_moves_the_state_forward() {
        let r = OnboardingRules::default();
        let mut last = 1;
        for t in &r.checklist {
            let s = state_after(&t.name).expect("a state per default task");
            let i = STATES.iter().position(|x| *x == s).unwrap();
            assert!(i > last, "{} does not move forward", t.name);
            last = i;
        }
        assert_eq!(STATES[last], "live");
    }
}
