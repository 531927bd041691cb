//! An object that ends takes its timers with it. Alone in its own test binary, because it
//! checks the process-wide count of undeliverable sends, which other tests would change.

mod support;

use std::time::Duration;

use strata::prelude::*;
use support::{bounded, expect_message, returned_from, WAIT};

#[test]
fn an_object_that_ends_stops_its_timers() {
    bounded(Duration::from_secs(60), || {
        let mut cx = ThreadContext::attach();
        let me = cx.address();
        // A child that starts a repeating timer then ends at once; nothing of it may be
        // sent afterwards (its timers are cancelled, not firing at an address that is gone).
        let child = cx.create(Thread::new(move |cx: &mut ThreadContext| {
            cx.start_repeating(T1, Duration::from_millis(5));
            let _ = cx.recv_timeout(WAIT);
            cx.send(me, Ack);
            7u8
        }));
        let (Ack, _) = expect_message::<Ack>(&mut cx, WAIT);
        let value = returned_from(&mut cx, child, WAIT);
        assert_eq!(value.downcast_ref::<u8>(), Some(&7));
        let before = strata::runtime::stats();
        // Twenty periods of the timer: a leaked one would have fired about twenty times.
        std::thread::sleep(Duration::from_millis(100));
        let after = strata::runtime::stats();
        assert_eq!(
            after.undeliverable, before.undeliverable,
            "{before:?} -> {after:?}"
        );
    });
}
