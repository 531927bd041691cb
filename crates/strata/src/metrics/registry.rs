//! The process-wide list of what has figures, and [`gather`], which reads it.

use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use super::figures::Figures;
use crate::message::{AnyMessage, Message};
use crate::object::AsyncContext;
use crate::Address;

/// How long [`gather`] waits for the objects it asks; one that has not answered by then
/// is left out of that scrape.
pub const ANSWER: Duration = Duration::from_secs(1);

/// The labels every sample of one registration carries (`object="<5@1a2b>"`, ...).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Labels(Vec<(String, String)>);

impl Labels {
    /// Labels from `(name, value)` pairs.
    pub fn new(pairs: &[(&str, &str)]) -> Self {
        Labels(
            pairs
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
        )
    }

    /// One label: `object` with the object's address.
    pub fn object(address: Address) -> Self {
        Labels::new(&[("object", &address.to_string())])
    }

    /// The pairs, borrowed (what [`Figures::counter`] and [`Figures::gauge`] take).
    pub fn pairs(&self) -> Vec<(&str, &str)> {
        self.0
            .iter()
            .map(|(k, v)| (k.as_str(), v.as_str()))
            .collect()
    }

    /// The pairs with one more.
    pub fn and<'a>(&'a self, name: &'a str, value: &'a str) -> Vec<(&'a str, &'a str)> {
        let mut pairs = self.pairs();
        pairs.push((name, value));
        pairs
    }
}

type Read = Arc<dyn Fn(&Labels, &mut Figures) + Send + Sync>;
type ReadAnswer = Arc<dyn Fn(&AnyMessage, &Labels, &mut Figures) + Send + Sync>;

#[derive(Clone)]
enum Source {
    /// Counters kept in shared memory: read in place.
    Read(Read),
    /// An object that answers a question with its figures.
    Ask {
        address: Address,
        question: fn() -> AnyMessage,
        read: ReadAnswer,
    },
}

#[derive(Clone)]
struct Entry {
    labels: Arc<Labels>,
    source: Source,
}

static ENTRIES: Mutex<BTreeMap<u64, Entry>> = Mutex::new(BTreeMap::new());
static NEXT: AtomicU64 = AtomicU64::new(1);

fn entries() -> MutexGuard<'static, BTreeMap<u64, Entry>> {
    // A reader that panicked leaves nothing half-done in the map: keep using it.
    ENTRIES
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// One entry in the process's list of figures; dropping it removes the entry, so its
/// series leave `/metrics` with it. Objects keep theirs in their state.
#[must_use = "the figures are listed only while the registration is kept"]
pub struct Registration {
    id: u64,
}

impl std::fmt::Debug for Registration {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Registration({})", self.id)
    }
}

impl Registration {
    fn add(labels: Labels, source: Source) -> Self {
        let id = NEXT.fetch_add(1, Ordering::Relaxed);
        entries().insert(
            id,
            Entry {
                labels: Arc::new(labels),
                source,
            },
        );
        Registration { id }
    }

    /// Lists figures that `read` adds from counters it can reach without asking anyone
    /// (atomics shared with an object); called once per scrape, so it must be quick and
    /// must not block.
    pub fn read(
        labels: Labels,
        read: impl Fn(&Labels, &mut Figures) + Send + Sync + 'static,
    ) -> Self {
        Self::add(labels, Source::Read(Arc::new(read)))
    }

    /// Lists figures that the object at `address` tells: each scrape sends it a `Q` (its
    /// default) and, when its `R` answer comes within [`ANSWER`], `read` adds figures
    /// from it. Nothing is sent between scrapes.
    pub fn ask<Q: Message + Default, R: Message>(
        address: Address,
        labels: Labels,
        read: fn(&R, &Labels, &mut Figures),
    ) -> Self {
        Self::add(
            labels,
            Source::Ask {
                address,
                question: || AnyMessage::new(Q::default()),
                read: Arc::new(
                    move |answer: &AnyMessage, labels: &Labels, f: &mut Figures| {
                        if let Some(r) = answer.downcast_ref::<R>() {
                            read(r, labels, f);
                        }
                    },
                ),
            },
        )
    }
}

impl Drop for Registration {
    fn drop(&mut self) {
        entries().remove(&self.id);
    }
}

/// The figures of this process now: the runtime's, every entry read, and every object
/// asked (all at once; each answer bounded by [`ANSWER`]). Families come sorted by name.
pub async fn gather() -> Figures {
    let mut figures = Figures::new();
    super::sources::runtime(&mut figures);
    let listed: Vec<Entry> = entries().values().cloned().collect();
    let mut asks = Vec::new();
    for entry in listed {
        match entry.source {
            Source::Read(read) => read(&entry.labels, &mut figures),
            Source::Ask {
                address,
                question,
                read,
            } => asks.push((address, question, entry.labels, read)),
        }
    }
    if !asks.is_empty() {
        let mut cx = AsyncContext::attach();
        let mut waiting: HashMap<Address, (Arc<Labels>, ReadAnswer)> = HashMap::new();
        for (address, question, labels, read) in asks {
            match cx.try_send_any(address, question()) {
                Ok(()) => {
                    waiting.insert(address, (labels, read));
                }
                Err(e) => {
                    tracing::debug!(target: "strata::metrics", object = %address, error = %e, "left out of this scrape")
                }
            }
        }
        let deadline = Instant::now() + ANSWER;
        while !waiting.is_empty() {
            let left = deadline.saturating_duration_since(Instant::now());
            let Some(answer) = cx.recv_timeout(left).await else {
                break;
            };
            if let Some((labels, read)) = waiting.remove(&answer.sender()) {
                read(answer.message(), &labels, &mut figures);
            }
        }
        for address in waiting.keys() {
            tracing::debug!(target: "strata::metrics", object = %address,
                "did not tell its figures within {ANSWER:?}: left out of this scrape");
        }
    }
    figures.sort();
    figures
}
