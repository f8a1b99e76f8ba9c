//! The fleet's own work: the scheduler's enqueue of one period, Φ_sync over recorded
//! outcomes, the embedded 90-day main job and the sales chain to a real SMTP server.

use super::harness::*;
use super::measure::*;
use super::report::{Row, row};
use crate::app;
use cep_shared::config::Settings;
use cep_shared::queue::NewJob;
use cep_shared::{Clock, JobKind, Layer};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

pub(super) async fn scheduler(sizes: &Sizes, rows: &mut Vec<Row>) -> anyhow::Result<()> {
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

pub(super) async fn aggregation(sizes: &Sizes, rows: &mut Vec<Row>) -> anyhow::Result<()> {
    on_fresh_database("aggregation", |url| async move {
        aggregation_in(&url, sizes, rows).await
    })
    .await
}

pub(super) async fn aggregation_in(
    url: &str,
    sizes: &Sizes,
    rows: &mut Vec<Row>,
) -> anyhow::Result<()> {
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
pub(super) fn embedded(dir: &std::path::Path) -> Settings {
    Settings {
        data_dir: dir.to_path_buf(),
        ..Settings::default()
    }
}

pub(super) async fn main_job(sizes: &Sizes, rows: &mut Vec<Row>) -> anyhow::Result<()> {
    let dir = std::env::temp_dir().join(prefix("main-job"));
    let s = embedded(&dir);
    let seed = 7;
    let s = crate::tools::simulate::prepare(s, seed)?;
    let start = crate::tools::simulate::Options::default_start();
    let t = Instant::now();
    let ctx = app::open(s, Clock::simulated(start)).await?;
    let summary = crate::tools::simulate::run(
        ctx,
        &crate::tools::simulate::Options {
            days: sizes.days,
            seed,
            start,
            progress: crate::tools::simulate::Progress::None,
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
pub(super) struct SmtpSink(Child, u16);

impl SmtpSink {
    pub(super) async fn start() -> anyhow::Result<Self> {
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
pub(super) async fn sales_chain(sizes: &Sizes, rows: &mut Vec<Row>) -> anyhow::Result<()> {
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
            // A day of its own per campaign, so each finds its own prospects.
            let day = chrono::NaiveDate::from_ymd_opt(2026, 1, 1).expect("a date")
                + chrono::Days::new(i as u64);
            let job = cep_shared::jobs::ProspectingJob {
                period: day.format("%Y-%m-%d").to_string(),
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
