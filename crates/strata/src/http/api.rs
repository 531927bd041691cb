//! The API of an HTTP server: which paths and methods become which messages.
//!
//! * RPC style: [`Api::message`] maps `GET /Name?field=value` and `POST /Name` with a JSON
//!   body to the message type whose portable name is `Name`.
//! * REST style: [`Api::route`] maps a method and a path pattern with `{parameters}` to a
//!   message type; path parameters fill fields of the same name, beside the query string
//!   (GET, DELETE) or the JSON body (POST, PUT, PATCH).

use hyper::Method;

use crate::message::fields::{decode_as, Fields, InputError, WithParams};
use crate::message::{register, AnyMessage, Message};

#[derive(Debug, Clone)]
enum Segment {
    Literal(String),
    Param(String),
}

/// One route: methods and a path pattern leading to a message type.
#[derive(Debug, Clone)]
pub(crate) struct Route {
    pub(crate) message: &'static str,
    methods: Vec<Method>,
    segments: Vec<Segment>,
    register: fn(),
    /// Decodes the message from a query string and path parameters.
    pub(crate) from_fields: fn(Fields<'_>) -> Result<AnyMessage, InputError>,
    /// Decodes the message from a JSON body.
    pub(crate) from_json: fn(&serde_json::Value) -> Result<AnyMessage, InputError>,
    /// Decodes the message from a JSON body's fields and the path parameters.
    from_body_and_params: fn(WithParams<'_>) -> Result<AnyMessage, InputError>,
}

// Each route's decoders are these, made for its message type: the type is known when the
// route is added, so requests skip the registry and decode straight into it.
fn fields_decoder<T: Message>(fields: Fields<'_>) -> Result<AnyMessage, InputError> {
    decode_as::<T, _>(fields)
}

fn json_decoder<T: Message>(value: &serde_json::Value) -> Result<AnyMessage, InputError> {
    decode_as::<T, _>(value)
}

fn body_and_params_decoder<T: Message>(fields: WithParams<'_>) -> Result<AnyMessage, InputError> {
    decode_as::<T, _>(fields)
}

impl Route {
    /// Decodes the route's message from a request's path parameters and either its query
    /// string (GET, DELETE, ...) or, for methods with a body (POST, PUT, PATCH), the body
    /// as JSON (blank counts as `{}`; path parameters are merged into a JSON object).
    pub(crate) fn decode(
        &self,
        method: &Method,
        params: &[(String, String)],
        query: &str,
        body: &[u8],
    ) -> Result<AnyMessage, InputError> {
        if !has_body(method) {
            let mut fields = Fields::from_pairs(form_urlencoded::parse(query.as_bytes()));
            for (k, v) in params {
                fields.push(k, v.clone());
            }
            return (self.from_fields)(fields);
        }
        let source: &[u8] = if body.iter().all(u8::is_ascii_whitespace) {
            b"{}"
        } else {
            body
        };
        let value: serde_json::Value = serde_json::from_slice(source).map_err(|e| InputError {
            field: String::new(),
            reason: format!("the body is not JSON: {e}"),
        })?;
        match &value {
            serde_json::Value::Object(body) if !params.is_empty() => {
                (self.from_body_and_params)(WithParams::new(body, params))
            }
            _ => (self.from_json)(&value),
        }
    }
}

/// True for the methods whose request carries the message in a JSON body.
pub(crate) fn has_body(method: &Method) -> bool {
    matches!(*method, Method::POST | Method::PUT | Method::PATCH)
}

/// Why a request maps to no message; the server answers these 404, 405 and 400.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Unmapped {
    /// No route has this path.
    NoPath,
    /// Routes have this path but not this method; the methods they take.
    WrongMethod(Vec<&'static str>),
    /// The query string, path parameters or body do not decode as the route's message.
    BadInput {
        /// The portable name of the route's message type.
        message: &'static str,
        /// The dotted path of the offending field, empty when it is not one field.
        field: String,
        /// What was wrong.
        reason: String,
    },
}

/// What a request's method and path lead to.
pub(crate) enum Found<'a> {
    Route(&'a Route, Vec<(String, String)>),
    NoPath,
    WrongMethod(Vec<&'static str>),
}

/// The paths and methods an [`HttpServer`](super::HttpServer) answers.
#[derive(Debug, Clone, Default)]
pub struct Api {
    routes: Vec<Route>,
}

fn segments(path: &str) -> impl Iterator<Item = &str> {
    path.split('/').filter(|s| !s.is_empty())
}

fn method_name(m: &Method) -> &'static str {
    match *m {
        Method::GET => "GET",
        Method::POST => "POST",
        Method::PUT => "PUT",
        Method::PATCH => "PATCH",
        Method::DELETE => "DELETE",
        Method::HEAD => "HEAD",
        Method::OPTIONS => "OPTIONS",
        _ => "OTHER",
    }
}

impl Api {
    /// An API with no routes yet.
    pub fn new() -> Self {
        Self::default()
    }

    /// Answers `GET /Name?...` and `POST /Name` (JSON body) with a `T`, where `Name` is
    /// `T`'s portable type name.
    pub fn message<T: Message>(self) -> Self {
        let path = format!("/{}", T::type_name());
        self.add::<T>(vec![Method::GET, Method::POST], &path)
    }

    /// Answers `method` on the path `pattern` with a `T`. Segments written `{name}` are
    /// parameters that fill `T`'s field `name`.
    ///
    /// # Panics
    /// When the pattern is not a path (`/users/{id}`): it is code, not input.
    pub fn route<T: Message>(self, method: Method, pattern: &str) -> Self {
        self.add::<T>(vec![method], pattern)
    }

    fn add<T: Message>(mut self, methods: Vec<Method>, pattern: &str) -> Self {
        assert!(
            pattern.starts_with('/'),
            "a route pattern starts with `/`: {pattern:?}"
        );
        let segments = segments(pattern)
            .map(
                |s| match s.strip_prefix('{').and_then(|s| s.strip_suffix('}')) {
                    Some(name) => {
                        assert!(!name.is_empty(), "empty parameter name in {pattern:?}");
                        Segment::Param(name.to_string())
                    }
                    None => Segment::Literal(s.to_string()),
                },
            )
            .collect();
        self.routes.push(Route {
            message: T::type_name(),
            methods,
            segments,
            register: register::<T>,
            from_fields: fields_decoder::<T>,
            from_json: json_decoder::<T>,
            from_body_and_params: body_and_params_decoder::<T>,
        });
        self
    }

    /// The message a request asks for, as the server decodes it before sending it to
    /// the service: the route by `method` and `path`, then the fields from `query` (the
    /// raw query string, without `?`) or, for POST, PUT and PATCH, from `body` as JSON.
    /// Needs no server or runtime, so an API can be checked on its own.
    pub fn map_request(
        &self,
        method: &Method,
        path: &str,
        query: &str,
        body: &[u8],
    ) -> Result<AnyMessage, Unmapped> {
        match self.find(method, path) {
            Found::NoPath => Err(Unmapped::NoPath),
            Found::WrongMethod(allowed) => Err(Unmapped::WrongMethod(allowed)),
            Found::Route(route, params) => {
                route
                    .decode(method, &params, query, body)
                    .map_err(|e| Unmapped::BadInput {
                        message: route.message,
                        field: e.field,
                        reason: e.reason,
                    })
            }
        }
    }

    pub(crate) fn register_types(&self) {
        for r in &self.routes {
            (r.register)();
        }
    }

    /// Finds the route for a request: literal segments must match, parameters take any
    /// one segment (percent-decoded).
    pub(crate) fn find(&self, method: &Method, path: &str) -> Found<'_> {
        let count = segments(path).count();
        let mut allowed = Vec::new();
        for route in &self.routes {
            if route.segments.len() != count {
                continue;
            }
            let mut params = Vec::new();
            let matched = route
                .segments
                .iter()
                .zip(segments(path))
                .all(|(seg, part)| match seg {
                    Segment::Literal(l) => l == part,
                    Segment::Param(name) => {
                        let value = percent_decode(part);
                        params.push((name.clone(), value));
                        true
                    }
                });
            if !matched {
                continue;
            }
            if route.methods.contains(method) {
                return Found::Route(route, params);
            }
            allowed.extend(route.methods.iter().map(method_name));
        }
        if allowed.is_empty() {
            Found::NoPath
        } else {
            allowed.dedup();
            Found::WrongMethod(allowed)
        }
    }
}

/// Decodes a path segment's `%XX` escapes (`+` stays `+`, as paths have it; `&` and `=`
/// are plain characters there); bytes that are not UTF-8 become U+FFFD.
fn percent_decode(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let hex = |b: Option<&u8>| b.and_then(|&b| (b as char).to_digit(16));
        match (bytes[i], hex(bytes.get(i + 1)), hex(bytes.get(i + 2))) {
            (b'%', Some(high), Some(low)) => {
                out.push((high * 16 + low) as u8);
                i += 3;
            }
            (b, _, _) => {
                out.push(b);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde::{Deserialize, Serialize};

    #[derive(Debug, PartialEq, Serialize, Deserialize)]
    struct Member {
        team: String,
        id: u32,
        note: Option<String>,
    }

    impl Message for Member {
        fn type_name() -> &'static str {
            "test.ApiMember"
        }
    }

    fn member(api: &Api, method: Method, path: &str, body: &str) -> Member {
        api.map_request(&method, path, "", body.as_bytes())
            .unwrap_or_else(|e| panic!("{method} {path}: {e:?}"))
            .downcast::<Member>()
            .expect("the route's type")
    }

    #[test]
    fn path_parameters_are_percent_decoded_and_only_that() {
        // Found by the `http_request` fuzz target: `&` in a segment cut the value short.
        let api = Api::new().route::<Member>(Method::GET, "/teams/{team}/{id}");
        for (segment, team) in [
            ("a&b", "a&b"),
            ("a%26b", "a&b"),
            ("x=y", "x=y"),
            ("1+1", "1+1"),
            ("caf%C3%A9", "café"),
            ("100%", "100%"),
            ("%zz", "%zz"),
            ("%2F", "/"),
        ] {
            let m = member(&api, Method::GET, &format!("/teams/{segment}/7"), "");
            assert_eq!(m.team, team, "{segment}");
        }
    }

    #[test]
    fn path_parameters_beside_a_body_fill_fields_by_their_type() {
        // Found by the `http_request` fuzz target: `/teams/123` gave a `String` field the
        // number 123 (refused) when the route takes a body.
        let api = Api::new().route::<Member>(Method::PUT, "/teams/{team}/{id}");
        let m = member(&api, Method::PUT, "/teams/123/7", r#"{"note": "n"}"#);
        assert_eq!(
            m,
            Member {
                team: "123".into(),
                id: 7,
                note: Some("n".into())
            }
        );
        // A parameter replaces a body field of the same name; a blank body is `{}`.
        let m = member(
            &api,
            Method::PUT,
            "/teams/true/8",
            r#"{"team": "t", "id": 1}"#,
        );
        assert_eq!((m.team.as_str(), m.id), ("true", 8));
        assert_eq!(member(&api, Method::PUT, "/teams/null/9", " ").team, "null");
        let e = api
            .map_request(&Method::PUT, "/teams/a/x", "", b"{}")
            .unwrap_err();
        assert!(
            matches!(&e, Unmapped::BadInput { field, .. } if field == "id"),
            "{e:?}"
        );
    }
}
