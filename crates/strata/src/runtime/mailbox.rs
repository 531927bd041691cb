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
use crate::Address;

/// Why a push was refused; the envelope comes back to the caller.
pub(crate) enum Refused {
    /// The queue holds `capacity` ordinary messages already.
    Full(Envelope),
    /// The object has ended.
    Closed(Envelope),
    /// The object forwards ordinary messages to this address (see [`Mailbox::forward_to`]).
    Forward(Envelope, Address),
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
    /// Where ordinary messages go instead of this queue, once set.
    forward: Option<Address>,
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
                forward: None,
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
                if let Some(to) = inner.forward {
                    return Err(Refused::Forward(envelope, to));
                }
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

    /// Makes this mailbox a forwarding entry: from now on ordinary pushes are handed back
    /// to the deliverer to go to `to` (keeping their sender), so they skip the object.
    /// Control pushes still queue here. `earlier` (envelopes the object took out already,
    /// oldest first), then the ordinary envelopes still queued, are passed to `deliver`
    /// first, under the lock, so no later push overtakes them. `to` must be an address on
    /// another node: a local object forwarding back here would loop.
    pub(crate) fn forward_to(
        &self,
        to: Address,
        earlier: Vec<Envelope>,
        mut deliver: impl FnMut(Envelope),
    ) {
        let mut inner = self.inner.lock();
        for e in earlier {
            deliver(e);
        }
        let queued = std::mem::take(&mut inner.queue);
        for (e, control) in queued {
            if control {
                inner.queue.push_back((e, true));
            } else {
                deliver(e);
            }
        }
        inner.ordinary = 0;
        inner.forward = Some(to);
    }

    /// Ends forwarding: ordinary pushes queue here again.
    pub(crate) fn stop_forwarding(&self) {
        self.inner.lock().forward = None;
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::message::AnyMessage;
    use crate::standard::{Ping, Stop};

    fn envelope(n: u64, control: bool) -> Envelope {
        let message = if control {
            AnyMessage::new(Stop)
        } else {
            AnyMessage::new(Ping)
        };
        Envelope::new(
            Address::from_parts(1, n),
            Address::from_parts(1, 99),
            message,
        )
    }

    #[test]
    fn forwarding_keeps_the_order_and_leaves_control_messages_queued() {
        let mb = Mailbox::new(8);
        assert!(mb.push(envelope(2, false), false).is_ok());
        assert!(mb.push(envelope(3, true), true).is_ok());
        assert!(mb.push(envelope(4, false), false).is_ok());
        let next = Address::from_parts(7, 1);
        let mut forwarded = Vec::new();
        mb.forward_to(next, vec![envelope(1, false)], |e| {
            forwarded.push(e.sender().object())
        });
        assert_eq!(
            forwarded,
            vec![1, 2, 4],
            "earlier first, then queued, in order"
        );
        match mb.push(envelope(5, false), false) {
            Err(Refused::Forward(e, to)) => {
                assert_eq!(to, next);
                assert_eq!(e.sender().object(), 5);
            }
            _ => panic!("an ordinary push after forward_to must be handed back"),
        }
        assert!(
            mb.push(envelope(6, true), true).is_ok(),
            "control still queues"
        );
        let mut batch = VecDeque::new();
        mb.take_all(&mut batch);
        let kept: Vec<u64> = batch.iter().map(|(e, _)| e.sender().object()).collect();
        assert_eq!(kept, vec![3, 6]);
        mb.stop_forwarding();
        assert!(mb.push(envelope(7, false), false).is_ok(), "queues again");
        assert_eq!(mb.len(), 1);
    }
}
