//! The bench worker: the real apalis worker, backend, leases and settle, with a job body
//! of known cost (no-op, CPU, or a call to a slow local API) instead of a layer.

use super::measure::{cpu_seconds, micros, status_kb};
use crate::app;
use cep_shared::config::Settings;
use cep_shared::queue::Leased;
use cep_shared::{Clock, JobKind, Layer};
use cep_workers::runtime::{Probe, Work, WorkerOptions};
use futures::future::BoxFuture;
use serde::{Deserialize, Serialize};
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// The queue the benchmark's jobs travel on (under a key prefix of their own).
pub(super) const KIND: JobKind = JobKind::Layer(Layer::Outreach);

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

pub(super) struct Body {
    pub(super) kind: ProbeKind,
    /// Only the HTTP probe has one: a client's TLS roots cost memory the others
    /// should not be charged for.
    pub(super) http: Option<reqwest::Client>,
    pub(super) url: String,
    pub(super) waits: Mutex<Vec<u32>>,
}

#[derive(Deserialize)]
pub(super) struct Stamp {
    pub(super) t: i64,
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
