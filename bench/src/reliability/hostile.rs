//! Hostile clients, written on `std::net::TcpStream`, loopback only: each does one wrong
//! thing to the server (resets mid-response, sends half a request and waits, sends
//! garbage, an oversized head or body, invalid UTF-8, deeply nested JSON, huge numbers),
//! and must be answered or closed within [`BOUND`]; right after it, a normal request on a
//! fresh connection must be answered 200.

use std::io::{Read, Write};
use std::net::{Shutdown, SocketAddr, TcpStream};
use std::time::{Duration, Instant};

/// How long the server may take to answer or close a hostile connection: its read
/// time-out (10 s by default, for requests that stop half-way) and a margin.
pub const BOUND: Duration = Duration::from_secs(15);

/// What the server did with one hostile connection.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// It answered with this status, after this long.
    Answered(u16, Duration),
    /// It closed (or reset) the connection without an answer, after this long.
    Closed(Duration),
    /// The client reset the connection itself (after reading this many bytes of the
    /// answer): nothing to wait for.
    ClientReset(usize),
    /// Neither within [`BOUND`].
    NoEnd,
}

impl Outcome {
    /// A short account for the table.
    pub fn describe(&self) -> String {
        let ms = |d: &Duration| {
            if d.as_secs_f64() >= 1.0 {
                format!("{:.1} s", d.as_secs_f64())
            } else {
                format!("{:.0} ms", d.as_secs_f64() * 1e3)
            }
        };
        match self {
            Outcome::Answered(s, d) => format!("{s} in {}", ms(d)),
            Outcome::Closed(d) => format!("closed in {}", ms(d)),
            Outcome::ClientReset(n) => format!("reset by the client after {n} bytes"),
            Outcome::NoEnd => format!("no answer and still open after {} s", BOUND.as_secs()),
        }
    }

    /// Within the bound.
    pub fn ended(&self) -> bool {
        !matches!(self, Outcome::NoEnd)
    }
}

/// One hostile client: its name and what it does.
pub struct Case {
    /// The name in the table.
    pub name: &'static str,
    /// What the table says the client sent.
    pub what: &'static str,
    run: fn(SocketAddr) -> Result<Outcome, String>,
}

impl Case {
    /// Runs the client against `address`.
    pub fn run(&self, address: SocketAddr) -> Result<Outcome, String> {
        (self.run)(address)
    }
}

/// Every hostile client.
pub fn cases() -> Vec<Case> {
    vec![
        Case {
            name: "reset mid-response",
            what: "GET of a 1000x1000 table (about 18 MB), 16 KiB read, then RST (SO_LINGER 0), 5 times",
            run: reset_mid_response,
        },
        Case {
            name: "reset before the answer",
            what: "GET of a 1000x1000 table, RST at once, 5 times",
            run: reset_before_answer,
        },
        Case {
            name: "half a request line",
            what: "`GET /Xy?x=8` and nothing more, the connection left open",
            run: |a| send_and_wait(a, b"GET /Xy?x=8"),
        },
        Case {
            name: "half a head",
            what: "a request line and one header, no blank line, left open",
            run: |a| send_and_wait(a, b"GET /Xy?x=8&y=8 HTTP/1.1\r\nHost: x\r\n"),
        },
        Case {
            name: "half a body",
            what: "POST /Xy with Content-Length 100 and 10 bytes of it, left open",
            run: |a| {
                send_and_wait(
                    a,
                    b"POST /Xy HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 100\r\n\r\n{\"x\": 8, \"",
                )
            },
        },
        Case {
            name: "half a request, then FIN",
            what: "half a head, then the write side shut",
            run: half_then_fin,
        },
        Case {
            name: "garbage",
            what: "4 KiB of pseudo-random bytes, then CRLF CRLF",
            run: garbage,
        },
        Case {
            name: "oversized head",
            what: "one 1 MiB header",
            run: oversized_head,
        },
        Case {
            name: "many headers",
            what: "10,000 short headers (about 200 KiB)",
            run: many_headers,
        },
        Case {
            name: "oversized body (declared)",
            what: "POST /Xy with Content-Length 1 GiB, 64 KiB sent",
            run: oversized_body_declared,
        },
        Case {
            name: "oversized body (chunked)",
            what: "POST /Xy with 2 MiB in chunks, no Content-Length",
            run: oversized_body_chunked,
        },
        Case {
            name: "invalid UTF-8 in the query",
            what: "GET /Xy?x=%FF%FE&y=8, and raw bytes 0xFF 0xFE in the query",
            run: invalid_utf8_query,
        },
        Case {
            name: "invalid UTF-8 in the body",
            what: "POST /Xy with bytes 0xFF 0xFE inside a JSON string",
            run: |a| post(a, b"{\"x\": \"\xff\xfe\", \"y\": 8}"),
        },
        Case {
            name: "deep JSON",
            what: "POST /Xy with 100,000 nested arrays",
            run: |a| {
                let mut body = vec![b'['; 100_000];
                body.extend(std::iter::repeat_n(b']', 100_000));
                post(a, &body)
            },
        },
        Case {
            name: "deep JSON object",
            what: "POST /Xy with {\"x\": {\"x\": ...}} 50,000 deep",
            run: |a| {
                let mut body = Vec::new();
                for _ in 0..50_000 {
                    body.extend_from_slice(b"{\"x\":");
                }
                body.push(b'1');
                body.extend(std::iter::repeat_n(b'}', 50_000));
                post(a, &body)
            },
        },
        Case {
            name: "huge numbers in the query",
            what: "GET /Xy?x=99999999999999999999999999&y=8",
            run: |a| exchange(a, b"GET /Xy?x=99999999999999999999999999&y=8 HTTP/1.1\r\nHost: x\r\n\r\n"),
        },
        Case {
            name: "a huge table asked",
            what: "GET /Xy?x=100000&y=100000 (10^10 cells)",
            run: |a| exchange(a, b"GET /Xy?x=100000&y=100000 HTTP/1.1\r\nHost: x\r\n\r\n"),
        },
        Case {
            name: "huge numbers in JSON",
            what: "POST /Xy with {\"x\": 1e400, \"y\": -1, and a 10,000-digit integer}",
            run: |a| {
                let mut body = b"{\"x\": 1e400, \"y\": -1, \"z\": ".to_vec();
                body.extend(std::iter::repeat_n(b'9', 10_000));
                body.push(b'}');
                post(a, &body)
            },
        },
    ]
}

fn connect(address: SocketAddr) -> Result<TcpStream, String> {
    let s = TcpStream::connect_timeout(&address, Duration::from_secs(5))
        .map_err(|e| format!("connect: {e}"))?;
    s.set_write_timeout(Some(BOUND))
        .map_err(|e| e.to_string())?;
    Ok(s)
}

/// Waits (from `started`, at most [`BOUND`]) for an answer's status line or the end of
/// the connection; what the server sends after the status is not read.
fn outcome(s: &mut TcpStream, started: Instant) -> Outcome {
    let mut got = Vec::new();
    let mut chunk = [0u8; 8192];
    loop {
        let left = BOUND.saturating_sub(started.elapsed());
        if left.is_zero() {
            return Outcome::NoEnd;
        }
        if s.set_read_timeout(Some(left)).is_err() {
            return Outcome::Closed(started.elapsed());
        }
        match s.read(&mut chunk) {
            Ok(0) => return Outcome::Closed(started.elapsed()),
            Ok(n) => {
                got.extend_from_slice(&chunk[..n]);
                if let Some(end) = got.windows(2).position(|w| w == b"\r\n") {
                    let line = String::from_utf8_lossy(&got[..end]);
                    return match line.split(' ').nth(1).and_then(|v| v.parse().ok()) {
                        Some(status) => Outcome::Answered(status, started.elapsed()),
                        None => Outcome::Closed(started.elapsed()),
                    };
                }
            }
            Err(e)
                if matches!(
                    e.kind(),
                    std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                ) =>
            {
                return Outcome::NoEnd
            }
            Err(_) => return Outcome::Closed(started.elapsed()),
        }
    }
}

/// Writes `bytes` (a write the server cuts short counts as its closing) and waits.
fn send_and_wait(address: SocketAddr, bytes: &[u8]) -> Result<Outcome, String> {
    let mut s = connect(address)?;
    let started = Instant::now();
    if s.write_all(bytes).is_err() {
        return Ok(Outcome::Closed(started.elapsed()));
    }
    Ok(outcome(&mut s, started))
}

fn exchange(address: SocketAddr, request: &[u8]) -> Result<Outcome, String> {
    send_and_wait(address, request)
}

fn post(address: SocketAddr, body: &[u8]) -> Result<Outcome, String> {
    let mut request = format!(
        "POST /Xy HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n",
        body.len()
    )
    .into_bytes();
    request.extend_from_slice(body);
    send_and_wait(address, &request)
}

/// Resets the connection: SO_LINGER 0, then close.
fn reset(s: TcpStream) {
    let linger = libc::linger {
        l_onoff: 1,
        l_linger: 0,
    };
    use std::os::fd::AsRawFd;
    // SAFETY: setsockopt reads the struct it is given, of the size given, on our socket.
    unsafe {
        libc::setsockopt(
            s.as_raw_fd(),
            libc::SOL_SOCKET,
            libc::SO_LINGER,
            (&linger as *const libc::linger).cast(),
            std::mem::size_of::<libc::linger>() as libc::socklen_t,
        );
    }
    drop(s);
}

const BIG: &[u8] = b"GET /Xy?x=1000&y=1000 HTTP/1.1\r\nHost: x\r\n\r\n";

fn reset_mid_response(address: SocketAddr) -> Result<Outcome, String> {
    let mut read = 0;
    for _ in 0..5 {
        let mut s = connect(address)?;
        s.write_all(BIG).map_err(|e| format!("write: {e}"))?;
        s.set_read_timeout(Some(BOUND)).map_err(|e| e.to_string())?;
        let mut chunk = [0u8; 16 * 1024];
        let mut got = 0;
        while got < chunk.len() {
            match s.read(&mut chunk[got..]) {
                Ok(0) | Err(_) => break,
                Ok(n) => got += n,
            }
        }
        if got == 0 {
            return Err("the 1000x1000 table was not answered at all".into());
        }
        read = got;
        reset(s);
    }
    Ok(Outcome::ClientReset(read))
}

fn reset_before_answer(address: SocketAddr) -> Result<Outcome, String> {
    for _ in 0..5 {
        let mut s = connect(address)?;
        s.write_all(BIG).map_err(|e| format!("write: {e}"))?;
        reset(s);
    }
    Ok(Outcome::ClientReset(0))
}

fn half_then_fin(address: SocketAddr) -> Result<Outcome, String> {
    let mut s = connect(address)?;
    let started = Instant::now();
    s.write_all(b"GET /Xy?x=8&y=8 HTTP/1.1\r\nHost: x\r\n")
        .map_err(|e| format!("write: {e}"))?;
    let _ = s.shutdown(Shutdown::Write);
    Ok(outcome(&mut s, started))
}

fn garbage(address: SocketAddr) -> Result<Outcome, String> {
    // xorshift64: the same bytes every run.
    let mut x: u64 = 0x9E37_79B9_7F4A_7C15;
    let mut bytes: Vec<u8> = (0..4096)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            (x >> 24) as u8
        })
        .collect();
    bytes.extend_from_slice(b"\r\n\r\n");
    send_and_wait(address, &bytes)
}

fn oversized_head(address: SocketAddr) -> Result<Outcome, String> {
    let mut request = b"GET /Xy?x=8&y=8 HTTP/1.1\r\nHost: x\r\nX-Big: ".to_vec();
    request.extend(std::iter::repeat_n(b'a', 1 << 20));
    request.extend_from_slice(b"\r\n\r\n");
    send_and_wait(address, &request)
}

fn many_headers(address: SocketAddr) -> Result<Outcome, String> {
    let mut request = b"GET /Xy?x=8&y=8 HTTP/1.1\r\nHost: x\r\n".to_vec();
    for i in 0..10_000 {
        request.extend_from_slice(format!("X-H{i}: v\r\n").as_bytes());
    }
    request.extend_from_slice(b"\r\n");
    send_and_wait(address, &request)
}

fn oversized_body_declared(address: SocketAddr) -> Result<Outcome, String> {
    let mut request = b"POST /Xy HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 1073741824\r\n\r\n".to_vec();
    request.extend(std::iter::repeat_n(b' ', 64 * 1024));
    send_and_wait(address, &request)
}

fn oversized_body_chunked(address: SocketAddr) -> Result<Outcome, String> {
    let mut s = connect(address)?;
    let started = Instant::now();
    let head = b"POST /Xy HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n";
    if s.write_all(head).is_err() {
        return Ok(Outcome::Closed(started.elapsed()));
    }
    let chunk = vec![b' '; 64 * 1024];
    for _ in 0..32 {
        let ok = s
            .write_all(format!("{:x}\r\n", chunk.len()).as_bytes())
            .and_then(|_| s.write_all(&chunk))
            .and_then(|_| s.write_all(b"\r\n"));
        if ok.is_err() {
            // The server stopped reading: it answered or closed; see which.
            break;
        }
    }
    let _ = s.write_all(b"0\r\n\r\n");
    Ok(outcome(&mut s, started))
}

fn invalid_utf8_query(address: SocketAddr) -> Result<Outcome, String> {
    let first = exchange(address, b"GET /Xy?x=%FF%FE&y=8 HTTP/1.1\r\nHost: x\r\n\r\n")?;
    if !first.ended() {
        return Ok(first);
    }
    exchange(
        address,
        b"GET /Xy?x=\xff\xfe&y=8 HTTP/1.1\r\nHost: x\r\n\r\n",
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_server_that_closes_at_once_is_closed_and_one_that_holds_on_is_no_end() {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let address = listener.local_addr().unwrap();
        let t = std::thread::spawn(move || {
            let (s, _) = listener.accept().unwrap();
            drop(s);
        });
        let o = send_and_wait(address, b"GET / HTTP/1.1\r\n").unwrap();
        assert!(matches!(o, Outcome::Closed(_)), "{o:?}");
        t.join().unwrap();
    }

    #[test]
    fn an_answer_is_read_to_its_status() {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let address = listener.local_addr().unwrap();
        let t = std::thread::spawn(move || {
            let (mut s, _) = listener.accept().unwrap();
            let mut buf = [0u8; 64];
            let _ = s.read(&mut buf);
            s.write_all(b"HTTP/1.1 400 Bad Request\r\ncontent-length: 0\r\n\r\n")
                .unwrap();
            std::thread::sleep(Duration::from_millis(200));
        });
        let o = exchange(address, b"GET / HTTP/1.1\r\n\r\n").unwrap();
        assert!(matches!(o, Outcome::Answered(400, _)), "{o:?}");
        t.join().unwrap();
    }
}
