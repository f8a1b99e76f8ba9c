//! The fleet's roles: what Kubernetes runs (`worker`, `scheduler`, `serve`, the
//! `aggregate` and `migrate` Jobs) and `run`, all of them in one process.

use crate::{app, push};
use cep_shared::store::Store;
use cep_shared::{Clock, JobKind, Settings};
use clap::Subcommand;

#[derive(Subcommand)]
pub enum Role {
    /// Scheduler and workers for every queue in one process.
    Run,
    /// Consume jobs of some queues (`--layers outreach` or `all`).
    Worker {
        #[arg(long, default_value = "all")]
        layers: String,
    },
    /// Enqueue each container's work on its schedule.
    Scheduler,
    /// The HTTP endpoints: Calendly webhooks and one-click unsubscribe.
    Serve,
    /// Compute Φ_sync now and print it.
    Aggregate,
    /// Apply database migrations.
    Migrate,
}

impl Role {
    pub async fn run(self, settings: Settings) -> anyhow::Result<()> {
        match self {
            Role::Run => {
                // It sends: with the dry run off it refuses placeholders and missing keys.
                settings.check_live(&cep_shared::config::Secrets::from_env())?;
                let ctx = app::open(settings, Clock::System).await?;
                app::run_all(ctx, app::shutdown_signal()).await?;
            }
            Role::Worker { layers } => {
                let kinds = app::parse_kinds(&layers)?;
                if kinds.contains(&JobKind::Layer(cep_shared::Layer::Outreach)) {
                    settings.check_live(&cep_shared::config::Secrets::from_env())?;
                }
                let ctx = app::open(settings, Clock::System).await?;
                let shutdown = app::shutdown_signal();
                let ops = app::ops_server(&ctx, shutdown.clone()).await?;
                app::worker(ctx, kinds, shutdown).await?;
                ops.await??;
            }
            Role::Scheduler => {
                let ctx = app::open(settings, Clock::System).await?;
                let shutdown = app::shutdown_signal();
                let ops = app::ops_server(&ctx, shutdown.clone()).await?;
                cep_scheduler::run(ctx.queue.clone(), &ctx.settings, shutdown).await?;
                ops.await??;
            }
            Role::Serve => {
                let ctx = app::open(settings, Clock::System).await?;
                cep_workers::http::serve(ctx, app::shutdown_signal()).await?;
            }
            Role::Aggregate => {
                let ctx = app::open(settings, Clock::System).await?;
                let period = ctx.clock.now().format("%Y-%m-%d").to_string();
                let c = cep_workers::handle(
                    &ctx,
                    JobKind::AGGREGATION,
                    &serde_json::json!({ "period": period }).to_string(),
                )
                .await?;
                println!("{}", serde_json::to_string_pretty(&c)?);
                push::push(&ctx.settings, "cep_aggregate").await?;
            }
            Role::Migrate => {
                let store = Store::open(&settings).await?;
                store.migrate().await?;
                println!("migrations applied");
                push::push(&settings, "cep_migrate").await?;
            }
        }
        Ok(())
    }
}
