//! The LAN scope: a LAN directory that every process of every host joins over TCP, and
//! sessions between processes of different hosts over TCP.
//!
//! Where the LAN directory is, is configured, never guessed: [`configure`] before the
//! directory is first used, else the environment (`STRATA_LAN_DIRECTORY=HOST:PORT`, and
//! `STRATA_LAN_KEY=FILE` for the pre-shared key, a file `strata key new --psk` makes;
//! or static keys: `STRATA_LAN_IDENTITY=FILE`, this host's key from `strata key new`, and
//! `STRATA_LAN_PEERS=FILE`, the public keys allowed at the other end, one per line).
//! `strata directory --lan --listen ADDR --key FILE` runs one ([`serve`]). Or the LAN
//! scope is served by an etcd cluster (`STRATA_LAN_DIRECTORY=etcd://H:P,H:P,...`, with
//! the `etcd` feature: `directory::etcd`); sessions between hosts are the same.
//!
//! Every link of the LAN scope (to the LAN directory, and sessions between hosts) is
//! encrypted (Noise) with the key and keeps alive: a ping every [`KEEP_ALIVE`], closed
//! as gone stale after three intervals without a word, so a host that goes silent is
//! dropped within seconds. A link off loopback without a key is refused (the rule of
//! every strata link). Each process joins the LAN directory itself, rather than through
//! its host's directory: a process's LAN listings then live and end with that process
//! alone, not with whichever process of the host serves the host directory.
//!
//! The LAN directory takes the address it gives other hosts for a process's sessions
//! from the link the process joined over (its IP as the socket saw it) and the port from
//! what the process says, never the IP from the message.

use std::net::SocketAddr;
use std::sync::OnceLock;
use std::time::Duration;

use crate::net::keys::{PublicKey, StaticKey};
use crate::net::{Connect, Listen};
use crate::Address;

/// The environment variable naming the LAN directory (`HOST:PORT`).
pub const LAN_DIRECTORY_VARIABLE: &str = "STRATA_LAN_DIRECTORY";

/// The environment variable naming the file of the LAN's pre-shared key.
pub const LAN_KEY_VARIABLE: &str = "STRATA_LAN_KEY";

/// The keep-alive interval of every link of the LAN scope: three without a word (2.7 s,
/// checked every quarter interval) and the link is closed (`WentStale`), so a host that
/// goes silent is dropped within 3 s.
pub const KEEP_ALIVE: Duration = Duration::from_millis(900);

/// How this process reaches the LAN.
#[derive(Clone)]
pub struct LanSettings {
    /// The LAN directory's address.
    pub directory: SocketAddr,
    /// The pre-shared key of every LAN link (required off loopback).
    pub key: Option<[u8; 32]>,
    /// The keep-alive interval of LAN links.
    pub keep_alive: Duration,
    /// When the LAN scope is served by an etcd cluster rather than a LAN directory: its
    /// members (`directory` is then the first member's address).
    pub etcd: Option<EtcdCluster>,
    /// This host's static key (Noise `XX`): every LAN link then proves it, and learns the
    /// peer's (from `STRATA_LAN_IDENTITY`, a file of `strata key new`).
    pub identity: Option<StaticKey>,
    /// The static keys allowed at the other end of a LAN link; any other is refused,
    /// saying so on both sides (from `STRATA_LAN_PEERS`, a file of public keys, one per
    /// line). Needs an `identity`.
    pub peers: Vec<PublicKey>,
}

/// The environment variable naming this host's static key file.
pub const LAN_IDENTITY_VARIABLE: &str = "STRATA_LAN_IDENTITY";

/// The environment variable naming the file of the static public keys allowed on LAN
/// links (64 hex digits per line; `#` starts a comment).
pub const LAN_PEERS_VARIABLE: &str = "STRATA_LAN_PEERS";

/// The public keys of a peers file (see [`LAN_PEERS_VARIABLE`]), or why not, naming the
/// file and the line.
pub fn read_peers(path: &std::path::Path) -> Result<Vec<PublicKey>, String> {
    let text = std::fs::read_to_string(path).map_err(|e| format!("{}: {e}", path.display()))?;
    let mut keys = Vec::new();
    for (n, line) in text.lines().enumerate() {
        let line = line.split('#').next().unwrap_or("").trim();
        if line.is_empty() {
            continue;
        }
        let key = line
            .parse::<PublicKey>()
            .map_err(|e| format!("{} line {}: {e}", path.display(), n + 1))?;
        keys.push(key);
    }
    if keys.is_empty() {
        return Err(format!("{}: no public key in it", path.display()));
    }
    Ok(keys)
}

/// An etcd cluster that serves the LAN scope (`STRATA_LAN_DIRECTORY=etcd://H:P,H:P,...`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EtcdCluster {
    /// The members' client addresses (`HOST:PORT`).
    pub members: Vec<String>,
    /// The key prefix under which the LAN listings are kept (default `/strata/lan`).
    pub prefix: String,
    /// TLS to the members, when configured: the CA that signed their certificates (PEM),
    /// and this host's own certificate and key (PEM) when the cluster asks clients for
    /// one. From `STRATA_ETCD_CA`, `STRATA_ETCD_CERT` and `STRATA_ETCD_KEY` (files).
    pub tls: Option<EtcdTls>,
}

/// TLS credentials for etcd (see [`EtcdCluster::tls`]), read when the settings are.
#[derive(Clone, PartialEq, Eq)]
pub struct EtcdTls {
    /// The CA certificate (PEM).
    pub ca: Vec<u8>,
    /// This host's certificate and private key (PEM), for client authentication.
    pub identity: Option<(Vec<u8>, Vec<u8>)>,
}

impl std::fmt::Debug for EtcdTls {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EtcdTls")
            .field("ca", &format_args!("{} bytes", self.ca.len()))
            .field("identity", &self.identity.is_some())
            .finish()
    }
}

/// The environment variable naming the CA certificate (PEM) of the etcd members.
pub const ETCD_CA_VARIABLE: &str = "STRATA_ETCD_CA";

/// The environment variable naming this host's certificate (PEM) for etcd.
pub const ETCD_CERT_VARIABLE: &str = "STRATA_ETCD_CERT";

/// The environment variable naming this host's private key (PEM) for etcd.
pub const ETCD_KEY_VARIABLE: &str = "STRATA_ETCD_KEY";

impl EtcdTls {
    /// The credentials the environment names (`None` without `STRATA_ETCD_CA`), or why
    /// they cannot be had, naming the variable and the file.
    pub fn from_env() -> Result<Option<EtcdTls>, String> {
        let read = |variable: &str| -> Result<Option<Vec<u8>>, String> {
            let Some(path) = std::env::var_os(variable) else {
                return Ok(None);
            };
            let shown = std::path::Path::new(&path).display().to_string();
            let bytes = std::fs::read(&path).map_err(|e| format!("{variable}={shown}: {e}"))?;
            if !bytes.starts_with(b"-----BEGIN") {
                return Err(format!("{variable}={shown}: not a PEM file"));
            }
            Ok(Some(bytes))
        };
        let ca = read(ETCD_CA_VARIABLE)?;
        let cert = read(ETCD_CERT_VARIABLE)?;
        let key = read(ETCD_KEY_VARIABLE)?;
        let identity = match (cert, key) {
            (Some(c), Some(k)) => Some((c, k)),
            (None, None) => None,
            _ => {
                return Err(format!(
                    "{ETCD_CERT_VARIABLE} and {ETCD_KEY_VARIABLE} go together: set both or neither"
                ))
            }
        };
        match ca {
            Some(ca) => Ok(Some(EtcdTls { ca, identity })),
            None if identity.is_some() => Err(format!(
                "{ETCD_CERT_VARIABLE} is set without {ETCD_CA_VARIABLE}: name the CA of the etcd members"
            )),
            None => Ok(None),
        }
    }
}

impl EtcdCluster {
    /// The cluster of `url`: `etcd://H:P,H:P,...` with an optional `/PREFIX` after the
    /// members; or why it is not one.
    pub fn parse(url: &str) -> Result<EtcdCluster, String> {
        let rest = url
            .strip_prefix("etcd://")
            .ok_or_else(|| format!("{url:?} is not etcd://HOST:PORT,..."))?;
        let (members, prefix) = match rest.find('/') {
            Some(i) => (&rest[..i], rest[i..].trim_end_matches('/').to_string()),
            None => (rest, "/strata/lan".to_string()),
        };
        if prefix.is_empty() || prefix.len() > 200 || prefix.contains(char::is_whitespace) {
            return Err(format!(
                "{url:?}: the key prefix must be 1 to 200 characters without spaces"
            ));
        }
        let members: Vec<String> = members.split(',').map(|m| m.trim().to_string()).collect();
        if members.len() > 16 {
            return Err(format!("{url:?}: at most 16 members"));
        }
        for m in &members {
            let ok = m.rsplit_once(':').is_some_and(|(host, port)| {
                !host.is_empty() && port.parse::<u16>().is_ok_and(|p| p > 0)
            });
            if !ok {
                return Err(format!("{url:?}: member {m:?} is not HOST:PORT"));
            }
        }
        Ok(EtcdCluster {
            members,
            prefix,
            tls: None,
        })
    }
}

impl std::fmt::Debug for LanSettings {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LanSettings")
            .field("directory", &self.directory)
            .field("key", &self.key.as_ref().map(crate::net::keys::psk_id))
            .field("keep_alive", &self.keep_alive)
            .field("etcd", &self.etcd)
            .field("identity", &self.identity)
            .field("peers", &self.peers.len())
            .finish()
    }
}

impl LanSettings {
    /// The settings for the LAN directory at `directory`, with `key`.
    pub fn new(directory: SocketAddr, key: Option<[u8; 32]>) -> LanSettings {
        LanSettings {
            directory,
            key,
            keep_alive: KEEP_ALIVE,
            etcd: None,
            identity: None,
            peers: Vec::new(),
        }
    }

    /// These settings with a static key for this host and the keys allowed at the other
    /// end of every LAN link.
    pub fn with_identity(mut self, identity: StaticKey, peers: Vec<PublicKey>) -> LanSettings {
        self.identity = Some(identity);
        self.peers = peers;
        self
    }

    /// Whether LAN links authenticate their peer (a pre-shared key, or static keys with
    /// an allow-list), which links off loopback need.
    fn authenticated(&self) -> bool {
        self.key.is_some() || (self.identity.is_some() && !self.peers.is_empty())
    }

    /// The settings for the LAN scope on the etcd cluster `cluster`, with `key` for the
    /// sessions between hosts; or why the cluster's first member has no address.
    pub fn etcd(cluster: EtcdCluster, key: Option<[u8; 32]>) -> Result<LanSettings, String> {
        use std::net::ToSocketAddrs;
        let first = &cluster.members[0];
        let directory = first
            .to_socket_addrs()
            .ok()
            .and_then(|mut a| a.next())
            .ok_or_else(|| format!("etcd member {first:?} has no address"))?;
        let mut settings = LanSettings::new(directory, key);
        settings.etcd = Some(cluster);
        Ok(settings)
    }

    /// Where this process takes sessions from other hosts: every interface with a key;
    /// without one only loopback, when the LAN directory is there too (a link off
    /// loopback without a key is refused, saying so).
    pub(crate) fn session_address(&self) -> SocketAddr {
        let loopback_only = !self.authenticated() && self.directory.ip().is_loopback();
        let ip: std::net::IpAddr = if loopback_only {
            std::net::Ipv4Addr::LOCALHOST.into()
        } else {
            std::net::Ipv4Addr::UNSPECIFIED.into()
        };
        SocketAddr::new(ip, 0)
    }

    /// A listener for LAN links on `address`.
    pub(crate) fn listen(&self, address: SocketAddr) -> Listen {
        let mut l = Listen::new(address)
            .encrypted(true)
            .keep_alive(self.keep_alive);
        if let Some(k) = self.key {
            l = l.key(k);
        }
        if let Some(identity) = &self.identity {
            l = l.identity(identity.clone()).allow_peers(self.peers.clone());
        }
        l
    }

    /// A LAN link to `address`.
    pub(crate) fn connect(&self, address: SocketAddr) -> Connect {
        let mut c = Connect::new(address)
            .encrypted(true)
            .keep_alive(self.keep_alive);
        if let Some(k) = self.key {
            c = c.key(k);
        }
        if let Some(identity) = &self.identity {
            c = c.identity(identity.clone()).allow_peers(self.peers.clone());
        }
        c
    }
}

static CONFIGURED: OnceLock<Option<LanSettings>> = OnceLock::new();

/// Sets how this process reaches the LAN, before the directory is first used; refused
/// (naming why) once the settings were read.
pub fn configure(settings: LanSettings) -> Result<(), String> {
    CONFIGURED.set(Some(settings)).map_err(|_| {
        "the LAN settings were read already: configure them before the directory is first used"
            .to_string()
    })
}

/// This process's LAN settings: configured, else from the environment (read once), else
/// none (the LAN scope is not served).
pub fn settings() -> Result<Option<LanSettings>, String> {
    static FROM_ENV: OnceLock<Result<Option<LanSettings>, String>> = OnceLock::new();
    if let Some(s) = CONFIGURED.get() {
        return Ok(s.clone());
    }
    FROM_ENV
        .get_or_init(|| {
            let Ok(address) = std::env::var(LAN_DIRECTORY_VARIABLE) else {
                return Ok(None);
            };
            let key = match std::env::var_os(LAN_KEY_VARIABLE) {
                Some(path) => Some(crate::net::keys::load_psk(&path).map_err(|e| {
                    format!(
                        "{LAN_KEY_VARIABLE}={}: {e}",
                        std::path::Path::new(&path).display()
                    )
                })?),
                None => None,
            };
            let identity = match std::env::var_os(LAN_IDENTITY_VARIABLE) {
                Some(path) => Some(StaticKey::load(&path).map_err(|e| {
                    format!("{LAN_IDENTITY_VARIABLE}={}: {e}", std::path::Path::new(&path).display())
                })?),
                None => None,
            };
            let peers = match std::env::var_os(LAN_PEERS_VARIABLE) {
                Some(path) => read_peers(std::path::Path::new(&path))
                    .map_err(|e| format!("{LAN_PEERS_VARIABLE}={e}"))?,
                None => Vec::new(),
            };
            if identity.is_none() != peers.is_empty() {
                return Err(format!(
                    "{LAN_IDENTITY_VARIABLE} and {LAN_PEERS_VARIABLE} go together: this host's key, and the keys it allows"
                ));
            }
            let with_identity = |s: LanSettings| match identity.clone() {
                Some(i) => s.with_identity(i, peers.clone()),
                None => s,
            };
            if address.starts_with("etcd://") {
                if !cfg!(feature = "etcd") {
                    return Err(format!(
                        "{LAN_DIRECTORY_VARIABLE}={address:?}: this build of strata has no etcd support (the `etcd` feature)"
                    ));
                }
                let mut cluster = EtcdCluster::parse(&address)
                    .map_err(|e| format!("{LAN_DIRECTORY_VARIABLE}: {e}"))?;
                cluster.tls = EtcdTls::from_env()?;
                return LanSettings::etcd(cluster, key)
                    .map(|s| Some(with_identity(s)))
                    .map_err(|e| format!("{LAN_DIRECTORY_VARIABLE}: {e}"));
            }
            let directory: SocketAddr = address.parse().map_err(|e| {
                format!("{LAN_DIRECTORY_VARIABLE}={address:?} is not HOST:PORT or etcd://HOST:PORT,...: {e}")
            })?;
            Ok(Some(with_identity(LanSettings::new(directory, key))))
        })
        .clone()
}

/// Serves the LAN directory in this process, listening on `address` with `settings`'
/// key and keep-alive; gives its address.
pub fn serve(address: SocketAddr, key: Option<[u8; 32]>) -> Address {
    serve_with(address, &LanSettings::new(address, key))
}

/// Serves the LAN directory in this process, listening on `address` with the keys and
/// keep-alive of `settings` (a pre-shared key, static keys, or both); gives its address.
pub fn serve_with(address: SocketAddr, settings: &LanSettings) -> Address {
    let directory = crate::object::create_root(super::shared::SharedDirectory::new(
        super::name::Scope::Lan,
        Some(settings.listen(address)),
    ));
    tracing::info!(target: "strata::directory", %directory, %address, "serving the LAN directory");
    directory
}

/// A session endpoint of the LAN scope, as a process announces it (`tcp:IP:PORT`).
pub(crate) fn endpoint(address: SocketAddr) -> String {
    format!("tcp:{address}")
}

/// The address of a `tcp:` endpoint.
pub(crate) fn parse_endpoint(endpoint: &str) -> Option<SocketAddr> {
    endpoint.strip_prefix("tcp:")?.parse().ok()
}

/// `endpoint` with its IP replaced by `ip` (what the LAN directory's socket saw).
pub(crate) fn with_ip(endpoint: &str, ip: std::net::IpAddr) -> Option<String> {
    let mut address = parse_endpoint(endpoint)?;
    address.set_ip(ip);
    Some(self::endpoint(address))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_etcd_cluster_is_parsed_and_nonsense_refused_with_a_reason() {
        let c = EtcdCluster::parse("etcd://127.0.0.1:2379,127.0.0.1:2479").unwrap();
        assert_eq!(c.members, ["127.0.0.1:2379", "127.0.0.1:2479"]);
        assert_eq!(c.prefix, "/strata/lan");
        let c = EtcdCluster::parse("etcd://h1:2379/team/a/").unwrap();
        assert_eq!((c.members.len(), c.prefix.as_str()), (1, "/team/a"));
        for (bad, why) in [
            ("http://h:1", "not etcd://"),
            ("etcd://", "is not HOST:PORT"),
            ("etcd://h1", "is not HOST:PORT"),
            ("etcd://h1:0", "is not HOST:PORT"),
            ("etcd://h1:2379,:2379", "is not HOST:PORT"),
        ] {
            let e = EtcdCluster::parse(bad).unwrap_err();
            assert!(e.contains(why), "{bad}: {e}");
        }
    }

    #[test]
    fn an_endpoint_takes_the_ip_the_socket_saw() {
        let e = endpoint("0.0.0.0:4100".parse().unwrap());
        assert_eq!(e, "tcp:0.0.0.0:4100");
        assert_eq!(
            with_ip(&e, "10.77.1.2".parse().unwrap()).as_deref(),
            Some("tcp:10.77.1.2:4100")
        );
        assert_eq!(with_ip("/tmp/x.sock", "10.0.0.1".parse().unwrap()), None);
        assert_eq!(parse_endpoint("tcp:nonsense"), None);
    }
}
