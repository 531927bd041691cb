//! The LAN benchmark's hosts: Linux network namespaces on one machine (the bench's own
//! small version of the tests' harness, `crates/strata/tests/support/netns.rs`).
//!
//! One private "switch" namespace holds a bridge (`br0`); each host namespace has `eth0`,
//! one end of a veth pair whose other end (`vN`) is a port of the bridge, an address
//! `10.78.X.N/24` (X chosen per run) and `lo` up. Everything is made with `ip -n NS ...`,
//! so nothing in the root namespace changes. Names are `sb<pid>-<k>-sw` and
//! `sb<pid>-<k>-hN`; dropping the [`Lan`] kills every process left in its namespaces and
//! removes them (also when a step of the benchmark failed), and the first `Lan` of a
//! process removes the `sb<pid>-` namespaces of dead runs. Every command is bounded
//! ([`COMMAND_LIMIT`]), and so is every wait.
//!
//! [`Host::cut`] drops everything in and out of a host's `eth0` (an nftables table of its
//! own in the host's namespace, nobody told); [`Host::heal`] deletes that table.

use std::io::Write;
use std::net::Ipv4Addr;
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{mpsc, Once};
use std::time::{Duration, Instant};

/// How long one `ip` or `nft` command may take (a loaded 2-core machine).
const COMMAND_LIMIT: Duration = Duration::from_secs(20);

/// The nftables table of [`Host::cut`].
const CUT_TABLE: &str = "strata_bench_cut";

/// Why the benchmark cannot make hosts here (not root, no `ip`), or `None`.
pub fn unavailable() -> Option<String> {
    // SAFETY: geteuid has no preconditions and cannot fail.
    let euid = unsafe { libc::geteuid() };
    if euid != 0 {
        return Some(format!(
            "needs root to make network namespaces (euid {euid})"
        ));
    }
    if let Err(e) = ip(&["netns", "list"]) {
        return Some(format!("needs iproute2: {e}"));
    }
    if let Err(e) = run(Command::new("nft").arg("--version"), None) {
        return Some(format!("needs nftables to cut a host off: {e}"));
    }
    None
}

/// A switch and its hosts; dropping it removes them all.
pub struct Lan {
    /// Every namespace made, the switch first: what `drop` removes.
    made: Vec<String>,
    hosts: Vec<Host>,
}

static NEXT: AtomicUsize = AtomicUsize::new(0);

impl Lan {
    /// The switch and `n` hosts (at most 250).
    pub fn new(n: usize) -> Result<Lan, String> {
        assert!((1..=250).contains(&n), "1 to 250 hosts, not {n}");
        static CLEANED: Once = Once::new();
        CLEANED.call_once(remove_stale);
        let pid = std::process::id();
        let k = NEXT.fetch_add(1, Ordering::Relaxed);
        let prefix = format!("sb{pid}-{k}");
        let third = 1 + ((pid as usize).wrapping_mul(7).wrapping_add(k) % 250) as u8;
        let mut lan = Lan {
            made: Vec::new(),
            hosts: Vec::new(),
        };
        // On an error `lan` drops here and removes what was made.
        lan.build(&prefix, n, third)?;
        Ok(lan)
    }

    fn build(&mut self, prefix: &str, n: usize, third: u8) -> Result<(), String> {
        let sw = format!("{prefix}-sw");
        ip(&["netns", "add", &sw])?;
        self.made.push(sw.clone());
        ip(&["-n", &sw, "link", "set", "lo", "up"])?;
        ip(&["-n", &sw, "link", "add", "br0", "type", "bridge"])?;
        ip(&["-n", &sw, "link", "set", "br0", "up"])?;
        for i in 1..=n {
            let name = format!("{prefix}-h{i}");
            ip(&["netns", "add", &name])?;
            self.made.push(name.clone());
            let port = format!("v{i}");
            ip(&[
                "-n", &sw, "link", "add", &port, "type", "veth", "peer", "name", "eth0", "netns",
                &name,
            ])?;
            ip(&["-n", &sw, "link", "set", &port, "master", "br0", "up"])?;
            let address = Ipv4Addr::new(10, 78, third, i as u8);
            ip(&[
                "-n",
                &name,
                "addr",
                "add",
                &format!("{address}/24"),
                "dev",
                "eth0",
            ])?;
            ip(&["-n", &name, "link", "set", "lo", "up"])?;
            ip(&["-n", &name, "link", "set", "eth0", "up"])?;
            let host = Host { name, address };
            host.await_carrier()?;
            self.hosts.push(host);
        }
        Ok(())
    }

    /// The hosts: `hosts()[0]` is `…-h1` at `10.78.X.1`.
    pub fn hosts(&self) -> &[Host] {
        &self.hosts
    }
}

impl Drop for Lan {
    fn drop(&mut self) {
        for name in self.made.iter().rev() {
            if let Err(e) = remove_namespace(name) {
                let line = format!("lan bench: could not remove namespace {name}: {e}\n");
                let _ = std::io::stderr().lock().write_all(line.as_bytes());
            }
        }
    }
}

/// One host: a network namespace with `eth0` on the switch.
pub struct Host {
    name: String,
    address: Ipv4Addr,
}

impl Host {
    /// The address of its `eth0`.
    pub fn address(&self) -> Ipv4Addr {
        self.address
    }

    /// A command running `program` inside this host (`ip netns exec NAME program`, which
    /// execs it: the pid is the program's own).
    pub fn command(&self, program: impl AsRef<std::ffi::OsStr>) -> Command {
        let mut c = Command::new("ip");
        c.args(["netns", "exec", &self.name]).arg(program);
        c
    }

    /// Cuts the host off: everything in or out of `eth0` dropped, nobody told.
    pub fn cut(&self) -> Result<(), String> {
        let t = CUT_TABLE;
        // Adding then deleting the table first makes the whole file replace it at once.
        let rules = format!(
            "add table inet {t}\n\
             delete table inet {t}\n\
             table inet {t} {{\n\
             \tchain input {{\n\t\ttype filter hook input priority -100; policy accept;\n\
             \t\tiifname \"eth0\" drop\n\t}}\n\
             \tchain output {{\n\t\ttype filter hook output priority -100; policy accept;\n\
             \t\toifname \"eth0\" drop\n\t}}\n\
             }}\n"
        );
        self.nft(&rules)
    }

    /// Undoes [`Host::cut`].
    pub fn heal(&self) -> Result<(), String> {
        let t = CUT_TABLE;
        self.nft(&format!("add table inet {t}\ndelete table inet {t}\n"))
    }

    fn nft(&self, rules: &str) -> Result<(), String> {
        let mut c = self.command("nft");
        c.args(["-f", "-"]);
        run(&mut c, Some(rules)).map(drop)
    }

    fn await_carrier(&self) -> Result<(), String> {
        let deadline = Instant::now() + COMMAND_LIMIT;
        loop {
            let shown = ip(&["-n", &self.name, "-o", "link", "show", "dev", "eth0"])?;
            if shown.contains(" state UP ") {
                return Ok(());
            }
            if Instant::now() > deadline {
                return Err(format!(
                    "eth0 of {} not up within {COMMAND_LIMIT:?}: {}",
                    self.name,
                    shown.trim()
                ));
            }
            std::thread::sleep(Duration::from_millis(10));
        }
    }
}

/// Removes the `sb<pid>-<k>-…` namespaces whose pid is gone (a crashed earlier run's).
fn remove_stale() {
    let Ok(listed) = ip(&["netns", "list"]) else {
        return;
    };
    for name in listed.lines().filter_map(|l| l.split_whitespace().next()) {
        let Some(pid) = run_pid(name) else { continue };
        let gone = !std::path::Path::new(&format!("/proc/{pid}")).exists();
        if gone || pid == std::process::id() {
            let _ = remove_namespace(name);
        }
    }
}

/// The pid in a name of this harness (`sb<pid>-<k>-sw`, `sb<pid>-<k>-h<n>`).
fn run_pid(name: &str) -> Option<u32> {
    let mut parts = name.strip_prefix("sb")?.split('-');
    let (pid, k, role) = (parts.next()?, parts.next()?, parts.next()?);
    let digits = |s: &str| !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit());
    let role_ok = role == "sw" || role.strip_prefix('h').is_some_and(digits);
    if parts.next().is_some() || !digits(pid) || !digits(k) || !role_ok {
        return None;
    }
    pid.parse().ok()
}

/// Kills the processes in namespace `name` (never this one) and removes it.
fn remove_namespace(name: &str) -> Result<(), String> {
    let me = std::process::id();
    let pids = ip(&["netns", "pids", name]).unwrap_or_default();
    for pid in pids
        .split_whitespace()
        .filter_map(|p| p.parse::<u32>().ok())
    {
        if pid != me {
            // SAFETY: kill(2) with SIGKILL to a process inside a namespace of this harness.
            unsafe { libc::kill(pid as libc::pid_t, libc::SIGKILL) };
        }
    }
    ip(&["netns", "delete", name]).map(drop)
}

fn ip(args: &[&str]) -> Result<String, String> {
    run(Command::new("ip").args(args), None)
}

/// Runs `command` to its end (at most [`COMMAND_LIMIT`], then killed), `input` on its
/// stdin; its stdout, or what it said when it failed.
fn run(command: &mut Command, input: Option<&str>) -> Result<String, String> {
    let what = format!("{command:?}");
    let mut child = command
        .stdin(if input.is_some() {
            Stdio::piped()
        } else {
            Stdio::null()
        })
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| format!("{what} does not start: {e}"))?;
    if let (Some(text), Some(mut stdin)) = (input, child.stdin.take()) {
        let _ = stdin.write_all(text.as_bytes());
    }
    let pid = child.id();
    let (done, finished) = mpsc::channel();
    std::thread::spawn(move || {
        let _ = done.send(child.wait_with_output());
    });
    let Ok(output) = finished.recv_timeout(COMMAND_LIMIT) else {
        // SAFETY: SIGKILL to the child started above, not yet reaped (its waiter has not
        // answered).
        unsafe { libc::kill(pid as libc::pid_t, libc::SIGKILL) };
        return Err(format!(
            "{what} did not finish within {COMMAND_LIMIT:?} (killed)"
        ));
    };
    let output = output.map_err(|e| format!("{what}: {e}"))?;
    if !output.status.success() {
        return Err(format!(
            "{what} failed ({}): {}",
            output.status,
            String::from_utf8_lossy(&output.stderr).trim()
        ));
    }
    Ok(String::from_utf8_lossy(&output.stdout).into_owned())
}

#[cfg(test)]
mod tests {
    use super::run_pid;

    #[test]
    fn only_this_harness_names_are_read_as_runs() {
        assert_eq!(run_pid("sb123-0-sw"), Some(123));
        assert_eq!(run_pid("sb123-4-h2"), Some(123));
        assert_eq!(run_pid("st123-0-sw"), None);
        assert_eq!(run_pid("sb123-0-x"), None);
        assert_eq!(run_pid("sb123-0-h2-more"), None);
    }
}
