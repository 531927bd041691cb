//! Links over Unix sockets: a round trip with a process of this user, stale socket files
//! taken over, live ones refused, the socket file removed when the listener stops, and a
//! process of another user refused before its handshake (when the test runs as root).
//!
//! A link needs two nodes, so the far end is the `link_peer` test program
//! (crates/strata-testbins, `--unix PATH`: it connects to the test's listener), built by
//! the test itself before it starts.

mod support;

use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use strata::net::{Accepted, Connect, Listen, Listening};
use strata::prelude::*;
use strata_testbins::link::Xy;
use support::programs::{testbin, Running};
use support::{drain, poll_until, returned_from, select_message, WAIT};

/// A directory of its own under the system's temporary directory, removed when dropped.
struct TempDir(PathBuf);

impl TempDir {
    fn new(name: &str) -> TempDir {
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .subsec_nanos();
        let dir = std::env::temp_dir().join(format!(
            "strata-net-unix-{name}-{}-{nanos}",
            std::process::id()
        ));
        std::fs::create_dir(&dir).unwrap();
        TempDir(dir)
    }

    fn path(&self, name: &str) -> PathBuf {
        self.0.join(name)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// Creates a `Listen` and gives its address once it listens.
fn listening(cx: &mut ThreadContext, listen: Listen, path: &Path) -> Address {
    let listener = cx.create(listen);
    let (up, from) = select_message::<Listening>(cx, WAIT);
    assert_eq!(from, listener);
    assert_eq!(up.address, path.display().to_string(), "reports the path");
    listener
}

/// Creates a `Listen` that must not listen, and gives its reason.
fn not_listening(cx: &mut ThreadContext, listen: Listen) -> String {
    let listener = cx.create(listen);
    let (fault, _) = select_message::<NotListening>(cx, WAIT);
    assert!(returned_from(cx, listener, WAIT).is_fault());
    fault.reason
}

/// Stops a listener and waits for it to end.
fn stop(cx: &mut ThreadContext, listener: Address) {
    cx.stop(listener);
    let _ = returned_from(cx, listener, WAIT);
}

/// The (device, inode) of the file at `path`.
fn identity(path: &Path) -> (u64, u64) {
    let m = std::fs::symlink_metadata(path).unwrap();
    (m.dev(), m.ino())
}

#[test]
fn a_link_over_a_unix_socket_carries_a_round_trip_and_names_its_ends() {
    let dir = TempDir::new("trip");
    let path = dir.path("link.sock");
    let mut cx = ThreadContext::attach();
    let listen = Listen::unix(&path);
    let counters = listen.counters();
    let listener = listening(&mut cx, listen, &path);

    let mut peer = Running::start(Command::new(testbin("link_peer")).arg("--unix").arg(&path));
    let (up, dialer) = select_message::<Accepted>(&mut cx, WAIT);
    assert_eq!(up.remote, format!("unix:pid {}", peer.pid()));
    assert_eq!(up.peer_key, None, "plaintext, no key");
    assert!(!dialer.is_local());
    assert_eq!(
        peer.line(WAIT),
        format!("connected unix:{}", path.display()),
        "the connecting end names the path"
    );
    assert_eq!(counters.open_links(), 1);

    let table = cx
        .ask_timeout(dialer, Xy { x: 3, y: 2 }, WAIT)
        .downcast::<Vec<Vec<f64>>>()
        .expect("a table");
    assert_eq!(table, vec![vec![0.0, 1.0, 2.0], vec![100.0, 101.0, 102.0]]);

    // Stopping the listener closes the link; the peer then ends.
    stop(&mut cx, listener);
    let (status, _, stderr) = peer.finish(WAIT);
    assert!(status.success(), "{status}: {stderr}");
    assert_eq!(counters.open_links(), 0);
}

#[test]
fn a_stale_socket_file_is_taken_over() {
    let dir = TempDir::new("stale");
    let path = dir.path("stale.sock");
    // A socket file nothing listens at any more (its listener was closed).
    drop(std::os::unix::net::UnixListener::bind(&path).unwrap());
    assert!(path.exists());
    assert!(std::os::unix::net::UnixStream::connect(&path).is_err());

    let mut cx = ThreadContext::attach();
    let listener = listening(&mut cx, Listen::unix(&path), &path);
    assert!(
        std::os::unix::net::UnixStream::connect(&path).is_ok(),
        "and something listens at it"
    );
    stop(&mut cx, listener);
    assert!(!path.exists());
}

#[test]
fn a_path_where_something_listens_or_that_is_no_socket_is_refused() {
    let dir = TempDir::new("live");
    let path = dir.path("live.sock");
    let mut cx = ThreadContext::attach();
    let first = listening(&mut cx, Listen::unix(&path), &path);
    let made = identity(&path);

    let reason = not_listening(&mut cx, Listen::unix(&path));
    assert!(
        reason.contains(&path.display().to_string())
            && reason.contains("something is listening at that path"),
        "{reason}"
    );
    assert_eq!(identity(&path), made, "the live listener's file stays");
    assert!(std::os::unix::net::UnixStream::connect(&path).is_ok());
    stop(&mut cx, first);

    // Something that is not strata listening: refused the same way.
    let other = std::os::unix::net::UnixListener::bind(&path).unwrap();
    let reason = not_listening(&mut cx, Listen::unix(&path));
    assert!(reason.contains("something is listening"), "{reason}");
    drop(other);

    // A file that is not a socket is never removed.
    let file = dir.path("plain");
    std::fs::write(&file, b"keep me").unwrap();
    let reason = not_listening(&mut cx, Listen::unix(&file));
    assert!(reason.contains("not a socket"), "{reason}");
    assert_eq!(std::fs::read(&file).unwrap(), b"keep me");
}

#[test]
fn the_socket_file_is_removed_when_the_listener_stops_if_it_is_still_its_own() {
    let dir = TempDir::new("removed");
    let path = dir.path("gone.sock");
    let mut cx = ThreadContext::attach();
    let listener = listening(&mut cx, Listen::unix(&path), &path);
    assert!(path.exists());
    stop(&mut cx, listener);
    assert!(!path.exists(), "removed with its listener");

    // Replaced meanwhile by someone else's socket: that one is not removed.
    let listener = listening(&mut cx, Listen::unix(&path), &path);
    std::fs::remove_file(&path).unwrap();
    let successor = std::os::unix::net::UnixListener::bind(&path).unwrap();
    stop(&mut cx, listener);
    assert!(path.exists(), "the successor's file stays");
    drop(successor);

    // Connecting where nothing listens says so.
    let nothing = dir.path("nothing.sock");
    cx.create(Connect::unix(&nothing));
    let (fault, _) = select_message::<NotConnected>(&mut cx, WAIT);
    assert!(
        fault
            .reason
            .contains(&format!("cannot connect to unix:{}", nothing.display())),
        "{}",
        fault.reason
    );
}

#[test]
fn a_process_of_another_user_is_refused_before_its_handshake_and_counted() {
    // SAFETY: geteuid has no preconditions.
    if unsafe { libc::geteuid() } != 0 {
        println!("skipped: only root can start a process as another user");
        return;
    }
    const NOBODY: u32 = 65534;
    let dir = TempDir::new("uid");
    // The other user must reach the socket for the listener to see it: the directory
    // traversable, the socket writable by anyone (the uid check is what refuses).
    std::fs::set_permissions(&dir.0, std::fs::Permissions::from_mode(0o755)).unwrap();
    let path = dir.path("mine.sock");
    let mut cx = ThreadContext::attach();
    let listen = Listen::unix(&path);
    let counters = listen.counters();
    let listener = listening(&mut cx, listen, &path);
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o777)).unwrap();

    let mut command = Command::new(testbin("link_peer"));
    command.arg("--unix").arg(&path).uid(NOBODY).gid(NOBODY);
    let mut stranger = Running::start(&mut command);
    let said = stranger.line(WAIT);
    assert!(said.starts_with("not connected: "), "{said}");
    let (status, _, _) = stranger.finish(WAIT);
    assert!(!status.success());
    poll_until(WAIT, "the refusal counted", || {
        (counters.refused_links() == 1).then_some(())
    });
    assert_eq!(counters.open_links(), 0);
    let accepted: Vec<Envelope> = drain(&mut cx, Duration::from_millis(100))
        .into_iter()
        .filter(|e| e.is::<Accepted>())
        .collect();
    assert!(accepted.is_empty(), "no link: {accepted:?}");

    // A process of this user still links.
    let peer = Running::start(Command::new(testbin("link_peer")).arg("--unix").arg(&path));
    let (up, _) = select_message::<Accepted>(&mut cx, WAIT);
    assert_eq!(up.remote, format!("unix:pid {}", peer.pid()));
    stop(&mut cx, listener);
    assert_eq!(counters.refused_links(), 1);
}
