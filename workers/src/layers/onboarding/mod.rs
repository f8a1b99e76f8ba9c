//! Layer 5: a won meeting becomes a client with its documents to collect and a
//! checklist whose tasks depend on each other and fall due after the start. The weekly
//! review flags overdue tasks and starts the week's profile optimization for every
//! active client.
//!
//! `rules` plans the checklist and the states, `store` keeps clients and tasks.

pub mod rules;
pub mod store;

pub use rules::{PlannedTask, checklist, client_id_for, documents_for, iso_week, state_after};

use crate::{Ctx, JobError};
use cep_shared::clock::HOUR;
use cep_shared::jobs::{OnboardingJob, OptimizationJob};
use cep_shared::queue::NewJob;
use cep_shared::vocabulary::{ClientState, MeetingState};
use serde::{Deserialize, Serialize};

/// The seed API's `OnboardingResult`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct OnboardingResult {
    pub client_id: Option<String>,
    pub state: ClientState,
    pub billing_tier: Option<String>,
    pub documents_required: Vec<String>,
    pub tasks: Vec<PlannedTask>,
    pub reason: Option<String>,
}

impl OnboardingResult {
    /// Onboarding that did not start, and why.
    fn not_started(reason: String) -> Self {
        Self {
            client_id: None,
            state: ClientState::NotStarted,
            billing_tier: None,
            documents_required: Vec::new(),
            tasks: Vec::new(),
            reason: Some(reason),
        }
    }
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
    let meeting = store::meeting(ctx, meeting_id).await?;
    // Only a meeting won, with the tier sold and its prospect known, makes a client.
    let (MeetingState::Won, Some(tier), Some(_)) =
        (meeting.state, meeting.tier.clone(), &meeting.prospect_id)
    else {
        return Ok(OnboardingResult::not_started(match meeting.state {
            MeetingState::Won => format!(
                "the meeting is not linked to a prospect yet: `cep meeting-link {meeting_id} <prospect>`"
            ),
            state => format!(
                "the meeting is {state}; only a won meeting makes a client (`cep meeting {meeting_id} won --tier <tier>`)"
            ),
        }));
    };
    let business = store::business(ctx, &meeting).await?;
    open(ctx, &meeting, &business, &tier).await
}

/// A sale closed outside the pipeline (the seed API's layer 5 input): a client with
/// no prospect and no meeting, its contact and business as given, on `tier`.
pub struct Sale {
    pub client_name: String,
    pub business_name: String,
    pub email: String,
    pub phone: Option<String>,
    pub business_type: String,
    pub tier: String,
}

/// Opens the client of a sale; a second call for the same address changes nothing.
pub async fn open_sale(ctx: &Ctx, sale: Sale) -> Result<OnboardingResult, JobError> {
    if ctx.settings.layers.finance.tier(&sale.tier).is_none() {
        return Err(JobError::Invalid(format!(
            "`{}` is not a tier this agency sells (`layers.finance.tiers`)",
            sale.tier
        )));
    }
    let meeting = store::Meeting {
        prospect_id: None,
        email: sale.email,
        contact: sale.client_name,
        state: MeetingState::Won,
        tier: Some(sale.tier.clone()),
    };
    let business = store::Business {
        name: sale.business_name,
        category: sale.business_type,
        phone: sale.phone,
        lead_class: cep_shared::vocabulary::LeadClass::Warm,
        gbp_score: 0,
    };
    open(ctx, &meeting, &business, &sale.tier).await
}

/// The client a won meeting or a sale makes: its documents, checklist and first
/// profile pass, once.
async fn open(
    ctx: &Ctx,
    meeting: &store::Meeting,
    business: &store::Business,
    tier: &str,
) -> Result<OnboardingResult, JobError> {
    let r = &ctx.settings.layers.onboarding;
    let client_id = client_id_for(meeting.prospect_id.as_deref(), &meeting.email);
    let now = ctx.now();
    let docs = documents_for(&business.category, r);
    let tasks = checklist(&client_id, now, r);
    let new = store::insert_client(ctx, &client_id, meeting, business, tier, &docs, &tasks).await?;
    let (state, tasks, reason) = if new {
        // Onboarding → optimization: the first profile pass starts with onboarding.
        ctx.queue
            .push(optimization_job(&client_id, &iso_week(now), now))
            .await?;
        (ClientState::DocumentsRequested, tasks, None)
    } else {
        let state = store::client_state(ctx, &client_id).await?;
        (state, Vec::new(), Some("already onboarding".into()))
    };
    Ok(OnboardingResult {
        client_id: Some(client_id),
        state,
        billing_tier: Some(tier.to_owned()),
        documents_required: docs,
        tasks,
        reason,
    })
}

fn optimization_job(client_id: &str, period: &str, at: i64) -> NewJob {
    let job = OptimizationJob {
        client_id: client_id.into(),
        period: period.into(),
    };
    NewJob::of(&job, at)
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TaskDone {
    pub task_id: String,
    pub client_id: String,
    pub on_time: bool,
    pub state: ClientState,
    pub live: bool,
}

/// A person marks a task done. Its dependency must be done first; the client's state
/// moves along, and the last task done makes the client live.
pub async fn complete_task(ctx: &Ctx, task_id: &str, at: i64) -> Result<TaskDone, JobError> {
    let t = store::task(ctx, task_id).await?;
    if let Some(dep) = &t.depends_on
        && let Some(dep_name) = store::undone_dependency(ctx, dep).await?
    {
        return Err(JobError::Invalid(format!(
            "`{}` depends on `{dep_name}`, which is not done yet",
            t.name
        )));
    }
    let state = store::client_state(ctx, &t.client_id).await?;
    if let Some(done) = t.done_at {
        return Ok(TaskDone {
            task_id: task_id.into(),
            on_time: done <= t.due_at,
            live: state == ClientState::Live,
            client_id: t.client_id,
            state,
        });
    }
    let last_seq = store::last_seq(ctx, &t.client_id).await?;
    let live = t.seq == last_seq;
    let new_state = if live {
        ClientState::Live
    } else {
        state_after(&t.name).unwrap_or(state)
    };
    store::finish_task(ctx, task_id, &t, last_seq, new_state, at).await?;
    Ok(TaskDone {
        task_id: task_id.into(),
        on_time: at <= t.due_at,
        client_id: t.client_id,
        state: new_state,
        live,
    })
}

/// The weekly pass: counts the overdue tasks and starts this week's optimization run
/// for every active client.
async fn review(ctx: &Ctx, period: &str) -> Result<ReviewResult, JobError> {
    let now = ctx.now();
    let overdue = store::overdue_tasks(ctx, now).await?;
    for (id, due_at) in &overdue {
        tracing::info!(task = %id, overdue_hours = (now - due_at) / HOUR, "onboarding task overdue");
    }
    let jobs: Vec<NewJob> = store::active_clients(ctx)
        .await?
        .iter()
        .map(|id| optimization_job(id, period, now))
        .collect();
    let enqueued = ctx.queue.push_many(jobs).await?;
    Ok(ReviewResult {
        period: period.into(),
        tasks_overdue: overdue.len(),
        optimizations_enqueued: enqueued,
    })
}
