//! The one typed settings tree: `config.yaml`, then `CEP__SECTION__KEY` environment
//! overrides, validated once. Secrets never live here; see [`Secrets`].

mod engines;
mod load;
mod providers;
mod reports;
mod rules;
mod secrets;
mod simulate;
mod targets;
mod validate;

pub use engines::*;
pub use providers::*;
pub use reports::{Brand, LOGO_MAX_BYTES, ReportSettings};
pub use rules::*;
pub use secrets::Secrets;
pub use simulate::{SimulateSettings, WorldSettings};
pub use targets::{RatioTargets, Targets};
pub use validate::{Finding, Severity, parse_cron};

use crate::vocabulary::PhiStatus;
use load::{read_config_file, whole_numbers};
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};

/// Why the fleet refused its configuration. Always names the offending key.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("cannot read configuration: {0}")]
    Load(String),
    #[error("invalid configuration at `{key}`: {reason}")]
    Invalid { key: String, reason: String },
}

impl ConfigError {
    pub(crate) fn invalid(key: impl Into<String>, reason: impl Into<String>) -> Self {
        ConfigError::Invalid {
            key: key.into(),
            reason: reason.into(),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Settings {
    pub cep: CepSettings,
    /// Where the embedded default keeps its SQLite database and reports.
    pub data_dir: PathBuf,
    /// `dev` logs for people, `prod` logs JSON.
    pub mode: Mode,
    pub containers: ContainersSettings,
    /// What each container's two ratios aim at: Φ_sync scores them against these.
    pub targets: Targets,
    pub phi: PhiSettings,
    pub schedules: ScheduleSettings,
    pub backends: BackendSettings,
    pub queue: QueueSettings,
    pub worker: WorkerSettings,
    pub server: ServerSettings,
    pub engines: EngineSettings,
    pub providers: ProviderSettings,
    pub layers: LayerSettings,
    /// Client reports: the agency's brand, templates and delivery.
    pub reports: ReportSettings,
    /// The simulated world of `cep simulate`.
    pub simulate: SimulateSettings,
}

impl Default for Settings {
    fn default() -> Self {
        Self {
            cep: CepSettings::default(),
            data_dir: PathBuf::from("./data"),
            mode: Mode::Dev,
            containers: ContainersSettings::default(),
            targets: Targets::default(),
            phi: PhiSettings::default(),
            schedules: ScheduleSettings::default(),
            backends: BackendSettings::default(),
            queue: QueueSettings::default(),
            worker: WorkerSettings::default(),
            server: ServerSettings::default(),
            engines: EngineSettings::default(),
            providers: ProviderSettings::default(),
            layers: LayerSettings::default(),
            reports: ReportSettings::default(),
            simulate: SimulateSettings::default(),
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Mode {
    Dev,
    Prod,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct CepSettings {
    pub version: String,
    pub phi_thresholds: PhiThresholds,
    pub red_flags: RedFlagSettings,
}

impl Default for CepSettings {
    fn default() -> Self {
        Self {
            version: "1.0.0".into(),
            phi_thresholds: PhiThresholds::default(),
            red_flags: RedFlagSettings::default(),
        }
    }
}

/// Φ_sync status thresholds; the highest one met names the status.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct PhiThresholds {
    pub infrastructure: f64,
    pub factory: f64,
    pub sales: f64,
    pub operations: f64,
    pub machine: f64,
    pub production: f64,
}

impl Default for PhiThresholds {
    fn default() -> Self {
        Self {
            infrastructure: 0.30,
            factory: 0.65,
            sales: 0.70,
            operations: 0.80,
            machine: 0.88,
            production: 0.95,
        }
    }
}

impl PhiThresholds {
    /// Ascending `(status, threshold)` pairs.
    pub fn ascending(&self) -> [(PhiStatus, f64); 6] {
        [
            (PhiStatus::Infrastructure, self.infrastructure),
            (PhiStatus::Factory, self.factory),
            (PhiStatus::Sales, self.sales),
            (PhiStatus::Operations, self.operations),
            (PhiStatus::Machine, self.machine),
            (PhiStatus::Production, self.production),
        ]
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct RedFlagSettings {
    pub phi_below: f64,
    pub sales_error_rate_above: f64,
    pub operations_error_rate_above: f64,
    pub finance_error_rate_above: f64,
    pub health_spread_above: f64,
}

impl Default for RedFlagSettings {
    fn default() -> Self {
        Self {
            phi_below: 0.85,
            sales_error_rate_above: 0.10,
            operations_error_rate_above: 0.10,
            finance_error_rate_above: 0.05,
            health_spread_above: 0.30,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Timescale {
    Daily,
    Weekly,
    Monthly,
}

impl Timescale {
    pub const fn as_str(self) -> &'static str {
        match self {
            Timescale::Daily => "daily",
            Timescale::Weekly => "weekly",
            Timescale::Monthly => "monthly",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ContainerSettings {
    pub weight: f64,
    pub timescale: Timescale,
    /// Seven-field cron (sec min hour day-of-month month day-of-week year), UTC.
    pub schedule: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ContainersSettings {
    pub sales: ContainerSettings,
    pub operations: ContainerSettings,
    pub finance: ContainerSettings,
}

impl Default for ContainersSettings {
    fn default() -> Self {
        Self {
            sales: ContainerSettings {
                weight: 0.33,
                timescale: Timescale::Daily,
                schedule: "0 0 6 * * * *".into(),
            },
            operations: ContainerSettings {
                weight: 0.33,
                timescale: Timescale::Weekly,
                schedule: "0 0 5 * * Mon *".into(),
            },
            finance: ContainerSettings {
                weight: 0.34,
                timescale: Timescale::Monthly,
                schedule: "0 0 4 1 * * *".into(),
            },
        }
    }
}

impl ContainersSettings {
    pub fn get(&self, c: crate::layer::Container) -> &ContainerSettings {
        match c {
            crate::layer::Container::Sales => &self.sales,
            crate::layer::Container::Operations => &self.operations,
            crate::layer::Container::Finance => &self.finance,
        }
    }
}

/// How a ratio becomes a score.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PhiScoring {
    /// `min(1, rate ÷ target)`: 1 means "at target".
    Targets,
    /// The rate itself (revision 1), for comparison.
    Raw,
}

/// The smallest denominator a container's ratios need in their window.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct MinSample {
    pub sales: u32,
    pub operations: u32,
    pub finance: u32,
}

impl Default for MinSample {
    fn default() -> Self {
        Self {
            sales: 20,
            operations: 5,
            finance: 5,
        }
    }
}

impl MinSample {
    pub fn get(&self, c: crate::layer::Container) -> u32 {
        match c {
            crate::layer::Container::Sales => self.sales,
            crate::layer::Container::Operations => self.operations,
            crate::layer::Container::Finance => self.finance,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct PhiSettings {
    pub scoring: PhiScoring,
    pub min_sample: MinSample,
    /// How many more windows a short window may reach back before its container has
    /// no data.
    pub max_widen: u32,
}

impl Default for PhiSettings {
    fn default() -> Self {
        Self {
            scoring: PhiScoring::Targets,
            min_sample: MinSample::default(),
            max_widen: 7,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ScheduleSettings {
    /// Φ_sync aggregation (besides the one chained after the feedback loop).
    pub aggregation: String,
    /// The feedback loop runs this many hours after the finance container's tick.
    pub feedback_loop_delay_hours: u32,
    /// How often the scheduler wakes to look for due ticks.
    pub tick_seconds: u64,
}

impl Default for ScheduleSettings {
    fn default() -> Self {
        Self {
            aggregation: "0 30 23 * * * *".into(),
            feedback_loop_delay_hours: 2,
            tick_seconds: 30,
        }
    }
}

/// Which queue and store to use. Empty URLs mean the embedded default.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct BackendSettings {
    /// Redis for the queue; read from `REDIS_URL` (never put a password here).
    pub redis_url: Option<String>,
    /// Postgres for the store; read from `DATABASE_URL`.
    pub database_url: Option<String>,
}

impl BackendSettings {
    pub fn is_embedded(&self) -> bool {
        self.redis_url.is_none() && self.database_url.is_none()
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct QueueSettings {
    /// Every Redis key starts with this prefix; tests use one prefix each.
    pub key_prefix: String,
    pub heartbeat_interval_seconds: u64,
    /// A worker silent for `heartbeat_interval × missed_heartbeats` is dead and its jobs
    /// go back to the queue (the orphan window).
    pub missed_heartbeats: u32,
    pub max_attempts: u32,
    pub backoff_base_seconds: u64,
    pub backoff_max_seconds: u64,
    /// How long a deduplication key (scheduler period, chained job) is remembered.
    pub idempotency_ttl_days: u32,
    pub fetch_batch: u32,
    /// How long an idle worker waits before looking for due delayed jobs again.
    pub idle_poll_millis: u64,
    /// The largest payload a job may carry: a larger one is refused at enqueue, and one
    /// found in the queue is dead-lettered instead of run.
    pub max_payload_bytes: usize,
}

impl Default for QueueSettings {
    fn default() -> Self {
        Self {
            key_prefix: "cep".into(),
            heartbeat_interval_seconds: 10,
            missed_heartbeats: 6,
            max_attempts: 5,
            backoff_base_seconds: 10,
            backoff_max_seconds: 3600,
            idempotency_ttl_days: 40,
            fetch_batch: 32,
            idle_poll_millis: 200,
            max_payload_bytes: 256 * 1024,
        }
    }
}

impl QueueSettings {
    pub fn orphan_window(&self) -> std::time::Duration {
        std::time::Duration::from_secs(
            self.heartbeat_interval_seconds * self.missed_heartbeats as u64,
        )
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct WorkerSettings {
    /// Jobs one worker process runs at once.
    pub concurrency: usize,
    /// After SIGTERM: stop fetching, then finish in-flight jobs within this deadline.
    pub shutdown_deadline_seconds: u64,
    pub job_timeout_seconds: u64,
}

impl Default for WorkerSettings {
    fn default() -> Self {
        Self {
            concurrency: 16,
            shutdown_deadline_seconds: 35,
            job_timeout_seconds: 600,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ServerSettings {
    pub bind: String,
    /// A listener of its own for `/metrics`, `/readyz` and `/healthz`, kept off the
    /// public one; none: they are served on `bind`.
    pub metrics_bind: Option<String>,
    /// Base URL people and mail clients reach the webhook/unsubscribe server at.
    pub public_url: String,
    /// How often each long-running role reads queue depths into its metrics.
    pub sample_seconds: u64,
    /// Where short-lived roles (`aggregate`, `migrate`) push their metrics when they
    /// finish, e.g. `http://pushgateway.monitoring:9091`; none by default.
    pub pushgateway_url: Option<String>,
    /// Connections served at once; one past it is closed at once and counted.
    pub max_connections: usize,
    /// How long a client may take to send a request's headers, and how long an idle
    /// kept-alive connection stays open.
    pub header_timeout_seconds: u64,
    /// How long a request may take, its body included: a slower one gets 408.
    pub request_timeout_seconds: u64,
    /// Requests each client may make to the webhook and inbound-mail routes.
    pub rate_limit: RateLimit,
    /// The operator console's sessions and sign-in limits.
    pub console: ConsoleSettings,
}

/// The operator console: how long a session lasts, how many failed sign-ins an address
/// or an account may have in a window before sign-in is refused for the rest of it.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ConsoleSettings {
    pub session_hours: u32,
    pub sign_in_failures: u32,
    pub sign_in_window_minutes: u32,
}

impl Default for ConsoleSettings {
    fn default() -> Self {
        Self {
            session_hours: 12,
            sign_in_failures: 5,
            sign_in_window_minutes: 15,
        }
    }
}

/// A token bucket: `burst` requests at once, refilled at `per_minute`.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct RateLimit {
    pub per_minute: u32,
    pub burst: u32,
}

impl Default for RateLimit {
    fn default() -> Self {
        Self {
            per_minute: 600,
            burst: 120,
        }
    }
}

impl Default for ServerSettings {
    fn default() -> Self {
        Self {
            bind: "127.0.0.1:8080".into(),
            metrics_bind: None,
            public_url: "http://127.0.0.1:8080".into(),
            sample_seconds: 10,
            pushgateway_url: None,
            max_connections: 512,
            header_timeout_seconds: 10,
            request_timeout_seconds: 30,
            rate_limit: RateLimit::default(),
            console: ConsoleSettings::default(),
        }
    }
}

impl Settings {
    /// Loads `path` (when given; built-in defaults otherwise), applies `CEP__…`
    /// overrides and `REDIS_URL` / `DATABASE_URL`, then validates.
    pub fn load(path: Option<&Path>) -> Result<Self, ConfigError> {
        let env: Vec<(String, String)> = std::env::vars().collect();
        Self::load_with_env(path, &env)
    }

    /// Reads like [`Settings::load`] without validating.
    pub fn read(path: Option<&Path>) -> Result<Self, ConfigError> {
        let env: Vec<(String, String)> = std::env::vars().collect();
        Self::read_with_env(path, &env)
    }

    /// Like [`Settings::load`] with an explicit environment (tests pass their own).
    pub fn load_with_env(
        path: Option<&Path>,
        env: &[(String, String)],
    ) -> Result<Self, ConfigError> {
        let settings = Self::read_with_env(path, env)?;
        settings.validate()?;
        Ok(settings)
    }

    /// Reads the file and the environment strictly (an unknown key is an error) but
    /// does not validate: `cep architecture check` reports every finding itself.
    pub fn read_with_env(
        path: Option<&Path>,
        env: &[(String, String)],
    ) -> Result<Self, ConfigError> {
        // The defaults first, so a partial file or a single override changes only the
        // keys it names.
        let defaults = config::Config::try_from(&Settings::default())
            .map_err(|e| ConfigError::Load(e.to_string()))?;
        let mut builder = config::Config::builder().add_source(defaults.clone());
        if let Some(path) = path {
            if !path.exists() {
                return Err(ConfigError::Load(format!(
                    "{} does not exist",
                    path.display()
                )));
            }
            let text = read_config_file(path)?;
            builder = builder.add_source(config::File::from_str(&text, config::FileFormat::Yaml));
        }
        let overrides: config::Map<String, String> = env
            .iter()
            .filter(|(k, _)| k.starts_with("CEP__"))
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect();
        builder = builder.add_source(
            config::Environment::with_prefix("CEP")
                .prefix_separator("__")
                .separator("__")
                .try_parsing(true)
                .source(Some(overrides)),
        );
        let raw = builder
            .build()
            .map_err(|e| ConfigError::Load(e.to_string()))?;
        whole_numbers(&defaults, &raw)?;
        let mut settings: Settings = raw
            .try_deserialize()
            .map_err(|e| ConfigError::Load(e.to_string()))?;
        let lookup = |name: &str| {
            env.iter()
                .find(|(k, _)| k == name)
                .map(|(_, v)| v.clone())
                .filter(|v| !v.is_empty())
        };
        if let Some(url) = lookup("REDIS_URL") {
            settings.backends.redis_url = Some(url);
        }
        if let Some(url) = lookup("DATABASE_URL") {
            settings.backends.database_url = Some(url);
        }
        Ok(settings)
    }
}
