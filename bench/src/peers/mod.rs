//! One module per peer, each with the same three entry points (`fanout`, `pingpong`,
//! `spawn`), taking the sizes of the passes to run in one process and giving the measured
//! duration of each.
//!
//! Every entry point follows the same shape: set up the objects and wait until they are
//! all running, start the clock, tell the driving object to go, and stop the clock when the
//! coordinator (the benchmark's main thread or future) has been told that the work is done.

pub mod actix;
pub mod ractor;
pub mod raw;
pub mod strata;
