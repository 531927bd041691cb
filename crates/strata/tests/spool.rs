//! Spools with real worker threads: distribution, queueing and overload, busy detection
//! and its pass rate, workers ending (replaced, or the spool failing), join/leave,
//! parameter checks, and 10,000 concurrent requests each answered exactly once.

use std::collections::{HashMap, HashSet};
use std::time::{Duration, Instant};

use strata::prelude::*;
use strata::spool::{JoinSpool, LeaveSpool, Spool, SpoolSettings, SpoolStatistics, SpoolStats};

const WAIT: Duration = Duration::from_secs(20);

#[derive(Debug, Clone, Copy, Serialize, Deserialize, Message)]
#[message(name = "spooltest.Job")]
struct Job {
    id: u64,
    ms: u64,
    die: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Message)]
#[message(name = "spooltest.Done")]
struct Done {
    id: u64,
    worker: Address,
}

struct Worker;

#[strata::machine]
impl Worker {
    fn job(&mut self, cx: &mut Context<Self>, j: Job) -> Done {
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
    Job { id, ms, die: false }
}

fn threads() -> impl FnMut() -> Threaded<Worker> + Send + 'static {
    || Threaded(Worker)
}

fn stats(cx: &mut ThreadContext, spool: Address) -> SpoolStatistics {
    cx.ask(spool, SpoolStats, Some(WAIT))
        .downcast::<SpoolStatistics>()
        .expect("statistics")
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
    (0..n)
        .map(|_| {
            cx.input_timeout(WAIT)
                .expect("every request is answered")
                .into_message()
        })
        .collect()
}

#[test]
fn requests_are_shared_round_robin_across_workers() {
    let mut cx = ThreadContext::attach();
    let spool = cx.create(Spool::of(threads()).workers(4));
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
}

#[test]
fn a_full_queue_answers_overloaded_at_once() {
    let mut cx = ThreadContext::attach();
    let spool = cx.create(Spool::of(threads()).workers(1).queue_size(Some(2)));
    let began = Instant::now();
    let answers = send_all(&mut cx, spool, (0..6).map(|i| job(i, 300)));
    // The refusals come first, long before the workers finish.
    assert!(
        answers[0].is::<Overloaded>()
            && answers[1].is::<Overloaded>()
            && answers[2].is::<Overloaded>()
    );
    let done: Vec<u64> = answers
        .iter()
        .filter_map(|a| a.downcast_ref::<Done>())
        .map(|d| d.id)
        .collect();
    assert_eq!(done, vec![0, 1, 2]);
    assert!(began.elapsed() >= Duration::from_millis(900));
    let s = stats(&mut cx, spool);
    assert_eq!((s.admitted, s.rejected_overloaded, s.completed), (3, 3, 3));
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
            id: 2,
            ms: 0,
            die: true,
        },
    );
    let died_at = Instant::now();
    let mut answers = [
        cx.input_timeout(WAIT).unwrap().into_message(),
        cx.input_timeout(WAIT).unwrap().into_message(),
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
    let mut cx = ThreadContext::attach();
    let spool = cx.create(Spool::of(threads()).workers(1).stand_down(None));
    cx.send(
        spool,
        Job {
            id: 1,
            ms: 300,
            die: true,
        },
    );
    // Queued behind the dying one, which takes long enough to die that this arrives first.
    cx.send(spool, job(2, 0));
    let mut faults = 0;
    let mut returned = None;
    while returned.is_none() || faults < 2 {
        let e = cx.input_timeout(WAIT).expect("answers and the spool's end");
        if e.is::<Returned>() {
            returned = Some(e.take::<Returned>().unwrap().value);
        } else {
            assert!(e.is_fault(), "{e:?}");
            faults += 1;
        }
    }
    let value = returned.unwrap();
    assert!(value
        .downcast_ref::<Faulted>()
        .unwrap()
        .reason
        .contains("no stand-down"));
}

#[test]
fn workers_join_and_leave() {
    let mut cx = ThreadContext::attach();
    let spool = cx.create(Spool::of(threads()).workers(0).queue_size(Some(10)));
    let outside = cx.create(Threaded(Worker));
    cx.send(spool, job(1, 0)); // waits: no workers yet
    std::thread::sleep(Duration::from_millis(50));
    assert_eq!(stats(&mut cx, spool).queued, 1);
    cx.send(spool, JoinSpool(outside));
    let d = cx.input_timeout(WAIT).unwrap().take::<Done>().unwrap();
    assert_eq!((d.id, d.worker), (1, outside));
    cx.send(spool, LeaveSpool(outside));
    cx.send(spool, job(2, 0));
    std::thread::sleep(Duration::from_millis(50));
    let s = stats(&mut cx, spool);
    assert_eq!((s.workers, s.queued), (0, 1));
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
    let mut cx = ThreadContext::attach();
    for (settings, parameter) in cases {
        assert_eq!(settings.validate().unwrap_err().parameter, parameter);
        let spool = cx.create(Spool::with(threads(), settings));
        let value = cx.wait_for(spool);
        let fault = value
            .downcast::<Faulted>()
            .expect("the spool refuses to start");
        assert!(fault.reason.contains(parameter), "{fault}");
    }
    assert!(SpoolSettings::default().validate().is_ok());
}

#[test]
fn ten_thousand_concurrent_requests_are_each_answered_exactly_once() {
    let mut cx = ThreadContext::attach();
    let spool = cx.create(Spool::of(|| Worker).workers(8).queue_size(None));
    let n = 10_000u64;
    let answers = send_all(&mut cx, spool, (0..n).map(|i| job(i, 0)));
    let ids: HashSet<u64> = answers
        .into_iter()
        .map(|a| a.downcast::<Done>().expect("a Done").id)
        .collect();
    assert_eq!(ids.len() as u64, n);
    assert!(
        cx.input_timeout(Duration::from_millis(200)).is_none(),
        "no answer twice"
    );
    let s = stats(&mut cx, spool);
    assert_eq!((s.admitted, s.completed, s.failed), (n, n, 0));
}

#[test]
fn stopping_a_spool_answers_everything_it_holds() {
    let mut cx = ThreadContext::attach();
    let spool = cx.create(Spool::of(threads()).workers(1));
    cx.send(spool, job(1, 300));
    cx.send(spool, job(2, 0));
    std::thread::sleep(Duration::from_millis(50));
    cx.stop(spool);
    let mut aborted = 0;
    loop {
        let e = cx.input_timeout(WAIT).expect("answers and the end");
        if e.is::<Returned>() {
            break;
        }
        assert!(e.is::<Aborted>(), "{e:?}");
        aborted += 1;
    }
    assert_eq!(aborted, 2);
}
