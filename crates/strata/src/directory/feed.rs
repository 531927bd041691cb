//! A spool fed by name: [`Feed`] subscribes to a pattern and turns what it hears into
//! the spool's membership (`Available` → [`JoinSpool`], `Dropped` → [`LeaveSpool`]). The
//! spool starts empty; workers anywhere the scope reaches come and go by publishing and
//! ending. The directory depends on the spool's messages, never the reverse.
//!
//! ```no_run
//! use strata::prelude::*;
//! use strata::directory::{Feed, Scope};
//! use strata::spool::Spool;
//!
//! # struct Never;
//! # #[strata::machine] impl Never { fn n(&mut self, _cx: &mut Context<Self>, _: Ping) {} }
//! let mut cx = ThreadContext::attach();
//! let spool = cx.create(Spool::of(|| Never).workers(0));
//! cx.create(Feed::new("texture:worker:.*", Scope::Host, spool).unwrap());
//! ```

use super::messages::{Available, Dropped, Subscribed};
use super::name::{NameError, Pattern, Scope};
use crate::object::Context;
use crate::spool::{JoinSpool, LeaveSpool};
use crate::standard::{Ended, NotSubscribed, Start, Stop};
use crate::Address;

/// Feeds a spool (or any object that takes [`JoinSpool`] and [`LeaveSpool`]) with the
/// publications a pattern matches. It ends when the spool does, or when stopped; its
/// subscription ends with it.
pub struct Feed {
    pattern: Pattern,
    scope: Scope,
    to: Address,
}

impl Feed {
    /// A feed of every name `pattern` matches at `scope` or nearer, into `to`.
    pub fn new(pattern: &str, scope: Scope, to: Address) -> Result<Feed, NameError> {
        Ok(Feed {
            pattern: Pattern::new(pattern)?,
            scope,
            to,
        })
    }
}

#[crate::machine]
impl Feed {
    #[guard(sender == cx.address())]
    fn on_start(&mut self, cx: &mut Context<Self>, _: Start) {
        cx.watch(self.to);
        let pattern = self.pattern.as_str().to_string();
        cx.subscribe(&pattern, self.scope)
            .expect("a pattern checked when the feed was made");
    }

    fn on_subscribed(&mut self, _cx: &mut Context<Self>, s: Subscribed) {
        tracing::debug!(target: "strata::directory", pattern = %s.pattern, scope = %s.scope, to = %self.to, "feeding");
    }

    fn on_not_subscribed(&mut self, cx: &mut Context<Self>, f: NotSubscribed) {
        cx.abort(f);
    }

    fn on_available(&mut self, cx: &mut Context<Self>, a: Available) {
        cx.send(self.to, JoinSpool(a.address));
    }

    fn on_dropped(&mut self, cx: &mut Context<Self>, d: Dropped) {
        cx.send(self.to, LeaveSpool(d.address));
    }

    fn on_ended(&mut self, cx: &mut Context<Self>, _: Ended) {
        cx.complete(());
    }

    fn on_stop(&mut self, cx: &mut Context<Self>, _: Stop) {
        cx.complete(());
    }
}
