//! Direct runs: a message that finds a machine idle is handled on the sending thread.
//! These tests hold that to the rules of queued delivery: handlers never overlap, chains
//! deeper than the direct-run budget still complete, a panic stays in the machine that
//! panicked, a machine that ends in a direct run really ends, and handlers run this way
//! can use tokio as they would on the runtime.

mod support;

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use strata::prelude::*;
use support::{bounded, collect_returned, returned_from, WAIT};

#[derive(Debug, Serialize, Deserialize, Message)]
struct Hop(u32);

#[derive(Debug, Serialize, Deserialize, Message)]
struct Boom;

#[derive(Debug, Serialize, Deserialize, Message)]
struct Quit;

#[derive(Debug, Serialize, Deserialize, Message)]
struct OnRuntime;

#[derive(Debug, Serialize, Deserialize, Message)]
struct WhichThread;

#[derive(Debug, Serialize, Deserialize, Message)]
struct SlowWhichThread;

/// Forwards every `Hop` to the next link of a chain (keeping the sender); the last link
/// answers with the hop's number plus the chain's length.
struct Link {
    next: Option<Address>,
    length: u32,
}

#[strata::machine]
impl Link {
    fn hop(&mut self, cx: &mut Context<Self>, m: Hop) {
        match self.next {
            Some(next) => cx.forward(next, m),
            None => cx.reply(m.0 + self.length),
        }
    }
}

#[test]
fn a_chain_deeper_than_the_direct_budget_answers_every_request_in_order() {
    bounded(Duration::from_secs(60), || {
        let mut cx = ThreadContext::attach();
        const LENGTH: u32 = 12;
        let mut next = None;
        for _ in 0..LENGTH {
            next = Some(cx.create(Link {
                next,
                length: LENGTH,
            }));
        }
        let head = next.expect("a chain");
        // From a function object (its thread runs idle machines directly) and from this
        // attached thread (which always queues).
        let client = cx.create(Thread::new(move |cx: &mut ThreadContext| {
            for n in 0..2_000u32 {
                cx.send(head, Hop(n));
                let answer = cx
                    .recv_timeout(WAIT)
                    .ok_or_else(|| Faulted::new(format!("no answer to hop {n}")))?;
                match answer.take::<u32>() {
                    Ok(v) if v == n + LENGTH => {}
                    Ok(v) => return Err(Faulted::new(format!("hop {n} answered {v}"))),
                    Err(other) => {
                        return Err(Faulted::new(format!("hop {n}: {}", other.type_name())))
                    }
                }
            }
            Ok::<u32, Faulted>(2_000)
        }));
        for n in 0..500u32 {
            cx.send(head, Hop(n));
        }
        for n in 0..500u32 {
            let answer = cx.recv_timeout(WAIT).expect("an answer");
            assert_eq!(answer.take::<u32>().expect("a number"), n + LENGTH);
        }
        let value = returned_from(&mut cx, client, WAIT);
        assert_eq!(value.downcast::<u32>().expect("the client finished"), 2_000);
    });
}

/// Counts messages and notices if two handlers ever run at once.
struct Exclusive {
    inside: Arc<AtomicBool>,
    overlaps: Arc<AtomicU32>,
    seen: u32,
    total: u32,
}

#[strata::machine]
impl Exclusive {
    fn hop(&mut self, cx: &mut Context<Self>, _: Hop) {
        if self.inside.swap(true, Ordering::SeqCst) {
            self.overlaps.fetch_add(1, Ordering::SeqCst);
        }
        // A little work, so that overlapping runs would have time to meet.
        let mut x = 0u64;
        for i in 0..200u64 {
            x = std::hint::black_box(x.wrapping_mul(31).wrapping_add(i));
        }
        self.seen += 1;
        self.inside.store(false, Ordering::SeqCst);
        if self.seen == self.total {
            cx.complete(self.seen);
        }
    }
}

#[test]
fn handlers_never_overlap_when_many_threads_send_at_once() {
    bounded(Duration::from_secs(60), || {
        let mut cx = ThreadContext::attach();
        let overlaps = Arc::new(AtomicU32::new(0));
        const SENDERS: u32 = 8;
        const EACH: u32 = 5_000;
        let target = cx.create_with(
            Exclusive {
                inside: Arc::new(AtomicBool::new(false)),
                overlaps: overlaps.clone(),
                seen: 0,
                total: SENDERS * EACH,
            },
            Options::default().capacity(1 << 20),
        );
        let mut senders = Vec::new();
        for _ in 0..SENDERS {
            senders.push(cx.create(Thread::new(move |cx: &mut ThreadContext| {
                for n in 0..EACH {
                    cx.send(target, Hop(n));
                }
                EACH
            })));
        }
        let ended = collect_returned(&mut cx, senders.len() + 1, Duration::from_secs(40));
        let value = ended.get(&target).expect("the target returned");
        assert_eq!(value.downcast_ref::<u32>(), Some(&(SENDERS * EACH)));
        assert_eq!(overlaps.load(Ordering::SeqCst), 0, "handlers overlapped");
        for s in &senders {
            let value = ended.get(s).expect("every sender returned");
            assert_eq!(value.downcast_ref::<u32>(), Some(&EACH));
        }
    });
}

/// The thread each `Boom` and `Quit` handler ran on, by the machine's address (those
/// handlers cannot answer with it).
static RAN_ON: Mutex<Option<HashMap<(Address, &'static str), String>>> = Mutex::new(None);

fn note_thread(machine: Address, handler: &'static str) {
    RAN_ON
        .lock()
        .unwrap()
        .get_or_insert_with(HashMap::new)
        .insert((machine, handler), thread_name());
}

fn ran_on(machine: Address, handler: &'static str) -> Option<String> {
    RAN_ON
        .lock()
        .unwrap()
        .as_ref()
        .and_then(|m| m.get(&(machine, handler)).cloned())
}

/// Panics on `Boom`, ends on `Quit` (both note the thread they ran on), answers
/// `OnRuntime` with whether it could reach the tokio runtime from where it ran.
struct Fragile;

#[strata::machine]
impl Fragile {
    fn boom(&mut self, cx: &mut Context<Self>, _: Boom) {
        note_thread(cx.address(), "boom");
        panic!("boom in a handler");
    }
    fn quit(&mut self, cx: &mut Context<Self>, _: Quit) {
        note_thread(cx.address(), "quit");
        cx.complete(7u32);
    }
    fn on_runtime(&mut self, _cx: &mut Context<Self>, _: OnRuntime) -> bool {
        tokio::runtime::Handle::try_current().is_ok()
    }
    fn which_thread(&mut self, _cx: &mut Context<Self>, _: WhichThread) -> String {
        thread_name()
    }
    fn slow_which_thread(&mut self, _cx: &mut Context<Self>, _: SlowWhichThread) -> String {
        std::thread::sleep(Duration::from_millis(2));
        thread_name()
    }
}

/// The name of the current thread (`strata-t…` for function objects, `strata-rt` for the
/// runtime's).
fn thread_name() -> String {
    std::thread::current().name().unwrap_or("").to_string()
}

/// Creates a function object that runs `body` once a send of its to `machine` has been
/// handled directly (on its own thread): the machine has handled `Start` and is idle.
/// The probe panics (its value is a fault) if that never happens in 200 tries.
fn probe<R: strata::IntoValue>(
    cx: &mut ThreadContext,
    machine: Address,
    body: impl FnOnce(&mut ThreadContext) -> R + Send + 'static,
) -> Address {
    probe_by(cx, machine, || WhichThread, body)
}

/// [`probe`], trying with the messages `ask` makes (which must be answered with the
/// handler's thread name).
fn probe_by<M: Message, R: strata::IntoValue>(
    cx: &mut ThreadContext,
    machine: Address,
    ask: fn() -> M,
    body: impl FnOnce(&mut ThreadContext) -> R + Send + 'static,
) -> Address {
    cx.create(Thread::new(move |cx: &mut ThreadContext| {
        for _ in 0..200 {
            cx.send(machine, ask());
            let answer = cx.recv_timeout(WAIT).and_then(|e| e.take::<String>().ok());
            if answer.as_deref() == Some(thread_name().as_str()) {
                return body(cx);
            }
            std::thread::sleep(Duration::from_millis(5));
        }
        panic!("the machine never ran a send directly")
    }))
}

#[test]
fn a_machine_with_slow_handlers_goes_back_to_its_own_task() {
    bounded(Duration::from_secs(30), || {
        let mut cx = ThreadContext::attach();
        let fragile = cx.create(Fragile);
        // The probe's first direct run (which is always timed) is a slow one; the next
        // send must find the machine paused for direct runs.
        let probe = probe_by(
            &mut cx,
            fragile,
            || SlowWhichThread,
            move |cx| {
                cx.send(fragile, SlowWhichThread);
                let answer = cx.recv_timeout(WAIT).and_then(|e| e.take::<String>().ok());
                answer.unwrap_or_default()
            },
        );
        let value = returned_from(&mut cx, probe, WAIT);
        let next = value.downcast::<String>().expect("the probe's result");
        assert!(next.starts_with("strata-rt"), "then on the runtime: {next}");
    });
}

#[test]
fn an_idle_machine_runs_on_the_senders_thread_and_a_busy_one_on_its_own() {
    bounded(Duration::from_secs(30), || {
        let mut cx = ThreadContext::attach();
        let fragile = cx.create(Fragile);
        let probe = probe(&mut cx, fragile, move |cx: &mut ThreadContext| {
            // A direct run timed at 50 us or more (this thread preempted on a busy
            // machine) makes the machine queue for 100 ms: then try again past the pause.
            let mut answer = String::new();
            for _ in 0..5 {
                cx.send(fragile, WhichThread);
                answer = cx
                    .recv_timeout(WAIT)
                    .and_then(|e| e.take::<String>().ok())
                    .unwrap_or_default();
                if answer == thread_name() {
                    break;
                }
                std::thread::sleep(Duration::from_millis(150));
            }
            vec![thread_name(), answer]
        });
        let value = returned_from(&mut cx, probe, WAIT);
        let names = value.downcast::<Vec<String>>().expect("the probe's result");
        assert!(names[0].starts_with("strata-t"), "{names:?}");
        assert_eq!(names[0], names[1], "the handler ran on the sender's thread");
        // This attached thread never runs handlers itself: the machine's task does, on
        // the runtime.
        cx.send(fragile, WhichThread);
        let (name, _) = support::expect_message::<String>(&mut cx, WAIT);
        assert!(name.starts_with("strata-rt"), "{name}");
    });
}

#[test]
fn a_panic_in_a_direct_run_stays_with_the_machine() {
    bounded(Duration::from_secs(30), || {
        let mut cx = ThreadContext::attach();
        let fragile = cx.create(Fragile);
        let me = cx.address();
        // The function object's send runs the handler on its thread; the panic must end
        // the machine with a fault, not unwind into the sender.
        let sender = probe(&mut cx, fragile, move |cx: &mut ThreadContext| {
            cx.send(fragile, Boom);
            cx.send(me, Hop(1));
            thread_name()
        });
        let mut saw_fault = false;
        let mut saw_hop = false;
        let mut sender_done = false;
        while !(saw_fault && saw_hop && sender_done) {
            let e = cx.recv_timeout(WAIT).expect("the next event");
            let from = e.sender();
            if e.is::<Hop>() {
                saw_hop = true;
            } else if let Ok(Returned { value }) = e.take::<Returned>() {
                if from == fragile {
                    let fault = value.as_fault().expect("the machine failed");
                    assert!(fault.reason().contains("boom"), "{}", fault.reason());
                    saw_fault = true;
                } else if from == sender {
                    let name = value.downcast::<String>().expect("the sender went on");
                    assert_eq!(
                        ran_on(fragile, "boom").as_deref(),
                        Some(name.as_str()),
                        "the panicking handler ran on the sender's thread"
                    );
                    sender_done = true;
                }
            }
        }
    });
}

#[test]
fn a_machine_that_ends_in_a_direct_run_is_gone() {
    bounded(Duration::from_secs(30), || {
        let mut cx = ThreadContext::attach();
        let fragile = cx.create(Fragile);
        let probe = probe(&mut cx, fragile, move |cx: &mut ThreadContext| {
            cx.send(fragile, OnRuntime);
            let reached = cx
                .recv_timeout(WAIT)
                .and_then(|e| e.take::<bool>().ok())
                .unwrap_or(false);
            cx.send(fragile, Quit);
            // The machine ended during that send: later sends find nobody.
            let after = cx.try_send(fragile, Quit);
            (vec![reached, after.is_err()], thread_name())
        });
        let value = returned_from(&mut cx, fragile, WAIT);
        assert_eq!(value.downcast::<u32>().expect("ended with its value"), 7);
        let value = returned_from(&mut cx, probe, WAIT);
        let (probe, name) = value
            .downcast::<(Vec<bool>, String)>()
            .expect("the probe's result");
        assert_eq!(
            ran_on(fragile, "quit").as_deref(),
            Some(name.as_str()),
            "the machine ended in a direct run"
        );
        assert!(
            probe[0],
            "a handler run on a function object's thread reaches tokio"
        );
        assert!(probe[1], "a machine that ended refuses messages");
    });
}
