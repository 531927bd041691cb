//! The mailbox: one bounded queue that serves blocking and async receivers alike.
//!
//! Any number of senders push; exactly one receiver (the object) pops, either by parking
//! its OS thread ([`Mailbox::pop_blocking`]) or by registering a task waker
//! ([`Mailbox::poll_pop`]). The capacity bounds ordinary messages only: the runtime's own
//! deliveries (`Stop`, `Returned`, timers, overload notices) are *control* pushes that are
//! always accepted, so shutdown and bookkeeping can never be lost to a full queue.
//!
//! A machine on the shared runtime also attaches a [`Runner`]: when a message finds such a
//! mailbox empty and nobody running its object, [`Mailbox::offer`] grants the sender the
//! right to run the handler at once, on its own thread ([`Granted`]), instead of queueing
//! the message and waking the object's task. The *busy* flag makes the object's task and
//! such senders take turns, so handlers never overlap and each sender's messages are
//! handled in the order sent (a message is only run directly when nothing is queued before
//! it). Only threads that allow it run handlers directly (see [`allow_direct_runs`]), never
//! more than [`DIRECT_DEPTH`] deep, and a machine whose handler was slow when run directly
//! runs on its own task for a while (see [`Mailbox::release`]).
//!
//! The mailbox also keeps the object's *watchers* ([`Mailbox::watch`]): the objects told
//! with `Ended` when it closes. They are kept under the same lock as the `closed` flag, so
//! a watch that races with the end is either taken before the close (and told by the
//! ending object) or refused after it (and told at once by the watcher's side).

use std::cell::Cell;
use std::collections::{HashSet, VecDeque};
use std::sync::Arc;
use std::task::{Context, Poll, Waker};
use std::time::Instant;

use parking_lot::Mutex;

use super::{Delivery, Envelope};
use crate::address::BuildAddressHasher;
use crate::Address;

/// Runs an object's handler for one envelope on the calling thread, once its mailbox has
/// granted that (see [`Mailbox::offer`]); it must call [`Mailbox::release`] when done.
pub(crate) trait Runner: Send + Sync {
    fn run(&self, envelope: Envelope);
}

/// The right, granted by a mailbox, to handle one envelope now, on this thread.
pub(crate) struct Granted {
    runner: Arc<dyn Runner>,
    envelope: Envelope,
}

impl Granted {
    /// Runs the handler (one level deeper in this thread's budget of direct runs).
    pub(crate) fn run(self) {
        let budget = DIRECT_BUDGET.get();
        DIRECT_BUDGET.set(budget.saturating_sub(1));
        let _restore = Restore(budget);
        self.runner.run(self.envelope);
    }
}

struct Restore(u8);

impl Drop for Restore {
    fn drop(&mut self) {
        DIRECT_BUDGET.set(self.0);
    }
}

/// A direct run at least this long pauses direct runs of that machine (see
/// [`Mailbox::release`]): beyond it a thread switch costs less than waiting.
pub(crate) const SLOW_DIRECT_RUN: std::time::Duration = std::time::Duration::from_micros(50);

/// How long a slow direct run pauses direct runs of its machine.
pub(crate) const SLOW_PAUSE: std::time::Duration = std::time::Duration::from_millis(100);

/// How deep direct runs may nest on one thread (a handler run directly that sends to
/// another idle machine runs that one too, and so on); deeper messages are queued.
pub(crate) const DIRECT_DEPTH: u8 = 4;

thread_local! {
    static DIRECT_BUDGET: Cell<u8> = const { Cell::new(0) };
    static DIRECT_RUNS: Cell<u32> = const { Cell::new(0) };
}

/// One direct run in [`TIMED_EVERY`] on each thread (the first included) is timed to find
/// slow handlers: reading the clock twice would cost as much as a cheap handler.
pub(crate) const TIMED_EVERY: u32 = 16;

/// How long a thread waiting for its next message yields its CPU in a loop before it
/// parks (see [`Mailbox::pop_blocking`]). A message that arrives meanwhile needs no
/// wake-up: on a loaded machine, waking a parked thread (a system call and, on a virtual
/// machine, an interrupt to another CPU) and switching it back in costs more than the
/// yields, which give the CPU to whoever else is ready. Measured with `server_4` under
/// wrk on 2 virtual CPUs: 0.58× → 0.66× bare hyper (bench/README.md).
pub(crate) const SPIN_FOR: std::time::Duration = std::time::Duration::from_micros(200);

/// A thread spins only while its waits are shorter than this: one that is mostly idle
/// parks at once, so a quiet process burns no CPU in yields.
pub(crate) const SPIN_WORTHWHILE_WAIT: std::time::Duration = std::time::Duration::from_millis(2);

thread_local! {
    /// Whether this thread's last wait for a message was shorter than
    /// [`SPIN_WORTHWHILE_WAIT`].
    static SPIN_WORTHWHILE: Cell<bool> = const { Cell::new(true) };
}

/// Whether to time this direct run (see [`TIMED_EVERY`]).
pub(crate) fn time_this_run() -> bool {
    let n = DIRECT_RUNS.get();
    DIRECT_RUNS.set(n.wrapping_add(1));
    n.is_multiple_of(TIMED_EVERY)
}

/// Lets the current thread run idle machines' handlers directly when it sends to them:
/// the runtime's threads and the OS threads of function objects and threaded machines do;
/// other threads always queue.
pub(crate) fn allow_direct_runs() {
    DIRECT_BUDGET.set(DIRECT_DEPTH);
}

/// Runs `f` with direct runs forbidden on this thread: every message it sends is queued.
pub(crate) fn without_direct_runs<R>(f: impl FnOnce() -> R) -> R {
    let _restore = Restore(DIRECT_BUDGET.get());
    DIRECT_BUDGET.set(0);
    f()
}

/// A mailbox's list of watchers is pruned of ended ones when it reaches a power of two
/// from this length on (see [`Mailbox::watch`]).
pub(crate) const PRUNE_WATCHERS_FROM: usize = 64;

/// Why a push was refused; the envelope comes back to the caller.
pub(crate) enum Refused {
    /// The queue holds `capacity` ordinary messages already.
    Full(Envelope),
    /// The object has ended.
    Closed(Envelope),
    /// The object stands in for this address: ordinary messages go there (see
    /// [`Mailbox::forward_to`]).
    Forward(Envelope, Address),
}

enum Waiter {
    None,
    Task(Waker),
    Thread(std::thread::Thread),
}

impl Waiter {
    fn wake(self) {
        match self {
            Waiter::None => {}
            Waiter::Task(w) => w.wake(),
            Waiter::Thread(t) => t.unpark(),
        }
    }
}

struct Inner {
    /// The envelopes, each marked with how it was delivered.
    queue: VecDeque<Envelope>,
    /// The ordinary (non-control) envelopes in `queue`: what the capacity bounds.
    ordinary: usize,
    waiter: Waiter,
    closed: bool,
    /// Where ordinary messages go instead of this queue, once set.
    forward: Option<Address>,
    /// Runs the object's handler on a sender's thread (machines on the shared runtime).
    runner: Option<Arc<dyn Runner>>,
    /// Someone (the object's task or a sender granted a direct run) is running the object.
    busy: bool,
    /// No direct runs before this time (a handler run directly was slow).
    queue_until: Option<Instant>,
    /// The objects to tell when this one ends (each once; see [`Mailbox::watch`]).
    watchers: Vec<Address>,
}

impl Inner {
    /// Moves everything queued into `batch` (empty) for the machine's task to handle.
    fn take_into(&mut self, batch: &mut VecDeque<Envelope>) {
        debug_assert!(batch.is_empty());
        std::mem::swap(&mut self.queue, batch);
        self.ordinary = 0;
    }

    /// Whether direct runs are allowed now (not within a pause after a slow handler).
    fn direct_now(&mut self) -> bool {
        match self.queue_until {
            None => true,
            Some(t) if Instant::now() >= t => {
                self.queue_until = None;
                true
            }
            Some(_) => false,
        }
    }

    fn pop(&mut self) -> Option<Envelope> {
        let envelope = self.queue.pop_front()?;
        if envelope.delivery == Delivery::Ordinary {
            self.ordinary -= 1;
        }
        Some(envelope)
    }
}

/// A bounded multi-producer, single-consumer queue of envelopes.
pub(crate) struct Mailbox {
    inner: Mutex<Inner>,
    capacity: usize,
    /// Receivers for which an `Overloaded` notice waits unread in this mailbox: further
    /// refusals by them are counted and logged but not queued again (see
    /// [`Postbox`](crate::object::Postbox)).
    notices: Mutex<HashSet<Address, BuildAddressHasher>>,
}

impl Mailbox {
    pub(crate) fn new(capacity: usize) -> Self {
        Mailbox {
            inner: Mutex::new(Inner {
                queue: VecDeque::new(),
                ordinary: 0,
                waiter: Waiter::None,
                closed: false,
                forward: None,
                runner: None,
                busy: false,
                queue_until: None,
                watchers: Vec::new(),
            }),
            capacity,
            notices: Mutex::new(HashSet::default()),
        }
    }

    /// Notes that an `Overloaded` notice from `receiver` is now queued here; false when
    /// one was queued already (and is still unread).
    pub(crate) fn note_overload_notice(&self, receiver: Address) -> bool {
        self.notices.lock().insert(receiver)
    }

    /// The `Overloaded` notice from `receiver` has been read.
    pub(crate) fn overload_notice_read(&self, receiver: Address) {
        self.notices.lock().remove(&receiver);
    }

    pub(crate) fn capacity(&self) -> usize {
        self.capacity
    }

    /// Queues an envelope; control deliveries ignore the capacity.
    pub(crate) fn push(&self, envelope: Envelope, delivery: Delivery) -> Result<(), Refused> {
        match self.deliver(envelope, delivery, false)? {
            None => Ok(()),
            Some(_) => unreachable!("push never grants a direct run"),
        }
    }

    /// Like [`push`](Self::push), but when the object has a runner, nothing is queued and
    /// nobody is running it, the caller is granted the run instead: it must call
    /// [`Granted::run`] (after releasing any lock it holds).
    pub(crate) fn offer(
        &self,
        envelope: Envelope,
        delivery: Delivery,
    ) -> Result<Option<Granted>, Refused> {
        self.deliver(envelope, delivery, DIRECT_BUDGET.get() > 0)
    }

    fn deliver(
        &self,
        mut envelope: Envelope,
        delivery: Delivery,
        may_run: bool,
    ) -> Result<Option<Granted>, Refused> {
        envelope.delivery = delivery;
        let waiter = {
            let mut inner = self.inner.lock();
            if inner.closed {
                return Err(Refused::Closed(envelope));
            }
            let ordinary = delivery == Delivery::Ordinary;
            if ordinary {
                if let Some(to) = inner.forward {
                    return Err(Refused::Forward(envelope, to));
                }
                if inner.ordinary >= self.capacity {
                    return Err(Refused::Full(envelope));
                }
            }
            if may_run && !inner.busy && inner.queue.is_empty() && inner.direct_now() {
                if let Some(runner) = &inner.runner {
                    let runner = runner.clone();
                    inner.busy = true;
                    return Ok(Some(Granted { runner, envelope }));
                }
            }
            if ordinary {
                inner.ordinary += 1;
            }
            inner.queue.push_back(envelope);
            std::mem::replace(&mut inner.waiter, Waiter::None)
        };
        waiter.wake();
        Ok(None)
    }

    /// Attaches the runner of a machine on the shared runtime. The mailbox starts busy:
    /// the machine's task handles `Start` first, then calls
    /// [`continue_or_release`](Self::continue_or_release).
    pub(crate) fn attach(&self, runner: Arc<dyn Runner>) {
        let mut inner = self.inner.lock();
        inner.runner = Some(runner);
        inner.busy = true;
    }

    /// For the task of a machine with a runner: ready with `true` and the queued envelopes
    /// in `batch` (the task is now running the machine) when something is queued and
    /// nobody runs the machine; ready with `false` once the mailbox is closed.
    pub(crate) fn poll_acquire(
        &self,
        cx: &mut Context<'_>,
        batch: &mut VecDeque<Envelope>,
    ) -> Poll<bool> {
        let mut inner = self.inner.lock();
        if inner.closed {
            return Poll::Ready(false);
        }
        if !inner.busy && !inner.queue.is_empty() {
            inner.busy = true;
            inner.take_into(batch);
            return Poll::Ready(true);
        }
        match &inner.waiter {
            Waiter::Task(w) if w.will_wake(cx.waker()) => {}
            _ => inner.waiter = Waiter::Task(cx.waker().clone()),
        }
        Poll::Pending
    }

    /// For the task of a machine with a runner, after a batch: takes what was queued
    /// meanwhile (`true`, still running the machine) or lets senders run it (`false`).
    pub(crate) fn continue_or_release(&self, batch: &mut VecDeque<Envelope>) -> bool {
        let mut inner = self.inner.lock();
        if !inner.closed && !inner.queue.is_empty() {
            inner.take_into(batch);
            return true;
        }
        inner.busy = false;
        false
    }

    /// Ends a direct run: wakes the machine's task if messages were queued meanwhile (or
    /// the machine ended). A timed run that `took` [`SLOW_DIRECT_RUN`] or longer makes
    /// the next messages queue for [`SLOW_PAUSE`], so a machine with long handlers runs
    /// on its own task, in parallel with its senders, instead of holding them up.
    pub(crate) fn release(&self, took: Option<std::time::Duration>) {
        let waiter = {
            let mut inner = self.inner.lock();
            inner.busy = false;
            if took.is_some_and(|t| t >= SLOW_DIRECT_RUN) {
                inner.queue_until = Some(Instant::now() + SLOW_PAUSE);
            }
            if inner.queue.is_empty() && !inner.closed {
                return;
            }
            std::mem::replace(&mut inner.waiter, Waiter::None)
        };
        waiter.wake();
    }

    /// Takes the next envelope, parking the thread until one arrives or `deadline` passes.
    ///
    /// Before parking, a thread whose recent waits were short spins for up to
    /// [`SPIN_FOR`], yielding its CPU on each turn: a message that comes meanwhile costs
    /// its sender no wake-up and this thread no switch back in.
    pub(crate) fn pop_blocking(&self, deadline: Option<Instant>) -> Option<Envelope> {
        if let Some(e) = self.inner.lock().pop() {
            SPIN_WORTHWHILE.set(true);
            return Some(e);
        }
        let since = Instant::now();
        let spin_until = SPIN_WORTHWHILE.get().then_some(since + SPIN_FOR);
        let e = self.wait(deadline, spin_until);
        SPIN_WORTHWHILE.set(since.elapsed() < SPIN_WORTHWHILE_WAIT);
        e
    }

    /// Waits for an envelope: spins (yielding) until `spin_until`, then parks until
    /// `deadline` (`None`: for as long as it takes).
    fn wait(&self, deadline: Option<Instant>, mut spin_until: Option<Instant>) -> Option<Envelope> {
        loop {
            {
                let mut inner = self.inner.lock();
                if let Some(e) = inner.pop() {
                    return Some(e);
                }
                if let Some(until) = spin_until {
                    let now = Instant::now();
                    if now < until && deadline.is_none_or(|d| now < d) {
                        drop(inner);
                        std::thread::yield_now();
                        continue;
                    }
                    spin_until = None;
                }
                inner.waiter = Waiter::Thread(std::thread::current());
            }
            match deadline {
                None => std::thread::park(),
                Some(d) => {
                    let now = Instant::now();
                    if now >= d {
                        let mut inner = self.inner.lock();
                        inner.waiter = Waiter::None;
                        return inner.pop();
                    }
                    std::thread::park_timeout(d - now);
                }
            }
        }
    }

    /// Takes the next envelope if one is queued.
    pub(crate) fn try_pop(&self) -> Option<Envelope> {
        self.inner.lock().pop()
    }

    /// Takes the next envelope, or registers the task to be woken when one arrives.
    pub(crate) fn poll_pop(&self, cx: &mut Context<'_>) -> Poll<Envelope> {
        let mut inner = self.inner.lock();
        match inner.pop() {
            Some(e) => Poll::Ready(e),
            None => {
                match &inner.waiter {
                    Waiter::Task(w) if w.will_wake(cx.waker()) => {}
                    _ => inner.waiter = Waiter::Task(cx.waker().clone()),
                }
                Poll::Pending
            }
        }
    }

    /// Makes this mailbox a stand-in's: from now on ordinary pushes are handed back to
    /// the deliverer to go to `to` (keeping their sender), so they skip the object.
    /// Control pushes still queue here. `earlier` (envelopes the object took out already,
    /// oldest first), then the ordinary envelopes still queued, are passed to `deliver`
    /// first, under the lock, so no later push overtakes them; `deliver` must not push to
    /// this mailbox (the caller makes sure `to` does not lead back here, and that no
    /// handler runs directly meanwhile).
    pub(crate) fn forward_to(
        &self,
        to: Address,
        earlier: Vec<Envelope>,
        mut deliver: impl FnMut(Envelope),
    ) {
        let mut inner = self.inner.lock();
        for e in earlier {
            deliver(e);
        }
        let queued = std::mem::take(&mut inner.queue);
        for e in queued {
            match e.delivery {
                Delivery::Control => inner.queue.push_back(e),
                Delivery::Ordinary => deliver(e),
            }
        }
        inner.ordinary = 0;
        inner.forward = Some(to);
    }

    /// Ends forwarding: ordinary pushes queue here again.
    pub(crate) fn stop_forwarding(&self) {
        self.inner.lock().forward = None;
    }

    /// The address ordinary pushes are forwarded to, if any.
    pub(crate) fn forwarding(&self) -> Option<Address> {
        self.inner.lock().forward
    }

    /// Adds `watcher` to the objects told when this one ends (once, however often it
    /// asks); false when the mailbox is closed already (the object has ended: the caller
    /// tells the watcher itself).
    ///
    /// Watchers that ended are dropped from time to time (when the list reaches a power of
    /// two from [`PRUNE_WATCHERS_FROM`] on), so a long-lived object watched by many
    /// short-lived ones keeps a bounded list.
    pub(crate) fn watch(&self, watcher: Address) -> bool {
        let prune = {
            let mut inner = self.inner.lock();
            if inner.closed {
                return false;
            }
            if !inner.watchers.contains(&watcher) {
                inner.watchers.push(watcher);
            }
            let n = inner.watchers.len();
            n >= PRUNE_WATCHERS_FROM && n.is_power_of_two()
        };
        if prune {
            self.prune_watchers();
        }
        true
    }

    /// Drops the watchers that have ended. Their liveness is looked up outside this
    /// mailbox's lock: a sender holds a table shard's lock while it takes a mailbox's, so
    /// the reverse order could deadlock.
    fn prune_watchers(&self) {
        let watchers = self.inner.lock().watchers.clone();
        let ended: HashSet<Address, BuildAddressHasher> = watchers
            .into_iter()
            .filter(|a| !super::node().is_live(a.object()))
            .collect();
        if !ended.is_empty() {
            self.inner.lock().watchers.retain(|a| !ended.contains(a));
        }
    }

    /// Refuses further pushes and watches; returns whatever was still queued, and the
    /// watchers to tell that the object ended.
    pub(crate) fn close(&self) -> (VecDeque<Envelope>, Vec<Address>) {
        let (queue, watchers, runner, waiter) = {
            let mut inner = self.inner.lock();
            inner.closed = true;
            inner.ordinary = 0;
            (
                std::mem::take(&mut inner.queue),
                std::mem::take(&mut inner.watchers),
                inner.runner.take(),
                std::mem::replace(&mut inner.waiter, Waiter::None),
            )
        };
        // Outside the lock: the runner may hold the last reference to the object's state,
        // and a task waiting to run the machine must learn that it ended.
        drop(runner);
        if let Waiter::Task(w) = waiter {
            w.wake();
        }
        (queue, watchers)
    }

    /// The number of queued envelopes.
    pub(crate) fn len(&self) -> usize {
        self.inner.lock().queue.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::message::AnyMessage;
    use crate::standard::{Ping, Stop};

    fn envelope(n: u64, control: bool) -> Envelope {
        let message = if control {
            AnyMessage::new(Stop)
        } else {
            AnyMessage::new(Ping)
        };
        Envelope::new(
            Address::from_parts(1, n),
            Address::from_parts(1, 99),
            message,
        )
    }

    struct Count(std::sync::atomic::AtomicU32);

    impl Runner for Count {
        fn run(&self, _envelope: Envelope) {
            self.0.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        }
    }

    #[test]
    fn direct_runs_are_granted_only_when_idle_and_nothing_is_queued() {
        let mb = Mailbox::new(8);
        let count = Arc::new(Count(Default::default()));
        mb.attach(count.clone());
        allow_direct_runs();
        // Attached busy (the task handles Start first): the message queues.
        assert!(matches!(
            mb.offer(envelope(1, false), Delivery::Ordinary),
            Ok(None)
        ));
        let mut batch = VecDeque::new();
        assert!(
            mb.continue_or_release(&mut batch),
            "takes the queued message"
        );
        assert_eq!(batch.len(), 1);
        batch.clear();
        assert!(
            !mb.continue_or_release(&mut batch),
            "nothing more: released"
        );
        // Idle and empty: granted, and busy until released.
        let granted = mb
            .offer(envelope(2, false), Delivery::Ordinary)
            .ok()
            .flatten();
        assert!(granted.is_some(), "an idle machine is run directly");
        assert!(
            matches!(mb.offer(envelope(3, false), Delivery::Ordinary), Ok(None)),
            "busy: queued"
        );
        assert!(
            matches!(mb.offer(envelope(4, false), Delivery::Ordinary), Ok(None)),
            "queued behind #3"
        );
        granted.expect("granted").run();
        mb.release(None); // what a runner does when its handler returns
        assert_eq!(count.0.load(std::sync::atomic::Ordering::SeqCst), 1);
        // Released with messages waiting: they stay for the task, in order.
        assert!(matches!(
            mb.offer(envelope(5, false), Delivery::Ordinary),
            Ok(None)
        ));
        let waker = std::task::Waker::noop();
        let mut cx = Context::from_waker(waker);
        match mb.poll_acquire(&mut cx, &mut batch) {
            Poll::Ready(true) => {}
            _ => panic!("the task takes what was queued"),
        }
        let order: Vec<u64> = batch.iter().map(|e| e.sender().object()).collect();
        assert_eq!(order, vec![3, 4, 5]);
        // A thread that does not allow direct runs always queues.
        let other = std::thread::spawn({
            let mb = Arc::new(Mailbox::new(8));
            mb.attach(count.clone());
            let mut b = VecDeque::new();
            mb.continue_or_release(&mut b);
            move || matches!(mb.offer(envelope(6, false), Delivery::Ordinary), Ok(None))
        });
        assert!(other.join().expect("the other thread"));
        assert!(mb.close().0.is_empty());
    }

    #[test]
    fn a_waiting_thread_spins_only_while_its_waits_are_short() {
        let mb = Arc::new(Mailbox::new(8));
        std::thread::spawn({
            let mb = mb.clone();
            move || {
                // A message that comes while the receiver spins is taken, and the thread
                // goes on spinning: its wait was short. (On a loaded machine the sender
                // may come too late for that: then nothing can be concluded.)
                let sender = std::thread::spawn({
                    let mb = mb.clone();
                    move || {
                        std::thread::sleep(std::time::Duration::from_micros(50));
                        assert!(mb.push(envelope(1, false), Delivery::Ordinary).is_ok());
                    }
                });
                let began = Instant::now();
                assert!(mb.pop_blocking(None).is_some());
                if began.elapsed() < SPIN_WORTHWHILE_WAIT {
                    assert!(SPIN_WORTHWHILE.get());
                }
                sender.join().unwrap();
                // A wait that ends at its deadline, longer than the worthwhile wait, ends
                // the spinning: the next wait parks at once.
                let deadline = Instant::now() + SPIN_WORTHWHILE_WAIT * 2;
                assert!(mb.pop_blocking(Some(deadline)).is_none());
                assert!(Instant::now() >= deadline);
                assert!(!SPIN_WORTHWHILE.get());
                // A short deadline is kept even while spinning would go on longer.
                SPIN_WORTHWHILE.set(true);
                let started = Instant::now();
                let short = started + SPIN_FOR / 4;
                assert!(mb.pop_blocking(Some(short)).is_none());
                assert!(Instant::now() >= short);
                // A message already queued is taken without waiting, and counts as busy.
                SPIN_WORTHWHILE.set(false);
                assert!(mb.push(envelope(2, false), Delivery::Ordinary).is_ok());
                assert!(mb.pop_blocking(None).is_some());
                assert!(SPIN_WORTHWHILE.get());
            }
        })
        .join()
        .unwrap();
    }

    #[test]
    fn a_watcher_is_kept_once_until_the_close_and_refused_after_it() {
        let mb = Mailbox::new(8);
        let (a, b) = (Address::from_parts(1, 10), Address::from_parts(1, 11));
        assert!(mb.watch(a));
        assert!(mb.watch(b));
        assert!(mb.watch(a), "a second watch by the same watcher");
        let (left, watchers) = mb.close();
        assert!(left.is_empty());
        assert_eq!(watchers, vec![a, b], "each watcher once, in order");
        assert!(!mb.watch(a), "closed: the caller tells the watcher itself");
        assert!(mb.close().1.is_empty(), "told once");
    }

    #[test]
    fn watchers_that_ended_are_pruned_as_the_list_grows() {
        let mb = Mailbox::new(8);
        // Object numbers never registered on this node: watchers that have ended.
        for n in 0..(PRUNE_WATCHERS_FROM as u64 - 1) {
            assert!(mb.watch(Address::from_parts(
                crate::address::local_node(),
                1_000_000 + n
            )));
        }
        let live = crate::object::ThreadContext::attach();
        assert!(mb.watch(live.address()));
        let (_, watchers) = mb.close();
        assert_eq!(watchers, vec![live.address()]);
    }

    #[test]
    fn forwarding_keeps_the_order_and_leaves_control_messages_queued() {
        let mb = Mailbox::new(8);
        assert!(mb.push(envelope(2, false), Delivery::Ordinary).is_ok());
        assert!(mb.push(envelope(3, true), Delivery::Control).is_ok());
        assert!(mb.push(envelope(4, false), Delivery::Ordinary).is_ok());
        let next = Address::from_parts(7, 1);
        let mut forwarded = Vec::new();
        mb.forward_to(next, vec![envelope(1, false)], |e| {
            forwarded.push(e.sender().object())
        });
        assert_eq!(
            forwarded,
            vec![1, 2, 4],
            "earlier first, then queued, in order"
        );
        match mb.push(envelope(5, false), Delivery::Ordinary) {
            Err(Refused::Forward(e, to)) => {
                assert_eq!(to, next);
                assert_eq!(e.sender().object(), 5);
            }
            _ => panic!("an ordinary push after forward_to must be handed back"),
        }
        assert!(
            mb.push(envelope(6, true), Delivery::Control).is_ok(),
            "control still queues"
        );
        let mut batch = VecDeque::new();
        assert!(mb.continue_or_release(&mut batch), "takes what is queued");
        let kept: Vec<u64> = batch.iter().map(|e| e.sender().object()).collect();
        assert_eq!(kept, vec![3, 6]);
        mb.stop_forwarding();
        assert!(
            mb.push(envelope(7, false), Delivery::Ordinary).is_ok(),
            "queues again"
        );
        assert_eq!(mb.len(), 1);
    }
}
