//! Spool statistics and the moving window that decides when a spool is busy.
//!
//! [`SpoolStatistics`] is what a spool reports; `Timing` keeps every response time (a
//! histogram, for the percentiles) and the recent ones (a moving window, for the mean that
//! admission compares with the target). Neither knows about workers or requests.
//!
//! The histogram part, `Durations` (every duration recorded, their total, and the mean
//! and percentiles read back), stands alone: the executor keeps its jobs' run times and
//! waits in it (`crate::executor`), without a moving window.

use std::collections::VecDeque;
use std::time::{Duration, Instant};

use hdrhistogram::Histogram;
use serde::{Deserialize, Serialize};

use crate::Message;

/// Ask a spool for its [`SpoolStatistics`] (it replies at once).
#[derive(Debug, Clone, Copy, Default, Serialize, Deserialize, Message)]
#[message(name = "SpoolStats")]
pub struct SpoolStats;

/// What a spool has done so far.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, Message)]
#[message(name = "SpoolStatistics")]
pub struct SpoolStatistics {
    /// Requests accepted (sent to a worker or queued).
    pub admitted: u64,
    /// Requests answered by a worker.
    pub completed: u64,
    /// Requests answered with a fault because their worker ended (or the spool stopped).
    pub failed: u64,
    /// Requests answered `TimedOut` because their deadline passed while they waited in the
    /// queue (the work was not done).
    pub expired: u64,
    /// Requests given to a second worker after the first ended before answering
    /// (`retry_on_loss`).
    pub retried: u64,
    /// Requests turned away with `Busy`.
    pub rejected_busy: u64,
    /// Requests turned away with `Overloaded`.
    pub rejected_overloaded: u64,
    /// Requests waiting for a worker now.
    pub queued: u64,
    /// Workers now, and how many of them are idle.
    pub workers: u64,
    /// Idle workers now.
    pub idle: u64,
    /// Workers replaced after ending.
    pub replaced: u64,
    /// Whether the spool is busy now (its moving-window response time is over target).
    pub busy: bool,
    /// Mean response time in seconds (arrival at the spool to answer).
    pub mean: f64,
    /// Median response time in seconds.
    pub p50: f64,
    /// 90th percentile response time in seconds.
    pub p90: f64,
    /// 99th percentile response time in seconds.
    pub p99: f64,
    /// Largest response time in seconds.
    pub max: f64,
}

/// The longest duration a histogram tells apart, in microseconds (an hour); longer ones
/// are recorded as an hour (their total stays exact).
const LONGEST_MICROS: u64 = 3_600_000_000;

/// Every duration recorded: a histogram of microseconds (three significant digits) for the
/// percentiles, and the exact count and total.
pub(crate) struct Durations {
    histogram: Histogram<u64>,
    count: u64,
    total: Duration,
}

/// The mean and percentiles of some durations, in seconds (all 0 when there are none).
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub(crate) struct Percentiles {
    pub(crate) mean: f64,
    pub(crate) p50: f64,
    pub(crate) p90: f64,
    pub(crate) p99: f64,
    pub(crate) max: f64,
}

impl Durations {
    pub(crate) fn new() -> Self {
        Durations {
            histogram: Histogram::new_with_bounds(1, LONGEST_MICROS, 3)
                .expect("valid histogram bounds"),
            count: 0,
            total: Duration::ZERO,
        }
    }

    /// Records one duration (under a microsecond counts as one in the histogram).
    pub(crate) fn record(&mut self, took: Duration) {
        let micros = (took.as_micros().min(u128::from(LONGEST_MICROS)) as u64).max(1);
        let _ = self.histogram.record(micros);
        self.count += 1;
        self.total += took;
    }

    /// How many durations were recorded.
    pub(crate) fn count(&self) -> u64 {
        self.count
    }

    /// Their exact sum.
    pub(crate) fn total(&self) -> Duration {
        self.total
    }

    /// The mean (exact) and the percentiles (from the histogram).
    pub(crate) fn percentiles(&self) -> Percentiles {
        if self.count == 0 {
            return Percentiles::default();
        }
        let secs = |v: u64| v as f64 / 1e6;
        Percentiles {
            mean: self.total.as_secs_f64() / self.count as f64,
            p50: secs(self.histogram.value_at_quantile(0.50)),
            p90: secs(self.histogram.value_at_quantile(0.90)),
            p99: secs(self.histogram.value_at_quantile(0.99)),
            max: secs(self.histogram.max()),
        }
    }
}

/// Response times: all of them (histogram) and the recent ones (moving window).
pub(crate) struct Timing {
    all: Durations,
    recent: VecDeque<(Instant, Duration)>,
    window: Duration,
    recent_total: Duration,
}

impl Timing {
    pub(crate) fn new(window: Duration) -> Self {
        Timing {
            all: Durations::new(),
            recent: VecDeque::new(),
            window,
            recent_total: Duration::ZERO,
        }
    }

    /// Changes the moving window (times already in it are kept; the next record or mean
    /// expires those older than the new window).
    pub(crate) fn set_window(&mut self, window: Duration) {
        self.window = window;
    }

    pub(crate) fn record(&mut self, now: Instant, took: Duration) {
        self.all.record(took);
        self.recent.push_back((now, took));
        self.recent_total += took;
        self.expire(now);
    }

    fn expire(&mut self, now: Instant) {
        while let Some((at, took)) = self.recent.front() {
            if now.duration_since(*at) <= self.window {
                break;
            }
            self.recent_total -= *took;
            self.recent.pop_front();
        }
    }

    /// The mean response time over the moving window; `None` when nothing completed in it.
    pub(crate) fn recent_mean(&mut self, now: Instant) -> Option<Duration> {
        self.expire(now);
        let n = self.recent.len() as u32;
        (n > 0).then(|| self.recent_total / n)
    }

    pub(crate) fn fill(&self, s: &mut SpoolStatistics) {
        let p = self.all.percentiles();
        (s.mean, s.p50, s.p90, s.p99, s.max) = (p.mean, p.p50, p.p90, p.p99, p.max);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_window_forgets_old_times() {
        let mut t = Timing::new(Duration::from_millis(100));
        let start = Instant::now();
        t.record(start, Duration::from_millis(50));
        t.record(start, Duration::from_millis(150));
        assert_eq!(t.recent_mean(start), Some(Duration::from_millis(100)));
        assert_eq!(t.recent_mean(start + Duration::from_millis(500)), None);
        let mut s = SpoolStatistics::default();
        t.fill(&mut s);
        assert!(s.max >= 0.149 && s.p50 >= 0.049, "{s:?}");
        assert!((s.mean - 0.1).abs() < 1e-9, "the mean is exact: {s:?}");
    }

    #[test]
    fn durations_keep_an_exact_total_and_read_back_percentiles() {
        let mut d = Durations::new();
        assert_eq!(d.percentiles(), Percentiles::default());
        for ms in 1..=100 {
            d.record(Duration::from_millis(ms));
        }
        d.record(Duration::from_nanos(10)); // under a microsecond: still counted
        assert_eq!(d.count(), 101);
        assert_eq!(
            d.total(),
            Duration::from_millis(5050) + Duration::from_nanos(10)
        );
        let p = d.percentiles();
        assert!(
            (p.p50 - 0.050).abs() < 0.001 && (p.p99 - 0.099).abs() < 0.001,
            "{p:?}"
        );
        assert!((p.max - 0.100).abs() < 0.001, "{p:?}");
        assert!((p.mean - 5.05 / 101.0).abs() < 1e-9, "{p:?}");
    }
}
