//! `Core::watch`: an `Ended` from the watched address, exactly once — when a local object
//! ends, at once for one that has ended or never was, from every kind of object, racing
//! with the end, and for an object of another process when the link to it closes.
//!
//! The remote peer is the `link_peer` test program (crates/strata-testbins), built by the
//! test itself before it starts.

mod support;

use std::collections::HashMap;
use std::process::Command;
use std::time::Duration;

use strata::net::{Connect, Connected};
use strata::prelude::*;
use support::programs::{testbin, Running};
use support::{drain, select_message, WAIT};

/// Long enough for a second `Ended`, if there were one, to arrive (not a timing claim:
/// a duplicate that came later would still be a bug; this only looks for it a while).
const SETTLE: Duration = Duration::from_millis(100);

/// An object that ends when it receives anything.
fn ends_when_told() -> impl strata::Object {
    Thread::new(|cx: &mut ThreadContext| {
        cx.recv();
    })
}

/// The `Ended` envelopes among `envelopes`, as (sender, address) pairs.
fn ended_in(envelopes: Vec<Envelope>) -> Vec<(Address, Address)> {
    envelopes
        .into_iter()
        .filter_map(|e| {
            let from = e.sender();
            e.take::<Ended>().ok().map(|m| (from, m.address))
        })
        .collect()
}

#[test]
fn a_local_object_that_ends_is_reported_once_from_its_address() {
    let mut cx = ThreadContext::attach();
    let worker = cx.create(ends_when_told());
    cx.watch(worker);
    cx.watch(worker); // the same watcher again: still one entry
    cx.send(worker, Ping);
    let (ended, from) = select_message::<Ended>(&mut cx, WAIT);
    assert_eq!(from, worker, "sent from the watched address");
    assert_eq!(ended.address, worker);
    assert!(
        ended_in(drain(&mut cx, SETTLE)).is_empty(),
        "one Ended, however often watched"
    );
}

#[test]
fn an_address_that_ended_or_never_was_is_reported_at_once() {
    let mut cx = ThreadContext::attach();
    let worker = cx.create(ends_when_told());
    cx.send(worker, Ping);
    let _ = cx.wait_for(worker);
    cx.watch(worker);
    let (ended, from) = select_message::<Ended>(&mut cx, WAIT);
    assert_eq!((from, ended.address), (worker, worker));

    let never = Address::from_parts(cx.address().node(), 0x0123_4567_89ab);
    cx.watch(never);
    let (ended, from) = select_message::<Ended>(&mut cx, WAIT);
    assert_eq!((from, ended.address), (never, never));

    cx.watch(Address::NULL);
    let (ended, _) = select_message::<Ended>(&mut cx, WAIT);
    assert_eq!(ended.address, Address::NULL);
    assert!(ended_in(drain(&mut cx, SETTLE)).is_empty());
}

/// Watches the address it is given and tells its creator which address ended, as the
/// `Ended`'s sender saw it.
struct Watcher;

#[strata::machine]
impl Watcher {
    fn watch(&mut self, cx: &mut Context<Self>, target: Address) {
        cx.watch(target);
        cx.watch(target);
        cx.reply(Ack);
    }

    fn ended(&mut self, cx: &mut Context<Self>, m: Ended) {
        assert_eq!(cx.sender(), m.address);
        let parent = cx.parent();
        cx.send(parent, m.address);
    }
}

#[test]
fn every_watcher_is_told_once_whatever_its_kind() {
    let mut cx = ThreadContext::attach();
    let worker = cx.create(ends_when_told());
    // A machine, an async object and this attached thread watch the same object.
    let machine = cx.create(Watcher);
    assert!(cx.ask_timeout(machine, worker, WAIT).is::<Ack>());
    let me = cx.address();
    let watching = cx.create(Async::new(move |mut acx: AsyncContext| async move {
        acx.watch(worker);
        acx.send(me, Ready);
        let e = acx.select::<(Ended,)>().await;
        let from = e.sender();
        acx.send(me, (from == worker).then_some(from));
    }));
    let _ = select_message::<Ready>(&mut cx, WAIT);
    cx.watch(worker);
    cx.send(worker, Ping);

    let (ended, from) = select_message::<Ended>(&mut cx, WAIT);
    assert_eq!((from, ended.address), (worker, worker));
    let (told, from) = select_message::<Address>(&mut cx, WAIT);
    assert_eq!((from, told), (machine, worker), "the machine's watch");
    let (told, from) = select_message::<Option<Address>>(&mut cx, WAIT);
    assert_eq!((from, told), (watching, Some(worker)), "the async object's");
    let rest = drain(&mut cx, SETTLE);
    assert!(ended_in(rest).is_empty(), "one Ended for this watcher");
    cx.stop(machine);
}

#[test]
fn a_watch_racing_with_the_end_is_never_lost_nor_doubled() {
    let mut cx = ThreadContext::attach();
    let n = 300;
    let mut watched = Vec::with_capacity(n);
    for i in 0..n {
        // Objects that end at once, on their own threads, or on the runtime: each watch
        // lands before, during or after the end.
        let a = if i % 2 == 0 {
            cx.create(Thread::new(|_cx: &mut ThreadContext| {}))
        } else {
            cx.create(Async::new(|_cx: AsyncContext| async {}))
        };
        cx.watch(a);
        watched.push(a);
    }
    let mut told: HashMap<Address, usize> = HashMap::new();
    while told.len() < n {
        let (ended, from) = select_message::<Ended>(&mut cx, WAIT);
        assert_eq!(from, ended.address);
        *told.entry(ended.address).or_default() += 1;
    }
    for e in ended_in(drain(&mut cx, SETTLE)) {
        *told.entry(e.1).or_default() += 1;
    }
    for a in watched {
        assert_eq!(told.get(&a), Some(&1), "{a} told exactly once");
    }
}

#[test]
fn a_remote_watch_is_told_when_the_link_to_its_process_closes() {
    let mut cx = ThreadContext::attach();
    // No route at all: told at once.
    let nowhere = Address::from_parts(0x5eed_dead_beef_0001, 7);
    cx.watch(nowhere);
    let (ended, from) = select_message::<Ended>(&mut cx, WAIT);
    assert_eq!((from, ended.address), (nowhere, nowhere));

    let mut peer = Running::start(&mut Command::new(testbin("link_peer")));
    let address = peer.announced_address("listening ", WAIT);
    cx.create(Connect::new(address));
    let (_, server) = select_message::<Connected>(&mut cx, WAIT);
    assert!(!server.is_local());
    // The listening object, and an address of the peer's node that names nothing: the
    // link's end is all a remote watch can report, so both hear of it.
    let other = Address::from_parts(server.node(), 0x0bad_cafe);
    cx.watch(server);
    cx.watch(server);
    cx.watch(other);
    let before = ended_in(drain(&mut cx, SETTLE));
    assert!(before.is_empty(), "nothing ended yet: {before:?}");

    peer.signal(libc::SIGKILL);
    let _ = peer.finish(WAIT);
    let mut told = Vec::new();
    while told.len() < 2 {
        let (ended, from) = select_message::<Ended>(&mut cx, WAIT);
        assert_eq!(from, ended.address);
        told.push(ended.address);
    }
    assert!(told.contains(&server) && told.contains(&other), "{told:?}");
    assert!(
        ended_in(drain(&mut cx, SETTLE)).is_empty(),
        "each told once"
    );

    // The route is gone: a new watch is told at once.
    cx.watch(server);
    let (ended, _) = select_message::<Ended>(&mut cx, WAIT);
    assert_eq!(ended.address, server);
}
