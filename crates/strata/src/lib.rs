//! # strata
//!
//! Concurrency across threads, processes and hosts under one message-passing model.
//!
//! A program is a tree of *objects* that exchange typed *messages*. Each object has an
//! [`Address`]; sending to it looks the same wherever the object runs. Objects are created
//! by a parent and end by returning a value, which reaches the parent as
//! [`Returned`](standard::Returned).
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
//! let table = cx.ask(texture, Xy { x: 2, y: 3 });
//! assert_eq!(table.downcast::<Vec<Vec<f64>>>().unwrap().len(), 3);
//! ```
//!
//! # A tour of strata
//!
//! Each module is one capability; each uses only the ones listed before it.
//!
//! | module | what it is for |
//! |---|---|
//! | [`message`] | the [`Message`] trait and derive, portable type names, the registry of decoders, the binary (postcard) and JSON codecs |
//! | [`address`] | [`Address`]: which process (node) and which object; 16 bytes, `Copy`, travels inside messages |
//! | [`runtime`] | this process's node: the object table, mailboxes, [`Delivery`], direct runs of idle machines, stand-in addresses, the shared tokio runtime |
//! | [`object`] | the kinds of object, what every one of them can do ([`Core`]), [`Postbox`] to send from anywhere, [`Recipe`] to make members of a pool |
//! | [`standard`] | the standard messages (`Start`, `Stop`, `Returned`, `Ping`, ...) and the fault family (`Faulted`, `TimedOut`, `Busy`, `Overloaded`, ...) |
//! | [`request`] | [`GetResponse`], [`Concurrently`] and [`Delay`]: a request, several requests, a pause, each with a time-out |
//! | [`backoff`] | [`Backoff`]: how long to wait before trying again (interval, jitter, growth, a budget that resets after a healthy period) |
//! | [`net`] | links between processes and hosts: `Listen`, `Connect`, framed binary messages, Noise encryption, pre-shared keys, static keys with allow-lists (`net::keys`), keep-alive, relaying |
//! | [`process`] | [`main`]: a top object as the whole program; entry points (functions as command-line programs); child processes as objects, and loadable libraries |
//! | [`spool`] | pools of workers behind one address that share out requests and shed load (`Busy`, `Overloaded`) |
//! | [`executor`] | submit jobs to threads, async workers or processes and get futures back: waiting, cancellation, delays, admission, sizing, shutdown, statistics; periodic jobs |
//! | [`supervisor`] | services of worker processes kept running: stable ids, restarts with growing jittered intervals, boot loops marked failed, resize, reload, no orphans |
//! | [`home`] | a folder of roles (executable, checked settings, history, storage, rolling logs) that `strata run` runs as one composite; atomic files, `File<T>` and `Folder<T>` |
//! | `http` | the HTTP front (requests in as messages, replies out as JSON) and an HTTP client (feature `http`) |
//! | `load` | the load-testing client behind `strata load`: many clients, validation, latency histograms, thresholds (feature `load`) |
//! | [`logging`] | `tracing` set up from `--log=LEVEL` or `STRATA_LOG` |
//!
//! # Which kind of object when
//!
//! Every object is created the same way (`cx.create(...)`), has an address, and ends by
//! returning a value to its parent; the kinds differ in where they run and how they read
//! their mailbox:
//!
//! - **A machine** (a struct with `#[strata::machine]`: one handler per message type,
//!   optionally per state) is the default. It runs on the shared runtime, costs a few
//!   hundred bytes, and a message that finds it idle is handled at once on the sender's
//!   thread. Choose it for services, coordinators and anything that reacts to messages.
//! - **[`Threaded`]** (a machine on its own OS thread): the same machine when its handlers
//!   block or compute for long (a database driver, a CPU-heavy step): it cannot hold up
//!   the shared runtime.
//! - **[`Thread`]** (a function object): a plain function on its own OS thread that reads
//!   its mailbox with blocking `recv`/`select` calls. Choose it for a sequential script
//!   of a conversation, for blocking libraries, and for CPU work with a simple shape.
//! - **[`Async`]** (an async object): an `async` closure on the shared runtime, reading
//!   with `.await`. Choose it to combine messages with async I/O (sockets, timers,
//!   `tokio::select!`), or to have hundreds of thousands of cheap objects.
//! - **[`Process`](process::Process)**: a program as a child object. Choose it to isolate
//!   work (a crash or a leak ends the child, not you) or to use more than one process;
//!   with a machine as the child's top object it answers messages like a local object.
//! - **A pool**: a [`Spool`](spool::Spool) of any of these when requests should be shared
//!   out among several workers, with a bounded queue and load shedding.
//!
//! Moving work between these is a one-argument change: a spool of `Threaded` workers
//! becomes a spool of worker processes with `Spool::of(Process::of("worker"))`, and the
//! code that sends to it does not change.
//!
//! Outside the object tree, [`ThreadContext::attach`] gives any thread (`main`, a test)
//! an address and a mailbox, and [`Core::postbox`] lets a task or thread working beside an
//! object send as that object.
//!
//! The crate root and the [`prelude`] hold the object model only; everything else is
//! imported from its module (`strata::spool::Spool`, `strata::http::HttpServer`,
//! `strata::process::Process`).
//!
//! Cargo features, all on by default: `http`, `load` and `noise` (encrypted links).
//! Without them the core builds alone (`cargo build -p strata --no-default-features`).

extern crate self as strata;

pub mod address;
pub mod backoff;
pub mod directory;
pub mod executor;
pub mod home;
#[cfg(feature = "http")]
pub mod http;
#[cfg(feature = "load")]
pub mod load;
pub mod logging;
pub mod message;
pub mod metrics;
pub mod net;
pub mod object;
pub mod pipeline;
pub mod process;
pub(crate) mod random;
pub mod request;
pub mod runtime;
pub mod spool;
pub mod standard;
pub mod supervisor;

pub use address::Address;
pub use backoff::Backoff;
pub use message::{AnyMessage, Fault, Message};
pub use object::{
    AnyObject, Async, AsyncContext, Context, Core, FromEnvelope, IntoValue, Machine, Object,
    Options, Postbox, Recipe, Selection, Thread, ThreadContext, Threaded,
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
