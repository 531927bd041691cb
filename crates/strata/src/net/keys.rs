//! Keys for authenticated links: a node's static X25519 identity, the public keys of the
//! peers it allows, and pre-shared keys — made from the operating system's random source
//! and kept in private hex files.
//!
//! ```no_run
//! use strata::net::keys::{self, PublicKey, StaticKey};
//! use strata::net::Listen;
//!
//! // Once, on each node (or `strata key new --out node.key`):
//! let me = StaticKey::generate().unwrap();
//! me.save("node.key").unwrap(); // written with mode 0600
//! println!("{}", me.public()); // give this to the peers that must allow this node
//!
//! // Every run:
//! let me = StaticKey::load("node.key").unwrap(); // refused if group or others can read it
//! let peer: PublicKey = "8f0c…(64 hex digits)".parse().unwrap();
//! let listen = Listen::new("0.0.0.0:5051".parse().unwrap())
//!     .encrypted(true)
//!     .identity(me)
//!     .allow_peers([peer]);
//! # let _ = (listen, keys::generate_psk());
//! ```
//!
//! A key file is text: comment lines starting with `#`, then one `label hex` line per
//! value (`secret` and `public` for a static key, `psk` for a pre-shared key; 64 hex
//! digits each). [`StaticKey::save`] and [`save_psk`] create it with mode 0600 and never
//! overwrite a file; [`StaticKey::load`] and [`load_psk`] refuse a file that group or
//! others may read or write.
//!
//! Ids name keys without revealing them, in logs and in the `peer_key` of
//! [`Accepted`](super::Accepted) / [`Connected`](super::Connected):
//! [`PublicKey::id`] is `x25519:` and the first 8 bytes of the public key in hex (a
//! public key is no secret); [`psk_id`] is `psk:` and 8 bytes of a BLAKE2s hash of a fixed
//! label and the key — the same 8 bytes a connecting end sends in its preamble to say which
//! key it holds. The label keeps that id from being the plain hash of the key found
//! elsewhere.

use std::fmt;
use std::io::{Read, Write};
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::str::FromStr;

use super::frame::KEY_ID_LEN;

/// Why a key could not be made, read, written or parsed.
#[derive(Debug, thiserror::Error)]
pub enum KeyError {
    /// The file could not be opened or read.
    #[error("cannot read the key file {}: {error}", .path.display())]
    Read {
        /// The file.
        path: PathBuf,
        /// What the system said.
        error: std::io::Error,
    },
    /// The file could not be created or written.
    #[error("cannot write the key file {}: {error}", .path.display())]
    Write {
        /// The file.
        path: PathBuf,
        /// What the system said.
        error: std::io::Error,
    },
    /// Saving would overwrite an existing file.
    #[error("the key file {} already exists: keys are never overwritten (remove it first, or choose another path)", .path.display())]
    Exists {
        /// The file.
        path: PathBuf,
    },
    /// Group or others may read or write the file.
    #[error("the key file {} is open to group or others (mode {mode:04o}); a key file must be mode 0600 or stricter: chmod 600 {}", .path.display(), .path.display())]
    Permissions {
        /// The file.
        path: PathBuf,
        /// Its permission bits.
        mode: u32,
    },
    /// The file's contents are not the key asked for.
    #[error("the key file {} is not usable: {reason}", .path.display())]
    Format {
        /// The file.
        path: PathBuf,
        /// What is wrong with it.
        reason: String,
    },
    /// Text that should be a key in hex is not.
    #[error("not a 32-byte key in hex: {0}")]
    Hex(String),
    /// The operating system gave no random bytes.
    #[error("no random bytes from the operating system: {0}")]
    Random(std::io::Error),
    /// This build has no X25519 arithmetic (the cargo feature `noise` is off).
    #[error("this build of strata has no X25519 (the cargo feature `noise` is off)")]
    NoCurve,
}

/// The public half of a static key: what a peer lists in
/// [`allow_peers`](super::Listen::allow_peers). Parse one from 64 hex digits
/// (`"…".parse()`), print it with `{}` (the same 64 digits).
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct PublicKey([u8; 32]);

impl PublicKey {
    /// The public key with these bytes.
    pub fn from_bytes(bytes: [u8; 32]) -> Self {
        PublicKey(bytes)
    }

    /// Its bytes.
    pub fn as_bytes(&self) -> &[u8; 32] {
        &self.0
    }

    /// A short name for the key: `x25519:` and its first 8 bytes in hex (see the module
    /// doc). Good for logs and for telling allowed peers apart; decisions compare whole
    /// keys, as [`allow_peers`](super::Listen::allow_peers) does.
    pub fn id(&self) -> String {
        format!("x25519:{}", hex(&self.0[..KEY_ID_LEN]))
    }
}

impl From<[u8; 32]> for PublicKey {
    fn from(bytes: [u8; 32]) -> Self {
        PublicKey(bytes)
    }
}

impl fmt::Display for PublicKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&hex(&self.0))
    }
}

impl fmt::Debug for PublicKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "PublicKey({})", self.id())
    }
}

impl FromStr for PublicKey {
    type Err = KeyError;

    /// Reads 64 hex digits (surrounding white space is ignored).
    fn from_str(s: &str) -> Result<Self, KeyError> {
        unhex32(s).map(PublicKey)
    }
}

/// A node's static X25519 key pair: its identity on links set up with
/// [`identity`](super::Listen::identity). The secret half never leaves the process
/// except through [`save`](StaticKey::save); `Debug` shows only the public id.
#[derive(Clone)]
pub struct StaticKey {
    secret: [u8; 32],
    public: PublicKey,
}

impl StaticKey {
    /// A new key pair from the operating system's random source.
    pub fn generate() -> Result<StaticKey, KeyError> {
        let mut secret = [0u8; 32];
        os_random(&mut secret)?;
        StaticKey::from_secret(secret)
    }

    /// The key pair of a 32-byte X25519 secret (any 32 bytes are a valid secret).
    pub fn from_secret(secret: [u8; 32]) -> Result<StaticKey, KeyError> {
        let public = super::noise::public_key(&secret).ok_or(KeyError::NoCurve)?;
        Ok(StaticKey {
            secret,
            public: PublicKey(public),
        })
    }

    /// The public half, to give to the peers that must allow this node.
    pub fn public(&self) -> PublicKey {
        self.public
    }

    /// The secret half, for the Noise handshake.
    pub(crate) fn secret(&self) -> &[u8; 32] {
        &self.secret
    }

    /// Reads a key pair saved by [`save`](StaticKey::save) (or `strata key new`). Refuses
    /// a file that group or others may read or write, a pre-shared key file, and a file
    /// whose `public` line does not belong to its `secret`.
    pub fn load(path: impl AsRef<Path>) -> Result<StaticKey, KeyError> {
        let path = path.as_ref();
        let fields = read_key_file(path)?;
        let format = |reason: &str| KeyError::Format {
            path: path.to_path_buf(),
            reason: reason.to_string(),
        };
        if fields.psk.is_some() {
            return Err(format(
                "it holds a pre-shared key, not a static key (load it with keys::load_psk)",
            ));
        }
        let secret = fields
            .secret
            .ok_or_else(|| format("it has no `secret` line"))?;
        let key = StaticKey::from_secret(secret)?;
        if fields.public.is_some_and(|p| p != key.public.0) {
            return Err(format(
                "its `public` line is not the public half of its secret",
            ));
        }
        Ok(key)
    }

    /// Writes the key pair to a new file at `path` with mode 0600 (an existing file is
    /// never overwritten).
    pub fn save(&self, path: impl AsRef<Path>) -> Result<(), KeyError> {
        let text = format!(
            "# strata static key (X25519): the secret, then its public half.\n\
             # Keep this file private (mode 0600); give peers the public line only.\n\
             secret {}\npublic {}\n",
            hex(&self.secret),
            self.public
        );
        write_key_file(path.as_ref(), &text)
    }
}

impl fmt::Debug for StaticKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("StaticKey")
            .field("public", &self.public.id())
            .finish_non_exhaustive()
    }
}

/// A new 32-byte pre-shared key from the operating system's random source (for
/// [`key`](super::Listen::key)).
pub fn generate_psk() -> Result<[u8; 32], KeyError> {
    let mut key = [0u8; 32];
    os_random(&mut key)?;
    Ok(key)
}

/// Reads a pre-shared key saved by [`save_psk`] (or `strata key new --psk`). Refuses a
/// file that group or others may read or write, and a static key file.
pub fn load_psk(path: impl AsRef<Path>) -> Result<[u8; 32], KeyError> {
    let path = path.as_ref();
    let fields = read_key_file(path)?;
    if fields.secret.is_some() || fields.public.is_some() {
        return Err(KeyError::Format {
            path: path.to_path_buf(),
            reason: "it holds a static key, not a pre-shared key (load it with StaticKey::load)"
                .into(),
        });
    }
    fields.psk.ok_or_else(|| KeyError::Format {
        path: path.to_path_buf(),
        reason: "it has no `psk` line".into(),
    })
}

/// Writes a pre-shared key to a new file at `path` with mode 0600 (an existing file is
/// never overwritten).
pub fn save_psk(path: impl AsRef<Path>, key: &[u8; 32]) -> Result<(), KeyError> {
    let text = format!(
        "# strata pre-shared key (32 bytes). Keep this file private (mode 0600);\n\
         # every end that holds it may link with the others.\n\
         psk {}\n",
        hex(key)
    );
    write_key_file(path.as_ref(), &text)
}

/// The id of a pre-shared key: `psk:` and the 8 bytes its preamble carries, in hex (see
/// the module doc).
pub fn psk_id(key: &[u8; 32]) -> String {
    format!("psk:{}", hex(&psk_wire_id(key)))
}

/// The labelled values a key file holds (which ones it has says what kind of key it is).
#[derive(Default)]
struct KeyFields {
    secret: Option<[u8; 32]>,
    public: Option<[u8; 32]>,
    psk: Option<[u8; 32]>,
}

/// The label hashed with a pre-shared key to make its id (domain separation: the id is
/// not the plain hash of the key that other software might publish).
const PSK_ID_LABEL: &[u8] = b"strata link pre-shared key id, version 1\0";

/// The 8 bytes a preamble carries to name a pre-shared key: the start of
/// BLAKE2s(label ‖ key).
pub(crate) fn psk_wire_id(key: &[u8; 32]) -> [u8; KEY_ID_LEN] {
    use blake2::{Blake2s256, Digest};
    let digest = Blake2s256::new()
        .chain_update(PSK_ID_LABEL)
        .chain_update(key)
        .finalize();
    digest[..KEY_ID_LEN].try_into().expect("8 bytes")
}

/// The largest key file read (a few lines of hex and comments).
const MAX_KEY_FILE: u64 = 4096;

fn read_key_file(path: &Path) -> Result<KeyFields, KeyError> {
    let read = |error| KeyError::Read {
        path: path.to_path_buf(),
        error,
    };
    let format = |reason: String| KeyError::Format {
        path: path.to_path_buf(),
        reason,
    };
    let mut file = std::fs::File::open(path).map_err(read)?;
    // The checks are on the opened file, so the file read is the file checked.
    let meta = file.metadata().map_err(read)?;
    if !meta.is_file() {
        return Err(format("it is not a regular file".into()));
    }
    let mode = meta.permissions().mode() & 0o7777;
    if mode & 0o077 != 0 {
        return Err(KeyError::Permissions {
            path: path.to_path_buf(),
            mode,
        });
    }
    let mut text = String::new();
    Read::by_ref(&mut file)
        .take(MAX_KEY_FILE + 1)
        .read_to_string(&mut text)
        .map_err(read)?;
    if text.len() as u64 > MAX_KEY_FILE {
        return Err(format(format!("it is over {MAX_KEY_FILE} bytes")));
    }
    let mut fields = KeyFields::default();
    for (n, line) in text.lines().enumerate() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let (label, value) = line.split_once(char::is_whitespace).unwrap_or((line, ""));
        let slot = match label {
            "secret" => &mut fields.secret,
            "public" => &mut fields.public,
            "psk" => &mut fields.psk,
            other => {
                return Err(format(format!(
                    "line {}: unknown label `{}` (expected secret, public or psk)",
                    n + 1,
                    other.chars().take(32).collect::<String>()
                )))
            }
        };
        if slot.is_some() {
            return Err(format(format!("line {}: a second `{label}` line", n + 1)));
        }
        // The value is secret: say what is wrong with it, never what it is.
        let value = unhex32(value).map_err(|e| format(format!("line {}: {e}", n + 1)))?;
        *slot = Some(value);
    }
    Ok(fields)
}

fn write_key_file(path: &Path, text: &str) -> Result<(), KeyError> {
    let mut file = match std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)
    {
        Ok(f) => f,
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
            return Err(KeyError::Exists {
                path: path.to_path_buf(),
            })
        }
        Err(error) => {
            return Err(KeyError::Write {
                path: path.to_path_buf(),
                error,
            })
        }
    };
    if let Err(error) = file
        .write_all(text.as_bytes())
        .and_then(|()| file.sync_all())
    {
        drop(file);
        let _ = std::fs::remove_file(path);
        return Err(KeyError::Write {
            path: path.to_path_buf(),
            error,
        });
    }
    Ok(())
}

/// Fills `out` from the kernel's random source (`getrandom(2)`, which waits until the
/// source is seeded).
fn os_random(out: &mut [u8]) -> Result<(), KeyError> {
    let mut filled = 0;
    while filled < out.len() {
        let rest = &mut out[filled..];
        // SAFETY: the kernel writes at most `rest.len()` bytes into `rest`, which we own.
        let n = unsafe { libc::getrandom(rest.as_mut_ptr().cast(), rest.len(), 0) };
        if n < 0 {
            let e = std::io::Error::last_os_error();
            if e.kind() == std::io::ErrorKind::Interrupted {
                continue;
            }
            return Err(KeyError::Random(e));
        }
        filled += n as usize;
    }
    Ok(())
}

/// Lower-case hex of `bytes`.
pub(crate) fn hex(bytes: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut s = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        s.push(DIGITS[usize::from(b >> 4)] as char);
        s.push(DIGITS[usize::from(b & 15)] as char);
    }
    s
}

/// 32 bytes from exactly 64 hex digits (either case; surrounding white space ignored).
/// The error says what is wrong without repeating the text (which may be a secret).
fn unhex32(s: &str) -> Result<[u8; 32], KeyError> {
    let s = s.trim().as_bytes();
    if s.len() != 64 {
        return Err(KeyError::Hex(format!(
            "{} characters, expected 64 hex digits",
            s.len()
        )));
    }
    let digit = |c: u8| match c {
        b'0'..=b'9' => Some(c - b'0'),
        b'a'..=b'f' => Some(c - b'a' + 10),
        b'A'..=b'F' => Some(c - b'A' + 10),
        _ => None,
    };
    let mut out = [0u8; 32];
    for (i, pair) in s.chunks(2).enumerate() {
        match (digit(pair[0]), digit(pair[1])) {
            (Some(hi), Some(lo)) => out[i] = hi << 4 | lo,
            _ => {
                return Err(KeyError::Hex(format!(
                    "a character that is not a hex digit at position {}",
                    2 * i + usize::from(digit(pair[0]).is_some())
                )))
            }
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A fresh directory for one test's files, removed when dropped.
    struct TempDir(PathBuf);

    impl TempDir {
        fn new(name: &str) -> TempDir {
            let dir = std::env::temp_dir().join(format!(
                "strata-keys-{name}-{}-{}",
                std::process::id(),
                crate::random::Rng::seeded().next_u64()
            ));
            std::fs::create_dir(&dir).unwrap();
            TempDir(dir)
        }

        fn file(&self, name: &str) -> PathBuf {
            self.0.join(name)
        }
    }

    impl Drop for TempDir {
        fn drop(&mut self) {
            let _ = std::fs::remove_dir_all(&self.0);
        }
    }

    fn chmod(path: &Path, mode: u32) {
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode)).unwrap();
    }

    #[test]
    fn hex_round_trips_and_bad_hex_is_named_without_repeating_it() {
        let bytes: [u8; 32] = std::array::from_fn(|i| (i * 37) as u8);
        let text = hex(&bytes);
        assert_eq!(text.len(), 64);
        assert_eq!(unhex32(&text).unwrap(), bytes);
        assert_eq!(
            unhex32(&format!("  {}\n", text.to_uppercase())).unwrap(),
            bytes
        );
        let short = unhex32("abcd").unwrap_err().to_string();
        assert_eq!(
            short,
            "not a 32-byte key in hex: 4 characters, expected 64 hex digits"
        );
        let mut bad = text.clone();
        bad.replace_range(9..10, "g");
        let e = unhex32(&bad).unwrap_err().to_string();
        assert!(e.contains("position 9"), "{e}");
        assert!(!e.contains(&bad), "the text is not repeated: {e}");
    }

    #[test]
    fn ids_are_short_prefixed_and_the_psk_id_is_domain_separated() {
        let public = PublicKey::from_bytes(std::array::from_fn(|i| i as u8));
        assert_eq!(public.id(), "x25519:0001020304050607");
        let key = [9u8; 32];
        let id = psk_id(&key);
        assert_eq!(id, format!("psk:{}", hex(&psk_wire_id(&key))));
        // Not the plain BLAKE2s of the key (which is what the id was before).
        use blake2::{Blake2s256, Digest};
        let plain = Blake2s256::digest(key);
        assert_ne!(psk_wire_id(&key)[..], plain[..KEY_ID_LEN]);
        assert_ne!(psk_wire_id(&key), psk_wire_id(&[8u8; 32]));
    }

    #[test]
    fn generated_keys_differ() {
        let a = generate_psk().unwrap();
        let b = generate_psk().unwrap();
        assert_ne!(a, b);
        assert_ne!(a, [0; 32]);
    }

    #[cfg(feature = "noise")]
    #[test]
    fn a_static_key_is_saved_private_and_loads_back() {
        let dir = TempDir::new("static");
        let path = dir.file("node.key");
        let key = StaticKey::generate().unwrap();
        assert_ne!(key.public(), StaticKey::generate().unwrap().public());
        key.save(&path).unwrap();
        let mode = std::fs::metadata(&path).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode & 0o077, 0, "saved with mode {mode:o}");
        let back = StaticKey::load(&path).unwrap();
        assert_eq!(back.public(), key.public());
        assert_eq!(back.secret(), key.secret());
        // The public half printed and parsed is the same key.
        assert_eq!(
            key.public().to_string().parse::<PublicKey>().unwrap(),
            key.public()
        );
        // Debug never shows the secret.
        let shown = format!("{key:?}");
        assert!(shown.contains(&key.public().id()), "{shown}");
        assert!(!shown.contains(&hex(key.secret())), "{shown}");
        // Saving again does not overwrite.
        let again = StaticKey::generate().unwrap().save(&path).unwrap_err();
        assert!(matches!(again, KeyError::Exists { .. }), "{again}");
        assert_eq!(StaticKey::load(&path).unwrap().public(), key.public());
    }

    #[cfg(feature = "noise")]
    #[test]
    fn the_public_half_is_derived_from_the_secret() {
        // RFC 7748, section 6.1: Alice's secret and public key.
        let secret =
            unhex32("77076d0a7318a57d3c16c17251b26645df4c2f87ebc0992ab177fba51db92c2a").unwrap();
        let key = StaticKey::from_secret(secret).unwrap();
        assert_eq!(
            key.public().to_string(),
            "8520f0098930a754748b7ddcb43ef75a0dbf3a0d26381af4eba4a98eaa9b4e6a"
        );
    }

    #[test]
    fn a_key_file_open_to_group_or_others_is_refused() {
        let dir = TempDir::new("mode");
        let path = dir.file("group.psk");
        save_psk(&path, &[1; 32]).unwrap();
        assert_eq!(load_psk(&path).unwrap(), [1; 32]);
        for mode in [0o640, 0o604, 0o660, 0o644] {
            chmod(&path, mode);
            let e = load_psk(&path).unwrap_err();
            assert!(
                matches!(e, KeyError::Permissions { mode: m, .. } if m == mode),
                "{e}"
            );
            let text = e.to_string();
            assert!(text.contains(&format!("mode {mode:04o}")), "{text}");
            assert!(text.contains("0600 or stricter"), "{text}");
        }
        chmod(&path, 0o400);
        assert_eq!(load_psk(&path).unwrap(), [1; 32]);
    }

    #[test]
    fn the_wrong_kind_of_key_file_is_named() {
        let dir = TempDir::new("kind");
        let psk = dir.file("a.psk");
        save_psk(&psk, &[2; 32]).unwrap();
        let e = StaticKey::load(&psk).unwrap_err().to_string();
        assert!(e.contains("pre-shared key, not a static key"), "{e}");

        let other = dir.file("b.key");
        std::fs::write(&other, format!("secret {}\npsk\n", hex(&[3; 32]))).unwrap();
        chmod(&other, 0o600);
        let e = load_psk(&other).unwrap_err().to_string();
        assert!(e.contains("line 2: not a 32-byte key in hex"), "{e}");

        let junk = dir.file("c.key");
        std::fs::write(&junk, "hello world\n").unwrap();
        chmod(&junk, 0o600);
        let e = load_psk(&junk).unwrap_err().to_string();
        assert!(e.contains("unknown label `hello`"), "{e}");

        let missing = load_psk(dir.file("none")).unwrap_err();
        assert!(matches!(missing, KeyError::Read { .. }), "{missing}");
        assert!(missing.to_string().contains("none"), "{missing}");
    }

    #[cfg(feature = "noise")]
    #[test]
    fn a_public_line_that_does_not_match_the_secret_is_refused() {
        let dir = TempDir::new("mismatch");
        let path = dir.file("odd.key");
        let (a, b) = (
            StaticKey::generate().unwrap(),
            StaticKey::generate().unwrap(),
        );
        std::fs::write(
            &path,
            format!("secret {}\npublic {}\n", hex(a.secret()), b.public()),
        )
        .unwrap();
        chmod(&path, 0o600);
        let e = StaticKey::load(&path).unwrap_err().to_string();
        assert!(e.contains("not the public half"), "{e}");
    }
}
