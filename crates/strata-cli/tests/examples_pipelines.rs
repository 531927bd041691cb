//! The pipeline examples as a user runs them: `pipeline_custom` (the seed's custom
//! frontend, transport and backend) sets up and cleans up every worker once and prints
//! every item; `pipeline_wordcount` counts the words of a file with its producers and
//! transport in worker processes, the same counts as a plain count here, and leaves no
//! worker process behind.

#[path = "../../strata/tests/support/mod.rs"]
mod support;

use std::collections::HashMap;
use std::process::Command;

use support::programs::{children_of, example, run_bounded};
use support::WAIT;

fn run(name: &str, args: &[&str]) -> Vec<String> {
    let out = run_bounded(Command::new(example(name)).args(args), 3 * WAIT);
    assert!(out.status.success(), "{name}: {out:?}");
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(str::to_string)
        .collect()
}

#[test]
fn pipeline_custom_sets_up_and_cleans_up_each_worker_once_and_prints_every_item() {
    let lines = run("pipeline_custom", &[]);
    let count = |prefix: &str| lines.iter().filter(|l| l.starts_with(prefix)).count();
    let setups = lines.iter().filter(|l| l.contains(": setup")).count();
    let cleanups = lines.iter().filter(|l| l.contains(": cleanup")).count();
    // One frontend, three transport and one backend worker.
    assert_eq!((setups, cleanups), (5, 5), "{lines:#?}");
    assert_eq!(count("got HELLO WORLD! ("), 3, "{lines:#?}");
    assert_eq!(count("got hello world! ("), 3, "{lines:#?}");
    assert!(
        lines.iter().any(|l| l == "backend 0: cleanup after 6"),
        "{lines:#?}"
    );
    assert!(
        lines.iter().any(|l| l.starts_with("pipeline finished")),
        "{lines:#?}"
    );
}

#[test]
fn pipeline_wordcount_counts_a_file_with_worker_processes() {
    let words = ["alpha", "beta", "gamma", "delta", "epsilon"];
    let mut text = String::new();
    let mut expected: HashMap<&str, u64> = HashMap::new();
    for n in 0..3_000usize {
        let line: Vec<&str> = (0..(n % 7 + 1)).map(|i| words[(n + i * i) % 5]).collect();
        for w in &line {
            *expected.entry(w).or_default() += 1;
        }
        text.push_str(&line.join(" "));
        text.push('\n');
    }
    let file = std::env::temp_dir().join(format!("strata-wordcount-{}.txt", std::process::id()));
    std::fs::write(&file, text).unwrap();
    let lines = run("pipeline_wordcount", &[file.to_str().unwrap(), "5"]);
    let _ = std::fs::remove_file(&file);
    let got: HashMap<String, u64> = lines
        .iter()
        .take(5)
        .map(|l| {
            let mut parts = l.split_whitespace();
            let count = parts.next().unwrap().parse().expect(l);
            (parts.next().unwrap().to_string(), count)
        })
        .collect();
    for (word, count) in &expected {
        assert_eq!(got.get(*word), Some(count), "{word}: {lines:#?}");
    }
    let total: u64 = expected.values().sum();
    assert!(
        lines.contains(&format!("{total} words, 5 different")),
        "{lines:#?}"
    );
    assert!(
        lines.iter().any(|l| l.contains("frontend  2 processes")),
        "{lines:#?}"
    );
    assert!(children_of(std::process::id(), "pipeline_wordcount").is_empty());
}
