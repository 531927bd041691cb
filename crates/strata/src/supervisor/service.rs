//! A service (what to run, how many, how to restart it), the hooks a supervisor calls,
//! and the records of a worker's start and end.

use std::sync::Arc;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::backoff::Backoff;
use crate::process::{Process, Stream};

/// Makes the process of one worker, given its id (`NAME-N`).
pub type MakeProcess = Arc<dyn Fn(&str) -> Process + Send + Sync>;

/// What a supervisor runs: `count` workers, each a [`Process`] made for its stable id
/// `NAME-0` .. `NAME-(count-1)`, restarted by a [`Backoff`] of its own when it ends.
#[derive(Clone)]
pub struct Service {
    pub(crate) name: String,
    pub(crate) count: usize,
    pub(crate) make: MakeProcess,
    pub(crate) restart: Backoff,
    pub(crate) settings: String,
    pub(crate) heartbeat: Option<Duration>,
    /// Retire each worker after this many requests, plus up to `.1` more (its own draw).
    pub(crate) recycle: Option<(u64, u64)>,
}

impl std::fmt::Debug for Service {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Service")
            .field("name", &self.name)
            .field("count", &self.count)
            .field("restart", &self.restart)
            .field("settings", &self.settings)
            .field("heartbeat", &self.heartbeat)
            .field("recycle", &self.recycle)
            .finish()
    }
}

impl Service {
    /// `count` workers named `name-N`, each running the process `make` gives for its id.
    /// Restarts default to 0.5 s doubling to 30 s, ±25%, five quick failures in a row
    /// before the worker is marked failed, the count reset after 30 s up.
    pub fn new(
        name: impl Into<String>,
        count: usize,
        make: impl Fn(&str) -> Process + Send + Sync + 'static,
    ) -> Service {
        Service {
            name: name.into(),
            count,
            make: Arc::new(make),
            restart: Backoff::growing(Duration::from_millis(500), Duration::from_secs(30))
                .growth(2.0)
                .jitter(0.25)
                .budget(Some(5))
                .healthy_after(Some(Duration::from_secs(30))),
            settings: String::new(),
            heartbeat: None,
            recycle: None,
        }
    }

    /// Recycles each worker after `after` requests plus a draw of its own from 0 to
    /// `jitter` (so workers do not all retire at once): the worker's program (a
    /// `strata::main` program) withdraws its names, finishes what it was sent and ends
    /// with [`Recycled`](crate::process::Recycled); the supervisor starts its successor at
    /// once, outside the restart budget. `None` (the default) for never. See
    /// `process::recycle`.
    pub fn recycle(mut self, after: Option<u64>, jitter: u64) -> Service {
        self.recycle = after.filter(|n| *n > 0).map(|n| (n, jitter));
        self
    }

    /// Pings each worker (its top object, which answers `Ping` with `Ack` as every machine
    /// does) three times per `timeout`; a worker that has answered nothing for `timeout` is
    /// killed (SIGKILL) and restarted like any worker that ended. Only for programs whose
    /// top object is a machine (`strata::main` of a machine): others never answer.
    pub fn heartbeat(mut self, timeout: Option<Duration>) -> Service {
        self.heartbeat = timeout.filter(|t| !t.is_zero());
        self
    }

    /// The restart policy (each worker gets its own copy, seeded apart).
    pub fn restart(mut self, backoff: Backoff) -> Service {
        self.restart = backoff;
        self
    }

    /// A summary of the settings the processes are made from: when a reload brings a
    /// service whose summary changed, its workers are replaced one at a time.
    pub fn settings(mut self, summary: impl Into<String>) -> Service {
        self.settings = summary.into();
        self
    }

    /// The service's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// How many workers it wants.
    pub fn count(&self) -> usize {
        self.count
    }
}

/// How a process ended.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Exit {
    /// It exited with this status.
    Code(i32),
    /// A signal ended it.
    Signal {
        /// The signal's number.
        number: i32,
        /// Its name (`SIGKILL`).
        name: String,
    },
}

impl Exit {
    /// From a process's exit status.
    pub fn of(status: &std::process::ExitStatus) -> Exit {
        use std::os::unix::process::ExitStatusExt;
        match status.signal() {
            Some(number) => Exit::Signal {
                number,
                name: crate::process::signal_name(number).to_string(),
            },
            None => Exit::Code(status.code().unwrap_or(-1)),
        }
    }

    /// True when SIGKILL ended it.
    pub fn is_sigkill(&self) -> bool {
        matches!(self, Exit::Signal { number, .. } if *number == libc::SIGKILL)
    }
}

impl std::fmt::Display for Exit {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Exit::Code(c) => write!(f, "exit {c}"),
            Exit::Signal { number, name } => write!(f, "killed by {name} ({number})"),
        }
    }
}

/// What the supervisor does after a worker ended.
#[derive(Debug, Clone, PartialEq)]
pub enum Then {
    /// Starts it again after this wait.
    Restart(Duration),
    /// Starts it again at once with new settings (a reload).
    Replace,
    /// Starts it again at once: it retired after its requests.
    Recycle,
    /// It failed too often without staying up: it is not started again until a reload.
    Failed(String),
    /// The supervisor is stopping.
    Stopped,
    /// The service shrank or went: the worker is gone.
    Removed,
}

/// A worker that started.
#[derive(Debug, Clone)]
pub struct Started<'a> {
    /// The service.
    pub service: &'a str,
    /// The worker (`NAME-N`).
    pub worker: &'a str,
    /// Its process.
    pub pid: u32,
}

/// A worker that ended.
#[derive(Debug, Clone)]
pub struct Ended<'a> {
    /// The service.
    pub service: &'a str,
    /// The worker.
    pub worker: &'a str,
    /// Its process, if it started.
    pub pid: Option<u32>,
    /// How it ended, if it started.
    pub exit: Option<Exit>,
    /// Its value as JSON (a fault as `{"type", "value"}`).
    pub returned: Option<serde_json::Value>,
    /// How long it was up.
    pub up_for: Duration,
    /// What happens next.
    pub then: Then,
    /// A note for people: `possible out-of-memory kill` for a SIGKILL the supervisor did
    /// not send.
    pub note: Option<String>,
}

/// One worker as the supervisor sees it, for status displays.
#[derive(Debug, Clone)]
pub struct WorkerView {
    /// The service.
    pub service: String,
    /// The worker.
    pub worker: String,
    /// `running`, `waiting`, `stopping` or `failed`.
    pub state: &'static str,
    /// Its current process, once started.
    pub pid: Option<u32>,
    /// Restarts so far.
    pub restarts: u32,
    /// Heartbeats its current process answered.
    pub heartbeats: u64,
    /// Times it retired after its requests and was started again.
    pub recycled: u32,
}

/// What a supervisor tells its owner, and asks it on reload; every method has an empty (or
/// plain) default. Called on the supervisor's and the workers' tasks: keep them short.
pub trait Hooks: Send + Sync + 'static {
    /// A worker's process started.
    fn started(&self, _worker: &Started<'_>) {}
    /// A worker's process printed a line; by default it goes to this process's stderr,
    /// prefixed with the worker's id.
    fn line(&self, _service: &str, worker: &str, _stream: Stream, line: &str) {
        eprintln!("{worker} | {line}");
    }
    /// A worker's process ended.
    fn ended(&self, _end: &Ended<'_>) {}
    /// On [`Reload`](super::Reload) (SIGHUP): the services as they should now be, or
    /// `None` to keep them (the default); then [`reloaded`](Self::reloaded).
    fn reload(&self) -> Option<Vec<Service>> {
        None
    }
    /// A reload was applied.
    fn reloaded(&self) {}
    /// The workers changed (started, ended, resized): all of them as they are now.
    fn changed(&self, _workers: &[WorkerView]) {}
}

/// Hooks that do only the defaults (lines to stderr).
#[derive(Debug, Clone, Copy, Default)]
pub struct NoHooks;

impl Hooks for NoHooks {}
