//! The load client's requests of any shape, its checks, HTTPS, stages and HTML report,
//! against real servers on loopback (a std server that keeps what it is sent, over TCP or
//! rustls with a certificate made here): every method with its headers and body arrives
//! as sent, request files are made in order or at random, `expect` catches a wrong value,
//! TLS trusts only what it is told (and resumes sessions), stages move the client count,
//! and the report page holds the run's figures.

#[path = "support/recording_server.rs"]
mod recording_server;
mod support;

use std::collections::HashSet;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use recording_server::{RecordingServer, TestCert};
use strata::load::{
    html_report, Body, ErrorKind, Expect, Fleet, Limits, LoadPlan, LoadReport, Order,
    ScriptedRequest, Stage, Tally, TlsOptions,
};
use strata::prelude::*;
use support::bounded;

const RUN_LIMIT: Duration = Duration::from_secs(60);
const ANSWER: &str = r#"{"status":"ok","n":3,"items":[{"id":7}]}"#;

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

fn plan(url: String, total: u64) -> LoadPlan {
    let mut p = LoadPlan::new(url);
    p.total = Some(total);
    p.duration = Some(Duration::from_secs(30));
    p.clients = 2;
    p
}

fn errors(t: &Tally, kind: ErrorKind) -> u64 {
    t.errors[kind as usize]
}

#[test]
fn every_method_with_a_body_and_headers_arrives_as_sent() {
    let server = RecordingServer::start(ANSWER);
    let methods = ["GET", "POST", "PUT", "PATCH", "DELETE", "OPTIONS", "HEAD"];
    for method in methods {
        let mut p = plan(server.url("/items?page={1..2}"), 12);
        p.method = method.to_string();
        p.headers = vec![
            ("X-Method".into(), method.into()),
            ("X-Spaces".into(), "a value, with spaces".into()),
        ];
        p.body = Body::Json(format!(r#"{{"m": "{method}", "id": {{1..3}}, "o": {{}}}}"#));
        let t = run(&p);
        assert_eq!((t.ok, t.errors), (12, [0; 6]), "{method}: {t:?}");
    }
    let got = server.taken();
    assert_eq!(got.len(), 12 * methods.len());
    for method in methods {
        let mine: Vec<_> = got.iter().filter(|r| r.method == method).collect();
        assert_eq!(mine.len(), 12, "{method}");
        let mut ids = HashSet::new();
        let mut pages = HashSet::new();
        for r in mine {
            assert_eq!(r.header("x-method"), Some(method));
            assert_eq!(r.header("x-spaces"), Some("a value, with spaces"));
            assert_eq!(r.header("content-type"), Some("application/json"));
            assert_eq!(r.header("host"), Some(&*server.address.to_string()));
            let body: serde_json::Value = serde_json::from_slice(&r.body).unwrap();
            assert_eq!(body["m"], method);
            assert_eq!(body["o"], serde_json::json!({}));
            let id = body["id"].as_u64().unwrap();
            assert!((1..=3).contains(&id), "{id}");
            ids.insert(id);
            pages.insert(r.path.clone());
        }
        assert!(
            ids.len() > 1,
            "{method}: the body template drew one id only"
        );
        assert!(pages.is_subset(&HashSet::from([
            "/items?page=1".to_string(),
            "/items?page=2".to_string()
        ])));
    }

    // Bytes of any kind, a Host of the caller's own and a type it names.
    let raw: Vec<u8> = (0..=255u8).collect();
    let mut p = plan(server.url("/raw"), 3);
    p.method = "POST".into();
    p.body = Body::Bytes(raw.clone());
    p.headers = vec![
        ("Host".into(), "service.test".into()),
        ("Content-Type".into(), "application/octet-stream".into()),
    ];
    assert_eq!(run(&p).ok, 3);
    let got: Vec<_> = server
        .taken()
        .into_iter()
        .filter(|r| r.path == "/raw")
        .collect();
    assert_eq!(got.len(), 3);
    for r in got {
        assert_eq!(r.body, raw);
        assert_eq!(r.header("host"), Some("service.test"));
        assert_eq!(r.header("content-type"), Some("application/octet-stream"));
        assert_eq!(r.header("content-length"), Some("256"));
        assert_eq!(
            r.headers
                .iter()
                .filter(|(n, _)| n.eq_ignore_ascii_case("host"))
                .count(),
            1
        );
    }
}

#[test]
fn request_files_are_made_in_order_or_at_random() {
    let server = RecordingServer::start(ANSWER);
    let script = ScriptedRequest::parse_lines(
        r#"{"method": "POST", "path": "/a", "headers": {"X-Line": "1"}, "body": {"n": 1}}
{"path": "/b", "headers": {"X-Line": "2"}}
{"method": "PUT", "path": "/c", "headers": {"X-Line": "3"}, "body": "plain text"}"#,
    )
    .unwrap();
    let mut p = plan(server.url("/ignored"), 9);
    p.clients = 1;
    p.script = script.clone();
    p.headers = vec![("X-All".into(), "yes".into())];
    assert_eq!(run(&p).ok, 9);
    let got = server.taken();
    let seen: Vec<(&str, &str)> = got
        .iter()
        .map(|r| (r.method.as_str(), r.path.as_str()))
        .collect();
    let round = [("POST", "/a"), ("GET", "/b"), ("PUT", "/c")];
    assert_eq!(seen, round.repeat(3));
    assert!(got.iter().all(|r| r.header("x-all") == Some("yes")));
    assert_eq!(got[0].body, br#"{"n":1}"#);
    assert_eq!(got[0].header("content-type"), Some("application/json"));
    assert_eq!(got[0].header("x-line"), Some("1"));
    assert!(got[1].body.is_empty());
    assert_eq!(got[2].body, b"plain text");
    assert_eq!(got[2].header("content-type"), None);

    server.requests.lock().unwrap().clear();
    p.order = Order::Random;
    p.total = Some(60);
    assert_eq!(run(&p).ok, 60);
    let got = server.taken();
    let paths: Vec<&str> = got.iter().map(|r| r.path.as_str()).collect();
    for want in ["/a", "/b", "/c"] {
        assert!(paths.contains(&want), "{want} never drawn: {paths:?}");
    }
    let in_turn: Vec<&str> = ["/a", "/b", "/c"].repeat(20);
    assert_ne!(paths, in_turn, "random order came out in turn");

    // A request file and a body of the plan's own are refused, naming it.
    p.body = Body::Bytes(b"x".to_vec());
    assert_eq!(Fleet::new(p).err().unwrap().parameter, "body");
}

#[test]
fn expect_json_catches_a_wrong_value() {
    let server = RecordingServer::start(ANSWER);
    let mut p = plan(server.url("/status"), 20);
    p.expect = vec![Expect::json("/items/0/id=7").unwrap()];
    let t = run(&p);
    assert_eq!((t.ok, errors(&t, ErrorKind::Validation)), (20, 0));

    p.expect = vec![
        Expect::json("/status=ok").unwrap(),
        Expect::json("/n=4").unwrap(),
    ];
    let t = run(&p);
    assert_eq!((t.ok, errors(&t, ErrorKind::Validation)), (0, 20));
    let report = LoadReport::new(&t, &p, 1, Limits::default());
    assert_eq!(report.errors.validation, 20);
    assert!(!report.examples.is_empty() && report.examples.len() <= 5);
    assert!(
        report.examples[0].contains("/n is 3, not 4"),
        "{:?}",
        report.examples
    );
    assert!(format!("{report}").contains("/n is 3, not 4"));

    p.expect = vec![Expect::BodyContains("\"status\":\"ok\"".into())];
    assert_eq!(run(&p).ok, 20);
    p.expect = vec![Expect::BodyContains("missing text".into())];
    let t = run(&p);
    assert_eq!(errors(&t, ErrorKind::Validation), 20);
    assert!(t.examples[0].contains("does not contain `missing text`"));
}

#[test]
fn https_trusts_the_given_ca_refuses_without_it_and_resumes_sessions() {
    let cert = TestCert::make();
    let server = RecordingServer::start_tls(ANSWER, &cert);
    let trusted = TlsOptions {
        ca_pem: Some(cert.ca_pem.clone()),
        insecure: false,
    };

    // Kept alive: a handshake per client, not per request.
    let mut p = plan(server.url("/secure?x={1..5}"), 60);
    p.requests = 0;
    p.method = "POST".into();
    p.body = Body::Bytes(b"over tls".to_vec());
    p.tls = trusted.clone();
    let t = run(&p);
    assert_eq!((t.ok, t.errors), (60, [0; 6]), "{t:?}");
    let got = server.taken();
    assert_eq!(got.len(), 60);
    assert!(got
        .iter()
        .all(|r| r.body == b"over tls" && r.method == "POST"));
    let handshakes = server.handshakes.lock().unwrap().len();
    assert!(
        handshakes <= 2,
        "{handshakes} handshakes for 2 kept-alive clients"
    );

    // A connection per request: later handshakes resume the first session.
    server.handshakes.lock().unwrap().clear();
    let mut p = plan(server.url("/again"), 12);
    p.clients = 1;
    p.keep_alive = false;
    p.tls = trusted;
    assert_eq!(run(&p).ok, 12);
    let hs = server.handshakes.lock().unwrap().clone();
    assert_eq!(hs.len(), 12, "one handshake per request without keep-alive");
    assert!(
        hs.iter().skip(1).filter(|&&resumed| resumed).count() >= 6,
        "few sessions resumed: {hs:?}"
    );

    // The system's roots do not know the test CA: every connection is refused.
    let mut p = plan(server.url("/untrusted"), 10);
    p.clients = 1;
    match Fleet::new(p.clone()) {
        // A machine without system roots refuses the plan itself, naming why.
        Err(e) => assert!(e.reason.contains("no system root"), "{e}"),
        Ok(_) => {
            let t = run(&p);
            assert_eq!(t.ok, 0);
            assert_eq!(errors(&t, ErrorKind::Connect), 10, "{t:?}");
            assert!(
                t.examples.iter().any(|e| e.contains("certificate")),
                "{:?}",
                t.examples
            );
        }
    }
    assert!(server.taken().iter().all(|r| r.path != "/untrusted"));

    // Insecure checks nothing.
    p.tls.insecure = true;
    assert_eq!(run(&p).ok, 10);

    // A CA file that is no certificate, and TLS options on plain HTTP, are refused.
    p.tls = TlsOptions {
        ca_pem: Some("not pem".into()),
        insecure: false,
    };
    assert_eq!(Fleet::new(p.clone()).err().unwrap().parameter, "tls");
    p.url = "http://127.0.0.1:1/".into();
    p.tls.ca_pem = Some(cert.ca_pem);
    assert_eq!(Fleet::new(p).err().unwrap().parameter, "tls");
}

#[test]
fn stages_change_the_client_count_at_the_right_times() {
    let server = RecordingServer::start(ANSWER);
    let mut p = LoadPlan::new(server.url("/staged"));
    p.requests = 0;
    p.pause = Duration::from_millis(5);
    p.jitter = 0.0;
    p.duration = None;
    // Up to 3 clients in 1 s, hold, up to 8, hold, down to none.
    p.stages = Stage::parse_list("1s:3,1.5s:3,500ms:8,1.5s:8,500ms:0").unwrap();
    assert_eq!(p.max_clients(), 8);
    let began = Instant::now();
    let running = {
        let p = p.clone();
        std::thread::spawn(move || run(&p))
    };
    let mut samples = Vec::new();
    while !running.is_finished() && began.elapsed() < RUN_LIMIT {
        samples.push((
            began.elapsed().as_secs_f64(),
            server.open.load(Ordering::SeqCst),
        ));
        std::thread::sleep(Duration::from_millis(50));
    }
    let tally = running.join().unwrap();
    let median_in = |from: f64, to: f64| {
        let mut v: Vec<usize> = samples
            .iter()
            .filter(|(t, _)| (from..to).contains(t))
            .map(|s| s.1)
            .collect();
        assert!(!v.is_empty(), "no sample in {from}-{to}s");
        v.sort_unstable();
        v[v.len() / 2]
    };
    // Generous windows well inside each hold.
    let first = median_in(1.4, 2.3);
    assert!(
        (2..=4).contains(&first),
        "holding 3: {first} open ({samples:?})"
    );
    let second = median_in(3.3, 3.9);
    assert!(
        (6..=9).contains(&second),
        "holding 8: {second} open ({samples:?})"
    );
    assert!(first < second);
    assert!(tally.ok > 0 && tally.errors == [0; 6], "{tally:?}");

    // The report's timeline saw the same, and its stages are judged one by one.
    let limits = Limits {
        max_error_rate: Some(0.0),
        ..Limits::default()
    };
    let report = LoadReport::new(&tally, &p, 1, limits);
    assert_eq!(report.stages.len(), 5);
    assert!(report.stages.iter().all(|s| s.thresholds.len() == 1));
    assert!(report.passed, "{report}");
    let clients_at = |t: usize| report.seconds.get(t).map_or(0, |s| s.clients);
    assert!((2..=4).contains(&clients_at(1)), "{:?}", report.seconds);
    assert!((7..=8).contains(&clients_at(3)), "{:?}", report.seconds);
}

#[test]
fn stages_ramp_a_constant_rate() {
    let server = RecordingServer::start(ANSWER);
    let mut p = LoadPlan::new(server.url("/paced"));
    p.clients = 4;
    p.duration = None;
    // From 1/s to 100/s over 2 s: (1 + 100) / 2 · 2 = 101 requests are due.
    p.rate = Some(1.0);
    p.stages = vec![Stage {
        duration: Duration::from_secs(2),
        target: 100.0,
    }];
    let t = run(&p);
    let done = t.ok + t.errors.iter().sum::<u64>();
    assert!((90..=102).contains(&done), "{done} requests: {t:?}");
    // More of them fell in the second half than in the first.
    let report = LoadReport::new(&t, &p, 1, Limits::default());
    let first = report.seconds.first().map_or(0, |s| s.requests);
    let second = report.seconds.get(1).map_or(0, |s| s.requests);
    assert!(second > 2 * first, "{first} then {second}");
}

#[test]
fn the_html_report_holds_the_run_figures() {
    let server = RecordingServer::start(ANSWER);
    let mut p = plan(server.url("/report?x={1..9}"), 400);
    p.timeline = true;
    p.expect = vec![Expect::json("/n=3").unwrap()];
    p.headers = vec![("Authorization".into(), "Bearer secret-token".into())];
    let t = run(&p);
    let report = LoadReport::new(&t, &p, 1, Limits::default());
    assert!(!report.seconds.is_empty());
    let page = html_report(&report, &t, &p);
    // Self-contained: nothing to fetch.
    for fetch in ["<link", " src=", "@import", "url("] {
        assert!(!page.contains(fetch), "the page fetches something: {fetch}");
    }
    assert_eq!(page.matches("<svg").count(), 4, "four charts");
    assert!(!page.contains("secret-token"), "a credential in the page");
    // The embedded report is the run's.
    let start = page
        .find(r#"<script type="application/json" id="strata-report">"#)
        .expect("the embedded report")
        + r#"<script type="application/json" id="strata-report">"#.len();
    let end = start + page[start..].find("</script>").unwrap();
    let embedded: LoadReport = serde_json::from_str(&page[start..end]).unwrap();
    assert_eq!(embedded, report);
    assert_eq!(embedded.requests, 400);
    // And the figures shown are its figures.
    let figure = |key: &str| {
        let marker = format!("data-figure=\"{key}\">");
        let at = page.find(&marker).unwrap_or_else(|| panic!("no {key}")) + marker.len();
        page[at..at + page[at..].find('<').unwrap()].to_string()
    };
    assert_eq!(figure("requests"), "400");
    assert_eq!(figure("ok"), report.ok.to_string());
    assert_eq!(figure("p99"), format!("{:.3}", report.latency_ms.p99));
    assert_eq!(figure("validation"), "0");
    assert!(page.contains(&p.url));
}
