//! The LAN scope between "hosts" of one machine (each with a host directory of its own,
//! in a runtime folder of its own) and a LAN directory on loopback: found across hosts
//! and answering over a TCP session, `kill -9` of a publisher, no LAN configured, and a
//! LAN directory that cannot be reached (publishing answers at once). The same across
//! network-namespace hosts is in `directory_lan_hosts.rs`.

mod support;

use support::loopback_hosts::{expect_line, free_port, host_dir, peer, peer_with, remove_hosts};
use support::WAIT;

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

#[test]
fn with_static_keys_allowed_hosts_find_each_other_and_a_stranger_is_refused_saying_why() {
    use std::ffi::OsStr;
    use strata::net::keys::StaticKey;
    let dir = host_dir("keys");
    std::fs::create_dir_all(&dir).unwrap();
    let key = |who: &str| {
        let path = dir.join(format!("{who}.key"));
        let k = StaticKey::generate().unwrap();
        k.save(&path).unwrap();
        (path, k.public())
    };
    let (directory_key, d) = key("directory");
    let (a_key, a) = key("a");
    let (b_key, b) = key("b");
    let (stranger_key, _) = key("stranger");
    // Everyone allows the directory, a and b; nobody allows the stranger.
    let peers = dir.join("peers");
    std::fs::write(&peers, format!("# the LAN's hosts\n{d}\n{a}\n{b}\n")).unwrap();
    let lan = format!("127.0.0.1:{}", free_port());
    let env = |key: &std::path::Path| {
        vec![
            ("STRATA_LAN_IDENTITY", key.as_os_str().to_owned()),
            ("STRATA_LAN_PEERS", peers.as_os_str().to_owned()),
        ]
    };
    let start = |host: &str, key: &std::path::Path, args: &[&str]| {
        let env = env(key);
        let env: Vec<(&str, &OsStr)> = env.iter().map(|(k, v)| (*k, v.as_os_str())).collect();
        peer_with(host, Some(&lan), &env, args)
    };
    let directory = start("kd", &directory_key, &["--serve-lan", &lan]);
    expect_line(&directory, "serving-lan");
    let publisher = start("ka", &a_key, &["--publish", "keys:svc@lan"]);
    expect_line(&publisher, "published keys:svc lan");
    let subscriber = start("kb", &b_key, &["--subscribe", "keys:svc@lan", "--confirm"]);
    expect_line(&subscriber, "available keys:svc lan");
    expect_line(&subscriber, "answered keys:svc");
    // The stranger's links are refused, and its log says whose key was not allowed.
    let log = dir.join("stranger.log");
    let stranger = start(
        "ks",
        &stranger_key,
        &[
            "--subscribe",
            "keys:svc@lan",
            "--stderr-to",
            log.to_str().unwrap(),
            "--log=info",
        ],
    );
    expect_line(&stranger, "subscribed");
    support::poll_until(WAIT, "the stranger logs the refusal", || {
        let text = std::fs::read_to_string(&log).unwrap_or_default();
        text.contains("the static key offered is not one this end allows")
            .then_some(())
    });
    drop((directory, publisher, subscriber, stranger));
    remove_hosts(&["kd", "ka", "kb", "ks"]);
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn a_static_key_without_its_peers_is_refused_naming_both_settings() {
    let dir = host_dir("halfkeys-files");
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("host.key");
    strata::net::keys::StaticKey::generate()
        .unwrap()
        .save(&path)
        .unwrap();
    let p = peer_with(
        "halfkeys",
        Some("127.0.0.1:9"),
        &[("STRATA_LAN_IDENTITY", path.as_os_str())],
        &["--publish", "keys:half@lan"],
    );
    let line = expect_line(&p, "not-published");
    assert!(
        line.contains("STRATA_LAN_IDENTITY") && line.contains("STRATA_LAN_PEERS"),
        "{line}"
    );
    drop(p);
    let _ = std::fs::remove_dir_all(&dir);
}
