//! What an operator asks of the fleet: its health, one layer on one input, dead letters,
//! the tasks waiting for a person, payments, rollbacks, links to outside services; each
//! prints its result.

use crate::{alerts, app};
use anyhow::Context as _;
use cep_shared::vocabulary::Channel;
use cep_shared::{Clock, JobKind, Settings, queue};
use cep_workers::Ctx;
use cep_workers::engines::{audit, research};
use cep_workers::layers::outreach::tasks::{self, TaskOutcome};
use cep_workers::layers::{booking, finance, onboarding, optimization, params};
use clap::Subcommand;
use std::path::PathBuf;

#[derive(Subcommand)]
pub enum Operator {
    /// The seed's health checks: store, queue, each container's health and Φ_sync;
    /// exits non-zero when one fails (unreachable, unmigrated, or Φ_sync critical).
    Health,
    /// Print the Prometheus alerting rules for this configuration.
    Alerts,
    /// Load and validate the configuration, then print it (passwords in URLs replaced);
    /// exits non-zero when a switched-on provider has no key.
    Config,
    #[command(flatten)]
    OnStore(OnStore),
}

/// The operator's commands that act on the fleet's store and queue.
#[derive(Subcommand)]
pub enum OnStore {
    /// Run one layer on one input and print its result as JSON.
    ///
    /// Inputs, one JSON document per layer (examples in `examples/`):
    ///
    ///   1 prospecting       {"location": "Miami, FL", "category": "dental", "max_prospects": 20}
    ///
    ///   2 pitch_generation  {"prospect_id": "…"}, or the seed's {"prospects": [{"id": "…"}],
    ///                       "channels": ["email", "linkedin", "phone", "sms"]}
    ///
    ///   3 outreach          {"prospect_id": "…", "step": 0}, or the seed's {"pitches":
    ///                       [{"prospect_id": "…"}], "channels": ["email"]} (layer 2's answer):
    ///                       each prospect's sequence, its first step delivered now
    ///
    ///   4 booking           a Calendly v2 body's job ({"action": "invitee.created",
    ///                       "invitee_uri": …, "email": …, "name": …, "event_type": …}), or the
    ///                       seed's {"webhook_payload": {"event": {"action": …}, "payload":
    ///                       {"email": …, "name": …, "event_type": …}}}
    ///
    ///   5 onboarding        {"action": "start", "meeting_id": "…"} (a won meeting) or
    ///                       {"action": "review", "period": "2026-W02"}, or the seed's sale
    ///                       closed outside the pipeline {"client_name": …, "business_name": …,
    ///                       "email": …, "phone": …, "business_type": …, "billing_tier": …}
    ///                       (the tier `layers.onboarding.warm_tier` when not given)
    ///
    ///   6 optimization      {"client_id": "…", "period": "2026-W02"}, or the seed's
    ///                       {"client_id": …, "business_name": …, "business_type": …,
    ///                       "current_gbp_score": …}: this week's run (a score handed in is
    ///                       not used: scores are measured)
    ///
    ///   7 reporting, 8 finance, 9 feedback_loop, aggregation   {"period": "2026-02"} (a
    ///                       calendar day, ISO week or month, not after the current one)
    ///
    ///   7 reporting         also the seed's {"clients": [{"id": …}], "report_type":
    ///                       "weekly" | "monthly"}: the period under way, the named clients'
    ///                       reports answered (figures in a client entry are not used)
    ///
    ///   8 finance           also the seed's {"clients": [{"id": …, "billing_tier": …,
    ///                       "new_client": true}], "period": "2026-01"}: the month's close
    ///                       (the month under way when not given); a tier or newness that is
    ///                       not the store's is refused
    ///
    ///   9 feedback_loop     also the seed's {"performance_data": {"outreach": {"response_rate":
    ///                       0.35}}, "phi_sync": 0.88, "historical_data": [{"phi_sync": 0.8,
    ///                       "date": "2026-01-01"}]}: assessed against the targets, not applied
    Layer {
        /// Layer name or number (`prospecting`, `2`, `aggregation`).
        name: String,
        #[arg(long)]
        input: PathBuf,
    },
    /// Each queue's jobs: ready, scheduled, running and dead, and anything the queue holds
    /// outside the fleet's queues (unknown queue names, unreadable entries).
    Queues,
    /// List dead letters with their reasons, newest first: one queue's (`unreadable` for
    /// entries no worker can read), or every queue's that has any.
    DeadLetters {
        queue: Option<String>,
        /// At most this many per queue.
        #[arg(long, default_value_t = 20)]
        limit: usize,
    },
    /// Put dead letters of a queue back to ready, due now with a fresh set of attempts:
    /// one (`--id`), every one whose payload or reason holds a text (`--matching`), or
    /// all (`--all`).
    RetryDead {
        queue: String,
        #[command(flatten)]
        pick: DeadPick,
    },
    /// Delete dead letters of a queue (`unreadable` included): `--id`, `--matching` or
    /// `--all`.
    DiscardDead {
        queue: String,
        #[command(flatten)]
        pick: DeadPick,
    },
    /// Stop every worker, in every process, fetching from a queue (a job already
    /// running finishes); `cep resume` lets them again.
    Pause { queue: String },
    /// Let workers fetch from a paused queue again.
    Resume { queue: String },
    /// Outreach waiting for a person (LinkedIn messages, calls, texts without an SMS
    /// account), oldest first, as JSON.
    Tasks {
        /// Only this channel: linkedin, phone or sms.
        #[arg(long)]
        channel: Option<Channel>,
        #[arg(long, default_value_t = 50)]
        limit: u32,
    },
    /// Write a client's monthly report as the client reads it, from the store as it is
    /// now: the page (`--html`) and the PDF Chromium prints (`--pdf`). The month's close
    /// must have written the report.
    Report {
        client_id: String,
        /// The month, e.g. 2026-03.
        #[arg(long)]
        period: String,
        #[arg(long)]
        html: Option<PathBuf>,
        #[arg(long)]
        pdf: Option<PathBuf>,
    },
    /// Close a task: an outreach task from `cep tasks` (with its outcome), or an
    /// onboarding task (its dependency must be done first).
    TaskDone {
        task_id: String,
        /// For outreach tasks: done, replied or opted_out.
        #[arg(long, default_value = "done")]
        outcome: TaskOutcome,
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
    /// Meetings waiting for you, as JSON, each with what it needs: `link` (no signed link
    /// or sent email ties it to a prospect), `confirm` (matched by the invitee's address
    /// alone), `attendance` (its start has passed: held or no-show), `decision` (held:
    /// won or lost).
    Meetings,
    /// Tie a meeting to its prospect, or confirm an email match: a scheduled meeting
    /// books the prospect.
    MeetingLink {
        meeting_id: String,
        prospect_id: String,
    },
    /// Record what came of a meeting: held, no-show, won (with the tier sold: onboarding
    /// and billing start) or lost (with a reason). Only after the meeting's start.
    Meeting {
        meeting_id: String,
        #[command(subcommand)]
        outcome: MeetingOutcome,
    },
    /// Planned posts, soonest first, as JSON: with `--pending` only the drafts waiting for
    /// approval (none is published unread unless `layers.optimization.auto_approve`).
    Posts {
        #[arg(long)]
        pending: bool,
        /// Only this client's.
        #[arg(long)]
        client: Option<String>,
        #[arg(long, default_value_t = 50)]
        limit: u32,
    },
    /// Approve posts (ids from `cep posts --pending`): each is published on the client's
    /// linked profile when its date comes.
    PostApprove {
        #[arg(required = true)]
        post_ids: Vec<String>,
    },
    /// Record an invoice's payment (its subtotal becomes revenue).
    InvoicePaid { invoice_id: String },
    /// Undo a parameter change the feedback loop made.
    Rollback { change_id: String },
    /// Make sure Calendly's webhook subscription points here and is active (creates it,
    /// or recreates it when Calendly disabled it); needs CALENDLY_API_TOKEN.
    Calendly,
    /// The console's users: add, passwd, disable, list.
    User {
        #[command(subcommand)]
        command: super::users::UserCommand,
    },
}

/// Which dead letters a command takes: exactly one of the three.
#[derive(clap::Args)]
#[group(required = true, multiple = false)]
pub struct DeadPick {
    /// The job id (from `cep dead-letters`).
    #[arg(long)]
    id: Option<String>,
    /// Every one whose payload or reason holds this text.
    #[arg(long)]
    matching: Option<String>,
    /// Every one.
    #[arg(long)]
    all: bool,
}

impl DeadPick {
    fn pick(&self) -> queue::admin::Pick<'_> {
        match (&self.id, &self.matching) {
            (Some(id), _) => queue::admin::Pick::Id(id),
            (None, Some(text)) => queue::admin::Pick::Matching(text),
            (None, None) => queue::admin::Pick::Matching(""),
        }
    }
}

/// What came of a meeting, as the operator records it.
#[derive(Subcommand)]
pub enum MeetingOutcome {
    /// The meeting took place.
    Held,
    /// The invitee did not come.
    NoShow,
    /// Sold: the client, its onboarding and its invoices start.
    Won {
        /// starter, professional or enterprise.
        #[arg(long)]
        tier: String,
    },
    /// Not sold.
    Lost {
        /// Why, in a few words (at most 500 characters).
        #[arg(long)]
        reason: String,
    },
}

impl From<MeetingOutcome> for booking::Outcome {
    fn from(o: MeetingOutcome) -> Self {
        match o {
            MeetingOutcome::Held => booking::Outcome::Held,
            MeetingOutcome::NoShow => booking::Outcome::NoShow,
            MeetingOutcome::Won { tier } => booking::Outcome::Won { tier },
            MeetingOutcome::Lost { reason } => booking::Outcome::Lost { reason },
        }
    }
}

fn print_json(value: &impl serde::Serialize) -> anyhow::Result<()> {
    println!("{}", serde_json::to_string_pretty(value)?);
    Ok(())
}

impl Operator {
    pub async fn run(self, settings: Settings) -> anyhow::Result<()> {
        match self {
            Operator::Health => {
                let ctx = app::connect(settings, Clock::System).await?;
                let (report, healthy) = app::health(&ctx).await;
                print!("{report}");
                anyhow::ensure!(healthy, "a health check failed");
                Ok(())
            }
            Operator::Alerts => {
                print!("{}", alerts::rules_yaml(&settings));
                Ok(())
            }
            Operator::Config => {
                // Printed with the URLs' passwords replaced; then, as every role does at
                // start, a switched-on provider without its key is an error.
                let mut shown = settings.clone();
                let b = &mut shown.backends;
                for url in [&mut b.redis_url, &mut b.database_url]
                    .into_iter()
                    .flatten()
                {
                    *url = cep_shared::store::redact_url(url);
                }
                print_json(&shown)?;
                let secrets = cep_shared::config::Secrets::from_env();
                settings.check_secrets(&secrets)?;
                // With the dry run off, what would send real mail wrong, every item.
                let live = settings.live_findings(&secrets);
                for f in &live {
                    eprintln!("not ready to send: `{}`: {}", f.key, f.reason);
                }
                anyhow::ensure!(
                    live.is_empty(),
                    "the dry run is off but {} setting(s) above are not ready to send real mail",
                    live.len()
                );
                Ok(())
            }
            Operator::OnStore(command) => {
                let ctx = app::open(settings, Clock::System).await?;
                command.run(&ctx).await
            }
        }
    }
}

/// The queue `name` names for `cep dead-letters`: one of the fleet's (by name or layer
/// number), `unreadable`, or a name the queue holds jobs under although no worker serves
/// it; anything else is refused listing what there is.
async fn dead_letter_queue(ctx: &Ctx, name: &str) -> anyhow::Result<String> {
    if let Ok(kind) = name.parse::<JobKind>() {
        return Ok(kind.queue().to_owned());
    }
    let strays = ctx.queue.strays().await?;
    if name == queue::UNREADABLE || strays.iter().any(|s| s.queue == name) {
        return Ok(name.to_owned());
    }
    let mut names = queue::known_queues().join(", ");
    for s in &strays {
        names.push_str(", ");
        names.push_str(&s.queue);
    }
    anyhow::bail!("unknown queue `{}`: the queues are {names}", shown(name))
}

/// The most `cep layer --input` reads: a layer's input is a small JSON document.
const MAX_INPUT_BYTES: u64 = 1024 * 1024;

/// Reads an input file, refusing one larger than [`MAX_INPUT_BYTES`] (or endless, such
/// as `/dev/zero`) after reading no more than that.
fn read_input(path: &std::path::Path) -> anyhow::Result<String> {
    use std::io::Read;
    let file =
        std::fs::File::open(path).with_context(|| format!("cannot read {}", path.display()))?;
    let mut bytes = Vec::new();
    file.take(MAX_INPUT_BYTES + 1)
        .read_to_end(&mut bytes)
        .with_context(|| format!("cannot read {}", path.display()))?;
    if bytes.len() as u64 > MAX_INPUT_BYTES {
        anyhow::bail!(
            "{} is larger than 1 MiB; a layer's input is a small JSON document",
            path.display()
        );
    }
    String::from_utf8(bytes).with_context(|| format!("{} is not UTF-8 text", path.display()))
}

/// Text from the queue as one printable line: control characters escaped, at most 200
/// characters.
fn shown(text: &str) -> String {
    const MAX: usize = 200;
    let mut out: String = text
        .chars()
        .take(MAX)
        .flat_map(char::escape_default)
        .collect();
    if text.chars().nth(MAX).is_some() {
        out.push('…');
    }
    out
}

impl OnStore {
    async fn run(self, ctx: &Ctx) -> anyhow::Result<()> {
        let now = ctx.now();
        match self {
            OnStore::Layer { name, input } => {
                let kind: JobKind = name.parse()?;
                let text = read_input(&input)?;
                let value: serde_json::Value = serde_json::from_str(&text)
                    .with_context(|| format!("{} is not JSON", input.display()))?;
                print_json(&app::run_layer(ctx, kind, value).await?)?;
            }
            OnStore::Queues => {
                println!("queue\tready\tscheduled\trunning\tdead");
                let known = queue::known_queues();
                let strays = ctx.queue.strays().await?;
                let paused = ctx.queue.paused().await?;
                for s in ctx.queue.stats(&known).await?.iter().chain(&strays) {
                    let note = match s.queue.as_str() {
                        q if paused.contains(q) => "\tpaused: no worker fetches from it",
                        q if queue::is_known(q) => "",
                        queue::UNREADABLE => "\tset aside: no worker can read them",
                        _ => "\tunknown queue: no worker serves it",
                    };
                    println!(
                        "{}\t{}\t{}\t{}\t{}{note}",
                        s.queue, s.ready, s.scheduled, s.running, s.dead
                    );
                }
            }
            OnStore::DeadLetters { queue, limit } => {
                let queues = match queue {
                    Some(name) => vec![dead_letter_queue(ctx, &name).await?],
                    None => {
                        let known = queue::known_queues();
                        let mut all = ctx.queue.stats(&known).await?;
                        all.extend(ctx.queue.strays().await?);
                        all.into_iter()
                            .filter(|s| s.dead > 0)
                            .map(|s| s.queue)
                            .collect()
                    }
                };
                println!("queue\tid\tattempts\treason\tpayload");
                for q in &queues {
                    for d in ctx.queue.dead_letters(q, limit).await? {
                        println!(
                            "{}\t{}\t{}\t{}\t{}",
                            d.queue,
                            d.id,
                            d.attempts,
                            shown(&d.reason),
                            shown(&d.payload)
                        );
                    }
                }
            }
            OnStore::RetryDead { queue, pick } => {
                let q = dead_letter_queue(ctx, &queue).await?;
                let n = ctx.queue.retry_dead(&q, pick.pick()).await?;
                let after = serde_json::json!({ "queue": q, "jobs": n });
                cep_workers::console::audit::record(
                    ctx,
                    "cli",
                    "dead_letter.retry",
                    &q,
                    None,
                    Some(after),
                )
                .await?;
                println!("{n} dead letter(s) of {q} ready again");
            }
            OnStore::DiscardDead { queue, pick } => {
                let q = dead_letter_queue(ctx, &queue).await?;
                let n = ctx.queue.discard_dead(&q, pick.pick()).await?;
                let after = serde_json::json!({ "queue": q, "jobs": n });
                cep_workers::console::audit::record(
                    ctx,
                    "cli",
                    "dead_letter.discard",
                    &q,
                    None,
                    Some(after),
                )
                .await?;
                println!("{n} dead letter(s) of {q} discarded");
            }
            OnStore::Pause { queue } => {
                let q = dead_letter_queue(ctx, &queue).await?;
                let changed = ctx.queue.pause(&q).await?;
                if changed {
                    cep_workers::console::audit::record(ctx, "cli", "queue.pause", &q, None, None)
                        .await?;
                }
                println!(
                    "{q} {}",
                    if changed {
                        "is paused: no worker fetches from it"
                    } else {
                        "was paused already"
                    }
                );
            }
            OnStore::Resume { queue } => {
                let q = dead_letter_queue(ctx, &queue).await?;
                let changed = ctx.queue.resume(&q).await?;
                if changed {
                    cep_workers::console::audit::record(ctx, "cli", "queue.resume", &q, None, None)
                        .await?;
                }
                println!(
                    "{q} {}",
                    if changed {
                        "is resumed"
                    } else {
                        "was not paused"
                    }
                );
            }
            OnStore::Tasks { channel, limit } => {
                print_json(&tasks::open(ctx, channel, limit).await?)?;
            }
            OnStore::Report {
                client_id,
                period,
                html,
                pdf,
            } => {
                let id = cep_workers::layers::reporting::monthly(ctx, &client_id, &period).await?;
                let page = cep_workers::layers::reporting::rewrite(ctx, &id).await?;
                if let Some(path) = &html {
                    std::fs::write(path, &page)
                        .with_context(|| format!("cannot write {}", path.display()))?;
                }
                if let Some(path) = &pdf {
                    let bytes = ctx.pdf.print(&page).await?;
                    std::fs::write(path, bytes)
                        .with_context(|| format!("cannot write {}", path.display()))?;
                }
                print_json(&serde_json::json!({ "report_id": id, "html": html, "pdf": pdf }))?;
            }
            OnStore::TaskDone { task_id, outcome } => {
                if tasks::is_message(ctx, &task_id).await? {
                    tasks::complete(ctx, &task_id, outcome, now).await?;
                    println!("{task_id}: {}", serde_json::to_string(&outcome)?);
                } else {
                    print_json(&onboarding::complete_task(ctx, &task_id, now).await?)?;
                }
            }
            OnStore::GbpLink {
                client_id,
                location,
            } => {
                optimization::gbp::link(ctx, &client_id, &location).await?;
                println!("{client_id} is linked to {location}");
            }
            OnStore::Research { prospect_id } => {
                print_json(&research::prospect(ctx, &prospect_id).await?)?;
            }
            OnStore::Audit { prospect_id } => {
                print_json(&audit::prospect(ctx, &prospect_id).await?)?;
            }
            OnStore::Meetings => {
                print_json(&booking::to_review(ctx).await?)?;
            }
            OnStore::MeetingLink {
                meeting_id,
                prospect_id,
            } => {
                print_json(&booking::link(ctx, &meeting_id, &prospect_id).await?)?;
            }
            OnStore::Meeting {
                meeting_id,
                outcome,
            } => {
                let r = booking::outcome::record(
                    ctx,
                    &meeting_id,
                    outcome.into(),
                    booking::Reporter::Operator,
                )
                .await?;
                print_json(&r)?;
            }
            OnStore::Posts {
                pending,
                client,
                limit,
            } => {
                let posts =
                    optimization::store::posts(ctx, pending, client.as_deref(), limit).await?;
                print_json(&posts)?;
            }
            OnStore::PostApprove { post_ids } => {
                for id in &post_ids {
                    let new = optimization::store::approve(ctx, id, "operator").await?;
                    println!(
                        "{id}: {}",
                        if new { "approved" } else { "already approved" }
                    );
                }
            }
            OnStore::InvoicePaid { invoice_id } => {
                let new = finance::record_payment(ctx, &invoice_id, now).await?;
                println!(
                    "{}",
                    if new {
                        "payment recorded"
                    } else {
                        "already paid"
                    }
                );
            }
            OnStore::Rollback { change_id } => {
                let name = params::rollback(ctx, &change_id).await?;
                println!("`{name}` is back to its value before {change_id}");
            }
            OnStore::Calendly => {
                print_json(&booking::calendly_api::ensure_subscription(ctx).await?)?;
            }
            OnStore::User { command } => command.run(ctx).await?,
        }
        Ok(())
    }
}
