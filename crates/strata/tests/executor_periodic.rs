//! Periodic jobs: strategies and no self-overlap, `NeverAgain`, failures to the handler
//! while the schedule goes on (futurist's `on_failure` was ignored, LP#1552232), jobs
//! added and removed while running, per-job statistics by message and by handle, jobs on
//! an executor of one's choice (async workers, worker processes; a refused run retried,
//! futurist's PeriodicWorker crashed on it, LP#1532255), and the end of that executor.

mod support;

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{mpsc, Arc, Mutex};
use std::time::{Duration, Instant};

use strata::executor::periodic::{
    Failure, JobStatistics, NeverAgain, Periodic, PeriodicJob, PeriodicStats, Strategy,
};
use strata::executor::{Executor, ShutdownMode};
use strata::prelude::*;
use strata::process::Process;
use strata_testbins::work::Sum;
use support::programs::testbin;
use support::{bounded, poll_until, returned_from, WAIT};

const LIMIT: Duration = Duration::from_secs(90);
const MS: Duration = Duration::from_millis(1);

fn job_stats(all: &[JobStatistics], name: &str) -> JobStatistics {
    all.iter()
        .find(|s| s.name == name)
        .unwrap_or_else(|| panic!("no statistics for {name}: {all:?}"))
        .clone()
}

/// Records when each run starts and ends, and how many run at once.
#[derive(Clone, Default)]
struct Runs {
    spans: Arc<Mutex<Vec<(Instant, Instant)>>>,
    running: Arc<AtomicUsize>,
    most: Arc<AtomicUsize>,
}

impl Runs {
    fn run(&self, takes: Duration) {
        let now = self.running.fetch_add(1, Ordering::SeqCst) + 1;
        self.most.fetch_max(now, Ordering::SeqCst);
        let began = Instant::now();
        std::thread::sleep(takes);
        self.running.fetch_sub(1, Ordering::SeqCst);
        self.spans.lock().unwrap().push((began, Instant::now()));
    }

    fn spans(&self) -> Vec<(Instant, Instant)> {
        self.spans.lock().unwrap().clone()
    }
}

#[test]
fn runs_are_placed_by_their_strategy_and_never_overlap_themselves() {
    bounded(LIMIT, || {
        // Runs longer than the spacing: from the last start, each follows the last at once.
        let started = Runs::default();
        let finished = Runs::default();
        let (s, f) = (started.clone(), finished.clone());
        let periodic = Periodic::new()
            .job(
                PeriodicJob::every(10 * MS, "from start", move || s.run(25 * MS)).run_immediately(),
            )
            .job(
                PeriodicJob::every(20 * MS, "from finish", move || f.run(5 * MS))
                    .strategy(Strategy::LastFinished)
                    .run_immediately(),
            )
            .job(PeriodicJob::every(10 * MS, "aligned", || ()).strategy(Strategy::Aligned))
            .start();
        // Five runs of each, counted by the jobs and by the schedule (which hears of a
        // run's end a moment after the job itself).
        poll_until(WAIT, "five runs of each", || {
            let counted = periodic.statistics().ok()?;
            let runs = |name| job_stats(&counted, name).runs;
            (started.spans().len() >= 5
                && finished.spans().len() >= 5
                && runs("from start") >= 5
                && runs("from finish") >= 5)
                .then_some(())
        });
        let stats = periodic.stop().unwrap();
        assert!(job_stats(&stats, "aligned").runs >= 1, "{stats:?}");
        for runs in [&started, &finished] {
            assert_eq!(
                runs.most.load(Ordering::SeqCst),
                1,
                "a job never overlaps itself"
            );
        }
        for w in started.spans().windows(2) {
            assert!(
                w[1].0 >= w[0].1,
                "the next run starts after the last one ended"
            );
        }
        for w in finished.spans().windows(2) {
            assert!(
                w[1].0 >= w[0].1 + 20 * MS,
                "a spacing after the last finish"
            );
        }
        let s = job_stats(&stats, "from start");
        assert!(
            s.runs >= 5 && s.successes == s.runs && s.failures == 0,
            "{s:?}"
        );
        assert!(
            s.elapsed >= 0.025 * s.runs as f64,
            "time running adds up: {s:?}"
        );
    });
}

#[test]
fn never_again_retires_a_job_and_failures_reach_the_handler_while_it_goes_on() {
    bounded(LIMIT, || {
        let (tx, failures) = mpsc::channel::<Failure>();
        let mut run = 0;
        let job = PeriodicJob::every(5 * MS, "flaky", move || {
            run += 1;
            match run {
                2 => panic!("second run breaks"),
                3 => Err(Faulted::new("third run fails")),
                5 => Ok(Some(NeverAgain)),
                _ => Ok(None),
            }
        })
        .run_immediately();
        let periodic = Periodic::new()
            .job(job)
            .on_failure(move |f| tx.send(f.clone()).unwrap())
            .start();
        let s = poll_until(WAIT, "the job retired", || {
            let all = periodic.statistics().unwrap();
            let s = job_stats(&all, "flaky");
            (!s.active).then_some(s)
        });
        assert_eq!((s.runs, s.successes, s.failures), (5, 3, 2), "{s:?}");
        let seen: Vec<Failure> = failures.try_iter().collect();
        assert_eq!(seen.len(), 2, "{seen:?}");
        assert!(
            seen[0].reason.contains("panicked: second run breaks"),
            "{seen:?}"
        );
        assert_eq!((seen[1].job.as_str(), seen[1].fault), ("flaky", "Faulted"));
        assert!(seen[1].reason.contains("third run fails"));
        // Retired: no more runs.
        std::thread::sleep(20 * MS);
        assert_eq!(job_stats(&periodic.stop().unwrap(), "flaky").runs, 5);
    });
}

#[test]
fn jobs_are_added_and_removed_while_it_runs() {
    bounded(LIMIT, || {
        let a = Arc::new(AtomicUsize::new(0));
        let b = Arc::new(AtomicUsize::new(0));
        let counted = a.clone();
        let periodic = Periodic::new()
            .job(PeriodicJob::every(5 * MS, "a", move || {
                counted.fetch_add(1, Ordering::SeqCst);
            }))
            .start();
        let counted = b.clone();
        periodic
            .add(PeriodicJob::every(5 * MS, "b", move || {
                counted.fetch_add(1, Ordering::SeqCst);
            }))
            .unwrap();
        let refused = periodic
            .add(PeriodicJob::every(5 * MS, "b", || ()))
            .unwrap_err();
        assert!(refused.reason.contains("named `b`"), "{refused}");
        let refused = periodic
            .add(PeriodicJob::every(Duration::ZERO, "c", || ()))
            .unwrap_err();
        assert!(refused.reason.contains("spacing"), "{refused}");
        poll_until(WAIT, "both running", || {
            (a.load(Ordering::SeqCst) >= 2 && b.load(Ordering::SeqCst) >= 2).then_some(())
        });
        assert!(periodic.remove("a"));
        assert!(!periodic.remove("a"));
        let stats = periodic.statistics().unwrap();
        let runs_a = job_stats(&stats, "a").runs;
        assert!(!job_stats(&stats, "a").active && job_stats(&stats, "b").active);
        let b_then = b.load(Ordering::SeqCst);
        poll_until(WAIT, "b going on", || {
            (b.load(Ordering::SeqCst) >= b_then + 3).then_some(())
        });
        // At most the run in progress when it was removed.
        assert!(a.load(Ordering::SeqCst) as u64 <= runs_a + 1);
        let stats = periodic.stop().unwrap();
        assert_eq!(stats.len(), 2);
    });
}

#[test]
fn jobs_run_on_an_executor_of_ones_choice_and_refused_runs_are_retried() {
    let program = testbin("job_worker").to_string_lossy().into_owned();
    bounded(LIMIT, move || {
        // Async workers, given by address.
        let tasks = Executor::asynchronous().max_workers(2).start();
        let periodic = Periodic::on(tasks.address())
            .job(PeriodicJob::every(5 * MS, "ping", || ()).run_immediately())
            .start();
        poll_until(WAIT, "a few runs", || {
            (tasks.statistics().unwrap().executed >= 3).then_some(())
        });
        periodic.stop().unwrap();

        // Worker processes: a Job type runs there; a closure is refused, retried, and
        // reported to the failure handler each time.
        let (tx, failures) = mpsc::channel();
        let processes = Executor::processes(Process::of(program)).max_workers(2);
        let periodic = Periodic::with_executor(processes)
            .job(PeriodicJob::every_job(5 * MS, "sum", Sum { n: 4 }).run_immediately())
            .job(PeriodicJob::every(5 * MS, "closure", || 1u8).run_immediately())
            .on_failure(move |f| {
                let _ = tx.send(f.clone());
            })
            .start();
        let f: Failure = failures.recv_timeout(WAIT).unwrap();
        assert_eq!((f.job.as_str(), f.fault), ("closure", "Rejected"));
        poll_until(WAIT, "sums in the worker processes", || {
            let all = periodic.statistics().unwrap();
            let (sum, closure) = (job_stats(&all, "sum"), job_stats(&all, "closure"));
            (sum.successes >= 3 && closure.refused >= 2).then_some(())
        });
        let stats = periodic.stop().unwrap();
        let closure = job_stats(&stats, "closure");
        assert_eq!((closure.runs, closure.active), (0, true), "{closure:?}");
        assert!(support::programs::children_of(std::process::id(), "job_worker").is_empty());
    });
}

#[test]
fn statistics_by_message_and_the_end_of_the_executor() {
    bounded(LIMIT, || {
        let mut cx = ThreadContext::attach();
        let executor = Executor::threads().max_workers(1).start();
        let periodic = cx.create(
            Periodic::on(executor.address())
                .job(PeriodicJob::every(5 * MS, "tick", || ()).run_immediately()),
        );
        let s = poll_until(WAIT, "a run", || {
            let all = cx.ask_timeout(periodic, PeriodicStats, WAIT);
            let all = all
                .downcast::<Vec<JobStatistics>>()
                .expect("statistics by message");
            let s = job_stats(&all, "tick");
            (s.runs >= 2).then_some(s)
        });
        assert!(s.average_elapsed_waiting >= 0.0 && s.elapsed_waiting >= 0.0);
        executor.shutdown(ShutdownMode::Wait).unwrap();
        let value = returned_from(&mut cx, periodic, WAIT);
        let f = value
            .downcast::<Faulted>()
            .expect("a fault when its executor ends");
        assert!(f.reason.contains("executor of this periodic ended"), "{f}");
    });
}
