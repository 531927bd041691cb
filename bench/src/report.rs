//! The report: medians and spreads of the samples, each peer's cost relative to the raw
//! baseline of the same suite run, the machine notes, the Markdown table, and the rewrite
//! of the table in the README between its marker comments.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use crate::suite::Options;
use crate::workload::{Bench, Peer};

/// The marker line after which the README's results table starts.
pub const BEGIN: &str = "<!-- results:begin -->";
/// The marker line before which the README's results table ends.
pub const END: &str = "<!-- results:end -->";

/// The figures measured for one (benchmark, peer) pair.
#[derive(Debug, Clone)]
struct Series {
    bench: Bench,
    peer: Peer,
    n: u64,
    figures: Vec<f64>,
}

/// Every figure of a suite run, in the order the pairs first ran.
#[derive(Debug, Clone, Default)]
pub struct Samples {
    series: Vec<Series>,
}

impl Samples {
    /// Records one run's figure.
    pub fn add(&mut self, bench: Bench, peer: Peer, n: u64, figure: f64) {
        match self
            .series
            .iter_mut()
            .find(|s| s.bench == bench && s.peer == peer)
        {
            Some(s) => s.figures.push(figure),
            None => self.series.push(Series {
                bench,
                peer,
                n,
                figures: vec![figure],
            }),
        }
    }

    fn find(&self, bench: Bench, peer: Peer) -> Option<&Series> {
        self.series
            .iter()
            .find(|s| s.bench == bench && s.peer == peer)
    }
}

/// The median of some figures (the mean of the middle two for an even count).
pub fn median(figures: &[f64]) -> f64 {
    let mut v = figures.to_vec();
    v.sort_by(f64::total_cmp);
    match v.len() {
        0 => f64::NAN,
        n if n % 2 == 1 => v[n / 2],
        n => (v[n / 2 - 1] + v[n / 2]) / 2.0,
    }
}

/// The median, the worst and the best of some figures (`higher_is_better` says which end
/// is the best).
pub fn spread(figures: &[f64], higher_is_better: bool) -> (f64, f64, f64) {
    let lo = figures.iter().copied().fold(f64::INFINITY, f64::min);
    let hi = figures.iter().copied().fold(f64::NEG_INFINITY, f64::max);
    let (worst, best) = if higher_is_better { (lo, hi) } else { (hi, lo) };
    (median(figures), worst, best)
}

/// A rate with its unit: `12.3 M msg/s`, `41.2 k round trips/s`, `812 msg/s`.
pub fn format_rate(figure: f64, unit: &str) -> String {
    if figure >= 1e6 {
        format!("{:.2} M {unit}", figure / 1e6)
    } else if figure >= 1e3 {
        format!("{:.1} k {unit}", figure / 1e3)
    } else {
        format!("{figure:.0} {unit}")
    }
}

/// A figure with its unit: `12.3 M msg/s`, `845 ns/spawn`.
pub fn format_figure(bench: Bench, figure: f64) -> String {
    let unit = bench.unit();
    if bench.higher_is_better() {
        format_rate(figure, unit)
    } else if figure >= 1e4 {
        format!("{:.1} µs/spawn", figure / 1e3)
    } else {
        format!("{figure:.0} {unit}")
    }
}

/// How many times the baseline's time per operation a peer's median costs.
fn cost_ratio(bench: Bench, peer_median: f64, raw_median: f64) -> f64 {
    if bench.higher_is_better() {
        raw_median / peer_median
    } else {
        peer_median / raw_median
    }
}

/// Where and how the suite ran.
#[derive(Debug, Clone)]
pub struct Machine {
    /// `nproc`.
    pub nproc: String,
    /// The CPU model, from `/proc/cpuinfo`.
    pub cpu: String,
    /// `uname -sr`.
    pub kernel: String,
    /// `rustc --version`.
    pub rustc: String,
    /// The date and time (UTC) the suite finished.
    pub date: String,
    /// A file-name-safe timestamp.
    pub stamp: String,
    /// Runs per pair.
    pub runs: usize,
    /// True for a `--quick` run.
    pub quick: bool,
    /// The suite's wall-clock time.
    pub wall: Duration,
    /// The peers' crate versions, from `Cargo.lock`.
    pub versions: String,
    /// The strata commit measured, and whether its crate had uncommitted changes.
    pub strata_revision: String,
    /// The 1-minute load average when the suite started and when it ended.
    pub load: (String, String),
}

fn command_output(program: &str, args: &[&str]) -> Option<String> {
    let out = Command::new(program).args(args).output().ok()?;
    if !out.status.success() {
        return None;
    }
    let text = String::from_utf8_lossy(&out.stdout).trim().to_string();
    (!text.is_empty()).then_some(text)
}

fn cpu_model() -> String {
    std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|info| {
            info.lines()
                .find(|l| l.starts_with("model name"))
                .and_then(|l| l.split_once(':'))
                .map(|(_, v)| v.trim().to_string())
        })
        .unwrap_or_else(|| "unknown CPU".to_string())
}

/// The locked versions of the peers, read from the benchmark's `Cargo.lock`.
fn peer_versions() -> String {
    crate_versions(&["strata", "actix", "ractor", "tokio"])
}

/// `name version` for each crate, as locked in the benchmark's `Cargo.lock`.
pub fn crate_versions(names: &[&str]) -> String {
    let lock = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/Cargo.lock"))
        .unwrap_or_default();
    let version_of = |name: &str| {
        let header = format!("name = \"{name}\"\nversion = \"");
        lock.find(&header)
            .map(|i| {
                let rest = &lock[i + header.len()..];
                rest[..rest.find('"').unwrap_or(0)].to_string()
            })
            .unwrap_or_else(|| "?".to_string())
    };
    names
        .iter()
        .map(|n| format!("{n} {}", version_of(n)))
        .collect::<Vec<_>>()
        .join(", ")
}

/// The 1-minute load average, from `/proc/loadavg`.
pub fn load_average() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .ok()
        .and_then(|l| l.split_whitespace().next().map(str::to_string))
        .unwrap_or_else(|| "?".to_string())
}

/// The strata commit the benchmark was built against, `+ changes` when the strata crates
/// (the library, its macros, and the `strata` program that holds `strata load`) have
/// uncommitted changes.
fn strata_revision() -> String {
    let root = concat!(env!("CARGO_MANIFEST_DIR"), "/..");
    let Some(rev) = command_output("git", &["-C", root, "rev-parse", "--short", "HEAD"]) else {
        return "unknown".to_string();
    };
    let dirty = command_output(
        "git",
        &[
            "-C",
            root,
            "status",
            "--porcelain",
            "--",
            "crates/strata",
            "crates/strata-macros",
            "crates/strata-cli",
        ],
    )
    .is_some();
    if dirty {
        format!("{rev} + uncommitted changes")
    } else {
        rev
    }
}

impl Machine {
    /// Gathers the machine notes; `load_at_start` is [`load_average`] when the suite began.
    pub fn detect(wall: Duration, options: &Options, load_at_start: String) -> Machine {
        let unknown = || "unknown".to_string();
        Machine {
            nproc: command_output("nproc", &[]).unwrap_or_else(unknown),
            cpu: cpu_model(),
            kernel: command_output("uname", &["-sr"]).unwrap_or_else(unknown),
            rustc: command_output("rustc", &["--version"]).unwrap_or_else(unknown),
            date: command_output("date", &["-u", "+%Y-%m-%d %H:%M UTC"]).unwrap_or_else(unknown),
            stamp: command_output("date", &["-u", "+%Y%m%dT%H%M%SZ"])
                .unwrap_or_else(|| "latest".to_string()),
            runs: options.runs,
            quick: options.quick,
            wall,
            versions: peer_versions(),
            strata_revision: strata_revision(),
            load: (load_at_start, load_average()),
        }
    }
}

/// The paragraph above a table: the machine, the versions, the runs (`each`: what each
/// run is) and how long `suite` took.
pub fn notes(machine: &Machine, each: &str, suite: &str) -> String {
    format!(
        "Measured {} on {} (nproc {}; {}; 1-minute load average {} at the start, {} at \
         the end), {}; {} (strata at {}). {} run{} per row{}, {each}; \
         median, worst and best of the runs. {suite} took {:.0} s.\n\n",
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
    )
}

/// The Markdown results table with the machine notes above it.
pub fn table(samples: &Samples, machine: &Machine) -> String {
    let mut out = notes(machine, "each in a fresh process", "The suite");
    out.push_str("| benchmark | peer | median | worst | best | cost vs raw |\n");
    out.push_str("|---|---|--:|--:|--:|--:|\n");
    for bench in Bench::ALL {
        let rows: Vec<&Series> = bench
            .peers()
            .iter()
            .filter_map(|&p| samples.find(bench, p))
            .collect();
        let Some(first) = rows.first() else { continue };
        let raw = samples.find(bench, Peer::Raw).map(|s| median(&s.figures));
        for (i, s) in rows.iter().enumerate() {
            let title = if i == 0 {
                format!("**{}**", bench.title(first.n))
            } else {
                String::new()
            };
            let (m, lo, hi) = spread(&s.figures, bench.higher_is_better());
            let ratio = match raw {
                Some(r) => format!("{:.2}×", cost_ratio(bench, m, r)),
                None => "–".to_string(),
            };
            out.push_str(&format!(
                "| {title} | {} | {} | {} | {} | {ratio} |\n",
                s.peer.label(),
                format_figure(bench, m),
                format_figure(bench, lo),
                format_figure(bench, hi),
            ));
        }
    }
    out.push_str(
        "\n*worst* and *best* are the slowest and the fastest run. *cost vs raw*: the peer's time per \
         operation over the raw baseline's, from the medians of this suite run \
         (1.00× = as fast as raw tokio channels; 3.00× = three times the time).\n",
    );
    out
}

/// Keeps every figure of the run in `bench/target/results/<timestamp>.tsv`, for comparing
/// suite runs; a failure to write is only reported.
pub fn save_samples(samples: &Samples, machine: &Machine) {
    let mut text = String::from("bench\tpeer\tn\tunit\tfigures\n");
    for s in &samples.series {
        let figures: Vec<String> = s.figures.iter().map(|f| format!("{f:.3}")).collect();
        text.push_str(&format!(
            "{}\t{}\t{}\t{}\t{}\n",
            s.bench.key(),
            s.peer.key(),
            s.n,
            s.bench.unit(),
            figures.join(",")
        ));
    }
    save_tsv(&format!("{}.tsv", machine.stamp), &text, "samples");
}

/// Writes `text` to `bench/target/results/<file>` and says so (`what` names it); a
/// failure to write is only reported.
pub fn save_tsv(file: &str, text: &str, what: &str) {
    let dir = PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/target/results"));
    let path = dir.join(file);
    match std::fs::create_dir_all(&dir).and_then(|_| std::fs::write(&path, text)) {
        Ok(()) => eprintln!("{what} saved in {}", path.display()),
        Err(e) => eprintln!("could not save the {what} in {}: {e}", path.display()),
    }
}

/// Replaces what lies between the marker comments of the README with `table`, keeping
/// everything else.
pub fn rewrite_readme(path: &Path, table: &str) -> Result<(), String> {
    rewrite_between(path, BEGIN, END, table)
}

/// Replaces what lies between the marker lines `begin` and `end` of the file at `path`
/// with `table`, keeping everything else.
pub fn rewrite_between(path: &Path, begin: &str, end: &str, table: &str) -> Result<(), String> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| format!("cannot read {}: {e}", path.display()))?;
    let updated = replace_between(&text, begin, end, table)
        .ok_or_else(|| format!("{} lacks the lines `{begin}` and `{end}`", path.display()))?;
    std::fs::write(path, updated).map_err(|e| format!("cannot write {}: {e}", path.display()))
}

/// `text` with the part between [`BEGIN`] and [`END`] replaced by `table`.
#[cfg(test)]
fn replace_between_markers(text: &str, table: &str) -> Option<String> {
    replace_between(text, BEGIN, END, table)
}

/// `text` with the part between the markers `begin` and `end` replaced by `table`.
fn replace_between(text: &str, begin: &str, end: &str, table: &str) -> Option<String> {
    let begin = text.find(begin)? + begin.len();
    let end = begin + text[begin..].find(end)?;
    Some(format!(
        "{}\n{}\n{}",
        &text[..begin],
        table.trim_end(),
        &text[end..]
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn medians() {
        assert_eq!(median(&[3.0, 1.0, 2.0]), 2.0);
        assert_eq!(median(&[4.0, 1.0, 2.0, 3.0]), 2.5);
        assert_eq!(median(&[7.0]), 7.0);
    }

    #[test]
    fn the_table_goes_between_the_markers_and_nothing_else_moves() {
        let text = format!("# Title\n\nbefore\n{BEGIN}\nold table\n{END}\nafter\n");
        let out = replace_between_markers(&text, "new table\n").unwrap();
        assert_eq!(
            out,
            format!("# Title\n\nbefore\n{BEGIN}\nnew table\n{END}\nafter\n")
        );
        let again = replace_between_markers(&out, "new table\n").unwrap();
        assert_eq!(again, out, "rewriting is stable");
        assert!(replace_between_markers("no markers", "t").is_none());
    }

    #[test]
    fn ratios_are_costs() {
        assert_eq!(cost_ratio(Bench::Fanout, 5.0, 10.0), 2.0);
        assert_eq!(cost_ratio(Bench::Spawn, 300.0, 100.0), 3.0);
    }
}
