//! The LAN scope across three hosts made of network namespaces (needs root; skips with a
//! message without it): a LAN directory, a publisher and a subscriber each on a host of
//! its own, links encrypted with a pre-shared key. A publisher's host cut off (nftables
//! drops everything both ways) gives the subscriber `Dropped` once its links go stale;
//! healed, the name is `Available` again. With the `etcd` feature, the same on an etcd
//! cluster with a member on each host (one member killed loses nothing and drops
//! nothing), and a unique name claimed on both sides of a partition.

#[path = "support/netns.rs"]
mod netns;
mod support;

use std::path::PathBuf;
use std::time::{Duration, Instant};

use netns::{Host, Lan};
use support::loopback_hosts::no_dropped;
use support::programs::{testbin, Running};
use support::WAIT;

const PORT: u16 = 47_100;

fn expect_line(p: &Running, prefix: &str, limit: Duration) -> (String, Duration) {
    let began = Instant::now();
    let deadline = began + limit;
    let mut seen = Vec::new();
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        let line = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| p.line(left)))
            .unwrap_or_else(|_| {
                panic!("no line starting {prefix:?} within {limit:?}; saw {seen:?}")
            });
        if line.starts_with(prefix) {
            return (line, began.elapsed());
        }
        seen.push(line);
    }
}

struct Run {
    dir: PathBuf,
    key: PathBuf,
}

impl Run {
    /// A folder (and a key) of this test's own: tests run at once, and one that ends
    /// removes its folder.
    fn new() -> Run {
        static NEXT: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
        let k = NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let dir = std::env::temp_dir().join(format!("strata-lanhosts-{}-{k}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        let key = dir.join("lan.psk");
        strata::net::keys::save_psk(&key, &strata::net::keys::generate_psk().unwrap()).unwrap();
        Run { dir, key }
    }

    /// A peer on `host` with a runtime folder of that host's own.
    fn peer(&self, host: &Host, lan: &str, args: &[&str]) -> Running {
        let runtime = self.dir.join(host.name());
        let mut c = host.command(testbin("directory_peer"));
        c.args(args)
            .env("STRATA_RUNTIME_DIR", runtime)
            .env("STRATA_LAN_DIRECTORY", lan)
            .env("STRATA_LAN_KEY", &self.key);
        Running::start_interactive(&mut c)
    }
}

impl Drop for Run {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

#[test]
fn a_host_cut_off_is_dropped_and_found_again_when_healed() {
    let Some(net) = Lan::or_skip(3) else { return };
    let run = Run::new();
    let [lan_host, a, b] = net.hosts() else {
        unreachable!()
    };
    let lan = format!("{}:{PORT}", lan_host.address());
    let directory = run.peer(lan_host, &lan, &["--serve-lan", &format!("0.0.0.0:{PORT}")]);
    expect_line(&directory, "serving-lan", WAIT);
    let publisher = run.peer(a, &lan, &["--publish", "hosts:svc@lan"]);
    expect_line(&publisher, "published hosts:svc lan", WAIT);
    let subscriber = run.peer(b, &lan, &["--subscribe", "hosts:svc@lan", "--confirm"]);
    expect_line(&subscriber, "available hosts:svc lan", WAIT);
    expect_line(&subscriber, "answered hosts:svc", WAIT);
    // Cut off: nothing more is heard from it, its links go stale.
    a.cut().expect("cut the publisher's host");
    let (_, took) = expect_line(&subscriber, "dropped hosts:svc lan", WAIT);
    eprintln!("cut off -> Dropped after {took:?}");
    a.heal().expect("heal it");
    let (_, took) = expect_line(&subscriber, "available hosts:svc lan", WAIT);
    eprintln!("healed -> Available after {took:?}");
    drop((directory, publisher, subscriber));
}

#[test]
fn the_lan_directory_restarted_leaves_sessions_alone_and_gets_every_name_back() {
    let Some(net) = Lan::or_skip(3) else { return };
    let run = Run::new();
    let [lan_host, a, b] = net.hosts() else {
        unreachable!()
    };
    let lan = format!("{}:{}", lan_host.address(), PORT + 1);
    let serve = format!("0.0.0.0:{}", PORT + 1);
    let directory = run.peer(lan_host, &lan, &["--serve-lan", &serve]);
    expect_line(&directory, "serving-lan", WAIT);
    let publisher = run.peer(a, &lan, &["--publish", "restart:svc@lan"]);
    expect_line(&publisher, "published restart:svc lan", WAIT);
    let subscriber = run.peer(b, &lan, &["--subscribe", "restart:.*@lan"]);
    expect_line(&subscriber, "available restart:svc lan", WAIT);
    // The LAN directory dies and comes back at the same address.
    directory.signal(libc::SIGKILL);
    drop(directory);
    let directory = run.peer(lan_host, &lan, &["--serve-lan", &serve]);
    expect_line(&directory, "serving-lan", WAIT);
    // A name published after the restart is found: the processes joined again.
    let late = run.peer(a, &lan, &["--publish", "restart:late@lan"]);
    expect_line(&late, "published restart:late lan", WAIT);
    expect_line(&subscriber, "available restart:late lan", WAIT);
    // And what was held before stays held: no Dropped once the directory settled
    // (the old name was offered again and confirmed).
    no_dropped(&subscriber, Duration::from_secs(4));
    drop((directory, publisher, subscriber, late));
}

#[test]
fn a_unique_name_claimed_on_both_sides_of_a_partition_keeps_the_older_claim() {
    let Some(net) = Lan::or_skip(3) else { return };
    let run = Run::new();
    let [lan_host, a, b] = net.hosts() else {
        unreachable!()
    };
    let lan = format!("{}:{}", lan_host.address(), PORT + 2);
    let directory = run.peer(
        lan_host,
        &lan,
        &["--serve-lan", &format!("0.0.0.0:{}", PORT + 2)],
    );
    expect_line(&directory, "serving-lan", WAIT);
    let mut first = run.peer(a, &lan, &[]);
    first.tell("publish part:only@lan");
    expect_line(&first, "published part:only lan", WAIT);
    // Host a is cut off; once its links went stale its claim is gone from the directory,
    // and host b may claim the name.
    a.cut().expect("cut host a");
    let mut second = run.peer(b, &lan, &[]);
    let deadline = Instant::now() + WAIT;
    loop {
        second.tell("publish part:only@lan");
        let (line, _) = expect_line(&second, "", WAIT);
        if line.starts_with("published part:only lan") {
            break;
        }
        assert!(line.starts_with("not-published"), "{line}");
        assert!(Instant::now() < deadline, "host b never got the name");
        std::thread::sleep(Duration::from_millis(300));
    }
    // Healed: host a joins again, and its claim (now the younger one at the directory)
    // is refused and told.
    a.heal().expect("heal host a");
    let (line, _) = expect_line(&first, "not-published part:only", WAIT);
    assert!(line.contains("already published at lan scope"), "{line}");
    drop((directory, first, second));
}

/// An etcd cluster with a member on each of `net`'s hosts, started and healthy; `None`
/// (said) without etcd.
#[cfg(feature = "etcd")]
fn etcd_on(net: &Lan, test: &str) -> Option<support::etcd::Cluster> {
    let hosts: Vec<(String, std::net::Ipv4Addr)> = net
        .hosts()
        .iter()
        .map(|h| (h.name().to_string(), h.address()))
        .collect();
    let mut cluster = support::etcd::Cluster::planned_in(&hosts, test)?;
    cluster.start();
    Some(cluster)
}

#[cfg(feature = "etcd")]
#[test]
fn on_etcd_a_member_killed_loses_nothing_and_a_host_cut_off_is_dropped_and_found_again() {
    let Some(net) = Lan::or_skip(3) else { return };
    let Some(mut cluster) = etcd_on(&net, "on_etcd_cut") else {
        return;
    };
    let run = Run::new();
    let [a, b, c] = net.hosts() else {
        unreachable!()
    };
    let lan = cluster.url();
    let publisher = run.peer(a, &lan, &["--publish", "etcdhosts:svc@lan"]);
    expect_line(&publisher, "published etcdhosts:svc lan", WAIT);
    let subscriber = run.peer(b, &lan, &["--subscribe", "etcdhosts:svc@lan", "--confirm"]);
    expect_line(&subscriber, "available etcdhosts:svc lan", WAIT);
    expect_line(&subscriber, "answered etcdhosts:svc", WAIT);
    // Host c's member dies: past the lease's time to live nothing was dropped, and a
    // subscriber on host c (its member gone) still finds the name through the others.
    cluster.kill(2);
    no_dropped(&subscriber, Duration::from_secs(5));
    let late = run.peer(c, &lan, &["--subscribe", "etcdhosts:svc@lan"]);
    expect_line(&late, "available etcdhosts:svc lan", WAIT);
    cluster.restart(2);
    // The publisher's host is cut off: its session goes stale, and its lease expires.
    a.cut().expect("cut the publisher's host");
    let (_, took) = expect_line(&subscriber, "dropped etcdhosts:svc lan", WAIT);
    eprintln!("etcd: cut off -> Dropped after {took:?}");
    a.heal().expect("heal it");
    let (_, took) = expect_line(&subscriber, "available etcdhosts:svc lan", WAIT);
    eprintln!("etcd: healed -> Available after {took:?}");
    drop((publisher, subscriber, late));
}

#[cfg(feature = "etcd")]
#[test]
fn on_etcd_a_unique_name_claimed_on_both_sides_of_a_partition_keeps_the_older_claim() {
    let Some(net) = Lan::or_skip(3) else { return };
    let Some(cluster) = etcd_on(&net, "on_etcd_partition") else {
        return;
    };
    let run = Run::new();
    let [a, b, c] = net.hosts() else {
        unreachable!()
    };
    let lan = cluster.url();
    // Host a is cut off with its member, which has no quorum there: a claim made there
    // cannot commit. Publishing answers at once all the same (the LAN part pending).
    a.cut().expect("cut host a");
    let mut first = run.peer(a, &lan, &[]);
    first.tell("publish etcdpart:only@lan");
    expect_line(&first, "published etcdpart:only lan", WAIT);
    // On the majority's side the same name is claimed, and committed: the older claim.
    // (Its publish may answer before the claim commits, as host a's did: a watcher on
    // host c says when etcd holds it.)
    let watcher = run.peer(c, &lan, &["--subscribe", "etcdpart:only@lan"]);
    let mut second = run.peer(b, &lan, &[]);
    second.tell("publish etcdpart:only@lan");
    expect_line(&second, "published etcdpart:only lan", WAIT);
    expect_line(&watcher, "available etcdpart:only lan", WAIT);
    // Healed: host a's claim is made at last, refused, and told, naming the holder.
    a.heal().expect("heal host a");
    let (line, took) = expect_line(&first, "not-published etcdpart:only", WAIT);
    assert!(line.contains("held at lan scope"), "{line}");
    eprintln!("etcd: healed -> the younger claim refused after {took:?}");
    drop((first, second, watcher));
}
