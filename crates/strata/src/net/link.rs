//! Links: one byte stream between two nodes, carrying frames both ways.
//!
//! A link is an async object ([`run`]). It opens with the handshake (`handshake.rs`, fed
//! from the stream under a time limit by [`drive`]), then runs
//! - a reader (this file): frames in, delivered locally through the runtime, or relayed
//!   to a third node without being decoded;
//! - an outbox (`outbox.rs`): filled by the router (`routes.rs`) and written by the
//!   sending thread itself whenever the socket is free, so a message leaves without waking
//!   any task; a writer task finishes what a full socket refused;
//! - optionally, keep-alive (this file).
//!
//! The streams are in `io.rs` (Unix-socket links are watched for reading only), Noise
//! sealing and opening in `noise.rs`, the wire formats in `frame.rs`.
//!
//! Everything in the handshake runs under a time limit. A malformed, oversized or unknown
//! frame closes that one link with a reason (sent to the peer in a CLOSE frame when
//! possible, logged, and given to the owner as [`Closed`]); other links and the process
//! carry on.

use std::collections::HashSet;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use parking_lot::Mutex;
use serde::{Deserialize, Serialize};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};

use super::error::{peer_text, LinkError};
use super::frame::{self, Frame, FrameReader};
use super::grants::is_public;
use super::handshake::{Established, Handshake, Next, Role};
use super::io::{LinkIo, LinkStream};
use super::keys::{PublicKey, StaticKey};
use super::noise::Opener;
use super::outbox::{writer, LinkTx, Outgoing, WriteEnd};
use super::routes::{routes, Refused};
use crate::address::{local_node, nodes_seen_while, BuildAddressHasher};
use crate::message::AnyMessage;
use crate::object::AsyncContext;
use crate::runtime::{self, node, Charge, Delivery, Envelope, SendError};
use crate::standard::{Faulted, Overloaded, Stop};
use crate::{Address, Message};

/// The link is up: sent to the listening object for each accepted connection. The
/// envelope's sender is the object at the other end that asked to connect: reply to it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Message)]
pub struct Accepted {
    /// The peer's socket address.
    pub remote: String,
    /// What the peer proved in the handshake, as a key id (see [`keys`](super::keys)):
    /// - `Some("x25519:…")`: the peer's static key (16 hex digits, the start of its public
    ///   key), when the link uses static keys ([`identity`](super::Listen::identity)) — a
    ///   key on this end's allow-list, or any key when the list is empty;
    /// - `Some("psk:…")`: the id of the pre-shared key both ends hold, when that is all
    ///   the link uses;
    /// - `None`: nothing (plaintext, or encrypted without any key).
    pub peer_key: Option<String>,
}

/// The link is up: sent to the connecting object. The envelope's sender is the object at
/// the other end that listens: send to it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Message)]
pub struct Connected {
    /// The peer's socket address.
    pub remote: String,
    /// What the peer proved in the handshake, as a key id: the same as
    /// [`Accepted::peer_key`], seen from the connecting end.
    pub peer_key: Option<String>,
}

/// A link ended. The envelope's sender is the object at the other end.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Message)]
pub struct Closed {
    /// Why.
    pub reason: CloseReason,
}

/// Why a link ended.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum CloseReason {
    /// This end closed it (the link object was stopped).
    Ended,
    /// The peer closed it, saying why.
    PeerEnded(String),
    /// Keep-alive heard nothing from the peer in time.
    WentStale,
    /// The peer sent something that is not a valid frame.
    BadFrame(String),
    /// The connection broke (reset, or closed without a word).
    Lost(String),
    /// The peer did not read what it was sent: more bytes waited than the link's budget,
    /// or the socket took nothing for the write time-out.
    NotReading(String),
}

impl std::fmt::Display for CloseReason {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            CloseReason::Ended => f.write_str("closed by this end"),
            CloseReason::PeerEnded(r) => write!(f, "closed by the peer: {r}"),
            CloseReason::WentStale => f.write_str("went stale: nothing heard from the peer"),
            CloseReason::BadFrame(r) => write!(f, "bad frame: {r}"),
            CloseReason::Lost(r) => write!(f, "connection lost: {r}"),
            CloseReason::NotReading(r) => write!(f, "the peer is not reading: {r}"),
        }
    }
}

/// How a link behaves; shared by [`Listen`](super::Listen) and [`Connect`](super::Connect).
#[derive(Clone)]
pub struct LinkSettings {
    pub(crate) encrypted: bool,
    /// Pre-shared keys (a connecting end offers the first).
    pub(crate) keys: Vec<[u8; 32]>,
    /// This end's static key: the link uses Noise `XX` (`XXpsk3` with a pre-shared key).
    pub(crate) identity: Option<StaticKey>,
    /// The peers' static keys this end allows; empty allows any.
    pub(crate) allowed_peers: Vec<PublicKey>,
    /// Whether a TCP link off loopback may leave its peer unauthenticated.
    pub(crate) allow_unauthenticated: bool,
    pub(crate) max_frame: usize,
    pub(crate) keep_alive: Option<Duration>,
    /// The keep-alive interval of a link whose peer is not on this host, when
    /// `keep_alive` is not set (none: no keep-alive unless asked for).
    pub(crate) keep_alive_off_host: Option<Duration>,
    pub(crate) handshake_timeout: Duration,
    pub(crate) outbox_limit: usize,
    /// Bytes that may wait for the peer before the link closes (at least two frames).
    pub(crate) outbox_bytes: usize,
    /// Bytes of the link's messages that may wait in mailboxes before more are refused.
    pub(crate) inbound_bytes: usize,
    /// How long the socket may take nothing while bytes wait before the link closes.
    pub(crate) write_timeout: Duration,
    /// Whether messages from the peer for other nodes are relayed (along routes this end
    /// introduced).
    pub(crate) relay: bool,
    /// Whether the peer may send `Stop` to what it reaches (only a parent may).
    pub(crate) peer_may_stop: bool,
    /// Whether the owner is told of the link (Accepted/Connected, Closed). A child
    /// process's link to its parent keeps quiet: there the owner is the child's top
    /// object, for which messages simply arrive.
    pub(crate) notify_owner: bool,
    /// When set, messages from the peer's owner are delivered as sent by this address
    /// instead (a `Process` object stands for its child's top object this way).
    pub(crate) present_peer_owner_as: Option<Address>,
    /// Addresses granted to the peer from the start, besides this end's owner (see
    /// `grants.rs`; the directory's, and a parent's end may pass some to its child).
    pub(crate) grants: Vec<Address>,
    /// Whether the peer may also send to the addresses this process made public
    /// (`grants::make_public`).
    pub(crate) reach_public: bool,
    /// Whether a connecting end that finds a link to the peer's node already up uses that
    /// one (its owner hears `Connected` from the peer's owner, and the new connection
    /// closes) instead of failing with `NodeTaken`.
    pub(crate) reuse: bool,
}

impl Default for LinkSettings {
    fn default() -> Self {
        LinkSettings {
            encrypted: false,
            keys: Vec::new(),
            identity: None,
            allowed_peers: Vec::new(),
            allow_unauthenticated: false,
            max_frame: frame::DEFAULT_MAX_FRAME,
            keep_alive: None,
            keep_alive_off_host: Some(Duration::from_secs(15)),
            handshake_timeout: Duration::from_secs(5),
            outbox_limit: 65_536,
            outbox_bytes: 32 << 20,
            inbound_bytes: 64 << 20,
            write_timeout: Duration::from_secs(30),
            relay: true,
            peer_may_stop: false,
            notify_owner: true,
            present_peer_owner_as: None,
            grants: Vec::new(),
            reach_public: false,
            reuse: false,
        }
    }
}

impl std::fmt::Debug for LinkSettings {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LinkSettings")
            .field("encrypted", &self.encrypted)
            .field("keys", &self.keys.len())
            .field("identity", &self.identity.as_ref().map(|k| k.public().id()))
            .field("allowed_peers", &self.allowed_peers.len())
            .field("allow_unauthenticated", &self.allow_unauthenticated)
            .field("max_frame", &self.max_frame)
            .field("keep_alive", &self.keep_alive)
            .field("outbox_bytes", &self.outbox_bytes)
            .field("inbound_bytes", &self.inbound_bytes)
            .field("relay", &self.relay)
            .field("grants", &self.grants.len())
            .field("reach_public", &self.reach_public)
            .finish()
    }
}

/// Runs the handshake `hs` over `s`, within `timeout`.
pub(crate) async fn drive<S: AsyncRead + AsyncWrite + Unpin>(
    s: &mut S,
    mut hs: Handshake,
    timeout: Duration,
) -> Result<Established, LinkError> {
    let deadline = tokio::time::Instant::now() + timeout;
    let mut chunk = vec![0u8; 4096];
    loop {
        match hs.next() {
            Next::Write(bytes) => {
                match tokio::time::timeout_at(deadline, async {
                    s.write_all(&bytes).await?;
                    s.flush().await
                })
                .await
                {
                    Ok(Ok(())) => {}
                    Ok(Err(e)) => return Err(LinkError::WriteFailed(e.to_string())),
                    Err(_) => return Err(LinkError::TimedOut),
                }
            }
            Next::Read(wanted) => {
                if chunk.len() < wanted {
                    chunk.resize(wanted, 0);
                }
                match tokio::time::timeout_at(deadline, s.read(&mut chunk)).await {
                    Ok(Ok(0)) => return Err(LinkError::PeerClosed),
                    Ok(Ok(n)) => hs.received(&chunk[..n]),
                    Ok(Err(e)) => return Err(LinkError::ReadFailed(e.to_string())),
                    Err(_) => return Err(LinkError::TimedOut),
                }
            }
            Next::Done => return Ok(hs.established()),
            Next::Failed(e) => return Err(e),
        }
    }
}

// ---------------------------------------------------------------------------------------
// Running a link.

static NEXT_LINK: AtomicU64 = AtomicU64::new(1);

/// Messages a peer may not send that a link refuses one by one before it closes: a
/// legitimate peer never sends one (see [`Inbound`]).
const MAX_REFUSED: u32 = 16;

/// Messages of at least this many bytes are charged to the link's inbound budget. Smaller
/// ones are bounded by their mailbox's capacity (65,536 of them, 64 MiB at most by
/// default): charging every message would cost two shared atomic operations on two
/// threads for each, which is most of a small message's cost on a fast link.
const CHARGED_FROM: usize = 1024;

/// The reader's first buffer, doubled each time a read fills it, up to [`READ_MOST`]: an
/// idle link holds 4 KiB for reading, a busy one reads 64 KiB at a time.
const READ_FIRST: usize = 4 * 1024;

/// The largest the reader's buffer grows.
const READ_MOST: usize = 64 * 1024;

/// Grants the reader remembers before it starts afresh (it asks the outbox on a miss).
const GRANT_CACHE: usize = 4096;

/// What the reader checks a message from the peer against, and what it has seen.
///
/// A message is delivered only when
/// - its sender is one the peer may speak for: an object of the peer's own node, or, for
///   a frame the peer relayed (RELAY), an object of a third node that is not this one
///   and is not reached through another link;
/// - its receiver was granted to the peer (`grants.rs`): this end's owner, an address
///   granted from the start (`LinkSettings::grants`), a sender of something sent to the
///   peer, or an address inside it — or, on a link with `reach_public`, an address of this
///   node made public (`grants::make_public`). A receiver on another node is
///   relayed (when relaying is on) only when its address was granted too, so this node
///   relays only along routes it introduced, at most `frame::MAX_HOPS` deep;
/// - it is not one of the runtime's own messages (`runtime::arrive`): `Returned`, `Start`,
///   and `Stop` unless the peer is this process's parent;
/// - the messages from this link still waiting in mailboxes hold less than its inbound
///   budget (else the sender is told `Overloaded`).
///
/// A message that fails one of the first three is refused without an answer (an answer
/// would tell a guesser something) and counted; [`MAX_REFUSED`] of them close the link.
/// A message to an object that has ended is undeliverable, not refused: a legitimate peer
/// can be late. A message that fails to decode (framing intact) is answered with a
/// `Faulted` and counted when the peer itself sent it; a relayed one is only answered, so
/// a third node cannot close this link.
struct Inbound {
    tx: Arc<LinkTx>,
    peer: u64,
    /// (the peer's owner, the address it is presented as).
    alias: Option<(Address, Address)>,
    relay: bool,
    /// Whether the peer may send `Stop` (it is this process's parent).
    may_stop: bool,
    /// Whether the peer may send to addresses made public (checked on a grant miss, and
    /// not cached: an address made private again is refused from then on).
    reach_public: bool,
    granted: HashSet<Address, BuildAddressHasher>,
    refused: u32,
    /// Bytes of this link's messages waiting in mailboxes, and the budget for them.
    held: Arc<AtomicUsize>,
    budget: usize,
}

/// What to do with a message from the peer that was not delivered.
enum Verdict {
    /// Delivered, or dropped without harm.
    Done,
    /// Refused: the peer may not send it.
    Refused(String),
}

impl Inbound {
    /// True when the peer may speak for `from` (see the type's doc).
    fn may_speak_for(&self, from: Address, hops: u8) -> bool {
        if hops == 0 {
            return from.node() == self.peer;
        }
        let n = from.node();
        n != 0 && n != local_node() && n != self.peer && {
            let via = routes().link_id(n);
            via.is_none() || via == Some(self.tx.id)
        }
    }

    /// True when `to` was granted to the peer.
    fn was_granted(&mut self, to: Address) -> bool {
        if self.granted.contains(&to) {
            return true;
        }
        if !self.tx.granted(to) {
            return false;
        }
        if self.granted.len() >= GRANT_CACHE {
            self.granted.clear();
        }
        self.granted.insert(to);
        true
    }

    /// Answers the sender of a message this end took but could not deliver (`to` was
    /// granted, so answering from it tells the peer nothing new).
    fn answer(&self, to: Address, from: Address, message: AnyMessage) {
        let _ = self
            .tx
            .push(Outgoing::Message(Envelope::new(to, from, message)), false);
    }

    /// Handles one MESSAGE or RELAY frame `body`, whose addresses are `p`.
    fn message(&mut self, body: &[u8], p: frame::Peek) -> Verdict {
        let frame::Peek { to, from, hops } = p;
        if !self.may_speak_for(from, hops) {
            return Verdict::Refused(format!(
                "a message from {from}, whom the peer may not speak for"
            ));
        }
        let reached = self.was_granted(to) || (self.reach_public && to.is_local() && is_public(to));
        if !reached {
            if to.is_local() && !node().is_live(to.object()) {
                node().stats().undeliverable();
                tracing::debug!(target: "strata::net", %to, "a message from the peer for an object that ended");
                return Verdict::Done;
            }
            return Verdict::Refused(format!(
                "a message for {to}, which was not given to the peer"
            ));
        }
        if !to.is_local() {
            return self.relay(body, p);
        }
        let held = self.held.load(Ordering::Relaxed);
        if held > 0 && held + body.len() > self.budget {
            node().stats().refused_full();
            self.answer(
                to,
                from,
                AnyMessage::new(Overloaded::new(format!(
                "the link's messages waiting at {to}'s node hold {held} bytes, its budget is {}",
                self.budget
            ))),
            );
            return Verdict::Done;
        }
        let mut nodes = Vec::new(); // allocates only for messages holding addresses
        let decoded = nodes_seen_while(|| frame::decode_body(body), |n| nodes.push(n));
        let (message, left) = match decoded {
            Ok(Frame::Message { message, left, .. }) => (message, left),
            Ok(_) => unreachable!("peeked as a message"),
            Err(e) => {
                self.answer(
                    to,
                    from,
                    AnyMessage::new(Faulted::new(format!(
                        "{to} could not take the message: {e}"
                    ))),
                );
                return if hops == 0 {
                    Verdict::Refused(e.to_string())
                } else {
                    Verdict::Done
                };
            }
        };
        let routes = routes();
        for n in nodes {
            routes.learn(n, &self.tx);
        }
        if hops > 0 {
            routes.learn(from.node(), &self.tx);
        }
        let from = match self.alias {
            Some((peer_owner, stand_in)) if from == peer_owner => stand_in,
            _ => from,
        };
        // A message for an object that ended meanwhile is answered (its sender was given
        // the address, so nothing is told that it did not know), unless it is a fault.
        let answerable = !message.is_fault();
        let mut envelope = Envelope::new(from, to, message)
            .with_deadline(left.map(|l| std::time::Instant::now() + l));
        if body.len() >= CHARGED_FROM {
            envelope.charge = Some(Charge::new(&self.held, body.len()));
        }
        match runtime::arrive(envelope, self.may_stop) {
            Err(e @ SendError::Full { .. }) => {
                self.answer(to, from, AnyMessage::new(Overloaded::new(e.to_string())));
                Verdict::Done
            }
            Err(e @ SendError::NotAccepted { .. }) => Verdict::Refused(e.to_string()),
            Err(SendError::NoSuchObject { to, type_name }) if answerable => {
                self.answer(
                    to,
                    from,
                    AnyMessage::new(Faulted::new(format!(
                        "{to} has ended: `{type_name}` not delivered"
                    ))),
                );
                Verdict::Done
            }
            _ => Verdict::Done,
        }
    }

    /// Passes a message granted to the peer for another node on to that node's route.
    fn relay(&mut self, body: &[u8], p: frame::Peek) -> Verdict {
        if !self.relay {
            return Verdict::Refused(format!(
                "a message for {}, to relay, and relaying is off",
                p.to
            ));
        }
        let Some(bytes) = frame::relayed(body) else {
            return Verdict::Refused(format!(
                "a message for {} relayed more than {} times",
                p.to,
                frame::MAX_HOPS
            ));
        };
        let next = match routes().get(p.to.node()) {
            Some(next) if next.id != self.tx.id => next,
            _ => {
                node().stats().undeliverable();
                tracing::debug!(target: "strata::net", to = %p.to, "no onward route for a relayed message");
                return Verdict::Done;
            }
        };
        if bytes.len() - 4 > next.max_frame {
            self.answer(
                p.to,
                p.from,
                AnyMessage::new(Faulted::new(format!(
                    "a message of {} bytes for {}, over the next link's maximum frame of {}",
                    bytes.len() - 4,
                    p.to,
                    next.max_frame
                ))),
            );
            return Verdict::Done;
        }
        if next.push(Outgoing::Relay(bytes, p.from), true).is_err() {
            self.answer(
                p.to,
                p.from,
                AnyMessage::new(Overloaded::new(format!(
                    "the link towards {} is full",
                    p.to
                ))),
            );
        }
        Verdict::Done
    }
}

async fn reader<S: LinkIo>(
    stream: Arc<S>,
    mut inbound: Inbound,
    mut frames: FrameReader,
    mut opener: Opener,
    heard: Arc<Mutex<Instant>>,
) -> CloseReason {
    // Grown as reads fill it: an idle link holds little.
    let mut chunk = vec![0u8; READ_FIRST];
    loop {
        // Frames already buffered (some may have arrived with the HELLO).
        loop {
            let body = match frames.next_body() {
                Ok(Some(body)) => body,
                Ok(None) => break,
                Err(e) => return CloseReason::BadFrame(e.to_string()),
            };
            if let Some(p) = frame::peek(body) {
                if let Verdict::Refused(why) = inbound.message(body, p) {
                    let why = peer_text(&why);
                    inbound.refused += 1;
                    node().stats().refused_inbound();
                    tracing::warn!(target: "strata::net", peer = %format_args!("{:04x}", inbound.peer & 0xffff),
                        refused = inbound.refused, "refused from the peer: {why}");
                    if inbound.refused >= MAX_REFUSED {
                        return CloseReason::BadFrame(format!(
                            "{} messages the peer may not send (the last: {why})",
                            inbound.refused
                        ));
                    }
                }
                continue;
            }
            match frame::decode_body(body) {
                Ok(Frame::Ping) => {
                    let _ = inbound.tx.push(Outgoing::Control(Frame::Pong), false);
                }
                Ok(Frame::Pong) => {}
                Ok(Frame::Close(reason)) => return CloseReason::PeerEnded(peer_text(&reason)),
                Ok(Frame::Hello { .. }) => return CloseReason::BadFrame("a second HELLO".into()),
                Ok(Frame::Message { .. }) => unreachable!("messages are peeked"),
                Err(e) => return CloseReason::BadFrame(e.to_string()),
            }
        }
        let n = match stream.read_some(&mut chunk).await {
            Ok(0) => {
                return CloseReason::Lost("the peer closed the connection without a word".into())
            }
            Ok(n) if n == chunk.len() && n < READ_MOST => {
                chunk.resize(2 * n, 0);
                n
            }
            Ok(n) => n,
            Err(e) => return CloseReason::Lost(e.to_string()),
        };
        *heard.lock() = Instant::now();
        match opener.open(&chunk[..n]) {
            Ok(plain) => frames.extend(plain),
            Err(e) => return CloseReason::BadFrame(e.to_string()),
        }
    }
}

/// Runs a link over `stream` until it closes; returns the value the link object ends with.
///
/// Unless `settings.notify_owner` is off, `owner` is told of the link (Accepted or
/// Connected, then Closed), as a notice from the object at the other end; the handshake's
/// failure is returned as `Err` for the caller to report.
///
/// `handshaking`, when given, is held until the handshake ends (a listener's cap on
/// handshakes in progress).
pub(crate) async fn run<S>(
    cx: &mut AsyncContext,
    mut stream: S,
    role: Role,
    owner: Address,
    remote: String,
    settings: LinkSettings,
    handshaking: Option<tokio::sync::OwnedSemaphorePermit>,
) -> Result<Closed, LinkError>
where
    S: LinkStream,
{
    let hs = Handshake::new(role, &settings, local_node(), owner);
    let Established {
        peer,
        frames,
        opener,
        peer_static,
        peer_key,
    } = drive(&mut stream, hs, settings.handshake_timeout).await?;
    drop(handshaking);
    let stream = Arc::new(
        stream
            .into_link_io()
            .map_err(|e| LinkError::CannotWatch(e.to_string()))?,
    );
    let tx = Arc::new(LinkTx::new(
        NEXT_LINK.fetch_add(1, Ordering::Relaxed),
        stream.clone(),
        opener.cipher.clone(),
        &settings,
        owner,
    ));
    let routes = routes();
    let refused = if peer.owner.node() != peer.node {
        Some(LinkError::OwnerElsewhere(peer.owner))
    } else {
        match routes.add_proven(peer.node, peer_static, &tx) {
            Ok(()) => None,
            Err(Refused::Taken) => Some(LinkError::NodeTaken(peer.node)),
            Err(Refused::BoundToAnotherKey) => Some(LinkError::NodeKeyMismatch(peer.node)),
        }
    };
    if let (Some(LinkError::NodeTaken(_)), Role::Connecting, true) =
        (&refused, role, settings.reuse)
    {
        // The two nodes are joined already: the owner uses that link.
        tracing::debug!(target: "strata::net", remote = %remote, "a link to the peer is up already: reusing it");
        if settings.notify_owner {
            let up = Connected {
                remote: remote.clone(),
                peer_key,
            };
            cx.post(owner, AnyMessage::new(up), peer.owner, Delivery::Control);
        }
        tx.close(Some(Frame::Close(
            "a link between the two is up already".into(),
        )));
        let _ = tokio::time::timeout(Duration::from_secs(1), writer(tx.clone())).await;
        return Ok(Closed {
            reason: CloseReason::Ended,
        });
    }
    if let Some(refused) = refused {
        // Tell the peer why, then end: a live link keeps the node's route.
        if matches!(refused, LinkError::NodeTaken(_)) {
            // Also what a peer reusing the link it has sees: not alarming.
            tracing::info!(target: "strata::net", remote = %remote, reason = %refused, "link refused");
        } else {
            tracing::warn!(target: "strata::net", remote = %remote, reason = %refused, "link refused");
        }
        let write_task = tokio::spawn(writer(tx.clone()));
        tx.close(Some(Frame::Close(refused.to_string())));
        let _ = tokio::time::timeout(Duration::from_secs(1), write_task).await;
        return Err(refused);
    }
    tracing::info!(target: "strata::net", remote = %remote, peer = %format_args!("{:04x}", peer.node & 0xffff),
        encrypted = settings.encrypted, peer_key = peer_key.as_deref().unwrap_or("none"), "link up");
    let up = match role {
        Role::Accepting => AnyMessage::new(Accepted {
            remote: remote.clone(),
            peer_key,
        }),
        Role::Connecting => AnyMessage::new(Connected {
            remote: remote.clone(),
            peer_key,
        }),
    };
    if settings.notify_owner {
        cx.post(owner, up, peer.owner, Delivery::Control);
    }

    if let Some(stand_in) = settings.present_peer_owner_as {
        stand_ins::note(peer.owner, stand_in);
    }
    let heard = Arc::new(Mutex::new(Instant::now()));
    let held = Arc::new(AtomicUsize::new(0));
    // Listed in the process's figures while the link is up (`crate::metrics`).
    let _figures = crate::metrics::sources::link(cx.address(), peer.node, &remote, held.clone());
    let mut write_task = tokio::spawn(writer(tx.clone()));
    let inbound = Inbound {
        tx: tx.clone(),
        peer: peer.node,
        alias: settings
            .present_peer_owner_as
            .map(|stand_in| (peer.owner, stand_in)),
        relay: settings.relay,
        may_stop: settings.peer_may_stop,
        reach_public: settings.reach_public,
        granted: HashSet::default(),
        refused: 0,
        held,
        budget: settings.inbound_bytes.max(2 * settings.max_frame),
    };
    let read_task = reader(stream, inbound, frames, opener, heard.clone());
    tokio::pin!(read_task);
    let mut rng = crate::random::Rng::seeded();
    let keep_alive = settings.keep_alive.or_else(|| {
        // Only a TCP peer off loopback is off this host: a Unix socket's peer (`unix:…`)
        // and a child process (named by its program) are not.
        let off_host = remote
            .parse::<std::net::SocketAddr>()
            .is_ok_and(|a| !a.ip().is_loopback());
        settings.keep_alive_off_host.filter(|_| off_host)
    });
    let mut next_ping = keep_alive.map(|k| tokio::time::Instant::now() + rng.jitter(k, 0.25));
    // Staleness is checked four times an interval, so a silent peer is noticed within a
    // quarter interval of the three it may take (not at the next jittered ping).
    let mut next_check = keep_alive.map(|k| tokio::time::Instant::now() + k / 4);

    let reason = loop {
        let check_at =
            next_check.unwrap_or_else(|| tokio::time::Instant::now() + Duration::from_secs(86_400));
        tokio::select! {
            r = &mut read_task => break r,
            w = &mut write_task => break match w {
                Ok(Ok(())) => CloseReason::Ended,
                Ok(Err(WriteEnd::Failed(e))) => CloseReason::Lost(e),
                Ok(Err(WriteEnd::NotReading(e))) => CloseReason::NotReading(e),
                Err(e) => CloseReason::Lost(format!("writer failed: {e}")),
            },
            e = cx.recv() => {
                if e.is::<Stop>() {
                    break CloseReason::Ended;
                }
                tracing::debug!(target: "strata::net", message = e.type_name(), "link object ignores a message sent to it");
            }
            _ = tokio::time::sleep_until(check_at), if next_check.is_some() => {
                let k = keep_alive.expect("keep-alive set");
                if heard.lock().elapsed() > k * 3 {
                    break CloseReason::WentStale;
                }
                let now = tokio::time::Instant::now();
                if next_ping.is_some_and(|at| at <= now) {
                    let _ = tx.push(Outgoing::Control(Frame::Ping), false);
                    next_ping = Some(now + rng.jitter(k, 0.25));
                }
                next_check = Some(now + k / 4);
            }
        }
    };

    routes.remove_link(tx.id);
    if settings.present_peer_owner_as.is_some() {
        stand_ins::forget(peer.owner);
    }
    // Say why to the peer when this end decided, then let the writer flush and finish.
    let tell = match &reason {
        CloseReason::Ended => Some("the link was closed".to_string()),
        CloseReason::WentStale => Some("went stale".to_string()),
        CloseReason::BadFrame(r) => Some(format!("bad frame: {r}")),
        CloseReason::NotReading(r) => Some(format!("not reading: {r}")),
        CloseReason::PeerEnded(_) | CloseReason::Lost(_) => None,
    };
    let lost = tx.close(tell.map(Frame::Close));
    if !write_task.is_finished() {
        let _ = tokio::time::timeout(Duration::from_secs(1), &mut write_task).await;
        write_task.abort();
    }
    if lost > 0 {
        node().stats().undeliverable();
        tracing::warn!(target: "strata::net", remote = %remote, messages = lost, "link closed with messages unsent");
    }
    match &reason {
        CloseReason::BadFrame(_)
        | CloseReason::WentStale
        | CloseReason::Lost(_)
        | CloseReason::NotReading(_) => {
            tracing::warn!(target: "strata::net", remote = %remote, reason = %reason, "link closed")
        }
        _ => {
            tracing::info!(target: "strata::net", remote = %remote, reason = %reason, "link closed")
        }
    }
    let closed = Closed { reason };
    if settings.notify_owner {
        let notice = AnyMessage::new(closed.clone());
        cx.post(owner, notice, peer.owner, Delivery::Control);
    }
    Ok(closed)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::net::error::Refusal;

    fn end(role: Role, encrypted: bool, keys: &[[u8; 32]], node: u64) -> Handshake {
        let settings = LinkSettings {
            encrypted,
            keys: keys.to_vec(),
            ..LinkSettings::default()
        };
        Handshake::new(role, &settings, node, Address::from_parts(node, 1))
    }

    const LIMIT: Duration = Duration::from_secs(5);

    /// A socket that takes every byte (the reader's tests look at what is delivered).
    struct Sink;

    impl crate::net::io::LinkWrite for Sink {
        fn try_write_now(&self, buf: &[u8]) -> std::io::Result<usize> {
            Ok(buf.len())
        }
        fn writable(&self) -> crate::net::io::WritableWait<'_> {
            Box::pin(async { Ok(()) })
        }
        fn shutdown_write(&self) {}
    }

    /// The reader's checks of a link with `settings`, whose peer is the node `peer`.
    fn inbound(settings: &LinkSettings, peer: u64) -> Inbound {
        let owner = Address::from_parts(local_node(), 1);
        let id = NEXT_LINK.fetch_add(1, Ordering::Relaxed);
        Inbound {
            tx: Arc::new(LinkTx::new(id, Arc::new(Sink), None, settings, owner)),
            peer,
            alias: None,
            relay: settings.relay,
            may_stop: settings.peer_may_stop,
            reach_public: settings.reach_public,
            granted: HashSet::default(),
            refused: 0,
            held: Arc::new(AtomicUsize::new(0)),
            budget: settings.inbound_bytes,
        }
    }

    /// Has `inbound` handle a MESSAGE frame carrying `Ping` from `from` to `to`.
    fn ping(inbound: &mut Inbound, to: Address, from: Address) -> Verdict {
        let mut out = Vec::new();
        frame::encode_message(&mut out, to, from, &AnyMessage::new(crate::standard::Ping)).unwrap();
        let body = &out[4..];
        let p = frame::peek(body).expect("a message frame");
        inbound.message(body, p)
    }

    #[test]
    fn only_granted_or_public_addresses_are_reached() {
        use crate::net::grants::{make_private, make_public};
        let mut cx = crate::object::ThreadContext::attach();
        let target = cx.address();
        let peer = 0x5eed_0001;
        let from = Address::from_parts(peer, 9);
        let delivered = |cx: &mut crate::object::ThreadContext| {
            let e = cx.recv_timeout(Duration::from_secs(20)).expect("delivered");
            assert_eq!(e.sender(), from);
            assert!(e.is::<crate::standard::Ping>());
        };
        let refused = |v: Verdict| match v {
            Verdict::Refused(why) => assert!(why.contains("not given to the peer"), "{why}"),
            Verdict::Done => panic!("delivered, but neither granted nor public"),
        };

        let plain = LinkSettings::default();
        let public = LinkSettings {
            reach_public: true,
            ..LinkSettings::default()
        };
        refused(ping(&mut inbound(&plain, peer), target, from));
        refused(ping(&mut inbound(&public, peer), target, from));
        assert!(cx.try_recv().is_none());

        make_public(target);
        let mut reaching = inbound(&public, peer);
        assert!(matches!(ping(&mut reaching, target, from), Verdict::Done));
        delivered(&mut cx);
        // Public, but this link may not reach public addresses.
        refused(ping(&mut inbound(&plain, peer), target, from));
        make_private(target);
        refused(ping(&mut reaching, target, from));
        assert!(cx.try_recv().is_none());

        // Granted from the start: reached without anything sent to the peer.
        let granted = LinkSettings {
            grants: vec![target],
            ..LinkSettings::default()
        };
        assert!(matches!(
            ping(&mut inbound(&granted, peer), target, from),
            Verdict::Done
        ));
        delivered(&mut cx);
    }

    #[tokio::test]
    async fn the_driver_runs_a_handshake_over_a_stream() {
        let (mut a, mut b) = tokio::io::duplex(64);
        let key = [3; 32];
        let (l, c) = tokio::join!(
            drive(&mut a, end(Role::Accepting, true, &[key], 0xa), LIMIT),
            drive(&mut b, end(Role::Connecting, true, &[key], 0xb), LIMIT),
        );
        assert_eq!(l.unwrap().peer.node, 0xb);
        assert_eq!(c.unwrap().peer.node, 0xa);
    }

    #[tokio::test]
    async fn the_driver_writes_the_verdict_before_failing() {
        let (mut a, mut b) = tokio::io::duplex(64);
        let (l, c) = tokio::join!(
            drive(&mut a, end(Role::Accepting, true, &[[3; 32]], 0xa), LIMIT),
            drive(&mut b, end(Role::Connecting, true, &[], 0xb), LIMIT),
        );
        assert_eq!(l.err(), Some(LinkError::Refused(Refusal::KeyMissing)));
        assert_eq!(
            c.err().map(|e| e.to_string()),
            Some("refused by the peer: no pre-shared key this end accepts was offered".into())
        );
    }

    #[tokio::test]
    async fn a_silent_peer_times_out_and_a_truncated_one_is_named() {
        let (mut a, _silent) = tokio::io::duplex(64);
        let hs = end(Role::Accepting, false, &[], 0xa);
        let e = drive(&mut a, hs, Duration::from_millis(50)).await.err();
        assert_eq!(e, Some(LinkError::TimedOut));
        assert_eq!(e.unwrap().to_string(), "the handshake timed out");

        let (mut a, mut b) = tokio::io::duplex(64);
        b.write_all(&frame::MAGIC[..]).await.unwrap();
        b.shutdown().await.unwrap(); // half a preamble, then end-of-stream
        let e = drive(&mut a, end(Role::Accepting, false, &[], 0xa), LIMIT).await;
        assert_eq!(e.err(), Some(LinkError::PeerClosed));
    }
}

/// The peers' owners that a local object stands for (a child's top object and its
/// `Process` object): what the peer's owner sends arrives as sent by the stand-in, so
/// whoever is given the owner's address (the directory, publishing a child's top object)
/// must be given the stand-in's instead, or answers would not match.
pub(crate) mod stand_ins {
    use std::collections::HashMap;
    use std::sync::OnceLock;

    use parking_lot::RwLock;

    use crate::Address;

    fn table() -> &'static RwLock<HashMap<Address, Address>> {
        static TABLE: OnceLock<RwLock<HashMap<Address, Address>>> = OnceLock::new();
        TABLE.get_or_init(Default::default)
    }

    pub(crate) fn note(owner: Address, stand_in: Address) {
        table().write().insert(owner, stand_in);
    }

    pub(crate) fn forget(owner: Address) {
        table().write().remove(&owner);
    }

    /// The local object that stands for `address`, if any.
    pub(crate) fn of(address: Address) -> Option<Address> {
        table().read().get(&address).copied()
    }
}
