//! `lan-tcp`: the raw TCP baseline of the LAN benchmark's link rows (`src/lan/`): the
//! link benchmark's fixed-size frames (`src/link/protocol.rs`) over one plain TCP
//! connection between two namespace hosts, blocking std I/O at both ends, `TCP_NODELAY`.
//!
//! * `lan-tcp serve ADDR`: listens on ADDR, prints `listening`, and serves one connection
//!   after another: a `HIT` is answered at once with `ANSWER` (value + 1), `ITEM`s are
//!   counted (an `ACK` every `ACK_EVERY`), a `FLUSH` is answered with `DONE` (count, sum).
//! * `lan-tcp roundtrip ADDR N`: connects, makes N/10 round trips not measured, then N,
//!   and prints `RESULT <nanoseconds>` for the N.
//! * `lan-tcp oneway ADDR N`: connects, streams N/10 items, flushes and checks the
//!   `DONE` (not measured), then the same with N items, and prints `RESULT <nanoseconds>`
//!   from the first item written to the `DONE` read.
//!
//! Not meant to be run by hand; the harness runs it inside the hosts.

#[path = "../link/protocol.rs"]
mod protocol;

use std::io::{BufReader, BufWriter, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::process::ExitCode;
use std::time::Instant;

use protocol::{kind, ACK_EVERY, FRAME};

fn read_frame(r: &mut impl Read) -> std::io::Result<[u8; FRAME]> {
    let mut f = [0u8; FRAME];
    r.read_exact(&mut f)?;
    Ok(f)
}

fn serve(addr: &str) -> Result<(), String> {
    let listener = TcpListener::bind(addr).map_err(|e| format!("bind {addr}: {e}"))?;
    println!("listening");
    let _ = std::io::stdout().flush();
    for conn in listener.incoming() {
        let conn = conn.map_err(|e| format!("accept: {e}"))?;
        // One connection ends when the client closes it (or breaks): the next is served.
        let _ = serve_one(conn);
    }
    Ok(())
}

fn serve_one(conn: TcpStream) -> std::io::Result<()> {
    conn.set_nodelay(true)?;
    let mut writer = conn.try_clone()?;
    let mut reader = BufReader::with_capacity(64 * 1024, conn);
    let (mut count, mut sum) = (0u64, 0u64);
    loop {
        let f = read_frame(&mut reader)?;
        let (k, a, _) = protocol::decode(&f);
        match k {
            kind::HIT => writer.write_all(&protocol::encode(kind::ANSWER, a + 1, 0))?,
            kind::ITEM => {
                count += 1;
                sum = sum.wrapping_add(a);
                if count.is_multiple_of(ACK_EVERY) {
                    writer.write_all(&protocol::encode(kind::ACK, count, 0))?;
                }
            }
            kind::FLUSH => {
                writer.write_all(&protocol::encode(kind::DONE, count, sum))?;
                (count, sum) = (0, 0);
            }
            _ => return Ok(()),
        }
    }
}

fn connect(addr: &str) -> Result<TcpStream, String> {
    let s = TcpStream::connect(addr).map_err(|e| format!("connect {addr}: {e}"))?;
    s.set_nodelay(true).map_err(|e| format!("nodelay: {e}"))?;
    Ok(s)
}

fn roundtrips(s: &mut TcpStream, n: u64) -> Result<(), String> {
    for i in 0..n {
        s.write_all(&protocol::encode(kind::HIT, i, 0))
            .map_err(|e| format!("write: {e}"))?;
        let f = read_frame(s).map_err(|e| format!("read: {e}"))?;
        let (k, a, _) = protocol::decode(&f);
        if k != kind::ANSWER || a != i + 1 {
            return Err(format!("answer {a} (kind {k}) to request {i}"));
        }
    }
    Ok(())
}

fn stream(s: &TcpStream, n: u64) -> Result<(), String> {
    let mut w = BufWriter::with_capacity(64 * 1024, s);
    for i in 0..n {
        w.write_all(&protocol::encode(kind::ITEM, i, 0))
            .map_err(|e| format!("write: {e}"))?;
    }
    w.write_all(&protocol::encode(kind::FLUSH, 0, 0))
        .and_then(|_| w.flush())
        .map_err(|e| format!("write: {e}"))?;
    drop(w);
    let mut r = s;
    loop {
        let f = read_frame(&mut r).map_err(|e| format!("read: {e}"))?;
        let (k, a, b) = protocol::decode(&f);
        if k == kind::DONE {
            let sum = (0..n).fold(0u64, |s, v| s.wrapping_add(v));
            if a != n || b != sum {
                return Err(format!("{n} items arrived as {a} summing to {b}"));
            }
            return Ok(());
        }
    }
}

fn measure(mode: &str, addr: &str, n: u64) -> Result<(), String> {
    let mut s = connect(addr)?;
    let pass = |s: &mut TcpStream, n: u64| match mode {
        "roundtrip" => roundtrips(s, n),
        _ => stream(s, n),
    };
    pass(&mut s, (n / 10).max(1))?;
    let began = Instant::now();
    pass(&mut s, n)?;
    println!("RESULT {}", began.elapsed().as_nanos());
    Ok(())
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let words: Vec<&str> = args.iter().map(String::as_str).collect();
    let result = match words.as_slice() {
        ["serve", addr] => serve(addr),
        [mode @ ("roundtrip" | "oneway"), addr, n] => match n.parse::<u64>() {
            Ok(n) if n > 0 => measure(mode, addr, n),
            _ => Err(format!("bad count {n:?}")),
        },
        _ => Err("usage: lan-tcp serve ADDR | lan-tcp roundtrip|oneway ADDR N".into()),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("lan-tcp: {e}");
            ExitCode::FAILURE
        }
    }
}
