//! Names, patterns and scopes: what the directory matches.
//!
//! A [`Name`] is colon-separated segments (`texture:worker:3`), each of letters, digits,
//! `_`, `-` and `.`; at most [`MAX_NAME`] bytes. A [`Pattern`] is a regular expression
//! matched against the *whole* name (it is anchored), bounded in length and in the memory
//! its compiled form may take, so a subscriber cannot make the directory build a huge
//! automaton. A [`Scope`] is how far a publication is seen, or how far a subscription
//! looks: process < group < host < LAN, nearest first.

use std::fmt;

use serde::{Deserialize, Serialize};

/// The longest name, in bytes.
pub const MAX_NAME: usize = 256;

/// The longest pattern, in bytes.
pub const MAX_PATTERN: usize = 1024;

/// The most memory a compiled pattern may take.
const PATTERN_MEMORY: usize = 1 << 20;

/// Why a name or a pattern was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum NameError {
    /// The name is empty, too long, or has an empty segment or a character outside
    /// letters, digits, `_`, `-`, `.` and the `:` between segments.
    #[error("bad name {name:?}: {why}")]
    BadName {
        /// The name as given.
        name: String,
        /// What is wrong with it.
        why: &'static str,
    },
    /// The pattern is not a regular expression this directory takes.
    #[error("bad pattern {pattern:?}: {why}")]
    BadPattern {
        /// The pattern as given.
        pattern: String,
        /// What is wrong with it.
        why: String,
    },
}

/// A name objects publish under (see the module doc).
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct Name(String);

impl Name {
    /// `text` as a name, or why it is not one.
    pub fn new(text: impl Into<String>) -> Result<Name, NameError> {
        let name = text.into();
        let bad = |why| {
            Err(NameError::BadName {
                name: name.chars().take(MAX_NAME).collect(),
                why,
            })
        };
        if name.is_empty() {
            return bad("it is empty");
        }
        if name.len() > MAX_NAME {
            return bad("it is longer than 256 bytes");
        }
        if name.split(':').any(str::is_empty) {
            return bad("a segment between colons is empty");
        }
        if !name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'-' | b'.' | b':'))
        {
            return bad("only letters, digits, `_`, `-`, `.` and `:` between segments are allowed");
        }
        Ok(Name(name))
    }

    /// The name's text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl std::borrow::Borrow<str> for Name {
    fn borrow(&self) -> &str {
        &self.0
    }
}

impl TryFrom<String> for Name {
    type Error = NameError;
    fn try_from(s: String) -> Result<Name, NameError> {
        Name::new(s)
    }
}

impl From<Name> for String {
    fn from(n: Name) -> String {
        n.0
    }
}

impl fmt::Display for Name {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// A regular expression that must match a whole name (see the module doc).
#[derive(Clone)]
pub struct Pattern {
    source: String,
    regex: regex::Regex,
    /// The one name the pattern matches, when it has no operators (the directory then
    /// finds its subscriptions by name instead of trying the expression).
    literal: Option<Name>,
    /// What every name it matches starts with (empty when nothing is common to them):
    /// the directory tries the expression only on names with this start.
    prefix: String,
    /// What every name it matches ends with (likewise), for patterns with no common
    /// start: the directory tries those only on names with this end.
    suffix: String,
}

impl Pattern {
    /// `source` as a pattern, or why it is not one.
    pub fn new(source: impl Into<String>) -> Result<Pattern, NameError> {
        let source = source.into();
        let bad = |why: String| NameError::BadPattern {
            pattern: source.chars().take(MAX_PATTERN).collect(),
            why,
        };
        if source.len() > MAX_PATTERN {
            return Err(bad("it is longer than 1,024 bytes".into()));
        }
        // It must be an expression on its own: one that is not (`a)|(b`) would leave the
        // anchors it is put between (`^(?:a)|(b)$` matches every name that starts with `a`).
        let hir = regex_syntax::Parser::new()
            .parse(&source)
            .map_err(|e| bad(e.to_string()))?;
        let regex = regex::RegexBuilder::new(&format!("^(?:{source})$"))
            .size_limit(PATTERN_MEMORY)
            .dfa_size_limit(PATTERN_MEMORY)
            .build()
            .map_err(|e| bad(e.to_string()))?;
        let operators = source.contains(|c: char| "\\.+*?()|[]{}^$".contains(c));
        let literal = if operators {
            None
        } else {
            Name::new(source.clone()).ok()
        };
        let (prefix, suffix) = common_ends(&hir);
        Ok(Pattern {
            source,
            regex,
            literal,
            prefix,
            suffix,
        })
    }

    /// What every name the pattern matches starts with (possibly empty).
    pub fn prefix(&self) -> &str {
        &self.prefix
    }

    /// What every name the pattern matches ends with (possibly empty).
    pub fn suffix(&self) -> &str {
        &self.suffix
    }

    /// True when the pattern matches the whole of `name`.
    pub fn matches(&self, name: &Name) -> bool {
        match &self.literal {
            Some(l) => l == name,
            None => self.regex.is_match(name.as_str()),
        }
    }

    /// The one name this pattern matches, when it is a plain name.
    pub fn literal(&self) -> Option<&Name> {
        self.literal.as_ref()
    }

    /// The pattern as given.
    pub fn as_str(&self) -> &str {
        &self.source
    }
}

impl fmt::Debug for Pattern {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Pattern({:?})", self.source)
    }
}

/// What every whole match of the expression `hir` starts with and ends with, from its
/// syntax tree (so `texture:(a|b)` starts with `texture:`, `[a-z]+:svc-1` ends with
/// `:svc-1`, and `a|b` has neither). Empty when nothing is common, or the extraction gives
/// up (a large class, a long repetition): the index is only ever narrower, never wrong.
fn common_ends(hir: &regex_syntax::hir::Hir) -> (String, String) {
    use regex_syntax::hir::literal::{ExtractKind, Extractor};
    let prefixes = Extractor::new().kind(ExtractKind::Prefix).extract(hir);
    let suffixes = Extractor::new().kind(ExtractKind::Suffix).extract(hir);
    let text = |bytes: Option<&[u8]>, from_end: bool| -> String {
        let bytes = bytes.unwrap_or_default();
        // Cut at a character boundary: a literal may end inside a multi-byte character.
        let mut cut = bytes;
        loop {
            match std::str::from_utf8(cut) {
                Ok(t) => return t.to_string(),
                Err(_) if from_end => cut = &cut[1..],
                Err(e) => cut = &cut[..e.valid_up_to()],
            }
        }
    };
    (
        text(prefixes.longest_common_prefix(), false),
        text(suffixes.longest_common_suffix(), true),
    )
}

impl Serialize for Pattern {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.source)
    }
}

impl<'de> Deserialize<'de> for Pattern {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Pattern, D::Error> {
        let source = String::deserialize(d)?;
        Pattern::new(source).map_err(serde::de::Error::custom)
    }
}

impl fmt::Display for Pattern {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.source)
    }
}

impl PartialEq for Pattern {
    fn eq(&self, other: &Pattern) -> bool {
        self.source == other.source
    }
}

/// How far a publication is seen, or a subscription looks; nearer scopes order first.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub enum Scope {
    /// This process.
    Process,
    /// The composite this process belongs to (a parent and its child processes).
    Group,
    /// This machine.
    Host,
    /// The local network.
    Lan,
}

impl fmt::Display for Scope {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Scope::Process => "process",
            Scope::Group => "group",
            Scope::Host => "host",
            Scope::Lan => "lan",
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_pattern_is_an_expression_on_its_own_and_stays_anchored() {
        // `a)|(b` compiled as `^(?:a)|(b)$`: a pattern that matched every name starting
        // with `a` (found writing the `directory_messages` fuzz target's checks).
        for bad in ["a)|(b", "x)|(?:.*", ")(", "a)"] {
            let e = Pattern::new(bad).unwrap_err();
            assert!(matches!(e, NameError::BadPattern { .. }), "{bad:?}: {e}");
        }
        let p = Pattern::new("a|b").unwrap();
        assert!(p.matches(&Name::new("a").unwrap()));
        assert!(!p.matches(&Name::new("a:zzz").unwrap()));
    }

    #[test]
    fn names_are_colon_separated_segments_of_plain_characters() {
        for good in ["texture", "texture:worker:3", "a.b-c_d:E9"] {
            assert_eq!(Name::new(good).unwrap().as_str(), good);
        }
        for (bad, why) in [
            ("", "empty"),
            ("a::b", "segment"),
            (":a", "segment"),
            ("a:", "segment"),
            ("a b", "only letters"),
            ("a/b", "only letters"),
            ("é", "only letters"),
        ] {
            let e = Name::new(bad).unwrap_err().to_string();
            assert!(e.contains(why), "{bad:?}: {e}");
        }
        assert!(Name::new("x".repeat(257))
            .unwrap_err()
            .to_string()
            .contains("256"));
        // Decoding checks too.
        assert!(serde_json::from_str::<Name>("\"a::b\"").is_err());
        assert_eq!(
            serde_json::from_str::<Name>("\"a:b\"").unwrap(),
            Name::new("a:b").unwrap()
        );
    }

    #[test]
    fn patterns_match_whole_names() {
        let name = |s| Name::new(s).unwrap();
        let p = Pattern::new("texture:worker:.*").unwrap();
        assert!(p.matches(&name("texture:worker:1")));
        assert!(
            !p.matches(&name("x:texture:worker:1")),
            "anchored at the start"
        );
        assert!(p.literal().is_none());
        let exact = Pattern::new("texture:worker").unwrap();
        assert_eq!(exact.literal(), Some(&name("texture:worker")));
        assert!(exact.matches(&name("texture:worker")));
        assert!(
            !exact.matches(&name("texture:worker:1")),
            "anchored at the end"
        );
        // A dot is an operator: `a.b` is not the literal name `a.b`.
        let dotted = Pattern::new("a.b").unwrap();
        assert!(dotted.literal().is_none() && dotted.matches(&name("axb")));
        // Alternation stays inside the anchors.
        let either = Pattern::new("a|b").unwrap();
        assert!(either.matches(&name("a")) && !either.matches(&name("ab")));
    }

    #[test]
    fn a_pattern_knows_what_its_matches_start_with() {
        for (pattern, prefix) in [
            ("texture:worker:.*", "texture:worker:"),
            ("t6:worker:[0-9]+", "t6:worker:"),
            ("ab*", "a"),
            ("ab?c", "a"),
            ("ab{2}", "abb"),
            ("ab+", "ab"),
            ("a|b", ""),
            ("texture:(a|b)", "texture:"),
            ("(?i)abc", ""),
            (".*", ""),
            ("x\\.y", "x.y"),
            ("\\x41b", "Ab"),
        ] {
            assert_eq!(Pattern::new(pattern).unwrap().prefix(), prefix, "{pattern}");
        }
    }

    #[test]
    fn a_pattern_knows_what_its_matches_end_with() {
        for (pattern, suffix) in [
            ("[a-z]+:ns[0-9]:svc-00042", ":svc-00042"),
            (".*:worker", ":worker"),
            ("(a|b)c", "c"),
            ("[a-z]+-\\bbar", "-bar"),
            ("a\\x41", "aA"),
            ("ab*", ""),
            (".*", ""),
            ("a|b", ""),
        ] {
            assert_eq!(Pattern::new(pattern).unwrap().suffix(), suffix, "{pattern}");
        }
    }

    #[test]
    fn hostile_patterns_are_refused_with_a_reason() {
        let e = Pattern::new("(").unwrap_err().to_string();
        assert!(e.contains("bad pattern"), "{e}");
        let e = Pattern::new("a".repeat(1025)).unwrap_err().to_string();
        assert!(e.contains("1,024"), "{e}");
        // Small to write, huge to compile: refused by the memory bound.
        let e = Pattern::new("(?:[a-z]{1,100}){1,100}")
            .unwrap_err()
            .to_string();
        assert!(e.contains("bad pattern"), "{e}");
    }

    #[test]
    fn scopes_order_nearest_first() {
        assert!(Scope::Process < Scope::Group && Scope::Group < Scope::Host);
        assert!(Scope::Host < Scope::Lan);
        assert_eq!(Scope::Host.to_string(), "host");
    }
}
