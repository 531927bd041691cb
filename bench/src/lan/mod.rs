//! The LAN benchmark (`--bench lan`, issue 17): names across hosts, the hosts being
//! network namespaces of this machine (`netns.rs`), on the LAN directory and on etcd.
//! Needs root (and iproute2, nftables, etcd): without them it says why and skips.
//!
//! Each run of each setup makes three fresh hosts joined by a bridge, a fresh pre-shared
//! key (every LAN link is encrypted with it), a host directory (`strata directory`) with
//! a private `STRATA_RUNTIME_DIR` on hosts 2 and 3, and either the LAN directory
//! (`strata directory --lan --listen 0.0.0.0:PORT --key FILE` on host 1) or a 3-member
//! etcd cluster (a member on each host, `STRATA_LAN_DIRECTORY=etcd://…`). The publisher
//! is a `dir-node` on host 2, the subscriber (`bench:.*`) a `dir-node` on host 3, both at
//! LAN scope (`DIR_NODE_SCOPE=lan`). Network namespaces share the kernel's
//! `CLOCK_MONOTONIC`, so the directory benchmark's method holds across them: the
//! publisher puts the clock in the name, the subscriber reads it first thing in its
//! handler.
//!
//! The rows, for each setup:
//!
//! 1. publish → `Available`: one publication at a time, as in the directory benchmark's
//!    row 1 (`publish_one_by_one`), after warm-up publications not kept.
//! 2. a silent host → `Dropped`: the publisher publishes `bench:cut:K`, the subscriber
//!    hears it; then the publisher's host is cut off (an nftables table dropping
//!    everything on its `eth0` both ways); the span runs from just before the harness
//!    starts `nft` to the subscriber's `Dropped` handler.
//! 3. healed → `Available` again: the table deleted; from just after `nft` returns to
//!    the subscriber's `Available` for the same name (the next sample waits for it).
//!
//! Runs are interleaved: run 1 of both setups, then run 2 in the other order, and so on.
//! Everything (processes, namespaces, folders) is removed when a run ends, also when it
//! fails.

mod netns;

use std::fmt::Write as _;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use crate::directory::proc::{now_ns, Proc, RuntimeDir};
use crate::directory::{self, format_ns, quantile};
use crate::http;
use crate::report::{self, crate_versions, median};
use crate::suite::Options;
use netns::{Host, Lan};

/// The marker line after which the README's LAN table starts.
pub const BEGIN: &str = "<!-- lan-results:begin -->";
/// The marker line before which it ends.
pub const END: &str = "<!-- lan-results:end -->";

/// The LAN directory's port on host 1.
const PORT: u16 = 47_300;
/// How long a cut-off host may take to be dropped before the sample fails.
const DROP_LIMIT: Duration = Duration::from_secs(20);
/// How long a healed host may take to be available again.
const HEAL_LIMIT: Duration = Duration::from_secs(60);
/// How long an etcd cluster may take to be healthy.
const ETCD_LIMIT: Duration = Duration::from_secs(30);
/// The pause after the publisher is heard of and before its host is cut, so that the
/// links are idle (their keep-alives ticking) as on a quiet LAN.
const SETTLE: Duration = Duration::from_millis(500);

/// Goals of issue 17, in nanoseconds.
const GOAL_PUB_LAN: u64 = 20_000_000;
const GOAL_PUB_ETCD: u64 = 50_000_000;
const GOAL_CUT_LAN: u64 = 3_000_000_000;
const GOAL_CUT_ETCD: u64 = 4_000_000_000;
/// The tests' goal for healing (issue 17's "Must show"): `Available` again within 2 s.
const GOAL_HEAL: u64 = 2_000_000_000;

/// Where the LAN scope is served.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Setup {
    /// The LAN directory (`strata directory --lan`).
    Directory,
    /// A 3-member etcd cluster.
    Etcd,
}

impl Setup {
    fn key(self) -> &'static str {
        match self {
            Setup::Directory => "lan-directory",
            Setup::Etcd => "etcd",
        }
    }
}

/// What a row measures.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Publish,
    Cut,
    Heal,
}

impl Kind {
    fn key(self) -> &'static str {
        match self {
            Kind::Publish => "publish-available",
            Kind::Cut => "cut-dropped",
            Kind::Heal => "heal-available",
        }
    }
}

const ROWS: [(Setup, Kind); 6] = [
    (Setup::Directory, Kind::Publish),
    (Setup::Etcd, Kind::Publish),
    (Setup::Directory, Kind::Cut),
    (Setup::Etcd, Kind::Cut),
    (Setup::Directory, Kind::Heal),
    (Setup::Etcd, Kind::Heal),
];

/// The raw TCP baseline's port on host 2.
const TCP_PORT: u16 = 47_301;
/// How long one link sample may take.
const LINK_LIMIT: Duration = Duration::from_secs(120);

/// The sizes of one run.
#[derive(Debug, Clone, Copy)]
struct Sizes {
    publications: usize,
    warmup: usize,
    cuts: usize,
    /// Round trips in one link sample.
    roundtrips: u64,
    /// Messages in one one-way link sample.
    messages: u64,
    /// Link samples per run, of each kind and peer.
    link_samples: usize,
}

/// What a link row measures.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Link {
    RoundTrip,
    OneWay,
}

/// Who carries it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Carrier {
    Strata,
    Raw,
}

const LINK_ROWS: [(Link, Carrier); 4] = [
    (Link::RoundTrip, Carrier::Raw),
    (Link::RoundTrip, Carrier::Strata),
    (Link::OneWay, Carrier::Raw),
    (Link::OneWay, Carrier::Strata),
];

impl Sizes {
    fn of(options: &Options) -> Sizes {
        if options.quick {
            Sizes {
                publications: 50,
                warmup: 10,
                cuts: 2,
                roundtrips: 500,
                messages: 20_000,
                link_samples: 2,
            }
        } else {
            Sizes {
                publications: 300,
                warmup: 20,
                cuts: 4,
                roundtrips: 2_000,
                messages: 100_000,
                link_samples: 5,
            }
        }
    }
}

/// Per row, per run, the spans in nanoseconds.
#[derive(Default)]
struct Samples {
    runs: Vec<(Row, Vec<Vec<u64>>)>,
    /// Per link row, per run, the nanoseconds per operation of each sample.
    links: Vec<(LinkRow, Vec<Vec<f64>>)>,
}

/// A row of spans: where the LAN scope is served, and what is measured.
type Row = (Setup, Kind);
/// A link row: what is measured, and who carries it.
type LinkRow = (Link, Carrier);

impl Samples {
    fn add_link(&mut self, row: (Link, Carrier), run: usize, per_op: f64) {
        let runs = match self.links.iter_mut().find(|(r, _)| *r == row) {
            Some((_, v)) => v,
            None => {
                self.links.push((row, Vec::new()));
                &mut self.links.last_mut().expect("pushed").1
            }
        };
        while runs.len() <= run {
            runs.push(Vec::new());
        }
        runs[run].push(per_op);
    }

    fn link_runs(&self, row: (Link, Carrier)) -> &[Vec<f64>] {
        self.links
            .iter()
            .find(|(r, _)| *r == row)
            .map(|(_, v)| v.as_slice())
            .unwrap_or(&[])
    }

    fn add(&mut self, row: (Setup, Kind), spans: Vec<u64>) {
        say_run(row, &spans);
        match self.runs.iter_mut().find(|(r, _)| *r == row) {
            Some((_, v)) => v.push(spans),
            None => self.runs.push((row, vec![spans])),
        }
    }

    fn of(&self, row: (Setup, Kind)) -> &[Vec<u64>] {
        self.runs
            .iter()
            .find(|(r, _)| *r == row)
            .map(|(_, v)| v.as_slice())
            .unwrap_or(&[])
    }
}

fn say_run(row: (Setup, Kind), v: &[u64]) {
    let q = |p| quantile(v, p).map(format_ns).unwrap_or_else(|| "?".into());
    eprintln!(
        "[lan] {:<14} {:<18} {} samples  p50 {}  p99 {}  max {}",
        row.0.key(),
        row.1.key(),
        v.len(),
        q(0.5),
        q(0.99),
        q(1.0)
    );
}

/// The etcd program, if installed.
fn etcd_program() -> Option<PathBuf> {
    ["/usr/bin/etcd", "/usr/local/bin/etcd"]
        .iter()
        .map(PathBuf::from)
        .find(|p| p.is_file())
}

/// One run's world: the hosts and the directories' processes in them. Fields drop in
/// order: the processes first, then the folders, then the namespaces.
struct World {
    host_directories: Vec<Proc>,
    serving: Vec<Proc>,
    runtimes: Vec<RuntimeDir>,
    /// A folder for the key and etcd's data.
    files: RuntimeDir,
    key: PathBuf,
    lan_setting: String,
    tag: String,
    lan: Lan,
}

impl World {
    fn new(setup: Setup, run: usize) -> Result<World, String> {
        let lan = Lan::new(3)?;
        let files = RuntimeDir::new()?;
        let key = files.path.join("lan.psk");
        let psk = strata::net::keys::generate_psk().map_err(|e| format!("a new key: {e}"))?;
        strata::net::keys::save_psk(&key, &psk).map_err(|e| format!("saving the key: {e}"))?;
        let tag = format!("lan-run{}-{}", run + 1, setup.key());
        let mut world = World {
            host_directories: Vec::new(),
            serving: Vec::new(),
            runtimes: Vec::new(),
            files,
            key,
            lan_setting: String::new(),
            tag,
            lan,
        };
        match setup {
            Setup::Directory => world.start_lan_directory()?,
            Setup::Etcd => world.start_etcd()?,
        }
        for i in [1, 2] {
            world.start_host_directory(i)?;
        }
        Ok(world)
    }

    fn host(&self, i: usize) -> &Host {
        &self.lan.hosts()[i]
    }

    fn log(&self, what: &str) -> PathBuf {
        directory::log_dir().join(format!("{}-{what}.log", self.tag))
    }

    fn start_lan_directory(&mut self) -> Result<(), String> {
        let strata = strata_program()?;
        let mut c = self.host(0).command(&strata);
        c.args(["directory", "--lan", "--listen", &format!("0.0.0.0:{PORT}")])
            .arg("--key")
            .arg(&self.key);
        let mut p = Proc::start("strata directory --lan", c, &self.log("lan-directory"))?
            .terminate_gently();
        p.expect_line(directory::STEP, "strata directory: serving")?;
        self.serving.push(p);
        self.lan_setting = format!("{}:{PORT}", self.host(0).address());
        Ok(())
    }

    fn start_etcd(&mut self) -> Result<(), String> {
        let etcd = etcd_program().ok_or("no etcd program (Debian's etcd-server)")?;
        let token = format!("strata-bench-{}-{}", std::process::id(), self.tag);
        let members: Vec<(String, String)> = self
            .lan
            .hosts()
            .iter()
            .enumerate()
            .map(|(i, h)| (format!("m{i}"), h.address().to_string()))
            .collect();
        let initial: Vec<String> = members
            .iter()
            .map(|(name, ip)| format!("{name}=http://{ip}:2380"))
            .collect();
        for (i, (name, ip)) in members.iter().enumerate() {
            let mut c = self.host(i).command(&etcd);
            c.arg("--name")
                .arg(name)
                .arg("--data-dir")
                .arg(self.files.path.join(name))
                .arg("--listen-peer-urls")
                .arg(format!("http://{ip}:2380"))
                .arg("--initial-advertise-peer-urls")
                .arg(format!("http://{ip}:2380"))
                .arg("--listen-client-urls")
                .arg(format!("http://{ip}:2379"))
                .arg("--advertise-client-urls")
                .arg(format!("http://{ip}:2379"))
                .arg("--initial-cluster")
                .arg(initial.join(","))
                .args(["--initial-cluster-state", "new"])
                .arg("--initial-cluster-token")
                .arg(&token);
            let p = Proc::start(
                &format!("etcd {name}"),
                c,
                &self.log(&format!("etcd-{name}")),
            )?;
            self.serving.push(p);
        }
        let deadline = Instant::now() + ETCD_LIMIT;
        for (i, (name, ip)) in members.iter().enumerate() {
            loop {
                let healthy = self
                    .host(i)
                    .command("etcdctl")
                    .env("ETCDCTL_API", "3")
                    .arg(format!("--endpoints=http://{ip}:2379"))
                    .args(["--command-timeout=1s", "endpoint", "health"])
                    .stdin(std::process::Stdio::null())
                    .stdout(std::process::Stdio::null())
                    .stderr(std::process::Stdio::null())
                    .status()
                    .map_err(|e| format!("etcdctl does not start: {e}"))?
                    .success();
                if healthy {
                    break;
                }
                if Instant::now() > deadline {
                    return Err(format!(
                        "etcd member {name} not healthy within {ETCD_LIMIT:?}; its log:\n{}",
                        self.serving[i].log_tail()
                    ));
                }
                std::thread::sleep(Duration::from_millis(100));
            }
        }
        let endpoints: Vec<String> = members.iter().map(|(_, ip)| format!("{ip}:2379")).collect();
        self.lan_setting = format!("etcd://{}", endpoints.join(","));
        Ok(())
    }

    fn start_host_directory(&mut self, i: usize) -> Result<(), String> {
        let dir = RuntimeDir::new()?;
        let mut c = self.host(i).command(strata_program()?);
        c.arg("directory");
        dir.apply(&mut c);
        let log = self.log(&format!("h{}-directory", i + 1));
        let mut p = Proc::start("strata directory", c, &log)?.terminate_gently();
        p.expect_line(directory::STEP, "strata directory: serving")?;
        self.host_directories.push(p);
        self.runtimes.push(dir);
        Ok(())
    }

    /// A fresh `dir-node` at LAN scope on host `i` (1 or 2), waited for until ready.
    fn node(&mut self, i: usize, role: &str) -> Result<Proc, String> {
        let mut c = self.host(i).command(directory::node_program()?);
        self.runtimes[i - 1].apply(&mut c);
        c.env("DIR_NODE_SCOPE", "lan")
            .env("STRATA_LAN_DIRECTORY", &self.lan_setting)
            .env("STRATA_LAN_KEY", &self.key);
        let log = self.log(&format!("h{}-{role}", i + 1));
        let mut p = Proc::start(&format!("dir-node ({role}, host {})", i + 1), c, &log)?;
        p.expect_line(directory::STEP, "ready")?;
        Ok(p)
    }
}

fn strata_program() -> Result<PathBuf, String> {
    let strata = http::strata_program();
    if strata.is_file() {
        Ok(strata)
    } else {
        Err(format!(
            "{} is missing: build it with `cargo build --release -p strata-cli --bin strata \
             --features strata/etcd` from the repository root (bench/run does)",
            strata.display()
        ))
    }
}

/// Waits for the subscriber's `EVENT PREFIX:T0 T1` and gives T1.
fn event_at(p: &mut Proc, event: &str, prefix: &str, limit: Duration) -> Result<u64, String> {
    let start = format!("{event} {prefix}:");
    p.expect(limit, &format!("`{start}`"), |l| {
        l.strip_prefix(&start)?.split_once(' ')?.1.parse().ok()
    })
}

/// One run of one setup: every row.
fn one_run(samples: &mut Samples, setup: Setup, sizes: Sizes, run: usize) -> Result<(), String> {
    let began = Instant::now();
    let mut world = World::new(setup, run)?;
    let mut sub = world.node(2, "subscriber")?;
    sub.send("subscribe bench:.*")?;
    sub.expect_line(directory::STEP, "subscribed ")?;
    let mut publisher = world.node(1, "publisher")?;
    eprintln!(
        "[lan] run {} {}: hosts and processes up in {:.1} s",
        run + 1,
        setup.key(),
        began.elapsed().as_secs_f64()
    );
    let spans = directory::publish_one_by_one(
        &mut sub,
        &mut publisher,
        "",
        sizes.warmup,
        sizes.publications,
    )?;
    samples.add((setup, Kind::Publish), spans);
    if setup == Setup::Directory {
        link_rows(samples, &world, &mut sub, sizes, run)?;
    }

    let mut cut = Vec::new();
    let mut heal = Vec::new();
    for k in 0..sizes.cuts {
        let prefix = format!("bench:cut:{k}");
        publisher.send(&format!("publish {prefix}"))?;
        directory::available_after(&mut sub, &prefix)?;
        std::thread::sleep(SETTLE);
        sub.drain();
        publisher.drain();
        let host = world.host(1);
        let t_cut = now_ns();
        host.cut()?;
        let t_dropped = event_at(&mut sub, "dropped", &prefix, DROP_LIMIT);
        host.heal()?;
        let t_healed = now_ns();
        let t_dropped = t_dropped?;
        let t_back = event_at(&mut sub, "available", &prefix, HEAL_LIMIT)?;
        cut.push(t_dropped.saturating_sub(t_cut));
        heal.push(t_back.saturating_sub(t_healed));
        eprintln!(
            "[lan] run {} {}: cut {k}: dropped after {}, available again {} after healing",
            run + 1,
            setup.key(),
            format_ns(t_dropped.saturating_sub(t_cut)),
            format_ns(t_back.saturating_sub(t_healed))
        );
    }
    samples.add((setup, Kind::Cut), cut);
    samples.add((setup, Kind::Heal), heal);
    // The nodes stop before the world (declared after it).
    Ok(())
}

/// The link rows in one run: the subscriber's session to the publisher (host 3 to host
/// 2) against raw TCP between the same two hosts, samples interleaved.
fn link_rows(
    samples: &mut Samples,
    world: &World,
    sub: &mut Proc,
    sizes: Sizes,
    run: usize,
) -> Result<(), String> {
    let tcp = lan_tcp_program()?;
    let mut c = world.host(1).command(&tcp);
    c.args(["serve", &format!("0.0.0.0:{TCP_PORT}")]);
    let mut server = Proc::start("lan-tcp serve", c, &world.log("h2-lan-tcp-serve"))?;
    server.expect_line(directory::STEP, "listening")?;
    let target = format!("{}:{TCP_PORT}", world.host(1).address());
    let strata_pass = |sub: &mut Proc, mode: &str, n: u64| -> Result<u64, String> {
        sub.send(&format!("{mode} bench:lat {n}"))?;
        let start = format!("{mode} {n} ");
        sub.expect(LINK_LIMIT, &format!("`{start}`"), |l| {
            l.strip_prefix(&start)?.trim().parse().ok()
        })
    };
    // Warm-up passes of strata's, not kept (the raw client warms up in each run itself).
    strata_pass(sub, "roundtrip", (sizes.roundtrips / 10).max(1))?;
    strata_pass(sub, "oneway", (sizes.messages / 10).max(1))?;
    for k in 0..sizes.link_samples {
        for (link, n) in [
            (Link::RoundTrip, sizes.roundtrips),
            (Link::OneWay, sizes.messages),
        ] {
            let mode = match link {
                Link::RoundTrip => "roundtrip",
                Link::OneWay => "oneway",
            };
            let mut order = [Carrier::Raw, Carrier::Strata];
            if k % 2 == 1 {
                order.reverse();
            }
            for carrier in order {
                let ns = match carrier {
                    Carrier::Strata => strata_pass(sub, mode, n)?,
                    Carrier::Raw => {
                        let mut c = world.host(2).command(&tcp);
                        c.args([mode, &target, &n.to_string()]);
                        let log = world.log(&format!("h3-lan-tcp-{mode}"));
                        let mut p = Proc::start("lan-tcp", c, &log)?;
                        p.expect(LINK_LIMIT, "`RESULT`", |l| {
                            l.strip_prefix("RESULT ")?.trim().parse().ok()
                        })?
                    }
                };
                samples.add_link((link, carrier), run, ns as f64 / n as f64);
            }
        }
    }
    for row in LINK_ROWS {
        if let Some(v) = samples.link_runs(row).get(run) {
            eprintln!(
                "[lan] run {} link {:?} {:?}: {:.1} µs per operation (median of {})",
                run + 1,
                row.0,
                row.1,
                median(v) / 1e3,
                v.len()
            );
        }
    }
    Ok(())
}

/// `lan-tcp`, beside this binary.
fn lan_tcp_program() -> Result<PathBuf, String> {
    let exe = std::env::current_exe().map_err(|e| format!("cannot find this binary: {e}"))?;
    let p = exe.with_file_name("lan-tcp");
    if p.is_file() {
        Ok(p)
    } else {
        Err(format!(
            "{} is missing: build the bench crate (bench/run does)",
            p.display()
        ))
    }
}

/// Runs the LAN benchmark, prints its table and rewrites it in the README; without root
/// (or iproute2, nftables) it says why and skips.
pub fn run(options: &Options) -> Result<(), String> {
    if let Some(why) = netns::unavailable() {
        eprintln!("[lan] skipping the LAN benchmark: {why}");
        return Ok(());
    }
    let began = Instant::now();
    let load_at_start = report::load_average();
    let sizes = Sizes::of(options);
    let mut samples = Samples::default();
    let mut setups = vec![Setup::Directory];
    let mut missing = None;
    match etcd_program() {
        Some(_) => setups.push(Setup::Etcd),
        None => {
            let why = "no etcd program on this machine (Debian's etcd-server)".to_string();
            eprintln!("[lan] the etcd rows are not measured: {why}");
            missing = Some(why);
        }
    }
    for run in 0..options.runs {
        let mut order = setups.clone();
        if run % 2 == 1 {
            order.reverse();
        }
        for setup in order {
            one_run(&mut samples, setup, sizes, run)
                .map_err(|e| format!("LAN benchmark, run {}, {}: {e}", run + 1, setup.key()))?;
        }
    }
    let mut machine = report::Machine::detect(began.elapsed(), options, load_at_start);
    machine.versions = crate_versions(&["strata", "tokio", "etcd-client"]);
    let text = table(&samples, &machine, sizes, missing.as_deref());
    println!("{text}");
    save_samples(&samples, &machine);
    if let Some(path) = &options.readme {
        report::rewrite_between(path, BEGIN, END, &text)?;
        eprintln!("LAN results table rewritten in {}", path.display());
    }
    Ok(())
}

fn label(row: (Setup, Kind)) -> &'static str {
    match row {
        (Setup::Directory, Kind::Publish) => {
            "**publish → `Available`**, LAN directory on host 1, publisher on host 2, \
             subscriber on host 3"
        }
        (Setup::Etcd, Kind::Publish) => {
            "**publish → `Available`**, LAN on etcd (a member on each host)"
        }
        (Setup::Directory, Kind::Cut) => {
            "**silent host → `Dropped`**, LAN directory: the publisher's host cut off"
        }
        (Setup::Etcd, Kind::Cut) => "**silent host → `Dropped`**, LAN on etcd",
        (Setup::Directory, Kind::Heal) => "healed → `Available` again, LAN directory",
        (Setup::Etcd, Kind::Heal) => "healed → `Available` again, LAN on etcd",
    }
}

/// The goal of a row and whether it is met: the publish rows by the median of the runs'
/// p99, the others by the worst sample of all (every silent host within the goal).
fn goal(row: (Setup, Kind), p99: u64, max: u64) -> String {
    let verdict = |ok: bool| if ok { "met" } else { "**not met**" };
    match row {
        (Setup::Directory, Kind::Publish) => {
            format!("p99 ≤ 20 ms: {}", verdict(p99 <= GOAL_PUB_LAN))
        }
        (Setup::Etcd, Kind::Publish) => format!("p99 ≤ 50 ms: {}", verdict(p99 <= GOAL_PUB_ETCD)),
        (Setup::Directory, Kind::Cut) => {
            format!("every sample ≤ 3 s: {}", verdict(max <= GOAL_CUT_LAN))
        }
        (Setup::Etcd, Kind::Cut) => {
            format!("every sample ≤ 4 s: {}", verdict(max <= GOAL_CUT_ETCD))
        }
        (_, Kind::Heal) => format!(
            "every sample ≤ 2 s (the tests' goal): {}",
            verdict(max <= GOAL_HEAL)
        ),
    }
}

fn table(
    samples: &Samples,
    machine: &report::Machine,
    sizes: Sizes,
    missing: Option<&str>,
) -> String {
    let mut out = report::notes(
        machine,
        "each with three fresh namespace hosts, key, host directories and processes",
        "The LAN benchmark",
    );
    let _ = writeln!(
        out,
        "Per run: {} publications kept (after {} not kept), {} cuts.\n",
        sizes.publications, sizes.warmup, sizes.cuts
    );
    out.push_str(
        "| row | samples | p50 | p99 | p99 worst run | p99 best run | max | goal (issue 17) |\n",
    );
    out.push_str("|---|--:|--:|--:|--:|--:|--:|---|\n");
    for row in ROWS {
        let runs = samples.of(row);
        if runs.is_empty() {
            let why = match (row.0, missing) {
                (Setup::Etcd, Some(why)) => why.to_string(),
                _ => "not run".to_string(),
            };
            let _ = writeln!(out, "| {} | not measured: {why} | | | | | | |", label(row));
            continue;
        }
        let per_run = |p: f64| -> Vec<f64> {
            runs.iter()
                .filter_map(|v| quantile(v, p))
                .map(|x| x as f64)
                .collect()
        };
        let p50 = median(&per_run(0.5)) as u64;
        let p99s = per_run(0.99);
        let p99 = median(&p99s) as u64;
        let (_, worst, best) = report::spread(&p99s, false);
        let max = runs.iter().flatten().copied().max().unwrap_or(0);
        let _ = writeln!(
            out,
            "| {} | {} × {} | {} | {} | {} | {} | {} | {} |",
            label(row),
            runs.len(),
            runs[0].len(),
            format_ns(p50),
            format_ns(p99),
            format_ns(worst as u64),
            format_ns(best as u64),
            format_ns(max),
            goal(row, p99, max)
        );
    }
    out.push_str(link_table(samples).as_str());
    out
}

/// A time per operation: `1.23 µs`, `86 µs`.
fn per_op_text(ns: f64) -> String {
    if ns < 10_000.0 {
        format!("{:.2} µs", ns / 1e3)
    } else {
        format_ns(ns as u64)
    }
}

/// The link rows: per operation and per second, against raw TCP.
fn link_table(samples: &Samples) -> String {
    let mut out = String::from(
        "\n**A link between two namespace hosts** (host 3 to host 2) against raw TCP between \
         the same two\n\n\
         | row | peer | samples | per operation | rate | × raw TCP | goal (issue 17) |\n\
         |---|---|--:|--:|--:|--:|---|\n",
    );
    // The median over the runs of each run's median sample.
    let figure = |row: (Link, Carrier)| -> Option<(f64, String)> {
        let runs = samples.link_runs(row);
        let per_run: Vec<f64> = runs
            .iter()
            .filter(|v| !v.is_empty())
            .map(|v| median(v))
            .collect();
        if per_run.is_empty() {
            return None;
        }
        let counts = format!("{} × {}", per_run.len(), runs[0].len());
        Some((median(&per_run), counts))
    };
    for (link, carrier) in LINK_ROWS {
        let Some((per_op, counts)) = figure((link, carrier)) else {
            continue;
        };
        let raw = figure((link, Carrier::Raw)).map(|f| f.0);
        let (name, unit) = match link {
            Link::RoundTrip => (
                "**round trip**, one request and its answer at a time",
                "round trips/s",
            ),
            Link::OneWay => (
                "**one-way messages**, a stream (window 16,384, an ack every 1,024)",
                "messages/s",
            ),
        };
        let peer = match carrier {
            Carrier::Raw => "raw TCP (`lan-tcp`: 48-byte frames, blocking std I/O, `TCP_NODELAY`, no encryption)",
            Carrier::Strata => "strata: the subscriber's session to the publisher (Noise, pre-shared key)",
        };
        let ratio = raw.map(|r| per_op / r);
        let goal = match (link, carrier, ratio) {
            (Link::RoundTrip, Carrier::Strata, Some(x)) => format!(
                "within 1.5× raw: {}",
                if x <= 1.5 { "met" } else { "**not met**" }
            ),
            _ => "–".to_string(),
        };
        let _ = writeln!(
            out,
            "| {name} | {peer} | {counts} | {} | {} | {} | {goal} |",
            per_op_text(per_op),
            report::format_rate(1e9 / per_op, unit),
            ratio
                .map(|x| format!("{x:.2}×"))
                .unwrap_or_else(|| "–".into()),
        );
    }
    out.push_str(
        "\n*per operation*: the median over the runs of each run's median sample, a sample \
         being one timed pass (a round trip, or a message of the stream) divided by its \
         count; *rate*: one over it; *× raw TCP*: strata's time per operation over raw \
         TCP's (lower is faster).\n",
    );
    out
}

fn save_samples(samples: &Samples, machine: &report::Machine) {
    let mut text = String::from("setup\trow\trun\tspans_ns\n");
    for ((setup, kind), runs) in &samples.runs {
        for (i, v) in runs.iter().enumerate() {
            let spans: Vec<String> = v.iter().map(u64::to_string).collect();
            let _ = writeln!(
                text,
                "{}\t{}\t{}\t{}",
                setup.key(),
                kind.key(),
                i + 1,
                spans.join(",")
            );
        }
    }
    for ((link, carrier), runs) in &samples.links {
        for (i, v) in runs.iter().enumerate() {
            let per_op: Vec<String> = v.iter().map(|x| format!("{x:.1}")).collect();
            let _ = writeln!(
                text,
                "link\t{link:?}-{carrier:?}\t{}\t{}",
                i + 1,
                per_op.join(",")
            );
        }
    }
    report::save_tsv(&format!("lan-{}.tsv", machine.stamp), &text, "LAN samples");
}
