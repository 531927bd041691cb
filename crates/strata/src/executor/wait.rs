//! Waiting on many futures at once, from a thread: all, any, the first error, or each as
//! it completes; every one also with a time-out.
//!
//! The answers are indices into the slice given, so the futures stay where they are and
//! their values are taken afterwards (a done future's [`wait`](super::JobFuture::wait)
//! returns at once).
//!
//! Futures that are done already count at once: `wait_any` on a slice with a done future
//! returns without waiting (futurist's `wait_for_any` could block forever there,
//! LP#1848457). A waiter that must wait gives every pending future one shared wake-up and
//! checks again each time one fires, so nothing is polled.
//!
//! Async code awaits the futures themselves (`futures_util::future::join_all`,
//! `select_all`, `tokio::time::timeout`).
//!
//! ```
//! use std::time::Duration;
//! use strata::executor::{wait, Executor};
//!
//! let pool = Executor::threads().max_workers(2).start();
//! let fs = vec![pool.submit_fn(|| 1u8), pool.submit_fn(|| 2u8)];
//! let w = wait::wait_all_timeout(&fs, Duration::from_secs(10));
//! assert_eq!((w.done.len(), w.not_done.len()), (2, 0));
//! ```

use std::sync::Arc;
use std::time::{Duration, Instant};

use super::future::{JobFuture, Signal, Slot};
use crate::message::Message;
use crate::standard::TimedOut;

/// Which futures were done when a wait returned, and which were not (indices into the
/// slice given, in order).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Waited {
    /// The futures that are done.
    pub done: Vec<usize>,
    /// The futures that are not.
    pub not_done: Vec<usize>,
}

#[derive(Clone, Copy)]
enum Until {
    All,
    Any,
    FirstError,
}

fn met(slots: &[&Arc<Slot>], until: Until) -> bool {
    let mut states = slots.iter().map(|s| s.completed());
    match until {
        Until::All => states.all(|c| c.is_some()),
        Until::Any => slots.is_empty() || states.any(|c| c.is_some()),
        Until::FirstError => {
            let mut all = true;
            for c in states {
                match c {
                    Some((_, true)) => return true,
                    Some(_) => {}
                    None => all = false,
                }
            }
            all
        }
    }
}

fn wait_on(slots: &[&Arc<Slot>], until: Until, deadline: Option<Instant>) -> Waited {
    if !met(slots, until) {
        let signal = Signal::new();
        for s in slots {
            s.notify(&signal);
        }
        while !met(slots, until) {
            if !signal.wait(deadline) && deadline.is_some_and(|d| Instant::now() >= d) {
                break;
            }
        }
        for s in slots {
            s.forget(&signal);
        }
    }
    let mut w = Waited::default();
    for (i, s) in slots.iter().enumerate() {
        if s.is_done() {
            w.done.push(i);
        } else {
            w.not_done.push(i);
        }
    }
    w
}

fn slots<T>(futures: &[JobFuture<T>]) -> Vec<&Arc<Slot>>
where
    T: Message,
{
    futures.iter().map(|f| f.slot()).collect()
}

/// The index of the future that completed first among those done, waiting until one is.
pub(crate) fn first_done(slots: &[&Arc<Slot>]) -> usize {
    wait_on(slots, Until::Any, None);
    earliest(slots, 0..slots.len()).expect("one is done")
}

/// Of `among`, the done slot that completed first.
fn earliest(slots: &[&Arc<Slot>], among: impl IntoIterator<Item = usize>) -> Option<usize> {
    among
        .into_iter()
        .filter_map(|i| slots[i].completed().map(|(order, _)| (order, i)))
        .min()
        .map(|(_, i)| i)
}

fn deadline(timeout: Duration) -> Option<Instant> {
    Some(Instant::now() + timeout)
}

/// Waits until every future is done.
pub fn wait_all<T: Message>(futures: &[JobFuture<T>]) -> Waited {
    wait_on(&slots(futures), Until::All, None)
}

/// Waits at most `timeout` until every future is done.
pub fn wait_all_timeout<T: Message>(futures: &[JobFuture<T>], timeout: Duration) -> Waited {
    wait_on(&slots(futures), Until::All, deadline(timeout))
}

/// Waits until at least one future is done (at once when one is already; an empty slice
/// returns at once too).
pub fn wait_any<T: Message>(futures: &[JobFuture<T>]) -> Waited {
    wait_on(&slots(futures), Until::Any, None)
}

/// Waits at most `timeout` until at least one future is done.
pub fn wait_any_timeout<T: Message>(futures: &[JobFuture<T>], timeout: Duration) -> Waited {
    wait_on(&slots(futures), Until::Any, deadline(timeout))
}

/// Waits until one future has failed (any [`JobError`](super::JobError)), or all are done.
pub fn wait_first_error<T: Message>(futures: &[JobFuture<T>]) -> Waited {
    wait_on(&slots(futures), Until::FirstError, None)
}

/// Waits at most `timeout` until one future has failed, or all are done.
pub fn wait_first_error_timeout<T: Message>(futures: &[JobFuture<T>], timeout: Duration) -> Waited {
    wait_on(&slots(futures), Until::FirstError, deadline(timeout))
}

/// The indices of `futures` in the order they complete (those done already first, in the
/// order they completed), each as soon as it does.
pub fn as_completed<T: Message>(futures: &[JobFuture<T>]) -> AsCompleted<'_, T> {
    AsCompleted {
        futures,
        remaining: (0..futures.len()).collect(),
        deadline: None,
    }
}

/// [`as_completed`] for at most `timeout` in all: once it passes, the iterator gives one
/// `Err(TimedOut)` and ends (the futures not given are not done).
pub fn as_completed_timeout<T: Message>(
    futures: &[JobFuture<T>],
    timeout: Duration,
) -> AsCompletedTimeout<'_, T> {
    AsCompletedTimeout {
        inner: AsCompleted {
            futures,
            remaining: (0..futures.len()).collect(),
            deadline: deadline(timeout),
        },
        timeout,
        timed_out: false,
    }
}

/// The iterator of [`as_completed`].
#[derive(Debug)]
pub struct AsCompleted<'a, T> {
    futures: &'a [JobFuture<T>],
    remaining: Vec<usize>,
    deadline: Option<Instant>,
}

impl<T: Message> AsCompleted<'_, T> {
    /// The next index, or `None` when all were given or the deadline passed.
    fn step(&mut self) -> Option<usize> {
        if self.remaining.is_empty() {
            return None;
        }
        let slots: Vec<&Arc<Slot>> = self
            .remaining
            .iter()
            .map(|&i| self.futures[i].slot())
            .collect();
        wait_on(&slots, Until::Any, self.deadline);
        let at = earliest(&slots, 0..slots.len())?;
        Some(self.remaining.remove(at))
    }
}

impl<T: Message> Iterator for AsCompleted<'_, T> {
    type Item = usize;

    fn next(&mut self) -> Option<usize> {
        self.step()
    }
}

/// The iterator of [`as_completed_timeout`].
#[derive(Debug)]
pub struct AsCompletedTimeout<'a, T> {
    inner: AsCompleted<'a, T>,
    timeout: Duration,
    timed_out: bool,
}

impl<T: Message> Iterator for AsCompletedTimeout<'_, T> {
    type Item = Result<usize, TimedOut>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.timed_out || self.inner.remaining.is_empty() {
            return None;
        }
        match self.inner.step() {
            Some(i) => Some(Ok(i)),
            None => {
                self.timed_out = true;
                Some(Err(TimedOut::after(self.timeout)))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::message::AnyMessage;
    use crate::standard::Faulted;

    fn futures(n: usize) -> (Vec<Arc<Slot>>, Vec<JobFuture<u32>>) {
        let slots: Vec<Arc<Slot>> = (0..n).map(|_| Slot::new::<u32>()).collect();
        let fs = slots
            .iter()
            .map(|s| JobFuture::new(s.clone(), None))
            .collect();
        (slots, fs)
    }

    const SHORT: Duration = Duration::from_millis(20);

    #[test]
    fn waits_on_done_futures_return_at_once() {
        let (slots, fs) = futures(3);
        slots[1].resolve(AnyMessage::new(1u32));
        let w = wait_any(&fs);
        assert_eq!(w.done, [1]);
        assert_eq!(w.not_done, [0, 2]);
        assert_eq!(wait_any_timeout(&fs, Duration::ZERO).done, [1]);
        let w = wait_all_timeout(&fs, SHORT);
        assert_eq!((w.done.len(), w.not_done.len()), (1, 2));
        assert_eq!(wait_any::<u32>(&[]), Waited::default());
    }

    #[test]
    fn first_error_stops_at_a_failure_or_when_all_are_done() {
        let (slots, fs) = futures(3);
        slots[0].resolve(AnyMessage::new(1u32));
        assert_eq!(wait_first_error_timeout(&fs, SHORT).done, [0]);
        slots[2].resolve(AnyMessage::new(Faulted::new("x")));
        assert_eq!(wait_first_error(&fs).not_done, [1]);
        let (slots, fs) = futures(2);
        for s in &slots {
            s.resolve(AnyMessage::new(3u32));
        }
        assert_eq!(wait_first_error(&fs).done, [0, 1]);
    }

    #[test]
    fn a_waiter_wakes_when_another_thread_resolves() {
        let (slots, fs) = futures(2);
        let s = slots[1].clone();
        let t = std::thread::spawn(move || {
            std::thread::sleep(SHORT);
            s.resolve(AnyMessage::new(9u32));
        });
        assert_eq!(wait_any(&fs).done, [1]);
        t.join().unwrap();
        slots[0].resolve(AnyMessage::new(8u32));
        assert_eq!(wait_all(&fs).not_done, Vec::<usize>::new());
    }

    #[test]
    fn as_completed_gives_completion_order_and_a_time_out_once() {
        let (slots, fs) = futures(3);
        slots[2].resolve(AnyMessage::new(2u32));
        slots[0].resolve(AnyMessage::new(0u32));
        let mut it = as_completed_timeout(&fs, SHORT);
        assert_eq!(it.next(), Some(Ok(2)));
        assert_eq!(it.next(), Some(Ok(0)));
        assert!(matches!(it.next(), Some(Err(_))));
        assert_eq!(it.next(), None);
        slots[1].resolve(AnyMessage::new(1u32));
        assert_eq!(as_completed(&fs).collect::<Vec<_>>(), [2, 0, 1]);
    }
}
