//! Per-pair ordering: whatever else is going on, the messages one object sends to another
//! arrive in the order they were sent.

mod support;

use std::collections::HashMap;
use std::time::Duration;

use strata::prelude::*;
use strata::Object;
use support::{bounded, collect_returned, returned_from, WAIT};

/// The n-th message of a sender's numbered sequence.
#[derive(Debug, Serialize, Deserialize, Message)]
struct Seq(u32);

/// Sent by a burst machine to itself to send its next chunk.
#[derive(Debug, Serialize, Deserialize, Message)]
struct More;

const EACH: u32 = 2_000;
const CHUNK: u32 = 50;

/// What a receiver saw: for every sender, how many messages (all checked in order).
type Counts = Vec<(Address, u32)>;

/// Checks one arrival against the next number expected from its sender.
fn check(next: &mut HashMap<Address, u32>, from: Address, n: u32) -> Result<(), Faulted> {
    let expected = next.entry(from).or_insert(0);
    if n != *expected {
        return Err(Faulted::new(format!(
            "from {from}: got #{n}, expected #{expected}"
        )));
    }
    *expected += 1;
    Ok(())
}

/// A function object that reads `total` numbered messages and checks each sender's order.
fn thread_receiver(total: u32) -> impl Object {
    Thread::new(move |cx: &mut ThreadContext| -> Result<Counts, Faulted> {
        let mut next = HashMap::new();
        for _ in 0..total {
            let e = cx
                .recv_timeout(WAIT)
                .ok_or_else(|| Faulted::new("a message did not arrive"))?;
            let from = e.sender();
            match e.take::<Seq>() {
                Ok(Seq(n)) => check(&mut next, from, n)?,
                Err(other) => {
                    return Err(Faulted::new(format!("unexpected {}", other.type_name())))
                }
            }
        }
        Ok(next.into_iter().collect())
    })
}

/// A machine that checks each sender's order and ends with the counts after `total`.
struct OrderChecker {
    total: u32,
    seen: u32,
    next: HashMap<Address, u32>,
}

#[strata::machine]
impl OrderChecker {
    fn seq(&mut self, cx: &mut Context<Self>, m: Seq) {
        if let Err(f) = check(&mut self.next, cx.sender(), m.0) {
            cx.complete(f);
            return;
        }
        self.seen += 1;
        if self.seen == self.total {
            let counts: Counts = self.next.drain().collect();
            cx.complete(counts);
        }
    }
}

/// A machine that sends its sequence in chunks, letting other objects run in between.
struct Burst {
    to: Address,
    sent: u32,
}

#[strata::machine]
impl Burst {
    fn start(&mut self, cx: &mut Context<Self>, _: Start) {
        self.chunk(cx);
    }
    fn more(&mut self, cx: &mut Context<Self>, _: More) {
        self.chunk(cx);
    }
    fn chunk(&mut self, cx: &mut Context<Self>) {
        let end = (self.sent + CHUNK).min(EACH);
        for n in self.sent..end {
            cx.send(self.to, Seq(n));
        }
        self.sent = end;
        if self.sent == EACH {
            cx.complete(self.sent);
        } else {
            let me = cx.address();
            cx.send(me, More);
        }
    }
}

/// Creates senders of every kind, each sending `EACH` numbered messages to `to`; returns
/// their addresses (the plain threads' attached contexts included) and the plain threads.
fn start_senders(
    cx: &mut ThreadContext,
    to: Address,
) -> (Vec<Address>, Vec<std::thread::JoinHandle<()>>) {
    let mut senders = Vec::new();
    for _ in 0..4 {
        senders.push(cx.create(Thread::new(move |cx: &mut ThreadContext| {
            for n in 0..EACH {
                cx.send(to, Seq(n));
            }
            EACH
        })));
    }
    for _ in 0..4 {
        senders.push(cx.create(Burst { to, sent: 0 }));
    }
    senders.push(cx.create(Threaded(Burst { to, sent: 0 })));
    for _ in 0..3 {
        senders.push(cx.create(Async::new(move |cx: AsyncContext| async move {
            for n in 0..EACH {
                cx.send(to, Seq(n));
                if n % CHUNK == 0 {
                    tokio::task::yield_now().await;
                }
            }
            EACH
        })));
    }
    // Plain OS threads outside the object tree, through attached contexts.
    let (addresses, ready) = std::sync::mpsc::channel();
    let mut plain = Vec::new();
    for _ in 0..2 {
        let addresses = addresses.clone();
        plain.push(std::thread::spawn(move || {
            let cx = ThreadContext::attach();
            addresses.send(cx.address()).expect("the test is listening");
            for n in 0..EACH {
                cx.send(to, Seq(n));
            }
        }));
    }
    for _ in 0..2 {
        senders.push(ready.recv_timeout(WAIT).expect("a plain thread started"));
    }
    (senders, plain)
}

fn assert_counts(value: AnyMessage, senders: &[Address]) {
    let counts = match value.downcast::<Counts>() {
        Ok(c) => c,
        Err(other) => panic!("the receiver failed: {other:?}"),
    };
    let counts: HashMap<Address, u32> = counts.into_iter().collect();
    assert_eq!(counts.len(), senders.len(), "one entry per sender");
    for s in senders {
        assert_eq!(counts.get(s), Some(&EACH), "sender {s}");
    }
}

#[test]
fn every_senders_messages_reach_a_function_object_in_order() {
    bounded(Duration::from_secs(120), || {
        let mut cx = ThreadContext::attach();
        let senders_n = 4 + 4 + 1 + 3 + 2;
        let receiver = cx.create_with(
            thread_receiver(EACH * senders_n),
            Options::default().capacity(1 << 20),
        );
        let (senders, plain) = start_senders(&mut cx, receiver);
        assert_eq!(senders.len() as u32, senders_n);
        let value = returned_from(&mut cx, receiver, Duration::from_secs(90));
        assert_counts(value, &senders);
        for t in plain {
            t.join().expect("a plain sender thread");
        }
    });
}

#[test]
fn every_senders_messages_reach_a_machine_in_order() {
    bounded(Duration::from_secs(120), || {
        let mut cx = ThreadContext::attach();
        let senders_n = 4 + 4 + 1 + 3 + 2;
        let receiver = cx.create_with(
            OrderChecker {
                total: EACH * senders_n,
                seen: 0,
                next: HashMap::new(),
            },
            Options::default().capacity(1 << 20),
        );
        let (senders, plain) = start_senders(&mut cx, receiver);
        let value = returned_from(&mut cx, receiver, Duration::from_secs(90));
        assert_counts(value, &senders);
        for t in plain {
            t.join().expect("a plain sender thread");
        }
    });
}

#[test]
fn senders_end_with_their_values_and_nothing_is_refused() {
    // The same traffic into a receiver with the default capacity: no sender is told
    // `Overloaded`, and every sender object returns the count it sent.
    bounded(Duration::from_secs(120), || {
        let mut cx = ThreadContext::attach();
        let senders_n = 4 + 4 + 1 + 3 + 2;
        let receiver = cx.create(thread_receiver(EACH * senders_n));
        let (senders, plain) = start_senders(&mut cx, receiver);
        let objects = senders.len() - plain.len();
        // The receiver and every sender object return.
        let values = collect_returned(&mut cx, objects + 1, Duration::from_secs(90));
        for t in plain {
            t.join().expect("a plain sender thread");
        }
        let received = values.get(&receiver).expect("the receiver returned");
        assert!(received.is::<Counts>(), "the receiver failed: {received:?}");
        for s in &senders[..objects] {
            assert_eq!(
                values[s].downcast_ref::<u32>(),
                Some(&EACH),
                "sender {s}: {:?}",
                values[s]
            );
        }
        assert!(
            cx.recv_timeout(Duration::from_millis(50)).is_none(),
            "no Overloaded or other notice for the test"
        );
    });
}
