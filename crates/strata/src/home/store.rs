//! Files written whole or not at all, and typed persistence for any serde value.
//!
//! Every write goes to a temporary file beside its target, is flushed to disk (`fsync`),
//! then renamed over the target, and the folder is synced: a crash leaves the old content
//! or the new, never half of one. [`File`] keeps one value (store and recover),
//! [`Folder`] one value per key, one file each. Both are JSON, readable by people and
//! `jq`.

use std::io::Write;
use std::marker::PhantomData;
use std::path::{Path, PathBuf};

use serde::de::DeserializeOwned;
use serde::Serialize;

/// What went wrong reading or writing a stored value; says which file.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// Nothing is stored there yet.
    #[error("{}: nothing stored", .0.display())]
    Missing(PathBuf),
    /// The file system refused.
    #[error("{}: {source}", path.display())]
    Io {
        /// The file.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// The file holds something that is not the value expected.
    #[error("{}: not a stored value of this type: {reason}", path.display())]
    Decode {
        /// The file.
        path: PathBuf,
        /// What serde said.
        reason: String,
    },
    /// A key that cannot name a file.
    #[error("bad key `{0}`: a key is a non-empty name without `/`, NUL or a leading `.`")]
    BadKey(String),
}

impl StoreError {
    pub(crate) fn io(path: &Path, source: std::io::Error) -> StoreError {
        StoreError::Io {
            path: path.to_path_buf(),
            source,
        }
    }
}

/// Writes `bytes` to `path` atomically: a temporary file beside it, `fsync`, rename, and
/// an `fsync` of the folder.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> Result<(), StoreError> {
    let folder = path
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let temporary = folder.join(format!(
        ".{name}.{}.{}.tmp",
        std::process::id(),
        crate::random::Rng::seeded().next_u64() % 1_000_000_000
    ));
    let result = (|| {
        let mut file = std::fs::File::create(&temporary)?;
        file.write_all(bytes)?;
        file.sync_all()?;
        std::fs::rename(&temporary, path)?;
        if let Ok(dir) = std::fs::File::open(folder) {
            let _ = dir.sync_all();
        }
        Ok(())
    })();
    result.map_err(|e| {
        let _ = std::fs::remove_file(&temporary);
        StoreError::io(path, e)
    })
}

/// Writes `value` as pretty JSON to `path`, atomically.
pub fn store_json<T: Serialize + ?Sized>(path: &Path, value: &T) -> Result<(), StoreError> {
    let mut bytes = serde_json::to_vec_pretty(value).map_err(|e| StoreError::Decode {
        path: path.to_path_buf(),
        reason: e.to_string(),
    })?;
    bytes.push(b'\n');
    write_atomic(path, &bytes)
}

/// Reads the JSON value stored at `path`.
pub fn recover_json<T: DeserializeOwned>(path: &Path) -> Result<T, StoreError> {
    let bytes = match std::fs::read(path) {
        Ok(b) => b,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            return Err(StoreError::Missing(path.to_path_buf()))
        }
        Err(e) => return Err(StoreError::io(path, e)),
    };
    serde_json::from_slice(&bytes).map_err(|e| StoreError::Decode {
        path: path.to_path_buf(),
        reason: e.to_string(),
    })
}

/// One value of type `T`, kept in a JSON file.
///
/// ```
/// # let dir = std::env::temp_dir().join(format!("strata-file-doc-{}", std::process::id()));
/// # std::fs::create_dir_all(&dir).unwrap();
/// use strata::home::File;
///
/// let counts: File<Vec<u32>> = File::new(dir.join("counts"));   // counts.json
/// counts.store(&vec![1, 2, 3]).unwrap();
/// assert_eq!(counts.recover().unwrap(), vec![1, 2, 3]);
/// # std::fs::remove_dir_all(&dir).unwrap();
/// ```
#[derive(Debug, Clone)]
pub struct File<T> {
    path: PathBuf,
    kind: PhantomData<fn() -> T>,
}

impl<T: Serialize + DeserializeOwned> File<T> {
    /// The file at `path`; `.json` is added when `path` has no extension.
    pub fn new(path: impl Into<PathBuf>) -> Self {
        let mut path = path.into();
        if path.extension().is_none() {
            path.set_extension("json");
        }
        File {
            path,
            kind: PhantomData,
        }
    }

    /// Where the value is kept.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Stores `value`, replacing what was there, atomically.
    pub fn store(&self, value: &T) -> Result<(), StoreError> {
        store_json(&self.path, value)
    }

    /// The value stored; [`StoreError::Missing`] when none is.
    pub fn recover(&self) -> Result<T, StoreError> {
        recover_json(&self.path)
    }

    /// The value stored, or `None` when none is (other errors are still errors).
    pub fn recover_or_none(&self) -> Result<Option<T>, StoreError> {
        match self.recover() {
            Ok(v) => Ok(Some(v)),
            Err(StoreError::Missing(_)) => Ok(None),
            Err(e) => Err(e),
        }
    }
}

/// Values of type `T` by key, one JSON file each (`KEY.json`) in a folder.
///
/// ```
/// # let dir = std::env::temp_dir().join(format!("strata-folder-doc-{}", std::process::id()));
/// use strata::home::Folder;
///
/// let users: Folder<u64> = Folder::new(&dir).unwrap();
/// users.store("ada", &36).unwrap();
/// users.store("alan", &41).unwrap();
/// assert_eq!(users.keys().unwrap(), vec!["ada", "alan"]);
/// assert_eq!(users.recover("alan").unwrap(), 41);
/// users.remove("ada").unwrap();
/// assert_eq!(users.recover_all().unwrap().len(), 1);
/// # std::fs::remove_dir_all(&dir).unwrap();
/// ```
#[derive(Debug, Clone)]
pub struct Folder<T> {
    path: PathBuf,
    kind: PhantomData<fn() -> T>,
}

impl<T: Serialize + DeserializeOwned> Folder<T> {
    /// The folder at `path`, made if it is not there.
    pub fn new(path: impl Into<PathBuf>) -> Result<Self, StoreError> {
        let path = path.into();
        std::fs::create_dir_all(&path).map_err(|e| StoreError::io(&path, e))?;
        Ok(Folder {
            path,
            kind: PhantomData,
        })
    }

    /// Where the values are kept.
    pub fn path(&self) -> &Path {
        &self.path
    }

    fn file(&self, key: &str) -> Result<PathBuf, StoreError> {
        if key.is_empty() || key.contains('/') || key.contains('\0') || key.starts_with('.') {
            return Err(StoreError::BadKey(key.to_string()));
        }
        Ok(self.path.join(format!("{key}.json")))
    }

    /// Stores `value` under `key`, atomically.
    pub fn store(&self, key: &str, value: &T) -> Result<(), StoreError> {
        store_json(&self.file(key)?, value)
    }

    /// The value under `key`; [`StoreError::Missing`] when there is none.
    pub fn recover(&self, key: &str) -> Result<T, StoreError> {
        recover_json(&self.file(key)?)
    }

    /// Removes the value under `key`; true when there was one.
    pub fn remove(&self, key: &str) -> Result<bool, StoreError> {
        let path = self.file(key)?;
        match std::fs::remove_file(&path) {
            Ok(()) => Ok(true),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(false),
            Err(e) => Err(StoreError::io(&path, e)),
        }
    }

    /// The keys stored, sorted.
    pub fn keys(&self) -> Result<Vec<String>, StoreError> {
        let entries = std::fs::read_dir(&self.path).map_err(|e| StoreError::io(&self.path, e))?;
        let mut keys: Vec<String> = entries
            .filter_map(|e| e.ok())
            .filter_map(|e| {
                let name = e.file_name().to_string_lossy().into_owned();
                let key = name.strip_suffix(".json")?;
                (!key.starts_with('.')).then(|| key.to_string())
            })
            .collect();
        keys.sort();
        Ok(keys)
    }

    /// Every value, by key.
    pub fn recover_all(&self) -> Result<std::collections::BTreeMap<String, T>, StoreError> {
        let mut all = std::collections::BTreeMap::new();
        for key in self.keys()? {
            let value = self.recover(&key)?;
            all.insert(key, value);
        }
        Ok(all)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn scratch(name: &str) -> PathBuf {
        let dir = std::env::temp_dir().join(format!("strata-store-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        dir
    }

    #[test]
    fn atomic_writes_leave_no_temporary_files() {
        let dir = scratch("atomic");
        let path = dir.join("a.json");
        write_atomic(&path, b"one").unwrap();
        write_atomic(&path, b"two").unwrap();
        assert_eq!(std::fs::read(&path).unwrap(), b"two");
        let names: Vec<_> = std::fs::read_dir(&dir).unwrap().collect();
        assert_eq!(names.len(), 1);
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn missing_bad_and_wrong_values_are_told_apart() {
        let dir = scratch("errors");
        let f: File<u32> = File::new(dir.join("n"));
        assert!(matches!(f.recover(), Err(StoreError::Missing(_))));
        assert!(f.recover_or_none().unwrap().is_none());
        std::fs::write(f.path(), b"\"text\"").unwrap();
        let e = f.recover().unwrap_err().to_string();
        assert!(
            e.contains("n.json") && e.contains("not a stored value"),
            "{e}"
        );
        let folder: Folder<u32> = Folder::new(dir.join("f")).unwrap();
        for key in ["", "a/b", ".hidden"] {
            assert!(matches!(folder.store(key, &1), Err(StoreError::BadKey(_))));
        }
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
