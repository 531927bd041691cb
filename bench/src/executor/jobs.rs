//! The jobs of the executor benchmark, shared by the harness (which submits them) and by
//! `exec-worker` (the worker program of strata's process executor, which registers them):
//! a job type is run by its name in another process, so both sides must hold the same
//! definitions.

use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};
use strata::executor::Job;
use strata::Message;

/// An empty job: it gives back its index, which the submitter checks.
#[derive(Debug, Clone, Copy, Serialize, Deserialize, Message)]
#[message(name = "bench.executor.Empty")]
pub struct Empty {
    pub index: u64,
}

impl Job for Empty {
    type Output = u64;
    fn run(self) -> u64 {
        self.index
    }
}

/// A job that holds its CPU for `micros` microseconds (a spin on the clock), then gives
/// back its index.
#[derive(Debug, Clone, Copy, Serialize, Deserialize, Message)]
#[message(name = "bench.executor.Spin")]
pub struct Spin {
    pub index: u64,
    pub micros: u64,
}

impl Job for Spin {
    type Output = u64;
    fn run(self) -> u64 {
        spin(Duration::from_micros(self.micros));
        self.index
    }
}

/// Spins on the monotonic clock until `d` has passed.
pub fn spin(d: Duration) {
    let began = Instant::now();
    while began.elapsed() < d {
        std::hint::spin_loop();
    }
}
