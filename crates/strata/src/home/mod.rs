//! Homes: a folder describing a set of roles, which `strata run` runs as one composite.
//!
//! A *home* (default `./.strata`; `--home DIR` or [`HOME_VARIABLE`] to choose another)
//! holds *roles*. A role is an executable, its settings (checked when stored, see
//! [`role`]) and its history; each also has its own storage, which its program finds
//! without configuration through [`storage`]:
//!
//! ```text
//! .strata/
//!   home.json
//!   roles/ROLE/role.json       executable, count, arguments, log and restart settings
//!   roles/ROLE/history.json    starts and ends, exit status or signal, returned values
//!   roles/ROLE/resource/       read-only inputs
//!   roles/ROLE/model/          the role's persistent state
//!   roles/ROLE/tmp/            emptied at each start
//!   roles/ROLE/logs/           rolling log files with a byte cap
//!   run/lock                   held by the running supervisor (see [`lock`])
//!   run/status.json            what runs: workers, pids, restarts, last exits
//! ```
//!
//! Every file is written atomically ([`store`]); [`File`] and [`Folder`] give programs
//! the same typed persistence for any serde value. The supervision itself is
//! [`crate::supervisor`]; this module is only what is on disk.

pub mod composite;
pub mod history;
pub mod lock;
pub mod logs;
pub mod role;
pub mod store;
pub mod time;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

pub use history::{Exit, History, Run};
pub use role::{Checked, Role, RoleError};
pub use store::{File, Folder, StoreError};

/// The environment variable naming the home when `--home` is not given.
pub const HOME_VARIABLE: &str = "STRATA_HOME";
/// The home used when neither `--home` nor [`HOME_VARIABLE`] names one.
pub const DEFAULT_HOME: &str = ".strata";

/// Set for each worker a home runs: the home's folder.
pub const ROLE_HOME_VARIABLE: &str = "STRATA_ROLE_HOME";
/// Set for each worker a home runs: its role's name.
pub const ROLE_VARIABLE: &str = "STRATA_ROLE";
/// Set for each worker a home runs: its worker id (`ROLE-N`).
pub const WORKER_VARIABLE: &str = "STRATA_WORKER";

/// Something wrong with a home as a whole; says which home.
#[derive(Debug, thiserror::Error)]
pub enum HomeError {
    /// No home there.
    #[error("no home at {} (make one with `strata create`)", .0.display())]
    NotAHome(PathBuf),
    /// A home (or something else) is there already.
    #[error("{} exists already", .0.display())]
    Exists(PathBuf),
    /// The home is running and the change needs it stopped.
    #[error("the home at {} is running (pid {pid}); stop it first", path.display())]
    Running {
        /// The home.
        path: PathBuf,
        /// The supervisor's pid.
        pid: i32,
    },
    /// No such role.
    #[error("no role `{role}` in {} (see `strata list`)", home.display())]
    NoRole {
        /// The home.
        home: PathBuf,
        /// The role asked for.
        role: String,
    },
    /// A role's settings were refused.
    #[error(transparent)]
    Role(#[from] RoleError),
    /// A file could not be read or written.
    #[error(transparent)]
    Store(#[from] StoreError),
}

#[derive(Debug, Serialize, Deserialize)]
struct HomeFile {
    strata_home: u32,
}

/// A home folder.
#[derive(Debug, Clone)]
pub struct Home {
    root: PathBuf,
}

/// Where a role's program keeps its files.
#[derive(Debug, Clone)]
pub struct Storage {
    /// Read-only inputs (none for a program started from the shell).
    pub resource: Option<PathBuf>,
    /// The role's persistent state.
    pub model: PathBuf,
    /// Scratch space, emptied at each start.
    pub tmp: PathBuf,
}

/// The storage of this program: its role's folders when a home runs it (read from the
/// environment the supervisor sets), else the current folder as the model and a private
/// folder under the system's temporary folder as tmp.
pub fn storage() -> Storage {
    let from_home = std::env::var_os(ROLE_HOME_VARIABLE)
        .zip(std::env::var_os(ROLE_VARIABLE))
        .map(|(home, role)| Home { root: home.into() }.role_folder(&role.to_string_lossy()));
    match from_home {
        Some(folder) => Storage {
            resource: Some(folder.join("resource")),
            model: folder.join("model"),
            tmp: folder.join("tmp"),
        },
        None => {
            let tmp = std::env::temp_dir().join(format!("strata-tmp-{}", std::process::id()));
            let _ = std::fs::create_dir_all(&tmp);
            Storage {
                resource: None,
                model: std::env::current_dir().unwrap_or_else(|_| ".".into()),
                tmp,
            }
        }
    }
}

/// The home chosen by `--home` (`given`), else [`HOME_VARIABLE`], else [`DEFAULT_HOME`];
/// made absolute.
pub fn locate(given: Option<&Path>) -> PathBuf {
    let chosen = given
        .map(Path::to_path_buf)
        .or_else(|| std::env::var_os(HOME_VARIABLE).map(PathBuf::from))
        .unwrap_or_else(|| PathBuf::from(DEFAULT_HOME));
    std::path::absolute(&chosen).unwrap_or(chosen)
}

impl Home {
    /// Makes a new home at `root`; refused when anything is there already.
    pub fn create(root: &Path) -> Result<Home, HomeError> {
        if root.exists() {
            return Err(HomeError::Exists(root.to_path_buf()));
        }
        let io = |e| StoreError::io(root, e);
        std::fs::create_dir_all(root.join("roles")).map_err(io)?;
        std::fs::create_dir_all(root.join("run")).map_err(io)?;
        store::store_json(&root.join("home.json"), &HomeFile { strata_home: 1 })?;
        Ok(Home {
            root: root.to_path_buf(),
        })
    }

    /// The home at `root`; refused when it is not one.
    pub fn open(root: &Path) -> Result<Home, HomeError> {
        match store::recover_json::<HomeFile>(&root.join("home.json")) {
            Ok(_) => Ok(Home {
                root: root.to_path_buf(),
            }),
            Err(StoreError::Missing(_)) => Err(HomeError::NotAHome(root.to_path_buf())),
            Err(e) => Err(e.into()),
        }
    }

    /// The home's folder.
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// Removes the whole home; refused while it runs.
    pub fn destroy(self) -> Result<(), HomeError> {
        self.refuse_running()?;
        std::fs::remove_dir_all(&self.root).map_err(|e| StoreError::io(&self.root, e))?;
        Ok(())
    }

    /// The running supervisor's pid, if the home runs.
    pub fn running(&self) -> Option<i32> {
        lock::holder(&self.lock_path())
    }

    /// Where the running supervisor holds its lock.
    pub fn lock_path(&self) -> PathBuf {
        self.root.join("run").join("lock")
    }

    /// The running supervisor's status file.
    pub fn status_path(&self) -> PathBuf {
        self.root.join("run").join("status.json")
    }

    /// Where `strata start` sends the supervisor's own output.
    pub fn supervisor_log_path(&self) -> PathBuf {
        self.root.join("run").join("supervisor.log")
    }

    fn refuse_running(&self) -> Result<(), HomeError> {
        match self.running() {
            Some(pid) => Err(HomeError::Running {
                path: self.root.clone(),
                pid,
            }),
            None => Ok(()),
        }
    }

    /// A role's folder.
    pub fn role_folder(&self, role: &str) -> PathBuf {
        self.root.join("roles").join(role)
    }

    /// A role's log folder.
    pub fn log_folder(&self, role: &str) -> PathBuf {
        self.role_folder(role).join("logs")
    }

    fn role_file(&self, role: &str) -> File<Role> {
        File::new(self.role_folder(role).join("role.json"))
    }

    fn history_file(&self, role: &str) -> File<History> {
        File::new(self.role_folder(role).join("history.json"))
    }

    /// The role's stored settings.
    pub fn role(&self, role: &str) -> Result<Role, HomeError> {
        role::check_name(role)?;
        match self.role_file(role).recover() {
            Ok(r) => Ok(r),
            Err(StoreError::Missing(_)) => Err(HomeError::NoRole {
                home: self.root.clone(),
                role: role.to_string(),
            }),
            Err(e) => Err(e.into()),
        }
    }

    /// Every role, by name.
    pub fn roles(&self) -> Result<BTreeMap<String, Role>, HomeError> {
        let folder = self.root.join("roles");
        let entries = std::fs::read_dir(&folder).map_err(|e| StoreError::io(&folder, e))?;
        let mut all = BTreeMap::new();
        for e in entries.flatten() {
            let name = e.file_name().to_string_lossy().into_owned();
            if role::check_name(&name).is_ok() && e.path().join("role.json").exists() {
                let r = self.role(&name)?;
                all.insert(name, r);
            }
        }
        Ok(all)
    }

    /// Adds a role, checked first; refused when the name is taken.
    pub fn add(&self, name: &str, role: &Role) -> Result<Checked, HomeError> {
        role::check_name(name)?;
        if self.role_file(name).path().exists() {
            return Err(RoleError::new(name, None, "exists already (use `strata update`)").into());
        }
        let checked = role.check(name)?;
        let folder = self.role_folder(name);
        for sub in ["resource", "model", "tmp", "logs"] {
            std::fs::create_dir_all(folder.join(sub)).map_err(|e| StoreError::io(&folder, e))?;
        }
        self.role_file(name).store(role)?;
        Ok(checked)
    }

    /// Stores new settings for an existing role, checked first; nothing is changed when
    /// they are refused.
    pub fn replace(&self, name: &str, role: &Role) -> Result<Checked, HomeError> {
        self.role(name)?;
        let checked = role.check(name)?;
        self.role_file(name).store(role)?;
        Ok(checked)
    }

    /// Applies `--name=value` changes to a role, all or nothing.
    pub fn update(&self, name: &str, changes: &[String]) -> Result<(Role, Checked), HomeError> {
        let next = self.role(name)?.with_changes(name, changes)?;
        let checked = self.replace(name, &next)?;
        Ok((next, checked))
    }

    /// Removes a role and its storage; refused while the home runs.
    pub fn delete(&self, name: &str) -> Result<(), HomeError> {
        self.role(name)?;
        self.refuse_running()?;
        let folder = self.role_folder(name);
        std::fs::remove_dir_all(&folder).map_err(|e| StoreError::io(&folder, e))?;
        Ok(())
    }

    /// The role's history (empty when it never ran).
    pub fn history(&self, name: &str) -> Result<History, HomeError> {
        self.role(name)?;
        Ok(self
            .history_file(name)
            .recover_or_none()?
            .unwrap_or_default())
    }

    /// Changes the role's history (the supervisor's).
    pub fn change_history(
        &self,
        name: &str,
        change: impl FnOnce(&mut History),
    ) -> Result<(), HomeError> {
        let file = self.history_file(name);
        let mut history = file.recover_or_none()?.unwrap_or_default();
        change(&mut history);
        file.store(&history)?;
        Ok(())
    }

    /// Empties the role's tmp folder (done at each start of a worker's process group).
    pub fn empty_tmp(&self, name: &str) {
        let tmp = self.role_folder(name).join("tmp");
        let _ = std::fs::remove_dir_all(&tmp);
        let _ = std::fs::create_dir_all(&tmp);
    }

    /// The files and bytes under a role's folder.
    pub fn usage(&self, name: &str) -> (u64, u64) {
        fn walk(p: &Path, files: &mut u64, bytes: &mut u64) {
            for e in std::fs::read_dir(p).into_iter().flatten().flatten() {
                match e.metadata() {
                    Ok(m) if m.is_dir() => walk(&e.path(), files, bytes),
                    Ok(m) => {
                        *files += 1;
                        *bytes += m.len();
                    }
                    Err(_) => {}
                }
            }
        }
        let (mut files, mut bytes) = (0, 0);
        walk(&self.role_folder(name), &mut files, &mut bytes);
        (files, bytes)
    }
}

/// What the running supervisor writes to `run/status.json` as things change.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct Status {
    /// The supervisor's pid.
    pub pid: u32,
    /// When it started (ms since the epoch).
    pub started_ms: u64,
    /// The workers, by id.
    pub workers: BTreeMap<String, WorkerStatus>,
}

/// One worker in [`Status`].
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct WorkerStatus {
    /// Its role.
    pub role: String,
    /// `running`, `waiting` (to be restarted), `stopping` or `failed`.
    pub state: String,
    /// The pid of its current process.
    pub pid: Option<u32>,
    /// Since when it is in its state (ms since the epoch).
    pub since_ms: u64,
    /// How many times it was restarted.
    pub restarts: u32,
    /// How its last process ended, with the supervisor's note.
    pub last_exit: Option<String>,
    /// Heartbeats its current process answered (with `--heartbeat`).
    #[serde(default)]
    pub heartbeats: u64,
    /// Times it retired after its requests and started again (with `--recycle-after`).
    #[serde(default)]
    pub recycled: u32,
}
