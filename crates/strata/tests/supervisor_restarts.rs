//! The `Supervisor` object with real worker processes (`/bin/sh`): restart intervals grow
//! and a worker failing at once is marked failed when the budget is spent; a worker that
//! stayed up for the healthy period starts the count again; resize stops the highest ids
//! first. What is checked is what the supervisor decided (the intervals it chose, the
//! ids it stopped), never how long anything took.

mod support;

use std::sync::mpsc;
use std::sync::Arc;
use std::time::Duration;

use parking_lot::Mutex;
use strata::prelude::*;
use strata::process::Process;
use strata::supervisor::{Ended, Hooks, Resize, Service, Started, Supervisor, Then};
use strata::Backoff;
use support::WAIT;

/// Hooks that pass on every start and end.
struct Tell(Mutex<mpsc::Sender<Event>>);

#[derive(Debug)]
enum Event {
    Started(String, u32),
    Ended(String, Then, Option<String>),
}

impl Hooks for Tell {
    fn started(&self, w: &Started<'_>) {
        let _ = self
            .0
            .lock()
            .send(Event::Started(w.worker.to_string(), w.pid));
    }
    fn line(&self, _: &str, _: &str, _: strata::process::Stream, _: &str) {}
    fn ended(&self, e: &Ended<'_>) {
        let exit = e.exit.as_ref().map(|x| x.to_string());
        let _ = self
            .0
            .lock()
            .send(Event::Ended(e.worker.to_string(), e.then.clone(), exit));
    }
}

fn sh(script: &'static str) -> impl Fn(&str) -> Process + Send + Sync {
    move |_id: &str| {
        Process::of("/bin/sh")
            .arg("-c")
            .arg(script)
            .grace(Duration::from_secs(1))
    }
}

fn supervise(service: Service) -> (ThreadContext, Address, mpsc::Receiver<Event>) {
    let (tx, rx) = mpsc::channel();
    let mut cx = ThreadContext::attach();
    let s = cx.create(
        Supervisor::new()
            .hooks(Arc::new(Tell(Mutex::new(tx))))
            .service(service),
    );
    (cx, s, rx)
}

fn next(rx: &mpsc::Receiver<Event>) -> Event {
    rx.recv_timeout(WAIT).expect("an event from the supervisor")
}

fn stop(mut cx: ThreadContext, s: Address) {
    cx.stop(s);
    let value = support::returned_from(&mut cx, s, WAIT);
    assert!(value.is_fault(), "a stopped supervisor ends with Aborted");
}

#[test]
fn intervals_grow_until_the_budget_is_spent_then_the_worker_is_failed() {
    let backoff = Backoff::growing(Duration::from_millis(20), Duration::from_secs(5))
        .growth(2.0)
        .budget(Some(4))
        .healthy_after(Some(Duration::from_secs(60)));
    let (cx, s, rx) = supervise(Service::new("boot", 1, sh("exit 3")).restart(backoff));
    let mut waits = Vec::new();
    loop {
        match next(&rx) {
            Event::Started(id, _) => assert_eq!(id, "boot-0"),
            Event::Ended(id, then, exit) => {
                assert_eq!(id, "boot-0");
                assert_eq!(exit.as_deref(), Some("exit 3"));
                match then {
                    Then::Restart(w) => waits.push(w.as_millis()),
                    Then::Failed(why) => {
                        assert!(why.contains("4 consecutive"), "{why}");
                        break;
                    }
                    other => panic!("unexpected {other:?}"),
                }
            }
        }
    }
    assert_eq!(
        waits,
        vec![20, 40, 80, 160],
        "no jitter: the intervals exactly"
    );
    // Marked failed: not started again.
    assert!(rx.recv_timeout(Duration::from_millis(500)).is_err());
    stop(cx, s);
}

#[test]
fn a_worker_that_stayed_up_for_the_healthy_period_starts_the_count_again() {
    let backoff = Backoff::growing(Duration::from_millis(20), Duration::from_secs(5))
        .growth(2.0)
        .budget(Some(2))
        .healthy_after(Some(Duration::from_millis(100)));
    let (cx, s, rx) =
        supervise(Service::new("steady", 1, sh("sleep 0.5; exit 1")).restart(backoff));
    let mut waits = Vec::new();
    while waits.len() < 4 {
        if let Event::Ended(_, then, _) = next(&rx) {
            match then {
                Then::Restart(w) => waits.push(w.as_millis()),
                other => panic!("a healthy worker is always restarted, not {other:?}"),
            }
        }
    }
    assert_eq!(
        waits,
        vec![20, 20, 20, 20],
        "each run reset the budget and interval"
    );
    stop(cx, s);
}

#[test]
fn resize_stops_the_highest_ids_first_and_stop_ends_every_worker() {
    let (cx, s, rx) = supervise(Service::new("sleeper", 4, sh("exec sleep 60")));
    let mut pids = Vec::new();
    while pids.len() < 4 {
        if let Event::Started(_, pid) = next(&rx) {
            pids.push(pid);
        }
    }
    cx.send(
        s,
        Resize {
            service: "sleeper".into(),
            count: 2,
        },
    );
    let mut removed = Vec::new();
    while removed.len() < 2 {
        if let Event::Ended(id, then, _) = next(&rx) {
            assert_eq!(then, Then::Removed);
            removed.push(id);
        }
    }
    removed.sort();
    assert_eq!(removed, vec!["sleeper-2", "sleeper-3"]);
    cx.send(
        s,
        Resize {
            service: "sleeper".into(),
            count: 3,
        },
    );
    match next(&rx) {
        Event::Started(id, pid) => {
            assert_eq!(id, "sleeper-2", "the lowest free id comes back");
            pids.push(pid);
        }
        other => panic!("unexpected {other:?}"),
    }
    stop(cx, s);
    let mut stopped = 0;
    while stopped < 3 {
        if let Ok(Event::Ended(_, Then::Stopped, _)) = rx.recv_timeout(WAIT) {
            stopped += 1;
        }
    }
    for pid in pids {
        // SAFETY: probing a pid with signal 0.
        let alive = unsafe { libc::kill(pid as i32, 0) } == 0;
        assert!(!alive || zombie(pid), "pid {pid} outlived its supervisor");
    }
}

fn zombie(pid: u32) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .map(|s| {
            s.rsplit(')')
                .next()
                .unwrap_or("")
                .trim_start()
                .starts_with('Z')
        })
        .unwrap_or(true)
}
