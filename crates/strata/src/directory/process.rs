//! The process directory: one per process, the directory its objects talk to.
//!
//! It holds every publication of the process's objects (at process scope in its
//! listing: they meet every subscriber of the process there; subscribers are told their
//! own scope) and every subscription. A publication seen further is also offered to each
//! wider directory up to its scope (the group's, the host's), and each subscription that
//! looks that far becomes a *want* there; what those directories answer (`Candidate`s, at
//! the scope of the directory they came from) it merges with its own in one listing,
//! which decides what each subscriber holds: the nearest publication of each name,
//! `Dropped` before `Available`. So the rules live in one place (`listing.rs`), and the
//! wider directories only match. A name is published once per process.
//!
//! The answer to a publish comes when every wider directory it goes to has accepted it,
//! except one that went away: publishing never waits for a directory that is not there
//! (the offer is made when it is back, and a refusal then is told as `NotPublished`).
//!
//! Before a subscriber hears of an address in another process, the two processes are
//! joined by a direct link (a *session*): one that joins them already (a child's link to
//! its parent, or an earlier session), or one it opens to the endpoint the publisher's
//! process listens on. A session that closes withdraws what came from it at once.
//!
//! When the host directory goes away the process keeps what it heard and its sessions,
//! and joins again (jittered backoff, 0.1 s to 2 s; the first to find none serves it, see
//! `host.rs`): it offers and wants everything again, and what the new directory does not
//! confirm within [`SETTLE`] is dropped. Subscribers see only the difference.

use std::collections::{HashMap, HashSet};
use std::time::Duration;

use serde::{Deserialize, Serialize};

use super::candidates::{Action, Candidates};
use super::host::{self, HostLock};
use super::lan::LanSettings;
use super::listing::{Change, Listing, Publication, SubscriptionId};
use super::messages::wire::{Candidate, Join, Joined, Offer, OfferAnswer, Unwant, Want, Withdraw};
use super::messages::{
    Available, ClearPublished, ClearSubscribed, Cleared, Dropped, Publish, Published, Subscribe,
    Subscribed,
};
use super::name::{Name, Pattern, Scope};
use super::shared::SharedDirectory;
use super::view::{DirectoryView, Query, SessionView, UpstreamView};
use crate::address::local_node;
use crate::backoff::Backoff;
use crate::net::{grants, Accepted, Closed, Connect, Connected, Listen, Listening};
use crate::object::Context;
use crate::standard::{
    Ended, NotConnected, NotListening, NotPublished, NotSubscribed, Returned, Start,
};
use crate::{Address, Message};

/// How long after joining the host directory again what it did not confirm is kept: the
/// other processes re-register within 2 s (their backoff's longest wait).
pub(crate) const SETTLE: Duration = Duration::from_secs(3);

/// How long a child's directory waits for its link to the parent before joining the
/// host's directory without it.
const PARENT_PATIENCE: Duration = Duration::from_secs(2);

/// Try joining the host directory again.
#[derive(Debug, Clone, Copy, Serialize, Deserialize, Message)]
#[message(name = "strata.directory.RetryHost")]
struct RetryHost;

/// Try joining the parent's group directory again (the link to the parent is not up yet).
#[derive(Debug, Clone, Copy, Serialize, Deserialize, Message)]
#[message(name = "strata.directory.RetryGroup")]
struct RetryGroup;

/// Try joining the LAN directory again.
#[derive(Debug, Clone, Copy, Serialize, Deserialize, Message)]
#[message(name = "strata.directory.RetryLan")]
struct RetryLan;

/// How long a publish waits for a LAN directory being joined for the first time before
/// it is answered without it (the LAN part pending).
pub(crate) const LAN_PATIENCE: Duration = Duration::from_millis(300);

/// The LAN directory took longer than [`LAN_PATIENCE`] to join.
#[derive(Debug, Clone, Copy, Serialize, Deserialize, Message)]
#[message(name = "strata.directory.LanPatience")]
struct LanPatience;

/// Try the sessions that failed again.
#[derive(Debug, Clone, Copy, Serialize, Deserialize, Message)]
#[message(name = "strata.directory.RetrySessions")]
struct RetrySessions;

/// Prune what the directories joined again did not confirm (`ProcessDirectory::settling`;
/// one timer for all: a second rejoin within `SETTLE` only delays the first's pruning).
#[derive(Debug, Clone, Copy, Serialize, Deserialize, Message)]
#[message(name = "strata.directory.Settle")]
struct Settle;

/// Where this process stands with a wider directory.
enum State {
    /// Not needed yet.
    Idle,
    /// Waiting: for this process's session endpoint, or to try again.
    Waiting,
    /// Connecting to the host directory's socket (the `Connect` object).
    Connecting(Address),
    /// Joined, or joining, the directory at this address.
    Joined { directory: Address, confirmed: bool },
    /// Cannot be served here, and why.
    Failed(String),
}

struct Upstream {
    level: Scope,
    state: State,
    /// Set once the directory went away: joining again prunes what it does not confirm.
    rejoin: bool,
    epoch: u64,
}

impl Upstream {
    fn joined(&self) -> Option<Address> {
        match self.state {
            State::Joined {
                directory,
                confirmed: true,
            } => Some(directory),
            _ => None,
        }
    }

    fn directory(&self) -> Option<Address> {
        match self.state {
            State::Joined { directory, .. } => Some(directory),
            _ => None,
        }
    }

    fn state_text(&self) -> String {
        match &self.state {
            State::Idle => "idle".into(),
            State::Waiting => "waiting".into(),
            State::Connecting(_) => "connecting".into(),
            State::Joined {
                confirmed: true, ..
            } => "joined".into(),
            State::Joined { .. } => "joining".into(),
            State::Failed(why) => format!("failed: {why}"),
        }
    }
}

/// A publication of an object of this process. It is held here (at process scope, seen
/// by every subscriber of the process) and, when it is seen further, offered to each wider
/// directory up to its scope: the group's, the host's.
struct LocalPub {
    owner: Address,
    scope: Scope,
    /// Per wider directory it is offered to, the offer's ticket.
    tickets: Vec<(Scope, u64)>,
    /// The wider directories whose answer the owner waits for (those joined, or being
    /// joined for the first time; not one that went away: publishing never blocks on it).
    waiting: Vec<Scope>,
    /// The owner has heard `Published`.
    answered: bool,
}

impl LocalPub {
    fn ticket_at(&self, level: Scope) -> Option<u64> {
        self.tickets
            .iter()
            .find(|(l, _)| *l == level)
            .map(|(_, t)| *t)
    }
}

/// A session listener of this process.
#[derive(Default)]
struct Endpoint {
    /// `None` until asked for, then `Some(None)` while it starts or after it failed,
    /// `Some(Some(endpoint))` when it listens.
    state: Option<Option<String>>,
    /// The listening object.
    listen: Option<Address>,
}

/// A subscription of an object of this process.
struct LocalSub {
    id: SubscriptionId,
    owner: Address,
    pattern: Pattern,
    scope: Scope,
}

enum Session {
    Connecting {
        connect: Address,
        endpoint: String,
    },
    Up {
        peer: Address,
        endpoint: Option<String>,
    },
    Failed {
        endpoint: String,
        at: std::time::Instant,
    },
}

/// The process directory (see the module doc).
pub(crate) struct ProcessDirectory {
    listing: Listing,
    subs: HashMap<u64, LocalSub>,
    pubs: HashMap<Name, LocalPub>,
    watched: HashSet<Address>,
    /// The group's directory (index 0), the host's (1) and the LAN's (2).
    up: [Upstream; 3],
    candidates: Candidates,
    sessions: HashMap<u64, Session>,
    /// The session listener for processes of this host (a Unix socket), and the one for
    /// other hosts (TCP, for the LAN scope).
    unix: Endpoint,
    tcp: Endpoint,
    /// How to reach the LAN, if configured (or why the configuration is wrong).
    lan: Result<Option<LanSettings>, String>,
    /// The group directory to join: the parent's, for a child of a composite.
    group: Option<Address>,
    backoff: Backoff,
    /// The LAN directory's reconnects (the same policy as the host's).
    lan_backoff: Backoff,
    /// Held while this process serves the host directory.
    host_lock: Option<HostLock>,
    next_ticket: u64,
    /// The directories joined again, and as which epoch, whose unconfirmed candidates go
    /// when `Settle` fires.
    settling: Vec<(Scope, u64)>,
    /// Set when the LAN directory could not be joined in time (first connect failed, or
    /// took longer than [`LAN_PATIENCE`]): publishing no longer waits for it.
    lan_unanswered: bool,
    /// Each offer's ticket, to its name (answers are found without a scan).
    tickets: HashMap<u64, Name>,
    /// When this directory was made: a child waits at most [`PARENT_PATIENCE`] from then
    /// for its link to the parent before joining the host's or LAN's directory.
    born: std::time::Instant,
    /// Its entry in the process's figures (`crate::metrics`), from start to end.
    figures: Option<crate::metrics::Registration>,
}

impl ProcessDirectory {
    pub(crate) fn new(group: Option<Address>) -> ProcessDirectory {
        let upstream = |level| Upstream {
            level,
            state: State::Idle,
            rejoin: false,
            epoch: 0,
        };
        ProcessDirectory {
            listing: Listing::new(),
            subs: HashMap::new(),
            pubs: HashMap::new(),
            watched: HashSet::new(),
            up: [
                upstream(Scope::Group),
                upstream(Scope::Host),
                upstream(Scope::Lan),
            ],
            candidates: Candidates::default(),
            sessions: HashMap::new(),
            unix: Endpoint::default(),
            tcp: Endpoint::default(),
            lan: super::lan::settings(),
            group,
            backoff: Backoff::growing(Duration::from_millis(100), Duration::from_secs(2))
                .jitter(0.5),
            lan_backoff: Backoff::growing(Duration::from_millis(100), Duration::from_secs(2))
                .jitter(0.5),
            host_lock: None,
            next_ticket: 1,
            settling: Vec::new(),
            lan_unanswered: false,
            tickets: HashMap::new(),
            born: std::time::Instant::now(),
            figures: None,
        }
    }

    /// A child whose link to its parent is not up yet (and not for long): it joins no
    /// wider directory until it is. Were the child to link to the host directory first,
    /// and that directory be served by the parent, the socket link would claim the
    /// parent's node and the private link, coming second, would be refused for it.
    fn awaits_parent(&self) -> bool {
        self.group
            .is_some_and(|g| !Self::reachable(g.node()) && self.born.elapsed() < PARENT_PATIENCE)
    }

    fn slot(level: Scope) -> Option<usize> {
        match level {
            Scope::Group => Some(0),
            Scope::Host => Some(1),
            Scope::Lan => Some(2),
            Scope::Process => None,
        }
    }

    /// The level whose directory is `sender`.
    fn level_of(&self, sender: Address) -> Option<Scope> {
        self.up
            .iter()
            .find(|u| u.directory() == Some(sender))
            .map(|u| u.level)
    }

    fn watch(&mut self, cx: &mut Context<Self>, owner: Address) {
        if self.watched.insert(owner) {
            cx.watch(owner);
        }
    }

    /// Starts joining the directory of `level` if it is not under way.
    fn need(&mut self, cx: &mut Context<Self>, level: Scope) {
        let Some(i) = Self::slot(level) else { return };
        if !matches!(self.up[i].state, State::Idle) {
            return;
        }
        self.up[i].state = State::Waiting;
        let lan = level == Scope::Lan;
        if lan {
            cx.start(LanPatience, LAN_PATIENCE);
            match &self.lan {
                Ok(Some(_)) => {}
                Ok(None) => {
                    let why = format!(
                        "no LAN directory is configured (set {})",
                        super::lan::LAN_DIRECTORY_VARIABLE
                    );
                    return self.fail(cx, i, why);
                }
                Err(why) => {
                    let why = why.clone();
                    return self.fail(cx, i, why);
                }
            }
        }
        let endpoint = if lan { &mut self.tcp } else { &mut self.unix };
        match &endpoint.state {
            None => {
                endpoint.state = Some(None);
                let listen = if lan {
                    let settings = self.lan.clone().ok().flatten().expect("checked above");
                    Ok(settings.listen(settings.session_address()))
                } else {
                    host::session_socket().map(Listen::unix)
                };
                match listen {
                    Ok(l) => {
                        let listen = cx.create(l.reach_public(true));
                        let endpoint = if lan { &mut self.tcp } else { &mut self.unix };
                        endpoint.listen = Some(listen);
                    }
                    Err(why) => {
                        tracing::warn!(target: "strata::directory", %why, "no session endpoint: other processes cannot link to this one");
                        self.endpoint_ready(cx, lan, None);
                    }
                }
            }
            Some(Some(_)) => self.connect(cx, level),
            Some(None) => {} // the endpoint is starting; it connects every waiting level
        }
    }

    /// A session endpoint is up (or could not be): every level waiting for it connects.
    fn endpoint_ready(&mut self, cx: &mut Context<Self>, lan: bool, endpoint: Option<String>) {
        let levels: &[Scope] = if lan {
            self.tcp.state = Some(endpoint);
            &[Scope::Lan]
        } else {
            self.unix.state = Some(endpoint);
            &[Scope::Group, Scope::Host]
        };
        for level in levels {
            let i = Self::slot(*level).expect("a wider level");
            if matches!(self.up[i].state, State::Waiting) {
                self.connect(cx, *level);
            }
        }
    }

    /// Connects to, or finds, the directory of `level` and joins it.
    fn connect(&mut self, cx: &mut Context<Self>, level: Scope) {
        let i = Self::slot(level).expect("a wider level");
        if level != Scope::Group && self.awaits_parent() {
            self.up[i].state = State::Waiting;
            let soon = Duration::from_millis(10);
            match level {
                Scope::Host => cx.start(RetryHost, soon),
                _ => cx.start(RetryLan, soon),
            }
            return;
        }
        match level {
            Scope::Group => {
                let directory = self.group.unwrap_or_else(super::group::local);
                if Self::reachable(directory.node()) {
                    self.join(cx, i, directory);
                } else {
                    // A child's link to its parent comes up just after the program starts.
                    self.up[i].state = State::Waiting;
                    cx.start(RetryGroup, Duration::from_millis(10));
                }
            }
            Scope::Host => match host::host_socket() {
                Ok(path) => {
                    // The process serving the host directory may use this link as its
                    // session to this process (`reuse`), so it must let that process reach
                    // what this one published, as the session socket does: the host
                    // socket's peers are this user's processes of this host, the same as
                    // the session socket's. Without it a request sent the moment this
                    // process's name became available was refused here and never answered.
                    let connect = cx.create(Connect::unix(path).reuse(true).reach_public(true));
                    self.up[i].state = State::Connecting(connect);
                }
                Err(why) => self.fail(cx, i, why),
            },
            _ => {
                let settings = self.lan.clone().ok().flatten().expect("checked by need");
                match settings.etcd {
                    #[cfg(feature = "etcd")]
                    Some(cluster) => {
                        // Served in this process, on the cluster: joined without a link.
                        let directory = cx.create(super::etcd::EtcdDirectory::new(cluster));
                        self.join(cx, i, directory);
                    }
                    #[cfg(not(feature = "etcd"))]
                    Some(_) => unreachable!("refused by lan::settings without the feature"),
                    None => {
                        let connect = cx.create(settings.connect(settings.directory).reuse(true));
                        self.up[i].state = State::Connecting(connect);
                    }
                }
            }
        }
    }

    fn join(&mut self, cx: &mut Context<Self>, i: usize, directory: Address) {
        self.up[i].state = State::Joined {
            directory,
            confirmed: false,
        };
        self.watch(cx, directory);
        let endpoint = if self.up[i].level == Scope::Lan {
            self.tcp.state.clone().flatten()
        } else {
            self.unix.state.clone().flatten()
        };
        cx.send(directory, Join { endpoint });
    }

    /// The directory of slot `i` cannot be had: what waits for it is refused.
    fn fail(&mut self, cx: &mut Context<Self>, i: usize, why: String) {
        let level = self.up[i].level;
        tracing::warn!(target: "strata::directory", %level, %why, "no directory at this scope");
        self.up[i].state = State::Failed(why.clone());
        let refused: Vec<Name> = self
            .pubs
            .iter()
            .filter(|(_, p)| p.ticket_at(level).is_some())
            .map(|(n, _)| n.clone())
            .collect();
        for name in refused {
            self.refuse(cx, &name, &why);
        }
    }

    /// Publishing stops waiting for the LAN directory: what waited for it is answered now
    /// (its offers are made when the LAN directory is joined).
    fn stop_waiting_for_lan(&mut self, cx: &mut Context<Self>) {
        self.lan_unanswered = true;
        let waiting: Vec<Name> = self
            .pubs
            .iter_mut()
            .filter(|(_, p)| p.waiting.contains(&Scope::Lan))
            .map(|(n, p)| {
                p.waiting.retain(|l| *l != Scope::Lan);
                n.clone()
            })
            .collect();
        for name in waiting {
            self.answer_if_complete(cx, &name);
        }
    }

    /// Tries the LAN directory again after the backoff's wait.
    fn retry_lan(&mut self, cx: &mut Context<Self>) {
        self.stop_waiting_for_lan(cx);
        let wait = self.lan_backoff.failed().unwrap_or(Duration::from_secs(2));
        self.up[2].state = State::Waiting;
        cx.start(RetryLan, wait);
    }

    /// Tries the host directory again after the backoff's wait.
    fn retry_host(&mut self, cx: &mut Context<Self>) {
        let wait = self.backoff.failed().unwrap_or(Duration::from_secs(2));
        self.up[1].state = State::Waiting;
        cx.start(RetryHost, wait);
    }

    /// Joined `level`: offer and want everything that looks that far.
    fn joined(&mut self, cx: &mut Context<Self>, i: usize) {
        let Some(directory) = self.up[i].directory() else {
            return;
        };
        let level = self.up[i].level;
        self.up[i].state = State::Joined {
            directory,
            confirmed: true,
        };
        self.up[i].epoch += 1;
        if self.up[i].rejoin {
            self.candidates.unconfirm(level);
            self.settling.push((level, self.up[i].epoch));
            cx.start(Settle, SETTLE);
        }
        match level {
            Scope::Host => self.backoff.reset(),
            Scope::Lan => {
                self.lan_backoff.reset();
                self.lan_unanswered = false;
            }
            _ => {}
        }
        tracing::info!(target: "strata::directory", %level, %directory, rejoin = self.up[i].rejoin, "joined");
        let offers: Vec<Offer> = self
            .pubs
            .iter()
            .filter_map(|(name, p)| {
                Some(Offer {
                    ticket: p.ticket_at(level)?,
                    name: name.clone(),
                    scope: p.scope,
                    owner: p.owner,
                    address: p.owner,
                })
            })
            .collect();
        for offer in offers {
            cx.send(directory, offer);
        }
        let mut wants: Vec<(u64, Pattern)> = self
            .subs
            .iter()
            .filter(|(_, s)| s.scope >= level)
            .map(|(id, s)| (*id, s.pattern.clone()))
            .collect();
        wants.sort_by_key(|(id, _)| *id);
        for (id, pattern) in wants {
            cx.send(directory, Want { id, pattern });
        }
    }

    /// The directory of slot `i` went away.
    fn lost_upstream(&mut self, cx: &mut Context<Self>, i: usize) {
        let level = self.up[i].level;
        if self.up[i].directory().is_some_and(|d| d.is_local()) {
            // This process served it: it is ending (or the directory was stopped).
            tracing::debug!(target: "strata::directory", %level, "this process's directory ended");
        } else {
            tracing::warn!(target: "strata::directory", %level, "directory gone: keeping what was heard, joining again");
        }
        self.up[i].rejoin = true;
        // Nobody waits for an answer from a directory that went away.
        let answerable: Vec<Name> = self
            .pubs
            .iter_mut()
            .filter(|(_, p)| p.waiting.contains(&level))
            .map(|(n, p)| {
                p.waiting.retain(|l| *l != level);
                n.clone()
            })
            .collect();
        for name in answerable {
            self.answer_if_complete(cx, &name);
        }
        match level {
            Scope::Host => self.retry_host(cx),
            Scope::Lan => self.retry_lan(cx),
            // A group's directory lives in the parent: without it this process is ending.
            _ => self.up[i].state = State::Failed("the group's directory ended".into()),
        }
    }

    fn reachable(node: u64) -> bool {
        node == local_node()
            || crate::net::reachable_nodes()
                .iter()
                .any(|(n, direct)| *n == node && *direct)
    }

    /// Applies candidate actions to the listing, tells subscribers, and opens the
    /// sessions that candidates wait for.
    fn apply(&mut self, cx: &mut Context<Self>, actions: Vec<Action>) {
        for action in actions {
            let changes = match action {
                Action::List {
                    name,
                    scope,
                    shown,
                    address,
                } => match self.listing.publish(Publication {
                    name,
                    scope,
                    shown,
                    // A child's top object is reached through its `Process` object here.
                    address: crate::net::link::stand_ins::of(address).unwrap_or(address),
                    owner: address,
                    incarnation: address.node(),
                }) {
                    Ok(changes) => changes,
                    Err(e) => {
                        tracing::warn!(target: "strata::directory", error = %e, "candidate not listed");
                        Vec::new()
                    }
                },
                Action::Delist {
                    name,
                    scope,
                    address,
                } => self.listing.withdraw(&name, scope, address),
            };
            self.tell(cx, changes);
        }
    }

    fn open_sessions(&mut self, cx: &mut Context<Self>) {
        for (node, endpoint) in self.candidates.waiting(&Self::reachable) {
            let retry = match self.sessions.get(&node) {
                None => true,
                Some(Session::Failed { at, .. }) => at.elapsed() > Duration::from_secs(1),
                Some(_) => false,
            };
            if !retry {
                continue;
            }
            tracing::info!(target: "strata::directory", event = "session", node = format_args!("{node:016x}"), %endpoint, "opening a session");
            let connect = match super::lan::parse_endpoint(&endpoint) {
                // Another host's process: a LAN link (encrypted, kept alive).
                Some(address) => match self.lan.clone().ok().flatten() {
                    Some(settings) => settings.connect(address),
                    None => continue,
                },
                None => Connect::unix(endpoint.clone()),
            };
            let connect = cx.create(connect.reach_public(true).reuse(true));
            self.sessions
                .insert(node, Session::Connecting { connect, endpoint });
        }
    }

    /// Sends each change to its subscriber.
    fn tell(&self, cx: &mut Context<Self>, changes: Vec<Change>) {
        for change in changes {
            let (to, _, name, address, scope, available) = change.into_parts();
            // A subscriber that ended hears nothing.
            if !self.watched.contains(&to) {
                continue;
            }
            let event = if available { "available" } else { "dropped" };
            tracing::info!(target: "strata::directory", event, %name, %scope, %address, subscriber = %to);
            if available {
                cx.send(
                    to,
                    Available {
                        name,
                        address,
                        scope,
                    },
                );
            } else {
                cx.send(
                    to,
                    Dropped {
                        name,
                        address,
                        scope,
                    },
                );
            }
        }
    }

    /// Makes `owner` private again unless it still publishes beyond this process.
    fn forget_public(&self, owner: Address) {
        if !self
            .pubs
            .values()
            .any(|p| p.owner == owner && p.scope > Scope::Process)
        {
            grants::make_private(owner);
        }
    }

    /// Withdraws `name` everywhere it is listed: here, and from the wider directories.
    fn withdraw_everywhere(&mut self, cx: &mut Context<Self>, name: &Name) -> Option<LocalPub> {
        let p = self.pubs.remove(name)?;
        for (_, ticket) in &p.tickets {
            self.tickets.remove(ticket);
        }
        // What wider directories sent back of it goes first (it is no nearer than this
        // process's own), so no subscriber falls back to a copy of what was withdrawn.
        let echoes = self.candidates.forget(name, p.owner, &Self::reachable);
        self.apply(cx, echoes);
        let changes = self.listing.withdraw(name, Scope::Process, p.owner);
        self.tell(cx, changes);
        for (level, _) in &p.tickets {
            if let Some(d) = Self::slot(*level).and_then(|i| self.up[i].joined()) {
                cx.send(
                    d,
                    Withdraw {
                        name: name.clone(),
                        owner: p.owner,
                    },
                );
            }
        }
        self.forget_public(p.owner);
        Some(p)
    }

    /// A wider directory refused `name`: it goes everywhere, and its owner hears why.
    fn refuse(&mut self, cx: &mut Context<Self>, name: &Name, why: &str) {
        if let Some(p) = self.withdraw_everywhere(cx, name) {
            let why = if p.answered {
                format!("lost while a directory was away: {why}")
            } else {
                why.to_string()
            };
            tracing::info!(target: "strata::directory", event = "not published", %name, scope = %p.scope, reason = %why);
            cx.send(p.owner, not_published(name, p.scope, &why));
        }
    }

    /// Answers `Published` once no directory the owner waits for is left.
    fn answer_if_complete(&mut self, cx: &mut Context<Self>, name: &Name) {
        if let Some(p) = self.pubs.get_mut(name) {
            if p.waiting.is_empty() && !p.answered {
                p.answered = true;
                tracing::info!(target: "strata::directory", event = "publish", %name, scope = %p.scope, address = %p.owner);
                cx.send(
                    p.owner,
                    Published {
                        name: name.clone(),
                        scope: p.scope,
                    },
                );
            }
        }
    }

    /// Withdraws everything `owner` published; how many went.
    fn clear_published(&mut self, cx: &mut Context<Self>, owner: Address) -> usize {
        let names: Vec<Name> = self
            .pubs
            .iter()
            .filter(|(_, p)| p.owner == owner)
            .map(|(n, _)| n.clone())
            .collect();
        for name in &names {
            self.withdraw_everywhere(cx, name);
        }
        names.len()
    }

    /// Ends every subscription of `owner`; how many went.
    fn clear_subscribed(&mut self, cx: &mut Context<Self>, owner: Address) -> usize {
        let ids: Vec<u64> = self
            .subs
            .iter()
            .filter(|(_, s)| s.owner == owner)
            .map(|(id, _)| *id)
            .collect();
        for id in &ids {
            let sub = self.subs.remove(id).expect("an id just listed");
            let dropped = self.listing.unsubscribe(sub.id);
            self.tell(cx, dropped);
            for u in &self.up {
                if let Some(d) = u.joined() {
                    if sub.scope >= u.level {
                        cx.send(d, Unwant { id: *id });
                    }
                }
            }
            let actions = self.candidates.unwant(*id, &Self::reachable);
            self.apply(cx, actions);
        }
        ids.len()
    }

    fn view(&self) -> DirectoryView {
        let mut view = DirectoryView::of(Scope::Process, &self.listing);
        view.upstreams = self
            .up
            .iter()
            .filter(|u| !matches!(u.state, State::Idle))
            .map(|u| UpstreamView {
                scope: u.level,
                directory: u.directory(),
                state: u.state_text(),
            })
            .collect();
        let mut sessions: Vec<SessionView> = self
            .sessions
            .iter()
            .map(|(node, s)| {
                let (endpoint, state) = match s {
                    Session::Connecting { endpoint, .. } => (Some(endpoint.clone()), "connecting"),
                    Session::Up { endpoint, .. } => (endpoint.clone(), "up"),
                    Session::Failed { endpoint, .. } => (Some(endpoint.clone()), "failed"),
                };
                SessionView {
                    node: *node,
                    endpoint,
                    state: state.into(),
                }
            })
            .collect();
        sessions.sort_by_key(|s| s.node);
        view.sessions = sessions;
        view
    }
}

fn not_published(name: &Name, scope: Scope, why: &str) -> NotPublished {
    NotPublished::new(format!("`{name}` not published at {scope} scope: {why}"))
}

#[crate::machine]
impl ProcessDirectory {
    #[guard(sender == cx.address())]
    fn on_start(&mut self, cx: &mut Context<Self>, _: Start) {
        self.figures = Some(crate::metrics::sources::directory(cx.address()));
    }

    fn on_publish(&mut self, cx: &mut Context<Self>, p: Publish) {
        let owner = cx.sender();
        if owner.is_null() {
            return;
        }
        if !owner.is_local() {
            let why = "only objects of this process publish through its directory";
            cx.send(owner, not_published(&p.name, p.scope, why));
            return;
        }
        if let Some(held) = self.pubs.get(&p.name) {
            if held.owner != owner || held.scope != p.scope {
                let why = format!(
                    "it is already published in this process, at {} scope, by {}",
                    held.scope, held.owner
                );
                cx.send(owner, not_published(&p.name, p.scope, &why));
            } else if held.answered {
                let (name, scope) = (p.name, p.scope);
                cx.send(owner, Published { name, scope });
            }
            return;
        }
        // The wider directories it goes to, from the nearest; one that cannot be had
        // refuses it at once.
        let levels: Vec<Scope> = [Scope::Group, Scope::Host, Scope::Lan]
            .into_iter()
            .filter(|l| *l <= p.scope)
            .collect();
        for level in &levels {
            let i = Self::slot(*level).expect("a wider level");
            if let State::Failed(why) = &self.up[i].state {
                let why = why.clone();
                cx.send(owner, not_published(&p.name, p.scope, &why));
                return;
            }
        }
        if p.scope == Scope::Lan {
            let why = match &self.lan {
                Ok(Some(_)) => None,
                Ok(None) => Some(format!(
                    "no LAN directory is configured (set {})",
                    super::lan::LAN_DIRECTORY_VARIABLE
                )),
                Err(why) => Some(why.clone()),
            };
            if let Some(why) = why {
                cx.send(owner, not_published(&p.name, p.scope, &why));
                return;
            }
        }
        // Held here first: every subscriber of this process sees it at once.
        let changes = self
            .listing
            .publish(Publication {
                name: p.name.clone(),
                scope: Scope::Process,
                shown: p.scope,
                address: owner,
                owner,
                incarnation: local_node(),
            })
            .expect("one publication per name in this process");
        self.watch(cx, owner);
        if p.scope > Scope::Process {
            grants::make_public(owner);
        }
        let mut local = LocalPub {
            owner,
            scope: p.scope,
            tickets: Vec::new(),
            waiting: Vec::new(),
            answered: false,
        };
        for level in levels {
            let ticket = self.next_ticket;
            self.next_ticket += 1;
            local.tickets.push((level, ticket));
            self.tickets.insert(ticket, p.name.clone());
            let i = Self::slot(level).expect("a wider level");
            // Wait for the answer from a directory joined, or being joined on this host
            // for the first time; never for one that went away or the LAN's while it is
            // not joined (publishing never blocks on them: the offer waits instead).
            let joined = self.up[i].joined().is_some();
            let patient = level != Scope::Lan || !self.lan_unanswered;
            if joined || (!self.up[i].rejoin && patient) {
                local.waiting.push(level);
            }
            match self.up[i].joined() {
                Some(d) => cx.send(
                    d,
                    Offer {
                        ticket,
                        name: p.name.clone(),
                        scope: p.scope,
                        owner,
                        address: owner,
                    },
                ),
                None => self.need(cx, level),
            }
        }
        self.pubs.insert(p.name.clone(), local);
        self.answer_if_complete(cx, &p.name);
        self.tell(cx, changes);
    }

    fn on_offer_answer(&mut self, cx: &mut Context<Self>, a: OfferAnswer) {
        let Some(level) = self.level_of(cx.sender()) else {
            return;
        };
        let Some(name) = self.tickets.get(&a.ticket).cloned() else {
            return;
        };
        if self.pubs.get(&name).and_then(|p| p.ticket_at(level)) != Some(a.ticket) {
            return;
        }
        match a.refusal {
            None => {
                if let Some(p) = self.pubs.get_mut(&name) {
                    p.waiting.retain(|l| *l != level);
                }
                self.answer_if_complete(cx, &name);
            }
            Some(why) => self.refuse(cx, &name, &why),
        }
    }

    fn on_subscribe(&mut self, cx: &mut Context<Self>, s: Subscribe) {
        let owner = cx.sender();
        if owner.is_null() {
            return;
        }
        if !owner.is_local() {
            cx.send(
                owner,
                NotSubscribed::new(format!(
                    "`{}` not subscribed: only objects of this process subscribe through its directory",
                    s.pattern
                )),
            );
            return;
        }
        self.watch(cx, owner);
        let (id, changes) = self
            .listing
            .subscribe(owner, local_node(), s.pattern.clone(), s.scope);
        tracing::info!(target: "strata::directory", event = "subscribe", pattern = %s.pattern, scope = %s.scope, subscriber = %owner);
        self.subs.insert(
            id.get(),
            LocalSub {
                id,
                owner,
                pattern: s.pattern.clone(),
                scope: s.scope,
            },
        );
        cx.send(
            owner,
            Subscribed {
                pattern: s.pattern.to_string(),
                scope: s.scope,
            },
        );
        self.tell(cx, changes);
        for level in [Scope::Group, Scope::Host, Scope::Lan] {
            if s.scope < level {
                continue;
            }
            let i = Self::slot(level).expect("a wider level");
            match self.up[i].joined() {
                Some(d) => cx.send(
                    d,
                    Want {
                        id: id.get(),
                        pattern: s.pattern.clone(),
                    },
                ),
                None => self.need(cx, level),
            }
        }
    }

    fn on_candidate(&mut self, cx: &mut Context<Self>, c: Candidate) {
        // Only the directory this process joined at that scope is heard.
        let Some(level) = self.level_of(cx.sender()) else {
            return;
        };
        if !self.subs.contains_key(&c.id) {
            return;
        }
        // A candidate whose process cannot be reached yet waits for a session: only then
        // are the waiting ones looked for (a scan of all candidates).
        let unreached = c.available && !Self::reachable(c.address.node());
        let actions = if c.available {
            self.candidates.available(
                c.id,
                c.name,
                level,
                c.scope,
                c.address,
                c.endpoint,
                &Self::reachable,
            )
        } else {
            self.candidates
                .dropped(c.id, c.name, level, c.address, &Self::reachable)
        };
        self.apply(cx, actions);
        if unreached {
            self.open_sessions(cx);
        }
    }

    fn on_clear_published(&mut self, cx: &mut Context<Self>, _: ClearPublished) -> Cleared {
        let owner = cx.sender();
        Cleared {
            count: self.clear_published(cx, owner),
        }
    }

    fn on_withdraw_all(
        &mut self,
        cx: &mut Context<Self>,
        _: super::messages::WithdrawAll,
    ) -> Cleared {
        let names: Vec<Name> = self.pubs.keys().cloned().collect();
        for name in &names {
            self.withdraw_everywhere(cx, name);
        }
        let count = names.len();
        tracing::info!(target: "strata::directory", count, "withdrew every publication of this process");
        Cleared { count }
    }

    fn on_clear_subscribed(&mut self, cx: &mut Context<Self>, _: ClearSubscribed) -> Cleared {
        let owner = cx.sender();
        Cleared {
            count: self.clear_subscribed(cx, owner),
        }
    }

    fn on_listening(&mut self, cx: &mut Context<Self>, l: Listening) {
        tracing::debug!(target: "strata::directory", endpoint = %l.address, "session endpoint up");
        if self.tcp.listen == Some(cx.sender()) {
            let endpoint = l.address.parse().ok().map(super::lan::endpoint);
            self.endpoint_ready(cx, true, endpoint);
        } else {
            self.endpoint_ready(cx, false, Some(l.address));
        }
    }

    fn on_not_listening(&mut self, cx: &mut Context<Self>, f: NotListening) {
        tracing::warn!(target: "strata::directory", reason = %f.reason, "no session endpoint: other processes cannot link to this one");
        let lan = self.tcp.listen == Some(cx.sender());
        self.endpoint_ready(cx, lan, None);
    }

    fn on_connected(&mut self, cx: &mut Context<Self>, c: Connected) {
        let peer = cx.sender();
        if let Some(Session::Connecting { endpoint, .. }) = self.sessions.get(&peer.node()) {
            let endpoint = Some(endpoint.clone());
            self.sessions
                .insert(peer.node(), Session::Up { peer, endpoint });
            cx.watch(peer);
            tracing::info!(target: "strata::directory", event = "session", node = format_args!("{:016x}", peer.node()), "session up");
            let actions = self.candidates.reached(peer.node(), &Self::reachable);
            self.apply(cx, actions);
        } else if c.remote.starts_with("unix:") {
            if matches!(self.up[1].state, State::Connecting(_)) {
                self.join(cx, 1, peer);
            }
        } else if matches!(self.up[2].state, State::Connecting(_)) {
            self.join(cx, 2, peer);
        }
    }

    fn on_not_connected(&mut self, cx: &mut Context<Self>, f: NotConnected) {
        let from = cx.sender();
        if matches!(self.up[1].state, State::Connecting(c) if c == from) {
            // No one serves the host directory: serve it here, unless another process is
            // starting to.
            let socket = match host::host_socket() {
                Ok(s) => s,
                Err(why) => return self.fail(cx, 1, why),
            };
            match host::try_lock(&socket) {
                Ok(Some(lock)) => {
                    self.host_lock = Some(lock);
                    // Its clients are this host's processes (the listener checks their
                    // user), the same peers this process's session socket lets reach what
                    // it published; and a client that wants a session with this process
                    // reuses the link it has (`reuse`), so the link must let it reach them
                    // too. Without it, a request to a worker that happened to serve the host
                    // directory was refused on arrival and never answered.
                    let directory = crate::object::create_root(SharedDirectory::new(
                        Scope::Host,
                        Some(crate::net::Listen::unix(socket).reach_public(true)),
                    ));
                    // Children of this process reach it over their private links.
                    grants::make_public(directory);
                    tracing::info!(target: "strata::directory", %directory, "serving the host directory in this process");
                    self.join(cx, 1, directory);
                }
                // Another process holds the lock: it is starting to serve (its listener is
                // moments away), so look again soon rather than after the reconnect
                // backoff (processes started together, as a composite's are, waited up to
                // 2 s here for a directory that was up after a few milliseconds).
                Ok(None) => {
                    self.up[1].state = State::Waiting;
                    let soon = crate::random::Rng::seeded().jitter(Duration::from_millis(10), 0.5);
                    cx.start(RetryHost, soon);
                }
                Err(why) => {
                    tracing::warn!(target: "strata::directory", %why, "cannot serve the host directory");
                    self.retry_host(cx);
                }
            }
            return;
        }
        if matches!(self.up[2].state, State::Connecting(c) if c == from) {
            tracing::info!(target: "strata::directory", reason = %f.reason, "the LAN directory cannot be reached: trying again");
            return self.retry_lan(cx);
        }
        let failed = self.sessions.iter().find_map(|(node, s)| match s {
            Session::Connecting { connect, endpoint } if *connect == from => {
                Some((*node, endpoint.clone()))
            }
            _ => None,
        });
        if let Some((node, endpoint)) = failed {
            if Self::reachable(node) {
                // The other process linked to this one meanwhile (its link won the race).
                self.sessions.remove(&node);
                let actions = self.candidates.reached(node, &Self::reachable);
                self.apply(cx, actions);
                return;
            }
            tracing::info!(target: "strata::directory", event = "session", node = format_args!("{node:016x}"), reason = %f.reason, "session failed");
            self.sessions.insert(
                node,
                Session::Failed {
                    endpoint,
                    at: std::time::Instant::now(),
                },
            );
            let wait = Backoff::constant(Duration::from_millis(200))
                .jitter(0.5)
                .failed()
                .unwrap_or(Duration::from_millis(200));
            cx.start(RetrySessions, wait);
        }
    }

    fn on_retry_sessions(&mut self, cx: &mut Context<Self>, _: RetrySessions) {
        let failed: Vec<u64> = self
            .sessions
            .iter()
            .filter(|(_, s)| matches!(s, Session::Failed { .. }))
            .map(|(n, _)| *n)
            .collect();
        for node in failed {
            self.sessions.remove(&node);
        }
        self.open_sessions(cx);
    }

    /// Another process linked to this one (for names it found here): what waited for a
    /// session with it can be listed now.
    fn on_accepted(&mut self, cx: &mut Context<Self>, _: Accepted) {
        let peer = cx.sender();
        let actions = self.candidates.reached(peer.node(), &Self::reachable);
        self.apply(cx, actions);
    }

    fn on_joined(&mut self, cx: &mut Context<Self>, j: Joined) {
        let sender = cx.sender();
        if let Some(i) = Self::slot(j.level) {
            if self.up[i].directory() == Some(sender) {
                self.joined(cx, i);
            }
        }
    }

    fn on_lan_patience(&mut self, cx: &mut Context<Self>, _: LanPatience) {
        if self.up[2].joined().is_none() {
            self.stop_waiting_for_lan(cx);
        }
    }

    fn on_retry_lan(&mut self, cx: &mut Context<Self>, _: RetryLan) {
        if matches!(self.up[2].state, State::Waiting) {
            self.connect(cx, Scope::Lan);
        }
    }

    fn on_retry_host(&mut self, cx: &mut Context<Self>, _: RetryHost) {
        if matches!(self.up[1].state, State::Waiting) {
            self.connect(cx, Scope::Host);
        }
    }

    fn on_retry_group(&mut self, cx: &mut Context<Self>, _: RetryGroup) {
        if matches!(self.up[0].state, State::Waiting) {
            self.connect(cx, Scope::Group);
        }
    }

    fn on_settle(&mut self, cx: &mut Context<Self>, _: Settle) {
        for (level, epoch) in std::mem::take(&mut self.settling) {
            // Joined again since? Then that join's own settling prunes.
            if Self::slot(level).is_some_and(|i| self.up[i].epoch == epoch) {
                let actions = self.candidates.prune(level, &Self::reachable);
                self.apply(cx, actions);
            }
        }
    }

    /// Links (to the host directory, sessions) end as `Ended` of what was watched.
    fn on_closed(&mut self, _cx: &mut Context<Self>, _: Closed) {}

    fn on_returned(&mut self, _cx: &mut Context<Self>, _: Returned) {}

    fn on_query(&mut self, _cx: &mut Context<Self>, _: Query) -> DirectoryView {
        self.view()
    }

    /// The process's figures, for `strata network` and `strata status -l`: gathered on a
    /// task (the objects it asks include this one), answered from this directory.
    fn on_figures(&mut self, cx: &mut Context<Self>, _: crate::metrics::FiguresQuery) {
        let (postbox, to) = (cx.postbox(), cx.sender());
        crate::runtime::handle().spawn(async move {
            postbox.send(to, crate::metrics::gather().await);
        });
    }

    fn on_ended(&mut self, cx: &mut Context<Self>, e: Ended) {
        let gone = e.address;
        if let Some(i) = self.up.iter().position(|u| u.directory() == Some(gone)) {
            self.watched.remove(&gone);
            self.lost_upstream(cx, i);
            return;
        }
        if let Some(Session::Up { peer, .. }) = self.sessions.get(&gone.node()) {
            if *peer == gone {
                self.sessions.remove(&gone.node());
                tracing::info!(target: "strata::directory", event = "session", node = format_args!("{:016x}", gone.node()), "session closed");
                let actions = self.candidates.lost(gone.node(), &Self::reachable);
                self.apply(cx, actions);
                // What it listed may be had from another process, over a new session.
                self.open_sessions(cx);
                return;
            }
        }
        if self.watched.remove(&gone) && gone.is_local() {
            self.clear_subscribed(cx, gone);
            let _ = self.clear_published(cx, gone);
        }
    }
}
