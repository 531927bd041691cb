//! Bounded mailboxes: a full mailbox refuses, the sender is told, the refusal is counted,
//! and nothing that was accepted is lost.

mod support;

use std::sync::mpsc;
use std::time::Duration;

use strata::prelude::*;
use strata::{Object, SendError};
use support::{bounded, collect_returned, expect_message, returned_from, select_message, WAIT};

#[derive(Debug, Serialize, Deserialize, Message)]
struct Seq(u32);

/// A function object that reads nothing until `go` says so, then reads numbered messages
/// until `Stop` and returns the numbers in the order they came.
fn sleeper(go: mpsc::Receiver<()>) -> impl Object {
    Thread::new(move |cx: &mut ThreadContext| -> Result<Vec<u32>, Faulted> {
        go.recv_timeout(WAIT)
            .map_err(|_| Faulted::new("never told to read"))?;
        let mut got = Vec::new();
        loop {
            let e = cx
                .recv_timeout(WAIT)
                .ok_or_else(|| Faulted::new("no Stop"))?;
            if e.is::<Stop>() {
                return Ok(got);
            }
            match e.take::<Seq>() {
                Ok(Seq(n)) => got.push(n),
                Err(other) => {
                    return Err(Faulted::new(format!("unexpected {}", other.type_name())))
                }
            }
        }
    })
}

#[test]
fn a_full_mailbox_refuses_tells_the_sender_counts_and_loses_nothing_accepted() {
    bounded(Duration::from_secs(60), || {
        const CAPACITY: u32 = 8;
        let mut cx = ThreadContext::attach();
        let (go, wait) = mpsc::channel();
        let receiver = cx.create_with(sleeper(wait), Options::default().capacity(8));
        let before = strata::runtime::stats().refused_full;

        for n in 0..CAPACITY {
            cx.send(receiver, Seq(n));
        }
        // Nothing refused yet: no notice.
        assert!(cx.recv_timeout(Duration::from_millis(20)).is_none());
        // Beyond capacity: every send is refused; the sender is told once per unread
        // notice (refusals while a notice waits unread are counted, not queued again).
        for n in CAPACITY..CAPACITY + 4 {
            cx.send(receiver, Seq(n));
        }
        let (notice, from) = expect_message::<Overloaded>(&mut cx, WAIT);
        assert_eq!(from, receiver, "the notice comes from the receiver");
        assert!(notice.reason.contains("full"), "{}", notice.reason);
        assert!(notice.reason.contains("Seq"), "{}", notice.reason);
        assert!(
            cx.recv_timeout(Duration::from_millis(20)).is_none(),
            "one notice for the four refusals"
        );
        // Once the notice has been read, the next refusal brings a new one.
        cx.send(receiver, Seq(CAPACITY + 4));
        let (_, from) = expect_message::<Overloaded>(&mut cx, WAIT);
        assert_eq!(from, receiver);
        match cx.try_send(receiver, Seq(99)) {
            Err(SendError::Full {
                to,
                type_name,
                capacity,
            }) => {
                assert_eq!(to, receiver);
                assert_eq!(type_name, "Seq");
                assert_eq!(capacity, CAPACITY as usize);
            }
            other => panic!("expected SendError::Full, got {other:?}"),
        }
        // try_send reports by its result, not by a notice.
        assert!(cx.recv_timeout(Duration::from_millis(20)).is_none());
        let refused = strata::runtime::stats().refused_full - before;
        assert!(refused >= 6, "6 refusals counted, saw {refused}");

        // Control messages are never refused for capacity.
        cx.stop(receiver);
        go.send(()).expect("the receiver is waiting");
        let value = returned_from(&mut cx, receiver, WAIT);
        let got = value
            .downcast::<Vec<u32>>()
            .unwrap_or_else(|v| panic!("the receiver failed: {v:?}"));
        assert_eq!(got, (0..CAPACITY).collect::<Vec<_>>());
    });
}

#[test]
fn a_mailbox_that_was_full_accepts_again_once_read() {
    bounded(Duration::from_secs(60), || {
        let mut cx = ThreadContext::attach();
        let reader = cx.create_with(
            Thread::new(|cx: &mut ThreadContext| {
                let mut sum = 0u64;
                loop {
                    match cx.recv_timeout(WAIT) {
                        Some(e) if e.is::<Stop>() => return sum,
                        Some(e) => {
                            let from = e.sender();
                            sum += u64::from(e.take::<Seq>().map(|s| s.0).unwrap_or(0));
                            cx.send(from, Ack);
                        }
                        None => return u64::MAX,
                    }
                }
            }),
            Options::default().capacity(1),
        );
        // One message in flight at a time never overflows a mailbox of one.
        for n in 1..=50 {
            cx.try_send(reader, Seq(n))
                .unwrap_or_else(|e| panic!("message {n}: {e}"));
            let (_, from) = expect_message::<Ack>(&mut cx, WAIT);
            assert_eq!(from, reader);
        }
        cx.stop(reader);
        let value = returned_from(&mut cx, reader, WAIT);
        assert_eq!(value.downcast_ref::<u64>(), Some(&(50 * 51 / 2)));
    });
}

#[derive(Debug, Serialize, Deserialize, Message)]
struct Flood {
    to: Address,
    count: u32,
}

#[derive(Debug, PartialEq, Serialize, Deserialize, Message)]
struct Report {
    notices: u32,
    all_from_receiver: bool,
}

/// Sends a flood when asked, counts the `Overloaded` notices it gets back, and reports
/// them when it gets `Enquiry`.
struct Flooder {
    target: Address,
    notices: u32,
    all_from_receiver: bool,
}

#[strata::machine]
impl Flooder {
    fn flood(&mut self, cx: &mut Context<Self>, m: Flood) {
        self.target = m.to;
        for n in 0..m.count {
            cx.send(m.to, Seq(n));
        }
        cx.reply(Ack);
    }
    fn overloaded(&mut self, cx: &mut Context<Self>, _: Overloaded) {
        self.notices += 1;
        self.all_from_receiver &= cx.sender() == self.target;
    }
    fn enquiry(&mut self, _cx: &mut Context<Self>, _: Enquiry) -> Report {
        Report {
            notices: self.notices,
            all_from_receiver: self.all_from_receiver,
        }
    }
}

#[test]
fn a_machine_sender_receives_overloaded_from_the_receiver() {
    bounded(Duration::from_secs(60), || {
        let mut cx = ThreadContext::attach();
        let (go, wait) = mpsc::channel();
        let receiver = cx.create_with(sleeper(wait), Options::default().capacity(5));
        let flooder = cx.create(Flooder {
            target: Address::NULL,
            notices: 0,
            all_from_receiver: true,
        });
        for round in 1..=2 {
            cx.send(
                flooder,
                Flood {
                    to: receiver,
                    count: 12,
                },
            );
            // The notice is pushed while the flood is handled, so before the Ack: an
            // Enquiry sent after the Ack is read after it.
            let (_, from) = select_message::<Ack>(&mut cx, WAIT);
            assert_eq!(from, flooder);
            cx.send(flooder, Enquiry);
            let (report, _) = select_message::<Report>(&mut cx, WAIT);
            assert_eq!(
                report,
                Report {
                    notices: round,
                    all_from_receiver: true
                },
                "one notice per flood (it was read before the next flood)"
            );
        }
        cx.stop(receiver);
        go.send(()).expect("the receiver is waiting");
        let got = returned_from(&mut cx, receiver, WAIT)
            .downcast::<Vec<u32>>()
            .unwrap_or_else(|v| panic!("the receiver failed: {v:?}"));
        assert_eq!(got, vec![0, 1, 2, 3, 4]);
    });
}

#[test]
fn control_messages_do_not_use_up_capacity() {
    // The documented rule: the capacity bounds ordinary messages; control deliveries
    // (Stop, Returned, timers, notices) are always accepted *and not counted*. A queued
    // Stop must not make the mailbox refuse its first ordinary message.
    bounded(Duration::from_secs(60), || {
        let mut cx = ThreadContext::attach();
        let (go, wait) = mpsc::channel();
        let receiver = cx.create_with(sleeper(wait), Options::default().capacity(3));
        cx.stop(receiver); // queued first: a control message
        let mut accepted = Vec::new();
        for n in 0..3 {
            if cx.try_send(receiver, Seq(n)).is_ok() {
                accepted.push(n);
            }
        }
        go.send(()).expect("the receiver is waiting");
        let value = returned_from(&mut cx, receiver, WAIT);
        // The receiver stops at the Stop, which came first: it read nothing.
        assert_eq!(value.downcast_ref::<Vec<u32>>(), Some(&vec![]));
        assert_eq!(
            accepted,
            vec![0, 1, 2],
            "all three fit in a mailbox of three"
        );
    });
}

/// Handles `Seq` and keeps a count; stops on `Stop` with the count.
#[derive(Default)]
struct Counter {
    n: u32,
}

#[strata::machine]
impl Counter {
    fn seq(&mut self, _cx: &mut Context<Self>, _: Seq) {
        self.n += 1;
    }
    fn stop(&mut self, cx: &mut Context<Self>, _: Stop) {
        cx.complete(self.n);
    }
}

#[test]
fn a_new_machine_accepts_its_full_capacity_at_once() {
    // A machine's mailbox holds its `Start` until the machine first runs; `Start` is a
    // control message and must not take one of the `capacity` places. Sending one
    // message right after creating a machine with capacity 1 must be accepted.
    bounded(Duration::from_secs(60), || {
        let mut cx = ThreadContext::attach();
        let mut refused = 0;
        let mut machines = Vec::new();
        for _ in 0..200 {
            let m = cx.create_with(Counter::default(), Options::default().capacity(1));
            if cx.try_send(m, Seq(0)).is_err() {
                refused += 1;
            }
            machines.push(m);
        }
        for m in &machines {
            cx.stop(*m);
        }
        let values = collect_returned(&mut cx, machines.len(), WAIT);
        let handled: u32 = machines
            .iter()
            .map(|m| *values[m].downcast_ref::<u32>().expect("a count"))
            .sum();
        assert_eq!(refused, 0, "sends refused by a mailbox holding only Start");
        assert_eq!(handled, 200);
    });
}
