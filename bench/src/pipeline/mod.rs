//! The pipeline benchmark (`--bench pipeline`, issue 20): items per second through three
//! stages — one producer, three transport workers, one consumer, queues of 100 — for tiny
//! items and for a transform of 10 µs, with strata's stages on threads against a
//! hand-written pipeline on `crossbeam-channel` and against os-m3-engine (Python), and
//! strata with its transport in worker processes against its thread stages.
//!
//! Every sample is one fresh process: `pipe-bench ROW N` (beside this binary) for the
//! Rust rows, `python pipe_os_m3.py ROW N` in the bench's virtual environment for
//! os-m3-engine. Runs are interleaved, every other run in reverse order.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use crate::report::{self, crate_versions, median};
use crate::suite::{self, Options};

/// The marker line after which the README's pipeline table starts.
pub const BEGIN: &str = "<!-- pipeline-results:begin -->";
/// The marker line before which the README's pipeline table ends.
pub const END: &str = "<!-- pipeline-results:end -->";

/// The pinned os-m3-engine package (bench/run installs it).
pub const OS_M3_PACKAGE: &str = "os-m3-engine==0.1.2";

/// Issue 20's goals: strata's thread stages at least this share of the crossbeam
/// pipeline's rate, and this many times os-m3-engine's.
const CROSSBEAM_GOAL: f64 = 0.8;
const OS_M3_GOAL: f64 = 100.0;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Peer {
    Crossbeam,
    Strata,
    OsM3,
    StrataProcesses,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Work {
    Tiny,
    TenMicros,
}

const ROWS: [(Work, Peer); 8] = [
    (Work::Tiny, Peer::Crossbeam),
    (Work::Tiny, Peer::Strata),
    (Work::Tiny, Peer::OsM3),
    (Work::Tiny, Peer::StrataProcesses),
    (Work::TenMicros, Peer::Crossbeam),
    (Work::TenMicros, Peer::Strata),
    (Work::TenMicros, Peer::OsM3),
    (Work::TenMicros, Peer::StrataProcesses),
];

impl Work {
    fn key(self) -> &'static str {
        match self {
            Work::Tiny => "tiny",
            Work::TenMicros => "10us",
        }
    }
}

impl Peer {
    fn label(self) -> &'static str {
        match self {
            Peer::Crossbeam => "hand-written on `crossbeam-channel` (bounded channels, threads)",
            Peer::Strata => "strata, stages on threads",
            Peer::OsM3 => "os-m3-engine 0.1.2 (Python threads)",
            Peer::StrataProcesses => "strata, transport in 3 worker processes",
        }
    }

    fn pipe_row(self, work: Work) -> Option<String> {
        let name = match self {
            Peer::Crossbeam => "crossbeam",
            Peer::Strata => "strata",
            Peer::StrataProcesses => "strata-proc",
            Peer::OsM3 => return None,
        };
        Some(format!("{name}-{}", work.key()))
    }
}

/// N of a row: full and `--quick`.
fn size(work: Work, peer: Peer, quick: bool) -> u64 {
    let full = match (work, peer) {
        (Work::Tiny, Peer::OsM3) => 20_000,
        (Work::TenMicros, Peer::OsM3) => 5_000,
        (Work::Tiny, _) => 200_000,
        (Work::TenMicros, _) => 50_000,
    };
    if quick {
        full / 10
    } else {
        full
    }
}

fn pipe_program() -> Result<PathBuf, String> {
    let exe = std::env::current_exe().map_err(|e| format!("cannot find this binary: {e}"))?;
    let p = exe.with_file_name("pipe-bench");
    if !p.is_file() {
        return Err(format!(
            "{} is missing: build the bench crate (`cargo build --release` in bench/; bench/run does)",
            p.display()
        ));
    }
    Ok(p)
}

/// Why os-m3-engine cannot be measured, if it cannot.
fn os_m3_missing() -> Option<String> {
    let python = crate::http::python();
    let ok = Command::new(&python)
        .args(["-c", "import os_m3_engine"])
        .output()
        .map(|o| o.status.success())
        .unwrap_or(false);
    (!ok).then(|| {
        format!(
            "{} cannot import os_m3_engine (bench/run installs `{OS_M3_PACKAGE}` there)",
            python.display()
        )
    })
}

fn measure(program: &Path, work: Work, peer: Peer, n: u64) -> Result<Duration, String> {
    let mut command = match peer.pipe_row(work) {
        Some(row) => {
            let mut c = Command::new(program);
            c.args([row.as_str(), &n.to_string()]);
            c
        }
        None => {
            let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("python/pipe_os_m3.py");
            let mut c = Command::new(crate::http::python());
            c.arg(script).args([work.key(), &n.to_string()]);
            c
        }
    };
    command.env_remove("STRATA_LOG");
    suite::measured_by(command, &format!("pipeline {} {peer:?} {n}", work.key()))
}

type Figures = Vec<((Work, Peer), u64, Vec<f64>)>;

fn figures(all: &Figures, row: (Work, Peer)) -> Option<&[f64]> {
    all.iter()
        .find(|(r, _, _)| *r == row)
        .map(|(_, _, v)| v.as_slice())
}

/// Runs the pipeline benchmark, prints its table and rewrites it in the README.
pub fn run(options: &Options) -> Result<(), String> {
    let program = pipe_program()?;
    let os_m3 = os_m3_missing();
    if let Some(why) = &os_m3 {
        eprintln!("warning: os-m3-engine not measured: {why}");
    }
    let began = Instant::now();
    let load_at_start = report::load_average();
    let mut all: Figures = Vec::new();
    for run in 0..options.runs {
        let order: Vec<(Work, Peer)> = if run % 2 == 0 {
            ROWS.to_vec()
        } else {
            ROWS.iter().rev().copied().collect()
        };
        for (work, peer) in order {
            if peer == Peer::OsM3 && os_m3.is_some() {
                continue;
            }
            let n = size(work, peer, options.quick);
            let took = measure(&program, work, peer, n)?;
            let rate = n as f64 / took.as_secs_f64().max(1e-9);
            eprintln!(
                "[run {}/{}] pipeline {:<4} {:<16} {}",
                run + 1,
                options.runs,
                work.key(),
                format!("{peer:?}"),
                report::format_rate(rate, "items/s")
            );
            match all.iter_mut().find(|(r, _, _)| *r == (work, peer)) {
                Some((_, _, v)) => v.push(rate),
                None => all.push(((work, peer), n, vec![rate])),
            }
        }
    }
    let mut machine = report::Machine::detect(began.elapsed(), options, load_at_start);
    machine.versions = crate_versions(&["strata", "crossbeam-channel"]);
    let text = table(&all, &machine, os_m3.as_deref());
    println!("{text}");
    if let Some(path) = &options.readme {
        report::rewrite_between(path, BEGIN, END, &text)?;
        eprintln!("pipeline results table rewritten in {}", path.display());
    }
    Ok(())
}

fn table(all: &Figures, machine: &report::Machine, os_m3: Option<&str>) -> String {
    let mut out = report::notes(machine, "each a fresh process", "The pipeline suite");
    out.push_str("| items | pipeline | median | worst | best | vs strata on threads |\n");
    out.push_str("|---|---|--:|--:|--:|--:|\n");
    for work in [Work::Tiny, Work::TenMicros] {
        let strata = figures(all, (work, Peer::Strata)).map(median);
        let mut first = true;
        for &(w, peer) in ROWS.iter().filter(|(w, _)| *w == work) {
            let Some(f) = figures(all, (w, peer)) else {
                continue;
            };
            let n = all
                .iter()
                .find(|(r, _, _)| *r == (w, peer))
                .map_or(0, |(_, n, _)| *n);
            let title = if first {
                match work {
                    Work::Tiny => "**tiny items** (a `u64`, one addition)".to_string(),
                    Work::TenMicros => "**10 µs transform** (spinning on the clock)".to_string(),
                }
            } else {
                String::new()
            };
            first = false;
            let (mid, worst, best) = report::spread(f, true);
            let vs = strata
                .map(|s| format!("{:.2}×", s / mid))
                .unwrap_or_else(|| "–".to_string());
            out.push_str(&format!(
                "| {title} | {} ({} items) | {} | {} | {} | {vs} |\n",
                peer.label(),
                crate::workload::group_digits(n),
                report::format_rate(mid, "items/s"),
                report::format_rate(worst, "items/s"),
                report::format_rate(best, "items/s"),
            ));
        }
    }
    out.push_str(
        "\n*vs strata on threads*: strata's median rate over the row's (above 1× strata is \
         faster). Each run: 1 producer, 3 transport workers, 1 consumer, queues of 100 \
         (os-m3-engine's defaults), timed from the start to the last item consumed, the \
         consumer's sum checked.\n",
    );
    if let Some(why) = os_m3 {
        out.push_str(&format!("\nos-m3-engine was not measured: {why}.\n"));
    }
    for work in [Work::Tiny, Work::TenMicros] {
        let s = figures(all, (work, Peer::Strata)).map(median);
        let c = figures(all, (work, Peer::Crossbeam)).map(median);
        let o = figures(all, (work, Peer::OsM3)).map(median);
        let verdict = |ok: bool| if ok { "met" } else { "not met" };
        if let (Some(s), Some(c)) = (s, c) {
            out.push_str(&format!(
                "\nGoal (issue 20), {}: strata on threads at least {CROSSBEAM_GOAL}× the \
                 crossbeam pipeline. Measured: {:.2}× — **{}**.",
                work.key(),
                s / c,
                verdict(s / c >= CROSSBEAM_GOAL)
            ));
        }
        if let (Some(s), Some(o)) = (s, o) {
            out.push_str(&format!(
                " At least {OS_M3_GOAL:.0}× os-m3-engine. Measured: {:.0}× — **{}**.",
                s / o,
                verdict(s / o >= OS_M3_GOAL)
            ));
        }
    }
    out.push('\n');
    out
}
