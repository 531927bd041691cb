//! Postboxes: sending as an object from anywhere.

use std::sync::Arc;
use std::time::Instant;

use crate::message::{AnyMessage, Message};
use crate::runtime::mailbox::Mailbox;
use crate::runtime::{node, Delivery, Envelope, SendError};
use crate::standard::{Overloaded, Stop};
use crate::Address;

/// Inside a handler an object sends through its context (`cx.send(..)`
/// and friends). Code that runs *beside* the object — a task it spawned, a worker thread,
/// a callback handed to a library, a connection of a server — takes a [`Postbox`] from the
/// context ([`Core::postbox`](super::Core::postbox)) and sends through that: the same
/// sender address, the same refusal rules (a full mailbox is never a silent drop: the
/// object receives an `Overloaded` notice, once per refusing receiver until it reads it),
/// the same send trace. A postbox is cheap to clone and `Send + Sync`.
///
/// ```
/// use strata::prelude::*;
///
/// let mut cx = ThreadContext::attach();
/// let me = cx.address();
/// let postbox = cx.postbox();
/// std::thread::spawn(move || postbox.send(me, 7u32)).join().unwrap();
/// let e = cx.recv();
/// assert_eq!(e.sender(), me); // sent as this object
/// assert_eq!(e.take::<u32>().unwrap(), 7);
/// ```
#[derive(Clone)]
pub struct Postbox {
    address: Address,
    mailbox: Arc<Mailbox>,
}

impl std::fmt::Debug for Postbox {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_tuple("Postbox").field(&self.address).finish()
    }
}

impl Postbox {
    pub(crate) fn new(address: Address, mailbox: Arc<Mailbox>) -> Self {
        Postbox { address, mailbox }
    }

    /// The address messages are sent from.
    pub fn address(&self) -> Address {
        self.address
    }

    pub(crate) fn mailbox(&self) -> &Arc<Mailbox> {
        &self.mailbox
    }

    /// Sends a message. Delivery within a process moves the value.
    ///
    /// Nothing is lost silently: if the receiver's mailbox is full the message is refused,
    /// the refusal is logged and counted, and this object receives an
    /// [`Overloaded`] fault from the receiver's address (once, until it reads it). Sending
    /// to an address with no object is counted and logged at debug level (as in Erlang,
    /// the receiver may simply have ended); [`try_send`](Self::try_send) reports it.
    pub fn send<T: Message>(&self, to: Address, message: T) {
        self.post(
            to,
            AnyMessage::new(message),
            self.address,
            Delivery::of_type::<T>(),
        );
    }

    /// Sends a message whose type is known only at run time.
    pub fn send_any(&self, to: Address, message: AnyMessage) {
        let delivery = Delivery::of(&message);
        self.post(to, message, self.address, delivery);
    }

    /// Sends a message whose replies go to `return_address` instead of this object.
    pub fn send_from<T: Message>(&self, to: Address, message: T, return_address: Address) {
        self.post(
            to,
            AnyMessage::new(message),
            return_address,
            Delivery::of_type::<T>(),
        );
    }

    /// Sends a request its sender stops caring for at `deadline`: if the receiver takes
    /// it later, the runtime answers [`TimedOut`](crate::standard::TimedOut) in its place
    /// and the receiver never sees it (see [`Envelope::deadline`]).
    pub fn send_by<T: Message>(&self, to: Address, message: T, deadline: Instant) {
        self.post_envelope(
            Envelope::new(self.address, to, AnyMessage::new(message)).with_deadline(Some(deadline)),
            Delivery::of_type::<T>(),
        );
    }

    /// Sends a message and reports a refusal to the caller instead of as a message.
    pub fn try_send<T: Message>(&self, to: Address, message: T) -> Result<(), SendError> {
        self.try_send_any(to, AnyMessage::new(message))
    }

    /// [`try_send`](Self::try_send) for a message whose type is known only at run time.
    pub fn try_send_any(&self, to: Address, message: AnyMessage) -> Result<(), SendError> {
        self.try_send_any_by(to, message, None)
    }

    /// [`try_send_any`](Self::try_send_any) with a deadline (see [`send_by`](Self::send_by)).
    pub fn try_send_any_by(
        &self,
        to: Address,
        message: AnyMessage,
        deadline: Option<Instant>,
    ) -> Result<(), SendError> {
        let delivery = Delivery::of(&message);
        trace_send(self.address, to, &message);
        let envelope = Envelope::new(self.address, to, message).with_deadline(deadline);
        node().deliver(envelope, delivery)
    }

    /// Sends a *notice*: a message the receiver must not miss because its mailbox is full
    /// (a link's `Accepted` and `Closed`, a listener's `Listening`). It is a
    /// [`Delivery::Control`] delivery: never refused for capacity, and kept by a stand-in
    /// for itself rather than passed on.
    pub fn notify<T: Message>(&self, to: Address, message: T) {
        self.post(
            to,
            AnyMessage::new(message),
            self.address,
            Delivery::Control,
        );
    }

    /// Sends [`Stop`] to an object.
    pub fn stop(&self, to: Address) {
        self.send(to, Stop);
    }

    /// The one way every object sends: `message` to `to`, replies to `from`, delivered
    /// as `delivery`. A refusal for capacity queues one `Overloaded` notice for this
    /// object (until it reads it, further refusals by the same receiver are only counted
    /// and logged); other refusals are counted and logged by the runtime.
    pub fn post(&self, to: Address, message: AnyMessage, from: Address, delivery: Delivery) {
        self.post_envelope(Envelope::new(from, to, message), delivery);
    }

    /// [`post`](Self::post) of a whole envelope (its sender, receiver and deadline).
    pub fn post_envelope(&self, envelope: Envelope, delivery: Delivery) {
        let (me, mailbox) = (self.address, &self.mailbox);
        let to = envelope.to;
        trace_send(envelope.from, to, &envelope.message);
        match node().deliver(envelope, delivery) {
            Ok(()) => {}
            Err(e @ SendError::Full { .. }) => {
                if mailbox.note_overload_notice(to) {
                    tracing::warn!(target: "strata::send", from = %me, error = %e, "message refused");
                    let reason =
                        format!("{e} (later refusals are counted until this notice is read)");
                    let notice = Envelope::new(to, me, AnyMessage::new(Overloaded::new(reason)));
                    let _ = mailbox.push(notice, Delivery::Control);
                } else {
                    tracing::debug!(target: "strata::send", from = %me, error = %e, "message refused");
                }
            }
            Err(_) => {}
        }
    }
}

fn trace_send(from: Address, to: Address, message: &AnyMessage) {
    tracing::trace!(target: "strata::send", from = %from, to = %to, message = message.type_name(), "send");
}
