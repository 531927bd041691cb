//! Timers: named by their message type; start, cancel, restart, repeat; delivered to
//! every kind of object.
//!
//! Timing is asserted only with generous bounds: a timer never fires before its delay,
//! and fires within a few seconds of it.

mod support;

use std::time::{Duration, Instant};

use strata::prelude::*;
use support::{bounded, drain, expect_message, returned_from, until, WAIT};

/// A user timer type carrying a value.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Message)]
struct Tick(u32);

const LATE: Duration = Duration::from_secs(5);

fn assert_between(elapsed: Duration, at_least: Duration, what: &str) {
    assert!(
        elapsed >= at_least,
        "{what} fired after {elapsed:?}, before its {at_least:?}"
    );
    assert!(
        elapsed < at_least + LATE,
        "{what} fired only after {elapsed:?} (due at {at_least:?})"
    );
}

#[test]
fn a_timer_fires_after_its_delay_from_the_object_itself() {
    bounded(Duration::from_secs(60), || {
        let mut cx = ThreadContext::attach();
        let t0 = Instant::now();
        cx.start(T1, Duration::from_millis(50));
        let (T1, from) = expect_message::<T1>(&mut cx, WAIT);
        assert_between(t0.elapsed(), Duration::from_millis(50), "T1");
        assert_eq!(from, cx.address(), "a timer message comes from the object");
        assert!(
            !cx.cancel::<T1>(),
            "a fired one-shot timer is no longer running"
        );
        assert!(
            drain(&mut cx, Duration::from_millis(100)).is_empty(),
            "a one-shot timer fires once"
        );
    });
}

#[test]
fn a_cancelled_timer_never_delivers() {
    bounded(Duration::from_secs(60), || {
        let mut cx = ThreadContext::attach();
        cx.start(T1, Duration::from_millis(30));
        cx.start(Tick(5), Duration::from_millis(10));
        assert!(cx.cancel::<T1>());
        assert!(!cx.cancel::<T1>(), "already cancelled");
        cx.start(T2, Duration::from_millis(150));
        // Cancel a timer that has most likely already fired and is waiting in the mailbox.
        std::thread::sleep(Duration::from_millis(40));
        assert!(cx.cancel::<Tick>());
        let got = until::<T2>(&mut cx, WAIT, Duration::from_millis(100));
        let names: Vec<_> = got.iter().map(|e| e.type_name()).collect();
        assert_eq!(names, vec!["T2"], "only the timer left running fires");
    });
}

#[test]
fn restarting_a_timer_replaces_it() {
    bounded(Duration::from_secs(60), || {
        let mut cx = ThreadContext::attach();
        cx.start(Tick(1), Duration::from_millis(40));
        let t0 = Instant::now();
        cx.start(Tick(2), Duration::from_millis(120));
        let (tick, _) = expect_message::<Tick>(&mut cx, WAIT);
        assert_eq!(tick, Tick(2));
        assert_between(t0.elapsed(), Duration::from_millis(120), "Tick(2)");
        // Restart after firing, and restart a timer that already fired into the mailbox.
        cx.start(Tick(3), Duration::from_millis(10));
        std::thread::sleep(Duration::from_millis(60));
        cx.start(Tick(4), Duration::from_millis(30));
        cx.start(T1, Duration::from_millis(80));
        let got = until::<T1>(&mut cx, WAIT, Duration::from_millis(100));
        let mut names: Vec<_> = got.iter().map(|e| format!("{:?}", e.message())).collect();
        names.sort();
        assert_eq!(
            names,
            vec!["T1:T1", "Tick:Tick(4)"],
            "a replaced timer never delivers"
        );
    });
}

#[test]
fn several_named_timers_run_at_once() {
    bounded(Duration::from_secs(60), || {
        let mut cx = ThreadContext::attach();
        let t0 = Instant::now();
        cx.start(T1, Duration::from_millis(30));
        cx.start(T2, Duration::from_millis(60));
        cx.start(T3, Duration::from_millis(90));
        cx.start(Tick(7), Duration::from_millis(120));
        let due = |name: &str| match name {
            "T1" => 30,
            "T2" => 60,
            "T3" => 90,
            "Tick" => 120,
            other => panic!("unexpected {other}"),
        };
        let mut seen = Vec::new();
        for _ in 0..4 {
            let e = cx.recv_timeout(WAIT).expect("a timer");
            let name = e.type_name();
            assert_between(t0.elapsed(), Duration::from_millis(due(name)), name);
            if name == "Tick" {
                assert_eq!(e.get::<Tick>(), Some(&Tick(7)));
            }
            seen.push(name);
        }
        seen.sort_unstable();
        assert_eq!(seen, vec!["T1", "T2", "T3", "Tick"]);
        assert!(drain(&mut cx, Duration::from_millis(150)).is_empty());
    });
}

#[test]
fn a_repeating_timer_ticks_until_cancelled() {
    bounded(Duration::from_secs(60), || {
        let mut cx = ThreadContext::attach();
        let every = Duration::from_millis(20);
        let t0 = Instant::now();
        cx.start_repeating(Tick(9), every);
        for k in 1..=5u32 {
            let (tick, _) = expect_message::<Tick>(&mut cx, WAIT);
            assert_eq!(tick, Tick(9));
            let elapsed = t0.elapsed();
            assert!(
                elapsed >= every * k,
                "tick {k} came after {elapsed:?}, before {:?}",
                every * k
            );
        }
        assert!(cx.cancel::<Tick>(), "a repeating timer keeps running");
        // Ticks already queued when it was cancelled are dropped too.
        assert!(drain(&mut cx, Duration::from_millis(150)).is_empty());
        // Restarting a repeating timer as a one-shot makes it fire once.
        cx.start_repeating(T4, Duration::from_millis(10));
        cx.start(T4, Duration::from_millis(30));
        cx.start(T3, Duration::from_millis(80));
        let got = until::<T3>(&mut cx, WAIT, Duration::from_millis(100));
        let mut names: Vec<_> = got.iter().map(|e| e.type_name()).collect();
        names.sort_unstable();
        assert_eq!(names, vec!["T3", "T4"]);
    });
}

#[test]
fn a_function_object_gets_its_timers() {
    bounded(Duration::from_secs(60), || {
        let mut cx = ThreadContext::attach();
        let child = cx.create(Thread::new(|cx: &mut ThreadContext| {
            let t0 = Instant::now();
            cx.start(T2, Duration::from_millis(40));
            cx.start(T1, Duration::from_millis(20));
            let mut order = Vec::new();
            for _ in 0..2 {
                match cx.recv_timeout(WAIT) {
                    Some(e) if e.sender() == cx.address() => order.push(e.type_name().to_string()),
                    _ => return Err(Faulted::new("a timer did not arrive")),
                }
            }
            Ok((order, t0.elapsed().as_millis() as u64))
        }));
        let value = returned_from(&mut cx, child, WAIT);
        let (mut order, ms) = value
            .downcast::<(Vec<String>, u64)>()
            .unwrap_or_else(|v| panic!("{v:?}"));
        order.sort();
        assert_eq!(order, vec!["T1", "T2"]);
        assert!((40..5040).contains(&ms), "{ms} ms");
    });
}

/// Starts T1 and T2, cancels T1, restarts T3 twice, and reports what fired.
struct Timed {
    t0: Option<Instant>,
    fired: Vec<String>,
}

#[strata::machine]
impl Timed {
    fn start(&mut self, cx: &mut Context<Self>, _: Start) {
        self.t0 = Some(Instant::now());
        cx.start(T1, Duration::from_millis(20));
        cx.start(T2, Duration::from_millis(60));
        cx.start(T3, Duration::from_millis(10));
        cx.start(T3, Duration::from_millis(40));
        assert!(cx.cancel::<T1>());
    }
    fn t1(&mut self, _cx: &mut Context<Self>, _: T1) {
        self.fired.push("T1".into());
    }
    fn t3(&mut self, cx: &mut Context<Self>, _: T3) {
        let ms = self.t0.expect("started").elapsed().as_millis();
        self.fired
            .push(format!("T3 from self: {}", cx.sender() == cx.address()));
        self.fired.push(format!("T3 late enough: {}", ms >= 40));
    }
    fn t2(&mut self, cx: &mut Context<Self>, _: T2) {
        self.fired.push("T2".into());
        // Wait a little longer for anything that should not come.
        cx.start(T4, Duration::from_millis(100));
    }
    fn t4(&mut self, cx: &mut Context<Self>, _: T4) {
        let fired = std::mem::take(&mut self.fired);
        cx.complete(fired);
    }
}

#[test]
fn a_machine_gets_its_timers() {
    for threaded in [false, true] {
        bounded(Duration::from_secs(60), move || {
            let mut cx = ThreadContext::attach();
            let timed = Timed {
                t0: None,
                fired: Vec::new(),
            };
            let m = if threaded {
                cx.create(Threaded(timed))
            } else {
                cx.create(timed)
            };
            let value = returned_from(&mut cx, m, WAIT);
            let mut fired = value
                .downcast::<Vec<String>>()
                .unwrap_or_else(|v| panic!("threaded: {threaded}: {v:?}"));
            fired.sort();
            assert_eq!(
                fired,
                vec!["T2", "T3 from self: true", "T3 late enough: true"],
                "threaded: {threaded}"
            );
        });
    }
}

#[test]
fn an_async_object_gets_its_timers() {
    bounded(Duration::from_secs(60), || {
        let mut cx = ThreadContext::attach();
        let child = cx.create(Async::new(|mut cx: AsyncContext| async move {
            let t0 = Instant::now();
            cx.start(Tick(3), Duration::from_millis(30));
            let e = cx.recv_timeout(WAIT).await;
            let ms = t0.elapsed().as_millis() as u64;
            match e {
                Some(e) if e.sender() == cx.address() => Ok((e.take::<Tick>().ok(), ms)),
                _ => Err(Faulted::new("no timer")),
            }
        }));
        let value = returned_from(&mut cx, child, WAIT);
        let (tick, ms) = value
            .downcast::<(Option<Tick>, u64)>()
            .unwrap_or_else(|v| panic!("{v:?}"));
        assert_eq!(tick, Some(Tick(3)));
        assert!((30..5030).contains(&ms), "{ms} ms");
    });
}
