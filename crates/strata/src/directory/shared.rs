//! A directory shared by several processes: a group's (in the parent of a composite) or
//! the host's. One machine for both; it holds the publications of exactly its own scope,
//! and the subscriptions of its clients (process directories) that look that far.
//!
//! A client joins (`Join`, with its session endpoint), offers its objects' publications
//! (`Offer`, answered with the refusal if any), wants patterns (`Want`) and hears
//! `Candidate`s: every publication here that one of its wants matches, coming and going.
//! The client merges what it hears from each scope with its own and decides what its
//! subscribers hold (`process.rs`). A client that ends — its object ends, or the link it
//! came over closes — takes all its listings with it at once.
//!
//! Nothing a client says is trusted beyond its own node: it may publish only objects of
//! the node it sends from, and its patterns and names are checked as they decode. Each
//! client is held to limits: publications and subscriptions held, and at the LAN the rate
//! of its offers (a token bucket: a burst of [`OFFER_BURST`], then
//! [`OFFERS_PER_SECOND`]).

use std::collections::HashMap;

use super::listing::{Change, Listing, Publication, SubscriptionId};
use super::messages::wire::{Candidate, Join, Joined, Offer, OfferAnswer, Unwant, Want, Withdraw};
use super::name::Scope;
use super::view::{ClientView, DirectoryView, Query};
use crate::net::{Accepted, Closed, Listen, Listening};
use crate::object::Context;
use crate::standard::{Ended, NotListening, Returned, Start};
use crate::Address;

/// The most publications one client may hold here.
pub(crate) const MAX_PUBLICATIONS_PER_CLIENT: usize = 1_000_000;

/// The most subscriptions one client may hold here.
pub(crate) const MAX_WANTS_PER_CLIENT: usize = 100_000;

/// How many offers one client of the LAN directory may make in a burst (a host that
/// joins again re-offers all it holds at once); they come back at [`OFFERS_PER_SECOND`].
/// A client past it is refused, saying so, rather than letting one host flood what every
/// other one hears. The processes of one host (one user's) are not held to it.
pub(crate) const OFFER_BURST: f64 = 100_000.0;

/// The rate a client's offers come back at, per second.
pub(crate) const OFFERS_PER_SECOND: f64 = 10_000.0;

/// What the directory knows of one client.
struct Client {
    endpoint: Option<String>,
    publications: usize,
    wants: HashMap<u64, SubscriptionId>,
    /// Offers it may make now (a token bucket: [`OFFER_BURST`], refilled at
    /// [`OFFERS_PER_SECOND`]), as of `refilled`.
    offers: f64,
    refilled: std::time::Instant,
}

impl Client {
    /// Takes one offer from the bucket; false when there is none left.
    fn may_offer(&mut self) -> bool {
        let now = std::time::Instant::now();
        let earned = now.duration_since(self.refilled).as_secs_f64() * OFFERS_PER_SECOND;
        self.offers = (self.offers + earned).min(OFFER_BURST);
        self.refilled = now;
        if self.offers >= 1.0 {
            self.offers -= 1.0;
            true
        } else {
            false
        }
    }
}

/// A group's or the host's directory (see the module doc).
pub(crate) struct SharedDirectory {
    level: Scope,
    /// Where to listen for clients (the host directory's socket, the LAN directory's
    /// TCP address), if anywhere; taken at start.
    listen: Option<Listen>,
    /// Each client's IP, as the link it came over saw it (a LAN directory's clients).
    ips: HashMap<Address, std::net::IpAddr>,
    /// The IP a TCP listener listens on, when it is one.
    listen_ip: Option<std::net::IpAddr>,
    listing: Listing,
    clients: HashMap<Address, Client>,
    /// Each subscription's client and the client's id for it.
    wanted_by: HashMap<SubscriptionId, (Address, u64)>,
    /// Its entry in the process's figures (`crate::metrics`), from start to end.
    figures: Option<crate::metrics::Registration>,
}

impl SharedDirectory {
    /// A directory for `level`, listening with `listen` if given.
    pub(crate) fn new(level: Scope, listen: Option<Listen>) -> SharedDirectory {
        SharedDirectory {
            level,
            listen,
            ips: HashMap::new(),
            listen_ip: None,
            listing: Listing::new(),
            clients: HashMap::new(),
            wanted_by: HashMap::new(),
            figures: None,
        }
    }

    /// Sends each change to its client as a `Candidate`.
    fn tell(&self, cx: &mut Context<Self>, changes: Vec<Change>) {
        for change in changes {
            let (to, sid, name, address, scope, available) = change.into_parts();
            let Some((_, id)) = self.wanted_by.get(&sid) else {
                continue;
            };
            let endpoint = if available {
                self.endpoint_of(address.node())
            } else {
                None
            };
            cx.send(
                to,
                Candidate {
                    id: *id,
                    available,
                    name,
                    scope,
                    address,
                    endpoint,
                },
            );
        }
    }

    /// The session endpoint of the client on `node`.
    fn endpoint_of(&self, node: u64) -> Option<String> {
        self.clients
            .iter()
            .find(|(a, _)| a.node() == node)
            .and_then(|(_, c)| c.endpoint.clone())
    }

    /// Ends `client` and everything it listed.
    fn end_client(&mut self, cx: &mut Context<Self>, client: Address) {
        let Some(c) = self.clients.remove(&client) else {
            return;
        };
        self.ips.remove(&client);
        for sid in c.wants.values() {
            self.wanted_by.remove(sid);
        }
        let changes = self.listing.end_incarnation(client.node());
        tracing::info!(target: "strata::directory", level = %self.level, %client,
            publications = c.publications, subscriptions = c.wants.len(), "client gone: its listings dropped");
        self.tell(cx, changes);
    }

    /// The client `sender`, if it has joined.
    fn client(&mut self, sender: Address) -> Option<&mut Client> {
        self.clients.get_mut(&sender)
    }
}

#[crate::machine]
impl SharedDirectory {
    #[guard(sender == cx.address())]
    fn on_start(&mut self, cx: &mut Context<Self>, _: Start) {
        self.figures = Some(crate::metrics::sources::directory(cx.address()));
        if let Some(listen) = self.listen.take() {
            cx.create(listen);
        }
        tracing::info!(target: "strata::directory", level = %self.level, directory = %cx.address(), "directory up");
    }

    fn on_join(&mut self, cx: &mut Context<Self>, join: Join) -> Joined {
        let client = cx.sender();
        // A client that joins again starts afresh (it re-offers what it holds).
        self.end_client(cx, client);
        // A TCP endpoint's IP is the one the client's link came from, whatever it says.
        let endpoint = match (
            join.endpoint,
            self.ips.get(&client).or(self.listen_ip.as_ref()),
        ) {
            (Some(e), Some(ip)) if e.starts_with("tcp:") => super::lan::with_ip(&e, *ip),
            (e, _) => e,
        };
        self.clients.insert(
            client,
            Client {
                endpoint,
                publications: 0,
                wants: HashMap::new(),
                offers: OFFER_BURST,
                refilled: std::time::Instant::now(),
            },
        );
        cx.watch(client);
        tracing::debug!(target: "strata::directory", level = %self.level, %client, "client joined");
        Joined { level: self.level }
    }

    fn on_offer(&mut self, cx: &mut Context<Self>, offer: Offer) -> OfferAnswer {
        let sender = cx.sender();
        let level = self.level;
        let refuse = |why: String| OfferAnswer {
            ticket: offer.ticket,
            refusal: Some(why),
        };
        let Some(client) = self.client(sender) else {
            return refuse("the process has not joined this directory".into());
        };
        if offer.address.node() != sender.node() || offer.owner.node() != sender.node() {
            return refuse("a process may publish only its own objects".into());
        }
        if offer.scope < level {
            return refuse(format!(
                "a {} scope publication does not reach this {level} directory",
                offer.scope
            ));
        }
        if level == Scope::Lan && !client.may_offer() {
            return refuse(format!(
                "the process publishes faster than this directory takes ({OFFERS_PER_SECOND} a second after a burst of {OFFER_BURST})"
            ));
        }
        if client.publications >= MAX_PUBLICATIONS_PER_CLIENT {
            return refuse(format!(
                "the process holds {MAX_PUBLICATIONS_PER_CLIENT} publications here, the most one may"
            ));
        }
        let publication = Publication {
            name: offer.name.clone(),
            scope: offer.scope,
            shown: offer.scope,
            address: offer.address,
            owner: offer.owner,
            incarnation: sender.node(),
        };
        match self.listing.publish(publication) {
            Ok(changes) => {
                if let Some(c) = self.client(sender) {
                    c.publications += 1;
                }
                tracing::info!(target: "strata::directory", event = "publish", name = %offer.name, scope = %offer.scope, directory = %level, address = %offer.address);
                self.tell(cx, changes);
                OfferAnswer {
                    ticket: offer.ticket,
                    refusal: None,
                }
            }
            Err(refusal) => refuse(refusal.to_string()),
        }
    }

    fn on_withdraw(&mut self, cx: &mut Context<Self>, w: Withdraw) {
        let sender = cx.sender();
        if w.owner.node() != sender.node() || !self.clients.contains_key(&sender) {
            return;
        }
        let Some(changes) = self.listing.withdraw_by(&w.name, w.owner) else {
            return;
        };
        if let Some(c) = self.client(sender) {
            c.publications = c.publications.saturating_sub(1);
        }
        tracing::info!(target: "strata::directory", event = "withdraw", name = %w.name, scope = %self.level, owner = %w.owner);
        self.tell(cx, changes);
    }

    fn on_want(&mut self, cx: &mut Context<Self>, want: Want) {
        let sender = cx.sender();
        let level = self.level;
        let Some(client) = self.client(sender) else {
            return;
        };
        if client.wants.contains_key(&want.id) || client.wants.len() >= MAX_WANTS_PER_CLIENT {
            tracing::warn!(target: "strata::directory", client = %sender, id = want.id,
                "subscription refused: a duplicate id or over {MAX_WANTS_PER_CLIENT} per process");
            return;
        }
        tracing::info!(target: "strata::directory", event = "subscribe", pattern = %want.pattern, scope = %level, client = %sender);
        let (sid, changes) = self
            .listing
            // It sees whatever is held here: all of it reaches this far.
            .subscribe(sender, sender.node(), want.pattern, Scope::Lan);
        if let Some(c) = self.client(sender) {
            c.wants.insert(want.id, sid);
        }
        self.wanted_by.insert(sid, (sender, want.id));
        self.tell(cx, changes);
    }

    fn on_unwant(&mut self, cx: &mut Context<Self>, u: Unwant) {
        let sender = cx.sender();
        if let Some(sid) = self.client(sender).and_then(|c| c.wants.remove(&u.id)) {
            self.wanted_by.remove(&sid);
            // The client asked: it drops what it held itself.
            let _ = self.listing.unsubscribe(sid);
        }
    }

    fn on_query(&mut self, _cx: &mut Context<Self>, _: Query) -> DirectoryView {
        let mut view = DirectoryView::of(self.level, &self.listing);
        view.clients = self
            .clients
            .iter()
            .map(|(a, c)| ClientView {
                address: *a,
                endpoint: c.endpoint.clone(),
                publications: c.publications,
                subscriptions: c.wants.len(),
            })
            .collect();
        view.clients.sort_by_key(|c| c.address);
        view
    }

    fn on_ended(&mut self, cx: &mut Context<Self>, ended: Ended) {
        self.end_client(cx, ended.address);
    }

    fn on_listening(&mut self, _cx: &mut Context<Self>, l: Listening) {
        // A client in this process joins without a link: it is reached at this address.
        self.listen_ip = l
            .address
            .parse::<std::net::SocketAddr>()
            .ok()
            .map(|a| a.ip())
            .filter(|ip| !ip.is_unspecified());
        tracing::info!(target: "strata::directory", level = %self.level, socket = %l.address, "the host directory listens");
    }

    fn on_not_listening(&mut self, _cx: &mut Context<Self>, f: NotListening) {
        tracing::error!(target: "strata::directory", level = %self.level, reason = %f.reason, "the host directory cannot listen: other processes will not find it");
    }

    /// Links come and go with their clients; a client's end comes as `Ended`.
    /// A client's link is up: its IP, as the socket saw it, is where other hosts reach it.
    fn on_link(&mut self, cx: &mut Context<Self>, a: Accepted) {
        if let Ok(remote) = a.remote.parse::<std::net::SocketAddr>() {
            self.ips.insert(cx.sender(), remote.ip());
        }
    }

    fn on_closed(&mut self, _cx: &mut Context<Self>, _: Closed) {}

    fn on_returned(&mut self, _cx: &mut Context<Self>, _: Returned) {}
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_client_offering_past_its_burst_is_held_to_the_rate() {
        let start = std::time::Instant::now();
        let mut c = Client {
            endpoint: None,
            publications: 0,
            wants: HashMap::new(),
            offers: 3.0,
            refilled: start,
        };
        assert!(c.may_offer() && c.may_offer() && c.may_offer());
        // The clock moved on by less than one offer's worth since the refill.
        c.refilled = std::time::Instant::now();
        assert!(!c.may_offer(), "past the burst");
        // A second later, the rate's worth is back (capped at the burst).
        c.refilled -= std::time::Duration::from_secs(1);
        assert!(c.may_offer());
        assert!(c.offers <= OFFER_BURST && c.offers >= OFFERS_PER_SECOND - 2.0);
    }
}
