//! Child processes as objects.

use std::os::fd::{AsRawFd, OwnedFd};
use std::path::PathBuf;
use std::process::{ExitStatus, Stdio};
use std::sync::Arc;
use std::time::Duration;

use tokio::io::AsyncReadExt;

use super::link::{
    self, CHILD_FD, LINK_FD_VARIABLE, LINK_MAX_FRAME_VARIABLE, MIN_FRAME, PRIVATE_MAX_FRAME,
};
use crate::message::{codec, AnyMessage, Message};
use crate::net::{Accepted, Closed};
use crate::object::{Async, AsyncContext, Core, Object, Recipe};
use crate::standard::{Aborted, Faulted, Returned, Stop, Unread};

/// The most output kept from a child (its value is printed on stdout).
const MAX_OUTPUT: usize = 64 << 20;

/// `cx.create(Process::of("texture").args(&Xy { x: 2, y: 2 }))` runs the program
/// `texture` (found beside the current executable, or at a path) with `--x=2 --y=2` and
/// ends when the child does: the parent receives `Returned` with the child's value, decoded
/// from its output, or a fault naming the exit status or signal.
///
/// Every child also gets a private link to its parent.
/// Messages sent to the `Process` object go over it to the child's top object, with their
/// original sender, so replies come straight back — and they arrive *from the `Process`
/// object's address*, which stands in for the child's top object: a child whose top object
/// is a machine is a *loadable library*, used exactly like an object in the parent (a
/// spool cannot tell it from a thread). `Stop` sent to the `Process` object becomes
/// SIGTERM in the child (which its `strata::main` turns back into `Stop`), then SIGKILL
/// after a grace period. Children die with their parent even when it is killed with
/// SIGKILL (`PR_SET_PDEATHSIG`).
#[derive(Clone)]
pub struct Process {
    program: String,
    args: Vec<String>,
    grace: Duration,
    max_frame: usize,
    env: Vec<(String, String)>,
    title: Option<String>,
    own_group: bool,
    observer: Option<Arc<dyn ChildObserver>>,
}

impl std::fmt::Debug for Process {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Process")
            .field("program", &self.program)
            .field("args", &self.args)
            .field("grace", &self.grace)
            .field("env", &self.env)
            .field("title", &self.title)
            .field("own_group", &self.own_group)
            .field("observed", &self.observer.is_some())
            .finish()
    }
}

/// Which of a child's output streams a line came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stream {
    /// Standard output (where a strata program prints its value last).
    Stdout,
    /// Standard error (where a strata program logs).
    Stderr,
}

/// Told what a child does as it happens, from the `Process` object's task: when it started
/// (its pid), each line it prints, and how it ended. A supervisor records these; the
/// methods must not block for long (they hold up the reading of the child's output).
pub trait ChildObserver: Send + Sync + 'static {
    /// The child was started with this pid.
    fn spawned(&self, _pid: u32) {}
    /// The child printed `line` (without its newline) on `stream`.
    fn line(&self, _stream: Stream, _line: &str) {}
    /// The child ended with `status`; called before the `Process` object returns.
    fn exited(&self, _status: &ExitStatus) {}
}

impl Process {
    /// The program `program`: a path, or a name looked up beside the current executable
    /// (where cargo puts the examples and binaries of a workspace).
    pub fn of(program: impl Into<String>) -> Self {
        Process {
            program: program.into(),
            args: Vec::new(),
            grace: Duration::from_secs(2),
            max_frame: PRIVATE_MAX_FRAME,
            env: Vec::new(),
            title: None,
            own_group: false,
            observer: None,
        }
    }

    /// Sets an environment variable for the child.
    pub fn env(mut self, key: impl Into<String>, value: impl Into<String>) -> Self {
        self.env.push((key.into(), value.into()));
        self
    }

    /// The child's process title: its `argv[0]`, which `ps` shows (the program run is
    /// still the one given to [`of`](Self::of)).
    pub fn title(mut self, title: impl Into<String>) -> Self {
        self.title = Some(title.into());
        self
    }

    /// Starts the child in a process group of its own, so a Ctrl-C at the terminal reaches
    /// only this process, which stops the child in order (SIGTERM, grace, SIGKILL).
    pub fn own_process_group(mut self) -> Self {
        self.own_group = true;
        self
    }

    /// Tells `observer` the child's pid, every line it prints and how it ended. Without an
    /// observer the output is read and only its last lines kept (for the value and faults).
    pub fn observe(mut self, observer: Arc<dyn ChildObserver>) -> Self {
        self.observer = Some(observer);
        self
    }

    /// The program as given to [`of`](Self::of).
    pub fn program(&self) -> &str {
        &self.program
    }

    /// Passes the fields of `args` as `--name=value` arguments (entry point style: plain
    /// values as they are, others as JSON). An entry point reads back the same value, with
    /// one exception: in an `Option<String>` field, `Some("")` and `Some("null")` are
    /// written `--name=` and `--name=null`, which read as `None`.
    ///
    /// # Panics
    /// When `args` does not serialize to a JSON object (it must be a struct).
    pub fn args<A: Message>(mut self, args: &A) -> Self {
        let value = serde_json::to_value(args).expect("arguments encode as JSON");
        let serde_json::Value::Object(fields) = value else {
            panic!(
                "Process::args takes a struct; `{}` is not one",
                A::type_name()
            );
        };
        for (name, value) in fields {
            let text = match value {
                serde_json::Value::String(s) => s,
                other => other.to_string(),
            };
            self.args.push(format!("--{name}={text}"));
        }
        self
    }

    /// The command-line arguments given so far, in order.
    pub fn arguments(&self) -> &[String] {
        &self.args
    }

    /// Adds one raw command-line argument.
    pub fn arg(mut self, arg: impl Into<String>) -> Self {
        self.args.push(arg.into());
        self
    }

    /// The largest frame on the private link to the child, both ways (default 64 MiB; at
    /// least 64 bytes, at most 256 MiB): a larger message is refused with a fault to its sender, and a
    /// larger frame from the child closes the link.
    pub fn max_frame(mut self, bytes: usize) -> Self {
        self.max_frame = bytes.clamp(MIN_FRAME, crate::net::frame::MAX_FRAME_LIMIT);
        self
    }

    /// How long the child has to end after SIGTERM before it is killed (default 2 s).
    pub fn grace(mut self, grace: Duration) -> Self {
        self.grace = grace;
        self
    }

    fn resolve(&self) -> Result<PathBuf, String> {
        let given = PathBuf::from(&self.program);
        if self.program.contains('/') {
            return Ok(given);
        }
        let exe =
            std::env::current_exe().map_err(|e| format!("cannot find this program's path: {e}"))?;
        let beside = exe.parent().map(|d| d.join(&self.program));
        match beside {
            Some(p) if p.exists() => Ok(p),
            _ => Err(format!(
                "no program `{}` beside {} (build it, or give a path)",
                self.program,
                exe.display()
            )),
        }
    }
}

impl Object for Process {
    fn kind(&self) -> &'static str {
        "process"
    }

    fn run(self, core: Core) {
        Async::new(move |cx| run(cx, self)).run(core)
    }
}

impl Recipe for Process {
    type Member = Process;
    fn make(&mut self, (): ()) -> Process {
        self.clone()
    }
}

/// Puts `fd` on the child's descriptor 3, asks the kernel to kill the child when the
/// parent dies, and checks the parent did not die already. Runs between fork and exec.
fn prepare_child(fd: i32, parent: libc::pid_t, own_group: bool) -> std::io::Result<()> {
    // SAFETY: only async-signal-safe calls (dup2, fcntl, prctl, getppid, setpgid) between
    // fork and exec.
    unsafe {
        if own_group && libc::setpgid(0, 0) != 0 {
            return Err(std::io::Error::last_os_error());
        }
        if libc::dup2(fd, CHILD_FD) < 0 {
            return Err(std::io::Error::last_os_error());
        }
        let flags = libc::fcntl(CHILD_FD, libc::F_GETFD);
        libc::fcntl(CHILD_FD, libc::F_SETFD, flags & !libc::FD_CLOEXEC);
        if libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL) != 0 {
            return Err(std::io::Error::last_os_error());
        }
        if libc::getppid() != parent {
            libc::_exit(1);
        }
    }
    Ok(())
}

fn signal(pid: Option<u32>, signo: i32) {
    if let Some(pid) = pid {
        // SAFETY: sending a signal to our own child by pid.
        unsafe {
            libc::kill(pid as libc::pid_t, signo);
        }
    }
}

/// The name of a signal, for faults that say how a child died.
pub(crate) fn signal_name(signo: i32) -> &'static str {
    match signo {
        libc::SIGHUP => "SIGHUP",
        libc::SIGINT => "SIGINT",
        libc::SIGQUIT => "SIGQUIT",
        libc::SIGILL => "SIGILL",
        libc::SIGTRAP => "SIGTRAP",
        libc::SIGABRT => "SIGABRT",
        libc::SIGBUS => "SIGBUS",
        libc::SIGFPE => "SIGFPE",
        libc::SIGKILL => "SIGKILL",
        libc::SIGUSR1 => "SIGUSR1",
        libc::SIGSEGV => "SIGSEGV",
        libc::SIGUSR2 => "SIGUSR2",
        libc::SIGPIPE => "SIGPIPE",
        libc::SIGALRM => "SIGALRM",
        libc::SIGTERM => "SIGTERM",
        libc::SIGXCPU => "SIGXCPU",
        libc::SIGXFSZ => "SIGXFSZ",
        libc::SIGSYS => "SIGSYS",
        _ => "an uncommon signal",
    }
}

/// Reads a child's stream to its end, keeping only the last non-empty line (at most
/// `MAX_OUTPUT` bytes of it), and telling `observer` of every line.
async fn read_lines<R: tokio::io::AsyncRead + Unpin>(
    mut r: R,
    stream: Stream,
    observer: Option<Arc<dyn ChildObserver>>,
) -> Vec<u8> {
    let mut last: Vec<u8> = Vec::new();
    let mut line: Vec<u8> = Vec::new();
    let mut chunk = vec![0u8; 64 * 1024];
    let end_line = |line: &mut Vec<u8>, last: &mut Vec<u8>| {
        if let Some(o) = &observer {
            o.line(stream, String::from_utf8_lossy(line).trim_end_matches('\r'));
        }
        if !line.iter().all(|b| b.is_ascii_whitespace()) {
            std::mem::swap(line, last);
        }
        line.clear();
    };
    loop {
        match r.read(&mut chunk).await {
            Ok(0) | Err(_) => break,
            Ok(n) => {
                for piece in chunk[..n].split_inclusive(|b| *b == b'\n') {
                    let complete = piece.last() == Some(&b'\n');
                    let text = if complete {
                        &piece[..piece.len() - 1]
                    } else {
                        piece
                    };
                    if line.len() + text.len() <= MAX_OUTPUT {
                        line.extend_from_slice(text);
                    }
                    if complete {
                        end_line(&mut line, &mut last);
                    }
                }
            }
        }
    }
    if !line.is_empty() {
        end_line(&mut line, &mut last);
    }
    last
}

async fn run(mut cx: AsyncContext, this: Process) -> AnyMessage {
    let name = this.program.clone();
    let fail = |reason: String| AnyMessage::new(Faulted::new(reason));
    let program = match this.resolve() {
        Ok(p) => p,
        Err(reason) => return fail(reason),
    };
    let (ours, theirs) = match std::os::unix::net::UnixStream::pair() {
        Ok(pair) => pair,
        Err(e) => return fail(format!("cannot make a link for `{name}`: {e}")),
    };
    let their_fd = OwnedFd::from(theirs);
    let raw = their_fd.as_raw_fd();
    let parent = std::process::id() as libc::pid_t;
    let mut command = tokio::process::Command::new(&program);
    command
        .args(&this.args)
        .arg("--full-output")
        .env(LINK_FD_VARIABLE, CHILD_FD.to_string())
        .env(LINK_MAX_FRAME_VARIABLE, this.max_frame.to_string())
        .env(
            crate::directory::group::GROUP_VARIABLE,
            crate::directory::group::encode(crate::directory::group::local()),
        )
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true);
    // A child would try the parent's metrics address and fail on it: it serves its own
    // figures only when given an address of its own (`Process::env`).
    command.env_remove(crate::metrics::METRICS_VARIABLE);
    for (key, value) in &this.env {
        command.env(key, value);
    }
    if let Some(title) = &this.title {
        command.arg0(title);
    }
    let own_group = this.own_group;
    // SAFETY: prepare_child only makes async-signal-safe calls.
    unsafe {
        command.pre_exec(move || prepare_child(raw, parent, own_group));
    }
    let mut child = match command.spawn() {
        Ok(c) => c,
        Err(e) => return fail(format!("cannot start `{}`: {e}", program.display())),
    };
    drop(their_fd);
    let pid = child.id();
    tracing::debug!(target: "strata::process", program = %program.display(), pid, object = %cx.address(), "child started");
    if let (Some(o), Some(pid)) = (&this.observer, pid) {
        o.spawned(pid);
    }
    let stdout = tokio::spawn(read_lines(
        child.stdout.take().expect("piped"),
        Stream::Stdout,
        this.observer.clone(),
    ));
    let stderr = tokio::spawn(read_lines(
        child.stderr.take().expect("piped"),
        Stream::Stderr,
        this.observer.clone(),
    ));

    // The link to the child, as an object of its own; we own it, so we hear Accepted.
    let me = cx.address();
    let link_object =
        match link::parent_end(&mut cx, ours, me, format!("child {pid:?}"), this.max_frame) {
            Ok(address) => Some(address),
            Err(e) => {
                tracing::warn!(target: "strata::process", error = %e, "no link to the child");
                None
            }
        };

    // Ordinary messages wait (kept by `select`) until the link is up; then this object
    // stands in for the child's top object and the runtime passes them on, in order,
    // followed by everything sent later, without waking this task.
    let mut stopping = false;
    let mut kill_at: Option<tokio::time::Instant> = None;
    let status = loop {
        let deadline =
            kill_at.unwrap_or_else(|| tokio::time::Instant::now() + Duration::from_secs(86_400));
        tokio::select! {
            status = child.wait() => break status,
            e = cx.select::<(Stop, Accepted, Closed, Returned)>() => {
                if e.is::<Stop>() {
                    if !stopping {
                        stopping = true;
                        signal(pid, libc::SIGTERM);
                        kill_at = Some(tokio::time::Instant::now() + this.grace);
                    }
                } else if e.is::<Accepted>() {
                    if let Err(err) = cx.stand_in_for(e.sender()) {
                        tracing::warn!(target: "strata::process", program = %name, error = %err, "cannot stand in for the child");
                    }
                } else if e.is::<Closed>() || Some(e.sender()) == link_object {
                    // No link any more: what arrives now waits, and is answered with a
                    // fault when the child has ended.
                    cx.stop_standing_in();
                }
            }
            _ = tokio::time::sleep_until(deadline), if kill_at.is_some() => {
                tracing::warn!(target: "strata::process", program = %name, pid, "child did not end after SIGTERM: killing it");
                signal(pid, libc::SIGKILL);
                kill_at = None;
            }
        }
    };
    cx.stop_standing_in();
    if let Some(l) = link_object {
        cx.stop(l);
    }
    let out = stdout.await.unwrap_or_default();
    let err = stderr.await.unwrap_or_default();
    let last_line = String::from_utf8_lossy(&err)
        .lines()
        .rev()
        .find(|l| !l.trim().is_empty())
        .unwrap_or("")
        .to_string();
    let status = match status {
        Ok(s) => s,
        Err(e) => return fail(format!("cannot wait for `{name}`: {e}")),
    };
    if let Some(o) = &this.observer {
        o.exited(&status);
    }
    // Never passed to the child: nothing of them was done (`Unread`, so a spool gives
    // them to another worker when it retries).
    for w in cx.take_ordinary() {
        if w.is_fault() {
            continue;
        }
        cx.send(
            w.sender(),
            Unread::new(format!(
                "`{name}` ended before it could take the `{}`",
                w.type_name()
            )),
        );
    }
    use std::os::unix::process::ExitStatusExt;
    if let Some(signo) = status.signal() {
        if stopping {
            return AnyMessage::new(Aborted::new(format!("`{name}` stopped")));
        }
        return fail(format!(
            "`{name}` was killed by signal {signo} ({})",
            signal_name(signo)
        ));
    }
    let code = status.code().unwrap_or(-1);
    if code != 0 {
        if stopping && code == 128 + libc::SIGTERM {
            return AnyMessage::new(Aborted::new(format!("`{name}` stopped")));
        }
        let why = if last_line.is_empty() {
            String::new()
        } else {
            format!(": {last_line}")
        };
        return fail(format!("`{name}` exited with status {code}{why}"));
    }
    let text = String::from_utf8_lossy(&out);
    let line = text
        .lines()
        .rev()
        .find(|l| !l.trim().is_empty())
        .unwrap_or("");
    match serde_json::from_str::<serde_json::Value>(line)
        .map_err(|e| e.to_string())
        .and_then(|v| codec::from_json(&v).map_err(|e| e.to_string()))
    {
        Ok(value) => value,
        Err(e) => {
            let shown: String = line.chars().take(80).collect();
            fail(format!("`{name}` printed no strata value ({e}): {shown:?}"))
        }
    }
}
