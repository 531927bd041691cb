//! A worker process for the process tests: answers `Job { id, ms }` with `Done { id }`
//! after sleeping `ms` milliseconds (on a thread of its own), and `Blob` with the same
//! bytes reversed (large messages both ways across the link). Started by a parent's
//! `Process::of("slow_worker")`; run alone it waits until Ctrl-C.

use std::time::Duration;

use strata::prelude::*;
use strata_testbins::jobs::{Blob, Done, Job};

struct SlowWorker;

#[strata::machine]
impl SlowWorker {
    fn job(&mut self, _cx: &mut Context<Self>, j: Job) -> Done {
        std::thread::sleep(Duration::from_millis(j.ms));
        Done {
            id: j.id,
            pid: std::process::id(),
        }
    }

    fn blob(&mut self, _cx: &mut Context<Self>, mut b: Blob) -> Blob {
        b.bytes.reverse();
        b
    }
}

fn main() -> std::process::ExitCode {
    strata::main(Threaded(SlowWorker))
}
