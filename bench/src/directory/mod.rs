//! The directory benchmark (`--bench directory`, issue 16): how fast names travel between
//! processes of one host, and what the host directory costs at size.
//!
//! Every run gets a fresh private `STRATA_RUNTIME_DIR` (a temporary folder, removed at the
//! end), a fresh host directory (`strata directory`, the release build of the `strata`
//! program) and fresh `dir-node` processes (`src/bin/dir-node.rs`, beside this binary),
//! which publish and subscribe at host scope when told to on their standard input and
//! print what they hear with `CLOCK_MONOTONIC` times. Every process is killed when the run
//! ends, also when it fails.
//!
//! The rows:
//!
//! 1. publish → `Available` across processes: a subscriber process (`bench:lat:.*`) and a
//!    publisher process; the publisher reads the clock just before it publishes and puts
//!    that time in the name (`bench:lat:<i>:<T0>`), the subscriber reads it first thing
//!    in its `Available` handler; one publication at a time (the harness sends the next
//!    `publish` command through the publisher's stdin once the subscriber has printed the
//!    last `Available`: the pipe only paces, it is not inside the measured span).
//! 2. the first publication of a fresh process (the same span, but it includes joining the
//!    host directory and the session link the subscriber makes to it), then `kill -9` of
//!    that process → `Dropped` in the subscriber: from just before the harness's
//!    `kill(pid, SIGKILL)` to the subscriber's `Dropped` handler.
//! 3. row 1 with the host directory holding 100,000 names (from 4 publisher processes)
//!    and 10,000 subscriptions whose patterns match 10 names each and have no common
//!    start (only a common end, which the listing indexes), with the memory of the
//!    `strata directory` process.
//!
//! The same publish → `Available` span of the Python layer-cake system, with its host
//! directory (`host-cake`), is measured beside row 1 when the Python environment is
//! there (`python.rs`). Runs are interleaved: run 1 of every phase, then run 2, every
//! other run in reverse order. The server of named workers under wrk (`server_10`
//! against `server_8` and the Python equivalent) is measured by the HTTP machinery
//! (`http/mod.rs`) and has its own table.

pub mod proc;
mod python;

use std::fmt::Write as _;
use std::path::PathBuf;
use std::process::Command;
use std::time::{Duration, Instant};

use crate::http;
use crate::report::{self, crate_versions, median};
use crate::suite::Options;
use proc::{Proc, RuntimeDir};

/// The marker line after which the README's directory table starts.
pub const BEGIN: &str = "<!-- directory-results:begin -->";
/// The marker line before which the README's directory table ends.
pub const END: &str = "<!-- directory-results:end -->";

/// Goals of issue 16, in nanoseconds.
const GOAL_P50: u64 = 1_000_000;
const GOAL_P99: u64 = 5_000_000;
const GOAL_KILL_P99: u64 = 10_000_000;
const GOAL_SCALE_P99: u64 = 10_000_000;

/// How long one expected line may take (an `Available`, a `Dropped`, an answer).
pub(crate) const STEP: Duration = Duration::from_secs(10);
/// The pause between two publications of rows 1 and 3, so that every process has gone
/// idle (as between real publications) and one span never overlaps the next.
const PAUSE: Duration = Duration::from_millis(5);
/// Names published in one round of the scale setup (by all publishers together).
const ROUND: u64 = 10_000;
/// How long the scale subscriber may hear of no new match before its missing ones are
/// taken as lost.
const STALL: Duration = Duration::from_secs(60);
/// How long the scale setup may take.
const SETUP: Duration = Duration::from_secs(3600);

/// The sizes of one run.
#[derive(Debug, Clone, Copy)]
pub struct Sizes {
    /// Measured publications of rows 1 and 3.
    pub publications: usize,
    /// Publications before them, not measured.
    pub warmup: usize,
    /// Publisher processes started, measured and killed (row 2).
    pub kills: usize,
    /// Names the host directory holds in row 3.
    pub names: u64,
    /// Subscriptions it holds in row 3.
    pub patterns: u64,
    /// Processes publishing the names of row 3.
    pub publishers: u64,
}

impl Sizes {
    /// The sizes under these options.
    pub fn of(options: &Options) -> Sizes {
        let mut sizes = Sizes::default_for(options.quick);
        if let Some((names, patterns)) = options.directory_size {
            sizes.names = names;
            sizes.patterns = patterns;
        }
        sizes
    }

    fn default_for(quick: bool) -> Sizes {
        if quick {
            Sizes {
                publications: 100,
                warmup: 10,
                kills: 10,
                names: 10_000,
                patterns: 1_000,
                publishers: 4,
            }
        } else {
            Sizes {
                publications: 1_000,
                warmup: 20,
                kills: 50,
                names: 100_000,
                patterns: 10_000,
                publishers: 4,
            }
        }
    }
}

/// Waits until the scale subscriber holds `expected` matches: `Ok(Err(held))` when it has
/// heard of none for [`STALL`].
fn wait_for_matches(
    wants: &mut Proc,
    expected: u64,
    run: usize,
) -> Result<Result<(), u64>, String> {
    let mut said = Instant::now();
    let mut last = (0, Instant::now());
    loop {
        wants.send("count")?;
        let held: u64 = wants.expect(STEP, "`count N`", |l| {
            l.strip_prefix("count ")?.parse().ok()
        })?;
        if held >= expected {
            return Ok(Ok(()));
        }
        if held != last.0 {
            last = (held, Instant::now());
        } else if last.1.elapsed() > STALL {
            return Ok(Err(held));
        }
        if said.elapsed() > Duration::from_secs(60) {
            eprintln!(
                "[run {}] directory scale: the subscriber holds {held} of {expected} matches",
                run + 1
            );
            said = Instant::now();
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// One row of latencies.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Row {
    /// publish → Available, two strata processes, the session up.
    Steady,
    /// The same in the Python system (layer-cake, host-cake).
    Python,
    /// The first publication of a fresh process.
    First,
    /// kill -9 → Dropped.
    Kill,
    /// publish → Available at size.
    Scale,
}

impl Row {
    const ALL: [Row; 5] = [Row::Steady, Row::Python, Row::First, Row::Kill, Row::Scale];

    fn key(self) -> &'static str {
        match self {
            Row::Steady => "publish-available",
            Row::Python => "layer-cake-publish-available",
            Row::First => "first-publish-available",
            Row::Kill => "kill-dropped",
            Row::Scale => "scale-publish-available",
        }
    }
}

/// What one run of row 3 found besides its latencies.
#[derive(Debug, Clone, Default)]
pub struct ScaleRun {
    /// Seconds to subscribe the patterns (every `Subscribed` back).
    pub subscribe_s: f64,
    /// Seconds to publish the names (every `Published` back, from every publisher).
    pub publish_s: f64,
    /// Seconds from the first publication until the subscriber held every match.
    pub matched_s: f64,
    /// The host directory's `VmRSS` before anything was listed, and after the setup.
    pub rss_idle: u64,
    /// The same after the setup and the measured publications.
    pub rss: u64,
    /// Its `VmHWM` (peak) then.
    pub peak: u64,
    /// Matches the subscriber never heard of.
    pub lost: u64,
    /// What was seen when they were given up on.
    pub lost_note: String,
}

/// Every figure of a suite run.
#[derive(Debug, Default)]
pub struct Samples {
    /// Per row, per run, the latencies in nanoseconds.
    pub runs: Vec<(Row, Vec<Vec<u64>>)>,
    /// Per run of row 3.
    pub scale: Vec<ScaleRun>,
    /// Rows that could not be measured, and why.
    pub missing: Vec<(Row, String)>,
    /// Runs that failed (of the Python row, whose failure does not fail the suite).
    pub failures: Vec<(Row, usize, String)>,
}

impl Samples {
    fn add(&mut self, row: Row, latencies: Vec<u64>) {
        match self.runs.iter_mut().find(|(r, _)| *r == row) {
            Some((_, v)) => v.push(latencies),
            None => self.runs.push((row, vec![latencies])),
        }
    }

    fn of(&self, row: Row) -> &[Vec<u64>] {
        self.runs
            .iter()
            .find(|(r, _)| *r == row)
            .map(|(_, v)| v.as_slice())
            .unwrap_or(&[])
    }

    fn missing_reason(&self, row: Row) -> Option<&str> {
        self.missing
            .iter()
            .find(|(r, _)| *r == row)
            .map(|(_, w)| w.as_str())
    }
}

/// The `p`-th quantile (0 < p ≤ 1) of `v` by nearest rank; `v` need not be sorted.
pub fn quantile(v: &[u64], p: f64) -> Option<u64> {
    if v.is_empty() {
        return None;
    }
    let mut s = v.to_vec();
    s.sort_unstable();
    let rank = ((p * s.len() as f64).ceil() as usize).clamp(1, s.len());
    Some(s[rank - 1])
}

/// `dir-node`, beside this binary.
pub(crate) fn node_program() -> Result<PathBuf, String> {
    let exe = std::env::current_exe().map_err(|e| format!("cannot find this binary: {e}"))?;
    let node = exe.with_file_name("dir-node");
    if node.is_file() {
        Ok(node)
    } else {
        Err(format!(
            "{} is missing: build the bench crate (`cargo build --release` in bench/; \
             bench/run does)",
            node.display()
        ))
    }
}

/// Where the logs of the processes go.
pub(crate) fn log_dir() -> PathBuf {
    PathBuf::from(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/target/directory/logs"
    ))
}

/// One run's processes and folder.
struct Host {
    dir: RuntimeDir,
    directory: Proc,
    node: PathBuf,
    tag: String,
    started: usize,
}

impl Host {
    /// A fresh folder and host directory (`strata directory`, waited for until it says
    /// it serves).
    fn start(tag: &str) -> Result<Host, String> {
        let dir = RuntimeDir::new()?;
        let strata = http::strata_program();
        if !strata.is_file() {
            return Err(format!(
                "{} is missing: build it with `cargo build --release -p strata-cli --bin \
                 strata` from the repository root (bench/run does)",
                strata.display()
            ));
        }
        let mut c = Command::new(&strata);
        c.arg("directory");
        dir.apply(&mut c);
        let log = log_dir().join(format!("{tag}-directory.log"));
        let mut directory = Proc::start("strata directory", c, &log)?.terminate_gently();
        directory.expect_line(STEP, "strata directory: serving")?;
        Ok(Host {
            dir,
            directory,
            node: node_program()?,
            tag: tag.to_string(),
            started: 0,
        })
    }

    /// A fresh `dir-node`, waited for until it is ready.
    fn node(&mut self, role: &str) -> Result<Proc, String> {
        self.started += 1;
        let mut c = Command::new(&self.node);
        self.dir.apply(&mut c);
        let log = log_dir().join(format!("{}-{role}-{}.log", self.tag, self.started));
        let mut p = Proc::start(&format!("dir-node ({role})"), c, &log)?;
        p.expect_line(STEP, "ready")?;
        Ok(p)
    }
}

/// A subscriber to `pattern`, waited for until subscribed.
fn subscriber(host: &mut Host, pattern: &str) -> Result<Proc, String> {
    let mut s = host.node("subscriber")?;
    s.send(&format!("subscribe {pattern}"))?;
    s.expect_line(STEP, "subscribed ")?;
    Ok(s)
}

/// Waits for the subscriber's `available PREFIX:T0 T1` and gives T1 - T0.
pub(crate) fn available_after(subscriber: &mut Proc, prefix: &str) -> Result<u64, String> {
    let start = format!("available {prefix}:");
    subscriber.expect(STEP, &format!("`{start}`"), |l| {
        let rest = l.strip_prefix(&start)?;
        let (t0, t1) = rest.split_once(' ')?;
        let (t0, t1): (u64, u64) = (t0.parse().ok()?, t1.parse().ok()?);
        Some(t1.saturating_sub(t0))
    })
}

/// Publishes `count` names from `publisher`, one at a time, and gives each one's span
/// from publish to the subscriber's `Available` (the first `skip` are not kept).
pub(crate) fn publish_one_by_one(
    subscriber: &mut Proc,
    publisher: &mut Proc,
    tag: &str,
    skip: usize,
    count: usize,
) -> Result<Vec<u64>, String> {
    let mut kept = Vec::with_capacity(count);
    for i in 0..skip + count {
        let prefix = format!("bench:lat:{tag}{i}");
        publisher.send(&format!("publish {prefix}"))?;
        let span = available_after(subscriber, &prefix)?;
        if i >= skip {
            kept.push(span);
        }
        publisher.drain();
        std::thread::sleep(PAUSE);
    }
    Ok(kept)
}

/// Rows 1 and 2 in one run: one host directory, one subscriber.
fn host_rows(samples: &mut Samples, sizes: Sizes, run: usize) -> Result<(), String> {
    let mut host = Host::start(&format!("run{}", run + 1))?;
    let mut sub = subscriber(&mut host, "bench:.*")?;
    let mut publisher = host.node("publisher")?;
    let steady = publish_one_by_one(
        &mut sub,
        &mut publisher,
        "",
        sizes.warmup,
        sizes.publications,
    )?;
    drop(publisher);
    // Its names go with it (not measured): every one dropped before the next row.
    for _ in 0..sizes.warmup + sizes.publications {
        sub.expect_line(STEP, "dropped bench:lat:")?;
    }

    let mut first = Vec::new();
    let mut kill = Vec::new();
    // One warm-up process first, not measured.
    for k in 0..=sizes.kills {
        let mut p = host.node("killed")?;
        let prefix = format!("bench:kill:{k}");
        p.send(&format!("publish {prefix}"))?;
        let span = available_after(&mut sub, &prefix)?;
        p.expect_line(STEP, "published ")?;
        std::thread::sleep(Duration::from_millis(20));
        let t_kill = p.kill9();
        let start = format!("dropped {prefix}:");
        let t_dropped = sub.expect(STEP, &format!("`{start}`"), |l| {
            l.strip_prefix(&start)?
                .split_once(' ')?
                .1
                .parse::<u64>()
                .ok()
        })?;
        drop(p);
        if k > 0 {
            first.push(span);
            kill.push(t_dropped.saturating_sub(t_kill));
        }
    }
    say_run(run, Row::Steady, &steady);
    say_run(run, Row::First, &first);
    say_run(run, Row::Kill, &kill);
    samples.add(Row::Steady, steady);
    samples.add(Row::First, first);
    samples.add(Row::Kill, kill);
    Ok(())
}

/// Row 3 in one run: the host directory filled, then row 1 measured against it.
fn scale_rows(samples: &mut Samples, sizes: Sizes, run: usize) -> Result<(), String> {
    let mut host = Host::start(&format!("run{}-scale", run + 1))?;
    let mut found = ScaleRun {
        rss_idle: host.directory.memory().map_or(0, |m| m.0),
        ..Default::default()
    };
    let began = Instant::now();
    let mut wants = host.node("patterns")?;
    wants.send(&format!("scale-subscribe 0 {}", sizes.patterns))?;
    wants.expect_line(SETUP, "scale-subscribed ")?;
    found.subscribe_s = began.elapsed().as_secs_f64();

    let began = Instant::now();
    let mut publishers = Vec::new();
    for _ in 0..sizes.publishers {
        publishers.push(host.node("names")?);
    }
    // Publisher `p` publishes names p*share.. in steps of `chunk`; after each round the
    // subscriber is waited for until it holds every match so far, so that no process's
    // mailbox holds more than a round's candidates (a subscriber that falls further
    // behind has them refused: see the README).
    let share = sizes.names / sizes.publishers;
    let chunk = (ROUND / sizes.publishers).max(1);
    let mut done = 0;
    let mut publishing = Duration::ZERO;
    while done < share {
        let step = chunk.min(share - done);
        let round = Instant::now();
        for (i, p) in publishers.iter_mut().enumerate() {
            let from = i as u64 * share + done;
            p.send(&format!("scale-publish {from} {}", from + step))?;
        }
        for p in &mut publishers {
            p.expect_line(SETUP, "scale-published ")?;
        }
        publishing += round.elapsed();
        done += step;
        // Every pattern j matches the ten names 10j..10j+9.
        let expected: u64 = (0..sizes.publishers)
            .map(|i| {
                let from = i * share;
                let to = (from + done).min(sizes.patterns * 10);
                to.saturating_sub(from)
            })
            .sum();
        if let Err(held) = wait_for_matches(&mut wants, expected, run)? {
            let overloaded = host.directory.log_text().matches("Overloaded").count();
            found.lost = expected - held;
            found.lost_note = format!(
                "the subscriber held {held} of the {expected} matches so far and heard of no \
                 more for {} s; the host directory's log has {overloaded} `Overloaded` notices \
                 from the subscriber's process",
                STALL.as_secs()
            );
            eprintln!("[run {}] directory scale: {}", run + 1, found.lost_note);
            break;
        }
    }
    found.publish_s = publishing.as_secs_f64();
    found.matched_s = began.elapsed().as_secs_f64();
    eprintln!(
        "[run {}] directory scale: {} patterns subscribed in {:.1} s, {} names published in \
         {:.1} s, every match held after {:.1} s",
        run + 1,
        sizes.patterns,
        found.subscribe_s,
        sizes.names,
        found.publish_s,
        found.matched_s
    );

    let mut sub = subscriber(&mut host, "bench:.*")?;
    let mut publisher = host.node("publisher")?;
    let spans = publish_one_by_one(
        &mut sub,
        &mut publisher,
        "",
        sizes.warmup,
        sizes.publications,
    )?;
    if let Some((rss, peak)) = host.directory.memory() {
        found.rss = rss;
        found.peak = peak;
    }
    say_run(run, Row::Scale, &spans);
    samples.add(Row::Scale, spans);
    samples.scale.push(found);
    Ok(())
}

fn say_run(run: usize, row: Row, v: &[u64]) {
    let q = |p| quantile(v, p).map(format_ns).unwrap_or_else(|| "?".into());
    eprintln!(
        "[run {}] directory {:<30} {} samples  p50 {}  p99 {}  max {}",
        run + 1,
        row.key(),
        v.len(),
        q(0.5),
        q(0.99),
        q(1.0)
    );
}

/// A span: `412 µs`, `3.12 ms`.
pub fn format_ns(ns: u64) -> String {
    let us = ns as f64 / 1e3;
    if us < 1e3 {
        format!("{us:.0} µs")
    } else if us < 1e5 {
        format!("{:.2} ms", us / 1e3)
    } else {
        format!("{:.0} ms", us / 1e3)
    }
}

fn format_bytes(b: u64) -> String {
    format!("{:.1} MiB", b as f64 / (1024.0 * 1024.0))
}

/// Runs the directory benchmark's rows (the HTTP row is `http::run`'s), prints their
/// table and rewrites it in the README.
pub fn run(options: &Options) -> Result<(), String> {
    let began = Instant::now();
    let load_at_start = report::load_average();
    let sizes = Sizes::of(options);
    let mut samples = Samples::default();
    if let Err(why) = python::available() {
        eprintln!("[directory] layer-cake is not measured: {why}");
        samples.missing.push((Row::Python, why));
    }
    type Phase = fn(&mut Samples, Sizes, usize) -> Result<(), String>;
    let phases: [(&str, Phase); 3] = [
        ("host", host_rows),
        ("python", python_rows),
        ("scale", scale_rows),
    ];
    for run in 0..options.runs {
        let mut order: Vec<&(&str, Phase)> = phases.iter().collect();
        if run % 2 == 1 {
            order.reverse();
        }
        for (name, phase) in order {
            if *name == "python" && samples.missing_reason(Row::Python).is_some() {
                continue;
            }
            phase(&mut samples, sizes, run)?;
        }
    }
    let mut machine = report::Machine::detect(began.elapsed(), options, load_at_start);
    machine.versions = crate_versions(&["strata", "tokio", "regex"]);
    let text = table(&samples, &machine, sizes);
    println!("{text}");
    save_samples(&samples, &machine);
    if let Some(path) = &options.readme {
        report::rewrite_between(path, BEGIN, END, &text)?;
        eprintln!("directory results table rewritten in {}", path.display());
    }
    Ok(())
}

/// The Python row in one run; a failure is recorded, not fatal.
fn python_rows(samples: &mut Samples, sizes: Sizes, run: usize) -> Result<(), String> {
    match python::publish_available(sizes.publications, run) {
        Ok(spans) => {
            say_run(run, Row::Python, &spans);
            samples.add(Row::Python, spans);
        }
        Err(e) => {
            eprintln!("[run {}] directory layer-cake failed: {e}", run + 1);
            samples.failures.push((Row::Python, run, e));
        }
    }
    Ok(())
}

/// The label of a row in the table.
fn label(row: Row, sizes: Sizes) -> String {
    match row {
        Row::Steady => "**publish → `Available`**, strata: a publisher process and a subscriber \
                        process, the session between them up"
            .to_string(),
        Row::Python => "publish → `Available`, the Python layer-cake system (`host-cake`, \
                        `lc.publish` / `lc.subscribe`)"
            .to_string(),
        Row::First => "publish → `Available`, strata: the first publication of a fresh process \
                       (joining the host directory and the session link included)"
            .to_string(),
        Row::Kill => "**`kill -9` → `Dropped`**, strata: that process killed".to_string(),
        Row::Scale => format!(
            "**publish → `Available` at size**, strata: the host directory holding {} names \
             and {} regex subscriptions",
            crate::workload::group_digits(sizes.names),
            crate::workload::group_digits(sizes.patterns)
        ),
    }
}

/// The goal of a row, and whether the median of the runs meets it.
fn goal(row: Row, p50: u64, p99: u64, at_issue_size: bool) -> String {
    let verdict = |ok: bool| if ok { "met" } else { "**not met**" };
    match row {
        Row::Steady => format!(
            "p50 ≤ 1 ms, p99 ≤ 5 ms: {}",
            verdict(p50 <= GOAL_P50 && p99 <= GOAL_P99)
        ),
        Row::Kill => format!("p99 ≤ 10 ms: {}", verdict(p99 <= GOAL_KILL_P99)),
        Row::Scale if at_issue_size => {
            format!("p99 ≤ 10 ms: {}", verdict(p99 <= GOAL_SCALE_P99))
        }
        Row::Scale => format!(
            "p99 ≤ 10 ms at 100,000 names and 10,000 subscriptions: not measured at that \
             size (here: {})",
            verdict(p99 <= GOAL_SCALE_P99)
        ),
        Row::Python => "none (issue 16 quotes 8-9 ms for it)".to_string(),
        Row::First => "–".to_string(),
    }
}

/// The Markdown table with its notes.
fn table(samples: &Samples, machine: &report::Machine, sizes: Sizes) -> String {
    let mut out = report::notes(
        machine,
        "each with a fresh private `STRATA_RUNTIME_DIR`, host directory (`strata directory`) \
         and processes",
        "The directory benchmark",
    );
    out.push_str(
        "| row | samples | p50 | p99 | p99 worst run | p99 best run | max | goal (issue 16) |\n",
    );
    out.push_str("|---|--:|--:|--:|--:|--:|--:|---|\n");
    for row in Row::ALL {
        let runs = samples.of(row);
        if runs.is_empty() {
            let why = samples
                .missing_reason(row)
                .map(http::one_line)
                .or_else(|| {
                    samples
                        .failures
                        .iter()
                        .find(|(r, ..)| *r == row)
                        .map(|(_, _, w)| http::one_line(w))
                })
                .unwrap_or_else(|| "not run".to_string());
            let _ = writeln!(
                out,
                "| {} | not measured: {why} | | | | | | |",
                label(row, sizes)
            );
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
            label(row, sizes),
            runs.len(),
            crate::workload::group_digits(runs[0].len() as u64),
            format_ns(p50),
            format_ns(p99),
            format_ns(worst as u64),
            format_ns(best as u64),
            format_ns(max),
            goal(
                row,
                p50,
                p99,
                sizes.names == 100_000 && sizes.patterns == 10_000
            )
        );
    }
    if !samples.scale.is_empty() {
        let s = &samples.scale;
        let m = |f: fn(&ScaleRun) -> f64| median(&s.iter().map(f).collect::<Vec<_>>());
        let _ = write!(
            out,
            "\nAt size (row 3; medians of the runs): the `strata directory` process holds \
             **{} resident** (`VmRSS`; {} at its peak, `VmHWM`; {} before anything was \
             listed). Setting it up took {:.1} s to subscribe the {} patterns (one process, \
             at most 256 unanswered), then the {} names were published by {} processes at \
             once (at most 256 unanswered each) in rounds of {}, each round waited for until \
             the subscriber held its matches: {:.1} s of publishing, {:.1} s until the \
             subscriber held all {} matches.\n",
            format_bytes(m(|r| r.rss as f64) as u64),
            format_bytes(m(|r| r.peak as f64) as u64),
            format_bytes(m(|r| r.rss_idle as f64) as u64),
            m(|r| r.subscribe_s),
            crate::workload::group_digits(sizes.patterns),
            crate::workload::group_digits(sizes.names),
            sizes.publishers,
            crate::workload::group_digits(ROUND),
            m(|r| r.publish_s),
            m(|r| r.matched_s),
            crate::workload::group_digits(sizes.patterns * 10),
        );
        for (i, r) in s.iter().enumerate().filter(|(_, r)| r.lost > 0) {
            let _ = writeln!(
                out,
                "\n**Run {}: {} matches lost**: {}; the span was measured all the same.",
                i + 1,
                crate::workload::group_digits(r.lost),
                r.lost_note
            );
        }
    }
    let failures: Vec<_> = samples.failures.iter().collect();
    if !failures.is_empty() {
        out.push_str("\nRuns that failed (left out of the figures):\n\n");
        for (row, run, why) in failures {
            let _ = writeln!(
                out,
                "* {}, run {}: {}",
                row.key(),
                run + 1,
                http::one_line(why)
            );
        }
    }
    out.push_str(
        "\n*samples*: runs × spans per run. *p50*, *p99*: the median over the runs of each \
         run's percentile (nearest rank); *p99 worst run*, *p99 best run*: the highest and \
         lowest of the runs' p99; *max*: the longest span of all runs. A span of publish → \
         `Available` runs from the publisher's clock read just before it publishes to the \
         subscriber's first thing in its `Available` handler (`CLOCK_MONOTONIC`, one clock \
         for the host); `kill -9` → `Dropped` from the harness's clock read just before \
         `kill(2)` to the subscriber's `Dropped` handler. Publications are one at a time, \
         5 ms apart for strata (30 ms for layer-cake), so every process is idle when one \
         starts.\n",
    );
    out
}

/// Keeps every span in `bench/target/results/directory-<timestamp>.tsv`.
fn save_samples(samples: &Samples, machine: &report::Machine) {
    let mut text = String::from("row\trun\tspans_ns\n");
    for (row, runs) in &samples.runs {
        for (i, v) in runs.iter().enumerate() {
            let spans: Vec<String> = v.iter().map(u64::to_string).collect();
            let _ = writeln!(text, "{}\t{}\t{}", row.key(), i + 1, spans.join(","));
        }
    }
    for (i, s) in samples.scale.iter().enumerate() {
        let _ = writeln!(
            text,
            "scale-setup\t{}\tsubscribe_s={:.3},publish_s={:.3},matched_s={:.3},rss_idle={},rss={},peak={},lost={}",
            i + 1,
            s.subscribe_s,
            s.publish_s,
            s.matched_s,
            s.rss_idle,
            s.rss,
            s.peak,
            s.lost
        );
    }
    report::save_tsv(
        &format!("directory-{}.tsv", machine.stamp),
        &text,
        "directory samples",
    );
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quantiles_by_nearest_rank() {
        let v: Vec<u64> = (1..=100).rev().collect();
        assert_eq!(quantile(&v, 0.5), Some(50));
        assert_eq!(quantile(&v, 0.99), Some(99));
        assert_eq!(quantile(&v, 1.0), Some(100));
        assert_eq!(quantile(&[7], 0.99), Some(7));
        assert_eq!(quantile(&[], 0.5), None);
    }

    #[test]
    fn spans_are_formatted() {
        assert_eq!(format_ns(412_000), "412 µs");
        assert_eq!(format_ns(3_120_000), "3.12 ms");
        assert_eq!(format_ns(250_000_000), "250 ms");
    }

    #[test]
    fn goals_are_judged_on_the_medians() {
        assert!(goal(Row::Steady, 900_000, 4_000_000, true).ends_with(": met"));
        assert!(goal(Row::Steady, 1_100_000, 4_000_000, true).contains("not met"));
        assert!(goal(Row::Kill, 0, 10_000_001, true).contains("not met"));
        assert!(goal(Row::Scale, 0, 1_000, true).ends_with(": met"));
        assert!(goal(Row::Scale, 0, 1_000, false).contains("not measured at that size"));
    }
}
