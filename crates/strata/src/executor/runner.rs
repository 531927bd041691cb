//! The workers: objects that run jobs, one at a time, for an executor.
//!
//! A worker takes a `RunJob` from its executor, runs it, and answers with `Ran` (the
//! value and how long it ran). A panic is caught and answered as a fault, so the worker
//! goes on. There are three kinds, one per executor kind:
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

use super::job::{register_job, Job};
use super::messages::{Ran, RunJob};
use crate::object::{Async, AsyncContext, Context, Recipe, Threaded};
use crate::standard::{Aborted, Stop};

/// A machine that runs the jobs its executor sends it, one at a time. As a worker
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
        let (value, took) = m.work.run();
        Ran {
            value,
            seconds: took.as_secs_f64(),
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
/// an async object on the shared runtime that awaits one job at a time. Future jobs (and
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
                let (value, took) = m.work.run_async().await;
                cx.send(
                    from,
                    Ran {
                        value,
                        seconds: took.as_secs_f64(),
                    },
                );
            }
            Err(other) => {
                tracing::debug!(target: "strata::executor", message = other.type_name(), "an async worker ignored a message");
            }
        }
    }
}
