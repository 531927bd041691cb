//! actix: actors in one `System`, actix's default, which runs every actor of its arbiter on
//! one thread (a current-thread tokio runtime). The coordinator is the `block_on` future on
//! that same thread; results come back to it over tokio channels.
//!
//! Fire-and-forget uses `Addr::do_send` (queues past the mailbox capacity, like strata with
//! a large enough capacity), request-reply `Addr::send(..).await`.

use std::time::{Duration, Instant};

use actix::prelude::*;
use tokio::sync::{mpsc, oneshot};

use crate::workload::{check_fanout, share, Tally, RECEIVERS};

/// A fan-out message: a small struct holding one number.
#[derive(Message)]
#[rtype(result = "()")]
struct Item {
    value: u64,
}

/// The coordinator's signal to start the measured work.
#[derive(Message)]
#[rtype(result = "()")]
struct Go;

/// A request of the ping-pong; the reply is the value plus one.
#[derive(Message)]
#[rtype(result = "u64")]
struct Hit {
    value: u64,
}

/// A spawned actor has stopped.
#[derive(Message)]
#[rtype(result = "()")]
struct Ended;

/// Runs each pass on one `System`.
fn passes<F, Fut>(sizes: &[u64], pass: F) -> Vec<Duration>
where
    F: Fn(u64) -> Fut,
    Fut: std::future::Future<Output = Duration>,
{
    let system = System::new();
    let out = sizes.iter().map(|&n| system.block_on(pass(n))).collect();
    System::current().stop();
    out
}

/// A fan-out receiver: counts what it gets, reports once it has its share.
struct Receiver {
    share: u64,
    tally: Tally,
    ready: mpsc::UnboundedSender<()>,
    report: mpsc::UnboundedSender<Tally>,
}

impl Actor for Receiver {
    type Context = Context<Self>;

    fn started(&mut self, _ctx: &mut Context<Self>) {
        let _ = self.ready.send(());
    }
}

impl Handler<Item> for Receiver {
    type Result = ();

    fn handle(&mut self, m: Item, _ctx: &mut Context<Self>) {
        self.tally.count += 1;
        self.tally.sum = self.tally.sum.wrapping_add(m.value);
        if self.tally.count == self.share {
            let _ = self.report.send(self.tally);
        }
    }
}

/// The fan-out sender: on [`Go`], sends `n` items round-robin with `do_send`.
struct Sender {
    targets: Vec<Addr<Receiver>>,
    n: u64,
    ready: mpsc::UnboundedSender<()>,
}

impl Actor for Sender {
    type Context = Context<Self>;

    fn started(&mut self, _ctx: &mut Context<Self>) {
        let _ = self.ready.send(());
    }
}

impl Handler<Go> for Sender {
    type Result = ();

    fn handle(&mut self, _: Go, _ctx: &mut Context<Self>) {
        let k = self.targets.len() as u64;
        for i in 0..self.n {
            self.targets[(i % k) as usize].do_send(Item { value: i });
        }
    }
}

/// Fire-and-forget: a sender actor and [`RECEIVERS`] receiver actors.
pub fn fanout(sizes: &[u64]) -> Vec<Duration> {
    passes(sizes, fanout_pass)
}

async fn fanout_pass(n: u64) -> Duration {
    let share = share(n);
    let (ready, mut ready_rx) = mpsc::unbounded_channel();
    let (report, mut report_rx) = mpsc::unbounded_channel();
    let targets: Vec<Addr<Receiver>> = (0..RECEIVERS)
        .map(|_| {
            Receiver {
                share,
                tally: Tally::default(),
                ready: ready.clone(),
                report: report.clone(),
            }
            .start()
        })
        .collect();
    let sender = Sender {
        targets,
        n,
        ready: ready.clone(),
    }
    .start();
    for _ in 0..=RECEIVERS {
        ready_rx.recv().await.expect("every actor starts");
    }

    let start = Instant::now();
    sender.do_send(Go);
    let mut tallies = Vec::with_capacity(RECEIVERS as usize);
    for _ in 0..RECEIVERS {
        tallies.push(report_rx.recv().await.expect("every receiver reports"));
    }
    let elapsed = start.elapsed();
    check_fanout(n, &tallies);
    elapsed
}

/// The ping-pong responder.
struct Ponger;

impl Actor for Ponger {
    type Context = Context<Self>;
}

impl Handler<Hit> for Ponger {
    type Result = u64;

    fn handle(&mut self, m: Hit, _ctx: &mut Context<Self>) -> u64 {
        m.value + 1
    }
}

/// Request-reply: a requester future awaits `addr.send(Hit)` `n` times in a row.
pub fn pingpong(sizes: &[u64]) -> Vec<Duration> {
    passes(sizes, pingpong_pass)
}

async fn pingpong_pass(n: u64) -> Duration {
    let ponger = Ponger.start();
    let (ready, ready_rx) = oneshot::channel::<()>();
    let (go, go_rx) = oneshot::channel::<()>();
    let (done, done_rx) = oneshot::channel::<()>();
    actix::spawn(async move {
        let _ = ready.send(());
        if go_rx.await.is_err() {
            return;
        }
        for i in 0..n {
            let answer = ponger
                .send(Hit { value: i })
                .await
                .expect("the ponger runs");
            assert_eq!(answer, i + 1, "the answer matches the request");
        }
        let _ = done.send(());
    });
    ready_rx.await.expect("the requester starts");

    let start = Instant::now();
    go.send(()).expect("the requester waits for go");
    done_rx.await.expect("the requester finishes");
    start.elapsed()
}

/// An actor that stops as soon as it starts and tells its creator from `stopped`.
struct Ephemeral {
    creator: Addr<Creator>,
}

impl Actor for Ephemeral {
    type Context = Context<Self>;

    fn started(&mut self, ctx: &mut Context<Self>) {
        ctx.stop();
    }

    fn stopped(&mut self, _ctx: &mut Context<Self>) {
        self.creator.do_send(Ended);
    }
}

/// The spawn-cost creator: on [`Go`] starts `n` actors, reports when all have stopped.
struct Creator {
    n: u64,
    ended: u64,
    ready: Option<oneshot::Sender<()>>,
    done: Option<oneshot::Sender<()>>,
}

impl Actor for Creator {
    type Context = Context<Self>;

    fn started(&mut self, _ctx: &mut Context<Self>) {
        if let Some(ready) = self.ready.take() {
            let _ = ready.send(());
        }
    }
}

impl Handler<Go> for Creator {
    type Result = ();

    fn handle(&mut self, _: Go, ctx: &mut Context<Self>) {
        for _ in 0..self.n {
            Ephemeral {
                creator: ctx.address(),
            }
            .start();
        }
    }
}

impl Handler<Ended> for Creator {
    type Result = ();

    fn handle(&mut self, _: Ended, _ctx: &mut Context<Self>) {
        self.ended += 1;
        if self.ended == self.n {
            if let Some(done) = self.done.take() {
                let _ = done.send(());
            }
        }
    }
}

/// Spawn cost: a creator actor starts `n` actors that stop at once.
pub fn spawn(sizes: &[u64]) -> Vec<Duration> {
    passes(sizes, spawn_pass)
}

async fn spawn_pass(n: u64) -> Duration {
    let (ready, ready_rx) = oneshot::channel::<()>();
    let (done, done_rx) = oneshot::channel::<()>();
    let creator = Creator {
        n,
        ended: 0,
        ready: Some(ready),
        done: Some(done),
    }
    .start();
    ready_rx.await.expect("the creator starts");

    let start = Instant::now();
    creator.do_send(Go);
    done_rx.await.expect("the creator finishes");
    start.elapsed()
}
