//! Executors of worker processes: registered job types run in other processes, the same
//! submitting code runs on threads (the one-argument switch), a worker killed mid-job
//! fails that job with a fault naming the signal and is replaced (Python's process pool
//! breaks or hangs there) — every job of the batch it held, when it held several — and is
//! replaced, closures are refused, and no worker outlives a shutdown.
//!
//! The workers are `job_worker` (crates/strata-testbins), built by the test itself.

mod support;

use std::time::Duration;

use strata::executor::{Executor, ExecutorHandle, JobError, ShutdownMode};
use strata::process::Process;
use strata_testbins::work::{Nap, Sum, Unregistered};
use support::programs::{alive, children_of, signal, testbin};
use support::{bounded, poll_until, WAIT};

/// Test bodies that wait on worker processes run within this.
const LIMIT: Duration = Duration::from_secs(90);

/// The tests count this process's worker children, so they run one at a time.
static ONE_AT_A_TIME: std::sync::Mutex<()> = std::sync::Mutex::new(());

fn workers() -> Process {
    Process::of(testbin("job_worker").to_string_lossy().into_owned())
}

/// The submitting code, the same whatever the workers are.
fn sums(pool: &ExecutorHandle) -> Vec<Result<u64, JobError>> {
    pool.map((0..6u64).map(|n| Sum { n: n * 3 }), 3).collect()
}

#[test]
fn threads_or_processes_is_one_argument_and_jobs_run_in_the_workers() {
    let _alone = ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner());
    let program = workers();
    bounded(LIMIT, move || {
        let threads = Executor::threads().max_workers(2).start();
        let processes = Executor::processes(program).max_workers(2).start();
        let (a, b) = (sums(&threads), sums(&processes));
        assert_eq!(a, b, "the same results from threads and from processes");
        assert!(a[0].is_err(), "Sum {{ n: 0 }} is a fault: {:?}", a[0]);
        assert_eq!(a[1], Ok(6));

        let me = std::process::id();
        assert_eq!(threads.submit(Nap { ms: 0 }).wait(), Ok(me));
        let pid = processes.submit(Nap { ms: 0 }).wait().unwrap();
        assert_ne!(pid, me, "ran in a worker process");
        assert!(alive(pid));

        // A panic in a worker process fails the job, and the worker goes on.
        let e = processes.submit(Sum { n: 13 }).wait().unwrap_err();
        assert!(e.to_string().contains("unlucky thirteen"), "{e}");
        // A job type the worker program does not register says so.
        let e = processes.submit(Unregistered).wait().unwrap_err();
        assert!(
            e.to_string()
                .contains("cannot run jobs of type `exectest.Unregistered`"),
            "{e}"
        );
        // Closures cannot go there: refused at once.
        match processes.submit_fn(|| 1u8).wait() {
            Err(JobError::Rejected(r)) => assert!(r.reason.contains("closure"), "{r}"),
            other => panic!("{other:?}"),
        }
        let s = processes.shutdown(ShutdownMode::Wait).unwrap();
        assert_eq!(s.lost, 0, "{s:?}");
        assert!(s.rejected == 1 && s.failed >= 3, "{s:?}");
        assert!(!alive(pid), "no worker outlives the shutdown");
        assert!(children_of(me, "job_worker").is_empty());
    });
}

#[test]
fn a_worker_killed_mid_job_fails_that_job_naming_the_signal_and_is_replaced() {
    let _alone = ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner());
    let program = workers();
    bounded(LIMIT, move || {
        let pool = Executor::processes(program).max_workers(1).start();
        let first = pool.submit(Nap { ms: 0 }).wait().unwrap();
        // The only worker takes the long job; it is killed while running it.
        let long = pool.submit(Nap { ms: 60_000 });
        poll_until(WAIT, "the long job running", || {
            (pool.statistics().unwrap().running == 1).then_some(())
        });
        let queued = pool.submit(Nap { ms: 0 });
        assert!(signal(first, libc::SIGKILL));
        match long.wait() {
            Err(JobError::Failed { reason, .. }) => {
                assert!(
                    reason.contains("signal 9") && reason.contains("SIGKILL"),
                    "{reason}"
                );
            }
            other => panic!("{other:?}"),
        }
        // The job that waited runs on the replacement.
        let second = queued.wait().unwrap();
        assert_ne!(second, first);
        assert!(alive(second));
        let s = pool.shutdown(ShutdownMode::Wait).unwrap();
        assert_eq!((s.lost, s.executed, s.failed), (1, 3, 1), "{s:?}");
        assert!(!alive(second));
        assert!(children_of(std::process::id(), "job_worker").is_empty());
    });
}

#[test]
fn a_worker_killed_holding_a_batch_fails_every_job_of_it_naming_the_signal() {
    let _alone = ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner());
    let program = workers();
    bounded(LIMIT, move || {
        let pool = Executor::processes(program).max_workers(1).start();
        // Quick jobs first: the executor learns that its jobs are short, so it gives a
        // worker several queued ones at once.
        let warm: Vec<_> = (0..4000).map(|_| pool.submit(Nap { ms: 0 })).collect();
        let pids: Vec<u32> = warm.into_iter().map(|f| f.wait().unwrap()).collect();
        let first = pids[0];
        assert!(pids.iter().all(|p| *p == first), "one worker");
        // While the worker holds a job, jobs queue behind it, the long one among them.
        let blocker = pool.submit(Nap { ms: 100 });
        poll_until(WAIT, "the blocker running", || {
            (pool.statistics().unwrap().running == 1).then_some(())
        });
        let before: Vec<_> = (0..200).map(|_| pool.submit(Nap { ms: 0 })).collect();
        let long = pool.submit(Nap { ms: 60_000 });
        let after: Vec<_> = (0..200).map(|_| pool.submit(Nap { ms: 0 })).collect();
        assert_eq!(blocker.wait(), Ok(first));
        // The batch out holds the long job when the jobs before it that are done, and
        // those out, are more than the 200 before it (counted first, then the statistics).
        let held = poll_until(WAIT, "the long job's batch out", || {
            let done = before.iter().filter(|f| f.is_done()).count();
            let s = pool.statistics().unwrap();
            (done + s.running as usize > 200).then_some(s.running)
        });
        assert!(
            held >= 2,
            "a batch of {held}: the queue of 400 quick jobs went one by one"
        );
        assert!(signal(first, libc::SIGKILL));
        // Every job of the batch fails with the worker's end; the others run.
        let mut failed = 0u64;
        let outcomes = before
            .into_iter()
            .chain(std::iter::once(long))
            .chain(after)
            .map(|f| f.wait());
        let mut ran = Vec::new();
        for outcome in outcomes {
            match outcome {
                Ok(pid) => ran.push(pid),
                Err(JobError::Failed { reason, .. }) => {
                    assert!(
                        reason.contains("signal 9") && reason.contains("SIGKILL"),
                        "{reason}"
                    );
                    failed += 1;
                }
                Err(other) => panic!("{other:?}"),
            }
        }
        assert_eq!(failed, held, "the batch's jobs, and only they, failed");
        let s = pool.shutdown(ShutdownMode::Wait).unwrap();
        assert_eq!(s.lost, 1, "{s:?}");
        assert_eq!((s.executed, s.failed), (4000 + 1 + 401, held), "{s:?}");
        // The last job came after the batch: it ran on the replacement.
        let replacement = *ran.last().expect("jobs after the batch ran");
        assert_ne!(replacement, first);
        assert!(!alive(replacement) && !alive(first));
        assert!(children_of(std::process::id(), "job_worker").is_empty());
    });
}

#[test]
fn dropping_the_handle_stops_the_worker_processes() {
    let _alone = ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner());
    let program = workers();
    bounded(LIMIT, move || {
        let pool = Executor::processes(program)
            .min_workers(2)
            .max_workers(2)
            .start();
        let pid = pool.submit(Nap { ms: 0 }).wait().unwrap();
        let running = pool.submit(Nap { ms: 200 });
        drop(pool);
        // Stop lets the running job finish.
        assert!(running.wait().is_ok());
        poll_until(WAIT, "the workers gone", || {
            children_of(std::process::id(), "job_worker")
                .is_empty()
                .then_some(())
        });
        assert!(!alive(pid));
    });
}
