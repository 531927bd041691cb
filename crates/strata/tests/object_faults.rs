//! A panic inside an object ends that object with `Faulted` (naming the panic), returned
//! to its parent; the process and every other object keep working.

mod support;

use std::time::Duration;

use strata::prelude::*;
use support::{bounded, collect_returned, expect_message, returned_from, WAIT};

#[derive(Debug, Serialize, Deserialize, Message)]
struct Explode(String);

/// Panics on `Explode`, answers `Ping` otherwise.
struct Fragile;

#[strata::machine]
impl Fragile {
    fn explode(&mut self, _cx: &mut Context<Self>, m: Explode) {
        panic!("machine says {}", m.0);
    }
    fn ping(&mut self, _cx: &mut Context<Self>, _: Ping) -> Ack {
        Ack
    }
}

fn assert_faulted(value: &AnyMessage, text: &str) {
    let fault = value
        .downcast_ref::<Faulted>()
        .unwrap_or_else(|| panic!("expected Faulted, got {value:?}"));
    assert!(
        fault.reason.contains(text),
        "the reason names the panic: {}",
        fault.reason
    );
    assert!(value.is_fault());
}

#[test]
fn a_panicking_machine_handler_returns_faulted_to_its_parent() {
    bounded(Duration::from_secs(60), || {
        let mut cx = ThreadContext::attach();
        let faulted_before = strata::runtime::stats().faulted;
        for threaded in [false, true] {
            let m = if threaded {
                cx.create(Threaded(Fragile))
            } else {
                cx.create(Fragile)
            };
            cx.send(m, Ping);
            let (Ack, _) = expect_message::<Ack>(&mut cx, WAIT);
            cx.send(m, Explode(format!("kaboom-{threaded}")));
            let value = returned_from(&mut cx, m, WAIT);
            assert_faulted(&value, &format!("machine says kaboom-{threaded}"));
            // The address is gone: nothing more is delivered to it.
            assert!(matches!(
                cx.try_send(m, Ping),
                Err(strata::SendError::NoSuchObject { .. })
            ));
        }
        assert!(strata::runtime::stats().faulted >= faulted_before + 2);
    });
}

#[test]
fn a_panicking_function_object_returns_faulted_to_its_parent() {
    bounded(Duration::from_secs(60), || {
        let mut cx = ThreadContext::attach();
        let t = cx.create(Thread::new(|_cx: &mut ThreadContext| -> u32 {
            panic!("thread gave up at step {}", 3)
        }));
        let value = returned_from(&mut cx, t, WAIT);
        assert_faulted(&value, "thread gave up at step 3");
    });
}

#[test]
fn a_panicking_async_object_returns_faulted_to_its_parent() {
    bounded(Duration::from_secs(60), || {
        let mut cx = ThreadContext::attach();
        let a = cx.create(Async::new(|mut cx: AsyncContext| async move {
            let e = cx.recv_timeout(WAIT).await;
            if e.is_some() {
                panic!("async object failed on purpose");
            }
            0u8
        }));
        cx.send(a, Ping);
        let value = returned_from(&mut cx, a, WAIT);
        assert_faulted(&value, "async object failed on purpose");
    });
}

/// Creates a child that panics and reports what the child returned, as a machine
/// parent sees it (through a typed `Returned` handler).
struct Guardian {
    probe: Address,
}

#[strata::machine]
impl Guardian {
    fn start(&mut self, cx: &mut Context<Self>, _: Start) {
        cx.create(Async::new(|_cx: AsyncContext| async move {
            let v: Vec<u8> = std::hint::black_box(Vec::new());
            v[2] // index out of bounds
        }));
    }
    fn returned(&mut self, cx: &mut Context<Self>, r: Returned) {
        let reason = r.value.as_fault().map(|f| f.reason()).unwrap_or_default();
        cx.send(self.probe, reason);
    }
}

#[test]
fn a_machine_parent_receives_its_childs_fault() {
    bounded(Duration::from_secs(60), || {
        let mut cx = ThreadContext::attach();
        let me = cx.address();
        let g = cx.create(Guardian { probe: me });
        let (reason, from) = expect_message::<String>(&mut cx, WAIT);
        assert_eq!(from, g);
        assert!(reason.contains("index out of bounds"), "{reason}");
        assert!(reason.starts_with("Faulted"), "{reason}");
    });
}

#[test]
fn the_process_keeps_working_after_many_panics() {
    bounded(Duration::from_secs(120), || {
        let mut cx = ThreadContext::attach();
        let mut panicking = Vec::new();
        for i in 0..50u32 {
            panicking.push(cx.create(Async::new(move |_cx: AsyncContext| async move {
                if i < 1000 {
                    panic!("async {i}");
                }
                i
            })));
            let m = cx.create(Fragile);
            cx.send(m, Explode(format!("m{i}")));
            panicking.push(m);
        }
        let values = collect_returned(&mut cx, panicking.len(), WAIT);
        assert!(values.values().all(|v| v.is::<Faulted>()));
        // Fresh objects of every kind work normally.
        let m = cx.create(Fragile);
        cx.send(m, Ping);
        let (Ack, from) = expect_message::<Ack>(&mut cx, WAIT);
        assert_eq!(from, m);
        let t = cx.create(Thread::new(|_cx: &mut ThreadContext| 11u8));
        assert_eq!(
            returned_from(&mut cx, t, WAIT).downcast_ref::<u8>(),
            Some(&11)
        );
        let a = cx.create(Async::new(|_cx: AsyncContext| async move { 12u8 }));
        assert_eq!(
            returned_from(&mut cx, a, WAIT).downcast_ref::<u8>(),
            Some(&12)
        );
    });
}
