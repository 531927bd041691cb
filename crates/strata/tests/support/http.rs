//! A raw HTTP/1.1 client over std sockets for the HTTP front's tests: requests written by
//! hand (so they can be malformed, stalled or never read from), answers read back with
//! every read bounded by `WAIT`.

#![allow(dead_code)]

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};

use super::bounds::WAIT;

/// A response: status, head (the status line and headers) and body.
pub struct Answer {
    /// The status code.
    pub status: u16,
    /// The status line and headers, as sent.
    pub head: String,
    /// The body (`Content-Length` bytes).
    pub body: String,
}

/// Reads one response; fails the test if the connection closes first.
pub fn read_answer(r: &mut BufReader<TcpStream>) -> Answer {
    let mut head = String::new();
    loop {
        let mut line = String::new();
        let n = r.read_line(&mut line).expect("a response");
        assert!(
            n > 0,
            "the connection closed before a response (head so far: {head:?})"
        );
        if line == "\r\n" {
            break;
        }
        head.push_str(&line);
    }
    let status = head[9..12].parse().expect("a status code");
    let length: usize = head
        .lines()
        .find_map(|l| {
            l.to_ascii_lowercase()
                .strip_prefix("content-length:")
                .map(|v| v.trim().parse().unwrap())
        })
        .unwrap_or(0);
    let mut body = vec![0; length];
    r.read_exact(&mut body).unwrap();
    Answer {
        status,
        head,
        body: String::from_utf8(body).unwrap(),
    }
}

/// A connection whose reads give up after `WAIT`.
pub fn open(address: SocketAddr) -> BufReader<TcpStream> {
    let s = TcpStream::connect(address).unwrap();
    s.set_read_timeout(Some(WAIT)).unwrap();
    BufReader::new(s)
}

/// Writes `raw` and reads the response.
pub fn send(r: &mut BufReader<TcpStream>, raw: &[u8]) -> Answer {
    r.get_mut().write_all(raw).unwrap();
    read_answer(r)
}

/// One `GET` on a connection of its own.
pub fn get(address: SocketAddr, target: &str) -> Answer {
    send(
        &mut open(address),
        format!("GET {target} HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n").as_bytes(),
    )
}

/// One `POST` of a JSON body on a connection of its own.
pub fn post(address: SocketAddr, target: &str, body: &str) -> Answer {
    send(
        &mut open(address),
        format!(
            "POST {target} HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\
             Content-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
            body.len()
        )
        .as_bytes(),
    )
}

/// The body as JSON; fails the test if it is not.
pub fn json(a: &Answer) -> serde_json::Value {
    serde_json::from_str(&a.body).unwrap_or_else(|e| panic!("not JSON ({e}): {:?}", a.body))
}
