//! Admission: whether a new request goes to a worker, waits, or is turned away at once.
//!
//! The decision is pure: it is given the state that matters (the recent mean response time,
//! the target, a random draw for the pass rate, whether a worker is idle, the queue's length
//! and limit) and says what to do; the spool then does it. In order:
//!
//! 1. with a target, when the mean response time over the moving window is above it the
//!    spool is *busy*: a draw at or above the pass rate is turned away with `Busy`;
//! 2. an idle worker takes the request at once;
//! 3. otherwise it waits in the queue if there is room;
//! 4. otherwise it is turned away with `Overloaded`.
//!
//! Busy comes first on purpose: a slow spool sheds load even while a worker is free, since
//! the slowness may be downstream of the workers. The mean and the draw are asked for only
//! when needed (no target: no mean; not busy: no draw), so a request pays for neither in
//! the common case.

use std::time::Duration;

/// What to do with a new request.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) enum Decision {
    /// Give it to the idle worker longest idle.
    ToWorker,
    /// Queue it until a worker is free.
    ToQueue,
    /// Turn it away: the mean response time is over the target.
    Busy {
        /// The mean response time over the moving window.
        mean: Duration,
        /// The target it is over.
        target: Duration,
    },
    /// Turn it away: no worker is idle and the queue is full.
    Overloaded,
}

/// The admission policy's parameters.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct Admission {
    /// Target response time; `None`: never busy.
    pub(crate) target: Option<Duration>,
    /// Share of new requests admitted while busy (0 to 1).
    pub(crate) pass_rate: f64,
}

impl Admission {
    /// Decides for one request. `recent_mean` is the mean response time over the moving
    /// window (`None`: nothing completed in it), asked for only with a target; `draw` is a
    /// uniform number in `[0, 1)`, asked for only while busy.
    pub(crate) fn decide(
        &self,
        recent_mean: impl FnOnce() -> Option<Duration>,
        draw: impl FnOnce() -> f64,
        idle_worker: bool,
        queued: usize,
        queue_limit: Option<usize>,
    ) -> Decision {
        if let Some(target) = self.target {
            if let Some(mean) = self.over_target(recent_mean()) {
                if draw() >= self.pass_rate {
                    return Decision::Busy { mean, target };
                }
            }
        }
        if idle_worker {
            Decision::ToWorker
        } else if queue_limit.is_none_or(|limit| queued < limit) {
            Decision::ToQueue
        } else {
            Decision::Overloaded
        }
    }

    /// `mean` when it is over the target (so the spool is busy); `None` without a target or
    /// a mean, or when the mean is within the target.
    pub(crate) fn over_target(&self, mean: Option<Duration>) -> Option<Duration> {
        let target = self.target?;
        mean.filter(|m| *m > target)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MS: Duration = Duration::from_millis(1);

    fn never<T>() -> T {
        panic!("asked for something the decision does not need")
    }

    #[test]
    fn without_a_target_neither_mean_nor_draw_is_asked_for() {
        let a = Admission {
            target: None,
            pass_rate: 0.0,
        };
        assert_eq!(a.decide(never, never, true, 0, None), Decision::ToWorker);
        assert_eq!(a.decide(never, never, false, 5, None), Decision::ToQueue);
        assert_eq!(a.decide(never, never, false, 5, Some(6)), Decision::ToQueue);
        assert_eq!(
            a.decide(never, never, false, 6, Some(6)),
            Decision::Overloaded
        );
        assert_eq!(
            a.decide(never, never, false, 0, Some(0)),
            Decision::Overloaded
        );
        assert_eq!(a.over_target(Some(10 * MS)), None);
    }

    #[test]
    fn within_the_target_no_draw_is_asked_for() {
        let a = Admission {
            target: Some(10 * MS),
            pass_rate: 0.0,
        };
        assert_eq!(a.decide(|| None, never, true, 0, None), Decision::ToWorker);
        assert_eq!(
            a.decide(|| Some(10 * MS), never, false, 0, None),
            Decision::ToQueue,
            "exactly on target is not over it"
        );
    }

    #[test]
    fn over_the_target_only_draws_below_the_pass_rate_are_admitted() {
        let a = Admission {
            target: Some(10 * MS),
            pass_rate: 0.25,
        };
        let mean = || Some(11 * MS);
        let busy = Decision::Busy {
            mean: 11 * MS,
            target: 10 * MS,
        };
        assert_eq!(a.decide(mean, || 0.25, true, 0, None), busy);
        assert_eq!(a.decide(mean, || 0.9, true, 0, None), busy);
        assert_eq!(a.decide(mean, || 0.24, true, 0, None), Decision::ToWorker);
        assert_eq!(a.decide(mean, || 0.0, false, 0, None), Decision::ToQueue);
        // Admitted past busy, it can still find the queue full.
        assert_eq!(
            a.decide(mean, || 0.0, false, 3, Some(3)),
            Decision::Overloaded
        );
        // Busy is decided before looking for a worker or room.
        assert_eq!(a.decide(mean, || 0.5, false, 3, Some(3)), busy);
        assert_eq!(a.over_target(Some(11 * MS)), Some(11 * MS));
        assert_eq!(a.over_target(None), None);
    }

    #[test]
    fn pass_rates_of_zero_and_one_turn_away_all_and_none() {
        let mean = || Some(50 * MS);
        let none_pass = Admission {
            target: Some(MS),
            pass_rate: 0.0,
        };
        let all_pass = Admission {
            target: Some(MS),
            pass_rate: 1.0,
        };
        for draw in [0.0, 0.5, 0.999_999] {
            assert!(matches!(
                none_pass.decide(mean, || draw, true, 0, None),
                Decision::Busy { .. }
            ));
            assert_eq!(
                all_pass.decide(mean, || draw, true, 0, None),
                Decision::ToWorker
            );
        }
    }
}
