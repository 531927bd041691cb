//! Waiting before trying again: one policy for every "it failed, when do we retry?".
//!
//! Several parts of strata must wait before trying something again, and they should all wait
//! the same way:
//!
//! * a [spool](crate::spool) replaces a worker that ended after its *stand-down* (today a
//!   constant interval with ±25% jitter);
//! * a supervisor (planned) restarts a worker with growing intervals and gives up after a
//!   budget of attempts, unless the worker ran long enough to count as healthy;
//! * a directory (planned) reconnects to its upstream from 0.1 s growing to 2 s, jittered,
//!   so that a restarted host is not hit by every client at the same instant;
//! * pipeline stages (planned) retry a failed item a few times;
//! * an etcd lease keeper (planned) re-grants a lost lease.
//!
//! A [`Backoff`] is the policy *and* its state, as a pure state machine: it reads no clock,
//! sleeps nowhere and sends nothing. The caller tells it that an attempt ended (and, when it
//! knows, how long the attempt stayed up) and gets back how long to wait, or
//! [`BudgetSpent`]. Waiting is the caller's business (a [`Delay`](crate::Delay), a timer, a
//! sleep), which is what makes the policy easy to test and to reuse.
//!
//! The policy:
//!
//! * the first interval, multiplied by `growth` after each consecutive attempt, up to a
//!   maximum (a growth of 1 keeps it constant);
//! * ± `jitter`: each interval handed out is varied uniformly by up to that share of itself
//!   (0.25 gives 0.75× to 1.25×); the maximum bounds the interval *before* jitter;
//! * a budget: how many consecutive attempts may be retried (or no limit);
//! * `healthy_after`: an attempt that stayed up at least this long resets the count and the
//!   interval, so a worker that fails once a day is not treated like one that fails at once.
//!
//! ```
//! use std::time::Duration;
//! use strata::Backoff;
//!
//! let mut reconnect = Backoff::growing(Duration::from_millis(100), Duration::from_secs(2))
//!     .jitter(0.25)
//!     .budget(Some(10))
//!     .healthy_after(Some(Duration::from_secs(30)))
//!     .checked()
//!     .expect("sensible settings");
//! let wait = reconnect.failed().expect("within the budget");
//! assert!(wait >= Duration::from_millis(75) && wait <= Duration::from_millis(125));
//! ```
//!
//! Randomness comes from the crate's small xorshift generator; give a [`seed`](Backoff::seed) for a repeatable sequence.
//! Unless seeded, a backoff seeds its generator once, when it is made (from the clock,
//! the process id and a counter).

use std::time::{Duration, Instant};

use crate::random::Rng;

/// The longest interval (first or maximum) and healthy period a backoff accepts: one day.
const LONGEST: Duration = Duration::from_secs(24 * 3600);
/// The shortest first interval a backoff accepts: anything less is a busy loop.
const SHORTEST: Duration = Duration::from_millis(1);
/// The largest growth factor a backoff accepts.
const MOST_GROWTH: f64 = 100.0;

/// A backoff parameter that is out of its sensible range.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("backoff parameter `{parameter}`: {reason}")]
pub struct BackoffError {
    /// The parameter's name (`first`, `max_interval`, `jitter`, `growth`, `budget` or
    /// `healthy_after`).
    pub parameter: &'static str,
    /// What is wrong with its value.
    pub reason: String,
}

/// The budget of attempts is spent: give up instead of trying again.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("gave up after {attempts} consecutive attempts (the backoff's budget)")]
pub struct BudgetSpent {
    /// The consecutive attempts that were retried before giving up.
    pub attempts: u32,
}

/// How long to wait before trying again; see the [module docs](self).
///
/// Built with [`constant`](Backoff::constant) or [`growing`](Backoff::growing) and the
/// builder methods, then checked with [`validate`](Backoff::validate) (or
/// [`checked`](Backoff::checked)). An unchecked backoff never panics: out-of-range values
/// are clamped when used.
///
/// A clone carries the same state, random generator included: clones that must not retry
/// in step (one per worker, say) should each get their own [`seed`](Backoff::seed).
#[derive(Debug, Clone)]
pub struct Backoff {
    first: Duration,
    max_interval: Duration,
    growth: f64,
    jitter: f64,
    budget: Option<u32>,
    healthy_after: Option<Duration>,
    /// Consecutive attempts retried since the last reset.
    attempts: u32,
    /// The interval (before jitter) the next retry waits.
    interval: Duration,
    rng: Rng,
}

impl Backoff {
    /// The same interval every time: no growth, no jitter, no budget, no reset.
    pub fn constant(interval: Duration) -> Backoff {
        Backoff {
            first: interval,
            max_interval: interval,
            growth: 1.0,
            jitter: 0.0,
            budget: None,
            healthy_after: None,
            attempts: 0,
            interval,
            rng: Rng::seeded(),
        }
    }

    /// Starts at `first` and doubles after each consecutive attempt, up to `max_interval`;
    /// no jitter, no budget, no reset (set them with the builder methods).
    pub fn growing(first: Duration, max_interval: Duration) -> Backoff {
        Backoff {
            max_interval,
            growth: 2.0,
            ..Backoff::constant(first)
        }
    }

    /// The factor the interval is multiplied by after each consecutive attempt (1 to 100).
    pub fn growth(mut self, factor: f64) -> Backoff {
        self.growth = factor;
        self
    }

    /// The longest interval before jitter (at least the first interval, at most a day).
    pub fn max_interval(mut self, max: Duration) -> Backoff {
        self.max_interval = max;
        self
    }

    /// Each interval is varied uniformly by up to this share of itself (0 to 1; 0.25 gives
    /// 0.75× to 1.25×).
    pub fn jitter(mut self, share: f64) -> Backoff {
        self.jitter = share;
        self
    }

    /// How many consecutive attempts are retried before [`BudgetSpent`]; `None`: no limit.
    pub fn budget(mut self, attempts: Option<u32>) -> Backoff {
        self.budget = attempts;
        self
    }

    /// An attempt that stayed up at least this long resets the count and the interval;
    /// `None`: only [`reset`](Backoff::reset) does.
    pub fn healthy_after(mut self, period: Option<Duration>) -> Backoff {
        self.healthy_after = period;
        self
    }

    /// Draws the jitter from a generator seeded with `seed`: the same seed and the same
    /// calls give the same intervals.
    pub fn seed(mut self, seed: u64) -> Backoff {
        self.rng = Rng::new(seed);
        self
    }

    /// Checks every parameter, naming the first improbable one.
    pub fn validate(&self) -> Result<(), BackoffError> {
        let bad = |parameter, reason: String| Err(BackoffError { parameter, reason });
        if self.first < SHORTEST || self.first > LONGEST {
            return bad(
                "first",
                format!("{:?} is not between 1 ms and 1 day", self.first),
            );
        }
        if self.max_interval < self.first || self.max_interval > LONGEST {
            return bad(
                "max_interval",
                format!(
                    "{:?} is not between the first interval ({:?}) and 1 day",
                    self.max_interval, self.first
                ),
            );
        }
        if !(1.0..=MOST_GROWTH).contains(&self.growth) {
            return bad(
                "growth",
                format!("{} is not a factor between 1 and 100", self.growth),
            );
        }
        if self.growth > 1.0 && self.max_interval == self.first {
            return bad(
                "growth",
                format!(
                    "{} cannot grow anything: the maximum interval is the first one ({:?})",
                    self.growth, self.first
                ),
            );
        }
        if !(0.0..=1.0).contains(&self.jitter) {
            return bad(
                "jitter",
                format!("{} is not a share between 0 and 1", self.jitter),
            );
        }
        if self.budget == Some(0) {
            return bad(
                "budget",
                "0 attempts would never retry (use None for no limit)".to_string(),
            );
        }
        if let Some(h) = self.healthy_after {
            if h < SHORTEST || h > LONGEST {
                return bad(
                    "healthy_after",
                    format!("{h:?} is not between 1 ms and 1 day"),
                );
            }
        }
        Ok(())
    }

    /// The backoff itself when [`validate`](Backoff::validate) finds nothing wrong.
    pub fn checked(self) -> Result<Backoff, BackoffError> {
        self.validate().map(|()| self)
    }

    /// An attempt failed at once, or after a time the caller does not know: the wait before
    /// the next one, or [`BudgetSpent`]. Counts towards the budget and never resets it.
    pub fn failed(&mut self) -> Result<Duration, BudgetSpent> {
        if self.budget.is_some_and(|b| self.attempts >= b) {
            return Err(BudgetSpent {
                attempts: self.attempts,
            });
        }
        let interval = self.interval.min(self.max_interval);
        self.attempts = self.attempts.saturating_add(1);
        self.interval = grown(interval, self.growth).min(self.max_interval);
        Ok(self.jittered(interval))
    }

    /// `interval` varied by up to ± the jitter's share (clamped to 0..=1), saturating.
    fn jittered(&mut self, interval: Duration) -> Duration {
        let share = self.jitter.clamp(0.0, 1.0);
        if share == 0.0 || share.is_nan() {
            return interval;
        }
        let factor = 1.0 + share * (2.0 * self.rng.unit() - 1.0);
        Duration::try_from_secs_f64(interval.as_secs_f64() * factor).unwrap_or(Duration::MAX)
    }

    /// An attempt ended after staying up for `up_for`: if that is at least `healthy_after`
    /// the count and interval start over first. Then as [`failed`](Backoff::failed).
    pub fn ended_after(&mut self, up_for: Duration) -> Result<Duration, BudgetSpent> {
        if self.healthy_after.is_some_and(|h| up_for >= h) {
            self.reset();
        }
        self.failed()
    }

    /// An attempt that began at `started` ended at `ended`; as
    /// [`ended_after`](Backoff::ended_after) with the time between them (none if `ended` is
    /// earlier).
    pub fn ended_between(
        &mut self,
        started: Instant,
        ended: Instant,
    ) -> Result<Duration, BudgetSpent> {
        self.ended_after(ended.saturating_duration_since(started))
    }

    /// Starts over: no attempts counted, the first interval next (after a success, say).
    pub fn reset(&mut self) {
        self.attempts = 0;
        self.interval = self.first;
    }

    /// Consecutive attempts retried since the last reset.
    pub fn attempts(&self) -> u32 {
        self.attempts
    }

    /// The interval (before jitter) the next retry would wait.
    pub fn next_interval(&self) -> Duration {
        self.interval.min(self.max_interval)
    }
}

/// `interval × growth`, saturating instead of overflowing (growth below 1 counts as 1).
fn grown(interval: Duration, growth: f64) -> Duration {
    if growth <= 1.0 || growth.is_nan() {
        return interval;
    }
    Duration::try_from_secs_f64(interval.as_secs_f64() * growth).unwrap_or(Duration::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;

    const MS: Duration = Duration::from_millis(1);

    /// The interval before jitter, in whole milliseconds.
    fn ms(d: Duration) -> u128 {
        d.as_millis()
    }

    #[test]
    fn a_constant_backoff_waits_the_same_every_time_and_never_gives_up() {
        let mut b = Backoff::constant(250 * MS).checked().unwrap();
        for n in 1..=1000 {
            assert_eq!(b.failed(), Ok(250 * MS));
            assert_eq!(b.attempts(), n);
        }
    }

    #[test]
    fn growth_multiplies_each_attempt_and_stops_at_the_maximum() {
        let mut b = Backoff::growing(100 * MS, 2000 * MS).checked().unwrap();
        let waits: Vec<u128> = (0..8).map(|_| ms(b.failed().unwrap())).collect();
        assert_eq!(waits, [100, 200, 400, 800, 1600, 2000, 2000, 2000]);

        let mut b = Backoff::growing(100 * MS, 1000 * MS)
            .growth(1.5)
            .checked()
            .unwrap();
        let waits: Vec<u128> = (0..7).map(|_| ms(b.failed().unwrap())).collect();
        assert_eq!(waits, [100, 150, 225, 337, 506, 759, 1000]);
        assert_eq!(b.next_interval(), 1000 * MS);
    }

    #[test]
    fn jitter_stays_within_its_share_and_covers_it() {
        let mut b = Backoff::constant(1000 * MS)
            .jitter(0.25)
            .seed(7)
            .checked()
            .unwrap();
        let (mut low, mut high) = (Duration::MAX, Duration::ZERO);
        for _ in 0..10_000 {
            let w = b.failed().unwrap();
            assert!(w >= 750 * MS && w <= 1250 * MS, "{w:?}");
            low = low.min(w);
            high = high.max(w);
        }
        assert!(low < 760 * MS && high > 1240 * MS, "{low:?}..{high:?}");

        // The maximum bounds the interval before jitter, so a jittered wait may pass it by
        // the jitter's share, never more.
        let mut b = Backoff::growing(100 * MS, 400 * MS)
            .jitter(0.5)
            .seed(1)
            .checked()
            .unwrap();
        for _ in 0..1000 {
            let w = b.failed().unwrap();
            assert!(w >= 50 * MS && w <= 600 * MS, "{w:?}");
        }
    }

    #[test]
    fn the_same_seed_gives_the_same_waits() {
        let make = || Backoff::growing(10 * MS, 1000 * MS).jitter(0.3).seed(42);
        let (mut a, mut b) = (make(), make());
        let first: Vec<Duration> = (0..20).map(|_| a.failed().unwrap()).collect();
        let second: Vec<Duration> = (0..20).map(|_| b.failed().unwrap()).collect();
        assert_eq!(first, second);
        let mut c = make().seed(43);
        let third: Vec<Duration> = (0..20).map(|_| c.failed().unwrap()).collect();
        assert_ne!(first, third);
    }

    #[test]
    fn a_spent_budget_gives_up_until_reset() {
        let mut b = Backoff::growing(10 * MS, 100 * MS)
            .budget(Some(3))
            .checked()
            .unwrap();
        assert_eq!(b.failed(), Ok(10 * MS));
        assert_eq!(b.failed(), Ok(20 * MS));
        assert_eq!(b.failed(), Ok(40 * MS));
        assert_eq!(b.failed(), Err(BudgetSpent { attempts: 3 }));
        assert_eq!(b.failed(), Err(BudgetSpent { attempts: 3 }));
        assert!(BudgetSpent { attempts: 3 }.to_string().contains("3"));
        b.reset();
        assert_eq!(b.attempts(), 0);
        assert_eq!(b.failed(), Ok(10 * MS));
    }

    #[test]
    fn a_healthy_run_resets_the_count_and_the_interval() {
        let mut b = Backoff::growing(10 * MS, 1000 * MS)
            .budget(Some(3))
            .healthy_after(Some(5000 * MS))
            .checked()
            .unwrap();
        assert_eq!(b.ended_after(10 * MS), Ok(10 * MS));
        assert_eq!(b.ended_after(10 * MS), Ok(20 * MS));
        assert_eq!(b.ended_after(10 * MS), Ok(40 * MS));
        // Up exactly the healthy period: a fresh start, the budget whole again.
        assert_eq!(b.ended_after(5000 * MS), Ok(10 * MS));
        assert_eq!(b.attempts(), 1);
        assert_eq!(b.ended_after(MS), Ok(20 * MS));
        assert_eq!(b.ended_after(MS), Ok(40 * MS));
        assert_eq!(b.ended_after(MS), Err(BudgetSpent { attempts: 3 }));
        // Even a spent budget is renewed by a healthy run.
        let t0 = Instant::now();
        assert_eq!(b.ended_between(t0, t0 + 60_000 * MS), Ok(10 * MS));
    }

    #[test]
    fn a_short_run_does_not_reset() {
        let mut b = Backoff::growing(10 * MS, 1000 * MS)
            .budget(Some(2))
            .healthy_after(Some(5000 * MS))
            .checked()
            .unwrap();
        assert_eq!(b.ended_after(4999 * MS), Ok(10 * MS));
        assert_eq!(b.ended_after(4999 * MS), Ok(20 * MS));
        assert_eq!(b.ended_after(4999 * MS), Err(BudgetSpent { attempts: 2 }));
        // An end before its start (clocks passed in the wrong order) counts as no time up.
        let t0 = Instant::now() + 10_000 * MS;
        assert!(b.ended_between(t0, t0 - 9_000 * MS).is_err());
        // Without a healthy period, up-time never resets.
        let mut b = Backoff::constant(10 * MS).budget(Some(1));
        assert!(b.ended_after(LONGEST).is_ok());
        assert!(b.ended_after(LONGEST).is_err());
    }

    #[test]
    fn improbable_parameters_are_refused_naming_the_parameter() {
        let s = Duration::from_secs(1);
        let cases = [
            (Backoff::constant(Duration::ZERO), "first"),
            (Backoff::constant(Duration::from_secs(100_000)), "first"),
            (Backoff::growing(s, s / 2), "max_interval"),
            (Backoff::growing(s, 2 * LONGEST), "max_interval"),
            (Backoff::growing(s, 10 * s).growth(0.5), "growth"),
            (Backoff::growing(s, 10 * s).growth(f64::NAN), "growth"),
            (Backoff::growing(s, 10 * s).growth(1000.0), "growth"),
            (Backoff::constant(s).growth(2.0), "growth"),
            (Backoff::constant(s).jitter(-0.1), "jitter"),
            (Backoff::constant(s).jitter(1.5), "jitter"),
            (Backoff::constant(s).jitter(f64::INFINITY), "jitter"),
            (Backoff::constant(s).budget(Some(0)), "budget"),
            (
                Backoff::constant(s).healthy_after(Some(MS / 2)),
                "healthy_after",
            ),
        ];
        for (b, parameter) in cases {
            let e = b.validate().unwrap_err();
            assert_eq!(e.parameter, parameter, "{b:?}");
            assert!(e.to_string().contains(parameter), "{e}");
            assert!(b.checked().is_err());
        }
        assert!(Backoff::constant(s).jitter(1.0).validate().is_ok());
        assert!(Backoff::growing(MS, LONGEST)
            .growth(MOST_GROWTH)
            .jitter(0.0)
            .budget(Some(1))
            .healthy_after(Some(LONGEST))
            .validate()
            .is_ok());
    }

    #[test]
    fn unchecked_values_are_clamped_not_panicked_on() {
        let mut b = Backoff::growing(Duration::from_secs(1), Duration::MAX)
            .growth(1e300)
            .jitter(1e300);
        for _ in 0..5 {
            let _ = b.failed().unwrap();
        }
        assert_eq!(b.next_interval(), Duration::MAX);
        let mut b = Backoff::growing(Duration::from_secs(1), Duration::ZERO).growth(f64::NAN);
        assert_eq!(b.failed(), Ok(Duration::ZERO));
    }
}
