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
    Abort,
}

impl JobError {
    pub fn disposition(&self) -> Disposition {
        match self {
            JobError::Malformed(_) | JobError::Invalid(_) => Disposition::Abort,
            JobError::Transient(_) | JobError::Store(_) | JobError::Queue(_) => Disposition::Retry,
            JobError::Deferred { until, .. } => Disposition::RetryAt(*until),
        }
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
