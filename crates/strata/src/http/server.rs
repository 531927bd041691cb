//! The HTTP server front: requests become messages, replies become responses.
//!
//! [`HttpServer`] is an object. Its creator (the *service*) receives one message per
//! request, sent from a private reply address; whatever is sent back to that address —
//! by the service or by a worker it forwarded the request to — becomes the response:
//!
//! | reply | response |
//! |---|---|
//! | any message | `200`, the value as JSON (or `{"type", "value"}` with `Strata-Envelope: typed`) |
//! | `Busy`, `Overloaded`, `OutOfService`, `TemporarilyUnavailable` | `503` with `Retry-After` |
//! | `TimedOut`, or no reply within the request time-out | `504` |
//! | any other fault | `500` |
//! | a reply whose JSON is larger than [`max_reply`](HttpServer::max_reply) | `500` naming the limit; the reply is not sent |
//!
//! Error bodies are JSON: `{"error": NAME, "reason": TEXT}`, plus `"fault"` (the typed
//! fault) when the request asked for typed replies.
//!
//! Bad input never reaches the service: an unknown path is `404`, a method the route does
//! not take `405` (with `Allow`), a body over the limit `413`, input that does not decode
//! `400` with a JSON error naming the field, a request whose body stalls `408`. Every
//! request gets exactly one response, also when the service ends first (`503`).
//!
//! What one client can hold is bounded too (see [`HttpServer`] for the settings and their
//! defaults):
//!
//! * **connections**, in all and per client IP address: a connection over either cap is
//!   closed as soon as it is accepted, before anything is read or written, and counted;
//!   the connections already open are not touched;
//! * **time to send** a request's head or body (`read_timeout`), and **time to take** a
//!   response (`write_timeout`): a client that stops reading a reply has its connection
//!   dropped, which frees its task, its buffers and its descriptor;
//! * **reply size** (`max_reply`).
//!
//! [`HttpServer::counters`] tells, while the server runs, how many connections are open
//! and how often each bound was hit.

use std::convert::Infallible;
use std::future::Future;
use std::io;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::task::{self, Poll};
use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Full, Limited};
use hyper::body::Incoming;
use hyper::header::{HeaderValue, ALLOW, CONTENT_LENGTH, CONTENT_TYPE, RETRY_AFTER};
use hyper::{Request, Response, StatusCode};
use hyper_util::rt::{TokioIo, TokioTimer};
use serde_json::json;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};

use super::api::{has_body, Api, Found};
use crate::message::fields::InputError;
use crate::message::{codec, AnyMessage};
use crate::net::listener::{Admission, Caps, ConnectionCounts, Listener, Ticket};
use crate::object::{Async, AsyncContext, Core, Object, Postbox};
use crate::runtime::SendError;
use crate::standard::{
    Aborted, Busy, Faulted, OutOfService, Overloaded, TemporarilyUnavailable, TimedOut,
};
use crate::Address;

/// Limits and time-outs of an [`HttpServer`] (set through its builder methods, which give
/// the defaults).
#[derive(Debug, Clone)]
pub struct HttpSettings {
    max_body: usize,
    max_header: usize,
    request_timeout: Duration,
    read_timeout: Duration,
    write_timeout: Duration,
    retry_after: u32,
    max_connections: usize,
    max_connections_per_ip: usize,
    max_reply: usize,
}

impl Default for HttpSettings {
    fn default() -> Self {
        HttpSettings {
            max_body: 1 << 20,
            max_header: 16 * 1024,
            request_timeout: Duration::from_secs(30),
            read_timeout: Duration::from_secs(10),
            write_timeout: Duration::from_secs(10),
            retry_after: 1,
            max_connections: 1024,
            max_connections_per_ip: 256,
            max_reply: 32 << 20,
        }
    }
}

/// What an [`HttpServer`] has had to bound so far, readable while it runs.
///
/// A handle: clones share the same counters. Take one with [`HttpServer::counters`]
/// before creating the server.
#[derive(Debug, Clone, Default)]
pub struct HttpCounters(Arc<Counts>);

#[derive(Debug, Default)]
struct Counts {
    connections: Arc<ConnectionCounts>,
    write_timeouts: AtomicU64,
    too_large: AtomicU64,
}

impl HttpCounters {
    /// Connections open now (accepted and not yet closed).
    pub fn open_connections(&self) -> usize {
        self.0.connections.open.load(Ordering::Relaxed)
    }

    /// Connections closed as soon as they were accepted because a cap was reached
    /// ([`max_connections`](HttpServer::max_connections) or
    /// [`max_connections_per_ip`](HttpServer::max_connections_per_ip)).
    pub fn refused_connections(&self) -> u64 {
        self.0.connections.refused.load(Ordering::Relaxed)
    }

    /// Connections dropped because a response was not taken within
    /// [`write_timeout`](HttpServer::write_timeout).
    pub fn write_timeouts(&self) -> u64 {
        self.0.write_timeouts.load(Ordering::Relaxed)
    }

    /// Replies answered with `500` instead because they were larger than
    /// [`max_reply`](HttpServer::max_reply).
    pub fn replies_too_large(&self) -> u64 {
        self.0.too_large.load(Ordering::Relaxed)
    }
}

/// An HTTP/1.1 server whose requests are messages to the object that creates it.
///
/// ```no_run
/// use strata::prelude::*;
/// use strata::http::{Api, HttpServer};
///
/// // `u8` sizes bound the input themselves: `x=1000` is a 400, not a huge table.
/// #[derive(Debug, Serialize, Deserialize, Message)]
/// struct Xy { x: u8, y: u8 }
///
/// struct Service;
///
/// #[strata::machine]
/// impl Service {
///     fn start(&mut self, cx: &mut Context<Self>, _: Start) {
///         let api = Api::new().message::<Xy>();
///         cx.create(HttpServer::new("127.0.0.1:5050".parse().unwrap(), api));
///     }
///     fn xy(&mut self, _cx: &mut Context<Self>, m: Xy) -> Vec<Vec<f64>> {
///         vec![vec![0.5; m.x.into()]; m.y.into()] // GET /Xy?x=2&y=2 → [[0.5,0.5],[0.5,0.5]]
///     }
/// }
/// ```
///
/// Every limit has a builder method; the defaults:
///
/// | setting | default | over it |
/// |---|---|---|
/// | [`max_connections`](Self::max_connections) | 1024 | the connection is closed at once |
/// | [`max_connections_per_ip`](Self::max_connections_per_ip) | 256 | the connection is closed at once |
/// | [`max_header`](Self::max_header) | 16 KiB | `431` |
/// | [`max_body`](Self::max_body) | 1 MiB | `413` |
/// | [`read_timeout`](Self::read_timeout) | 10 s | the connection is closed (a stalled body: `408`) |
/// | [`request_timeout`](Self::request_timeout) | 30 s | `504` |
/// | [`max_reply`](Self::max_reply) | 32 MiB | `500` naming the limit |
/// | [`write_timeout`](Self::write_timeout) | 10 s | the connection is dropped |
pub struct HttpServer {
    address: SocketAddr,
    api: Api,
    settings: HttpSettings,
    counters: HttpCounters,
}

impl HttpServer {
    /// A server on `address` for the messages and routes of `api`.
    pub fn new(address: SocketAddr, api: Api) -> Self {
        HttpServer {
            address,
            api,
            settings: HttpSettings::default(),
            counters: HttpCounters::default(),
        }
    }

    /// The server's counters (open connections, and how often each bound was hit): a
    /// handle to keep before the server is created.
    pub fn counters(&self) -> HttpCounters {
        self.counters.clone()
    }

    /// The largest request body accepted (default 1 MiB); larger gets `413`.
    pub fn max_body(mut self, bytes: usize) -> Self {
        self.settings.max_body = bytes;
        self
    }

    /// The largest request head accepted (default 16 KiB, at least 8 KiB); larger gets
    /// `431`.
    pub fn max_header(mut self, bytes: usize) -> Self {
        self.settings.max_header = bytes.max(8192);
        self
    }

    /// How long a request may wait for its reply (default 30 s); then `504`. The message
    /// carries it as its deadline, so a spool still holding it then answers `TimedOut`
    /// instead of giving it to a worker (also a `504`).
    pub fn request_timeout(mut self, timeout: Duration) -> Self {
        self.settings.request_timeout = timeout;
        self
    }

    /// How long a client may take to send a request's head or body (default 10 s).
    pub fn read_timeout(mut self, timeout: Duration) -> Self {
        self.settings.read_timeout = timeout;
        self
    }

    /// How long a response may take to be written once the client stops taking it as fast
    /// as it comes (default 10 s).
    ///
    /// The clock starts at the first write the socket cannot take at once — a reply that
    /// fits in the socket's buffers never starts it — and stops when the response has
    /// been handed to the socket in full. A client that stops reading, or reads too slowly
    /// to finish in time, has its connection dropped (reset): its task, buffers and
    /// descriptor are freed, and [`HttpCounters::write_timeouts`] counts it. Raise it when
    /// slow clients fetch large replies.
    pub fn write_timeout(mut self, timeout: Duration) -> Self {
        self.settings.write_timeout = timeout;
        self
    }

    /// The `Retry-After` seconds sent with `503` (default 1).
    pub fn retry_after(mut self, seconds: u32) -> Self {
        self.settings.retry_after = seconds;
        self
    }

    /// The most connections open at once (default 1024, at least 1).
    ///
    /// One more is closed as soon as it is accepted, before anything is read from it or
    /// written to it (the client sees the connection closed or reset; it is not answered
    /// `503`, which would cost a write to a client the server cannot afford). It is
    /// counted ([`HttpCounters::refused_connections`]) and logged, at most once a second
    /// at `warn` and each time at `debug`. The connections already open are not touched.
    pub fn max_connections(mut self, connections: usize) -> Self {
        self.settings.max_connections = connections.max(1);
        self
    }

    /// The most connections open at once from one client IP address (default 256, at
    /// least 1); one more is closed as [`max_connections`](Self::max_connections) says.
    /// IPv4 addresses mapped into IPv6 count as the IPv4 address.
    pub fn max_connections_per_ip(mut self, connections: usize) -> Self {
        self.settings.max_connections_per_ip = connections.max(1);
        self
    }

    /// The largest reply sent, as encoded JSON (default 32 MiB: room for the largest
    /// table of the texture examples, about 20 MB).
    ///
    /// A larger reply is not sent: the response is a `500` whose JSON names the limit
    /// (`{"error": "reply too large", "limit": BYTES, "reason": ...}`, with a typed
    /// `Faulted` for typed requests), and [`HttpCounters::replies_too_large`] counts it.
    pub fn max_reply(mut self, bytes: usize) -> Self {
        self.settings.max_reply = bytes;
        self
    }
}

impl Object for HttpServer {
    fn kind(&self) -> &'static str {
        "http-server"
    }

    fn run(self, core: Core) {
        Async::new(move |cx| serve(cx, self)).run(core)
    }
}

struct Shared {
    service: Address,
    /// The server's own postbox: a stopping server answers held requests through it.
    postbox: Postbox,
    api: Api,
    settings: HttpSettings,
    counters: HttpCounters,
    stopping: tokio::sync::watch::Receiver<bool>,
}

async fn serve(mut cx: AsyncContext, this: HttpServer) -> AnyMessage {
    let service = cx.parent();
    // Types are registered before the service hears `Listening` (and sends requests).
    this.api.register_types();
    let mut listener = match Listener::bind(&mut cx, this.address, service).await {
        Ok(l) => l,
        Err(fault) => return AnyMessage::new(fault),
    };
    tracing::info!(target: "strata::http", address = %listener.bound(), "HTTP server listening");
    // Listed in the process's figures while it serves (`crate::metrics`).
    let _figures = crate::metrics::sources::http(listener.bound(), this.counters.clone());

    let (stop_tx, stopping) = tokio::sync::watch::channel(false);
    let admission = Admission::new(
        Caps {
            total: this.settings.max_connections,
            per_ip: this.settings.max_connections_per_ip,
            what: "connections",
            total_setting: "max_connections",
            per_ip_setting: "max_connections_per_ip",
        },
        this.counters.0.connections.clone(),
    );
    let shared = Arc::new(Shared {
        service,
        postbox: cx.postbox(),
        api: this.api,
        settings: this.settings,
        counters: this.counters,
        stopping,
    });
    let mut connections = tokio::task::JoinSet::new();
    loop {
        tokio::select! {
            accepted = listener.accept(&mut cx) => match accepted {
                Some((stream, peer)) => match admission.admit(peer.ip()) {
                    Ok(ticket) => {
                        connections.spawn(connection(stream, shared.clone(), ticket));
                    }
                    Err(reason) => {
                        // Counted, then closed unread: nothing more is spent on it.
                        admission.refused(peer, &reason);
                        drop(stream);
                    }
                },
                None => break,
            },
            Some(_) = connections.join_next(), if !connections.is_empty() => {}
        }
    }
    drop(listener);
    let _ = stop_tx.send(true);
    // Open connections answer what they hold (503) and close; give them a moment.
    let _ = tokio::time::timeout(Duration::from_secs(5), async {
        while connections.join_next().await.is_some() {}
    })
    .await;
    connections.abort_all();
    AnyMessage::new(Aborted::new("HTTP server stopped"))
}

/// A connection's socket whose writes have a deadline (see
/// [`HttpServer::write_timeout`]).
///
/// The deadline is armed by the first write or flush the socket cannot complete at once,
/// and disarmed when a flush completes: hyper flushes only once its own buffer has been
/// written out, so each response's writing is bounded, and a socket that keeps up never
/// touches a timer. When the deadline passes, every write fails with `TimedOut` (hyper
/// then ends the connection) and the socket is set to reset on close, so the kernel does
/// not keep the unsent reply for a client that will not read it.
struct WriteDeadline {
    stream: tokio::net::TcpStream,
    limit: Duration,
    timer: Option<Pin<Box<tokio::time::Sleep>>>,
    expired: bool,
    counters: HttpCounters,
}

impl WriteDeadline {
    /// A write or flush could not complete: arms the deadline if it is not armed, and
    /// gives the error once it has passed (the socket wakes the task if it drains first).
    fn stalled(&mut self, cx: &mut task::Context<'_>) -> Poll<io::Error> {
        let limit = self.limit;
        let timer = self
            .timer
            .get_or_insert_with(|| Box::pin(tokio::time::sleep(limit)));
        if timer.as_mut().poll(cx).is_pending() {
            return Poll::Pending;
        }
        if !self.expired {
            self.expired = true;
            self.counters
                .0
                .write_timeouts
                .fetch_add(1, Ordering::Relaxed);
            // A zero linger never blocks (it resets at once); it is what tokio's newer
            // `set_zero_linger` does.
            #[allow(deprecated)]
            let _ = self.stream.set_linger(Some(Duration::ZERO));
            tracing::debug!(target: "strata::http", peer = ?self.stream.peer_addr().ok(),
                "connection dropped: the client did not take its response in time");
        }
        Poll::Ready(io::Error::new(
            io::ErrorKind::TimedOut,
            format!("the client did not take the response within {limit:?} (write_timeout)"),
        ))
    }
}

impl AsyncRead for WriteDeadline {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut task::Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        Pin::new(&mut self.stream).poll_read(cx, buf)
    }
}

impl AsyncWrite for WriteDeadline {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut task::Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let this = &mut *self;
        match Pin::new(&mut this.stream).poll_write(cx, buf) {
            Poll::Pending => this.stalled(cx).map(Err),
            done => done,
        }
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut task::Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        let this = &mut *self;
        match Pin::new(&mut this.stream).poll_write_vectored(cx, bufs) {
            Poll::Pending => this.stalled(cx).map(Err),
            done => done,
        }
    }

    fn is_write_vectored(&self) -> bool {
        self.stream.is_write_vectored()
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut task::Context<'_>) -> Poll<io::Result<()>> {
        let this = &mut *self;
        match Pin::new(&mut this.stream).poll_flush(cx) {
            Poll::Ready(Ok(())) => {
                this.timer = None;
                Poll::Ready(Ok(()))
            }
            Poll::Pending => this.stalled(cx).map(Err),
            failed => failed,
        }
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut task::Context<'_>) -> Poll<io::Result<()>> {
        let this = &mut *self;
        match Pin::new(&mut this.stream).poll_shutdown(cx) {
            Poll::Pending => this.stalled(cx).map(Err),
            done => done,
        }
    }
}

/// The reply address of the request a connection is waiting on (`NULL` between
/// requests; HTTP/1 serves one request at a time per connection). A stopping server
/// answers that request at once through it: one stop watch per connection instead of one
/// per request.
struct Held(parking_lot::Mutex<Address>);

impl Held {
    /// Publishes the reply address until the returned guard is dropped.
    fn hold(&self, address: Address) -> impl Drop + '_ {
        struct Release<'a>(&'a Held);
        impl Drop for Release<'_> {
            fn drop(&mut self) {
                *self.0 .0.lock() = Address::NULL;
            }
        }
        *self.0.lock() = address;
        Release(self)
    }

    /// Answers the request in progress, if any, with `503`: the server is stopping.
    fn stopping(&self, postbox: &Postbox) {
        let address = *self.0.lock();
        if !address.is_null() {
            let notice = TemporarilyUnavailable::new("the server is stopping");
            postbox.notify(address, notice);
        }
    }
}

/// Serves one connection; `_ticket` holds its place among the open connections until the
/// task ends.
async fn connection(stream: tokio::net::TcpStream, shared: Arc<Shared>, _ticket: Ticket) {
    let mut stopping = shared.stopping.clone();
    let held = Arc::new(Held(parking_lot::Mutex::new(Address::NULL)));
    let service = {
        let shared = shared.clone();
        let held = held.clone();
        hyper::service::service_fn(move |req| {
            let shared = shared.clone();
            let held = held.clone();
            async move { Ok::<_, Infallible>(respond(req, &shared, &held).await) }
        })
    };
    let stream = WriteDeadline {
        stream,
        limit: shared.settings.write_timeout,
        timer: None,
        expired: false,
        counters: shared.counters.clone(),
    };
    let conn = hyper::server::conn::http1::Builder::new()
        .timer(TokioTimer::new())
        .header_read_timeout(shared.settings.read_timeout)
        .max_buf_size(shared.settings.max_header)
        .keep_alive(true)
        .serve_connection(TokioIo::new(stream), service);
    tokio::pin!(conn);
    tokio::select! {
        r = conn.as_mut() => {
            if let Err(e) = r {
                tracing::debug!(target: "strata::http", error = %e, "connection ended with an error");
            }
        }
        _ = stopped(&mut stopping) => {
            held.stopping(&shared.postbox);
            conn.as_mut().graceful_shutdown();
            let _ = conn.await;
        }
    }
}

/// Resolves once the server is stopping.
async fn stopped(stopping: &mut tokio::sync::watch::Receiver<bool>) {
    let _ = stopping.wait_for(|s| *s).await;
}

type Reply = Response<Full<Bytes>>;

fn json_response(status: StatusCode, body: Vec<u8>) -> Reply {
    let mut r = Response::new(Full::new(Bytes::from(body)));
    *r.status_mut() = status;
    r.headers_mut()
        .insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
    r
}

fn error(status: StatusCode, body: serde_json::Value) -> Reply {
    json_response(
        status,
        serde_json::to_vec(&body).expect("JSON values encode"),
    )
}

fn unavailable(shared: &Shared, reason: &str) -> Reply {
    let mut r = error(
        StatusCode::SERVICE_UNAVAILABLE,
        json!({"error": "unavailable", "reason": reason}),
    );
    r.headers_mut()
        .insert(RETRY_AFTER, HeaderValue::from(shared.settings.retry_after));
    r
}

/// Reads the body within the size and time limits.
async fn body(headers: &hyper::HeaderMap, body: Incoming, shared: &Shared) -> Result<Bytes, Reply> {
    let limit = shared.settings.max_body;
    let declared = headers
        .get(CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    let too_large = || {
        error(
            StatusCode::PAYLOAD_TOO_LARGE,
            json!({"error": "request body too large", "limit": limit}),
        )
    };
    if declared.is_some_and(|n| n > limit as u64) {
        return Err(too_large());
    }
    let read = Limited::new(body, limit).collect();
    match tokio::time::timeout(shared.settings.read_timeout, read).await {
        Ok(Ok(collected)) => Ok(collected.to_bytes()),
        Ok(Err(e))
            if e.downcast_ref::<http_body_util::LengthLimitError>()
                .is_some() =>
        {
            Err(too_large())
        }
        Ok(Err(e)) => Err(error(
            StatusCode::BAD_REQUEST,
            json!({"error": "cannot read the body", "reason": e.to_string()}),
        )),
        Err(_) => Err(error(
            StatusCode::REQUEST_TIMEOUT,
            json!({"error": "the request body did not arrive in time"}),
        )),
    }
}

fn bad_input(message: &str, e: InputError) -> Reply {
    error(
        StatusCode::BAD_REQUEST,
        json!({"error": "bad request", "message": message, "field": e.field, "reason": e.reason}),
    )
}

async fn respond(req: Request<Incoming>, shared: &Shared, held: &Held) -> Reply {
    let (head, incoming) = req.into_parts();
    let path = head.uri.path();
    let route = match shared.api.find(&head.method, path) {
        Found::Route(route, params) => (route, params),
        Found::NoPath => {
            return error(
                StatusCode::NOT_FOUND,
                json!({"error": "not found", "path": path}),
            )
        }
        Found::WrongMethod(allowed) => {
            let mut r = error(
                StatusCode::METHOD_NOT_ALLOWED,
                json!({"error": "method not allowed", "method": head.method.as_str(), "allowed": allowed}),
            );
            if let Ok(v) = HeaderValue::from_str(&allowed.join(", ")) {
                r.headers_mut().insert(ALLOW, v);
            }
            return r;
        }
    };
    let (route, params) = route;
    let typed = head
        .headers
        .get("strata-envelope")
        .is_some_and(|v| v.as_bytes().eq_ignore_ascii_case(b"typed"));
    let query = head.uri.query().unwrap_or("");
    let bytes = if has_body(&head.method) {
        match body(&head.headers, incoming, shared).await {
            Ok(b) => b,
            Err(r) => return r,
        }
    } else {
        Bytes::new()
    };
    let message = route.decode(&head.method, &params, query, &bytes);
    let message = match message {
        Ok(m) => m,
        Err(e) => return bad_input(route.message, e),
    };

    let mut port = AsyncContext::attach();
    // Published before the stop flag is read: either the connection sees this address
    // when the server stops (and answers through it), or this request sees the flag.
    let _held = held.hold(port.address());
    if *shared.stopping.borrow() {
        return unavailable(shared, "the server is stopping");
    }
    // The request's time-out is its deadline: a spool or worker that would take it
    // later answers `TimedOut` (a 504) without doing the work nobody waits for.
    let deadline = std::time::Instant::now() + shared.settings.request_timeout;
    match port.try_send_any_by(shared.service, message, Some(deadline)) {
        Ok(()) => {}
        Err(SendError::Full { .. }) => return unavailable(shared, "the service is overloaded"),
        Err(_) => return unavailable(shared, "the service is not running"),
    }
    let Some(reply) = port.recv_timeout(shared.settings.request_timeout).await else {
        return error(
            StatusCode::GATEWAY_TIMEOUT,
            json!({"error": "no reply in time", "seconds": shared.settings.request_timeout.as_secs_f64()}),
        );
    };
    answer(reply.into_message(), typed, shared)
}

fn answer(reply: AnyMessage, typed: bool, shared: &Shared) -> Reply {
    let limit = shared.settings.max_reply;
    if let Some(fault) = reply.as_fault() {
        let mut body = json!({"error": reply.type_name(), "reason": fault.reason()});
        if typed {
            // The fault itself, for clients that turn it back into a message.
            if let Ok(v) = codec::to_json(&reply) {
                body["fault"] = v;
            }
        }
        let unavailable = reply.is::<Busy>()
            || reply.is::<Overloaded>()
            || reply.is::<OutOfService>()
            || reply.is::<TemporarilyUnavailable>();
        let status = if unavailable {
            StatusCode::SERVICE_UNAVAILABLE
        } else if reply.is::<TimedOut>() {
            StatusCode::GATEWAY_TIMEOUT
        } else {
            StatusCode::INTERNAL_SERVER_ERROR
        };
        let body = serde_json::to_vec(&body).expect("JSON values encode");
        if body.len() > limit {
            return too_large(&reply, typed, shared);
        }
        let mut r = json_response(status, body);
        if unavailable {
            r.headers_mut()
                .insert(RETRY_AFTER, HeaderValue::from(shared.settings.retry_after));
        }
        return r;
    }
    let encoded = if typed {
        // Straight into a buffer that stops at the limit: an oversized typed reply is
        // never encoded in full.
        let mut out = Capped {
            out: Vec::new(),
            limit,
            over: false,
        };
        match serde_json::to_writer(&mut out, &reply) {
            Ok(()) => Ok(out.out),
            Err(_) if out.over => return too_large(&reply, typed, shared),
            Err(e) => Err(codec::CodecError::Encode {
                name: reply.type_name().to_string(),
                reason: e.to_string(),
            }),
        }
    } else {
        // The plain encoding is the concrete type's own (no erasure, the fast path), into
        // a growing buffer; the limit is checked once it is done.
        codec::to_json_plain_bytes(&reply)
    };
    match encoded {
        Ok(body) if body.len() > limit => too_large(&reply, typed, shared),
        Ok(body) => json_response(StatusCode::OK, body),
        Err(e) => error(
            StatusCode::INTERNAL_SERVER_ERROR,
            json!({"error": "cannot encode the reply", "reason": e.to_string()}),
        ),
    }
}

/// The `500` sent instead of a reply over `max_reply`.
fn too_large(reply: &AnyMessage, typed: bool, shared: &Shared) -> Reply {
    let limit = shared.settings.max_reply;
    shared.counters.0.too_large.fetch_add(1, Ordering::Relaxed);
    let reason = format!(
        "the reply (a `{}`) is larger than max_reply, {limit} bytes",
        reply.type_name()
    );
    tracing::warn!(target: "strata::http", reply = reply.type_name(), limit, "reply not sent: larger than max_reply");
    let mut body = json!({"error": "reply too large", "limit": limit, "reason": reason});
    if typed {
        if let Ok(v) = codec::to_json(&AnyMessage::new(Faulted::new(reason))) {
            body["fault"] = v;
        }
    }
    error(StatusCode::INTERNAL_SERVER_ERROR, body)
}

/// A buffer that refuses to grow past `limit` bytes (`over` says it was asked to).
struct Capped {
    out: Vec<u8>,
    limit: usize,
    over: bool,
}

impl io::Write for Capped {
    fn write(&mut self, bytes: &[u8]) -> io::Result<usize> {
        if self.out.len() + bytes.len() > self.limit {
            self.over = true;
            return Err(io::Error::other("over max_reply"));
        }
        self.out.extend_from_slice(bytes);
        Ok(bytes.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}
