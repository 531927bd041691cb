//! Waiting for answers: `select` with a time-out, and the request helpers
//! (`GetResponse`, `Concurrently`, `Delay`).

mod support;

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use strata::prelude::*;
use strata::Object;
use support::{bounded, expect_message, returned_from, WAIT};

#[derive(Debug, Serialize, Deserialize, Message)]
struct Question(u32);

#[derive(Debug, PartialEq, Serialize, Deserialize, Message)]
struct Answer(u32);

#[derive(Debug, Serialize, Deserialize, Message)]
struct Go;

#[test]
fn select_times_out_and_keeps_what_did_not_match_in_order() {
    bounded(Duration::from_secs(60), || {
        let mut cx = ThreadContext::attach();
        let me = cx.address();
        cx.send(me, Ack);
        cx.send(me, Answer(1));
        cx.send(me, 7u32);
        cx.send(me, Answer(2));
        let t0 = Instant::now();
        let timed_out = cx
            .select_timeout::<(Stop, Nak)>(Duration::from_millis(100))
            .expect_err("nothing matching was sent");
        let elapsed = t0.elapsed();
        assert!(elapsed >= Duration::from_millis(100), "{elapsed:?}");
        assert!(elapsed < Duration::from_secs(10), "{elapsed:?}");
        assert_eq!(timed_out, TimedOut::after(Duration::from_millis(100)));
        // A selection picks the first match and leaves the rest in order.
        let e = cx
            .select_timeout::<(u32, Stop)>(Duration::ZERO)
            .expect("a u32 is waiting");
        assert_eq!(e.get::<u32>(), Some(&7));
        assert!(cx.recv_timeout(WAIT).expect("kept").is::<Ack>());
        let (a, _) = expect_message::<Answer>(&mut cx, WAIT);
        assert_eq!(a, Answer(1));
        // Something matching that arrives later ends the wait.
        let later = cx.create(Thread::new(move |_cx: &mut ThreadContext| {
            std::thread::sleep(Duration::from_millis(30));
            0u8
        }));
        let e = cx
            .select_timeout::<(Returned, AnyFault)>(WAIT)
            .expect("the child returns");
        assert_eq!(e.sender(), later);
        let (a, _) = expect_message::<Answer>(&mut cx, WAIT);
        assert_eq!(a, Answer(2));
        assert!(cx.recv_timeout(Duration::from_millis(20)).is_none());
        // Faults match `AnyFault`.
        cx.send(me, Ping);
        cx.send(me, Busy::new("x"));
        let e = cx.select_timeout::<(AnyFault,)>(WAIT).expect("a fault");
        assert!(e.is::<Busy>());
        assert!(cx.recv_timeout(WAIT).expect("kept").is::<Ping>());
    });
}

#[test]
fn select_in_an_async_object_times_out_and_keeps_the_rest() {
    bounded(Duration::from_secs(60), || {
        let mut cx = ThreadContext::attach();
        let child = cx.create(Async::new(|mut cx: AsyncContext| async move {
            let mut log = Vec::new();
            let t0 = Instant::now();
            match cx
                .select_timeout::<(Stop,)>(Duration::from_millis(80))
                .await
            {
                Err(t) => log.push(format!("timed out after {}s", t.seconds)),
                Ok(e) => log.push(format!("unexpected {}", e.type_name())),
            }
            log.push(format!(
                "waited: {}",
                t0.elapsed() >= Duration::from_millis(80)
            ));
            match cx.select_timeout::<(Answer,)>(WAIT).await {
                Ok(e) => log.push(format!("{:?}", e.get::<Answer>())),
                Err(_) => log.push("no answer".into()),
            }
            for _ in 0..2 {
                match cx.recv_timeout(WAIT).await {
                    Some(e) => log.push(e.type_name().to_string()),
                    None => log.push("nothing".into()),
                }
            }
            log
        }));
        cx.send(child, Ping);
        cx.send(child, Ack);
        cx.send(child, Answer(4));
        let value = returned_from(&mut cx, child, WAIT);
        assert_eq!(
            value.downcast_ref::<Vec<String>>(),
            Some(&vec![
                "timed out after 0.08s".to_string(),
                "waited: true".to_string(),
                "Some(Answer(4))".to_string(),
                "Ping".to_string(),
                "Ack".to_string(),
            ])
        );
    });
}

/// A function object that answers one question with `Answer(10 * q)`, but only after
/// `wait_for_go` is false or a `Go` came; then it releases `next` with a `Go` and notes
/// its turn in `log`.
fn responder(
    index: u32,
    wait_for_go: bool,
    next: Option<Address>,
    log: Arc<Mutex<Vec<u32>>>,
) -> impl Object {
    Thread::new(move |cx: &mut ThreadContext| {
        // The `Go` may come before the question: select, keeping it for later.
        let Ok(e) = cx.select_timeout::<(Question,)>(WAIT) else {
            return Err(Faulted::new("no question"));
        };
        let asker = e.sender();
        let Ok(Question(q)) = e.take::<Question>() else {
            return Err(Faulted::new("not a question"));
        };
        if wait_for_go && cx.select_timeout::<(Go,)>(WAIT).is_err() {
            return Err(Faulted::new("never released"));
        }
        log.lock().unwrap().push(index);
        cx.send(asker, Answer(q * 10));
        if let Some(n) = next {
            cx.send(n, Go);
        }
        Ok(index)
    })
}

fn answers(value: AnyMessage) -> Vec<Answer> {
    let replies = value
        .downcast::<Vec<AnyMessage>>()
        .unwrap_or_else(|v| panic!("not a list of replies: {v:?}"));
    replies
        .into_iter()
        .map(|r| {
            r.downcast::<Answer>()
                .unwrap_or_else(|v| panic!("not an Answer: {v:?}"))
        })
        .collect()
}

#[test]
fn concurrently_returns_replies_in_request_order_whatever_order_they_came_in() {
    bounded(Duration::from_secs(60), || {
        let mut cx = ThreadContext::attach();
        let log = Arc::new(Mutex::new(Vec::new()));
        // Responder 0 waits for 1, which waits for 2, ... the last answers at once: the
        // first request is answered last.
        const N: u32 = 5;
        let mut responders = Vec::new();
        let mut next = None;
        for i in 0..N {
            // Responder i releases responder i - 1 once it has answered.
            let r = cx.create(responder(i, i != N - 1, next, log.clone()));
            responders.push(r);
            next = Some(r);
        }
        let mut asks = Concurrently::new();
        for (i, r) in responders.iter().enumerate() {
            asks = asks.ask(Question(i as u32 + 1), *r);
        }
        let collator = cx.create(asks);
        let value = returned_from(&mut cx, collator, WAIT);
        assert_eq!(
            answers(value),
            (1..=N).map(|q| Answer(q * 10)).collect::<Vec<_>>()
        );
        assert_eq!(
            *log.lock().unwrap(),
            (0..N).rev().collect::<Vec<_>>(),
            "answered in reverse order"
        );
    });
}

#[test]
fn concurrently_collates_replies_that_come_after_different_delays() {
    bounded(Duration::from_secs(60), || {
        let mut cx = ThreadContext::attach();
        let delays = [150u64, 100, 50, 0];
        let responders: Vec<Address> = delays
            .iter()
            .map(|&ms| {
                cx.create(Thread::new(move |cx: &mut ThreadContext| {
                    let e = cx.recv_timeout(WAIT)?;
                    std::thread::sleep(Duration::from_millis(ms));
                    let q = e.get::<Question>()?.0;
                    cx.reply(Answer(q * 10));
                    Some(ms)
                }))
            })
            .collect();
        let mut asks = Concurrently::new().timeout(Duration::from_secs(30));
        for (i, r) in responders.iter().enumerate() {
            asks = asks.ask(Question(i as u32), *r);
        }
        let collator = cx.create(asks);
        let value = returned_from(&mut cx, collator, WAIT);
        assert_eq!(
            answers(value),
            vec![Answer(0), Answer(10), Answer(20), Answer(30)]
        );
    });
}

#[test]
fn concurrently_reports_faults_in_their_slots_and_handles_no_requests() {
    bounded(Duration::from_secs(60), || {
        let mut cx = ThreadContext::attach();
        let gone = cx.create(Thread::new(|_cx: &mut ThreadContext| 0u8));
        let _ = returned_from(&mut cx, gone, WAIT);
        let echo = cx.create(Thread::new(|cx: &mut ThreadContext| {
            let e = cx.recv_timeout(WAIT)?;
            let q = e.get::<Question>()?.0;
            cx.reply(Answer(q));
            Some(q)
        }));
        let collator = cx.create(
            Concurrently::new()
                .ask(Question(1), gone)
                .ask(Question(2), echo),
        );
        let value = returned_from(&mut cx, collator, WAIT);
        let replies = value.downcast::<Vec<AnyMessage>>().expect("a list");
        assert_eq!(replies.len(), 2);
        assert!(
            replies[0].is::<Faulted>(),
            "a dead address: {:?}",
            replies[0]
        );
        assert_eq!(replies[1].downcast_ref::<Answer>(), Some(&Answer(2)));

        let empty = cx.create(Concurrently::new());
        let value = returned_from(&mut cx, empty, WAIT);
        assert_eq!(
            value.downcast_ref::<Vec<AnyMessage>>().map(Vec::len),
            Some(0)
        );
    });
}

/// A function object that reads one message and never answers; it ends on `Stop` or
/// after `WAIT`.
fn silent() -> impl Object {
    Thread::new(|cx: &mut ThreadContext| {
        let deadline = Instant::now() + WAIT;
        while Instant::now() < deadline {
            if let Ok(_stop) = cx.select_timeout::<(Stop,)>(Duration::from_millis(50)) {
                return true;
            }
        }
        false
    })
}

#[test]
fn concurrently_times_out_as_a_whole() {
    bounded(Duration::from_secs(120), || {
        let mut cx = ThreadContext::attach();
        // Repeated, short: the collator's own deadline and its helpers' must not race.
        for round in 0..20 {
            let quiet = cx.create(silent());
            let echo = cx.create(Thread::new(|cx: &mut ThreadContext| {
                let e = cx.recv_timeout(WAIT)?;
                cx.reply(Answer(e.get::<Question>()?.0));
                Some(())
            }));
            let t0 = Instant::now();
            let collator = cx.create(
                Concurrently::new()
                    .ask(Question(1), echo)
                    .ask(Question(2), quiet)
                    .timeout(Duration::from_millis(20)),
            );
            let value = returned_from(&mut cx, collator, WAIT);
            let elapsed = t0.elapsed();
            assert!(
                value.is::<TimedOut>(),
                "round {round}: expected TimedOut, got {value:?}"
            );
            assert!(elapsed >= Duration::from_millis(20), "{elapsed:?}");
            cx.stop(quiet);
            let stopped = returned_from(&mut cx, quiet, WAIT);
            assert_eq!(stopped.downcast_ref::<bool>(), Some(&true));
        }
    });
}

#[test]
fn get_response_returns_the_reply_or_times_out() {
    bounded(Duration::from_secs(60), || {
        let mut cx = ThreadContext::attach();
        let echo = cx.create(Thread::new(|cx: &mut ThreadContext| {
            let e = cx.recv_timeout(WAIT)?;
            cx.reply(Answer(e.get::<Question>()?.0 + 1));
            Some(())
        }));
        let getter = cx.create(GetResponse::new(Question(41), echo).timeout(WAIT));
        let value = returned_from(&mut cx, getter, WAIT);
        assert_eq!(value.downcast_ref::<Answer>(), Some(&Answer(42)));

        let quiet = cx.create(silent());
        let t0 = Instant::now();
        let getter =
            cx.create(GetResponse::new(Question(1), quiet).timeout(Duration::from_millis(60)));
        let value = returned_from(&mut cx, getter, WAIT);
        let elapsed = t0.elapsed();
        assert_eq!(
            value.downcast_ref::<TimedOut>(),
            Some(&TimedOut::after(Duration::from_millis(60)))
        );
        assert!(elapsed >= Duration::from_millis(60), "{elapsed:?}");
        assert!(elapsed < Duration::from_secs(10), "{elapsed:?}");

        // Stopped while waiting, it returns Aborted.
        let getter = cx.create(GetResponse::new(Question(1), quiet));
        std::thread::sleep(Duration::from_millis(20));
        cx.stop(getter);
        let value = returned_from(&mut cx, getter, WAIT);
        assert!(value.is::<Aborted>(), "{value:?}");
        cx.stop(quiet);
    });
}

#[test]
fn get_response_to_a_dead_address_faults_at_once() {
    bounded(Duration::from_secs(60), || {
        let mut cx = ThreadContext::attach();
        let gone = cx.create(Thread::new(|_cx: &mut ThreadContext| 0u8));
        let _ = returned_from(&mut cx, gone, WAIT);
        // A time-out far beyond the wait: only an immediate fault can pass.
        let getter = cx.create(GetResponse::new(Question(1), gone).timeout(WAIT * 10));
        let value = returned_from(&mut cx, getter, WAIT);
        let fault = value.as_fault().expect("a fault");
        assert!(value.is::<Faulted>(), "{value:?}");
        assert!(
            fault.reason().contains("no object"),
            "names the problem: {}",
            fault.reason()
        );
        // The blocking helper gives the same.
        let value = cx.ask_timeout(gone, Question(2), WAIT * 10);
        assert!(value.is::<Faulted>(), "{value:?}");
        // So does the null address.
        let value = cx.ask_timeout(Address::NULL, Question(3), WAIT * 10);
        assert!(value.is::<Faulted>(), "{value:?}");
    });
}

#[test]
fn delay_returns_timed_out_after_its_pause_or_aborted_when_stopped() {
    bounded(Duration::from_secs(60), || {
        let mut cx = ThreadContext::attach();
        let t0 = Instant::now();
        let delay = cx.create(Delay::new(Duration::from_millis(50)));
        let value = returned_from(&mut cx, delay, WAIT);
        let elapsed = t0.elapsed();
        assert_eq!(
            value.downcast_ref::<TimedOut>(),
            Some(&TimedOut::after(Duration::from_millis(50)))
        );
        assert!(elapsed >= Duration::from_millis(50), "{elapsed:?}");
        assert!(elapsed < Duration::from_secs(10), "{elapsed:?}");

        let long = cx.create(Delay::new(WAIT * 10));
        cx.stop(long);
        let value = returned_from(&mut cx, long, WAIT);
        assert!(value.is::<Aborted>(), "{value:?}");
    });
}
