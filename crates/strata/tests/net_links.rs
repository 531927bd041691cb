//! Links between real processes: plain and encrypted, static keys and allow-lists, refused
//! peers, unauthenticated links refused off loopback, a third party answering an address
//! it was given, bad input on the wire, and keep-alive.
//!
//! The peer is the `link_peer` test program (crates/strata-testbins), built by the test
//! itself before it starts.

mod support;

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::PathBuf;
use std::process::Command;
use std::time::{Duration, Instant};

use strata::net::keys::{self, StaticKey};
use strata::net::{frame, CloseReason, Closed, Connect, Connected, Listen, Listening};
use strata::prelude::*;
use strata_testbins::link::{Call, Xy};
use support::programs::{testbin, Running};
use support::WAIT;

type Table = Vec<Vec<f64>>;

const KEY: &str = "000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f";

/// A running `link_peer` process (killed when dropped) and the address it listens on.
struct PeerProcess {
    process: Running,
    address: SocketAddr,
}

impl PeerProcess {
    /// Freezes the peer (SIGSTOP): its sockets stay open but nothing answers. Dropping
    /// the guard kills it all the same.
    fn freeze(&self) {
        self.process.signal(libc::SIGSTOP);
    }
}

fn peer(args: &[&str]) -> PeerProcess {
    let process = Running::start(Command::new(testbin("link_peer")).args(args));
    let address = process.announced_address("listening ", WAIT);
    PeerProcess { process, address }
}

fn key() -> [u8; 32] {
    let mut k = [0u8; 32];
    for (i, b) in k.iter_mut().enumerate() {
        *b = u8::from_str_radix(&KEY[2 * i..2 * i + 2], 16).unwrap();
    }
    k
}

/// Connects and returns the address of the listening object at the other end.
fn connect(cx: &mut ThreadContext, c: Connect) -> Result<Address, String> {
    cx.create(c);
    let e = cx
        .select_timeout::<(Connected, NotConnected)>(WAIT)
        .expect("an answer to connect");
    if e.is::<Connected>() {
        Ok(e.sender())
    } else {
        Err(e.take::<NotConnected>().unwrap().reason)
    }
}

/// Connects and returns the address of the listening object at the other end and the
/// `Connected` notice.
fn connected(cx: &mut ThreadContext, c: Connect) -> Result<(Address, Connected), String> {
    cx.create(c);
    let e = cx
        .select_timeout::<(Connected, NotConnected)>(WAIT)
        .expect("an answer to connect");
    let from = e.sender();
    match e.take::<Connected>() {
        Ok(up) => Ok((from, up)),
        Err(e) => Err(e.take::<NotConnected>().unwrap().reason),
    }
}

fn ask_table(cx: &mut ThreadContext, to: Address, m: impl Message) -> Table {
    let v = cx.ask_timeout(to, m, WAIT);
    v.downcast::<Table>()
        .unwrap_or_else(|other| panic!("expected a table, got {other:?}"))
}

#[test]
fn two_processes_exchange_messages_over_a_plain_link() {
    let p = peer(&[]);
    let mut cx = ThreadContext::attach();
    let server = connect(&mut cx, Connect::new(p.address)).expect("connected");
    assert!(!server.is_local());
    let t = ask_table(&mut cx, server, Xy { x: 3, y: 2 });
    assert_eq!(t, vec![vec![0.0, 1.0, 2.0], vec![100.0, 101.0, 102.0]]);
    // Many requests in flight over the one link, each answered.
    let asks: Vec<Address> = (0..50)
        .map(|i| cx.create(GetResponse::new(Xy { x: i % 5 + 1, y: 1 }, server).timeout(WAIT)))
        .collect();
    for (i, a) in asks.into_iter().enumerate() {
        let t = cx.wait_for(a).downcast::<Table>().expect("a table");
        assert_eq!(t[0].len(), i % 5 + 1);
    }
}

#[test]
fn encrypted_link_with_a_pre_shared_key() {
    let p = peer(&["--encrypted", "--key", KEY]);
    let mut cx = ThreadContext::attach();
    let server =
        connect(&mut cx, Connect::new(p.address).encrypted(true).key(key())).expect("connected");
    let big = ask_table(&mut cx, server, Xy { x: 300, y: 300 }); // > 64 KiB: several Noise messages
    assert_eq!(big.len(), 300);
    assert_eq!(big[299][299], 30_199.0);
}

#[test]
fn peers_without_the_key_are_refused_with_a_reason() {
    let p = peer(&["--encrypted", "--key", KEY]);
    let mut cx = ThreadContext::attach();
    let no_key = connect(&mut cx, Connect::new(p.address).encrypted(true)).unwrap_err();
    assert!(no_key.contains("pre-shared key"), "{no_key}");
    let wrong = connect(
        &mut cx,
        Connect::new(p.address).encrypted(true).key([7; 32]),
    )
    .unwrap_err();
    assert!(wrong.contains("pre-shared key"), "{wrong}");
    let plain = connect(&mut cx, Connect::new(p.address)).unwrap_err();
    assert!(plain.contains("encryption mismatch"), "{plain}");
    // The peer still serves a proper client.
    let server =
        connect(&mut cx, Connect::new(p.address).encrypted(true).key(key())).expect("connected");
    assert_eq!(
        ask_table(&mut cx, server, Xy { x: 1, y: 1 }),
        vec![vec![0.0]]
    );
}

#[test]
fn an_encrypting_client_and_a_plain_server_fail_cleanly() {
    let p = peer(&[]);
    let mut cx = ThreadContext::attach();
    let began = Instant::now();
    let reason = connect(&mut cx, Connect::new(p.address).encrypted(true)).unwrap_err();
    assert!(reason.contains("encryption mismatch"), "{reason}");
    assert!(began.elapsed() < WAIT, "a mismatch must not hang");
}

#[test]
fn a_third_process_answers_an_address_it_was_given() {
    let b = peer(&[]);
    let c = peer(&[]);
    let mut cx = ThreadContext::attach();
    let b_owner = connect(&mut cx, Connect::new(b.address)).expect("connected to b");
    let c_owner = connect(&mut cx, Connect::new(c.address)).expect("connected to c");
    // b has no link to c: the request and its answer are relayed through this process.
    let t = ask_table(
        &mut cx,
        b_owner,
        Call {
            to: c_owner,
            x: 2,
            y: 2,
        },
    );
    assert_eq!(t, vec![vec![0.0, 1.0], vec![100.0, 101.0]]);
}

/// A hand-made plaintext handshake opening: preamble (no encryption, no key), then the
/// verdict "accepted".
fn raw_preamble() -> Vec<u8> {
    let mut p = b"STRT".to_vec();
    p.push(frame::PROTOCOL_VERSION);
    p.push(0);
    p.extend_from_slice(&[0; 8]);
    p.push(0);
    p
}

/// Opens a hand-made plaintext link to `address` as the object `owner` (its node is the
/// one the HELLO claims): preamble, verdict and HELLO written, nothing read yet.
fn raw_link(address: SocketAddr, owner: Address) -> TcpStream {
    let mut s = TcpStream::connect(address).unwrap();
    s.write_all(&raw_preamble()).unwrap();
    let mut hello = Vec::new();
    frame::encode_control(
        &mut hello,
        &frame::Frame::Hello {
            version: frame::PROTOCOL_VERSION,
            node: owner.node(),
            owner,
        },
    );
    s.write_all(&hello).unwrap();
    s
}

fn read_until_closed(s: &mut TcpStream) -> Vec<u8> {
    s.set_read_timeout(Some(WAIT)).unwrap();
    let mut all = Vec::new();
    let mut buf = [0u8; 4096];
    loop {
        match s.read(&mut buf) {
            Ok(0) => return all,
            Ok(n) => all.extend_from_slice(&buf[..n]),
            Err(e) if e.kind() == std::io::ErrorKind::ConnectionReset => return all,
            Err(e) => panic!("the peer neither closed nor answered: {e}"),
        }
    }
}

#[test]
fn garbage_on_one_connection_closes_only_that_connection() {
    let p = peer(&[]);
    let mut cx = ThreadContext::attach();
    let server = connect(&mut cx, Connect::new(p.address)).expect("connected");

    let mut junk = TcpStream::connect(p.address).unwrap();
    junk.write_all(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
        .unwrap();
    // Closed by the peer: at most its own preamble came back, and no frame.
    let reply = read_until_closed(&mut junk);
    assert!(
        reply.len() <= raw_preamble().len() && (reply.is_empty() || reply.starts_with(b"STRT")),
        "{reply:?}"
    );

    // A correct handshake followed by a malformed frame: closed with a named reason.
    let mut bad = raw_link(p.address, Address::from_parts(0x5eed, 1));
    bad.write_all(&[3, 0, 0, 0, 99, 1, 2]).unwrap(); // kind 99 does not exist
    let reply = read_until_closed(&mut bad);
    let text = String::from_utf8_lossy(&reply);
    assert!(text.contains("unknown frame kind 99"), "{text:?}");

    // Oversized: a length over the maximum is refused before any body is read.
    let mut big = raw_link(p.address, Address::from_parts(0xb16, 1));
    big.write_all(&(64u32 << 20).to_le_bytes()).unwrap();
    let text = String::from_utf8_lossy(&read_until_closed(&mut big)).to_string();
    assert!(text.contains("exceeds the maximum"), "{text:?}");

    // The good link and the process are unaffected.
    assert_eq!(
        ask_table(&mut cx, server, Xy { x: 2, y: 1 }),
        vec![vec![0.0, 1.0]]
    );
}

#[test]
fn an_oversized_message_closes_the_link_with_a_reason() {
    let p = peer(&["--max-frame", "2048"]);
    let mut cx = ThreadContext::attach();
    let server = connect(&mut cx, Connect::new(p.address)).expect("connected");
    cx.send(server, vec![7u8; 10_000]);
    let e = cx
        .select_timeout::<(Closed,)>(WAIT)
        .expect("the link closes");
    match e.take::<Closed>().unwrap().reason {
        CloseReason::PeerEnded(r) => assert!(r.contains("exceeds the maximum"), "{r}"),
        other => panic!("unexpected reason {other:?}"),
    }
}

#[test]
fn keep_alive_closes_a_silent_link_as_stale() {
    let p = peer(&["--keep-alive-ms", "100"]);
    let mut silent = raw_link(p.address, Address::from_parts(0x51e7, 1));
    // Never answer the pings: the peer must give up on us.
    let text = String::from_utf8_lossy(&read_until_closed(&mut silent)).to_string();
    assert!(text.contains("went stale"), "{text:?}");
}

#[test]
fn a_healthy_idle_link_with_keep_alive_stays_up() {
    // Both ends probe every 100 ms; a second of silence from the application is thirty
    // probes, and the link must survive all of them.
    let p = peer(&["--keep-alive-ms", "100"]);
    let mut cx = ThreadContext::attach();
    let server = connect(
        &mut cx,
        Connect::new(p.address).keep_alive(Duration::from_millis(100)),
    )
    .expect("connected");
    assert_eq!(
        ask_table(&mut cx, server, Xy { x: 1, y: 1 }),
        vec![vec![0.0]]
    );
    let closed = cx.select_timeout::<(Closed,)>(Duration::from_secs(1));
    assert!(closed.is_err(), "an idle, healthy link closed: {closed:?}");
    assert_eq!(
        ask_table(&mut cx, server, Xy { x: 2, y: 1 }),
        vec![vec![0.0, 1.0]]
    );
}

#[test]
fn a_silent_peer_closes_the_owners_link_as_stale() {
    let p = peer(&[]);
    let mut cx = ThreadContext::attach();
    let server = connect(
        &mut cx,
        Connect::new(p.address).keep_alive(Duration::from_millis(100)),
    )
    .expect("connected");
    assert_eq!(
        ask_table(&mut cx, server, Xy { x: 1, y: 1 }),
        vec![vec![0.0]]
    );
    p.freeze();
    let e = cx
        .select_timeout::<(Closed,)>(WAIT)
        .expect("the owner hears that the link closed");
    match e.take::<Closed>().unwrap().reason {
        CloseReason::WentStale => {}
        other => panic!("expected WentStale, got {other:?}"),
    }
}

#[test]
fn a_second_connection_claiming_a_linked_node_is_refused_and_the_first_keeps_its_replies() {
    let p = peer(&[]);
    let mut cx = ThreadContext::attach();
    let server = connect(&mut cx, Connect::new(p.address)).expect("connected");
    assert_eq!(
        ask_table(&mut cx, server, Xy { x: 1, y: 1 }),
        vec![vec![0.0]]
    );

    // An impostor claims this process's node id, which already has a link to the peer.
    let me = cx.address();
    let mut impostor = raw_link(p.address, me);
    let text = String::from_utf8_lossy(&read_until_closed(&mut impostor)).to_string();
    assert!(
        text.contains("already has a link to this process"),
        "{text:?}"
    );

    // The replies for this node still come here, over the first link.
    assert_eq!(
        ask_table(&mut cx, server, Xy { x: 2, y: 1 }),
        vec![vec![0.0, 1.0]]
    );
}

#[test]
fn forged_runtime_messages_from_a_peer_are_refused_and_then_its_link_closed() {
    let p = peer(&[]);
    let mut cx = ThreadContext::attach();
    let server = connect(&mut cx, Connect::new(p.address)).expect("connected");

    let me = Address::from_parts(0xf0_12ed, 1);
    let mut forger = raw_link(p.address, me);
    forger.set_read_timeout(Some(WAIT)).unwrap();
    // The peer's preamble and verdict, then its HELLO naming its owner.
    let mut head = vec![0u8; raw_preamble().len()];
    forger.read_exact(&mut head).unwrap();
    let mut frames = frame::FrameReader::new(1 << 20);
    let owner = loop {
        let mut buf = [0u8; 512];
        let n = forger.read(&mut buf).unwrap();
        assert!(n > 0, "the peer closed before its HELLO");
        frames.extend(&buf[..n]);
        if let Some(frame::Frame::Hello { owner, .. }) = frames.next_frame().unwrap() {
            break owner;
        }
    };
    // A Returned claims that a child of the peer's owner ended with our value.
    let mut forged = Vec::new();
    for _ in 0..16 {
        let returned = AnyMessage::new(Returned {
            value: AnyMessage::new(7u32),
        });
        frame::encode_message(&mut forged, owner, me, &returned).unwrap();
    }
    forger.write_all(&forged).unwrap();
    let text = String::from_utf8_lossy(&read_until_closed(&mut forger)).to_string();
    assert!(text.contains("may not send"), "{text:?}");

    // The peer is unharmed and still serves its legitimate peer.
    assert_eq!(
        ask_table(&mut cx, server, Xy { x: 1, y: 2 }),
        vec![vec![0.0], vec![100.0]]
    );
}

/// A directory for one test's key files, removed when dropped.
struct KeyDir(PathBuf);

impl KeyDir {
    fn new(name: &str) -> KeyDir {
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .subsec_nanos();
        let dir = std::env::temp_dir().join(format!(
            "strata-net-links-{name}-{}-{nanos}",
            std::process::id()
        ));
        std::fs::create_dir(&dir).unwrap();
        KeyDir(dir)
    }

    /// A new static key, saved in this directory as `name` (mode 0600).
    fn identity(&self, name: &str) -> (StaticKey, String) {
        let key = StaticKey::generate().unwrap();
        let path = self.0.join(name);
        key.save(&path).unwrap();
        (key, path.to_string_lossy().into_owned())
    }
}

impl Drop for KeyDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

#[test]
fn static_keys_link_peers_that_allow_each_other_and_name_them() {
    let dir = KeyDir::new("allowed");
    let (server, server_file) = dir.identity("server.key");
    let client = StaticKey::generate().unwrap();
    let client_public = client.public().to_string();
    let p = peer(&[
        "--encrypted",
        "--identity",
        &server_file,
        "--allow-peer",
        &client_public,
    ]);
    let mut cx = ThreadContext::attach();
    let (server_object, up) = connected(
        &mut cx,
        Connect::new(p.address)
            .encrypted(true)
            .identity(client.clone())
            .allow_peers([server.public()]),
    )
    .expect("connected");
    // Each end is told the other's key id.
    assert_eq!(up.peer_key, Some(server.public().id()));
    assert_eq!(
        p.process.line(WAIT),
        format!("accepted {}", client.public().id())
    );
    let big = ask_table(&mut cx, server_object, Xy { x: 300, y: 300 });
    assert_eq!(big[299][299], 30_199.0);
}

#[test]
fn a_static_key_that_is_not_allowed_is_refused_at_either_end_with_a_reason() {
    let dir = KeyDir::new("refused");
    let (server, server_file) = dir.identity("server.key");
    let friend = StaticKey::generate().unwrap();
    let friend_public = friend.public().to_string();
    let p = peer(&[
        "--encrypted",
        "--identity",
        &server_file,
        "--allow-peer",
        &friend_public,
    ]);
    let mut cx = ThreadContext::attach();
    // A stranger's key is refused by the listening end, which says so.
    let stranger = StaticKey::generate().unwrap();
    let refused = connect(
        &mut cx,
        Connect::new(p.address)
            .encrypted(true)
            .identity(stranger)
            .allow_peers([server.public()]),
    )
    .unwrap_err();
    assert!(
        refused.contains("the static key offered is not one this end allows"),
        "{refused}"
    );
    // A connecting end that expects another server refuses this one, naming its key.
    let expected = StaticKey::generate().unwrap();
    let wrong_server = connect(
        &mut cx,
        Connect::new(p.address)
            .encrypted(true)
            .identity(friend.clone())
            .allow_peers([expected.public()]),
    )
    .unwrap_err();
    assert!(
        wrong_server.contains(&server.public().id()) && wrong_server.contains("not allowed"),
        "{wrong_server}"
    );
    // No static key at all: refused in the verdict, before any key is exchanged.
    let without = connect(&mut cx, Connect::new(p.address).encrypted(true)).unwrap_err();
    assert!(without.contains("static-key mismatch"), "{without}");
    // The friend still links.
    let (server_object, up) = connected(
        &mut cx,
        Connect::new(p.address)
            .encrypted(true)
            .identity(friend)
            .allow_peers([server.public()]),
    )
    .expect("the allowed peer links");
    assert_eq!(up.peer_key, Some(server.public().id()));
    assert_eq!(
        ask_table(&mut cx, server_object, Xy { x: 1, y: 1 }),
        vec![vec![0.0]]
    );
}

#[test]
fn a_pre_shared_key_link_names_the_key() {
    let p = peer(&["--encrypted", "--key", KEY]);
    let mut cx = ThreadContext::attach();
    let (_, up) =
        connected(&mut cx, Connect::new(p.address).encrypted(true).key(key())).expect("connected");
    assert_eq!(up.peer_key, Some(keys::psk_id(&key())));
    assert_eq!(
        p.process.line(WAIT),
        format!("accepted {}", keys::psk_id(&key()))
    );
    // Plaintext: nothing proved, nothing named.
    let plain = peer(&[]);
    let (_, up) = connected(&mut cx, Connect::new(plain.address)).expect("connected");
    assert_eq!(up.peer_key, None);
}

#[test]
fn unauthenticated_links_off_loopback_are_refused_with_a_reason() {
    let mut cx = ThreadContext::attach();
    // 192.0.2.0/24 is reserved for documentation: nothing is ever connected to it.
    for c in [
        Connect::new("192.0.2.1:5051".parse().unwrap()),
        Connect::new("192.0.2.1:5051".parse().unwrap()).encrypted(true),
    ] {
        let reason = connect(&mut cx, c).unwrap_err();
        assert!(
            reason.contains("192.0.2.1:5051")
                && reason.contains("not loopback")
                && reason.contains("allow_unauthenticated"),
            "{reason}"
        );
    }
    // A listener on every interface without keys does not listen, and says why.
    cx.create(Listen::new("0.0.0.0:0".parse().unwrap()).encrypted(true));
    let e = cx
        .select_timeout::<(Listening, NotListening)>(WAIT)
        .expect("an answer to listen");
    let why = e.take::<NotListening>().expect("not listening").reason;
    assert!(why.contains("not loopback"), "{why}");
}
