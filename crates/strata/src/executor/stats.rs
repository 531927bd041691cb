//! Executor statistics: counts, gauges and run times.
//!
//! [`ExecutorStatistics`] is what an executor reports, as a message (ask with
//! [`ExecutorStats`](super::ExecutorStats)) or through
//! [`ExecutorHandle::statistics`](super::ExecutorHandle::statistics). Run times are kept
//! in the spool's histogram (`spool::stats::Durations`): every run counted, the total
//! exact, percentiles to three significant digits.

use std::fmt;

use serde::{Deserialize, Serialize};

use crate::spool::stats::Durations;
use crate::Message;

/// What an executor has done so far, and what it holds now. Times are in seconds.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, Message)]
#[message(name = "executor.ExecutorStatistics")]
pub struct ExecutorStatistics {
    /// Jobs submitted (every one of them is, or will be, executed, cancelled or rejected).
    pub submitted: u64,
    /// Jobs that ran to an end, successfully or not.
    pub executed: u64,
    /// Of those, the jobs that failed: a panic, a fault returned, the end of their worker.
    pub failed: u64,
    /// Jobs cancelled before a worker took them.
    pub cancelled: u64,
    /// Jobs refused at submission.
    pub rejected: u64,
    /// Jobs waiting for a worker now.
    pub queued: u64,
    /// Jobs waiting out a `submit_after` delay now.
    pub delayed: u64,
    /// Jobs running now.
    pub running: u64,
    /// Workers now.
    pub workers: u64,
    /// Idle workers now.
    pub idle: u64,
    /// Whether a shutdown is under way (new submissions are refused).
    pub shutting_down: bool,
    /// Workers started so far (at start, to grow, to replace).
    pub started: u64,
    /// Workers stopped after staying idle for the idle time-out.
    pub shrunk: u64,
    /// Workers that ended unexpectedly (a process killed, a worker that failed).
    pub lost: u64,
    /// Total run time of the executed jobs.
    pub runtime: f64,
    /// Mean run time.
    pub mean: f64,
    /// Median run time.
    pub p50: f64,
    /// 90th percentile run time.
    pub p90: f64,
    /// 99th percentile run time.
    pub p99: f64,
    /// Longest run time.
    pub max: f64,
    /// Mean time a job waited for a worker (from submission, or from the end of its
    /// delay, to its start).
    pub waited: f64,
}

impl fmt::Display for ExecutorStatistics {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "ExecutorStatistics(failures={}, executed={}, runtime={:.2}, cancelled={}, \
             rejected={}, queued={}, workers={}, idle={}, mean={:.6}, p99={:.6})",
            self.failed,
            self.executed,
            self.runtime,
            self.cancelled,
            self.rejected,
            self.queued,
            self.workers,
            self.idle,
            self.mean,
            self.p99
        )
    }
}

/// The executor's running counts and times (the gauges are read from its parts).
pub(crate) struct Counters {
    pub(crate) submitted: u64,
    pub(crate) failed: u64,
    pub(crate) cancelled: u64,
    pub(crate) rejected: u64,
    pub(crate) started: u64,
    pub(crate) shrunk: u64,
    pub(crate) lost: u64,
    /// Run times of the executed jobs.
    pub(crate) runs: Durations,
    /// Waits for a worker.
    pub(crate) waits: Durations,
}

impl Counters {
    pub(crate) fn new() -> Self {
        Counters {
            submitted: 0,
            failed: 0,
            cancelled: 0,
            rejected: 0,
            started: 0,
            shrunk: 0,
            lost: 0,
            runs: Durations::new(),
            waits: Durations::new(),
        }
    }

    /// The counts and times as statistics (the gauges left at 0 for the caller).
    pub(crate) fn statistics(&self) -> ExecutorStatistics {
        let p = self.runs.percentiles();
        ExecutorStatistics {
            submitted: self.submitted,
            executed: self.runs.count(),
            failed: self.failed,
            cancelled: self.cancelled,
            rejected: self.rejected,
            started: self.started,
            shrunk: self.shrunk,
            lost: self.lost,
            runtime: self.runs.total().as_secs_f64(),
            mean: p.mean,
            p50: p.p50,
            p90: p.p90,
            p99: p.p99,
            max: p.max,
            waited: self.waits.percentiles().mean,
            ..ExecutorStatistics::default()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn statistics_read_like_futurists() {
        let mut c = Counters::new();
        c.submitted = 3;
        c.runs.record(Duration::from_millis(1500));
        c.runs.record(Duration::from_millis(500));
        c.failed = 1;
        let s = c.statistics();
        assert_eq!((s.executed, s.failed), (2, 1));
        assert!((s.runtime - 2.0).abs() < 1e-9 && (s.mean - 1.0).abs() < 1e-9);
        let text = s.to_string();
        assert!(
            text.starts_with(
                "ExecutorStatistics(failures=1, executed=2, runtime=2.00, cancelled=0"
            ),
            "{text}"
        );
    }
}
