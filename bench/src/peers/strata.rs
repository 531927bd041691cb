//! strata: machines on strata's shared runtime (one worker per core), driven by the main
//! thread attached with [`ThreadContext::attach`] as the coordinator.
//!
//! In every benchmark the work itself is machine to machine (the fan-out sender, the pinger
//! and the creator are machines too), so no message crosses to or from an OS thread outside
//! the runtime while the clock runs, as with the other peers. Two variants show other styles:
//! [`pingpong_ask`] makes each request from the attached thread with `ThreadContext::ask`,
//! and [`spawn_async`] creates `Async` objects instead of machines.

use std::time::{Duration, Instant};

use strata::prelude::*;

use crate::workload::{check_fanout, share, Tally, RECEIVERS};

/// A fan-out message: a small struct holding one number.
#[derive(Debug, Serialize, Deserialize, Message)]
#[message(name = "bench.Item")]
struct Item {
    value: u64,
}

/// Sent by every long-lived object to its parent once it runs.
#[derive(Debug, Serialize, Deserialize, Message)]
#[message(name = "bench.Started")]
struct Started;

/// The coordinator's signal to start the measured work.
#[derive(Debug, Serialize, Deserialize, Message)]
#[message(name = "bench.Go")]
struct Go;

/// A receiver's tally, sent once it has its share.
#[derive(Debug, Serialize, Deserialize, Message)]
#[message(name = "bench.Counted")]
struct Counted {
    count: u64,
    sum: u64,
}

/// A request of the ping-pong.
#[derive(Debug, Serialize, Deserialize, Message)]
#[message(name = "bench.Hit")]
struct Hit {
    value: u64,
}

/// The reply to a [`Hit`]: its value plus one.
#[derive(Debug, Serialize, Deserialize, Message)]
#[message(name = "bench.Answer")]
struct Answer {
    value: u64,
}

/// The driving machine has finished its work.
#[derive(Debug, Serialize, Deserialize, Message)]
#[message(name = "bench.Finished")]
struct Finished;

/// A refused send would skew the measurement: end the whole process loudly.
fn refused(what: &str, fault: &Overloaded) -> ! {
    eprintln!("strata-bench: a strata send was refused in {what}: {fault}");
    std::process::exit(3);
}

/// Installs strata's logger as a strata program would (`warn` unless `STRATA_LOG` says
/// otherwise), so refusals and unhandled messages are visible.
fn init_logging() {
    let filter = strata::logging::filter_from_args_and_env();
    if let Err(e) = strata::logging::init(&filter) {
        eprintln!("strata-bench: {e}");
    }
}

/// Waits for the next message of type `T`, skipping the `Returned` of objects stopped at
/// the end of an earlier pass; anything else is a bug in the benchmark.
fn expect<T: Message>(cx: &mut ThreadContext) -> T {
    loop {
        let envelope = cx.recv();
        if envelope.is::<Returned>() {
            continue;
        }
        match envelope.take::<T>() {
            Ok(m) => return m,
            Err(e) => panic!(
                "expected `{}`, got `{}` from {}: {:?}",
                std::any::type_name::<T>(),
                e.type_name(),
                e.sender(),
                e.message()
            ),
        }
    }
}

/// A fan-out receiver: counts what it gets, reports once it has its share.
struct Receiver {
    share: u64,
    tally: Tally,
}

#[strata::machine]
impl Receiver {
    fn started(&mut self, cx: &mut Context<Self>, _: Start) {
        cx.send(cx.parent(), Started);
    }

    fn item(&mut self, cx: &mut Context<Self>, m: Item) {
        self.tally.count += 1;
        self.tally.sum = self.tally.sum.wrapping_add(m.value);
        if self.tally.count == self.share {
            let report = Counted {
                count: self.tally.count,
                sum: self.tally.sum,
            };
            cx.send(cx.parent(), report);
        }
    }
}

/// The fan-out sender: on [`Go`], sends `n` items round-robin to the receivers.
struct Sender {
    targets: Vec<Address>,
    n: u64,
}

#[strata::machine]
impl Sender {
    fn started(&mut self, cx: &mut Context<Self>, _: Start) {
        cx.send(cx.parent(), Started);
    }

    fn go(&mut self, cx: &mut Context<Self>, _: Go) {
        let k = self.targets.len() as u64;
        for i in 0..self.n {
            cx.send(self.targets[(i % k) as usize], Item { value: i });
        }
    }

    fn overloaded(&mut self, _cx: &mut Context<Self>, fault: Overloaded) {
        refused("the fan-out", &fault);
    }
}

/// Fire-and-forget: a sender machine and [`RECEIVERS`] receiver machines whose mailboxes
/// hold a whole share, so no send can be refused.
pub fn fanout(sizes: &[u64]) -> Vec<Duration> {
    init_logging();
    let mut cx = ThreadContext::attach();
    sizes.iter().map(|&n| fanout_pass(&mut cx, n)).collect()
}

fn fanout_pass(cx: &mut ThreadContext, n: u64) -> Duration {
    let share = share(n);
    let options = Options::default().capacity(share as usize + 64);
    let targets: Vec<Address> = (0..RECEIVERS)
        .map(|_| {
            let receiver = Receiver {
                share,
                tally: Tally::default(),
            };
            cx.create_with(receiver, options)
        })
        .collect();
    let sender = cx.create(Sender {
        targets: targets.clone(),
        n,
    });
    for _ in 0..=RECEIVERS {
        expect::<Started>(cx);
    }

    let start = Instant::now();
    cx.send(sender, Go);
    let tallies: Vec<Tally> = (0..RECEIVERS)
        .map(|_| {
            let Counted { count, sum } = expect::<Counted>(cx);
            Tally { count, sum }
        })
        .collect();
    let elapsed = start.elapsed();
    check_fanout(n, &tallies);
    for to in targets.into_iter().chain([sender]) {
        cx.stop(to);
    }
    elapsed
}

/// The ping-pong responder: a handler whose returned value is the reply.
struct Ponger;

#[strata::machine]
impl Ponger {
    fn started(&mut self, cx: &mut Context<Self>, _: Start) {
        cx.send(cx.parent(), Started);
    }

    fn hit(&mut self, _cx: &mut Context<Self>, m: Hit) -> Answer {
        Answer { value: m.value + 1 }
    }
}

/// The ping-pong requester: sends the next [`Hit`] when the previous [`Answer`] arrives.
struct Pinger {
    ponger: Address,
    n: u64,
    done: u64,
}

#[strata::machine]
impl Pinger {
    fn started(&mut self, cx: &mut Context<Self>, _: Start) {
        cx.send(cx.parent(), Started);
    }

    fn go(&mut self, cx: &mut Context<Self>, _: Go) {
        cx.send(self.ponger, Hit { value: 0 });
    }

    fn answer(&mut self, cx: &mut Context<Self>, m: Answer) {
        assert_eq!(m.value, self.done + 1, "the answer matches the request");
        self.done += 1;
        if self.done == self.n {
            cx.send(cx.parent(), Finished);
        } else {
            cx.send(self.ponger, Hit { value: self.done });
        }
    }

    fn overloaded(&mut self, _cx: &mut Context<Self>, fault: Overloaded) {
        refused("the ping-pong", &fault);
    }
}

/// Request-reply, machine to machine: the pinger sends, the ponger's handler returns the
/// reply.
pub fn pingpong(sizes: &[u64]) -> Vec<Duration> {
    init_logging();
    let mut cx = ThreadContext::attach();
    sizes.iter().map(|&n| pingpong_pass(&mut cx, n)).collect()
}

fn pingpong_pass(cx: &mut ThreadContext, n: u64) -> Duration {
    let ponger = cx.create(Ponger);
    let pinger = cx.create(Pinger { ponger, n, done: 0 });
    for _ in 0..2 {
        expect::<Started>(cx);
    }

    let start = Instant::now();
    cx.send(pinger, Go);
    expect::<Finished>(cx);
    let elapsed = start.elapsed();
    cx.stop(pinger);
    cx.stop(ponger);
    elapsed
}

/// Request-reply from the attached main thread: `ThreadContext::ask` for every request.
pub fn pingpong_ask(sizes: &[u64]) -> Vec<Duration> {
    init_logging();
    let mut cx = ThreadContext::attach();
    sizes
        .iter()
        .map(|&n| {
            let ponger = cx.create(Ponger);
            expect::<Started>(&mut cx);
            let start = Instant::now();
            for i in 0..n {
                let value = cx.ask(ponger, Hit { value: i });
                match value.downcast::<Answer>() {
                    Ok(a) => assert_eq!(a.value, i + 1, "the answer matches the request"),
                    Err(other) => panic!("ask gave {other:?} instead of an answer"),
                }
            }
            let elapsed = start.elapsed();
            cx.stop(ponger);
            elapsed
        })
        .collect()
}

/// A machine that ends as soon as it starts.
struct Ephemeral;

#[strata::machine]
impl Ephemeral {
    fn started(&mut self, cx: &mut Context<Self>, _: Start) {
        cx.complete(());
    }
}

/// The spawn-cost creator: on [`Go`] creates `n` children, and reports when all of them
/// have returned.
struct Creator {
    n: u64,
    ended: u64,
    asynchronous: bool,
}

#[strata::machine]
impl Creator {
    fn started(&mut self, cx: &mut Context<Self>, _: Start) {
        cx.send(cx.parent(), Started);
    }

    fn go(&mut self, cx: &mut Context<Self>, _: Go) {
        for _ in 0..self.n {
            if self.asynchronous {
                cx.create(Async::new(|_cx: AsyncContext| async {}));
            } else {
                cx.create(Ephemeral);
            }
        }
    }

    fn returned(&mut self, cx: &mut Context<Self>, r: Returned) {
        assert!(!r.is_fault(), "a child ended with a fault: {:?}", r.value);
        self.ended += 1;
        if self.ended == self.n {
            cx.send(cx.parent(), Finished);
        }
    }
}

/// Spawn cost with machines that end in their `Start` handler.
pub fn spawn(sizes: &[u64]) -> Vec<Duration> {
    spawn_with(sizes, false)
}

/// Spawn cost with `Async` objects whose future ends at once.
pub fn spawn_async(sizes: &[u64]) -> Vec<Duration> {
    spawn_with(sizes, true)
}

fn spawn_with(sizes: &[u64], asynchronous: bool) -> Vec<Duration> {
    init_logging();
    let mut cx = ThreadContext::attach();
    sizes
        .iter()
        .map(|&n| {
            let creator = cx.create(Creator {
                n,
                ended: 0,
                asynchronous,
            });
            expect::<Started>(&mut cx);
            let start = Instant::now();
            cx.send(creator, Go);
            expect::<Finished>(&mut cx);
            let elapsed = start.elapsed();
            cx.stop(creator);
            elapsed
        })
        .collect()
}
