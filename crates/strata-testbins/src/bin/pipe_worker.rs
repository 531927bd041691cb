//! A pipeline worker process for the pipeline tests: a `StageRunner` that runs the
//! `Numbers` frontend and the `Fan` transport. Started by a parent's
//! `Workers::processes(n, Process::of("pipe_worker"))`.

use strata::pipeline::StageRunner;
use strata::prelude::*;
use strata_testbins::pipe::{Fan, Numbers};

fn main() -> std::process::ExitCode {
    strata::main(Threaded(
        StageRunner::new().frontend::<Numbers>().transport::<Fan>(),
    ))
}
