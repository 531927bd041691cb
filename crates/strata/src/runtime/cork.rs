//! Corking: writes to links deferred to the end of an object's turn.
//!
//! A message for another node is queued on its link and normally written at once by the
//! sending thread. While an object on the shared runtime takes a turn — one poll of an
//! async object or machine — its thread is *corked*: links that get messages register
//! here instead, and are flushed together when the turn ends. A handler that sends a
//! thousand messages thus makes one large write, not a thousand small ones, and a handler
//! that sends one message still has it written before its thread moves on. Objects on
//! threads of their own are not corked: a long handler's messages leave as it sends them.

use std::cell::RefCell;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

/// Something with queued output to write when the turn ends (a link).
pub(crate) trait Flush: Send + Sync {
    /// Writes what is queued (or hands it to a task that will).
    fn flush(&self);
}

thread_local! {
    static DEFERRED: RefCell<Option<Vec<Arc<dyn Flush>>>> = const { RefCell::new(None) };
}

/// Corks the current thread until dropped (nested corks are no-ops); dropping it flushes
/// what was deferred, also when the turn panicked.
pub(crate) struct Cork {
    outer: bool,
}

impl Cork {
    pub(crate) fn new() -> Cork {
        let outer = DEFERRED.with(|d| {
            let mut d = d.borrow_mut();
            if d.is_some() {
                false
            } else {
                *d = Some(Vec::new());
                true
            }
        });
        Cork { outer }
    }
}

impl Drop for Cork {
    fn drop(&mut self) {
        if !self.outer {
            return;
        }
        // Flushing may send (a link reporting an undeliverable message), so the list is
        // taken first: nothing flushed from here is deferred again.
        let deferred = DEFERRED.with(|d| d.borrow_mut().take()).unwrap_or_default();
        for f in deferred {
            f.flush();
        }
    }
}

/// Defers `f` to the end of the current turn; false when the thread is not corked (then
/// the caller flushes now). `f` is cloned only the first time a turn defers it.
pub(crate) fn defer<F: Flush + 'static>(f: &Arc<F>) -> bool {
    let at = Arc::as_ptr(f).cast::<()>();
    DEFERRED.with(|d| match d.borrow_mut().as_mut() {
        Some(list) => {
            if !list.iter().any(|g| Arc::as_ptr(g).cast::<()>() == at) {
                list.push(f.clone());
            }
            true
        }
        None => false,
    })
}

/// A future whose every poll is one corked turn.
pub(crate) struct Corked<F>(pub(crate) F);

impl<F: Future> Future for Corked<F> {
    type Output = F::Output;
    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<F::Output> {
        let _cork = Cork::new();
        // SAFETY: structural pinning of the only field; it is never moved out.
        unsafe { self.map_unchecked_mut(|c| &mut c.0) }.poll(cx)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicUsize, Ordering};

    struct Counter(AtomicUsize);
    impl Flush for Counter {
        fn flush(&self) {
            self.0.fetch_add(1, Ordering::SeqCst);
        }
    }

    #[test]
    fn a_cork_flushes_each_deferred_link_once_when_the_turn_ends() {
        let c = Arc::new(Counter(AtomicUsize::new(0)));
        let f = c.clone();
        assert!(!defer(&f), "not corked: the caller writes now");
        {
            let _outer = Cork::new();
            {
                let _inner = Cork::new();
                assert!(defer(&f));
                assert!(defer(&f));
            }
            assert_eq!(
                c.0.load(Ordering::SeqCst),
                0,
                "an inner cork does not flush"
            );
        }
        assert_eq!(c.0.load(Ordering::SeqCst), 1);
        assert!(!defer(&f), "uncorked again");
    }

    #[test]
    fn a_panicking_turn_still_flushes() {
        let c = Arc::new(Counter(AtomicUsize::new(0)));
        let f = c.clone();
        let r = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            let _cork = Cork::new();
            defer(&f);
            panic!("the handler failed");
        }));
        assert!(r.is_err());
        assert_eq!(c.0.load(Ordering::SeqCst), 1);
        assert!(!defer(&f));
    }
}
