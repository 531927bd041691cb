//! The worker: one object per worker of a stage, with its own part (and so its own
//! state), set up once and cleaned up once.
//!
//! [`StageRunner`] is a machine. A stage makes it a thread worker (`Threaded`), an async
//! worker (the machine on the shared runtime) or the top object of a worker *process*
//! (its program calls `strata::main(Threaded(StageRunner::new().transport::<T>()))`,
//! registering the part types it can run). Its first message, `Begin`, brings its part
//! and who it is; `setup` runs then and is answered `Ready` (or the fault). Then it
//! answers `Work` (an item or a few) with `Done` (each item's outputs or failure: one
//! `Done` for the lot, or one per item when the stage asks, as it does of a worker
//! process) and `Produce { n }` with `Produced` batches.
//!
//! A producer holds what it makes while its calls to `produce` are quick and sends it
//! when the `n` calls are made, the share ends, or [`HOLD_FOR`] has passed since the
//! first call of the batch began — checked after each call, and by a watchdog task
//! while a call is still running, so an item made before a call that blocks (reading a
//! terminal) waits no more than about [`HOLD_FOR`]. The watchdog does not poll: it sleeps
//! until the held batch is due, and while nothing is held it waits to be told that
//! something is (or that the call of `on_produce` it watches ended). The batch and its
//! watchdog share one lock, and a batch is sent under it, so batches leave in the order
//! of their places.
//! Panics in the user's code are caught per call and become failures, so a worker goes
//! on. `cleanup` runs when the worker is stopped, and — should the worker end any other
//! way in its process — when it is dropped.

use std::sync::Arc;
use std::time::{Duration, Instant};

use parking_lot::Mutex;

use super::messages::{
    Begin, Done, Exhausted, Finish, Handled, Made, PartOf, Produce, Produced, Ready, Work,
};
use super::roles::{
    caught, register_backend, register_frontend, register_transport, Backend, Frontend, Part,
    Transport, WorkerInfo,
};
use crate::message::Message;
use crate::object::{Context, Postbox};
use crate::standard::{Aborted, Stop};
use crate::Address;

/// The longest a producer holds an item it made before sending it on (see the module
/// docs): short enough not to be seen by a person at a terminal, long enough that quick
/// items go in batches of the `n` asked for.
pub(crate) const HOLD_FOR: Duration = Duration::from_millis(1);

/// What a producer made and has not sent yet, shared with its watchdog.
#[derive(Default)]
struct Held {
    made: Vec<Made>,
    /// The place in the share of the first of `made` (so of the next call, when empty).
    seq: u64,
    /// When the first call of `made` began (the calls follow each other, so the batch
    /// took from then to `last`), and when it is to be sent at the latest.
    since: Option<(Instant, Instant)>,
    /// When the last call of `made` ended.
    last: Option<Instant>,
    /// The stage.
    to: Address,
    /// Which call of `on_produce` is running (0: none): a watchdog watches one call.
    call: u64,
    calls: u64,
}

impl Held {
    /// Sends what is held, under the lock (so batches leave in order).
    fn send(&mut self, postbox: &Postbox) {
        if self.made.is_empty() {
            return;
        }
        let made = std::mem::take(&mut self.made);
        let seq = self.seq;
        self.seq += made.len() as u64;
        let seconds = match (self.since.take(), self.last) {
            (Some((since, _)), Some(last)) => last.saturating_duration_since(since).as_secs_f64(),
            _ => 0.0,
        };
        postbox.send(self.to, Produced { made, seq, seconds });
    }
}

/// A producer's batch and what wakes its watchdog.
#[derive(Default)]
struct Batch {
    held: Mutex<Held>,
    /// Told when a batch begins (its first item is held) and when a call of
    /// `on_produce` ends. A `Notify` keeps one permit, so a wake given before the
    /// watchdog waits is not lost.
    wake: tokio::sync::Notify,
}

/// Watches one call of `on_produce`: while it runs, sends what has been held for
/// [`HOLD_FOR`] (a call to `produce` that blocks would otherwise keep it). It sleeps
/// until the held batch is due, or, while nothing is held, until told otherwise.
async fn watch(batch: Arc<Batch>, postbox: Postbox, call: u64) {
    loop {
        let due = {
            let mut h = batch.held.lock();
            if h.call != call {
                return;
            }
            match h.since {
                Some((_, due)) if Instant::now() >= due => {
                    h.send(&postbox);
                    None
                }
                Some((_, due)) => Some(due),
                None => None,
            }
        };
        match due {
            Some(due) => tokio::time::sleep_until(due.into()).await,
            None => batch.wake.notified().await,
        }
    }
}

/// The object every pipeline worker is (a machine): it gets its part and who it is,
/// runs `setup`, then handles items one at a time — panics caught per call, so it goes on
/// — and runs `cleanup` when it is stopped. As a worker process's top object it runs the
/// part types registered with [`frontend`](Self::frontend),
/// [`transport`](Self::transport) and [`backend`](Self::backend); see [the pipeline
/// docs](super).
#[derive(Default)]
pub struct StageRunner {
    part: Option<(Box<dyn Part>, WorkerInfo)>,
    /// Told to produce no more.
    finished: bool,
    /// A producer's batch (and its place in its share: calls to `produce` that gave an
    /// item or an error).
    batch: Arc<Batch>,
    /// `the STAGE`, for the faults of panics.
    what: String,
}

impl std::fmt::Debug for StageRunner {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StageRunner")
            .field("worker", &self.part.as_ref().map(|(_, w)| w))
            .finish()
    }
}

impl StageRunner {
    /// A worker that runs the parts registered in this process (and any part sent from
    /// this process).
    pub fn new() -> Self {
        StageRunner::default()
    }

    /// Registers `F` so frontend workers of it sent from another process run here.
    pub fn frontend<F: Frontend + Message>(self) -> Self {
        register_frontend::<F>();
        self
    }

    /// Registers `T` so transport workers of it sent from another process run here.
    pub fn transport<T: Transport + Message>(self) -> Self {
        register_transport::<T>();
        self
    }

    /// Registers `B` so backend workers of it sent from another process run here.
    pub fn backend<B: Backend + Message>(self) -> Self {
        register_backend::<B>();
        self
    }

    fn clean_up(&mut self) {
        if let Some((mut part, info)) = self.part.take() {
            let what = format!("the {} worker's cleanup", info.stage);
            if let Err(e) = caught(&what, || {
                part.cleanup(&info);
                Ok(())
            }) {
                tracing::warn!(target: "strata::pipeline", error = %e, "cleanup failed");
            }
        }
    }
}

impl Drop for StageRunner {
    fn drop(&mut self) {
        self.clean_up();
    }
}

#[crate::machine]
impl StageRunner {
    fn on_begin(&mut self, cx: &mut Context<Self>, b: Begin) {
        let Begin { info, part } = b;
        let mut part = match part {
            PartOf::Here(p) => p,
            PartOf::Described(m) => match super::roles::build_part(m) {
                Ok(p) => p,
                Err(e) => return cx.reply(e),
            },
            PartOf::Unknown(e) => return cx.reply(e),
        };
        let what = format!("the {} worker's setup", info.stage);
        match caught(&what, || part.setup(&info)) {
            Ok(()) => {
                self.batch.held.lock().seq = info.resume_after;
                self.what = format!("the {}", info.stage);
                self.part = Some((part, info));
                cx.reply(Ready);
            }
            Err(e) => cx.reply(e),
        }
    }

    fn on_work(&mut self, cx: &mut Context<Self>, w: Work) {
        let mut began = Instant::now();
        let Some((part, _)) = self.part.as_mut() else {
            let results = w
                .items
                .into_iter()
                .map(|item| Handled::Failed {
                    item,
                    reason: "the worker was not set up".into(),
                })
                .collect();
            return cx.reply(Done {
                results,
                outputs: Vec::new(),
                seconds: 0.0,
            });
        };
        let what = self.what.as_str();
        let each = w.one_by_one;
        let mut results = Vec::with_capacity(if each { 1 } else { w.items.len() });
        let mut outputs = Vec::new();
        for item in w.items {
            let before = outputs.len();
            match caught(what, || part.work(&item, &mut outputs)) {
                Ok(()) => results.push(Handled::Done {
                    outputs: (outputs.len() - before) as u32,
                }),
                Err(e) => {
                    // Outputs of a call that failed do not go on (a retry starts afresh).
                    outputs.truncate(before);
                    results.push(Handled::Failed {
                        item,
                        reason: e.reason,
                    });
                }
            }
            if each {
                // Told at once, so a worker process that dies has reported every item
                // it finished.
                let now = Instant::now();
                cx.reply(Done {
                    results: std::mem::take(&mut results),
                    outputs: std::mem::take(&mut outputs),
                    seconds: (now - began).as_secs_f64(),
                });
                began = now;
            }
        }
        if !results.is_empty() {
            cx.reply(Done {
                results,
                outputs,
                seconds: began.elapsed().as_secs_f64(),
            });
        }
    }

    fn on_produce(&mut self, cx: &mut Context<Self>, p: Produce) {
        if self.finished {
            return;
        }
        let Some((part, _)) = self.part.as_mut() else {
            self.finished = true;
            return cx.reply(Exhausted);
        };
        let postbox = cx.postbox();
        let batch = self.batch.clone();
        let call = {
            let mut h = batch.held.lock();
            h.to = cx.sender();
            h.calls += 1;
            h.call = h.calls;
            h.call
        };
        if p.n > 1 {
            crate::runtime::handle().spawn(watch(batch.clone(), postbox.clone(), call));
        }
        // One clock read per call: each call begins when the one before it ended.
        let mut began = Instant::now();
        for _ in 0..p.n {
            let r = caught("the frontend", || part.produce());
            let now = Instant::now();
            let mut h = batch.held.lock();
            let made = match r {
                Ok(Some(item)) => Made::Item(item),
                Ok(None) => {
                    h.send(&postbox);
                    h.call = 0;
                    drop(h);
                    batch.wake.notify_one();
                    self.finished = true;
                    return cx.reply(Exhausted);
                }
                Err(e) => Made::Failed(e.reason),
            };
            h.made.push(made);
            h.last = Some(now);
            let due = match h.since {
                Some((_, due)) => due,
                None => {
                    let due = began + HOLD_FOR;
                    h.since = Some((began, due));
                    if p.n > 1 {
                        // A batch begins: the watchdog sleeps until it is due.
                        batch.wake.notify_one();
                    }
                    due
                }
            };
            if now >= due {
                h.send(&postbox);
            }
            began = now;
        }
        let mut h = batch.held.lock();
        h.send(&postbox);
        h.call = 0;
        drop(h);
        batch.wake.notify_one();
    }

    fn on_finish(&mut self, cx: &mut Context<Self>, _: Finish) {
        if !self.finished {
            self.finished = true;
            cx.reply(Exhausted);
        }
    }

    fn on_stop(&mut self, cx: &mut Context<Self>, _: Stop) {
        self.clean_up();
        cx.complete(Aborted::new("stopped"));
    }
}
