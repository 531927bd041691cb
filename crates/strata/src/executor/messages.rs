//! The executor's messages: what objects send it and what it answers, what it says to its
//! workers, and its two faults.
//!
//! | message | from → to | answered with |
//! |---|---|---|
//! | [`Submit`] | any object → executor | [`JobDone`] with the same tag, exactly once |
//! | [`Cancel`] | the submitter → executor | the job's `JobDone` carries [`Cancelled`] (when it was still pending) |
//! | [`Shutdown`] | any object → executor | [`ExecutorStatistics`](super::ExecutorStatistics) once the last job is done |
//! | [`ExecutorStats`] | any object → executor | [`ExecutorStatistics`](super::ExecutorStatistics) at once |
//! | `RunJob` (private) | executor → worker: one job, or a batch of queued jobs | one `Ran` with every job's value, in order |
//!
//! A `Submit` whose job is a [`Job`] type is an ordinary message and may come from
//! another process (the job's type must then be registered with
//! [`register_job`](super::register_job) in the executor's process). One whose job is a
//! closure or a future exists only inside a process: encoding it fails with a clear error.

use std::fmt;
use std::future::Future;
use std::time::{Duration, Instant};

use serde::de::Deserializer;
use serde::ser::{Error as _, Serializer};
use serde::{Deserialize, Serialize};

use super::future::SlotGuard;
use super::job::{Job, JobOutput, Work};
use crate::message::AnyMessage;
use crate::Message;

/// A submission was refused: the executor's backlog limit
/// ([`reject_when_reached`](super::Executor::reject_when_reached)), its own policy
/// ([`check_and_reject`](super::Executor::check_and_reject)), a full queue, or an executor
/// that is shutting down or gone. Nothing ran.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, Message)]
#[message(name = "Rejected", fault)]
pub struct Rejected {
    /// Why, for people.
    pub reason: String,
}

/// A job was cancelled before a worker took it; nothing ran.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, Message)]
#[message(name = "Cancelled", fault)]
pub struct Cancelled {
    /// Why, for people.
    pub reason: String,
}

macro_rules! reasoned {
    ($($t:ident),*) => {$(
        impl $t {
            /// The fault with this reason.
            pub fn new(reason: impl Into<String>) -> Self {
                $t { reason: reason.into() }
            }
        }
        impl fmt::Display for $t {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                write!(f, "{}: {}", stringify!($t), self.reason)
            }
        }
    )*};
}

reasoned!(Rejected, Cancelled);

/// Gives an executor a job; it answers the sender with [`JobDone`] carrying the same
/// `tag` (the sender's own number for the job), exactly once: the job's value, or a
/// fault — [`Rejected`], [`Cancelled`], or why the job failed.
///
/// ```
/// use strata::prelude::*;
/// use strata::executor::{Executor, JobDone, Submit};
///
/// let mut cx = ThreadContext::attach();
/// let executor = cx.create(Executor::threads().max_workers(2));
/// cx.send(executor, Submit::closure(7, || 40 + 2));
/// let done = cx.select::<(JobDone,)>().take::<JobDone>().unwrap();
/// assert_eq!(done.tag, 7);
/// assert_eq!(done.value.downcast::<i32>().unwrap(), 42);
/// ```
pub struct Submit {
    /// The submitter's number for the job, echoed in [`JobDone`] (and named by
    /// [`Cancel`]).
    pub tag: u64,
    pub(crate) work: Work,
    /// Not before then (the end of its delay, read on the submitter's clock when the
    /// submission was made, so the time the message takes to arrive does not add to it).
    pub(crate) start_at: Option<Instant>,
    /// Where the answer goes instead of a `JobDone` to the sender: the handle's slot.
    pub(crate) slot: Option<SlotGuard>,
}

impl Submit {
    /// A [`Job`] (it may come from another process).
    pub fn job<J: Job>(tag: u64, job: J) -> Self {
        Submit::of(tag, Work::job(job))
    }

    /// A closure (this process only).
    pub fn closure<F, O>(tag: u64, f: F) -> Self
    where
        F: FnOnce() -> O + Send + 'static,
        O: JobOutput,
    {
        Submit::of(tag, Work::closure(f))
    }

    /// A future (this process only).
    pub fn future<Fut>(tag: u64, future: Fut) -> Self
    where
        Fut: Future + Send + 'static,
        Fut::Output: JobOutput,
    {
        Submit::of(tag, Work::future(future))
    }

    /// Runs the job once `delay` has passed, not before; until then it can be cancelled.
    pub fn after(mut self, delay: Duration) -> Self {
        self.start_at = Some(Instant::now() + delay);
        self
    }

    pub(crate) fn of(tag: u64, work: Work) -> Self {
        Submit {
            tag,
            work,
            start_at: None,
            slot: None,
        }
    }
}

impl fmt::Debug for Submit {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Submit")
            .field("tag", &self.tag)
            .field("work", &self.work)
            .field("start_at", &self.start_at)
            .finish()
    }
}

/// What a `Submit` is on the wire: only a job message travels.
#[derive(Serialize, Deserialize)]
struct SubmitWire<J> {
    tag: u64,
    job: J,
    after: Option<Duration>,
}

impl Serialize for Submit {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let job = match (&self.slot, self.work.message()) {
            (None, Some(job)) => job,
            (Some(_), _) => {
                return Err(refuse::<S>(
                    "a submission through an ExecutorHandle cannot leave its process".into(),
                ))
            }
            (None, None) => {
                return Err(refuse::<S>(format!(
                    "a {} job cannot leave its process: submit a Job type",
                    self.work.describe()
                )))
            }
        };
        SubmitWire {
            tag: self.tag,
            job,
            // The time left, read now: a clock reading means nothing in another process.
            after: self
                .start_at
                .map(|at| at.saturating_duration_since(Instant::now())),
        }
        .serialize(s)
    }
}

impl<'de> Deserialize<'de> for Submit {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let wire = SubmitWire::<AnyMessage>::deserialize(d)?;
        let mut submit = Submit::of(wire.tag, Work::decoded(wire.job));
        submit.start_at = wire.after.map(|left| Instant::now() + left);
        Ok(submit)
    }
}

/// An encoding refused, with its reason logged (the binary codec keeps no text of it).
fn refuse<S: Serializer>(reason: String) -> S::Error {
    tracing::warn!(target: "strata::executor", %reason, "cannot encode");
    S::Error::custom(reason)
}

impl Message for Submit {
    fn type_name() -> &'static str {
        "executor.Submit"
    }
}

crate::__private::inventory::submit! {
    crate::message::Registration::new::<Submit>()
}

/// The answer to a [`Submit`]: `value` is the job's value, or a fault — [`Rejected`],
/// [`Cancelled`], or why the job failed (a panic, a fault it returned, the end of the
/// worker that ran it).
#[derive(Debug, Serialize, Deserialize, Message)]
#[message(name = "executor.JobDone")]
pub struct JobDone {
    /// The tag of the `Submit`.
    pub tag: u64,
    /// The job's value or the fault.
    pub value: AnyMessage,
    /// How long the job ran, in seconds (0 when it did not run).
    pub seconds: f64,
}

/// Cancels the job its sender submitted with this tag, if no worker has taken it yet; the
/// job's [`JobDone`] then carries [`Cancelled`]. A job already running is not interrupted
/// (its `JobDone` carries its value).
#[derive(Debug, Clone, Copy, Serialize, Deserialize, Message)]
#[message(name = "executor.Cancel")]
pub struct Cancel {
    /// The tag of the `Submit`.
    pub tag: u64,
}

/// How an executor shuts down. In every mode new submissions are refused with
/// [`Rejected`], and every job already submitted gets its one answer: shutdown never
/// abandons a job silently.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub enum ShutdownMode {
    /// Run everything submitted — queued jobs, and delayed ones once their delay has
    /// passed — then end.
    Wait,
    /// Cancel what no worker has taken yet ([`Cancelled`]), let the running jobs finish,
    /// then end. This is what `Stop` does.
    CancelPending,
    /// Like `Wait` for at most `timeout`; then cancel what has not started and fail what
    /// is still running (its worker is stopped; a worker thread cannot be interrupted, so
    /// it is left to finish in the background), and end at once.
    Drain {
        /// How long to keep running jobs.
        timeout: Duration,
    },
}

/// Shuts an executor down (see [`ShutdownMode`]). The executor answers the sender with
/// its final [`ExecutorStatistics`](super::ExecutorStatistics) when its last job is done,
/// then stops its workers and ends with the same statistics as its value.
#[derive(Debug, Clone, Copy, Serialize, Deserialize, Message)]
#[message(name = "executor.Shutdown")]
pub struct Shutdown {
    /// How.
    pub mode: ShutdownMode,
}

/// Asks an executor for its [`ExecutorStatistics`](super::ExecutorStatistics) (it
/// answers at once).
#[derive(Debug, Clone, Copy, Default, Serialize, Deserialize, Message)]
#[message(name = "executor.ExecutorStats")]
pub struct ExecutorStats;

/// The executor's message to a worker: run these jobs, in order, and answer with one
/// `Ran` holding their values in the same order. Usually one job; when jobs queue up the
/// executor gives a worker several at once (a *batch*), so a long queue costs one
/// message (and for a worker process, one frame each way) per batch rather than per job.
///
/// `start_at`: not before then (a job submitted with a delay, or a periodic run, given to
/// its worker a little early so that nothing but the worker's own sleep stands between
/// the due time and the start). It crosses to a worker process as the time left.
#[derive(Debug)]
pub(crate) struct RunJob {
    pub(crate) work: Vec<Work>,
    pub(crate) start_at: Option<Instant>,
}

/// The jobs of a `RunJob` on the wire: their messages, or an error for a closure.
struct WireJobs<'a>(&'a [Work]);

impl Serialize for WireJobs<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeSeq;
        let mut seq = s.serialize_seq(Some(self.0.len()))?;
        for work in self.0 {
            match work.message() {
                Some(job) => seq.serialize_element(job)?,
                None => {
                    return Err(refuse::<S>(format!(
                        "a {} job cannot run in a worker process: submit a Job type",
                        work.describe()
                    )))
                }
            }
        }
        seq.end()
    }
}

impl Serialize for RunJob {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let wait = self
            .start_at
            .map(|at| at.saturating_duration_since(Instant::now()).as_nanos() as u64);
        (wait, WireJobs(&self.work)).serialize(s)
    }
}

impl<'de> Deserialize<'de> for RunJob {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let (wait, jobs) = <(Option<u64>, Vec<AnyMessage>)>::deserialize(d)?;
        Ok(RunJob {
            work: jobs.into_iter().map(Work::decoded).collect(),
            start_at: wait.map(|ns| Instant::now() + Duration::from_nanos(ns)),
        })
    }
}

impl Message for RunJob {
    fn type_name() -> &'static str {
        "executor.RunJob"
    }
}

crate::__private::inventory::submit! {
    crate::message::Registration::new::<RunJob>()
}

/// A worker's answer to `RunJob`: each job's value (or fault) and how long it ran, in
/// seconds, in the order of the batch.
#[derive(Debug, Serialize, Deserialize, Message)]
#[message(name = "executor.Ran")]
pub(crate) struct Ran {
    pub(crate) runs: Vec<(AnyMessage, f64)>,
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::message::codec;

    #[derive(Debug, Serialize, Deserialize, Message)]
    #[message(name = "test.executor.Triple")]
    struct Triple(u32);

    impl Job for Triple {
        type Output = u32;
        fn run(self) -> u32 {
            self.0 * 3
        }
    }

    #[test]
    fn a_job_submission_crosses_a_process_and_a_closure_says_why_it_cannot() {
        super::super::register_job::<Triple>();
        let wire = codec::to_binary(&AnyMessage::new(
            Submit::job(9, Triple(2)).after(Duration::from_millis(5)),
        ))
        .expect("a job submission encodes");
        let back = codec::from_binary(&wire).expect("and decodes");
        let submit = back.downcast::<Submit>().unwrap();
        assert_eq!(submit.tag, 9);
        assert!(
            submit.start_at.is_some(),
            "the delay crosses as the time left"
        );
        assert_eq!(submit.work.run().0.downcast::<u32>().unwrap(), 6);

        // The binary codec keeps no text of the reason (it is logged); JSON shows it.
        assert!(codec::to_binary(&AnyMessage::new(Submit::closure(1, || 1u8))).is_err());
        let e = codec::to_json(&AnyMessage::new(Submit::closure(1, || 1u8))).unwrap_err();
        assert!(e.to_string().contains("closure job cannot leave"), "{e}");
        let e = codec::to_json(&AnyMessage::new(RunJob {
            work: vec![Work::job(Triple(1)), Work::future(async { 1u8 })],
            start_at: None,
        }))
        .unwrap_err();
        assert!(
            e.to_string()
                .contains("future job cannot run in a worker process"),
            "{e}"
        );
    }

    #[test]
    fn a_batch_crosses_a_process_in_order_with_its_start_time_as_the_time_left() {
        super::super::register_job::<Triple>();
        let at = Instant::now() + Duration::from_secs(60);
        let run = RunJob {
            work: vec![Work::job(Triple(1)), Work::job(Triple(2))],
            start_at: Some(at),
        };
        let wire = codec::to_binary(&AnyMessage::new(run)).expect("a batch of jobs encodes");
        let back = codec::from_binary(&wire).expect("and decodes");
        let run = back.downcast::<RunJob>().unwrap();
        // The time left, read at the encoding, counted again from the decoding: not
        // earlier than meant.
        assert!(run.start_at.expect("the start time crosses") >= at);
        let values: Vec<u32> = super::super::job::run_batch(run.work)
            .into_iter()
            .map(|(v, _)| v.downcast::<u32>().unwrap())
            .collect();
        assert_eq!(values, [3, 6]);
    }

    #[test]
    fn the_faults_are_faults_that_read_well() {
        let r = AnyMessage::new(Rejected::new("backlog of 2 reached"));
        assert_eq!(
            r.as_fault().unwrap().reason(),
            "Rejected: backlog of 2 reached"
        );
        assert!(AnyMessage::new(Cancelled::new("x")).is_fault());
    }
}
