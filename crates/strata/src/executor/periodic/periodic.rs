//! The Periodic machine: one timer for all its jobs, each submitted to an executor when
//! due and scheduled again when its run is done.

use std::fmt;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use parking_lot::Mutex;
use serde::{Deserialize, Serialize};

use super::messages::{AddPeriodic, Failure, NeverAgain, PeriodicStats, RemovePeriodic};
use super::schedule::{Schedule, Strategy};
use super::stats::JobStatistics;
use crate::executor::executor::START_LEAD;
use crate::executor::job::{Job, JobOutput, Work};
use crate::executor::messages::{Cancelled, JobDone, Rejected, Submit};
use crate::executor::Executor;
use crate::message::AnyMessage;
use crate::object::{AnyObject, Context, Object};
use crate::random::Rng;
use crate::standard::{Ack, Ended, Faulted, Nak, Returned, Start, Stop};
use crate::{Address, Message};

/// The most workers of the executor a `Periodic` makes for itself.
const OWN_WORKERS: usize = 64;

/// How soon a run the executor refused (or cancelled) is tried again, at most.
const RETRY_REFUSED: Duration = Duration::from_secs(1);

/// A job to run again and again: a name, a [`Schedule`], and what to run.
///
/// ```
/// use std::time::Duration;
/// use strata::executor::periodic::{NeverAgain, PeriodicJob, Strategy};
///
/// let mut left = 3;
/// let job = PeriodicJob::every(Duration::from_millis(10), "countdown", move || {
///     left -= 1;
///     if left == 0 { Ok(NeverAgain) } else { Err(strata::standard::Faulted::new("not yet")) }
/// })
/// .strategy(Strategy::LastFinished)
/// .jitter(0.05)
/// .run_immediately();
/// assert_eq!(job.name(), "countdown");
/// ```
pub struct PeriodicJob {
    name: String,
    schedule: Schedule,
    make: Box<dyn FnMut() -> Work + Send>,
    /// A closure: it cannot be sent to an executor in another process.
    local_only: bool,
    /// When a handle's `add` was called: the first run is placed from then, not from
    /// when the `Periodic` got to the addition (a thread wake-up later, or more).
    pub(super) added: Option<Instant>,
}

impl fmt::Debug for PeriodicJob {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PeriodicJob")
            .field("name", &self.name)
            .field("schedule", &self.schedule)
            .finish()
    }
}

impl PeriodicJob {
    /// Runs `f` every `spacing` (on executors of threads or async workers). What `f`
    /// returns decides what follows: [`NeverAgain`] (or `Some(NeverAgain)`) retires the
    /// job, a fault (an `Err` with a fault type, or a panic) is a failure for the failure
    /// handler, anything else a success; the job runs again either way.
    pub fn every<F, O>(spacing: Duration, name: impl Into<String>, f: F) -> Self
    where
        F: FnMut() -> O + Send + 'static,
        O: JobOutput,
    {
        let f = Arc::new(Mutex::new(f));
        PeriodicJob {
            name: name.into(),
            schedule: Schedule::every(spacing),
            // Runs never overlap, so the lock is never contended.
            make: Box::new(move || {
                let f = f.clone();
                Work::closure(move || (f.lock())())
            }),
            local_only: true,
            added: None,
        }
    }

    /// Runs a copy of `job` every `spacing`: a [`Job`] type, so it also runs on an
    /// executor of worker processes.
    pub fn every_job<J: Job + Clone>(spacing: Duration, name: impl Into<String>, job: J) -> Self {
        PeriodicJob {
            name: name.into(),
            schedule: Schedule::every(spacing),
            make: Box::new(move || Work::job(job.clone())),
            local_only: false,
            added: None,
        }
    }

    /// How runs are placed (default [`Strategy::LastStarted`]).
    pub fn strategy(mut self, strategy: Strategy) -> Self {
        self.schedule.strategy = strategy;
        self
    }

    /// Delays each run after the first by up to this share of the spacing (0 to 1;
    /// default 0).
    pub fn jitter(mut self, share: f64) -> Self {
        self.schedule.jitter = share;
        self
    }

    /// Runs the first time at once instead of one spacing after it is added.
    pub fn run_immediately(mut self) -> Self {
        self.schedule.run_immediately = true;
        self
    }

    /// The job's name (unique within its `Periodic`).
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The job's schedule.
    pub fn schedule(&self) -> &Schedule {
        &self.schedule
    }
}

/// Fires when the earliest job is due.
#[derive(Debug, Clone, Copy, Serialize, Deserialize, Message)]
#[message(name = "periodic.Tick")]
struct Tick;

/// Where the jobs run.
enum Target {
    /// An executor of threads the `Periodic` makes for itself.
    Own,
    /// This object, made as the `Periodic`'s child at start.
    Make(Option<AnyObject>),
    /// An executor someone else made.
    Given(Address),
}

struct Entry {
    job: PeriodicJob,
    state: State,
    stats: JobStatistics,
}

enum State {
    Waiting {
        due: Instant,
    },
    Running {
        tag: u64,
        due: Instant,
        submitted: Instant,
    },
}

type FailureHandler = Box<dyn FnMut(&Failure) + Send>;

/// Runs jobs periodically on an executor; see the [module docs](super).
///
/// Create it as an object (`cx.create(periodic)`, then [`AddPeriodic`],
/// [`RemovePeriodic`], [`PeriodicStats`], `Stop`), or [`start`](Periodic::start) it for
/// plain code. Sent `Stop`, it ends with the jobs' final statistics
/// (`Vec<JobStatistics>`) as its value.
pub struct Periodic {
    initial: Vec<PeriodicJob>,
    target: Target,
    on_failure: Option<FailureHandler>,
    executor: Address,
    entries: Vec<Entry>,
    retired: Vec<JobStatistics>,
    next_tag: u64,
    tick_at: Option<Instant>,
    rng: Rng,
}

impl Default for Periodic {
    fn default() -> Self {
        Periodic::new()
    }
}

impl Periodic {
    /// Runs its jobs on an executor of threads of its own (up to 64 workers; a job never
    /// overlaps itself, so each job needs at most one).
    pub fn new() -> Self {
        Periodic::with_target(Target::Own)
    }

    /// Runs its jobs on the executor at `executor` (threads, async workers or processes:
    /// the user's choice). When that executor ends, so does the `Periodic`, with a fault.
    pub fn on(executor: Address) -> Self {
        Periodic::with_target(Target::Given(executor))
    }

    /// Runs its jobs on `executor` (an [`Executor`] or anything that answers
    /// [`Submit`]), created as the `Periodic`'s child when it starts.
    pub fn with_executor(executor: impl Object) -> Self {
        Periodic::with_target(Target::Make(Some(AnyObject::new(executor))))
    }

    fn with_target(target: Target) -> Self {
        Periodic {
            initial: Vec::new(),
            target,
            on_failure: None,
            executor: Address::NULL,
            entries: Vec::new(),
            retired: Vec::new(),
            next_tag: 1,
            tick_at: None,
            rng: Rng::seeded(),
        }
    }

    /// Adds a job to run from the start.
    pub fn job(mut self, job: PeriodicJob) -> Self {
        self.initial.push(job);
        self
    }

    /// Calls `handler` for every failed run (after logging it): a fault or panic of the
    /// job, or the executor refusing the run. The schedule goes on regardless. It runs
    /// inside the `Periodic`: keep it quick.
    pub fn on_failure(mut self, handler: impl FnMut(&Failure) + Send + 'static) -> Self {
        self.on_failure = Some(Box::new(handler));
        self
    }

    fn begin(&mut self, cx: &mut Context<Self>) {
        self.executor = match &mut self.target {
            Target::Own => cx.create(Executor::threads().max_workers(OWN_WORKERS)),
            Target::Make(object) => {
                let object = object.take().expect("made once, at start");
                cx.create(object)
            }
            Target::Given(address) => {
                cx.watch(*address);
                *address
            }
        };
        for job in std::mem::take(&mut self.initial) {
            let name = job.name.clone();
            if let Err(reason) = self.insert(job) {
                tracing::error!(target: "strata::periodic", job = %name, %reason, "periodic job not added");
                cx.abort(Faulted::new(format!("periodic job `{name}`: {reason}")));
                return;
            }
        }
        self.arm(cx);
    }

    fn insert(&mut self, job: PeriodicJob) -> Result<(), String> {
        job.schedule.validate()?;
        if job.local_only && !self.executor.is_local() {
            return Err(format!(
                "the executor {} is in another process, where a closure cannot go: \
                 use PeriodicJob::every_job",
                self.executor
            ));
        }
        if self.entries.iter().any(|e| e.job.name == job.name) {
            return Err(format!("a job named `{}` is scheduled already", job.name));
        }
        let now = Instant::now();
        let from = job.added.filter(|added| *added <= now).unwrap_or(now);
        let due = job.schedule.first(from, wall_clock());
        let stats = JobStatistics::new(&job.name);
        self.entries.push(Entry {
            job,
            state: State::Waiting { due },
            stats,
        });
        Ok(())
    }

    /// Sets the timer for the earliest waiting job.
    fn arm(&mut self, cx: &mut Context<Self>) {
        let earliest = self
            .entries
            .iter()
            .filter_map(|e| match e.state {
                State::Waiting { due } => Some(due),
                State::Running { .. } => None,
            })
            .min();
        match earliest {
            Some(due) if self.tick_at != Some(due) => {
                // A little early, and not on tokio's timer alone (1 to 2 ms late): the run
                // is submitted with its due time, and the executor gives it to a worker
                // that sleeps the rest (`executor::START_LEAD`).
                let submit_at = due.checked_sub(START_LEAD).unwrap_or(due);
                cx.start_precise(Tick, submit_at);
                self.tick_at = Some(due);
            }
            Some(_) => {}
            None => {
                if self.tick_at.take().is_some() {
                    cx.cancel::<Tick>();
                }
            }
        }
    }

    /// Submits every waiting job that is due.
    fn tick(&mut self, cx: &mut Context<Self>) {
        self.tick_at = None;
        let now = Instant::now();
        for entry in &mut self.entries {
            let State::Waiting { due } = entry.state else {
                continue;
            };
            if due > now + START_LEAD {
                continue;
            }
            let tag = self.next_tag;
            self.next_tag += 1;
            let work = (entry.job.make)();
            let mut submit = Submit::of(tag, work);
            submit.start_at = Some(due);
            cx.send(self.executor, submit);
            entry.state = State::Running {
                tag,
                due,
                submitted: now,
            };
        }
        self.arm(cx);
    }

    /// A run is done: statistics, the failure handler, the next due time (or retirement).
    fn done(&mut self, cx: &mut Context<Self>, d: JobDone) {
        let Some(i) = self
            .entries
            .iter()
            .position(|e| matches!(e.state, State::Running { tag, .. } if tag == d.tag))
        else {
            return; // a run of a job removed meanwhile
        };
        let now = Instant::now();
        let entry = &mut self.entries[i];
        let State::Running { due, submitted, .. } = entry.state else {
            unreachable!("found running")
        };
        let schedule = entry.job.schedule;
        let value = d.value;
        if value.is::<Rejected>() || value.is::<Cancelled>() {
            // Not run: try again soon (futurist's PeriodicWorker crashed here, LP#1532255).
            entry.stats.refused += 1;
            entry.state = State::Waiting {
                due: now + schedule.spacing.min(RETRY_REFUSED),
            };
            let failure = failure(&entry.job.name, &value);
            self.failed(failure);
            self.arm(cx);
            return;
        }
        let ran = Duration::try_from_secs_f64(d.seconds).unwrap_or_default();
        let started = now.checked_sub(ran).unwrap_or(submitted).max(submitted);
        let ok = !value.is_fault();
        entry
            .stats
            .ran(ok, ran, started.saturating_duration_since(due));
        if retires(&value) {
            let mut entry = self.entries.remove(i);
            tracing::debug!(target: "strata::periodic", job = %entry.job.name, "retired (NeverAgain)");
            entry.stats.active = false;
            self.retired.push(entry.stats);
        } else {
            let draw = self.rng.unit();
            entry.state = State::Waiting {
                due: schedule.next(due, now, wall_clock(), draw),
            };
            if !ok {
                let failure = failure(&entry.job.name, &value);
                self.failed(failure);
            }
        }
        self.arm(cx);
    }

    fn failed(&mut self, failure: Failure) {
        tracing::warn!(target: "strata::periodic", job = %failure.job, fault = failure.fault, reason = %failure.reason, "periodic job failed");
        if let Some(handler) = &mut self.on_failure {
            let called =
                std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| handler(&failure)));
            if called.is_err() {
                tracing::error!(target: "strata::periodic", job = %failure.job, "the failure handler panicked");
            }
        }
    }

    fn remove(&mut self, name: &str) -> bool {
        let Some(i) = self.entries.iter().position(|e| e.job.name == name) else {
            return false;
        };
        let mut entry = self.entries.remove(i);
        entry.stats.active = false;
        self.retired.push(entry.stats);
        true
    }

    fn statistics(&self) -> Vec<JobStatistics> {
        self.entries
            .iter()
            .map(|e| e.stats.clone())
            .chain(self.retired.iter().cloned())
            .collect()
    }

    fn executor_ended(&mut self, cx: &mut Context<Self>, why: String) {
        tracing::warn!(target: "strata::periodic", periodic = %cx.address(), %why, "the executor ended");
        cx.complete(Faulted::new(format!(
            "the executor of this periodic ended: {why}"
        )));
    }
}

/// Whether a run's value retires its job: `NeverAgain`, or `Some(NeverAgain)`.
fn retires(value: &AnyMessage) -> bool {
    value.is::<NeverAgain>()
        || value
            .downcast_ref::<Option<NeverAgain>>()
            .is_some_and(Option::is_some)
}

fn failure(job: &str, value: &AnyMessage) -> Failure {
    let reason = value
        .as_fault()
        .map(|f| f.reason())
        .unwrap_or_else(|| value.type_name().to_string());
    Failure {
        job: job.to_string(),
        fault: value.type_name(),
        reason,
    }
}

/// Now on the wall clock, since the UNIX epoch (for `Aligned`).
fn wall_clock() -> Duration {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default()
}

#[crate::machine]
impl Periodic {
    #[guard(sender == cx.address())]
    fn on_start(&mut self, cx: &mut Context<Self>, _: Start) {
        self.begin(cx);
    }

    #[guard(sender == cx.address())]
    fn on_tick(&mut self, cx: &mut Context<Self>, _: Tick) {
        self.tick(cx);
    }

    #[guard(sender == self.executor)]
    fn on_done(&mut self, cx: &mut Context<Self>, d: JobDone) {
        self.done(cx, d);
    }

    fn on_add(&mut self, cx: &mut Context<Self>, add: AddPeriodic) {
        match self.insert(add.0) {
            Ok(()) => {
                cx.reply(Ack);
                self.arm(cx);
            }
            Err(reason) => cx.reply(Rejected::new(reason)),
        }
    }

    fn on_remove(&mut self, cx: &mut Context<Self>, r: RemovePeriodic) {
        if self.remove(&r.name) {
            cx.reply(Ack);
            self.arm(cx);
        } else {
            cx.reply(Nak);
        }
    }

    fn on_stats(&mut self, _cx: &mut Context<Self>, _: PeriodicStats) -> Vec<JobStatistics> {
        self.statistics()
    }

    #[guard(sender == self.executor)]
    fn on_executor_returned(&mut self, cx: &mut Context<Self>, r: Returned) {
        let why = match r.value.as_fault() {
            Some(f) => f.reason(),
            None => format!("it returned {}", r.value.type_name()),
        };
        self.executor_ended(cx, why);
    }

    #[guard(sender == self.executor)]
    fn on_executor_ended(&mut self, cx: &mut Context<Self>, _: Ended) {
        self.executor_ended(cx, "it is gone".to_string());
    }

    fn on_stop(&mut self, cx: &mut Context<Self>, _: Stop) {
        let s = self.statistics();
        tracing::info!(target: "strata::periodic", periodic = %cx.address(), jobs = s.len(), "periodic stopping");
        // Its own executor is a child: stopped, and waited for, by `abort`.
        cx.abort(s);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, Clone, Serialize, Deserialize, Message)]
    #[message(name = "test.periodic.Beat")]
    struct Beat;

    impl Job for Beat {
        type Output = ();
        fn run(self) {}
    }

    #[test]
    fn a_closure_job_is_refused_for_an_executor_in_another_process_and_names_unique() {
        let elsewhere = Address::from_parts(crate::address::local_node() ^ 1, 7);
        let mut p = Periodic::on(elsewhere);
        p.executor = elsewhere;
        let second = Duration::from_secs(1);
        let e = p
            .insert(PeriodicJob::every(second, "c", || ()))
            .unwrap_err();
        assert!(
            e.contains("another process") && e.contains("every_job"),
            "{e}"
        );
        // A job type travels.
        p.insert(PeriodicJob::every_job(second, "j", Beat)).unwrap();
        let e = p
            .insert(PeriodicJob::every_job(second, "j", Beat))
            .unwrap_err();
        assert!(e.contains("named `j`"), "{e}");
        assert_eq!(p.statistics().len(), 1);
    }
}
