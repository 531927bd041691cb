//! `dir-node`: one process of the directory benchmark (`--bench directory`): a strata
//! program that publishes and subscribes at host scope when its standard input tells it
//! to, and says on its standard output what it heard, with the time it heard it. The
//! harness (`src/directory/`) starts several of them with one private
//! `STRATA_RUNTIME_DIR`, beside the host directory (`strata directory`), and reads their
//! lines; it is not meant to be run by hand.
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
//! - `quit`: ends the program.
//!
//! Events: `available NAME T` and `dropped NAME T` for every name that is not a scale
//! name (T: the clock read in the handler, first thing), `error TEXT` for a refusal.

use std::collections::VecDeque;
use std::io::{BufRead, Write};
use std::process::ExitCode;

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

/// The top object.
#[derive(Default)]
struct Node {
    publishing: Batch,
    subscribing: Batch,
    /// Scale names held as available.
    scale_held: u64,
}

impl Node {
    fn more_publications(&mut self, cx: &mut Context<Self>) {
        for name in self.publishing.next() {
            cx.publish(&name, Scope::Host)
                .expect("a scale name is a name");
        }
    }

    fn more_subscriptions(&mut self, cx: &mut Context<Self>) {
        for pattern in self.subscribing.next() {
            cx.subscribe(&pattern, Scope::Host)
                .expect("a scale pattern is a pattern");
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
                if let Err(e) = cx.subscribe(pattern, Scope::Host) {
                    say(&format!("error {e}"));
                }
            }
            ["publish", prefix] => {
                let t0 = now_ns();
                let name = format!("{prefix}:{t0}");
                if let Err(e) = cx.publish(&name, Scope::Host) {
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
        }
    }

    fn dropped(&mut self, _cx: &mut Context<Self>, d: Dropped) {
        let t = now_ns();
        if d.name.as_str().starts_with(SCALE) {
            self.scale_held = self.scale_held.saturating_sub(1);
        } else {
            say(&format!("dropped {} {t}", d.name));
        }
    }

    fn not_published(&mut self, _cx: &mut Context<Self>, f: NotPublished) {
        say(&format!("error {}", f.reason));
    }

    fn not_subscribed(&mut self, _cx: &mut Context<Self>, f: NotSubscribed) {
        say(&format!("error {}", f.reason));
    }
}

fn main() -> ExitCode {
    strata::main(Node::default())
}
