//! Clients: the objects that make the requests of a load run.
//!
//! Every client gets a [`ClientKit`]: the run's plan and target, where outcomes are
//! recorded, the run's pacing ([`ClientKit::claim`] says whether to make another request
//! and, at a constant rate, when it is due) and a random generator of the client's own
//! (for templated paths and jittered pauses). [`BasicClient`] is the connect-and-request
//! client: it connects, makes up to `requests` requests with a pause between them, scores
//! each response, and disconnects; the run then makes a new client in its place. Any other
//! object — a machine with timers, a thread, an async object — can be a client: make it
//! from the kit and have it record through [`ClientKit::record`].

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use parking_lot::Mutex;

use super::conn::Connection;
use super::plan::{LoadPlan, Target};
use super::record::{ErrorKind, Outcome, Recorder};
use super::shape::Order;
use crate::object::{Async, AsyncContext, Object};
use crate::random::Rng;
use crate::standard::Stop;

/// A closure `FnMut(ClientKit) -> object` makes the clients of a run: it is a
/// [`Recipe<ClientKit>`](crate::Recipe), given each client's [`ClientKit`].
impl<F, S> crate::Recipe<ClientKit> for F
where
    F: FnMut(ClientKit) -> S + Send + 'static,
    S: Object,
{
    type Member = S;
    fn make(&mut self, kit: ClientKit) -> S {
        self(kit)
    }
}

/// What a client of a run is given: the run it takes part in, seen from one client slot;
/// see the [module docs](crate::load).
pub struct ClientKit {
    shared: Arc<Shared>,
    slot: u32,
    /// The client's own generator (one client uses its kit at a time: never contended).
    rng: Mutex<Rng>,
}

/// A clone is a kit for the same slot that draws from a generator of its own.
impl Clone for ClientKit {
    fn clone(&self) -> Self {
        self.for_slot(self.slot)
    }
}

struct Shared {
    plan: LoadPlan,
    target: Target,
    recorder: Recorder,
    began: Instant,
    deadline: Option<Instant>,
    /// Requests claimed so far.
    claimed: AtomicU64,
    /// The next line of a request file drawn in order.
    next_line: AtomicU64,
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

impl ClientKit {
    pub(crate) fn new(plan: LoadPlan, target: Target, recorder: Recorder) -> ClientKit {
        let began = Instant::now();
        ClientKit {
            shared: Arc::new(Shared {
                deadline: plan.run_time().map(|d| began + d),
                plan,
                target,
                recorder,
                began,
                claimed: AtomicU64::new(0),
                next_line: AtomicU64::new(0),
                over: AtomicBool::new(false),
            }),
            slot: 0,
            rng: Mutex::new(Rng::seeded()),
        }
    }

    pub(crate) fn for_slot(&self, slot: u32) -> ClientKit {
        ClientKit {
            shared: self.shared.clone(),
            slot,
            rng: Mutex::new(Rng::seeded()),
        }
    }

    /// Which client slot this is (0 to clients − 1); a replacement takes its
    /// predecessor's slot.
    pub fn slot(&self) -> u32 {
        self.slot
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
    pub(crate) fn recorder(&self) -> &Recorder {
        &self.shared.recorder
    }

    /// Counts a client session begun (one connection's worth of requests, or whatever a
    /// client of your own calls a visit): the report's `sessions`.
    pub fn begin_session(&self) {
        self.shared.recorder.session();
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
        let due = match s.plan.rate {
            None => None,
            Some(r) if s.plan.stages.is_empty() => {
                Some(s.began + Duration::from_secs_f64(n as f64 / r))
            }
            Some(r) => match super::stages::due_offset(&s.plan.stages, r, n) {
                Some(t) => Some(s.began + Duration::from_secs_f64(t)),
                None => {
                    s.over.store(true, Ordering::Relaxed);
                    return None;
                }
            },
        };
        let at = due.unwrap_or_else(Instant::now);
        if s.deadline.is_some_and(|d| at >= d) {
            // Later tickets are due later still: the run is over for every client.
            s.over.store(true, Ordering::Relaxed);
            return None;
        }
        Some(Ticket { due })
    }

    /// The pause before a client's next request: the plan's, jittered (from this client's
    /// generator).
    pub fn pause(&self) -> Duration {
        let plan = &self.shared.plan;
        if plan.pause.is_zero() {
            Duration::ZERO
        } else {
            self.rng.lock().jitter(plan.pause, plan.jitter)
        }
    }

    /// Writes the path (and query) of a request into `out`: the URL's, with its templated
    /// parts drawn from this client's generator.
    pub fn path(&self, out: &mut String) {
        self.shared.target.path(&mut self.rng.lock(), out);
    }

    /// Which of the target's request shapes the next request takes: the only one, or a
    /// line of the request file (in turn or at random, as the plan says).
    pub(crate) fn pick(&self) -> usize {
        let n = self.shared.target.shapes.len();
        if n <= 1 {
            return 0;
        }
        match self.shared.plan.order {
            Order::InOrder => {
                (self.shared.next_line.fetch_add(1, Ordering::Relaxed) % n as u64) as usize
            }
            Order::Random => self.rng.lock().below(n as u64) as usize,
        }
    }

    /// Writes the path of a request of shape `index` into `out`.
    pub(crate) fn shape_path(&self, index: usize, out: &mut String) {
        let shape = &self.shared.target.shapes[index];
        super::plan::write_path(&shape.path, &mut self.rng.lock(), out);
    }

    /// The body of a request of shape `index` (a template's drawn into `scratch`).
    pub(crate) fn shape_body<'a>(
        &'a self,
        index: usize,
        scratch: &'a mut Vec<u8>,
    ) -> Option<&'a [u8]> {
        use super::shape::{expand, BodyParts};
        match &self.shared.target.shapes[index].body {
            BodyParts::None => None,
            BodyParts::Fixed(b) => Some(b),
            BodyParts::Template(parts) => {
                scratch.clear();
                expand(parts, &mut self.rng.lock(), scratch);
                Some(scratch)
            }
        }
    }

    /// Keeps an example of a failure for the report (the first few of the run are kept;
    /// `what` is only called for those).
    pub fn note_failure(&self, kind: ErrorKind, what: impl FnOnce() -> String) {
        self.shared
            .recorder
            .example(|| format!("{}: {}", kind.name(), what()));
    }

    /// Scores a response to `path`: the status against the expected ones, then the body
    /// by the plan's validation and its `expect` checks.
    pub fn score(&self, path: &str, status: u16, body: &[u8]) -> Outcome {
        let plan = &self.shared.plan;
        let expected = if plan.expect_status.is_empty() {
            (200..300).contains(&status)
        } else {
            plan.expect_status.contains(&status)
        };
        if !expected {
            let kind = if status == 503 {
                ErrorKind::Busy
            } else {
                ErrorKind::Status
            };
            self.note_failure(kind, || format!("{path} answered {status}"));
            return Outcome::Failed(kind);
        }
        let verdict = plan.validation.check(path, body).and_then(|()| {
            self.shared
                .target
                .expect
                .iter()
                .try_for_each(|c| c.check(body))
        });
        match verdict {
            Ok(()) => Outcome::Ok,
            Err(reason) => {
                tracing::debug!(target: "strata::load", %path, %reason, "invalid response");
                self.note_failure(ErrorKind::Validation, || format!("{path}: {reason}"));
                Outcome::Failed(ErrorKind::Validation)
            }
        }
    }

    /// Connects to the target (with a TLS session for `https://`), within the request
    /// timeout.
    pub async fn connect(&self) -> Result<Connection, ErrorKind> {
        let t = self.target();
        let connect = async {
            match t.tls() {
                None => Connection::connect(t.address, &t.host).await,
                Some(tls) => Connection::connect_tls(t.address, &t.host, tls).await,
            }
        };
        match tokio::time::timeout(self.plan().timeout, connect).await {
            Ok(Ok(c)) => Ok(c),
            Ok(Err(e)) => {
                tracing::debug!(target: "strata::load", error = %e, "cannot connect");
                self.note_failure(ErrorKind::Connect, || format!("{}: {e}", t.address));
                Err(ErrorKind::Connect)
            }
            Err(_) => {
                self.note_failure(ErrorKind::Connect, || {
                    format!(
                        "{}: no connection within {:?}",
                        t.address,
                        self.plan().timeout
                    )
                });
                Err(ErrorKind::Connect)
            }
        }
    }
}

/// The connect-and-request client; see the [module docs](crate::load).
pub struct BasicClient;

impl BasicClient {
    /// A client for `kit`'s run, as an async object.
    #[allow(clippy::new_ret_no_self)]
    pub fn new(kit: ClientKit) -> impl Object {
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
async fn session(kit: &ClientKit) {
    kit.begin_session();
    let plan = kit.plan();
    let mut path = String::new();
    let mut scratch = Vec::new();
    let shapes = &kit.target().shapes;
    let fixed = shapes.len() == 1 && shapes[0].is_fixed();
    let mut index = 0;
    if fixed {
        kit.shape_path(0, &mut path);
    }
    let Some(first) = kit.claim() else { return };
    let mut ticket = Some(first);
    let mut conn = match kit.connect().await {
        Ok(c) => c,
        Err(kind) => {
            kit.record(Outcome::Failed(kind), Instant::now());
            // Do not hammer a server that is not there.
            tokio::time::sleep(Duration::from_millis(10) + kit.pause()).await;
            return;
        }
    };
    let mut made = 0u32;
    while let Some(t) = ticket.take().or_else(|| kit.claim()) {
        if let Some(due) = t.due {
            tokio::time::sleep_until(due.into()).await;
        }
        if !fixed {
            index = kit.pick();
            kit.shape_path(index, &mut path);
        }
        let shape = &shapes[index];
        let body = kit.shape_body(index, &mut scratch);
        let started = t.due.unwrap_or_else(Instant::now);
        let sent = conn.send(&shape.method, &path, &shape.head, body);
        let keep_alive = match tokio::time::timeout(plan.timeout, sent).await {
            Ok(Ok(r)) => {
                kit.record(kit.score(&path, r.status, r.body), started);
                r.keep_alive
            }
            Ok(Err(e)) => {
                tracing::debug!(target: "strata::load", error = %e, "request failed");
                kit.note_failure(ErrorKind::Io, || format!("{} {path}: {e}", shape.method));
                kit.record(Outcome::Failed(ErrorKind::Io), started);
                false
            }
            Err(_) => {
                kit.note_failure(ErrorKind::Timeout, || {
                    format!(
                        "{} {path}: no answer within {:?}",
                        shape.method, plan.timeout
                    )
                });
                kit.record(Outcome::Failed(ErrorKind::Timeout), started);
                false
            }
        };
        made += 1;
        if !keep_alive || !plan.keep_alive || (plan.requests > 0 && made >= plan.requests) {
            return;
        }
        let pause = kit.pause();
        if !pause.is_zero() {
            tokio::time::sleep(pause).await;
        }
    }
}
