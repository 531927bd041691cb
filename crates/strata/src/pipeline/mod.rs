//! Pipelines: a frontend produces items, an optional transport transforms them, an
//! optional backend consumes them, each stage with its own workers.
//!
//! ```
//! use strata::prelude::*;
//! use strata::pipeline::{Emit, Pipeline, Workers};
//!
//! let total = std::sync::Arc::new(std::sync::atomic::AtomicU64::new(0));
//! let sum = total.clone();
//! let report = Pipeline::items(1..=100u64)
//!     .transport_fn(|n: &u64, out: &mut Emit<u64>| { out.send(n * n); Ok(()) }, Workers::threads(2))
//!     .backend_fn(move |n: &u64| {
//!         sum.fetch_add(*n, std::sync::atomic::Ordering::Relaxed);
//!         Ok(())
//!     }, Workers::threads(1))
//!     .run()
//!     .unwrap();
//! assert!(report.is_complete());
//! assert_eq!(total.load(std::sync::atomic::Ordering::Relaxed), 338_350);
//! assert_eq!(report.stage("backend").unwrap().done, 100);
//! ```
//!
//! # The model
//!
//! The pipeline is an object; so is each stage (a machine that owns its workers, its
//! queue and its credit with the next stage), and so is each worker (a
//! [`StageRunner`]). Items are messages: moved between objects within a process,
//! encoded when they cross to a worker process. A stage's workers are
//! [`Workers::threads`], [`Workers::asynchronous`] or [`Workers::processes`] — the one
//! argument that moves a stage from threads to child processes; the stage's code does not
//! change. Each worker has its own copy of the stage's value (its fields are the user's
//! configuration), runs [`setup`](Transport::setup) before its first item and
//! [`cleanup`](Transport::cleanup) when it ends, whatever happened.
//!
//! A frontend with N workers runs N producers; each must produce only its own share
//! ([`WorkerInfo::owns`] deals items round-robin), so nothing is produced twice (the
//! seed's engine runs `produce()` once per thread, each producing everything).
//!
//! # What always holds
//!
//! * **Back-pressure without spinning.** Each stage's queue is bounded
//!   ([`Workers::queue`]); a stage grants the previous one credit for the room it has, and
//!   a frontend asks its producers for no more items than the credit it holds, so a slow
//!   backend slows the producers and memory stays bounded. Nothing polls or spins.
//! * **Every item is accounted for.** At the end, each stage's `items_in` is its `done` +
//!   `skipped` + `left`; a transport's outputs are the next stage's `items_in`.
//! * **Stop drains, then cascades**: `Stop` (Ctrl-C when the pipeline is a program's top
//!   object), [`DrainPipeline`] or [`PipelineHandle::drain`] stop the producers between
//!   items, everything already produced flows through, and the stages end in order. After
//!   the drain time-out ([`Pipeline::drain_timeout`]) the stages still running are
//!   halted and report what was left ([`Outcome::TimedOut`]).
//! * **No stage waits for a dead one.** A stage that cannot go on halts the pipeline; a
//!   worker *process* that dies loses only the item it was handling to the error policy
//!   and is replaced (a frontend's replacement resumes its share after what was
//!   received).
//! * **Batches, without waiting for them.** Quick items travel in batches — from a
//!   producer (what it makes while its calls to `produce` are quick), between stages (what
//!   a stage has for the next one when it handles a message) and to workers (a share of
//!   the queue) — and bounds, credit and statistics still count items. Nothing waits for
//!   a batch to fill: a stage sends what it has at once, and a producer holds an item no
//!   longer than about a millisecond, even when its next call to `produce` blocks.
//! * **Errors per stage** ([`ErrorPolicy`]): skip and count, retry N times with a
//!   [`Backoff`](crate::backoff::Backoff) between attempts, or stop the pipeline.
//! * **Statistics per stage** ([`StageStatistics`]): in, done, out, errors, retries,
//!   skipped, left, queue length, busy time, items per second; live through
//!   [`PipelineStats`], and a progress line on a terminal for long runs ([`Progress`]; a
//!   bar when the length is known).
//!
//! # Processes
//!
//! A stage on processes needs a program whose top object is a [`StageRunner`] that
//! registers the stage's type, as executor workers register their jobs:
//!
//! ```no_run
//! use strata::prelude::*;
//! use strata::pipeline::{Emit, StageRunner, Transport};
//!
//! #[derive(Debug, Clone, Serialize, Deserialize, Message)]
//! struct Upper;
//!
//! impl Transport for Upper {
//!     type In = String;
//!     type Out = String;
//!     fn transport(&mut self, line: &String, out: &mut Emit<String>) -> Result<(), Faulted> {
//!         out.send(line.to_uppercase());
//!         Ok(())
//!     }
//! }
//!
//! fn main() -> std::process::ExitCode {
//!     strata::main(Threaded(StageRunner::new().transport::<Upper>()))
//! }
//! ```
//!
//! Closures and iterators ([`Pipeline::items`], [`Pipeline::generate`], `transport_fn`,
//! `backend_fn`) are for
//! workers in this process; [`Pipeline::validate`] refuses them on processes.
//!
//! # Which tool when
//!
//! A pipeline when items flow through fixed steps and the steps' speeds differ (read,
//! transform, write); an [`Executor`](crate::executor::Executor) when callers submit
//! independent jobs and want each result; a [`Spool`](crate::spool::Spool) when clients
//! ask a service.
//!
//! # How it is built
//!
//! The layout of `research/aesthetics.md` §4.4, except that the user's traits have a
//! file of their own (`roles.rs`: the roles are what users write, apart from the stage
//! machine that runs them), the worker protocol is in `messages.rs` as elsewhere, the
//! stop cascade lives in the pipeline object (`conductor.rs`: stopping is the
//! pipeline's decision, so a separate `drain.rs` would only hold its timer), and the
//! producers' shares are a method on [`WorkerInfo`] rather than a file.
//!
//! | file | what |
//! |---|---|
//! | `roles.rs` | [`Frontend`], [`Transport`], [`Backend`], [`Emit`], [`WorkerInfo`], the parts registered by type name |
//! | `builder.rs` | [`Pipeline`], [`PipelineBuilder`], [`Workers`], [`PipelineError`] |
//! | `messages.rs` | the messages between stages, workers and the pipeline |
//! | `stage.rs` | the stage machine: workers, bounded queue, credit, retries, replacements |
//! | `worker.rs` | [`StageRunner`], the worker object (setup, cleanup, panics caught) |
//! | `policy.rs` | [`ErrorPolicy`] (pure) |
//! | `conductor.rs` | the pipeline object: wiring, drain and its time-out, halting on failure, progress |
//! | `handle.rs` | [`PipelineHandle`] |
//! | `stats.rs` | [`StageStatistics`], [`PipelineReport`], [`Outcome`], the progress line |
//! | `lines.rs` | [`lines`]: ready-made stages for text (stdin lines, a logging transport that can run a command, a logging backend) |

mod builder;
mod conductor;
mod handle;
pub mod lines;
mod messages;
mod policy;
mod roles;
mod stage;
mod stats;
mod worker;

pub use builder::{Pipeline, PipelineBuilder, PipelineError, Workers, DEFAULT_QUEUE};
pub use handle::PipelineHandle;
pub use messages::{DrainPipeline, PipelineStats};
pub use policy::{ErrorPolicy, Exhausted};
pub use roles::{
    register_backend, register_frontend, register_transport, Backend, Emit, Frontend, Transport,
    WorkerInfo,
};
pub use stats::{Outcome, PipelineReport, Progress, StageStatistics};
pub use worker::StageRunner;
