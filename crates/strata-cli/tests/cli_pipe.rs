//! `strata pipe` as a user runs it in a shell pipeline: lines through `--transform CMD`
//! (none, one or several lines out per line in), the transport in worker processes giving
//! the same lines, a failing command's lines skipped and counted (exit status 1), a bad
//! flag named, and Ctrl-C draining: every line read goes out, and the report says so.

#[path = "../../strata/tests/support/mod.rs"]
mod support;

use std::io::{BufRead, BufReader, Read, Write};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;

use support::programs::wait_bounded;
use support::WAIT;

fn pipe(args: &[&str]) -> Child {
    Command::new(env!("CARGO_BIN_EXE_strata"))
        .arg("pipe")
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("strata runs")
}

/// Runs `strata pipe ARGS` with `input` on stdin; gives the status, stdout lines, stderr.
fn run(args: &[&str], input: &str) -> (i32, Vec<String>, String) {
    let mut child = pipe(args);
    let mut stdin = child.stdin.take().unwrap();
    let input = input.to_string();
    let writer = std::thread::spawn(move || {
        let _ = stdin.write_all(input.as_bytes());
    });
    let mut out = child.stdout.take().unwrap();
    let mut err = child.stderr.take().unwrap();
    let out = std::thread::spawn(move || {
        let mut s = String::new();
        let _ = out.read_to_string(&mut s);
        s
    });
    let err = std::thread::spawn(move || {
        let mut s = String::new();
        let _ = err.read_to_string(&mut s);
        s
    });
    let status = wait_bounded(&mut child, WAIT, "strata pipe");
    writer.join().unwrap();
    let lines = out.join().unwrap().lines().map(str::to_string).collect();
    (status.code().unwrap_or(-1), lines, err.join().unwrap())
}

fn sorted(mut v: Vec<String>) -> Vec<String> {
    v.sort();
    v
}

#[test]
fn lines_go_through_the_transform_and_out() {
    let (code, out, err) = run(&["--transform", "tr a-z A-Z"], "one\ntwo\nthree\n");
    assert_eq!(code, 0, "{err}");
    assert_eq!(sorted(out), ["ONE", "THREE", "TWO"]);
    assert!(err.contains("pipeline finished"), "{err}");
    // None or several lines out per line in.
    let (code, out, err) = run(
        &["--transform", "grep -v skip | tr ' ' '\\n'", "--quiet"],
        "a b\nskip me\nc\n",
    );
    assert_eq!(code, 0, "{err}");
    assert_eq!(sorted(out), ["a", "b", "c"]);
    assert!(err.is_empty(), "--quiet: {err}");
}

#[test]
fn the_transport_in_processes_gives_the_same_lines() {
    let input: String = (1..=500).map(|n| format!("line {n}\n")).collect();
    let (code, threads, err) = run(&["--quiet"], &input);
    assert_eq!(code, 0, "{err}");
    let (code, processes, err) = run(&["--processes", "--transport-workers", "2"], &input);
    assert_eq!(code, 0, "{err}");
    assert!(err.contains("transport 2 processes"), "{err}");
    assert_eq!(sorted(threads.clone()), sorted(processes));
    assert_eq!(threads.len(), 500);
}

#[test]
fn a_failing_command_skips_its_lines_counts_them_and_fails_the_status() {
    let (code, out, err) = run(
        &["--transform", "grep -q keep && echo kept"],
        "keep\ndrop\nkeep\n",
    );
    assert_eq!(code, 1, "{err}");
    assert_eq!(out, ["kept", "kept"]);
    assert!(err.contains("skipped 1"), "{err}");
}

#[test]
fn bad_flags_are_named() {
    let (code, _, err) = run(&["--transport-workers", "0"], "");
    assert_eq!(code, 2);
    assert!(
        err.contains("--transport-workers must be at least 1"),
        "{err}"
    );
    let (code, _, err) = run(&["--backend-queue", "0"], "");
    assert_eq!(code, 2);
    assert!(err.contains("--backend-queue must be at least 1"), "{err}");
}

#[test]
fn ctrl_c_drains_every_line_read() {
    let mut child = pipe(&["--transport-workers", "2"]);
    let mut stdin = child.stdin.take().unwrap();
    // Lines without end until strata stops reading (the pipe breaks).
    std::thread::spawn(move || {
        let mut n = 0u64;
        loop {
            n += 1;
            if writeln!(stdin, "line {n}").is_err() {
                return;
            }
        }
    });
    let (seen_tx, seen) = mpsc::channel();
    let stdout = child.stdout.take().unwrap();
    let reader = std::thread::spawn(move || {
        let mut count = 0u64;
        for line in BufReader::new(stdout).lines() {
            if line.is_err() {
                break;
            }
            count += 1;
            if count == 1_000 {
                let _ = seen_tx.send(());
            }
        }
        count
    });
    let mut err = child.stderr.take().unwrap();
    let err = std::thread::spawn(move || {
        let mut s = String::new();
        let _ = err.read_to_string(&mut s);
        s
    });
    seen.recv_timeout(WAIT).expect("1,000 lines out");
    assert!(support::programs::signal(child.id(), libc::SIGINT));
    let status = wait_bounded(&mut child, WAIT, "strata pipe after Ctrl-C");
    let out = reader.join().unwrap();
    let err = err.join().unwrap();
    assert_eq!(status.code(), Some(0), "{err}");
    assert!(err.contains("pipeline drained"), "{err}");
    // The backend's count is exactly the lines that came out, and equals what was read.
    let backend = err
        .lines()
        .find(|l| l.trim_start().starts_with("backend"))
        .expect(&err);
    let frontend = err
        .lines()
        .find(|l| l.trim_start().starts_with("frontend"))
        .expect(&err);
    let done = |l: &str| -> u64 {
        let words: Vec<&str> = l.split_whitespace().collect();
        let i = words.iter().position(|w| *w == "done").expect(l);
        words[i + 1].parse().expect(l)
    };
    assert_eq!(done(backend), out, "{err}");
    assert_eq!(done(frontend), out, "{err}");
}
