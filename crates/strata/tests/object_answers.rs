//! Every request gets exactly one answer: messages an object left unread when it ended
//! are answered with the fault `Unread`, a request taken after its deadline is answered `TimedOut`
//! instead of handled, and a spool with `retry_on_loss` gives the request of a worker
//! that died to another worker. Threads and machines of one process; the cross-process
//! cases are in `process_children.rs`.

mod support;

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use strata::prelude::*;
use strata::spool::{Spool, SpoolStatistics, SpoolStats};
use support::gate::Gate;
use support::{bounded, poll_until, WAIT};

const LIMIT: Duration = Duration::from_secs(60);

/// Waits at the gate on request 0, then ends itself; answers any other number with itself.
struct Quitter {
    gate: Gate,
    handled: Arc<AtomicUsize>,
}

#[strata::machine]
impl Quitter {
    fn number(&mut self, cx: &mut Context<Self>, n: u32) {
        self.handled.fetch_add(1, Ordering::SeqCst);
        if n == 0 {
            self.gate.pass();
            cx.complete(Aborted::new("quitting"));
        } else {
            cx.reply(n);
        }
    }
}

fn unread_reason(e: Envelope) -> String {
    match e.take::<Unread>() {
        Ok(f) => f.reason,
        Err(other) => panic!("expected Unread, got {:?}", other.message()),
    }
}

#[test]
fn messages_left_unread_when_a_machine_ends_are_answered_unread() {
    bounded(LIMIT, || {
        for threaded in [false, true] {
            let mut cx = ThreadContext::attach();
            let gate = Gate::default();
            let handled = Arc::new(AtomicUsize::new(0));
            let quitter = Quitter {
                gate: gate.clone(),
                handled: handled.clone(),
            };
            let q = if threaded {
                cx.create(Threaded(quitter))
            } else {
                cx.create(quitter)
            };
            cx.send(q, 0u32);
            poll_until(WAIT, "the quitter holding request 0", || {
                (handled.load(Ordering::SeqCst) == 1).then_some(())
            });
            // Queued behind request 0: never read.
            for n in 1..=4u32 {
                cx.send(q, n);
            }
            // A fault is never answered (two ending objects cannot answer each other).
            cx.send(q, Faulted::new("an answer, not a request"));
            gate.open();
            let mut reasons = Vec::new();
            let mut returned = false;
            while reasons.len() < 4 || !returned {
                let e = cx.recv_timeout(WAIT).expect("an answer for every request");
                if e.is::<Returned>() {
                    returned = true;
                    continue;
                }
                assert_eq!(e.sender(), q, "answered from the quitter's address");
                reasons.push(unread_reason(e));
            }
            assert_eq!(handled.load(Ordering::SeqCst), 1, "threaded={threaded}");
            for r in &reasons {
                assert!(
                    r.contains("ended before it read") && r.contains("u32"),
                    "{r}"
                );
            }
            assert!(
                cx.recv_timeout(Duration::from_millis(200)).is_none(),
                "one answer each, and none for the fault"
            );
        }
    });
}

#[test]
fn messages_an_async_object_kept_with_select_are_answered_when_it_ends() {
    bounded(LIMIT, || {
        let mut cx = ThreadContext::attach();
        let a = cx.create(Async::new(|mut cx: AsyncContext| async move {
            // Waits for Stop only: everything else is kept, unread.
            cx.select::<(Stop,)>().await;
        }));
        for n in 0..3u32 {
            cx.send(a, n);
        }
        // Stop comes after the numbers: select reads past (and keeps) all three first.
        cx.stop(a);
        let mut faults = 0;
        let mut returned = false;
        while faults < 3 || !returned {
            let e = cx.recv_timeout(WAIT).expect("answers and Returned");
            if e.is::<Returned>() {
                returned = true;
            } else {
                assert!(unread_reason(e).contains("ended before it read"));
                faults += 1;
            }
        }
    });
}

#[test]
fn requests_queued_in_the_mailbox_of_a_failing_spool_are_answered() {
    bounded(LIMIT, || {
        let mut cx = ThreadContext::attach();
        let gate = Gate::default();
        let handled = Arc::new(AtomicUsize::new(0));
        let (g, h) = (gate.clone(), handled.clone());
        // One worker that ends on request 0: with no stand-down the spool fails.
        let spool = cx.create(
            Spool::of(move || {
                Threaded(Quitter {
                    gate: g.clone(),
                    handled: h.clone(),
                })
            })
            .workers(1)
            .stand_down(None),
        );
        cx.send(spool, 0u32);
        poll_until(WAIT, "the worker holding request 0", || {
            (handled.load(Ordering::SeqCst) == 1).then_some(())
        });
        for n in 1..=20u32 {
            cx.send(spool, n);
        }
        gate.open();
        let mut answers = 0;
        let mut returned = false;
        while answers < 21 || !returned {
            let e = cx.recv_timeout(WAIT).expect("every request answered");
            if e.is::<Returned>() {
                returned = true;
                continue;
            }
            assert!(e.is_fault(), "{:?}", e.message());
            answers += 1;
        }
        assert!(cx.recv_timeout(Duration::from_millis(200)).is_none());
    });
}

/// Counts what it handles; holds at the gate on request 0.
struct Counter {
    gate: Gate,
    handled: Arc<AtomicUsize>,
}

#[strata::machine]
impl Counter {
    fn number(&mut self, _cx: &mut Context<Self>, n: u32) -> u32 {
        self.handled.fetch_add(1, Ordering::SeqCst);
        if n == 0 {
            self.gate.pass();
        }
        n
    }
}

#[test]
fn a_request_taken_after_its_deadline_is_answered_timed_out_and_not_handled() {
    bounded(LIMIT, || {
        let mut cx = ThreadContext::attach();
        let gate = Gate::default();
        let handled = Arc::new(AtomicUsize::new(0));
        let c = cx.create(Threaded(Counter {
            gate: gate.clone(),
            handled: handled.clone(),
        }));
        let expired_before = strata::runtime::stats().expired;
        cx.send(c, 0u32);
        poll_until(WAIT, "the counter holding request 0", || {
            (handled.load(Ordering::SeqCst) == 1).then_some(())
        });
        let soon = Instant::now() + Duration::from_millis(20);
        cx.postbox().send_by(c, 1u32, soon);
        cx.postbox()
            .send_by(c, 2u32, Instant::now() + Duration::from_secs(3600));
        while Instant::now() < soon {
            std::thread::sleep(Duration::from_millis(5));
        }
        gate.open();
        let first = cx.recv_timeout(WAIT).expect("request 0 answered");
        assert_eq!(first.take::<u32>().unwrap(), 0);
        let late = cx.recv_timeout(WAIT).expect("request 1 answered");
        let t = late
            .take::<TimedOut>()
            .unwrap_or_else(|e| panic!("expected TimedOut, got {:?}", e.message()));
        assert_eq!(t.seconds, 0.0);
        assert!(t.to_string().contains("past its deadline"), "{t}");
        let in_time = cx.recv_timeout(WAIT).expect("request 2 answered");
        assert_eq!(in_time.take::<u32>().unwrap(), 2);
        assert_eq!(
            handled.load(Ordering::SeqCst),
            2,
            "request 1 was not handled"
        );
        assert!(strata::runtime::stats().expired > expired_before);
    });
}

fn stats(cx: &mut ThreadContext, spool: Address) -> SpoolStatistics {
    cx.ask_timeout(spool, SpoolStats, WAIT)
        .downcast::<SpoolStatistics>()
        .expect("statistics")
}

#[test]
fn a_spool_answers_timed_out_for_queued_requests_past_their_deadline_and_forwards_the_rest() {
    bounded(LIMIT, || {
        let mut cx = ThreadContext::attach();
        let gate = Gate::default();
        let handled = Arc::new(AtomicUsize::new(0));
        let (g, h) = (gate.clone(), handled.clone());
        let spool = cx.create(
            Spool::of(move || {
                Threaded(Counter {
                    gate: g.clone(),
                    handled: h.clone(),
                })
            })
            .workers(1),
        );
        cx.send(spool, 0u32);
        poll_until(WAIT, "the worker holding request 0", || {
            (handled.load(Ordering::SeqCst) == 1).then_some(())
        });
        let soon = Instant::now() + Duration::from_millis(20);
        for n in 1..=3u32 {
            cx.postbox().send_by(spool, n, soon);
        }
        // With a deadline far off: handled, and the deadline travels with it.
        cx.postbox()
            .send_by(spool, 4u32, Instant::now() + Duration::from_secs(3600));
        poll_until(WAIT, "all four queued", || {
            (stats(&mut cx, spool).queued == 4).then_some(())
        });
        while Instant::now() < soon {
            std::thread::sleep(Duration::from_millis(5));
        }
        gate.open();
        let mut numbers = Vec::new();
        let mut timed_out = 0;
        while numbers.len() + timed_out < 5 {
            let e = cx.recv_timeout(WAIT).expect("every request answered");
            if e.is::<TimedOut>() {
                timed_out += 1;
            } else {
                numbers.push(e.take::<u32>().expect("a number"));
            }
        }
        numbers.sort();
        assert_eq!(numbers, vec![0, 4]);
        assert_eq!(timed_out, 3);
        assert_eq!(
            handled.load(Ordering::SeqCst),
            2,
            "expired requests not worked"
        );
        let s = stats(&mut cx, spool);
        assert_eq!((s.expired, s.completed, s.failed), (3, 2, 0));
    });
}

/// Dies (panics) on the first request any worker of its kind sees; answers the rest.
struct Fragile {
    crashed: Arc<AtomicBool>,
}

#[strata::machine]
impl Fragile {
    fn number(&mut self, _cx: &mut Context<Self>, n: u32) -> u32 {
        if !self.crashed.swap(true, Ordering::SeqCst) {
            panic!("the first request kills its worker");
        }
        n * 10
    }
}

#[test]
fn with_retry_on_loss_a_request_whose_worker_died_is_answered_by_another() {
    bounded(LIMIT, || {
        for retry in [false, true] {
            let mut cx = ThreadContext::attach();
            let crashed = Arc::new(AtomicBool::new(false));
            let c = crashed.clone();
            let spool = cx.create(
                Spool::of(move || Fragile { crashed: c.clone() })
                    .workers(2)
                    .stand_down(Some(Duration::from_millis(10)))
                    .retry_on_loss(retry),
            );
            let answer = cx.ask_timeout(spool, 7u32, WAIT);
            let s = stats(&mut cx, spool);
            if retry {
                assert_eq!(answer.downcast::<u32>().expect("the answer"), 70);
                assert_eq!((s.retried, s.failed, s.completed), (1, 0, 1));
            } else {
                let f = answer.downcast::<Faulted>().expect("a fault");
                assert!(f.reason.contains("ended"), "{}", f.reason);
                assert_eq!((s.retried, s.failed), (0, 1));
            }
            cx.stop(spool);
        }
    });
}
