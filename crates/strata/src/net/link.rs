//! Links: one byte stream between two nodes, carrying frames both ways.
//!
//! A link is an async object. It opens with a handshake, then runs a reader (frames in:
//! delivered locally, or relayed to a third node), an outbox (filled by the router and
//! written by the sending thread itself whenever the socket is free, so a message leaves
//! without waking any task; a writer task finishes what a full socket refused) and,
//! optionally, keep-alive. Unix-socket links are watched for reading only (see
//! [`UnixIo`]).
//!
//! Handshake, each side at once:
//! 1. a plaintext *preamble*: `STRT`, protocol version, flags (bit 0: encrypted) and the id
//!    of the pre-shared key in use (first 8 bytes of its BLAKE2s hash, zero for none). A
//!    peer that does not speak strata, or whose encryption flag differs, is refused with a
//!    reason saying which end wanted what: a mismatch fails cleanly, it never hangs;
//! 2. when encrypted, a Noise handshake (`NN` with X25519, ChaCha20-Poly1305, BLAKE2s;
//!    `NNpsk0` when a pre-shared key decides who may connect — a peer without the key fails
//!    authentication and is refused). Every later byte travels in Noise transport messages;
//! 3. HELLO frames: node ids and the owning objects' addresses.
//!
//! Everything in the handshake runs under a time limit. A malformed, oversized or unknown
//! frame closes that one link with a reason (sent to the peer in a CLOSE frame when
//! possible, logged, and given to the owner as [`Closed`]); other links and the process
//! carry on.

use std::collections::{HashMap, VecDeque};
use std::os::fd::AsRawFd;
use std::pin::Pin;

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};
use tokio::io::unix::AsyncFd;
use tokio::io::Interest;

use parking_lot::{Mutex, RwLock};
use serde::{Deserialize, Serialize};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};

use super::frame::{self, Frame, FrameReader, PROTOCOL_VERSION};
use crate::address::{local_node, nodes_seen_while};
use crate::message::AnyMessage;
use crate::object::AsyncContext;
use crate::runtime::cork::{self, Flush};
use crate::runtime::{self, node, Delivery, Envelope, Router, SendError};
use crate::standard::{Faulted, Overloaded, Stop};
use crate::{Address, Message};

/// The link is up: sent to the listening object for each accepted connection. The
/// envelope's sender is the object at the other end that asked to connect: reply to it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Message)]
pub struct Accepted {
    /// The peer's socket address.
    pub remote: String,
}

/// The link is up: sent to the connecting object. The envelope's sender is the object at
/// the other end that listens: send to it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Message)]
pub struct Connected {
    /// The peer's socket address.
    pub remote: String,
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
    pub(crate) keys: Vec<[u8; 32]>,
    pub(crate) max_frame: usize,
    pub(crate) keep_alive: Option<Duration>,
    pub(crate) handshake_timeout: Duration,
    pub(crate) outbox_limit: usize,
    /// Whether the owner is told of the link (Accepted/Connected, Closed). A child
    /// process's link to its parent keeps quiet: its owner is the child's top object.
    pub(crate) notify_owner: bool,
    /// When set, messages from the peer's owner are delivered as sent by this address:
    /// a `Process` object stands for its child's top object.
    pub(crate) alias_peer_owner: Option<Address>,
}

impl Default for LinkSettings {
    fn default() -> Self {
        LinkSettings {
            encrypted: false,
            keys: Vec::new(),
            max_frame: frame::DEFAULT_MAX_FRAME,
            keep_alive: None,
            handshake_timeout: Duration::from_secs(5),
            outbox_limit: 65_536,
            notify_owner: true,
            alias_peer_owner: None,
        }
    }
}

impl std::fmt::Debug for LinkSettings {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LinkSettings")
            .field("encrypted", &self.encrypted)
            .field("keys", &self.keys.len())
            .field("max_frame", &self.max_frame)
            .field("keep_alive", &self.keep_alive)
            .finish()
    }
}

/// The first 8 bytes of the key's BLAKE2s hash: names a key without revealing it.
fn key_id(key: &[u8; 32]) -> [u8; 8] {
    use blake2::{Blake2s256, Digest};
    let digest = Blake2s256::digest(key);
    digest[..8].try_into().expect("8 bytes")
}

const MAGIC: &[u8; 4] = b"STRT";
const PREAMBLE_LEN: usize = 14;
const NOISE_MAX: usize = 65_535;
const NOISE_TAG: usize = 16;

// ---------------------------------------------------------------------------------------
// Routes: which link leads to which node.

enum Outgoing {
    Message(Envelope),
    Relay(Vec<u8>),
    Control(Frame),
}

/// A byte stream a link can run over: async reads and writes for the handshake, then
/// [`LinkIo`] for the life of the link.
pub(crate) trait LinkStream: AsyncRead + AsyncWrite + Unpin + Send + 'static {
    /// What the stream becomes once the handshake is done.
    type Io: LinkIo;
    /// Turns the stream into the link's reader and writers' view of it.
    fn into_link_io(self) -> std::io::Result<Self::Io>;
}

/// The stream of a running link: read by the link's reader task, written through a shared
/// reference by whichever thread sends a message (see [`LinkTx`]).
pub(crate) trait LinkIo: WriteNow {
    /// Reads what has arrived, waiting until something has.
    fn read_some<'a>(
        &'a self,
        buf: &'a mut [u8],
    ) -> impl std::future::Future<Output = std::io::Result<usize>> + Send + 'a;
}

type Waiting<'a> = Pin<Box<dyn std::future::Future<Output = std::io::Result<()>> + Send + 'a>>;

/// The write side of a [`LinkIo`], as an object the link's outbox can hold.
pub(crate) trait WriteNow: Send + Sync + 'static {
    /// Writes what the socket takes now (`WouldBlock` when it takes nothing).
    fn try_write_now(&self, buf: &[u8]) -> std::io::Result<usize>;
    /// Resolves when the socket may take more.
    fn writable(&self) -> Waiting<'_>;
    /// Ends the write direction (the peer reads end-of-stream).
    fn shutdown_write(&self);
}

fn shutdown_write(fd: &impl AsRawFd) {
    // SAFETY: shutdown(2) on a descriptor the caller owns and keeps open.
    unsafe {
        libc::shutdown(fd.as_raw_fd(), libc::SHUT_WR);
    }
}

impl LinkStream for tokio::net::TcpStream {
    type Io = tokio::net::TcpStream;
    fn into_link_io(self) -> std::io::Result<Self::Io> {
        Ok(self)
    }
}

impl LinkIo for tokio::net::TcpStream {
    async fn read_some(&self, buf: &mut [u8]) -> std::io::Result<usize> {
        loop {
            self.readable().await?;
            match self.try_read(buf) {
                Err(e) if retry(&e) => {}
                other => return other,
            }
        }
    }
}

impl WriteNow for tokio::net::TcpStream {
    fn try_write_now(&self, buf: &[u8]) -> std::io::Result<usize> {
        self.try_write(buf)
    }
    fn writable(&self) -> Waiting<'_> {
        Box::pin(tokio::net::TcpStream::writable(self))
    }
    fn shutdown_write(&self) {
        shutdown_write(self)
    }
}

fn retry(e: &std::io::Error) -> bool {
    matches!(
        e.kind(),
        std::io::ErrorKind::WouldBlock | std::io::ErrorKind::Interrupted
    )
}

/// A Unix socket link, watched for reading only.
///
/// The kernel wakes a Unix socket's pollers for write space every time the peer reads, so a
/// socket watched for writing too would wake this process once more per message it sent.
/// The rare wait for write space registers a duplicate descriptor just for that wait.
pub(crate) struct UnixIo(AsyncFd<std::os::unix::net::UnixStream>);

impl LinkStream for tokio::net::UnixStream {
    type Io = UnixIo;
    fn into_link_io(self) -> std::io::Result<UnixIo> {
        let std_stream = self.into_std()?;
        std_stream.set_nonblocking(true)?;
        // SAFETY: the stream owns its descriptor, which stays open and unchanged for as
        // long as the AsyncFd holds it.
        let fd = unsafe { AsyncFd::register_with_interest(std_stream, Interest::READABLE)? };
        Ok(UnixIo(fd))
    }
}

impl LinkIo for UnixIo {
    async fn read_some(&self, buf: &mut [u8]) -> std::io::Result<usize> {
        use std::io::Read;
        loop {
            let mut ready = self.0.readable().await?;
            let mut stream: &std::os::unix::net::UnixStream = ready.get_ref().get_ref();
            match stream.read(buf) {
                // A short read took everything there was: wait for the next wake-up
                // instead of asking again only to hear `WouldBlock` (data arriving
                // meanwhile raises a new event, which this clearing does not undo).
                Ok(n) if n < buf.len() => {
                    ready.clear_ready();
                    return Ok(n);
                }
                Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => ready.clear_ready(),
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                other => return other,
            }
        }
    }
}

impl WriteNow for UnixIo {
    fn try_write_now(&self, buf: &[u8]) -> std::io::Result<usize> {
        use std::io::Write;
        let mut stream: &std::os::unix::net::UnixStream = self.0.get_ref();
        stream.write(buf)
    }
    fn writable(&self) -> Waiting<'_> {
        Box::pin(async move {
            let duplicate = self.0.get_ref().try_clone()?;
            // SAFETY: the duplicate owns its own descriptor, open and unchanged until the
            // AsyncFd is dropped at the end of this wait.
            let watch = unsafe { AsyncFd::register_with_interest(duplicate, Interest::WRITABLE)? };
            let _ready = watch.writable().await?;
            Ok(())
        })
    }
    fn shutdown_write(&self) {
        shutdown_write(self.0.get_ref())
    }
}

/// The sending side of a link: an outbox, and the write side that drains it.
///
/// A sender queues its message in the outbox, then tries to take the write side: when it
/// is free, the sender encodes everything queued and writes it to the socket itself, with
/// no task woken. Only when the socket is full (or another thread holds the write side)
/// is the link's writer task notified to carry on.
pub(crate) struct LinkTx {
    id: u64,
    outbox: Mutex<Outbox>,
    wake: tokio::sync::Notify,
    limit: usize,
    write: Mutex<WriteSide>,
}

struct Outbox {
    items: VecDeque<Outgoing>,
    closed: bool,
}

/// What flushing the outbox came to.
enum Flushed {
    /// Everything queued is written.
    All,
    /// The socket is full: the rest waits in the write side.
    Blocked,
    /// The socket failed.
    Failed(String),
}

/// Encodes queued items into frames and writes them; held by one thread at a time.
struct WriteSide {
    stream: Arc<dyn WriteNow>,
    cipher: Option<Cipher>,
    max_frame: usize,
    batch: VecDeque<Outgoing>,
    plain: Vec<u8>,
    /// Bytes ready for the socket (plaintext, or sealed), written up to `sent`.
    out: Vec<u8>,
    sent: usize,
    failed: Option<String>,
}

/// Buffers larger than this are given back after a burst.
const KEEP_BUFFER: usize = 1 << 20;

impl WriteSide {
    /// Writes what is pending, then drains the outbox until it is empty (or the socket
    /// is full, or it failed).
    fn flush(&mut self, outbox: &Mutex<Outbox>) -> Flushed {
        loop {
            if let Some(e) = &self.failed {
                return Flushed::Failed(e.clone());
            }
            while self.sent < self.out.len() {
                match self.stream.try_write_now(&self.out[self.sent..]) {
                    Ok(0) => self.failed = Some("the socket took no bytes".into()),
                    Ok(n) => self.sent += n,
                    Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {
                        return Flushed::Blocked
                    }
                    Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                    Err(e) => self.failed = Some(e.to_string()),
                }
                if let Some(e) = &self.failed {
                    return Flushed::Failed(e.clone());
                }
            }
            self.out.clear();
            self.sent = 0;
            std::mem::swap(&mut self.batch, &mut outbox.lock().items);
            if self.batch.is_empty() {
                if self.out.capacity() > KEEP_BUFFER {
                    self.out = Vec::new();
                }
                if self.plain.capacity() > KEEP_BUFFER {
                    self.plain = Vec::new();
                }
                return Flushed::All;
            }
            self.encode_batch();
        }
    }

    /// Encodes the batch into `out` (sealed when the link is encrypted).
    fn encode_batch(&mut self) {
        let max_frame = self.max_frame;
        let plain = if self.cipher.is_some() {
            self.plain.clear();
            &mut self.plain
        } else {
            &mut self.out
        };
        for item in self.batch.drain(..) {
            match item {
                Outgoing::Message(e) => {
                    let at = plain.len();
                    match frame::encode_message(plain, e.to, e.from, &e.message) {
                        Ok(()) if plain.len() - at - 4 <= max_frame => {}
                        Ok(()) => {
                            let size = plain.len() - at - 4;
                            plain.truncate(at);
                            undeliverable_back(e.from, e.to, format!("`{}` is {size} bytes, over the link's maximum frame of {max_frame}", e.type_name()));
                        }
                        Err(err) => undeliverable_back(e.from, e.to, err.to_string()),
                    }
                }
                Outgoing::Relay(bytes) => plain.extend_from_slice(&bytes),
                Outgoing::Control(f) => frame::encode_control(plain, &f),
            }
        }
        if self.cipher.is_some() {
            if let Err(e) = seal(&self.cipher, &self.plain, &mut self.out) {
                self.failed = Some(e);
            }
        }
    }
}

impl Flush for LinkTx {
    /// Writes what is queued now when nobody else is writing; otherwise (or when the
    /// socket is full) the writer task will.
    fn flush(&self) {
        let written = match self.write.try_lock() {
            Some(mut w) => matches!(w.flush(&self.outbox), Flushed::All),
            None => false,
        };
        if !written {
            self.wake.notify_one();
        }
    }
}

impl LinkTx {
    /// Queues an item, then writes it at once — or, while the sending object's turn
    /// lasts (see [`cork`](crate::runtime::cork)), when the turn ends, together with
    /// whatever else the turn sent.
    fn push(self: &Arc<Self>, item: Outgoing, bounded: bool) -> Result<(), Outgoing> {
        {
            let mut outbox = self.outbox.lock();
            if outbox.closed || (bounded && outbox.items.len() >= self.limit) {
                return Err(item);
            }
            outbox.items.push_back(item);
        }
        if !cork::defer(self) {
            self.flush();
        }
        Ok(())
    }

    /// Refuses further items and returns the messages not yet written; `last`, when
    /// given, is the one frame still written (the CLOSE that tells the peer why).
    fn close(&self, last: Option<Frame>) -> usize {
        let unsent = {
            let mut outbox = self.outbox.lock();
            outbox.closed = true;
            let unsent = outbox
                .items
                .iter()
                .filter(|o| matches!(o, Outgoing::Message(_)))
                .count();
            outbox.items.clear();
            outbox.items.extend(last.map(Outgoing::Control));
            unsent
        };
        self.wake.notify_one();
        unsent
    }
}

/// The node-to-link table; it is the runtime's [`Router`].
#[derive(Default)]
pub(crate) struct Routes {
    by_node: RwLock<HashMap<u64, (Arc<LinkTx>, bool)>>,
}

impl Routes {
    fn add(&self, node: u64, link: &Arc<LinkTx>, direct: bool) {
        let mut map = self.by_node.write();
        match map.get(&node) {
            Some((_, true)) if !direct => {}
            _ => {
                map.insert(node, (link.clone(), direct));
            }
        }
    }

    fn learn(&self, node: u64, link: &Arc<LinkTx>) {
        if node == 0 || node == local_node() || self.by_node.read().contains_key(&node) {
            return;
        }
        self.add(node, link, false);
    }

    fn remove_link(&self, id: u64) {
        self.by_node.write().retain(|_, (l, _)| l.id != id);
    }

    fn get(&self, node: u64) -> Option<Arc<LinkTx>> {
        self.by_node.read().get(&node).map(|(l, _)| l.clone())
    }

    /// Every node this process has a route to, and whether the route is direct.
    pub(crate) fn snapshot(&self) -> Vec<(u64, bool)> {
        self.by_node
            .read()
            .iter()
            .map(|(n, (_, d))| (*n, *d))
            .collect()
    }
}

impl Router for Routes {
    fn route(&self, envelope: Envelope) -> Result<(), SendError> {
        let to = envelope.to;
        let Some(link) = self.get(to.node()) else {
            node().stats().undeliverable();
            return Err(SendError::NoRoute {
                to,
                type_name: envelope.type_name(),
            });
        };
        let type_name = envelope.type_name();
        link.push(Outgoing::Message(envelope), true)
            .map_err(|_| SendError::Full {
                to,
                type_name,
                capacity: link.limit,
            })
    }
}

/// The process-wide routes, installed as the runtime's router on first use.
pub(crate) fn routes() -> &'static Arc<Routes> {
    static ROUTES: OnceLock<Arc<Routes>> = OnceLock::new();
    ROUTES.get_or_init(|| {
        let routes = Arc::new(Routes::default());
        runtime::set_router(routes.clone());
        routes
    })
}

/// Nodes this process can reach over links, with `true` for direct ones.
pub fn reachable_nodes() -> Vec<(u64, bool)> {
    routes().snapshot()
}

// ---------------------------------------------------------------------------------------
// Encryption as a stream layer.

type Cipher = Arc<Mutex<snow::TransportState>>;

fn seal(cipher: &Option<Cipher>, plain: &[u8], out: &mut Vec<u8>) -> Result<(), String> {
    let Some(cipher) = cipher else {
        out.extend_from_slice(plain);
        return Ok(());
    };
    let mut state = cipher.lock();
    for chunk in plain.chunks(NOISE_MAX - NOISE_TAG) {
        let at = out.len();
        out.resize(at + 2 + chunk.len() + NOISE_TAG, 0);
        let n = state
            .write_message(chunk, &mut out[at + 2..])
            .map_err(|e| format!("encryption failed: {e}"))?;
        out[at..at + 2].copy_from_slice(&(n as u16).to_be_bytes());
        out.truncate(at + 2 + n);
    }
    Ok(())
}

/// Turns received bytes into plaintext, decrypting Noise messages when encrypted.
struct Opener {
    cipher: Option<Cipher>,
    pending: Vec<u8>,
    plain: Vec<u8>,
}

impl Opener {
    fn open<'a>(&'a mut self, bytes: &'a [u8]) -> Result<&'a [u8], String> {
        let Some(cipher) = &self.cipher else {
            return Ok(bytes);
        };
        self.pending.extend_from_slice(bytes);
        self.plain.clear();
        let mut at = 0;
        let mut state = cipher.lock();
        while self.pending.len() - at >= 2 {
            let n = u16::from_be_bytes([self.pending[at], self.pending[at + 1]]) as usize;
            if self.pending.len() - at - 2 < n {
                break;
            }
            let start = self.plain.len();
            self.plain.resize(start + n, 0);
            let m = state
                .read_message(&self.pending[at + 2..at + 2 + n], &mut self.plain[start..])
                .map_err(|_| "decryption failed (corrupt or forged data)".to_string())?;
            self.plain.truncate(start + m);
            at += 2 + n;
        }
        self.pending.drain(..at);
        Ok(&self.plain)
    }
}

// ---------------------------------------------------------------------------------------
// Handshake.

/// Which end of the link this is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Role {
    Accepting,
    Connecting,
}

struct Peer {
    node: u64,
    owner: Address,
}

async fn read_exact_timed<S: AsyncRead + Unpin>(
    s: &mut S,
    buf: &mut [u8],
    deadline: Instant,
) -> Result<(), String> {
    match tokio::time::timeout_at(deadline.into(), s.read_exact(buf)).await {
        Ok(Ok(_)) => Ok(()),
        Ok(Err(e)) if e.kind() == std::io::ErrorKind::UnexpectedEof => {
            Err("the peer closed the connection during the handshake".into())
        }
        Ok(Err(e)) => Err(format!("handshake read failed: {e}")),
        Err(_) => Err("the handshake timed out".into()),
    }
}

async fn write_timed<S: AsyncWrite + Unpin>(
    s: &mut S,
    bytes: &[u8],
    deadline: Instant,
) -> Result<(), String> {
    match tokio::time::timeout_at(deadline.into(), async {
        s.write_all(bytes).await?;
        s.flush().await
    })
    .await
    {
        Ok(Ok(())) => Ok(()),
        Ok(Err(e)) => Err(format!("handshake write failed: {e}")),
        Err(_) => Err("the handshake timed out".into()),
    }
}

async fn noise_message<S: AsyncRead + Unpin>(
    s: &mut S,
    deadline: Instant,
) -> Result<Vec<u8>, String> {
    let mut len = [0u8; 2];
    read_exact_timed(s, &mut len, deadline).await?;
    let mut msg = vec![0u8; u16::from_be_bytes(len) as usize];
    read_exact_timed(s, &mut msg, deadline).await?;
    Ok(msg)
}

fn with_len(msg: &[u8]) -> Vec<u8> {
    let mut out = (msg.len() as u16).to_be_bytes().to_vec();
    out.extend_from_slice(msg);
    out
}

async fn noise_handshake<S: AsyncRead + AsyncWrite + Unpin>(
    s: &mut S,
    role: Role,
    key: Option<&[u8; 32]>,
    deadline: Instant,
) -> Result<snow::TransportState, String> {
    let pattern = if key.is_some() {
        "Noise_NNpsk0_25519_ChaChaPoly_BLAKE2s"
    } else {
        "Noise_NN_25519_ChaChaPoly_BLAKE2s"
    };
    let mut builder = snow::Builder::new(pattern.parse().expect("a valid Noise pattern"));
    if let Some(k) = key {
        builder = builder.psk(0, k);
    }
    let mut state = match role {
        Role::Connecting => builder.build_initiator(),
        Role::Accepting => builder.build_responder(),
    }
    .map_err(|e| format!("cannot start the Noise handshake: {e}"))?;
    let mut buf = vec![0u8; NOISE_MAX];
    let mut payload = vec![0u8; NOISE_MAX];
    let refused =
        |_| "authentication failed: the peer does not hold the same pre-shared key".to_string();
    match role {
        Role::Connecting => {
            let n = state
                .write_message(&[], &mut buf)
                .map_err(|e| format!("noise: {e}"))?;
            write_timed(s, &with_len(&buf[..n]), deadline).await?;
            let reply = noise_message(s, deadline).await?;
            state.read_message(&reply, &mut payload).map_err(refused)?;
        }
        Role::Accepting => {
            let first = noise_message(s, deadline).await?;
            state.read_message(&first, &mut payload).map_err(refused)?;
            let n = state
                .write_message(&[], &mut buf)
                .map_err(|e| format!("noise: {e}"))?;
            write_timed(s, &with_len(&buf[..n]), deadline).await?;
        }
    }
    state
        .into_transport_mode()
        .map_err(|e| format!("noise: {e}"))
}

/// Checks the peer's preamble against this end's settings.
fn judge(role: Role, settings: &LinkSettings, theirs: &[u8; PREAMBLE_LEN]) -> Result<(), String> {
    if theirs[4] != PROTOCOL_VERSION {
        return Err(format!(
            "protocol version mismatch: one end speaks {PROTOCOL_VERSION}, the other {}",
            theirs[4]
        ));
    }
    let peer_encrypts = theirs[5] & 1 == 1;
    if peer_encrypts != settings.encrypted {
        let (me, peer) = match role {
            Role::Accepting => ("listening", "connecting"),
            Role::Connecting => ("connecting", "listening"),
        };
        let (wants, plain) = if settings.encrypted {
            (me, peer)
        } else {
            (peer, me)
        };
        return Err(format!(
            "encryption mismatch: the {wants} end requires encryption, the {plain} end does not encrypt"
        ));
    }
    let their_key: [u8; 8] = theirs[6..14].try_into().expect("8 bytes");
    if !settings.encrypted && (their_key != [0; 8] || !settings.keys.is_empty()) {
        return Err("pre-shared keys need encryption: set encrypted at both ends".into());
    }
    if role == Role::Accepting
        && !settings.keys.is_empty()
        && !settings.keys.iter().any(|k| key_id(k) == their_key)
    {
        return Err("no pre-shared key this end accepts was offered".into());
    }
    if role == Role::Accepting && settings.keys.is_empty() && their_key != [0; 8] {
        return Err("a pre-shared key was offered but this end uses none".into());
    }
    Ok(())
}

/// Runs the whole handshake; on success the stream is ready for frames.
async fn handshake<S: AsyncRead + AsyncWrite + Unpin>(
    s: &mut S,
    role: Role,
    owner: Address,
    settings: &LinkSettings,
    reader: &mut FrameReader,
    opener: &mut Opener,
) -> Result<Peer, String> {
    let deadline = Instant::now() + settings.handshake_timeout;
    let mine_key = match role {
        Role::Connecting => settings.keys.first(),
        Role::Accepting => None,
    };
    let mut preamble = Vec::with_capacity(PREAMBLE_LEN);
    preamble.extend_from_slice(MAGIC);
    preamble.push(PROTOCOL_VERSION);
    preamble.push(u8::from(settings.encrypted));
    preamble.extend_from_slice(&mine_key.map(key_id).unwrap_or([0; 8]));
    write_timed(s, &preamble, deadline).await?;
    let mut theirs = [0u8; PREAMBLE_LEN];
    read_exact_timed(s, &mut theirs, deadline).await?;
    if &theirs[..4] != MAGIC {
        return Err("the peer does not speak the strata protocol".into());
    }
    // Each end judges the other's preamble and says so, so a refused peer learns why.
    let verdict = judge(role, settings, &theirs);
    let mut said = Vec::new();
    match &verdict {
        Ok(()) => said.push(0u8),
        Err(reason) => {
            let r = &reason.as_bytes()[..reason.len().min(1024)];
            said.push(1u8);
            said.extend_from_slice(&(r.len() as u16).to_be_bytes());
            said.extend_from_slice(r);
        }
    }
    write_timed(s, &said, deadline).await?;
    verdict?;
    let mut heard = [0u8; 1];
    read_exact_timed(s, &mut heard, deadline).await?;
    if heard[0] != 0 {
        let mut len = [0u8; 2];
        read_exact_timed(s, &mut len, deadline).await?;
        let mut reason = vec![0u8; u16::from_be_bytes(len) as usize];
        read_exact_timed(s, &mut reason, deadline).await?;
        return Err(format!(
            "refused by the peer: {}",
            String::from_utf8_lossy(&reason)
        ));
    }
    let their_key: [u8; 8] = theirs[6..14].try_into().expect("8 bytes");
    if settings.encrypted {
        let key = match role {
            Role::Connecting => settings.keys.first(),
            Role::Accepting => settings.keys.iter().find(|k| key_id(k) == their_key),
        };
        let state = noise_handshake(s, role, key, deadline).await?;
        opener.cipher = Some(Arc::new(Mutex::new(state)));
    }

    let mut hello = Vec::new();
    frame::encode_control(
        &mut hello,
        &Frame::Hello {
            version: PROTOCOL_VERSION,
            node: local_node(),
            owner,
        },
    );
    let mut sealed = Vec::new();
    seal(&opener.cipher, &hello, &mut sealed)?;
    write_timed(s, &sealed, deadline).await?;
    let mut chunk = vec![0u8; 4096];
    loop {
        if let Some(f) = reader.next_frame().map_err(|e| format!("bad HELLO: {e}"))? {
            return match f {
                Frame::Hello { node, owner, .. } if node != 0 && node != local_node() => {
                    Ok(Peer { node, owner })
                }
                Frame::Hello { .. } => {
                    Err("the peer claims this node's own id (a link to itself?)".into())
                }
                Frame::Close(reason) => Err(format!("refused by the peer: {reason}")),
                other => Err(format!("expected HELLO, got {other:?}")),
            };
        }
        let n = match tokio::time::timeout_at(deadline.into(), s.read(&mut chunk)).await {
            Ok(Ok(0)) => return Err("the peer closed the connection during the handshake".into()),
            Ok(Ok(n)) => n,
            Ok(Err(e)) => return Err(format!("handshake read failed: {e}")),
            Err(_) => return Err("the handshake timed out".into()),
        };
        let plain = opener.open(&chunk[..n])?;
        reader.extend(plain);
    }
}

// ---------------------------------------------------------------------------------------
// Running a link.

static NEXT_LINK: AtomicU64 = AtomicU64::new(1);

fn undeliverable_back(from: Address, to: Address, reason: String) {
    if from.is_local() {
        runtime::answer_for(to, from, AnyMessage::new(Faulted::new(reason)));
    }
}

/// The link's writer task: carries on when a sender could not write everything itself
/// (the socket was full, or the write side was busy), and writes the last frames when the
/// link closes.
async fn writer(tx: Arc<LinkTx>) -> Result<(), String> {
    loop {
        let (flushed, stream) = {
            let mut w = tx.write.lock();
            let flushed = w.flush(&tx.outbox);
            if matches!(flushed, Flushed::All) {
                let outbox = tx.outbox.lock();
                if outbox.closed && outbox.items.is_empty() {
                    w.stream.shutdown_write();
                    return Ok(());
                }
            }
            (flushed, w.stream.clone())
        };
        match flushed {
            Flushed::All => tx.wake.notified().await,
            Flushed::Blocked => stream.writable().await.map_err(|e| e.to_string())?,
            Flushed::Failed(e) => return Err(e),
        }
    }
}

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
                    if let Err(e @ SendError::Full { .. }) =
                        runtime::arrive(Envelope::new(from, to, message))
                    {
                        let notice = Envelope::new(
                            to,
                            from,
                            AnyMessage::new(Overloaded::new(e.to_string())),
                        );
                        let _ = tx.push(Outgoing::Message(notice), false);
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
            Err(e) => return CloseReason::BadFrame(e),
        }
    }
}

/// Runs a link over `stream` until it closes; returns the value the link object ends with.
///
/// `notify` is told of the link (Accepted or Connected, then Closed); the handshake's
/// failure is returned as `Err` for the caller to report.
pub(crate) async fn run<S>(
    cx: &mut AsyncContext,
    mut stream: S,
    role: Role,
    owner: Address,
    remote: String,
    settings: LinkSettings,
) -> Result<Closed, String>
where
    S: LinkStream,
{
    let mut frames = FrameReader::new(settings.max_frame);
    let mut opener = Opener {
        cipher: None,
        pending: Vec::new(),
        plain: Vec::new(),
    };
    let peer = handshake(
        &mut stream,
        role,
        owner,
        &settings,
        &mut frames,
        &mut opener,
    )
    .await?;
    let stream = Arc::new(
        stream
            .into_link_io()
            .map_err(|e| format!("cannot watch the connection: {e}"))?,
    );
    let tx = Arc::new(LinkTx {
        id: NEXT_LINK.fetch_add(1, Ordering::Relaxed),
        outbox: Mutex::new(Outbox {
            items: VecDeque::new(),
            closed: false,
        }),
        wake: tokio::sync::Notify::new(),
        limit: settings.outbox_limit,
        write: Mutex::new(WriteSide {
            stream: stream.clone(),
            cipher: opener.cipher.clone(),
            max_frame: settings.max_frame,
            batch: VecDeque::new(),
            plain: Vec::new(),
            out: Vec::with_capacity(64 * 1024),
            sent: 0,
            failed: None,
        }),
    });
    let routes = routes();
    routes.add(peer.node, &tx, true);
    tracing::info!(target: "strata::net", remote = %remote, peer = %format_args!("{:04x}", peer.node & 0xffff),
        encrypted = settings.encrypted, "link up");
    let up = match role {
        Role::Accepting => AnyMessage::new(Accepted {
            remote: remote.clone(),
        }),
        Role::Connecting => AnyMessage::new(Connected {
            remote: remote.clone(),
        }),
    };
    if settings.notify_owner {
        cx.post(owner, up, peer.owner, Delivery::Control);
    }

    let heard = Arc::new(Mutex::new(Instant::now()));
    let mut write_task = tokio::spawn(writer(tx.clone()));
    let alias = settings
        .alias_peer_owner
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
