//! A peer process for the link tests (`crates/strata/tests/net_links.rs`), and a small example of links.
//!
//! `link_peer [--encrypted] [--key HEX64] [--identity KEY-FILE] [--allow-peer HEX64]...
//! [--max-frame N] [--keep-alive-ms N] [--max-links N] [--outbox-bytes N]
//! [--write-timeout-ms N] [--no-relay]` listens on 127.0.0.1 (a free port), prints
//! `listening ADDRESS` on stdout, then `accepted PEER-KEY` for each link (the key id the
//! handshake reports, or `none`), and serves:
//! * `Xy { x, y }` → replies with an x-by-y table;
//! * `Measure(chain)` → replies with the chain's length (a recursive message);
//! * `Call { to, x, y }` → asks `to` for an x-by-y table (through `GetResponse`) and, from
//!   the `on_return` callback, replies to the caller with what came back — a third party
//!   answering an address it was given.
//!
//! * a `String` → replies with the same text.
//!
//! It runs until stopped (SIGTERM or Ctrl-C). `--listen ADDR` (first) listens there
//! instead of 127.0.0.1 (the wire tests between network-namespace hosts), and
//! `--allow-unauthenticated` lets it take plaintext links off loopback.
//!
//! `link_peer --connect ADDR [--encrypted] [--key HEX64] [--allow-unauthenticated] --say
//! TEXT` connects over TCP instead, prints `connected REMOTE` or `not connected: REASON`,
//! sends TEXT to the listening peer, prints `echoed TEXT` when it comes back, and ends.
//!
//! `link_peer --unix PATH` connects instead, over the Unix socket at PATH (the test
//! listens there), and prints `connected REMOTE` (what `Connected` names) or
//! `not connected: REASON` (then ends). Connected, it serves `Xy` like the listening peer
//! until the link closes, then ends. (The Unix-socket tests also start it as another user,
//! who must be refused.)

use std::io::Write;
use std::time::Duration;

use strata::net::keys::{PublicKey, StaticKey};
use strata::net::{Accepted, Closed, Connect, Connected, Listen, Listening};
use strata::prelude::*;
use strata_testbins::link::{Call, Measure, Nothing, Xy};

struct Peer {
    listen: Option<Listen>,
}

#[strata::machine]
impl Peer {
    fn start(&mut self, cx: &mut Context<Self>, _: Start) {
        let listen = self.listen.take().expect("listen once");
        cx.create(listen);
    }

    fn listening(&mut self, _cx: &mut Context<Self>, m: Listening) {
        println!("listening {}", m.address);
        std::io::stdout().flush().expect("stdout");
    }

    fn not_listening(&mut self, cx: &mut Context<Self>, m: NotListening) {
        eprintln!("{m}");
        cx.complete(m);
    }

    fn accepted(&mut self, _cx: &mut Context<Self>, m: Accepted) {
        println!("accepted {}", m.peer_key.as_deref().unwrap_or("none"));
        std::io::stdout().flush().expect("stdout");
    }

    fn closed(&mut self, _cx: &mut Context<Self>, _: Closed) {}

    fn xy(&mut self, _cx: &mut Context<Self>, m: Xy) -> Vec<Vec<f64>> {
        table(m)
    }

    fn measure(&mut self, _cx: &mut Context<Self>, m: Measure) -> u64 {
        let mut n = 0;
        let mut at = m.0;
        while let Some(next) = at.0 {
            n += 1;
            at = *next;
        }
        n
    }

    fn nothings(&mut self, _cx: &mut Context<Self>, m: Vec<Nothing>) -> u64 {
        m.len() as u64
    }

    fn echo(&mut self, _cx: &mut Context<Self>, text: String) -> String {
        text
    }

    fn call(&mut self, cx: &mut Context<Self>, m: Call) {
        let ask = cx
            .create(GetResponse::new(Xy { x: m.x, y: m.y }, m.to).timeout(Duration::from_secs(5)));
        cx.on_return(
            ask,
            |_: &mut Peer, cx: &mut Context<Peer>, value: AnyMessage| {
                cx.send_any(cx.sender(), value);
            },
        );
    }
}

/// Connects once and says how it went (`--unix PATH`, `--connect ADDR`); with `say`,
/// sends it to the listening peer and ends when the echo comes back.
struct Dial {
    connect: Option<Connect>,
    say: Option<String>,
}

#[strata::machine]
impl Dial {
    fn start(&mut self, cx: &mut Context<Self>, _: Start) {
        let connect = self.connect.take().expect("connect once");
        cx.create(connect);
    }

    fn connected(&mut self, cx: &mut Context<Self>, m: Connected) {
        println!("connected {}", m.remote);
        std::io::stdout().flush().expect("stdout");
        if let Some(text) = self.say.take() {
            let peer = cx.sender();
            cx.send(peer, text);
        }
    }

    fn echoed(&mut self, cx: &mut Context<Self>, text: String) {
        println!("echoed {text}");
        std::io::stdout().flush().expect("stdout");
        cx.complete(Ack);
    }

    fn not_connected(&mut self, cx: &mut Context<Self>, m: NotConnected) {
        println!("not connected: {}", m.reason);
        std::io::stdout().flush().expect("stdout");
        cx.complete(m);
    }

    fn closed(&mut self, cx: &mut Context<Self>, _: Closed) {
        cx.complete(Ack);
    }

    fn xy(&mut self, _cx: &mut Context<Self>, m: Xy) -> Vec<Vec<f64>> {
        table(m)
    }
}

/// The x-by-y table both kinds of peer answer `Xy` with.
fn table(m: Xy) -> Vec<Vec<f64>> {
    (0..m.y)
        .map(|r| (0..m.x).map(|c| (r * 100 + c) as f64).collect())
        .collect()
}

/// The number after `flag` on the command line (the test programs' arguments are trusted).
fn number<T: std::str::FromStr>(args: &mut impl Iterator<Item = String>, flag: &str) -> T {
    args.next()
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("{flag} needs a number"))
}

/// The 32-byte key written as 64 hex digits after `--key`.
fn key(args: &mut impl Iterator<Item = String>) -> [u8; 32] {
    let hex = args.next().expect("--key needs 64 hex digits");
    let mut key = [0u8; 32];
    for (i, b) in key.iter_mut().enumerate() {
        *b = u8::from_str_radix(&hex[2 * i..2 * i + 2], 16).expect("hex key");
    }
    key
}

/// `--connect ADDR ...`: the TCP dialer.
fn dial(mut args: impl Iterator<Item = String>) -> std::process::ExitCode {
    let address = args.next().expect("--connect needs an address");
    let mut connect = Connect::new(address.parse().expect("--connect: HOST:PORT"));
    let mut say = None;
    while let Some(a) = args.next() {
        match a.as_str() {
            "--encrypted" => connect = connect.encrypted(true),
            "--key" => connect = connect.key(key(&mut args)),
            "--allow-unauthenticated" => connect = connect.allow_unauthenticated(),
            "--say" => say = Some(args.next().expect("--say needs a text")),
            other if other.starts_with("--log") => {}
            other => {
                eprintln!("unknown argument `{other}`");
                return std::process::ExitCode::from(2);
            }
        }
    }
    strata::main(Dial {
        connect: Some(connect),
        say,
    })
}

fn main() -> std::process::ExitCode {
    let mut args = std::env::args().skip(1).peekable();
    let mut at = "127.0.0.1:0".to_string();
    match args.peek().map(String::as_str) {
        Some("--connect") => {
            args.next();
            return dial(args);
        }
        Some("--listen") => {
            args.next();
            at = args.next().expect("--listen needs an address");
        }
        _ => {}
    }
    let mut listen = Listen::new(at.parse().expect("--listen: HOST:PORT"));
    while let Some(a) = args.next() {
        match a.as_str() {
            "--encrypted" => listen = listen.encrypted(true),
            "--key" => listen = listen.key(key(&mut args)),
            "--allow-unauthenticated" => listen = listen.allow_unauthenticated(),
            "--identity" => {
                let path = args.next().expect("--identity needs a key file");
                match StaticKey::load(&path) {
                    Ok(key) => listen = listen.identity(key),
                    Err(e) => {
                        eprintln!("{e}");
                        return std::process::ExitCode::from(2);
                    }
                }
            }
            "--allow-peer" => {
                let hex = args.next().expect("--allow-peer needs 64 hex digits");
                let key: PublicKey = hex.parse().expect("--allow-peer: a public key in hex");
                listen = listen.allow_peers([key]);
            }
            "--max-frame" => {
                let n = number(&mut args, "--max-frame");
                listen = listen.max_frame(n);
            }
            "--keep-alive-ms" => {
                let n = number(&mut args, "--keep-alive-ms");
                listen = listen.keep_alive(Duration::from_millis(n));
            }
            "--max-links" => {
                let n = number(&mut args, "--max-links");
                listen = listen.max_links(n);
            }
            "--outbox-bytes" => {
                let n = number(&mut args, "--outbox-bytes");
                listen = listen.outbox_bytes(n);
            }
            "--write-timeout-ms" => {
                let n = number(&mut args, "--write-timeout-ms");
                listen = listen.write_timeout(Duration::from_millis(n));
            }
            "--no-relay" => listen = listen.relay(false),
            "--unix" => {
                let path = args.next().expect("--unix needs a socket path");
                return strata::main(Dial {
                    connect: Some(Connect::unix(path)),
                    say: None,
                });
            }
            other if other.starts_with("--log") => {}
            other => {
                eprintln!("unknown argument `{other}`");
                return std::process::ExitCode::from(2);
            }
        }
    }
    strata::main(Peer {
        listen: Some(listen),
    })
}
