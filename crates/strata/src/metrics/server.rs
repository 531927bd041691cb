//! The `/metrics` endpoint: hyper on the runtime's threads.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http_body_util::Full;
use hyper::body::Incoming;
use hyper::header::{HeaderValue, ALLOW, CONTENT_TYPE};
use hyper::{Method, Request, Response, StatusCode};
use hyper_util::rt::{TokioIo, TokioTimer};

use super::MetricsError;
use crate::runtime;

/// Scrapes served at once; a connection beyond them is closed unread.
const MAX_CONNECTIONS: usize = 64;

/// How long a client may take to send its request's head.
const READ_TIMEOUT: Duration = Duration::from_secs(10);

/// A running `/metrics` endpoint (see [`serve`]). Dropping the handle leaves it serving
/// until the process ends; [`stop`](Self::stop) ends it.
#[derive(Debug)]
pub struct MetricsServer {
    address: SocketAddr,
    task: tokio::task::AbortHandle,
}

impl MetricsServer {
    /// Where it listens (the port chosen, when asked for port 0).
    pub fn address(&self) -> SocketAddr {
        self.address
    }

    /// Stops listening (scrapes under way finish).
    pub fn stop(self) {
        self.task.abort();
    }
}

/// Serves this process's figures ([`super::gather`]) at `http://ADDRESS/metrics` in the
/// Prometheus text format, until the process ends or [`MetricsServer::stop`]. Binds at
/// once, so a busy port is an error here. Every scrape runs as its own task on the
/// runtime and asks the objects with messages: nothing blocks a runtime thread.
pub fn serve(address: SocketAddr) -> Result<MetricsServer, MetricsError> {
    let cannot = |e: std::io::Error| MetricsError::CannotListen {
        address: address.to_string(),
        why: e.to_string(),
    };
    let std_listener = std::net::TcpListener::bind(address).map_err(cannot)?;
    std_listener.set_nonblocking(true).map_err(cannot)?;
    let bound = std_listener.local_addr().map_err(cannot)?;
    let handle = runtime::handle();
    let listener = {
        let _entered = handle.enter();
        tokio::net::TcpListener::from_std(std_listener).map_err(cannot)?
    };
    let task = handle.spawn(accept(listener));
    tracing::info!(target: "strata::metrics", address = %bound, "serving metrics at http://{bound}/metrics");
    Ok(MetricsServer {
        address: bound,
        task: task.abort_handle(),
    })
}

async fn accept(listener: tokio::net::TcpListener) {
    let slots = Arc::new(tokio::sync::Semaphore::new(MAX_CONNECTIONS));
    let mut connections = tokio::task::JoinSet::new();
    loop {
        tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok((stream, peer)) => match slots.clone().try_acquire_owned() {
                    Ok(slot) => {
                        connections.spawn(async move {
                            connection(stream).await;
                            drop(slot);
                        });
                    }
                    Err(_) => {
                        tracing::debug!(target: "strata::metrics", %peer,
                            "{MAX_CONNECTIONS} scrapes under way: connection closed");
                    }
                },
                Err(e) => {
                    // Out of descriptors, most often: wait a little rather than spin.
                    tracing::warn!(target: "strata::metrics", error = %e, "cannot accept");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                }
            },
            Some(_) = connections.join_next(), if !connections.is_empty() => {}
        }
    }
}

async fn connection(stream: tokio::net::TcpStream) {
    let conn = hyper::server::conn::http1::Builder::new()
        .timer(TokioTimer::new())
        .header_read_timeout(READ_TIMEOUT)
        .keep_alive(true)
        .serve_connection(
            TokioIo::new(stream),
            hyper::service::service_fn(|req| async move { Ok::<_, Infallible>(answer(req).await) }),
        );
    if let Err(e) = conn.await {
        tracing::debug!(target: "strata::metrics", error = %e, "scrape connection ended with an error");
    }
}

async fn answer(req: Request<Incoming>) -> Response<Full<Bytes>> {
    let plain = |status: StatusCode, text: &str| {
        let mut r = Response::new(Full::new(Bytes::from(format!("{text}\n"))));
        *r.status_mut() = status;
        r.headers_mut().insert(
            CONTENT_TYPE,
            HeaderValue::from_static("text/plain; charset=utf-8"),
        );
        r
    };
    if req.uri().path() != "/metrics" {
        return plain(
            StatusCode::NOT_FOUND,
            &format!("no {}: the figures are at /metrics", req.uri().path()),
        );
    }
    if req.method() != Method::GET && req.method() != Method::HEAD {
        let mut r = plain(StatusCode::METHOD_NOT_ALLOWED, "/metrics takes GET");
        r.headers_mut()
            .insert(ALLOW, HeaderValue::from_static("GET, HEAD"));
        return r;
    }
    let text = super::gather().await.to_prometheus_text();
    let mut r = Response::new(Full::new(Bytes::from(text)));
    r.headers_mut().insert(
        CONTENT_TYPE,
        HeaderValue::from_static(prometheus_client::encoding::prometheus_text::CONTENT_TYPE),
    );
    r
}
