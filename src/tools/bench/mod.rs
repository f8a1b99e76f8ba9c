//! `cep bench`: the fleet measured on real Redis (and Postgres for Φ_sync), with the
//! protocol its peers (BullMQ, Celery, arq, RQ, apalis-redis) were measured by: enqueue single and
//! batched, drain of a pre-filled backlog by 1 and 2 worker processes (the clock starts
//! when the workers are spawned), enqueue-to-start latency at a steady 500 jobs/s,
//! I/O-bound jobs against a local API, worker RSS, the scheduler's enqueue of one
//! period, Φ_sync aggregation over recorded outcomes, the embedded 90-day main job and
//! the operator console's pages over a store of a million prospects, and a month's
//! client reports (HTML and PDF) for a thousand clients.
//!
//! Workers are `cep bench-worker` child processes: the real apalis worker, backend,
//! leases, heartbeats and settle, with a job body of known cost instead of a layer.
//! Nothing here asserts a speed; it prints one table and writes it as JSON.
//!
//! `harness` starts and measures (the bench queue, worker processes, CPU and memory
//! readings); `probe` is the job body the workers run; `queue` measures the queue
//! itself, `pipeline` the fleet's own work; `report` makes the table.

mod console;
mod harness;
mod measure;
mod pipeline;
mod probe;
mod queue;
mod report;
mod reports;

pub use probe::{ProbeKind, WorkerReport, worker};
pub use report::{Report, Row, render};

use harness::{Sizes, redis_url};
use measure::proc_kb;
use pipeline::{aggregation, main_job, sales_chain, scheduler};
use queue::{drain, enqueue, io_bound, latency};
use report::median_rows;
use std::path::PathBuf;

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

const SCENARIOS: [&str; 10] = [
    "enqueue",
    "drain",
    "latency",
    "io_bound",
    "scheduler",
    "aggregation",
    "main_job",
    "sales_chain",
    "console",
    "reports",
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
                "console" => console::console(&sizes, r).await,
                "reports" => reports::reports(&sizes, r).await,
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
