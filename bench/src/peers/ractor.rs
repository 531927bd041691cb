//! ractor: actors on a multi-thread tokio runtime with [`WORKERS`] workers, ractor's default
//! features. The coordinator is the runtime's `block_on` future on the main thread.
//!
//! Fire-and-forget uses `cast`, request-reply the `call!` macro (an `RpcReplyPort` in the
//! message), and actors are created with `Actor::spawn`, which returns once the actor's
//! `pre_start` has run.

use std::time::{Duration, Instant};

use ractor::{call, Actor, ActorProcessingErr, ActorRef, RpcReplyPort};
use tokio::sync::{mpsc, oneshot};

use crate::workload::{check_fanout, share, Tally, RECEIVERS, WORKERS};

/// A fan-out message: a small struct holding one number.
struct Item {
    value: u64,
}

/// The coordinator's signal to start the measured work.
struct Go;

fn passes<F, Fut>(sizes: &[u64], pass: F) -> Vec<Duration>
where
    F: Fn(u64) -> Fut,
    Fut: std::future::Future<Output = Duration>,
{
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(WORKERS)
        .enable_all()
        .build()
        .expect("a tokio runtime");
    sizes.iter().map(|&n| rt.block_on(pass(n))).collect()
}

/// A fan-out receiver: counts what it gets, reports once it has its share.
struct Receiver;

/// A receiver's state.
struct Counting {
    share: u64,
    tally: Tally,
    report: mpsc::UnboundedSender<Tally>,
}

impl Actor for Receiver {
    type Msg = Item;
    type State = Counting;
    type Arguments = (u64, mpsc::UnboundedSender<Tally>);

    async fn pre_start(
        &self,
        _myself: ActorRef<Item>,
        (share, report): Self::Arguments,
    ) -> Result<Counting, ActorProcessingErr> {
        Ok(Counting {
            share,
            tally: Tally::default(),
            report,
        })
    }

    async fn handle(
        &self,
        _myself: ActorRef<Item>,
        m: Item,
        state: &mut Counting,
    ) -> Result<(), ActorProcessingErr> {
        state.tally.count += 1;
        state.tally.sum = state.tally.sum.wrapping_add(m.value);
        if state.tally.count == state.share {
            let _ = state.report.send(state.tally);
        }
        Ok(())
    }
}

/// The fan-out sender: on [`Go`], casts `n` items round-robin.
struct Sender;

impl Actor for Sender {
    type Msg = Go;
    type State = (Vec<ActorRef<Item>>, u64);
    type Arguments = (Vec<ActorRef<Item>>, u64);

    async fn pre_start(
        &self,
        _myself: ActorRef<Go>,
        args: Self::Arguments,
    ) -> Result<Self::State, ActorProcessingErr> {
        Ok(args)
    }

    async fn handle(
        &self,
        _myself: ActorRef<Go>,
        _: Go,
        (targets, n): &mut Self::State,
    ) -> Result<(), ActorProcessingErr> {
        let k = targets.len() as u64;
        for i in 0..*n {
            targets[(i % k) as usize].cast(Item { value: i })?;
        }
        Ok(())
    }
}

/// Fire-and-forget: a sender actor and [`RECEIVERS`] receiver actors.
pub fn fanout(sizes: &[u64]) -> Vec<Duration> {
    passes(sizes, fanout_pass)
}

async fn fanout_pass(n: u64) -> Duration {
    let share = share(n);
    let (report, mut report_rx) = mpsc::unbounded_channel();
    let mut targets = Vec::with_capacity(RECEIVERS as usize);
    let mut handles = Vec::new();
    for _ in 0..RECEIVERS {
        let (actor, handle) = Actor::spawn(None, Receiver, (share, report.clone()))
            .await
            .expect("a receiver starts");
        targets.push(actor);
        handles.push(handle);
    }
    let (sender, handle) = Actor::spawn(None, Sender, (targets.clone(), n))
        .await
        .expect("the sender starts");
    handles.push(handle);

    let start = Instant::now();
    sender.cast(Go).expect("the sender runs");
    let mut tallies = Vec::with_capacity(RECEIVERS as usize);
    for _ in 0..RECEIVERS {
        tallies.push(report_rx.recv().await.expect("every receiver reports"));
    }
    let elapsed = start.elapsed();
    check_fanout(n, &tallies);
    sender.stop(None);
    for t in &targets {
        t.stop(None);
    }
    for h in handles {
        let _ = h.await;
    }
    elapsed
}

/// The ping-pong request: a value and the port the reply goes to.
enum PongMsg {
    Hit(u64, RpcReplyPort<u64>),
}

/// The ping-pong responder.
struct Ponger;

impl Actor for Ponger {
    type Msg = PongMsg;
    type State = ();
    type Arguments = ();

    async fn pre_start(&self, _myself: ActorRef<PongMsg>, _: ()) -> Result<(), ActorProcessingErr> {
        Ok(())
    }

    async fn handle(
        &self,
        _myself: ActorRef<PongMsg>,
        m: PongMsg,
        _state: &mut (),
    ) -> Result<(), ActorProcessingErr> {
        match m {
            PongMsg::Hit(value, reply) => {
                let _ = reply.send(value + 1);
            }
        }
        Ok(())
    }
}

/// Request-reply: a requester task makes `n` calls in a row with `call!`.
pub fn pingpong(sizes: &[u64]) -> Vec<Duration> {
    passes(sizes, pingpong_pass)
}

async fn pingpong_pass(n: u64) -> Duration {
    let (ponger, handle) = Actor::spawn(None, Ponger, ())
        .await
        .expect("the ponger starts");
    let (ready, ready_rx) = oneshot::channel::<()>();
    let (go, go_rx) = oneshot::channel::<()>();
    let (done, done_rx) = oneshot::channel::<()>();
    let target = ponger.clone();
    tokio::spawn(async move {
        let _ = ready.send(());
        if go_rx.await.is_err() {
            return;
        }
        for i in 0..n {
            let answer = call!(target, PongMsg::Hit, i).expect("the ponger answers");
            assert_eq!(answer, i + 1, "the answer matches the request");
        }
        let _ = done.send(());
    });
    ready_rx.await.expect("the requester starts");

    let start = Instant::now();
    go.send(()).expect("the requester waits for go");
    done_rx.await.expect("the requester finishes");
    let elapsed = start.elapsed();
    ponger.stop(None);
    let _ = handle.await;
    elapsed
}

/// What the spawn-cost creator handles.
enum CreatorMsg {
    Go,
    Ended,
}

/// An actor that stops right after starting and tells its creator from `post_stop`.
struct Ephemeral;

impl Actor for Ephemeral {
    type Msg = ();
    type State = ActorRef<CreatorMsg>;
    type Arguments = ActorRef<CreatorMsg>;

    async fn pre_start(
        &self,
        _myself: ActorRef<()>,
        creator: ActorRef<CreatorMsg>,
    ) -> Result<Self::State, ActorProcessingErr> {
        Ok(creator)
    }

    async fn post_start(
        &self,
        myself: ActorRef<()>,
        _creator: &mut Self::State,
    ) -> Result<(), ActorProcessingErr> {
        myself.stop(None);
        Ok(())
    }

    async fn post_stop(
        &self,
        _myself: ActorRef<()>,
        creator: &mut Self::State,
    ) -> Result<(), ActorProcessingErr> {
        creator.cast(CreatorMsg::Ended)?;
        Ok(())
    }
}

/// The spawn-cost creator.
struct Creator;

/// The creator's state.
struct Creating {
    n: u64,
    ended: u64,
    done: Option<oneshot::Sender<()>>,
}

impl Actor for Creator {
    type Msg = CreatorMsg;
    type State = Creating;
    type Arguments = (u64, oneshot::Sender<()>);

    async fn pre_start(
        &self,
        _myself: ActorRef<CreatorMsg>,
        (n, done): Self::Arguments,
    ) -> Result<Creating, ActorProcessingErr> {
        Ok(Creating {
            n,
            ended: 0,
            done: Some(done),
        })
    }

    async fn handle(
        &self,
        myself: ActorRef<CreatorMsg>,
        m: CreatorMsg,
        state: &mut Creating,
    ) -> Result<(), ActorProcessingErr> {
        match m {
            CreatorMsg::Go => {
                for _ in 0..state.n {
                    Actor::spawn(None, Ephemeral, myself.clone()).await?;
                }
            }
            CreatorMsg::Ended => {
                state.ended += 1;
                if state.ended == state.n {
                    if let Some(done) = state.done.take() {
                        let _ = done.send(());
                    }
                }
            }
        }
        Ok(())
    }
}

/// Spawn cost: a creator actor spawns `n` actors (awaiting each `Actor::spawn`) that stop
/// at once.
pub fn spawn(sizes: &[u64]) -> Vec<Duration> {
    passes(sizes, spawn_pass)
}

async fn spawn_pass(n: u64) -> Duration {
    let (done, done_rx) = oneshot::channel::<()>();
    let (creator, handle) = Actor::spawn(None, Creator, (n, done))
        .await
        .expect("the creator starts");

    let start = Instant::now();
    creator.cast(CreatorMsg::Go).expect("the creator runs");
    done_rx.await.expect("the creator finishes");
    let elapsed = start.elapsed();
    creator.stop(None);
    let _ = handle.await;
    elapsed
}
