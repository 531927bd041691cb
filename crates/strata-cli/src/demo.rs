//! `strata demo`: the texture service under load, reported.
//!
//! The service is the last step of the teaching path: an HTTP front on 127.0.0.1:5050 and
//! a spool of worker processes (this program again, run as `strata texture-worker`) — or
//! of worker threads with `--workers threads`, or of worker processes found through the
//! host directory with `--workers named` (each publishes `texture:demo:<pid>:<n>`; the
//! spool starts empty and a `Feed` fills it). The load client then drives it for 10
//! seconds with clients that ask for tables of random sizes and check every table's
//! dimensions, prints the report and the spool's own statistics, and stops everything:
//! no process is left behind. `--serve` keeps the service up for curl until Ctrl-C.

use std::net::SocketAddr;
use std::process::ExitCode;
use std::time::Duration;

use clap::{Args, ValueEnum};
use strata::directory::{Feed, Scope};
use strata::http::{Api, HttpServer};
use strata::load::{Limits, LoadPlan};
use strata::net::Listening;
use strata::prelude::*;
use strata::process::Process;
use strata::spool::{Spool, SpoolStatistics, SpoolStats};

use strata_texture::{Worker, Xy};

/// What the service's workers are.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum WorkerKind {
    /// Worker threads in the service's process.
    Threads,
    /// Worker processes (`strata texture-worker`), one request at a time each.
    Processes,
    /// Worker processes that publish themselves (`texture:demo:<n>` at host scope); the
    /// spool starts empty and is fed by a subscription through the host directory.
    Named,
}

/// Options of `strata demo`.
#[derive(Args, Debug, Clone)]
pub struct DemoArgs {
    /// Where the service listens.
    #[arg(long, default_value = "127.0.0.1:5050")]
    address: SocketAddr,
    /// What the workers are.
    #[arg(long, value_enum, default_value_t = WorkerKind::Processes)]
    workers: WorkerKind,
    /// How many workers the spool has.
    #[arg(long, default_value_t = 4, value_parser = clap::value_parser!(u32).range(1..=256))]
    size: u32,
    /// Keep the service up (for curl) until Ctrl-C instead of driving it.
    #[arg(long)]
    serve: bool,
    /// How long to drive the service (like 10s).
    #[arg(long, value_parser = crate::load::duration, default_value = "10s")]
    duration: Duration,
    /// Clients at once.
    #[arg(long, default_value_t = 16, value_parser = clap::value_parser!(u32).range(1..=10_000))]
    clients: u32,
    /// Tables asked for are x by y, each drawn from 1 to this.
    #[arg(long, default_value_t = 16, value_parser = clap::value_parser!(u32).range(1..=1000))]
    max_size: u32,
}

/// The service: the HTTP front and the spool behind it. Tells its parent when it listens
/// (or cannot).
struct Service {
    address: SocketAddr,
    workers: WorkerKind,
    size: u32,
    spool: Address,
}

#[strata::machine]
impl Service {
    fn start(&mut self, cx: &mut Context<Self>, _: Start) {
        let spool = match self.workers {
            WorkerKind::Processes => {
                let exe = std::env::current_exe()
                    .map(|p| p.to_string_lossy().into_owned())
                    .unwrap_or_else(|_| "strata".into());
                let recipe = Process::of(exe).arg("texture-worker");
                cx.create(shedding(Spool::of(recipe), self.size))
            }
            WorkerKind::Threads => cx.create(shedding(
                Spool::of(|| Threaded(Worker::default())),
                self.size,
            )),
            WorkerKind::Named => {
                // The workers are this service's children only so that none outlives it:
                // the spool knows nothing of them but their names.
                let exe = std::env::current_exe()
                    .map(|p| p.to_string_lossy().into_owned())
                    .unwrap_or_else(|_| "strata".into());
                let spool = cx.create(shedding(Spool::of(|| Threaded(Worker::default())), 0));
                let pattern = format!("texture:demo:{}:.*", std::process::id());
                cx.create(Feed::new(&pattern, Scope::Host, spool).expect("a valid pattern"));
                for n in 0..self.size {
                    let name = format!("--name=texture:demo:{}:{n}", std::process::id());
                    cx.create(Process::of(exe.clone()).arg("texture-worker").arg(name));
                }
                spool
            }
        };
        self.spool = spool;
        let api = Api::new().message::<Xy>().message::<SpoolStats>();
        cx.create(HttpServer::new(self.address, api));
    }

    fn listening(&mut self, cx: &mut Context<Self>, m: Listening) {
        cx.send(cx.parent(), m);
    }

    fn not_listening(&mut self, cx: &mut Context<Self>, m: NotListening) {
        cx.send(cx.parent(), m.clone());
        cx.abort(m);
    }

    fn xy(&mut self, cx: &mut Context<Self>, m: Xy) {
        cx.forward(self.spool, m);
    }

    fn stats(&mut self, cx: &mut Context<Self>, m: SpoolStats) {
        cx.forward(self.spool, m);
    }
}

/// The spool settings of the demo: a short queue and a response-time target, so that
/// overload is answered at once with 503 instead of piling up.
fn shedding<R: strata::Recipe>(spool: Spool<R>, size: u32) -> Spool<R> {
    spool
        .workers(size as usize)
        .queue_size(Some(64))
        .responsiveness(Duration::from_millis(100))
        .busy_pass_rate(0.2)
}

/// Runs the demo as a strata program (Ctrl-C stops it cleanly).
pub fn run(args: DemoArgs, log: Option<String>) -> ExitCode {
    let settings = strata::ProgramSettings {
        log,
        ..Default::default()
    };
    strata::main_with(
        Thread::new(move |cx: &mut ThreadContext| demo(cx, &args)),
        settings,
    )
}

fn demo(cx: &mut ThreadContext, args: &DemoArgs) -> i32 {
    let service = cx.create(Service {
        address: args.address,
        workers: args.workers,
        size: args.size,
        spool: Address::NULL,
    });
    let kind = match args.workers {
        WorkerKind::Threads => "threads",
        WorkerKind::Processes => "processes",
        WorkerKind::Named => "processes found by name",
    };
    let at = match cx.select_timeout::<(Listening, NotListening, Stop)>(Duration::from_secs(30)) {
        Ok(e) if e.is::<Listening>() => {
            let at = e.take::<Listening>().expect("selected").address;
            println!(
                "strata demo: texture service on http://{at}/Xy?x=2&y=2 with a spool of {} worker {kind}",
                args.size
            );
            at
        }
        Ok(e) if e.is::<NotListening>() => {
            let m = e.take::<NotListening>().expect("selected");
            eprintln!(
                "strata demo: {} (is another service there? give --address)",
                m.reason
            );
            let _ = cx.wait_for(service);
            return 1;
        }
        Ok(_) => return stop(cx, service, 0),
        Err(_) => {
            eprintln!("strata demo: the service did not start within 30 s");
            return stop(cx, service, 1);
        }
    };
    if args.serve {
        println!("serving until Ctrl-C");
        let _ = cx.select::<(Stop,)>();
        return stop(cx, service, 0);
    }
    let mut plan = LoadPlan::new(format!(
        "http://{at}/Xy?x={{1..{m}}}&y={{1..{m}}}",
        m = args.max_size
    ));
    plan.clients = args.clients;
    plan.duration = Some(args.duration);
    plan.validation = strata_texture::table_check();
    println!(
        "driving it for {:?} with {} clients asking for tables up to {m}x{m}, each checked",
        args.duration,
        args.clients,
        m = args.max_size
    );
    let fleet = match crate::load::make_fleet(&plan, 1) {
        Ok(f) => f,
        Err(e) => {
            eprintln!("strata demo: {e}");
            return stop(cx, service, 1);
        }
    };
    let live = std::io::IsTerminal::is_terminal(&std::io::stderr());
    let report = crate::load::drive(cx, fleet, &plan, 1, Limits::default(), live);
    let Some(report) = report else {
        return stop(cx, service, 1);
    };
    print!("{report}");
    if let Ok(s) = cx
        .ask_timeout(service, SpoolStats, Duration::from_secs(5))
        .downcast::<SpoolStatistics>()
    {
        println!(
            "  spool      admitted {}, completed {}, failed {}, busy {}, overloaded {}, workers replaced {}",
            s.admitted, s.completed, s.failed, s.rejected_busy, s.rejected_overloaded, s.replaced
        );
    }
    let e = &report.errors;
    let broken = e.validation + e.connect + e.io + e.status;
    let status = if report.ok == 0 || broken > 0 || !report.passed {
        eprintln!("strata demo: the service gave {broken} broken answers");
        1
    } else {
        0
    };
    stop(cx, service, status)
}

/// Stops the service (its worker processes with it) and waits for it.
fn stop(cx: &mut ThreadContext, service: Address, status: i32) -> i32 {
    cx.stop(service);
    let _ = cx.wait_for(service);
    println!("service stopped");
    status
}
