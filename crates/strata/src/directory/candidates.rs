//! What a process directory heard from the wider directories it joined: per name and
//! scope, the publications its wants matched there (the *candidates*), and which one of
//! them its own listing holds. Pure, like the listing: each operation returns the
//! [`Action`]s to apply to the process's listing.
//!
//! - Several of the process's wants may bring the same candidate; it stays while one of
//!   them holds it.
//! - At most one candidate per name and scope is *listed*, and only one whose process is
//!   reachable over a direct link (a session, made for it or reused): a subscriber never
//!   gets an address it cannot send to.
//! - After the process joins a directory again (it went away and came back), what it
//!   heard before is kept but unconfirmed; what the directory says again confirms it, and
//!   what stays unconfirmed is pruned later. Subscribers see only the difference.

use std::collections::{HashMap, HashSet};

use super::name::{Name, Scope};
use crate::Address;

/// A change to make to the process's listing.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Action {
    /// Publish `address` as `name` at `scope` in the listing (on behalf of its process).
    List {
        name: Name,
        /// The scope of the directory it came from (how near it is).
        scope: Scope,
        /// How far it is seen (what subscribers are told).
        shown: Scope,
        address: Address,
    },
    /// Withdraw what was listed.
    Delist {
        name: Name,
        scope: Scope,
        address: Address,
    },
}

struct Candidate {
    address: Address,
    shown: Scope,
    endpoint: Option<String>,
    /// The wants that brought it.
    by: HashSet<u64>,
    listed: bool,
}

/// The candidates (see the module doc).
#[derive(Default)]
pub(crate) struct Candidates {
    by_key: HashMap<(Name, Scope), Vec<Candidate>>,
}

impl Candidates {
    /// Want `id` brought `address` as `name` at `scope`.
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn available(
        &mut self,
        id: u64,
        name: Name,
        scope: Scope,
        shown: Scope,
        address: Address,
        endpoint: Option<String>,
        reachable: &dyn Fn(u64) -> bool,
    ) -> Vec<Action> {
        let key = (name, scope);
        let list = self.by_key.entry(key.clone()).or_default();
        match list.iter_mut().find(|c| c.address == address) {
            Some(c) => {
                c.by.insert(id);
                if endpoint.is_some() {
                    c.endpoint = endpoint;
                }
            }
            None => list.push(Candidate {
                address,
                shown,
                endpoint,
                by: HashSet::from([id]),
                listed: false,
            }),
        }
        self.settle(&key, reachable)
    }

    /// Want `id` no longer brings `address` as `name` at `scope`.
    pub(crate) fn dropped(
        &mut self,
        id: u64,
        name: Name,
        scope: Scope,
        address: Address,
        reachable: &dyn Fn(u64) -> bool,
    ) -> Vec<Action> {
        let key = (name, scope);
        let mut gone = false;
        if let Some(list) = self.by_key.get_mut(&key) {
            if let Some(at) = list.iter().position(|c| c.address == address) {
                list[at].by.remove(&id);
                gone = list[at].by.is_empty();
            }
        }
        if !gone {
            return Vec::new();
        }
        // The publication is gone: the copies other directories sent of it go too (their
        // own `Dropped` is on the way), so no subscriber falls back to one of them.
        self.forget(&key.0, address, reachable)
    }

    /// `address` no longer publishes `name` (as heard from one directory, or because it
    /// is this process's own and was withdrawn): every copy of it goes, at every scope.
    pub(crate) fn forget(
        &mut self,
        name: &Name,
        address: Address,
        reachable: &dyn Fn(u64) -> bool,
    ) -> Vec<Action> {
        // One lookup per scope, nearest first.
        let keys: Vec<(Name, Scope)> = [Scope::Process, Scope::Group, Scope::Host, Scope::Lan]
            .into_iter()
            .map(|scope| (name.clone(), scope))
            .filter(|k| {
                self.by_key
                    .get(k)
                    .is_some_and(|list| list.iter().any(|c| c.address == address))
            })
            .collect();
        let mut actions = Vec::new();
        // Farthest first: the copy a subscriber holds (the nearest) goes last, so none
        // of the others is offered in its place meanwhile.
        for key in keys.iter().rev() {
            let list = self.by_key.get_mut(key).expect("a key just listed");
            let at = list
                .iter()
                .position(|c| c.address == address)
                .expect("a copy just found");
            if list.remove(at).listed {
                actions.push(delist(key, address));
            }
        }
        for key in &keys {
            actions.extend(self.settle(key, reachable));
        }
        actions
    }

    /// Want `id` ended: whatever only it brought goes.
    pub(crate) fn unwant(&mut self, id: u64, reachable: &dyn Fn(u64) -> bool) -> Vec<Action> {
        let brought: Vec<((Name, Scope), Address)> = self
            .by_key
            .iter()
            .flat_map(|(k, list)| {
                list.iter()
                    .filter(|c| c.by.contains(&id))
                    .map(move |c| (k.clone(), c.address))
            })
            .collect();
        let mut actions = Vec::new();
        for ((name, scope), address) in brought {
            actions.extend(self.dropped(id, name, scope, address, reachable));
        }
        actions
    }

    /// Everything heard from the directory of `scope` becomes unconfirmed (it is being
    /// joined again); [`prune`](Self::prune) later removes what was not heard again.
    pub(crate) fn unconfirm(&mut self, scope: Scope) {
        for ((_, s), list) in self.by_key.iter_mut() {
            if *s == scope {
                for c in list {
                    c.by.clear();
                }
            }
        }
    }

    /// Removes the candidates of `scope` that no want confirmed.
    pub(crate) fn prune(&mut self, scope: Scope, reachable: &dyn Fn(u64) -> bool) -> Vec<Action> {
        let keys: Vec<(Name, Scope)> = self
            .by_key
            .keys()
            .filter(|(_, s)| *s == scope)
            .cloned()
            .collect();
        let mut actions = Vec::new();
        for key in keys {
            let list = self.by_key.get_mut(&key).expect("a key just listed");
            list.retain(|c| {
                let keep = !c.by.is_empty();
                if !keep && c.listed {
                    actions.push(delist(&key, c.address));
                }
                keep
            });
            actions.extend(self.settle(&key, reachable));
        }
        actions
    }

    /// The process `node` can be reached now: list what waited for it.
    pub(crate) fn reached(&mut self, node: u64, reachable: &dyn Fn(u64) -> bool) -> Vec<Action> {
        let keys: Vec<(Name, Scope)> = self
            .by_key
            .iter()
            .filter(|(_, list)| list.iter().any(|c| c.address.node() == node))
            .map(|(k, _)| k.clone())
            .collect();
        keys.iter()
            .flat_map(|k| self.settle(k, reachable))
            .collect()
    }

    /// The link to process `node` is gone: what was listed from it is withdrawn (and
    /// another candidate listed in its place, if one can be reached). The candidates
    /// stay, unlisted, until their directory drops them.
    pub(crate) fn lost(&mut self, node: u64, reachable: &dyn Fn(u64) -> bool) -> Vec<Action> {
        let mut actions = Vec::new();
        let keys: Vec<(Name, Scope)> = self.by_key.keys().cloned().collect();
        for key in keys {
            let list = self.by_key.get_mut(&key).expect("a key just listed");
            for c in list.iter_mut() {
                if c.address.node() == node && c.listed {
                    c.listed = false;
                    actions.push(delist(&key, c.address));
                }
            }
            actions.extend(self.settle(&key, &|n| n != node && reachable(n)));
        }
        actions
    }

    /// The processes that candidates wait for, with where to reach them.
    pub(crate) fn waiting(&self, reachable: &dyn Fn(u64) -> bool) -> Vec<(u64, String)> {
        let mut nodes: Vec<(u64, String)> = Vec::new();
        for list in self.by_key.values() {
            for c in list {
                let node = c.address.node();
                if !c.listed && !reachable(node) && !nodes.iter().any(|(n, _)| *n == node) {
                    if let Some(e) = &c.endpoint {
                        nodes.push((node, e.clone()));
                    }
                }
            }
        }
        nodes
    }

    /// Lists the first reachable candidate of `key` when none is listed.
    fn settle(&mut self, key: &(Name, Scope), reachable: &dyn Fn(u64) -> bool) -> Vec<Action> {
        let Some(list) = self.by_key.get_mut(key) else {
            return Vec::new();
        };
        if list.is_empty() {
            self.by_key.remove(key);
            return Vec::new();
        }
        if list.iter().any(|c| c.listed) {
            return Vec::new();
        }
        match list.iter_mut().find(|c| reachable(c.address.node())) {
            Some(c) => {
                c.listed = true;
                vec![Action::List {
                    name: key.0.clone(),
                    scope: key.1,
                    shown: c.shown,
                    address: c.address,
                }]
            }
            None => Vec::new(),
        }
    }
}

fn delist(key: &(Name, Scope), address: Address) -> Action {
    Action::Delist {
        name: key.0.clone(),
        scope: key.1,
        address,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn name(s: &str) -> Name {
        Name::new(s).unwrap()
    }
    fn at(node: u64) -> Address {
        Address::from_parts(node, 7)
    }
    const ALL: &dyn Fn(u64) -> bool = &|_| true;

    #[test]
    fn a_candidate_stays_while_one_want_holds_it() {
        let mut c = Candidates::default();
        let listed = c.available(1, name("a"), Scope::Host, Scope::Host, at(2), None, ALL);
        assert_eq!(listed.len(), 1);
        assert!(c
            .available(2, name("a"), Scope::Host, Scope::Host, at(2), None, ALL)
            .is_empty());
        assert!(c.dropped(1, name("a"), Scope::Host, at(2), ALL).is_empty());
        let gone = c.unwant(2, ALL);
        assert!(
            matches!(gone.as_slice(), [Action::Delist { .. }]),
            "{gone:?}"
        );
    }

    #[test]
    fn only_reachable_candidates_are_listed_and_a_lost_node_gives_way() {
        let mut c = Candidates::default();
        let none: &dyn Fn(u64) -> bool = &|_| false;
        assert!(c
            .available(
                1,
                name("a"),
                Scope::Host,
                Scope::Host,
                at(2),
                Some("e2".into()),
                none
            )
            .is_empty());
        assert_eq!(c.waiting(none), vec![(2, "e2".to_string())]);
        assert_eq!(c.reached(2, ALL).len(), 1);
        // A second candidate for the name (its directory moved it) waits behind the first.
        assert!(c
            .available(1, name("a"), Scope::Host, Scope::Host, at(3), None, ALL)
            .is_empty());
        let actions = c.lost(2, ALL);
        assert_eq!(
            actions,
            vec![
                Action::Delist {
                    name: name("a"),
                    scope: Scope::Host,
                    address: at(2)
                },
                Action::List {
                    name: name("a"),
                    scope: Scope::Host,
                    shown: Scope::Host,
                    address: at(3)
                },
            ]
        );
    }

    #[test]
    fn a_publication_dropped_by_one_directory_goes_at_every_scope() {
        let mut c = Candidates::default();
        // The same publication, heard from the group's and the host's directory.
        let listed = c.available(1, name("a"), Scope::Group, Scope::Host, at(2), None, ALL);
        assert_eq!(listed.len(), 1);
        // Listed at both scopes: the process's listing gives subscribers the nearest.
        let listed = c.available(1, name("a"), Scope::Host, Scope::Host, at(2), None, ALL);
        assert_eq!(listed.len(), 1);
        // The group's says it went: the host's copy goes first, so it is never offered
        // in its place.
        let actions = c.dropped(1, name("a"), Scope::Group, at(2), ALL);
        let delist = |scope| Action::Delist {
            name: name("a"),
            scope,
            address: at(2),
        };
        assert_eq!(actions, vec![delist(Scope::Host), delist(Scope::Group)]);
        assert!(c.dropped(1, name("a"), Scope::Host, at(2), ALL).is_empty());
    }

    #[test]
    fn joining_again_prunes_only_what_was_not_heard_again() {
        let mut c = Candidates::default();
        c.available(1, name("a"), Scope::Host, Scope::Host, at(2), None, ALL);
        c.available(1, name("b"), Scope::Host, Scope::Host, at(3), None, ALL);
        c.available(1, name("g"), Scope::Group, Scope::Group, at(4), None, ALL);
        c.unconfirm(Scope::Host);
        assert!(c
            .available(1, name("a"), Scope::Host, Scope::Host, at(2), None, ALL)
            .is_empty());
        let pruned = c.prune(Scope::Host, ALL);
        assert_eq!(
            pruned,
            vec![Action::Delist {
                name: name("b"),
                scope: Scope::Host,
                address: at(3)
            }]
        );
        assert!(c.prune(Scope::Group, ALL).is_empty());
    }
}
