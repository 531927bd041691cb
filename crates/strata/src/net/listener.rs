//! `Listener`: the accept loop shared by objects that serve a TCP port.
//!
//! [`Listen`](super::Listen) (links) and [`HttpServer`](crate::http::HttpServer) both
//! bind an address, tell their owner whether that worked — [`Listening`] with the bound
//! address, or [`NotListening`] with why, as a notice from the serving object — and accept
//! connections until the object is asked to [`Stop`]. That is this helper: [`bind`]
//! announces, [`accept`] yields connections (`TCP_NODELAY` set) and ends with `None` on
//! `Stop`. A failed accept (out of descriptors, say) is logged and waited out for 50 ms
//! instead of spinning; the wait survives the `accept` future being dropped by a
//! `select!`.
//!
//! Both also bound what they serve at once with an [`Admission`]: connections in all and
//! per client IP address. A connection over a cap is refused (closed unread by the
//! caller), counted, and logged (each at `debug`, at `warn` at most once a second); an
//! admitted one holds a [`Ticket`] that gives its place back when dropped, however its
//! task ends.
//!
//! [`bind`]: Listener::bind
//! [`accept`]: Listener::accept

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
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

/// A bound TCP listener serving one object (see the module doc).
pub(crate) struct Listener {
    listener: tokio::net::TcpListener,
    bound: String,
    /// Accepting waits until then after a failure.
    resume_at: Option<tokio::time::Instant>,
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
            listener,
            bound,
            resume_at: None,
        })
    }

    /// The address actually bound.
    pub(crate) fn bound(&self) -> &str {
        &self.bound
    }

    /// The next connection, with `TCP_NODELAY` set; `None` once `cx`'s object receives
    /// `Stop` (other messages to it are dropped). Cancel-safe.
    pub(crate) async fn accept(
        &mut self,
        cx: &mut AsyncContext,
    ) -> Option<(tokio::net::TcpStream, SocketAddr)> {
        loop {
            let resume_at = self.resume_at;
            tokio::select! {
                _ = async { tokio::time::sleep_until(resume_at.expect("set")).await }, if resume_at.is_some() => {
                    self.resume_at = None;
                }
                accepted = self.listener.accept(), if resume_at.is_none() => match accepted {
                    Ok((stream, peer)) => {
                        let _ = stream.set_nodelay(true);
                        return Some((stream, peer));
                    }
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
        let ip = ip.to_canonical();
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
        let mine = per_ip.entry(ip).or_insert(0);
        if *mine >= max_per_ip {
            return Err(format!(
                "{ip} has {mine} {what} open, the most one address may have ({per_ip_setting})"
            ));
        }
        *mine += 1;
        self.counts.open.store(open + 1, Ordering::Relaxed);
        Ok(Ticket {
            admission: self.clone(),
            ip,
        })
    }

    /// Counts and logs a refused connection from `peer`: each at `debug`, and at `warn`
    /// at most once a second (a flood of connections must not become one of log lines).
    pub(crate) fn refused(&self, peer: SocketAddr, reason: &str) {
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
    ip: IpAddr,
}

impl Drop for Ticket {
    fn drop(&mut self) {
        let mut per_ip = self.admission.per_ip.lock();
        if let Some(n) = per_ip.get_mut(&self.ip) {
            *n -= 1;
            if *n == 0 {
                per_ip.remove(&self.ip);
            }
        }
        self.admission.counts.open.fetch_sub(1, Ordering::Relaxed);
    }
}
