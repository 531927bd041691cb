//! The `Supervisor` machine.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use std::time::{Duration, Instant};

use parking_lot::Mutex;

use super::service::{Ended, Exit, Hooks, NoHooks, Service, Started, Then, WorkerView};
use super::{Reload, Resize, Step};
use crate::address::Address;
use crate::message::{codec, AnyMessage};
use crate::object::Context;
use crate::process::{ChildObserver, Stream};
use crate::standard::{Ack, Ping, Returned, Start, Stop};

/// Runs services of worker processes and keeps them running; see the
/// [module docs](super).
pub struct Supervisor {
    services: BTreeMap<String, Service>,
    workers: BTreeMap<(String, usize), Worker>,
    by_address: HashMap<Address, (String, usize)>,
    hooks: Arc<dyn Hooks>,
    signals: bool,
    stopping: bool,
    seeds: u64,
}

#[derive(Debug, PartialEq, Eq, Clone, Copy)]
enum State {
    Running,
    Waiting(Instant),
    Stopping,
    Failed,
}

struct Worker {
    id: String,
    address: Option<Address>,
    slot: Arc<Mutex<Slot>>,
    started: Instant,
    backoff: crate::Backoff,
    restarts: u32,
    state: State,
    /// Its settings are older than its service's: replace it (one at a time).
    outdated: bool,
    /// The service shrank below it: do not start it again.
    retiring: bool,
    /// When its process last answered a heartbeat (or started).
    last_seen: Instant,
    /// Heartbeats its current process answered.
    heartbeats: u64,
    /// Killed for not answering heartbeats.
    hung: Option<Duration>,
    /// Times it retired after its requests.
    recycled: u32,
}

#[derive(Default)]
struct Slot {
    pid: Option<u32>,
    exit: Option<std::process::ExitStatus>,
}

struct Observer {
    service: String,
    worker: String,
    slot: Arc<Mutex<Slot>>,
    hooks: Arc<dyn Hooks>,
}

impl ChildObserver for Observer {
    fn spawned(&self, pid: u32) {
        self.slot.lock().pid = Some(pid);
        self.hooks.started(&Started {
            service: &self.service,
            worker: &self.worker,
            pid,
        });
    }
    fn line(&self, stream: Stream, line: &str) {
        self.hooks.line(&self.service, &self.worker, stream, line);
    }
    fn exited(&self, status: &std::process::ExitStatus) {
        self.slot.lock().exit = Some(*status);
    }
}

/// The heartbeat timer.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize, crate::Message)]
#[message(name = "supervisor.Beat")]
struct Beat;

/// The restart timer.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize, crate::Message)]
#[message(name = "supervisor.Due")]
struct Due;

impl Supervisor {
    /// A supervisor of nothing yet, with hooks that only print the workers' lines.
    pub fn new() -> Supervisor {
        Supervisor {
            services: BTreeMap::new(),
            workers: BTreeMap::new(),
            by_address: HashMap::new(),
            hooks: Arc::new(NoHooks),
            signals: false,
            stopping: false,
            seeds: crate::random::Rng::seeded().next_u64(),
        }
    }

    /// Adds a service (started with the supervisor).
    pub fn service(mut self, service: Service) -> Supervisor {
        self.services.insert(service.name.clone(), service);
        self
    }

    /// The hooks to call.
    pub fn hooks(mut self, hooks: Arc<dyn Hooks>) -> Supervisor {
        self.hooks = hooks;
        self
    }

    /// Also turns SIGHUP into [`Reload`], SIGTTIN and SIGTTOU into a [`Step`] of +1 and −1
    /// worker for every service (for the supervisor that is the program: one per process).
    pub fn with_signals(mut self) -> Supervisor {
        self.signals = true;
        self
    }

    /// The next of the supervisor's own random numbers (seeds and draws, kept apart per
    /// worker and per launch).
    fn next_seed(&mut self) -> u64 {
        self.seeds = self
            .seeds
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        self.seeds
    }

    fn backoff_for(&mut self, service: &Service) -> crate::Backoff {
        let seed = self.next_seed();
        service.restart.clone().seed(seed | 1)
    }

    fn views(&self) -> Vec<WorkerView> {
        self.workers
            .iter()
            .map(|((service, _), w)| WorkerView {
                service: service.clone(),
                worker: w.id.clone(),
                state: match w.state {
                    State::Running => "running",
                    State::Waiting(_) => "waiting",
                    State::Stopping => "stopping",
                    State::Failed => "failed",
                },
                pid: w.slot.lock().pid,
                restarts: w.restarts,
                heartbeats: w.heartbeats,
                recycled: w.recycled,
            })
            .collect()
    }

    /// Starts (or starts again) the worker `index` of `service`.
    fn launch(&mut self, cx: &mut Context<Self>, service: &str, index: usize) {
        let Some(spec) = self.services.get(service).cloned() else {
            return;
        };
        let id = format!("{service}-{index}");
        let slot = Arc::new(Mutex::new(Slot::default()));
        let observer = Arc::new(Observer {
            service: service.to_string(),
            worker: id.clone(),
            slot: slot.clone(),
            hooks: self.hooks.clone(),
        });
        let mut process = (spec.make)(&id);
        if let Some((after, jitter)) = spec.recycle {
            let draw = self.next_seed() >> 16;
            let extra = jitter.checked_add(1).map_or(draw, |span| draw % span);
            process = process.env(
                crate::process::RECYCLE_VARIABLE,
                after.saturating_add(extra).to_string(),
            );
        }
        let process = process
            .title(format!("strata: {id}"))
            .env(crate::home::WORKER_VARIABLE, id.clone())
            .own_process_group()
            .observe(observer);
        let address = cx.create(process);
        let key = (service.to_string(), index);
        self.by_address.insert(address, key.clone());
        if let Some(w) = self.workers.get_mut(&key) {
            w.address = Some(address);
            w.slot = slot;
            w.started = Instant::now();
            w.state = State::Running;
            w.outdated = false;
            w.last_seen = Instant::now();
            w.heartbeats = 0;
            w.hung = None;
            return;
        }
        let backoff = self.backoff_for(&spec);
        self.workers.insert(
            key,
            Worker {
                id,
                address: Some(address),
                slot,
                started: Instant::now(),
                backoff,
                restarts: 0,
                state: State::Running,
                outdated: false,
                retiring: false,
                last_seen: Instant::now(),
                heartbeats: 0,
                hung: None,
                recycled: 0,
            },
        );
    }

    fn stop_worker(&mut self, cx: &mut Context<Self>, key: &(String, usize)) {
        let Some(w) = self.workers.get_mut(key) else {
            return;
        };
        match w.state {
            State::Running => {
                w.state = State::Stopping;
                if let Some(a) = w.address {
                    cx.stop(a);
                }
            }
            State::Stopping => {}
            State::Waiting(_) | State::Failed => {
                if w.retiring {
                    self.workers.remove(key);
                }
            }
        }
    }

    /// Grows or shrinks `service` to `count` workers: new ids above, highest ids stopped
    /// first.
    fn resize(&mut self, cx: &mut Context<Self>, service: &str, count: usize) {
        let Some(spec) = self.services.get_mut(service) else {
            tracing::warn!(target: "strata::supervisor", service, "resize of a service this supervisor does not run");
            return;
        };
        spec.count = count;
        let keys: Vec<(String, usize)> = self
            .workers
            .keys()
            .filter(|(s, _)| s == service)
            .cloned()
            .collect();
        for key in keys.iter().rev() {
            if key.1 >= count {
                if let Some(w) = self.workers.get_mut(key) {
                    w.retiring = true;
                }
                self.stop_worker(cx, key);
            }
        }
        for index in 0..count {
            let key = (service.to_string(), index);
            match self.workers.get_mut(&key) {
                None => self.launch(cx, service, index),
                Some(w) => w.retiring = false,
            }
        }
    }

    fn begin(&mut self, cx: &mut Context<Self>) {
        if let Some(period) = self.beat_period() {
            cx.start_repeating(Beat, period);
        }
        if self.signals {
            super::signals::forward(cx.postbox(), cx.address());
        }
        let all: Vec<(String, usize)> = self
            .services
            .values()
            .map(|s| (s.name.clone(), s.count))
            .collect();
        for (name, count) in all {
            for index in 0..count {
                self.launch(cx, &name, index);
            }
        }
    }

    fn ended(&mut self, cx: &mut Context<Self>, address: Address, value: AnyMessage) {
        let Some(key) = self.by_address.remove(&address) else {
            return;
        };
        let Some(w) = self.workers.get_mut(&key) else {
            return;
        };
        if w.address != Some(address) {
            return;
        }
        w.address = None;
        let up_for = w.started.elapsed();
        let (pid, status) = {
            let s = w.slot.lock();
            (s.pid, s.exit)
        };
        let exit = status.as_ref().map(Exit::of);
        let returned = codec::to_json(&value).ok();
        let we_stopped = w.state == State::Stopping;
        let recycled = value
            .downcast_ref::<crate::process::Recycled>()
            .map(|r| r.requests);
        let mut note = recycled.map(|n| format!("recycled after {n} requests"));
        if let Some(timeout) = w.hung {
            note = Some(format!(
                "answered no heartbeat for {:.1}s: killed",
                timeout.as_secs_f64()
            ));
        } else if exit.as_ref().is_some_and(Exit::is_sigkill) && !we_stopped && !self.stopping {
            note = Some(
                "SIGKILL not sent by the supervisor: possibly killed for memory (out-of-memory)"
                    .to_string(),
            );
        }
        let service_gone = !self.services.contains_key(&key.0);
        let then = if self.stopping {
            Then::Stopped
        } else if w.retiring || service_gone {
            Then::Removed
        } else if w.outdated {
            Then::Replace
        } else if recycled.is_some() && !we_stopped {
            Then::Recycle
        } else {
            match w.backoff.ended_after(up_for) {
                Ok(wait) => Then::Restart(wait),
                Err(spent) => Then::Failed(spent.to_string()),
            }
        };
        if pid.is_none() && note.is_none() {
            if let Some(fault) = value.as_fault() {
                note = Some(fault.reason().to_string());
            }
        }
        self.hooks.ended(&Ended {
            service: &key.0,
            worker: &w.id,
            pid,
            exit,
            returned,
            up_for,
            then: then.clone(),
            note,
        });
        match then {
            Then::Stopped | Then::Removed => {
                self.workers.remove(&key);
            }
            Then::Replace => {
                self.launch(cx, &key.0, key.1);
                self.next_outdated(cx, &key.0);
            }
            Then::Recycle => {
                w.recycled += 1;
                self.launch(cx, &key.0, key.1);
            }
            Then::Restart(wait) => {
                w.restarts += 1;
                w.state = State::Waiting(Instant::now() + wait);
            }
            Then::Failed(reason) => {
                tracing::error!(target: "strata::supervisor", worker = %w.id, %reason, "worker failed: not restarted until a reload");
                w.state = State::Failed;
            }
        }
    }

    /// Ends the supervisor once it is stopping and every worker's process ended.
    fn finish_if_stopped(&mut self, cx: &mut Context<Self>) {
        if self.stopping && self.by_address.is_empty() {
            cx.complete(crate::standard::Aborted::new("the supervisor was stopped"));
        }
    }

    /// Stops the next outdated running worker of `service`, if none is being replaced.
    fn next_outdated(&mut self, cx: &mut Context<Self>, service: &str) {
        let busy = self
            .workers
            .iter()
            .any(|((s, _), w)| s == service && w.outdated && w.state == State::Stopping);
        if busy {
            return;
        }
        let next = self
            .workers
            .iter()
            .find(|((s, _), w)| s == service && w.outdated && w.state == State::Running)
            .map(|(k, _)| k.clone());
        if let Some(key) = next {
            self.stop_worker(cx, &key);
        }
    }

    fn due(&mut self, cx: &mut Context<Self>) {
        let now = Instant::now();
        let ready: Vec<(String, usize)> = self
            .workers
            .iter()
            .filter(|(_, w)| matches!(w.state, State::Waiting(at) if at <= now))
            .map(|(k, _)| k.clone())
            .collect();
        for (service, index) in ready {
            self.launch(cx, &service, index);
        }
    }

    /// The shortest heartbeat period of any service, a third of its time-out.
    fn beat_period(&self) -> Option<Duration> {
        self.services
            .values()
            .filter_map(|s| s.heartbeat)
            .min()
            .map(|t| (t / 3).max(Duration::from_millis(10)))
    }

    /// Kills the running workers that answered nothing for their service's time-out and
    /// pings the others.
    fn beat(&mut self, cx: &mut Context<Self>) {
        let now = Instant::now();
        for ((service, _), w) in self.workers.iter_mut() {
            let Some(timeout) = self.services.get(service).and_then(|s| s.heartbeat) else {
                continue;
            };
            let (State::Running, Some(address)) = (w.state, w.address) else {
                continue;
            };
            if now.duration_since(w.last_seen) > timeout {
                if w.hung.is_none() {
                    w.hung = Some(timeout);
                    tracing::warn!(target: "strata::supervisor", worker = %w.id, "no answer to heartbeats: killing it");
                    match w.slot.lock().pid {
                        // SAFETY: a signal to our own child's pid, which is not yet
                        // reaped (its Process object has not returned).
                        Some(pid) => unsafe {
                            libc::kill(pid as libc::pid_t, libc::SIGKILL);
                        },
                        None => cx.stop(address),
                    }
                }
            } else {
                cx.send(address, Ping);
            }
        }
    }

    fn heard(&mut self, from: Address) {
        if let Some(key) = self.by_address.get(&from) {
            if let Some(w) = self.workers.get_mut(key) {
                w.last_seen = Instant::now();
                w.heartbeats += 1;
            }
        }
    }

    /// Arms the restart timer for the earliest waiting worker.
    fn arm(&mut self, cx: &mut Context<Self>) {
        let earliest = self
            .workers
            .values()
            .filter_map(|w| match w.state {
                State::Waiting(at) => Some(at),
                _ => None,
            })
            .min();
        match earliest {
            Some(at) if !self.stopping => {
                cx.start(Due, at.saturating_duration_since(Instant::now()));
            }
            _ => {
                cx.cancel::<Due>();
            }
        }
        self.hooks.changed(&self.views());
    }

    fn reload(&mut self, cx: &mut Context<Self>) {
        let Some(next) = self.hooks.reload() else {
            self.hooks.reloaded();
            return;
        };
        let next: BTreeMap<String, Service> =
            next.into_iter().map(|s| (s.name.clone(), s)).collect();
        let gone: Vec<String> = self
            .services
            .keys()
            .filter(|k| !next.contains_key(*k))
            .cloned()
            .collect();
        for name in gone {
            self.resize(cx, &name, 0);
            self.services.remove(&name);
        }
        for (name, service) in next {
            let count = service.count;
            let changed = match self.services.get(&name) {
                None => {
                    self.services.insert(name.clone(), service);
                    for index in 0..count {
                        self.launch(cx, &name, index);
                    }
                    continue;
                }
                Some(old) => old.settings != service.settings,
            };
            let mut fresh = service.clone();
            fresh.count = self.services[&name].count;
            self.services.insert(name.clone(), fresh);
            // Failed and waiting workers get a fresh start; running ones are replaced one
            // at a time when the settings changed.
            let keys: Vec<(String, usize)> = self
                .workers
                .keys()
                .filter(|(s, _)| *s == name)
                .cloned()
                .collect();
            for key in &keys {
                let backoff = self.backoff_for(&service);
                let w = self.workers.get_mut(key).expect("listed");
                match w.state {
                    State::Failed | State::Waiting(_) => {
                        w.backoff = backoff;
                        if !w.retiring {
                            self.launch(cx, &key.0, key.1);
                        }
                    }
                    State::Running if changed => {
                        w.outdated = true;
                        w.backoff = backoff;
                    }
                    _ => {}
                }
            }
            self.resize(cx, &name, count);
            if changed {
                self.next_outdated(cx, &name);
            }
        }
        match self.beat_period() {
            Some(period) => cx.start_repeating(Beat, period),
            None => {
                cx.cancel::<Beat>();
            }
        }
        self.hooks.reloaded();
    }
}

impl Default for Supervisor {
    fn default() -> Self {
        Supervisor::new()
    }
}

#[crate::machine]
impl Supervisor {
    #[guard(sender == cx.address())]
    fn on_start(&mut self, cx: &mut Context<Self>, _: Start) {
        self.begin(cx);
        self.arm(cx);
    }

    fn on_returned(&mut self, cx: &mut Context<Self>, returned: Returned) {
        let from = cx.sender();
        self.ended(cx, from, returned.value);
        self.finish_if_stopped(cx);
        self.arm(cx);
    }

    #[guard(sender == cx.address())]
    fn on_due(&mut self, cx: &mut Context<Self>, _: Due) {
        self.due(cx);
        self.arm(cx);
    }

    #[guard(sender == cx.address())]
    fn on_beat(&mut self, cx: &mut Context<Self>, _: Beat) {
        if !self.stopping {
            self.beat(cx);
        }
    }

    fn on_ack(&mut self, cx: &mut Context<Self>, _: Ack) {
        let from = cx.sender();
        self.heard(from);
    }

    fn on_resize(&mut self, cx: &mut Context<Self>, r: Resize) {
        if !self.stopping {
            self.resize(cx, &r.service, r.count.min(crate::home::role::MOST_WORKERS));
        }
        self.arm(cx);
    }

    fn on_step(&mut self, cx: &mut Context<Self>, s: Step) {
        if !self.stopping {
            let names: Vec<(String, usize)> = self
                .services
                .values()
                .filter(|v| s.service.as_deref().is_none_or(|n| n == v.name))
                .map(|v| (v.name.clone(), v.count))
                .collect();
            for (name, count) in names {
                let next = if s.by < 0 {
                    count.saturating_sub(s.by.unsigned_abs() as usize).max(1)
                } else {
                    (count + s.by as usize).min(crate::home::role::MOST_WORKERS)
                };
                self.resize(cx, &name, next);
            }
        }
        self.arm(cx);
    }

    fn on_reload(&mut self, cx: &mut Context<Self>, _: Reload) {
        if !self.stopping {
            self.reload(cx);
        }
        self.arm(cx);
    }

    fn on_stop(&mut self, cx: &mut Context<Self>, _: Stop) {
        self.stopping = true;
        cx.cancel::<Due>();
        cx.cancel::<Beat>();
        // Stopped one by one (not `abort`), so each end is still seen and recorded.
        let keys: Vec<(String, usize)> = self.workers.keys().cloned().collect();
        for key in keys {
            let running = self.workers.get(&key).is_some_and(|w| w.address.is_some());
            if running {
                self.stop_worker(cx, &key);
            } else {
                self.workers.remove(&key);
            }
        }
        self.finish_if_stopped(cx);
        self.hooks.changed(&self.views());
    }
}
