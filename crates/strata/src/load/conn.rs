//! A lean HTTP/1.1 client connection for load generation: one keep-alive TCP connection,
//! one request at a time, buffers reused from request to request.
//!
//! It exists so the load client costs the machine as little as `wrk` does: no task per
//! connection, no channel between the caller and the socket, the request written with one
//! `write` and the response parsed (with `httparse`) straight out of the read buffer. The
//! body is handed back as a slice of that buffer. Bodies framed by `Content-Length`,
//! `chunked` transfer coding, or the end of the connection are all understood.
//!
//! Over HTTPS the same connection runs on a rustls stream (one branch per read and write
//! tells the two apart); a plain connection never touches TLS code.

use std::io;
use std::net::SocketAddr;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio_rustls::client::TlsStream;

use super::tls::TlsClient;

/// The most header lines a response may have.
const MAX_HEADERS: usize = 64;
/// The largest response head accepted.
const MAX_HEAD: usize = 64 << 10;
/// The largest response body accepted.
const MAX_BODY: usize = 64 << 20;

/// What went wrong on a connection (the connection is unusable afterwards).
#[derive(Debug, thiserror::Error)]
pub enum ConnError {
    /// Reading or writing the socket failed, or the peer closed it early.
    #[error("{0}")]
    Io(#[from] io::Error),
    /// The peer's bytes are not an HTTP/1.x response.
    #[error("malformed response: {0}")]
    Malformed(String),
}

/// One answered request: the status and the body, borrowed from the connection's buffer.
#[derive(Debug)]
pub struct Response<'a> {
    /// The status code.
    pub status: u16,
    /// The body (de-chunked).
    pub body: &'a [u8],
    /// Whether the connection can carry another request.
    pub keep_alive: bool,
}

/// The socket: plain TCP or TLS over it.
enum Stream {
    Plain(TcpStream),
    Tls(Box<TlsStream<TcpStream>>),
}

impl Stream {
    async fn write_all(&mut self, bytes: &[u8]) -> io::Result<()> {
        match self {
            Stream::Plain(s) => s.write_all(bytes).await,
            Stream::Tls(s) => s.write_all(bytes).await,
        }
    }

    async fn read(&mut self, into: &mut [u8]) -> io::Result<usize> {
        match self {
            Stream::Plain(s) => s.read(into).await,
            Stream::Tls(s) => s.read(into).await,
        }
    }
}

/// A keep-alive HTTP/1.1 connection (see the [`load`](crate::load) module).
pub struct Connection {
    stream: Stream,
    host: String,
    out: Vec<u8>,
    buf: Vec<u8>,
    /// Bytes of `buf` that are filled.
    filled: usize,
    /// Where the current response's body lies in `buf` (or in `dechunked`).
    body: (usize, usize),
    dechunked: Vec<u8>,
    chunked: bool,
}

impl Connection {
    /// Connects to `address`; `host` is sent as the `Host` header.
    pub async fn connect(address: SocketAddr, host: &str) -> io::Result<Connection> {
        let stream = TcpStream::connect(address).await?;
        stream.set_nodelay(true)?;
        Ok(Connection::over(Stream::Plain(stream), host))
    }

    /// Connects to `address` and makes a TLS session with `tls` (resuming an earlier
    /// session of the same client when the server allows); `host` is sent as the `Host`
    /// header.
    pub async fn connect_tls(
        address: SocketAddr,
        host: &str,
        tls: &TlsClient,
    ) -> io::Result<Connection> {
        let stream = TcpStream::connect(address).await?;
        stream.set_nodelay(true)?;
        let connector = tokio_rustls::TlsConnector::from(tls.config.clone());
        let stream = connector.connect(tls.name.clone(), stream).await?;
        Ok(Connection::over(Stream::Tls(Box::new(stream)), host))
    }

    fn over(stream: Stream, host: &str) -> Connection {
        Connection {
            stream,
            host: host.to_string(),
            out: Vec::with_capacity(256),
            buf: vec![0; 16 << 10],
            filled: 0,
            body: (0, 0),
            dechunked: Vec::new(),
            chunked: false,
        }
    }

    /// Sends `GET path` and reads the whole response.
    pub async fn get(&mut self, path: &str) -> Result<Response<'_>, ConnError> {
        self.send("GET", path, b"", None).await
    }

    /// Sends a request (`body`, if any, as `application/json`) and reads the whole
    /// response.
    pub async fn request(
        &mut self,
        method: &str,
        path: &str,
        body: Option<&[u8]>,
    ) -> Result<Response<'_>, ConnError> {
        let head: &[u8] = if body.is_some() {
            b"Content-Type: application/json\r\n"
        } else {
            b""
        };
        self.send(method, path, head, body).await
    }

    /// Sends a request with the extra header lines `head` (each ending in CR LF, written
    /// after `Host`) and `body` (its `Content-Length` added), and reads the whole
    /// response.
    pub async fn send(
        &mut self,
        method: &str,
        path: &str,
        head: &[u8],
        body: Option<&[u8]>,
    ) -> Result<Response<'_>, ConnError> {
        self.out.clear();
        self.out.extend_from_slice(method.as_bytes());
        self.out.push(b' ');
        self.out.extend_from_slice(path.as_bytes());
        self.out.extend_from_slice(b" HTTP/1.1\r\nHost: ");
        self.out.extend_from_slice(self.host.as_bytes());
        self.out.extend_from_slice(b"\r\n");
        self.out.extend_from_slice(head);
        if let Some(body) = body {
            self.out.extend_from_slice(b"Content-Length: ");
            self.out
                .extend_from_slice(body.len().to_string().as_bytes());
            self.out.extend_from_slice(b"\r\n\r\n");
            self.out.extend_from_slice(body);
        } else if matches!(method, "POST" | "PUT" | "PATCH") {
            // A request of these methods without a length would leave the server waiting.
            self.out.extend_from_slice(b"Content-Length: 0\r\n\r\n");
        } else {
            self.out.extend_from_slice(b"\r\n");
        }
        self.stream.write_all(&self.out).await?;
        let (status, keep_alive) = self.read_response(method == "HEAD").await?;
        let body = if self.chunked {
            &self.dechunked[..]
        } else {
            &self.buf[self.body.0..self.body.1]
        };
        Ok(Response {
            status,
            body,
            keep_alive,
        })
    }

    /// Reads more bytes into the buffer (growing it when full); `false` at end of stream.
    async fn fill(&mut self, limit: usize) -> Result<bool, ConnError> {
        if self.filled == self.buf.len() {
            if self.buf.len() >= limit {
                return Err(ConnError::Malformed(format!(
                    "response larger than {limit} bytes"
                )));
            }
            let grown = (self.buf.len() * 2).min(limit);
            self.buf.resize(grown, 0);
        }
        let n = self.stream.read(&mut self.buf[self.filled..]).await?;
        self.filled += n;
        Ok(n > 0)
    }

    /// Reads one response; leaves its body's position in `self.body` (or the de-chunked
    /// body in `self.dechunked`). Returns the status and whether the connection stays open.
    async fn read_response(&mut self, head_only: bool) -> Result<(u16, bool), ConnError> {
        // Whatever followed the previous response (nothing, for a well-behaved server)
        // moves to the front.
        let consumed = if self.chunked {
            self.body.0
        } else {
            self.body.1
        };
        self.buf.copy_within(consumed..self.filled, 0);
        self.filled -= consumed;
        self.body = (0, 0);
        self.chunked = false;
        loop {
            let mut headers = [httparse::EMPTY_HEADER; MAX_HEADERS];
            let mut response = httparse::Response::new(&mut headers);
            let parsed = response
                .parse(&self.buf[..self.filled])
                .map_err(|e| ConnError::Malformed(e.to_string()))?;
            let head = match parsed {
                httparse::Status::Complete(n) => n,
                httparse::Status::Partial => {
                    if !self.fill(MAX_HEAD).await? {
                        return Err(early_end());
                    }
                    continue;
                }
            };
            let status = response.code.unwrap_or(0);
            if (100..200).contains(&status) {
                // An interim response: skip it.
                self.buf.copy_within(head..self.filled, 0);
                self.filled -= head;
                continue;
            }
            let mut keep_alive = response.version == Some(1);
            let mut length = None;
            let mut chunked = false;
            for h in response.headers.iter() {
                if h.name.eq_ignore_ascii_case("content-length") {
                    let text = std::str::from_utf8(h.value).unwrap_or("");
                    length = Some(text.trim().parse::<usize>().map_err(|_| {
                        ConnError::Malformed(format!("bad Content-Length `{text}`"))
                    })?);
                } else if h.name.eq_ignore_ascii_case("transfer-encoding") {
                    chunked =
                        h.value.eq_ignore_ascii_case(b"chunked") || h.value.ends_with(b"chunked");
                } else if h.name.eq_ignore_ascii_case("connection") {
                    if h.value.eq_ignore_ascii_case(b"close") {
                        keep_alive = false;
                    } else if h.value.eq_ignore_ascii_case(b"keep-alive") {
                        keep_alive = true;
                    }
                }
            }
            if head_only || status == 204 || status == 304 {
                self.body = (head, head);
                return Ok((status, keep_alive));
            }
            if chunked {
                self.read_chunked(head).await?;
                return Ok((status, keep_alive));
            }
            match length {
                Some(n) => {
                    if n > MAX_BODY {
                        return Err(ConnError::Malformed(format!(
                            "body of {n} bytes is larger than {MAX_BODY}"
                        )));
                    }
                    while self.filled < head + n {
                        if self.buf.len() < head + n {
                            self.buf.resize(head + n, 0);
                        }
                        if !self.fill(MAX_HEAD + MAX_BODY).await? {
                            return Err(early_end());
                        }
                    }
                    self.body = (head, head + n);
                    return Ok((status, keep_alive));
                }
                None => {
                    // The body runs to the end of the connection.
                    while self.fill(MAX_HEAD + MAX_BODY).await? {}
                    self.body = (head, self.filled);
                    return Ok((status, false));
                }
            }
        }
    }

    /// Where the line that starts at `at` ends (the index of its CR LF), reading more as
    /// needed.
    async fn line_end(&mut self, at: usize) -> Result<usize, ConnError> {
        loop {
            if let Some(i) = self.buf[at..self.filled]
                .windows(2)
                .position(|w| w == b"\r\n")
            {
                return Ok(at + i);
            }
            if !self.fill(MAX_HEAD + MAX_BODY).await? {
                return Err(early_end());
            }
        }
    }

    /// Decodes a chunked body that starts at `at` into `self.dechunked`.
    async fn read_chunked(&mut self, mut at: usize) -> Result<(), ConnError> {
        self.chunked = true;
        self.dechunked.clear();
        loop {
            // The chunk-size line.
            let line_end = self.line_end(at).await?;
            let line = std::str::from_utf8(&self.buf[at..line_end]).unwrap_or("");
            let digits = line.split(';').next().unwrap_or("").trim();
            let size = usize::from_str_radix(digits, 16)
                .map_err(|_| ConnError::Malformed(format!("bad chunk size `{digits}`")))?;
            at = line_end + 2;
            if self.dechunked.len() + size > MAX_BODY {
                return Err(ConnError::Malformed(format!(
                    "chunked body larger than {MAX_BODY} bytes"
                )));
            }
            if size == 0 {
                // Trailers, then an empty line.
                loop {
                    let end = self.line_end(at).await?;
                    let empty = end == at;
                    at = end + 2;
                    if empty {
                        // `body.0` marks where the next response starts.
                        self.body = (at, at);
                        return Ok(());
                    }
                }
            }
            while self.filled < at + size + 2 {
                if !self.fill(MAX_HEAD + MAX_BODY).await? {
                    return Err(early_end());
                }
            }
            self.dechunked.extend_from_slice(&self.buf[at..at + size]);
            at += size + 2;
            // Keep the buffer small: drop what has been decoded.
            self.buf.copy_within(at..self.filled, 0);
            self.filled -= at;
            at = 0;
        }
    }
}

fn early_end() -> ConnError {
    ConnError::Io(io::Error::new(
        io::ErrorKind::UnexpectedEof,
        "the server closed the connection before the response was complete",
    ))
}
