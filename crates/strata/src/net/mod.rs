//! Networking: links between processes and hosts that carry messages.
//!
//! A link is a byte stream (TCP here; a private local socket to a child process later) cut
//! into [`frame`]s. Addresses keep their meaning across a link: an address names its node,
//! so a reply to an address that came from another process is routed back over the link it
//! came from, and an address that travelled inside a message teaches the receiving process
//! which link leads to its node — a third object can answer an address it was given.
//! Many objects share one link: it carries messages for any object of the two nodes.
//!
//! * [`Listen`] and [`Connect`] are objects: create them, then receive
//!   [`Listening`] / `NotListening`, [`Accepted`] / [`Connected`] / `NotConnected`, and
//!   finally [`Closed`] with a [`CloseReason`].
//! * Reply to `Accepted` or `Connected` to send across the link: their sender is the object
//!   at the other end.
//! * Options: encryption and pre-shared keys (Noise), maximum frame size, keep-alive.

pub mod frame;
pub(crate) mod link;
mod tcp;

pub use link::{reachable_nodes, Accepted, CloseReason, Closed, Connected, LinkSettings};
pub use tcp::{Connect, Listen, Listening};
