//! Hostile peers against a real listening process: each attack of the security review's
//! Appendix A (`shared/research/security-review.md`), spoken on the wire by hand, is now
//! refused or bounded, and the process stays up and serves its legitimate peer.
//!
//! The listening process is `link_peer` (crates/strata-testbins). The hostile peers are
//! raw TCP connections from this test: a plaintext preamble, a HELLO claiming any node,
//! then frames made with `strata::net::frame` or byte by byte.

mod support;

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::process::Command;
use std::time::Duration;

use strata::net::frame::{self, Frame, FrameReader};
use strata::net::{CloseReason, Closed, Connect, Connected, Listen, Listening};
use strata::prelude::*;
use strata_testbins::link::{Call, Chain, Measure, Nothing, Xy};
use support::programs::{alive, testbin, Running};
use support::WAIT;

type Table = Vec<Vec<f64>>;

/// A running `link_peer` (killed when dropped), its address, and a legitimate peer: this
/// test process, linked to it.
struct Served {
    process: Running,
    address: SocketAddr,
    cx: ThreadContext,
    server: Address,
}

impl Served {
    fn start(args: &[&str]) -> Served {
        let process = Running::start(Command::new(testbin("link_peer")).args(args));
        let address = process.announced_address("listening ", WAIT);
        let mut cx = ThreadContext::attach();
        cx.create(Connect::new(address));
        let up = cx
            .select_timeout::<(Connected, NotConnected)>(WAIT)
            .expect("an answer to connect");
        assert!(up.is::<Connected>(), "{up:?}");
        Served {
            process,
            address,
            server: up.sender(),
            cx,
        }
    }

    /// The process is alive and still answers its legitimate peer.
    fn still_serves(&mut self) {
        assert!(alive(self.process.pid()), "the listening process died");
        let v = self.cx.ask_timeout(self.server, Xy { x: 2, y: 1 }, WAIT);
        assert_eq!(v.downcast::<Table>().ok(), Some(vec![vec![0.0, 1.0]]));
    }

    /// How many sockets the listening process holds (its listener and its links).
    fn sockets(&self) -> usize {
        std::fs::read_dir(format!("/proc/{}/fd", self.process.pid()))
            .map(|d| {
                d.filter_map(|e| std::fs::read_link(e.ok()?.path()).ok())
                    .filter(|target| target.to_string_lossy().starts_with("socket:"))
                    .count()
            })
            .unwrap_or(0)
    }

    /// Waits (bounded) until the process holds `n` sockets: a link it closed is gone.
    fn wait_for_sockets(&self, n: usize, what: &str) {
        support::poll_until(WAIT, what, || (self.sockets() <= n).then_some(()));
    }

    /// The process's peak memory stayed within `mib` MiB of `before` (its resident
    /// memory at the start, in MiB).
    fn peak_within(&self, before: u64, mib: u64) {
        let (_, peak) = self.memory_mib();
        assert!(
            peak < before + mib,
            "memory grew from {before} to a peak of {peak} MiB"
        );
    }

    /// The listening process's resident memory and its peak, in MiB.
    fn memory_mib(&self) -> (u64, u64) {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.process.pid()))
            .expect("/proc status");
        let field = |name: &str| {
            let line = status.lines().find(|l| l.starts_with(name)).expect(name);
            let kib: u64 = line.split_whitespace().nth(1).unwrap().parse().unwrap();
            kib / 1024
        };
        (field("VmRSS:"), field("VmHWM:"))
    }
}

/// A hand-made link: this end claims to be `me` (its node is the one the HELLO names).
struct Raw {
    s: TcpStream,
    frames: FrameReader,
    /// The listening process's node and the owner its HELLO names.
    node: u64,
    owner: Address,
    me: Address,
}

impl Raw {
    /// Connects, writes the plaintext opening as `me` and reads the peer's preamble and
    /// verdict (accepted); the HELLO is still to read.
    fn connect(address: SocketAddr, me: Address) -> Raw {
        let mut s = TcpStream::connect(address).unwrap();
        s.set_read_timeout(Some(WAIT)).unwrap();
        let mut opening = b"STRT".to_vec();
        opening.push(frame::PROTOCOL_VERSION);
        opening.extend_from_slice(&[0; 9]); // no encryption, no key
        opening.push(frame::VERDICT_ACCEPTED);
        frame::encode_control(
            &mut opening,
            &Frame::Hello {
                version: frame::PROTOCOL_VERSION,
                node: me.node(),
                owner: me,
            },
        );
        s.write_all(&opening).unwrap();
        let mut head = [0u8; frame::PREAMBLE_LEN + 1];
        s.read_exact(&mut head).unwrap();
        assert_eq!(head[frame::PREAMBLE_LEN], frame::VERDICT_ACCEPTED);
        Raw {
            s,
            frames: FrameReader::new(64 << 20),
            node: 0,
            owner: Address::NULL,
            me,
        }
    }

    /// A link opened as `me`, the peer's HELLO read.
    fn open(address: SocketAddr, me: Address) -> Raw {
        let mut raw = Raw::connect(address, me);
        match raw.next_frame() {
            Some(Frame::Hello { node, owner, .. }) => {
                raw.node = node;
                raw.owner = owner;
            }
            other => panic!("expected the peer's HELLO, got {other:?}"),
        }
        raw
    }

    /// The next frame; `None` when the peer closed the connection.
    fn next_frame(&mut self) -> Option<Frame> {
        loop {
            if let Some(f) = self
                .frames
                .next_frame()
                .expect("a valid frame from the peer")
            {
                return Some(f);
            }
            let mut buf = [0u8; 64 * 1024];
            match self.s.read(&mut buf) {
                Ok(0) => return None,
                Ok(n) => self.frames.extend(&buf[..n]),
                Err(e) if e.kind() == std::io::ErrorKind::ConnectionReset => return None,
                Err(e) => panic!("the peer neither answered nor closed: {e}"),
            }
        }
    }

    /// The next message for us (skipping PONGs); `None` once the peer closed.
    fn next_message(&mut self) -> Option<(Address, Address, AnyMessage)> {
        loop {
            match self.next_frame()? {
                Frame::Message {
                    to, from, message, ..
                } => return Some((to, from, message)),
                Frame::Close(reason) => panic!("closed by the peer: {reason}"),
                _ => {}
            }
        }
    }

    /// Reads until the peer closes; gives the reason in its CLOSE frame, if it sent one.
    fn closed_because(&mut self) -> String {
        let mut reason = String::new();
        loop {
            // Decoding may fail on messages of types this test does not know: skip them.
            match self.frames.next_frame() {
                Ok(Some(Frame::Close(r))) => reason = r,
                Ok(Some(_)) | Err(_) => {}
                Ok(None) => {
                    let mut buf = [0u8; 64 * 1024];
                    match self.s.read(&mut buf) {
                        Ok(0) => return reason,
                        Ok(n) => self.frames.extend(&buf[..n]),
                        Err(e) if e.kind() == std::io::ErrorKind::ConnectionReset => return reason,
                        Err(e) => panic!("the peer neither closed nor answered: {e}"),
                    }
                }
            }
        }
    }

    fn send(&mut self, to: Address, from: Address, message: impl Message) {
        let mut bytes = Vec::new();
        frame::encode_message(&mut bytes, to, from, &AnyMessage::new(message)).unwrap();
        self.s.write_all(&bytes).unwrap();
    }

    /// A MESSAGE frame whose message is `body` exactly (name and value, as bytes).
    fn message_frame(to: Address, from: Address, body: &[u8]) -> Vec<u8> {
        let mut f = Vec::with_capacity(body.len() + 37);
        f.extend_from_slice(&((1 + 32 + body.len()) as u32).to_le_bytes());
        f.push(0);
        for a in [to, from] {
            f.extend_from_slice(&a.node().to_le_bytes());
            f.extend_from_slice(&a.object().to_le_bytes());
        }
        f.extend_from_slice(body);
        f
    }

    /// Writes `bytes`; false once the peer has closed the connection.
    fn try_write(&mut self, bytes: &[u8]) -> bool {
        self.s.write_all(bytes).is_ok()
    }
}

fn varint(mut n: u64, out: &mut Vec<u8>) {
    loop {
        let b = (n & 0x7f) as u8;
        n >>= 7;
        if n == 0 {
            out.push(b);
            return;
        }
        out.push(b | 0x80);
    }
}

fn name(out: &mut Vec<u8>, s: &str) {
    varint(s.len() as u64, out);
    out.extend_from_slice(s.as_bytes());
}

fn fault_text(m: &AnyMessage) -> String {
    m.as_fault()
        .map(|f| f.to_string())
        .unwrap_or_else(|| panic!("expected a fault, got {m:?}"))
}

#[test]
fn one_stop_frame_no_longer_ends_the_process() {
    // poc_stop1 and poc_stop: Stop to the HELLO's owner, and to guessed object numbers.
    let mut p = Served::start(&[]);
    let mut hostile = Raw::open(p.address, Address::from_parts(0x5eed, 1));
    for guess in 1..64 {
        hostile.send(Address::from_parts(hostile.node, guess), hostile.me, Stop);
    }
    for _ in 0..16 {
        hostile.send(hostile.owner, hostile.me, Stop);
    }
    let why = hostile.closed_because();
    assert!(
        why.contains("may not send") && why.contains("Stop"),
        "{why:?}"
    );
    p.still_serves();
}

#[test]
fn a_second_connection_claiming_a_node_gets_none_of_its_replies() {
    // poc_hijack: A links; C claims A's node: C is refused, A keeps its replies.
    let mut p = Served::start(&[]);
    let me = Address::from_parts(0xAAAA, 1);
    let mut a = Raw::open(p.address, me);
    let mut c = Raw::connect(p.address, me);
    let why = c.closed_because();
    assert!(why.contains("already has a link"), "{why:?}");

    a.send(a.owner, me, Xy { x: 2, y: 1 });
    let (to, _, reply) = a.next_message().expect("A's reply comes to A");
    assert_eq!(to, me);
    assert_eq!(reply.downcast::<Table>().ok(), Some(vec![vec![0.0, 1.0]]));
    p.still_serves();
}

#[test]
fn unread_pings_are_coalesced_and_memory_stays_bounded() {
    // poc_pong: 100 MB of PINGs, never reading the PONGs (RSS grew 12 -> 1,243 MiB).
    // At most one PONG is owed at a time, so nothing grows; were the socket to fill, the
    // write time-out would close the link.
    let mut p = Served::start(&["--write-timeout-ms", "1000"]);
    let (rss_before, _) = p.memory_mib();
    let mut hostile = Raw::open(p.address, Address::from_parts(0x5eed, 1));
    let mut pings = Vec::new();
    for _ in 0..200_000 {
        frame::encode_control(&mut pings, &Frame::Ping);
    }
    for _ in 0..100 {
        if !hostile.try_write(&pings) {
            break;
        }
    }
    // The link still answers (PONGs coalesce: one stands for many PINGs).
    hostile.try_write(&pings[..5]);
    assert!(matches!(hostile.next_frame(), Some(Frame::Pong)));
    p.peak_within(rss_before, 160);
    p.still_serves();
}

#[test]
fn relaying_to_an_address_never_given_is_refused_with_bounded_memory() {
    // poc_relay: 300 x 1 MiB for a second connection's node, which never reads.
    let mut p = Served::start(&[]);
    let (rss_before, _) = p.memory_mib();
    let b = Raw::open(p.address, Address::from_parts(0xBBBB, 1));
    let mut a = Raw::open(p.address, Address::from_parts(0xAAAA, 1));
    let big = Raw::message_frame(
        Address::from_parts(0xBBBB, 7),
        a.me,
        &vec![0u8; (1 << 20) - 33],
    );
    for _ in 0..300 {
        if !a.try_write(&big) {
            break;
        }
    }
    let why = a.closed_because();
    assert!(
        why.contains("may not send") && why.contains("not given to the peer"),
        "{why:?}"
    );
    p.peak_within(rss_before, 160);
    drop(b);
    p.still_serves();
}

#[test]
fn forged_runtime_messages_are_refused_with_bounded_memory() {
    // poc_control: 300 x 1 MiB forged `Returned` to object 1 (was: +300 MiB, no notice).
    let mut p = Served::start(&[]);
    let (rss_before, _) = p.memory_mib();
    let mut hostile = Raw::open(p.address, Address::from_parts(0x5eed, 1));
    let mut returned = Vec::new();
    name(&mut returned, "Returned");
    name(&mut returned, "vec<u8>");
    let n = (1 << 20) - 200;
    varint(n as u64, &mut returned);
    returned.resize(returned.len() + n, 7);
    let to_object_1 =
        Raw::message_frame(Address::from_parts(hostile.node, 1), hostile.me, &returned);
    for _ in 0..300 {
        assert!(hostile.try_write(&to_object_1), "the link closed early");
    }
    // Nothing was kept: a PING still comes back, and memory did not grow with the frames.
    let mut ping = Vec::new();
    frame::encode_control(&mut ping, &Frame::Ping);
    hostile.try_write(&ping);
    assert!(matches!(hostile.next_frame(), Some(Frame::Pong)));
    p.peak_within(rss_before, 160);
    // The same message to the owner, which was given: refused, then the link is closed.
    let to_owner = Raw::message_frame(hostile.owner, hostile.me, &returned);
    for _ in 0..16 {
        if !hostile.try_write(&to_owner) {
            break;
        }
    }
    let why = hostile.closed_because();
    assert!(
        why.contains("may not send") && why.contains("Returned"),
        "{why:?}"
    );
    p.still_serves();
}

#[test]
fn a_forged_returned_cannot_answer_another_clients_call() {
    // poc_returned: A asks the peer to Call one of A's objects; while the peer waits, C
    // forges `Returned` from guessed children of the peer's owner.
    let mut p = Served::start(&[]);
    let a_me = Address::from_parts(0xAAAA, 1);
    let a_answering = Address::from_parts(0xAAAA, 5);
    let mut a = Raw::open(p.address, a_me);
    a.send(
        a.owner,
        a_me,
        Call {
            to: a_answering,
            x: 2,
            y: 2,
        },
    );
    // The peer's request helper asks A's object for the table: the call is pending.
    let (to, asker, request) = a.next_message().expect("the peer asks A");
    assert_eq!(to, a_answering);
    assert!(request.is::<Xy>(), "{request:?}");

    let mut c = Raw::open(p.address, Address::from_parts(0xCCCC, 1));
    let mut forged = Vec::new();
    for k in 1..40 {
        let guess = Address::from_parts(c.node, k);
        for (to, from) in [(c.owner, guess), (c.owner, asker)] {
            let m = AnyMessage::new(Returned {
                value: AnyMessage::new("forged by C".to_string()),
            });
            frame::encode_message(&mut forged, to, from, &m).unwrap();
        }
    }
    c.try_write(&forged);
    let why = c.closed_because();
    assert!(why.contains("may not send"), "{why:?}");

    // A answers the real request; A's call gets that answer, not C's.
    a.send(asker, a_answering, vec![vec![42.0f64]]);
    let (to, _, answer) = a.next_message().expect("A's call is answered");
    assert_eq!(to, a_me);
    assert_eq!(answer.downcast::<Table>().ok(), Some(vec![vec![42.0]]));
    p.still_serves();
}

#[test]
fn a_frame_naming_thousands_of_nodes_is_refused_at_once() {
    // poc_routes: 40,000 distinct nodes in one frame took 7.6 s (quadratic) and taught
    // the route table 40,000 routes.
    let mut p = Served::start(&[]);
    let mut hostile = Raw::open(p.address, Address::from_parts(0x5eed, 1));
    let mut body = Vec::new();
    name(&mut body, "vec<any>");
    varint(40_000, &mut body);
    for i in 0..40_000u64 {
        name(&mut body, "address");
        varint(1_000_000 + i, &mut body);
        varint(1, &mut body);
    }
    let f = Raw::message_frame(hostile.owner, hostile.me, &body);
    assert!(f.len() < 1 << 20);
    hostile.try_write(&f);
    let (to, _, answer) = hostile.next_message().expect("an answer");
    assert_eq!(to, hostile.me);
    let text = fault_text(&answer);
    assert!(text.contains("more than 64 nodes"), "{text}");
    p.still_serves();
}

#[test]
fn nesting_past_the_limits_is_answered_and_the_link_stays_up() {
    // poc_nest, and a recursive user type nested past any stack (was: the process aborted).
    let mut p = Served::start(&[]);
    let mut hostile = Raw::open(p.address, Address::from_parts(0x5eed, 1));
    let (owner, me) = (hostile.owner, hostile.me);

    let mut nested = Vec::new();
    for _ in 0..40 {
        name(&mut nested, "vec<any>");
        varint(1, &mut nested);
    }
    name(&mut nested, "unit");
    hostile.try_write(&Raw::message_frame(owner, me, &nested));
    let text = fault_text(&hostile.next_message().expect("an answer").2);
    assert!(text.contains("nested more than 16"), "{text}");

    // Measure(Chain(Some(Chain(Some(...))))): one byte a level, 200,000 levels.
    let mut chain = Vec::new();
    name(&mut chain, "test.Measure");
    chain.resize(chain.len() + 200_000, 1);
    chain.push(0);
    hostile.try_write(&Raw::message_frame(owner, me, &chain));
    let text = fault_text(&hostile.next_message().expect("an answer").2);
    assert!(text.contains("nested more than 64"), "{text}");

    // A list of zero-sized values claiming 2^63 elements.
    let mut nothings = Vec::new();
    name(&mut nothings, <Vec<Nothing> as Message>::type_name());
    varint(1 << 63, &mut nothings);
    hostile.try_write(&Raw::message_frame(owner, me, &nothings));
    let text = fault_text(&hostile.next_message().expect("an answer").2);
    assert!(text.contains("more elements than"), "{text}");

    // The same link still carries what is within the limits.
    let mut ten = Chain(None);
    for _ in 0..10 {
        ten = Chain(Some(Box::new(ten)));
    }
    hostile.send(owner, me, Measure(ten));
    let answer = hostile.next_message().expect("an answer").2;
    assert_eq!(answer.downcast::<u64>().ok(), Some(10));
    hostile.send(owner, me, Xy { x: 1, y: 2 });
    let answer = hostile.next_message().expect("an answer").2;
    assert_eq!(
        answer.downcast::<Table>().ok(),
        Some(vec![vec![0.0], vec![100.0]])
    );
    p.still_serves();
}

#[test]
fn a_peer_that_does_not_read_its_replies_is_closed_with_bounded_memory() {
    // Requests for 800 KB tables, 200 of them (160 MB of replies), and nothing read.
    let mut p = Served::start(&[]);
    let (rss_before, _) = p.memory_mib();
    let sockets = p.sockets();
    let mut hostile = Raw::open(p.address, Address::from_parts(0x5eed, 1));
    let mut asks = Vec::new();
    for _ in 0..200 {
        frame::encode_message(
            &mut asks,
            hostile.owner,
            hostile.me,
            &AnyMessage::new(Xy { x: 1000, y: 100 }),
        )
        .unwrap();
    }
    hostile.try_write(&asks);
    p.wait_for_sockets(sockets, "the link to the peer that reads no reply closes");
    p.peak_within(rss_before, 200);
    p.still_serves();
}

/// This process listens; a hand-made peer connects and never reads; the owner sends it
/// more than the link lets wait. The owner hears `Closed` with `NotReading`.
fn non_reading_peer_closes(listen: Listen, message_bytes: usize, messages: usize) -> CloseReason {
    let mut cx = ThreadContext::attach();
    cx.create(listen);
    let at = cx.select_timeout::<(Listening,)>(WAIT).expect("listening");
    let address: SocketAddr = at.take::<Listening>().unwrap().address.parse().unwrap();
    let _silent = Raw::open(address, Address::from_parts(0x51e7, 1));
    let e = cx
        .select_timeout::<(strata::net::Accepted,)>(WAIT)
        .expect("accepted");
    let peer = e.sender();
    for _ in 0..messages {
        cx.send(peer, vec![1u8; message_bytes]);
    }
    let e = cx
        .select_timeout::<(Closed,)>(WAIT)
        .expect("the link to the silent peer closes");
    e.take::<Closed>().unwrap().reason
}

#[test]
fn the_owner_of_a_link_to_a_non_reading_peer_hears_why_it_closed() {
    // Over the byte budget: 64 MB for a peer that reads nothing, with a 4 MiB budget.
    let listen = Listen::new("127.0.0.1:0".parse().unwrap()).outbox_bytes(4 << 20);
    match non_reading_peer_closes(listen, 512 * 1024, 128) {
        CloseReason::NotReading(why) => assert!(why.contains("over the link's budget"), "{why}"),
        other => panic!("expected NotReading, got {other:?}"),
    }
    // Under the budget, but the socket takes nothing for the write time-out.
    let listen =
        Listen::new("127.0.0.1:0".parse().unwrap()).write_timeout(Duration::from_millis(300));
    match non_reading_peer_closes(listen, 512 * 1024, 48) {
        CloseReason::NotReading(why) => assert!(why.contains("took nothing"), "{why}"),
        other => panic!("expected NotReading, got {other:?}"),
    }
}

#[test]
fn connections_over_the_listeners_cap_are_closed_at_once() {
    let mut p = Served::start(&["--max-links", "2"]);
    // The legitimate link holds one place; one more hand-made link fits.
    let second = Raw::open(p.address, Address::from_parts(0x2222, 1));
    let mut third = TcpStream::connect(p.address).unwrap();
    third.set_read_timeout(Some(WAIT)).unwrap();
    let mut buf = [0u8; 64];
    let n = third.read(&mut buf).unwrap_or(0);
    assert_eq!(n, 0, "over the cap: closed before any preamble");
    // A place is given back when a link ends.
    drop(second);
    let again = support::poll_until(WAIT, "a place frees up", || {
        let mut s = TcpStream::connect(p.address).ok()?;
        s.set_read_timeout(Some(Duration::from_secs(2))).ok()?;
        let mut head = [0u8; 4];
        s.read_exact(&mut head).ok().map(|_| head)
    });
    assert_eq!(&again, b"STRT");
    p.still_serves();
}

#[test]
fn with_relaying_off_a_third_process_cannot_reach_through_this_one() {
    // As in net_links' three-process test, b is asked to call c, which it can reach only
    // through this process; here this process's link to b does not relay.
    let b = Running::start(&mut Command::new(testbin("link_peer")));
    let b_address = b.announced_address("listening ", WAIT);
    let c = Running::start(&mut Command::new(testbin("link_peer")));
    let c_address = c.announced_address("listening ", WAIT);
    let mut cx = ThreadContext::attach();
    let link = |cx: &mut ThreadContext, connect: Connect| {
        cx.create(connect);
        let up = cx.select_timeout::<(Connected,)>(WAIT).expect("connected");
        up.sender()
    };
    let b_owner = link(&mut cx, Connect::new(b_address).relay(false));
    let c_owner = link(&mut cx, Connect::new(c_address));
    let v = cx.ask_timeout(
        b_owner,
        Call {
            to: c_owner,
            x: 2,
            y: 2,
        },
        WAIT,
    );
    assert!(v.is_fault(), "relayed although relaying is off: {v:?}");
}
