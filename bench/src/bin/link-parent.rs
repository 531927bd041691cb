//! `link-parent`: the parent process of the parent-child link benchmark.
//!
//! `link-parent MODE N [CHILD]` starts the child program (`link-child`, beside this
//! program unless CHILD gives its path), runs a warm-up pass of N/10 operations, then the
//! measured pass of N, and prints `RESULT <nanoseconds>` for the measured pass. The
//! benchmark suite (`strata-bench`, `--bench link`) runs it once per sample.
//!
//! Modes (`roundtrip-*`: N sequential request-answer round trips; `oneway-*`: a stream of
//! N small messages, flow-controlled by a window, then the child's count and sum):
//!
//! * `*-strata`: the child is `Process::of(child).arg("strata")`, a strata program whose top
//!   object is a machine; the parent's side is a machine sending to the `Process` object
//!   (the work runs object to object on strata's runtime, none on an attached thread);
//! * `*-strata-direct`: the same, but the machine sends to the child's top object itself
//!   (its address asked once), skipping the `Process` object: a diagnostic of that hop;
//! * `*-raw`: a `UnixStream::pair()`, the child's end on its descriptor 3, fixed-size
//!   frames, blocking std I/O at both ends: the floor;
//! * `*-tokio`: the same socket pair and frames, with tokio tasks at both ends.

#[path = "../link/protocol.rs"]
mod protocol;

use std::io::{BufReader, BufWriter, Read, Write};
use std::os::fd::AsRawFd;
use std::os::unix::net::UnixStream;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitCode, Stdio};
use std::time::{Duration, Instant};

use protocol::{
    kind, Ack, Answer, Done, Flush, Hit, Iam, Item, Mode, Whoami, CHILD_FD, FRAME, WINDOW,
};
use strata::prelude::*;
use strata::process::Process;

/// The longest the parent waits for a strata child to end after `Stop`.
const STOP_WAIT: Duration = Duration::from_secs(5);

/// The coordinator's signal to a driving machine: run a pass of `n` operations.
#[derive(Debug, Serialize, Deserialize, Message)]
#[message(name = "bench.link.Go")]
struct Go {
    n: u64,
}

/// A driving machine has finished its pass.
#[derive(Debug, Serialize, Deserialize, Message)]
#[message(name = "bench.link.Finished")]
struct Finished;

/// A refused send would make the workload smaller than it claims: end loudly.
fn refused(fault: &Overloaded) -> ! {
    eprintln!("link-parent: a strata send was refused: {fault}");
    std::process::exit(3);
}

/// The round-trip driver: sends the next [`Hit`] when the previous [`Answer`] arrives.
struct Pinger {
    child: Address,
    n: u64,
    done: u64,
}

#[strata::machine]
impl Pinger {
    fn go(&mut self, cx: &mut Context<Self>, m: Go) {
        self.n = m.n;
        self.done = 0;
        cx.send(self.child, Hit { value: 0 });
    }

    fn answer(&mut self, cx: &mut Context<Self>, m: Answer) {
        assert_eq!(m.value, self.done + 1, "the answer matches the request");
        self.done += 1;
        if self.done == self.n {
            cx.send(cx.parent(), Finished);
        } else {
            cx.send(self.child, Hit { value: self.done });
        }
    }

    fn overloaded(&mut self, _cx: &mut Context<Self>, fault: Overloaded) {
        refused(&fault);
    }
}

/// The one-way driver: keeps at most [`WINDOW`] items unacknowledged, then sends
/// [`Flush`] and checks the child's [`Done`].
struct Streamer {
    child: Address,
    n: u64,
    sent: u64,
    acked: u64,
}

impl Streamer {
    fn fill(&mut self, cx: &mut Context<Self>) {
        let limit = self.n.min(self.acked + WINDOW);
        while self.sent < limit {
            cx.send(self.child, Item { value: self.sent });
            self.sent += 1;
        }
    }
}

#[strata::machine]
impl Streamer {
    fn go(&mut self, cx: &mut Context<Self>, m: Go) {
        self.n = m.n;
        self.sent = 0;
        self.acked = 0;
        self.fill(cx);
        if self.sent == self.n {
            cx.send(self.child, Flush);
        }
    }

    fn ack(&mut self, cx: &mut Context<Self>, m: Ack) {
        if self.sent == self.n {
            return;
        }
        self.acked = self.acked.max(m.count);
        self.fill(cx);
        if self.sent == self.n {
            cx.send(self.child, Flush);
        }
    }

    fn done(&mut self, cx: &mut Context<Self>, m: Done) {
        check_stream(self.n, m.count, m.sum);
        cx.send(cx.parent(), Finished);
    }

    fn overloaded(&mut self, _cx: &mut Context<Self>, fault: Overloaded) {
        refused(&fault);
    }
}

/// Panics unless the child received exactly the values `0..n`.
fn check_stream(n: u64, count: u64, sum: u64) {
    assert_eq!(count, n, "the child received every item once");
    let expected = if n == 0 { 0 } else { n * (n - 1) / 2 };
    assert_eq!(sum, expected, "the child received every value once");
}

/// Waits on the attached thread for `T`; anything else (such as the `Returned` of an
/// object that ended) fails the benchmark.
fn expect<T: Message>(cx: &mut ThreadContext) -> T {
    match cx.recv().take::<T>() {
        Ok(m) => m,
        Err(e) => panic!(
            "expected `{}`, got `{}`: {:?}",
            std::any::type_name::<T>(),
            e.type_name(),
            e.message()
        ),
    }
}

/// The strata modes: a `Process` child and a driving machine, one pass per size.
fn strata_passes(mode: Mode, child: &Path, sizes: &[u64]) -> Result<Vec<Duration>, String> {
    let filter = strata::logging::filter_from_args_and_env();
    strata::logging::init(&filter).map_err(|e| e.to_string())?;
    let mut cx = ThreadContext::attach();
    let process = cx.create(Process::of(child.display().to_string()).arg("strata"));
    let target = if mode.is_direct() {
        // The answer travels inside a message, so the link learns the route to it.
        match cx.ask(process, Whoami).downcast::<Iam>() {
            Ok(iam) => iam.address,
            Err(other) => return Err(format!("the child did not say who it is: {other:?}")),
        }
    } else {
        process
    };
    let driver = if mode.is_round_trip() {
        cx.create(Pinger {
            child: target,
            n: 0,
            done: 0,
        })
    } else {
        cx.create(Streamer {
            child: target,
            n: 0,
            sent: 0,
            acked: 0,
        })
    };
    let mut durations = Vec::new();
    for &n in sizes {
        let start = Instant::now();
        cx.send(driver, Go { n });
        expect::<Finished>(&mut cx);
        durations.push(start.elapsed());
    }
    cx.stop(driver);
    cx.stop(process);
    // Both end; the child's value (or fault) says whether it ended cleanly.
    let began = Instant::now();
    let mut ended = 0;
    while ended < 2 && began.elapsed() < STOP_WAIT {
        let Some(envelope) = cx.recv_timeout(STOP_WAIT.saturating_sub(began.elapsed())) else {
            break;
        };
        if envelope.is::<Returned>() {
            ended += 1;
        }
    }
    let stats = strata::runtime::stats();
    if stats.refused_full != 0 || stats.faulted != 0 {
        return Err(format!(
            "strata refused {} sends for full mailboxes and {} objects faulted: \
             the measurement is void ({stats:?})",
            stats.refused_full, stats.faulted
        ));
    }
    Ok(durations)
}

/// Starts `child` in `child_mode` with `socket` on its descriptor 3 (as strata's
/// `Process` does), dying with this process.
fn spawn_raw_child(child: &Path, child_mode: &str, socket: UnixStream) -> Result<Child, String> {
    let fd = socket.as_raw_fd();
    let parent = std::process::id() as libc::pid_t;
    let mut command = Command::new(child);
    command
        .arg(child_mode)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::inherit());
    // SAFETY: only async-signal-safe calls (dup2, fcntl, prctl, getppid) between fork and
    // exec.
    unsafe {
        command.pre_exec(move || {
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
            Ok(())
        });
    }
    let spawned = command
        .spawn()
        .map_err(|e| format!("cannot start {}: {e}", child.display()));
    drop(socket);
    spawned
}

/// Closes the parent's end (the child sees end of file and exits) and waits for it.
fn finish_child(mut child: Child) -> Result<(), String> {
    let began = Instant::now();
    loop {
        match child.try_wait() {
            Ok(Some(status)) if status.success() => return Ok(()),
            Ok(Some(status)) => return Err(format!("the child failed: {status}")),
            Ok(None) if began.elapsed() > STOP_WAIT => {
                let _ = child.kill();
                let _ = child.wait();
                return Err("the child did not end after its socket closed".into());
            }
            Ok(None) => std::thread::sleep(Duration::from_millis(5)),
            Err(e) => return Err(format!("waiting for the child: {e}")),
        }
    }
}

fn read_frame(r: &mut impl Read) -> Result<(u8, u64, u64), String> {
    let mut frame = [0u8; FRAME];
    r.read_exact(&mut frame).map_err(|e| format!("read: {e}"))?;
    Ok(protocol::decode(&frame))
}

/// The blocking std baselines, one pass per size.
fn raw_passes(mode: Mode, child: &Path, sizes: &[u64]) -> Result<Vec<Duration>, String> {
    let (ours, theirs) = UnixStream::pair().map_err(|e| format!("socket pair: {e}"))?;
    let process = spawn_raw_child(child, mode.child_mode(), theirs)?;
    let mut reader = BufReader::with_capacity(
        64 * 1024,
        ours.try_clone().map_err(|e| format!("clone: {e}"))?,
    );
    let mut durations = Vec::new();
    {
        let mut writer = &ours;
        for &n in sizes {
            let start = Instant::now();
            if mode.is_round_trip() {
                for i in 0..n {
                    writer
                        .write_all(&protocol::encode(kind::HIT, i, 0))
                        .map_err(|e| format!("write: {e}"))?;
                    let (k, value, _) = read_frame(&mut reader)?;
                    assert!(k == kind::ANSWER && value == i + 1, "the answer matches");
                }
            } else {
                raw_stream(n, &mut writer, &mut reader)?;
            }
            durations.push(start.elapsed());
        }
    }
    drop(reader);
    drop(ours);
    finish_child(process)?;
    Ok(durations)
}

/// One blocking one-way pass: items through a buffered writer, acknowledgements read
/// whenever the window is full, then the flush and the child's count.
fn raw_stream(
    n: u64,
    socket: &mut &UnixStream,
    reader: &mut BufReader<UnixStream>,
) -> Result<(), String> {
    let mut writer = BufWriter::with_capacity(64 * 1024, &**socket);
    let mut acked = 0;
    for i in 0..n {
        while i >= acked + WINDOW {
            writer.flush().map_err(|e| format!("write: {e}"))?;
            let (k, count, _) = read_frame(reader)?;
            assert_eq!(k, kind::ACK, "only acknowledgements during a stream");
            acked = acked.max(count);
        }
        writer
            .write_all(&protocol::encode(kind::ITEM, i, 0))
            .map_err(|e| format!("write: {e}"))?;
    }
    writer
        .write_all(&protocol::encode(kind::FLUSH, 0, 0))
        .and_then(|_| writer.flush())
        .map_err(|e| format!("write: {e}"))?;
    loop {
        let (k, count, sum) = read_frame(reader)?;
        if k == kind::DONE {
            check_stream(n, count, sum);
            return Ok(());
        }
        assert_eq!(k, kind::ACK, "only acknowledgements before the count");
    }
}

/// The tokio baselines (a two-worker runtime, the work in a spawned task), one pass per
/// size.
fn tokio_passes(mode: Mode, child: &Path, sizes: &[u64]) -> Result<Vec<Duration>, String> {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let (ours, theirs) = UnixStream::pair().map_err(|e| format!("socket pair: {e}"))?;
    let process = spawn_raw_child(child, mode.child_mode(), theirs)?;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .map_err(|e| format!("runtime: {e}"))?;
    ours.set_nonblocking(true)
        .map_err(|e| format!("nonblocking: {e}"))?;
    let sizes = sizes.to_vec();
    let task = runtime.spawn(async move {
        let socket = tokio::net::UnixStream::from_std(ours).map_err(|e| e.to_string())?;
        let (read, mut write) = socket.into_split();
        let mut reader = tokio::io::BufReader::with_capacity(64 * 1024, read);
        let mut frame = [0u8; FRAME];
        let mut durations = Vec::new();
        for n in sizes {
            let start = Instant::now();
            if mode.is_round_trip() {
                for i in 0..n {
                    write
                        .write_all(&protocol::encode(kind::HIT, i, 0))
                        .await
                        .map_err(|e| format!("write: {e}"))?;
                    reader
                        .read_exact(&mut frame)
                        .await
                        .map_err(|e| format!("read: {e}"))?;
                    let (k, value, _) = protocol::decode(&frame);
                    assert!(k == kind::ANSWER && value == i + 1, "the answer matches");
                }
            } else {
                let mut writer = tokio::io::BufWriter::with_capacity(64 * 1024, &mut write);
                let mut acked = 0;
                for i in 0..n {
                    while i >= acked + WINDOW {
                        writer.flush().await.map_err(|e| format!("write: {e}"))?;
                        reader
                            .read_exact(&mut frame)
                            .await
                            .map_err(|e| format!("read: {e}"))?;
                        let (k, count, _) = protocol::decode(&frame);
                        assert_eq!(k, kind::ACK, "only acknowledgements during a stream");
                        acked = acked.max(count);
                    }
                    writer
                        .write_all(&protocol::encode(kind::ITEM, i, 0))
                        .await
                        .map_err(|e| format!("write: {e}"))?;
                }
                writer
                    .write_all(&protocol::encode(kind::FLUSH, 0, 0))
                    .await
                    .map_err(|e| format!("write: {e}"))?;
                writer.flush().await.map_err(|e| format!("write: {e}"))?;
                loop {
                    reader
                        .read_exact(&mut frame)
                        .await
                        .map_err(|e| format!("read: {e}"))?;
                    let (k, count, sum) = protocol::decode(&frame);
                    if k == kind::DONE {
                        check_stream(n, count, sum);
                        break;
                    }
                    assert_eq!(k, kind::ACK, "only acknowledgements before the count");
                }
            }
            durations.push(start.elapsed());
        }
        Ok::<_, String>(durations)
    });
    let durations = runtime
        .block_on(task)
        .map_err(|e| format!("the task failed: {e}"))??;
    drop(runtime);
    finish_child(process)?;
    Ok(durations)
}

/// `link-child` beside this program.
fn default_child() -> Result<PathBuf, String> {
    let exe = std::env::current_exe().map_err(|e| format!("cannot find this program: {e}"))?;
    Ok(exe.with_file_name("link-child"))
}

const USAGE: &str = "usage: link-parent MODE N [CHILD]
  MODE   roundtrip-raw, roundtrip-tokio, roundtrip-strata, roundtrip-strata-direct,
         oneway-raw, oneway-tokio, oneway-strata, oneway-strata-direct
  N      operations in the measured pass (a pass of N/10 warms up first)
  CHILD  the child program (default: link-child beside this program)";

fn run(args: &[String]) -> Result<Duration, String> {
    let (mode, n, child) = match args {
        [mode, n] => (mode, n, default_child()?),
        [mode, n, child] => (mode, n, PathBuf::from(child)),
        _ => return Err(USAGE.to_string()),
    };
    let mode = Mode::from_key(mode).ok_or_else(|| format!("unknown mode `{mode}`\n{USAGE}"))?;
    let n: u64 = n.parse().map_err(|_| format!("bad N `{n}`"))?;
    if n == 0 {
        return Err("N must be at least 1".into());
    }
    if !child.is_file() {
        return Err(format!(
            "no child program at {} (build the bench crate: bench/run does)",
            child.display()
        ));
    }
    let sizes = [(n / 10).max(1), n];
    let durations = match mode.child_mode() {
        protocol::child_mode::STRATA => strata_passes(mode, &child, &sizes)?,
        protocol::child_mode::RAW => raw_passes(mode, &child, &sizes)?,
        _ => tokio_passes(mode, &child, &sizes)?,
    };
    durations
        .last()
        .copied()
        .ok_or_else(|| "no pass ran".to_string())
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if args.iter().any(|a| a == "-h" || a == "--help") {
        println!("{USAGE}");
        return ExitCode::SUCCESS;
    }
    match run(&args) {
        Ok(measured) => {
            println!("RESULT {}", measured.as_nanos());
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("link-parent: {e}");
            ExitCode::FAILURE
        }
    }
}
