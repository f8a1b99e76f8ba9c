//! The fleet queue on Redis.
//!
//! Keys (all under one hash tag, so a cluster keeps them on one slot):
//! `{p}:job:<id>` hash (queue, payload, attempts, max, error), `{p}:ready:<q>` list
//! (due now; pushed left, taken right), `{p}:delayed:<q>` zset (due later, by due
//! time), `{p}:inflight:<worker>` list (leased), `{p}:workers` zset (last heartbeat),
//! `{p}:dead:<q>` list, `{p}:dedup:<key>` (deduplication keys, with a TTL).
//!
//! Fetch moves ids from `ready` to the worker's own in-flight list in one script
//! (reliable fetch), promoting at most `PROMOTE_BATCH` due delayed jobs per call, so a
//! backlog of any size never overflows a Lua stack. A worker whose heartbeat is older
//! than the orphan window has its in-flight list returned to the queues.

use super::{DeadLetter, Leased, NewJob, QueueContext, QueueError, QueueStats, Settle, new_job_id};
use crate::clock::wall_millis;
use ::redis::aio::{ConnectionManager, ConnectionManagerConfig};
use ::redis::{AsyncCommands, Script};
use std::sync::Arc;
use std::time::Duration;

#[derive(Clone)]
pub struct RedisQueue {
    client: ::redis::Client,
    pub(super) conn: ConnectionManager,
    pub(super) prefix: String,
    scripts: Arc<Scripts>,
    pub(super) ctx: QueueContext,
}

impl std::fmt::Debug for RedisQueue {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RedisQueue")
            .field("prefix", &self.prefix)
            .finish()
    }
}

struct Scripts {
    push: Script,
    fetch: Script,
    settle: Script,
    reap: Script,
}

const PUSH: &str = r#"
-- KEYS: job, ready, delayed, dedup ('' when none)
-- ARGV: id, queue, payload, max_attempts, run_at, now, ttl_seconds, trace
if KEYS[4] ~= '' then
  if not redis.call('SET', KEYS[4], ARGV[1], 'NX', 'EX', ARGV[7]) then return 0 end
end
redis.call('HSET', KEYS[1], 'queue', ARGV[2], 'payload', ARGV[3], 'attempts', 0, 'max', ARGV[4], 'due', ARGV[5], 'trace', ARGV[8])
if tonumber(ARGV[5]) <= tonumber(ARGV[6]) then
  redis.call('LPUSH', KEYS[2], ARGV[1])
else
  redis.call('ZADD', KEYS[3], ARGV[5], ARGV[1])
end
return 1
"#;

const FETCH: &str = r#"
-- KEYS: inflight, workers, then ready/delayed pairs
-- ARGV: now, limit, worker, wall_now, prefix, promote_batch
local now, limit = tonumber(ARGV[1]), tonumber(ARGV[2])
redis.call('ZADD', KEYS[2], ARGV[4], ARGV[3])
local out = {}
local taken = 0
for i = 3, #KEYS, 2 do
  local ready, delayed = KEYS[i], KEYS[i + 1]
  local due = redis.call('ZRANGEBYSCORE', delayed, '-inf', now, 'LIMIT', 0, tonumber(ARGV[6]))
  for _, id in ipairs(due) do
    redis.call('ZREM', delayed, id)
    redis.call('LPUSH', ready, id)
  end
  while taken < limit do
    local id = redis.call('LMOVE', ready, KEYS[1], 'RIGHT', 'LEFT')
    if not id then break end
    local job = ARGV[5] .. ':job:' .. id
    local attempts = redis.call('HINCRBY', job, 'attempts', 1)
    local f = redis.call('HMGET', job, 'queue', 'payload', 'max', 'trace')
    out[#out + 1] = id
    out[#out + 1] = f[1] or ''
    out[#out + 1] = f[2] or ''
    out[#out + 1] = attempts
    out[#out + 1] = f[3] or '1'
    out[#out + 1] = f[4] or ''
    taken = taken + 1
  end
  if taken >= limit then break end
end
return out
"#;

const SETTLE: &str = r#"
-- KEYS: inflight, job, ready, delayed, dead
-- ARGV: id, how (done|retry|dead|release), run_at, reason, now, wake channel
if redis.call('LREM', KEYS[1], 1, ARGV[1]) == 0 then return 0 end
local how = ARGV[2]
if how == 'done' then
  redis.call('DEL', KEYS[2])
elseif how == 'dead' then
  redis.call('HSET', KEYS[2], 'error', ARGV[4])
  redis.call('LPUSH', KEYS[5], ARGV[1])
else
  if how == 'release' then redis.call('HINCRBY', KEYS[2], 'attempts', -1)
  else redis.call('HSET', KEYS[2], 'error', ARGV[4]) end
  redis.call('HSET', KEYS[2], 'due', ARGV[3])
  if tonumber(ARGV[3]) <= tonumber(ARGV[5]) then
    redis.call('RPUSH', KEYS[3], ARGV[1])
    redis.call('PUBLISH', ARGV[6], '1')
  else
    redis.call('ZADD', KEYS[4], ARGV[3], ARGV[1])
  end
end
return 1
"#;

const REAP: &str = r#"
-- KEYS: workers. ARGV: cutoff (wall ms), prefix, budget
local prefix, budget = ARGV[2], tonumber(ARGV[3])
local moved = 0
local gone = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', '(' .. ARGV[1], 'LIMIT', 0, 16)
for _, w in ipairs(gone) do
  local inflight = prefix .. ':inflight:' .. w
  while moved < budget do
    local id = redis.call('RPOP', inflight)
    if not id then break end
    local job = prefix .. ':job:' .. id
    local f = redis.call('HMGET', job, 'queue', 'attempts', 'max')
    if f[1] then
      if tonumber(f[2] or '0') >= tonumber(f[3] or '1') then
        redis.call('HSET', job, 'error', 'its worker stopped answering during every attempt')
        redis.call('LPUSH', prefix .. ':dead:' .. f[1], id)
      else
        redis.call('HSET', job, 'error', 'its worker stopped answering; delivered again')
        redis.call('RPUSH', prefix .. ':ready:' .. f[1], id)
      end
    end
    moved = moved + 1
  end
  if redis.call('LLEN', inflight) == 0 then redis.call('ZREM', KEYS[1], w) end
end
return moved
"#;

/// Due delayed jobs promoted per fetch: bounded so no script unpacks a huge backlog.
const PROMOTE_BATCH: usize = 1000;

impl RedisQueue {
    pub async fn connect(url: &str, ctx: QueueContext) -> Result<Self, QueueError> {
        let target = crate::store::redact_url(url);
        let client = ::redis::Client::open(url).map_err(|e| QueueError::Connect {
            target: target.clone(),
            reason: e.to_string(),
        })?;
        // Seconds, not redis-rs' 500 ms default: a busy Redis must not kill workers.
        let config = ConnectionManagerConfig::new()
            .set_response_timeout(Some(Duration::from_secs(10)))
            .set_connection_timeout(Some(Duration::from_secs(5)));
        let conn = ConnectionManager::new_with_config(client.clone(), config)
            .await
            .map_err(|e| QueueError::Connect {
                target,
                reason: e.to_string(),
            })?;
        let prefix = format!("{{{}}}", ctx.settings.key_prefix);
        Ok(Self {
            client,
            conn,
            prefix,
            scripts: Arc::new(Scripts {
                push: Script::new(PUSH),
                fetch: Script::new(FETCH),
                settle: Script::new(SETTLE),
                reap: Script::new(REAP),
            }),
            ctx,
        })
    }

    fn key(&self, parts: &[&str]) -> String {
        let mut k = self.prefix.clone();
        for p in parts {
            k.push(':');
            k.push_str(p);
        }
        k
    }

    pub(super) async fn push_many(&self, jobs: Vec<NewJob>) -> Result<usize, QueueError> {
        let now = self.ctx.clock.now_millis();
        let ttl = u64::from(self.ctx.settings.idempotency_ttl_days) * 86_400;
        let mut added = 0usize;
        for chunk in jobs.chunks(500) {
            let mut pipe = ::redis::pipe();
            for job in chunk {
                let id = new_job_id();
                let queue = job.kind.queue();
                let max = job.max_attempts.unwrap_or(self.ctx.settings.max_attempts);
                let dedup = job
                    .key
                    .as_deref()
                    .map(|k| self.key(&["dedup", k]))
                    .unwrap_or_default();
                let mut inv = self.scripts.push.key(self.key(&["job", &id]));
                inv.key(self.key(&["ready", queue]))
                    .key(self.key(&["delayed", queue]))
                    .key(dedup)
                    .arg(&id)
                    .arg(queue)
                    .arg(&job.payload)
                    .arg(max)
                    .arg(job.run_at)
                    .arg(now)
                    .arg(ttl)
                    .arg(job.trace.as_deref().unwrap_or_default());
                pipe.invoke_script(&inv);
            }
            let mut conn = self.conn.clone();
            let results: Vec<i64> = match pipe.query_async(&mut conn).await {
                Ok(r) => r,
                Err(e)
                    if e.kind()
                        == ::redis::ErrorKind::Server(::redis::ServerErrorKind::NoScript) =>
                {
                    // First use on this server: load the scripts, then retry the chunk.
                    self.load_scripts().await?;
                    pipe.query_async(&mut conn).await?
                }
                Err(e) => return Err(e.into()),
            };
            added += results.iter().filter(|r| **r == 1).count();
        }
        if added > 0 && jobs.iter().any(|j| j.run_at <= now) {
            self.wake().await?;
        }
        Ok(added)
    }

    fn wake_channel(&self) -> String {
        self.key(&["wake"])
    }

    /// Tells idle workers in every process that jobs are ready.
    async fn wake(&self) -> Result<(), QueueError> {
        let mut conn = self.conn.clone();
        let _: i64 = conn.publish(self.wake_channel(), 1).await?;
        Ok(())
    }

    /// Wakes this process's idle workers whenever any process makes jobs ready, instead
    /// of leaving them to their idle poll. Reconnects by itself.
    pub(super) fn listen_for_wakeups(&self) {
        let (client, channel, notify) = (
            self.client.clone(),
            self.wake_channel(),
            self.ctx.notify.clone(),
        );
        tokio::spawn(async move {
            use futures::StreamExt;
            loop {
                match client.get_async_pubsub().await {
                    Ok(mut ps) => match ps.subscribe(&channel).await {
                        Ok(()) => {
                            let mut messages = ps.on_message();
                            while messages.next().await.is_some() {
                                notify.notify_waiters();
                            }
                        }
                        Err(e) => tracing::warn!(error = %e, "wake-up subscription failed"),
                    },
                    Err(e) => tracing::warn!(error = %e, "wake-up connection failed"),
                }
                tokio::time::sleep(Duration::from_secs(1)).await;
            }
        });
    }

    async fn load_scripts(&self) -> Result<(), QueueError> {
        let mut conn = self.conn.clone();
        for s in [
            &self.scripts.push,
            &self.scripts.fetch,
            &self.scripts.settle,
            &self.scripts.reap,
        ] {
            s.prepare_invoke().load_async(&mut conn).await?;
        }
        Ok(())
    }

    pub(super) async fn fetch(
        &self,
        queues: &[&str],
        worker: &str,
        limit: usize,
    ) -> Result<Vec<Leased>, QueueError> {
        if queues.is_empty() || limit == 0 {
            return Ok(Vec::new());
        }
        let mut inv = self.scripts.fetch.key(self.key(&["inflight", worker]));
        inv.key(self.key(&["workers"]));
        // Start at a different queue each time so one busy queue cannot starve others.
        let start = (wall_millis() as usize) % queues.len();
        for i in 0..queues.len() {
            let q = queues[(start + i) % queues.len()];
            inv.key(self.key(&["ready", q]))
                .key(self.key(&["delayed", q]));
        }
        inv.arg(self.ctx.clock.now_millis())
            .arg(limit)
            .arg(worker)
            .arg(wall_millis())
            .arg(&self.prefix)
            .arg(PROMOTE_BATCH);
        let mut conn = self.conn.clone();
        let flat: Vec<::redis::Value> = inv.invoke_async(&mut conn).await?;
        let mut out = Vec::with_capacity(flat.len() / 6);
        for c in flat.chunks(6) {
            let s = |v: &::redis::Value| -> Result<String, QueueError> {
                ::redis::from_redis_value_ref::<String>(v)
                    .map_err(|e| QueueError::Corrupt(e.to_string()))
            };
            if c.len() < 6 {
                return Err(QueueError::Corrupt("short fetch reply".into()));
            }
            out.push(Leased {
                id: s(&c[0])?,
                queue: s(&c[1])?,
                payload: s(&c[2])?,
                attempt: s(&c[3])?.parse().unwrap_or(1),
                max_attempts: s(&c[4])?.parse().unwrap_or(1),
                trace: Some(s(&c[5])?).filter(|t| !t.is_empty()),
            });
        }
        Ok(out)
    }

    pub(super) async fn settle(
        &self,
        worker: &str,
        job: &Leased,
        how: Settle,
    ) -> Result<bool, QueueError> {
        let (name, run_at, reason) = match &how {
            Settle::Done => ("done", 0, ""),
            Settle::Retry { run_at, reason } => ("retry", *run_at, reason.as_str()),
            Settle::Dead { reason } => ("dead", 0, reason.as_str()),
            Settle::Release { run_at } => ("release", *run_at, ""),
        };
        let mut inv = self.scripts.settle.key(self.key(&["inflight", worker]));
        inv.key(self.key(&["job", &job.id]))
            .key(self.key(&["ready", &job.queue]))
            .key(self.key(&["delayed", &job.queue]))
            .key(self.key(&["dead", &job.queue]))
            .arg(&job.id)
            .arg(name)
            .arg(run_at)
            .arg(reason)
            .arg(self.ctx.clock.now_millis())
            .arg(self.wake_channel());
        let mut conn = self.conn.clone();
        let r: i64 = inv.invoke_async(&mut conn).await?;
        Ok(r == 1)
    }

    pub(super) async fn heartbeat(&self, worker: &str) -> Result<(), QueueError> {
        let mut conn = self.conn.clone();
        let _: () = conn
            .zadd(self.key(&["workers"]), worker, wall_millis())
            .await?;
        Ok(())
    }

    pub(super) async fn recover_orphans(&self) -> Result<usize, QueueError> {
        let cutoff = wall_millis() - self.ctx.settings.orphan_window().as_millis() as i64;
        let mut inv = self.scripts.reap.key(self.key(&["workers"]));
        inv.arg(cutoff).arg(&self.prefix).arg(10_000);
        let mut conn = self.conn.clone();
        let moved: i64 = inv.invoke_async(&mut conn).await?;
        if moved > 0 {
            self.wake().await?;
        }
        Ok(moved as usize)
    }

    pub(super) async fn deregister(&self, worker: &str) -> Result<(), QueueError> {
        let mut conn = self.conn.clone();
        let held: u64 = conn.llen(self.key(&["inflight", worker])).await?;
        if held == 0 {
            let _: () = conn.zrem(self.key(&["workers"]), worker).await?;
        }
        Ok(())
    }

    pub(super) async fn stats(&self, queues: &[&str]) -> Result<Vec<QueueStats>, QueueError> {
        let now = self.ctx.clock.now_millis();
        let mut conn = self.conn.clone();
        // In-flight ids per queue: every live worker's list, then each id's queue, each
        // read in one pipelined round trip.
        // Redis refuses an empty pipeline, hence the guards.
        let workers: Vec<String> = conn.zrange(self.key(&["workers"]), 0, -1).await?;
        let mut owners: Vec<Option<String>> = Vec::new();
        if !workers.is_empty() {
            let mut pipe = ::redis::pipe();
            for w in &workers {
                pipe.lrange(self.key(&["inflight", w]), 0, -1);
            }
            let lists: Vec<Vec<String>> = pipe.query_async(&mut conn).await?;
            let ids: Vec<&String> = lists.iter().flatten().collect();
            if !ids.is_empty() {
                let mut pipe = ::redis::pipe();
                for id in ids {
                    pipe.hget(self.key(&["job", id]), "queue");
                }
                owners = pipe.query_async(&mut conn).await?;
            }
        }
        if queues.is_empty() {
            return Ok(Vec::new());
        }
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
                running: owners.iter().filter(|o| o.as_deref() == Some(*q)).count() as u64,
                dead: c[3],
            })
            .collect())
    }

    pub(super) async fn dead_letters(
        &self,
        queue: &str,
        limit: usize,
    ) -> Result<Vec<DeadLetter>, QueueError> {
        let mut conn = self.conn.clone();
        let ids: Vec<String> = conn
            .lrange(
                self.key(&["dead", queue]),
                0,
                limit.saturating_sub(1) as isize,
            )
            .await?;
        let mut out = Vec::with_capacity(ids.len());
        for id in ids {
            let (payload, attempts, error): (Option<String>, Option<u32>, Option<String>) =
                ::redis::cmd("HMGET")
                    .arg(self.key(&["job", &id]))
                    .arg("payload")
                    .arg("attempts")
                    .arg("error")
                    .query_async(&mut conn)
                    .await?;
            out.push(DeadLetter {
                id,
                queue: queue.to_owned(),
                payload: payload.unwrap_or_default(),
                attempts: attempts.unwrap_or(0),
                reason: error.unwrap_or_default(),
            });
        }
        Ok(out)
    }

    pub(super) async fn next_due(&self, queues: &[&str]) -> Result<Option<i64>, QueueError> {
        let mut conn = self.conn.clone();
        let mut best: Option<i64> = None;
        for q in queues {
            let first: Vec<(String, f64)> = conn
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
    pub(super) async fn oldest_due(
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
        let mut heads: Vec<(Option<String>, Option<i64>)> = Vec::new();
        for pair in replies.chunks(2) {
            let head: Option<String> = ::redis::from_redis_value_ref(&pair[0])
                .map_err(|e| QueueError::Corrupt(e.to_string()))?;
            let delayed: Vec<(String, f64)> = ::redis::from_redis_value_ref(&pair[1])
                .map_err(|e| QueueError::Corrupt(e.to_string()))?;
            heads.push((head, delayed.first().map(|(_, s)| *s as i64)));
        }
        let ids: Vec<&String> = heads.iter().filter_map(|(h, _)| h.as_ref()).collect();
        let mut dues: std::collections::HashMap<String, i64> = Default::default();
        if !ids.is_empty() {
            let mut pipe = ::redis::pipe();
            for id in &ids {
                pipe.hget(self.key(&["job", id]), "due");
            }
            let got: Vec<Option<i64>> = pipe.query_async(&mut conn).await?;
            for (id, due) in ids.iter().zip(got) {
                if let Some(d) = due {
                    dues.insert((*id).clone(), d);
                }
            }
        }
        Ok(queues
            .iter()
            .zip(heads)
            .map(|(q, (head, delayed))| {
                let ready = head.and_then(|h| dues.get(&h).copied());
                let oldest = match (ready, delayed) {
                    (Some(a), Some(b)) => Some(a.min(b)),
                    (a, b) => a.or(b),
                };
                (q.to_string(), oldest)
            })
            .collect())
    }

    /// Deletes every key under this queue's prefix (tests give each run its own prefix).
    pub async fn purge(&self) -> Result<u64, QueueError> {
        let mut conn = self.conn.clone();
        let pattern = format!("{}:*", self.prefix);
        let mut removed = 0;
        let mut cursor: u64 = 0;
        loop {
            let (next, keys): (u64, Vec<String>) = ::redis::cmd("SCAN")
                .arg(cursor)
                .arg("MATCH")
                .arg(&pattern)
                .arg("COUNT")
                .arg(1000)
                .query_async(&mut conn)
                .await?;
            if !keys.is_empty() {
                removed += keys.len() as u64;
                let _: () = conn.del(keys).await?;
            }
            if next == 0 {
                break;
            }
            cursor = next;
        }
        Ok(removed)
    }
}
