//! Jobs: what an executor runs.
//!
//! A job is either
//!
//! * a **[`Job`] type**: a message (a struct with the job's inputs) that knows how to run
//!   itself. Being a message, it can cross to a worker *process*; the worker runs it by
//!   its type name, through the *runners* registered in its program
//!   ([`register_job`], [`JobRunner::job`](super::JobRunner::job)). This is what keeps
//!   threads and processes a one-argument change: the same `submit(Compute { .. })` runs
//!   on either.
//! * a **closure** or a **future**: the quickest to write, for executors whose workers are
//!   in this process (threads, async workers). A worker process cannot run them (they do
//!   not serialize), and an executor of processes refuses them with [`Rejected`].
//!
//! Whatever runs, its value is a message: the job's output, or a fault when it failed (a
//! panic becomes a `Faulted` naming it).
//!
//! [`Rejected`]: super::Rejected

use std::collections::HashMap;
use std::fmt;
use std::future::Future;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::pin::Pin;
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use futures_util::FutureExt;
use parking_lot::RwLock;

use crate::message::{AnyMessage, Fault, Message};
use crate::standard::Faulted;

/// A boxed future that can move between threads: what async jobs are.
pub type BoxFuture<T> = Pin<Box<dyn Future<Output = T> + Send + 'static>>;

/// A unit of work as a message: its fields are the inputs, [`run`](Job::run) does the work.
///
/// ```
/// use strata::prelude::*;
/// use strata::executor::Job;
///
/// #[derive(Debug, Serialize, Deserialize, Message)]
/// struct Sum { upto: u64 }
///
/// impl Job for Sum {
///     type Output = u64;
///     fn run(self) -> u64 {
///         (1..=self.upto).sum()
///     }
/// }
/// assert_eq!(Sum { upto: 4 }.run(), 10);
/// ```
///
/// A job that can fail returns `Result<T, F>` with a fault type `F` (such as
/// [`Faulted`]): its future then fails with that fault. A panic fails it too.
pub trait Job: Message {
    /// What the job gives back: a message, or `Result<message, fault>`.
    type Output: JobOutput;

    /// Does the work (on a worker thread or in a worker process).
    fn run(self) -> Self::Output;

    /// Does the work on an async worker. By default it calls [`run`](Job::run) on the
    /// runtime thread, which suits short jobs; a job that waits for I/O overrides it.
    fn run_async(self) -> BoxFuture<Self::Output>
    where
        Self: Sized,
    {
        Box::pin(async move { self.run() })
    }
}

/// What a job (or a closure, or a future) may give back: a [`Message`], or a `Result`
/// whose error is a fault. `Value` is what its future resolves to.
pub trait JobOutput: Send + 'static {
    /// The value of a successful run.
    type Value: Message;
    /// The value as a message (the output, or the fault).
    fn into_message(self) -> AnyMessage;
}

impl<T: Message> JobOutput for T {
    type Value = T;
    fn into_message(self) -> AnyMessage {
        AnyMessage::new(self)
    }
}

impl<T: Message, E: Message + Fault> JobOutput for Result<T, E> {
    type Value = T;
    fn into_message(self) -> AnyMessage {
        match self {
            Ok(v) => AnyMessage::new(v),
            Err(e) => AnyMessage::new(e),
        }
    }
}

/// How to run one job type, found by its name: what a worker process needs to run a job
/// that arrived as a message.
#[derive(Clone, Copy)]
pub(crate) struct Runner {
    run: fn(AnyMessage) -> AnyMessage,
    run_async: fn(AnyMessage) -> BoxFuture<AnyMessage>,
}

impl Runner {
    pub(crate) fn of<J: Job>() -> Runner {
        Runner {
            run: run_erased::<J>,
            run_async: run_async_erased::<J>,
        }
    }
}

fn run_erased<J: Job>(job: AnyMessage) -> AnyMessage {
    match job.downcast::<J>() {
        Ok(job) => job.run().into_message(),
        Err(other) => mismatched::<J>(&other),
    }
}

fn run_async_erased<J: Job>(job: AnyMessage) -> BoxFuture<AnyMessage> {
    match job.downcast::<J>() {
        Ok(job) => Box::pin(job.run_async().map(JobOutput::into_message)),
        Err(other) => {
            let fault = mismatched::<J>(&other);
            Box::pin(async move { fault })
        }
    }
}

fn mismatched<J: Job>(other: &AnyMessage) -> AnyMessage {
    AnyMessage::new(Faulted::new(format!(
        "a runner of `{}` was given a `{}`",
        J::type_name(),
        other.type_name()
    )))
}

fn runners() -> &'static RwLock<HashMap<&'static str, Runner>> {
    static RUNNERS: OnceLock<RwLock<HashMap<&'static str, Runner>>> = OnceLock::new();
    RUNNERS.get_or_init(Default::default)
}

/// Makes this process able to run jobs of type `J` that arrive as messages: in a worker
/// process (an executor's parent sends it the job), or in an executor that objects of
/// other processes submit to. Registering twice changes nothing.
///
/// Jobs submitted in this process through an
/// [`ExecutorHandle`](super::ExecutorHandle) or [`Submit::job`](super::Submit::job) carry
/// their runner with them and need no registration.
pub fn register_job<J: Job>() {
    crate::message::register::<J>();
    let name = J::type_name();
    if runners().read().contains_key(name) {
        return;
    }
    runners().write().insert(name, Runner::of::<J>());
}

/// The runner registered for jobs named `name`.
pub(crate) fn runner_for(name: &str) -> Option<Runner> {
    runners().read().get(name).copied()
}

/// A job as it travels from a submitter through the executor to a worker.
pub(crate) enum Work {
    /// A job message and how to run it.
    Job { job: AnyMessage, runner: Runner },
    /// A job message that arrived from another process, whose type this process has no
    /// runner for: running it answers with a fault that says so.
    Unknown(AnyMessage),
    /// A closure (runs only in this process).
    Closure(Box<dyn FnOnce() -> AnyMessage + Send>),
    /// A future (runs only in this process).
    Future(BoxFuture<AnyMessage>),
}

impl Work {
    /// Wraps a typed job.
    pub(crate) fn job<J: Job>(job: J) -> Work {
        Work::Job {
            job: AnyMessage::new(job),
            runner: Runner::of::<J>(),
        }
    }

    /// A job that arrived as a message: its runner is found by its type name.
    pub(crate) fn decoded(job: AnyMessage) -> Work {
        match runner_for(job.type_name()) {
            Some(runner) => Work::Job { job, runner },
            None => Work::Unknown(job),
        }
    }

    /// Wraps a closure.
    pub(crate) fn closure<F, O>(f: F) -> Work
    where
        F: FnOnce() -> O + Send + 'static,
        O: JobOutput,
    {
        Work::Closure(Box::new(move || f().into_message()))
    }

    /// Wraps a future.
    pub(crate) fn future<Fut>(fut: Fut) -> Work
    where
        Fut: Future + Send + 'static,
        Fut::Output: JobOutput,
    {
        Work::Future(Box::pin(fut.map(JobOutput::into_message)))
    }

    /// Whether only a worker in this process can run it (a closure or a future).
    pub(crate) fn is_local(&self) -> bool {
        matches!(self, Work::Closure(_) | Work::Future(_))
    }

    /// The job message, when it is one (what crosses to a worker process).
    pub(crate) fn message(&self) -> Option<&AnyMessage> {
        match self {
            Work::Job { job, .. } | Work::Unknown(job) => Some(job),
            Work::Closure(_) | Work::Future(_) => None,
        }
    }

    /// What the work is, for logs and faults: the job's type, `closure` or `future`.
    pub(crate) fn describe(&self) -> &'static str {
        match self.message() {
            Some(job) => job.type_name(),
            None if matches!(self, Work::Closure(_)) => "closure",
            None => "future",
        }
    }

    #[cfg(test)]
    /// Runs the work on this thread, catching a panic; gives its value and how long it ran.
    /// A future is driven to its end on the shared runtime (`block_on`), so thread workers
    /// run async jobs too.
    pub(crate) fn run(self) -> (AnyMessage, Duration) {
        let began = Instant::now();
        let value = self.run_untimed();
        (value, began.elapsed())
    }

    /// [`run`](Self::run) without reading the clock.
    fn run_untimed(self) -> AnyMessage {
        catch_unwind(AssertUnwindSafe(|| match self {
            Work::Job { job, runner } => (runner.run)(job),
            Work::Unknown(job) => unknown(&job),
            Work::Closure(f) => f(),
            Work::Future(fut) => crate::runtime::handle().block_on(fut),
        }))
        .unwrap_or_else(panicked)
    }

    /// Runs the work on an async worker, catching a panic; gives its value and how long it
    /// ran. A closure runs inline, on the runtime thread.
    pub(crate) async fn run_async(self) -> (AnyMessage, Duration) {
        let began = Instant::now();
        let future: BoxFuture<AnyMessage> = match self {
            Work::Job { job, runner } => {
                match catch_unwind(AssertUnwindSafe(|| (runner.run_async)(job))) {
                    Ok(f) => f,
                    Err(payload) => {
                        let fault = panicked(payload);
                        Box::pin(async move { fault })
                    }
                }
            }
            Work::Unknown(job) => {
                let fault = unknown(&job);
                Box::pin(async move { fault })
            }
            Work::Closure(f) => {
                let value = catch_unwind(AssertUnwindSafe(f)).unwrap_or_else(panicked);
                Box::pin(async move { value })
            }
            Work::Future(fut) => fut,
        };
        let value = AssertUnwindSafe(future)
            .catch_unwind()
            .await
            .unwrap_or_else(panicked);
        (value, began.elapsed())
    }
}

/// Runs a batch of work in order on this thread (see [`Work::run`]): each job's value
/// and how long it ran, in seconds. The clock is read once between two jobs, the end of
/// one being the start of the next.
pub(crate) fn run_batch(batch: Vec<Work>) -> Vec<(AnyMessage, f64)> {
    let mut runs = Vec::with_capacity(batch.len());
    let mut began = Instant::now();
    for work in batch {
        let value = work.run_untimed();
        let ended = Instant::now();
        runs.push((value, ended.duration_since(began).as_secs_f64()));
        began = ended;
    }
    runs
}

/// [`run_batch`] on an async worker: each job awaited in turn (see [`Work::run_async`]).
pub(crate) async fn run_batch_async(batch: Vec<Work>) -> Vec<(AnyMessage, f64)> {
    let mut runs = Vec::with_capacity(batch.len());
    for work in batch {
        let (value, took) = work.run_async().await;
        runs.push((value, took.as_secs_f64()));
    }
    runs
}

impl fmt::Debug for Work {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Work::Job { job, .. } => write!(f, "Job({job:?})"),
            Work::Unknown(job) => write!(f, "Unknown({job:?})"),
            Work::Closure(_) => f.write_str("Closure"),
            Work::Future(_) => f.write_str("Future"),
        }
    }
}

fn unknown(job: &AnyMessage) -> AnyMessage {
    let name = job.type_name();
    AnyMessage::new(Faulted::new(format!(
        "this process cannot run jobs of type `{name}`: register it in the worker \
         program (`JobRunner::new().job::<{name}>()` or `register_job`)"
    )))
}

/// The fault a panicking job ends with.
fn panicked(payload: Box<dyn std::any::Any + Send>) -> AnyMessage {
    let text = payload
        .downcast_ref::<&str>()
        .map(|s| s.to_string())
        .or_else(|| payload.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "a non-string panic".to_string());
    tracing::warn!(target: "strata::executor", panic = %text, "a job panicked");
    AnyMessage::new(Faulted::new(format!("the job panicked: {text}")))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde::{Deserialize, Serialize};

    #[derive(Debug, Serialize, Deserialize)]
    struct Double(u32);

    impl Message for Double {
        fn type_name() -> &'static str {
            "test.executor.Double"
        }
    }

    impl Job for Double {
        type Output = u32;
        fn run(self) -> u32 {
            assert!(self.0 != 13, "unlucky");
            self.0 * 2
        }
    }

    #[test]
    fn typed_jobs_closures_and_futures_run_and_panics_become_faults() {
        let (v, _) = Work::job(Double(21)).run();
        assert_eq!(v.downcast::<u32>().unwrap(), 42);
        let (v, _) = Work::job(Double(13)).run();
        let f = v.downcast::<Faulted>().unwrap();
        assert!(f.reason.contains("panicked: unlucky"), "{f}");
        let (v, _) = Work::closure(|| "hi".to_string()).run();
        assert_eq!(v.downcast::<String>().unwrap(), "hi");
        let (v, _) = Work::closure(|| -> Result<u8, Faulted> { Err(Faulted::new("no")) }).run();
        assert!(v.is_fault());
        let (v, _) = Work::future(async { 7u8 }).run();
        assert_eq!(v.downcast::<u8>().unwrap(), 7);
        let (v, _) = crate::runtime::handle().block_on(Work::job(Double(13)).run_async());
        assert!(v.is_fault());
    }

    #[test]
    fn a_batch_runs_in_order_and_a_panic_fails_only_its_own_job() {
        let batch = vec![
            Work::job(Double(1)),
            Work::job(Double(13)),
            Work::closure(|| 5u32),
        ];
        let runs = run_batch(batch);
        assert_eq!(runs.len(), 3);
        let mut runs = runs.into_iter();
        assert_eq!(runs.next().unwrap().0.downcast::<u32>().unwrap(), 2);
        assert!(runs.next().unwrap().0.is_fault());
        let (v, seconds) = runs.next().unwrap();
        assert_eq!(v.downcast::<u32>().unwrap(), 5);
        assert!(seconds >= 0.0);
        let batch = vec![Work::job(Double(2)), Work::future(async { 9u32 })];
        let runs = crate::runtime::handle().block_on(run_batch_async(batch));
        let values: Vec<u32> = runs
            .into_iter()
            .map(|(v, _)| v.downcast::<u32>().unwrap())
            .collect();
        assert_eq!(values, [4, 9]);
    }

    #[test]
    fn a_decoded_job_finds_its_runner_by_name_or_says_it_has_none() {
        let job = AnyMessage::new(Double(5));
        let w = Work::decoded(job);
        assert!(matches!(w, Work::Unknown(_)));
        let (v, _) = w.run();
        let f = v.downcast::<Faulted>().unwrap();
        assert!(f.reason.contains("test.executor.Double"), "{f}");
        register_job::<Double>();
        register_job::<Double>();
        let w = Work::decoded(AnyMessage::new(Double(5)));
        assert!(!w.is_local() && w.describe() == "test.executor.Double");
        assert_eq!(w.run().0.downcast::<u32>().unwrap(), 10);
        assert!(Work::closure(|| 1u8).is_local());
        assert_eq!(Work::future(async { 1u8 }).describe(), "future");
    }
}
