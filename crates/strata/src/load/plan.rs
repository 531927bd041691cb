//! What a load run is to do ([`LoadPlan`]), checked into a ready-to-use [`Target`]: the
//! server's address and the URL template expanded for each request; and how responses
//! are checked ([`Validation`]).

use std::fmt;
use std::net::{SocketAddr, ToSocketAddrs};
use std::sync::Arc;
use std::time::Duration;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

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
        match (self.duration, self.total) {
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
        Target::parse(&self.url).map_err(|reason| PlanError {
            parameter: "url",
            reason,
        })
    }

    /// The part of this plan that share `index` of `shares` runs: clients, total and rate
    /// divided as evenly as they go.
    pub(crate) fn share(&self, index: u32, shares: u32) -> LoadPlan {
        let split =
            |n: u64| n / u64::from(shares) + u64::from(u64::from(index) < n % u64::from(shares));
        LoadPlan {
            clients: split(u64::from(self.clients)) as u32,
            total: self.total.map(split),
            rate: self.rate.map(|r| r / f64::from(shares)),
            ..self.clone()
        }
    }
}

/// One part of a URL template.
#[derive(Debug, Clone, PartialEq)]
enum Part {
    Text(String),
    Range(u64, u64),
    Choice(Vec<String>),
}

/// A checked URL: the server's address, the `Host` header and the path template (a
/// client draws each request's path with [`ClientKit::path`](super::ClientKit::path)).
#[derive(Debug, Clone, PartialEq)]
pub struct Target {
    /// The server's socket address (the first the host resolved to).
    pub address: SocketAddr,
    /// The `Host` header: the URL's authority.
    pub host: String,
    parts: Vec<Part>,
}

impl Target {
    /// Parses `http://host[:port][/path][?query]`, with templated parts in the path and
    /// query, and resolves the host.
    pub(crate) fn parse(url: &str) -> Result<Target, String> {
        let rest = url.strip_prefix("http://").ok_or_else(|| {
            format!("`{url}` does not start with http:// (only plain HTTP is spoken)")
        })?;
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
        let with_port = if authority.ends_with(']') || !authority.contains(':') {
            format!("{authority}:80")
        } else {
            authority.to_string()
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
            parts: parse_template(&path)?,
        })
    }

    /// Whether every request goes to the same path.
    pub(crate) fn is_fixed(&self) -> bool {
        self.parts.iter().all(|p| matches!(p, Part::Text(_)))
    }

    /// Writes the path (and query) of one request into `out`, drawing templated parts from
    /// `rng`.
    pub(crate) fn path(&self, rng: &mut Rng, out: &mut String) {
        use std::fmt::Write;
        out.clear();
        for p in &self.parts {
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

fn parse_template(path: &str) -> Result<Vec<Part>, String> {
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

fn parse_placeholder(inner: &str) -> Result<Part, String> {
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
            ("https://x/", "http://"),
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
