//! The stage: a machine that owns one stage's workers, its bounded input queue and the
//! credit it has with the next stage.
//!
//! Back-pressure is credit: a stage grants the previous one room for as many items as
//! its queue holds (`Credit`), and the previous stage never sends more (`Items`). A stage
//! hands an item to a worker only while what waits to go on is under its queue size, so
//! a slow backend holds the transport, which holds the frontend, whose producers are
//! asked for items (`Produce { n }`) only against the credit it has. Nothing spins: every
//! part waits for a message.
//!
//! Items go to workers in batches when they are quick (see `dispatch`). A worker that
//! ends unexpectedly (a killed process) loses only the item it was handling, which goes
//! to the error policy (a process worker's items are kept encoded until answered, so
//! they can be retried); a worker process answers each item of its batch as it finishes
//! it, so the stage knows which that was — the first it has not heard of — and the
//! items after it, never begun, go back to the queue as they were. The worker is
//! replaced after a [`Backoff`]. A frontend worker's replacement resumes its share
//! after the items already received.

use std::collections::VecDeque;
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};

use super::builder::{Kind, Role, StageSpec};
use super::messages::{
    Begin, Credit, Done, Drain, End, Exhausted, Failure, Finish, Halt, Handled, Items, Made,
    PartOf, Produce, Produced, Ready, StageStats, Wire, Work,
};
use super::policy::{Action, ErrorPolicy};
use super::roles::WorkerInfo;
use super::stats::StageStatistics;
use super::worker::StageRunner;
use crate::backoff::Backoff;
use crate::executor::delayed::Delayed;
use crate::message::{codec, AnyMessage};
use crate::object::{AddressMap, AnyObject, Context, Threaded};
use crate::request::Delay;
use crate::runtime::Envelope;
use crate::standard::{Returned, Start, Stop};
use crate::{Address, Message};

/// The most items a producer is asked for at once (it answers `Finish` only between
/// batches).
const MAX_CHUNK: u64 = 64;

/// The most items one `Work` carries.
const MAX_BATCH: usize = 32;

/// The least work (by the stage's mean time per item) a batch is worth: below it, one
/// worker takes the items rather than several each a few, since handing work to a
/// worker (waking its thread) costs more than the items themselves.
const MIN_BATCH_SECONDS: f64 = 50e-6;

/// An item in the stage.
struct Item {
    item: AnyMessage,
    /// Failed attempts so far.
    failures: u32,
    /// Still holds a slot of the queue granted to the previous stage.
    fresh: bool,
}

enum State {
    /// `Begin` sent; `Ready` not yet.
    Starting,
    Idle,
    /// Handling items, in order, those not answered yet; a process worker's are kept
    /// encoded (to retry if it dies), with each item's failures so far.
    Busy {
        batch: VecDeque<(Option<Vec<u8>>, u32)>,
    },
    /// A producer asked for `asked` more items.
    Producing {
        asked: u64,
    },
    /// A producer whose share is done.
    Exhausted,
}

struct Member {
    index: usize,
    state: State,
    born: Instant,
}

#[derive(Default)]
struct Counters {
    items_in: u64,
    done: u64,
    items_out: u64,
    errors: u64,
    retries: u64,
    skipped: u64,
    replaced: u64,
    undeliverable: u64,
    duplicates: u64,
    busy: f64,
}

/// Fires when the earliest delayed retry is due.
#[derive(Debug, Clone, Copy, Serialize, Deserialize, Message)]
#[message(name = "pipeline.RetryDue")]
struct RetryDue;

/// One stage of a pipeline; see the [module docs](self).
pub(crate) struct Stage {
    role: Role,
    name: &'static str,
    spec: StageSpec,
    upstream: Option<Address>,
    downstream: Option<Address>,
    queue: VecDeque<Item>,
    retries: Delayed<Item>,
    retry_at: Option<Instant>,
    outbox: VecDeque<AnyMessage>,
    /// Items the next stage has room for.
    credit: u64,
    /// Queue slots freed and not yet granted back to the previous stage.
    owed: u64,
    members: AddressMap<Member>,
    /// Producers that ended, by share: items of theirs still arriving over a closing link
    /// count for their share (the replacement resumes after them).
    gone: AddressMap<usize>,
    /// Idle workers, the one idle the shortest time last.
    idle: VecDeque<Address>,
    upstream_ended: bool,
    draining: bool,
    /// An error policy or a worker that could not start said stop: no more work.
    failing: bool,
    ending: bool,
    respawn: Backoff,
    respawning: usize,
    /// Per frontend share: items received, failures in a row, done.
    produced_by: Vec<u64>,
    fails_in_row: Vec<u32>,
    share_done: Vec<bool>,
    counters: Counters,
    began: Instant,
    /// Reused by `done` (one allocation less per answer).
    scratch: Vec<u32>,
}

impl Stage {
    pub(crate) fn new(spec: StageSpec) -> Self {
        let n = spec.workers.count;
        Stage {
            role: spec.role,
            name: spec.role.name(),
            spec,
            upstream: None,
            downstream: None,
            queue: VecDeque::new(),
            retries: Delayed::default(),
            retry_at: None,
            outbox: VecDeque::new(),
            credit: 0,
            owed: 0,
            members: AddressMap::default(),
            gone: AddressMap::default(),
            idle: VecDeque::new(),
            upstream_ended: false,
            draining: false,
            failing: false,
            ending: false,
            respawn: Backoff::growing(Duration::from_millis(10), Duration::from_secs(2))
                .jitter(0.25)
                .healthy_after(Some(Duration::from_secs(1))),
            respawning: 0,
            produced_by: vec![0; n],
            fails_in_row: vec![0; n],
            share_done: vec![false; n],
            counters: Counters::default(),
            began: Instant::now(),
            scratch: Vec::new(),
        }
    }

    fn queue_size(&self) -> usize {
        self.spec.workers.queue
    }

    fn policy(&self) -> &ErrorPolicy {
        &self.spec.workers.policy
    }

    fn remote(&self) -> bool {
        matches!(self.spec.workers.kind, Kind::Processes(_))
    }

    fn start_worker(&mut self, cx: &mut Context<Self>, index: usize) {
        let object = match &self.spec.workers.kind {
            Kind::Threads => AnyObject::new(Threaded(StageRunner::new())),
            Kind::Async => AnyObject::new(StageRunner::new()),
            Kind::Processes(p) => AnyObject::new(p.clone()),
        };
        let worker = cx.create(object);
        let part = match (&self.spec.make.described, self.remote()) {
            (Some(describe), true) => PartOf::Described(describe()),
            _ => PartOf::Here((self.spec.make.local)()),
        };
        let info = WorkerInfo {
            stage: self.name.to_string(),
            index,
            workers: self.spec.workers.count,
            resume_after: self.produced_by.get(index).copied().unwrap_or(0),
        };
        self.members.insert(
            worker,
            Member {
                index,
                state: State::Starting,
                born: Instant::now(),
            },
        );
        if let Err(e) = cx.try_send(worker, Begin { info, part }) {
            self.fail(
                cx,
                format!("the {} worker {index} could not be started: {e}", self.name),
            );
        }
    }

    fn fail(&mut self, cx: &mut Context<Self>, reason: String) {
        // Once ending, the workers being stopped may answer with faults (a process
        // stopped before its link was up answers its `Begin` so): nothing fails then.
        if self.failing || self.ending {
            return;
        }
        self.failing = true;
        tracing::warn!(target: "strata::pipeline", stage = self.name, %reason, "stage stops the pipeline");
        let parent = cx.parent();
        cx.send(parent, Failure { reason });
    }

    fn ready(&mut self, cx: &mut Context<Self>, worker: Address) {
        let Some(m) = self.members.get_mut(&worker) else {
            return;
        };
        if !matches!(m.state, State::Starting) {
            return;
        }
        if self.role == Role::Frontend {
            if self.draining || self.share_done[m.index] {
                m.state = State::Exhausted;
                self.share_done[m.index] = true;
                cx.send(worker, Finish);
            } else {
                m.state = State::Producing { asked: 0 };
                self.give_credit(cx);
            }
        } else {
            m.state = State::Idle;
            self.idle.push_back(worker);
            self.dispatch(cx);
        }
        self.maybe_end(cx);
    }

    fn items(&mut self, cx: &mut Context<Self>, items: Vec<AnyMessage>) {
        self.counters.items_in += items.len() as u64;
        self.queue.extend(items.into_iter().map(|item| Item {
            item,
            failures: 0,
            fresh: true,
        }));
        self.dispatch(cx);
    }

    /// Hands queued items to idle workers while what waits to go on has room — an equal
    /// share of the queue, up to [`MAX_BATCH`], when items are quick, otherwise one item
    /// — and grants the freed slots back to the previous stage. A worker process
    /// answers each item of its batch as it finishes it (`one_by_one`).
    fn dispatch(&mut self, cx: &mut Context<Self>) {
        while !self.failing && self.outbox.len() < self.queue_size() && !self.queue.is_empty() {
            // The worker idle the shortest time first: when quick items need fewer
            // workers than the stage has, the same ones stay busy and the others sleep
            // (a worker handed a batch now and then would be woken each time).
            let Some(worker) = self.idle.pop_back() else {
                break;
            };
            if !matches!(
                self.members.get(&worker).map(|m| &m.state),
                Some(State::Idle)
            ) {
                continue;
            }
            // Idle workers, this one among them.
            let idle = self
                .members
                .values()
                .filter(|m| matches!(m.state, State::Idle))
                .count()
                .max(1);
            // Batches only for quick items (a batch of slow ones would make the tail
            // uneven and the counts move in jumps): once 16 are done, under 20 µs each.
            // A worker process answers each item of a batch as it finishes it, so one
            // that dies loses only the item it was handling (see `worker_ended`).
            let remote = self.remote();
            let quick =
                self.counters.done >= 16 && self.counters.busy < 20e-6 * self.counters.done as f64;
            let room = self.queue_size() - self.outbox.len();
            let most = if quick { MAX_BATCH.min(room) } else { 1 };
            let worth = if quick {
                let mean = self.counters.busy / self.counters.done as f64;
                (MIN_BATCH_SECONDS / mean.max(1e-9))
                    .ceil()
                    .min(MAX_BATCH as f64) as usize
            } else {
                1
            };
            let k = self.queue.len().div_ceil(idle).max(worth).clamp(1, most);
            let mut items = Vec::with_capacity(k);
            let mut batch = VecDeque::with_capacity(k);
            for mut item in self.queue.drain(..k.min(self.queue.len())) {
                if item.fresh {
                    item.fresh = false;
                    self.owed += 1;
                }
                let copy = if remote {
                    codec::to_binary(&item.item).ok()
                } else {
                    None
                };
                batch.push_back((copy, item.failures));
                items.push(item.item);
            }
            if let Some(m) = self.members.get_mut(&worker) {
                m.state = State::Busy { batch };
            }
            let work = Work {
                items,
                one_by_one: remote,
            };
            if let Err(e) = cx.try_send(worker, work) {
                // Gone: its `Returned` will come, and handle the items it took with it.
                tracing::debug!(target: "strata::pipeline", stage = self.name, %worker, error = %e, "a worker refused its items");
            }
        }
        self.grant(cx);
    }

    fn grant(&mut self, cx: &mut Context<Self>) {
        let Some(up) = self.upstream else {
            return;
        };
        let threshold = (self.queue_size() as u64 / 4).max(1);
        if self.owed > 0 && (self.owed >= threshold || self.queue.is_empty()) {
            cx.send(up, Credit { n: self.owed });
            self.owed = 0;
        }
    }

    /// Sends what waits to go on, as far as the next stage's credit goes.
    fn flush(&mut self, cx: &mut Context<Self>) {
        if self.failing {
            // The pipeline is being halted: what waits stays, counted as dropped.
            return;
        }
        let Some(down) = self.downstream else {
            // The last stage: outputs end here.
            self.counters.items_out += self.outbox.len() as u64;
            self.outbox.clear();
            return;
        };
        if self.credit == 0 || self.outbox.is_empty() {
            return;
        }
        let k = (self.credit as usize).min(self.outbox.len());
        let items: Vec<AnyMessage> = self.outbox.drain(..k).collect();
        self.credit -= k as u64;
        self.counters.items_out += k as u64;
        if let Err(e) = cx.try_send(down, Items { items }) {
            tracing::warn!(target: "strata::pipeline", stage = self.name, error = %e, items = k, "the next stage is gone");
            self.counters.items_out -= k as u64;
            self.counters.undeliverable += k as u64;
        }
    }

    /// A frontend asks its producers for items against the credit it has.
    fn give_credit(&mut self, cx: &mut Context<Self>) {
        if self.draining || self.failing {
            return;
        }
        let asked: u64 = self
            .members
            .values()
            .map(|m| match m.state {
                State::Producing { asked } => asked,
                _ => 0,
            })
            .sum();
        let mut available = self.credit.saturating_sub(asked + self.outbox.len() as u64);
        if available == 0 {
            return;
        }
        let waiting: Vec<Address> = self
            .members
            .iter()
            .filter(|(_, m)| matches!(m.state, State::Producing { asked: 0 }))
            .map(|(a, _)| *a)
            .collect();
        if waiting.is_empty() {
            return;
        }
        let each = (available / waiting.len() as u64).clamp(1, MAX_CHUNK);
        for worker in waiting {
            if available == 0 {
                break;
            }
            let n = each.min(available);
            available -= n;
            if let Some(m) = self.members.get_mut(&worker) {
                m.state = State::Producing { asked: n };
            }
            let _ = cx.try_send(worker, Produce { n });
        }
    }

    fn done(&mut self, cx: &mut Context<Self>, worker: Address, d: Done) {
        let Some(m) = self.members.get_mut(&worker) else {
            // A late answer from a worker that ended: its items went to the policy when
            // it ended.
            return;
        };
        let State::Busy { batch } = &mut m.state else {
            return;
        };
        // The first items of the batch, in order (a worker process answers one at a time).
        let k = d.results.len().min(batch.len());
        let mut failures = std::mem::take(&mut self.scratch);
        failures.clear();
        failures.extend(batch.drain(..k).map(|(_, f)| f));
        if batch.is_empty() {
            m.state = State::Idle;
            self.idle.push_back(worker);
        }
        self.counters.busy += d.seconds;
        let mut outputs = d.outputs.into_iter();
        for (handled, &failures) in d.results.into_iter().zip(&failures) {
            match handled {
                Handled::Done { outputs: n } => {
                    self.counters.done += 1;
                    self.outbox.extend(outputs.by_ref().take(n as usize));
                }
                Handled::Failed { item, reason } => {
                    self.item_failed(cx, item, failures + 1, reason)
                }
            }
        }
        self.scratch = failures;
        self.flush(cx);
        self.dispatch(cx);
        self.maybe_end(cx);
    }

    /// Applies the error policy to an item that just failed for the `failures`-th time.
    fn item_failed(
        &mut self,
        cx: &mut Context<Self>,
        item: AnyMessage,
        failures: u32,
        reason: String,
    ) {
        self.counters.errors += 1;
        let item = Item {
            item,
            failures,
            fresh: false,
        };
        match self.policy().decide(failures) {
            Action::Skip => {
                self.counters.skipped += 1;
                tracing::debug!(target: "strata::pipeline", stage = self.name, %reason, "item skipped");
            }
            Action::Retry(wait) => {
                self.counters.retries += 1;
                if wait.is_zero() {
                    self.queue.push_front(item);
                } else {
                    self.retries.push(Instant::now() + wait, item);
                    self.arm_retry(cx);
                }
            }
            Action::Stop => {
                self.queue.push_front(item);
                let why = format!(
                    "an item failed in the {} ({failures} attempts): {reason}",
                    self.name
                );
                self.fail(cx, why);
            }
        }
    }

    fn arm_retry(&mut self, cx: &mut Context<Self>) {
        match self.retries.next_due() {
            Some(due) if self.retry_at != Some(due) => {
                cx.start(RetryDue, due.saturating_duration_since(Instant::now()));
                self.retry_at = Some(due);
            }
            _ => {}
        }
    }

    fn retry_due(&mut self, cx: &mut Context<Self>) {
        self.retry_at = None;
        let now = Instant::now();
        while let Some(item) = self.retries.pop_due(now) {
            self.queue.push_back(item);
        }
        self.arm_retry(cx);
        self.dispatch(cx);
    }

    fn produced(&mut self, cx: &mut Context<Self>, worker: Address, p: Produced) {
        let Some(index) = self.producer(worker, p.made.len() as u64) else {
            return;
        };
        self.counters.busy += p.seconds;
        for (place, made) in (p.seq..).zip(p.made) {
            if !self.in_place(index, place) {
                continue;
            }
            match made {
                Made::Item(item) => {
                    self.fails_in_row[index] = 0;
                    self.counters.items_in += 1;
                    self.counters.done += 1;
                    self.outbox.push_back(item);
                }
                Made::Failed(reason) => self.produce_failed(cx, index, reason),
            }
        }
        self.flush(cx);
        self.give_credit(cx);
    }

    /// The share of the producer at `worker` (alive, or ended with items still
    /// arriving), counting `n` of the items it was asked for as answered.
    fn producer(&mut self, worker: Address, n: u64) -> Option<usize> {
        match self.members.get_mut(&worker) {
            Some(m) => {
                if let State::Producing { asked } = &mut m.state {
                    *asked = asked.saturating_sub(n);
                }
                Some(m.index)
            }
            None => self.gone.get(&worker).copied(),
        }
    }

    /// Whether the answer at place `seq` of share `index` is new (then the share's count
    /// moves past it); an answer the stage had already, from a producer that died and
    /// one that replaced it, is dropped and counted.
    fn in_place(&mut self, index: usize, seq: u64) -> bool {
        if seq < self.produced_by[index] {
            self.counters.duplicates += 1;
            tracing::debug!(target: "strata::pipeline", index, seq, "an item produced twice was dropped");
            return false;
        }
        self.produced_by[index] = seq + 1;
        true
    }

    /// A call to `produce` of share `index` failed.
    fn produce_failed(&mut self, cx: &mut Context<Self>, index: usize, reason: String) {
        self.fails_in_row[index] += 1;
        self.counters.errors += 1;
        match self.policy().decide(self.fails_in_row[index]) {
            Action::Skip => self.counters.skipped += 1,
            Action::Retry(_) => self.counters.retries += 1,
            Action::Stop => {
                let why = format!("the frontend worker {index} failed: {reason}");
                self.fail(cx, why);
            }
        }
    }

    fn exhausted(&mut self, cx: &mut Context<Self>, worker: Address) {
        let Some(m) = self.members.get_mut(&worker) else {
            return;
        };
        m.state = State::Exhausted;
        self.share_done[m.index] = true;
        self.give_credit(cx);
        self.maybe_end(cx);
    }

    fn drain(&mut self, cx: &mut Context<Self>) {
        if self.role != Role::Frontend || self.draining {
            return;
        }
        self.draining = true;
        let producing: Vec<Address> = self
            .members
            .iter()
            .filter(|(_, m)| matches!(m.state, State::Producing { .. }))
            .map(|(a, _)| *a)
            .collect();
        for worker in producing {
            cx.send(worker, Finish);
        }
        self.maybe_end(cx);
    }

    fn worker_ended(&mut self, cx: &mut Context<Self>, worker: Address, value: AnyMessage) {
        let Some(m) = self.members.remove(&worker) else {
            return;
        };
        if self.ending {
            return;
        }
        let why = match value.as_fault() {
            Some(f) => f.reason(),
            None => format!("it returned {}", value.type_name()),
        };
        let index = m.index;
        if self.role == Role::Frontend {
            self.gone.insert(worker, index);
        }
        match m.state {
            State::Starting => {
                let reason = format!("the {} worker {index} could not start: {why}", self.name);
                self.fail(cx, reason);
                return;
            }
            State::Busy { mut batch } => {
                // The first item not answered is the one the worker was handling: it
                // goes to the policy. A worker process answers each item as it finishes
                // it, so the items after that one were never begun: they go back to the
                // front of the queue as they were, for another worker.
                let mut unbegun = Vec::new();
                if let Some((copy, failures)) = batch.pop_front() {
                    let reason = format!("the worker handling it ended: {why}");
                    match copy.and_then(|bytes| codec::from_binary(&bytes).ok()) {
                        Some(item) => self.item_failed(cx, item, failures + 1, reason),
                        None => self.lost_with_worker(),
                    }
                }
                for (copy, failures) in batch {
                    match copy.and_then(|bytes| codec::from_binary(&bytes).ok()) {
                        Some(item) => unbegun.push(Item {
                            item,
                            failures,
                            fresh: false,
                        }),
                        None => self.lost_with_worker(),
                    }
                }
                for item in unbegun.into_iter().rev() {
                    self.queue.push_front(item);
                }
            }
            State::Exhausted => {
                self.maybe_end(cx);
                return;
            }
            State::Producing { .. } if self.draining => {
                self.share_done[index] = true;
                self.maybe_end(cx);
                return;
            }
            _ => {}
        }
        if self.failing {
            return;
        }
        tracing::warn!(target: "strata::pipeline", stage = self.name, index, %why, "a worker ended; replacing it");
        self.counters.replaced += 1;
        let after = self
            .respawn
            .ended_after(m.born.elapsed())
            .unwrap_or(Duration::from_secs(2));
        self.respawning += 1;
        let timer = cx.create(Delay::new(after));
        cx.on_return(timer, move |s: &mut Self, cx: &mut Context<Self>, _| {
            s.respawning -= 1;
            if s.ending || s.failing {
                return;
            }
            if s.role == Role::Frontend && (s.draining || s.share_done[index]) {
                s.share_done[index] = true;
                s.maybe_end(cx);
                return;
            }
            s.start_worker(cx, index);
        });
        self.dispatch(cx);
        self.maybe_end(cx);
    }

    /// An item a worker of this process took with it when it ended (it cannot really
    /// happen: panics are caught per call): counted as an error and skipped.
    fn lost_with_worker(&mut self) {
        self.counters.errors += 1;
        self.counters.skipped += 1;
    }

    /// Items the workers are handling.
    fn busy_count(&self) -> usize {
        self.members
            .values()
            .map(|m| match &m.state {
                State::Busy { batch } => batch.len(),
                _ => 0,
            })
            .sum()
    }

    /// Ends the stage once its work is done: the workers are stopped (and cleaned up)
    /// before the stage returns its statistics; the pipeline then tells the next stage
    /// that nothing more will come, so the stages end in order.
    fn maybe_end(&mut self, cx: &mut Context<Self>) {
        if self.ending || self.failing || !self.outbox.is_empty() {
            return;
        }
        let finished = match self.role {
            Role::Frontend => {
                self.share_done.iter().all(|d| *d)
                    && !self
                        .members
                        .values()
                        .any(|m| matches!(m.state, State::Producing { .. } | State::Starting))
            }
            _ => {
                self.upstream_ended
                    && self.queue.is_empty()
                    && self.retries.is_empty()
                    && self.busy_count() == 0
            }
        };
        if !finished {
            return;
        }
        self.ending = true;
        let s = self.statistics();
        tracing::debug!(target: "strata::pipeline", stage = self.name, done = s.done, "stage finished");
        cx.abort(s);
    }

    /// Ends now: what is still in the stage is counted as left.
    fn halt(&mut self, cx: &mut Context<Self>) {
        if self.ending {
            return;
        }
        self.ending = true;
        let mut s = self.statistics();
        s.left = (self.queue.len() + self.retries.len() + self.busy_count()) as u64;
        s.dropped += self.outbox.len() as u64;
        tracing::debug!(target: "strata::pipeline", stage = self.name, left = s.left, "stage halted");
        // Without waiting for the workers: a thread busy in user code finishes (and
        // cleans up) in the background; processes are stopped.
        cx.complete(s);
    }

    fn statistics(&self) -> StageStatistics {
        let w = &self.spec.workers;
        StageStatistics {
            stage: self.name.to_string(),
            kind: w.kind.name().to_string(),
            workers: w.count as u64,
            items_in: self.counters.items_in,
            done: self.counters.done,
            items_out: self.counters.items_out,
            errors: self.counters.errors,
            retries: self.counters.retries,
            skipped: self.counters.skipped,
            left: 0,
            dropped: self.counters.undeliverable,
            duplicates: self.counters.duplicates,
            replaced: self.counters.replaced,
            queued: (self.queue.len() + self.retries.len()) as u64,
            running: self.busy_count() as u64,
            waiting_to_go_on: self.outbox.len() as u64,
            busy_seconds: self.counters.busy,
            seconds: self.began.elapsed().as_secs_f64(),
        }
    }
}

#[crate::machine]
impl Stage {
    #[guard(sender == cx.address())]
    fn on_start(&mut self, cx: &mut Context<Self>, _: Start) {
        self.began = Instant::now();
        for index in 0..self.spec.workers.count {
            self.start_worker(cx, index);
        }
    }

    #[guard(sender == cx.parent())]
    fn on_wire(&mut self, cx: &mut Context<Self>, w: Wire) {
        self.upstream = w.upstream;
        self.downstream = w.downstream;
        if let Some(up) = self.upstream {
            cx.send(
                up,
                Credit {
                    n: self.queue_size() as u64,
                },
            );
        }
    }

    fn on_returned(&mut self, cx: &mut Context<Self>, r: Returned) {
        let from = cx.sender();
        self.worker_ended(cx, from, r.value);
    }

    #[guard(Some(sender) == self.upstream)]
    fn on_items(&mut self, cx: &mut Context<Self>, m: Items) {
        self.items(cx, m.items);
    }

    #[guard(Some(sender) == self.downstream)]
    fn on_credit(&mut self, cx: &mut Context<Self>, c: Credit) {
        self.credit += c.n;
        self.flush(cx);
        if self.role == Role::Frontend {
            self.give_credit(cx);
        } else {
            self.dispatch(cx);
        }
        self.maybe_end(cx);
    }

    #[guard(sender == cx.parent())]
    fn on_end(&mut self, cx: &mut Context<Self>, _: End) {
        self.upstream_ended = true;
        self.maybe_end(cx);
    }

    fn on_ready(&mut self, cx: &mut Context<Self>, _: Ready) {
        let from = cx.sender();
        self.ready(cx, from);
    }

    fn on_done(&mut self, cx: &mut Context<Self>, d: Done) {
        let from = cx.sender();
        self.done(cx, from, d);
    }

    fn on_produced(&mut self, cx: &mut Context<Self>, p: Produced) {
        let from = cx.sender();
        self.produced(cx, from, p);
    }

    fn on_exhausted(&mut self, cx: &mut Context<Self>, _: Exhausted) {
        let from = cx.sender();
        self.exhausted(cx, from);
    }

    #[guard(sender == cx.parent())]
    fn on_drain(&mut self, cx: &mut Context<Self>, _: Drain) {
        self.drain(cx);
    }

    #[guard(sender == cx.parent())]
    fn on_halt(&mut self, cx: &mut Context<Self>, _: Halt) {
        self.halt(cx);
    }

    fn on_stop(&mut self, cx: &mut Context<Self>, _: Stop) {
        self.halt(cx);
    }

    fn on_stats(&mut self, _cx: &mut Context<Self>, _: StageStats) -> StageStatistics {
        self.statistics()
    }

    #[guard(sender == cx.address())]
    fn on_retry_due(&mut self, cx: &mut Context<Self>, _: RetryDue) {
        self.retry_due(cx);
    }

    fn on_other(&mut self, cx: &mut Context<Self>, e: Envelope) {
        let from = e.sender();
        if let Some(m) = self.members.get(&from) {
            // `Unread`: the worker ended before it read its `Begin`; its `Returned`, next,
            // says why (a program that is missing, a setup that panicked).
            if matches!(m.state, State::Starting) && !e.is::<crate::standard::Unread>() {
                if let Some(f) = e.message().as_fault() {
                    let reason = format!(
                        "the {} worker {} could not be set up: {}",
                        self.name,
                        m.index,
                        f.reason()
                    );
                    self.fail(cx, reason);
                    return;
                }
            }
        }
        tracing::debug!(target: "strata::pipeline", stage = self.name, %from, message = e.type_name(), "message ignored");
    }
}
