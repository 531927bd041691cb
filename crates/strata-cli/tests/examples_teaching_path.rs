//! The teaching path's programs as a user runs them: the `texture` entry point (the
//! value as JSON on stdout, typed output on request, bad arguments — absurd table sizes
//! among them — refused with exit status 2 naming what was wrong), and every `server_N`,
//! which takes an address, serves a request, answers an absurd table size with a 400
//! naming the bound, and stops cleanly on SIGTERM with no child process left behind.

#[path = "../../strata/tests/support/mod.rs"]
mod support;

use std::io::{Read, Write};
use std::process::{Command, Output};

use support::programs::{alive, children_of, example, run_bounded, Running};
use support::{poll_until, WAIT};

fn texture(args: &[&str]) -> Output {
    run_bounded(Command::new(example("texture")).args(args), WAIT)
}

#[test]
fn prints_the_table_as_json() {
    let out = texture(&["--x=3", "--y=2"]);
    assert!(out.status.success(), "{out:?}");
    let table: Vec<Vec<f64>> = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!((table.len(), table[1].len()), (2, 3));
    assert!(table.iter().flatten().all(|v| (0.0..1.0).contains(v)));
    let out = texture(&["--x", "1", "--y", "1", "--full-output"]);
    assert!(out.status.success(), "{out:?}");
    let typed: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(typed["type"], "vec<vec<f64>>");
}

#[test]
fn bad_arguments_exit_2_naming_the_argument() {
    for (args, named) in [
        (vec!["--x=abc", "--y=2"], "--x"),
        (vec!["--x=2"], "--y"),
        (vec!["--x=2", "--y=2", "--z=1"], "--z"),
        (vec!["stray"], "stray"),
        // 10^10 cells: refused before anything is allocated.
        (vec!["--x=100000", "--y=100000"], "MAX_CELLS"),
    ] {
        let out = texture(&args);
        assert_eq!(out.status.code(), Some(2), "{args:?}");
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(err.contains(named), "{args:?}: {err}");
        assert_eq!(err.lines().count(), 1, "one line: {err}");
        assert!(out.stdout.is_empty());
    }
    let help = texture(&["--help"]);
    assert!(help.status.success());
    assert!(String::from_utf8_lossy(&help.stdout).contains("--x=VALUE"));
}

/// One `GET` on a connection of its own; gives the status and the body.
fn get(address: std::net::SocketAddr, target: &str) -> (u16, String) {
    let mut s = std::net::TcpStream::connect(address).expect("the server accepts");
    s.set_read_timeout(Some(WAIT)).unwrap();
    write!(
        s,
        "GET {target} HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n"
    )
    .unwrap();
    let mut response = String::new();
    s.read_to_string(&mut response).expect("a response");
    let status = response
        .split_whitespace()
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or(0);
    let body = response
        .split_once("\r\n\r\n")
        .map(|(_, b)| b.to_string())
        .unwrap_or_default();
    (status, body)
}

fn serves_and_stops_on_sigterm(name: &str) {
    let mut server = Running::start(
        Command::new(example(name))
            .arg("127.0.0.1:0")
            .env("STRATA_LOG", "warn"),
    );
    let address = server.announced_address("listening on ", WAIT);
    let (status, body) = get(address, "/Xy?x=3&y=2");
    assert_eq!(status, 200, "{name}: {body}");
    let table: Vec<Vec<f64>> =
        serde_json::from_str(&body).unwrap_or_else(|e| panic!("{name}: {e}: {body}"));
    assert_eq!((table.len(), table[0].len()), (2, 3), "{name}");
    // 10^10 cells would take the process down: refused as bad input, naming the bound.
    let (status, body) = get(address, "/Xy?x=100000&y=100000");
    assert_eq!(status, 400, "{name}: {body}");
    assert!(body.contains("MAX_CELLS"), "{name}: {body}");
    // Whatever it started (worker processes, a texture child still ending) must go with
    // it; the guard kills them should the test fail.
    let children = children_of(server.pid(), "");
    server.kill_also(children.clone());
    server.signal(libc::SIGTERM);
    let (status, _, stderr) = server.finish(WAIT);
    assert_eq!(
        status.code(),
        Some(143),
        "{name}: {status}; stderr: {stderr}"
    );
    poll_until(WAIT, &format!("{name}'s children gone"), || {
        children.iter().all(|&c| !alive(c)).then_some(())
    });
}

#[test]
fn every_server_takes_an_address_serves_and_stops_on_sigterm() {
    for n in 1..=8 {
        serves_and_stops_on_sigterm(&format!("server_{n}"));
    }
}

/// A private folder for the directory of the programs one test starts.
fn runtime_dir(what: &str) -> std::path::PathBuf {
    let dir = std::env::temp_dir().join(format!("strata-teaching-{}-{what}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    dir
}

fn started_in(dir: &std::path::Path, name: &str, args: &[&str]) -> Running {
    Running::start(
        Command::new(example(name))
            .args(args)
            .env("STRATA_RUNTIME_DIR", dir)
            .env("STRATA_LOG", "warn"),
    )
}

/// GETs `target` until it answers 200 (the workers join as their names are found).
fn until_200(address: std::net::SocketAddr, target: &str) -> String {
    poll_until(WAIT, "a 200", || {
        let (status, body) = get(address, target);
        (status == 200).then_some(body)
    })
}

#[test]
fn server_10_finds_workers_started_on_their_own_and_outlives_a_kill_9() {
    let dir = runtime_dir("s10");
    let mut server = started_in(&dir, "server_10", &["127.0.0.1:0"]);
    let address = server.announced_address("listening on ", WAIT);
    let workers: Vec<Running> = (0..3).map(|_| started_in(&dir, "worker_10", &[])).collect();
    for w in &workers {
        let line = w.line(WAIT);
        assert!(line.contains("published texture:worker:"), "{line}");
    }
    let body = until_200(address, "/Xy?x=2&y=2");
    let table: Vec<Vec<f64>> = serde_json::from_str(&body).unwrap();
    assert_eq!(table.len(), 2);
    poll_until(WAIT, "three workers in the spool", || {
        let (_, stats) = get(address, "/SpoolStats");
        stats.contains("\"workers\":3").then_some(())
    });
    workers[0].signal(libc::SIGKILL);
    poll_until(WAIT, "two workers in the spool", || {
        let (_, stats) = get(address, "/SpoolStats");
        stats.contains("\"workers\":2").then_some(())
    });
    for _ in 0..20 {
        let (status, body) = get(address, "/Xy?x=3&y=1");
        assert_eq!(status, 200, "{body}");
    }
    server.signal(libc::SIGTERM);
    let (status, _, stderr) = server.finish(WAIT);
    assert_eq!(status.code(), Some(143), "{status}; {stderr}");
    drop(workers);
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn server_9_waits_for_its_one_worker_and_a_second_is_refused() {
    let dir = runtime_dir("s9");
    let server = started_in(&dir, "server_9", &["127.0.0.1:0"]);
    let address = server.announced_address("listening on ", WAIT);
    let (status, body) = get(address, "/Xy?x=2&y=2");
    assert_eq!(status, 503, "no worker yet: {body}");
    let worker = started_in(&dir, "worker_9", &[]);
    assert!(worker
        .line(WAIT)
        .contains("published texture:worker at host"));
    until_200(address, "/Xy?x=2&y=2");
    let mut second = started_in(&dir, "worker_9", &[]);
    let (status, _, stderr) = second.finish(WAIT);
    assert!(!status.success());
    assert!(
        stderr.contains("already published at host scope"),
        "{stderr}"
    );
    drop((server, worker));
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn server_11_churns_its_workers_and_leaves_none_behind() {
    let dir = runtime_dir("s11");
    let mut server = started_in(&dir, "server_11", &["127.0.0.1:0"]);
    let address = server.announced_address("listening on ", WAIT);
    until_200(address, "/Xy?x=2&y=2");
    // Workers come and go each second; requests keep being answered.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(3);
    let mut answered = 0;
    while std::time::Instant::now() < deadline {
        let (status, body) = get(address, "/Xy?x=2&y=2");
        assert!(status == 200 || status >= 500, "{status}: {body}");
        answered += 1;
    }
    assert!(answered > 0);
    let children = children_of(server.pid(), "");
    server.kill_also(children.clone());
    server.signal(libc::SIGTERM);
    let (status, _, stderr) = server.finish(WAIT);
    assert_eq!(status.code(), Some(143), "{status}; {stderr}");
    poll_until(WAIT, "server_11's workers gone", || {
        children.iter().all(|&c| !alive(c)).then_some(())
    });
    let _ = std::fs::remove_dir_all(&dir);
}

/// One GET on a fresh connection, waiting at most `limit` for the answer: its status, or
/// `None` when none came (taken and never answered).
fn get_within(
    address: std::net::SocketAddr,
    target: &str,
    limit: std::time::Duration,
) -> Option<u16> {
    let mut s = std::net::TcpStream::connect(address).ok()?;
    s.set_read_timeout(Some(limit)).unwrap();
    write!(
        s,
        "GET {target} HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n"
    )
    .ok()?;
    let mut response = String::new();
    match s.read_to_string(&mut response) {
        Ok(_) => response
            .split_whitespace()
            .nth(1)
            .and_then(|c| c.parse().ok()),
        Err(_) => None,
    }
}

#[test]
fn a_composite_of_server_10_and_8_workers_answers_every_request_from_its_start() {
    use strata::prelude::*;
    use strata::process::Process;
    // The composite: this process the parent (its group's directory), the server and
    // eight workers its children, all started at once; requests from the first moment.
    for round in 0..4 {
        let dir = runtime_dir(&format!("composite{round}"));
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let address: std::net::SocketAddr = format!("127.0.0.1:{port}").parse().unwrap();
        let mut cx = ThreadContext::attach();
        let in_dir = |name: &str| {
            Process::of("/usr/bin/env")
                .arg(format!("STRATA_RUNTIME_DIR={}", dir.display()))
                .arg("STRATA_LOG=warn")
                .arg(example(name).to_string_lossy().into_owned())
        };
        let mut children = vec![cx.create(in_dir("server_10").arg(address.to_string()))];
        for _ in 0..8 {
            children.push(cx.create(in_dir("worker_10")));
        }
        // Every request is answered, 200 or 503, within 5 s; none is taken and lost.
        let deadline = std::time::Instant::now() + WAIT;
        let mut answered = 0;
        while answered < 50 {
            assert!(
                std::time::Instant::now() < deadline,
                "round {round}: not 50 answers within {WAIT:?}"
            );
            if std::net::TcpStream::connect(address).is_err() {
                std::thread::sleep(std::time::Duration::from_millis(2));
                continue;
            }
            let status = get_within(address, "/Xy?x=2&y=2", std::time::Duration::from_secs(5));
            assert!(
                matches!(status, Some(200) | Some(503)),
                "round {round}: request {answered} answered {status:?}"
            );
            answered += 1;
        }
        for c in children {
            cx.stop(c);
        }
        drop(cx);
        let _ = std::fs::remove_dir_all(&dir);
    }
}
