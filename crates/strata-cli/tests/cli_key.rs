//! `strata key` as a user runs it: a new static key and its public half, a pre-shared key
//! and its id, files that are never overwritten, and key files open to others refused.

#[path = "../../strata/tests/support/mod.rs"]
mod support;

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use support::programs::run_bounded;
use support::WAIT;

fn strata(args: &[&str]) -> Output {
    run_bounded(Command::new(env!("CARGO_BIN_EXE_strata")).args(args), WAIT)
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).trim().to_string()
}

/// A directory for one test's files, removed when dropped.
struct Dir(PathBuf);

impl Dir {
    fn new(name: &str) -> Dir {
        let dir =
            std::env::temp_dir().join(format!("strata-cli-key-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir(&dir).unwrap();
        Dir(dir)
    }

    fn file(&self, name: &str) -> String {
        self.0.join(name).to_string_lossy().into_owned()
    }
}

impl Drop for Dir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn mode(path: &str) -> u32 {
    std::fs::metadata(Path::new(path))
        .unwrap()
        .permissions()
        .mode()
        & 0o777
}

#[test]
fn a_new_static_key_prints_its_public_half_and_reads_back() {
    let dir = Dir::new("static");
    let file = dir.file("node.key");
    let out = strata(&["key", "new", "--out", &file]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let public = text(&out.stdout);
    assert_eq!(public.len(), 64, "{public:?}");
    assert!(public.chars().all(|c| c.is_ascii_hexdigit()), "{public:?}");
    assert_eq!(mode(&file) & 0o077, 0, "mode {:o}", mode(&file));
    // The library reads what the command wrote.
    let key = strata::net::keys::StaticKey::load(&file).unwrap();
    assert_eq!(key.public().to_string(), public);

    let shown = strata(&["key", "public", &file]);
    assert!(shown.status.success(), "{}", text(&shown.stderr));
    assert_eq!(text(&shown.stdout), public);
    let id = strata(&["key", "id", &file]);
    assert_eq!(text(&id.stdout), format!("x25519:{}", &public[..16]));

    // Never over an existing key.
    let again = strata(&["key", "new", "--out", &file]);
    assert_eq!(again.status.code(), Some(1));
    let why = text(&again.stderr);
    assert!(
        why.contains("already exists") && why.contains(&file),
        "{why}"
    );
    assert_eq!(text(&strata(&["key", "public", &file]).stdout), public);
}

#[test]
fn a_new_pre_shared_key_prints_its_id_and_has_no_public_half() {
    let dir = Dir::new("psk");
    let file = dir.file("group.psk");
    let out = strata(&["key", "new", "--psk", "--out", &file]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let id = text(&out.stdout);
    let key = strata::net::keys::load_psk(&file).unwrap();
    assert_eq!(id, strata::net::keys::psk_id(&key));
    assert_eq!(text(&strata(&["key", "id", &file]).stdout), id);
    let public = strata(&["key", "public", &file]);
    assert_eq!(public.status.code(), Some(1));
    let why = text(&public.stderr);
    assert!(why.contains("pre-shared key, not a static key"), "{why}");
}

#[test]
fn a_key_file_others_can_read_is_refused() {
    let dir = Dir::new("mode");
    let file = dir.file("open.key");
    assert!(strata(&["key", "new", "--out", &file]).status.success());
    std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o644)).unwrap();
    for command in ["public", "id"] {
        let out = strata(&["key", command, &file]);
        assert_eq!(out.status.code(), Some(1), "key {command}");
        let why = text(&out.stderr);
        assert!(
            why.contains("mode 0644") && why.contains("0600 or stricter"),
            "key {command}: {why}"
        );
    }
}
