//! Where the host directory lives, and who serves it.
//!
//! Every process of one user on one machine finds the host directory at one local
//! endpoint, with no configuration: a Unix socket in a private folder (mode 0700, owned by
//! the user; a folder someone else made or opened up is refused), whose listener also
//! checks each caller's user id. The folder is `$STRATA_RUNTIME_DIR`, else
//! `$XDG_RUNTIME_DIR/strata`, else `/tmp/strata-<uid>`; the socket is `host.sock` there,
//! or `$STRATA_HOST_DIRECTORY`. Each process's session socket (where other processes
//! link to it for the names they found) sits in the same folder.
//!
//! The host directory is started on first use: a process that finds no one at the socket
//! takes the lock file beside it (`flock`, so racing starters make exactly one, and a
//! crashed holder's lock goes with it) and serves the directory itself; the others retry
//! and join it. `strata directory` serves it in the foreground instead. When the process
//! serving it ends, the others take over the same way and re-register.

use std::fs::{File, OpenOptions};
use std::io::Write;
use std::os::unix::fs::{DirBuilderExt, MetadataExt, OpenOptionsExt, PermissionsExt};
use std::os::unix::io::AsRawFd;
use std::path::{Path, PathBuf};
use std::sync::{Mutex, OnceLock};

/// The environment variable naming the private folder for the host directory's socket
/// and the processes' session sockets.
pub const RUNTIME_DIR_VARIABLE: &str = "STRATA_RUNTIME_DIR";

/// The environment variable naming the host directory's socket.
pub const HOST_SOCKET_VARIABLE: &str = "STRATA_HOST_DIRECTORY";

/// The private folder (created when missing), or why there is none.
pub fn runtime_dir() -> Result<PathBuf, String> {
    static DIR: OnceLock<Result<PathBuf, String>> = OnceLock::new();
    DIR.get_or_init(|| {
        let dir = match std::env::var_os(RUNTIME_DIR_VARIABLE) {
            Some(d) => PathBuf::from(d),
            None => match std::env::var_os("XDG_RUNTIME_DIR") {
                Some(d) => PathBuf::from(d).join("strata"),
                None => PathBuf::from(format!("/tmp/strata-{}", uid())),
            },
        };
        private_folder(&dir).map(|()| dir)
    })
    .clone()
}

/// Makes `dir` (mode 0700) unless it exists, then checks it is a folder of this user that
/// no one else may enter.
fn private_folder(dir: &Path) -> Result<(), String> {
    match std::fs::DirBuilder::new().mode(0o700).create(dir) {
        Ok(()) => {}
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {}
        Err(e) => return Err(format!("cannot make the folder {}: {e}", dir.display())),
    }
    let meta = std::fs::symlink_metadata(dir)
        .map_err(|e| format!("cannot read the folder {}: {e}", dir.display()))?;
    if !meta.is_dir() {
        return Err(format!("{} is not a folder", dir.display()));
    }
    if meta.uid() != uid() {
        return Err(format!(
            "the folder {} belongs to user {}, not to this user ({}): set {RUNTIME_DIR_VARIABLE} to a folder of your own",
            dir.display(),
            meta.uid(),
            uid()
        ));
    }
    if meta.permissions().mode() & 0o077 != 0 {
        return Err(format!(
            "the folder {} may be entered by other users (mode {:o}): it must be 0700",
            dir.display(),
            meta.permissions().mode() & 0o777
        ));
    }
    Ok(())
}

/// The host directory's socket.
pub fn host_socket() -> Result<PathBuf, String> {
    match std::env::var_os(HOST_SOCKET_VARIABLE) {
        Some(p) => Ok(PathBuf::from(p)),
        None => Ok(runtime_dir()?.join("host.sock")),
    }
}

/// This process's session socket.
pub(crate) fn session_socket() -> Result<PathBuf, String> {
    Ok(runtime_dir()?.join(format!("n-{:016x}.sock", crate::address::local_node())))
}

/// The lock that makes one process the host directory's server.
pub(crate) struct HostLock {
    _file: File,
}

/// Takes the lock beside `socket` without waiting: `Ok(None)` when another process holds
/// it (it serves the host directory, or is starting to).
pub(crate) fn try_lock(socket: &Path) -> Result<Option<HostLock>, String> {
    let path = socket.with_extension("lock");
    let mut file = OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .mode(0o600)
        .open(&path)
        .map_err(|e| format!("cannot open the lock {}: {e}", path.display()))?;
    // SAFETY: flock on a descriptor this function owns.
    let rc = unsafe { libc::flock(file.as_raw_fd(), libc::LOCK_EX | libc::LOCK_NB) };
    if rc != 0 {
        let e = std::io::Error::last_os_error();
        if e.raw_os_error() == Some(libc::EWOULDBLOCK) {
            return Ok(None);
        }
        return Err(format!("cannot lock {}: {e}", path.display()));
    }
    let _ = file.set_len(0);
    let _ = writeln!(file, "{}", std::process::id());
    Ok(Some(HostLock { _file: file }))
}

/// Serves the host directory in this process, as `strata directory` does: takes the lock
/// beside `socket` (held until the process ends), starts the host's directory as a root
/// object listening on `socket`, and gives its address. The listener comes up just after
/// this returns (its socket file appears once it listens).
///
/// Refused when another process holds the lock (it serves the host directory, or is
/// starting to), naming it as the lock file does, or when the lock cannot be taken. Other
/// processes find the directory served here at `socket` when it is their
/// [`host_socket`]; so does this one, for its own objects.
pub fn serve(socket: &Path) -> Result<crate::Address, String> {
    static HELD: Mutex<Vec<HostLock>> = Mutex::new(Vec::new());
    let Some(lock) = try_lock(socket)? else {
        return Err(match holder(socket) {
            Some(pid) => format!(
                "the host directory at {} is served by process {pid}",
                socket.display()
            ),
            None => format!(
                "the host directory at {} is being started by another process",
                socket.display()
            ),
        });
    };
    HELD.lock().unwrap_or_else(|e| e.into_inner()).push(lock);
    let directory = crate::object::create_root(super::shared::SharedDirectory::new(
        super::name::Scope::Host,
        Some(crate::net::Listen::unix(socket)),
    ));
    tracing::info!(target: "strata::directory", %directory, socket = %socket.display(), "serving the host directory");
    Ok(directory)
}

/// The process holding the lock beside `socket`, as it wrote it.
pub fn holder(socket: &Path) -> Option<u32> {
    std::fs::read_to_string(socket.with_extension("lock"))
        .ok()
        .and_then(|s| s.trim().parse().ok())
}

fn uid() -> u32 {
    // SAFETY: geteuid cannot fail.
    unsafe { libc::geteuid() }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_folder_others_may_enter_is_refused() {
        let base = std::env::temp_dir().join(format!("strata-host-test-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&base);
        private_folder(&base).unwrap();
        assert_eq!(
            std::fs::metadata(&base).unwrap().permissions().mode() & 0o777,
            0o700
        );
        std::fs::set_permissions(&base, std::fs::Permissions::from_mode(0o755)).unwrap();
        let e = private_folder(&base).unwrap_err();
        assert!(e.contains("0700"), "{e}");
        std::fs::remove_dir_all(&base).unwrap();
    }

    #[test]
    fn one_process_holds_the_lock() {
        let base = std::env::temp_dir().join(format!("strata-lock-test-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&base);
        private_folder(&base).unwrap();
        let socket = base.join("host.sock");
        let first = try_lock(&socket).unwrap();
        assert!(first.is_some());
        // flock locks belong to the open file: a second open in this process is refused too.
        assert!(try_lock(&socket).unwrap().is_none());
        assert_eq!(holder(&socket), Some(std::process::id()));
        drop(first);
        assert!(try_lock(&socket).unwrap().is_some());
        std::fs::remove_dir_all(&base).unwrap();
    }
}
