//! Several requests in flight per worker (`Spool::in_flight(k)`): a worker holds up to k
//! requests and answers them in order, each answer reaching its own client; the spool
//! queues only when every worker is full; a worker that ends answers every request it
//! held (faults, or with `retry_on_loss` other workers' answers).

mod support;

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use strata::prelude::*;
use strata::spool::{Spool, SpoolStatistics, SpoolStats};
use support::gate::Gate;
use support::{bounded, poll_until, WAIT};

const LIMIT: Duration = Duration::from_secs(60);

/// Answers `n` with `n * 10` (on its own thread), holding at the gate first; the first
/// 666 of all makes it panic (ending the worker with the requests behind it unread).
struct Slow {
    gate: Gate,
    started: Arc<AtomicUsize>,
    crashed: Arc<AtomicBool>,
}

#[strata::machine]
impl Slow {
    fn number(&mut self, _cx: &mut Context<Self>, n: u32) -> u32 {
        self.started.fetch_add(1, Ordering::SeqCst);
        self.gate.pass();
        if n == 666 && !self.crashed.swap(true, Ordering::SeqCst) {
            panic!("this worker dies holding requests");
        }
        n * 10
    }
}

fn stats(cx: &mut ThreadContext, spool: Address) -> SpoolStatistics {
    cx.ask_timeout(spool, SpoolStats, WAIT)
        .downcast::<SpoolStatistics>()
        .expect("statistics")
}

fn slow_spool(
    cx: &mut ThreadContext,
    workers: usize,
    k: usize,
    retry: bool,
) -> (Address, Gate, Arc<AtomicUsize>) {
    let gate = Gate::default();
    let started = Arc::new(AtomicUsize::new(0));
    let crashed = Arc::new(AtomicBool::new(false));
    let (g, s) = (gate.clone(), started.clone());
    let spool = cx.create(
        Spool::of(move || {
            Threaded(Slow {
                gate: g.clone(),
                started: s.clone(),
                crashed: crashed.clone(),
            })
        })
        .workers(workers)
        .in_flight(k)
        .retry_on_loss(retry)
        .stand_down(Some(Duration::from_millis(10))),
    );
    (spool, gate, started)
}

#[test]
fn each_worker_holds_k_requests_and_every_answer_reaches_its_own_client() {
    bounded(LIMIT, || {
        let mut cx = ThreadContext::attach();
        let (spool, gate, started) = slow_spool(&mut cx, 2, 3, false);
        // Seven clients, seven numbers: six fill the two workers, the seventh queues.
        let mut clients: Vec<ThreadContext> = (0..7).map(|_| ThreadContext::attach()).collect();
        for (i, c) in clients.iter_mut().enumerate() {
            c.send(spool, i as u32 + 1);
        }
        poll_until(WAIT, "six in flight, one queued", || {
            let s = stats(&mut cx, spool);
            (s.queued == 1 && s.admitted == 7 && started.load(Ordering::SeqCst) == 2).then_some(s)
        });
        let s = stats(&mut cx, spool);
        assert_eq!((s.idle, s.workers), (0, 2), "{s:?}");
        gate.open();
        for (i, c) in clients.iter_mut().enumerate() {
            let e = c.recv_timeout(WAIT).expect("an answer for every client");
            assert_eq!(e.take::<u32>().expect("a number"), (i as u32 + 1) * 10);
        }
        let s = stats(&mut cx, spool);
        assert_eq!(
            (s.completed, s.failed, s.queued, s.idle),
            (7, 0, 0, 2),
            "{s:?}"
        );
    });
}

#[test]
fn a_worker_that_ends_holding_k_requests_answers_all_of_them() {
    bounded(LIMIT, || {
        for retry in [false, true] {
            let mut cx = ThreadContext::attach();
            // One worker first, so all three requests are its own.
            let (spool, gate, started) = slow_spool(&mut cx, 1, 3, retry);
            let mut clients: Vec<ThreadContext> = (0..3).map(|_| ThreadContext::attach()).collect();
            clients[0].send(spool, 666u32);
            clients[1].send(spool, 2u32);
            clients[2].send(spool, 3u32);
            poll_until(WAIT, "the worker holding three", || {
                let s = stats(&mut cx, spool);
                (started.load(Ordering::SeqCst) == 1 && s.admitted == 3 && s.queued == 0)
                    .then_some(())
            });
            gate.open();
            let answers: Vec<Envelope> = clients
                .iter_mut()
                .map(|c| c.recv_timeout(WAIT).expect("every request answered"))
                .collect();
            let s = stats(&mut cx, spool);
            if retry {
                // The one its worker died on and the two it never read: all three done
                // by the replacement, in their order.
                assert_eq!(answers[0].get::<u32>(), Some(&6660));
                assert_eq!(answers[1].get::<u32>(), Some(&20));
                assert_eq!(answers[2].get::<u32>(), Some(&30));
                assert_eq!((s.retried, s.failed, s.completed), (3, 0, 3), "{s:?}");
            } else {
                for a in &answers {
                    let f = a
                        .get::<Faulted>()
                        .unwrap_or_else(|| panic!("{:?}", a.message()));
                    assert!(f.reason.contains("ended"), "{}", f.reason);
                }
                assert_eq!((s.failed, s.completed), (3, 0), "{s:?}");
            }
            for c in clients.iter_mut() {
                assert!(
                    c.recv_timeout(Duration::from_millis(100)).is_none(),
                    "one answer each"
                );
            }
            cx.stop(spool);
        }
    });
}

#[test]
fn in_flight_out_of_range_is_refused_naming_the_parameter() {
    let mut cx = ThreadContext::attach();
    let spool = cx.create(
        Spool::of(|| {
            Threaded(Slow {
                gate: Gate::default(),
                started: Arc::new(AtomicUsize::new(0)),
                crashed: Arc::new(AtomicBool::new(false)),
            })
        })
        .in_flight(0),
    );
    let value = support::returned_from(&mut cx, spool, WAIT);
    let f = value.downcast::<Faulted>().expect("a fault");
    assert!(f.reason.contains("in_flight"), "{}", f.reason);
}
