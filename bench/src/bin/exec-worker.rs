//! `exec-worker`: the worker process of the executor benchmark's strata process pool
//! (`Executor::processes(Process::of(exec-worker))` starts it; it is not meant to be run
//! by hand). Its top object is a `JobRunner` that knows the benchmark's job types.

#[path = "../executor/jobs.rs"]
mod jobs;

use std::process::ExitCode;

use strata::executor::JobRunner;
use strata::prelude::*;

fn main() -> ExitCode {
    strata::main(Threaded(
        JobRunner::new().job::<jobs::Empty>().job::<jobs::Spin>(),
    ))
}
