//! `pipe-bench`: one measurement of the pipeline benchmark (`strata-bench --bench
//! pipeline` runs it; see bench/README.md §9).
//!
//! `pipe-bench ROW N` pushes N items through three stages — one producer, three
//! transport workers, one consumer, queues of 100 (os-m3-engine's defaults) — and prints
//! `RESULT <nanoseconds>` for the whole run, from the first item produced to the last
//! consumed, after checking that the consumer got all N. `pipe-bench worker` is the
//! transport worker process of the `strata-proc-*` rows.
//!
//! Rows: `crossbeam-tiny`, `crossbeam-10us` (a hand-written pipeline on
//! `crossbeam-channel` bounded channels and threads), `strata-tiny`, `strata-10us`
//! (strata's stages on threads), `strata-proc-tiny`, `strata-proc-10us` (the transport
//! in three worker processes). Tiny items are a `u64` and a transform of one addition;
//! `10us` transforms spin on the clock for 10 µs per item.

use std::process::ExitCode;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use strata::pipeline::{Emit, Pipeline, Progress, StageRunner, Transport, Workers};
use strata::prelude::*;
use strata::process::Process;

const PRODUCERS: usize = 1;
const TRANSPORTS: usize = 3;
const CONSUMERS: usize = 1;
const QUEUE: usize = 100;

/// The transform: add one, after spinning `spin_ns` on the clock.
fn transform(n: u64, spin_ns: u64) -> u64 {
    if spin_ns > 0 {
        let until = Instant::now() + Duration::from_nanos(spin_ns);
        while Instant::now() < until {
            std::hint::spin_loop();
        }
    }
    n + 1
}

/// The transport stage of the strata rows (a message, so it runs in worker processes).
#[derive(Debug, Clone, Serialize, Deserialize, Message)]
#[message(name = "bench.pipe.Step")]
struct Step {
    spin_ns: u64,
}

impl Transport for Step {
    type In = u64;
    type Out = u64;
    fn transport(&mut self, n: &u64, out: &mut Emit<u64>) -> Result<(), Faulted> {
        out.send(transform(*n, self.spin_ns));
        Ok(())
    }
}

/// Sum of `1..=n`: what the consumer must have added up.
fn expected(n: u64) -> u64 {
    n * (n + 1) / 2
}

fn crossbeam(n: u64, spin_ns: u64) -> Result<Duration, String> {
    let (to_transport, from_frontend) = crossbeam_channel::bounded::<u64>(QUEUE);
    let (to_backend, from_transport) = crossbeam_channel::bounded::<u64>(QUEUE);
    let began = Instant::now();
    let producers: Vec<_> = (0..PRODUCERS)
        .map(|p| {
            let tx = to_transport.clone();
            std::thread::spawn(move || {
                let mut i = p as u64;
                while i < n {
                    if tx.send(i).is_err() {
                        return;
                    }
                    i += PRODUCERS as u64;
                }
            })
        })
        .collect();
    drop(to_transport);
    let transports: Vec<_> = (0..TRANSPORTS)
        .map(|_| {
            let (rx, tx) = (from_frontend.clone(), to_backend.clone());
            std::thread::spawn(move || {
                for item in rx.iter() {
                    if tx.send(transform(item, spin_ns)).is_err() {
                        return;
                    }
                }
            })
        })
        .collect();
    drop(to_backend);
    let sum = Arc::new(AtomicU64::new(0));
    let consumers: Vec<_> = (0..CONSUMERS)
        .map(|_| {
            let (rx, sum) = (from_transport.clone(), sum.clone());
            std::thread::spawn(move || {
                let mut local = 0u64;
                for item in rx.iter() {
                    local += item;
                }
                sum.fetch_add(local, Ordering::Relaxed);
            })
        })
        .collect();
    for t in producers.into_iter().chain(transports).chain(consumers) {
        t.join().map_err(|_| "a thread panicked".to_string())?;
    }
    let took = began.elapsed();
    check(sum.load(Ordering::Relaxed), n)?;
    Ok(took)
}

fn strata(n: u64, spin_ns: u64, transport: Workers) -> Result<Duration, String> {
    let sum = Arc::new(AtomicU64::new(0));
    let add = sum.clone();
    let began = Instant::now();
    let report = Pipeline::items(0..n)
        .frontend_workers(Workers::threads(PRODUCERS).queue(QUEUE))
        .transport(Step { spin_ns }, transport.queue(QUEUE))
        .backend_fn(
            move |item: &u64| {
                add.fetch_add(*item, Ordering::Relaxed);
                Ok(())
            },
            Workers::threads(CONSUMERS).queue(QUEUE),
        )
        .progress(Progress::Never)
        .run()
        .map_err(|e| e.to_string())?;
    let took = began.elapsed();
    if !report.is_complete() {
        return Err(format!("the pipeline did not complete:\n{report}"));
    }
    check(sum.load(Ordering::Relaxed), n)?;
    Ok(took)
}

fn check(sum: u64, n: u64) -> Result<(), String> {
    if sum == expected(n) {
        Ok(())
    } else {
        Err(format!("the consumer's sum is {sum}, not {}", expected(n)))
    }
}

fn workers() -> Result<Workers, String> {
    let me = std::env::current_exe().map_err(|e| format!("cannot find this program: {e}"))?;
    let program = Process::of(me.to_string_lossy().into_owned()).arg("worker");
    Ok(Workers::processes(TRANSPORTS, program))
}

fn measure(row: &str, n: u64) -> Result<Duration, String> {
    let spin = if row.ends_with("-10us") { 10_000 } else { 0 };
    match row {
        "crossbeam-tiny" | "crossbeam-10us" => crossbeam(n, spin),
        "strata-tiny" | "strata-10us" => strata(n, spin, Workers::threads(TRANSPORTS)),
        "strata-proc-tiny" | "strata-proc-10us" => strata(n, spin, workers()?),
        other => Err(format!("unknown row `{other}`")),
    }
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if args.first().map(String::as_str) == Some("worker") {
        return strata::main(Threaded(StageRunner::new().transport::<Step>()));
    }
    let (Some(row), Some(n)) = (
        args.first(),
        args.get(1).and_then(|n| n.parse::<u64>().ok()),
    ) else {
        eprintln!("usage: pipe-bench ROW N | pipe-bench worker");
        return ExitCode::from(2);
    };
    match measure(row, n) {
        Ok(took) => {
            println!("RESULT {}", took.as_nanos());
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("pipe-bench {row} {n}: {e}");
            ExitCode::FAILURE
        }
    }
}
