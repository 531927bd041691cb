//! HTTPS for the load client benchmark: a certificate authority and a server certificate
//! for 127.0.0.1 made for each run ([`certificates`], with `rcgen`), and the rustls server
//! configuration that the bare hyper server's TLS listener uses (`serve-hyper ADDRESS
//! --tls PORT DIR`).

use std::path::{Path, PathBuf};
use std::sync::Arc;

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};

/// The CA's certificate in a [`certificates`] folder (what the loaders trust).
pub const CA_FILE: &str = "ca.pem";
const CERT_FILE: &str = "cert.pem";
const KEY_FILE: &str = "key.pem";

/// Where [`certificates`] puts them: `bench/target/http/tls`.
pub fn dir() -> PathBuf {
    super::bench_dir().join("target/http/tls")
}

/// The CA certificate the loaders trust.
pub fn ca_file() -> PathBuf {
    dir().join(CA_FILE)
}

/// Makes a fresh CA and a server certificate for 127.0.0.1 signed by it, in [`dir`];
/// returns the folder.
pub fn certificates() -> Result<PathBuf, String> {
    use rcgen::{BasicConstraints, CertificateParams, DnType, IsCa, KeyPair};
    let fail = |what: &str, e: rcgen::Error| format!("cannot make the {what}: {e}");
    let ca_key = KeyPair::generate().map_err(|e| fail("CA key", e))?;
    let mut ca_params = CertificateParams::new(Vec::<String>::new()).map_err(|e| fail("CA", e))?;
    ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    ca_params
        .distinguished_name
        .push(DnType::CommonName, "strata bench CA");
    let ca = ca_params
        .self_signed(&ca_key)
        .map_err(|e| fail("CA certificate", e))?;
    let key = KeyPair::generate().map_err(|e| fail("server key", e))?;
    let cert = CertificateParams::new(vec!["127.0.0.1".to_string(), "localhost".to_string()])
        .map_err(|e| fail("server certificate", e))?
        .signed_by(&key, &ca, &ca_key)
        .map_err(|e| fail("server certificate", e))?;
    let dir = dir();
    std::fs::create_dir_all(&dir).map_err(|e| format!("cannot make {}: {e}", dir.display()))?;
    for (name, text) in [
        (CA_FILE, ca.pem()),
        (CERT_FILE, cert.pem()),
        (KEY_FILE, key.serialize_pem()),
    ] {
        let path = dir.join(name);
        std::fs::write(&path, text).map_err(|e| format!("cannot write {}: {e}", path.display()))?;
    }
    Ok(dir)
}

/// The server configuration from a [`certificates`] folder.
pub fn server_config(dir: &Path) -> Result<Arc<rustls::ServerConfig>, String> {
    let cert_path = dir.join(CERT_FILE);
    let certs: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(&cert_path)
        .and_then(|i| i.collect())
        .map_err(|e| format!("{}: {e}", cert_path.display()))?;
    let key_path = dir.join(KEY_FILE);
    let key = PrivateKeyDer::from_pem_file(&key_path)
        .map_err(|e| format!("{}: {e}", key_path.display()))?;
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| format!("TLS: {e}"))?
        .with_no_client_auth()
        .with_single_cert(certs, key)
        .map_err(|e| format!("TLS: {e}"))?;
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(Arc::new(config))
}
