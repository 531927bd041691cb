//! `strata load URL`: drives an HTTP service with many clients and reports throughput,
//! errors by kind and latency percentiles; thresholds turn the report into an exit status.

use std::io::{IsTerminal, Write};
use std::process::ExitCode;
use std::time::Duration;

use clap::Args;
use strata::load::{Fleet, Limits, LoadPlan, LoadProgress, LoadReport, Tally, Validation};
use strata::prelude::*;
use strata::process::Process;

/// Options of `strata load`.
#[derive(Args, Debug, Clone)]
pub struct LoadArgs {
    /// The URL: `http://host:port/path?query`, with templated parts drawn per request:
    /// `{1..100}` (a number in the range) or `{a,b,c}` (one of the words).
    pub url: String,
    /// Processes to run the clients in (clients, total and rate are divided among them).
    #[arg(long, default_value_t = 1)]
    pub processes: u32,
    /// Clients at once, in all processes; each holds one connection with one request in
    /// flight.
    #[arg(long, default_value_t = 16)]
    pub clients: u32,
    /// Requests per connection before a client disconnects and is replaced (0: no limit).
    #[arg(long, default_value_t = 100)]
    pub requests: u32,
    /// The pause between a response and the client's next request (like 10ms).
    #[arg(long, value_parser = duration, default_value = "0s")]
    pub pause: Duration,
    /// How much pauses vary, as a fraction (0.25: ±25%).
    #[arg(long, default_value_t = 0.25)]
    pub jitter: f64,
    /// How long to run (like 10s or 2m); 10s unless --total is given.
    #[arg(long, value_parser = duration)]
    pub duration: Option<Duration>,
    /// How many requests to make in all.
    #[arg(long)]
    pub total: Option<u64>,
    /// Constant-rate mode: requests per second in all, whatever the server does; latencies
    /// count from each request's due time (corrected for coordinated omission).
    #[arg(long)]
    pub rate: Option<f64>,
    /// How long one request may take before it counts as a timeout.
    #[arg(long, value_parser = duration, default_value = "5s")]
    pub timeout: Duration,
    /// The statuses that count as success, like 200,201 (default: any 2xx).
    #[arg(long, value_delimiter = ',')]
    pub expect_status: Vec<u16>,
    /// How bodies are checked: `none`, or `table` (the texture service's tables have the
    /// requested x and y).
    #[arg(long, value_parser = validation, default_value = "none")]
    pub validate: Validation,
    /// Print the report as JSON on stdout.
    #[arg(long)]
    pub json: bool,
    /// Fail (exit 1) when the 99th-percentile latency is above this (like 50ms).
    #[arg(long, value_parser = duration)]
    pub max_p99: Option<Duration>,
    /// Fail (exit 1) when the share of failed requests is above this (like 0.01 or 1%).
    #[arg(long, value_parser = fraction)]
    pub max_error_rate: Option<f64>,
}

impl LoadArgs {
    /// The plan these options describe.
    pub fn plan(&self) -> LoadPlan {
        LoadPlan {
            url: self.url.clone(),
            clients: self.clients,
            requests: self.requests,
            pause: self.pause,
            jitter: self.jitter,
            duration: match (self.duration, self.total) {
                (None, None) => Some(Duration::from_secs(10)),
                (d, _) => d,
            },
            total: self.total,
            rate: self.rate,
            timeout: self.timeout,
            expect_status: self.expect_status.clone(),
            validation: self.validate.clone(),
        }
    }

    /// The thresholds.
    pub fn limits(&self) -> Limits {
        Limits {
            max_p99: self.max_p99,
            max_error_rate: self.max_error_rate,
        }
    }
}

/// Parses `10ms`, `1.5s`, `2m`, `500us`, `1h`, or a bare number of seconds.
pub fn duration(s: &str) -> Result<Duration, String> {
    let t = s.trim();
    let split = t
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(t.len());
    let (number, unit) = t.split_at(split);
    let n: f64 = number
        .parse()
        .map_err(|_| format!("`{s}` is not a duration (like 250ms, 10s or 2m)"))?;
    let scale = match unit.trim() {
        "" | "s" => 1.0,
        "ms" => 1e-3,
        "us" | "µs" => 1e-6,
        "m" | "min" => 60.0,
        "h" => 3600.0,
        other => {
            return Err(format!(
                "`{other}` in `{s}` is not a unit (us, ms, s, m, h)"
            ))
        }
    };
    let secs = n * scale;
    if !secs.is_finite() || secs > 1e9 {
        return Err(format!("`{s}` is too long"));
    }
    Ok(Duration::from_secs_f64(secs))
}

/// Parses `0.01` or `1%`.
fn fraction(s: &str) -> Result<f64, String> {
    let (text, scale) = match s.trim().strip_suffix('%') {
        Some(p) => (p, 0.01),
        None => (s.trim(), 1.0),
    };
    let v = text
        .parse::<f64>()
        .map(|v| v * scale)
        .map_err(|_| format!("`{s}` is not a fraction (like 0.01 or 1%)"))?;
    if (0.0..=1.0).contains(&v) {
        Ok(v)
    } else {
        Err(format!("`{s}` is not between 0 and 1 (0% and 100%)"))
    }
}

/// The validations `--validate` can name (besides `none`); a `load-share` child finds a
/// plan's validation among them by name.
pub fn validations() -> Vec<Validation> {
    vec![strata_texture::table_check()]
}

fn validation(s: &str) -> Result<Validation, String> {
    if s == "none" {
        return Ok(Validation::none());
    }
    validations()
        .into_iter()
        .find(|v| v.name() == Some(s))
        .ok_or_else(|| format!("`{s}` is not a validation (none, table)"))
}

/// Runs `strata load`.
pub fn run(args: LoadArgs, log: Option<String>) -> ExitCode {
    let plan = args.plan();
    let fleet = match make_fleet(&plan, args.processes) {
        Ok(f) => f,
        Err(e) => {
            eprintln!("strata load: {e}");
            return ExitCode::from(2);
        }
    };
    let settings = strata::ProgramSettings {
        log,
        ..Default::default()
    };
    strata::main_with(
        Thread::new(move |cx: &mut ThreadContext| {
            let live = !args.json && std::io::stderr().is_terminal();
            let Some(report) = drive(cx, fleet, &plan, args.processes, args.limits(), live) else {
                return 1;
            };
            if args.json {
                println!(
                    "{}",
                    serde_json::to_string_pretty(&report).expect("a report encodes")
                );
            } else {
                print!("{report}");
            }
            i32::from(!report.passed)
        }),
        settings,
    )
}

/// The fleet for a plan: in this process, or in `processes` children running this
/// program's hidden `load-share` command.
pub fn make_fleet(plan: &LoadPlan, processes: u32) -> Result<Fleet, String> {
    let fleet = Fleet::new(plan.clone()).map_err(|e| e.to_string())?;
    if processes <= 1 {
        return Ok(fleet);
    }
    let exe = std::env::current_exe()
        .map_err(|e| format!("cannot find this program to run its processes: {e}"))?;
    fleet
        .processes(
            processes,
            Process::of(exe.to_string_lossy()).arg("load-share"),
        )
        .map_err(|e| e.to_string())
}

/// Runs a fleet to the end, showing progress on stderr when `live`; Ctrl-C ends the run
/// early (the report covers what was done). `None` when the fleet failed outright.
pub fn drive(
    cx: &mut ThreadContext,
    fleet: Fleet,
    plan: &LoadPlan,
    processes: u32,
    limits: Limits,
    live: bool,
) -> Option<LoadReport> {
    let me = cx.address();
    let fleet = cx.create(fleet.observed_by(me));
    let mut last = LoadProgress::default();
    let value = loop {
        let e = cx.recv();
        if let Some(p) = e.get::<LoadProgress>() {
            if live {
                show(p, &last);
            }
            last = *p;
        } else if e.is::<Stop>() {
            cx.stop(fleet);
        } else if e.is::<Returned>() && e.sender() == fleet {
            break e.take::<Returned>().expect("checked").value;
        }
    };
    if live {
        eprint!("\r{:78}\r", "");
    }
    match value.downcast::<Tally>() {
        Ok(tally) => Some(LoadReport::new(&tally, plan, processes, limits)),
        Err(other) => {
            eprintln!("strata load: the run failed: {other:?}");
            None
        }
    }
}

fn show(p: &LoadProgress, last: &LoadProgress) {
    let dt = p.elapsed.saturating_sub(last.elapsed).as_secs_f64();
    let done = (p.ok + p.errors).saturating_sub(last.ok + last.errors);
    let rate = if dt > 0.0 { done as f64 / dt } else { 0.0 };
    let mut err = std::io::stderr();
    let _ = write!(
        err,
        "\r  {:6.1}s  {:>10} ok  {:>8} errors  {:>9.0} requests/s ",
        p.elapsed.as_secs_f64(),
        p.ok,
        p.errors,
        rate
    );
    let _ = err.flush();
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_and_fractions_parse_or_say_why() {
        assert_eq!(duration("250ms").unwrap(), Duration::from_millis(250));
        assert_eq!(duration("1.5s").unwrap(), Duration::from_millis(1500));
        assert_eq!(duration("2m").unwrap(), Duration::from_secs(120));
        assert_eq!(duration("3").unwrap(), Duration::from_secs(3));
        assert!(duration("fast").unwrap_err().contains("not a duration"));
        assert!(duration("3 weeks").unwrap_err().contains("not a unit"));
        assert_eq!(fraction("1%").unwrap(), 0.01);
        assert_eq!(fraction("0.5").unwrap(), 0.5);
        assert!(fraction("150%").is_err());
        assert!(fraction("x").is_err());
    }
}
