//! The handshake, as a state machine that opens no socket and reads no clock.
//!
//! Each side at once:
//! 1. sends a plaintext *preamble* (`frame::Preamble`): protocol version, whether it
//!    encrypts, and the id of the pre-shared key it offers;
//! 2. reads the peer's preamble, *judges* it against its own settings and sends its
//!    *verdict*: accepted, or refused with a reason — so a refused peer learns why (a
//!    key missing, an encryption mismatch naming which end wanted what) instead of seeing
//!    a reset. A mismatch fails cleanly at both ends, it never hangs;
//! 3. when encrypted, runs a Noise handshake (`NN` with X25519, ChaCha20-Poly1305,
//!    BLAKE2s; `NNpsk0` when a pre-shared key decides who may connect — a peer without the
//!    key fails authentication and is refused). Every later byte travels in Noise
//!    transport messages (`noise.rs`);
//! 4. sends HELLO (its node id and the owning object's address) and reads the peer's.
//!
//! [`Handshake`] does all of that on bytes: feed it what arrives with
//! [`received`](Handshake::received) and ask [`next`](Handshake::next) what to do — write
//! these bytes, read more (at least so many), done, or failed with a [`LinkError`]. The
//! driver in `link.rs` feeds it from a stream under the handshake's time limit; the tests
//! below drive two machines against each other in memory.

use std::sync::Arc;

use parking_lot::Mutex;

use super::error::{LinkError, Refusal};
use super::frame::{
    self, Frame, FrameReader, Preamble, KEY_ID_LEN, PREAMBLE_LEN, PROTOCOL_VERSION,
};
use super::link::LinkSettings;
use super::noise::{self, seal, Opener, NOISE_MAX};
use crate::Address;

/// Which end of the link this is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Role {
    /// The end that listened and accepted the connection.
    Accepting,
    /// The end that connected.
    Connecting,
}

impl std::fmt::Display for Role {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Role::Accepting => "listening",
            Role::Connecting => "connecting",
        })
    }
}

/// The first 8 bytes of the key's BLAKE2s hash: names a key without revealing it.
pub(crate) fn key_id(key: &[u8; 32]) -> [u8; KEY_ID_LEN] {
    use blake2::{Blake2s256, Digest};
    let digest = Blake2s256::digest(key);
    digest[..KEY_ID_LEN].try_into().expect("8 bytes")
}

/// Checks the peer's preamble against this end's settings.
pub(crate) fn judge(
    role: Role,
    encrypted: bool,
    keys: &[[u8; 32]],
    theirs: &Preamble,
) -> Result<(), Refusal> {
    if theirs.version != PROTOCOL_VERSION {
        return Err(Refusal::Version {
            ours: PROTOCOL_VERSION,
            theirs: theirs.version,
        });
    }
    if theirs.encrypted != encrypted {
        let (me, peer) = match role {
            Role::Accepting => (Role::Accepting, Role::Connecting),
            Role::Connecting => (Role::Connecting, Role::Accepting),
        };
        let (encrypting, plain) = if encrypted { (me, peer) } else { (peer, me) };
        return Err(Refusal::Encryption { encrypting, plain });
    }
    let no_key = [0; KEY_ID_LEN];
    if !encrypted && (theirs.key_id != no_key || !keys.is_empty()) {
        return Err(Refusal::KeysNeedEncryption);
    }
    if role == Role::Accepting
        && !keys.is_empty()
        && !keys.iter().any(|k| key_id(k) == theirs.key_id)
    {
        return Err(Refusal::KeyMissing);
    }
    if role == Role::Accepting && keys.is_empty() && theirs.key_id != no_key {
        return Err(Refusal::KeyNotExpected);
    }
    Ok(())
}

/// The other end of a link, as its HELLO named it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Peer {
    /// Its node id.
    pub(crate) node: u64,
    /// The object that owns the link at its end.
    pub(crate) owner: Address,
}

/// What a finished handshake hands to the running link.
pub(crate) struct Established {
    /// Who is at the other end.
    pub(crate) peer: Peer,
    /// The frame reader, holding any frames that arrived with the peer's HELLO.
    pub(crate) frames: FrameReader,
    /// Opens what arrives next (its cipher is the link's when encrypted).
    pub(crate) opener: Opener,
}

/// What the handshake needs now.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Next {
    /// Write these bytes to the peer, then ask again.
    Write(Vec<u8>),
    /// Read from the peer and pass it to [`Handshake::received`]: at least this many more
    /// bytes are needed before anything changes.
    Read(usize),
    /// The handshake is done: take the result with [`Handshake::established`].
    Done,
    /// The handshake failed (what it still had to say, such as the verdict telling the
    /// peer why it is refused, came first as [`Next::Write`]).
    Failed(LinkError),
}

enum Stage {
    /// Waiting for the peer's preamble.
    Preamble,
    /// This end accepted the peer; waiting for the peer's verdict on this end.
    Verdict {
        their_key: [u8; KEY_ID_LEN],
    },
    /// Waiting for the peer's next Noise handshake message.
    Noise(Box<noise::Handshaking>),
    /// HELLO sent; waiting for the peer's.
    Hello,
    Done(Peer),
    Failed(LinkError),
}

/// One end's handshake (see the module doc).
pub(crate) struct Handshake {
    role: Role,
    encrypted: bool,
    keys: Vec<[u8; 32]>,
    node: u64,
    owner: Address,
    stage: Stage,
    /// Received bytes not yet used (before HELLO; from then on they go to `frames`).
    input: Vec<u8>,
    /// Bytes to write to the peer.
    output: Vec<u8>,
    frames: FrameReader,
    opener: Opener,
}

impl Handshake {
    /// The handshake of `role`'s end of a link with `settings`, for this end's node `node`
    /// whose owning object is `owner`. Its preamble is ready to write.
    pub(crate) fn new(role: Role, settings: &LinkSettings, node: u64, owner: Address) -> Self {
        let offered = match role {
            Role::Connecting => settings.keys.first(),
            Role::Accepting => None,
        };
        let mut output = Vec::with_capacity(PREAMBLE_LEN);
        Preamble {
            version: PROTOCOL_VERSION,
            encrypted: settings.encrypted,
            key_id: offered.map(key_id).unwrap_or([0; KEY_ID_LEN]),
        }
        .encode(&mut output);
        Handshake {
            role,
            encrypted: settings.encrypted,
            keys: settings.keys.clone(),
            node,
            owner,
            stage: Stage::Preamble,
            input: Vec::new(),
            output,
            frames: FrameReader::new(settings.max_frame),
            opener: Opener::new(None),
        }
    }

    /// What to do now: bytes to write come first, then the outcome or how much to read.
    pub(crate) fn next(&mut self) -> Next {
        if !self.output.is_empty() {
            return Next::Write(std::mem::take(&mut self.output));
        }
        match &self.stage {
            Stage::Done(_) => Next::Done,
            Stage::Failed(e) => Next::Failed(e.clone()),
            Stage::Preamble => Next::Read(PREAMBLE_LEN - self.input.len()),
            Stage::Verdict { .. } => Next::Read(frame::verdict_wants(&self.input)),
            Stage::Noise(_) => Next::Read(match self.input.get(..2) {
                Some(&[hi, lo]) => (2 + u16::from_be_bytes([hi, lo]) as usize) - self.input.len(),
                _ => 2 - self.input.len(),
            }),
            Stage::Hello => Next::Read(1),
        }
    }

    /// Takes in bytes received from the peer, and goes as far as they allow.
    pub(crate) fn received(&mut self, bytes: &[u8]) {
        match self.stage {
            Stage::Failed(_) => {}
            Stage::Hello | Stage::Done(_) => self.frames_arrived(bytes),
            _ => {
                self.input.extend_from_slice(bytes);
                self.advance();
            }
        }
    }

    /// The result of a finished handshake (after [`Next::Done`]).
    ///
    /// # Panics
    /// When the handshake is not done.
    pub(crate) fn established(self) -> Established {
        let Stage::Done(peer) = self.stage else {
            panic!("the handshake is not done");
        };
        Established {
            peer,
            frames: self.frames,
            opener: self.opener,
        }
    }

    fn fail(&mut self, e: LinkError) {
        self.stage = Stage::Failed(e);
    }

    /// Steps through the stages before HELLO while the input allows.
    fn advance(&mut self) {
        loop {
            match &mut self.stage {
                Stage::Preamble => {
                    let Some(theirs) = self.input.get(..PREAMBLE_LEN) else {
                        return;
                    };
                    let theirs = Preamble::decode(theirs.try_into().expect("preamble length"));
                    self.input.drain(..PREAMBLE_LEN);
                    let Some(theirs) = theirs else {
                        return self.fail(LinkError::NotStrata);
                    };
                    match judge(self.role, self.encrypted, &self.keys, &theirs) {
                        Ok(()) => {
                            frame::encode_verdict(&mut self.output, Ok(()));
                            self.stage = Stage::Verdict {
                                their_key: theirs.key_id,
                            };
                        }
                        Err(why) => {
                            frame::encode_verdict(&mut self.output, Err(&why.to_string()));
                            return self.fail(LinkError::Refused(why));
                        }
                    }
                }
                Stage::Verdict { their_key } => {
                    let their_key = *their_key;
                    let Some((verdict, used)) = frame::decode_verdict(&self.input) else {
                        return;
                    };
                    self.input.drain(..used);
                    if let Err(why) = verdict {
                        return self.fail(LinkError::RefusedByPeer(why));
                    }
                    if !self.encrypted {
                        self.send_hello();
                        continue;
                    }
                    let key = match self.role {
                        Role::Connecting => self.keys.first(),
                        Role::Accepting => self.keys.iter().find(|k| key_id(k) == their_key),
                    };
                    let mut state = match noise::start(self.role, key) {
                        Ok(s) => Box::new(s),
                        Err(e) => return self.fail(e),
                    };
                    if self.role == Role::Connecting {
                        if let Err(e) = noise_message(&mut state, &mut self.output) {
                            return self.fail(e);
                        }
                    }
                    self.stage = Stage::Noise(state);
                }
                Stage::Noise(state) => {
                    let Some(&[hi, lo]) = self.input.get(..2) else {
                        return;
                    };
                    let n = u16::from_be_bytes([hi, lo]) as usize;
                    let Some(message) = self.input.get(2..2 + n) else {
                        return;
                    };
                    let mut payload = vec![0u8; NOISE_MAX];
                    if state.read_message(message, &mut payload).is_err() {
                        return self.fail(LinkError::KeyWrong);
                    }
                    self.input.drain(..2 + n);
                    if self.role == Role::Accepting {
                        if let Err(e) = noise_message(state, &mut self.output) {
                            return self.fail(e);
                        }
                    }
                    let Stage::Noise(state) = std::mem::replace(&mut self.stage, Stage::Hello)
                    else {
                        unreachable!("in the Noise stage")
                    };
                    match state.into_transport_mode() {
                        Ok(transport) => {
                            self.opener = Opener::new(Some(Arc::new(Mutex::new(transport))));
                            self.send_hello();
                        }
                        Err(e) => return self.fail(LinkError::Noise(e.to_string())),
                    }
                }
                Stage::Hello => {
                    let rest = std::mem::take(&mut self.input);
                    return self.frames_arrived(&rest);
                }
                Stage::Done(_) | Stage::Failed(_) => return,
            }
        }
    }

    /// Queues this end's HELLO (sealed when encrypted) and waits for the peer's.
    fn send_hello(&mut self) {
        let mut hello = Vec::new();
        frame::encode_control(
            &mut hello,
            &Frame::Hello {
                version: PROTOCOL_VERSION,
                node: self.node,
                owner: self.owner,
            },
        );
        match seal(&self.opener.cipher, &hello, &mut self.output) {
            Ok(()) => self.stage = Stage::Hello,
            Err(e) => self.fail(e),
        }
    }

    /// Bytes after the handshake proper: opened, cut into frames, the first one HELLO.
    fn frames_arrived(&mut self, bytes: &[u8]) {
        match self.opener.open(bytes) {
            Ok(plain) => self.frames.extend(plain),
            Err(e) => return self.fail(e),
        }
        if !matches!(self.stage, Stage::Hello) {
            return;
        }
        let outcome = match self.frames.next_frame() {
            Ok(None) => return,
            Err(e) => Err(LinkError::BadHello(e)),
            Ok(Some(Frame::Hello { node, owner, .. })) if node != 0 && node != self.node => {
                Ok(Peer { node, owner })
            }
            Ok(Some(Frame::Hello { .. })) => Err(LinkError::OwnNode),
            Ok(Some(Frame::Close(why))) => Err(LinkError::RefusedByPeer(why)),
            Ok(Some(other)) => Err(LinkError::NotHello(format!("{other:?}"))),
        };
        match outcome {
            Ok(peer) => self.stage = Stage::Done(peer),
            Err(e) => self.fail(e),
        }
    }
}

/// Appends this end's next Noise handshake message (empty payload), length first.
fn noise_message(state: &mut noise::Handshaking, out: &mut Vec<u8>) -> Result<(), LinkError> {
    let mut buf = vec![0u8; NOISE_MAX];
    let n = state
        .write_message(&[], &mut buf)
        .map_err(|e| LinkError::Noise(e.to_string()))?;
    out.extend_from_slice(&(n as u16).to_be_bytes());
    out.extend_from_slice(&buf[..n]);
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::net::noise::seal;

    const LISTENER: u64 = 0xa11;
    const CONNECTOR: u64 = 0xc0;
    const KEY: [u8; 32] = [5; 32];
    const OTHER_KEY: [u8; 32] = [7; 32];

    fn settings(encrypted: bool, keys: &[[u8; 32]]) -> LinkSettings {
        LinkSettings {
            encrypted,
            keys: keys.to_vec(),
            ..LinkSettings::default()
        }
    }

    fn listening(s: &LinkSettings) -> Handshake {
        Handshake::new(
            Role::Accepting,
            s,
            LISTENER,
            Address::from_parts(LISTENER, 1),
        )
    }

    fn connecting(s: &LinkSettings) -> Handshake {
        Handshake::new(
            Role::Connecting,
            s,
            CONNECTOR,
            Address::from_parts(CONNECTOR, 2),
        )
    }

    /// How bytes travel between the two machines.
    #[derive(Clone, Copy)]
    enum Wire {
        /// Each write arrives whole.
        Whole,
        /// Each write arrives one byte at a time.
        Bytewise,
    }

    /// What one end ended with: `Ok` when done, else why (`PeerClosed` for an end still
    /// waiting when the other had stopped — in a real link the other end closes).
    type Outcome = Result<Established, LinkError>;

    /// Drives `a` and `b` against each other until neither can move; `tamper` may change
    /// each write (from `a` when its flag is true) before it arrives.
    fn run_pair_with(
        mut a: Handshake,
        mut b: Handshake,
        wire: Wire,
        mut tamper: impl FnMut(bool, &mut Vec<u8>),
    ) -> (Outcome, Outcome) {
        loop {
            let mut moved = false;
            for from_a in [true, false] {
                let (this, other) = if from_a {
                    (&mut a, &mut b)
                } else {
                    (&mut b, &mut a)
                };
                if let Next::Write(mut bytes) = this.next() {
                    tamper(from_a, &mut bytes);
                    match wire {
                        Wire::Whole => other.received(&bytes),
                        Wire::Bytewise => bytes.iter().for_each(|b| other.received(&[*b])),
                    }
                    moved = true;
                }
            }
            if !moved {
                break;
            }
        }
        let outcome = |mut h: Handshake| match h.next() {
            Next::Done => Ok(h.established()),
            Next::Failed(e) => Err(e),
            Next::Read(_) => Err(LinkError::PeerClosed),
            Next::Write(_) => unreachable!("all writes were delivered"),
        };
        (outcome(a), outcome(b))
    }

    /// Runs a listening end with `l` against a connecting end with `c`, both ways of
    /// delivering bytes, and checks both give the same outcome; returns the whole-write one
    /// as (listening, connecting).
    fn run_pair(l: &LinkSettings, c: &LinkSettings) -> (Outcome, Outcome) {
        let whole = run_pair_with(listening(l), connecting(c), Wire::Whole, |_, _| {});
        let bytewise = run_pair_with(listening(l), connecting(c), Wire::Bytewise, |_, _| {});
        let errors = |o: &Outcome| o.as_ref().err().cloned();
        assert_eq!(errors(&whole.0), errors(&bytewise.0), "listening end");
        assert_eq!(errors(&whole.1), errors(&bytewise.1), "connecting end");
        whole
    }

    /// Both ends are up, see each other, and frames cross in both directions (sealed when
    /// encrypted).
    fn assert_linked(l: Outcome, c: Outcome) {
        let mut l = l.expect("the listening end is up");
        let mut c = c.expect("the connecting end is up");
        assert_eq!(l.peer.node, CONNECTOR);
        assert_eq!(l.peer.owner, Address::from_parts(CONNECTOR, 2));
        assert_eq!(c.peer.node, LISTENER);
        assert_eq!(c.peer.owner, Address::from_parts(LISTENER, 1));
        cross(&l, &mut c);
        cross(&c, &mut l);
    }

    /// A frame sealed by `from` opens and reads at `to`.
    fn cross(from: &Established, to: &mut Established) {
        let mut plain = Vec::new();
        frame::encode_control(&mut plain, &Frame::Close("bye".into()));
        let mut sealed = Vec::new();
        seal(&from.opener.cipher, &plain, &mut sealed).unwrap();
        assert_eq!(from.opener.cipher.is_some(), sealed != plain);
        let opened = to.opener.open(&sealed).unwrap();
        to.frames.extend(opened);
        assert!(matches!(to.frames.next_frame(), Ok(Some(Frame::Close(r))) if r == "bye"));
    }

    #[test]
    fn plain_to_plain_links() {
        let (l, c) = run_pair(&settings(false, &[]), &settings(false, &[]));
        assert_linked(l, c);
    }

    #[test]
    fn encrypted_to_encrypted_links() {
        let (l, c) = run_pair(&settings(true, &[]), &settings(true, &[]));
        assert!(l.as_ref().unwrap().opener.cipher.is_some());
        assert_linked(l, c);
    }

    #[test]
    fn encrypted_with_a_shared_key_links() {
        let (l, c) = run_pair(&settings(true, &[KEY]), &settings(true, &[KEY]));
        assert_linked(l, c);
        // A listening end accepts any of its keys.
        let (l, c) = run_pair(&settings(true, &[OTHER_KEY, KEY]), &settings(true, &[KEY]));
        assert_linked(l, c);
    }

    #[test]
    fn an_encryption_mismatch_is_refused_at_both_ends_naming_who_wanted_what() {
        let (l, c) = run_pair(&settings(false, &[]), &settings(true, &[]));
        let want = Refusal::Encryption {
            encrypting: Role::Connecting,
            plain: Role::Accepting,
        };
        assert_eq!(l.err(), Some(LinkError::Refused(want.clone())));
        assert_eq!(c.err(), Some(LinkError::Refused(want.clone())));
        assert_eq!(
            want.to_string(),
            "encryption mismatch: the connecting end requires encryption, the listening end does not encrypt"
        );

        let (l, c) = run_pair(&settings(true, &[]), &settings(false, &[]));
        let want = Refusal::Encryption {
            encrypting: Role::Accepting,
            plain: Role::Connecting,
        };
        assert_eq!(l.err(), Some(LinkError::Refused(want.clone())));
        assert_eq!(c.err(), Some(LinkError::Refused(want.clone())));
        assert_eq!(
            want.to_string(),
            "encryption mismatch: the listening end requires encryption, the connecting end does not encrypt"
        );
    }

    #[test]
    fn a_peer_without_the_key_is_refused_and_learns_why() {
        for offered in [&[][..], &[OTHER_KEY][..]] {
            let (l, c) = run_pair(&settings(true, &[KEY]), &settings(true, offered));
            assert_eq!(l.err(), Some(LinkError::Refused(Refusal::KeyMissing)));
            let c = c.err().expect("refused");
            assert_eq!(
                c,
                LinkError::RefusedByPeer("no pre-shared key this end accepts was offered".into())
            );
            assert!(c.to_string().contains("pre-shared key"), "{c}");
        }
    }

    #[test]
    fn a_key_offered_to_an_end_without_keys_is_refused() {
        let (l, c) = run_pair(&settings(true, &[]), &settings(true, &[KEY]));
        assert_eq!(l.err(), Some(LinkError::Refused(Refusal::KeyNotExpected)));
        assert_eq!(
            c.err().map(|e| e.to_string()),
            Some("refused by the peer: a pre-shared key was offered but this end uses none".into())
        );
    }

    #[test]
    fn keys_without_encryption_are_refused() {
        let (l, c) = run_pair(&settings(false, &[KEY]), &settings(false, &[]));
        assert_eq!(
            l.err(),
            Some(LinkError::Refused(Refusal::KeysNeedEncryption))
        );
        assert_eq!(
            c.err(),
            Some(LinkError::RefusedByPeer(
                Refusal::KeysNeedEncryption.to_string()
            ))
        );
        // A connecting end with a key refuses a plaintext link itself.
        let (l, c) = run_pair(&settings(false, &[]), &settings(false, &[KEY]));
        assert_eq!(
            c.err(),
            Some(LinkError::Refused(Refusal::KeysNeedEncryption))
        );
        assert_eq!(
            l.err(),
            Some(LinkError::Refused(Refusal::KeysNeedEncryption))
        );
    }

    #[test]
    fn a_wrong_key_fails_noise_authentication() {
        // The connecting end holds another key but claims the listening end's key id: the
        // preambles agree, Noise does not.
        let (l, c) = run_pair_with(
            listening(&settings(true, &[KEY])),
            connecting(&settings(true, &[OTHER_KEY])),
            Wire::Whole,
            |from_listening, bytes| {
                if !from_listening && bytes.starts_with(frame::MAGIC) {
                    bytes[6..PREAMBLE_LEN].copy_from_slice(&key_id(&KEY));
                }
            },
        );
        assert_eq!(l.err(), Some(LinkError::KeyWrong));
        assert_eq!(c.err(), Some(LinkError::PeerClosed));
        assert_eq!(
            LinkError::KeyWrong.to_string(),
            "authentication failed: the peer does not hold the same pre-shared key"
        );
    }

    #[test]
    fn a_corrupted_noise_handshake_fails() {
        let (l, c) = run_pair_with(
            listening(&settings(true, &[])),
            connecting(&settings(true, &[])),
            Wire::Whole,
            |from_listening, bytes| {
                // The connecting end's first Noise message (its ephemeral key, after a
                // 2-byte length): the Diffie-Hellman results differ, so the reply does
                // not verify.
                if !from_listening && bytes.len() == 2 + 32 {
                    bytes[10] ^= 1;
                }
            },
        );
        assert_eq!(c.err(), Some(LinkError::KeyWrong));
        assert_eq!(l.err(), Some(LinkError::PeerClosed));
    }

    /// The bytes `h` writes until it wants to read or is finished.
    fn written(h: &mut Handshake) -> Vec<u8> {
        let mut all = Vec::new();
        while let Next::Write(bytes) = h.next() {
            all.extend(bytes);
        }
        all
    }

    #[test]
    fn a_peer_that_is_not_strata_is_dropped_without_a_verdict() {
        let mut h = listening(&settings(false, &[]));
        let preamble = written(&mut h);
        assert_eq!(preamble.len(), PREAMBLE_LEN);
        assert!(preamble.starts_with(frame::MAGIC));
        h.received(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n");
        assert_eq!(written(&mut h), b"");
        assert_eq!(h.next(), Next::Failed(LinkError::NotStrata));
        assert_eq!(
            LinkError::NotStrata.to_string(),
            "the peer does not speak the strata protocol"
        );
    }

    #[test]
    fn another_protocol_version_is_refused_and_told_why() {
        let mut h = listening(&settings(false, &[]));
        written(&mut h);
        let mut theirs = Vec::new();
        Preamble {
            version: PROTOCOL_VERSION + 1,
            encrypted: false,
            key_id: [0; KEY_ID_LEN],
        }
        .encode(&mut theirs);
        h.received(&theirs);
        let verdict = written(&mut h);
        let why = Refusal::Version {
            ours: PROTOCOL_VERSION,
            theirs: PROTOCOL_VERSION + 1,
        };
        assert_eq!(h.next(), Next::Failed(LinkError::Refused(why.clone())));
        // The refused peer reads why.
        assert_eq!(
            frame::decode_verdict(&verdict),
            Some((Err(why.to_string()), verdict.len()))
        );
        assert!(why.to_string().starts_with("protocol version mismatch"));
    }

    #[test]
    fn a_truncated_preamble_asks_for_the_rest() {
        let mut h = connecting(&settings(false, &[]));
        written(&mut h);
        let mut theirs = written(&mut listening(&settings(false, &[])));
        h.received(&theirs[..7]);
        assert_eq!(written(&mut h), b"", "no verdict on half a preamble");
        assert_eq!(h.next(), Next::Read(PREAMBLE_LEN - 7));
        // The rest, the verdict and the first 3 bytes of a HELLO at once.
        theirs.push(frame::VERDICT_ACCEPTED);
        let mut hello = Vec::new();
        frame::encode_control(
            &mut hello,
            &Frame::Hello {
                version: PROTOCOL_VERSION,
                node: LISTENER,
                owner: Address::from_parts(LISTENER, 1),
            },
        );
        theirs.extend_from_slice(&hello[..3]);
        h.received(&theirs[7..]);
        assert_eq!(written(&mut h).first(), Some(&frame::VERDICT_ACCEPTED));
        assert_eq!(h.next(), Next::Read(1));
        // The rest of the HELLO, and a frame behind it that the link must not lose.
        let mut rest = hello[3..].to_vec();
        frame::encode_control(&mut rest, &Frame::Ping);
        h.received(&rest);
        assert_eq!(h.next(), Next::Done);
        let mut up = h.established();
        assert_eq!(up.peer.node, LISTENER);
        assert!(matches!(up.frames.next_frame(), Ok(Some(Frame::Ping))));
    }

    #[test]
    fn a_verdict_is_read_however_it_is_cut() {
        let mut refused = Vec::new();
        frame::encode_verdict(&mut refused, Err("no thanks"));
        for cut in 0..refused.len() {
            assert_eq!(frame::decode_verdict(&refused[..cut]), None, "cut {cut}");
            assert!(frame::verdict_wants(&refused[..cut]) >= 1);
        }
        assert_eq!(
            frame::decode_verdict(&refused),
            Some((Err("no thanks".into()), refused.len()))
        );
        let long = "x".repeat(5000);
        let mut cut = Vec::new();
        frame::encode_verdict(&mut cut, Err(&long));
        assert_eq!(cut.len(), 3 + frame::MAX_REASON);
    }

    /// A connecting end that got through preamble and verdict, fed `frame` where the
    /// peer's HELLO belongs.
    fn instead_of_hello(f: &Frame) -> Next {
        let mut h = connecting(&settings(false, &[]));
        written(&mut h);
        let mut theirs = written(&mut listening(&settings(false, &[])));
        theirs.push(frame::VERDICT_ACCEPTED);
        frame::encode_control(&mut theirs, f);
        h.received(&theirs);
        written(&mut h);
        h.next()
    }

    #[test]
    fn only_a_hello_from_another_node_completes_the_handshake() {
        let hello = |node| Frame::Hello {
            version: PROTOCOL_VERSION,
            node,
            owner: Address::from_parts(node, 1),
        };
        assert_eq!(instead_of_hello(&hello(LISTENER)), Next::Done);
        assert_eq!(
            instead_of_hello(&hello(CONNECTOR)),
            Next::Failed(LinkError::OwnNode)
        );
        assert_eq!(
            instead_of_hello(&hello(0)),
            Next::Failed(LinkError::OwnNode)
        );
        assert_eq!(
            instead_of_hello(&Frame::Close("go away".into())),
            Next::Failed(LinkError::RefusedByPeer("go away".into()))
        );
        assert_eq!(
            instead_of_hello(&Frame::Ping),
            Next::Failed(LinkError::NotHello("Ping".into()))
        );
        let mut h = connecting(&settings(false, &[]));
        written(&mut h);
        let mut theirs = written(&mut listening(&settings(false, &[])));
        theirs.push(frame::VERDICT_ACCEPTED);
        theirs.extend_from_slice(&[1, 0, 0, 0, 99]);
        h.received(&theirs);
        assert!(matches!(h.next(), Next::Write(_)));
        assert_eq!(
            h.next(),
            Next::Failed(LinkError::BadHello(frame::FrameError::UnknownKind(99)))
        );
    }

    #[test]
    fn judge_is_a_function_of_role_settings_and_preamble() {
        let theirs = |encrypted, key: Option<&[u8; 32]>| Preamble {
            version: PROTOCOL_VERSION,
            encrypted,
            key_id: key.map(key_id).unwrap_or([0; KEY_ID_LEN]),
        };
        use Role::*;
        assert_eq!(judge(Accepting, false, &[], &theirs(false, None)), Ok(()));
        assert_eq!(judge(Connecting, true, &[KEY], &theirs(true, None)), Ok(()));
        assert_eq!(
            judge(Accepting, true, &[KEY], &theirs(true, Some(&KEY))),
            Ok(())
        );
        assert_eq!(
            judge(Accepting, true, &[KEY], &theirs(true, Some(&OTHER_KEY))),
            Err(Refusal::KeyMissing)
        );
        // A connecting end does not check the (absent) key id of the listening end.
        assert_eq!(
            judge(Connecting, true, &[], &theirs(true, Some(&KEY))),
            Ok(())
        );
        assert_eq!(
            judge(Connecting, false, &[], &theirs(false, Some(&KEY))),
            Err(Refusal::KeysNeedEncryption)
        );
        let mut old = theirs(false, None);
        old.version = 0;
        assert_eq!(
            judge(Accepting, false, &[], &old),
            Err(Refusal::Version {
                ours: PROTOCOL_VERSION,
                theirs: 0
            })
        );
    }
}
