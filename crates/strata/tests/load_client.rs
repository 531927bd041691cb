//! The load client against a real HTTP server on loopback: every request counted once,
//! clients replaced after they complete, validation catching a wrong table, errors sorted
//! by kind, thresholds, the constant-rate mode's correction for coordinated omission, and
//! clients of the user's own kind (machines on threads).

mod support;

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use strata::load::{
    ClientKit, ErrorKind, Fleet, Limits, Load, LoadPlan, LoadReport, Outcome, Tally, Validation,
};
use strata::prelude::*;
use strata_texture::table_check;
use support::table_server::{Behaviour, TableServer};
use support::{bounded, poll_until, WAIT};

/// Every run ends within this (plans here run for at most a few seconds).
const RUN_LIMIT: Duration = Duration::from_secs(60);

fn run(plan: &LoadPlan) -> Tally {
    let plan = plan.clone();
    bounded(RUN_LIMIT, move || {
        let mut cx = ThreadContext::attach();
        let fleet = cx.create(Fleet::new(plan).expect("a sound plan"));
        cx.wait_for(fleet)
            .downcast::<Tally>()
            .expect("the fleet returns its tally")
    })
}

/// A raw loopback server for odd answers: `serve` gets each connection in turn (on one
/// thread) with its number. Dropping it stops the accept loop.
struct RawServer {
    address: SocketAddr,
    stop: Arc<AtomicBool>,
}

impl RawServer {
    fn start(mut serve: impl FnMut(TcpStream, usize) + Send + 'static) -> RawServer {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let address = listener.local_addr().unwrap();
        let stop = Arc::new(AtomicBool::new(false));
        let stopped = stop.clone();
        std::thread::spawn(move || {
            for (n, stream) in listener.incoming().enumerate() {
                if stopped.load(Ordering::SeqCst) {
                    break;
                }
                if let Ok(s) = stream {
                    s.set_read_timeout(Some(WAIT)).unwrap();
                    serve(s, n);
                }
            }
        });
        RawServer { address, stop }
    }
}

impl Drop for RawServer {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        let _ = TcpStream::connect(self.address); // wakes the accept loop
    }
}

fn errors(t: &Tally, kind: ErrorKind) -> u64 {
    t.errors[kind as usize]
}

fn plan(url: String) -> LoadPlan {
    let mut p = LoadPlan::new(url);
    p.duration = Some(Duration::from_secs(10));
    p
}

#[test]
fn every_request_is_counted_once_and_clients_are_replaced() {
    let server = TableServer::start(Behaviour::default());
    let mut p = plan(server.url("/Xy?x={1..5}&y={1..5}"));
    p.clients = 4;
    p.requests = 10;
    p.total = Some(200);
    p.validation = table_check();
    let t = run(&p);
    assert_eq!(t.ok, 200, "{t:?}");
    assert_eq!(t.errors.iter().sum::<u64>(), 0, "{t:?}");
    assert_eq!(server.requests(), 200);
    let connections = server.connections.lock().unwrap().clone();
    assert!(connections.iter().all(|&n| n <= 10), "{connections:?}");
    assert!(connections.len() >= 20, "{connections:?}");
    // Each client made at most 10 requests, then a new one took its place.
    assert!(
        t.sessions >= 20 && t.sessions > u64::from(p.clients),
        "{t:?}"
    );
    let report = LoadReport::new(&t, &p, 1, Limits::default());
    assert_eq!((report.requests, report.ok), (200, 200));
    assert!(report.latency_ms.p50 > 0.0 && report.latency_ms.p50 <= report.latency_ms.max);
    assert!(report.passed);
}

#[test]
fn validation_catches_a_wrong_table() {
    let server = TableServer::start(Behaviour {
        wrong: true,
        ..Default::default()
    });
    let mut p = plan(server.url("/Xy?x=3&y=2"));
    p.total = Some(50);
    p.validation = table_check();
    let t = run(&p);
    assert_eq!((t.ok, errors(&t, ErrorKind::Validation)), (0, 50), "{t:?}");
    // The same answers pass when only the status is checked.
    p.validation = Validation::none();
    let t = run(&p);
    assert_eq!(t.ok, 50, "{t:?}");
}

#[test]
fn failures_are_sorted_by_kind() {
    let server = TableServer::start(Behaviour {
        delay: Duration::from_millis(400),
        only_slow: true,
        ..Default::default()
    });
    let mut p = plan(server.url("/{busy,missing,ok}?x=1&y=1"));
    p.total = Some(90);
    let t = run(&p);
    let (busy, status) = (errors(&t, ErrorKind::Busy), errors(&t, ErrorKind::Status));
    assert_eq!(t.ok + busy + status, 90, "{t:?}");
    assert!(t.ok > 0 && busy > 0 && status > 0, "{t:?}");

    // Time-outs: the server answers after 400 ms, the client waits 100 ms.
    let mut p = plan(server.url("/slow"));
    p.total = Some(4);
    p.clients = 2;
    p.timeout = Duration::from_millis(100);
    let t = run(&p);
    assert_eq!(errors(&t, ErrorKind::Timeout), 4, "{t:?}");

    // Nobody listening: connect errors, and the run still ends on its own.
    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let address = closed.local_addr().unwrap();
    drop(closed);
    let mut p = plan(format!("http://{address}/"));
    p.duration = Some(Duration::from_millis(500));
    p.clients = 2;
    let t = run(&p);
    assert!(errors(&t, ErrorKind::Connect) > 0, "{t:?}");
    assert_eq!(t.ok, 0);
}

#[test]
fn a_broken_connection_is_an_io_error() {
    // A server that reads a request and hangs up in the middle of its answer.
    let server = RawServer::start(|mut s, _| {
        let mut buf = [0u8; 1024];
        let _ = s.read(&mut buf);
        let _ = s.write_all(b"HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\npartial");
    });
    let mut p = plan(format!("http://{}/", server.address));
    p.total = Some(3);
    p.clients = 1;
    let t = run(&p);
    assert_eq!(errors(&t, ErrorKind::Io), 3, "{t:?}");
}

#[test]
fn thresholds_decide_whether_a_run_passed() {
    let server = TableServer::start(Behaviour::default());
    let mut p = plan(server.url("/Xy?x=2&y=2"));
    p.total = Some(100);
    let t = run(&p);
    let generous = Limits {
        max_p99: Some(Duration::from_secs(5)),
        max_error_rate: Some(0.0),
    };
    let report = LoadReport::new(&t, &p, 1, generous);
    assert!(report.passed, "{report}");
    assert_eq!(report.thresholds.len(), 2);
    let strict = Limits {
        max_p99: Some(Duration::from_nanos(1)),
        max_error_rate: None,
    };
    let report = LoadReport::new(&t, &p, 1, strict);
    assert!(!report.passed);
    assert!(!report.thresholds[0].passed && report.thresholds[0].name == "p99_ms");
    assert!(report.to_string().contains("FAILED"));

    let wrong = TableServer::start(Behaviour {
        wrong: true,
        ..Default::default()
    });
    let mut p = plan(wrong.url("/Xy?x=2&y=2"));
    p.total = Some(20);
    p.validation = table_check();
    let t = run(&p);
    let limits = Limits {
        max_p99: None,
        max_error_rate: Some(0.5),
    };
    let report = LoadReport::new(&t, &p, 1, limits);
    assert_eq!(report.error_rate, 1.0);
    assert!(!report.passed);
}

#[test]
fn a_constant_rate_shows_the_backlog_a_closed_loop_hides() {
    // Each answer takes 20 ms and there are 2 clients: at most ~100 requests/s.
    let server = TableServer::start(Behaviour {
        delay: Duration::from_millis(20),
        ..Default::default()
    });
    let mut closed = plan(server.url("/Xy?x=1&y=1"));
    closed.clients = 2;
    closed.duration = Some(Duration::from_secs(1));
    let c = LoadReport::new(&run(&closed), &closed, 1, Limits::default());
    // Asked for 200 requests/s, the same clients fall behind; latencies count from each
    // request's due time, so the queue shows.
    let mut paced = closed.clone();
    paced.rate = Some(200.0);
    let r = LoadReport::new(&run(&paced), &paced, 1, Limits::default());
    assert!(
        r.latency_ms.p99 > 2.0 * c.latency_ms.p99 && r.latency_ms.max > 200.0,
        "constant rate: {r}\nclosed loop: {c}"
    );
    // A constant rate is never exceeded: at 100 a second, a second holds at most 101
    // requests (one at the start), and 21 requests take at least 200 ms however fast the
    // server is.
    let fast = TableServer::start(Behaviour::default());
    let mut steady = plan(fast.url("/Xy?x=1&y=1"));
    steady.clients = 4;
    steady.rate = Some(100.0);
    steady.duration = Some(Duration::from_secs(1));
    let t = run(&steady);
    assert!((1..=101).contains(&t.ok), "{t:?}");
    let mut counted = steady.clone();
    counted.duration = None;
    counted.total = Some(21);
    let began = Instant::now();
    let t = run(&counted);
    let took = began.elapsed();
    assert_eq!(t.ok, 21, "{t:?}");
    assert!(
        took >= Duration::from_millis(200),
        "21 requests at 100/s in {took:?}"
    );
}

/// A client of the user's own kind: a machine on a thread of its own that makes one
/// request with blocking std I/O and ends.
struct OneShot {
    kit: ClientKit,
}

#[strata::machine]
impl OneShot {
    fn start(&mut self, cx: &mut Context<Self>, _: Start) {
        self.kit.begin_session();
        let Some(ticket) = self.kit.claim() else {
            cx.complete(0);
            return;
        };
        let started = ticket.due.unwrap_or_else(Instant::now);
        let target = self.kit.target();
        let mut path = String::new();
        self.kit.path(&mut path);
        let outcome = match std::net::TcpStream::connect(target.address) {
            Ok(mut s) => {
                let request = format!(
                    "GET {path} HTTP/1.1\r\nHost: {}\r\nConnection: close\r\n\r\n",
                    target.host
                );
                s.write_all(request.as_bytes()).unwrap();
                let mut response = Vec::new();
                let _ = s.read_to_end(&mut response);
                let text = String::from_utf8_lossy(&response);
                let status = text
                    .split_whitespace()
                    .nth(1)
                    .and_then(|s| s.parse().ok())
                    .unwrap_or(0);
                let body = text.split_once("\r\n\r\n").map(|(_, b)| b).unwrap_or("");
                self.kit.score(&path, status, body.as_bytes())
            }
            Err(_) => Outcome::Failed(ErrorKind::Connect),
        };
        self.kit.record(outcome, started);
        cx.complete(0);
    }
}

#[test]
fn clients_of_your_own_kind_run_as_machines_on_threads() {
    let server = TableServer::start(Behaviour::default());
    let mut p = plan(server.url("/Xy?x={1..3}&y=2"));
    p.clients = 3;
    p.total = Some(30);
    p.validation = table_check();
    let t = bounded(RUN_LIMIT, move || {
        let mut cx = ThreadContext::attach();
        let load = Load::new(p, |kit: ClientKit| Threaded(OneShot { kit })).unwrap();
        let load = cx.create(load);
        cx.wait_for(load).downcast::<Tally>().unwrap()
    });
    assert_eq!(t.ok, 30, "{t:?}");
    // One request per client: thirty clients at least, each replaced when it ended.
    assert!(t.sessions >= 30, "{t:?}");
    let connections = server.connections.lock().unwrap().clone();
    assert_eq!(connections.len(), 30);
    assert!(connections.iter().all(|&n| n == 1));
}

#[test]
fn stopping_a_run_returns_what_was_done() {
    let server = TableServer::start(Behaviour {
        delay: Duration::from_millis(5),
        ..Default::default()
    });
    let mut p = plan(server.url("/Xy?x=1&y=1"));
    p.duration = Some(Duration::from_secs(60));
    let requests = server.connections.clone();
    let t = bounded(WAIT, move || {
        let mut cx = ThreadContext::attach();
        let fleet = cx.create(Fleet::new(p).unwrap());
        poll_until(WAIT, "a request served", || {
            (requests.lock().unwrap().iter().sum::<usize>() > 0).then_some(())
        });
        cx.stop(fleet);
        cx.wait_for(fleet).downcast::<Tally>().unwrap()
    });
    assert!(t.interrupted && t.ok > 0, "{t:?}");
}

#[test]
fn chunked_and_close_delimited_bodies_are_read_whole() {
    // First a chunked answer (in pieces, with a trailer), then one whose body runs to the
    // end of the connection.
    let mut served = 0;
    let server = RawServer::start(move |mut s, _| {
        s.set_nodelay(true).unwrap();
        loop {
            let mut buf = [0u8; 1024];
            match s.read(&mut buf) {
                Ok(0) | Err(_) => break,
                Ok(_) => {}
            }
            served += 1;
            if served % 2 == 1 {
                let parts: [&[u8]; 4] = [
                    b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n6;x=1\r\n[[0.5,",
                    b"\r\n4\r\n0.5]\r\n",
                    b"1\r\n]\r\n0\r\nTrailer: yes\r\n",
                    b"\r\n",
                ];
                for p in parts {
                    s.write_all(p).unwrap();
                    std::thread::sleep(Duration::from_millis(2));
                }
            } else {
                s.write_all(b"HTTP/1.1 200 OK\r\nConnection: close\r\n\r\n[[0.5,")
                    .unwrap();
                std::thread::sleep(Duration::from_millis(2));
                s.write_all(b"0.5]]").unwrap();
                break;
            }
        }
    });
    let address = server.address;
    let mut p = plan(format!("http://{address}/Xy?x=2&y=1"));
    p.total = Some(10);
    p.clients = 1;
    p.validation = table_check();
    let t = run(&p);
    assert_eq!(t.ok, 10, "{t:?}");
}

#[test]
fn a_pause_spaces_a_clients_requests() {
    let server = TableServer::start(Behaviour::default());
    let mut p = plan(server.url("/Xy?x=1&y=1"));
    p.clients = 1;
    p.pause = Duration::from_millis(50);
    p.jitter = 0.2;
    p.duration = Some(Duration::from_secs(1));
    let t = run(&p);
    assert_eq!(t.errors.iter().sum::<u64>(), 0);
    // Pauses of 40 to 60 ms between an answer and the next request: the server sees its
    // requests at least 40 ms apart, so a second holds at most 26 of them.
    assert!((1..=26).contains(&t.ok), "{t:?}");
    let arrivals = server.arrivals.lock().unwrap().clone();
    assert_eq!(arrivals.len() as u64, t.ok);
    for gap in arrivals.windows(2).map(|w| w[1] - w[0]) {
        assert!(gap >= Duration::from_millis(40), "requests {gap:?} apart");
    }
}
