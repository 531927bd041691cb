//! A load run with clients of your own kinds: one watchdog, a few expert users and many
//! typical users, against the texture service (started here, on an ephemeral port unless
//! an address is given).
//!
//! `cargo run --release --example load_users [ADDRESS]`
//!
//! * the **watchdog** is a machine on a thread of its own: four times a second it makes one
//!   request with plain blocking std I/O and warns when the answer is slow;
//! * **expert users** are the library's `BasicClient`: requests back to back;
//! * **typical users** are async objects written here: a few requests with a think time
//!   between them, then they leave (and the run brings a new one in).
//!
//! One recipe makes all three (`AnyObject` boxes objects of different kinds); all record
//! into the same report, and a last line says how many clients and requests each kind
//! had.

use std::io::{Read, Write};
use std::process::ExitCode;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::time::{Duration, Instant};

use strata::http::{Api, HttpServer};
use strata::load::{BasicClient, ClientKit, ErrorKind, Limits, Load, LoadPlan, LoadReport};
use strata::load::{Outcome, Tally};
use strata::net::Listening;
use strata::prelude::*;
use strata::AnyObject;
use strata_texture::{Table, Xy};

/// The service: the HTTP front, answering each `Xy` inline; tells its parent where it
/// listens.
struct Service {
    address: std::net::SocketAddr,
    seed: u64,
}

#[strata::machine]
impl Service {
    fn start(&mut self, cx: &mut Context<Self>, _: Start) {
        cx.create(HttpServer::new(self.address, Api::new().message::<Xy>()));
    }

    fn listening(&mut self, cx: &mut Context<Self>, m: Listening) {
        cx.send(cx.parent(), m);
    }

    fn not_listening(&mut self, cx: &mut Context<Self>, m: NotListening) {
        cx.send(cx.parent(), m.clone());
        cx.complete(m);
    }

    fn xy(&mut self, _cx: &mut Context<Self>, m: Xy) -> Table {
        strata_texture::texture(m.x, m.y, &mut self.seed)
    }
}

/// Clients made and requests recorded, per kind: watchdog, expert, typical (experts'
/// requests are the rest of the report's).
static CLIENTS: [AtomicU64; 3] = [const { AtomicU64::new(0) }; 3];
static REQUESTS: [AtomicU64; 3] = [const { AtomicU64::new(0) }; 3];
const WATCHDOG: usize = 0;
const EXPERT: usize = 1;
const TYPICAL: usize = 2;

/// Slower than this, the watchdog complains.
const SLOW: Duration = Duration::from_millis(20);

/// The watchdog: a machine on its own thread, one request every 250 ms.
struct Watchdog {
    kit: ClientKit,
    slow: u32,
}

#[strata::machine]
impl Watchdog {
    fn start(&mut self, cx: &mut Context<Self>, _: Start) {
        self.kit.begin_session();
        cx.start_repeating(T1, Duration::from_millis(250));
    }

    fn tick(&mut self, cx: &mut Context<Self>, _: T1) {
        let Some(ticket) = self.kit.claim() else {
            cx.complete(self.slow);
            return;
        };
        let started = ticket.due.unwrap_or_else(Instant::now);
        let mut path = String::new();
        self.kit.path(&mut path);
        let outcome = match blocking_get(&self.kit, &path) {
            Ok((status, body)) => self.kit.score(&path, status, &body),
            Err(kind) => Outcome::Failed(kind),
        };
        let took = started.elapsed();
        if took > SLOW {
            self.slow += 1;
            eprintln!("watchdog: {path} took {took:?}");
        }
        REQUESTS[WATCHDOG].fetch_add(1, Relaxed);
        self.kit.record(outcome, started);
    }
}

/// One request on a connection of its own, with blocking std I/O.
fn blocking_get(kit: &ClientKit, path: &str) -> Result<(u16, Vec<u8>), ErrorKind> {
    let target = kit.target();
    let mut s = std::net::TcpStream::connect_timeout(&target.address, kit.plan().timeout)
        .map_err(|_| ErrorKind::Connect)?;
    s.set_read_timeout(Some(kit.plan().timeout))
        .map_err(|_| ErrorKind::Io)?;
    let request = format!(
        "GET {path} HTTP/1.1\r\nHost: {}\r\nConnection: close\r\n\r\n",
        target.host
    );
    s.write_all(request.as_bytes()).map_err(|_| ErrorKind::Io)?;
    let mut response = Vec::new();
    s.read_to_end(&mut response).map_err(|e| match e.kind() {
        std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut => ErrorKind::Timeout,
        _ => ErrorKind::Io,
    })?;
    let split = response
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .ok_or(ErrorKind::Io)?;
    let head = String::from_utf8_lossy(&response[..split]);
    let status = head
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .ok_or(ErrorKind::Io)?;
    Ok((status, response[split + 4..].to_vec()))
}

/// A typical user's whims: a little xorshift generator of its own.
struct Whims(u64);

impl Whims {
    fn new(slot: u32) -> Self {
        Whims((strata_texture::seed() ^ (u64::from(slot) << 40)).max(1))
    }

    /// A whole number in `[0, n)`.
    fn below(&mut self, n: u64) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0 % n
    }
}

/// A typical user: three to six requests with 50-150 ms of thinking between them.
async fn typical_user(mut cx: AsyncContext, kit: ClientKit) {
    kit.begin_session();
    let mut whims = Whims::new(kit.slot());
    let visit = async {
        let Ok(mut conn) = kit.connect().await else {
            kit.record(Outcome::Failed(ErrorKind::Connect), Instant::now());
            return;
        };
        let mut path = String::new();
        for _ in 0..3 + whims.below(4) {
            let Some(ticket) = kit.claim() else { return };
            let started = ticket.due.unwrap_or_else(Instant::now);
            kit.path(&mut path);
            REQUESTS[TYPICAL].fetch_add(1, Relaxed);
            match tokio::time::timeout(kit.plan().timeout, conn.get(&path)).await {
                Ok(Ok(r)) => kit.record(kit.score(&path, r.status, r.body), started),
                Ok(Err(_)) => return kit.record(Outcome::Failed(ErrorKind::Io), started),
                Err(_) => return kit.record(Outcome::Failed(ErrorKind::Timeout), started),
            }
            let think = Duration::from_millis(50 + whims.below(101));
            tokio::time::sleep(think).await;
        }
    };
    // Stop (the end of the run) ends the visit.
    tokio::select! {
        () = visit => {}
        _ = cx.select::<(Stop,)>() => {}
    }
}

fn run(cx: &mut ThreadContext) -> i32 {
    // The address given, or any free port.
    let address = match std::env::args().nth(1) {
        Some(_) => match strata_texture::address() {
            Ok(a) => a,
            Err(e) => {
                eprintln!("load_users: {e}");
                return 2;
            }
        },
        None => "127.0.0.1:0".parse().expect("an address"),
    };
    let service = cx.create(Service {
        address,
        seed: strata_texture::seed(),
    });
    let at = match cx.select_timeout::<(Listening, NotListening)>(Duration::from_secs(10)) {
        Ok(e) if e.is::<Listening>() => e.take::<Listening>().expect("selected").address,
        other => {
            eprintln!("load_users: the service did not start: {other:?}");
            cx.stop(service);
            return 1;
        }
    };
    let mut plan = LoadPlan::new(format!("http://{at}/Xy?x={{1..16}}&y={{1..16}}"));
    plan.clients = 12;
    plan.duration = Some(Duration::from_secs(5));
    plan.validation = strata_texture::table_check();
    println!("load_users: 1 watchdog, 3 expert users and 8 typical users on http://{at} for 5 s");
    let recipe = |kit: ClientKit| {
        let kind = match kit.slot() {
            0 => WATCHDOG,
            1..=3 => EXPERT,
            _ => TYPICAL,
        };
        CLIENTS[kind].fetch_add(1, Relaxed);
        match kind {
            WATCHDOG => AnyObject::new(Threaded(Watchdog { kit, slow: 0 })),
            EXPERT => AnyObject::new(BasicClient::new(kit)),
            _ => AnyObject::new(Async::new(move |cx| typical_user(cx, kit))),
        }
    };
    let load = cx.create(Load::new(plan.clone(), recipe).expect("a sound plan"));
    let tally = cx.wait_for(load).downcast::<Tally>().expect("a tally");
    let report = LoadReport::new(&tally, &plan, 1, Limits::default());
    print!("{report}");
    let [w, e, t] = CLIENTS.each_ref().map(|n| n.load(Relaxed));
    let (wr, tr) = (
        REQUESTS[WATCHDOG].load(Relaxed),
        REQUESTS[TYPICAL].load(Relaxed),
    );
    let er = report.requests.saturating_sub(wr + tr);
    println!(
        "kinds: watchdog {w} clients {wr} requests, experts {e} clients {er} requests, typical {t} clients {tr} requests"
    );
    cx.stop(service);
    let _ = cx.wait_for(service);
    i32::from(report.errors.validation + report.errors.io > 0 || report.ok == 0)
}

fn main() -> ExitCode {
    strata::main(Thread::new(run))
}
