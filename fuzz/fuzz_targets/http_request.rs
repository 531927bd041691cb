//! Fuzzes the HTTP front's mapping of a request into a message (`Api::map_request`, the
//! code the server runs between reading a request and sending its message): any method,
//! path, query string and body must map to a message or to a named refusal, never panic.
//!
//! Checked on every accepted request:
//! - the message is of the type the route for that method and path names;
//! - it maps again to the same value when its JSON is sent back as a body (POST for the
//!   RPC routes, PUT with the value's own path parameters for the REST route), so what
//!   a query string or path gives is what a body gives.
//!
//! Input: one byte picks the method; then the path, the query string and the body,
//! separated by newlines.

#![no_main]

use libfuzzer_sys::fuzz_target;
use strata::http::{Api, Method, Unmapped};
use strata::prelude::*;

/// RPC style, plain numbers (`GET /Xy?x=2&y=3`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Message)]
struct Xy {
    x: usize,
    y: usize,
}

/// RPC style, no fields (`GET /Ping`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Message)]
struct Ping;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
enum Shape {
    Square,
    Circle { radius: f64 },
    Named(String),
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
struct Corner {
    a: i32,
    b: i8,
}

/// RPC style, every kind of field the mapping treats differently.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Message)]
struct Order {
    id: u64,
    label: String,
    ratio: Option<f64>,
    tags: Vec<String>,
    on: bool,
    shape: Shape,
    corner: Corner,
    mark: char,
    small: f32,
    loose: Option<serde_json::Value>,
}

/// REST style: the path parameters `user` and `id` fill fields.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Message)]
struct Item {
    user: String,
    id: u32,
    note: Option<String>,
    count: i64,
}

fn api() -> Api {
    Api::new()
        .message::<Xy>()
        .message::<Ping>()
        .message::<Order>()
        .route::<Item>(Method::GET, "/users/{user}/items/{id}")
        .route::<Item>(Method::PUT, "/users/{user}/items/{id}")
        .route::<Xy>(Method::DELETE, "/xy/{x}/{y}")
}

const METHODS: [Method; 7] = [
    Method::GET,
    Method::POST,
    Method::PUT,
    Method::PATCH,
    Method::DELETE,
    Method::HEAD,
    Method::OPTIONS,
];

/// The type the route table above gives `method` on `path`, worked out apart from the
/// library's matching: `None` when no route takes it.
fn expected(method: &Method, path: &str) -> Option<&'static str> {
    let segments: Vec<&str> = path.split('/').filter(|s| !s.is_empty()).collect();
    match segments.as_slice() {
        [one] if *method == Method::GET || *method == Method::POST => match *one {
            "Xy" => Some("Xy"),
            "Ping" => Some("Ping"),
            "Order" => Some("Order"),
            _ => None,
        },
        ["users", _, "items", _] if *method == Method::GET || *method == Method::PUT => {
            Some("Item")
        }
        ["xy", _, _] if *method == Method::DELETE => Some("Xy"),
        _ => None,
    }
}

/// Maps `value`'s JSON back through the API as a body and expects the same value.
fn body_again<T: Message + PartialEq + std::fmt::Debug>(
    api: &Api,
    method: Method,
    path: &str,
    value: &T,
) {
    let json = serde_json::to_vec(value).expect("an accepted message encodes as JSON");
    let again = api
        .map_request(&method, path, "", &json)
        .unwrap_or_else(|e| {
            panic!(
                "{value:?} was accepted, but its JSON {} sent to {method} {path} is refused: {e:?}",
                String::from_utf8_lossy(&json)
            )
        });
    let again = again
        .downcast::<T>()
        .expect("the same route, the same type");
    assert_eq!(
        &again, value,
        "{method} {path} with the JSON of an accepted message"
    );
}

/// A path segment for `text`, percent-encoded so that it comes back as `text`.
fn segment(text: &str) -> String {
    let mut out = String::new();
    for b in text.bytes() {
        if b.is_ascii_alphanumeric() || b"-._~".contains(&b) {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

fuzz_target!(|data: &[u8]| {
    let Some((&pick, rest)) = data.split_first() else {
        return;
    };
    let method = METHODS[usize::from(pick) % METHODS.len()].clone();
    let mut parts = rest.splitn(3, |&b| b == b'\n');
    let path = String::from_utf8_lossy(parts.next().unwrap_or_default()).into_owned();
    let query = String::from_utf8_lossy(parts.next().unwrap_or_default()).into_owned();
    let body = parts.next().unwrap_or_default();

    let api = api();
    let mapped = api.map_request(&method, &path, &query, body);
    let want = expected(&method, &path);
    let message = match mapped {
        Ok(m) => m,
        Err(Unmapped::BadInput { message, .. }) => {
            assert_eq!(Some(message), want, "refused as the wrong route");
            return;
        }
        Err(Unmapped::NoPath) | Err(Unmapped::WrongMethod(_)) => {
            assert_eq!(want, None, "{method} {path:?} found no route");
            return;
        }
    };
    assert_eq!(
        Some(message.type_name()),
        want,
        "{method} {path:?} gave the wrong type"
    );
    if let Some(xy) = message.downcast_ref::<Xy>() {
        body_again(&api, Method::POST, "/Xy", xy);
    } else if let Some(ping) = message.downcast_ref::<Ping>() {
        body_again(&api, Method::POST, "/Ping", ping);
    } else if let Some(order) = message.downcast_ref::<Order>() {
        body_again(&api, Method::POST, "/Order", order);
    } else if let Some(item) = message.downcast_ref::<Item>() {
        let path = format!("/users/{}/items/{}", segment(&item.user), item.id);
        body_again(&api, Method::PUT, &path, item);
    } else {
        panic!("a message of no route's type: {}", message.type_name());
    }
});
