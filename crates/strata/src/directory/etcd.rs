//! The LAN scope on etcd: a LAN directory kept in an etcd cluster instead of a
//! `strata directory --lan` process, so that losing one machine loses nothing
//! (`STRATA_LAN_DIRECTORY=etcd://H:P,H:P,H:P`).
//!
//! It is an object like the LAN directory: the process directory joins it, offers its LAN
//! publications, wants patterns and hears `Candidate`s, with the same messages
//! (`shared.rs`). It lives in the process itself, so a process's LAN listings live and
//! end with that process, as they do with a LAN directory. Behind it:
//!
//! - one **lease** per process (TTL [`LEASE_TTL`], kept alive every third of it) holding
//!   every key the process put: when the process dies, etcd deletes them within the TTL
//!   (its sessions tell its subscribers at once; the lease is for everyone else);
//! - a **unique name is claimed atomically**: a transaction that puts
//!   `PREFIX/pub/NAME` only when the key has no create revision yet. The older claim is
//!   the one etcd committed first, never a publisher's clock; the loser is told
//!   `NotPublished` naming the holder;
//! - **one prefix watch** from the revision of a snapshot (`get` of the prefix) feeds the
//!   listing that subscriptions are matched against, here in the process;
//! - **recovery**: any error of the connection, the lease or the watch ends the session
//!   with etcd, and a new one (after a jittered backoff) grants a lease, puts again what
//!   this process claimed (moving its keys to the new lease when they are still its own),
//!   lists the prefix afresh and applies the difference to what subscribers hold: a
//!   compaction or a broken watch costs a re-list, never a lost or stale name. A request
//!   that failed is kept and made again in the next session. The client keeps the
//!   connection alive (HTTP/2 pings) and requires a leader, so a member cut off from the
//!   others fails fast instead of answering stale.
//!
//! etcd is reached over TLS when `STRATA_ETCD_CA` names the members' CA (and with this
//! host's own certificate, `STRATA_ETCD_CERT` and `STRATA_ETCD_KEY`, when the cluster
//! authenticates clients); without it, in plain text (fine on loopback or a private
//! network, as etcd's own default is).
//!
//! What is read from etcd is untrusted input: a key that is not a name under the prefix,
//! a value over [`MAX_VALUE`] bytes or not of the expected shape, an address whose owner
//! is of another node, an endpoint that is not `tcp:IP:PORT`: each is skipped with a
//! warning, and nothing else changes.

use std::collections::{HashMap, VecDeque};
use std::net::SocketAddr;
use std::time::Duration;

use etcd_client::{
    Certificate, Client, Compare, CompareOp, ConnectOptions, EventType, GetOptions, Identity,
    PutOptions, TlsOptions, Txn, TxnOp, TxnOpResponse, WatchOptions,
};
use serde::{Deserialize, Serialize};
use tokio::sync::mpsc;

use super::lan::EtcdCluster;
use super::listing::{Change, Listing, Publication, SubscriptionId};
use super::messages::wire::{Candidate, Join, Joined, Offer, OfferAnswer, Unwant, Want, Withdraw};
use super::name::{Name, Scope};
use super::view::{DirectoryView, Query};
use crate::object::{Context, Postbox};
use crate::standard::{Ended, Returned, Start};
use crate::{Address, Backoff, Message};

/// The time to live of a process's lease, in seconds: its keys go this long after it
/// stopped renewing (etcd grants at least 1.5 election timeouts, 1.5 s by default).
pub const LEASE_TTL: i64 = 3;

/// The longest value read from etcd; longer ones are skipped.
pub const MAX_VALUE: usize = 1024;

/// What a publication's key holds (JSON).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
struct Value {
    /// The published address, `NODE:OBJECT` in hexadecimal.
    address: String,
    /// The object that published it.
    owner: String,
    /// Where its process takes sessions, `tcp:IP:PORT`.
    endpoint: String,
}

/// One publication as etcd lists it, checked.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
struct Listed {
    address: Address,
    owner: Address,
    endpoint: String,
}

fn encode_address(a: Address) -> String {
    format!("{:x}:{:x}", a.node(), a.object())
}

fn decode_address(text: &str) -> Option<Address> {
    let (node, object) = text.split_once(':')?;
    let node = u64::from_str_radix(node, 16).ok()?;
    let object = u64::from_str_radix(object, 16).ok()?;
    (node != 0).then(|| Address::from_parts(node, object))
}

impl Listed {
    fn to_value(&self) -> Vec<u8> {
        serde_json::to_vec(&Value {
            address: encode_address(self.address),
            owner: encode_address(self.owner),
            endpoint: self.endpoint.clone(),
        })
        .expect("a value encodes")
    }

    /// A value read from etcd, checked (see the module doc); why not, when it is not.
    fn from_value(bytes: &[u8]) -> Result<Listed, String> {
        if bytes.len() > MAX_VALUE {
            return Err(format!(
                "a value of {} bytes (at most {MAX_VALUE})",
                bytes.len()
            ));
        }
        let v: Value = serde_json::from_slice(bytes).map_err(|e| format!("not a listing: {e}"))?;
        let address = decode_address(&v.address).ok_or("a bad address")?;
        let owner = decode_address(&v.owner).ok_or("a bad owner")?;
        if address.node() != owner.node() {
            return Err("an address of another node than its owner's".into());
        }
        if super::lan::parse_endpoint(&v.endpoint).is_none() {
            return Err(format!(
                "an endpoint {:?} that is not tcp:IP:PORT",
                v.endpoint
            ));
        }
        Ok(Listed {
            address,
            owner,
            endpoint: v.endpoint,
        })
    }
}

/// A key and value from etcd as a name and a listing (`None`, logged, when either is
/// not acceptable).
fn read(prefix: &str, key: &[u8], value: &[u8]) -> Option<(Name, Listed)> {
    let checked = std::str::from_utf8(key)
        .ok()
        .and_then(|k| k.strip_prefix(prefix))
        .and_then(|n| Name::new(n).ok())
        .ok_or_else(|| "a key that is not a name under the prefix".to_string())
        .and_then(|name| Ok((name, Listed::from_value(value)?)));
    match checked {
        Ok(pair) => Some(pair),
        Err(why) => {
            let key = String::from_utf8_lossy(&key[..key.len().min(120)]).into_owned();
            tracing::warn!(target: "strata::directory", %key, %why, "etcd: a listing skipped");
            None
        }
    }
}

/// What the directory asks of its session with etcd.
#[derive(Debug)]
enum Command {
    /// Claim `name` for `value` (answered with a [`Claimed`] of `ticket`).
    Claim {
        ticket: u64,
        name: Name,
        value: Vec<u8>,
    },
    /// Withdraw this process's claim of `name`.
    Release { name: Name },
}

/// The session with etcd is up: a snapshot of every listing, at one revision.
#[derive(Debug, Clone, Serialize, Deserialize, Message)]
#[message(name = "strata.directory.etcd.Snapshot")]
struct Snapshot {
    entries: Vec<(Name, Listed)>,
}

/// Listings that came or went (in the watch's order).
#[derive(Debug, Clone, Serialize, Deserialize, Message)]
#[message(name = "strata.directory.etcd.Changed")]
struct Changed {
    /// `(name, Some(listed))` put, `(name, None)` deleted.
    events: Vec<(Name, Option<Listed>)>,
}

/// The session with etcd ended (it is being made again).
#[derive(Debug, Clone, Serialize, Deserialize, Message)]
#[message(name = "strata.directory.etcd.Down")]
struct Down {
    why: String,
}

/// The answer to a claim: `None` when it is this process's, else why not.
#[derive(Debug, Clone, Serialize, Deserialize, Message)]
#[message(name = "strata.directory.etcd.Claimed")]
struct Claimed {
    ticket: u64,
    refusal: Option<String>,
}

/// The LAN directory of this process, on etcd (see the module doc).
pub(crate) struct EtcdDirectory {
    cluster: EtcdCluster,
    /// To the session with etcd; taken by `Start`.
    commands: mpsc::UnboundedSender<Command>,
    receiver: Option<mpsc::UnboundedReceiver<Command>>,
    /// Whether a snapshot has come since the last `Down`.
    up: bool,
    /// The process directory that joined, and its session endpoint.
    client: Option<(Address, Option<String>)>,
    /// Told `Joined` already.
    told_joined: bool,
    listing: Listing,
    /// What etcd lists, by name (the listing's publications, with their endpoints).
    mirror: HashMap<Name, Listed>,
    wants: HashMap<u64, SubscriptionId>,
    wanted_by: HashMap<SubscriptionId, u64>,
}

impl EtcdDirectory {
    pub(crate) fn new(cluster: EtcdCluster) -> EtcdDirectory {
        let (commands, receiver) = mpsc::unbounded_channel();
        EtcdDirectory {
            cluster,
            commands,
            receiver: Some(receiver),
            up: false,
            client: None,
            told_joined: false,
            listing: Listing::new(),
            mirror: HashMap::new(),
            wants: HashMap::new(),
            wanted_by: HashMap::new(),
        }
    }

    /// The process directory that joined.
    fn client_address(&self) -> Option<Address> {
        self.client.as_ref().map(|(c, _)| *c)
    }

    fn tell(&self, cx: &mut Context<Self>, changes: Vec<Change>) {
        let Some(client) = self.client_address() else {
            return;
        };
        for change in changes {
            let (_, sid, name, address, scope, available) = change.into_parts();
            let Some(id) = self.wanted_by.get(&sid) else {
                continue;
            };
            let endpoint = available
                .then(|| self.mirror.get(&name).map(|l| l.endpoint.clone()))
                .flatten();
            cx.send(
                client,
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

    /// Takes `name` out of the mirror and the listing.
    fn unlist(&mut self, name: &Name) -> Vec<Change> {
        match self.mirror.remove(name) {
            Some(old) => self
                .listing
                .withdraw_by(name, old.owner)
                .unwrap_or_default(),
            None => Vec::new(),
        }
    }

    /// Puts `name` in the mirror and the listing as `listed` (replacing what was there).
    fn list(&mut self, name: Name, listed: Listed) -> Vec<Change> {
        if self.mirror.get(&name) == Some(&listed) {
            return Vec::new();
        }
        let mut changes = self.unlist(&name);
        let publication = Publication {
            name: name.clone(),
            scope: Scope::Lan,
            shown: Scope::Lan,
            address: listed.address,
            owner: listed.owner,
            incarnation: listed.address.node(),
        };
        match self.listing.publish(publication) {
            Ok(more) => {
                changes.extend(more);
                self.mirror.insert(name, listed);
            }
            Err(why) => {
                tracing::warn!(target: "strata::directory", %name, %why, "etcd: a listing not kept")
            }
        }
        changes
    }

    fn joined(&mut self, cx: &mut Context<Self>) {
        if let (true, false, Some(client)) = (self.up, self.told_joined, self.client_address()) {
            self.told_joined = true;
            cx.send(client, Joined { level: Scope::Lan });
        }
    }
}

#[crate::machine]
impl EtcdDirectory {
    #[guard(sender == cx.address())]
    fn on_start(&mut self, cx: &mut Context<Self>, _: Start) {
        if let Some(receiver) = self.receiver.take() {
            let postbox = cx.postbox();
            let cluster = self.cluster.clone();
            crate::runtime::handle().spawn(sessions(cluster, postbox, receiver));
        }
        tracing::info!(target: "strata::directory", members = ?self.cluster.members, prefix = %self.cluster.prefix, "the LAN scope is on etcd");
    }

    fn on_join(&mut self, cx: &mut Context<Self>, join: Join) {
        let client = cx.sender();
        if !client.is_local() {
            return;
        }
        // The IP other hosts reach this process at: the one its route to etcd leaves from.
        let endpoint = join.endpoint.and_then(|e| match local_ip(&self.cluster) {
            Some(ip) => super::lan::with_ip(&e, ip),
            None => Some(e),
        });
        self.client = Some((client, endpoint));
        self.told_joined = false;
        cx.watch(client);
        self.joined(cx);
    }

    fn on_offer(&mut self, cx: &mut Context<Self>, offer: Offer) {
        let sender = cx.sender();
        let refuse = |why: &str| OfferAnswer {
            ticket: offer.ticket,
            refusal: Some(why.to_string()),
        };
        let endpoint = match &self.client {
            Some((c, e)) if *c == sender => e.clone(),
            _ => return cx.send(sender, refuse("the process has not joined this directory")),
        };
        if !offer.address.is_local() || !offer.owner.is_local() {
            return cx.send(sender, refuse("a process may publish only its own objects"));
        }
        let Some(endpoint) = endpoint else {
            return cx.send(
                sender,
                refuse("this process takes no sessions from other hosts, so it cannot publish at LAN scope"),
            );
        };
        let listed = Listed {
            address: offer.address,
            owner: offer.owner,
            endpoint,
        };
        let _ = self.commands.send(Command::Claim {
            ticket: offer.ticket,
            name: offer.name,
            value: listed.to_value(),
        });
    }

    fn on_claimed(&mut self, cx: &mut Context<Self>, c: Claimed) {
        if cx.sender() != cx.address() {
            return;
        }
        if let Some(client) = self.client_address() {
            cx.send(
                client,
                OfferAnswer {
                    ticket: c.ticket,
                    refusal: c.refusal,
                },
            );
        }
    }

    fn on_withdraw(&mut self, cx: &mut Context<Self>, w: Withdraw) {
        if self.client_address() == Some(cx.sender()) && w.owner.is_local() {
            let _ = self.commands.send(Command::Release { name: w.name });
        }
    }

    fn on_want(&mut self, cx: &mut Context<Self>, want: Want) {
        let sender = cx.sender();
        if self.client_address() != Some(sender) || self.wants.contains_key(&want.id) {
            return;
        }
        let (sid, changes) =
            self.listing
                .subscribe(sender, sender.node(), want.pattern, Scope::Lan);
        self.wants.insert(want.id, sid);
        self.wanted_by.insert(sid, want.id);
        self.tell(cx, changes);
    }

    fn on_unwant(&mut self, cx: &mut Context<Self>, u: Unwant) {
        if self.client_address() != Some(cx.sender()) {
            return;
        }
        if let Some(sid) = self.wants.remove(&u.id) {
            self.wanted_by.remove(&sid);
            let _ = self.listing.unsubscribe(sid);
        }
    }

    fn on_snapshot(&mut self, cx: &mut Context<Self>, s: Snapshot) {
        if cx.sender() != cx.address() {
            return;
        }
        let mut fresh: HashMap<Name, Listed> = s.entries.into_iter().collect();
        // The difference: what went, then what came or changed.
        let gone: Vec<Name> = self
            .mirror
            .keys()
            .filter(|n| !fresh.contains_key(*n))
            .cloned()
            .collect();
        let mut changes = Vec::new();
        for name in gone {
            changes.extend(self.unlist(&name));
        }
        let mut names: Vec<Name> = fresh.keys().cloned().collect();
        names.sort();
        for name in names {
            let listed = fresh.remove(&name).expect("listed");
            changes.extend(self.list(name, listed));
        }
        self.up = true;
        tracing::info!(target: "strata::directory", listings = self.mirror.len(), "etcd: listed");
        self.tell(cx, changes);
        self.joined(cx);
    }

    fn on_changed(&mut self, cx: &mut Context<Self>, c: Changed) {
        if cx.sender() != cx.address() {
            return;
        }
        let mut changes = Vec::new();
        for (name, put) in c.events {
            match put {
                Some(listed) => changes.extend(self.list(name, listed)),
                None => changes.extend(self.unlist(&name)),
            }
        }
        self.tell(cx, changes);
    }

    fn on_down(&mut self, cx: &mut Context<Self>, d: Down) {
        if cx.sender() != cx.address() {
            return;
        }
        // What was heard stays until a new snapshot says otherwise: sessions tell of the
        // processes that end meanwhile.
        self.up = false;
        tracing::warn!(target: "strata::directory", why = %d.why, "etcd: session ended; making it again");
    }

    fn on_query(&mut self, _cx: &mut Context<Self>, _: Query) -> DirectoryView {
        DirectoryView::of(Scope::Lan, &self.listing)
    }

    fn on_ended(&mut self, cx: &mut Context<Self>, e: Ended) {
        if self.client_address() == Some(e.address) {
            // The process directory ends with its process: so does this.
            cx.complete(());
        }
    }

    fn on_returned(&mut self, _cx: &mut Context<Self>, _: Returned) {}
}

/// The IP this host reaches the cluster's first member from (the source address its
/// route picks), which is where other hosts on that network reach it.
fn local_ip(cluster: &EtcdCluster) -> Option<std::net::IpAddr> {
    use std::net::ToSocketAddrs;
    let member: SocketAddr = cluster.members[0].to_socket_addrs().ok()?.next()?;
    let any: SocketAddr = if member.is_ipv4() {
        "0.0.0.0:0".parse().ok()?
    } else {
        "[::]:0".parse().ok()?
    };
    let socket = std::net::UdpSocket::bind(any).ok()?;
    socket.connect(member).ok()?;
    Some(socket.local_addr().ok()?.ip())
}

/// Sessions with etcd, one after another, until the directory ends (its commands close).
async fn sessions(
    cluster: EtcdCluster,
    postbox: Postbox,
    mut commands: mpsc::UnboundedReceiver<Command>,
) {
    let me = postbox.address();
    let mut state = SessionState {
        pending: VecDeque::new(),
        claims: HashMap::new(),
        lease: None,
    };
    // Short: a session that cannot be made fails fast (a member without a leader says so
    // at once), and a host healed from a partition should be listed again within a second.
    let mut backoff =
        Backoff::growing(Duration::from_millis(50), Duration::from_millis(500)).jitter(0.5);
    loop {
        match session(&cluster, &postbox, &mut commands, &mut state, &mut backoff).await {
            Ok(()) => return,
            Err(why) => {
                postbox.send(me, Down { why });
                let wait = backoff.failed().unwrap_or(Duration::from_secs(2));
                tokio::time::sleep(wait).await;
            }
        }
    }
}

/// What outlives one session: the requests not yet done, this process's claims (to put
/// again in a new session), and the last lease (revoked once its keys moved).
struct SessionState {
    pending: VecDeque<Command>,
    claims: HashMap<Name, Vec<u8>>,
    lease: Option<i64>,
}

/// One session: connect, lease, put the claims again, list, watch; `Ok` when the
/// directory ended (the lease is revoked), else why it broke.
async fn session(
    cluster: &EtcdCluster,
    postbox: &Postbox,
    commands: &mut mpsc::UnboundedReceiver<Command>,
    state: &mut SessionState,
    backoff: &mut Backoff,
) -> Result<(), String> {
    let me = postbox.address();
    let options = ConnectOptions::new()
        .with_keep_alive(Duration::from_secs(1), Duration::from_secs(2))
        .with_keep_alive_while_idle(true)
        .with_require_leader(true)
        .with_connect_timeout(Duration::from_secs(1))
        .with_timeout(Duration::from_secs(2));
    let e = |what: &str| {
        let what = what.to_string();
        move |err: etcd_client::Error| format!("{what}: {err}")
    };
    let options = match &cluster.tls {
        Some(tls) => {
            let mut t = TlsOptions::new().ca_certificate(Certificate::from_pem(&tls.ca));
            if let Some((cert, key)) = &tls.identity {
                t = t.identity(Identity::from_pem(cert, key));
            }
            options.with_tls(t)
        }
        None => options,
    };
    let mut client = Client::connect(cluster.members.clone(), Some(options))
        .await
        .map_err(e("connecting"))?;
    let lease = client
        .lease_grant(LEASE_TTL, None)
        .await
        .map_err(e("granting a lease"))?
        .id();
    let (mut keeper, mut acks) = client
        .lease_keep_alive(lease)
        .await
        .map_err(e("keeping the lease alive"))?;
    let prefix = format!("{}/pub/", cluster.prefix);
    // This process's claims, put again under the new lease (still its own: moved; taken
    // by another meanwhile: that one holds it now).
    let claims: Vec<(Name, Vec<u8>)> = state
        .claims
        .iter()
        .map(|(n, v)| (n.clone(), v.clone()))
        .collect();
    for (name, value) in claims {
        let key = format!("{prefix}{name}");
        let txn = Txn::new()
            .when([Compare::value(key.clone(), CompareOp::Equal, value.clone())])
            .and_then([TxnOp::put(
                key.clone(),
                value.clone(),
                Some(PutOptions::new().with_lease(lease)),
            )])
            .or_else([TxnOp::txn(
                Txn::new()
                    .when([Compare::create_revision(key.clone(), CompareOp::Equal, 0)])
                    .and_then([TxnOp::put(
                        key.clone(),
                        value.clone(),
                        Some(PutOptions::new().with_lease(lease)),
                    )]),
            )]);
        let answer = client.txn(txn).await.map_err(e("putting a claim again"))?;
        let kept = answer.succeeded()
            || answer.op_responses().iter().any(|r| match r {
                TxnOpResponse::Txn(t) => t.succeeded(),
                _ => false,
            });
        if !kept {
            tracing::warn!(target: "strata::directory", %name, "etcd: another process claimed this name while this one was away");
            state.claims.remove(&name);
        }
    }
    if let Some(old) = state.lease.replace(lease) {
        if old != lease {
            let _ = client.lease_revoke(old).await;
        }
    }
    // The snapshot, then the watch from just after it.
    let listed = client
        .get(prefix.clone(), Some(GetOptions::new().with_prefix()))
        .await
        .map_err(e("listing"))?;
    let revision = listed.header().map_or(0, |h| h.revision());
    let entries = listed
        .kvs()
        .iter()
        .filter_map(|kv| read(&prefix, kv.key(), kv.value()))
        .collect();
    let mut watch = client
        .watch(
            prefix.clone(),
            Some(
                WatchOptions::new()
                    .with_prefix()
                    .with_start_revision(revision + 1),
            ),
        )
        .await
        .map_err(e("watching"))?;
    postbox.send(me, Snapshot { entries });
    backoff.reset();
    let mut renew = tokio::time::interval(Duration::from_millis(LEASE_TTL as u64 * 1000 / 3));
    loop {
        // Requests that failed in an earlier session first, then new ones.
        if let Some(command) = state.pending.pop_front() {
            if let Err(why) = run(&mut client, &prefix, lease, &command, state, postbox).await {
                state.pending.push_front(command);
                return Err(why);
            }
            continue;
        }
        tokio::select! {
            command = commands.recv() => {
                let Some(command) = command else {
                    let _ = client.lease_revoke(lease).await;
                    return Ok(());
                };
                state.pending.push_back(command);
            }
            _ = renew.tick() => keeper.keep_alive().await.map_err(e("renewing the lease"))?,
            ack = acks.message() => match ack {
                Ok(Some(a)) if a.ttl() > 0 => {}
                Ok(Some(_)) => return Err("the lease expired".into()),
                Ok(None) => return Err("the lease's keep-alive stream ended".into()),
                Err(err) => return Err(format!("the lease's keep-alive: {err}")),
            },
            message = watch.message() => match message {
                Ok(Some(w)) if w.canceled() || w.compact_revision() != 0 => {
                    return Err(format!("the watch was cancelled (compacted at {}): listing again", w.compact_revision()));
                }
                Ok(Some(w)) => {
                    let events: Vec<(Name, Option<Listed>)> = w
                        .events()
                        .iter()
                        .filter_map(|ev| {
                            let kv = ev.kv()?;
                            match ev.event_type() {
                                EventType::Put => read(&prefix, kv.key(), kv.value())
                                    .map(|(n, l)| (n, Some(l))),
                                EventType::Delete => std::str::from_utf8(kv.key())
                                    .ok()
                                    .and_then(|k| k.strip_prefix(prefix.as_str()))
                                    .and_then(|n| Name::new(n).ok())
                                    .map(|n| (n, None)),
                            }
                        })
                        .collect();
                    if !events.is_empty() {
                        postbox.send(me, Changed { events });
                    }
                }
                Ok(None) => return Err("the watch ended".into()),
                Err(err) => return Err(format!("the watch: {err}")),
            },
        }
    }
}

/// Makes one request of the directory; an error of etcd is the session's.
async fn run(
    client: &mut Client,
    prefix: &str,
    lease: i64,
    command: &Command,
    state: &mut SessionState,
    postbox: &Postbox,
) -> Result<(), String> {
    match command {
        Command::Claim {
            ticket,
            name,
            value,
        } => {
            let key = format!("{prefix}{name}");
            let txn = Txn::new()
                .when([Compare::create_revision(key.clone(), CompareOp::Equal, 0)])
                .and_then([TxnOp::put(
                    key.clone(),
                    value.clone(),
                    Some(PutOptions::new().with_lease(lease)),
                )])
                .or_else([TxnOp::get(key.clone(), None)]);
            let answer = client
                .txn(txn)
                .await
                .map_err(|err| format!("claiming {name}: {err}"))?;
            let refusal = if answer.succeeded() {
                state.claims.insert(name.clone(), value.clone());
                None
            } else {
                let holder = answer.op_responses().iter().find_map(|r| match r {
                    TxnOpResponse::Get(g) => g.kvs().first().map(|kv| kv.value().to_vec()),
                    _ => None,
                });
                match holder {
                    // Already this process's (claimed again): it stays.
                    Some(v) if v == *value => {
                        state.claims.insert(name.clone(), value.clone());
                        None
                    }
                    Some(v) => Some(match Listed::from_value(&v) {
                        Ok(l) => format!("`{name}` is held at lan scope by {}", l.address),
                        Err(_) => format!("`{name}` is held at lan scope by another process"),
                    }),
                    None => Some(format!("`{name}` is held at lan scope by another process")),
                }
            };
            postbox.send(
                postbox.address(),
                Claimed {
                    ticket: *ticket,
                    refusal,
                },
            );
        }
        Command::Release { name } => {
            if let Some(value) = state.claims.remove(name) {
                let key = format!("{prefix}{name}");
                // Only while it is still this process's.
                let txn = Txn::new()
                    .when([Compare::value(key.clone(), CompareOp::Equal, value.clone())])
                    .and_then([TxnOp::delete(key, None)]);
                if let Err(err) = client.txn(txn).await {
                    state.claims.insert(name.clone(), value);
                    return Err(format!("withdrawing {name}: {err}"));
                }
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_value_survives_the_store_and_untrusted_ones_are_refused_with_a_reason() {
        let l = Listed {
            address: Address::from_parts(0xab, 7),
            owner: Address::from_parts(0xab, 3),
            endpoint: "tcp:10.1.2.3:4100".into(),
        };
        assert_eq!(Listed::from_value(&l.to_value()), Ok(l));
        let value = |a: &str, o: &str, e: &str| {
            format!(r#"{{"address":"{a}","owner":"{o}","endpoint":"{e}"}}"#).into_bytes()
        };
        for (bad, why) in [
            (b"not json".to_vec(), "not a listing"),
            (value("ab:7", "cd:3", "tcp:10.0.0.1:1"), "another node"),
            (value("zz", "ab:3", "tcp:10.0.0.1:1"), "bad address"),
            (value("ab:7", "ab:3", "/tmp/x.sock"), "not tcp:IP:PORT"),
            (vec![b' '; MAX_VALUE + 1], "bytes"),
        ] {
            let e = Listed::from_value(&bad).unwrap_err();
            assert!(e.contains(why), "{e}");
        }
        let prefix = "/strata/lan/pub/";
        let ok = value("ab:7", "ab:3", "tcp:10.0.0.1:1");
        assert!(read(prefix, b"/strata/lan/pub/svc:a", &ok).is_some());
        assert!(read(prefix, b"/other/svc:a", &ok).is_none());
        assert!(read(prefix, b"/strata/lan/pub/bad name", &ok).is_none());
    }
}
