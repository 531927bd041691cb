//! The floor of a worker pool: bare hyper handing each table to a pool of worker threads
//! or worker processes with the fewest moving parts, no strata anywhere.
//!
//! `strata-bench serve-hyper ADDRESS --threads 8` builds each table on one of 8 worker
//! threads: the request's task pushes the job onto a shared queue (a mutex and a condition
//! variable, the textbook pool), an idle worker wakes, builds the table and sends it back
//! on a oneshot channel; the task encodes it as JSON, as `server_4`'s front does.
//! `--processes 8` builds it in one of 8 child processes (this binary again, as
//! `strata-bench pool-worker`), each joined to the parent by a Unix socket pair: the task
//! takes an idle child, writes `x` and `y` (two little-endian `u32`s), reads back the
//! table as a count and that many little-endian `f64`s, returns the child to the idle set
//! and encodes JSON, as `server_8`'s front does.
//!
//! Idle workers yield their CPU in a loop for a while before they sleep, as strata's do:
//! on this benchmark's 2-CPU machine that is the fastest way we found.
//!
//! These are what any pool of that kind must pay on the machine at hand — a wake-up of an
//! idle thread or process and a hand-back per request — so the HTTP benchmarks set
//! `server_4` and `server_8` against them as well as against bare hyper: the ratio of a
//! floor to bare hyper is the most a pool can reach there, and strata's ratio to the floor
//! is what strata itself costs.

use std::collections::VecDeque;
use std::io::{ErrorKind, Read, Write};
use std::os::unix::net::UnixStream;
use std::sync::{Arc, Condvar, Mutex};
use std::time::{Duration, Instant};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::sync::{oneshot, Semaphore};

use super::hyper_texture::{first_seed, table, Table};

/// How long an idle worker (thread or process) yields its CPU in a loop, looking for
/// work, before it sleeps: strata's waiting threads do the same (`SPIN_FOR` in its
/// mailbox), and on a loaded machine it saves more than it costs. Measured with 8 workers
/// at 8×8 on 2 virtual CPUs, in hand-run interleaved rounds: the thread pool 0.71× →
/// 0.81× bare hyper, the process pool 0.45× → 0.50×.
const SPIN_FOR: Duration = Duration::from_micros(200);

/// The argument of the `pool-worker` command (the child side of `--processes`).
pub const WORKER_COMMAND: &str = "pool-worker";

/// Which kind of pool answers.
#[derive(Clone)]
pub enum Pool {
    /// Worker threads fed from one shared queue.
    Threads(Arc<Queue>),
    /// Child processes, each over its own socket pair.
    Processes(Arc<Children>),
}

impl Pool {
    /// Starts `n` worker threads.
    pub fn threads(n: usize) -> Pool {
        let queue = Arc::new(Queue::default());
        for i in 0..n {
            let queue = queue.clone();
            std::thread::Builder::new()
                .name(format!("pool-{i}"))
                .spawn(move || queue.serve())
                .expect("a worker thread starts");
        }
        Pool::Threads(queue)
    }

    /// Starts `n` child processes (this program, as `pool-worker`).
    pub fn processes(n: usize) -> Result<Pool, String> {
        let program = std::env::current_exe().map_err(|e| format!("cannot find myself: {e}"))?;
        let mut idle = Vec::with_capacity(n);
        for _ in 0..n {
            let (ours, theirs) = UnixStream::pair().map_err(|e| e.to_string())?;
            std::process::Command::new(&program)
                .arg(WORKER_COMMAND)
                .stdin(std::process::Stdio::from(std::os::fd::OwnedFd::from(
                    theirs,
                )))
                .spawn()
                .map_err(|e| format!("cannot start a pool worker: {e}"))?;
            ours.set_nonblocking(true).map_err(|e| e.to_string())?;
            idle.push(tokio::net::UnixStream::from_std(ours).map_err(|e| e.to_string())?);
        }
        Ok(Pool::Processes(Arc::new(Children {
            free: Semaphore::new(n),
            idle: Mutex::new(idle),
        })))
    }

    /// The x-by-y table, built by a worker.
    pub async fn table(&self, x: usize, y: usize) -> Result<Table, String> {
        match self {
            Pool::Threads(queue) => {
                let (answer, table) = oneshot::channel();
                queue.push(Job { x, y, answer });
                table.await.map_err(|_| "a worker thread ended".to_string())
            }
            Pool::Processes(children) => {
                // On a task of its own, so a client that hangs up mid-request (hyper then
                // drops this future) cannot leave a child with an answer half read.
                let children = children.clone();
                tokio::spawn(async move { children.table(x, y).await })
                    .await
                    .map_err(|e| e.to_string())?
            }
        }
    }
}

/// One table to build and where its answer goes.
pub struct Job {
    x: usize,
    y: usize,
    answer: oneshot::Sender<Table>,
}

/// The thread pool's queue: jobs waiting, and idle workers waiting for them.
#[derive(Default)]
pub struct Queue {
    jobs: Mutex<VecDeque<Job>>,
    ready: Condvar,
}

impl Queue {
    fn push(&self, job: Job) {
        self.jobs.lock().expect("queue lock").push_back(job);
        self.ready.notify_one();
    }

    /// A worker thread's life: take a job, build its table, answer, again.
    fn serve(&self) {
        let mut seed = first_seed();
        loop {
            let job = {
                let since = Instant::now();
                let mut jobs = self.jobs.lock().expect("queue lock");
                while jobs.is_empty() && since.elapsed() < SPIN_FOR {
                    drop(jobs);
                    std::thread::yield_now();
                    jobs = self.jobs.lock().expect("queue lock");
                }
                loop {
                    match jobs.pop_front() {
                        Some(job) => break job,
                        None => jobs = self.ready.wait(jobs).expect("queue lock"),
                    }
                }
            };
            // The asker may have gone (its client hung up); nothing to do then.
            let _ = job.answer.send(table(job.x, job.y, &mut seed));
        }
    }
}

/// The process pool: idle children and a count of them to wait on.
pub struct Children {
    free: Semaphore,
    idle: Mutex<Vec<tokio::net::UnixStream>>,
}

impl Children {
    async fn table(&self, x: usize, y: usize) -> Result<Table, String> {
        let permit = self.free.acquire().await.map_err(|e| e.to_string())?;
        let mut child = self
            .idle
            .lock()
            .expect("idle lock")
            .pop()
            .expect("a permit means an idle child");
        let result = exchange(&mut child, x, y).await;
        if result.is_ok() {
            self.idle.lock().expect("idle lock").push(child);
            drop(permit);
        } else {
            // A broken child leaves the pool for good, and its permit with it.
            permit.forget();
        }
        result
    }
}

/// One request to a child and its answer.
async fn exchange(child: &mut tokio::net::UnixStream, x: usize, y: usize) -> Result<Table, String> {
    let side = |n: usize| u32::try_from(n).map_err(|_| format!("side {n} is too large"));
    let mut request = [0u8; 8];
    request[..4].copy_from_slice(&side(x)?.to_le_bytes());
    request[4..].copy_from_slice(&side(y)?.to_le_bytes());
    let lost = |e: std::io::Error| format!("a pool worker is gone: {e}");
    child.write_all(&request).await.map_err(lost)?;
    let mut count = [0u8; 4];
    child.read_exact(&mut count).await.map_err(lost)?;
    let count = u32::from_le_bytes(count) as usize;
    if count != x * y {
        return Err(format!("a pool worker sent {count} numbers for {x}×{y}"));
    }
    let mut body = vec![0u8; count * 8];
    child.read_exact(&mut body).await.map_err(lost)?;
    let mut numbers = body
        .chunks_exact(8)
        .map(|b| f64::from_le_bytes(b.try_into().expect("8 bytes")));
    Ok((0..y).map(|_| numbers.by_ref().take(x).collect()).collect())
}

/// `strata-bench pool-worker`: the child side of `--processes`. Serves requests on its
/// standard input (one end of a socket pair) until the parent goes away.
pub fn worker_command() -> Result<(), String> {
    // Die with the parent even if it is killed outright.
    // SAFETY: prctl with PR_SET_PDEATHSIG and a signal number has no memory effects.
    unsafe { libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL) };
    // SAFETY: file descriptor 0 is the socket the parent gave us, owned by nobody else here.
    let link = unsafe {
        use std::os::fd::FromRawFd;
        UnixStream::from_raw_fd(0)
    };
    serve_link(link)
}

/// Answers the requests that come over `link` until its other end is closed.
fn serve_link(mut link: UnixStream) -> Result<(), String> {
    link.set_nonblocking(true)
        .map_err(|e| format!("cannot make the link non-blocking: {e}"))?;
    let mut seed = first_seed();
    let mut request = [0u8; 8];
    let mut out = Vec::new();
    loop {
        if !read_request(&mut link, &mut request) {
            return Ok(()); // the parent is gone
        }
        let x = u32::from_le_bytes(request[..4].try_into().expect("4 bytes")) as usize;
        let y = u32::from_le_bytes(request[4..].try_into().expect("4 bytes")) as usize;
        out.clear();
        out.extend_from_slice(&((x * y) as u32).to_le_bytes());
        for v in table(x, y, &mut seed).iter().flatten() {
            out.extend_from_slice(&v.to_le_bytes());
        }
        if write_reply(&mut link, &out).is_err() {
            return Ok(());
        }
    }
}

/// Reads one request from the (non-blocking) link into `request`: while nothing has come
/// for less than [`SPIN_FOR`] it yields and tries again, then waits in `poll`. False when
/// the parent is gone.
fn read_request(link: &mut UnixStream, request: &mut [u8; 8]) -> bool {
    let mut got = 0;
    let since = Instant::now();
    while got < request.len() {
        match link.read(&mut request[got..]) {
            Ok(0) => return false,
            Ok(n) => got += n,
            Err(e) if e.kind() == ErrorKind::WouldBlock => {
                if since.elapsed() < SPIN_FOR {
                    std::thread::yield_now();
                } else if !wait_for(link, libc::POLLIN) {
                    return false;
                }
            }
            Err(e) if e.kind() == ErrorKind::Interrupted => {}
            Err(_) => return false,
        }
    }
    true
}

/// Writes all of `out` to the (non-blocking) link.
fn write_reply(link: &mut UnixStream, mut out: &[u8]) -> std::io::Result<()> {
    while !out.is_empty() {
        match link.write(out) {
            Ok(0) => return Err(ErrorKind::WriteZero.into()),
            Ok(n) => out = &out[n..],
            Err(e) if e.kind() == ErrorKind::WouldBlock => {
                if !wait_for(link, libc::POLLOUT) {
                    return Err(ErrorKind::BrokenPipe.into());
                }
            }
            Err(e) if e.kind() == ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(())
}

/// Blocks until the link is ready for `events`; false if it cannot be waited on.
fn wait_for(link: &UnixStream, events: libc::c_short) -> bool {
    use std::os::fd::AsRawFd;
    let mut fd = libc::pollfd {
        fd: link.as_raw_fd(),
        events,
        revents: 0,
    };
    loop {
        // SAFETY: one valid pollfd, for the duration of the call.
        let n = unsafe { libc::poll(&mut fd, 1, -1) };
        if n >= 0 {
            return true;
        }
        if std::io::Error::last_os_error().kind() != ErrorKind::Interrupted {
            return false;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_thread_pool_builds_tables_of_the_asked_shape() {
        let runtime = tokio::runtime::Runtime::new().unwrap();
        let pool = Pool::threads(2);
        runtime.block_on(async {
            // More requests at once than workers: some wait in the queue.
            let asks: Vec<_> = (1..=20)
                .map(|i| {
                    let pool = pool.clone();
                    tokio::spawn(async move { (i, pool.table(i % 5 + 1, i % 3 + 1).await) })
                })
                .collect();
            for ask in asks {
                let (i, t) = ask.await.unwrap();
                let t = t.unwrap();
                assert_eq!(t.len(), i % 3 + 1);
                assert!(t.iter().all(|row| row.len() == i % 5 + 1));
            }
        });
    }

    #[test]
    fn a_process_worker_answers_over_its_link_until_it_is_closed() {
        let (ours, theirs) = UnixStream::pair().unwrap();
        let worker = std::thread::spawn(move || serve_link(theirs));
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        runtime.block_on(async {
            ours.set_nonblocking(true).unwrap();
            let mut link = tokio::net::UnixStream::from_std(ours).unwrap();
            for (x, y) in [(2, 3), (8, 8), (100, 1)] {
                let t = exchange(&mut link, x, y).await.unwrap();
                assert_eq!(t.len(), y);
                assert!(t.iter().all(|row| row.len() == x));
                assert!(t.iter().flatten().all(|v| (0.0..1.0).contains(v)));
            }
        });
        drop(runtime);
        assert_eq!(worker.join().unwrap(), Ok(()));
    }
}
