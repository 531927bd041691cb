//! The programs the tests start, built by the tests themselves, and guards that never
//! leave one running when a test fails.
//!
//! Fixture programs are the binaries of `crates/strata-testbins`; the teaching path's
//! programs are the examples of `strata-cli`. Each test binary builds what it launches
//! once (`cargo build`, same profile and target directory as the test itself), so a run
//! filtered with `--test NAME` never starts a stale peer.

#![allow(dead_code)]

use std::io::{BufRead, BufReader, Read};
use std::path::PathBuf;
use std::process::{Child, Command, ExitStatus, Output, Stdio};
use std::sync::mpsc;
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use super::bounds::WAIT;

/// How long a build started by a test may take (a cold build on a loaded 2-core machine).
const BUILD_LIMIT: Duration = Duration::from_secs(20 * 60);

/// `target/<profile>` of this test binary, which runs as `target/<profile>/deps/NAME-HASH`.
fn profile_dir() -> PathBuf {
    let exe = std::env::current_exe().expect("the test's own path");
    exe.parent()
        .and_then(|deps| deps.parent())
        .expect("target/<profile>/deps")
        .to_path_buf()
}

/// Runs `cargo build ARGS` with this test's profile and target directory; gives the
/// profile directory the programs land in.
fn cargo_build(args: &[&str]) -> PathBuf {
    let dir = profile_dir();
    let mut build = Command::new(env!("CARGO"));
    build
        .arg("build")
        .args(args)
        .current_dir(env!("CARGO_MANIFEST_DIR"));
    match dir.file_name().and_then(|n| n.to_str()) {
        Some("debug") | None => {}
        Some("release") => {
            build.arg("--release");
        }
        Some(profile) => {
            build.args(["--profile", profile]);
        }
    }
    if let Some(target) = dir.parent() {
        build.arg("--target-dir").arg(target);
    }
    // The programs link the same `strata` as the tests: `scripts/test` turns etcd on
    // (and says so in `STRATA_TEST_FEATURES`, for the tests of other packages).
    let features = std::env::var("STRATA_TEST_FEATURES").unwrap_or_default();
    if cfg!(feature = "etcd") || features.contains("strata/etcd") {
        build.args(["--features", "strata/etcd"]);
    }
    let out = run_bounded(&mut build, BUILD_LIMIT);
    assert!(
        out.status.success(),
        "cargo build {args:?} failed: {}\n{}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    dir
}

fn existing(path: PathBuf) -> PathBuf {
    assert!(path.exists(), "{} was not built", path.display());
    path
}

/// The fixture program `name`, a binary of `crates/strata-testbins` (all of them are
/// built on the first call in a test binary).
pub fn testbin(name: &str) -> PathBuf {
    static BUILT: OnceLock<PathBuf> = OnceLock::new();
    let dir = BUILT.get_or_init(|| cargo_build(&["-p", "strata-testbins", "--bins"]));
    existing(dir.join(name))
}

/// The teaching path's example `name` (package `strata-cli`; all of them are built on
/// the first call in a test binary).
pub fn example(name: &str) -> PathBuf {
    static BUILT: OnceLock<PathBuf> = OnceLock::new();
    let dir = BUILT.get_or_init(|| cargo_build(&["-p", "strata-cli", "--examples"]));
    existing(dir.join("examples").join(name))
}

/// Reads `from` to its end on a thread of its own; the text arrives on the channel.
fn read_all(mut from: impl Read + Send + 'static) -> mpsc::Receiver<Vec<u8>> {
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        let mut all = Vec::new();
        let _ = from.read_to_end(&mut all);
        let _ = tx.send(all);
    });
    rx
}

/// Waits for `child` to exit; kills it and fails the test after `limit`.
pub fn wait_bounded(child: &mut Child, limit: Duration, what: &str) -> ExitStatus {
    let deadline = Instant::now() + limit;
    loop {
        if let Some(status) = child.try_wait().expect("the child's status") {
            return status;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            panic!("{what} did not exit within {limit:?} (killed)");
        }
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// Runs `command` to its end (stdin closed, stdout and stderr captured), killing it and
/// failing the test if it takes longer than `limit`.
pub fn run_bounded(command: &mut Command, limit: Duration) -> Output {
    let what = format!("{command:?}");
    let mut child = command
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("{what} does not start: {e}"));
    let stdout = read_all(child.stdout.take().expect("piped stdout"));
    let stderr = read_all(child.stderr.take().expect("piped stderr"));
    let status = wait_bounded(&mut child, limit, &what);
    // A grandchild may still hold the pipes: wait for their ends only so long.
    let stdout = stdout.recv_timeout(WAIT).unwrap_or_default();
    let stderr = stderr.recv_timeout(WAIT).unwrap_or_default();
    Output {
        status,
        stdout,
        stderr,
    }
}

/// A running program whose stdout lines arrive on a channel and whose stderr is
/// collected. Dropping it kills the program (and any pids handed to [`Running::kill_also`]),
/// so a failing test leaves nothing behind.
pub struct Running {
    child: Child,
    stdin: Option<std::process::ChildStdin>,
    lines: mpsc::Receiver<String>,
    stderr: mpsc::Receiver<Vec<u8>>,
    also: Vec<u32>,
}

impl Running {
    /// Starts `command` with stdin closed and stdout and stderr piped.
    pub fn start(command: &mut Command) -> Running {
        Running::started(command.stdin(Stdio::null()))
    }

    /// Starts `command` with stdin, stdout and stderr piped; write to stdin with
    /// [`Running::tell`].
    pub fn start_interactive(command: &mut Command) -> Running {
        let mut running = Running::started(command.stdin(Stdio::piped()));
        running.stdin = running.child.stdin.take();
        running
    }

    /// Writes `line` and a newline to the program's stdin.
    pub fn tell(&mut self, line: &str) {
        use std::io::Write;
        let stdin = self.stdin.as_mut().expect("started with start_interactive");
        writeln!(stdin, "{line}").expect("the program reads stdin");
        stdin.flush().expect("the program reads stdin");
    }

    fn started(command: &mut Command) -> Running {
        let what = format!("{command:?}");
        let mut child = command
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap_or_else(|e| panic!("{what} does not start: {e}"));
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
        let stderr = read_all(child.stderr.take().expect("piped stderr"));
        Running {
            child,
            stdin: None,
            lines,
            stderr,
            also: Vec::new(),
        }
    }

    /// The program's pid.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// The next line on stdout; fails the test when none comes within `limit`.
    pub fn line(&self, limit: Duration) -> String {
        self.lines
            .recv_timeout(limit)
            .unwrap_or_else(|e| panic!("no line on stdout within {limit:?}: {e}"))
    }

    /// The address in the first stdout line that contains `marker` followed by one
    /// (such as `listening 127.0.0.1:4321` or `... listening on http://ADDRESS/...`).
    pub fn announced_address(&self, marker: &str, limit: Duration) -> std::net::SocketAddr {
        let deadline = Instant::now() + limit;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            let line = self.line(left);
            if let Some((_, rest)) = line.split_once(marker) {
                let rest = rest.trim_start().trim_start_matches("http://");
                let text: String = rest
                    .chars()
                    .take_while(|c| !c.is_whitespace() && *c != '/')
                    .collect();
                return text
                    .parse()
                    .unwrap_or_else(|_| panic!("no address in {line:?}"));
            }
        }
    }

    /// Sends `signo` to the program.
    pub fn signal(&self, signo: i32) {
        assert!(
            signal(self.pid(), signo),
            "kill({}, {signo}) failed",
            self.pid()
        );
    }

    /// Kills these processes too when dropped (children the program started).
    pub fn kill_also(&mut self, pids: impl IntoIterator<Item = u32>) {
        self.also.extend(pids);
    }

    /// Waits for the program to exit (killing it and failing after `limit`); gives the
    /// status, the rest of stdout and all of stderr.
    pub fn finish(&mut self, limit: Duration) -> (ExitStatus, Vec<String>, String) {
        let status = wait_bounded(&mut self.child, limit, "the program");
        let deadline = Instant::now() + WAIT;
        let mut rest = Vec::new();
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.lines.recv_timeout(left) {
                Ok(line) => rest.push(line),
                Err(_) => break,
            }
        }
        let stderr = self.stderr.recv_timeout(WAIT).unwrap_or_default();
        (status, rest, String::from_utf8_lossy(&stderr).into_owned())
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        for pid in self.also.drain(..) {
            if alive(pid) {
                signal(pid, libc::SIGKILL);
            }
        }
        if let Ok(None) = self.child.try_wait() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

/// Sends `signo` to `pid`; false when the process is gone.
pub fn signal(pid: u32, signo: i32) -> bool {
    // SAFETY: kill(2) with a pid the test started (or its child) and a valid signal.
    unsafe { libc::kill(pid as libc::pid_t, signo) == 0 }
}

/// The fields of `/proc/PID/stat` after the command name (state first), if it exists.
fn stat_fields(pid: u32) -> Option<Vec<String>> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let after = &stat[stat.rfind(')')? + 1..];
    Some(after.split_whitespace().map(str::to_string).collect())
}

/// Whether `pid` is a live process (a zombie is not).
pub fn alive(pid: u32) -> bool {
    stat_fields(pid).is_some_and(|f| f.first().is_some_and(|s| s != "Z"))
}

/// Live processes whose parent is `parent` and whose command line mentions `name`.
pub fn children_of(parent: u32, name: &str) -> Vec<u32> {
    let mut found = Vec::new();
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return found;
    };
    for entry in entries.flatten() {
        let Ok(pid) = entry.file_name().to_string_lossy().parse::<u32>() else {
            continue;
        };
        let Some(fields) = stat_fields(pid) else {
            continue;
        };
        if fields.first().is_some_and(|s| s == "Z") {
            continue;
        }
        let ppid: u32 = fields.get(1).and_then(|p| p.parse().ok()).unwrap_or(0);
        let cmdline = std::fs::read(format!("/proc/{pid}/cmdline")).unwrap_or_default();
        if ppid == parent && String::from_utf8_lossy(&cmdline).contains(name) {
            found.push(pid);
        }
    }
    found
}

/// Live processes whose command line starts with `program` (any parent).
pub fn running(program: &std::path::Path) -> Vec<u32> {
    let program = program.to_string_lossy();
    let mut found = Vec::new();
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return found;
    };
    for entry in entries.flatten() {
        let Ok(pid) = entry.file_name().to_string_lossy().parse::<u32>() else {
            continue;
        };
        let cmdline = std::fs::read(format!("/proc/{pid}/cmdline")).unwrap_or_default();
        let first = cmdline.split(|b| *b == 0).next().unwrap_or_default();
        if alive(pid) && String::from_utf8_lossy(first) == program {
            found.push(pid);
        }
    }
    found
}

/// Whether `pid` ignores SIGTERM (its `SigIgn` mask in `/proc/PID/status`).
pub fn ignores_sigterm(pid: u32) -> bool {
    let Ok(status) = std::fs::read_to_string(format!("/proc/{pid}/status")) else {
        return false;
    };
    status
        .lines()
        .find_map(|l| l.strip_prefix("SigIgn:"))
        .and_then(|hex| u64::from_str_radix(hex.trim(), 16).ok())
        .is_some_and(|mask| mask & (1 << (libc::SIGTERM - 1)) != 0)
}
