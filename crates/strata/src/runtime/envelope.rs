//! Envelopes: a message in transit with its sender and receiver.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Instant;

use super::Delivery;
use crate::message::{AnyMessage, Fault, Message};
use crate::Address;

/// A received message together with who sent it.
///
/// Function objects and async objects read envelopes from their mailbox; machines get one
/// in catch-all handlers. [`sender`](Self::sender) is where a reply goes.
#[derive(Debug)]
pub struct Envelope {
    pub(crate) message: AnyMessage,
    pub(crate) from: Address,
    pub(crate) to: Address,
    /// Non-zero for timer deliveries: the generation of the timer that fired.
    pub(crate) timer: u64,
    /// For a large message from another node: the bytes it holds of its link's inbound
    /// budget, given back when the message is taken or dropped (boxed: most envelopes
    /// have none, and stay small).
    pub(crate) charge: Option<Box<Charge>>,
    /// How the envelope was delivered to the mailbox it sits in (set by the mailbox):
    /// what an object leaves unread is answered only if it was ordinary.
    pub(crate) delivery: Delivery,
    /// When the message is no use any more: an object that takes it later answers its
    /// sender `TimedOut` instead of handling it (see [`Envelope::deadline`]).
    pub(crate) deadline: Option<Instant>,
}

/// Bytes of a link's inbound budget held by a message that arrived on it (see
/// `net/link.rs`): the link stops accepting once its messages waiting in mailboxes hold
/// its budget, and each gives its bytes back when it is handled or dropped.
#[derive(Debug)]
pub(crate) struct Charge {
    held: Arc<AtomicUsize>,
    bytes: usize,
}

impl Charge {
    /// Takes `bytes` of `held`, the link's count of bytes waiting.
    pub(crate) fn new(held: &Arc<AtomicUsize>, bytes: usize) -> Box<Charge> {
        held.fetch_add(bytes, Ordering::Relaxed);
        Box::new(Charge {
            held: held.clone(),
            bytes,
        })
    }
}

impl Drop for Charge {
    fn drop(&mut self) {
        self.held.fetch_sub(self.bytes, Ordering::Relaxed);
    }
}

impl Envelope {
    /// An envelope carrying `message` from `from` to `to`.
    pub fn new(from: Address, to: Address, message: AnyMessage) -> Self {
        Envelope {
            message,
            from,
            to,
            timer: 0,
            charge: None,
            delivery: Delivery::Ordinary,
            deadline: None,
        }
    }

    /// The same envelope with a deadline (`None`: none). See [`deadline`](Self::deadline).
    pub fn with_deadline(mut self, deadline: Option<Instant>) -> Self {
        self.deadline = deadline;
        self
    }

    /// When the sender stops caring for an answer, if it said. An object that takes
    /// the message out of its mailbox after this time never sees it: the runtime answers
    /// the sender [`TimedOut`](crate::standard::TimedOut) (with `seconds` 0) instead, so
    /// work nobody waits for is not done. [`Core::forward`](crate::Core::forward) and a
    /// spool handing the message to a worker keep it; across processes it travels as the
    /// time left.
    pub fn deadline(&self) -> Option<Instant> {
        self.deadline
    }

    /// The address of the sender: where a reply goes.
    pub fn sender(&self) -> Address {
        self.from
    }

    /// The address the envelope was sent to.
    pub fn receiver(&self) -> Address {
        self.to
    }

    /// The portable type name of the message.
    pub fn type_name(&self) -> &'static str {
        self.message.type_name()
    }

    /// True when the message is a `T`.
    pub fn is<T: Message>(&self) -> bool {
        self.message.is::<T>()
    }

    /// A reference to the message when it is a `T`.
    pub fn get<T: Message>(&self) -> Option<&T> {
        self.message.downcast_ref()
    }

    /// Takes the message when it is a `T`; otherwise gives the envelope back.
    pub fn take<T: Message>(self) -> Result<T, Envelope> {
        let Envelope {
            message,
            from,
            to,
            timer,
            charge,
            delivery,
            deadline,
        } = self;
        message.downcast::<T>().map_err(|message| Envelope {
            message,
            from,
            to,
            timer,
            charge,
            delivery,
            deadline,
        })
    }

    /// The message, whatever its type.
    pub fn message(&self) -> &AnyMessage {
        &self.message
    }

    /// Unwraps the message, dropping the addresses.
    pub fn into_message(self) -> AnyMessage {
        self.message
    }

    /// True when the message belongs to the fault family.
    pub fn is_fault(&self) -> bool {
        self.message.is_fault()
    }

    /// The message as a fault, when it is one.
    pub fn as_fault(&self) -> Option<&dyn Fault> {
        self.message.as_fault()
    }
}
