//! The processes of the directory benchmark: a private runtime folder for each run, the
//! host directory (`strata directory`), `dir-node` programs driven by lines on their
//! standard input, and the Python layer-cake programs; every one killed when its guard
//! drops, also when a step fails.

use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::mpsc::{self, Receiver, RecvTimeoutError};
use std::time::{Duration, Instant};

use crate::http::die_with_parent;

/// How long a process has to end after SIGTERM before it is killed.
const GRACE: Duration = Duration::from_secs(3);

/// `CLOCK_MONOTONIC` in nanoseconds: the clock `dir-node` stamps its lines with (one
/// clock for every process of the host).
pub fn now_ns() -> u64 {
    let mut t = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: clock_gettime writes the struct it is given.
    unsafe { libc::clock_gettime(libc::CLOCK_MONOTONIC, &mut t) };
    t.tv_sec as u64 * 1_000_000_000 + t.tv_nsec as u64
}

/// A fresh private folder (mode 0700) for `STRATA_RUNTIME_DIR`, removed with everything
/// in it when dropped.
pub struct RuntimeDir {
    /// The folder.
    pub path: PathBuf,
}

impl RuntimeDir {
    /// Makes a new folder under the system's temporary folder.
    pub fn new() -> Result<RuntimeDir, String> {
        use std::os::unix::fs::DirBuilderExt;
        static NEXT: AtomicU32 = AtomicU32::new(0);
        let path = std::env::temp_dir().join(format!(
            "strata-bench-dir-{}-{}",
            std::process::id(),
            NEXT.fetch_add(1, Ordering::Relaxed)
        ));
        std::fs::DirBuilder::new()
            .mode(0o700)
            .create(&path)
            .map_err(|e| format!("cannot make {}: {e}", path.display()))?;
        Ok(RuntimeDir { path })
    }

    /// Sets the variables that send a strata program's directory here.
    pub fn apply(&self, command: &mut Command) {
        command
            .env("STRATA_RUNTIME_DIR", &self.path)
            .env_remove("STRATA_HOST_DIRECTORY")
            .env_remove("XDG_RUNTIME_DIR");
    }
}

impl Drop for RuntimeDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.path);
    }
}

/// A process whose standard output is read line by line; stopped when dropped.
pub struct Proc {
    name: String,
    child: Child,
    stdin: Option<ChildStdin>,
    lines: Receiver<String>,
    log: PathBuf,
    /// SIGKILL at once when dropped (a benchmark node), or SIGTERM first (a directory).
    kill_at_once: bool,
}

impl Proc {
    /// Starts `command`, its stdout read as lines, its stderr going to `log`.
    pub fn start(name: &str, mut command: Command, log: &Path) -> Result<Proc, String> {
        if let Some(dir) = log.parent() {
            std::fs::create_dir_all(dir)
                .map_err(|e| format!("cannot create {}: {e}", dir.display()))?;
        }
        let err = std::fs::File::create(log)
            .map_err(|e| format!("cannot create {}: {e}", log.display()))?;
        command
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::from(err));
        die_with_parent(&mut command);
        let mut child = command
            .spawn()
            .map_err(|e| format!("cannot start {name}: {e}"))?;
        let stdout = child.stdout.take().expect("piped");
        let (tx, lines) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        Ok(Proc {
            name: name.to_string(),
            stdin: child.stdin.take(),
            child,
            lines,
            log: log.to_path_buf(),
            kill_at_once: true,
        })
    }

    /// Asks for SIGTERM and a grace period when this process is stopped, not SIGKILL.
    pub fn terminate_gently(mut self) -> Proc {
        self.kill_at_once = false;
        self
    }

    /// The process id.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Writes one command line.
    pub fn send(&mut self, line: &str) -> Result<(), String> {
        let stdin = self
            .stdin
            .as_mut()
            .ok_or_else(|| format!("{}: its input is closed", self.name))?;
        writeln!(stdin, "{line}")
            .and_then(|_| stdin.flush())
            .map_err(|e| format!("{}: cannot write to it: {e}", self.name))
    }

    /// Waits for the first line for which `pick` gives a value, within `limit`; lines
    /// before it are passed over, except `error` lines, which fail.
    pub fn expect<T>(
        &mut self,
        limit: Duration,
        what: &str,
        mut pick: impl FnMut(&str) -> Option<T>,
    ) -> Result<T, String> {
        let deadline = Instant::now() + limit;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.lines.recv_timeout(left) {
                Ok(line) => {
                    if let Some(v) = pick(&line) {
                        return Ok(v);
                    }
                    if line.starts_with("error") {
                        return Err(format!("{}: {line} (waiting for {what})", self.name));
                    }
                }
                Err(RecvTimeoutError::Timeout) => {
                    return Err(format!(
                        "{}: no {what} within {limit:?}; its log:\n{}",
                        self.name,
                        self.log_tail()
                    ))
                }
                Err(RecvTimeoutError::Disconnected) => {
                    return Err(format!(
                        "{} ended while waiting for {what}; its log:\n{}",
                        self.name,
                        self.log_tail()
                    ))
                }
            }
        }
    }

    /// Waits for a line that starts with `start` and gives the rest of it.
    pub fn expect_line(&mut self, limit: Duration, start: &str) -> Result<String, String> {
        self.expect(limit, &format!("`{start}`"), |l| {
            l.strip_prefix(start).map(str::to_string)
        })
    }

    /// Passes over every line read so far.
    pub fn drain(&mut self) {
        while self.lines.try_recv().is_ok() {}
    }

    /// Its whole log.
    pub fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// The last lines of its log.
    pub fn log_tail(&self) -> String {
        let text = std::fs::read_to_string(&self.log).unwrap_or_default();
        let lines: Vec<&str> = text.lines().collect();
        lines[lines.len().saturating_sub(20)..].join("\n")
    }

    /// Sends SIGKILL and gives the clock read just before it (for timing what follows).
    pub fn kill9(&mut self) -> u64 {
        let t = now_ns();
        let _ = self.child.kill();
        t
    }

    /// True while it runs.
    pub fn is_running(&mut self) -> bool {
        matches!(self.child.try_wait(), Ok(None))
    }

    /// Its memory now and at its peak (`VmRSS`, `VmHWM` of `/proc/PID/status`), in bytes.
    pub fn memory(&self) -> Option<(u64, u64)> {
        memory_of(self.pid())
    }

    /// Stops it: SIGKILL, or SIGTERM and a grace period for one made to end gently; then
    /// reaps it.
    pub fn stop(&mut self) {
        self.stdin = None;
        if !self.is_running() {
            return;
        }
        if !self.kill_at_once {
            if let Ok(pid) = libc::pid_t::try_from(self.child.id()) {
                // SAFETY: kill has no memory effects; the pid is our own child, not yet
                // reaped (is_running saw it), so it names no other process.
                unsafe {
                    libc::kill(pid, libc::SIGTERM);
                }
            }
            let asked = Instant::now();
            while asked.elapsed() < GRACE {
                if !self.is_running() {
                    return;
                }
                std::thread::sleep(Duration::from_millis(10));
            }
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        self.stop();
    }
}

/// `VmRSS` and `VmHWM` of a process, in bytes.
pub fn memory_of(pid: u32) -> Option<(u64, u64)> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let field = |name: &str| {
        status.lines().find_map(|l| {
            let rest = l.strip_prefix(name)?.strip_prefix(':')?;
            let kb: u64 = rest.trim().strip_suffix("kB")?.trim().parse().ok()?;
            Some(kb * 1024)
        })
    };
    Some((field("VmRSS")?, field("VmHWM")?))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_are_read_and_picked() {
        let mut c = Command::new("sh");
        c.args(["-c", "echo one; echo two 2; read x; echo got $x; sleep 30"]);
        let log =
            std::env::temp_dir().join(format!("strata-bench-proc-{}.log", std::process::id()));
        let mut p = Proc::start("sh", c, &log).unwrap();
        let two = p.expect_line(Duration::from_secs(5), "two ").unwrap();
        assert_eq!(two, "2");
        p.send("hello").unwrap();
        assert_eq!(
            p.expect_line(Duration::from_secs(5), "got ").unwrap(),
            "hello"
        );
        let e = p
            .expect_line(Duration::from_millis(100), "never")
            .unwrap_err();
        assert!(e.contains("no `never`"), "{e}");
        let (rss, peak) = p.memory().unwrap();
        assert!(rss > 0 && peak >= rss);
        let pid = p.pid();
        drop(p);
        // Killed and reaped: the pid names no process (unless it was reused since).
        assert!(!Path::new(&format!("/proc/{pid}")).exists());
        let _ = std::fs::remove_file(log);
    }

    #[test]
    fn runtime_folders_are_private_and_removed() {
        use std::os::unix::fs::PermissionsExt;
        let d = RuntimeDir::new().unwrap();
        let path = d.path.clone();
        let mode = std::fs::metadata(&path).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o700);
        std::fs::write(path.join("x"), b"x").unwrap();
        drop(d);
        assert!(!path.exists());
    }
}
