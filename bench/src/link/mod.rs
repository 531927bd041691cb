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
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use crate::report::{self, crate_versions, median};
use crate::suite::Options;
use protocol::Mode;

/// The marker line after which the README's link table starts.
pub const BEGIN: &str = "<!-- link-results:begin -->";
/// The marker line before which the README's link table ends.
pub const END: &str = "<!-- link-results:end -->";

/// The goal of issue 6: a strata round trip to a child within this many times the raw
/// socket's.
pub const ROUND_TRIP_GOAL: f64 = 2.0;

/// A `link-parent` run that takes longer than this is killed and fails the suite.
const CHILD_TIMEOUT: Duration = Duration::from_secs(120);

/// The rows of the table, in order: the baseline first in each group.
const ROWS: [Mode; 8] = [
    Mode::RoundTripRaw,
    Mode::RoundTripTokio,
    Mode::RoundTripStrata,
    Mode::RoundTripStrataDirect,
    Mode::OneWayRaw,
    Mode::OneWayTokio,
    Mode::OneWayStrata,
    Mode::OneWayStrataDirect,
];

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
    let what = format!("link-parent {} {n}", mode.key());
    let mut child = Command::new(parent)
        .args([mode.key(), &n.to_string()])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .map_err(|e| format!("cannot start `{what}`: {e}"))?;
    let started = Instant::now();
    loop {
        match child.try_wait() {
            Ok(Some(_)) => break,
            Ok(None) if started.elapsed() > CHILD_TIMEOUT => {
                let _ = child.kill();
                let _ = child.wait();
                return Err(format!(
                    "`{what}` took longer than {CHILD_TIMEOUT:?}; killed"
                ));
            }
            Ok(None) => std::thread::sleep(Duration::from_millis(20)),
            Err(e) => return Err(format!("waiting for `{what}`: {e}")),
        }
    }
    let output = child
        .wait_with_output()
        .map_err(|e| format!("reading `{what}`: {e}"))?;
    if !output.status.success() {
        return Err(format!("`{what}` failed: {}", output.status));
    }
    let stdout = String::from_utf8_lossy(&output.stdout);
    stdout
        .lines()
        .find_map(|l| l.strip_prefix("RESULT "))
        .and_then(|v| v.trim().parse::<u64>().ok())
        .map(Duration::from_nanos)
        .ok_or_else(|| format!("`{what}` printed no result: {stdout:?}"))
}

/// Operations per second.
fn rate(n: u64, elapsed: Duration) -> f64 {
    n as f64 / elapsed.as_secs_f64().max(1e-9)
}

/// A rate with its unit: `41.2 k round trips/s`, `1.23 M msg/s`.
fn format_rate(mode: Mode, figure: f64) -> String {
    let unit = if mode.is_round_trip() {
        "round trips/s"
    } else {
        "msg/s"
    };
    if figure >= 1e6 {
        format!("{:.2} M {unit}", figure / 1e6)
    } else if figure >= 1e3 {
        format!("{:.1} k {unit}", figure / 1e3)
    } else {
        format!("{figure:.0} {unit}")
    }
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
    let mut out = format!(
        "Measured {} on {} (nproc {}; {}; 1-minute load average {} at the start, {} at the \
         end), {}; {} (strata at {}). {} run{} per row{}, each a fresh parent and child; \
         median, worst and best of the runs. The link suite took {:.0} s.\n\n",
        machine.date,
        machine.cpu,
        machine.nproc,
        machine.kernel,
        machine.load.0,
        machine.load.1,
        machine.rustc,
        machine.versions,
        machine.strata_revision,
        machine.runs,
        if machine.runs == 1 { "" } else { "s" },
        if machine.quick {
            " (`--quick`: a tenth of the full sizes)"
        } else {
            ""
        },
        machine.wall.as_secs_f64()
    );
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
            let worst = figures.iter().copied().fold(f64::INFINITY, f64::min);
            let best = figures.iter().copied().fold(f64::NEG_INFINITY, f64::max);
            let cost = samples
                .cost(mode)
                .map(|c| format!("{c:.2}×"))
                .unwrap_or_else(|| "–".to_string());
            out.push_str(&format!(
                "| {title} | {} | {} | {} | {} | {cost} |\n",
                label(mode),
                format_rate(mode, median(figures)),
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

/// Keeps every figure in `bench/target/results/link-<timestamp>.tsv`; a failure to write
/// is only reported.
fn save_samples(samples: &Samples, machine: &report::Machine) {
    let dir = PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/target/results"));
    let mut text = String::from("mode\tn\tunit\tfigures\n");
    for (mode, n, figures) in &samples.rows {
        let figures: Vec<String> = figures.iter().map(|f| format!("{f:.3}")).collect();
        let unit = if mode.is_round_trip() {
            "round trips/s"
        } else {
            "msg/s"
        };
        text.push_str(&format!(
            "{}\t{n}\t{unit}\t{}\n",
            mode.key(),
            figures.join(",")
        ));
    }
    let path = dir.join(format!("link-{}.tsv", machine.stamp));
    match std::fs::create_dir_all(&dir).and_then(|_| std::fs::write(&path, text)) {
        Ok(()) => eprintln!("link samples saved in {}", path.display()),
        Err(e) => eprintln!("could not save the samples in {}: {e}", path.display()),
    }
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
