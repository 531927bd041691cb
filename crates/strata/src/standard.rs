//! Standard messages every strata program understands, and the fault family.
//!
//! Control: [`Start`] (first message a machine receives), [`Stop`] (please end),
//! [`Returned`] (a child ended; its value is inside), timer messages [`T1`]..[`T4`].
//! Conversation: [`Ack`], [`Nak`], [`Ping`], [`Enquiry`], [`Ready`], [`NotReady`],
//! [`Pause`], [`Resume`]. Watching: [`Ended`] (a watched object ended, see
//! [`Core::watch`](crate::Core::watch)).
//!
//! Faults say that something did not happen as asked. Each is its own type, so handlers can
//! dispatch on it, and each implements [`Fault`], so code can also treat any of them as "a
//! fault" ([`AnyMessage::as_fault`], the `AnyFault` handler parameter).

use std::fmt;

use serde::{Deserialize, Serialize};

use crate::message::{AnyMessage, Fault, Message, Registration};
use crate::Address;

macro_rules! unit_messages {
    ($($(#[$doc:meta])* $name:ident),* $(,)?) => {
        $($(#[$doc])*
        #[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
        pub struct $name;
        impl Message for $name {
            fn type_name() -> &'static str { stringify!($name) }
        })*
    };
}

unit_messages! {
    /// The first message a machine receives, before anything sent to it.
    Start,
    /// A request to end. Machines that do not handle it abort (stop their children, then
    /// end with [`Aborted`]).
    Stop,
    /// Positive acknowledgement.
    Ack,
    /// Negative acknowledgement.
    Nak,
    /// Are you there? Answered with `Ack` by convention, and by every machine that has no
    /// handler of its own for it (see [`Machine::unhandled`](crate::Machine::unhandled)).
    Ping,
    /// A request for status.
    Enquiry,
    /// The sender is ready for work.
    Ready,
    /// The sender is not ready for work.
    NotReady,
    /// Please pause.
    Pause,
    /// Please resume.
    Resume,
    /// Timer message 1 (timers are named by their message type).
    T1,
    /// Timer message 2.
    T2,
    /// Timer message 3.
    T3,
    /// Timer message 4.
    T4,
}

/// A child object ended; `value` is what it returned (possibly a fault).
///
/// The envelope's sender is the child's address.
#[derive(Debug, Serialize, Deserialize)]
pub struct Returned {
    /// The child's return value, or the fault that ended it.
    pub value: AnyMessage,
}

impl Returned {
    /// True when the child ended with a fault.
    pub fn is_fault(&self) -> bool {
        self.value.is_fault()
    }
}

impl Message for Returned {
    fn type_name() -> &'static str {
        "Returned"
    }
}

/// A watched object ended: sent once to each object that called
/// [`Core::watch`](crate::Core::watch) on `address`.
///
/// The envelope's sender is the watched address itself, so a handler can tell which
/// watch fired from the sender as well as from `address`.
///
/// For an object of this process it means the object ended (or was not there when the
/// watch began). For an object of another process it means the link that led to that
/// process *when the watch began* closed (or there was no route at all): the process
/// ended, or the link was lost. It says nothing of the remote object itself, which may
/// still run behind a link that broke.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Ended {
    /// The watched address.
    pub address: Address,
}

impl Message for Ended {
    fn type_name() -> &'static str {
        "Ended"
    }
}

macro_rules! reason_faults {
    ($($(#[$doc:meta])* $name:ident),* $(,)?) => {
        $($(#[$doc])*
        #[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
        pub struct $name {
            /// What happened, for people.
            pub reason: String,
        }
        impl $name {
            /// A fault with this reason.
            pub fn new(reason: impl Into<String>) -> Self {
                $name { reason: reason.into() }
            }
        }
        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                if self.reason.is_empty() {
                    f.write_str(stringify!($name))
                } else {
                    write!(f, "{}: {}", stringify!($name), self.reason)
                }
            }
        }
        impl Fault for $name {}
        impl Message for $name {
            fn type_name() -> &'static str { stringify!($name) }
            fn as_fault(&self) -> Option<&dyn Fault> { Some(self) }
        })*
    };
}

reason_faults! {
    /// The general fault: something went wrong (a panic, an error returned, a child process
    /// that failed).
    Faulted,
    /// The object was stopped before it finished.
    Aborted,
    /// The receiver ended before it read the message: nothing of it was done (so it is
    /// safe to send again elsewhere). Every ordinary message left in a mailbox when its
    /// object ends is answered with this.
    Unread,
    /// The object is busy: it is not meeting its response-time target and turned the request
    /// away. Retry later.
    Busy,
    /// A queue or mailbox is full and the request was turned away at once.
    Overloaded,
    /// The service is deliberately out of service.
    OutOfService,
    /// The service cannot answer now but expects to later.
    TemporarilyUnavailable,
    /// A listen request failed.
    NotListening,
    /// A connect request failed.
    NotConnected,
    /// A publish request failed.
    NotPublished,
    /// A subscribe request failed.
    NotSubscribed,
}

/// No answer came within the time allowed, or a request was taken after its deadline
/// (see [`Envelope::deadline`](crate::Envelope::deadline)) and answered with this
/// instead of handled.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize)]
pub struct TimedOut {
    /// The time allowed, in seconds; 0 for a request past its deadline.
    pub seconds: f64,
}

impl TimedOut {
    /// A time-out after `after`.
    pub fn after(after: std::time::Duration) -> Self {
        TimedOut {
            seconds: after.as_secs_f64(),
        }
    }

    /// The answer to a request taken after its deadline, in place of its handling.
    pub fn past_deadline() -> Self {
        TimedOut { seconds: 0.0 }
    }
}

impl fmt::Display for TimedOut {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.seconds == 0.0 {
            f.write_str("TimedOut: the request was past its deadline when it was taken")
        } else {
            write!(f, "TimedOut: no answer within {}s", self.seconds)
        }
    }
}

impl Fault for TimedOut {}

impl Message for TimedOut {
    fn type_name() -> &'static str {
        "TimedOut"
    }
    fn as_fault(&self) -> Option<&dyn Fault> {
        Some(self)
    }
}

/// Any fault, whatever its type: the parameter type of a machine handler that takes every
/// fault not handled by a more specific handler.
#[derive(Debug)]
pub struct AnyFault {
    message: AnyMessage,
}

impl AnyFault {
    /// Wraps a message known to be a fault.
    ///
    /// # Panics
    /// When the message is not a fault (the machine dispatcher checks first).
    pub fn from_message(message: AnyMessage) -> Self {
        assert!(message.is_fault(), "{} is not a fault", message.type_name());
        AnyFault { message }
    }

    /// The fault's reason.
    pub fn reason(&self) -> String {
        self.message
            .as_fault()
            .map(|f| f.reason())
            .unwrap_or_default()
    }

    /// The fault's portable type name (`Busy`, `TimedOut`, ...).
    pub fn type_name(&self) -> &'static str {
        self.message.type_name()
    }

    /// The fault as a message, to pass on.
    pub fn into_message(self) -> AnyMessage {
        self.message
    }
}

impl fmt::Display for AnyFault {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.message.as_fault() {
            Some(fault) => fmt::Display::fmt(fault, f),
            None => f.write_str(self.message.type_name()),
        }
    }
}

/// Registrations of the standard messages, the primitive types, and the common shapes
/// built from primitives (`vec<P>`, `vec<vec<P>>`, `option<P>`, `map<string,P>`,
/// `sorted_map<string,P>`), so that replies such as tables decode in any process.
pub(crate) fn registrations() -> Vec<Registration> {
    let mut list = vec![
        Registration::new::<Start>(),
        Registration::new::<Stop>(),
        Registration::new::<Ack>(),
        Registration::new::<Nak>(),
        Registration::new::<Ping>(),
        Registration::new::<Enquiry>(),
        Registration::new::<Ready>(),
        Registration::new::<NotReady>(),
        Registration::new::<Pause>(),
        Registration::new::<Resume>(),
        Registration::new::<T1>(),
        Registration::new::<T2>(),
        Registration::new::<T3>(),
        Registration::new::<T4>(),
        Registration::new::<Returned>(),
        Registration::new::<Ended>(),
        Registration::new::<Faulted>(),
        Registration::new::<Aborted>(),
        Registration::new::<Busy>(),
        Registration::new::<Overloaded>(),
        Registration::new::<OutOfService>(),
        Registration::new::<TemporarilyUnavailable>(),
        Registration::new::<NotListening>(),
        Registration::new::<NotConnected>(),
        Registration::new::<NotPublished>(),
        Registration::new::<NotSubscribed>(),
        Registration::new::<TimedOut>(),
        Registration::new::<AnyMessage>(),
        Registration::new::<Vec<AnyMessage>>(),
        Registration::new::<crate::Address>(),
        Registration::new::<()>(),
    ];
    macro_rules! shapes {
        ($($p:ty),*) => {$(
            list.extend([
                Registration::new::<$p>(),
                Registration::new::<Vec<$p>>(),
                Registration::new::<Vec<Vec<$p>>>(),
                Registration::new::<Option<$p>>(),
                Registration::new::<std::collections::HashMap<String, $p>>(),
                Registration::new::<std::collections::BTreeMap<String, $p>>(),
            ]);
        )*};
    }
    shapes!(bool, char, String, i8, i16, i32, i64, i128, u8, u16, u32, u64, u128, f32, f64);
    list
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_fault_is_matchable_as_a_fault() {
        let faults = [
            AnyMessage::new(Faulted::new("x")),
            AnyMessage::new(Aborted::default()),
            AnyMessage::new(TimedOut::after(std::time::Duration::from_millis(1500))),
            AnyMessage::new(Busy::new("slow")),
            AnyMessage::new(Overloaded::new("full")),
            AnyMessage::new(OutOfService::default()),
            AnyMessage::new(TemporarilyUnavailable::default()),
            AnyMessage::new(NotListening::default()),
            AnyMessage::new(NotConnected::default()),
            AnyMessage::new(NotPublished::default()),
            AnyMessage::new(NotSubscribed::default()),
        ];
        for f in faults {
            assert!(f.is_fault(), "{}", f.type_name());
        }
        assert!(!AnyMessage::new(Ack).is_fault());
        assert_eq!(
            AnyMessage::new(TimedOut { seconds: 1.5 })
                .as_fault()
                .unwrap()
                .reason(),
            "TimedOut: no answer within 1.5s"
        );
    }
}
