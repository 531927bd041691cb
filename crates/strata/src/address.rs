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
    static SEEN_NODES: std::cell::RefCell<Option<Vec<u64>>> = const { std::cell::RefCell::new(None) };
    static WRITTEN: std::cell::RefCell<Option<Vec<Address>>> = const { std::cell::RefCell::new(None) };
}

impl Serialize for Address {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeStruct;
        WRITTEN.with(|written| {
            if let Some(list) = written.borrow_mut().as_mut() {
                list.push(*self);
            }
        });
        let mut st = s.serialize_struct("Address", 2)?;
        st.serialize_field("node", &self.node)?;
        st.serialize_field("object", &self.object)?;
        st.end()
    }
}

impl<'de> Deserialize<'de> for Address {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let raw = RawAddress::deserialize(d)?;
        let within_bound = SEEN_NODES.with(|seen| {
            let mut seen = seen.borrow_mut();
            let Some(nodes) = seen.as_mut() else {
                return true;
            };
            if nodes.contains(&raw.node) {
                return true;
            }
            nodes.push(raw.node);
            nodes.len() <= MAX_NODES_PER_MESSAGE
        });
        if !within_bound {
            return Err(crate::message::limits::broken(
                "the message names more than 64 nodes in its addresses (MAX_NODES_PER_MESSAGE)",
            ));
        }
        Ok(Address::from_parts(raw.node, raw.object))
    }
}

/// Runs `decode` and returns, beside its result, every node named by an address decoded
/// meanwhile on this thread. Links use it to learn routes to the nodes of addresses that
/// travelled inside messages, so a third party can answer an address it was given. At
/// most [`MAX_NODES_PER_MESSAGE`] nodes: decoding an address of one more fails.
pub(crate) fn nodes_seen_while<R>(decode: impl FnOnce() -> R) -> (R, Vec<u64>) {
    let outer = SEEN_NODES.with(|seen| seen.borrow_mut().replace(Vec::new()));
    let result = decode();
    let nodes = SEEN_NODES.with(|seen| std::mem::replace(&mut *seen.borrow_mut(), outer));
    (result, nodes.unwrap_or_default())
}

/// Runs `encode` and returns, beside its result, every address encoded meanwhile on this
/// thread (with repeats). Links use it to note which addresses they gave their peer: the
/// peer may then send to them (the link's capabilities).
pub(crate) fn addresses_written_while<R>(encode: impl FnOnce() -> R) -> (R, Vec<Address>) {
    let outer = WRITTEN.with(|w| w.borrow_mut().replace(Vec::new()));
    let result = encode();
    let written = WRITTEN.with(|w| std::mem::replace(&mut *w.borrow_mut(), outer));
    (result, written.unwrap_or_default())
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
        let (decoded, nodes) =
            nodes_seen_while(|| crate::message::codec::decode::<Vec<Address>>(&bytes));
        assert_eq!(decoded.unwrap(), inner);
        assert_eq!(nodes, vec![5, 9]);
        // Outside a collection nothing is recorded.
        let (_, nodes) = nodes_seen_while(|| ());
        assert!(nodes.is_empty());
        let json = serde_json::to_value(Address::from_parts(1, 2)).unwrap();
        assert_eq!(json, serde_json::json!({"node": 1, "object": 2}));
        assert_eq!(
            serde_json::from_value::<Address>(json).unwrap(),
            Address::from_parts(1, 2)
        );
    }
}
