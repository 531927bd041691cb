//! Envelopes: a message in transit with its sender and receiver.

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
}

impl Envelope {
    /// An envelope carrying `message` from `from` to `to`.
    pub fn new(from: Address, to: Address, message: AnyMessage) -> Self {
        Envelope {
            message,
            from,
            to,
            timer: 0,
        }
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
        } = self;
        message.downcast::<T>().map_err(|message| Envelope {
            message,
            from,
            to,
            timer,
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
