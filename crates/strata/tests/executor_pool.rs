//! Executors of threads and async workers: futures (wait, time-out, await, cancel,
//! callbacks), results as messages to objects, `map` with its bounded buffer, the
//! waiters (futurist's `wait_for_any` on done futures, LP#1848457), `submit_after`, a
//! panicking job, statistics by message and by struct.
//!
//! Jobs that must stay running hold on a `Gate` the test opens; every wait is bounded.

mod support;

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{mpsc, Arc};
use std::time::{Duration, Instant};

use strata::executor::wait::{
    as_completed, as_completed_timeout, wait_all, wait_all_timeout, wait_any, wait_first_error,
};
use strata::executor::{
    Cancel, Executor, ExecutorStatistics, ExecutorStats, JobDone, JobError, Rejected, ShutdownMode,
    Submit,
};
use strata::prelude::*;
use strata_testbins::work::Sum;
use support::gate::Gate;
use support::{bounded, poll_until, WAIT};

/// Test bodies run within this.
const LIMIT: Duration = Duration::from_secs(60);

#[test]
fn a_future_gives_its_value_by_wait_by_await_and_within_a_time_out() {
    bounded(LIMIT, || {
        let pool = Executor::threads().max_workers(2).start();
        assert_eq!(pool.submit(Sum { n: 10 }).wait(), Ok(55));
        assert_eq!(
            pool.submit_fn(|| "hello".to_string()).wait().unwrap(),
            "hello"
        );
        let awaited = strata::runtime::handle().block_on(pool.submit(Sum { n: 4 }));
        assert_eq!(awaited, Ok(10));
        // Thread workers drive futures too.
        let f = pool.submit_async(async {
            tokio::time::sleep(Duration::from_millis(5)).await;
            7u8
        });
        assert_eq!(f.wait(), Ok(7));

        let gate = Gate::default();
        let g = gate.clone();
        let mut f = pool.submit_fn(move || {
            g.pass();
            1u8
        });
        assert_eq!(
            f.wait_timeout(Duration::from_millis(20)),
            None,
            "still running"
        );
        assert!(!f.is_done());
        gate.open();
        assert_eq!(f.wait_timeout(WAIT), Some(Ok(1)));
    });
}

#[test]
fn a_panicking_job_fails_its_future_and_the_pool_goes_on() {
    bounded(LIMIT, || {
        let pool = Executor::threads().max_workers(1).start();
        match pool.submit(Sum { n: 13 }).wait() {
            Err(JobError::Failed { fault, reason }) => {
                assert_eq!(fault, "Faulted");
                assert!(reason.contains("panicked: unlucky thirteen"), "{reason}");
            }
            other => panic!("{other:?}"),
        }
        let e = pool.submit(Sum { n: 0 }).wait().unwrap_err();
        assert!(e.to_string().contains("nothing to sum"), "{e}");
        assert_eq!(pool.submit(Sum { n: 3 }).wait(), Ok(6));
        let s = pool.statistics().unwrap();
        assert_eq!((s.executed, s.failed, s.started), (3, 2, 1), "{s:?}");
        assert_eq!(s.lost, 0, "the worker survived the panic");
    });
}

#[test]
fn a_job_can_be_cancelled_while_it_waits_and_not_once_it_runs() {
    bounded(LIMIT, || {
        let pool = Executor::threads().max_workers(1).start();
        let gate = Gate::default();
        let g = gate.clone();
        let running = pool.submit_fn(move || {
            g.pass();
            1u8
        });
        let queued = pool.submit(Sum { n: 2 });
        poll_until(WAIT, "the first job running", || {
            (pool.statistics().unwrap().running == 1).then_some(())
        });
        assert!(queued.cancel(), "queued: cancellable");
        assert!(!queued.cancel(), "once");
        assert!(!running.cancel(), "running: not cancellable");
        assert!(matches!(queued.wait(), Err(JobError::Cancelled(_))));
        gate.open();
        assert_eq!(running.wait(), Ok(1));
        let s = pool.shutdown(ShutdownMode::Wait).unwrap();
        assert_eq!((s.executed, s.cancelled, s.queued), (1, 1, 0), "{s:?}");
    });
}

#[test]
fn done_callbacks_run_once_each_in_order_also_when_added_after_the_end() {
    bounded(LIMIT, || {
        let pool = Executor::threads().max_workers(1).start();
        let (tx, rx) = mpsc::channel();
        let gate = Gate::default();
        let g = gate.clone();
        let f = pool.submit_fn(move || {
            g.pass();
            5u32
        });
        for i in 0..3 {
            let tx = tx.clone();
            f.on_done(move |outcome| tx.send((i, owned(outcome))).unwrap());
        }
        gate.open();
        let seen: Vec<_> = (0..3).map(|_| rx.recv_timeout(WAIT).unwrap()).collect();
        assert_eq!(seen, [(0, Ok(5)), (1, Ok(5)), (2, Ok(5))]);
        // Added once done: runs at once, here.
        let here = std::thread::current().id();
        let (tx, rx) = mpsc::channel();
        f.on_done(move |outcome| {
            tx.send((std::thread::current().id() == here, owned(outcome)))
                .unwrap()
        });
        assert_eq!(rx.try_recv().unwrap(), (true, Ok(5)));
        assert_eq!(f.wait(), Ok(5));
        // Failures reach callbacks too.
        let (tx, rx) = mpsc::channel();
        let f = pool.submit(Sum { n: 0 });
        f.on_done(move |o| tx.send(o.is_err()).unwrap());
        assert!(rx.recv_timeout(WAIT).unwrap());
    });
}

fn owned(outcome: Result<&u32, &JobError>) -> Result<u32, JobError> {
    outcome.copied().map_err(Clone::clone)
}

/// Submits jobs to an executor it creates and passes each `JobDone` on to the test.
struct Submitter {
    test: Address,
    executor: Address,
    gate: Gate,
}

#[derive(Debug, Serialize, Deserialize, Message)]
#[message(name = "exectest.Go")]
struct Go;

#[strata::machine]
impl Submitter {
    fn start(&mut self, cx: &mut Context<Self>, _: Start) {
        self.executor = cx.create(Executor::threads().max_workers(1).reject_when_reached(1));
    }

    fn go(&mut self, cx: &mut Context<Self>, _: Go) {
        let g = self.gate.clone();
        // One worker: the first job holds it, the second waits, the third finds the
        // backlog limit of 1 reached; the second is cancelled, the fourth then waits.
        cx.send(self.executor, Submit::closure(1, move || g.pass()));
        cx.send(self.executor, Submit::job(2, Sum { n: 3 }));
        cx.send(self.executor, Submit::job(3, Sum { n: 4 }));
        cx.send(self.executor, Cancel { tag: 2 });
        cx.send(self.executor, Submit::job(4, Sum { n: 0 }));
    }

    fn done(&mut self, cx: &mut Context<Self>, d: JobDone) {
        cx.send(self.test, d);
    }

    fn stats(&mut self, cx: &mut Context<Self>, m: ExecutorStats) {
        cx.forward(self.executor, m);
    }
}

#[test]
fn objects_submit_by_message_and_receive_each_result_as_a_message() {
    bounded(LIMIT, || {
        let mut cx = ThreadContext::attach();
        let test = cx.address();
        let gate = Gate::default();
        let submitter = cx.create(Submitter {
            test,
            executor: Address::NULL,
            gate: gate.clone(),
        });
        cx.send(submitter, Go);
        let mut done = std::collections::BTreeMap::new();
        let mut next = |cx: &mut ThreadContext| {
            let e = cx.select_timeout::<(JobDone,)>(WAIT).expect("a JobDone");
            let d = e.take::<JobDone>().unwrap();
            assert!(done.insert(d.tag, d.value).is_none(), "one answer per tag");
            done.len()
        };
        // The rejection and the cancellation come while the first job still runs.
        next(&mut cx);
        next(&mut cx);
        gate.open();
        while next(&mut cx) < 4 {}
        assert!(done[&1].is::<()>());
        assert!(
            done[&2].is::<strata::executor::Cancelled>(),
            "{:?}",
            done[&2]
        );
        assert!(done[&3].is::<Rejected>(), "{:?}", done[&3]);
        let f = done[&4].downcast_ref::<Faulted>().expect("a fault");
        assert!(f.reason.contains("nothing to sum"), "{f}");
        let s = cx.ask_timeout(submitter, ExecutorStats, WAIT);
        let s = s
            .downcast::<ExecutorStatistics>()
            .expect("statistics by message");
        assert_eq!(
            (s.submitted, s.cancelled, s.rejected, s.failed),
            (4, 1, 1, 1),
            "{s:?}"
        );
    });
}

#[test]
fn map_keeps_the_input_order_and_never_more_than_its_buffer_in_flight() {
    bounded(LIMIT, || {
        let pool = Executor::threads().max_workers(3).start();
        let pulled = Arc::new(AtomicUsize::new(0));
        let p = pulled.clone();
        let input = (1..=20u64).map(move |n| {
            p.fetch_add(1, Ordering::SeqCst);
            Sum { n }
        });
        let mut results = pool.map(input, 4);
        let mut got = Vec::new();
        while let Some(r) = results.next() {
            assert!(results.in_flight() <= 4);
            got.push(r.ok());
            assert!(
                pulled.load(Ordering::SeqCst) <= got.len() + 4,
                "read lazily"
            );
        }
        // Sum { n: 13 } panics: its place holds the error, and the rest go on.
        let expected: Vec<Option<u64>> = (1..=20u64)
            .map(|n| (n != 13).then_some(n * (n + 1) / 2))
            .collect();
        assert_eq!(got, expected);

        // Unordered: a slow first job does not hold up the others.
        let gate = Gate::default();
        let g = gate.clone();
        let mut results = pool.map_fn_unordered(0..10u32, 3, move |i| {
            if i == 0 {
                g.pass();
            }
            i
        });
        let first: Vec<u32> = results.by_ref().take(5).map(Result::unwrap).collect();
        assert!(!first.contains(&0), "{first:?}");
        gate.open();
        let mut all: Vec<u32> = first
            .into_iter()
            .chain(results.map(Result::unwrap))
            .collect();
        all.sort();
        assert_eq!(all, (0..10).collect::<Vec<_>>());
        let squares: Vec<u64> = pool
            .map_fn(1..=3u64, 2, |x| x * x)
            .map(Result::unwrap)
            .collect();
        assert_eq!(squares, [1, 4, 9]);
    });
}

#[test]
fn waiters_count_done_futures_at_once_and_give_up_at_their_time_out() {
    bounded(LIMIT, || {
        let pool = Executor::threads().max_workers(2).start();
        let gate = Gate::default();
        let g = gate.clone();
        let futures = vec![
            pool.submit_fn(move || {
                g.pass();
                Ok::<u64, Faulted>(0)
            }),
            pool.submit_fn(|| Ok::<u64, Faulted>(1)),
        ];
        // The second is done soon; wait_any must come back although the first never
        // would without the gate (futurist's wait_for_any blocked here).
        let w = wait_any(&futures);
        assert_eq!(w.done, [1]);
        assert_eq!(wait_any(&futures).done, [1], "done futures count at once");
        let w = wait_all_timeout(&futures, Duration::from_millis(20));
        assert_eq!((w.done.clone(), w.not_done.clone()), (vec![1], vec![0]));
        let mut order = as_completed_timeout(&futures, Duration::from_millis(20));
        assert_eq!(order.next().unwrap(), Ok(1));
        assert!(order.next().unwrap().is_err(), "then the time-out");
        gate.open();
        assert_eq!(wait_all(&futures).done, [0, 1]);
        assert_eq!(as_completed(&futures).collect::<Vec<_>>(), [1, 0]);

        // The first error stops the wait even while another job still runs.
        let gate = Gate::default();
        let g = gate.clone();
        let futures = vec![
            pool.submit_fn(move || {
                g.pass();
                Ok::<u64, Faulted>(1)
            }),
            pool.submit_fn(|| Err::<u64, Faulted>(Faulted::new("bad"))),
        ];
        let w = wait_first_error(&futures);
        assert_eq!((w.done, w.not_done), (vec![1], vec![0]));
        gate.open();
        let values: Vec<_> = futures.into_iter().map(|f| f.wait().is_ok()).collect();
        assert_eq!(values, [true, false]);
    });
}

#[test]
fn a_delayed_job_waits_its_delay_and_can_be_cancelled_meanwhile() {
    bounded(LIMIT, || {
        let pool = Executor::threads().max_workers(1).start();
        let long = pool.submit_after(Duration::from_secs(3600), Sum { n: 1 });
        let submitted = Instant::now();
        let delay = Duration::from_millis(50);
        let soon = pool.submit_fn_after(delay, || 1u8);
        let s = pool.statistics().unwrap();
        assert_eq!(s.delayed, 2, "{s:?}");
        assert!(long.cancel());
        assert!(matches!(long.wait(), Err(JobError::Cancelled(_))));
        assert_eq!(soon.wait(), Ok(1));
        assert!(submitted.elapsed() >= delay, "ran before its delay");
        let s = pool.shutdown(ShutdownMode::Wait).unwrap();
        assert_eq!((s.delayed, s.cancelled, s.executed), (0, 1, 1), "{s:?}");
    });
}

#[test]
fn async_workers_await_their_jobs_and_bound_how_many_run_at_once() {
    bounded(LIMIT, || {
        let pool = Executor::asynchronous().max_workers(3).start();
        let running = Arc::new(AtomicUsize::new(0));
        let most = Arc::new(AtomicUsize::new(0));
        let futures: Vec<_> = (0..12u32)
            .map(|i| {
                let (running, most) = (running.clone(), most.clone());
                pool.submit_async(async move {
                    let now = running.fetch_add(1, Ordering::SeqCst) + 1;
                    most.fetch_max(now, Ordering::SeqCst);
                    tokio::time::sleep(Duration::from_millis(5)).await;
                    running.fetch_sub(1, Ordering::SeqCst);
                    i
                })
            })
            .collect();
        let values: Vec<u32> = futures.into_iter().map(|f| f.wait().unwrap()).collect();
        assert_eq!(values, (0..12).collect::<Vec<_>>());
        assert!(
            most.load(Ordering::SeqCst) <= 3,
            "at most max_workers at once"
        );
        // Typed jobs and closures run there too.
        assert_eq!(pool.submit(Sum { n: 5 }).wait(), Ok(15));
        assert_eq!(pool.submit_fn(|| 2u8).wait(), Ok(2));
        let s = pool.shutdown(ShutdownMode::Wait).unwrap();
        assert_eq!(s.executed, 14);
        assert!(s.workers <= 3);
    });
}

#[test]
fn statistics_count_every_job_and_time_the_runs() {
    bounded(LIMIT, || {
        let pool = Executor::threads().max_workers(2).start();
        let futures: Vec<_> = (0..10)
            .map(|_| pool.submit_fn(|| std::thread::sleep(Duration::from_millis(2))))
            .collect();
        for f in futures {
            f.wait().unwrap();
        }
        let s = pool.statistics().unwrap();
        assert_eq!(
            (s.submitted, s.executed, s.failed, s.queued, s.running),
            (10, 10, 0, 0, 0)
        );
        assert!(
            s.runtime >= 0.02 && s.mean >= 0.002 && s.p99 >= s.p50 && s.max >= s.p99,
            "{s:?}"
        );
        assert!(
            s.workers >= 1 && s.workers <= 2 && s.idle == s.workers,
            "{s:?}"
        );
        let text = s.to_string();
        assert!(
            text.starts_with("ExecutorStatistics(failures=0, executed=10"),
            "{text}"
        );
    });
}

#[test]
fn many_threads_submitting_at_once_get_every_answer_in_batches_and_exact_counts() {
    bounded(LIMIT, || {
        let pool = Executor::threads().min_workers(2).max_workers(2).start();
        // Long queues of quick jobs go to the workers in batches; some are cancelled
        // while they wait, from the thread that submitted them.
        let submitters: Vec<_> = (0..4u64)
            .map(|t| {
                let pool = pool.clone();
                std::thread::spawn(move || {
                    let futures: Vec<_> = (0..5_000u64)
                        .map(|i| pool.submit_fn(move || t * 1_000_000 + i))
                        .collect();
                    let cancelled = futures.iter().step_by(7).filter(|f| f.cancel()).count();
                    let mut values = 0u64;
                    let mut sum = 0u64;
                    let mut refused = 0usize;
                    for (i, f) in futures.into_iter().enumerate() {
                        match f.wait() {
                            Ok(v) => {
                                assert_eq!(v, t * 1_000_000 + i as u64, "its own value");
                                values += 1;
                                sum += v;
                            }
                            Err(JobError::Cancelled(_)) => refused += 1,
                            Err(other) => panic!("{other:?}"),
                        }
                    }
                    assert_eq!(refused, cancelled, "cancelled exactly those cancel() took");
                    (values, cancelled as u64, sum)
                })
            })
            .collect();
        let mut executed = 0;
        let mut cancelled = 0;
        for s in submitters {
            let (v, c, _) = s.join().unwrap();
            executed += v;
            cancelled += c;
        }
        assert_eq!(executed + cancelled, 20_000);
        let s = pool.shutdown(ShutdownMode::Wait).unwrap();
        assert_eq!(
            (s.submitted, s.executed, s.cancelled, s.failed, s.rejected),
            (20_000, executed, cancelled, 0, 0),
            "{s:?}"
        );
        assert_eq!((s.queued, s.running), (0, 0), "{s:?}");
    });
}
