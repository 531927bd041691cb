//! A tiny program run by the lifecycle tests (`crates/strata/tests/lifecycle_main.rs`): a top object run by
//! `strata::main`, so the tests can check exit statuses and signal handling end to end.
//!
//! * `lifecycle_probe tree` — a top machine with two function-object children and one
//!   machine child; prints `ready` once they exist, and each child prints `stopped ...`
//!   when `Stop` reaches it. Runs until stopped (SIGTERM, Ctrl-C).
//! * `lifecycle_probe exit N` — the top returns the integer N (the exit status).
//! * `lifecycle_probe fault` — the top returns a `Faulted` (exit status 1, one line on
//!   stderr).

use std::io::Write;
use std::process::ExitCode;
use std::time::Duration;

use strata::prelude::*;

fn say(line: &str) {
    let mut out = std::io::stdout().lock();
    let _ = writeln!(out, "{line}");
    let _ = out.flush();
}

/// Prints `stopped leaf` when stopped, then ends.
struct Leaf;

#[strata::machine]
impl Leaf {
    fn stop(&mut self, cx: &mut Context<Self>, _: Stop) {
        say("stopped leaf");
        cx.complete(Ack);
    }
}

/// Creates the children; no `Stop` handler: stopping it stops them, then it ends with
/// `Aborted`.
struct Top;

#[strata::machine]
impl Top {
    fn start(&mut self, cx: &mut Context<Self>, _: Start) {
        for i in 0..2 {
            cx.create(Thread::new(move |cx: &mut ThreadContext| {
                // Bounded: a probe left running by a failed test ends by itself.
                if cx
                    .select_timeout::<(Stop,)>(Duration::from_secs(60))
                    .is_ok()
                {
                    say(&format!("stopped thread {i}"));
                }
            }));
        }
        cx.create(Leaf);
        say("ready");
    }
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    match args.first().map(String::as_str) {
        Some("tree") => strata::main(Top),
        Some("exit") => {
            let n: i64 = args.get(1).and_then(|a| a.parse().ok()).unwrap_or(0);
            strata::main(Thread::new(move |_cx: &mut ThreadContext| n))
        }
        Some("fault") => strata::main(Thread::new(|_cx: &mut ThreadContext| {
            Err::<(), _>(Faulted::new("the probe failed on purpose"))
        })),
        _ => {
            eprintln!("usage: lifecycle_probe tree | exit N | fault");
            ExitCode::from(2)
        }
    }
}
