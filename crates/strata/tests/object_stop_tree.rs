//! `Stop` reaches every object of a tree. Alone in its own test binary, because it
//! checks the process-wide count of live objects, which other tests would change.

mod support;

use std::collections::BTreeSet;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use strata::prelude::*;
use strata::SendError;
use support::{bounded, returned_from, WAIT};

/// Reported by every object of the tree once it runs: its level and address.
#[derive(Debug, Serialize, Deserialize, Message)]
struct Up {
    level: u32,
    kind: String,
}

/// A machine that creates `fanout` machine children and one function-object child
/// while `level < depth`; it has no `Stop` handler (the default aborts: Stop to every
/// child, then end with `Aborted`).
struct Node {
    level: u32,
    depth: u32,
    fanout: u32,
    probe: Address,
    dropped: Arc<AtomicUsize>,
}

impl Drop for Node {
    fn drop(&mut self) {
        self.dropped.fetch_add(1, Ordering::SeqCst);
    }
}

#[strata::machine]
impl Node {
    fn start(&mut self, cx: &mut Context<Self>, _: Start) {
        cx.send(
            self.probe,
            Up {
                level: self.level,
                kind: "machine".into(),
            },
        );
        if self.level >= self.depth {
            return;
        }
        for _ in 0..self.fanout {
            cx.create(Node {
                level: self.level + 1,
                depth: self.depth,
                fanout: self.fanout,
                probe: self.probe,
                dropped: self.dropped.clone(),
            });
        }
        let probe = self.probe;
        let level = self.level + 1;
        let dropped = self.dropped.clone();
        cx.create(Thread::new(move |cx: &mut ThreadContext| {
            cx.send(
                probe,
                Up {
                    level,
                    kind: "thread".into(),
                },
            );
            let stopped = cx.select_timeout::<(Stop,)>(WAIT * 3).is_ok();
            dropped.fetch_add(1, Ordering::SeqCst);
            if stopped {
                Ok(level)
            } else {
                Err(Faulted::new("never stopped"))
            }
        }));
    }
}

#[test]
fn stop_reaches_every_object_of_a_three_level_tree() {
    bounded(Duration::from_secs(120), || {
        let mut cx = ThreadContext::attach();
        let live_before = strata::runtime::live_objects();
        let dropped = Arc::new(AtomicUsize::new(0));
        let me = cx.address();
        // Level 1: the top. Level 2: 2 machines + 1 thread. Level 3: under each level-2
        // machine, 2 machines + 1 thread.
        let top = cx.create(Node {
            level: 1,
            depth: 3,
            fanout: 2,
            probe: me,
            dropped: dropped.clone(),
        });
        const OBJECTS: usize = 1 + 3 + 2 * 3;
        let mut tree = BTreeSet::new();
        let mut per_level = [0usize; 4];
        for _ in 0..OBJECTS {
            let e = cx.recv_timeout(WAIT).expect("every object reports");
            let from = e.sender();
            let up = e.take::<Up>().expect("an Up report");
            per_level[up.level as usize] += 1;
            assert!(tree.insert(from), "{from} reported twice");
        }
        assert_eq!(per_level, [0, 1, 3, 6]);
        assert_eq!(
            strata::runtime::live_objects(),
            live_before + OBJECTS,
            "every object of the tree is live"
        );

        cx.stop(top);
        let value = returned_from(&mut cx, top, WAIT);
        let aborted = value
            .downcast_ref::<Aborted>()
            .unwrap_or_else(|| panic!("the top returns Aborted, not {value:?}"));
        assert_eq!(aborted.reason, "stopped");

        // The top returns only after its children, which return only after theirs: by
        // now every address of the tree is gone.
        for a in &tree {
            match cx.try_send(*a, Ping) {
                Err(SendError::NoSuchObject { .. }) => {}
                other => panic!("{a} should have ended: {other:?}"),
            }
        }
        // Every object has left the object table.
        let deadline = Instant::now() + WAIT;
        while strata::runtime::live_objects() != live_before && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(5));
        }
        assert_eq!(strata::runtime::live_objects(), live_before);
        // And every machine and thread body has been dropped or has ended.
        while dropped.load(Ordering::SeqCst) != OBJECTS && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(5));
        }
        assert_eq!(dropped.load(Ordering::SeqCst), OBJECTS);
        assert!(cx.recv_timeout(Duration::from_millis(50)).is_none());
    });
}
