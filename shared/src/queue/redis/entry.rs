//! A job's one string in Redis, its entry: written on enqueue, moved whole between
//! lists, read back on fetch.

use super::super::{Leased, QueueError};

/// A job as Redis holds it: `v1|<ended>|<max>|<due>|<queue>|<id>|<trace>|<payload>`,
/// where `ended` counts deliveries that ended before this one (a retry, or a worker
/// that died holding it) and `due` is its due time on the scheduling clock. The
/// payload comes last, so it may hold any character.
#[derive(Debug, Clone, PartialEq)]
pub(super) struct Entry<'a> {
    pub(super) ended: u32,
    pub(super) max: u32,
    pub(super) due: i64,
    pub(super) queue: &'a str,
    pub(super) id: &'a str,
    pub(super) trace: &'a str,
    pub(super) payload: &'a str,
}

impl<'a> Entry<'a> {
    pub(super) fn encode(&self) -> String {
        format!(
            "v1|{}|{}|{}|{}|{}|{}|{}",
            self.ended, self.max, self.due, self.queue, self.id, self.trace, self.payload
        )
    }

    pub(super) fn decode(raw: &'a str) -> Result<Self, QueueError> {
        let bad = || QueueError::Corrupt(format!("not a job entry: {:.80}", raw));
        let mut f = raw.splitn(8, '|');
        if f.next() != Some("v1") {
            return Err(bad());
        }
        let mut next = || f.next().ok_or_else(bad);
        Ok(Self {
            ended: next()?.parse().map_err(|_| bad())?,
            max: next()?.parse().map_err(|_| bad())?,
            due: next()?.parse().map_err(|_| bad())?,
            queue: next()?,
            id: next()?,
            trace: next()?,
            payload: next()?,
        })
    }

    /// The entry, when its queue is one the fleet has.
    pub(super) fn known(self) -> Result<Self, QueueError> {
        if super::super::is_known(self.queue) {
            Ok(self)
        } else {
            Err(QueueError::Corrupt(format!(
                "an entry of an unknown queue `{:.40}`",
                self.queue
            )))
        }
    }

    /// Why bytes are no job a worker can run; `None` when they are one.
    pub(super) fn why_unreadable(raw: &[u8]) -> Option<QueueError> {
        match std::str::from_utf8(raw) {
            Err(e) => Some(not_utf8(e)),
            Ok(text) => Entry::decode(text).and_then(Entry::known).err(),
        }
    }

    /// `job` written back after `ended` deliveries, due at `due`.
    pub(super) fn of(job: &'a Leased, ended: u32, due: i64) -> Self {
        Self {
            ended,
            max: job.max_attempts,
            due,
            queue: &job.queue,
            id: &job.id,
            trace: job.trace.as_deref().unwrap_or_default(),
            payload: &job.payload,
        }
    }

    /// The job an entry holds, leased; the raw bytes back, with why, when no worker can
    /// read it (not UTF-8, not an entry, or of a queue the fleet does not know).
    pub(super) fn lease(raw: Vec<u8>) -> Result<Leased, (Vec<u8>, QueueError)> {
        let raw = match String::from_utf8(raw) {
            Ok(raw) => raw,
            Err(e) => {
                let why = not_utf8(e.utf8_error());
                return Err((e.into_bytes(), why));
            }
        };
        let mut job = match Entry::decode(&raw).and_then(Entry::known) {
            Ok(e) => Leased {
                id: e.id.to_owned(),
                queue: e.queue.to_owned(),
                payload: e.payload.to_owned(),
                attempt: e.ended + 1,
                max_attempts: e.max,
                trace: Some(e.trace.to_owned()).filter(|t| !t.is_empty()),
                receipt: String::new(),
            },
            Err(e) => return Err((raw.into_bytes(), e)),
        };
        job.receipt = raw;
        Ok(job)
    }
}

/// Why bytes are no entry: they are not UTF-8 text.
pub(super) fn not_utf8(e: std::str::Utf8Error) -> QueueError {
    QueueError::Corrupt(format!("an entry that is not UTF-8: {e}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_entry_reads_back_what_was_written_and_its_payload_may_hold_separators() {
        let e = Entry {
            ended: 2,
            max: 5,
            due: -1,
            queue: "outreach",
            id: "0193abc",
            trace: "",
            payload: r#"{"note":"a|b|c"}"#,
        };
        let raw = e.encode();
        assert_eq!(Entry::decode(&raw).unwrap(), e);
        let job = Entry::lease(raw.clone().into_bytes()).unwrap();
        assert_eq!(
            (job.attempt, job.trace.as_deref(), job.payload.as_str()),
            (3, None, e.payload)
        );
        assert_eq!(job.receipt, raw);
        let retried = Entry::of(&job, job.attempt, 7).encode();
        assert_eq!(retried, raw.replacen("|2|5|-1|", "|3|5|7|", 1));
    }

    #[test]
    fn bytes_that_are_not_utf8_come_back_whole_with_why() {
        let raw = b"v1|0|5|0|outreach|id||\xff\xfe{}".to_vec();
        let (back, why) = Entry::lease(raw.clone()).unwrap_err();
        assert_eq!(back, raw);
        assert!(why.to_string().contains("not UTF-8"), "{why}");
    }

    #[test]
    fn an_entry_of_an_unknown_queue_is_refused_naming_it() {
        let raw = b"v1|0|5|0|outreach2|id||{}".to_vec();
        let (_, why) = Entry::lease(raw).unwrap_err();
        assert!(
            why.to_string().contains("unknown queue `outreach2`"),
            "{why}"
        );
    }

    #[test]
    fn a_bare_id_or_a_torn_entry_is_refused_by_name() {
        for raw in ["0193abc", "v1|x|5|0|q|id||{}", "v1|1|5|0|q"] {
            let err = Entry::decode(raw).unwrap_err().to_string();
            assert!(err.contains("not a job entry"), "{raw}: {err}");
        }
    }
}
