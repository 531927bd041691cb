//! Request helpers: small objects that turn "ask and wait" into a child that returns.
//!
//! Each is a machine; create it, then catch its value with
//! [`on_return`](crate::Context::on_return) (machines) or
//! [`wait_for`](crate::ThreadContext::wait_for) (threads):
//!
//! * [`GetResponse`] sends one request and returns the first answer.
//! * [`Concurrently`] sends several requests at once and returns all the answers as a
//!   `Vec<AnyMessage>`, in the order the requests were given, whatever order they came in.
//! * [`Delay`] returns [`TimedOut`] after a pause: a timer as an object.
//!
//! With a time-out, a helper that is still waiting returns [`TimedOut`] instead. Sent
//! [`Stop`], it returns [`Aborted`].

use std::collections::HashMap;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::message::{AnyMessage, Message};
use crate::object::Context;
use crate::runtime::{Envelope, SendError};
use crate::standard::{Aborted, Faulted, Returned, Start, Stop, TimedOut};
use crate::Address;

/// The private timer message of the request helpers.
#[derive(Debug, Clone, Copy, Serialize, Deserialize)]
struct Deadline;

impl Message for Deadline {
    fn type_name() -> &'static str {
        "strata.Deadline"
    }
}

/// Sends one request and returns the first message that comes back (a reply, a fault, or
/// `TimedOut`).
pub struct GetResponse<T> {
    request: Option<T>,
    to: Address,
    timeout: Option<Duration>,
}

impl<T: Message> GetResponse<T> {
    /// A request for `to`.
    pub fn new(request: T, to: Address) -> Self {
        GetResponse {
            request: Some(request),
            to,
            timeout: None,
        }
    }

    /// Gives up after `timeout`, returning [`TimedOut`]; the request carries it as its
    /// deadline (see [`Envelope::deadline`](crate::Envelope::deadline)).
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.timeout = Some(timeout);
        self
    }
}

#[crate::machine]
impl<T: Message> GetResponse<T> {
    fn start(&mut self, cx: &mut Context<Self>, _: Start) {
        let Some(request) = self.request.take() else {
            return;
        };
        // The request carries the time-out as its deadline: taken after it, nobody would
        // read its answer, so the receiver is spared the work.
        let deadline = self.timeout.map(|t| std::time::Instant::now() + t);
        match cx.try_send_any_by(self.to, AnyMessage::new(request), deadline) {
            Ok(()) => {}
            Err(e @ SendError::Full { .. }) => {
                cx.complete(crate::standard::Overloaded::new(e.to_string()));
                return;
            }
            Err(e) => {
                cx.complete(Faulted::new(e.to_string()));
                return;
            }
        }
        if let Some(t) = self.timeout {
            cx.start(Deadline, t);
        }
    }

    #[guard(sender == cx.address())]
    fn deadline(&mut self, cx: &mut Context<Self>, _: Deadline) {
        cx.complete(TimedOut::after(self.timeout.unwrap_or_default()));
    }

    /// A `Stop` from the one asked is its answer, not a request to stop waiting.
    #[guard(sender != self.to)]
    fn stop(&mut self, cx: &mut Context<Self>, _: Stop) {
        cx.complete(Aborted::new("stopped while waiting for a response"));
    }

    fn response(&mut self, cx: &mut Context<Self>, response: AnyMessage) {
        cx.complete(response);
    }
}

/// Sends several requests at once and returns their answers in request order.
///
/// The value is a `Vec<AnyMessage>` with one entry per request (a reply or a fault); with
/// a time-out that passes first, the value is [`TimedOut`].
#[derive(Default)]
pub struct Concurrently {
    requests: Vec<(AnyMessage, Address)>,
    timeout: Option<Duration>,
    slots: Vec<Option<AnyMessage>>,
    index: HashMap<Address, usize>,
}

impl Concurrently {
    /// No requests yet.
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds a request for `to`.
    pub fn ask<T: Message>(mut self, request: T, to: Address) -> Self {
        self.requests.push((AnyMessage::new(request), to));
        self
    }

    /// Gives up after `timeout`, returning [`TimedOut`].
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.timeout = Some(timeout);
        self
    }

    fn finish_if_done(&mut self, cx: &mut Context<Self>) {
        if self.slots.iter().all(Option::is_some) {
            let values: Vec<AnyMessage> = self.slots.drain(..).flatten().collect();
            cx.complete(values);
        }
    }
}

#[crate::machine]
impl Concurrently {
    fn start(&mut self, cx: &mut Context<Self>, _: Start) {
        let requests = std::mem::take(&mut self.requests);
        self.slots = (0..requests.len()).map(|_| None).collect();
        for (i, (request, to)) in requests.into_iter().enumerate() {
            // No time-out of their own: the collator's deadline covers them all, and
            // a helper timing out first would put `TimedOut` in a slot instead.
            let child = cx.create(GetResponse::new(request, to));
            self.index.insert(child, i);
        }
        if let Some(t) = self.timeout {
            cx.start(Deadline, t);
        }
        self.finish_if_done(cx);
    }

    fn returned(&mut self, cx: &mut Context<Self>, returned: Returned) {
        let Some(i) = self.index.remove(&cx.sender()) else {
            return;
        };
        self.slots[i] = Some(returned.value);
        self.finish_if_done(cx);
    }

    #[guard(sender == cx.address())]
    fn deadline(&mut self, cx: &mut Context<Self>, _: Deadline) {
        cx.abort(TimedOut::after(self.timeout.unwrap_or_default()));
    }

    fn stop(&mut self, cx: &mut Context<Self>, _: Stop) {
        cx.abort(Aborted::new("stopped while collating"));
    }

    /// Anything else is ignored.
    fn other(&mut self, _cx: &mut Context<Self>, _: Envelope) {}
}

/// Returns [`TimedOut`] after `pause`: a timer as an object, for callback-style code.
pub struct Delay {
    pause: Duration,
}

impl Delay {
    /// A delay of `pause`.
    pub fn new(pause: Duration) -> Self {
        Delay { pause }
    }
}

#[crate::machine]
impl Delay {
    fn start(&mut self, cx: &mut Context<Self>, _: Start) {
        cx.start(Deadline, self.pause);
    }

    /// Its own timer (the only sender of `Deadline` in this process; the guard keeps out
    /// one decoded from another process).
    #[guard(sender == cx.address())]
    fn deadline(&mut self, cx: &mut Context<Self>, _: Deadline) {
        cx.complete(TimedOut::after(self.pause));
    }

    fn stop(&mut self, cx: &mut Context<Self>, _: Stop) {
        cx.complete(Aborted::new("delay stopped"));
    }

    /// Anything else is ignored.
    fn other(&mut self, _cx: &mut Context<Self>, _: Envelope) {}
}
