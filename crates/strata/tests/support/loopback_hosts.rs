//! "Hosts" of one machine for the LAN scope's tests: each is a runtime folder of its
//! own (so a host directory of its own), and its processes are `directory_peer`s started
//! with the LAN configured as the test says.

use std::path::PathBuf;
use std::process::Command;

use super::programs::{testbin, Running};
use super::WAIT;

/// A free loopback port (there is a small race between freeing and using it; whoever
/// lost it fails loudly).
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// The runtime folder of host `what` (of this test process).
pub fn host_dir(what: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("strata-lan-{}-{what}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    dir
}

/// A peer on host `host`, with `STRATA_LAN_DIRECTORY` set to `lan` (or unset).
pub fn peer(host: &str, lan: Option<&str>, args: &[&str]) -> Running {
    peer_with(host, lan, &[], args)
}

/// [`peer`] with more environment variables.
pub fn peer_with(
    host: &str,
    lan: Option<&str>,
    env: &[(&str, &std::ffi::OsStr)],
    args: &[&str],
) -> Running {
    let mut c = Command::new(testbin("directory_peer"));
    c.args(args).env("STRATA_RUNTIME_DIR", host_dir(host));
    for (k, v) in env {
        c.env(k, v);
    }
    match lan {
        Some(a) => c.env("STRATA_LAN_DIRECTORY", a),
        None => c.env_remove("STRATA_LAN_DIRECTORY"),
    };
    Running::start_interactive(&mut c)
}

/// The next line of `p` starting with `prefix` (the others are passed over); fails
/// showing what was seen when none comes within [`WAIT`].
pub fn expect_line(p: &Running, prefix: &str) -> String {
    let deadline = std::time::Instant::now() + WAIT;
    let mut seen = Vec::new();
    loop {
        let left = deadline.saturating_duration_since(std::time::Instant::now());
        let line = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| p.line(left)))
            .unwrap_or_else(|_| panic!("no line starting {prefix:?}; saw {seen:?}"));
        if line.starts_with(prefix) {
            return line;
        }
        seen.push(line);
    }
}

/// Reads `p`'s lines for `during`, failing on any that starts with `dropped`.
pub fn no_dropped(p: &Running, during: std::time::Duration) {
    let until = std::time::Instant::now() + during;
    while let Some(left) = until.checked_duration_since(std::time::Instant::now()) {
        match std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| p.line(left))) {
            Ok(line) => assert!(!line.starts_with("dropped"), "a spurious {line}"),
            Err(_) => break,
        }
    }
}

/// Removes the runtime folders of `hosts`.
pub fn remove_hosts(hosts: &[&str]) {
    for h in hosts {
        let _ = std::fs::remove_dir_all(host_dir(h));
    }
}
