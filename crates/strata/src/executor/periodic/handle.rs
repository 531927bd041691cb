//! The thin handle of a `Periodic`, for plain Rust code.

use std::sync::Arc;
use std::time::Duration;

use parking_lot::Mutex;

use super::messages::{AddPeriodic, PeriodicStats, RemovePeriodic};
use super::periodic::{Periodic, PeriodicJob};
use super::stats::JobStatistics;
use crate::executor::Rejected;
use crate::message::AnyMessage;
use crate::object::ThreadContext;
use crate::standard::{Ack, Faulted};
use crate::Address;

/// How long a handle waits for the `Periodic` to answer.
const ANSWER_WAIT: Duration = Duration::from_secs(10);

impl Periodic {
    /// Starts the `Periodic` for plain Rust code and gives a handle to it. The `Periodic`
    /// is a child of the handle: dropping the last clone stops it (as does
    /// [`stop`](PeriodicHandle::stop)).
    pub fn start(self) -> PeriodicHandle {
        let mut cx = ThreadContext::attach();
        let address = cx.create(self);
        PeriodicHandle::new(address, cx, true)
    }
}

/// A handle to a [`Periodic`]: add and remove jobs while it runs, read the jobs'
/// statistics, stop it. Cheap to clone, usable from any thread (a job may hold one to
/// report on its fellows; a non-owning one, [`PeriodicHandle::to`], keeps it from keeping
/// the `Periodic` alive).
#[derive(Clone)]
pub struct PeriodicHandle {
    inner: Arc<Inner>,
}

struct Inner {
    address: Address,
    state: Mutex<State>,
    owned: bool,
}

struct State {
    cx: ThreadContext,
    ended: Option<Result<Vec<JobStatistics>, Faulted>>,
}

impl std::fmt::Debug for PeriodicHandle {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PeriodicHandle")
            .field("periodic", &self.inner.address)
            .field("owned", &self.inner.owned)
            .finish()
    }
}

impl PeriodicHandle {
    fn new(address: Address, cx: ThreadContext, owned: bool) -> Self {
        PeriodicHandle {
            inner: Arc::new(Inner {
                address,
                state: Mutex::new(State { cx, ended: None }),
                owned,
            }),
        }
    }

    /// A handle to the `Periodic` at `address` (in this process) that does not own it.
    pub fn to(address: Address) -> Self {
        PeriodicHandle::new(address, ThreadContext::attach(), false)
    }

    /// The `Periodic`'s address.
    pub fn address(&self) -> Address {
        self.inner.address
    }

    fn ask(&self, message: impl crate::Message) -> AnyMessage {
        let mut state = self.inner.state.lock();
        state
            .cx
            .ask_timeout(self.inner.address, message, ANSWER_WAIT)
    }

    /// Adds a job while the `Periodic` runs; refused when its schedule is improbable or
    /// its name is taken (or the `Periodic` does not answer).
    pub fn add(&self, mut job: PeriodicJob) -> Result<(), Rejected> {
        job.added = Some(std::time::Instant::now());
        let answer = self.ask(AddPeriodic(job));
        if answer.is::<Ack>() {
            return Ok(());
        }
        Err(match answer.downcast::<Rejected>() {
            Ok(r) => r,
            Err(other) => Rejected::new(reason(&other)),
        })
    }

    /// Removes the job named `name`; false when there is none. A run in progress
    /// finishes and is not followed by another.
    pub fn remove(&self, name: &str) -> bool {
        self.ask(RemovePeriodic {
            name: name.to_string(),
        })
        .is::<Ack>()
    }

    /// The statistics of every job: the scheduled ones first, then those retired or
    /// removed.
    pub fn statistics(&self) -> Result<Vec<JobStatistics>, Faulted> {
        let answer = self.ask(PeriodicStats);
        answer
            .downcast::<Vec<JobStatistics>>()
            .map_err(|other| Faulted::new(reason(&other)))
    }

    /// Stops the `Periodic` (runs in progress finish first when it has its own executor)
    /// and gives the jobs' final statistics; again on a second call. A handle that does
    /// not own the `Periodic` sends `Stop` and gives the statistics of just before.
    pub fn stop(&self) -> Result<Vec<JobStatistics>, Faulted> {
        let address = self.inner.address;
        if !self.inner.owned {
            let before = self.statistics();
            self.inner.state.lock().cx.stop(address);
            return before;
        }
        let mut state = self.inner.state.lock();
        if let Some(ended) = &state.ended {
            return ended.clone();
        }
        state.cx.stop(address);
        let value = state.cx.wait_for(address);
        let result = value
            .downcast::<Vec<JobStatistics>>()
            .map_err(|other| Faulted::new(reason(&other)));
        state.ended = Some(result.clone());
        result
    }
}

fn reason(answer: &AnyMessage) -> String {
    match answer.as_fault() {
        Some(f) => f.reason(),
        None => format!("unexpected answer `{}`", answer.type_name()),
    }
}
