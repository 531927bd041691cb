//! The composite: a home's roles run by one [`Supervisor`], the top object of
//! `strata run`. Its hooks keep the home's files: each role's history and rolling logs,
//! and `run/status.json`; on SIGHUP they re-read the roles.

use std::collections::HashMap;
use std::io::Write;
use std::sync::Arc;

use parking_lot::Mutex;

use super::logs::{level_of, RollingLog};
use super::{time, Home, HomeError, Role, Status, WorkerStatus};
use crate::process::{Process, Stream};
use crate::supervisor::{Ended, Hooks, Service, Started, Supervisor, Then, WorkerView};

/// The services of `home`'s roles (all, or those in `selection`).
pub fn services(home: &Home, selection: &[String]) -> Result<Vec<Service>, HomeError> {
    let roles = home.roles()?;
    for name in selection {
        if !roles.contains_key(name) {
            return Err(HomeError::NoRole {
                home: home.root().to_path_buf(),
                role: name.clone(),
            });
        }
    }
    let mut out = Vec::new();
    for (name, role) in roles {
        if !selection.is_empty() && !selection.contains(&name) {
            continue;
        }
        role.check_form(&name)?;
        out.push(service(home, &name, &role)?);
    }
    Ok(out)
}

fn service(home: &Home, name: &str, role: &Role) -> Result<Service, HomeError> {
    let backoff = role
        .restart
        .backoff()
        .map_err(|(setting, reason)| super::RoleError::new(name, Some(&setting), reason))?;
    let mut summary = role.clone();
    summary.count = 0;
    let summary = serde_json::to_string(&summary).unwrap_or_default();
    let (root, role_name, role) = (home.root().to_path_buf(), name.to_string(), role.clone());
    let make = move |_id: &str| {
        let mut p = Process::of(role.executable.to_string_lossy().into_owned())
            .env(
                super::ROLE_HOME_VARIABLE,
                root.to_string_lossy().into_owned(),
            )
            .env(super::ROLE_VARIABLE, role_name.clone())
            .env("STRATA_LOG", role.log_level.clone())
            .grace(std::time::Duration::from_millis(role.grace_ms));
        for a in &role.args {
            p = p.arg(a.clone());
        }
        p
    };
    let heartbeat = std::time::Duration::from_millis(role.heartbeat_ms);
    Ok(Service::new(name, role.count, make)
        .restart(backoff)
        .heartbeat(Some(heartbeat))
        .recycle(role.recycle_after, role.recycle_jitter)
        .settings(summary))
}

/// The hooks of a home's supervisor.
pub struct HomeHooks {
    home: Home,
    selection: Vec<String>,
    terminal: bool,
    logs: Mutex<HashMap<String, RollingLog>>,
    status: Mutex<Status>,
    /// Held while a history file is read, changed and written (workers start and end on
    /// several threads at once).
    history: Mutex<()>,
    /// How many workers must have started before systemd hears `READY=1`.
    expected: usize,
    ready: std::sync::atomic::AtomicBool,
}

impl HomeHooks {
    /// Hooks keeping `home`'s files for the roles in `selection` (empty: all); with
    /// `terminal`, every line also goes to stdout, prefixed with the worker's id.
    pub fn new(home: Home, selection: Vec<String>, terminal: bool) -> HomeHooks {
        let expected = home
            .roles()
            .map(|roles| {
                roles
                    .iter()
                    .filter(|(n, _)| selection.is_empty() || selection.contains(n))
                    .map(|(_, r)| r.count)
                    .sum()
            })
            .unwrap_or(0);
        HomeHooks {
            expected,
            ready: std::sync::atomic::AtomicBool::new(false),
            home,
            selection,
            terminal,
            logs: Mutex::new(HashMap::new()),
            history: Mutex::new(()),
            status: Mutex::new(Status {
                pid: std::process::id(),
                started_ms: time::now_ms(),
                workers: Default::default(),
            }),
        }
    }

    fn log(&self, role: &str, worker: &str, level: &str, text: &str) {
        let mut logs = self.logs.lock();
        if !logs.contains_key(role) {
            let cap = self
                .home
                .role(role)
                .map(|r| r.log_bytes)
                .unwrap_or(32 << 20);
            match RollingLog::open(&self.home.log_folder(role), cap) {
                Ok(l) => {
                    logs.insert(role.to_string(), l);
                }
                Err(e) => {
                    tracing::warn!(target: "strata::home", role, error = %e, "cannot open the role's log");
                    return;
                }
            }
        }
        if let Some(l) = logs.get_mut(role) {
            l.line(worker, level, text);
        }
    }

    fn say(&self, worker: &str, text: &str) {
        if self.terminal {
            let mut out = std::io::stdout().lock();
            let _ = writeln!(out, "{worker:<14} {text}");
        }
    }

    fn write_status(&self, status: &Status) {
        if let Err(e) = super::store::store_json(&self.home.status_path(), status) {
            tracing::warn!(target: "strata::home", error = %e, "cannot write the status");
        }
    }
}

impl Hooks for HomeHooks {
    fn started(&self, w: &Started<'_>) {
        let now = time::now_ms();
        let _history = self.history.lock();
        if let Err(e) = self
            .home
            .change_history(w.service, |h| h.started(w.worker, w.pid, now))
        {
            tracing::warn!(target: "strata::home", role = w.service, error = %e, "cannot write the history");
        }
        let text = format!("started (pid {})", w.pid);
        self.log(w.service, w.worker, "START", &text);
        self.say(w.worker, &text);
        let mut status = self.status.lock();
        let entry = status.workers.entry(w.worker.to_string()).or_default();
        entry.role = w.service.to_string();
        entry.pid = Some(w.pid);
        entry.state = "running".into();
        entry.since_ms = now;
        self.write_status(&status);
        let up = status.workers.values().filter(|w| w.pid.is_some()).count();
        if up >= self.expected && !self.ready.swap(true, std::sync::atomic::Ordering::SeqCst) {
            notify_systemd("READY=1");
        }
    }

    fn line(&self, service: &str, worker: &str, stream: Stream, line: &str) {
        let fallback = match stream {
            Stream::Stdout => "OUT",
            Stream::Stderr => "ERR",
        };
        self.log(service, worker, level_of(line, fallback), line);
        self.say(worker, line);
    }

    fn ended(&self, end: &Ended<'_>) {
        let now = time::now_ms();
        let then = match &end.then {
            Then::Restart(wait) => format!("restart in {}", time::short_span(*wait)),
            Then::Replace => "replaced with new settings".to_string(),
            Then::Recycle => "started again at once".to_string(),
            Then::Failed(why) => format!("failed, not restarted: {why}"),
            Then::Stopped => "stopped".to_string(),
            Then::Removed => "removed".to_string(),
        };
        let how = end
            .exit
            .as_ref()
            .map(|e| e.to_string())
            .unwrap_or_else(|| "did not start".to_string());
        let note = match &end.note {
            Some(n) => format!("{then}; {n}"),
            None => then,
        };
        if let Some(pid) = end.pid {
            let (exit, returned, n) = (end.exit.clone(), end.returned.clone(), note.clone());
            let _history = self.history.lock();
            if let Err(e) = self.home.change_history(end.service, |h| {
                h.ended(end.worker, pid, now, exit, returned, Some(n))
            }) {
                tracing::warn!(target: "strata::home", role = end.service, error = %e, "cannot write the history");
            }
        }
        let text = format!(
            "ended after {}: {how}; {note}",
            time::short_span(end.up_for)
        );
        let level = if matches!(end.then, Then::Failed(_)) {
            "ERROR"
        } else {
            "END"
        };
        self.log(end.service, end.worker, level, &text);
        self.say(end.worker, &text);
        let mut status = self.status.lock();
        let entry = status.workers.entry(end.worker.to_string()).or_default();
        entry.last_exit = Some(format!("{how}; {note}"));
        entry.since_ms = now;
    }

    fn reload(&self) -> Option<Vec<Service>> {
        match services(&self.home, &self.selection) {
            Ok(s) => {
                let mut logs = self.logs.lock();
                for (name, log) in logs.iter_mut() {
                    if let Ok(r) = self.home.role(name) {
                        log.set_cap(r.log_bytes);
                    }
                }
                Some(s)
            }
            Err(e) => {
                tracing::error!(target: "strata::home", error = %e, "reload refused: the home's roles are kept as they run");
                self.say("supervisor", &format!("reload refused: {e}"));
                None
            }
        }
    }

    fn reloaded(&self) {
        self.say("supervisor", "reloaded the home");
    }

    fn changed(&self, workers: &[WorkerView]) {
        let mut status = self.status.lock();
        let old = std::mem::take(&mut status.workers);
        for w in workers {
            let mut entry = old.get(&w.worker).cloned().unwrap_or_else(|| WorkerStatus {
                since_ms: time::now_ms(),
                ..Default::default()
            });
            if entry.state != w.state {
                entry.since_ms = time::now_ms();
            }
            entry.role = w.service.clone();
            entry.state = w.state.to_string();
            entry.pid = w.pid.or(entry.pid);
            entry.restarts = w.restarts;
            entry.heartbeats = w.heartbeats;
            entry.recycled = w.recycled;
            status.workers.insert(w.worker.clone(), entry);
        }
        self.write_status(&status);
    }
}

/// Tells systemd `state` (`READY=1`) when it started this process with a notify socket
/// (`Type=notify`, see `strata systemd`); does nothing otherwise.
pub fn notify_systemd(state: &str) {
    use std::os::unix::ffi::OsStrExt;
    use std::os::unix::net::UnixDatagram;
    let Some(path) = std::env::var_os("NOTIFY_SOCKET") else {
        return;
    };
    let Ok(socket) = UnixDatagram::unbound() else {
        return;
    };
    let bytes = path.as_bytes();
    let sent = match bytes.strip_prefix(b"@") {
        Some(name) => {
            use std::os::linux::net::SocketAddrExt;
            std::os::unix::net::SocketAddr::from_abstract_name(name)
                .and_then(|a| socket.send_to_addr(state.as_bytes(), &a))
        }
        None => socket.send_to(state.as_bytes(), &path),
    };
    if let Err(e) = sent {
        tracing::warn!(target: "strata::home", error = %e, "cannot notify systemd");
    }
}

/// The supervisor of `home`'s roles (all, or `selection`), its hooks keeping the home's
/// files, with SIGHUP / SIGTTIN / SIGTTOU handled; each selected role's tmp folder is
/// emptied first.
pub fn supervisor(
    home: &Home,
    selection: &[String],
    terminal: bool,
) -> Result<Supervisor, HomeError> {
    let services = services(home, selection)?;
    let hooks = Arc::new(HomeHooks::new(home.clone(), selection.to_vec(), terminal));
    hooks.write_status(&hooks.status.lock());
    if hooks.expected == 0 {
        notify_systemd("READY=1");
    }
    let mut s = Supervisor::new().hooks(hooks).with_signals();
    for service in services {
        home.empty_tmp(service.name());
        s = s.service(service);
    }
    Ok(s)
}
