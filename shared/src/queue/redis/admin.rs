//! The operator's actions on the Redis queue: dead letters moved back to ready or
//! deleted, each entry by one script that takes it only if it is still there, and the
//! paused queues as one set, `{p}:paused`.

use super::RedisQueue;
use super::entry::Entry;
use crate::queue::QueueError;
use crate::queue::UNREADABLE;
use crate::queue::admin::{
    Found, MAX_FOUND, MAX_PICKED, MAX_SCANNED, MAX_WORKERS, Pick, Search, WorkerSeen,
};
use ::redis::{AsyncCommands, Script};
use std::collections::BTreeSet;

/// Dead letters read per round trip while picking.
const CHUNK: isize = 500;
/// Entries one script call moves.
const BATCH: usize = 100;

/// KEYS: dead, ready, reasons. ARGV: retry (1 or 0), then triples (entry, new entry, id).
/// Each entry still in the dead list leaves it; on a retry its new entry goes to ready.
const MOVE_DEAD: &str = r#"
local moved = 0
for i = 2, #ARGV, 3 do
  if redis.call('LREM', KEYS[1], 1, ARGV[i]) == 1 then
    if ARGV[1] == '1' then redis.call('LPUSH', KEYS[2], ARGV[i + 1]) end
    if ARGV[i + 2] ~= '' then redis.call('HDEL', KEYS[3], ARGV[i + 2]) end
    moved = moved + 1
  end
end
return moved
"#;

impl RedisQueue {
    /// Retries (`retry`) or discards the picked dead letters of `queue`.
    pub(in crate::queue) async fn move_dead(
        &self,
        queue: &str,
        pick: Pick<'_>,
        retry: bool,
    ) -> Result<usize, QueueError> {
        let dead = if queue == UNREADABLE {
            self.key(&[UNREADABLE])
        } else {
            self.key(&["dead", queue])
        };
        let mut conn = self.conn.clone();
        let len: isize = conn.llen(&dead).await?;
        let now = self.ctx.clock.now_millis();
        // (entry, entry as retried, id)
        let mut picked: Vec<(Vec<u8>, String, String)> = Vec::new();
        let mut from = 0;
        'scan: while from < len {
            let raws: Vec<Vec<u8>> = conn.lrange(&dead, from, from + CHUNK - 1).await?;
            from += CHUNK;
            let ids: Vec<Option<String>> = raws
                .iter()
                .map(|raw| {
                    std::str::from_utf8(raw)
                        .ok()
                        .and_then(|s| Entry::decode(s).ok())
                        .map(|e| e.id.to_owned())
                })
                .collect();
            let known: Vec<&str> = ids.iter().flatten().map(String::as_str).collect();
            let mut reasons: Vec<Option<String>> = Vec::new();
            if !known.is_empty() {
                reasons = ::redis::cmd("HMGET")
                    .arg(self.key(&["reasons"]))
                    .arg(&known)
                    .query_async(&mut conn)
                    .await?;
            }
            let mut reasons = reasons.into_iter();
            for (raw, id) in raws.into_iter().zip(ids) {
                let text = String::from_utf8_lossy(&raw).into_owned();
                let (taken, retried) = match (&id, Entry::decode(&text)) {
                    (Some(id), Ok(e)) => {
                        let reason = reasons.next().flatten().unwrap_or_default();
                        let retried = Entry {
                            ended: 0,
                            due: now,
                            ..e.clone()
                        }
                        .encode();
                        (pick.takes(id, e.payload, &reason), retried)
                    }
                    // No worker can read it: taken only by its text, never retried.
                    _ => (!retry && pick.takes("", &text, ""), String::new()),
                };
                if taken {
                    picked.push((raw, retried, id.unwrap_or_default()));
                    if matches!(pick, Pick::Id(_)) || picked.len() >= MAX_PICKED {
                        break 'scan;
                    }
                }
            }
        }
        let script = Script::new(MOVE_DEAD);
        let mut moved = 0usize;
        for batch in picked.chunks(BATCH) {
            let mut inv = script.key(&dead);
            inv.key(self.key(&["ready", queue]))
                .key(self.key(&["reasons"]))
                .arg(if retry { "1" } else { "0" });
            for (raw, retried, id) in batch {
                inv.arg(raw.as_slice()).arg(retried).arg(id);
            }
            let n: usize = inv.invoke_async(&mut conn).await?;
            moved += n;
        }
        if retry && moved > 0 {
            self.wake().await?;
        }
        Ok(moved)
    }

    pub(in crate::queue) async fn set_paused(
        &self,
        queue: &str,
        paused: bool,
    ) -> Result<bool, QueueError> {
        let mut conn = self.conn.clone();
        let key = self.key(&["paused"]);
        let n: i64 = if paused {
            conn.sadd(key, queue).await?
        } else {
            conn.srem(key, queue).await?
        };
        Ok(n == 1)
    }

    pub(in crate::queue) async fn paused(&self) -> Result<BTreeSet<String>, QueueError> {
        let mut conn = self.conn.clone();
        Ok(conn.smembers(self.key(&["paused"])).await?)
    }
}

impl RedisQueue {
    pub(in crate::queue) async fn workers(&self) -> Result<Vec<WorkerSeen>, QueueError> {
        let mut conn = self.conn.clone();
        let seen: Vec<(String, f64)> = conn
            .zrevrange_withscores(self.key(&["workers"]), 0, MAX_WORKERS as isize - 1)
            .await?;
        if seen.is_empty() {
            return Ok(Vec::new());
        }
        let mut pipe = ::redis::pipe();
        for (w, _) in &seen {
            pipe.llen(self.key(&["held", w]))
                .llen(self.key(&["inflight", w]));
        }
        let lens: Vec<u64> = pipe.query_async(&mut conn).await?;
        Ok(seen
            .into_iter()
            .zip(lens.chunks(2))
            .map(|((name, at), n)| WorkerSeen {
                name,
                last_seen: at as i64,
                in_flight: n[0] + n[1],
            })
            .collect())
    }
}

/// Where a search reads: a list or a sorted set, and the state its entries are in.
enum Place {
    List(String, &'static str),
    Delayed(String),
}

impl RedisQueue {
    /// Reads the fleet's queues, the workers' leases and the dead letters, in chunks,
    /// until [`MAX_FOUND`] matches or [`MAX_SCANNED`] entries.
    pub(in crate::queue) async fn find(&self, text: &str) -> Result<Search, QueueError> {
        let mut conn = self.conn.clone();
        let mut places = Vec::new();
        for q in crate::queue::known_queues() {
            places.push(Place::List(self.key(&["ready", q]), "ready"));
            places.push(Place::Delayed(self.key(&["delayed", q])));
            places.push(Place::List(self.key(&["dead", q]), "dead"));
        }
        let workers: Vec<String> = conn
            .zrange(self.key(&["workers"]), 0, MAX_WORKERS as isize - 1)
            .await?;
        for w in &workers {
            places.push(Place::List(self.key(&["held", w]), "running"));
            places.push(Place::List(self.key(&["inflight", w]), "running"));
        }
        let now = self.ctx.clock.now_millis();
        let (mut found, mut scanned) = (Vec::new(), 0usize);
        for place in places {
            let mut from = 0isize;
            loop {
                if found.len() >= MAX_FOUND {
                    return Ok(Search {
                        found,
                        complete: true,
                    });
                }
                if scanned >= MAX_SCANNED {
                    return Ok(Search {
                        found,
                        complete: false,
                    });
                }
                let (raws, due_state): (Vec<Vec<u8>>, Option<&'static str>) = match &place {
                    Place::List(key, state) => (
                        conn.lrange(key, from, from + CHUNK - 1).await?,
                        Some(*state),
                    ),
                    Place::Delayed(key) => (conn.zrange(key, from, from + CHUNK - 1).await?, None),
                };
                if raws.is_empty() {
                    break;
                }
                scanned += raws.len();
                from += CHUNK;
                for raw in &raws {
                    let Ok(text_raw) = std::str::from_utf8(raw) else {
                        continue;
                    };
                    let Ok(e) = Entry::decode(text_raw) else {
                        continue;
                    };
                    if e.id == text || e.payload.contains(text) {
                        let state =
                            due_state.unwrap_or(if e.due > now { "scheduled" } else { "ready" });
                        found.push(Found {
                            id: e.id.to_owned(),
                            queue: e.queue.to_owned(),
                            state,
                            attempts: e.ended,
                            payload: e.payload.to_owned(),
                        });
                        if found.len() >= MAX_FOUND {
                            break;
                        }
                    }
                }
            }
        }
        Ok(Search {
            found,
            complete: true,
        })
    }
}
