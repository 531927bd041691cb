//! Recycling: a program that retires after serving N requests, so that a slow leak or a
//! growing cache in a long-lived worker never outlives N requests (gunicorn's
//! `max_requests`).
//!
//! A supervisor asks for it by starting the worker with [`RECYCLE_VARIABLE`] set to N (a
//! role's `--recycle-after`, each worker's N spread by `--recycle-jitter`). [`main`]
//! then counts the ordinary messages that arrive from other processes (heartbeat `Ping`s
//! aside). At the N-th it retires without losing a request:
//!
//! 1. every publication of the process is withdrawn, so subscribers hear `Dropped` and a
//!    spool fed by name stops sending to it (a worker that leaves finishes what it holds);
//! 2. it goes on serving what still arrives, until nothing has come for
//!    [`QUIET`] (at most [`DRAIN`]);
//! 3. its top object is stopped, as by SIGTERM, and the program returns [`Recycled`]
//!    instead of the top object's value (exit status 0), which tells its supervisor to
//!    start the next one at once, outside the restart budget.
//!
//! [`main`]: super::main

use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};

use crate::object::Postbox;
use crate::runtime::{self, requests};
use crate::{Address, Message};

/// The environment variable that makes a strata program retire after this many requests.
pub const RECYCLE_VARIABLE: &str = "STRATA_RECYCLE_AFTER";

/// How long no request may arrive before a retiring program stops.
pub const QUIET: Duration = Duration::from_millis(250);

/// The longest a retiring program goes on serving before it stops anyway.
pub const DRAIN: Duration = Duration::from_secs(5);

/// What a program that retired after its requests returns (see the [module docs](self)).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Message)]
#[message(name = "strata.Recycled")]
pub struct Recycled {
    /// The requests it served, those that arrived while it drained included.
    pub requests: u64,
}

/// The limit [`RECYCLE_VARIABLE`] sets, if any; an error names the variable and the value.
pub(crate) fn limit_from_env() -> Result<Option<u64>, String> {
    match std::env::var(RECYCLE_VARIABLE) {
        Err(std::env::VarError::NotPresent) => Ok(None),
        Err(std::env::VarError::NotUnicode(_)) => Err(format!("{RECYCLE_VARIABLE} is not text")),
        Ok(v) => match v.trim().parse::<u64>() {
            Ok(0) => Ok(None),
            Ok(n) => Ok(Some(n)),
            Err(_) => Err(format!(
                "{RECYCLE_VARIABLE}=`{v}` is not a number of requests"
            )),
        },
    }
}

/// Counts requests from now on and retires the program at the `limit`-th (see the
/// [module docs](self)).
pub(crate) fn install(limit: u64, postbox: Postbox, top: Address) {
    requests::set_limit(limit);
    runtime::handle().spawn(async move {
        requests::wait_for_limit().await;
        tracing::info!(target: "strata::process", requests = limit, "served its requests: retiring (recycle)");
        crate::directory::withdraw_all(&postbox);
        let started = Instant::now();
        let mut last = requests::count();
        let mut quiet_since = Instant::now();
        while started.elapsed() < DRAIN {
            tokio::time::sleep(QUIET / 5).await;
            let now = requests::count();
            if now != last {
                last = now;
                quiet_since = Instant::now();
            } else if quiet_since.elapsed() >= QUIET {
                break;
            }
        }
        tracing::info!(target: "strata::process", requests = requests::count(), "recycled: stopping");
        RETIRED.store(true, Ordering::SeqCst);
        postbox.stop(top);
    });
}

/// Set just before a retiring program stops its top object.
static RETIRED: AtomicBool = AtomicBool::new(false);

/// True once the program retired after its requests.
pub(crate) fn retired() -> bool {
    RETIRED.load(Ordering::SeqCst)
}
