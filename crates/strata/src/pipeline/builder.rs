//! Building a pipeline: the stages in order, each with its workers.
//!
//! The builder is typed: `Pipeline::frontend(f, ..)` gives a builder of `f`'s items, a
//! transport must take those and gives a builder of its outputs, and a backend must take
//! what comes to it, so a pipeline whose stages do not fit does not compile. What the
//! types cannot check (worker counts, queue sizes, a closure sent to a process) is
//! checked by [`Pipeline::validate`], and a refusal names the stage and the parameter.

use std::marker::PhantomData;
use std::sync::Arc;
use std::time::Duration;

use parking_lot::Mutex;

use super::policy::ErrorPolicy;
use super::roles::{
    typed_fn, AsBackend, AsFrontend, AsTransport, Backend, Emit, FnPart, Frontend, IterFrontend,
    Part, Transport,
};
use super::stats::Progress;
use crate::message::{AnyMessage, Message};
use crate::process::Process;
use crate::standard::Faulted;

/// Which stage.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Role {
    Frontend,
    Transport,
    Backend,
}

impl Role {
    pub(crate) fn name(self) -> &'static str {
        match self {
            Role::Frontend => "frontend",
            Role::Transport => "transport",
            Role::Backend => "backend",
        }
    }
}

/// What a stage's workers are.
#[derive(Debug, Clone)]
pub(crate) enum Kind {
    Threads,
    Async,
    Processes(Process),
}

impl Kind {
    pub(crate) fn name(&self) -> &'static str {
        match self {
            Kind::Threads => "threads",
            Kind::Async => "async",
            Kind::Processes(_) => "processes",
        }
    }
}

/// A stage's workers: how many, of which kind, its queue and its error policy. The kind
/// is the one argument that moves a stage from threads to processes.
///
/// ```
/// use strata::pipeline::{ErrorPolicy, Workers};
/// use strata::process::Process;
///
/// let threads = Workers::threads(4).queue(256);
/// let processes = Workers::processes(4, Process::of("my-worker")).queue(256);
/// let careful = Workers::threads(1).on_error(ErrorPolicy::stop());
/// # let _ = (threads, processes, careful);
/// ```
#[derive(Debug, Clone)]
pub struct Workers {
    pub(crate) kind: Kind,
    pub(crate) count: usize,
    pub(crate) queue: usize,
    pub(crate) policy: ErrorPolicy,
}

/// A stage's queue unless told otherwise.
pub const DEFAULT_QUEUE: usize = 100;

impl Workers {
    fn of(kind: Kind, count: usize) -> Self {
        Workers {
            kind,
            count,
            queue: DEFAULT_QUEUE,
            policy: ErrorPolicy::Skip,
        }
    }

    /// `n` workers, each on an OS thread of its own: for CPU work and blocking code.
    pub fn threads(n: usize) -> Self {
        Workers::of(Kind::Threads, n)
    }

    /// `n` workers on the shared runtime (machines): for short, non-blocking work. The
    /// stage's code runs on a runtime thread, so it must not block.
    pub fn asynchronous(n: usize) -> Self {
        Workers::of(Kind::Async, n)
    }

    /// `n` worker processes started from `program`, whose top object is a
    /// [`StageRunner`](super::StageRunner) that registers the stage's type. Items cross
    /// to them encoded, in batches when they are quick; a worker process answers each
    /// item of a batch as it finishes it, so one that dies loses only the item it was
    /// handling (to the error policy; the items after it go to another worker) and is
    /// replaced.
    pub fn processes(n: usize, program: Process) -> Self {
        Workers::of(Kind::Processes(program), n)
    }

    /// The stage's input queue: items it holds for its workers (default 100, at least
    /// 1). It is also how much the stage lets wait for the next stage before it hands its
    /// workers more (so memory stays bounded whatever a slow stage does). A frontend has
    /// no input queue: what it produces is bounded by the next stage's queue.
    pub fn queue(mut self, n: usize) -> Self {
        self.queue = n;
        self
    }

    /// What the stage does with an item that fails (default [`ErrorPolicy::Skip`]).
    pub fn on_error(mut self, policy: ErrorPolicy) -> Self {
        self.policy = policy;
        self
    }
}

/// How a stage makes its workers' parts.
#[derive(Clone)]
pub(crate) struct Make {
    /// A part for a worker in this process.
    pub(crate) local: Arc<dyn Fn() -> Box<dyn Part> + Send + Sync>,
    /// The message that describes a part to a worker process (`None`: a closure or an
    /// iterator, which cannot go there).
    pub(crate) described: Option<Arc<dyn Fn() -> AnyMessage + Send + Sync>>,
}

impl Make {
    fn typed<T, P>(value: T, wrap: fn(T) -> P) -> Make
    where
        T: Message + Clone,
        P: Part,
    {
        let shared = Arc::new(Mutex::new(value));
        let for_local = shared.clone();
        Make {
            local: Arc::new(move || Box::new(wrap(for_local.lock().clone())) as Box<dyn Part>),
            described: Some(Arc::new(move || AnyMessage::new(shared.lock().clone()))),
        }
    }

    fn local(make: impl Fn() -> Box<dyn Part> + Send + Sync + 'static) -> Make {
        Make {
            local: Arc::new(make),
            described: None,
        }
    }
}

/// One stage as built.
#[derive(Clone)]
pub(crate) struct StageSpec {
    pub(crate) role: Role,
    pub(crate) workers: Workers,
    pub(crate) make: Make,
}

/// A refused pipeline: which stage, which parameter, and why.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PipelineError {
    /// A parameter out of its range.
    #[error("pipeline {stage}: `{parameter}` {reason}")]
    Invalid {
        /// `frontend`, `transport`, `backend` or `pipeline`.
        stage: &'static str,
        /// The parameter.
        parameter: &'static str,
        /// What is wrong with it.
        reason: String,
    },
    /// The pipeline object ended with a fault rather than a report.
    #[error("the pipeline failed: {0}")]
    Ended(String),
}

/// A pipeline: a frontend, then an optional transport, then an optional backend (at
/// least one of the two). Run it with [`run`](Self::run) or [`start`](Self::start), or
/// create it as an object (`cx.create(pipeline)`): its value is the
/// [`PipelineReport`](super::PipelineReport).
#[derive(Clone)]
pub struct Pipeline {
    pub(crate) stages: Vec<StageSpec>,
    pub(crate) drain_timeout: Duration,
    pub(crate) progress: Progress,
    pub(crate) length: Option<u64>,
}

impl std::fmt::Debug for Pipeline {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let stages: Vec<String> = self
            .stages
            .iter()
            .map(|s| {
                format!(
                    "{} ({} {})",
                    s.role.name(),
                    s.workers.count,
                    s.workers.kind.name()
                )
            })
            .collect();
        f.debug_struct("Pipeline").field("stages", &stages).finish()
    }
}

/// A pipeline being built, whose last stage gives `Item`s.
#[derive(Debug, Clone)]
pub struct PipelineBuilder<Item> {
    pipeline: Pipeline,
    _item: PhantomData<fn() -> Item>,
}

impl Pipeline {
    fn begin<I>(spec: StageSpec, length: Option<u64>) -> PipelineBuilder<I> {
        PipelineBuilder {
            pipeline: Pipeline {
                stages: vec![spec],
                drain_timeout: Duration::from_secs(30),
                progress: Progress::Auto,
                length,
            },
            _item: PhantomData,
        }
    }

    /// Starts a pipeline with `frontend`: each of `workers` gets a copy and produces its
    /// own share (see [`WorkerInfo::owns`](super::WorkerInfo::owns)).
    pub fn frontend<F: Frontend + Message + Clone>(
        frontend: F,
        workers: Workers,
    ) -> PipelineBuilder<F::Item> {
        let length = frontend.length();
        let spec = StageSpec {
            role: Role::Frontend,
            workers,
            make: Make::typed(frontend, AsFrontend),
        };
        Pipeline::begin(spec, length)
    }

    /// Starts a pipeline whose items come from an iterator, on one thread (its length
    /// from the iterator's exact size hint, if any).
    pub fn items<I>(items: I) -> PipelineBuilder<I::Item>
    where
        I: IntoIterator,
        I::IntoIter: Send + 'static,
        I::Item: Message,
    {
        let iter = items.into_iter();
        let (low, high) = iter.size_hint();
        let length = (Some(low) == high).then_some(low as u64);
        let shared = Arc::new(Mutex::new(Some(iter)));
        let spec = StageSpec {
            role: Role::Frontend,
            workers: Workers::threads(1),
            make: Make::local(move || Box::new(IterFrontend(shared.clone())) as Box<dyn Part>),
        };
        Pipeline::begin(spec, length)
    }

    /// Starts a pipeline whose items come from a generator-like closure, called on one
    /// thread until it gives `None`.
    ///
    /// ```
    /// use strata::pipeline::{Pipeline, Workers};
    ///
    /// let mut n = 0u32;
    /// let report = Pipeline::generate(move || { n += 1; (n <= 5).then_some(n) })
    ///     .backend_fn(|_: &u32| Ok(()), Workers::threads(1))
    ///     .run()
    ///     .unwrap();
    /// assert_eq!(report.stage("backend").unwrap().done, 5);
    /// ```
    pub fn generate<T, F>(next: F) -> PipelineBuilder<T>
    where
        T: Message,
        F: FnMut() -> Option<T> + Send + 'static,
    {
        Pipeline::items(std::iter::from_fn(next))
    }

    /// How long a drain (`Stop`, Ctrl-C, [`DrainPipeline`](super::DrainPipeline)) may
    /// take before the stages are halted and what is left is counted (default 30 s).
    pub fn drain_timeout(mut self, timeout: Duration) -> Self {
        self.drain_timeout = timeout;
        self
    }

    /// When to draw the progress line (default [`Progress::Auto`]).
    pub fn progress(mut self, progress: Progress) -> Self {
        self.progress = progress;
        self
    }

    /// The number of items the frontend will produce, for the progress bar (when the
    /// frontend's own [`length`](super::Frontend::length) does not say).
    pub fn length(mut self, items: u64) -> Self {
        self.length = Some(items);
        self
    }

    /// Checks what the types could not: at least one stage after the frontend, workers
    /// and queues of at least 1, backoffs in range, no closure or iterator stage on
    /// process workers, an iterator frontend on one worker.
    pub fn validate(&self) -> Result<(), PipelineError> {
        let invalid = |stage, parameter, reason: &str| PipelineError::Invalid {
            stage,
            parameter,
            reason: reason.to_string(),
        };
        if self.stages.len() < 2 {
            return Err(invalid(
                "pipeline",
                "stages",
                "needs a transport or a backend after the frontend",
            ));
        }
        for s in &self.stages {
            let name = s.role.name();
            if s.workers.count == 0 {
                return Err(invalid(name, "workers", "must be at least 1"));
            }
            if s.workers.queue == 0 {
                return Err(invalid(name, "queue", "must be at least 1"));
            }
            if let Err(e) = s.workers.policy.validate() {
                return Err(PipelineError::Invalid {
                    stage: name,
                    parameter: "on_error",
                    reason: e.to_string(),
                });
            }
            if matches!(s.workers.kind, Kind::Processes(_)) && s.make.described.is_none() {
                return Err(invalid(
                    name,
                    "workers",
                    "is processes, but the stage is a closure or an iterator, which cannot \
                     cross to a process: give it a type that is a Message",
                ));
            }
        }
        let front = &self.stages[0];
        if front.make.described.is_none() && front.workers.count != 1 {
            return Err(invalid("frontend", "workers", "must be 1 for an iterator"));
        }
        if self.drain_timeout.is_zero() {
            return Err(invalid("pipeline", "drain_timeout", "must be more than 0"));
        }
        Ok(())
    }
}

impl<I: Message> PipelineBuilder<I> {
    fn push<O>(mut self, spec: StageSpec) -> PipelineBuilder<O> {
        self.pipeline.stages.push(spec);
        PipelineBuilder {
            pipeline: self.pipeline,
            _item: PhantomData,
        }
    }

    /// Sets the frontend's workers (for [`Pipeline::items`], which has one thread).
    pub fn frontend_workers(mut self, workers: Workers) -> Self {
        self.pipeline.stages[0].workers = workers;
        self
    }

    /// Adds the transport: each of `workers` gets a copy.
    pub fn transport<T>(self, transport: T, workers: Workers) -> PipelineBuilder<T::Out>
    where
        T: Transport<In = I> + Message + Clone,
    {
        self.push(StageSpec {
            role: Role::Transport,
            workers,
            make: Make::typed(transport, AsTransport),
        })
    }

    /// Adds a transport written as a closure (workers in this process; each shares the
    /// closure through a clone).
    pub fn transport_fn<O, F>(self, f: F, workers: Workers) -> PipelineBuilder<O>
    where
        O: Message,
        F: Fn(&I, &mut Emit<O>) -> Result<(), Faulted> + Clone + Send + Sync + 'static,
    {
        self.push(StageSpec {
            role: Role::Transport,
            workers,
            make: Make::local(move || {
                Box::new(FnPart(typed_fn::<I, O>(f.clone()))) as Box<dyn Part>
            }),
        })
    }

    /// Adds the backend and gives the pipeline: each of `workers` gets a copy.
    pub fn backend<B>(self, backend: B, workers: Workers) -> Pipeline
    where
        B: Backend<In = I> + Message + Clone,
    {
        self.push::<()>(StageSpec {
            role: Role::Backend,
            workers,
            make: Make::typed(backend, AsBackend),
        })
        .pipeline
    }

    /// Adds a backend written as a closure (workers in this process).
    pub fn backend_fn<F>(self, f: F, workers: Workers) -> Pipeline
    where
        F: Fn(&I) -> Result<(), Faulted> + Clone + Send + Sync + 'static,
    {
        let make = move || {
            let f = f.clone();
            let g = typed_fn::<I, ()>(move |item: &I, _: &mut Emit<()>| f(item));
            Box::new(FnPart(g)) as Box<dyn Part>
        };
        self.push::<()>(StageSpec {
            role: Role::Backend,
            workers,
            make: Make::local(make),
        })
        .pipeline
    }

    /// The pipeline without a backend: the last transport's outputs are counted and
    /// dropped.
    pub fn build(self) -> Pipeline {
        self.pipeline
    }
}
