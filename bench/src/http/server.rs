//! Server processes for the HTTP benchmarks: started on a free loopback port, waited for
//! until they answer, checked, and always stopped (SIGTERM, then SIGKILL after a grace
//! period) by a guard, also when the harness fails or is itself killed.

use std::io::{Read, Write};
use std::net::{Ipv4Addr, SocketAddr, TcpListener, TcpStream};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// How long a server may take to answer its first request.
const READY_TIMEOUT: Duration = Duration::from_secs(30);
/// How long a server has to end after SIGTERM before it is killed.
const GRACE: Duration = Duration::from_secs(3);
/// Read and write time-out of one check request.
const PROBE_TIMEOUT: Duration = Duration::from_secs(5);

/// Makes a child process receive SIGKILL if this process dies first, so no server or
/// load generator outlives a harness that was killed.
pub fn die_with_parent(command: &mut Command) {
    // SAFETY: the closure runs in the child between fork and exec and calls only prctl,
    // which is async-signal-safe.
    unsafe {
        command.pre_exec(|| {
            if libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL) != 0 {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        });
    }
}

/// A free port on 127.0.0.1 (bound and released at once; the server binds it next).
pub fn free_port() -> Result<u16, String> {
    let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, 0))
        .map_err(|e| format!("cannot find a free port: {e}"))?;
    listener
        .local_addr()
        .map(|a| a.port())
        .map_err(|e| e.to_string())
}

/// A running server process; dropping it stops the process.
pub struct Server {
    name: String,
    child: Child,
    /// Where the server listens.
    pub address: SocketAddr,
    log: PathBuf,
    /// Processes the server was seen to start, with their start times.
    descendants: std::cell::RefCell<Vec<(u32, u64)>>,
    /// Processes started beside it that belong to the measurement (named workers, a
    /// host directory): counted in its CPU time, stopped with it.
    companions: Vec<Companion>,
    /// What must outlive the processes (a private runtime folder), dropped after them.
    keep: Vec<Box<dyn std::any::Any>>,
}

/// A process started beside a server (a worker that finds it by name, the host
/// directory they meet in), with its output going to a log; stopped when dropped
/// (SIGTERM, then SIGKILL after a grace period).
pub struct Companion {
    name: String,
    child: Child,
}

impl Companion {
    /// Starts `command`, its output going to `log`.
    pub fn start(name: &str, mut command: Command, log: &Path) -> Result<Companion, String> {
        if let Some(dir) = log.parent() {
            std::fs::create_dir_all(dir)
                .map_err(|e| format!("cannot create {}: {e}", dir.display()))?;
        }
        let out = std::fs::File::create(log)
            .map_err(|e| format!("cannot create {}: {e}", log.display()))?;
        let err = out.try_clone().map_err(|e| e.to_string())?;
        command
            .stdin(Stdio::null())
            .stdout(Stdio::from(out))
            .stderr(Stdio::from(err));
        die_with_parent(&mut command);
        let child = command
            .spawn()
            .map_err(|e| format!("cannot start {name}: {e}"))?;
        Ok(Companion {
            name: name.to_string(),
            child,
        })
    }

    /// True while it runs.
    pub fn is_running(&mut self) -> bool {
        matches!(self.child.try_wait(), Ok(None))
    }

    /// The CPU time (user + system) it has used so far, while it runs.
    pub fn cpu_time(&self) -> Option<Duration> {
        cpu_of(self.child.id())
    }

    /// SIGTERM, a grace period, then SIGKILL; waits for the process either way.
    pub fn stop(&mut self) {
        terminate(&mut self.child, &self.name);
    }
}

impl Drop for Companion {
    fn drop(&mut self) {
        self.stop();
    }
}

/// SIGTERM to `child` (unless it has ended), a grace period, then SIGKILL.
fn terminate(child: &mut Child, name: &str) {
    ask_to_end(child);
    end_within(child, name, Instant::now() + GRACE);
}

/// Sends SIGTERM to `child`, if it has not ended yet.
fn ask_to_end(child: &mut Child) {
    if !matches!(child.try_wait(), Ok(None)) {
        return;
    }
    if let Ok(pid) = libc::pid_t::try_from(child.id()) {
        // SAFETY: kill has no memory effects; the pid is our own child, not yet reaped
        // (try_wait just saw it running), so it names no other process.
        unsafe {
            libc::kill(pid, libc::SIGTERM);
        }
    }
}

/// Waits for `child` to end until `deadline`, then kills it; reaps it either way.
fn end_within(child: &mut Child, name: &str, deadline: Instant) {
    while Instant::now() < deadline {
        if !matches!(child.try_wait(), Ok(None)) {
            return;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    eprintln!("{name} did not end within {GRACE:?} of SIGTERM; killing it");
    let _ = child.kill();
    let _ = child.wait();
}

/// What the harness reads of `/proc/PID/stat`.
struct ProcStat {
    state: char,
    cpu_ticks: u64,
    start: u64,
}

impl ProcStat {
    fn read(pid: u32) -> Option<ProcStat> {
        let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
        // The command name may hold spaces and parentheses: fields count from the last ')'.
        let rest = &stat[stat.rfind(')')? + 1..];
        let fields: Vec<&str> = rest.split_whitespace().collect();
        // Field 3 of the line is the state; utime and stime are fields 14 and 15, the
        // start time field 22 (1, 12, 13 and 20 after the name).
        let number = |i: usize| fields.get(i)?.parse::<u64>().ok();
        Some(ProcStat {
            state: fields.first()?.chars().next()?,
            cpu_ticks: number(11)? + number(12)?,
            start: number(19)?,
        })
    }
}

/// The CPU time (user + system, every thread) process `pid` has used so far.
pub fn cpu_of(pid: u32) -> Option<Duration> {
    let ticks = ProcStat::read(pid)?.cpu_ticks;
    // SAFETY: sysconf only reads a system setting.
    let per_second = unsafe { libc::sysconf(libc::_SC_CLK_TCK) };
    let per_second = u64::try_from(per_second).ok().filter(|&t| t > 0)?;
    Some(Duration::from_secs_f64(ticks as f64 / per_second as f64))
}

/// The processes descended from `pid` (children, their children, ...), with their start
/// times, from `/proc/PID/task/TID/children`; at most 256, four generations deep.
pub fn descendants(pid: u32) -> Vec<(u32, u64)> {
    let mut found: Vec<(u32, u64)> = Vec::new();
    let mut generation = vec![pid];
    for _ in 0..4 {
        let mut next = Vec::new();
        for parent in generation {
            let Ok(tasks) = std::fs::read_dir(format!("/proc/{parent}/task")) else {
                continue;
            };
            for task in tasks.flatten() {
                let children =
                    std::fs::read_to_string(task.path().join("children")).unwrap_or_default();
                for child in children.split_whitespace().filter_map(|c| c.parse().ok()) {
                    if found.len() < 256 && !found.iter().any(|&(p, _)| p == child) {
                        if let Some(stat) = ProcStat::read(child) {
                            found.push((child, stat.start));
                            next.push(child);
                        }
                    }
                }
            }
        }
        if next.is_empty() {
            break;
        }
        generation = next;
    }
    found
}

impl Server {
    /// Starts `command` (which must listen on `address`), its output going to `log`.
    pub fn start(
        name: &str,
        mut command: Command,
        address: SocketAddr,
        log: &Path,
    ) -> Result<Server, String> {
        if let Some(dir) = log.parent() {
            std::fs::create_dir_all(dir)
                .map_err(|e| format!("cannot create {}: {e}", dir.display()))?;
        }
        let out = std::fs::File::create(log)
            .map_err(|e| format!("cannot create {}: {e}", log.display()))?;
        let err = out.try_clone().map_err(|e| e.to_string())?;
        command
            .stdin(Stdio::null())
            .stdout(Stdio::from(out))
            .stderr(Stdio::from(err));
        die_with_parent(&mut command);
        let child = command
            .spawn()
            .map_err(|e| format!("cannot start {name}: {e}"))?;
        Ok(Server {
            name: name.to_string(),
            child,
            address,
            log: log.to_path_buf(),
            descendants: std::cell::RefCell::new(Vec::new()),
            companions: Vec::new(),
            keep: Vec::new(),
        })
    }

    /// Makes `c` part of the measurement: its CPU time counts with the server's, and it
    /// is stopped with it.
    pub fn adopt(&mut self, c: Companion) {
        self.companions.push(c);
    }

    /// Keeps `guard` until the server and its companions have stopped.
    pub fn keep(&mut self, guard: Box<dyn std::any::Any>) {
        self.keep.push(guard);
    }

    /// The server process's pid.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// The processes the server started (a process spool's workers) and that run now.
    pub fn workers(&self) -> Vec<u32> {
        let found = descendants(self.child.id());
        self.remember(&found);
        found.into_iter().map(|(pid, _)| pid).collect()
    }

    /// The pids of its companions that still run (ended ones are reaped).
    pub fn companion_pids(&mut self) -> Vec<u32> {
        self.companions
            .iter_mut()
            .filter_map(|c| c.is_running().then(|| c.child.id()))
            .collect()
    }

    /// Every process of the measurement that runs now: the server, what it started, its
    /// companions and what they started.
    pub fn tree(&mut self) -> Vec<u32> {
        let mut all = vec![self.child.id()];
        all.extend(self.workers());
        for c in self.companion_pids() {
            all.push(c);
            all.extend(descendants(c).into_iter().map(|(pid, _)| pid));
        }
        all
    }

    /// The first guard of type `T` kept with [`Server::keep`].
    pub fn kept<T: 'static>(&self) -> Option<&T> {
        self.keep.iter().find_map(|k| k.downcast_ref::<T>())
    }

    /// How many of its companions still run.
    pub fn companions_running(&mut self) -> usize {
        self.companions
            .iter_mut()
            .map(|c| c.is_running())
            .filter(|&running| running)
            .count()
    }

    /// Everything the server printed so far.
    pub fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// Waits until `GET path` answers 200, and gives the body. Fails if the process ends
    /// or does not answer within [`READY_TIMEOUT`].
    pub fn wait_until_ready(&mut self, path: &str) -> Result<Vec<u8>, String> {
        let started = Instant::now();
        let mut last = String::from("no answer yet");
        while started.elapsed() < READY_TIMEOUT {
            if let Ok(Some(status)) = self.child.try_wait() {
                return Err(format!(
                    "{} ended ({status}) before answering; its output:\n{}",
                    self.name,
                    self.log_tail()
                ));
            }
            match get(self.address, path) {
                Ok((200, body)) => {
                    self.remember(&descendants(self.child.id()));
                    return Ok(body);
                }
                Ok((status, body)) => {
                    last = format!("status {status}: {}", String::from_utf8_lossy(&body));
                }
                Err(e) => last = e,
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        Err(format!(
            "{} did not answer GET {path} within {READY_TIMEOUT:?} ({last}); its output:\n{}",
            self.name,
            self.log_tail()
        ))
    }

    /// Waits (at most [`READY_TIMEOUT`]) until the server has printed `needle`.
    pub fn wait_for_output(&mut self, needle: &str) -> Result<(), String> {
        let started = Instant::now();
        while started.elapsed() < READY_TIMEOUT {
            if self.log_text().contains(needle) {
                return Ok(());
            }
            if !self.is_running() {
                break;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        Err(format!(
            "{} did not print `{needle}` within {READY_TIMEOUT:?}; its output:\n{}",
            self.name,
            self.log_tail()
        ))
    }

    /// The last lines the server printed.
    pub fn log_tail(&self) -> String {
        let text = std::fs::read_to_string(&self.log).unwrap_or_default();
        let lines: Vec<&str> = text.lines().collect();
        lines[lines.len().saturating_sub(20)..].join("\n")
    }

    /// The CPU time (user + system, every thread) the process and the processes it
    /// started (a process spool's workers) have used so far, from `/proc/PID/stat`. A
    /// worker that has ended by then is no longer counted.
    pub fn cpu_time(&self) -> Option<Duration> {
        let root = self.child.id();
        let mut ticks = ProcStat::read(root)?.cpu_ticks;
        let descendants = descendants(root);
        for &(pid, _) in &descendants {
            ticks += ProcStat::read(pid).map_or(0, |s| s.cpu_ticks);
        }
        self.remember(&descendants);
        for c in &self.companions {
            let pid = c.child.id();
            ticks += ProcStat::read(pid).map_or(0, |s| s.cpu_ticks);
            for (d, _) in self::descendants(pid) {
                ticks += ProcStat::read(d).map_or(0, |s| s.cpu_ticks);
            }
        }
        // SAFETY: sysconf only reads a system setting.
        let per_second = unsafe { libc::sysconf(libc::_SC_CLK_TCK) };
        let per_second = u64::try_from(per_second).ok().filter(|&t| t > 0)?;
        Some(Duration::from_secs_f64(ticks as f64 / per_second as f64))
    }

    /// Adds processes to those the server was seen to start.
    fn remember(&self, found: &[(u32, u64)]) {
        let mut seen = self.descendants.borrow_mut();
        for p in found {
            if !seen.contains(p) {
                seen.push(*p);
            }
        }
    }

    /// Kills, by pid, the processes the server was seen to start that are still the same
    /// processes (same start time) and still alive: workers a spool left behind, such as
    /// the Python spool's, which do not die with their parent.
    fn reap_descendants(&self) {
        let seen = self.descendants.borrow();
        let alive = || {
            seen.iter()
                .filter(|&&(pid, start)| {
                    ProcStat::read(pid).is_some_and(|s| s.start == start && s.state != 'Z')
                })
                .copied()
                .collect::<Vec<_>>()
        };
        let asked = Instant::now();
        while asked.elapsed() < GRACE && !alive().is_empty() {
            std::thread::sleep(Duration::from_millis(20));
        }
        for (pid, _) in alive() {
            eprintln!(
                "{}: a worker process ({pid}) outlived it; killing it",
                self.name
            );
            if let Ok(pid) = libc::pid_t::try_from(pid) {
                // SAFETY: kill has no memory effects; the pid was checked just above to
                // name the process the server started (same start time).
                unsafe {
                    libc::kill(pid, libc::SIGKILL);
                }
            }
        }
    }

    /// True while the process runs.
    pub fn is_running(&mut self) -> bool {
        matches!(self.child.try_wait(), Ok(None))
    }

    /// SIGTERM, a grace period, then SIGKILL; waits for the process either way. Then
    /// the same for any worker process it left behind, and for its companions.
    pub fn stop(&mut self) {
        if self.is_running() {
            self.remember(&descendants(self.child.id()));
            terminate(&mut self.child, &self.name);
        }
        self.reap_descendants();
        // All at once, the last started first (workers before their host directory).
        for c in self.companions.iter_mut().rev() {
            ask_to_end(&mut c.child);
        }
        let deadline = Instant::now() + GRACE;
        for c in self.companions.iter_mut().rev() {
            end_within(&mut c.child, &c.name, deadline);
        }
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.stop();
    }
}

/// One `GET path` over a fresh connection: the status and the body. Only what the
/// servers here send is understood: a `Content-Length` body, no chunked encoding.
pub fn get(address: SocketAddr, path: &str) -> Result<(u16, Vec<u8>), String> {
    let mut stream =
        TcpStream::connect_timeout(&address, PROBE_TIMEOUT).map_err(|e| format!("connect: {e}"))?;
    stream
        .set_read_timeout(Some(PROBE_TIMEOUT))
        .and_then(|_| stream.set_write_timeout(Some(PROBE_TIMEOUT)))
        .map_err(|e| e.to_string())?;
    let request = format!("GET {path} HTTP/1.1\r\nHost: {address}\r\nConnection: close\r\n\r\n");
    stream
        .write_all(request.as_bytes())
        .map_err(|e| format!("write: {e}"))?;
    let mut buffer = Vec::new();
    let mut chunk = [0u8; 16 * 1024];
    let head_end = loop {
        if let Some(i) = find(&buffer, b"\r\n\r\n") {
            break i;
        }
        let n = stream.read(&mut chunk).map_err(|e| format!("read: {e}"))?;
        if n == 0 {
            return Err("the connection closed before the response head ended".into());
        }
        buffer.extend_from_slice(&chunk[..n]);
    };
    let head = String::from_utf8_lossy(&buffer[..head_end]).to_string();
    let status: u16 = head
        .lines()
        .next()
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|s| s.parse().ok())
        .ok_or_else(|| format!("not an HTTP response head: {head:?}"))?;
    let header = |name: &str| {
        head.lines().skip(1).find_map(|l| {
            let (k, v) = l.split_once(':')?;
            k.trim()
                .eq_ignore_ascii_case(name)
                .then(|| v.trim().to_string())
        })
    };
    if header("transfer-encoding").is_some() {
        return Err("a chunked response: not understood by this check".into());
    }
    let length: usize = header("content-length")
        .and_then(|v| v.parse().ok())
        .ok_or_else(|| format!("no Content-Length in {head:?}"))?;
    let mut body = buffer[head_end + 4..].to_vec();
    while body.len() < length {
        let n = stream.read(&mut chunk).map_err(|e| format!("read: {e}"))?;
        if n == 0 {
            return Err("the connection closed inside the body".into());
        }
        body.extend_from_slice(&chunk[..n]);
    }
    body.truncate(length);
    Ok((status, body))
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|w| w == needle)
}

/// Checks that `table` is `y` rows of `x` numbers in [0, 1).
pub fn check_table(table: &serde_json::Value, x: usize, y: usize) -> Result<(), String> {
    let rows = table
        .as_array()
        .ok_or_else(|| format!("not a list of rows: {table}"))?;
    if rows.len() != y {
        return Err(format!("{} rows, not {y}", rows.len()));
    }
    for row in rows {
        let cells = row
            .as_array()
            .ok_or_else(|| format!("a row is not a list: {row}"))?;
        if cells.len() != x {
            return Err(format!("a row of {} numbers, not {x}", cells.len()));
        }
        for cell in cells {
            match cell.as_f64() {
                Some(v) if (0.0..1.0).contains(&v) => {}
                _ => return Err(format!("{cell} is not a number in [0, 1)")),
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tables_are_checked() {
        let good = serde_json::json!([[0.1, 0.2], [0.3, 0.99]]);
        assert!(check_table(&good, 2, 2).is_ok());
        assert!(check_table(&good, 3, 2).is_err());
        assert!(check_table(&good, 2, 3).is_err());
        assert!(check_table(&serde_json::json!([[0.1, 1.5]]), 2, 1).is_err());
        assert!(check_table(&serde_json::json!({"a": 1}), 1, 1).is_err());
    }

    #[test]
    fn cpu_time_is_read() {
        let port = free_port().unwrap();
        let address = SocketAddr::from((Ipv4Addr::LOCALHOST, port));
        let log = std::env::temp_dir().join(format!("strata-bench-cpu-{port}.log"));
        let mut command = Command::new("sh");
        command.args([
            "-c",
            "i=0; while [ $i -lt 200000 ]; do i=$((i+1)); done; sleep 30",
        ]);
        let server = Server::start("busy sh", command, address, &log).unwrap();
        let first = server.cpu_time().expect("a running process has a CPU time");
        std::thread::sleep(Duration::from_millis(300));
        let later = server.cpu_time().unwrap();
        assert!(later >= first);
        drop(server);
        let _ = std::fs::remove_file(log);
    }

    #[test]
    fn a_server_is_stopped_when_its_guard_drops() {
        let port = free_port().unwrap();
        let address = SocketAddr::from((Ipv4Addr::LOCALHOST, port));
        let log = std::env::temp_dir().join(format!("strata-bench-guard-{port}.log"));
        let mut command = Command::new("sleep");
        command.arg("30");
        let mut server = Server::start("sleep", command, address, &log).unwrap();
        let pid = server.child.id();
        assert!(server.is_running());
        let started = Instant::now();
        drop(server);
        assert!(started.elapsed() < GRACE, "sleep ends on SIGTERM");
        // The pid is reaped: no such process any more (or a new one, not our child).
        assert!(
            !Path::new(&format!("/proc/{pid}/status")).exists() || {
                let status =
                    std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
                !status.contains("sleep")
            }
        );
        let _ = std::fs::remove_file(log);
    }
}
