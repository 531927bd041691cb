//! What both ends of the parent-child link benchmark agree on: the strata messages, the
//! raw baseline's fixed-size frame, the flow-control window of the one-way test, and the
//! modes the parent program measures.
//!
//! Included by path into both programs (`link-parent` and `link-child`), so the two sides
//! cannot drift apart.

// Each program uses a different part of this module.
#![allow(dead_code)]

use serde::{Deserialize, Serialize};
use strata::Message;

/// A round-trip request: the child answers `value + 1`.
#[derive(Debug, Clone, Copy, Serialize, Deserialize, Message)]
#[message(name = "bench.link.Hit")]
pub struct Hit {
    /// The request's number.
    pub value: u64,
}

/// The answer to a [`Hit`].
#[derive(Debug, Clone, Copy, Serialize, Deserialize, Message)]
#[message(name = "bench.link.Answer")]
pub struct Answer {
    /// The request's number plus one.
    pub value: u64,
}

/// One message of the one-way stream.
#[derive(Debug, Clone, Copy, Serialize, Deserialize, Message)]
#[message(name = "bench.link.Item")]
pub struct Item {
    /// Its index in the stream.
    pub value: u64,
}

/// Ends a one-way stream: the child answers with [`Done`].
#[derive(Debug, Clone, Copy, Serialize, Deserialize, Message)]
#[message(name = "bench.link.Flush")]
pub struct Flush;

/// Flow control: the child has received `count` items of the current stream.
#[derive(Debug, Clone, Copy, Serialize, Deserialize, Message)]
#[message(name = "bench.link.Ack")]
pub struct Ack {
    /// Items received so far.
    pub count: u64,
}

/// The end of a stream: how many items the child received and the sum of their values.
#[derive(Debug, Clone, Copy, Serialize, Deserialize, Message)]
#[message(name = "bench.link.Done")]
pub struct Done {
    /// Items received.
    pub count: u64,
    /// The sum of their values.
    pub sum: u64,
}

/// Asks the strata child for its top object's own address (answered with [`Iam`]).
#[derive(Debug, Clone, Copy, Serialize, Deserialize, Message)]
#[message(name = "bench.link.Whoami")]
pub struct Whoami;

/// The strata child's top object's own address: sending to it directly skips the
/// parent's `Process` object (a diagnostic mode).
#[derive(Debug, Clone, Copy, Serialize, Deserialize, Message)]
#[message(name = "bench.link.Iam")]
pub struct Iam {
    /// The child's top object.
    pub address: strata::Address,
}

/// At most this many items are sent and not yet acknowledged. Every mailbox and outbox on
/// the way holds 65,536 messages, so with this window nothing can ever be refused.
pub const WINDOW: u64 = 16_384;

/// The child acknowledges every this many items.
pub const ACK_EVERY: u64 = 1_024;

/// The size of every frame of the raw baselines: about the size of strata's frame for
/// [`Hit`] (length, receiver, sender, type name, value).
pub const FRAME: usize = 48;

/// The kinds of raw frames (first byte of the frame).
pub mod kind {
    /// Parent to child: answer with `ANSWER` and the value plus one.
    pub const HIT: u8 = 1;
    /// Child to parent: the answer to a `HIT`.
    pub const ANSWER: u8 = 2;
    /// Parent to child: one item of a stream.
    pub const ITEM: u8 = 3;
    /// Parent to child: the stream ends; answer with `DONE`.
    pub const FLUSH: u8 = 4;
    /// Child to parent: items received so far.
    pub const ACK: u8 = 5;
    /// Child to parent: the stream's count and sum.
    pub const DONE: u8 = 6;
}

/// A raw frame: its kind, then two little-endian numbers, zero padded to [`FRAME`].
pub fn encode(kind: u8, a: u64, b: u64) -> [u8; FRAME] {
    let mut f = [0u8; FRAME];
    f[0] = kind;
    f[8..16].copy_from_slice(&a.to_le_bytes());
    f[16..24].copy_from_slice(&b.to_le_bytes());
    f
}

/// The kind and the two numbers of a raw frame.
pub fn decode(f: &[u8; FRAME]) -> (u8, u64, u64) {
    let a = u64::from_le_bytes(f[8..16].try_into().expect("8 bytes"));
    let b = u64::from_le_bytes(f[16..24].try_into().expect("8 bytes"));
    (f[0], a, b)
}

/// The descriptor the parent puts the child's end of the socket pair on, for every mode
/// (strata's `Process` uses it too).
pub const CHILD_FD: i32 = 3;

/// How the child program runs: the first argument.
pub mod child_mode {
    /// The raw baseline with blocking std I/O.
    pub const RAW: &str = "raw";
    /// The raw baseline on a tokio runtime.
    pub const TOKIO: &str = "tokio";
    /// A strata program whose top object is a machine (what `Process::of` runs).
    pub const STRATA: &str = "strata";
}

/// What the parent measures.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Mode {
    /// Sequential round trips over strata's link to a `Process` child.
    RoundTripStrata,
    /// As [`Mode::RoundTripStrata`], sending to the child's top object directly instead
    /// of through the `Process` object.
    RoundTripStrataDirect,
    /// Sequential round trips over a socket pair, blocking std I/O at both ends.
    RoundTripRaw,
    /// Sequential round trips over a socket pair, tokio at both ends.
    RoundTripTokio,
    /// A one-way stream over strata's link.
    OneWayStrata,
    /// As [`Mode::OneWayStrata`], sending to the child's top object directly.
    OneWayStrataDirect,
    /// A one-way stream over a socket pair, blocking std I/O at both ends.
    OneWayRaw,
    /// A one-way stream over a socket pair, tokio at both ends.
    OneWayTokio,
}

impl Mode {
    /// Every mode.
    pub const ALL: [Mode; 8] = [
        Mode::RoundTripRaw,
        Mode::RoundTripTokio,
        Mode::RoundTripStrata,
        Mode::RoundTripStrataDirect,
        Mode::OneWayRaw,
        Mode::OneWayTokio,
        Mode::OneWayStrata,
        Mode::OneWayStrataDirect,
    ];

    /// The name on the parent's command line.
    pub fn key(self) -> &'static str {
        match self {
            Mode::RoundTripStrata => "roundtrip-strata",
            Mode::RoundTripStrataDirect => "roundtrip-strata-direct",
            Mode::RoundTripRaw => "roundtrip-raw",
            Mode::RoundTripTokio => "roundtrip-tokio",
            Mode::OneWayStrata => "oneway-strata",
            Mode::OneWayStrataDirect => "oneway-strata-direct",
            Mode::OneWayRaw => "oneway-raw",
            Mode::OneWayTokio => "oneway-tokio",
        }
    }

    /// Parses a command-line name.
    pub fn from_key(key: &str) -> Option<Mode> {
        Mode::ALL.into_iter().find(|m| m.key() == key)
    }

    /// The child program's mode for this measurement.
    pub fn child_mode(self) -> &'static str {
        match self {
            Mode::RoundTripStrata
            | Mode::RoundTripStrataDirect
            | Mode::OneWayStrata
            | Mode::OneWayStrataDirect => child_mode::STRATA,
            Mode::RoundTripRaw | Mode::OneWayRaw => child_mode::RAW,
            Mode::RoundTripTokio | Mode::OneWayTokio => child_mode::TOKIO,
        }
    }

    /// True for the round-trip modes.
    pub fn is_round_trip(self) -> bool {
        matches!(
            self,
            Mode::RoundTripStrata
                | Mode::RoundTripStrataDirect
                | Mode::RoundTripRaw
                | Mode::RoundTripTokio
        )
    }

    /// True for the strata modes that skip the `Process` object.
    pub fn is_direct(self) -> bool {
        matches!(self, Mode::RoundTripStrataDirect | Mode::OneWayStrataDirect)
    }
}
