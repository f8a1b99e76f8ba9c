//! Test helpers: a fresh database and a fresh Redis key prefix per test. A test that
//! cannot reach Postgres or Redis fails loudly; it never skips.

use cep_shared::jobs::{BookingJob, OnboardingJob, ProspectingJob};
use cep_shared::queue::{NewJob, QUEUE_FILE, Queue, QueueContext, RedisQueue, SqliteQueue};
use cep_shared::store::Store;
use cep_shared::{Clock, JobKind, Layer, Secrets, Settings};
use cep_workers::Ctx;

pub fn postgres_admin_url() -> String {
    std::env::var("TEST_DATABASE_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/postgres".into())
}

pub fn redis_url() -> String {
    std::env::var("TEST_REDIS_URL").unwrap_or_else(|_| "redis://127.0.0.1:6379".into())
}

pub fn unique(prefix: &str) -> String {
    format!("{prefix}_{}", cep_shared::queue::new_job_id())
}

/// A new, migrated Postgres database of its own.
pub async fn fresh_postgres() -> Store {
    fresh_postgres_with_url().await.1
}

/// A new, empty (unmigrated) Postgres database of its own: its URL.
pub async fn empty_postgres_url() -> String {
    let admin_url = postgres_admin_url();
    let admin = Store::connect(&admin_url)
        .await
        .unwrap_or_else(|e| panic!("tests need Postgres at {admin_url}: {e}"));
    let name = unique("cep_test");
    sqlx::query(sqlx::AssertSqlSafe(format!("CREATE DATABASE {name}")))
        .execute(admin.pool())
        .await
        .expect("create test database");
    let base = admin_url
        .rsplit_once('/')
        .map(|(b, _)| b.to_owned())
        .unwrap();
    format!("{base}/{name}")
}

/// A new, migrated Postgres database of its own, and its URL (for child processes).
pub async fn fresh_postgres_with_url() -> (String, Store) {
    let url = empty_postgres_url().await;
    let store = Store::connect(&url).await.expect("connect test database");
    store.migrate().await.expect("migrate");
    (url, store)
}

/// A new, migrated SQLite database in a temporary directory (kept alive by the guard).
pub async fn fresh_sqlite() -> (Store, TempDir) {
    let dir = TempDir::new();
    let url = format!("sqlite://{}?mode=rwc", dir.0.join("cep.db").display());
    let store = Store::connect(&url).await.expect("open sqlite");
    store.migrate().await.expect("migrate");
    (store, dir)
}

pub struct TempDir(pub std::path::PathBuf);

impl TempDir {
    pub fn new() -> Self {
        let p = std::env::temp_dir().join(unique("cep"));
        std::fs::create_dir_all(&p).unwrap();
        Self(p)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

pub fn qctx(settings: &Settings, clock: Clock) -> QueueContext {
    QueueContext {
        clock,
        settings: settings.queue.clone(),
        notify: Default::default(),
        paused: Default::default(),
    }
}

pub async fn redis_queue(settings: &Settings, clock: Clock) -> Queue {
    let url = redis_url();
    let q = RedisQueue::connect(&url, qctx(settings, clock))
        .await
        .unwrap_or_else(|e| panic!("tests need Redis at {url}: {e}"));
    Queue::Redis(q)
}

/// The embedded queue in `dir`, beside the store as `cep` keeps it.
pub async fn sqlite_queue(dir: &TempDir, settings: &Settings, clock: Clock) -> Queue {
    Queue::Sqlite(
        SqliteQueue::open(&dir.0.join(QUEUE_FILE), qctx(settings, clock))
            .await
            .unwrap(),
    )
}

/// [`settings`] with a 2 s orphan window: a heartbeat a second, two missed.
pub fn settings_with_short_orphan_window() -> Settings {
    let mut s = settings();
    s.queue.heartbeat_interval_seconds = 1;
    s.queue.missed_heartbeats = 2;
    s
}

/// A load of real layer work: one prospecting job per city × category for each day of
/// 2026 in `days` (counted from 1 January, 136 a day), keyed by day, city and category.
pub fn prospecting_load(days: std::ops::Range<u32>, max_prospects: u32) -> Vec<NewJob> {
    let mut jobs = Vec::new();
    let first = chrono::NaiveDate::from_ymd_opt(2026, 1, 1).expect("a date");
    for day in days {
        let date = first + chrono::Days::new(u64::from(day.saturating_sub(1)));
        let period = date.format("%Y-%m-%d").to_string();
        for (city, _) in cep_workers::layers::prospecting::directory::CITIES {
            for category in cep_workers::layers::prospecting::directory::CATEGORIES {
                let key = format!("prospecting:{period}:{city}:{category}");
                let job = ProspectingJob {
                    period: period.clone(),
                    location: city.into(),
                    category: category.into(),
                    max_prospects: Some(max_prospects),
                };
                jobs.push(NewJob::new(JobKind::Layer(Layer::Prospecting), &job, 0).key(key));
            }
        }
    }
    jobs
}

/// Settings for a test: its own Redis key prefix.
pub fn settings() -> Settings {
    let mut s = Settings::default();
    s.queue.key_prefix = unique("t");
    s
}

pub fn ctx(settings: Settings, store: Store, queue: Queue, clock: Clock) -> Ctx {
    ctx_with(settings, Secrets::default(), store, queue, clock)
}

pub fn ctx_with(
    settings: Settings,
    secrets: Secrets,
    store: Store,
    queue: Queue,
    clock: Clock,
) -> Ctx {
    Ctx::new(settings, secrets, store, queue, clock).expect("test settings are valid")
}

/// Which backends a test runs on.
#[derive(Debug, Clone, Copy)]
pub enum Backend {
    Embedded,
    Fleet,
}

pub struct Harness {
    pub ctx: Ctx,
    _dir: Option<TempDir>,
}

/// The key test harnesses sign booking links with.
pub const BOOKING_TEST_KEY: &str = "booking-test-key";

/// A Calendly `tracking` object as a booking link sent to `prospect` carries it.
pub fn signed_tracking(prospect: &str, pitch: &str) -> serde_json::Value {
    serde_json::json!({
        "utm_source": "cep", "utm_campaign": prospect, "utm_content": pitch,
        "utm_term": cep_workers::layers::outreach::booking_signature(BOOKING_TEST_KEY, prospect, pitch),
    })
}

/// A harness whose booking links are signed with [`BOOKING_TEST_KEY`].
pub async fn harness(backend: Backend, settings: Settings, clock: Clock) -> Harness {
    let secrets = Secrets {
        booking_link_key: Some(BOOKING_TEST_KEY.into()),
        ..Secrets::default()
    };
    harness_with(backend, settings, secrets, clock).await
}

pub async fn harness_with(
    backend: Backend,
    settings: Settings,
    secrets: Secrets,
    clock: Clock,
) -> Harness {
    let (store, queue, dir) = match backend {
        Backend::Embedded => {
            let (store, dir) = fresh_sqlite().await;
            let queue = sqlite_queue(&dir, &settings, clock.clone()).await;
            (store, queue, Some(dir))
        }
        Backend::Fleet => {
            let store = fresh_postgres().await;
            let queue = redis_queue(&settings, clock.clone()).await;
            (store, queue, None)
        }
    };
    Harness {
        ctx: ctx_with(settings, secrets, store, queue, clock),
        _dir: dir,
    }
}

/// Runs a worker for every queue until the queue is idle (bounded by a timeout).
pub async fn drain(ctx: &Ctx) -> u64 {
    let kinds: Vec<_> = cep_shared::JobKind::all().collect();
    let queues: Vec<&str> = kinds.iter().map(|k| k.queue()).collect();
    let (tx, rx) = tokio::sync::watch::channel(false);
    let worker = tokio::spawn(cep_workers::runtime::run(
        ctx.clone(),
        cep_workers::runtime::WorkerOptions {
            name: cep_shared::queue::worker_name("test"),
            kinds: kinds.clone(),
            concurrency: 8,
            work: Default::default(),
        },
        rx,
    ));
    let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(120);
    loop {
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        if ctx.queue.is_idle(&queues).await.unwrap() {
            // Idle twice in a row: no job was between fetch and settle.
            tokio::time::sleep(std::time::Duration::from_millis(50)).await;
            if ctx.queue.is_idle(&queues).await.unwrap() {
                break;
            }
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "queue did not drain in time"
        );
    }
    tx.send(true).unwrap();
    worker.await.unwrap().unwrap()
}

/// `cep` with these arguments on the embedded default, its data in `dir`, run from there.
pub fn cep_embedded(dir: &TempDir, args: &[&str]) -> std::process::Command {
    let mut cmd = std::process::Command::new(env!("CARGO_BIN_EXE_cep"));
    cmd.args(args)
        .env("CEP__DATA_DIR", &dir.0)
        .env_remove("REDIS_URL")
        .env_remove("DATABASE_URL")
        .current_dir(&dir.0);
    cmd
}

/// A loopback port free when asked.
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// Routers served over TCP as `cep serve` serves them (its connection limits and
/// timeouts apply), until [`Served::stop`].
pub struct Served {
    pub addrs: Vec<std::net::SocketAddr>,
    stop: tokio::sync::watch::Sender<bool>,
    task: tokio::task::JoinHandle<anyhow::Result<()>>,
}

impl Served {
    pub fn start(ctx: &Ctx, served: Vec<(axum::Router, tokio::net::TcpListener)>) -> Self {
        let addrs = served
            .iter()
            .map(|(_, l)| l.local_addr().unwrap())
            .collect();
        let (stop, rx) = tokio::sync::watch::channel(false);
        let task = tokio::spawn(cep_workers::http::ops::serve_on(ctx.clone(), served, rx));
        Self { addrs, stop, task }
    }

    /// The fleet's public and ops endpoints on one loopback port.
    pub async fn fleet(ctx: &Ctx) -> Self {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        Self::start(
            ctx,
            vec![(cep_workers::http::router(ctx.clone()), listener)],
        )
    }

    pub fn addr(&self) -> std::net::SocketAddr {
        self.addrs[0]
    }

    /// Shuts down and waits for a clean exit.
    pub async fn stop(self) {
        self.stop.send(true).unwrap();
        self.task.await.unwrap().unwrap();
    }
}

/// Serves `app` on a free loopback port (a local fake of an outside endpoint).
pub async fn serve_locally(app: axum::Router) -> u16 {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    tokio::spawn(async move { axum::serve(listener, app).await });
    port
}

/// Finds `n` Miami dentists (all hot or warm leads) with the prospecting layer; their ids.
pub async fn leads(ctx: &Ctx, n: u32) -> Vec<String> {
    let found = cep_workers::layers::prospecting::handle(
        ctx,
        cep_shared::jobs::ProspectingJob {
            period: "2026-01-05".into(),
            location: "Miami, FL".into(),
            category: "dental".into(),
            max_prospects: Some(n),
        },
    )
    .await
    .unwrap();
    let ids: Vec<String> = found
        .prospects
        .iter()
        .filter(|p| p.lead_class.qualifies())
        .map(|p| p.id.clone())
        .collect();
    assert_eq!(
        ids.len(),
        n as usize,
        "the first Miami dentists are all leads"
    );
    ids
}

/// One number from the store.
pub async fn scalar(ctx: &Ctx, sql: &str) -> i64 {
    let (n,): (i64,) = sqlx::query_as(sqlx::AssertSqlSafe(sql.to_owned()))
        .fetch_one(ctx.store.pool())
        .await
        .unwrap();
    n
}

/// Finds and pitches `n` Miami dentists; their ids.
pub async fn pitched(ctx: &Ctx, n: u32) -> Vec<String> {
    let ids = leads(ctx, n).await;
    for id in &ids {
        cep_workers::layers::pitch_generation::handle(
            ctx,
            cep_shared::jobs::PitchJob {
                prospect_id: id.clone(),
            },
        )
        .await
        .unwrap();
    }
    ids
}

/// Runs one outreach step of a prospect's sequence.
pub async fn send_step(
    ctx: &Ctx,
    prospect: &str,
    step: u32,
) -> Result<cep_workers::layers::outreach::OutreachResult, cep_workers::JobError> {
    cep_workers::layers::outreach::handle(
        ctx,
        cep_shared::jobs::OutreachWork::Step(cep_shared::jobs::OutreachJob {
            prospect_id: prospect.into(),
            step,
        }),
    )
    .await
}

/// Wednesday 2026-01-07 15:00 UTC: inside the send window of every directory city.
pub fn in_window() -> chrono::DateTime<chrono::Utc> {
    use chrono::TimeZone;
    chrono::Utc.with_ymd_and_hms(2026, 1, 7, 15, 0, 0).unwrap()
}

/// `ctx` with the test keys of the signed endpoints: Calendly's signing key, the
/// unsubscribe key and the inbound-mail token.
pub fn with_keys(ctx: &Ctx) -> Ctx {
    let mut secrets = (*ctx.secrets).clone();
    secrets.calendly_signing_key = Some("calendly-test-key".into());
    secrets.unsubscribe_key = Some("unsubscribe-test-key".into());
    secrets.inbound_token = Some("inbound-test-token".into());
    Ctx {
        secrets: std::sync::Arc::new(secrets),
        ..ctx.clone()
    }
}

/// A live dental client, `client_1` (Oak Dental), with no prospect behind it.
pub async fn a_client(ctx: &Ctx) {
    sqlx::query(
        "INSERT INTO clients (id, prospect_id, client_name, business_name, email, phone, business_type, billing_tier, state, gbp_score, started_at)
         VALUES ('client_1', NULL, 'Pat Owner', 'Oak Dental', 'pat@oak.example', NULL, 'dental', 'starter', 'live', 40, 0)",
    )
    .execute(ctx.store.pool())
    .await
    .unwrap();
}

/// A Calendly webhook body for `event` on invitee `uri`, booked through `prospect`'s
/// signed link; the meeting starts 2026-01-09 16:00 UTC.
pub fn calendly_body(event: &str, uri: &str, prospect: &str, rescheduled: bool) -> Vec<u8> {
    serde_json::to_vec(&serde_json::json!({
        "event": event,
        "payload": {
            "uri": uri, "email": "owner@example.com", "name": "Pat Owner",
            "rescheduled": rescheduled,
            "questions_and_answers": [{"question": "Topic", "answer": "a demo", "position": 0}],
            "tracking": signed_tracking(prospect, "pitch-link"),
            "scheduled_event": {"name": "Discovery", "start_time": "2026-01-09T16:00:00.000000Z"}
        }
    }))
    .unwrap()
}

/// The booking job a Calendly webhook body becomes.
pub fn booking_job(action: &str, uri: &str, prospect: &str, rescheduled: bool) -> BookingJob {
    let w: cep_workers::layers::booking::Webhook =
        serde_json::from_slice(&calendly_body(action, uri, prospect, rescheduled)).unwrap();
    w.into_job().unwrap()
}

/// Runs the onboarding job a booking chains, through the dispatcher.
pub async fn start_onboarding(ctx: &Ctx, meeting_id: &str) -> serde_json::Value {
    let job = OnboardingJob::Start {
        meeting_id: meeting_id.into(),
    };
    cep_workers::handle(
        ctx,
        JobKind::Layer(Layer::Onboarding),
        &serde_json::to_string(&job).unwrap(),
    )
    .await
    .unwrap()
}

/// When the meeting of [`calendly_body`] starts.
pub fn meeting_start() -> chrono::DateTime<chrono::Utc> {
    chrono::TimeZone::with_ymd_and_hms(&chrono::Utc, 2026, 1, 9, 16, 0, 0).unwrap()
}

/// A client won from `prospect`: booked through its signed link (invitee `uri`), the
/// meeting won at `tier` an hour after it starts (the clock moves there if it is
/// earlier), onboarding started. Returns the meeting's id.
pub async fn won_client(ctx: &Ctx, prospect: &str, uri: &str, tier: &str) -> String {
    use cep_workers::layers::booking::{self, Outcome, Reporter};
    let b = booking::handle(ctx, booking_job("invitee.created", uri, prospect, false))
        .await
        .unwrap();
    let after = meeting_start() + chrono::Duration::hours(1);
    if ctx.now() < after.timestamp_millis() {
        ctx.clock.set(after);
    }
    let won = Outcome::Won { tier: tier.into() };
    booking::outcome::record(ctx, &b.meeting_id, won, Reporter::Operator)
        .await
        .unwrap();
    let out = start_onboarding(ctx, &b.meeting_id).await;
    assert!(out["client_id"].is_string(), "{out}");
    b.meeting_id
}

/// A child process that dies with the test, even when the test fails.
pub struct KillOnDrop(pub std::process::Child);

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}
