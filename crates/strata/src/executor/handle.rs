//! The thin handle: an executor for plain Rust code.
//!
//! An [`ExecutorHandle`] sends the executor the same messages an object would
//! ([`Submit`], `Cancel`, [`Shutdown`], [`ExecutorStats`]), from an address of its own;
//! what it adds is a [`JobFuture`] per job instead of a `JobDone` message. A handle that
//! started its executor submits through an inbox the two share (`inbox.rs`): one notice
//! per batch of submissions instead of a message per job. It is cheap to
//! clone and can be used from any thread; [`Executor::start`] makes one that owns its
//! executor (the executor is a child of the handle's address, and is stopped when the
//! last clone is dropped), [`ExecutorHandle::to`] one for an executor created as an
//! object elsewhere.
//!
//! `map` submits lazily: at most `buffer` jobs are in flight at once, so a long (or
//! endless) input is never submitted all at once.

use std::collections::VecDeque;
use std::future::Future;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use parking_lot::Mutex;

use super::future::{CancelTo, Canceller, JobFuture, Slot, SlotGuard};
use super::inbox::{Inbox, Pushed, Submitted};
use super::job::{Job, JobOutput, Work};
use super::messages::{ExecutorStats, Shutdown, ShutdownMode, Submit};
use super::stats::ExecutorStatistics;
use super::wait;
use super::Executor;
use crate::message::{AnyMessage, Message};
use crate::object::{Options, Postbox, Recipe, ThreadContext};
use crate::standard::{Ended, Faulted};
use crate::Address;

/// The mailbox of an executor started by a handle: submissions may pile up this deep
/// before they are refused (the executor's own queue limits are separate).
const HANDLE_CAPACITY: usize = 1 << 20;

/// How long [`ExecutorHandle::statistics`] waits for the answer.
const STATS_WAIT: Duration = Duration::from_secs(10);

impl<R: Recipe> Executor<R> {
    /// Starts the executor for plain Rust code and gives a handle to it. The executor is
    /// a child of the handle: dropping the last clone of the handle stops it, which
    /// cancels the jobs still pending (their futures resolve with
    /// [`Cancelled`](super::Cancelled)) and lets the running ones finish. Call
    /// [`shutdown`](ExecutorHandle::shutdown) to choose.
    pub fn start(mut self) -> ExecutorHandle {
        let mut cx = ThreadContext::attach();
        let inbox = Arc::new(Inbox::new(cx.address()));
        self.inbox = Some(inbox.clone());
        let executor = cx.create_with(self, Options::default().capacity(HANDLE_CAPACITY));
        ExecutorHandle::new(executor, cx, true, Some(inbox))
    }
}

/// A handle to an executor for plain Rust code: it sends the executor the messages an
/// object would, and gives a [`JobFuture`] per job instead of a `JobDone` message. Cheap
/// to clone, usable from any thread.
///
/// ```
/// use strata::executor::{Executor, ShutdownMode};
///
/// let pool = Executor::threads().max_workers(4).start();
/// let futures: Vec<_> = (0..8u64).map(|i| pool.submit_fn(move || i * i)).collect();
/// let squares: Vec<u64> = futures.into_iter().map(|f| f.wait().unwrap()).collect();
/// assert_eq!(squares, [0, 1, 4, 9, 16, 25, 36, 49]);
/// let stats = pool.shutdown(ShutdownMode::Wait).unwrap();
/// assert_eq!(stats.executed, 8);
/// ```
#[derive(Clone)]
pub struct ExecutorHandle {
    inner: Arc<Inner>,
}

struct Inner {
    executor: Address,
    /// Sends as the handle's address (`Submit`, `Cancel`).
    postbox: Postbox,
    state: Mutex<State>,
    /// Whether the executor is the handle's child.
    owned: bool,
    next_tag: AtomicU64,
    /// Where submissions go when the handle started the executor (see `inbox.rs`);
    /// otherwise each is a `Submit` message.
    inbox: Option<Arc<Inbox>>,
    /// What each future's `cancel` sends with.
    cancel_to: Arc<CancelTo>,
}

struct State {
    /// The handle's address: where `Returned` and answers arrive.
    cx: ThreadContext,
    /// The executor's final statistics, once a shutdown saw them.
    ended: Option<Result<ExecutorStatistics, Faulted>>,
}

impl std::fmt::Debug for ExecutorHandle {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ExecutorHandle")
            .field("executor", &self.inner.executor)
            .field("owned", &self.inner.owned)
            .finish()
    }
}

impl ExecutorHandle {
    fn new(executor: Address, cx: ThreadContext, owned: bool, inbox: Option<Arc<Inbox>>) -> Self {
        ExecutorHandle {
            inner: Arc::new(Inner {
                executor,
                postbox: cx.postbox(),
                cancel_to: Arc::new(CancelTo {
                    postbox: cx.postbox(),
                    executor,
                }),
                state: Mutex::new(State { cx, ended: None }),
                owned,
                next_tag: AtomicU64::new(1),
                inbox,
            }),
        }
    }

    /// A handle to the executor at `executor`, created as an object elsewhere (in this
    /// process: closures and futures do not travel). It does not own it: dropping the
    /// handle leaves the executor running.
    pub fn to(executor: Address) -> Self {
        ExecutorHandle::new(executor, ThreadContext::attach(), false, None)
    }

    /// The executor's address (objects can [`Submit`] to it too).
    pub fn address(&self) -> Address {
        self.inner.executor
    }

    /// Submits a [`Job`]: it runs on whatever kind of worker the executor has, threads
    /// or processes alike.
    pub fn submit<J: Job>(&self, job: J) -> JobFuture<<J::Output as JobOutput>::Value> {
        self.send(Work::job(job), None)
    }

    /// Submits a closure (executors of threads or async workers).
    pub fn submit_fn<F, O>(&self, f: F) -> JobFuture<O::Value>
    where
        F: FnOnce() -> O + Send + 'static,
        O: JobOutput,
    {
        self.send(Work::closure(f), None)
    }

    /// Submits a future (executors of async workers, which await it, or of threads, which
    /// drive it to its end one at a time).
    pub fn submit_async<Fut>(&self, future: Fut) -> JobFuture<<Fut::Output as JobOutput>::Value>
    where
        Fut: Future + Send + 'static,
        Fut::Output: JobOutput,
    {
        self.send(Work::future(future), None)
    }

    /// Submits a [`Job`] to run once `delay` has passed (not before); until then
    /// [`JobFuture::cancel`] takes it back.
    pub fn submit_after<J: Job>(
        &self,
        delay: Duration,
        job: J,
    ) -> JobFuture<<J::Output as JobOutput>::Value> {
        self.send(Work::job(job), Some(delay))
    }

    /// [`submit_after`](Self::submit_after) for a closure.
    pub fn submit_fn_after<F, O>(&self, delay: Duration, f: F) -> JobFuture<O::Value>
    where
        F: FnOnce() -> O + Send + 'static,
        O: JobOutput,
    {
        self.send(Work::closure(f), Some(delay))
    }

    fn send<T: Message>(&self, work: Work, after: Option<Duration>) -> JobFuture<T> {
        let inner = &self.inner;
        let tag = inner.next_tag.fetch_add(1, Ordering::Relaxed);
        let slot = Slot::new::<T>();
        let canceller = Canceller {
            to: inner.cancel_to.clone(),
            tag,
        };
        let future = JobFuture::new(slot.clone(), Some(canceller));
        let mut submit = Submit::of(tag, work);
        submit.start_at = after.map(|delay| Instant::now() + delay);
        submit.slot = Some(SlotGuard(slot));
        match &inner.inbox {
            Some(inbox) => match inbox.push(submit) {
                // A notice: never refused for a full mailbox, so the batch is not stranded.
                Pushed::First => inner.postbox.notify(inner.executor, Submitted),
                Pushed::More => {}
                // The executor has ended: dropped, the slot answers `Rejected`.
                Pushed::Closed(submit) => drop(submit),
            },
            None => {
                if let Err(e) = inner.postbox.try_send(inner.executor, submit) {
                    // Dropped undelivered, and its slot answered `Rejected`.
                    tracing::debug!(target: "strata::executor", error = %e, "submission not delivered");
                }
            }
        }
        future
    }

    /// Runs `jobs` and gives their results in the order of the input, keeping at most
    /// `buffer` (at least 1) jobs submitted and not yet taken: the input is read as
    /// results are taken, never all at once.
    pub fn map<'a, J, I>(
        &'a self,
        jobs: I,
        buffer: usize,
    ) -> Map<'a, <J::Output as JobOutput>::Value>
    where
        J: Job,
        I: IntoIterator<Item = J>,
        I::IntoIter: 'a,
    {
        let mut jobs = jobs.into_iter();
        Map::new(
            Box::new(move || jobs.next().map(|j| self.submit(j))),
            buffer,
            true,
        )
    }

    /// [`map`](Self::map), giving each result as soon as it is ready (completion order).
    pub fn map_unordered<'a, J, I>(
        &'a self,
        jobs: I,
        buffer: usize,
    ) -> Map<'a, <J::Output as JobOutput>::Value>
    where
        J: Job,
        I: IntoIterator<Item = J>,
        I::IntoIter: 'a,
    {
        let mut jobs = jobs.into_iter();
        Map::new(
            Box::new(move || jobs.next().map(|j| self.submit(j))),
            buffer,
            false,
        )
    }

    /// [`map`](Self::map) of a closure over `inputs` (executors of threads or async
    /// workers): `f(x)` for each `x`, in the order of the input.
    pub fn map_fn<'a, X, O, I, F>(&'a self, inputs: I, buffer: usize, f: F) -> Map<'a, O::Value>
    where
        X: Send + 'static,
        O: JobOutput,
        I: IntoIterator<Item = X>,
        I::IntoIter: 'a,
        F: Fn(X) -> O + Send + Sync + 'static,
    {
        self.map_closure(inputs, buffer, f, true)
    }

    /// [`map_fn`](Self::map_fn), giving each result as soon as it is ready.
    pub fn map_fn_unordered<'a, X, O, I, F>(
        &'a self,
        inputs: I,
        buffer: usize,
        f: F,
    ) -> Map<'a, O::Value>
    where
        X: Send + 'static,
        O: JobOutput,
        I: IntoIterator<Item = X>,
        I::IntoIter: 'a,
        F: Fn(X) -> O + Send + Sync + 'static,
    {
        self.map_closure(inputs, buffer, f, false)
    }

    fn map_closure<'a, X, O, I, F>(
        &'a self,
        inputs: I,
        buffer: usize,
        f: F,
        ordered: bool,
    ) -> Map<'a, O::Value>
    where
        X: Send + 'static,
        O: JobOutput,
        I: IntoIterator<Item = X>,
        I::IntoIter: 'a,
        F: Fn(X) -> O + Send + Sync + 'static,
    {
        let f = Arc::new(f);
        let mut inputs = inputs.into_iter();
        let next = move || {
            let x = inputs.next()?;
            let f = f.clone();
            Some(self.submit_fn(move || f(x)))
        };
        Map::new(Box::new(next), buffer, ordered)
    }

    /// The executor's statistics now (asked for; an error when it does not answer within
    /// 10 s, or has ended).
    pub fn statistics(&self) -> Result<ExecutorStatistics, Faulted> {
        let mut state = self.inner.state.lock();
        let answer = state
            .cx
            .ask_timeout(self.inner.executor, ExecutorStats, STATS_WAIT);
        statistics_from(answer)
    }

    /// Shuts the executor down (see [`ShutdownMode`]) and waits until it has: every job
    /// submitted gets its answer first. Gives the final statistics; calling it again (or
    /// from a clone) gives them again. With [`ShutdownMode::Wait`] it waits as long as the
    /// jobs take; [`ShutdownMode::Drain`] bounds that.
    pub fn shutdown(&self, mode: ShutdownMode) -> Result<ExecutorStatistics, Faulted> {
        let executor = self.inner.executor;
        let mut state = self.inner.state.lock();
        if let Some(ended) = &state.ended {
            return ended.clone();
        }
        state.cx.send(executor, Shutdown { mode });
        let result = if self.inner.owned {
            // The executor's value, returned to its parent: this handle.
            statistics_from(state.cx.wait_for(executor))
        } else {
            state.cx.watch(executor);
            let e = state.cx.select::<(ExecutorStatistics, Ended)>();
            match e.take::<ExecutorStatistics>() {
                Ok(s) => Ok(s),
                Err(_) => Err(Faulted::new(format!(
                    "the executor {executor} ended before it answered the shutdown"
                ))),
            }
        };
        state.ended = Some(result.clone());
        result
    }
}

fn statistics_from(value: AnyMessage) -> Result<ExecutorStatistics, Faulted> {
    match value.downcast::<ExecutorStatistics>() {
        Ok(s) => Ok(s),
        Err(other) => Err(Faulted::new(match other.as_fault() {
            Some(f) => f.reason(),
            None => format!("the executor answered {}", other.type_name()),
        })),
    }
}

/// The results of [`ExecutorHandle::map`] and its kin: an iterator that submits as it
/// goes, keeping at most `buffer` jobs in flight. Each item is one job's result.
pub struct Map<'a, T> {
    next: Box<dyn FnMut() -> Option<JobFuture<T>> + 'a>,
    window: VecDeque<JobFuture<T>>,
    buffer: usize,
    ordered: bool,
    exhausted: bool,
}

impl<'a, T: Message> Map<'a, T> {
    fn new(
        next: Box<dyn FnMut() -> Option<JobFuture<T>> + 'a>,
        buffer: usize,
        ordered: bool,
    ) -> Self {
        Map {
            next,
            window: VecDeque::new(),
            buffer: buffer.max(1),
            ordered,
            exhausted: false,
        }
    }

    /// Jobs submitted whose results have not been taken yet (at most the buffer).
    pub fn in_flight(&self) -> usize {
        self.window.len()
    }
}

impl<T: Message> Iterator for Map<'_, T> {
    type Item = Result<T, super::JobError>;

    fn next(&mut self) -> Option<Self::Item> {
        while !self.exhausted && self.window.len() < self.buffer {
            match (self.next)() {
                Some(f) => self.window.push_back(f),
                None => self.exhausted = true,
            }
        }
        let future = if self.ordered {
            self.window.pop_front()?
        } else {
            if self.window.is_empty() {
                return None;
            }
            let slots: Vec<&Arc<Slot>> = self.window.iter().map(|f| f.slot()).collect();
            let i = wait::first_done(&slots);
            self.window.remove(i).expect("an index into the window")
        };
        Some(future.wait())
    }
}
