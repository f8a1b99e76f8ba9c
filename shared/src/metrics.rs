//! Every metric the fleet exports, declared once. Names are `cep_*`, in base units;
//! labels come from closed sets (queue names, outcomes, containers, states), never ids.

use crate::layer::{Container, JobKind};
use crate::vocabulary::{JobOutcome, QueueState, WebhookResult};
use prometheus::{
    Encoder, Gauge, GaugeVec, HistogramOpts, HistogramVec, IntCounter, IntCounterVec, IntGauge,
    IntGaugeVec, Opts, Registry, TextEncoder,
};
use std::sync::OnceLock;

/// Job duration buckets: layer jobs take from milliseconds (a pitch) to minutes (a
/// monthly report run).
const DURATION_BUCKETS: [f64; 14] = [
    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 10.0, 60.0, 300.0,
];

pub struct Metrics {
    registry: Registry,
    /// Attempts that ended, by queue and outcome (succeeded, retried, deferred, dead).
    pub jobs: IntCounterVec,
    pub job_duration: HistogramVec,
    pub in_flight: IntGauge,
    /// Jobs per queue and state (ready, scheduled, running, dead), sampled.
    pub queue_jobs: IntGaugeVec,
    pub oldest_waiting_age: GaugeVec,
    pub orphans_recovered: IntCounter,
    pub phi_sync: Gauge,
    pub phi_sync_complete: Gauge,
    pub container_health: GaugeVec,
    pub last_aggregation: Gauge,
    pub webhooks: IntCounterVec,
    /// Connections and requests the HTTP server refused or cut off, by reason
    /// (`connections`: over `server.max_connections`; `timeout`: a request slower than
    /// `server.request_timeout_seconds`).
    pub http_refused: IntCounterVec,
    /// Calls left in each provider's rate-limit window, fleet-wide.
    pub rate_limit_remaining: IntGaugeVec,
    /// External API calls by provider and result.
    pub provider_calls: IntCounterVec,
    /// Pitches the template writer wrote because the configured LLM could not.
    pub pitch_fallbacks: IntCounterVec,
}

/// `result` label of `cep_provider_calls_total`.
pub const CALL_RESULTS: [&str; 6] = [
    "ok",
    "budget_exhausted",
    "rate_limited",
    "failed",
    "rejected",
    "malformed",
];

/// `reason` label of `cep_pitch_fallbacks_total`.
pub const FALLBACK_REASONS: [&str; 4] = ["error", "timeout", "invalid", "budget_exhausted"];

fn build() -> Result<Metrics, prometheus::Error> {
    let registry = Registry::new();
    let m = Metrics {
        jobs: IntCounterVec::new(
            Opts::new(
                "cep_jobs_total",
                "Job attempts that ended, by queue and outcome",
            ),
            &["queue", "outcome"],
        )?,
        job_duration: HistogramVec::new(
            HistogramOpts::new("cep_job_duration_seconds", "Time a job attempt ran")
                .buckets(DURATION_BUCKETS.to_vec()),
            &["queue"],
        )?,
        in_flight: IntGauge::new("cep_jobs_in_flight", "Jobs this process is running")?,
        queue_jobs: IntGaugeVec::new(
            Opts::new("cep_queue_jobs", "Jobs in the queue by state"),
            &["queue", "state"],
        )?,
        oldest_waiting_age: GaugeVec::new(
            Opts::new(
                "cep_queue_oldest_waiting_age_seconds",
                "How long the longest-waiting due job has waited (0 when none)",
            ),
            &["queue"],
        )?,
        orphans_recovered: IntCounter::new(
            "cep_orphans_recovered_total",
            "Jobs of dead workers returned to the queue",
        )?,
        phi_sync: Gauge::new("cep_phi_sync", "Φ_sync, the fleet's coherence score (0..1)")?,
        phi_sync_complete: Gauge::new(
            "cep_phi_sync_complete",
            "1 when every container had data for the latest Φ_sync, 0 when it is partial",
        )?,
        container_health: GaugeVec::new(
            Opts::new("cep_container_health", "Health of each container (0..1)"),
            &["container"],
        )?,
        last_aggregation: Gauge::new(
            "cep_last_aggregation_timestamp_seconds",
            "When Φ_sync was last aggregated successfully",
        )?,
        webhooks: IntCounterVec::new(
            Opts::new(
                "cep_webhooks_total",
                "Webhook deliveries by source and result",
            ),
            &["source", "result"],
        )?,
        http_refused: IntCounterVec::new(
            Opts::new(
                "cep_http_refused_total",
                "Connections and requests the HTTP server refused or cut off, by reason",
            ),
            &["reason"],
        )?,
        rate_limit_remaining: IntGaugeVec::new(
            Opts::new(
                "cep_rate_limit_remaining",
                "Calls left in a provider's current rate-limit window, fleet-wide",
            ),
            &["provider", "per"],
        )?,
        provider_calls: IntCounterVec::new(
            Opts::new(
                "cep_provider_calls_total",
                "External API calls by provider and result",
            ),
            &["provider", "result"],
        )?,
        pitch_fallbacks: IntCounterVec::new(
            Opts::new(
                "cep_pitch_fallbacks_total",
                "Pitches written by the template writer because the LLM writer failed",
            ),
            &["writer", "reason"],
        )?,
        registry,
    };
    let r = &m.registry;
    r.register(Box::new(m.jobs.clone()))?;
    r.register(Box::new(m.job_duration.clone()))?;
    r.register(Box::new(m.in_flight.clone()))?;
    r.register(Box::new(m.queue_jobs.clone()))?;
    r.register(Box::new(m.oldest_waiting_age.clone()))?;
    r.register(Box::new(m.orphans_recovered.clone()))?;
    r.register(Box::new(m.phi_sync.clone()))?;
    r.register(Box::new(m.phi_sync_complete.clone()))?;
    r.register(Box::new(m.container_health.clone()))?;
    r.register(Box::new(m.last_aggregation.clone()))?;
    r.register(Box::new(m.webhooks.clone()))?;
    r.register(Box::new(m.http_refused.clone()))?;
    r.register(Box::new(m.rate_limit_remaining.clone()))?;
    r.register(Box::new(m.provider_calls.clone()))?;
    r.register(Box::new(m.pitch_fallbacks.clone()))?;
    Ok(m)
}

/// The process's metrics.
pub fn get() -> &'static Metrics {
    static METRICS: OnceLock<Metrics> = OnceLock::new();
    METRICS.get_or_init(|| build().expect("metric definitions are valid"))
}

impl Metrics {
    /// The text exposition format Prometheus scrapes.
    pub fn render(&self) -> String {
        let mut buf = Vec::new();
        let _ = TextEncoder::new().encode(&self.registry.gather(), &mut buf);
        String::from_utf8(buf).unwrap_or_default()
    }

    /// Every metric name the fleet exports (for checking rules and dashboards against).
    pub fn names(&self) -> Vec<String> {
        self.init_labels();
        self.init_budgets(&crate::config::RateLimits::default());
        self.registry
            .gather()
            .iter()
            .map(|f| f.name().to_owned())
            .collect()
    }

    pub fn record_phi(
        &self,
        phi: Option<f64>,
        health: &[(Container, Option<f64>)],
        at_millis: i64,
    ) {
        // No data is not 0: the gauge is NaN, which alerts ignore and graphs leave blank.
        self.phi_sync.set(phi.unwrap_or(f64::NAN));
        // Partial: a container had no data, and its weight went to the others.
        let complete = phi.is_some() && health.iter().all(|(_, h)| h.is_some());
        self.phi_sync_complete.set(if complete { 1.0 } else { 0.0 });
        for (c, h) in health {
            self.container_health
                .with_label_values(&[c.as_str()])
                .set(h.unwrap_or(f64::NAN));
        }
        self.last_aggregation.set(at_millis as f64 / 1000.0);
    }

    /// Shows each configured rate limit as full until the first sample reads it (called
    /// once, at start).
    pub fn init_budgets(&self, limits: &crate::config::RateLimits) {
        for p in crate::config::Provider::ALL {
            if p == crate::config::Provider::GbpEdits {
                continue;
            }
            for l in limits.get(p) {
                self.rate_limit_remaining
                    .with_label_values(&[p.as_str(), l.per.as_str()])
                    .set(l.limit as i64);
            }
        }
    }

    /// Makes every labelled series exist from the start, so rates and alerts see zeros
    /// instead of missing series, and Φ_sync reads "no data" (NaN), never 0, until an
    /// aggregation is known.
    pub fn init_labels(&self) {
        static ONCE: std::sync::Once = std::sync::Once::new();
        ONCE.call_once(|| {
            for k in JobKind::all() {
                let q = k.queue();
                for o in JobOutcome::ALL {
                    self.jobs.with_label_values(&[q, o.as_str()]);
                }
                self.job_duration.with_label_values(&[q]);
                for state in QueueState::ALL {
                    self.queue_jobs.with_label_values(&[q, state.as_str()]);
                }
                self.oldest_waiting_age.with_label_values(&[q]);
            }
            for reason in ["connections", "timeout", "rate_limited"] {
                self.http_refused.with_label_values(&[reason]);
            }
            for r in WebhookResult::ALL {
                for source in ["calendly", "stripe"] {
                    self.webhooks.with_label_values(&[source, r.as_str()]);
                }
            }
            for p in crate::config::Provider::ALL {
                for r in CALL_RESULTS {
                    self.provider_calls.with_label_values(&[p.as_str(), r]);
                }
            }
            for w in ["ollama", "anthropic", "openai"] {
                for r in FALLBACK_REASONS {
                    self.pitch_fallbacks.with_label_values(&[w, r]);
                }
            }
            self.phi_sync.set(f64::NAN);
            self.phi_sync_complete.set(0.0);
            for c in Container::ALL {
                self.container_health
                    .with_label_values(&[c.as_str()])
                    .set(f64::NAN);
            }
        });
    }
}
