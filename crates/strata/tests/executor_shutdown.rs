//! Shutting down: every mode answers every job (futurist's `shutdown` abandoned queued
//! work, LP#2121545): `Wait` runs what is queued and delayed, `CancelPending` cancels it
//! and lets running jobs finish, `Drain` gives up after its time-out and fails what still
//! runs; `Stop` and dropping the handle cancel what is pending; nothing is submitted
//! after a shutdown began.

mod support;

use std::time::Duration;

use strata::executor::{Executor, ExecutorHandle, JobError, ShutdownMode};
use strata::prelude::*;
use strata_testbins::work::Sum;
use support::gate::Gate;
use support::{bounded, poll_until, returned_from, WAIT};

const LIMIT: Duration = Duration::from_secs(60);

fn gated(pool: &ExecutorHandle, gate: &Gate) -> strata::executor::JobFuture<u64> {
    let g = gate.clone();
    pool.submit_fn(move || {
        g.pass();
        7u64
    })
}

/// Waits until the executor is shutting down, then checks it refuses new work.
fn until_shutting_down(pool: &ExecutorHandle) {
    // Another handle: the first one is busy shutting down.
    let other = ExecutorHandle::to(pool.address());
    poll_until(WAIT, "the shutdown under way", || {
        other.statistics().unwrap().shutting_down.then_some(())
    });
    match other.submit(Sum { n: 1 }).wait() {
        Err(JobError::Rejected(r)) => assert!(r.reason.contains("shutting down"), "{r}"),
        other => panic!("{other:?}"),
    }
}

#[test]
fn waiting_runs_everything_queued_and_delayed_before_it_ends() {
    bounded(LIMIT, || {
        let pool = Executor::threads().max_workers(1).start();
        let gate = Gate::default();
        let first = gated(&pool, &gate);
        let queued: Vec<_> = (1..=4).map(|n| pool.submit(Sum { n })).collect();
        let delayed = pool.submit_after(Duration::from_millis(30), Sum { n: 5 });
        let shutting = {
            let pool = pool.clone();
            std::thread::spawn(move || pool.shutdown(ShutdownMode::Wait))
        };
        until_shutting_down(&pool);
        gate.open();
        let s = shutting.join().unwrap().unwrap();
        assert_eq!(first.wait(), Ok(7));
        let values: Vec<_> = queued.into_iter().map(|f| f.wait()).collect();
        assert_eq!(values, [Ok(1), Ok(3), Ok(6), Ok(10)]);
        assert_eq!(delayed.wait(), Ok(15));
        assert_eq!(
            (s.executed, s.cancelled, s.queued, s.delayed),
            (6, 0, 0, 0),
            "{s:?}"
        );
        assert_eq!(s.rejected, 1, "the probe was refused: {s:?}");
        // Asking again gives the same final statistics.
        assert_eq!(pool.shutdown(ShutdownMode::CancelPending).unwrap(), s);
    });
}

#[test]
fn cancelling_pending_answers_what_waits_at_once_and_lets_the_running_finish() {
    bounded(LIMIT, || {
        let pool = Executor::threads().max_workers(1).start();
        let gate = Gate::default();
        let running = gated(&pool, &gate);
        let queued = pool.submit(Sum { n: 2 });
        let delayed = pool.submit_after(Duration::from_secs(3600), Sum { n: 3 });
        let shutting = {
            let pool = pool.clone();
            std::thread::spawn(move || pool.shutdown(ShutdownMode::CancelPending))
        };
        // Answered while the running job still holds the only worker.
        assert!(matches!(queued.wait(), Err(JobError::Cancelled(_))));
        assert!(matches!(delayed.wait(), Err(JobError::Cancelled(_))));
        gate.open();
        assert_eq!(running.wait(), Ok(7));
        let s = shutting.join().unwrap().unwrap();
        assert_eq!((s.executed, s.cancelled), (1, 2), "{s:?}");
    });
}

#[test]
fn draining_gives_up_after_its_time_out_and_fails_what_still_runs() {
    bounded(LIMIT, || {
        let pool = Executor::threads().max_workers(1).start();
        let gate = Gate::default();
        let stuck = gated(&pool, &gate);
        let queued = pool.submit(Sum { n: 2 });
        let s = pool
            .shutdown(ShutdownMode::Drain {
                timeout: Duration::from_millis(50),
            })
            .unwrap();
        match stuck.wait() {
            Err(JobError::Failed { reason, .. }) => {
                assert!(reason.contains("drain time-out"), "{reason}")
            }
            other => panic!("{other:?}"),
        }
        assert!(matches!(queued.wait(), Err(JobError::Cancelled(_))));
        assert_eq!((s.executed, s.failed, s.cancelled), (1, 1, 1), "{s:?}");
        // The worker thread finishes its job in the background.
        gate.open();
    });
}

#[test]
fn a_drain_that_finishes_in_time_ends_like_waiting() {
    bounded(LIMIT, || {
        let pool = Executor::threads().max_workers(2).start();
        let futures: Vec<_> = (1..=6).map(|n| pool.submit(Sum { n })).collect();
        let s = pool
            .shutdown(ShutdownMode::Drain { timeout: WAIT })
            .unwrap();
        assert_eq!((s.executed, s.failed, s.cancelled), (6, 0, 0), "{s:?}");
        assert!(futures.into_iter().all(|f| f.wait().is_ok()));
    });
}

#[test]
fn dropping_the_handle_cancels_what_is_pending_and_nothing_is_left_unanswered() {
    bounded(LIMIT, || {
        let pool = Executor::threads().max_workers(1).start();
        let gate = Gate::default();
        let running = gated(&pool, &gate);
        let queued: Vec<_> = (1..=3).map(|n| pool.submit(Sum { n })).collect();
        let late = pool.clone();
        drop(pool);
        // A clone keeps it alive; the last one stops it.
        assert_eq!(
            late.submit(Sum { n: 4 })
                .wait_timeout(Duration::from_millis(20)),
            None
        );
        drop(late);
        for f in queued {
            assert!(matches!(f.wait(), Err(JobError::Cancelled(_))));
        }
        gate.open();
        assert_eq!(running.wait(), Ok(7));
    });
}

#[test]
fn an_executor_object_stopped_by_its_parent_returns_its_statistics() {
    bounded(LIMIT, || {
        let mut cx = ThreadContext::attach();
        let executor = cx.create(Executor::threads().max_workers(1));
        let pool = ExecutorHandle::to(executor);
        let gate = Gate::default();
        let running = gated(&pool, &gate);
        let queued = pool.submit(Sum { n: 1 });
        poll_until(WAIT, "the first job running", || {
            (pool.statistics().unwrap().running == 1).then_some(())
        });
        cx.stop(executor);
        assert!(matches!(queued.wait(), Err(JobError::Cancelled(_))));
        let refused = pool.submit(Sum { n: 1 }).wait();
        assert!(matches!(refused, Err(JobError::Rejected(_))), "{refused:?}");
        gate.open();
        assert_eq!(running.wait(), Ok(7));
        let value = returned_from(&mut cx, executor, WAIT);
        let s = value
            .downcast::<strata::executor::ExecutorStatistics>()
            .expect("the statistics as its value");
        assert_eq!((s.executed, s.cancelled, s.rejected), (1, 1, 1), "{s:?}");
        // Gone now: a submission is refused, never left hanging.
        assert!(matches!(
            pool.submit(Sum { n: 1 }).wait(),
            Err(JobError::Rejected(_))
        ));
    });
}
