//! The load client benchmark (`--bench load`, issue 7): `strata load` against `wrk`, both
//! with 16 connections, against the same servers (bare hyper and strata's `server_1`, light
//! servers, so the client's own cost matters most) in the same suite run.
//!
//! Every measurement is one loader against a fresh server, measured as the HTTP benchmarks
//! measure (`super::measure`: readiness, table checks, a warm-up run of the same loader,
//! the measured run, the server stopped). Rounds are interleaved, every other round in
//! reverse order, so the two loaders take turns going first against each server; the
//! ratio of `strata load`'s requests/s over wrk's is taken within a round, against the
//! same server, and its median over rounds reported against the goal.

use std::fmt::Write as _;
use std::time::Instant;

use super::loader::Loader;
use super::table::{self, format_latency, format_rate, format_ratio, Row};
use super::wrk;
use super::{strata_load, ByRound, HttpPeer, Shape, SHAPES, WARMUP_SECONDS};
use crate::report::{self, crate_versions, Machine};
use crate::suite::Options;

/// The marker line after which the README's load client table starts.
pub const BEGIN: &str = "<!-- load-results:begin -->";
/// The marker line before which the README's load client table ends.
pub const END: &str = "<!-- load-results:end -->";

/// The goal of issue 7: `strata load` at least this fraction of wrk's request rate.
pub const GOAL: f64 = 0.9;

/// The servers loaded, in report order.
pub const SERVERS: [HttpPeer; 2] = [HttpPeer::Hyper, HttpPeer::Server1];

/// The loaders, in the order of the first round: the baseline first.
const LOADERS: [Loader; 2] = [Loader::Wrk, Loader::StrataLoad];

/// The request: an 8-by-8 table, where the HTTP path costs more than the table.
const SHAPE: Shape = SHAPES[0];

/// The servers to load: [`SERVERS`] less any left out with `--peer`; none when the
/// benchmark was not chosen.
pub fn chosen_peers(options: &Options) -> Vec<HttpPeer> {
    if !options.load {
        return Vec::new();
    }
    SERVERS
        .into_iter()
        .filter(|p| options.http_peers.contains(p))
        .collect()
}

/// Every report of a run of this benchmark, by (server, loader) and round.
type Samples = ByRound<(HttpPeer, Loader)>;

/// Runs the benchmark, prints its table and rewrites it in the README.
pub fn run(options: &Options) -> Result<(), String> {
    let chosen = chosen_peers(options);
    for peer in &chosen {
        peer.available()?;
    }
    strata_load::available()?;
    let began = Instant::now();
    let load_at_start = report::load_average();
    let seconds = super::seconds(options);
    let plan: Vec<(HttpPeer, Loader)> = chosen
        .iter()
        .flat_map(|&p| LOADERS.map(|l| (p, l)))
        .collect();
    let mut samples = Samples::default();
    for round in 0..options.runs {
        let order: Vec<(HttpPeer, Loader)> = if round % 2 == 0 {
            plan.clone()
        } else {
            plan.iter().rev().copied().collect()
        };
        for (peer, loader) in order {
            let report = super::measure(peer, SHAPE, round, seconds, loader)?;
            eprintln!(
                "[run {}/{}] load {:<8} {:<11} {:>10.0} req/s  errors {}  p99 {}  \
                 loader CPU/request {}",
                round + 1,
                options.runs,
                peer.key(),
                loader.key(),
                report.good_per_second(),
                report.non_2xx + report.socket_errors,
                optional(report.p99),
                optional(report.loader_cpu_per_request()),
            );
            samples.record((peer, loader), round, report);
        }
    }
    let mut machine = Machine::detect(began.elapsed(), options, load_at_start);
    // `--quick` shortens the runs, not the sizes; the notes give the runs' length.
    machine.quick = false;
    machine.versions = format!(
        "{}; {}; {}",
        crate_versions(&["hyper", "tokio", "serde_json"]),
        wrk::version().unwrap_or_else(|| "wrk ?".to_string()),
        strata_load::version().unwrap_or_else(|| "strata ?".to_string()),
    );
    let text = table_text(&samples, &machine, seconds, &chosen);
    println!("{text}");
    save_samples(&samples, &machine);
    if let Some(path) = &options.readme {
        report::rewrite_between(path, BEGIN, END, &text)?;
        eprintln!("load client results table rewritten in {}", path.display());
    }
    Ok(())
}

/// A latency or CPU time, or `?`.
fn optional(d: Option<std::time::Duration>) -> String {
    d.map(format_latency).unwrap_or_else(|| "?".to_string())
}

/// A server's label without the HTTP benchmarks' "(baseline)": here wrk is the baseline.
fn server_label(peer: HttpPeer) -> &'static str {
    peer.label().trim_end_matches(" (baseline)")
}

/// The row of one server and loader, if it ran.
fn row_of(samples: &Samples, peer: HttpPeer, loader: Loader) -> Option<Row> {
    table::row(samples.rounds(&(peer, loader)))
}

/// The median over rounds of `strata load`'s requests/s over wrk's against `peer`.
fn ratio(samples: &Samples, peer: HttpPeer) -> Option<f64> {
    table::ratio_by_round(
        samples.rounds(&(peer, Loader::StrataLoad)),
        samples.rounds(&(peer, Loader::Wrk)),
    )
}

/// Failed requests of a row, summed over its runs.
fn errors(r: &Row) -> u64 {
    r.non_2xx + r.socket_errors
}

/// What the columns mean.
const COLUMNS: &str = "*median*, *worst*, *best*: good answers per second, as each loader \
     counts them: wrk's 2xx and 3xx responses over its measured span; `strata load`'s `ok` \
     answers (a 2xx whose body is a table of the asked size) over its `elapsed_s`. *errors*: \
     summed over the runs: wrk's non-2xx responses and socket errors; every request \
     `strata load` counted as failed (connect, timeout, status, validation, busy, io). The \
     goal needs none. *p99 latency*: the median over the runs of each loader's own 99th \
     percentile (wrk's `--latency` distribution; `strata load`'s histogram), each measured \
     by its own client, so compare them with care. *loader CPU per request*: the loader's \
     CPU time (user + system, all its threads, over its whole run including start-up, from \
     `getrusage` once it has ended) over the answers it received, median over the runs; the \
     loader shares the 2 cores with the server, so a client that costs more leaves the \
     server less. *× wrk*: the median over rounds of `strata load`'s requests/s over wrk's \
     against the same server in the same round.\n";

/// The Markdown report: the notes, the table, the goal and what the columns mean.
fn table_text(samples: &Samples, machine: &Machine, seconds: u64, chosen: &[HttpPeer]) -> String {
    let each = format!(
        "each against a fresh server process: a {WARMUP_SECONDS} s warm-up run of the loader, \
         then its measured run of {seconds} s (`wrk {}`; `strata load {}`), runs interleaved \
         (every other round in reverse order, so the loaders take turns going first)",
        wrk::command_line("URL", seconds).join(" "),
        strata_load::command_line("URL", seconds)[1..].join(" "),
    );
    let mut out = report::notes(machine, &each, "The load client benchmark");
    let (x, y) = SHAPE;
    let _ = writeln!(
        out,
        "**Load client (issue 7): `strata load` against `wrk`, {} connections, `GET {}`**\n",
        wrk::CONNECTIONS,
        HttpPeer::Hyper.path(x, y)
    );
    out.push_str(
        "| server | loader | median | worst | best | errors | p99 latency | loader CPU per request | × wrk |\n",
    );
    out.push_str("|---|---|--:|--:|--:|--:|--:|--:|--:|\n");
    for &peer in chosen {
        for (i, loader) in LOADERS.into_iter().enumerate() {
            let server = if i == 0 { server_label(peer) } else { "" };
            let Some(r) = row_of(samples, peer, loader) else {
                let _ = writeln!(
                    out,
                    "| {server} | {} | not measured | | | | | | |",
                    loader.label()
                );
                continue;
            };
            let (mid, worst, best) = r.spread();
            let vs = match loader {
                Loader::Wrk => "1.00×".to_string(),
                Loader::StrataLoad => ratio(samples, peer)
                    .map(format_ratio)
                    .unwrap_or_else(|| "–".to_string()),
            };
            let errors = match errors(&r) {
                0 => "0".to_string(),
                n => format!("**{n}**"),
            };
            let _ = writeln!(
                out,
                "| {server} | {} | {} | {} | {} | {errors} | {} | {} | {vs} |",
                loader.label(),
                format_rate(mid),
                format_rate(worst),
                format_rate(best),
                optional(r.p99),
                optional(r.loader_cpu),
            );
        }
    }
    let _ = writeln!(
        out,
        "\nGoal (issue 7): `strata load` at least {} wrk's request rate against the same \
         server, with no failed request (each ratio is the median over rounds of the two \
         loaders' requests/s against the same server in the same round):\n",
        format_ratio(GOAL)
    );
    for &peer in chosen {
        let line = match ratio(samples, peer) {
            Some(r) => {
                let mut text = table::against_goal(r, GOAL, "");
                let failed = row_of(samples, peer, Loader::StrataLoad)
                    .map(|r| errors(&r))
                    .unwrap_or(0);
                if failed > 0 {
                    let _ = write!(
                        text,
                        "; but `strata load` counted **{failed} failed requests**"
                    );
                }
                text
            }
            None => "not measured".to_string(),
        };
        let _ = writeln!(out, "* against {}: {line}", server_label(peer));
    }
    out.push('\n');
    out.push_str(COLUMNS);
    out
}

/// Keeps every report in `bench/target/results/load-<timestamp>.tsv`.
fn save_samples(samples: &Samples, machine: &Machine) {
    let mut text = format!("peer\tloader\tround\t{}\n", table::TSV_FIELDS);
    for ((peer, loader), rounds) in &samples.rows {
        for (i, r) in rounds.iter().enumerate() {
            let Some(r) = r else { continue };
            let _ = writeln!(
                text,
                "{}\t{}\t{}\t{}",
                peer.key(),
                loader.key(),
                i + 1,
                table::tsv_fields(r)
            );
        }
    }
    report::save_tsv(
        &format!("load-{}.tsv", machine.stamp),
        &text,
        "load client samples",
    );
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    /// A report of `good` answers per second over one second, with `failed` failed ones.
    fn report_of(good: u64, failed: u64) -> wrk::Report {
        wrk::Report {
            requests: good + failed,
            elapsed: Duration::from_secs(1),
            non_2xx: failed,
            ..Default::default()
        }
    }

    fn machine() -> Machine {
        Machine {
            nproc: "2".into(),
            cpu: "a CPU".into(),
            kernel: "Linux".into(),
            rustc: "rustc".into(),
            date: "today".into(),
            stamp: "t".into(),
            runs: 3,
            quick: false,
            wall: Duration::from_secs(60),
            versions: "versions".into(),
            strata_revision: "abc".into(),
            load: ("1".into(), "2".into()),
        }
    }

    #[test]
    fn ratios_are_strata_load_over_wrk_round_by_round() {
        let mut s = Samples::default();
        // Against hyper: 0.8, 1.0, 0.95 -> median 0.95 (met).
        for (round, (w, l)) in [(1000, 800), (2000, 2000), (1000, 950)]
            .into_iter()
            .enumerate()
        {
            s.record((HttpPeer::Hyper, Loader::Wrk), round, report_of(w, 0));
            s.record(
                (HttpPeer::Hyper, Loader::StrataLoad),
                round,
                report_of(l, 0),
            );
        }
        // Against server_1: 0.5 in the one round, with failures.
        s.record((HttpPeer::Server1, Loader::Wrk), 0, report_of(1000, 0));
        s.record(
            (HttpPeer::Server1, Loader::StrataLoad),
            0,
            report_of(500, 7),
        );
        assert!((ratio(&s, HttpPeer::Hyper).unwrap() - 0.95).abs() < 1e-9);
        let text = table_text(&s, &machine(), 5, &SERVERS);
        assert!(text.contains("* against bare hyper + tokio: **0.95×** (goal 0.90×): met"));
        assert!(text.contains(
            "* against strata `server_1` (answers inline): **0.50×** (goal 0.90×): **not met**; \
             but `strata load` counted **7 failed requests**"
        ));
        assert!(
            text.contains("| **7** |"),
            "failures are shown in the table"
        );
        assert!(text.contains("--clients 16 --requests 0 --duration 5s --validate table"));
        assert!(!text.contains("(baseline) |"), "wrk is the baseline here");
    }

    #[test]
    fn a_server_left_out_is_not_in_the_table() {
        let mut s = Samples::default();
        s.record((HttpPeer::Server1, Loader::Wrk), 0, report_of(10, 0));
        let text = table_text(&s, &machine(), 2, &[HttpPeer::Server1]);
        assert!(!text.contains("bare hyper"));
        assert!(text.contains(
            "|  | `strata load --clients 16 --requests 0 --validate table` | not measured |"
        ));
        assert!(text.contains("* against strata `server_1` (answers inline): not measured"));
    }
}
