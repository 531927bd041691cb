//! `strata load` (issue 7's load client, the `strata` program of `crates/strata-cli`): where
//! the program is, its command line, and the reading of its `--json` report into the form
//! of a wrk report.

use std::path::PathBuf;
use std::process::Command;
use std::time::Duration;

use serde::Deserialize;

use super::wrk::{self, Report};

/// Clients at once, each holding one connection: as many as wrk's connections.
pub const CLIENTS: u32 = wrk::CONNECTIONS;

/// The `strata` program: `$STRATA_BENCH_STRATA`, or the repository's
/// `target/release/strata`.
pub fn program() -> PathBuf {
    std::env::var_os("STRATA_BENCH_STRATA")
        .map(PathBuf::from)
        .unwrap_or_else(|| super::bench_dir().join("../target/release/strata"))
}

/// Checks once, before the runs, that the program is there; says how to build it if not.
pub fn available() -> Result<(), String> {
    let exe = program();
    if exe.is_file() {
        Ok(())
    } else {
        Err(format!(
            "{} is missing: build it with `cargo build --release -p strata-cli` from the \
             repository root (bench/run does)",
            exe.display()
        ))
    }
}

/// The `strata load` command line for `url` over `seconds`: as many clients as wrk has
/// connections, each keeping its connection for the whole run (`--requests 0`, as wrk
/// does), every answer checked to be a table of the asked size.
pub fn command_line(url: &str, seconds: u64) -> Vec<String> {
    let mut args = vec![
        "load".to_string(),
        url.to_string(),
        "--clients".to_string(),
        CLIENTS.to_string(),
        "--requests".to_string(),
        "0".to_string(),
        "--duration".to_string(),
        format!("{seconds}s"),
        "--validate".to_string(),
        "table".to_string(),
        "--json".to_string(),
    ];
    if url.starts_with("https://") {
        // strata load checks the certificate against the run's CA (wrk and oha check none).
        args.push("--cacert".to_string());
        args.push(super::tls::ca_file().display().to_string());
    }
    args
}

/// The parts of `strata load --json`'s report the harness reads.
#[derive(Debug, Deserialize)]
struct Json {
    elapsed_s: f64,
    requests: u64,
    ok: u64,
    errors: Errors,
    latency_ms: Latency,
    #[serde(default)]
    lost_processes: Vec<String>,
    #[serde(default)]
    interrupted: bool,
}

/// Failed requests by kind.
#[derive(Debug, Deserialize)]
struct Errors {
    connect: u64,
    timeout: u64,
    status: u64,
    validation: u64,
    busy: u64,
    io: u64,
}

/// Latencies of answered requests, in milliseconds.
#[derive(Debug, Deserialize)]
struct Latency {
    p50: f64,
    p99: f64,
}

/// Reads `strata load --json`'s report: `requests` are the answers received (good, bad
/// status, 503 and failed validation), `non_2xx` the failed ones among them, and
/// `socket_errors` the failures without an answer (connect, time-out, broken connection),
/// so that [`Report::good_per_second`] is the good answers per second, as for wrk.
pub fn parse(text: &str) -> Result<Report, String> {
    let json: Json = serde_json::from_str(text)
        .map_err(|e| format!("cannot read strata load's report ({e}):\n{text}"))?;
    if json.interrupted || !json.lost_processes.is_empty() {
        return Err(format!(
            "strata load's run was cut short (interrupted: {}, lost processes: {:?})",
            json.interrupted, json.lost_processes
        ));
    }
    let e = &json.errors;
    let bad_answers = e.status + e.busy + e.validation;
    let no_answer = e.connect + e.timeout + e.io;
    if json.ok + bad_answers + no_answer != json.requests {
        return Err(format!(
            "strata load's report does not add up: {} requests, {} ok, errors {e:?}",
            json.requests, json.ok
        ));
    }
    let ms = |v: f64| (json.ok > 0).then(|| Duration::from_secs_f64(v.max(0.0) / 1e3));
    Ok(Report {
        requests: json.ok + bad_answers,
        elapsed: Duration::from_secs_f64(json.elapsed_s.max(0.0)),
        non_2xx: bad_answers,
        socket_errors: no_answer,
        p50: ms(json.latency_ms.p50),
        p99: ms(json.latency_ms.p99),
        ..Default::default()
    })
}

/// The program's version line (`strata 0.1.0`), for the table notes.
pub fn version() -> Option<String> {
    let out = Command::new(program()).arg("--version").output().ok()?;
    out.status.success().then(|| {
        String::from_utf8_lossy(&out.stdout)
            .lines()
            .next()
            .unwrap_or("strata ?")
            .trim()
            .to_string()
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const CLEAN: &str = r#"{
  "url": "http://127.0.0.1:5391/Xy?x=8&y=8",
  "mode": "closed",
  "target_rate": null,
  "processes": 1,
  "clients": 16,
  "sessions": 16,
  "elapsed_s": 2.0,
  "requests": 76034,
  "ok": 76034,
  "throughput": 38017.0,
  "errors": {"connect": 0, "timeout": 0, "status": 0, "validation": 0, "busy": 0, "io": 0},
  "error_rate": 0.0,
  "latency_ms": {"min": 0.034, "mean": 0.42, "p50": 0.381, "p90": 0.558, "p99": 1.419,
                 "p99_9": 4.519, "max": 8.479},
  "lost_processes": [],
  "interrupted": false,
  "thresholds": [],
  "passed": true
}"#;

    #[test]
    fn a_clean_report() {
        let r = parse(CLEAN).unwrap();
        assert_eq!(r.requests, 76034);
        assert_eq!(r.elapsed, Duration::from_secs(2));
        assert_eq!((r.non_2xx, r.socket_errors), (0, 0));
        assert_eq!(r.p50, Some(Duration::from_micros(381)));
        assert_eq!(r.p99, Some(Duration::from_micros(1419)));
        assert!((r.good_per_second() - 38017.0).abs() < 1e-6);
    }

    #[test]
    fn errors_are_split_into_bad_answers_and_no_answers() {
        let text = CLEAN
            .replace("\"requests\": 76034", "\"requests\": 76050")
            .replace(
                r#""connect": 0, "timeout": 0, "status": 0, "validation": 0, "busy": 0, "io": 0"#,
                r#""connect": 1, "timeout": 2, "status": 3, "validation": 4, "busy": 5, "io": 1"#,
            );
        let r = parse(&text).unwrap();
        assert_eq!(r.requests, 76034 + 12);
        assert_eq!(r.non_2xx, 12);
        assert_eq!(r.socket_errors, 4);
        // Only the good answers count.
        assert!((r.good_per_second() - 38017.0).abs() < 1e-6);
        // A report that does not add up, or a cut-short run, is refused.
        assert!(parse(&text.replace("76050", "76051")).is_err());
        assert!(parse(&CLEAN.replace("\"interrupted\": false", "\"interrupted\": true")).is_err());
        assert!(parse("not json").is_err());
    }

    #[test]
    fn the_command_line_matches_wrk() {
        let line = command_line("http://h/Xy?x=8&y=8", 5).join(" ");
        assert_eq!(
            line,
            "load http://h/Xy?x=8&y=8 --clients 16 --requests 0 --duration 5s --validate table --json"
        );
        assert!(wrk::command_line("u", 5).contains(&format!("-c{CLIENTS}")));
    }
}
