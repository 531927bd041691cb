//! Spools: pools of workers that share out requests and push back under pressure.
//!
//! A [`Spool`] is an object. Clients send requests to its address exactly as they would to
//! one worker; the spool hands each to an idle worker (round-robin), relays the worker's
//! answer back to the client, and so always knows which workers are free and how long
//! answers take. Workers are any objects: machines, threads, async objects, child
//! processes — anything a [`Recipe`] can make — or objects elsewhere that
//! join with [`JoinSpool`] (and leave with [`LeaveSpool`]). A spool may start empty.
//!
//! ```
//! use strata::prelude::*;
//! use strata::spool::Spool;
//!
//! struct Double;
//!
//! #[strata::machine]
//! impl Double {
//!     fn double(&mut self, _cx: &mut Context<Self>, n: u64) -> u64 {
//!         n * 2
//!     }
//! }
//!
//! let mut cx = ThreadContext::attach();
//! let spool = cx.create(Spool::of(|| Threaded(Double)).workers(4).queue_size(Some(100)));
//! let answer = cx.ask(spool, 21u64);
//! assert_eq!(answer.downcast::<u64>().unwrap(), 42);
//! ```
//!
//! Under pressure the spool answers at once instead of letting requests pile up:
//!
//! * all workers busy → the request waits in a bounded queue; queue full → `Overloaded`;
//! * with a `responsiveness` target, when the mean response time over a moving window is
//!   above it the spool is *busy*: only `busy_pass_rate` of new requests are admitted, the
//!   rest get `Busy` at once;
//! * a worker that ends mid-request answers that request with a fault; every request gets
//!   exactly one answer. The worker is replaced after `stand_down` (±25% jitter, a
//!   [`Backoff`]); without a stand-down the spool itself fails (and
//!   answers everything it holds). A stopped spool answers everything it holds, too.
//!
//! Ask for [`SpoolStatistics`] with [`SpoolStats`]. The parameters and their checks are
//! [`SpoolSettings`].
//!
//! # Which pool when
//!
//! * A **spool** when clients *ask* and wait for an answer: interchangeable workers behind
//!   one address, answers relayed, load shed with `Busy`/`Overloaded`. The HTTP server's
//!   handlers, a texture service, a set of remote replicas.
//! * An [**executor**](crate::executor) when the caller *submits work* and wants a future
//!   for its result: jobs rather than messages, waiting for all or any, cancellation while
//!   pending, a pool that grows and shrinks. It reuses this module's queue, membership
//!   and durations.
//! * A **supervisor** (planned, SPEC §6) when workers are long-running services to be *kept
//!   alive*, each with a stable id, restarted with a growing backoff and a budget. It routes
//!   no requests.
//!
//! # How it is built
//!
//! The spool machine (this file) assembles parts that each do one job and know nothing of
//! messages: `settings` (parameters and checks), `admission` (the pure decision: to a
//! worker, to the queue, `Busy` or `Overloaded`), `queue` (the bounded FIFO of waiting
//! requests), `workers` (membership: made or joined, idle round-robin, busy, leaving) and
//! `stats` (counts and response times). The executor (`crate::executor`) reuses `queue`,
//! `workers` and the histogram of `stats`.

mod admission;
pub(crate) mod queue;
mod settings;
pub(crate) mod stats;
pub(crate) mod workers;

use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};

use admission::{Admission, Decision};
use queue::Queue;
pub use settings::{SpoolError, SpoolSettings};
use stats::Timing;
pub use stats::{SpoolStatistics, SpoolStats};
use workers::{Leave, Origin, Workers};

use crate::backoff::Backoff;
use crate::message::AnyMessage;
use crate::object::{Context, Recipe};
use crate::random::Rng;
use crate::request::Delay;
use crate::runtime::{Envelope, SendError};
use crate::standard::{Aborted, Busy, Ended, Faulted, Overloaded, Returned, Start, Stop, Unread};
use crate::{Address, Message};

/// Adds a worker that lives elsewhere (another process, another host) to a spool.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Message)]
#[message(name = "JoinSpool")]
pub struct JoinSpool(pub Address);

/// Takes a worker out of a spool (after its current request, if any).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Message)]
#[message(name = "LeaveSpool")]
pub struct LeaveSpool(pub Address);

/// A request a worker is handling: who waits for the answer, and since when.
struct InFlight {
    client: Address,
    arrived: Instant,
    deadline: Option<Instant>,
    /// The request encoded, to give it to another worker if this one ends first (only
    /// with `retry_on_loss`, and only for a first try).
    copy: Option<Vec<u8>>,
}

/// A request waiting for a worker.
struct Pending {
    client: Address,
    message: AnyMessage,
    arrived: Instant,
    deadline: Option<Instant>,
    /// Given to a worker before, which ended without answering.
    retried: bool,
}

/// A pool of workers behind one address; see the [module docs](self).
pub struct Spool<R> {
    recipe: R,
    settings: SpoolSettings,
    // The parts below take their parameters from `settings` when the spool starts (after
    // the builder methods, and only if the settings are valid): see `configure`.
    admission: Admission,
    queue: Queue<Pending>,
    workers: Workers<InFlight>,
    timing: Timing,
    stats: SpoolStatistics,
    /// When to replace a worker that ended; `None`: the spool fails instead.
    stand_down: Option<Backoff>,
    /// Draws for the busy pass rate (and the stand-down's seed).
    rng: Rng,
    /// Its entry in the process's figures (`crate::metrics`), from start to end.
    figures: Option<crate::metrics::Registration>,
}

impl<R: Recipe> Spool<R> {
    /// A spool whose workers `recipe` makes, with default settings.
    pub fn of(recipe: R) -> Self {
        Self::with(recipe, SpoolSettings::default())
    }

    /// A spool with the given settings (checked when it starts; see [`Spool::validate`]).
    pub fn with(recipe: R, settings: SpoolSettings) -> Self {
        Spool {
            recipe,
            admission: Admission {
                target: None,
                pass_rate: 1.0,
            },
            queue: Queue::new(None),
            workers: Workers::default(),
            timing: Timing::new(settings.window()),
            stats: SpoolStatistics::default(),
            stand_down: None,
            rng: Rng::seeded(),
            settings,
            figures: None,
        }
    }

    /// Workers created at start.
    pub fn workers(self, n: usize) -> Self {
        self.set(|s| s.workers = n)
    }

    /// Requests that may wait for a worker; `None` for no limit.
    pub fn queue_size(self, n: Option<usize>) -> Self {
        self.set(|s| s.queue_size = n)
    }

    /// Target response time (mean over a moving window); above it the spool is busy.
    pub fn responsiveness(self, target: Duration) -> Self {
        self.set(|s| s.responsiveness = Some(target))
    }

    /// Share of new requests admitted while busy.
    pub fn busy_pass_rate(self, rate: f64) -> Self {
        self.set(|s| s.busy_pass_rate = rate)
    }

    /// Delay before replacing a worker that ended; `None` makes the spool fail instead.
    pub fn stand_down(self, delay: Option<Duration>) -> Self {
        self.set(|s| s.stand_down = delay)
    }

    /// Gives a request whose worker ended before answering once more to another worker
    /// (see [`SpoolSettings::retry_on_loss`]); only for idempotent requests.
    pub fn retry_on_loss(self, retry: bool) -> Self {
        self.set(|s| s.retry_on_loss = retry)
    }

    /// Requests a worker is given at once (default 1); see [`SpoolSettings::in_flight`].
    pub fn in_flight(self, k: usize) -> Self {
        self.set(|s| s.in_flight = k)
    }

    /// Checks the parameters (a spool that fails this check ends at once with a fault
    /// naming the parameter).
    pub fn validate(&self) -> Result<(), SpoolError> {
        self.settings.validate()
    }

    fn set(mut self, change: impl FnOnce(&mut SpoolSettings)) -> Self {
        change(&mut self.settings);
        self
    }

    /// Hands the (valid) settings to the parts.
    fn configure(&mut self) {
        let s = &self.settings;
        self.admission = Admission {
            target: s.responsiveness,
            pass_rate: s.busy_pass_rate,
        };
        self.queue.set_limit(s.queue_size);
        self.workers.set_per_worker(s.in_flight);
        self.timing.set_window(s.window());
        self.stand_down = s.stand_down_backoff(self.rng.next_u64());
    }

    fn start(&mut self, cx: &mut Context<Self>) {
        if let Err(e) = self.settings.validate() {
            tracing::error!(target: "strata::spool", error = %e, "spool not started");
            cx.complete(Faulted::new(e.to_string()));
            return;
        }
        self.configure();
        for _ in 0..self.settings.workers {
            self.add_worker(cx);
        }
    }

    fn add_worker(&mut self, cx: &mut Context<Self>) {
        let worker = self.recipe.make(());
        let address = cx.create(worker);
        self.workers.add_made(address);
    }

    /// A new request from `envelope`'s sender: admitted (to a worker or the queue) or
    /// turned away at once.
    fn request(&mut self, cx: &mut Context<Self>, envelope: Envelope) {
        let now = Instant::now();
        let client = envelope.sender();
        let decision = self.admission.decide(
            || self.timing.recent_mean(now),
            || self.rng.unit(),
            self.workers.has_idle(),
            self.queue.len(),
            self.queue.limit(),
        );
        let pending = |envelope: Envelope| Pending {
            client,
            deadline: envelope.deadline(),
            message: envelope.into_message(),
            arrived: now,
            retried: false,
        };
        match decision {
            Decision::ToWorker => {
                self.stats.admitted += 1;
                let worker = self
                    .workers
                    .next_idle()
                    .expect("admission saw an idle worker");
                self.assign(cx, worker, pending(envelope));
                if !self.queue.is_empty() {
                    // A refused assignment put its request back for another worker.
                    self.dispatch(cx);
                }
            }
            Decision::ToQueue => {
                self.stats.admitted += 1;
                if self.queue.push(pending(envelope)).is_err() {
                    unreachable!("admission saw room in the queue");
                }
            }
            Decision::Busy { mean, target } => {
                self.stats.rejected_busy += 1;
                cx.send(
                    client,
                    Busy::new(format!(
                        "mean response time {mean:?} is over the target {target:?}"
                    )),
                );
            }
            Decision::Overloaded => {
                self.stats.rejected_overloaded += 1;
                cx.send(
                    client,
                    Overloaded::new(format!(
                        "all {} workers are busy and the queue of {} is full",
                        self.workers.len(),
                        self.queue.len()
                    )),
                );
            }
        }
    }

    /// Gives `p` to `worker` (taken off the idle list).
    fn assign(&mut self, cx: &mut Context<Self>, worker: Address, p: Pending) {
        let copy = if self.settings.retry_on_loss && !p.retried {
            match crate::message::codec::to_binary(&p.message) {
                Ok(bytes) => Some(bytes),
                Err(e) => {
                    tracing::debug!(target: "strata::spool", spool = %cx.address(), message = p.message.type_name(), error = %e, "request cannot be copied: no retry for it");
                    None
                }
            }
        } else {
            None
        };
        match cx.try_send_any_by(worker, p.message, p.deadline) {
            Ok(()) => self.workers.assign(
                worker,
                InFlight {
                    client: p.client,
                    arrived: p.arrived,
                    deadline: p.deadline,
                    copy,
                },
            ),
            Err(e) => {
                // The worker is gone (its Returned is on the way) or cannot take work: it
                // is not idle again, and the request (never delivered) is retried with
                // `retry_on_loss` or else answered with a fault.
                tracing::debug!(target: "strata::spool", spool = %cx.address(), worker = %worker, error = %e, "worker refused a request");
                let gone = matches!(
                    e,
                    SendError::NoSuchObject { .. } | SendError::NoRoute { .. }
                );
                let held = self.workers.refused(worker, gone);
                let mut job = InFlight {
                    client: p.client,
                    arrived: p.arrived,
                    deadline: p.deadline,
                    copy,
                };
                if !self.retry(cx, &mut job) {
                    self.stats.failed += 1;
                    let why = format!("worker {worker} refused the request: {e}");
                    cx.send_any(p.client, AnyMessage::new(Faulted::new(why)));
                }
                // A joined worker that is gone took the requests it held with it.
                self.lost(cx, held, || {
                    format!("the worker handling this request ({worker}) is gone")
                });
            }
        }
    }

    /// Sends queued requests to idle workers; a request whose deadline passed while it
    /// waited is answered `TimedOut` instead (nobody waits for its answer any more).
    fn dispatch(&mut self, cx: &mut Context<Self>) {
        let mut now: Option<Instant> = None;
        while !self.queue.is_empty() {
            if !self.workers.has_idle() {
                return;
            }
            let p = self.queue.pop().expect("not empty");
            if let Some(d) = p.deadline {
                if *now.get_or_insert_with(Instant::now) >= d {
                    self.stats.expired += 1;
                    cx.send(p.client, crate::standard::TimedOut::past_deadline());
                    continue;
                }
            }
            let worker = self.workers.next_idle().expect("checked");
            self.assign(cx, worker, p);
        }
    }

    /// Requests whose worker ended before answering them: each retried (see
    /// [`retry`](Self::retry)) or answered with a fault saying `why`. Retries keep their
    /// order at the front of the queue.
    fn lost(
        &mut self,
        cx: &mut Context<Self>,
        jobs: std::collections::VecDeque<InFlight>,
        why: impl Fn() -> String,
    ) {
        // Newest first, each to the front: the oldest ends up first in the queue.
        for mut job in jobs.into_iter().rev() {
            if !self.retry(cx, &mut job) {
                self.stats.failed += 1;
                cx.send(job.client, Faulted::new(why()));
            }
        }
    }

    /// The worker doing `job` ended before answering: with `retry_on_loss`, a first try
    /// goes back to the front of the queue for another worker (true); otherwise false,
    /// and the caller answers it with a fault.
    fn retry(&mut self, cx: &mut Context<Self>, job: &mut InFlight) -> bool {
        let Some(copy) = job.copy.take() else {
            return false;
        };
        match crate::message::codec::from_binary(&copy) {
            Ok(message) => {
                self.stats.retried += 1;
                tracing::debug!(target: "strata::spool", spool = %cx.address(), client = %job.client, "request given to another worker");
                self.queue.push_front(Pending {
                    client: job.client,
                    message,
                    arrived: job.arrived,
                    deadline: job.deadline,
                    retried: true,
                });
                true
            }
            Err(e) => {
                tracing::warn!(target: "strata::spool", spool = %cx.address(), error = %e, "the copy of a request does not decode: no retry");
                false
            }
        }
    }

    /// A busy worker answered `job` with `reply` (the worker is idle again already).
    fn answered(&mut self, cx: &mut Context<Self>, job: InFlight, reply: AnyMessage) {
        let now = Instant::now();
        self.timing.record(now, now.duration_since(job.arrived));
        self.stats.completed += 1;
        cx.send_any(job.client, reply);
        self.dispatch(cx);
    }

    fn leave(&mut self, cx: &mut Context<Self>, worker: Address) {
        let leave = self.workers.leave(worker);
        tracing::debug!(target: "strata::spool", spool = %cx.address(), %worker, ?leave, "a worker leaves");
        if leave == (Leave::Now { made: true }) {
            cx.stop(worker);
        }
    }

    /// A joined worker ended, or the link to its process closed: the request it held is
    /// answered with a fault, and it is no member any more (nobody replaces it).
    fn joined_worker_gone(&mut self, cx: &mut Context<Self>, worker: Address) {
        let Some(ended) = self.workers.ended(worker) else {
            return;
        };
        tracing::info!(target: "strata::spool", spool = %cx.address(), %worker, "a joined worker is gone");
        self.lost(cx, ended.jobs, || {
            format!("the worker handling this request ({worker}) is gone")
        });
        self.dispatch(cx);
    }

    fn worker_ended(&mut self, cx: &mut Context<Self>, worker: Address, value: AnyMessage) {
        let Some(ended) = self.workers.ended(worker) else {
            return;
        };
        let why = match value.as_fault() {
            Some(f) => f.reason(),
            None => format!("returned {}", value.type_name()),
        };
        if !ended.jobs.is_empty() {
            self.lost(cx, ended.jobs, || {
                format!("the worker handling this request ended ({why})")
            });
            self.dispatch(cx);
        }
        if ended.leaving {
            return;
        }
        let Some(stand_down) = self.stand_down.as_mut() else {
            tracing::warn!(target: "strata::spool", spool = %cx.address(), worker = %worker, %why, "a worker ended and the spool has no stand-down: failing");
            self.fail(
                cx,
                format!("a worker ended ({why}) and the spool has no stand-down"),
            );
            return;
        };
        match stand_down.failed() {
            Ok(after) => {
                tracing::info!(target: "strata::spool", spool = %cx.address(), worker = %worker, %why, after = ?after, "worker ended; replacing");
                let timer = cx.create(Delay::new(after));
                cx.on_return(timer, |spool: &mut Self, cx: &mut Context<Self>, _| {
                    spool.stats.replaced += 1;
                    spool.add_worker(cx);
                    spool.dispatch(cx);
                });
            }
            // Not today (the stand-down has no budget), but a budgeted one ends like this.
            Err(spent) => {
                tracing::warn!(target: "strata::spool", spool = %cx.address(), worker = %worker, %why, "a worker ended and the stand-down is spent: failing");
                self.fail(
                    cx,
                    format!("a worker ended ({why}) and the stand-down {spent}"),
                );
            }
        }
    }

    /// Ends the spool with a fault, answering everything it holds with it first.
    fn fail(&mut self, cx: &mut Context<Self>, reason: String) {
        self.answer_everything(cx, || AnyMessage::new(Faulted::new(reason.clone())));
        cx.abort(Faulted::new(reason));
    }

    fn stop(&mut self, cx: &mut Context<Self>) {
        let s = self.statistics();
        tracing::info!(target: "strata::spool", spool = %cx.address(), admitted = s.admitted, completed = s.completed,
            failed = s.failed, busy = s.rejected_busy, overloaded = s.rejected_overloaded, p50 = s.p50, p99 = s.p99, "spool stopping");
        self.answer_everything(cx, || AnyMessage::new(Aborted::new("the spool stopped")));
        cx.abort(Aborted::new("spool stopped"));
    }

    /// Answers every request held (queued, then in flight) with a fault.
    fn answer_everything(&mut self, cx: &mut Context<Self>, fault: impl Fn() -> AnyMessage) {
        for p in self.queue.drain() {
            self.stats.failed += 1;
            cx.send_any(p.client, fault());
        }
        for job in self.workers.take_jobs() {
            self.stats.failed += 1;
            cx.send_any(job.client, fault());
        }
    }

    fn statistics(&mut self) -> SpoolStatistics {
        let mut s = self.stats.clone();
        s.queued = self.queue.len() as u64;
        s.workers = self.workers.len() as u64;
        s.idle = self.workers.idle_len() as u64;
        let now = Instant::now();
        s.busy = self
            .admission
            .over_target(self.timing.recent_mean(now))
            .is_some();
        self.timing.fill(&mut s);
        s
    }
}

/// The spool's handlers, tried in this order; whatever none of the typed ones takes is a
/// busy worker's answer, a stray message from an idle one, or a new request.
#[crate::machine]
impl<R: Recipe> Spool<R> {
    #[guard(sender == cx.address())]
    fn on_start(&mut self, cx: &mut Context<Self>, _: Start) {
        self.figures = Some(crate::metrics::sources::spool(cx.address()));
        self.start(cx);
    }

    fn on_returned(&mut self, cx: &mut Context<Self>, returned: Returned) {
        let worker = cx.sender();
        self.worker_ended(cx, worker, returned.value);
    }

    #[guard(!self.workers.contains(sender))]
    fn on_stop(&mut self, cx: &mut Context<Self>, _: Stop) {
        self.stop(cx);
    }

    fn on_join(&mut self, cx: &mut Context<Self>, join: JoinSpool) {
        if !self.workers.contains(join.0) {
            // A joined worker is not this spool's child: its end (or, in another process,
            // the end of the link to it) comes as `Ended`.
            cx.watch(join.0);
        }
        self.workers.join(join.0);
        tracing::debug!(target: "strata::spool", spool = %cx.address(), worker = %join.0, "a worker joins");
        self.dispatch(cx);
    }

    #[guard(self.workers.contains(sender))]
    fn on_worker_gone(&mut self, cx: &mut Context<Self>, ended: Ended) {
        self.joined_worker_gone(cx, ended.address);
    }

    /// The end of a worker that had left already: nothing to do (and no request).
    fn on_late_end(&mut self, _cx: &mut Context<Self>, _: Ended) {}

    fn on_leave(&mut self, cx: &mut Context<Self>, leave: LeaveSpool) {
        self.leave(cx, leave.0);
    }

    fn on_stats(&mut self, _cx: &mut Context<Self>, _: SpoolStats) -> SpoolStatistics {
        self.statistics()
    }

    fn on_other(&mut self, cx: &mut Context<Self>, envelope: Envelope) {
        let sender = envelope.sender();
        if envelope.is::<Unread>() && self.workers.contains(sender) {
            // A worker that ended before reading a request it held: its end (`Returned`,
            // or `Ended` for a joined one) comes next and accounts for every request it
            // held, oldest first; matching this to one now would pair answers wrongly.
            return;
        }
        match self.workers.message_from(sender) {
            Origin::Answer(job) => self.answered(cx, job, envelope.into_message()),
            Origin::IdleMember => {
                tracing::debug!(target: "strata::spool", worker = %sender, message = envelope.type_name(), "message from an idle worker dropped");
            }
            // A fault is never a request (a late answer to something this spool asked, or
            // an answer to one of its own answers): it is logged, not given to a worker.
            Origin::Stranger if envelope.is_fault() => {
                tracing::debug!(target: "strata::spool", from = %sender, fault = envelope.type_name(), "fault from a stranger dropped");
            }
            Origin::Stranger => self.request(cx, envelope),
        }
    }
}
