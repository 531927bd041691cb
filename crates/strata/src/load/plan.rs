//! What a load run is to do ([`LoadPlan`]), checked into a ready-to-use [`Target`]: the
//! server's address, the TLS client for `https://`, and the request shapes (URL template,
//! method, headers, body) expanded for each request; and how responses are checked
//! ([`Validation`], [`Expect`]).

use std::fmt;
use std::net::{SocketAddr, ToSocketAddrs};
use std::sync::Arc;
use std::time::Duration;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

use super::shape::{literal_path, Body, Compiled, Expect, Order, ScriptedRequest, Shape};
use super::stages::Stage;
use super::tls::{TlsClient, TlsOptions};
use crate::random::Rng;
use crate::Message;

/// The function behind a [`Validation`]: given the request's path (with its query) and the
/// response's body, `Err(reason)` counts the request as a `validation` error.
type Check = dyn Fn(&str, &[u8]) -> Result<(), String> + Send + Sync;

/// How responses are checked beyond their status: not at all ([`Validation::none`], the
/// default), or by a named check ([`Validation::new`]).
///
/// A plan that goes to another process (a [`Fleet`](super::Fleet) run in child processes)
/// carries only the check's *name*: the child must know a check by that name (see
/// [`share_main`](super::share_main)), or it refuses the plan naming `validation`. In
/// this process the check travels with the plan.
///
/// ```
/// use strata::load::{LoadPlan, Validation};
///
/// let mut plan = LoadPlan::new("http://127.0.0.1:5050/greeting");
/// plan.validation = Validation::new("hello", |_path, body| {
///     body.starts_with(b"hello").then_some(()).ok_or_else(|| "no greeting".to_string())
/// });
/// assert_eq!(plan.validation.name(), Some("hello"));
/// ```
#[derive(Clone, Default)]
pub struct Validation {
    name: Option<String>,
    check: Option<Arc<Check>>,
}

impl Validation {
    /// No check: the status alone decides.
    pub fn none() -> Self {
        Validation::default()
    }

    /// The check `check`, known as `name` (the name is what a plan carries to other
    /// processes).
    pub fn new(
        name: impl Into<String>,
        check: impl Fn(&str, &[u8]) -> Result<(), String> + Send + Sync + 'static,
    ) -> Self {
        Validation {
            name: Some(name.into()),
            check: Some(Arc::new(check)),
        }
    }

    /// The check's name; `None` when there is no check.
    pub fn name(&self) -> Option<&str> {
        self.name.as_deref()
    }

    /// Whether the check can run here: there is none, or its function is known (a plan
    /// decoded from another process carries only the name until it is resolved).
    pub(crate) fn is_resolved(&self) -> bool {
        self.name.is_none() || self.check.is_some()
    }

    /// This validation with its function taken from the one of the same name in `known`,
    /// if it lacks one.
    pub(crate) fn resolved_from(self, known: &[Validation]) -> Validation {
        if self.is_resolved() {
            return self;
        }
        known
            .iter()
            .find(|v| v.name == self.name && v.check.is_some())
            .cloned()
            .unwrap_or(self)
    }

    /// Checks one response's body (`Ok` when there is no check).
    pub(crate) fn check(&self, path: &str, body: &[u8]) -> Result<(), String> {
        match &self.check {
            Some(check) => check(path, body),
            None => Ok(()),
        }
    }
}

impl fmt::Debug for Validation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.name {
            None => f.write_str("Validation(none)"),
            Some(n) => write!(f, "Validation({n:?})"),
        }
    }
}

/// Validations are the same when their names are.
impl PartialEq for Validation {
    fn eq(&self, other: &Self) -> bool {
        self.name == other.name
    }
}

/// Encoded as its name only (the function stays in its process).
impl Serialize for Validation {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        self.name.serialize(s)
    }
}

impl<'de> Deserialize<'de> for Validation {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        Ok(Validation {
            name: Option::deserialize(d)?,
            check: None,
        })
    }
}

/// A load run: where, how many clients, how hard and for how long.
///
/// Build one with [`LoadPlan::new`] and change the fields; [`Fleet::new`](super::Fleet::new)
/// and [`Load::new`](super::Load::new) refuse improbable values naming the parameter.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Message)]
#[message(name = "strata.LoadPlan")]
pub struct LoadPlan {
    /// The URL, `http://host:port/path?query`, with optional templated parts: `{1..100}`
    /// (a whole number drawn from the range for each request) or `{a,b,c}` (one of the
    /// words).
    pub url: String,
    /// Clients at once; each holds one connection with one request in flight.
    pub clients: u32,
    /// Requests per connection before the client disconnects and is replaced (0: no
    /// limit).
    pub requests: u32,
    /// The pause between a response and a client's next request.
    pub pause: Duration,
    /// How much the pause varies, as a fraction of it (0.25: ±25%).
    pub jitter: f64,
    /// How long to run (`None`: until `total` requests are made).
    pub duration: Option<Duration>,
    /// How many requests to make in all (`None`: until `duration` ends).
    pub total: Option<u64>,
    /// Constant-rate mode: requests per second, whatever the server does. Each request
    /// has a due time and its latency is measured from it, so a slow server's backlog
    /// shows in the latencies (no coordinated omission). `None`: each client sends its
    /// next request when the previous one is answered (plus `pause`).
    pub rate: Option<f64>,
    /// How long one request may take before it counts as a timeout.
    pub timeout: Duration,
    /// The statuses that count as success (empty: any 2xx).
    pub expect_status: Vec<u16>,
    /// How the body is checked.
    pub validation: Validation,
    /// The method (`GET` unless set).
    pub method: String,
    /// Extra headers sent with every request, as (name, value). A `Host` header replaces
    /// the URL's; `Content-Length` and `Transfer-Encoding` are the client's own.
    pub headers: Vec<(String, String)>,
    /// The body sent with every request.
    pub body: Body,
    /// Whole requests to make, in place of the URL's path, method and body (a request
    /// file); empty: none. The plan's headers are sent with each, before its own.
    pub script: Vec<ScriptedRequest>,
    /// The order `script` is drawn in.
    pub order: Order,
    /// Checks of the body besides `validation`; a failure is a `validation` error.
    pub expect: Vec<Expect>,
    /// Whether a connection carries more than one request (`false`: `Connection: close`
    /// and a new connection, and TLS handshake, for every request).
    pub keep_alive: bool,
    /// How an `https://` server is trusted.
    pub tls: TlsOptions,
    /// Stages: the number of clients (at a constant rate, the rate) moves linearly to each
    /// stage's target over its duration, from none (from `rate`) at the start; the run
    /// lasts as long as the stages together. Empty: a steady run.
    pub stages: Vec<Stage>,
    /// Whether to keep figures second by second (for [`html_report`](super::html_report)
    /// and the stages' thresholds; on by itself with stages).
    pub timeline: bool,
}

/// A load parameter that is out of its sensible range.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("load parameter `{parameter}`: {reason}")]
pub struct PlanError {
    /// The parameter's name.
    pub parameter: &'static str,
    /// What is wrong with its value.
    pub reason: String,
}

impl LoadPlan {
    /// A plan for `url` with the defaults: 16 clients, 100 requests per connection, no
    /// pause (±25% jitter when one is set), 10 seconds, a 5-second request timeout, any
    /// 2xx status, no body check.
    pub fn new(url: impl Into<String>) -> Self {
        LoadPlan {
            url: url.into(),
            clients: 16,
            requests: 100,
            pause: Duration::ZERO,
            jitter: 0.25,
            duration: Some(Duration::from_secs(10)),
            total: None,
            rate: None,
            timeout: Duration::from_secs(5),
            expect_status: Vec::new(),
            validation: Validation::none(),
            method: "GET".into(),
            headers: Vec::new(),
            body: Body::None,
            script: Vec::new(),
            order: Order::InOrder,
            expect: Vec::new(),
            keep_alive: true,
            tls: TlsOptions::default(),
            stages: Vec::new(),
            timeline: false,
        }
    }

    /// How long the run lasts: the stages' sum when there are stages, else `duration`.
    pub fn run_time(&self) -> Option<Duration> {
        if self.stages.is_empty() {
            self.duration
        } else {
            Some(self.stages.iter().map(|s| s.duration).sum())
        }
    }

    /// The most clients the run has at once: the highest stage's target in a closed loop
    /// with stages, else `clients`.
    pub fn max_clients(&self) -> u32 {
        if self.stages.is_empty() || self.rate.is_some() {
            self.clients
        } else {
            self.stages
                .iter()
                .map(|s| s.target.ceil() as u32)
                .max()
                .unwrap_or(0)
                .max(1)
        }
    }

    /// Checks every parameter and resolves the URL's host.
    pub(crate) fn check(&self) -> Result<Target, PlanError> {
        let bad = |parameter, reason: String| Err(PlanError { parameter, reason });
        if self.clients == 0 || self.clients > 100_000 {
            return bad(
                "clients",
                format!("{} is not between 1 and 100,000", self.clients),
            );
        }
        if self.pause > Duration::from_secs(3600) {
            return bad("pause", format!("{:?} is more than an hour", self.pause));
        }
        if !(0.0..=1.0).contains(&self.jitter) {
            return bad(
                "jitter",
                format!("{} is not a fraction between 0 and 1", self.jitter),
            );
        }
        match (self.run_time(), self.total) {
            (None, None) => return bad("duration", "give a duration, a total or both".into()),
            (Some(d), _) if d.is_zero() || d > Duration::from_secs(7 * 86_400) => {
                return bad("duration", format!("{d:?} is not between 0 and a week"))
            }
            (_, Some(0)) => return bad("total", "0 requests is no run".into()),
            _ => {}
        }
        if let Some(r) = self.rate {
            if !(r.is_finite() && r > 0.0 && r <= 10_000_000.0) {
                return bad(
                    "rate",
                    format!("{r} is not between 0 and 10,000,000 per second"),
                );
            }
            if !self.pause.is_zero() {
                return bad(
                    "pause",
                    "a pause has no meaning at a constant rate (the rate sets the pace)".into(),
                );
            }
        }
        if self.timeout.is_zero() || self.timeout > Duration::from_secs(3600) {
            return bad(
                "timeout",
                format!("{:?} is not between 0 and an hour", self.timeout),
            );
        }
        if let Some(s) = self
            .expect_status
            .iter()
            .find(|s| !(100..=599).contains(*s))
        {
            return bad("expect_status", format!("{s} is not an HTTP status"));
        }
        if !self.validation.is_resolved() {
            return bad(
                "validation",
                format!(
                    "no check named `{}` is known in this process",
                    self.validation.name().unwrap_or_default()
                ),
            );
        }
        if let Err(reason) = super::stages::check(&self.stages, self.rate.is_some()) {
            return bad("stages", reason);
        }
        let mut target = Target::parse(&self.url).map_err(|reason| PlanError {
            parameter: "url",
            reason,
        })?;
        target
            .compile(self)
            .map_err(|(parameter, reason)| PlanError { parameter, reason })?;
        Ok(target)
    }

    /// The part of this plan that share `index` of `shares` runs: clients, total and rate
    /// divided as evenly as they go.
    pub(crate) fn share(&self, index: u32, shares: u32) -> LoadPlan {
        let split =
            |n: u64| n / u64::from(shares) + u64::from(u64::from(index) < n % u64::from(shares));
        let stages = self
            .stages
            .iter()
            .map(|s| Stage {
                duration: s.duration,
                target: if self.rate.is_some() {
                    s.target / f64::from(shares)
                } else {
                    split(s.target.round() as u64) as f64
                },
            })
            .collect();
        LoadPlan {
            clients: split(u64::from(self.clients)).max(1) as u32,
            total: self.total.map(split),
            rate: self.rate.map(|r| r / f64::from(shares)),
            stages,
            ..self.clone()
        }
    }
}

/// One part of a URL (or body) template.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Part {
    Text(String),
    Range(u64, u64),
    Choice(Vec<String>),
}

/// A checked URL: the server's address, the `Host` header and the path template (a
/// client draws each request's path with [`ClientKit::path`](super::ClientKit::path)),
/// with the plan's request shapes and checks compiled.
#[derive(Debug, Clone, PartialEq)]
pub struct Target {
    /// The server's socket address (the first the host resolved to).
    pub address: SocketAddr,
    /// The `Host` header: the URL's authority (or the plan's `Host` header).
    pub host: String,
    /// Whether the URL is `https://`.
    pub https: bool,
    /// The host's name without the port (the TLS server name).
    name: String,
    parts: Vec<Part>,
    /// The kinds of request: the URL's with the plan's method, headers and body, or one
    /// for each line of the request file.
    pub(crate) shapes: Vec<Shape>,
    /// The TLS client, for `https://`.
    pub(crate) tls: Option<TlsClient>,
    /// The plan's `expect` checks.
    pub(crate) expect: Vec<Compiled>,
}

impl Target {
    /// Parses `http://host[:port][/path][?query]`, with templated parts in the path and
    /// query, and resolves the host.
    pub(crate) fn parse(url: &str) -> Result<Target, String> {
        let (rest, https) = match (url.strip_prefix("http://"), url.strip_prefix("https://")) {
            (Some(rest), _) => (rest, false),
            (_, Some(rest)) => (rest, true),
            _ => return Err(format!("`{url}` does not start with http:// or https://")),
        };
        let (authority, path) = match rest.find(['/', '?']) {
            Some(i) => (&rest[..i], &rest[i..]),
            None => (rest, "/"),
        };
        if authority.is_empty() {
            return Err(format!("`{url}` names no host"));
        }
        if authority.contains(['{', '}', '@']) {
            return Err(format!(
                "`{authority}`: the host cannot be templated or carry a user"
            ));
        }
        let bracketed = authority.starts_with('[');
        let has_port = if bracketed {
            authority.contains("]:")
        } else {
            authority.contains(':')
        };
        let with_port = if has_port {
            authority.to_string()
        } else {
            format!("{authority}:{}", if https { 443 } else { 80 })
        };
        let name = match with_port.rsplit_once(':') {
            Some((n, _)) => n.to_string(),
            None => authority.to_string(),
        };
        let address = with_port
            .to_socket_addrs()
            .map_err(|e| format!("cannot resolve `{authority}`: {e}"))?
            .next()
            .ok_or_else(|| format!("`{authority}` resolves to no address"))?;
        let path = if path.starts_with('?') {
            format!("/{path}")
        } else {
            path.to_string()
        };
        if let Some(c) = path.chars().find(|c| c.is_whitespace() || c.is_control()) {
            return Err(format!("the path contains {c:?}; encode it"));
        }
        Ok(Target {
            address,
            host: authority.to_string(),
            https,
            name,
            parts: parse_template(&path)?,
            shapes: Vec::new(),
            tls: None,
            expect: Vec::new(),
        })
    }

    /// Compiles the plan's request shapes, checks and TLS client into this target; the
    /// error names the parameter.
    fn compile(&mut self, plan: &LoadPlan) -> Result<(), (&'static str, String)> {
        if let Some((_, host)) = plan
            .headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case("host"))
        {
            self.host = host.clone();
        }
        if plan.script.is_empty() {
            self.shapes = vec![Shape::new(
                &plan.method,
                self.parts.clone(),
                &plan.headers,
                &plan.body,
                plan.keep_alive,
            )
            .map_err(|e| ("method, headers or body", e))?];
        } else {
            if plan.body != Body::None {
                return Err((
                    "body",
                    "a request file gives each request its body; give no other".into(),
                ));
            }
            for (i, r) in plan.script.iter().enumerate() {
                let mut headers = plan.headers.clone();
                headers.extend(r.headers.iter().cloned());
                let body = match &r.body {
                    Some(b) => Body::Bytes(b.clone()),
                    None => Body::None,
                };
                let shape = literal_path(&r.path)
                    .and_then(|path| Shape::new(&r.method, path, &headers, &body, plan.keep_alive));
                self.shapes
                    .push(shape.map_err(|e| ("script", format!("request {}: {e}", i + 1)))?);
            }
        }
        self.expect = plan
            .expect
            .iter()
            .map(Expect::compile)
            .collect::<Result<_, _>>()
            .map_err(|e| ("expect", e))?;
        if self.https {
            self.tls = Some(TlsClient::new(&self.name, &plan.tls).map_err(|e| ("tls", e))?);
        } else if plan.tls.ca_pem.is_some() || plan.tls.insecure {
            return Err(("tls", format!("`{}` is not https://", plan.url)));
        }
        Ok(())
    }

    /// The TLS client, when the URL is `https://`.
    pub fn tls(&self) -> Option<&TlsClient> {
        self.tls.as_ref()
    }

    /// Whether every request goes to the same path.
    #[cfg(test)]
    pub(crate) fn is_fixed(&self) -> bool {
        self.parts.iter().all(|p| matches!(p, Part::Text(_)))
    }

    /// Writes the path (and query) of one request into `out`, drawing templated parts from
    /// `rng`.
    pub(crate) fn path(&self, rng: &mut Rng, out: &mut String) {
        write_path(&self.parts, rng, out)
    }
}

/// Writes a path template's parts into `out`, drawing from `rng`.
pub(crate) fn write_path(parts: &[Part], rng: &mut Rng, out: &mut String) {
    {
        use std::fmt::Write;
        out.clear();
        for p in parts {
            match p {
                Part::Text(t) => out.push_str(t),
                Part::Range(lo, hi) => {
                    let _ = write!(out, "{}", lo + rng.below(hi - lo + 1));
                }
                Part::Choice(words) => out.push_str(&words[rng.below(words.len() as u64) as usize]),
            }
        }
    }
}

pub(crate) fn parse_template(path: &str) -> Result<Vec<Part>, String> {
    let mut parts = Vec::new();
    let mut rest = path;
    while let Some(open) = rest.find('{') {
        if let Some(close) = rest[..open].find('}') {
            return Err(format!("unmatched `}}` at `{}`", &rest[close..]));
        }
        if open > 0 {
            parts.push(Part::Text(rest[..open].to_string()));
        }
        let close = rest[open..]
            .find('}')
            .map(|c| open + c)
            .ok_or_else(|| format!("unclosed `{{` at `{}`", &rest[open..]))?;
        let inner = &rest[open + 1..close];
        parts.push(parse_placeholder(inner)?);
        rest = &rest[close + 1..];
    }
    if rest.contains('}') {
        return Err(format!("unmatched `}}` in `{rest}`"));
    }
    if !rest.is_empty() {
        parts.push(Part::Text(rest.to_string()));
    }
    Ok(parts)
}

pub(crate) fn parse_placeholder(inner: &str) -> Result<Part, String> {
    if let Some((lo, hi)) = inner.split_once("..") {
        let num = |s: &str| {
            s.trim()
                .parse::<u64>()
                .map_err(|_| format!("`{{{inner}}}`: `{s}` is not a whole number"))
        };
        let (lo, hi) = (num(lo)?, num(hi)?);
        if lo > hi {
            return Err(format!("`{{{inner}}}`: the range is empty"));
        }
        return Ok(Part::Range(lo, hi));
    }
    let words: Vec<String> = inner.split(',').map(|w| w.trim().to_string()).collect();
    if words.iter().any(|w| w.is_empty() || w.contains('{')) {
        return Err(format!(
            "`{{{inner}}}` is neither a range like {{1..100}} nor a list like {{a,b,c}}"
        ));
    }
    Ok(Part::Choice(words))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn templates_expand_within_their_ranges() {
        let t = Target::parse("http://127.0.0.1:5050/Xy?x={1..3}&y={4,5}").unwrap();
        assert!(!t.is_fixed());
        let mut rng = Rng::new(7);
        let mut out = String::new();
        let mut seen = std::collections::HashSet::new();
        for _ in 0..200 {
            t.path(&mut rng, &mut out);
            seen.insert(out.clone());
        }
        let mut seen: Vec<_> = seen.into_iter().collect();
        seen.sort();
        let want: Vec<String> = (1..=3)
            .flat_map(|x| [4, 5].map(|y| format!("/Xy?x={x}&y={y}")))
            .collect();
        let mut want = want;
        want.sort();
        assert_eq!(seen, want);
    }

    #[test]
    fn bad_urls_are_refused_saying_why() {
        for (url, says) in [
            ("ftp://x/", "http://"),
            ("http:///Xy", "no host"),
            ("http://127.0.0.1:5050/Xy?x={1..", "unclosed"),
            ("http://127.0.0.1:5050/Xy?x={5..1}", "empty"),
            ("http://127.0.0.1:5050/Xy?x={a..1}", "whole number"),
            ("http://127.0.0.1:5050/Xy?x=}", "unmatched"),
            ("http://{1..2}:5050/", "templated"),
            ("http://127.0.0.1:5050/a b", "encode"),
        ] {
            let e = Target::parse(url).unwrap_err();
            assert!(e.contains(says), "{url}: {e}");
        }
        let t = Target::parse("http://127.0.0.1:5050").unwrap();
        assert_eq!(t.host, "127.0.0.1:5050");
        let t = Target::parse("http://[::1]:8080?a=1").unwrap();
        assert_eq!(t.address.port(), 8080);
        let mut out = String::new();
        t.path(&mut Rng::new(1), &mut out);
        assert_eq!(out, "/?a=1");
    }

    #[test]
    fn a_plan_from_another_process_names_its_check_until_it_is_resolved() {
        let mut plan = LoadPlan::new("http://127.0.0.1:1/");
        plan.validation = Validation::new("short", |_, body| {
            (body.len() < 4).then_some(()).ok_or("too long".to_string())
        });
        assert!(plan.check().is_ok());
        let bytes = crate::message::codec::encode(&plan).unwrap();
        let arrived: LoadPlan = crate::message::codec::decode(&bytes).unwrap();
        assert_eq!(arrived, plan);
        assert_eq!(arrived.check().unwrap_err().parameter, "validation");
        let resolved = arrived
            .validation
            .clone()
            .resolved_from(&[plan.validation.clone()]);
        assert!(resolved.is_resolved());
        assert!(resolved.check("/", b"abc").is_ok() && resolved.check("/", b"abcd").is_err());
        let unknown = arrived.validation.resolved_from(&[]);
        assert!(!unknown.is_resolved());
        assert!(Validation::none().check("/", b"anything").is_ok());
    }

    #[test]
    fn shares_divide_clients_total_and_rate() {
        let mut plan = LoadPlan::new("http://127.0.0.1:1/");
        plan.clients = 10;
        plan.total = Some(7);
        plan.rate = Some(300.0);
        let shares: Vec<_> = (0..3).map(|i| plan.share(i, 3)).collect();
        assert_eq!(shares.iter().map(|s| s.clients).sum::<u32>(), 10);
        assert_eq!(shares.iter().map(|s| s.total.unwrap()).sum::<u64>(), 7);
        assert!(shares.iter().all(|s| s.rate == Some(100.0)));
    }

    #[test]
    fn improbable_parameters_are_refused_naming_them() {
        let base = LoadPlan::new("http://127.0.0.1:1/");
        let cases: Vec<(LoadPlan, &str)> = vec![
            (
                LoadPlan {
                    clients: 0,
                    ..base.clone()
                },
                "clients",
            ),
            (
                LoadPlan {
                    jitter: 2.0,
                    ..base.clone()
                },
                "jitter",
            ),
            (
                LoadPlan {
                    duration: None,
                    total: None,
                    ..base.clone()
                },
                "duration",
            ),
            (
                LoadPlan {
                    total: Some(0),
                    ..base.clone()
                },
                "total",
            ),
            (
                LoadPlan {
                    rate: Some(-1.0),
                    ..base.clone()
                },
                "rate",
            ),
            (
                LoadPlan {
                    rate: Some(10.0),
                    pause: Duration::from_millis(1),
                    ..base.clone()
                },
                "pause",
            ),
            (
                LoadPlan {
                    timeout: Duration::ZERO,
                    ..base.clone()
                },
                "timeout",
            ),
            (
                LoadPlan {
                    expect_status: vec![42],
                    ..base.clone()
                },
                "expect_status",
            ),
            (
                LoadPlan {
                    url: "ftp://x".into(),
                    ..base.clone()
                },
                "url",
            ),
        ];
        for (plan, parameter) in cases {
            assert_eq!(plan.check().unwrap_err().parameter, parameter);
        }
        assert!(base.check().is_ok());
    }
}
