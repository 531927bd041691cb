//! The lock a running home holds (`run/lock`), and how others find who holds it.
//!
//! A POSIX record lock (`fcntl F_SETLK`): the kernel drops it when the holder dies, even
//! by SIGKILL, and `F_GETLK` names the holder's pid. That pid is the only process
//! `strata stop` ever signals, so stop never reaches anything the home did not start.

use std::os::fd::AsRawFd;
use std::path::Path;

/// The held lock; dropping it releases it.
#[derive(Debug)]
pub struct RunLock {
    _file: std::fs::File,
}

fn flock(kind: libc::c_short) -> libc::flock {
    // SAFETY: flock is a plain C struct; zeroed is a valid value.
    let mut l: libc::flock = unsafe { std::mem::zeroed() };
    l.l_type = kind;
    l.l_whence = libc::SEEK_SET as libc::c_short;
    l
}

/// Takes the lock at `path`, or says which pid holds it (`Err(Some(pid))`), or why it
/// could not (`Err(None)` with the error logged).
pub fn acquire(path: &Path) -> Result<RunLock, Option<i32>> {
    let file = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .open(path)
        .map_err(|e| {
            tracing::error!(target: "strata::home", path = %path.display(), error = %e, "cannot open the run lock");
            None
        })?;
    let mut l = flock(libc::F_WRLCK as libc::c_short);
    // SAFETY: fcntl on an open descriptor with a valid flock.
    let r = unsafe { libc::fcntl(file.as_raw_fd(), libc::F_SETLK, &mut l) };
    if r != 0 {
        return Err(holder(path));
    }
    use std::io::Write;
    let _ = file.set_len(0);
    let _ = (&file).write_all(format!("{}\n", std::process::id()).as_bytes());
    Ok(RunLock { _file: file })
}

/// The pid holding the lock at `path`, if another process does.
///
/// Never call it in the process holding the lock: closing any descriptor of the file
/// releases a POSIX lock.
pub fn holder(path: &Path) -> Option<i32> {
    let file = std::fs::File::open(path).ok()?;
    let mut l = flock(libc::F_WRLCK as libc::c_short);
    // SAFETY: as above.
    let r = unsafe { libc::fcntl(file.as_raw_fd(), libc::F_GETLK, &mut l) };
    (r == 0 && l.l_type != libc::F_UNLCK as libc::c_short).then_some(l.l_pid)
}
