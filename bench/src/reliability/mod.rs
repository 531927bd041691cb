//! The reliability benchmark (`--bench reliability`, issue 21 item 3): strata's servers
//! under faults, one row per fault, each saying what was offered, what was answered and
//! how (200, 503, 504, other statuses, connection errors) and what was lost (requests sent
//! that got no answer within [`client::ANSWER_BOUND`]).
//!
//! The rows:
//! * **overload**: `server_4`, `server_8` and `server_10`, first measured closed-loop
//!   (their capacity), then offered ten times that open-loop; every request must be
//!   answered 200 or 503, none time out, and a request after the load must be answered
//!   200 within 1 s. The peak RSS of the server's processes is reported.
//! * **kill -9**: `server_8` under open-loop load at half its capacity, one worker process
//!   killed every second, with and without `SPOOL_RETRY_ON_LOSS=1` (the spool's
//!   `retry_on_loss`): without, at most one failed request per kill (a worker holds one
//!   request); with, none.
//! * **slow clients**: 500 slow-header and 500 slow-body connections (`slowhttptest`)
//!   against `server_4` while 16 normal clients (from 127.0.0.2) are measured; the goal is
//!   at least 0.8 of their rate without the attack, measured first in the same run.
//! * **hostile clients** (`hostile.rs`): each answered or closed within a bound, and a
//!   normal request right after it answered 200.
//! * **soak**: `server_10` under open-loop load with its `worker_10`s killed and restarted
//!   in turn; the RSS and open descriptors of the server process must stay within 10% and
//!   nothing may be lost.
//!
//! Every server is a fresh process on a free loopback port, stopped (with what it
//! started) when its guard drops, also when a row fails.

mod client;
mod hostile;

use std::fmt::Write as _;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::process::Command;
use std::time::{Duration, Instant};

use crate::http::server::{self as srv, Companion, Server};
use crate::http::{self, HttpPeer};
use crate::report::{self, Machine};
use crate::suite::Options;
use client::{Plan, Tally};

/// The marker line after which the README's reliability table starts.
pub const BEGIN: &str = "<!-- reliability-results:begin -->";
/// The marker line before which the README's reliability table ends.
pub const END: &str = "<!-- reliability-results:end -->";

/// Seconds of each loaded row (overload, kills, each half of the slow-client row), full
/// and `--quick`.
pub const SECONDS: (u64, u64) = (60, 3);
/// Seconds of the soak, by default and `--quick` (the full row is 30 minutes:
/// `--soak-seconds 1800`).
pub const SOAK_SECONDS: (u64, u64) = (120, 6);
/// The soak's full length, which the table compares its own with.
pub const FULL_SOAK_SECONDS: u64 = 1800;

/// The heavy request of the loaded rows: a 100x100 table (about 180 KB), so that the
/// servers' capacity is the spool's and ten times it can be offered from the same two
/// cores.
const HEAVY: &str = "/Xy?x=100&y=100";
/// The light request of the slow-client row and of the checks.
const LIGHT: &str = "/Xy?x=8&y=8";
/// Overload: offered this many times the measured capacity.
const OVERLOAD: f64 = 10.0;
/// Connections of the open-loop overload, spread over [`OVERLOAD_SOURCES`] (each under
/// the front's 256 per client address; 1,024 in all).
const OVERLOAD_CONNECTIONS: usize = 600;
/// The loopback addresses the overload's connections come from.
const OVERLOAD_SOURCES: [IpAddr; 3] = [
    IpAddr::V4(Ipv4Addr::new(127, 0, 0, 11)),
    IpAddr::V4(Ipv4Addr::new(127, 0, 0, 12)),
    IpAddr::V4(Ipv4Addr::new(127, 0, 0, 13)),
];
/// Kills and soak: offered this share of the capacity.
const UNDER: f64 = 0.5;
/// Connections of the closed-loop capacity runs and the normal clients.
const CLOSED_CONNECTIONS: usize = 16;
/// Open-loop connections of the kill and soak rows.
const OPEN_CONNECTIONS: usize = 32;
/// After an overload, a request must be answered 200 within this.
const RECOVERY: Duration = Duration::from_secs(1);
/// The slow-client row's goal: normal clients at least this share of their rate without.
const SLOW_GOAL: f64 = 0.8;
/// Slow-header connections, and as many slow-body ones.
const SLOW_EACH: u32 = 500;
/// The soak's limit on the growth of RSS and descriptors.
const FLAT: f64 = 0.10;
/// The address the normal clients of the slow-client row connect from: not the
/// attacker's 127.0.0.1, so the front's limit per address does not cut them off with it.
const NORMAL_SOURCE: IpAddr = IpAddr::V4(Ipv4Addr::new(127, 0, 0, 2));

/// The seconds of the loaded rows and of the soak under these options.
pub fn durations(options: &Options) -> (u64, u64) {
    let pick = |given: Option<u64>, (full, quick): (u64, u64)| {
        given.unwrap_or(if options.quick { quick } else { full })
    };
    (
        pick(options.reliability_seconds, SECONDS),
        pick(options.soak_seconds, SOAK_SECONDS),
    )
}

/// One row of the table.
struct Row {
    fault: String,
    server: String,
    offered: String,
    tally: Option<Tally>,
    measured: String,
    /// `Ok(goal met: what)`, `Err(goal missed: what)`, or skipped.
    verdict: Verdict,
}

enum Verdict {
    Met(String),
    Missed(String),
    Skipped(String),
}

/// Runs the benchmark, prints its table and rewrites it in the README.
pub fn run(options: &Options) -> Result<(), String> {
    let began = Instant::now();
    let load_at_start = report::load_average();
    let (seconds, soak_seconds) = durations(options);
    for peer in [HttpPeer::Server4, HttpPeer::Server8, HttpPeer::Server10] {
        peer_available(peer)?;
    }
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .map_err(|e| format!("cannot start a tokio runtime: {e}"))?;
    let mut rows = Vec::new();
    let mut failures = Vec::new();
    let mut record = |what: &str, result: Result<Vec<Row>, String>| match result {
        Ok(r) => {
            for row in &r {
                eprintln!("[reliability] {}", one_line(row));
            }
            rows.extend(r);
        }
        Err(e) => {
            eprintln!("[reliability] {what} failed: {e}");
            failures.push(format!("{what}: {e}"));
            rows.push(Row {
                fault: what.to_string(),
                server: String::new(),
                offered: String::new(),
                tally: None,
                measured: String::new(),
                verdict: Verdict::Missed(format!("the row failed: {}", first_line(&e))),
            });
        }
    };
    for peer in [HttpPeer::Server4, HttpPeer::Server8, HttpPeer::Server10] {
        record(
            &format!("overload {}", peer.key()),
            overload(&rt, peer, seconds, options.quick).map(|r| vec![r]),
        );
    }
    for retry in [false, true] {
        record(
            &format!(
                "kill -9 server_8 (retry {})",
                if retry { "on" } else { "off" }
            ),
            kills(&rt, retry, seconds, options.quick).map(|r| vec![r]),
        );
    }
    record("slow clients", slow_clients(&rt, seconds).map(|r| vec![r]));
    record("hostile clients", hostile_clients());
    record(
        "soak server_10",
        soak(&rt, soak_seconds, options.quick).map(|r| vec![r]),
    );
    drop(rt);

    let machine = Machine::detect(began.elapsed(), options, load_at_start);
    let text = table(&rows, &machine, seconds, soak_seconds);
    println!("{text}");
    report::save_tsv(
        &format!("reliability-{}.tsv", machine.stamp),
        &tsv(&rows),
        "reliability rows",
    );
    if let Some(path) = &options.readme {
        report::rewrite_between(path, BEGIN, END, &text)?;
        eprintln!("reliability results table rewritten in {}", path.display());
    }
    if failures.is_empty() {
        Ok(())
    } else {
        Err(format!(
            "{} reliability row(s) could not be measured:\n{}",
            failures.len(),
            failures.join("\n")
        ))
    }
}

fn first_line(text: &str) -> &str {
    text.lines().next().unwrap_or("")
}

fn peer_available(peer: HttpPeer) -> Result<(), String> {
    let needed: &[&str] = match peer {
        HttpPeer::Server8 => &["server_8", "worker"],
        HttpPeer::Server10 => &["server_10", "worker_10"],
        _ => &["server_4"],
    };
    for name in needed {
        let exe = http::examples_dir().join(name);
        if !exe.is_file() {
            return Err(format!(
                "{} is missing: build it with `cargo build --release --example {name}` \
                 from the repository root (bench/run does)",
                exe.display()
            ));
        }
    }
    Ok(())
}

/// Runs a load plan on the runtime while `meanwhile` is called on this thread about
/// every `tick` (for sampling, killing); gives the tally and the measured span.
fn load_while(
    rt: &tokio::runtime::Runtime,
    plan: Plan,
    tick: Duration,
    mut meanwhile: impl FnMut(),
) -> Result<(Tally, Duration), String> {
    let limit = plan.duration + client::ANSWER_BOUND + Duration::from_secs(10);
    let handle = rt.spawn(client::run(plan));
    let started = Instant::now();
    while !handle.is_finished() {
        if started.elapsed() > limit {
            handle.abort();
            return Err(format!("the load did not end within {limit:?}"));
        }
        meanwhile();
        std::thread::sleep(tick);
    }
    let (tally, span) = rt
        .block_on(handle)
        .map_err(|e| format!("the load task failed: {e}"))?;
    if !tally.adds_up() {
        return Err(format!("the client's tally does not add up: {tally:?}"));
    }
    Ok((tally, span))
}

fn closed(address: SocketAddr, path: &str, seconds: f64, source: Option<IpAddr>) -> Plan {
    let sources = source.into_iter().collect();
    Plan {
        address,
        path: path.to_string(),
        connections: CLOSED_CONNECTIONS,
        duration: Duration::from_secs_f64(seconds),
        rate: None,
        sources,
    }
}

/// A warm-up, then the server's capacity: 200s per second of a closed-loop run.
fn capacity(rt: &tokio::runtime::Runtime, server: &Server, quick: bool) -> Result<f64, String> {
    let (warm, measure) = if quick { (0.5, 1.0) } else { (1.0, 3.0) };
    load_while(rt, closed(server.address, HEAVY, warm, None), TICK, || {})?;
    let (t, span) = load_while(
        rt,
        closed(server.address, HEAVY, measure, None),
        TICK,
        || {},
    )?;
    let rate = t.ok as f64 / span.as_secs_f64().max(1e-9);
    if rate <= 0.0 {
        return Err(format!(
            "no request answered 200 in the capacity run: {t:?}"
        ));
    }
    Ok(rate)
}

const TICK: Duration = Duration::from_millis(100);

/// RSS of a process, in bytes (`VmRSS` of `/proc/PID/status`); 0 once it has ended.
fn rss(pid: u32) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .ok()
        .and_then(|s| {
            s.lines()
                .find_map(|l| l.strip_prefix("VmRSS:"))
                .and_then(|v| v.split_whitespace().next()?.parse::<u64>().ok())
        })
        .map_or(0, |kb| kb * 1024)
}

/// Open descriptors of a process (entries of `/proc/PID/fd`), and how many are sockets.
fn descriptors(pid: u32) -> (usize, usize) {
    let Ok(dir) = std::fs::read_dir(format!("/proc/{pid}/fd")) else {
        return (0, 0);
    };
    let mut all = 0;
    let mut sockets = 0;
    for entry in dir.flatten() {
        all += 1;
        if std::fs::read_link(entry.path())
            .is_ok_and(|t| t.to_string_lossy().starts_with("socket:"))
        {
            sockets += 1;
        }
    }
    (all, sockets)
}

fn mib(bytes: u64) -> String {
    format!("{:.1} MiB", bytes as f64 / (1024.0 * 1024.0))
}

fn rate(r: f64) -> String {
    crate::http::table_format_rate(r)
}

/// Polls `GET path` until it answers 200 (at most 10 s): how long that took.
fn back_to_200(address: SocketAddr, path: &str) -> Option<Duration> {
    let started = Instant::now();
    while started.elapsed() < Duration::from_secs(10) {
        if matches!(srv::get(address, path), Ok((200, _))) {
            return Some(started.elapsed());
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    None
}

fn is_running(server: &mut Server, what: &str) -> Result<(), String> {
    if server.is_running() {
        Ok(())
    } else {
        Err(format!("{what} ended; its output:\n{}", server.log_tail()))
    }
}

/// The overload row of `peer`.
fn overload(
    rt: &tokio::runtime::Runtime,
    peer: HttpPeer,
    seconds: u64,
    quick: bool,
) -> Result<Row, String> {
    let (mut server, _, _) = http::launch(peer, "reliability-overload", &[])?;
    let capacity = capacity(rt, &server, quick)?;
    let target = capacity * OVERLOAD;
    let plan = Plan {
        address: server.address,
        path: HEAVY.to_string(),
        connections: OVERLOAD_CONNECTIONS,
        duration: Duration::from_secs(seconds),
        rate: Some(target),
        sources: OVERLOAD_SOURCES.to_vec(),
    };
    let mut peak = 0u64;
    let (t, span) = load_while(rt, plan, TICK, || {
        let tree = server.tree();
        peak = peak.max(tree.iter().map(|&p| rss(p)).sum());
    })?;
    is_running(&mut server, peer.key())?;
    let recovered = back_to_200(server.address, HEAVY);
    server.stop();
    let offered = t.sent as f64 / span.as_secs_f64().max(1e-9);
    let answered_well = t.ok + t.unavailable == t.sent;
    let fast_back = recovered.is_some_and(|d| d <= RECOVERY);
    let mut measured = format!(
        "capacity {} (closed loop, {CLOSED_CONNECTIONS} connections); peak RSS {}; 200 again {}",
        rate(capacity),
        mib(peak),
        recovered.map_or("not within 10 s".to_string(), |d| format!(
            "{:.0} ms after",
            d.as_secs_f64() * 1e3
        ))
    );
    if t.unsent > 0 {
        let _ = write!(
            measured,
            "; {} due requests not sent (the client was behind)",
            t.unsent
        );
    }
    let verdict = if answered_well && fast_back {
        Verdict::Met("all 200 or 503; 200 within 1 s".into())
    } else {
        Verdict::Missed(format!(
            "{}{}",
            if answered_well {
                ""
            } else {
                "not all 200 or 503; "
            },
            if fast_back { "" } else { "200 not within 1 s" }
        ))
    };
    Ok(Row {
        fault: format!("overload, {OVERLOAD:.0}x capacity, {seconds} s"),
        server: format!("`{}`", peer.key()),
        offered: format!(
            "{} ({} open loop, {} asked)",
            t.sent,
            rate(offered),
            rate(target)
        ),
        tally: Some(t),
        measured,
        verdict,
    })
}

/// SIGKILL to `pid` (a process of the measurement, seen alive just before).
fn kill9(pid: u32) {
    if let Ok(pid) = libc::pid_t::try_from(pid) {
        // SAFETY: kill has no memory effects; the pid is a worker of the server under
        // test, read from /proc a moment ago.
        unsafe {
            libc::kill(pid, libc::SIGKILL);
        }
    }
}

/// The kill -9 row of `server_8`, with or without `retry_on_loss`.
fn kills(
    rt: &tokio::runtime::Runtime,
    retry: bool,
    seconds: u64,
    quick: bool,
) -> Result<Row, String> {
    let env = [("SPOOL_RETRY_ON_LOSS", if retry { "1" } else { "0" })];
    let tag = format!("reliability-kill-retry-{retry}");
    let (mut server, _, _) = http::launch(HttpPeer::Server8, &tag, &env)?;
    let capacity = capacity(rt, &server, quick)?;
    let target = capacity * UNDER;
    let plan = Plan {
        address: server.address,
        path: HEAVY.to_string(),
        connections: OPEN_CONNECTIONS,
        duration: Duration::from_secs(seconds),
        rate: Some(target),
        sources: Vec::new(),
    };
    let started = Instant::now();
    let mut killed = 0u64;
    let mut next = Duration::from_secs(1);
    let mut round = 0usize;
    let (t, span) = load_while(rt, plan, Duration::from_millis(20), || {
        if started.elapsed() >= next && started.elapsed() < Duration::from_secs(seconds) {
            next += Duration::from_secs(1);
            let workers = server.workers();
            if !workers.is_empty() {
                kill9(workers[round % workers.len()]);
                round += 1;
                killed += 1;
            }
        }
    })?;
    is_running(&mut server, "server_8")?;
    // The spool replaces a worker a second after it ended.
    std::thread::sleep(Duration::from_millis(1500));
    let workers_after = server.workers().len();
    let after = srv::get(server.address, LIGHT).map(|(s, _)| s);
    server.stop();
    let failed = t.failed();
    let goal = if retry { 0 } else { killed };
    let met = failed <= goal && t.lost == 0 && after == Ok(200);
    let offered = t.sent as f64 / span.as_secs_f64().max(1e-9);
    Ok(Row {
        fault: format!(
            "kill -9 of a worker process every second, {seconds} s, retry_on_loss {}",
            if retry { "on" } else { "off" }
        ),
        server: "`server_8`".into(),
        offered: format!(
            "{} ({} open loop, half the capacity of {})",
            t.sent,
            rate(offered),
            rate(capacity)
        ),
        tally: Some(t),
        measured: format!(
            "{killed} workers killed; {failed} requests failed; {workers_after} of 8 workers \
             running 1.5 s after; a request after: {}",
            after.map_or_else(|e| e, |s| s.to_string())
        ),
        verdict: if met {
            Verdict::Met(format!("failed {failed} ≤ {goal}"))
        } else {
            Verdict::Missed(format!("failed {failed}, goal ≤ {goal}"))
        },
    })
}

/// Why `slowhttptest` cannot be run here, if it cannot.
fn slowhttptest_missing() -> Option<String> {
    let found = Command::new("slowhttptest").arg("-h").output().is_ok();
    if found {
        None
    } else {
        // SAFETY: geteuid has no effects.
        let root = unsafe { libc::geteuid() } == 0;
        Some(if root {
            "slowhttptest is not installed and `apt-get install -y slowhttptest` (bench/run) failed"
                .into()
        } else {
            "slowhttptest is not installed and this is not root: bench/run installs it \
             with apt-get only as root"
                .into()
        })
    }
}

/// The slow-client row: normal clients' rate without, then with, the attack.
fn slow_clients(rt: &tokio::runtime::Runtime, seconds: u64) -> Result<Row, String> {
    let fault = format!(
        "{SLOW_EACH} slow-header + {SLOW_EACH} slow-body connections (slowhttptest), {seconds} s"
    );
    if let Some(why) = slowhttptest_missing() {
        return Ok(Row {
            fault,
            server: "`server_4`".into(),
            offered: String::new(),
            tally: None,
            measured: String::new(),
            verdict: Verdict::Skipped(why),
        });
    }
    let (mut server, _, _) = http::launch(HttpPeer::Server4, "reliability-slow", &[])?;
    let address = server.address;
    let normal = || closed(address, LIGHT, seconds as f64, Some(NORMAL_SOURCE));
    // Warm-up, then the normal clients alone.
    load_while(
        rt,
        closed(address, LIGHT, 1.0, Some(NORMAL_SOURCE)),
        TICK,
        || {},
    )?;
    let (alone, alone_span) = load_while(rt, normal(), TICK, || {})?;
    let alone_rate = alone.ok as f64 / alone_span.as_secs_f64().max(1e-9);

    let logs = http::bench_dir().join("target/http/logs");
    let url = format!("http://{address}/Xy");
    let attack = |mode: &str, name: &str| {
        // At the lowest priority: the attackers share the two cores with the server and
        // its normal clients, and slowhttptest busy-polls its sockets (about a core for
        // the two); niced, they take what the others leave.
        let mut c = Command::new("nice");
        c.args([
            "-n",
            "19",
            "slowhttptest",
            mode,
            "-c",
            &SLOW_EACH.to_string(),
            "-r",
            "1000",
            "-i",
            "5",
            "-x",
            "16",
            "-l",
            &(seconds + 60).to_string(),
            "-t",
            if mode == "-B" { "POST" } else { "GET" },
            "-u",
            &url,
        ]);
        Companion::start(name, c, &logs.join(format!("reliability-{name}.log")))
    };
    // The front closes a connection whose head or body has not arrived within its read
    // time-out (10 s), and slowhttptest does not open new ones for those it lost: each
    // attacker is replaced by a fresh one every ROTATE, so the attack lasts as long as
    // the measurement.
    const ROTATE: Duration = Duration::from_secs(8);
    let modes = [
        ("-H", "slowhttptest-headers"),
        ("-B", "slowhttptest-bodies"),
    ];
    let mut attackers = Vec::new();
    for (mode, name) in modes {
        attackers.push((attack(mode, name)?, Instant::now()));
    }
    let mut started_attackers = attackers.len();
    let mut attack_error: Option<String> = None;
    // Until the attack's connections are open (at most 5 s).
    let pid = server.pid();
    let ramp = Instant::now();
    let mut peak_sockets = 0;
    while ramp.elapsed() < Duration::from_secs(5) {
        peak_sockets = peak_sockets.max(descriptors(pid).1);
        if peak_sockets >= 256 && ramp.elapsed() > Duration::from_secs(2) {
            break;
        }
        std::thread::sleep(TICK);
    }
    let (mut sum, mut count) = (0usize, 0usize);
    // The attackers' CPU time over the measurement: what they took from the normal
    // clients and the server on the same two cores.
    let cpu = |c: &Companion| c.cpu_time().unwrap_or_default();
    let mut attack_cpu = Duration::ZERO;
    let cpu_start: Duration = attackers.iter().map(|(c, _)| cpu(c)).sum();
    let server_cpu_start = server.cpu_time();
    let (with, with_span) = load_while(rt, normal(), TICK, || {
        let sockets = descriptors(pid).1;
        peak_sockets = peak_sockets.max(sockets);
        sum += sockets;
        count += 1;
        for (i, &(mode, name)) in modes.iter().enumerate() {
            let (c, since) = &mut attackers[i];
            if attack_error.is_some() || (since.elapsed() < ROTATE && c.is_running()) {
                continue;
            }
            attack_cpu += cpu(c);
            c.stop();
            match attack(mode, name) {
                Ok(fresh) => {
                    *c = fresh;
                    *since = Instant::now();
                    started_attackers += 1;
                }
                Err(e) => attack_error = Some(e),
            }
        }
    })?;
    let mean_sockets = sum as f64 / count.max(1) as f64;
    let server_cpu = match (server_cpu_start, server.cpu_time()) {
        (Some(a), Some(b)) => b.saturating_sub(a),
        _ => Duration::ZERO,
    };
    for (c, _) in &mut attackers {
        attack_cpu += cpu(c);
        c.stop();
    }
    let attack_cpu = attack_cpu.saturating_sub(cpu_start);
    is_running(&mut server, "server_4")?;
    server.stop();
    if let Some(e) = attack_error {
        return Err(format!("slowhttptest could not be started again: {e}"));
    }
    let with_rate = with.ok as f64 / with_span.as_secs_f64().max(1e-9);
    let ratio = with_rate / alone_rate.max(1e-9);
    let mut both = alone;
    both.add(&with);
    Ok(Row {
        fault,
        server: "`server_4`".into(),
        offered: format!(
            "{} + {} ({CLOSED_CONNECTIONS} closed-loop clients from {NORMAL_SOURCE}, without then with)",
            alone.sent, with.sent
        ),
        tally: Some(both),
        measured: format!(
            "normal clients {} without, {} with the attack ({ratio:.2}x); sockets open in \
             the server during the attack: up to {peak_sockets}, {mean_sockets:.0} on average; \
             {started_attackers} slowhttptest processes (`nice -n 19`, each replaced after {} \
             s), which used {:.0}% of one core (the server {:.0}%)",
            rate(alone_rate),
            rate(with_rate),
            ROTATE.as_secs(),
            attack_cpu.as_secs_f64() / with_span.as_secs_f64().max(1e-9) * 100.0,
            server_cpu.as_secs_f64() / with_span.as_secs_f64().max(1e-9) * 100.0,
        ),
        verdict: if ratio >= SLOW_GOAL && with.failed() == 0 {
            Verdict::Met(format!("{ratio:.2}x ≥ {SLOW_GOAL}x"))
        } else {
            Verdict::Missed(format!("{ratio:.2}x, goal ≥ {SLOW_GOAL}x"))
        },
    })
}

/// The hostile-client rows: every client at once against one `server_4`, each followed
/// by a normal request.
fn hostile_clients() -> Result<Vec<Row>, String> {
    let (mut server, _, _) = http::launch(HttpPeer::Server4, "reliability-hostile", &[])?;
    let address = server.address;
    let cases = hostile::cases();
    let results: Vec<(Result<hostile::Outcome, String>, Result<u16, String>)> =
        std::thread::scope(|scope| {
            let handles: Vec<_> = cases
                .iter()
                .map(|case| {
                    scope.spawn(move || {
                        let outcome = case.run(address);
                        let next = srv::get(address, LIGHT).map(|(s, _)| s);
                        (outcome, next)
                    })
                })
                .collect();
            handles
                .into_iter()
                .map(|h| {
                    h.join()
                        .unwrap_or_else(|_| (Err("the client panicked".into()), Err("-".into())))
                })
                .collect()
        });
    is_running(&mut server, "server_4")?;
    let last = srv::get(address, LIGHT).map(|(s, _)| s);
    server.stop();
    let mut rows = Vec::new();
    for (case, (outcome, next)) in cases.iter().zip(results) {
        let next_text = next.clone().map_or_else(|e| e, |s| s.to_string());
        let (measured, met) = match &outcome {
            Ok(o) => (o.describe(), o.ended() && next == Ok(200)),
            Err(e) => (format!("the client failed: {e}"), false),
        };
        rows.push(Row {
            fault: format!("hostile: {}", case.name),
            server: "`server_4`".into(),
            offered: case.what.to_string(),
            tally: None,
            measured: format!("{measured}; the next request: {next_text}"),
            verdict: if met {
                Verdict::Met(format!(
                    "ended within {} s, then 200",
                    hostile::BOUND.as_secs()
                ))
            } else {
                Verdict::Missed("not ended within the bound, or the next request not 200".into())
            },
        });
    }
    if last != Ok(200) {
        return Err(format!(
            "after every hostile client, GET {LIGHT} gave {last:?}"
        ));
    }
    Ok(rows)
}

/// Median of `v` (which it sorts); 0 for none.
fn median(v: &mut [f64]) -> f64 {
    if v.is_empty() {
        return 0.0;
    }
    v.sort_by(|a, b| a.total_cmp(b));
    v[v.len() / 2]
}

/// The soak row: `server_10` under load, a worker killed and a new one started in turn.
fn soak(rt: &tokio::runtime::Runtime, seconds: u64, quick: bool) -> Result<Row, String> {
    let env = [("SPOOL_RETRY_ON_LOSS", "1")];
    let (mut server, workers, _) = http::launch(HttpPeer::Server10, "reliability-soak", &env)?;
    let capacity = capacity(rt, &server, quick)?;
    let target = capacity * UNDER;
    // One worker killed (and one started) every `every`: about 24 times a soak, at most
    // one a second and at least one every 10 s.
    let every = Duration::from_secs((seconds / 24).clamp(1, 10));
    let plan = Plan {
        address: server.address,
        path: HEAVY.to_string(),
        connections: OPEN_CONNECTIONS,
        duration: Duration::from_secs(seconds),
        rate: Some(target),
        sources: Vec::new(),
    };
    let pid = server.pid();
    let logs = http::bench_dir().join("target/http/logs");
    let started = Instant::now();
    let mut next_kill = every;
    let mut next_sample = Duration::ZERO;
    let mut samples: Vec<(f64, u64, usize)> = Vec::new();
    let mut killed = 0u64;
    let mut spawn_error: Option<String> = None;
    let (t, span) = load_while(rt, plan, Duration::from_millis(50), || {
        let now = started.elapsed();
        if now >= next_sample && now < Duration::from_secs(seconds) {
            next_sample += Duration::from_millis(500).min(every);
            samples.push((now.as_secs_f64(), rss(pid), descriptors(pid).0));
        }
        if now >= next_kill && now < Duration::from_secs(seconds) && spawn_error.is_none() {
            next_kill += every;
            let running = server.companion_pids();
            if let Some(&victim) = running.first() {
                kill9(victim);
                killed += 1;
                let fresh = http::named_worker(HttpPeer::Server10, &server).and_then(|c| {
                    let c = c.ok_or("server_10 has no named workers")?;
                    let log = logs.join(format!("reliability-soak-worker-new{killed}.log"));
                    Companion::start(&format!("worker_10 #{killed}"), c, &log)
                });
                match fresh {
                    Ok(c) => server.adopt(c),
                    Err(e) => spawn_error = Some(e),
                }
            }
        }
    })?;
    if let Some(e) = spawn_error {
        return Err(format!("a new worker_10 could not be started: {e}"));
    }
    is_running(&mut server, "server_10")?;
    std::thread::sleep(Duration::from_millis(500));
    let running_after = server.companion_pids().len();
    server.stop();
    // The start: the samples of the second tenth of the soak (after the first kills, with
    // the allocator warm); the end: the last tenth.
    let window = |from: usize, to: usize| -> (f64, f64) {
        // Sample indices: tenths of the samples, at least one sample each.
        let n = samples.len();
        let (a, b) = (n * from / 10, (n * to / 10).max(n * from / 10 + 1).min(n));
        let mut r: Vec<f64> = samples[a.min(n)..b].iter().map(|s| s.1 as f64).collect();
        let mut d: Vec<f64> = samples[a.min(n)..b].iter().map(|s| s.2 as f64).collect();
        (median(&mut r), median(&mut d))
    };
    if samples.len() < 10 || samples.iter().any(|s| s.1 == 0 || s.2 == 0) {
        return Err(format!(
            "too few samples of server_10, or one of a process gone: {samples:?}"
        ));
    }
    let (rss0, fd0) = window(1, 2);
    let (rss1, fd1) = window(9, 10);
    let grow = |a: f64, b: f64| b / a - 1.0;
    let (rss_growth, fd_growth) = (grow(rss0, rss1), grow(fd0, fd1));
    let met = rss_growth.abs() <= FLAT && fd_growth.abs() <= FLAT && t.lost == 0;
    let offered = t.sent as f64 / span.as_secs_f64().max(1e-9);
    let length = if seconds == FULL_SOAK_SECONDS {
        format!("{} min", seconds / 60)
    } else {
        format!(
            "{seconds} s (the full row is {} min: `--soak-seconds {FULL_SOAK_SECONDS}`)",
            FULL_SOAK_SECONDS / 60
        )
    };
    Ok(Row {
        fault: format!(
            "soak, {length}, a `worker_10` killed and a new one started every {} s, retry_on_loss on",
            every.as_secs()
        ),
        server: "`server_10`".into(),
        offered: format!(
            "{} ({} open loop, half the capacity of {})",
            t.sent,
            rate(offered),
            rate(capacity)
        ),
        tally: Some(t),
        measured: format!(
            "{killed} workers killed and replaced ({running_after} of {workers} running at the \
             end); server process RSS {} → {} ({:+.1}%), descriptors {fd0:.0} → {fd1:.0} \
             ({:+.1}%), medians of the 2nd and the last tenth; {} failed",
            mib(rss0 as u64),
            mib(rss1 as u64),
            rss_growth * 100.0,
            fd_growth * 100.0,
            t.failed()
        ),
        verdict: if met {
            Verdict::Met("flat within 10%, none lost".into())
        } else {
            Verdict::Missed(format!(
                "RSS {:+.1}%, descriptors {:+.1}%, lost {} (goal within ±10%, 0)",
                rss_growth * 100.0,
                fd_growth * 100.0,
                t.lost
            ))
        },
    })
}

fn cells(t: &Option<Tally>) -> [String; 6] {
    match t {
        Some(t) => [
            t.ok.to_string(),
            t.unavailable.to_string(),
            t.timeout.to_string(),
            t.other.to_string(),
            t.conn_errors.to_string(),
            t.lost.to_string(),
        ],
        None => std::array::from_fn(|_| "–".to_string()),
    }
}

fn verdict_text(v: &Verdict) -> String {
    match v {
        Verdict::Met(s) => format!("met ({s})"),
        Verdict::Missed(s) => format!("**missed** ({s})"),
        Verdict::Skipped(s) => format!("skipped: {s}"),
    }
}

fn one_line(row: &Row) -> String {
    let c = cells(&row.tally);
    format!(
        "{} {}: offered {}; 200 {} 503 {} 504 {} other {} conn {} lost {}; {}; {}",
        row.fault,
        row.server,
        row.offered,
        c[0],
        c[1],
        c[2],
        c[3],
        c[4],
        c[5],
        row.measured,
        verdict_text(&row.verdict)
    )
}

fn table(rows: &[Row], machine: &Machine, seconds: u64, soak_seconds: u64) -> String {
    let mut out = format!(
        "Measured {} on {} (nproc {}; {}; 1-minute load average {} at the start, {} at the \
         end), {} (strata at {}). One run of each row{}, each against a fresh server; loaded \
         rows {seconds} s, the soak {soak_seconds} s. The benchmark took {:.0} s.\n\n",
        machine.date,
        machine.cpu,
        machine.nproc,
        machine.kernel,
        machine.load.0,
        machine.load.1,
        machine.rustc,
        machine.strata_revision,
        if machine.quick { " (`--quick`)" } else { "" },
        machine.wall.as_secs_f64()
    );
    let busy: f64 = machine.load.0.parse().unwrap_or(0.0);
    if busy >= 1.0 {
        let _ = writeln!(
            out,
            "The machine was shared and busy: other work ran beside the benchmark (the load \
             averages above), so capacities and rates are lower than on a quiet machine.\n"
        );
    }
    out.push_str(
        "| fault | server | offered | 200 | 503 | 504 | other | conn. errors | lost | measured | goal |\n",
    );
    out.push_str("|---|---|---|--:|--:|--:|--:|--:|--:|---|---|\n");
    for row in rows {
        let _ = writeln!(out, "| {} |", fields(row).join(" | "));
    }
    let _ = write!(
        out,
        "\n*offered*: requests sent (open loop: paced at a fixed rate over {OVERLOAD_CONNECTIONS} \
         connections for the overload, from 127.0.0.11-13, {OPEN_CONNECTIONS} for the others, \
         whatever the server does; a connection still waiting for an answer when its next \
         request falls due sends it late, and what it never sent is reported as not sent); *conn. errors*: requests whose connection failed, closed or was reset before \
         the answer; *lost*: requests with no answer within {} s on a connection still open. \
         Every sent request is in exactly one of the six columns. The loaded rows ask for \
         100x100 tables; capacity is the 200s per second of a closed-loop run just before. \
         The hostile clients ran all at once against one server, each followed by a normal \
         request on a fresh connection.\n",
        client::ANSWER_BOUND.as_secs()
    );
    out
}

/// A row's cells, in the columns of the table and of the TSV file.
fn fields(row: &Row) -> Vec<String> {
    let mut f = vec![
        row.fault.to_string(),
        row.server.to_string(),
        row.offered.to_string(),
    ];
    f.extend(cells(&row.tally).iter().map(|c| c.to_string()));
    f.push(row.measured.to_string());
    f.push(verdict_text(&row.verdict).to_string());
    f
}

fn tsv(rows: &[Row]) -> String {
    let mut text =
        String::from("fault\tserver\toffered\t200\t503\t504\tother\tconn\tlost\tmeasured\tgoal\n");
    for row in rows {
        let _ = writeln!(text, "{}", fields(row).join("\t"));
    }
    text
}
