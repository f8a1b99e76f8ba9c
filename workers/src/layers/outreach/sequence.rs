//! A prospect's sequence as delayed jobs: each step enqueued once, timed from the first
//! send.

use super::store;
use crate::{Ctx, JobError};
use cep_shared::clock::HOUR;
use cep_shared::jobs::OutreachJob;
use cep_shared::queue::NewJob;

/// Enqueues the sequence's next step, timed from the first send; keyed so a redelivery
/// enqueues it once. A follow-up (no sequence job) chains nothing.
pub async fn chain_next(
    ctx: &Ctx,
    job: Option<&OutreachJob>,
    now: i64,
) -> Result<Option<i64>, JobError> {
    let Some(job) = job else {
        return Ok(None);
    };
    let seq = &ctx.settings.layers.outreach.sequence;
    let next = job.step + 1;
    let Some(step) = seq.get(next as usize) else {
        return Ok(None);
    };
    let base = store::first_sent_at(ctx, &job.prospect_id)
        .await?
        .unwrap_or(now);
    let run_at = (base + i64::from(step.offset_hours) * HOUR).max(now);
    ctx.queue
        .push(NewJob::of(
            &OutreachJob {
                prospect_id: job.prospect_id.clone(),
                step: next,
            },
            run_at,
        ))
        .await?;
    Ok(Some(run_at))
}
