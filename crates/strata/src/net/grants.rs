//! Grants: the addresses a link gave its peer, which are all the peer may send to.
//!
//! A peer learns an address only by being given it: this end's owner in HELLO, the sender
//! of every message sent on the link (where replies go), every address inside those
//! messages (noted while they are encoded), and the sender of every frame relayed to it.
//! The link's reader delivers a message from the peer only to a granted address, and
//! relays one to a third node only when the receiver's address was granted too (the
//! relaying node introduced it). Anything else is refused, counted, and after a bound
//! closes the link: guessing object numbers (which are not sequential either) gets a peer
//! nothing.
//!
//! Grants are kept while they can be used: when the set has doubled since it was last
//! pruned, addresses of local objects that have ended, and of nodes no longer reachable,
//! are dropped (amortised constant work per grant; a message to an ended object is
//! undeliverable anyway). A grant repeated from one message to the next (the common case:
//! one sender talking a lot) costs a comparison.

use std::collections::HashSet;

use super::routes::routes;
use crate::address::{local_node, BuildAddressHasher};
use crate::runtime::node;
use crate::Address;

/// The set is pruned when it has doubled since the last pruning, and never below this.
const PRUNE_FLOOR: usize = 1024;

/// The addresses given to one link's peer (see the module doc).
pub(crate) struct Grants {
    given: HashSet<Address, BuildAddressHasher>,
    /// The last address given: repeats stop here.
    last: Address,
    prune_at: usize,
}

impl Default for Grants {
    fn default() -> Self {
        Grants {
            given: HashSet::default(),
            last: Address::NULL,
            prune_at: PRUNE_FLOOR,
        }
    }
}

impl Grants {
    /// Notes that `address` went to the peer.
    #[inline]
    pub(crate) fn give(&mut self, address: Address) {
        if address != self.last && !address.is_null() {
            self.give_new(address);
        }
    }

    fn give_new(&mut self, address: Address) {
        self.last = address;
        if self.given.insert(address) && self.given.len() >= self.prune_at {
            self.prune();
        }
    }

    /// True when `address` went to the peer.
    pub(crate) fn holds(&self, address: Address) -> bool {
        address == self.last || self.given.contains(&address)
    }

    /// Drops grants nobody can use any more: local objects that ended, nodes with no route.
    fn prune(&mut self) {
        let here = local_node();
        let routes = routes();
        self.given.retain(|a| {
            if a.node() == here {
                node().is_live(a.object())
            } else {
                routes.link_id(a.node()).is_some()
            }
        });
        self.prune_at = (2 * self.given.len()).max(PRUNE_FLOOR);
    }

    /// How many addresses are granted.
    #[cfg(test)]
    pub(crate) fn len(&self) -> usize {
        self.given.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_what_was_given_is_held_and_ended_objects_are_pruned() {
        let mut g = Grants::default();
        let live = crate::object::ThreadContext::attach();
        g.give(live.address());
        let stranger = Address::from_parts(local_node(), 12_345);
        assert!(g.holds(live.address()));
        assert!(!g.holds(stranger));
        // Ended local objects (never registered here) go at the next pruning; the live one stays.
        for n in 0..(PRUNE_FLOOR as u64) {
            g.give(Address::from_parts(local_node(), 1_000_000 + n));
        }
        assert!(g.len() < PRUNE_FLOOR, "pruned to {}", g.len());
        assert!(g.holds(live.address()));
        assert!(!g.holds(Address::from_parts(local_node(), 1_000_001)));
    }
}
