//! Pipelines with process workers: several producers and transports in worker processes
//! deliver every item exactly once (the same stages as on threads: one argument), a
//! worker process killed mid-item loses only that item to the error policy (retried
//! here) and is replaced, a part the worker program does not register says so, and no
//! worker process outlives its pipeline.
//!
//! The workers are `pipe_worker` (crates/strata-testbins), built by the test itself.

mod support;

use std::sync::{Arc, Mutex};
use std::time::Duration;

use strata::backoff::Backoff;
use strata::pipeline::{
    Emit, ErrorPolicy, Outcome, Pipeline, PipelineReport, Progress, Transport, Workers,
};
use strata::prelude::*;
use strata::process::Process;
use strata_testbins::pipe::{Fan, Numbers};
use support::programs::{children_of, testbin};
use support::{bounded, poll_until, WAIT};

const LIMIT: Duration = Duration::from_secs(120);

/// The tests count this process's worker children, so they run one at a time.
static ONE_AT_A_TIME: Mutex<()> = Mutex::new(());

fn workers(n: usize) -> Workers {
    Workers::processes(
        n,
        Process::of(testbin("pipe_worker").to_string_lossy().into_owned()),
    )
}

fn collect(
    into: &Arc<Mutex<Vec<u64>>>,
) -> impl Fn(&u64) -> Result<(), Faulted> + Clone + Send + Sync {
    let into = into.clone();
    move |n: &u64| {
        into.lock().unwrap().push(*n);
        Ok(())
    }
}

fn sorted(got: &Arc<Mutex<Vec<u64>>>) -> Vec<u64> {
    let mut v = got.lock().unwrap().clone();
    v.sort_unstable();
    v
}

fn fanned(items: impl IntoIterator<Item = u64>) -> Vec<u64> {
    let mut v: Vec<u64> = items.into_iter().flat_map(|n| [n, n + 1_000_000]).collect();
    v.sort_unstable();
    v
}

fn run(p: Pipeline) -> PipelineReport {
    bounded(LIMIT, move || {
        p.progress(Progress::Never).run().expect("valid")
    })
}

fn no_workers_left() {
    poll_until(WAIT, "no pipe_worker children", || {
        children_of(std::process::id(), "pipe_worker")
            .is_empty()
            .then_some(())
    });
}

#[test]
fn several_producers_and_transports_in_processes_deliver_every_item_exactly_once() {
    let _alone = ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner());
    let got = Arc::new(Mutex::new(Vec::new()));
    let r = run(Pipeline::frontend(Numbers::upto(3_000), workers(3))
        .transport(Fan::default(), workers(2).queue(32))
        .backend_fn(collect(&got), Workers::threads(2)));
    assert_eq!(r.outcome, Outcome::Finished, "{r}");
    assert!(r.is_complete(), "{r}");
    assert_eq!(sorted(&got), fanned(0..3_000));
    assert_eq!(r.stages[1].kind, "processes");
    // The same stages on threads give the same items: one argument.
    let on_threads = Arc::new(Mutex::new(Vec::new()));
    let t = run(
        Pipeline::frontend(Numbers::upto(3_000), Workers::threads(3))
            .transport(Fan::default(), Workers::threads(2).queue(32))
            .backend_fn(collect(&on_threads), Workers::threads(2)),
    );
    assert!(t.is_complete(), "{t}");
    assert_eq!(sorted(&on_threads), sorted(&got));
    no_workers_left();
}

#[test]
fn a_killed_worker_process_loses_only_its_item_which_is_retried_and_is_replaced() {
    let _alone = ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner());
    let marker = std::env::temp_dir().join(format!("strata-pipe-kill-{}", std::process::id()));
    let _ = std::fs::remove_file(&marker);
    let fan = Fan {
        kill_on: Some(77),
        marker: marker.to_string_lossy().into_owned(),
        ..Fan::default()
    };
    let retry = ErrorPolicy::retry(3, Backoff::constant(Duration::from_millis(10)));
    let got = Arc::new(Mutex::new(Vec::new()));
    let r = run(Pipeline::frontend(Numbers::upto(400), Workers::threads(2))
        .transport(fan, workers(2).on_error(retry))
        .backend_fn(collect(&got), Workers::threads(1)));
    let _ = std::fs::remove_file(&marker);
    assert!(r.is_complete(), "{r}");
    let t = &r.stages[1];
    assert_eq!(
        (t.errors, t.retries, t.skipped, t.replaced),
        (1, 1, 0, 1),
        "{r}"
    );
    assert_eq!(sorted(&got), fanned(0..400), "every item exactly once");
    no_workers_left();
}

#[test]
fn a_worker_process_killed_in_a_batch_loses_only_the_item_it_was_handling() {
    let _alone = ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner());
    // Quick items go to worker processes in batches; the worker answers each item as it
    // finishes it, so when it dies the stage knows which item it was handling (skipped
    // here, as the policy says) and gives the items after it, never begun, to another
    // worker: every other item comes through exactly once.
    let marker = std::env::temp_dir().join(format!("strata-pipe-batch-{}", std::process::id()));
    let _ = std::fs::remove_file(&marker);
    let fan = Fan {
        kill_on: Some(1_234),
        marker: marker.to_string_lossy().into_owned(),
        ..Fan::default()
    };
    let got = Arc::new(Mutex::new(Vec::new()));
    let r = run(
        Pipeline::frontend(Numbers::upto(3_000), Workers::threads(1))
            .transport(fan, workers(2))
            .backend_fn(collect(&got), Workers::threads(1)),
    );
    let _ = std::fs::remove_file(&marker);
    assert!(r.is_complete(), "{r}");
    let t = &r.stages[1];
    assert_eq!(
        (t.errors, t.retries, t.skipped, t.replaced),
        (1, 0, 1, 1),
        "{r}"
    );
    assert_eq!(
        sorted(&got),
        fanned((0..3_000).filter(|n| *n != 1_234)),
        "every other item exactly once"
    );
    no_workers_left();
}

#[test]
fn a_killed_producer_process_is_replaced_and_resumes_its_share() {
    let _alone = ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner());
    let got = Arc::new(Mutex::new(Vec::new()));
    let sink = got.clone();
    let handle = Pipeline::frontend(Numbers::upto(2_000), workers(2))
        .backend_fn(
            move |n: &u64| {
                // Slow enough that the producers are still at it when one is killed.
                std::thread::sleep(Duration::from_micros(300));
                sink.lock().unwrap().push(*n);
                Ok(())
            },
            Workers::threads(1).queue(8),
        )
        .progress(Progress::Never)
        .start()
        .unwrap();
    poll_until(WAIT, "some items through", || {
        (got.lock().unwrap().len() >= 100).then_some(())
    });
    let producers = children_of(std::process::id(), "pipe_worker");
    assert_eq!(producers.len(), 2, "{producers:?}");
    assert!(support::programs::signal(producers[0], libc::SIGKILL));
    let r = bounded(LIMIT, move || handle.wait().unwrap());
    assert!(r.is_complete(), "{r}");
    assert_eq!(r.stages[0].replaced, 1, "{r}");
    assert_eq!(
        sorted(&got),
        (0..2_000).collect::<Vec<_>>(),
        "every item exactly once"
    );
    no_workers_left();
}

/// A transport the worker program does not register.
#[derive(Debug, Clone, Serialize, Deserialize, Message)]
#[message(name = "pipetest.Unregistered")]
struct Unregistered;

impl Transport for Unregistered {
    type In = u64;
    type Out = u64;
    fn transport(&mut self, n: &u64, out: &mut Emit<u64>) -> Result<(), Faulted> {
        out.send(*n);
        Ok(())
    }
}

#[test]
fn a_part_the_worker_program_does_not_register_or_a_missing_program_fails_the_pipeline_saying_so() {
    let _alone = ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner());
    let r = run(Pipeline::frontend(Numbers::upto(10), Workers::threads(1))
        .transport(Unregistered, workers(1))
        .backend_fn(|_: &u64| Ok(()), Workers::threads(1)));
    match &r.outcome {
        Outcome::Failed { reason } => {
            assert!(
                reason.contains("cannot run the pipeline stage `pipetest.Unregistered`"),
                "{reason}"
            )
        }
        other => panic!("{other:?}"),
    }
    // A worker program that is not there: the stage cannot start, and says so.
    let r = run(Pipeline::frontend(Numbers::upto(10), Workers::threads(1))
        .transport(
            Fan::default(),
            Workers::processes(2, Process::of("no-such-pipe-worker")),
        )
        .backend_fn(|_: &u64| Ok(()), Workers::threads(1)));
    match &r.outcome {
        Outcome::Failed { reason } => {
            assert!(
                reason.contains("transport worker")
                    && reason.contains("no program `no-such-pipe-worker`"),
                "{reason}"
            )
        }
        other => panic!("{other:?}"),
    }
    no_workers_left();
}
