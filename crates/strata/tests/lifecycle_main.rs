//! The whole-program lifecycle, end to end: `strata::main` in a real process
//! (`examples/lifecycle_probe.rs`), signals, exit statuses, stderr.

use std::io::{BufRead, BufReader, Read};
use std::path::PathBuf;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::mpsc;
use std::sync::OnceLock;
use std::time::{Duration, Instant};

const WAIT: Duration = Duration::from_secs(60);

/// Builds the probe once per test run (a no-op when `cargo test` already built the
/// examples) and gives its path.
fn probe() -> PathBuf {
    static BUILT: OnceLock<PathBuf> = OnceLock::new();
    BUILT
        .get_or_init(|| {
            // This test runs as target/<profile>/deps/lifecycle-<hash>.
            let exe = std::env::current_exe().expect("the test's own path");
            let profile_dir = exe
                .parent()
                .and_then(|deps| deps.parent())
                .expect("target/<profile>/deps");
            let mut build = Command::new(env!("CARGO"));
            build
                .args(["build", "-p", "strata", "--example", "lifecycle_probe"])
                .current_dir(env!("CARGO_MANIFEST_DIR"));
            if profile_dir.file_name().is_some_and(|n| n == "release") {
                build.arg("--release");
            }
            if let Some(target) = profile_dir.parent() {
                build.arg("--target-dir").arg(target);
            }
            let status = build.status().expect("cargo runs");
            assert!(status.success(), "building the probe failed: {status}");
            let probe = profile_dir.join("examples").join("lifecycle_probe");
            assert!(probe.exists(), "no probe at {}", probe.display());
            probe
        })
        .clone()
}

/// A running probe whose stdout lines arrive on a channel.
struct Running {
    child: Child,
    lines: mpsc::Receiver<String>,
}

fn start(args: &[&str]) -> Running {
    let mut child = Command::new(probe())
        .args(args)
        .env("STRATA_LOG", "warn")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("the probe starts");
    let stdout = child.stdout.take().expect("piped stdout");
    let (tx, lines) = mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines() {
            let Ok(line) = line else { break };
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    Running { child, lines }
}

impl Drop for Running {
    fn drop(&mut self) {
        // A probe left running by a failed test must not outlive it.
        if let Ok(None) = self.child.try_wait() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

impl Running {
    /// Waits for the probe to exit (killing it and failing after `WAIT`); gives the
    /// status, the rest of stdout and all of stderr.
    fn finish(&mut self) -> (ExitStatus, Vec<String>, String) {
        let deadline = Instant::now() + WAIT;
        let status = loop {
            if let Some(status) = self.child.try_wait().expect("the probe's status") {
                break status;
            }
            if Instant::now() > deadline {
                let _ = self.child.kill();
                let _ = self.child.wait();
                panic!("the probe did not exit within {WAIT:?}");
            }
            std::thread::sleep(Duration::from_millis(10));
        };
        let mut stderr = String::new();
        if let Some(mut e) = self.child.stderr.take() {
            e.read_to_string(&mut stderr).expect("stderr");
        }
        let mut rest = Vec::new();
        while let Ok(line) = self.lines.recv_timeout(Duration::from_secs(5)) {
            rest.push(line);
        }
        (status, rest, stderr)
    }

    fn signal(&self, signo: i32) {
        let pid = self.child.id() as libc::pid_t;
        // SAFETY: kill(2) with a pid of our own child and a valid signal number.
        let r = unsafe { libc::kill(pid, signo) };
        assert_eq!(r, 0, "kill failed");
    }
}

fn stopped_by(signo: i32) {
    let mut running = start(&["tree"]);
    let first = running
        .lines
        .recv_timeout(WAIT)
        .expect("the probe says it is ready");
    assert_eq!(first, "ready");
    running.signal(signo);
    let (status, mut lines, stderr) = running.finish();
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
        let (status, stdout, stderr) = start(&["exit", value]).finish();
        assert_eq!(status.code(), Some(code), "value {value}; stderr: {stderr}");
        assert!(stdout.is_empty(), "{stdout:?}");
        assert_eq!(stderr, "", "value {value}");
    }
}

#[test]
fn a_fault_exits_1_with_one_line_on_stderr() {
    let (status, stdout, stderr) = start(&["fault"]).finish();
    assert_eq!(status.code(), Some(1), "{status}");
    assert!(stdout.is_empty(), "{stdout:?}");
    assert_eq!(stderr, "Faulted: the probe failed on purpose\n");
}
