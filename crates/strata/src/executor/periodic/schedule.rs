//! When a periodic job runs next: pure arithmetic on its last start and finish.
//!
//! A job never overlaps itself, so the next run is decided when the last one finishes,
//! and never falls before that finish. The strategies:
//!
//! * [`Strategy::LastStarted`]: `spacing` after the last start *as scheduled* (a steady
//!   rate: a run that started late, because a timer fired late or the executor was busy,
//!   does not push the ones after it; a run that took longer than `spacing` is followed
//!   at once);
//! * [`Strategy::LastFinished`]: `spacing` after the last *finish* (a steady pause);
//! * [`Strategy::Aligned`]: the next multiple of `spacing` on the wall clock after the
//!   finish (every 10 s at :00, :10, :20 ...), so a job keeps its phase whatever it takes.
//!
//! Jitter delays each run after the first by a uniform share of `spacing` in
//! `[0, jitter)` (futurist's `_jitter` strategies use 5%), so many jobs on one schedule
//! spread out. The first run is `spacing` after the start (the next boundary, for
//! `Aligned`), or at once with `run_immediately`.
//!
//! No clock is read here: the caller gives the times, the wall clock as a duration since
//! the UNIX epoch, and the random draw.

use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};

/// How the next run of a periodic job is placed: `spacing` after the last start, after
/// the last finish, or on the next multiple of `spacing` on the wall clock (never before
/// the last run finished; see [`Schedule::next`]).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub enum Strategy {
    /// `spacing` after the last start (default).
    #[default]
    LastStarted,
    /// `spacing` after the last finish.
    LastFinished,
    /// On the next multiple of `spacing` of the wall clock.
    Aligned,
}

/// When a periodic job runs: every `spacing`, placed by `strategy`, delayed by up to
/// `jitter` of the spacing, first at once or after one spacing.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Schedule {
    /// The time between runs.
    pub spacing: Duration,
    /// How runs are placed.
    pub strategy: Strategy,
    /// The most each run after the first is delayed, as a share of `spacing` (0 to 1).
    pub jitter: f64,
    /// Whether the first run is at once rather than one spacing after the start.
    pub run_immediately: bool,
}

impl Schedule {
    /// Every `spacing`, from the last start, no jitter, first run after one spacing.
    pub fn every(spacing: Duration) -> Self {
        Schedule {
            spacing,
            strategy: Strategy::LastStarted,
            jitter: 0.0,
            run_immediately: false,
        }
    }

    /// Checks the schedule: a spacing of at least a millisecond and at most a year, a
    /// jitter between 0 and 1.
    pub fn validate(&self) -> Result<(), String> {
        if self.spacing < Duration::from_millis(1)
            || self.spacing > Duration::from_secs(366 * 24 * 3600)
        {
            return Err(format!(
                "spacing {:?} is not between 1 ms and a year",
                self.spacing
            ));
        }
        if !(0.0..=1.0).contains(&self.jitter) {
            return Err(format!(
                "jitter {} is not a share between 0 and 1",
                self.jitter
            ));
        }
        Ok(())
    }

    /// When the first run is due, for a job added at `now` (`wall`: the same moment on the
    /// wall clock, since the UNIX epoch).
    pub fn first(&self, now: Instant, wall: Duration) -> Instant {
        if self.run_immediately {
            return now;
        }
        match self.strategy {
            Strategy::LastStarted | Strategy::LastFinished => now + self.spacing,
            Strategy::Aligned => now + until_boundary(wall, self.spacing),
        }
    }

    /// When the next run is due, after a run that was due at `due` and finished at
    /// `finished` (`wall`: the finish on the wall clock). `draw` is uniform in `[0, 1)`,
    /// for the jitter. Never before the finish.
    pub fn next(&self, due: Instant, finished: Instant, wall: Duration, draw: f64) -> Instant {
        let placed = match self.strategy {
            Strategy::LastStarted => due + self.spacing,
            Strategy::LastFinished => finished + self.spacing,
            Strategy::Aligned => finished + until_boundary(wall, self.spacing),
        };
        let jitter = self.spacing.mul_f64(self.jitter * draw.clamp(0.0, 1.0));
        placed.max(finished) + jitter
    }
}

/// From `wall` to the next multiple of `spacing` strictly after it.
fn until_boundary(wall: Duration, spacing: Duration) -> Duration {
    let spacing_ns = spacing.as_nanos().max(1);
    let into = wall.as_nanos() % spacing_ns;
    Duration::from_nanos((spacing_ns - into) as u64)
}

#[cfg(test)]
mod tests {
    use super::*;

    const S: Duration = Duration::from_secs(1);
    const MS: Duration = Duration::from_millis(1);

    #[test]
    fn the_first_run_is_one_spacing_away_at_once_or_on_the_boundary() {
        let t0 = Instant::now();
        let wall = Duration::from_millis(10_250);
        let every = Schedule::every(S);
        assert_eq!(every.first(t0, wall), t0 + S);
        let now = Schedule {
            run_immediately: true,
            ..every
        };
        assert_eq!(now.first(t0, wall), t0);
        let aligned = Schedule {
            strategy: Strategy::Aligned,
            ..every
        };
        assert_eq!(aligned.first(t0, wall), t0 + 750 * MS);
    }

    #[test]
    fn each_strategy_places_the_next_run_and_never_before_the_finish() {
        let t0 = Instant::now();
        let wall = Duration::from_millis(7_100); // the finish on the wall clock
        let due = t0;
        let finished = t0 + 100 * MS;
        let at = |strategy| {
            Schedule {
                strategy,
                ..Schedule::every(S)
            }
            .next(due, finished, wall, 0.0)
        };
        assert_eq!(at(Strategy::LastStarted), t0 + S);
        assert_eq!(at(Strategy::LastFinished), t0 + S + 100 * MS);
        assert_eq!(at(Strategy::Aligned), finished + 900 * MS);
        // A run that overran its spacing is followed at once, not overlapped.
        let late = t0 + 3 * S;
        assert_eq!(Schedule::every(S).next(due, late, wall, 0.0), late);
        // Exactly on a boundary: the next one.
        let aligned = Schedule {
            strategy: Strategy::Aligned,
            ..Schedule::every(S)
        };
        assert_eq!(aligned.next(t0, t0, Duration::from_secs(7), 0.0), t0 + S);
    }

    #[test]
    fn jitter_delays_by_up_to_its_share_of_the_spacing() {
        let t0 = Instant::now();
        let s = Schedule {
            jitter: 0.05,
            ..Schedule::every(S)
        };
        assert_eq!(s.next(t0, t0, Duration::ZERO, 0.0), t0 + S);
        assert_eq!(s.next(t0, t0, Duration::ZERO, 0.5), t0 + S + 25 * MS);
        assert!(s.next(t0, t0, Duration::ZERO, 0.999) < t0 + S + 50 * MS);
        assert!(s.validate().is_ok());
        assert!(Schedule { jitter: 1.5, ..s }.validate().is_err());
        assert!(Schedule::every(Duration::ZERO).validate().is_err());
    }
}
