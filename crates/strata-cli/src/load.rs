//! `strata load URL`: drives an HTTP or HTTPS service with many clients and reports
//! throughput, errors by kind and latency percentiles; thresholds turn the report into an
//! exit status. Requests may have any method, headers and body (or come from a request
//! file), responses may be checked beyond their status, the load may follow stages, and
//! `--report` writes an HTML page with charts.

use std::io::IsTerminal;
use std::process::ExitCode;
use std::time::Duration;

use clap::{Args, ValueEnum};
use indicatif::{ProgressBar, ProgressStyle};
use strata::load::{
    html_report, parse_header, Body, Expect, Fleet, Limits, LoadPlan, LoadProgress, LoadReport,
    Order, ScriptedRequest, Stage, Tally, TlsOptions, Validation,
};
use strata::prelude::*;
use strata::process::Process;

/// Options of `strata load`.
#[derive(Args, Debug, Clone)]
pub struct LoadArgs {
    /// The URL: `http://host:port/path?query` or `https://...`, with templated parts drawn
    /// per request: `{1..100}` (a number in the range) or `{a,b,c}` (one of the words).
    pub url: String,
    /// The request method.
    #[arg(long, default_value = "GET")]
    pub method: String,
    /// A header sent with every request, `Name: value` (repeat for more).
    #[arg(long = "header", short = 'H', value_name = "NAME: VALUE")]
    pub headers: Vec<String>,
    /// The body of every request, as given.
    #[arg(long, conflicts_with_all = ["body_file", "body_json"])]
    pub body: Option<String>,
    /// The body of every request: this file's bytes.
    #[arg(long, value_name = "PATH", conflicts_with = "body_json")]
    pub body_file: Option<String>,
    /// A JSON body template, drawn per request like the URL (`{"id": {1..100}, "kind":
    /// "{a,b}"}`), sent as application/json; `@PATH` reads it from a file.
    #[arg(long, value_name = "TEMPLATE")]
    pub body_json: Option<String>,
    /// A request file: one JSON request a line (`{"method": "POST", "path": "/x",
    /// "headers": {"A": "b"}, "body": ...}`), made instead of the URL's path.
    #[arg(long, value_name = "PATH")]
    pub request_file: Option<String>,
    /// The order the request file's lines are made in.
    #[arg(long, value_enum, default_value = "in-order")]
    pub request_order: RequestOrder,
    /// Count a response whose body lacks this text as a validation error (repeatable).
    #[arg(long, value_name = "TEXT")]
    pub expect_body_contains: Vec<String>,
    /// Count a response as a validation error unless its JSON has this value at this
    /// pointer: `/status="ok"`, `/items/0/id=3` (repeatable).
    #[arg(long, value_name = "POINTER=VALUE")]
    pub expect_json: Vec<String>,
    /// HTTPS: trust only the certificates in this PEM file (instead of the system's).
    #[arg(long, value_name = "FILE")]
    pub cacert: Option<String>,
    /// HTTPS: check no certificate at all (test servers only).
    #[arg(long)]
    pub insecure: bool,
    /// One request per connection (`Connection: close`): every request pays for a new
    /// connection, and over HTTPS a handshake.
    #[arg(long)]
    pub no_keep_alive: bool,
    /// Stages like k6's, `30s:100,1m:100,30s:0`: the clients (with --rate, the rate, from
    /// --rate's value) move linearly to each target; the run lasts their sum.
    #[arg(long, value_parser = Stage::parse_list, conflicts_with = "duration")]
    pub stages: Option<Vec<Stage>>,
    /// Write an HTML report (charts over time, the latency distribution) to this file.
    #[arg(long, value_name = "FILE.html")]
    pub report: Option<String>,
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

/// The order of a request file's lines.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum RequestOrder {
    /// One after the other, from the first again after the last.
    InOrder,
    /// At random.
    Random,
}

/// Reads a file the options name, saying which option when it cannot.
fn read(option: &str, path: &str) -> Result<Vec<u8>, String> {
    std::fs::read(path).map_err(|e| format!("{option} {path}: {e}"))
}

fn read_text(option: &str, path: &str) -> Result<String, String> {
    String::from_utf8(read(option, path)?).map_err(|_| format!("{option} {path}: not UTF-8 text"))
}

impl LoadArgs {
    /// The plan these options describe; reads the files they name (the error names the
    /// option and the file).
    pub fn plan(&self) -> Result<LoadPlan, String> {
        let headers = self
            .headers
            .iter()
            .map(|h| parse_header(h).map_err(|e| format!("--header: {e}")))
            .collect::<Result<Vec<_>, _>>()?;
        let body = match (&self.body, &self.body_file, &self.body_json) {
            (Some(text), _, _) => Body::Bytes(text.clone().into_bytes()),
            (_, Some(path), _) => Body::Bytes(read("--body-file", path)?),
            (_, _, Some(t)) => match t.strip_prefix('@') {
                Some(path) => Body::Json(read_text("--body-json", path)?),
                None => Body::Json(t.clone()),
            },
            _ => Body::None,
        };
        let script = match &self.request_file {
            Some(path) => ScriptedRequest::parse_lines(&read_text("--request-file", path)?)
                .map_err(|e| format!("--request-file {path}: {e}"))?,
            None => Vec::new(),
        };
        let mut expect: Vec<Expect> = self
            .expect_body_contains
            .iter()
            .map(|t| Expect::BodyContains(t.clone()))
            .collect();
        for spec in &self.expect_json {
            expect.push(Expect::json(spec).map_err(|e| format!("--expect-json: {e}"))?);
        }
        let ca_pem = match &self.cacert {
            Some(path) => Some(read_text("--cacert", path)?),
            None => None,
        };
        let stages = self.stages.clone().unwrap_or_default();
        Ok(LoadPlan {
            url: self.url.clone(),
            clients: self.clients,
            requests: self.requests,
            pause: self.pause,
            jitter: self.jitter,
            duration: match (self.duration, self.total) {
                _ if !stages.is_empty() => None,
                (None, None) => Some(Duration::from_secs(10)),
                (d, _) => d,
            },
            total: self.total,
            rate: self.rate,
            timeout: self.timeout,
            expect_status: self.expect_status.clone(),
            validation: self.validate.clone(),
            method: self.method.clone(),
            headers,
            body,
            script,
            order: match self.request_order {
                RequestOrder::InOrder => Order::InOrder,
                RequestOrder::Random => Order::Random,
            },
            expect,
            keep_alive: !self.no_keep_alive,
            tls: TlsOptions {
                ca_pem,
                insecure: self.insecure,
            },
            stages,
            timeline: self.report.is_some(),
        })
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
    let plan = match args.plan() {
        Ok(p) => p,
        Err(e) => {
            eprintln!("strata load: {e}");
            return ExitCode::from(2);
        }
    };
    if plan.tls.insecure {
        eprintln!(
            "strata load: WARNING: --insecure: the server's certificate is NOT checked \
             (not its issuer, not its name, not its dates); anyone on the way can pose as \
             the server. Use it only against a test server."
        );
    }
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
            let Some((report, tally)) =
                drive_tally(cx, fleet, &plan, args.processes, args.limits(), live)
            else {
                return 1;
            };
            if let Some(path) = &args.report {
                let page = html_report(&report, &tally, &plan);
                if let Err(e) = std::fs::write(path, page) {
                    eprintln!("strata load: --report {path}: {e}");
                    return 2;
                }
            }
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
    drive_tally(cx, fleet, plan, processes, limits, live).map(|(r, _)| r)
}

/// [`drive`], returning the tally too (for the HTML report).
pub fn drive_tally(
    cx: &mut ThreadContext,
    fleet: Fleet,
    plan: &LoadPlan,
    processes: u32,
    limits: Limits,
    live: bool,
) -> Option<(LoadReport, Tally)> {
    let me = cx.address();
    let fleet = cx.create(fleet.observed_by(me));
    let mut last = LoadProgress::default();
    let bar = live.then(|| progress_bar(plan));
    let value = loop {
        let e = cx.recv();
        if let Some(p) = e.get::<LoadProgress>() {
            if let Some(bar) = &bar {
                show(bar, plan, p, &last);
            }
            last = *p;
        } else if e.is::<Stop>() {
            cx.stop(fleet);
        } else if e.is::<Returned>() && e.sender() == fleet {
            break e.take::<Returned>().expect("checked").value;
        }
    };
    if let Some(bar) = bar {
        bar.finish_and_clear();
    }
    match value.downcast::<Tally>() {
        Ok(tally) => Some((LoadReport::new(&tally, plan, processes, limits), tally)),
        Err(other) => {
            eprintln!("strata load: the run failed: {other:?}");
            None
        }
    }
}

/// The live progress bar: over the run's time (or its total of requests).
fn progress_bar(plan: &LoadPlan) -> ProgressBar {
    let length = match plan.run_time() {
        Some(d) => d.as_millis() as u64,
        None => plan.total.unwrap_or(1),
    };
    let bar = ProgressBar::new(length.max(1));
    bar.set_style(
        ProgressStyle::with_template("  [{bar:36.cyan/blue}] {msg}")
            .expect("a valid template")
            .progress_chars("=> "),
    );
    bar
}

fn show(bar: &ProgressBar, plan: &LoadPlan, p: &LoadProgress, last: &LoadProgress) {
    let dt = p.elapsed.saturating_sub(last.elapsed).as_secs_f64();
    let done = (p.ok + p.errors).saturating_sub(last.ok + last.errors);
    let rate = if dt > 0.0 { done as f64 / dt } else { 0.0 };
    let left = match plan.run_time() {
        Some(d) => {
            bar.set_position(p.elapsed.as_millis().min(d.as_millis()) as u64);
            format!("{:.0}s left", d.saturating_sub(p.elapsed).as_secs_f64())
        }
        None => {
            let total = plan.total.unwrap_or(0);
            bar.set_position(p.ok + p.errors);
            format!("{} requests left", total.saturating_sub(p.ok + p.errors))
        }
    };
    bar.set_message(format!(
        "{left}  {rate:.0} requests/s  {} ok  {} errors",
        p.ok, p.errors
    ));
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
