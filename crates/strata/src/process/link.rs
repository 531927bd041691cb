//! The private link between a parent and its child process, both ends.
//!
//! Every child a [`Process`](super::Process) object starts gets a socket pair: the
//! parent's end stays with the `Process` object, the child's end is put on descriptor 3
//! and named by the environment variable [`LINK_FD_VARIABLE`] (with the link's largest
//! frame in [`LINK_MAX_FRAME_VARIABLE`]). Over it runs an ordinary strata link
//! (`net::link`), with two of its settings that make the `Process` object *stand for* the
//! child's top object:
//!
//! - the parent's end delivers the messages of the child's top object as sent by the
//!   `Process` object, so replies look as if the `Process` object answered (a spool
//!   cannot tell a worker process from a worker thread);
//! - the child's end tells its owner (the child's top object) nothing of the link: for the
//!   top object, messages simply arrive.
//!
//! Once the link is up the `Process` object stands in for the child's top object
//! ([`Core::stand_in_for`](crate::Core::stand_in_for)): messages sent to it go straight to
//! the link without waking its task.
//!
//! [`parent_end`] runs in the parent; [`child_end`] is what [`strata::main`](crate::main)
//! calls in every program (a no-op unless the program was started as a child).
//!
//! The child does not take the descriptor on trust. [`inherited`] reads the environment
//! once, before the program starts its runtime, and adopts the descriptor only if it is
//! a Unix socket whose peer (`SO_PEERCRED`: the process that made the socket pair) is
//! this process's parent; otherwise the program runs as an ordinary program and logs why.
//! The variables are left set: removing them (`std::env::remove_var`) is unsound once
//! other threads may read the environment, and a grandchild that inherits them fails the
//! same checks (the child's descriptor 3 is close-on-exec once adopted; a `Process`
//! object sets both variables afresh for each child it starts).

use std::os::fd::{FromRawFd, OwnedFd};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::OnceLock;

use crate::message::AnyMessage;
use crate::net::link::{self, LinkSettings};
use crate::net::Role;
use crate::object::{Async, AsyncContext, Core};
use crate::standard::Faulted;
use crate::Address;

/// The environment variable that tells a child which descriptor is its link to the parent.
pub(crate) const LINK_FD_VARIABLE: &str = "STRATA_LINK_FD";

/// The environment variable that tells a child the largest frame on its link to the
/// parent (bytes; [`PRIVATE_MAX_FRAME`] when unset).
pub(crate) const LINK_MAX_FRAME_VARIABLE: &str = "STRATA_LINK_MAX_FRAME";

/// The descriptor number the link is placed on in the child.
pub(crate) const CHILD_FD: i32 = 3;

/// The default largest frame on the private link between a parent and its child, both
/// ways: large replies such as tables must fit, but a child is not trusted with
/// unbounded frames (each is buffered whole, and decoding can multiply it). Set per
/// child with [`Process::max_frame`](super::Process::max_frame).
pub(crate) const PRIVATE_MAX_FRAME: usize = 64 << 20;

/// The smallest frame limit the private link takes (smaller settings are raised to it).
pub(crate) const MIN_FRAME: usize = 64;

/// What the environment says about a link to a parent, read once by [`inherited`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Inherited {
    /// No link: the program was not started by a `Process` object.
    None,
    /// A descriptor that passed the checks, and the link's largest frame.
    Link { fd: i32, max_frame: usize },
    /// [`LINK_FD_VARIABLE`] is set but names no link to the parent: why.
    Refused(String),
}

/// What the environment says about a link to the parent: read and checked on the first
/// call (which [`run_program`](super::program::run_program) makes before anything else),
/// the same answer ever after.
pub(crate) fn inherited() -> &'static Inherited {
    static INHERITED: OnceLock<Inherited> = OnceLock::new();
    INHERITED.get_or_init(|| {
        let Some(value) = std::env::var_os(LINK_FD_VARIABLE) else {
            return Inherited::None;
        };
        let max_frame = std::env::var(LINK_MAX_FRAME_VARIABLE)
            .ok()
            .and_then(|v| v.trim().parse::<usize>().ok())
            .map_or(PRIVATE_MAX_FRAME, |n| {
                n.clamp(MIN_FRAME, crate::net::frame::MAX_FRAME_LIMIT)
            });
        let value = value.to_string_lossy();
        match value.trim().parse::<i32>() {
            Ok(fd) if fd >= 0 => match check_link_fd(fd) {
                Ok(()) => Inherited::Link { fd, max_frame },
                Err(why) => Inherited::Refused(why),
            },
            _ => Inherited::Refused(format!(
                "{LINK_FD_VARIABLE}={:?} is not a descriptor number",
                value.chars().take(32).collect::<String>()
            )),
        }
    })
}

/// Checks that `fd` is a Unix socket whose peer is this process's parent.
fn check_link_fd(fd: i32) -> Result<(), String> {
    let named = format!("descriptor {fd} (named by {LINK_FD_VARIABLE})");
    // SAFETY: fstat writes into the zeroed struct we pass; any descriptor number is safe
    // to ask about.
    let mut stat: libc::stat = unsafe { std::mem::zeroed() };
    if unsafe { libc::fstat(fd, &mut stat) } != 0 {
        return Err(format!(
            "{named} is not open: {}",
            std::io::Error::last_os_error()
        ));
    }
    if stat.st_mode & libc::S_IFMT != libc::S_IFSOCK {
        return Err(format!("{named} is not a socket"));
    }
    let domain: libc::c_int = sockopt(fd, libc::SO_DOMAIN)
        .map_err(|e| format!("{named}: cannot read its socket domain: {e}"))?;
    if domain != libc::AF_UNIX {
        return Err(format!("{named} is not a Unix socket"));
    }
    let peer: libc::ucred = sockopt(fd, libc::SO_PEERCRED)
        .map_err(|e| format!("{named}: cannot read its peer's credentials: {e}"))?;
    // SAFETY: getppid has no preconditions.
    let parent = unsafe { libc::getppid() };
    if peer.pid != parent {
        return Err(format!(
            "{named}: its peer is process {}, not this process's parent ({parent})",
            peer.pid
        ));
    }
    Ok(())
}

/// Reads the `SOL_SOCKET` option `name` of `fd` as a `T` (a plain C struct or integer).
fn sockopt<T: Copy>(fd: i32, name: libc::c_int) -> std::io::Result<T> {
    let mut value = std::mem::MaybeUninit::<T>::zeroed();
    let mut len = std::mem::size_of::<T>() as libc::socklen_t;
    // SAFETY: the kernel writes at most `len` bytes into `value`, which has room for them.
    let r = unsafe {
        libc::getsockopt(
            fd,
            libc::SOL_SOCKET,
            name,
            value.as_mut_ptr().cast(),
            &mut len,
        )
    };
    if r != 0 {
        return Err(std::io::Error::last_os_error());
    }
    if len as usize != std::mem::size_of::<T>() {
        return Err(std::io::Error::other(format!(
            "the option has {len} bytes, expected {}",
            std::mem::size_of::<T>()
        )));
    }
    // SAFETY: zero-initialised, then filled by the kernel; T is a plain C value for
    // which any bytes are valid.
    Ok(unsafe { value.assume_init() })
}

/// Set when this program runs as a child of a strata `Process` object.
static AS_CHILD: AtomicBool = AtomicBool::new(false);

/// Whether this program was started by a strata `Process` object (and so prints its
/// value for the parent to decode).
pub(crate) fn is_child() -> bool {
    AS_CHILD.load(Ordering::SeqCst)
}

/// In the parent: creates the link object over `stream` (the parent's end of the pair),
/// as a child of `cx`, taking frames of up to `max_frame` bytes. Messages from the child's top object are delivered as sent by
/// `stand_in` (the `Process` object), which hears `Accepted` (whose sender is the child's
/// top object) when the link is up and `Closed` when it ends.
pub(crate) fn parent_end(
    cx: &mut Core,
    stream: std::os::unix::net::UnixStream,
    stand_in: Address,
    child: String,
    max_frame: usize,
) -> std::io::Result<Address> {
    stream.set_nonblocking(true)?;
    let stream = {
        let _runtime = crate::runtime::handle().enter();
        tokio::net::UnixStream::from_std(stream)?
    };
    Ok(
        cx.create(Async::new(move |mut lcx: AsyncContext| async move {
            let settings = LinkSettings {
                present_peer_owner_as: Some(stand_in),
                max_frame: max_frame.max(MIN_FRAME),
                // The child's process directory joins this process's group directory.
                grants: vec![crate::directory::group::local()],
                // What this process publishes (and the host directory, when it serves it)
                // its children may reach, as any process of the host may.
                reach_public: true,
                ..LinkSettings::default()
            };
            match link::run(
                &mut lcx,
                stream,
                Role::Accepting,
                stand_in,
                child,
                settings,
                None,
            )
            .await
            {
                Ok(closed) => AnyMessage::new(closed),
                Err(reason) => AnyMessage::new(Faulted::new(reason.to_string())),
            }
        })),
    )
}

/// In every program run by [`strata::main`](crate::main): when the program was started as
/// a child (and the descriptor passed the checks of [`inherited`]), opens the private link
/// to the parent so that messages sent to the parent's `Process` object reach `top`. Does
/// nothing otherwise; when the variable was set but refused, logs why.
pub(crate) fn child_end(cx: &mut Core, top: Address) {
    let (fd, max_frame) = match inherited() {
        Inherited::None => return,
        Inherited::Refused(why) => {
            tracing::warn!(target: "strata::process", reason = %why, "not adopting a link to a parent");
            return;
        }
        Inherited::Link { fd, max_frame } => (*fd, *max_frame),
    };
    let Some(stream) = adopt(fd) else {
        return;
    };
    AS_CHILD.store(true, Ordering::SeqCst);
    let settings = LinkSettings {
        notify_owner: false,
        peer_may_stop: true,
        max_frame,
        reach_public: true,
        ..LinkSettings::default()
    };
    cx.create(Async::new(move |mut lcx: AsyncContext| async move {
        let parent = "parent".to_string();
        match link::run(
            &mut lcx,
            stream,
            Role::Connecting,
            top,
            parent,
            settings,
            None,
        )
        .await
        {
            Ok(closed) => AnyMessage::new(closed),
            Err(reason) => {
                tracing::warn!(target: "strata::process", %reason, "no link to the parent");
                AnyMessage::new(Faulted::new(reason.to_string()))
            }
        }
    }));
}

/// Takes ownership of the checked descriptor `fd` (once: `None` on a later call) as the
/// child's end of the link.
fn adopt(fd: i32) -> Option<tokio::net::UnixStream> {
    static TAKEN: AtomicBool = AtomicBool::new(false);
    if TAKEN.swap(true, Ordering::SeqCst) {
        return None;
    }
    // SAFETY: `inherited` checked that `fd` is the socket the parent left for us, and
    // `TAKEN` makes this the only owner.
    let owned = unsafe { OwnedFd::from_raw_fd(fd) };
    // Grandchildren must not inherit it.
    // SAFETY: plain fcntl on a descriptor we own.
    unsafe {
        libc::fcntl(fd, libc::F_SETFD, libc::FD_CLOEXEC);
    }
    let std_stream = std::os::unix::net::UnixStream::from(owned);
    if let Err(e) = std_stream.set_nonblocking(true) {
        tracing::warn!(target: "strata::process", error = %e, "cannot use the link to the parent");
        return None;
    }
    let _guard = crate::runtime::handle().enter();
    match tokio::net::UnixStream::from_std(std_stream) {
        Ok(s) => Some(s),
        Err(e) => {
            tracing::warn!(target: "strata::process", error = %e, "cannot use the link to the parent");
            None
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::fd::AsRawFd;

    #[test]
    fn only_a_unix_socket_whose_peer_is_the_parent_passes() {
        // A socket pair made here: its peer is this process, not this process's parent.
        let (a, _b) = std::os::unix::net::UnixStream::pair().unwrap();
        let e = check_link_fd(a.as_raw_fd()).unwrap_err();
        assert!(
            e.contains(&format!("its peer is process {}", std::process::id()))
                && e.contains("not this process's parent"),
            "{e}"
        );
        // A file is no socket.
        let file = std::fs::File::open("/dev/null").unwrap();
        let e = check_link_fd(file.as_raw_fd()).unwrap_err();
        assert!(e.ends_with("is not a socket"), "{e}");
        assert!(e.contains(LINK_FD_VARIABLE), "{e}");
        // Nor is a TCP socket a Unix one.
        let tcp = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let e = check_link_fd(tcp.as_raw_fd()).unwrap_err();
        assert!(e.ends_with("is not a Unix socket"), "{e}");
        // A descriptor that is not open (no process has this many; a number freed here
        // could be taken by another test's thread at once).
        let e = check_link_fd(i32::MAX).unwrap_err();
        assert!(e.contains("is not open"), "{e}");
    }
}
