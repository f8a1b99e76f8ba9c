//! The queue itself: enqueue, drain of a backlog, enqueue-to-start latency, I/O-bound
//! jobs.

use super::harness::*;
use super::measure::*;
use super::report::{Row, percentile, row};
use cep_shared::queue::NewJob;
use std::time::{Duration, Instant};

pub(super) async fn enqueue(sizes: &Sizes, rows: &mut Vec<Row>) -> anyhow::Result<()> {
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

pub(super) async fn drain(sizes: &Sizes, rows: &mut Vec<Row>) -> anyhow::Result<()> {
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

pub(super) async fn latency(sizes: &Sizes, rows: &mut Vec<Row>) -> anyhow::Result<()> {
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
pub(super) async fn slow_api() -> anyhow::Result<String> {
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

pub(super) async fn io_bound(sizes: &Sizes, rows: &mut Vec<Row>) -> anyhow::Result<()> {
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
