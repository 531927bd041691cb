//! Roles: an executable, its settings and what the home knows about running it; checked
//! before they are stored, with errors naming the role and the setting.
//!
//! A role's settings are of two kinds. The program's own arguments (`--name=value` and
//! plain words, in order) are passed to it at every start; they are checked by the program
//! itself when it is a strata program (it is run with [`CHECK_ARGUMENTS_VARIABLE`] set and
//! answers without starting). The home's settings for the role are read by the supervisor:
//! `--count`, `--log-level`, `--log-bytes`, `--grace`, `--heartbeat` (a time-out; 0 for
//! none), `--recycle-after` and `--recycle-jitter` (retire a worker after that many
//! requests, plus a draw of its own up to the jitter; 0 for never), and the restart policy `--restart-first`, `--restart-max`, `--restart-budget`,
//! `--healthy-after`.

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};

use crate::backoff::Backoff;
use crate::process::{
    ARGUMENTS_CHECKED, ARGUMENTS_UNCHECKED, CHECK_ARGUMENTS_MARK, CHECK_ARGUMENTS_VARIABLE,
};

/// The most workers a role may have.
pub const MOST_WORKERS: usize = 1000;

/// How long a program has to answer the argument check.
const CHECK_PATIENCE: Duration = Duration::from_secs(5);

/// The settings a home keeps for the role, not passed to its program.
pub const HOME_SETTINGS: &[&str] = &[
    "count",
    "log-level",
    "log-bytes",
    "grace",
    "restart-first",
    "restart-max",
    "restart-budget",
    "healthy-after",
    "heartbeat",
    "recycle-after",
    "recycle-jitter",
];

/// A role as stored in the home (`roles/ROLE/role.json`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Role {
    /// The program, an absolute path.
    pub executable: PathBuf,
    /// How many workers run it (`ROLE-0` .. `ROLE-(count-1)`).
    pub count: usize,
    /// The program's arguments, in order.
    #[serde(default)]
    pub args: Vec<String>,
    /// The log filter the role's processes run with (`STRATA_LOG`), default `info`.
    #[serde(default = "default_log_level")]
    pub log_level: String,
    /// The most bytes the role's log files take together (default 32 MiB).
    #[serde(default = "default_log_bytes")]
    pub log_bytes: u64,
    /// How long a worker has to end after SIGTERM before SIGKILL, in ms (default 5000).
    #[serde(default = "default_grace_ms")]
    pub grace_ms: u64,
    /// When a worker that ended is started again.
    #[serde(default)]
    pub restart: Restart,
    /// Kill and restart a worker that answers no heartbeat (`Ping`) for this long, in
    /// ms; 0 (the default) for none. Only for programs whose top object is a machine.
    #[serde(default)]
    pub heartbeat_ms: u64,
    /// Retire each worker after this many requests (messages from other processes) and
    /// start its successor at once; `None` (the default) for never. Only for `strata::main`
    /// programs, which count them (`strata::process::RECYCLE_VARIABLE`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub recycle_after: Option<u64>,
    /// Each worker retires after up to this many more requests than `recycle_after`, its
    /// own draw at each start, so the workers of a role do not all retire at once.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub recycle_jitter: u64,
}

fn is_zero(n: &u64) -> bool {
    *n == 0
}

/// A role's restart policy: growing, jittered intervals and a budget of consecutive quick
/// failures that resets once a worker stayed up for `healthy_ms`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Restart {
    /// The first interval, in ms (default 500).
    pub first_ms: u64,
    /// The longest interval, in ms (default 30 s); each one doubles up to it.
    pub max_ms: u64,
    /// Consecutive restarts of workers that did not stay up before the role's worker is
    /// marked failed (default 5).
    pub budget: u32,
    /// How long a worker must stay up for its ending not to count against the budget, in
    /// ms (default 30 s).
    pub healthy_ms: u64,
}

impl Default for Restart {
    fn default() -> Self {
        Restart {
            first_ms: 500,
            max_ms: 30_000,
            budget: 5,
            healthy_ms: 30_000,
        }
    }
}

impl Restart {
    /// The policy as a [`Backoff`] (±25% jitter); errors name the setting.
    pub fn backoff(&self) -> Result<Backoff, (String, String)> {
        let max = self.max_ms.max(self.first_ms);
        Backoff::growing(
            Duration::from_millis(self.first_ms),
            Duration::from_millis(max),
        )
        .growth(if max > self.first_ms { 2.0 } else { 1.0 })
        .jitter(0.25)
        .budget(Some(self.budget))
        .healthy_after(Some(Duration::from_millis(self.healthy_ms)))
        .checked()
        .map_err(|e| {
            let setting = match e.parameter {
                "first" => "restart-first",
                "max_interval" => "restart-max",
                "budget" => "restart-budget",
                "healthy_after" => "healthy-after",
                other => other,
            };
            (setting.to_string(), e.reason)
        })
    }
}

fn default_log_level() -> String {
    "info".into()
}
fn default_log_bytes() -> u64 {
    32 << 20
}
fn default_grace_ms() -> u64 {
    5000
}

/// A role or one of its settings that cannot be stored; nothing was changed.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("role `{role}`: {}{reason}", setting.as_ref().map(|s| format!("`--{s}`: ")).unwrap_or_default())]
pub struct RoleError {
    /// The role.
    pub role: String,
    /// The setting or argument at fault, without its dashes, when one is.
    pub setting: Option<String>,
    /// What is wrong.
    pub reason: String,
}

impl RoleError {
    pub(crate) fn new(role: &str, setting: Option<&str>, reason: impl Into<String>) -> Self {
        RoleError {
            role: role.to_string(),
            setting: setting.map(str::to_string),
            reason: reason.into(),
        }
    }
}

/// How a role's program took its arguments.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Checked {
    /// An entry point decoded every argument.
    ByProgram,
    /// A strata program that parses its own arguments (it reached `strata::main`).
    Unchecked,
    /// Not a strata program: it was not run; its arguments are checked when it starts.
    NotStrata,
}

impl Role {
    /// A role running `executable` (made absolute) with `count` workers and `args`, the
    /// other settings at their defaults.
    pub fn new(executable: PathBuf, count: usize, args: Vec<String>) -> Role {
        Role {
            executable,
            count,
            args,
            log_level: default_log_level(),
            log_bytes: default_log_bytes(),
            grace_ms: default_grace_ms(),
            restart: Restart::default(),
            heartbeat_ms: 0,
            recycle_after: None,
            recycle_jitter: 0,
        }
    }

    /// Applies `--name=value` changes, home settings and program arguments alike: an
    /// argument already given is replaced where it is, a new one is added at the end.
    /// Nothing is applied unless every change parses.
    pub fn with_changes(&self, role: &str, changes: &[String]) -> Result<Role, RoleError> {
        let mut next = self.clone();
        for change in changes {
            let Some(body) = change.strip_prefix("--") else {
                return Err(RoleError::new(
                    role,
                    None,
                    format!("`{change}` is not a setting (write --name=value)"),
                ));
            };
            let (name, value) = match body.split_once('=') {
                Some((n, v)) => (n, v),
                None => (body, "true"),
            };
            if name.is_empty() {
                return Err(RoleError::new(
                    role,
                    None,
                    format!("`{change}` has no name"),
                ));
            }
            let bad = |reason: String| RoleError::new(role, Some(name), reason);
            let span_ms = |v: &str| -> Result<u64, RoleError> {
                let d = match v.parse::<f64>() {
                    Ok(secs) if secs.is_finite() && secs >= 0.0 => Duration::from_secs_f64(secs),
                    _ => super::time::parse_span(v).map_err(bad)?,
                };
                Ok(d.as_millis() as u64)
            };
            match name {
                "count" => {
                    next.count = value
                        .parse::<usize>()
                        .ok()
                        .filter(|n| *n <= MOST_WORKERS)
                        .ok_or_else(|| {
                            bad(format!(
                                "`{value}` is not a count of workers (0 to {MOST_WORKERS})"
                            ))
                        })?
                }
                "log-level" => next.log_level = value.to_string(),
                "log-bytes" => {
                    next.log_bytes = value
                        .parse::<u64>()
                        .map_err(|_| bad(format!("`{value}` is not a number of bytes")))?
                }
                "grace" => next.grace_ms = span_ms(value)?,
                "restart-first" => next.restart.first_ms = span_ms(value)?,
                "restart-max" => next.restart.max_ms = span_ms(value)?,
                "healthy-after" => next.restart.healthy_ms = span_ms(value)?,
                "heartbeat" => next.heartbeat_ms = span_ms(value)?,
                "recycle-after" => {
                    let n = value.parse::<u64>().map_err(|_| {
                        bad(format!(
                            "`{value}` is not a number of requests (0 for never)"
                        ))
                    })?;
                    next.recycle_after = (n > 0).then_some(n);
                }
                "recycle-jitter" => {
                    next.recycle_jitter = value
                        .parse::<u64>()
                        .map_err(|_| bad(format!("`{value}` is not a number of requests")))?
                }
                "restart-budget" => {
                    next.restart.budget = value
                        .parse::<u32>()
                        .map_err(|_| bad(format!("`{value}` is not a number of restarts")))?
                }
                _ => {
                    let argument = format!("--{name}={value}");
                    let same = |a: &String| {
                        a == &format!("--{name}") || a.starts_with(&format!("--{name}="))
                    };
                    match next.args.iter().position(same) {
                        Some(i) => next.args[i] = argument,
                        None => next.args.push(argument),
                    }
                }
            }
        }
        Ok(next)
    }

    /// Checks everything the home can check without running the program: the executable,
    /// the count, the log settings, the restart policy and the form of the arguments.
    pub fn check_form(&self, role: &str) -> Result<(), RoleError> {
        check_name(role)?;
        check_executable(&self.executable).map_err(|r| RoleError::new(role, None, r))?;
        if self.count > MOST_WORKERS {
            return Err(RoleError::new(
                role,
                Some("count"),
                format!("{} workers; at most {MOST_WORKERS}", self.count),
            ));
        }
        if let Err(e) = tracing_subscriber::EnvFilter::try_new(&self.log_level) {
            return Err(RoleError::new(
                role,
                Some("log-level"),
                format!("`{}` is not a log filter: {e}", self.log_level),
            ));
        }
        if self.log_bytes < 64 << 10 {
            return Err(RoleError::new(
                role,
                Some("log-bytes"),
                format!("{} bytes; at least 65536", self.log_bytes),
            ));
        }
        self.restart
            .backoff()
            .map_err(|(setting, reason)| RoleError::new(role, Some(&setting), reason))?;
        if self.heartbeat_ms != 0 && self.heartbeat_ms < 30 {
            return Err(RoleError::new(
                role,
                Some("heartbeat"),
                format!("{} ms; at least 30 ms, or 0 for none", self.heartbeat_ms),
            ));
        }
        for a in &self.args {
            if let Some(name) = a.strip_prefix("--") {
                let name = name.split('=').next().unwrap_or("");
                if ["full-output", "help"].contains(&name) {
                    return Err(RoleError::new(
                        role,
                        Some(name),
                        "reserved: the supervisor passes it, or it would not run the program",
                    ));
                }
            }
        }
        Ok(())
    }

    /// [`check_form`](Self::check_form), then asks the program to check its arguments when
    /// it is a strata program (it exits without starting); a refusal names the argument.
    pub fn check(&self, role: &str) -> Result<Checked, RoleError> {
        self.check_form(role)?;
        if !is_strata_program(&self.executable) {
            return Ok(Checked::NotStrata);
        }
        check_arguments(role, &self.executable, &self.args)
    }
}

/// Role names: a letter or digit, then letters, digits, `_`, `.` or `-`; at most 64.
pub fn check_name(role: &str) -> Result<(), RoleError> {
    let ok = !role.is_empty()
        && role.len() <= 64
        && role
            .chars()
            .next()
            .is_some_and(|c| c.is_ascii_alphanumeric())
        && role
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "_.-".contains(c));
    if ok {
        Ok(())
    } else {
        Err(RoleError::new(
            role,
            None,
            "not a role name (a letter or digit, then letters, digits, `_`, `.` or `-`; at most 64)",
        ))
    }
}

fn check_executable(path: &Path) -> Result<(), String> {
    use std::os::unix::fs::PermissionsExt;
    match std::fs::metadata(path) {
        Ok(m) if m.is_file() && m.permissions().mode() & 0o111 != 0 => Ok(()),
        Ok(m) if m.is_file() => Err(format!("{} is not executable", path.display())),
        Ok(_) => Err(format!("{} is not a file", path.display())),
        Err(e) => Err(format!("{}: {e}", path.display())),
    }
}

/// Finds the executable a role names: a path (made absolute), or a name on `PATH`.
pub fn resolve_executable(exe: &str) -> Result<PathBuf, String> {
    if exe.contains('/') {
        let p = PathBuf::from(exe);
        let abs = std::path::absolute(&p).map_err(|e| format!("{exe}: {e}"))?;
        check_executable(&abs)?;
        return Ok(abs);
    }
    let path = std::env::var_os("PATH").unwrap_or_default();
    for dir in std::env::split_paths(&path) {
        let candidate = dir.join(exe);
        if check_executable(&candidate).is_ok() {
            return std::path::absolute(&candidate).map_err(|e| format!("{exe}: {e}"));
        }
    }
    Err(format!(
        "no executable `{exe}` (give a path, or put it on PATH)"
    ))
}

/// True when the executable carries strata's argument-check mark (so it answers the
/// check without starting).
pub fn is_strata_program(path: &Path) -> bool {
    let Ok(bytes) = std::fs::read(path) else {
        return false;
    };
    let mark = CHECK_ARGUMENTS_MARK.as_bytes();
    let first = mark[0];
    let mut at = 0;
    while let Some(i) = bytes[at..].iter().position(|b| *b == first) {
        let start = at + i;
        if bytes[start..].starts_with(mark) {
            return true;
        }
        at = start + 1;
    }
    false
}

fn check_arguments(role: &str, exe: &Path, args: &[String]) -> Result<Checked, RoleError> {
    let fail = |setting: Option<&str>, reason: String| RoleError::new(role, setting, reason);
    let mut child = std::process::Command::new(exe)
        .args(args)
        .env(CHECK_ARGUMENTS_VARIABLE, CHECK_ARGUMENTS_MARK)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| {
            fail(
                None,
                format!("cannot run {} to check it: {e}", exe.display()),
            )
        })?;
    let deadline = Instant::now() + CHECK_PATIENCE;
    let status = loop {
        match child.try_wait() {
            Ok(Some(s)) => break s,
            Ok(None) if Instant::now() < deadline => std::thread::sleep(Duration::from_millis(5)),
            Ok(None) => {
                let _ = child.kill();
                let _ = child.wait();
                return Err(fail(
                    None,
                    format!(
                        "{} did not answer the argument check within {} s",
                        exe.display(),
                        CHECK_PATIENCE.as_secs()
                    ),
                ));
            }
            Err(e) => {
                return Err(fail(
                    None,
                    format!("cannot wait for {}: {e}", exe.display()),
                ))
            }
        }
    };
    let output = child
        .wait_with_output()
        .map_err(|e| fail(None, e.to_string()))?;
    let out = String::from_utf8_lossy(&output.stdout);
    let err = String::from_utf8_lossy(&output.stderr);
    let last = err
        .lines()
        .rev()
        .find(|l| !l.trim().is_empty())
        .unwrap_or("");
    if status.success() {
        if out.contains(ARGUMENTS_CHECKED) {
            return Ok(Checked::ByProgram);
        }
        if out.contains(ARGUMENTS_UNCHECKED) {
            return Ok(Checked::Unchecked);
        }
        return Err(fail(
            None,
            format!("{} ran instead of checking its arguments", exe.display()),
        ));
    }
    // An entry point names the argument: "NAME: bad argument `--x`: reason".
    let named = last
        .split_once("`--")
        .and_then(|(_, rest)| rest.split_once('`'))
        .map(|(name, _)| name.split('=').next().unwrap_or(name).to_string());
    let after_name = named
        .as_ref()
        .and_then(|n| last.split_once(&format!("`--{n}`: ")))
        .map(|(_, r)| r.to_string());
    let reason = match last.split_once(": ") {
        _ if after_name.is_some() => after_name.unwrap_or_default(),
        Some((_, r)) if !r.is_empty() => r.to_string(),
        _ if !last.is_empty() => last.to_string(),
        _ => format!("the program refused its arguments (status {status})"),
    };
    Err(fail(named.as_deref(), reason))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn role() -> Role {
        Role::new(
            PathBuf::from("/bin/sh"),
            1,
            vec!["--x=1".into(), "word".into()],
        )
    }

    #[test]
    fn changes_replace_in_place_or_add_and_are_all_or_nothing() {
        let r = role()
            .with_changes("w", &["--x=2".into(), "--y=3".into(), "--count=4".into()])
            .unwrap();
        assert_eq!(r.args, vec!["--x=2", "word", "--y=3"]);
        assert_eq!(r.count, 4);
        let e = role()
            .with_changes("w", &["--x=9".into(), "--count=many".into()])
            .unwrap_err();
        assert_eq!(e.setting.as_deref(), Some("count"));
        assert!(
            e.to_string().starts_with("role `w`: `--count`: `many`"),
            "{e}"
        );
        let r = role()
            .with_changes("w", &["--restart-first=250ms".into()])
            .unwrap();
        assert_eq!(r.restart.first_ms, 250);
    }

    #[test]
    fn form_checks_name_the_setting() {
        let mut r = role();
        r.log_level = "[nonsense".into();
        assert_eq!(
            r.check_form("w").unwrap_err().setting.as_deref(),
            Some("log-level")
        );
        let mut r = role();
        r.restart.budget = 0;
        let e = r.check_form("w").unwrap_err();
        assert_eq!(e.setting.as_deref(), Some("restart-budget"), "{e}");
        let mut r = role();
        r.args.push("--help".into());
        assert_eq!(
            r.check_form("w").unwrap_err().setting.as_deref(),
            Some("help")
        );
        assert!(check_name("web-1").is_ok());
        assert!(check_name("-x").is_err() && check_name("a/b").is_err());
        assert!(!is_strata_program(Path::new("/bin/sh")));
    }
}
