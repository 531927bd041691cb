//! The bounded first-in, first-out queue of items waiting for a worker.
//!
//! A spool queues a request when every worker is busy; the oldest goes to the next worker
//! that comes free. The queue knows nothing of requests or workers (an item is any `T`),
//! so other pools reuse it: the executor queues its jobs here (`crate::executor`).

use std::collections::VecDeque;

/// Items waiting for a worker, oldest first, at most `limit` of them (`None`: no limit).
pub(crate) struct Queue<T> {
    items: VecDeque<T>,
    limit: Option<usize>,
}

impl<T> Queue<T> {
    /// An empty queue holding at most `limit` items (`None`: no limit). Allocates nothing
    /// until the first push.
    pub(crate) fn new(limit: Option<usize>) -> Self {
        Queue {
            items: VecDeque::new(),
            limit,
        }
    }

    /// Changes the limit; items already queued stay, even above it.
    pub(crate) fn set_limit(&mut self, limit: Option<usize>) {
        self.limit = limit;
    }

    /// The most items the queue holds (`None`: no limit).
    pub(crate) fn limit(&self) -> Option<usize> {
        self.limit
    }

    /// Items waiting now.
    pub(crate) fn len(&self) -> usize {
        self.items.len()
    }

    /// Whether nothing waits.
    pub(crate) fn is_empty(&self) -> bool {
        self.items.is_empty()
    }

    /// Whether one more item fits.
    pub(crate) fn has_room(&self) -> bool {
        self.limit.is_none_or(|limit| self.items.len() < limit)
    }

    /// Queues `item` last, or hands it back when the queue is full.
    pub(crate) fn push(&mut self, item: T) -> Result<(), T> {
        if !self.has_room() {
            return Err(item);
        }
        self.items.push_back(item);
        Ok(())
    }

    /// Takes the oldest item.
    pub(crate) fn pop(&mut self) -> Option<T> {
        self.items.pop_front()
    }

    /// Puts an item back at the front, ahead of everything (it was admitted before them),
    /// even above the limit.
    pub(crate) fn push_front(&mut self, item: T) {
        self.items.push_front(item);
    }

    /// Takes out the oldest item for which `matches` holds (a cancelled job, say).
    pub(crate) fn remove_first(&mut self, matches: impl FnMut(&T) -> bool) -> Option<T> {
        let i = self.items.iter().position(matches)?;
        self.items.remove(i)
    }

    /// Takes every item, oldest first.
    pub(crate) fn drain(&mut self) -> impl Iterator<Item = T> + '_ {
        self.items.drain(..)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn items_come_out_oldest_first() {
        let mut q = Queue::new(None);
        assert!(q.is_empty() && q.pop().is_none());
        for i in 0..5 {
            q.push(i).unwrap();
        }
        assert_eq!(q.len(), 5);
        assert_eq!(q.pop(), Some(0));
        q.push(5).unwrap();
        let rest: Vec<i32> = q.drain().collect();
        assert_eq!(rest, [1, 2, 3, 4, 5]);
        assert!(q.is_empty());
    }

    #[test]
    fn one_item_can_be_taken_out_of_the_middle() {
        let mut q = Queue::new(None);
        for i in 0..5 {
            q.push(i).unwrap();
        }
        assert_eq!(q.remove_first(|&i| i % 2 == 1), Some(1));
        assert_eq!(q.remove_first(|&i| i == 9), None);
        assert_eq!(q.drain().collect::<Vec<_>>(), [0, 2, 3, 4]);
    }

    #[test]
    fn a_full_queue_hands_the_item_back() {
        let mut q = Queue::new(Some(2));
        assert_eq!(q.limit(), Some(2));
        assert_eq!(q.push("a"), Ok(()));
        assert_eq!(q.push("b"), Ok(()));
        assert!(!q.has_room());
        assert_eq!(q.push("c"), Err("c"));
        assert_eq!(q.len(), 2);
        assert_eq!(q.pop(), Some("a"));
        assert!(q.has_room());
        assert_eq!(q.push("c"), Ok(()));
        assert_eq!(q.drain().collect::<Vec<_>>(), ["b", "c"]);
    }

    #[test]
    fn a_zero_limit_holds_nothing_and_no_limit_holds_everything() {
        let mut q = Queue::new(Some(0));
        assert_eq!(q.push(1), Err(1));
        q.set_limit(None);
        for i in 0..10_000 {
            q.push(i).unwrap();
        }
        assert!(q.has_room());
        // Lowering the limit keeps what is queued, and refuses more.
        q.set_limit(Some(10));
        assert_eq!(q.len(), 10_000);
        assert_eq!(q.push(0), Err(0));
    }
}
