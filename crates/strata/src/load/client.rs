//! Clients: the objects that make the requests of a load run.
//!
//! Every client gets a [`Kit`] — the run's plan and target, the shared [`Recorder`], and
//! the run's pacing ([`Kit::claim`] says whether to make another request and, at a
//! constant rate, when it is due). [`BasicClient`] is the connect-and-request client: it
//! connects, makes up to `requests` requests with a pause between them, validates each
//! response, and disconnects; the run then makes a new client in its place. Any other
//! object — a machine with timers, a thread, an async object — can be a client: make it
//! from the kit and have it record through [`Kit::record`].

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use super::conn::Connection;
use super::plan::{LoadPlan, Target, Validation};
use super::record::{ErrorKind, Outcome, Recorder};
use crate::object::{Async, AsyncContext, Object};
use crate::random::Rng;
use crate::standard::Stop;

/// A closure `FnMut(Kit) -> object` makes the clients of a run: it is a
/// [`Recipe<Kit>`](crate::Recipe), given each client's [`Kit`].
impl<F, S> crate::Recipe<Kit> for F
where
    F: FnMut(Kit) -> S + Send + 'static,
    S: Object,
{
    type Member = S;
    fn make(&mut self, kit: Kit) -> S {
        self(kit)
    }
}

/// What every client of a run shares; see the [module docs](self).
#[derive(Clone)]
pub struct Kit {
    shared: Arc<Shared>,
    /// Which client slot this is (0 to clients − 1); a replacement takes its
    /// predecessor's slot.
    pub slot: u32,
}

struct Shared {
    plan: LoadPlan,
    target: Target,
    recorder: Recorder,
    began: Instant,
    deadline: Option<Instant>,
    /// Requests claimed so far.
    claimed: AtomicU64,
    /// Set when the run ends early or its deadline passes.
    over: AtomicBool,
}

/// Permission to make one request.
#[derive(Debug, Clone, Copy)]
pub struct Ticket {
    /// At a constant rate, when the request is due: wait until then, and measure its
    /// latency from then (not from when it was sent). `None` in a closed loop.
    pub due: Option<Instant>,
}

impl Kit {
    pub(crate) fn new(plan: LoadPlan, target: Target, recorder: Recorder) -> Kit {
        let began = Instant::now();
        Kit {
            shared: Arc::new(Shared {
                deadline: plan.duration.map(|d| began + d),
                plan,
                target,
                recorder,
                began,
                claimed: AtomicU64::new(0),
                over: AtomicBool::new(false),
            }),
            slot: 0,
        }
    }

    pub(crate) fn for_slot(&self, slot: u32) -> Kit {
        Kit {
            shared: self.shared.clone(),
            slot,
        }
    }

    /// The run's plan.
    pub fn plan(&self) -> &LoadPlan {
        &self.shared.plan
    }

    /// The server and the URL template.
    pub fn target(&self) -> &Target {
        &self.shared.target
    }

    /// Where outcomes go.
    pub fn recorder(&self) -> &Recorder {
        &self.shared.recorder
    }

    /// When the run began.
    pub fn began(&self) -> Instant {
        self.shared.began
    }

    /// Records one request's outcome; `started` is when it was sent (or due).
    pub fn record(&self, outcome: Outcome, started: Instant) {
        self.shared.recorder.record(outcome, started.elapsed());
    }

    /// Whether the run is over (no more requests will be granted).
    pub fn is_over(&self) -> bool {
        let s = &self.shared;
        s.over.load(Ordering::Relaxed)
            || s.deadline.is_some_and(|d| Instant::now() >= d)
            || s.plan
                .total
                .is_some_and(|t| s.claimed.load(Ordering::Relaxed) >= t)
    }

    pub(crate) fn end(&self) {
        self.shared.over.store(true, Ordering::Relaxed);
    }

    /// Asks to make one more request: `None` once the run is over (its time is up, its
    /// total reached, or it was stopped).
    pub fn claim(&self) -> Option<Ticket> {
        let s = &self.shared;
        if s.over.load(Ordering::Relaxed) {
            return None;
        }
        let n = s.claimed.fetch_add(1, Ordering::Relaxed);
        if s.plan.total.is_some_and(|t| n >= t) {
            return None;
        }
        let due = s
            .plan
            .rate
            .map(|r| s.began + Duration::from_secs_f64(n as f64 / r));
        let at = due.unwrap_or_else(Instant::now);
        if s.deadline.is_some_and(|d| at >= d) {
            // Later tickets are due later still: the run is over for every client.
            s.over.store(true, Ordering::Relaxed);
            return None;
        }
        Some(Ticket { due })
    }

    /// The pause before a client's next request (jittered).
    pub fn pause(&self, rng: &mut Rng) -> Duration {
        let plan = &self.shared.plan;
        if plan.pause.is_zero() {
            Duration::ZERO
        } else {
            rng.jitter(plan.pause, plan.jitter)
        }
    }

    /// Judges a response to `path`: the status against the expected ones, then the body
    /// by the plan's validation.
    pub fn judge(&self, path: &str, status: u16, body: &[u8]) -> Outcome {
        let plan = &self.shared.plan;
        let expected = if plan.expect_status.is_empty() {
            (200..300).contains(&status)
        } else {
            plan.expect_status.contains(&status)
        };
        if !expected {
            return Outcome::Failed(if status == 503 {
                ErrorKind::Busy
            } else {
                ErrorKind::Status
            });
        }
        match plan.validation {
            Validation::None => Outcome::Ok,
            Validation::Table => match check_table(path, body) {
                Ok(()) => Outcome::Ok,
                Err(reason) => {
                    tracing::debug!(target: "strata::load", %path, %reason, "invalid response");
                    Outcome::Failed(ErrorKind::Validation)
                }
            },
        }
    }

    /// Connects to the target, within the request timeout.
    pub async fn connect(&self) -> Result<Connection, ErrorKind> {
        let t = self.target();
        match tokio::time::timeout(self.plan().timeout, Connection::connect(t.address, &t.host))
            .await
        {
            Ok(Ok(c)) => Ok(c),
            Ok(Err(e)) => {
                tracing::debug!(target: "strata::load", error = %e, "cannot connect");
                Err(ErrorKind::Connect)
            }
            Err(_) => Err(ErrorKind::Connect),
        }
    }
}

/// The connect-and-request client; see the [module docs](self).
pub struct BasicClient;

impl BasicClient {
    /// A client for `kit`'s run, as an async object.
    #[allow(clippy::new_ret_no_self)]
    pub fn new(kit: Kit) -> impl Object {
        Async::new(move |mut cx: AsyncContext| async move {
            let session = session(&kit);
            tokio::pin!(session);
            // Stop (the run ending, or Ctrl-C) abandons the request in flight.
            loop {
                tokio::select! {
                    biased;
                    () = &mut session => return,
                    e = cx.recv() => if e.is::<Stop>() { return },
                }
            }
        })
    }
}

/// One session: connect, requests, disconnect.
async fn session(kit: &Kit) {
    kit.recorder().session();
    let plan = kit.plan();
    let mut rng = Rng::seeded();
    let mut path = String::new();
    let fixed = kit.target().is_fixed();
    if fixed {
        kit.target().path(&mut rng, &mut path);
    }
    let Some(first) = kit.claim() else { return };
    let mut ticket = Some(first);
    let mut conn = match kit.connect().await {
        Ok(c) => c,
        Err(kind) => {
            kit.record(Outcome::Failed(kind), Instant::now());
            // Do not hammer a server that is not there.
            tokio::time::sleep(Duration::from_millis(10) + kit.pause(&mut rng)).await;
            return;
        }
    };
    let mut made = 0u32;
    while let Some(t) = ticket.take().or_else(|| kit.claim()) {
        if let Some(due) = t.due {
            tokio::time::sleep_until(due.into()).await;
        }
        if !fixed {
            kit.target().path(&mut rng, &mut path);
        }
        let started = t.due.unwrap_or_else(Instant::now);
        let keep_alive = match tokio::time::timeout(plan.timeout, conn.get(&path)).await {
            Ok(Ok(r)) => {
                kit.record(kit.judge(&path, r.status, r.body), started);
                r.keep_alive
            }
            Ok(Err(e)) => {
                tracing::debug!(target: "strata::load", error = %e, "request failed");
                kit.record(Outcome::Failed(ErrorKind::Io), started);
                false
            }
            Err(_) => {
                kit.record(Outcome::Failed(ErrorKind::Timeout), started);
                false
            }
        };
        made += 1;
        if !keep_alive || (plan.requests > 0 && made >= plan.requests) {
            return;
        }
        let pause = kit.pause(&mut rng);
        if !pause.is_zero() {
            tokio::time::sleep(pause).await;
        }
    }
}

/// Checks that `body` is a JSON table of numbers with the dimensions `path` asked for
/// (`x` columns, `y` rows).
///
/// A single pass over the bytes that checks the JSON grammar of the table and of every
/// number without converting any of them (converting is most of what a JSON parser would
/// spend here, and the load client must cost little).
pub fn check_table(path: &str, body: &[u8]) -> Result<(), String> {
    let query = path.split_once('?').map(|(_, q)| q).unwrap_or("");
    let mut x = None;
    let mut y = None;
    for (k, v) in form_urlencoded::parse(query.as_bytes()) {
        match &*k {
            "x" => x = v.parse::<usize>().ok(),
            "y" => y = v.parse::<usize>().ok(),
            _ => {}
        }
    }
    let (Some(x), Some(y)) = (x, y) else {
        return Err(format!("`{path}` does not ask for x and y"));
    };
    let mut s = Scan { b: body, at: 0 };
    s.expect(b'[', "a table (an array of rows)")?;
    let mut rows = 0;
    if !s.close(b']') {
        loop {
            s.expect(b'[', "a row (an array of numbers)")?;
            let mut columns = 0;
            if !s.close(b']') {
                loop {
                    s.number()?;
                    columns += 1;
                    if s.close(b']') {
                        break;
                    }
                    s.expect(b',', "`,` or `]` after a number")?;
                }
            }
            if columns != x {
                return Err(format!("row {rows} has {columns} columns, asked for {x}"));
            }
            rows += 1;
            if s.close(b']') {
                break;
            }
            s.expect(b',', "`,` or `]` after a row")?;
        }
    }
    s.skip_space();
    if s.at != body.len() {
        return Err(format!("trailing characters at byte {}", s.at));
    }
    if rows != y {
        return Err(format!("{rows} rows, asked for {y}"));
    }
    Ok(())
}

/// A cursor over JSON bytes.
struct Scan<'a> {
    b: &'a [u8],
    at: usize,
}

impl Scan<'_> {
    fn skip_space(&mut self) {
        let mut i = self.at;
        while i < self.b.len() && matches!(self.b[i], b' ' | b'\n' | b'\r' | b'\t') {
            i += 1;
        }
        self.at = i;
    }

    fn expect(&mut self, c: u8, what: &str) -> Result<(), String> {
        self.skip_space();
        if self.b.get(self.at) == Some(&c) {
            self.at += 1;
            Ok(())
        } else {
            Err(format!("expected {what} at byte {}", self.at))
        }
    }

    /// Consumes `c` (after white space) if it is next.
    fn close(&mut self, c: u8) -> bool {
        self.skip_space();
        let found = self.b.get(self.at) == Some(&c);
        self.at += usize::from(found);
        found
    }

    fn digits(&mut self) -> usize {
        // A local index keeps the loop in registers.
        let from = self.at;
        let mut i = from;
        // Eight bytes at a time while they are all digits (tables are mostly digits).
        while let Some(chunk) = self.b.get(i..i + 8) {
            let w = u64::from_le_bytes(chunk.try_into().expect("eight bytes"));
            // Every byte is 0x30..=0x39: high nibble 3, and adding 6 does not carry out.
            let high = 0xF0F0_F0F0_F0F0_F0F0u64;
            let threes = 0x3030_3030_3030_3030u64;
            let sixes = 0x0606_0606_0606_0606u64;
            if w & high != threes || (w.wrapping_add(sixes)) & high != threes {
                break;
            }
            i += 8;
        }
        while i < self.b.len() && self.b[i].wrapping_sub(b'0') < 10 {
            i += 1;
        }
        self.at = i;
        i - from
    }

    /// A JSON number: `-? (0 | [1-9][0-9]*) (. [0-9]+)? ([eE] [+-]? [0-9]+)?`.
    fn number(&mut self) -> Result<(), String> {
        self.skip_space();
        let from = self.at;
        let bad = |at: usize| Err(format!("not a number at byte {at}"));
        self.at += usize::from(self.b.get(self.at) == Some(&b'-'));
        match self.b.get(self.at) {
            Some(b'0') => self.at += 1,
            Some(b'1'..=b'9') => {
                self.digits();
            }
            _ => return bad(from),
        }
        if self.b.get(self.at) == Some(&b'.') {
            self.at += 1;
            if self.digits() == 0 {
                return bad(from);
            }
        }
        if matches!(self.b.get(self.at), Some(b'e' | b'E')) {
            self.at += 1;
            self.at += usize::from(matches!(self.b.get(self.at), Some(b'+' | b'-')));
            if self.digits() == 0 {
                return bad(from);
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tables_are_checked_against_the_request() {
        let path = "/Xy?x=2&y=3";
        assert!(check_table(path, b"[[0.1,0.2],[0.3,0.4],[0.5,0.6]]").is_ok());
        assert!(check_table(path, b" [ [-0, 2e-3] ,[1.5E+7,10],\n[0.5,-12.25] ] ").is_ok());
        let long = b"[[0.12345678901234567,1234567890123456789],[0.5,0.5],[0.5,0.5]]";
        assert!(check_table(path, long).is_ok());
        let bad = b"[[0.12345678:01234567,1234567890123456789],[0.5,0.5],[0.5,0.5]]";
        assert!(check_table(path, bad).is_err());
        assert!(check_table("/Xy?x=0&y=0", b"[]").is_ok());
        assert!(check_table("/Xy?x=0&y=2", b"[[],[]]").is_ok());
        for (body, says) in [
            (&b"[[0.1,0.2],[0.3,0.4]]"[..], "2 rows"),
            (b"[[0.1,0.2],[0.3],[0.5,0.6]]", "row 1 has 1"),
            (
                b"[[0.1,\"a\"],[0.3,0.4],[0.5,0.6]]",
                "not a number at byte 6",
            ),
            (b"[[0.1,0.2],[0.3,0.4],[0.5,0.6]] x", "trailing"),
            (b"{}", "a table"),
            (b"[[0.1,0.2],[0.3,0.4],[0.5,0.6]", "after a row"),
            (b"[[0.1,0.2],[0.3,0.4],[0.5,01]]", "after a number"),
            (b"[[0.1,0.2],[0.3,0.4],[0.5,1.]]", "not a number"),
            (b"[[0.1,0.2],[0.3,0.4],[0.5,1e]]", "not a number"),
            (b"[[0.1,0.2],[0.3,0.4],[0.5,-]]", "not a number"),
            (b"[[0.1,0.2],[0.3,0.4],[0.5,0.6],]", "a row"),
        ] {
            let e = check_table(path, body).unwrap_err();
            assert!(e.contains(says), "{e}");
        }
        assert!(check_table("/Xy?x=2", b"[]")
            .unwrap_err()
            .contains("x and y"));
    }
}
