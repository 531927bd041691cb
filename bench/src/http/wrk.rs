//! `wrk`'s command line and the reading of its report: requests, their duration, the
//! responses that were not 2xx or 3xx, socket errors and latency percentiles. The report
//! is also the form `strata load`'s is read into (`strata_load.rs`); `loader.rs` runs
//! either.

use std::process::Command;
use std::time::Duration;

/// wrk's threads, as in `wrk -t2`.
pub const THREADS: u32 = 2;
/// wrk's open connections, as in `wrk -c16`.
pub const CONNECTIONS: u32 = 16;

/// What one run of a load generator reports: wrk's report, or `strata load`'s read into
/// the same form.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Report {
    /// Responses received (any status).
    pub requests: u64,
    /// The measured span.
    pub elapsed: Duration,
    /// Responses whose status was 400 or more (wrk's "Non-2xx or 3xx responses"; for
    /// `strata load`, the answers it counted as failed: bad status, 503, failed
    /// validation).
    pub non_2xx: u64,
    /// Connect, read, write errors and time-outs, added up.
    pub socket_errors: u64,
    /// The median latency.
    pub p50: Option<Duration>,
    /// The 99th percentile latency.
    pub p99: Option<Duration>,
    /// CPU time (user + system, all threads) the server used during the run: not from
    /// wrk, filled in by the harness.
    pub server_cpu: Option<Duration>,
    /// The server had ended by the time wrk was done, though wrk saw no socket error:
    /// it ended as wrk closed its connections. Filled in by the harness.
    pub server_ended: bool,
    /// CPU time (user + system, all threads) the load generator itself used over its
    /// whole run: filled in by the harness.
    pub loader_cpu: Option<Duration>,
}

impl Report {
    /// Answered requests per second, counting only the good (2xx/3xx) responses, so a
    /// server that answers 503 quickly does not look fast.
    pub fn good_per_second(&self) -> f64 {
        let good = self.requests.saturating_sub(self.non_2xx);
        good as f64 / self.elapsed.as_secs_f64().max(1e-9)
    }

    /// The server's CPU time per response, when known.
    pub fn cpu_per_request(&self) -> Option<Duration> {
        self.per_request(self.server_cpu?)
    }

    /// The load generator's CPU time per response, when known.
    pub fn loader_cpu_per_request(&self) -> Option<Duration> {
        self.per_request(self.loader_cpu?)
    }

    fn per_request(&self, cpu: Duration) -> Option<Duration> {
        (self.requests > 0).then(|| cpu / u32::try_from(self.requests).unwrap_or(u32::MAX))
    }
}

/// The `wrk` command line for `url` over `seconds`.
pub fn command_line(url: &str, seconds: u64) -> Vec<String> {
    vec![
        format!("-t{THREADS}"),
        format!("-c{CONNECTIONS}"),
        format!("-d{seconds}s"),
        "--latency".to_string(),
        url.to_string(),
    ]
}

/// A wrk duration: `592.00us`, `3.12ms`, `1.01s`, `2.00m`.
fn duration(text: &str) -> Option<Duration> {
    let text = text.trim();
    let split = text.find(|c: char| c.is_ascii_alphabetic())?;
    let (number, unit) = text.split_at(split);
    let value: f64 = number.parse().ok()?;
    let seconds = match unit {
        "us" => value / 1e6,
        "ms" => value / 1e3,
        "s" => value,
        "m" => value * 60.0,
        "h" => value * 3600.0,
        _ => return None,
    };
    Some(Duration::from_secs_f64(seconds))
}

/// Reads wrk's report; `None` when the request count is missing.
pub fn parse(text: &str) -> Option<Report> {
    let mut report = Report::default();
    let mut found = false;
    for line in text.lines().map(str::trim) {
        if let Some((count, rest)) = line.split_once(" requests in ") {
            report.requests = count.trim().parse().ok()?;
            report.elapsed = duration(rest.split(',').next()?)?;
            found = true;
        } else if let Some(n) = line.strip_prefix("Non-2xx or 3xx responses:") {
            report.non_2xx = n.trim().parse().ok()?;
        } else if let Some(errors) = line.strip_prefix("Socket errors:") {
            // "connect 0, read 0, write 0, timeout 0"
            report.socket_errors = errors
                .split(',')
                .filter_map(|part| part.split_whitespace().nth(1)?.parse::<u64>().ok())
                .sum();
        } else if let Some(v) = line.strip_prefix("50%") {
            report.p50 = duration(v);
        } else if let Some(v) = line.strip_prefix("99%") {
            report.p99 = duration(v);
        }
    }
    found.then_some(report)
}

/// wrk's version line, for the table notes.
pub fn version() -> Option<String> {
    let out = Command::new("wrk").arg("--version").output().ok()?;
    // wrk prints its version and usage, and exits non-zero; both streams are possible.
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    let first = text.lines().next()?.trim();
    let version = first.split_whitespace().nth(1)?;
    Some(format!("wrk {version}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    const CLEAN: &str = "Running 3s test @ http://127.0.0.1:5101/Xy?x=8&y=8
  2 threads and 16 connections
  Thread Stats   Avg      Stdev     Max   +/- Stdev
    Latency   700.67us  616.36us   6.11ms   88.59%
    Req/Sec    12.71k     2.13k   19.41k    75.00%
  Latency Distribution
     50%  592.00us
     75%  800.00us
     90%    1.20ms
     99%    3.12ms
  75911 requests in 3.00s, 98.48MB read
Requests/sec:  25276.85
Transfer/sec:     32.79MB
";

    #[test]
    fn a_clean_report() {
        let r = parse(CLEAN).unwrap();
        assert_eq!(r.requests, 75911);
        assert_eq!(r.elapsed, Duration::from_secs(3));
        assert_eq!(r.non_2xx, 0);
        assert_eq!(r.socket_errors, 0);
        assert_eq!(r.p50, Some(Duration::from_micros(592)));
        assert_eq!(r.p99, Some(Duration::from_micros(3120)));
        assert!((r.good_per_second() - 75911.0 / 3.0).abs() < 1e-6);
    }

    #[test]
    fn errors_and_bad_statuses_are_counted() {
        let text = CLEAN.replace(
            "Requests/sec:",
            "  Socket errors: connect 1, read 2, write 0, timeout 4\n  Non-2xx or 3xx responses: 911\nRequests/sec:",
        );
        let r = parse(&text).unwrap();
        assert_eq!(r.socket_errors, 7);
        assert_eq!(r.non_2xx, 911);
        assert!((r.good_per_second() - 75000.0 / 3.0).abs() < 1e-6);
    }

    #[test]
    fn durations() {
        assert_eq!(duration("1.50s"), Some(Duration::from_millis(1500)));
        assert_eq!(duration("2.00m"), Some(Duration::from_secs(120)));
        assert_eq!(duration("12.5ms"), Some(Duration::from_micros(12500)));
        assert_eq!(duration("fast"), None);
        assert!(parse("nothing here").is_none());
    }
}
