//! Who works for a spool, and who is free.
//!
//! A pool's members are of two origins: *made* by its recipe (its children: it stops them
//! when they leave and replaces them when they end) or *joined* from elsewhere with
//! [`JoinSpool`](super::JoinSpool) (they belong to someone else: the pool only stops
//! sending to them). A member is idle or busy with one job; idle members wait in a
//! round-robin list, so work goes to the one that has been idle longest. A member asked to
//! leave while busy leaves when its job is done.
//!
//! This is bookkeeping only, with no messages sent and no clock read: the spool does those.
//! What a job is (`J`) is the pool's business (the spool's is the client waiting for the
//! answer and when the request arrived; the executor's is the job's future), so the
//! executor (`crate::executor`) reuses it. The spool hands work to the member idle
//! longest (round-robin); the executor to the one idle *shortest*
//! ([`next_idle_newest`](Workers::next_idle_newest)), so that under a light load the same
//! few stay busy and the rest stay idle long enough to be let go.

use std::collections::VecDeque;

use crate::object::AddressMap;
use crate::Address;

/// A pool's members: each one's origin and job, and the idle ones in round-robin order.
pub(crate) struct Workers<J> {
    members: AddressMap<Member<J>>,
    /// Idle members, longest idle first. Every address here is a member without a job,
    /// listed once.
    idle: VecDeque<Address>,
}

struct Member<J> {
    /// Made by the pool's recipe (a child), rather than joined.
    made: bool,
    /// The job it is doing; `None` when idle.
    job: Option<J>,
    /// Asked to leave while busy: it leaves when its job is done.
    leaving: bool,
}

/// What a message from `sender` is, as far as membership goes.
pub(crate) enum Origin<J> {
    /// The answer of a busy member: its job, now done. The member is idle again (last in
    /// the round-robin list), or gone if it was leaving.
    Answer(J),
    /// A member that has no job: nothing to answer.
    IdleMember,
    /// Not a member: a client.
    Stranger,
}

/// What a member that ended leaves behind (it is no longer a member).
pub(crate) struct Ended<J> {
    /// The job it was doing, which will now get no answer from it.
    pub(crate) job: Option<J>,
    /// Whether it had been asked to leave (so it is not to be replaced).
    pub(crate) leaving: bool,
}

/// What asking a worker to leave did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Leave {
    /// It was idle and is no longer a member; `made`: the pool's own child (to be stopped).
    Now { made: bool },
    /// It is busy: it leaves when its job is done.
    AfterItsJob,
    /// It was not a member.
    NotAMember,
}

impl<J> Default for Workers<J> {
    fn default() -> Self {
        Workers {
            members: AddressMap::default(),
            idle: VecDeque::new(),
        }
    }
}

impl<J> Workers<J> {
    /// Adds a worker the pool just made, idle (last in the round-robin list).
    pub(crate) fn add_made(&mut self, worker: Address) {
        self.members.insert(
            worker,
            Member {
                made: true,
                job: None,
                leaving: false,
            },
        );
        self.idle.push_back(worker);
    }

    /// Adds a worker from elsewhere, idle; a member already (whatever it is doing) stays
    /// as it is.
    pub(crate) fn join(&mut self, worker: Address) {
        self.members.entry(worker).or_insert_with(|| {
            self.idle.push_back(worker);
            Member {
                made: false,
                job: None,
                leaving: false,
            }
        });
    }

    /// Takes the member idle longest off the idle list (give it a job with
    /// [`assign`](Self::assign)).
    pub(crate) fn next_idle(&mut self) -> Option<Address> {
        self.idle.pop_front()
    }

    /// Takes the member idle *shortest* off the idle list (the last to come free): a pool
    /// that shrinks gives work to warm members and lets the others age.
    pub(crate) fn next_idle_newest(&mut self) -> Option<Address> {
        self.idle.pop_back()
    }

    /// The idle members, longest idle first.
    pub(crate) fn idle(&self) -> impl Iterator<Item = Address> + '_ {
        self.idle.iter().copied()
    }

    /// Whether some member is idle.
    pub(crate) fn has_idle(&self) -> bool {
        !self.idle.is_empty()
    }

    /// Records that `worker` (taken with [`next_idle`](Self::next_idle)) now does `job`.
    pub(crate) fn assign(&mut self, worker: Address, job: J) {
        if let Some(m) = self.members.get_mut(&worker) {
            m.job = Some(job);
        }
    }

    /// A worker taken with [`next_idle`](Self::next_idle) could not be given its job. If
    /// it is `gone` (no such object, no route) and was joined, it stops being a member; a
    /// made one stays until it ends (its end is on the way). Either way it is not idle
    /// again.
    pub(crate) fn refused(&mut self, worker: Address, gone: bool) {
        if gone && self.members.get(&worker).is_some_and(|m| !m.made) {
            self.members.remove(&worker);
        }
    }

    /// Classifies a message from `sender`; see [`Origin`].
    pub(crate) fn message_from(&mut self, sender: Address) -> Origin<J> {
        let Some(member) = self.members.get_mut(&sender) else {
            return Origin::Stranger;
        };
        let Some(job) = member.job.take() else {
            return Origin::IdleMember;
        };
        if member.leaving {
            self.members.remove(&sender);
        } else {
            self.idle.push_back(sender);
        }
        Origin::Answer(job)
    }

    /// A member ended: it is no longer one. `None` if it was not a member.
    pub(crate) fn ended(&mut self, worker: Address) -> Option<Ended<J>> {
        let member = self.members.remove(&worker)?;
        self.idle.retain(|a| *a != worker);
        Some(Ended {
            job: member.job,
            leaving: member.leaving,
        })
    }

    /// Asks `worker` to leave: at once if idle, after its job if busy.
    pub(crate) fn leave(&mut self, worker: Address) -> Leave {
        self.idle.retain(|a| *a != worker);
        let Some(member) = self.members.get_mut(&worker) else {
            return Leave::NotAMember;
        };
        if member.job.is_some() {
            member.leaving = true;
            return Leave::AfterItsJob;
        }
        let made = member.made;
        self.members.remove(&worker);
        Leave::Now { made }
    }

    /// Takes every member's job (they stay members, idle or not).
    pub(crate) fn take_jobs(&mut self) -> impl Iterator<Item = J> + '_ {
        self.members.values_mut().filter_map(|m| m.job.take())
    }

    /// Whether `worker` is a member.
    pub(crate) fn contains(&self, worker: Address) -> bool {
        self.members.contains_key(&worker)
    }

    /// Members now.
    pub(crate) fn len(&self) -> usize {
        self.members.len()
    }

    /// Idle members now.
    pub(crate) fn idle_len(&self) -> usize {
        self.idle.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn a(object: u64) -> Address {
        Address::from_parts(1, object)
    }

    /// Gives the next idle worker `job`; which worker it was.
    fn give(w: &mut Workers<u32>, job: u32) -> Address {
        let worker = w.next_idle().expect("an idle worker");
        w.assign(worker, job);
        worker
    }

    #[test]
    fn idle_workers_take_turns_round_robin() {
        let mut w = Workers::default();
        for i in 1..=3 {
            w.add_made(a(i));
        }
        assert_eq!((w.len(), w.idle_len()), (3, 3));
        let order: Vec<Address> = (0..3).map(|j| give(&mut w, j)).collect();
        assert_eq!(order, [a(1), a(2), a(3)]);
        assert!(!w.has_idle());
        // They come free in another order, and are given work in that order.
        assert!(matches!(w.message_from(a(2)), Origin::Answer(1)));
        assert!(matches!(w.message_from(a(1)), Origin::Answer(0)));
        assert_eq!(give(&mut w, 10), a(2));
        assert_eq!(give(&mut w, 11), a(1));
    }

    #[test]
    fn the_newest_idle_worker_can_be_taken_first() {
        let mut w: Workers<u32> = Workers::default();
        for i in 1..=3 {
            w.add_made(a(i));
        }
        assert_eq!(w.idle().collect::<Vec<_>>(), [a(1), a(2), a(3)]);
        let newest = w.next_idle_newest().unwrap();
        assert_eq!(newest, a(3));
        w.assign(newest, 1);
        assert!(matches!(w.message_from(a(3)), Origin::Answer(1)));
        // Free again, it is the newest idle once more: the same worker stays warm.
        assert_eq!(w.next_idle_newest(), Some(a(3)));
        assert_eq!(w.idle().collect::<Vec<_>>(), [a(1), a(2)]);
    }

    #[test]
    fn messages_are_answers_from_busy_members_only() {
        let mut w = Workers::default();
        w.add_made(a(1));
        assert!(matches!(w.message_from(a(1)), Origin::IdleMember));
        assert!(matches!(w.message_from(a(9)), Origin::Stranger));
        give(&mut w, 7);
        assert!(matches!(w.message_from(a(1)), Origin::Answer(7)));
        // A second message from it is not another answer.
        assert!(matches!(w.message_from(a(1)), Origin::IdleMember));
        assert_eq!(w.idle_len(), 1);
    }

    #[test]
    fn joining_twice_changes_nothing() {
        let mut w: Workers<u32> = Workers::default();
        w.join(a(5));
        w.join(a(5));
        assert_eq!((w.len(), w.idle_len()), (1, 1));
        give(&mut w, 1);
        w.join(a(5));
        assert_eq!(
            (w.len(), w.idle_len()),
            (1, 0),
            "still busy, not idle twice"
        );
    }

    #[test]
    fn leaving_is_at_once_when_idle_and_after_the_job_when_busy() {
        let mut w = Workers::default();
        w.add_made(a(1));
        w.join(a(2));
        assert_eq!(w.leave(a(1)), Leave::Now { made: true });
        assert_eq!(w.leave(a(2)), Leave::Now { made: false });
        assert_eq!(w.leave(a(2)), Leave::NotAMember);
        assert_eq!((w.len(), w.idle_len()), (0, 0));

        w.join(a(3));
        give(&mut w, 4);
        assert_eq!(w.leave(a(3)), Leave::AfterItsJob);
        assert!(w.contains(a(3)));
        assert!(matches!(w.message_from(a(3)), Origin::Answer(4)));
        assert!(!w.contains(a(3)) && !w.has_idle());
    }

    #[test]
    fn an_ended_member_leaves_its_job_behind() {
        let mut w = Workers::default();
        w.add_made(a(1));
        w.add_made(a(2));
        give(&mut w, 8);
        let e = w.ended(a(1)).expect("a member");
        assert_eq!((e.job, e.leaving), (Some(8), false));
        let e = w.ended(a(2)).expect("a member");
        assert_eq!((e.job, e.leaving), (None, false));
        assert!(w.ended(a(2)).is_none());
        assert_eq!((w.len(), w.idle_len()), (0, 0));

        w.add_made(a(3));
        give(&mut w, 9);
        w.leave(a(3));
        let e = w.ended(a(3)).unwrap();
        assert_eq!((e.job, e.leaving), (Some(9), true));
    }

    #[test]
    fn a_refusing_worker_is_not_idle_again_and_a_gone_joined_one_is_dropped() {
        let mut w: Workers<u32> = Workers::default();
        w.add_made(a(1));
        w.join(a(2));
        w.join(a(3));
        let made = w.next_idle().unwrap();
        w.refused(made, true);
        assert!(w.contains(made), "a made worker stays until it ends");
        let joined = w.next_idle().unwrap();
        w.refused(joined, true);
        assert!(!w.contains(joined));
        let full = w.next_idle().unwrap();
        w.refused(full, false);
        assert!(w.contains(full));
        assert_eq!((w.len(), w.idle_len()), (2, 0));
    }

    #[test]
    fn every_job_can_be_taken_back() {
        let mut w = Workers::default();
        for i in 1..=4 {
            w.add_made(a(i));
        }
        give(&mut w, 10);
        give(&mut w, 20);
        let mut jobs: Vec<u32> = w.take_jobs().collect();
        jobs.sort();
        assert_eq!(jobs, [10, 20]);
        assert_eq!(w.take_jobs().count(), 0);
        assert_eq!(w.len(), 4);
    }
}
