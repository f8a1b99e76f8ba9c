//! The tools that examine the fleet rather than run it: the simulation, the benchmark
//! (and the workers it starts) and the architecture check.

use crate::tools::{architecture, bench, simulate};
use crate::{app, telemetry};
use anyhow::Context as _;
use cep_shared::{Clock, Secrets, Settings};
use clap::Subcommand;
use std::path::PathBuf;

#[derive(Subcommand)]
pub enum Tool {
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
        probe: bench::ProbeKind,
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
pub enum ArchitectureAction {
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

impl Tool {
    /// The architecture check reports an invalid configuration itself; the bench and
    /// its workers run on a queue alone, without the fleet's store.
    pub fn reads_unvalidated(&self) -> bool {
        !matches!(self, Tool::Simulate { .. })
    }

    pub fn log_filter(&self) -> &'static str {
        match self {
            // `cep bench` fills millions of rows on purpose.
            Tool::Bench { .. } => telemetry::BENCH_FILTER,
            _ => telemetry::QUIET_FILTER,
        }
    }

    pub async fn run(self, settings: Settings) -> anyhow::Result<()> {
        match self {
            Tool::Simulate {
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
                // An empty database is migrated here, on the fleet as on the embedded default.
                let ctx = app::open_migrated(settings, Clock::simulated(start)).await?;
                let opts = simulate::Options {
                    days,
                    seed,
                    start,
                    progress: simulate::Progress::for_stderr(json),
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
            Tool::Bench {
                quick,
                only,
                out,
                runs,
            } => {
                let options = bench::Options {
                    quick,
                    only,
                    out,
                    runs,
                };
                print!("{}", bench::render(&bench::run(&options).await?));
            }
            Tool::BenchWorker {
                probe,
                url,
                concurrency,
            } => bench::worker(settings, probe, url, concurrency).await?,
            Tool::Architecture { action } => check_architecture(settings, action).await?,
        }
        Ok(())
    }
}

/// `cep architecture check`: the configuration is read without validation so every
/// finding is reported, not just the first; the record is stored only when the
/// configuration validates (an invalid one may not name the store meant).
async fn check_architecture(settings: Settings, action: ArchitectureAction) -> anyhow::Result<()> {
    let ArchitectureAction::Check {
        manifests,
        out,
        json,
    } = action;
    let secrets = Secrets::from_env();
    let now = chrono::Utc::now();
    let mut record = architecture::check(&settings, &secrets, manifests.as_deref(), now);
    let stored = if settings.validate().is_ok() {
        let ctx = app::open(settings.clone(), Clock::System).await?;
        record.review = architecture::review(&ctx, &record).await;
        record.markdown = architecture::markdown(&record, &settings);
        architecture::store(&ctx.store, &record, now.timestamp_millis()).await?;
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
    use architecture::Status;
    anyhow::ensure!(
        record.passed(),
        "the design fails its {} rules: {} failing, {} warning",
        record.validation_rules.as_str(),
        record.count(Status::Fail),
        record.count(Status::Warn)
    );
    Ok(())
}
