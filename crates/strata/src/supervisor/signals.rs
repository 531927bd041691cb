//! SIGHUP, SIGTTIN and SIGTTOU as messages to a supervisor (SIGINT and SIGTERM are
//! already `Stop` for a program's top object, see [`crate::main`]).

use super::{Reload, Step};
use crate::address::Address;
use crate::object::Postbox;

/// Sends [`Reload`] to `to` on each SIGHUP, and a [`Step`] of +1 / −1 worker of every
/// service on each SIGTTIN / SIGTTOU, for as long as the process runs.
pub fn forward(postbox: Postbox, to: Address) {
    use tokio::signal::unix::{signal, SignalKind};
    let _runtime = crate::runtime::handle().enter();
    let (hup, ttin, ttou) = match (
        signal(SignalKind::hangup()),
        signal(SignalKind::from_raw(libc::SIGTTIN)),
        signal(SignalKind::from_raw(libc::SIGTTOU)),
    ) {
        (Ok(a), Ok(b), Ok(c)) => (a, b, c),
        (Err(e), _, _) | (_, Err(e), _) | (_, _, Err(e)) => {
            tracing::error!(target: "strata::supervisor", error = %e, "cannot watch SIGHUP, SIGTTIN and SIGTTOU");
            return;
        }
    };
    let (mut hup, mut ttin, mut ttou) = (hup, ttin, ttou);
    crate::runtime::handle().spawn(async move {
        loop {
            let sent = tokio::select! {
                _ = hup.recv() => postbox.try_send(to, Reload),
                _ = ttin.recv() => postbox.try_send(to, Step { service: None, by: 1 }),
                _ = ttou.recv() => postbox.try_send(to, Step { service: None, by: -1 }),
            };
            if let Err(crate::SendError::NoSuchObject { .. }) = sent {
                return;
            }
        }
    });
}
