//! Opening the backends the settings choose, and the roles that run on them.

use anyhow::Context as _;
use cep_shared::queue::{QUEUE_FILE, Queue, QueueContext, RedisQueue, SqliteQueue};
use cep_shared::store::Store;
use cep_shared::vocabulary::PhiStatus;
use cep_shared::{Clock, JobKind, Secrets, Settings};
use cep_workers::Ctx;
use cep_workers::runtime::{self, WorkerOptions};
use tokio::sync::watch;

/// Opens the store and queue. The embedded default migrates itself; the fleet expects
/// `cep migrate` to have run (a Kubernetes Job) and refuses to start otherwise.
pub async fn open(settings: Settings, clock: Clock) -> anyhow::Result<Ctx> {
    open_with(settings, Secrets::from_env(), clock).await
}

/// [`open`] with these secrets instead of the environment's.
pub async fn open_with(settings: Settings, secrets: Secrets, clock: Clock) -> anyhow::Result<Ctx> {
    let ctx = connect_with(settings, secrets, clock).await?;
    if ctx.settings.backends.is_embedded() {
        ctx.store.migrate().await?;
    } else if !ctx.store.migrations_applied().await? {
        anyhow::bail!("the database is not migrated to this version; run `cep migrate` first");
    }
    Ok(ctx)
}

/// Opens the store and queue and applies any pending migration, on the fleet too: for
/// `cep simulate`, which needs an empty database and fills it itself.
pub async fn open_migrated(settings: Settings, clock: Clock) -> anyhow::Result<Ctx> {
    let ctx = connect_with(settings, Secrets::from_env(), clock).await?;
    ctx.store.migrate().await?;
    Ok(ctx)
}

/// Opens the store and queue the settings choose, without touching migrations (so
/// `cep health` can report them).
pub async fn connect(settings: Settings, clock: Clock) -> anyhow::Result<Ctx> {
    connect_with(settings, Secrets::from_env(), clock).await
}

async fn connect_with(settings: Settings, secrets: Secrets, clock: Clock) -> anyhow::Result<Ctx> {
    let store = Store::open(&settings).await?;
    let qctx = QueueContext {
        clock: clock.clone(),
        settings: settings.queue.clone(),
        notify: Default::default(),
        paused: Default::default(),
    };
    let queue = match &settings.backends.redis_url {
        Some(url) => Queue::Redis(RedisQueue::connect(url, qctx).await?),
        None => {
            let queue = SqliteQueue::open(&settings.data_dir.join(QUEUE_FILE), qctx).await?;
            queue.adopt_legacy(store.pool()).await?;
            Queue::Sqlite(queue)
        }
    };
    Ctx::new(settings, secrets, store, queue, clock)
}

/// The health report and whether every check passed.
pub async fn health(ctx: &Ctx) -> (String, bool) {
    let mut out = String::new();
    let mut ok = true;
    for (name, r) in cep_workers::http::ops::readiness(ctx).await {
        match r {
            Ok(s) => out.push_str(&format!("ok      {name}: {s}\n")),
            Err(e) => {
                ok = false;
                out.push_str(&format!("FAILED  {name}: {e}\n"));
            }
        }
    }
    if ctx.secrets.calendly_api_token.is_some() {
        use cep_workers::layers::booking::calendly_api;
        let line = match calendly_api::status(ctx).await {
            Ok(Some(s)) if s.state == "active" => Ok(format!("subscription {} active", s.uri)),
            Ok(Some(s)) => Err(format!("Calendly disabled {}; run `cep calendly`", s.uri)),
            Ok(None) => Err("no webhook subscription points here; run `cep calendly`".into()),
            Err(e) => Err(e.to_string()),
        };
        match line {
            Ok(s) => out.push_str(&format!("ok      calendly: {s}\n")),
            Err(e) => {
                ok = false;
                out.push_str(&format!("FAILED  calendly: {e}\n"));
            }
        }
    }
    if !ok {
        return (out, false);
    }
    match cep_workers::aggregation::compute(ctx, ctx.now()).await {
        Ok(c) => {
            let fmt = |v: Option<f64>| v.map_or("no data".to_string(), |x| format!("{x:.3}"));
            for h in &c.containers {
                let i = &h.inputs;
                let window = match i.window {
                    Some(w) if w.widened > 0 => {
                        format!(", window widened {} times to reach its sample", w.widened)
                    }
                    Some(_) => String::new(),
                    None => format!(
                        ", samples {} and {} short of the minimum even over the widest window",
                        i.conversion_sample, i.efficiency_sample
                    ),
                };
                out.push_str(&format!(
                    "ok      container {}: health {}{window}\n",
                    h.container.as_str(),
                    fmt(h.health)
                ));
            }
            let critical = c.status == PhiStatus::Critical;
            ok &= !critical;
            out.push_str(&format!(
                "{}  coherence: Φ_sync {} ({})\n",
                if critical { "FAILED" } else { "ok    " },
                c.shown(),
                c.status
            ));
            for f in &c.red_flags {
                out.push_str(&format!("warn    red flag: {f}\n"));
            }
        }
        Err(e) => {
            ok = false;
            out.push_str(&format!("FAILED  coherence: {e}\n"));
        }
    }
    (out, ok)
}

/// Parses `--layers prospecting,pitch_generation` (or `all`).
pub fn parse_kinds(list: &str) -> anyhow::Result<Vec<JobKind>> {
    if list.trim() == "all" {
        return Ok(JobKind::all().collect());
    }
    list.split(',')
        .map(|s| s.parse::<JobKind>().map_err(anyhow::Error::from))
        .collect()
}

pub async fn worker(
    ctx: Ctx,
    kinds: Vec<JobKind>,
    shutdown: watch::Receiver<bool>,
) -> anyhow::Result<u64> {
    let opts = WorkerOptions {
        name: cep_shared::queue::worker_name("worker"),
        kinds,
        concurrency: ctx.settings.worker.concurrency,
        work: Default::default(),
    };
    runtime::run(ctx, opts, shutdown).await
}

/// Everything in one process: the HTTP endpoints, the scheduler and a worker for every
/// queue.
pub async fn run_all(ctx: Ctx, shutdown: watch::Receiver<bool>) -> anyhow::Result<()> {
    let settings = ctx.settings.clone();
    let queue = ctx.queue.clone();
    let sched = tokio::spawn({
        let shutdown = shutdown.clone();
        async move { cep_scheduler::run(queue, &settings, shutdown).await }
    });
    let served = cep_workers::http::bind_role(&ctx, true).await?;
    let server = tokio::spawn({
        let (ctx, shutdown) = (ctx.clone(), shutdown.clone());
        async move { cep_workers::http::ops::serve_on(ctx, served, shutdown).await }
    });
    worker(ctx, JobKind::all().collect(), shutdown).await?;
    sched.await.context("scheduler task panicked")??;
    server.await.context("http server task panicked")??;
    Ok(())
}

/// Health and metrics endpoints for a role without public endpoints (worker,
/// scheduler), on `server.metrics_bind` when set, `server.bind` otherwise.
pub async fn ops_server(
    ctx: &Ctx,
    shutdown: watch::Receiver<bool>,
) -> anyhow::Result<tokio::task::JoinHandle<anyhow::Result<()>>> {
    let served = cep_workers::http::bind_role(ctx, false).await?;
    let ctx = ctx.clone();
    Ok(tokio::spawn(async move {
        cep_workers::http::ops::serve_on(ctx, served, shutdown).await
    }))
}

/// Runs one layer on one input, as the seed's `--debug --layer=N`.
pub async fn run_layer(
    ctx: &Ctx,
    kind: JobKind,
    mut input: serde_json::Value,
) -> anyhow::Result<serde_json::Value> {
    if let (JobKind::Layer(cep_shared::Layer::Prospecting), Some(obj)) =
        (kind, input.as_object_mut())
    {
        obj.entry("period")
            .or_insert_with(|| ctx.clock.now().format("%Y-%m-%d").to_string().into());
    }
    // The seed API document's parameters, where the layer's job takes another shape.
    if let Some(out) = crate::seed_api::run(ctx, kind, &input).await {
        return out;
    }
    let out = cep_workers::handle(ctx, kind, &input.to_string()).await?;
    Ok(out)
}

/// A watch channel that turns true on SIGTERM or Ctrl-C.
pub fn shutdown_signal() -> watch::Receiver<bool> {
    let (tx, rx) = watch::channel(false);
    tokio::spawn(async move {
        #[cfg(unix)]
        {
            let mut term =
                tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
                    .expect("can listen for SIGTERM");
            tokio::select! {
                _ = tokio::signal::ctrl_c() => {}
                _ = term.recv() => {}
            }
        }
        #[cfg(not(unix))]
        let _ = tokio::signal::ctrl_c().await;
        tracing::info!("shutdown requested");
        let _ = tx.send(true);
    });
    rx
}
