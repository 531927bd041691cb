//! The whole-program lifecycle, end to end: `strata::main` in a real process
//! (the `lifecycle_probe` test program), signals, exit statuses, stderr, and the checks
//! on a descriptor named as the link to a parent.

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

#[test]
fn a_link_descriptor_that_is_not_a_socket_is_not_adopted() {
    // Descriptor 1 is the probe's stdout, a pipe: adopting it as a link would take the
    // probe's stdout away and make it print its value as a child does.
    let running = Running::start(
        Command::new(testbin("lifecycle_probe"))
            .args(["exit", "7"])
            .env("STRATA_LOG", "warn")
            .env("STRATA_LINK_FD", "1"),
    );
    let (status, stdout, stderr) = finish(running);
    assert_eq!(status.code(), Some(7), "{status}; stderr: {stderr}");
    assert!(stdout.is_empty(), "runs as an ordinary program: {stdout:?}");
    assert!(
        stderr.contains("descriptor 1") && stderr.contains("is not a socket"),
        "{stderr}"
    );
}

#[test]
fn a_link_socket_whose_peer_is_not_the_parent_is_not_adopted() {
    use std::os::fd::AsRawFd;
    use std::os::unix::process::CommandExt;
    // A socket pair made by this test, put on the probe's descriptor 3 — but the probe
    // runs under a shell, so its parent is the shell, not the process that made the pair.
    let (_ours, theirs) = std::os::unix::net::UnixStream::pair().unwrap();
    let fd = theirs.as_raw_fd();
    let mut command = Command::new("/bin/sh");
    command
        .arg("-c")
        .arg("\"$0\" exit 7; exit $?")
        .arg(testbin("lifecycle_probe"))
        .env("STRATA_LOG", "warn")
        .env("STRATA_LINK_FD", "3");
    // SAFETY: dup2 and fcntl are async-signal-safe.
    unsafe {
        command.pre_exec(move || {
            if libc::dup2(fd, 3) < 0 || libc::fcntl(3, libc::F_SETFD, 0) < 0 {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        });
    }
    let (status, stdout, stderr) = finish(Running::start(&mut command));
    assert_eq!(status.code(), Some(7), "{status}; stderr: {stderr}");
    assert!(stdout.is_empty(), "runs as an ordinary program: {stdout:?}");
    assert!(
        stderr.contains("descriptor 3") && stderr.contains("not this process's parent"),
        "{stderr}"
    );
}
