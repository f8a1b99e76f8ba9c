//! The worker loop: lease as many jobs as there are free slots, run them concurrently,
//! heartbeat, recover orphans, and on shutdown stop fetching and drain within the
//! deadline.

use crate::{Ctx, run_one};
use cep_shared::JobKind;
use cep_shared::queue::{Leased, Settle};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::{Semaphore, watch};
use tokio::task::JoinSet;

#[derive(Debug, Clone)]
pub struct WorkerOptions {
    pub name: String,
    pub kinds: Vec<JobKind>,
    pub concurrency: usize,
}

type Joined = Result<(tokio::task::Id, ()), tokio::task::JoinError>;

/// The id of a finished job task, whether it returned or panicked.
fn finished_id(done: Joined) -> tokio::task::Id {
    match done {
        Ok((id, ())) => id,
        Err(e) => e.id(),
    }
}

/// Runs until `shutdown` turns true, then drains. Returns the number of jobs run.
pub async fn run(
    ctx: Ctx,
    opts: WorkerOptions,
    mut shutdown: watch::Receiver<bool>,
) -> anyhow::Result<u64> {
    let queues: Vec<&'static str> = opts.kinds.iter().map(|k| k.queue()).collect();
    let slots = Arc::new(Semaphore::new(opts.concurrency));
    let timeout = Duration::from_secs(ctx.settings.worker.job_timeout_seconds);
    let heartbeat = Duration::from_secs(ctx.settings.queue.heartbeat_interval_seconds);
    let idle = Duration::from_millis(ctx.settings.queue.idle_poll_millis);
    let batch = ctx.settings.queue.fetch_batch as usize;
    let notify = ctx.queue.notifier();
    let mut running: JoinSet<()> = JoinSet::new();
    let mut in_flight: std::collections::HashMap<tokio::task::Id, Leased> = Default::default();
    let mut ran = 0u64;
    let mut beat = tokio::time::interval(heartbeat);
    beat.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    tracing::info!(worker = %opts.name, queues = ?queues, "worker started");

    loop {
        if *shutdown.borrow() {
            break;
        }
        while let Some(done) = running.try_join_next_with_id() {
            in_flight.remove(&finished_id(done));
        }
        let free = slots.available_permits().min(batch);
        let mut fetched = 0;
        if free > 0 {
            match ctx.queue.fetch(&queues, &opts.name, free).await {
                Ok(jobs) => {
                    fetched = jobs.len();
                    for job in jobs {
                        let permit = slots.clone().acquire_owned().await?;
                        let (c, name, j) = (ctx.clone(), opts.name.clone(), job.clone());
                        let handle = running.spawn(async move {
                            if let Err(e) = run_one(&c, &name, &j, timeout).await {
                                tracing::error!(error = %e, job_id = %j.id, "could not settle job; its lease will expire");
                            }
                            drop(permit);
                        });
                        in_flight.insert(handle.id(), job);
                        ran += 1;
                    }
                }
                Err(e) => {
                    // A queue outage must not kill the worker: back off and try again.
                    tracing::warn!(error = %e, "fetch failed");
                    tokio::time::sleep(Duration::from_secs(1)).await;
                }
            }
        }
        if fetched > 0 && slots.available_permits() > 0 {
            continue;
        }
        tokio::select! {
            _ = shutdown.changed() => {}
            _ = notify.notified() => {}
            _ = tokio::time::sleep(idle) => {}
            Some(done) = running.join_next_with_id(), if !running.is_empty() => {
                in_flight.remove(&finished_id(done));
            }
            _ = beat.tick() => {
                if let Err(e) = ctx.queue.heartbeat(&opts.name).await {
                    tracing::warn!(error = %e, "heartbeat failed");
                }
                match ctx.queue.recover_orphans().await {
                    Ok(n) if n > 0 => tracing::warn!(jobs = n, "recovered jobs of a dead worker"),
                    Ok(_) => {}
                    Err(e) => tracing::warn!(error = %e, "orphan recovery failed"),
                }
            }
        }
    }

    // Phase two: no more fetching; finish in-flight jobs within the deadline, keeping the
    // heartbeat alive so no other worker takes them meanwhile.
    let deadline = Duration::from_secs(ctx.settings.worker.shutdown_deadline_seconds);
    tracing::info!(
        in_flight = running.len(),
        deadline_s = deadline.as_secs(),
        "draining"
    );
    let drain = async {
        while let Some(done) = running.join_next_with_id().await {
            in_flight.remove(&finished_id(done));
        }
    };
    let keep_alive = async {
        loop {
            tokio::time::sleep(heartbeat).await;
            let _ = ctx.queue.heartbeat(&opts.name).await;
        }
    };
    let drained = tokio::select! {
        _ = drain => true,
        _ = keep_alive => false,
        _ = tokio::time::sleep(deadline) => false,
    };
    if !drained {
        running.abort_all();
        while running.join_next().await.is_some() {}
        // Hand unfinished jobs straight back instead of waiting out the orphan window.
        for job in in_flight.values() {
            let now = ctx.now();
            if let Err(e) = ctx
                .queue
                .settle(&opts.name, job, Settle::Release { run_at: now })
                .await
            {
                tracing::warn!(error = %e, job_id = %job.id, "could not hand a job back; it returns after the orphan window");
            }
        }
        tracing::warn!(
            handed_back = in_flight.len(),
            "deadline passed; unfinished jobs handed back"
        );
    }
    ctx.queue.deregister(&opts.name).await?;
    tracing::info!(worker = %opts.name, jobs = ran, "worker stopped");
    Ok(ran)
}
