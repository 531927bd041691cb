//! Function objects: a function on an OS thread of its own, reading its mailbox with
//! blocking calls. Good for CPU work and for libraries that block.
//!
//! [`ThreadContext::attach`] gives any ordinary thread (`main`, a test) the same powers, so
//! code outside the object tree can create objects, send, and wait for answers.

use std::collections::VecDeque;
use std::ops::{Deref, DerefMut};
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::time::{Duration, Instant};

use super::{panic_fault, Core, IntoValue, Object, Selection};
use crate::message::{AnyMessage, Message};
use crate::request::GetResponse;
use crate::runtime::{node, Envelope, DEFAULT_CAPACITY};
use crate::standard::{Returned, TimedOut};
use crate::Address;

/// A function object: `Thread::new(|cx| ...)` runs the closure on its own OS thread; what it
/// returns is the object's value.
pub struct Thread<F>(F);

impl<F> Thread<F> {
    /// Wraps a function taking the thread's context.
    pub fn new(f: F) -> Self {
        Thread(f)
    }
}

impl<F, R> Object for Thread<F>
where
    F: FnOnce(&mut ThreadContext) -> R + Send + 'static,
    R: IntoValue,
{
    fn kind(&self) -> &'static str {
        "thread"
    }

    fn run(self, core: Core) {
        let name = format!("strata-t{}", core.address().object());
        let body = move || {
            let _runtime = crate::runtime::enter_object_thread();
            let mut cx = ThreadContext::new(core);
            let outcome = catch_unwind(AssertUnwindSafe(|| (self.0)(&mut cx)));
            let value = match outcome {
                Ok(r) => cx.core.take_result().unwrap_or_else(|| r.into_value()),
                Err(payload) => panic_fault(payload, "thread", cx.address()),
            };
            cx.core.finish(value);
        };
        if let Err(e) = std::thread::Builder::new().name(name).spawn(body) {
            tracing::error!(target: "strata::object", error = %e, "cannot start a thread for a function object");
        }
    }
}

/// A function object's (or an attached thread's) view of the runtime: [`Core`] plus
/// blocking receive.
pub struct ThreadContext {
    core: Core,
    saved: VecDeque<Envelope>,
}

impl Deref for ThreadContext {
    type Target = Core;
    fn deref(&self) -> &Core {
        &self.core
    }
}

impl DerefMut for ThreadContext {
    fn deref_mut(&mut self) -> &mut Core {
        &mut self.core
    }
}

impl Drop for ThreadContext {
    fn drop(&mut self) {
        // What `select` kept and nobody read; the core then answers what is still queued.
        super::answer_unread(self.core.address(), self.saved.drain(..));
    }
}

impl ThreadContext {
    fn new(core: Core) -> Self {
        ThreadContext {
            core,
            saved: VecDeque::new(),
        }
    }

    /// Gives the calling thread an address and a mailbox, so code outside any object
    /// (`main`, tests, other libraries' threads) can create objects and talk to them.
    ///
    /// Dropping the context stops the children it created.
    pub fn attach() -> Self {
        let (address, mailbox) = node().register(DEFAULT_CAPACITY);
        ThreadContext::new(Core::new(address, Address::NULL, mailbox, "attached"))
    }

    /// Makes this object a stand-in for `target` (see [`Core::stand_in_for`]); the
    /// ordinary messages `select` and `wait_for` kept for later are passed on first, in
    /// order.
    pub fn stand_in_for(&mut self, target: Address) -> Result<(), crate::SendError> {
        let earlier = super::take_ordinary(&mut self.saved);
        self.core.stand_in_with(target, earlier)
    }

    /// Waits for the next message.
    pub fn recv(&mut self) -> Envelope {
        loop {
            if let Some(e) = self.next(None) {
                return e;
            }
        }
    }

    /// Waits for the next message for at most `timeout`.
    pub fn recv_timeout(&mut self, timeout: Duration) -> Option<Envelope> {
        self.next(Some(Instant::now() + timeout))
    }

    /// Takes the next message if one is waiting, without waiting.
    pub fn try_recv(&mut self) -> Option<Envelope> {
        self.next(Some(Instant::now()))
    }

    fn next(&mut self, deadline: Option<Instant>) -> Option<Envelope> {
        if let Some(e) = self.saved.pop_front() {
            self.core.set_current(&e);
            return Some(e);
        }
        loop {
            let e = self.core.mailbox().pop_blocking(deadline)?;
            if let Some(e) = self.core.admit(e) {
                self.core.set_current(&e);
                return Some(e);
            }
        }
    }

    /// Waits for the first message that matches the selection. Messages that do not match
    /// are kept, in order, for later `recv`/`select` calls: nothing is lost.
    ///
    /// ```
    /// # use strata::prelude::*;
    /// let mut cx = ThreadContext::attach();
    /// let me = cx.address();
    /// cx.send(me, Ack);
    /// cx.send(me, Ping);
    /// let e = cx.select::<(Ping, Stop)>();
    /// assert!(e.is::<Ping>());
    /// assert!(cx.recv().is::<Ack>()); // kept, not lost
    /// ```
    pub fn select<S: Selection>(&mut self) -> Envelope {
        self.select_until::<S>(None).expect("no deadline")
    }

    /// [`select`](Self::select) for at most `timeout`.
    pub fn select_timeout<S: Selection>(
        &mut self,
        timeout: Duration,
    ) -> Result<Envelope, TimedOut> {
        self.select_until::<S>(Some(Instant::now() + timeout))
            .ok_or_else(|| TimedOut::after(timeout))
    }

    fn select_until<S: Selection>(&mut self, deadline: Option<Instant>) -> Option<Envelope> {
        S::register();
        if let Some(i) = self.saved.iter().position(S::matches) {
            let e = self.saved.remove(i).expect("index in range");
            self.core.set_current(&e);
            return Some(e);
        }
        loop {
            let e = self.core.mailbox().pop_blocking(deadline)?;
            let Some(e) = self.core.admit(e) else {
                continue;
            };
            if S::matches(&e) {
                self.core.set_current(&e);
                return Some(e);
            }
            self.saved.push_back(e);
        }
    }

    /// Sends `request` to `to` and waits for the answer (through a [`GetResponse`] child).
    pub fn ask<T: Message>(&mut self, to: Address, request: T) -> AnyMessage {
        let child = self.create(GetResponse::new(request, to));
        self.wait_for(child)
    }

    /// [`ask`](Self::ask) for at most `timeout`: a time-out comes back as the value
    /// `TimedOut`.
    pub fn ask_timeout<T: Message>(
        &mut self,
        to: Address,
        request: T,
        timeout: Duration,
    ) -> AnyMessage {
        let child = self.create(GetResponse::new(request, to).timeout(timeout));
        self.wait_for(child)
    }

    /// Waits until the child at `child` returns, and gives its value. Other messages that
    /// arrive meanwhile are kept for later.
    pub fn wait_for(&mut self, child: Address) -> AnyMessage {
        let found = |e: &Envelope| e.is::<Returned>() && e.sender() == child;
        if let Some(i) = self.saved.iter().position(found) {
            let e = self.saved.remove(i).expect("index in range");
            return returned_value(e);
        }
        loop {
            let e = self.core.mailbox().pop_blocking(None).expect("no deadline");
            let Some(e) = self.core.admit(e) else {
                continue;
            };
            if found(&e) {
                return returned_value(e);
            }
            self.saved.push_back(e);
        }
    }
}

fn returned_value(e: Envelope) -> AnyMessage {
    match e.take::<Returned>() {
        Ok(r) => r.value,
        Err(_) => unreachable!("checked to be Returned"),
    }
}
