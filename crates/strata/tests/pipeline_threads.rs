//! Pipelines on threads and async workers: every item consumed exactly once with several
//! producers, back-pressure that bounds what is in flight behind a slow backend, a drain
//! that lets everything produced through, a dying backend that does not hang the
//! pipeline, each error policy, setup and cleanup once per worker, and refusals of bad
//! parameters that name the stage and the parameter. Every run is bounded; nothing
//! asserts a time.

mod support;

use std::collections::HashSet;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex};
use std::time::Duration;

use strata::backoff::Backoff;
use strata::pipeline::{
    Backend, Emit, ErrorPolicy, Frontend, Outcome, Pipeline, PipelineError, PipelineReport,
    Progress, Transport, WorkerInfo, Workers,
};
use strata::prelude::*;
use strata::process::Process;
use strata_testbins::pipe::{Fan, Numbers};
use support::{bounded, poll_until, WAIT};

const LIMIT: Duration = Duration::from_secs(60);

/// The tests count setups and cleanups process-wide, so they run one at a time.
static ONE_AT_A_TIME: Mutex<()> = Mutex::new(());

fn alone() -> std::sync::MutexGuard<'static, ()> {
    ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner())
}

/// A backend that keeps what it gets, counting its own setups and cleanups.
#[derive(Debug, Clone, Default, Serialize, Deserialize, Message)]
#[message(name = "pipetest.Collect")]
struct Collect {
    #[serde(skip)]
    got: Arc<Mutex<Vec<u64>>>,
    #[serde(skip)]
    setups: Arc<AtomicU64>,
    #[serde(skip)]
    cleanups: Arc<AtomicU64>,
    fail_on: Vec<u64>,
    fail_setup: bool,
}

impl Backend for Collect {
    type In = u64;
    fn setup(&mut self, _: &WorkerInfo) -> Result<(), Faulted> {
        if self.fail_setup {
            return Err(Faulted::new("no database today"));
        }
        self.setups.fetch_add(1, Ordering::SeqCst);
        Ok(())
    }
    fn process(&mut self, n: &u64) -> Result<(), Faulted> {
        if self.fail_on.contains(n) {
            return Err(Faulted::new(format!("the backend cannot take {n}")));
        }
        self.got.lock().unwrap().push(*n);
        Ok(())
    }
    fn cleanup(&mut self, _: &WorkerInfo) {
        self.cleanups.fetch_add(1, Ordering::SeqCst);
    }
}

/// Setups and cleanups of one pipeline's workers.
#[derive(Debug, Clone, Default)]
struct Counts {
    setups: Arc<AtomicU64>,
    cleanups: Arc<AtomicU64>,
}

impl Counts {
    fn setup(&self) {
        self.setups.fetch_add(1, Ordering::SeqCst);
    }
    fn cleanup(&self) {
        self.cleanups.fetch_add(1, Ordering::SeqCst);
    }
    fn get(&self) -> (u64, u64) {
        (
            self.setups.load(Ordering::SeqCst),
            self.cleanups.load(Ordering::SeqCst),
        )
    }
}

/// `0..upto` over the workers' shares, counting setups and cleanups.
#[derive(Debug, Clone, Default, Serialize, Deserialize, Message)]
#[message(name = "pipetest.Counted")]
struct Counted {
    upto: u64,
    #[serde(skip)]
    next: u64,
    #[serde(skip)]
    step: u64,
    #[serde(skip)]
    counts: Counts,
}

impl Frontend for Counted {
    type Item = u64;
    fn setup(&mut self, w: &WorkerInfo) -> Result<(), Faulted> {
        self.counts.setup();
        (self.next, self.step) = (w.index as u64, w.workers as u64);
        Ok(())
    }
    fn produce(&mut self) -> Result<Option<u64>, Faulted> {
        let n = self.next;
        self.next += self.step;
        Ok((n < self.upto).then_some(n))
    }
    fn cleanup(&mut self, _: &WorkerInfo) {
        self.counts.cleanup();
    }
}

/// Passes items on, counting setups and cleanups; panics on 7.
#[derive(Debug, Clone, Default, Serialize, Deserialize, Message)]
#[message(name = "pipetest.Pass")]
struct Pass {
    #[serde(skip)]
    counts: Counts,
}

impl Transport for Pass {
    type In = u64;
    type Out = u64;
    fn setup(&mut self, _: &WorkerInfo) -> Result<(), Faulted> {
        self.counts.setup();
        Ok(())
    }
    fn transport(&mut self, n: &u64, out: &mut Emit<u64>) -> Result<(), Faulted> {
        assert!(*n != 7, "seven");
        out.send(*n);
        Ok(())
    }
    fn cleanup(&mut self, _: &WorkerInfo) {
        self.counts.cleanup();
    }
}

impl Collect {
    fn sorted(&self) -> Vec<u64> {
        let mut v = self.got.lock().unwrap().clone();
        v.sort_unstable();
        v
    }
}

/// What `Fan` makes of `items`: each number and the number plus a million.
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

/// Each stage's items are all accounted for; after a clean end, every stage's outputs
/// are the next stage's inputs (at a halt, items between two stages may be lost
/// uncounted: the next stage had ended).
fn accounted(r: &PipelineReport) {
    for s in &r.stages {
        assert_eq!(s.items_in, s.done + s.skipped + s.left, "{s}");
    }
    if !r.is_complete() {
        return;
    }
    for pair in r.stages.windows(2) {
        assert_eq!(pair[0].items_out, pair[1].items_in, "{r}");
    }
    // A stage's handled items went on or were dropped at a halt (a transport's count
    // is of outputs, so only frontends are checked item for item).
    let f = &r.stages[0];
    assert_eq!(f.done, f.items_out + f.dropped, "{f}");
}

#[test]
fn every_item_is_consumed_exactly_once_with_several_producers_on_threads_and_async() {
    let _alone = alone();
    for transport in [Workers::threads(3), Workers::asynchronous(3)] {
        let sink = Collect::default();
        let r = run(
            Pipeline::frontend(Numbers::upto(5_000), Workers::threads(4))
                .transport(Fan::default(), transport.queue(16))
                .backend(sink.clone(), Workers::threads(2).queue(16)),
        );
        assert_eq!(r.outcome, Outcome::Finished, "{r}");
        assert!(r.is_complete(), "{r}");
        assert_eq!(sink.sorted(), fanned(0..5_000));
        let (f, t, b) = (&r.stages[0], &r.stages[1], &r.stages[2]);
        assert_eq!(
            (f.done, t.items_in, t.items_out, b.done),
            (5_000, 5_000, 10_000, 10_000),
            "{r}"
        );
        accounted(&r);
    }
}

#[test]
fn setup_and_cleanup_run_once_per_worker() {
    let _alone = alone();
    let (front, middle) = (
        Counted {
            upto: 300,
            ..Counted::default()
        },
        Pass::default(),
    );
    let sink = Collect::default();
    let r = run(Pipeline::frontend(front.clone(), Workers::threads(3))
        .transport(middle.clone(), Workers::threads(4))
        .backend(sink.clone(), Workers::asynchronous(2)));
    assert!(r.is_complete(), "{r}");
    assert_eq!(r.stages[1].skipped, 1, "the panic on 7: {r}");
    // Each worker set up once and cleaned up once, before the pipeline ended (a panic
    // in between changes nothing).
    assert_eq!(front.counts.get(), (3, 3));
    assert_eq!(middle.counts.get(), (4, 4));
    assert_eq!(sink.setups.load(Ordering::SeqCst), 2);
    assert_eq!(sink.cleanups.load(Ordering::SeqCst), 2);

    // A worker whose setup fails is not cleaned up, and the pipeline says why it failed.
    let broken = Collect {
        fail_setup: true,
        ..Collect::default()
    };
    let r = run(Pipeline::frontend(Numbers::upto(100), Workers::threads(1))
        .backend(broken.clone(), Workers::threads(2)));
    match &r.outcome {
        Outcome::Failed { reason } => assert!(reason.contains("no database today"), "{reason}"),
        other => panic!("{other:?}"),
    }
    assert_eq!(broken.cleanups.load(Ordering::SeqCst), 0);
}

#[test]
fn back_pressure_bounds_what_is_in_flight_behind_a_slow_backend() {
    let _alone = alone();
    let produced = Arc::new(AtomicU64::new(0));
    let consumed = Arc::new(AtomicU64::new(0));
    let most = Arc::new(AtomicU64::new(0));
    let counter = produced.clone();
    let items = (0..600u64).inspect(move |_| {
        counter.fetch_add(1, Ordering::SeqCst);
    });
    let (p, c, m) = (produced.clone(), consumed.clone(), most.clone());
    let r = run(Pipeline::items(items)
        .frontend_workers(Workers::threads(1).queue(8))
        .transport(Fan::default(), Workers::threads(2).queue(8))
        .backend_fn(
            move |_: &u64| {
                std::thread::sleep(Duration::from_micros(500));
                let done = c.fetch_add(1, Ordering::SeqCst) + 1;
                // Frontend items produced and not yet consumed (two outputs each).
                let in_flight = p.load(Ordering::SeqCst).saturating_sub(done / 2);
                m.fetch_max(in_flight, Ordering::SeqCst);
                Ok(())
            },
            Workers::threads(1).queue(8),
        ));
    assert!(r.is_complete(), "{r}");
    assert_eq!(consumed.load(Ordering::SeqCst), 1_200);
    // At most: the transport's credit (8) given to the producer, its queue (8), 2 items
    // in its workers, its outputs waiting to go on (under 8 + 2×2 outputs = 6 items), the
    // backend's queue (8 outputs = 4 items) and worker (1): about 30, far below 600.
    let most = most.load(Ordering::SeqCst);
    assert!(most <= 40, "{most} items were in flight at once");
}

#[test]
fn items_made_before_a_call_to_produce_that_blocks_go_on_without_waiting_for_it() {
    let _alone = alone();
    // A producer holds quick items to send them in batches; one that then blocks (as a
    // read of a terminal does) must not keep them: here the sixth call waits until the
    // backend has had the first five, which it could never do if they waited for it.
    let seen = Arc::new((Mutex::new(0u64), Condvar::new()));
    let (waiter, counter) = (seen.clone(), seen.clone());
    let saw_them = Arc::new(AtomicU64::new(0));
    let saw = saw_them.clone();
    let mut n = 0u64;
    let r = run(Pipeline::generate(move || {
        if n == 5 {
            let (count, changed) = &*waiter;
            let (count, wait) = changed
                .wait_timeout_while(count.lock().unwrap(), LIMIT, |c| *c < 5)
                .unwrap();
            if !wait.timed_out() && *count == 5 {
                saw.store(1, Ordering::SeqCst);
            }
            return None;
        }
        n += 1;
        Some(n)
    })
    .backend_fn(
        move |_: &u64| {
            let (count, changed) = &*counter;
            *count.lock().unwrap() += 1;
            changed.notify_all();
            Ok(())
        },
        Workers::threads(1),
    ));
    assert!(r.is_complete(), "{r}");
    assert_eq!(
        saw_them.load(Ordering::SeqCst),
        1,
        "the backend had the five items while the producer was blocked: {r}"
    );
    assert_eq!(r.stages[1].done, 5, "{r}");
    accounted(&r);
}

#[test]
fn a_drain_stops_the_producers_and_everything_produced_goes_through() {
    let _alone = alone();
    let sink = Collect::default();
    let handle = Pipeline::frontend(Numbers::upto(u64::MAX), Workers::threads(3))
        .transport(
            Fan {
                sleep_ms: 0,
                ..Fan::default()
            },
            Workers::threads(2),
        )
        .backend(sink.clone(), Workers::threads(2))
        .progress(Progress::Never)
        .start()
        .unwrap();
    poll_until(WAIT, "500 items through", || {
        (sink.got.lock().unwrap().len() >= 500).then_some(())
    });
    handle.drain();
    let r = bounded(LIMIT, move || handle.wait().unwrap());
    assert_eq!(r.outcome, Outcome::Drained, "{r}");
    assert!(r.is_complete(), "{r}");
    let produced = r.stages[0].done;
    assert_eq!(sink.sorted().len() as u64, 2 * produced, "{r}");
    // Exactly the items produced: each producer's share is a prefix, so the set is
    // exactly what the frontend says it produced.
    let got: HashSet<u64> = sink
        .sorted()
        .into_iter()
        .filter(|n| *n < 1_000_000)
        .collect();
    assert_eq!(got.len() as u64, produced);
    accounted(&r);
}

#[test]
fn a_dying_backend_does_not_hang_the_pipeline() {
    let _alone = alone();
    // The backend stops the pipeline at item 100 while the transport's queue is full.
    let sink = Collect {
        fail_on: vec![100],
        ..Collect::default()
    };
    let r = run(
        Pipeline::frontend(Numbers::upto(100_000), Workers::threads(2))
            .transport(Fan::default(), Workers::threads(2).queue(4))
            .backend(
                sink.clone(),
                Workers::threads(1).queue(4).on_error(ErrorPolicy::stop()),
            ),
    );
    match &r.outcome {
        Outcome::Failed { reason } => {
            assert!(
                reason.contains("backend") && reason.contains("cannot take 100"),
                "{reason}"
            )
        }
        other => panic!("{other:?}"),
    }
    assert!(r.left() > 0, "what was left is counted: {r}");
    accounted(&r);
    // The backend was cleaned up all the same.
    poll_until(WAIT, "the backend cleaned up", || {
        (sink.cleanups.load(Ordering::SeqCst) == 1).then_some(())
    });
}

#[test]
fn errors_are_skipped_and_counted_retried_with_backoff_or_stop_the_pipeline() {
    let _alone = alone();
    let ms = Duration::from_millis;
    // Skip: the failing items are dropped and counted.
    let sink = Collect::default();
    let r = run(Pipeline::frontend(Numbers::upto(50), Workers::threads(2))
        .transport(
            Fan {
                fail_on: vec![3, 7],
                ..Fan::default()
            },
            Workers::threads(2),
        )
        .backend(sink.clone(), Workers::threads(1)));
    let t = &r.stages[1];
    assert_eq!((t.errors, t.skipped, t.retries), (2, 2, 0), "{r}");
    assert_eq!(
        sink.sorted(),
        fanned((0..50).filter(|n| *n != 3 && *n != 7))
    );
    accounted(&r);

    // Retry: every fifth item fails its first attempt, then goes through.
    let tried = Arc::new(Mutex::new(HashSet::new()));
    let sink = Collect::default();
    let r = run(Pipeline::frontend(Numbers::upto(50), Workers::threads(2))
        .transport_fn(
            move |n: &u64, out: &mut Emit<u64>| {
                if n.is_multiple_of(5) && tried.lock().unwrap().insert(*n) {
                    return Err(Faulted::new("not yet"));
                }
                out.send(*n);
                Ok(())
            },
            Workers::threads(3).on_error(ErrorPolicy::retry(2, Backoff::growing(ms(1), ms(20)))),
        )
        .backend(sink.clone(), Workers::threads(1)));
    let t = &r.stages[1];
    assert_eq!((t.errors, t.retries, t.skipped), (10, 10, 0), "{r}");
    assert_eq!(sink.sorted(), (0..50).collect::<Vec<_>>());
    assert!(r.is_complete(), "{r}");

    // Retries spent: skipped after 1 + 2 attempts, or the pipeline stops.
    let policy = ErrorPolicy::retry(2, Backoff::constant(ms(1)));
    let r = run(Pipeline::frontend(Numbers::upto(20), Workers::threads(1))
        .transport(
            Fan {
                fail_on: vec![4],
                ..Fan::default()
            },
            Workers::threads(2).on_error(policy.clone()),
        )
        .backend(Collect::default(), Workers::threads(1)));
    let t = &r.stages[1];
    assert_eq!((t.errors, t.retries, t.skipped), (3, 2, 1), "{r}");
    assert!(r.is_complete(), "{r}");
    let r = run(Pipeline::frontend(Numbers::upto(20), Workers::threads(1))
        .transport(
            Fan {
                fail_on: vec![4],
                ..Fan::default()
            },
            Workers::threads(2).on_error(policy.then_stop()),
        )
        .backend(Collect::default(), Workers::threads(1)));
    match &r.outcome {
        Outcome::Failed { reason } => assert!(
            reason.contains("4 fails") && reason.contains("3 attempts"),
            "{reason}"
        ),
        other => panic!("{other:?}"),
    }

    // Stop at the first failure.
    let r = run(
        Pipeline::frontend(Numbers::upto(1_000), Workers::threads(2))
            .transport(
                Fan {
                    fail_on: vec![10],
                    ..Fan::default()
                },
                Workers::threads(2).on_error(ErrorPolicy::stop()),
            )
            .backend(Collect::default(), Workers::threads(1)),
    );
    match &r.outcome {
        Outcome::Failed { reason } => assert!(
            reason.contains("transport") && reason.contains("10 fails"),
            "{reason}"
        ),
        other => panic!("{other:?}"),
    }
    accounted(&r);

    // A frontend error is counted and producing goes on (or stops, if so told).
    let sink = Collect::default();
    let mut numbers = Numbers::upto(30);
    numbers.fail_on = vec![5];
    let r = run(Pipeline::frontend(numbers.clone(), Workers::threads(2))
        .backend(sink.clone(), Workers::threads(1)));
    let f = &r.stages[0];
    assert_eq!((f.errors, f.skipped, f.done), (1, 1, 29), "{r}");
    assert_eq!(
        sink.sorted(),
        (0..30).filter(|n| *n != 5).collect::<Vec<_>>()
    );
    let r = run(
        Pipeline::frontend(numbers, Workers::threads(2).on_error(ErrorPolicy::stop()))
            .backend(Collect::default(), Workers::threads(1)),
    );
    assert!(
        matches!(&r.outcome, Outcome::Failed { reason } if reason.contains("cannot produce 5")),
        "{r}"
    );
}

#[test]
fn a_panicking_stage_fails_its_item_and_the_worker_goes_on() {
    let _alone = alone();
    let sink = Collect::default();
    let r = run(Pipeline::items(0..40u64)
        .transport_fn(
            |n: &u64, out: &mut Emit<u64>| {
                assert!(n % 10 != 9, "nine is unlucky");
                out.send(*n);
                Ok(())
            },
            Workers::threads(1),
        )
        .backend(sink.clone(), Workers::threads(1)));
    let t = &r.stages[1];
    assert_eq!((t.errors, t.skipped, t.replaced), (4, 4, 0), "{r}");
    assert_eq!(sink.sorted().len(), 36);
}

#[test]
fn bad_parameters_are_refused_naming_the_stage_and_the_parameter() {
    let refused = |p: Pipeline| p.validate().unwrap_err().to_string();
    let e = refused(
        Pipeline::frontend(Numbers::upto(1), Workers::threads(1))
            .transport(Fan::default(), Workers::threads(0))
            .build(),
    );
    assert!(e.contains("transport") && e.contains("`workers`"), "{e}");
    let e = refused(
        Pipeline::frontend(Numbers::upto(1), Workers::threads(1))
            .backend(Collect::default(), Workers::threads(1).queue(0)),
    );
    assert!(e.contains("backend") && e.contains("`queue`"), "{e}");
    let e = refused(Pipeline::items(0..3u64).backend_fn(
        |_: &u64| Ok(()),
        Workers::processes(2, Process::of("anything")),
    ));
    assert!(
        e.contains("backend") && e.contains("cannot cross to a process"),
        "{e}"
    );
    let e = refused(
        Pipeline::items(0..3u64)
            .frontend_workers(Workers::threads(2))
            .backend_fn(|_: &u64| Ok(()), Workers::threads(1)),
    );
    assert!(e.contains("frontend") && e.contains("iterator"), "{e}");
    let e = refused(Pipeline::frontend(Numbers::upto(1), Workers::threads(1)).build());
    assert!(e.contains("needs a transport or a backend"), "{e}");
    let bad = ErrorPolicy::retry(1, Backoff::constant(Duration::from_millis(1)).jitter(3.0));
    let e = refused(
        Pipeline::frontend(Numbers::upto(1), Workers::threads(1))
            .backend(Collect::default(), Workers::threads(1).on_error(bad)),
    );
    assert!(e.contains("`on_error`") && e.contains("jitter"), "{e}");
    assert!(matches!(
        Pipeline::frontend(Numbers::upto(1), Workers::threads(0))
            .backend(Collect::default(), Workers::threads(1))
            .start(),
        Err(PipelineError::Invalid {
            stage: "frontend",
            parameter: "workers",
            ..
        })
    ));
}

#[test]
fn a_pipeline_is_an_object_whose_value_is_its_report() {
    let _alone = alone();
    bounded(LIMIT, || {
        let mut cx = ThreadContext::attach();
        let sink = Collect::default();
        let p = cx.create(
            Pipeline::frontend(Numbers::upto(100), Workers::threads(2))
                .backend(sink.clone(), Workers::threads(1))
                .progress(Progress::Never),
        );
        let r = cx.wait_for(p).downcast::<PipelineReport>().unwrap();
        assert!(r.is_complete(), "{r}");
        assert_eq!(sink.sorted(), (0..100).collect::<Vec<_>>());
        // Stop drains.
        let sink = Collect::default();
        let p = cx.create(
            Pipeline::frontend(Numbers::upto(u64::MAX), Workers::threads(2))
                .backend(sink.clone(), Workers::threads(1))
                .progress(Progress::Never),
        );
        poll_until(WAIT, "items through", || {
            (!sink.got.lock().unwrap().is_empty()).then_some(())
        });
        cx.stop(p);
        let r = cx.wait_for(p).downcast::<PipelineReport>().unwrap();
        assert_eq!(r.outcome, Outcome::Drained, "{r}");
        assert!(r.is_complete(), "{r}");
        assert_eq!(sink.sorted().len() as u64, r.stages[0].done);
    });
}
