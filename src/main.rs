//! `cep`: one binary, many roles. `main` only loads config, starts telemetry and wires
//! shutdown; each role is a library function.

use anyhow::Context as _;
use cep::{app, simulate, telemetry};
use cep_shared::store::Store;
use cep_shared::{Clock, JobKind, Settings};
use cep_workers::layers::outreach::tasks;
use clap::{Parser, Subcommand};
use std::path::PathBuf;

#[derive(Parser)]
#[command(
    name = "cep",
    version,
    about = "The CEP fleet: a local-SEO agency's pipeline as a job-queue worker fleet"
)]
struct Cli {
    /// Configuration file (YAML). Without it, `./config.yaml` when present, else defaults.
    #[arg(long, global = true, env = "CEP_CONFIG")]
    config: Option<PathBuf>,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
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
    /// Simulate N days of the agency on a simulated clock and print a summary.
    Simulate {
        #[arg(long, default_value_t = 90)]
        days: u32,
        #[arg(long, default_value_t = 7)]
        seed: u64,
        /// First simulated day (UTC), e.g. 2026-01-05.
        #[arg(long)]
        start: Option<chrono::NaiveDate>,
        /// Print the summary as JSON.
        #[arg(long)]
        json: bool,
    },
    /// The seed's health checks: store, queue, each container's health and Φ_sync;
    /// exits non-zero when one fails (unreachable, unmigrated, or Φ_sync critical).
    Health,
    /// Compute Φ_sync now and print it.
    Aggregate,
    /// Apply database migrations.
    Migrate,
    /// Run one layer on one input and print its result as JSON.
    Layer {
        /// Layer name or number (`prospecting`, `2`, `aggregation`).
        name: String,
        #[arg(long)]
        input: PathBuf,
    },
    /// List a queue's dead letters with their reasons.
    DeadLetters {
        queue: String,
        #[arg(long, default_value_t = 20)]
        limit: usize,
    },
    /// Outreach waiting for a person (LinkedIn messages, calls, texts without an SMS
    /// account), oldest first, as JSON.
    Tasks {
        /// Only this channel: linkedin, phone or sms.
        #[arg(long)]
        channel: Option<String>,
        #[arg(long, default_value_t = 50)]
        limit: u32,
    },
    /// Close a task: an outreach task from `cep tasks` (with its outcome), or an
    /// onboarding task (its dependency must be done first).
    TaskDone {
        task_id: String,
        /// For outreach tasks: done, replied or opted_out.
        #[arg(long, default_value = "done")]
        outcome: cep_workers::layers::outreach::tasks::TaskOutcome,
    },
    /// Link a client to its Business Profile location (`accounts/<id>/locations/<id>`):
    /// the optimization layer then edits that profile (dry run by default).
    GbpLink { client_id: String, location: String },
    /// Research a prospect (web search, site scrape, cited summary; cached) and print
    /// it as JSON.
    Research { prospect_id: String },
    /// Audit a prospect's website in headless Chromium (loads, name/phone/city,
    /// LocalBusiness data, mobile viewport, load time, screenshot) and print it as JSON.
    Audit { prospect_id: String },
    /// Record an invoice's payment (its subtotal becomes revenue).
    InvoicePaid { invoice_id: String },
    /// Undo a parameter change the feedback loop made.
    Rollback { change_id: String },
    /// Make sure Calendly's webhook subscription points here and is active (creates it,
    /// or recreates it when Calendly disabled it); needs CALENDLY_API_TOKEN.
    Calendly,
    /// Print the Prometheus alerting rules for this configuration.
    Alerts,
    /// Load and validate the configuration, then print it.
    Config,
    /// Measure the fleet on real Redis (REDIS_URL) and Postgres (DATABASE_URL): print
    /// one table and write it as JSON (BENCHMARKS.md explains each figure).
    Bench {
        /// Small sizes: a smoke run that checks every scenario still works.
        #[arg(long)]
        quick: bool,
        /// Only these scenarios: enqueue, drain, latency, io_bound, scheduler,
        /// aggregation, main_job, sales_chain.
        #[arg(long, value_delimiter = ',')]
        only: Vec<String>,
        #[arg(long, default_value = "bench.json")]
        out: PathBuf,
        /// Report each figure as the median of this many interleaved runs.
        #[arg(long, default_value_t = 1)]
        runs: u32,
    },
    /// A benchmark worker (started by `cep bench`): runs probe jobs until SIGTERM,
    /// then prints its report.
    #[command(hide = true)]
    BenchWorker {
        #[arg(long, value_enum)]
        probe: cep::bench::ProbeKind,
        #[arg(long, default_value = "")]
        url: String,
        #[arg(long, default_value_t = 64)]
        concurrency: usize,
    },
    /// The architecture engine: validate the fleet's own design.
    Architecture {
        #[command(subcommand)]
        action: ArchitectureAction,
    },
}

#[derive(Subcommand)]
enum ArchitectureAction {
    /// Check the configuration, layer graph, schedules, weights, rate limits and
    /// deadlines; store the design record (JSON, Markdown with a diagram) in
    /// `architectures`, print it, and exit non-zero when the design fails its rules.
    Check {
        /// Kubernetes manifests whose grace periods the drain deadline must fit in
        /// (e.g. deploy/k8s).
        #[arg(long)]
        manifests: Option<PathBuf>,
        /// Also write `<id>.json` and `<id>.md` into this directory.
        #[arg(long)]
        out: Option<PathBuf>,
        /// Print the record as JSON instead of Markdown.
        #[arg(long)]
        json: bool,
    },
}

/// The configuration file: `--config`, else `./config.yaml` when there is one.
fn config_path(path: Option<PathBuf>) -> Option<PathBuf> {
    path.or_else(|| Some(PathBuf::from("config.yaml")).filter(|p| p.exists()))
}

fn load(path: Option<PathBuf>) -> anyhow::Result<Settings> {
    Ok(Settings::load(config_path(path).as_deref())?)
}

/// `cep architecture check`: the configuration is read without validation so every
/// finding is reported, not just the first; the record is stored only when the
/// configuration validates (an invalid one may not name the store meant).
async fn architecture(settings: Settings, action: ArchitectureAction) -> anyhow::Result<()> {
    let ArchitectureAction::Check {
        manifests,
        out,
        json,
    } = action;
    let secrets = cep_shared::Secrets::from_env();
    let now = chrono::Utc::now();
    let mut record = cep::architecture::check(&settings, &secrets, manifests.as_deref(), now);
    let stored = if settings.validate().is_ok() {
        let ctx = app::open(settings.clone(), Clock::System).await?;
        record.review = cep::architecture::review(&ctx, &record).await;
        record.markdown = cep::architecture::markdown(&record, &settings);
        cep::architecture::store(&ctx.store, &record, now.timestamp_millis()).await?;
        true
    } else {
        false
    };
    if let Some(dir) = out {
        std::fs::create_dir_all(&dir)
            .with_context(|| format!("cannot create {}", dir.display()))?;
        std::fs::write(
            dir.join(format!("{}.json", record.id)),
            serde_json::to_string_pretty(&record)?,
        )?;
        std::fs::write(dir.join(format!("{}.md", record.id)), &record.markdown)?;
    }
    if json {
        println!("{}", serde_json::to_string_pretty(&record)?);
    } else {
        print!("{}", record.markdown);
    }
    if !stored {
        eprintln!("the record was not stored: the configuration does not validate");
    }
    use cep::architecture::Status;
    if !record.passed() {
        anyhow::bail!(
            "the design fails its {} rules: {} failing, {} warning",
            record.validation_rules.as_str(),
            record.count(Status::Fail),
            record.count(Status::Warn)
        );
    }
    Ok(())
}

#[tokio::main]
async fn main() -> std::process::ExitCode {
    let cli = Cli::parse();
    match real_main(cli).await {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            std::process::ExitCode::FAILURE
        }
    }
}

async fn real_main(cli: Cli) -> anyhow::Result<()> {
    let settings = match cli.command {
        // The check reports an invalid configuration itself; the bench and its workers
        // run on a queue alone (REDIS_URL), without the fleet's store.
        Command::Architecture { .. } | Command::Bench { .. } | Command::BenchWorker { .. } => {
            Settings::read(config_path(cli.config).as_deref())?
        }
        _ => load(cli.config)?,
    };
    let quiet = matches!(
        cli.command,
        Command::Simulate { .. }
            | Command::Layer { .. }
            | Command::Config
            | Command::TaskDone { .. }
            | Command::Tasks { .. }
            | Command::GbpLink { .. }
            | Command::Research { .. }
            | Command::Audit { .. }
            | Command::InvoicePaid { .. }
            | Command::Rollback { .. }
            | Command::Calendly
            | Command::Health
            | Command::Alerts
            | Command::Architecture { .. }
            | Command::Bench { .. }
            | Command::BenchWorker { .. }
    );
    let _telemetry = telemetry::init(
        settings.mode,
        if matches!(cli.command, Command::Bench { .. }) {
            telemetry::BENCH_FILTER
        } else if quiet {
            telemetry::QUIET_FILTER
        } else {
            telemetry::DEFAULT_FILTER
        },
    );
    match cli.command {
        Command::Architecture { action } => architecture(settings, action).await?,
        Command::Bench {
            quick,
            only,
            out,
            runs,
        } => {
            let report = cep::bench::run(&cep::bench::Options {
                quick,
                only,
                out,
                runs,
            })
            .await?;
            print!("{}", cep::bench::render(&report));
        }
        Command::BenchWorker {
            probe,
            url,
            concurrency,
        } => cep::bench::worker(settings, probe, url, concurrency).await?,
        Command::Alerts => {
            print!("{}", cep::alerts::rules_yaml(&settings));
        }
        Command::Calendly => {
            let ctx = app::open(settings, Clock::System).await?;
            let done =
                cep_workers::layers::booking::calendly_api::ensure_subscription(&ctx).await?;
            println!("{}", serde_json::to_string_pretty(&done)?);
        }
        Command::Config => {
            println!("{}", serde_json::to_string_pretty(&settings)?);
        }
        Command::Migrate => {
            let store = Store::open(&settings).await?;
            store.migrate().await?;
            println!("migrations applied");
            cep::push::push(&settings, "cep_migrate").await?;
        }
        Command::Run => {
            let ctx = app::open(settings, Clock::System).await?;
            app::run_all(ctx, app::shutdown_signal()).await?;
        }
        Command::Worker { layers } => {
            let kinds = app::parse_kinds(&layers)?;
            let ctx = app::open(settings, Clock::System).await?;
            let shutdown = app::shutdown_signal();
            let ops = app::ops_server(&ctx, shutdown.clone()).await?;
            app::worker(ctx, kinds, shutdown).await?;
            ops.await??;
        }
        Command::Scheduler => {
            let ctx = app::open(settings, Clock::System).await?;
            let shutdown = app::shutdown_signal();
            let ops = app::ops_server(&ctx, shutdown.clone()).await?;
            cep_scheduler::run(ctx.queue.clone(), &ctx.settings, shutdown).await?;
            ops.await??;
        }
        Command::Simulate {
            days,
            seed,
            start,
            json,
        } => {
            let start = match start {
                Some(d) => d.and_time(chrono::NaiveTime::MIN).and_utc(),
                None => simulate::Options::default_start(),
            };
            let settings = simulate::prepare(settings, seed)?;
            let ctx = app::open(settings, Clock::simulated(start)).await?;
            let opts = simulate::Options {
                days,
                seed,
                start,
                progress: !json && std::io::IsTerminal::is_terminal(&std::io::stderr()),
            };
            let queue = ctx.queue.clone();
            let summary = simulate::run(ctx, &opts).await;
            if let cep_shared::queue::Queue::Redis(r) = &queue {
                r.purge().await?;
            }
            let summary = summary?;
            if json {
                println!("{}", serde_json::to_string_pretty(&summary)?);
            } else {
                print!("{}", simulate::render(&summary));
            }
        }
        Command::Serve => {
            let ctx = app::open(settings, Clock::System).await?;
            let bind = ctx.settings.server.bind.clone();
            cep_workers::http::serve(ctx, &bind, app::shutdown_signal()).await?;
        }
        Command::Health => {
            let ctx = app::connect(settings, Clock::System).await?;
            let (report, healthy) = app::health(&ctx).await;
            print!("{report}");
            if !healthy {
                anyhow::bail!("a health check failed");
            }
        }
        Command::Aggregate => {
            let ctx = app::open(settings, Clock::System).await?;
            let period = ctx.clock.now().format("%Y-%m-%d").to_string();
            let c = cep_workers::handle(
                &ctx,
                JobKind::AGGREGATION,
                &serde_json::json!({ "period": period }).to_string(),
            )
            .await?;
            println!("{}", serde_json::to_string_pretty(&c)?);
            cep::push::push(&ctx.settings, "cep_aggregate").await?;
        }
        Command::Layer { name, input } => {
            let kind: JobKind = name.parse()?;
            let text = std::fs::read_to_string(&input)
                .with_context(|| format!("cannot read {}", input.display()))?;
            let value: serde_json::Value = serde_json::from_str(&text)
                .with_context(|| format!("{} is not JSON", input.display()))?;
            let ctx = app::open(settings, Clock::System).await?;
            let out = app::run_layer(&ctx, kind, value).await?;
            println!("{}", serde_json::to_string_pretty(&out)?);
        }
        Command::GbpLink {
            client_id,
            location,
        } => {
            let ctx = app::open(settings, Clock::System).await?;
            cep_workers::layers::optimization::gbp::link(&ctx, &client_id, &location).await?;
            println!("{client_id} is linked to {location}");
        }
        Command::Audit { prospect_id } => {
            let ctx = app::open(settings, Clock::System).await?;
            let audit = cep_workers::engines::audit::prospect(&ctx, &prospect_id).await?;
            println!("{}", serde_json::to_string_pretty(&audit)?);
        }
        Command::Research { prospect_id } => {
            let ctx = app::open(settings, Clock::System).await?;
            let found = cep_workers::engines::research::prospect(&ctx, &prospect_id).await?;
            println!("{}", serde_json::to_string_pretty(&found)?);
        }
        Command::Tasks { channel, limit } => {
            let ctx = app::open(settings, Clock::System).await?;
            let open = tasks::open(&ctx, channel.as_deref(), limit).await?;
            println!("{}", serde_json::to_string_pretty(&open)?);
        }
        Command::TaskDone { task_id, outcome } => {
            let ctx = app::open(settings, Clock::System).await?;
            if tasks::is_message(&ctx, &task_id).await? {
                tasks::complete(&ctx, &task_id, outcome, ctx.now()).await?;
                println!("{task_id}: {}", serde_json::to_string(&outcome)?);
            } else {
                let done =
                    cep_workers::layers::onboarding::complete_task(&ctx, &task_id, ctx.now())
                        .await?;
                println!("{}", serde_json::to_string_pretty(&done)?);
            }
        }
        Command::InvoicePaid { invoice_id } => {
            let ctx = app::open(settings, Clock::System).await?;
            let new =
                cep_workers::layers::finance::record_payment(&ctx, &invoice_id, ctx.now()).await?;
            println!(
                "{}",
                if new {
                    "payment recorded"
                } else {
                    "already paid"
                }
            );
        }
        Command::Rollback { change_id } => {
            let ctx = app::open(settings, Clock::System).await?;
            let name = cep_workers::layers::params::rollback(&ctx, &change_id).await?;
            println!("`{name}` is back to its value before {change_id}");
        }
        Command::DeadLetters { queue, limit } => {
            let kind: JobKind = queue.parse()?;
            let ctx = app::open(settings, Clock::System).await?;
            for d in ctx.queue.dead_letters(kind.queue(), limit).await? {
                println!("{}\t{}\t{}\t{}", d.id, d.attempts, d.reason, d.payload);
            }
        }
    }
    Ok(())
}
