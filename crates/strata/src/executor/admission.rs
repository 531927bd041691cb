//! Admission: whether a new job goes to an idle worker, to a new worker, waits, or is
//! refused.
//!
//! The decision is pure: it is given the executor's backlog and limits and says what to
//! do; the executor then does it. In order:
//!
//! 1. `reject_when_reached(n)`: when `n` jobs already wait for a worker, refuse;
//! 2. the user's own policy (`check_and_reject`), given the [`Backlog`], may refuse with
//!    a reason;
//! 3. an idle worker takes the job;
//! 4. below `max_workers`, a new worker is started for it;
//! 5. otherwise it waits in the queue if there is room;
//! 6. otherwise it is refused (the queue is full).
//!
//! The limits come first, as in futurist (`check_and_reject` runs before anything is
//! queued), so a policy sees every submission. With a worker idle the backlog is 0.

/// What an executor holds when a job arrives: what a `check_and_reject` policy decides on.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Backlog {
    /// Jobs waiting for a worker (not counting jobs delayed by `submit_after`).
    pub queued: usize,
    /// Jobs running now.
    pub running: usize,
    /// Workers now.
    pub workers: usize,
    /// Idle workers now.
    pub idle: usize,
}

/// What to do with a new job.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Decision {
    /// Give it to an idle worker.
    ToWorker,
    /// Start a worker and give it the job.
    Grow,
    /// Queue it until a worker is free.
    ToQueue,
    /// Refuse it, for this reason.
    Reject(String),
}

/// Decides for one job. `policy` is asked only after the backlog limit holds.
pub(crate) fn decide(
    backlog: &Backlog,
    max_workers: usize,
    reject_when_reached: Option<usize>,
    queue_has_room: bool,
    policy: impl FnOnce(&Backlog) -> Result<(), String>,
) -> Decision {
    if let Some(n) = reject_when_reached {
        if backlog.queued >= n {
            return Decision::Reject(format!(
                "{} jobs are waiting already: the backlog limit of {n} is reached",
                backlog.queued
            ));
        }
    }
    if let Err(reason) = policy(backlog) {
        return Decision::Reject(reason);
    }
    if backlog.idle > 0 {
        Decision::ToWorker
    } else if backlog.workers < max_workers {
        Decision::Grow
    } else if queue_has_room {
        Decision::ToQueue
    } else {
        Decision::Reject(format!(
            "all {} workers are busy and the queue of {} is full",
            backlog.workers, backlog.queued
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn backlog(queued: usize, workers: usize, idle: usize) -> Backlog {
        Backlog {
            queued,
            running: workers - idle,
            workers,
            idle,
        }
    }

    fn ok(_: &Backlog) -> Result<(), String> {
        Ok(())
    }

    #[test]
    fn idle_workers_first_then_new_ones_then_the_queue() {
        assert_eq!(
            decide(&backlog(0, 2, 1), 2, None, true, ok),
            Decision::ToWorker
        );
        assert_eq!(decide(&backlog(0, 1, 0), 2, None, true, ok), Decision::Grow);
        assert_eq!(
            decide(&backlog(5, 2, 0), 2, None, true, ok),
            Decision::ToQueue
        );
        assert!(matches!(
            decide(&backlog(5, 2, 0), 2, None, false, ok),
            Decision::Reject(r) if r.contains("queue of 5 is full")
        ));
    }

    #[test]
    fn the_backlog_limit_counts_waiting_jobs_only() {
        assert_eq!(
            decide(&backlog(1, 8, 0), 8, Some(2), true, ok),
            Decision::ToQueue
        );
        assert!(matches!(
            decide(&backlog(2, 8, 0), 8, Some(2), true, ok),
            Decision::Reject(r) if r.contains("backlog limit of 2")
        ));
        // With a worker idle nothing waits, whatever the limit.
        assert_eq!(
            decide(&backlog(0, 8, 3), 8, Some(1), true, ok),
            Decision::ToWorker
        );
    }

    #[test]
    fn a_policy_sees_the_backlog_and_may_refuse_with_its_own_reason() {
        let mut seen = None;
        let d = decide(&backlog(3, 4, 0), 4, None, true, |b| {
            seen = Some(*b);
            Err("not on Sundays".to_string())
        });
        assert_eq!(d, Decision::Reject("not on Sundays".to_string()));
        assert_eq!(seen, Some(backlog(3, 4, 0)));
        // Not asked when the limit refuses first.
        let d = decide(&backlog(3, 4, 0), 4, Some(3), true, |_| panic!("asked"));
        assert!(matches!(d, Decision::Reject(_)));
    }
}
