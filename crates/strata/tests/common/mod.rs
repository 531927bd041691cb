//! Helpers shared by the integration tests: bounded waits, so that a hung test fails
//! instead of blocking the run forever.

#![allow(dead_code)]

use std::collections::HashMap;
use std::sync::mpsc::RecvTimeoutError;
use std::time::{Duration, Instant};

use strata::prelude::*;

/// How long any single wait in a test may take before the test fails. Generous: the
/// machine is small and noisy, and nothing in the tests is about being fast.
pub const WAIT: Duration = Duration::from_secs(20);

/// Runs `body` on a thread of its own and fails the test if it has not finished within
/// `limit` (a hung test is a failed test). A panic in `body` is passed on.
pub fn bounded<T: Send + 'static>(limit: Duration, body: impl FnOnce() -> T + Send + 'static) -> T {
    let (done, finished) = std::sync::mpsc::channel();
    let worker = std::thread::Builder::new()
        .name("bounded-test".into())
        .spawn(move || {
            let value = body();
            let _ = done.send(());
            value
        })
        .expect("a thread for the test body");
    match finished.recv_timeout(limit) {
        Ok(()) | Err(RecvTimeoutError::Disconnected) => match worker.join() {
            Ok(value) => value,
            Err(panic) => std::panic::resume_unwind(panic),
        },
        Err(RecvTimeoutError::Timeout) => panic!("the test did not finish within {limit:?}"),
    }
}

/// Waits (at most `timeout`) for the `Returned` of `child` and gives its value.
/// `Returned` envelopes of other children that arrive meanwhile are dropped; other
/// messages are kept for later `input`/`select` calls.
pub fn returned_from(cx: &mut ThreadContext, child: Address, timeout: Duration) -> AnyMessage {
    let deadline = Instant::now() + timeout;
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        let e = cx
            .select::<(Returned,)>(Some(left))
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
        let e = cx.select::<(Returned,)>(Some(left)).unwrap_or_else(|_| {
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
        .input_timeout(timeout)
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
        if let Some(e) = cx.input_timeout(left) {
            got.push(e);
        }
    }
}

/// Waits (at most `timeout`) for the first `T`, keeping other messages for later; gives
/// it with its sender.
pub fn select_message<T: Message>(cx: &mut ThreadContext, timeout: Duration) -> (T, Address) {
    let e = cx
        .select::<(T,)>(Some(timeout))
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
            .input_timeout(left)
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
