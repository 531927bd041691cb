//! Spool statistics and the moving window that decides when a spool is busy.
//!
//! [`SpoolStatistics`] is what a spool reports; `Timing` keeps every response time (a
//! histogram, for the percentiles) and the recent ones (a moving window, for the mean that
//! admission compares with the target). Neither knows about workers or requests.

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

/// Response times: all of them (histogram) and the recent ones (moving window).
pub(crate) struct Timing {
    histogram: Histogram<u64>,
    recent: VecDeque<(Instant, Duration)>,
    window: Duration,
    recent_total: Duration,
}

impl Timing {
    pub(crate) fn new(window: Duration) -> Self {
        Timing {
            histogram: Histogram::new_with_bounds(1, 3_600_000_000, 3)
                .expect("valid histogram bounds"),
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
        let micros = (took.as_micros() as u64).clamp(1, 3_600_000_000);
        let _ = self.histogram.record(micros);
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
        if self.histogram.is_empty() {
            return;
        }
        let secs = |v: u64| v as f64 / 1e6;
        s.mean = self.histogram.mean() / 1e6;
        s.p50 = secs(self.histogram.value_at_quantile(0.50));
        s.p90 = secs(self.histogram.value_at_quantile(0.90));
        s.p99 = secs(self.histogram.value_at_quantile(0.99));
        s.max = secs(self.histogram.max());
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
    }
}
