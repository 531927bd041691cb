//! # strata
//!
//! Concurrency across threads, processes and hosts under one message-passing model.
//!
//! A program is a tree of *objects* that exchange typed *messages*. Each object has an
//! [`Address`]; sending to it looks the same wherever the object runs. Objects are created
//! by a parent and end by returning a value, which reaches the parent as [`Returned`].
//!
//! ```
//! use strata::prelude::*;
//!
//! #[derive(Debug, Serialize, Deserialize, Message)]
//! struct Xy { x: usize, y: usize }
//!
//! struct Texture;
//!
//! #[strata::machine]
//! impl Texture {
//!     // The parameter type decides dispatch; a returned value is the reply.
//!     fn xy(&mut self, _cx: &mut Context<Self>, m: Xy) -> Vec<Vec<f64>> {
//!         vec![vec![0.5; m.x]; m.y]
//!     }
//! }
//!
//! let mut cx = ThreadContext::attach();          // this thread joins the runtime
//! let texture = cx.create(Texture);               // a machine on the shared runtime
//! let table = cx.ask(texture, Xy { x: 2, y: 3 }, None);
//! assert_eq!(table.downcast::<Vec<Vec<f64>>>().unwrap().len(), 3);
//! ```
//!
//! Layers, bottom up: [`message`] (names, registry, codecs), [`runtime`] (addresses,
//! mailboxes, delivery), [`object`] (the kinds of object and what they can do),
//! [`request`] (GetResponse, Concurrently, Delay), [`standard`] messages and faults,
//! [`process`] (a top object as the whole program, child processes) and [`logging`].
//! Built on them, each under its own module: [`net`] (links between processes and
//! hosts), [`spool`] (a pool of workers behind one address), `http` (an HTTP front and
//! client; feature `http`) and `load` (the load-testing client; feature `load`).
//!
//! The crate root and the [`prelude`] hold the object model only; everything else is
//! imported from its module (`strata::spool::Spool`, `strata::http::HttpServer`,
//! `strata::process::Process`).
//!
//! Cargo features, all on by default: `http`, `load` and `noise` (encrypted links).
//! Without them the core builds alone.

extern crate self as strata;

pub mod address;
pub mod backoff;
#[cfg(feature = "http")]
pub mod http;
#[cfg(feature = "load")]
pub mod load;
pub mod logging;
pub mod message;
pub mod net;
pub mod object;
pub mod process;
pub(crate) mod random;
pub mod request;
pub mod runtime;
pub mod spool;
pub mod standard;

pub use address::Address;
pub use backoff::Backoff;
pub use message::{AnyMessage, Fault, Message};
pub use object::{
    AnyObject, Async, AsyncContext, Context, Core, FromEnvelope, IntoValue, Machine, Options,
    Postbox, Recipe, Selection, Spawn, Thread, ThreadContext, Threaded,
};
pub use process::{main, main_with, ProgramSettings};
pub use request::{Concurrently, Delay, GetResponse};
pub use runtime::{Delivery, Envelope, SendError};
pub use standard::AnyFault;
pub use strata_macros::machine;

/// Derives [`Message`]; see the [`message`] module.
pub use strata_macros::Message;

/// Everything a typical object needs, in one import.
pub mod prelude {
    pub use crate::standard::*;
    pub use crate::{
        machine, Address, AnyMessage, Async, AsyncContext, Concurrently, Context, Core, Delay,
        Envelope, Fault, GetResponse, Machine, Message, Options, Thread, ThreadContext, Threaded,
    };
    pub use serde::{Deserialize, Serialize};
}

#[doc(hidden)]
pub mod __private {
    pub use inventory;
}

/// The README's examples, compiled and run as doctests so they stay true.
#[doc = include_str!("../../../README.md")]
#[cfg(doctest)]
pub struct ReadmeDoctests;
