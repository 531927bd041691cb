//! The executor machine: admission, the queue, delayed jobs, workers, shutdown.
//!
//! One machine holds everything about its jobs, so nothing is shared but the slots of
//! handle futures: a job is submitted by a message ([`Submit`]), goes to a worker by a
//! message (`RunJob`), comes back by a message (`Ran`) and is answered by a message
//! ([`JobDone`]) or through its slot.
//!
//! **Batches.** When jobs queue up (every worker busy), a worker that comes free is given
//! several queued jobs in one `RunJob` and answers them in one `Ran`: its share of the
//! queue (a quarter of the queue over the workers), at most [`MAX_BATCH`] jobs and about
//! [`BATCH_WORK`] of work by the mean run time so far (one job at a time until a first
//! one has run, and for jobs longer than that). A long queue then costs two messages per
//! batch instead of per job — for a worker process, one frame each way — while a short
//! one, or slow jobs, still go one by one to whichever worker is free. A job is pending
//! (and can be cancelled) until it is put in a batch; a worker that ends fails every job
//! of the batch it held.
//!
//! **Start times.** A job submitted with a delay is admitted [`START_LEAD`] before its
//! time and its worker sleeps the rest, so it starts on time (periodic runs come this
//! way too). The parts it assembles know nothing of messages:
//! `admission` (the decision), `sizing` (how many workers, which to let go), `delayed`
//! (jobs waiting out a delay), and from the spool the bounded `Queue`, the membership
//! `Workers` and the `Durations` histogram.

use std::sync::Arc;
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};

use super::admission::{self, Backlog, Decision};
use super::delayed::Delayed;
use super::future::SlotGuard;
use super::inbox::{Inbox, Submitted};
use super::job::Work;
use super::messages::{
    Cancel, Cancelled, ExecutorStats, JobDone, Ran, Rejected, RunJob, ShutdownMode, Submit,
};
use super::runner::{AsyncWorkers, ThreadWorkers};
use super::settings::{ExecutorError, ExecutorSettings};
use super::sizing;
use super::stats::{Counters, ExecutorStatistics};
use crate::backoff::Backoff;
use crate::message::AnyMessage;
use crate::object::{AddressMap, Context, Recipe};
use crate::process::Process;
use crate::request::Delay;
use crate::runtime::{Envelope, SendError};
use crate::spool::queue::Queue;
use crate::spool::workers::{Origin, Workers};
use crate::standard::{Faulted, Returned, Start, Stop};
use crate::{Address, Message};

/// A user's admission policy (`check_and_reject`).
type Policy = Box<dyn FnMut(&Backlog) -> Result<(), String> + Send>;

/// A pool of workers that runs jobs and answers each exactly once; see the
/// [module docs](super).
///
/// Build it with [`threads`](Executor::threads), [`asynchronous`](Executor::asynchronous),
/// [`processes`](Executor::processes) or [`of`](Executor::of) and the builder methods, then
/// either create it as an object (`cx.create(executor)`: objects [`Submit`] to its
/// address) or [`start`](Executor::start) it for plain code (an
/// [`ExecutorHandle`](super::ExecutorHandle)).
pub struct Executor<R> {
    recipe: R,
    settings: ExecutorSettings,
    policy: Option<Policy>,
    /// The workers are processes: closures and futures cannot reach them.
    remote: bool,
    queue: Queue<Pending>,
    delayed: Delayed<Pending>,
    workers: Workers<Batch>,
    /// Jobs given to workers and not answered yet (the jobs of every batch out).
    running: usize,
    /// When each idle worker became idle.
    idle_since: AddressMap<Instant>,
    /// When each worker was started.
    born: AddressMap<Instant>,
    counters: Counters,
    closing: Option<Closing>,
    /// When to start a worker again after one ended unexpectedly.
    respawn: Backoff,
    respawning: bool,
    /// When the `Trim` and `Due` timers fire, if they are set.
    trim_at: Option<Instant>,
    due_at: Option<Instant>,
    /// Its entry in the process's figures (`crate::metrics`), from start to end.
    figures: Option<crate::metrics::Registration>,
    /// The submissions of the handle that started it (`inbox.rs`), if one did.
    pub(super) inbox: Option<Arc<Inbox>>,
}

impl<R> Drop for Executor<R> {
    fn drop(&mut self) {
        // What the handle submitted and the executor never took answers `Rejected`.
        if let Some(inbox) = &self.inbox {
            drop(inbox.close());
        }
    }
}

/// Which job: the submitter and its tag.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Key {
    from: Address,
    tag: u64,
}

/// Where a job's one answer goes.
enum Reply {
    /// A `JobDone` to this address.
    To(Address),
    /// The slot of a handle's future.
    Slot(SlotGuard),
}

impl Reply {
    /// Marks the job started; false when its future was cancelled first.
    fn start(&self) -> bool {
        match self {
            Reply::To(_) => true,
            Reply::Slot(s) => s.0.start(),
        }
    }
}

/// A job waiting for a worker (or for its delay to pass).
struct Pending {
    key: Key,
    work: Work,
    reply: Reply,
    /// Since when it has been waiting for a worker.
    since: Instant,
    /// Not before then: its delay ends (see [`START_LEAD`]).
    start_at: Option<Instant>,
}

/// A job a worker was given.
struct Running {
    key: Key,
    reply: Reply,
}

/// The jobs a worker was given in one `RunJob`, in order, and when.
struct Batch {
    jobs: Vec<Running>,
    sent: Instant,
}

/// How early a job with a start time (its `submit_after` delay ends, a periodic run is
/// due) is admitted: its worker is given it with the time and sleeps the rest, so the job
/// starts within tens of microseconds of it rather than when a timer, the executor and a
/// worker thread have each had their turn (tokio's timer alone is 1 to 2 ms late, and on a
/// busy machine each wake-up on the way can wait for a CPU). More than tokio's lateness;
/// a worker given such a job is held for up to this long before it starts.
pub(crate) const START_LEAD: Duration = Duration::from_millis(3);

/// The most jobs in one batch.
pub(crate) const MAX_BATCH: usize = 64;

/// About how much work (by the mean run time so far) one batch holds at most: a job
/// queued behind others in a batch waits no longer than this for them.
pub(crate) const BATCH_WORK: Duration = Duration::from_micros(500);

/// How many queued jobs to give a worker that comes free: a quarter of its share of the
/// queue (so the other workers find jobs left when they come free), at most
/// [`MAX_BATCH`], and at most [`BATCH_WORK`] of work at the mean run time of the jobs so
/// far (`ran` jobs in `total`); one while no job has run yet. At least one.
pub(crate) fn batch_size(queued: usize, workers: usize, ran: u64, total: Duration) -> usize {
    let share = queued / (4 * workers.max(1));
    let by_time = if ran == 0 {
        1
    } else {
        let mean = total.as_nanos() / u128::from(ran);
        (BATCH_WORK.as_nanos() / mean.max(1)).min(MAX_BATCH as u128) as usize
    };
    share.min(by_time).clamp(1, MAX_BATCH)
}

/// A shutdown under way.
struct Closing {
    requesters: Vec<Address>,
    /// The last job is done: the workers are being stopped.
    finishing: bool,
}

/// Fires when the earliest delayed job is due.
#[derive(Debug, Clone, Copy, Serialize, Deserialize, Message)]
#[message(name = "executor.Due")]
struct Due;

/// Fires when an idle worker beyond the minimum has been idle for the idle time-out.
#[derive(Debug, Clone, Copy, Serialize, Deserialize, Message)]
#[message(name = "executor.Trim")]
struct Trim;

/// Fires when a draining shutdown's time is up.
#[derive(Debug, Clone, Copy, Serialize, Deserialize, Message)]
#[message(name = "executor.DrainDeadline")]
struct DrainDeadline;

impl Executor<ThreadWorkers> {
    /// An executor of worker threads (each a [`JobRunner`](super::JobRunner) on its own
    /// OS thread): for CPU work and blocking code. Runs jobs, closures and futures.
    pub fn threads() -> Self {
        Executor::of(ThreadWorkers)
    }
}

impl Executor<AsyncWorkers> {
    /// An executor of async workers on the shared runtime: for jobs that wait (I/O,
    /// timers) rather than compute. `max_workers` bounds how many run at once.
    pub fn asynchronous() -> Self {
        Executor::of(AsyncWorkers)
    }
}

impl Executor<Process> {
    /// An executor of worker processes, each started from `program` and running a
    /// [`JobRunner`](super::JobRunner) as its top object: for isolation, or for more
    /// than one process's worth of CPU. Only [`Job`](super::Job) types run there (the
    /// program registers them); closures and futures are refused with
    /// [`Rejected`]. A worker process that dies mid-job fails that job with a fault
    /// naming the signal or exit status, and is replaced.
    pub fn processes(program: Process) -> Self {
        let mut executor = Executor::of(program);
        executor.remote = true;
        executor
    }
}

impl<R: Recipe> Executor<R> {
    /// An executor whose workers `recipe` makes: objects that answer `RunJob` with `Ran`,
    /// as [`JobRunner`](super::JobRunner) does (for a recipe of your own, wrap one). Its
    /// workers are taken to be in this process.
    pub fn of(recipe: R) -> Self {
        Executor {
            recipe,
            settings: ExecutorSettings::default(),
            policy: None,
            remote: false,
            queue: Queue::new(None),
            delayed: Delayed::default(),
            workers: Workers::default(),
            running: 0,
            idle_since: AddressMap::default(),
            born: AddressMap::default(),
            counters: Counters::new(),
            closing: None,
            respawn: Backoff::growing(Duration::from_millis(10), Duration::from_secs(2))
                .jitter(0.25)
                .healthy_after(Some(Duration::from_secs(1))),
            respawning: false,
            trim_at: None,
            due_at: None,
            figures: None,
            inbox: None,
        }
    }

    /// Workers kept even when idle, started with the executor (default 0).
    pub fn min_workers(mut self, n: usize) -> Self {
        self.settings.min_workers = n;
        self
    }

    /// Most workers at once (default: the CPUs this process may use).
    pub fn max_workers(mut self, n: usize) -> Self {
        self.settings.max_workers = n;
        self
    }

    /// How long a worker beyond the minimum may stay idle before it is stopped (default
    /// 10 s).
    pub fn idle_timeout(mut self, timeout: Duration) -> Self {
        self.settings.idle_timeout = timeout;
        self
    }

    /// Jobs that may wait for a worker; `None` (default) for no limit.
    pub fn queue_size(mut self, n: Option<usize>) -> Self {
        self.settings.queue_size = n;
        self
    }

    /// Refuses a job with [`Rejected`] when `n` jobs already wait for a worker.
    pub fn reject_when_reached(mut self, n: usize) -> Self {
        self.settings.reject_when_reached = Some(n);
        self
    }

    /// An admission policy of your own: called with the [`Backlog`] for every job
    /// submitted (after the backlog limit), it refuses the job by returning the reason.
    /// It runs inside the executor: keep it quick.
    pub fn check_and_reject(
        mut self,
        policy: impl FnMut(&Backlog) -> Result<(), String> + Send + 'static,
    ) -> Self {
        self.policy = Some(Box::new(policy));
        self
    }

    /// Replaces all the parameters at once.
    pub fn settings(mut self, settings: ExecutorSettings) -> Self {
        self.settings = settings;
        self
    }

    /// Checks the parameters (an executor that fails this check ends at once with a
    /// fault naming the parameter, and answers what was submitted with [`Rejected`]).
    pub fn validate(&self) -> Result<(), ExecutorError> {
        self.settings.validate()
    }

    fn begin(&mut self, cx: &mut Context<Self>) {
        if let Err(e) = self.settings.validate() {
            tracing::error!(target: "strata::executor", error = %e, "executor not started");
            self.closing = Some(Closing {
                requesters: Vec::new(),
                finishing: true,
            });
            cx.complete(Faulted::new(e.to_string()));
            return;
        }
        self.queue.set_limit(self.settings.queue_size);
        for _ in 0..self.settings.min_workers {
            self.start_worker(cx);
        }
    }

    fn start_worker(&mut self, cx: &mut Context<Self>) -> Address {
        let worker = cx.create(self.recipe.make(()));
        self.workers.add_made(worker);
        let now = Instant::now();
        self.idle_since.insert(worker, now);
        self.born.insert(worker, now);
        self.counters.started += 1;
        worker
    }

    fn backlog(&self) -> Backlog {
        let (workers, idle) = (self.workers.len(), self.workers.idle_len());
        Backlog {
            queued: self.queue.len(),
            running: self.running,
            workers,
            idle,
        }
    }

    /// Takes what the handle's inbox holds, in order, as if each were a `Submit`.
    fn take_inbox(&mut self, cx: &mut Context<Self>) {
        let Some(inbox) = &self.inbox else {
            return;
        };
        let from = inbox.owner();
        let submits = inbox.take();
        if submits.is_empty() {
            return;
        }
        let now = Instant::now();
        for s in submits {
            self.submit_at(cx, from, s, now);
        }
    }

    fn submit(&mut self, cx: &mut Context<Self>, from: Address, s: Submit) {
        self.submit_at(cx, from, s, Instant::now());
    }

    /// A submission handled at `now`.
    fn submit_at(&mut self, cx: &mut Context<Self>, from: Address, s: Submit, now: Instant) {
        self.counters.submitted += 1;
        let Submit {
            tag,
            work,
            start_at,
            slot,
        } = s;
        let reply = match slot {
            Some(slot) => Reply::Slot(slot),
            None => Reply::To(from),
        };
        let key = Key { from, tag };
        if self.closing.is_some() {
            self.reject(cx, key, reply, "the executor is shutting down".to_string());
            return;
        }
        if self.remote && work.is_local() {
            let reason = format!(
                "a {} cannot run in a worker process: submit a Job type that the worker \
                 program registers (JobRunner::job)",
                work.describe()
            );
            self.reject(cx, key, reply, reason);
            return;
        }
        let mut pending = Pending {
            key,
            work,
            reply,
            since: now,
            start_at: None,
        };
        match start_at {
            Some(at) if at > now => {
                pending.start_at = Some(at);
                if at <= now + START_LEAD {
                    self.admit(cx, pending);
                } else {
                    self.delayed.push(at, pending);
                    self.arm_due(cx);
                }
            }
            _ => self.admit(cx, pending),
        }
    }

    /// A job ready to run (submitted, or its delay passed): admitted or refused.
    fn admit(&mut self, cx: &mut Context<Self>, p: Pending) {
        let backlog = self.backlog();
        let policy = &mut self.policy;
        let decision = admission::decide(
            &backlog,
            self.settings.max_workers,
            self.settings.reject_when_reached,
            self.queue.has_room(),
            |b| policy.as_mut().map_or(Ok(()), |f| f(b)),
        );
        match decision {
            Decision::ToWorker => self.run_on_idle(cx, p),
            Decision::Grow => {
                if p.reply.start() {
                    let worker = self.start_worker(cx);
                    self.workers.next_idle_newest();
                    self.send_to_worker(cx, worker, vec![p]);
                } else {
                    self.counters.cancelled += 1;
                }
            }
            Decision::ToQueue => {
                if self.queue.push(p).is_err() {
                    unreachable!("admission saw room in the queue");
                }
            }
            Decision::Reject(reason) => self.reject(cx, p.key, p.reply, reason),
        }
    }

    fn reject(&mut self, cx: &mut Context<Self>, key: Key, reply: Reply, reason: String) {
        self.counters.rejected += 1;
        tracing::debug!(target: "strata::executor", executor = %cx.address(), %reason, "job rejected");
        answer(
            cx,
            key,
            reply,
            AnyMessage::new(Rejected::new(reason)),
            Duration::ZERO,
        );
    }

    /// Gives `p` to the idle worker that came free last (there is one).
    fn run_on_idle(&mut self, cx: &mut Context<Self>, p: Pending) {
        if !p.reply.start() {
            // Its future was cancelled an instant ago; the `Cancel` is on its way.
            self.counters.cancelled += 1;
            return;
        }
        let worker = self
            .workers
            .next_idle_newest()
            .expect("run_on_idle needs an idle worker");
        self.send_to_worker(cx, worker, vec![p]);
    }

    /// Takes the next batch off the queue (see [`batch_size`]), each job started; jobs
    /// whose futures were cancelled meanwhile are counted and left out, so the batch may
    /// be empty.
    fn take_batch(&mut self) -> Vec<Pending> {
        let runs = &self.counters.runs;
        let n = batch_size(
            self.queue.len(),
            self.workers.len(),
            runs.count(),
            runs.total(),
        );
        let mut batch: Vec<Pending> = Vec::with_capacity(n);
        while batch.len() < n {
            let Some(p) = self.queue.pop() else {
                break;
            };
            if p.start_at.is_some() && !batch.is_empty() {
                // A job with a start time goes alone, so the jobs before it do not wait.
                self.queue.push_front(p);
                break;
            }
            if !p.reply.start() {
                self.counters.cancelled += 1;
                continue;
            }
            let alone = p.start_at.is_some();
            batch.push(p);
            if alone {
                break;
            }
        }
        batch
    }

    /// Sends `jobs` (started, at least one) to `worker`, taken off the idle list, in one
    /// `RunJob`.
    fn send_to_worker(&mut self, cx: &mut Context<Self>, worker: Address, jobs: Vec<Pending>) {
        let now = Instant::now();
        self.idle_since.remove(&worker);
        let start_at = jobs.iter().filter_map(|p| p.start_at).max();
        let mut work = Vec::with_capacity(jobs.len());
        let mut batch = Batch {
            jobs: Vec::with_capacity(jobs.len()),
            sent: now,
        };
        for p in jobs {
            self.counters.waits.record(now.duration_since(p.since));
            work.push(p.work);
            batch.jobs.push(Running {
                key: p.key,
                reply: p.reply,
            });
        }
        match cx.try_send(worker, RunJob { work, start_at }) {
            Ok(()) => {
                self.running += batch.jobs.len();
                self.workers.assign(worker, batch);
            }
            Err(e) => {
                tracing::debug!(target: "strata::executor", executor = %cx.address(), %worker, error = %e, "a worker refused a job");
                let gone = matches!(
                    e,
                    SendError::NoSuchObject { .. } | SendError::NoRoute { .. }
                );
                // A worker taken from the idle list holds no batch.
                let _ = self.workers.refused(worker, gone);
                let why = format!("worker {worker} refused the job: {e}");
                self.fail_batch(cx, batch, &why, now);
            }
        }
    }

    /// Sends queued jobs to idle workers; then sees whether a shutdown can end.
    fn dispatch(&mut self, cx: &mut Context<Self>) {
        while self.workers.has_idle() && !self.queue.is_empty() {
            let batch = self.take_batch();
            if batch.is_empty() {
                continue; // all cancelled: take again
            }
            let worker = self
                .workers
                .next_idle_newest()
                .expect("has_idle says there is one");
            self.send_to_worker(cx, worker, batch);
        }
        self.maybe_close(cx);
    }

    /// Fails every job of a batch that got no answer from its worker, with `why`.
    fn fail_batch(&mut self, cx: &mut Context<Self>, batch: Batch, why: &str, now: Instant) {
        let took = now.duration_since(batch.sent);
        for job in batch.jobs {
            let fault = AnyMessage::new(Faulted::new(why.to_string()));
            self.finish(cx, job, fault, took);
        }
    }

    /// A job ended with `value` after running for `took`.
    fn finish(&mut self, cx: &mut Context<Self>, job: Running, value: AnyMessage, took: Duration) {
        self.counters.runs.record(took);
        if value.is_fault() {
            self.counters.failed += 1;
        }
        answer(cx, job.key, job.reply, value, took);
    }

    /// A busy worker answered its batch.
    fn answered(&mut self, cx: &mut Context<Self>, worker: Address, batch: Batch, e: Envelope) {
        let now = Instant::now();
        self.idle_since.insert(worker, now);
        self.running -= batch.jobs.len();
        match e.take::<Ran>() {
            Ok(ran) => {
                let given = batch.jobs.len();
                let answered = ran.runs.len();
                let mut runs = ran.runs.into_iter();
                for job in batch.jobs {
                    match runs.next() {
                        Some((value, seconds)) => {
                            let took = Duration::try_from_secs_f64(seconds)
                                .unwrap_or_else(|_| now.duration_since(batch.sent));
                            self.finish(cx, job, value, took);
                        }
                        None => {
                            let fault = Faulted::new(format!(
                                "worker {worker} answered {answered} of the {given} jobs it was given"
                            ));
                            self.finish(cx, job, AnyMessage::new(fault), Duration::ZERO);
                        }
                    }
                }
            }
            // Not a `Ran`: a fault from the runtime or a link standing in for the answer,
            // which stands for every job of the batch.
            Err(other) => {
                let message = other.into_message();
                let why = match message.as_fault() {
                    Some(f) => f.reason(),
                    None => format!("worker {worker} answered {}", message.type_name()),
                };
                let took = now.duration_since(batch.sent);
                let mut jobs = batch.jobs.into_iter();
                if let Some(first) = jobs.next() {
                    self.finish(cx, first, message, took);
                }
                for job in jobs {
                    self.finish(cx, job, AnyMessage::new(Faulted::new(why.clone())), took);
                }
            }
        }
        self.dispatch(cx);
        self.arm_trim(cx);
    }

    fn worker_ended(&mut self, cx: &mut Context<Self>, worker: Address, value: AnyMessage) {
        self.idle_since.remove(&worker);
        let born = self.born.remove(&worker);
        let Some(ended) = self.workers.ended(worker) else {
            return; // a worker let go for idleness, or stopped: nothing owed
        };
        let why = match value.as_fault() {
            Some(f) => f.reason(),
            None => format!("it returned {}", value.type_name()),
        };
        let now = Instant::now();
        let why_job = format!("the worker running this job ended: {why}");
        for batch in ended.jobs {
            self.running -= batch.jobs.len();
            self.fail_batch(cx, batch, &why_job, now);
        }
        if self.closing.as_ref().is_some_and(|c| c.finishing) {
            return;
        }
        self.counters.lost += 1;
        tracing::warn!(target: "strata::executor", executor = %cx.address(), %worker, %why, "a worker ended; replacing it as needed");
        let wait = match born {
            Some(b) => self.respawn.ended_after(now.duration_since(b)),
            None => self.respawn.failed(),
        };
        // The backoff has no budget: it always gives a wait.
        let after = wait.unwrap_or(Duration::from_secs(2));
        if !self.respawning {
            self.respawning = true;
            let timer = cx.create(Delay::new(after));
            cx.on_return(timer, |ex: &mut Self, cx: &mut Context<Self>, _| {
                ex.respawning = false;
                ex.top_up(cx);
                ex.dispatch(cx);
            });
        }
        self.maybe_close(cx);
    }

    /// Starts workers for the jobs waiting and up to the minimum.
    fn top_up(&mut self, cx: &mut Context<Self>) {
        if self.closing.as_ref().is_some_and(|c| c.finishing) {
            return;
        }
        let b = self.backlog();
        let s = &self.settings;
        let busy = b.workers - b.idle;
        let n = sizing::to_start(s.min_workers, s.max_workers, b.workers, busy, b.queued);
        for _ in 0..n {
            self.start_worker(cx);
        }
    }

    /// Sets the `Trim` timer for the first idle worker beyond the minimum to expire.
    fn arm_trim(&mut self, cx: &mut Context<Self>) {
        if self.trim_at.is_some() || self.workers.len() <= self.settings.min_workers {
            return;
        }
        let idle = self.idle_list();
        let s = &self.settings;
        let now = Instant::now();
        let (_, next) =
            sizing::to_trim(s.min_workers, self.workers.len(), s.idle_timeout, now, idle);
        if let Some(at) = next {
            cx.start(Trim, at.saturating_duration_since(now));
            self.trim_at = Some(at);
        }
    }

    fn idle_list(&self) -> Vec<(Address, Instant)> {
        let now = Instant::now();
        self.workers
            .idle()
            .map(|w| (w, self.idle_since.get(&w).copied().unwrap_or(now)))
            .collect()
    }

    fn trim(&mut self, cx: &mut Context<Self>) {
        self.trim_at = None;
        if self.closing.as_ref().is_some_and(|c| c.finishing) {
            return;
        }
        let s = &self.settings;
        let now = Instant::now();
        let (stale, _) = sizing::to_trim(
            s.min_workers,
            self.workers.len(),
            s.idle_timeout,
            now,
            self.idle_list(),
        );
        for worker in stale {
            self.workers.leave(worker);
            self.idle_since.remove(&worker);
            self.born.remove(&worker);
            self.counters.shrunk += 1;
            cx.stop(worker);
        }
        self.arm_trim(cx);
    }

    /// Sets (or clears) the `Due` timer for the earliest delayed job.
    fn arm_due(&mut self, cx: &mut Context<Self>) {
        match self.delayed.next_due() {
            Some(due) if self.due_at != Some(due) => {
                let admit_at = due.checked_sub(START_LEAD).unwrap_or(due);
                cx.start(Due, admit_at.saturating_duration_since(Instant::now()));
                self.due_at = Some(due);
            }
            Some(_) => {}
            None => {
                if self.due_at.take().is_some() {
                    cx.cancel::<Due>();
                }
            }
        }
    }

    fn due(&mut self, cx: &mut Context<Self>) {
        self.due_at = None;
        let now = Instant::now();
        // Admitted a little early; their workers wait out the rest (`start_at`).
        while let Some(mut p) = self.delayed.pop_due(now + START_LEAD) {
            p.since = now;
            self.admit(cx, p);
        }
        self.arm_due(cx);
        self.maybe_close(cx);
    }

    fn cancel(&mut self, cx: &mut Context<Self>, key: Key) {
        let found = self
            .queue
            .remove_first(|p| p.key == key)
            .or_else(|| self.delayed.remove_first(|p| p.key == key));
        if let Some(p) = found {
            self.counters.cancelled += 1;
            let fault = Cancelled::new("cancelled before it started");
            answer(cx, key, p.reply, AnyMessage::new(fault), Duration::ZERO);
            self.arm_due(cx);
            self.maybe_close(cx);
        }
    }

    fn shutdown(&mut self, cx: &mut Context<Self>, mode: ShutdownMode, requester: Option<Address>) {
        let closing = self.closing.get_or_insert(Closing {
            requesters: Vec::new(),
            finishing: false,
        });
        if closing.finishing {
            if let Some(r) = requester {
                // Ending already: the statistics now are the final ones.
                let s = self.statistics();
                cx.send(r, s);
            }
            return;
        }
        closing.requesters.extend(requester);
        tracing::info!(target: "strata::executor", executor = %cx.address(), ?mode, queued = self.queue.len(),
            delayed = self.delayed.len(), running = self.backlog().running, "executor shutting down");
        match mode {
            ShutdownMode::Wait => {}
            ShutdownMode::CancelPending => {
                self.cancel_pending(cx, "the executor shut down before the job started")
            }
            ShutdownMode::Drain { timeout } => cx.start(DrainDeadline, timeout),
        }
        self.maybe_close(cx);
    }

    /// Answers every job no worker has taken with `Cancelled`.
    fn cancel_pending(&mut self, cx: &mut Context<Self>, reason: &str) {
        let pending: Vec<Pending> = self.queue.drain().chain(self.delayed.drain()).collect();
        for p in pending {
            self.counters.cancelled += 1;
            let fault = AnyMessage::new(Cancelled::new(reason));
            answer(cx, p.key, p.reply, fault, Duration::ZERO);
        }
        self.arm_due(cx);
    }

    /// A draining shutdown's time is up: cancel what waits, fail what runs, end now.
    fn drain_deadline(&mut self, cx: &mut Context<Self>) {
        if self.closing.as_ref().is_none_or(|c| c.finishing) {
            return;
        }
        self.cancel_pending(
            cx,
            "the executor's drain time-out passed before the job started",
        );
        let now = Instant::now();
        let running: Vec<Batch> = self.workers.take_jobs();
        self.running = 0;
        for batch in running {
            let why = "the executor's drain time-out passed while the job ran";
            self.fail_batch(cx, batch, why, now);
        }
        let s = self.close_with_statistics(cx);
        // End now, without waiting for the workers: they are stopped as the executor
        // ends, and a worker thread still running a job finishes it in the background.
        cx.complete(s);
    }

    /// Ends a shutdown once nothing is waiting or running.
    fn maybe_close(&mut self, cx: &mut Context<Self>) {
        let Some(closing) = &self.closing else {
            return;
        };
        if closing.finishing
            || !self.queue.is_empty()
            || !self.delayed.is_empty()
            || self.running > 0
        {
            return;
        }
        let s = self.close_with_statistics(cx);
        // Stop every worker and end with the statistics once they all have returned.
        cx.abort(s);
    }

    /// Marks the shutdown finishing and answers whoever asked for it.
    fn close_with_statistics(&mut self, cx: &mut Context<Self>) -> ExecutorStatistics {
        let s = self.statistics();
        if let Some(closing) = &mut self.closing {
            closing.finishing = true;
            for r in closing.requesters.drain(..) {
                cx.send(r, s.clone());
            }
        }
        tracing::info!(target: "strata::executor", executor = %cx.address(), executed = s.executed, failed = s.failed,
            cancelled = s.cancelled, rejected = s.rejected, "executor ending");
        s
    }

    fn statistics(&self) -> ExecutorStatistics {
        let mut s = self.counters.statistics();
        let b = self.backlog();
        s.queued = b.queued as u64;
        s.delayed = self.delayed.len() as u64;
        s.running = b.running as u64;
        s.workers = b.workers as u64;
        s.idle = b.idle as u64;
        s.shutting_down = self.closing.is_some();
        s
    }
}

/// Sends a job's one answer: a `JobDone` to an object, or into a handle's slot.
fn answer<R: Recipe>(
    cx: &mut Context<Executor<R>>,
    key: Key,
    reply: Reply,
    value: AnyMessage,
    ran: Duration,
) {
    match reply {
        // A notice: an answer owed is never refused for a full mailbox.
        Reply::To(to) => cx.notify(
            to,
            JobDone {
                tag: key.tag,
                value,
                seconds: ran.as_secs_f64(),
            },
        ),
        Reply::Slot(slot) => slot.0.resolve(value),
    }
}

/// The executor's handlers, tried in this order; whatever none of the typed ones takes is
/// a busy worker's answer.
#[crate::machine]
impl<R: Recipe> Executor<R> {
    #[guard(sender == cx.address())]
    fn on_start(&mut self, cx: &mut Context<Self>, _: Start) {
        self.figures = Some(crate::metrics::sources::executor(cx.address()));
        self.begin(cx);
    }

    fn on_returned(&mut self, cx: &mut Context<Self>, returned: Returned) {
        let worker = cx.sender();
        self.worker_ended(cx, worker, returned.value);
    }

    #[guard(!self.workers.contains(sender))]
    fn on_stop(&mut self, cx: &mut Context<Self>, _: Stop) {
        self.take_inbox(cx);
        self.shutdown(cx, ShutdownMode::CancelPending, None);
    }

    fn on_submit(&mut self, cx: &mut Context<Self>, s: Submit) {
        let from = cx.sender();
        self.submit(cx, from, s);
    }

    fn on_submitted(&mut self, cx: &mut Context<Self>, _: Submitted) {
        self.take_inbox(cx);
    }

    // The handlers of what a handle sends besides its jobs take its inbox first, so they
    // see every job submitted before them.

    fn on_cancel(&mut self, cx: &mut Context<Self>, c: Cancel) {
        self.take_inbox(cx);
        let from = cx.sender();
        self.cancel(cx, Key { from, tag: c.tag });
    }

    fn on_shutdown(&mut self, cx: &mut Context<Self>, s: super::messages::Shutdown) {
        self.take_inbox(cx);
        let from = cx.sender();
        self.shutdown(cx, s.mode, (!from.is_null()).then_some(from));
    }

    fn on_stats(&mut self, cx: &mut Context<Self>, _: ExecutorStats) -> ExecutorStatistics {
        self.take_inbox(cx);
        self.statistics()
    }

    #[guard(sender == cx.address())]
    fn on_due(&mut self, cx: &mut Context<Self>, _: Due) {
        self.due(cx);
    }

    #[guard(sender == cx.address())]
    fn on_trim(&mut self, cx: &mut Context<Self>, _: Trim) {
        self.trim(cx);
    }

    #[guard(sender == cx.address())]
    fn on_drain_deadline(&mut self, cx: &mut Context<Self>, _: DrainDeadline) {
        self.drain_deadline(cx);
    }

    fn on_other(&mut self, cx: &mut Context<Self>, envelope: Envelope) {
        let sender = envelope.sender();
        match self.workers.message_from(sender) {
            Origin::Answer(job) => self.answered(cx, sender, job, envelope),
            Origin::IdleMember => {
                tracing::debug!(target: "strata::executor", worker = %sender, message = envelope.type_name(), "message from an idle worker dropped");
            }
            Origin::Stranger => {
                tracing::warn!(target: "strata::executor", executor = %cx.address(), from = %sender,
                    message = envelope.type_name(), "unexpected message (submit jobs with Submit)");
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn batches_grow_with_the_queue_and_shrink_with_the_jobs_run_time() {
        let us = Duration::from_micros;
        // Nothing has run yet: one at a time.
        assert_eq!(batch_size(10_000, 2, 0, Duration::ZERO), 1);
        // A short queue: one at a time, the rest left for the other workers.
        assert_eq!(batch_size(7, 2, 100, us(100)), 1);
        assert_eq!(batch_size(80, 2, 100, us(100)), 10);
        // A long queue of quick jobs: the most.
        assert_eq!(batch_size(1_000_000, 2, 100, us(100)), MAX_BATCH);
        // Jobs of 50 µs: about 500 µs of them.
        assert_eq!(batch_size(1_000_000, 2, 100, us(5_000)), 10);
        // Jobs longer than a batch's work: one at a time.
        assert_eq!(batch_size(1_000_000, 2, 10, Duration::from_millis(20)), 1);
        assert_eq!(batch_size(1_000_000, 0, 1, Duration::ZERO), MAX_BATCH);
    }
}
