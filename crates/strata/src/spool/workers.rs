//! Who works for a spool, and who is free.
//!
//! A pool's members are of two origins: *made* by its recipe (its children: it stops them
//! when they leave and replaces them when they end) or *joined* from elsewhere with
//! [`JoinSpool`](super::JoinSpool) (they belong to someone else: the pool only stops
//! sending to them). A member holds up to `per_worker` jobs at once (default 1), which it
//! answers in the order it was given them; members with room wait in a round-robin list,
//! so work goes to the one that has waited longest. A member asked to leave while busy
//! leaves when its jobs are done.
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
    /// Members with room for a job, longest waiting first. Every address here is a
    /// member whose `listed` is set, listed once.
    idle: VecDeque<Address>,
    /// The most jobs a member holds at once.
    per_worker: usize,
    /// Members with no job at all.
    free: usize,
}

struct Member<J> {
    /// Made by the pool's recipe (a child), rather than joined.
    made: bool,
    /// The jobs it was given and has not answered, oldest first.
    jobs: VecDeque<J>,
    /// Asked to leave while busy: it leaves when its jobs are done.
    leaving: bool,
    /// In the `idle` list (it has room, and is neither leaving nor refusing).
    listed: bool,
    /// It refused a job: it gets no more (it stays a member until it ends).
    refusing: bool,
}

impl<J> Member<J> {
    fn new(made: bool) -> Self {
        Member {
            made,
            jobs: VecDeque::new(),
            leaving: false,
            listed: true,
            refusing: false,
        }
    }
}

/// What a message from `sender` is, as far as membership goes.
pub(crate) enum Origin<J> {
    /// The answer of a busy member: its oldest job, now done. The member has room again
    /// (last in the round-robin list, unless listed already), or is gone if it was
    /// leaving and has no job left.
    Answer(J),
    /// A member that has no job: nothing to answer.
    IdleMember,
    /// Not a member: a client.
    Stranger,
}

/// What a member that ended leaves behind (it is no longer a member).
pub(crate) struct Ended<J> {
    /// The jobs it was doing, oldest first, which will now get no answer from it.
    pub(crate) jobs: VecDeque<J>,
    /// Whether it had been asked to leave (so it is not to be replaced).
    pub(crate) leaving: bool,
}

/// What asking a worker to leave did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Leave {
    /// It was idle and is no longer a member; `made`: the pool's own child (to be stopped).
    Now { made: bool },
    /// It is busy: it leaves when its jobs are done.
    AfterItsJob,
    /// It was not a member.
    NotAMember,
}

impl<J> Default for Workers<J> {
    fn default() -> Self {
        Workers {
            members: AddressMap::default(),
            idle: VecDeque::new(),
            per_worker: 1,
            free: 0,
        }
    }
}

impl<J> Workers<J> {
    /// Lets each member hold up to `n` jobs at once (at least 1).
    pub(crate) fn set_per_worker(&mut self, n: usize) {
        self.per_worker = n.max(1);
    }

    /// Adds a worker the pool just made, idle (last in the round-robin list).
    pub(crate) fn add_made(&mut self, worker: Address) {
        if self.members.insert(worker, Member::new(true)).is_none() {
            self.idle.push_back(worker);
            self.free += 1;
        }
    }

    /// Adds a worker from elsewhere, idle; a member already (whatever it is doing) stays
    /// as it is.
    pub(crate) fn join(&mut self, worker: Address) {
        self.members.entry(worker).or_insert_with(|| {
            self.idle.push_back(worker);
            self.free += 1;
            Member::new(false)
        });
    }

    /// Takes the member that has waited longest with room off the list (give it a job
    /// with [`assign`](Self::assign), which lists it again at the end while it has room).
    pub(crate) fn next_idle(&mut self) -> Option<Address> {
        let worker = self.idle.pop_front()?;
        self.unlisted(worker);
        Some(worker)
    }

    /// Takes the member idle *shortest* off the idle list (the last to come free): a pool
    /// that shrinks gives work to warm members and lets the others age.
    pub(crate) fn next_idle_newest(&mut self) -> Option<Address> {
        let worker = self.idle.pop_back()?;
        self.unlisted(worker);
        Some(worker)
    }

    fn unlisted(&mut self, worker: Address) {
        if let Some(m) = self.members.get_mut(&worker) {
            m.listed = false;
        }
    }

    /// Lists `worker` (last) if it has room and may take work, and is not listed.
    fn relist(&mut self, worker: Address) {
        let per_worker = self.per_worker;
        if let Some(m) = self.members.get_mut(&worker) {
            if !m.listed && !m.leaving && !m.refusing && m.jobs.len() < per_worker {
                m.listed = true;
                self.idle.push_back(worker);
            }
        }
    }

    /// The idle members, longest idle first.
    pub(crate) fn idle(&self) -> impl Iterator<Item = Address> + '_ {
        self.idle.iter().copied()
    }

    /// Whether some member is idle.
    pub(crate) fn has_idle(&self) -> bool {
        !self.idle.is_empty()
    }

    /// Records that `worker` (taken with [`next_idle`](Self::next_idle)) now does `job`
    /// too; with room for more it is listed again, last.
    pub(crate) fn assign(&mut self, worker: Address, job: J) {
        if let Some(m) = self.members.get_mut(&worker) {
            if m.jobs.is_empty() {
                self.free -= 1;
            }
            m.jobs.push_back(job);
        }
        self.relist(worker);
    }

    /// A worker taken with [`next_idle`](Self::next_idle) could not be given its job: it
    /// gets no more. If it is `gone` (no such object, no route) and was joined, it stops
    /// being a member and the jobs it held are given back (they will get no answer from
    /// it); a made one stays until it ends (its end, with its jobs, is on the way).
    pub(crate) fn refused(&mut self, worker: Address, gone: bool) -> VecDeque<J> {
        let Some(m) = self.members.get_mut(&worker) else {
            return VecDeque::new();
        };
        m.refusing = true;
        if gone && !m.made {
            let jobs = std::mem::take(&mut m.jobs);
            if jobs.is_empty() {
                self.free -= 1;
            }
            self.members.remove(&worker);
            return jobs;
        }
        VecDeque::new()
    }

    /// Classifies a message from `sender`; see [`Origin`].
    pub(crate) fn message_from(&mut self, sender: Address) -> Origin<J> {
        let Some(member) = self.members.get_mut(&sender) else {
            return Origin::Stranger;
        };
        let Some(job) = member.jobs.pop_front() else {
            return Origin::IdleMember;
        };
        if member.leaving && member.jobs.is_empty() {
            self.members.remove(&sender);
        } else {
            if member.jobs.is_empty() {
                self.free += 1;
            }
            self.relist(sender);
        }
        Origin::Answer(job)
    }

    /// A member ended: it is no longer one. `None` if it was not a member.
    pub(crate) fn ended(&mut self, worker: Address) -> Option<Ended<J>> {
        let member = self.members.remove(&worker)?;
        if member.listed {
            self.idle.retain(|a| *a != worker);
        }
        if member.jobs.is_empty() {
            self.free -= 1;
        }
        Some(Ended {
            jobs: member.jobs,
            leaving: member.leaving,
        })
    }

    /// Asks `worker` to leave: at once if idle, after its jobs if busy.
    pub(crate) fn leave(&mut self, worker: Address) -> Leave {
        let Some(member) = self.members.get_mut(&worker) else {
            return Leave::NotAMember;
        };
        if member.listed {
            member.listed = false;
            self.idle.retain(|a| *a != worker);
        }
        if !member.jobs.is_empty() {
            member.leaving = true;
            return Leave::AfterItsJob;
        }
        self.free -= 1;
        let made = member.made;
        self.members.remove(&worker);
        Leave::Now { made }
    }

    /// Takes every member's jobs (they stay members, idle or not, and are listed again
    /// if they may take work).
    pub(crate) fn take_jobs(&mut self) -> Vec<J> {
        let mut jobs = Vec::new();
        let mut freed = Vec::new();
        for (worker, m) in self.members.iter_mut() {
            if !m.jobs.is_empty() {
                jobs.extend(m.jobs.drain(..));
                freed.push(*worker);
                self.free += 1;
            }
        }
        for worker in freed {
            self.relist(worker);
        }
        jobs
    }

    /// Whether `worker` is a member.
    pub(crate) fn contains(&self, worker: Address) -> bool {
        self.members.contains_key(&worker)
    }

    /// Members now.
    pub(crate) fn len(&self) -> usize {
        self.members.len()
    }

    /// Idle members now (with no job at all).
    pub(crate) fn idle_len(&self) -> usize {
        self.free
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
        assert_eq!((Vec::from(e.jobs), e.leaving), (vec![8], false));
        let e = w.ended(a(2)).expect("a member");
        assert_eq!((e.jobs.len(), e.leaving), (0, false));
        assert!(w.ended(a(2)).is_none());
        assert_eq!((w.len(), w.idle_len()), (0, 0));

        w.add_made(a(3));
        give(&mut w, 9);
        w.leave(a(3));
        let e = w.ended(a(3)).unwrap();
        assert_eq!((Vec::from(e.jobs), e.leaving), (vec![9], true));
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
        assert_eq!((w.len(), w.idle_len(), w.has_idle()), (2, 2, false));
    }

    #[test]
    fn every_job_can_be_taken_back() {
        let mut w = Workers::default();
        for i in 1..=4 {
            w.add_made(a(i));
        }
        give(&mut w, 10);
        give(&mut w, 20);
        let mut jobs: Vec<u32> = w.take_jobs();
        jobs.sort();
        assert_eq!(jobs, [10, 20]);
        assert_eq!(w.take_jobs().len(), 0);
        assert_eq!((w.len(), w.idle_len()), (4, 4));
    }

    #[test]
    fn with_room_for_several_jobs_members_take_turns_and_answer_oldest_first() {
        let mut w: Workers<u32> = Workers::default();
        w.set_per_worker(2);
        w.add_made(a(1));
        w.add_made(a(2));
        // One each, then a second each: round-robin over members with room.
        let order: Vec<Address> = (0..4).map(|j| give(&mut w, j)).collect();
        assert_eq!(order, [a(1), a(2), a(1), a(2)]);
        assert!(!w.has_idle(), "both full");
        assert_eq!(w.idle_len(), 0);
        // Answers come oldest first per member; one answer gives room again.
        assert!(matches!(w.message_from(a(2)), Origin::Answer(1)));
        assert_eq!(give(&mut w, 9), a(2));
        assert!(matches!(w.message_from(a(2)), Origin::Answer(3)));
        assert!(matches!(w.message_from(a(2)), Origin::Answer(9)));
        assert_eq!(w.idle_len(), 1);
        // Listed once, however many answers gave it room.
        assert_eq!(w.idle().collect::<Vec<_>>(), [a(2)]);
        // An ended member leaves all its jobs, oldest first.
        let e = w.ended(a(1)).unwrap();
        assert_eq!(Vec::from(e.jobs), [0, 2]);
        // Leaving waits for the last job.
        give(&mut w, 5);
        give(&mut w, 6);
        assert_eq!(w.leave(a(2)), Leave::AfterItsJob);
        assert!(matches!(w.message_from(a(2)), Origin::Answer(5)));
        assert!(w.contains(a(2)) && !w.has_idle());
        assert!(matches!(w.message_from(a(2)), Origin::Answer(6)));
        assert!(!w.contains(a(2)));
        assert_eq!((w.len(), w.idle_len()), (0, 0));
    }

    #[test]
    fn a_refusing_member_with_jobs_is_not_listed_again_and_a_gone_joined_one_gives_them_back() {
        let mut w: Workers<u32> = Workers::default();
        w.set_per_worker(3);
        w.join(a(1));
        give(&mut w, 1);
        let again = w.next_idle().unwrap();
        assert_eq!(again, a(1));
        assert_eq!(Vec::from(w.refused(again, false)), Vec::<u32>::new());
        assert!(matches!(w.message_from(a(1)), Origin::Answer(1)));
        assert!(!w.has_idle(), "a refusing member gets no more work");
        w.join(a(2));
        give(&mut w, 7);
        let again = w.next_idle().unwrap();
        assert_eq!(Vec::from(w.refused(again, true)), [7]);
        assert!(!w.contains(a(2)));
        assert_eq!((w.len(), w.idle_len()), (1, 1));
    }
}
