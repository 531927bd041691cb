//! The seed's `futurist-threads-worker.py` in strata: eight jobs on a pool of eight worker
//! threads, the executor's statistics before and after, and the results.
//!
//! `cargo run --release --example futures_threads` prints
//!
//! ```text
//! ExecutorStatistics(failures=0, executed=0, runtime=0.00, cancelled=0, ...)
//! ExecutorStatistics(failures=0, executed=8, runtime=0.02, cancelled=0, ...)
//! Results: [50501926, 50491563, 50507707, 50502946, 50510434, 50479587, 50490216, 50495566]
//! ```
//!
//! `Compute` is a job type (a message that knows how to run itself), so the same
//! submissions run on worker processes by changing one argument: see `futures_processes`.

use std::process::ExitCode;

use strata::executor::wait::wait_all;
use strata::executor::{Executor, Job, ShutdownMode};
use strata::prelude::*;

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
    let executor = Executor::threads().max_workers(8).start();
    let futures: Vec<_> = (0..8)
        .map(|i| executor.submit(Compute { seed: seed(i) }))
        .collect();
    match executor.statistics() {
        Ok(s) => println!("{s}"),
        Err(e) => eprintln!("no statistics: {e}"),
    }
    let waited = wait_all(&futures);
    match executor.statistics() {
        Ok(s) => println!("{s}"),
        Err(e) => eprintln!("no statistics: {e}"),
    }
    assert!(waited.not_done.is_empty());
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
    let _ = executor.shutdown(ShutdownMode::Wait);
    code
}
