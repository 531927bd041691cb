//! `strata ping NAME`: finds a published name and times round trips to it.
//!
//! It subscribes to NAME (exactly that name) at host scope (or `--scope`), waits for it
//! to be available (at most [`FIND_WAIT`]), then sends `--count` [`Ping`]s to the address,
//! one at a time, and prints each round trip and then their count, p50, p99, min and max.
//!
//! What answers: every machine answers `Ping` with `Ack` unless it has a handler of its
//! own for `Ping` (then its handler's answer counts, whatever it is); see
//! `Machine::unhandled`. Function and async objects answer only what their code does, so
//! one that ignores `Ping` is reported after [`ANSWER_WAIT`] as not answering. A round trip
//! is the time from sending `Ping` to receiving the answer in this process: the link there
//! and back, the other process's delivery, and the object's own queue.

use std::process::ExitCode;
use std::time::{Duration, Instant};

use clap::{Args, ValueEnum};
use strata::directory::{Available, Dropped, Name, Scope, Subscribed};
use strata::prelude::*;

/// How long the name may take to be found.
pub const FIND_WAIT: Duration = Duration::from_secs(5);

/// How long one round trip may take.
pub const ANSWER_WAIT: Duration = Duration::from_secs(2);

/// How far to look.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum ScopeArg {
    /// This process only.
    Process,
    /// This process's composite.
    Group,
    /// This host.
    Host,
}

impl From<ScopeArg> for Scope {
    fn from(s: ScopeArg) -> Scope {
        match s {
            ScopeArg::Process => Scope::Process,
            ScopeArg::Group => Scope::Group,
            ScopeArg::Host => Scope::Host,
        }
    }
}

/// Options of `strata ping`.
#[derive(Args, Debug)]
pub struct PingArgs {
    /// The name to ping (a name, not a pattern: `texture:worker:1`).
    #[arg(value_parser = name)]
    name: Name,
    /// How many round trips.
    #[arg(long, default_value_t = 10, value_parser = clap::value_parser!(u32).range(1..=1_000_000))]
    count: u32,
    /// How far to look for the name.
    #[arg(long, value_enum, default_value_t = ScopeArg::Host)]
    scope: ScopeArg,
}

fn name(s: &str) -> Result<Name, String> {
    Name::new(s).map_err(|e| e.to_string())
}

/// Runs `strata ping`.
pub fn run(args: PingArgs, log: Option<String>) -> ExitCode {
    let settings = strata::ProgramSettings {
        log,
        ..Default::default()
    };
    strata::main_with(
        Thread::new(move |cx: &mut ThreadContext| match ping(cx, &args) {
            Ok(()) => 0,
            Err(e) => {
                eprintln!("strata ping: {e}");
                1
            }
        }),
        settings,
    )
}

fn ping(cx: &mut ThreadContext, args: &PingArgs) -> Result<(), String> {
    let scope = Scope::from(args.scope);
    let (address, found_at) = find(cx, &args.name, scope)?;
    let place = if address.is_local() {
        "this process".to_string()
    } else {
        format!("node {:016x}", address.node())
    };
    println!(
        "PING {} at {address} ({found_at} scope, {place}): {} round trips",
        args.name, args.count
    );
    let mut times = Vec::with_capacity(args.count as usize);
    for seq in 1..=args.count {
        let took = round_trip(cx, &args.name, address)?;
        println!("answer from {}: seq={seq} time={}", args.name, show(took));
        times.push(took);
    }
    println!("{}", Summary::of(&times));
    Ok(())
}

/// Subscribes to exactly `name` and waits for it; gives its address and scope.
fn find(cx: &mut ThreadContext, name: &Name, scope: Scope) -> Result<(Address, Scope), String> {
    // A name's only regular-expression operator is `.`.
    let pattern = name.as_str().replace('.', "\\.");
    cx.subscribe(&pattern, scope).map_err(|e| e.to_string())?;
    let deadline = Instant::now() + FIND_WAIT;
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        let e = cx
            .select_timeout::<(Available, NotSubscribed, Subscribed, Stop)>(left)
            .map_err(|_| format!("{name} is not published (waited {} s)", FIND_WAIT.as_secs()))?;
        if e.is::<Stop>() {
            return Err("stopped".into());
        }
        if let Some(f) = e.get::<NotSubscribed>() {
            return Err(f.reason.clone());
        }
        if let Some(a) = e.get::<Available>() {
            if a.name == *name {
                return Ok((a.address, a.scope));
            }
        }
    }
}

/// Sends one `Ping` to `address` and waits for its answer.
fn round_trip(cx: &mut ThreadContext, name: &Name, address: Address) -> Result<Duration, String> {
    let start = Instant::now();
    cx.send(address, Ping);
    let deadline = start + ANSWER_WAIT;
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        let Some(e) = cx.recv_timeout(left) else {
            return Err(format!(
                "{name} at {address} did not answer Ping within {} s (machines answer it; \
                 function and async objects only if their code does)",
                ANSWER_WAIT.as_secs()
            ));
        };
        if e.sender() == address {
            let took = start.elapsed();
            return match e.as_fault() {
                Some(f) => Err(format!(
                    "{name} at {address} answered Ping with {}: {}",
                    e.type_name(),
                    f.reason()
                )),
                None => Ok(took),
            };
        }
        if e.is::<Stop>() {
            return Err("stopped".into());
        }
        if let Some(d) = e.get::<Dropped>() {
            if d.name == *name && d.address == address {
                return Err(format!("{name} was withdrawn (or its process ended)"));
            }
        }
    }
}

/// The figures of a run of round trips.
#[derive(Debug, Clone, Copy, PartialEq)]
struct Summary {
    count: usize,
    p50: Duration,
    p99: Duration,
    min: Duration,
    max: Duration,
}

impl Summary {
    /// The figures of `times` (at least one).
    fn of(times: &[Duration]) -> Summary {
        let mut sorted = times.to_vec();
        sorted.sort();
        // Nearest rank: the smallest time at or above which lies the share asked for.
        let rank = |p: f64| {
            let r = (p * sorted.len() as f64).ceil() as usize;
            sorted[r.clamp(1, sorted.len()) - 1]
        };
        Summary {
            count: sorted.len(),
            p50: rank(0.50),
            p99: rank(0.99),
            min: sorted[0],
            max: sorted[sorted.len() - 1],
        }
    }
}

impl std::fmt::Display for Summary {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "count {}  p50 {}  p99 {}  min {}  max {}",
            self.count,
            show(self.p50),
            show(self.p99),
            show(self.min),
            show(self.max)
        )
    }
}

/// `812µs`, `1.25ms`, `2.004s`.
fn show(d: Duration) -> String {
    let us = d.as_secs_f64() * 1e6;
    if us < 1000.0 {
        format!("{us:.0}µs")
    } else if us < 1e6 {
        format!("{:.2}ms", us / 1000.0)
    } else {
        format!("{:.3}s", us / 1e6)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn figures_are_nearest_rank() {
        let ms = Duration::from_millis;
        let s = Summary::of(&[ms(3), ms(1), ms(2)]);
        assert_eq!(
            s,
            Summary {
                count: 3,
                p50: ms(2),
                p99: ms(3),
                min: ms(1),
                max: ms(3)
            }
        );
        let hundred: Vec<Duration> = (1..=100).map(ms).collect();
        let s = Summary::of(&hundred);
        assert_eq!((s.p50, s.p99), (ms(50), ms(99)));
        assert_eq!(Summary::of(&[ms(7)]).p99, ms(7));
        assert_eq!(show(Duration::from_micros(812)), "812µs");
        assert_eq!(show(Duration::from_micros(1250)), "1.25ms");
    }
}
