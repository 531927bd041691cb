//! Per-job statistics of periodic jobs (futurist's watchers).

use std::fmt;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::Message;

/// What one periodic job has done so far. Times are in seconds.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, Message)]
#[message(name = "periodic.JobStatistics")]
pub struct JobStatistics {
    /// The job's name.
    pub name: String,
    /// Runs that ended (successfully or not).
    pub runs: u64,
    /// Of those, the ones that succeeded.
    pub successes: u64,
    /// Of those, the ones that failed (a fault or a panic).
    pub failures: u64,
    /// Times the executor refused or cancelled a run (retried later; not a run).
    pub refused: u64,
    /// Time spent running, in all.
    pub elapsed: f64,
    /// Time spent waiting past the due time before running (late timers, a busy
    /// executor), in all.
    pub elapsed_waiting: f64,
    /// Mean running time of a run.
    pub average_elapsed: f64,
    /// Mean wait past the due time.
    pub average_elapsed_waiting: f64,
    /// Whether the job is still scheduled (false once it returned `NeverAgain` or was
    /// removed).
    pub active: bool,
}

impl fmt::Display for JobStatistics {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "Watcher({}: runs={}, successes={}, failures={}, elapsed={:.2}, elapsed_waiting={:.2})",
            self.name, self.runs, self.successes, self.failures, self.elapsed, self.elapsed_waiting
        )
    }
}

impl JobStatistics {
    pub(crate) fn new(name: &str) -> Self {
        JobStatistics {
            name: name.to_string(),
            active: true,
            ..JobStatistics::default()
        }
    }

    /// One run ended after running `ran` and waiting `waited` past its due time.
    pub(crate) fn ran(&mut self, ok: bool, ran: Duration, waited: Duration) {
        self.runs += 1;
        if ok {
            self.successes += 1;
        } else {
            self.failures += 1;
        }
        self.elapsed += ran.as_secs_f64();
        self.elapsed_waiting += waited.as_secs_f64();
        self.average_elapsed = self.elapsed / self.runs as f64;
        self.average_elapsed_waiting = self.elapsed_waiting / self.runs as f64;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn runs_add_up_and_averages_follow() {
        let mut s = JobStatistics::new("every_one");
        s.ran(true, Duration::from_millis(300), Duration::from_millis(10));
        s.ran(false, Duration::from_millis(100), Duration::ZERO);
        assert_eq!((s.runs, s.successes, s.failures), (2, 1, 1));
        assert!((s.elapsed - 0.4).abs() < 1e-9 && (s.average_elapsed - 0.2).abs() < 1e-9);
        assert!((s.average_elapsed_waiting - 0.005).abs() < 1e-9);
        assert_eq!(
            s.to_string(),
            "Watcher(every_one: runs=2, successes=1, failures=1, elapsed=0.40, elapsed_waiting=0.01)"
        );
    }
}
