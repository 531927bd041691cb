//! Executors: submit work, get a future for its result.
//!
//! An [`Executor`] is an object — a machine — that owns a pool of workers and runs the
//! *jobs* submitted to it, answering each exactly once. Objects submit with a [`Submit`]
//! message and receive the result as a [`JobDone`] message; plain Rust code goes through
//! a thin [`ExecutorHandle`], whose `submit` gives a [`JobFuture`] that can be awaited,
//! waited on with a time-out from a thread, cancelled while still pending, and given
//! done-callbacks.
//!
//! ```
//! use strata::prelude::*;
//! use strata::executor::{Executor, Job, ShutdownMode};
//!
//! #[derive(Debug, Serialize, Deserialize, Message)]
//! struct Sum { upto: u64 }
//!
//! impl Job for Sum {
//!     type Output = u64;
//!     fn run(self) -> u64 { (1..=self.upto).sum() }
//! }
//!
//! let pool = Executor::threads().max_workers(4).start();
//! let sums: Vec<_> = (1..=3).map(|n| pool.submit(Sum { upto: n * 10 })).collect();
//! let sums: Vec<u64> = sums.into_iter().map(|f| f.wait().unwrap()).collect();
//! assert_eq!(sums, [55, 210, 465]);
//! let stats = pool.shutdown(ShutdownMode::Wait).unwrap();
//! assert_eq!((stats.executed, stats.failed), (3, 0));
//! ```
//!
//! # Threads, async workers, processes: one argument
//!
//! [`Executor::threads`], [`Executor::asynchronous`] and
//! [`Executor::processes`]`(Process::of("worker"))` build the same executor over
//! different workers, and the code that submits does not change. That holds for
//! [`Job`] types: a job is a message, so it can cross to a worker process, which runs it
//! by type name with the runners its program registered
//! (`strata::main(Threaded(JobRunner::new().job::<Sum>()))`: processes run *registered
//! entry points*). Closures and futures ([`submit_fn`](ExecutorHandle::submit_fn),
//! [`submit_async`](ExecutorHandle::submit_async)) are for workers in this process; an
//! executor of processes refuses them with [`Rejected`].
//!
//! # What always holds
//!
//! * **Every future resolves**, and every `Submit` is answered once: with the value, or
//!   [`Rejected`] (refused at submission), [`Cancelled`] (taken back before it started),
//!   or the fault that ended it. A panicking job fails its future and the worker goes
//!   on; a worker process killed mid-job fails that job (every job of the batch it held,
//!   when jobs queued) with a fault naming the signal and is replaced (Python's process pool breaks or hangs there). A submission the
//!   executor can no longer answer (it ended) answers its future itself.
//! * **Admission** ([`reject_when_reached`](Executor::reject_when_reached),
//!   [`check_and_reject`](Executor::check_and_reject), [`queue_size`](Executor::queue_size))
//!   refuses at once with a reason, and a periodic or batch caller can retry.
//! * **Sizing**: between `min_workers` and `max_workers`; a job that finds no idle worker
//!   starts one, idle workers are reused (the one idle shortest first), and a worker idle
//!   for `idle_timeout` beyond the minimum is stopped.
//! * **Shutdown** ([`ShutdownMode`]: wait, cancel pending, drain with a time-out) never
//!   abandons a queued job silently; `Stop` cancels what is pending and lets running jobs
//!   finish.
//! * **Waiting** on many futures ([`wait`]): all, any, the first error, as completed,
//!   each with a time-out; futures already done count at once.
//! * **Statistics** ([`ExecutorStatistics`]): executed, failed, cancelled, rejected, run
//!   times (total, mean, percentiles), the queue, workers and idle workers; as a message
//!   ([`ExecutorStats`]) and through the handle.
//!
//! # Which pool when
//!
//! A [`Spool`](crate::spool::Spool) when clients *ask* and each request is a message for
//! interchangeable workers (a service behind one address, shedding load with `Busy`). An
//! executor when the caller *submits work* and wants its result: futures, waiting for all
//! or any, cancellation, delays, a pool that grows and shrinks. Jobs that should run
//! again and again on a schedule go to [`periodic`], which submits to an executor of your
//! choice.
//!
//! # How it is built
//!
//! One file per concern, pure decisions apart from the machine (the layout suggested in
//! `research/aesthetics.md` §4.3, with two changes: the handle and the workers have files
//! of their own, because the object model puts them on either side of the machine —
//! `handle.rs` sends the machine messages, `runner.rs` answers them — and the messages
//! are in `messages.rs`, as elsewhere):
//!
//! | file | what |
//! |---|---|
//! | `job.rs` | [`Job`], [`JobOutput`], the runners registered by type name ([`register_job`]), how work runs (panics caught) |
//! | `messages.rs` | [`Submit`], [`JobDone`], [`Cancel`], [`Shutdown`], [`ExecutorStats`], the worker protocol, [`Rejected`], [`Cancelled`] |
//! | `executor.rs` | the [`Executor`] machine |
//! | `admission.rs` | the pure admission decision ([`Backlog`]) |
//! | `sizing.rs` | how many workers to start, which idle ones to let go (pure) |
//! | `delayed.rs` | jobs waiting out `submit_after` (pure) |
//! | `settings.rs` | [`ExecutorSettings`] and their checks |
//! | `stats.rs` | [`ExecutorStatistics`] over the spool's histogram |
//! | `future.rs` | [`JobFuture`], [`JobError`], and the slot a future is answered through |
//! | `wait.rs` | waiting on many futures |
//! | `handle.rs` | [`ExecutorHandle`] and `map` |
//! | `inbox.rs` | the submissions a handle made and its executor has not taken yet (one notice per batch) |
//! | `runner.rs` | the workers: [`JobRunner`], [`ThreadWorkers`], [`AsyncWorkers`] |
//! | `periodic/` | [`periodic`] jobs: schedules (pure), the `Periodic` machine, its handle, per-job statistics |
//!
//! From the spool it reuses the bounded queue, the membership of workers (made by a
//! [`Recipe`](crate::Recipe); an answer is told from a worker by its sender) and the
//! durations histogram. The one thing not a message is the handle future's *slot*: plain
//! code has no address to receive a `JobDone`, so the answer goes into the future it is
//! owed to — a mailbox of one message, filled once.

mod admission;
pub(crate) mod delayed;
#[allow(clippy::module_inception)]
mod executor;
mod future;
mod handle;
mod inbox;
mod job;
mod messages;
pub mod periodic;
mod runner;
mod settings;
mod sizing;
mod stats;
pub mod wait;

pub use admission::Backlog;
pub use executor::Executor;
pub use future::{JobError, JobFuture};
pub use handle::{ExecutorHandle, Map};
pub use job::{register_job, BoxFuture, Job, JobOutput};
pub use messages::{
    Cancel, Cancelled, ExecutorStats, JobDone, Rejected, Shutdown, ShutdownMode, Submit,
};
pub use runner::{AsyncWorkers, JobRunner, ThreadWorkers};
pub use settings::{ExecutorError, ExecutorSettings};
pub use stats::ExecutorStatistics;
