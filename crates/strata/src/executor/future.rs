//! Job futures: the thin handle's view of one job.
//!
//! A [`JobFuture`] is what [`ExecutorHandle::submit`](super::ExecutorHandle::submit) gives
//! back. It can be awaited (it is a `Future`), waited on from a thread
//! ([`wait`](JobFuture::wait), [`wait_timeout`](JobFuture::wait_timeout)), cancelled while
//! still pending ([`cancel`](JobFuture::cancel)) and given done-callbacks
//! ([`on_done`](JobFuture::on_done)); [`wait`](super::wait) waits on many at once.
//!
//! Behind it is a *slot*: the one answer the executor owes the job. An object that submits
//! is answered with a [`JobDone`](super::JobDone) message to its address; plain code that
//! submits through the handle has no address to read, so its answer goes to the slot
//! instead, which is a mailbox of exactly one message that can never be full. The
//! executor fills it exactly once — with the job's value, or with `Rejected`,
//! `Cancelled` or the fault that ended the job — so every future resolves.
//!
//! A slot is *pending* until a worker takes the job, then *running*, then *done*.
//! Cancelling is a race with the executor starting the job, settled by one atomic
//! exchange: whoever moves the slot out of pending first wins, so `cancel` can answer at
//! once and truly.

use std::future::Future;
use std::marker::PhantomData;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, AtomicU8, Ordering};
use std::sync::Arc;
use std::task::{Context, Poll, Waker};
use std::time::{Duration, Instant};

use parking_lot::{Condvar, Mutex};

use super::messages::{Cancel, Cancelled, Rejected};
use crate::message::{AnyMessage, Message};
use crate::object::Postbox;
use crate::Address;

/// Why a job gave no value.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum JobError {
    /// The executor refused the job when it was submitted (a backlog limit, the
    /// executor's own policy, a full queue, an executor shutting down or gone).
    #[error("{0}")]
    Rejected(Rejected),
    /// The job was cancelled before it started (by [`JobFuture::cancel`], or by a
    /// shutdown that cancelled what was pending).
    #[error("{0}")]
    Cancelled(Cancelled),
    /// The job ran and failed: it panicked, returned a fault, or the worker running it
    /// ended (a worker process killed by a signal, say).
    #[error("{reason}")]
    Failed {
        /// The fault's type name (`Faulted`, `TimedOut`, ...).
        fault: &'static str,
        /// What happened, for people (the fault's text).
        reason: String,
    },
}

impl JobError {
    /// The error a job's value stands for, when the value is a fault.
    pub(crate) fn from_fault(value: &AnyMessage) -> Option<JobError> {
        let fault = value.as_fault()?;
        if let Some(r) = value.downcast_ref::<Rejected>() {
            return Some(JobError::Rejected(r.clone()));
        }
        if let Some(c) = value.downcast_ref::<Cancelled>() {
            return Some(JobError::Cancelled(c.clone()));
        }
        Some(JobError::Failed {
            fault: value.type_name(),
            reason: fault.reason(),
        })
    }
}

/// What a slot ends with: the job's value (checked to be what the future expects), or why
/// there is none.
pub(crate) type Outcome = Result<AnyMessage, JobError>;

const PENDING: u8 = 0;
const RUNNING: u8 = 1;
const DONE: u8 = 2;

/// Completion order across all slots, so `as_completed` yields in the order jobs ended.
static COMPLETIONS: AtomicU64 = AtomicU64::new(1);

type Callback = Box<dyn FnOnce(&Outcome) + Send>;

/// The one answer owed to a job submitted through the handle; see the module docs.
pub(crate) struct Slot {
    state: AtomicU8,
    inner: Mutex<Inner>,
    done: Condvar,
    /// Turns the executor's answer into the outcome the future's type expects.
    shape: fn(AnyMessage) -> Outcome,
}

#[derive(Default)]
struct Inner {
    outcome: Option<Outcome>,
    /// Set when resolved: the completion number, and whether it failed.
    completed: Option<(u64, bool)>,
    taken: bool,
    waker: Option<Waker>,
    signals: Vec<Arc<Signal>>,
    callbacks: Vec<Callback>,
}

impl Slot {
    /// A pending slot for a future of `T`.
    pub(crate) fn new<T: Message>() -> Arc<Slot> {
        Arc::new(Slot {
            state: AtomicU8::new(PENDING),
            inner: Mutex::new(Inner::default()),
            done: Condvar::new(),
            shape: shape::<T>,
        })
    }

    /// The executor is about to give the job to a worker: true when it may (the job was
    /// not cancelled first). From then on `cancel` cannot stop it.
    pub(crate) fn start(&self) -> bool {
        self.state
            .compare_exchange(PENDING, RUNNING, Ordering::AcqRel, Ordering::Acquire)
            .is_ok()
    }

    /// Cancels the job if it is still pending; true when it was.
    pub(crate) fn cancel(&self) -> bool {
        let won = self
            .state
            .compare_exchange(PENDING, DONE, Ordering::AcqRel, Ordering::Acquire)
            .is_ok();
        if won {
            self.settle(Err(JobError::Cancelled(Cancelled::new(
                "cancelled before it started",
            ))));
        }
        won
    }

    /// The executor's answer: the job's value or a fault. Ignored when the slot is done
    /// already (a job cancelled an instant before the executor saw it).
    pub(crate) fn resolve(&self, value: AnyMessage) {
        if self.state.swap(DONE, Ordering::AcqRel) == DONE {
            return;
        }
        self.settle((self.shape)(value));
    }

    /// Answers a job the executor can no longer answer (see [`SlotGuard`]): refused if it
    /// had not started, failed if it was running; nothing if it is done.
    pub(crate) fn abandon(&self) {
        let outcome = match self.state.swap(DONE, Ordering::AcqRel) {
            DONE => return,
            PENDING => Err(JobError::Rejected(Rejected::new(
                "the executor ended (or was never reached) before the job started",
            ))),
            _ => Err(JobError::Failed {
                fault: "Faulted",
                reason: "Faulted: the executor ended while the job ran".to_string(),
            }),
        };
        self.settle(outcome);
    }

    /// Whether the job has an outcome (or had one, taken since).
    pub(crate) fn is_done(&self) -> bool {
        self.inner.lock().completed.is_some()
    }

    /// When it completed (its place in the order of all completions) and whether it
    /// failed; `None` while it has not.
    pub(crate) fn completed(&self) -> Option<(u64, bool)> {
        self.inner.lock().completed
    }

    fn settle(&self, outcome: Outcome) {
        let mut inner = self.inner.lock();
        let order = COMPLETIONS.fetch_add(1, Ordering::Relaxed);
        inner.completed = Some((order, outcome.is_err()));
        // Callbacks run here, on the thread that resolves, with the outcome lent to them.
        for callback in std::mem::take(&mut inner.callbacks) {
            run_callback(callback, &outcome);
        }
        inner.outcome = Some(outcome);
        let waker = inner.waker.take();
        let signals = std::mem::take(&mut inner.signals);
        drop(inner);
        self.done.notify_all();
        for s in signals {
            s.fire();
        }
        if let Some(w) = waker {
            w.wake();
        }
    }

    /// Runs `callback` when the slot is done (at once, here, when it is done already).
    ///
    /// # Panics
    /// When the outcome was taken already.
    fn on_done(&self, callback: Callback) {
        let mut inner = self.inner.lock();
        if let Some(outcome) = &inner.outcome {
            run_callback(callback, outcome);
            return;
        }
        assert!(!inner.taken, "{TAKEN}");
        inner.callbacks.push(callback);
    }

    /// Takes the outcome, waiting until `deadline` (`None`: as long as it takes); `None`
    /// when there is none by then.
    fn take(&self, deadline: Option<Instant>) -> Option<Outcome> {
        let mut inner = self.inner.lock();
        loop {
            if let Some(outcome) = inner.outcome.take() {
                inner.taken = true;
                return Some(outcome);
            }
            assert!(!inner.taken, "{TAKEN}");
            match deadline {
                None => self.done.wait(&mut inner),
                Some(d) => {
                    if self.done.wait_until(&mut inner, d).timed_out() && inner.outcome.is_none() {
                        return None;
                    }
                }
            }
        }
    }

    fn poll_take(&self, cx: &mut Context<'_>) -> Poll<Outcome> {
        let mut inner = self.inner.lock();
        if let Some(outcome) = inner.outcome.take() {
            inner.taken = true;
            return Poll::Ready(outcome);
        }
        assert!(!inner.taken, "{TAKEN}");
        match &inner.waker {
            Some(w) if w.will_wake(cx.waker()) => {}
            _ => inner.waker = Some(cx.waker().clone()),
        }
        Poll::Pending
    }

    /// Fires `signal` when the slot is done; false (and nothing registered) when it is done
    /// already.
    pub(crate) fn notify(&self, signal: &Arc<Signal>) -> bool {
        let mut inner = self.inner.lock();
        if inner.completed.is_some() {
            return false;
        }
        inner.signals.push(signal.clone());
        true
    }

    /// Takes back a signal given to [`notify`](Self::notify).
    pub(crate) fn forget(&self, signal: &Arc<Signal>) {
        self.inner
            .lock()
            .signals
            .retain(|s| !Arc::ptr_eq(s, signal));
    }
}

/// Runs a done-callback; a panic in it is logged and goes no further (it must not end the
/// executor that resolves the future, nor skip the callbacks after it).
fn run_callback(callback: Callback, outcome: &Outcome) {
    let ran = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| callback(outcome)));
    if ran.is_err() {
        tracing::error!(target: "strata::executor", "a done-callback panicked");
    }
}

/// A handle future's slot as a submission, and then the executor, hold it. Dropped
/// unanswered — a `Submit` left in the mailbox of an executor that ended, the state of an
/// executor that failed — it answers the future itself, so every future resolves.
pub(crate) struct SlotGuard(pub(crate) Arc<Slot>);

impl Drop for SlotGuard {
    fn drop(&mut self) {
        self.0.abandon();
    }
}

const TAKEN: &str = "the JobFuture's outcome was taken already (by wait, wait_timeout or .await)";

/// Checks the executor's answer against the type the future expects.
fn shape<T: Message>(value: AnyMessage) -> Outcome {
    if let Some(e) = JobError::from_fault(&value) {
        return Err(e);
    }
    if value.is::<T>() {
        return Ok(value);
    }
    Err(JobError::Failed {
        fault: "Faulted",
        reason: format!(
            "the job gave a `{}` where a `{}` was expected",
            value.type_name(),
            T::type_name()
        ),
    })
}

/// A wake-up shared by the slots a waiter waits on.
pub(crate) struct Signal {
    fired: Mutex<bool>,
    cv: Condvar,
}

impl Signal {
    pub(crate) fn new() -> Arc<Signal> {
        Arc::new(Signal {
            fired: Mutex::new(false),
            cv: Condvar::new(),
        })
    }

    fn fire(&self) {
        *self.fired.lock() = true;
        self.cv.notify_all();
    }

    /// Waits until fired (clearing it) or until `deadline`; false on the deadline.
    pub(crate) fn wait(&self, deadline: Option<Instant>) -> bool {
        let mut fired = self.fired.lock();
        while !*fired {
            match deadline {
                None => self.cv.wait(&mut fired),
                Some(d) => {
                    if self.cv.wait_until(&mut fired, d).timed_out() {
                        break;
                    }
                }
            }
        }
        std::mem::replace(&mut *fired, false)
    }
}

/// How a future cancels its job at the executor: a `Cancel` for its tag, from the
/// address that submitted it.
#[derive(Clone)]
pub(crate) struct Canceller {
    /// Shared by every future of one handle (a future stays small).
    pub(crate) to: Arc<CancelTo>,
    pub(crate) tag: u64,
}

/// Where a handle's futures send their `Cancel`s: from the handle's address to its
/// executor.
pub(crate) struct CancelTo {
    pub(crate) postbox: Postbox,
    pub(crate) executor: Address,
}

/// The future of one job submitted through an [`ExecutorHandle`](super::ExecutorHandle):
/// resolves to the job's value, or the [`JobError`] that says why there is none.
///
/// The outcome is taken once: by [`wait`](Self::wait), by
/// [`wait_timeout`](Self::wait_timeout) when it gives `Some`, or by `.await`. Using the
/// future after that (waiting again, adding a callback) panics. Dropping a future does not
/// cancel its job.
///
/// ```
/// use std::time::Duration;
/// use strata::executor::Executor;
///
/// let pool = Executor::threads().max_workers(2).start();
/// let mut f = pool.submit_fn(|| 6 * 7);
/// f.on_done(|outcome| assert_eq!(outcome, Ok(&42)));
/// assert_eq!(f.wait_timeout(Duration::from_secs(10)), Some(Ok(42)));
/// ```
pub struct JobFuture<T> {
    slot: Arc<Slot>,
    canceller: Option<Canceller>,
    _value: PhantomData<fn() -> T>,
}

impl<T> std::fmt::Debug for JobFuture<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("JobFuture")
            .field("done", &self.slot.is_done())
            .finish()
    }
}

impl<T: Message> JobFuture<T> {
    pub(crate) fn new(slot: Arc<Slot>, canceller: Option<Canceller>) -> Self {
        JobFuture {
            slot,
            canceller,
            _value: PhantomData,
        }
    }

    pub(crate) fn slot(&self) -> &Arc<Slot> {
        &self.slot
    }

    /// Whether the job has an outcome (a value or an error).
    pub fn is_done(&self) -> bool {
        self.slot.is_done()
    }

    /// Cancels the job if no worker has taken it yet (queued, or waiting out
    /// `submit_after`'s delay); true when it was cancelled, and the future is then done
    /// with [`JobError::Cancelled`]. False when it is running or done already: a running
    /// job is never interrupted.
    pub fn cancel(&self) -> bool {
        if !self.slot.cancel() {
            return false;
        }
        // Tell the executor, so the job leaves its queue now (it would skip it anyway).
        if let Some(c) = &self.canceller {
            c.to.postbox.send(c.to.executor, Cancel { tag: c.tag });
        }
        true
    }

    /// Waits for the outcome and takes it.
    ///
    /// # Panics
    /// When the outcome was taken already.
    pub fn wait(self) -> Result<T, JobError> {
        into_typed(self.slot.take(None).expect("no deadline"))
    }

    /// Waits at most `timeout` for the outcome and takes it; `None` when the job is not
    /// done by then (it goes on; wait again later).
    ///
    /// # Panics
    /// When the outcome was taken already.
    pub fn wait_timeout(&mut self, timeout: Duration) -> Option<Result<T, JobError>> {
        self.slot
            .take(Some(Instant::now() + timeout))
            .map(into_typed)
    }

    /// Runs `callback` with the outcome when the job is done — at once, on this thread,
    /// when it is done already; otherwise on the thread that resolves it (the executor's),
    /// before any waiter wakes. Keep callbacks short and never wait in one: send a message,
    /// bump a counter. Several callbacks run in the order they were added.
    ///
    /// # Panics
    /// When the outcome was taken already.
    pub fn on_done(&self, callback: impl FnOnce(Result<&T, &JobError>) + Send + 'static) {
        self.slot.on_done(Box::new(move |outcome: &Outcome| {
            callback(match outcome {
                Ok(v) => Ok(v.downcast_ref::<T>().expect("shaped as a T")),
                Err(e) => Err(e),
            })
        }));
    }
}

fn into_typed<T: Message>(outcome: Outcome) -> Result<T, JobError> {
    outcome.map(|v| v.downcast::<T>().expect("shaped as a T"))
}

impl<T: Message> Future for JobFuture<T> {
    type Output = Result<T, JobError>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        self.slot.poll_take(cx).map(into_typed)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::standard::Faulted;
    use std::sync::atomic::AtomicUsize;

    #[test]
    fn a_slot_resolves_once_and_callbacks_see_the_outcome_first() {
        let slot = Slot::new::<u32>();
        let f: JobFuture<u32> = JobFuture::new(slot.clone(), None);
        let seen = Arc::new(AtomicUsize::new(0));
        let s = seen.clone();
        f.on_done(move |o| {
            assert_eq!(o, Ok(&5));
            s.fetch_add(1, Ordering::SeqCst);
        });
        assert!(!f.is_done());
        assert!(slot.start());
        assert!(!f.cancel(), "running: too late to cancel");
        slot.resolve(AnyMessage::new(5u32));
        slot.resolve(AnyMessage::new(6u32)); // ignored: done already
        assert_eq!(seen.load(Ordering::SeqCst), 1);
        let s = seen.clone();
        f.on_done(move |_| {
            s.fetch_add(1, Ordering::SeqCst);
        });
        assert_eq!(seen.load(Ordering::SeqCst), 2, "ran at once: done already");
        assert_eq!(f.wait(), Ok(5));
    }

    #[test]
    fn cancelling_wins_only_while_pending_and_the_executor_then_skips_it() {
        let slot = Slot::new::<u32>();
        let mut f: JobFuture<u32> = JobFuture::new(slot.clone(), None);
        assert!(f.cancel());
        assert!(!f.cancel());
        assert!(!slot.start(), "the executor must not run it");
        slot.resolve(AnyMessage::new(1u32));
        assert!(matches!(
            f.wait_timeout(Duration::ZERO),
            Some(Err(JobError::Cancelled(_)))
        ));
    }

    #[test]
    fn faults_and_wrong_types_are_errors_and_a_time_out_leaves_the_future_usable() {
        let slot = Slot::new::<u32>();
        let mut f: JobFuture<u32> = JobFuture::new(slot.clone(), None);
        assert_eq!(f.wait_timeout(Duration::from_millis(5)), None);
        slot.resolve(AnyMessage::new(Faulted::new("boom")));
        match f.wait_timeout(Duration::ZERO) {
            Some(Err(JobError::Failed { fault, reason })) => {
                assert_eq!(fault, "Faulted");
                assert!(reason.contains("boom"), "{reason}");
            }
            other => panic!("{other:?}"),
        }
        let slot = Slot::new::<u32>();
        slot.resolve(AnyMessage::new("text".to_string()));
        let f: JobFuture<u32> = JobFuture::new(slot, None);
        let e = f.wait().unwrap_err();
        assert!(e.to_string().contains("`string` where a `u32`"), "{e}");
        let slot = Slot::new::<u8>();
        slot.resolve(AnyMessage::new(Rejected::new("full")));
        let e = JobFuture::<u8>::new(slot, None).wait().unwrap_err();
        assert!(matches!(e, JobError::Rejected(_)) && e.to_string().contains("full"));
    }

    #[test]
    fn a_waiting_thread_wakes_when_another_resolves() {
        let slot = Slot::new::<String>();
        let f: JobFuture<String> = JobFuture::new(slot.clone(), None);
        let resolver = std::thread::spawn(move || {
            std::thread::sleep(Duration::from_millis(20));
            slot.resolve(AnyMessage::new("late".to_string()));
        });
        assert_eq!(f.wait(), Ok("late".to_string()));
        resolver.join().unwrap();
    }

    #[test]
    #[should_panic(expected = "taken already")]
    fn waiting_after_taking_panics() {
        let slot = Slot::new::<u32>();
        slot.resolve(AnyMessage::new(1u32));
        let mut f: JobFuture<u32> = JobFuture::new(slot, None);
        assert_eq!(f.wait_timeout(Duration::ZERO), Some(Ok(1)));
        let _ = f.wait_timeout(Duration::ZERO);
    }
}
