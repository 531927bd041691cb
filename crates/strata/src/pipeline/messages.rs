//! The pipeline's messages: between the stages, between a stage and its workers, and
//! between the pipeline and its stages.
//!
//! | message | from → to | what for |
//! |---|---|---|
//! | `Items` | stage → next stage | items, never more than the next stage's credit |
//! | `Credit` | stage → previous stage | room for that many more items in its queue |
//! | `End` | stage → next stage | nothing more will come |
//! | `Begin` | stage → worker | the worker's part and who it is; answered `Ready` after `setup` |
//! | `Work` | stage → transport or backend worker | one item or a few; answered `Done`, each item's outputs or its failure (one `Done` per item for a worker process) |
//! | `Produce` | frontend stage → producer | room for `n` items; answered with `Produced` batches of `n` items or errors in all, or fewer and `Exhausted` |
//! | `Finish` | frontend stage → producer | produce no more; answered `Exhausted` |
//! | `Wire` | pipeline → stage | its neighbours |
//! | `Drain` | pipeline → frontend stage | stop producing, let what was produced flow through |
//! | `Halt` | pipeline → stage | end now, counting what is left |
//! | `Failure` | stage → pipeline | an error policy said stop, or a worker could not start |
//! | [`PipelineStats`] | anyone → pipeline | answered with a [`PipelineReport`](super::PipelineReport) of the run so far |
//! | [`DrainPipeline`] | anyone → pipeline | drain and end (what `Stop` and Ctrl-C do) |
//!
//! Credits and items are messages, so a stage's workers may be in other processes: only
//! `Begin`, `Work` and `Produce` and their answers cross to a worker process.

use serde::de::Deserializer;
use serde::ser::{Error as _, Serializer};
use serde::{Deserialize, Serialize};

use super::roles::{build_part, is_registered, unregistered, Part, WorkerInfo};
use crate::message::{codec, AnyMessage};
use crate::standard::Faulted;
use crate::{Address, Message};

/// Items for the next stage.
#[derive(Debug, Serialize, Deserialize, Message)]
#[message(name = "pipeline.Items")]
pub(crate) struct Items {
    pub(crate) items: Vec<AnyMessage>,
}

/// Room for `n` more items.
#[derive(Debug, Clone, Copy, Serialize, Deserialize, Message)]
#[message(name = "pipeline.Credit")]
pub(crate) struct Credit {
    pub(crate) n: u64,
}

/// No more items will come.
#[derive(Debug, Clone, Copy, Serialize, Deserialize, Message)]
#[message(name = "pipeline.End")]
pub(crate) struct End;

/// What a worker runs: its part, moved within a process or described by a message.
pub(crate) enum PartOf {
    /// Built in this process (moved to a thread or async worker).
    Here(Box<dyn Part>),
    /// A message naming the part's type (its fields are the configuration): what crosses
    /// to a worker process, which builds the part by that name.
    Described(AnyMessage),
    /// What a worker process could not build (no registration), and why.
    Unknown(Faulted),
}

impl std::fmt::Debug for PartOf {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            PartOf::Here(_) => f.write_str("Here"),
            PartOf::Described(m) => write!(f, "Described({})", m.type_name()),
            PartOf::Unknown(e) => write!(f, "Unknown({e})"),
        }
    }
}

/// A worker's first message: who it is and what it runs.
#[derive(Debug, Serialize, Deserialize, Message)]
#[message(name = "pipeline.Begin")]
pub(crate) struct Begin {
    pub(crate) info: WorkerInfo,
    pub(crate) part: PartOf,
}

/// A described part crosses as its type name and its encoding, so a worker process that
/// does not know the type can say which registration is missing.
impl Serialize for PartOf {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self {
            PartOf::Described(m) => {
                let bytes = codec::to_binary(m).map_err(S::Error::custom)?;
                (m.type_name(), bytes).serialize(s)
            }
            _ => Err(S::Error::custom(
                "a stage written as a closure or iterator cannot run in a worker process: \
                 give the stage a type that is a Message",
            )),
        }
    }
}

impl<'de> Deserialize<'de> for PartOf {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let (name, bytes) = <(String, Vec<u8>)>::deserialize(d)?;
        if !is_registered(&name) {
            return Ok(PartOf::Unknown(unregistered(&name)));
        }
        let part = codec::from_binary(&bytes)
            .map_err(|e| Faulted::new(format!("the stage `{name}` does not decode: {e}")))
            .and_then(build_part);
        Ok(match part {
            Ok(part) => PartOf::Here(part),
            Err(e) => PartOf::Unknown(e),
        })
    }
}

/// The worker's `setup` went well.
#[derive(Debug, Clone, Copy, Serialize, Deserialize, Message)]
#[message(name = "pipeline.Ready")]
pub(crate) struct Ready;

/// Items for a transport or backend worker: one, or several when the stage's queue is
/// long (fewer messages per item), handled in order. With `one_by_one` (a worker
/// *process*) each item is answered with a `Done` of its own as soon as it is handled,
/// so a worker that dies has told its stage about every item it finished: what it loses
/// is the item it was handling, and the items after it, which it never began.
#[derive(Debug, Serialize, Deserialize, Message)]
#[message(name = "pipeline.Work")]
pub(crate) struct Work {
    pub(crate) items: Vec<AnyMessage>,
    pub(crate) one_by_one: bool,
}

/// What became of one item of a `Work`.
#[derive(Debug, Serialize, Deserialize)]
pub(crate) enum Handled {
    /// Handled: it became the next `outputs` items of the `Done`'s outputs.
    Done { outputs: u32 },
    /// It failed; it comes back, so the stage's policy may retry it.
    Failed { item: AnyMessage, reason: String },
}

/// The next items of a `Work` (all of them, or with `one_by_one` one) were handled,
/// each in its place, in this time; the outputs of all of them, in order, in one vector
/// (one allocation per `Done`, not per item).
#[derive(Debug, Serialize, Deserialize, Message)]
#[message(name = "pipeline.Done")]
pub(crate) struct Done {
    pub(crate) results: Vec<Handled>,
    pub(crate) outputs: Vec<AnyMessage>,
    pub(crate) seconds: f64,
}

/// Room for `n` items from a producer.
#[derive(Debug, Clone, Copy, Serialize, Deserialize, Message)]
#[message(name = "pipeline.Produce")]
pub(crate) struct Produce {
    pub(crate) n: u64,
}

/// What one call to `produce` gave.
#[derive(Debug, Serialize, Deserialize)]
pub(crate) enum Made {
    /// An item.
    Item(AnyMessage),
    /// An error.
    Failed(String),
}

/// Calls to `produce` in a row, the first at place `seq` of the producer's share
/// (counting errors), and how long they took. A producer sends what it made in batches
/// while its calls are quick, and at once when they are slow (see the worker); the
/// places let the stage drop an answer it has had already (from a producer that died,
/// arriving after its replacement produced it again).
#[derive(Debug, Serialize, Deserialize, Message)]
#[message(name = "pipeline.Produced")]
pub(crate) struct Produced {
    pub(crate) made: Vec<Made>,
    pub(crate) seq: u64,
    pub(crate) seconds: f64,
}

/// The producer's share is done (or it was told to `Finish`).
#[derive(Debug, Clone, Copy, Serialize, Deserialize, Message)]
#[message(name = "pipeline.Exhausted")]
pub(crate) struct Exhausted;

/// Produce no more.
#[derive(Debug, Clone, Copy, Serialize, Deserialize, Message)]
#[message(name = "pipeline.Finish")]
pub(crate) struct Finish;

/// A stage's neighbours.
#[derive(Debug, Clone, Copy, Serialize, Deserialize, Message)]
#[message(name = "pipeline.Wire")]
pub(crate) struct Wire {
    pub(crate) upstream: Option<Address>,
    pub(crate) downstream: Option<Address>,
}

/// The frontend stops producing; what was produced flows through.
#[derive(Debug, Clone, Copy, Serialize, Deserialize, Message)]
#[message(name = "pipeline.Drain")]
pub(crate) struct Drain;

/// End now; count what is left.
#[derive(Debug, Clone, Copy, Serialize, Deserialize, Message)]
#[message(name = "pipeline.Halt")]
pub(crate) struct Halt;

/// A stage cannot go on.
#[derive(Debug, Clone, Serialize, Deserialize, Message)]
#[message(name = "pipeline.Failure")]
pub(crate) struct Failure {
    pub(crate) reason: String,
}

/// A stage's statistics now (answered with `StageStatistics`).
#[derive(Debug, Clone, Copy, Serialize, Deserialize, Message)]
#[message(name = "pipeline.StageStats")]
pub(crate) struct StageStats;

/// Asks a pipeline how its run goes; it answers with a
/// [`PipelineReport`](super::PipelineReport) whose outcome is `Running` (figures at most
/// one progress tick old).
#[derive(Debug, Clone, Copy, Default, Serialize, Deserialize, Message)]
#[message(name = "pipeline.PipelineStats")]
pub struct PipelineStats;

/// Asks a pipeline to drain and end: the frontend stops producing, every item already
/// produced flows through, then the stages end in order; after the pipeline's drain
/// time-out, what is left is counted and the pipeline ends anyway. `Stop` (and Ctrl-C in
/// a program whose top object is the pipeline) does the same.
#[derive(Debug, Clone, Copy, Default, Serialize, Deserialize, Message)]
#[message(name = "pipeline.DrainPipeline")]
pub struct DrainPipeline;
