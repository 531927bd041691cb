//! The whole-program lifecycle, end to end: `strata::main` in a real process
//! (the `lifecycle_probe` test program), signals, exit statuses, stderr.

mod support;

use std::process::{Command, ExitStatus};

use support::programs::{testbin, Running};
use support::WAIT;

fn start(args: &[&str]) -> Running {
    Running::start(
        Command::new(testbin("lifecycle_probe"))
            .args(args)
            .env("STRATA_LOG", "warn"),
    )
}

fn finish(mut running: Running) -> (ExitStatus, Vec<String>, String) {
    running.finish(WAIT)
}

fn stopped_by(signo: i32) {
    let running = start(&["tree"]);
    assert_eq!(running.line(WAIT), "ready", "the probe says it is ready");
    running.signal(signo);
    let (status, mut lines, stderr) = finish(running);
    assert_eq!(
        status.code(),
        Some(128 + signo),
        "{status}; stderr: {stderr}"
    );
    lines.sort();
    assert_eq!(
        lines,
        vec!["stopped leaf", "stopped thread 0", "stopped thread 1"],
        "every object was stopped before the process exited"
    );
    assert_eq!(stderr, "", "nothing on stderr");
}

#[test]
fn sigterm_stops_every_object_and_exits_143() {
    stopped_by(libc::SIGTERM);
}

#[test]
fn sigint_stops_every_object_and_exits_130() {
    stopped_by(libc::SIGINT);
}

#[test]
fn an_integer_value_is_the_exit_status() {
    for (value, code) in [("0", 0), ("7", 7), ("255", 255), ("300", 255), ("-3", 0)] {
        let (status, stdout, stderr) = finish(start(&["exit", value]));
        assert_eq!(status.code(), Some(code), "value {value}; stderr: {stderr}");
        assert!(stdout.is_empty(), "{stdout:?}");
        assert_eq!(stderr, "", "value {value}");
    }
}

#[test]
fn a_fault_exits_1_with_one_line_on_stderr() {
    let (status, stdout, stderr) = finish(start(&["fault"]));
    assert_eq!(status.code(), Some(1), "{status}");
    assert!(stdout.is_empty(), "{stdout:?}");
    assert_eq!(stderr, "Faulted: the probe failed on purpose\n");
}
