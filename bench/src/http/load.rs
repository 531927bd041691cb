//! The load client benchmark (`--bench load`, issues 7 and 23): `strata load` against `wrk`
//! and `oha`, all with 16 connections, against the same servers (bare hyper and strata's
//! `server_1`, light servers, so the client's own cost matters most; and bare hyper over
//! HTTPS, its TLS listener with a certificate made for the run) in the same suite run.
//!
//! Every measurement is one loader against a fresh server, measured as the HTTP benchmarks
//! measure (`super::measure`: readiness, table checks, a warm-up run of the same loader,
//! the measured run, the server stopped). Rounds are interleaved, every other round in
//! reverse order, so the loaders take turns going first against each server; the ratio of
//! `strata load`'s requests/s over the faster peer's (wrk or oha, whichever was faster in
//! that round) is taken within a round, against the same server, and its median over
//! rounds reported against the goal.

use std::fmt::Write as _;
use std::time::Instant;

use super::loader::Loader;
use super::table::{self, format_latency, format_rate, format_ratio, Row};
use super::wrk;
use super::{oha, strata_load, tls, ByRound, HttpPeer, Shape, SHAPES, WARMUP_SECONDS};
use crate::report::{self, crate_versions, Machine};
use crate::suite::Options;

/// The marker line after which the README's load client table starts.
pub const BEGIN: &str = "<!-- load-results:begin -->";
/// The marker line before which the README's load client table ends.
pub const END: &str = "<!-- load-results:end -->";

/// The goal of issue 23: `strata load` at least this fraction of the faster peer's request
/// rate (wrk's or oha's).
pub const GOAL: f64 = 1.0;

/// A server as loaded: which one, and whether over HTTPS.
pub type Target = (HttpPeer, bool);

/// The servers loaded, in report order (only bare hyper has a TLS listener).
pub const SERVERS: [Target; 3] = [
    (HttpPeer::Hyper, false),
    (HttpPeer::Server1, false),
    (HttpPeer::Hyper, true),
];

/// The loaders, in the order of the first round: the peers first.
const LOADERS: [Loader; 3] = [Loader::Wrk, Loader::Oha, Loader::StrataLoad];

/// The request: an 8-by-8 table, where the HTTP path costs more than the table.
const SHAPE: Shape = SHAPES[0];

/// The servers to load: [`SERVERS`] less any left out with `--peer`; none when the
/// benchmark was not chosen.
pub fn chosen_peers(options: &Options) -> Vec<Target> {
    if !options.load {
        return Vec::new();
    }
    SERVERS
        .into_iter()
        .filter(|(p, _)| options.http_peers.contains(p))
        .collect()
}

/// Every report of a run of this benchmark, by (server, loader) and round.
type Samples = ByRound<(Target, Loader)>;

/// Runs the benchmark, prints its table and rewrites it in the README.
pub fn run(options: &Options) -> Result<(), String> {
    let chosen = chosen_peers(options);
    for (peer, _) in &chosen {
        peer.available()?;
    }
    strata_load::available()?;
    if chosen.iter().any(|&(_, over_tls)| over_tls) {
        tls::certificates()?;
    }
    let began = Instant::now();
    let load_at_start = report::load_average();
    let seconds = super::seconds(options);
    let plan: Vec<(Target, Loader)> = chosen
        .iter()
        .flat_map(|&p| LOADERS.map(|l| (p, l)))
        .collect();
    let mut samples = Samples::default();
    for round in 0..options.runs {
        let order: Vec<(Target, Loader)> = if round % 2 == 0 {
            plan.clone()
        } else {
            plan.iter().rev().copied().collect()
        };
        for ((peer, over_tls), loader) in order {
            let report = super::measure_over(peer, SHAPE, round, seconds, loader, over_tls)?;
            eprintln!(
                "[run {}/{}] load {:<12} {:<11} {:>10.0} req/s  errors {}  p99 {}  \
                 loader CPU/request {}",
                round + 1,
                options.runs,
                target_key((peer, over_tls)),
                loader.key(),
                report.good_per_second(),
                report.non_2xx + report.socket_errors,
                optional(report.p99),
                optional(report.loader_cpu_per_request()),
            );
            samples.record(((peer, over_tls), loader), round, report);
        }
    }
    let mut machine = Machine::detect(began.elapsed(), options, load_at_start);
    // `--quick` shortens the runs, not the sizes; the notes give the runs' length.
    machine.quick = false;
    machine.versions = format!(
        "{}; {}; {}; {}",
        crate_versions(&["hyper", "tokio", "serde_json", "rustls"]),
        wrk::version().unwrap_or_else(|| "wrk ?".to_string()),
        oha::version().unwrap_or_else(|| "oha ?".to_string()),
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

/// A server's label without the HTTP benchmarks' "(baseline)": here the peers are.
fn server_label((peer, over_tls): Target) -> String {
    let label = peer.label().trim_end_matches(" (baseline)");
    if over_tls {
        format!("{label}, over HTTPS (rustls)")
    } else {
        label.to_string()
    }
}

/// A server's name in progress lines and samples files.
fn target_key((peer, over_tls): Target) -> String {
    if over_tls {
        format!("{}-tls", peer.key())
    } else {
        peer.key().to_string()
    }
}

/// The row of one server and loader, if it ran.
fn row_of(samples: &Samples, target: Target, loader: Loader) -> Option<Row> {
    table::row(samples.rounds(&(target, loader)))
}

/// Round by round, the report of the faster peer (wrk or oha) against `target`.
fn faster_peer(samples: &Samples, target: Target) -> Vec<Option<wrk::Report>> {
    let (a, b) = (
        samples.rounds(&(target, Loader::Wrk)),
        samples.rounds(&(target, Loader::Oha)),
    );
    (0..a.len().max(b.len()))
        .map(
            |i| match (a.get(i).cloned().flatten(), b.get(i).cloned().flatten()) {
                (Some(x), Some(y)) => Some(if x.good_per_second() >= y.good_per_second() {
                    x
                } else {
                    y
                }),
                (x, y) => x.or(y),
            },
        )
        .collect()
}

/// The median over rounds of `strata load`'s requests/s over the faster peer's against
/// `target`.
fn ratio(samples: &Samples, target: Target) -> Option<f64> {
    table::ratio_by_round(
        samples.rounds(&(target, Loader::StrataLoad)),
        &faster_peer(samples, target),
    )
}

/// The median over rounds of `strata load`'s requests/s over one peer's.
fn ratio_to(samples: &Samples, target: Target, peer: Loader) -> Option<f64> {
    table::ratio_by_round(
        samples.rounds(&(target, Loader::StrataLoad)),
        samples.rounds(&(target, peer)),
    )
}

/// Failed requests of a row, summed over its runs.
fn errors(r: &Row) -> u64 {
    r.non_2xx + r.socket_errors
}

/// What the columns mean.
const COLUMNS: &str = "*median*, *worst*, *best*: good answers per second, as each loader \
     counts them: wrk's 2xx and 3xx responses over its measured span; oha's 2xx and 3xx \
     responses over its `summary.total`; `strata load`'s `ok` answers (a 2xx whose body is a \
     table of the asked size) over its `elapsed_s`. *errors*: summed over the runs: wrk's \
     non-2xx responses and socket errors; oha's non-2xx responses and errors (not the \
     requests it aborts at its deadline, which wrk and `strata load` drop uncounted); every \
     request `strata load` counted as failed (connect, timeout, status, validation, busy, \
     io). The goal needs none. *p99 latency*: the median over the runs of each loader's own \
     99th percentile, each measured by its own client, so compare them with care. *loader \
     CPU per request*: the loader's CPU time (user + system, all its threads, over its whole \
     run including start-up, from `getrusage` once it has ended) over the answers it \
     received, median over the runs; the loader shares the 2 cores with the server, so a \
     client that costs more leaves the server less. *× faster peer*: the median over rounds \
     of `strata load`'s requests/s over the faster of wrk and oha in the same round against \
     the same server (in brackets: over each peer alone). Over HTTPS, wrk checks no \
     certificate; oha and `strata load` check it against the run's CA (`--cacert`). All three keep their connections (and so their TLS sessions) for the \
     whole run.\n";

/// The Markdown report: the notes, the table, the goal and what the columns mean.
fn table_text(samples: &Samples, machine: &Machine, seconds: u64, chosen: &[Target]) -> String {
    let each = format!(
        "each against a fresh server process: a {WARMUP_SECONDS} s warm-up run of the loader, \
         then its measured run of {seconds} s (`wrk {}`; `oha {}`; `strata load {}`), runs \
         interleaved (every other round in reverse order, so the loaders take turns going \
         first)",
        wrk::command_line("URL", seconds).join(" "),
        oha::command_line("URL", seconds).join(" "),
        strata_load::command_line("URL", seconds)[1..].join(" "),
    );
    let mut out = report::notes(machine, &each, "The load client benchmark");
    let (x, y) = SHAPE;
    let _ = writeln!(
        out,
        "**Load client (issues 7, 23): `strata load` against `wrk` and `oha`, {} connections, \
         `GET {}`, over HTTP and HTTPS**\n",
        wrk::CONNECTIONS,
        HttpPeer::Hyper.path(x, y)
    );
    out.push_str(
        "| server | loader | median | worst | best | errors | p99 latency | loader CPU per request | × faster peer |\n",
    );
    out.push_str("|---|---|--:|--:|--:|--:|--:|--:|--:|\n");
    for &target in chosen {
        for (i, loader) in LOADERS.into_iter().enumerate() {
            let server = if i == 0 {
                server_label(target)
            } else {
                String::new()
            };
            let Some(r) = row_of(samples, target, loader) else {
                let _ = writeln!(
                    out,
                    "| {server} | {} | not measured | | | | | | |",
                    loader.label()
                );
                continue;
            };
            let (mid, worst, best) = r.spread();
            let vs = match loader {
                Loader::StrataLoad => {
                    let each = |peer| {
                        ratio_to(samples, target, peer)
                            .map(format_ratio)
                            .unwrap_or_else(|| "–".to_string())
                    };
                    match ratio(samples, target) {
                        Some(r) => format!(
                            "{} (wrk {}, oha {})",
                            format_ratio(r),
                            each(Loader::Wrk),
                            each(Loader::Oha)
                        ),
                        None => "–".to_string(),
                    }
                }
                _ => "–".to_string(),
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
        "\nGoal (issue 23): `strata load` at least {} the faster peer's request rate (wrk or \
         oha, whichever was faster in the round) against the same server, with no failed \
         request (each ratio is the median over rounds):\n",
        format_ratio(GOAL)
    );
    for &target in chosen {
        let line = match ratio(samples, target) {
            Some(r) => {
                let mut text = table::against_goal(r, GOAL, "");
                let failed = row_of(samples, target, Loader::StrataLoad)
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
        let _ = writeln!(out, "* against {}: {line}", server_label(target));
    }
    out.push('\n');
    out.push_str(COLUMNS);
    out
}

/// Keeps every report in `bench/target/results/load-<timestamp>.tsv`.
fn save_samples(samples: &Samples, machine: &Machine) {
    let mut text = format!("peer\tloader\tround\t{}\n", table::TSV_FIELDS);
    for ((target, loader), rounds) in &samples.rows {
        for (i, r) in rounds.iter().enumerate() {
            let Some(r) = r else { continue };
            let _ = writeln!(
                text,
                "{}\t{}\t{}\t{}",
                target_key(*target),
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
    fn ratios_are_strata_load_over_the_faster_peer_round_by_round() {
        let mut s = Samples::default();
        let hyper = (HttpPeer::Hyper, false);
        // Against hyper: the faster peer is wrk, then oha, then wrk; strata load's
        // ratios 0.8, 1.0, 1.05 -> median 1.0 (met).
        for (round, (w, o, l)) in [(1000, 900, 800), (1500, 2000, 2000), (1000, 950, 1050)]
            .into_iter()
            .enumerate()
        {
            s.record((hyper, Loader::Wrk), round, report_of(w, 0));
            s.record((hyper, Loader::Oha), round, report_of(o, 0));
            s.record((hyper, Loader::StrataLoad), round, report_of(l, 0));
        }
        // Over HTTPS: 0.5 in the one round, with failures, and no oha.
        let tls = (HttpPeer::Hyper, true);
        s.record((tls, Loader::Wrk), 0, report_of(1000, 0));
        s.record((tls, Loader::StrataLoad), 0, report_of(500, 7));
        assert!((ratio(&s, hyper).unwrap() - 1.0).abs() < 1e-9);
        // Against oha alone: 800/900, 2000/2000, 1050/950 -> median 1.0.
        assert!((ratio_to(&s, hyper, Loader::Oha).unwrap() - 1.0).abs() < 1e-9);
        let text = table_text(&s, &machine(), 5, &SERVERS);
        assert!(text.contains("* against bare hyper + tokio: **1.00×** (goal 1.00×): met"));
        assert!(text.contains(
            "* against bare hyper + tokio, over HTTPS (rustls): **0.50×** (goal 1.00×): **not met**; \
             but `strata load` counted **7 failed requests**"
        ));
        assert!(text.contains("| `oha -c16` | not measured |"), "{text}");
        assert!(
            text.contains("| **7** |"),
            "failures are shown in the table"
        );
        assert!(text.contains("1.00× (wrk 1.05×, oha 1.00×)"), "{text}");
        assert!(text.contains("--clients 16 --requests 0 --duration 5s --validate table"));
        assert!(text.contains("-z 5s -c 16 --no-tui --output-format json URL"));
        assert!(
            !text.contains("(baseline) |"),
            "the peers are the baseline here"
        );
    }

    #[test]
    fn a_server_left_out_is_not_in_the_table() {
        let mut s = Samples::default();
        let server_1 = (HttpPeer::Server1, false);
        s.record((server_1, Loader::Wrk), 0, report_of(10, 0));
        let text = table_text(&s, &machine(), 2, &[server_1]);
        assert!(!text.contains("bare hyper"));
        assert!(text.contains(
            "|  | `strata load --clients 16 --requests 0 --validate table` | not measured |"
        ));
        assert!(text.contains("* against strata `server_1` (answers inline): not measured"));
    }
}
