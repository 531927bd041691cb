//! Codecs: messages to bytes and JSON, and back by type name.
//!
//! * The **binary** codec is compact (postcard: varints, no field names) and is what links
//!   between processes and hosts carry: the type name, then the value.
//! * The **JSON** codec serves HTTP and the command line. A *typed* JSON message is an
//!   object `{"type": NAME, "value": VALUE}`; a *plain* one is just the value, decoded with
//!   a name the caller supplies (an HTTP path, an entry point's declared return type).
//!
//! [`AnyMessage`] itself implements `Serialize`/`Deserialize` the same way (a tuple in binary
//! formats, the typed object in human-readable ones), so messages nest inside messages.

use std::fmt;

use serde::de::{self, DeserializeSeed, Deserializer, MapAccess, SeqAccess, Visitor};
use serde::ser::{SerializeMap, SerializeTuple, Serializer};
use serde::{Deserialize, Serialize};

use super::{registry, AnyMessage, Message};

/// Why a message could not be encoded or decoded.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CodecError {
    /// The type name is not registered in this process.
    #[error("unknown message type `{0}`")]
    UnknownType(String),
    /// The bytes or JSON do not hold a valid value of the named type.
    #[error("malformed `{name}` message: {reason}")]
    Malformed {
        /// The type name the input claimed.
        name: String,
        /// What the decoder found wrong.
        reason: String,
    },
    /// The input is not a message at all (no type name could be read).
    #[error("not a message: {0}")]
    NotAMessage(String),
    /// The value could not be encoded (for example a map with non-string keys in JSON).
    /// Note that JSON has no NaN or infinity: serde_json writes those floats as `null`.
    #[error("cannot encode `{name}`: {reason}")]
    Encode {
        /// The type that failed.
        name: String,
        /// Why.
        reason: String,
    },
}

struct Erased<'a>(&'a dyn erased_serde::Serialize);

impl Serialize for Erased<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        erased_serde::serialize(self.0, s)
    }
}

impl Serialize for AnyMessage {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        self.register_type();
        if s.is_human_readable() {
            let mut map = s.serialize_map(Some(2))?;
            map.serialize_entry("type", self.type_name())?;
            map.serialize_entry("value", &Erased(self.erased()))?;
            map.end()
        } else {
            let mut t = s.serialize_tuple(2)?;
            t.serialize_element(self.type_name())?;
            t.serialize_element(&Erased(self.erased()))?;
            t.end()
        }
    }
}

/// Decodes the value of a message whose type name is already known.
struct ByName<'a>(&'a str);

/// How deeply messages may nest inside messages (an `AnyMessage` in a list in an
/// `AnyMessage` ...). Each level costs tens of kilobytes of stack while decoding, so
/// without a limit a few hundred hostile bytes could overflow the stack.
pub const MAX_NESTING: u32 = 16;

thread_local! {
    static NESTING: std::cell::Cell<u32> = const { std::cell::Cell::new(0) };
}

impl<'de> DeserializeSeed<'de> for ByName<'_> {
    type Value = AnyMessage;
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<AnyMessage, D::Error> {
        let decode = registry::decoder(self.0)
            .ok_or_else(|| de::Error::custom(CodecError::UnknownType(self.0.to_string())))?;
        let depth = NESTING.with(|n| n.get());
        if depth >= MAX_NESTING {
            return Err(super::limits::broken(
                "messages nested more than 16 deep (MAX_NESTING)",
            ));
        }
        NESTING.with(|n| n.set(depth + 1));
        let mut erased = <dyn erased_serde::Deserializer>::erase(d);
        let result = decode(&mut erased).map_err(de::Error::custom);
        NESTING.with(|n| n.set(depth));
        result
    }
}

struct AnyVisitor;

impl<'de> Visitor<'de> for AnyVisitor {
    type Value = AnyMessage;
    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a message: its type name, then its value")
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<AnyMessage, A::Error> {
        let name: String = seq
            .next_element()?
            .ok_or_else(|| de::Error::invalid_length(0, &self))?;
        seq.next_element_seed(ByName(&name))?
            .ok_or_else(|| de::Error::invalid_length(1, &self))
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<AnyMessage, A::Error> {
        match map.next_key::<String>()?.as_deref() {
            Some("type") => {}
            _ => return Err(de::Error::custom("expected `type` as the first field")),
        }
        let name: String = map.next_value()?;
        match map.next_key::<String>()?.as_deref() {
            Some("value") => {}
            _ => return Err(de::Error::missing_field("value")),
        }
        let value = map.next_value_seed(ByName(&name))?;
        if let Some(extra) = map.next_key::<String>()? {
            return Err(de::Error::unknown_field(&extra, &["type", "value"]));
        }
        Ok(value)
    }
}

impl<'de> Deserialize<'de> for AnyMessage {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<AnyMessage, D::Error> {
        if d.is_human_readable() {
            d.deserialize_map(AnyVisitor)
        } else {
            d.deserialize_tuple(2, AnyVisitor)
        }
    }
}

/// Encodes a message in the binary codec (type name, then value), appending to `out`.
///
/// The value is serialized by its own type's code, not through type erasure: this is the
/// path every message on a link takes.
pub(crate) fn to_binary_into(message: &AnyMessage, out: &mut Vec<u8>) -> Result<(), CodecError> {
    message.register_type();
    let start = out.len();
    postcard::to_extend(message.type_name(), super::Append(out)).expect("a string always encodes");
    message.binary_into(out).map_err(|e| {
        out.truncate(start);
        CodecError::Encode {
            name: message.type_name().to_string(),
            reason: e.to_string(),
        }
    })
}

/// Encodes a message in the binary codec.
pub fn to_binary(message: &AnyMessage) -> Result<Vec<u8>, CodecError> {
    let mut out = Vec::new();
    to_binary_into(message, &mut out)?;
    Ok(out)
}

/// Encodes a typed message in the binary codec.
pub fn encode<T: Message>(message: &T) -> Result<Vec<u8>, CodecError> {
    registry::register::<T>();
    postcard::to_stdvec(&(T::type_name(), message)).map_err(|e| CodecError::Encode {
        name: T::type_name().to_string(),
        reason: e.to_string(),
    })
}

/// Decodes a binary message, naming the type in every error.
///
/// The whole input must be one message: trailing bytes are an error.
pub fn from_binary(bytes: &[u8]) -> Result<AnyMessage, CodecError> {
    let (name, rest): (&str, &[u8]) =
        postcard::take_from_bytes(bytes).map_err(|e| CodecError::NotAMessage(e.to_string()))?;
    let decode =
        registry::binary_decoder(name).ok_or_else(|| CodecError::UnknownType(name.into()))?;
    let malformed = |reason: String| CodecError::Malformed {
        name: name.to_string(),
        reason,
    };
    let (decoded, broken) = super::limits::within(rest.len(), || decode(rest));
    let (message, rest) =
        decoded.map_err(|e| malformed(broken.map_or_else(|| e.to_string(), str::to_string)))?;
    let left = rest.len();
    if left != 0 {
        return Err(malformed(format!("{left} trailing bytes")));
    }
    Ok(message)
}

/// Decodes a binary message that must be a `T`.
pub fn decode<T: Message>(bytes: &[u8]) -> Result<T, CodecError> {
    registry::register::<T>();
    from_binary(bytes)?
        .downcast::<T>()
        .map_err(|other| CodecError::Malformed {
            name: other.type_name().to_string(),
            reason: format!("expected a `{}`", T::type_name()),
        })
}

/// Encodes the message as typed JSON: `{"type": NAME, "value": VALUE}`.
pub fn to_json(message: &AnyMessage) -> Result<serde_json::Value, CodecError> {
    serde_json::to_value(message).map_err(|e| CodecError::Encode {
        name: message.type_name().to_string(),
        reason: e.to_string(),
    })
}

/// Encodes just the value, without its type name.
pub fn to_json_plain(message: &AnyMessage) -> Result<serde_json::Value, CodecError> {
    serde_json::to_value(Erased(message.erased())).map_err(|e| CodecError::Encode {
        name: message.type_name().to_string(),
        reason: e.to_string(),
    })
}

/// Decodes typed JSON (`{"type": NAME, "value": VALUE}`).
pub fn from_json(json: &serde_json::Value) -> Result<AnyMessage, CodecError> {
    let obj = json.as_object().ok_or_else(|| {
        CodecError::NotAMessage("expected an object with `type` and `value`".into())
    })?;
    let name = obj
        .get("type")
        .and_then(|t| t.as_str())
        .ok_or_else(|| CodecError::NotAMessage("missing string field `type`".into()))?;
    let value = obj
        .get("value")
        .ok_or_else(|| CodecError::NotAMessage("missing field `value`".into()))?;
    from_json_named(name, value)
}

/// Decodes a plain JSON value as the message type called `name`.
pub fn from_json_named(name: &str, value: &serde_json::Value) -> Result<AnyMessage, CodecError> {
    decode_with(name, value)
}

/// Decodes the message type called `name` from any serde deserializer (JSON text, a query
/// string, ...).
pub(crate) fn decode_with<'de, D: Deserializer<'de>>(
    name: &str,
    input: D,
) -> Result<AnyMessage, CodecError> {
    if !registry::is_registered(name) {
        return Err(CodecError::UnknownType(name.to_string()));
    }
    ByName(name)
        .deserialize(input)
        .map_err(|e| CodecError::Malformed {
            name: name.to_string(),
            reason: e.to_string(),
        })
}

/// Encodes just the value as JSON text, without its type name.
///
/// The buffer starts a little larger than the last value encoded on this thread (a
/// server's replies are mostly alike), so a body of a few kilobytes is not grown and
/// copied several times.
pub(crate) fn to_json_plain_bytes(message: &AnyMessage) -> Result<Vec<u8>, CodecError> {
    thread_local! {
        static LAST_SIZE: std::cell::Cell<usize> = const { std::cell::Cell::new(128) };
    }
    let mut out = Vec::with_capacity(LAST_SIZE.get());
    message
        .json_into(&mut out)
        .map_err(|e| CodecError::Encode {
            name: message.type_name().to_string(),
            reason: e.to_string(),
        })?;
    LAST_SIZE.set((out.len() + out.len() / 8).clamp(128, 1 << 20));
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::{BTreeMap, HashMap};

    #[test]
    fn binary_round_trip_of_constructed_types() {
        let table = vec![vec![0.1, 0.2], vec![0.3, 0.4]];
        let bytes = encode(&table).unwrap();
        assert_eq!(decode::<Vec<Vec<f64>>>(&bytes).unwrap(), table);
        let any = from_binary(&bytes).unwrap();
        assert_eq!(any.type_name(), "vec<vec<f64>>");
    }

    #[test]
    fn json_typed_and_plain() {
        let m: HashMap<String, i32> = [("a".to_string(), 1)].into();
        let any = AnyMessage::new(m.clone());
        let typed = to_json(&any).unwrap();
        assert_eq!(typed["type"], "map<string,i32>");
        assert_eq!(to_json_plain(&any).unwrap(), serde_json::json!({"a": 1}));
        let back = from_json(&typed).unwrap();
        assert_eq!(back.downcast::<HashMap<String, i32>>().unwrap(), m);
    }

    #[test]
    fn nested_any_messages_round_trip() {
        let inner = vec![AnyMessage::new(7u8), AnyMessage::new("x".to_string())];
        let outer = AnyMessage::new(inner);
        let bytes = to_binary(&outer).unwrap();
        let back = from_binary(&bytes)
            .unwrap()
            .downcast::<Vec<AnyMessage>>()
            .unwrap();
        assert_eq!(back[0].downcast_ref::<u8>(), Some(&7));
        assert_eq!(
            back[1].downcast_ref::<String>().map(|s| s.as_str()),
            Some("x")
        );
        let json = to_json(&AnyMessage::new(back)).unwrap();
        let again = from_json(&json).unwrap();
        assert_eq!(again.type_name(), "vec<any>");
    }

    /// Serializes as a sequence of unknown length, which the binary codec refuses.
    #[derive(Debug)]
    struct Unsized;

    impl Serialize for Unsized {
        fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
            use serde::ser::SerializeSeq;
            s.serialize_seq(None)?.end()
        }
    }

    impl<'de> Deserialize<'de> for Unsized {
        fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
            <()>::deserialize(d).map(|_| Unsized)
        }
    }

    impl Message for Unsized {
        fn type_name() -> &'static str {
            "test.Unsized"
        }
    }

    #[test]
    fn a_failed_encoding_leaves_what_was_already_in_the_buffer() {
        let mut out = b"earlier frames".to_vec();
        let err = to_binary_into(&AnyMessage::new(Unsized), &mut out).unwrap_err();
        assert!(
            matches!(err, CodecError::Encode { ref name, .. } if name == "test.Unsized"),
            "{err}"
        );
        assert_eq!(out, b"earlier frames");
        to_binary_into(&AnyMessage::new(5u8), &mut out).unwrap();
        assert_eq!(
            from_binary(&out[14..]).unwrap().downcast::<u8>().unwrap(),
            5
        );
    }

    #[test]
    fn errors_name_what_was_wrong() {
        let bytes = postcard::to_stdvec(&("no-such-type", 1u8)).unwrap();
        assert_eq!(
            from_binary(&bytes).unwrap_err(),
            CodecError::UnknownType("no-such-type".into())
        );
        let mut bytes = encode(&BTreeMap::from([(1u8, 2u8)])).unwrap();
        bytes.push(0);
        assert!(matches!(
            from_binary(&bytes),
            Err(CodecError::Malformed { .. })
        ));
        assert!(matches!(
            from_binary(&[0xff]),
            Err(CodecError::NotAMessage(_))
        ));
        let err = from_json_named("vec<f64>", &serde_json::json!(["a"])).unwrap_err();
        assert!(err.to_string().contains("vec<f64>"), "{err}");
    }
}
