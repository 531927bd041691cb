//! A small HTTP/1.1 server on std threads for the load client's tests: it answers
//! `GET /...?x=X&y=Y` with an X-by-Y JSON table (or a deliberately wrong one), and counts
//! connections and the requests each carried, and when each request arrived. Paths
//! containing `busy` get 503, `missing` 404, and `slow` are answered after the configured
//! delay.

#![allow(dead_code)]

use std::io::{BufRead, BufReader, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// How the server behaves.
#[derive(Debug, Clone, Copy, Default)]
pub struct Behaviour {
    /// Answer with one row too many.
    pub wrong: bool,
    /// Delay for every request (or only for paths with `slow`, when `only_slow`).
    pub delay: Duration,
    /// Apply `delay` only to paths containing `slow`.
    pub only_slow: bool,
}

/// A running server; stops when dropped.
pub struct TableServer {
    /// Where it listens.
    pub address: SocketAddr,
    /// Requests carried by each connection, in order of acceptance.
    pub connections: Arc<Mutex<Vec<usize>>>,
    /// When each request's head had been read, in order.
    pub arrivals: Arc<Mutex<Vec<Instant>>>,
    stop: Arc<AtomicBool>,
}

impl TableServer {
    /// Starts a server on an ephemeral loopback port.
    pub fn start(behaviour: Behaviour) -> TableServer {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
        let address = listener.local_addr().unwrap();
        let connections = Arc::new(Mutex::new(Vec::new()));
        let arrivals = Arc::new(Mutex::new(Vec::new()));
        let stop = Arc::new(AtomicBool::new(false));
        let (c, a, s) = (connections.clone(), arrivals.clone(), stop.clone());
        std::thread::spawn(move || {
            for stream in listener.incoming() {
                if s.load(Ordering::SeqCst) {
                    break;
                }
                let Ok(stream) = stream else { continue };
                let index = {
                    let mut c = c.lock().unwrap();
                    c.push(0);
                    c.len() - 1
                };
                let (c, a) = (c.clone(), a.clone());
                std::thread::spawn(move || serve(stream, behaviour, &c, &a, index));
            }
        });
        TableServer {
            address,
            connections,
            arrivals,
            stop,
        }
    }

    /// `http://ADDRESS` followed by `path`.
    pub fn url(&self, path: &str) -> String {
        format!("http://{}{}", self.address, path)
    }

    /// Requests served in all.
    pub fn requests(&self) -> usize {
        self.connections.lock().unwrap().iter().sum()
    }
}

impl Drop for TableServer {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        let _ = TcpStream::connect(self.address);
    }
}

fn serve(
    stream: TcpStream,
    b: Behaviour,
    counts: &Mutex<Vec<usize>>,
    arrivals: &Mutex<Vec<Instant>>,
    index: usize,
) {
    let _ = stream.set_nodelay(true);
    let mut reader = BufReader::new(stream.try_clone().unwrap());
    let mut out = stream;
    loop {
        let mut line = String::new();
        if reader.read_line(&mut line).unwrap_or(0) == 0 {
            return;
        }
        // The headers: only `Connection: close` matters here.
        let mut close = false;
        loop {
            let mut h = String::new();
            if reader.read_line(&mut h).unwrap_or(0) == 0 {
                return;
            }
            if h == "\r\n" {
                break;
            }
            close |= h.to_ascii_lowercase().starts_with("connection: close");
        }
        arrivals.lock().unwrap().push(Instant::now());
        let path = line.split_whitespace().nth(1).unwrap_or("/").to_string();
        if !b.only_slow || path.contains("slow") {
            std::thread::sleep(b.delay);
        }
        let (status, body) = if path.contains("busy") {
            (
                "503 Service Unavailable",
                "{\"error\":\"busy\"}".to_string(),
            )
        } else if path.contains("missing") {
            ("404 Not Found", "{\"error\":\"not found\"}".to_string())
        } else {
            ("200 OK", table(&path, b.wrong))
        };
        counts.lock().unwrap()[index] += 1;
        // One write: a head and body in two would meet Nagle and delayed ACKs (40 ms).
        let response = format!(
            "HTTP/1.1 {status}\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
            body.len()
        );
        if out.write_all(response.as_bytes()).is_err() || close {
            return;
        }
    }
}

fn table(path: &str, wrong: bool) -> String {
    let query = path.split_once('?').map(|(_, q)| q).unwrap_or("");
    let get = |k: &str| {
        query
            .split('&')
            .find_map(|kv| kv.strip_prefix(k).and_then(|v| v.strip_prefix('=')))
            .and_then(|v| v.parse::<usize>().ok())
            .unwrap_or(1)
    };
    let (x, y) = (get("x"), get("y") + usize::from(wrong));
    let row = format!("[{}]", vec!["0.5"; x].join(","));
    format!("[{}]", vec![row; y].join(","))
}
