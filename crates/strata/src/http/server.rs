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
//!
//! Error bodies are JSON: `{"error": NAME, "reason": TEXT}`, plus `"fault"` (the typed
//! fault) when the request asked for typed replies.
//!
//! Bad input never reaches the service: an unknown path is `404`, a method the route does
//! not take `405` (with `Allow`), a body over the limit `413`, input that does not decode
//! `400` with a JSON error naming the field, a request whose body stalls `408`. Every
//! request gets exactly one response, also when the service ends first (`503`).

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Full, Limited};
use hyper::body::Incoming;
use hyper::header::{HeaderValue, ALLOW, CONTENT_LENGTH, CONTENT_TYPE, RETRY_AFTER};
use hyper::{Method, Request, Response, StatusCode};
use hyper_util::rt::{TokioIo, TokioTimer};
use serde_json::json;

use super::api::{Api, Found};
use crate::message::fields::{Fields, InputError};
use crate::message::{codec, AnyMessage};
use crate::net::listener::Listener;
use crate::object::{Async, AsyncContext, Core, Object, Postbox};
use crate::runtime::SendError;
use crate::standard::{Aborted, Busy, OutOfService, Overloaded, TemporarilyUnavailable, TimedOut};
use crate::Address;

/// Limits and time-outs of an [`HttpServer`].
#[derive(Debug, Clone)]
pub struct HttpSettings {
    max_body: usize,
    max_header: usize,
    request_timeout: Duration,
    read_timeout: Duration,
    retry_after: u32,
}

impl Default for HttpSettings {
    fn default() -> Self {
        HttpSettings {
            max_body: 1 << 20,
            max_header: 16 * 1024,
            request_timeout: Duration::from_secs(30),
            read_timeout: Duration::from_secs(10),
            retry_after: 1,
        }
    }
}

/// An HTTP/1.1 server whose requests are messages to the object that creates it.
///
/// ```no_run
/// use strata::prelude::*;
/// use strata::http::{Api, HttpServer};
///
/// #[derive(Debug, Serialize, Deserialize, Message)]
/// struct Xy { x: usize, y: usize }
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
///         vec![vec![0.5; m.x]; m.y] // GET /Xy?x=2&y=2 → [[0.5,0.5],[0.5,0.5]]
///     }
/// }
/// ```
pub struct HttpServer {
    address: SocketAddr,
    api: Api,
    settings: HttpSettings,
}

impl HttpServer {
    /// A server on `address` for the messages and routes of `api`.
    pub fn new(address: SocketAddr, api: Api) -> Self {
        HttpServer {
            address,
            api,
            settings: HttpSettings::default(),
        }
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

    /// How long a request may wait for its reply (default 30 s); then `504`.
    pub fn request_timeout(mut self, timeout: Duration) -> Self {
        self.settings.request_timeout = timeout;
        self
    }

    /// How long a client may take to send a request's head or body (default 10 s).
    pub fn read_timeout(mut self, timeout: Duration) -> Self {
        self.settings.read_timeout = timeout;
        self
    }

    /// The `Retry-After` seconds sent with `503` (default 1).
    pub fn retry_after(mut self, seconds: u32) -> Self {
        self.settings.retry_after = seconds;
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

    let (stop_tx, stopping) = tokio::sync::watch::channel(false);
    let shared = Arc::new(Shared {
        service,
        postbox: cx.postbox(),
        api: this.api,
        settings: this.settings,
        stopping,
    });
    let mut connections = tokio::task::JoinSet::new();
    loop {
        tokio::select! {
            accepted = listener.accept(&mut cx) => match accepted {
                Some((stream, _)) => {
                    connections.spawn(connection(stream, shared.clone()));
                }
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

async fn connection(stream: tokio::net::TcpStream, shared: Arc<Shared>) {
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
    let has_body = matches!(head.method, Method::POST | Method::PUT | Method::PATCH);
    let message = if has_body {
        let bytes = match body(&head.headers, incoming, shared).await {
            Ok(b) => b,
            Err(r) => return r,
        };
        let source: &[u8] = if bytes.iter().all(u8::is_ascii_whitespace) {
            b"{}"
        } else {
            &bytes
        };
        let mut value: serde_json::Value = match serde_json::from_slice(source) {
            Ok(v) => v,
            Err(e) => {
                return bad_input(
                    route.message,
                    InputError {
                        field: String::new(),
                        reason: format!("the body is not JSON: {e}"),
                    },
                )
            }
        };
        if let (serde_json::Value::Object(map), false) = (&mut value, params.is_empty()) {
            for (k, v) in &params {
                map.insert(
                    k.clone(),
                    serde_json::from_str(v)
                        .unwrap_or_else(|_| serde_json::Value::String(v.clone())),
                );
            }
        }
        (route.from_json)(&value)
    } else {
        let mut fields = Fields::from_pairs(form_urlencoded::parse(query.as_bytes()));
        for (k, v) in &params {
            fields.push(k, v.clone());
        }
        (route.from_fields)(fields)
    };
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
    match port.try_send_any(shared.service, message) {
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
        let mut r = error(status, body);
        if unavailable {
            r.headers_mut()
                .insert(RETRY_AFTER, HeaderValue::from(shared.settings.retry_after));
        }
        return r;
    }
    let encoded = if typed {
        codec::to_json(&reply).map(|v| serde_json::to_vec(&v).expect("JSON values encode"))
    } else {
        codec::to_json_plain_bytes(&reply)
    };
    match encoded {
        Ok(body) => json_response(StatusCode::OK, body),
        Err(e) => error(
            StatusCode::INTERNAL_SERVER_ERROR,
            json!({"error": "cannot encode the reply", "reason": e.to_string()}),
        ),
    }
}
