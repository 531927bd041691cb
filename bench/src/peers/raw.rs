//! The baseline: plain tokio tasks talking over tokio channels on a multi-thread runtime with
//! [`WORKERS`] workers, with none of an actor library's bookkeeping (no addresses, no
//! envelopes, no type dispatch, no supervision).
//!
//! The coordinator is the runtime's `block_on` future on the main thread, like the strata
//! benchmark's attached main thread.

use std::time::{Duration, Instant};

use tokio::sync::{mpsc, oneshot};

use crate::workload::{check_fanout, share, Tally, RECEIVERS, WORKERS};

/// A fan-out message: a small struct holding one number.
#[derive(Debug)]
struct Item {
    value: u64,
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(WORKERS)
        .enable_all()
        .build()
        .expect("a tokio runtime")
}

/// Fire-and-forget: one sender task, [`RECEIVERS`] receiver tasks, one unbounded channel each.
pub fn fanout(sizes: &[u64]) -> Vec<Duration> {
    let rt = runtime();
    sizes.iter().map(|&n| rt.block_on(fanout_pass(n))).collect()
}

async fn fanout_pass(n: u64) -> Duration {
    let share = share(n);
    let (ready_tx, mut ready_rx) = mpsc::unbounded_channel::<()>();
    let (tally_tx, mut tally_rx) = mpsc::unbounded_channel::<Tally>();
    let mut targets = Vec::with_capacity(RECEIVERS as usize);
    for _ in 0..RECEIVERS {
        let (tx, mut rx) = mpsc::unbounded_channel::<Item>();
        let ready = ready_tx.clone();
        let report = tally_tx.clone();
        tokio::spawn(async move {
            let _ = ready.send(());
            let mut tally = Tally::default();
            while let Some(item) = rx.recv().await {
                tally.count += 1;
                tally.sum = tally.sum.wrapping_add(item.value);
                if tally.count == share {
                    let _ = report.send(tally);
                }
            }
        });
        targets.push(tx);
    }
    let (go_tx, go_rx) = oneshot::channel::<()>();
    let ready = ready_tx.clone();
    tokio::spawn(async move {
        let _ = ready.send(());
        if go_rx.await.is_err() {
            return;
        }
        for i in 0..n {
            let _ = targets[(i % RECEIVERS) as usize].send(Item { value: i });
        }
    });
    for _ in 0..=RECEIVERS {
        ready_rx.recv().await.expect("every task starts");
    }

    let start = Instant::now();
    go_tx.send(()).expect("the sender waits for go");
    let mut tallies = Vec::with_capacity(RECEIVERS as usize);
    for _ in 0..RECEIVERS {
        tallies.push(tally_rx.recv().await.expect("every receiver reports"));
    }
    let elapsed = start.elapsed();
    check_fanout(n, &tallies);
    elapsed
}

/// Request-reply: a requester task sends `(value, oneshot sender)` over a bounded mpsc to a
/// responder task and awaits the oneshot, `n` times in a row.
pub fn pingpong(sizes: &[u64]) -> Vec<Duration> {
    let rt = runtime();
    sizes
        .iter()
        .map(|&n| rt.block_on(pingpong_pass(n)))
        .collect()
}

async fn pingpong_pass(n: u64) -> Duration {
    let (ready_tx, mut ready_rx) = mpsc::unbounded_channel::<()>();
    let (request_tx, mut request_rx) = mpsc::channel::<(u64, oneshot::Sender<u64>)>(1024);
    let ready = ready_tx.clone();
    tokio::spawn(async move {
        let _ = ready.send(());
        while let Some((value, reply)) = request_rx.recv().await {
            let _ = reply.send(value + 1);
        }
    });
    let (go_tx, go_rx) = oneshot::channel::<()>();
    let (done_tx, done_rx) = oneshot::channel::<()>();
    tokio::spawn(async move {
        let _ = ready_tx.send(());
        if go_rx.await.is_err() {
            return;
        }
        for i in 0..n {
            let (reply_tx, reply_rx) = oneshot::channel();
            request_tx
                .send((i, reply_tx))
                .await
                .expect("the responder runs");
            let answer = reply_rx.await.expect("the responder answers");
            assert_eq!(answer, i + 1, "the answer matches the request");
        }
        let _ = done_tx.send(());
    });
    for _ in 0..2 {
        ready_rx.recv().await.expect("both tasks start");
    }

    let start = Instant::now();
    go_tx.send(()).expect("the requester waits for go");
    done_rx.await.expect("the requester finishes");
    start.elapsed()
}

/// Spawn cost: a creator task spawns `n` tasks; each sends one message back to the creator
/// (its "I have ended") and ends; the creator reports when it has all `n`.
pub fn spawn(sizes: &[u64]) -> Vec<Duration> {
    let rt = runtime();
    sizes.iter().map(|&n| rt.block_on(spawn_pass(n))).collect()
}

async fn spawn_pass(n: u64) -> Duration {
    let (ready_tx, mut ready_rx) = mpsc::unbounded_channel::<()>();
    let (go_tx, go_rx) = oneshot::channel::<()>();
    let (done_tx, done_rx) = oneshot::channel::<()>();
    tokio::spawn(async move {
        let _ = ready_tx.send(());
        if go_rx.await.is_err() {
            return;
        }
        let (ended_tx, mut ended_rx) = mpsc::unbounded_channel::<()>();
        for _ in 0..n {
            let ended = ended_tx.clone();
            tokio::spawn(async move {
                let _ = ended.send(());
            });
        }
        for _ in 0..n {
            ended_rx.recv().await.expect("every task ends");
        }
        let _ = done_tx.send(());
    });
    ready_rx.recv().await.expect("the creator starts");

    let start = Instant::now();
    go_tx.send(()).expect("the creator waits for go");
    done_rx.await.expect("the creator finishes");
    start.elapsed()
}
