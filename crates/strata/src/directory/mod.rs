//! The directory: networking by name instead of by address (SPEC §5, issue 16).
//!
//! Objects publish names and subscribe to patterns of names, each with a [`Scope`]
//! (process < group < host < LAN). A subscriber hears `Available` for every name it
//! matches and `Dropped` when it goes; of each name it holds the *nearest* publication,
//! falling back to a wider one when that is lost and upgrading when a nearer one returns,
//! always `Dropped(old)` before `Available(new)`. A name is unique within its scope.
//! Publications and subscriptions end with the object that made them, and with its
//! process.
//!
//! So far this module holds the rules, as pure code tested on their own:
//! - `name`: [`Name`] (colon-separated, validated), [`Pattern`] (an anchored regular
//!   expression, bounded in size), [`Scope`];
//! - `listing`: [`Listing`], the table of publications and subscriptions, whose every
//!   operation returns the [`Change`]s subscribers are to hear.
//!
//! The directory objects (one per process, a group's in the parent of a composite, one per
//! host on a private Unix socket), the sessions between processes, and publish and
//! subscribe on every object come next, built on these.

mod listing;
mod name;

pub use listing::{Change, Incarnation, Listing, Publication, Refusal, SubscriptionId};
pub use name::{Name, NameError, Pattern, Scope, MAX_NAME, MAX_PATTERN};
