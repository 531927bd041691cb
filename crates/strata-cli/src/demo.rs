//! `strata demo`: the texture service under load, reported.
//!
//! The service answers `Xy { x, y }` with an x-by-y table of random floats. Clients are
//! async objects that send requests back to back for the given time, check each table's
//! dimensions and record the latency; the report gives throughput, errors and latency
//! percentiles. Everything stops cleanly at the end (Ctrl-C stops it early).

use std::process::ExitCode;
use std::time::{Duration, Instant};

use clap::Args;
use strata::prelude::*;

/// Options of `strata demo`.
#[derive(Args, Debug, Clone)]
pub struct DemoArgs {
    /// How long to drive the service, in seconds.
    #[arg(long, default_value_t = 10.0, value_parser = positive_seconds)]
    seconds: f64,
    /// Concurrent clients, each with one request in flight.
    #[arg(long, default_value_t = 16, value_parser = clap::value_parser!(u32).range(1..=100_000))]
    clients: u32,
    /// Worker threads in the service.
    #[arg(long, default_value_t = 4, value_parser = clap::value_parser!(u32).range(1..=1024))]
    workers: u32,
    /// Table width requested.
    #[arg(long, default_value_t = 8, value_parser = clap::value_parser!(u32).range(1..=10_000))]
    x: u32,
    /// Table height requested.
    #[arg(long, default_value_t = 8, value_parser = clap::value_parser!(u32).range(1..=10_000))]
    y: u32,
}

fn positive_seconds(s: &str) -> Result<f64, String> {
    let v: f64 = s
        .parse()
        .map_err(|_| format!("`{s}` is not a number of seconds"))?;
    if v.is_finite() && v > 0.0 && v <= 86_400.0 {
        Ok(v)
    } else {
        Err(format!("`{s}` must be between 0 and 86400 seconds"))
    }
}

/// A request for an x-by-y table of random floats.
#[derive(Debug, Clone, Copy, Serialize, Deserialize, Message)]
#[message(name = "texture.Xy")]
pub struct Xy {
    x: usize,
    y: usize,
}

type Table = Vec<Vec<f64>>;

/// What one client did.
#[derive(Debug, Default, Serialize, Deserialize, Message)]
#[message(name = "demo.ClientReport")]
pub struct ClientReport {
    ok: u64,
    faults: u64,
    invalid: u64,
    latencies_us: Vec<u32>,
}

/// Builds the table the service returns (xorshift; good enough for a texture).
fn texture(x: usize, y: usize, seed: &mut u64) -> Table {
    (0..y)
        .map(|_| {
            (0..x)
                .map(|_| {
                    *seed ^= *seed << 13;
                    *seed ^= *seed >> 7;
                    *seed ^= *seed << 17;
                    (*seed >> 11) as f64 / (1u64 << 53) as f64
                })
                .collect()
        })
        .collect()
}

struct Worker {
    seed: u64,
}

#[strata::machine]
impl Worker {
    fn xy(&mut self, _cx: &mut Context<Self>, m: Xy) -> Table {
        texture(m.x, m.y, &mut self.seed)
    }
}

struct Service {
    workers: u32,
    pool: Vec<Address>,
    next: usize,
}

#[strata::machine]
impl Service {
    fn start(&mut self, cx: &mut Context<Self>, _: Start) {
        for i in 0..self.workers {
            let seed = 0x9E37_79B9_7F4A_7C15u64.wrapping_mul(u64::from(i) + 1);
            self.pool.push(cx.create(Threaded(Worker { seed })));
        }
    }

    fn xy(&mut self, cx: &mut Context<Self>, m: Xy) {
        // Forward keeps the client as the sender: the worker answers it directly.
        let worker = self.pool[self.next % self.pool.len()];
        self.next = self.next.wrapping_add(1);
        cx.forward(worker, m);
    }
}

async fn client(mut cx: AsyncContext, service: Address, xy: Xy, until: Instant) -> ClientReport {
    let mut report = ClientReport::default();
    while Instant::now() < until {
        let sent = Instant::now();
        cx.send(service, xy);
        match cx
            .select::<(Table, AnyFault, Stop)>(Some(Duration::from_secs(5)))
            .await
        {
            Ok(e) if e.is::<Stop>() => break,
            Ok(e) if e.is_fault() => report.faults += 1,
            Ok(e) => {
                let table = e.take::<Table>().expect("selected");
                if table.len() == xy.y && table.iter().all(|row| row.len() == xy.x) {
                    report.ok += 1;
                    let us = sent.elapsed().as_micros().min(u128::from(u32::MAX)) as u32;
                    report.latencies_us.push(us);
                } else {
                    report.invalid += 1;
                }
            }
            Err(_) => report.faults += 1,
        }
    }
    report
}

fn percentile(sorted: &[u32], p: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    let rank = ((p / 100.0) * (sorted.len() - 1) as f64).round() as usize;
    f64::from(sorted[rank.min(sorted.len() - 1)]) / 1000.0
}

fn drive(cx: &mut ThreadContext, args: &DemoArgs) -> Result<i32, Faulted> {
    let service = cx.create(Service {
        workers: args.workers,
        pool: Vec::new(),
        next: 0,
    });
    let xy = Xy {
        x: args.x as usize,
        y: args.y as usize,
    };
    println!(
        "strata demo: texture service with {} worker threads, {} clients asking for {}x{} tables for {}s",
        args.workers, args.clients, xy.x, xy.y, args.seconds
    );
    let began = Instant::now();
    let until = began + Duration::from_secs_f64(args.seconds);
    let clients: Vec<Address> = (0..args.clients)
        .map(|_| cx.create(Async::new(move |cx| client(cx, service, xy, until))))
        .collect();
    let mut total = ClientReport::default();
    let mut lost = 0u64;
    for c in clients {
        match cx.wait_for(c).downcast::<ClientReport>() {
            Ok(r) => {
                total.ok += r.ok;
                total.faults += r.faults;
                total.invalid += r.invalid;
                total.latencies_us.extend(r.latencies_us);
            }
            Err(other) => {
                lost += 1;
                eprintln!("a client ended with {other:?}");
            }
        }
    }
    let elapsed = began.elapsed().as_secs_f64();
    cx.stop(service);
    let _ = cx.wait_for(service);

    total.latencies_us.sort_unstable();
    let l = &total.latencies_us;
    println!(
        "requests answered: {} in {:.2}s = {:.0} requests/s",
        total.ok,
        elapsed,
        total.ok as f64 / elapsed
    );
    println!(
        "faults: {}  invalid tables: {}  clients lost: {}",
        total.faults, total.invalid, lost
    );
    println!(
        "latency ms: p50 {:.3}  p90 {:.3}  p99 {:.3}  p99.9 {:.3}  max {:.3}",
        percentile(l, 50.0),
        percentile(l, 90.0),
        percentile(l, 99.0),
        percentile(l, 99.9),
        percentile(l, 100.0)
    );
    if total.faults + total.invalid + lost > 0 {
        return Err(Faulted::new("the demo saw faults or invalid answers"));
    }
    Ok(0)
}

/// Runs the demo as a strata program (Ctrl-C stops it cleanly).
pub fn run(args: DemoArgs, log: Option<String>) -> ExitCode {
    let settings = strata::Settings {
        log,
        ..Default::default()
    };
    strata::main_with(
        Thread::new(move |cx: &mut ThreadContext| drive(cx, &args)),
        settings,
    )
}
