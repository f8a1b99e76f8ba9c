//! From a leased job to its layer's handler and back to the queue.

use super::error::{Disposition, JobError, timed_out};
use crate::layers::{
    booking, feedback_loop, finance, onboarding, optimization, outreach, pitch_generation,
    prospecting, reporting,
};
use crate::{Ctx, aggregation};
use cep_shared::jobs::ReportingWork;
use cep_shared::queue::{Leased, Settle};
use cep_shared::vocabulary::JobOutcome;
use cep_shared::{JobKind, Layer};
use serde::de::DeserializeOwned;
use std::time::Duration;
use tracing::Instrument;

fn to_json<T: serde::Serialize>(r: Result<T, JobError>) -> Result<serde_json::Value, JobError> {
    r.map(|x| serde_json::to_value(x).unwrap_or_default())
}

fn decode<T: DeserializeOwned>(payload: &str) -> Result<T, JobError> {
    serde_json::from_str(payload).map_err(|e| JobError::Malformed(e.to_string()))
}

/// Runs one job's handler on its payload, returning its result as JSON.
pub async fn handle(
    ctx: &Ctx,
    kind: JobKind,
    payload: &str,
) -> Result<serde_json::Value, JobError> {
    match kind {
        JobKind::Layer(Layer::Prospecting) => {
            to_json(prospecting::handle(ctx, decode(payload)?).await)
        }
        JobKind::Layer(Layer::PitchGeneration) => {
            to_json(pitch_generation::handle(ctx, decode(payload)?).await)
        }
        JobKind::Layer(Layer::Outreach) => to_json(outreach::handle(ctx, decode(payload)?).await),
        JobKind::Layer(Layer::Booking) => to_json(booking::handle(ctx, decode(payload)?).await),
        JobKind::Layer(Layer::Onboarding) => {
            to_json(onboarding::handle(ctx, decode(payload)?).await)
        }
        JobKind::Layer(Layer::Optimization) => {
            to_json(optimization::handle(ctx, decode(payload)?).await)
        }
        JobKind::Layer(Layer::Reporting) => match decode(payload)? {
            ReportingWork::Period(job) => to_json(reporting::handle(ctx, job).await),
            ReportingWork::Deliver(job) => to_json(reporting::delivery::deliver(ctx, job).await),
        },
        JobKind::Layer(Layer::Finance) => to_json(finance::handle(ctx, decode(payload)?).await),
        JobKind::Layer(Layer::FeedbackLoop) => {
            to_json(feedback_loop::handle(ctx, decode(payload)?).await)
        }
        JobKind::Aggregation(_) => to_json(aggregation::handle(ctx, decode(payload)?).await),
    }
}

/// How one attempt ended, for logs, metrics and tests.
#[derive(Debug, Clone, PartialEq)]
pub enum Outcome {
    Succeeded,
    Retried(String),
    /// Not now: a send window, a cap or a rate limit opens later (no attempt used).
    Deferred(String),
    DeadLettered(String),
    /// The lease had been lost (the job was recovered elsewhere).
    LeaseLost,
}

impl Outcome {
    /// The `outcome` label of `cep_jobs_total`.
    pub fn label(&self) -> JobOutcome {
        match self {
            Outcome::Succeeded => JobOutcome::Succeeded,
            Outcome::Retried(_) => JobOutcome::Retried,
            Outcome::Deferred(_) => JobOutcome::Deferred,
            Outcome::DeadLettered(_) => JobOutcome::Dead,
            Outcome::LeaseLost => JobOutcome::LeaseLost,
        }
    }
}

/// The longest pause between two tries of a settle the store or the queue refused.
const SETTLE_BACKOFF_MAX: Duration = Duration::from_secs(5);

/// Records how a job ended (when it did) and settles it in the queue. While the store or
/// the queue does not answer, it tries again with a bounded backoff, the job still
/// counted in flight: a leased job is never forgotten while its worker lives, and a
/// worker that stops first hands it back. Returns whether the lease was still ours.
pub(crate) async fn finish(
    ctx: &Ctx,
    worker: &str,
    job: &Leased,
    ended: Option<(&JobKind, (bool, Option<&str>))>,
    settle: Settle,
) -> bool {
    let mut pause = Duration::from_millis(100);
    let mut recorded = false;
    loop {
        let tried = async {
            if let (Some((kind, (ok, err))), false) = (ended, recorded) {
                ctx.store
                    .record_outcome(&job.id, *kind, ok, job.attempt, err, ctx.now())
                    .await?;
                recorded = true;
            }
            Ok::<bool, JobError>(ctx.queue.settle(worker, job, settle.clone()).await?)
        };
        match tried.await {
            Ok(kept) => return kept,
            Err(e) => {
                tracing::warn!(error = %e, job_id = %job.id, retry_in_ms = pause.as_millis() as u64, "could not settle the job yet; trying again");
                tokio::time::sleep(pause).await;
                pause = (pause * 2).min(SETTLE_BACKOFF_MAX);
            }
        }
    }
}

/// Runs a leased job and settles it.
pub async fn run_one(ctx: &Ctx, worker: &str, job: &Leased, timeout: Duration) -> Outcome {
    let span = tracing::info_span!(
        "job",
        otel.name = %format!("job {}", job.queue),
        queue = %job.queue,
        job_id = %job.id,
        attempt = job.attempt
    );
    if let Some(parent) = &job.trace {
        crate::runtime::trace::continue_trace(&span, parent);
    }
    run_one_in_span(ctx, worker, job, timeout)
        .instrument(span)
        .await
}

async fn run_one_in_span(ctx: &Ctx, worker: &str, job: &Leased, timeout: Duration) -> Outcome {
    let kind = job.queue.parse::<JobKind>();
    let started = std::time::Instant::now();
    let result = match &kind {
        Err(e) => Err(JobError::Malformed(e.to_string())),
        Ok(kind) => match tokio::time::timeout(timeout, handle(ctx, *kind, &job.payload)).await {
            Ok(r) => r.map(drop),
            Err(_) => Err(timed_out(timeout)),
        },
    };
    let (settle, outcome) = match result {
        Ok(()) => (Settle::Done, Outcome::Succeeded),
        Err(e) => {
            let reason = e.to_string();
            match e.disposition() {
                Disposition::RetryAt(at) => {
                    (Settle::Release { run_at: at }, Outcome::Deferred(reason))
                }
                Disposition::Wait => {
                    let run_at = ctx.now() + ctx.queue.backoff_millis(job.attempt);
                    let reason = format!("waiting for the store: {reason}");
                    (Settle::Release { run_at }, Outcome::Deferred(reason))
                }
                Disposition::Retry if job.attempt < job.max_attempts => {
                    let run_at = ctx.now() + ctx.queue.backoff_millis(job.attempt);
                    let settle = Settle::Retry {
                        run_at,
                        reason: reason.clone(),
                    };
                    (settle, Outcome::Retried(reason))
                }
                Disposition::Retry => {
                    let reason = format!("gave up after {} attempts: {reason}", job.attempt);
                    (
                        Settle::Dead {
                            reason: reason.clone(),
                        },
                        Outcome::DeadLettered(reason),
                    )
                }
                Disposition::Abort => (
                    Settle::Dead {
                        reason: reason.clone(),
                    },
                    Outcome::DeadLettered(reason),
                ),
            }
        }
    };
    // A job has ended when it succeeded or died; that is what the error rates count.
    let ended = match &outcome {
        Outcome::Succeeded => {
            tracing::debug!("job succeeded");
            Some((true, None))
        }
        Outcome::DeadLettered(r) => {
            tracing::error!(reason = %r, "job dead-lettered");
            Some((false, Some(r.as_str())))
        }
        Outcome::Retried(r) => {
            tracing::warn!(reason = %r, "job will run again");
            None
        }
        Outcome::Deferred(r) => {
            tracing::debug!(reason = %r, "job deferred");
            None
        }
        // Only known once the queue answers, below.
        Outcome::LeaseLost => None,
    };
    let ended = kind.as_ref().ok().zip(ended);
    let outcome = if finish(ctx, worker, job, ended, settle).await {
        outcome
    } else {
        tracing::warn!("lease lost before the job settled; it runs again elsewhere");
        Outcome::LeaseLost
    };
    if let Ok(kind) = &kind {
        let q = kind.queue();
        let m = cep_shared::metrics::get();
        m.jobs
            .with_label_values(&[q, outcome.label().as_str()])
            .inc();
        m.job_duration
            .with_label_values(&[q])
            .observe(started.elapsed().as_secs_f64());
    }
    outcome
}
