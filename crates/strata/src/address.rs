//! Addresses: the identity of an object, wherever it lives.
//!
//! An [`Address`] names a *node* (one process; its id is drawn at random when the process
//! starts) and an object inside that node. It is 16 bytes, `Copy`, hashable, ordered and
//! serializable, so addresses travel inside messages. Sending to an address looks the same
//! whether the object is in this process or not: the runtime delivers local addresses
//! directly, and hands other nodes' addresses to the route the networking layer installed.

use std::collections::HashMap;
use std::fmt;
use std::sync::OnceLock;

use serde::{Deserialize, Serialize};

use crate::message::Message;

/// The identity of an object: which node (process) it lives in, and which object there.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Default)]
pub struct Address {
    node: u64,
    object: u64,
}

impl Address {
    /// The address of nobody: messages sent from outside any object carry it as sender,
    /// and sending to it delivers nothing.
    pub const NULL: Address = Address { node: 0, object: 0 };

    /// Builds an address from its parts (used by the networking layer).
    pub const fn from_parts(node: u64, object: u64) -> Self {
        Address { node, object }
    }

    /// The node (process) the object lives in.
    pub const fn node(&self) -> u64 {
        self.node
    }

    /// The object's number within its node.
    pub const fn object(&self) -> u64 {
        self.object
    }

    /// True for [`Address::NULL`].
    pub const fn is_null(&self) -> bool {
        self.node == 0 && self.object == 0
    }

    /// True when the object lives in this process.
    pub fn is_local(&self) -> bool {
        self.node == local_node()
    }
}

/// The id of this process's node, drawn at random once.
pub(crate) fn local_node() -> u64 {
    static NODE: OnceLock<u64> = OnceLock::new();
    *NODE.get_or_init(|| {
        use std::hash::{BuildHasher, Hasher};
        let mut h = std::collections::hash_map::RandomState::new().build_hasher();
        h.write_u32(std::process::id());
        if let Ok(t) = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH) {
            h.write_u128(t.as_nanos());
        }
        h.finish().max(1)
    })
}

#[derive(Deserialize)]
#[serde(rename = "Address")]
struct RawAddress {
    node: u64,
    object: u64,
}

/// The most nodes one decoded message may name: a frame naming more is refused (each
/// address is checked against those seen, so this also keeps a frame's cost linear).
pub(crate) const MAX_NODES_PER_MESSAGE: usize = 64;

thread_local! {
    /// Where `nodes_seen_while` collects (from the index it began at), while it runs.
    static SEEN_NODES: Collector<u64> = const { Collector::new() };
    /// Where `addresses_written_while` collects, while it runs.
    static WRITTEN: Collector<Address> = const { Collector::new() };
}

/// A per-thread list that is filled only while a caller collects (one flag to test when
/// nobody does; the buffer is kept between uses, so collecting allocates nothing).
struct Collector<T> {
    /// The index the innermost collection began at, when one runs.
    from: std::cell::Cell<Option<usize>>,
    items: std::cell::RefCell<Vec<T>>,
}

impl<T: Copy + PartialEq> Collector<T> {
    const fn new() -> Self {
        Collector {
            from: std::cell::Cell::new(None),
            items: std::cell::RefCell::new(Vec::new()),
        }
    }

    /// Adds `item` when collecting, and gives the number of distinct items collected so
    /// far (with `distinct`) or of all of them.
    fn add(&self, item: T, distinct: bool) -> usize {
        let Some(from) = self.from.get() else {
            return 0;
        };
        let mut items = self.items.borrow_mut();
        if !(distinct && items[from..].contains(&item)) {
            items.push(item);
        }
        items.len() - from
    }

    /// Runs `f` collecting, then hands each item collected to `each` (which must not
    /// encode or decode addresses itself: the list is borrowed meanwhile).
    fn collect<R>(&self, f: impl FnOnce() -> R, mut each: impl FnMut(T)) -> R {
        let from = self.items.borrow().len();
        let outer = self.from.replace(Some(from));
        let result = f();
        self.from.set(outer);
        let mut items = self.items.borrow_mut();
        if items.len() > from {
            for item in items.drain(from..) {
                each(item);
            }
        }
        result
    }
}

impl Serialize for Address {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeStruct;
        WRITTEN.with(|written| written.add(*self, false));
        let mut st = s.serialize_struct("Address", 2)?;
        st.serialize_field("node", &self.node)?;
        st.serialize_field("object", &self.object)?;
        st.end()
    }
}

impl<'de> Deserialize<'de> for Address {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let raw = RawAddress::deserialize(d)?;
        if SEEN_NODES.with(|seen| seen.add(raw.node, true)) > MAX_NODES_PER_MESSAGE {
            return Err(crate::message::limits::broken(
                "the message names more than 64 nodes in its addresses (MAX_NODES_PER_MESSAGE)",
            ));
        }
        Ok(Address::from_parts(raw.node, raw.object))
    }
}

/// Runs `decode`, handing `each` every node named by an address decoded meanwhile on this
/// thread (once each). Links use it to learn routes to the nodes of addresses that
/// travelled inside messages, so a third party can answer an address it was given. At
/// most [`MAX_NODES_PER_MESSAGE`] nodes: decoding an address of one more fails.
pub(crate) fn nodes_seen_while<R>(decode: impl FnOnce() -> R, each: impl FnMut(u64)) -> R {
    SEEN_NODES.with(|seen| seen.collect(decode, each))
}

/// Runs `encode`, handing `each` every address encoded meanwhile on this thread (with
/// repeats). Links use it to note which addresses they gave their peer: the peer may then
/// send to them (the link's capabilities).
pub(crate) fn addresses_written_while<R>(
    encode: impl FnOnce() -> R,
    each: impl FnMut(Address),
) -> R {
    WRITTEN.with(|written| written.collect(encode, each))
}

impl fmt::Debug for Address {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

impl fmt::Display for Address {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.is_null() {
            write!(f, "<null>")
        } else {
            write!(f, "<{}@{:04x}>", self.object, self.node & 0xffff)
        }
    }
}

impl Message for Address {
    fn type_name() -> &'static str {
        "address"
    }
}

/// Hashes addresses and object numbers with one multiply instead of SipHash: the object
/// table is looked up on every send, and children, callbacks and spool workers are keyed
/// by address on every create and every `Returned`.
#[derive(Default, Clone, Copy)]
pub(crate) struct AddressHasher(u64);

impl std::hash::Hasher for AddressHasher {
    fn finish(&self) -> u64 {
        self.0
    }
    fn write(&mut self, bytes: &[u8]) {
        for b in bytes {
            self.0 = (self.0.rotate_left(8) ^ u64::from(*b)).wrapping_mul(0x9E37_79B9_7F4A_7C15);
        }
    }
    fn write_u64(&mut self, n: u64) {
        self.0 = (self.0.rotate_left(29) ^ n).wrapping_mul(0x9E37_79B9_7F4A_7C15);
    }
}

/// Builds [`AddressHasher`]s.
pub(crate) type BuildAddressHasher = std::hash::BuildHasherDefault<AddressHasher>;

/// A map keyed by address (or object number), hashed with [`AddressHasher`].
pub(crate) type AddressMap<V> = HashMap<Address, V, BuildAddressHasher>;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn addresses_are_small_copy_and_portable() {
        assert_eq!(std::mem::size_of::<Address>(), 16);
        let a = Address::from_parts(local_node(), 7);
        let b = a;
        assert_eq!(a, b);
        assert!(a.is_local() && !Address::NULL.is_local());
        let bytes = crate::message::codec::encode(&a).unwrap();
        assert_eq!(crate::message::codec::decode::<Address>(&bytes).unwrap(), a);
        assert_eq!(Address::NULL.to_string(), "<null>");
    }

    #[test]
    fn decoding_notes_the_nodes_of_addresses_inside_messages() {
        let inner = vec![
            Address::from_parts(5, 1),
            Address::from_parts(9, 2),
            Address::from_parts(5, 3),
        ];
        let bytes = crate::message::codec::encode(&inner).unwrap();
        let mut nodes = Vec::new();
        let decoded = nodes_seen_while(
            || crate::message::codec::decode::<Vec<Address>>(&bytes),
            |n| nodes.push(n),
        );
        assert_eq!(decoded.unwrap(), inner);
        assert_eq!(nodes, vec![5, 9]);
        // Outside a collection nothing is recorded.
        crate::message::codec::decode::<Vec<Address>>(&bytes).unwrap();
        let mut nodes = Vec::new();
        nodes_seen_while(|| (), |n| nodes.push(n));
        assert!(nodes.is_empty());
        // Encoding for a link notes every address written.
        let mut written = Vec::new();
        addresses_written_while(
            || crate::message::codec::encode(&inner).unwrap(),
            |a| written.push(a),
        );
        assert_eq!(written, inner);
        let json = serde_json::to_value(Address::from_parts(1, 2)).unwrap();
        assert_eq!(json, serde_json::json!({"node": 1, "object": 2}));
        assert_eq!(
            serde_json::from_value::<Address>(json).unwrap(),
            Address::from_parts(1, 2)
        );
    }
}
