//! What the Redis queue shows without changing anything: counts per queue, dead letters,
//! strays under unknown names, and due times.

use super::RedisQueue;
use super::entry::{self, Entry};
use crate::queue::{DeadLetter, QueueError, QueueStats, UNREADABLE, is_known};
use ::redis::AsyncCommands;

impl RedisQueue {
    pub(in crate::queue) async fn stats(
        &self,
        queues: &[&str],
    ) -> Result<Vec<QueueStats>, QueueError> {
        if queues.is_empty() {
            return Ok(Vec::new());
        }
        let now = self.ctx.clock.now_millis();
        let mut conn = self.conn.clone();
        // Running jobs: every live worker's in-flight list, read in one pipelined round
        // trip (Redis refuses an empty pipeline, hence the guard).
        let workers: Vec<String> = conn.zrange(self.key(&["workers"]), 0, -1).await?;
        let mut running: Vec<String> = Vec::new();
        if !workers.is_empty() {
            let mut pipe = ::redis::pipe();
            for w in &workers {
                pipe.lrange(self.key(&["held", w]), 0, -1);
                pipe.lrange(self.key(&["inflight", w]), 0, -1);
            }
            let lists: Vec<Vec<Vec<u8>>> = pipe.query_async(&mut conn).await?;
            running = lists
                .into_iter()
                .flatten()
                .map(|raw| String::from_utf8_lossy(&raw).into_owned())
                .collect();
        }
        let running_in = |q: &str| {
            running
                .iter()
                .filter(|raw| Entry::decode(raw).is_ok_and(|e| e.queue == q))
                .count() as u64
        };
        let mut pipe = ::redis::pipe();
        for q in queues {
            pipe.llen(self.key(&["ready", q]))
                .zcount(self.key(&["delayed", q]), "-inf", now)
                .zcount(self.key(&["delayed", q]), format!("({now}"), "+inf")
                .llen(self.key(&["dead", q]));
        }
        let counts: Vec<u64> = pipe.query_async(&mut conn).await?;
        Ok(queues
            .iter()
            .zip(counts.chunks(4))
            .map(|(q, c)| QueueStats {
                queue: (*q).to_owned(),
                ready: c[0] + c[1],
                scheduled: c[2],
                running: running_in(q),
                dead: c[3],
            })
            .collect())
    }

    pub(in crate::queue) async fn dead_letters(
        &self,
        queue: &str,
        limit: usize,
    ) -> Result<Vec<DeadLetter>, QueueError> {
        let mut conn = self.conn.clone();
        let list = if queue == UNREADABLE {
            self.key(&[UNREADABLE])
        } else {
            self.key(&["dead", queue])
        };
        let raws: Vec<Vec<u8>> = conn
            .lrange(list, 0, limit.saturating_sub(1) as isize)
            .await?;
        if queue == UNREADABLE {
            return Ok(raws
                .iter()
                .map(|raw| unreadable(queue, raw, Entry::why_unreadable(raw)))
                .collect());
        }
        let entries: Vec<Result<Entry<'_>, QueueError>> = raws
            .iter()
            .map(|raw| {
                std::str::from_utf8(raw)
                    .map_err(entry::not_utf8)
                    .and_then(Entry::decode)
            })
            .collect();
        let ids: Vec<&str> = entries.iter().flatten().map(|e| e.id).collect();
        let mut reasons: Vec<Option<String>> = Vec::new();
        if !ids.is_empty() {
            reasons = ::redis::cmd("HMGET")
                .arg(self.key(&["reasons"]))
                .arg(&ids)
                .query_async(&mut conn)
                .await?;
        }
        let mut reasons = reasons.into_iter();
        // An entry no worker can read is shown as it is, with why, never an error.
        Ok(entries
            .into_iter()
            .zip(&raws)
            .map(|(entry, raw)| match entry {
                Ok(e) => DeadLetter {
                    id: e.id.to_owned(),
                    queue: queue.to_owned(),
                    payload: e.payload.to_owned(),
                    attempts: e.ended,
                    reason: reasons.next().flatten().unwrap_or_default(),
                },
                Err(why) => unreadable(queue, raw, Some(why)),
            })
            .collect())
    }

    /// Queues under this prefix the fleet does not know, found by scanning the keyspace,
    /// and the unreadable entries set aside.
    pub(in crate::queue) async fn strays(&self) -> Result<Vec<QueueStats>, QueueError> {
        let mut names = std::collections::BTreeSet::new();
        for list in ["ready", "delayed", "dead"] {
            let from = self.key(&[list, ""]);
            for key in self.scan(&format!("{from}*")).await? {
                if let Some(name) = key.strip_prefix(&from)
                    && !is_known(name)
                {
                    names.insert(name.to_owned());
                }
            }
        }
        let names: Vec<&str> = names.iter().map(String::as_str).collect();
        let mut out = self.stats(&names).await?;
        let mut conn = self.conn.clone();
        let set_aside: u64 = conn.llen(self.key(&[UNREADABLE])).await?;
        if set_aside > 0 {
            out.push(QueueStats {
                queue: UNREADABLE.into(),
                ready: 0,
                scheduled: 0,
                running: 0,
                dead: set_aside,
            });
        }
        Ok(out)
    }

    /// Every key matching `pattern`, by `SCAN`.
    pub(super) async fn scan(&self, pattern: &str) -> Result<Vec<String>, QueueError> {
        let mut conn = self.conn.clone();
        let mut out = Vec::new();
        let mut cursor: u64 = 0;
        loop {
            let (next, keys): (u64, Vec<String>) = ::redis::cmd("SCAN")
                .arg(cursor)
                .arg("MATCH")
                .arg(pattern)
                .arg("COUNT")
                .arg(1000)
                .query_async(&mut conn)
                .await?;
            out.extend(keys);
            if next == 0 {
                return Ok(out);
            }
            cursor = next;
        }
    }

    pub(in crate::queue) async fn next_due(
        &self,
        queues: &[&str],
    ) -> Result<Option<i64>, QueueError> {
        let mut conn = self.conn.clone();
        let mut best: Option<i64> = None;
        for q in queues {
            let first: Vec<(Vec<u8>, f64)> = conn
                .zrange_withscores(self.key(&["delayed", q]), 0, 0)
                .await?;
            if let Some((_, score)) = first.first() {
                let s = *score as i64;
                best = Some(best.map_or(s, |b| b.min(s)));
            }
        }
        Ok(best)
    }

    /// The due time of each queue's longest-waiting job that is due now: the next one
    /// to be fetched from its ready list, or a due delayed job not yet promoted.
    pub(in crate::queue) async fn oldest_due(
        &self,
        queues: &[&str],
    ) -> Result<Vec<(String, Option<i64>)>, QueueError> {
        if queues.is_empty() {
            return Ok(Vec::new());
        }
        let now = self.ctx.clock.now_millis();
        let mut conn = self.conn.clone();
        let mut pipe = ::redis::pipe();
        for q in queues {
            pipe.lindex(self.key(&["ready", q]), -1);
            pipe.zrangebyscore_limit_withscores(self.key(&["delayed", q]), "-inf", now, 0, 1);
        }
        let replies: Vec<::redis::Value> = pipe.query_async(&mut conn).await?;
        let mut out = Vec::with_capacity(queues.len());
        for (q, pair) in queues.iter().zip(replies.chunks(2)) {
            let head: Option<Vec<u8>> = ::redis::from_redis_value_ref(&pair[0])
                .map_err(|e| QueueError::Corrupt(e.to_string()))?;
            let delayed: Vec<(Vec<u8>, f64)> = ::redis::from_redis_value_ref(&pair[1])
                .map_err(|e| QueueError::Corrupt(e.to_string()))?;
            // An entry no worker can read waits at the head until a fetch sets it aside:
            // it is as old as waiting gets, so it counts as due now.
            let ready = head.map(|raw| {
                let text = String::from_utf8_lossy(&raw);
                Entry::decode(&text).map_or(now, |e| e.due)
            });
            let delayed = delayed.first().map(|(_, s)| *s as i64);
            let oldest = match (ready, delayed) {
                (Some(a), Some(b)) => Some(a.min(b)),
                (a, b) => a.or(b),
            };
            out.push((q.to_string(), oldest));
        }
        Ok(out)
    }
}

/// A dead letter for bytes no worker can read: shown as they are, with why.
fn unreadable(queue: &str, raw: &[u8], why: Option<QueueError>) -> DeadLetter {
    DeadLetter {
        id: "(unreadable)".into(),
        queue: queue.to_owned(),
        payload: String::from_utf8_lossy(raw).into_owned(),
        attempts: 0,
        reason: why.map(|w| w.to_string()).unwrap_or_default(),
    }
}
