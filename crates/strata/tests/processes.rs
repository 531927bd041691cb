//! Child processes as objects: values and faults from real child programs, Stop as a
//! signal, a spool of worker processes surviving `kill -9` of one worker under load, and no
//! orphans when the parent itself is killed.
//!
//! The children are this package's examples (`slow_worker`, `process_parent`), which
//! `cargo test` builds beside the tests.

use std::path::PathBuf;
use std::time::{Duration, Instant};

use strata::prelude::*;
use strata::process::Process;
use strata::spool::{Spool, SpoolStatistics, SpoolStats};

const WAIT: Duration = Duration::from_secs(20);

#[derive(Debug, Clone, Copy, Serialize, Deserialize, Message)]
#[message(name = "proctest.Job")]
struct Job {
    id: u64,
    ms: u64,
}

#[derive(Debug, Clone, Copy, Serialize, Deserialize, Message)]
#[message(name = "proctest.Done")]
struct Done {
    id: u64,
    pid: u32,
}

#[derive(Debug, Clone, Serialize, Deserialize, Message)]
#[message(name = "proctest.Blob")]
struct Blob {
    id: u64,
    bytes: Vec<u8>,
}

fn example(name: &str) -> String {
    let exe = std::env::current_exe().expect("test binary path");
    let path: PathBuf = exe
        .parent()
        .and_then(|d| d.parent())
        .expect("target dir")
        .join("examples")
        .join(name);
    assert!(
        path.exists(),
        "{} not built (run through cargo test)",
        path.display()
    );
    path.to_string_lossy().into_owned()
}

fn sh(script: &str) -> Process {
    Process::of("/bin/sh").arg("-c").arg(script)
}

/// Live processes whose parent is `parent` and whose command line mentions `name`.
fn children_of(parent: u32, name: &str) -> Vec<u32> {
    let mut found = Vec::new();
    for entry in std::fs::read_dir("/proc").unwrap().flatten() {
        let Ok(pid) = entry.file_name().to_string_lossy().parse::<u32>() else {
            continue;
        };
        let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/stat")) else {
            continue;
        };
        let after = &stat[stat.rfind(')').map(|i| i + 2).unwrap_or(0)..];
        let fields: Vec<&str> = after.split_whitespace().collect();
        if fields.first() == Some(&"Z") {
            continue;
        }
        let ppid: u32 = fields.get(1).and_then(|p| p.parse().ok()).unwrap_or(0);
        let cmdline = std::fs::read_to_string(format!("/proc/{pid}/cmdline")).unwrap_or_default();
        if ppid == parent && cmdline.contains(name) {
            found.push(pid);
        }
    }
    found
}

fn alive(pid: u32) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .map(|s| !s[s.rfind(')').unwrap_or(0)..].starts_with(") Z"))
        .unwrap_or(false)
}

#[test]
fn a_child_ends_with_a_value_or_a_fault_that_says_why() {
    let mut cx = ThreadContext::attach();
    let ok = cx.create(sh(r#"echo '{"type":"vec<vec<f64>>","value":[[1.5,2.5]]}'"#));
    assert_eq!(
        cx.wait_for(ok).downcast::<Vec<Vec<f64>>>().unwrap(),
        vec![vec![1.5, 2.5]]
    );

    let failed = cx.create(sh("echo 'disk on fire' >&2; exit 3"));
    let f = cx.wait_for(failed).downcast::<Faulted>().unwrap();
    assert!(
        f.reason.contains("status 3") && f.reason.contains("disk on fire"),
        "{f}"
    );

    let garbage = cx.create(sh("echo 'this is not JSON'"));
    let f = cx.wait_for(garbage).downcast::<Faulted>().unwrap();
    assert!(f.reason.contains("no strata value"), "{f}");

    let killed = cx.create(sh("kill -9 $$"));
    let f = cx.wait_for(killed).downcast::<Faulted>().unwrap();
    assert!(f.reason.contains("signal 9"), "{f}");

    let missing = cx.create(Process::of("no-such-program-here"));
    let f = cx.wait_for(missing).downcast::<Faulted>().unwrap();
    assert!(f.reason.contains("no-such-program-here"), "{f}");
}

#[test]
fn a_library_child_answers_as_if_it_were_local_and_stop_reaches_it_as_a_signal() {
    let mut cx = ThreadContext::attach();
    let worker = cx.create(Process::of(example("slow_worker")));
    let started = Instant::now();
    cx.send(worker, Job { id: 7, ms: 10 });
    let e = cx.input_timeout(WAIT).expect("an answer from the child");
    assert_eq!(
        e.sender(),
        worker,
        "the Process object stands for the child"
    );
    let done = e.take::<Done>().unwrap();
    assert_eq!(done.id, 7);
    assert_ne!(done.pid, std::process::id());
    assert!(alive(done.pid));
    cx.stop(worker);
    let value = cx.wait_for(worker);
    assert!(value.is::<Aborted>(), "{value:?}");
    assert!(started.elapsed() < WAIT);
    assert!(!alive(done.pid), "the child ended");
}

#[test]
fn large_messages_and_bursts_cross_the_link_whole_and_in_order() {
    // Messages far larger than a socket's buffer, and bursts of them, make both ends wait
    // for the socket to take more: nothing may be lost, cut or reordered.
    let mut cx = ThreadContext::attach();
    let worker = cx.create(Process::of(example("slow_worker")));
    let blob = |id: u64, len: usize| Blob {
        id,
        bytes: (0..len).map(|i| (i as u64 * 31 + id) as u8).collect(),
    };
    let sizes = [1 << 20, 1, 300_000, 0, 600_000];
    let mut sent = Vec::new();
    for round in 0..3u64 {
        for (k, len) in sizes.iter().enumerate() {
            let b = blob(round * 10 + k as u64, *len);
            sent.push(b.clone());
            cx.send(worker, b);
        }
    }
    for expected in &sent {
        let e = cx.input_timeout(WAIT).expect("every blob comes back");
        let got = e.take::<Blob>().expect("a Blob");
        assert_eq!(got.id, expected.id, "answers come back in the order sent");
        let mut want = expected.bytes.clone();
        want.reverse();
        assert!(got.bytes == want, "blob {} came back changed", got.id);
    }
    cx.stop(worker);
    assert!(cx.wait_for(worker).is::<Aborted>());
}

#[test]
fn kill_9_of_one_worker_process_under_load() {
    let mut cx = ThreadContext::attach();
    let spool = cx.create(
        Spool::of(Process::of(example("slow_worker")))
            .workers(3)
            .queue_size(None)
            .stand_down(Some(Duration::from_millis(200))),
    );
    // Warm up: every worker process up and answering.
    for id in 0..6 {
        cx.send(spool, Job { id, ms: 1 });
    }
    let mut pids = std::collections::HashSet::new();
    for _ in 0..6 {
        pids.insert(cx.input_timeout(WAIT).unwrap().take::<Done>().unwrap().pid);
    }
    let n = 30;
    for id in 100..100 + n {
        cx.send(spool, Job { id, ms: 100 });
    }
    std::thread::sleep(Duration::from_millis(150));
    let victim = *pids.iter().next().expect("a worker pid");
    // SAFETY: killing a child process of this test by pid.
    unsafe {
        libc::kill(victim as libc::pid_t, libc::SIGKILL);
    }
    let mut done = 0;
    let mut faults = Vec::new();
    for _ in 0..n {
        let e = cx.input_timeout(WAIT).expect("every request is answered");
        if e.is::<Done>() {
            done += 1;
        } else {
            faults.push(e.take::<Faulted>().expect("a fault").reason);
        }
    }
    assert_eq!(
        faults.len(),
        1,
        "exactly the victim's request fails: {faults:?}"
    );
    assert!(faults[0].contains("signal 9"), "{faults:?}");
    assert_eq!(done, n - 1);
    let deadline = Instant::now() + WAIT;
    loop {
        let s = cx
            .ask(spool, SpoolStats, Some(WAIT))
            .downcast::<SpoolStatistics>()
            .unwrap();
        if s.replaced == 1 && s.workers == 3 {
            break;
        }
        assert!(Instant::now() < deadline, "no replacement: {s:?}");
        std::thread::sleep(Duration::from_millis(20));
    }
    cx.send(spool, Job { id: 999, ms: 0 });
    assert!(cx.input_timeout(WAIT).unwrap().is::<Done>());
}

#[test]
fn kill_9_of_the_parent_leaves_no_child_behind() {
    let mut parent = std::process::Command::new(example("process_parent"))
        .stdout(std::process::Stdio::null())
        .spawn()
        .expect("start the parent");
    let pid = parent.id();
    let deadline = Instant::now() + WAIT;
    let children = loop {
        let c = children_of(pid, "slow_worker");
        if c.len() == 3 {
            break c;
        }
        assert!(
            Instant::now() < deadline,
            "the parent never started its workers"
        );
        std::thread::sleep(Duration::from_millis(20));
    };
    parent.kill().expect("kill -9");
    let _ = parent.wait();
    std::thread::sleep(Duration::from_secs(1));
    let left: Vec<u32> = children.into_iter().filter(|c| alive(*c)).collect();
    assert!(
        left.is_empty(),
        "children left 1 s after the parent was killed: {left:?}"
    );
}
