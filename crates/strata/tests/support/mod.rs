//! Helpers shared by the integration tests. Every wait here is bounded, so a hung test
//! fails instead of blocking the run forever.
//!
//! * [`bounds`]: `WAIT`, `bounded` and polling with a deadline (std only);
//! * [`gate`]: a latch that holds jobs running until the test opens it (std only);
//! * [`programs`]: the programs the tests start (built by the tests themselves), guards
//!   that kill them when a test fails, and `/proc` look-ups (std and libc only);
//! * [`table_server`]: a small std HTTP server for the load client's tests;
//! * [`http`]: a raw HTTP/1.1 client over std sockets for the HTTP front's tests;
//! * [`etcd`]: a real etcd cluster on loopback ports (std and libc only);
//! * [`loopback_hosts`]: "hosts" of one machine (runtime folders) and their peers;
//! * here: bounded waits for messages on a `ThreadContext`.
//!
//! The strata-cli tests include this folder too (`#[path]`), so it uses only what both
//! packages depend on.

#![allow(dead_code)]

pub mod bounds;
pub mod etcd;
pub mod gate;
pub mod http;
pub mod loopback_hosts;
pub mod programs;
pub mod table_server;

use std::collections::HashMap;
use std::time::{Duration, Instant};

use strata::prelude::*;

#[allow(unused_imports)]
pub use bounds::{bounded, poll_until, WAIT};

/// Waits (at most `timeout`) for the `Returned` of `child` and gives its value.
/// `Returned` envelopes of other children that arrive meanwhile are dropped; other
/// messages are kept for later `recv`/`select` calls.
pub fn returned_from(cx: &mut ThreadContext, child: Address, timeout: Duration) -> AnyMessage {
    let deadline = Instant::now() + timeout;
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        let e = cx
            .select_timeout::<(Returned,)>(left)
            .unwrap_or_else(|_| panic!("no Returned from {child} within {timeout:?}"));
        if e.sender() == child {
            return e.take::<Returned>().expect("selected a Returned").value;
        }
    }
}

/// Collects `n` `Returned` envelopes (at most `timeout` in all), keyed by the child.
pub fn collect_returned(
    cx: &mut ThreadContext,
    n: usize,
    timeout: Duration,
) -> HashMap<Address, AnyMessage> {
    let deadline = Instant::now() + timeout;
    let mut values = HashMap::with_capacity(n);
    while values.len() < n {
        let left = deadline.saturating_duration_since(Instant::now());
        let e = cx.select_timeout::<(Returned,)>(left).unwrap_or_else(|_| {
            panic!(
                "only {} of {n} Returned arrived within {timeout:?}",
                values.len()
            )
        });
        let from = e.sender();
        let value = e.take::<Returned>().expect("selected a Returned").value;
        assert!(
            values.insert(from, value).is_none(),
            "two Returned from {from}"
        );
    }
    values
}

/// Waits (at most `timeout`) for the next message, which must be a `T`; gives it with
/// its sender.
pub fn expect_message<T: Message>(cx: &mut ThreadContext, timeout: Duration) -> (T, Address) {
    let e = cx
        .recv_timeout(timeout)
        .unwrap_or_else(|| panic!("no message within {timeout:?}"));
    let from = e.sender();
    match e.take::<T>() {
        Ok(m) => (m, from),
        Err(other) => panic!(
            "expected a `{}`, got {:?} from {from}",
            T::type_name(),
            other.message()
        ),
    }
}

/// Reads whatever arrives during the next `window`, in order.
pub fn drain(cx: &mut ThreadContext, window: Duration) -> Vec<Envelope> {
    let deadline = Instant::now() + window;
    let mut got = Vec::new();
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return got;
        }
        if let Some(e) = cx.recv_timeout(left) {
            got.push(e);
        }
    }
}

/// Waits (at most `timeout`) for the first `T`, keeping other messages for later; gives
/// it with its sender.
pub fn select_message<T: Message>(cx: &mut ThreadContext, timeout: Duration) -> (T, Address) {
    let e = cx
        .select_timeout::<(T,)>(timeout)
        .unwrap_or_else(|_| panic!("no `{}` within {timeout:?}", T::type_name()));
    let from = e.sender();
    (e.take::<T>().expect("selected a T"), from)
}

/// Reads messages until (and including) the first `T` (at most `timeout`), then
/// whatever else arrives during `after`; gives them all, in order.
pub fn until<T: Message>(
    cx: &mut ThreadContext,
    timeout: Duration,
    after: Duration,
) -> Vec<Envelope> {
    let deadline = Instant::now() + timeout;
    let mut got = Vec::new();
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        let e = cx
            .recv_timeout(left)
            .unwrap_or_else(|| panic!("no `{}` within {timeout:?}; got {got:?}", T::type_name()));
        let done = e.is::<T>();
        got.push(e);
        if done {
            break;
        }
    }
    got.extend(drain(cx, after));
    got
}
