//! The workers: objects that run jobs, one batch at a time, for an executor.
//!
//! A worker takes a `RunJob` from its executor — one job, or a batch of jobs when they
//! queue up — runs its jobs in order, and answers with one `Ran` (each value and how long
//! it ran). A panic is caught and answered as that job's fault, so the worker goes on. A
//! `RunJob` with a start time (a delayed job or a periodic run, given a little early)
//! waits for it first: a thread worker sleeps the rest, so the job starts within tens of
//! microseconds of its time. There are three kinds, one per executor kind:
//!
//! * [`JobRunner`] on its own thread ([`Threaded`]): the workers of
//!   [`Executor::threads`](super::Executor::threads), made by [`ThreadWorkers`];
//! * an async object on the shared runtime, made by [`AsyncWorkers`] for
//!   [`Executor::asynchronous`](super::Executor::asynchronous): it awaits future jobs;
//! * a worker *process* whose top object is a [`JobRunner`], for
//!   [`Executor::processes`](super::Executor::processes): the program registers the job
//!   types it runs.
//!
//! ```no_run
//! // A worker program: runs `Compute` jobs for an executor of processes.
//! use strata::prelude::*;
//! use strata::executor::{Job, JobRunner};
//!
//! #[derive(Debug, Serialize, Deserialize, Message)]
//! struct Compute { n: u64 }
//!
//! impl Job for Compute {
//!     type Output = u64;
//!     fn run(self) -> u64 { (0..self.n).sum() }
//! }
//!
//! fn main() -> std::process::ExitCode {
//!     strata::main(Threaded(JobRunner::new().job::<Compute>()))
//! }
//! ```

use std::pin::Pin;

use super::job::{register_job, run_batch, run_batch_async, Job};
use super::messages::{Ran, RunJob};
use crate::object::{Async, AsyncContext, Context, Recipe, Threaded};
use crate::standard::{Aborted, Stop};

/// A machine that runs the jobs its executor sends it, one batch at a time, in order. As a worker
/// process's top object, it runs the job types registered with [`job`](Self::job) (or
/// [`register_job`]); jobs from this process carry their runner and need no registration.
#[derive(Debug, Default)]
pub struct JobRunner {
    _private: (),
}

impl JobRunner {
    /// A runner of the jobs registered in this process.
    pub fn new() -> Self {
        JobRunner::default()
    }

    /// Registers the job type `J` (see [`register_job`]), so jobs of it that arrive from
    /// another process run here.
    pub fn job<J: Job>(self) -> Self {
        register_job::<J>();
        self
    }
}

#[crate::machine]
impl JobRunner {
    fn run(&mut self, _cx: &mut Context<Self>, m: RunJob) -> Ran {
        if let Some(at) = m.start_at {
            // Given early so that it starts on time: the OS's sleep is precise to tens
            // of microseconds, and nothing else stands between it and the job.
            let rest = at.saturating_duration_since(std::time::Instant::now());
            if !rest.is_zero() {
                std::thread::sleep(rest);
            }
        }
        Ran {
            runs: run_batch(m.work),
        }
    }
}

/// The recipe of [`Executor::threads`](super::Executor::threads): each worker a
/// [`JobRunner`] on its own OS thread.
#[derive(Debug, Clone, Copy, Default)]
pub struct ThreadWorkers;

impl Recipe for ThreadWorkers {
    type Member = Threaded<JobRunner>;
    fn make(&mut self, (): ()) -> Threaded<JobRunner> {
        Threaded(JobRunner::new())
    }
}

type AsyncBody = fn(AsyncContext) -> Pin<Box<dyn std::future::Future<Output = Aborted> + Send>>;

/// The recipe of [`Executor::asynchronous`](super::Executor::asynchronous): each worker
/// an async object on the shared runtime that awaits one job at a time (a batch's
/// jobs in turn). Future jobs (and
/// [`Job::run_async`]) wait there without holding a thread; closures run inline on the
/// runtime thread, so keep them short.
#[derive(Debug, Clone, Copy, Default)]
pub struct AsyncWorkers;

impl Recipe for AsyncWorkers {
    type Member = Async<AsyncBody>;
    fn make(&mut self, (): ()) -> Async<AsyncBody> {
        Async::new(|cx| Box::pin(async_worker(cx)))
    }
}

async fn async_worker(mut cx: AsyncContext) -> Aborted {
    loop {
        let e = cx.recv().await;
        if e.is::<Stop>() {
            return Aborted::new("stopped");
        }
        let from = e.sender();
        match e.take::<RunJob>() {
            Ok(m) => {
                if let Some(at) = m.start_at {
                    // tokio's timer: up to a couple of milliseconds late.
                    tokio::time::sleep_until(at.into()).await;
                }
                let runs = run_batch_async(m.work).await;
                cx.send(from, Ran { runs });
            }
            Err(other) => {
                tracing::debug!(target: "strata::executor", message = other.type_name(), "an async worker ignored a message");
            }
        }
    }
}
