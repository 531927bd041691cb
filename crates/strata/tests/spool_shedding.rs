//! Spools with real worker threads: distribution, queueing and overload, busy detection
//! and its pass rate, workers ending (replaced, or the spool failing), join/leave,
//! parameter checks, and 10,000 concurrent requests each answered exactly once.

mod support;

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Barrier, Condvar, Mutex};
use std::time::{Duration, Instant};

use strata::prelude::*;
use strata::spool::{JoinSpool, LeaveSpool, Spool, SpoolSettings, SpoolStatistics, SpoolStats};
use support::{bounded, poll_until, WAIT};

#[derive(Debug, Clone, Copy, Serialize, Deserialize, Message)]
#[message(name = "spooltest.Job")]
struct Job {
    id: u64,
    ms: u64,
    die: bool,
    /// Wait until the test opens the workers' `Hold` before working.
    held: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Message)]
#[message(name = "spooltest.Done")]
struct Done {
    id: u64,
    worker: Address,
}

/// A gate the test opens: held jobs wait for it (at most `WAIT`), so the test decides
/// when a worker finishes instead of a sleep deciding it.
#[derive(Clone, Default)]
struct Hold(Arc<(Mutex<bool>, Condvar)>);

impl Hold {
    fn open(&self) {
        *self.0 .0.lock().unwrap() = true;
        self.0 .1.notify_all();
    }

    fn wait(&self) {
        let (open, changed) = &*self.0;
        let (_open, _) = changed
            .wait_timeout_while(open.lock().unwrap(), WAIT, |open| !*open)
            .unwrap();
    }
}

#[derive(Clone, Default)]
struct Worker {
    hold: Hold,
    /// When set, every job first meets the other workers' jobs here.
    meet: Option<Arc<Barrier>>,
}

#[strata::machine]
impl Worker {
    fn job(&mut self, cx: &mut Context<Self>, j: Job) -> Done {
        if let Some(meet) = &self.meet {
            meet.wait();
        }
        if j.held {
            self.hold.wait();
        }
        std::thread::sleep(Duration::from_millis(j.ms));
        if j.die {
            panic!("worker told to die");
        }
        Done {
            id: j.id,
            worker: cx.address(),
        }
    }
}

fn job(id: u64, ms: u64) -> Job {
    Job {
        id,
        ms,
        die: false,
        held: false,
    }
}

fn held(id: u64) -> Job {
    Job {
        held: true,
        ..job(id, 0)
    }
}

fn threads() -> impl FnMut() -> Threaded<Worker> + Send + 'static {
    threads_of(Worker::default())
}

fn threads_of(worker: Worker) -> impl FnMut() -> Threaded<Worker> + Send + 'static {
    move || Threaded(worker.clone())
}

fn stats(cx: &mut ThreadContext, spool: Address) -> SpoolStatistics {
    cx.ask_timeout(spool, SpoolStats, WAIT)
        .downcast::<SpoolStatistics>()
        .expect("statistics")
}

/// Asks for the spool's statistics until `ready` accepts them (at most `WAIT`).
fn stats_until(
    cx: &mut ThreadContext,
    spool: Address,
    what: &str,
    ready: impl Fn(&SpoolStatistics) -> bool,
) -> SpoolStatistics {
    poll_until(WAIT, what, || {
        let s = stats(cx, spool);
        ready(&s).then_some(s)
    })
}

/// Sends every job at once and collects one answer per job (by arrival order).
fn send_all(
    cx: &mut ThreadContext,
    spool: Address,
    jobs: impl IntoIterator<Item = Job>,
) -> Vec<AnyMessage> {
    let mut n = 0;
    for j in jobs {
        cx.send(spool, j);
        n += 1;
    }
    receive(cx, n)
}

/// The next `n` answers, in order of arrival.
fn receive(cx: &mut ThreadContext, n: usize) -> Vec<AnyMessage> {
    (0..n)
        .map(|_| {
            cx.recv_timeout(WAIT)
                .expect("every request is answered")
                .into_message()
        })
        .collect()
}

#[test]
fn requests_are_shared_round_robin_across_workers() {
    bounded(Duration::from_secs(60), || {
        let mut cx = ThreadContext::attach();
        // Each job waits until four are in progress: a worker holding one cannot take a
        // second, so however the threads are scheduled each worker gets exactly two.
        let worker = Worker {
            meet: Some(Arc::new(Barrier::new(4))),
            ..Worker::default()
        };
        let spool = cx.create(Spool::of(threads_of(worker)).workers(4));
        let answers = send_all(&mut cx, spool, (0..8).map(|i| job(i, 50)));
        let mut per_worker: HashMap<Address, u32> = HashMap::new();
        for a in answers {
            *per_worker
                .entry(a.downcast::<Done>().unwrap().worker)
                .or_default() += 1;
        }
        assert_eq!(per_worker.len(), 4, "{per_worker:?}");
        assert!(per_worker.values().all(|n| *n == 2), "{per_worker:?}");
        let s = stats(&mut cx, spool);
        assert_eq!((s.admitted, s.completed, s.workers, s.idle), (8, 8, 4, 4));
        assert!(s.p50 >= 0.04, "{s:?}");
    });
}

#[test]
fn a_full_queue_answers_overloaded_at_once() {
    bounded(Duration::from_secs(60), || {
        let mut cx = ThreadContext::attach();
        let worker = Worker::default();
        let hold = worker.hold.clone();
        let spool = cx.create(Spool::of(threads_of(worker)).workers(1).queue_size(Some(2)));
        // One job on the worker (held there), two queued, three refused.
        for i in 0..6 {
            cx.send(spool, held(i));
        }
        // The refusals come while the worker still holds its first job.
        let refused = receive(&mut cx, 3);
        assert!(refused.iter().all(|a| a.is::<Overloaded>()), "{refused:?}");
        hold.open();
        let done: Vec<u64> = receive(&mut cx, 3)
            .iter()
            .map(|a| a.downcast_ref::<Done>().expect("a Done").id)
            .collect();
        assert_eq!(done, vec![0, 1, 2]);
        let s = stats(&mut cx, spool);
        assert_eq!((s.admitted, s.rejected_overloaded, s.completed), (3, 3, 3));
    });
}

#[test]
fn a_busy_spool_admits_only_its_pass_rate() {
    let mut cx = ThreadContext::attach();
    let spool = cx.create(
        Spool::of(threads())
            .workers(2)
            .queue_size(None)
            .responsiveness(Duration::from_millis(5))
            .busy_pass_rate(0.25),
    );
    // Slow answers (40 ms against a 5 ms target) make the spool busy.
    let warm = send_all(&mut cx, spool, (0..4).map(|i| job(i, 40)));
    assert!(warm.iter().all(|a| a.is::<Done>()));
    assert!(stats(&mut cx, spool).busy);
    let sent = 400;
    let answers = send_all(&mut cx, spool, (100..100 + sent).map(|i| job(i, 1)));
    let busy = answers.iter().filter(|a| a.is::<Busy>()).count() as f64;
    let admitted = answers.iter().filter(|a| a.is::<Done>()).count() as f64;
    assert_eq!(busy + admitted, sent as f64);
    let rate = admitted / sent as f64;
    // 400 draws at p = 0.25: the standard deviation is about 0.022; allow five of them.
    assert!((0.14..=0.36).contains(&rate), "admitted share {rate}");
    let s = stats(&mut cx, spool);
    assert_eq!(s.rejected_busy as f64, busy);
}

#[test]
fn a_worker_ending_mid_request_gets_that_request_a_fault_and_is_replaced() {
    let mut cx = ThreadContext::attach();
    let stand_down = Duration::from_millis(400);
    let spool = cx.create(Spool::of(threads()).workers(2).stand_down(Some(stand_down)));
    cx.send(spool, job(1, 200));
    cx.send(
        spool,
        Job {
            die: true,
            ..job(2, 0)
        },
    );
    let died_at = Instant::now();
    let mut answers = [
        cx.recv_timeout(WAIT).unwrap().into_message(),
        cx.recv_timeout(WAIT).unwrap().into_message(),
    ];
    answers.sort_by_key(|a| a.is::<Done>());
    let fault = answers[0]
        .downcast_ref::<Faulted>()
        .expect("the dying worker's request gets a fault");
    assert!(fault.reason.contains("worker told to die"), "{fault}");
    assert_eq!(answers[1].downcast_ref::<Done>().unwrap().id, 1);
    // Replaced within the jitter bounds (0.75 to 1.25 of the stand-down).
    let replaced = loop {
        let s = stats(&mut cx, spool);
        if s.replaced == 1 {
            assert_eq!(s.workers, 2);
            break died_at.elapsed();
        }
        assert!(died_at.elapsed() < WAIT, "never replaced");
        std::thread::sleep(Duration::from_millis(5));
    };
    assert!(
        replaced >= stand_down.mul_f64(0.75),
        "replaced after {replaced:?}"
    );
    assert!(
        replaced <= stand_down.mul_f64(1.25) + Duration::from_secs(2),
        "replaced after {replaced:?}"
    );
    let again = send_all(&mut cx, spool, (10..14).map(|i| job(i, 1)));
    assert!(again.iter().all(|a| a.is::<Done>()));
}

#[test]
fn without_a_stand_down_the_spool_fails_and_answers_what_it_holds() {
    bounded(Duration::from_secs(60), || {
        let mut cx = ThreadContext::attach();
        let worker = Worker::default();
        let hold = worker.hold.clone();
        let spool = cx.create(Spool::of(threads_of(worker)).workers(1).stand_down(None));
        cx.send(
            spool,
            Job {
                die: true,
                ..held(1)
            },
        );
        cx.send(spool, job(2, 0));
        // Job 2 waits in the spool's queue behind the one about to kill the worker.
        stats_until(&mut cx, spool, "job 2 queued", |s| s.queued == 1);
        hold.open();
        let mut faults = Vec::new();
        let mut returned = None;
        while returned.is_none() || faults.len() < 2 {
            let e = cx.recv_timeout(WAIT).expect("answers and the spool's end");
            if e.is::<Returned>() {
                returned = Some(e.take::<Returned>().unwrap().value);
            } else {
                assert!(e.is_fault(), "{e:?}");
                faults.push(e.into_message());
            }
        }
        let value = returned.unwrap();
        let end = value.downcast_ref::<Faulted>().expect("the spool failed");
        assert!(end.reason.contains("no stand-down"), "{end}");
        // The dying worker's request first, naming the panic; then the queued one.
        let dying = faults[0].downcast_ref::<Faulted>().expect("a Faulted");
        assert!(dying.reason.contains("worker told to die"), "{dying}");
        let queued = faults[1].downcast_ref::<Faulted>().expect("a Faulted");
        assert!(queued.reason.contains("no stand-down"), "{queued}");
        assert!(!dying.reason.contains("no stand-down"), "{dying}");
    });
}

#[test]
fn workers_join_and_leave() {
    bounded(Duration::from_secs(60), || {
        let mut cx = ThreadContext::attach();
        let spool = cx.create(Spool::of(threads()).workers(0).queue_size(Some(10)));
        let outside = cx.create(Threaded(Worker::default()));
        cx.send(spool, job(1, 0)); // waits: no workers yet
        stats_until(&mut cx, spool, "job 1 queued", |s| s.queued == 1);
        cx.send(spool, JoinSpool(outside));
        let d = cx.recv_timeout(WAIT).unwrap().take::<Done>().unwrap();
        assert_eq!((d.id, d.worker), (1, outside));
        cx.send(spool, LeaveSpool(outside));
        cx.send(spool, job(2, 0));
        let s = stats_until(&mut cx, spool, "job 2 queued", |s| s.queued == 1);
        assert_eq!((s.workers, s.queued), (0, 1));
    });
}

#[test]
fn improbable_parameters_are_refused_naming_the_parameter() {
    let cases: Vec<(SpoolSettings, &str)> = vec![
        (
            SpoolSettings {
                workers: 100_000,
                ..Default::default()
            },
            "workers",
        ),
        (
            SpoolSettings {
                busy_pass_rate: 1.5,
                ..Default::default()
            },
            "busy_pass_rate",
        ),
        (
            SpoolSettings {
                responsiveness: Some(Duration::from_nanos(10)),
                ..Default::default()
            },
            "responsiveness",
        ),
        (
            SpoolSettings {
                stand_down: Some(Duration::from_secs(100_000)),
                ..Default::default()
            },
            "stand_down",
        ),
        (
            SpoolSettings {
                queue_size: Some(usize::MAX),
                ..Default::default()
            },
            "queue_size",
        ),
    ];
    assert!(SpoolSettings::default().validate().is_ok());
    bounded(Duration::from_secs(60), move || {
        let mut cx = ThreadContext::attach();
        for (settings, parameter) in cases {
            assert_eq!(settings.validate().unwrap_err().parameter, parameter);
            let spool = cx.create(Spool::with(threads(), settings));
            let value = support::returned_from(&mut cx, spool, WAIT);
            let fault = value
                .downcast::<Faulted>()
                .expect("the spool refuses to start");
            assert!(fault.reason.contains(parameter), "{fault}");
        }
    });
}

#[test]
fn ten_thousand_concurrent_requests_are_each_answered_exactly_once() {
    let mut cx = ThreadContext::attach();
    let spool = cx.create(Spool::of(Worker::default).workers(8).queue_size(None));
    let n = 10_000u64;
    let answers = send_all(&mut cx, spool, (0..n).map(|i| job(i, 0)));
    let ids: HashSet<u64> = answers
        .into_iter()
        .map(|a| a.downcast::<Done>().expect("a Done").id)
        .collect();
    assert_eq!(ids.len() as u64, n);
    assert!(
        cx.recv_timeout(Duration::from_millis(200)).is_none(),
        "no answer twice"
    );
    let s = stats(&mut cx, spool);
    assert_eq!((s.admitted, s.completed, s.failed), (n, n, 0));
}

#[test]
fn stopping_a_spool_answers_everything_it_holds() {
    bounded(Duration::from_secs(60), || {
        let mut cx = ThreadContext::attach();
        let worker = Worker::default();
        let hold = worker.hold.clone();
        let spool = cx.create(Spool::of(threads_of(worker)).workers(1));
        cx.send(spool, held(1)); // on the worker, held there
        cx.send(spool, job(2, 0)); // queued behind it
        stats_until(&mut cx, spool, "one job running, one queued", |s| {
            s.idle == 0 && s.queued == 1
        });
        cx.stop(spool);
        // Both requests are answered at once, the held one included.
        for e in (0..2).map(|_| cx.recv_timeout(WAIT).expect("an answer")) {
            assert!(e.is::<Aborted>(), "{e:?}");
        }
        hold.open(); // the held worker thread may end now, and with it the spool
        let e = cx.recv_timeout(WAIT).expect("the spool's end");
        assert!(e.is::<Returned>(), "nothing but the end: {e:?}");
    });
}
