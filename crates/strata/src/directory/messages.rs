//! The directory's messages: what objects send their process's directory and hear back
//! (public), and what directories send one another (crate-private, `strata.directory.*`
//! on the wire like the rest).
//!
//! An object asks with [`Publish`], [`Subscribe`], [`ClearPublished`] and
//! [`ClearSubscribed`] (or the [`Core`](crate::Core) methods that send them) and hears
//! [`Published`] (or the fault `NotPublished`), [`Subscribed`] (or `NotSubscribed`), [`Cleared`], then
//! [`Available`] and [`Dropped`] for as long as its subscriptions last.

use serde::{Deserialize, Serialize};

use super::name::{Name, Pattern, Scope};
use crate::{Address, Message};

/// Publishes the sender under `name`, seen as far as `scope`. Answered [`Published`] or
/// [`NotPublished`](crate::standard::NotPublished), whose reason names the name, the scope
/// and why (another object holds it there, naming it; or the scope cannot be served).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Message)]
#[message(name = "strata.directory.Publish")]
pub struct Publish {
    /// The name.
    pub name: Name,
    /// How far it is seen.
    pub scope: Scope,
}

/// The name is published.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Message)]
#[message(name = "strata.directory.Published")]
pub struct Published {
    /// The name.
    pub name: Name,
    /// Its scope.
    pub scope: Scope,
}

/// Subscribes the sender to every name `pattern` matches (a regular expression that must
/// match the whole name), published at `scope` or nearer. Answered [`Subscribed`] or
/// [`NotSubscribed`](crate::standard::NotSubscribed); then [`Available`] and [`Dropped`] follow.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Message)]
#[message(name = "strata.directory.Subscribe")]
pub struct Subscribe {
    /// The pattern.
    pub pattern: Pattern,
    /// How far to look.
    pub scope: Scope,
}

/// The subscription holds.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Message)]
#[message(name = "strata.directory.Subscribed")]
pub struct Subscribed {
    /// The pattern.
    pub pattern: String,
    /// Its scope.
    pub scope: Scope,
}

/// A name the subscriber matches is available at `address`: the nearest publication of
/// it the subscriber sees. Messages sent to `address` reach the publisher (over a link
/// between the two processes when they differ, made for it or reused).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Message)]
#[message(name = "strata.directory.Available")]
pub struct Available {
    /// The name.
    pub name: Name,
    /// Where its messages go.
    pub address: Address,
    /// The publication's scope.
    pub scope: Scope,
}

/// What was [`Available`] is no more: withdrawn, its publisher or process ended, or a
/// nearer or wider one takes its place (then an `Available` follows). Every `Available`
/// is followed by exactly one `Dropped`, unless the subscriber ends first.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Message)]
#[message(name = "strata.directory.Dropped")]
pub struct Dropped {
    /// The name.
    pub name: Name,
    /// The address that was available.
    pub address: Address,
    /// The publication's scope.
    pub scope: Scope,
}

/// Withdraws everything the sender published. Answered [`Cleared`]; subscribers hear
/// [`Dropped`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Message)]
#[message(name = "strata.directory.ClearPublished")]
pub struct ClearPublished;

/// Withdraws everything any object of this process published (a process that retires:
/// `process::recycle`). Sent only within the process; answered [`Cleared`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Message)]
#[message(name = "strata.directory.WithdrawAll")]
pub(crate) struct WithdrawAll;

/// Ends every subscription of the sender. It hears [`Dropped`] for everything it held,
/// then [`Cleared`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Message)]
#[message(name = "strata.directory.ClearSubscribed")]
pub struct ClearSubscribed;

/// The answer to [`ClearPublished`] and [`ClearSubscribed`]: how many went.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Message)]
#[message(name = "strata.directory.Cleared")]
pub struct Cleared {
    /// How many publications or subscriptions ended.
    pub count: usize,
}

/// What directories say to one another: a process directory (the client) and the shared
/// directory of a wider scope it joins (`shared.rs`).
pub(crate) mod wire {
    use super::*;

    /// A client joins, giving the endpoint where its process takes session links.
    #[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Message)]
    #[message(name = "strata.directory.Join")]
    pub(crate) struct Join {
        pub(crate) endpoint: Option<String>,
    }

    /// The client has joined a directory of `level`.
    #[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Message)]
    #[message(name = "strata.directory.Joined")]
    pub(crate) struct Joined {
        pub(crate) level: Scope,
    }

    /// A publication seen at least as far as the directory's scope: `owner` published
    /// `address` as `name`, seen as far as `scope`.
    #[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Message)]
    #[message(name = "strata.directory.Offer")]
    pub(crate) struct Offer {
        pub(crate) ticket: u64,
        pub(crate) name: Name,
        pub(crate) scope: Scope,
        pub(crate) owner: Address,
        pub(crate) address: Address,
    }

    /// The answer to an [`Offer`]: `None` when it is published, else why not.
    #[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Message)]
    #[message(name = "strata.directory.OfferAnswer")]
    pub(crate) struct OfferAnswer {
        pub(crate) ticket: u64,
        pub(crate) refusal: Option<String>,
    }

    /// `owner` withdraws `name`.
    #[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Message)]
    #[message(name = "strata.directory.Withdraw")]
    pub(crate) struct Withdraw {
        pub(crate) name: Name,
        pub(crate) owner: Address,
    }

    /// The client wants every publication `pattern` matches, as subscription `id`.
    #[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Message)]
    #[message(name = "strata.directory.Want")]
    pub(crate) struct Want {
        pub(crate) id: u64,
        pub(crate) pattern: Pattern,
    }

    /// The client no longer wants subscription `id`.
    #[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Message)]
    #[message(name = "strata.directory.Unwant")]
    pub(crate) struct Unwant {
        pub(crate) id: u64,
    }

    /// A publication matching subscription `id` came (`available`) or went; `endpoint` is
    /// where its process takes session links.
    #[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Message)]
    #[message(name = "strata.directory.Candidate")]
    pub(crate) struct Candidate {
        pub(crate) id: u64,
        pub(crate) available: bool,
        pub(crate) name: Name,
        /// How far the publication is seen.
        pub(crate) scope: Scope,
        pub(crate) address: Address,
        pub(crate) endpoint: Option<String>,
    }
}
