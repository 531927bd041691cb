//! The LAN scope on a real etcd cluster (three members of Debian's `etcd` on loopback
//! ports, started by each test), between "hosts" of one machine (each with a runtime
//! folder, so a host directory, of its own): a name found across hosts and answering over
//! a TCP session; a second claim of a unique name refused naming the holder; `kill -9`
//! of the publisher; one member killed, with no registration lost and no spurious
//! `Dropped`; and publishing while etcd cannot be reached (answered at once, completed
//! when it comes); etcd over TLS with client certificates (a host without its certificate
//! is refused, saying why; a CA file that cannot be read is named). Built with the `etcd` feature (`scripts/test` turns it on); skipped,
//! saying so, where there is no `etcd` program.

#![cfg(feature = "etcd")]

mod support;

use std::time::Duration;

use std::ffi::OsStr;

use support::etcd::{Cluster, Tls};
use support::loopback_hosts::{expect_line, no_dropped, peer, peer_with, remove_hosts};

#[test]
fn a_name_claimed_in_etcd_is_found_on_another_host_and_a_second_claim_is_refused() {
    let Some(cluster) = Cluster::or_skip(3, "etcd_found") else {
        return;
    };
    let lan = cluster.url();
    let publisher = peer("e1a", Some(&lan), &["--publish", "etcd:svc@lan"]);
    expect_line(&publisher, "published etcd:svc lan");
    let subscriber = peer(
        "e1b",
        Some(&lan),
        &["--subscribe", "etcd:.*@lan", "--confirm"],
    );
    expect_line(&subscriber, "available etcd:svc lan");
    let answered = expect_line(&subscriber, "answered etcd:svc");
    assert!(
        answered.contains(&format!("etcd:svc@{}", publisher.pid())),
        "{answered}"
    );
    // The same unique name from a third host: the older claim holds, the newer is told.
    let second = peer("e1c", Some(&lan), &["--publish", "etcd:svc@lan"]);
    let refused = expect_line(&second, "not-published");
    assert!(refused.contains("held at lan scope"), "{refused}");
    // The publisher dies: the subscriber hears it at once (its session closes), and the
    // name is free again once the lease is gone.
    publisher.signal(libc::SIGKILL);
    expect_line(&subscriber, "dropped etcd:svc lan");
    drop((subscriber, second));
    remove_hosts(&["e1a", "e1b", "e1c"]);
}

#[test]
fn a_member_killed_loses_no_registration_and_drops_nothing() {
    let Some(mut cluster) = Cluster::or_skip(3, "etcd_member_killed") else {
        return;
    };
    let lan = cluster.url();
    let publisher = peer("e2a", Some(&lan), &["--publish", "etcd2:svc@lan"]);
    expect_line(&publisher, "published etcd2:svc lan");
    let subscriber = peer("e2b", Some(&lan), &["--subscribe", "etcd2:.*@lan"]);
    expect_line(&subscriber, "available etcd2:svc lan");
    // The first member (the one each process's route to etcd was taken from) dies.
    cluster.kill(0);
    // Well past the lease's time to live: the keep-alives went through the others.
    no_dropped(&subscriber, Duration::from_secs(6));
    // A subscriber that comes now still finds the name.
    let late = peer("e2c", Some(&lan), &["--subscribe", "etcd2:.*@lan"]);
    expect_line(&late, "available etcd2:svc lan");
    // The member comes back; nothing changes for anyone.
    cluster.restart(0);
    let third = peer("e2d", Some(&lan), &["--subscribe", "etcd2:.*@lan"]);
    expect_line(&third, "available etcd2:svc lan");
    drop((publisher, subscriber, late, third));
    remove_hosts(&["e2a", "e2b", "e2c", "e2d"]);
}

#[test]
fn publishing_answers_at_once_while_etcd_cannot_be_reached_and_completes_when_it_comes() {
    // Configured, but nothing listens there yet.
    let Some(mut cluster) = Cluster::planned(3, "etcd_unreachable") else {
        return;
    };
    let lan = cluster.url();
    let p = peer("e3a", Some(&lan), &["--publish", "etcd3:y@lan"]);
    expect_line(&p, "published etcd3:y lan");
    // etcd comes up: the pending claim is made, and a subscriber on another host finds it.
    cluster.start();
    let subscriber = peer("e3b", Some(&lan), &["--subscribe", "etcd3:.*@lan"]);
    expect_line(&subscriber, "available etcd3:y lan");
    drop((p, subscriber));
    remove_hosts(&["e3a", "e3b"]);
}

#[test]
fn over_tls_a_host_with_its_certificate_is_served_and_one_without_is_refused_saying_why() {
    let Some(mut cluster) = Cluster::planned(1, "etcd_tls") else {
        return;
    };
    let Some(tls) = Tls::make(cluster.dir()) else {
        return;
    };
    cluster.tls(tls.clone());
    cluster.start();
    let lan = cluster.url();
    let with_certificate = [
        ("STRATA_ETCD_CA", tls.ca.as_os_str()),
        ("STRATA_ETCD_CERT", tls.client.0.as_os_str()),
        ("STRATA_ETCD_KEY", tls.client.1.as_os_str()),
    ];
    let publisher = peer_with(
        "e4a",
        Some(&lan),
        &with_certificate,
        &["--publish", "etcdtls:svc@lan"],
    );
    expect_line(&publisher, "published etcdtls:svc lan");
    let subscriber = peer_with(
        "e4b",
        Some(&lan),
        &with_certificate,
        &["--subscribe", "etcdtls:.*@lan"],
    );
    expect_line(&subscriber, "available etcdtls:svc lan");
    // Without its own certificate, the cluster refuses the host: its log says why.
    let log = cluster.dir().join("no-certificate.log");
    let refused = peer_with(
        "e4c",
        Some(&lan),
        &[("STRATA_ETCD_CA", tls.ca.as_os_str())],
        &[
            "--subscribe",
            "etcdtls:.*@lan",
            "--stderr-to",
            log.to_str().unwrap(),
            "--log=warn",
        ],
    );
    expect_line(&refused, "subscribed");
    let said = support::poll_until(support::WAIT, "the refused host logs why", || {
        let text = std::fs::read_to_string(&log).unwrap_or_default();
        text.contains("etcd: session ended").then_some(text)
    });
    assert!(said.contains("why="), "{said}");
    // A CA file that cannot be read: the LAN scope is refused, naming the variable.
    let missing = cluster.dir().join("nowhere.pem");
    let misconfigured = peer_with(
        "e4d",
        Some(&lan),
        &[("STRATA_ETCD_CA", OsStr::new(missing.to_str().unwrap()))],
        &["--publish", "etcdtls:x@lan"],
    );
    let line = expect_line(&misconfigured, "not-published");
    assert!(line.contains("STRATA_ETCD_CA"), "{line}");
    drop((publisher, subscriber, refused, misconfigured));
    remove_hosts(&["e4a", "e4b", "e4c", "e4d"]);
}
