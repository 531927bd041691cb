//! `Listen` and `Connect`: the objects that open links, over TCP or a Unix socket.
//!
//! ```no_run
//! use strata::prelude::*;
//! use strata::net::{Connect, Connected, Listen};
//!
//! let mut cx = ThreadContext::attach();
//! // Server side: this object receives Listening, then Accepted for each link.
//! cx.create(Listen::new("127.0.0.1:5051".parse().unwrap()).encrypted(true));
//! // Client side: this object receives Connected (sender: the listening object).
//! cx.create(Connect::new("127.0.0.1:5051".parse().unwrap()).encrypted(true));
//! // The same on this host over a Unix socket (only this user's processes may link).
//! cx.create(Listen::unix("/tmp/strata-example.sock"));
//! cx.create(Connect::unix("/tmp/strata-example.sock"));
//! ```
//!
//! Both objects take an *endpoint*: a TCP socket address ([`Listen::new`],
//! [`Connect::new`]) or a Unix socket path ([`Listen::unix`], [`Connect::unix`]); the link
//! over either is the same (`link::run` is generic over the stream). Who may link, and the
//! check on TCP addresses that are not loopback: see [`Listen`].

use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use super::error::LinkError;
use super::handshake::Role;
use super::io::LinkStream;
use super::link::{self, Closed, LinkSettings};
use super::listener::{Accept, Admission, Caps, ConnectionCounts, Listener, Ticket, UnixPeer};
use crate::message::AnyMessage;
use crate::object::{Async, AsyncContext, Core, Object};
use crate::standard::{Aborted, NotConnected, NotListening};
use crate::{Address, Message};

/// The listener is up: sent to the object that created the [`Listen`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Message)]
pub struct Listening {
    /// The socket address actually bound (useful with port 0), or the Unix socket's path.
    pub address: String,
}

/// Where a link listens or connects.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Endpoint {
    /// A TCP socket address.
    Tcp(SocketAddr),
    /// A Unix socket path: links on this host, with this process's user only.
    Unix(PathBuf),
}

impl std::fmt::Display for Endpoint {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Endpoint::Tcp(a) => write!(f, "{a}"),
            Endpoint::Unix(p) => write!(f, "unix:{}", p.display()),
        }
    }
}

/// What a [`Listen`] has refused and serves, readable while it runs.
///
/// A handle: clones share the same counts. Take one with [`Listen::counters`] before
/// creating the listener.
#[derive(Debug, Clone, Default)]
pub struct LinkCounters(Arc<ConnectionCounts>);

impl LinkCounters {
    /// Connections admitted and not yet ended (in their handshake, or links).
    pub fn open_links(&self) -> usize {
        self.0.open.load(Ordering::Relaxed)
    }

    /// Connections closed as soon as they were accepted, before any handshake: over a cap
    /// ([`max_links`](Listen::max_links), [`max_handshakes`](Listen::max_handshakes),
    /// [`max_links_per_address`](Listen::max_links_per_address)) or, on a Unix socket,
    /// from a process of another user.
    pub fn refused_links(&self) -> u64 {
        self.0.refused.load(Ordering::Relaxed)
    }
}

macro_rules! link_options {
    () => {
        /// Encrypts every frame (Noise, X25519, ChaCha20-Poly1305). Both ends must agree;
        /// a mismatch is refused with a reason naming which end wanted what.
        ///
        /// Without a [`key`](Self::key) or an [`identity`](Self::identity) this is Noise
        /// `NN`: it protects against passive eavesdroppers only. Nothing is authenticated,
        /// so an active man-in-the-middle can read and change everything; off loopback
        /// such a link is refused unless [`allow_unauthenticated`](Self::allow_unauthenticated).
        pub fn encrypted(mut self, on: bool) -> Self {
            self.settings.encrypted = on;
            self
        }

        /// Adds a pre-shared 32-byte key (make one with
        /// [`keys::generate_psk`](super::keys::generate_psk) or `strata key new --psk`). A
        /// connecting end uses its first key; a listening end accepts any of its keys, and
        /// refuses peers without one. Needs `encrypted`.
        pub fn key(mut self, key: [u8; 32]) -> Self {
            self.settings.keys.push(key);
            self
        }

        /// Authenticates this end with a static key (Noise `XX`; `XXpsk3` with a
        /// [`key`](Self::key) too): the peer learns this end's public key and this end
        /// learns the peer's, which [`Accepted`](super::Accepted) / [`Connected`](super::Connected)
        /// name in `peer_key`. Both ends need an identity, and `encrypted`.
        pub fn identity(mut self, key: super::keys::StaticKey) -> Self {
            self.settings.identity = Some(key);
            self
        }

        /// Allows peers with these static public keys (added to any allowed before), and
        /// refuses any other: this end fails with a reason naming the refused key's id, and
        /// the peer learns that its key is not allowed. With no key allowed, any peer key
        /// is accepted (and reported in `peer_key`). Needs an [`identity`](Self::identity).
        pub fn allow_peers(
            mut self,
            keys: impl IntoIterator<Item = super::keys::PublicKey>,
        ) -> Self {
            self.settings.allowed_peers.extend(keys);
            self
        }

        /// Allows links that do not authenticate their peer (plaintext, or `encrypted`
        /// without a pre-shared key or allow-list) on addresses that are not loopback.
        /// Without it such a link is refused there, saying why; on loopback it is always
        /// allowed.
        pub fn allow_unauthenticated(mut self) -> Self {
            self.settings.allow_unauthenticated = true;
            self
        }

        /// The largest frame accepted (default 1 MiB, at least 64 bytes, at most
        /// [`MAX_FRAME_LIMIT`](super::frame::MAX_FRAME_LIMIT), 256 MiB); a larger one
        /// closes the link.
        pub fn max_frame(mut self, bytes: usize) -> Self {
            self.settings.max_frame = bytes.clamp(64, super::frame::MAX_FRAME_LIMIT);
            self
        }

        /// Sends a keep-alive probe about every `interval` (±25% jitter) and closes the
        /// link with `WentStale` when nothing is heard for three intervals.
        pub fn keep_alive(mut self, interval: Duration) -> Self {
            self.settings.keep_alive = Some(interval.max(Duration::from_millis(10)));
            self
        }

        /// The time allowed for the handshake (default 5 s).
        pub fn handshake_timeout(mut self, timeout: Duration) -> Self {
            self.settings.handshake_timeout = timeout;
            self
        }

        /// No keep-alive, not even the default one of links whose peer is on another host
        /// (every 15 s: a link that leaves the host probes unless told otherwise).
        pub fn without_keep_alive(mut self) -> Self {
            self.settings.keep_alive = None;
            self.settings.keep_alive_off_host = None;
            self
        }

        /// How many bytes may wait for a peer that does not read before the link closes
        /// with [`CloseReason::NotReading`](super::CloseReason::NotReading) (default
        /// 32 MiB, and never less than two maximum frames).
        pub fn outbox_bytes(mut self, bytes: usize) -> Self {
            self.settings.outbox_bytes = bytes;
            self
        }

        /// How many bytes of the peer's messages may wait, unhandled, in this process's
        /// mailboxes; beyond that the peer's senders are answered `Overloaded` (default
        /// 64 MiB, and never less than two maximum frames).
        pub fn inbound_bytes(mut self, bytes: usize) -> Self {
            self.settings.inbound_bytes = bytes;
            self
        }

        /// How long the socket may take nothing while bytes wait for the peer before the
        /// link closes with `NotReading` (default 30 s).
        pub fn write_timeout(mut self, timeout: Duration) -> Self {
            self.settings.write_timeout = timeout;
            self
        }

        /// Whether messages from the peer for other nodes are relayed (default on). Even
        /// on, a link relays only to addresses this process gave the peer, at most
        /// [`MAX_HOPS`](super::frame::MAX_HOPS) nodes deep.
        pub fn relay(mut self, on: bool) -> Self {
            self.settings.relay = on;
            self
        }

        /// Grants `address` to the peer from the start, besides this end's owner: the
        /// peer may send to it before anything was sent to it (see `grants.rs`).
        #[cfg_attr(not(test), allow(dead_code))] // the directory's
        pub(crate) fn grant(mut self, address: Address) -> Self {
            self.settings.grants.push(address);
            self
        }

        /// Lets the peer also send to the addresses this process made public
        /// (`grants::make_public`; default off).
        #[cfg_attr(not(test), allow(dead_code))] // the directory's
        pub(crate) fn reach_public(mut self, on: bool) -> Self {
            self.settings.reach_public = on;
            self
        }

        /// Whether a connection to a node this process has a link to already uses that
        /// link instead (see `LinkSettings::reuse`; crate-private: for the directory).
        #[allow(dead_code)]
        pub(crate) fn reuse(mut self, on: bool) -> Self {
            self.settings.reuse = on;
            self
        }
    };
}

/// How many connections a [`Listen`] serves at once.
#[derive(Debug, Clone, Copy)]
struct ListenCaps {
    links: usize,
    handshakes: usize,
    per_address: usize,
}

/// A listener's admission: the shared caps on links (in all and per address), and one on
/// handshakes in progress.
struct Gate {
    admission: Arc<Admission>,
    handshakes: Arc<tokio::sync::Semaphore>,
    max_handshakes: usize,
}

impl Gate {
    fn new(caps: ListenCaps, counts: Arc<ConnectionCounts>) -> Gate {
        let admission = Admission::new(
            Caps {
                total: caps.links,
                per_ip: caps.per_address,
                what: "links",
                total_setting: "max_links",
                per_ip_setting: "max_links_per_address",
            },
            counts,
        );
        Gate {
            admission,
            handshakes: Arc::new(tokio::sync::Semaphore::new(caps.handshakes)),
            max_handshakes: caps.handshakes,
        }
    }

    /// A place for a link from `ip` (none: over a Unix socket, where only the total cap
    /// applies), and a permit for its handshake; or why there is none.
    fn admit(
        &self,
        ip: Option<IpAddr>,
    ) -> Result<(Ticket, tokio::sync::OwnedSemaphorePermit), String> {
        let handshaking = self.handshakes.clone().try_acquire_owned().map_err(|_| {
            format!(
                "{} handshakes are in progress, the most this end takes (max_handshakes)",
                self.max_handshakes
            )
        })?;
        let ticket = match ip {
            Some(ip) => self.admission.admit(ip)?,
            None => self.admission.admit_local()?,
        };
        Ok((ticket, handshaking))
    }
}

/// The peer of an accepted connection, as a [`Listen`] sees it.
trait Peer: Send + 'static {
    /// How `Accepted::remote` and the logs name it.
    fn remote(&self) -> String;
    /// Its IP address, for the per-address cap (none over a Unix socket).
    fn ip(&self) -> Option<IpAddr>;
    /// Why it may not link at all, whatever the caps.
    fn refusal(&self) -> Option<String>;
}

impl Peer for SocketAddr {
    fn remote(&self) -> String {
        self.to_string()
    }
    fn ip(&self) -> Option<IpAddr> {
        Some(SocketAddr::ip(self))
    }
    fn refusal(&self) -> Option<String> {
        None
    }
}

impl Peer for UnixPeer {
    fn remote(&self) -> String {
        match self.pid {
            Some(pid) => format!("unix:pid {pid}"),
            None => "unix:pid unknown".into(),
        }
    }
    fn ip(&self) -> Option<IpAddr> {
        None
    }
    /// A Unix socket serves this process's user only (its effective uid).
    fn refusal(&self) -> Option<String> {
        // SAFETY: geteuid has no preconditions and cannot fail.
        let me = unsafe { libc::geteuid() };
        match self.uid {
            Some(uid) if uid == me => None,
            Some(uid) => Some(format!(
                "the peer runs as uid {uid}, not as this process's user (uid {me})"
            )),
            None => Some("the peer's credentials (SO_PEERCRED) could not be read".into()),
        }
    }
}

/// Checks `settings` before a link on `endpoint` (the one listened on, or connected to)
/// is attempted: settings that could never link are named, and so is a TCP link that
/// would leave its peer unauthenticated off loopback without `allow_unauthenticated`. A
/// Unix socket is on this host and serves this user only, so that rule does not apply.
pub(crate) fn check_settings(
    settings: &LinkSettings,
    endpoint: &Endpoint,
) -> Result<(), LinkError> {
    if !settings.encrypted && !settings.keys.is_empty() {
        return Err(LinkError::Settings(
            "a pre-shared key needs encryption: add encrypted(true)",
        ));
    }
    if !settings.encrypted && settings.identity.is_some() {
        return Err(LinkError::Settings(
            "a static identity needs encryption: add encrypted(true)",
        ));
    }
    if settings.identity.is_none() && !settings.allowed_peers.is_empty() {
        return Err(LinkError::Settings(
            "allow_peers needs an identity: add identity(StaticKey) (both ends need one)",
        ));
    }
    let Endpoint::Tcp(address) = endpoint else {
        return Ok(());
    };
    let authenticated = !settings.keys.is_empty() || !settings.allowed_peers.is_empty();
    if !authenticated
        && !settings.allow_unauthenticated
        && !address.ip().to_canonical().is_loopback()
    {
        return Err(LinkError::Unauthenticated(address.to_string()));
    }
    Ok(())
}

/// Listens for links on a TCP address or a Unix socket path. The creating object
/// receives [`Listening`] (or `NotListening`, which is also the listener's value) and then
/// [`Accepted`](super::Accepted) for each link, sent by the object at the other end.
///
/// Stop the listener to close it and every link it accepted.
///
/// A listener bounds what it serves at once: links (default 1,024), handshakes in progress
/// (default 64) and links from one IP address (default 256; not for Unix sockets). A
/// connection over a cap is closed at once, before its handshake, counted
/// ([`counters`](Self::counters)) and logged (those already served are not touched).
///
/// Who may link is decided by the same builder methods on `Listen` and [`Connect`]:
///
/// | settings | Noise pattern | what it protects against |
/// |---|---|---|
/// | none | — (plaintext) | nothing |
/// | [`encrypted(true)`](Self::encrypted) | `NN` | passive eavesdroppers only: nothing is authenticated, so an active man-in-the-middle can read and change everything |
/// | `+` [`key(psk)`](Self::key) | `NNpsk0` | anyone without the pre-shared key (all its holders look alike) |
/// | `+` [`identity(key)`](Self::identity), [`allow_peers([..])`](Self::allow_peers) | `XX` | anyone whose static key is not allowed; each end learns the other's key |
/// | `+` identity, allow_peers, key | `XXpsk3` | both |
///
/// A TCP link that would not authenticate its peer (no pre-shared key, and no identity
/// with an allow-list) is refused on any address that is not loopback — `Listen` does not
/// listen, `Connect` does not connect, each saying why — unless
/// [`allow_unauthenticated`](Self::allow_unauthenticated) says it is meant. So are
/// settings that could never link (a key or identity without `encrypted`, an allow-list
/// without an identity).
///
/// **Unix sockets** ([`Listen::unix`]) link processes of this host, and only those of this
/// process's user: a connection whose peer (`SO_PEERCRED`) runs under another effective
/// uid is closed before its handshake, counted and logged with its uid, whatever the
/// socket file's permissions. So the loopback rule above does not apply; encryption and
/// keys work as over TCP (off by default), and there is no keep-alive unless asked for. An
/// existing socket file at the path is taken over only when nothing answers at it (a
/// stale file, left by a process that ended); when something does, or the path is not a
/// socket, `NotListening` says so. The listener removes its socket file when it ends (if
/// the path still names the file it made). [`Listening::address`] is the path, and
/// [`Accepted::remote`](super::Accepted::remote) names the peer as `unix:pid N`.
pub struct Listen {
    endpoint: Endpoint,
    settings: LinkSettings,
    caps: ListenCaps,
    counters: LinkCounters,
}

impl Listen {
    /// A listener on the TCP `address` (port 0 picks a free port; see
    /// [`Listening::address`]).
    pub fn new(address: SocketAddr) -> Self {
        Self::on(Endpoint::Tcp(address))
    }

    /// A listener on the Unix socket `path`, for processes of this user on this host (see
    /// the type's doc). The path must fit a socket address (about 107 bytes).
    pub fn unix(path: impl Into<PathBuf>) -> Self {
        Self::on(Endpoint::Unix(path.into()))
    }

    fn on(endpoint: Endpoint) -> Self {
        Listen {
            endpoint,
            settings: LinkSettings::default(),
            caps: ListenCaps {
                links: 1024,
                handshakes: 64,
                per_address: 256,
            },
            counters: LinkCounters::default(),
        }
    }

    /// The listener's counters (links open, connections refused): a handle to keep before
    /// the listener is created.
    pub fn counters(&self) -> LinkCounters {
        self.counters.clone()
    }

    /// The most links served at once (default 1,024; at least 1).
    pub fn max_links(mut self, n: usize) -> Self {
        self.caps.links = n.max(1);
        self
    }

    /// The most handshakes in progress at once (default 64; at least 1).
    pub fn max_handshakes(mut self, n: usize) -> Self {
        self.caps.handshakes = n.max(1);
        self
    }

    /// The most links from one IP address at once (default 256; at least 1). Not for Unix
    /// sockets, whose peers have no address.
    pub fn max_links_per_address(mut self, n: usize) -> Self {
        self.caps.per_address = n.max(1);
        self
    }

    link_options!();
}

impl Object for Listen {
    fn kind(&self) -> &'static str {
        "listen"
    }

    fn run(self, core: Core) {
        Async::new(move |cx| listen(cx, self)).run(core)
    }
}

async fn listen(mut cx: AsyncContext, this: Listen) -> AnyMessage {
    let owner = cx.parent();
    if let Err(e) = check_settings(&this.settings, &this.endpoint) {
        let fault = NotListening::new(format!("not listening on {}: {e}", this.endpoint));
        tracing::warn!(target: "strata::net", endpoint = %this.endpoint, reason = %e, "not listening");
        cx.notify(owner, fault.clone());
        return AnyMessage::new(fault);
    }
    match this.endpoint.clone() {
        Endpoint::Tcp(address) => match Listener::bind(&mut cx, address, owner).await {
            Ok(listener) => serve(cx, listener, this, owner).await,
            Err(fault) => AnyMessage::new(fault),
        },
        Endpoint::Unix(path) => match Listener::bind_unix(&mut cx, &path, owner).await {
            Ok(listener) => serve(cx, listener, this, owner).await,
            Err(fault) => AnyMessage::new(fault),
        },
    }
}

/// Accepts links on `listener` until the listener object is stopped, then stops them.
async fn serve<A>(
    mut cx: AsyncContext,
    mut listener: Listener<A>,
    this: Listen,
    owner: Address,
) -> AnyMessage
where
    A: Accept,
    A::Stream: LinkStream,
    A::Peer: Peer,
{
    tracing::info!(target: "strata::net", address = %listener.bound(), encrypted = this.settings.encrypted, "listening");
    let gate = Gate::new(this.caps, this.counters.0.clone());
    while let Some((stream, peer)) = listener.accept(&mut cx).await {
        let remote = peer.remote();
        let admitted = match peer.refusal() {
            Some(why) => Err(why),
            None => gate.admit(peer.ip()),
        };
        let (ticket, handshaking) = match admitted {
            Ok(admitted) => admitted,
            Err(why) => {
                // Counted, then closed unread: nothing more is spent on it.
                gate.admission.refused(&remote, &why);
                drop(stream);
                continue;
            }
        };
        let settings = this.settings.clone();
        cx.create(Async::new(move |mut cx: AsyncContext| async move {
            let ran = link::run(
                &mut cx,
                stream,
                Role::Accepting,
                owner,
                remote.clone(),
                settings,
                Some(handshaking),
            )
            .await;
            drop(ticket);
            match ran {
                Ok(closed) => AnyMessage::new(closed),
                Err(reason) => {
                    tracing::info!(target: "strata::net", %remote, %reason, "connection refused");
                    AnyMessage::new(NotConnected::new(reason.to_string()))
                }
            }
        }));
    }
    drop(listener);
    stop_children(&mut cx).await;
    AnyMessage::new(Aborted::new("listener stopped"))
}

/// Stops every child and waits (up to 5 s) for them to return.
async fn stop_children(cx: &mut AsyncContext) {
    let children: Vec<Address> = cx.children().collect();
    for c in &children {
        cx.stop(*c);
    }
    let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
    while cx.children().next().is_some() {
        if tokio::time::timeout_at(deadline, cx.recv()).await.is_err() {
            break;
        }
    }
}

/// Connects a link to a TCP address or a Unix socket path. The creating object receives
/// [`Connected`](super::Connected), sent by the listening object at the other end, or
/// `NotConnected` with the reason (which is also this object's value). When the link ends,
/// the creating object receives [`Closed`].
///
/// Stop it to close the link.
pub struct Connect {
    endpoint: Endpoint,
    settings: LinkSettings,
    timeout: Duration,
}

impl Connect {
    /// A link to the TCP `address`.
    pub fn new(address: SocketAddr) -> Self {
        Self::to(Endpoint::Tcp(address))
    }

    /// A link to the Unix socket `path`, where a [`Listen::unix`] of this host listens (it
    /// accepts processes of its own user only). `Connected::remote` reads `unix:PATH`.
    pub fn unix(path: impl Into<PathBuf>) -> Self {
        Self::to(Endpoint::Unix(path.into()))
    }

    fn to(endpoint: Endpoint) -> Self {
        Connect {
            endpoint,
            settings: LinkSettings::default(),
            timeout: Duration::from_secs(5),
        }
    }

    /// The time allowed to establish the connection (default 5 s).
    pub fn connect_timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }

    link_options!();
}

impl Object for Connect {
    fn kind(&self) -> &'static str {
        "connect"
    }

    fn run(self, core: Core) {
        Async::new(move |cx| connect(cx, self)).run(core)
    }
}

async fn connect(mut cx: AsyncContext, this: Connect) -> AnyMessage {
    let owner = cx.parent();
    let endpoint = &this.endpoint;
    let refuse = |cx: &AsyncContext, reason: String| {
        tracing::info!(target: "strata::net", %endpoint, %reason, "not connected");
        let fault = NotConnected::new(reason);
        cx.notify(owner, fault.clone());
        AnyMessage::new(fault)
    };
    if let Err(e) = check_settings(&this.settings, endpoint) {
        return refuse(&cx, format!("not connecting to {endpoint}: {e}"));
    }
    let ran = match endpoint {
        Endpoint::Tcp(address) => {
            match tokio::time::timeout(this.timeout, tokio::net::TcpStream::connect(address)).await
            {
                Ok(Ok(stream)) => {
                    let _ = stream.set_nodelay(true);
                    let remote = address.to_string();
                    let settings = this.settings.clone();
                    link::run(
                        &mut cx,
                        stream,
                        Role::Connecting,
                        owner,
                        remote,
                        settings,
                        None,
                    )
                    .await
                }
                Ok(Err(e)) => return refuse(&cx, format!("cannot connect to {endpoint}: {e}")),
                Err(_) => return refuse(&cx, format!("cannot connect to {endpoint}: timed out")),
            }
        }
        Endpoint::Unix(path) => {
            match tokio::time::timeout(this.timeout, tokio::net::UnixStream::connect(path)).await {
                Ok(Ok(stream)) => {
                    let remote = endpoint.to_string();
                    let settings = this.settings.clone();
                    link::run(
                        &mut cx,
                        stream,
                        Role::Connecting,
                        owner,
                        remote,
                        settings,
                        None,
                    )
                    .await
                }
                Ok(Err(e)) => return refuse(&cx, format!("cannot connect to {endpoint}: {e}")),
                Err(_) => return refuse(&cx, format!("cannot connect to {endpoint}: timed out")),
            }
        }
    };
    match ran {
        Ok(closed) => AnyMessage::new::<Closed>(closed),
        Err(reason) => refuse(&cx, reason.to_string()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::net::keys::StaticKey;

    fn at(address: &str) -> SocketAddr {
        address.parse().unwrap()
    }

    fn check(l: Listen) -> Result<(), String> {
        check_settings(&l.settings, &l.endpoint).map_err(|e| e.to_string())
    }

    #[test]
    fn unauthenticated_links_are_refused_off_loopback_unless_allowed() {
        for loopback in [
            "127.0.0.1:1",
            "127.8.9.10:1",
            "[::1]:1",
            "[::ffff:127.0.0.1]:1",
        ] {
            assert_eq!(check(Listen::new(at(loopback))), Ok(()), "{loopback}");
            assert_eq!(check(Listen::new(at(loopback)).encrypted(true)), Ok(()));
        }
        for open in [
            "0.0.0.0:5051",
            "192.0.2.7:5051",
            "[::]:5051",
            "[2001:db8::1]:5051",
        ] {
            for l in [Listen::new(at(open)), Listen::new(at(open)).encrypted(true)] {
                let e = check(l).unwrap_err();
                assert!(e.contains(open) && e.contains("not loopback"), "{e}");
                assert!(e.contains("allow_unauthenticated"), "{e}");
            }
            let allowed = Listen::new(at(open))
                .encrypted(true)
                .allow_unauthenticated();
            assert_eq!(check(allowed), Ok(()));
            let psk = Listen::new(at(open)).encrypted(true).key([1; 32]);
            assert_eq!(check(psk), Ok(()));
        }
    }

    #[test]
    fn unix_sockets_are_exempt_from_the_loopback_rule_but_not_from_consistency() {
        let path = "/nonexistent/strata.sock";
        assert_eq!(check(Listen::unix(path)), Ok(()));
        assert_eq!(check(Listen::unix(path).encrypted(true)), Ok(()));
        let e = check(Listen::unix(path).key([1; 32])).unwrap_err();
        assert!(e.contains("needs encryption"), "{e}");
        let c = Connect::unix(path);
        assert_eq!(
            check_settings(&c.settings, &c.endpoint).map_err(|e| e.to_string()),
            Ok(())
        );
        assert_eq!(c.endpoint.to_string(), "unix:/nonexistent/strata.sock");
    }

    #[test]
    fn the_directory_settings_are_set_by_crate_private_builders() {
        let a = Address::from_parts(crate::address::local_node(), 5);
        let l = Listen::unix("/nonexistent/x.sock")
            .grant(a)
            .reach_public(true);
        assert_eq!(l.settings.grants, vec![a]);
        assert!(l.settings.reach_public);
        let c = Connect::new(at("127.0.0.1:1")).grant(a);
        assert_eq!(c.settings.grants, vec![a]);
        assert!(!c.settings.reach_public, "off by default");
    }

    #[cfg(feature = "noise")]
    #[test]
    fn static_keys_authenticate_only_with_an_allow_list() {
        let me = StaticKey::generate().unwrap();
        let peer = StaticKey::generate().unwrap().public();
        let open = at("192.0.2.7:5051");
        let allowed = Listen::new(open)
            .encrypted(true)
            .identity(me.clone())
            .allow_peers([peer]);
        assert_eq!(check(allowed), Ok(()));
        // An identity alone accepts any peer key: not authentication of who the peer is.
        let anyone = Listen::new(open).encrypted(true).identity(me.clone());
        assert!(check(anyone).unwrap_err().contains("not loopback"));
        let on_loopback = Listen::new(at("127.0.0.1:0")).encrypted(true).identity(me);
        assert_eq!(check(on_loopback), Ok(()));
    }

    #[cfg(feature = "noise")]
    #[test]
    fn settings_that_could_never_link_are_named() {
        let me = StaticKey::generate().unwrap();
        let here = at("127.0.0.1:0");
        let e = check(Listen::new(here).key([1; 32])).unwrap_err();
        assert_eq!(
            e,
            "bad link settings: a pre-shared key needs encryption: add encrypted(true)"
        );
        let e = check(Listen::new(here).identity(me.clone())).unwrap_err();
        assert!(e.contains("static identity needs encryption"), "{e}");
        let e = check(Listen::new(here).encrypted(true).allow_peers([me.public()])).unwrap_err();
        assert!(e.contains("allow_peers needs an identity"), "{e}");
    }
}
