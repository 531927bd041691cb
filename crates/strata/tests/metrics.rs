//! Metrics end to end: a real spool under requests, scraped at `/metrics` over loopback
//! with a plain socket, the text parsed and its counts checked against what was sent; a
//! series leaving with its object; other paths and methods; `STRATA_METRICS` in a real
//! `strata::main` program (good, malformed, and a port already taken).

mod support;

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::process::Command;
use std::sync::OnceLock;
use std::time::Duration;

use strata::metrics::MetricsServer;
use strata::prelude::*;
use strata::spool::{Spool, SpoolStatistics, SpoolStats};
use support::gate::Gate;
use support::programs::{run_bounded, testbin};
use support::{bounded, poll_until, returned_from, WAIT};

#[derive(Debug, Clone, Copy, Serialize, Deserialize, Message)]
#[message(name = "metricstest.Job")]
struct Job {
    /// Wait for the test's gate before answering.
    held: bool,
    /// Panic instead of answering (the worker ends; the request fails).
    die: bool,
}

#[derive(Debug, Clone, Copy, Serialize, Deserialize, Message)]
#[message(name = "metricstest.Done")]
struct Done;

#[derive(Clone, Default)]
struct Worker {
    gate: Gate,
}

#[strata::machine]
impl Worker {
    fn job(&mut self, _cx: &mut Context<Self>, j: Job) -> Done {
        if j.held {
            self.gate.pass();
        }
        if j.die {
            panic!("worker told to die");
        }
        Done
    }
}

/// One `/metrics` server for the whole test binary (the figures are the process's).
fn server() -> SocketAddr {
    static SERVER: OnceLock<MetricsServer> = OnceLock::new();
    SERVER
        .get_or_init(|| strata::metrics::serve("127.0.0.1:0".parse().unwrap()).expect("serves"))
        .address()
}

/// One sample of the text format: name, labels, value.
#[derive(Debug, Clone)]
struct Sample {
    name: String,
    labels: BTreeMap<String, String>,
    value: f64,
}

/// Parses the Prometheus text format (comments skipped; label values without escapes,
/// as ours are).
fn parse(text: &str) -> Vec<Sample> {
    let mut samples = Vec::new();
    for line in text.lines() {
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let (series, value) = line.rsplit_once(' ').expect("`series value`");
        let value: f64 = value.parse().unwrap_or_else(|_| panic!("a number: {line}"));
        let (name, labels) = match series.split_once('{') {
            None => (series.to_string(), BTreeMap::new()),
            Some((name, rest)) => {
                let inner = rest.strip_suffix('}').expect("labels end with }");
                let labels = inner
                    .split("\",")
                    .filter(|p| !p.is_empty())
                    .map(|pair| {
                        let (k, v) = pair.split_once("=\"").expect("k=\"v\"");
                        (k.to_string(), v.trim_end_matches('"').to_string())
                    })
                    .collect();
                (name.to_string(), labels)
            }
        };
        samples.push(Sample {
            name,
            labels,
            value,
        });
    }
    samples
}

/// Scrapes `/metrics` with a plain socket: status 200, the text format's content type.
fn scrape() -> Vec<Sample> {
    let answer = support::http::get(server(), "/metrics");
    assert_eq!(answer.status, 200, "{}", answer.head);
    assert!(
        answer.head.contains("text/plain; version=0.0.4"),
        "{}",
        answer.head
    );
    parse(&answer.body)
}

/// The value of `name` for the object `object` (and `extra` labels).
fn value_of(
    samples: &[Sample],
    name: &str,
    object: Address,
    extra: &[(&str, &str)],
) -> Option<f64> {
    let object = object.to_string();
    samples
        .iter()
        .find(|s| {
            s.name == name
                && s.labels.get("object") == Some(&object)
                && extra
                    .iter()
                    .all(|(k, v)| s.labels.get(*k).map(String::as_str) == Some(*v))
        })
        .map(|s| s.value)
}

fn stats(cx: &mut ThreadContext, spool: Address) -> SpoolStatistics {
    cx.ask_timeout(spool, SpoolStats, WAIT)
        .downcast::<SpoolStatistics>()
        .expect("statistics")
}

#[test]
fn a_spool_under_requests_shows_what_it_admitted_completed_failed_and_rejected() {
    bounded(Duration::from_secs(60), || {
        let mut cx = ThreadContext::attach();
        let worker = Worker::default();
        let gate = worker.gate.clone();
        let spool = cx.create(
            Spool::of(move || Threaded(worker.clone()))
                .workers(1)
                .queue_size(Some(1)),
        );
        // One held on the worker, one queued, three refused (the queue holds one).
        cx.send(
            spool,
            Job {
                held: true,
                die: false,
            },
        );
        for _ in 0..4 {
            cx.send(
                spool,
                Job {
                    held: false,
                    die: false,
                },
            );
        }
        let mut overloaded = 0;
        for _ in 0..3 {
            let a = cx.recv_timeout(WAIT).expect("an answer");
            assert!(a.is::<Overloaded>(), "{:?}", a.type_name());
            overloaded += 1;
        }
        gate.open();
        for _ in 0..2 {
            let a = cx.recv_timeout(WAIT).expect("an answer");
            assert!(a.is::<Done>(), "{:?}", a.type_name());
        }
        // A worker that dies fails its request; the spool replaces it.
        cx.send(
            spool,
            Job {
                held: false,
                die: true,
            },
        );
        let a = cx.recv_timeout(WAIT).expect("an answer");
        assert!(a.is_fault() && !a.is::<Overloaded>(), "{:?}", a.type_name());
        // Two more, one at a time (each waits in the queue for the replacement if need be).
        for _ in 0..2 {
            cx.send(
                spool,
                Job {
                    held: false,
                    die: false,
                },
            );
            let a = cx.recv_timeout(WAIT).expect("an answer");
            assert!(a.is::<Done>(), "{:?}", a.type_name());
        }

        let own = stats(&mut cx, spool);
        assert_eq!(
            (
                own.admitted,
                own.completed,
                own.failed,
                own.rejected_overloaded
            ),
            (5, 4, 1, overloaded),
            "{own:?}"
        );
        let samples = scrape();
        let get = |name: &str, extra: &[(&str, &str)]| {
            value_of(&samples, name, spool, extra)
                .unwrap_or_else(|| panic!("{name} {extra:?} for {spool} in {samples:#?}"))
        };
        assert_eq!(get("strata_spool_admitted_total", &[]), 5.0);
        assert_eq!(get("strata_spool_completed_total", &[]), 4.0);
        assert_eq!(get("strata_spool_failed_total", &[]), 1.0);
        assert_eq!(
            get("strata_spool_rejected_total", &[("reason", "overloaded")]),
            3.0
        );
        assert_eq!(
            get("strata_spool_rejected_total", &[("reason", "busy")]),
            0.0
        );
        assert_eq!(get("strata_spool_queued", &[]), 0.0);
        assert_eq!(get("strata_spool_expired_total", &[]), 0.0);
        assert_eq!(get("strata_spool_retried_total", &[]), 0.0);
        // The quantiles are the spool's own, read from the same histogram.
        let mut last = 0.0;
        for (q, own) in [
            ("0.5", own.p50),
            ("0.9", own.p90),
            ("0.99", own.p99),
            ("1", own.max),
        ] {
            let v = get("strata_spool_response_seconds", &[("quantile", q)]);
            assert!(v > 0.0 && v >= last, "quantile {q}: {v} after {last}");
            assert_eq!(v, own, "quantile {q}");
            last = v;
        }
        assert!(get("strata_spool_response_mean_seconds", &[]) > 0.0);
        // The runtime's own figures are always there.
        assert!(samples
            .iter()
            .any(|s| s.name == "strata_objects_live" && s.value >= 2.0));
        assert!(samples
            .iter()
            .any(|s| s.name == "strata_objects_created_total" && s.value >= 2.0));
    });
}

#[test]
fn a_series_leaves_with_its_object() {
    bounded(Duration::from_secs(60), || {
        let mut cx = ThreadContext::attach();
        let worker = Worker::default();
        let spool = cx.create(Spool::of(move || Threaded(worker.clone())).workers(1));
        // Listed from its start (the scrape asks it, so it answers once it has started).
        poll_until(WAIT, "the spool listed", || {
            value_of(&scrape(), "strata_spool_workers", spool, &[]).filter(|w| *w == 1.0)
        });
        cx.stop(spool);
        returned_from(&mut cx, spool, WAIT);
        let samples = scrape();
        let spool_name = spool.to_string();
        let left: Vec<_> = samples
            .iter()
            .filter(|s| s.labels.get("object") == Some(&spool_name))
            .collect();
        assert!(left.is_empty(), "series of an ended spool: {left:#?}");
    });
}

#[test]
fn only_get_of_metrics_is_served() {
    let other = support::http::get(server(), "/");
    assert_eq!(other.status, 404, "{}", other.head);
    assert!(other.body.contains("/metrics"), "{}", other.body);
    let posted = support::http::post(server(), "/metrics", "{}");
    assert_eq!(posted.status, 405, "{}", posted.head);
    // A connection kept open serves several scrapes.
    let mut conn = support::http::open(server());
    for _ in 0..3 {
        let a = support::http::send(&mut conn, b"GET /metrics HTTP/1.1\r\nHost: t\r\n\r\n");
        assert_eq!(a.status, 200);
        assert!(
            a.body.contains("# TYPE strata_objects_live gauge"),
            "{}",
            a.body
        );
    }
}

fn probe_with(metrics: &str, status: &str) -> std::process::Output {
    run_bounded(
        Command::new(testbin("lifecycle_probe"))
            .args(["exit", status])
            .env("STRATA_METRICS", metrics),
        Duration::from_secs(30),
    )
}

#[test]
fn strata_metrics_is_read_by_every_program_and_bad_values_are_named() {
    // A good address: the program serves, runs and exits with its own status.
    let ok = probe_with("127.0.0.1:0", "7");
    assert_eq!(
        ok.status.code(),
        Some(7),
        "{}",
        String::from_utf8_lossy(&ok.stderr)
    );
    // Not an address: exit 2 before the top object starts, naming variable and value.
    for bad in ["not-an-address", "127.0.0.1", "127.0.0.1:99999"] {
        let out = probe_with(bad, "0");
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{bad}: {err}");
        assert!(
            err.contains(&format!("STRATA_METRICS=\"{bad}\"")),
            "{bad}: {err}"
        );
    }
    // A port already taken.
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let address = taken.local_addr().unwrap().to_string();
    let out = probe_with(&address, "0");
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert!(
        err.contains("cannot serve metrics") && err.contains(&format!("STRATA_METRICS={address}")),
        "{err}"
    );
}

#[test]
fn executors_and_http_servers_list_their_figures_while_they_run() {
    use strata::executor::{Executor, ShutdownMode};
    use strata::http::{Api, HttpServer};
    use strata::net::Listening;
    bounded(Duration::from_secs(60), || {
        let pool = Executor::threads().max_workers(2).start();
        for i in 0..3u64 {
            assert_eq!(pool.submit_fn(move || i * 2).wait(), Ok(i * 2));
        }
        let failed = pool
            .submit_fn(|| -> u64 { panic!("job told to fail") })
            .wait();
        assert!(failed.is_err());
        let executor = pool.address();
        let samples = scrape();
        let get = |name: &str| {
            value_of(&samples, name, executor, &[])
                .unwrap_or_else(|| panic!("{name} for {executor} in {samples:#?}"))
        };
        assert_eq!(get("strata_executor_submitted_total"), 4.0);
        assert_eq!(get("strata_executor_executed_total"), 4.0);
        assert_eq!(get("strata_executor_failed_total"), 1.0);
        assert!(value_of(
            &samples,
            "strata_executor_run_seconds",
            executor,
            &[("quantile", "0.99")]
        )
        .is_some());
        pool.shutdown(ShutdownMode::Wait).expect("statistics");
        poll_until(WAIT, "the executor's series gone", || {
            value_of(&scrape(), "strata_executor_submitted_total", executor, &[])
                .is_none()
                .then_some(())
        });

        let mut cx = ThreadContext::attach();
        let http = cx.create(HttpServer::new("127.0.0.1:0".parse().unwrap(), Api::new()));
        let (listening, _) = support::select_message::<Listening>(&mut cx, WAIT);
        let is_it = |s: &Sample| s.labels.get("address") == Some(&listening.address);
        let samples = scrape();
        let open = samples
            .iter()
            .find(|s| s.name == "strata_http_open_connections" && is_it(s))
            .unwrap_or_else(|| panic!("{listening:?} in {samples:#?}"));
        assert_eq!(open.value, 0.0);
        assert!(samples
            .iter()
            .any(|s| s.name == "strata_http_refused_connections_total" && is_it(s)));
        cx.stop(http);
        returned_from(&mut cx, http, WAIT);
        assert!(!scrape().iter().any(is_it), "the stopped server's series");
    });
}
