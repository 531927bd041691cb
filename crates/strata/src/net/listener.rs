//! `Listener`: the accept loop shared by objects that serve a TCP port or a Unix socket.
//!
//! [`Listen`](super::Listen) (links) and [`HttpServer`](crate::http::HttpServer) both
//! bind an address, tell their owner whether that worked — [`Listening`] with the bound
//! address, or [`NotListening`] with why, as a notice from the serving object — and accept
//! connections until the object is asked to [`Stop`]. That is this helper: [`bind`]
//! (TCP) and [`bind_unix`] announce, [`accept`] yields connections (TCP: `TCP_NODELAY`
//! set; Unix: with the peer's credentials) and ends with `None` on `Stop`. A failed accept
//! (out of descriptors, say) is logged and waited out for 50 ms instead of spinning; the
//! wait survives the `accept` future being dropped by a `select!`.
//!
//! A Unix socket path is taken over only when it is *stale*: a socket file that nothing
//! answers at (`ECONNREFUSED`) is removed and bound again; a path where something answers,
//! or that is not a socket, is refused with the reason. The listener removes its socket
//! file when it is dropped — only if the path still names the file it made (same device
//! and inode), so it never removes a successor's.
//!
//! Both also bound what they serve at once with an [`Admission`]: connections in all and
//! per client IP address (a Unix socket has none: only the total applies). A connection
//! over a cap is refused (closed unread by the caller), counted, and logged (each at
//! `debug`, at `warn` at most once a second); an admitted one holds a [`Ticket`] that
//! gives its place back when dropped, however its task ends.
//!
//! [`bind`]: Listener::bind
//! [`bind_unix`]: Listener::bind_unix
//! [`accept`]: Listener::accept

use std::collections::HashMap;
use std::future::Future;
use std::net::{IpAddr, SocketAddr};
use std::os::unix::fs::{FileTypeExt, MetadataExt};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use parking_lot::Mutex;

use super::Listening;
use crate::object::AsyncContext;
use crate::standard::{NotListening, Stop};
use crate::Address;

/// How long to wait after a failed accept.
const ACCEPT_BACK_OFF: Duration = Duration::from_millis(50);

/// How long the probe of an existing socket file may take to connect before the path
/// counts as taken (a live listener with a full backlog does not answer at once).
const PROBE_TIMEOUT: Duration = Duration::from_secs(1);

/// What a [`Listener`] accepts from: a bound socket that yields connections.
pub(crate) trait Accept: Send + 'static {
    /// A connection.
    type Stream: Send + 'static;
    /// Who is at the other end.
    type Peer: Send + 'static;
    /// The next connection (cancel-safe).
    fn accept_one(
        &self,
    ) -> impl Future<Output = std::io::Result<(Self::Stream, Self::Peer)>> + Send + '_;
}

impl Accept for tokio::net::TcpListener {
    type Stream = tokio::net::TcpStream;
    type Peer = SocketAddr;
    async fn accept_one(&self) -> std::io::Result<(tokio::net::TcpStream, SocketAddr)> {
        let (stream, peer) = self.accept().await?;
        let _ = stream.set_nodelay(true);
        Ok((stream, peer))
    }
}

/// The peer of a Unix socket connection, as the kernel reports it (`SO_PEERCRED`: the
/// process that connected).
#[derive(Debug, Clone, Copy)]
pub(crate) struct UnixPeer {
    /// Its effective user id; `None` when the credentials could not be read.
    pub(crate) uid: Option<u32>,
    /// Its process id, when known.
    pub(crate) pid: Option<i32>,
}

/// A bound Unix socket, and its socket file (removed when this is dropped).
pub(crate) struct UnixAcceptor {
    /// Dropped first, while the socket is still open: its inode cannot be freed and
    /// reused by a successor's file meanwhile, so the comparison is sound.
    _file: SocketFile,
    listener: tokio::net::UnixListener,
}

impl Accept for UnixAcceptor {
    type Stream = tokio::net::UnixStream;
    type Peer = UnixPeer;
    async fn accept_one(&self) -> std::io::Result<(tokio::net::UnixStream, UnixPeer)> {
        let (stream, _) = self.listener.accept().await?;
        let peer = match stream.peer_cred() {
            Ok(cred) => UnixPeer {
                uid: Some(cred.uid()),
                pid: cred.pid(),
            },
            Err(_) => UnixPeer {
                uid: None,
                pid: None,
            },
        };
        Ok((stream, peer))
    }
}

/// The socket file a [`UnixAcceptor`] made: removed on drop while the path still names it.
struct SocketFile {
    path: PathBuf,
    dev: u64,
    ino: u64,
}

impl Drop for SocketFile {
    fn drop(&mut self) {
        match std::fs::symlink_metadata(&self.path) {
            Ok(m) if m.dev() == self.dev && m.ino() == self.ino => {
                if let Err(e) = std::fs::remove_file(&self.path) {
                    tracing::warn!(target: "strata::net", path = %self.path.display(), error = %e, "cannot remove the socket file");
                }
            }
            // Gone, or replaced by someone else's: not ours to remove.
            _ => {}
        }
    }
}

/// Makes `path` free to bind: nothing there, or a stale socket file (which is removed).
/// Why not, otherwise.
async fn clear_stale(path: &Path) -> Result<(), String> {
    let meta = match std::fs::symlink_metadata(path) {
        Ok(m) => m,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
        Err(e) => return Err(e.to_string()),
    };
    if !meta.file_type().is_socket() {
        return Err("the path exists and is not a socket".into());
    }
    match tokio::time::timeout(PROBE_TIMEOUT, tokio::net::UnixStream::connect(path)).await {
        Ok(Ok(_)) | Err(_) => Err("something is listening at that path".into()),
        Ok(Err(e)) if e.kind() == std::io::ErrorKind::ConnectionRefused => {
            match std::fs::remove_file(path) {
                Ok(()) => {}
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                Err(e) => return Err(format!("cannot remove the stale socket file: {e}")),
            }
            tracing::info!(target: "strata::net", path = %path.display(), "removed a stale socket file (nothing listened at it)");
            Ok(())
        }
        Ok(Err(e)) => Err(format!(
            "a socket file is there and cannot be probed ({e}): is something listening?"
        )),
    }
}

/// A bound listener serving one object (see the module doc): TCP by default, or Unix.
pub(crate) struct Listener<A = tokio::net::TcpListener> {
    acceptor: A,
    bound: String,
    /// Accepting waits until then after a failure.
    resume_at: Option<tokio::time::Instant>,
}

impl Listener<UnixAcceptor> {
    /// Binds the Unix socket `path` (taking over a stale socket file, see the module doc)
    /// and tells `owner`, as a notice from `cx`'s object: `Listening` with the path, or
    /// `NotListening` — which is returned too, for the object to end with.
    pub(crate) async fn bind_unix(
        cx: &mut AsyncContext,
        path: &Path,
        owner: Address,
    ) -> Result<Listener<UnixAcceptor>, NotListening> {
        let bound = async {
            clear_stale(path).await?;
            let listener = tokio::net::UnixListener::bind(path).map_err(|e| e.to_string())?;
            let meta = std::fs::symlink_metadata(path).map_err(|e| e.to_string())?;
            Ok::<_, String>(UnixAcceptor {
                _file: SocketFile {
                    path: path.to_path_buf(),
                    dev: meta.dev(),
                    ino: meta.ino(),
                },
                listener,
            })
        };
        let acceptor = match bound.await {
            Ok(a) => a,
            Err(why) => {
                let fault =
                    NotListening::new(format!("cannot listen on {}: {why}", path.display()));
                cx.notify(owner, fault.clone());
                return Err(fault);
            }
        };
        let bound = path.display().to_string();
        cx.notify(
            owner,
            Listening {
                address: bound.clone(),
            },
        );
        Ok(Listener {
            acceptor,
            bound,
            resume_at: None,
        })
    }
}

impl Listener {
    /// Binds `address` and tells `owner`, as a notice from `cx`'s object: `Listening` with
    /// the bound address, or `NotListening` — which is returned too, for the object to end
    /// with.
    pub(crate) async fn bind(
        cx: &mut AsyncContext,
        address: SocketAddr,
        owner: Address,
    ) -> Result<Listener, NotListening> {
        let listener = match tokio::net::TcpListener::bind(address).await {
            Ok(l) => l,
            Err(e) => {
                let fault = NotListening::new(format!("cannot listen on {address}: {e}"));
                cx.notify(owner, fault.clone());
                return Err(fault);
            }
        };
        let bound = listener
            .local_addr()
            .map(|a| a.to_string())
            .unwrap_or_default();
        cx.notify(
            owner,
            Listening {
                address: bound.clone(),
            },
        );
        Ok(Listener {
            acceptor: listener,
            bound,
            resume_at: None,
        })
    }
}

impl<A: Accept> Listener<A> {
    /// The address actually bound (a Unix socket's path).
    pub(crate) fn bound(&self) -> &str {
        &self.bound
    }

    /// The next connection (TCP: with `TCP_NODELAY` set) and its peer; `None` once `cx`'s
    /// object receives `Stop` (other messages to it are dropped). Cancel-safe.
    pub(crate) async fn accept(&mut self, cx: &mut AsyncContext) -> Option<(A::Stream, A::Peer)> {
        loop {
            let resume_at = self.resume_at;
            tokio::select! {
                _ = async { tokio::time::sleep_until(resume_at.expect("set")).await }, if resume_at.is_some() => {
                    self.resume_at = None;
                }
                accepted = self.acceptor.accept_one(), if resume_at.is_none() => match accepted {
                    Ok(connection) => return Some(connection),
                    Err(e) => {
                        tracing::warn!(target: "strata::net", address = %self.bound, error = %e, "accept failed");
                        self.resume_at = Some(tokio::time::Instant::now() + ACCEPT_BACK_OFF);
                    }
                },
                e = cx.recv() => {
                    if e.is::<Stop>() {
                        return None;
                    }
                }
            }
        }
    }
}

/// Counts of a served port's connections, shared with whoever reads them.
#[derive(Debug, Default)]
pub(crate) struct ConnectionCounts {
    /// Connections admitted and not yet ended.
    pub(crate) open: AtomicUsize,
    /// Connections refused because a cap was reached.
    pub(crate) refused: AtomicU64,
}

/// The caps of an [`Admission`], with the names of the settings that set them (the
/// refusals name them).
#[derive(Debug, Clone, Copy)]
pub(crate) struct Caps {
    /// The most connections at once.
    pub(crate) total: usize,
    /// The most connections at once from one IP address.
    pub(crate) per_ip: usize,
    /// What is counted ("links", "connections").
    pub(crate) what: &'static str,
    /// The settings' names.
    pub(crate) total_setting: &'static str,
    pub(crate) per_ip_setting: &'static str,
}

/// The connections served now, in all and per client IP address, against their caps (see
/// the module doc).
pub(crate) struct Admission {
    caps: Caps,
    /// Open connections per address (addresses with none are removed); locked only when
    /// a connection is admitted or ends.
    per_ip: Mutex<HashMap<IpAddr, usize>>,
    counts: Arc<ConnectionCounts>,
    last_warning: Mutex<Option<tokio::time::Instant>>,
}

impl Admission {
    /// An admission for `caps`, counting into `counts`.
    pub(crate) fn new(caps: Caps, counts: Arc<ConnectionCounts>) -> Arc<Admission> {
        Arc::new(Admission {
            caps,
            per_ip: Mutex::new(HashMap::new()),
            counts,
            last_warning: Mutex::new(None),
        })
    }

    /// A place for a connection from `ip` (IPv4 mapped into IPv6 counts as IPv4), or why
    /// there is none.
    pub(crate) fn admit(self: &Arc<Self>, ip: IpAddr) -> Result<Ticket, String> {
        self.admit_from(Some(ip))
    }

    /// A place for a connection on this host over a Unix socket, which only the total cap
    /// applies to (it has no IP address), or why there is none.
    pub(crate) fn admit_local(self: &Arc<Self>) -> Result<Ticket, String> {
        self.admit_from(None)
    }

    fn admit_from(self: &Arc<Self>, ip: Option<IpAddr>) -> Result<Ticket, String> {
        let ip = ip.map(|ip| ip.to_canonical());
        let Caps {
            total: max_total,
            per_ip: max_per_ip,
            what,
            total_setting,
            per_ip_setting,
        } = self.caps;
        let mut per_ip = self.per_ip.lock();
        let open = self.counts.open.load(Ordering::Relaxed);
        if open >= max_total {
            return Err(format!(
                "{open} {what} are open, the most this end takes ({total_setting})"
            ));
        }
        if let Some(ip) = ip {
            let mine = per_ip.entry(ip).or_insert(0);
            if *mine >= max_per_ip {
                return Err(format!(
                    "{ip} has {mine} {what} open, the most one address may have ({per_ip_setting})"
                ));
            }
            *mine += 1;
        }
        self.counts.open.store(open + 1, Ordering::Relaxed);
        Ok(Ticket {
            admission: self.clone(),
            ip,
        })
    }

    /// Counts and logs a refused connection from `peer`: each at `debug`, and at `warn`
    /// at most once a second (a flood of connections must not become one of log lines).
    pub(crate) fn refused(&self, peer: impl std::fmt::Display, reason: &str) {
        let total = self.counts.refused.fetch_add(1, Ordering::Relaxed) + 1;
        tracing::debug!(target: "strata::net", %peer, reason, "connection refused");
        let now = tokio::time::Instant::now();
        let mut last = self.last_warning.lock();
        if last.is_none_or(|t| now.duration_since(t) >= Duration::from_secs(1)) {
            *last = Some(now);
            tracing::warn!(target: "strata::net", %peer, reason, refused = total,
                "connection refused (logged at most once a second; `refused` counts them all)");
        }
    }
}

/// An admitted connection's place: given back when dropped.
pub(crate) struct Ticket {
    admission: Arc<Admission>,
    /// The client's IP address (none over a Unix socket).
    ip: Option<IpAddr>,
}

impl Drop for Ticket {
    fn drop(&mut self) {
        // Under the lock `admit` counts under.
        let mut per_ip = self.admission.per_ip.lock();
        if let Some(ip) = self.ip {
            if let Some(n) = per_ip.get_mut(&ip) {
                *n -= 1;
                if *n == 0 {
                    per_ip.remove(&ip);
                }
            }
        }
        self.admission.counts.open.fetch_sub(1, Ordering::Relaxed);
        drop(per_ip);
    }
}
