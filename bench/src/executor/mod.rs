//! The executor benchmark (`--bench executor`, issue 19): strata's executor against
//! `rayon::spawn`, the `threadpool` crate, `tokio::task::spawn_blocking` and the Python
//! system's pools (`concurrent.futures.ThreadPoolExecutor`, `futurist.ThreadPoolExecutor`)
//! on empty jobs and on jobs of 10 µs; strata's executor of worker processes against
//! Python's `ProcessPoolExecutor`; and the start-time error of a 10 ms periodic job,
//! strata's `Periodic` against futurist's `PeriodicWorker`.
//!
//! Every sample is a fresh process: `strata-bench executor-measure ROW PEER N WORKERS`
//! for the Rust peers (`measure.rs`), `python/executor_jobs.py ROW PEER N WORKERS` in the
//! bench's virtual environment for the Python ones. Every pool has as many workers as
//! this process may use CPUs. Runs are interleaved (run 1 of every row and peer, then
//! run 2, every other run in reverse order); each ratio is taken within a run and the
//! median over runs reported.

pub mod jobs;
pub mod measure;

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::io::Read;
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use crate::http;
use crate::report::{self, crate_versions, median};
use crate::suite::{self, Options};
use crate::workload::group_digits;

/// The marker line after which the README's executor table starts.
pub const BEGIN: &str = "<!-- executor-results:begin -->";
/// The marker line before which the README's executor table ends.
pub const END: &str = "<!-- executor-results:end -->";

/// How long the CPU-holding job of the `spin` row runs.
pub const SPIN: Duration = Duration::from_micros(10);
/// The spacing of the periodic job.
pub const PERIOD: Duration = Duration::from_millis(10);

/// The Python package of the futurist peers, pinned so that runs compare (`bench/run`
/// installs it from PyPI into the bench's virtual environment).
pub const FUTURIST_PACKAGE: &str = "futurist";

/// A child measurement that takes longer than this fails (a Python row: is left out).
const CHILD_TIMEOUT: Duration = Duration::from_secs(900);

/// Goals of issue 19.
const GOAL_VS_RAYON: f64 = 0.5;
const GOAL_VS_FUTURIST: f64 = 50.0;
const GOAL_VS_PROCESS_POOL: f64 = 20.0;
const GOAL_PERIODIC_P99_NS: i64 = 1_000_000;

/// One row of the benchmark.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Row {
    /// Empty jobs on threads.
    Empty,
    /// Jobs of 10 µs on threads.
    Spin,
    /// Empty jobs on worker processes.
    Processes,
    /// A 10 ms periodic job.
    Periodic,
}

impl Row {
    const ALL: [Row; 4] = [Row::Empty, Row::Spin, Row::Processes, Row::Periodic];

    pub fn key(self) -> &'static str {
        match self {
            Row::Empty => "empty",
            Row::Spin => "spin",
            Row::Processes => "processes",
            Row::Periodic => "periodic",
        }
    }

    pub fn from_key(key: &str) -> Option<Row> {
        Row::ALL.into_iter().find(|r| r.key() == key)
    }

    /// N: jobs per measured pass, or seconds of the periodic schedule.
    fn size(self, quick: bool) -> u64 {
        let full = match self {
            Row::Empty => 1_000_000,
            Row::Spin | Row::Processes => 100_000,
            Row::Periodic => 60,
        };
        if quick {
            full / 10
        } else {
            full
        }
    }

    /// The peers of the row, its baseline first.
    fn peers(self) -> &'static [Peer] {
        match self {
            Row::Empty | Row::Spin => &[
                Peer::Rayon,
                Peer::Strata,
                Peer::Threadpool,
                Peer::Tokio,
                Peer::CfThreads,
                Peer::Futurist,
            ],
            Row::Processes => &[Peer::CfProcesses, Peer::StrataProcesses],
            Row::Periodic => &[Peer::FuturistPeriodics, Peer::Strata],
        }
    }

    fn title(self, n: u64) -> String {
        match self {
            Row::Empty => format!("**{} empty jobs**, threads", group_digits(n)),
            Row::Spin => format!(
                "**{} jobs of {} µs** (a spin on the clock), threads",
                group_digits(n),
                SPIN.as_micros()
            ),
            Row::Processes => format!("**{} empty jobs**, worker processes", group_digits(n)),
            Row::Periodic => format!("a job every {} ms for {n} s", PERIOD.as_millis()),
        }
    }
}

/// One pool measured.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Peer {
    Rayon,
    Strata,
    Threadpool,
    Tokio,
    CfThreads,
    Futurist,
    CfProcesses,
    StrataProcesses,
    FuturistPeriodics,
}

impl Peer {
    const ALL: [Peer; 9] = [
        Peer::Rayon,
        Peer::Strata,
        Peer::Threadpool,
        Peer::Tokio,
        Peer::CfThreads,
        Peer::Futurist,
        Peer::CfProcesses,
        Peer::StrataProcesses,
        Peer::FuturistPeriodics,
    ];

    pub fn key(self) -> &'static str {
        match self {
            Peer::Rayon => "rayon",
            Peer::Strata => "strata",
            Peer::Threadpool => "threadpool",
            Peer::Tokio => "tokio",
            Peer::CfThreads => "cf-threads",
            Peer::Futurist => "futurist",
            Peer::CfProcesses => "cf-processes",
            Peer::StrataProcesses => "strata-processes",
            Peer::FuturistPeriodics => "futurist-periodics",
        }
    }

    pub fn from_key(key: &str) -> Option<Peer> {
        Peer::ALL.into_iter().find(|p| p.key() == key)
    }

    fn is_python(self) -> bool {
        matches!(
            self,
            Peer::CfThreads | Peer::Futurist | Peer::CfProcesses | Peer::FuturistPeriodics
        )
    }

    fn is_strata(self) -> bool {
        matches!(self, Peer::Strata | Peer::StrataProcesses)
    }

    fn label(self, row: Row) -> &'static str {
        match (self, row) {
            (Peer::Rayon, _) => "`rayon::spawn` (baseline)",
            (Peer::Strata, Row::Periodic) => "strata `Periodic` (its own executor of threads)",
            (Peer::Strata, _) => "strata `Executor::threads()`, `submit_fn`",
            (Peer::Threadpool, _) => "`threadpool::ThreadPool::execute`",
            (Peer::Tokio, _) => "`tokio::task::spawn_blocking`",
            (Peer::CfThreads, _) => "Python `concurrent.futures.ThreadPoolExecutor`",
            (Peer::Futurist, _) => "Python `futurist.ThreadPoolExecutor`",
            (Peer::CfProcesses, _) => "Python `concurrent.futures.ProcessPoolExecutor` (baseline)",
            (Peer::StrataProcesses, _) => {
                "strata `Executor::processes(..)`, `submit` of a job type"
            }
            (Peer::FuturistPeriodics, _) => {
                "Python `futurist.periodics.PeriodicWorker` (its defaults)"
            }
        }
    }
}

/// One run of the periodic row: each run's start, and for strata its end, in ns after
/// the clock read just before the schedule was made.
#[derive(Debug, Clone)]
struct Starts {
    starts: Vec<u64>,
    ends: Option<Vec<u64>>,
}

impl Starts {
    /// Each run's start less the time its own scheduler placed it at, in ns (positive is
    /// late). The first is due one period after t0. strata's next run is due one period
    /// after the last was due, or at the last one's end if that is later (a run never
    /// overlaps itself: after a run later than a whole period, its schedule starts anew
    /// from that end); futurist's is due one period after the last one's start.
    fn lateness(&self) -> Vec<i64> {
        let period = PERIOD.as_nanos() as i64;
        let mut due = period;
        let mut out = Vec::with_capacity(self.starts.len());
        for (k, &start) in self.starts.iter().enumerate() {
            let start = start as i64;
            out.push(start - due);
            due = match &self.ends {
                Some(ends) => (due + period).max(ends.get(k).map_or(0, |&e| e as i64)),
                None => start + period,
            };
        }
        out
    }
}

/// Every figure of a suite run.
#[derive(Debug, Default)]
struct Samples {
    /// Jobs per second, by row and peer, with the run each came from.
    rates: BTreeMap<(Row, Peer), Vec<(usize, f64)>>,
    /// Each run of the periodic row.
    starts: BTreeMap<Peer, Vec<Starts>>,
    /// Why the Python peers were not measured, if they were not.
    no_python: Option<String>,
    /// Python runs that failed: row, peer, run, why.
    failures: Vec<(Row, Peer, usize, String)>,
}

/// The bench's virtual environment's Python.
fn python() -> PathBuf {
    http::python()
}

/// Whether the Python peers can run: the environment and `import futurist`.
fn python_available() -> Result<(), String> {
    let python = python();
    if !python.is_file() {
        return Err(format!(
            "no {} (bench/run creates the environment with `python3 -m venv` and installs \
             `{FUTURIST_PACKAGE}` with pip)",
            python.display()
        ));
    }
    let out = Command::new(&python)
        .args(["-c", "import futurist"])
        .output()
        .map_err(|e| format!("cannot run {}: {e}", python.display()))?;
    if out.status.success() {
        Ok(())
    } else {
        Err(format!(
            "`import futurist` fails: {}",
            String::from_utf8_lossy(&out.stderr)
                .trim()
                .lines()
                .last()
                .unwrap_or("no message")
        ))
    }
}

/// The Python and futurist versions, for the notes.
fn python_versions() -> String {
    let code = format!(
        "import sys, importlib.metadata as m; \
         print('Python', sys.version.split()[0] + ',', '{FUTURIST_PACKAGE}', m.version('{FUTURIST_PACKAGE}'))"
    );
    Command::new(python())
        .args(["-c", &code])
        .output()
        .ok()
        .filter(|o| o.status.success())
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
        .unwrap_or_else(|| "Python ?".to_string())
}

/// Runs one sample in a fresh process and gives what it printed.
fn sample(row: Row, peer: Peer, n: u64, workers: usize) -> Result<String, String> {
    let args = [
        row.key().to_string(),
        peer.key().to_string(),
        n.to_string(),
        workers.to_string(),
    ];
    let mut command = if peer.is_python() {
        let mut c = Command::new(python());
        c.arg(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/python/executor_jobs.py"
        ))
        .env("PYTHONDONTWRITEBYTECODE", "1");
        c
    } else {
        let exe = std::env::current_exe().map_err(|e| format!("cannot find this binary: {e}"))?;
        let mut c = Command::new(exe);
        c.arg("executor-measure");
        c
    };
    command.args(&args);
    let what = format!("executor {} {} {n}", row.key(), peer.key());
    let mut child = command
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| format!("cannot start `{what}`: {e}"))?;
    // Read while the child runs: a periodic row's list of starts is larger than a pipe
    // holds, and a child blocked writing it would never end.
    let stdout = read_all(child.stdout.take());
    let stderr = read_all(child.stderr.take());
    let status = suite::finish(child, CHILD_TIMEOUT, &format!("`{what}`"))?
        .output
        .status;
    let (stdout, stderr) = (stdout.join(), stderr.join());
    let text = |r: std::thread::Result<Vec<u8>>| {
        String::from_utf8_lossy(&r.unwrap_or_default()).into_owned()
    };
    if !status.success() {
        return Err(format!(
            "`{what}` failed ({status}): {}",
            text(stderr).trim()
        ));
    }
    Ok(text(stdout))
}

/// Reads `from` to its end on a thread of its own.
fn read_all<R: Read + Send + 'static>(from: Option<R>) -> std::thread::JoinHandle<Vec<u8>> {
    std::thread::spawn(move || {
        let mut bytes = Vec::new();
        if let Some(mut from) = from {
            let _ = from.read_to_end(&mut bytes);
        }
        bytes
    })
}

/// The value after `prefix` on a line of `out`.
fn field<'a>(out: &'a str, prefix: &str) -> Option<&'a str> {
    out.lines()
        .find_map(|l| l.strip_prefix(prefix))
        .map(str::trim)
}

/// Parses a `STARTS` list.
fn parse_starts(text: &str) -> Option<Vec<u64>> {
    if text.is_empty() {
        return Some(Vec::new());
    }
    text.split(',').map(|s| s.parse().ok()).collect()
}

/// One sample, recorded.
fn measure_one(
    samples: &mut Samples,
    row: Row,
    peer: Peer,
    n: u64,
    workers: usize,
    run: usize,
    runs: usize,
) -> Result<(), String> {
    let got = sample(row, peer, n, workers).and_then(|out| {
        if row == Row::Periodic {
            let starts = field(&out, "STARTS ")
                .and_then(parse_starts)
                .ok_or_else(|| format!("printed no STARTS: {out:?}"))?;
            let ends = match field(&out, "ENDS ") {
                Some(text) => Some(
                    parse_starts(text)
                        .filter(|e| e.len() == starts.len())
                        .ok_or_else(|| format!("printed bad ENDS: {out:?}"))?,
                ),
                None => None,
            };
            if starts.is_empty() {
                return Err("the periodic job never ran".to_string());
            }
            let runs_of = Starts { starts, ends };
            let late = runs_of.lateness();
            let grid = grid_errors(&runs_of.starts);
            eprintln!(
                "[run {}/{runs}] executor {:<9} {:<18} {} runs, start error p50 {} p99 {} \
                 max {}; against the grid p99 {} max {}",
                run + 1,
                row.key(),
                peer.key(),
                runs_of.starts.len(),
                format_signed(quantile(&late, 0.5)),
                format_signed(quantile(&late, 0.99)),
                format_signed(quantile(&late, 1.0)),
                format_signed(quantile(&grid, 0.99)),
                format_signed(quantile(&grid, 1.0)),
            );
            samples.starts.entry(peer).or_default().push(runs_of);
        } else {
            let ns: u64 = field(&out, "RESULT ")
                .and_then(|v| v.parse().ok())
                .ok_or_else(|| format!("printed no RESULT: {out:?}"))?;
            let rate = n as f64 / (ns as f64 / 1e9);
            eprintln!(
                "[run {}/{runs}] executor {:<9} {:<18} {}",
                run + 1,
                row.key(),
                peer.key(),
                report::format_rate(rate, "jobs/s")
            );
            samples
                .rates
                .entry((row, peer))
                .or_default()
                .push((run, rate));
        }
        Ok(())
    });
    match got {
        Ok(()) => Ok(()),
        Err(e) if peer.is_python() => {
            eprintln!(
                "[run {}/{runs}] executor {} {} failed: {e}",
                run + 1,
                row.key(),
                peer.key()
            );
            samples.failures.push((row, peer, run, e));
            Ok(())
        }
        Err(e) => Err(e),
    }
}

/// Runs the executor benchmark, prints its table and rewrites it in the README.
pub fn run(options: &Options) -> Result<(), String> {
    let began = Instant::now();
    let load_at_start = report::load_average();
    let workers = std::thread::available_parallelism().map_or(2, |n| n.get());
    let mut samples = Samples::default();
    if let Err(why) = python_available() {
        eprintln!("[executor] the Python peers are not measured: {why}");
        samples.no_python = Some(why);
    }
    let plan: Vec<(Row, Peer)> = Row::ALL
        .into_iter()
        .flat_map(|r| r.peers().iter().map(move |&p| (r, p)))
        .filter(|(_, p)| !(p.is_python() && samples.no_python.is_some()))
        .collect();
    for run in 0..options.runs {
        let mut order = plan.clone();
        if run % 2 == 1 {
            order.reverse();
        }
        for (row, peer) in order {
            let n = row.size(options.quick);
            measure_one(&mut samples, row, peer, n, workers, run, options.runs)?;
        }
    }
    let mut machine = report::Machine::detect(began.elapsed(), options, load_at_start);
    machine.versions = format!(
        "{}; {}",
        crate_versions(&["strata", "rayon", "threadpool", "tokio"]),
        python_versions()
    );
    let text = table(&samples, &machine, options.quick, workers);
    println!("{text}");
    save_samples(&samples, &machine);
    if let Some(path) = &options.readme {
        report::rewrite_between(path, BEGIN, END, &text)?;
        eprintln!("executor results table rewritten in {}", path.display());
    }
    Ok(())
}

/// Each run's start less its due time on the grid the user asked for, the k-th run (from
/// 0) being due `(k + 1) × PERIOD` after the clock read before the schedule was made.
/// Nanoseconds; positive is late.
fn grid_errors(starts: &[u64]) -> Vec<i64> {
    let period = PERIOD.as_nanos() as i64;
    starts
        .iter()
        .enumerate()
        .map(|(k, &s)| s as i64 - (k as i64 + 1) * period)
        .collect()
}

/// The `p`-th quantile (0 < p ≤ 1) of `v` by nearest rank; `v` need not be sorted.
fn quantile(v: &[i64], p: f64) -> Option<i64> {
    if v.is_empty() {
        return None;
    }
    let mut s = v.to_vec();
    s.sort_unstable();
    let rank = ((p * s.len() as f64).ceil() as usize).clamp(1, s.len());
    Some(s[rank - 1])
}

/// A signed span: `-12 µs`, `412 µs`, `3.12 ms`, `2.41 s`.
fn format_signed(ns: Option<i64>) -> String {
    let Some(ns) = ns else {
        return "?".to_string();
    };
    let sign = if ns < 0 { "-" } else { "" };
    let a = ns.unsigned_abs() as f64;
    if a < 1e6 {
        format!("{sign}{:.0} µs", a / 1e3)
    } else if a < 1e8 {
        format!("{sign}{:.2} ms", a / 1e6)
    } else if a < 1e9 {
        format!("{sign}{:.0} ms", a / 1e6)
    } else {
        format!("{sign}{:.2} s", a / 1e9)
    }
}

/// The time one job takes at `rate` jobs/s: `412 ns`, `3.1 µs`.
fn per_job(rate: f64) -> String {
    let ns = 1e9 / rate;
    if ns < 1e4 {
        format!("{ns:.0} ns")
    } else {
        format!("{:.1} µs", ns / 1e3)
    }
}

impl Samples {
    fn rates(&self, row: Row, peer: Peer) -> Option<&[(usize, f64)]> {
        self.rates.get(&(row, peer)).map(Vec::as_slice)
    }

    /// The median over runs of `peer`'s rate over `base`'s in the same run.
    fn ratio(&self, row: Row, peer: Peer, base: Peer) -> Option<f64> {
        let (p, b) = (self.rates(row, peer)?, self.rates(row, base)?);
        let per_run: Vec<f64> = p
            .iter()
            .filter_map(|&(run, rate)| {
                b.iter()
                    .find(|&&(r, _)| r == run)
                    .map(|&(_, base)| rate / base)
            })
            .collect();
        (!per_run.is_empty()).then(|| median(&per_run))
    }

    fn why_missing(&self, row: Row, peer: Peer) -> String {
        if peer.is_python() {
            if let Some(why) = &self.no_python {
                return why.clone();
            }
        }
        self.failures
            .iter()
            .find(|(r, p, ..)| *r == row && *p == peer)
            .map(|(.., why)| why.clone())
            .unwrap_or_else(|| "not run".to_string())
    }
}

/// A goal line: the ratio against the goal, met or not.
fn goal_line(what: &str, ratio: Option<f64>, goal: f64) -> String {
    match ratio {
        Some(r) => format!(
            "* {what}: **{}** (goal {}): {}\n",
            format_ratio(r),
            format_ratio(goal),
            if r >= goal { "met" } else { "**not met**" }
        ),
        None => format!("* {what}: not measured (goal {})\n", format_ratio(goal)),
    }
}

fn format_ratio(r: f64) -> String {
    if r >= 10.0 {
        format!("{r:.0}×")
    } else {
        format!("{r:.2}×")
    }
}

/// The Markdown tables with their notes.
fn table(samples: &Samples, machine: &report::Machine, quick: bool, workers: usize) -> String {
    let mut out = report::notes(
        machine,
        &format!("each in a fresh process, every pool with {workers} workers"),
        "The executor benchmark",
    );
    out.push_str("| row | peer | median | worst | best | per job (median) | × baseline |\n");
    out.push_str("|---|---|--:|--:|--:|--:|--:|\n");
    for row in [Row::Empty, Row::Spin, Row::Processes] {
        let base = row.peers()[0];
        for (i, &peer) in row.peers().iter().enumerate() {
            let title = if i == 0 {
                row.title(row.size(quick))
            } else {
                String::new()
            };
            let Some(rates) = samples.rates(row, peer) else {
                let _ = writeln!(
                    out,
                    "| {title} | {} | not measured: {} | | | | |",
                    peer.label(row),
                    http::one_line(&samples.why_missing(row, peer))
                );
                continue;
            };
            let figures: Vec<f64> = rates.iter().map(|&(_, r)| r).collect();
            let (m, worst, best) = report::spread(&figures, true);
            let ratio = samples
                .ratio(row, peer, base)
                .map_or_else(|| "–".to_string(), format_ratio);
            let _ = writeln!(
                out,
                "| {title} | {} | {} | {} | {} | {} | {ratio} |",
                peer.label(row),
                report::format_rate(m, "jobs/s"),
                report::format_rate(worst, "jobs/s"),
                report::format_rate(best, "jobs/s"),
                per_job(m),
            );
        }
    }

    let _ = write!(
        out,
        "\n**Periodic: {}** (start error: each run's start less the time its own \
         scheduler placed it at; against the grid: less (k + 1) × {} ms after the job was \
         added, for the k-th run)\n\n",
        Row::Periodic.title(Row::Periodic.size(quick)),
        PERIOD.as_millis()
    );
    out.push_str(
        "| peer | samples | start error p50 | p99 | p99 worst run | p99 best run | max | \
         against the grid: p50 | p99 | max |\n",
    );
    out.push_str("|---|--:|--:|--:|--:|--:|--:|--:|--:|--:|\n");
    let mut strata_p99 = None;
    for &peer in Row::Periodic.peers() {
        let Some(runs) = samples.starts.get(&peer) else {
            let _ = writeln!(
                out,
                "| {} | not measured: {} | | | | | | | | |",
                peer.label(Row::Periodic),
                http::one_line(&samples.why_missing(Row::Periodic, peer))
            );
            continue;
        };
        let errors: Vec<Vec<i64>> = runs.iter().map(Starts::lateness).collect();
        let grid: Vec<Vec<i64>> = runs.iter().map(|r| grid_errors(&r.starts)).collect();
        let per_run = |v: &[Vec<i64>], p: f64| -> Vec<f64> {
            v.iter()
                .filter_map(|e| quantile(e, p))
                .map(|x| x as f64)
                .collect()
        };
        let p99s = per_run(&errors, 0.99);
        let (p99, worst, best) = report::spread(&p99s, false);
        let max = errors.iter().flatten().copied().max();
        let grid_p99 = median(&per_run(&grid, 0.99)) as i64;
        if peer == Peer::Strata {
            strata_p99 = Some((p99 as i64, grid_p99));
        }
        let counts: Vec<f64> = runs.iter().map(|r| r.starts.len() as f64).collect();
        let _ = writeln!(
            out,
            "| {} | {} × {} | {} | {} | {} | {} | {} | {} | {} | {} |",
            peer.label(Row::Periodic),
            runs.len(),
            group_digits(median(&counts) as u64),
            format_signed(Some(median(&per_run(&errors, 0.5)) as i64)),
            format_signed(Some(p99 as i64)),
            format_signed(Some(worst as i64)),
            format_signed(Some(best as i64)),
            format_signed(max),
            format_signed(Some(median(&per_run(&grid, 0.5)) as i64)),
            format_signed(Some(grid_p99)),
            format_signed(grid.iter().flatten().copied().max()),
        );
    }

    out.push_str(
        "\nGoals of issue 19 (each ratio is the median over runs of the two rates measured \
         in the same run):\n\n",
    );
    out.push_str(&goal_line(
        "strata's executor against `rayon::spawn` on empty jobs (within 2×)",
        samples.ratio(Row::Empty, Peer::Strata, Peer::Rayon),
        GOAL_VS_RAYON,
    ));
    out.push_str(&goal_line(
        "strata's executor against `futurist.ThreadPoolExecutor` on empty jobs",
        samples.ratio(Row::Empty, Peer::Strata, Peer::Futurist),
        GOAL_VS_FUTURIST,
    ));
    out.push_str(&goal_line(
        "strata's executor of processes against `ProcessPoolExecutor`",
        samples.ratio(Row::Processes, Peer::StrataProcesses, Peer::CfProcesses),
        GOAL_VS_PROCESS_POOL,
    ));
    match strata_p99 {
        Some((p99, grid_p99)) => {
            let verdict = |ns| {
                if ns <= GOAL_PERIODIC_P99_NS {
                    "met"
                } else {
                    "**not met**"
                }
            };
            let _ = writeln!(
                out,
                "* strata's periodic start error p99 (median over runs): **{}** against its \
                 schedule (goal ≤ 1 ms): {}; **{}** against the {} ms grid: {}",
                format_signed(Some(p99)),
                verdict(p99),
                format_signed(Some(grid_p99)),
                PERIOD.as_millis(),
                verdict(grid_p99),
            );
        }
        None => out.push_str("* strata's periodic start error p99: not measured (goal ≤ 1 ms)\n"),
    }
    let ratio = |row, peer, base| {
        samples
            .ratio(row, peer, base)
            .map_or_else(|| "–".to_string(), format_ratio)
    };
    let _ = writeln!(
        out,
        "* for comparison, strata against `rayon::spawn` on {} µs jobs: {}; against futurist: {} \
         on {} µs jobs; against `concurrent.futures.ThreadPoolExecutor`: {} on empty jobs, {} on \
         {} µs jobs",
        SPIN.as_micros(),
        ratio(Row::Spin, Peer::Strata, Peer::Rayon),
        ratio(Row::Spin, Peer::Strata, Peer::Futurist),
        SPIN.as_micros(),
        ratio(Row::Empty, Peer::Strata, Peer::CfThreads),
        ratio(Row::Spin, Peer::Strata, Peer::CfThreads),
        SPIN.as_micros(),
    );
    if !samples.failures.is_empty() {
        out.push_str("\nRuns that failed (left out of the figures):\n\n");
        for (row, peer, run, why) in &samples.failures {
            let _ = writeln!(
                out,
                "* {} {}, run {}: {}",
                row.key(),
                peer.key(),
                run + 1,
                http::one_line(why)
            );
        }
    }
    out.push_str(
        "\n*median*, *worst*, *best*: jobs per second of the measured pass (every job \
         submitted, then every result awaited in the order of submission). *per job*: one \
         over the median rate. *× baseline*: the median over runs of the row's rate over the \
         baseline's in the same run (higher is faster). Periodic: *p50*, *p99*: the median \
         over the runs of each run's percentile (nearest rank); *max*: the largest of all \
         runs.\n",
    );
    out
}

/// Keeps every figure in `bench/target/results/executor-<timestamp>.tsv`.
fn save_samples(samples: &Samples, machine: &report::Machine) {
    let mut text = String::from("row\tpeer\trun\tvalue\n");
    for ((row, peer), rates) in &samples.rates {
        for (run, rate) in rates {
            let _ = writeln!(
                text,
                "{}\t{}\t{}\t{rate:.1} jobs/s",
                row.key(),
                peer.key(),
                run + 1
            );
        }
    }
    let list = |v: &[u64]| v.iter().map(u64::to_string).collect::<Vec<_>>().join(",");
    for (peer, runs) in &samples.starts {
        for (i, r) in runs.iter().enumerate() {
            let _ = writeln!(
                text,
                "periodic\t{}\t{}\tstarts_ns={};ends_ns={}",
                peer.key(),
                i + 1,
                list(&r.starts),
                r.ends.as_deref().map(list).unwrap_or_default()
            );
        }
    }
    report::save_tsv(
        &format!("executor-{}.tsv", machine.stamp),
        &text,
        "executor samples",
    );
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn start_errors_are_taken_against_the_grid() {
        let p = PERIOD.as_nanos() as u64;
        let starts: Vec<u64> = vec![p + 100, 2 * p + 50, 3 * p + 2_000_000];
        assert_eq!(grid_errors(&starts), vec![100, 50, 2_000_000]);
        // futurist: each run due one period after the last one's start.
        let futurist = Starts {
            starts: starts.clone(),
            ends: None,
        };
        assert_eq!(futurist.lateness(), vec![100, -50, 1_999_950]);
        // strata: due one period after the last was due, or at a late end.
        let strata = Starts {
            starts: vec![p + 100, 2 * p + 50, 4 * p + 500, 4 * p + 700],
            ends: Some(vec![p + 200, 2 * p + 60, 4 * p + 600, 4 * p + 710]),
        };
        assert_eq!(strata.lateness(), vec![100, 50, p as i64 + 500, 100]);
    }

    #[test]
    fn quantiles_and_spans() {
        let v: Vec<i64> = (1..=100).rev().collect();
        assert_eq!(quantile(&v, 0.99), Some(99));
        assert_eq!(quantile(&[], 0.5), None);
        assert_eq!(format_signed(Some(-12_000)), "-12 µs");
        assert_eq!(format_signed(Some(3_120_000)), "3.12 ms");
        assert_eq!(format_signed(Some(2_410_000_000)), "2.41 s");
        assert_eq!(parse_starts("1,2,3"), Some(vec![1, 2, 3]));
        assert_eq!(parse_starts("1,x"), None);
    }

    #[test]
    fn ratios_are_taken_within_a_run() {
        let mut s = Samples::default();
        s.rates
            .insert((Row::Empty, Peer::Strata), vec![(0, 10.0), (1, 30.0)]);
        s.rates
            .insert((Row::Empty, Peer::Rayon), vec![(0, 20.0), (1, 30.0)]);
        assert_eq!(s.ratio(Row::Empty, Peer::Strata, Peer::Rayon), Some(0.75));
        assert_eq!(s.ratio(Row::Spin, Peer::Strata, Peer::Rayon), None);
    }

    #[test]
    fn every_peer_has_a_key() {
        for p in Peer::ALL {
            assert_eq!(Peer::from_key(p.key()), Some(p));
        }
        for r in Row::ALL {
            assert_eq!(Row::from_key(r.key()), Some(r));
        }
    }
}
