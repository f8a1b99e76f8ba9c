//! Logging, set up once: readable locally, JSON in production mode.

use cep_shared::config::Mode;
use tracing_subscriber::EnvFilter;

pub fn init(mode: Mode) {
    let filter =
        EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info,sqlx=warn"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    let _ = match mode {
        Mode::Prod => builder.json().try_init(),
        Mode::Dev => builder.compact().try_init(),
    };
}
