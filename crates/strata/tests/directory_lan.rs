//! The LAN scope between "hosts" of one machine (each with a host directory of its own,
//! in a runtime folder of its own) and a LAN directory on loopback: found across hosts
//! and answering over a TCP session, `kill -9` of a publisher, no LAN configured, and a
//! LAN directory that cannot be reached (publishing answers at once). The same across
//! network-namespace hosts is in `directory_lan_hosts.rs`.

mod support;

use support::loopback_hosts::{expect_line, free_port, host_dir, peer};

#[test]
fn a_name_published_on_one_host_is_found_and_answers_on_another() {
    let lan = format!("127.0.0.1:{}", free_port());
    let directory = peer("lan", None, &["--serve-lan", &lan]);
    expect_line(&directory, "serving-lan");
    let publisher = peer("a", Some(&lan), &["--publish", "lan:svc@lan"]);
    expect_line(&publisher, "published lan:svc lan");
    let subscriber = peer(
        "b",
        Some(&lan),
        &["--subscribe", "lan:svc@lan", "--confirm"],
    );
    expect_line(&subscriber, "available lan:svc lan");
    let answered = expect_line(&subscriber, "answered lan:svc");
    assert!(
        answered.contains(&format!("lan:svc@{}", publisher.pid())),
        "{answered}"
    );
    // The publisher dies: the subscriber hears it at once (its links close).
    publisher.signal(libc::SIGKILL);
    expect_line(&subscriber, "dropped lan:svc lan");
    drop((directory, subscriber));
    for h in ["lan", "a", "b"] {
        let _ = std::fs::remove_dir_all(host_dir(h));
    }
}

#[test]
fn without_a_lan_directory_a_lan_publication_is_refused_naming_the_setting() {
    let p = peer("none", None, &["--publish", "lan:x@lan"]);
    let line = expect_line(&p, "not-published");
    assert!(line.contains("STRATA_LAN_DIRECTORY"), "{line}");
    drop(p);
    let _ = std::fs::remove_dir_all(host_dir("none"));
}

#[test]
fn publishing_does_not_wait_for_a_lan_directory_that_cannot_be_reached() {
    // Configured, but nothing listens there.
    let lan = format!("127.0.0.1:{}", free_port());
    let p = peer("away", Some(&lan), &["--publish", "lan:y@lan"]);
    expect_line(&p, "published lan:y lan");
    // It comes up later: the publication reaches it (a subscriber elsewhere finds it).
    let directory = peer("lan2", None, &["--serve-lan", &lan]);
    expect_line(&directory, "serving-lan");
    let subscriber = peer("c", Some(&lan), &["--subscribe", "lan:y@lan"]);
    expect_line(&subscriber, "available lan:y lan");
    drop((p, directory, subscriber));
    for h in ["away", "lan2", "c"] {
        let _ = std::fs::remove_dir_all(host_dir(h));
    }
}
