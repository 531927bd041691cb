//! The seed's `futurist-periodics.py` in strata: one job every second printing the time
//! since it was scheduled, and one every four seconds printing the statistics of both
//! (futurist's watchers), added while the first runs.
//!
//! `cargo run --release --example periodics [-- --seconds=N]` (default 9) prints
//!
//! ```text
//! 1: 1.001048
//! 1: 2.001721
//! 1: 3.002633
//! stats: [Watcher(every_one: runs=3, successes=3, failures=0, elapsed=0.00, elapsed_waiting=0.00), Watcher(print_stats: runs=0, successes=0, failures=0, elapsed=0.00, elapsed_waiting=0.00)]
//! 1: 4.003301
//! ...
//! ```
//!
//! (the stats line comes just before or after the fourth `1:` line: both jobs are due at
//! four seconds) and, when it stops (after N seconds, or at Ctrl-C), the final
//! statistics. Python's runs until killed. The `1:` lines do not drift: each run is due
//! a second after the last was *due*, whenever that one started. The jobs run on the `Periodic`'s own executor of threads; give it any
//! other with `Periodic::on(address)`.

use std::process::ExitCode;
use std::time::{Duration, Instant};

use strata::executor::periodic::{JobStatistics, Periodic, PeriodicHandle, PeriodicJob};
use strata::prelude::*;

fn list(stats: &[JobStatistics]) -> String {
    let shown: Vec<String> = stats.iter().map(ToString::to_string).collect();
    format!("[{}]", shown.join(", "))
}

fn seconds() -> Result<u64, String> {
    let mut seconds = 9;
    for arg in std::env::args().skip(1) {
        match arg.strip_prefix("--seconds=") {
            Some(n) => seconds = n.parse().map_err(|e| format!("bad --seconds: {e}"))?,
            None if arg.starts_with("--log") => {}
            None => {
                return Err(format!(
                    "unexpected argument `{arg}` (periodics [--seconds=N])"
                ))
            }
        }
    }
    Ok(seconds)
}

fn main() -> ExitCode {
    let run_for = match seconds() {
        Ok(s) => Duration::from_secs(s),
        Err(e) => {
            eprintln!("periodics: {e}");
            return ExitCode::from(2);
        }
    };
    strata::main(Thread::new(move |cx: &mut ThreadContext| {
        let started_at = Instant::now();
        let every_one = PeriodicJob::every(Duration::from_secs(1), "every_one", move || {
            println!("1: {:.6}", started_at.elapsed().as_secs_f64());
        });
        let worker = Periodic::new().job(every_one).start();
        // Added while it runs; it reports through a handle that does not own the worker.
        let watchers = PeriodicHandle::to(worker.address());
        let print_stats =
            PeriodicJob::every(
                Duration::from_secs(4),
                "print_stats",
                move || match watchers.statistics() {
                    Ok(s) => println!("stats: {}", list(&s)),
                    Err(e) => println!("stats: unavailable ({e})"),
                },
            );
        if let Err(e) = worker.add(print_stats) {
            eprintln!("periodics: {e}");
            return 1;
        }
        // Until the time is up, or Ctrl-C (which arrives as Stop).
        let _ = cx.recv_timeout(run_for);
        match worker.stop() {
            Ok(s) => {
                println!("final: {}", list(&s));
                0
            }
            Err(e) => {
                eprintln!("periodics: {e}");
                1
            }
        }
    }))
}
