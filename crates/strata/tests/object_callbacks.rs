//! Machines that wait for children: `on_return` with the saved context, `continuation`,
//! `working()`, and `abort()`.

mod support;

use std::time::Duration;

use strata::prelude::*;
use strata::Object;
use support::{bounded, expect_message, returned_from, select_message, WAIT};

/// A request that needs a child to answer.
#[derive(Debug, Serialize, Deserialize, Message)]
struct Compute(u64);

/// A request that needs two children, one after the other.
#[derive(Debug, Serialize, Deserialize, Message)]
struct TwoSteps(u64);

/// Answered at once, whatever else is pending.
#[derive(Debug, Serialize, Deserialize, Message)]
struct Status;

/// Lets the waiting children finish.
#[derive(Debug, Serialize, Deserialize, Message)]
struct Release;

#[derive(Debug, Serialize, Deserialize, Message)]
struct Go;

#[derive(Debug, PartialEq, Serialize, Deserialize, Message)]
struct Reply {
    value: u64,
    /// Who the server thought it was answering, inside the callback.
    to: Address,
}

#[derive(Debug, PartialEq, Serialize, Deserialize, Message)]
struct StatusReply {
    working: usize,
}

/// An async child that waits for `Go`, then returns `f(n)`.
fn worker(n: u64, f: fn(u64) -> u64) -> impl Object {
    Async::new(move |mut cx: AsyncContext| async move {
        match cx.select_timeout::<(Go,)>(WAIT).await {
            Ok(_) => Ok(f(n)),
            Err(t) => Err(t),
        }
    })
}

/// A server that answers `Compute` through a child and a callback.
#[derive(Default)]
struct Server {
    waiting: Vec<Address>,
}

impl Server {
    fn release_all(&mut self, cx: &mut Context<Self>) {
        for w in self.waiting.drain(..) {
            cx.send(w, Go);
        }
    }
}

#[strata::machine]
impl Server {
    fn compute(&mut self, cx: &mut Context<Self>, m: Compute) {
        let child = cx.create(worker(m.0, |n| n * n));
        self.waiting.push(child);
        cx.on_return(child, |_server: &mut Server, cx, value| {
            match value.downcast::<u64>() {
                Ok(v) => {
                    let to = cx.sender();
                    cx.reply(Reply { value: v, to });
                }
                Err(fault) => cx.reply(Faulted::new(format!("{fault:?}"))),
            }
        });
    }

    fn two_steps(&mut self, cx: &mut Context<Self>, m: TwoSteps) {
        let first = cx.create(worker(m.0, |n| n + 1));
        self.waiting.push(first);
        cx.on_return(first, |_server: &mut Server, cx, value| {
            let Ok(v) = value.downcast::<u64>() else {
                cx.reply(Faulted::new("step one failed"));
                return;
            };
            let second = cx.create(worker(v, |n| n * 100));
            // The second step is released at once.
            cx.send(second, Go);
            cx.continuation(second, |_server: &mut Server, cx, value| {
                match value.downcast::<u64>() {
                    Ok(v) => {
                        let to = cx.sender();
                        cx.reply(Reply { value: v, to });
                    }
                    Err(_) => cx.reply(Faulted::new("step two failed")),
                }
            });
        });
    }

    fn status(&mut self, cx: &mut Context<Self>, _: Status) -> StatusReply {
        StatusReply {
            working: cx.working(),
        }
    }

    fn release(&mut self, cx: &mut Context<Self>, _: Release) {
        self.release_all(cx);
    }
}

#[test]
fn on_return_replies_to_the_original_requester_after_other_messages() {
    bounded(Duration::from_secs(60), || {
        let mut cx = ThreadContext::attach();
        let server = cx.create(Server::default());
        // Two more clients, attached contexts of this same thread.
        let mut a = ThreadContext::attach();
        let mut b = ThreadContext::attach();

        a.send(server, Compute(7));
        // B talks to the server while A's request is pending.
        b.send(server, Status);
        let (status, from) = expect_message::<StatusReply>(&mut b, WAIT);
        assert_eq!(from, server);
        assert_eq!(status, StatusReply { working: 1 });
        // And B's own request is pending too, with a different child.
        b.send(server, Compute(3));
        b.send(server, Status);
        let (status, _) = expect_message::<StatusReply>(&mut b, WAIT);
        assert_eq!(status, StatusReply { working: 2 });

        // The test (a third party) releases the children.
        cx.send(server, Release);
        let (reply, from) = expect_message::<Reply>(&mut a, WAIT);
        assert_eq!(from, server);
        assert_eq!(
            reply,
            Reply {
                value: 49,
                to: a.address()
            }
        );
        let (reply, _) = expect_message::<Reply>(&mut b, WAIT);
        assert_eq!(
            reply,
            Reply {
                value: 9,
                to: b.address()
            }
        );
        // Nothing went to the wrong place.
        assert!(a.recv_timeout(Duration::from_millis(30)).is_none());
        assert!(b.recv_timeout(Duration::from_millis(30)).is_none());
        assert!(cx.recv_timeout(Duration::from_millis(30)).is_none());

        cx.send(server, Status);
        let (status, _) = expect_message::<StatusReply>(&mut cx, WAIT);
        assert_eq!(status, StatusReply { working: 0 }, "no callback left");
    });
}

#[test]
fn continuation_chains_two_steps_and_still_replies_to_the_requester() {
    bounded(Duration::from_secs(60), || {
        let mut cx = ThreadContext::attach();
        let server = cx.create(Server::default());
        let mut a = ThreadContext::attach();
        let mut b = ThreadContext::attach();

        a.send(server, TwoSteps(4));
        b.send(server, Status);
        let (status, _) = expect_message::<StatusReply>(&mut b, WAIT);
        assert_eq!(status, StatusReply { working: 1 });
        cx.send(server, Release);
        let (reply, from) = expect_message::<Reply>(&mut a, WAIT);
        assert_eq!(from, server);
        assert_eq!(
            reply,
            Reply {
                value: 500,
                to: a.address()
            }
        );
        assert!(b.recv_timeout(Duration::from_millis(30)).is_none());
        assert!(cx.recv_timeout(Duration::from_millis(30)).is_none());
        b.send(server, Status);
        let (status, _) = expect_message::<StatusReply>(&mut b, WAIT);
        assert_eq!(status, StatusReply { working: 0 });
    });
}

#[test]
fn a_callback_gets_a_failed_childs_fault() {
    bounded(Duration::from_secs(60), || {
        let mut cx = ThreadContext::attach();
        let failing = cx.create(Panicky);
        cx.send(failing, Compute(5));
        let (fault, from) = select_message::<Faulted>(&mut cx, WAIT);
        assert_eq!(from, failing);
        assert!(fault.reason.contains("boom 5"), "{}", fault.reason);
        // The machine itself is unharmed and answers the next request the same way.
        cx.send(failing, Compute(6));
        let (fault, _) = select_message::<Faulted>(&mut cx, WAIT);
        assert!(fault.reason.contains("boom 6"), "{}", fault.reason);
    });
}

/// Answers `Compute` through a child that panics; the callback passes the fault on.
struct Panicky;

#[strata::machine]
impl Panicky {
    fn compute(&mut self, cx: &mut Context<Self>, m: Compute) {
        let n = m.0;
        let child = cx.create(Thread::new(move |_cx: &mut ThreadContext| -> u64 {
            panic!("boom {n}")
        }));
        cx.on_return(child, |_m: &mut Panicky, cx, value| {
            match value.downcast::<Faulted>() {
                Ok(f) => cx.reply(f),
                Err(other) => cx.reply(Faulted::new(format!("not a fault: {other:?}"))),
            }
        });
    }
}

#[derive(Debug, Serialize, Deserialize, Message)]
struct Quit(u32);

#[derive(Debug, PartialEq, Serialize, Deserialize, Message)]
struct Stopped(u32);

/// A parent of `n` function objects that report `Stopped` to `probe` when stopped;
/// `Quit(v)` aborts it with `v`.
struct Parent {
    probe: Address,
    n: u32,
}

#[strata::machine]
impl Parent {
    fn start(&mut self, cx: &mut Context<Self>, _: Start) {
        for i in 0..self.n {
            let probe = self.probe;
            cx.create(Thread::new(move |cx: &mut ThreadContext| {
                match cx.select_timeout::<(Stop,)>(WAIT) {
                    Ok(_) => {
                        cx.send(probe, Stopped(i));
                        Ok(i)
                    }
                    Err(t) => Err(t),
                }
            }));
        }
        let probe = self.probe;
        cx.send(probe, Ready);
    }
    fn quit(&mut self, cx: &mut Context<Self>, m: Quit) {
        cx.abort(m.0);
        let children = cx.children().count() as u32;
        cx.reply(children);
    }
}

#[test]
fn abort_stops_every_child_before_returning_the_value() {
    bounded(Duration::from_secs(60), || {
        let mut cx = ThreadContext::attach();
        let me = cx.address();
        let parent = cx.create(Parent { probe: me, n: 4 });
        let (Ready, _) = select_message::<Ready>(&mut cx, WAIT);
        cx.send(parent, Quit(42));
        let (children, _) = select_message::<u32>(&mut cx, WAIT);
        assert_eq!(children, 4, "still running while they stop");
        // Every child's report comes before the parent's value.
        let mut stopped = Vec::new();
        let value = loop {
            let e = cx.recv_timeout(WAIT).expect("reports, then Returned");
            if e.is::<Returned>() {
                assert_eq!(e.sender(), parent);
                break e.take::<Returned>().unwrap().value;
            }
            let report = e.take::<Stopped>().expect("a report");
            stopped.push(report.0);
        };
        stopped.sort_unstable();
        assert_eq!(stopped, vec![0, 1, 2, 3]);
        assert_eq!(value.downcast_ref::<u32>(), Some(&42));

        // With no children, abort ends at once with the value.
        let lonely = cx.create(Parent { probe: me, n: 0 });
        let (Ready, _) = select_message::<Ready>(&mut cx, WAIT);
        cx.send(lonely, Quit(5));
        let value = returned_from(&mut cx, lonely, WAIT);
        assert_eq!(value.downcast_ref::<u32>(), Some(&5));
    });
}
