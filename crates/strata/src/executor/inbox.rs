//! The submissions a handle has made and its executor has not taken yet.
//!
//! An [`ExecutorHandle`](super::ExecutorHandle) that started its executor submits into
//! an *inbox* the two share instead of sending one [`Submit`] message per job: a push
//! under a lock, with no envelope, no boxed message and no wake-up. Only a push that
//! finds the inbox empty also sends the executor a `Submitted` notice; the executor, when
//! it handles it, takes everything queued since, in order. So a handle submitting a
//! stream of jobs costs the executor one message per *batch* of them — what arrived
//! while it was busy — and nothing is held back: the first job of a batch tells the
//! executor at once.
//!
//! It is the handle's side of the mailbox, for submissions only, as a future's slot is
//! the executor's side of the answer. Two rules keep every future resolving and the
//! order of the handle's messages:
//!
//! * whenever the inbox holds a submission, a notice is on its way or the executor is
//!   about to take it (the push that filled an empty inbox sent one), and the executor
//!   also takes the inbox before it handles any other message from the handle
//!   (`Cancel`, `Shutdown`, statistics), so those see every job submitted before them;
//! * the executor *closes* the inbox as it ends: what is left is dropped, and each
//!   dropped submission's slot answers its future `Rejected`; a push into a closed inbox
//!   is refused the same way.
//!
//! [`Submit`]: super::Submit

use parking_lot::Mutex;
use serde::{Deserialize, Serialize};

use super::messages::Submit;
use crate::{Address, Message};

/// Submissions from one handle, oldest first; see the module docs.
pub(crate) struct Inbox {
    /// The handle's address: who submitted (what a `Cancel` from it names).
    owner: Address,
    state: Mutex<State>,
}

#[derive(Default)]
struct State {
    submits: Vec<Submit>,
    closed: bool,
}

/// What [`Inbox::push`] did.
pub(crate) enum Pushed {
    /// The inbox was empty: tell the executor.
    First,
    /// More for a batch the executor has been told of.
    More,
    /// The executor has ended: the submission is handed back.
    Closed(Submit),
}

impl Inbox {
    /// An empty inbox for the handle at `owner`.
    pub(crate) fn new(owner: Address) -> Self {
        Inbox {
            owner,
            state: Mutex::new(State::default()),
        }
    }

    /// The handle that submits here.
    pub(crate) fn owner(&self) -> Address {
        self.owner
    }

    /// Adds a submission, last.
    pub(crate) fn push(&self, submit: Submit) -> Pushed {
        let mut state = self.state.lock();
        if state.closed {
            return Pushed::Closed(submit);
        }
        state.submits.push(submit);
        if state.submits.len() == 1 {
            Pushed::First
        } else {
            Pushed::More
        }
    }

    /// Takes every submission, oldest first (the executor's side).
    pub(crate) fn take(&self) -> Vec<Submit> {
        std::mem::take(&mut self.state.lock().submits)
    }

    /// Refuses every later push and gives back what was left (the executor ended).
    pub(crate) fn close(&self) -> Vec<Submit> {
        let mut state = self.state.lock();
        state.closed = true;
        std::mem::take(&mut state.submits)
    }
}

/// The handle's notice that its inbox holds submissions.
#[derive(Debug, Clone, Copy, Serialize, Deserialize, Message)]
#[message(name = "executor.Submitted")]
pub(crate) struct Submitted;

#[cfg(test)]
mod tests {
    use super::*;
    use crate::executor::future::{Slot, SlotGuard};
    use crate::executor::{JobError, JobFuture};

    fn submit(tag: u64) -> (Submit, JobFuture<u8>) {
        let slot = Slot::new::<u8>();
        let mut s = Submit::closure(tag, || 1u8);
        s.slot = Some(SlotGuard(slot.clone()));
        (s, JobFuture::new(slot, None))
    }

    #[test]
    fn only_the_first_push_asks_for_a_notice_and_a_closed_inbox_refuses() {
        let inbox = Inbox::new(Address::from_parts(1, 2));
        let (a, _fa) = submit(1);
        let (b, _fb) = submit(2);
        assert!(matches!(inbox.push(a), Pushed::First));
        assert!(matches!(inbox.push(b), Pushed::More));
        let taken: Vec<u64> = inbox.take().iter().map(|s| s.tag).collect();
        assert_eq!(taken, [1, 2]);
        let (c, fc) = submit(3);
        assert!(matches!(inbox.push(c), Pushed::First));
        // The executor ends: what is left is dropped and its future rejected.
        drop(inbox.close());
        assert!(matches!(fc.wait(), Err(JobError::Rejected(_))));
        let (d, fd) = submit(4);
        match inbox.push(d) {
            Pushed::Closed(d) => drop(d),
            _ => panic!("a closed inbox takes nothing"),
        }
        assert!(matches!(fd.wait(), Err(JobError::Rejected(_))));
    }
}
