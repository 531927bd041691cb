//! Child processes as objects: values and faults from real child programs (shell
//! stand-ins and a real entry point), Stop as a signal and SIGKILL after the grace period,
//! a spool of worker processes surviving `kill -9` of one worker under load, and no
//! orphans when the parent itself is killed.
//!
//! The children are test programs of crates/strata-testbins (`slow_worker`,
//! `process_parent`, `entry_table`), built by the tests themselves.

mod support;

use std::collections::HashSet;
use std::process::Command;
use std::time::{Duration, Instant};

use strata::prelude::*;
use strata::process::Process;
use strata::spool::{Spool, SpoolStatistics, SpoolStats};
use strata_testbins::jobs::{Blob, Done, Job};
use support::programs::{alive, children_of, ignores_sigterm, testbin, Running};
use support::{bounded, poll_until, WAIT};

/// Test bodies that wait on children run within this (a hung child fails the test).
const LIMIT: Duration = Duration::from_secs(60);

/// The arguments of the `entry_table` program.
#[derive(Debug, Clone, Copy, Serialize, Deserialize, Message)]
#[message(name = "proctest.Xy")]
struct Xy {
    x: usize,
    y: usize,
}

fn testbin_path(name: &str) -> String {
    testbin(name).to_string_lossy().into_owned()
}

fn sh(script: &str) -> Process {
    Process::of("/bin/sh").arg("-c").arg(script)
}

#[test]
fn a_child_ends_with_a_value_or_a_fault_that_says_why() {
    bounded(LIMIT, || {
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
    });
}

#[test]
fn an_entry_point_child_takes_its_arguments_from_a_struct_and_returns_its_value() {
    let program = testbin_path("entry_table");
    bounded(LIMIT, move || {
        let mut cx = ThreadContext::attach();
        let table = cx.create(Process::of(program.as_str()).args(&Xy { x: 3, y: 2 }));
        let value = cx.wait_for(table);
        let table = value
            .downcast::<Vec<Vec<f64>>>()
            .unwrap_or_else(|v| panic!("expected a table, got {v:?}"));
        assert_eq!(table, vec![vec![0.0, 1.0, 2.0], vec![100.0, 101.0, 102.0]]);

        // Its own fault: exit status 1 and the one line it printed on stderr.
        let empty = cx.create(Process::of(program.as_str()).args(&Xy { x: 0, y: 2 }));
        let f = cx.wait_for(empty).downcast::<Faulted>().unwrap();
        assert!(
            f.reason.contains("status 1") && f.reason.contains("an empty table (0 by 2)"),
            "{f}"
        );

        // A bad argument: exit status 2, naming it.
        let bad = cx.create(Process::of(program.as_str()).arg("--x=abc").arg("--y=1"));
        let f = cx.wait_for(bad).downcast::<Faulted>().unwrap();
        assert!(
            f.reason.contains("status 2") && f.reason.contains("--x"),
            "{f}"
        );
    });
}

#[test]
fn a_library_child_answers_as_if_it_were_local_and_stop_reaches_it_as_a_signal() {
    let program = testbin_path("slow_worker");
    bounded(LIMIT, move || {
        let mut cx = ThreadContext::attach();
        let worker = cx.create(Process::of(program));
        cx.send(worker, Job { id: 7, ms: 10 });
        let e = cx.recv_timeout(WAIT).expect("an answer from the child");
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
        assert!(!alive(done.pid), "the child ended");
    });
}

#[test]
fn a_child_that_ignores_sigterm_is_killed_after_its_grace_period() {
    bounded(LIMIT, || {
        let mut cx = ThreadContext::attach();
        let grace = Duration::from_millis(200);
        // `exec` keeps SIGTERM ignored in `sleep` itself, which holds the output pipes.
        let stubborn = cx.create(sh(r#"trap "" TERM; exec sleep 60"#).grace(grace));
        let pid = poll_until(WAIT, "the child ignoring SIGTERM", || {
            children_of(std::process::id(), "sleep")
                .into_iter()
                .find(|&pid| ignores_sigterm(pid))
        });
        let stopped = Instant::now();
        cx.stop(stubborn);
        let value = cx.wait_for(stubborn);
        let waited = stopped.elapsed();
        assert!(value.is::<Aborted>(), "{value:?}");
        assert!(!alive(pid), "the child was killed");
        // It could not have ended before the grace period: SIGTERM does nothing to it.
        assert!(waited >= grace, "ended after {waited:?}");
    });
}

#[test]
fn large_messages_and_bursts_cross_the_link_whole_and_in_order() {
    // Messages far larger than a socket's buffer, and bursts of them, make both ends wait
    // for the socket to take more: nothing may be lost, cut or reordered.
    let program = testbin_path("slow_worker");
    bounded(LIMIT, move || {
        let mut cx = ThreadContext::attach();
        let worker = cx.create(Process::of(program));
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
            let e = cx.recv_timeout(WAIT).expect("every blob comes back");
            let got = e.take::<Blob>().expect("a Blob");
            assert_eq!(got.id, expected.id, "answers come back in the order sent");
            let mut want = expected.bytes.clone();
            want.reverse();
            assert!(got.bytes == want, "blob {} came back changed", got.id);
        }
        cx.stop(worker);
        assert!(cx.wait_for(worker).is::<Aborted>());
    });
}

#[test]
fn the_private_link_refuses_a_message_over_its_maximum_frame() {
    let program = testbin_path("slow_worker");
    bounded(LIMIT, move || {
        let mut cx = ThreadContext::attach();
        let worker = cx.create(Process::of(program).max_frame(200_000));
        let blob = |id: u64, len: usize| Blob {
            id,
            bytes: vec![id as u8; len],
        };
        // Under the limit: there and back (the child's end has the same limit).
        cx.send(worker, blob(1, 150_000));
        let back = cx.recv_timeout(WAIT).expect("the small blob comes back");
        assert_eq!(back.take::<Blob>().expect("a Blob").id, 1);
        // Over it: refused at this end, with a fault to the sender naming the limit.
        cx.send(worker, blob(2, 300_000));
        let e = cx.recv_timeout(WAIT).expect("an answer for the large blob");
        let f = e.take::<Faulted>().expect("a fault");
        assert!(f.reason.contains("maximum frame of 200000"), "{f}");
        // The link is still up.
        cx.send(worker, blob(3, 10));
        let back = cx.recv_timeout(WAIT).expect("the link still works");
        assert_eq!(back.take::<Blob>().expect("a Blob").id, 3);
        cx.stop(worker);
        assert!(cx.wait_for(worker).is::<Aborted>());
    });
}

fn spool_stats(cx: &mut ThreadContext, spool: Address) -> SpoolStatistics {
    cx.ask_timeout(spool, SpoolStats, WAIT)
        .downcast::<SpoolStatistics>()
        .expect("statistics")
}

#[test]
fn kill_9_of_one_worker_process_under_load() {
    kill_9_of_a_worker(false);
}

#[test]
fn kill_9_of_one_worker_process_under_load_with_retry_loses_nothing() {
    kill_9_of_a_worker(true);
}

/// Kills one of three busy worker processes: its request fails, or with `retry_on_loss`
/// is done by another worker.
fn kill_9_of_a_worker(retry: bool) {
    let program = testbin_path("slow_worker");
    bounded(LIMIT, move || {
        let mut cx = ThreadContext::attach();
        let spool = cx.create(
            Spool::of(Process::of(program))
                .workers(3)
                .queue_size(None)
                .stand_down(Some(Duration::from_millis(200)))
                .retry_on_loss(retry),
        );
        // Warm up: every worker process up and answering.
        for id in 0..6 {
            cx.send(spool, Job { id, ms: 1 });
        }
        let mut pids = HashSet::new();
        for _ in 0..6 {
            pids.insert(cx.recv_timeout(WAIT).unwrap().take::<Done>().unwrap().pid);
        }
        // Two long jobs per worker; kill one worker while all three are busy, so the kill
        // lands in the middle of a request whatever the machine's speed.
        let sent: HashSet<u64> = (100..106).collect();
        for &id in &sent {
            cx.send(spool, Job { id, ms: 2_000 });
        }
        poll_until(WAIT, "all three workers busy", || {
            (spool_stats(&mut cx, spool).idle == 0).then_some(())
        });
        let victim = *pids.iter().next().expect("a worker pid");
        assert!(support::programs::signal(victim, libc::SIGKILL));
        let mut done = Vec::new();
        let mut faults = Vec::new();
        for _ in 0..sent.len() {
            let e = cx.recv_timeout(WAIT).expect("every request is answered");
            if e.is::<Done>() {
                done.push(e.take::<Done>().unwrap());
            } else {
                faults.push(e.take::<Faulted>().expect("a fault").reason);
            }
        }
        let ids: HashSet<u64> = done.iter().map(|d| d.id).collect();
        assert_eq!(ids.len(), done.len(), "no answer twice: {done:?}");
        assert!(ids.is_subset(&sent), "{done:?}");
        if retry {
            assert!(faults.is_empty(), "nothing lost with retry: {faults:?}");
            assert_eq!(ids, sent, "every request done: {done:?}");
            assert!(
                done.iter().all(|d| d.pid != victim),
                "no answer from the killed worker: {done:?}"
            );
            assert_eq!(spool_stats(&mut cx, spool).retried, 1);
        } else {
            assert_eq!(
                faults.len(),
                1,
                "exactly the victim's request fails: {faults:?}"
            );
            assert!(faults[0].contains("signal 9"), "{faults:?}");
            assert_eq!(
                ids.len(),
                sent.len() - 1,
                "every other request done: {done:?}"
            );
        }
        poll_until(WAIT, "the killed worker replaced", || {
            let s = spool_stats(&mut cx, spool);
            (s.replaced == 1 && s.workers == 3).then_some(())
        });
        cx.send(spool, Job { id: 999, ms: 0 });
        let e = cx.recv_timeout(WAIT).expect("the spool still serves");
        assert_eq!(e.take::<Done>().expect("a Done").id, 999);
    });
}

#[test]
fn a_deadline_crosses_the_private_link_and_the_child_answers_timed_out_in_place_of_the_work() {
    let program = testbin_path("slow_worker");
    bounded(LIMIT, move || {
        let mut cx = ThreadContext::attach();
        let child = cx.create(Process::of(program));
        // Up and answering.
        cx.send(child, Job { id: 1, ms: 0 });
        let e = cx.recv_timeout(WAIT).expect("the child answers");
        assert_eq!(e.take::<Done>().expect("Done").id, 1);
        // The worker sleeps through job 2; job 3's deadline passes meanwhile in the
        // child's mailbox, job 4's does not.
        cx.send(child, Job { id: 2, ms: 600 });
        let postbox = cx.postbox();
        postbox.send_by(
            child,
            Job { id: 3, ms: 0 },
            Instant::now() + Duration::from_millis(100),
        );
        postbox.send_by(
            child,
            Job { id: 4, ms: 0 },
            Instant::now() + Duration::from_secs(3600),
        );
        let e = cx.recv_timeout(WAIT).expect("job 2");
        assert_eq!(e.take::<Done>().expect("Done").id, 2);
        let e = cx.recv_timeout(WAIT).expect("job 3 answered");
        let t = e
            .take::<TimedOut>()
            .unwrap_or_else(|e| panic!("expected TimedOut, got {:?}", e.message()));
        assert_eq!(t.seconds, 0.0, "past its deadline in the child");
        let e = cx.recv_timeout(WAIT).expect("job 4");
        assert_eq!(e.take::<Done>().expect("Done").id, 4);
        cx.stop(child);
    });
}

#[test]
fn kill_9_of_the_parent_leaves_no_child_behind() {
    let mut parent = Running::start(&mut Command::new(testbin("process_parent")));
    let pid = parent.pid();
    let children = poll_until(WAIT, "the parent's three workers", || {
        let c = children_of(pid, "slow_worker");
        (c.len() == 3).then_some(c)
    });
    // Should the test fail, the workers go with the guard.
    parent.kill_also(children.clone());
    parent.signal(libc::SIGKILL);
    let _ = parent.finish(WAIT);
    poll_until(
        WAIT,
        "every worker gone after the parent was killed",
        || children.iter().all(|&c| !alive(c)).then_some(()),
    );
}
