//! Our queue as an apalis backend: apalis workers, middleware (tracing, concurrency)
//! and lifecycle run on top of the leases, heartbeats, orphan recovery, max attempts and
//! dead letters of [`Queue`] — on SQLite embedded, on Redis in the fleet.
//!
//! `poll_next` leases jobs in batches no larger than the concurrency, as many as there
//! are free slots started in the same script (the rest held, and marked started in one
//! round trip when slots free up), hands them out one by one and, when none is due,
//! waits for an enqueue notification or the idle poll interval (never busy-polls). A queue error is logged and retried after a pause: it
//! never stops the worker. `poll_close` hands back jobs leased but never run.

use apalis_core::backend::finalize::Ephemeral;
use apalis_core::backend::{Backend, BackendConfig};
use apalis_core::task::Task;
use apalis_core::task::builder::TaskBuilder;
use apalis_core::task::task_id::{RandomId, TaskId};
use apalis_core::worker::context::WorkerContext;
use cep_shared::queue::{Leased, Queue, QueueError, Settle};
use futures::future::BoxFuture;
use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::Duration;
use tower::layer::util::Identity;

/// Jobs a worker holds a lease on, from fetch until settled: what it hands back when it
/// must stop before they finish. Keyed by the lease's address, so tracking a job costs
/// no copy of it.
#[derive(Debug, Default, Clone)]
pub struct Leases(Arc<Mutex<HashMap<usize, Arc<Leased>>>>);

impl Leases {
    fn add<'a>(&self, jobs: impl Iterator<Item = &'a Arc<Leased>>) {
        let mut m = self.0.lock().unwrap_or_else(|e| e.into_inner());
        for j in jobs {
            m.insert(Arc::as_ptr(j) as usize, j.clone());
        }
    }

    pub fn done(&self, job: &Arc<Leased>) {
        self.0
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .remove(&(Arc::as_ptr(job) as usize));
    }

    /// The ids of the jobs held.
    pub fn ids(&self) -> std::collections::HashSet<String> {
        let m = self.0.lock().unwrap_or_else(|e| e.into_inner());
        m.values().map(|j| j.id.clone()).collect()
    }

    fn len(&self) -> usize {
        self.0.lock().unwrap_or_else(|e| e.into_inner()).len()
    }

    pub fn take_all(&self) -> Vec<Arc<Leased>> {
        self.0
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .drain()
            .map(|(_, j)| j)
            .collect()
    }
}

type Started = Result<Vec<(Arc<Leased>, bool)>, (Vec<Arc<Leased>>, QueueError)>;

enum Pending {
    /// Leased jobs, the started ones first, and how many are.
    Fetch(BoxFuture<'static, Result<(Vec<Leased>, usize), QueueError>>),
    /// Held jobs being marked started: each with whether it may run, or all of them back
    /// with the error.
    Start(BoxFuture<'static, Started>),
    Wait(BoxFuture<'static, ()>),
    Close(BoxFuture<'static, ()>),
}

pub struct QueueBackend {
    queue: Queue,
    queues: Vec<&'static str>,
    batch: usize,
    concurrency: usize,
    idle: Duration,
    leases: Leases,
    /// Leased, not started.
    buffer: VecDeque<Arc<Leased>>,
    /// Marked started, handed out next.
    started: VecDeque<Arc<Leased>>,
    pending: Option<Pending>,
}

impl QueueBackend {
    pub fn new(
        queue: Queue,
        queues: Vec<&'static str>,
        batch: usize,
        concurrency: usize,
        idle: Duration,
        leases: Leases,
    ) -> Self {
        Self {
            queue,
            queues,
            batch: batch.max(1),
            concurrency: concurrency.max(1),
            idle,
            leases,
            buffer: VecDeque::new(),
            started: VecDeque::new(),
            pending: None,
        }
    }

    /// Slots free for jobs to run now: at least the one apalis asks for.
    fn free(&self) -> usize {
        let waiting = self.buffer.len() + self.started.len();
        let running = self.leases.len().saturating_sub(waiting);
        self.concurrency.saturating_sub(running).max(1)
    }

    /// Marks started as many held jobs as there are free slots, so a worker that dies is
    /// charged only for jobs it ran.
    fn start(&mut self, worker: &str) -> Pending {
        let n = self.free().min(self.buffer.len());
        let jobs: Vec<Arc<Leased>> = self.buffer.drain(..n).collect();
        let (queue, worker) = (self.queue.clone(), worker.to_owned());
        Pending::Start(Box::pin(async move {
            let refs: Vec<&Leased> = jobs.iter().map(|j| j.as_ref()).collect();
            match queue.start(&worker, &refs).await {
                Ok(may) => Ok(jobs.into_iter().zip(may).collect()),
                Err(e) => Err((jobs, e)),
            }
        }))
    }

    /// Takes the answer of a start: jobs that may run are handed out next; one whose
    /// lease was lost is dropped; on an error every job goes back to the buffer.
    fn started(&mut self, answer: Started) -> Option<QueueError> {
        match answer {
            Ok(jobs) => {
                for (job, may) in jobs {
                    if may {
                        self.started.push_back(job);
                    } else {
                        tracing::warn!(job_id = %job.id, "lease lost before the job started; it runs elsewhere");
                        self.leases.done(&job);
                    }
                }
                None
            }
            Err((jobs, e)) => {
                for job in jobs.into_iter().rev() {
                    self.buffer.push_front(job);
                }
                Some(e)
            }
        }
    }

    /// Leases a batch, starting at once as many as there are free slots: in the common
    /// case no job needs a start of its own.
    fn fetch(&self, worker: &str) -> Pending {
        let (queue, queues, worker, batch, free) = (
            self.queue.clone(),
            self.queues.clone(),
            worker.to_owned(),
            self.batch,
            self.free(),
        );
        Pending::Fetch(Box::pin(async move {
            queue.fetch_starting(&queues, &worker, batch, free).await
        }))
    }

    fn wait(&self, pause: Duration) -> Pending {
        let notify = self.queue.notifier();
        Pending::Wait(Box::pin(async move {
            tokio::select! {
                _ = notify.notified() => {}
                _ = tokio::time::sleep(pause) => {}
            }
        }))
    }

    /// Takes freshly leased jobs (the first `started` already started), tracked until
    /// settled.
    fn hold(&mut self, (jobs, started): (Vec<Leased>, usize)) {
        let mut jobs = jobs.into_iter().map(Arc::new);
        let from = self.started.len();
        self.started.extend(jobs.by_ref().take(started));
        self.leases.add(self.started.range(from..));
        let from = self.buffer.len();
        self.buffer.extend(jobs);
        self.leases.add(self.buffer.range(from..));
    }

    fn release(&self, worker: &str, jobs: Vec<Arc<Leased>>) -> Pending {
        let (queue, worker, leases) = (self.queue.clone(), worker.to_owned(), self.leases.clone());
        Pending::Close(Box::pin(async move {
            hand_back(&queue, &worker, &jobs).await;
            for job in &jobs {
                leases.done(job);
            }
        }))
    }
}

/// Hands leased jobs back to their queue, due now, without counting an attempt: jobs
/// fetched but never started, or still running when a worker had to stop.
pub async fn hand_back(queue: &Queue, worker: &str, jobs: &[Arc<Leased>]) {
    for job in jobs {
        let now = queue.clock().now_millis();
        if let Err(e) = queue
            .settle(worker, job, Settle::Release { run_at: now })
            .await
        {
            tracing::warn!(error = %e, job_id = %job.id, "could not hand a job back; it returns after the orphan window");
        }
    }
}

impl Backend for QueueBackend {
    type Task = Task<Arc<Leased>>;
    type Error = QueueError;

    fn poll_ready(
        &mut self,
        _: &mut Context<'_>,
        _: &WorkerContext,
    ) -> Poll<Result<(), QueueError>> {
        Poll::Ready(Ok(()))
    }

    fn poll_next(
        &mut self,
        cx: &mut Context<'_>,
        worker: &WorkerContext,
    ) -> Poll<Option<Result<Task<Arc<Leased>>, QueueError>>> {
        loop {
            if let Some(job) = self.started.pop_front() {
                let (id, attempt) = (TaskId::from_string(job.id.clone()), job.attempt as usize);
                let task = TaskBuilder::new(job).task_id(id).attempt(attempt).build();
                return Poll::Ready(Some(Ok(task)));
            }
            let next = match self.pending.as_mut() {
                None if !self.buffer.is_empty() => self.start(worker.name()),
                None => self.fetch(worker.name()),
                Some(Pending::Fetch(f)) => match f.as_mut().poll(cx) {
                    Poll::Pending => return Poll::Pending,
                    Poll::Ready(Ok(jobs)) if jobs.0.is_empty() => self.wait(self.idle),
                    Poll::Ready(Ok(jobs)) => {
                        self.hold(jobs);
                        self.pending = None;
                        continue;
                    }
                    Poll::Ready(Err(e)) => {
                        tracing::warn!(error = %e, "fetch failed; retrying shortly");
                        self.wait(Duration::from_secs(1))
                    }
                },
                Some(Pending::Start(f)) => match f.as_mut().poll(cx) {
                    Poll::Pending => return Poll::Pending,
                    Poll::Ready(answer) => match self.started(answer) {
                        None => {
                            self.pending = None;
                            continue;
                        }
                        Some(e) => {
                            tracing::warn!(error = %e, "could not mark jobs started; retrying shortly");
                            self.wait(Duration::from_secs(1))
                        }
                    },
                },
                Some(Pending::Wait(w)) | Some(Pending::Close(w)) => match w.as_mut().poll(cx) {
                    Poll::Pending => return Poll::Pending,
                    Poll::Ready(()) if !self.buffer.is_empty() => self.start(worker.name()),
                    Poll::Ready(()) => self.fetch(worker.name()),
                },
            };
            self.pending = Some(next);
        }
    }

    fn poll_close(
        &mut self,
        cx: &mut Context<'_>,
        worker: &WorkerContext,
    ) -> Poll<Result<(), QueueError>> {
        loop {
            let next = match self.pending.as_mut() {
                // A fetch under way may have leased jobs: let it land, then hand them back.
                Some(Pending::Fetch(f)) => match f.as_mut().poll(cx) {
                    Poll::Pending => return Poll::Pending,
                    Poll::Ready(Ok(jobs)) => {
                        self.hold(jobs);
                        None
                    }
                    Poll::Ready(Err(_)) => None,
                },
                // Jobs being marked started: take them back whatever the answer.
                Some(Pending::Start(f)) => match f.as_mut().poll(cx) {
                    Poll::Pending => return Poll::Pending,
                    Poll::Ready(answer) => {
                        self.started(answer);
                        None
                    }
                },
                Some(Pending::Close(c)) => match c.as_mut().poll(cx) {
                    Poll::Pending => return Poll::Pending,
                    Poll::Ready(()) => None,
                },
                Some(Pending::Wait(_)) | None => None,
            };
            self.pending = next;
            if self.buffer.is_empty() && self.started.is_empty() {
                return Poll::Ready(Ok(()));
            }
            let unstarted: Vec<Arc<Leased>> = self
                .started
                .drain(..)
                .chain(self.buffer.drain(..))
                .collect();
            self.pending = Some(self.release(worker.name(), unstarted));
        }
    }
}

impl BackendConfig for QueueBackend {
    type Args = Arc<Leased>;
    type Id = RandomId;
    type Kind = Ephemeral;
    type Config = ();
    type Layer = Identity;

    fn config(&self) -> &() {
        &()
    }

    fn middleware(&mut self, _: &mut WorkerContext) -> Identity {
        Identity::new()
    }
}
