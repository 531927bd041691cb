//! The listing: the directory's table of publications and subscriptions, as a pure data
//! structure. No I/O, no clock, no objects: each operation returns the [`Change`]s it
//! causes (which subscriber hears `Available` or `Dropped` of what), and the directory
//! object sends them. That keeps the rules in one place, tested on their own:
//!
//! - a name is unique within a scope: a second publication of a name at a scope that holds
//!   it is refused, naming the holder;
//! - a subscription with scope `S` sees publications of scope `S` or nearer, and of each
//!   name it holds the *nearest* one;
//! - when that changes (the nearest goes, or a nearer one comes), the subscriber hears
//!   `Dropped(old)` before `Available(new)`, so it never holds two for one name;
//! - publications and subscriptions belong to an object, and to a process incarnation:
//!   when either ends, exactly its listings go.
//!
//! Subscriptions whose pattern is a plain name are found by name; the others by what their
//! matches must start with ([`Pattern::prefix`]): a publication is tried only against the
//! patterns whose prefix it starts with (one lookup per prefix of its name), and a new
//! subscription only against the names in its prefix's range. A pattern with no common
//! start but a common end ([`Pattern::suffix`], as in `[a-z]+:svc-1`) is found the same
//! way by the ends of a name (a new one of these is tried on every name). A pattern with
//! neither (`.*`, `a|b`) is tried on every name.

use std::collections::{BTreeMap, HashMap};
use std::ops::Bound;

use super::name::{Name, Pattern, Scope};
use crate::Address;

/// A process incarnation: its node id, drawn at random when the process starts, so that a
/// restarted process is never taken for the one before it.
pub type Incarnation = u64;

/// One publication.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Publication {
    /// The name.
    pub name: Name,
    /// The scope the rules go by (uniqueness, nearest first, what a subscription sees):
    /// in a shared directory how far the publication is seen; in a process directory how
    /// near it is (its own objects' at process scope, what a wider directory sent at that
    /// directory's scope).
    pub scope: Scope,
    /// The scope subscribers are told: how far the publication is seen.
    pub shown: Scope,
    /// Where messages for the name go.
    pub address: Address,
    /// The object that published it (when it ends, the publication does).
    pub owner: Address,
    /// The publishing process.
    pub incarnation: Incarnation,
}

/// Identifies a subscription within one listing.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct SubscriptionId(u64);

impl SubscriptionId {
    /// The id as a number (unique within its listing).
    pub fn get(self) -> u64 {
        self.0
    }
}

/// What a subscriber is to hear.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Change {
    /// `name` is now available at `address`, published at `scope`.
    Available {
        /// The subscriber (the object that subscribed).
        to: Address,
        /// Its subscription.
        subscription: SubscriptionId,
        /// The name.
        name: Name,
        /// Where the name's messages go.
        address: Address,
        /// The publication's scope.
        scope: Scope,
    },
    /// What was `Available` is no more.
    Dropped {
        /// The subscriber.
        to: Address,
        /// Its subscription.
        subscription: SubscriptionId,
        /// The name.
        name: Name,
        /// The address that was available.
        address: Address,
        /// The publication's scope.
        scope: Scope,
    },
}

impl Change {
    /// The change's fields, and whether it is an `Available` (else a `Dropped`): `(to,
    /// subscription, name, address, scope, available)`, for whoever passes it on.
    pub fn into_parts(self) -> (Address, SubscriptionId, Name, Address, Scope, bool) {
        match self {
            Change::Available {
                to,
                subscription,
                name,
                address,
                scope,
            } => (to, subscription, name, address, scope, true),
            Change::Dropped {
                to,
                subscription,
                name,
                address,
                scope,
            } => (to, subscription, name, address, scope, false),
        }
    }
}

/// Why a publication was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Refusal {
    /// Another object holds the name at that scope.
    #[error("`{name}` is already published at {scope} scope, by {holder}")]
    Taken {
        /// The name.
        name: Name,
        /// The scope.
        scope: Scope,
        /// The object that published it.
        holder: Address,
    },
}

struct Subscription {
    owner: Address,
    incarnation: Incarnation,
    pattern: Pattern,
    scope: Scope,
    /// What the subscriber holds now: per name, the address, the rules' scope and the
    /// scope it was told.
    holds: HashMap<Name, (Address, Scope, Scope)>,
}

/// The table (see the module doc).
#[derive(Default)]
pub struct Listing {
    /// Per name, its publications, nearest scope first, at most one per scope; ordered,
    /// so that the names starting with a pattern's prefix are a range.
    by_name: BTreeMap<Name, Vec<Publication>>,
    subscriptions: HashMap<SubscriptionId, Subscription>,
    /// Subscriptions whose pattern is a plain name, by that name.
    by_literal: HashMap<Name, Vec<SubscriptionId>>,
    /// The other subscriptions, by what their matches start with (see
    /// [`Pattern::prefix`]): a name is tried only against those whose prefix it has.
    by_prefix: HashMap<String, Vec<SubscriptionId>>,
    /// Subscriptions whose pattern has no common start but a common end, by that end.
    by_suffix: HashMap<String, Vec<SubscriptionId>>,
    next: u64,
}

/// Where a pattern's subscriptions are indexed.
enum Key<'a> {
    Literal(&'a Name),
    Prefix(&'a str),
    Suffix(&'a str),
}

fn key(pattern: &Pattern) -> Key<'_> {
    match pattern.literal() {
        Some(name) => Key::Literal(name),
        None if pattern.prefix().is_empty() && !pattern.suffix().is_empty() => {
            Key::Suffix(pattern.suffix())
        }
        None => Key::Prefix(pattern.prefix()),
    }
}

/// Takes `id` out of the index entry `key` of `map`, and the entry when it empties.
fn unindex<K, Q>(map: &mut HashMap<K, Vec<SubscriptionId>>, key: &Q, id: SubscriptionId)
where
    K: std::borrow::Borrow<Q> + std::hash::Hash + Eq,
    Q: std::hash::Hash + Eq + ?Sized,
{
    if let Some(ids) = map.get_mut(key) {
        ids.retain(|i| *i != id);
        if ids.is_empty() {
            map.remove(key);
        }
    }
}

impl Listing {
    /// An empty listing.
    pub fn new() -> Listing {
        Listing::default()
    }

    /// Adds `p`; refused when another object holds its name at its scope. Publishing
    /// again what is already published changes nothing.
    pub fn publish(&mut self, p: Publication) -> Result<Vec<Change>, Refusal> {
        let entries = self.by_name.entry(p.name.clone()).or_default();
        if let Some(held) = entries.iter().find(|e| e.scope == p.scope) {
            if held.owner == p.owner && held.address == p.address {
                return Ok(Vec::new());
            }
            return Err(Refusal::Taken {
                name: p.name,
                scope: p.scope,
                holder: held.owner,
            });
        }
        let at = entries.partition_point(|e| e.scope < p.scope);
        let name = p.name.clone();
        entries.insert(at, p);
        Ok(self.resolve(&name))
    }

    /// Removes what `owner` published as `name` at `scope` (if anything).
    pub fn withdraw(&mut self, name: &Name, scope: Scope, owner: Address) -> Vec<Change> {
        let Some(entries) = self.by_name.get_mut(name) else {
            return Vec::new();
        };
        let before = entries.len();
        entries.retain(|p| !(p.scope == scope && p.owner == owner));
        if entries.len() == before {
            return Vec::new();
        }
        if entries.is_empty() {
            self.by_name.remove(name);
        }
        self.resolve(name)
    }

    /// Removes what `owner` published as `name`, at whatever scope; `None` when it
    /// published nothing under that name.
    pub fn withdraw_by(&mut self, name: &Name, owner: Address) -> Option<Vec<Change>> {
        let entries = self.by_name.get_mut(name)?;
        let before = entries.len();
        entries.retain(|p| p.owner != owner);
        if entries.len() == before {
            return None;
        }
        if entries.is_empty() {
            self.by_name.remove(name);
        }
        Some(self.resolve(name))
    }

    /// True when `owner` publishes `name` at `scope`.
    pub fn is_published(&self, name: &Name, scope: Scope, owner: Address) -> bool {
        self.by_name
            .get(name)
            .is_some_and(|e| e.iter().any(|p| p.scope == scope && p.owner == owner))
    }

    /// Removes everything `owner` published (its subscriptions stay).
    pub fn withdraw_owner(&mut self, owner: Address) -> Vec<Change> {
        self.remove_publications(|p| p.owner == owner)
    }

    /// Adds a subscription for `owner` (of process `incarnation`); returns its id and an
    /// `Available` for every name it matches now.
    pub fn subscribe(
        &mut self,
        owner: Address,
        incarnation: Incarnation,
        pattern: Pattern,
        scope: Scope,
    ) -> (SubscriptionId, Vec<Change>) {
        let id = SubscriptionId(self.next);
        self.next += 1;
        let names: Vec<Name> = match key(&pattern) {
            Key::Literal(name) => self
                .by_name
                .contains_key(name)
                .then(|| name.clone())
                .into_iter()
                .collect(),
            Key::Prefix(prefix) => self
                .by_name
                .range::<str, _>((Bound::Included(prefix), Bound::Unbounded))
                .map(|(n, _)| n)
                .take_while(|n| n.as_str().starts_with(prefix))
                .filter(|n| pattern.matches(n))
                .cloned()
                .collect(),
            Key::Suffix(suffix) => self
                .by_name
                .keys()
                .filter(|n| n.as_str().ends_with(suffix) && pattern.matches(n))
                .cloned()
                .collect(),
        };
        match key(&pattern) {
            Key::Literal(name) => self.by_literal.entry(name.clone()).or_default().push(id),
            Key::Prefix(prefix) => self.by_prefix.entry(prefix.into()).or_default().push(id),
            Key::Suffix(suffix) => self.by_suffix.entry(suffix.into()).or_default().push(id),
        }
        self.subscriptions.insert(
            id,
            Subscription {
                owner,
                incarnation,
                pattern,
                scope,
                holds: HashMap::new(),
            },
        );
        let mut changes = Vec::new();
        for name in names {
            self.resolve_one(id, &name, &mut changes);
        }
        (id, changes)
    }

    /// Removes a subscription; returns a `Dropped` for everything it held (for its
    /// subscriber, who asked; nobody else is told).
    pub fn unsubscribe(&mut self, id: SubscriptionId) -> Vec<Change> {
        let Some(s) = self.subscriptions.remove(&id) else {
            return Vec::new();
        };
        let mut held: Vec<(&Name, &(Address, Scope, Scope))> = s.holds.iter().collect();
        held.sort();
        let dropped = held
            .into_iter()
            .map(|(name, (address, _, shown))| Change::Dropped {
                to: s.owner,
                subscription: id,
                name: name.clone(),
                address: *address,
                scope: *shown,
            })
            .collect();
        match key(&s.pattern) {
            Key::Literal(name) => unindex(&mut self.by_literal, name, id),
            Key::Prefix(prefix) => unindex(&mut self.by_prefix, prefix, id),
            Key::Suffix(suffix) => unindex(&mut self.by_suffix, suffix, id),
        }
        dropped
    }

    /// The subscriptions of `owner`.
    pub fn subscriptions_of(&self, owner: Address) -> Vec<SubscriptionId> {
        self.subscriptions_where(|s| s.owner == owner)
    }

    /// The subscriptions `which` picks, oldest first.
    fn subscriptions_where(&self, which: impl Fn(&Subscription) -> bool) -> Vec<SubscriptionId> {
        let mut ids: Vec<SubscriptionId> = self
            .subscriptions
            .iter()
            .filter(|(_, s)| which(s))
            .map(|(id, _)| *id)
            .collect();
        ids.sort();
        ids
    }

    /// `owner` ended: its publications go (its subscribers hear it) and so do its
    /// subscriptions.
    pub fn end_owner(&mut self, owner: Address) -> Vec<Change> {
        for id in self.subscriptions_of(owner) {
            self.unsubscribe(id);
        }
        self.remove_publications(|p| p.owner == owner)
    }

    /// The process `incarnation` ended: exactly its listings go.
    pub fn end_incarnation(&mut self, incarnation: Incarnation) -> Vec<Change> {
        for id in self.subscriptions_where(|s| s.incarnation == incarnation) {
            self.unsubscribe(id);
        }
        self.remove_publications(|p| p.incarnation == incarnation)
    }

    /// Every publication, by name and scope.
    pub fn publications(&self) -> impl Iterator<Item = &Publication> {
        self.by_name.values().flatten()
    }

    /// Every subscription, oldest first: its owner, pattern, scope and how many names it
    /// holds.
    pub fn subscriptions(&self) -> impl Iterator<Item = (Address, &Pattern, Scope, usize)> {
        let mut ids: Vec<&SubscriptionId> = self.subscriptions.keys().collect();
        ids.sort();
        ids.into_iter().map(|id| {
            let s = &self.subscriptions[id];
            (s.owner, &s.pattern, s.scope, s.holds.len())
        })
    }

    /// How many subscriptions there are.
    pub fn subscription_count(&self) -> usize {
        self.subscriptions.len()
    }

    fn remove_publications(&mut self, gone: impl Fn(&Publication) -> bool) -> Vec<Change> {
        let mut touched = Vec::new();
        self.by_name.retain(|name, entries| {
            let before = entries.len();
            entries.retain(|p| !gone(p));
            if entries.len() != before {
                touched.push(name.clone());
            }
            !entries.is_empty()
        });
        touched.sort();
        let mut changes = Vec::new();
        for name in touched {
            changes.extend(self.resolve(&name));
        }
        changes
    }

    /// Brings every subscription matching `name` up to date with its publications.
    fn resolve(&mut self, name: &Name) -> Vec<Change> {
        let mut ids: Vec<SubscriptionId> = self.by_literal.get(name).cloned().unwrap_or_default();
        let text = name.as_str();
        // Names are ASCII: every index is a character boundary.
        // No look-ups at all for an index that is empty (most listings have no suffix
        // patterns): a publication costs a hash per length only where it can match.
        let prefixes = if self.by_prefix.is_empty() {
            0
        } else {
            text.len() + 1
        };
        let suffixes = if self.by_suffix.is_empty() {
            0
        } else {
            text.len()
        };
        let ends = (0..prefixes).map(|end| self.by_prefix.get(&text[..end]));
        let starts = (0..suffixes).map(|start| self.by_suffix.get(&text[start..]));
        for indexed in ends.chain(starts).flatten() {
            ids.extend(
                indexed
                    .iter()
                    .filter(|id| self.subscriptions[id].pattern.matches(name)),
            );
        }
        ids.sort();
        let mut changes = Vec::new();
        for id in ids {
            self.resolve_one(id, name, &mut changes);
        }
        changes
    }

    /// Brings one subscription's view of `name` up to date: `Dropped` of what it held,
    /// then `Available` of the nearest publication it sees, when they differ.
    fn resolve_one(&mut self, id: SubscriptionId, name: &Name, changes: &mut Vec<Change>) {
        let s = self
            .subscriptions
            .get_mut(&id)
            .expect("a live subscription");
        let nearest = self
            .by_name
            .get(name)
            .and_then(|entries| entries.first())
            .filter(|p| p.scope <= s.scope)
            .map(|p| (p.address, p.scope, p.shown));
        let held = s.holds.get(name).copied();
        if held.map(|(a, s, _)| (a, s)) == nearest.map(|(a, s, _)| (a, s)) {
            return;
        }
        if let (Some((a, _, shown)), Some((b, level, told))) = (held, nearest) {
            if (a, shown) == (b, told) {
                // The same publication, heard nearer or farther (a copy from another
                // directory): the subscriber holds it already, and is told nothing.
                s.holds.insert(name.clone(), (b, level, told));
                return;
            }
        }
        if let Some((address, _, shown)) = held {
            s.holds.remove(name);
            changes.push(Change::Dropped {
                to: s.owner,
                subscription: id,
                name: name.clone(),
                address,
                scope: shown,
            });
        }
        if let Some((address, level, shown)) = nearest {
            s.holds.insert(name.clone(), (address, level, shown));
            changes.push(Change::Available {
                to: s.owner,
                subscription: id,
                name: name.clone(),
                address,
                scope: shown,
            });
        }
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use proptest::prelude::*;

    use super::*;

    fn name(s: &str) -> Name {
        Name::new(s).unwrap()
    }

    fn at(n: u64) -> Address {
        Address::from_parts(7, n)
    }

    fn publication(n: &str, scope: Scope, object: u64, incarnation: Incarnation) -> Publication {
        // `shown` is `scope`: the rules are the same whichever is told.
        Publication {
            name: name(n),
            scope,
            shown: scope,
            address: at(object),
            owner: at(object),
            incarnation,
        }
    }

    /// What each change says, shortly: `+name@object` or `-name@object`.
    fn said(changes: &[Change]) -> Vec<String> {
        changes
            .iter()
            .map(|c| match c {
                Change::Available { name, address, .. } => format!("+{name}@{}", address.object()),
                Change::Dropped { name, address, .. } => format!("-{name}@{}", address.object()),
            })
            .collect()
    }

    #[test]
    fn any_start_order_gives_the_subscriber_the_name() {
        let mut l = Listing::new();
        let (_, now) = l.subscribe(at(1), 1, Pattern::new("svc").unwrap(), Scope::Host);
        assert!(now.is_empty());
        let changes = l.publish(publication("svc", Scope::Host, 10, 2)).unwrap();
        assert_eq!(said(&changes), ["+svc@10"]);

        let mut l = Listing::new();
        l.publish(publication("svc", Scope::Host, 10, 2)).unwrap();
        let (_, now) = l.subscribe(at(1), 1, Pattern::new("svc").unwrap(), Scope::Host);
        assert_eq!(said(&now), ["+svc@10"]);
    }

    #[test]
    fn a_name_is_unique_within_its_scope_and_the_refusal_names_the_holder() {
        let mut l = Listing::new();
        l.publish(publication("svc", Scope::Host, 10, 2)).unwrap();
        let e = l
            .publish(publication("svc", Scope::Host, 11, 3))
            .unwrap_err();
        assert_eq!(
            e,
            Refusal::Taken {
                name: name("svc"),
                scope: Scope::Host,
                holder: at(10)
            }
        );
        assert!(e.to_string().contains("already published at host scope"));
        // The same publication again is no change; another scope is another name.
        assert_eq!(
            l.publish(publication("svc", Scope::Host, 10, 2)),
            Ok(vec![])
        );
        assert!(l.publish(publication("svc", Scope::Process, 11, 3)).is_ok());
    }

    #[test]
    fn the_nearest_wins_and_the_subscriber_falls_back_and_upgrades_dropped_first() {
        let mut l = Listing::new();
        l.subscribe(at(1), 1, Pattern::new("svc").unwrap(), Scope::Host);
        let host = l.publish(publication("svc", Scope::Host, 30, 3)).unwrap();
        assert_eq!(said(&host), ["+svc@30"]);
        // A nearer one comes: the wider one is dropped first.
        let group = l.publish(publication("svc", Scope::Group, 20, 2)).unwrap();
        assert_eq!(said(&group), ["-svc@30", "+svc@20"]);
        let process = l
            .publish(publication("svc", Scope::Process, 10, 1))
            .unwrap();
        assert_eq!(said(&process), ["-svc@20", "+svc@10"]);
        // A wider one that is not the nearest is no change to the subscriber.
        assert!(l.withdraw(&name("svc"), Scope::Group, at(20)).is_empty());
        // The nearest goes: fall back to the host one.
        let lost = l.end_owner(at(10));
        assert_eq!(said(&lost), ["-svc@10", "+svc@30"]);
        let gone = l.end_incarnation(3);
        assert_eq!(said(&gone), ["-svc@30"]);
    }

    #[test]
    fn a_subscription_sees_only_publications_of_its_scope_or_nearer() {
        let mut l = Listing::new();
        l.publish(publication("svc", Scope::Host, 30, 3)).unwrap();
        let (_, now) = l.subscribe(at(1), 1, Pattern::new("svc").unwrap(), Scope::Group);
        assert!(
            now.is_empty(),
            "a host publication is beyond a group subscription"
        );
        let group = l.publish(publication("svc", Scope::Group, 20, 2)).unwrap();
        assert_eq!(said(&group), ["+svc@20"]);
        // With the group one gone, nothing is left in reach.
        assert_eq!(said(&l.end_owner(at(20))), ["-svc@20"]);
    }

    #[test]
    fn patterns_match_many_names_and_an_ended_object_takes_its_listings_along() {
        let mut l = Listing::new();
        for w in 1..=3 {
            l.publish(publication(
                &format!("texture:worker:{w}"),
                Scope::Host,
                w,
                w,
            ))
            .unwrap();
        }
        l.publish(publication("texture:server", Scope::Host, 9, 9))
            .unwrap();
        let (id, now) = l.subscribe(
            at(100),
            100,
            Pattern::new("texture:worker:.*").unwrap(),
            Scope::Host,
        );
        let mut seen = said(&now);
        seen.sort();
        assert_eq!(
            seen,
            [
                "+texture:worker:1@1",
                "+texture:worker:2@2",
                "+texture:worker:3@3"
            ]
        );
        assert_eq!(said(&l.end_incarnation(2)), ["-texture:worker:2@2"]);
        // The subscriber ends: its subscription goes; publishers are not told anything.
        assert_eq!(l.subscriptions_of(at(100)), vec![id]);
        assert!(l.end_owner(at(100)).is_empty());
        assert_eq!(l.subscription_count(), 0);
        assert!(l
            .publish(publication("texture:worker:4", Scope::Host, 4, 4))
            .unwrap()
            .is_empty());
    }

    #[test]
    fn the_same_publication_heard_nearer_changes_nothing_for_its_subscriber() {
        let mut l = Listing::new();
        let (_, now) = l.subscribe(at(1), 1, Pattern::new("svc:.*").unwrap(), Scope::Host);
        assert!(now.is_empty());
        // Heard from the host's directory first, then the same object's publication from
        // the group's (nearer): one Available, no Dropped in between.
        let far = Publication {
            scope: Scope::Host,
            ..publication("svc:a", Scope::Host, 10, 2)
        };
        let near = Publication {
            scope: Scope::Group,
            ..far.clone()
        };
        assert_eq!(said(&l.publish(far).unwrap()), ["+svc:a@10"]);
        assert!(l.publish(near).unwrap().is_empty());
        // The nearer copy goes: the farther still stands, and nothing is said.
        assert!(l.withdraw(&name("svc:a"), Scope::Group, at(10)).is_empty());
        // The last copy goes: Dropped.
        assert_eq!(
            said(&l.withdraw(&name("svc:a"), Scope::Host, at(10))),
            ["-svc:a@10"]
        );
    }

    /// One operation of the property test.
    #[derive(Debug, Clone)]
    enum Op {
        Publish(usize, Scope, u64),
        Withdraw(usize, Scope, u64),
        /// An owner, which pattern of [`PATTERNS`], a scope.
        Subscribe(u64, usize, Scope),
        EndOwner(u64),
    }

    const NAMES: [&str; 3] = ["a:x", "a:y", "b:x"];

    /// A plain name, a pattern indexed by its start, one indexed by its end.
    const PATTERNS: [&str; 3] = ["a:x", "a:.*", "[ab]:x"];

    fn op() -> impl Strategy<Value = Op> {
        let scope = prop_oneof![Just(Scope::Process), Just(Scope::Group), Just(Scope::Host)];
        prop_oneof![
            (0..3usize, scope.clone(), 1..6u64).prop_map(|(n, s, o)| Op::Publish(n, s, o)),
            (0..3usize, scope.clone(), 1..6u64).prop_map(|(n, s, o)| Op::Withdraw(n, s, o)),
            (10..13u64, 0..3usize, scope).prop_map(|(o, p, s)| Op::Subscribe(o, p, s)),
            (1..13u64).prop_map(Op::EndOwner),
        ]
    }

    proptest! {
        /// Whatever the order of operations, what each subscriber was told adds up to
        /// the nearest publication it sees, and it never holds two of one name.
        #[test]
        fn what_subscribers_hear_adds_up_to_the_nearest_publication(ops in prop::collection::vec(op(), 1..60)) {
            let mut l = Listing::new();
            // What each subscription holds, rebuilt from the changes alone.
            let mut held: BTreeMap<(SubscriptionId, Name), (Address, Scope)> = BTreeMap::new();
            let mut subs: Vec<(SubscriptionId, u64, usize, Scope)> = Vec::new();
            let apply = |changes: Vec<Change>, held: &mut BTreeMap<_, _>| {
                for c in changes {
                    match c {
                        Change::Available { subscription, name, address, scope, .. } => {
                            let before = held.insert((subscription, name), (address, scope));
                            prop_assert!(before.is_none(), "Available without Dropped first");
                        }
                        Change::Dropped { subscription, name, address, scope, .. } => {
                            let before = held.remove(&(subscription, name));
                            prop_assert_eq!(before, Some((address, scope)), "Dropped what was not held");
                        }
                    }
                }
                Ok(())
            };
            for op in ops {
                match op {
                    Op::Publish(n, s, o) => {
                        if let Ok(c) = l.publish(publication(NAMES[n], s, o, o)) {
                            apply(c, &mut held)?;
                        }
                    }
                    Op::Withdraw(n, s, o) => apply(l.withdraw(&name(NAMES[n]), s, at(o)), &mut held)?,
                    Op::Subscribe(o, p, s) => {
                        let (id, c) = l.subscribe(at(o), o, Pattern::new(PATTERNS[p]).unwrap(), s);
                        subs.push((id, o, p, s));
                        apply(c, &mut held)?;
                    }
                    Op::EndOwner(o) => {
                        subs.retain(|(_, owner, _, _)| *owner != o);
                        held.retain(|(id, _), _| subs.iter().any(|(i, ..)| i == id));
                        apply(l.end_owner(at(o)), &mut held)?;
                    }
                }
            }
            // From scratch: each live subscription's nearest publication of each name.
            let mut want = BTreeMap::new();
            for (id, _, p, scope) in &subs {
                for n in NAMES {
                    let matches = match p {
                        0 => n == "a:x",
                        1 => n.starts_with("a:"),
                        _ => n.ends_with(":x"),
                    };
                    let nearest = l
                        .publications()
                        .filter(|p| p.name.as_str() == n && p.scope <= *scope)
                        .min_by_key(|p| p.scope);
                    if let (true, Some(p)) = (matches, nearest) {
                        want.insert((*id, name(n)), (p.address, p.scope));
                    }
                }
            }
            prop_assert_eq!(held, want);
        }
    }
}
