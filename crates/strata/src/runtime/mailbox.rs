//! The mailbox: one bounded queue that serves blocking and async receivers alike.
//!
//! Any number of senders push; exactly one receiver (the object) pops, either by parking
//! its OS thread ([`Mailbox::pop_blocking`]) or by registering a task waker
//! ([`Mailbox::poll_pop`]). The capacity bounds ordinary messages only: the runtime's own
//! deliveries (`Stop`, `Returned`, timers, overload notices) are *control* pushes that are
//! always accepted, so shutdown and bookkeeping can never be lost to a full queue.

use std::collections::VecDeque;
use std::task::{Context, Poll, Waker};
use std::time::Instant;

use parking_lot::Mutex;

use super::Envelope;

/// Why a push was refused; the envelope comes back to the caller.
pub(crate) enum Refused {
    /// The queue holds `capacity` ordinary messages already.
    Full(Envelope),
    /// The object has ended.
    Closed(Envelope),
}

enum Waiter {
    None,
    Task(Waker),
    Thread(std::thread::Thread),
}

struct Inner {
    /// Each envelope with whether it was a control push.
    queue: VecDeque<(Envelope, bool)>,
    /// The ordinary (non-control) envelopes in `queue`: what the capacity bounds.
    ordinary: usize,
    waiter: Waiter,
    closed: bool,
}

impl Inner {
    fn pop(&mut self) -> Option<Envelope> {
        let (envelope, control) = self.queue.pop_front()?;
        if !control {
            self.ordinary -= 1;
        }
        Some(envelope)
    }
}

/// A bounded multi-producer, single-consumer queue of envelopes.
pub(crate) struct Mailbox {
    inner: Mutex<Inner>,
    capacity: usize,
}

impl Mailbox {
    pub(crate) fn new(capacity: usize) -> Self {
        Mailbox {
            inner: Mutex::new(Inner {
                queue: VecDeque::new(),
                ordinary: 0,
                waiter: Waiter::None,
                closed: false,
            }),
            capacity,
        }
    }

    pub(crate) fn capacity(&self) -> usize {
        self.capacity
    }

    /// Queues an envelope; `control` pushes ignore the capacity.
    pub(crate) fn push(&self, envelope: Envelope, control: bool) -> Result<(), Refused> {
        let waiter = {
            let mut inner = self.inner.lock();
            if inner.closed {
                return Err(Refused::Closed(envelope));
            }
            if !control {
                if inner.ordinary >= self.capacity {
                    return Err(Refused::Full(envelope));
                }
                inner.ordinary += 1;
            }
            inner.queue.push_back((envelope, control));
            std::mem::replace(&mut inner.waiter, Waiter::None)
        };
        match waiter {
            Waiter::None => {}
            Waiter::Task(w) => w.wake(),
            Waiter::Thread(t) => t.unpark(),
        }
        Ok(())
    }

    /// Takes the next envelope, parking the thread until one arrives or `deadline` passes.
    pub(crate) fn pop_blocking(&self, deadline: Option<Instant>) -> Option<Envelope> {
        loop {
            {
                let mut inner = self.inner.lock();
                if let Some(e) = inner.pop() {
                    return Some(e);
                }
                inner.waiter = Waiter::Thread(std::thread::current());
            }
            match deadline {
                None => std::thread::park(),
                Some(d) => {
                    let now = Instant::now();
                    if now >= d {
                        let mut inner = self.inner.lock();
                        inner.waiter = Waiter::None;
                        return inner.pop();
                    }
                    std::thread::park_timeout(d - now);
                }
            }
        }
    }

    /// Moves everything queued into `batch` (which must be empty) under one lock: a
    /// machine works through the batch without touching the lock again.
    pub(crate) fn take_all(&self, batch: &mut VecDeque<(Envelope, bool)>) {
        debug_assert!(batch.is_empty());
        let mut inner = self.inner.lock();
        if !inner.queue.is_empty() {
            std::mem::swap(&mut inner.queue, batch);
            inner.ordinary = 0;
        }
    }

    /// Ready when something is queued; otherwise registers the task to be woken.
    pub(crate) fn poll_ready(&self, cx: &mut Context<'_>) -> Poll<()> {
        let mut inner = self.inner.lock();
        if !inner.queue.is_empty() {
            return Poll::Ready(());
        }
        match &inner.waiter {
            Waiter::Task(w) if w.will_wake(cx.waker()) => {}
            _ => inner.waiter = Waiter::Task(cx.waker().clone()),
        }
        Poll::Pending
    }

    /// Takes the next envelope, or registers the task to be woken when one arrives.
    pub(crate) fn poll_pop(&self, cx: &mut Context<'_>) -> Poll<Envelope> {
        let mut inner = self.inner.lock();
        match inner.pop() {
            Some(e) => Poll::Ready(e),
            None => {
                match &inner.waiter {
                    Waiter::Task(w) if w.will_wake(cx.waker()) => {}
                    _ => inner.waiter = Waiter::Task(cx.waker().clone()),
                }
                Poll::Pending
            }
        }
    }

    /// Refuses further pushes and returns whatever was still queued.
    pub(crate) fn close(&self) -> VecDeque<Envelope> {
        let mut inner = self.inner.lock();
        inner.closed = true;
        inner.waiter = Waiter::None;
        inner.ordinary = 0;
        std::mem::take(&mut inner.queue)
            .into_iter()
            .map(|(e, _)| e)
            .collect()
    }

    /// The number of queued envelopes.
    pub(crate) fn len(&self) -> usize {
        self.inner.lock().queue.len()
    }
}
