//! `strata directory`: serves the host directory in the foreground until Ctrl-C or
//! SIGTERM (`strata::directory::host::serve`).
//!
//! Without it the first process of the host that needs the directory serves it; with it,
//! the directory outlives the programs that come and go. Only one process serves it: a
//! second `strata directory` (or one started while a program serves it) exits 1 naming
//! the process that does.

use std::os::unix::fs::{FileTypeExt, MetadataExt};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::{Duration, Instant};

use clap::Args;
use strata::directory::host;
use strata::prelude::*;

/// How long the directory's listener may take to come up.
const LISTEN_WAIT: Duration = Duration::from_secs(2);

/// Options of `strata directory`.
#[derive(Args, Debug)]
pub struct DirectoryArgs {
    /// The socket to serve at (default: $STRATA_HOST_DIRECTORY, else `host.sock` in the
    /// runtime folder, $STRATA_RUNTIME_DIR or $XDG_RUNTIME_DIR/strata or
    /// /tmp/strata-UID).
    #[arg(long)]
    socket: Option<PathBuf>,
    /// Serve the LAN directory instead, on `--listen` (every process of every host joins
    /// it when given its address in STRATA_LAN_DIRECTORY).
    #[arg(long, requires = "listen")]
    lan: bool,
    /// Where the LAN directory listens (HOST:PORT; with --lan).
    #[arg(long, requires = "lan")]
    listen: Option<std::net::SocketAddr>,
    /// The LAN's pre-shared key (a file of `strata key new --psk`; default
    /// $STRATA_LAN_KEY). Required off loopback.
    #[arg(long, requires = "lan")]
    key: Option<PathBuf>,
    /// This host's static key (a file of `strata key new`; default $STRATA_LAN_IDENTITY):
    /// LAN links then authenticate with static keys, with --peers.
    #[arg(long, requires = "lan")]
    identity: Option<PathBuf>,
    /// The public keys allowed at the other end of LAN links, one per line (default
    /// $STRATA_LAN_PEERS); with --identity.
    #[arg(long, requires = "lan")]
    peers: Option<PathBuf>,
}

/// Runs `strata directory`.
pub fn run(args: DirectoryArgs, log: Option<String>) -> ExitCode {
    if let Some(socket) = &args.socket {
        // Read by `host::host_socket` in this process; no other thread runs yet.
        std::env::set_var(host::HOST_SOCKET_VARIABLE, socket);
    }
    let settings = strata::ProgramSettings {
        log,
        ..Default::default()
    };
    if args.lan {
        let listen = args.listen.expect("clap requires --listen with --lan");
        let key = match args.key.or_else(|| {
            std::env::var_os(strata::directory::lan::LAN_KEY_VARIABLE).map(PathBuf::from)
        }) {
            Some(path) => match strata::net::keys::load_psk(&path) {
                Ok(k) => Some(k),
                Err(e) => {
                    eprintln!("strata directory: --key {}: {e}", path.display());
                    return ExitCode::from(2);
                }
            },
            None => None,
        };
        let from_env = |v: &str| std::env::var_os(v).map(PathBuf::from);
        let identity = args
            .identity
            .or_else(|| from_env(strata::directory::lan::LAN_IDENTITY_VARIABLE));
        let peers = args
            .peers
            .or_else(|| from_env(strata::directory::lan::LAN_PEERS_VARIABLE));
        let mut lan = strata::directory::lan::LanSettings::new(listen, key);
        match (identity, peers) {
            (Some(identity), Some(peers)) => {
                let identity = match strata::net::keys::StaticKey::load(&identity) {
                    Ok(k) => k,
                    Err(e) => {
                        eprintln!("strata directory: --identity {}: {e}", identity.display());
                        return ExitCode::from(2);
                    }
                };
                match strata::directory::lan::read_peers(&peers) {
                    Ok(p) => lan = lan.with_identity(identity, p),
                    Err(e) => {
                        eprintln!("strata directory: --peers {e}");
                        return ExitCode::from(2);
                    }
                }
            }
            (None, None) => {}
            _ => {
                eprintln!("strata directory: --identity and --peers go together");
                return ExitCode::from(2);
            }
        }
        return strata::main_with(
            Thread::new(move |cx: &mut ThreadContext| serve_lan(cx, listen, lan)),
            settings,
        );
    }
    strata::main_with(Thread::new(serve), settings)
}

fn serve_lan(
    cx: &mut ThreadContext,
    listen: std::net::SocketAddr,
    lan: strata::directory::lan::LanSettings,
) -> i32 {
    let directory = strata::directory::lan::serve_with(listen, &lan);
    // Up when a connection is taken (an unspecified address is tried on loopback).
    let mut probe = listen;
    if probe.ip().is_unspecified() {
        probe.set_ip(std::net::Ipv4Addr::LOCALHOST.into());
    }
    let deadline = Instant::now() + LISTEN_WAIT;
    while std::net::TcpStream::connect_timeout(&probe, Duration::from_millis(200)).is_err() {
        if Instant::now() > deadline {
            eprintln!(
                "strata directory: the LAN directory did not come up on {listen} within {} s (see the log: --log=info)",
                LISTEN_WAIT.as_secs()
            );
            return 1;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    println!(
        "strata directory: serving the LAN directory on {listen} (pid {}, {}); Ctrl-C stops it",
        std::process::id(),
        match (lan.key.is_some(), lan.identity.is_some()) {
            (true, true) => "with a pre-shared key and static keys",
            (true, false) => "with a pre-shared key",
            (false, true) => "with static keys",
            (false, false) => "without a key: loopback only",
        }
    );
    let _ = directory;
    let _ = cx.select::<(Stop,)>();
    println!("strata directory: stopped");
    0
}

fn serve(cx: &mut ThreadContext) -> i32 {
    let socket = match host::host_socket() {
        Ok(s) => s,
        Err(e) => {
            eprintln!("strata directory: {e}");
            return 1;
        }
    };
    let before = socket_id(&socket);
    if let Err(e) = host::serve(&socket) {
        eprintln!("strata directory: {e}");
        return 1;
    }
    if !listening(&socket, before) {
        eprintln!(
            "strata directory: the host directory did not come up at {} within {} s (see the log: --log=info)",
            socket.display(),
            LISTEN_WAIT.as_secs()
        );
        return 1;
    }
    println!(
        "strata directory: serving the host directory at {} (pid {}); Ctrl-C stops it",
        socket.display(),
        std::process::id()
    );
    let _ = cx.select::<(Stop,)>();
    println!("strata directory: stopped");
    0
}

/// The socket file at `path` (device and inode), if there is one.
fn socket_id(path: &Path) -> Option<(u64, u64)> {
    std::fs::symlink_metadata(path)
        .ok()
        .filter(|m| m.file_type().is_socket())
        .map(|m| (m.dev(), m.ino()))
}

/// Waits (at most [`LISTEN_WAIT`]) for a socket file at `path` other than `before` (a
/// stale one the listener replaces): the directory listens.
fn listening(path: &Path, before: Option<(u64, u64)>) -> bool {
    let deadline = Instant::now() + LISTEN_WAIT;
    loop {
        if let Some(id) = socket_id(path) {
            if Some(id) != before {
                return true;
            }
        }
        if Instant::now() >= deadline {
            return false;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
}
