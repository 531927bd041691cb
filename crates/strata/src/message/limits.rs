//! Limits on decoding a binary message from another process: how deep values nest, and how
//! many elements sequences and maps may claim.
//!
//! postcard decodes straight into the message's type and has no limit of its own, so a
//! recursive user type (`Box<Self>` in a tree or an expression) could be nested one byte
//! per level until the decoding thread's stack overflows, which aborts the whole process,
//! and a list of a zero-sized type claiming 2^60 elements would loop for ever. Every
//! binary decode of a frame therefore runs through `Limited`, a deserializer that wraps
//! postcard's and everything it hands to the value's visitors (sequences, maps, enum
//! variants, options), and that counts on this thread:
//! - the depth of compound values (structs, sequences, maps, enums, options, newtypes):
//!   at most [`MAX_DEPTH`];
//! - the elements and entries decoded: at most [`element_budget`] for the frame's length,
//!   which no message that really came from an encoder reaches (every element but a
//!   zero-sized one takes a byte).
//!
//! Both are errors of that one message (the link answers it and carries on), never a
//! panic. `AnyMessage` nesting has its own, smaller bound (`codec::MAX_NESTING`).

use std::cell::Cell;
use std::fmt;

use serde::de::{
    self, DeserializeSeed, Deserializer, EnumAccess, MapAccess, SeqAccess, VariantAccess, Visitor,
};

/// How deeply compound values may nest in one decoded message.
pub const MAX_DEPTH: u32 = 64;

/// The elements and map entries a frame of `bytes` bytes may decode (zero-sized elements
/// take no bytes, so a few per byte are allowed).
pub const fn element_budget(bytes: usize) -> usize {
    1024 + 8 * bytes
}

thread_local! {
    static DEPTH: Cell<u32> = const { Cell::new(0) };
    static ELEMENTS: Cell<usize> = const { Cell::new(usize::MAX) };
    static BROKEN: Cell<Option<&'static str>> = const { Cell::new(None) };
}

/// Runs `decode` with the limits set for a message of `bytes` bytes, and returns beside
/// its result the limit it broke, if any (some formats keep no text of a custom error,
/// so the reason is kept here). The previous limits are restored after: decoding nests.
pub(crate) fn within<R>(bytes: usize, decode: impl FnOnce() -> R) -> (R, Option<&'static str>) {
    let depth = DEPTH.with(|d| d.replace(0));
    let elements = ELEMENTS.with(|e| e.replace(element_budget(bytes)));
    let broken = BROKEN.with(|b| b.take());
    let result = decode();
    DEPTH.with(|d| d.set(depth));
    ELEMENTS.with(|e| e.set(elements));
    (result, BROKEN.with(|b| b.replace(broken)))
}

/// The error for a broken limit, `reason` noted for [`within`] to return.
pub(crate) fn broken<E: de::Error>(reason: &'static str) -> E {
    BROKEN.with(|b| b.set(Some(reason)));
    E::custom(reason)
}

fn too_deep<E: de::Error>() -> E {
    broken(TOO_DEEP)
}

const TOO_DEEP: &str = "values nested more than 64 deep (MAX_DEPTH)";
const TOO_MANY: &str = "more elements than the message's length allows (a hostile length?)";

/// Counts one level while `f` runs.
fn nested<T, E: de::Error>(f: impl FnOnce() -> Result<T, E>) -> Result<T, E> {
    let depth = DEPTH.with(|d| d.get());
    if depth >= MAX_DEPTH {
        return Err(too_deep());
    }
    DEPTH.with(|d| d.set(depth + 1));
    let result = f();
    DEPTH.with(|d| d.set(depth));
    result
}

/// Takes one element from this decode's budget.
fn one_element<E: de::Error>() -> Result<(), E> {
    ELEMENTS.with(|e| match e.get() {
        0 => Err(broken(TOO_MANY)),
        n => {
            e.set(n - 1);
            Ok(())
        }
    })
}

/// A deserializer that applies the limits (see the module doc) to the one it wraps.
pub(crate) struct Limited<D>(pub(crate) D);

struct Visit<V>(V);
struct Seq<A>(A);
struct Map<A>(A);
struct Enum<A>(A);
struct Variant<A>(A);
struct Seed<S>(S);

macro_rules! flat {
    ($($method:ident)*) => {$(
        fn $method<V: Visitor<'de>>(self, v: V) -> Result<V::Value, D::Error> {
            self.0.$method(Visit(v))
        }
    )*};
}

impl<'de, D: Deserializer<'de>> Deserializer<'de> for Limited<D> {
    type Error = D::Error;

    flat!(deserialize_bool deserialize_i8 deserialize_i16 deserialize_i32 deserialize_i64
        deserialize_i128 deserialize_u8 deserialize_u16 deserialize_u32 deserialize_u64
        deserialize_u128 deserialize_f32 deserialize_f64 deserialize_char deserialize_str
        deserialize_string deserialize_bytes deserialize_byte_buf deserialize_unit
        deserialize_identifier deserialize_ignored_any);

    fn deserialize_any<V: Visitor<'de>>(self, v: V) -> Result<V::Value, D::Error> {
        nested(|| self.0.deserialize_any(Visit(v)))
    }
    fn deserialize_option<V: Visitor<'de>>(self, v: V) -> Result<V::Value, D::Error> {
        nested(|| self.0.deserialize_option(Visit(v)))
    }
    fn deserialize_unit_struct<V: Visitor<'de>>(
        self,
        name: &'static str,
        v: V,
    ) -> Result<V::Value, D::Error> {
        self.0.deserialize_unit_struct(name, Visit(v))
    }
    fn deserialize_newtype_struct<V: Visitor<'de>>(
        self,
        name: &'static str,
        v: V,
    ) -> Result<V::Value, D::Error> {
        nested(|| self.0.deserialize_newtype_struct(name, Visit(v)))
    }
    fn deserialize_seq<V: Visitor<'de>>(self, v: V) -> Result<V::Value, D::Error> {
        nested(|| self.0.deserialize_seq(Visit(v)))
    }
    fn deserialize_tuple<V: Visitor<'de>>(self, len: usize, v: V) -> Result<V::Value, D::Error> {
        nested(|| self.0.deserialize_tuple(len, Visit(v)))
    }
    fn deserialize_tuple_struct<V: Visitor<'de>>(
        self,
        name: &'static str,
        len: usize,
        v: V,
    ) -> Result<V::Value, D::Error> {
        nested(|| self.0.deserialize_tuple_struct(name, len, Visit(v)))
    }
    fn deserialize_map<V: Visitor<'de>>(self, v: V) -> Result<V::Value, D::Error> {
        nested(|| self.0.deserialize_map(Visit(v)))
    }
    fn deserialize_struct<V: Visitor<'de>>(
        self,
        name: &'static str,
        fields: &'static [&'static str],
        v: V,
    ) -> Result<V::Value, D::Error> {
        nested(|| self.0.deserialize_struct(name, fields, Visit(v)))
    }
    fn deserialize_enum<V: Visitor<'de>>(
        self,
        name: &'static str,
        variants: &'static [&'static str],
        v: V,
    ) -> Result<V::Value, D::Error> {
        nested(|| self.0.deserialize_enum(name, variants, Visit(v)))
    }
    fn is_human_readable(&self) -> bool {
        self.0.is_human_readable()
    }
}

macro_rules! visit {
    ($($method:ident: $t:ty)*) => {$(
        fn $method<E: de::Error>(self, x: $t) -> Result<V::Value, E> {
            self.0.$method(x)
        }
    )*};
}

impl<'de, V: Visitor<'de>> Visitor<'de> for Visit<V> {
    type Value = V::Value;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.expecting(f)
    }

    visit!(visit_bool: bool visit_i8: i8 visit_i16: i16 visit_i32: i32 visit_i64: i64
        visit_i128: i128 visit_u8: u8 visit_u16: u16 visit_u32: u32 visit_u64: u64
        visit_u128: u128 visit_f32: f32 visit_f64: f64 visit_char: char visit_str: &str
        visit_borrowed_str: &'de str visit_string: String visit_bytes: &[u8]
        visit_borrowed_bytes: &'de [u8] visit_byte_buf: Vec<u8>);

    fn visit_none<E: de::Error>(self) -> Result<V::Value, E> {
        self.0.visit_none()
    }
    fn visit_unit<E: de::Error>(self) -> Result<V::Value, E> {
        self.0.visit_unit()
    }
    fn visit_some<D2: Deserializer<'de>>(self, d: D2) -> Result<V::Value, D2::Error> {
        self.0.visit_some(Limited(d))
    }
    fn visit_newtype_struct<D2: Deserializer<'de>>(self, d: D2) -> Result<V::Value, D2::Error> {
        self.0.visit_newtype_struct(Limited(d))
    }
    fn visit_seq<A: SeqAccess<'de>>(self, a: A) -> Result<V::Value, A::Error> {
        self.0.visit_seq(Seq(a))
    }
    fn visit_map<A: MapAccess<'de>>(self, a: A) -> Result<V::Value, A::Error> {
        self.0.visit_map(Map(a))
    }
    fn visit_enum<A: EnumAccess<'de>>(self, a: A) -> Result<V::Value, A::Error> {
        self.0.visit_enum(Enum(a))
    }
}

impl<'de, S: DeserializeSeed<'de>> DeserializeSeed<'de> for Seed<S> {
    type Value = S::Value;
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<S::Value, D::Error> {
        self.0.deserialize(Limited(d))
    }
}

impl<'de, A: SeqAccess<'de>> SeqAccess<'de> for Seq<A> {
    type Error = A::Error;
    fn next_element_seed<T: DeserializeSeed<'de>>(
        &mut self,
        seed: T,
    ) -> Result<Option<T::Value>, A::Error> {
        one_element()?;
        self.0.next_element_seed(Seed(seed))
    }
    fn size_hint(&self) -> Option<usize> {
        self.0.size_hint()
    }
}

impl<'de, A: MapAccess<'de>> MapAccess<'de> for Map<A> {
    type Error = A::Error;
    fn next_key_seed<K: DeserializeSeed<'de>>(
        &mut self,
        seed: K,
    ) -> Result<Option<K::Value>, A::Error> {
        one_element()?;
        self.0.next_key_seed(Seed(seed))
    }
    fn next_value_seed<T: DeserializeSeed<'de>>(&mut self, seed: T) -> Result<T::Value, A::Error> {
        self.0.next_value_seed(Seed(seed))
    }
    fn size_hint(&self) -> Option<usize> {
        self.0.size_hint()
    }
}

impl<'de, A: EnumAccess<'de>> EnumAccess<'de> for Enum<A> {
    type Error = A::Error;
    type Variant = Variant<A::Variant>;
    fn variant_seed<T: DeserializeSeed<'de>>(
        self,
        seed: T,
    ) -> Result<(T::Value, Self::Variant), A::Error> {
        self.0
            .variant_seed(Seed(seed))
            .map(|(value, variant)| (value, Variant(variant)))
    }
}

impl<'de, A: VariantAccess<'de>> VariantAccess<'de> for Variant<A> {
    type Error = A::Error;
    fn unit_variant(self) -> Result<(), A::Error> {
        self.0.unit_variant()
    }
    fn newtype_variant_seed<T: DeserializeSeed<'de>>(self, seed: T) -> Result<T::Value, A::Error> {
        self.0.newtype_variant_seed(Seed(seed))
    }
    fn tuple_variant<V: Visitor<'de>>(self, len: usize, v: V) -> Result<V::Value, A::Error> {
        self.0.tuple_variant(len, Visit(v))
    }
    fn struct_variant<V: Visitor<'de>>(
        self,
        fields: &'static [&'static str],
        v: V,
    ) -> Result<V::Value, A::Error> {
        self.0.struct_variant(fields, Visit(v))
    }
}

#[cfg(test)]
mod tests {
    use serde::{Deserialize, Serialize};

    use super::*;

    #[derive(Debug, PartialEq, Serialize, Deserialize)]
    enum Tree {
        Leaf(u8),
        Node(Box<Tree>, Box<Tree>),
    }

    #[derive(Debug, PartialEq, Serialize, Deserialize)]
    struct Chain(Option<Box<Chain>>);

    fn limited<T: serde::de::DeserializeOwned>(bytes: &[u8]) -> Result<T, String> {
        let (result, broken) = within(bytes.len(), || {
            let mut de = postcard::Deserializer::from_bytes(bytes);
            let value = T::deserialize(Limited(&mut de))?;
            de.finalize()?;
            Ok::<T, postcard::Error>(value)
        });
        result.map_err(|e| broken.map_or_else(|| e.to_string(), str::to_string))
    }

    #[test]
    fn ordinary_values_decode_as_without_the_limits() {
        let tree = Tree::Node(
            Box::new(Tree::Leaf(1)),
            Box::new(Tree::Node(Box::new(Tree::Leaf(2)), Box::new(Tree::Leaf(3)))),
        );
        let bytes = postcard::to_allocvec(&tree).unwrap();
        assert_eq!(limited::<Tree>(&bytes).unwrap(), tree);
        let map: std::collections::HashMap<String, Vec<Option<u32>>> =
            [("a".to_string(), vec![Some(1), None])].into();
        let bytes = postcard::to_allocvec(&map).unwrap();
        assert_eq!(
            limited::<std::collections::HashMap<String, Vec<Option<u32>>>>(&bytes).unwrap(),
            map
        );
    }

    #[test]
    fn a_recursive_type_nested_past_the_limit_is_an_error_not_a_stack_overflow() {
        // One byte a level: Some(Chain(Some(Chain(...)))), then None. 100,000 levels
        // would overflow any thread's stack without the limit.
        let mut bytes = vec![1u8; 100_000];
        bytes.push(0);
        let e = limited::<Chain>(&bytes).unwrap_err();
        assert!(e.contains("nested more than 64"), "{e}");

        let mut shallow = vec![1u8; 20];
        shallow.push(0);
        assert!(limited::<Chain>(&shallow).is_ok());
    }

    #[test]
    fn a_list_of_zero_sized_values_claiming_too_many_is_refused() {
        // A 10-byte varint claiming 2^63 unit values: without the budget this loops.
        let mut bytes = vec![0xff; 9];
        bytes.push(0x01);
        let e = limited::<Vec<()>>(&bytes).unwrap_err();
        assert!(e.contains("more elements than"), "{e}");
        let fine = postcard::to_allocvec(&vec![(); 100]).unwrap();
        assert_eq!(limited::<Vec<()>>(&fine).unwrap().len(), 100);
    }
}
