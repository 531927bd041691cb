//! The parent-child link benchmark (`--bench link`): strata's private link between a
//! parent and its `Process` child against a raw `UnixStream` socket pair between the same
//! two programs.
//!
//! Every sample is one run of `link-parent MODE N` (beside this binary), which starts its
//! own child (`link-child`), warms up with N/10 operations and prints the measured pass's
//! duration. Runs are interleaved, every other run in reverse order, so a slow spell of
//! the shared machine spreads over all rows; the table gives medians, the spread, and
//! each row's time per operation over the raw socket's from the same suite run.

pub mod protocol;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use crate::report::{self, crate_versions, median};
use crate::suite::{self, Options};
use protocol::Mode;

/// The marker line after which the README's link table starts.
pub const BEGIN: &str = "<!-- link-results:begin -->";
/// The marker line before which the README's link table ends.
pub const END: &str = "<!-- link-results:end -->";

/// The goal of issue 6: a strata round trip to a child within this many times the raw
/// socket's.
pub const ROUND_TRIP_GOAL: f64 = 2.0;

/// The rows of the table, in order: the baseline first in each group.
const ROWS: [Mode; 8] = Mode::ALL;

/// N of a mode: full and `--quick`.
fn size(mode: Mode, quick: bool) -> u64 {
    let full = if mode.is_round_trip() {
        20_000
    } else {
        1_000_000
    };
    if quick {
        full / 10
    } else {
        full
    }
}

/// The row's label in the table.
fn label(mode: Mode) -> &'static str {
    match mode {
        Mode::RoundTripRaw | Mode::OneWayRaw => {
            "raw `UnixStream` pair, blocking std I/O at both ends (baseline)"
        }
        Mode::RoundTripTokio | Mode::OneWayTokio => "raw `UnixStream` pair, tokio at both ends",
        Mode::RoundTripStrata | Mode::OneWayStrata => {
            "strata: a machine sends to the `Process` object; the child's top object answers"
        }
        Mode::RoundTripStrataDirect | Mode::OneWayStrataDirect => {
            "strata, sent to the child's top object directly (skips the `Process` object; diagnostic)"
        }
    }
}

/// The baseline of a mode's group.
fn baseline(mode: Mode) -> Mode {
    if mode.is_round_trip() {
        Mode::RoundTripRaw
    } else {
        Mode::OneWayRaw
    }
}

/// `link-parent` and `link-child`, beside this binary (cargo builds them together).
fn parent_program() -> Result<PathBuf, String> {
    let exe = std::env::current_exe().map_err(|e| format!("cannot find this binary: {e}"))?;
    let parent = exe.with_file_name("link-parent");
    let child = exe.with_file_name("link-child");
    for p in [&parent, &child] {
        if !p.is_file() {
            return Err(format!(
                "{} is missing: build the bench crate (`cargo build --release` in bench/; \
                 bench/run does)",
                p.display()
            ));
        }
    }
    Ok(parent)
}

/// Runs `link-parent MODE N` once and gives the measured pass's duration.
fn measure(parent: &Path, mode: Mode, n: u64) -> Result<Duration, String> {
    let mut command = Command::new(parent);
    command.args([mode.key(), &n.to_string()]);
    suite::measured_by(command, &format!("link-parent {} {n}", mode.key()))
}

/// Operations per second.
fn rate(n: u64, elapsed: Duration) -> f64 {
    n as f64 / elapsed.as_secs_f64().max(1e-9)
}

/// The unit of a mode's figure.
fn unit(mode: Mode) -> &'static str {
    if mode.is_round_trip() {
        "round trips/s"
    } else {
        "msg/s"
    }
}

/// A figure with its mode's unit: `41.2 k round trips/s`, `1.23 M msg/s`.
fn format_rate(mode: Mode, figure: f64) -> String {
    report::format_rate(figure, unit(mode))
}

/// Every figure of a suite run, by row.
#[derive(Debug, Default)]
struct Samples {
    rows: Vec<(Mode, u64, Vec<f64>)>,
}

impl Samples {
    fn add(&mut self, mode: Mode, n: u64, figure: f64) {
        match self.rows.iter_mut().find(|(m, _, _)| *m == mode) {
            Some((_, _, v)) => v.push(figure),
            None => self.rows.push((mode, n, vec![figure])),
        }
    }

    fn figures(&self, mode: Mode) -> Option<(u64, &[f64])> {
        self.rows
            .iter()
            .find(|(m, _, _)| *m == mode)
            .map(|(_, n, v)| (*n, v.as_slice()))
    }

    /// A row's median time per operation over its baseline's, when both ran.
    fn cost(&self, mode: Mode) -> Option<f64> {
        let (_, mine) = self.figures(mode)?;
        let (_, base) = self.figures(baseline(mode))?;
        Some(median(base) / median(mine))
    }
}

/// Runs the link benchmark, prints its table and rewrites it in the README.
pub fn run(options: &Options) -> Result<(), String> {
    let parent = parent_program()?;
    let began = Instant::now();
    let load_at_start = report::load_average();
    let mut samples = Samples::default();
    for run in 0..options.runs {
        let order: Vec<Mode> = if run % 2 == 0 {
            ROWS.to_vec()
        } else {
            ROWS.iter().rev().copied().collect()
        };
        for mode in order {
            let n = size(mode, options.quick);
            let elapsed = measure(&parent, mode, n)?;
            let figure = rate(n, elapsed);
            eprintln!(
                "[run {}/{}] link {:<24} {}",
                run + 1,
                options.runs,
                mode.key(),
                format_rate(mode, figure)
            );
            samples.add(mode, n, figure);
        }
    }
    let mut machine = report::Machine::detect(began.elapsed(), options, load_at_start);
    machine.versions = crate_versions(&["strata", "tokio"]);
    let text = table(&samples, &machine);
    println!("{text}");
    save_samples(&samples, &machine);
    if let Some(path) = &options.readme {
        report::rewrite_between(path, BEGIN, END, &text)?;
        eprintln!("link results table rewritten in {}", path.display());
    }
    Ok(())
}

/// The Markdown table with its notes and the goal.
fn table(samples: &Samples, machine: &report::Machine) -> String {
    let mut out = report::notes(machine, "each a fresh parent and child", "The link suite");
    out.push_str("| benchmark | transport | median | worst | best | cost vs raw |\n");
    out.push_str("|---|---|--:|--:|--:|--:|\n");
    for group in [true, false] {
        let rows: Vec<Mode> = ROWS
            .into_iter()
            .filter(|m| m.is_round_trip() == group && samples.figures(*m).is_some())
            .collect();
        for (i, &mode) in rows.iter().enumerate() {
            let (n, figures) = samples.figures(mode).expect("filtered");
            let title = match (i, group) {
                (0, true) => format!(
                    "**parent-child round trip: {} sequential request-answers**",
                    crate::workload::group_digits(n)
                ),
                (0, false) => format!(
                    "**parent-to-child one-way: {} small messages, window {}, then the count**",
                    crate::workload::group_digits(n),
                    crate::workload::group_digits(protocol::WINDOW)
                ),
                _ => String::new(),
            };
            let (mid, worst, best) = report::spread(figures, true);
            let cost = samples
                .cost(mode)
                .map(|c| format!("{c:.2}×"))
                .unwrap_or_else(|| "–".to_string());
            out.push_str(&format!(
                "| {title} | {} | {} | {} | {} | {cost} |\n",
                label(mode),
                format_rate(mode, mid),
                format_rate(mode, worst),
                format_rate(mode, best),
            ));
        }
    }
    out.push_str(
        "\n*cost vs raw*: the row's time per operation over the blocking raw socket's, from \
         the medians of this suite run (1.00× = as fast as the raw socket).\n",
    );
    if let Some(cost) = samples.cost(Mode::RoundTripStrata) {
        let verdict = if cost <= ROUND_TRIP_GOAL {
            "met"
        } else {
            "not met"
        };
        out.push_str(&format!(
            "\nGoal (issue 6): a strata round trip to a child within {ROUND_TRIP_GOAL:.0}× \
             the raw socket's time. Measured: {cost:.2}× — **{verdict}**.\n"
        ));
    }
    out
}

/// Keeps every figure in `bench/target/results/link-<timestamp>.tsv`.
fn save_samples(samples: &Samples, machine: &report::Machine) {
    let mut text = String::from("mode\tn\tunit\tfigures\n");
    for (mode, n, figures) in &samples.rows {
        let figures: Vec<String> = figures.iter().map(|f| format!("{f:.3}")).collect();
        text.push_str(&format!(
            "{}\t{n}\t{}\t{}\n",
            mode.key(),
            unit(*mode),
            figures.join(",")
        ));
    }
    report::save_tsv(
        &format!("link-{}.tsv", machine.stamp),
        &text,
        "link samples",
    );
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn raw_frames_round_trip() {
        let f = protocol::encode(protocol::kind::DONE, 7, u64::MAX);
        assert_eq!(protocol::decode(&f), (protocol::kind::DONE, 7, u64::MAX));
    }

    #[test]
    fn every_mode_has_a_key() {
        for mode in Mode::ALL {
            assert_eq!(Mode::from_key(mode.key()), Some(mode));
        }
        assert_eq!(ROWS.len(), Mode::ALL.len());
    }

    #[test]
    fn costs_are_time_ratios_against_the_group_baseline() {
        let mut s = Samples::default();
        s.add(Mode::RoundTripRaw, 10, 100.0);
        s.add(Mode::RoundTripStrata, 10, 50.0);
        s.add(Mode::OneWayRaw, 10, 1000.0);
        assert_eq!(s.cost(Mode::RoundTripStrata), Some(2.0));
        assert_eq!(s.cost(Mode::RoundTripRaw), Some(1.0));
        assert_eq!(s.cost(Mode::OneWayStrata), None);
    }
}
