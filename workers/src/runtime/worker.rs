//! The worker: an apalis worker (tracing and concurrency middleware) over our queue
//! backend, run by an apalis `Monitor`, with heartbeats and orphan recovery beside it; on
//! shutdown it stops fetching, finishes in-flight jobs within the deadline (the monitor's
//! terminator) and hands back any it could not finish.

use super::backend::{Leases, QueueBackend, hand_back};
use super::dispatch::finish;
use super::run_one;
use crate::Ctx;
use apalis::prelude::{BoxDynError, Data, Monitor, WorkerBuilder, WorkerBuilderExt, WorkerContext};
use cep_shared::JobKind;
use cep_shared::queue::{DIED_EVERY_ATTEMPT, Leased, Orphan, Settle};
use cep_shared::vocabulary::JobOutcome;
use futures::FutureExt;
use std::collections::HashSet;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;
use tokio::sync::watch;

#[derive(Clone)]
pub struct WorkerOptions {
    pub name: String,
    pub kinds: Vec<JobKind>,
    pub concurrency: usize,
    pub work: Work,
}

/// What a worker does with each leased job.
#[derive(Clone, Default)]
pub enum Work {
    /// Runs it through its layer, records its outcome, settles it.
    #[default]
    Layers,
    /// Hands it to a probe, then settles it done: `cep bench` measures the queue and
    /// the worker around a job of known cost.
    Probe(Arc<dyn Probe>),
}

/// A job body of known cost, for benchmarks.
pub trait Probe: Send + Sync {
    fn run<'a>(&'a self, job: &'a Leased) -> futures::future::BoxFuture<'a, ()>;
}

/// What every job of a worker is run with; shared, so handing it to a job costs one
/// reference count.
struct JobEnv {
    ctx: Ctx,
    leases: Leases,
    timeout: Duration,
    ran: AtomicU64,
    work: Work,
}

/// How long a worker has been heard without a break: since its first heartbeat after a
/// failed one, or after a gap of more than two heartbeat intervals (a call that waited
/// out an outage).
#[derive(Debug, Default)]
struct Liveness {
    since: Option<std::time::Instant>,
    last: Option<std::time::Instant>,
}

impl Liveness {
    /// Notes a heartbeat; whether this worker may now reap others.
    fn beat(
        &mut self,
        ok: bool,
        now: std::time::Instant,
        interval: Duration,
        window: Duration,
    ) -> bool {
        if !ok {
            *self = Liveness::default();
            return false;
        }
        if self
            .last
            .is_none_or(|last| now.duration_since(last) > 2 * interval)
        {
            self.since = Some(now);
        }
        self.last = Some(now);
        self.since
            .is_some_and(|since| now.duration_since(since) >= window)
    }
}

/// The apalis handler: runs one leased job through its layer and settles it. A panic is
/// caught and the job dead-lettered with that reason, never left leased.
async fn execute(
    job: Arc<Leased>,
    env: Data<Arc<JobEnv>>,
    worker: WorkerContext,
) -> Result<(), BoxDynError> {
    let name = worker.name();
    let in_flight = &cep_shared::metrics::get().in_flight;
    in_flight.inc();
    let work = async {
        match &env.work {
            Work::Layers => {
                run_one(&env.ctx, name, &job, env.timeout).await;
            }
            Work::Probe(probe) => {
                probe.run(&job).await;
                finish(&env.ctx, name, &job, None, Settle::Done).await;
            }
        }
    };
    if std::panic::AssertUnwindSafe(work)
        .catch_unwind()
        .await
        .is_err()
    {
        let reason = "the handler panicked".to_string();
        tracing::error!(job_id = %job.id, "{reason}");
        let kind = job.queue.parse::<JobKind>().ok();
        let ended = kind.as_ref().map(|k| (k, (false, Some(reason.as_str()))));
        let dead = Settle::Dead {
            reason: reason.clone(),
        };
        finish(&env.ctx, name, &job, ended, dead).await;
    }
    in_flight.dec();
    env.leases.done(&job);
    env.ran.fetch_add(1, Ordering::Relaxed);
    Ok(())
}

/// Records a failed outcome (and counts a dead job) for each job recovery dead-lettered,
/// so the error rates and Φ_sync see a job that killed its worker on every attempt.
async fn record_dead_orphans(ctx: &Ctx, dead: &[Orphan]) {
    let m = cep_shared::metrics::get();
    for o in dead {
        let Ok(kind) = o.queue.parse::<JobKind>() else {
            continue;
        };
        m.jobs
            .with_label_values(&[kind.queue(), JobOutcome::Dead.as_str()])
            .inc();
        let ended = Some(DIED_EVERY_ATTEMPT);
        let recorded = ctx
            .store
            .record_outcome(&o.id, kind, false, o.attempts, ended, ctx.now())
            .await;
        if let Err(e) = recorded {
            tracing::error!(error = %e, job_id = %o.id, "could not record a dead orphan's outcome");
        }
    }
}

/// Hands back the jobs the queue counts as leased to this worker that it does not know
/// it holds, once they were seen so at two heartbeats running (a fetch under way is not
/// yet known at the first): a lease never outlives what its worker knows. Returns the
/// ids seen so this time.
async fn hand_back_lost(
    ctx: &Ctx,
    worker: &str,
    leases: &Leases,
    before: HashSet<String>,
) -> HashSet<String> {
    let leased = match ctx.queue.leased_to(worker).await {
        Ok(l) => l,
        Err(e) => {
            tracing::warn!(error = %e, "could not compare leases with the queue");
            return before;
        }
    };
    let known = leases.ids();
    let (mut seen, mut again) = (HashSet::new(), Vec::new());
    for job in leased.into_iter().filter(|j| !known.contains(&j.id)) {
        if before.contains(&job.id) {
            again.push(Arc::new(job));
        } else {
            seen.insert(job.id);
        }
    }
    if !again.is_empty() {
        tracing::warn!(
            jobs = again.len(),
            "handing back leases this worker had lost track of"
        );
        cep_shared::metrics::get()
            .orphans_recovered
            .inc_by(again.len() as u64);
        hand_back(&ctx.queue, worker, &again).await;
    }
    seen
}

/// Runs an apalis worker, supervised by an apalis [`Monitor`], on the queue until
/// `shutdown` turns true, then drains within the deadline. Returns the number of jobs run.
pub async fn run(
    ctx: Ctx,
    opts: WorkerOptions,
    shutdown: watch::Receiver<bool>,
) -> anyhow::Result<u64> {
    let queues: Vec<&'static str> = opts.kinds.iter().map(|k| k.queue()).collect();
    let heartbeat = Duration::from_secs(ctx.settings.queue.heartbeat_interval_seconds);
    let idle = Duration::from_millis(ctx.settings.queue.idle_poll_millis);
    let batch = (ctx.settings.queue.fetch_batch as usize).min(opts.concurrency);
    let deadline = Duration::from_secs(ctx.settings.worker.shutdown_deadline_seconds);
    let leases = Leases::default();
    ctx.queue.listen_for_wakeups();
    let env = Arc::new(JobEnv {
        ctx: ctx.clone(),
        leases: leases.clone(),
        timeout: Duration::from_secs(ctx.settings.worker.job_timeout_seconds),
        ran: AtomicU64::new(0),
        work: opts.work.clone(),
    });
    tracing::info!(worker = %opts.name, queues = ?queues, "worker started");
    let monitor = {
        let (queue, name, leases, env) = (
            ctx.queue.clone(),
            opts.name.clone(),
            leases.clone(),
            env.clone(),
        );
        let concurrency = opts.concurrency;
        // No restarts: our backend retries its own errors, so a worker that still stops
        // with one ends the process and its supervisor (Kubernetes) restarts it.
        Monitor::new()
            .register(move |_| {
                let backend = QueueBackend::new(
                    queue.clone(),
                    queues.clone(),
                    batch,
                    concurrency,
                    idle,
                    leases.clone(),
                );
                WorkerBuilder::new(name.clone())
                    .backend(backend)
                    .enable_tracing()
                    .concurrency(concurrency)
                    .data(env.clone())
                    .build(execute)
            })
            // Past the deadline the monitor stops waiting for in-flight jobs.
            .with_terminator(async move { tokio::time::sleep(deadline).await })
    };
    let signal = {
        let mut shutdown = shutdown;
        async move {
            let _ = shutdown.wait_for(|stop| *stop).await;
            tracing::info!(deadline_s = deadline.as_secs(), "draining");
            Ok::<(), std::io::Error>(())
        }
    };
    // Heartbeats and orphan recovery run beside the worker, through the drain too, so no
    // other worker takes jobs this one is still finishing.
    let keep_alive = async {
        let window = ctx.settings.queue.orphan_window();
        let mut beat = tokio::time::interval(heartbeat);
        beat.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let mut alive = Liveness::default();
        let mut lost = HashSet::new();
        loop {
            beat.tick().await;
            let beat_ok = ctx.queue.heartbeat(&opts.name).await;
            if let Err(e) = &beat_ok {
                tracing::warn!(error = %e, "heartbeat failed");
            }
            // After an outage every worker's heartbeat is old: reap only once this one has
            // been heard without a break for a whole orphan window, by when every live
            // worker has been heard again too.
            let reap = alive.beat(
                beat_ok.is_ok(),
                std::time::Instant::now(),
                heartbeat,
                window,
            );
            if beat_ok.is_ok() {
                lost = hand_back_lost(&ctx, &opts.name, &leases, lost).await;
            }
            if !reap {
                continue;
            }
            match ctx.queue.recover_orphans().await {
                Ok(r) if r.jobs > 0 => {
                    cep_shared::metrics::get()
                        .orphans_recovered
                        .inc_by(r.jobs as u64);
                    tracing::warn!(
                        jobs = r.jobs,
                        dead = r.dead.len(),
                        "recovered jobs of a dead worker"
                    );
                    record_dead_orphans(&ctx, &r.dead).await;
                }
                Ok(_) => {}
                Err(e) => tracing::warn!(error = %e, "orphan recovery failed"),
            }
        }
    };
    let stopped = tokio::select! {
        r = monitor.run_with_signal(signal) => r,
        never = keep_alive => never,
    };
    // Whatever is still leased did not finish (the deadline passed, or the worker gave
    // up): hand it straight back instead of leaving it to the orphan window.
    let unfinished = leases.take_all();
    if !unfinished.is_empty() {
        let n = unfinished.len();
        hand_back(&ctx.queue, &opts.name, &unfinished).await;
        tracing::warn!(handed_back = n, "unfinished jobs handed back");
    }
    ctx.queue.deregister(&opts.name).await?;
    stopped.map_err(|e| anyhow::anyhow!("worker {} stopped: {e}", opts.name))?;
    let ran = env.ran.load(Ordering::Relaxed);
    tracing::info!(worker = %opts.name, jobs = ran, "worker stopped");
    Ok(ran)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Instant;

    #[test]
    fn a_worker_reaps_only_after_a_whole_window_heard_without_a_break() {
        let (interval, window) = (Duration::from_secs(1), Duration::from_secs(3));
        let t0 = Instant::now();
        let at = |s: u64| t0 + Duration::from_secs(s);
        let mut l = Liveness::default();
        assert!(
            !l.beat(true, at(0), interval, window),
            "not on its first beat"
        );
        assert!(!l.beat(true, at(1), interval, window));
        assert!(!l.beat(true, at(2), interval, window));
        assert!(l.beat(true, at(3), interval, window));
        // An outage: the next beat comes 10 s later, so the window starts again.
        assert!(!l.beat(true, at(13), interval, window));
        assert!(!l.beat(true, at(15), interval, window));
        assert!(l.beat(true, at(16), interval, window));
        // A failed beat starts it again too.
        assert!(!l.beat(false, at(17), interval, window));
        assert!(!l.beat(true, at(18), interval, window));
        assert!(!l.beat(true, at(19), interval, window));
        assert!(!l.beat(true, at(20), interval, window));
        assert!(l.beat(true, at(21), interval, window));
    }
}
