//! Bounds on every wait: a hung test is a failed test, never a hung CI run.

#![allow(dead_code)]

use std::sync::mpsc::RecvTimeoutError;
use std::time::{Duration, Instant};

/// How long any single wait in a test may take before the test fails. Generous: the
/// machine is small and noisy, and nothing in the tests is about being fast.
pub const WAIT: Duration = Duration::from_secs(20);

/// Runs `body` on a thread of its own and fails the test if it has not finished within
/// `limit`. A panic in `body` is passed on. On a time-out the body's thread is left
/// behind (with whatever it holds); the test binary ends soon after.
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

/// Calls `probe` every few milliseconds until it gives a value, and gives that value;
/// fails the test, saying `what` was awaited, after `limit`.
pub fn poll_until<T>(limit: Duration, what: &str, mut probe: impl FnMut() -> Option<T>) -> T {
    let deadline = Instant::now() + limit;
    loop {
        if let Some(value) = probe() {
            return value;
        }
        assert!(Instant::now() < deadline, "{what}: not within {limit:?}");
        std::thread::sleep(Duration::from_millis(10));
    }
}
