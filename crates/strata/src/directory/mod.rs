//! The directory: networking by name instead of by address (SPEC §5).
//!
//! Objects publish names and subscribe to patterns of names, each with a [`Scope`]:
//! process < group < host (< LAN, served by a later layer). A subscriber hears
//! [`Available`] for every name it matches and [`Dropped`] when it goes; of each name it
//! holds the *nearest* publication, falling back to a wider one when that is lost and
//! upgrading when a nearer one returns, always `Dropped(old)` before `Available(new)`. A
//! name is unique within its scope: a second publisher is refused, naming the holder.
//! Publications and subscriptions end with the object that made them, and with its
//! process. Any start order works.
//!
//! A publication is seen by every subscriber within its scope, and a subscription sees
//! every publication within its own: a subscriber in the same process as a host-scope
//! publication sees it even with a process-scope subscription. *Nearest* is where the
//! two meet: the same process, then the same group, then the same host.
//!
//! ```
//! use strata::prelude::*;
//! use strata::directory::{Available, Published, Scope, Subscribed};
//!
//! let mut cx = ThreadContext::attach();
//! cx.subscribe("texture:worker:.*", Scope::Process).unwrap();
//! assert!(cx.recv().take::<Subscribed>().is_ok());
//! let worker = ThreadContext::attach();
//! worker.publish("texture:worker:1", Scope::Process).unwrap();
//! let available = cx.recv().take::<Available>().unwrap();
//! assert_eq!(available.address, worker.address());
//! ```
//!
//! # How it is built
//!
//! Directories are objects. Every process has a *process directory* (`process.rs`), made
//! on first use; [`Core::publish`] and [`Core::subscribe`] only send it a message. It
//! holds the process-scope publications and every subscription of the process's objects,
//! and joins the wider directories as a client: the group's (`group.rs`; in the parent of
//! a composite, reached by its children over their private links) and the host's
//! (`host.rs`; at a private Unix socket, served by the first process that needs it or by
//! `strata directory`). Those are one machine (`shared.rs`) holding the publications of
//! their own scope and matching them against their clients' wants; what they find comes
//! back as candidates (`candidates.rs`), which the process directory merges with its own
//! in one [`Listing`] (`listing.rs`, the pure table of the rules, tested on its own).
//!
//! When a subscriber's process and a publisher's differ, the subscriber hears of the
//! address only once the two are joined by a direct link (a *session*: one that joins them
//! already, or one made to the publisher's process's endpoint), so what it is given it
//! can use at once. A process that dies closes its links: its listings and sessions end
//! with it, within milliseconds. Published addresses are the ones other processes may
//! reach over sessions, and nothing else of the process.

mod candidates;
#[cfg(feature = "etcd")]
pub mod etcd;
mod feed;
pub(crate) mod group;
pub mod host;
pub mod lan;
mod listing;
mod messages;
mod name;
mod process;
mod shared;
mod view;

use std::sync::OnceLock;

pub use feed::Feed;
pub use listing::{Change, Incarnation, Listing, Publication, Refusal, SubscriptionId};
pub use messages::{
    Available, ClearPublished, ClearSubscribed, Cleared, Dropped, Publish, Published, Subscribe,
    Subscribed,
};
pub use name::{Name, NameError, Pattern, Scope, MAX_NAME, MAX_PATTERN};
pub use view::{
    ClientView, DirectoryView, PublicationView, Query, SessionView, SubscriptionView, UpstreamView,
};

use crate::object::Core;
use crate::Address;

static DIRECTORY: OnceLock<Address> = OnceLock::new();

/// This process's directory, made on first use.
pub fn process_directory() -> Address {
    *DIRECTORY.get_or_init(|| {
        crate::object::create_root(process::ProcessDirectory::new(group::inherited()))
    })
}

/// True when `address` is this process's directory (made already).
pub(crate) fn is_process_directory(address: Address) -> bool {
    DIRECTORY.get() == Some(&address)
}

/// Withdraws every publication of this process, if it has a directory (it never made one
/// when it never published); the `Cleared` answer goes to `postbox`'s object.
pub(crate) fn withdraw_all(postbox: &crate::object::Postbox) {
    if let Some(directory) = DIRECTORY.get() {
        postbox.send(*directory, messages::WithdrawAll);
    }
}

/// The directory operations every object has: each sends a message to the process's
/// directory, which answers this object.
impl Core {
    /// Publishes this object as `name`, seen as far as `scope`. The answer comes as
    /// [`Published`] or a `NotPublished` fault (the name is taken at that scope, naming
    /// the holder; or the scope is not served). A name that is not one is refused here.
    pub fn publish(&self, name: &str, scope: Scope) -> Result<(), NameError> {
        let name = Name::new(name)?;
        self.send(process_directory(), Publish { name, scope });
        Ok(())
    }

    /// Subscribes this object to every name `pattern` matches (a regular expression that
    /// must match the whole name) published at `scope` or nearer. The answer comes as
    /// [`Subscribed`] or a `NotSubscribed` fault, then [`Available`] and [`Dropped`]. A
    /// pattern that is not one is refused here.
    pub fn subscribe(&self, pattern: &str, scope: Scope) -> Result<(), NameError> {
        let pattern = Pattern::new(pattern)?;
        self.send(process_directory(), Subscribe { pattern, scope });
        Ok(())
    }

    /// Withdraws everything this object published; answered [`Cleared`].
    pub fn clear_published(&self) {
        self.send(process_directory(), ClearPublished);
    }

    /// Ends every subscription of this object; it hears [`Dropped`] for what it held,
    /// then [`Cleared`].
    pub fn clear_subscribed(&self) {
        self.send(process_directory(), ClearSubscribed);
    }
}
