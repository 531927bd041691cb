//! The HTTP front and client against hostile peers, over real loopback sockets: more
//! connections than the caps allow, a client that never reads its reply, replies over
//! `max_reply`, absurd table sizes and non-finite floats; on the client side, a server
//! whose body never ends, and one that answers with the runtime's own messages or with
//! types the caller does not expect.

mod support;

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{IpAddr, SocketAddr, TcpListener, TcpStream};
use std::time::Duration;

use strata::http::{Api, HttpClient, HttpCounters, HttpRequest, HttpResponse, HttpServer};
use strata::message::codec;
use strata::net::Listening;
use strata::prelude::*;
use strata_texture::Xy;
use support::http::{get, json, open, post, send};
use support::{expect_message, poll_until, WAIT};

/// Answered with a JSON string of `bytes` bytes (plus its two quotes).
#[derive(Debug, Clone, Copy, Serialize, Deserialize, Message)]
#[message(name = "httptest.Big")]
struct Big {
    bytes: usize,
}

/// Answered with `r` doubled.
#[derive(Debug, Clone, Copy, Serialize, Deserialize, Message)]
#[message(name = "httptest.Ratio")]
struct Ratio {
    r: f64,
}

struct Service {
    server: Option<HttpServer>,
    seed: u64,
}

#[strata::machine]
impl Service {
    fn start(&mut self, cx: &mut Context<Self>, _: Start) {
        cx.create(self.server.take().expect("one server"));
    }
    fn listening(&mut self, cx: &mut Context<Self>, m: Listening) {
        let parent = cx.parent();
        cx.send(parent, m);
    }
    fn xy(&mut self, _cx: &mut Context<Self>, m: Xy) -> strata_texture::Table {
        strata_texture::texture(m.x, m.y, &mut self.seed)
    }
    fn big(&mut self, _cx: &mut Context<Self>, m: Big) -> String {
        "a".repeat(m.bytes)
    }
    fn ratio(&mut self, _cx: &mut Context<Self>, m: Ratio) -> f64 {
        m.r * 2.0
    }
}

/// Starts the service with its HTTP front on a free loopback port; gives the context, the
/// address and the server's counters.
fn start(
    server: impl FnOnce(HttpServer) -> HttpServer,
) -> (ThreadContext, SocketAddr, HttpCounters) {
    let mut cx = ThreadContext::attach();
    let api = Api::new()
        .message::<Xy>()
        .message::<Big>()
        .message::<Ratio>();
    let http = server(HttpServer::new("127.0.0.1:0".parse().unwrap(), api));
    let counters = http.counters();
    cx.create(Service {
        server: Some(http),
        seed: 7,
    });
    let e = cx
        .select_timeout::<(Listening,)>(WAIT)
        .expect("the server listens");
    let address = e.take::<Listening>().unwrap().address.parse().unwrap();
    (cx, address, counters)
}

/// A connection to `to` from the loopback address `source` (127.0.0.x: each is a client
/// IP address of its own).
fn connect_from(source: &str, to: SocketAddr) -> BufReader<TcpStream> {
    let source: IpAddr = source.parse().unwrap();
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_io()
        .build()
        .unwrap();
    let stream = runtime
        .block_on(async {
            let socket = tokio::net::TcpSocket::new_v4()?;
            socket.bind(SocketAddr::new(source, 0))?;
            socket.connect(to).await
        })
        .unwrap_or_else(|e| panic!("connecting from {source}: {e}"));
    let stream = stream.into_std().unwrap();
    stream.set_nonblocking(false).unwrap();
    stream.set_read_timeout(Some(WAIT)).unwrap();
    BufReader::new(stream)
}

const SMALL: &[u8] = b"GET /httptest.Big?bytes=1 HTTP/1.1\r\nHost: t\r\n\r\n";

/// Asks once on a kept-alive connection: must be served.
fn served(c: &mut BufReader<TcpStream>) {
    let a = send(c, SMALL);
    assert_eq!(a.status, 200, "{}", a.body);
}

/// Whether the server closed `c` without answering (it may reset it, since the request
/// sent is never read). Fails the test on an answer, or if nothing happens within `WAIT`.
fn closed_unanswered(c: &mut BufReader<TcpStream>) -> bool {
    use std::io::ErrorKind::{BrokenPipe, ConnectionAborted, ConnectionReset};
    if let Err(e) = c.get_mut().write_all(SMALL) {
        assert!(matches!(e.kind(), BrokenPipe | ConnectionReset), "{e}");
        return true;
    }
    let mut first = [0; 64];
    match c.read(&mut first) {
        Ok(0) => true,
        Err(e) if matches!(e.kind(), ConnectionReset | ConnectionAborted) => true,
        Ok(n) => panic!(
            "answered instead of closed: {:?}",
            String::from_utf8_lossy(&first[..n])
        ),
        Err(e) => panic!("neither answered nor closed within {WAIT:?}: {e}"),
    }
}

#[test]
fn connections_over_the_caps_are_closed_at_once_and_open_ones_are_still_served() {
    let (_cx, address, counters) = start(|s| s.max_connections(4).max_connections_per_ip(2));
    // Two from one address: both served, and kept open.
    let mut a1 = connect_from("127.0.0.1", address);
    let mut a2 = connect_from("127.0.0.1", address);
    served(&mut a1);
    served(&mut a2);
    // A third from the same address is over the per-address cap.
    assert!(closed_unanswered(&mut connect_from("127.0.0.1", address)));
    // Another address still has room, until the total cap.
    let mut b1 = connect_from("127.0.0.2", address);
    let mut b2 = connect_from("127.0.0.2", address);
    served(&mut b1);
    served(&mut b2);
    assert!(closed_unanswered(&mut connect_from("127.0.0.3", address)));
    assert_eq!(counters.refused_connections(), 2);
    assert_eq!(counters.open_connections(), 4);
    // The open connections were not harmed.
    for c in [&mut a1, &mut a2, &mut b1, &mut b2] {
        served(c);
    }
    // A closed connection frees its place (once the server has seen it close).
    drop(a1);
    poll_until(WAIT, "a place freed for 127.0.0.1", || {
        let mut c = connect_from("127.0.0.1", address);
        c.get_mut().write_all(SMALL).ok()?;
        let mut status = String::new();
        match c.read_line(&mut status) {
            Ok(n) if n > 0 => {
                assert!(status.starts_with("HTTP/1.1 200"), "{status}");
                Some(())
            }
            _ => None,
        }
    });
    served(&mut b1);
}

/// Bigger than what the kernel buffers on both ends of a loopback connection can hold
/// (a few MiB), so a client that does not read stalls the server's writes.
const LARGE: usize = 24 << 20;

#[test]
fn a_client_that_stops_reading_a_large_reply_is_dropped_after_the_write_timeout() {
    let (_cx, address, counters) = start(|s| s.write_timeout(Duration::from_millis(300)));
    let mut stalled = open(address);
    stalled
        .get_mut()
        .write_all(
            format!("GET /httptest.Big?bytes={LARGE} HTTP/1.1\r\nHost: t\r\n\r\n").as_bytes(),
        )
        .unwrap();
    // It reads nothing; the server gives up on it and frees the connection.
    poll_until(WAIT, "the stalled connection dropped", || {
        (counters.write_timeouts() == 1 && counters.open_connections() == 0).then_some(())
    });
    // What it can still read ends short of the reply: the connection was reset.
    let mut got = Vec::new();
    let ended = stalled.read_to_end(&mut got);
    assert!(
        ended.is_err() || got.len() < LARGE,
        "the whole reply arrived: {} bytes",
        got.len()
    );
    // The server goes on serving.
    assert_eq!(get(address, "/httptest.Big?bytes=3").body, "\"aaa\"");
}

#[test]
fn a_client_that_reads_a_large_reply_gets_all_of_it() {
    let (_cx, address, counters) = start(|s| s);
    let a = get(address, &format!("/httptest.Big?bytes={LARGE}"));
    assert_eq!((a.status, a.body.len()), (200, LARGE + 2));
    assert_eq!(counters.write_timeouts(), 0);
}

#[test]
fn a_reply_over_max_reply_is_a_500_naming_the_limit() {
    let (mut cx, address, counters) = start(|s| s.max_reply(1024));
    assert_eq!(get(address, "/httptest.Big?bytes=1000").status, 200);
    let a = get(address, "/httptest.Big?bytes=2000");
    assert_eq!(a.status, 500, "{}", a.body);
    let body = json(&a);
    assert_eq!(body["error"], "reply too large");
    assert_eq!(body["limit"], 1024);
    assert!(
        body["reason"].as_str().unwrap().contains("max_reply"),
        "{body}"
    );
    // A typed request (the HttpClient's) gets the fault itself.
    let client = cx.create(HttpClient::new(address));
    let reply = cx.ask_timeout(client, Big { bytes: 2000 }, WAIT);
    let fault = reply.downcast::<Faulted>().unwrap();
    assert!(fault.reason.contains("max_reply, 1024 bytes"), "{fault}");
    assert_eq!(counters.replies_too_large(), 2);
}

#[test]
fn absurd_table_sizes_are_a_400_naming_the_bound() {
    let (_cx, address, _) = start(|s| s);
    for target in [
        "/Xy?x=100000&y=100000",
        "/Xy?x=1000001&y=1",
        // x·y overflows a usize: refused, not wrapped around.
        "/Xy?x=4294967297&y=4294967297",
    ] {
        let a = get(address, target);
        assert_eq!(a.status, 400, "{target}: {}", a.body);
        let reason = json(&a)["reason"].as_str().unwrap().to_string();
        assert!(reason.contains("more than 1000000 cells"), "{reason}");
        assert!(reason.contains("MAX_CELLS"), "{reason}");
    }
    let a = post(address, "/Xy", r#"{"x": 100000, "y": 100000}"#);
    assert_eq!(a.status, 400, "{}", a.body);
    // Tables within the bound are made, and pass the load client's check.
    let a = get(address, "/Xy?x=3&y=2");
    assert_eq!(a.status, 200, "{}", a.body);
    strata_texture::check_table("/Xy?x=3&y=2", a.body.as_bytes()).unwrap();
}

#[test]
fn non_finite_floats_are_a_400_naming_the_field() {
    let (_cx, address, _) = start(|s| s);
    for r in ["NaN", "inf", "-inf", "infinity", "1e400"] {
        let a = get(address, &format!("/httptest.Ratio?r={r}"));
        assert_eq!(a.status, 400, "{r}: {}", a.body);
        let body = json(&a);
        assert_eq!(body["field"], "r", "{body}");
        assert!(
            body["reason"].as_str().unwrap().contains("finite"),
            "{body}"
        );
    }
    // JSON has no such numbers: a body with one is refused as well.
    let a = post(address, "/httptest.Ratio", r#"{"r": 1e400}"#);
    assert_eq!(a.status, 400, "{}", a.body);
    let a = get(address, "/httptest.Ratio?r=0.25");
    assert_eq!((a.status, json(&a)), (200, serde_json::json!(0.5)));
}

/// A hostile HTTP server on a free loopback port: reads each request's head (and its
/// `Content-Length` body) and lets `answer` write the response, on every connection, for
/// as long as the client keeps it open. Its threads end with the test binary.
fn hostile(answer: impl Fn(&mut TcpStream) + Send + Sync + 'static) -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let address = listener.local_addr().unwrap();
    let answer = std::sync::Arc::new(answer);
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(stream) = stream else { continue };
            let answer = answer.clone();
            std::thread::spawn(move || {
                let mut reader = BufReader::new(stream.try_clone().unwrap());
                let mut stream = stream;
                loop {
                    let mut length = 0;
                    loop {
                        let mut line = String::new();
                        match reader.read_line(&mut line) {
                            Ok(0) | Err(_) => return,
                            Ok(_) if line == "\r\n" => break,
                            Ok(_) => {
                                if let Some(v) =
                                    line.to_ascii_lowercase().strip_prefix("content-length:")
                                {
                                    length = v.trim().parse().unwrap_or(0);
                                }
                            }
                        }
                    }
                    let mut body = vec![0; length];
                    if reader.read_exact(&mut body).is_err() {
                        return;
                    }
                    answer(&mut stream);
                }
            });
        }
    });
    address
}

/// A hostile server answering every request `200` with `body`.
fn answering(body: String) -> SocketAddr {
    hostile(move |s| {
        let _ = write!(
            s,
            "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
            body.len()
        );
    })
}

/// A message the tests send through the client (`POST /httptest.Probe`).
#[derive(Debug, Clone, Copy, Serialize, Deserialize, Message)]
#[message(name = "httptest.Probe")]
struct Probe;

#[test]
fn the_client_does_not_read_a_response_over_max_response() {
    let mut cx = ThreadContext::attach();
    let limit = 64 << 10;
    // Declared too large: refused before reading.
    let declared = hostile(|s| {
        let _ = s.write_all(b"HTTP/1.1 200 OK\r\nContent-Length: 100000000\r\n\r\n[[");
    });
    // Never ends: chunks for as long as anyone reads them.
    let endless = hostile(|s| {
        let _ = s.write_all(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n");
        let chunk = format!("1000\r\n{}\r\n", "7".repeat(0x1000));
        while s.write_all(chunk.as_bytes()).is_ok() {}
    });
    for server in [declared, endless] {
        let client = cx.create(HttpClient::new(server).max_response(limit));
        for request in [
            AnyMessage::new(Probe),
            AnyMessage::new(HttpRequest::get("/")),
        ] {
            let reply = cx.ask_timeout(client, request, WAIT);
            let fault = reply
                .downcast::<Faulted>()
                .unwrap_or_else(|m| panic!("{server}: expected Faulted, got {m:?}"));
            assert!(
                fault
                    .reason
                    .contains("larger than max_response, 65536 bytes"),
                "{fault}"
            );
        }
    }
    // Within the limit, a response is read as usual.
    let small = answering("x".repeat(1000));
    let client = cx.create(HttpClient::new(small).max_response(limit));
    let reply = cx.ask_timeout(client, HttpRequest::get("/"), WAIT);
    assert_eq!(reply.downcast::<HttpResponse>().unwrap().body.len(), 1000);
}

/// Asks the client named in `Ask` with a `Probe` and tells its creator what came back, as
/// `Heard`. It has no `Stop` handler: a `Stop` delivered to it would abort it (and its
/// creator would get its `Returned`, not a `Heard`).
struct Caller;

/// Please ask `client`.
#[derive(Debug, Clone, Copy, Serialize, Deserialize, Message)]
#[message(name = "httptest.Ask")]
struct Ask {
    client: Address,
}

/// What the `Caller` was answered: the type, and the reason of a fault.
#[derive(Debug, Clone, Serialize, Deserialize, Message)]
#[message(name = "httptest.Heard")]
struct Heard {
    type_name: String,
    reason: String,
}

#[strata::machine]
impl Caller {
    fn ask(&mut self, cx: &mut Context<Self>, m: Ask) {
        cx.send(m.client, Probe);
    }
    fn fault(&mut self, cx: &mut Context<Self>, f: AnyFault) {
        let parent = cx.parent();
        let heard = Heard {
            type_name: f.type_name().to_string(),
            reason: f.reason(),
        };
        cx.send(parent, heard);
    }
    fn table(&mut self, cx: &mut Context<Self>, _: Vec<Vec<f64>>) {
        let parent = cx.parent();
        let heard = Heard {
            type_name: "table".into(),
            reason: String::new(),
        };
        cx.send(parent, heard);
    }
}

fn typed(m: impl Message) -> serde_json::Value {
    codec::to_json(&AnyMessage::new(m)).unwrap()
}

#[test]
fn the_client_never_delivers_the_runtimes_own_messages() {
    let mut cx = ThreadContext::attach();
    let caller = cx.create(Caller);
    let returned = Returned {
        value: AnyMessage::new(7i64),
    };
    let listening = Listening {
        address: "127.0.0.1:1".into(),
    };
    for (name, reply) in [
        ("Stop", typed(Stop)),
        ("Start", typed(Start)),
        ("Returned", typed(returned)),
        ("T1", typed(T1)),
        ("Listening", typed(listening)),
        // A Stop wrapped in an `any` decodes to the Stop itself.
        (
            "Stop",
            serde_json::json!({"type": "any", "value": typed(Stop)}),
        ),
    ] {
        let client = cx.create(HttpClient::new(answering(reply.to_string())));
        cx.send(caller, Ask { client });
        let (heard, _) = expect_message::<Heard>(&mut cx, WAIT);
        assert_eq!(heard.type_name, "Faulted", "{name}: {heard:?}");
        assert!(
            heard
                .reason
                .contains(&format!("answered `{name}`, one of the runtime's own")),
            "{heard:?}"
        );
    }
    // The caller is still there, and hears proper replies.
    let table = serde_json::json!({"type": "vec<vec<f64>>", "value": [[0.5]]});
    let client = cx.create(HttpClient::new(answering(table.to_string())));
    cx.send(caller, Ask { client });
    assert_eq!(expect_message::<Heard>(&mut cx, WAIT).0.type_name, "table");
}

#[test]
fn a_client_told_what_to_expect_refuses_other_replies() {
    let mut cx = ThreadContext::attach();
    let ask = |cx: &mut ThreadContext, server: SocketAddr| {
        let client = cx.create(HttpClient::new(server).expect::<Probe, Vec<Vec<f64>>>());
        cx.ask_timeout(client, Probe, WAIT)
    };
    let wrong = answering(typed("hello".to_string()).to_string());
    let fault = ask(&mut cx, wrong).downcast::<Faulted>().unwrap();
    assert!(
        fault
            .reason
            .contains("answered `string` to `httptest.Probe`, which expects `vec<vec<f64>>`"),
        "{fault}"
    );
    let right = answering(typed(vec![vec![0.5f64]]).to_string());
    assert_eq!(
        ask(&mut cx, right).downcast::<Vec<Vec<f64>>>().unwrap(),
        vec![vec![0.5]]
    );
    // Faults are still answers.
    let busy = hostile(|s| {
        let body = serde_json::json!({"error": "Busy", "reason": "later", "fault": typed(Busy::new("later"))})
            .to_string();
        let _ = write!(
            s,
            "HTTP/1.1 503 Service Unavailable\r\nContent-Length: {}\r\n\r\n{body}",
            body.len()
        );
    });
    assert_eq!(
        ask(&mut cx, busy).downcast::<Busy>().unwrap().reason,
        "later"
    );
    // A client not told refuses only the runtime's own messages.
    let client = cx.create(HttpClient::new(answering(
        typed("hello".to_string()).to_string(),
    )));
    let reply = cx.ask_timeout(client, Probe, WAIT);
    assert_eq!(reply.downcast::<String>().unwrap(), "hello");
}
