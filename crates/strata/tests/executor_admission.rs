//! Admission and sizing: `reject_when_reached` (futurist's backlog limit), a
//! `check_and_reject` policy of one's own, bounded queues, settings refused with their
//! name; workers grown to the maximum when work queues, idle ones reused, and shrunk back
//! to the minimum when idle (futurist's pool could not shrink).

mod support;

use std::time::Duration;

use strata::executor::{Executor, JobError, ShutdownMode};
use strata_testbins::work::Sum;
use support::gate::Gate;
use support::{bounded, poll_until, WAIT};

const LIMIT: Duration = Duration::from_secs(60);

fn rejected(r: Result<u64, JobError>) -> String {
    match r {
        Err(JobError::Rejected(r)) => r.reason,
        other => panic!("expected a rejection, got {other:?}"),
    }
}

#[test]
fn a_backlog_limit_refuses_the_next_job_with_a_clear_rejection() {
    bounded(LIMIT, || {
        let pool = Executor::threads()
            .max_workers(2)
            .reject_when_reached(2)
            .start();
        let gate = Gate::default();
        let futures: Vec<_> = (0..6)
            .map(|_| {
                let g = gate.clone();
                pool.submit_fn(move || {
                    g.pass();
                    1u64
                })
            })
            .collect();
        let mut futures = futures.into_iter();
        let admitted: Vec<_> = futures.by_ref().take(4).collect();
        // Two run, two wait: the backlog of 2 refuses the last two at once, while the
        // first still run.
        for f in futures {
            let reason = rejected(f.wait());
            assert!(reason.contains("backlog limit of 2"), "{reason}");
        }
        gate.open();
        for f in admitted {
            assert_eq!(f.wait(), Ok(1));
        }
        let s = pool.shutdown(ShutdownMode::Wait).unwrap();
        assert_eq!((s.submitted, s.executed, s.rejected), (6, 4, 2), "{s:?}");
    });
}

#[test]
fn a_policy_of_ones_own_sees_the_backlog_and_gives_its_reason() {
    bounded(LIMIT, || {
        let pool = Executor::threads()
            .max_workers(1)
            .check_and_reject(|b| {
                if b.queued + b.running >= 2 {
                    Err(format!("{} already in hand", b.queued + b.running))
                } else {
                    Ok(())
                }
            })
            .start();
        let gate = Gate::default();
        let g = gate.clone();
        let first = pool.submit_fn(move || {
            g.pass();
            1u64
        });
        let second = pool.submit(Sum { n: 2 });
        let third = pool.submit(Sum { n: 3 });
        assert_eq!(rejected(third.wait()), "2 already in hand");
        gate.open();
        assert_eq!((first.wait(), second.wait()), (Ok(1), Ok(3)));
        // With nothing in hand, it admits again.
        assert_eq!(pool.submit(Sum { n: 4 }).wait(), Ok(10));
    });
}

#[test]
fn a_bounded_queue_refuses_when_full_and_takes_again_when_there_is_room() {
    bounded(LIMIT, || {
        let pool = Executor::threads()
            .max_workers(1)
            .queue_size(Some(1))
            .start();
        let gate = Gate::default();
        let g = gate.clone();
        let running = pool.submit_fn(move || {
            g.pass();
            0u64
        });
        let waiting = pool.submit(Sum { n: 1 });
        let reason = rejected(pool.submit(Sum { n: 2 }).wait());
        assert!(reason.contains("queue of 1 is full"), "{reason}");
        gate.open();
        assert_eq!((running.wait(), waiting.wait()), (Ok(0), Ok(1)));
        assert_eq!(pool.submit(Sum { n: 2 }).wait(), Ok(3));
    });
}

#[test]
fn improbable_settings_are_refused_by_name_and_every_submission_still_answered() {
    bounded(LIMIT, || {
        let bad = Executor::threads().min_workers(5).max_workers(2);
        assert_eq!(bad.validate().unwrap_err().parameter, "min_workers");
        let pool = bad.start();
        let f = pool.submit(Sum { n: 1 });
        let reason = rejected(f.wait());
        assert!(reason.contains("ended"), "{reason}");
        let e = pool.shutdown(ShutdownMode::Wait).unwrap_err();
        assert!(e.reason.contains("min_workers"), "{e}");
    });
}

#[test]
fn workers_grow_to_the_maximum_are_reused_and_shrink_to_the_minimum_when_idle() {
    bounded(LIMIT, || {
        let pool = Executor::threads()
            .min_workers(1)
            .max_workers(4)
            .idle_timeout(Duration::from_millis(50))
            .start();
        let s = pool.statistics().unwrap();
        assert_eq!(
            (s.workers, s.idle, s.started),
            (1, 1, 1),
            "the minimum at start: {s:?}"
        );
        let gate = Gate::default();
        let futures: Vec<_> = (0..6)
            .map(|_| {
                let g = gate.clone();
                pool.submit_fn(move || {
                    g.pass();
                    1u64
                })
            })
            .collect();
        let s = pool.statistics().unwrap();
        assert_eq!(
            (s.workers, s.running, s.queued),
            (4, 4, 2),
            "grown to the maximum: {s:?}"
        );
        gate.open();
        for f in futures {
            f.wait().unwrap();
        }
        let s = poll_until(WAIT, "the idle workers let go", || {
            let s = pool.statistics().unwrap();
            (s.workers == 1).then_some(s)
        });
        assert_eq!((s.started, s.shrunk, s.lost), (4, 3, 0), "{s:?}");
        // One job at a time needs no new worker: the idle one is reused.
        for n in 1..=5 {
            assert_eq!(pool.submit(Sum { n }).wait(), Ok(n * (n + 1) / 2));
        }
        let s = pool.shutdown(ShutdownMode::Wait).unwrap();
        assert_eq!((s.started, s.executed), (4, 11), "{s:?}");
    });
}

#[test]
fn the_worker_idle_shortest_takes_the_job_so_a_light_load_lets_the_others_go() {
    bounded(LIMIT, || {
        let pool = Executor::threads().min_workers(3).max_workers(3).start();
        // Sequential jobs all run on the same thread.
        let threads: std::collections::HashSet<_> = (0..10)
            .map(|_| {
                pool.submit_fn(|| format!("{:?}", std::thread::current().id()))
                    .wait()
                    .unwrap()
            })
            .collect();
        assert_eq!(threads.len(), 1, "{threads:?}");
    });
}
