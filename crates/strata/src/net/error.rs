//! `LinkError`: why a link could not be opened.
//!
//! The handshake (`handshake.rs`), its driver (`link.rs`) and the Noise layer
//! (`noise.rs`) fail with a [`LinkError`] naming what went wrong. It reaches users as
//! text — the reason of a `NotConnected` or of the link object's fault — so its `Display`
//! is the sentence they read (and some tests look for).
//!
//! Text that came from the peer (a refusal reason, a CLOSE reason) goes through
//! [`peer_text`] before it is kept: cut to about [`PEER_TEXT_MAX`] bytes, control and
//! direction-changing characters escaped, so a peer can neither flood the logs nor write
//! terminal escapes into them.

use super::frame::FrameError;
use super::handshake::Role;

/// Why an end refuses its peer after reading the peer's preamble. The text is sent to the
/// peer in the verdict, so a refused peer learns why. The peer is not authenticated yet,
/// so the text stays terse: it says what the peer's own preamble got wrong and nothing of
/// this end beyond what this end's preamble already shows.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Refusal {
    /// The ends speak different protocol versions.
    Version { ours: u8, theirs: u8 },
    /// One end encrypts and the other does not.
    Encryption { encrypting: Role, plain: Role },
    /// A pre-shared or static key is in use (at either end) on a plaintext link.
    KeysNeedEncryption,
    /// One end authenticates with a static key and the other has none.
    StaticKeys { with: Role, without: Role },
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
                f.write_str("pre-shared and static keys need encryption: set encrypted at both ends")
            }
            Refusal::StaticKeys { with, without } => write!(
                f,
                "static-key mismatch: the {with} end authenticates with a static key, the {without} end has none"
            ),
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
    /// The Noise handshake failed to authenticate with a pre-shared key in use: the keys
    /// differ (or the handshake was altered in transit).
    KeyWrong,
    /// The Noise handshake failed to verify without a pre-shared key: it was altered in
    /// transit (the preambles included, which are hashed into it).
    Tampered,
    /// The peer authenticated with a static key this end does not allow (its id).
    PeerKeyNotAllowed(String),
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
    /// The peer claims a node id that was proved with another static key.
    NodeKeyMismatch(u64),
    /// The peer's HELLO names an owning object on another node than its own: a link's
    /// notices must come from the peer's side.
    OwnerElsewhere(crate::Address),
    /// A link off loopback would not authenticate its peer, and that was not allowed.
    Unauthenticated(String),
    /// The link's settings contradict each other (what is wrong).
    Settings(&'static str),
}

/// The text a verdict or CLOSE refusing a peer's static key carries (and what the refused
/// end reports, also when the refusal came as the handshake's refusal marker).
pub(crate) const STATIC_KEY_REFUSED: &str = "the static key offered is not one this end allows";

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
            LinkError::KeyWrong => f.write_str(
                "authentication failed: the peer does not hold the same pre-shared key (or the handshake was altered in transit)",
            ),
            LinkError::Tampered => f.write_str(
                "authentication failed: the encrypted handshake did not verify (it was altered in transit)",
            ),
            LinkError::PeerKeyNotAllowed(id) => write!(
                f,
                "the peer's static key {id} is not allowed (it is not among allow_peers)"
            ),
            LinkError::NoiseStart(e) => write!(f, "cannot start the Noise handshake: {e}"),
            LinkError::Noise(e) => write!(f, "noise: {e}"),
            LinkError::Encryption(e) => write!(f, "encryption failed: {e}"),
            LinkError::Decryption => f.write_str("decryption failed (corrupt or forged data)"),
            LinkError::BadHello(e) => write!(f, "bad HELLO: {}", peer_text(&e.to_string())),
            LinkError::NotHello(got) => write!(f, "expected HELLO, got {}", peer_text(got)),
            LinkError::OwnNode => {
                f.write_str("the peer claims this node's own id (a link to itself?)")
            }
            LinkError::CannotWatch(e) => write!(f, "cannot watch the connection: {e}"),
            LinkError::NodeTaken(node) => write!(
                f,
                "the peer claims node {node:016x}, which already has a link to this process"
            ),
            LinkError::NodeKeyMismatch(node) => write!(
                f,
                "the peer claims node {node:016x}, which another static key proved before"
            ),
            LinkError::OwnerElsewhere(owner) => write!(
                f,
                "the peer names {owner}, an object of another node, as its link's owner"
            ),
            LinkError::Unauthenticated(address) => write!(
                f,
                "refusing a link that would not authenticate its peer on {address}, which is not loopback: \
                 set a pre-shared key (key), or an identity with allow_peers, or allow_unauthenticated() to accept anyone"
            ),
            LinkError::Settings(what) => write!(f, "bad link settings: {what}"),
        }
    }
}

impl std::error::Error for LinkError {}

/// About how much text from a peer is kept (see [`peer_text`]).
pub(crate) const PEER_TEXT_MAX: usize = 256;

/// Text that came from the peer, made fit to log and to show: control characters and the
/// characters that reorder or hide text (bidirectional overrides, zero-width marks) are
/// escaped as `\u{..}` (`\n`, `\t` as such), and whatever would take it past
/// [`PEER_TEXT_MAX`] bytes is cut and marked with `…`.
pub(crate) fn peer_text(text: &str) -> String {
    let mut out = String::with_capacity(text.len().min(PEER_TEXT_MAX + 4));
    for c in text.chars() {
        let hidden = matches!(c, '\u{200b}'..='\u{200f}' | '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}' | '\u{feff}');
        let piece: String = if c.is_control() || hidden {
            c.escape_default().collect()
        } else {
            c.into()
        };
        if out.len() + piece.len() > PEER_TEXT_MAX {
            out.push('…');
            break;
        }
        out.push_str(&piece);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn peer_text_escapes_controls_and_is_cut() {
        assert_eq!(peer_text("no thanks"), "no thanks");
        assert_eq!(
            peer_text("a\x1b[2Jb\nc\u{202e}d\u{7f}"),
            "a\\u{1b}[2Jb\\nc\\u{202e}d\\u{7f}"
        );
        let long = peer_text(&"é".repeat(1000));
        assert!(
            long.len() <= PEER_TEXT_MAX + '…'.len_utf8(),
            "{}",
            long.len()
        );
        assert!(long.ends_with('…'));
        // Escapes count towards the limit: a flood of control bytes stays short.
        let escapes = peer_text(&"\u{1b}".repeat(10_000));
        assert!(escapes.len() <= PEER_TEXT_MAX + '…'.len_utf8());
        assert!(!escapes.contains('\u{1b}'));
    }
}
