//! Fuzzes the directory's messages as a shared directory receives them from its clients
//! over links: bytes are decoded with the binary codec (`codec::from_binary`, what a link
//! does with a frame's body) into the directory's own message types, and what decodes is
//! applied to a [`Listing`] (the directory's pure table) by the rules of the shared
//! directory (`directory/shared.rs`): a client must have joined, may publish and
//! withdraw only its own node's objects, at the directory's scope or wider; its wants
//! see everything held; a client that goes takes its listings along.
//!
//! Checked:
//! - whatever decodes re-encodes to the same bytes, which decode to the same message;
//! - what decodes as a directory message holds only valid names, patterns, scopes;
//! - every accepted pattern is a regular expression on its own (it is matched anchored, so
//!   one that is not could escape the anchors);
//! - a subscription never hears `Available` of a name it holds, nor `Dropped` of what it
//!   does not hold; what each subscription holds is, for every published name its
//!   pattern matches, the nearest publication (worked out by brute force, apart from the
//!   listing's indexes), and a pattern's prefix and suffix hold for every name it matches.
//!
//! Input: a sequence of steps; each either raw bytes for one frame or a well-formed
//! message built from a few bytes (so the table fills up), from one of a few clients.

#![no_main]

use std::collections::{BTreeMap, HashMap};

use libfuzzer_sys::arbitrary::{Result, Unstructured};
use libfuzzer_sys::fuzz_target;
use serde_json::{json, Value};
use strata::directory::{Change, Listing, Name, Pattern, Publication, Scope, SubscriptionId};
use strata::message::codec;
use strata::{Address, AnyMessage};

const SCOPES: [Scope; 4] = [Scope::Process, Scope::Group, Scope::Host, Scope::Lan];
const SEGMENTS: [&str; 6] = ["a", "b", "svc", "worker", "1", "x.y"];
const PATTERNS: [&str; 8] = [
    "a:.*",
    ".*:1",
    "(a|b):svc",
    "[a-z]+:worker:1",
    "svc(:[0-9])?",
    ".*",
    "a|b",
    "x\\.y:.+",
];

/// One client of the directory: a process directory, by its address.
#[derive(Default)]
struct Client {
    wants: HashMap<u64, SubscriptionId>,
}

/// The shared directory under test: the listing, and what the directory keeps beside it.
struct Directory {
    level: Scope,
    listing: Listing,
    clients: HashMap<Address, Client>,
    /// Each live subscription's client and pattern.
    patterns: HashMap<SubscriptionId, (Address, Pattern)>,
    /// What each subscription holds, as the changes told it.
    held: BTreeMap<(SubscriptionId, Name), Address>,
}

impl Directory {
    fn hear(&mut self, changes: Vec<Change>) {
        for change in changes {
            let (_to, sid, name, address, _scope, available) = change.into_parts();
            assert!(
                self.patterns.contains_key(&sid),
                "a change for an ended subscription"
            );
            let key = (sid, name);
            if available {
                let before = self.held.insert(key.clone(), address);
                assert!(
                    before.is_none(),
                    "Available of a name held already: {key:?}"
                );
            } else {
                let before = self.held.remove(&key);
                assert_eq!(
                    before,
                    Some(address),
                    "Dropped of what was not held: {key:?}"
                );
            }
        }
    }

    /// A subscription that ends without its client being told (the client asked, or went).
    fn forget(&mut self, sid: SubscriptionId, dropped: Vec<Change>) {
        let mut had: Vec<(Name, Address)> = self
            .held
            .iter()
            .filter(|((s, _), _)| *s == sid)
            .map(|((_, n), a)| (n.clone(), *a))
            .collect();
        had.sort();
        let mut told: Vec<(Name, Address)> = dropped
            .into_iter()
            .map(|c| {
                let (_, s, name, address, _, available) = c.into_parts();
                assert!(
                    !available && s == sid,
                    "unsubscribing made something available"
                );
                (name, address)
            })
            .collect();
        told.sort();
        assert_eq!(told, had, "what an ended subscription drops");
        self.held.retain(|(s, _), _| *s != sid);
        self.patterns.remove(&sid);
    }

    /// The client's link closed (or it joined again): the listing ends everything of its
    /// node, its subscriptions silently, its publications with a word to the others.
    fn end_client(&mut self, client: Address) {
        if self.clients.remove(&client).is_none() {
            return;
        }
        let ended: Vec<SubscriptionId> = self
            .patterns
            .iter()
            .filter(|(_, (owner, _))| owner.node() == client.node())
            .map(|(sid, _)| *sid)
            .collect();
        for sid in ended {
            self.held.retain(|(s, _), _| *s != sid);
            self.patterns.remove(&sid);
        }
        let changes = self.listing.end_incarnation(client.node());
        self.hear(changes);
    }

    fn apply(&mut self, sender: Address, message: &AnyMessage) {
        let Ok(value) = codec::to_json_plain(message) else {
            panic!("a decoded {} does not encode as JSON", message.type_name());
        };
        let joined = self.clients.contains_key(&sender);
        match message.type_name() {
            "strata.directory.Join" => {
                self.end_client(sender);
                self.clients.insert(sender, Client::default());
            }
            "strata.directory.Offer" => {
                let name = name_in(&value["name"]);
                let scope = scope_in(&value["scope"]);
                let owner = address_in(&value["owner"]);
                let address = address_in(&value["address"]);
                if !joined
                    || owner.node() != sender.node()
                    || address.node() != sender.node()
                    || scope < self.level
                {
                    return;
                }
                let publication = Publication {
                    name,
                    scope,
                    shown: scope,
                    address,
                    owner,
                    incarnation: sender.node(),
                };
                if let Ok(changes) = self.listing.publish(publication) {
                    self.hear(changes);
                }
            }
            "strata.directory.Withdraw" => {
                let name = name_in(&value["name"]);
                let owner = address_in(&value["owner"]);
                if !joined || owner.node() != sender.node() {
                    return;
                }
                if let Some(changes) = self.listing.withdraw_by(&name, owner) {
                    self.hear(changes);
                }
            }
            "strata.directory.Want" => {
                let id = value["id"].as_u64().expect("a want's id is a number");
                let pattern = pattern_in(&value["pattern"]);
                let Some(client) = self.clients.get(&sender) else {
                    return;
                };
                if client.wants.contains_key(&id) {
                    return;
                }
                let (sid, changes) =
                    self.listing
                        .subscribe(sender, sender.node(), pattern.clone(), Scope::Lan);
                self.clients
                    .get_mut(&sender)
                    .expect("joined")
                    .wants
                    .insert(id, sid);
                self.patterns.insert(sid, (sender, pattern));
                self.hear(changes);
            }
            "strata.directory.Unwant" => {
                let id = value["id"].as_u64().expect("an unwant's id is a number");
                let Some(sid) = self
                    .clients
                    .get_mut(&sender)
                    .and_then(|c| c.wants.remove(&id))
                else {
                    return;
                };
                let dropped = self.listing.unsubscribe(sid);
                self.forget(sid, dropped);
            }
            "strata.directory.Candidate"
            | "strata.directory.Available"
            | "strata.directory.Dropped"
            | "strata.directory.Published" => {
                let _ = name_in(&value["name"]);
                let _ = scope_in(&value["scope"]);
            }
            "strata.directory.Publish" => {
                let _ = name_in(&value["name"]);
                let _ = scope_in(&value["scope"]);
            }
            "strata.directory.Subscribe" => {
                let _ = pattern_in(&value["pattern"]);
                let _ = scope_in(&value["scope"]);
            }
            _ => {}
        }
    }

    /// What every subscription holds is the nearest publication of every name it matches.
    fn check(&self) {
        let mut nearest: BTreeMap<&Name, &Publication> = BTreeMap::new();
        for p in self.listing.publications() {
            let e = nearest.entry(&p.name).or_insert(p);
            if p.scope < e.scope {
                *e = p;
            }
        }
        let mut expected: BTreeMap<(SubscriptionId, Name), Address> = BTreeMap::new();
        for (sid, (_, pattern)) in &self.patterns {
            for (name, p) in &nearest {
                if pattern.matches(name) {
                    assert!(
                        name.as_str().starts_with(pattern.prefix())
                            && name.as_str().ends_with(pattern.suffix()),
                        "{pattern:?} matches {name} outside its prefix {:?} / suffix {:?}",
                        pattern.prefix(),
                        pattern.suffix()
                    );
                    expected.insert((*sid, (*name).clone()), p.address);
                }
            }
        }
        assert_eq!(self.held, expected, "what subscriptions hold");
        assert_eq!(self.listing.subscription_count(), self.patterns.len());
    }
}

fn name_in(v: &Value) -> Name {
    Name::new(v.as_str().expect("a name is text")).expect("a decoded name is valid")
}

fn scope_in(v: &Value) -> Scope {
    serde_json::from_value(v.clone()).expect("a decoded scope is a scope")
}

fn address_in(v: &Value) -> Address {
    serde_json::from_value(v.clone()).expect("a decoded address is an address")
}

thread_local! {
    /// Patterns compiled already, by source (compiling is most of a run's time).
    static PATTERNS_SEEN: std::cell::RefCell<HashMap<String, Pattern>> = Default::default();
}

fn pattern_in(v: &Value) -> Pattern {
    let source = v.as_str().expect("a pattern is text");
    PATTERNS_SEEN.with(|seen| {
        let mut seen = seen.borrow_mut();
        if let Some(p) = seen.get(source) {
            return p.clone();
        }
        assert!(
            regex_syntax::Parser::new().parse(source).is_ok(),
            "the pattern {source:?} was accepted but is no regular expression on its own"
        );
        let p = Pattern::new(source).expect("a decoded pattern is valid");
        if seen.len() > 10_000 {
            seen.clear();
        }
        seen.insert(source.to_string(), p.clone());
        p
    })
}

fn some_name(u: &mut Unstructured) -> Result<String> {
    let n = u.int_in_range(1..=3)?;
    let mut parts = Vec::new();
    for _ in 0..n {
        parts.push(*u.choose(&SEGMENTS)?);
    }
    Ok(parts.join(":"))
}

fn some_address(u: &mut Unstructured, sender: Address) -> Result<Value> {
    // Mostly the sender's own node; sometimes another (which must be refused).
    let node = if u.ratio(7, 8)? {
        sender.node()
    } else {
        u.int_in_range(1..=5)?
    };
    Ok(json!({"node": node, "object": u.int_in_range(1..=3u64)?}))
}

/// A well-formed directory message, as typed JSON.
fn some_message(u: &mut Unstructured, sender: Address) -> Result<Value> {
    let (name, value) = match u.int_in_range(0..=6)? {
        0 => (
            "Join",
            json!({"endpoint": u.arbitrary::<Option<String>>()?}),
        ),
        1 | 2 => (
            "Offer",
            json!({
                "ticket": u.arbitrary::<u64>()?,
                "name": some_name(u)?,
                "scope": u.choose(&SCOPES)?,
                "owner": some_address(u, sender)?,
                "address": some_address(u, sender)?,
            }),
        ),
        3 => (
            "Withdraw",
            json!({"name": some_name(u)?, "owner": some_address(u, sender)?}),
        ),
        4 => {
            let pattern = if u.ratio(1, 4)? {
                // Any text, kept short: a long expression only costs compile time.
                u.arbitrary::<String>()?.chars().take(40).collect()
            } else if u.arbitrary()? {
                some_name(u)?
            } else {
                u.choose(&PATTERNS)?.to_string()
            };
            (
                "Want",
                json!({"id": u.int_in_range(0..=3u64)?, "pattern": pattern}),
            )
        }
        5 => ("Unwant", json!({"id": u.int_in_range(0..=3u64)?})),
        _ => (
            "Candidate",
            json!({
                "id": u.arbitrary::<u64>()?,
                "available": u.arbitrary::<bool>()?,
                "name": some_name(u)?,
                "scope": u.choose(&SCOPES)?,
                "address": some_address(u, sender)?,
                "endpoint": u.arbitrary::<Option<String>>()?,
            }),
        ),
    };
    Ok(json!({"type": format!("strata.directory.{name}"), "value": value}))
}

/// Appends `n` as the binary codec writes integers (postcard: 7 bits a byte, low first).
fn varint(mut n: u64, out: &mut Vec<u8>) {
    while n >= 0x80 {
        out.push((n as u8) | 0x80);
        n >>= 7;
    }
    out.push(n as u8);
}

/// Appends `s` as the binary codec writes text: its length, then its bytes.
fn text(s: &str, out: &mut Vec<u8>) {
    varint(s.len() as u64, out);
    out.extend_from_slice(s.as_bytes());
}

/// Decodes one frame body; what decodes must survive encoding again.
fn decode(bytes: &[u8]) -> Option<AnyMessage> {
    let message = codec::from_binary(bytes).ok()?;
    let again = codec::to_binary(&message).expect("a decoded message encodes");
    let twice = codec::from_binary(&again).expect("what was encoded decodes");
    assert_eq!(
        codec::to_json(&twice).ok(),
        codec::to_json(&message).ok(),
        "{} changed on a trip",
        message.type_name()
    );
    // The bytes are the same too, unless the message holds a map (whose order is each
    // map's own; the JSON above compares maps by key).
    let bytes_again = codec::to_binary(&twice).expect("encodes");
    if bytes_again != again {
        assert_eq!(
            bytes_again.len(),
            again.len(),
            "{} changed size",
            message.type_name()
        );
    }
    Some(message)
}

fn run(u: &mut Unstructured) -> Result<()> {
    let mut directory = Directory {
        level: *u.choose(&SCOPES[1..])?,
        listing: Listing::new(),
        clients: HashMap::new(),
        patterns: HashMap::new(),
        held: BTreeMap::new(),
    };
    while !u.is_empty() {
        let sender = Address::from_parts(u.int_in_range(1..=3)?, u.int_in_range(1..=2)?);
        let step = u.int_in_range(0..=9)?;
        // The pattern of a want written by hand, which must decode when it is valid.
        let mut hand_written = None;
        let bytes = match step {
            0 => {
                // A frame as a peer may send it: any bytes.
                let len = u.int_in_range(0..=64)?;
                u.bytes(len)?.to_vec()
            }
            1 => {
                // The client's link closes.
                directory.end_client(sender);
                directory.check();
                continue;
            }
            _ => {
                let typed = some_message(u, sender)?;
                if typed["type"] == "strata.directory.Want" {
                    // Written by hand, not through a decoded `Want`: compiling its
                    // pattern is most of a run's time, and decoding the frame compiles it
                    // anyway.
                    let want = &typed["value"];
                    let mut bytes = Vec::new();
                    text("strata.directory.Want", &mut bytes);
                    varint(want["id"].as_u64().expect("a number"), &mut bytes);
                    let pattern = want["pattern"].as_str().expect("text");
                    text(pattern, &mut bytes);
                    hand_written = Some(pattern.to_string());
                    bytes
                } else {
                    match codec::from_json(&typed) {
                        Ok(m) => codec::to_binary(&m).expect("a decoded message encodes"),
                        Err(e) => panic!("a well-formed message is refused: {e}"),
                    }
                }
            }
        };
        match decode(&bytes) {
            Some(message) => {
                directory.apply(sender, &message);
                directory.check();
            }
            None => {
                if let Some(pattern) = &hand_written {
                    assert!(
                        Pattern::new(pattern.as_str()).is_err(),
                        "a want of the valid pattern {pattern:?} does not decode"
                    );
                }
            }
        }
    }
    Ok(())
}

fuzz_target!(|data: &[u8]| {
    let _ = run(&mut Unstructured::new(data));
});
