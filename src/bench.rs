//! `cep bench`: the fleet measured on real Redis (and Postgres for Φ_sync), with the
//! protocol its peers (BullMQ, Celery, arq, RQ, apalis-redis) were measured by: enqueue single and
//! batched, drain of a pre-filled backlog by 1 and 2 worker processes (the clock starts
//! when the workers are spawned), enqueue-to-start latency at a steady 500 jobs/s,
//! I/O-bound jobs against a local API, worker RSS, the scheduler's enqueue of one
//! period, Φ_sync aggregation over recorded outcomes and the embedded 90-day main job.
//!
//! Workers are `cep bench-worker` child processes: the real apalis worker, backend,
//! leases, heartbeats and settle, with a job body of known cost instead of a layer.
//! Nothing here asserts a speed; it prints one table and writes it as JSON.

use crate::app;
use cep_shared::config::Settings;
use cep_shared::queue::{Leased, NewJob, Queue, QueueContext, RedisQueue};
use cep_shared::{Clock, JobKind, Layer};
use cep_workers::runtime::{Probe, Work, WorkerOptions};
use futures::future::BoxFuture;
use serde::{Deserialize, Serialize};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// The queue the benchmark's jobs travel on (under a key prefix of their own).
const KIND: JobKind = JobKind::Layer(Layer::Outreach);

#[derive(Debug, Clone)]
pub struct Options {
    /// Small sizes: a smoke run that checks every scenario still works.
    pub quick: bool,
    /// Only these scenarios (all when empty).
    pub only: Vec<String>,
    pub out: PathBuf,
    /// Each figure is the median of this many interleaved runs.
    pub runs: u32,
}

/// One measured figure.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Row {
    pub scenario: String,
    pub metric: String,
    pub value: f64,
    pub unit: String,
    /// Jobs (or outcomes, or days) the figure was measured over.
    pub n: u64,
    /// The target this figure is held to, when there is one.
    pub target: Option<String>,
    /// The peers' figures for the same measure on the same kind of machine.
    pub peer: Option<String>,
    /// Runs the value is the median of, and half their min–max range as a percentage
    /// of it.
    pub runs: u32,
    pub spread_pct: f64,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Report {
    pub machine: String,
    pub quick: bool,
    pub started_at: String,
    pub rows: Vec<Row>,
}

fn row(scenario: &str, metric: &str, value: f64, unit: &str, n: u64) -> Row {
    Row {
        scenario: scenario.into(),
        metric: metric.into(),
        value,
        unit: unit.into(),
        n,
        target: None,
        peer: None,
        runs: 1,
        spread_pct: 0.0,
    }
}

/// Each figure's median over the runs (rows match by position: every run measures the
/// same things in the same order).
fn median_rows(runs: Vec<Vec<Row>>) -> Vec<Row> {
    let n = runs.len() as u32;
    let mut runs = runs.into_iter();
    let Some(mut out) = runs.next() else {
        return Vec::new();
    };
    let mut values: Vec<Vec<f64>> = out.iter().map(|r| vec![r.value]).collect();
    for run in runs {
        for (v, r) in values.iter_mut().zip(run) {
            v.push(r.value);
        }
    }
    for (row, mut v) in out.iter_mut().zip(values) {
        v.sort_by(f64::total_cmp);
        let median = v[v.len() / 2];
        row.value = median;
        row.runs = n;
        row.spread_pct = if median > 0.0 {
            (v[v.len() - 1] - v[0]) / 2.0 / median * 100.0
        } else {
            0.0
        };
    }
    out
}

impl Row {
    fn target(mut self, t: &str) -> Self {
        self.target = Some(t.into());
        self
    }

    fn peer(mut self, p: &str) -> Self {
        self.peer = Some(p.into());
        self
    }
}

/// Sizes of each scenario, full and quick.
struct Sizes {
    enqueue_single: usize,
    backlogs: Vec<usize>,
    latency_seconds: u64,
    io_jobs: usize,
    schedule: usize,
    outcomes: Vec<u64>,
    days: u32,
    campaigns: usize,
}

impl Sizes {
    fn new(quick: bool) -> Self {
        if quick {
            Self {
                enqueue_single: 2_000,
                backlogs: vec![5_000],
                latency_seconds: 1,
                io_jobs: 2_000,
                schedule: 2_000,
                outcomes: vec![20_000],
                days: 7,
                campaigns: 2,
            }
        } else {
            Self {
                enqueue_single: 20_000,
                backlogs: vec![100_000, 1_000_000],
                latency_seconds: 10,
                io_jobs: 100_000,
                schedule: 100_000,
                outcomes: vec![1_000_000, 10_000_000],
                days: 90,
                campaigns: 40,
            }
        }
    }
}

fn redis_url() -> anyhow::Result<String> {
    std::env::var("REDIS_URL").map_err(|_| {
        anyhow::anyhow!(
            "cep bench measures on real Redis: set REDIS_URL (e.g. redis://127.0.0.1:6379)"
        )
    })
}

async fn bench_queue(prefix: &str) -> anyhow::Result<Queue> {
    let ctx = QueueContext {
        clock: Clock::System,
        settings: cep_shared::config::QueueSettings {
            key_prefix: prefix.into(),
            ..Default::default()
        },
        notify: Default::default(),
    };
    Ok(Queue::Redis(RedisQueue::connect(&redis_url()?, ctx).await?))
}

fn prefix(what: &str) -> String {
    format!("bench-{what}-{}", cep_shared::clock::wall_millis())
}

fn noop_jobs(n: usize) -> Vec<NewJob> {
    (0..n).map(|_| NewJob::new(KIND, &(), 0)).collect()
}

/// Enqueues `n` no-op jobs, due now, 1,000 per call.
async fn fill(queue: &Queue, n: usize) -> anyhow::Result<()> {
    for start in (0..n).step_by(1000) {
        queue.push_many(noop_jobs(1000.min(n - start))).await?;
    }
    Ok(())
}

/// Microseconds since the epoch, the latency probe's clock.
fn micros() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_micros() as i64)
}

/// CPU seconds this process has used, user and system (Linux `/proc/self/stat`, in
/// clock ticks of 1/100 s).
fn cpu_seconds() -> f64 {
    std::fs::read_to_string("/proc/self/stat")
        .ok()
        .and_then(|s| {
            // Fields after the command name, which is in parentheses.
            let rest = s.rsplit_once(')')?.1;
            let f: Vec<&str> = rest.split_whitespace().collect();
            let ticks = |i: usize| f.get(i)?.parse::<f64>().ok();
            Some((ticks(11)? + ticks(12)?) / 100.0)
        })
        .unwrap_or(0.0)
}

/// A figure in kB from a `/proc` file of `Field: N kB` lines (Linux).
fn proc_kb(path: &str, field: &str) -> u64 {
    std::fs::read_to_string(path)
        .ok()
        .and_then(|s| {
            s.lines().find_map(|l| {
                l.strip_prefix(field)?
                    .trim()
                    .strip_suffix("kB")?
                    .trim()
                    .parse()
                    .ok()
            })
        })
        .unwrap_or(0)
}

/// A `/proc/self/status` figure in kB.
fn status_kb(field: &str) -> u64 {
    proc_kb("/proc/self/status", field)
}

// ---- the worker child ------------------------------------------------------------

/// The job body a bench worker runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum ProbeKind {
    /// Nothing: the queue's and the worker's own cost.
    Noop,
    /// Records enqueue-to-start time from the job's `t` (µs since the epoch).
    Latency,
    /// One HTTP GET to `--url` (a local API that answers after 50 ms).
    Http,
}

struct Body {
    kind: ProbeKind,
    /// Only the HTTP probe has one: a client's TLS roots cost memory the others
    /// should not be charged for.
    http: Option<reqwest::Client>,
    url: String,
    waits: Mutex<Vec<u32>>,
}

#[derive(Deserialize)]
struct Stamp {
    t: i64,
}

impl Probe for Body {
    fn run<'a>(&'a self, job: &'a Leased) -> BoxFuture<'a, ()> {
        Box::pin(async move {
            match self.kind {
                ProbeKind::Noop => {}
                ProbeKind::Latency => {
                    if let Ok(s) = serde_json::from_str::<Stamp>(&job.payload) {
                        let wait = (micros() - s.t).max(0) as u32;
                        self.waits
                            .lock()
                            .unwrap_or_else(|e| e.into_inner())
                            .push(wait);
                    }
                }
                ProbeKind::Http => {
                    if let Some(http) = &self.http
                        && let Err(e) = http.get(&self.url).send().await
                    {
                        tracing::warn!(error = %e, "bench API call failed");
                    }
                }
            }
        })
    }
}

/// What a bench worker reports when it stops.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct WorkerReport {
    pub ran: u64,
    /// CPU seconds the worker process used, start-up included.
    pub cpu_seconds: f64,
    pub rss_idle_kb: u64,
    pub rss_peak_kb: u64,
    pub waits_us: Vec<u32>,
}

/// `cep bench-worker`: an apalis worker on the bench queue until SIGTERM; prints its
/// report as JSON.
pub async fn worker(
    settings: Settings,
    probe: ProbeKind,
    url: String,
    concurrency: usize,
) -> anyhow::Result<()> {
    let ctx = app::connect(settings, Clock::System).await?;
    let body = Arc::new(Body {
        kind: probe,
        http: match probe {
            ProbeKind::Http => Some(
                reqwest::Client::builder()
                    .pool_max_idle_per_host(concurrency)
                    .build()?,
            ),
            _ => None,
        },
        url,
        waits: Mutex::new(Vec::new()),
    });
    let idle = Arc::new(std::sync::atomic::AtomicU64::new(0));
    {
        let idle = idle.clone();
        tokio::spawn(async move {
            tokio::time::sleep(Duration::from_millis(300)).await;
            idle.store(status_kb("VmRSS:"), std::sync::atomic::Ordering::Relaxed);
        });
    }
    let opts = WorkerOptions {
        name: cep_shared::queue::worker_name("bench"),
        kinds: vec![KIND],
        concurrency,
        work: Work::Probe(body.clone()),
    };
    let ran = cep_workers::runtime::run(ctx, opts, app::shutdown_signal()).await?;
    let report = WorkerReport {
        ran,
        cpu_seconds: cpu_seconds(),
        rss_idle_kb: idle.load(std::sync::atomic::Ordering::Relaxed),
        rss_peak_kb: status_kb("VmHWM:"),
        waits_us: std::mem::take(&mut *body.waits.lock().unwrap_or_else(|e| e.into_inner())),
    };
    println!("{}", serde_json::to_string(&report)?);
    Ok(())
}

struct Workers {
    children: Vec<Child>,
    /// The workers' data directories, removed when they stop.
    dir: PathBuf,
}

impl Workers {
    fn spawn(
        n: usize,
        prefix: &str,
        probe: &str,
        url: &str,
        concurrency: usize,
    ) -> anyhow::Result<Self> {
        let exe = std::env::current_exe()?;
        let dir = std::env::temp_dir().join(format!("{prefix}-data"));
        std::fs::create_dir_all(&dir)?;
        let mut children = Vec::new();
        for i in 0..n {
            // Each its own (unused) embedded store: two would lock one SQLite file.
            let data = dir.join(i.to_string());
            children.push(
                Command::new(&exe)
                    .args([
                        "bench-worker",
                        "--probe",
                        probe,
                        "--url",
                        url,
                        "--concurrency",
                        &concurrency.to_string(),
                    ])
                    .env("REDIS_URL", redis_url()?)
                    .env_remove("DATABASE_URL")
                    .env("CEP__QUEUE__KEY_PREFIX", prefix)
                    .env("CEP__QUEUE__FETCH_BATCH", concurrency.min(256).to_string())
                    .env("CEP__DATA_DIR", &data)
                    .env("CEP__MODE", "prod")
                    .env("RUST_LOG", "error")
                    .stdout(Stdio::piped())
                    .stderr(Stdio::inherit())
                    .spawn()?,
            );
        }
        Ok(Self { children, dir })
    }

    /// SIGTERM to every worker; their reports.
    fn stop(mut self) -> anyhow::Result<Vec<WorkerReport>> {
        for c in &self.children {
            Command::new("kill")
                .args(["-TERM", &c.id().to_string()])
                .status()?;
        }
        let mut out = Vec::new();
        for c in self.children.drain(..) {
            let o = c.wait_with_output()?;
            let text = String::from_utf8_lossy(&o.stdout);
            let line = text.lines().last().unwrap_or_default();
            out.push(serde_json::from_str(line).map_err(|e| {
                anyhow::anyhow!("a bench worker did not report ({}): {e}: {text}", o.status)
            })?);
        }
        let _ = std::fs::remove_dir_all(&self.dir);
        Ok(out)
    }
}

impl Drop for Workers {
    fn drop(&mut self) {
        for c in &mut self.children {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

/// Redis's own CPU seconds and the commands it ran (those a script calls included),
/// from `INFO`: what a drain costs the server, per job.
#[derive(Debug, Clone, Copy, Default)]
struct ServerCost {
    cpu_seconds: f64,
    commands: f64,
}

async fn server_cost() -> anyhow::Result<ServerCost> {
    let client = redis::Client::open(redis_url()?)?;
    let mut conn = client.get_multiplexed_async_connection().await?;
    let info: String = redis::cmd("INFO").arg("all").query_async(&mut conn).await?;
    let field = |line: &str, key: &str| -> f64 {
        line.split(',')
            .find_map(|kv| kv.strip_prefix(key)?.parse().ok())
            .unwrap_or(0.0)
    };
    let mut cost = ServerCost::default();
    for line in info.lines() {
        if let Some(v) = line
            .strip_prefix("used_cpu_user:")
            .or_else(|| line.strip_prefix("used_cpu_sys:"))
        {
            cost.cpu_seconds += v.trim().parse::<f64>().unwrap_or(0.0);
        } else if let Some(rest) = line.strip_prefix("cmdstat_")
            && !rest.starts_with("info:")
        {
            cost.commands += field(rest.split_once(':').map_or("", |(_, v)| v), "calls=");
        }
    }
    Ok(cost)
}

impl std::ops::Sub for ServerCost {
    type Output = ServerCost;

    fn sub(self, o: ServerCost) -> ServerCost {
        ServerCost {
            cpu_seconds: self.cpu_seconds - o.cpu_seconds,
            commands: self.commands - o.commands,
        }
    }
}

/// Waits until nothing is ready, delayed or leased on the bench queue.
async fn drained(queue: &Queue, workers: &mut Workers, limit: Duration) -> anyhow::Result<()> {
    let until = Instant::now() + limit;
    loop {
        for c in &mut workers.children {
            if let Some(status) = c.try_wait()? {
                anyhow::bail!("a bench worker exited early ({status})");
            }
        }
        let s = &queue.stats(&[KIND.queue()]).await?[0];
        if s.ready == 0 && s.scheduled == 0 && s.running == 0 {
            anyhow::ensure!(s.dead == 0, "{} bench jobs were dead-lettered", s.dead);
            return Ok(());
        }
        anyhow::ensure!(
            Instant::now() < until,
            "not drained within {limit:?}: {s:?}"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

async fn purge(queue: &Queue) -> anyhow::Result<()> {
    if let Queue::Redis(r) = queue {
        r.purge().await?;
    }
    Ok(())
}

fn processes(n: usize) -> String {
    if n == 1 {
        "1 worker process".into()
    } else {
        format!("{n} worker processes")
    }
}

fn percentile(sorted: &[u32], p: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    f64::from(sorted[i.min(sorted.len() - 1)])
}

// ---- scenarios -----------------------------------------------------------------

async fn enqueue(sizes: &Sizes, rows: &mut Vec<Row>) -> anyhow::Result<()> {
    let p = prefix("enqueue");
    let queue = bench_queue(&p).await?;
    let n = sizes.enqueue_single;
    let t = Instant::now();
    for job in noop_jobs(n) {
        queue.push(job).await?;
    }
    rows.push(row(
        "enqueue",
        "single, one round trip each",
        n as f64 / t.elapsed().as_secs_f64(),
        "jobs/s",
        n as u64,
    ));
    purge(&queue).await?;
    let n = *sizes.backlogs.first().unwrap_or(&10_000);
    let t = Instant::now();
    fill(&queue, n).await?;
    rows.push(
        row(
            "enqueue",
            "batched, 1,000 per call",
            n as f64 / t.elapsed().as_secs_f64(),
            "jobs/s",
            n as u64,
        )
        .peer("BullMQ 29,500; apalis 110,000; arq 5,710; Celery 2,280"),
    );
    purge(&queue).await
}

async fn drain(sizes: &Sizes, rows: &mut Vec<Row>) -> anyhow::Result<()> {
    for &n in &sizes.backlogs {
        for procs in [1usize, 2] {
            let p = prefix("drain");
            let queue = bench_queue(&p).await?;
            fill(&queue, n).await?;
            let before = server_cost().await?;
            let t = Instant::now();
            let mut workers = Workers::spawn(procs, &p, "noop", "", 64)?;
            drained(&queue, &mut workers, Duration::from_secs(1800)).await?;
            let secs = t.elapsed().as_secs_f64();
            let cost = server_cost().await? - before;
            let reports = workers.stop()?;
            let ran: u64 = reports.iter().map(|r| r.ran).sum();
            anyhow::ensure!(ran == n as u64, "the workers ran {ran} of {n} jobs");
            let mut r = row(
                "drain",
                &format!("no-op, {}, backlog {n}", processes(procs)),
                n as f64 / secs,
                "jobs/s",
                n as u64,
            );
            if procs == 1 {
                r = r
                    .target("≥ 45,000 jobs/s; ≤ 10 % slower at 1,000,000 than at 100,000")
                    .peer("BullMQ 22,050; apalis-redis 1,512 (crash-safe) at 100,000");
            } else {
                r = r.peer("BullMQ 17,570; apalis-redis 1,825");
            }
            rows.push(r);
            // Where the time goes: the workers' CPU and Redis's per job, and Redis's commands.
            let worker_cpu: f64 = reports.iter().map(|r| r.cpu_seconds).sum();
            rows.push(row(
                "drain",
                &format!("worker CPU per job, {}, backlog {n}", processes(procs)),
                worker_cpu * 1e6 / n as f64,
                "µs",
                n as u64,
            ));
            rows.push(row(
                "drain",
                &format!("Redis CPU per job, {}, backlog {n}", processes(procs)),
                cost.cpu_seconds * 1e6 / n as f64,
                "µs",
                n as u64,
            ));
            rows.push(row(
                "drain",
                &format!("Redis commands per job, {}, backlog {n}", processes(procs)),
                cost.commands / n as f64,
                "commands",
                n as u64,
            ));
            let peak = reports.iter().map(|r| r.rss_peak_kb).max().unwrap_or(0);
            rows.push(
                row(
                    "drain",
                    &format!("worker peak RSS, {}, backlog {n}", processes(procs)),
                    peak as f64 / 1024.0,
                    "MB",
                    n as u64,
                )
                .peer("BullMQ 105 MB; apalis 5 MB"),
            );
            purge(&queue).await?;
        }
    }
    Ok(())
}

async fn latency(sizes: &Sizes, rows: &mut Vec<Row>) -> anyhow::Result<()> {
    let p = prefix("latency");
    let queue = bench_queue(&p).await?;
    let mut workers = Workers::spawn(1, &p, "latency", "", 64)?;
    // The worker is idle (and waiting) before the first job arrives.
    tokio::time::sleep(Duration::from_secs(1)).await;
    let rate = 500u64;
    let n = rate * sizes.latency_seconds;
    let start = Instant::now();
    for i in 0..n {
        let due = start + Duration::from_micros(i * 1_000_000 / rate);
        tokio::time::sleep_until(due.into()).await;
        queue
            .push(NewJob::new(KIND, &serde_json::json!({ "t": micros() }), 0))
            .await?;
    }
    drained(&queue, &mut workers, Duration::from_secs(60)).await?;
    let reports = workers.stop()?;
    let mut waits: Vec<u32> = reports.iter().flat_map(|r| r.waits_us.clone()).collect();
    anyhow::ensure!(waits.len() as u64 == n, "{} of {n} jobs timed", waits.len());
    waits.sort_unstable();
    let peer = "BullMQ 0.5 / 2.9 ms; apalis 4.8 / 9.7 ms (10 ms poll)";
    rows.push(
        row(
            "latency",
            "enqueue-to-start p50 at 500 jobs/s",
            percentile(&waits, 0.50) / 1000.0,
            "ms",
            n,
        )
        .peer(peer),
    );
    rows.push(
        row(
            "latency",
            "enqueue-to-start p99 at 500 jobs/s",
            percentile(&waits, 0.99) / 1000.0,
            "ms",
            n,
        )
        .target("≤ 3 ms")
        .peer(peer),
    );
    let r = &reports[0];
    rows.push(row(
        "rss",
        "worker RSS idle",
        r.rss_idle_kb as f64 / 1024.0,
        "MB",
        0,
    ));
    rows.push(
        row(
            "rss",
            "worker peak RSS at 500 jobs/s",
            r.rss_peak_kb as f64 / 1024.0,
            "MB",
            n,
        )
        .target("≤ 15 MB")
        .peer("BullMQ 105 MB; apalis 5 MB"),
    );
    purge(&queue).await
}

/// A local API that answers every request after 50 ms.
async fn slow_api() -> anyhow::Result<String> {
    let app = axum::Router::new().route(
        "/",
        axum::routing::get(|| async {
            tokio::time::sleep(Duration::from_millis(50)).await;
            "ok"
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let addr = listener.local_addr()?;
    tokio::spawn(async move { axum::serve(listener, app).await });
    Ok(format!("http://{addr}/"))
}

async fn io_bound(sizes: &Sizes, rows: &mut Vec<Row>) -> anyhow::Result<()> {
    let url = slow_api().await?;
    let p = prefix("io");
    let queue = bench_queue(&p).await?;
    let n = sizes.io_jobs;
    fill(&queue, n).await?;
    let t = Instant::now();
    let mut workers = Workers::spawn(1, &p, "http", &url, 1024)?;
    drained(&queue, &mut workers, Duration::from_secs(1800)).await?;
    let secs = t.elapsed().as_secs_f64();
    let reports = workers.stop()?;
    rows.push(
        row(
            "io_bound",
            "jobs waiting 50 ms on a local API, 1 process",
            n as f64 / secs,
            "jobs/s",
            n as u64,
        )
        .target("≥ 10,000 jobs/s"),
    );
    rows.push(row(
        "io_bound",
        "worker peak RSS, concurrency 1,024",
        reports[0].rss_peak_kb as f64 / 1024.0,
        "MB",
        n as u64,
    ));
    purge(&queue).await
}

async fn scheduler(sizes: &Sizes, rows: &mut Vec<Row>) -> anyhow::Result<()> {
    let p = prefix("schedule");
    let queue = bench_queue(&p).await?;
    let mut s = Settings::default();
    let r = &mut s.layers.prospecting;
    let per_category = sizes.schedule.div_ceil(r.categories.len());
    r.locations = (0..per_category).map(|i| format!("Town {i}, TX")).collect();
    r.campaigns_per_day = sizes.schedule as u32;
    let from: chrono::DateTime<chrono::Utc> = "2026-03-10T05:59:00Z".parse()?;
    let to = from + chrono::Duration::minutes(2);
    let t = Instant::now();
    let added = cep_scheduler::enqueue_between(&queue, &s, from, to).await?;
    let first = t.elapsed().as_secs_f64();
    anyhow::ensure!(
        added == sizes.schedule,
        "enqueued {added} of {}",
        sizes.schedule
    );
    let t = Instant::now();
    let again = cep_scheduler::enqueue_between(&queue, &s, from, to).await?;
    let second = t.elapsed().as_secs_f64();
    anyhow::ensure!(again == 0, "a second scheduler enqueued {again} again");
    rows.push(row(
        "scheduler",
        "one period's prospecting jobs, keyed",
        first,
        "s",
        added as u64,
    ));
    rows.push(row(
        "scheduler",
        "the same period again (all deduplicated)",
        second,
        "s",
        added as u64,
    ));
    purge(&queue).await
}

async fn aggregation(sizes: &Sizes, rows: &mut Vec<Row>) -> anyhow::Result<()> {
    let admin = std::env::var("DATABASE_URL")
        .map_err(|_| anyhow::anyhow!("the Φ_sync benchmark needs Postgres: set DATABASE_URL"))?;
    let name = format!("cep_bench_{}", cep_shared::clock::wall_millis());
    let admin_store = cep_shared::store::Store::connect(&admin).await?;
    sqlx::query(sqlx::AssertSqlSafe(format!("CREATE DATABASE {name}")))
        .execute(admin_store.pool())
        .await?;
    let url = format!(
        "{}/{name}",
        admin.rsplit_once('/').map_or(admin.as_str(), |(b, _)| b)
    );
    let result = aggregation_in(&url, sizes, rows).await;
    sqlx::query(sqlx::AssertSqlSafe(format!(
        "DROP DATABASE IF EXISTS {name} WITH (FORCE)"
    )))
    .execute(admin_store.pool())
    .await?;
    result
}

async fn aggregation_in(url: &str, sizes: &Sizes, rows: &mut Vec<Row>) -> anyhow::Result<()> {
    let mut s = Settings::default();
    s.backends.database_url = Some(url.into());
    s.backends.redis_url = Some(redis_url()?);
    s.queue.key_prefix = prefix("aggregate");
    let ctx = app::connect(s, Clock::System).await?;
    ctx.store.migrate().await?;
    let now = ctx.now();
    let mut have = 0u64;
    for &n in &sizes.outcomes {
        // Outcomes spread evenly over the past year, every container, 3 % failed.
        sqlx::query(sqlx::AssertSqlSafe(format!(
            "INSERT INTO job_outcomes (job_id, queue, container, outcome, attempts, error, finished_at)
             SELECT 'o' || i, 'outreach', (ARRAY['sales','operations','finance'])[1 + i % 3],
                    CASE WHEN i % 33 = 0 THEN 'failed' ELSE 'succeeded' END, 1, NULL,
                    {now} - (i * 31536000000 / {n})
             FROM generate_series({}, {n}) AS i",
            have + 1
        )))
        .execute(ctx.store.pool())
        .await?;
        sqlx::query("ANALYZE job_outcomes")
            .execute(ctx.store.pool())
            .await?;
        have = n;
        cep_workers::aggregation::compute(&ctx, now).await?;
        let runs = 5;
        let t = Instant::now();
        for _ in 0..runs {
            cep_workers::aggregation::compute(&ctx, now).await?;
        }
        rows.push(
            row(
                "aggregation",
                &format!("Φ_sync over {n} recorded outcomes"),
                t.elapsed().as_secs_f64() * 1000.0 / f64::from(runs),
                "ms",
                n,
            )
            .target("≤ 50 ms at 10,000,000"),
        );
    }
    ctx.store.pool().close().await;
    purge(&ctx.queue).await
}

/// The embedded default (SQLite queue and store) in `dir`.
fn embedded(dir: &std::path::Path) -> Settings {
    Settings {
        data_dir: dir.to_path_buf(),
        ..Settings::default()
    }
}

async fn main_job(sizes: &Sizes, rows: &mut Vec<Row>) -> anyhow::Result<()> {
    let dir = std::env::temp_dir().join(prefix("main-job"));
    let s = embedded(&dir);
    let seed = 7;
    let s = crate::simulate::prepare(s, seed)?;
    let start = crate::simulate::Options::default_start();
    let t = Instant::now();
    let ctx = app::open(s, Clock::simulated(start)).await?;
    let summary = crate::simulate::run(
        ctx,
        &crate::simulate::Options {
            days: sizes.days,
            seed,
            start,
            progress: false,
        },
    )
    .await?;
    let secs = t.elapsed().as_secs_f64();
    let _ = std::fs::remove_dir_all(&dir);
    rows.push(
        row(
            "main_job",
            &format!("embedded {} days, SQLite", sizes.days),
            secs,
            "s",
            u64::from(summary.days),
        )
        .target("≤ 30 s for 90 days"),
    );
    Ok(())
}

/// A real SMTP server that accepts and discards: Debian's python3-aiosmtpd.
struct SmtpSink(Child, u16);

impl SmtpSink {
    async fn start() -> anyhow::Result<Self> {
        let port = std::net::TcpListener::bind("127.0.0.1:0")?
            .local_addr()?
            .port();
        let python =
            std::env::var("CEP_BENCH_PYTHON").unwrap_or_else(|_| "/usr/bin/python3".into());
        let child = Command::new(&python)
            .args(["-m", "aiosmtpd", "-n", "-c", "aiosmtpd.handlers.Sink", "-l"])
            .arg(format!("127.0.0.1:{port}"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .map_err(|e| anyhow::anyhow!("the sales-chain benchmark needs {python} with aiosmtpd (apt-get install python3-aiosmtpd): {e}"))?;
        let sink = Self(child, port);
        let until = Instant::now() + Duration::from_secs(10);
        while tokio::net::TcpStream::connect(("127.0.0.1", port))
            .await
            .is_err()
        {
            anyhow::ensure!(
                Instant::now() < until,
                "aiosmtpd did not start on port {port}"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        Ok(sink)
    }
}

impl Drop for SmtpSink {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// The sales chain for real on the embedded default: prospecting → pitches → the
/// sequence's first emails, sent through lettre to a local SMTP server.
async fn sales_chain(sizes: &Sizes, rows: &mut Vec<Row>) -> anyhow::Result<()> {
    let sink = SmtpSink::start().await?;
    let dir = std::env::temp_dir().join(prefix("sales-chain"));
    let mut s = embedded(&dir);
    let o = &mut s.layers.outreach;
    o.dry_run = false;
    o.send_days = ["mon", "tue", "wed", "thu", "fri", "sat", "sun"]
        .map(String::from)
        .to_vec();
    o.send_start_hour = 0;
    o.send_end_hour = 24;
    o.daily_caps.email = 1_000_000;
    s.providers.smtp.host = "127.0.0.1".into();
    s.providers.smtp.port = sink.1;
    s.providers.smtp.tls = cep_shared::config::SmtpTls::None;
    let campaigns = sizes.campaigns;
    let secrets = cep_shared::Secrets {
        unsubscribe_key: Some(format!("bench-{}", micros())),
        ..Default::default()
    };
    let ctx = app::open_with(s, secrets, Clock::System).await?;
    let r = &ctx.settings.layers.prospecting;
    let pairs: Vec<(String, String)> = r
        .locations
        .iter()
        .flat_map(|l| r.categories.iter().map(move |c| (l.clone(), c.clone())))
        .collect();
    let jobs: Vec<NewJob> = (0..campaigns)
        .map(|i| {
            let (location, category) = pairs[i % pairs.len()].clone();
            let job = cep_shared::jobs::ProspectingJob {
                period: format!("bench-{i}"),
                location,
                category,
                max_prospects: Some(25),
            };
            NewJob::new(JobKind::Layer(Layer::Prospecting), &job, 0)
        })
        .collect();
    let t = Instant::now();
    ctx.queue.push_many(jobs).await?;
    let (stop, rx) = tokio::sync::watch::channel(false);
    let worker = tokio::spawn(app::worker(ctx.clone(), JobKind::all().collect(), rx));
    let queues: Vec<&str> = JobKind::all().map(JobKind::queue).collect();
    while !ctx.queue.is_idle(&queues).await? {
        anyhow::ensure!(
            t.elapsed() < Duration::from_secs(1800),
            "the sales chain did not finish"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let secs = t.elapsed().as_secs_f64();
    let _ = stop.send(true);
    worker.await??;
    let count = |sql: &'static str| {
        let pool = ctx.store.pool().clone();
        async move {
            let (n,): (i64,) = sqlx::query_as(sql).fetch_one(&pool).await?;
            anyhow::Ok(n as u64)
        }
    };
    let prospects = count("SELECT COUNT(*) FROM prospects").await?;
    let sent =
        count("SELECT COUNT(*) FROM messages WHERE channel = 'email' AND status = 'sent'").await?;
    anyhow::ensure!(sent > 0, "no email reached the SMTP server");
    ctx.store.pool().close().await;
    let _ = std::fs::remove_dir_all(&dir);
    rows.push(row(
        "sales_chain",
        "prospects found, embedded",
        prospects as f64 / secs,
        "per s",
        prospects,
    ));
    rows.push(row(
        "sales_chain",
        "first emails accepted by SMTP (prospect → pitch → send), embedded",
        sent as f64 / secs,
        "per s",
        sent,
    ));
    Ok(())
}

const SCENARIOS: [&str; 8] = [
    "enqueue",
    "drain",
    "latency",
    "io_bound",
    "scheduler",
    "aggregation",
    "main_job",
    "sales_chain",
];

/// Runs the scenarios, prints the table, writes the JSON.
pub async fn run(opts: &Options) -> anyhow::Result<Report> {
    for o in &opts.only {
        anyhow::ensure!(
            SCENARIOS.contains(&o.as_str()),
            "unknown scenario `{o}`; one of {}",
            SCENARIOS.join(", ")
        );
    }
    redis_url()?;
    anyhow::ensure!(opts.runs >= 1, "--runs must be at least 1");
    let sizes = Sizes::new(opts.quick);
    let started_at = chrono::Utc::now().to_rfc3339();
    // Runs interleave (every scenario once, then again) so a slow spell of the machine
    // does not land on one scenario's every run.
    let mut runs: Vec<Vec<Row>> = Vec::new();
    for run in 1..=opts.runs {
        let mut rows = Vec::new();
        for name in SCENARIOS {
            if !opts.only.is_empty() && !opts.only.iter().any(|o| o == name) {
                continue;
            }
            eprintln!("bench: {name} (run {run} of {})…", opts.runs);
            let r = &mut rows;
            match name {
                "enqueue" => enqueue(&sizes, r).await,
                "drain" => drain(&sizes, r).await,
                "latency" => latency(&sizes, r).await,
                "io_bound" => io_bound(&sizes, r).await,
                "scheduler" => scheduler(&sizes, r).await,
                "aggregation" => aggregation(&sizes, r).await,
                "main_job" => main_job(&sizes, r).await,
                _ => sales_chain(&sizes, r).await,
            }
            .map_err(|e| e.context(format!("scenario `{name}`")))?;
        }
        runs.push(rows);
    }
    let rows = median_rows(runs);
    let report = Report {
        machine: machine(),
        quick: opts.quick,
        started_at,
        rows,
    };
    if let Some(dir) = opts.out.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir)?;
    }
    std::fs::write(&opts.out, serde_json::to_string_pretty(&report)?)?;
    Ok(report)
}

fn machine() -> String {
    let cpus = std::thread::available_parallelism().map_or(0, |n| n.get());
    let mem = proc_kb("/proc/meminfo", "MemTotal:");
    format!("{cpus} CPUs, {:.0} GiB", mem as f64 / 1024.0 / 1024.0)
}

/// The table `cep bench` prints.
pub fn render(r: &Report) -> String {
    let mut out = format!(
        "{} ({}), {}\n\n{:<12} {:<58} {:>14} {:<7} {:>10} {:>7}  target\n",
        if r.quick {
            "quick smoke run"
        } else {
            "full run"
        },
        r.machine,
        r.started_at,
        "scenario",
        "measure",
        "value",
        "unit",
        "n",
        "±%"
    );
    for row in &r.rows {
        out.push_str(&format!(
            "{:<12} {:<58} {:>14.2} {:<7} {:>10} {:>7.1}  {}\n",
            row.scenario,
            row.metric,
            row.value,
            row.unit,
            row.n,
            row.spread_pct,
            row.target.as_deref().unwrap_or("")
        ));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_figure_is_the_median_of_its_runs_with_half_the_range_as_spread() {
        let runs = [[100.0, 2.0], [90.0, 2.0], [110.0, 4.0]]
            .iter()
            .map(|v| {
                vec![
                    row("drain", "no-op", v[0], "jobs/s", 10),
                    row("latency", "p99", v[1], "ms", 10),
                ]
            })
            .collect();
        let rows = median_rows(runs);
        assert_eq!(rows[0].value, 100.0);
        assert!((rows[0].spread_pct - 10.0).abs() < 1e-9);
        assert_eq!(rows[1].value, 2.0);
        assert!((rows[1].spread_pct - 50.0).abs() < 1e-9);
        assert_eq!(rows[1].runs, 3);
    }
}
