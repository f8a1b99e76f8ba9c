//! `cep simulate`: N days of the agency on a simulated clock. The scheduler's ticks,
//! every layer's jobs and a seeded world of prospects and clients (replies, bookings
//! arriving through the real signed Calendly webhook, unsubscribes, finished onboarding
//! tasks, payments, cancellations) run in time order; the queue is drained at each
//! instant before the clock moves on. Same seed, same numbers, on either backend.

use cep_shared::JobKind;
use cep_shared::config::Settings;
use cep_shared::ids::{SeededRng, stable_hash};
use cep_shared::queue::{Leased, worker_name};
use cep_workers::clients::signature;
use cep_workers::layers::{finance, onboarding, outreach};
use cep_workers::{Ctx, http};
use chrono::{DateTime, TimeZone, Utc};
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, BinaryHeap, HashSet};
use std::sync::Arc;
use tower::ServiceExt;

const HOUR: i64 = 3_600_000;
const DAY: i64 = 24 * HOUR;

#[derive(Debug, Clone)]
pub struct Options {
    pub days: u32,
    pub seed: u64,
    pub start: DateTime<Utc>,
    /// Print a progress line on stderr.
    pub progress: bool,
}

impl Options {
    pub fn default_start() -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2026, 1, 5, 0, 0, 0)
            .single()
            .expect("a valid date")
    }
}

/// How the simulated prospects and clients behave. Rates are per message, per meeting,
/// per invoice or per client-month.
#[derive(Debug, Clone)]
pub struct Behaviour {
    pub email_reply: f64,
    pub linkedin_reply: f64,
    pub phone_reply: f64,
    /// Relative reply rate of each pitch variant.
    pub variant_lift: BTreeMap<String, f64>,
    pub book_after_reply: f64,
    pub book_from_link: f64,
    pub unsubscribe: f64,
    pub cancel: f64,
    pub reschedule: f64,
    pub pay_late: f64,
    pub never_pay: f64,
    pub task_late: f64,
    pub churn_per_month: f64,
}

impl Default for Behaviour {
    fn default() -> Self {
        Self {
            email_reply: 0.035,
            linkedin_reply: 0.025,
            phone_reply: 0.045,
            variant_lift: [("a".to_string(), 0.7), ("b".to_string(), 1.5)].into(),
            book_after_reply: 0.6,
            book_from_link: 0.01,
            unsubscribe: 0.01,
            cancel: 0.10,
            reschedule: 0.06,
            pay_late: 0.20,
            never_pay: 0.04,
            task_late: 0.18,
            churn_per_month: 0.04,
        }
    }
}

/// Something the world does at a moment.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Act {
    Reply {
        message: String,
    },
    Unsubscribe {
        message: String,
    },
    Book {
        prospect: String,
        pitch: Option<String>,
        n: u32,
        start_at: i64,
    },
    Cancel {
        prospect: String,
        n: u32,
        rescheduled: bool,
    },
    CompleteTask {
        task: String,
    },
    Pay {
        invoice: String,
    },
    CancelClient {
        client: String,
    },
}

#[derive(Debug, PartialEq, Eq)]
struct Scheduled {
    at: i64,
    seq: u64,
    act: Act,
}

impl Ord for Scheduled {
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        (other.at, other.seq).cmp(&(self.at, self.seq))
    }
}

impl PartialOrd for Scheduled {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}

struct World {
    seed: u64,
    b: Behaviour,
    queue: BinaryHeap<Scheduled>,
    seq: u64,
    seen: HashSet<String>,
    webhooks_refused: u64,
}

impl World {
    fn rng(&self, parts: &[&str]) -> SeededRng {
        SeededRng::for_decision(self.seed, parts)
    }

    fn at(&mut self, at: i64, act: Act) {
        self.seq += 1;
        self.queue.push(Scheduled {
            at,
            seq: self.seq,
            act,
        });
    }

    fn first_time(&mut self, key: String) -> bool {
        self.seen.insert(key)
    }

    fn next_at(&self) -> Option<i64> {
        self.queue.peek().map(|s| s.at)
    }
}

fn between(rng: &mut SeededRng, lo: i64, hi: i64) -> i64 {
    lo + rng.below((hi - lo).max(1) as u64) as i64
}

/// Funnel counts, Φ_sync over time and where the reports are.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Summary {
    pub days: u32,
    pub seed: u64,
    pub backend: String,
    pub funnel: BTreeMap<String, i64>,
    pub phi_series: Vec<PhiPoint>,
    pub final_phi_sync: Option<f64>,
    pub final_status: String,
    pub red_flags: Vec<String>,
    pub parameter_changes: Vec<String>,
    pub reports_dir: String,
    pub reports: i64,
    pub jobs_run: u64,
    pub dead_letters: u64,
    pub webhooks_refused: u64,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PhiPoint {
    pub at: String,
    pub phi_sync: Option<f64>,
    pub status: String,
    pub sales: Option<f64>,
    pub operations: Option<f64>,
    pub finance: Option<f64>,
}

/// Settings for a simulation: its own data directory (cleared) on the embedded default,
/// its own key prefix on Redis.
pub fn prepare(mut settings: Settings, seed: u64) -> anyhow::Result<Settings> {
    if settings.backends.is_embedded() {
        let dir = settings.data_dir.join(format!("simulate-{seed}"));
        if dir.exists() {
            std::fs::remove_dir_all(&dir)
                .map_err(|e| anyhow::anyhow!("cannot clear {}: {e}", dir.display()))?;
        }
        settings.data_dir = dir;
    }
    settings.queue.key_prefix = format!(
        "{}-sim-{}",
        settings.queue.key_prefix,
        cep_shared::queue::new_job_id()
    );
    Ok(settings)
}

/// Runs the simulation on `ctx`, whose clock must be simulated and whose store must be
/// empty.
pub async fn run(ctx: Ctx, opts: &Options) -> anyhow::Result<Summary> {
    anyhow::ensure!(
        matches!(ctx.clock, cep_shared::Clock::Simulated(_)),
        "the simulation needs a simulated clock"
    );
    let (existing,): (i64,) = sqlx::query_as("SELECT COUNT(*) FROM prospects")
        .fetch_one(ctx.store.pool())
        .await?;
    anyhow::ensure!(
        existing == 0,
        "the store already holds {existing} prospects; simulate needs an empty database (point DATABASE_URL at a scratch one)"
    );
    // The world signs its webhooks and follows unsubscribe links with keys of its own
    // when none are configured: the real verification path runs either way.
    let mut secrets = (*ctx.secrets).clone();
    secrets
        .calendly_signing_key
        .get_or_insert_with(|| format!("simulation-{}", opts.seed));
    secrets
        .unsubscribe_key
        .get_or_insert_with(|| format!("simulation-unsubscribe-{}", opts.seed));
    let ctx = Ctx {
        secrets: Arc::new(secrets),
        ..ctx
    };
    let router = http::router(ctx.clone());
    let settings = ctx.settings.clone();
    let start = opts.start.timestamp_millis();
    let end = start + i64::from(opts.days) * DAY;
    ctx.clock.set(opts.start);

    let ticks: Vec<i64> = cep_scheduler::ticks(
        &settings,
        opts.start - chrono::Duration::milliseconds(1),
        cep_shared::clock::from_millis(end),
    )
    .iter()
    .map(|t| t.at.timestamp_millis())
    .collect();
    let kinds: Vec<JobKind> = JobKind::all().collect();
    let queues: Vec<&str> = kinds.iter().map(|k| k.queue()).collect();
    let worker = worker_name("simulate");
    let mut world = World {
        seed: opts.seed,
        b: Behaviour::default(),
        queue: BinaryHeap::new(),
        seq: 0,
        seen: HashSet::new(),
        webhooks_refused: 0,
    };
    let mut jobs_run = 0u64;
    let mut prev = start - 1;
    let mut now = start;
    let mut last_day = -1;
    loop {
        cep_scheduler::enqueue_between(
            &ctx.queue,
            &settings,
            cep_shared::clock::from_millis(prev),
            cep_shared::clock::from_millis(now),
        )
        .await?;
        while world.next_at().is_some_and(|at| at <= now) {
            let Some(s) = world.queue.pop() else { break };
            act(&ctx, &router, &mut world, s.act, now).await?;
        }
        jobs_run += drain_due(&ctx, &queues, &worker).await?;
        observe(&ctx, &mut world, now).await?;

        let day = (now - start) / DAY;
        if opts.progress && day != last_day {
            last_day = day;
            eprint!("\rsimulating day {:>3}/{}", day + 1, opts.days);
        }
        if now >= end {
            break;
        }
        let next_tick = ticks.iter().copied().find(|t| *t > now);
        let next = [
            ctx.queue.next_due(&queues).await?,
            world.next_at(),
            next_tick,
            Some(end),
        ]
        .into_iter()
        .flatten()
        .map(|t| t.max(now + 1))
        .min()
        .unwrap_or(end)
        .min(end);
        prev = now;
        now = next;
        ctx.clock.set(cep_shared::clock::from_millis(now));
    }
    if opts.progress {
        eprintln!();
    }
    let dead: u64 = ctx.queue.stats(&queues).await?.iter().map(|s| s.dead).sum();
    let mut summary = summarize(&ctx, opts, jobs_run, dead).await?;
    summary.webhooks_refused = world.webhooks_refused;
    Ok(summary)
}

/// Runs every job due now, in a stable order (so both backends make the same choices
/// when caps bind), until nothing is due.
async fn drain_due(ctx: &Ctx, queues: &[&str], worker: &str) -> anyhow::Result<u64> {
    let timeout = std::time::Duration::from_secs(ctx.settings.worker.job_timeout_seconds);
    let mut ran = 0;
    loop {
        let mut batch: Vec<Leased> = Vec::new();
        loop {
            let got = ctx.queue.fetch(queues, worker, 512).await?;
            if got.is_empty() {
                break;
            }
            batch.extend(got);
        }
        if batch.is_empty() {
            return Ok(ran);
        }
        batch.sort_by(|a, b| {
            let rank = |q: &str| q.parse::<JobKind>().map(|k| k.order()).unwrap_or(u32::MAX);
            rank(&a.queue)
                .cmp(&rank(&b.queue))
                .then_with(|| a.payload.cmp(&b.payload))
        });
        for job in &batch {
            cep_workers::run_one(ctx, worker, job, timeout).await?;
            ran += 1;
        }
    }
}

#[derive(sqlx::FromRow)]
struct SentRow {
    id: String,
    prospect: String,
    channel: String,
    at: i64,
    category: String,
    variant: String,
    email_pitch: Option<String>,
}

#[derive(sqlx::FromRow)]
struct PhiRow {
    computed_at: i64,
    phi_sync: Option<f64>,
    status: String,
    sales_health: Option<f64>,
    operations_health: Option<f64>,
    finance_health: Option<f64>,
}

/// What the world notices after each instant, and how it will react.
async fn observe(ctx: &Ctx, w: &mut World, now: i64) -> anyhow::Result<()> {
    let pool = ctx.store.pool();
    // Messages that went out: replies, bookings from the link, opt-outs.
    let sent: Vec<SentRow> = sqlx::query_as(
        "SELECT m.id, m.prospect_id AS prospect, m.channel, m.sent_at AS at, p.category, pi.variant,
                (SELECT e.id FROM pitches e WHERE e.prospect_id = m.prospect_id AND e.channel = 'email') AS email_pitch
           FROM messages m JOIN prospects p ON p.id = m.prospect_id JOIN pitches pi ON pi.id = m.pitch_id
          WHERE m.status = 'recorded' AND m.sent_at = $1 ORDER BY m.id",
    )
    .bind(now)
    .fetch_all(pool)
    .await?;
    for SentRow {
        id,
        prospect,
        channel,
        at,
        category,
        variant,
        email_pitch,
    } in sent
    {
        if !w.first_time(format!("msg:{id}")) {
            continue;
        }
        let mut rng = w.rng(&["message", &id]);
        let base = match channel.as_str() {
            "email" => w.b.email_reply,
            "linkedin" => w.b.linkedin_reply,
            _ => w.b.phone_reply,
        };
        let lift = w.b.variant_lift.get(&variant).copied().unwrap_or(1.0);
        // Some categories answer more than others.
        let category_lift = 0.6 + (stable_hash(&[&category]) % 80) as f64 / 100.0;
        let p_reply = base * lift * category_lift;
        let roll = rng.unit();
        if roll < p_reply {
            let reply_at = at + between(&mut rng, 2 * HOUR, 48 * HOUR);
            w.at(
                reply_at,
                Act::Reply {
                    message: id.clone(),
                },
            );
            if rng.unit() < w.b.book_after_reply {
                let book_at = reply_at + between(&mut rng, HOUR, 24 * HOUR);
                let start_at = (book_at / DAY + 1 + rng.below(5) as i64) * DAY + 15 * HOUR;
                w.at(
                    book_at,
                    Act::Book {
                        prospect,
                        pitch: email_pitch,
                        n: 0,
                        start_at,
                    },
                );
            }
        } else if roll < p_reply + w.b.book_from_link {
            let book_at = at + between(&mut rng, HOUR, 72 * HOUR);
            let start_at = (book_at / DAY + 2 + rng.below(5) as i64) * DAY + 16 * HOUR;
            w.at(
                book_at,
                Act::Book {
                    prospect,
                    pitch: email_pitch,
                    n: 0,
                    start_at,
                },
            );
        } else if channel == "email" && roll > 1.0 - w.b.unsubscribe {
            w.at(
                at + between(&mut rng, HOUR, 24 * HOUR),
                Act::Unsubscribe { message: id },
            );
        }
    }
    // Onboarding tasks whose dependency is done: someone finishes them, mostly in time.
    let open: Vec<(String, i64, i64)> = sqlx::query_as(
        "SELECT t.id, t.due_at, COALESCE(d.done_at, c.started_at) FROM tasks t
           JOIN clients c ON c.id = t.client_id LEFT JOIN tasks d ON d.id = t.depends_on
          WHERE t.done_at IS NULL AND c.canceled_at IS NULL AND (t.depends_on IS NULL OR d.done_at IS NOT NULL)
          ORDER BY t.id",
    )
    .fetch_all(pool)
    .await?;
    for (task, due_at, ready_at) in open {
        if !w.first_time(format!("task:{task}")) {
            continue;
        }
        let mut rng = w.rng(&["task", &task]);
        let at = if rng.unit() < w.b.task_late {
            due_at + between(&mut rng, HOUR, 3 * DAY)
        } else {
            ready_at + between(&mut rng, HOUR, (due_at - ready_at).max(2 * HOUR))
        };
        w.at(at.max(now + 1), Act::CompleteTask { task });
    }
    // Invoices: most pay within terms, some late, a few never.
    let unpaid: Vec<(String, String, i64, i64)> = sqlx::query_as(
        "SELECT id, client_id, issued_at, due_at FROM invoices WHERE paid_at IS NULL ORDER BY id",
    )
    .fetch_all(pool)
    .await?;
    for (invoice, client, issued, due) in unpaid {
        if !w.first_time(format!("inv:{invoice}")) {
            continue;
        }
        let mut rng = w.rng(&["invoice", &invoice]);
        // Each invoice is a month in which the client may leave.
        if rng.unit() < w.b.churn_per_month {
            w.at(
                issued + between(&mut rng, DAY, 28 * DAY),
                Act::CancelClient {
                    client: client.clone(),
                },
            );
        }
        let roll = rng.unit();
        if roll < w.b.never_pay {
            continue;
        }
        let at = if roll < w.b.never_pay + w.b.pay_late {
            due + between(&mut rng, DAY, 20 * DAY)
        } else {
            issued + between(&mut rng, DAY, due - issued)
        };
        w.at(at, Act::Pay { invoice });
    }
    Ok(())
}

fn invitee_uri(prospect: &str, n: u32) -> String {
    format!(
        "https://api.calendly.com/scheduled_events/sim-{:x}-{n}/invitees/sim-{:x}-{n}",
        stable_hash(&[prospect]),
        stable_hash(&[prospect, "invitee"])
    )
}

fn iso(ms: i64) -> String {
    cep_shared::clock::from_millis(ms).to_rfc3339_opts(chrono::SecondsFormat::Micros, true)
}

async fn post(
    router: &axum::Router,
    uri: &str,
    headers: &[(&str, String)],
    body: Vec<u8>,
) -> anyhow::Result<axum::http::StatusCode> {
    let mut req = axum::http::Request::builder().method("POST").uri(uri);
    for (k, v) in headers {
        req = req.header(*k, v);
    }
    let resp = router
        .clone()
        .oneshot(req.body(axum::body::Body::from(body))?)
        .await?;
    Ok(resp.status())
}

async fn webhook(
    ctx: &Ctx,
    router: &axum::Router,
    w: &mut World,
    body: serde_json::Value,
) -> anyhow::Result<()> {
    let body = serde_json::to_vec(&body)?;
    let key = ctx
        .secrets
        .calendly_signing_key
        .as_deref()
        .unwrap_or_default();
    let sig = signature::sign(key, ctx.now() / 1000, &body);
    let status = post(
        router,
        "/webhooks/calendly",
        &[
            ("content-type", "application/json".into()),
            (signature::HEADER, sig),
        ],
        body,
    )
    .await?;
    if !status.is_success() {
        w.webhooks_refused += 1;
        tracing::warn!(%status, "simulated webhook refused");
    }
    Ok(())
}

/// The name and email a prospect books or cancels with.
async fn contact(ctx: &Ctx, prospect: &str) -> anyhow::Result<(String, String)> {
    let (name, email): (String, Option<String>) =
        sqlx::query_as("SELECT name, email FROM prospects WHERE id = $1")
            .bind(prospect)
            .fetch_one(ctx.store.pool())
            .await?;
    Ok((name, email.unwrap_or_default()))
}

async fn act(
    ctx: &Ctx,
    router: &axum::Router,
    w: &mut World,
    a: Act,
    now: i64,
) -> anyhow::Result<()> {
    match a {
        Act::Reply { message } => {
            outreach::record_reply(ctx, &message, now).await?;
        }
        Act::Unsubscribe { message } => {
            let token =
                outreach::unsubscribe_token(ctx.secrets.unsubscribe_key.as_deref(), &message);
            let status = post(
                router,
                &format!("/unsubscribe/{message}?token={token}"),
                &[("content-type", "application/x-www-form-urlencoded".into())],
                b"List-Unsubscribe=One-Click".to_vec(),
            )
            .await?;
            anyhow::ensure!(status.is_success(), "unsubscribe refused: {status}");
        }
        Act::Book {
            prospect,
            pitch,
            n,
            start_at,
        } => {
            let (name, email) = contact(ctx, &prospect).await?;
            let mut rng = w.rng(&["booking", &prospect, &n.to_string()]);
            let answers = ["A demo of what you would change", "Pricing questions", ""];
            let answer = answers[rng.below(3) as usize];
            let body = serde_json::json!({
                "event": "invitee.created",
                "created_at": iso(now),
                "payload": {
                    "uri": invitee_uri(&prospect, n),
                    "email": email,
                    "name": name,
                    "status": "active",
                    "rescheduled": false,
                    "questions_and_answers": [{"question": "What should we cover?", "answer": answer, "position": 0}],
                    "tracking": {"utm_source": "cep", "utm_medium": "email", "utm_campaign": prospect, "utm_content": pitch},
                    "scheduled_event": {"name": "Discovery call", "start_time": iso(start_at)}
                }
            });
            webhook(ctx, router, w, body).await?;
            let roll = rng.unit();
            if roll < w.b.reschedule {
                let at = now + between(&mut rng, HOUR, (start_at - now).max(2 * HOUR));
                w.at(
                    at,
                    Act::Cancel {
                        prospect: prospect.clone(),
                        n,
                        rescheduled: true,
                    },
                );
                w.at(
                    at + 1,
                    Act::Book {
                        prospect,
                        pitch,
                        n: n + 1,
                        start_at: start_at + 2 * DAY,
                    },
                );
            } else if roll < w.b.reschedule + w.b.cancel {
                let at = now + between(&mut rng, HOUR, (start_at - now).max(2 * HOUR));
                w.at(
                    at,
                    Act::Cancel {
                        prospect,
                        n,
                        rescheduled: false,
                    },
                );
            }
        }
        Act::Cancel {
            prospect,
            n,
            rescheduled,
        } => {
            let (name, email) = contact(ctx, &prospect).await?;
            let body = serde_json::json!({
                "event": "invitee.canceled",
                "created_at": iso(now),
                "payload": {
                    "uri": invitee_uri(&prospect, n),
                    "email": email,
                    "name": name,
                    "status": "canceled",
                    "rescheduled": rescheduled,
                    "tracking": {"utm_campaign": prospect},
                    "scheduled_event": {"name": "Discovery call"}
                }
            });
            webhook(ctx, router, w, body).await?;
        }
        Act::CompleteTask { task } => {
            onboarding::complete_task(ctx, &task, now).await?;
        }
        Act::Pay { invoice } => {
            finance::record_payment(ctx, &invoice, now).await?;
        }
        Act::CancelClient { client } => {
            finance::cancel_client(ctx, &client, now).await?;
        }
    }
    Ok(())
}

async fn summarize(
    ctx: &Ctx,
    opts: &Options,
    jobs_run: u64,
    dead_letters: u64,
) -> anyhow::Result<Summary> {
    let pool = ctx.store.pool();
    let mut funnel = BTreeMap::new();
    let counts: [(&str, &str); 16] = [
        ("prospects_found", "SELECT COUNT(*) FROM prospects"),
        (
            "hot_leads",
            "SELECT COUNT(*) FROM prospects WHERE lead_class = 'hot'",
        ),
        (
            "warm_leads",
            "SELECT COUNT(*) FROM prospects WHERE lead_class = 'warm'",
        ),
        ("pitched", "SELECT COUNT(DISTINCT prospect_id) FROM pitches"),
        (
            "messages_recorded",
            "SELECT COUNT(*) FROM messages WHERE status = 'recorded'",
        ),
        (
            "messages_deferred_now",
            "SELECT COUNT(*) FROM messages WHERE status = 'deferred'",
        ),
        (
            "contacted",
            "SELECT COUNT(*) FROM events WHERE kind = 'contacted'",
        ),
        (
            "replied",
            "SELECT COUNT(*) FROM events WHERE kind = 'replied'",
        ),
        ("unsubscribed", "SELECT COUNT(*) FROM suppressions"),
        (
            "meetings_booked",
            "SELECT COUNT(*) FROM events WHERE kind = 'booked'",
        ),
        (
            "meetings_canceled",
            "SELECT COUNT(*) FROM events WHERE kind = 'canceled'",
        ),
        ("clients", "SELECT COUNT(*) FROM clients"),
        (
            "clients_live",
            "SELECT COUNT(*) FROM clients WHERE live_at IS NOT NULL",
        ),
        ("invoices", "SELECT COUNT(*) FROM invoices"),
        (
            "invoices_paid",
            "SELECT COUNT(*) FROM invoices WHERE paid_at IS NOT NULL",
        ),
        ("posts_scheduled", "SELECT COUNT(*) FROM posts"),
    ];
    for (name, sql) in counts {
        let (n,): (i64,) = sqlx::query_as(sql).fetch_one(pool).await?;
        funnel.insert(name.to_string(), n);
    }
    let m = finance::metrics(ctx, ctx.now()).await?;
    let (revenue,): (i64,) = sqlx::query_as(
        "SELECT CAST(COALESCE(SUM(amount_cents), 0) AS BIGINT) FROM transactions WHERE kind = 'revenue'",
    )
    .fetch_one(pool)
    .await?;
    funnel.insert("revenue_cents".into(), revenue);
    funnel.insert("mrr_cents".into(), m.mrr_cents);

    let rows: Vec<PhiRow> = sqlx::query_as(
        "SELECT computed_at, phi_sync, status, sales_health, operations_health, finance_health
               FROM coherence_metrics ORDER BY computed_at, id",
    )
    .fetch_all(pool)
    .await?;
    let phi_series: Vec<PhiPoint> = rows
        .into_iter()
        .map(|r| PhiPoint {
            at: cep_shared::clock::from_millis(r.computed_at)
                .format("%Y-%m-%d %H:%M")
                .to_string(),
            phi_sync: r.phi_sync,
            status: r.status,
            sales: r.sales_health,
            operations: r.operations_health,
            finance: r.finance_health,
        })
        .collect();
    let last: Option<(String,)> = sqlx::query_as(
        "SELECT details FROM coherence_metrics ORDER BY computed_at DESC, id LIMIT 1",
    )
    .fetch_optional(pool)
    .await?;
    let red_flags = match last {
        Some((d,)) => serde_json::from_str::<serde_json::Value>(&d)?["red_flags"]
            .as_array()
            .map(|a| {
                a.iter()
                    .filter_map(|v| v.as_str().map(String::from))
                    .collect()
            })
            .unwrap_or_default(),
        None => Vec::new(),
    };
    let changes: Vec<(String, String, String)> = sqlx::query_as(
        "SELECT name, after_value, reason FROM parameter_changes ORDER BY changed_at, id",
    )
    .fetch_all(pool)
    .await?;
    let (reports,): (i64,) = sqlx::query_as("SELECT COUNT(*) FROM reports")
        .fetch_one(pool)
        .await?;
    let final_point = phi_series.last();
    Ok(Summary {
        days: opts.days,
        seed: opts.seed,
        backend: ctx.queue.backend_name().into(),
        funnel,
        final_phi_sync: final_point.and_then(|p| p.phi_sync),
        final_status: final_point
            .map(|p| p.status.clone())
            .unwrap_or_else(|| "no data".into()),
        phi_series,
        red_flags,
        parameter_changes: changes
            .into_iter()
            .map(|(n, v, r)| format!("{n} → {v} ({r})"))
            .collect(),
        reports_dir: ctx.settings.data_dir.join("reports").display().to_string(),
        reports,
        jobs_run,
        dead_letters,
        webhooks_refused: 0,
    })
}

/// The summary as a person reads it.
pub fn render(s: &Summary) -> String {
    let mut out = format!(
        "CEP simulation: {} days, seed {}, {} backend\n\nFunnel\n",
        s.days, s.seed, s.backend
    );
    for (k, v) in &s.funnel {
        if k.ends_with("_cents") {
            out.push_str(&format!(
                "  {:<24} ${:.2}\n",
                k.trim_end_matches("_cents"),
                *v as f64 / 100.0
            ));
        } else {
            out.push_str(&format!("  {k:<24} {v}\n"));
        }
    }
    out.push_str(
        "\nΦ_sync by week: mean of the daily values with data (sales / operations / finance)\n",
    );
    let fmt = |v: Option<f64>| {
        v.map(|x| format!("{x:.3}"))
            .unwrap_or_else(|| "no data".into())
    };
    let mean = |xs: &[Option<f64>]| {
        let v: Vec<f64> = xs.iter().flatten().copied().collect();
        (!v.is_empty()).then(|| v.iter().sum::<f64>() / v.len() as f64)
    };
    let mut weeks: BTreeMap<String, Vec<&PhiPoint>> = BTreeMap::new();
    for p in &s.phi_series {
        let week = chrono::NaiveDateTime::parse_from_str(&p.at, "%Y-%m-%d %H:%M")
            .map(|t| {
                use chrono::Datelike;
                let w = t.iso_week();
                format!("{}-W{:02}", w.year(), w.week())
            })
            .unwrap_or_default();
        weeks.entry(week).or_default().push(p);
    }
    for (week, ps) in &weeks {
        let col =
            |f: fn(&PhiPoint) -> Option<f64>| mean(&ps.iter().map(|p| f(p)).collect::<Vec<_>>());
        out.push_str(&format!(
            "  {week}  Φ {:<8} {} / {} / {}\n",
            fmt(col(|p| p.phi_sync)),
            fmt(col(|p| p.sales)),
            fmt(col(|p| p.operations)),
            fmt(col(|p| p.finance))
        ));
    }
    out.push_str(&format!(
        "\nFinal Φ_sync {} — status {}\nRed flags: {}\n",
        fmt(s.final_phi_sync),
        s.final_status,
        if s.red_flags.is_empty() {
            "none".into()
        } else {
            s.red_flags.join("; ")
        }
    ));
    out.push_str(&format!(
        "Feedback-loop parameter changes: {}\n",
        if s.parameter_changes.is_empty() {
            "none".into()
        } else {
            s.parameter_changes.join("; ")
        }
    ));
    out.push_str(&format!(
        "Jobs run: {}, dead letters: {}\nReports: {} in {}\n",
        s.jobs_run, s.dead_letters, s.reports, s.reports_dir
    ));
    out
}
