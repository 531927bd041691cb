//! `dir-node`: one process of the directory benchmark (`--bench directory`): a strata
//! program that publishes and subscribes at host scope when its standard input tells it
//! to, and says on its standard output what it heard, with the time it heard it. The
//! harness (`src/directory/`) starts several of them with one private
//! `STRATA_RUNTIME_DIR`, beside the host directory (`strata directory`), and reads their
//! lines; it is not meant to be run by hand.
//!
//! `DIR_NODE_SCOPE=lan` makes it publish and subscribe at LAN scope instead (the LAN
//! benchmark, `src/lan/`, with `STRATA_LAN_DIRECTORY` and `STRATA_LAN_KEY` set); unset,
//! or `host`, it is host scope as always; any other value is refused at start.
//!
//! Times are `CLOCK_MONOTONIC` in nanoseconds, the same clock in every process of the
//! host, so a time taken in one process can be subtracted from one taken in another.
//!
//! Commands, one per line on stdin:
//!
//! - `subscribe PATTERN`: subscribes the top object; answered `subscribed PATTERN`.
//! - `publish PREFIX`: reads the clock (T0), then publishes the top object as
//!   `PREFIX:T0` (so whoever hears of the name knows when it was published) at once;
//!   answered `published NAME`.
//! - `scale-subscribe FROM TO`: subscribes to the scale patterns FROM..TO (see
//!   [`scale_pattern`]), at most [`WINDOW`] unanswered at a time; answered
//!   `scale-subscribed N` once every one is.
//! - `scale-publish FROM TO`: publishes the scale names FROM..TO ([`scale_name`]), at most
//!   [`WINDOW`] unanswered at a time; answered `scale-published N` once every one is.
//! - `count`: answered `count N`, the scale names this process holds as available.
//! - `roundtrip PREFIX N`: N sequential round trips (the link benchmark's `Hit` →
//!   `Answer`) to the publisher of the name it last heard of as available that starts
//!   with PREFIX; answered `roundtrip N NANOSECONDS` (the whole pass, this process's
//!   clock). Every dir-node answers a `Hit`.
//! - `oneway PREFIX N`: a stream of N `Item`s to that publisher, at most the link
//!   benchmark's window unacknowledged, then `Flush`, checked against its `Done`;
//!   answered `oneway N NANOSECONDS`.
//! - `quit`: ends the program.
//!
//! Events: `available NAME T` and `dropped NAME T` for every name that is not a scale
//! name (T: the clock read in the handler, first thing), `error TEXT` for a refusal.

#[path = "../link/protocol.rs"]
mod protocol;

use std::collections::{HashMap, VecDeque};
use std::io::{BufRead, Write};
use std::process::ExitCode;
use std::time::Instant;

use protocol::{Ack, Answer, Done, Flush, Hit, Item, ACK_EVERY};

use strata::directory::{Available, Dropped, Published, Scope, Subscribed};
use strata::prelude::*;
use strata::standard::{NotPublished, NotSubscribed};

/// The most scale publications or subscriptions unanswered at a time (the process
/// directory's mailbox must not fill).
const WINDOW: usize = 256;

/// The start of every scale name.
const SCALE: &str = "scale:";

/// `CLOCK_MONOTONIC` in nanoseconds.
fn now_ns() -> u64 {
    let mut t = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: clock_gettime writes the struct it is given.
    unsafe { libc::clock_gettime(libc::CLOCK_MONOTONIC, &mut t) };
    t.tv_sec as u64 * 1_000_000_000 + t.tv_nsec as u64
}

/// Scale name `i`: `scale:ns<i mod 10>:svc-<i / 10>` (ten names per service number).
fn scale_name(i: u64) -> String {
    format!("{SCALE}ns{}:svc-{:05}", i % 10, i / 10)
}

/// Scale pattern `j`: every namespace's `svc-<j>`, ten names. It starts with a class, so
/// it has no literal start: the directory cannot narrow by prefix which names to try it
/// on, and tries it on every name published.
fn scale_pattern(j: u64) -> String {
    format!("[a-z]+:ns[0-9]:svc-{j:05}")
}

fn say(line: &str) {
    let mut out = std::io::stdout().lock();
    let _ = writeln!(out, "{line}");
    let _ = out.flush();
}

/// A line read from stdin.
#[derive(Debug, Clone, Serialize, Deserialize, Message)]
#[message(name = "bench.DirectoryCommand")]
struct Line(String);

/// Scale work in progress: what is left to send, and how many answers are awaited.
#[derive(Default)]
struct Batch {
    left: VecDeque<String>,
    awaited: usize,
    total: usize,
}

impl Batch {
    fn of(items: impl Iterator<Item = String>) -> Batch {
        let left: VecDeque<String> = items.collect();
        Batch {
            total: left.len(),
            awaited: left.len(),
            left,
        }
    }

    /// The next items to send, keeping at most [`WINDOW`] unanswered.
    fn next(&mut self) -> Vec<String> {
        let unanswered = self.awaited - self.left.len();
        let room = WINDOW.saturating_sub(unanswered);
        (0..room).map_while(|_| self.left.pop_front()).collect()
    }

    /// One answer came; true when it was the last.
    fn answered(&mut self) -> bool {
        self.awaited = self.awaited.saturating_sub(1);
        self.awaited == 0 && self.total > 0
    }
}

/// A pass of the link measurements in progress (this process drives it).
enum Drive {
    RoundTrip {
        peer: Address,
        n: u64,
        done: u64,
        began: Instant,
    },
    OneWay {
        peer: Address,
        n: u64,
        sent: u64,
        acked: u64,
        began: Instant,
    },
}

/// The top object.
struct Node {
    /// The publishers of the names heard of as available (not scale names).
    heard: HashMap<String, Address>,
    /// The link pass this process drives, if any.
    drive: Option<Drive>,
    /// What this process received of a stream it is sent (count, sum).
    stream: (u64, u64),
    /// The scope of every publication and subscription (`DIR_NODE_SCOPE`).
    scope: Scope,
    publishing: Batch,
    subscribing: Batch,
    /// Scale names held as available.
    scale_held: u64,
}

impl Node {
    fn more_publications(&mut self, cx: &mut Context<Self>) {
        for name in self.publishing.next() {
            cx.publish(&name, self.scope)
                .expect("a scale name is a name");
        }
    }

    fn more_subscriptions(&mut self, cx: &mut Context<Self>) {
        for pattern in self.subscribing.next() {
            cx.subscribe(&pattern, self.scope)
                .expect("a scale pattern is a pattern");
        }
    }
}

impl Node {
    /// The publisher of the name last heard of that starts with `prefix`.
    fn peer(&self, prefix: &str) -> Option<Address> {
        self.heard
            .iter()
            .filter(|(name, _)| name.starts_with(prefix))
            .max_by_key(|(name, _)| name.rsplit(':').next().and_then(|t| t.parse::<u64>().ok()))
            .map(|(_, a)| *a)
    }

    fn fill(&mut self, cx: &mut Context<Self>) {
        if let Some(Drive::OneWay {
            peer,
            n,
            sent,
            acked,
            ..
        }) = &mut self.drive
        {
            let limit = (*n).min(*acked + protocol::WINDOW);
            let was = *sent;
            while *sent < limit {
                cx.send(*peer, Item { value: *sent });
                *sent += 1;
            }
            if *sent == *n && was < *n {
                cx.send(*peer, Flush);
            }
        }
    }
}

fn range(words: &[&str]) -> Option<std::ops::Range<u64>> {
    let from = words.first()?.parse().ok()?;
    let to = words.get(1)?.parse().ok()?;
    Some(from..to)
}

#[strata::machine]
impl Node {
    #[guard(sender == cx.address())]
    fn start(&mut self, cx: &mut Context<Self>, _: Start) {
        let me = cx.address();
        let post = cx.postbox();
        std::thread::spawn(move || {
            for line in std::io::stdin().lock().lines() {
                let Ok(line) = line else { break };
                post.send(me, Line(line));
            }
            post.send(me, Line("quit".into()));
        });
        say("ready");
    }

    fn line(&mut self, cx: &mut Context<Self>, Line(line): Line) {
        let words: Vec<&str> = line.split_whitespace().collect();
        match words.as_slice() {
            ["subscribe", pattern] => {
                if let Err(e) = cx.subscribe(pattern, self.scope) {
                    say(&format!("error {e}"));
                }
            }
            ["publish", prefix] => {
                let t0 = now_ns();
                let name = format!("{prefix}:{t0}");
                if let Err(e) = cx.publish(&name, self.scope) {
                    say(&format!("error {e}"));
                }
            }
            ["scale-subscribe", rest @ ..] => match range(rest) {
                Some(r) => {
                    self.subscribing = Batch::of(r.map(scale_pattern));
                    self.more_subscriptions(cx);
                }
                None => say("error scale-subscribe FROM TO"),
            },
            ["scale-publish", rest @ ..] => match range(rest) {
                Some(r) => {
                    self.publishing = Batch::of(r.map(scale_name));
                    self.more_publications(cx);
                }
                None => say("error scale-publish FROM TO"),
            },
            ["count"] => say(&format!("count {}", self.scale_held)),
            [mode @ ("roundtrip" | "oneway"), prefix, n] => {
                let (Some(peer), Ok(n)) = (self.peer(prefix), n.parse::<u64>()) else {
                    say(&format!("error no publisher of {prefix}, or a bad count"));
                    return;
                };
                if peer.is_local() {
                    say(&format!("error the publisher of {prefix} is this process"));
                    return;
                }
                if n == 0 || self.drive.is_some() {
                    say("error a count of 0, or a pass under way");
                    return;
                }
                let began = Instant::now();
                if *mode == "roundtrip" {
                    self.drive = Some(Drive::RoundTrip {
                        peer,
                        n,
                        done: 0,
                        began,
                    });
                    cx.send(peer, Hit { value: 0 });
                } else {
                    self.drive = Some(Drive::OneWay {
                        peer,
                        n,
                        sent: 0,
                        acked: 0,
                        began,
                    });
                    self.fill(cx);
                }
            }
            ["quit"] => cx.complete(0u8),
            _ => say(&format!("error unknown command {line:?}")),
        }
    }

    fn subscribed(&mut self, cx: &mut Context<Self>, s: Subscribed) {
        if s.pattern.starts_with("[a-z]+:") {
            if self.subscribing.answered() {
                say(&format!("scale-subscribed {}", self.subscribing.total));
            } else {
                self.more_subscriptions(cx);
            }
        } else {
            say(&format!("subscribed {}", s.pattern));
        }
    }

    fn published(&mut self, cx: &mut Context<Self>, p: Published) {
        if p.name.as_str().starts_with(SCALE) {
            if self.publishing.answered() {
                say(&format!("scale-published {}", self.publishing.total));
            } else {
                self.more_publications(cx);
            }
        } else {
            say(&format!("published {}", p.name));
        }
    }

    fn available(&mut self, _cx: &mut Context<Self>, a: Available) {
        let t = now_ns();
        if a.name.as_str().starts_with(SCALE) {
            self.scale_held += 1;
        } else {
            say(&format!("available {} {t}", a.name));
            self.heard.insert(a.name.as_str().to_string(), a.address);
        }
    }

    fn dropped(&mut self, _cx: &mut Context<Self>, d: Dropped) {
        let t = now_ns();
        if d.name.as_str().starts_with(SCALE) {
            self.scale_held = self.scale_held.saturating_sub(1);
        } else {
            say(&format!("dropped {} {t}", d.name));
            self.heard.remove(d.name.as_str());
        }
    }

    fn hit(&mut self, _cx: &mut Context<Self>, m: Hit) -> Answer {
        Answer { value: m.value + 1 }
    }

    fn item(&mut self, cx: &mut Context<Self>, m: Item) {
        self.stream.0 += 1;
        self.stream.1 = self.stream.1.wrapping_add(m.value);
        if self.stream.0.is_multiple_of(ACK_EVERY) {
            cx.reply(Ack {
                count: self.stream.0,
            });
        }
    }

    fn flush(&mut self, cx: &mut Context<Self>, _: Flush) {
        let (count, sum) = std::mem::take(&mut self.stream);
        cx.reply(Done { count, sum });
    }

    fn answer(&mut self, cx: &mut Context<Self>, m: Answer) {
        let Some(Drive::RoundTrip {
            peer,
            n,
            done,
            began,
        }) = &mut self.drive
        else {
            return;
        };
        if m.value != *done + 1 {
            say(&format!("error answer {} to request {}", m.value, *done));
            self.drive = None;
            return;
        }
        *done += 1;
        if *done == *n {
            say(&format!("roundtrip {n} {}", began.elapsed().as_nanos()));
            self.drive = None;
        } else {
            cx.send(*peer, Hit { value: *done });
        }
    }

    fn ack(&mut self, cx: &mut Context<Self>, m: Ack) {
        if let Some(Drive::OneWay { acked, .. }) = &mut self.drive {
            *acked = (*acked).max(m.count);
        }
        self.fill(cx);
    }

    fn done(&mut self, _cx: &mut Context<Self>, m: Done) {
        let Some(Drive::OneWay { n, began, .. }) = &self.drive else {
            return;
        };
        let elapsed = began.elapsed().as_nanos();
        let expected_sum = (0..*n).fold(0u64, |s, v| s.wrapping_add(v));
        if m.count != *n || m.sum != expected_sum {
            say(&format!(
                "error the stream of {n} arrived as {} items summing to {}",
                m.count, m.sum
            ));
        } else {
            say(&format!("oneway {n} {elapsed}"));
        }
        self.drive = None;
    }

    fn overloaded(&mut self, _cx: &mut Context<Self>, fault: Overloaded) {
        say(&format!("error a send was refused: {fault}"));
        self.drive = None;
    }

    fn not_published(&mut self, _cx: &mut Context<Self>, f: NotPublished) {
        say(&format!("error {}", f.reason));
    }

    fn not_subscribed(&mut self, _cx: &mut Context<Self>, f: NotSubscribed) {
        say(&format!("error {}", f.reason));
    }
}

/// The scope `DIR_NODE_SCOPE` names (host scope when unset), or why not.
fn scope_from_env() -> Result<Scope, String> {
    match std::env::var("DIR_NODE_SCOPE") {
        Err(std::env::VarError::NotPresent) => Ok(Scope::Host),
        Ok(v) if v == "host" => Ok(Scope::Host),
        Ok(v) if v == "lan" => Ok(Scope::Lan),
        Ok(v) => Err(format!("DIR_NODE_SCOPE={v:?}: `host` or `lan`")),
        Err(e) => Err(format!("DIR_NODE_SCOPE: {e}")),
    }
}

fn main() -> ExitCode {
    let scope = match scope_from_env() {
        Ok(s) => s,
        Err(e) => {
            eprintln!("dir-node: {e}");
            return ExitCode::from(2);
        }
    };
    strata::main(Node {
        heard: HashMap::new(),
        drive: None,
        stream: (0, 0),
        scope,
        publishing: Batch::default(),
        subscribing: Batch::default(),
        scale_held: 0,
    })
}
