//! The runtime: this process's node, its object table and message delivery.
//!
//! Every object has a mailbox registered in the node's *object table* under its object
//! number. Sending looks the receiver up and pushes onto its mailbox — or, when the
//! receiver is a machine that is idle with nothing queued, runs its handler at once on the
//! sending thread (a *direct run*: the
//! mailbox lets idle machines be run by their senders); nothing is serialized inside a
//! process. An address of another node is handed to the router the networking
//! layer installs, so the sending API never changes when objects move out of the process.
//!
//! Async objects and machines run on one shared multi-threaded tokio runtime (one worker
//! per core); function objects and threaded machines get OS threads of their own. Timers,
//! signals and I/O use the same shared runtime.
//!
//! Delivery never fails silently: a refused send returns a [`SendError`], which
//! [`Postbox::send`](crate::Postbox::send) turns into an `Overloaded` notice for the sender, and
//! every refusal is counted in [`stats`] and logged.

pub(crate) mod cork;
mod envelope;
pub(crate) mod mailbox;

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::{Arc, OnceLock};

use parking_lot::RwLock;

pub(crate) use envelope::Charge;
pub use envelope::Envelope;
use mailbox::{Granted, Mailbox, Refused};

use crate::address::{local_node, Address, BuildAddressHasher};
use crate::message::{AnyMessage, Message};
use crate::standard::{Ended, Returned, Start, Stop};

/// The default mailbox capacity: ordinary messages queued before sends are refused.
pub const DEFAULT_CAPACITY: usize = 65_536;

/// Why a message could not be delivered.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SendError {
    /// The receiver's mailbox is full; the message was not queued.
    #[error("mailbox of {to} is full ({capacity} messages); `{type_name}` refused")]
    Full {
        /// The receiver.
        to: Address,
        /// The refused message's type.
        type_name: &'static str,
        /// The receiver's mailbox capacity.
        capacity: usize,
    },
    /// No object has this address (it ended, or never existed).
    #[error("no object at {to}; `{type_name}` not delivered")]
    NoSuchObject {
        /// The address.
        to: Address,
        /// The undelivered message's type.
        type_name: &'static str,
    },
    /// The address stands in for another that stands in for another ... more than
    /// eight times over (most likely a loop of stand-ins).
    #[error("stand-ins from {to} go round in a loop; `{type_name}` not delivered")]
    StandInLoop {
        /// The address first sent to.
        to: Address,
        /// The undelivered message's type.
        type_name: &'static str,
    },
    /// The runtime's own messages (`Returned`, `Start`; `Stop` from any peer but the
    /// parent) came from another process, which may not send them: refused, counted and
    /// logged.
    #[error("`{type_name}` for {to} came from another process: the runtime's own messages are not accepted from links")]
    NotAccepted {
        /// The receiver it claimed.
        to: Address,
        /// The refused message's type.
        type_name: &'static str,
    },
    /// The address is on another node and no route leads there.
    #[error("no route to {to}; `{type_name}` not delivered")]
    NoRoute {
        /// The address.
        to: Address,
        /// The undelivered message's type.
        type_name: &'static str,
    },
}

/// How a delivery treats the receiver's mailbox.
///
/// The rule is decided in one place, [`Delivery::of`]: the runtime's own messages that an
/// object must never miss — `Stop` and `Returned` — are *control* deliveries; everything
/// else a program sends is *ordinary*. The runtime also delivers its timers and notices
/// (`Overloaded` notices, a link's `Accepted`/`Connected`/`Closed`, `Listening`) as
/// control, through [`Postbox::notify`](crate::object::Postbox::notify).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Delivery {
    /// Counts against the receiver's capacity (refused when its mailbox is full) and goes
    /// on to the object a stand-in stands for (see [`Core::stand_in_for`](crate::Core::stand_in_for)).
    Ordinary,
    /// Always queued, never refused for capacity, and kept by a stand-in for itself: so
    /// shutdown and bookkeeping can never be lost to a full queue.
    Control,
}

impl Delivery {
    /// The delivery of a message of type `T` (decided at compile time).
    #[inline]
    pub fn of_type<T: Message>() -> Self {
        Self::of_id(std::any::TypeId::of::<T>())
    }

    /// The delivery of `message`, whatever its type.
    #[inline]
    pub fn of(message: &AnyMessage) -> Self {
        // One (virtual) type-id read for both comparisons.
        Self::of_id(message.type_id())
    }

    /// The rule itself: `Stop` and `Returned` are control, everything else ordinary.
    #[inline]
    fn of_id(id: std::any::TypeId) -> Self {
        if id == std::any::TypeId::of::<Stop>() || id == std::any::TypeId::of::<Returned>() {
            Delivery::Control
        } else {
            Delivery::Ordinary
        }
    }
}

/// How many stand-ins one delivery may pass through before it is refused as a loop.
pub(crate) const MAX_STAND_IN_HOPS: usize = 8;

/// Carries envelopes addressed to other nodes; installed by the networking layer.
pub(crate) trait Router: Send + Sync + 'static {
    /// Delivers (or queues) an envelope whose receiver is not on this node.
    fn route(&self, envelope: Envelope) -> Result<(), SendError>;

    /// Notes that `watcher` (an object of this node) is told with [`Ended`] when the
    /// route that leads to `target`'s node now closes; false when no route leads there
    /// (the caller tells the watcher at once).
    fn watch(&self, target: Address, watcher: Address) -> bool;
}

/// Counters of notable runtime events (cheap: none is touched on the ordinary send path);
/// read through [`stats`].
#[derive(Debug, Default)]
pub(crate) struct Stats {
    created: AtomicU64,
    ended: AtomicU64,
    refused_full: AtomicU64,
    undeliverable: AtomicU64,
    discarded: AtomicU64,
    expired: AtomicU64,
    faulted: AtomicU64,
    refused_inbound: AtomicU64,
}

/// A snapshot of the runtime's counters: see [`stats`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct StatsSnapshot {
    /// Objects created.
    pub created: u64,
    /// Objects that ended.
    pub ended: u64,
    /// Sends refused because the receiver's mailbox was full.
    pub refused_full: u64,
    /// Sends to an address with no object (or no route).
    pub undeliverable: u64,
    /// Messages still unread when their receiver ended (their senders were answered
    /// with a fault, unless the message was one).
    pub discarded: u64,
    /// Messages taken after their deadline (answered `TimedOut` instead of handled).
    pub expired: u64,
    /// Objects that ended by a panic.
    pub faulted: u64,
    /// Messages from other processes refused because they may not come from there.
    pub refused_inbound: u64,
}

impl Stats {
    pub(crate) fn created(&self) {
        self.created.fetch_add(1, Relaxed);
    }
    pub(crate) fn ended(&self) {
        self.ended.fetch_add(1, Relaxed);
    }
    pub(crate) fn refused_full(&self) {
        self.refused_full.fetch_add(1, Relaxed);
    }
    pub(crate) fn undeliverable(&self) {
        self.undeliverable.fetch_add(1, Relaxed);
    }
    pub(crate) fn discarded(&self, n: u64) {
        self.discarded.fetch_add(n, Relaxed);
    }
    pub(crate) fn expired(&self, n: u64) {
        self.expired.fetch_add(n, Relaxed);
    }
    pub(crate) fn faulted(&self) {
        self.faulted.fetch_add(1, Relaxed);
    }
    pub(crate) fn refused_inbound(&self) {
        self.refused_inbound.fetch_add(1, Relaxed);
    }
    /// Reads every counter.
    pub(crate) fn snapshot(&self) -> StatsSnapshot {
        StatsSnapshot {
            created: self.created.load(Relaxed),
            ended: self.ended.load(Relaxed),
            refused_full: self.refused_full.load(Relaxed),
            undeliverable: self.undeliverable.load(Relaxed),
            discarded: self.discarded.load(Relaxed),
            expired: self.expired.load(Relaxed),
            faulted: self.faulted.load(Relaxed),
            refused_inbound: self.refused_inbound.load(Relaxed),
        }
    }
}

type Shard = RwLock<HashMap<u64, Arc<Mailbox>, BuildAddressHasher>>;
const SHARDS: usize = 64;

/// The object table: object number to mailbox, sharded to keep senders apart.
struct Table {
    shards: Box<[Shard]>,
}

impl Table {
    fn new() -> Self {
        Table {
            shards: (0..SHARDS).map(|_| Shard::default()).collect(),
        }
    }
    fn shard(&self, id: u64) -> &Shard {
        &self.shards[(id as usize) & (SHARDS - 1)]
    }
    fn insert(&self, id: u64, mailbox: Arc<Mailbox>) {
        self.shard(id).write().insert(id, mailbox);
    }
    fn remove(&self, id: u64) -> Option<Arc<Mailbox>> {
        self.shard(id).write().remove(&id)
    }
    /// Offers an envelope to the object's mailbox (the shard's lock is released before a
    /// granted run happens).
    fn offer(
        &self,
        id: u64,
        envelope: Envelope,
        delivery: Delivery,
    ) -> Result<Option<Granted>, Refused> {
        match self.shard(id).read().get(&id) {
            Some(mb) => mb.offer(envelope, delivery),
            None => Err(Refused::Closed(envelope)),
        }
    }
    fn contains(&self, id: u64) -> bool {
        self.shard(id).read().contains_key(&id)
    }
    fn ids(&self) -> Vec<u64> {
        let mut ids = Vec::new();
        for s in self.shards.iter() {
            ids.extend(s.read().keys().copied());
        }
        ids
    }
}

/// Prepares the OS thread of a function object or threaded machine: handlers of idle
/// machines it sends to may run on it directly, inside the shared runtime's context (so
/// they can use tokio as they would on the runtime). Keep the guard for the thread's life.
pub(crate) fn enter_object_thread() -> tokio::runtime::EnterGuard<'static> {
    mailbox::allow_direct_runs();
    node().handle().enter()
}

/// Object numbers are not sequential: the n-th object made gets a keyed permutation of n,
/// with keys drawn from the OS's random source once per process, so numbers never repeat
/// (it is a bijection) and cannot be guessed by counting. Not a secret: what a peer may
/// reach is decided by what it was given (the links' capabilities), this is defence in
/// depth against guessing.
struct ObjectIds {
    keys: [u64; 2],
}

impl ObjectIds {
    fn new() -> Self {
        use std::hash::{BuildHasher, Hasher};
        let draw = |salt: u64| {
            let mut h = std::collections::hash_map::RandomState::new().build_hasher();
            h.write_u64(salt);
            h.finish()
        };
        ObjectIds {
            keys: [draw(1), draw(2)],
        }
    }

    /// The object number of the `n`-th object (each step is invertible).
    fn number(&self, n: u64) -> u64 {
        let mut x = n ^ self.keys[0];
        x = x.wrapping_mul(0x9E37_79B9_7F4A_7C15);
        x ^= x >> 29;
        x = x.wrapping_mul(0xBF58_476D_1CE4_E5B9);
        x ^= x >> 32;
        x ^ self.keys[1]
    }
}

/// This process's node: its object table, counters and shared async runtime.
pub(crate) struct Node {
    table: Table,
    next_object: AtomicU64,
    /// Turns the sequence of objects made into object numbers (see [`ObjectIds`]).
    ids: ObjectIds,
    runtime: tokio::runtime::Runtime,
    stats: Stats,
    router: RwLock<Option<Arc<dyn Router>>>,
}

pub(crate) fn node() -> &'static Node {
    static NODE: OnceLock<Node> = OnceLock::new();
    NODE.get_or_init(|| {
        let workers = std::thread::available_parallelism()
            .map(|n| n.get())
            .unwrap_or(2)
            .max(2);
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(workers)
            .thread_name("strata-rt")
            .on_thread_start(mailbox::allow_direct_runs)
            .enable_all()
            .build()
            .expect("the strata runtime starts");
        Node {
            table: Table::new(),
            next_object: AtomicU64::new(1),
            ids: ObjectIds::new(),
            runtime,
            stats: Stats::default(),
            router: RwLock::new(None),
        }
    })
}

impl Node {
    /// Allocates an address and registers a mailbox for it.
    pub(crate) fn register(&self, capacity: usize) -> (Address, Arc<Mailbox>) {
        let id = loop {
            let id = self.ids.number(self.next_object.fetch_add(1, Relaxed));
            if id != 0 {
                break id;
            }
        };
        let mailbox = Arc::new(Mailbox::new(capacity));
        self.table.insert(id, mailbox.clone());
        self.stats.created();
        (Address::from_parts(local_node(), id), mailbox)
    }

    /// Removes an address from the table; later sends to it are undeliverable.
    pub(crate) fn unregister(&self, address: Address) {
        if self.table.remove(address.object()).is_some() {
            self.stats.ended();
        }
    }

    /// True while the object at `object` (a number of this node) lives.
    pub(crate) fn is_live(&self, object: u64) -> bool {
        self.table.contains(object)
    }

    pub(crate) fn handle(&self) -> &tokio::runtime::Handle {
        self.runtime.handle()
    }

    pub(crate) fn stats(&self) -> &Stats {
        &self.stats
    }

    /// Delivers an envelope: to its object's mailbox (or straight into an idle
    /// machine's handler), through any stand-ins, or to the router for other nodes.
    pub(crate) fn deliver(
        &self,
        mut envelope: Envelope,
        delivery: Delivery,
    ) -> Result<(), SendError> {
        let first = envelope.to;
        for _ in 0..=MAX_STAND_IN_HOPS {
            let to = envelope.to;
            if to.node() != local_node() {
                return self.route(envelope);
            }
            match self.table.offer(to.object(), envelope, delivery) {
                Ok(None) => return Ok(()),
                Ok(Some(granted)) => {
                    granted.run();
                    return Ok(());
                }
                Err(Refused::Closed(e)) => return Err(self.undeliverable(&e)),
                Err(Refused::Forward(mut e, next)) => {
                    e.to = next;
                    envelope = e;
                }
                Err(Refused::Full(e)) => {
                    self.stats.refused_full();
                    let capacity = self
                        .table
                        .shard(to.object())
                        .read()
                        .get(&to.object())
                        .map(|m| m.capacity())
                        .unwrap_or(0);
                    return Err(SendError::Full {
                        to,
                        type_name: e.type_name(),
                        capacity,
                    });
                }
            }
        }
        self.stats.undeliverable();
        tracing::warn!(target: "strata::send", to = %first, message = envelope.type_name(), "stand-ins go round in a loop");
        Err(SendError::StandInLoop {
            to: first,
            type_name: envelope.type_name(),
        })
    }

    /// Notes that `watcher` is told with [`Ended`] when `target` ends (an object of this
    /// node) or when the link that leads to `target`'s node now closes (another node);
    /// false when that has happened already: the object has ended or never was, or no
    /// route leads to the node (the caller tells the watcher at once).
    pub(crate) fn watch(&self, target: Address, watcher: Address) -> bool {
        if target.is_local() {
            let id = target.object();
            // The shard's lock is released before the mailbox's is taken (senders take
            // them in the other order). A mailbox closed meanwhile refuses the watch; one
            // removed from the table before the look-up is not found: either way the
            // watcher is told at once.
            let mailbox = self.table.shard(id).read().get(&id).cloned();
            return mailbox.is_some_and(|m| m.watch(watcher));
        }
        if target.is_null() {
            return false;
        }
        let router = self.router.read().clone();
        router.is_some_and(|r| r.watch(target, watcher))
    }

    /// Hands an envelope for another node to the router.
    fn route(&self, envelope: Envelope) -> Result<(), SendError> {
        if envelope.to.is_null() {
            return Err(self.undeliverable(&envelope));
        }
        let router = self.router.read().clone();
        match router {
            Some(r) => r.route(envelope),
            None => {
                self.stats.undeliverable();
                Err(SendError::NoRoute {
                    to: envelope.to,
                    type_name: envelope.type_name(),
                })
            }
        }
    }

    /// The stand-in `address` forwards to, if any.
    pub(crate) fn forwarding_of(&self, address: Address) -> Option<Address> {
        if !address.is_local() {
            return None;
        }
        let id = address.object();
        self.table
            .shard(id)
            .read()
            .get(&id)
            .and_then(|m| m.forwarding())
    }

    fn undeliverable(&self, e: &Envelope) -> SendError {
        self.stats.undeliverable();
        tracing::debug!(target: "strata::send", to = %e.to, from = %e.from,
            message = e.type_name(), "undeliverable: no such object");
        SendError::NoSuchObject {
            to: e.to,
            type_name: e.type_name(),
        }
    }

    /// Every live local address.
    pub(crate) fn addresses(&self) -> Vec<Address> {
        self.table
            .ids()
            .into_iter()
            .map(|id| Address::from_parts(local_node(), id))
            .collect()
    }
}

/// Delivers an envelope that arrived from another node (a link's reader calls this for
/// every message a peer sends, once the link has checked that the peer may send to the
/// receiver).
///
/// `Returned` and `Start` are only ever made by the runtime for objects of this process:
/// one that arrives from another process is forged (a `Returned` would make a callback
/// answer with the sender's value), so it is refused with [`SendError::NotAccepted`] and
/// counted (`refused_inbound`). So is `Stop`, unless `may_stop`: only a link whose peer is
/// this process's parent may stop what it reaches (a peer may not end objects it was
/// merely given the address of).
#[inline]
pub(crate) fn arrive(envelope: Envelope, may_stop: bool) -> Result<(), SendError> {
    let id = envelope.message.type_id();
    if id == std::any::TypeId::of::<Returned>()
        || id == std::any::TypeId::of::<Start>()
        || (!may_stop && id == std::any::TypeId::of::<Stop>())
    {
        node().stats.refused_inbound();
        return Err(SendError::NotAccepted {
            to: envelope.to,
            type_name: envelope.type_name(),
        });
    }
    let delivery = Delivery::of_id(id);
    if delivery == Delivery::Ordinary {
        requests::arrived(id, envelope.to);
    }
    node().deliver(envelope, delivery)
}

/// Requests this process served, counted only when a limit is set: what a process that
/// retires after N requests (`process::recycle`) watches.
pub(crate) mod requests {
    use std::sync::atomic::{AtomicU64, Ordering};
    use std::sync::OnceLock;

    /// 0: not counting.
    static LIMIT: AtomicU64 = AtomicU64::new(0);
    static COUNT: AtomicU64 = AtomicU64::new(0);
    static REACHED: OnceLock<tokio::sync::Notify> = OnceLock::new();

    fn reached() -> &'static tokio::sync::Notify {
        REACHED.get_or_init(tokio::sync::Notify::new)
    }

    /// An ordinary message arrived from another process for `to`: one more request,
    /// unless it is a heartbeat (`Ping`) or for the process's directory (what other
    /// directories and `strata network` tell it is not work).
    #[inline]
    pub(crate) fn arrived(id: std::any::TypeId, to: crate::Address) {
        let limit = LIMIT.load(Ordering::Relaxed);
        if limit == 0
            || id == std::any::TypeId::of::<crate::standard::Ping>()
            || crate::directory::is_process_directory(to)
        {
            return;
        }
        if COUNT.fetch_add(1, Ordering::Relaxed) + 1 == limit {
            reached().notify_one();
        }
    }

    /// Starts counting; [`wait_for_limit`] resolves at the `limit`-th request.
    pub(crate) fn set_limit(limit: u64) {
        LIMIT.store(limit.max(1), Ordering::Relaxed);
    }

    /// Resolves once the limit set by [`set_limit`] is reached.
    pub(crate) async fn wait_for_limit() {
        if COUNT.load(Ordering::Relaxed) >= LIMIT.load(Ordering::Relaxed) {
            return;
        }
        reached().notified().await;
    }

    /// Requests counted so far.
    pub(crate) fn count() -> u64 {
        COUNT.load(Ordering::Relaxed)
    }
}

/// Tells `watcher` that `target` ended (see [`Node::watch`]): an [`Ended`] from
/// `target`'s address, delivered as a notice (never refused for a full mailbox, kept by a
/// stand-in for itself).
pub(crate) fn tell_ended(target: Address, watcher: Address) {
    let ended = AnyMessage::new(Ended { address: target });
    let _ = node().deliver(Envelope::new(target, watcher, ended), Delivery::Control);
}

pub(crate) fn answer_for(receiver: Address, sender: Address, message: AnyMessage) {
    let _ = node().deliver(Envelope::new(receiver, sender, message), Delivery::Control);
}

/// Installs the router for addresses of other nodes (the networking layer does this).
pub(crate) fn set_router(router: Arc<dyn Router>) {
    *node().router.write() = Some(router);
}

/// Counters of notable runtime events in this process.
pub fn stats() -> StatsSnapshot {
    node().stats.snapshot()
}

/// The number of live objects (and attached threads) in this process.
pub fn live_objects() -> usize {
    node().table.ids().len()
}

/// A handle to the shared async runtime, for I/O and tasks that work beside objects.
pub fn handle() -> tokio::runtime::Handle {
    node().handle().clone()
}
