//! Recording a load run: outcomes counted by kind, latencies in an HDR histogram, and the
//! reports made from them.
//!
//! Clients record through their kit into the process's recorder (shared by the clients of
//! one process: atomic counters and a histogram behind a lock held for a few nanoseconds). A process's record
//! travels as a [`Tally`] (counts plus the histogram's buckets), which merges exactly with
//! the tallies of other processes; the final [`LoadReport`] is computed from the merged
//! tally.
//!
//! When the plan asks for a timeline (a report over time, or stages), the recorder also
//! keeps one [`SecondTally`] per second of the run: counts by kind, the clients at work,
//! and latencies in coarse logarithmic buckets (1/32 of an octave), so that percentiles
//! over time cost 3.5 KiB a second. Without it nothing of this is touched.

use std::sync::atomic::{AtomicU32, AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use hdrhistogram::Histogram;
use parking_lot::Mutex;
use serde::{Deserialize, Serialize};

use crate::Message;

/// The highest latency the histogram tells apart, in microseconds (an hour); longer ones
/// are recorded as this.
const MAX_LATENCY_US: u64 = 3_600_000_000;

/// Why a request did not succeed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum ErrorKind {
    /// The connection could not be made.
    Connect,
    /// No complete response within the request timeout.
    Timeout,
    /// A status that was not expected.
    Status,
    /// The body failed validation.
    Validation,
    /// The server pushed back: `503 Service Unavailable` (`Busy`, `Overloaded`).
    Busy,
    /// The connection broke mid-request, or the response was not HTTP.
    Io,
}

impl ErrorKind {
    /// Every kind, in report order.
    pub const ALL: [ErrorKind; 6] = [
        ErrorKind::Connect,
        ErrorKind::Timeout,
        ErrorKind::Status,
        ErrorKind::Validation,
        ErrorKind::Busy,
        ErrorKind::Io,
    ];

    /// The kind's name in reports.
    pub fn name(self) -> &'static str {
        match self {
            ErrorKind::Connect => "connect",
            ErrorKind::Timeout => "timeout",
            ErrorKind::Status => "status",
            ErrorKind::Validation => "validation",
            ErrorKind::Busy => "busy",
            ErrorKind::Io => "io",
        }
    }

    /// Whether a response arrived (its latency is recorded).
    pub(crate) fn answered(self) -> bool {
        matches!(
            self,
            ErrorKind::Status | ErrorKind::Validation | ErrorKind::Busy
        )
    }
}

/// How one request went.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// Expected status, valid body.
    Ok,
    /// Failed, for this reason.
    Failed(ErrorKind),
}

/// Where the clients of one process record what happened; cheap to clone.
#[derive(Clone)]
pub(crate) struct Recorder {
    inner: Arc<Inner>,
}

struct Inner {
    ok: AtomicU64,
    errors: [AtomicU64; 6],
    sessions: AtomicU64,
    latencies: Mutex<Histogram<u64>>,
    /// Second by second, when asked for.
    timeline: Option<Mutex<Vec<SecondTally>>>,
    began: Instant,
    /// Clients at work now (set by the run), for the timeline.
    clients: AtomicU32,
    /// Examples of failures (a few), and how many were offered.
    examples: Mutex<Vec<String>>,
    offered: AtomicUsize,
}

/// How many examples of failures a tally keeps.
pub(crate) const EXAMPLES: usize = 5;

impl Default for Recorder {
    fn default() -> Self {
        Recorder::new(false)
    }
}

fn new_histogram() -> Histogram<u64> {
    Histogram::new_with_bounds(1, MAX_LATENCY_US, 3).expect("valid histogram bounds")
}

impl std::fmt::Debug for Recorder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Recorder")
            .field("ok", &self.inner.ok.load(Ordering::Relaxed))
            .finish_non_exhaustive()
    }
}

impl Recorder {
    /// A recorder; `timeline`: also keep figures second by second.
    pub(crate) fn new(timeline: bool) -> Recorder {
        Recorder {
            inner: Arc::new(Inner {
                ok: AtomicU64::new(0),
                errors: Default::default(),
                sessions: AtomicU64::new(0),
                latencies: Mutex::new(new_histogram()),
                timeline: timeline.then(|| Mutex::new(Vec::new())),
                began: Instant::now(),
                clients: AtomicU32::new(0),
                examples: Mutex::new(Vec::new()),
                offered: AtomicUsize::new(0),
            }),
        }
    }

    /// Notes the number of clients at work now (for the timeline).
    pub(crate) fn set_clients(&self, n: u32) {
        self.inner.clients.store(n, Ordering::Relaxed);
        if let Some(t) = &self.inner.timeline {
            let second = self.inner.began.elapsed().as_secs() as usize;
            let mut t = t.lock();
            let s = second_of(&mut t, second);
            s.clients = s.clients.max(n);
        }
    }

    /// Keeps `text` as an example of a failure, if fewer than a few are kept.
    pub(crate) fn example(&self, text: impl FnOnce() -> String) {
        if self.inner.offered.fetch_add(1, Ordering::Relaxed) < EXAMPLES {
            self.inner.examples.lock().push(text());
        }
    }

    /// Records one request. Latency is recorded for answered requests (successes and
    /// status, validation and busy errors), not for connect failures, time-outs and broken
    /// connections.
    pub(crate) fn record(&self, outcome: Outcome, latency: Duration) {
        let answered = match outcome {
            Outcome::Ok => {
                self.inner.ok.fetch_add(1, Ordering::Relaxed);
                true
            }
            Outcome::Failed(kind) => {
                self.inner.errors[kind as usize].fetch_add(1, Ordering::Relaxed);
                kind.answered()
            }
        };
        let us = (latency.as_micros() as u64).clamp(1, MAX_LATENCY_US);
        if answered {
            self.inner.latencies.lock().saturating_record(us);
        }
        if let Some(t) = &self.inner.timeline {
            let second = self.inner.began.elapsed().as_secs() as usize;
            let clients = self.inner.clients.load(Ordering::Relaxed);
            let mut t = t.lock();
            let s = second_of(&mut t, second);
            s.clients = s.clients.max(clients);
            match outcome {
                Outcome::Ok => s.ok += 1,
                Outcome::Failed(kind) => s.errors[kind as usize] += 1,
            }
            if answered {
                s.add_latency(us, 1);
            }
        }
    }

    /// Counts a client session (one connection's worth of requests) begun.
    pub(crate) fn session(&self) {
        self.inner.sessions.fetch_add(1, Ordering::Relaxed);
    }

    /// Everything recorded so far, `elapsed` being the time it took.
    pub(crate) fn tally(&self, elapsed: Duration) -> Tally {
        let h = self.inner.latencies.lock();
        Tally {
            elapsed,
            ok: self.inner.ok.load(Ordering::Relaxed),
            errors: ErrorKind::ALL.map(|k| self.inner.errors[k as usize].load(Ordering::Relaxed)),
            sessions: self.inner.sessions.load(Ordering::Relaxed),
            latencies: h
                .iter_recorded()
                .map(|v| (v.value_iterated_to(), v.count_at_value()))
                .collect(),
            timeline: self
                .inner
                .timeline
                .as_ref()
                .map(|t| t.lock().clone())
                .unwrap_or_default(),
            examples: self.inner.examples.lock().clone(),
            ..Tally::default()
        }
    }

    /// The counts so far (cheap: no histogram), for progress.
    pub(crate) fn progress(&self, elapsed: Duration) -> LoadProgress {
        let errors: u64 = self
            .inner
            .errors
            .iter()
            .map(|e| e.load(Ordering::Relaxed))
            .sum();
        LoadProgress {
            elapsed,
            ok: self.inner.ok.load(Ordering::Relaxed),
            errors,
        }
    }
}

/// The entry of `second`, made (with those before it) when missing.
fn second_of(t: &mut Vec<SecondTally>, second: usize) -> &mut SecondTally {
    if t.len() <= second {
        t.resize_with(second + 1, SecondTally::default);
    }
    &mut t[second]
}

/// Latency buckets of a second: 1/32 of an octave, from 1 µs to an hour.
const BUCKETS: usize = 896;

/// The bucket of a latency in microseconds.
fn bucket(us: u64) -> usize {
    let us = us.min(MAX_LATENCY_US);
    if us < 64 {
        us as usize
    } else {
        let e = 63 - us.leading_zeros() as usize - 5;
        32 * e + (us >> e) as usize
    }
}

/// The middle of a bucket, in microseconds.
fn bucket_value(index: usize) -> f64 {
    if index < 64 {
        index as f64
    } else {
        let e = index / 32 - 1;
        let m = (index % 32 + 32) as u64;
        let (lo, hi) = (m << e, ((m + 1) << e) - 1);
        (lo + hi) as f64 / 2.0
    }
}

/// One second of a run: what completed in it.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct SecondTally {
    /// Successful requests.
    pub ok: u64,
    /// Failures, by [`ErrorKind`] in [`ErrorKind::ALL`] order.
    pub errors: [u64; 6],
    /// The most clients at work during the second.
    pub clients: u32,
    /// Latencies of answered requests: counts by bucket, each 1/32 of an octave wide from
    /// 1 µs (empty when the second had none).
    pub latencies: Vec<u32>,
}

impl SecondTally {
    fn add_latency(&mut self, us: u64, n: u32) {
        if self.latencies.is_empty() {
            self.latencies = vec![0; BUCKETS];
        }
        self.latencies[bucket(us)] += n;
    }

    /// Adds another share's second to this one.
    fn merge(&mut self, other: &SecondTally) {
        self.ok += other.ok;
        for (a, b) in self.errors.iter_mut().zip(other.errors) {
            *a += b;
        }
        self.clients += other.clients;
        if !other.latencies.is_empty() {
            if self.latencies.is_empty() {
                self.latencies = vec![0; BUCKETS];
            }
            for (a, b) in self.latencies.iter_mut().zip(&other.latencies) {
                *a += b;
            }
        }
    }

    /// Requests completed in the second.
    pub fn requests(&self) -> u64 {
        self.ok + self.errors.iter().sum::<u64>()
    }
}

/// Latency buckets summed over some seconds, for percentiles.
#[derive(Default)]
struct Buckets(Vec<u64>);

impl Buckets {
    fn add(&mut self, s: &SecondTally) {
        if s.latencies.is_empty() {
            return;
        }
        if self.0.is_empty() {
            self.0 = vec![0; BUCKETS];
        }
        for (a, &b) in self.0.iter_mut().zip(&s.latencies) {
            *a += u64::from(b);
        }
    }

    /// The latency at quantile `q`, in milliseconds (`None` with no latencies).
    fn quantile_ms(&self, q: f64) -> Option<f64> {
        let total: u64 = self.0.iter().sum();
        if total == 0 {
            return None;
        }
        let want = ((q * total as f64).ceil() as u64).clamp(1, total);
        let mut seen = 0;
        for (i, &n) in self.0.iter().enumerate() {
            seen += n;
            if seen >= want {
                return Some(bucket_value(i) / 1000.0);
            }
        }
        None
    }
}

/// Counts so far, sent to whoever watches a run.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize, Message)]
#[message(name = "strata.LoadProgress")]
pub struct LoadProgress {
    /// Time since the run began.
    pub elapsed: Duration,
    /// Successful requests.
    pub ok: u64,
    /// Failed requests, all kinds.
    pub errors: u64,
}

/// The raw record of a run (or of one process's share of it); tallies merge exactly.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, Message)]
#[message(name = "strata.LoadTally")]
pub struct Tally {
    /// How long the run took.
    pub elapsed: Duration,
    /// Successful requests.
    pub ok: u64,
    /// Failures, by [`ErrorKind`] in [`ErrorKind::ALL`] order.
    pub errors: [u64; 6],
    /// Client sessions begun (clients made).
    pub sessions: u64,
    /// Latency histogram buckets in microseconds: (highest value, count).
    pub latencies: Vec<(u64, u64)>,
    /// Processes (shares) merged into this tally.
    pub shares: u32,
    /// Shares that ended without a tally, with the reason.
    pub lost: Vec<String>,
    /// Whether the run was stopped early.
    pub interrupted: bool,
    /// Second by second, when the plan asked for a timeline.
    pub timeline: Vec<SecondTally>,
    /// A few examples of failures (`kind: what`).
    pub examples: Vec<String>,
}

impl Tally {
    /// Adds another share's tally to this one (elapsed: the longer of the two).
    pub fn merge(&mut self, other: &Tally) {
        self.elapsed = self.elapsed.max(other.elapsed);
        self.ok += other.ok;
        for (a, b) in self.errors.iter_mut().zip(other.errors) {
            *a += b;
        }
        self.sessions += other.sessions;
        self.latencies.extend_from_slice(&other.latencies);
        self.shares += other.shares.max(1);
        self.lost.extend(other.lost.iter().cloned());
        self.interrupted |= other.interrupted;
        if self.timeline.len() < other.timeline.len() {
            self.timeline
                .resize_with(other.timeline.len(), SecondTally::default);
        }
        for (a, b) in self.timeline.iter_mut().zip(&other.timeline) {
            a.merge(b);
        }
        for e in &other.examples {
            if self.examples.len() < EXAMPLES {
                self.examples.push(e.clone());
            }
        }
    }

    /// The latency histogram (microseconds) of the whole run.
    pub fn latency_histogram(&self) -> Histogram<u64> {
        self.histogram()
    }

    fn histogram(&self) -> Histogram<u64> {
        let mut h = new_histogram();
        for &(value, count) in &self.latencies {
            h.saturating_record_n(value, count);
        }
        h
    }
}

/// Latency figures in milliseconds.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize)]
pub struct Latency {
    /// Fastest.
    pub min: f64,
    /// Mean.
    pub mean: f64,
    /// Median.
    pub p50: f64,
    /// 90th percentile.
    pub p90: f64,
    /// 99th percentile.
    pub p99: f64,
    /// 99.9th percentile.
    pub p99_9: f64,
    /// Slowest.
    pub max: f64,
}

/// Errors by kind.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Errors {
    /// Connections that could not be made.
    pub connect: u64,
    /// Requests that timed out.
    pub timeout: u64,
    /// Unexpected statuses.
    pub status: u64,
    /// Bodies that failed validation.
    pub validation: u64,
    /// 503 answers: the server pushed back.
    pub busy: u64,
    /// Broken connections and responses that were not HTTP.
    pub io: u64,
}

/// A threshold checked at the end of a run.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Threshold {
    /// What is limited: `p99_ms` or `error_rate`.
    pub name: String,
    /// The limit.
    pub limit: f64,
    /// What the run measured.
    pub measured: f64,
    /// Whether the run stayed within the limit.
    pub passed: bool,
}

/// The report of a run: what `strata load --json` prints.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Message)]
#[message(name = "strata.LoadReport")]
pub struct LoadReport {
    /// The URL (template) loaded.
    pub url: String,
    /// `closed` (each client waits for its answer) or `constant-rate`.
    pub mode: String,
    /// The target rate in constant-rate mode, requests per second.
    pub target_rate: Option<f64>,
    /// Processes the clients ran in.
    pub processes: u32,
    /// Clients at once.
    pub clients: u32,
    /// Client sessions begun (clients are replaced when they complete).
    pub sessions: u64,
    /// Seconds the run took.
    pub elapsed_s: f64,
    /// Requests that completed, successfully or not.
    pub requests: u64,
    /// Successful requests.
    pub ok: u64,
    /// Requests per second (`requests / elapsed_s`).
    pub throughput: f64,
    /// Failed requests by kind.
    pub errors: Errors,
    /// Failed requests / requests (0 when there were none).
    pub error_rate: f64,
    /// Latencies of answered requests, in milliseconds (from each request's due time in
    /// constant-rate mode).
    pub latency_ms: Latency,
    /// Processes that ended without reporting, with the reason.
    pub lost_processes: Vec<String>,
    /// Whether the run was stopped early (Ctrl-C).
    pub interrupted: bool,
    /// The thresholds checked.
    pub thresholds: Vec<Threshold>,
    /// Whether every threshold held, over the run and in every stage (and no process
    /// was lost).
    pub passed: bool,
    /// A few examples of failures (`kind: what`), the first ones seen.
    pub examples: Vec<String>,
    /// Each stage's figures and thresholds (empty without stages).
    pub stages: Vec<StageReport>,
    /// Second by second (empty unless the plan kept a timeline).
    pub seconds: Vec<SecondReport>,
}

/// One second of a run, in a report.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SecondReport {
    /// Seconds into the run (this second's start).
    pub t: u64,
    /// How much of this second the run covered (less than 1 for the last).
    pub span_s: f64,
    /// Requests completed in it.
    pub requests: u64,
    /// Of which successful.
    pub ok: u64,
    /// Failures by kind.
    pub errors: Errors,
    /// The most clients at work.
    pub clients: u32,
    /// Latency percentiles, in milliseconds (`None` when nothing was answered).
    pub p50_ms: Option<f64>,
    /// 90th percentile.
    pub p90_ms: Option<f64>,
    /// 99th percentile.
    pub p99_ms: Option<f64>,
}

/// One stage of a run, in a report (latencies from the timeline's buckets: within 3%).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StageReport {
    /// The stage's number, from 1.
    pub stage: usize,
    /// Where it began and ended, in seconds into the run.
    pub from_s: f64,
    /// Where it ended.
    pub to_s: f64,
    /// Its target (clients, or requests per second).
    pub target: f64,
    /// Requests completed in it.
    pub requests: u64,
    /// Requests per second in it.
    pub throughput: f64,
    /// Its share of failed requests.
    pub error_rate: f64,
    /// Its 99th-percentile latency, in milliseconds.
    pub p99_ms: Option<f64>,
    /// The run's thresholds, judged over this stage.
    pub thresholds: Vec<Threshold>,
    /// Whether every threshold held in it.
    pub passed: bool,
}

fn errors_of(e: [u64; 6]) -> Errors {
    Errors {
        connect: e[0],
        timeout: e[1],
        status: e[2],
        validation: e[3],
        busy: e[4],
        io: e[5],
    }
}

/// The thresholds of `limits` judged on these figures.
fn judge(limits: Limits, p99_ms: Option<f64>, error_rate: f64, requests: u64) -> Vec<Threshold> {
    let mut thresholds = Vec::new();
    if let Some(max) = limits.max_p99 {
        let limit = max.as_secs_f64() * 1000.0;
        thresholds.push(Threshold {
            name: "p99_ms".into(),
            limit,
            measured: p99_ms.unwrap_or(0.0),
            // A run with no answers has no p99 to trust.
            passed: p99_ms.is_some_and(|p| p <= limit),
        });
    }
    if let Some(limit) = limits.max_error_rate {
        thresholds.push(Threshold {
            name: "error_rate".into(),
            limit,
            measured: error_rate,
            passed: error_rate <= limit && requests > 0,
        });
    }
    thresholds
}

/// Limits that fail a run.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize)]
pub struct Limits {
    /// The highest acceptable 99th-percentile latency.
    pub max_p99: Option<Duration>,
    /// The highest acceptable share of failed requests (0 to 1).
    pub max_error_rate: Option<f64>,
}

impl LoadReport {
    /// The report of `tally`, a run of `plan` across `processes`, checked against
    /// `limits`.
    pub fn new(tally: &Tally, plan: &super::LoadPlan, processes: u32, limits: Limits) -> Self {
        let h = tally.histogram();
        let ms = |us: u64| us as f64 / 1000.0;
        let latency = if h.is_empty() {
            Latency::default()
        } else {
            Latency {
                min: ms(h.min()),
                mean: h.mean() / 1000.0,
                p50: ms(h.value_at_quantile(0.50)),
                p90: ms(h.value_at_quantile(0.90)),
                p99: ms(h.value_at_quantile(0.99)),
                p99_9: ms(h.value_at_quantile(0.999)),
                max: ms(h.max()),
            }
        };
        let e = tally.errors;
        let errors = errors_of(e);
        let failed: u64 = e.iter().sum();
        let requests = tally.ok + failed;
        let elapsed = tally.elapsed.as_secs_f64();
        let error_rate = if requests == 0 {
            0.0
        } else {
            failed as f64 / requests as f64
        };
        let thresholds = judge(
            limits,
            (!h.is_empty()).then_some(latency.p99),
            error_rate,
            requests,
        );
        let seconds: Vec<SecondReport> = tally
            .timeline
            .iter()
            .enumerate()
            .map(|(t, s)| {
                let mut b = Buckets::default();
                b.add(s);
                SecondReport {
                    t: t as u64,
                    span_s: (elapsed - t as f64).clamp(0.0, 1.0),
                    requests: s.requests(),
                    ok: s.ok,
                    errors: errors_of(s.errors),
                    clients: s.clients,
                    p50_ms: b.quantile_ms(0.5),
                    p90_ms: b.quantile_ms(0.9),
                    p99_ms: b.quantile_ms(0.99),
                }
            })
            .collect();
        let stages: Vec<StageReport> = super::stages::bounds(&plan.stages)
            .into_iter()
            .zip(&plan.stages)
            .enumerate()
            .map(|(i, ((from, to), stage))| {
                // The seconds that begin within the stage.
                let mut b = Buckets::default();
                let (mut ok, mut failed) = (0, 0);
                for s in tally
                    .timeline
                    .iter()
                    .enumerate()
                    .filter(|(t, _)| (*t as f64) >= from.floor() && (*t as f64) < to)
                    .map(|(_, s)| s)
                {
                    b.add(s);
                    ok += s.ok;
                    failed += s.errors.iter().sum::<u64>();
                }
                let requests = ok + failed;
                let error_rate = if requests == 0 {
                    0.0
                } else {
                    failed as f64 / requests as f64
                };
                let p99 = b.quantile_ms(0.99);
                let thresholds = judge(limits, p99, error_rate, requests);
                StageReport {
                    stage: i + 1,
                    from_s: from,
                    to_s: to,
                    target: stage.target,
                    requests,
                    throughput: requests as f64 / (to - from).max(1e-9),
                    error_rate,
                    p99_ms: p99,
                    passed: thresholds.iter().all(|t| t.passed),
                    thresholds,
                }
            })
            .collect();
        let passed = thresholds.iter().all(|t| t.passed)
            && stages.iter().all(|s| s.passed)
            && tally.lost.is_empty();
        LoadReport {
            url: plan.url.clone(),
            mode: if plan.rate.is_some() {
                "constant-rate"
            } else {
                "closed"
            }
            .into(),
            target_rate: plan.rate,
            processes,
            clients: plan.clients,
            sessions: tally.sessions,
            elapsed_s: elapsed,
            requests,
            ok: tally.ok,
            throughput: if elapsed > 0.0 {
                requests as f64 / elapsed
            } else {
                0.0
            },
            errors,
            error_rate,
            latency_ms: latency,
            lost_processes: tally.lost.clone(),
            interrupted: tally.interrupted,
            thresholds,
            passed,
            examples: tally.examples.clone(),
            stages,
            seconds,
        }
    }
}

impl std::fmt::Display for LoadReport {
    /// The report for people: a few aligned lines.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let rate = match self.target_rate {
            Some(r) => format!("constant rate {r:.0}/s"),
            None => "closed loop".to_string(),
        };
        writeln!(
            f,
            "{}: {} clients in {} process{}, {}, {} sessions{}",
            self.url,
            self.clients,
            self.processes,
            if self.processes == 1 { "" } else { "es" },
            rate,
            self.sessions,
            if self.interrupted {
                " (interrupted)"
            } else {
                ""
            }
        )?;
        writeln!(
            f,
            "  requests   {} in {:.2}s = {:.0}/s, {} ok",
            self.requests, self.elapsed_s, self.throughput, self.ok
        )?;
        let e = &self.errors;
        writeln!(
            f,
            "  errors     {:.3}%: connect {}, timeout {}, status {}, validation {}, busy {}, io {}",
            self.error_rate * 100.0,
            e.connect,
            e.timeout,
            e.status,
            e.validation,
            e.busy,
            e.io
        )?;
        let l = &self.latency_ms;
        writeln!(
            f,
            "  latency ms p50 {:.3}  p90 {:.3}  p99 {:.3}  p99.9 {:.3}  max {:.3}  (mean {:.3})",
            l.p50, l.p90, l.p99, l.p99_9, l.max, l.mean
        )?;
        for lost in &self.lost_processes {
            writeln!(f, "  lost       {lost}")?;
        }
        for t in &self.thresholds {
            writeln!(
                f,
                "  threshold  {} {:.3} (limit {:.3}): {}",
                t.name,
                t.measured,
                t.limit,
                if t.passed { "passed" } else { "FAILED" }
            )?;
        }
        for s in &self.stages {
            write!(
                f,
                "  stage {}    {:.1}-{:.1}s to {}: {} requests = {:.0}/s, errors {:.3}%, p99 {}",
                s.stage,
                s.from_s,
                s.to_s,
                s.target,
                s.requests,
                s.throughput,
                s.error_rate * 100.0,
                s.p99_ms.map_or("-".to_string(), |p| format!("{p:.3} ms"))
            )?;
            for t in &s.thresholds {
                write!(
                    f,
                    "; {} {}",
                    t.name,
                    if t.passed { "passed" } else { "FAILED" }
                )?;
            }
            writeln!(f)?;
        }
        for e in &self.examples {
            writeln!(f, "  example    {e}")?;
        }
        Ok(())
    }
}
