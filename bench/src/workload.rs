//! The workloads: which benchmarks exist, which peers run each, their sizes, how a raw
//! duration becomes the reported figure, and the checks every peer's result must pass.

use std::time::Duration;

use crate::peers;

/// Receivers in the fire-and-forget benchmark.
pub const RECEIVERS: u64 = 100;

/// Worker threads of every multi-thread runtime the benchmarks build (strata's shared
/// runtime has one per core, two on the reference machine).
pub const WORKERS: usize = 2;

/// One of the three benchmarks.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Bench {
    /// One sender, N small messages round-robin to [`RECEIVERS`] receivers.
    Fanout,
    /// One requester, one responder, N sequential request-reply round trips.
    PingPong,
    /// N objects created, each ending at once.
    Spawn,
}

impl Bench {
    /// Every benchmark, in report order.
    pub const ALL: [Bench; 3] = [Bench::Fanout, Bench::PingPong, Bench::Spawn];

    /// The name used on the command line.
    pub fn key(self) -> &'static str {
        match self {
            Bench::Fanout => "fanout",
            Bench::PingPong => "pingpong",
            Bench::Spawn => "spawn",
        }
    }

    /// Parses a command-line name.
    pub fn from_key(key: &str) -> Option<Bench> {
        Bench::ALL.into_iter().find(|b| b.key() == key)
    }

    /// The benchmark's title in the table, with its size.
    pub fn title(self, n: u64) -> String {
        let n = group_digits(n);
        match self {
            Bench::Fanout => {
                format!("fire-and-forget round-robin: {n} msgs to {RECEIVERS} receivers")
            }
            Bench::PingPong => format!("request-reply ping-pong: {n} sequential round trips"),
            Bench::Spawn => format!("spawn cost: {n} objects created, each ends at once"),
        }
    }

    /// N for a full run.
    pub fn full_size(self) -> u64 {
        match self {
            Bench::Fanout => 1_000_000,
            Bench::PingPong => 200_000,
            Bench::Spawn => 100_000,
        }
    }

    /// N for `--quick`.
    pub fn quick_size(self) -> u64 {
        self.full_size() / 10
    }

    /// N for the warm-up pass that precedes the measured one in the same process: a tenth,
    /// kept a multiple of [`RECEIVERS`] for the fan-out.
    pub fn warmup_size(self, n: u64) -> u64 {
        match self {
            Bench::Fanout => (n / 10 / RECEIVERS).max(1) * RECEIVERS,
            _ => (n / 10).max(1),
        }
    }

    /// The peers that run this benchmark, baseline first.
    pub fn peers(self) -> &'static [Peer] {
        match self {
            Bench::Fanout => &[Peer::Raw, Peer::Strata, Peer::Actix, Peer::Ractor],
            Bench::PingPong => &[
                Peer::Raw,
                Peer::Strata,
                Peer::StrataAsk,
                Peer::Actix,
                Peer::Ractor,
            ],
            Bench::Spawn => &[
                Peer::Raw,
                Peer::Strata,
                Peer::StrataAsync,
                Peer::Actix,
                Peer::Ractor,
            ],
        }
    }

    /// The unit of the reported figure.
    pub fn unit(self) -> &'static str {
        match self {
            Bench::Fanout => "msg/s",
            Bench::PingPong => "round trips/s",
            Bench::Spawn => "ns/spawn",
        }
    }

    /// True when a bigger figure is better (a rate); false for a cost in nanoseconds.
    pub fn higher_is_better(self) -> bool {
        !matches!(self, Bench::Spawn)
    }

    /// The reported figure for `n` operations that took `elapsed`.
    pub fn figure(self, n: u64, elapsed: Duration) -> f64 {
        let secs = elapsed.as_secs_f64().max(1e-9);
        if self.higher_is_better() {
            n as f64 / secs
        } else {
            secs * 1e9 / n as f64
        }
    }
}

/// One contestant: a library (or the baseline), sometimes in a second style.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Peer {
    /// Plain tokio tasks and channels: the baseline.
    Raw,
    /// strata machines, machine to machine.
    Strata,
    /// strata, requests made from an attached thread with `ThreadContext::ask`.
    StrataAsk,
    /// strata `Async` objects instead of machines.
    StrataAsync,
    /// actix actors.
    Actix,
    /// ractor actors.
    Ractor,
}

impl Peer {
    /// Every peer, in report order.
    pub const ALL: [Peer; 6] = [
        Peer::Raw,
        Peer::Strata,
        Peer::StrataAsk,
        Peer::StrataAsync,
        Peer::Actix,
        Peer::Ractor,
    ];

    /// The name used on the command line.
    pub fn key(self) -> &'static str {
        match self {
            Peer::Raw => "raw",
            Peer::Strata => "strata",
            Peer::StrataAsk => "strata-ask",
            Peer::StrataAsync => "strata-async",
            Peer::Actix => "actix",
            Peer::Ractor => "ractor",
        }
    }

    /// Parses a command-line name.
    pub fn from_key(key: &str) -> Option<Peer> {
        Peer::ALL.into_iter().find(|p| p.key() == key)
    }

    /// The peer's label in the table.
    pub fn label(self) -> &'static str {
        match self {
            Peer::Raw => "raw tokio channels (baseline)",
            Peer::Strata => "strata",
            Peer::StrataAsk => "strata, `ThreadContext::ask`",
            Peer::StrataAsync => "strata, `Async` objects",
            Peer::Actix => "actix",
            Peer::Ractor => "ractor",
        }
    }

    /// True for the strata peers, whose runtime counters are checked after a run.
    pub fn is_strata(self) -> bool {
        matches!(self, Peer::Strata | Peer::StrataAsk | Peer::StrataAsync)
    }
}

/// Runs `bench` for `peer` once per size, in one process and one runtime, and gives the
/// measured duration of each pass.
pub fn run(bench: Bench, peer: Peer, sizes: &[u64]) -> Result<Vec<Duration>, String> {
    let durations = match (bench, peer) {
        (Bench::Fanout, Peer::Raw) => peers::raw::fanout(sizes),
        (Bench::Fanout, Peer::Strata) => peers::strata::fanout(sizes),
        (Bench::Fanout, Peer::Actix) => peers::actix::fanout(sizes),
        (Bench::Fanout, Peer::Ractor) => peers::ractor::fanout(sizes),
        (Bench::PingPong, Peer::Raw) => peers::raw::pingpong(sizes),
        (Bench::PingPong, Peer::Strata) => peers::strata::pingpong(sizes),
        (Bench::PingPong, Peer::StrataAsk) => peers::strata::pingpong_ask(sizes),
        (Bench::PingPong, Peer::Actix) => peers::actix::pingpong(sizes),
        (Bench::PingPong, Peer::Ractor) => peers::ractor::pingpong(sizes),
        (Bench::Spawn, Peer::Raw) => peers::raw::spawn(sizes),
        (Bench::Spawn, Peer::Strata) => peers::strata::spawn(sizes),
        (Bench::Spawn, Peer::StrataAsync) => peers::strata::spawn_async(sizes),
        (Bench::Spawn, Peer::Actix) => peers::actix::spawn(sizes),
        (Bench::Spawn, Peer::Ractor) => peers::ractor::spawn(sizes),
        _ => {
            return Err(format!(
                "peer `{}` does not run benchmark `{}`",
                peer.key(),
                bench.key()
            ))
        }
    };
    Ok(durations)
}

/// What one fan-out receiver reports when it has its share: how many messages it counted
/// and the sum of their values.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Tally {
    /// Messages received.
    pub count: u64,
    /// Sum of the received values.
    pub sum: u64,
}

/// The share of each fan-out receiver when `n` messages are sent.
pub fn share(n: u64) -> u64 {
    assert!(
        n.is_multiple_of(RECEIVERS) && n > 0,
        "the fan-out size must be a positive multiple of {RECEIVERS}"
    );
    n / RECEIVERS
}

/// Panics unless the receivers' tallies account for exactly the values `0..n`.
pub fn check_fanout(n: u64, tallies: &[Tally]) {
    assert_eq!(tallies.len() as u64, RECEIVERS, "one tally per receiver");
    let count: u64 = tallies.iter().map(|t| t.count).sum();
    let sum = tallies.iter().fold(0u64, |a, t| a.wrapping_add(t.sum));
    let expected = if n == 0 { 0 } else { n * (n - 1) / 2 };
    assert_eq!(count, n, "every message counted once");
    assert_eq!(sum, expected, "every value received once");
}

/// Writes `n` with thousands separators: `1,000,000`.
pub fn group_digits(n: u64) -> String {
    let digits = n.to_string();
    let mut out = String::new();
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn digits_are_grouped() {
        assert_eq!(group_digits(0), "0");
        assert_eq!(group_digits(999), "999");
        assert_eq!(group_digits(1000), "1,000");
        assert_eq!(group_digits(1_000_000), "1,000,000");
    }

    #[test]
    fn fanout_check_accepts_an_exact_split() {
        let n = 1000;
        let tallies: Vec<Tally> = (0..RECEIVERS)
            .map(|r| {
                let values = (0..n).filter(|v| v % RECEIVERS == r);
                Tally {
                    count: values.clone().count() as u64,
                    sum: values.sum(),
                }
            })
            .collect();
        check_fanout(n, &tallies);
    }

    #[test]
    fn warmup_sizes_fit_the_fanout() {
        assert_eq!(Bench::Fanout.warmup_size(1_000_000) % RECEIVERS, 0);
        assert_eq!(Bench::Fanout.warmup_size(100), RECEIVERS);
    }
}
