//! A parent for the no-orphans test: a spool of three `slow_worker` processes, running
//! until it is stopped or killed.

use strata::prelude::*;
use strata::process::Process;
use strata::spool::Spool;

struct Parent;

#[strata::machine]
impl Parent {
    fn start(&mut self, cx: &mut Context<Self>, _: Start) {
        cx.create(Spool::of(Process::of("slow_worker")).workers(3));
    }
}

fn main() -> std::process::ExitCode {
    strata::main(Parent)
}
