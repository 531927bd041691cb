//! `LinkError`: why a link could not be opened.
//!
//! The handshake (`handshake.rs`), its driver (`link.rs`) and the Noise layer
//! (`noise.rs`) fail with a [`LinkError`] naming what went wrong. It reaches users as
//! text — the reason of a `NotConnected` or of the link object's fault — so its `Display`
//! is the sentence they read (and some tests look for).

use super::frame::FrameError;
use super::handshake::Role;

/// Why an end refuses its peer after reading the peer's preamble. The text is sent to the
/// peer in the verdict, so a refused peer learns why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Refusal {
    /// The ends speak different protocol versions.
    Version { ours: u8, theirs: u8 },
    /// One end encrypts and the other does not.
    Encryption { encrypting: Role, plain: Role },
    /// A pre-shared key is in use (at either end) on a plaintext link.
    KeysNeedEncryption,
    /// The listening end holds keys and the peer offered none of them.
    KeyMissing,
    /// The peer offered a key to a listening end that uses none.
    KeyNotExpected,
}

impl std::fmt::Display for Refusal {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Refusal::Version { ours, theirs } => write!(
                f,
                "protocol version mismatch: one end speaks {ours}, the other {theirs}"
            ),
            Refusal::Encryption { encrypting, plain } => write!(
                f,
                "encryption mismatch: the {encrypting} end requires encryption, the {plain} end does not encrypt"
            ),
            Refusal::KeysNeedEncryption => {
                f.write_str("pre-shared keys need encryption: set encrypted at both ends")
            }
            Refusal::KeyMissing => f.write_str("no pre-shared key this end accepts was offered"),
            Refusal::KeyNotExpected => {
                f.write_str("a pre-shared key was offered but this end uses none")
            }
        }
    }
}

/// Why a link could not be opened (or its encryption failed).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum LinkError {
    /// The handshake did not finish within its time limit.
    TimedOut,
    /// The peer closed the connection before the handshake finished.
    PeerClosed,
    /// Reading from the connection failed.
    ReadFailed(String),
    /// Writing to the connection failed.
    WriteFailed(String),
    /// The peer's first bytes are not a strata preamble.
    NotStrata,
    /// This end refused the peer, and told it why.
    Refused(Refusal),
    /// The peer refused this end, saying why (in its verdict or a CLOSE frame).
    RefusedByPeer(String),
    /// The Noise handshake failed to authenticate: the pre-shared keys differ.
    KeyWrong,
    /// The Noise handshake could not be set up.
    NoiseStart(String),
    /// A step of the Noise handshake failed.
    Noise(String),
    /// Sealing bytes failed.
    Encryption(String),
    /// Received bytes did not open: corrupt or forged.
    Decryption,
    /// The peer's HELLO is not a valid frame.
    BadHello(FrameError),
    /// The peer sent another frame where HELLO belongs.
    NotHello(String),
    /// The peer claims this node's own id.
    OwnNode,
    /// The connection could not be watched once the handshake was done.
    CannotWatch(String),
    /// The peer claims a node id that already has a live link to this process: a second
    /// connection may not take over another node's replies.
    NodeTaken(u64),
    /// The peer's HELLO names an owning object on another node than its own: a link's
    /// notices must come from the peer's side.
    OwnerElsewhere(crate::Address),
}

impl std::fmt::Display for LinkError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            LinkError::TimedOut => f.write_str("the handshake timed out"),
            LinkError::PeerClosed => {
                f.write_str("the peer closed the connection during the handshake")
            }
            LinkError::ReadFailed(e) => write!(f, "handshake read failed: {e}"),
            LinkError::WriteFailed(e) => write!(f, "handshake write failed: {e}"),
            LinkError::NotStrata => f.write_str("the peer does not speak the strata protocol"),
            LinkError::Refused(why) => why.fmt(f),
            LinkError::RefusedByPeer(why) => write!(f, "refused by the peer: {why}"),
            LinkError::KeyWrong => {
                f.write_str("authentication failed: the peer does not hold the same pre-shared key")
            }
            LinkError::NoiseStart(e) => write!(f, "cannot start the Noise handshake: {e}"),
            LinkError::Noise(e) => write!(f, "noise: {e}"),
            LinkError::Encryption(e) => write!(f, "encryption failed: {e}"),
            LinkError::Decryption => f.write_str("decryption failed (corrupt or forged data)"),
            LinkError::BadHello(e) => write!(f, "bad HELLO: {e}"),
            LinkError::NotHello(got) => write!(f, "expected HELLO, got {got}"),
            LinkError::OwnNode => {
                f.write_str("the peer claims this node's own id (a link to itself?)")
            }
            LinkError::CannotWatch(e) => write!(f, "cannot watch the connection: {e}"),
            LinkError::NodeTaken(node) => write!(
                f,
                "the peer claims node {node:016x}, which already has a link to this process"
            ),
            LinkError::OwnerElsewhere(owner) => write!(
                f,
                "the peer names {owner}, an object of another node, as its link's owner"
            ),
        }
    }
}

impl std::error::Error for LinkError {}
