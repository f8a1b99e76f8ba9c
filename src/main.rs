//! `cep`: one binary, many roles. `main` only parses the command line, loads the
//! configuration, starts telemetry and hands over to the command ([`cep::cli`]).

use cep::cli::Cli;
use cep::telemetry;
use clap::Parser;
use std::process::ExitCode;

#[tokio::main]
async fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = async {
        let settings = cli.command.settings(cli.config)?;
        let _telemetry = telemetry::init(settings.mode, cli.command.log_filter());
        cli.command.run(settings).await
    };
    match result.await {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}
