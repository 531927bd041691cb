//! A peer process for the directory tests (`crates/strata/tests/directory_*.rs`).
//!
//! `directory_peer [--publish NAME@SCOPE]... [--subscribe PATTERN@SCOPE]... [--child ARGS]...`
//! publishes each NAME from an object of its own, subscribes its top object to each
//! PATTERN, and starts each `--child` as a child process (this program again, with ARGS
//! split at spaces) so that it is the parent of a composite. It prints one line per event
//! on stdout:
//!
//! - `published NAME SCOPE`, `not-published NAME REASON`;
//! - `subscribed PATTERN SCOPE`, `not-subscribed REASON`;
//! - `available NAME SCOPE NODE`, `dropped NAME SCOPE NODE` (NODE: the publisher's node
//!   id in hex, `self` when it is this process).
//!
//! `--serve-lan HOST:PORT` serves the LAN directory there (printing `serving-lan ADDR`),
//! with the keys the LAN settings name (`STRATA_LAN_KEY`, `STRATA_LAN_IDENTITY`...), if any.
//! `--confirm` asks each object that becomes available (a `String`) and, when it answers,
//! prints `answered NAME: TEXT` and publishes `NAME:answered` at host scope.
//! `--stderr-to FILE` sends the log (`--log=LEVEL`) to FILE.
//!
//! A publishing object answers a `String` with `NAME@PID: TEXT`. Commands on stdin, one
//! per line: `end NAME` ends the object publishing NAME; `publish NAME@SCOPE`; `quit`.
//! At the end of stdin, and without it (a child), it runs until stopped.

use std::collections::HashMap;
use std::io::{BufRead, Write};

use strata::directory::{Available, Dropped, Published, Scope, Subscribed};
use strata::prelude::*;
use strata::process::Process;
use strata::standard::{NotPublished, NotSubscribed};

fn say(line: String) {
    let mut out = std::io::stdout().lock();
    let _ = writeln!(out, "{line}");
    let _ = out.flush();
}

fn scope(text: &str) -> Scope {
    match text {
        "process" => Scope::Process,
        "group" => Scope::Group,
        "host" => Scope::Host,
        "lan" => Scope::Lan,
        other => panic!("no scope `{other}`"),
    }
}

fn split(arg: &str) -> (String, Scope) {
    let (name, s) = arg.rsplit_once('@').expect("NAME@SCOPE");
    (name.to_string(), scope(s))
}

fn node(a: Address) -> String {
    if a.is_local() {
        "self".into()
    } else {
        format!("{:016x}", a.node())
    }
}

/// Publishes one name and answers under it.
struct Publisher {
    name: String,
    scope: Scope,
}

#[strata::machine]
impl Publisher {
    #[guard(sender == cx.address())]
    fn start(&mut self, cx: &mut Context<Self>, _: Start) {
        cx.publish(&self.name, self.scope).expect("a valid name");
    }

    fn published(&mut self, _cx: &mut Context<Self>, p: Published) {
        say(format!("published {} {}", p.name, p.scope));
    }

    fn not_published(&mut self, _cx: &mut Context<Self>, f: NotPublished) {
        say(format!("not-published {} {}", self.name, f.reason));
    }

    fn text(&mut self, _cx: &mut Context<Self>, text: String) -> String {
        format!("{}@{}: {text}", self.name, std::process::id())
    }
}

/// A line read from stdin.
#[derive(Debug, Clone, Serialize, Deserialize, Message)]
#[message(name = "test.DirectoryCommand")]
struct Command(String);

struct Peer {
    publish: Vec<(String, Scope)>,
    subscribe: Vec<(String, Scope)>,
    children: Vec<String>,
    publishers: HashMap<String, Address>,
    read_stdin: bool,
    /// `--confirm`: ask each available name's object, and publish `NAME:answered` at host
    /// scope when it answers (so a test sees what a child reached).
    confirm: bool,
    asked: HashMap<Address, String>,
    /// `--serve-lan ADDR`: serve the LAN directory there (no key: loopback or a test
    /// network only).
    serve_lan: Option<std::net::SocketAddr>,
}

impl Peer {
    fn publish(&mut self, cx: &mut Context<Self>, name: String, scope: Scope) {
        let a = cx.create(Publisher {
            name: name.clone(),
            scope,
        });
        self.publishers.insert(name, a);
    }
}

#[strata::machine]
impl Peer {
    #[guard(sender == cx.address())]
    fn start(&mut self, cx: &mut Context<Self>, _: Start) {
        if let Some(address) = self.serve_lan {
            // The LAN's key, when the environment names one (as for every LAN process).
            // Or its static keys, when the LAN is configured with them.
            let settings = match strata::directory::lan::settings() {
                Ok(Some(s)) => s,
                _ => {
                    let key =
                        std::env::var_os(strata::directory::lan::LAN_KEY_VARIABLE).map(|path| {
                            strata::net::keys::load_psk(path).expect("a pre-shared key file")
                        });
                    strata::directory::lan::LanSettings::new(address, key)
                }
            };
            strata::directory::lan::serve_with(address, &settings);
            say(format!("serving-lan {address}"));
        }
        for (pattern, scope) in std::mem::take(&mut self.subscribe) {
            cx.subscribe(&pattern, scope).expect("a valid pattern");
        }
        for (name, scope) in std::mem::take(&mut self.publish) {
            self.publish(cx, name, scope);
        }
        for args in std::mem::take(&mut self.children) {
            let me = std::env::current_exe().expect("this program");
            let mut p = Process::of(me.to_string_lossy().to_string());
            for a in args.split(' ').filter(|a| !a.is_empty()) {
                p = p.arg(a);
            }
            cx.create(p);
        }
        if self.read_stdin {
            let me = cx.address();
            let post = cx.postbox();
            std::thread::spawn(move || {
                for line in std::io::stdin().lock().lines() {
                    let Ok(line) = line else { break };
                    post.send(me, Command(line));
                }
            });
        }
    }

    fn command(&mut self, cx: &mut Context<Self>, c: Command) {
        let mut words = c.0.split_whitespace();
        match (words.next(), words.next()) {
            (Some("end"), Some(name)) => {
                if let Some(a) = self.publishers.remove(name) {
                    cx.stop(a);
                }
            }
            (Some("publish"), Some(arg)) => {
                let (name, scope) = split(arg);
                self.publish(cx, name, scope);
            }
            (Some("quit"), _) => cx.complete(0u8),
            _ => say(format!("unknown command {:?}", c.0)),
        }
    }

    fn subscribed(&mut self, _cx: &mut Context<Self>, s: Subscribed) {
        say(format!("subscribed {} {}", s.pattern, s.scope));
    }

    fn not_subscribed(&mut self, _cx: &mut Context<Self>, f: NotSubscribed) {
        say(format!("not-subscribed {}", f.reason));
    }

    fn available(&mut self, cx: &mut Context<Self>, a: Available) {
        say(format!(
            "available {} {} {}",
            a.name,
            a.scope,
            node(a.address)
        ));
        if self.confirm {
            self.asked.insert(a.address, a.name.to_string());
            cx.send(a.address, "confirm".to_string());
        }
    }

    fn answer(&mut self, cx: &mut Context<Self>, text: String) {
        if let Some(name) = self.asked.remove(&cx.sender()) {
            say(format!("answered {name}: {text}"));
            self.publish(cx, format!("{name}:answered"), Scope::Host);
        }
    }

    fn dropped(&mut self, _cx: &mut Context<Self>, d: Dropped) {
        say(format!(
            "dropped {} {} {}",
            d.name,
            d.scope,
            node(d.address)
        ));
    }

    fn returned(&mut self, _cx: &mut Context<Self>, _: Returned) {}
}

fn main() -> std::process::ExitCode {
    let mut peer = Peer {
        publish: Vec::new(),
        subscribe: Vec::new(),
        children: Vec::new(),
        publishers: HashMap::new(),
        read_stdin: !strata_testbins::started_as_child(),
        confirm: false,
        asked: HashMap::new(),
        serve_lan: None,
    };
    let mut args = std::env::args().skip(1);
    while let Some(a) = args.next() {
        match a.as_str() {
            "--publish" => peer
                .publish
                .push(split(&args.next().expect("--publish NAME@SCOPE"))),
            "--subscribe" => peer
                .subscribe
                .push(split(&args.next().expect("--subscribe PATTERN@SCOPE"))),
            "--child" => peer.children.push(args.next().expect("--child ARGS")),
            "--full-output" => {}
            "--confirm" => peer.confirm = true,
            "--serve-lan" => {
                let address: std::net::SocketAddr = args
                    .next()
                    .and_then(|a| a.parse().ok())
                    .expect("--serve-lan HOST:PORT");
                peer.serve_lan = Some(address);
            }
            a if a.starts_with("--log=") => {}
            // Where a child's log goes (its stderr is its parent's otherwise).
            "--stderr-to" => {
                use std::os::fd::AsRawFd;
                let path = args.next().expect("--stderr-to FILE");
                let file = std::fs::File::create(&path).expect("a log file");
                // SAFETY: dup2 onto stderr, before any thread starts.
                unsafe { libc::dup2(file.as_raw_fd(), 2) };
            }
            other => panic!("unknown argument {other}"),
        }
    }
    strata::main(peer)
}
