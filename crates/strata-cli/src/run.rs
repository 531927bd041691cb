//! `strata run | start | stop | status | history | returned | log`: running a home's
//! roles as one supervised composite (`strata::home::composite`) and reading what it
//! recorded. Parses, calls the library, prints.

use std::os::unix::process::CommandExt;
use std::process::{ExitCode, Stdio};
use std::time::{Duration, Instant};

use clap::Args;
use strata::home::{self, logs, time, Status};

use crate::home::HomeArg;

/// `strata run [ROLE...]` and `strata start [ROLE...]`.
#[derive(Args, Debug)]
pub struct RunArgs {
    /// The roles to run (default: all).
    pub roles: Vec<String>,
    /// (internal) Started by `strata start`: no lines on the terminal.
    #[arg(long, hide = true)]
    pub detached: bool,
}

/// `strata status [-l]`.
#[derive(Args, Debug)]
pub struct StatusArgs {
    /// One line per worker: pid, uptime, restarts, last exit; then its figures (the
    /// samples its `/metrics` would serve), asked through the host directory.
    #[arg(short = 'l', long)]
    pub long: bool,
}

/// `strata log ROLE ...`.
#[derive(Args, Debug)]
pub struct LogArgs {
    /// The role.
    pub role: String,
    /// From this long ago (`1h`, `30m`, `2d`).
    #[arg(long, conflicts_with = "from")]
    pub back: Option<String>,
    /// From this UTC time (`2026-12-01T18:00:00Z`).
    #[arg(long)]
    pub from: Option<String>,
    /// Up to this UTC time.
    #[arg(long)]
    pub to: Option<String>,
    /// At most this many lines (the first ones from --from/--back, else the last ones;
    /// default 20 then).
    #[arg(long)]
    pub count: Option<usize>,
    /// Keep printing lines as they are written, until interrupted.
    #[arg(long)]
    pub follow: bool,
}

fn fail(command: &str, e: impl std::fmt::Display) -> ExitCode {
    eprintln!("strata {command}: {e}");
    ExitCode::from(1)
}

/// `strata run`: the composite in the foreground; lines merged on stdout; Ctrl-C stops all.
pub fn run(home: &HomeArg, args: RunArgs, log: Option<String>) -> ExitCode {
    let h = match home.open() {
        Ok(h) => h,
        Err(e) => return fail("run", e),
    };
    let lock = match home::lock::acquire(&h.lock_path()) {
        Ok(l) => l,
        Err(Some(pid)) => {
            return fail(
                "run",
                format!("{} is running already (pid {pid})", h.root().display()),
            )
        }
        Err(None) => return fail("run", format!("cannot lock {}", h.lock_path().display())),
    };
    let supervisor = match home::composite::supervisor(&h, &args.roles, !args.detached) {
        Ok(s) => s,
        Err(e) => return fail("run", e),
    };
    let settings = strata::ProgramSettings {
        log: Some(log.unwrap_or_else(|| "warn".into())),
        grace: Duration::from_secs(3),
    };
    let code = strata::main_with(supervisor, settings);
    let _ = home::store::store_json(&h.status_path(), &Status::default());
    drop(lock);
    code
}

/// `strata start`: `strata run` in the background, its own output in `run/supervisor.log`.
pub fn start(home: &HomeArg, args: RunArgs, log: Option<String>) -> ExitCode {
    let h = match home.open() {
        Ok(h) => h,
        Err(e) => return fail("start", e),
    };
    if let Some(pid) = h.running() {
        return fail(
            "start",
            format!("{} is running already (pid {pid})", h.root().display()),
        );
    }
    let out = match std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(h.supervisor_log_path())
    {
        Ok(f) => f,
        Err(e) => {
            return fail(
                "start",
                format!("{}: {e}", h.supervisor_log_path().display()),
            )
        }
    };
    let exe = match std::env::current_exe() {
        Ok(e) => e,
        Err(e) => return fail("start", e),
    };
    let mut command = std::process::Command::new(exe);
    if let Some(l) = log {
        command.arg(format!("--log={l}"));
    }
    command
        .arg("--home")
        .arg(h.root())
        .arg("run")
        .arg("--detached")
        .args(&args.roles)
        .stdin(Stdio::null())
        .stdout(out.try_clone().expect("a log file descriptor"))
        .stderr(out)
        .current_dir(h.root());
    // SAFETY: setsid is async-signal-safe; the supervisor leaves this terminal's session.
    unsafe {
        command.pre_exec(|| {
            libc::setsid();
            Ok(())
        });
    }
    let mut child = match command.spawn() {
        Ok(c) => c,
        Err(e) => return fail("start", e),
    };
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        if h.running() == Some(child.id() as i32) {
            println!("started {} (pid {})", h.root().display(), child.id());
            return ExitCode::SUCCESS;
        }
        if let Ok(Some(status)) = child.try_wait() {
            let text = std::fs::read_to_string(h.supervisor_log_path()).unwrap_or_default();
            let last = text
                .lines()
                .rev()
                .find(|l| !l.trim().is_empty())
                .unwrap_or("");
            return fail(
                "start",
                format!("the supervisor ended at once ({status}): {last}"),
            );
        }
        if Instant::now() > deadline {
            return fail(
                "start",
                "the supervisor did not take the home's lock within 10 s",
            );
        }
        std::thread::sleep(Duration::from_millis(5));
    }
}

/// `strata stop`: SIGTERM to the supervisor holding the home's lock, a grace period,
/// then SIGKILL (its workers die with it). Signals nothing else.
pub fn stop(home: &HomeArg) -> ExitCode {
    let h = match home.open() {
        Ok(h) => h,
        Err(e) => return fail("stop", e),
    };
    let Some(pid) = h.running() else {
        println!("nothing running in {}", h.root().display());
        return ExitCode::SUCCESS;
    };
    let grace = h
        .roles()
        .map(|r| r.values().map(|r| r.grace_ms).max().unwrap_or(0))
        .unwrap_or(5000);
    let patience = Duration::from_millis(grace) + Duration::from_secs(5);
    // SAFETY: signals to the pid the kernel says holds this home's lock.
    unsafe {
        libc::kill(pid, libc::SIGTERM);
    }
    let deadline = Instant::now() + patience;
    while h.running() == Some(pid) {
        if Instant::now() > deadline {
            eprintln!(
                "strata stop: pid {pid} did not end within {} s: killing it",
                patience.as_secs()
            );
            unsafe {
                libc::kill(pid, libc::SIGKILL);
            }
            let end = Instant::now() + Duration::from_secs(5);
            while h.running() == Some(pid) && Instant::now() < end {
                std::thread::sleep(Duration::from_millis(10));
            }
            break;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    println!("stopped {} (pid {pid})", h.root().display());
    ExitCode::SUCCESS
}

/// `strata status`.
pub fn status(home: &HomeArg, args: StatusArgs) -> ExitCode {
    let h = match home.open() {
        Ok(h) => h,
        Err(e) => return fail("status", e),
    };
    let Some(pid) = h.running() else {
        return fail(
            "status",
            format!("nothing running in {}", h.root().display()),
        );
    };
    let status: Status = home::store::recover_json(&h.status_path()).unwrap_or_default();
    let now = time::now_ms();
    let up = |since: u64| time::short_span(Duration::from_millis(now.saturating_sub(since)));
    println!(
        "{} running (pid {pid}, up {})",
        h.root().display(),
        up(status.started_ms)
    );
    let mut roles: std::collections::BTreeMap<&str, (usize, usize, u32, Vec<&str>)> =
        Default::default();
    for w in status.workers.values() {
        let e = roles.entry(&w.role).or_default();
        e.1 += 1;
        e.2 += w.restarts;
        if w.state == "running" {
            e.0 += 1;
        } else {
            e.3.push(&w.state);
        }
    }
    if args.long {
        // Each running worker's figures, as its process directory tells them (the same
        // as its `/metrics`): only processes that joined the host directory can be asked.
        let figures = {
            let mut cx = strata::ThreadContext::attach();
            crate::network::figures_by_pid(&mut cx)
        };
        if let Err(e) = &figures {
            println!("figures: {e}");
        }
        for (id, w) in &status.workers {
            println!(
                "{id:<16} {:<9} pid {:<8} {:<9} restarts {:<3} {}{}",
                w.state,
                w.pid.map(|p| p.to_string()).unwrap_or_else(|| "-".into()),
                up(w.since_ms),
                w.restarts,
                if w.recycled > 0 {
                    format!("recycled {:<3} ", w.recycled)
                } else {
                    String::new()
                },
                w.last_exit
                    .as_deref()
                    .map(|e| format!("last: {e}"))
                    .unwrap_or_default()
            );
            if let (Ok(figures), Some(pid), "running") = (&figures, w.pid, w.state.as_str()) {
                match figures.get(&pid) {
                    Some(f) => {
                        let mut out = String::new();
                        crate::network::write_figures(&mut out, f, "    ");
                        print!("{out}");
                    }
                    None => println!("    no figures: not in the host directory"),
                }
            }
        }
    } else {
        for (role, (running, all, restarts, others)) in roles {
            let others = if others.is_empty() {
                String::new()
            } else {
                format!(" ({})", others.join(", "))
            };
            println!("{role:<16} {running}/{all} running{others}, {restarts} restarts");
        }
    }
    ExitCode::SUCCESS
}

/// `strata history ROLE`.
pub fn history(home: &HomeArg, role: &str) -> ExitCode {
    let h = match home
        .open()
        .and_then(|h| h.history(role).map_err(|e| e.to_string()))
    {
        Ok(h) => h,
        Err(e) => return fail("history", e),
    };
    for (i, r) in h.runs.iter().enumerate() {
        let end = match r.ended_ms {
            Some(e) => format!(
                "{} ({}) {}",
                time::iso(e),
                time::short_span(Duration::from_millis(e.saturating_sub(r.started_ms))),
                r.exit
                    .as_ref()
                    .map(|x| x.to_string())
                    .unwrap_or_else(|| "?".into())
            ),
            None => "running".to_string(),
        };
        let note = r
            .note
            .as_deref()
            .map(|n| format!(" - {n}"))
            .unwrap_or_default();
        println!(
            "[{i}] {} pid {} {} .. {end}{note}",
            r.worker,
            r.pid,
            time::iso(r.started_ms)
        );
    }
    ExitCode::SUCCESS
}

/// `strata returned ROLE`: the last value a worker of the role returned, as JSON.
pub fn returned(home: &HomeArg, role: &str) -> ExitCode {
    let h = match home
        .open()
        .and_then(|h| h.history(role).map_err(|e| e.to_string()))
    {
        Ok(h) => h,
        Err(e) => return fail("returned", e),
    };
    match h.last_returned().and_then(|r| r.returned.as_ref()) {
        Some(v) => {
            println!("{v}");
            ExitCode::SUCCESS
        }
        None => fail(
            "returned",
            format!("role `{role}` has returned nothing yet"),
        ),
    }
}

/// `strata log ROLE`: works without a terminal.
pub fn log(home: &HomeArg, args: LogArgs) -> ExitCode {
    let h = match home.open() {
        Ok(h) => h,
        Err(e) => return fail("log", e),
    };
    if let Err(e) = h.role(&args.role) {
        return fail("log", e);
    }
    let mut window = logs::Window {
        count: args.count,
        ..Default::default()
    };
    if let Some(back) = &args.back {
        match time::parse_span(back) {
            Ok(d) => window.from_ms = Some(time::now_ms().saturating_sub(d.as_millis() as u64)),
            Err(e) => return fail("log", format!("--back: {e}")),
        }
    }
    if let Some(from) = &args.from {
        match time::parse_iso(from) {
            Ok(t) => window.from_ms = Some(t),
            Err(e) => return fail("log", format!("--from: {e}")),
        }
    }
    if let Some(to) = &args.to {
        match time::parse_iso(to) {
            Ok(t) => window.to_ms = Some(t),
            Err(e) => return fail("log", format!("--to: {e}")),
        }
    }
    if window.from_ms.is_none() && window.count.is_none() {
        window.count = Some(20);
    }
    let folder = h.log_folder(&args.role);
    let lines = logs::read(&folder, &window);
    use std::io::Write;
    let mut out = std::io::stdout().lock();
    for l in &lines {
        if writeln!(out, "{l}").is_err() {
            return ExitCode::SUCCESS;
        }
    }
    let _ = out.flush();
    drop(out);
    if args.follow {
        let mut last = lines.last().cloned();
        loop {
            std::thread::sleep(Duration::from_millis(200));
            let fresh = logs::read(
                &folder,
                &logs::Window {
                    from_ms: last
                        .as_deref()
                        .and_then(|l| l.split(' ').next())
                        .and_then(|t| time::parse_iso(t).ok()),
                    ..Default::default()
                },
            );
            let skip = last
                .as_ref()
                .and_then(|l| fresh.iter().position(|f| f == l).map(|i| i + 1))
                .unwrap_or(0);
            let mut out = std::io::stdout().lock();
            for l in &fresh[skip..] {
                if writeln!(out, "{l}").is_err() {
                    return ExitCode::SUCCESS;
                }
            }
            let _ = out.flush();
            if let Some(l) = fresh.last() {
                last = Some(l.clone());
            }
        }
    }
    ExitCode::SUCCESS
}

/// `strata systemd [--user]`: a unit file that runs the home under systemd, with
/// readiness notification (`READY=1` once every worker started), reload on
/// `systemctl reload` (SIGHUP) and the supervisor stopping its own workers.
pub fn systemd(home: &HomeArg, user: bool) -> ExitCode {
    let h = match home.open() {
        Ok(h) => h,
        Err(e) => return fail("systemd", e),
    };
    let exe = match std::env::current_exe() {
        Ok(e) => e,
        Err(e) => return fail("systemd", e),
    };
    let grace = h
        .roles()
        .map(|r| r.values().map(|r| r.grace_ms).max().unwrap_or(0))
        .unwrap_or(5000);
    let root = h.root().display().to_string();
    let quote = |s: &str| {
        if s.chars()
            .any(|c| c.is_whitespace() || c == '"' || c == '\\')
        {
            format!("\"{}\"", s.replace('\\', "\\\\").replace('"', "\\\""))
        } else {
            s.to_string()
        }
    };
    println!(
        "# Written by `strata systemd` for the home {root}.\n\
         # Install: save as ~/.config/systemd/user/strata-NAME.service (with --user) or\n\
         # /etc/systemd/system/strata-NAME.service, then `systemctl [--user] daemon-reload`\n\
         # and `systemctl [--user] enable --now strata-NAME`.\n\
         [Unit]\n\
         Description=strata home {root}\n\
         After=network.target\n\
         \n\
         [Service]\n\
         Type=notify\n\
         NotifyAccess=main\n\
         ExecStart={} --home {} run --detached\n\
         ExecReload=/bin/kill -HUP $MAINPID\n\
         # The supervisor stops its workers itself (SIGTERM, their grace, SIGKILL);\n\
         # systemd kills whatever is left after TimeoutStopSec.\n\
         KillMode=mixed\n\
         TimeoutStopSec={}\n\
         Restart=on-failure\n\
         WorkingDirectory={}\n\
         \n\
         [Install]\n\
         WantedBy={}",
        quote(&exe.display().to_string()),
        quote(&root),
        grace / 1000 + 10,
        quote(&root),
        if user {
            "default.target"
        } else {
            "multi-user.target"
        }
    );
    ExitCode::SUCCESS
}
