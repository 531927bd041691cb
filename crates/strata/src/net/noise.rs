//! Noise as a stream layer: sealing bytes on their way out, opening them on their way in.
//!
//! Once the handshake (`handshake.rs`) has agreed on keys, every byte of an encrypted link
//! travels in Noise transport messages, each `length:u16-be` then the sealed bytes. The
//! write side (`outbox.rs`) [`seal`]s whole batches of encoded frames; the reader (`link.rs`)
//! passes what it reads through an [`Opener`] before cutting frames. A plaintext link uses
//! the same two calls, which then pass bytes through unchanged.

use std::sync::Arc;

use parking_lot::Mutex;

use super::error::LinkError;
use super::handshake::Role;

/// The largest Noise message, in bytes.
pub(crate) const NOISE_MAX: usize = 65_535;
/// The authentication tag each Noise transport message carries.
const NOISE_TAG: usize = 16;

/// A link's Noise transport state, shared by its write side and its reader.
pub(crate) type Cipher = Arc<Mutex<engine::Transport>>;

/// A Noise handshake under way.
pub(crate) use engine::Handshaking;

/// What this end brings to a Noise handshake, beyond its role.
#[derive(Clone, Copy)]
pub(crate) struct NoiseKeys<'a> {
    /// The pre-shared key both ends hold, if any.
    pub(crate) psk: Option<&'a [u8; 32]>,
    /// This end's static X25519 secret, if it authenticates with one.
    pub(crate) identity: Option<&'a [u8; 32]>,
    /// Bytes both ends hashed into the handshake before its first message (the two
    /// preambles, so that a change to either in transit fails the handshake).
    pub(crate) prologue: &'a [u8],
}

/// Starts this end's Noise handshake (X25519, ChaCha20-Poly1305, BLAKE2s). The pattern
/// follows the keys: `NN` with none, `NNpsk0` with a pre-shared key, `XX` with a static
/// identity, `XXpsk3` with both. The connecting end initiates. Without the `noise` cargo
/// feature this fails with a reason saying so (and a link asked to encrypt ends).
pub(crate) use engine::start;

/// The X25519 public key of a static secret; `None` in a build without the `noise`
/// feature (which has no curve arithmetic).
pub(crate) use engine::public_key;

/// The Noise implementation: snow, with the `noise` feature.
#[cfg(feature = "noise")]
mod engine {
    use super::{LinkError, NoiseKeys, Role};

    pub(crate) type Transport = snow::TransportState;
    pub(crate) type Handshaking = snow::HandshakeState;

    pub(crate) fn start(role: Role, keys: NoiseKeys<'_>) -> Result<Handshaking, LinkError> {
        let pattern = match (keys.identity.is_some(), keys.psk.is_some()) {
            (false, false) => "Noise_NN_25519_ChaChaPoly_BLAKE2s",
            (false, true) => "Noise_NNpsk0_25519_ChaChaPoly_BLAKE2s",
            (true, false) => "Noise_XX_25519_ChaChaPoly_BLAKE2s",
            (true, true) => "Noise_XXpsk3_25519_ChaChaPoly_BLAKE2s",
        };
        let mut builder = snow::Builder::new(pattern.parse().expect("a valid Noise pattern"))
            .prologue(keys.prologue);
        if let Some(secret) = keys.identity {
            builder = builder.local_private_key(secret);
        }
        if let Some(k) = keys.psk {
            let at = if keys.identity.is_some() { 3 } else { 0 };
            builder = builder.psk(at, k);
        }
        match role {
            Role::Connecting => builder.build_initiator(),
            Role::Accepting => builder.build_responder(),
        }
        .map_err(|e| LinkError::NoiseStart(e.to_string()))
    }

    pub(crate) fn public_key(secret: &[u8; 32]) -> Option<[u8; 32]> {
        use snow::params::DHChoice;
        use snow::resolvers::{CryptoResolver, DefaultResolver};
        let mut dh = DefaultResolver.resolve_dh(&DHChoice::Curve25519)?;
        dh.set(secret);
        dh.pubkey().try_into().ok()
    }
}

/// Without the `noise` feature there is no Noise state: the types have no values, so the
/// code that would use one is never reached, and [`start`] says why a link cannot encrypt.
#[cfg(not(feature = "noise"))]
mod engine {
    use super::{LinkError, NoiseKeys, Role};

    /// No value exists: a build without `noise` never has a transport state.
    pub(crate) enum Transport {}
    /// No value exists: a build without `noise` never starts a Noise handshake.
    pub(crate) enum Handshaking {}

    impl Transport {
        pub(crate) fn write_message(&mut self, _: &[u8], _: &mut [u8]) -> Result<usize, String> {
            match *self {}
        }
        pub(crate) fn read_message(&mut self, _: &[u8], _: &mut [u8]) -> Result<usize, String> {
            match *self {}
        }
    }

    impl Handshaking {
        pub(crate) fn write_message(&mut self, _: &[u8], _: &mut [u8]) -> Result<usize, String> {
            match *self {}
        }
        pub(crate) fn read_message(&mut self, _: &[u8], _: &mut [u8]) -> Result<usize, String> {
            match *self {}
        }
        pub(crate) fn into_transport_mode(self) -> Result<Transport, String> {
            match self {}
        }
        pub(crate) fn is_handshake_finished(&self) -> bool {
            match *self {}
        }
        pub(crate) fn is_my_turn(&self) -> bool {
            match *self {}
        }
        pub(crate) fn get_remote_static(&self) -> Option<&[u8]> {
            match *self {}
        }
    }

    pub(crate) fn start(_: Role, keys: NoiseKeys<'_>) -> Result<Handshaking, LinkError> {
        // Nothing to start them with.
        let _ = (keys.psk, keys.identity, keys.prologue);
        Err(LinkError::NoiseStart(
            "this build of strata has no encryption (the cargo feature `noise` is off)".into(),
        ))
    }

    pub(crate) fn public_key(_: &[u8; 32]) -> Option<[u8; 32]> {
        None
    }
}

/// Appends `plain` to `out`, sealed in Noise transport messages when there is a cipher.
pub(crate) fn seal(
    cipher: &Option<Cipher>,
    plain: &[u8],
    out: &mut Vec<u8>,
) -> Result<(), LinkError> {
    let Some(cipher) = cipher else {
        out.extend_from_slice(plain);
        return Ok(());
    };
    let mut state = cipher.lock();
    for chunk in plain.chunks(NOISE_MAX - NOISE_TAG) {
        let at = out.len();
        out.resize(at + 2 + chunk.len() + NOISE_TAG, 0);
        let n = state
            .write_message(chunk, &mut out[at + 2..])
            .map_err(|e| LinkError::Encryption(e.to_string()))?;
        out[at..at + 2].copy_from_slice(&(n as u16).to_be_bytes());
        out.truncate(at + 2 + n);
    }
    Ok(())
}

/// Turns received bytes into plaintext, opening Noise messages when encrypted (a message
/// split across reads waits for its rest).
pub(crate) struct Opener {
    pub(crate) cipher: Option<Cipher>,
    pending: Vec<u8>,
    plain: Vec<u8>,
}

impl Opener {
    /// An opener for a link with `cipher` (`None`: plaintext, bytes pass through).
    pub(crate) fn new(cipher: Option<Cipher>) -> Self {
        Opener {
            cipher,
            pending: Vec::new(),
            plain: Vec::new(),
        }
    }

    /// The plaintext of every whole message in what has arrived so far.
    pub(crate) fn open<'a>(&'a mut self, bytes: &'a [u8]) -> Result<&'a [u8], LinkError> {
        let Some(cipher) = &self.cipher else {
            return Ok(bytes);
        };
        self.pending.extend_from_slice(bytes);
        self.plain.clear();
        let mut at = 0;
        let mut state = cipher.lock();
        while self.pending.len() - at >= 2 {
            let n = u16::from_be_bytes([self.pending[at], self.pending[at + 1]]) as usize;
            if self.pending.len() - at - 2 < n {
                break;
            }
            let start = self.plain.len();
            self.plain.resize(start + n, 0);
            let m = state
                .read_message(&self.pending[at + 2..at + 2 + n], &mut self.plain[start..])
                .map_err(|_| LinkError::Decryption)?;
            self.plain.truncate(start + m);
            at += 2 + n;
        }
        self.pending.drain(..at);
        Ok(&self.plain)
    }
}
