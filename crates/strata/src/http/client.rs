//! The HTTP client: messages out as HTTP requests, responses back as messages.
//!
//! [`HttpClient`] is an object standing for one HTTP server. Send it a message and it
//! answers the sender with the server's reply:
//!
//! * any strata message `M` becomes `POST /M` (its portable name) with the JSON value,
//!   asking for a typed reply; a `200` decodes back into the reply message, an error
//!   response into the fault the server named (`Busy`, `TimedOut`, ...) or `Faulted`;
//! * an [`HttpRequest`] is sent as it is, for servers that are not strata, and answered
//!   with an [`HttpResponse`] (any status).
//!
//! Connections are kept alive and reused; requests in flight run concurrently.
//!
//! The server is not trusted:
//!
//! * a response body is read up to [`max_response`](HttpClient::max_response) bytes; a
//!   larger one is not read on, and the sender receives `Faulted` naming the limit;
//! * a typed reply is never one of the runtime's own messages — `Start`, `Stop`,
//!   `Returned`, the timers `T1`..`T4`, or the notices `Listening`, `Accepted`,
//!   `Connected` and `Closed` — which would otherwise reach the sender as if the runtime
//!   had sent them (a `Stop` aborts a machine that does not handle it); such a reply
//!   becomes `Faulted` naming the type received;
//! * with [`expect`](HttpClient::expect), the reply to a request type must be the type
//!   expected, or a fault.

use std::any::TypeId;
use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Full, LengthLimitError, Limited};
use hyper::client::conn::http1::SendRequest;
use hyper::header::{HeaderName, HeaderValue, CONTENT_LENGTH, CONTENT_TYPE, HOST};
use hyper::{Method, Request};
use hyper_util::rt::TokioIo;
use parking_lot::Mutex;
use serde::{Deserialize, Serialize};

use crate::message::{codec, register, AnyMessage};
use crate::net::{Accepted, Closed, Connected, Listening};
use crate::object::{Async, AsyncContext, Core, Object};
use crate::standard::{Faulted, NotConnected, Returned, Start, Stop, TimedOut, T1, T2, T3, T4};
use crate::Message;

/// A raw HTTP request, sent as it is by an [`HttpClient`].
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, Message)]
#[message(name = "http.Request")]
pub struct HttpRequest {
    /// `GET`, `POST`, ...
    pub method: String,
    /// Path and query, e.g. `/Xy?x=2&y=2`.
    pub target: String,
    /// Extra headers.
    pub headers: Vec<(String, String)>,
    /// The body.
    pub body: Vec<u8>,
}

impl HttpRequest {
    /// A `GET` of `target`.
    pub fn get(target: impl Into<String>) -> Self {
        HttpRequest {
            method: "GET".into(),
            target: target.into(),
            ..Default::default()
        }
    }
}

/// A raw HTTP response, the answer to an [`HttpRequest`].
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, Message)]
#[message(name = "http.Response")]
pub struct HttpResponse {
    /// The status code.
    pub status: u16,
    /// The headers, in order.
    pub headers: Vec<(String, String)>,
    /// The body.
    pub body: Vec<u8>,
}

/// An object standing for one HTTP server (see the [`http`](crate::http) module).
pub struct HttpClient {
    address: SocketAddr,
    timeout: Duration,
    max_response: usize,
    /// The reply type expected for each request type given to [`expect`](Self::expect).
    expected: HashMap<TypeId, Expected>,
}

/// The reply a request type must get.
#[derive(Debug, Clone, Copy)]
struct Expected {
    id: TypeId,
    name: &'static str,
}

impl HttpClient {
    /// A client of the server at `address`.
    pub fn new(address: SocketAddr) -> Self {
        HttpClient {
            address,
            timeout: Duration::from_secs(30),
            max_response: 32 << 20,
            expected: HashMap::new(),
        }
    }

    /// The time allowed for each request, connection included (default 30 s); then the
    /// sender receives `TimedOut`.
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }

    /// The largest response body read (default 32 MiB, the largest reply a strata server
    /// sends by default), for typed replies and [`HttpResponse`]s alike.
    ///
    /// A body declared larger is not read at all, and one that grows larger is not read
    /// on: the sender receives `Faulted` naming the limit, and the connection is closed.
    pub fn max_response(mut self, bytes: usize) -> Self {
        self.max_response = bytes;
        self
    }

    /// Requests of type `M` must be answered with an `R` (or a fault): any other typed
    /// reply becomes `Faulted`, naming the type received and the type expected. Without
    /// it, a reply may be any registered type but the runtime's own (see the module doc);
    /// those are refused even when `R` names one.
    pub fn expect<M: Message, R: Message>(mut self) -> Self {
        register::<R>();
        self.expected.insert(
            TypeId::of::<M>(),
            Expected {
                id: TypeId::of::<R>(),
                name: R::type_name(),
            },
        );
        self
    }
}

impl Object for HttpClient {
    fn kind(&self) -> &'static str {
        "http-client"
    }

    fn run(self, core: Core) {
        Async::new(move |cx| run(cx, self)).run(core)
    }
}

type Idle = Arc<Mutex<Vec<SendRequest<Full<Bytes>>>>>;

async fn run(mut cx: AsyncContext, this: HttpClient) -> AnyMessage {
    let idle: Idle = Arc::default();
    // Every exchange reads the client's settings.
    let client = Arc::new(this);
    let mut tasks = tokio::task::JoinSet::new();
    loop {
        tokio::select! {
            e = cx.recv() => {
                if e.is::<Stop>() {
                    break;
                }
                let (postbox, sender) = (cx.postbox(), e.sender());
                let (client, idle) = (client.clone(), idle.clone());
                tasks.spawn(async move {
                    let timeout = client.timeout;
                    let reply = match tokio::time::timeout(timeout, exchange(&client, &idle, e.into_message())).await {
                        Ok(reply) => reply,
                        Err(_) => AnyMessage::new(TimedOut::after(timeout)),
                    };
                    postbox.send_any(sender, reply);
                });
            }
            Some(_) = tasks.join_next(), if !tasks.is_empty() => {}
        }
    }
    tasks.abort_all();
    AnyMessage::new(crate::standard::Aborted::new("HTTP client stopped"))
}

async fn connection(address: SocketAddr, idle: &Idle) -> Result<SendRequest<Full<Bytes>>, String> {
    loop {
        let Some(mut c) = idle.lock().pop() else {
            break;
        };
        if c.ready().await.is_ok() {
            return Ok(c);
        }
    }
    let stream = tokio::net::TcpStream::connect(address)
        .await
        .map_err(|e| format!("cannot connect to {address}: {e}"))?;
    let _ = stream.set_nodelay(true);
    let (send, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
        .await
        .map_err(|e| format!("HTTP handshake with {address} failed: {e}"))?;
    tokio::spawn(async move {
        let _ = conn.await;
    });
    Ok(send)
}

/// Sends one message as a request and turns the response into the reply.
async fn exchange(client: &HttpClient, idle: &Idle, message: AnyMessage) -> AnyMessage {
    let address = client.address;
    let request_type = (message.type_id(), message.type_name());
    let raw = message.is::<HttpRequest>();
    let request = match message.downcast::<HttpRequest>() {
        Ok(r) => build_raw(address, r),
        Err(m) => build_typed(address, &m),
    };
    let request = match request {
        Ok(r) => r,
        Err(reason) => return AnyMessage::new(Faulted::new(reason)),
    };
    let mut send = match connection(address, idle).await {
        Ok(s) => s,
        Err(reason) => return AnyMessage::new(NotConnected::new(reason)),
    };
    let response = match send.send_request(request).await {
        Ok(r) => r,
        Err(e) => {
            return AnyMessage::new(Faulted::new(format!(
                "HTTP request to {address} failed: {e}"
            )))
        }
    };
    let status = response.status().as_u16();
    let headers: Vec<(String, String)> = response
        .headers()
        .iter()
        .map(|(k, v)| {
            (
                k.to_string(),
                String::from_utf8_lossy(v.as_bytes()).into_owned(),
            )
        })
        .collect();
    let limit = client.max_response;
    let too_large = || {
        AnyMessage::new(Faulted::new(format!(
            "the response from {address} is larger than max_response, {limit} bytes"
        )))
    };
    let declared = response
        .headers()
        .get(CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if declared.is_some_and(|n| n > limit as u64) {
        // Not read: dropping the response and `send` closes the connection.
        return too_large();
    }
    let body = match Limited::new(response.into_body(), limit).collect().await {
        Ok(b) => b.to_bytes(),
        Err(e) if e.downcast_ref::<LengthLimitError>().is_some() => return too_large(),
        Err(e) => {
            return AnyMessage::new(Faulted::new(format!(
                "reading the response from {address}: {e}"
            )))
        }
    };
    idle.lock().push(send);
    if raw {
        return AnyMessage::new(HttpResponse {
            status,
            headers,
            body: body.to_vec(),
        });
    }
    let reply = typed_reply(status, &body);
    vet(reply, request_type, client)
}

fn build_raw(address: SocketAddr, r: HttpRequest) -> Result<Request<Full<Bytes>>, String> {
    let method = Method::from_bytes(r.method.as_bytes())
        .map_err(|_| format!("bad HTTP method `{}`", r.method))?;
    let mut b = Request::builder()
        .method(method)
        .uri(&r.target)
        .header(HOST, address.to_string());
    for (k, v) in &r.headers {
        let name =
            HeaderName::from_bytes(k.as_bytes()).map_err(|_| format!("bad header name `{k}`"))?;
        let value = HeaderValue::from_str(v).map_err(|_| format!("bad value for header `{k}`"))?;
        b = b.header(name, value);
    }
    b.body(Full::new(Bytes::from(r.body)))
        .map_err(|e| format!("bad request `{}`: {e}", r.target))
}

fn build_typed(address: SocketAddr, m: &AnyMessage) -> Result<Request<Full<Bytes>>, String> {
    let body = codec::to_json_plain_bytes(m).map_err(|e| e.to_string())?;
    Request::builder()
        .method(Method::POST)
        .uri(format!("/{}", m.type_name()))
        .header(HOST, address.to_string())
        .header(CONTENT_TYPE, "application/json")
        .header("strata-envelope", "typed")
        .body(Full::new(Bytes::from(body)))
        .map_err(|e| format!("cannot make a request for `{}`: {e}", m.type_name()))
}

/// Decodes a strata server's response: the typed reply, or the fault it named.
fn typed_reply(status: u16, body: &[u8]) -> AnyMessage {
    let json: Option<serde_json::Value> = serde_json::from_slice(body).ok();
    if status == 200 {
        return match json.as_ref().map(codec::from_json) {
            Some(Ok(m)) => m,
            Some(Err(e)) => AnyMessage::new(Faulted::new(format!("cannot decode the reply: {e}"))),
            None => AnyMessage::new(Faulted::new("the reply is not JSON")),
        };
    }
    let named = json
        .as_ref()
        .and_then(|j| codec::from_json(j.get("fault")?).ok())
        .filter(AnyMessage::is_fault);
    if named.is_none() && status == 504 {
        return AnyMessage::new(TimedOut::default());
    }
    named.unwrap_or_else(|| {
        let text = String::from_utf8_lossy(&body[..body.len().min(512)]).into_owned();
        AnyMessage::new(Faulted::new(format!("HTTP {status}: {text}")))
    })
}

/// Whether `message` is one of the runtime's own messages, which only the runtime (or a
/// link or listener of this process) makes: never a reply from outside.
fn runtime_own(message: &AnyMessage) -> bool {
    let id = message.type_id();
    [
        TypeId::of::<Start>(),
        TypeId::of::<Stop>(),
        TypeId::of::<Returned>(),
        TypeId::of::<T1>(),
        TypeId::of::<T2>(),
        TypeId::of::<T3>(),
        TypeId::of::<T4>(),
        TypeId::of::<Listening>(),
        TypeId::of::<Accepted>(),
        TypeId::of::<Connected>(),
        TypeId::of::<Closed>(),
    ]
    .contains(&id)
}

/// Lets a decoded reply through, or turns it into `Faulted`: one of the runtime's own
/// messages, or (with [`HttpClient::expect`]) not the type expected.
fn vet(
    reply: AnyMessage,
    (request, request_name): (TypeId, &'static str),
    client: &HttpClient,
) -> AnyMessage {
    let address = client.address;
    let got = reply.type_name();
    if runtime_own(&reply) {
        tracing::warn!(target: "strata::http", server = %address, reply = got, "reply refused: one of the runtime's own messages");
        return AnyMessage::new(Faulted::new(format!(
            "the server at {address} answered `{got}`, one of the runtime's own messages, \
             which a reply from outside may never be"
        )));
    }
    match client.expected.get(&request) {
        Some(want) if reply.type_id() != want.id && !reply.is_fault() => {
            tracing::warn!(target: "strata::http", server = %address, reply = got, expected = want.name, "reply refused: not the type expected");
            AnyMessage::new(Faulted::new(format!(
                "the server at {address} answered `{got}` to `{request_name}`, which expects `{}`",
                want.name
            )))
        }
        _ => reply,
    }
}
