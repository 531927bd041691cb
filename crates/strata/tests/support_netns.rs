//! The network-namespace test hosts of `support/netns.rs`, tried with real sockets: two
//! hosts on one switch reach each other; each fault (nftables cut, pulled link, SIGSTOP)
//! does what it says and is undone; programs run inside a host and die with the `Lan`;
//! nothing is left in `ip netns list` or changed in the root namespace; stale names of dead
//! runs are removed and no others.
//!
//! Needs root and iproute2 (and nftables for the cut): elsewhere each test prints one
//! `skipping: ...` line and returns. `scripts/test` installs the tools when it can.

#[path = "support/netns.rs"]
mod netns;
mod support;

use std::collections::BTreeSet;
use std::net::{Ipv4Addr, SocketAddr, TcpListener, TcpStream};
use std::os::unix::process::ExitStatusExt;
use std::process::{Command, Stdio};
use std::time::Duration;

use netns::{Host, Lan};
use support::programs::{run_bounded, wait_bounded};
use support::{poll_until, WAIT};

/// How long one connect attempt may take.
const TRY: Duration = Duration::from_secs(1);

/// How many attempts a host gets to reach another once nothing is in the way.
const ATTEMPTS: usize = 10;

/// A listener on `host`'s address (any port), made inside the host; non-blocking.
fn listen(host: &Host) -> TcpListener {
    let address = host.address();
    let listener = host
        .within(move || TcpListener::bind((address, 0)))
        .expect("entering the host")
        .unwrap_or_else(|e| panic!("binding {address} in {}: {e}", host.name()));
    listener
        .set_nonblocking(true)
        .expect("a non-blocking listener");
    listener
}

/// One connect attempt (at most `TRY`) from inside `from` to `to`; on success the
/// connection is accepted on `listener` (so its queue never fills) and both ends closed.
fn reaches_once(from: &Host, to: SocketAddr, listener: &TcpListener) -> bool {
    let attempt = from
        .within(move || TcpStream::connect_timeout(&to, TRY))
        .expect("entering the host");
    let Ok(stream) = attempt else {
        return false;
    };
    let mine = stream.local_addr().expect("the connection's own address");
    poll_until(WAIT, "the listener accepting the connection", || {
        match listener.accept() {
            Ok((_, peer)) if peer == mine => Some(()),
            // Another connection (none is expected, but never confuse the two).
            Ok(_) => None,
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => None,
            Err(e) => panic!("accept: {e}"),
        }
    });
    true
}

/// Whether `from` reaches `listener`'s address from inside its host.
fn reaches(from: &Host, listener: &TcpListener) -> bool {
    let to = listener.local_addr().expect("the listener's address");
    reaches_once(from, to, listener)
}

/// Whether `from` reaches `listener` within [`ATTEMPTS`] attempts.
fn reaches_again(from: &Host, listener: &TcpListener) -> bool {
    (0..ATTEMPTS).any(|_| reaches(from, listener))
}

/// The interfaces of the root namespace (this process's), from sysfs.
fn root_links() -> BTreeSet<String> {
    std::fs::read_dir("/sys/class/net")
        .expect("/sys/class/net")
        .map(|entry| {
            entry
                .expect("an entry")
                .file_name()
                .to_string_lossy()
                .into()
        })
        .collect()
}

/// The state letter of `/proc/PID/stat` (`R`, `S`, `T`, ...), if the process exists.
fn state(pid: u32) -> Option<char> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    stat[stat.rfind(')')? + 1..].trim_start().chars().next()
}

#[test]
fn two_hosts_on_one_switch_reach_each_other_and_the_root_namespace_is_untouched() {
    let before = root_links();
    let Some(lan) = Lan::or_skip(2) else { return };
    assert_eq!(
        root_links(),
        before,
        "making the hosts changed the root namespace"
    );

    let [a, b] = lan.hosts() else {
        panic!("two hosts, got {}", lan.hosts().len())
    };
    assert_ne!(a.name(), b.name());
    assert!(
        lan.names()
            .iter()
            .all(|n| n.len() < 32 && n.starts_with("st")),
        "{:?}",
        lan.names()
    );
    assert_ne!(a.address(), b.address());
    let net = |ip: Ipv4Addr| ip.octets()[..3].to_vec();
    assert_eq!(net(a.address()), net(lan.subnet()));
    assert_eq!(net(b.address()), net(lan.subnet()));

    let on_a = listen(a);
    let on_b = listen(b);
    assert!(
        reaches_again(b, &on_a),
        "{} does not reach {}",
        b.name(),
        a.name()
    );
    assert!(
        reaches_again(a, &on_b),
        "{} does not reach {}",
        a.name(),
        b.name()
    );

    let names = lan.names();
    drop(lan);
    assert_eq!(
        root_links(),
        before,
        "removing the hosts changed the root namespace"
    );
    let left = netns::namespaces().expect("ip netns list");
    for name in &names {
        assert!(!left.contains(name), "{name} is still there: {left:?}");
    }
}

#[test]
fn a_cut_host_is_unreachable_both_ways_until_healed() {
    let Some(lan) = Lan::or_skip(2) else { return };
    let [a, b] = lan.hosts() else {
        panic!("two hosts")
    };
    let on_a = listen(a);
    let on_b = listen(b);
    assert!(reaches_again(b, &on_a), "before the cut");

    a.cut()
        .unwrap_or_else(|e| panic!("cutting {}: {e}", a.name()));
    a.cut().expect("cutting twice is cutting once");
    assert!(
        !reaches(b, &on_a),
        "{} reached {} through the cut",
        b.name(),
        a.name()
    );
    assert!(
        !reaches(a, &on_b),
        "{} reached {} through the cut",
        a.name(),
        b.name()
    );
    // The cut host's own loopback still works.
    let local = a
        .within(|| TcpListener::bind((Ipv4Addr::LOCALHOST, 0)))
        .expect("entering the host")
        .expect("a loopback listener");
    local.set_nonblocking(true).expect("non-blocking");
    let local_address = local.local_addr().expect("its address");
    assert!(
        reaches_once(a, local_address, &local),
        "the cut host's loopback is cut too"
    );

    a.heal().expect("healing");
    assert!(reaches_again(b, &on_a), "not reachable after the heal");
    assert!(reaches_again(a, &on_b), "cannot reach out after the heal");
    a.heal().expect("healing a healed host does nothing");

    // The connecting side cut instead.
    b.cut().expect("cutting the other host");
    assert!(
        !reaches(b, &on_a),
        "{} reached out through its cut",
        b.name()
    );
    b.heal().expect("healing");
    assert!(reaches_again(b, &on_a), "not reaching out after the heal");
}

#[test]
fn a_pulled_link_silences_the_host_until_plugged_back() {
    let Some(lan) = Lan::or_skip(2) else { return };
    let [a, b] = lan.hosts() else {
        panic!("two hosts")
    };
    let on_a = listen(a);
    let on_b = listen(b);
    assert!(reaches_again(b, &on_a), "before the link goes down");

    a.link_down().expect("link down");
    assert!(
        !reaches(b, &on_a),
        "{} reached {} without its link",
        b.name(),
        a.name()
    );
    assert!(
        !reaches(a, &on_b),
        "{} reached out without its link",
        a.name()
    );

    a.link_up().expect("link up");
    assert!(reaches_again(b, &on_a), "not reachable with the link back");
    assert!(
        reaches_again(a, &on_b),
        "cannot reach out with the link back"
    );
}

#[test]
fn programs_run_inside_a_host_are_stopped_continued_killed_and_die_with_the_lan() {
    let Some(lan) = Lan::or_skip(1) else { return };
    let host = &lan.hosts()[0];

    let shown = run_bounded(
        host.command("ip")
            .args(["-o", "-4", "addr", "show", "dev", "eth0"]),
        WAIT,
    );
    assert!(shown.status.success(), "{shown:?}");
    let shown = String::from_utf8_lossy(&shown.stdout);
    assert!(
        shown.contains(&format!("inet {}/24", host.address())),
        "eth0 of {}: {shown}",
        host.name()
    );

    // The environment is inherited, and what a test sets is passed.
    let env = run_bounded(
        host.command("sh")
            .args(["-c", "printf '%s|%s' \"$PATH\" \"$STRATA_NETNS_PROBE\""])
            .env("STRATA_NETNS_PROBE", "set by the test"),
        WAIT,
    );
    let path = std::env::var("PATH").unwrap_or_default();
    assert_eq!(
        String::from_utf8_lossy(&env.stdout),
        format!("{path}|set by the test")
    );

    let mut sleeper = host
        .command("sleep")
        .arg("600")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("sleep in the host");
    let pid = sleeper.id();
    poll_until(WAIT, "the sleeper inside the host", || {
        host.holds(pid).then_some(())
    });
    assert!(host.pids().expect("ip netns pids").contains(&pid));

    host.stop(pid).expect("SIGSTOP");
    poll_until(WAIT, "the sleeper stopped", || {
        (state(pid) == Some('T')).then_some(())
    });
    host.cont(pid).expect("SIGCONT");
    poll_until(WAIT, "the sleeper going on", || {
        state(pid).filter(|s| *s != 'T').map(drop)
    });

    let mut victim = host
        .command("sleep")
        .arg("600")
        .stdin(Stdio::null())
        .spawn()
        .expect("another sleep in the host");
    let victim_pid = victim.id();
    poll_until(WAIT, "the second sleeper inside the host", || {
        host.holds(victim_pid).then_some(())
    });
    host.kill(victim_pid).expect("SIGKILL");
    let status = wait_bounded(&mut victim, WAIT, "the killed sleeper");
    assert_eq!(status.signal(), Some(libc::SIGKILL), "{status}");
    assert!(host.kill(victim_pid).is_err(), "killing a reaped pid");

    let me = std::process::id();
    let refused = host.stop(me).expect_err("this process is not in the host");
    assert!(
        refused.to_string().contains("not a process of host"),
        "{refused}"
    );

    let names = lan.names();
    drop(lan);
    let status = wait_bounded(&mut sleeper, WAIT, "the sleeper after the Lan dropped");
    assert_eq!(status.signal(), Some(libc::SIGKILL), "{status}");
    let left = netns::namespaces().expect("ip netns list");
    for name in &names {
        assert!(!left.contains(name), "{name} is still there: {left:?}");
    }
}

#[test]
fn stale_names_of_dead_runs_are_removed_and_no_others() {
    // The first Lan of the process has cleaned up already, so what is made next stays
    // until this test removes it.
    let Some(lan) = Lan::or_skip(0) else { return };

    // A pid that no process has any more: a child that has exited and been reaped.
    let dead = (0..10)
        .map(|_| {
            let mut child = Command::new("true").spawn().expect("true");
            child.wait().expect("true's status");
            child.id()
        })
        .find(|pid| !std::path::Path::new(&format!("/proc/{pid}")).exists())
        .expect("a pid no process has");
    let me = std::process::id();
    let stale = [format!("st{dead}-0-sw"), format!("st{dead}-3-h2")];
    let kept = [
        format!("st{me}-999999-h1"),
        format!("st{dead}-x"),
        format!("st{dead}-0-hx"),
        format!("sx{dead}-0-sw"),
    ];

    struct Remove(Vec<String>);
    impl Drop for Remove {
        fn drop(&mut self) {
            for name in &self.0 {
                let _ = Command::new("ip")
                    .args(["netns", "delete", name])
                    .stderr(Stdio::null())
                    .status();
            }
        }
    }
    let _remove = Remove(stale.iter().chain(&kept).cloned().collect());
    for name in stale.iter().chain(&kept) {
        let made = run_bounded(Command::new("ip").args(["netns", "add", name]), WAIT);
        assert!(made.status.success(), "ip netns add {name}: {made:?}");
    }

    netns::remove_stale();
    let left = netns::namespaces().expect("ip netns list");
    for name in &stale {
        assert!(
            !left.contains(name),
            "{name} (of a dead pid) is still there"
        );
    }
    for name in &kept {
        assert!(left.contains(name), "{name} was removed");
    }
    assert!(
        left.contains(&lan.switch().to_string()),
        "the live Lan's switch was removed"
    );
}
