//! The private link between a parent and its child process, both ends.
//!
//! Every child a [`Process`](super::Process) object starts gets a socket pair: the
//! parent's end stays with the `Process` object, the child's end is put on descriptor 3
//! and named by the environment variable [`LINK_FD_VARIABLE`]. Over it runs an ordinary
//! strata link (`net::link`), with two of its settings that make the `Process` object *stand
//! for* the child's top object:
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

use std::os::fd::{FromRawFd, OwnedFd};
use std::sync::atomic::{AtomicBool, Ordering};

use crate::message::AnyMessage;
use crate::net::link::{self, LinkSettings};
use crate::net::Role;
use crate::object::{Async, AsyncContext, Core};
use crate::standard::Faulted;
use crate::Address;

/// The environment variable that tells a child which descriptor is its link to the parent.
pub(crate) const LINK_FD_VARIABLE: &str = "STRATA_LINK_FD";

/// The descriptor number the link is placed on in the child.
pub(crate) const CHILD_FD: i32 = 3;

/// The largest frame on the private link between a parent and its child: the peer is
/// trusted, and replies such as large tables must fit.
pub(crate) const PRIVATE_MAX_FRAME: usize = 256 << 20;

/// Set when this program runs as a child of a strata `Process` object.
static AS_CHILD: AtomicBool = AtomicBool::new(false);

/// Whether this program was started by a strata `Process` object (and so prints its
/// value for the parent to decode).
pub(crate) fn is_child() -> bool {
    AS_CHILD.load(Ordering::SeqCst)
}

/// In the parent: creates the link object over `stream` (the parent's end of the pair),
/// as a child of `cx`. Messages from the child's top object are delivered as sent by
/// `stand_in` (the `Process` object), which hears `Accepted` (whose sender is the child's
/// top object) when the link is up and `Closed` when it ends.
pub(crate) fn parent_end(
    cx: &mut Core,
    stream: std::os::unix::net::UnixStream,
    stand_in: Address,
    child: String,
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
                max_frame: PRIVATE_MAX_FRAME,
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
/// a child, opens the private link to the parent so that messages sent to the parent's
/// `Process` object reach `top`. Does nothing otherwise.
pub(crate) fn child_end(cx: &mut Core, top: Address) {
    let Some(stream) = take_link_fd() else {
        return;
    };
    AS_CHILD.store(true, Ordering::SeqCst);
    let settings = LinkSettings {
        notify_owner: false,
        peer_may_stop: true,
        max_frame: PRIVATE_MAX_FRAME,
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

/// The child's end of the link, taken from the environment (once). `None` in a program
/// that was not started as a child.
fn take_link_fd() -> Option<tokio::net::UnixStream> {
    let fd: i32 = std::env::var(LINK_FD_VARIABLE).ok()?.parse().ok()?;
    std::env::remove_var(LINK_FD_VARIABLE);
    // SAFETY: the parent put a socket on this descriptor for us alone, and we take it once.
    let owned = unsafe { OwnedFd::from_raw_fd(fd) };
    // Grandchildren must not inherit it.
    // SAFETY: plain fcntl on a descriptor we own.
    unsafe {
        libc::fcntl(fd, libc::F_SETFD, libc::FD_CLOEXEC);
    }
    let std_stream = std::os::unix::net::UnixStream::from(owned);
    std_stream.set_nonblocking(true).ok()?;
    let _guard = crate::runtime::handle().enter();
    tokio::net::UnixStream::from_std(std_stream).ok()
}
