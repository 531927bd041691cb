//! Named text fields (`name=value` pairs: command-line arguments, query strings, path
//! parameters) decoded into messages.
//!
//! Values are text; what each should become is decided by the message's own field types,
//! through serde's type hints: `x=2` fills a `usize`, `name=123` a `String`, and a list or
//! nested value is written as JSON (`rows=[1,2,3]`). Errors name the field. The process
//! entry points decode their arguments here, and the HTTP front its query strings (which
//! it splits and percent-decodes itself).
//!
//! Floats must be finite: `NaN`, `inf` and values too large for the type (`1e400` for an
//! `f64`, `1e39` for an `f32`) are refused naming the field, as JSON itself refuses them
//! (JSON has no such numbers). Where no type is asked for (a `serde_json::Value` field),
//! such text stays text.

use std::borrow::Cow;
use std::marker::PhantomData;

use serde::de::value::{Error, MapDeserializer};
use serde::de::{self, Deserializer, IntoDeserializer, Unexpected, Visitor};
use serde::forward_to_deserialize_any;

use super::{codec, AnyMessage, CodecError, Message};

/// One text value, parsed by the type the message asks for.
pub(crate) struct Text<'a>(pub Cow<'a, str>);

impl<'de, 'a> IntoDeserializer<'de, Error> for Text<'a> {
    type Deserializer = Self;
    fn into_deserializer(self) -> Self {
        self
    }
}

macro_rules! parse_number {
    ($($method:ident $t:ty => $visit:ident),*) => {$(
        fn $method<V: Visitor<'de>>(self, v: V) -> Result<V::Value, Error> {
            match self.0.trim().parse::<$t>() {
                Ok(n) => v.$visit(n),
                Err(_) => Err(de::Error::invalid_value(Unexpected::Str(&self.0), &v)),
            }
        }
    )*};
}

macro_rules! parse_float {
    ($($method:ident $t:ty => $visit:ident),*) => {$(
        fn $method<V: Visitor<'de>>(self, v: V) -> Result<V::Value, Error> {
            match self.0.trim().parse::<$t>() {
                Ok(n) if n.is_finite() => v.$visit(n),
                Ok(_) => Err(de::Error::invalid_value(
                    Unexpected::Str(&self.0),
                    &"a finite number (NaN, infinities and numbers out of range are refused)",
                )),
                Err(_) => Err(de::Error::invalid_value(Unexpected::Str(&self.0), &v)),
            }
        }
    )*};
}

impl<'de, 'a> Deserializer<'de> for Text<'a> {
    type Error = Error;

    fn deserialize_any<V: Visitor<'de>>(self, v: V) -> Result<V::Value, Error> {
        let s = self.0.trim();
        if let Ok(n) = s.parse::<i64>() {
            return v.visit_i64(n);
        }
        if let Ok(n) = s.parse::<u64>() {
            return v.visit_u64(n);
        }
        // `NaN`, `inf` and `1e400` are no JSON numbers: they stay text.
        if let Some(n) = s.parse::<f64>().ok().filter(|n| n.is_finite()) {
            return v.visit_f64(n);
        }
        match s {
            "true" => v.visit_bool(true),
            "false" => v.visit_bool(false),
            _ if s.starts_with('[') || s.starts_with('{') => self.json(v),
            _ => v.visit_str(&self.0),
        }
    }

    fn deserialize_bool<V: Visitor<'de>>(self, v: V) -> Result<V::Value, Error> {
        match self.0.trim() {
            "true" | "1" => v.visit_bool(true),
            "false" | "0" => v.visit_bool(false),
            _ => Err(de::Error::invalid_value(Unexpected::Str(&self.0), &v)),
        }
    }

    parse_number! {
        deserialize_i8 i8 => visit_i8, deserialize_i16 i16 => visit_i16,
        deserialize_i32 i32 => visit_i32, deserialize_i64 i64 => visit_i64,
        deserialize_u8 u8 => visit_u8, deserialize_u16 u16 => visit_u16,
        deserialize_u32 u32 => visit_u32, deserialize_u64 u64 => visit_u64
    }

    parse_float! {
        deserialize_f32 f32 => visit_f32, deserialize_f64 f64 => visit_f64
    }

    fn deserialize_char<V: Visitor<'de>>(self, v: V) -> Result<V::Value, Error> {
        let mut chars = self.0.chars();
        match (chars.next(), chars.next()) {
            (Some(c), None) => v.visit_char(c),
            _ => Err(de::Error::invalid_value(Unexpected::Str(&self.0), &v)),
        }
    }

    fn deserialize_str<V: Visitor<'de>>(self, v: V) -> Result<V::Value, Error> {
        v.visit_str(&self.0)
    }

    fn deserialize_string<V: Visitor<'de>>(self, v: V) -> Result<V::Value, Error> {
        v.visit_string(self.0.into_owned())
    }

    fn deserialize_identifier<V: Visitor<'de>>(self, v: V) -> Result<V::Value, Error> {
        v.visit_str(&self.0)
    }

    fn deserialize_option<V: Visitor<'de>>(self, v: V) -> Result<V::Value, Error> {
        match self.0.as_ref() {
            "" | "null" => v.visit_none(),
            _ => v.visit_some(self),
        }
    }

    fn deserialize_newtype_struct<V: Visitor<'de>>(
        self,
        _name: &'static str,
        v: V,
    ) -> Result<V::Value, Error> {
        v.visit_newtype_struct(self)
    }

    fn deserialize_enum<V: Visitor<'de>>(
        self,
        name: &'static str,
        variants: &'static [&'static str],
        v: V,
    ) -> Result<V::Value, Error> {
        let s = self.0.trim();
        if s.starts_with('{') || s.starts_with('"') {
            return parse_json(s)?
                .deserialize_enum(name, variants, v)
                .map_err(de::Error::custom);
        }
        v.visit_enum(s.to_string().into_deserializer())
    }

    fn deserialize_seq<V: Visitor<'de>>(self, v: V) -> Result<V::Value, Error> {
        self.json(v)
    }

    fn deserialize_map<V: Visitor<'de>>(self, v: V) -> Result<V::Value, Error> {
        self.json(v)
    }

    fn deserialize_struct<V: Visitor<'de>>(
        self,
        _name: &'static str,
        _fields: &'static [&'static str],
        v: V,
    ) -> Result<V::Value, Error> {
        self.json(v)
    }

    fn deserialize_tuple<V: Visitor<'de>>(self, _len: usize, v: V) -> Result<V::Value, Error> {
        self.json(v)
    }

    fn deserialize_tuple_struct<V: Visitor<'de>>(
        self,
        _name: &'static str,
        _len: usize,
        v: V,
    ) -> Result<V::Value, Error> {
        self.json(v)
    }

    fn deserialize_ignored_any<V: Visitor<'de>>(self, v: V) -> Result<V::Value, Error> {
        v.visit_unit()
    }

    forward_to_deserialize_any! { bytes byte_buf unit unit_struct }
}

impl Text<'_> {
    fn json<'de, V: Visitor<'de>>(self, v: V) -> Result<V::Value, Error> {
        parse_json(&self.0)?
            .deserialize_any(v)
            .map_err(de::Error::custom)
    }
}

fn parse_json(s: &str) -> Result<serde_json::Value, Error> {
    serde_json::from_str(s.trim())
        .map_err(|e| de::Error::custom(format!("expected JSON here ({e})")))
}

/// A set of named text fields (for HTTP: a query string plus path parameters).
#[derive(Clone)]
pub(crate) struct Fields<'a> {
    pairs: Vec<(Cow<'a, str>, Cow<'a, str>)>,
}

impl<'a> Fields<'a> {
    /// Fields from `(name, value)` pairs, already decoded (percent-decoding is the
    /// caller's business).
    pub(crate) fn from_pairs(
        pairs: impl IntoIterator<Item = (Cow<'a, str>, Cow<'a, str>)>,
    ) -> Self {
        Fields {
            pairs: pairs.into_iter().collect(),
        }
    }

    /// Adds a field (a path parameter).
    #[cfg_attr(not(feature = "http"), allow(dead_code))]
    pub(crate) fn push(&mut self, name: &'a str, value: String) {
        self.pairs.push((Cow::Borrowed(name), Cow::Owned(value)));
    }
}

impl<'de, 'a> Deserializer<'de> for Fields<'a> {
    type Error = Error;

    fn deserialize_any<V: Visitor<'de>>(self, v: V) -> Result<V::Value, Error> {
        v.visit_map(MapDeserializer::new(
            self.pairs.into_iter().map(|(k, v)| (Text(k), Text(v))),
        ))
    }

    fn deserialize_unit<V: Visitor<'de>>(self, v: V) -> Result<V::Value, Error> {
        match self.pairs.first() {
            None => v.visit_unit(),
            Some((name, _)) => Err(de::Error::custom(format!(
                "unexpected parameter `{name}`: this message has no fields"
            ))),
        }
    }

    fn deserialize_unit_struct<V: Visitor<'de>>(
        self,
        _name: &'static str,
        v: V,
    ) -> Result<V::Value, Error> {
        self.deserialize_unit(v)
    }

    fn deserialize_newtype_struct<V: Visitor<'de>>(
        self,
        _name: &'static str,
        v: V,
    ) -> Result<V::Value, Error> {
        v.visit_newtype_struct(self)
    }

    forward_to_deserialize_any! {
        bool i8 i16 i32 i64 i128 u8 u16 u32 u64 u128 f32 f64 char str string bytes byte_buf
        option seq tuple tuple_struct map struct enum identifier ignored_any
    }
}

/// A JSON body's fields with path parameters beside them (REST routes with a body): the
/// body's values are JSON, the parameters text parsed by the type each field asks for, as
/// in a query string (`/users/123` fills a `String` field with `"123"`, a `u32` with 123).
/// A parameter replaces a body field of the same name.
#[derive(Clone)]
#[cfg_attr(not(feature = "http"), allow(dead_code))]
pub(crate) struct WithParams<'a> {
    body: &'a serde_json::Map<String, serde_json::Value>,
    params: &'a [(String, String)],
}

impl<'a> WithParams<'a> {
    /// The fields of `body` and `params`.
    #[cfg_attr(not(feature = "http"), allow(dead_code))]
    pub(crate) fn new(
        body: &'a serde_json::Map<String, serde_json::Value>,
        params: &'a [(String, String)],
    ) -> Self {
        WithParams { body, params }
    }
}

impl<'de, 'a> Deserializer<'de> for WithParams<'a> {
    type Error = Error;

    fn deserialize_any<V: Visitor<'de>>(self, v: V) -> Result<V::Value, Error> {
        let params = self.params;
        let body = self
            .body
            .iter()
            .filter(|(k, _)| !params.iter().any(|(p, _)| p == *k))
            .map(|(k, v)| (k.as_str(), OneValue::Json(v.clone())));
        let params = params
            .iter()
            .map(|(k, v)| (k.as_str(), OneValue::Text(Text(Cow::Borrowed(v)))));
        v.visit_map(MapDeserializer::new(body.chain(params)))
    }

    forward_to_deserialize_any! {
        bool i8 i16 i32 i64 i128 u8 u16 u32 u64 u128 f32 f64 char str string bytes byte_buf
        option unit unit_struct newtype_struct seq tuple tuple_struct map struct enum
        identifier ignored_any
    }
}

/// One field's value beside path parameters: JSON from the body, or a parameter's text.
#[cfg_attr(not(feature = "http"), allow(dead_code))]
enum OneValue<'a> {
    Json(serde_json::Value),
    Text(Text<'a>),
}

impl<'de, 'a> IntoDeserializer<'de, Error> for OneValue<'a> {
    type Deserializer = Self;
    fn into_deserializer(self) -> Self {
        self
    }
}

macro_rules! either_way {
    ($($method:ident),*) => {$(
        fn $method<V: Visitor<'de>>(self, v: V) -> Result<V::Value, Error> {
            match self {
                OneValue::Json(j) => j.$method(v).map_err(de::Error::custom),
                OneValue::Text(t) => t.$method(v),
            }
        }
    )*};
}

impl<'de, 'a> Deserializer<'de> for OneValue<'a> {
    type Error = Error;

    either_way! {
        deserialize_any, deserialize_bool, deserialize_i8, deserialize_i16, deserialize_i32,
        deserialize_i64, deserialize_u8, deserialize_u16, deserialize_u32, deserialize_u64,
        deserialize_f32, deserialize_f64, deserialize_char, deserialize_str,
        deserialize_string, deserialize_bytes, deserialize_byte_buf, deserialize_option,
        deserialize_unit, deserialize_seq, deserialize_map, deserialize_identifier,
        deserialize_ignored_any
    }

    fn deserialize_unit_struct<V: Visitor<'de>>(
        self,
        name: &'static str,
        v: V,
    ) -> Result<V::Value, Error> {
        match self {
            OneValue::Json(j) => j
                .deserialize_unit_struct(name, v)
                .map_err(de::Error::custom),
            OneValue::Text(t) => t.deserialize_unit_struct(name, v),
        }
    }

    fn deserialize_newtype_struct<V: Visitor<'de>>(
        self,
        name: &'static str,
        v: V,
    ) -> Result<V::Value, Error> {
        match self {
            OneValue::Json(j) => j
                .deserialize_newtype_struct(name, v)
                .map_err(de::Error::custom),
            OneValue::Text(t) => t.deserialize_newtype_struct(name, v),
        }
    }

    fn deserialize_tuple<V: Visitor<'de>>(self, len: usize, v: V) -> Result<V::Value, Error> {
        match self {
            OneValue::Json(j) => j.deserialize_tuple(len, v).map_err(de::Error::custom),
            OneValue::Text(t) => t.deserialize_tuple(len, v),
        }
    }

    fn deserialize_tuple_struct<V: Visitor<'de>>(
        self,
        name: &'static str,
        len: usize,
        v: V,
    ) -> Result<V::Value, Error> {
        match self {
            OneValue::Json(j) => j
                .deserialize_tuple_struct(name, len, v)
                .map_err(de::Error::custom),
            OneValue::Text(t) => t.deserialize_tuple_struct(name, len, v),
        }
    }

    fn deserialize_struct<V: Visitor<'de>>(
        self,
        name: &'static str,
        fields: &'static [&'static str],
        v: V,
    ) -> Result<V::Value, Error> {
        match self {
            OneValue::Json(j) => j
                .deserialize_struct(name, fields, v)
                .map_err(de::Error::custom),
            OneValue::Text(t) => t.deserialize_struct(name, fields, v),
        }
    }

    fn deserialize_enum<V: Visitor<'de>>(
        self,
        name: &'static str,
        variants: &'static [&'static str],
        v: V,
    ) -> Result<V::Value, Error> {
        match self {
            OneValue::Json(j) => j
                .deserialize_enum(name, variants, v)
                .map_err(de::Error::custom),
            OneValue::Text(t) => t.deserialize_enum(name, variants, v),
        }
    }
}

/// Decodes the message type `name` from named text values (command-line arguments).
pub(crate) fn decode_fields(
    name: &str,
    pairs: Vec<(String, String)>,
) -> Result<AnyMessage, InputError> {
    let pairs = pairs
        .into_iter()
        .map(|(k, v)| (Cow::Owned(k), Cow::Owned(v)));
    decode_named(name, Fields::from_pairs(pairs))
}

/// Why input could not become a message: the field (when known) and the reason.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct InputError {
    /// The dotted path of the offending field, empty when the problem is not in one field.
    pub(crate) field: String,
    /// What was wrong.
    pub(crate) reason: String,
}

/// How a message is decoded: by its portable name through the registry, or as a type
/// known at compile time.
trait Decoder {
    fn decode<'de, D: Deserializer<'de>>(&self, input: D) -> Result<AnyMessage, CodecError>;
}

/// Through the registry, by portable name.
struct ByName<'n>(&'n str);

impl Decoder for ByName<'_> {
    fn decode<'de, D: Deserializer<'de>>(&self, input: D) -> Result<AnyMessage, CodecError> {
        codec::decode_with(self.0, input)
    }
}

/// Straight into `T`: no registry lookup, no type erasure (the HTTP front's routes).
#[cfg_attr(not(feature = "http"), allow(dead_code))]
struct As<T>(PhantomData<fn() -> T>);

impl<T: Message> Decoder for As<T> {
    fn decode<'de, D: Deserializer<'de>>(&self, input: D) -> Result<AnyMessage, CodecError> {
        T::deserialize(input)
            .map(AnyMessage::new)
            .map_err(|e| CodecError::Malformed {
                name: T::type_name().to_string(),
                reason: e.to_string(),
            })
    }
}

/// Decodes the message type `name` from any deserializer, naming the failing field.
pub(crate) fn decode_named<'de, D>(name: &str, input: D) -> Result<AnyMessage, InputError>
where
    D: Deserializer<'de> + Clone,
    D::Error: std::fmt::Display,
{
    decode_tracked(ByName(name), input)
}

/// Decodes a `T` from any deserializer, naming the failing field.
#[cfg_attr(not(feature = "http"), allow(dead_code))]
pub(crate) fn decode_as<'de, T: Message, D>(input: D) -> Result<AnyMessage, InputError>
where
    D: Deserializer<'de> + Clone,
    D::Error: std::fmt::Display,
{
    decode_tracked(As::<T>(PhantomData), input)
}

/// Good input is decoded once, untracked; only input that fails is decoded again with
/// its path tracked, to name the field (tracking costs more than the decoding itself).
fn decode_tracked<'de, D>(decoder: impl Decoder, input: D) -> Result<AnyMessage, InputError>
where
    D: Deserializer<'de> + Clone,
    D::Error: std::fmt::Display,
{
    if let Ok(m) = decoder.decode(input.clone()) {
        return Ok(m);
    }
    let mut track = serde_path_to_error::Track::new();
    let tracked = serde_path_to_error::Deserializer::new(input, &mut track);
    match decoder.decode(tracked) {
        Ok(m) => Ok(m),
        Err(CodecError::UnknownType(n)) => Err(InputError {
            field: String::new(),
            reason: format!("unknown message type `{n}`"),
        }),
        Err(e) => {
            let path = track.path().to_string();
            let field = if path == "." { String::new() } else { path };
            let reason = match e {
                CodecError::Malformed { reason, .. } => reason,
                other => other.to_string(),
            };
            // serde reports a missing field at the level above it: name it as the field.
            let field = match (field.is_empty(), missing_field(&reason)) {
                (true, Some(f)) => f,
                _ => field,
            };
            Err(InputError { field, reason })
        }
    }
}

fn missing_field(reason: &str) -> Option<String> {
    let rest = reason.split("missing field `").nth(1)?;
    Some(rest.split('`').next()?.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde::{Deserialize, Serialize};

    /// A query string split into fields (the tests' values need no percent-decoding).
    fn query(q: &str) -> Fields<'_> {
        Fields::from_pairs(q.split('&').map(|pair| {
            let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
            (Cow::Borrowed(k), Cow::Borrowed(v))
        }))
    }

    #[derive(Debug, PartialEq, Serialize, Deserialize)]
    struct Probe {
        x: usize,
        name: String,
        ratio: Option<f64>,
        rows: Vec<u8>,
        on: bool,
    }

    impl crate::Message for Probe {
        fn type_name() -> &'static str {
            "test.FieldsProbe"
        }
    }

    #[test]
    fn text_becomes_what_the_field_asks_for() {
        crate::message::register::<Probe>();
        let m = decode_named("test.FieldsProbe", query("x=2&name=123&rows=[1,2]&on=true")).unwrap();
        assert_eq!(
            m.downcast::<Probe>().unwrap(),
            Probe {
                x: 2,
                name: "123".into(),
                ratio: None,
                rows: vec![1, 2],
                on: true
            }
        );
    }

    #[test]
    fn a_type_known_at_compile_time_decodes_the_same_way() {
        let m = decode_as::<Probe, _>(query("x=2&name=123&rows=[1,2]&on=true")).unwrap();
        assert_eq!(m.downcast::<Probe>().unwrap().name, "123");
        let e = decode_as::<Probe, _>(query("x=1&rows=[]&on=1")).unwrap_err();
        assert_eq!(e.field, "name", "{e:?}");
        let body = serde_json::json!({"x": 1, "name": "n", "rows": [300], "on": true});
        let e = decode_as::<Probe, _>(&body).unwrap_err();
        assert!(e.field.starts_with("rows"), "{e:?}");
    }

    #[test]
    fn floats_must_be_finite() {
        for bad in ["NaN", "nan", "inf", "-inf", "infinity", "1e400", "-1e400"] {
            let q = format!("x=1&name=n&ratio={bad}&rows=[]&on=1");
            let e = decode_as::<Probe, _>(query(&q)).unwrap_err();
            assert_eq!(e.field, "ratio", "{bad}: {e:?}");
            assert!(e.reason.contains("finite"), "{bad}: {e:?}");
        }
        let m = decode_as::<Probe, _>(query("x=1&name=n&ratio=1e300&rows=[]&on=1")).unwrap();
        assert_eq!(m.downcast::<Probe>().unwrap().ratio, Some(1e300));
        #[derive(Debug, Serialize, Deserialize)]
        struct Narrow {
            f: f32,
        }
        impl crate::Message for Narrow {
            fn type_name() -> &'static str {
                "test.FieldsNarrow"
            }
        }
        assert_eq!(
            decode_as::<Narrow, _>(query("f=1e39")).unwrap_err().field,
            "f"
        );
        // Untyped, such text stays text.
        #[derive(Debug, Serialize, Deserialize)]
        struct Loose {
            v: serde_json::Value,
        }
        impl crate::Message for Loose {
            fn type_name() -> &'static str {
                "test.FieldsLoose"
            }
        }
        let m = decode_as::<Loose, _>(query("v=NaN")).unwrap();
        assert_eq!(m.downcast::<Loose>().unwrap().v, serde_json::json!("NaN"));
    }

    #[test]
    fn errors_name_the_field() {
        crate::message::register::<Probe>();
        let e = decode_named("test.FieldsProbe", query("x=abc&name=n&rows=[]&on=1")).unwrap_err();
        assert_eq!(e.field, "x");
        let e = decode_named("test.FieldsProbe", query("x=1&rows=[]&on=1")).unwrap_err();
        assert_eq!(e.field, "name", "{e:?}");
        let e = decode_named("test.FieldsProbe", query("x=1&name=n&rows=[300]&on=1")).unwrap_err();
        assert!(e.field.starts_with("rows"), "{e:?}");
    }
}
