//! The worker: one object per worker of a stage, with its own part (and so its own
//! state), set up once and cleaned up once.
//!
//! [`StageRunner`] is a machine. A stage makes it a thread worker (`Threaded`), an async
//! worker (the machine on the shared runtime) or the top object of a worker *process*
//! (its program calls `strata::main(Threaded(StageRunner::new().transport::<T>()))`,
//! registering the part types it can run). Its first message, `Begin`, brings its part
//! and who it is; `setup` runs then and is answered `Ready` (or the fault). Then it
//! answers `Work` (an item or a few) with `Done` (each item's outputs or failure) and
//! `Produce` with the items, one message each.
//! Panics in the user's code are caught per call and become failures, so a worker goes
//! on. `cleanup` runs when the worker is stopped, and — should the worker end any other
//! way in its process — when it is dropped.

use std::time::Instant;

use super::messages::{
    Begin, Done, Exhausted, Finish, Handled, PartOf, Produce, ProduceFailed, Produced, Ready, Work,
};
use super::roles::{
    caught, register_backend, register_frontend, register_transport, Backend, Frontend, Part,
    Transport, WorkerInfo,
};
use crate::message::{AnyMessage, Message};
use crate::object::Context;
use crate::standard::{Aborted, Stop};

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
    /// A producer's place in its share: calls to `produce` that gave an item or an error.
    seq: u64,
    outputs: Vec<AnyMessage>,
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
                self.seq = info.resume_after;
                self.part = Some((part, info));
                cx.reply(Ready);
            }
            Err(e) => cx.reply(e),
        }
    }

    fn on_work(&mut self, cx: &mut Context<Self>, w: Work) {
        let began = Instant::now();
        let Some((part, info)) = self.part.as_mut() else {
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
                seconds: 0.0,
            });
        };
        let what = format!("the {}", info.stage);
        let mut results = Vec::with_capacity(w.items.len());
        for item in w.items {
            self.outputs.clear();
            let outputs = &mut self.outputs;
            match caught(&what, || part.work(&item, outputs)) {
                Ok(()) => results.push(Handled::Done(std::mem::take(&mut self.outputs))),
                Err(e) => {
                    self.outputs.clear();
                    results.push(Handled::Failed {
                        item,
                        reason: e.reason,
                    });
                }
            }
        }
        cx.reply(Done {
            results,
            seconds: began.elapsed().as_secs_f64(),
        });
    }

    fn on_produce(&mut self, cx: &mut Context<Self>, p: Produce) {
        if self.finished {
            return;
        }
        let Some((part, _)) = self.part.as_mut() else {
            self.finished = true;
            return cx.reply(Exhausted);
        };
        for _ in 0..p.n {
            let began = Instant::now();
            let r = caught("the frontend", || part.produce());
            let seconds = began.elapsed().as_secs_f64();
            let seq = self.seq;
            match r {
                Ok(Some(item)) => cx.reply(Produced { item, seq, seconds }),
                Ok(None) => {
                    self.finished = true;
                    return cx.reply(Exhausted);
                }
                Err(e) => cx.reply(ProduceFailed {
                    reason: e.reason,
                    seq,
                    seconds,
                }),
            }
            self.seq += 1;
        }
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
