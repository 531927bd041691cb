//! `oha` (a Rust HTTP load generator on hyper and tokio) as a peer of the load client
//! benchmark: its command line, and the reading of its JSON report into the form of a wrk
//! report. `bench/run` installs it with `cargo install --locked oha` when it is missing.

use std::process::Command;
use std::time::Duration;

use super::wrk::{self, Report};

/// oha's open connections: as many as wrk's.
pub const CONNECTIONS: u32 = wrk::CONNECTIONS;

/// The error oha counts for the requests still in flight when its time is up: wrk and
/// `strata load` abandon those without counting them, so neither does the harness.
const DEADLINE: &str = "aborted due to deadline";

/// The `oha` command line for `url` over `seconds` (over HTTPS, trusting the run's CA, as
/// `strata load` does).
pub fn command_line(url: &str, seconds: u64) -> Vec<String> {
    let mut args = vec![
        "-z".to_string(),
        format!("{seconds}s"),
        "-c".to_string(),
        CONNECTIONS.to_string(),
        "--no-tui".to_string(),
        "--output-format".to_string(),
        "json".to_string(),
    ];
    if url.starts_with("https://") {
        args.push("--cacert".to_string());
        args.push(super::tls::ca_file().display().to_string());
    }
    args.push(url.to_string());
    args
}

/// Reads oha's JSON report.
pub fn parse(text: &str) -> Result<Report, String> {
    let v: serde_json::Value = serde_json::from_str(text.trim())
        .map_err(|e| format!("oha's report is not JSON ({e}): {text}"))?;
    let seconds = |x: &serde_json::Value| x.as_f64().map(Duration::from_secs_f64);
    let mut report = Report {
        elapsed: seconds(&v["summary"]["total"])
            .ok_or_else(|| format!("oha's report has no summary.total: {v}"))?,
        p50: seconds(&v["latencyPercentiles"]["p50"]),
        p99: seconds(&v["latencyPercentiles"]["p99"]),
        ..Report::default()
    };
    if let Some(codes) = v["statusCodeDistribution"].as_object() {
        for (code, n) in codes {
            let n = n.as_u64().unwrap_or(0);
            report.requests += n;
            if code.parse::<u16>().map_or(true, |c| c >= 400) {
                report.non_2xx += n;
            }
        }
    }
    if let Some(errors) = v["errorDistribution"].as_object() {
        report.socket_errors = errors
            .iter()
            .filter(|(what, _)| !what.contains(DEADLINE))
            .map(|(_, n)| n.as_u64().unwrap_or(0))
            .sum();
    }
    Ok(report)
}

/// oha's version, for the table notes.
pub fn version() -> Option<String> {
    let out = Command::new("oha").arg("--version").output().ok()?;
    let text = String::from_utf8_lossy(&out.stdout);
    let version = text.split_whitespace().nth(1)?;
    Some(format!("oha {version}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_report_reads_and_deadline_aborts_are_not_errors() {
        let text = r#"{"summary": {"successRate": 1.0, "total": 5.002, "requestsPerSec": 1000.0},
            "latencyPercentiles": {"p50": 0.0005, "p99": 0.002},
            "statusCodeDistribution": {"200": 4990, "503": 10},
            "errorDistribution": {"aborted due to deadline": 16, "connection closed": 2}}"#;
        let r = parse(text).unwrap();
        assert_eq!((r.requests, r.non_2xx, r.socket_errors), (5000, 10, 2));
        assert_eq!(r.elapsed, Duration::from_secs_f64(5.002));
        assert_eq!(r.p99, Some(Duration::from_millis(2)));
        assert!(parse("not json").is_err());
        assert!(command_line("https://127.0.0.1:1/", 5).contains(&"--cacert".to_string()));
        assert!(!command_line("http://127.0.0.1:1/", 5).contains(&"--cacert".to_string()));
    }
}
