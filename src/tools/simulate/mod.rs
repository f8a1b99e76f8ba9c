//! `cep simulate`: N days of the agency on a simulated clock. The scheduler's ticks,
//! every layer's jobs and a seeded world of prospects and clients (replies, bookings
//! arriving through the real signed Calendly webhook, unsubscribes, finished onboarding
//! tasks, payments, cancellations) run in time order; the queue is drained at each
//! instant before the clock moves on. Same seed, same numbers, on either backend.
//!
//! `world` is the seeded world and what it observes in the store after each instant;
//! `act` carries out what the world does (through the real HTTP endpoints where a
//! person or Calendly would); `summary` reads the funnel and Φ_sync series back.

mod act;
mod performance;
mod profiles;
mod progress;
mod summary;
mod world;

pub use progress::Progress;

pub use summary::{PhiPoint, Summary, render};
pub use world::Behaviour;

use act::act;
use cep_shared::JobKind;
use cep_shared::clock::DAY;
use cep_shared::config::Settings;
use cep_shared::queue::{Leased, worker_name};
use cep_workers::{Ctx, http};
use chrono::{DateTime, TimeZone, Utc};
use std::collections::{BinaryHeap, HashSet};
use std::sync::Arc;
use summary::summarize;
use world::{World, observe};

#[derive(Debug, Clone)]
pub struct Options {
    pub days: u32,
    pub seed: u64,
    pub start: DateTime<Utc>,
    /// How the run shows its progress on stderr.
    pub progress: Progress,
}

impl Options {
    pub fn default_start() -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2026, 1, 5, 0, 0, 0)
            .single()
            .expect("a valid date")
    }
}

/// Settings for a simulation: its own data directory (cleared) on the embedded default,
/// its own key prefix on Redis.
pub fn prepare(mut settings: Settings, seed: u64) -> anyhow::Result<Settings> {
    if settings.backends.is_embedded() {
        let dir = settings.data_dir.join(format!("simulate-{seed}"));
        if dir.exists() {
            std::fs::remove_dir_all(&dir)
                .map_err(|e| anyhow::anyhow!("cannot clear {}: {e}", dir.display()))?;
        }
        settings.data_dir = dir;
    }
    settings.queue.key_prefix = format!(
        "{}-sim-{}",
        settings.queue.key_prefix,
        cep_shared::queue::new_job_id()
    );
    Ok(settings)
}

/// Runs the simulation on `ctx`, whose clock must be simulated and whose store must be
/// empty.
pub async fn run(ctx: Ctx, opts: &Options) -> anyhow::Result<Summary> {
    anyhow::ensure!(
        matches!(ctx.clock, cep_shared::Clock::Simulated(_)),
        "the simulation needs a simulated clock"
    );
    let (existing,): (i64,) = sqlx::query_as("SELECT COUNT(*) FROM prospects")
        .fetch_one(ctx.store.pool())
        .await?;
    anyhow::ensure!(
        existing == 0,
        "the store already holds {existing} prospects; simulate needs an empty database (point DATABASE_URL at a scratch one)"
    );
    // The world signs its webhooks and follows unsubscribe links with keys of its own
    // when none are configured: the real verification path runs either way.
    let mut secrets = (*ctx.secrets).clone();
    secrets
        .calendly_signing_key
        .get_or_insert_with(|| format!("simulation-{}", opts.seed));
    secrets
        .unsubscribe_key
        .get_or_insert_with(|| format!("simulation-unsubscribe-{}", opts.seed));
    secrets
        .booking_link_key
        .get_or_insert_with(|| format!("simulation-booking-{}", opts.seed));
    // Its clients' Business Profiles are simulated too, served locally: the optimization
    // layer reads and edits them as it would Google's, for real (nothing leaves the
    // machine), so the weekly reading measures what its work did.
    let profiles = profiles::Profiles::new(ctx.clock.clone());
    let gbp_url = profiles::serve(profiles.clone()).await?;
    secrets
        .gbp_access_token
        .get_or_insert_with(|| format!("simulation-gbp-{}", opts.seed));
    let mut settings = (*ctx.settings).clone();
    settings.providers.gbp.business_information_url = gbp_url.clone();
    settings.providers.gbp.v4_url = gbp_url.clone();
    settings.providers.gbp.performance_url = gbp_url;
    settings.providers.gbp.dry_run = false;
    // Reports are written, not emailed: `cep report` prints one afterwards.
    settings.reports.email = false;
    let ctx = Ctx {
        secrets: Arc::new(secrets),
        settings: Arc::new(settings),
        ..ctx
    };
    let router = http::router(ctx.clone());
    let settings = ctx.settings.clone();
    let start = opts.start.timestamp_millis();
    let end = start + i64::from(opts.days) * DAY;
    ctx.clock.set(opts.start);

    let ticks: Vec<i64> = cep_scheduler::ticks(
        &settings,
        opts.start - chrono::Duration::milliseconds(1),
        cep_shared::clock::from_millis(end),
    )
    .iter()
    .map(|t| t.at.timestamp_millis())
    .collect();
    let kinds: Vec<JobKind> = JobKind::all().collect();
    let queues: Vec<&str> = kinds.iter().map(|k| k.queue()).collect();
    let worker = worker_name("simulate");
    let mut world = World {
        profiles,
        seed: opts.seed,
        b: ctx.settings.simulate.world.clone(),
        queue: BinaryHeap::new(),
        seq: 0,
        seen: HashSet::new(),
        webhooks_refused: 0,
    };
    let mut jobs_run = 0u64;
    let mut prev = start - 1;
    let mut now = start;
    let mut meter = progress::Meter::new(opts.progress, opts.days, opts.start);
    loop {
        cep_scheduler::enqueue_between(
            &ctx.queue,
            &settings,
            cep_shared::clock::from_millis(prev),
            cep_shared::clock::from_millis(now),
        )
        .await?;
        while world.next_at().is_some_and(|at| at <= now) {
            let Some(s) = world.queue.pop() else { break };
            act(&ctx, &router, &mut world, s.act, now).await?;
        }
        jobs_run += drain_due(&ctx, &queues, &worker).await?;
        observe(&ctx, &mut world, now).await?;

        meter.at((now - start) / DAY, jobs_run);
        if now >= end {
            break;
        }
        let next_tick = ticks.iter().copied().find(|t| *t > now);
        let next = [
            ctx.queue.next_due(&queues).await?,
            world.next_at(),
            next_tick,
            Some(end),
        ]
        .into_iter()
        .flatten()
        .map(|t| t.max(now + 1))
        .min()
        .unwrap_or(end)
        .min(end);
        prev = now;
        now = next;
        ctx.clock.set(cep_shared::clock::from_millis(now));
    }
    meter.finish(jobs_run);
    let dead: u64 = ctx.queue.stats(&queues).await?.iter().map(|s| s.dead).sum();
    let mut summary = summarize(&ctx, opts, jobs_run, dead).await?;
    summary.webhooks_refused = world.webhooks_refused;
    Ok(summary)
}

/// Runs every job due now, in a stable order (so both backends make the same choices
/// when caps bind), until nothing is due.
async fn drain_due(ctx: &Ctx, queues: &[&str], worker: &str) -> anyhow::Result<u64> {
    let timeout = std::time::Duration::from_secs(ctx.settings.worker.job_timeout_seconds);
    let mut ran = 0;
    loop {
        let mut batch: Vec<Leased> = Vec::new();
        loop {
            let got = ctx.queue.fetch(queues, worker, 512).await?;
            if got.is_empty() {
                break;
            }
            batch.extend(got);
        }
        if batch.is_empty() {
            return Ok(ran);
        }
        batch.sort_by(|a, b| {
            let rank = |q: &str| q.parse::<JobKind>().map(|k| k.order()).unwrap_or(u32::MAX);
            rank(&a.queue)
                .cmp(&rank(&b.queue))
                .then_with(|| a.payload.cmp(&b.payload))
        });
        for job in &batch {
            cep_workers::run_one(ctx, worker, job, timeout).await;
            ran += 1;
        }
    }
}
