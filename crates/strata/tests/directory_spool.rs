//! A spool fed by name under load: workers in other processes publish, join through a
//! [`Feed`], leave gracefully, are killed with `kill -9` and replaced, while clients keep
//! asking; every request gets exactly one answer, and no request goes to a worker that
//! left.

mod support;

use std::path::PathBuf;
use std::process::Command;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use strata::directory::{Feed, Scope};
use strata::prelude::*;
use strata::spool::{Spool, SpoolStatistics, SpoolStats};
use support::programs::{testbin, Running};
use support::{poll_until, WAIT};

struct Unused;

#[strata::machine]
impl Unused {
    fn never(&mut self, _cx: &mut Context<Self>, _: Ping) {}
}

fn worker(dir: &PathBuf, n: usize) -> Running {
    let publish = format!("t8:worker:{n}@host");
    let w = Running::start_interactive(
        Command::new(testbin("directory_peer"))
            .args(["--publish", &publish])
            .env("STRATA_RUNTIME_DIR", dir),
    );
    let line = w.line(WAIT);
    assert!(line.starts_with("published"), "{line}");
    w
}

fn members(cx: &mut ThreadContext, spool: Address) -> u64 {
    let stats = cx
        .ask(spool, SpoolStats)
        .downcast::<SpoolStatistics>()
        .unwrap();
    stats.workers
}

#[test]
fn a_spool_fed_by_name_answers_every_request_while_workers_come_and_go() {
    let dir = std::env::temp_dir().join(format!("strata-test-{}-spool", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::env::set_var("STRATA_RUNTIME_DIR", &dir);
    let mut cx = ThreadContext::attach();
    let spool = cx.create(
        Spool::of(|| Threaded(Unused))
            .workers(0)
            .queue_size(Some(1000)),
    );
    cx.create(Feed::new("t8:worker:.*", Scope::Host, spool).unwrap());
    let mut workers: Vec<Running> = (0..3).map(|n| worker(&dir, n)).collect();
    poll_until(WAIT, "three members", || {
        (members(&mut cx, spool) == 3).then_some(())
    });

    // Clients ask until told to stop; each answer is a reply or a fault, never nothing.
    let stop = Arc::new(AtomicBool::new(false));
    let (asked, replied, faulted) = (
        Arc::new(AtomicUsize::new(0)),
        Arc::new(AtomicUsize::new(0)),
        Arc::new(AtomicUsize::new(0)),
    );
    let clients: Vec<_> = (0..4)
        .map(|c| {
            let (stop, asked, replied, faulted) = (
                stop.clone(),
                asked.clone(),
                replied.clone(),
                faulted.clone(),
            );
            std::thread::spawn(move || {
                let mut cx = ThreadContext::attach();
                let mut n = 0;
                while !stop.load(Ordering::Relaxed) && n < 20_000 {
                    n += 1;
                    asked.fetch_add(1, Ordering::Relaxed);
                    let answer = cx.ask_timeout(spool, format!("c{c}-{n}"), WAIT);
                    assert!(
                        !answer.is::<strata::standard::TimedOut>(),
                        "request {n} of client {c} got no answer"
                    );
                    match answer {
                        answer if answer.is::<String>() => {
                            let text = answer.downcast::<String>().unwrap();
                            assert!(text.ends_with(&format!("c{c}-{n}")), "{text}");
                            replied.fetch_add(1, Ordering::Relaxed);
                        }
                        answer => {
                            assert!(answer.is_fault(), "{answer:?}");
                            faulted.fetch_add(1, Ordering::Relaxed);
                        }
                    }
                }
            })
        })
        .collect();

    let settle = Duration::from_millis(300);
    std::thread::sleep(settle);
    // A worker leaves gracefully (its publication ends): no request is lost.
    workers[0].tell("end t8:worker:0");
    poll_until(WAIT, "two members", || {
        (members(&mut cx, spool) == 2).then_some(())
    });
    std::thread::sleep(settle);
    // One is killed: at most the request it held fails.
    workers[1].signal(libc::SIGKILL);
    poll_until(WAIT, "one member", || {
        (members(&mut cx, spool) == 1).then_some(())
    });
    std::thread::sleep(settle);
    // New ones join.
    workers.push(worker(&dir, 3));
    workers.push(worker(&dir, 4));
    poll_until(WAIT, "three members again", || {
        (members(&mut cx, spool) == 3).then_some(())
    });
    std::thread::sleep(settle);
    stop.store(true, Ordering::Relaxed);
    for c in clients {
        c.join().expect("a client thread");
    }
    let (asked, replied, faulted) = (
        asked.load(Ordering::Relaxed),
        replied.load(Ordering::Relaxed),
        faulted.load(Ordering::Relaxed),
    );
    assert_eq!(
        asked,
        replied + faulted,
        "every request answered exactly once"
    );
    assert!(replied > 0);
    // Only requests in flight at a worker as it went may have failed (the one it held
    // when killed; those sent to the leaving one between its end and its `Dropped`).
    assert!(faulted <= 16, "{faulted} faults out of {asked}");
    eprintln!("{asked} requests: {replied} replies, {faulted} faults");
    drop(workers);
    let _ = std::fs::remove_dir_all(&dir);
}
