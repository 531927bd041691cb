//! A loopback HTTP/1.1 server on std threads that keeps every request it is sent (method,
//! path, headers, body) and answers each with the same JSON body; over plain TCP or over
//! rustls with a certificate the test makes ([`TestCert`], a CA and a leaf for 127.0.0.1
//! by `rcgen`). It counts the connections open now and, over TLS, which handshakes
//! resumed an earlier session.
//!
//! Not part of `support/mod.rs` (the strata-cli tests include that folder and lack
//! rustls): a test includes it with `#[path = "support/recording_server.rs"]`.

#![allow(dead_code)]

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};
use rustls::{ServerConfig, ServerConnection, StreamOwned};

/// One request as it arrived.
#[derive(Debug, Clone, PartialEq)]
pub struct Recorded {
    pub method: String,
    pub path: String,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl Recorded {
    /// The value of header `name` (any case).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}

/// A certificate authority and a server certificate for 127.0.0.1 signed by it.
pub struct TestCert {
    /// The CA's certificate, PEM.
    pub ca_pem: String,
    /// A server configuration with the leaf certificate.
    pub server: Arc<ServerConfig>,
}

impl TestCert {
    /// Makes a fresh CA and leaf.
    pub fn make() -> TestCert {
        use rcgen::{BasicConstraints, CertificateParams, DnType, IsCa, KeyPair};
        let ca_key = KeyPair::generate().expect("a CA key");
        let mut ca_params = CertificateParams::new(Vec::<String>::new()).expect("CA params");
        ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        ca_params
            .distinguished_name
            .push(DnType::CommonName, "strata load test CA");
        let ca = ca_params.self_signed(&ca_key).expect("a CA certificate");
        let leaf_key = KeyPair::generate().expect("a server key");
        let leaf_params =
            CertificateParams::new(vec!["127.0.0.1".to_string(), "localhost".to_string()])
                .expect("leaf params");
        let leaf = leaf_params
            .signed_by(&leaf_key, &ca, &ca_key)
            .expect("a server certificate");
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let server = ServerConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .expect("TLS versions")
            .with_no_client_auth()
            .with_single_cert(
                vec![CertificateDer::from(leaf.der().to_vec())],
                PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(leaf_key.serialize_der())),
            )
            .expect("a server configuration");
        TestCert {
            ca_pem: ca.pem(),
            server: Arc::new(server),
        }
    }
}

/// A running server; stops accepting when dropped.
pub struct RecordingServer {
    pub address: SocketAddr,
    /// Every request, in the order they were read.
    pub requests: Arc<Mutex<Vec<Recorded>>>,
    /// Connections open now.
    pub open: Arc<AtomicUsize>,
    /// Over TLS: one entry per completed handshake, `true` when it resumed a session.
    pub handshakes: Arc<Mutex<Vec<bool>>>,
    tls: bool,
    stop: Arc<AtomicBool>,
}

impl RecordingServer {
    /// A plain HTTP server answering `answer` (JSON) to everything.
    pub fn start(answer: &'static str) -> RecordingServer {
        Self::start_with(answer, None)
    }

    /// An HTTPS server with `cert`.
    pub fn start_tls(answer: &'static str, cert: &TestCert) -> RecordingServer {
        Self::start_with(answer, Some(cert.server.clone()))
    }

    fn start_with(answer: &'static str, tls: Option<Arc<ServerConfig>>) -> RecordingServer {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
        let address = listener.local_addr().unwrap();
        let requests = Arc::new(Mutex::new(Vec::new()));
        let open = Arc::new(AtomicUsize::new(0));
        let handshakes = Arc::new(Mutex::new(Vec::new()));
        let stop = Arc::new(AtomicBool::new(false));
        let server = RecordingServer {
            address,
            requests: requests.clone(),
            open: open.clone(),
            handshakes: handshakes.clone(),
            tls: tls.is_some(),
            stop: stop.clone(),
        };
        std::thread::spawn(move || {
            for stream in listener.incoming() {
                if stop.load(Ordering::SeqCst) {
                    break;
                }
                let Ok(stream) = stream else { continue };
                let _ = stream.set_nodelay(true);
                let _ = stream.set_read_timeout(Some(Duration::from_secs(20)));
                let (requests, open, handshakes, tls) = (
                    requests.clone(),
                    open.clone(),
                    handshakes.clone(),
                    tls.clone(),
                );
                open.fetch_add(1, Ordering::SeqCst);
                std::thread::spawn(move || {
                    match tls {
                        None => serve(stream, answer, &requests, |_| {}),
                        Some(config) => {
                            let Ok(conn) = ServerConnection::new(config) else {
                                open.fetch_sub(1, Ordering::SeqCst);
                                return;
                            };
                            let tls = StreamOwned::new(conn, stream);
                            let mut noted = false;
                            serve(tls, answer, &requests, |s: &StreamOwned<_, _>| {
                                if !noted && !s.conn.is_handshaking() {
                                    noted = true;
                                    let resumed = s.conn.handshake_kind()
                                        == Some(rustls::HandshakeKind::Resumed);
                                    handshakes.lock().unwrap().push(resumed);
                                }
                            })
                        }
                    }
                    open.fetch_sub(1, Ordering::SeqCst);
                });
            }
        });
        server
    }

    /// The URL of `path` on this server.
    pub fn url(&self, path: &str) -> String {
        let scheme = if self.tls { "https" } else { "http" };
        format!("{scheme}://{}{}", self.address, path)
    }

    /// The requests so far.
    pub fn taken(&self) -> Vec<Recorded> {
        self.requests.lock().unwrap().clone()
    }
}

impl Drop for RecordingServer {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        let _ = TcpStream::connect(self.address);
    }
}

/// Serves one connection: reads requests until the peer closes (or asks to), keeping
/// each, answering each with `answer` in one write. `after_read` sees the stream after
/// each request head.
fn serve<S: Read + Write>(
    stream: S,
    answer: &str,
    requests: &Mutex<Vec<Recorded>>,
    mut after_read: impl FnMut(&S),
) {
    let mut reader = BufReader::new(stream);
    loop {
        let mut line = String::new();
        if reader.read_line(&mut line).unwrap_or(0) == 0 {
            return;
        }
        after_read(reader.get_ref());
        let mut words = line.split_whitespace();
        let method = words.next().unwrap_or("").to_string();
        let path = words.next().unwrap_or("").to_string();
        let mut headers = Vec::new();
        loop {
            let mut h = String::new();
            if reader.read_line(&mut h).unwrap_or(0) == 0 {
                return;
            }
            if h == "\r\n" {
                break;
            }
            if let Some((n, v)) = h.trim_end().split_once(':') {
                headers.push((n.trim().to_string(), v.trim().to_string()));
            }
        }
        let find = |name: &str| {
            headers
                .iter()
                .find(|(n, _): &&(String, String)| n.eq_ignore_ascii_case(name))
                .map(|(_, v)| v.clone())
        };
        let length: usize = find("content-length")
            .and_then(|v| v.parse().ok())
            .unwrap_or(0);
        let close = find("connection").is_some_and(|v| v.eq_ignore_ascii_case("close"));
        let mut body = vec![0; length];
        if reader.read_exact(&mut body).is_err() {
            return;
        }
        let head_only = method == "HEAD";
        requests.lock().unwrap().push(Recorded {
            method,
            path,
            headers,
            body,
        });
        let response = format!(
            "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n{}",
            answer.len(),
            if head_only { "" } else { answer }
        );
        let out = reader.get_mut();
        if out.write_all(response.as_bytes()).is_err() || out.flush().is_err() || close {
            return;
        }
    }
}
