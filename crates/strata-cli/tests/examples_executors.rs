//! The executor examples as a user runs them: `futures_threads`, `futures_processes`,
//! `futures_reject` and `periodics` print what the seed's Python programs print
//! (statistics, results, rejections, the periodic lines and watchers), exit 0, and leave
//! no worker process behind.

#[path = "../../strata/tests/support/mod.rs"]
mod support;

use std::process::{Command, Output};

use support::programs::{example, run_bounded};
use support::WAIT;

fn run(name: &str, args: &[&str]) -> (Vec<String>, Output) {
    let out = run_bounded(Command::new(example(name)).args(args), 3 * WAIT);
    assert!(out.status.success(), "{name}: {out:?}");
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    (text.lines().map(str::to_string).collect(), out)
}

/// The numbers in a `Results: [...]` line (`Rejected` entries left out).
fn results(line: &str) -> Vec<u64> {
    let list = line
        .strip_prefix("Results: [")
        .and_then(|l| l.strip_suffix(']'))
        .unwrap_or_else(|| panic!("not a results line: {line}"));
    list.split(", ").filter_map(|v| v.parse().ok()).collect()
}

fn plausible(sums: &[u64]) -> bool {
    // A million draws from 1 to 100: the sum is within a few thousand of 50.5 million.
    sums.iter().all(|s| (50_300_000..50_700_000).contains(s))
}

#[test]
fn futures_threads_prints_statistics_before_and_after_and_eight_results() {
    let (lines, _) = run("futures_threads", &[]);
    assert_eq!(lines.len(), 3, "{lines:?}");
    assert!(
        lines[0].starts_with("ExecutorStatistics(failures=0,"),
        "{lines:?}"
    );
    assert!(
        lines[1].starts_with("ExecutorStatistics(failures=0, executed=8,"),
        "{lines:?}"
    );
    let sums = results(&lines[2]);
    assert!(sums.len() == 8 && plausible(&sums), "{lines:?}");
}

#[test]
fn futures_processes_runs_the_jobs_in_worker_processes_of_itself() {
    let (lines, _) = run("futures_processes", &[]);
    let sums = results(&lines[0]);
    assert!(sums.len() == 8 && plausible(&sums), "{lines:?}");
    assert!(
        lines[1].starts_with("ExecutorStatistics(failures=0, executed=8,"),
        "{lines:?}"
    );
    let me = std::process::id();
    assert!(support::programs::children_of(me, "futures_processes").is_empty());
}

#[test]
fn futures_reject_runs_ten_and_refuses_ten_past_the_backlog() {
    let (lines, _) = run("futures_reject", &[]);
    // Taken just after the twenty submits: ten refused; of the other ten, how many are
    // still queued by then depends on the machine (a job takes a few milliseconds).
    assert!(
        lines[0].contains("rejected=10,") && lines[0].contains("workers=8"),
        "{lines:?}"
    );
    assert!(
        lines[1].contains("executed=10,") && lines[1].contains("rejected=10"),
        "{lines:?}"
    );
    let sums = results(&lines[2]);
    assert!(sums.len() == 10 && plausible(&sums), "{lines:?}");
    assert_eq!(lines[2].matches("Rejected").count(), 10, "{lines:?}");
    assert!(
        lines[3].starts_with("Rejected (10): 2 jobs are waiting already"),
        "{lines:?}"
    );
}

#[test]
fn periodics_prints_every_second_and_the_watchers_every_four() {
    let (lines, _) = run("periodics", &["--seconds=5"]);
    let ticks: Vec<f64> = lines
        .iter()
        .filter_map(|l| l.strip_prefix("1: "))
        .map(|t| t.parse().unwrap())
        .collect();
    assert!(ticks.len() >= 4, "{lines:?}");
    for (i, t) in ticks.iter().enumerate() {
        // The i-th line comes about i + 1 seconds in, never before.
        assert!(*t >= (i + 1) as f64, "{lines:?}");
    }
    let stats = lines
        .iter()
        .find(|l| l.starts_with("stats: ["))
        .expect("a stats line");
    assert!(
        stats.contains("Watcher(every_one: runs=") && stats.contains("Watcher(print_stats: runs=0"),
        "{stats}"
    );
    let last = lines.last().unwrap();
    assert!(
        last.starts_with("final: [Watcher(every_one: runs="),
        "{last}"
    );
}
