//! The load-testing client: many simulated clients against an HTTP service, with
//! throughput, errors by kind and latency percentiles.
//!
//! Three objects, bottom up:
//!
//! * [`Load`] runs the clients of one process: it keeps `clients` of them going (a client
//!   that completes is replaced by a new one in its slot), stops them when the run's time
//!   is up, and returns a [`Tally`]. Clients are any objects a
//!   [`Recipe<ClientKit>`](crate::Recipe) makes — [`BasicClient`] (connect, N requests
//!   with a pause, score each, disconnect) unless you bring your own (a watchdog, a
//!   typical user, an expert user), written with what their [`ClientKit`] offers.
//! * A *load share* runs a [`Load`] of basic clients for whoever sends it a [`LoadPlan`],
//!   passes its progress on, and returns its tally. It is the same object whether it runs
//!   here or as the top object of a child process ([`share_main`]).
//! * [`Fleet`] splits a plan across load shares — in this process, or in child processes
//!   (one argument: [`Fleet::processes`]) — sums their progress for whoever watches, and
//!   returns the merged [`Tally`]; [`LoadReport::new`] turns it into the report.
//!
//! Responses are scored by their status and, when the plan names one, a [`Validation`]: a
//! check of the body that the program supplies.
//!
//! ```no_run
//! use strata::load::{Fleet, LoadPlan, LoadReport, Limits, Tally};
//! use strata::prelude::*;
//!
//! let mut cx = ThreadContext::attach();
//! let mut plan = LoadPlan::new("http://127.0.0.1:5050/Xy?x={1..10}&y=8");
//! plan.clients = 32;
//! let fleet = cx.create(Fleet::new(plan.clone()).unwrap());
//! let tally = cx.wait_for(fleet).downcast::<Tally>().unwrap();
//! println!("{}", LoadReport::new(&tally, &plan, 1, Limits::default()));
//! ```

mod client;
mod conn;
mod html;
mod plan;
mod record;
mod shape;
mod stages;
mod tls;

use std::collections::{HashMap, HashSet};
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};

pub use client::{BasicClient, ClientKit, Ticket};
pub use conn::{ConnError, Connection, Response};
pub use html::html_report;
pub use plan::{LoadPlan, PlanError, Target, Validation};
use record::Recorder;
pub use record::{
    ErrorKind, Errors, Latency, Limits, LoadProgress, LoadReport, Outcome, SecondReport,
    SecondTally, StageReport, Tally, Threshold,
};
pub use shape::{parse_header, Body, Expect, Order, ScriptedRequest, Shape};
pub use stages::Stage;
pub use tls::{TlsClient, TlsOptions};

use crate::message::AnyMessage;
use crate::object::Context;
use crate::process::Process;
use crate::runtime::Envelope;
use crate::standard::{Faulted, Returned, Start, Stop};
use crate::{Address, Message};

/// How often progress is sent to an observer.
const PROGRESS_EVERY: Duration = Duration::from_millis(500);

/// The progress timer.
#[derive(Debug, Clone, Copy, Serialize, Deserialize, Message)]
#[message(name = "strata.load.Tick")]
struct Tick;

/// Ten times a second: the clients follow the stages, and the timeline notes them.
#[derive(Debug, Clone, Copy, Serialize, Deserialize, Message)]
#[message(name = "strata.load.Retarget")]
struct Retarget;

/// How often the clients follow the stages.
const RETARGET_EVERY: Duration = Duration::from_millis(100);

/// The end of a run's time.
#[derive(Debug, Clone, Copy, Serialize, Deserialize, Message)]
#[message(name = "strata.load.TimeUp")]
struct TimeUp;

/// Runs the clients of one process; see the [module docs](self).
pub struct Load<R: crate::Recipe<ClientKit>> {
    kit: ClientKit,
    recipe: R,
    observer: Address,
    /// Client address → its slot.
    slots: HashMap<Address, u32>,
    /// Clients stopped because a stage wants fewer (not replaced).
    retiring: HashSet<Address>,
    ending: bool,
    interrupted: bool,
}

impl<R: crate::Recipe<ClientKit>> Load<R> {
    /// A run of `plan` with clients made by `recipe`; refuses an improbable plan naming
    /// the parameter.
    pub fn new(plan: LoadPlan, recipe: R) -> Result<Self, PlanError> {
        let target = plan.check()?;
        let timeline = plan.timeline || !plan.stages.is_empty();
        Ok(Load {
            kit: ClientKit::new(plan, target, Recorder::new(timeline)),
            recipe,
            observer: Address::NULL,
            slots: HashMap::new(),
            retiring: HashSet::new(),
            ending: false,
            interrupted: false,
        })
    }

    /// Sends [`LoadProgress`] to `observer` twice a second.
    pub fn observed_by(mut self, observer: Address) -> Self {
        self.observer = observer;
        self
    }

    fn add_client(&mut self, cx: &mut Context<Self>, slot: u32) {
        let client = self.recipe.make(self.kit.for_slot(slot));
        let address = cx.create(client);
        self.slots.insert(address, slot);
    }

    /// Whether the clients follow stages (a closed loop with stages).
    fn staged(&self) -> bool {
        let plan = self.kit.plan();
        !plan.stages.is_empty() && plan.rate.is_none()
    }

    /// How many clients the run wants now.
    fn wanted(&self) -> u32 {
        let plan = self.kit.plan();
        if self.staged() {
            stages::value_at(&plan.stages, 0.0, self.elapsed()).round() as u32
        } else {
            plan.clients
        }
    }

    /// Starts or stops clients to match the stage.
    fn follow_stages(&mut self, cx: &mut Context<Self>) {
        let wanted = self.wanted() as usize;
        if self.slots.len() < wanted && !self.kit.is_over() {
            let used: HashSet<u32> = self.slots.values().copied().collect();
            let free: Vec<u32> = (0..)
                .filter(|s| !used.contains(s))
                .take(wanted - self.slots.len())
                .collect();
            for slot in free {
                self.add_client(cx, slot);
            }
        } else if self.slots.len() > wanted {
            let mut by_slot: Vec<(u32, Address)> =
                self.slots.iter().map(|(&a, &s)| (s, a)).collect();
            by_slot.sort_unstable_by_key(|b| std::cmp::Reverse(b.0));
            for &(_, client) in by_slot.iter().take(self.slots.len() - wanted) {
                self.slots.remove(&client);
                self.retiring.insert(client);
                cx.stop(client);
            }
        }
        self.kit.recorder().set_clients(self.slots.len() as u32);
    }

    fn elapsed(&self) -> Duration {
        self.kit.began().elapsed()
    }

    /// Ends the run: no more requests, clients stopped; the tally follows when the last
    /// one has returned.
    fn end(&mut self, cx: &mut Context<Self>) {
        if !self.ending {
            self.ending = true;
            self.kit.end();
            for &client in self.slots.keys() {
                cx.stop(client);
            }
        }
        self.finish_if_done(cx);
    }

    fn finish_if_done(&mut self, cx: &mut Context<Self>) {
        if self.slots.is_empty() && self.retiring.is_empty() {
            let mut tally = self.kit.recorder().tally(self.elapsed());
            tally.shares = 1;
            tally.interrupted = self.interrupted;
            if !self.observer.is_null() {
                cx.send(self.observer, self.kit.recorder().progress(self.elapsed()));
            }
            cx.complete(tally);
        }
    }
}

#[crate::machine]
impl<R: crate::Recipe<ClientKit>> Load<R> {
    #[guard(sender == cx.address())]
    fn start(&mut self, cx: &mut Context<Self>, _: Start) {
        let plan = self.kit.plan();
        if let Some(d) = plan.run_time() {
            cx.start(TimeUp, d);
        }
        if !self.observer.is_null() {
            cx.start_repeating(Tick, PROGRESS_EVERY);
        }
        if self.staged() || plan.timeline {
            cx.start_repeating(Retarget, RETARGET_EVERY);
        }
        for slot in 0..self.wanted() {
            self.add_client(cx, slot);
        }
        self.kit.recorder().set_clients(self.slots.len() as u32);
    }

    fn retarget(&mut self, cx: &mut Context<Self>, _: Retarget) {
        if self.ending {
            return;
        }
        if self.staged() {
            self.follow_stages(cx);
        } else {
            self.kit.recorder().set_clients(self.slots.len() as u32);
        }
    }

    fn returned(&mut self, cx: &mut Context<Self>, returned: Returned) {
        let sender = cx.sender();
        if self.retiring.remove(&sender) {
            if self.ending {
                self.finish_if_done(cx);
            }
            return;
        }
        let Some(slot) = self.slots.remove(&sender) else {
            return;
        };
        // Clients stopped at the end of the run end with `Aborted`: that is no failure.
        let value = returned.value;
        if value.is_fault() && !self.ending {
            tracing::warn!(target: "strata::load", client = %sender, ?value, "a client failed");
        }
        if !self.ending && !self.kit.is_over() {
            if self.slots.len() < self.wanted() as usize {
                self.add_client(cx, slot);
            }
        } else if !self.ending && self.slots.is_empty() {
            // The total is reached and every client is done.
            self.end(cx);
        }
        if self.ending {
            self.finish_if_done(cx);
        }
    }

    fn tick(&mut self, cx: &mut Context<Self>, _: Tick) {
        cx.send(self.observer, self.kit.recorder().progress(self.elapsed()));
    }

    fn time_up(&mut self, cx: &mut Context<Self>, _: TimeUp) {
        self.end(cx);
    }

    fn stop(&mut self, cx: &mut Context<Self>, _: Stop) {
        self.interrupted = true;
        self.end(cx);
    }

    fn other(&mut self, _cx: &mut Context<Self>, envelope: Envelope) {
        tracing::debug!(target: "strata::load", message = envelope.type_name(), "ignored");
    }
}

/// Runs a [`Load`] of [`BasicClient`]s for whoever sends it a [`LoadPlan`], here or as a
/// child process's top object; see the [module docs](self).
#[derive(Default)]
pub(crate) struct LoadShare {
    load: Address,
    /// The validations a plan from another process may name (it carries only the name).
    known: Vec<Validation>,
}

impl LoadShare {
    /// A share that can run plans naming any of the validations in `known`.
    pub(crate) fn knowing(known: Vec<Validation>) -> Self {
        LoadShare {
            load: Address::NULL,
            known,
        }
    }
}

#[crate::machine]
impl LoadShare {
    fn plan(&mut self, cx: &mut Context<Self>, mut plan: LoadPlan) {
        let sender = cx.sender();
        if !self.load.is_null() {
            cx.send(sender, Faulted::new("this share is already running a plan"));
            return;
        }
        plan.validation = plan.validation.resolved_from(&self.known);
        match Load::new(plan, BasicClient::new) {
            Ok(load) => self.load = cx.create(load.observed_by(sender)),
            Err(e) => cx.complete(Faulted::new(e.to_string())),
        }
    }

    #[guard(sender == self.load)]
    fn load_returned(&mut self, cx: &mut Context<Self>, returned: Returned) {
        cx.complete(returned.value);
    }

    fn stop(&mut self, cx: &mut Context<Self>, _: Stop) {
        if self.load.is_null() {
            cx.complete(Faulted::new("stopped before a plan arrived"));
        } else {
            cx.stop(self.load);
        }
    }

    /// Anything else is ignored.
    fn other(&mut self, _cx: &mut Context<Self>, _: Envelope) {}
}

/// The whole program of a child process that runs a share of a [`Fleet`]: use it as the
/// `main` of a program (or a subcommand) and name that program in [`Fleet::processes`].
///
/// A plan reaches the child with its [`Validation`]'s name only: `known` are the
/// validations this program offers, found by name (a plan naming another is refused).
pub fn share_main(known: impl IntoIterator<Item = Validation>) -> std::process::ExitCode {
    crate::main(LoadShare::knowing(known.into_iter().collect()))
}

/// Splits a plan across shares and merges what they return; see the [module docs](self).
pub struct Fleet {
    plan: LoadPlan,
    processes: u32,
    program: Option<Process>,
    observer: Address,
    /// Share address → its index.
    shares: HashMap<Address, u32>,
    /// The latest progress of each share's load, by sender.
    progress: HashMap<Address, LoadProgress>,
    tally: Tally,
    began: Instant,
}

impl Fleet {
    /// Runs `plan` in this process; refuses an improbable plan naming the parameter.
    pub fn new(plan: LoadPlan) -> Result<Self, PlanError> {
        plan.check()?;
        Ok(Fleet {
            plan,
            processes: 1,
            program: None,
            observer: Address::NULL,
            shares: HashMap::new(),
            progress: HashMap::new(),
            tally: Tally::default(),
            began: Instant::now(),
        })
    }

    /// Runs the plan in `n` child processes, each running `program` (a program that runs
    /// [`share_main`]); clients, total and rate are divided among them.
    pub fn processes(mut self, n: u32, program: Process) -> Result<Self, PlanError> {
        if n == 0 || n > 1024 || n > self.plan.max_clients() {
            return Err(PlanError {
                parameter: "processes",
                reason: format!(
                    "{n} is not between 1 and the number of clients ({}, at most 1024)",
                    self.plan.max_clients()
                ),
            });
        }
        if self.plan.total.is_some_and(|t| t < u64::from(n)) {
            return Err(PlanError {
                parameter: "processes",
                reason: format!("{n} processes cannot share a total of fewer requests"),
            });
        }
        self.processes = n;
        self.program = Some(program);
        Ok(self)
    }

    /// Sends the summed [`LoadProgress`] of every share to `observer` as it arrives.
    pub fn observed_by(mut self, observer: Address) -> Self {
        self.observer = observer;
        self
    }
}

#[crate::machine]
impl Fleet {
    #[guard(sender == cx.address())]
    fn start(&mut self, cx: &mut Context<Self>, _: Start) {
        self.began = Instant::now();
        for i in 0..self.processes {
            let share = match &self.program {
                Some(p) => cx.create(p.clone()),
                None => cx.create(LoadShare::default()),
            };
            cx.send(share, self.plan.share(i, self.processes));
            self.shares.insert(share, i);
        }
    }

    fn progress(&mut self, cx: &mut Context<Self>, progress: LoadProgress) {
        self.progress.insert(cx.sender(), progress);
        if !self.observer.is_null() {
            let sum = self.progress.values().fold(
                LoadProgress {
                    elapsed: self.began.elapsed(),
                    ..LoadProgress::default()
                },
                |mut s, p| {
                    s.ok += p.ok;
                    s.errors += p.errors;
                    s
                },
            );
            cx.send(self.observer, sum);
        }
    }

    fn returned(&mut self, cx: &mut Context<Self>, returned: Returned) {
        let Some(i) = self.shares.remove(&cx.sender()) else {
            return;
        };
        match returned.value.downcast::<Tally>() {
            Ok(t) => self.tally.merge(&t),
            Err(other) => {
                let why = describe(&other);
                tracing::warn!(target: "strata::load", share = i, %why, "a share ended without a tally");
                self.tally.lost.push(format!("share {i}: {why}"));
            }
        }
        if self.shares.is_empty() {
            cx.complete(std::mem::take(&mut self.tally));
        }
    }

    /// A share refused its plan; it also ends, and its `Returned` is counted then.
    #[guard(self.shares.contains_key(&sender))]
    fn refused(&mut self, cx: &mut Context<Self>, fault: Faulted) {
        tracing::warn!(target: "strata::load", share = %cx.sender(), %fault, "a share refused its plan");
    }

    fn stop(&mut self, cx: &mut Context<Self>, _: Stop) {
        for &share in self.shares.keys() {
            cx.stop(share);
        }
        if self.shares.is_empty() {
            cx.complete(std::mem::take(&mut self.tally));
        }
    }

    /// Anything else is ignored.
    fn other(&mut self, _cx: &mut Context<Self>, _: Envelope) {}
}

fn describe(value: &AnyMessage) -> String {
    match value.as_fault() {
        Some(f) => f.to_string(),
        None => format!("returned {} instead of a tally", value.type_name()),
    }
}
