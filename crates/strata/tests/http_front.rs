//! The HTTP front over real sockets: good requests, every kind of bad input, faults as
//! status codes (from the service and from a spool behind it), keep-alive, stalled
//! clients, and a service that ends first.

mod support;

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::Duration;

use strata::http::{Api, HttpServer, Method};
use strata::net::Listening;
use strata::prelude::*;
use strata::spool::Spool;
use support::http::{get, json, open, read_answer, send, Answer};
use support::WAIT;

#[derive(Debug, Clone, Copy, Serialize, Deserialize, Message)]
#[message(name = "Xy")]
struct Xy {
    x: usize,
    y: usize,
}

/// Answered with `Busy`.
#[derive(Debug, Clone, Copy, Serialize, Deserialize, Message)]
#[message(name = "httptest.Shed")]
struct Shed;

/// Never answered.
#[derive(Debug, Clone, Copy, Serialize, Deserialize, Message)]
#[message(name = "httptest.Ignore")]
struct Ignore;

/// Answered with the fault named by `kind`: `overloaded`, `out-of-service` or
/// `unavailable`.
#[derive(Debug, Clone, Serialize, Deserialize, Message)]
#[message(name = "httptest.Refuse")]
struct Refuse {
    kind: String,
}

/// Answered with a `Faulted` returned by the handler.
#[derive(Debug, Clone, Copy, Serialize, Deserialize, Message)]
#[message(name = "httptest.Fail")]
struct Fail;

/// Forwarded to a spool whose worker panics on it.
#[derive(Debug, Clone, Copy, Serialize, Deserialize, Message)]
#[message(name = "httptest.Explode")]
struct Explode;

/// Sent by the service to the test when it has taken an `Ignore` (and will not answer).
#[derive(Debug, Clone, Copy, Serialize, Deserialize, Message)]
#[message(name = "httptest.Ignored")]
struct Ignored;

/// Ends the service without answering.
#[derive(Debug, Clone, Copy, Serialize, Deserialize, Message)]
#[message(name = "httptest.Quit")]
struct Quit;

/// A REST-style resource: `GET /users/{id}`.
#[derive(Debug, Clone, Serialize, Deserialize, Message)]
#[message(name = "httptest.GetUser")]
struct GetUser {
    id: u64,
    verbose: Option<bool>,
}

struct Service {
    server: Option<HttpServer>,
    spool: Address,
}

/// The spool's worker: panics on every `Explode`.
struct Fragile;

#[strata::machine]
impl Fragile {
    fn explode(&mut self, _cx: &mut Context<Self>, _: Explode) {
        panic!("the worker exploded");
    }
}

#[strata::machine]
impl Service {
    fn start(&mut self, cx: &mut Context<Self>, _: Start) {
        self.spool = cx.create(Spool::of(|| Threaded(Fragile)).workers(1));
        cx.create(self.server.take().expect("one server"));
    }
    fn listening(&mut self, cx: &mut Context<Self>, m: Listening) {
        let parent = cx.parent();
        cx.send(parent, m);
    }
    fn xy(&mut self, _cx: &mut Context<Self>, m: Xy) -> Vec<Vec<f64>> {
        vec![vec![1.5; m.x]; m.y]
    }
    fn shed(&mut self, _cx: &mut Context<Self>, _: Shed) -> Busy {
        Busy::new("too slow lately")
    }
    fn ignore(&mut self, cx: &mut Context<Self>, _: Ignore) {
        let parent = cx.parent();
        cx.send(parent, Ignored);
    }
    fn refuse(&mut self, _cx: &mut Context<Self>, m: Refuse) -> AnyMessage {
        match m.kind.as_str() {
            "overloaded" => AnyMessage::new(Overloaded::new("the queue is full")),
            "out-of-service" => AnyMessage::new(OutOfService::new("closed for repairs")),
            _ => AnyMessage::new(TemporarilyUnavailable::new("back soon")),
        }
    }
    fn fail(&mut self, _cx: &mut Context<Self>, _: Fail) -> Faulted {
        Faulted::new("the handler gave up")
    }
    fn explode(&mut self, cx: &mut Context<Self>, m: Explode) {
        cx.forward(self.spool, m);
    }
    fn quit(&mut self, cx: &mut Context<Self>, _: Quit) {
        cx.complete(Ack);
    }
    fn user(&mut self, _cx: &mut Context<Self>, m: GetUser) -> String {
        format!("user {} verbose={:?}", m.id, m.verbose)
    }
}

fn api() -> Api {
    Api::new()
        .message::<Xy>()
        .message::<Shed>()
        .message::<Ignore>()
        .message::<Quit>()
        .message::<Refuse>()
        .message::<Fail>()
        .message::<Explode>()
        .route::<GetUser>(Method::GET, "/users/{id}")
}

/// Starts a service with its HTTP front on a free port; returns the context and address.
fn start(server: impl FnOnce(HttpServer) -> HttpServer) -> (ThreadContext, SocketAddr) {
    let mut cx = ThreadContext::attach();
    let http = server(HttpServer::new("127.0.0.1:0".parse().unwrap(), api()));
    cx.create(Service {
        server: Some(http),
        spool: Address::NULL,
    });
    let e = cx
        .select_timeout::<(Listening,)>(WAIT)
        .expect("the server listens");
    let address = e.take::<Listening>().unwrap().address.parse().unwrap();
    (cx, address)
}

#[test]
fn get_and_post_become_messages_and_replies_become_json() {
    let (_cx, address) = start(|s| s);
    let a = get(address, "/Xy?x=2&y=2");
    assert_eq!(a.status, 200, "{}", a.body);
    assert_eq!(json(&a), serde_json::json!([[1.5, 1.5], [1.5, 1.5]]));
    let body = r#"{"x": 1, "y": 3}"#;
    let mut c = open(address);
    let a = send(
        &mut c,
        format!("POST /Xy HTTP/1.1\r\nHost: t\r\nContent-Type: application/json\r\nContent-Length: {}\r\nStrata-Envelope: typed\r\n\r\n{body}", body.len()).as_bytes(),
    );
    assert_eq!(a.status, 200);
    assert_eq!(
        json(&a),
        serde_json::json!({"type": "vec<vec<f64>>", "value": [[1.5], [1.5], [1.5]]})
    );
    let a = get(address, "/users/42?verbose=true");
    assert_eq!(json(&a), serde_json::json!("user 42 verbose=Some(true)"));
}

#[test]
fn bad_input_gets_a_4xx_naming_what_was_wrong() {
    let (_cx, address) = start(|s| s);
    let a = get(address, "/Xy?x=abc&y=2");
    assert_eq!(a.status, 400);
    assert_eq!(json(&a)["field"], "x");
    let a = get(address, "/Xy?x=2");
    assert_eq!(a.status, 400);
    assert_eq!(json(&a)["field"], "y");
    let a = get(address, "/users/abc");
    assert_eq!((a.status, json(&a)["field"].as_str()), (400, Some("id")));
    let a = get(address, "/Nothing/here");
    assert_eq!(a.status, 404);
    let a = send(
        &mut open(address),
        b"DELETE /Xy HTTP/1.1\r\nHost: t\r\n\r\n",
    );
    assert_eq!(a.status, 405);
    assert!(
        a.head.to_ascii_lowercase().contains("allow: get, post"),
        "{}",
        a.head
    );
    let a = send(
        &mut open(address),
        b"POST /Xy HTTP/1.1\r\nHost: t\r\nContent-Length: 5\r\n\r\n{x:1}",
    );
    assert_eq!(a.status, 400);
    assert!(json(&a)["reason"].as_str().unwrap().contains("not JSON"));
}

#[test]
fn garbage_and_oversized_requests_are_refused_and_the_server_keeps_serving() {
    let (_cx, address) = start(|s| s.max_body(1024).max_header(8192));
    let a = send(&mut open(address), b"\x00\x01\x02 garbage \xff\xfe\r\n\r\n");
    assert_eq!(a.status, 400);
    let huge = format!(
        "GET /Xy?x=1&y=1 HTTP/1.1\r\nHost: t\r\nX-Big: {}\r\n\r\n",
        "a".repeat(20_000)
    );
    let a = send(&mut open(address), huge.as_bytes());
    assert_eq!(a.status, 431);
    let body = format!(r#"{{"x": 1, "y": 1, "pad": "{}"}}"#, "p".repeat(5000));
    let a = send(
        &mut open(address),
        format!(
            "POST /Xy HTTP/1.1\r\nHost: t\r\nContent-Length: {}\r\n\r\n{body}",
            body.len()
        )
        .as_bytes(),
    );
    assert_eq!(a.status, 413);
    assert_eq!(get(address, "/Xy?x=1&y=1").status, 200);
}

#[test]
fn a_stalled_client_is_cut_off_while_others_are_served() {
    let (_cx, address) = start(|s| s.read_timeout(Duration::from_millis(300)));
    let mut stalled = TcpStream::connect(address).unwrap();
    stalled
        .write_all(b"GET /Xy?x=1&y=1 HTTP/1.1\r\nHost: t\r\n")
        .unwrap(); // and nothing more
    for _ in 0..5 {
        assert_eq!(get(address, "/Xy?x=1&y=1").status, 200);
    }
    stalled
        .set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    let mut rest = Vec::new();
    let closed = match stalled.read_to_end(&mut rest) {
        Ok(_) => true,
        Err(e) => e.kind() == std::io::ErrorKind::ConnectionReset,
    };
    assert!(
        closed,
        "the stalled connection should be closed by the server"
    );
    // A stalled body: the head arrives, the body never does.
    let mut c = open(address);
    let a = send(
        &mut c,
        b"POST /Xy HTTP/1.1\r\nHost: t\r\nContent-Length: 100\r\n\r\n{\"x\":",
    );
    assert_eq!(a.status, 408);
}

fn assert_retry_later(a: &Answer, seconds: u32, error: &str) {
    assert_eq!(a.status, 503, "{}", a.body);
    assert!(
        a.head
            .to_ascii_lowercase()
            .contains(&format!("retry-after: {seconds}")),
        "{}",
        a.head
    );
    assert_eq!(json(a)["error"], error, "{}", a.body);
}

#[test]
fn faults_become_status_codes() {
    let (_cx, address) = start(|s| s.retry_after(7));
    // Turned away: 503 with Retry-After, naming the fault.
    assert_retry_later(&get(address, "/httptest.Shed"), 7, "Busy");
    for (kind, error) in [
        ("overloaded", "Overloaded"),
        ("out-of-service", "OutOfService"),
        ("unavailable", "TemporarilyUnavailable"),
    ] {
        let a = get(address, &format!("/httptest.Refuse?kind={kind}"));
        assert_retry_later(&a, 7, error);
    }
    // Other faults: 500, from the handler itself or from a spool whose worker panicked.
    let a = get(address, "/httptest.Fail");
    assert_eq!(a.status, 500, "{}", a.body);
    assert_eq!(json(&a)["error"], "Faulted");
    assert!(a.body.contains("the handler gave up"), "{}", a.body);
    let a = get(address, "/httptest.Explode");
    assert_eq!(a.status, 500, "{}", a.body);
    assert!(a.body.contains("the worker exploded"), "{}", a.body);
    assert!(
        !a.head.to_ascii_lowercase().contains("retry-after"),
        "{}",
        a.head
    );
    // The service is still there.
    assert_eq!(get(address, "/Xy?x=1&y=1").status, 200);
}

#[test]
fn no_answer_within_the_request_timeout_is_504() {
    let (_cx, address) = start(|s| s.request_timeout(Duration::from_millis(300)));
    let a = get(address, "/httptest.Ignore");
    assert_eq!(a.status, 504, "{}", a.body);
}

#[test]
fn keep_alive_serves_several_requests_on_one_connection() {
    let (_cx, address) = start(|s| s);
    let mut c = open(address);
    for i in 1..=5 {
        let a = send(
            &mut c,
            format!("GET /Xy?x={i}&y=1 HTTP/1.1\r\nHost: t\r\n\r\n").as_bytes(),
        );
        assert_eq!(a.status, 200);
        assert_eq!(json(&a)[0].as_array().unwrap().len(), i);
    }
}

#[test]
fn a_request_held_when_the_service_ends_is_answered() {
    let (mut cx, address) = start(|s| s.request_timeout(WAIT));
    // Hold one request (the service says when it has it), then end the service from
    // another.
    let mut held = open(address);
    held.get_mut()
        .write_all(b"GET /httptest.Ignore HTTP/1.1\r\nHost: t\r\n\r\n")
        .unwrap();
    let _ = support::select_message::<Ignored>(&mut cx, WAIT);
    let quit = get(address, "/httptest.Quit");
    assert_eq!(
        quit.status, 503,
        "the service ended without answering: {}",
        quit.body
    );
    let a = read_answer(&mut held);
    assert_eq!(a.status, 503, "{}", a.body);
}

#[test]
fn the_http_client_turns_messages_into_requests_and_responses_into_messages() {
    use strata::http::{HttpClient, HttpRequest, HttpResponse};
    let (mut cx, address) = start(|s| s);
    let client = cx.create(HttpClient::new(address));
    let table = cx.ask_timeout(client, Xy { x: 2, y: 1 }, WAIT);
    assert_eq!(
        table.downcast::<Vec<Vec<f64>>>().unwrap(),
        vec![vec![1.5, 1.5]]
    );
    let busy = cx.ask_timeout(client, Shed, WAIT);
    assert_eq!(busy.downcast::<Busy>().unwrap().reason, "too slow lately");
    let raw = cx.ask_timeout(client, HttpRequest::get("/Xy?x=1&y=1"), WAIT);
    let raw = raw.downcast::<HttpResponse>().unwrap();
    assert_eq!(
        (raw.status, raw.body.as_slice()),
        (200, b"[[1.5]]".as_slice())
    );
    let missing = cx.ask_timeout(client, HttpRequest::get("/missing"), WAIT);
    assert_eq!(missing.downcast::<HttpResponse>().unwrap().status, 404);
    // Several in flight at once, each answered.
    let asks: Vec<Address> = (1..=20)
        .map(|i| cx.create(GetResponse::new(Xy { x: i, y: 1 }, client).timeout(WAIT)))
        .collect();
    for (i, a) in asks.into_iter().enumerate() {
        let t = cx.wait_for(a).downcast::<Vec<Vec<f64>>>().unwrap();
        assert_eq!(t[0].len(), i + 1);
    }
    // Nobody listening: NotConnected, not a hang.
    let dead = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap()
    };
    let nobody = cx.create(HttpClient::new(dead));
    assert!(cx
        .ask_timeout(nobody, Xy { x: 1, y: 1 }, WAIT)
        .is::<NotConnected>());
}
