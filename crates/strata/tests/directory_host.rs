//! The directory across real processes on one host: names found in another process and
//! answering there, every start order, `kill -9` of a publisher, fallback and upgrade
//! across process, group and host scopes, a unique-name clash, regular expressions, four
//! processes starting the host directory at once, and the host directory killed under
//! running sessions.
//!
//! The peers are the `directory_peer` test program (crates/strata-testbins). Every test
//! binary uses a private runtime folder of its own (`STRATA_RUNTIME_DIR`), so it shares no
//! host directory with anything else; tests that kill the host directory use one each.

mod support;

use std::path::PathBuf;
use std::process::Command;
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use strata::directory::{Available, DirectoryView, Dropped, Published, Query, Scope, Subscribed};
use strata::prelude::*;
use strata::process::Process;
use strata::standard::NotPublished;
use support::programs::{testbin, Running};
use support::{select_message, WAIT};

/// A folder of this test binary's own (made by the directory, mode 0700).
fn fresh_runtime_dir(what: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("strata-test-{}-{what}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    dir
}

/// Points this test process's directory at a private folder, before its first use.
fn this_process() {
    static DIR: OnceLock<PathBuf> = OnceLock::new();
    let dir = DIR.get_or_init(|| fresh_runtime_dir("shared"));
    std::env::set_var("STRATA_RUNTIME_DIR", dir);
}

fn runtime_dir() -> PathBuf {
    this_process();
    PathBuf::from(std::env::var_os("STRATA_RUNTIME_DIR").unwrap())
}

fn peer_in(dir: &PathBuf, args: &[&str]) -> Running {
    Running::start_interactive(
        Command::new(testbin("directory_peer"))
            .args(args)
            .env("STRATA_RUNTIME_DIR", dir),
    )
}

fn peer(args: &[&str]) -> Running {
    peer_in(&runtime_dir(), args)
}

/// Reads the peer's lines until one starts with `prefix`; gives it.
fn expect_line(p: &Running, prefix: &str) -> String {
    let deadline = Instant::now() + WAIT;
    let mut seen = Vec::new();
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        let Ok(line) = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| p.line(left)))
        else {
            panic!("no line starting {prefix:?} within {WAIT:?}; saw {seen:?}");
        };
        if line.starts_with(prefix) {
            return line;
        }
        seen.push(line);
    }
}

/// Lines the peer prints within `window`.
fn lines_for(p: &Running, window: Duration) -> Vec<String> {
    let deadline = Instant::now() + window;
    let mut got = Vec::new();
    while let Some(left) = deadline.checked_duration_since(Instant::now()) {
        match std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| p.line(left))) {
            Ok(line) => got.push(line),
            Err(_) => break,
        }
    }
    got
}

/// The next `Available`; when none comes, fails showing what this process's directory and
/// the directories it joined hold (to tell where a name went missing).
fn available(cx: &mut ThreadContext) -> Available {
    if let Ok(e) = cx.select_timeout::<(Available,)>(WAIT) {
        return e.take::<Available>().expect("selected");
    }
    let mut views = Vec::new();
    let mine = cx.ask_timeout(strata::directory::process_directory(), Query, WAIT);
    if let Ok(v) = mine.downcast::<DirectoryView>() {
        for u in &v.upstreams {
            if let Some(d) = u.directory {
                views.push(format!("{:?}", cx.ask_timeout(d, Query, WAIT)));
            }
        }
        views.insert(0, format!("{v:?}"));
    }
    panic!("no Available within {WAIT:?}; directories: {views:#?}");
}

fn subscribe(cx: &mut ThreadContext, pattern: &str, scope: Scope) {
    cx.subscribe(pattern, scope).unwrap();
    let (s, _) = select_message::<Subscribed>(cx, WAIT);
    assert_eq!((s.pattern.as_str(), s.scope), (pattern, scope));
}

#[test]
fn a_name_published_in_another_process_is_found_and_answers_there() {
    this_process();
    let mut cx = ThreadContext::attach();
    subscribe(&mut cx, "t1:svc", Scope::Host);
    let mut p = peer(&["--publish", "t1:svc@host"]);
    expect_line(&p, "published t1:svc host");
    let (a, _) = select_message::<Available>(&mut cx, WAIT);
    assert_eq!((a.name.as_str(), a.scope), ("t1:svc", Scope::Host));
    assert!(!a.address.is_local());
    let answer = cx.ask(a.address, "hello".to_string());
    assert_eq!(
        answer.downcast::<String>().unwrap(),
        format!("t1:svc@{}: hello", p.pid())
    );
    // The publishing object ends: its name goes.
    p.tell("end t1:svc");
    let (d, _) = select_message::<Dropped>(&mut cx, WAIT);
    assert_eq!((d.name.as_str(), d.address), ("t1:svc", a.address));
}

#[test]
fn every_start_order_works() {
    this_process();
    for publisher_first in [true, false] {
        let name = if publisher_first {
            "t2:first"
        } else {
            "t2:second"
        };
        let publish = format!("{name}@host");
        let subscribe = format!("{name}@host");
        let (publisher, subscriber);
        if publisher_first {
            publisher = peer(&["--publish", &publish]);
            expect_line(&publisher, "published");
            subscriber = peer(&["--subscribe", &subscribe]);
        } else {
            subscriber = peer(&["--subscribe", &subscribe]);
            expect_line(&subscriber, "subscribed");
            publisher = peer(&["--publish", &publish]);
        }
        let line = expect_line(&subscriber, "available");
        assert_eq!(
            line,
            format!("available {name} host {}", node_of_line(&publisher, name))
        );
    }
}

/// The node id `publisher` runs as, asked through this process's directory.
fn node_of_line(_publisher: &Running, name: &str) -> String {
    let mut cx = ThreadContext::attach();
    subscribe(&mut cx, name, Scope::Host);
    let (a, _) = select_message::<Available>(&mut cx, WAIT);
    format!("{:016x}", a.address.node())
}

#[test]
fn kill_9_of_a_publisher_drops_its_names_at_once() {
    this_process();
    let mut cx = ThreadContext::attach();
    subscribe(&mut cx, "t3:.*", Scope::Host);
    let p = peer(&["--publish", "t3:a@host", "--publish", "t3:b@host"]);
    let mut held = Vec::new();
    for _ in 0..2 {
        held.push(
            select_message::<Available>(&mut cx, WAIT)
                .0
                .name
                .to_string(),
        );
    }
    held.sort();
    assert_eq!(held, ["t3:a", "t3:b"]);
    p.signal(libc::SIGKILL);
    let mut dropped = Vec::new();
    for _ in 0..2 {
        dropped.push(select_message::<Dropped>(&mut cx, WAIT).0.name.to_string());
    }
    dropped.sort();
    assert_eq!(dropped, held);
}

#[test]
fn the_nearest_publication_wins_with_fallback_and_upgrade() {
    this_process();
    let mut cx = ThreadContext::attach();
    subscribe(&mut cx, "t4:svc", Scope::Host);
    // Host scope, in another process.
    let host = peer(&["--publish", "t4:svc@host"]);
    let (a, _) = select_message::<Available>(&mut cx, WAIT);
    assert_eq!(a.scope, Scope::Host);
    // Group scope: a child process of this one (this process is its group's parent).
    let child = cx.create(
        Process::of(testbin("directory_peer").to_string_lossy())
            .arg("--publish")
            .arg("t4:svc@group"),
    );
    let (d, _) = select_message::<Dropped>(&mut cx, WAIT);
    assert_eq!((d.scope, d.address), (Scope::Host, a.address));
    let (g, _) = select_message::<Available>(&mut cx, WAIT);
    assert_eq!(g.scope, Scope::Group);
    assert!(!g.address.is_local() && g.address.node() != a.address.node());
    assert!(cx
        .ask(g.address, "x".to_string())
        .downcast::<String>()
        .unwrap()
        .starts_with("t4:svc@"));
    // Process scope, here: nearest of all.
    let local = ThreadContext::attach();
    local.publish("t4:svc", Scope::Process).unwrap();
    let (d, _) = select_message::<Dropped>(&mut cx, WAIT);
    assert_eq!(d.scope, Scope::Group);
    let (p, _) = select_message::<Available>(&mut cx, WAIT);
    assert_eq!((p.scope, p.address), (Scope::Process, local.address()));
    // It ends: back to the group's; the child ends: back to the host's.
    drop(local);
    let (d, _) = select_message::<Dropped>(&mut cx, WAIT);
    assert_eq!(d.scope, Scope::Process);
    let (g2, _) = select_message::<Available>(&mut cx, WAIT);
    assert_eq!((g2.scope, g2.address), (Scope::Group, g.address));
    cx.stop(child);
    let (d, _) = select_message::<Dropped>(&mut cx, WAIT);
    assert_eq!(d.scope, Scope::Group);
    let (h, _) = select_message::<Available>(&mut cx, WAIT);
    assert_eq!((h.scope, h.address), (Scope::Host, a.address));
    drop(host);
}

#[test]
fn a_second_publisher_of_a_unique_name_is_refused_naming_the_holder() {
    this_process();
    let first = peer(&["--publish", "t5:only@host"]);
    expect_line(&first, "published t5:only host");
    let second = peer(&["--publish", "t5:only@host"]);
    let line = expect_line(&second, "not-published");
    assert!(
        line.contains("already published at host scope, by"),
        "{line}"
    );
    // In one process, too.
    let mut cx = ThreadContext::attach();
    cx.publish("t5:local", Scope::Host).unwrap();
    select_message::<Published>(&mut cx, WAIT);
    let mut other = ThreadContext::attach();
    other.publish("t5:local", Scope::Host).unwrap();
    let (refused, _) = select_message::<NotPublished>(&mut other, WAIT);
    assert!(
        refused.reason.contains(&cx.address().to_string()),
        "{}",
        refused.reason
    );
}

#[test]
fn patterns_are_regular_expressions_matching_whole_names() {
    this_process();
    let mut cx = ThreadContext::attach();
    subscribe(&mut cx, "t6:worker:[0-9]+", Scope::Host);
    let _p = peer(&[
        "--publish",
        "t6:worker:1@host",
        "--publish",
        "t6:worker:22@host",
        "--publish",
        "t6:worker:x@host",
        "--publish",
        "t6:worker:1:extra@host",
    ]);
    let mut names = Vec::new();
    for _ in 0..2 {
        names.push(
            select_message::<Available>(&mut cx, WAIT)
                .0
                .name
                .to_string(),
        );
    }
    names.sort();
    assert_eq!(names, ["t6:worker:1", "t6:worker:22"]);
    let more = support::drain(&mut cx, Duration::from_millis(300));
    assert!(more.iter().all(|e| !e.is::<Available>()), "{more:?}");
}

#[test]
fn four_processes_starting_the_host_directory_at_once_make_exactly_one() {
    let dir = fresh_runtime_dir("race");
    let peers: Vec<Running> = (0..4)
        .map(|i| {
            let publish = format!("race:{i}@host");
            peer_in(
                &dir,
                &["--publish", &publish, "--subscribe", "race:.*@host"],
            )
        })
        .collect();
    // Each comes to hold all four names: they share one host directory. (While the four
    // link to one another at once, a name may go and come back: two sessions opened both
    // ways at the same moment can both be refused, and one is made again.)
    for p in &peers {
        let mut held = std::collections::BTreeSet::new();
        let deadline = Instant::now() + WAIT;
        while held.len() < 4 {
            assert!(Instant::now() < deadline, "held only {held:?}");
            let line = expect_line(p, "");
            let mut words = line.split(' ');
            match (words.next(), words.next()) {
                (Some("available"), Some(name)) => held.insert(name.to_string()),
                (Some("dropped"), Some(name)) => held.remove(name),
                _ => false,
            };
        }
        assert_eq!(
            held.into_iter().collect::<Vec<_>>(),
            ["race:0", "race:1", "race:2", "race:3"]
        );
    }
    let holder = strata::directory::host::holder(&dir.join("host.sock")).expect("a holder");
    assert!(peers.iter().any(|p| p.pid() == holder), "held by {holder}");
    drop(peers);
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn the_host_directory_killed_leaves_sessions_alone_and_comes_back_with_every_name() {
    let dir = fresh_runtime_dir("restart");
    // The first process serves the host directory.
    let server = peer_in(&dir, &["--subscribe", "nothing@host"]);
    expect_line(&server, "subscribed");
    let publisher = peer_in(&dir, &["--publish", "r:a@host"]);
    expect_line(&publisher, "published");
    let subscriber = peer_in(&dir, &["--subscribe", "r:.*@host"]);
    expect_line(&subscriber, "available r:a host");
    assert_eq!(
        strata::directory::host::holder(&dir.join("host.sock")),
        Some(server.pid())
    );
    server.signal(libc::SIGKILL);
    // Another process takes over; a new name is found through it.
    let late = peer_in(&dir, &["--publish", "r:c@host"]);
    expect_line(&late, "published");
    expect_line(&subscriber, "available r:c host");
    // What was held stays held: no Dropped, once the new directory settled.
    let after = lines_for(&subscriber, Duration::from_secs(4));
    assert!(after.iter().all(|l| !l.starts_with("dropped")), "{after:?}");
    drop((publisher, subscriber, late));
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn siblings_in_a_group_find_and_reach_each_other() {
    this_process();
    let mut cx = ThreadContext::attach();
    subscribe(&mut cx, "t9:a:answered", Scope::Host);
    // A parent with two children: one publishes at group scope, the other subscribes
    // there, asks what it found and, answered, publishes the proof at host scope.
    let parent = peer(&[
        "--child",
        "--publish t9:a@group",
        "--child",
        "--subscribe t9:.*@group --confirm",
    ]);
    let (a, _) = select_message::<Available>(&mut cx, WAIT);
    assert_eq!(a.name.as_str(), "t9:a:answered");
    // Group scope stays in the group: this process (another group) does not see `t9:a`.
    let mut outside = ThreadContext::attach();
    subscribe(&mut outside, "t9:a", Scope::Host);
    let more = support::drain(&mut outside, Duration::from_millis(300));
    assert!(more.iter().all(|e| !e.is::<Available>()), "{more:?}");
    drop(parent);
}

#[test]
fn clearing_is_answered_and_the_other_side_hears_dropped() {
    this_process();
    let mut subscriber = ThreadContext::attach();
    subscribe(&mut subscriber, "t10:.*", Scope::Host);
    let mut publisher = ThreadContext::attach();
    publisher.publish("t10:a", Scope::Host).unwrap();
    publisher.publish("t10:b", Scope::Process).unwrap();
    for _ in 0..2 {
        select_message::<Published>(&mut publisher, WAIT);
    }
    let mut held: Vec<(String, Scope)> = (0..2)
        .map(|_| {
            let (a, _) = select_message::<Available>(&mut subscriber, WAIT);
            (a.name.to_string(), a.scope)
        })
        .collect();
    held.sort();
    assert_eq!(
        held,
        [
            ("t10:a".to_string(), Scope::Host),
            ("t10:b".to_string(), Scope::Process)
        ]
    );
    // The publisher clears: answered with the count, the subscriber hears both go.
    publisher.clear_published();
    let (cleared, _) = select_message::<strata::directory::Cleared>(&mut publisher, WAIT);
    assert_eq!(cleared.count, 2);
    let mut gone: Vec<String> = (0..2)
        .map(|_| {
            select_message::<Dropped>(&mut subscriber, WAIT)
                .0
                .name
                .to_string()
        })
        .collect();
    gone.sort();
    assert_eq!(gone, ["t10:a", "t10:b"]);
    // Published again, then the subscriber clears: it hears Dropped for what it held.
    publisher.publish("t10:c", Scope::Process).unwrap();
    select_message::<Available>(&mut subscriber, WAIT);
    subscriber.clear_subscribed();
    let (d, _) = select_message::<Dropped>(&mut subscriber, WAIT);
    assert_eq!(d.name.as_str(), "t10:c");
    let (cleared, _) = select_message::<strata::directory::Cleared>(&mut subscriber, WAIT);
    assert_eq!(cleared.count, 1);
    // Nothing more comes: the subscription is gone.
    publisher.publish("t10:d", Scope::Process).unwrap();
    let more = support::drain(&mut subscriber, Duration::from_millis(200));
    assert!(more.iter().all(|e| !e.is::<Available>()), "{more:?}");
}

#[test]
fn a_subscriber_sees_every_publication_within_its_scope_however_far_that_one_reaches() {
    this_process();
    // A host-scope publication of this process meets a process-scope subscription here.
    let mut subscriber = ThreadContext::attach();
    subscribe(&mut subscriber, "t11:near", Scope::Process);
    let mut publisher = ThreadContext::attach();
    publisher.publish("t11:near", Scope::Host).unwrap();
    select_message::<Published>(&mut publisher, WAIT);
    let (a, _) = select_message::<Available>(&mut subscriber, WAIT);
    assert_eq!((a.address, a.scope), (publisher.address(), Scope::Host));
    // A host-scope publication of a child meets this process's group-scope subscription
    // in the group.
    let mut cx = ThreadContext::attach();
    subscribe(&mut cx, "t11:child", Scope::Group);
    let _child = cx.create(
        Process::of(testbin("directory_peer").to_string_lossy())
            .arg("--publish")
            .arg("t11:child@host"),
    );
    let a = available(&mut cx);
    assert_eq!((a.name.as_str(), a.scope), ("t11:child", Scope::Host));
    // Withdrawn, it goes once: no copy from another directory takes its place.
    drop(publisher);
    let (d, _) = select_message::<Dropped>(&mut subscriber, WAIT);
    assert_eq!(d.name.as_str(), "t11:near");
    let more = support::drain(&mut subscriber, Duration::from_millis(300));
    assert!(more.iter().all(|e| !e.is::<Available>()), "{more:?}");
}
