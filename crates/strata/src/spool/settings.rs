//! A spool's parameters, their checks, and what the rest of the spool derives from them
//! (the moving window that decides "busy", the stand-down's [`Backoff`]).

use std::time::Duration;

use crate::backoff::Backoff;

/// A spool parameter that is out of its sensible range.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("spool parameter `{parameter}`: {reason}")]
pub struct SpoolError {
    /// The parameter's name.
    pub parameter: &'static str,
    /// What is wrong with its value.
    pub reason: String,
}

/// The parameters of a spool.
#[derive(Debug, Clone, PartialEq)]
pub struct SpoolSettings {
    /// Workers created at start (default 8; 0 is allowed: workers may join later).
    pub workers: usize,
    /// Requests that may wait for a worker (default 1024); `None` is unbounded.
    pub queue_size: Option<usize>,
    /// Target response time; above it (mean over a moving window) the spool is busy.
    /// `None` (default) never sheds load for slowness.
    pub responsiveness: Option<Duration>,
    /// Share of new requests admitted while busy (default 0.1).
    pub busy_pass_rate: f64,
    /// Delay before a worker that ended is replaced, with ±25% jitter (default 1 s).
    /// `None`: a worker ending makes the spool itself fail.
    pub stand_down: Option<Duration>,
    /// Whether a request whose worker ended before answering is given once more to
    /// another worker instead of answered with a fault (default false). Only for
    /// idempotent requests: the lost worker may have done part of the work. The spool
    /// keeps an encoded copy of each request in flight for this.
    pub retry_on_loss: bool,
    /// Requests a worker is given at once (default 1: one at a time, round-robin among
    /// idle workers; at most 1024). With k > 1 a worker may hold k requests, which it
    /// must answer in the order it was given them (machines and child processes do); a
    /// worker process then reads several in one go instead of being woken for each. A
    /// worker that ends answers all it held with faults (or, with `retry_on_loss`, they
    /// go to other workers).
    pub in_flight: usize,
}

/// The stand-down's jitter: a replacement waits 0.75 to 1.25 of the stand-down.
const STAND_DOWN_JITTER: f64 = 0.25;

impl Default for SpoolSettings {
    fn default() -> Self {
        SpoolSettings {
            workers: 8,
            queue_size: Some(1024),
            responsiveness: None,
            busy_pass_rate: 0.1,
            stand_down: Some(Duration::from_secs(1)),
            retry_on_loss: false,
            in_flight: 1,
        }
    }
}

impl SpoolSettings {
    /// Checks every parameter, naming the first improbable one.
    pub fn validate(&self) -> Result<(), SpoolError> {
        let bad = |parameter, reason: String| Err(SpoolError { parameter, reason });
        if !(1..=1024).contains(&self.in_flight) {
            return bad(
                "in_flight",
                format!("{} is not between 1 and 1024", self.in_flight),
            );
        }
        if self.workers > 4096 {
            return bad("workers", format!("{} is more than 4096", self.workers));
        }
        if let Some(q) = self.queue_size {
            if q > 10_000_000 {
                return bad(
                    "queue_size",
                    format!("{q} is more than 10,000,000 (use None for unbounded)"),
                );
            }
        }
        if let Some(r) = self.responsiveness {
            if r < Duration::from_millis(1) || r > Duration::from_secs(3600) {
                return bad(
                    "responsiveness",
                    format!("{r:?} is not between 1 ms and 1 hour"),
                );
            }
        }
        if !(0.0..=1.0).contains(&self.busy_pass_rate) {
            return bad(
                "busy_pass_rate",
                format!("{} is not a share between 0 and 1", self.busy_pass_rate),
            );
        }
        if let Some(s) = self.stand_down {
            if s < Duration::from_millis(1) || s > Duration::from_secs(3600) {
                return bad(
                    "stand_down",
                    format!("{s:?} is not between 1 ms and 1 hour"),
                );
            }
        }
        Ok(())
    }

    /// The moving window over which the mean response time is taken: ten targets, at least
    /// a second (10 s without a target, when the mean only feeds the statistics).
    pub(crate) fn window(&self) -> Duration {
        self.responsiveness
            .map(|r| (r * 10).max(Duration::from_secs(1)))
            .unwrap_or(Duration::from_secs(10))
    }

    /// The policy for replacing a worker that ended: the stand-down, constant, ±25%
    /// jitter, no budget. `None` when the spool fails instead.
    pub(crate) fn stand_down_backoff(&self, seed: u64) -> Option<Backoff> {
        self.stand_down
            .map(|d| Backoff::constant(d).jitter(STAND_DOWN_JITTER).seed(seed))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_window_is_ten_targets_and_at_least_a_second() {
        let with = |r: Option<u64>| SpoolSettings {
            responsiveness: r.map(Duration::from_millis),
            ..Default::default()
        };
        assert_eq!(with(None).window(), Duration::from_secs(10));
        assert_eq!(with(Some(5)).window(), Duration::from_secs(1));
        assert_eq!(with(Some(500)).window(), Duration::from_secs(5));
    }

    #[test]
    fn the_stand_down_is_a_valid_constant_backoff_jittered_by_a_quarter() {
        let s = SpoolSettings::default();
        let mut b = s.stand_down_backoff(3).expect("a stand-down by default");
        assert!(b.validate().is_ok());
        for _ in 0..1000 {
            let w = b.failed().expect("no budget");
            assert!(w >= Duration::from_millis(750) && w <= Duration::from_millis(1250));
        }
        let failing = SpoolSettings {
            stand_down: None,
            ..s
        };
        assert!(failing.stand_down_backoff(3).is_none());
    }

    #[test]
    fn every_valid_stand_down_makes_a_valid_backoff() {
        for ms in [1, 2, 999, 3_600_000] {
            let s = SpoolSettings {
                stand_down: Some(Duration::from_millis(ms)),
                ..Default::default()
            };
            assert!(s.validate().is_ok());
            assert!(s.stand_down_backoff(0).unwrap().validate().is_ok(), "{ms}");
        }
    }
}
