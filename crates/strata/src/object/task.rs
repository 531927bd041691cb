//! Async objects: an `async` closure on the shared runtime. Cheap enough to create by the
//! hundred thousand; they read their mailbox with `.await`.
//!
//! ```
//! use strata::prelude::*;
//!
//! let mut cx = ThreadContext::attach();
//! let doubler = cx.create(Async::new(|mut cx: AsyncContext| async move {
//!     let e = cx.recv().await;
//!     2 * e.take::<i32>().unwrap()
//! }));
//! cx.send(doubler, 21);
//! assert_eq!(cx.wait_for(doubler).downcast::<i32>().unwrap(), 42);
//! ```

use std::collections::VecDeque;
use std::future::Future;
use std::ops::{Deref, DerefMut};
use std::panic::AssertUnwindSafe;
use std::sync::Arc;
use std::time::Duration;

use futures_util::FutureExt;
use parking_lot::Mutex;

use super::{panic_fault, Core, IntoValue, Object, Selection};
use crate::runtime::cork::Corked;
use crate::runtime::{node, Envelope};
use crate::standard::TimedOut;

/// An async object: `Async::new(|cx| async move { ... })`; the future's output is the
/// object's value.
pub struct Async<F>(F);

impl<F> Async<F> {
    /// Wraps a closure that takes the object's context and returns its future.
    pub fn new(f: F) -> Self {
        Async(f)
    }
}

type Slot = Arc<Mutex<Option<Core>>>;

impl<F, Fut> Object for Async<F>
where
    F: FnOnce(AsyncContext) -> Fut + Send + 'static,
    Fut: Future + Send + 'static,
    Fut::Output: IntoValue,
{
    fn kind(&self) -> &'static str {
        "async"
    }

    fn run(self, core: Core) {
        let address = core.address();
        let slot: Slot = Arc::new(Mutex::new(None));
        let cx = AsyncContext {
            core: Some(core),
            saved: VecDeque::new(),
            slot: Some(slot.clone()),
        };
        node().handle().spawn(Corked(async move {
            let outcome = AssertUnwindSafe(async move { (self.0)(cx).await })
                .catch_unwind()
                .await;
            // The context has been dropped with the future, and its core parked in the slot.
            let mut core = slot.lock().take();
            let value = match outcome {
                Ok(r) => core
                    .as_mut()
                    .and_then(|c| c.take_result())
                    .unwrap_or_else(|| r.into_value()),
                Err(payload) => panic_fault(payload, "async", address),
            };
            if let Some(mut core) = core {
                core.finish(value);
            }
        }));
    }
}

/// An async object's view of the runtime: [`Core`] plus receive with `.await`.
///
/// Keep it inside the object's future (do not move it to another task): when the future
/// ends, the context hands its core back so the object can end cleanly.
pub struct AsyncContext {
    core: Option<Core>,
    saved: VecDeque<Envelope>,
    /// Where an async object's core goes when its future ends (`None` for an attached
    /// context, whose core simply ends with it).
    slot: Option<Slot>,
}

impl Deref for AsyncContext {
    type Target = Core;
    fn deref(&self) -> &Core {
        self.core.as_ref().expect("core present until drop")
    }
}

impl DerefMut for AsyncContext {
    fn deref_mut(&mut self) -> &mut Core {
        self.core.as_mut().expect("core present until drop")
    }
}

impl Drop for AsyncContext {
    fn drop(&mut self) {
        if let Some(core) = &self.core {
            super::answer_unread(core.address(), self.saved.drain(..));
        }
        if let Some(slot) = &self.slot {
            *slot.lock() = self.core.take();
        }
    }
}

impl AsyncContext {
    /// Gives plain async code (a task that is not an object, such as a server's request
    /// handler) an address and a mailbox, so it can send and await answers.
    ///
    /// Cheap enough for one per request. Dropping it stops the children it created.
    pub fn attach() -> Self {
        let (address, mailbox) = node().register(crate::runtime::DEFAULT_CAPACITY);
        AsyncContext {
            core: Some(Core::new(
                address,
                crate::Address::NULL,
                mailbox,
                "attached",
            )),
            saved: VecDeque::new(),
            slot: None,
        }
    }

    async fn next(&mut self) -> Envelope {
        if let Some(e) = self.saved.pop_front() {
            self.set_current(&e);
            return e;
        }
        let mailbox = self.mailbox().clone();
        loop {
            let e = std::future::poll_fn(|c| mailbox.poll_pop(c)).await;
            if let Some(e) = self.admit(e) {
                self.set_current(&e);
                return e;
            }
        }
    }

    /// Makes this object a stand-in for `target` (see [`Core::stand_in_for`]); the
    /// ordinary messages `select` kept for later are passed on first, in order.
    pub fn stand_in_for(&mut self, target: crate::Address) -> Result<(), crate::SendError> {
        let earlier = super::take_ordinary(&mut self.saved);
        let core = self.core.as_mut().expect("core present until drop");
        core.stand_in_with(target, earlier)
    }

    /// Takes the next message if one is waiting, without waiting.
    pub fn try_recv(&mut self) -> Option<Envelope> {
        if let Some(e) = self.saved.pop_front() {
            self.set_current(&e);
            return Some(e);
        }
        loop {
            let e = self.mailbox().try_pop()?;
            if let Some(e) = self.admit(e) {
                self.set_current(&e);
                return Some(e);
            }
        }
    }

    /// Takes every ordinary message waiting (kept by `select`, or still in the mailbox),
    /// oldest first: what an object that ends answers with a fault.
    pub(crate) fn take_ordinary(&mut self) -> Vec<Envelope> {
        let mut taken = super::take_ordinary(&mut self.saved);
        while let Some(e) = self.try_recv() {
            if super::is_ordinary(&e) {
                taken.push(e);
            }
        }
        taken
    }

    /// Waits for the next message.
    pub async fn recv(&mut self) -> Envelope {
        self.next().await
    }

    /// Waits for the next message for at most `timeout`.
    pub async fn recv_timeout(&mut self, timeout: Duration) -> Option<Envelope> {
        tokio::time::timeout(timeout, self.next()).await.ok()
    }

    /// Waits for the first message matching the selection; messages that do not match
    /// are kept, in order, for later.
    pub async fn select<S: Selection>(&mut self) -> Envelope {
        S::register();
        if let Some(i) = self.saved.iter().position(S::matches) {
            let e = self.saved.remove(i).expect("index in range");
            self.set_current(&e);
            return e;
        }
        let mailbox = self.mailbox().clone();
        loop {
            let e = std::future::poll_fn(|c| mailbox.poll_pop(c)).await;
            let Some(e) = self.admit(e) else { continue };
            if S::matches(&e) {
                self.set_current(&e);
                return e;
            }
            self.saved.push_back(e);
        }
    }

    /// [`select`](Self::select) for at most `timeout`.
    pub async fn select_timeout<S: Selection>(
        &mut self,
        timeout: Duration,
    ) -> Result<Envelope, TimedOut> {
        tokio::time::timeout(timeout, self.select::<S>())
            .await
            .map_err(|_| TimedOut::after(timeout))
    }
}
