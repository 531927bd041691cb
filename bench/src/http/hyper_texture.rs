//! The bare hyper peer of the HTTP benchmarks: the texture service written directly on
//! hyper 1 and tokio, with no strata in the request path.
//!
//! `strata-bench serve-hyper 127.0.0.1:PORT` answers `GET /Xy?x=8&y=8` with an x-by-y
//! table of random floats in [0, 1) as JSON, the same work as strata's `server_1`: parse
//! the query, build the table with the same xorshift generator, serialize it with
//! `serde_json`. hyper is set up as strata's HTTP front sets it up (HTTP/1.1 keep-alive,
//! `TCP_NODELAY`, a tokio timer for the header read time-out) on a tokio runtime of
//! [`WORKERS`](crate::workload::WORKERS) worker threads, like strata's shared runtime, so
//! the difference between the two is what strata adds around hyper.
//!
//! With `--tls PORT DIR` it also serves HTTPS on `PORT` (rustls, the certificate in `DIR`
//! made by [`tls::certificates`](super::tls::certificates)), the same service on both
//! listeners: the load client benchmark's server over TLS.

use std::cell::Cell;
use std::convert::Infallible;
use std::net::SocketAddr;
use std::time::Duration;

use bytes::Bytes;
use http_body_util::Full;
use hyper::body::Incoming;
use hyper::header::{HeaderValue, CONTENT_TYPE};
use hyper::{Method, Request, Response, StatusCode};
use hyper_util::rt::{TokioIo, TokioTimer};

use super::hyper_pool::Pool;
use crate::workload::WORKERS;

/// Largest side accepted, so a stray request cannot ask for a table of terabytes.
const MAX_SIDE: usize = 10_000;

thread_local! {
    /// Each runtime worker keeps its own generator state.
    static SEED: Cell<u64> = Cell::new(first_seed());
}

/// A seed that differs from thread to thread and run to run (never zero).
pub fn first_seed() -> u64 {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos() as u64)
        .unwrap_or(1);
    let here = &nanos as *const u64 as u64;
    (nanos ^ here.rotate_left(32) ^ u64::from(std::process::id())).max(1)
}

/// One xorshift64 step (shifts 13, 7, 17), as in the examples' texture module, and the
/// float in [0, 1) made from its top 53 bits.
fn next_unit(seed: &mut u64) -> f64 {
    *seed ^= *seed << 13;
    *seed ^= *seed >> 7;
    *seed ^= *seed << 17;
    (*seed >> 11) as f64 / (1u64 << 53) as f64
}

/// What the service answers: `y` rows of `x` floats.
pub type Table = Vec<Vec<f64>>;

/// The x-by-y table: `y` rows of `x` floats.
pub fn table(x: usize, y: usize, seed: &mut u64) -> Table {
    (0..y)
        .map(|_| (0..x).map(|_| next_unit(seed)).collect())
        .collect()
}

/// `x` and `y` from a query string, or why not.
fn parse_query(query: &str) -> Result<(usize, usize), String> {
    let (mut x, mut y) = (None, None);
    for (key, value) in form_urlencoded::parse(query.as_bytes()) {
        let slot = match key.as_ref() {
            "x" => &mut x,
            "y" => &mut y,
            other => return Err(format!("unknown field `{other}`")),
        };
        let n: usize = value
            .parse()
            .map_err(|_| format!("`{key}` is not a count: `{value}`"))?;
        if n > MAX_SIDE {
            return Err(format!("`{key}` is over {MAX_SIDE}"));
        }
        *slot = Some(n);
    }
    match (x, y) {
        (Some(x), Some(y)) => Ok((x, y)),
        _ => Err("both `x` and `y` are needed".to_string()),
    }
}

fn reply(status: StatusCode, body: Vec<u8>) -> Response<Full<Bytes>> {
    let mut response = Response::new(Full::new(Bytes::from(body)));
    *response.status_mut() = status;
    response
        .headers_mut()
        .insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
    response
}

fn error(status: StatusCode, reason: &str) -> Response<Full<Bytes>> {
    let body =
        serde_json::to_vec(&serde_json::json!({ "error": reason })).expect("a JSON value encodes");
    reply(status, body)
}

async fn respond(
    req: Request<Incoming>,
    pool: Option<Pool>,
) -> Result<Response<Full<Bytes>>, Infallible> {
    if req.uri().path() != "/Xy" {
        return Ok(error(StatusCode::NOT_FOUND, "not found"));
    }
    if req.method() != Method::GET {
        return Ok(error(StatusCode::METHOD_NOT_ALLOWED, "GET only"));
    }
    let (x, y) = match parse_query(req.uri().query().unwrap_or("")) {
        Ok(xy) => xy,
        Err(reason) => return Ok(error(StatusCode::BAD_REQUEST, &reason)),
    };
    let table = match pool {
        None => SEED.with(|cell| {
            let mut seed = cell.get();
            let t = table(x, y, &mut seed);
            cell.set(seed);
            t
        }),
        Some(pool) => match pool.table(x, y).await {
            Ok(t) => t,
            Err(reason) => return Ok(error(StatusCode::INTERNAL_SERVER_ERROR, &reason)),
        },
    };
    let body = serde_json::to_vec(&table).expect("floats in [0, 1) encode");
    Ok(reply(StatusCode::OK, body))
}

/// Serves one connection (plain or TLS) until the client leaves.
async fn serve_connection<S>(stream: S, pool: Option<Pool>)
where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
{
    let respond = move |req| respond(req, pool.clone());
    let connection = hyper::server::conn::http1::Builder::new()
        .timer(TokioTimer::new())
        .header_read_timeout(Duration::from_secs(10))
        .keep_alive(true)
        .serve_connection(TokioIo::new(stream), hyper::service::service_fn(respond));
    // A client that goes away mid-request is no concern of the benchmark.
    let _ = connection.await;
}

/// Accepts TLS connections on `address` for ever.
async fn serve_tls(
    address: SocketAddr,
    config: std::sync::Arc<rustls::ServerConfig>,
    pool: Option<Pool>,
) -> Result<(), String> {
    let listener = tokio::net::TcpListener::bind(address)
        .await
        .map_err(|e| format!("cannot listen on {address}: {e}"))?;
    println!("hyper texture listening on https://{address}/Xy?x=2&y=2");
    let acceptor = tokio_rustls::TlsAcceptor::from(config);
    loop {
        let (stream, _) = match listener.accept().await {
            Ok(accepted) => accepted,
            Err(e) => {
                eprintln!("hyper texture: TLS accept failed: {e}");
                tokio::time::sleep(Duration::from_millis(50)).await;
                continue;
            }
        };
        let _ = stream.set_nodelay(true);
        let (acceptor, pool) = (acceptor.clone(), pool.clone());
        tokio::spawn(async move {
            // A failed handshake is the client's concern.
            if let Ok(tls) = acceptor.accept(stream).await {
                serve_connection(tls, pool).await;
            }
        });
    }
}

async fn serve(
    address: SocketAddr,
    pool: Option<Pool>,
    tls: Option<(SocketAddr, std::sync::Arc<rustls::ServerConfig>)>,
) -> Result<(), String> {
    let listener = tokio::net::TcpListener::bind(address)
        .await
        .map_err(|e| format!("cannot listen on {address}: {e}"))?;
    let bound = listener.local_addr().map_err(|e| e.to_string())?;
    if let Some((tls_address, config)) = tls {
        let pool = pool.clone();
        tokio::spawn(async move {
            if let Err(e) = serve_tls(tls_address, config, pool).await {
                eprintln!("hyper texture: {e}");
                std::process::exit(1);
            }
        });
    }
    println!("hyper texture listening on http://{bound}/Xy?x=2&y=2");
    loop {
        let (stream, _) = match listener.accept().await {
            Ok(accepted) => accepted,
            Err(e) => {
                eprintln!("hyper texture: accept failed: {e}");
                tokio::time::sleep(Duration::from_millis(50)).await;
                continue;
            }
        };
        let _ = stream.set_nodelay(true);
        tokio::spawn(serve_connection(stream, pool.clone()));
    }
}

/// Who builds the tables: the request's own task, or a pool of this many workers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Builder {
    Inline,
    Threads(usize),
    Processes(usize),
}

/// The address and the table builder from `serve-hyper`'s arguments, or what is wrong.
fn parse_serve_args(args: &[String]) -> Result<(SocketAddr, Builder), String> {
    const USAGE: &str = "serve-hyper takes an address, like 127.0.0.1:5101, and at most \
                         one of --threads N or --processes N";
    let (address, builder) = match args {
        [address] => (address, Builder::Inline),
        [address, kind, n] => {
            let n: usize = n
                .parse()
                .ok()
                .filter(|n| (1..=256).contains(n))
                .ok_or_else(|| format!("`{n}` is not a worker count from 1 to 256"))?;
            let builder = match kind.as_str() {
                "--threads" => Builder::Threads(n),
                "--processes" => Builder::Processes(n),
                other => return Err(format!("unknown option `{other}`: {USAGE}")),
            };
            (address, builder)
        }
        _ => return Err(USAGE.into()),
    };
    let address = address
        .parse()
        .map_err(|_| format!("`{address}` is not a socket address"))?;
    Ok((address, builder))
}

/// What `--tls PORT DIR` asks for: the TLS listener's port (on the plain one's IP) and
/// the certificate folder.
type TlsListener = (u16, String);

/// Takes `--tls PORT DIR` out of `serve-hyper`'s arguments.
fn take_tls(args: &[String]) -> Result<(Vec<String>, Option<TlsListener>), String> {
    let Some(i) = args.iter().position(|a| a == "--tls") else {
        return Ok((args.to_vec(), None));
    };
    let (Some(port), Some(dir)) = (args.get(i + 1), args.get(i + 2)) else {
        return Err("--tls takes a port and a certificate folder".into());
    };
    let port: u16 = port
        .parse()
        .map_err(|_| format!("`{port}` is not a port for --tls"))?;
    let mut rest = args[..i].to_vec();
    rest.extend_from_slice(&args[i + 3..]);
    Ok((rest, Some((port, dir.clone()))))
}

/// `strata-bench serve-hyper ADDRESS [--threads N | --processes N] [--tls PORT DIR]`:
/// serves until the process is ended (SIGTERM); with a pool option the tables are built by
/// a pool of worker threads or processes (see [`hyper_pool`](super::hyper_pool)); with
/// `--tls` it serves HTTPS on PORT too.
pub fn serve_command(args: &[String]) -> Result<(), String> {
    let (args, tls) = take_tls(args)?;
    let (address, builder) = parse_serve_args(&args)?;
    let tls = match tls {
        Some((port, dir)) => Some((
            SocketAddr::new(address.ip(), port),
            super::tls::server_config(std::path::Path::new(&dir))?,
        )),
        None => None,
    };
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(WORKERS)
        .enable_all()
        .build()
        .map_err(|e| format!("cannot build the runtime: {e}"))?;
    let pool = match builder {
        Builder::Inline => None,
        Builder::Threads(n) => Some(Pool::threads(n)),
        Builder::Processes(n) => {
            // The children's sockets register with this runtime's reactor.
            let _inside = runtime.enter();
            Some(Pool::processes(n)?)
        }
    };
    runtime.block_on(serve(address, pool, tls))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn serve_arguments_parse_and_bad_ones_are_named() {
        let args = |a: &[&str]| a.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        let address: SocketAddr = "127.0.0.1:5101".parse().unwrap();
        assert_eq!(
            parse_serve_args(&args(&["127.0.0.1:5101"])),
            Ok((address, Builder::Inline))
        );
        assert_eq!(
            parse_serve_args(&args(&["127.0.0.1:5101", "--processes", "8"])),
            Ok((address, Builder::Processes(8)))
        );
        let err = parse_serve_args(&args(&["127.0.0.1:5101", "--threads", "0"])).unwrap_err();
        assert!(err.contains("`0`"), "{err}");
        let err = parse_serve_args(&args(&["127.0.0.1:5101", "--fibers", "8"])).unwrap_err();
        assert!(err.contains("--fibers"), "{err}");
        let err = parse_serve_args(&args(&["nowhere"])).unwrap_err();
        assert!(err.contains("nowhere"), "{err}");
    }

    #[test]
    fn queries_parse() {
        assert_eq!(parse_query("x=8&y=3"), Ok((8, 3)));
        assert!(parse_query("x=8").is_err());
        assert!(parse_query("x=8&y=z").is_err());
        assert!(parse_query("x=8&y=2&z=1").is_err());
        assert!(parse_query("x=20000&y=1").is_err());
    }

    #[test]
    fn tables_have_the_asked_shape_and_range() {
        let mut seed = 88172645463325252;
        let t = table(3, 2, &mut seed);
        assert_eq!(t.len(), 2);
        assert!(t.iter().all(|row| row.len() == 3));
        assert!(t.iter().flatten().all(|v| (0.0..1.0).contains(v)));
        // The generator moves on: the next table differs.
        assert_ne!(table(3, 2, &mut seed), t);
    }
}
