//! The reliability benchmark's load: HTTP/1.1 clients on keep-alive connections (tokio
//! `TcpStream`s, one request in flight per connection), closed-loop (each connection sends
//! its next request when the last is answered) or open-loop (every connection keeps its
//! share of a fixed rate, whatever the server does, as wrk2 does). Every request ends in
//! exactly one class: an answer by status (200, 503, 504, other), a connection error (the
//! connection failed, was closed or reset before the answer came) or *lost* (no answer
//! within the bound, on a connection still open): so `sent` always equals the sum of the
//! classes, which the harness checks.

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpSocket, TcpStream};

/// How long one request may go unanswered before it counts as lost.
pub const ANSWER_BOUND: Duration = Duration::from_secs(10);

/// How a load run went, request by request.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Tally {
    /// Requests written (or whose writing was tried) to a connection.
    pub sent: u64,
    /// Requests due in an open-loop run that the client never sent: it was still waiting
    /// on the connection's previous request when the run ended.
    pub unsent: u64,
    /// Answers 200.
    pub ok: u64,
    /// Answers 503 (the spool's `Busy` and `Overloaded`).
    pub unavailable: u64,
    /// Answers 504 (no reply within the front's request time-out, or `TimedOut`).
    pub timeout: u64,
    /// Answers with any other status.
    pub other: u64,
    /// Requests whose connection could not be made, or closed or was reset before the
    /// answer.
    pub conn_errors: u64,
    /// Requests with no answer within [`ANSWER_BOUND`].
    pub lost: u64,
}

impl Tally {
    /// Adds `other` to this tally.
    pub fn add(&mut self, other: &Tally) {
        self.sent += other.sent;
        self.unsent += other.unsent;
        self.ok += other.ok;
        self.unavailable += other.unavailable;
        self.timeout += other.timeout;
        self.other += other.other;
        self.conn_errors += other.conn_errors;
        self.lost += other.lost;
    }

    /// Every sent request is in exactly one class.
    pub fn adds_up(&self) -> bool {
        self.ok + self.unavailable + self.timeout + self.other + self.conn_errors + self.lost
            == self.sent
    }

    /// Requests sent that were neither 200 nor 503: what a kill may cost.
    pub fn failed(&self) -> u64 {
        self.timeout + self.other + self.conn_errors + self.lost
    }

    fn count(&mut self, outcome: Outcome) {
        match outcome {
            Outcome::Status(200) => self.ok += 1,
            Outcome::Status(503) => self.unavailable += 1,
            Outcome::Status(504) => self.timeout += 1,
            Outcome::Status(_) => self.other += 1,
            Outcome::ConnError => self.conn_errors += 1,
            Outcome::Lost => self.lost += 1,
        }
    }
}

/// What became of one request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Outcome {
    Status(u16),
    ConnError,
    Lost,
}

/// One load run's shape.
#[derive(Debug, Clone)]
pub struct Plan {
    /// The server.
    pub address: SocketAddr,
    /// The request path (with its query).
    pub path: String,
    /// Connections at once.
    pub connections: usize,
    /// How long requests are started.
    pub duration: Duration,
    /// Open loop: requests per second in all; `None`: closed loop.
    pub rate: Option<f64>,
    /// The local addresses the connections are made from (loopback addresses), in turn;
    /// none: the system's choice.
    pub sources: Vec<IpAddr>,
}

/// Runs `plan` to the end (requests are started for `duration`; the last ones are waited
/// for at most [`ANSWER_BOUND`]) and gives the tally and the measured span.
pub async fn run(plan: Plan) -> (Tally, Duration) {
    let plan = Arc::new(plan);
    let started = Instant::now();
    let mut tasks = Vec::with_capacity(plan.connections);
    for i in 0..plan.connections {
        let plan = plan.clone();
        tasks.push(tokio::spawn(
            async move { connection(&plan, i, started).await },
        ));
    }
    let mut tally = Tally::default();
    for t in tasks {
        if let Ok(part) = t.await {
            tally.add(&part);
        }
    }
    (tally, started.elapsed().min(plan.duration + ANSWER_BOUND))
}

/// One connection's share of the plan.
async fn connection(plan: &Plan, index: usize, started: Instant) -> Tally {
    let mut tally = Tally::default();
    let end = started + plan.duration;
    let request = format!(
        "GET {} HTTP/1.1\r\nHost: {}\r\n\r\n",
        plan.path, plan.address
    )
    .into_bytes();
    // Open loop: this connection's requests are due every `interval`, the connections'
    // schedules staggered over one interval.
    let interval = plan
        .rate
        .map(|r| Duration::from_secs_f64(plan.connections as f64 / r.max(1e-6)));
    let mut due = interval.map(|i| started + i.mul_f64(index as f64 / plan.connections as f64));
    let mut stream: Option<TcpStream> = None;
    let mut buffer = Vec::with_capacity(64 * 1024);
    // A bound on the loop besides time: no connection sends more than this.
    for _ in 0..50_000_000u64 {
        if let Some(d) = due {
            if d >= end {
                break;
            }
            tokio::time::sleep_until(d.into()).await;
        }
        if Instant::now() >= end {
            break;
        }
        if let (Some(d), Some(i)) = (due.as_mut(), interval) {
            *d += i;
        }
        tally.sent += 1;
        if stream.is_none() {
            match connect(plan, index).await {
                Ok(s) => stream = Some(s),
                Err(_) => {
                    tally.count(Outcome::ConnError);
                    // Not a busy loop when the server refuses connections.
                    tokio::time::sleep(Duration::from_millis(10)).await;
                    continue;
                }
            }
        }
        let s = stream.as_mut().expect("connected above");
        let (outcome, keep) = exchange(s, &request, &mut buffer).await;
        tally.count(outcome);
        if !keep {
            stream = None;
        }
    }
    // Open loop: what was due after the run ended is not counted; what fell due while
    // this connection waited and was never sent is.
    if let (Some(d), Some(i)) = (due, interval) {
        if d < end {
            let behind = end.duration_since(d).as_secs_f64() / i.as_secs_f64();
            tally.unsent += behind.ceil() as u64;
        }
    }
    tally
}

async fn connect(plan: &Plan, index: usize) -> std::io::Result<TcpStream> {
    let socket = TcpSocket::new_v4()?;
    if !plan.sources.is_empty() {
        let source = plan.sources[index % plan.sources.len()];
        socket.bind(SocketAddr::new(source, 0))?;
    }
    let stream = tokio::time::timeout(Duration::from_secs(5), socket.connect(plan.address))
        .await
        .map_err(|_| std::io::Error::new(std::io::ErrorKind::TimedOut, "connect"))??;
    stream.set_nodelay(true)?;
    Ok(stream)
}

/// Writes `request` and reads its answer; says whether the connection can be used again.
async fn exchange(s: &mut TcpStream, request: &[u8], buffer: &mut Vec<u8>) -> (Outcome, bool) {
    match tokio::time::timeout(ANSWER_BOUND, exchange_unbounded(s, request, buffer)).await {
        Ok(Ok((status, keep))) => (Outcome::Status(status), keep),
        Ok(Err(_)) => (Outcome::ConnError, false),
        Err(_) => (Outcome::Lost, false),
    }
}

async fn exchange_unbounded(
    s: &mut TcpStream,
    request: &[u8],
    buffer: &mut Vec<u8>,
) -> std::io::Result<(u16, bool)> {
    s.write_all(request).await?;
    buffer.clear();
    let mut chunk = [0u8; 32 * 1024];
    let mut searched: usize = 0;
    let head_end = loop {
        if let Some(i) = find(&buffer[searched.saturating_sub(3)..], b"\r\n\r\n") {
            break searched.saturating_sub(3) + i;
        }
        searched = buffer.len();
        if buffer.len() > 64 * 1024 {
            return Err(std::io::Error::other("a response head over 64 KiB"));
        }
        let n = s.read(&mut chunk).await?;
        if n == 0 {
            return Err(std::io::ErrorKind::UnexpectedEof.into());
        }
        buffer.extend_from_slice(&chunk[..n]);
    };
    let head = std::str::from_utf8(&buffer[..head_end])
        .map_err(|_| std::io::Error::other("a response head that is not UTF-8"))?;
    let status: u16 = head
        .split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .ok_or_else(|| std::io::Error::other("not an HTTP response"))?;
    let mut length: Option<usize> = None;
    let mut close = false;
    for line in head.split("\r\n").skip(1) {
        if let Some((k, v)) = line.split_once(':') {
            let k = k.trim();
            if k.eq_ignore_ascii_case("content-length") {
                length = v.trim().parse().ok();
            } else if k.eq_ignore_ascii_case("connection") {
                close = v.trim().eq_ignore_ascii_case("close");
            } else if k.eq_ignore_ascii_case("transfer-encoding") {
                return Err(std::io::Error::other("chunked responses are not read here"));
            }
        }
    }
    let length = length.ok_or_else(|| std::io::Error::other("no Content-Length"))?;
    let mut have = buffer.len() - (head_end + 4);
    while have < length {
        let n = s.read(&mut chunk).await?;
        if n == 0 {
            return Err(std::io::ErrorKind::UnexpectedEof.into());
        }
        have += n;
    }
    Ok((status, !close && have == length))
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|w| w == needle)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_outcome_has_one_class() {
        let mut t = Tally::default();
        for o in [
            Outcome::Status(200),
            Outcome::Status(503),
            Outcome::Status(504),
            Outcome::Status(500),
            Outcome::ConnError,
            Outcome::Lost,
        ] {
            t.sent += 1;
            t.count(o);
        }
        assert!(t.adds_up());
        assert_eq!((t.ok, t.unavailable, t.timeout, t.other), (1, 1, 1, 1));
        assert_eq!((t.conn_errors, t.lost, t.failed()), (1, 1, 4));
    }

    #[test]
    fn a_closed_server_port_gives_connection_errors_not_losses() {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let address = listener.local_addr().unwrap();
        drop(listener);
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        let (t, _) = rt.block_on(run(Plan {
            address,
            path: "/".into(),
            connections: 2,
            duration: Duration::from_millis(200),
            rate: Some(100.0),
            sources: Vec::new(),
        }));
        assert!(t.sent > 0 && t.adds_up(), "{t:?}");
        assert_eq!(t.conn_errors, t.sent);
        assert_eq!(t.lost, 0);
    }
}
