//! Jobs waiting out a delay (`submit_after`), earliest due first.
//!
//! One timer serves them all: the executor sets it for the earliest due time and, when it
//! fires, moves every job that is due to admission. A job can be taken out before it is
//! due (cancelled). Pure: the caller says what time it is.

use std::collections::BTreeMap;
use std::time::Instant;

/// Items with a due time; ties keep the order they came in.
pub(crate) struct Delayed<T> {
    items: BTreeMap<(Instant, u64), T>,
    next: u64,
}

impl<T> Default for Delayed<T> {
    fn default() -> Self {
        Delayed {
            items: BTreeMap::new(),
            next: 0,
        }
    }
}

impl<T> Delayed<T> {
    /// Adds `item`, due at `due`.
    pub(crate) fn push(&mut self, due: Instant, item: T) {
        self.next += 1;
        self.items.insert((due, self.next), item);
    }

    /// The earliest due time.
    pub(crate) fn next_due(&self) -> Option<Instant> {
        self.items.keys().next().map(|(due, _)| *due)
    }

    /// Takes the earliest item if it is due at `now`.
    pub(crate) fn pop_due(&mut self, now: Instant) -> Option<T> {
        let (&(due, seq), _) = self.items.iter().next()?;
        if due > now {
            return None;
        }
        self.items.remove(&(due, seq))
    }

    /// Takes out the first item (earliest due) for which `matches` holds.
    pub(crate) fn remove_first(&mut self, mut matches: impl FnMut(&T) -> bool) -> Option<T> {
        let key = *self.items.iter().find(|(_, v)| matches(v))?.0;
        self.items.remove(&key)
    }

    /// Takes every item, earliest due first.
    pub(crate) fn drain(&mut self) -> impl Iterator<Item = T> {
        std::mem::take(&mut self.items).into_values()
    }

    /// Items waiting.
    pub(crate) fn len(&self) -> usize {
        self.items.len()
    }

    /// Whether none wait.
    pub(crate) fn is_empty(&self) -> bool {
        self.items.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn items_come_out_when_due_earliest_first_and_ties_in_order() {
        let t0 = Instant::now();
        let ms = Duration::from_millis(1);
        let mut d = Delayed::default();
        assert!(d.is_empty() && d.next_due().is_none());
        d.push(t0 + 5 * ms, "late");
        d.push(t0 + ms, "early");
        d.push(t0 + ms, "early too");
        assert_eq!(d.next_due(), Some(t0 + ms));
        assert_eq!(d.pop_due(t0), None);
        assert_eq!(d.pop_due(t0 + 2 * ms), Some("early"));
        assert_eq!(d.pop_due(t0 + 2 * ms), Some("early too"));
        assert_eq!(d.pop_due(t0 + 2 * ms), None);
        assert_eq!(d.len(), 1);
        assert_eq!(d.remove_first(|s| *s == "late"), Some("late"));
        d.push(t0, "a");
        d.push(t0, "b");
        assert_eq!(d.drain().collect::<Vec<_>>(), ["a", "b"]);
    }
}
