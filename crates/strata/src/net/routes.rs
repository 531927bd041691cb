//! The route table: which link leads to which node. It is the runtime's `Router`.
//!
//! Direct routes come from each link's HELLO; indirect ones are *learned* from the
//! addresses decoded on a link (a node named in a message arriving on a link is reachable
//! through it), at most [`MAX_LEARNED_PER_LINK`] per link. A direct route is never
//! replaced by a learned one, nor by a second link whose HELLO claims the same node (that
//! link is refused: it could otherwise take over the node's replies). Every route to a node
//! is kept, the one in use first, so when a link closes the node falls back on the next.
//! The table is process-wide and installed as the runtime's router on first use
//! ([`routes`]).
//!
//! It also keeps the *watches* of remote addresses (`Core::watch` on an address of
//! another node): per link, the (watched address, watcher) pairs that were routed through
//! it when the watch began. When the link's routes are removed ([`Routes::remove_link`]),
//! each watcher is told with `Ended`: the link ended, which is all this process can know
//! of the remote object.

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, OnceLock};

use parking_lot::RwLock;

use super::outbox::{LinkTx, Outgoing};
use crate::address::{local_node, BuildAddressHasher};
use crate::runtime::{self, node, Envelope, Router, SendError};
use crate::Address;

/// The most routes one link may teach this node (nodes named in what arrives on it).
pub(crate) const MAX_LEARNED_PER_LINK: usize = 1024;

/// The most node ids remembered with the static key that proved them.
const MAX_BOUND_KEYS: usize = 4096;

/// The node-to-link table; it is the runtime's [`Router`].
#[derive(Default)]
pub(crate) struct Routes {
    /// Every route known to each node, the one in use first: the direct route (at most
    /// one), then learned ones in the order they were learned. When a link closes its
    /// routes go, and the next one in line takes over.
    by_node: RwLock<HashMap<u64, Vec<Route>>>,
    /// Node ids claimed over links with static keys, with the key that claimed each: a
    /// later link may claim the id only with the same key, also after the first closed
    /// (the oldest bindings are forgotten past [`MAX_BOUND_KEYS`]).
    keys: parking_lot::Mutex<BoundKeys>,
    /// Per link id, the (watched address, watcher) pairs told when it closes. Locked
    /// after `by_node` (never before), so a watch and a link's removal are ordered.
    watches: parking_lot::Mutex<HashMap<u64, Watches>>,
}

/// One link's watches: (watched address, watcher) pairs, pruned of ended watchers when
/// the set has doubled since it was last pruned.
struct Watches {
    pairs: HashSet<(Address, Address), BuildAddressHasher>,
    prune_at: usize,
}

/// A link's set of watches is pruned of ended watchers from this size on.
const PRUNE_WATCHES_FROM: usize = 1024;

/// Node ids with the static key that proved each, and the order they were bound in.
type BoundKeys = (HashMap<u64, [u8; 32]>, std::collections::VecDeque<u64>);

struct Route {
    link: Arc<LinkTx>,
    direct: bool,
}

impl Routes {
    /// Routes `node` directly through `link`, unless it has a direct route already (a live
    /// link whose HELLO named it): refused then, and nothing changes. A learned route gives
    /// way (it stays behind as a fallback). With `key` (the static key the peer proved in
    /// the handshake), the node id is bound to that key: a link claiming the id with
    /// another key is refused, now or after this one closes.
    pub(crate) fn add_proven(
        &self,
        node: u64,
        key: Option<[u8; 32]>,
        link: &Arc<LinkTx>,
    ) -> Result<(), Refused> {
        if let Some(key) = key {
            let mut keys = self.keys.lock();
            let (bound, order) = &mut *keys;
            match bound.get(&node) {
                Some(k) if *k != key => return Err(Refused::BoundToAnotherKey),
                Some(_) => {}
                None => {
                    if order.len() >= MAX_BOUND_KEYS {
                        if let Some(oldest) = order.pop_front() {
                            bound.remove(&oldest);
                        }
                    }
                    bound.insert(node, key);
                    order.push_back(node);
                }
            }
        }
        if self.add_direct_route(node, link) {
            Ok(())
        } else {
            Err(Refused::Taken)
        }
    }

    fn add_direct_route(&self, node: u64, link: &Arc<LinkTx>) -> bool {
        let mut map = self.by_node.write();
        let routes = map.entry(node).or_default();
        if routes.first().is_some_and(|r| r.direct) {
            return false;
        }
        routes.insert(
            0,
            Route {
                link: link.clone(),
                direct: true,
            },
        );
        true
    }

    /// Notes that `node` is reachable through `link`, unless it is this node, or `link`
    /// is a route to it already, or `link` has taught [`MAX_LEARNED_PER_LINK`] routes.
    /// A route learned while the node has one is kept as a fallback.
    pub(crate) fn learn(&self, node: u64, link: &Arc<LinkTx>) {
        if node == 0 || node == local_node() {
            return;
        }
        let through = |routes: &Vec<Route>| routes.iter().any(|r| r.link.id == link.id);
        if self.by_node.read().get(&node).is_some_and(through) {
            return;
        }
        let mut map = self.by_node.write();
        let routes = map.entry(node).or_default();
        if through(routes) || !link.learned_one_more() {
            return;
        }
        routes.push(Route {
            link: link.clone(),
            direct: false,
        });
    }

    /// Forgets every route through the link `id`; nodes it led to fall back on their next
    /// route, if any. The watches made through it are told: each watcher receives
    /// `Ended` from the address it watched.
    pub(crate) fn remove_link(&self, id: u64) {
        let watches = {
            let mut map = self.by_node.write();
            map.retain(|_, routes| {
                routes.retain(|r| r.link.id != id);
                !routes.is_empty()
            });
            // Taken while the routes are locked: a watch that found the link is in the
            // list now, and one that comes later finds no route through it.
            self.watches.lock().remove(&id)
        };
        for (target, watcher) in watches.into_iter().flat_map(|w| w.pairs) {
            runtime::tell_ended(target, watcher);
        }
    }

    /// Notes that `watcher` is told when the link now routing to `target`'s node closes;
    /// false when no route leads there.
    pub(crate) fn watch(&self, target: Address, watcher: Address) -> bool {
        let map = self.by_node.read();
        let Some(link) = map.get(&target.node()).and_then(|routes| routes.first()) else {
            return false;
        };
        let mut watches = self.watches.lock();
        let w = watches.entry(link.link.id).or_insert_with(|| Watches {
            pairs: HashSet::default(),
            prune_at: PRUNE_WATCHES_FROM,
        });
        if w.pairs.insert((target, watcher)) && w.pairs.len() >= w.prune_at {
            // Watchers are objects of this node; those that ended need no telling.
            w.pairs.retain(|(_, a)| node().is_live(a.object()));
            w.prune_at = (2 * w.pairs.len()).max(PRUNE_WATCHES_FROM);
        }
        true
    }

    /// How many watches are kept for the link `id`.
    #[cfg(test)]
    fn watches_on(&self, id: u64) -> usize {
        self.watches.lock().get(&id).map_or(0, |w| w.pairs.len())
    }

    /// The link leading to `node`.
    pub(crate) fn get(&self, node: u64) -> Option<Arc<LinkTx>> {
        self.by_node
            .read()
            .get(&node)
            .and_then(|routes| routes.first())
            .map(|r| r.link.clone())
    }

    /// The id of the link in use for `node`, without cloning it.
    pub(crate) fn link_id(&self, node: u64) -> Option<u64> {
        self.by_node
            .read()
            .get(&node)
            .and_then(|routes| routes.first())
            .map(|r| r.link.id)
    }

    /// Every node this process has a route to, and whether the route in use is direct.
    pub(crate) fn snapshot(&self) -> Vec<(u64, bool)> {
        self.by_node
            .read()
            .iter()
            .filter_map(|(n, routes)| routes.first().map(|r| (*n, r.direct)))
            .collect()
    }
}

/// Why a direct route was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Refused {
    /// The node has a live direct route.
    Taken,
    /// The node id was proved with another static key.
    BoundToAnotherKey,
}

impl Router for Routes {
    fn route(&self, envelope: Envelope) -> Result<(), SendError> {
        let to = envelope.to;
        let Some(link) = self.get(to.node()) else {
            node().stats().undeliverable();
            return Err(SendError::NoRoute {
                to,
                type_name: envelope.type_name(),
            });
        };
        let type_name = envelope.type_name();
        link.push(Outgoing::Message(envelope), true)
            .map_err(|_| SendError::Full {
                to,
                type_name,
                capacity: link.limit,
            })
    }

    fn watch(&self, target: Address, watcher: Address) -> bool {
        Routes::watch(self, target, watcher)
    }
}

/// The process-wide routes, installed as the runtime's router on first use.
pub(crate) fn routes() -> &'static Arc<Routes> {
    static ROUTES: OnceLock<Arc<Routes>> = OnceLock::new();
    ROUTES.get_or_init(|| {
        let routes = Arc::new(Routes::default());
        runtime::set_router(routes.clone());
        routes
    })
}

/// Nodes this process can reach over links, with `true` for direct ones.
pub fn reachable_nodes() -> Vec<(u64, bool)> {
    routes().snapshot()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::net::io::{LinkWrite, WritableWait};
    use crate::net::link::LinkSettings;
    use std::time::Duration;

    /// A socket that takes every byte (these tests look at routes, not at what is sent).
    struct Sink;

    impl LinkWrite for Sink {
        fn try_write_now(&self, buf: &[u8]) -> std::io::Result<usize> {
            Ok(buf.len())
        }
        fn writable(&self) -> WritableWait<'_> {
            Box::pin(async { Ok(()) })
        }
        fn shutdown_write(&self) {}
    }

    fn link(id: u64) -> Arc<LinkTx> {
        let owner = Address::from_parts(local_node(), 1);
        Arc::new(LinkTx::new(
            id,
            Arc::new(Sink),
            None,
            &LinkSettings::default(),
            owner,
        ))
    }

    #[test]
    fn a_direct_route_takes_over_and_the_node_falls_back_when_its_link_closes() {
        let routes = Routes::default();
        let (learned, direct, other) = (link(1), link(2), link(3));
        routes.learn(0xa, &learned);
        assert_eq!(routes.link_id(0xa), Some(1));
        assert_eq!(routes.add_proven(0xa, None, &direct), Ok(()));
        assert_eq!(routes.link_id(0xa), Some(2), "the proven route is used");
        assert_eq!(
            routes.add_proven(0xa, None, &other),
            Err(Refused::Taken),
            "a second direct route is refused"
        );
        routes.learn(0xa, &other);
        assert_eq!(routes.link_id(0xa), Some(2), "learning never replaces");
        routes.remove_link(2);
        assert_eq!(
            routes.link_id(0xa),
            Some(1),
            "falls back on the first learned"
        );
        routes.remove_link(1);
        assert_eq!(routes.link_id(0xa), Some(3));
        routes.remove_link(3);
        assert_eq!(routes.link_id(0xa), None);
        assert!(routes.snapshot().is_empty());
    }

    #[test]
    fn a_node_id_proved_with_a_static_key_is_bound_to_it() {
        let routes = Routes::default();
        let (first, impostor, again) = (link(1), link(2), link(3));
        assert_eq!(routes.add_proven(0xb, Some([1; 32]), &first), Ok(()));
        routes.remove_link(1);
        // The first link closed; the id still belongs to its key.
        assert_eq!(
            routes.add_proven(0xb, Some([2; 32]), &impostor),
            Err(Refused::BoundToAnotherKey)
        );
        assert_eq!(routes.link_id(0xb), None);
        assert_eq!(routes.add_proven(0xb, Some([1; 32]), &again), Ok(()));
        assert_eq!(routes.link_id(0xb), Some(3));
    }

    #[test]
    fn a_watch_is_told_when_the_link_routing_to_the_node_closes() {
        use crate::object::ThreadContext;
        use crate::standard::Ended;
        let routes = Routes::default();
        let mut cx = ThreadContext::attach();
        let me = cx.address();
        let (first, second) = (link(21), link(22));
        let far = Address::from_parts(0xc0de, 7);
        assert!(!routes.watch(far, me), "no route: the caller tells at once");
        routes.learn(0xc0de, &first);
        routes.learn(0xc0de, &second);
        assert!(routes.watch(far, me));
        assert!(routes.watch(far, me));
        assert_eq!(routes.watches_on(21), 1, "one entry per (target, watcher)");
        // The other link closing tells nothing: the watch is on the link in use.
        routes.remove_link(22);
        assert!(cx.try_recv().is_none());
        routes.remove_link(21);
        let e = cx.recv_timeout(Duration::from_secs(20)).expect("Ended");
        assert_eq!(e.sender(), far);
        assert_eq!(e.take::<Ended>().unwrap().address, far);
        assert!(cx.try_recv().is_none(), "told once");
        assert_eq!(routes.watches_on(21), 0);
    }

    #[test]
    fn one_link_teaches_a_bounded_number_of_routes() {
        let routes = Routes::default();
        let l = link(9);
        for n in 0..(MAX_LEARNED_PER_LINK as u64 + 100) {
            routes.learn(0x1_0000 + n, &l);
        }
        assert_eq!(routes.snapshot().len(), MAX_LEARNED_PER_LINK);
        routes.learn(local_node(), &l);
        assert_eq!(
            routes.link_id(local_node()),
            None,
            "never a route to this node"
        );
    }
}
