//! What each request of a run looks like beyond its URL: the method, extra headers and
//! body ([`Body`], a JSON body being a template like the URL), or a list of whole requests
//! read from a request file ([`ScriptedRequest`], drawn in order or at random); and the
//! checks of a response's body besides the plan's [`Validation`](super::Validation)
//! ([`Expect`]).
//!
//! A [`LoadPlan`](super::LoadPlan) carries these as plain data (they travel to child
//! processes); checking the plan compiles them into [`Shape`]s: the header lines rendered
//! once into bytes, templates split into parts. The connection then writes a request with
//! one copy of each piece, so a plain `GET` costs what it did before shapes existed.

use std::fmt::Write as _;

use serde::{Deserialize, Serialize};

use super::plan::Part;
use crate::random::Rng;

/// A request's body.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub enum Body {
    /// No body.
    #[default]
    None,
    /// These bytes, sent as they are (`--body`, `--body-file`).
    Bytes(Vec<u8>),
    /// A JSON template: `{1..100}` (a number in the range) and `{a,b,c}` (one of the words)
    /// are drawn for each request, like the URL's; sent as `application/json` unless the
    /// headers name another type. Braces of JSON objects are left alone: a placeholder
    /// holds no quote, colon or space.
    Json(String),
}

/// In which order the requests of a request file are made.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub enum Order {
    /// One after the other, starting again after the last (shared by the clients of a
    /// process: each line is made once per round).
    #[default]
    InOrder,
    /// Each request drawn at random.
    Random,
}

/// One request of a request file: one line of JSON,
/// `{"method": "POST", "path": "/items?id=1", "headers": {"X-A": "1"}, "body": ...}`.
///
/// Only `path` is required (`method` defaults to `GET`). A string `body` is sent as it is;
/// any other JSON value is sent encoded, as `application/json` unless the headers name
/// another type.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ScriptedRequest {
    /// The method.
    pub method: String,
    /// The path and query (sent to the URL's host).
    pub path: String,
    /// Extra headers, in order.
    pub headers: Vec<(String, String)>,
    /// The body, if any.
    pub body: Option<Vec<u8>>,
}

impl ScriptedRequest {
    /// Parses a request file: one JSON object a line (blank lines and lines starting with
    /// `#` are skipped). The error names the line and what is wrong with it.
    pub fn parse_lines(text: &str) -> Result<Vec<ScriptedRequest>, String> {
        let mut out = Vec::new();
        for (i, line) in text.lines().enumerate() {
            let line = line.trim();
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            out.push(Self::parse_line(line).map_err(|e| format!("line {}: {e}", i + 1))?);
        }
        if out.is_empty() {
            return Err("it holds no request".into());
        }
        Ok(out)
    }

    fn parse_line(line: &str) -> Result<ScriptedRequest, String> {
        use serde_json::Value;
        let value: Value = serde_json::from_str(line).map_err(|e| format!("not JSON: {e}"))?;
        let Value::Object(fields) = value else {
            return Err("not a JSON object".into());
        };
        let mut request = ScriptedRequest {
            method: "GET".into(),
            path: String::new(),
            headers: Vec::new(),
            body: None,
        };
        let mut json_body = false;
        for (key, value) in fields {
            match (key.as_str(), value) {
                ("method", Value::String(m)) => request.method = m,
                ("path", Value::String(p)) => request.path = p,
                ("headers", Value::Object(h)) => {
                    for (name, value) in h {
                        match value {
                            Value::String(v) => request.headers.push((name, v)),
                            other => {
                                return Err(format!("header `{name}` is {other}, not a string"))
                            }
                        }
                    }
                }
                ("body", Value::Null) => {}
                ("body", Value::String(b)) => request.body = Some(b.into_bytes()),
                ("body", other) => {
                    json_body = true;
                    request.body = Some(other.to_string().into_bytes());
                }
                (k @ ("method" | "path" | "headers"), other) => {
                    return Err(format!("`{k}` is {other}, which is not of its kind"))
                }
                (other, _) => {
                    return Err(format!(
                        "unknown field `{other}` (method, path, headers, body)"
                    ))
                }
            }
        }
        if request.path.is_empty() {
            return Err("no `path`".into());
        }
        if !request.path.starts_with('/') {
            return Err(format!("the path `{}` does not start with /", request.path));
        }
        if json_body && !has_header(&request.headers, "content-type") {
            request
                .headers
                .push(("Content-Type".into(), "application/json".into()));
        }
        Ok(request)
    }
}

/// A check of a response's body; a failure counts as a `validation` error.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum Expect {
    /// The body contains this text.
    BodyContains(String),
    /// The body is JSON and the value at `pointer` (RFC 6901, like `/items/0/id`) equals
    /// the JSON value `value` (written as JSON text: `3`, `"ok"`, `true`).
    Json {
        /// The JSON pointer.
        pointer: String,
        /// The expected value, as JSON text.
        value: String,
    },
}

impl Expect {
    /// Parses `--expect-json`'s `POINTER=VALUE`: `/status="ok"`, `/count=3`. A value that is
    /// not JSON is taken as a string (`/status=ok`).
    pub fn json(spec: &str) -> Result<Expect, String> {
        let (pointer, value) = spec
            .split_once('=')
            .ok_or_else(|| format!("`{spec}` is not POINTER=VALUE (like /status=\"ok\")"))?;
        if !(pointer.is_empty() || pointer.starts_with('/')) {
            return Err(format!(
                "`{pointer}` is not a JSON pointer: it starts with / (like /items/0/id)"
            ));
        }
        let value = match serde_json::from_str::<serde_json::Value>(value) {
            Ok(_) => value.to_string(),
            Err(_) => serde_json::Value::String(value.to_string()).to_string(),
        };
        Ok(Expect::Json {
            pointer: pointer.to_string(),
            value,
        })
    }

    /// Compiles the check (the expected JSON value parsed once).
    pub(crate) fn compile(&self) -> Result<Compiled, String> {
        Ok(match self {
            Expect::BodyContains(t) if t.is_empty() => {
                return Err("the text to look for is empty".into())
            }
            Expect::BodyContains(t) => Compiled::Contains(t.as_bytes().to_vec()),
            Expect::Json { pointer, value } => Compiled::Json {
                pointer: pointer.clone(),
                value: serde_json::from_str(value)
                    .map_err(|e| format!("`{value}` is not a JSON value: {e}"))?,
            },
        })
    }
}

/// A compiled [`Expect`].
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Compiled {
    Contains(Vec<u8>),
    Json {
        pointer: String,
        value: serde_json::Value,
    },
}

impl Compiled {
    /// `Err(reason)` when the body fails the check.
    pub(crate) fn check(&self, body: &[u8]) -> Result<(), String> {
        match self {
            Compiled::Contains(text) => {
                if text.len() <= body.len() && body.windows(text.len()).any(|w| w == &text[..]) {
                    Ok(())
                } else {
                    Err(format!(
                        "the body does not contain `{}`",
                        String::from_utf8_lossy(text)
                    ))
                }
            }
            Compiled::Json { pointer, value } => {
                let doc: serde_json::Value = serde_json::from_slice(body)
                    .map_err(|e| format!("the body is not JSON ({e})"))?;
                match doc.pointer(pointer) {
                    Some(found) if found == value => Ok(()),
                    Some(found) => Err(format!("{pointer} is {found}, not {value}")),
                    None => Err(format!("the body has nothing at {pointer}")),
                }
            }
        }
    }
}

/// Whether `headers` has one named `name` (any case).
pub(crate) fn has_header(headers: &[(String, String)], name: &str) -> bool {
    headers.iter().any(|(n, _)| n.eq_ignore_ascii_case(name))
}

/// Parses `--header`'s `Name: value`.
pub fn parse_header(line: &str) -> Result<(String, String), String> {
    let (name, value) = line
        .split_once(':')
        .ok_or_else(|| format!("`{line}` is not a header (Name: value)"))?;
    let (name, value) = (name.trim(), value.trim());
    check_header(name, value)?;
    Ok((name.to_string(), value.to_string()))
}

fn is_token(s: &str) -> bool {
    !s.is_empty()
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b))
}

fn check_header(name: &str, value: &str) -> Result<(), String> {
    if !is_token(name) {
        return Err(format!("`{name}` is not a header name"));
    }
    if value.bytes().any(|b| b == b'\r' || b == b'\n' || b == 0) {
        return Err(format!("the value of header `{name}` holds a line break"));
    }
    for fixed in ["content-length", "transfer-encoding"] {
        if name.eq_ignore_ascii_case(fixed) {
            return Err(format!(
                "header `{name}` is set by the client from the body; leave it out"
            ));
        }
    }
    Ok(())
}

/// A request's body, compiled.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum BodyParts {
    None,
    Fixed(Vec<u8>),
    Template(Vec<Part>),
}

/// One kind of request, compiled: what the connection writes besides the path.
#[derive(Debug, Clone, PartialEq)]
pub struct Shape {
    pub(crate) method: String,
    pub(crate) path: Vec<Part>,
    /// The extra header lines, each ending in CR LF.
    pub(crate) head: Vec<u8>,
    pub(crate) body: BodyParts,
}

impl Shape {
    /// Compiles one request shape; `path` is already parsed.
    pub(crate) fn new(
        method: &str,
        path: Vec<Part>,
        headers: &[(String, String)],
        body: &Body,
        keep_alive: bool,
    ) -> Result<Shape, String> {
        if !is_token(method) {
            return Err(format!("`{method}` is not an HTTP method"));
        }
        let mut head = String::new();
        for (name, value) in headers {
            check_header(name, value)?;
            if name.eq_ignore_ascii_case("host") {
                continue; // the target's `Host`, set from it
            }
            let _ = write!(head, "{name}: {value}\r\n");
        }
        let body = match body {
            Body::None => BodyParts::None,
            Body::Bytes(b) => BodyParts::Fixed(b.clone()),
            Body::Json(template) => {
                let parts = parse_json_template(template)?;
                if !has_header(headers, "content-type") {
                    head.push_str("Content-Type: application/json\r\n");
                }
                if parts.iter().all(|p| matches!(p, Part::Text(_))) {
                    let mut fixed = Vec::new();
                    expand(&parts, &mut Rng::new(1), &mut fixed);
                    BodyParts::Fixed(fixed)
                } else {
                    BodyParts::Template(parts)
                }
            }
        };
        if !keep_alive && !has_header(headers, "connection") {
            head.push_str("Connection: close\r\n");
        }
        Ok(Shape {
            method: method.to_string(),
            path,
            head: head.into_bytes(),
            body,
        })
    }

    /// Whether every request of this shape is the same.
    pub(crate) fn is_fixed(&self) -> bool {
        self.path.iter().all(|p| matches!(p, Part::Text(_)))
            && !matches!(self.body, BodyParts::Template(_))
    }

    /// The method.
    pub fn method(&self) -> &str {
        &self.method
    }

    /// The extra header lines (each ending in CR LF) written after `Host`.
    pub fn head(&self) -> &[u8] {
        &self.head
    }
}

/// Writes a template's parts into `out`, drawing from `rng`.
pub(crate) fn expand(parts: &[Part], rng: &mut Rng, out: &mut Vec<u8>) {
    use std::io::Write;
    for p in parts {
        match p {
            Part::Text(t) => out.extend_from_slice(t.as_bytes()),
            Part::Range(lo, hi) => {
                let _ = write!(out, "{}", lo + rng.below(hi - lo + 1));
            }
            Part::Choice(words) => {
                out.extend_from_slice(words[rng.below(words.len() as u64) as usize].as_bytes())
            }
        }
    }
}

/// Splits a JSON body template into text and placeholders. A placeholder is `{...}`
/// whose inside has no quote, colon, brace or white space, and holds `..` or `,`;
/// other braces are JSON's. The template, with every placeholder at its first value,
/// must be JSON.
pub(crate) fn parse_json_template(template: &str) -> Result<Vec<Part>, String> {
    let mut parts: Vec<Part> = Vec::new();
    let mut text = String::new();
    let mut rest = template;
    while let Some(open) = rest.find('{') {
        text.push_str(&rest[..open]);
        let after = &rest[open + 1..];
        let inner_end =
            after.find(|c: char| c == '}' || c == '{' || c == '"' || c == ':' || c.is_whitespace());
        match inner_end {
            Some(end)
                if after[end..].starts_with('}')
                    && (after[..end].contains("..") || after[..end].contains(',')) =>
            {
                let inner = &after[..end];
                if !text.is_empty() {
                    parts.push(Part::Text(std::mem::take(&mut text)));
                }
                let placeholder =
                    super::plan::parse_placeholder(inner).map_err(|e| format!("the body: {e}"))?;
                parts.push(placeholder);
                rest = &after[end + 1..];
            }
            _ => {
                text.push('{');
                rest = after;
            }
        }
    }
    text.push_str(rest);
    if !text.is_empty() {
        parts.push(Part::Text(text));
    }
    let first: Vec<Part> = parts
        .iter()
        .map(|p| match p {
            Part::Range(lo, _) => Part::Text(lo.to_string()),
            Part::Choice(w) => Part::Text(w[0].clone()),
            t => t.clone(),
        })
        .collect();
    let mut sample = Vec::new();
    expand(&first, &mut Rng::new(1), &mut sample);
    serde_json::from_slice::<serde_json::Value>(&sample).map_err(|e| {
        format!(
            "the JSON body template does not expand to JSON ({e}): `{}`",
            String::from_utf8_lossy(&sample)
        )
    })?;
    Ok(parts)
}

/// Parses a path template (for request files, whose paths are literal but may be
/// checked the same way as the URL's).
pub(crate) fn literal_path(path: &str) -> Result<Vec<Part>, String> {
    if let Some(c) = path.chars().find(|c| c.is_whitespace() || c.is_control()) {
        return Err(format!("the path `{path}` contains {c:?}; encode it"));
    }
    Ok(vec![Part::Text(path.to_string())])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn json_templates_draw_their_parts_and_leave_json_braces_alone() {
        let parts = parse_json_template(r#"{"id": {1..3}, "kind": "{a,b}", "o": {}}"#).unwrap();
        let mut rng = Rng::new(3);
        let mut seen = std::collections::HashSet::new();
        for _ in 0..200 {
            let mut out = Vec::new();
            expand(&parts, &mut rng, &mut out);
            let v: serde_json::Value = serde_json::from_slice(&out).unwrap();
            seen.insert((
                v["id"].as_u64().unwrap(),
                v["kind"].as_str().unwrap().to_string(),
            ));
        }
        assert_eq!(seen.len(), 6, "{seen:?}");
        for (bad, says) in [
            (r#"{"id": {5..1}}"#, "empty"),
            (r#"{"id": {1..x}}"#, "whole number"),
            (r#"{"id": {a,b}"#, "does not expand to JSON"),
            (r#"{"id": {a,b}}"#, "does not expand to JSON"),
        ] {
            let e = parse_json_template(bad).unwrap_err();
            assert!(e.contains(says), "{bad}: {e}");
        }
    }

    #[test]
    fn request_files_and_headers_parse_or_say_what_is_wrong() {
        let rs = ScriptedRequest::parse_lines(
            "# a comment\n{\"method\":\"PUT\",\"path\":\"/a\",\"headers\":{\"X-A\":\"1\"},\"body\":{\"n\":1}}\n\n{\"path\":\"/b\",\"body\":\"raw\"}\n",
        )
        .unwrap();
        assert_eq!(rs.len(), 2);
        assert_eq!(rs[0].method, "PUT");
        assert_eq!(rs[0].body.as_deref(), Some(&b"{\"n\":1}"[..]));
        assert!(has_header(&rs[0].headers, "content-type"));
        assert_eq!(rs[1].method, "GET");
        assert_eq!(rs[1].body.as_deref(), Some(&b"raw"[..]));
        for (bad, says) in [
            ("{\"path\": 3}", "line 1: `path` is 3"),
            ("nope", "line 1: not JSON"),
            ("{\"method\":\"GET\"}", "no `path`"),
            ("{\"path\":\"/a\",\"verb\":1}", "unknown field `verb`"),
            ("{\"path\":\"a\"}", "does not start with /"),
            ("", "holds no request"),
        ] {
            let e = ScriptedRequest::parse_lines(bad).unwrap_err();
            assert!(e.contains(says), "{bad}: {e}");
        }
        assert_eq!(
            parse_header("X-Trace:  abc ").unwrap(),
            ("X-Trace".to_string(), "abc".to_string())
        );
        assert!(parse_header("no colon")
            .unwrap_err()
            .contains("not a header"));
        assert!(parse_header("bad name: 1")
            .unwrap_err()
            .contains("not a header name"));
        assert!(parse_header("Content-Length: 3")
            .unwrap_err()
            .contains("leave it out"));
    }

    #[test]
    fn expectations_check_bodies() {
        let c = Expect::json("/a/0=3").unwrap().compile().unwrap();
        assert!(c.check(br#"{"a":[3]}"#).is_ok());
        assert!(c
            .check(br#"{"a":[4]}"#)
            .unwrap_err()
            .contains("is 4, not 3"));
        assert!(c.check(br#"{"b":1}"#).unwrap_err().contains("nothing at"));
        assert!(c.check(b"<html>").unwrap_err().contains("not JSON"));
        let s = Expect::json("/status=ok").unwrap().compile().unwrap();
        assert!(s.check(br#"{"status":"ok"}"#).is_ok());
        assert!(Expect::json("status=ok")
            .unwrap_err()
            .contains("JSON pointer"));
        assert!(Expect::json("/x").unwrap_err().contains("POINTER=VALUE"));
        let t = Expect::BodyContains("lo w".into()).compile().unwrap();
        assert!(t.check(b"hello world").is_ok() && t.check(b"hello").is_err());
    }
}
