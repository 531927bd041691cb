//! Property tests of the codecs: random values of constructed and derived types survive
//! the binary and JSON codecs with their type names, and random or damaged input never
//! makes the decoder panic.

use std::collections::{BTreeMap, HashMap};

use proptest::prelude::*;
use strata::message::codec::{self, CodecError};
use strata::prelude::*;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Message)]
struct Customer {
    name: String,
    age: u8,
    balance: i64,
    tags: Vec<String>,
    manager: Option<Box<Customer>>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Message)]
#[message(name = "props.Shape")]
enum Shape {
    Point,
    Circle { r: f64 },
    Poly(Vec<(i32, i32)>),
    Named(String, u16),
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Message)]
struct Pair<T> {
    left: T,
    right: T,
}

fn finite() -> impl Strategy<Value = f64> {
    any::<f64>().prop_filter("finite", |f| f.is_finite())
}

fn customer() -> impl Strategy<Value = Customer> {
    let leaf = (
        ".{0,12}",
        any::<u8>(),
        any::<i64>(),
        prop::collection::vec(".{0,6}", 0..4),
    )
        .prop_map(|(name, age, balance, tags)| Customer {
            name,
            age,
            balance,
            tags,
            manager: None,
        });
    leaf.prop_recursive(3, 8, 1, |inner| {
        (inner, ".{0,12}", any::<u8>()).prop_map(|(manager, name, age)| Customer {
            name,
            age,
            balance: -1,
            tags: vec![],
            manager: Some(Box::new(manager)),
        })
    })
}

fn shape() -> impl Strategy<Value = Shape> {
    prop_oneof![
        Just(Shape::Point),
        finite().prop_map(|r| Shape::Circle { r }),
        prop::collection::vec((any::<i32>(), any::<i32>()), 0..6).prop_map(Shape::Poly),
        (".{0,8}", any::<u16>()).prop_map(|(s, n)| Shape::Named(s, n)),
    ]
}

/// A tree of messages: leaves of several types, and lists of messages (`vec<any>`).
#[derive(Debug, Clone, PartialEq)]
enum Tree {
    Int(i32),
    Text(String),
    Float(f64),
    Shape(Shape),
    Fault(String),
    List(Vec<Tree>),
}

fn tree() -> impl Strategy<Value = Tree> {
    let leaf = prop_oneof![
        any::<i32>().prop_map(Tree::Int),
        ".{0,8}".prop_map(Tree::Text),
        finite().prop_map(Tree::Float),
        shape().prop_map(Tree::Shape),
        ".{0,8}".prop_map(Tree::Fault),
    ];
    leaf.prop_recursive(4, 24, 4, |inner| {
        prop::collection::vec(inner, 0..4).prop_map(Tree::List)
    })
}

fn to_any(t: &Tree) -> AnyMessage {
    match t {
        Tree::Int(i) => AnyMessage::new(*i),
        Tree::Text(s) => AnyMessage::new(s.clone()),
        Tree::Float(f) => AnyMessage::new(*f),
        Tree::Shape(s) => AnyMessage::new(s.clone()),
        Tree::Fault(r) => AnyMessage::new(Faulted::new(r.clone())),
        Tree::List(items) => AnyMessage::new(items.iter().map(to_any).collect::<Vec<_>>()),
    }
}

fn from_any(m: AnyMessage) -> Tree {
    let m = match m.downcast::<i32>() {
        Ok(i) => return Tree::Int(i),
        Err(m) => m,
    };
    let m = match m.downcast::<String>() {
        Ok(s) => return Tree::Text(s),
        Err(m) => m,
    };
    let m = match m.downcast::<f64>() {
        Ok(f) => return Tree::Float(f),
        Err(m) => m,
    };
    let m = match m.downcast::<Shape>() {
        Ok(s) => return Tree::Shape(s),
        Err(m) => m,
    };
    let m = match m.downcast::<Faulted>() {
        Ok(f) => return Tree::Fault(f.reason),
        Err(m) => m,
    };
    match m.downcast::<Vec<AnyMessage>>() {
        Ok(items) => Tree::List(items.into_iter().map(from_any).collect()),
        Err(m) => panic!("unexpected {m:?}"),
    }
}

/// Binary and JSON round trips of one value: equal value, same type name.
fn round_trips<T: Message + Clone + PartialEq>(value: &T) -> Result<(), TestCaseError> {
    let any = AnyMessage::new(value.clone());
    let bytes = codec::to_binary(&any).map_err(|e| TestCaseError::fail(e.to_string()))?;
    let back = codec::from_binary(&bytes).map_err(|e| TestCaseError::fail(e.to_string()))?;
    prop_assert_eq!(back.type_name(), T::type_name());
    prop_assert_eq!(back.downcast_ref::<T>(), Some(value));
    prop_assert_eq!(
        codec::decode::<T>(&codec::encode(value).unwrap()).ok(),
        Some(value.clone())
    );

    let json = codec::to_json(&any).map_err(|e| TestCaseError::fail(e.to_string()))?;
    prop_assert_eq!(json["type"].as_str(), Some(T::type_name()));
    let back = codec::from_json(&json).map_err(|e| TestCaseError::fail(e.to_string()))?;
    prop_assert_eq!(back.type_name(), T::type_name());
    prop_assert_eq!(back.downcast_ref::<T>(), Some(value));
    // The plain form decodes by name to the same value.
    let plain = codec::to_json_plain(&any).map_err(|e| TestCaseError::fail(e.to_string()))?;
    let back = codec::from_json_named(T::type_name(), &plain)
        .map_err(|e| TestCaseError::fail(e.to_string()))?;
    prop_assert_eq!(back.downcast_ref::<T>(), Some(value));
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(128))]

    #[test]
    fn tables_of_finite_floats(v in prop::collection::vec(prop::collection::vec(finite(), 0..6), 0..6)) {
        prop_assert_eq!(<Vec<Vec<f64>>>::type_name(), "vec<vec<f64>>");
        round_trips(&v)?;
    }

    #[test]
    fn maps_of_strings_to_integers(m in prop::collection::hash_map(".{0,10}", any::<i32>(), 0..8)) {
        prop_assert_eq!(<HashMap<String, i32>>::type_name(), "map<string,i32>");
        round_trips(&m)?;
    }

    #[test]
    fn sorted_maps_options_and_tuples(
        m in prop::collection::btree_map(any::<u16>(), prop::option::of(".{0,5}"), 0..6),
        o in prop::option::of((any::<i32>(), ".{0,5}")),
        t in (any::<u8>(), any::<bool>(), any::<char>(), any::<i64>(), any::<u64>().prop_map(u128::from)),
        a in prop::array::uniform4(finite()),
    ) {
        round_trips(&m)?;
        round_trips(&o)?;
        round_trips(&t)?;
        round_trips(&a)?;
        prop_assert_eq!(<BTreeMap<u16, Option<String>>>::type_name(), "sorted_map<u16,option<string>>");
        prop_assert_eq!(<Option<(i32, String)>>::type_name(), "option<tuple<i32,string>>");
        prop_assert_eq!(<[f64; 4]>::type_name(), "array<f64,4>");
    }

    #[test]
    fn derived_structs_and_enums(c in customer(), s in shape(), p in (any::<i32>(), any::<i32>())) {
        round_trips(&c)?;
        round_trips(&s)?;
        let pair = Pair { left: p.0, right: p.1 };
        prop_assert_eq!(<Pair<i32>>::type_name(), "Pair<i32>");
        round_trips(&pair)?;
        let customers = vec![c.clone(), c];
        round_trips(&customers)?;
        prop_assert_eq!(<Vec<Customer>>::type_name(), "vec<Customer>");
        prop_assert_eq!(<Shape as Message>::type_name(), "props.Shape");
    }

    #[test]
    fn nested_message_lists(t in tree()) {
        let any = to_any(&t);
        let name = any.type_name();
        let bytes = codec::to_binary(&any).map_err(|e| TestCaseError::fail(e.to_string()))?;
        let back = codec::from_binary(&bytes).map_err(|e| TestCaseError::fail(e.to_string()))?;
        prop_assert_eq!(back.type_name(), name);
        prop_assert_eq!(from_any(back), t.clone());

        let json = codec::to_json(&any).map_err(|e| TestCaseError::fail(e.to_string()))?;
        let back = codec::from_json(&json).map_err(|e| TestCaseError::fail(e.to_string()))?;
        prop_assert_eq!(back.type_name(), name);
        prop_assert_eq!(from_any(back), t.clone());

        // Inside a Returned, as values travel between processes.
        let returned = AnyMessage::new(Returned { value: to_any(&t) });
        let bytes = codec::to_binary(&returned).map_err(|e| TestCaseError::fail(e.to_string()))?;
        let back = codec::from_binary(&bytes)
            .map_err(|e| TestCaseError::fail(e.to_string()))?
            .downcast::<Returned>()
            .map_err(|m| TestCaseError::fail(format!("{m:?}")))?;
        prop_assert_eq!(from_any(back.value), t);
    }

    #[test]
    fn random_bytes_never_panic(bytes in prop::collection::vec(any::<u8>(), 0..64)) {
        // An error or a value: both fine; a panic fails the test.
        let _ = codec::from_binary(&bytes);
    }

    #[test]
    fn damaged_messages_never_panic(
        t in tree(),
        c in customer(),
        edits in prop::collection::vec((any::<prop::sample::Index>(), any::<u8>(), 0u8..4), 1..6),
    ) {
        for message in [to_any(&t), AnyMessage::new(c), AnyMessage::new(Returned { value: to_any(&t) })] {
            let mut bytes = codec::to_binary(&message).unwrap();
            for (at, byte, how) in &edits {
                if bytes.is_empty() {
                    break;
                }
                let i = at.index(bytes.len());
                match how {
                    0 => bytes[i] = *byte,
                    1 => bytes.truncate(i),
                    2 => bytes.insert(i, *byte),
                    _ => {
                        bytes.remove(i);
                    }
                }
            }
            // An error or a value: both fine; a panic fails the test.
            if let Ok(m) = codec::from_binary(&bytes) {
                // Whatever decoded encodes again.
                prop_assert!(codec::to_binary(&m).is_ok());
            }
        }
    }

    #[test]
    fn a_name_with_garbage_after_it_is_an_error(
        name in prop::sample::select(vec!["vec<vec<f64>>", "map<string,i32>", "Customer", "props.Shape", "vec<any>", "Returned"]),
        tail in prop::collection::vec(any::<u8>(), 0..32),
    ) {
        // Make sure every name is registered (constructed types are registered on first use).
        let _ = codec::to_binary(&AnyMessage::new(Vec::<Vec<f64>>::new()));
        let _ = codec::to_binary(&AnyMessage::new(HashMap::<String, i32>::new()));
        let _ = codec::to_binary(&AnyMessage::new(Vec::<AnyMessage>::new()));
        let mut bytes = postcard::to_stdvec(&name).unwrap();
        bytes.extend_from_slice(&tail);
        match codec::from_binary(&bytes) {
            Ok(m) => prop_assert_eq!(m.type_name(), name),
            Err(CodecError::Malformed { name: n, .. }) => prop_assert_eq!(n, name),
            Err(other) => prop_assert!(false, "unexpected error {}", other),
        }
    }
}

#[test]
fn big_integers_travel_in_binary_and_are_refused_clearly_by_json() {
    let big = AnyMessage::new(u128::MAX - 1);
    let back = codec::from_binary(&codec::to_binary(&big).unwrap()).unwrap();
    assert_eq!(back.downcast_ref::<u128>(), Some(&(u128::MAX - 1)));
    // JSON numbers here stop at 64 bits: a clear encode error naming the type.
    match codec::to_json(&big) {
        Err(CodecError::Encode { name, .. }) => assert_eq!(name, "u128"),
        other => panic!("expected an encode error, got {other:?}"),
    }
}

/// `depth` messages nested in one another: `vec<any>` holding one `vec<any>` ...
fn nested_lists(depth: usize) -> Vec<u8> {
    let mut bytes = Vec::new();
    for _ in 0..depth {
        bytes.push(8);
        bytes.extend_from_slice(b"vec<any>");
        bytes.push(1);
    }
    bytes.push(8);
    bytes.extend_from_slice(b"vec<any>");
    bytes.push(0);
    bytes
}

#[test]
fn moderately_nested_messages_decode() {
    let _ = codec::to_binary(&AnyMessage::new(Vec::<AnyMessage>::new()));
    let m = codec::from_binary(&nested_lists(8)).expect("eight levels decode");
    assert_eq!(m.type_name(), "vec<any>");
}

#[test]
fn deeply_nested_messages_are_an_error_not_a_crash() {
    let _ = codec::to_binary(&AnyMessage::new(Vec::<AnyMessage>::new()));
    let bytes = nested_lists(1000);
    assert!(bytes.len() < 11_000);
    let outcome = std::thread::spawn(move || codec::from_binary(&bytes).map(|m| m.type_name()))
        .join()
        .expect("no panic");
    assert!(outcome.is_err(), "{outcome:?}");
}

#[test]
fn floats_survive_json_text() {
    let values: Vec<f64> = vec![0.1, 1e-300, 2.2250738585072014e-308, 1.7976931348623157e308]
        .into_iter()
        .chain((1..2000u64).map(|i| f64::from_bits(i.wrapping_mul(0x9E37_79B9_7F4A_7C15) >> 2)))
        .filter(|f| f.is_finite())
        .collect();
    let json = codec::to_json(&AnyMessage::new(values.clone())).unwrap();
    let text = serde_json::to_string(&json).unwrap();
    let parsed: serde_json::Value = serde_json::from_str(&text).unwrap();
    let back = codec::from_json(&parsed)
        .unwrap()
        .downcast::<Vec<f64>>()
        .unwrap();
    assert_eq!(back.len(), values.len(), "every float came back");
    let changed = values.iter().zip(&back).filter(|(a, b)| a != b).count();
    assert_eq!(changed, 0, "{changed} of {} floats changed", values.len());
}

#[test]
fn a_nan_becomes_null_in_json_as_documented() {
    // JSON has no NaN: serde_json writes null, and the binary codec keeps the value.
    let out = codec::to_json(&AnyMessage::new(f64::NAN)).unwrap();
    assert_eq!(out["value"], serde_json::Value::Null);
    let back = codec::decode::<f64>(&codec::encode(&f64::NAN).unwrap()).unwrap();
    assert!(back.is_nan());
}
