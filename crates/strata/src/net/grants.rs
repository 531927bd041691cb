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
//!
//! Two more ways to reach an address, both the directory's:
//! - a link may be given addresses from the start (`LinkSettings::grants`), besides this
//!   end's owner;
//! - this process may make addresses *public* ([`make_public`]): a link whose settings
//!   allow it (`LinkSettings::reach_public`) lets its peer send to them too. The set is
//!   process-wide and checked only on a grant miss; while it is empty the check is one
//!   atomic load.

use std::collections::HashSet;
use std::sync::atomic::{AtomicUsize, Ordering};

use parking_lot::RwLock;

use super::routes::routes;
use crate::address::{local_node, BuildAddressHasher};
use crate::runtime::node;
use crate::Address;

/// The addresses this process made public, and how many there are (read first, so an
/// empty set costs no lock).
struct Public {
    set: RwLock<HashSet<Address, BuildAddressHasher>>,
    count: AtomicUsize,
}

static PUBLIC: Public = Public {
    set: RwLock::new(HashSet::with_hasher(BuildAddressHasher::new())),
    count: AtomicUsize::new(0),
};

fn public() -> &'static Public {
    &PUBLIC
}

/// Makes `address` public: the peers of links with `reach_public` may send to it (see
/// the module doc). Until [`make_private`].
#[cfg_attr(not(test), allow(dead_code))] // the directory's (publications)
pub(crate) fn make_public(address: Address) {
    let p = public();
    let mut set = p.set.write();
    set.insert(address);
    p.count.store(set.len(), Ordering::Release);
}

/// Ends [`make_public`] for `address`: reached only through grants again.
#[cfg_attr(not(test), allow(dead_code))] // the directory's (withdrawals)
pub(crate) fn make_private(address: Address) {
    let p = public();
    let mut set = p.set.write();
    set.remove(&address);
    p.count.store(set.len(), Ordering::Release);
}

/// True when `address` was made public (one atomic load while nothing is).
#[inline]
pub(crate) fn is_public(address: Address) -> bool {
    let p = public();
    p.count.load(Ordering::Acquire) > 0 && p.set.read().contains(&address)
}

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

    #[test]
    fn an_address_is_public_from_make_public_to_make_private() {
        let a = Address::from_parts(local_node(), 77_001);
        let b = Address::from_parts(local_node(), 77_002);
        assert!(!is_public(a));
        make_public(a);
        make_public(a);
        assert!(is_public(a));
        assert!(!is_public(b));
        make_private(a);
        assert!(
            !is_public(a),
            "one make_private undoes any number of make_public"
        );
    }
}
