//! Errors decide retries: one exhaustive match maps each to retry, retry-after or dead
//! letter.

use cep_shared::queue::QueueError;
use cep_shared::store::StoreError;
use std::time::Duration;

#[derive(Debug, thiserror::Error)]
pub enum JobError {
    /// The payload does not decode: retrying cannot help.
    #[error("malformed payload: {0}")]
    Malformed(String),
    /// The input decodes but is unusable (unknown client, unknown tier, …).
    #[error("invalid input: {0}")]
    Invalid(String),
    /// A dependency is down or busy; try again with backoff.
    #[error("transient failure: {0}")]
    Transient(String),
    /// A call went out and no answer came back (a timeout, a connection lost mid-way):
    /// try again with backoff, but the call may have been carried out.
    #[error("transient failure: {0}")]
    Unanswered(String),
    /// Not now: a cap, a send window or a rate limit opens later.
    #[error("deferred: {reason}")]
    Deferred { until: i64, reason: String },
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Queue(#[from] QueueError),
}

impl From<sqlx::Error> for JobError {
    fn from(e: sqlx::Error) -> Self {
        JobError::Store(StoreError::Sql(e))
    }
}

/// Whether the database refused a value as data (Postgres class 22: a NUL byte, an
/// invalid encoding, a number out of range): the same write fails the same way again.
fn refused_as_data(e: &StoreError) -> bool {
    matches!(e, StoreError::Sql(sqlx::Error::Database(d))
        if d.code().is_some_and(|c| c.starts_with("22")))
}

/// Whether the store could not be reached or was busy: the connection failed or was
/// cut, the pool had none to give, Postgres was shutting down or refused connections, or
/// SQLite was busy or locked. The job did nothing wrong; it waits for the store.
fn store_unavailable(e: &StoreError) -> bool {
    match e {
        StoreError::Connect { .. } => true,
        StoreError::Sql(e) => match e {
            sqlx::Error::Io(_)
            | sqlx::Error::Tls(_)
            | sqlx::Error::PoolTimedOut
            | sqlx::Error::PoolClosed => true,
            sqlx::Error::Database(d) => d.code().is_some_and(|c| unavailable_code(&c)),
            _ => false,
        },
        _ => false,
    }
}

/// Postgres SQLSTATEs (five characters) of a lost or refused connection: class 08,
/// `57P01`–`57P03` (shut down, crash, cannot connect now) and `53300` (too many
/// connections); SQLite's result codes (numbers) of the busy and locked families.
fn unavailable_code(code: &str) -> bool {
    if code.len() == 5 {
        return code.starts_with("08") || matches!(code, "57P01" | "57P02" | "57P03" | "53300");
    }
    code.parse::<u32>().is_ok_and(|n| matches!(n & 0xff, 5 | 6))
}

impl From<serde_json::Error> for JobError {
    fn from(e: serde_json::Error) -> Self {
        JobError::Invalid(format!("stored JSON does not decode: {e}"))
    }
}

/// What the runtime does with a failed attempt.
#[derive(Debug, Clone, PartialEq)]
pub enum Disposition {
    Retry,
    RetryAt(i64),
    /// The store is unavailable: run again after the backoff without using an attempt,
    /// so an outage of any length ends no job.
    Wait,
    Abort,
}

impl JobError {
    pub fn disposition(&self) -> Disposition {
        match self {
            JobError::Malformed(_) | JobError::Invalid(_) => Disposition::Abort,
            JobError::Store(e) if refused_as_data(e) => Disposition::Abort,
            JobError::Store(e) if store_unavailable(e) => Disposition::Wait,
            JobError::Queue(QueueError::Refused(_)) => Disposition::Abort,
            JobError::Transient(_)
            | JobError::Unanswered(_)
            | JobError::Store(_)
            | JobError::Queue(_) => Disposition::Retry,
            JobError::Deferred { until, .. } => Disposition::RetryAt(*until),
        }
    }

    /// Whether the failed work may still have been carried out: a call that went out
    /// and got no answer. A refused connection or any HTTP answer means it was not.
    pub fn may_have_run(&self) -> bool {
        matches!(self, JobError::Unanswered(_))
    }

    pub fn deferred(until: i64, reason: impl Into<String>) -> Self {
        JobError::Deferred {
            until,
            reason: reason.into(),
        }
    }
}

/// A handler that overruns its timeout is retried: it may have been slowed by load.
pub fn timed_out(after: Duration) -> JobError {
    JobError::Transient(format!("timed out after {} s", after.as_secs()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_a_call_left_without_an_answer_may_have_run_and_every_failure_keeps_its_fate() {
        let unanswered = JobError::Unanswered("gbp: no answer within 20 s".into());
        assert!(unanswered.may_have_run());
        assert_eq!(unanswered.disposition(), Disposition::Retry);
        assert_eq!(
            unanswered.to_string(),
            "transient failure: gbp: no answer within 20 s"
        );
        assert!(!JobError::Transient("gbp: cannot connect".into()).may_have_run());
        assert!(!JobError::Invalid("gbp: no answer".into()).may_have_run());
        assert_eq!(
            JobError::Invalid("x".into()).disposition(),
            Disposition::Abort
        );
        assert_eq!(
            JobError::deferred(5, "window").disposition(),
            Disposition::RetryAt(5)
        );
    }

    #[test]
    fn a_store_that_cannot_be_reached_or_is_busy_makes_jobs_wait_not_fail() {
        let waits = |e: sqlx::Error| JobError::Store(StoreError::Sql(e)).disposition();
        assert_eq!(waits(sqlx::Error::PoolTimedOut), Disposition::Wait);
        let refused = std::io::Error::from(std::io::ErrorKind::ConnectionRefused);
        assert_eq!(waits(sqlx::Error::Io(refused)), Disposition::Wait);
        assert_eq!(waits(sqlx::Error::RowNotFound), Disposition::Retry);
        for code in ["08006", "57P01", "57P03", "53300", "5", "517", "6", "262"] {
            assert!(unavailable_code(code), "{code}");
        }
        for code in ["23505", "22021", "40001", "1", "19", "2067"] {
            assert!(!unavailable_code(code), "{code}");
        }
    }
}
