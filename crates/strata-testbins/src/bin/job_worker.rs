//! A worker process for the executor tests: a `JobRunner` that runs `Nap` and `Sum`
//! jobs (not `Unregistered`). Started by a parent's
//! `Executor::processes(Process::of("job_worker"))`; run alone it waits until Ctrl-C.

use strata::executor::JobRunner;
use strata::prelude::*;
use strata_testbins::work::{Nap, Sum};

fn main() -> std::process::ExitCode {
    strata::main(Threaded(JobRunner::new().job::<Nap>().job::<Sum>()))
}
