//! The kinds of object: many async objects and machines, threaded machines, handler
//! dispatch (typed, catch-alls, states).

mod support;

use std::time::Duration;

use strata::prelude::*;
use support::{bounded, collect_returned, expect_message, returned_from, select_message, WAIT};

#[test]
fn a_hundred_thousand_async_objects_all_return_their_values() {
    const N: u64 = 100_000;
    bounded(Duration::from_secs(300), || {
        let mut cx = ThreadContext::attach();
        let mut expected = std::collections::HashMap::with_capacity(N as usize);
        for i in 0..N {
            // Every other object also waits for a message before it returns.
            let a = if i % 2 == 0 {
                cx.create(Async::new(move |_cx: AsyncContext| async move { i * 3 }))
            } else {
                let a = cx.create(Async::new(move |mut cx: AsyncContext| async move {
                    match cx.recv_timeout(WAIT).await {
                        Some(e) => e.take::<u64>().map(|k| k * 3).unwrap_or(u64::MAX),
                        None => u64::MAX,
                    }
                }));
                cx.send(a, i);
                a
            };
            expected.insert(a, i * 3);
        }
        let values = collect_returned(&mut cx, N as usize, Duration::from_secs(240));
        assert_eq!(values.len(), N as usize);
        for (a, v) in values {
            let want = expected
                .remove(&a)
                .unwrap_or_else(|| panic!("a Returned from {a}, not one of ours"));
            assert_eq!(v.downcast_ref::<u64>(), Some(&want), "object {a}: {v:?}");
        }
        assert!(expected.is_empty());
        assert_eq!(cx.children().count(), 0, "every child noted as returned");
    });
}

/// Ends as soon as it starts, with twice its number.
struct Doubler(u64);

#[strata::machine]
impl Doubler {
    fn start(&mut self, cx: &mut Context<Self>, _: Start) {
        cx.complete(self.0 * 2);
    }
}

#[test]
fn many_machines_all_return_their_values() {
    const N: u64 = 20_000;
    bounded(Duration::from_secs(240), || {
        let mut cx = ThreadContext::attach();
        let addresses: Vec<Address> = (0..N).map(|i| cx.create(Doubler(i))).collect();
        let mut values = collect_returned(&mut cx, N as usize, Duration::from_secs(200));
        for (i, a) in addresses.iter().enumerate() {
            let v = values.remove(a).expect("every machine returned");
            assert_eq!(v.downcast_ref::<u64>(), Some(&(i as u64 * 2)));
        }
    });
}

#[derive(Debug, Serialize, Deserialize, Message)]
struct WhereAreYou;

/// Answers with the name of the thread its handler runs on.
struct Whereabouts;

#[strata::machine]
impl Whereabouts {
    fn ask(&mut self, _cx: &mut Context<Self>, _: WhereAreYou) -> String {
        std::thread::current().name().unwrap_or("").to_string()
    }
}

#[test]
fn a_threaded_machine_runs_on_a_thread_of_its_own() {
    bounded(Duration::from_secs(60), || {
        let mut cx = ThreadContext::attach();
        let threaded = cx.create(Threaded(Whereabouts));
        let shared = cx.create(Whereabouts);
        let mut names = Vec::new();
        for _ in 0..3 {
            cx.send(threaded, WhereAreYou);
            let (name, from) = expect_message::<String>(&mut cx, WAIT);
            assert_eq!(from, threaded);
            names.push(name);
        }
        let expected = format!("strata-m{}", threaded.object());
        assert!(names[0].starts_with("strata-m"), "{names:?}");
        assert!(
            names.iter().all(|n| *n == expected),
            "always the same thread, named for the object: {names:?}"
        );
        cx.send(shared, WhereAreYou);
        let (name, _) = expect_message::<String>(&mut cx, WAIT);
        assert!(
            name.starts_with("strata-rt"),
            "a plain machine runs on the shared runtime: {name}"
        );
        // A threaded machine stops like any other.
        cx.stop(threaded);
        let value = returned_from(&mut cx, threaded, WAIT);
        assert!(value.is::<Aborted>(), "{value:?}");
    });
}

#[derive(Debug, Serialize, Deserialize, Message)]
struct Add(i64, i64);

/// How a message was handled.
#[derive(Debug, PartialEq, Serialize, Deserialize, Message)]
enum Handled {
    Typed(i64),
    Fault { kind: String, reason: String },
    Envelope { kind: String, from: Address },
    Any(String),
}

/// A typed handler, then catch-alls for faults and for everything else.
struct Catcher;

#[strata::machine]
impl Catcher {
    fn add(&mut self, _cx: &mut Context<Self>, m: Add) -> Handled {
        Handled::Typed(m.0 + m.1)
    }
    fn start(&mut self, _cx: &mut Context<Self>, _: Start) {}
    fn fault(&mut self, _cx: &mut Context<Self>, f: AnyFault) -> Handled {
        Handled::Fault {
            kind: f.type_name().to_string(),
            reason: f.reason(),
        }
    }
    fn other(&mut self, _cx: &mut Context<Self>, e: Envelope) -> Handled {
        Handled::Envelope {
            kind: e.type_name().to_string(),
            from: e.sender(),
        }
    }
}

/// Only a catch-all taking the bare message.
struct AnyCatcher;

#[strata::machine]
impl AnyCatcher {
    // Without this, the catch-all would take `Start` too.
    fn start(&mut self, _cx: &mut Context<Self>, _: Start) {}
    fn stop(&mut self, cx: &mut Context<Self>, _: Stop) {
        cx.complete(Ack);
    }
    fn anything(&mut self, _cx: &mut Context<Self>, m: AnyMessage) -> Handled {
        Handled::Any(m.type_name().to_string())
    }
}

#[test]
fn handlers_dispatch_on_type_with_envelope_anymessage_and_anyfault_catch_alls() {
    bounded(Duration::from_secs(60), || {
        let mut cx = ThreadContext::attach();
        let me = cx.address();
        let catcher = cx.create(Catcher);
        cx.send(catcher, Add(2, 3));
        cx.send(catcher, Busy::new("too slow"));
        cx.send(catcher, TimedOut::after(Duration::from_millis(1500)));
        cx.send(catcher, 7u64);
        cx.send(catcher, Ping);
        let mut got = Vec::new();
        for _ in 0..5 {
            let (h, from) = expect_message::<Handled>(&mut cx, WAIT);
            assert_eq!(from, catcher);
            got.push(h);
        }
        assert_eq!(
            got,
            vec![
                Handled::Typed(5),
                Handled::Fault {
                    kind: "Busy".into(),
                    reason: "Busy: too slow".into()
                },
                Handled::Fault {
                    kind: "TimedOut".into(),
                    reason: "TimedOut: no answer within 1.5s".into()
                },
                Handled::Envelope {
                    kind: "u64".into(),
                    from: me
                },
                Handled::Envelope {
                    kind: "Ping".into(),
                    from: me
                },
            ]
        );

        let any = cx.create(AnyCatcher);
        cx.send(any, vec![1.5f64]);
        cx.send(any, Faulted::new("x"));
        let (first, _) = expect_message::<Handled>(&mut cx, WAIT);
        let (second, _) = expect_message::<Handled>(&mut cx, WAIT);
        assert_eq!(first, Handled::Any("vec<f64>".into()));
        assert_eq!(second, Handled::Any("Faulted".into()));
        cx.stop(any);
        let value = returned_from(&mut cx, any, WAIT);
        assert!(value.is::<Ack>(), "the typed Stop handler wins: {value:?}");
    });
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
enum Lamp {
    Off,
    On,
    Broken,
}

#[derive(Debug, Serialize, Deserialize, Message)]
struct Press;

#[derive(Debug, Serialize, Deserialize, Message)]
struct Dim(u8);

#[derive(Debug, Serialize, Deserialize, Message)]
struct Kick;

/// A state machine: `Press` means different things in `Off` and `On`; `Dim` is handled
/// only while on; anything else goes to the fallback.
struct Switch {
    state: Lamp,
    level: u8,
}

#[strata::machine(state = state)]
impl Switch {
    fn start(&mut self, _cx: &mut Context<Self>, _: Start) {}

    #[when(Lamp::Off)]
    fn press_when_off(&mut self, _cx: &mut Context<Self>, _: Press) -> String {
        self.state = Lamp::On;
        "switched on".to_string()
    }

    #[when(Lamp::On)]
    fn press_when_on(&mut self, _cx: &mut Context<Self>, _: Press) -> String {
        self.state = Lamp::Off;
        "switched off".to_string()
    }

    #[when(Lamp::On)]
    fn dim(&mut self, _cx: &mut Context<Self>, m: Dim) -> String {
        self.level = m.0;
        format!("dimmed to {}", self.level)
    }

    #[when(Lamp::Off | Lamp::On)]
    fn kick(&mut self, _cx: &mut Context<Self>, _: Kick) -> String {
        self.state = Lamp::Broken;
        "broken".to_string()
    }

    fn stop(&mut self, cx: &mut Context<Self>, _: Stop) {
        cx.complete(u32::from(self.level));
    }

    fn fallback(&mut self, _cx: &mut Context<Self>, e: Envelope) -> String {
        format!("not now: {} in {:?}", e.type_name(), self.state)
    }
}

#[test]
fn a_state_machine_handles_the_same_message_by_state_and_falls_back() {
    bounded(Duration::from_secs(60), || {
        let mut cx = ThreadContext::attach();
        let switch = cx.create(Switch {
            state: Lamp::Off,
            level: 0,
        });
        let steps: Vec<(AnyMessage, &str)> = vec![
            (AnyMessage::new(Dim(3)), "not now: Dim in Off"),
            (AnyMessage::new(Press), "switched on"),
            (AnyMessage::new(Dim(7)), "dimmed to 7"),
            (AnyMessage::new(Press), "switched off"),
            (AnyMessage::new(Dim(9)), "not now: Dim in Off"),
            (AnyMessage::new(Press), "switched on"),
            (AnyMessage::new(Kick), "broken"),
            (AnyMessage::new(Press), "not now: Press in Broken"),
            (AnyMessage::new(Kick), "not now: Kick in Broken"),
        ];
        for (message, want) in steps {
            let name = message.type_name();
            cx.send_any(switch, message);
            let (reply, from) = expect_message::<String>(&mut cx, WAIT);
            assert_eq!(from, switch);
            assert_eq!(reply, want, "after {name}");
        }
        // Unguarded handlers run in every state.
        cx.stop(switch);
        let value = returned_from(&mut cx, switch, WAIT);
        assert_eq!(value.downcast_ref::<u32>(), Some(&7));
    });
}

#[test]
fn function_and_async_objects_return_values_and_results() {
    bounded(Duration::from_secs(60), || {
        let mut cx = ThreadContext::attach();
        let ok = cx.create(Thread::new(|_cx: &mut ThreadContext| {
            Ok::<_, Faulted>("fine".to_string())
        }));
        let err = cx.create(Thread::new(|_cx: &mut ThreadContext| {
            Err::<String, _>(Busy::new("later"))
        }));
        let echo = cx.create(Async::new(|mut cx: AsyncContext| async move {
            let e = cx.recv_timeout(WAIT).await.expect("a message");
            let from = e.sender();
            let text = e.take::<String>().expect("a string");
            cx.reply(format!("{text}!"));
            from
        }));
        cx.send(echo, "hi".to_string());
        let (reply, from) = select_message::<String>(&mut cx, WAIT);
        assert_eq!((reply.as_str(), from), ("hi!", echo));
        let me = cx.address();
        let values = collect_returned(&mut cx, 3, WAIT);
        assert_eq!(
            values[&ok].downcast_ref::<String>().map(|s| s.as_str()),
            Some("fine")
        );
        assert_eq!(
            values[&err].downcast_ref::<Busy>(),
            Some(&Busy::new("later"))
        );
        assert!(values[&err].is_fault());
        assert_eq!(values[&echo].downcast_ref::<Address>(), Some(&me));
    });
}
