//! Networking: links between processes and hosts that carry messages.
//!
//! A link is a byte stream (TCP between hosts or processes; a Unix socket between
//! processes of one user on one host, or privately between a parent and its child
//! process) cut into [`frame`]s. Addresses keep their meaning across
//! a link: an address names its node, so a reply to an address that came from another
//! process is routed back over the link it came from, and an address that travelled inside
//! a message teaches the receiving process which link leads to its node — a third object
//! can answer an address it was given. Many objects share one link: it carries messages for
//! any object of the two nodes.
//!
//! * [`Listen`] and [`Connect`] are objects: create them on a TCP address
//!   ([`Listen::new`]) or a Unix socket path ([`Listen::unix`], which admits only
//!   processes of this user), then receive [`Listening`] / `NotListening`, [`Accepted`] /
//!   [`Connected`] / `NotConnected`, and finally [`Closed`] with a [`CloseReason`].
//! * Reply to `Accepted` or `Connected` to send across the link: their sender is the object
//!   at the other end.
//! * Options: encryption (Noise), pre-shared keys, static keys with an allow-list of
//!   peers ([`keys`]), maximum frame size, keep-alive, budgets, relaying; a [`Listen`]
//!   also caps the links and handshakes it serves (and counts what it refused,
//!   [`LinkCounters`]). Encryption without a key protects against eavesdroppers only, and
//!   a TCP link that does not authenticate its peer is refused off loopback unless allowed
//!   (see [`Listen`]'s table).
//! * [`Core::watch`](crate::Core::watch) on an address of another node reports
//!   [`Ended`](crate::standard::Ended) when the link that leads there closes.
//!
//! **What a peer may do.** A connected peer is not trusted as if it were code in this
//! process. It may send only to addresses it was *given* (`grants.rs`): this end's owner
//! (named in HELLO), the sender of anything sent to it, and the addresses inside what it
//! was sent; object numbers are not sequential, so there is nothing to guess either. It
//! speaks only for its own node (a relayed frame says so and is checked against the
//! routes). It may not send the runtime's own messages (`Returned`, `Start`; `Stop` unless
//! it is this process's parent). It claims a node id only while no other link holds it
//! (and, with static keys, only with the key that first claimed it), and relaying through
//! this process goes only to addresses it was given, at most [`frame::MAX_HOPS`] deep, and
//! can be turned off. What it costs is bounded: the bytes waiting for it (a peer that does
//! not read is closed with [`CloseReason::NotReading`]), the bytes of its messages waiting
//! in mailboxes (beyond that its senders hear `Overloaded`), one PONG and one `Overloaded`
//! notice per sender pending, the nodes one message may name (64), the depth and length of
//! what it decodes (`message::limits`), the routes it may teach (1,024). What it is refused
//! is counted and logged; 16 refusals close its link with a reason.
//!
//! Inside, one file per concern: `frame` (wire formats: frames, preamble, verdict),
//! `handshake` (preamble, verdict, Noise and HELLO as a state machine without I/O),
//! `noise` (sealing and opening), `keys` (static and pre-shared keys, key files), `io`
//! (the TCP and Unix streams), `outbox` (the sending side and its byte budget), `grants`
//! (what the peer was given, and the addresses this process made public), `routes` (which
//! link leads to which node, and the watches of remote addresses), `link` (the link
//! object: messages, settings, handshake driver, the reader and its checks, and the run
//! loop), `error` (why a link did not open), `listener` (bind — TCP, or a Unix socket with
//! its stale-file rules —, announce, accept; shared with the HTTP server) and `endpoint`
//! (the `Listen` and `Connect` objects, over a TCP address or a Unix socket path).

mod endpoint;
mod error;
/// The wire format, public only for the fuzzer (`fuzz/`) and the tests that write raw
/// frames: not part of strata's API.
#[doc(hidden)]
pub mod frame;
pub(crate) mod grants;
mod handshake;
mod io;
pub mod keys;
pub(crate) mod link;
pub(crate) mod listener;
mod noise;
mod outbox;
mod routes;

pub use endpoint::{Connect, LinkCounters, Listen, Listening};
pub(crate) use handshake::Role;
pub use link::{Accepted, CloseReason, Closed, Connected, LinkSettings};
pub use routes::reachable_nodes;
