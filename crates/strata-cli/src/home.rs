//! `strata create | add | update | edit | delete | list | destroy`: a home's roles
//! (`strata::home`). Parses, calls the library, prints.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::Args;
use strata::home::{self, Checked, Home, Role};

/// Where the home is, for every home command.
#[derive(Args, Debug, Clone)]
pub struct HomeArg {
    /// The home folder (default $STRATA_HOME, else ./.strata).
    #[arg(long, global = true)]
    pub home: Option<PathBuf>,
}

impl HomeArg {
    /// The chosen home's folder.
    pub fn path(&self) -> PathBuf {
        home::locate(self.home.as_deref())
    }

    /// The home, which must exist.
    pub fn open(&self) -> Result<Home, String> {
        Home::open(&self.path()).map_err(|e| e.to_string())
    }
}

/// `strata add EXE [ROLE] [--count N] [-- ARGS...]`.
#[derive(Args, Debug)]
pub struct AddArgs {
    /// The program: a path, or a name on PATH.
    pub executable: String,
    /// The role's name (default: the program's file name).
    pub role: Option<String>,
    /// How many workers run it.
    #[arg(long, default_value_t = 1)]
    pub count: usize,
    /// The program's arguments, after `--`.
    #[arg(last = true)]
    pub args: Vec<String>,
}

/// `strata update ROLE --name=value ...`.
#[derive(Args, Debug)]
pub struct UpdateArgs {
    /// The role.
    pub role: String,
    /// Changes, `--name=value`: the home's settings (--count, --log-level, --log-bytes,
    /// --grace, --restart-first, --restart-max, --restart-budget, --healthy-after) or the
    /// program's arguments. All are applied, or none.
    #[arg(trailing_var_arg = true, allow_hyphen_values = true, required = true)]
    pub changes: Vec<String>,
}

/// `strata list [-l]`.
#[derive(Args, Debug)]
pub struct ListArgs {
    /// One line per role with its count, program, arguments, files and bytes.
    #[arg(short = 'l', long)]
    pub long: bool,
}

fn fail(command: &str, e: impl std::fmt::Display) -> ExitCode {
    eprintln!("strata {command}: {e}");
    ExitCode::from(1)
}

fn say_checked(role: &str, checked: Checked) {
    if checked == Checked::NotStrata {
        eprintln!(
            "note: role `{role}` runs a program that is not a strata program: its arguments are checked when it starts"
        );
    }
}

/// Tells a running home to re-read its roles (SIGHUP to the pid holding its lock).
pub fn reload_if_running(home: &Home) {
    if let Some(pid) = home.running() {
        // SAFETY: a signal to the pid the kernel says holds this home's lock.
        unsafe {
            libc::kill(pid, libc::SIGHUP);
        }
        eprintln!("told the running home (pid {pid}) to apply it");
    }
}

/// `strata create`.
pub fn create(home: &HomeArg) -> ExitCode {
    match Home::create(&home.path()) {
        Ok(h) => {
            println!("created {}", h.root().display());
            ExitCode::SUCCESS
        }
        Err(e) => fail("create", e),
    }
}

/// `strata add`.
pub fn add(home: &HomeArg, args: AddArgs) -> ExitCode {
    let h = match home.open() {
        Ok(h) => h,
        Err(e) => return fail("add", e),
    };
    let exe = match home::role::resolve_executable(&args.executable) {
        Ok(p) => p,
        Err(e) => return fail("add", e),
    };
    let name = args.role.clone().unwrap_or_else(|| {
        exe.file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default()
    });
    let role = Role::new(exe, args.count, args.args);
    match h.add(&name, &role) {
        Ok(checked) => {
            say_checked(&name, checked);
            println!(
                "added {name} ({} × {})",
                role.count,
                role.executable.display()
            );
            reload_if_running(&h);
            ExitCode::SUCCESS
        }
        Err(e) => fail("add", e),
    }
}

/// `strata update`.
pub fn update(home: &HomeArg, args: UpdateArgs) -> ExitCode {
    let h = match home.open() {
        Ok(h) => h,
        Err(e) => return fail("update", e),
    };
    match h.update(&args.role, &args.changes) {
        Ok((role, checked)) => {
            say_checked(&args.role, checked);
            println!(
                "updated {} ({} × {})",
                args.role,
                role.count,
                role.executable.display()
            );
            reload_if_running(&h);
            ExitCode::SUCCESS
        }
        Err(e) => fail("update", e),
    }
}

/// `strata edit ROLE`: the role's settings in `$EDITOR` (default vi), checked before
/// they are stored.
pub fn edit(home: &HomeArg, role: &str) -> ExitCode {
    let h = match home.open() {
        Ok(h) => h,
        Err(e) => return fail("edit", e),
    };
    let current = match h.role(role) {
        Ok(r) => r,
        Err(e) => return fail("edit", e),
    };
    let scratch =
        std::env::temp_dir().join(format!("strata-edit-{role}-{}.json", std::process::id()));
    let text = serde_json::to_string_pretty(&current).expect("a role encodes") + "\n";
    if let Err(e) = std::fs::write(&scratch, text) {
        return fail("edit", format!("{}: {e}", scratch.display()));
    }
    let editor = std::env::var("EDITOR").unwrap_or_else(|_| "vi".into());
    let status = std::process::Command::new("sh")
        .arg("-c")
        .arg(format!("{editor} \"$0\""))
        .arg(&scratch)
        .status();
    let result = (|| {
        match status {
            Ok(s) if s.success() => {}
            Ok(s) => {
                return Err(format!(
                    "the editor `{editor}` ended with {s}; nothing stored"
                ))
            }
            Err(e) => return Err(format!("cannot run the editor `{editor}`: {e}")),
        }
        let edited = std::fs::read_to_string(&scratch).map_err(|e| e.to_string())?;
        let next: Role = serde_json::from_str(&edited)
            .map_err(|e| format!("role `{role}`: not a role's settings ({e}); nothing stored"))?;
        if next == current {
            return Ok(None);
        }
        h.replace(role, &next)
            .map(Some)
            .map_err(|e| format!("{e}; nothing stored"))
    })();
    let _ = std::fs::remove_file(&scratch);
    match result {
        Ok(None) => {
            println!("{role}: unchanged");
            ExitCode::SUCCESS
        }
        Ok(Some(checked)) => {
            say_checked(role, checked);
            println!("updated {role}");
            reload_if_running(&h);
            ExitCode::SUCCESS
        }
        Err(e) => fail("edit", e),
    }
}

/// `strata delete ROLE`.
pub fn delete(home: &HomeArg, role: &str) -> ExitCode {
    match home
        .open()
        .and_then(|h| h.delete(role).map_err(|e| e.to_string()))
    {
        Ok(()) => {
            println!("deleted {role}");
            ExitCode::SUCCESS
        }
        Err(e) => fail("delete", e),
    }
}

/// `strata list`.
pub fn list(home: &HomeArg, args: ListArgs) -> ExitCode {
    let h = match home.open() {
        Ok(h) => h,
        Err(e) => return fail("list", e),
    };
    let roles = match h.roles() {
        Ok(r) => r,
        Err(e) => return fail("list", e),
    };
    for (name, role) in roles {
        if args.long {
            let (files, bytes) = h.usage(&name);
            println!(
                "{name:<20} {:>4} × {} {}  ({files} files, {bytes} bytes)",
                role.count,
                role.executable.display(),
                role.args.join(" ")
            );
        } else {
            println!("{name}");
        }
    }
    ExitCode::SUCCESS
}

/// `strata destroy`.
pub fn destroy(home: &HomeArg) -> ExitCode {
    let path = home.path();
    match home
        .open()
        .and_then(|h| h.destroy().map_err(|e| e.to_string()))
    {
        Ok(()) => {
            println!("destroyed {}", path.display());
            ExitCode::SUCCESS
        }
        Err(e) => fail("destroy", e),
    }
}
