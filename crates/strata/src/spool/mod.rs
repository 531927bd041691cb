//! Spools: pools of workers that share out requests and push back under pressure.
//!
//! A [`Spool`] is an object. Clients send requests to its address exactly as they would to
//! one worker; the spool hands each to an idle worker (round-robin), relays the worker's
//! answer back to the client, and so always knows which workers are free and how long
//! answers take. Workers are any objects: machines, threads, async objects — anything a
//! [`Recipe`](crate::Recipe) can make — or objects elsewhere that join with [`JoinSpool`].
//!
//! Under pressure the spool answers at once instead of letting requests pile up:
//!
//! * all workers busy → the request waits in a bounded queue; queue full → `Overloaded`;
//! * with a `responsiveness` target, when the mean response time over a moving window is
//!   above it the spool is *busy*: only `busy_pass_rate` of new requests are admitted, the
//!   rest get `Busy` at once;
//! * a worker that ends mid-request answers that request with a fault; every request gets
//!   exactly one answer. The worker is replaced after `stand_down` (±25% jitter); without
//!   a stand-down the spool itself fails (and answers everything it holds).
//!
//! Ask for [`SpoolStatistics`] with [`SpoolStats`].

mod stats;

use std::collections::VecDeque;
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};

use stats::Timing;
pub use stats::{SpoolStatistics, SpoolStats};

use crate::message::AnyMessage;
use crate::object::{AddressMap, Context, Machine, Recipe};
use crate::random::Rng;

use crate::request::Delay;
use crate::runtime::{Envelope, SendError};
use crate::standard::{Aborted, Busy, Faulted, Overloaded, Returned, Start, Stop};
use crate::{Address, Message};

/// Adds a worker that lives elsewhere (another process, another host) to a spool.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Message)]
#[message(name = "JoinSpool")]
pub struct JoinSpool(pub Address);

/// Takes a worker out of a spool (after its current request, if any).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Message)]
#[message(name = "LeaveSpool")]
pub struct LeaveSpool(pub Address);

/// A spool parameter that is out of its sensible range.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("spool parameter `{parameter}`: {reason}")]
pub struct SpoolError {
    /// The parameter's name.
    pub parameter: &'static str,
    /// What is wrong with its value.
    pub reason: String,
}

/// The parameters of a spool.
#[derive(Debug, Clone, PartialEq)]
pub struct SpoolSettings {
    /// Workers created at start (default 8; 0 is allowed: workers may join later).
    pub workers: usize,
    /// Requests that may wait for a worker (default 1024); `None` is unbounded.
    pub queue_size: Option<usize>,
    /// Target response time; above it (mean over a moving window) the spool is busy.
    /// `None` (default) never sheds load for slowness.
    pub responsiveness: Option<Duration>,
    /// Share of new requests admitted while busy (default 0.1).
    pub busy_pass_rate: f64,
    /// Delay before a worker that ended is replaced, with ±25% jitter (default 1 s).
    /// `None`: a worker ending makes the spool itself fail.
    pub stand_down: Option<Duration>,
}

impl Default for SpoolSettings {
    fn default() -> Self {
        SpoolSettings {
            workers: 8,
            queue_size: Some(1024),
            responsiveness: None,
            busy_pass_rate: 0.1,
            stand_down: Some(Duration::from_secs(1)),
        }
    }
}

impl SpoolSettings {
    /// Checks every parameter, naming the first improbable one.
    pub fn validate(&self) -> Result<(), SpoolError> {
        let bad = |parameter, reason: String| Err(SpoolError { parameter, reason });
        if self.workers > 4096 {
            return bad("workers", format!("{} is more than 4096", self.workers));
        }
        if let Some(q) = self.queue_size {
            if q > 10_000_000 {
                return bad(
                    "queue_size",
                    format!("{q} is more than 10,000,000 (use None for unbounded)"),
                );
            }
        }
        if let Some(r) = self.responsiveness {
            if r < Duration::from_millis(1) || r > Duration::from_secs(3600) {
                return bad(
                    "responsiveness",
                    format!("{r:?} is not between 1 ms and 1 hour"),
                );
            }
        }
        if !(0.0..=1.0).contains(&self.busy_pass_rate) {
            return bad(
                "busy_pass_rate",
                format!("{} is not a share between 0 and 1", self.busy_pass_rate),
            );
        }
        if let Some(s) = self.stand_down {
            if s < Duration::from_millis(1) || s > Duration::from_secs(3600) {
                return bad(
                    "stand_down",
                    format!("{s:?} is not between 1 ms and 1 hour"),
                );
            }
        }
        Ok(())
    }
}

struct Worker {
    child: bool,
    busy: Option<InFlight>,
    leaving: bool,
}

struct InFlight {
    client: Address,
    arrived: Instant,
}

struct Pending {
    client: Address,
    message: AnyMessage,
    arrived: Instant,
}

/// A pool of workers behind one address; see the [module docs](self).
pub struct Spool<R> {
    recipe: R,
    settings: SpoolSettings,
    workers: AddressMap<Worker>,
    idle: VecDeque<Address>,
    queue: VecDeque<Pending>,
    timing: Timing,
    stats: SpoolStatistics,
    rng: Rng,
}

impl<R: Recipe> Spool<R> {
    /// A spool whose workers `recipe` makes, with default settings.
    pub fn of(recipe: R) -> Self {
        Self::with(recipe, SpoolSettings::default())
    }

    /// A spool with the given settings (checked when it starts; see [`Spool::validate`]).
    pub fn with(recipe: R, settings: SpoolSettings) -> Self {
        let window = settings
            .responsiveness
            .map(|r| (r * 10).max(Duration::from_secs(1)))
            .unwrap_or(Duration::from_secs(10));
        Spool {
            recipe,
            settings,
            workers: AddressMap::default(),
            idle: VecDeque::new(),
            queue: VecDeque::new(),
            timing: Timing::new(window),
            stats: SpoolStatistics::default(),
            rng: Rng::seeded(),
        }
    }

    /// Workers created at start.
    pub fn workers(mut self, n: usize) -> Self {
        self.settings.workers = n;
        self
    }

    /// Requests that may wait for a worker; `None` for no limit.
    pub fn queue_size(mut self, n: Option<usize>) -> Self {
        self.settings.queue_size = n;
        self
    }

    /// Target response time (mean over a moving window); above it the spool is busy.
    pub fn responsiveness(mut self, target: Duration) -> Self {
        self.settings.responsiveness = Some(target);
        self.timing = Timing::new((target * 10).max(Duration::from_secs(1)));
        self
    }

    /// Share of new requests admitted while busy.
    pub fn busy_pass_rate(mut self, rate: f64) -> Self {
        self.settings.busy_pass_rate = rate;
        self
    }

    /// Delay before replacing a worker that ended; `None` makes the spool fail instead.
    pub fn stand_down(mut self, delay: Option<Duration>) -> Self {
        self.settings.stand_down = delay;
        self
    }

    /// Checks the parameters (a spool that fails this check ends at once with a fault
    /// naming the parameter).
    pub fn validate(&self) -> Result<(), SpoolError> {
        self.settings.validate()
    }

    fn add_worker(&mut self, cx: &mut Context<Self>) {
        let worker = self.recipe.make(());
        let address = cx.create(worker);
        self.workers.insert(
            address,
            Worker {
                child: true,
                busy: None,
                leaving: false,
            },
        );
        self.idle.push_back(address);
    }

    /// Sends queued requests to idle workers.
    fn dispatch(&mut self, cx: &mut Context<Self>) {
        while !self.queue.is_empty() {
            let Some(worker) = self.idle.pop_front() else {
                return;
            };
            let p = self.queue.pop_front().expect("not empty");
            self.assign(cx, worker, p);
        }
    }

    fn assign(&mut self, cx: &mut Context<Self>, worker: Address, p: Pending) {
        match cx.try_send_any(worker, p.message) {
            Ok(()) => {
                if let Some(w) = self.workers.get_mut(&worker) {
                    w.busy = Some(InFlight {
                        client: p.client,
                        arrived: p.arrived,
                    });
                }
            }
            Err(e) => {
                // The worker is gone (its Returned is on the way) or cannot take work:
                // it leaves the idle list; the request goes to the front of the queue.
                tracing::debug!(target: "strata::spool", spool = %cx.address(), worker = %worker, error = %e, "worker refused a request");
                if matches!(
                    e,
                    SendError::NoSuchObject { .. } | SendError::NoRoute { .. }
                ) {
                    if let Some(w) = self.workers.get(&worker) {
                        if !w.child {
                            self.workers.remove(&worker);
                        }
                    }
                }
                let message = AnyMessage::new(Faulted::new(format!(
                    "worker {worker} refused the request: {e}"
                )));
                self.stats.failed += 1;
                cx.send_any(p.client, message);
            }
        }
    }

    fn request(&mut self, cx: &mut Context<Self>, envelope: Envelope) {
        let now = Instant::now();
        let client = envelope.sender();
        if let Some(target) = self.settings.responsiveness {
            if let Some(mean) = self.timing.recent_mean(now).filter(|m| *m > target) {
                if self.rng.unit() >= self.settings.busy_pass_rate {
                    self.stats.rejected_busy += 1;
                    cx.send(
                        client,
                        Busy::new(format!(
                            "mean response time {mean:?} is over the target {target:?}"
                        )),
                    );
                    return;
                }
            }
        }
        let pending = Pending {
            client,
            message: envelope.into_message(),
            arrived: now,
        };
        if let Some(worker) = self.idle.pop_front() {
            self.stats.admitted += 1;
            self.assign(cx, worker, pending);
        } else if self
            .settings
            .queue_size
            .is_none_or(|q| self.queue.len() < q)
        {
            self.stats.admitted += 1;
            self.queue.push_back(pending);
        } else {
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

    fn completed(&mut self, cx: &mut Context<Self>, worker: Address, reply: AnyMessage) {
        let Some(w) = self.workers.get_mut(&worker) else {
            return;
        };
        let Some(job) = w.busy.take() else {
            tracing::debug!(target: "strata::spool", worker = %worker, message = reply.type_name(), "message from an idle worker dropped");
            return;
        };
        let now = Instant::now();
        self.timing.record(now, now.duration_since(job.arrived));
        self.stats.completed += 1;
        cx.send_any(job.client, reply);
        if w.leaving {
            self.workers.remove(&worker);
        } else {
            self.idle.push_back(worker);
        }
        self.dispatch(cx);
    }

    fn worker_ended(&mut self, cx: &mut Context<Self>, worker: Address, value: AnyMessage) {
        let Some(w) = self.workers.remove(&worker) else {
            return;
        };
        self.idle.retain(|a| *a != worker);
        let why = match value.as_fault() {
            Some(f) => f.reason(),
            None => format!("returned {}", value.type_name()),
        };
        if let Some(job) = w.busy {
            self.stats.failed += 1;
            cx.send(
                job.client,
                Faulted::new(format!("the worker handling this request ended ({why})")),
            );
        }
        if w.leaving {
            return;
        }
        match self.settings.stand_down {
            None => {
                tracing::warn!(target: "strata::spool", spool = %cx.address(), worker = %worker, %why, "a worker ended and the spool has no stand-down: failing");
                let reason = format!("a worker ended ({why}) and the spool has no stand-down");
                self.answer_everything(cx, || AnyMessage::new(Faulted::new(reason.clone())));
                cx.abort(Faulted::new(reason));
            }
            Some(delay) => {
                let jittered = self.rng.jitter(delay, 0.25);
                tracing::info!(target: "strata::spool", spool = %cx.address(), worker = %worker, %why, after = ?jittered, "worker ended; replacing");
                let timer = cx.create(Delay::new(jittered));
                cx.on_return(timer, |spool: &mut Self, cx: &mut Context<Self>, _| {
                    spool.stats.replaced += 1;
                    spool.add_worker(cx);
                    spool.dispatch(cx);
                });
            }
        }
    }

    /// Answers every request held (queued or in flight) with a fault.
    fn answer_everything(&mut self, cx: &mut Context<Self>, fault: impl Fn() -> AnyMessage) {
        for p in self.queue.drain(..) {
            self.stats.failed += 1;
            cx.send_any(p.client, fault());
        }
        for w in self.workers.values_mut() {
            if let Some(job) = w.busy.take() {
                self.stats.failed += 1;
                cx.send_any(job.client, fault());
            }
        }
    }

    fn statistics(&mut self) -> SpoolStatistics {
        let mut s = self.stats.clone();
        s.queued = self.queue.len() as u64;
        s.workers = self.workers.len() as u64;
        s.idle = self.idle.len() as u64;
        let now = Instant::now();
        s.busy = match (self.settings.responsiveness, self.timing.recent_mean(now)) {
            (Some(target), Some(mean)) => mean > target,
            _ => false,
        };
        self.timing.fill(&mut s);
        s
    }
}

impl<R: Recipe> Machine for Spool<R> {
    fn receive(&mut self, cx: &mut Context<Self>, envelope: Envelope) {
        let sender = envelope.sender();
        if envelope.is::<Start>() && sender == cx.address() {
            if let Err(e) = self.settings.validate() {
                tracing::error!(target: "strata::spool", error = %e, "spool not started");
                cx.complete(Faulted::new(e.to_string()));
                return;
            }
            for _ in 0..self.settings.workers {
                self.add_worker(cx);
            }
        } else if envelope.is::<Returned>() {
            if let Ok(Returned { value }) = envelope.take::<Returned>() {
                self.worker_ended(cx, sender, value);
            }
        } else if envelope.is::<Stop>() && !self.workers.contains_key(&sender) {
            let s = self.statistics();
            tracing::info!(target: "strata::spool", spool = %cx.address(), admitted = s.admitted, completed = s.completed,
                failed = s.failed, busy = s.rejected_busy, overloaded = s.rejected_overloaded, p50 = s.p50, p99 = s.p99, "spool stopping");
            self.answer_everything(cx, || AnyMessage::new(Aborted::new("the spool stopped")));
            cx.abort(Aborted::new("spool stopped"));
        } else if let Some(&JoinSpool(worker)) = envelope.get::<JoinSpool>() {
            self.workers.entry(worker).or_insert_with(|| {
                self.idle.push_back(worker);
                Worker {
                    child: false,
                    busy: None,
                    leaving: false,
                }
            });
            self.dispatch(cx);
        } else if let Some(&LeaveSpool(worker)) = envelope.get::<LeaveSpool>() {
            self.idle.retain(|a| *a != worker);
            if let Some(w) = self.workers.get_mut(&worker) {
                if w.busy.is_some() {
                    w.leaving = true;
                } else {
                    let child = w.child;
                    self.workers.remove(&worker);
                    if child {
                        cx.stop(worker);
                    }
                }
            }
        } else if envelope.is::<SpoolStats>() {
            let s = self.statistics();
            cx.reply(s);
        } else if self.workers.get(&sender).is_some_and(|w| w.busy.is_some()) {
            self.completed(cx, sender, envelope.into_message());
        } else if self.workers.contains_key(&sender) {
            tracing::debug!(target: "strata::spool", worker = %sender, message = envelope.type_name(), "message from an idle worker dropped");
        } else {
            self.request(cx, envelope);
        }
    }
}
