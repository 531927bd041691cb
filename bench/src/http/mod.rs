//! The HTTP benchmarks: requests per second that `wrk` gets from the texture service,
//! served by strata's `server_1`, `server_4` and `server_8`, by bare hyper, and by the
//! Python layer-cake spools of threads and of processes.
//!
//! Two benchmarks share this machinery: `http` (issues 4 and 5: the front and the thread
//! spool) and `process` (issue 6: the spool of worker processes). When both run, the
//! servers they share are measured once, and each has its own table in the README. A
//! third, `load` (issue 7, in `load.rs`), measures the same way with two load generators,
//! wrk and `strata load`, against the same servers.
//!
//! Every measurement starts its server as a fresh process on a free loopback port, waits
//! until it answers, checks one answer's table, warms it up with a short run of the load
//! generator, measures with it, then stops it. Rounds are interleaved (round 1 of every row, then round 2,
//! ...), every other round in reverse order, so a slow spell of the shared machine spreads
//! over all servers; ratios are taken within a round and their median reported.

pub mod hyper_pool;
pub mod hyper_texture;
pub mod load;
mod loader;
mod oha;
pub mod server;
mod strata_load;
mod table;
pub mod tls;
mod wrk;

use std::net::{Ipv4Addr, SocketAddr};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use crate::directory::proc::RuntimeDir;
use crate::report;
use crate::suite::Options;
use loader::Loader;
use server::{Companion, Server};

pub use server::die_with_parent;
pub use strata_load::program as strata_program;
pub use table::format_rate as table_format_rate;
pub use table::{one_line, BEGIN, END, NAMED_BEGIN, NAMED_END, PROCESS_BEGIN, PROCESS_END};

/// The table sizes asked for: `/Xy?x=8&y=8` and `/Xy?x=100&y=100`.
pub const SHAPES: [(usize, usize); 2] = [(8, 8), (100, 100)];

/// Seconds of each measured wrk run, full and `--quick`.
pub const SECONDS: (u64, u64) = (5, 2);
/// Seconds of the warm-up run before each measured run.
pub const WARMUP_SECONDS: u64 = 1;

/// Seconds of each measured run under these options: `--http-seconds`, or [`SECONDS`].
pub fn seconds(options: &Options) -> u64 {
    options
        .http_seconds
        .unwrap_or(if options.quick { SECONDS.1 } else { SECONDS.0 })
}

/// The Python package (on the Python package index) that provides `layer_cake`.
pub const LAYER_CAKE_PACKAGE: &str = "seven-layer-cake";

/// One server in the HTTP benchmarks.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum HttpPeer {
    /// The texture service on bare hyper + tokio: the baseline.
    Hyper,
    /// Bare hyper handing each table to a pool of 8 worker threads: the floor of a thread
    /// spool on this machine (see [`hyper_pool`]).
    HyperThreads,
    /// Bare hyper handing each table to a pool of 8 worker processes: the floor of a
    /// process spool on this machine.
    HyperProcesses,
    /// strata's `server_1`: the HTTP front and one machine answering inline.
    Server1,
    /// strata's `server_4`: the HTTP front and a spool of 8 worker threads.
    Server4,
    /// layer-cake (Python): `listen` with HTTP, an `ObjectSpool` of 8 worker threads.
    LayerCake,
    /// strata's `server_8`: the HTTP front and a spool of 8 worker processes.
    Server8,
    /// layer-cake (Python): `listen` with HTTP, an `ObjectSpool` of 8 `ProcessObject`s,
    /// each a long-lived worker process.
    LayerCakeProcesses,
    /// strata's `server_10`: the HTTP front and a spool fed by name with 8 `worker_10`
    /// processes started on their own, found through the host directory.
    Server10,
    /// layer-cake (Python): `listen` with HTTP, an `ObjectSpool(None)` fed by a
    /// subscription with 8 worker processes started on their own, each publishing its
    /// name, found through `host-cake`.
    LayerCakeNamed,
}

impl HttpPeer {
    /// Every HTTP peer, in report order.
    pub const ALL: [HttpPeer; 10] = [
        HttpPeer::Hyper,
        HttpPeer::Server1,
        HttpPeer::HyperThreads,
        HttpPeer::Server4,
        HttpPeer::LayerCake,
        HttpPeer::HyperProcesses,
        HttpPeer::Server8,
        HttpPeer::LayerCakeProcesses,
        HttpPeer::Server10,
        HttpPeer::LayerCakeNamed,
    ];

    /// The servers of the `http` benchmark (issues 4 and 5).
    pub const HTTP: [HttpPeer; 5] = [
        HttpPeer::Hyper,
        HttpPeer::Server1,
        HttpPeer::HyperThreads,
        HttpPeer::Server4,
        HttpPeer::LayerCake,
    ];

    /// The servers of the `process` benchmark (issue 6).
    pub const PROCESS: [HttpPeer; 5] = [
        HttpPeer::Hyper,
        HttpPeer::Server4,
        HttpPeer::HyperProcesses,
        HttpPeer::Server8,
        HttpPeer::LayerCakeProcesses,
    ];

    /// The servers of the `directory` benchmark's HTTP table (issue 16): workers found
    /// by name against workers started by the server, in strata and in Python.
    pub const DIRECTORY: [HttpPeer; 4] = [
        HttpPeer::Server8,
        HttpPeer::Server10,
        HttpPeer::LayerCakeProcesses,
        HttpPeer::LayerCakeNamed,
    ];

    /// The number of named workers started beside `server_10` and its Python peer.
    pub const NAMED_WORKERS: usize = 8;

    /// The name used on the command line.
    pub fn key(self) -> &'static str {
        match self {
            HttpPeer::Hyper => "hyper",
            HttpPeer::HyperThreads => "hyper-threads",
            HttpPeer::HyperProcesses => "hyper-processes",
            HttpPeer::Server1 => "server_1",
            HttpPeer::Server4 => "server_4",
            HttpPeer::LayerCake => "layer-cake",
            HttpPeer::Server8 => "server_8",
            HttpPeer::LayerCakeProcesses => "layer-cake-processes",
            HttpPeer::Server10 => "server_10",
            HttpPeer::LayerCakeNamed => "layer-cake-named",
        }
    }

    /// Parses a command-line name.
    pub fn from_key(key: &str) -> Option<HttpPeer> {
        HttpPeer::ALL.into_iter().find(|p| p.key() == key)
    }

    /// The peer's label in the table.
    pub fn label(self) -> &'static str {
        match self {
            HttpPeer::Hyper => "bare hyper + tokio (baseline)",
            HttpPeer::HyperThreads => "bare hyper + a pool of 8 worker threads (the floor)",
            HttpPeer::HyperProcesses => "bare hyper + a pool of 8 worker processes (the floor)",
            HttpPeer::Server1 => "strata `server_1` (answers inline)",
            HttpPeer::Server4 => "strata `server_4` (spool of 8 worker threads)",
            HttpPeer::LayerCake => "layer-cake `ObjectSpool` of 8 threads (Python)",
            HttpPeer::Server8 => "strata `server_8` (spool of 8 worker processes)",
            HttpPeer::LayerCakeProcesses => {
                "layer-cake `ObjectSpool` of 8 worker processes (Python)"
            }
            HttpPeer::Server10 => {
                "strata `server_10` (spool fed by name: 8 `worker_10` processes found through the host directory)"
            }
            HttpPeer::LayerCakeNamed => {
                "layer-cake `ObjectSpool` fed by name: 8 worker processes found through `host-cake` (Python)"
            }
        }
    }

    /// The request path for an x-by-y table. The same for every peer: layer-cake maps
    /// `/Xy?x=..&y=..` onto its `Xy` message as strata does.
    pub fn path(self, x: usize, y: usize) -> String {
        format!("/Xy?x={x}&y={y}")
    }

    /// The table inside a response body. layer-cake wraps any reply in its own JSON
    /// envelope, `{"value": ["vector<vector<float8>>", TABLE, []]}`; the others send the
    /// table itself.
    pub fn table_of(self, body: &[u8]) -> Result<serde_json::Value, String> {
        let value: serde_json::Value = serde_json::from_slice(body).map_err(|e| {
            format!(
                "{} answered something that is not JSON ({e}): {}",
                self.key(),
                String::from_utf8_lossy(&body[..body.len().min(200)])
            )
        })?;
        match self {
            HttpPeer::LayerCake | HttpPeer::LayerCakeProcesses | HttpPeer::LayerCakeNamed => value
                .get("value")
                .and_then(|v| v.get(1))
                .cloned()
                .ok_or_else(|| format!("not a layer-cake envelope: {value}")),
            _ => Ok(value),
        }
    }

    /// True for the peers whose failure fails the suite; a peer from another ecosystem
    /// that cannot be installed or run is reported as not measured instead.
    fn required(self) -> bool {
        !self.is_python()
    }

    /// True for the layer-cake peers.
    fn is_python(self) -> bool {
        matches!(
            self,
            HttpPeer::LayerCake | HttpPeer::LayerCakeProcesses | HttpPeer::LayerCakeNamed
        )
    }

    /// Whether a run of the load generator warms the server up before the measured run.
    /// Not layer-cake's:
    /// Python has no JIT to warm (the two checked requests load every code path), and
    /// layer-cake 1.0.10's network engine dies of an unhandled `BrokenPipeError` when a
    /// client closes its connection while a response is being written, which is how
    /// every wrk run ends; a warm-up run would often leave nothing to measure.
    fn warms_up(self) -> bool {
        !self.is_python()
    }

    /// Checks once, before the runs, that this peer can run here; says why not.
    fn available(self) -> Result<(), String> {
        match self {
            HttpPeer::Hyper | HttpPeer::HyperThreads | HttpPeer::HyperProcesses => Ok(()),
            HttpPeer::Server1 | HttpPeer::Server4 | HttpPeer::Server8 | HttpPeer::Server10 => {
                // server_8's workers are the `worker` example, found beside it;
                // server_10's are `worker_10`.
                let needed: &[&str] = match self {
                    HttpPeer::Server8 => &["server_8", "worker"],
                    HttpPeer::Server10 => &["server_10", "worker_10"],
                    _ => &[self.key()],
                };
                for name in needed {
                    let exe = examples_dir().join(name);
                    if !exe.is_file() {
                        return Err(format!(
                            "{} is missing: build it with `cargo build --release --example \
                             {name}` from the repository root (bench/run does)",
                            exe.display()
                        ));
                    }
                }
                Ok(())
            }
            HttpPeer::LayerCake | HttpPeer::LayerCakeProcesses | HttpPeer::LayerCakeNamed => {
                let python = python();
                let host_cake = python_bin("host-cake");
                if self == HttpPeer::LayerCakeNamed && !host_cake.is_file() {
                    return Err(format!(
                        "no {} in the Python environment (layer-cake's host directory)",
                        host_cake.display()
                    ));
                }
                if !python.is_file() {
                    return Err(format!(
                        "no Python environment at {}: bench/run creates it with \
                         `python3 -m venv` and installs `{LAYER_CAKE_PACKAGE}` with pip",
                        python.display()
                    ));
                }
                let out = Command::new(&python)
                    .args(["-c", "import layer_cake"])
                    .output()
                    .map_err(|e| format!("cannot run {}: {e}", python.display()))?;
                if out.status.success() {
                    Ok(())
                } else {
                    let err = String::from_utf8_lossy(&out.stderr);
                    Err(format!(
                        "`import layer_cake` fails in {}: {}",
                        python.display(),
                        err.trim().lines().last().unwrap_or("no message")
                    ))
                }
            }
        }
    }

    /// The command that runs this peer's server on `address`.
    fn command(self, address: SocketAddr) -> Result<Command, String> {
        match self {
            HttpPeer::Hyper | HttpPeer::HyperThreads | HttpPeer::HyperProcesses => {
                let exe =
                    std::env::current_exe().map_err(|e| format!("cannot find this binary: {e}"))?;
                let mut c = Command::new(exe);
                c.args(["serve-hyper", &address.to_string()]);
                match self {
                    HttpPeer::HyperThreads => c.args(["--threads", "8"]),
                    HttpPeer::HyperProcesses => c.args(["--processes", "8"]),
                    _ => &mut c,
                };
                Ok(c)
            }
            HttpPeer::Server1 | HttpPeer::Server4 | HttpPeer::Server8 | HttpPeer::Server10 => {
                let mut c = Command::new(examples_dir().join(self.key()));
                c.arg(address.to_string());
                Ok(c)
            }
            HttpPeer::LayerCake | HttpPeer::LayerCakeProcesses | HttpPeer::LayerCakeNamed => {
                let script = match self {
                    HttpPeer::LayerCake => "python/texture_spool.py",
                    HttpPeer::LayerCakeNamed => "python/named_spool/server.py",
                    _ => "python/process_spool/server.py",
                };
                let mut c = python_command(script)?;
                c.arg(format!("--port={}", address.port()));
                Ok(c)
            }
        }
    }

    /// The processes a peer needs beside its server, started around it: for the named
    /// peers, a private runtime folder or a host directory of its own, and the workers
    /// that find the server by name (see [`Beside`]).
    fn beside(self) -> Result<Beside, String> {
        match self {
            HttpPeer::Server10 => Ok(Beside::Strata(RuntimeDir::new()?)),
            HttpPeer::LayerCakeNamed => Ok(Beside::Python(server::free_port()?)),
            _ => Ok(Beside::Nothing),
        }
    }
}

/// What a peer's server needs beside it.
enum Beside {
    /// Nothing: the server starts what it needs.
    Nothing,
    /// A private `STRATA_RUNTIME_DIR` for the server and its `worker_10`s; the host
    /// directory is served by the first of them that needs it (the server), as on the
    /// teaching path.
    Strata(RuntimeDir),
    /// The port of a `host-cake` started first on 127.0.0.1, which the server and its
    /// workers are told to connect to (`--connect-to-directory`).
    Python(u16),
}

impl Beside {
    /// layer-cake's form of the host directory's address.
    fn host_port(port: u16) -> String {
        format!("{{\"host\": \"127.0.0.1\", \"port\": {port}}}")
    }

    /// Sets what `command` (the server or a worker) needs to find the others.
    fn apply(&self, command: &mut Command) {
        match self {
            Beside::Nothing => {}
            Beside::Strata(dir) => dir.apply(command),
            Beside::Python(port) => {
                command.arg(format!(
                    "--connect-to-directory={}",
                    Beside::host_port(*port)
                ));
            }
        }
    }

    /// Starts what must run before the server (layer-cake's host directory), waiting
    /// until it listens.
    fn before(&self, log: &Path) -> Result<Option<Companion>, String> {
        let Beside::Python(port) = self else {
            return Ok(None);
        };
        let mut c = Command::new(python_bin("host-cake"));
        c.arg(format!("--directory-at-host={}", Beside::host_port(*port)))
            .current_dir(python_workdir()?)
            .env("PYTHONDONTWRITEBYTECODE", "1");
        let mut host = Companion::start("host-cake", c, log)?;
        let address = SocketAddr::from((Ipv4Addr::LOCALHOST, *port));
        let started = Instant::now();
        while std::net::TcpStream::connect_timeout(&address, Duration::from_millis(200)).is_err() {
            if !host.is_running() || started.elapsed() > Duration::from_secs(30) {
                return Err(format!("host-cake did not listen on {address}"));
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        Ok(Some(host))
    }

    /// The command of one named worker, if the peer has them.
    fn worker(&self) -> Result<Option<Command>, String> {
        let mut c = match self {
            Beside::Nothing => return Ok(None),
            Beside::Strata(_) => Command::new(examples_dir().join("worker_10")),
            Beside::Python(_) => python_command("python/named_spool/worker.py")?,
        };
        self.apply(&mut c);
        Ok(Some(c))
    }
}

/// Where the Python servers run (layer-cake may write there).
fn python_workdir() -> Result<PathBuf, String> {
    let workdir = bench_dir().join("target/http");
    std::fs::create_dir_all(&workdir)
        .map_err(|e| format!("cannot create {}: {e}", workdir.display()))?;
    Ok(workdir)
}

/// The benchmark's Python running `script` (under `bench/`).
fn python_command(script: &str) -> Result<Command, String> {
    let mut c = Command::new(python());
    c.arg(bench_dir().join(script))
        .current_dir(python_workdir()?)
        .env("PYTHONDONTWRITEBYTECODE", "1");
    Ok(c)
}

/// The benchmark crate's directory.
pub fn bench_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// Where strata's release examples are: `$STRATA_BENCH_EXAMPLES`, or the repository's
/// `target/release/examples`.
pub fn examples_dir() -> PathBuf {
    std::env::var_os("STRATA_BENCH_EXAMPLES")
        .map(PathBuf::from)
        .unwrap_or_else(|| bench_dir().join("../target/release/examples"))
}

/// The Python of the virtual environment that holds layer-cake.
pub fn python() -> PathBuf {
    python_bin("python")
}

/// A program of the virtual environment that holds layer-cake (`python`, `host-cake`).
pub fn python_bin(name: &str) -> PathBuf {
    bench_dir().join("target/pyenv/bin").join(name)
}

/// One table size.
pub type Shape = (usize, usize);

/// One row's reports, one per round (`None` where the round did not run).
pub type Rounds = Vec<Option<wrk::Report>>;

/// Reports by row (`K` names the row) and round.
#[derive(Debug)]
pub struct ByRound<K> {
    /// Each row's key and its reports, rows in the order they first ran.
    pub rows: Vec<(K, Rounds)>,
}

impl<K> Default for ByRound<K> {
    fn default() -> Self {
        ByRound { rows: Vec::new() }
    }
}

impl<K: PartialEq> ByRound<K> {
    /// Keeps the report of `round` for row `key`.
    pub fn record(&mut self, key: K, round: usize, report: wrk::Report) {
        let i = match self.rows.iter().position(|(k, _)| *k == key) {
            Some(i) => i,
            None => {
                self.rows.push((key, Vec::new()));
                self.rows.len() - 1
            }
        };
        let runs = &mut self.rows[i].1;
        if runs.len() <= round {
            runs.resize(round + 1, None);
        }
        runs[round] = Some(report);
    }

    /// The reports of one row, round by round.
    pub fn rounds(&self, key: &K) -> &[Option<wrk::Report>] {
        self.rows
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_slice())
            .unwrap_or(&[])
    }
}

/// Every wrk report of a suite run, by peer, size and round.
#[derive(Debug, Default)]
pub struct Samples {
    /// The reports by `(peer, shape)` and round.
    pub series: ByRound<(HttpPeer, Shape)>,
    /// The peers that could not be measured at all, and why.
    pub missing: Vec<(HttpPeer, String)>,
    /// Runs that failed (of peers whose failure does not fail the suite), and why.
    pub failures: Vec<(HttpPeer, Shape, usize, String)>,
}

impl Samples {
    fn record(&mut self, peer: HttpPeer, shape: Shape, round: usize, report: wrk::Report) {
        self.series.record((peer, shape), round, report);
    }

    /// The reports of one row, round by round.
    pub fn rounds(&self, peer: HttpPeer, shape: Shape) -> &[Option<wrk::Report>] {
        self.series.rounds(&(peer, shape))
    }

    /// Why `peer` was not measured, if it was not.
    pub fn missing_reason(&self, peer: HttpPeer) -> Option<&str> {
        self.missing
            .iter()
            .find(|(p, _)| *p == peer)
            .map(|(_, r)| r.as_str())
    }
}

/// Starts `peer`'s server on a free loopback port, with `env` set for it, and what it
/// needs beside it (a named peer's workers, found by name); waits until it answers
/// `GET /Xy?x=2&y=2` and, for a named peer, until its spool holds every worker. Gives the
/// server, the number of named workers started beside it and the first answer's body.
/// Its logs go to `bench/target/http/logs/<peer>-<tag>*.log`.
pub fn launch(
    peer: HttpPeer,
    tag: &str,
    env: &[(&str, &str)],
) -> Result<(Server, usize, Vec<u8>), String> {
    launch_over(peer, tag, env, false).map(|(server, workers, ready, _)| (server, workers, ready))
}

/// [`launch`], with a TLS listener beside the plain one when `tls` (only the bare hyper
/// server has one: `serve-hyper --tls`, with the certificates of [`tls::certificates`];
/// the harness's checks still use the plain listener, the loader the TLS one, whose port
/// comes last).
fn launch_over(
    peer: HttpPeer,
    tag: &str,
    env: &[(&str, &str)],
    tls: bool,
) -> Result<(Server, usize, Vec<u8>, Option<u16>), String> {
    let port = server::free_port()?;
    let address = SocketAddr::from((Ipv4Addr::LOCALHOST, port));
    let mut command = peer.command(address)?;
    command.envs(env.iter().copied());
    let mut tls_port = None;
    if tls {
        if peer != HttpPeer::Hyper {
            return Err(format!("{} has no TLS listener", peer.key()));
        }
        let mut other = server::free_port()?;
        if other == port {
            other = server::free_port()?;
        }
        command.args([
            "--tls".to_string(),
            other.to_string(),
            tls::dir().display().to_string(),
        ]);
        tls_port = Some(other);
    }
    let log_of = |what: &str| {
        bench_dir().join(format!(
            "target/http/logs/{}{}-{tag}{what}.log",
            peer.key(),
            if tls { "-tls" } else { "" },
        ))
    };
    let log = log_of("");
    let beside = peer.beside()?;
    let first = beside.before(&log_of("-host-cake"))?;
    beside.apply(&mut command);
    let mut server = Server::start(peer.label(), command, address, &log)?;
    if let Some(host) = first {
        server.adopt(host);
    }
    let mut workers = 0;
    if beside.worker()?.is_some() {
        // The workers are started on their own once the server listens, as on the
        // teaching path, and find it by name.
        server.wait_for_output("listening on")?;
        for i in 1..=HttpPeer::NAMED_WORKERS {
            let c = beside.worker()?.expect("a named peer");
            let name = format!("{} worker {i}", peer.key());
            server.adopt(Companion::start(&name, c, &log_of(&format!("-worker{i}")))?);
            workers += 1;
        }
    }
    server.keep(Box::new(beside));

    let ready = server.wait_until_ready(&peer.path(2, 2))?;
    if workers > 0 {
        wait_for_workers(peer, &mut server, workers)?;
    }
    Ok((server, workers, ready, tls_port))
}

/// The command of one more named worker for `server` (a named peer's), or `None` for the
/// other peers: for the reliability benchmark's soak, which kills and restarts them.
pub fn named_worker(peer: HttpPeer, server: &Server) -> Result<Option<Command>, String> {
    match peer {
        HttpPeer::Server10 => {
            let dir = server
                .kept::<Beside>()
                .ok_or("server_10 was started without its runtime folder")?;
            dir.worker()
        }
        _ => Ok(None),
    }
}

/// Measures one row once with `loader`: a fresh server, a readiness check, a check of the
/// asked table, a warm-up run of the loader, the measured run, and the server stopped.
fn measure(
    peer: HttpPeer,
    shape: Shape,
    round: usize,
    seconds: u64,
    loader: Loader,
) -> Result<wrk::Report, String> {
    measure_over(peer, shape, round, seconds, loader, false)
}

/// [`measure`], over HTTPS when `tls` (see [`launch_over`]).
fn measure_over(
    peer: HttpPeer,
    shape: Shape,
    round: usize,
    seconds: u64,
    loader: Loader,
    tls: bool,
) -> Result<wrk::Report, String> {
    let tag = format!(
        "{}x{}-{}-round{}",
        shape.0,
        shape.1,
        loader.key(),
        round + 1
    );
    let (mut server, workers, ready, tls_port) = launch_over(peer, &tag, &[], tls)?;
    let address = server.address;
    server::check_table(&peer.table_of(&ready)?, 2, 2)
        .map_err(|e| format!("{}: a bad 2x2 table: {e}", peer.key()))?;
    let (x, y) = shape;
    let path = peer.path(x, y);
    let (status, body) = server::get(address, &path)?;
    if status != 200 {
        return Err(format!(
            "{} answered GET {path} with {status}: {}",
            peer.key(),
            String::from_utf8_lossy(&body)
        ));
    }
    server::check_table(&peer.table_of(&body)?, x, y)
        .map_err(|e| format!("{}: a bad {x}x{y} table: {e}", peer.key()))?;

    let url = match tls_port {
        Some(p) => format!("https://127.0.0.1:{p}{path}"),
        None => format!("http://{address}{path}"),
    };
    if peer.warms_up() {
        loader.run(&url, WARMUP_SECONDS)?;
        if !server.is_running() {
            return Err(format!(
                "{} ended during the warm-up; its output:\n{}",
                peer.key(),
                server.log_tail()
            ));
        }
    }
    let cpu_before = server.cpu_time();
    let mut report = loader.run(&url, seconds)?;
    report.server_cpu = match (cpu_before, server.cpu_time()) {
        (Some(a), Some(b)) => Some(b.saturating_sub(a)),
        _ => None,
    };
    if !server.is_running() {
        // Ending while the loader ran shows in its socket errors; ending without any is
        // ending as the loader closed its connections, after the measured span.
        if report.socket_errors > 0 || report.requests == 0 {
            return Err(format!(
                "{} ended during the measurement; its output:\n{}",
                peer.key(),
                server.log_tail()
            ));
        }
        report.server_ended = true;
    }
    if workers > 0 && server.companions_running() < workers {
        let message = format!(
            "{}: a worker ended during the measurement ({} of {workers} running)",
            peer.key(),
            server.companions_running()
        );
        if peer.required() {
            return Err(message);
        }
        report.server_ended = true;
        eprintln!("{message}");
    }
    if report.good_per_second() == 0.0 {
        return Err(format!(
            "{} answered no request in {seconds} s ({} non-2xx responses, {} socket errors); \
             its output:\n{}",
            peer.key(),
            report.non_2xx,
            report.socket_errors,
            server.log_tail()
        ));
    }
    server.stop();
    Ok(report)
}

/// Waits (at most 30 s) until the spool of a named peer holds `workers` workers: for
/// `server_10`, as its `GET /SpoolStats` says; for the Python server, as it prints.
fn wait_for_workers(peer: HttpPeer, server: &mut Server, workers: usize) -> Result<(), String> {
    let started = Instant::now();
    let mut last = String::from("nothing yet");
    while started.elapsed() < Duration::from_secs(30) {
        if !server.is_running() {
            return Err(format!(
                "{} ended while its workers joined; its output:\n{}",
                peer.key(),
                server.log_tail()
            ));
        }
        let joined = if peer.is_python() {
            let text = server.log_text();
            last = text
                .lines()
                .rev()
                .find(|l| l.starts_with("workers "))
                .unwrap_or("")
                .to_string();
            last.strip_prefix("workers ")
                .and_then(|n| n.trim().parse::<usize>().ok())
        } else {
            match server::get(server.address, "/SpoolStats") {
                Ok((200, body)) => {
                    last = String::from_utf8_lossy(&body).to_string();
                    serde_json::from_slice::<serde_json::Value>(&body)
                        .ok()
                        .and_then(|v| v.get("workers")?.as_u64())
                        .map(|n| n as usize)
                }
                Ok((status, _)) => {
                    last = format!("status {status}");
                    None
                }
                Err(e) => {
                    last = e;
                    None
                }
            }
        };
        if joined == Some(workers) {
            return Ok(());
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    Err(format!(
        "{}: its spool did not hold {workers} named workers within 30 s ({last}); its output:\n{}",
        peer.key(),
        server.log_tail()
    ))
}

/// Python's and layer-cake's versions, from the benchmark's virtual environment.
fn python_versions() -> String {
    let python = python();
    let run = |args: &[&str]| {
        Command::new(&python)
            .args(args)
            .output()
            .ok()
            .filter(|o| o.status.success())
            .map(|o| {
                format!(
                    "{}{}",
                    String::from_utf8_lossy(&o.stdout),
                    String::from_utf8_lossy(&o.stderr)
                )
                .trim()
                .to_string()
            })
    };
    let python_version = run(&["--version"]).unwrap_or_else(|| "Python ?".to_string());
    let code = format!("import importlib.metadata as m; print(m.version('{LAYER_CAKE_PACKAGE}'))");
    let cake = run(&["-c", &code]).unwrap_or_else(|| "?".to_string());
    format!("{python_version}, {LAYER_CAKE_PACKAGE} {cake}")
}

/// Runs the HTTP benchmarks (`http`, `process` or both), prints their tables and
/// rewrites them in the README.
pub fn run(options: &Options) -> Result<(), String> {
    let began = Instant::now();
    let load_at_start = report::load_average();
    let seconds = seconds(options);
    let chosen = chosen_peers(options);
    let mut samples = Samples::default();
    let mut plan: Vec<(HttpPeer, Shape)> = Vec::new();
    for shape in SHAPES {
        for peer in HttpPeer::ALL {
            if chosen.contains(&peer) {
                plan.push((peer, shape));
            }
        }
    }
    // A peer that cannot be set up here is either fatal or reported as not measured.
    for peer in HttpPeer::ALL {
        if !chosen.contains(&peer) {
            continue;
        }
        if let Err(reason) = peer.available() {
            if peer.required() {
                return Err(reason);
            }
            eprintln!("[http] {} is not measured: {reason}", peer.key());
            samples.missing.push((peer, reason));
        }
    }
    for round in 0..options.runs {
        let order: Vec<(HttpPeer, Shape)> = if round % 2 == 0 {
            plan.clone()
        } else {
            plan.iter().rev().copied().collect()
        };
        for (peer, shape) in order {
            if samples.missing_reason(peer).is_some() {
                continue;
            }
            match measure(peer, shape, round, seconds, Loader::Wrk) {
                Ok(report) => {
                    eprintln!(
                        "[run {}/{}] http {:<10} {:>3}x{:<3} {:>10.0} req/s  non-2xx {}  \
                         socket errors {}  p99 {}  server CPU/request {}",
                        round + 1,
                        options.runs,
                        peer.key(),
                        shape.0,
                        shape.1,
                        report.good_per_second(),
                        report.non_2xx,
                        report.socket_errors,
                        report
                            .p99
                            .map(table::format_latency)
                            .unwrap_or_else(|| "?".to_string()),
                        report
                            .cpu_per_request()
                            .map(table::format_latency)
                            .unwrap_or_else(|| "?".to_string()),
                    );
                    samples.record(peer, shape, round, report);
                }
                Err(e) if !peer.required() => {
                    eprintln!(
                        "[run {}/{}] http {} {}x{} failed: {e}",
                        round + 1,
                        options.runs,
                        peer.key(),
                        shape.0,
                        shape.1
                    );
                    samples.failures.push((peer, shape, round, e));
                }
                Err(e) => return Err(e),
            }
        }
    }
    let notes = table::Notes {
        machine: report::Machine::detect(began.elapsed(), options, load_at_start),
        wrk: wrk::version().unwrap_or_else(|| "wrk ?".to_string()),
        python: python_versions(),
        seconds,
    };
    table::save_samples(&samples, &notes);
    if options.http {
        let text = table::table(&samples, &notes, &chosen);
        println!("{text}");
        if let Some(path) = &options.readme {
            report::rewrite_between(path, BEGIN, END, &text)?;
            eprintln!("HTTP results table rewritten in {}", path.display());
        }
    }
    if options.process {
        let text = table::process_table(&samples, &notes, &chosen);
        println!("{text}");
        if let Some(path) = &options.readme {
            report::rewrite_between(path, PROCESS_BEGIN, PROCESS_END, &text)?;
            eprintln!(
                "process spool results table rewritten in {}",
                path.display()
            );
        }
    }
    if options.directory {
        let text = table::named_table(&samples, &notes, &chosen);
        println!("{text}");
        if let Some(path) = &options.readme {
            report::rewrite_between(path, NAMED_BEGIN, NAMED_END, &text)?;
            eprintln!(
                "named workers results table rewritten in {}",
                path.display()
            );
        }
    }
    Ok(())
}

/// The servers to measure: those of the chosen benchmarks (`http`, `process`,
/// `directory`, each server once), less any left out with `--peer`.
pub fn chosen_peers(options: &Options) -> Vec<HttpPeer> {
    HttpPeer::ALL
        .into_iter()
        .filter(|p| {
            (options.http && HttpPeer::HTTP.contains(p))
                || (options.process && HttpPeer::PROCESS.contains(p))
                || (options.directory && HttpPeer::DIRECTORY.contains(p))
        })
        .filter(|p| options.http_peers.contains(p))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn layer_cake_envelopes_are_opened() {
        let body = br#"{"value":["vector<vector<float8>>",[[0.1,0.2],[0.3,0.4]],[]]}"#;
        let table = HttpPeer::LayerCake.table_of(body).unwrap();
        assert!(server::check_table(&table, 2, 2).is_ok());
        let plain = HttpPeer::Server1.table_of(b"[[0.5]]").unwrap();
        assert!(server::check_table(&plain, 1, 1).is_ok());
        assert!(HttpPeer::Hyper.table_of(b"not json").is_err());
    }

    #[test]
    fn rounds_are_kept_in_place() {
        let mut s = Samples::default();
        let r = wrk::Report {
            requests: 10,
            elapsed: Duration::from_secs(1),
            ..Default::default()
        };
        s.record(HttpPeer::Hyper, (8, 8), 1, r.clone());
        assert_eq!(s.rounds(HttpPeer::Hyper, (8, 8)), &[None, Some(r)]);
        assert!(s.rounds(HttpPeer::Server1, (8, 8)).is_empty());
    }

    #[test]
    fn the_hyper_server_answers_tables_and_stops() {
        // The bare hyper peer, run the way the suite runs it, from the test binary's
        // sibling: only when the harness binary has been built next to the tests.
        let Some(exe) = std::env::current_exe()
            .ok()
            .and_then(|t| Some(t.parent()?.parent()?.join("strata-bench")))
            .filter(|p| p.is_file())
        else {
            return;
        };
        let port = server::free_port().unwrap();
        let address = SocketAddr::from((Ipv4Addr::LOCALHOST, port));
        let mut command = Command::new(exe);
        command.args(["serve-hyper", &address.to_string()]);
        let log = std::env::temp_dir().join(format!("strata-bench-hyper-{port}.log"));
        let mut server = Server::start("hyper", command, address, &log).unwrap();
        let body = server.wait_until_ready("/Xy?x=3&y=2").unwrap();
        let table = HttpPeer::Hyper.table_of(&body).unwrap();
        server::check_table(&table, 3, 2).unwrap();
        let (status, _) = server::get(address, "/Xy?x=3").unwrap();
        assert_eq!(status, 400);
        let (status, _) = server::get(address, "/Nope").unwrap();
        assert_eq!(status, 404);
        server.stop();
        assert!(!server.is_running());
        let _ = std::fs::remove_file(log);
    }
}
