//! What an operator does to queued jobs (the console's Fleet page): dead letters retried
//! — due now with a fresh set of attempts — or discarded, one by id or every one whose
//! payload or reason holds a filter text; a queue paused and resumed fleet-wide, so no
//! worker in any process fetches from it meanwhile.
//!
//! Workers read which queues are paused at most once every [`PAUSED_FRESH`] per process,
//! so a pause reaches every worker within that; one already running finishes.

use super::{Queue, QueueError, UNREADABLE, is_known};

/// The most workers listed.
pub const MAX_WORKERS: usize = 500;
use std::collections::BTreeSet;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// The most dead letters one action takes.
pub const MAX_PICKED: usize = 10_000;
/// How long a process trusts its last read of the paused queues.
pub const PAUSED_FRESH: Duration = Duration::from_secs(1);

/// Which dead letters an action takes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Pick<'a> {
    /// The one with this job id.
    Id(&'a str),
    /// Every one whose payload or reason holds this text; every one when it is empty.
    Matching(&'a str),
}

impl Pick<'_> {
    pub(super) fn takes(&self, id: &str, payload: &str, reason: &str) -> bool {
        match self {
            Pick::Id(want) => id == *want,
            Pick::Matching(text) => payload.contains(text) || reason.contains(text),
        }
    }
}

/// The paused queues as read, and when.
type Read = (Instant, BTreeSet<String>);

/// A worker the queue has heard from: its name, when last (wall-clock ms), and how
/// many jobs it holds now.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct WorkerSeen {
    pub name: String,
    pub last_seen: i64,
    pub in_flight: u64,
}

/// A job found by [`Queue::find`]: where it is and what it carries.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct Found {
    pub id: String,
    pub queue: String,
    /// `ready`, `scheduled`, `running` or `dead`.
    pub state: &'static str,
    pub attempts: u32,
    pub payload: String,
}

/// The most jobs a search answers, and the most entries it reads.
pub const MAX_FOUND: usize = 50;
pub const MAX_SCANNED: usize = 200_000;

/// What a search found; `complete` is false when it stopped at [`MAX_SCANNED`] entries.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct Search {
    pub found: Vec<Found>,
    pub complete: bool,
}

/// A process's last read of the paused queues.
#[derive(Debug, Clone, Default)]
pub struct PausedCache(Arc<Mutex<Option<Read>>>);

impl PausedCache {
    fn fresh(&self) -> Option<BTreeSet<String>> {
        let g = self.0.lock().unwrap_or_else(|e| e.into_inner());
        g.as_ref()
            .filter(|(at, _)| at.elapsed() < PAUSED_FRESH)
            .map(|(_, set)| set.clone())
    }

    fn store(&self, set: BTreeSet<String>) {
        *self.0.lock().unwrap_or_else(|e| e.into_inner()) = Some((Instant::now(), set));
    }

    fn forget(&self) {
        *self.0.lock().unwrap_or_else(|e| e.into_inner()) = None;
    }
}

fn runnable(queue: &str) -> Result<(), QueueError> {
    if is_known(queue) {
        Ok(())
    } else {
        Err(QueueError::Refused(format!(
            "`{queue}` is not a queue any worker serves: its jobs cannot be retried, only discarded"
        )))
    }
}

impl Queue {
    /// Moves the picked dead letters of `queue` back to ready, due now, with their
    /// attempts counted afresh; how many moved.
    pub async fn retry_dead(&self, queue: &str, pick: Pick<'_>) -> Result<usize, QueueError> {
        runnable(queue)?;
        let moved = match self {
            Queue::Sqlite(q) => q.retry_dead(queue, pick).await?,
            Queue::Redis(q) => q.move_dead(queue, pick, true).await?,
        };
        if moved > 0 {
            self.ctx().notify.notify_waiters();
        }
        Ok(moved)
    }

    /// Deletes the picked dead letters of `queue` (any queue the fleet shows, the
    /// unreadable entries included); how many went.
    pub async fn discard_dead(&self, queue: &str, pick: Pick<'_>) -> Result<usize, QueueError> {
        if queue == UNREADABLE && matches!(pick, Pick::Id(_)) {
            return Err(QueueError::Refused(
                "unreadable entries have no id: discard them by a text they hold".into(),
            ));
        }
        match self {
            Queue::Sqlite(q) => q.discard_dead(queue, pick).await,
            Queue::Redis(q) => q.move_dead(queue, pick, false).await,
        }
    }

    /// Stops every worker fetching from `queue`; `false` when it was paused already.
    pub async fn pause(&self, queue: &str) -> Result<bool, QueueError> {
        runnable(queue)?;
        let changed = match self {
            Queue::Sqlite(q) => q.set_paused(queue, true).await?,
            Queue::Redis(q) => q.set_paused(queue, true).await?,
        };
        self.ctx().paused.forget();
        Ok(changed)
    }

    /// Lets workers fetch from `queue` again; `false` when it was not paused.
    pub async fn resume(&self, queue: &str) -> Result<bool, QueueError> {
        runnable(queue)?;
        let changed = match self {
            Queue::Sqlite(q) => q.set_paused(queue, false).await?,
            Queue::Redis(q) => q.set_paused(queue, false).await?,
        };
        self.ctx().paused.forget();
        if changed {
            self.ctx().notify.notify_waiters();
        }
        Ok(changed)
    }

    /// The jobs whose id is `text` or whose payload holds it (a field's value, say),
    /// waiting, running or dead; at most [`MAX_FOUND`].
    pub async fn find(&self, text: &str) -> Result<Search, QueueError> {
        if text.is_empty() {
            return Err(QueueError::Refused(
                "say what to look for: a job id or a text of its payload".into(),
            ));
        }
        match self {
            Queue::Sqlite(q) => q.find(text).await,
            Queue::Redis(q) => q.find(text).await,
        }
    }

    /// Every worker registered, newest heartbeat first (at most 500).
    pub async fn workers(&self) -> Result<Vec<WorkerSeen>, QueueError> {
        match self {
            Queue::Sqlite(q) => q.workers().await,
            Queue::Redis(q) => q.workers().await,
        }
    }

    /// The paused queues, as the store holds them now.
    pub async fn paused(&self) -> Result<BTreeSet<String>, QueueError> {
        let set = match self {
            Queue::Sqlite(q) => q.paused().await?,
            Queue::Redis(q) => q.paused().await?,
        };
        self.ctx().paused.store(set.clone());
        Ok(set)
    }

    /// `queues` without the paused ones, read at most once per [`PAUSED_FRESH`].
    pub(super) async fn unpaused<'a>(
        &self,
        queues: &[&'a str],
    ) -> Result<Vec<&'a str>, QueueError> {
        let paused = match self.ctx().paused.fresh() {
            Some(set) => set,
            None => self.paused().await?,
        };
        Ok(queues
            .iter()
            .copied()
            .filter(|q| !paused.contains(*q))
            .collect())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_pick_takes_its_id_or_what_holds_its_text() {
        assert!(Pick::Id("j1").takes("j1", "{}", ""));
        assert!(!Pick::Id("j1").takes("j10", "{}", ""));
        assert!(Pick::Matching("miami").takes("j", r#"{"location":"miami"}"#, ""));
        assert!(Pick::Matching("timeout").takes("j", "{}", "a timeout"));
        assert!(!Pick::Matching("austin").takes("j", r#"{"location":"miami"}"#, "x"));
        assert!(Pick::Matching("").takes("j", "{}", ""));
    }
}
