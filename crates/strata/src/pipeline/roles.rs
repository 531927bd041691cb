//! The three roles a stage's workers can play, as traits the user implements, and how a
//! worker runs them without knowing their types.
//!
//! * a [`Frontend`] produces items (`produce` is called until it gives `Ok(None)`);
//! * a [`Transport`] takes one item and emits none, one or several;
//! * a [`Backend`] consumes items.
//!
//! Each worker of a stage gets its own copy of the value given to the builder (its fields
//! are the user's configuration), runs `setup` once before any item, and `cleanup` once at
//! the end, whatever happened (a stop, a panic, a failed setup is *not* cleaned up: there
//! was nothing set up). A value that is also a [`Message`] can be sent to a worker
//! *process*, which finds how to run it by its type name in the table its program fills
//! ([`StageRunner::frontend`](super::StageRunner::frontend) and friends): processes run
//! registered entry points, as executor workers do.

use std::collections::HashMap;
use std::marker::PhantomData;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::{Arc, OnceLock};

use parking_lot::{Mutex, RwLock};
use serde::{Deserialize, Serialize};

use crate::message::AnyMessage;
use crate::standard::Faulted;
use crate::Message;

/// Which worker this is: given to `setup` and `cleanup`, and what a frontend reads its
/// share from.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Message)]
#[message(name = "pipeline.WorkerInfo")]
pub struct WorkerInfo {
    /// `frontend`, `transport` or `backend`.
    pub stage: String,
    /// This worker's number in its stage, from 0.
    pub index: usize,
    /// How many workers the stage has.
    pub workers: usize,
    /// For a frontend worker that replaces one that ended: how many calls to `produce`
    /// of this share (items and errors) its predecessors made already: skip that many.
    /// 0 otherwise. (Items the stage receives twice anyway are dropped by their place in
    /// the share, so a frontend that resumes as told produces each item once.)
    pub resume_after: u64,
}

impl WorkerInfo {
    /// Whether item number `n` of a sequence belongs to this worker's share, dealing
    /// items round-robin over the stage's workers (`n % workers == index`): the simple way
    /// to give N producers disjoint shares.
    pub fn owns(&self, n: u64) -> bool {
        n % self.workers.max(1) as u64 == self.index as u64
    }
}

/// Produces the pipeline's items. Each frontend worker has its own copy and must produce
/// only its own share (see [`WorkerInfo::owns`]), so nothing is produced twice.
pub trait Frontend: Send + 'static {
    /// What it produces.
    type Item: Message;

    /// Runs once in the worker before the first `produce`. An error ends the pipeline
    /// (its stage cannot run).
    fn setup(&mut self, _worker: &WorkerInfo) -> Result<(), Faulted> {
        Ok(())
    }

    /// The next item (`Ok(Some)`), the end of this worker's share (`Ok(None)`), or an
    /// error, which the stage's [`ErrorPolicy`](super::ErrorPolicy) handles. Called again
    /// after an error.
    fn produce(&mut self) -> Result<Option<Self::Item>, Faulted>;

    /// Runs once when the worker ends, whatever happened (not after a failed `setup`).
    fn cleanup(&mut self, _worker: &WorkerInfo) {}

    /// How many items the whole frontend (all its workers) will produce, when known: the
    /// progress bar's length. Asked once, of the value given to the builder.
    fn length(&self) -> Option<u64> {
        None
    }
}

/// Where a [`Transport`] puts what it makes of an item: none, one or several.
pub struct Emit<T> {
    out: Vec<AnyMessage>,
    _t: PhantomData<fn(T)>,
}

impl<T: Message> Emit<T> {
    fn new() -> Self {
        Emit {
            out: Vec::new(),
            _t: PhantomData,
        }
    }

    /// Sends `item` on to the next stage.
    pub fn send(&mut self, item: T) {
        self.out.push(AnyMessage::new(item));
    }

    /// How many items were emitted for this input so far.
    pub fn len(&self) -> usize {
        self.out.len()
    }

    /// True when nothing was emitted yet.
    pub fn is_empty(&self) -> bool {
        self.out.is_empty()
    }

    #[cfg(test)]
    pub(crate) fn new_for_tests() -> Self {
        Emit::new()
    }

    #[cfg(test)]
    pub(crate) fn taken<U: Message>(&mut self) -> Vec<U> {
        self.out
            .drain(..)
            .map(|m| m.downcast::<U>().expect("the emitted type"))
            .collect()
    }
}

/// Transforms items: one in; none, one or several out. Outputs emitted by a call that
/// then fails are discarded (a retry starts afresh), so nothing goes on twice.
pub trait Transport: Send + 'static {
    /// What it takes.
    type In: Message;
    /// What it emits.
    type Out: Message;

    /// Runs once in the worker before the first item; an error ends the pipeline.
    fn setup(&mut self, _worker: &WorkerInfo) -> Result<(), Faulted> {
        Ok(())
    }

    /// Transforms one item, emitting what goes on.
    fn transport(&mut self, item: &Self::In, out: &mut Emit<Self::Out>) -> Result<(), Faulted>;

    /// Runs once when the worker ends, whatever happened (not after a failed `setup`).
    fn cleanup(&mut self, _worker: &WorkerInfo) {}
}

/// Consumes items.
pub trait Backend: Send + 'static {
    /// What it takes.
    type In: Message;

    /// Runs once in the worker before the first item; an error ends the pipeline.
    fn setup(&mut self, _worker: &WorkerInfo) -> Result<(), Faulted> {
        Ok(())
    }

    /// Consumes one item.
    fn process(&mut self, item: &Self::In) -> Result<(), Faulted>;

    /// Runs once when the worker ends, whatever happened (not after a failed `setup`).
    fn cleanup(&mut self, _worker: &WorkerInfo) {}
}

/// A worker's part, whatever its role and types: what [`StageRunner`](super::StageRunner)
/// runs. Items travel as [`AnyMessage`]s and are checked against the part's types here.
pub(crate) trait Part: Send + 'static {
    fn setup(&mut self, worker: &WorkerInfo) -> Result<(), Faulted>;
    fn cleanup(&mut self, worker: &WorkerInfo);
    /// Transport or backend: handle one item, pushing outputs to `out`.
    fn work(&mut self, item: &AnyMessage, out: &mut Vec<AnyMessage>) -> Result<(), Faulted>;
    /// Frontend: the next item.
    fn produce(&mut self) -> Result<Option<AnyMessage>, Faulted>;
}

fn not_a(role: &str, what: &str) -> Faulted {
    Faulted::new(format!("a {role} was asked to {what}"))
}

fn mismatched<T: Message>(item: &AnyMessage) -> Faulted {
    Faulted::new(format!(
        "this stage takes `{}` but was given a `{}`",
        T::type_name(),
        item.type_name()
    ))
}

pub(crate) struct AsFrontend<F>(pub(crate) F);
pub(crate) struct AsTransport<T>(pub(crate) T);
pub(crate) struct AsBackend<B>(pub(crate) B);

impl<F: Frontend> Part for AsFrontend<F> {
    fn setup(&mut self, w: &WorkerInfo) -> Result<(), Faulted> {
        self.0.setup(w)
    }
    fn cleanup(&mut self, w: &WorkerInfo) {
        self.0.cleanup(w)
    }
    fn work(&mut self, _: &AnyMessage, _: &mut Vec<AnyMessage>) -> Result<(), Faulted> {
        Err(not_a("frontend", "transform an item"))
    }
    fn produce(&mut self) -> Result<Option<AnyMessage>, Faulted> {
        Ok(self.0.produce()?.map(AnyMessage::new))
    }
}

impl<T: Transport> Part for AsTransport<T> {
    fn setup(&mut self, w: &WorkerInfo) -> Result<(), Faulted> {
        self.0.setup(w)
    }
    fn cleanup(&mut self, w: &WorkerInfo) {
        self.0.cleanup(w)
    }
    fn work(&mut self, item: &AnyMessage, out: &mut Vec<AnyMessage>) -> Result<(), Faulted> {
        let typed = item
            .downcast_ref::<T::In>()
            .ok_or_else(|| mismatched::<T::In>(item))?;
        let mut emit = Emit::<T::Out>::new();
        std::mem::swap(&mut emit.out, out);
        let r = self.0.transport(typed, &mut emit);
        std::mem::swap(&mut emit.out, out);
        r
    }
    fn produce(&mut self) -> Result<Option<AnyMessage>, Faulted> {
        Err(not_a("transport", "produce"))
    }
}

impl<B: Backend> Part for AsBackend<B> {
    fn setup(&mut self, w: &WorkerInfo) -> Result<(), Faulted> {
        self.0.setup(w)
    }
    fn cleanup(&mut self, w: &WorkerInfo) {
        self.0.cleanup(w)
    }
    fn work(&mut self, item: &AnyMessage, _: &mut Vec<AnyMessage>) -> Result<(), Faulted> {
        let typed = item
            .downcast_ref::<B::In>()
            .ok_or_else(|| mismatched::<B::In>(item))?;
        self.0.process(typed)
    }
    fn produce(&mut self) -> Result<Option<AnyMessage>, Faulted> {
        Err(not_a("backend", "produce"))
    }
}

/// A frontend over an iterator (one worker, in this process).
pub(crate) struct IterFrontend<I>(pub(crate) Arc<Mutex<Option<I>>>);

impl<I> Part for IterFrontend<I>
where
    I: Iterator + Send + 'static,
    I::Item: Message,
{
    fn setup(&mut self, _: &WorkerInfo) -> Result<(), Faulted> {
        if self.0.lock().is_none() {
            return Err(Faulted::new(
                "an iterator frontend runs once, on one worker (its items were taken)",
            ));
        }
        Ok(())
    }
    fn cleanup(&mut self, _: &WorkerInfo) {}
    fn work(&mut self, _: &AnyMessage, _: &mut Vec<AnyMessage>) -> Result<(), Faulted> {
        Err(not_a("frontend", "transform an item"))
    }
    fn produce(&mut self) -> Result<Option<AnyMessage>, Faulted> {
        let mut guard = self.0.lock();
        let next = guard.as_mut().and_then(Iterator::next);
        if next.is_none() {
            *guard = None;
        }
        Ok(next.map(AnyMessage::new))
    }
}

/// A transport or backend written as a closure (workers in this process).
pub(crate) struct FnPart<F>(pub(crate) F);

impl<F> Part for FnPart<F>
where
    F: FnMut(&AnyMessage, &mut Vec<AnyMessage>) -> Result<(), Faulted> + Send + 'static,
{
    fn setup(&mut self, _: &WorkerInfo) -> Result<(), Faulted> {
        Ok(())
    }
    fn cleanup(&mut self, _: &WorkerInfo) {}
    fn work(&mut self, item: &AnyMessage, out: &mut Vec<AnyMessage>) -> Result<(), Faulted> {
        (self.0)(item, out)
    }
    fn produce(&mut self) -> Result<Option<AnyMessage>, Faulted> {
        Err(not_a("closure stage", "produce"))
    }
}

/// Turns a closure over typed items into one over [`AnyMessage`]s.
pub(crate) fn typed_fn<In: Message, Out: Message>(
    mut f: impl FnMut(&In, &mut Emit<Out>) -> Result<(), Faulted> + Send + 'static,
) -> impl FnMut(&AnyMessage, &mut Vec<AnyMessage>) -> Result<(), Faulted> + Send + 'static {
    move |item, out| {
        let typed = item
            .downcast_ref::<In>()
            .ok_or_else(|| mismatched::<In>(item))?;
        let mut emit = Emit::<Out>::new();
        std::mem::swap(&mut emit.out, out);
        let r = f(typed, &mut emit);
        std::mem::swap(&mut emit.out, out);
        r
    }
}

/// Runs `f`, turning a panic into a fault that names it.
pub(crate) fn caught<T>(what: &str, f: impl FnOnce() -> Result<T, Faulted>) -> Result<T, Faulted> {
    match catch_unwind(AssertUnwindSafe(f)) {
        Ok(r) => r,
        Err(payload) => {
            let text = payload
                .downcast_ref::<&str>()
                .map(|s| s.to_string())
                .or_else(|| payload.downcast_ref::<String>().cloned())
                .unwrap_or_else(|| "a non-string panic".to_string());
            Err(Faulted::new(format!("{what} panicked: {text}")))
        }
    }
}

/// How a process builds a part from the message that describes it.
type Builder = fn(AnyMessage) -> Result<Box<dyn Part>, Faulted>;

fn builders() -> &'static RwLock<HashMap<&'static str, Builder>> {
    static BUILDERS: OnceLock<RwLock<HashMap<&'static str, Builder>>> = OnceLock::new();
    BUILDERS.get_or_init(Default::default)
}

fn register_builder<T: Message>(build: Builder) {
    crate::message::register::<T>();
    let name = T::type_name();
    if !builders().read().contains_key(name) {
        builders().write().insert(name, build);
    }
}

fn build_as<T: Message, P: Part>(
    wrap: fn(T) -> P,
) -> impl Fn(AnyMessage) -> Result<Box<dyn Part>, Faulted> {
    move |m| match m.downcast::<T>() {
        Ok(t) => Ok(Box::new(wrap(t)) as Box<dyn Part>),
        Err(other) => Err(mismatched::<T>(&other)),
    }
}

/// Makes this process able to run frontend workers of type `F` sent from another process.
pub fn register_frontend<F: Frontend + Message>() {
    register_builder::<F>(|m| build_as::<F, _>(AsFrontend)(m));
}

/// Makes this process able to run transport workers of type `T` sent from another process.
pub fn register_transport<T: Transport + Message>() {
    register_builder::<T>(|m| build_as::<T, _>(AsTransport)(m));
    crate::message::register::<T::In>();
    crate::message::register::<T::Out>();
}

/// Makes this process able to run backend workers of type `B` sent from another process.
pub fn register_backend<B: Backend + Message>() {
    register_builder::<B>(|m| build_as::<B, _>(AsBackend)(m));
    crate::message::register::<B::In>();
}

/// Whether this process can build parts of the type named `name`.
pub(crate) fn is_registered(name: &str) -> bool {
    builders().read().contains_key(name)
}

/// The fault of a worker asked to run a part type its program does not register.
pub(crate) fn unregistered(name: &str) -> Faulted {
    Faulted::new(format!(
        "this process cannot run the pipeline stage `{name}`: register it in the worker \
         program (`StageRunner::new().transport::<{name}>()`, `.frontend`, `.backend`)"
    ))
}

/// Builds the part a worker process was sent, by its type name.
pub(crate) fn build_part(m: AnyMessage) -> Result<Box<dyn Part>, Faulted> {
    let name = m.type_name();
    match builders().read().get(name).copied() {
        Some(build) => build(m),
        None => Err(unregistered(name)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, Clone, Serialize, Deserialize)]
    struct Split;
    impl Message for Split {
        fn type_name() -> &'static str {
            "test.pipeline.Split"
        }
    }
    impl Transport for Split {
        type In = String;
        type Out = String;
        fn transport(&mut self, item: &String, out: &mut Emit<String>) -> Result<(), Faulted> {
            if item == "boom" {
                panic!("boom");
            }
            for w in item.split_whitespace() {
                out.send(w.to_string());
            }
            Ok(())
        }
    }

    #[test]
    fn parts_check_their_types_and_a_registered_part_is_built_by_name() {
        let mut p: Box<dyn Part> = Box::new(AsTransport(Split));
        let mut out = Vec::new();
        p.work(&AnyMessage::new("a b c".to_string()), &mut out)
            .unwrap();
        assert_eq!(out.len(), 3);
        let e = p.work(&AnyMessage::new(3u32), &mut out).unwrap_err();
        assert!(e.reason.contains("takes `string`"), "{e}");
        let e = caught("the transport", || {
            p.work(&AnyMessage::new("boom".to_string()), &mut out)
        })
        .unwrap_err();
        assert!(e.reason.contains("panicked: boom"), "{e}");
        assert!(p.produce().is_err());

        let e = build_part(AnyMessage::new(Split)).err().unwrap();
        assert!(e.reason.contains("register it"), "{e}");
        register_transport::<Split>();
        assert!(build_part(AnyMessage::new(Split)).is_ok());
    }

    #[test]
    fn shares_are_dealt_round_robin() {
        let w = |index| WorkerInfo {
            stage: "frontend".into(),
            index,
            workers: 3,
            resume_after: 0,
        };
        let owners: Vec<usize> = (0..9u64)
            .map(|n| (0..3).find(|&i| w(i).owns(n)).unwrap())
            .collect();
        assert_eq!(owners, [0, 1, 2, 0, 1, 2, 0, 1, 2]);
    }
}
