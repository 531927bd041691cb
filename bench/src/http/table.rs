//! The HTTP benchmarks' report: two Markdown tables (the front's cost against bare hyper,
//! the spool against bare hyper and the Python spool), the goals of issues 4 and 5 with
//! the measured ratios; the process spool's table and the goal of issue 6; and the samples
//! kept on disk. The load client's table (`load.rs`) uses the same row figures, ratios and
//! formats.

use std::fmt::Write as _;
use std::time::Duration;

use super::wrk::{self, Report};
use super::{HttpPeer, Samples, Shape, SHAPES, WARMUP_SECONDS};
use crate::report::{self, crate_versions, median, Machine};

/// The marker line after which the README's HTTP table starts.
pub const BEGIN: &str = "<!-- http-results:begin -->";
/// The marker line before which the README's HTTP table ends.
pub const END: &str = "<!-- http-results:end -->";

/// The marker line after which the README's process spool table starts.
pub const PROCESS_BEGIN: &str = "<!-- process-results:begin -->";
/// The marker line before which the README's process spool table ends.
pub const PROCESS_END: &str = "<!-- process-results:end -->";

/// The goal of issue 4: `server_1` at least this fraction of bare hyper's requests/s.
const FRONT_GOAL: f64 = 0.8;
/// The goal of issue 5: `server_4` at least this many times the Python spool (8x8).
const PYTHON_GOAL: f64 = 50.0;
/// The goal of issue 5: `server_4` at least this fraction of bare hyper (8x8).
const SPOOL_GOAL: f64 = 0.8;
/// The goal of issue 6: `server_8` at least this fraction of bare hyper (8x8).
const PROCESS_GOAL: f64 = 0.6;

/// Where and how the HTTP benchmarks ran.
pub struct Notes {
    /// The machine, compiler, date, load and strata revision.
    pub machine: Machine,
    /// wrk's version.
    pub wrk: String,
    /// Python's and layer-cake's versions.
    pub python: String,
    /// Seconds of each measured wrk run.
    pub seconds: u64,
}

/// A rate: `25.3 k req/s`, `812 req/s`.
pub fn format_rate(figure: f64) -> String {
    if figure >= 1e4 {
        format!("{:.1} k req/s", figure / 1e3)
    } else if figure >= 1e3 {
        format!("{:.2} k req/s", figure / 1e3)
    } else if figure >= 10.0 {
        format!("{figure:.0} req/s")
    } else {
        format!("{figure:.1} req/s")
    }
}

/// A latency: `820 µs`, `3.1 ms`, `1.20 s`.
pub fn format_latency(d: Duration) -> String {
    let us = d.as_secs_f64() * 1e6;
    if us < 1e3 {
        format!("{us:.0} µs")
    } else if us < 1e6 {
        format!("{:.1} ms", us / 1e3)
    } else {
        format!("{:.2} s", us / 1e6)
    }
}

/// The figures of one row.
pub(super) struct Row {
    /// Good answers per second, one per run.
    pub good: Vec<f64>,
    /// Non-2xx (bad) answers, summed over the runs.
    pub non_2xx: u64,
    /// Socket errors, summed over the runs.
    pub socket_errors: u64,
    /// The median of the runs' 99th-percentile latencies.
    pub p99: Option<Duration>,
    /// The median of the runs' server CPU time per response.
    pub cpu: Option<Duration>,
    /// The median of the runs' load generator CPU time per response.
    pub loader_cpu: Option<Duration>,
}

impl Row {
    /// The median, the worst and the best good answers per second.
    pub fn spread(&self) -> (f64, f64, f64) {
        report::spread(&self.good, true)
    }
}

fn median_duration(values: impl Iterator<Item = Duration>) -> Option<Duration> {
    let v: Vec<f64> = values.map(|d| d.as_secs_f64()).collect();
    (!v.is_empty()).then(|| Duration::from_secs_f64(median(&v)))
}

/// The figures of a row from its reports, round by round; `None` if none ran.
pub(super) fn row(rounds: &[Option<Report>]) -> Option<Row> {
    let reports: Vec<&Report> = rounds.iter().flatten().collect();
    if reports.is_empty() {
        return None;
    }
    Some(Row {
        good: reports.iter().map(|r| r.good_per_second()).collect(),
        non_2xx: reports.iter().map(|r| r.non_2xx).sum(),
        socket_errors: reports.iter().map(|r| r.socket_errors).sum(),
        p99: median_duration(reports.iter().filter_map(|r| r.p99)),
        cpu: median_duration(reports.iter().filter_map(|r| r.cpu_per_request())),
        loader_cpu: median_duration(reports.iter().filter_map(|r| r.loader_cpu_per_request())),
    })
}

/// [`ratio`] formatted for the goal lines, or "not measured".
fn ratio_text(samples: &Samples, a: HttpPeer, b: HttpPeer, shape: Shape) -> String {
    ratio(samples, a, b, shape)
        .map(format_ratio)
        .unwrap_or_else(|| "not measured".to_string())
}

/// The median over rounds of `a`'s good requests/s over `b`'s in the same round.
fn ratio(samples: &Samples, a: HttpPeer, b: HttpPeer, shape: Shape) -> Option<f64> {
    ratio_by_round(samples.rounds(a, shape), samples.rounds(b, shape))
}

/// The median over rounds of the good requests/s of the reports `a` over those of `b` in
/// the same round (rounds where either did not run are left out).
pub(super) fn ratio_by_round(ra: &[Option<Report>], rb: &[Option<Report>]) -> Option<f64> {
    let ratios: Vec<f64> = ra
        .iter()
        .zip(rb)
        .filter_map(|(x, y)| match (x, y) {
            (Some(x), Some(y)) if y.good_per_second() > 0.0 => {
                Some(x.good_per_second() / y.good_per_second())
            }
            _ => None,
        })
        .collect();
    (!ratios.is_empty()).then(|| median(&ratios))
}

/// A ratio: `0.81×`, `49×`.
pub(super) fn format_ratio(r: f64) -> String {
    if r >= 10.0 {
        format!("{r:.0}×")
    } else {
        format!("{r:.2}×")
    }
}

/// A reason on one line, fit for a table cell: lines joined, at most 300 characters.
pub fn one_line(reason: &str) -> String {
    let joined = reason
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .collect::<Vec<_>>()
        .join(" / ")
        .replace('|', "/");
    match joined.char_indices().nth(300) {
        Some((i, _)) => format!("{}…", &joined[..i]),
        None => joined,
    }
}

fn shape_name((x, y): Shape) -> String {
    format!("{x}×{y}")
}

/// One section: a title and, per table size, one row per peer, with each row's ratio to
/// bare hyper.
fn section(
    out: &mut String,
    title: &str,
    peers: &[HttpPeer],
    samples: &Samples,
    chosen: &[HttpPeer],
) {
    section_against(
        out,
        title,
        peers,
        samples,
        chosen,
        HttpPeer::Hyper,
        "bare hyper",
    );
}

/// One section, with each row's ratio to `baseline` (`called` in the column's title).
fn section_against(
    out: &mut String,
    title: &str,
    peers: &[HttpPeer],
    samples: &Samples,
    chosen: &[HttpPeer],
    baseline: HttpPeer,
    called: &str,
) {
    let _ = writeln!(out, "**{title}**\n");
    let _ = writeln!(
        out,
        "| request | server | median | worst | best | non-2xx | socket errors | p99 latency | server CPU per request | × {called} |",
    );
    out.push_str("|---|---|--:|--:|--:|--:|--:|--:|--:|--:|\n");
    for shape in SHAPES {
        let mut first = true;
        for &peer in peers.iter().filter(|p| chosen.contains(p)) {
            let request = if first {
                format!("`{}`", peer.path(shape.0, shape.1))
            } else {
                String::new()
            };
            first = false;
            let Some(r) = row(samples.rounds(peer, shape)) else {
                let why = samples
                    .missing_reason(peer)
                    .map(one_line)
                    .unwrap_or_else(|| "not run".to_string());
                let _ = writeln!(
                    out,
                    "| {request} | {} | not measured: {why} | | | | | | | |",
                    peer.label(),
                );
                continue;
            };
            let (mid, worst, best) = r.spread();
            let vs = match peer {
                p if p == baseline => "1.00×".to_string(),
                _ => ratio(samples, peer, baseline, shape)
                    .map(format_ratio)
                    .unwrap_or_else(|| "–".to_string()),
            };
            let _ = writeln!(
                out,
                "| {request} | {} | {} | {} | {} | {} | {} | {} | {} | {vs} |",
                peer.label(),
                format_rate(mid),
                format_rate(worst),
                format_rate(best),
                r.non_2xx,
                r.socket_errors,
                r.p99.map(format_latency).unwrap_or_else(|| "?".to_string()),
                r.cpu.map(format_latency).unwrap_or_else(|| "?".to_string()),
            );
        }
    }
    out.push('\n');
}

/// A goal line: the ratio of `a` over `b` at `shape` against `goal`.
fn goal(samples: &Samples, a: HttpPeer, b: HttpPeer, shape: Shape, goal: f64) -> String {
    let Some(r) = ratio(samples, a, b, shape) else {
        let missing = [a, b]
            .into_iter()
            .find_map(|p| samples.missing_reason(p).map(|why| (p, why)));
        return match missing {
            Some((p, why)) => format!(
                "not measured ({} could not run: {})",
                p.key(),
                one_line(why)
            ),
            None => "not measured".to_string(),
        };
    };
    let mut text = against_goal(r, goal, &format!(" at {}", shape_name(shape)));
    let bad: u64 = [a, b]
        .iter()
        .filter_map(|&p| row(samples.rounds(p, shape)))
        .map(|r| r.non_2xx + r.socket_errors)
        .sum();
    if bad > 0 {
        let _ = write!(
            text,
            " ({bad} non-2xx responses or socket errors, not counted as answered)"
        );
    }
    text
}

/// A measured ratio against its goal: `**0.81×** at 8×8 (goal 0.80×): met` (`at` is what
/// follows the ratio, such as ` at 8×8`, or nothing).
pub(super) fn against_goal(r: f64, goal: f64, at: &str) -> String {
    let verdict = if r >= goal { "met" } else { "**not met**" };
    format!(
        "**{}**{at} (goal {}): {verdict}",
        format_ratio(r),
        format_ratio(goal)
    )
}

/// Lists the runs of `peers` that failed and the runs after which the server had ended,
/// if any.
fn notes_on_runs(out: &mut String, samples: &Samples, peers: &[HttpPeer]) {
    let failures: Vec<_> = samples
        .failures
        .iter()
        .filter(|(p, ..)| peers.contains(p))
        .collect();
    if !failures.is_empty() {
        out.push_str("Runs that failed (left out of the figures):\n\n");
        for (peer, shape, round, reason) in failures {
            let _ = writeln!(
                out,
                "* {} at {}, round {}: {}",
                peer.key(),
                shape_name(*shape),
                round + 1,
                one_line(reason)
            );
        }
        out.push('\n');
    }
    let mut ended = Vec::new();
    for ((peer, shape), rounds) in samples
        .series
        .rows
        .iter()
        .filter(|((p, _), _)| peers.contains(p))
    {
        let n = rounds.iter().flatten().filter(|r| r.server_ended).count();
        if n > 0 {
            ended.push(format!("{} at {} ({n})", peer.key(), shape_name(*shape)));
        }
    }
    if !ended.is_empty() {
        let _ = writeln!(
            out,
            "Runs after which the server had ended as wrk closed its connections (wrk saw \
             no socket error, so the runs count): {}.\n",
            ended.join(", ")
        );
    }
}

/// What the columns of the tables mean.
const COLUMNS: &str = "\n*median*, *worst*, *best*: answered requests per second (2xx only: responses with \
         another status are left out of the figure and counted under *non-2xx*). *socket \
         errors*: wrk's connect, read, write errors and time-outs, summed over the runs, as \
         is *non-2xx*. *p99 latency*: the median over the runs of wrk's 99th percentile. *server CPU per \
         request*: the server's CPU time (user + system, all threads of its process and of \
         the worker processes it started, from `/proc`) during the measured run over the responses it gave, median over the \
         runs; wrk shares the same 2 cores, so this is the steadier figure on a busy \
         machine. \
         *× bare hyper*: the median over rounds of the row's requests/s over bare hyper's in \
         the same round. Rows of the same server in several tables of one suite run are the \
         same measurements.\n";

/// [`COLUMNS`] up to the ratio column, which each table explains itself.
fn columns_before_ratio() -> &'static str {
    &COLUMNS[..COLUMNS.find(" *× bare hyper*").unwrap_or(COLUMNS.len())]
}

/// The paragraph above the tables: where, when, with what, and how long.
fn header(notes: &Notes) -> String {
    let m = &notes.machine;
    let mut out = String::new();
    let _ = write!(
        out,
        "Measured {} on {} (nproc {}; {}; 1-minute load average {} at the start, {} at the \
         end), {}; {}; {}; {} (strata at {}). {} run{} per row, each against a fresh server \
         process: `wrk {}` after a {} s warm-up, runs interleaved (every other round in reverse \
         order). The HTTP benchmarks took {:.0} s.\n\n",
        m.date,
        m.cpu,
        m.nproc,
        m.kernel,
        m.load.0,
        m.load.1,
        m.rustc,
        crate_versions(&["hyper", "tokio", "serde_json"]),
        notes.wrk,
        notes.python,
        m.strata_revision,
        m.runs,
        if m.runs == 1 { "" } else { "s" },
        wrk::command_line("URL", notes.seconds)[..4].join(" "),
        WARMUP_SECONDS,
        m.wall.as_secs_f64()
    );
    out
}

/// The Markdown report with the notes above the tables and the goals below.
pub fn table(samples: &Samples, notes: &Notes, chosen: &[HttpPeer]) -> String {
    let mut out = header(notes);
    section(
        &mut out,
        "HTTP front cost (issue 4): `server_1` against bare hyper",
        &[HttpPeer::Hyper, HttpPeer::Server1],
        samples,
        chosen,
    );
    section(
        &mut out,
        "Spool (issue 5): `server_4` against bare hyper, bare hyper with a thread pool, and \
         the Python layer-cake spool",
        &[
            HttpPeer::Hyper,
            HttpPeer::HyperThreads,
            HttpPeer::Server4,
            HttpPeer::LayerCake,
        ],
        samples,
        chosen,
    );
    notes_on_runs(&mut out, samples, &HttpPeer::HTTP);
    let (small, large) = (SHAPES[0], SHAPES[1]);
    out.push_str("Goals (each ratio is the median over rounds of the two servers' requests/s measured in the same round):\n\n");
    let _ = writeln!(
        out,
        "* issue 4, `server_1` against bare hyper: {}; {}",
        goal(
            samples,
            HttpPeer::Server1,
            HttpPeer::Hyper,
            small,
            FRONT_GOAL
        ),
        goal(
            samples,
            HttpPeer::Server1,
            HttpPeer::Hyper,
            large,
            FRONT_GOAL
        )
    );
    let _ = writeln!(
        out,
        "* issue 5, `server_4` against the layer-cake spool: {} (at {}: {})",
        goal(
            samples,
            HttpPeer::Server4,
            HttpPeer::LayerCake,
            small,
            PYTHON_GOAL
        ),
        shape_name(large),
        ratio_text(samples, HttpPeer::Server4, HttpPeer::LayerCake, large)
    );
    let _ = writeln!(
        out,
        "* issue 5, `server_4` against bare hyper: {} (at {}: {})",
        goal(
            samples,
            HttpPeer::Server4,
            HttpPeer::Hyper,
            small,
            SPOOL_GOAL
        ),
        shape_name(large),
        ratio_text(samples, HttpPeer::Server4, HttpPeer::Hyper, large)
    );
    floor_lines(
        &mut out,
        samples,
        HttpPeer::HyperThreads,
        HttpPeer::Server4,
        ("thread", "threads"),
    );
    out.push_str(COLUMNS);
    out
}

/// The lines that set a spool against its floor (`floor`, bare hyper with a pool of the
/// same kind): how far the floor itself is from bare hyper, and the spool's ratio to it.
fn floor_lines(
    out: &mut String,
    samples: &Samples,
    floor: HttpPeer,
    spool: HttpPeer,
    (kind, kinds): (&str, &str),
) {
    let (small, large) = (SHAPES[0], SHAPES[1]);
    let _ = writeln!(
        out,
        "* the floor of a {kind} pool here — bare hyper handing each table to one of 8 worker \
         {kinds} (`{}`) — against bare hyper: {} at {}, {} at {}",
        floor.key(),
        ratio_text(samples, floor, HttpPeer::Hyper, small),
        shape_name(small),
        ratio_text(samples, floor, HttpPeer::Hyper, large),
        shape_name(large)
    );
    let _ = writeln!(
        out,
        "* `{}` against that floor (what strata costs on top of the pool itself): {} at {}, \
         {} at {}",
        spool.key(),
        ratio_text(samples, spool, floor, small),
        shape_name(small),
        ratio_text(samples, spool, floor, large),
        shape_name(large)
    );
}

/// The process spool's Markdown report: `server_8` against `server_4`, bare hyper and
/// the layer-cake process spool, with the goal of issue 6 below.
pub fn process_table(samples: &Samples, notes: &Notes, chosen: &[HttpPeer]) -> String {
    let mut out = header(notes);
    section(
        &mut out,
        "Process spool (issue 6): `server_8` against `server_4`, bare hyper and the Python \
         layer-cake process spool",
        &HttpPeer::PROCESS,
        samples,
        chosen,
    );
    notes_on_runs(&mut out, samples, &HttpPeer::PROCESS);
    let (small, large) = (SHAPES[0], SHAPES[1]);
    out.push_str("Goal and ratios (each ratio is the median over rounds of the two servers' requests/s measured in the same round):\n\n");
    let _ = writeln!(
        out,
        "* issue 6, `server_8` against bare hyper: {} (at {}: {})",
        goal(
            samples,
            HttpPeer::Server8,
            HttpPeer::Hyper,
            small,
            PROCESS_GOAL
        ),
        shape_name(large),
        ratio_text(samples, HttpPeer::Server8, HttpPeer::Hyper, large)
    );
    for (other, what) in [
        (HttpPeer::Server4, "`server_4` (processes against threads)"),
        (HttpPeer::LayerCakeProcesses, "the layer-cake process spool"),
    ] {
        let _ = writeln!(
            out,
            "* `server_8` against {what}: {} at {}, {} at {}",
            ratio_text(samples, HttpPeer::Server8, other, small),
            shape_name(small),
            ratio_text(samples, HttpPeer::Server8, other, large),
            shape_name(large)
        );
    }
    floor_lines(
        &mut out,
        samples,
        HttpPeer::HyperProcesses,
        HttpPeer::Server8,
        ("process", "processes"),
    );
    out.push_str(COLUMNS);
    out
}

/// The goal of issue 16: `server_10` at least this fraction of `server_8`'s requests/s.
const NAMED_GOAL: f64 = 0.9;

/// The marker line after which the README's table of named workers starts.
pub const NAMED_BEGIN: &str = "<!-- named-results:begin -->";
/// The marker line before which the README's table of named workers ends.
pub const NAMED_END: &str = "<!-- named-results:end -->";

/// The Markdown report of workers found by name (issue 16): `server_10` against
/// `server_8`, and the Python equivalents, with the goal below.
pub fn named_table(samples: &Samples, notes: &Notes, chosen: &[HttpPeer]) -> String {
    let mut out = header(notes);
    section_against(
        &mut out,
        "Workers found by name (issue 16): `server_10` with 8 named workers against \
         `server_8`, and the Python layer-cake equivalents",
        &HttpPeer::DIRECTORY,
        samples,
        chosen,
        HttpPeer::Server8,
        "`server_8`",
    );
    notes_on_runs(&mut out, samples, &HttpPeer::DIRECTORY);
    let (small, large) = (SHAPES[0], SHAPES[1]);
    out.push_str("Goal and ratios (each ratio is the median over rounds of the two servers' requests/s measured in the same round):\n\n");
    let _ = writeln!(
        out,
        "* issue 16, `server_10` against `server_8`: {} (at {}: {})",
        goal(
            samples,
            HttpPeer::Server10,
            HttpPeer::Server8,
            small,
            NAMED_GOAL
        ),
        shape_name(large),
        ratio_text(samples, HttpPeer::Server10, HttpPeer::Server8, large)
    );
    for (a, b, what) in [
        (
            HttpPeer::Server10,
            HttpPeer::LayerCakeNamed,
            "`server_10` against the layer-cake spool fed by name",
        ),
        (
            HttpPeer::LayerCakeNamed,
            HttpPeer::LayerCakeProcesses,
            "the layer-cake spool fed by name against its process spool (what finding \
             workers by name costs the Python system)",
        ),
    ] {
        let _ = writeln!(
            out,
            "* {what}: {} at {}, {} at {}",
            ratio_text(samples, a, b, small),
            shape_name(small),
            ratio_text(samples, a, b, large),
            shape_name(large)
        );
    }
    out.push_str(columns_before_ratio());
    out.push_str(
        " For the servers fed by name, it also counts their 8 worker processes, which the \
         harness starts on their own once the server listens, and, for the Python one, its \
         `host-cake`; `server_10` serves the host directory itself (the first process that \
         needs it does, as on the teaching path). *× `server_8`*: the median over rounds \
         of the row's requests/s over `server_8`'s in the same round. Rows of the same \
         server in several tables of one suite run are the same measurements.\n",
    );
    out
}

/// The columns of a report in the samples files, after those naming its row.
pub(super) const TSV_FIELDS: &str = "requests\tseconds\tnon_2xx\tsocket_errors\tgood_per_second\tp50_us\tp99_us\tserver_cpu_us_per_request\tloader_cpu_us_per_request";

/// A report's fields in the samples files, in the order of [`TSV_FIELDS`].
pub(super) fn tsv_fields(r: &Report) -> String {
    let us = |d: Option<Duration>| {
        d.map(|d| format!("{:.0}", d.as_secs_f64() * 1e6))
            .unwrap_or_default()
    };
    format!(
        "{}\t{:.3}\t{}\t{}\t{:.1}\t{}\t{}\t{}\t{}",
        r.requests,
        r.elapsed.as_secs_f64(),
        r.non_2xx,
        r.socket_errors,
        r.good_per_second(),
        us(r.p50),
        us(r.p99),
        us(r.cpu_per_request()),
        us(r.loader_cpu_per_request())
    )
}

/// Keeps every wrk report in `bench/target/results/<timestamp>-http.tsv`; a failure to
/// write is only reported.
pub fn save_samples(samples: &Samples, notes: &Notes) {
    let mut text = format!("peer\tx\ty\tround\t{TSV_FIELDS}\n");
    for ((peer, (x, y)), rounds) in &samples.series.rows {
        for (i, r) in rounds.iter().enumerate() {
            let Some(r) = r else { continue };
            let _ = writeln!(
                text,
                "{}\t{x}\t{y}\t{}\t{}",
                peer.key(),
                i + 1,
                tsv_fields(r)
            );
        }
    }
    report::save_tsv(
        &format!("{}-http.tsv", notes.machine.stamp),
        &text,
        "HTTP samples",
    );
}

#[cfg(test)]
mod tests {
    use super::*;

    fn report(requests: u64, non_2xx: u64) -> Report {
        Report {
            requests,
            elapsed: Duration::from_secs(1),
            non_2xx,
            ..Default::default()
        }
    }

    #[test]
    fn ratios_are_taken_round_by_round() {
        let mut s = Samples::default();
        let shape = SHAPES[0];
        // Round 1: 800/1000; round 2: 1800/2000; round 3: 500/1000.
        for (round, (a, b)) in [(800, 1000), (1800, 2000), (500, 1000)]
            .into_iter()
            .enumerate()
        {
            s.record(HttpPeer::Server1, shape, round, report(a, 0));
            s.record(HttpPeer::Hyper, shape, round, report(b, 0));
        }
        let r = ratio(&s, HttpPeer::Server1, HttpPeer::Hyper, shape).unwrap();
        assert!((r - 0.8).abs() < 1e-9, "median of 0.8, 0.9, 0.5");
        assert!(goal(&s, HttpPeer::Server1, HttpPeer::Hyper, shape, 0.8).contains("met"));
        assert!(goal(&s, HttpPeer::Server1, HttpPeer::Hyper, shape, 0.85).contains("not met"));
    }

    #[test]
    fn bad_statuses_do_not_count_as_answers() {
        let mut s = Samples::default();
        let shape = SHAPES[0];
        s.record(HttpPeer::Server4, shape, 0, report(10_000, 9_000));
        s.record(HttpPeer::Hyper, shape, 0, report(2_000, 0));
        let r = ratio(&s, HttpPeer::Server4, HttpPeer::Hyper, shape).unwrap();
        assert!((r - 0.5).abs() < 1e-9);
        let line = goal(&s, HttpPeer::Server4, HttpPeer::Hyper, shape, 0.8);
        assert!(line.contains("not met") && line.contains("9000 non-2xx"));
    }

    #[test]
    fn a_missing_peer_is_said_so() {
        let mut s = Samples::default();
        s.record(HttpPeer::Server4, SHAPES[0], 0, report(10, 0));
        s.missing
            .push((HttpPeer::LayerCake, "pip could not install it".into()));
        let line = goal(&s, HttpPeer::Server4, HttpPeer::LayerCake, SHAPES[0], 50.0);
        assert!(line.contains("layer-cake could not run: pip could not install it"));
        assert_eq!(one_line("a\n  b | c\n\n"), "a / b / c");
        assert_eq!(one_line(&"x".repeat(400)).chars().count(), 301);
    }

    #[test]
    fn failed_and_ended_runs_are_listed() {
        let mut s = Samples::default();
        let mut ended = report(10, 0);
        ended.server_ended = true;
        s.record(HttpPeer::LayerCake, SHAPES[1], 0, ended);
        s.failures.push((
            HttpPeer::LayerCake,
            SHAPES[1],
            1,
            "it died\nBroken pipe".into(),
        ));
        let mut out = String::new();
        notes_on_runs(&mut out, &s, &HttpPeer::HTTP);
        assert!(out.contains("* layer-cake at 100×100, round 2: it died / Broken pipe"));
        assert!(out.contains("layer-cake at 100×100 (1)"));
        let mut none = String::new();
        notes_on_runs(&mut none, &Samples::default(), &HttpPeer::HTTP);
        assert!(none.is_empty());
        // The process table lists only its own servers' runs.
        let mut other = String::new();
        notes_on_runs(&mut other, &s, &HttpPeer::PROCESS);
        assert!(other.is_empty());
    }

    #[test]
    fn figures_are_formatted() {
        assert_eq!(format_rate(25_276.8), "25.3 k req/s");
        assert_eq!(format_rate(1_234.0), "1.23 k req/s");
        assert_eq!(format_rate(801.7), "802 req/s");
        assert_eq!(format_rate(3.24), "3.2 req/s");
        assert_eq!(format_latency(Duration::from_micros(820)), "820 µs");
        assert_eq!(format_latency(Duration::from_micros(3120)), "3.1 ms");
        assert_eq!(format_ratio(0.8123), "0.81×");
        assert_eq!(format_ratio(61.4), "61×");
    }
}
