//! Frames: how messages and link control travel on a byte stream.
//!
//! ```text
//! frame   := length:u32-le  kind:u8  payload          (length counts kind + payload)
//! kind 0  MESSAGE  to:address  from:address  message   (address = node:u64-le object:u64-le;
//!                                                       message = the binary codec: name, value)
//! kind 1  HELLO    version:u8  node:u64-le  owner:address  (first frame each way)
//! kind 2  PING                                         (keep-alive probe)
//! kind 3  PONG                                         (keep-alive answer)
//! kind 4  CLOSE    reason:utf-8                        (last frame: why the link closes)
//! kind 5  RELAY    hops:u8  to:address  from:address  message
//!                                                      (a MESSAGE passed on by a node
//!                                                       between; hops counts those nodes)
//! kind 0x80 | 0, 0x80 | 5: the same with  left:u64-le  after the two addresses: the
//!          message has a deadline, `left` microseconds after the frame was written
//!          (time left, not a clock reading: the two ends' clocks are never compared)
//! ```
//!
//! Addresses sit at fixed offsets so a node relaying a message to a third node reads the
//! receiver and sender (`peek`) without decoding the message. A `FrameReader` checks the length against the
//! maximum *before* buffering a body, so an oversized or hostile length costs nothing; every
//! malformed input is a `FrameError` naming what was wrong, never a panic.
//!
//! Before the first frame, each end sends a plaintext *preamble* and then, having read the
//! other's, a *verdict* (see `net/handshake.rs` for the steps between them):
//!
//! ```text
//! preamble := "STRT"  version:u8  flags:u8  key-id:[u8; 8]
//!     flags bit 0: this end encrypts; bit 1: it authenticates with a static key (Noise XX);
//!     the other bits are sent as zero and ignored on receipt (both preambles are hashed
//!     into the Noise handshake, so a change in transit still fails an encrypted link).
//!     key-id: which pre-shared key a connecting end holds, 8 bytes of BLAKE2s(label ‖ key)
//!     (`net::keys`); zero for none, and always zero from a listening end.
//! verdict  := 0                                              (accepted)
//!           | 1  length:u16-be  reason:utf-8                 (refused, and why; at most
//!                                                             MAX_REASON bytes of reason)
//! ```

use std::time::Duration;

use crate::message::{codec, AnyMessage, CodecError};
use crate::Address;

/// The default maximum frame size: 1 MiB.
pub const DEFAULT_MAX_FRAME: usize = 1 << 20;

/// The largest maximum frame a link may be given: 256 MiB (a peer may make this end hold
/// that much for one frame).
pub const MAX_FRAME_LIMIT: usize = 256 << 20;

/// The protocol version, carried in the preamble and in HELLO. Version 2 hashes the
/// preambles into the Noise handshake, names pre-shared keys by a domain-separated hash
/// and adds static keys; version 1 ends are refused with a reason.
pub const PROTOCOL_VERSION: u8 = 2;

/// The first bytes of a preamble: a peer that starts otherwise does not speak strata.
pub const MAGIC: &[u8; 4] = b"STRT";

/// The length of a preamble: magic, version, flags and key id.
pub const PREAMBLE_LEN: usize = 14;

/// The length of a key id in the preamble.
pub const KEY_ID_LEN: usize = 8;

/// Preamble flag: this end encrypts.
pub const FLAG_ENCRYPTED: u8 = 1;

/// Preamble flag: this end authenticates with a static key.
pub const FLAG_STATIC_KEY: u8 = 2;

/// The verdict byte of an accepted peer.
pub const VERDICT_ACCEPTED: u8 = 0;

/// The verdict byte of a refused peer, followed by the reason.
pub const VERDICT_REFUSED: u8 = 1;

/// The longest refusal reason a verdict carries, in bytes (longer ones are cut).
pub const MAX_REASON: usize = 1024;

/// What an end says of itself before the handshake: the opening bytes of a link.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Preamble {
    /// The protocol version it speaks.
    pub version: u8,
    /// Whether it encrypts.
    pub encrypted: bool,
    /// Whether it authenticates with a static key.
    pub static_key: bool,
    /// The id of the pre-shared key it offers (zero for none).
    pub key_id: [u8; KEY_ID_LEN],
}

impl Preamble {
    /// Appends the preamble to `out`.
    pub fn encode(&self, out: &mut Vec<u8>) {
        out.extend_from_slice(MAGIC);
        out.push(self.version);
        let mut flags = 0;
        if self.encrypted {
            flags |= FLAG_ENCRYPTED;
        }
        if self.static_key {
            flags |= FLAG_STATIC_KEY;
        }
        out.push(flags);
        out.extend_from_slice(&self.key_id);
    }

    /// Reads a preamble; `None` when it does not start with [`MAGIC`].
    pub fn decode(bytes: &[u8; PREAMBLE_LEN]) -> Option<Preamble> {
        (&bytes[..4] == MAGIC).then(|| Preamble {
            version: bytes[4],
            encrypted: bytes[5] & FLAG_ENCRYPTED != 0,
            static_key: bytes[5] & FLAG_STATIC_KEY != 0,
            key_id: bytes[6..].try_into().expect("8 bytes"),
        })
    }
}

/// Appends a verdict to `out`: accepted (`Ok`), or refused with a reason (cut to
/// [`MAX_REASON`] bytes).
pub fn encode_verdict(out: &mut Vec<u8>, verdict: Result<(), &str>) {
    match verdict {
        Ok(()) => out.push(VERDICT_ACCEPTED),
        Err(reason) => {
            let r = &reason.as_bytes()[..reason.len().min(MAX_REASON)];
            out.push(VERDICT_REFUSED);
            out.extend_from_slice(&(r.len() as u16).to_be_bytes());
            out.extend_from_slice(r);
        }
    }
}

/// Reads a verdict from the start of `bytes`: `None` while it is incomplete, else the
/// verdict (`Err` with the peer's reason when refused) and how many bytes it took. Any
/// verdict byte other than [`VERDICT_ACCEPTED`] is a refusal.
pub fn decode_verdict(bytes: &[u8]) -> Option<(Result<(), String>, usize)> {
    match bytes {
        [] => None,
        [VERDICT_ACCEPTED, ..] => Some((Ok(()), 1)),
        [_, hi, lo, rest @ ..] => {
            let n = u16::from_be_bytes([*hi, *lo]) as usize;
            let reason = rest.get(..n)?;
            Some((Err(String::from_utf8_lossy(reason).into_owned()), 3 + n))
        }
        _ => None,
    }
}

/// How many more bytes [`decode_verdict`] needs before it can answer (at least 1).
pub fn verdict_wants(bytes: &[u8]) -> usize {
    match bytes {
        [] => 1,
        [_, hi, lo, rest @ ..] => (u16::from_be_bytes([*hi, *lo]) as usize)
            .saturating_sub(rest.len())
            .max(1),
        _ => 3 - bytes.len(),
    }
}

const MESSAGE: u8 = 0;
const HELLO: u8 = 1;
const PING: u8 = 2;
const PONG: u8 = 3;
const CLOSE: u8 = 4;
const RELAY: u8 = 5;
/// Set in the kind byte of a MESSAGE or RELAY whose message has a deadline.
const TIMED: u8 = 0x80;
const ADDRESS_LEN: usize = 16;

/// The most nodes a message may be relayed through.
pub const MAX_HOPS: u8 = 4;

/// One decoded frame.
#[derive(Debug)]
pub enum Frame {
    /// A message for `to` from `from`.
    Message {
        /// The receiver.
        to: Address,
        /// The sender (where replies go).
        from: Address,
        /// The message.
        message: AnyMessage,
        /// The time its deadline left when the frame was written, if it has one.
        left: Option<Duration>,
    },
    /// The opening frame: protocol version, the sender's node id, and the object that owns
    /// the link on the sender's side (the one that asked to listen or connect).
    Hello {
        /// Protocol version.
        version: u8,
        /// The peer's node id.
        node: u64,
        /// The peer's owning object.
        owner: Address,
    },
    /// Keep-alive probe.
    Ping,
    /// Keep-alive answer.
    Pong,
    /// The peer is closing the link, and why.
    Close(String),
}

/// Why bytes are not a valid frame.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FrameError {
    /// The length prefix exceeds the maximum frame size.
    #[error("frame of {length} bytes exceeds the maximum of {max}")]
    Oversized {
        /// The announced length.
        length: usize,
        /// The maximum allowed.
        max: usize,
    },
    /// A frame with no kind byte.
    #[error("empty frame")]
    Empty,
    /// An unknown kind byte.
    #[error("unknown frame kind {0}")]
    UnknownKind(u8),
    /// The payload is shorter or longer than its kind requires.
    #[error("bad {kind} frame: {reason}")]
    Malformed {
        /// The frame kind.
        kind: &'static str,
        /// What was wrong.
        reason: String,
    },
    /// The message inside could not be decoded (unknown type, bad value).
    #[error("bad message in frame: {0}")]
    Message(#[from] CodecError),
}

fn put_address(out: &mut Vec<u8>, a: Address) {
    out.extend_from_slice(&a.node().to_le_bytes());
    out.extend_from_slice(&a.object().to_le_bytes());
}

fn get_address(b: &[u8]) -> Address {
    let node = u64::from_le_bytes(b[..8].try_into().expect("8 bytes"));
    let object = u64::from_le_bytes(b[8..16].try_into().expect("8 bytes"));
    Address::from_parts(node, object)
}

fn begin(out: &mut Vec<u8>, kind: u8) -> usize {
    let start = out.len();
    out.extend_from_slice(&[0, 0, 0, 0, kind]);
    start
}

fn end(out: &mut [u8], start: usize) {
    let length = (out.len() - start - 4) as u32;
    out[start..start + 4].copy_from_slice(&length.to_le_bytes());
}

/// Appends a MESSAGE frame to `out`.
pub fn encode_message(
    out: &mut Vec<u8>,
    to: Address,
    from: Address,
    message: &AnyMessage,
) -> Result<(), CodecError> {
    encode_message_within(out, to, from, None, message)
}

/// Appends a MESSAGE frame to `out` whose message has `left` until its deadline (`None`:
/// no deadline; the time left is written in whole microseconds, at least 1).
pub fn encode_message_within(
    out: &mut Vec<u8>,
    to: Address,
    from: Address,
    left: Option<Duration>,
    message: &AnyMessage,
) -> Result<(), CodecError> {
    let start = begin(
        out,
        if left.is_some() {
            MESSAGE | TIMED
        } else {
            MESSAGE
        },
    );
    put_address(out, to);
    put_address(out, from);
    if let Some(left) = left {
        let micros = u64::try_from(left.as_micros()).unwrap_or(u64::MAX).max(1);
        out.extend_from_slice(&micros.to_le_bytes());
    }
    if let Err(e) = codec::to_binary_into(message, out) {
        out.truncate(start);
        return Err(e);
    }
    end(out, start);
    Ok(())
}

/// Appends a control frame (anything but MESSAGE) to `out`.
pub fn encode_control(out: &mut Vec<u8>, frame: &Frame) {
    let start = match frame {
        Frame::Message { .. } => panic!("encode_control takes control frames; use encode_message"),
        Frame::Hello {
            version,
            node,
            owner,
        } => {
            let s = begin(out, HELLO);
            out.push(*version);
            out.extend_from_slice(&node.to_le_bytes());
            put_address(out, *owner);
            s
        }
        Frame::Ping => begin(out, PING),
        Frame::Pong => begin(out, PONG),
        Frame::Close(reason) => {
            let s = begin(out, CLOSE);
            out.extend_from_slice(reason.as_bytes());
            s
        }
    };
    end(out, start);
}

/// The addresses of a MESSAGE or RELAY frame, read without decoding the message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Peek {
    /// The receiver.
    pub to: Address,
    /// The sender.
    pub from: Address,
    /// The nodes it was relayed through (0 for a MESSAGE).
    pub hops: u8,
}

/// The receiver, sender and hops of a MESSAGE or RELAY frame body (kind + payload);
/// `None` for other frames and for bodies too short to hold them.
pub fn peek(body: &[u8]) -> Option<Peek> {
    let kind = *body.first()?;
    let (at, hops) = match kind & !TIMED {
        MESSAGE => (1, 0),
        RELAY => (2, *body.get(1)?),
        _ => return None,
    };
    (body.len() >= at + 2 * ADDRESS_LEN).then(|| Peek {
        to: get_address(&body[at..]),
        from: get_address(&body[at + ADDRESS_LEN..]),
        hops,
    })
}

/// The RELAY frame (length prefix included) passing on the MESSAGE or RELAY frame `body`
/// through one more node, or `None` when it has been through [`MAX_HOPS`] already.
pub fn relayed(body: &[u8]) -> Option<Vec<u8>> {
    let Peek { hops, .. } = peek(body)?;
    if hops >= MAX_HOPS {
        return None;
    }
    let rest = if body[0] & !TIMED == RELAY {
        &body[2..]
    } else {
        &body[1..]
    };
    let mut out = Vec::with_capacity(rest.len() + 6);
    out.extend_from_slice(&((rest.len() + 2) as u32).to_le_bytes());
    out.push(RELAY | (body[0] & TIMED));
    out.push(hops + 1);
    out.extend_from_slice(rest);
    Some(out)
}

/// Decodes one frame body (kind + payload, without the length prefix).
pub fn decode_body(body: &[u8]) -> Result<Frame, FrameError> {
    let (&kind, payload) = body.split_first().ok_or(FrameError::Empty)?;
    let exact = |name: &'static str, want: usize| {
        if payload.len() == want {
            Ok(())
        } else {
            Err(FrameError::Malformed {
                kind: name,
                reason: format!("{} payload bytes, expected {want}", payload.len()),
            })
        }
    };
    let timed = kind & TIMED != 0 && matches!(kind & !TIMED, MESSAGE | RELAY);
    let kind = if timed { kind & !TIMED } else { kind };
    let payload = match kind {
        RELAY if !payload.is_empty() => &payload[1..],
        _ => payload,
    };
    match kind {
        MESSAGE | RELAY => {
            let head = 2 * ADDRESS_LEN + if timed { 8 } else { 0 };
            if payload.len() < head {
                return Err(FrameError::Malformed {
                    kind: if kind == RELAY { "RELAY" } else { "MESSAGE" },
                    reason: format!(
                        "{} payload bytes, too short for two addresses{}",
                        payload.len(),
                        if timed { " and the time left" } else { "" }
                    ),
                });
            }
            let to = get_address(payload);
            let from = get_address(&payload[ADDRESS_LEN..]);
            let left = timed.then(|| {
                let at = 2 * ADDRESS_LEN;
                let micros = u64::from_le_bytes(payload[at..at + 8].try_into().expect("8 bytes"));
                Duration::from_micros(micros)
            });
            let message = codec::from_binary(&payload[head..])?;
            Ok(Frame::Message {
                to,
                from,
                message,
                left,
            })
        }
        HELLO => {
            exact("HELLO", 9 + ADDRESS_LEN)?;
            Ok(Frame::Hello {
                version: payload[0],
                node: u64::from_le_bytes(payload[1..9].try_into().expect("8 bytes")),
                owner: get_address(&payload[9..]),
            })
        }
        PING => exact("PING", 0).map(|_| Frame::Ping),
        PONG => exact("PONG", 0).map(|_| Frame::Pong),
        CLOSE => String::from_utf8(payload.to_vec())
            .map(Frame::Close)
            .map_err(|_| FrameError::Malformed {
                kind: "CLOSE",
                reason: "reason is not UTF-8".into(),
            }),
        other => Err(FrameError::UnknownKind(other)),
    }
}

/// Cuts a byte stream into frame bodies, refusing oversized frames before buffering them.
#[derive(Debug)]
pub struct FrameReader {
    buffer: Vec<u8>,
    start: usize,
    max: usize,
}

impl FrameReader {
    /// A reader accepting frames of at most `max` bytes.
    pub fn new(max: usize) -> Self {
        FrameReader {
            buffer: Vec::with_capacity(8192),
            start: 0,
            max,
        }
    }

    /// Adds bytes read from the stream.
    pub fn extend(&mut self, bytes: &[u8]) {
        if self.start > 0 && self.start == self.buffer.len() {
            self.buffer.clear();
            self.start = 0;
        }
        self.buffer.extend_from_slice(bytes);
    }

    /// The next complete frame body, `Ok(None)` when more bytes are needed.
    pub fn next_body(&mut self) -> Result<Option<&[u8]>, FrameError> {
        let available = &self.buffer[self.start..];
        if available.len() < 4 {
            self.compact();
            return Ok(None);
        }
        let length = u32::from_le_bytes(available[..4].try_into().expect("4 bytes")) as usize;
        if length > self.max {
            return Err(FrameError::Oversized {
                length,
                max: self.max,
            });
        }
        if available.len() < 4 + length {
            self.compact();
            return Ok(None);
        }
        let body_start = self.start + 4;
        self.start = body_start + length;
        Ok(Some(&self.buffer[body_start..body_start + length]))
    }

    /// Decodes the next complete frame, `Ok(None)` when more bytes are needed.
    pub fn next_frame(&mut self) -> Result<Option<Frame>, FrameError> {
        match self.next_body()? {
            Some(body) => decode_body(body).map(Some),
            None => Ok(None),
        }
    }

    fn compact(&mut self) {
        if self.start > 0 {
            self.buffer.drain(..self.start);
            self.start = 0;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn addr(n: u64) -> Address {
        Address::from_parts(0xabc, n)
    }

    #[test]
    fn a_deadline_travels_as_the_time_left_and_through_relays() {
        let mut bytes = Vec::new();
        let left = Duration::from_millis(1500);
        encode_message_within(
            &mut bytes,
            addr(1),
            addr(2),
            Some(left),
            &AnyMessage::new(7u32),
        )
        .unwrap();
        let body = &bytes[4..];
        let p = peek(body).expect("a message");
        assert_eq!((p.to, p.from, p.hops), (addr(1), addr(2), 0));
        let relay = relayed(body).expect("one hop");
        for body in [body, &relay[4..]] {
            match decode_body(body).unwrap() {
                Frame::Message {
                    to,
                    from,
                    message,
                    left: got,
                } => {
                    assert_eq!((to, from, got), (addr(1), addr(2), Some(left)));
                    assert_eq!(message.downcast::<u32>().unwrap(), 7);
                }
                other => panic!("{other:?}"),
            }
        }
        assert_eq!(peek(&relay[4..]).unwrap().hops, 1);
        // Too short for the time left: a named error, not a panic.
        let mut cut = body[..1 + 2 * ADDRESS_LEN + 3].to_vec();
        assert!(matches!(
            decode_body(&cut),
            Err(FrameError::Malformed {
                kind: "MESSAGE",
                ..
            })
        ));
        // An unknown kind with the flag set is still unknown.
        cut[0] = 0x80 | 3;
        assert_eq!(
            decode_body(&cut).unwrap_err(),
            FrameError::UnknownKind(0x83)
        );
    }

    #[test]
    fn frames_round_trip_across_arbitrary_splits() {
        let mut bytes = Vec::new();
        encode_control(
            &mut bytes,
            &Frame::Hello {
                version: PROTOCOL_VERSION,
                node: 42,
                owner: addr(3),
            },
        );
        encode_message(
            &mut bytes,
            addr(1),
            addr(2),
            &AnyMessage::new(vec![vec![0.5f64; 3]; 2]),
        )
        .unwrap();
        encode_control(&mut bytes, &Frame::Ping);
        encode_control(&mut bytes, &Frame::Close("bye".into()));
        for split in [1, 2, 3, 5, 7, 64, bytes.len()] {
            let mut r = FrameReader::new(DEFAULT_MAX_FRAME);
            let mut frames = Vec::new();
            for chunk in bytes.chunks(split) {
                r.extend(chunk);
                while let Some(f) = r.next_frame().unwrap() {
                    frames.push(f);
                }
            }
            assert_eq!(frames.len(), 4, "split {split}");
            assert!(matches!(
                frames[0],
                Frame::Hello { version: PROTOCOL_VERSION, node: 42, owner } if owner == addr(3)
            ));
            match &frames[1] {
                Frame::Message {
                    to, from, message, ..
                } => {
                    assert_eq!((*to, *from), (addr(1), addr(2)));
                    assert_eq!(message.downcast_ref::<Vec<Vec<f64>>>().unwrap()[1].len(), 3);
                }
                other => panic!("expected a message, got {other:?}"),
            }
            assert!(matches!(frames[2], Frame::Ping));
            assert!(matches!(&frames[3], Frame::Close(r) if r == "bye"));
        }
    }

    #[test]
    fn bad_frames_are_named_errors() {
        let mut r = FrameReader::new(16);
        r.extend(&1000u32.to_le_bytes());
        assert_eq!(
            r.next_frame().unwrap_err(),
            FrameError::Oversized {
                length: 1000,
                max: 16
            }
        );
        assert_eq!(decode_body(&[]).unwrap_err(), FrameError::Empty);
        assert_eq!(decode_body(&[9]).unwrap_err(), FrameError::UnknownKind(9));
        assert!(matches!(
            decode_body(&[PING, 0]),
            Err(FrameError::Malformed { kind: "PING", .. })
        ));
        assert!(matches!(
            decode_body(&[MESSAGE, 1, 2]),
            Err(FrameError::Malformed {
                kind: "MESSAGE",
                ..
            })
        ));
        let mut body = vec![MESSAGE];
        body.extend_from_slice(&[0; 32]);
        body.extend_from_slice(&postcard::to_stdvec(&("no.such.Type", 1u8)).unwrap());
        assert!(matches!(
            decode_body(&body),
            Err(FrameError::Message(CodecError::UnknownType(name))) if name == "no.such.Type"
        ));
    }

    #[test]
    fn relays_read_the_addresses_without_decoding_and_count_hops() {
        let mut bytes = Vec::new();
        encode_message(&mut bytes, addr(7), addr(8), &AnyMessage::new(1u8)).unwrap();
        let peeked = |body: &[u8]| peek(body).unwrap();
        assert_eq!(
            peeked(&bytes[4..]),
            Peek {
                to: addr(7),
                from: addr(8),
                hops: 0
            }
        );
        // Each relay adds a hop; the decoded message is the same.
        let mut frame = bytes.clone();
        for hop in 1..=MAX_HOPS {
            frame = relayed(&frame[4..]).expect("within the hop limit");
            assert_eq!(peeked(&frame[4..]).hops, hop);
            assert_eq!(peeked(&frame[4..]).to, addr(7));
            let mut reader = FrameReader::new(1024);
            reader.extend(&frame);
            match reader.next_frame().unwrap().unwrap() {
                Frame::Message {
                    to, from, message, ..
                } => {
                    assert_eq!((to, from), (addr(7), addr(8)));
                    assert_eq!(message.downcast::<u8>().unwrap(), 1);
                }
                other => panic!("{other:?}"),
            }
        }
        assert_eq!(relayed(&frame[4..]), None, "past the hop limit");
        assert_eq!(peek(&[RELAY]), None);
        assert_eq!(peek(&[PING]), None);
    }
}
