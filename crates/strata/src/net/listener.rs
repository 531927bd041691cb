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
//! [`bind`]: Listener::bind
//! [`accept`]: Listener::accept

use std::net::SocketAddr;
use std::time::Duration;

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
