//! Logging, set up once: readable locally, JSON in production mode.

pub const DEFAULT_FILTER: &str = "info,sqlx=warn";
/// Commands that print a result keep the log to what went wrong.
pub const QUIET_FILTER: &str = "warn,sqlx=warn";

use cep_shared::config::Mode;
use tracing_subscriber::EnvFilter;

/// `default` applies when `RUST_LOG` is not set.
pub fn init(mode: Mode, default: &str) {
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(default));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    let _ = match mode {
        Mode::Prod => builder.json().try_init(),
        Mode::Dev => builder.compact().try_init(),
    };
}
