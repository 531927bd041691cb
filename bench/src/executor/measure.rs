//! One measurement of the executor benchmark, in this process: `strata-bench
//! executor-measure ROW PEER N WORKERS` (what the suite runs in a fresh child for each
//! Rust row). Throughput rows build the pool once, run a warm-up pass of N/10 jobs, then
//! the measured pass of N, and print `RESULT <nanoseconds>` of that pass; the periodic
//! row runs its schedule for N seconds and prints `STARTS <ns>,<ns>,...`, each run's start
//! after the moment just before the job was added, and `ENDS` likewise (the end of each
//! run, which strata's schedule uses when a run ends after the next was due).
//!
//! A pass submits every job, then awaits every result in the order of submission, and
//! checks that each job's index came back once (their sum).

use std::sync::mpsc;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use strata::executor::periodic::{Periodic, PeriodicJob};
use strata::executor::{Executor, ExecutorHandle, ShutdownMode};
use strata::process::Process;

use super::jobs::{self, Empty, Spin};
use super::{Peer, Row, PERIOD, SPIN};

/// `executor-measure ROW PEER N WORKERS`.
pub fn command(args: &[String]) -> Result<(), String> {
    let [row, peer, n, workers] = args else {
        return Err("executor-measure takes ROW PEER N WORKERS".into());
    };
    let row = Row::from_key(row).ok_or_else(|| format!("unknown row `{row}`"))?;
    let peer = Peer::from_key(peer).ok_or_else(|| format!("unknown peer `{peer}`"))?;
    let n: u64 = n.parse().map_err(|_| format!("bad N `{n}`"))?;
    let workers: usize = workers
        .parse()
        .map_err(|_| format!("bad WORKERS `{workers}`"))?;
    if n == 0 || workers == 0 {
        return Err("N and WORKERS must be at least 1".into());
    }
    if row == Row::Periodic {
        let starts = match peer {
            Peer::Strata => strata_periodic(Duration::from_secs(n))?,
            other => return Err(format!("{} has no periodic row in Rust", other.key())),
        };
        let list = |v: &[u64]| v.iter().map(u64::to_string).collect::<Vec<_>>().join(",");
        println!("STARTS {}", list(&starts.0));
        println!("ENDS {}", list(&starts.1));
        return Ok(());
    }
    let spin = row == Row::Spin;
    let sizes = [(n / 10).max(1), n];
    let durations = match peer {
        Peer::Strata => strata_threads(&sizes, workers, spin)?,
        Peer::StrataProcesses => strata_processes(&sizes, workers, spin)?,
        Peer::Rayon => rayon_spawn(&sizes, workers, spin)?,
        Peer::Threadpool => threadpool_execute(&sizes, workers, spin)?,
        Peer::Tokio => tokio_spawn_blocking(&sizes, workers, spin)?,
        other => return Err(format!("{} is not a Rust peer", other.key())),
    };
    if peer.is_strata() {
        let stats = strata::runtime::stats();
        if stats.refused_full != 0 || stats.faulted != 0 {
            return Err(format!(
                "strata refused {} sends for full mailboxes and {} objects faulted: the \
                 measurement is void ({stats:?})",
                stats.refused_full, stats.faulted
            ));
        }
    }
    println!("RESULT {}", durations[1].as_nanos());
    Ok(())
}

/// The job's body for the closure-taking peers: nothing, or the spin.
fn body(i: u64, spin: bool) -> u64 {
    if spin {
        jobs::spin(SPIN);
    }
    i
}

/// Checks that the indexes 0..n came back, each once (their sum, and their count).
fn check(sum: u64, count: u64, n: u64) -> Result<(), String> {
    let expected = n * (n - 1) / 2;
    if sum == expected && count == n {
        Ok(())
    } else {
        Err(format!(
            "{count} results summing to {sum}; expected {n} summing to {expected}"
        ))
    }
}

/// Runs one pass per size with `pass`, timing each.
fn passes(
    sizes: &[u64],
    mut pass: impl FnMut(u64) -> Result<(), String>,
) -> Result<Vec<Duration>, String> {
    sizes
        .iter()
        .map(|&n| {
            let began = Instant::now();
            pass(n)?;
            Ok(began.elapsed())
        })
        .collect()
}

/// Submits n jobs to a strata executor through its handle, then awaits every future.
fn strata_pass(
    pool: &ExecutorHandle,
    n: u64,
    submit: impl Fn(&ExecutorHandle, u64) -> strata::executor::JobFuture<u64>,
) -> Result<(), String> {
    let futures: Vec<_> = (0..n).map(|i| submit(pool, i)).collect();
    let mut sum = 0;
    for f in futures {
        sum += f.wait().map_err(|e| format!("a job failed: {e}"))?;
    }
    check(sum, n, n)
}

/// strata's executor of worker threads: closures with `submit_fn`.
fn strata_threads(sizes: &[u64], workers: usize, spin: bool) -> Result<Vec<Duration>, String> {
    let pool = Executor::threads()
        .min_workers(workers)
        .max_workers(workers)
        .start();
    let durations = passes(sizes, |n| {
        strata_pass(&pool, n, |p, i| p.submit_fn(move || body(i, spin)))
    })?;
    finish_strata(&pool, sizes)?;
    Ok(durations)
}

/// strata's executor of worker processes (`exec-worker`): job types with `submit`.
fn strata_processes(sizes: &[u64], workers: usize, spin: bool) -> Result<Vec<Duration>, String> {
    let exe = std::env::current_exe().map_err(|e| format!("cannot find this binary: {e}"))?;
    let worker = exe.with_file_name("exec-worker");
    if !worker.is_file() {
        return Err(format!(
            "{} is missing: build the bench crate (bench/run does)",
            worker.display()
        ));
    }
    let pool = Executor::processes(Process::of(worker.to_string_lossy().into_owned()))
        .min_workers(workers)
        .max_workers(workers)
        .start();
    let micros = SPIN.as_micros() as u64;
    let durations = passes(sizes, |n| {
        strata_pass(&pool, n, |p, i| {
            if spin {
                p.submit(Spin { index: i, micros })
            } else {
                p.submit(Empty { index: i })
            }
        })
    })?;
    finish_strata(&pool, sizes)?;
    Ok(durations)
}

/// Shuts the pool down and checks its counts.
fn finish_strata(pool: &ExecutorHandle, sizes: &[u64]) -> Result<(), String> {
    let stats = pool
        .shutdown(ShutdownMode::Wait)
        .map_err(|e| format!("shutdown: {e}"))?;
    let total: u64 = sizes.iter().sum();
    if stats.executed != total || stats.failed != 0 || stats.rejected != 0 {
        return Err(format!(
            "the executor executed {}, failed {}, rejected {} of {total} jobs",
            stats.executed, stats.failed, stats.rejected
        ));
    }
    Ok(())
}

/// Receives n indexes from `rx` and checks them.
fn receive(rx: &mpsc::Receiver<u64>, n: u64) -> Result<(), String> {
    let mut sum = 0;
    for _ in 0..n {
        sum += rx
            .recv()
            .map_err(|_| "the result channel closed".to_string())?;
    }
    check(sum, n, n)
}

/// `rayon::spawn` on rayon's global pool of `workers` threads; each job sends its index
/// on a shared channel (rayon's spawn gives no handle to await).
fn rayon_spawn(sizes: &[u64], workers: usize, spin: bool) -> Result<Vec<Duration>, String> {
    rayon::ThreadPoolBuilder::new()
        .num_threads(workers)
        .build_global()
        .map_err(|e| format!("rayon: {e}"))?;
    let (tx, rx) = mpsc::channel();
    passes(sizes, |n| {
        for i in 0..n {
            let tx = tx.clone();
            rayon::spawn(move || {
                let _ = tx.send(body(i, spin));
            });
        }
        receive(&rx, n)
    })
}

/// The `threadpool` crate's `execute`, the same channel.
fn threadpool_execute(sizes: &[u64], workers: usize, spin: bool) -> Result<Vec<Duration>, String> {
    let pool = threadpool::ThreadPool::new(workers);
    let (tx, rx) = mpsc::channel();
    let durations = passes(sizes, |n| {
        for i in 0..n {
            let tx = tx.clone();
            pool.execute(move || {
                let _ = tx.send(body(i, spin));
            });
        }
        receive(&rx, n)
    })?;
    pool.join();
    Ok(durations)
}

/// `tokio::task::spawn_blocking` on a runtime whose blocking pool holds at most `workers`
/// threads; each job's `JoinHandle` awaited in order.
fn tokio_spawn_blocking(
    sizes: &[u64],
    workers: usize,
    spin: bool,
) -> Result<Vec<Duration>, String> {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(workers)
        .max_blocking_threads(workers)
        .build()
        .map_err(|e| format!("tokio: {e}"))?;
    runtime.block_on(async {
        let mut durations = Vec::new();
        for &n in sizes {
            let began = Instant::now();
            let handles: Vec<_> = (0..n)
                .map(|i| tokio::task::spawn_blocking(move || body(i, spin)))
                .collect();
            let mut sum = 0;
            for h in handles {
                sum += h.await.map_err(|e| format!("a job failed: {e}"))?;
            }
            check(sum, n, n)?;
            durations.push(began.elapsed());
        }
        Ok(durations)
    })
}

/// strata's `Periodic` (its own executor of threads) running an empty job every
/// [`PERIOD`] for `length`; each run's start and end, in nanoseconds after the clock read
/// just before the job was added.
fn strata_periodic(length: Duration) -> Result<(Vec<u64>, Vec<u64>), String> {
    let capacity = (length.as_nanos() / PERIOD.as_nanos()) as usize + 16;
    let starts = Arc::new(Mutex::new(Vec::<(Instant, Instant)>::with_capacity(
        capacity,
    )));
    let record = starts.clone();
    let tick = PeriodicJob::every(PERIOD, "tick", move || {
        let now = Instant::now();
        if let Ok(mut starts) = record.lock() {
            starts.push((now, Instant::now()));
        }
    });
    // The job is added to a running `Periodic`, which places its first run one spacing
    // after it handles the addition: a little after t0, so the errors measured against
    // t0 are, if anything, too large.
    let periodic = Periodic::new().start();
    let t0 = Instant::now();
    periodic
        .add(tick)
        .map_err(|e| format!("the periodic job was refused: {e}"))?;
    std::thread::sleep(length);
    let stats = periodic.stop().map_err(|e| format!("stop: {e}"))?;
    if stats.iter().any(|s| s.failures != 0) {
        return Err(format!("a periodic run failed: {stats:?}"));
    }
    let starts = starts
        .lock()
        .map_err(|_| "a run panicked holding the list of starts".to_string())?;
    let after = |i: Instant| i.duration_since(t0).as_nanos() as u64;
    Ok((
        starts.iter().map(|s| after(s.0)).collect(),
        starts.iter().map(|s| after(s.1)).collect(),
    ))
}
