//! Test hosts made of Linux network namespaces, for tests across hosts on one machine.
//!
//! A [`Lan`] is one private "switch" namespace holding a bridge (`br0`) and `hosts` host
//! namespaces. Each host has `eth0`, one end of a veth pair whose other end (`vN`) is a
//! port of the bridge, an address in one /24 (`10.77.X.N`, X chosen per run) and `lo` up.
//! Everything is made with `ip -n NAMESPACE ...` (the veth pair inside the switch, its
//! `eth0` end sent straight to the host), so nothing in the root namespace changes, not
//! even for a moment.
//!
//! Names are `st<pid>-<k>-sw` and `st<pid>-<k>-hN` (`k` counts the `Lan`s of a process).
//! Dropping the `Lan` kills every process in its namespaces and removes them; the first
//! `Lan` of a process also removes those of dead runs (a crashed test leaves its
//! namespaces behind): the `st<pid>-` names whose pid is gone, or is this process's own.
//!
//! Faults: [`Host::cut`] (nftables drop on `eth0`, both ways), [`Host::link_down`] (its
//! cable pulled) and [`Host::stop`] (SIGSTOP), each with its undoing, and [`Host::kill`]
//! (SIGKILL). Programs run inside a host through [`Host::command`]; code of the test itself
//! through [`Host::within`] (a thread of its own that enters the namespace).
//!
//! Needs root and iproute2: otherwise [`Lan::new`] gives a [`Skip`], and a test prints one
//! line and returns ([`Lan::or_skip`]). [`Host::cut`] needs nftables too. `scripts/test`
//! installs both when it can.
//!
//! std and libc only, and self-contained (nothing from `super`), so a test file can take it
//! from `support` or alone with `#[path = "support/netns.rs"]`.

#![allow(dead_code)]

use std::ffi::OsStr;
use std::fmt;
use std::io::Write;
use std::net::Ipv4Addr;
use std::os::fd::AsRawFd;
use std::os::unix::fs::MetadataExt;
use std::process::{Command, Output, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{mpsc, Once};
use std::time::{Duration, Instant};

/// How long one `ip` or `nft` command may take (a loaded 2-core machine).
const COMMAND_LIMIT: Duration = Duration::from_secs(20);

/// The nftables table [`Host::cut`] adds in a host's namespace.
const CUT_TABLE: &str = "strata_cut";

/// How many hosts one `Lan` may have (addresses `.1` to `.250` of its /24).
pub const MAX_HOSTS: usize = 250;

/// Why the namespace tests cannot run here: not root, or `ip netns add` failed.
pub struct Skip {
    reason: String,
}

impl Skip {
    /// Why, in a few words.
    pub fn reason(&self) -> &str {
        &self.reason
    }

    /// Prints the one line saying so (with the test's name), straight to stderr: past the
    /// test harness's capture, so that a skip is seen in an ordinary `cargo test` run.
    pub fn print(&self) {
        let test = std::thread::current()
            .name()
            .map(|name| format!(" [{name}]"))
            .unwrap_or_default();
        let line = format!("{self}{test}\n");
        let _ = std::io::stderr().lock().write_all(line.as_bytes());
    }
}

impl fmt::Display for Skip {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "skipping: needs root and iproute2 ({})", self.reason)
    }
}

impl fmt::Debug for Skip {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

/// A harness command that failed, with what was run and what it said.
pub struct NetError(String);

impl NetError {
    fn new(text: impl Into<String>) -> NetError {
        NetError(text.into())
    }
}

impl fmt::Display for NetError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl fmt::Debug for NetError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for NetError {}

/// A switch and its hosts; dropping it removes them all.
pub struct Lan {
    switch: String,
    /// Every namespace made, in order (the switch first): what `drop` removes.
    made: Vec<String>,
    hosts: Vec<Host>,
    subnet: Ipv4Addr,
}

/// Counts the `Lan`s of this process (the `k` of the names).
static NEXT: AtomicUsize = AtomicUsize::new(0);

impl Lan {
    /// Makes the switch and `hosts` hosts (at most [`MAX_HOSTS`]). Gives a [`Skip`] when
    /// not root or when `ip netns add` fails (no permission, no iproute2); fails the test
    /// when a later step fails (having removed what it made).
    pub fn new(hosts: usize) -> Result<Lan, Skip> {
        assert!(
            hosts <= MAX_HOSTS,
            "a Lan has at most {MAX_HOSTS} hosts, not {hosts}"
        );
        // SAFETY: geteuid has no preconditions and cannot fail.
        let euid = unsafe { libc::geteuid() };
        if euid != 0 {
            return Err(Skip {
                reason: format!("not root: euid {euid}"),
            });
        }
        static CLEANED: Once = Once::new();
        CLEANED.call_once(|| {
            remove_stale_names(true);
        });

        let pid = std::process::id();
        let k = NEXT.fetch_add(1, Ordering::Relaxed);
        let prefix = format!("st{pid}-{k}");
        let switch = format!("{prefix}-sw");
        if let Err(e) = ip(&["netns", "add", &switch]) {
            return Err(Skip {
                reason: e.to_string(),
            });
        }
        let third = 1 + ((pid as usize).wrapping_mul(7).wrapping_add(k) % 250) as u8;
        let mut lan = Lan {
            switch: switch.clone(),
            made: vec![switch.clone()],
            hosts: Vec::with_capacity(hosts),
            subnet: Ipv4Addr::new(10, 77, third, 0),
        };
        if let Err(e) = lan.build(&prefix, hosts) {
            drop(lan);
            panic!("making the test hosts of {switch}: {e}");
        }
        Ok(lan)
    }

    /// [`Lan::new`], or `None` after printing the skip line: `let Some(lan) =
    /// Lan::or_skip(2) else { return };`.
    pub fn or_skip(hosts: usize) -> Option<Lan> {
        match Lan::new(hosts) {
            Ok(lan) => Some(lan),
            Err(skip) => {
                skip.print();
                None
            }
        }
    }

    fn build(&mut self, prefix: &str, hosts: usize) -> Result<(), NetError> {
        let sw = self.switch.clone();
        ip(&["-n", &sw, "link", "set", "lo", "up"])?;
        ip(&["-n", &sw, "link", "add", "br0", "type", "bridge"])?;
        ip(&["-n", &sw, "link", "set", "br0", "up"])?;
        for n in 1..=hosts {
            let name = format!("{prefix}-h{n}");
            ip(&["netns", "add", &name])?;
            self.made.push(name.clone());
            let port = format!("v{n}");
            ip(&[
                "-n", &sw, "link", "add", &port, "type", "veth", "peer", "name", "eth0", "netns",
                &name,
            ])?;
            ip(&["-n", &sw, "link", "set", &port, "master", "br0", "up"])?;
            let [a, b, c, _] = self.subnet.octets();
            let address = Ipv4Addr::new(a, b, c, n as u8);
            let cidr = format!("{address}/24");
            ip(&["-n", &name, "addr", "add", &cidr, "dev", "eth0"])?;
            ip(&["-n", &name, "link", "set", "lo", "up"])?;
            ip(&["-n", &name, "link", "set", "eth0", "up"])?;
            let host = Host {
                name,
                address,
                switch: sw.clone(),
                port,
            };
            host.await_carrier()?;
            self.hosts.push(host);
        }
        Ok(())
    }

    /// The hosts, in order: `hosts()[0]` is `…-h1` at `10.77.X.1`.
    pub fn hosts(&self) -> &[Host] {
        &self.hosts
    }

    /// The switch's namespace (`st<pid>-<k>-sw`).
    pub fn switch(&self) -> &str {
        &self.switch
    }

    /// The hosts' network, `10.77.X.0` (a /24).
    pub fn subnet(&self) -> Ipv4Addr {
        self.subnet
    }

    /// Every namespace this `Lan` made (the switch first).
    pub fn names(&self) -> Vec<String> {
        self.made.clone()
    }
}

impl Drop for Lan {
    fn drop(&mut self) {
        for name in self.made.iter().rev() {
            if let Err(e) = remove_namespace(name) {
                let line = format!("netns harness: could not remove {name}: {e}\n");
                let _ = std::io::stderr().lock().write_all(line.as_bytes());
            }
        }
    }
}

/// One host: a network namespace with `eth0` on the switch.
pub struct Host {
    name: String,
    address: Ipv4Addr,
    /// The switch's namespace and this host's port there (the other end of `eth0`).
    switch: String,
    port: String,
}

impl Host {
    /// The namespace's name (`st<pid>-<k>-hN`).
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The address of its `eth0`.
    pub fn address(&self) -> Ipv4Addr {
        self.address
    }

    /// A command that runs `program` inside this host (`ip netns exec NAME program`); add
    /// arguments, environment and pipes as usual. The environment is inherited. The
    /// process's pid is `program`'s own (`ip netns exec` execs it).
    pub fn command(&self, program: impl AsRef<OsStr>) -> Command {
        let mut command = Command::new("ip");
        command.args(["netns", "exec", &self.name]).arg(program);
        command
    }

    /// Runs `body` on a thread of its own that has entered this host's network namespace,
    /// and gives its value (a panic in `body` is passed on). Sockets made there stay in the
    /// host, so they can be used from any thread afterwards.
    pub fn within<T: Send>(&self, body: impl FnOnce() -> T + Send) -> Result<T, NetError> {
        let path = self.namespace_file();
        let file = std::fs::File::open(&path)
            .map_err(|e| NetError::new(format!("opening {path}: {e}")))?;
        std::thread::scope(|scope| {
            let worker = std::thread::Builder::new()
                .name(format!("in-{}", self.name))
                .spawn_scoped(scope, move || {
                    // SAFETY: setns(2) changes only this thread's network namespace, to the
                    // one of a namespace file held open here; the thread ends after `body`.
                    if unsafe { libc::setns(file.as_raw_fd(), libc::CLONE_NEWNET) } != 0 {
                        let e = std::io::Error::last_os_error();
                        return Err(NetError::new(format!("setns into {}: {e}", self.name)));
                    }
                    Ok(body())
                })
                .map_err(|e| NetError::new(format!("a thread for {}: {e}", self.name)))?;
            match worker.join() {
                Ok(value) => value,
                Err(panic) => std::panic::resume_unwind(panic),
            }
        })
    }

    /// Cuts the host off the LAN: everything in or out of `eth0` is dropped (an nftables
    /// table of its own in the host's namespace). Its loopback still works, and nobody is
    /// told: no RST, no ICMP. Cutting twice is cutting once. Needs `nft` (package nftables).
    pub fn cut(&self) -> Result<(), NetError> {
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

    /// Undoes [`Host::cut`] (deletes its table); healing a host that is not cut does nothing.
    pub fn heal(&self) -> Result<(), NetError> {
        let t = CUT_TABLE;
        self.nft(&format!("add table inet {t}\ndelete table inet {t}\n"))
    }

    fn nft(&self, rules: &str) -> Result<(), NetError> {
        nft_present()?;
        let mut command = self.command("nft");
        command.args(["-f", "-"]);
        run(&mut command, Some(rules)).map(drop)
    }

    /// Pulls the host's cable: the switch's end of `eth0` goes down, so `eth0` loses its
    /// carrier and nothing passes, with nobody told. (Setting `eth0` itself down would be
    /// noticed at once by the host's own programs, whose sends would fail.)
    pub fn link_down(&self) -> Result<(), NetError> {
        ip(&["-n", &self.switch, "link", "set", &self.port, "down"]).map(drop)
    }

    /// Plugs the cable back in; returns when `eth0` has its carrier again.
    pub fn link_up(&self) -> Result<(), NetError> {
        ip(&["-n", &self.switch, "link", "set", &self.port, "up"])?;
        self.await_carrier()
    }

    /// Waits (at most [`COMMAND_LIMIT`]) until `eth0` is up with a carrier.
    fn await_carrier(&self) -> Result<(), NetError> {
        let deadline = Instant::now() + COMMAND_LIMIT;
        loop {
            let shown = ip(&["-n", &self.name, "-o", "link", "show", "dev", "eth0"])?;
            if shown.contains(" state UP ") {
                return Ok(());
            }
            if Instant::now() > deadline {
                return Err(NetError::new(format!(
                    "eth0 of {} not up within {COMMAND_LIMIT:?}: {}",
                    self.name,
                    shown.trim()
                )));
            }
            std::thread::sleep(Duration::from_millis(10));
        }
    }

    /// Stops process `pid` of this host (SIGSTOP): a hung host, its sockets still open.
    pub fn stop(&self, pid: u32) -> Result<(), NetError> {
        self.signal(pid, libc::SIGSTOP, "SIGSTOP")
    }

    /// Lets process `pid` of this host go on (SIGCONT).
    pub fn cont(&self, pid: u32) -> Result<(), NetError> {
        self.signal(pid, libc::SIGCONT, "SIGCONT")
    }

    /// Kills process `pid` of this host (SIGKILL): a crash, which its peers hear at once.
    pub fn kill(&self, pid: u32) -> Result<(), NetError> {
        self.signal(pid, libc::SIGKILL, "SIGKILL")
    }

    fn signal(&self, pid: u32, signo: i32, what: &str) -> Result<(), NetError> {
        if !self.holds(pid) {
            return Err(NetError::new(format!(
                "{what}: pid {pid} is not a process of host {} (gone, or in another namespace)",
                self.name
            )));
        }
        // SAFETY: kill(2) with a valid signal, to a process checked to be in this host.
        if unsafe { libc::kill(pid as libc::pid_t, signo) } != 0 {
            let e = std::io::Error::last_os_error();
            return Err(NetError::new(format!(
                "{what} to pid {pid} in {}: {e}",
                self.name
            )));
        }
        Ok(())
    }

    /// Whether process `pid` lives in this host's network namespace.
    pub fn holds(&self, pid: u32) -> bool {
        let ours = std::fs::metadata(self.namespace_file());
        let theirs = std::fs::metadata(format!("/proc/{pid}/ns/net"));
        match (ours, theirs) {
            (Ok(a), Ok(b)) => a.dev() == b.dev() && a.ino() == b.ino(),
            _ => false,
        }
    }

    /// The processes in this host (`ip netns pids`).
    pub fn pids(&self) -> Result<Vec<u32>, NetError> {
        pids_of(&self.name)
    }

    fn namespace_file(&self) -> String {
        format!("/run/netns/{}", self.name)
    }
}

/// The named network namespaces (`ip netns list`).
pub fn namespaces() -> Result<Vec<String>, NetError> {
    let listed = ip(&["netns", "list"])?;
    Ok(listed
        .lines()
        .filter_map(|line| line.split_whitespace().next())
        .map(str::to_string)
        .collect())
}

/// Removes the namespaces left by dead runs: `st<pid>-<k>-sw` and `st<pid>-<k>-hN` whose
/// pid is no longer a process (and the processes still in them). Best effort; gives the
/// names it removed. Never touches another name, nor this process's own.
pub fn remove_stale() -> Vec<String> {
    remove_stale_names(false)
}

/// [`remove_stale`]; with `own`, this process's names go too (before its first `Lan`, a
/// name with its pid can only be an earlier process's that had the same pid).
fn remove_stale_names(own: bool) -> Vec<String> {
    let me = std::process::id();
    let Ok(names) = namespaces() else {
        return Vec::new();
    };
    let mut removed = Vec::new();
    for name in names {
        let Some(pid) = run_pid(&name) else {
            continue;
        };
        let dead = !std::path::Path::new(&format!("/proc/{pid}")).exists();
        if (dead || (own && pid == me)) && remove_namespace(&name).is_ok() {
            removed.push(name);
        }
    }
    removed
}

/// The pid in a harness name (`st<pid>-<k>-sw`, `st<pid>-<k>-h<n>`), if it is one.
fn run_pid(name: &str) -> Option<u32> {
    let rest = name.strip_prefix("st")?;
    let mut parts = rest.split('-');
    let (pid, k, role) = (parts.next()?, parts.next()?, parts.next()?);
    let digits = |s: &str| !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit());
    let role_ok = role == "sw" || role.strip_prefix('h').is_some_and(digits);
    if parts.next().is_some() || !digits(pid) || !digits(k) || !role_ok {
        return None;
    }
    pid.parse().ok()
}

/// Kills the processes in namespace `name` (never this one) and removes it.
fn remove_namespace(name: &str) -> Result<(), NetError> {
    let me = std::process::id();
    for pid in pids_of(name).unwrap_or_default() {
        if pid != me {
            // SAFETY: kill(2) with SIGKILL to a process inside a namespace of this harness.
            unsafe { libc::kill(pid as libc::pid_t, libc::SIGKILL) };
        }
    }
    ip(&["netns", "delete", name]).map(drop)
}

fn pids_of(name: &str) -> Result<Vec<u32>, NetError> {
    let listed = ip(&["netns", "pids", name])?;
    Ok(listed
        .split_whitespace()
        .filter_map(|p| p.parse().ok())
        .collect())
}

/// Runs `ip ARGS` (bounded); gives its stdout.
fn ip(args: &[&str]) -> Result<String, NetError> {
    run(Command::new("ip").args(args), None)
}

/// Whether `nft` can be run at all; the error names the package.
fn nft_present() -> Result<(), NetError> {
    match Command::new("nft")
        .arg("--version")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
    {
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Err(NetError::new(
            "`nft` not found: cutting a test host needs the nftables package \
             (scripts/test installs it as root; or `apt-get install nftables`)",
        )),
        Err(e) => Err(NetError::new(format!(
            "`nft --version` does not start: {e}"
        ))),
        Ok(_) => Ok(()),
    }
}

/// Runs `command` to its end (at most [`COMMAND_LIMIT`], then killed), writing `input` to
/// its stdin; gives its stdout, or an error with what it said when it fails.
fn run(command: &mut Command, input: Option<&str>) -> Result<String, NetError> {
    let what = format!("{command:?}");
    let program = command.get_program().to_string_lossy().into_owned();
    let mut child = command
        .stdin(if input.is_some() {
            Stdio::piped()
        } else {
            Stdio::null()
        })
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| {
            let package = match program.as_str() {
                "ip" => " (package iproute2)",
                "nft" => " (package nftables)",
                _ => "",
            };
            NetError::new(format!("{what} does not start: {e}{package}"))
        })?;
    if let (Some(text), Some(mut stdin)) = (input, child.stdin.take()) {
        // A program that exits without reading says why on stderr; the status tells.
        let _ = stdin.write_all(text.as_bytes());
    }
    let pid = child.id();
    let (done, finished) = mpsc::channel::<std::io::Result<Output>>();
    std::thread::spawn(move || {
        let _ = done.send(child.wait_with_output());
    });
    let output = match finished.recv_timeout(COMMAND_LIMIT) {
        Ok(output) => output,
        Err(_) => {
            // SAFETY: kill(2) with SIGKILL to the child started above, not yet reaped
            // (its waiting thread has not answered).
            unsafe { libc::kill(pid as libc::pid_t, libc::SIGKILL) };
            return Err(NetError::new(format!(
                "{what} did not finish within {COMMAND_LIMIT:?} (killed)"
            )));
        }
    };
    let output = output.map_err(|e| NetError::new(format!("{what}: {e}")))?;
    if !output.status.success() {
        return Err(NetError::new(format!(
            "{what} failed ({}): {}",
            output.status,
            String::from_utf8_lossy(&output.stderr).trim()
        )));
    }
    Ok(String::from_utf8_lossy(&output.stdout).into_owned())
}
