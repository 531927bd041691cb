//! What a stage does when an item fails: a pure decision, unit-tested here.
//!
//! An item *fails* when the stage's part returns an error or panics on it, or when the
//! worker process handling it dies (the item is then all it loses). The policy decides:
//! skip it (counted), try it again after a wait from a [`Backoff`] (up to N times, then
//! skip or stop), or stop the pipeline. For a frontend, "the item" is a call to
//! `produce`: skip and retry both count the error and go on producing (retry's wait does
//! not apply: the producer is simply called again), and after `times` failures in a row
//! of one producer the policy's `then` applies.

use std::time::Duration;

use crate::backoff::{Backoff, BackoffError};

/// A stage's answer to a failed item.
///
/// An item *fails* when the stage's code returns an error or panics on it, or when the
/// worker process handling it dies (the item is then all it loses). The policy decides:
/// skip it (counted), try it again after a wait from a [`Backoff`] (up to N times, then
/// skip or stop), or stop the pipeline. For a frontend, "the item" is a call to
/// `produce`: skip and retry both count the error and go on producing (retry's wait does
/// not apply), and after `times` failures in a row of one producer `then` applies.
#[derive(Debug, Clone, Default)]
pub enum ErrorPolicy {
    /// Count the failure and drop the item (the default).
    #[default]
    Skip,
    /// Try the item again, up to `times` more times, each after the next wait of
    /// `backoff`; then do what `then` says.
    Retry {
        /// Retries per item (not counting the first attempt).
        times: u32,
        /// The waits between attempts (its budget, if any, is not used: `times` is).
        backoff: Backoff,
        /// What to do when the retries are spent: skip the item or stop.
        then: Exhausted,
    },
    /// Stop the pipeline at the first failure (it ends with that failure as its outcome).
    Stop,
}

/// What a [`ErrorPolicy::Retry`] does once an item's retries are spent.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Exhausted {
    /// Count the failure and drop the item.
    Skip,
    /// Stop the pipeline.
    Stop,
}

impl ErrorPolicy {
    /// Count and drop failed items.
    pub fn skip() -> Self {
        ErrorPolicy::Skip
    }

    /// Stop the pipeline at the first failure.
    pub fn stop() -> Self {
        ErrorPolicy::Stop
    }

    /// Retry each failed item up to `times` times, waiting as `backoff` says; then skip it
    /// (see [`then_stop`](Self::then_stop)).
    pub fn retry(times: u32, backoff: Backoff) -> Self {
        ErrorPolicy::Retry {
            times,
            backoff,
            then: Exhausted::Skip,
        }
    }

    /// For a retry policy: stop the pipeline, rather than skip, when an item's retries
    /// are spent. Other policies are returned as they are.
    pub fn then_stop(self) -> Self {
        match self {
            ErrorPolicy::Retry { times, backoff, .. } => ErrorPolicy::Retry {
                times,
                backoff,
                then: Exhausted::Stop,
            },
            other => other,
        }
    }

    /// Checks the backoff's parameters.
    pub fn validate(&self) -> Result<(), BackoffError> {
        match self {
            ErrorPolicy::Retry { backoff, .. } => backoff.validate(),
            _ => Ok(()),
        }
    }

    /// What to do with an item that has just failed for the `failures`-th time (1 for
    /// its first attempt).
    pub(crate) fn decide(&self, failures: u32) -> Action {
        match self {
            ErrorPolicy::Skip => Action::Skip,
            ErrorPolicy::Stop => Action::Stop,
            ErrorPolicy::Retry {
                times,
                backoff,
                then,
            } => {
                if failures > *times {
                    return match then {
                        Exhausted::Skip => Action::Skip,
                        Exhausted::Stop => Action::Stop,
                    };
                }
                // The wait before retry number `failures`: the backoff after that many
                // failed attempts. A clone each time, so items do not share a state.
                let mut b = backoff.clone().seed(u64::from(failures));
                let mut wait = Duration::ZERO;
                for _ in 0..failures {
                    wait = b.failed().unwrap_or(wait);
                }
                Action::Retry(wait)
            }
        }
    }
}

/// The decision for one failure.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Action {
    Skip,
    Retry(Duration),
    Stop,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn skip_stop_and_retry_with_growing_waits_then_skip_or_stop() {
        assert_eq!(ErrorPolicy::skip().decide(1), Action::Skip);
        assert_eq!(ErrorPolicy::stop().decide(1), Action::Stop);
        let ms = Duration::from_millis;
        let retry = ErrorPolicy::retry(3, Backoff::growing(ms(10), ms(1000)));
        assert_eq!(retry.decide(1), Action::Retry(ms(10)));
        assert_eq!(retry.decide(2), Action::Retry(ms(20)));
        assert_eq!(retry.decide(3), Action::Retry(ms(40)));
        assert_eq!(retry.decide(4), Action::Skip);
        assert_eq!(retry.clone().then_stop().decide(4), Action::Stop);
        assert_eq!(ErrorPolicy::skip().then_stop().decide(9), Action::Skip);
        assert!(ErrorPolicy::retry(1, Backoff::constant(ms(1)).jitter(7.0))
            .validate()
            .is_err());
    }
}
