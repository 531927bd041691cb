//! Objects: the units of concurrency, and what every kind of object can do.
//!
//! An object is created by a parent, receives messages through its mailbox, and ends by
//! returning a value; the parent then receives [`Returned`] carrying that value (or the
//! fault that ended it). There are four kinds, all created the same way with
//! [`Core::create`]:
//!
//! | kind | runs on | reads messages with |
//! |---|---|---|
//! | [`Thread`] (function object) | its own OS thread | blocking [`ThreadContext::recv`] / [`select`](ThreadContext::select) |
//! | [`Async`] (async object) | the shared runtime | [`AsyncContext::recv`] / [`select`](AsyncContext::select) `.await` |
//! | a [`Machine`] | the shared runtime | one handler per message type |
//! | [`Threaded`] machine | its own OS thread | one handler per message type |
//!
//! Every context dereferences to [`Core`], which holds the operations all kinds share:
//! `send`, `reply`, `forward`, `create`, timers, `watch`, `complete` and `abort`.
//!
//! A panic inside an object never crashes the process: the object ends with a
//! [`Faulted`] value that names the panic, returned to its parent like any other value.

mod machine;
mod postbox;
mod recipe;
mod task;
mod thread;

use std::any::TypeId;
use std::collections::{HashMap, HashSet, VecDeque};
use std::sync::Arc;
use std::time::{Duration, Instant};

pub use machine::{Context, FromEnvelope, Machine, Threaded};
pub use postbox::Postbox;
pub use recipe::Recipe;
pub use task::{Async, AsyncContext};
pub use thread::{Thread, ThreadContext};

use crate::message::{AnyMessage, Fault, Message};
use crate::runtime::mailbox::Mailbox;
use crate::runtime::{node, Delivery, Envelope, SendError, DEFAULT_CAPACITY, MAX_STAND_IN_HOPS};
use crate::standard::{AnyFault, Faulted, Overloaded, Returned, TimedOut, Unread};
use crate::Address;

/// What [`Core::create`] takes: a machine, [`Thread`], [`Async`], [`Threaded`], a
/// [`Process`](crate::process::Process), a [`Spool`](crate::spool::Spool), ... Users rarely
/// implement it: a machine is an `Object` through `#[strata::machine]`, and an object of
/// one's own is usually one of these kinds wrapped (see how `Process` wraps an `Async`).
pub trait Object: Send + 'static {
    /// A short word for logs: `machine`, `thread`, `async`, ...
    fn kind(&self) -> &'static str;
    /// Starts running the object (called by `create`, once). The core's address and
    /// mailbox are already registered, so messages sent to it before it runs wait there.
    fn run(self, core: Core);
}

/// An object of any kind, boxed: lets one recipe (of a spool, of a load run) make objects
/// of different kinds, such as a watchdog machine on a thread among async clients.
///
/// ```
/// use strata::prelude::*;
/// use strata::AnyObject;
///
/// let make = |i: u32| if i == 0 {
///     AnyObject::new(Thread::new(|_cx: &mut ThreadContext| 1))
/// } else {
///     AnyObject::new(Async::new(|_cx: AsyncContext| async { 2 }))
/// };
/// let mut cx = ThreadContext::attach();
/// let a = cx.create(make(0));
/// let b = cx.create(make(1));
/// assert_eq!(cx.wait_for(a).downcast::<i32>().unwrap(), 1);
/// assert_eq!(cx.wait_for(b).downcast::<i32>().unwrap(), 2);
/// ```
pub struct AnyObject(Box<dyn ObjectBoxed>);

impl AnyObject {
    /// Boxes `object`.
    pub fn new(object: impl Object) -> Self {
        AnyObject(Box::new(object))
    }
}

/// [`Object`] through a box.
trait ObjectBoxed: Send + 'static {
    fn boxed_kind(&self) -> &'static str;
    fn run_boxed(self: Box<Self>, core: Core);
}

impl<S: Object> ObjectBoxed for S {
    fn boxed_kind(&self) -> &'static str {
        self.kind()
    }
    fn run_boxed(self: Box<Self>, core: Core) {
        (*self).run(core)
    }
}

impl Object for AnyObject {
    fn kind(&self) -> &'static str {
        self.0.boxed_kind()
    }
    fn run(self, core: Core) {
        self.0.run_boxed(core)
    }
}

/// How to create an object (see [`Core::create_with`]).
#[derive(Debug, Clone, Copy)]
pub struct Options {
    capacity: usize,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            capacity: DEFAULT_CAPACITY,
        }
    }
}

impl Options {
    /// The mailbox capacity: ordinary messages queued before sends to the object are
    /// refused (the sender then receives `Overloaded`). At least 1.
    pub fn capacity(mut self, capacity: usize) -> Self {
        self.capacity = capacity.max(1);
        self
    }
}

/// What an object's body can end with: any message, or a `Result` whose error is a fault.
pub trait IntoValue {
    /// Converts into the value carried by [`Returned`].
    fn into_value(self) -> AnyMessage;
}

impl<T: Message> IntoValue for T {
    fn into_value(self) -> AnyMessage {
        AnyMessage::new(self)
    }
}

impl<T: Message, E: Message + Fault> IntoValue for Result<T, E> {
    fn into_value(self) -> AnyMessage {
        match self {
            Ok(v) => AnyMessage::new(v),
            Err(e) => AnyMessage::new(e),
        }
    }
}

/// A message type (or [`AnyFault`]) that a [`Selection`] can wait for.
pub trait Pattern {
    /// True when the envelope matches.
    fn matches(envelope: &Envelope) -> bool;
    /// Makes the pattern's type decodable when it arrives from another process.
    fn register() {}
}

impl<T: Message> Pattern for T {
    fn matches(envelope: &Envelope) -> bool {
        envelope.is::<T>()
    }
    fn register() {
        crate::message::register::<T>();
    }
}

impl Pattern for AnyFault {
    fn matches(envelope: &Envelope) -> bool {
        envelope.is_fault()
    }
}

/// A set of patterns for `select`, written as a tuple: `(Xy, Stop)`, `(Returned, AnyFault)`.
pub trait Selection {
    /// True when the envelope matches any pattern of the set.
    fn matches(envelope: &Envelope) -> bool;
    /// Registers the message types of the set (see [`Pattern::register`]).
    fn register();
}

macro_rules! selections {
    ($(($($p:ident),+)),* $(,)?) => {
        $(impl<$($p: Pattern),+> Selection for ($($p,)+) {
            fn matches(envelope: &Envelope) -> bool {
                $($p::matches(envelope))||+
            }
            fn register() {
                $($p::register();)+
            }
        })*
    };
}

selections! {
    (A), (A, B), (A, B, C), (A, B, C, D), (A, B, C, D, E), (A, B, C, D, E, F),
    (A, B, C, D, E, F, G), (A, B, C, D, E, F, G, H),
}

pub(crate) use crate::address::{AddressMap, BuildAddressHasher};

struct Timer {
    generation: u64,
    repeating: bool,
    task: tokio::task::AbortHandle,
}

/// What every object can do, whatever its kind; every context dereferences to it.
pub struct Core {
    /// This object's address and mailbox: every send goes through it (see [`Postbox`]).
    postbox: Postbox,
    parent: Address,
    kind: &'static str,
    sender: Address,
    /// The deadline of the message being handled, kept by `forward`.
    deadline: Option<Instant>,
    children: HashSet<Address, BuildAddressHasher>,
    timers: HashMap<TypeId, Timer>,
    timer_generation: u64,
    result: Option<AnyMessage>,
    aborting: Option<AnyMessage>,
    ended: bool,
}

impl Core {
    pub(crate) fn new(
        address: Address,
        parent: Address,
        mailbox: Arc<Mailbox>,
        kind: &'static str,
    ) -> Self {
        Core {
            postbox: Postbox::new(address, mailbox),
            parent,
            kind,
            sender: Address::NULL,
            deadline: None,
            children: HashSet::default(),
            timers: HashMap::new(),
            timer_generation: 0,
            result: None,
            aborting: None,
            ended: false,
        }
    }

    /// This object's address.
    pub fn address(&self) -> Address {
        self.postbox.address()
    }

    /// The address of the object that created this one ([`Address::NULL`] for the top).
    pub fn parent(&self) -> Address {
        self.parent
    }

    /// The sender of the message being handled: where [`reply`](Self::reply) goes.
    pub fn sender(&self) -> Address {
        self.sender
    }

    /// The number of messages waiting in this object's mailbox.
    pub fn queued(&self) -> usize {
        self.postbox.mailbox().len()
    }

    /// The children still running.
    pub fn children(&self) -> impl Iterator<Item = Address> + '_ {
        self.children.iter().copied()
    }

    /// A handle that sends as this object from anywhere: a task or thread working beside
    /// it, a callback (see [`Postbox`]). Every context also sends through its own
    /// postbox: `send`, `try_send`, `send_any`, `send_from`, `notify`, `stop` and `post`
    /// are [`Postbox`]'s methods.
    pub fn postbox(&self) -> Postbox {
        self.postbox.clone()
    }

    /// Sends to the sender of the message being handled.
    pub fn reply<T: Message>(&self, message: T) {
        let delivery = Delivery::of_type::<T>();
        self.post(
            self.sender,
            AnyMessage::new(message),
            self.address(),
            delivery,
        );
    }

    /// Passes a message on while keeping the original sender, so the receiver's reply goes
    /// straight back to whoever asked, and the deadline of the message being handled
    /// goes with it.
    pub fn forward<T: Message>(&self, to: Address, message: T) {
        self.postbox.post_envelope(
            Envelope::new(self.sender, to, AnyMessage::new(message)).with_deadline(self.deadline),
            Delivery::of_type::<T>(),
        );
    }

    /// Makes this object a *stand-in* for `target`: from now on ordinary messages sent to
    /// this object's address go to `target` instead, with their sender kept (so replies go
    /// straight back), without waking this object. Control deliveries — `Stop`,
    /// `Returned`, timers, notices — still come here: the stand-in keeps its own life.
    /// Calling it again moves the stand-in to a new target; [`stop_standing_in`] ends it.
    ///
    /// This is how one address keeps standing for something that moves: a `Process`
    /// object stands for its child's top object; a name whose publisher moves, or a
    /// supervised worker whose process restarts, keeps one address the same way.
    ///
    /// Messages already queued here are passed on first, in order, so nothing sent later
    /// overtakes them; one that cannot be passed on is answered with a [`Faulted`] from
    /// this address. Messages an object took out of its mailbox itself (kept by `select`)
    /// are passed on first by [`AsyncContext::stand_in_for`] and
    /// [`ThreadContext::stand_in_for`]. Refused with [`SendError::StandInLoop`] when
    /// `target` stands (through other stand-ins) for this object.
    ///
    /// [`stop_standing_in`]: Self::stop_standing_in
    pub fn stand_in_for(&mut self, target: Address) -> Result<(), SendError> {
        self.stand_in_with(target, Vec::new())
    }

    /// Ends [`stand_in_for`](Self::stand_in_for): ordinary messages come to this object
    /// again.
    pub fn stop_standing_in(&mut self) {
        self.postbox.mailbox().stop_forwarding();
    }

    /// The address this object stands in for, if any.
    pub fn standing_in_for(&self) -> Option<Address> {
        self.postbox.mailbox().forwarding()
    }

    /// [`stand_in_for`](Self::stand_in_for), passing `earlier` (taken out of the mailbox
    /// already, oldest first) on before anything still queued.
    pub(crate) fn stand_in_with(
        &mut self,
        target: Address,
        earlier: Vec<Envelope>,
    ) -> Result<(), SendError> {
        let me = self.address();
        let mut next = Some(target);
        for _ in 0..=MAX_STAND_IN_HOPS {
            match next {
                Some(a) if a == me => {
                    return Err(SendError::StandInLoop {
                        to: target,
                        type_name: "stand-in",
                    })
                }
                Some(a) => next = node().forwarding_of(a),
                None => break,
            }
        }
        // Passed on under this mailbox's lock: no handler may run directly meanwhile (it
        // could send here), and refusals are answered once the lock is released.
        let mut refused = Vec::new();
        crate::runtime::mailbox::without_direct_runs(|| {
            self.postbox.mailbox().forward_to(target, earlier, |mut e| {
                e.to = target;
                let (sender, type_name) = (e.sender(), e.type_name());
                if let Err(err) = node().deliver(e, Delivery::Ordinary) {
                    refused.push((sender, type_name, err));
                }
            })
        });
        for (sender, type_name, err) in refused {
            let reason = format!("{me} cannot pass `{type_name}` on to {target}: {err}");
            self.send(sender, Faulted::new(reason));
        }
        Ok(())
    }

    /// Watches `target`: this object receives [`Ended`](crate::standard::Ended)
    /// `{ address: target }`, sent from `target`'s address, exactly once:
    ///
    /// - for an object of this process, when it ends — at once when it has ended already
    ///   or never existed;
    /// - for an object of another process, when the link that leads to that process *now*
    ///   closes — at once when no route leads there. This reports the end of the link (the
    ///   process ended, or the link was lost), not the end of the remote object: an object
    ///   that ends while its process runs on sends nothing.
    ///
    /// Watching the same target again before it ends changes nothing (one `Ended`). Any
    /// object may watch any address, its children included (which also send
    /// [`Returned`]). `Ended` is a notice ([`Delivery::Control`]): it is never refused for
    /// a full mailbox, and a stand-in keeps it for itself.
    ///
    /// ```
    /// use strata::prelude::*;
    ///
    /// let mut cx = ThreadContext::attach();
    /// let worker = cx.create(Thread::new(|cx: &mut ThreadContext| {
    ///     cx.recv(); // until told anything
    /// }));
    /// cx.watch(worker);
    /// cx.send(worker, Ping);
    /// let e = cx.select::<(Ended,)>();
    /// assert_eq!(e.sender(), worker);
    /// assert_eq!(e.take::<Ended>().unwrap().address, worker);
    /// ```
    pub fn watch(&self, target: Address) {
        let me = self.address();
        if !node().watch(target, me) {
            crate::runtime::tell_ended(target, me);
        }
    }

    /// Creates a child object with default options and returns its address at once.
    ///
    /// When the child ends, this object receives [`Returned`] from the child's address.
    pub fn create<O: Object>(&mut self, object: O) -> Address {
        self.create_with(object, Options::default())
    }

    /// Creates a child object with the given options.
    pub fn create_with<O: Object>(&mut self, object: O, options: Options) -> Address {
        let (address, mailbox) = node().register(options.capacity);
        let kind = object.kind();
        tracing::debug!(target: "strata::object", event = "create", object = %address,
            parent = %self.address(), kind, rust_type = std::any::type_name::<O>());
        self.children.insert(address);
        object.run(Core::new(address, self.address(), mailbox, kind));
        address
    }

    /// Starts (or restarts) a timer: after `after`, `message` is delivered to this object.
    ///
    /// Timers are named by their message type, so an object can run several at once
    /// ([`T1`](crate::standard::T1) .. [`T4`](crate::standard::T4) or its own types).
    /// Restarting a running timer replaces it; the old one will not fire.
    pub fn start<T: Message>(&mut self, message: T, after: Duration) {
        let generation = self.next_timer_generation();
        let to = self.address();
        let task = node().handle().spawn(async move {
            tokio::time::sleep(after).await;
            fire(to, AnyMessage::new(message), generation);
        });
        self.install_timer(TypeId::of::<T>(), generation, false, task.abort_handle());
    }

    /// Starts (or restarts) a timer that delivers `message` at `at`, not a millisecond
    /// late: [`start`](Self::start) rides tokio's timer, which fires on a millisecond tick
    /// after the deadline (1 to 2 ms late here). This one rides it to [`PRECISE_SLACK`]
    /// before `at`, then a blocking thread sleeps the rest (the OS's sleep is precise to
    /// tens of microseconds), so each firing holds a blocking thread for up to the slack.
    /// For schedules (periodic jobs); named and cancelled like [`start`](Self::start).
    pub(crate) fn start_precise<T: Message>(&mut self, message: T, at: Instant) {
        let generation = self.next_timer_generation();
        let to = self.address();
        let task = node().handle().spawn(async move {
            if let Some(coarse) = at.checked_sub(PRECISE_SLACK) {
                tokio::time::sleep_until(coarse.into()).await;
            }
            let rest = at.saturating_duration_since(Instant::now());
            if !rest.is_zero() {
                let _ = tokio::task::spawn_blocking(move || std::thread::sleep(rest)).await;
            }
            fire(to, AnyMessage::new(message), generation);
        });
        self.install_timer(TypeId::of::<T>(), generation, false, task.abort_handle());
    }

    /// Starts a repeating timer: a clone of `message` arrives every `every`.
    pub fn start_repeating<T: Message + Clone>(&mut self, message: T, every: Duration) {
        let generation = self.next_timer_generation();
        let to = self.address();
        let task = node().handle().spawn(async move {
            let mut ticks = tokio::time::interval_at(tokio::time::Instant::now() + every, every);
            ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                ticks.tick().await;
                fire(to, AnyMessage::new(message.clone()), generation);
            }
        });
        self.install_timer(TypeId::of::<T>(), generation, true, task.abort_handle());
    }

    /// Cancels the timer named by `T`; true when one was running. A cancelled timer never
    /// delivers, even if it fired an instant before.
    pub fn cancel<T: Message>(&mut self) -> bool {
        match self.timers.remove(&TypeId::of::<T>()) {
            Some(t) => {
                t.task.abort();
                true
            }
            None => false,
        }
    }

    fn next_timer_generation(&mut self) -> u64 {
        self.timer_generation += 1;
        self.timer_generation
    }

    fn install_timer(
        &mut self,
        id: TypeId,
        generation: u64,
        repeating: bool,
        task: tokio::task::AbortHandle,
    ) {
        let timer = Timer {
            generation,
            repeating,
            task,
        };
        if let Some(old) = self.timers.insert(id, timer) {
            old.task.abort();
        }
    }

    /// Ends the object with `value` once the current handler returns (machines), or sets
    /// the value a function or async object ends with (it then takes precedence over the
    /// body's return value). The first call wins.
    pub fn complete<V: IntoValue>(&mut self, value: V) {
        if self.result.is_none() && !self.ended {
            self.result = Some(value.into_value());
        }
    }

    /// Sends [`Stop`](crate::standard::Stop) to every child, then ends with `value` once all of them have
    /// returned (at once when there are none). Machines use it to handle `Stop`.
    pub fn abort<V: IntoValue>(&mut self, value: V) {
        if self.children.is_empty() {
            self.complete(value);
            return;
        }
        if self.aborting.is_none() {
            self.aborting = Some(value.into_value());
        }
        for child in self.children.clone() {
            self.stop(child);
        }
    }

    /// True once [`complete`](Self::complete) or a finished [`abort`](Self::abort) set the value.
    pub fn is_completing(&self) -> bool {
        self.result.is_some()
    }

    /// Bookkeeping for an envelope leaving the mailbox: drops stale timer deliveries,
    /// notes children that returned, and finishes an abort. `None` means "consumed".
    pub(crate) fn admit(&mut self, envelope: Envelope) -> Option<Envelope> {
        let id = envelope.message.type_id();
        if envelope.timer != 0 {
            match self.timers.get(&id) {
                Some(t) if t.generation == envelope.timer => {
                    if !t.repeating {
                        self.timers.remove(&id);
                    }
                }
                _ => return None,
            }
            tracing::trace!(target: "strata::timer", object = %self.address(), message = envelope.type_name(), "timer fired");
        } else if id == TypeId::of::<Returned>() {
            if self.children.remove(&envelope.from) && self.aborting.is_some() {
                if self.children.is_empty() {
                    self.result = self.aborting.take();
                }
                return None;
            }
        } else if id == TypeId::of::<Overloaded>() {
            self.postbox.mailbox().overload_notice_read(envelope.from);
        } else if envelope.deadline.is_some_and(|d| Instant::now() >= d) {
            self.answer_late(envelope);
            return None;
        }
        tracing::trace!(target: "strata::receive", object = %self.address(), from = %envelope.from,
            message = envelope.type_name(), "receive");
        Some(envelope)
    }

    /// The message being handled is `e`'s: replies go to its sender, forwards keep its
    /// deadline.
    pub(crate) fn set_current(&mut self, e: &Envelope) {
        self.sender = e.from;
        self.deadline = e.deadline;
    }

    /// A callback runs for `sender` (no message, so no deadline).
    pub(crate) fn set_sender(&mut self, sender: Address) {
        self.sender = sender;
        self.deadline = None;
    }

    /// Answers a message taken after its deadline with `TimedOut` instead of handling it
    /// (a fault is not answered: it is dropped, counted and logged like the message).
    fn answer_late(&self, envelope: Envelope) {
        node().stats().expired(1);
        tracing::debug!(target: "strata::receive", object = %self.address(), from = %envelope.from,
            message = envelope.type_name(), "past its deadline: answered TimedOut");
        if !envelope.is_fault() && !envelope.from.is_null() {
            crate::runtime::answer_for(
                self.address(),
                envelope.from,
                AnyMessage::new(TimedOut::past_deadline()),
            );
        }
    }

    /// The deadline of the message being handled, if its sender gave one (see
    /// [`Envelope::deadline`]): a handler that starts long work may check it again, and
    /// [`forward`](Self::forward) passes it on.
    pub fn deadline(&self) -> Option<Instant> {
        self.deadline
    }

    pub(crate) fn take_result(&mut self) -> Option<AnyMessage> {
        self.result.take()
    }

    pub(crate) fn mailbox(&self) -> &Arc<Mailbox> {
        self.postbox.mailbox()
    }

    /// Ends the object: timers cancelled, children stopped, mailbox closed, and
    /// [`Returned`] sent to the parent. Idempotent.
    pub(crate) fn finish(&mut self, value: AnyMessage) {
        if !self.end() {
            return;
        }
        if let Some(f) = value.as_fault() {
            tracing::debug!(target: "strata::object", event = "destroy", object = %self.address(), kind = self.kind, fault = %f.reason());
        } else {
            tracing::debug!(target: "strata::object", event = "destroy", object = %self.address(), kind = self.kind, value = value.type_name());
        }
        if !self.parent.is_null() {
            let returned = Envelope::new(
                self.address(),
                self.parent,
                AnyMessage::new(Returned { value }),
            );
            let _ = node().deliver(returned, Delivery::Control);
        }
    }

    /// What ending means whatever the value: timers cancelled, children stopped, the
    /// address released and the mailbox closed (what was left in it counted and logged),
    /// and the watchers told (`Ended`; nothing to do when there are none).
    /// False when the object had ended already.
    fn end(&mut self) -> bool {
        if self.ended {
            return false;
        }
        self.ended = true;
        for (_, t) in self.timers.drain() {
            t.task.abort();
        }
        for child in std::mem::take(&mut self.children) {
            self.stop(child);
        }
        node().unregister(self.address());
        let (left, watchers) = self.postbox.mailbox().close();
        answer_unread(self.address(), left.into_iter());
        for watcher in watchers {
            crate::runtime::tell_ended(self.address(), watcher);
        }
        true
    }
}

impl std::ops::Deref for Core {
    type Target = Postbox;
    fn deref(&self) -> &Postbox {
        &self.postbox
    }
}

impl Drop for Core {
    fn drop(&mut self) {
        if self.ended {
            return;
        }
        match self.result.take() {
            Some(value) => self.finish(value),
            // Nobody to return a value to (an attached context, the top object): no fault
            // to make up.
            None if self.parent.is_null() => {
                if self.end() {
                    tracing::debug!(target: "strata::object", event = "destroy", object = %self.address(), kind = self.kind, "ended without a value");
                }
            }
            None => self.finish(AnyMessage::new(Faulted::new(
                "the object ended without a value",
            ))),
        }
    }
}

/// Creates an object with no parent, which lives until it ends of itself or the process
/// does: the process-wide services (the directories) are made so, on first use.
pub(crate) fn create_root<O: Object>(object: O) -> Address {
    let (address, mailbox) = node().register(DEFAULT_CAPACITY);
    let kind = object.kind();
    tracing::debug!(target: "strata::object", event = "create", object = %address, kind, "a process-wide object");
    object.run(Core::new(address, Address::NULL, mailbox, kind));
    address
}

/// Answers the ordinary messages among `left` (still in, or taken from, the mailbox of
/// an object that ended before it handled them) with an [`Unread`] from the object to
/// their senders, so no request goes unanswered; counts and logs them. Control
/// deliveries (timers, notices, `Stop`, `Returned`) are dropped.
pub(crate) fn answer_unread(address: Address, left: impl Iterator<Item = Envelope>) {
    let mut unread: Vec<&'static str> = Vec::new();
    for e in left.filter(is_ordinary) {
        unread.push(e.type_name());
        // A fault is never answered: two objects ending together cannot answer each
        // other's answers for ever. Nor is a message an object sent itself.
        if e.is_fault() || e.from.is_null() || e.from == address {
            continue;
        }
        let why = format!("{address} ended before it read the `{}`", e.type_name());
        crate::runtime::answer_for(address, e.from, AnyMessage::new(Unread::new(why)));
    }
    if !unread.is_empty() {
        node().stats().discarded(unread.len() as u64);
        tracing::debug!(target: "strata::object", object = %address, unread = ?unread,
            "messages still unread when the object ended: their senders were answered with a fault");
    }
}

/// Whether an envelope was delivered as an ordinary message (not `Stop`, `Returned`, a
/// timer or a notice).
pub(crate) fn is_ordinary(e: &Envelope) -> bool {
    e.timer == 0 && e.delivery == Delivery::Ordinary
}

/// Takes the ordinary messages (not `Stop`, `Returned`, timers or notices) out of what an
/// object kept for later, oldest first: a stand-in passes them on.
pub(crate) fn take_ordinary(saved: &mut VecDeque<Envelope>) -> Vec<Envelope> {
    let (taken, kept): (Vec<_>, Vec<_>) = saved.drain(..).partition(is_ordinary);
    *saved = kept.into();
    taken
}

/// How long before its deadline a [`Context::start_precise`] timer leaves tokio's timer
/// for a blocking sleep: more than tokio's lateness (its millisecond tick, and the
/// rounding up of the time its threads park for).
const PRECISE_SLACK: Duration = Duration::from_millis(3);

fn fire(to: Address, message: AnyMessage, generation: u64) {
    let mut envelope = Envelope::new(to, to, message);
    envelope.timer = generation;
    let _ = node().deliver(envelope, Delivery::Control);
}

/// Turns a caught panic into the fault the object ends with.
pub(crate) fn panic_fault(
    payload: Box<dyn std::any::Any + Send>,
    kind: &str,
    address: Address,
) -> AnyMessage {
    let text = payload
        .downcast_ref::<&str>()
        .map(|s| s.to_string())
        .or_else(|| payload.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "a non-string panic".to_string());
    node().stats().faulted();
    tracing::error!(target: "strata::object", object = %address, kind, panic = %text, "object panicked");
    AnyMessage::new(Faulted::new(format!("panicked: {text}")))
}
