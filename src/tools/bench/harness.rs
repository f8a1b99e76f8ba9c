//! What every scenario stands on: the bench queue and its backlogs, `cep bench-worker`
//! processes, and readings of CPU time and memory.

pub(super) use super::probe::{KIND, WorkerReport};
use cep_shared::Clock;
use cep_shared::queue::{NewJob, Queue, QueueContext, RedisQueue};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// Sizes of each scenario, full and quick.
pub(super) struct Sizes {
    pub(super) enqueue_single: usize,
    pub(super) backlogs: Vec<usize>,
    pub(super) latency_seconds: u64,
    pub(super) io_jobs: usize,
    pub(super) schedule: usize,
    pub(super) outcomes: Vec<u64>,
    pub(super) days: u32,
    pub(super) campaigns: usize,
    /// The console's store: prospects and messages.
    pub(super) console: (u64, u64),
    /// Requests per console page.
    pub(super) page_requests: usize,
    /// Clients whose month's reports are written and printed.
    pub(super) report_clients: u64,
}

impl Sizes {
    pub(super) fn new(quick: bool) -> Self {
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
                console: (10_000, 100_000),
                page_requests: 20,
                report_clients: 20,
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
                console: (1_000_000, 10_000_000),
                page_requests: 200,
                report_clients: 1_000,
            }
        }
    }
}

pub(super) fn redis_url() -> anyhow::Result<String> {
    std::env::var("REDIS_URL").map_err(|_| {
        anyhow::anyhow!(
            "cep bench measures on real Redis: set REDIS_URL (e.g. redis://127.0.0.1:6379)"
        )
    })
}

/// Runs `body` on a Postgres database of its own (a URL to it), made from
/// `DATABASE_URL` for the scenario `what` and dropped after, whatever `body` answered.
pub(super) async fn on_fresh_database<F, Fut>(what: &str, body: F) -> anyhow::Result<()>
where
    F: FnOnce(String) -> Fut,
    Fut: std::future::Future<Output = anyhow::Result<()>>,
{
    let admin = std::env::var("DATABASE_URL")
        .map_err(|_| anyhow::anyhow!("the {what} benchmark needs Postgres: set DATABASE_URL"))?;
    let name = format!(
        "cep_bench_{}_{}",
        what.replace(|c: char| !c.is_ascii_alphanumeric(), "_"),
        cep_shared::clock::wall_millis()
    );
    let admin_store = cep_shared::store::Store::connect(&admin).await?;
    sqlx::query(sqlx::AssertSqlSafe(format!("CREATE DATABASE {name}")))
        .execute(admin_store.pool())
        .await?;
    let url = format!(
        "{}/{name}",
        admin.rsplit_once('/').map_or(admin.as_str(), |(b, _)| b)
    );
    let result = body(url).await;
    sqlx::query(sqlx::AssertSqlSafe(format!(
        "DROP DATABASE IF EXISTS {name} WITH (FORCE)"
    )))
    .execute(admin_store.pool())
    .await?;
    result
}

pub(super) async fn bench_queue(prefix: &str) -> anyhow::Result<Queue> {
    let ctx = QueueContext {
        clock: Clock::System,
        settings: cep_shared::config::QueueSettings {
            key_prefix: prefix.into(),
            ..Default::default()
        },
        notify: Default::default(),
        paused: Default::default(),
    };
    Ok(Queue::Redis(RedisQueue::connect(&redis_url()?, ctx).await?))
}

pub(super) fn prefix(what: &str) -> String {
    format!("bench-{what}-{}", cep_shared::clock::wall_millis())
}

pub(super) fn noop_jobs(n: usize) -> Vec<NewJob> {
    (0..n).map(|_| NewJob::new(KIND, &(), 0)).collect()
}

/// Enqueues `n` no-op jobs, due now, 1,000 per call.
pub(super) async fn fill(queue: &Queue, n: usize) -> anyhow::Result<()> {
    for start in (0..n).step_by(1000) {
        queue.push_many(noop_jobs(1000.min(n - start))).await?;
    }
    Ok(())
}

// ---- the worker child ------------------------------------------------------------

pub(super) struct Workers {
    pub(super) children: Vec<Child>,
    /// The workers' data directories, removed when they stop.
    pub(super) dir: PathBuf,
}

impl Workers {
    pub(super) fn spawn(
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
    pub(super) fn stop(mut self) -> anyhow::Result<Vec<WorkerReport>> {
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
pub(super) struct ServerCost {
    pub(super) cpu_seconds: f64,
    pub(super) commands: f64,
}

pub(super) async fn server_cost() -> anyhow::Result<ServerCost> {
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
pub(super) async fn drained(
    queue: &Queue,
    workers: &mut Workers,
    limit: Duration,
) -> anyhow::Result<()> {
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

pub(super) async fn purge(queue: &Queue) -> anyhow::Result<()> {
    if let Queue::Redis(r) = queue {
        r.purge().await?;
    }
    Ok(())
}

pub(super) fn processes(n: usize) -> String {
    if n == 1 {
        "1 worker process".into()
    } else {
        format!("{n} worker processes")
    }
}
