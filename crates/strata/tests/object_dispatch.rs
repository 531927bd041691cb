//! How `#[strata::machine]` dispatches: handler parameter types through `FromEnvelope`
//! (a user's type named `Envelope` is an ordinary message), sender guards with
//! `#[guard]`, state guards with `#[when]`, the catch-alls, and generic machines.

use std::time::{Duration, Instant};

use strata::prelude::*;

/// How long any single wait may take before the test fails (generous: the machine is small
/// and shared, and nothing here is about speed).
const WAIT: Duration = Duration::from_secs(20);

/// A user's own types that happen to share names with strata's catch-all parameter types.
mod parcels {
    use strata::prelude::*;

    #[derive(Debug, Serialize, Deserialize, Message)]
    #[message(name = "test.dispatch.Envelope")]
    pub struct Envelope(pub u32);

    #[derive(Debug, Serialize, Deserialize, Message)]
    #[message(name = "test.dispatch.AnyFault")]
    pub struct AnyFault(pub String);
}

#[derive(Debug, Serialize, Deserialize, Message)]
#[message(name = "test.dispatch.Knock")]
struct Knock;

#[derive(Debug, Serialize, Deserialize, Message)]
#[message(name = "test.dispatch.Number")]
struct Number(u32);

#[derive(Debug, Serialize, Deserialize, Message)]
#[message(name = "test.dispatch.Lock")]
struct Lock;

#[derive(Debug, Serialize, Deserialize, Message)]
#[message(name = "test.dispatch.Unlock")]
struct Unlock;

/// The next message for this thread, or a failed test after [`WAIT`].
fn next(cx: &mut ThreadContext) -> Envelope {
    cx.recv_timeout(WAIT)
        .expect("a message within the time allowed")
}

/// The next message, which must be a `T`.
fn next_as<T: Message + std::fmt::Debug>(cx: &mut ThreadContext) -> T {
    let e = next(cx);
    let name = e.type_name();
    e.take::<T>()
        .unwrap_or_else(|_| panic!("expected a {}, got a {name}", T::type_name()))
}

/// The value `child` returns, waiting at most [`WAIT`] in all; other messages are dropped.
fn returned_from(cx: &mut ThreadContext, child: Address) -> AnyMessage {
    let deadline = Instant::now() + WAIT;
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        let e = cx
            .recv_timeout(left)
            .expect("the child returns within the time allowed");
        if e.is::<Returned>() && e.sender() == child {
            return e.take::<Returned>().expect("checked").value;
        }
    }
}

/// A thread object that sends `message` to `to` and returns the first answer it gets: a
/// sender other than the test's own thread.
fn ask_from_elsewhere<T: Message>(to: Address, message: T) -> impl strata::Object {
    Thread::new(move |cx: &mut ThreadContext| {
        cx.send(to, message);
        cx.recv_timeout(WAIT)
            .expect("an answer within the time allowed")
            .into_message()
    })
}

// --- Parameter types are recognised by trait, not by name --------------------------

/// Takes the user's `Envelope` and `AnyFault` first, strata's `Envelope` last.
struct PostOffice;

#[strata::machine]
impl PostOffice {
    fn parcel(&mut self, _cx: &mut Context<Self>, parcel: parcels::Envelope) -> String {
        format!("parcel {}", parcel.0)
    }

    fn complaint(&mut self, _cx: &mut Context<Self>, c: parcels::AnyFault) -> String {
        format!("complaint {}", c.0)
    }

    fn anything(&mut self, _cx: &mut Context<Self>, e: Envelope) -> String {
        format!("other {}", e.type_name())
    }
}

#[test]
fn a_user_type_named_envelope_is_a_typed_message_not_a_catch_all() {
    let mut cx = ThreadContext::attach();
    let office = cx.create(PostOffice);
    cx.send(office, parcels::Envelope(3));
    assert_eq!(next_as::<String>(&mut cx), "parcel 3");
    cx.send(office, Knock);
    assert_eq!(next_as::<String>(&mut cx), "other test.dispatch.Knock");
    cx.send(office, parcels::AnyFault("late".into()));
    assert_eq!(next_as::<String>(&mut cx), "complaint late");
    // A real fault is not the user's `AnyFault`.
    cx.send(office, TimedOut::after(Duration::from_millis(5)));
    assert_eq!(next_as::<String>(&mut cx), "other TimedOut");
    cx.stop(office);
}

// --- Sender guards ---------------------------------------------------------------

/// Opens only for the address it trusts; stops only when the trusted one says so.
struct Gate {
    trusted: Address,
}

#[strata::machine]
impl Gate {
    #[guard(sender == self.trusted)]
    fn open(&mut self, _cx: &mut Context<Self>, _: Knock) -> String {
        "open".to_string()
    }

    fn closed(&mut self, _cx: &mut Context<Self>, _: Knock) -> String {
        "closed".to_string()
    }

    /// Several guards must all hold; `envelope` is the message before it is taken.
    #[guard(sender == self.trusted)]
    #[guard(envelope.get::<Number>().is_some_and(|n| n.0 > 10))]
    fn big_from_trusted(&mut self, _cx: &mut Context<Self>, n: Number) -> String {
        format!("big {}", n.0)
    }

    fn number(&mut self, _cx: &mut Context<Self>, n: Number) -> String {
        format!("number {}", n.0)
    }

    /// Without a later `Stop` handler, a `Stop` from anyone else goes to `unhandled`
    /// (which aborts the machine).
    #[guard(sender == self.trusted)]
    fn stop(&mut self, cx: &mut Context<Self>, _: Stop) {
        cx.complete("stopped by the trusted".to_string());
    }
}

#[test]
fn a_sender_guard_takes_its_sender_and_lets_others_fall_through() {
    let mut cx = ThreadContext::attach();
    let me = cx.address();
    let gate = cx.create(Gate { trusted: me });

    cx.send(gate, Knock);
    assert_eq!(next_as::<String>(&mut cx), "open");
    let other = cx.create(ask_from_elsewhere(gate, Knock));
    let answer = returned_from(&mut cx, other);
    assert_eq!(answer.downcast::<String>().expect("a String"), "closed");

    cx.send(gate, Number(11));
    assert_eq!(next_as::<String>(&mut cx), "big 11");
    cx.send(gate, Number(7));
    assert_eq!(next_as::<String>(&mut cx), "number 7");
    let other = cx.create(ask_from_elsewhere(gate, Number(12)));
    let answer = returned_from(&mut cx, other);
    assert_eq!(answer.downcast::<String>().expect("a String"), "number 12");

    cx.stop(gate);
    let value = returned_from(&mut cx, gate);
    assert_eq!(
        value.downcast::<String>().expect("a String"),
        "stopped by the trusted"
    );
}

#[test]
fn a_message_whose_guard_fails_with_no_handler_left_goes_to_unhandled() {
    let mut cx = ThreadContext::attach();
    let gate = cx.create(Gate {
        trusted: Address::NULL,
    });
    // The test's thread is not trusted: its Stop reaches `Machine::unhandled`, which aborts.
    cx.stop(gate);
    let value = returned_from(&mut cx, gate);
    assert!(value.is::<Aborted>(), "{value:?}");
}

/// Counts the `Start`s it receives from itself and from anyone else.
#[derive(Default)]
struct Starts {
    own: u32,
    foreign: u32,
}

#[strata::machine]
impl Starts {
    #[guard(sender == cx.address())]
    fn own_start(&mut self, _cx: &mut Context<Self>, _: Start) {
        self.own += 1;
    }

    fn foreign_start(&mut self, _cx: &mut Context<Self>, _: Start) {
        self.foreign += 1;
    }

    fn count(&mut self, _cx: &mut Context<Self>, _: Knock) -> (u32, u32) {
        (self.own, self.foreign)
    }
}

#[test]
fn start_from_the_machine_itself_is_told_from_a_sent_start() {
    let mut cx = ThreadContext::attach();
    let starts = cx.create(Starts::default());
    cx.send(starts, Start);
    cx.send(starts, Knock);
    assert_eq!(next_as::<(u32, u32)>(&mut cx), (1, 1));
    cx.stop(starts);
}

// --- State guards, alone and with a sender guard --------------------------------

#[derive(Debug, Clone, Copy, PartialEq)]
enum Door {
    Open,
    Locked,
}

/// Anyone may lock it; only its owner may unlock it.
struct SafeDoor {
    state: Door,
    owner: Address,
}

#[strata::machine(state = state)]
impl SafeDoor {
    #[when(Door::Open)]
    fn lock(&mut self, _cx: &mut Context<Self>, _: Lock) -> String {
        self.state = Door::Locked;
        "locked".to_string()
    }

    #[when(Door::Locked)]
    #[guard(sender == self.owner)]
    fn unlock(&mut self, _cx: &mut Context<Self>, _: Unlock) -> String {
        self.state = Door::Open;
        "unlocked".to_string()
    }

    #[when(Door::Open | Door::Locked)]
    fn knock(&mut self, _cx: &mut Context<Self>, _: Knock) -> String {
        format!("{:?}", self.state)
    }

    fn refuse(&mut self, _cx: &mut Context<Self>, e: Envelope) -> String {
        format!("no {} while {:?}", e.type_name(), self.state)
    }
}

#[test]
fn state_guards_still_select_handlers_and_combine_with_sender_guards() {
    let mut cx = ThreadContext::attach();
    let owner = cx.address();
    let door = cx.create(SafeDoor {
        state: Door::Open,
        owner,
    });
    cx.send(door, Unlock);
    assert_eq!(
        next_as::<String>(&mut cx),
        "no test.dispatch.Unlock while Open"
    );
    cx.send(door, Lock);
    assert_eq!(next_as::<String>(&mut cx), "locked");
    cx.send(door, Lock);
    assert_eq!(
        next_as::<String>(&mut cx),
        "no test.dispatch.Lock while Locked"
    );
    cx.send(door, Knock);
    assert_eq!(next_as::<String>(&mut cx), "Locked");

    // Locked, and a stranger tries: the state matches, the sender does not.
    let stranger = cx.create(ask_from_elsewhere(door, Unlock));
    let answer = returned_from(&mut cx, stranger);
    assert_eq!(
        answer.downcast::<String>().expect("a String"),
        "no test.dispatch.Unlock while Locked"
    );
    cx.send(door, Unlock);
    assert_eq!(next_as::<String>(&mut cx), "unlocked");
    cx.stop(door);
}

// --- Catch-alls -----------------------------------------------------------------

/// Typed handlers first, then every catch-all, most specific first.
#[derive(Default)]
struct Sorter {
    seen: Vec<String>,
}

#[strata::machine]
impl Sorter {
    fn number(&mut self, _cx: &mut Context<Self>, n: Number) -> String {
        format!("number {}", n.0)
    }

    /// Ends with the names of everything the `Envelope` catch-all saw.
    fn stop(&mut self, cx: &mut Context<Self>, _: Stop) {
        cx.complete(std::mem::take(&mut self.seen));
    }

    fn fault(&mut self, _cx: &mut Context<Self>, f: AnyFault) -> String {
        format!("fault {}", f.type_name())
    }

    #[guard(envelope.is::<u32>())]
    fn any(&mut self, _cx: &mut Context<Self>, m: AnyMessage) -> String {
        format!("any {}", m.type_name())
    }

    fn rest(&mut self, _cx: &mut Context<Self>, e: Envelope) {
        self.seen.push(e.type_name().to_string());
    }
}

#[test]
fn catch_alls_take_faults_anything_and_envelopes_in_source_order() {
    let mut cx = ThreadContext::attach();
    let sorter = cx.create(Sorter::default());
    cx.send(sorter, Number(4));
    assert_eq!(next_as::<String>(&mut cx), "number 4");
    cx.send(sorter, TimedOut::after(Duration::from_millis(1)));
    assert_eq!(next_as::<String>(&mut cx), "fault TimedOut");
    cx.send(sorter, Busy::new("full"));
    assert_eq!(next_as::<String>(&mut cx), "fault Busy");
    cx.send(sorter, 9u32);
    assert_eq!(next_as::<String>(&mut cx), "any u32");
    cx.send(sorter, Knock);
    cx.send(sorter, String::from("text"));
    cx.stop(sorter);
    // The `Envelope` catch-all also saw the machine's `Start`.
    let seen = returned_from(&mut cx, sorter);
    assert_eq!(
        seen.downcast::<Vec<String>>().expect("the names seen"),
        ["Start", "test.dispatch.Knock", "string"]
    );
}

// --- Generic machines -----------------------------------------------------------

/// Answers a `T` with itself; anything else is unhandled.
struct Echo<T> {
    echoed: u32,
    _type: std::marker::PhantomData<fn() -> T>,
}

impl<T> Echo<T> {
    fn new() -> Self {
        Echo {
            echoed: 0,
            _type: std::marker::PhantomData,
        }
    }
}

#[strata::machine]
impl<T: Message> Echo<T> {
    fn echo(&mut self, _cx: &mut Context<Self>, m: T) -> T {
        self.echoed += 1;
        m
    }

    fn stop(&mut self, cx: &mut Context<Self>, _: Stop) {
        cx.complete(self.echoed);
    }
}

#[test]
fn a_generic_machine_dispatches_on_its_type_parameter() {
    let mut cx = ThreadContext::attach();
    let numbers = cx.create(Echo::<u64>::new());
    let words = cx.create(Echo::<String>::new());
    cx.send(numbers, 5u64);
    assert_eq!(next_as::<u64>(&mut cx), 5);
    cx.send(words, String::from("hi"));
    assert_eq!(next_as::<String>(&mut cx), "hi");
    // Not its `T`: unhandled (logged), no answer; the next answer is still in order.
    cx.send(words, 6u64);
    cx.send(words, String::from("again"));
    assert_eq!(next_as::<String>(&mut cx), "again");
    cx.stop(words);
    let value = returned_from(&mut cx, words);
    assert_eq!(value.downcast::<u32>().expect("a count"), 2);
    cx.stop(numbers);
    let value = returned_from(&mut cx, numbers);
    assert_eq!(value.downcast::<u32>().expect("a count"), 1);
}

// --- The library's own machines use guards ----------------------------------------

/// Answers its first message with `Stop`.
fn answers_with_stop() -> impl strata::Object {
    Thread::new(|cx: &mut ThreadContext| {
        if let Some(e) = cx.recv_timeout(WAIT) {
            cx.send(e.sender(), Stop);
        }
    })
}

#[test]
fn get_response_takes_a_stop_from_the_one_asked_as_its_answer() {
    let mut cx = ThreadContext::attach();
    let target = cx.create(answers_with_stop());
    let getter = cx.create(GetResponse::new(Knock, target).timeout(WAIT));
    let value = returned_from(&mut cx, getter);
    assert!(value.is::<Stop>(), "{value:?}");
}
