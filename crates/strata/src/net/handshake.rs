//! The handshake, as a state machine that opens no socket and reads no clock.
//!
//! Each side at once:
//! 1. sends a plaintext *preamble* (`frame::Preamble`): protocol version, whether it
//!    encrypts, whether it authenticates with a static key, and the id of the pre-shared
//!    key it offers;
//! 2. reads the peer's preamble, *judges* it against its own settings and sends its
//!    *verdict*: accepted, or refused with a reason — so a refused peer learns why (a
//!    key missing, an encryption mismatch naming which end wanted what) instead of seeing
//!    a reset. A mismatch fails cleanly at both ends, it never hangs. The peer is not
//!    authenticated yet, so reasons are terse; what came from the peer is escaped and cut
//!    (`error::peer_text`) before it is kept;
//! 3. when encrypted, runs a Noise handshake (X25519, ChaCha20-Poly1305, BLAKE2s) whose
//!    prologue is both preambles, the connecting end's first, so a preamble changed in
//!    transit fails it. The pattern follows the keys:
//!    - `NN`: no key. Protects against eavesdroppers only: nothing is authenticated, so
//!      an active man-in-the-middle can sit between the ends;
//!    - `NNpsk0`: a pre-shared key decides who may connect (a peer without it fails at the
//!      first message that needs it);
//!    - `XX`: each end has a static key (`LinkSettings::identity`) and learns the other's;
//!      an end with an allow-list (`allowed_peers`) refuses a key not on it — the
//!      connecting end by sending a refusal marker (a Noise message of length 0) instead
//!      of its last handshake message, so that it never shows its own key to a listening
//!      end it does not allow; the listening end by sending a sealed CLOSE instead of HELLO;
//!    - `XXpsk3`: both, the pre-shared key mixed into the last message.
//!
//!    Every later byte travels in Noise transport messages (`noise.rs`);
//! 4. sends HELLO (its node id and the owning object's address) and reads the peer's.
//!
//! [`Handshake`] does all of that on bytes: feed it what arrives with
//! [`received`](Handshake::received) and ask [`next`](Handshake::next) what to do — write
//! these bytes, read more (at least so many), done, or failed with a [`LinkError`]. The
//! driver in `link.rs` feeds it from a stream under the handshake's time limit; the tests
//! below drive two machines against each other in memory.

use std::sync::Arc;

use parking_lot::Mutex;

use super::error::{peer_text, LinkError, Refusal, STATIC_KEY_REFUSED};
use super::frame::{
    self, Frame, FrameReader, Preamble, KEY_ID_LEN, PREAMBLE_LEN, PROTOCOL_VERSION,
};
use super::keys::{self, PublicKey, StaticKey};
use super::link::LinkSettings;
use super::noise::{self, seal, NoiseKeys, Opener, NOISE_MAX};
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

impl Role {
    /// The role of the other end.
    fn other(self) -> Role {
        match self {
            Role::Accepting => Role::Connecting,
            Role::Connecting => Role::Accepting,
        }
    }
}

/// The 8 bytes a preamble carries to name a pre-shared key (`keys::psk_wire_id`: a
/// domain-separated hash, which names the key without revealing it).
pub(crate) fn key_id(key: &[u8; 32]) -> [u8; KEY_ID_LEN] {
    keys::psk_wire_id(key)
}

/// What this end says of itself, as far as judging the peer's preamble goes.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Ours<'a> {
    /// Whether this end encrypts.
    pub(crate) encrypted: bool,
    /// Whether it authenticates with a static key.
    pub(crate) static_key: bool,
    /// Its pre-shared keys.
    pub(crate) keys: &'a [[u8; 32]],
}

/// Checks the peer's preamble against this end's settings.
pub(crate) fn judge(role: Role, ours: Ours<'_>, theirs: &Preamble) -> Result<(), Refusal> {
    if theirs.version != PROTOCOL_VERSION {
        return Err(Refusal::Version {
            ours: PROTOCOL_VERSION,
            theirs: theirs.version,
        });
    }
    if theirs.encrypted != ours.encrypted {
        let (encrypting, plain) = if ours.encrypted {
            (role, role.other())
        } else {
            (role.other(), role)
        };
        return Err(Refusal::Encryption { encrypting, plain });
    }
    let no_key = [0; KEY_ID_LEN];
    let any_keys =
        theirs.key_id != no_key || !ours.keys.is_empty() || ours.static_key || theirs.static_key;
    if !ours.encrypted && any_keys {
        return Err(Refusal::KeysNeedEncryption);
    }
    if theirs.static_key != ours.static_key {
        let (with, without) = if ours.static_key {
            (role, role.other())
        } else {
            (role.other(), role)
        };
        return Err(Refusal::StaticKeys { with, without });
    }
    if role == Role::Accepting
        && !ours.keys.is_empty()
        && !ours.keys.iter().any(|k| key_id(k) == theirs.key_id)
    {
        return Err(Refusal::KeyMissing);
    }
    if role == Role::Accepting && ours.keys.is_empty() && theirs.key_id != no_key {
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
    /// The peer's static public key, when the link uses static keys (`XX`, `XXpsk3`):
    /// the peer proved it holds the private half, and it passed this end's allow-list
    /// (any key does when the list is empty). The key to bind the peer's node id to.
    pub(crate) peer_static: Option<[u8; 32]>,
    /// The id the application is given for what the peer proved (`Accepted::peer_key`,
    /// `Connected::peer_key`): its static key's id (`x25519:…`) when it has one, else the
    /// id of the pre-shared key both hold (`psk:…`), else `None`.
    pub(crate) peer_key: Option<String>,
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
    /// Exchanging Noise handshake messages.
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
    identity: Option<StaticKey>,
    allowed_peers: Vec<PublicKey>,
    node: u64,
    owner: Address,
    stage: Stage,
    /// This end's preamble, then (once the peer's has arrived) both, the connecting
    /// end's first: the Noise prologue.
    prologue: Vec<u8>,
    /// The pre-shared key in use on this link, once chosen.
    psk: Option<[u8; 32]>,
    /// The peer's static key, once it has shown it and it passed the allow-list.
    peer_static: Option<[u8; 32]>,
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
            static_key: settings.identity.is_some(),
            key_id: offered.map(key_id).unwrap_or([0; KEY_ID_LEN]),
        }
        .encode(&mut output);
        Handshake {
            role,
            encrypted: settings.encrypted,
            keys: settings.keys.clone(),
            identity: settings.identity.clone(),
            allowed_peers: settings.allowed_peers.clone(),
            node,
            owner,
            stage: Stage::Preamble,
            prologue: output.clone(),
            psk: None,
            peer_static: None,
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
        let peer_key = match (&self.peer_static, &self.psk) {
            (Some(k), _) => Some(PublicKey::from_bytes(*k).id()),
            (None, Some(psk)) => Some(keys::psk_id(psk)),
            (None, None) => None,
        };
        Established {
            peer,
            frames: self.frames,
            opener: self.opener,
            peer_static: self.peer_static,
            peer_key,
        }
    }

    fn fail(&mut self, e: LinkError) {
        self.stage = Stage::Failed(e);
    }

    /// Why the Noise handshake did not verify, as far as this end can tell.
    fn unverified(&self) -> LinkError {
        if self.psk.is_some() {
            LinkError::KeyWrong
        } else {
            LinkError::Tampered
        }
    }

    /// Steps through the stages before HELLO while the input allows.
    fn advance(&mut self) {
        loop {
            match &mut self.stage {
                Stage::Preamble => {
                    let Some(raw) = self.input.get(..PREAMBLE_LEN) else {
                        return;
                    };
                    let raw: [u8; PREAMBLE_LEN] = raw.try_into().expect("preamble length");
                    self.input.drain(..PREAMBLE_LEN);
                    let Some(theirs) = Preamble::decode(&raw) else {
                        return self.fail(LinkError::NotStrata);
                    };
                    match self.role {
                        Role::Connecting => self.prologue.extend_from_slice(&raw),
                        Role::Accepting => {
                            let mut both = raw.to_vec();
                            both.extend_from_slice(&self.prologue);
                            self.prologue = both;
                        }
                    }
                    let ours = Ours {
                        encrypted: self.encrypted,
                        static_key: self.identity.is_some(),
                        keys: &self.keys,
                    };
                    match judge(self.role, ours, &theirs) {
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
                        return self.fail(LinkError::RefusedByPeer(peer_text(&why)));
                    }
                    if !self.encrypted {
                        self.send_hello();
                        continue;
                    }
                    self.psk = match self.role {
                        Role::Connecting => self.keys.first(),
                        Role::Accepting => self.keys.iter().find(|k| key_id(k) == their_key),
                    }
                    .copied();
                    let keys = NoiseKeys {
                        psk: self.psk.as_ref(),
                        identity: self.identity.as_ref().map(StaticKey::secret),
                        prologue: &self.prologue,
                    };
                    match noise::start(self.role, keys) {
                        Ok(s) => self.stage = Stage::Noise(Box::new(s)),
                        Err(e) => return self.fail(e),
                    }
                }
                Stage::Noise(state) => {
                    if state.is_handshake_finished() {
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
                        continue;
                    }
                    if state.is_my_turn() {
                        if let Err(e) = noise_message(state, &mut self.output) {
                            return self.fail(e);
                        }
                        continue;
                    }
                    let Some(&[hi, lo]) = self.input.get(..2) else {
                        return;
                    };
                    let n = u16::from_be_bytes([hi, lo]) as usize;
                    if n == 0 {
                        // The refusal marker: the peer does not allow this end's key.
                        return self.fail(LinkError::RefusedByPeer(STATIC_KEY_REFUSED.to_string()));
                    }
                    let Some(message) = self.input.get(2..2 + n) else {
                        return;
                    };
                    let mut payload = vec![0u8; NOISE_MAX];
                    if state.read_message(message, &mut payload).is_err() {
                        let e = self.unverified();
                        return self.fail(e);
                    }
                    self.input.drain(..2 + n);
                    let shown = state
                        .get_remote_static()
                        .and_then(|k| <[u8; 32]>::try_from(k).ok());
                    if let (Some(theirs), None) = (shown, self.peer_static) {
                        if !self.allows(&theirs) {
                            return self.refuse_key(theirs);
                        }
                        self.peer_static = Some(theirs);
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

    /// Whether the peer's static key passes this end's allow-list (an empty list allows
    /// any key).
    fn allows(&self, theirs: &[u8; 32]) -> bool {
        self.allowed_peers.is_empty() || self.allowed_peers.iter().any(|k| k.as_bytes() == theirs)
    }

    /// Refuses the peer's static key `theirs`: tells the peer (the refusal marker while
    /// the Noise handshake is under way; a sealed CLOSE once it is finished) and fails.
    fn refuse_key(&mut self, theirs: [u8; 32]) {
        let Stage::Noise(state) = std::mem::replace(&mut self.stage, Stage::Preamble) else {
            unreachable!("keys are refused in the Noise stage")
        };
        if state.is_handshake_finished() {
            if let Ok(transport) = state.into_transport_mode() {
                let cipher = Some(Arc::new(Mutex::new(transport)));
                let mut close = Vec::new();
                frame::encode_control(&mut close, &Frame::Close(STATIC_KEY_REFUSED.into()));
                let _ = seal(&cipher, &close, &mut self.output);
            }
        } else {
            self.output.extend_from_slice(&[0, 0]);
        }
        self.fail(LinkError::PeerKeyNotAllowed(
            PublicKey::from_bytes(theirs).id(),
        ));
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
            Ok(Some(Frame::Close(why))) => Err(LinkError::RefusedByPeer(peer_text(&why))),
            Ok(Some(other)) => Err(LinkError::NotHello(peer_text(&format!("{other:?}")))),
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

    /// Encrypted settings with the static key `me`, allowing `allowed` (any when empty),
    /// and the pre-shared keys `keys`.
    fn with_identity(me: &StaticKey, allowed: &[&StaticKey], keys: &[[u8; 32]]) -> LinkSettings {
        LinkSettings {
            identity: Some(me.clone()),
            allowed_peers: allowed.iter().map(|k| k.public()).collect(),
            ..settings(true, keys)
        }
    }

    fn new_key() -> StaticKey {
        StaticKey::generate().expect("a static key")
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
    /// Both ends failed with `want`, which reads as `text`.
    fn both_refused(ends: (Outcome, Outcome), want: Refusal, text: &str) {
        assert_eq!(ends.0.err(), Some(LinkError::Refused(want.clone())));
        assert_eq!(ends.1.err(), Some(LinkError::Refused(want.clone())));
        assert_eq!(want.to_string(), text);
    }

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
        both_refused(
            run_pair(&settings(false, &[]), &settings(true, &[])),
            Refusal::Encryption {
                encrypting: Role::Connecting,
                plain: Role::Accepting,
            },
            "encryption mismatch: the connecting end requires encryption, the listening end does not encrypt",
        );

        both_refused(
            run_pair(&settings(true, &[]), &settings(false, &[])),
            Refusal::Encryption {
                encrypting: Role::Accepting,
                plain: Role::Connecting,
            },
            "encryption mismatch: the listening end requires encryption, the connecting end does not encrypt",
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
            "authentication failed: the peer does not hold the same pre-shared key (or the handshake was altered in transit)"
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
        // No pre-shared key to blame: the handshake was altered.
        assert_eq!(c.err(), Some(LinkError::Tampered));
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
            static_key: false,
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
            static_key: false,
            key_id: key.map(key_id).unwrap_or([0; KEY_ID_LEN]),
        };
        let ours = |encrypted, keys| Ours {
            encrypted,
            static_key: false,
            keys,
        };
        use Role::*;
        assert_eq!(
            judge(Accepting, ours(false, &[]), &theirs(false, None)),
            Ok(())
        );
        assert_eq!(
            judge(Connecting, ours(true, &[KEY]), &theirs(true, None)),
            Ok(())
        );
        assert_eq!(
            judge(Accepting, ours(true, &[KEY]), &theirs(true, Some(&KEY))),
            Ok(())
        );
        assert_eq!(
            judge(
                Accepting,
                ours(true, &[KEY]),
                &theirs(true, Some(&OTHER_KEY))
            ),
            Err(Refusal::KeyMissing)
        );
        // A connecting end does not check the (absent) key id of the listening end.
        assert_eq!(
            judge(Connecting, ours(true, &[]), &theirs(true, Some(&KEY))),
            Ok(())
        );
        assert_eq!(
            judge(Connecting, ours(false, &[]), &theirs(false, Some(&KEY))),
            Err(Refusal::KeysNeedEncryption)
        );
        let mut old = theirs(false, None);
        old.version = 1;
        assert_eq!(
            judge(Accepting, ours(false, &[]), &old),
            Err(Refusal::Version {
                ours: PROTOCOL_VERSION,
                theirs: 1
            })
        );
        // Static keys: both ends or neither, and only encrypted.
        let with_static = Preamble {
            static_key: true,
            ..theirs(true, None)
        };
        let static_ours = Ours {
            static_key: true,
            ..ours(true, &[])
        };
        assert_eq!(judge(Accepting, static_ours, &with_static), Ok(()));
        assert_eq!(
            judge(Accepting, ours(true, &[]), &with_static),
            Err(Refusal::StaticKeys {
                with: Connecting,
                without: Accepting
            })
        );
        assert_eq!(
            judge(Connecting, static_ours, &theirs(true, None)),
            Err(Refusal::StaticKeys {
                with: Connecting,
                without: Accepting
            })
        );
        let plain_static = Preamble {
            static_key: true,
            ..theirs(false, None)
        };
        assert_eq!(
            judge(Accepting, ours(false, &[]), &plain_static),
            Err(Refusal::KeysNeedEncryption)
        );
    }

    #[test]
    fn the_peer_key_names_what_the_peer_proved() {
        let (l, c) = run_pair(&settings(false, &[]), &settings(false, &[]));
        assert_eq!((l.unwrap().peer_key, c.unwrap().peer_key), (None, None));
        let (l, c) = run_pair(&settings(true, &[]), &settings(true, &[]));
        let (l, c) = (l.unwrap(), c.unwrap());
        assert_eq!((l.peer_key, c.peer_key), (None, None));
        assert_eq!((l.peer_static, c.peer_static), (None, None));
        // With a pre-shared key only: its id, at both ends.
        let (l, c) = run_pair(&settings(true, &[OTHER_KEY, KEY]), &settings(true, &[KEY]));
        let psk = Some(keys::psk_id(&KEY));
        assert_eq!(l.unwrap().peer_key, psk);
        assert_eq!(c.unwrap().peer_key, psk);
    }

    #[test]
    fn static_keys_link_and_each_end_learns_the_others_key() {
        let (server, client) = (new_key(), new_key());
        for (l, c) in [
            // Each end allows exactly the other.
            (
                with_identity(&server, &[&client], &[]),
                with_identity(&client, &[&server], &[]),
            ),
            // An empty allow-list accepts any key, and still reports it.
            (
                with_identity(&server, &[], &[]),
                with_identity(&client, &[], &[]),
            ),
            // Noise XXpsk3: a static key and a pre-shared key.
            (
                with_identity(&server, &[&client], &[KEY]),
                with_identity(&client, &[&server], &[KEY]),
            ),
        ] {
            let (l, c) = run_pair(&l, &c);
            let (l, c) = (l.expect("listening end up"), c.expect("connecting end up"));
            assert_eq!(l.peer_static, Some(*client.public().as_bytes()));
            assert_eq!(c.peer_static, Some(*server.public().as_bytes()));
            assert_eq!(l.peer_key, Some(client.public().id()));
            assert_eq!(c.peer_key, Some(server.public().id()));
            assert_linked(Ok(l), Ok(c));
        }
    }

    #[test]
    fn a_listening_end_refuses_a_static_key_it_does_not_allow_and_the_peer_learns_why() {
        let (server, client, stranger) = (new_key(), new_key(), new_key());
        let (l, c) = run_pair(
            &with_identity(&server, &[&client], &[]),
            &with_identity(&stranger, &[], &[]),
        );
        assert_eq!(
            l.err(),
            Some(LinkError::PeerKeyNotAllowed(stranger.public().id()))
        );
        assert_eq!(
            c.err(),
            Some(LinkError::RefusedByPeer(STATIC_KEY_REFUSED.into()))
        );
        let text = LinkError::PeerKeyNotAllowed(stranger.public().id()).to_string();
        assert!(
            text.contains(&stranger.public().id()) && text.contains("not allowed"),
            "{text}"
        );
        assert_eq!(
            LinkError::RefusedByPeer(STATIC_KEY_REFUSED.into()).to_string(),
            "refused by the peer: the static key offered is not one this end allows"
        );
    }

    #[test]
    fn a_connecting_end_refuses_a_static_key_it_does_not_allow_without_showing_its_own() {
        let (server, client, impostor) = (new_key(), new_key(), new_key());
        let mut sent = Vec::new();
        let (l, c) = run_pair_with(
            listening(&with_identity(&impostor, &[], &[])),
            connecting(&with_identity(&client, &[&server], &[])),
            Wire::Whole,
            |from_listening, bytes| {
                if !from_listening {
                    sent.extend_from_slice(bytes);
                }
            },
        );
        assert_eq!(
            c.err(),
            Some(LinkError::PeerKeyNotAllowed(impostor.public().id()))
        );
        assert_eq!(
            l.err(),
            Some(LinkError::RefusedByPeer(STATIC_KEY_REFUSED.into()))
        );
        // Everything the connecting end wrote: its preamble, its verdict, the first Noise
        // message (its ephemeral key) and the refusal marker — never its static key.
        assert_eq!(sent.len(), PREAMBLE_LEN + 1 + (2 + 32) + 2, "{sent:?}");
        assert!(sent.ends_with(&[0, 0]), "{sent:?}");
    }

    #[test]
    fn static_keys_at_one_end_only_are_refused_naming_which() {
        let key = new_key();
        both_refused(
            run_pair(&with_identity(&key, &[], &[]), &settings(true, &[])),
            Refusal::StaticKeys {
                with: Role::Accepting,
                without: Role::Connecting,
            },
            "static-key mismatch: the listening end authenticates with a static key, the connecting end has none",
        );
    }

    #[test]
    fn a_pre_shared_key_mismatch_under_static_keys_fails_authentication() {
        let (server, client) = (new_key(), new_key());
        // The connecting end holds another key but claims the listening end's key id.
        let (l, c) = run_pair_with(
            listening(&with_identity(&server, &[&client], &[KEY])),
            connecting(&with_identity(&client, &[&server], &[OTHER_KEY])),
            Wire::Whole,
            |from_listening, bytes| {
                if !from_listening && bytes.starts_with(frame::MAGIC) {
                    bytes[6..PREAMBLE_LEN].copy_from_slice(&key_id(&KEY));
                }
            },
        );
        assert_eq!(l.err(), Some(LinkError::KeyWrong));
        assert_eq!(c.err(), Some(LinkError::PeerClosed));
    }

    /// Runs `l` against `c` with one preamble changed in transit by `change` (the
    /// connecting end's when `from_connecting`): a change that the peer's judge lets
    /// through, so only the Noise prologue can catch it.
    fn with_a_changed_preamble(
        l: &LinkSettings,
        c: &LinkSettings,
        from_connecting: bool,
        change: fn(&mut [u8]),
    ) -> (Outcome, Outcome) {
        run_pair_with(
            listening(l),
            connecting(c),
            Wire::Whole,
            |from_listening, bytes| {
                if from_listening != from_connecting && bytes.starts_with(frame::MAGIC) {
                    change(&mut bytes[..PREAMBLE_LEN]);
                }
            },
        )
    }

    #[test]
    fn a_preamble_changed_in_transit_fails_the_encrypted_handshake() {
        // An unused flag bit, set on the connecting end's preamble: judged fine (unknown
        // bits are ignored), but the two ends hash different prologues.
        let unused_flag: fn(&mut [u8]) = |p| p[5] |= 0x80;
        // The listening end's key-id field, which a connecting end does not judge.
        let key_id_byte: fn(&mut [u8]) = |p| p[13] ^= 1;
        let (server, client) = (new_key(), new_key());
        let cases = [
            ("NN", settings(true, &[]), settings(true, &[])),
            ("NNpsk0", settings(true, &[KEY]), settings(true, &[KEY])),
            (
                "XX",
                with_identity(&server, &[&client], &[]),
                with_identity(&client, &[&server], &[]),
            ),
            (
                "XXpsk3",
                with_identity(&server, &[&client], &[KEY]),
                with_identity(&client, &[&server], &[KEY]),
            ),
        ];
        for (pattern, l, c) in &cases {
            // Untouched, these link.
            let (ok_l, ok_c) = run_pair(l, c);
            assert!(ok_l.is_ok() && ok_c.is_ok(), "{pattern} links");
            for (from_connecting, change) in [(true, unused_flag), (false, key_id_byte)] {
                let (l, c) = with_a_changed_preamble(l, c, from_connecting, change);
                let failed: Vec<LinkError> = [l.err(), c.err()].into_iter().flatten().collect();
                assert_eq!(failed.len(), 2, "{pattern}: both ends fail, {failed:?}");
                let verified =
                    |e: &LinkError| matches!(e, LinkError::KeyWrong | LinkError::Tampered);
                assert!(
                    failed.iter().any(verified),
                    "{pattern}, change from the connecting end {from_connecting}: {failed:?}"
                );
                assert!(
                    failed
                        .iter()
                        .all(|e| verified(e) || *e == LinkError::PeerClosed),
                    "{pattern}: {failed:?}"
                );
            }
        }
    }

    #[test]
    fn a_peer_reason_is_escaped_and_cut_before_it_is_kept() {
        // A refusal reason full of terminal escapes and far too long.
        let mut h = connecting(&settings(false, &[]));
        written(&mut h);
        let mut theirs = written(&mut listening(&settings(false, &[])));
        let hostile = format!("\u{1b}]0;owned\u{7}{}", "x".repeat(5000));
        frame::encode_verdict(&mut theirs, Err(&hostile));
        h.received(&theirs);
        written(&mut h);
        let Next::Failed(LinkError::RefusedByPeer(why)) = h.next() else {
            panic!("refused");
        };
        assert!(!why.contains('\u{1b}') && !why.contains('\u{7}'), "{why:?}");
        assert!(why.starts_with("\\u{1b}]0;owned\\u{7}x"), "{why:?}");
        assert!(
            why.len() <= crate::net::error::PEER_TEXT_MAX + 3,
            "{}",
            why.len()
        );
        // The same for a CLOSE where HELLO belongs.
        let close = instead_of_hello(&Frame::Close(hostile.clone()));
        let Next::Failed(LinkError::RefusedByPeer(why)) = close else {
            panic!("refused: {close:?}");
        };
        assert!(!why.contains('\u{1b}') && why.len() <= 260, "{why:?}");
    }
}
