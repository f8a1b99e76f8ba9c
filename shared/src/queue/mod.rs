//! The job queue: reliable fetch with leases, delayed jobs, deduplication keys,
//! max attempts and a dead-letter state, on SQLite (embedded) or Redis (fleet).
//!
//! Delivery is at least once: a job whose worker dies goes back to the queue after the
//! orphan window, so every handler must be idempotent. Due times are read from the
//! scheduling [`Clock`] (simulated in `cep simulate`); leases and heartbeats from the
//! wall clock.

pub mod admin;
mod cache;
mod limits;
mod redis;
mod sqlite;

pub use self::limits::{Budget, window_bounds};
pub use self::redis::RedisQueue;
pub use self::sqlite::{QUEUE_FILE, SqliteQueue};

use crate::clock::Clock;
use crate::config::QueueSettings;
use crate::layer::JobKind;
use serde::{Deserialize, Serialize};
use std::sync::Arc;
use tokio::sync::Notify;

#[derive(Debug, thiserror::Error)]
pub enum QueueError {
    #[error("redis: {0}")]
    Redis(#[from] ::redis::RedisError),
    #[error("queue database: {0}")]
    Sql(#[from] sqlx::Error),
    #[error("queue database: {0}")]
    Apalis(#[from] apalis_sqlite::Error),
    #[error("cannot connect to the queue at {target}: {reason}")]
    Connect { target: String, reason: String },
    #[error("queue holds a corrupt record: {0}")]
    Corrupt(String),
    /// What was given cannot be a job: enqueuing it again cannot help.
    #[error("refused: {0}")]
    Refused(String),
}

/// The most jobs one fetch leases: a Redis fetch moves its whole batch in one script,
/// and Lua unpacks at most a few thousand values at once.
pub const MAX_FETCH: usize = 1000;

/// A job to enqueue.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct NewJob {
    pub kind: JobKind,
    /// The payload as JSON text; workers decode it, so a malformed payload reaches a
    /// worker and is dead-lettered with its reason instead of vanishing.
    pub payload: String,
    /// Deduplication key: a second job with the same key, within the TTL, is dropped.
    pub key: Option<String>,
    /// Due time in milliseconds on the scheduling clock.
    pub run_at: i64,
    pub max_attempts: Option<u32>,
    /// W3C `traceparent` of the span that enqueued the job; filled in by
    /// [`Queue::push_many`] from the registered [`TraceContext`] when unset.
    #[serde(default)]
    pub trace: Option<String>,
}

impl NewJob {
    pub fn new(kind: JobKind, payload: &impl Serialize, run_at: i64) -> Self {
        Self {
            kind,
            payload: serde_json::to_string(payload).expect("job payloads serialize"),
            key: None,
            run_at,
            max_attempts: None,
            trace: None,
        }
    }

    /// A job of its own queue, keyed by its own key, due at `run_at`.
    pub fn of(job: &impl crate::jobs::Job, run_at: i64) -> Self {
        Self::new(job.kind(), job, run_at).key(job.key())
    }

    pub fn key(mut self, key: impl Into<String>) -> Self {
        self.key = Some(key.into());
        self
    }

    pub fn max_attempts(mut self, n: u32) -> Self {
        self.max_attempts = Some(n);
        self
    }
}

/// A job a worker holds a lease on.
#[derive(Debug, Clone, PartialEq)]
pub struct Leased {
    pub id: String,
    pub queue: String,
    pub payload: String,
    /// 1 on the first delivery.
    pub attempt: u32,
    pub max_attempts: u32,
    /// The enqueuer's `traceparent`, so the job's span continues its trace.
    pub trace: Option<String>,
    /// What the queue needs back to settle this lease: on Redis, the job's entry as it
    /// sits in the worker's in-flight list; empty on SQLite.
    pub receipt: String,
}

/// Reads the current span's trace context as a `traceparent`; registered once by the
/// binary when tracing export is on.
pub type TraceContext = fn() -> Option<String>;

static TRACE_CONTEXT: std::sync::OnceLock<TraceContext> = std::sync::OnceLock::new();

pub fn set_trace_context(f: TraceContext) {
    let _ = TRACE_CONTEXT.set(f);
}

fn current_trace() -> Option<String> {
    TRACE_CONTEXT.get().and_then(|f| f())
}

/// What an orphan recovery did: how many jobs of dead workers it took back, and which
/// of them it dead-lettered (they used up their attempts), so their failure can be
/// recorded where the error rates read it.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Recovered {
    pub jobs: usize,
    pub dead: Vec<Orphan>,
}

/// A job recovery dead-lettered.
#[derive(Debug, Clone, PartialEq)]
pub struct Orphan {
    pub id: String,
    pub queue: String,
    pub attempts: u32,
}

/// What `cep dead-letters` and `cep queues` call the entries set aside because no worker
/// can read them (on Redis: not UTF-8, not an entry, or of an unknown queue).
pub const UNREADABLE: &str = "unreadable";

/// Every queue the fleet has, by name.
pub fn known_queues() -> Vec<&'static str> {
    JobKind::all().map(|k| k.queue()).collect()
}

/// Whether `queue` names one of the fleet's queues.
pub fn is_known(queue: &str) -> bool {
    JobKind::all().any(|k| k.queue() == queue)
}

/// Why recovery dead-letters a job.
pub const DIED_EVERY_ATTEMPT: &str = "its worker stopped answering during every attempt";

/// How a leased job ends its attempt.
#[derive(Debug, Clone, PartialEq)]
pub enum Settle {
    Done,
    /// Run again at `run_at` (scheduling clock).
    Retry {
        run_at: i64,
        reason: String,
    },
    /// Give up: the job goes to the dead-letter state with its reason.
    Dead {
        reason: String,
    },
    /// Hand back without counting an attempt (a draining worker past its deadline, or a
    /// rate limit): due again at `run_at`.
    Release {
        run_at: i64,
    },
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct QueueStats {
    pub queue: String,
    /// Due now and waiting.
    pub ready: u64,
    /// Due later.
    pub scheduled: u64,
    pub running: u64,
    pub dead: u64,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DeadLetter {
    pub id: String,
    pub queue: String,
    pub payload: String,
    pub attempts: u32,
    pub reason: String,
}

#[derive(Debug, Clone)]
pub enum Queue {
    Sqlite(SqliteQueue),
    Redis(RedisQueue),
}

/// What every backend is given.
#[derive(Debug, Clone)]
pub struct QueueContext {
    pub clock: Clock,
    pub settings: QueueSettings,
    /// Wakes in-process workers when a job is enqueued.
    pub notify: Arc<Notify>,
    /// This process's last read of the paused queues.
    pub paused: admin::PausedCache,
}

macro_rules! delegate {
    ($self:ident, $q:ident => $e:expr) => {
        match $self {
            Queue::Sqlite($q) => $e,
            Queue::Redis($q) => $e,
        }
    };
}

impl Queue {
    fn ctx(&self) -> &QueueContext {
        delegate!(self, q => &q.ctx)
    }

    pub fn clock(&self) -> &Clock {
        &self.ctx().clock
    }

    pub fn settings(&self) -> &QueueSettings {
        &self.ctx().settings
    }

    pub fn notifier(&self) -> Arc<Notify> {
        self.ctx().notify.clone()
    }

    pub fn backend_name(&self) -> &'static str {
        match self {
            Queue::Sqlite(_) => "sqlite",
            Queue::Redis(_) => "redis",
        }
    }

    /// Enqueues one job; `false` when its key was already taken.
    pub async fn push(&self, job: NewJob) -> Result<bool, QueueError> {
        let added = self.push_many(vec![job]).await?;
        Ok(added == 1)
    }

    /// Enqueues jobs, returning how many were new.
    pub async fn push_many(&self, mut jobs: Vec<NewJob>) -> Result<usize, QueueError> {
        if jobs.is_empty() {
            return Ok(0);
        }
        let max = self.settings().max_payload_bytes;
        if let Some(big) = jobs.iter().find(|j| j.payload.len() > max) {
            return Err(QueueError::Refused(format!(
                "a {} job's payload is {} bytes, over queue.max_payload_bytes ({max})",
                big.kind.queue(),
                big.payload.len()
            )));
        }
        let trace = current_trace();
        let now = self.clock().now_millis();
        for j in &mut jobs {
            j.run_at = whole_second(j.run_at, now);
            if j.trace.is_none() {
                j.trace.clone_from(&trace);
            }
        }
        let added = delegate!(self, q => q.push_many(jobs).await)?;
        if added > 0 {
            self.ctx().notify.notify_waiters();
        }
        Ok(added)
    }

    /// Leases up to `limit` due jobs of `queues` for `worker` (at most [`MAX_FETCH`]),
    /// held: see [`Queue::start`].
    pub async fn fetch(
        &self,
        queues: &[&str],
        worker: &str,
        limit: usize,
    ) -> Result<Vec<Leased>, QueueError> {
        Ok(self.fetch_starting(queues, worker, limit, 0).await?.0)
    }

    /// Leases like [`Queue::fetch`] and starts the first `start` jobs at once (a worker
    /// with that many free slots): the jobs, the started ones first, and how many are.
    pub async fn fetch_starting(
        &self,
        queues: &[&str],
        worker: &str,
        limit: usize,
        start: usize,
    ) -> Result<(Vec<Leased>, usize), QueueError> {
        let limit = limit.min(MAX_FETCH);
        let queues = &self.unpaused(queues).await?;
        let (leased, started) = match self {
            // The embedded queue counts the attempt at fetch: every job is started.
            Queue::Sqlite(q) => {
                let jobs = q.fetch(queues, worker, limit).await?;
                let n = jobs.len();
                (jobs, n)
            }
            Queue::Redis(q) => q.fetch(queues, worker, limit, start.min(limit)).await?,
        };
        // Whatever got into the queue past its checks (another writer, an older build) is
        // dead-lettered saying why, never run.
        let (mut runnable, mut kept) = (Vec::with_capacity(leased.len()), 0);
        for (i, job) in leased.into_iter().enumerate() {
            match self.unrunnable(&job) {
                None => {
                    kept += usize::from(i < started);
                    runnable.push(job);
                }
                Some(reason) => {
                    tracing::warn!(job_id = %job.id, queue = %job.queue, %reason, "dead-lettered a job no worker should run");
                    self.settle(worker, &job, Settle::Dead { reason }).await?;
                }
            }
        }
        Ok((runnable, kept))
    }

    /// Marks leased jobs started, right before they run: from now on a worker that
    /// dies holding one has used one of its attempts (a job only held goes back as it
    /// was). For each job, whether it may run: `false` when its lease was lost meanwhile.
    /// The embedded queue counts the attempt at fetch, since its workers live and die
    /// with one process.
    pub async fn start(&self, worker: &str, jobs: &[&Leased]) -> Result<Vec<bool>, QueueError> {
        match self {
            Queue::Sqlite(_) => Ok(vec![true; jobs.len()]),
            Queue::Redis(q) => q.start(worker, jobs).await,
        }
    }

    /// Why a leased job must not run: past its attempt limit (or a limit of none), or a
    /// payload over the size limit.
    fn unrunnable(&self, job: &Leased) -> Option<String> {
        let max = self.settings().max_payload_bytes;
        if job.max_attempts == 0 || job.attempt > job.max_attempts {
            Some(format!(
                "attempt {} of at most {}: past its attempt limit",
                job.attempt, job.max_attempts
            ))
        } else if job.payload.len() > max {
            Some(format!(
                "payload of {} bytes is over queue.max_payload_bytes ({max})",
                job.payload.len()
            ))
        } else {
            None
        }
    }

    /// Ends an attempt. `false` when the worker no longer held the lease (its job was
    /// recovered as an orphan and will run again elsewhere).
    pub async fn settle(
        &self,
        worker: &str,
        job: &Leased,
        how: Settle,
    ) -> Result<bool, QueueError> {
        let requeued = matches!(how, Settle::Retry { .. } | Settle::Release { .. });
        let now = self.clock().now_millis();
        let how = match how {
            Settle::Retry { run_at, reason } => Settle::Retry {
                run_at: whole_second(run_at, now),
                reason,
            },
            Settle::Release { run_at } => Settle::Release {
                run_at: whole_second(run_at, now),
            },
            how => how,
        };
        let settled = delegate!(self, q => q.settle(worker, job, how).await)?;
        if settled && requeued {
            self.ctx().notify.notify_waiters();
        }
        Ok(settled)
    }

    /// Wakes this process's idle workers when another process makes jobs ready (Redis
    /// pub/sub); on SQLite the in-process notification is all there is.
    pub fn listen_for_wakeups(&self) {
        if let Queue::Redis(q) = self {
            q.listen_for_wakeups();
        }
    }

    /// Proves `worker` alive.
    pub async fn heartbeat(&self, worker: &str) -> Result<(), QueueError> {
        delegate!(self, q => q.heartbeat(worker).await)
    }

    /// Returns the jobs of workers silent for longer than the orphan window to their
    /// queues (or to the dead letters, when they used up their attempts).
    pub async fn recover_orphans(&self) -> Result<Recovered, QueueError> {
        delegate!(self, q => q.recover_orphans().await)
    }

    /// Every job the queue counts as leased to `worker`. A worker compares it with the
    /// jobs it knows it holds and hands back any it lost track of (a fetch whose answer
    /// never came, or a Redis that came back from its file a moment behind), so no
    /// lease outlives what its worker knows.
    pub async fn leased_to(&self, worker: &str) -> Result<Vec<Leased>, QueueError> {
        delegate!(self, q => q.leased_to(worker).await)
    }

    /// A worker leaving cleanly: it holds no job any more.
    pub async fn deregister(&self, worker: &str) -> Result<(), QueueError> {
        delegate!(self, q => q.deregister(worker).await)
    }

    pub async fn stats(&self, queues: &[&str]) -> Result<Vec<QueueStats>, QueueError> {
        delegate!(self, q => q.stats(queues).await)
    }

    /// Per queue, the due time of the longest-waiting job that is due now (`None` when
    /// nothing waits): its age is how far the queue is behind.
    pub async fn oldest_due(
        &self,
        queues: &[&str],
    ) -> Result<Vec<(String, Option<i64>)>, QueueError> {
        delegate!(self, q => q.oldest_due(queues).await)
    }

    /// A queue's dead letters, newest first; [`UNREADABLE`] lists the entries set aside
    /// because no worker can read them, each with why.
    pub async fn dead_letters(
        &self,
        queue: &str,
        limit: usize,
    ) -> Result<Vec<DeadLetter>, QueueError> {
        delegate!(self, q => q.dead_letters(queue, limit).await)
    }

    /// What the queue holds outside the fleet's queues: jobs under queue names no worker
    /// serves (written past the queue's checks, by another writer or an older build) and,
    /// as [`UNREADABLE`], the entries set aside; only those that hold something. Scans
    /// the keyspace on Redis, so it is for operators' commands, not for sampling.
    pub async fn strays(&self) -> Result<Vec<QueueStats>, QueueError> {
        delegate!(self, q => q.strays().await)
    }

    /// True when nothing of `queues` is due now or running: the simulation advances its
    /// clock only then.
    pub async fn is_idle(&self, queues: &[&str]) -> Result<bool, QueueError> {
        let stats = self.stats(queues).await?;
        Ok(stats.iter().all(|s| s.ready == 0 && s.running == 0))
    }

    /// The due time of the earliest scheduled job, if any.
    pub async fn next_due(&self, queues: &[&str]) -> Result<Option<i64>, QueueError> {
        delegate!(self, q => q.next_due(queues).await)
    }

    /// Retry delay after `attempt` failed: exponential from the base, capped.
    pub fn backoff_millis(&self, attempt: u32) -> i64 {
        backoff_millis(self.settings(), attempt)
    }
}

/// Due times are whole seconds on every backend (apalis-sqlite keeps `run_at` in
/// seconds, and both backends must make the same choices in `cep simulate`): a job due
/// now stays due now, and a later one is never early.
pub(super) fn whole_second(run_at: i64, now: i64) -> i64 {
    if run_at <= now {
        run_at.div_euclid(1000) * 1000
    } else {
        (run_at + 999).div_euclid(1000) * 1000
    }
}

pub fn backoff_millis(settings: &QueueSettings, attempt: u32) -> i64 {
    let exp = attempt.saturating_sub(1).min(20);
    let secs = settings
        .backoff_base_seconds
        .saturating_mul(1u64 << exp)
        .min(settings.backoff_max_seconds);
    (secs * 1000) as i64
}

/// A unique worker name per process start, never reused (reused names defeat orphan
/// recovery).
pub fn worker_name(role: &str) -> String {
    let host = std::env::var("HOSTNAME")
        .ok()
        .filter(|h| !h.is_empty())
        .unwrap_or_else(|| "local".into());
    format!("{role}-{host}-{}-{}", std::process::id(), new_job_id())
}

/// Job ids: time-ordered and unique across processes.
pub fn new_job_id() -> String {
    use std::sync::atomic::{AtomicU64, Ordering};
    static SEQ: AtomicU64 = AtomicU64::new(0);
    let n = SEQ.fetch_add(1, Ordering::Relaxed);
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or_default();
    let salt = crate::ids::stable_hash(&[&std::process::id().to_string(), &nanos.to_string()]);
    format!(
        "{:012x}{:06x}{:08x}",
        nanos / 1_000_000,
        n & 0xff_ffff,
        salt as u32
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_from_the_base_and_stops_at_the_cap() {
        let s = QueueSettings {
            backoff_base_seconds: 10,
            backoff_max_seconds: 60,
            ..QueueSettings::default()
        };
        assert_eq!(backoff_millis(&s, 1), 10_000);
        assert_eq!(backoff_millis(&s, 2), 20_000);
        assert_eq!(backoff_millis(&s, 3), 40_000);
        assert_eq!(backoff_millis(&s, 4), 60_000);
        assert_eq!(backoff_millis(&s, 40), 60_000);
    }

    #[test]
    fn due_times_round_to_whole_seconds_without_changing_what_is_due() {
        let now = 10_500;
        assert_eq!(whole_second(10_500, now), 10_000, "due now stays due");
        assert_eq!(whole_second(9_999, now), 9_000);
        assert_eq!(whole_second(10_501, now), 11_000, "later is never early");
        assert_eq!(whole_second(11_000, now), 11_000);
        assert_eq!(whole_second(-1, now), -1_000);
    }

    #[test]
    fn job_ids_and_worker_names_are_unique() {
        let ids: std::collections::HashSet<_> = (0..10_000).map(|_| new_job_id()).collect();
        assert_eq!(ids.len(), 10_000);
        assert_ne!(worker_name("w"), worker_name("w"));
    }
}
