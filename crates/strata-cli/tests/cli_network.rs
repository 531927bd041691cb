//! `strata directory`, `strata network` and `strata ping` as a user runs them, against
//! real peer processes (`directory_peer`, crates/strata-testbins): the tree as JSON and as
//! text, with the host directory served by a peer and by `strata directory`; no host
//! directory; a second `strata directory` refused, naming the first; round trips to a
//! published name, and a name that is never published.
//!
//! Every process a test starts gets the test's own runtime folder (`STRATA_RUNTIME_DIR`),
//! so no two tests, and nothing else on the machine, share a host directory.

#[path = "../../strata/tests/support/mod.rs"]
mod support;

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::Instant;

use support::programs::{run_bounded, testbin, Running};
use support::WAIT;

/// A runtime folder of one test's own (made by the first process that needs it, mode
/// 0700), removed when dropped.
struct RuntimeDir(PathBuf);

impl RuntimeDir {
    fn new(test: &str) -> RuntimeDir {
        let dir =
            std::env::temp_dir().join(format!("strata-cli-network-{}-{test}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        RuntimeDir(dir)
    }

    fn socket(&self) -> PathBuf {
        self.0.join("host.sock")
    }

    /// `command` with this folder as its runtime folder.
    fn env<'a>(&self, command: &'a mut Command) -> &'a mut Command {
        command
            .env("STRATA_RUNTIME_DIR", &self.0)
            .env_remove("STRATA_HOST_DIRECTORY")
    }

    fn strata(&self, args: &[&str]) -> Output {
        run_bounded(
            self.env(Command::new(env!("CARGO_BIN_EXE_strata")).args(args)),
            WAIT,
        )
    }

    fn peer(&self, args: &[&str]) -> Running {
        // Interactive: its stdin stays open, so it runs until the test drops it.
        Running::start_interactive(self.env(Command::new(testbin("directory_peer")).args(args)))
    }

    fn directory(&self) -> Running {
        Running::start(self.env(Command::new(env!("CARGO_BIN_EXE_strata")).arg("directory")))
    }
}

impl Drop for RuntimeDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// Reads the program's lines until one starts with `prefix`; gives it.
fn expect_line(p: &Running, prefix: &str) -> String {
    let deadline = Instant::now() + WAIT;
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        let line = p.line(left);
        if line.starts_with(prefix) {
            return line;
        }
    }
}

fn json(out: &Output) -> serde_json::Value {
    serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
        panic!(
            "not JSON ({e}): {}\n{}",
            text(&out.stdout),
            text(&out.stderr)
        )
    })
}

fn names(publications: &serde_json::Value) -> Vec<&str> {
    publications
        .as_array()
        .expect("a list of publications")
        .iter()
        .map(|p| p["name"].as_str().expect("a name"))
        .collect()
}

/// The entry of `processes` whose view has `pid`.
fn process(network: &serde_json::Value, pid: u32) -> &serde_json::Value {
    network["processes"]
        .as_array()
        .expect("a list of processes")
        .iter()
        .find(|p| p["view"]["pid"] == pid)
        .unwrap_or_else(|| panic!("no process {pid} in {network:#}"))
}

/// `entry` (of `--json`) carries the figures of process `pid`, its directory among them.
fn assert_figures(entry: &serde_json::Value, pid: u32) {
    let figures = &entry["figures"];
    assert_eq!(figures["pid"], pid, "{entry:#}");
    let families: Vec<&str> = figures["families"]
        .as_array()
        .expect("families")
        .iter()
        .map(|f| f["name"].as_str().expect("a name"))
        .collect();
    for name in ["strata_objects_live", "strata_directory_publications"] {
        assert!(families.contains(&name), "{name} in {families:?}");
    }
}

/// `812µs`, `1.25ms` or `2.004s`.
fn is_duration(text: &str) -> bool {
    ["µs", "ms", "s"].iter().any(|unit| {
        text.strip_suffix(unit)
            .is_some_and(|n| n.parse::<f64>().is_ok())
    })
}

#[test]
fn without_a_host_directory_network_says_nothing_is_published() {
    let dir = RuntimeDir::new("none");
    let out = dir.strata(&["network"]);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out.stderr));
    let expected = format!(
        "no host directory at {} (nothing is published on this host)",
        dir.socket().display()
    );
    assert!(
        text(&out.stderr).contains(&expected),
        "{}",
        text(&out.stderr)
    );
    assert!(out.stdout.is_empty());
}

#[test]
fn network_lists_a_publication_of_a_peer_that_serves_the_host_directory() {
    let dir = RuntimeDir::new("peer");
    let peer = dir.peer(&["--publish", "t:a@host"]);
    expect_line(&peer, "published t:a host");

    let out = dir.strata(&["network", "--json"]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let network = json(&out);
    // The peer was the first to need the host directory: it serves it.
    assert_eq!(network["host"]["pid"], peer.pid(), "{network:#}");
    assert_eq!(names(&network["host"]["publications"]), ["t:a"]);
    assert_eq!(network["host"]["publications"][0]["scope"], "Host");
    // Its process directory answered too (over the host directory's link).
    let entry = process(&network, peer.pid());
    assert!(entry["error"].is_null(), "{entry:#}");
    assert_eq!(entry["view"]["level"], "Process");
    assert_eq!(
        entry["client"]["address"]["node"],
        network["host"]["publications"][0]["address"]["node"]
    );
    // And its figures, the same as its `/metrics` would serve: its directories are
    // among them (it serves the host's), with what they list.
    assert_figures(entry, peer.pid());

    let out = dir.strata(&["network"]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let tree = text(&out.stdout);
    assert!(
        tree.starts_with(&format!(
            "host directory at {} (pid {}): 1 process",
            dir.socket().display(),
            peer.pid()
        )),
        "{tree}"
    );
    assert!(
        tree.contains(&format!("  process {} (node ", peer.pid())),
        "{tree}"
    );
    assert!(tree.contains("      t:a  host  <"), "{tree}");
    assert!(tree.contains("    figures:\n"), "{tree}");
    assert!(tree.contains("      strata_objects_live "), "{tree}");
    assert!(
        tree.contains("      strata_directory_publications{object=\""),
        "{tree}"
    );
}

#[test]
fn strata_directory_serves_the_peers_and_a_second_one_names_it() {
    let dir = RuntimeDir::new("served");
    let mut served = dir.directory();
    let line = expect_line(&served, "strata directory: serving");
    assert!(
        line.contains(&format!(
            "at {} (pid {})",
            dir.socket().display(),
            served.pid()
        )),
        "{line}"
    );

    let second = dir.strata(&["directory"]);
    assert_eq!(second.status.code(), Some(1), "{}", text(&second.stderr));
    assert!(
        text(&second.stderr).contains(&format!("served by process {}", served.pid())),
        "{}",
        text(&second.stderr)
    );

    let peer = dir.peer(&["--publish", "t:b@host", "--subscribe", "t:.*@host"]);
    expect_line(&peer, "available t:b host self");
    let out = dir.strata(&["network", "--json"]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let network = json(&out);
    assert_eq!(network["host"]["pid"], served.pid(), "{network:#}");
    assert_eq!(names(&network["host"]["publications"]), ["t:b"]);
    assert_eq!(network["processes"].as_array().unwrap().len(), 1);
    // Its process directory answered over a link to its endpoint: its subscription, and
    // its own publication, held there (process scope) and heard back from the group's and
    // the host's directories (each entry's scope is how near it is).
    let entry = process(&network, peer.pid());
    assert!(entry["error"].is_null(), "{entry:#}");
    let view = &entry["view"];
    assert_eq!(view["subscriptions"][0]["pattern"], "t:.*", "{view:#}");
    assert_eq!(view["subscriptions"][0]["holds"], 1);
    assert_eq!(names(&view["publications"]), ["t:b", "t:b", "t:b"]);
    let scopes: Vec<&str> = view["publications"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["from"].as_str().unwrap())
        .collect();
    assert_eq!(scopes, ["Process", "Group", "Host"], "{view:#}");
    assert!(view["publications"]
        .as_array()
        .unwrap()
        .iter()
        .all(|p| p["scope"] == "Host"));
    // Its figures came back over the same link.
    assert_figures(entry, peer.pid());
    let endpoint = entry["client"]["endpoint"].as_str().expect("an endpoint");
    assert!(Path::new(endpoint).starts_with(&dir.0), "{endpoint}");

    // Stopped, it ends cleanly and takes its socket with it.
    served.signal(libc::SIGTERM);
    let (status, rest, stderr) = served.finish(WAIT);
    assert!(status.success(), "{status}: {stderr}");
    assert!(
        rest.iter().any(|l| l == "strata directory: stopped"),
        "{rest:?}"
    );
    support::poll_until(WAIT, "the socket file to go", || {
        (!dir.socket().exists()).then_some(())
    });
}

#[test]
fn ping_times_round_trips_to_a_published_name() {
    let dir = RuntimeDir::new("ping");
    let peer = dir.peer(&["--publish", "t:a@host"]);
    expect_line(&peer, "published t:a host");

    let out = dir.strata(&["ping", "t:a", "--count", "3"]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let stdout = text(&out.stdout);
    let lines: Vec<&str> = stdout.lines().collect();
    assert!(lines[0].starts_with("PING t:a at <"), "{stdout}");
    for seq in 1..=3 {
        assert!(
            stdout.contains(&format!("answer from t:a: seq={seq} time=")),
            "{stdout}"
        );
    }
    let summary = lines.last().expect("a summary");
    let words: Vec<&str> = summary.split_whitespace().collect();
    assert_eq!(words[..2], ["count", "3"], "{summary}");
    assert_eq!((words[2], words[4]), ("p50", "p99"), "{summary}");
    assert_eq!((words[6], words[8]), ("min", "max"), "{summary}");
    for figure in [words[3], words[5], words[7], words[9]] {
        assert!(is_duration(figure), "{figure} in {summary}");
    }

    let out = dir.strata(&["ping", "t:nobody", "--count", "1"]);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out.stderr));
    assert!(
        text(&out.stderr).contains("t:nobody is not published (waited 5 s)"),
        "{}",
        text(&out.stderr)
    );
}

#[test]
fn bad_arguments_exit_2_naming_what_was_wrong() {
    let dir = RuntimeDir::new("args");
    for (args, named) in [
        (&["ping", "no spaces"][..], "bad name"),
        (&["ping", "t:a", "--count", "0"][..], "--count"),
        (&["ping", "t:a", "--scope", "lan"][..], "--scope"),
    ] {
        let out = dir.strata(args);
        assert_eq!(
            out.status.code(),
            Some(2),
            "{args:?}: {}",
            text(&out.stderr)
        );
        assert!(
            text(&out.stderr).contains(named),
            "{args:?}: {}",
            text(&out.stderr)
        );
    }
}
