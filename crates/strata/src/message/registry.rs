//! The registry: portable type names mapped to decoders, at run time.
//!
//! A message that crosses a process boundary carries only its type name. The receiving
//! process looks the name up here to find the function that decodes it back into the Rust
//! type. A name is bound to exactly one Rust type per process; binding a second type to a
//! name already taken is refused with [`RegistryError::NameTaken`].
//!
//! Types get here in four ways, so user code rarely calls [`register`] itself:
//! `#[derive(Message)]` submits non-generic types at link time (through `inventory`); every
//! type is registered when it is first encoded; a machine registers the types its handlers
//! take when it is created; and the standard messages are always present.

use std::any::TypeId;
use std::collections::HashMap;
use std::sync::OnceLock;

use parking_lot::RwLock;

use super::{AnyMessage, Message};

/// Decodes one message of a registered type from any serde format.
pub(crate) type DecodeFn =
    fn(&mut dyn erased_serde::Deserializer<'_>) -> Result<AnyMessage, erased_serde::Error>;

/// Decodes one message of a registered type from the binary codec by the type's own code
/// (no erasure: the path every message arriving on a link takes); gives the message and
/// the bytes after it.
pub(crate) type BinaryDecodeFn =
    for<'a> fn(&'a [u8]) -> Result<(AnyMessage, &'a [u8]), postcard::Error>;

/// A type submitted to the registry: its name, its Rust identity and its decoders.
pub struct Registration {
    name: fn() -> &'static str,
    type_id: fn() -> TypeId,
    decode: DecodeFn,
    binary: BinaryDecodeFn,
}

impl Registration {
    /// The registration of `T`; used by `#[derive(Message)]` and [`register`].
    pub const fn new<T: Message>() -> Self {
        Registration {
            name: T::type_name,
            type_id: TypeId::of::<T>,
            decode: decode::<T>,
            binary: decode_binary::<T>,
        }
    }
}

inventory::collect!(Registration);

fn decode<T: Message>(
    de: &mut dyn erased_serde::Deserializer<'_>,
) -> Result<AnyMessage, erased_serde::Error> {
    erased_serde::deserialize::<T>(de).map(AnyMessage::new)
}

/// Decodes a `T` from the front of `bytes` under the decoding limits
/// ([`limits`](super::limits)) that `codec::from_binary` sets.
fn decode_binary<T: Message>(bytes: &[u8]) -> Result<(AnyMessage, &[u8]), postcard::Error> {
    let mut de = postcard::Deserializer::from_bytes(bytes);
    let message = <T as serde::Deserialize>::deserialize(super::limits::Limited(&mut de))?;
    Ok((AnyMessage::new(message), de.finalize()?))
}

struct Decoders {
    type_id: TypeId,
    erased: DecodeFn,
    binary: BinaryDecodeFn,
}

/// Why a type could not be registered.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RegistryError {
    /// Another Rust type already owns this portable name in this process.
    #[error("message name `{0}` is already bound to another type")]
    NameTaken(&'static str),
}

#[derive(Default)]
struct Inner {
    by_name: HashMap<&'static str, Decoders>,
    by_type: HashMap<TypeId, &'static str>,
}

impl Inner {
    fn insert(&mut self, r: &Registration) -> Result<(), RegistryError> {
        let (name, id) = ((r.name)(), (r.type_id)());
        match self.by_name.get(name) {
            Some(existing) if existing.type_id == id => Ok(()),
            Some(_) => Err(RegistryError::NameTaken(name)),
            None => {
                let decoders = Decoders {
                    type_id: id,
                    erased: r.decode,
                    binary: r.binary,
                };
                self.by_name.insert(name, decoders);
                self.by_type.insert(id, name);
                Ok(())
            }
        }
    }
}

fn registry() -> &'static RwLock<Inner> {
    static REGISTRY: OnceLock<RwLock<Inner>> = OnceLock::new();
    REGISTRY.get_or_init(|| {
        let mut inner = Inner::default();
        let standard = crate::standard::registrations();
        let derived = inventory::iter::<Registration>.into_iter();
        let all: Vec<&Registration> = standard
            .iter()
            .chain(derived.map(|r| r as &Registration))
            .collect();
        for r in all {
            if let Err(e) = inner.insert(r) {
                tracing::error!(error = %e, "message registration refused");
            }
        }
        RwLock::new(inner)
    })
}

/// Registers `T` so that messages named `T::type_name()` decode in this process.
///
/// Cheap when `T` is already registered. A name conflict is logged and the first binding
/// kept; use [`try_register`] to handle it.
pub fn register<T: Message>() {
    if let Err(e) = try_register::<T>() {
        tracing::error!(error = %e, rust_type = std::any::type_name::<T>(), "message registration refused");
    }
}

/// Registers `T`, reporting a name already bound to another type.
pub fn try_register<T: Message>() -> Result<(), RegistryError> {
    let id = TypeId::of::<T>();
    if registry().read().by_type.contains_key(&id) {
        return Ok(());
    }
    registry().write().insert(&Registration::new::<T>())
}

/// The decoder for a portable type name, when one is registered.
pub(crate) fn decoder(name: &str) -> Option<DecodeFn> {
    registry().read().by_name.get(name).map(|d| d.erased)
}

/// The binary decoder for a portable type name, when one is registered.
pub(crate) fn binary_decoder(name: &str) -> Option<BinaryDecodeFn> {
    registry().read().by_name.get(name).map(|d| d.binary)
}

/// True when `name` is registered in this process.
pub fn is_registered(name: &str) -> bool {
    registry().read().by_name.contains_key(name)
}

/// Every registered name, sorted.
pub fn names() -> Vec<&'static str> {
    let mut names: Vec<_> = registry().read().by_name.keys().copied().collect();
    names.sort_unstable();
    names
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde::{Deserialize, Serialize};

    #[derive(Debug, Serialize, Deserialize)]
    struct Impostor;
    impl Message for Impostor {
        fn type_name() -> &'static str {
            "vec<f64>"
        }
    }

    #[test]
    fn a_name_is_bound_to_one_type() {
        register::<Vec<f64>>();
        assert!(is_registered("vec<f64>"));
        assert_eq!(
            try_register::<Impostor>(),
            Err(RegistryError::NameTaken("vec<f64>"))
        );
        assert!(try_register::<Vec<f64>>().is_ok());
    }
}
