//! The `cep` command line: one binary, many roles. Commands come in three groups —
//! the fleet's roles ([`roles`]), what an operator asks of a running fleet
//! ([`operator`]) and the tools that examine it ([`tools`]) — each a clap enum whose
//! `run` does the work. Facts about a command (how its configuration is read, its log
//! filter) are methods here, so no second list has to track the enum.

mod operator;
mod roles;
mod tools;
mod users;

use crate::telemetry;
use cep_shared::Settings;
use clap::{Parser, Subcommand};
use std::path::{Path, PathBuf};

#[derive(Parser)]
#[command(
    name = "cep",
    version,
    about = "The CEP fleet: a local-SEO agency's pipeline as a job-queue worker fleet"
)]
pub struct Cli {
    /// Configuration file (YAML). Without it, `./config.yaml` when present, else defaults.
    #[arg(long, global = true, env = "CEP_CONFIG")]
    pub config: Option<PathBuf>,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Subcommand)]
pub enum Command {
    #[command(flatten)]
    Role(roles::Role),
    #[command(flatten)]
    Operator(operator::Operator),
    #[command(flatten)]
    Tool(tools::Tool),
}

impl Command {
    /// The settings this command runs on. The architecture check reports an invalid
    /// configuration itself; the bench and its workers run on a queue alone
    /// (`REDIS_URL`), without the fleet's store: those read it unvalidated.
    pub fn settings(&self, config: Option<PathBuf>) -> anyhow::Result<Settings> {
        let path = config_path(config);
        Ok(match self {
            Command::Tool(t) if t.reads_unvalidated() => Settings::read(path.as_deref())?,
            _ => Settings::load(path.as_deref())?,
        })
    }

    /// The log filter: roles log what they do; commands that print a result keep the
    /// log to what went wrong.
    pub fn log_filter(&self) -> &'static str {
        match self {
            Command::Role(_) => telemetry::DEFAULT_FILTER,
            Command::Operator(_) => telemetry::QUIET_FILTER,
            Command::Tool(t) => t.log_filter(),
        }
    }

    pub async fn run(self, settings: Settings) -> anyhow::Result<()> {
        match self {
            Command::Role(r) => r.run(settings).await,
            Command::Operator(o) => o.run(settings).await,
            Command::Tool(t) => t.run(settings).await,
        }
    }
}

/// The configuration file: `--config`, else `./config.yaml` when there is one.
fn config_path(path: Option<PathBuf>) -> Option<PathBuf> {
    path.or_else(|| Some(PathBuf::from("config.yaml")).filter(|p| Path::new(p).exists()))
}
