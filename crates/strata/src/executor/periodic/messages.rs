//! The messages of a `Periodic`: what objects send it, what a job returns to retire
//! itself, and what the failure handler is given.
//!
//! | message | answered with |
//! |---|---|
//! | [`AddPeriodic`] (this process only) | `Ack`, or `Rejected` and why |
//! | [`RemovePeriodic`] | `Ack`, or `Nak` when there is no such job |
//! | [`PeriodicStats`] | `Vec<JobStatistics>` |
//! | `Stop` | the `Periodic` ends with its jobs' final statistics |

use std::fmt;

use serde::de::Deserializer;
use serde::ser::{Error as _, Serializer};
use serde::{Deserialize, Serialize};

use super::periodic::PeriodicJob;
use crate::Message;

/// What a periodic job returns to retire itself: it is not run again.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, Message)]
#[message(name = "periodic.NeverAgain")]
pub struct NeverAgain;

/// A periodic job's run failed: what the failure handler is given.
#[derive(Debug, Clone, PartialEq)]
pub struct Failure {
    /// The job's name.
    pub job: String,
    /// The fault's type name (`Faulted` for a panic, `Rejected` when the executor refused
    /// the run, ...).
    pub fault: &'static str,
    /// What happened.
    pub reason: String,
}

/// Adds a job to a running [`Periodic`](super::Periodic) (this process only: it holds a
/// closure). Answered with `Ack`, or [`Rejected`](crate::executor::Rejected) naming what
/// is wrong (a bad schedule, a name in use, a closure for an executor in another
/// process).
pub struct AddPeriodic(pub PeriodicJob);

impl fmt::Debug for AddPeriodic {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("AddPeriodic").field(&self.0).finish()
    }
}

impl Serialize for AddPeriodic {
    fn serialize<S: Serializer>(&self, _s: S) -> Result<S::Ok, S::Error> {
        Err(S::Error::custom("a periodic job cannot leave its process"))
    }
}

impl<'de> Deserialize<'de> for AddPeriodic {
    fn deserialize<D: Deserializer<'de>>(_d: D) -> Result<Self, D::Error> {
        Err(serde::de::Error::custom(
            "a periodic job cannot come from another process",
        ))
    }
}

impl Message for AddPeriodic {
    fn type_name() -> &'static str {
        "periodic.AddPeriodic"
    }
}

/// Removes the job of this name from a [`Periodic`](super::Periodic) (a run in progress
/// finishes, and is not followed). Answered with `Ack`, or `Nak` when there is no such
/// job.
#[derive(Debug, Clone, Serialize, Deserialize, Message)]
#[message(name = "periodic.RemovePeriodic")]
pub struct RemovePeriodic {
    /// The job's name.
    pub name: String,
}

/// Asks a [`Periodic`](super::Periodic) for the statistics of its jobs: answered with a
/// `Vec<JobStatistics>`, the scheduled jobs first (in the order added), then those
/// retired or removed.
#[derive(Debug, Clone, Copy, Default, Serialize, Deserialize, Message)]
#[message(name = "periodic.PeriodicStats")]
pub struct PeriodicStats;
