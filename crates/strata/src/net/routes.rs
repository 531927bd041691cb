//! The route table: which link leads to which node. It is the runtime's `Router`.
//!
//! Direct routes come from each link's HELLO; indirect ones are *learned* from the
//! addresses decoded on a link (a node named in a message arriving on a link is reachable
//! through it). A direct route is never replaced by a learned one, nor by a second link
//! whose HELLO claims the same node (that link is refused: it could otherwise take over the
//! node's replies). The table is
//! process-wide and installed as the runtime's router on first use ([`routes`]).

use std::collections::HashMap;
use std::sync::{Arc, OnceLock};

use parking_lot::RwLock;

use super::outbox::{LinkTx, Outgoing};
use crate::address::local_node;
use crate::runtime::{self, node, Envelope, Router, SendError};

/// The node-to-link table; it is the runtime's [`Router`].
#[derive(Default)]
pub(crate) struct Routes {
    by_node: RwLock<HashMap<u64, (Arc<LinkTx>, bool)>>,
}

impl Routes {
    /// Routes `node` directly through `link`, unless it has a direct route already (a live
    /// link whose HELLO named it): false then, and nothing changes. A learned route is
    /// replaced.
    pub(crate) fn add_direct(&self, node: u64, link: &Arc<LinkTx>) -> bool {
        let mut map = self.by_node.write();
        if matches!(map.get(&node), Some((_, true))) {
            return false;
        }
        map.insert(node, (link.clone(), true));
        true
    }

    /// Notes that `node` is reachable through `link`, unless it is this node or already
    /// has a route.
    pub(crate) fn learn(&self, node: u64, link: &Arc<LinkTx>) {
        if node == 0 || node == local_node() || self.by_node.read().contains_key(&node) {
            return;
        }
        self.by_node
            .write()
            .entry(node)
            .or_insert_with(|| (link.clone(), false));
    }

    /// Forgets every route through the link `id`.
    pub(crate) fn remove_link(&self, id: u64) {
        self.by_node.write().retain(|_, (l, _)| l.id != id);
    }

    /// The link leading to `node`.
    pub(crate) fn get(&self, node: u64) -> Option<Arc<LinkTx>> {
        self.by_node.read().get(&node).map(|(l, _)| l.clone())
    }

    /// Every node this process has a route to, and whether the route is direct.
    pub(crate) fn snapshot(&self) -> Vec<(u64, bool)> {
        self.by_node
            .read()
            .iter()
            .map(|(n, (_, d))| (*n, *d))
            .collect()
    }
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
