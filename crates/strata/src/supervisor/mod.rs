//! Supervision: services of worker processes kept running, restarted, resized and
//! reloaded (what cotyledon's `ServiceManager` and gunicorn's arbiter do, as an object).
//!
//! A [`Supervisor`] is a machine. It runs each [`Service`]'s `count` workers as
//! [`Process`](crate::process::Process) children with stable ids `NAME-0` .. `NAME-N`
//! (also their process titles, `strata: NAME-N`, and `STRATA_WORKER` in their
//! environment), each in a process group of its own, and:
//!
//! * restarts a worker that ends after an interval from its own [`Backoff`](crate::Backoff)
//!   (growing, jittered); a worker that stayed up for the backoff's healthy period starts
//!   the count again, and one that fails quickly more often than the budget allows is
//!   marked failed instead of looping (a reload gives it a fresh start);
//! * records how each process ended ([`Exit`]: status or signal; a SIGKILL it did not
//!   send is noted as a possible out-of-memory kill) and the value it returned;
//! * resizes a service on [`Resize`] (new ids above, the highest ids stopped first),
//!   steps every service by one on [`Step`] (SIGTTIN / SIGTTOU with
//!   [`with_signals`](Supervisor::with_signals)), and on [`Reload`] (SIGHUP) asks its
//!   [`Hooks`] for the services as they should be: new ones start, removed ones stop,
//!   changed ones have their workers replaced one at a time;
//! * on `Stop` stops every worker (SIGTERM, the process's grace period, SIGKILL) and
//!   returns. The children die with it even when it is killed with SIGKILL
//!   (`PR_SET_PDEATHSIG`), and, being its children, they form a group: they find each
//!   other by name at group scope through the [directory](crate::directory).
//!
//! Unlike a [spool](crate::spool), a supervisor routes no requests: its workers are
//! services in their own right (servers, named workers) that find each other by name.
//! `strata run` is a supervisor whose services are a home's roles ([`crate::home`]).
//!
//! ```no_run
//! use std::time::Duration;
//! use strata::prelude::*;
//! use strata::process::Process;
//! use strata::supervisor::{Resize, Service, Supervisor};
//!
//! let mut cx = ThreadContext::attach();
//! let supervisor = cx.create(
//!     Supervisor::new().service(Service::new("worker", 4, |_id| Process::of("worker_10"))),
//! );
//! cx.send(supervisor, Resize { service: "worker".into(), count: 8 });
//! # std::thread::sleep(Duration::from_secs(1));
//! cx.stop(supervisor);
//! cx.wait_for(supervisor);
//! ```

mod machine;
mod service;
pub mod signals;

pub use machine::Supervisor;
pub use service::{Ended, Exit, Hooks, MakeProcess, NoHooks, Service, Started, Then, WorkerView};

use serde::{Deserialize, Serialize};

/// Changes how many workers a service has.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, crate::Message)]
#[message(name = "supervisor.Resize")]
pub struct Resize {
    /// The service.
    pub service: String,
    /// Its new count of workers.
    pub count: usize,
}

/// Adds (`by` > 0) or removes workers of one service, or of every service when `service`
/// is `None`; never below one worker.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, crate::Message)]
#[message(name = "supervisor.Step")]
pub struct Step {
    /// The service, or every one.
    pub service: Option<String>,
    /// How many workers to add (negative: remove).
    pub by: i32,
}

/// Re-reads the services from the supervisor's [`Hooks::reload`] and applies what
/// changed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, crate::Message)]
#[message(name = "supervisor.Reload")]
pub struct Reload;
