//! Messages: the values objects exchange.
//!
//! Any `serde` type can be a message once it implements [`Message`], which gives it a stable,
//! portable *type name*. Inside one process a message is moved as a Rust value and never
//! serialized; the type name matters when a message leaves the process (a child process, a
//! host across the network, an HTTP client), because the receiver has only the name to decide
//! what to decode.
//!
//! * User types get a name from `#[derive(Message)]`: the type's own name, or the one given
//!   with `#[message(name = "texture.Xy")]`.
//! * Constructed types are named without user code: `vec<vec<f64>>`,
//!   `map<string,customer>`, `option<i32>`, `tuple<i32,string>`, `array<f64,4>`.
//! * [`AnyMessage`] carries a message whose type is known only at run time. It serializes as
//!   its type name followed by its value, so it can travel inside other messages (a
//!   [`Returned`](crate::standard::Returned) value, a list of collated replies).
//! * The [`registry`] maps names back to decoders, so a process can decode a message it
//!   receives by name. Derived types register themselves at link time; constructed types are
//!   registered when first encoded or when a machine that handles them is created.
//! * [`codec`] has the compact binary codec used on links and the JSON codec used by HTTP
//!   and the command line.
//! * `fields` decodes messages from named text fields (`name=value`): command-line
//!   arguments and query strings.

pub mod codec;
pub(crate) mod fields;
pub mod limits;
pub mod registry;

use std::any::{Any, TypeId};
use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet, VecDeque};
use std::fmt;
use std::sync::OnceLock;

use parking_lot::RwLock;
use serde::de::DeserializeOwned;
use serde::Serialize;

pub use codec::CodecError;
pub use registry::{register, Registration};

/// A value that objects can exchange, with a stable, portable type name.
///
/// Implement it with `#[derive(Message)]` (which also needs `Serialize`, `Deserialize` and
/// `Debug`). Primitives, `String`, `Vec`, `VecDeque`, `HashMap`, `BTreeMap`, `HashSet`,
/// `BTreeSet`, `Option`, tuples up to eight and arrays are messages whenever their parts are.
pub trait Message: Any + Send + fmt::Debug + Serialize + DeserializeOwned + 'static {
    /// The portable name of this type, the same in every process that links it.
    fn type_name() -> &'static str
    where
        Self: Sized;

    /// Returns this message as a fault when it belongs to the fault family.
    ///
    /// Overridden by the standard faults (and by `#[message(fault)]`); everything else is
    /// not a fault.
    fn as_fault(&self) -> Option<&dyn Fault> {
        None
    }
}

/// The common face of every fault (`Faulted`, `Aborted`, `TimedOut`, `Busy`, ...).
///
/// Any fault can be matched as "a fault" through [`AnyMessage::as_fault`] or
/// [`Envelope::as_fault`](crate::Envelope::as_fault), whatever its concrete type.
pub trait Fault: fmt::Display + Send + Sync {
    /// A short, human readable reason (what went wrong).
    fn reason(&self) -> String {
        self.to_string()
    }
}

/// Caches the name of a constructed type, computed once per process.
///
/// Constructed names (`vec<vec<f64>>`) are built from the names of their parts; this turns
/// them into `&'static str` so that asking for a name never allocates after the first time.
pub fn cached_name<T: 'static>(build: impl FnOnce() -> String) -> &'static str {
    static NAMES: OnceLock<RwLock<HashMap<TypeId, &'static str>>> = OnceLock::new();
    let names = NAMES.get_or_init(Default::default);
    let id = TypeId::of::<T>();
    if let Some(name) = names.read().get(&id) {
        return name;
    }
    let built: &'static str = Box::leak(build().into_boxed_str());
    let mut names = names.write();
    let name: &'static str = names.entry(id).or_insert(built);
    name
}

macro_rules! primitive_messages {
    ($($t:ty => $n:literal),* $(,)?) => {
        $(impl Message for $t {
            fn type_name() -> &'static str { $n }
        })*
    };
}

primitive_messages! {
    () => "unit", bool => "bool", char => "char", String => "string",
    i8 => "i8", i16 => "i16", i32 => "i32", i64 => "i64", i128 => "i128",
    u8 => "u8", u16 => "u16", u32 => "u32", u64 => "u64", u128 => "u128",
    f32 => "f32", f64 => "f64",
}

macro_rules! container_messages {
    ($($c:ident<$($p:ident),+> => $n:literal $(where [$($b:tt)*])?;)*) => {
        $(impl<$($p: Message),+> Message for $c<$($p),+> $(where $($b)*)? {
            fn type_name() -> &'static str {
                cached_name::<Self>(|| {
                    let parts: Vec<&str> = vec![$($p::type_name()),+];
                    format!("{}<{}>", $n, parts.join(","))
                })
            }
        })*
    };
}

container_messages! {
    Vec<T> => "vec";
    VecDeque<T> => "deque";
    Option<T> => "option";
    HashMap<K, V> => "map" where [K: Eq + std::hash::Hash];
    BTreeMap<K, V> => "sorted_map" where [K: Ord];
    HashSet<T> => "set" where [T: Eq + std::hash::Hash];
    BTreeSet<T> => "sorted_set" where [T: Ord];
}

macro_rules! tuple_messages {
    ($(($($p:ident),+)),* $(,)?) => {
        $(impl<$($p: Message),+> Message for ($($p,)+) {
            fn type_name() -> &'static str {
                cached_name::<Self>(|| {
                    let parts: Vec<&str> = vec![$($p::type_name()),+];
                    format!("tuple<{}>", parts.join(","))
                })
            }
        })*
    };
}

tuple_messages! {
    (A), (A, B), (A, B, C), (A, B, C, D), (A, B, C, D, E), (A, B, C, D, E, F),
    (A, B, C, D, E, F, G), (A, B, C, D, E, F, G, H),
}

impl<T: Message, const N: usize> Message for [T; N]
where
    [T; N]: Serialize + DeserializeOwned,
{
    fn type_name() -> &'static str {
        cached_name::<Self>(|| format!("array<{},{}>", T::type_name(), N))
    }
}

/// Appends to a buffer without taking it, so a failed encoding leaves what was there.
pub(crate) struct Append<'a>(pub(crate) &'a mut Vec<u8>);

impl Extend<u8> for Append<'_> {
    fn extend<I: IntoIterator<Item = u8>>(&mut self, bytes: I) {
        self.0.extend(bytes);
    }
}

/// Object-safe view of a [`Message`], used behind [`AnyMessage`].
pub(crate) trait DynMessage: Any + Send {
    fn name(&self) -> &'static str;
    fn as_any(&self) -> &dyn Any;
    fn as_any_mut(&mut self) -> &mut dyn Any;
    fn into_any(self: Box<Self>) -> Box<dyn Any + Send>;
    fn fault(&self) -> Option<&dyn Fault>;
    fn erased(&self) -> &dyn erased_serde::Serialize;
    fn debug(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result;
    fn register(&self);
    /// The value as JSON text, appended to `out` by the concrete type's own code (no
    /// erasure).
    fn json_into(&self, out: &mut Vec<u8>) -> Result<(), serde_json::Error>;
    /// The value in the binary codec, appended to `out` (no erasure).
    fn binary_into(&self, out: &mut Vec<u8>) -> Result<(), postcard::Error>;
}

impl<T: Message> DynMessage for T {
    fn name(&self) -> &'static str {
        T::type_name()
    }
    fn as_any(&self) -> &dyn Any {
        self
    }
    fn as_any_mut(&mut self) -> &mut dyn Any {
        self
    }
    fn into_any(self: Box<Self>) -> Box<dyn Any + Send> {
        self
    }
    fn fault(&self) -> Option<&dyn Fault> {
        self.as_fault()
    }
    fn erased(&self) -> &dyn erased_serde::Serialize {
        self
    }
    fn debug(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(self, f)
    }
    fn register(&self) {
        registry::register::<T>();
    }
    fn json_into(&self, out: &mut Vec<u8>) -> Result<(), serde_json::Error> {
        serde_json::to_writer(out, self)
    }
    fn binary_into(&self, out: &mut Vec<u8>) -> Result<(), postcard::Error> {
        postcard::to_extend(self, Append(out)).map(|_| ())
    }
}

/// A message whose concrete type is known only at run time.
///
/// Moving an `AnyMessage` moves one box; nothing is serialized until it leaves the process.
/// Test and take its value with [`is`](Self::is), [`downcast_ref`](Self::downcast_ref) and
/// [`downcast`](Self::downcast); ask whether it is a fault with [`as_fault`](Self::as_fault).
pub struct AnyMessage(Box<dyn DynMessage>);

impl AnyMessage {
    /// Wraps a message. Wrapping an `AnyMessage` returns it unchanged (no double boxing).
    pub fn new<T: Message>(message: T) -> Self {
        // Decided at compile time: only `AnyMessage::new(AnyMessage)` takes this branch.
        if TypeId::of::<T>() == TypeId::of::<AnyMessage>() {
            let mut slot = Some(message);
            let any = (&mut slot as &mut dyn Any).downcast_mut::<Option<AnyMessage>>();
            return any
                .and_then(Option::take)
                .expect("checked to be an AnyMessage");
        }
        AnyMessage(Box::new(message))
    }

    /// The portable type name of the value inside.
    pub fn type_name(&self) -> &'static str {
        self.0.name()
    }

    /// The Rust type id of the value inside.
    pub fn type_id(&self) -> TypeId {
        self.0.as_any().type_id()
    }

    /// True when the value inside is a `T`.
    pub fn is<T: Message>(&self) -> bool {
        self.0.as_any().is::<T>()
    }

    /// A reference to the value when it is a `T`.
    pub fn downcast_ref<T: Message>(&self) -> Option<&T> {
        self.0.as_any().downcast_ref()
    }

    /// A mutable reference to the value when it is a `T`.
    pub fn downcast_mut<T: Message>(&mut self) -> Option<&mut T> {
        self.0.as_any_mut().downcast_mut()
    }

    /// Takes the value out when it is a `T`; otherwise gives the message back.
    pub fn downcast<T: Message>(self) -> Result<T, AnyMessage> {
        if self.is::<T>() {
            Ok(*self.0.into_any().downcast::<T>().expect("type checked"))
        } else {
            Err(self)
        }
    }

    /// The value as a fault, when it belongs to the fault family.
    pub fn as_fault(&self) -> Option<&dyn Fault> {
        self.0.fault()
    }

    /// True when the value belongs to the fault family.
    pub fn is_fault(&self) -> bool {
        self.as_fault().is_some()
    }

    /// Makes sure the registry can decode this message's type by name.
    pub fn register_type(&self) {
        self.0.register();
    }

    pub(crate) fn erased(&self) -> &dyn erased_serde::Serialize {
        self.0.erased()
    }

    pub(crate) fn json_into(&self, out: &mut Vec<u8>) -> Result<(), serde_json::Error> {
        self.0.json_into(out)
    }

    pub(crate) fn binary_into(&self, out: &mut Vec<u8>) -> Result<(), postcard::Error> {
        self.0.binary_into(out)
    }
}

impl fmt::Debug for AnyMessage {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:", self.type_name())?;
        self.0.debug(f)
    }
}

impl Message for AnyMessage {
    fn type_name() -> &'static str {
        "any"
    }
    fn as_fault(&self) -> Option<&dyn Fault> {
        self.0.fault()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn constructed_names_are_canonical() {
        assert_eq!(<Vec<Vec<f64>>>::type_name(), "vec<vec<f64>>");
        assert_eq!(
            <HashMap<String, Vec<i32>>>::type_name(),
            "map<string,vec<i32>>"
        );
        assert_eq!(<BTreeMap<u8, bool>>::type_name(), "sorted_map<u8,bool>");
        assert_eq!(
            <Option<(i32, String)>>::type_name(),
            "option<tuple<i32,string>>"
        );
        assert_eq!(<[f64; 4]>::type_name(), "array<f64,4>");
        assert_eq!(<()>::type_name(), "unit");
        // Cached: the same pointer every time.
        assert!(std::ptr::eq(
            <Vec<Vec<f64>>>::type_name(),
            <Vec<Vec<f64>>>::type_name()
        ));
    }

    #[test]
    fn any_message_downcasts_and_does_not_double_box() {
        let m = AnyMessage::new(vec![1.0f64, 2.0]);
        assert!(m.is::<Vec<f64>>());
        assert!(!m.is_fault());
        let again = AnyMessage::new(m);
        assert_eq!(again.type_name(), "vec<f64>");
        let back = again.downcast::<String>().unwrap_err();
        assert_eq!(back.downcast::<Vec<f64>>().unwrap(), vec![1.0, 2.0]);
    }
}
