//! What a directory shows of itself: `Query` → [`DirectoryView`], for `strata network`
//! and for anyone curious. A process directory's view lists its upstreams and sessions;
//! a shared directory's, its clients.

use serde::{Deserialize, Serialize};

use super::listing::Listing;
use super::name::Scope;
use crate::{Address, Message};

/// Asks a directory for its [`DirectoryView`].
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, Message)]
#[message(name = "strata.directory.Query")]
pub struct Query;

/// One publication, as a directory holds it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PublicationView {
    /// The name.
    pub name: String,
    /// How far it is seen.
    pub scope: Scope,
    /// Where the directory has it from: in a process directory `Process` for its own
    /// objects' and the scope of the wider directory that sent the others (one
    /// publication may be there several times, once from each); in a shared directory its
    /// scope.
    pub from: Scope,
    /// Where its messages go.
    pub address: Address,
    /// The object that published it.
    pub owner: Address,
}

/// One subscription.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SubscriptionView {
    /// The subscriber (for a shared directory: the client process's directory).
    pub owner: Address,
    /// The pattern.
    pub pattern: String,
    /// How far it looks.
    pub scope: Scope,
    /// How many names it holds now.
    pub holds: usize,
}

/// A process directory's link to a wider directory.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct UpstreamView {
    /// Its scope.
    pub scope: Scope,
    /// Its address, when joined.
    pub directory: Option<Address>,
    /// `joined`, `connecting` or `waiting`.
    pub state: String,
}

/// A client of a shared directory.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ClientView {
    /// The client process's directory.
    pub address: Address,
    /// Where its process takes session links.
    pub endpoint: Option<String>,
    /// How many publications it holds here.
    pub publications: usize,
    /// How many subscriptions.
    pub subscriptions: usize,
}

/// A session: a link from this process to another one, for the names it found there.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SessionView {
    /// The other process's node id.
    pub node: u64,
    /// Where it was reached.
    pub endpoint: Option<String>,
    /// `up` (a direct link, made for it or reused), `connecting` or `failed`.
    pub state: String,
}

/// What a directory holds.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Message)]
#[message(name = "strata.directory.View")]
pub struct DirectoryView {
    /// Which directory: its scope.
    pub level: Scope,
    /// Its process id.
    pub pid: u32,
    /// Its publications (for a process directory: also those it heard of from wider
    /// directories, nearest first).
    pub publications: Vec<PublicationView>,
    /// Its subscriptions.
    pub subscriptions: Vec<SubscriptionView>,
    /// A shared directory's clients.
    pub clients: Vec<ClientView>,
    /// A process directory's wider directories.
    pub upstreams: Vec<UpstreamView>,
    /// A process directory's sessions.
    pub sessions: Vec<SessionView>,
}

impl DirectoryView {
    /// The view of `listing`, for a directory of `level` (clients, upstreams and sessions
    /// empty, for the caller to fill).
    pub(crate) fn of(level: Scope, listing: &Listing) -> DirectoryView {
        let mut publications: Vec<PublicationView> = listing
            .publications()
            .map(|p| PublicationView {
                name: p.name.to_string(),
                scope: p.shown,
                from: p.scope,
                address: p.address,
                owner: p.owner,
            })
            .collect();
        publications.sort_by(|a, b| (&a.name, a.from).cmp(&(&b.name, b.from)));
        let subscriptions = listing
            .subscriptions()
            .map(|(owner, pattern, scope, holds)| SubscriptionView {
                owner,
                pattern: pattern.to_string(),
                scope,
                holds,
            })
            .collect();
        DirectoryView {
            level,
            pid: std::process::id(),
            publications,
            subscriptions,
            clients: Vec::new(),
            upstreams: Vec::new(),
            sessions: Vec::new(),
        }
    }
}
