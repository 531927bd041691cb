//! Recording a load run: outcomes counted by kind, latencies in an HDR histogram, and the
//! reports made from them.
//!
//! Clients record through their kit into the process's recorder (shared by the clients of
//! one process: atomic counters and a histogram behind a lock held for a few nanoseconds). A process's record
//! travels as a [`Tally`] (counts plus the histogram's buckets), which merges exactly with
//! the tallies of other processes; the final [`LoadReport`] is computed from the merged
//! tally.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

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
}

impl Default for Recorder {
    fn default() -> Self {
        Recorder {
            inner: Arc::new(Inner {
                ok: AtomicU64::new(0),
                errors: Default::default(),
                sessions: AtomicU64::new(0),
                latencies: Mutex::new(new_histogram()),
            }),
        }
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
        if answered {
            let us = (latency.as_micros() as u64).clamp(1, MAX_LATENCY_US);
            self.inner.latencies.lock().saturating_record(us);
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
    /// Whether every threshold held (and no process was lost).
    pub passed: bool,
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
        let errors = Errors {
            connect: e[0],
            timeout: e[1],
            status: e[2],
            validation: e[3],
            busy: e[4],
            io: e[5],
        };
        let failed: u64 = e.iter().sum();
        let requests = tally.ok + failed;
        let elapsed = tally.elapsed.as_secs_f64();
        let error_rate = if requests == 0 {
            0.0
        } else {
            failed as f64 / requests as f64
        };
        let mut thresholds = Vec::new();
        if let Some(max) = limits.max_p99 {
            let limit = max.as_secs_f64() * 1000.0;
            thresholds.push(Threshold {
                name: "p99_ms".into(),
                limit,
                measured: latency.p99,
                // A run with no answers has no p99 to trust.
                passed: latency.p99 <= limit && !h.is_empty(),
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
        let passed = thresholds.iter().all(|t| t.passed) && tally.lost.is_empty();
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
        Ok(())
    }
}
