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

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use parking_lot::Mutex;
use serde::{Deserialize, Serialize};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};

use super::error::LinkError;
use super::frame::{self, Frame, FrameReader};
use super::handshake::{Established, Handshake, Next, Role};
use super::io::{LinkIo, LinkStream};
use super::keys::{PublicKey, StaticKey};
use super::noise::Opener;
use super::outbox::{writer, LinkTx, Outgoing};
use super::routes::routes;
use crate::address::{local_node, nodes_seen_while};
use crate::message::AnyMessage;
use crate::object::AsyncContext;
use crate::runtime::{self, node, Delivery, Envelope, SendError};
use crate::standard::{Overloaded, Stop};
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
}

impl std::fmt::Display for CloseReason {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            CloseReason::Ended => f.write_str("closed by this end"),
            CloseReason::PeerEnded(r) => write!(f, "closed by the peer: {r}"),
            CloseReason::WentStale => f.write_str("went stale: nothing heard from the peer"),
            CloseReason::BadFrame(r) => write!(f, "bad frame: {r}"),
            CloseReason::Lost(r) => write!(f, "connection lost: {r}"),
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
    pub(crate) handshake_timeout: Duration,
    pub(crate) outbox_limit: usize,
    /// Whether the owner is told of the link (Accepted/Connected, Closed). A child
    /// process's link to its parent keeps quiet: there the owner is the child's top
    /// object, for which messages simply arrive.
    pub(crate) notify_owner: bool,
    /// When set, messages from the peer's owner are delivered as sent by this address
    /// instead (a `Process` object stands for its child's top object this way).
    pub(crate) present_peer_owner_as: Option<Address>,
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
            handshake_timeout: Duration::from_secs(5),
            outbox_limit: 65_536,
            notify_owner: true,
            present_peer_owner_as: None,
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

/// Messages a peer may not send (see `runtime::arrive`) that a link refuses one by one
/// before it closes: a legitimate peer never sends one.
const MAX_REFUSED: u32 = 16;

async fn reader<S: LinkIo>(
    stream: Arc<S>,
    tx: Arc<LinkTx>,
    mut frames: FrameReader,
    mut opener: Opener,
    heard: Arc<Mutex<Instant>>,
    alias: Option<(Address, Address)>,
) -> CloseReason {
    let routes = routes();
    let mut chunk = vec![0u8; 64 * 1024];
    let mut refused = 0u32;
    loop {
        // Frames already buffered (some may have arrived with the HELLO).
        loop {
            let body = match frames.next_body() {
                Ok(Some(body)) => body,
                Ok(None) => break,
                Err(e) => return CloseReason::BadFrame(e.to_string()),
            };
            if let Some(to) = frame::peek_receiver(body) {
                if to.node() != local_node() {
                    let mut bytes = Vec::with_capacity(body.len() + 4);
                    bytes.extend_from_slice(&(body.len() as u32).to_le_bytes());
                    bytes.extend_from_slice(body);
                    match routes.get(to.node()) {
                        Some(next) if next.id != tx.id => {
                            let _ = next.push(Outgoing::Relay(bytes), true);
                        }
                        _ => {
                            tracing::debug!(target: "strata::net", to = %to, "no onward route for a relayed frame")
                        }
                    }
                    continue;
                }
            }
            let (decoded, nodes) = nodes_seen_while(|| frame::decode_body(body));
            let decoded = match decoded {
                Ok(f) => f,
                Err(e) => return CloseReason::BadFrame(e.to_string()),
            };
            for n in nodes {
                routes.learn(n, &tx);
            }
            match decoded {
                Frame::Message { to, from, message } => {
                    routes.learn(from.node(), &tx);
                    let from = match alias {
                        Some((peer_owner, stand_in)) if from == peer_owner => stand_in,
                        _ => from,
                    };
                    match runtime::arrive(Envelope::new(from, to, message)) {
                        Err(e @ SendError::Full { .. }) => {
                            let notice = Envelope::new(
                                to,
                                from,
                                AnyMessage::new(Overloaded::new(e.to_string())),
                            );
                            let _ = tx.push(Outgoing::Message(notice), false);
                        }
                        Err(e @ SendError::NotAccepted { .. }) => {
                            refused += 1;
                            tracing::warn!(target: "strata::net", peer_object = %from, error = %e, refused, "message from the peer refused");
                            if refused >= MAX_REFUSED {
                                return CloseReason::BadFrame(format!(
                                    "{refused} messages the peer may not send (the last: {e})"
                                ));
                            }
                        }
                        _ => {}
                    }
                }
                Frame::Ping => {
                    let _ = tx.push(Outgoing::Control(Frame::Pong), false);
                }
                Frame::Pong => {}
                Frame::Close(reason) => return CloseReason::PeerEnded(reason),
                Frame::Hello { .. } => return CloseReason::BadFrame("a second HELLO".into()),
            }
        }
        let n = match stream.read_some(&mut chunk).await {
            Ok(0) => {
                return CloseReason::Lost("the peer closed the connection without a word".into())
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
pub(crate) async fn run<S>(
    cx: &mut AsyncContext,
    mut stream: S,
    role: Role,
    owner: Address,
    remote: String,
    settings: LinkSettings,
) -> Result<Closed, LinkError>
where
    S: LinkStream,
{
    let hs = Handshake::new(role, &settings, local_node(), owner);
    let Established {
        peer,
        frames,
        opener,
        peer_static: _,
        peer_key,
    } = drive(&mut stream, hs, settings.handshake_timeout).await?;
    let stream = Arc::new(
        stream
            .into_link_io()
            .map_err(|e| LinkError::CannotWatch(e.to_string()))?,
    );
    let tx = Arc::new(LinkTx::new(
        NEXT_LINK.fetch_add(1, Ordering::Relaxed),
        stream.clone(),
        opener.cipher.clone(),
        settings.max_frame,
        settings.outbox_limit,
    ));
    let routes = routes();
    if !routes.add_direct(peer.node, &tx) {
        // Tell the peer why, then end: the live link keeps the node's route.
        let refused = LinkError::NodeTaken(peer.node);
        tracing::warn!(target: "strata::net", remote = %remote, reason = %refused, "link refused");
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

    let heard = Arc::new(Mutex::new(Instant::now()));
    let mut write_task = tokio::spawn(writer(tx.clone()));
    let alias = settings
        .present_peer_owner_as
        .map(|stand_in| (peer.owner, stand_in));
    let read_task = reader(stream, tx.clone(), frames, opener, heard.clone(), alias);
    tokio::pin!(read_task);
    let mut rng = crate::random::Rng::seeded();
    let keep_alive = settings.keep_alive;
    let mut next_ping = keep_alive.map(|k| tokio::time::Instant::now() + rng.jitter(k, 0.25));

    let reason = loop {
        let ping_at =
            next_ping.unwrap_or_else(|| tokio::time::Instant::now() + Duration::from_secs(86_400));
        tokio::select! {
            r = &mut read_task => break r,
            w = &mut write_task => break match w {
                Ok(Ok(())) => CloseReason::Ended,
                Ok(Err(e)) => CloseReason::Lost(e),
                Err(e) => CloseReason::Lost(format!("writer failed: {e}")),
            },
            e = cx.recv() => {
                if e.is::<Stop>() {
                    break CloseReason::Ended;
                }
                tracing::debug!(target: "strata::net", message = e.type_name(), "link object ignores a message sent to it");
            }
            _ = tokio::time::sleep_until(ping_at), if next_ping.is_some() => {
                let k = keep_alive.expect("keep-alive set");
                if heard.lock().elapsed() > k * 3 {
                    break CloseReason::WentStale;
                }
                let _ = tx.push(Outgoing::Control(Frame::Ping), false);
                next_ping = Some(tokio::time::Instant::now() + rng.jitter(k, 0.25));
            }
        }
    };

    routes.remove_link(tx.id);
    // Say why to the peer when this end decided, then let the writer flush and finish.
    let tell = match &reason {
        CloseReason::Ended => Some("the link was closed".to_string()),
        CloseReason::WentStale => Some("went stale".to_string()),
        CloseReason::BadFrame(r) => Some(format!("bad frame: {r}")),
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
        CloseReason::BadFrame(_) | CloseReason::WentStale | CloseReason::Lost(_) => {
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
