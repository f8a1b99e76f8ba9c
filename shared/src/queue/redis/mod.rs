//! The fleet queue on Redis.
//!
//! A job lives as one string, its *entry* (see [`Entry`]), in exactly one place at a
//! time. Keys, all under one hash tag so a cluster keeps them on one slot:
//! `{p}:ready:<q>` list (due now; pushed left, taken right), `{p}:delayed:<q>` zset (due
//! later, scored by due time), `{p}:held:<worker>` list (leased, not started),
//! `{p}:inflight:<worker>` list (leased and started), `{p}:workers` zset (last heartbeat), `{p}:dead:<q>` list with `{p}:reasons` (why each died),
//! `{p}:dedup:<key>` (deduplication keys, with a TTL), `{p}:paused` set (queues no worker
//! fetches from).
//!
//! Fetch moves entries from `ready` to the worker's own held list in one script (reliable
//! fetch), promoting at most `PROMOTE_BATCH` due delayed jobs per call, so a backlog of
//! any size never overflows a Lua stack. The jobs a worker has free slots for go straight
//! to its in-flight list; a held job moves there by one more script right before it runs. Finishing a job is one `LREM` of its entry from the in-flight
//! list: no per-job hash to read, count or delete. An entry counts the deliveries that
//! ended before it was fetched; a retry, or an orphan recovery of a job its worker had
//! started, writes it back counted one more, so a job that keeps killing its worker still
//! reaches its dead letter, while a job a dead worker only held goes back as it was. A
//! worker whose heartbeat is older than the orphan window has both lists returned to the
//! queues.

mod admin;
mod entry;
mod scripts;
mod views;

use super::{
    DIED_EVERY_ATTEMPT, Leased, NewJob, Orphan, QueueContext, QueueError, Recovered, Settle,
    UNREADABLE, new_job_id,
};
use crate::clock::wall_millis;
use ::redis::aio::{ConnectionManager, ConnectionManagerConfig};
use ::redis::{AsyncCommands, Script};
use entry::Entry;
use scripts::{FETCH, PUSH, REAP, SETTLE, START, Scripts};
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
                start: Script::new(START),
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

    /// Runs a pipeline that invokes scripts, loading them first on a server that has
    /// not seen them.
    async fn query_scripted<T: ::redis::FromRedisValue>(
        &self,
        pipe: &::redis::Pipeline,
    ) -> Result<T, QueueError> {
        let mut conn = self.conn.clone();
        match pipe.query_async(&mut conn).await {
            Ok(r) => Ok(r),
            Err(e)
                if e.kind() == ::redis::ErrorKind::Server(::redis::ServerErrorKind::NoScript) =>
            {
                self.load_scripts().await?;
                Ok(pipe.query_async(&mut conn).await?)
            }
            Err(e) => Err(e.into()),
        }
    }

    pub(super) async fn push_many(&self, jobs: Vec<NewJob>) -> Result<usize, QueueError> {
        let now = self.ctx.clock.now_millis();
        let ttl = u64::from(self.ctx.settings.idempotency_ttl_days) * 86_400;
        let mut added = 0usize;
        for chunk in jobs.chunks(500) {
            let mut pipe = ::redis::pipe();
            let mut unkeyed = 0;
            for job in chunk {
                let id = new_job_id();
                let queue = job.kind.queue();
                let entry = Entry {
                    ended: 0,
                    max: job.max_attempts.unwrap_or(self.ctx.settings.max_attempts),
                    due: job.run_at,
                    queue,
                    id: &id,
                    trace: job.trace.as_deref().unwrap_or_default(),
                    payload: &job.payload,
                }
                .encode();
                let (ready, delayed) = (self.key(&["ready", queue]), self.key(&["delayed", queue]));
                match job.key.as_deref() {
                    Some(key) => {
                        let mut inv = self.scripts.push.key(ready);
                        inv.key(delayed)
                            .key(self.key(&["dedup", key]))
                            .arg(entry)
                            .arg(job.run_at)
                            .arg(now)
                            .arg(ttl)
                            .arg(&id);
                        pipe.invoke_script(&inv);
                    }
                    // Without a key there is nothing to check: one plain command.
                    None if job.run_at <= now => {
                        pipe.lpush(ready, entry).ignore();
                        unkeyed += 1;
                    }
                    None => {
                        pipe.zadd(delayed, entry, job.run_at).ignore();
                        unkeyed += 1;
                    }
                }
            }
            let results: Vec<i64> = self.query_scripted(&pipe).await?;
            added += unkeyed + results.iter().filter(|r| **r == 1).count();
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
    pub(super) async fn wake(&self) -> Result<(), QueueError> {
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
            &self.scripts.start,
            &self.scripts.settle,
            &self.scripts.reap,
        ] {
            s.prepare_invoke().load_async(&mut conn).await?;
        }
        Ok(())
    }

    /// Leases up to `limit` jobs for `worker`; the first `start` of them are started at
    /// once, the rest held. Returns the jobs, the started ones first, and how many are.
    pub(super) async fn fetch(
        &self,
        queues: &[&str],
        worker: &str,
        limit: usize,
        start: usize,
    ) -> Result<(Vec<Leased>, usize), QueueError> {
        if queues.is_empty() || limit == 0 {
            return Ok((Vec::new(), 0));
        }
        let (held, inflight) = (self.key(&["held", worker]), self.key(&["inflight", worker]));
        let mut inv = self.scripts.fetch.key(&held);
        inv.key(self.key(&["workers"])).key(&inflight);
        // Start at a different queue each time so one busy queue cannot starve others.
        let first = (wall_millis() as usize) % queues.len();
        for i in 0..queues.len() {
            let q = queues[(first + i) % queues.len()];
            inv.key(self.key(&["ready", q]))
                .key(self.key(&["delayed", q]));
        }
        inv.arg(self.ctx.clock.now_millis())
            .arg(limit)
            .arg(worker)
            .arg(wall_millis())
            .arg(PROMOTE_BATCH)
            .arg(start);
        let mut conn = self.conn.clone();
        // Bytes, not text: an entry that is not UTF-8 must not fail the batch it came in.
        let entries: Vec<Vec<u8>> = inv.invoke_async(&mut conn).await?;
        let mut out = Vec::with_capacity(entries.len());
        let mut started = 0;
        for (i, raw) in entries.into_iter().enumerate() {
            let list = if i < start { &inflight } else { &held };
            match Entry::lease(raw) {
                Ok(job) => {
                    started += usize::from(i < start);
                    out.push(job);
                }
                Err((raw, e)) => {
                    // The rest of the batch runs even when the set-aside cannot be made
                    // now: the entry stays leased and is set aside on recovery.
                    if let Err(set) = self.set_aside(list, &raw, &e).await {
                        tracing::error!(error = %set, "could not set aside an unreadable entry");
                    }
                }
            }
        }
        Ok((out, started))
    }

    /// Moves an entry no worker can read out of a worker's list, so it neither runs nor
    /// comes back as an orphan, and says where it went.
    async fn set_aside(&self, list: &str, raw: &[u8], why: &QueueError) -> Result<(), QueueError> {
        let unreadable = self.key(&[UNREADABLE]);
        tracing::error!(error = %why, list = %unreadable, "set aside an unreadable queue entry");
        let mut conn = self.conn.clone();
        let _: () = ::redis::pipe()
            .atomic()
            .lrem(list, 1, raw)
            .ignore()
            .lpush(&unreadable, raw)
            .ignore()
            .query_async(&mut conn)
            .await?;
        Ok(())
    }

    /// Marks held jobs started, in one round trip, before they run; for each, whether
    /// it was still held (a job recovered from a worker thought dead must not run here).
    pub(super) async fn start(
        &self,
        worker: &str,
        jobs: &[&Leased],
    ) -> Result<Vec<bool>, QueueError> {
        if jobs.is_empty() {
            return Ok(Vec::new());
        }
        let mut inv = self.scripts.start.key(self.key(&["held", worker]));
        inv.key(self.key(&["inflight", worker]));
        for job in jobs {
            inv.arg(&job.receipt);
        }
        let mut conn = self.conn.clone();
        let moved: Vec<i64> = inv.invoke_async(&mut conn).await?;
        Ok(moved.into_iter().map(|m| m == 1).collect())
    }

    pub(super) async fn settle(
        &self,
        worker: &str,
        job: &Leased,
        how: Settle,
    ) -> Result<bool, QueueError> {
        let inflight = self.key(&["inflight", worker]);
        let mut conn = self.conn.clone();
        let now = self.ctx.clock.now_millis();
        let (name, run_at, reason, ended) = match &how {
            // The common case is one command: take the entry off the in-flight list.
            Settle::Done => {
                let mut removed: i64 = conn.lrem(inflight, 1, &job.receipt).await?;
                if removed == 0 {
                    // Rare: a job settled without being marked started.
                    removed = conn
                        .lrem(self.key(&["held", worker]), 1, &job.receipt)
                        .await?;
                }
                return Ok(removed == 1);
            }
            Settle::Retry { run_at, reason } => ("retry", *run_at, reason.as_str(), job.attempt),
            Settle::Dead { reason } => ("dead", now, reason.as_str(), job.attempt),
            // Handed back unstarted: this delivery does not count.
            Settle::Release { run_at } => ("release", *run_at, "", job.attempt.saturating_sub(1)),
        };
        let next = Entry::of(job, ended, run_at);
        let mut inv = self.scripts.settle.key(inflight);
        inv.key(self.key(&["ready", &job.queue]))
            .key(self.key(&["delayed", &job.queue]))
            .key(self.key(&["dead", &job.queue]))
            .key(self.key(&["reasons"]))
            .key(self.key(&["held", worker]))
            .arg(&job.receipt)
            .arg(name)
            .arg(next.encode())
            .arg(run_at)
            .arg(now)
            .arg(self.wake_channel())
            .arg(&job.id)
            .arg(reason);
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

    pub(super) async fn recover_orphans(&self) -> Result<Recovered, QueueError> {
        let cutoff = wall_millis() - self.ctx.settings.orphan_window().as_millis() as i64;
        let mut inv = self.scripts.reap.key(self.key(&["workers"]));
        inv.key(self.key(&["reasons"]))
            .arg(cutoff)
            .arg(&self.prefix)
            .arg(10_000)
            .arg(DIED_EVERY_ATTEMPT);
        let mut conn = self.conn.clone();
        let reply: Vec<String> = inv.invoke_async(&mut conn).await?;
        let mut reply = reply.into_iter();
        let moved: usize = reply
            .next()
            .and_then(|n| n.parse().ok())
            .ok_or_else(|| QueueError::Corrupt("the reaper's answer has no count".into()))?;
        let dead = reply
            .filter_map(|d| {
                let mut parts = d.splitn(3, '|');
                let (queue, id, ended) = (parts.next()?, parts.next()?, parts.next()?);
                Some(Orphan {
                    id: id.to_owned(),
                    queue: queue.to_owned(),
                    attempts: ended.parse().ok()?,
                })
            })
            .collect();
        if moved > 0 {
            self.wake().await?;
        }
        Ok(Recovered { jobs: moved, dead })
    }

    pub(super) async fn leased_to(&self, worker: &str) -> Result<Vec<Leased>, QueueError> {
        let mut conn = self.conn.clone();
        let (held, running): (Vec<Vec<u8>>, Vec<Vec<u8>>) = ::redis::pipe()
            .lrange(self.key(&["held", worker]), 0, -1)
            .lrange(self.key(&["inflight", worker]), 0, -1)
            .query_async(&mut conn)
            .await?;
        let mut out = Vec::with_capacity(held.len() + running.len());
        for (list, raws) in [("held", held), ("inflight", running)] {
            for raw in raws {
                match Entry::lease(raw) {
                    Ok(job) => out.push(job),
                    // Only a Redis restored from an older file puts one back here.
                    Err((raw, why)) => {
                        self.set_aside(&self.key(&[list, worker]), &raw, &why)
                            .await?
                    }
                }
            }
        }
        Ok(out)
    }

    pub(super) async fn deregister(&self, worker: &str) -> Result<(), QueueError> {
        let mut conn = self.conn.clone();
        let (held, running): (u64, u64) = ::redis::pipe()
            .llen(self.key(&["held", worker]))
            .llen(self.key(&["inflight", worker]))
            .query_async(&mut conn)
            .await?;
        if held + running == 0 {
            let _: () = conn.zrem(self.key(&["workers"]), worker).await?;
        }
        Ok(())
    }

    /// Deletes every key under this queue's prefix (tests give each run its own prefix).
    pub async fn purge(&self) -> Result<u64, QueueError> {
        let keys = self.scan(&format!("{}:*", self.prefix)).await?;
        let mut conn = self.conn.clone();
        for chunk in keys.chunks(1000) {
            let _: () = conn.del(chunk).await?;
        }
        Ok(keys.len() as u64)
    }
}
