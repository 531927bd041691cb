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

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::client::conn::http1::SendRequest;
use hyper::header::{HeaderName, HeaderValue, CONTENT_TYPE, HOST};
use hyper::{Method, Request};
use hyper_util::rt::TokioIo;
use parking_lot::Mutex;
use serde::{Deserialize, Serialize};

use crate::message::{codec, AnyMessage};
use crate::object::{Async, AsyncContext, Core, Object};
use crate::standard::{Faulted, NotConnected, Stop, TimedOut};
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
}

impl HttpClient {
    /// A client of the server at `address`.
    pub fn new(address: SocketAddr) -> Self {
        HttpClient {
            address,
            timeout: Duration::from_secs(30),
        }
    }

    /// The time allowed for each request, connection included (default 30 s); then the
    /// sender receives `TimedOut`.
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
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
    let mut tasks = tokio::task::JoinSet::new();
    loop {
        tokio::select! {
            e = cx.recv() => {
                if e.is::<Stop>() {
                    break;
                }
                let (postbox, sender) = (cx.postbox(), e.sender());
                let (address, timeout, idle) = (this.address, this.timeout, idle.clone());
                tasks.spawn(async move {
                    let reply = match tokio::time::timeout(timeout, exchange(address, &idle, e.into_message())).await {
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
async fn exchange(address: SocketAddr, idle: &Idle, message: AnyMessage) -> AnyMessage {
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
    let body = match response.into_body().collect().await {
        Ok(b) => b.to_bytes(),
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
    typed_reply(status, &body)
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
