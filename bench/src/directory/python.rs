//! The Python layer-cake system's publish → `Available`, measured beside strata's
//! (`python/directory_latency.py`): its host directory (`host-cake`) on a free port of
//! 127.0.0.1, a subscriber process, and publisher processes that publish one name at a
//! time with the clock read in the name, as `dir-node` does.
//!
//! layer-cake opens a listening port for every name a process publishes, and its subscriber
//! a connection to each, all served by one `select` loop per process (at most 1,024
//! descriptors); so every batch of [`BATCH`] names comes from a fresh publisher process,
//! which is killed after it (the subscriber then drops its sessions). The first
//! [`SKIP`] publications of each batch, which include the publisher joining `host-cake`,
//! are not kept.

use std::net::{Ipv4Addr, SocketAddr, TcpStream};
use std::process::Command;
use std::time::{Duration, Instant};

use super::proc::Proc;
use super::{log_dir, STEP};
use crate::http;

/// Names published by one publisher process.
const BATCH: usize = 200;
/// Publications at the start of each batch that are not kept.
const SKIP: usize = 5;
/// Seconds between two publications of a publisher (every process idle between them).
const PAUSE: &str = "0.03";
/// How long layer-cake's programs may take to start and subscribe.
const START: Duration = Duration::from_secs(30);

/// Whether layer-cake can run here: its virtual environment, `host-cake`, the import.
pub fn available() -> Result<(), String> {
    let python = http::python();
    let host_cake = http::python_bin("host-cake");
    for p in [&python, &host_cake] {
        if !p.is_file() {
            return Err(format!(
                "no {} (bench/run creates the environment with `python3 -m venv` and installs \
                 `{}` with pip)",
                p.display(),
                http::LAYER_CAKE_PACKAGE
            ));
        }
    }
    let out = Command::new(&python)
        .args(["-c", "import layer_cake"])
        .output()
        .map_err(|e| format!("cannot run {}: {e}", python.display()))?;
    if out.status.success() {
        Ok(())
    } else {
        Err(format!(
            "`import layer_cake` fails: {}",
            String::from_utf8_lossy(&out.stderr)
                .trim()
                .lines()
                .last()
                .unwrap_or("no message")
        ))
    }
}

/// layer-cake's form of an address on 127.0.0.1.
fn host_port(port: u16) -> String {
    format!("{{\"host\": \"127.0.0.1\", \"port\": {port}}}")
}

/// `python/directory_latency.py` with `args`, told where `host-cake` is.
fn script(port: u16, args: &[String]) -> Command {
    let mut c = Command::new(http::python());
    c.arg(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/python/directory_latency.py"
    ))
    .args(args)
    .arg(format!("--connect-to-directory={}", host_port(port)))
    .current_dir(std::env::temp_dir())
    .env("PYTHONDONTWRITEBYTECODE", "1");
    c
}

/// One run: `count` spans (in nanoseconds) of publish → `Available`, after `SKIP` per
/// batch that are not kept.
pub fn publish_available(count: usize, run: usize) -> Result<Vec<u64>, String> {
    let port = {
        let l = std::net::TcpListener::bind((Ipv4Addr::LOCALHOST, 0))
            .map_err(|e| format!("cannot find a free port: {e}"))?;
        l.local_addr().map_err(|e| e.to_string())?.port()
    };
    let tag = format!("run{}-layer-cake", run + 1);
    let mut c = Command::new(http::python_bin("host-cake"));
    c.arg(format!("--directory-at-host={}", host_port(port)))
        .current_dir(std::env::temp_dir())
        .env("PYTHONDONTWRITEBYTECODE", "1");
    let mut host = Proc::start(
        "host-cake",
        c,
        &log_dir().join(format!("{tag}-host-cake.log")),
    )?
    .terminate_gently();
    let address = SocketAddr::from((Ipv4Addr::LOCALHOST, port));
    let began = Instant::now();
    while TcpStream::connect_timeout(&address, Duration::from_millis(200)).is_err() {
        if !host.is_running() || began.elapsed() > START {
            return Err(format!(
                "host-cake did not listen on {address}; its log:\n{}",
                host.log_tail()
            ));
        }
        std::thread::sleep(Duration::from_millis(50));
    }

    let c = script(port, &["--role=subscribe".to_string()]);
    let mut sub = Proc::start(
        "layer-cake subscriber",
        c,
        &log_dir().join(format!("{tag}-subscriber.log")),
    )?
    .terminate_gently();
    sub.expect_line(START, "subscribed")?;

    let mut kept = Vec::with_capacity(count);
    let mut batch = 0;
    while kept.len() < count {
        let n = BATCH.min(count - kept.len());
        let name = format!("b{batch}x");
        let c = script(
            port,
            &[
                "--role=publish".to_string(),
                format!("--count={}", SKIP + n),
                format!("--tag={name}"),
                format!("--pause={PAUSE}"),
            ],
        );
        let mut publisher = Proc::start(
            "layer-cake publisher",
            c,
            &log_dir().join(format!("{tag}-publisher-{batch}.log")),
        )?;
        let start = format!("available bench:lat:{name}");
        for _ in 0..SKIP + n {
            let (i, span) = sub.expect(START, &format!("`{start}…`"), |l| {
                let rest = l.strip_prefix(&start)?;
                let (i, rest) = rest.split_once(':')?;
                let (t0, t1) = rest.split_once(' ')?;
                let (i, t0, t1): (usize, u64, u64) =
                    (i.parse().ok()?, t0.parse().ok()?, t1.parse().ok()?);
                Some((i, t1.saturating_sub(t0)))
            })?;
            if i >= SKIP {
                kept.push(span);
            }
        }
        publisher.expect_line(STEP, "done")?;
        drop(publisher);
        // Its names go with it; every session dropped before the next batch (so the
        // subscriber's descriptors are given back).
        for _ in 0..SKIP + n {
            sub.expect_line(STEP, &format!("dropped bench:lat:{name}"))?;
        }
        batch += 1;
    }
    Ok(kept)
}
