//! Sending from anywhere (`Postbox`) and addresses that stand in for others
//! (`stand_in_for`): real objects on real threads.

mod support;

use std::time::Duration;

use strata::prelude::*;
use strata::{Postbox, SendError};
use support::WAIT;

/// A function object that answers every `u32` with the number plus its own tag, until
/// `Stop`; it reports the sender of each message it took back to `observer`.
fn echo(tag: u32, observer: Address) -> Thread<impl FnOnce(&mut ThreadContext) -> u32 + Send> {
    Thread::new(move |cx: &mut ThreadContext| loop {
        let Some(e) = cx.recv_timeout(WAIT) else {
            return 0;
        };
        if e.is::<Stop>() {
            return tag;
        }
        let sender = e.sender();
        if let Ok(n) = e.take::<u32>() {
            cx.send(observer, (tag, sender.object(), n));
            cx.send(sender, n + tag);
        }
    })
}

fn next_u32(cx: &mut ThreadContext) -> (Address, u32) {
    let e = cx
        .select_timeout::<(u32,)>(WAIT)
        .expect("an answer within the wait");
    (e.sender(), e.take::<u32>().unwrap())
}

#[test]
fn a_postbox_sends_as_its_object_from_another_thread() {
    let mut cx = ThreadContext::attach();
    let me = cx.address();
    let worker = cx.create(echo(100, me));
    let postbox: Postbox = cx.postbox();
    assert_eq!(postbox.address(), me);
    let sent = std::thread::spawn(move || {
        postbox.send(worker, 1u32);
        postbox.try_send(worker, 2u32)
    });
    assert_eq!(sent.join().unwrap(), Ok(()));
    // The replies come to this object: the postbox sent as it.
    assert_eq!(next_u32(&mut cx), (worker, 101));
    assert_eq!(next_u32(&mut cx), (worker, 102));
    cx.stop(worker);
}

#[test]
fn a_postbox_refused_by_a_full_mailbox_gets_one_overloaded_notice() {
    let mut cx = ThreadContext::attach();
    // A receiver that never reads, with room for one message.
    let (release, released) = std::sync::mpsc::channel::<()>();
    let sink = cx.create_with(
        Thread::new(move |_cx: &mut ThreadContext| {
            let _ = released.recv_timeout(WAIT);
            0u32
        }),
        Options::default().capacity(1),
    );
    let postbox = cx.postbox();
    std::thread::spawn(move || {
        for i in 0..5u32 {
            postbox.send(sink, i);
        }
    })
    .join()
    .unwrap();
    let notice = cx.select_timeout::<(Overloaded,)>(WAIT).expect("a notice");
    assert_eq!(notice.sender(), sink);
    // Coalesced: one notice, not four.
    assert!(cx
        .select_timeout::<(Overloaded,)>(Duration::from_millis(50))
        .is_err());
    release.send(()).unwrap();
}

#[test]
fn a_stand_in_passes_ordinary_messages_on_with_their_sender_and_keeps_stop() {
    let mut cx = ThreadContext::attach();
    let me = cx.address();
    let target = cx.create(echo(100, me));
    let (go, gone) = std::sync::mpsc::channel::<()>();
    // The stand-in: a thread that stands in for `target` when told, then waits for Stop.
    let stand_in = cx.create(Thread::new(move |cx: &mut ThreadContext| {
        let e = cx.select_timeout::<(Address,)>(WAIT).expect("the target");
        let target = e.take::<Address>().unwrap();
        cx.stand_in_for(target).expect("no loop");
        assert_eq!(cx.standing_in_for(), Some(target));
        let _ = go.send(());
        // Only control messages reach this object now.
        let e = cx.select_timeout::<(Stop,)>(WAIT).expect("Stop stays here");
        assert!(e.is::<Stop>());
        7u32
    }));
    // Sent before the stand-in starts: these wait in its mailbox, and are passed on
    // first, in order.
    cx.send(stand_in, 1u32);
    cx.send(stand_in, 2u32);
    cx.send(stand_in, target);
    gone.recv_timeout(WAIT).unwrap();
    cx.send(stand_in, 3u32);
    for n in [1, 2, 3] {
        // Each came to the target with this object as its sender, so the reply comes
        // straight back from the target.
        let (from, answer) = next_u32(&mut cx);
        assert_eq!((from, answer), (target, 100 + n));
        let seen = cx.select_timeout::<((u32, u64, u32),)>(WAIT).unwrap();
        assert_eq!(
            seen.take::<(u32, u64, u32)>().unwrap(),
            (100, me.object(), n)
        );
    }
    cx.stop(stand_in);
    assert_eq!(
        support::returned_from(&mut cx, stand_in, WAIT)
            .downcast::<u32>()
            .unwrap(),
        7
    );
    cx.stop(target);
}

#[test]
fn standing_in_ends_and_messages_come_back_to_the_object() {
    let mut cx = ThreadContext::attach();
    let me = cx.address();
    let target = cx.create(echo(100, me));
    let stand_in = cx.create(Thread::new(move |cx: &mut ThreadContext| {
        let e = cx.select_timeout::<(Address,)>(WAIT).expect("the target");
        let target = e.take::<Address>().unwrap();
        cx.stand_in_for(target).unwrap();
        let _ = cx.select_timeout::<(Ping,)>(Duration::from_millis(1));
        // Told to stop standing in by a control message (Stop is kept here).
        let _ = cx.select_timeout::<(Stop,)>(WAIT);
        cx.stop_standing_in();
        assert_eq!(cx.standing_in_for(), None);
        let parent = cx.parent();
        cx.send(parent, Ack);
        let e = cx
            .select_timeout::<(u32,)>(WAIT)
            .expect("a message of its own again");
        e.take::<u32>().unwrap()
    }));
    cx.send(stand_in, target);
    cx.send(stand_in, 5u32);
    assert_eq!(next_u32(&mut cx), (target, 105));
    cx.stop(stand_in);
    // Once it has stopped standing in, a message reaches the stand-in itself.
    let ack = cx
        .select_timeout::<(Ack,)>(WAIT)
        .expect("standing in ended");
    assert_eq!(ack.sender(), stand_in);
    cx.send(stand_in, 9u32);
    let value = support::returned_from(&mut cx, stand_in, WAIT);
    assert_eq!(value.downcast::<u32>().unwrap(), 9);
    cx.stop(target);
}

#[test]
fn stand_ins_chain_and_a_loop_is_refused() {
    let mut cx = ThreadContext::attach();
    let me = cx.address();
    let target = cx.create(echo(100, me));
    let make = |cx: &mut ThreadContext| {
        cx.create(Thread::new(|cx: &mut ThreadContext| {
            let e = cx.select_timeout::<(Address,)>(WAIT).unwrap();
            let to = e.take::<Address>().unwrap();
            let outcome = cx.stand_in_for(to);
            let refused = matches!(outcome, Err(SendError::StandInLoop { .. }));
            let _ = cx.select_timeout::<(Stop,)>(WAIT);
            refused
        }))
    };
    let a = make(&mut cx);
    let b = make(&mut cx);
    cx.send(b, target);
    // Wait until b stands in (its next ordinary message reaches the target).
    let mut through_b = false;
    for _ in 0..200 {
        cx.send(b, 1u32);
        if let Ok(e) = cx.select_timeout::<(u32,)>(Duration::from_millis(50)) {
            assert_eq!(e.sender(), target);
            through_b = true;
            break;
        }
    }
    assert!(through_b);
    cx.send(a, b);
    // a → b → target: the chain delivers.
    let mut through_a = false;
    for _ in 0..200 {
        cx.send(a, 2u32);
        if let Ok(e) = cx.select_timeout::<(u32,)>(Duration::from_millis(50)) {
            if e.take::<u32>().unwrap() == 102 {
                through_a = true;
                break;
            }
        }
    }
    assert!(through_a);
    // An object standing in for itself would be a loop: refused.
    let c = make(&mut cx);
    cx.send(c, c);
    let refused = |cx: &mut ThreadContext, who: Address| {
        cx.stop(who);
        support::returned_from(cx, who, WAIT)
            .downcast::<bool>()
            .unwrap()
    };
    assert!(!refused(&mut cx, a));
    assert!(!refused(&mut cx, b));
    assert!(refused(&mut cx, c));
    cx.stop(target);
}

#[test]
fn a_message_that_cannot_be_passed_on_is_answered_with_a_fault() {
    let mut cx = ThreadContext::attach();
    let me = cx.address();
    let gone = cx.create(echo(100, me));
    cx.stop(gone);
    let _ = support::returned_from(&mut cx, gone, WAIT);
    let stand_in = cx.create(Thread::new(move |cx: &mut ThreadContext| {
        let e = cx.select_timeout::<(Address,)>(WAIT).unwrap();
        let _ = cx.select_timeout::<(Ping,)>(Duration::from_millis(1));
        cx.stand_in_for(e.take::<Address>().unwrap()).unwrap();
        let _ = cx.select_timeout::<(Stop,)>(WAIT);
        0u32
    }));
    // Queued before the stand-in starts, then passed on to an object that has ended.
    cx.send(stand_in, 4u32);
    cx.send(stand_in, gone);
    let e = cx.select_timeout::<(AnyFault,)>(WAIT).expect("a fault");
    assert_eq!(e.sender(), stand_in);
    let reason = e.as_fault().unwrap().reason();
    assert!(reason.contains("cannot pass `u32` on"), "{reason}");
    // Sent later: the sender learns at once.
    assert!(matches!(
        cx.try_send(stand_in, 5u32),
        Err(SendError::NoSuchObject { .. })
    ));
    cx.stop(stand_in);
}
