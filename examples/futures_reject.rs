//! The seed's futurist example with `check_and_reject=reject_when_reached(2)` in strata:
//! twenty jobs for eight worker threads and a backlog of at most two, the statistics
//! before and after, and the results.
//!
//! `cargo run --release --example futures_reject` prints
//!
//! ```text
//! ExecutorStatistics(failures=0, executed=0, runtime=0.00, cancelled=0, rejected=10, queued=2, workers=8, ...)
//! ExecutorStatistics(failures=0, executed=10, runtime=0.03, cancelled=0, rejected=10, queued=0, workers=8, ...)
//! Results: [50519384, ..., 50498093, Rejected, Rejected, Rejected, ...]
//! Rejected (10): 2 jobs are waiting already: the backlog limit of 2 is reached
//! ```
//!
//! Where futurist raises `RejectedSubmission` out of `submit` (and the program ends with a
//! traceback), each refused job's future resolves with `Rejected` and its reason, and the
//! program goes on: eight jobs run, two wait, the other ten are refused at once.

use std::collections::BTreeMap;
use std::process::ExitCode;

use strata::executor::{Executor, Job, JobError, ShutdownMode};
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
    let executor = Executor::threads()
        .max_workers(8)
        .reject_when_reached(2)
        .start();
    let futures: Vec<_> = (0..20)
        .map(|i| executor.submit(Compute { seed: seed(i) }))
        .collect();
    match executor.statistics() {
        Ok(s) => println!("{s}"),
        Err(e) => eprintln!("no statistics: {e}"),
    }
    let results: Vec<Result<u64, JobError>> = futures.into_iter().map(|f| f.wait()).collect();
    match executor.statistics() {
        Ok(s) => println!("{s}"),
        Err(e) => eprintln!("no statistics: {e}"),
    }
    let shown: Vec<String> = results
        .iter()
        .map(|r| match r {
            Ok(v) => v.to_string(),
            Err(JobError::Rejected(_)) => "Rejected".to_string(),
            Err(e) => format!("{e}"),
        })
        .collect();
    println!("Results: [{}]", shown.join(", "));
    let mut reasons: BTreeMap<String, usize> = BTreeMap::new();
    for r in &results {
        if let Err(JobError::Rejected(r)) = r {
            *reasons.entry(r.reason.clone()).or_default() += 1;
        }
    }
    for (reason, n) in reasons {
        println!("Rejected ({n}): {reason}");
    }
    let _ = executor.shutdown(ShutdownMode::Wait);
    if results
        .iter()
        .any(|r| matches!(r, Err(e) if !matches!(e, JobError::Rejected(_))))
    {
        return ExitCode::FAILURE;
    }
    ExitCode::SUCCESS
}
