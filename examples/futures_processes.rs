//! The seed's `futures-processes-worker.py` in strata: eight jobs on a pool of worker
//! processes, one per CPU by default, and the results (and, beyond Python's output, the
//! executor's statistics).
//!
//! `cargo run --release --example futures_processes` prints
//!
//! ```text
//! Results: [50485099, 50461662, 50553224, 50458097, 50520276, 50510314, 50510035, 50525335]
//! ExecutorStatistics(failures=0, executed=8, runtime=0.03, cancelled=0, ...)
//! ```
//!
//! One argument changed from `futures_threads`: `Executor::threads()` became
//! `Executor::processes(Process::of(..))`. The worker processes are this same program
//! started with `worker`: it then runs a `JobRunner` that knows the `Compute` job type
//! (processes run registered entry points), and the code that submits does not change.

use std::process::ExitCode;

use strata::executor::{Executor, Job, JobRunner, ShutdownMode};
use strata::prelude::*;
use strata::process::Process;

/// The sum of a million random numbers from 1 to 100 (Python's `compute()`).
#[derive(Debug, Serialize, Deserialize, Message)]
struct Compute {
    seed: u64,
}

impl Job for Compute {
    type Output = u64;
    fn run(self) -> u64 {
        let mut x = self.seed | 1;
        (0..1_000_000)
            .map(|_| {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                x % 100 + 1
            })
            .sum()
    }
}

fn seed(i: u64) -> u64 {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos() as u64);
    now ^ i.wrapping_mul(0x9E37_79B9_7F4A_7C15)
}

fn main() -> ExitCode {
    if std::env::args().nth(1).as_deref() == Some("worker") {
        // A worker process: run the `Compute` jobs the parent sends.
        return strata::main(Threaded(JobRunner::new().job::<Compute>()));
    }
    let me = match std::env::current_exe() {
        Ok(path) => path.to_string_lossy().into_owned(),
        Err(e) => {
            eprintln!("cannot find this program: {e}");
            return ExitCode::FAILURE;
        }
    };
    let executor = Executor::processes(Process::of(me).arg("worker")).start();
    let futures: Vec<_> = (0..8)
        .map(|i| executor.submit(Compute { seed: seed(i) }))
        .collect();
    let results: Result<Vec<u64>, _> = futures.into_iter().map(|f| f.wait()).collect();
    let code = match results {
        Ok(results) => {
            println!("Results: {results:?}");
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("a job failed: {e}");
            ExitCode::FAILURE
        }
    };
    match executor.shutdown(ShutdownMode::Wait) {
        Ok(s) => println!("{s}"),
        Err(e) => eprintln!("no statistics: {e}"),
    }
    code
}
