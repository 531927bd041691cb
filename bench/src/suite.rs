//! The suite: parses the command line, runs every (benchmark, peer) pair several times,
//! each run in a fresh child process, and hands the samples to the report.
//!
//! Runs are interleaved (run 1 of every pair, then run 2, ...) so that a slow spell of the
//! machine spreads over all peers instead of landing on one.

use std::path::PathBuf;
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use crate::directory;
use crate::executor;
use crate::http::{self, load, HttpPeer};
use crate::lan;
use crate::link;
use crate::pipeline;
use crate::reliability;
use crate::report::{self, Samples};
use crate::workload::{self, Bench, Peer};

/// A child measurement that takes longer than this is killed and fails the suite.
const CHILD_TIMEOUT: Duration = Duration::from_secs(180);

/// What the suite was asked to do.
#[derive(Debug, Clone)]
pub struct Options {
    /// Measured runs per (benchmark, peer) pair.
    pub runs: usize,
    /// Smaller sizes, for a smoke run.
    pub quick: bool,
    /// Where to rewrite the results table, if anywhere.
    pub readme: Option<PathBuf>,
    /// The benchmarks to run (apart from the HTTP ones).
    pub benches: Vec<Bench>,
    /// The peers to run (each only on the benchmarks it takes part in).
    pub peers: Vec<Peer>,
    /// Whether to run the HTTP benchmarks of issues 4 and 5 (`http`).
    pub http: bool,
    /// Whether to run the process spool's HTTP benchmark (`process`).
    pub process: bool,
    /// Whether to run the parent-child link benchmark (`link`).
    pub link: bool,
    /// Whether to run the load client benchmark of issue 7 (`load`).
    pub load: bool,
    /// Whether to run the directory benchmark of issue 16 (`directory`).
    pub directory: bool,
    /// Whether to run the executor benchmark of issue 19 (`executor`).
    pub executor: bool,
    /// Whether to run the pipeline benchmark of issue 20 (`pipeline`).
    pub pipeline: bool,
    /// Whether to run the LAN benchmark of issue 17 (`lan`; needs root, else it skips).
    pub lan: bool,
    /// Whether to run the reliability benchmark of issue 21 (`reliability`).
    pub reliability: bool,
    /// The servers of the HTTP benchmarks to run.
    pub http_peers: Vec<HttpPeer>,
    /// Seconds of each measured wrk (and `strata load`) run, when not the default.
    pub http_seconds: Option<u64>,
    /// The names and subscriptions of the directory at size, when not the default.
    pub directory_size: Option<(u64, u64)>,
    /// Seconds of each loaded row of the reliability benchmark, when not the default.
    pub reliability_seconds: Option<u64>,
    /// Seconds of the reliability benchmark's soak, when not the default.
    pub soak_seconds: Option<u64>,
}

/// The command-line help.
pub const USAGE: &str = "usage: strata-bench [--runs N] [--quick] [--readme PATH | --no-readme]
                    [--bench fanout,pingpong,spawn,http,process,link,load,directory,
                            executor,pipeline,lan,reliability]
                    [--peer raw,strata,...]
                    [--http-seconds S] [--directory-size NAMES,PATTERNS]
                    [--reliability-seconds S] [--soak-seconds S]
       strata-bench measure BENCH PEER N
       strata-bench executor-measure ROW PEER N WORKERS
       strata-bench serve-hyper ADDRESS [--threads N | --processes N]

  --runs N       measured runs per benchmark and peer (default 5; 1 with --quick)
  --quick        a tenth of the full sizes: a fast smoke run; the README is left alone
                 unless --readme is given
  --readme PATH  rewrite the results table of this README (default: bench/README.md,
                 except with --quick)
  --no-readme    print the table only
  --bench LIST   only these benchmarks (fanout, pingpong, spawn, http, process, link,
                 load, directory, executor, pipeline, lan, reliability; lan needs root
                 and skips without)
  --peer LIST    only these peers (raw, strata, strata-ask, strata-async, actix, ractor;
                 for http and process: hyper, server_1, hyper-threads, server_4,
                 layer-cake, hyper-processes, server_8, layer-cake-processes; for load:
                 hyper, server_1; for directory's HTTP table: server_8, server_10,
                 layer-cake-processes, layer-cake-named; link, executor and lan have
                 no peers to choose)
  --http-seconds S  seconds of each measured wrk or `strata load` run (default 5; 2 with
                 --quick)
  --directory-size NAMES,PATTERNS  the names and regex subscriptions the host directory
                 holds in the directory benchmark's row at size (default 100000,10000;
                 10000,1000 with --quick); NAMES a multiple of 10, PATTERNS at most NAMES/10
  --reliability-seconds S  seconds of each loaded row of the reliability benchmark
                 (overload, kill -9, each half of the slow-client row; default 60, 3 with
                 --quick)
  --soak-seconds S  seconds of the reliability benchmark's soak (default 120, 6 with
                 --quick; the full row is 1800)

  measure        one measurement in this process (what the suite runs in a child)
  executor-measure  one measurement of the executor benchmark's Rust rows (ROW: empty,
                 spin, processes, periodic; PEER: strata, rayon, threadpool, tokio,
                 strata-processes)
  serve-hyper    the bare hyper texture server of the HTTP benchmarks (with a pool of
                 N worker threads or processes: the floors of the spool benchmarks)";

fn default_readme() -> PathBuf {
    PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/README.md"))
}

impl Options {
    /// Parses the suite's command line.
    pub fn parse(args: &[String]) -> Result<Options, String> {
        let mut runs = None;
        let mut quick = false;
        let mut readme: Option<Option<PathBuf>> = None;
        let mut benches = Bench::ALL.to_vec();
        let mut http = true;
        let mut process = true;
        let mut link = true;
        let mut load = true;
        let mut directory = true;
        let mut executor = true;
        let mut pipeline = true;
        let mut lan = true;
        let mut reliability = true;
        let mut reliability_seconds = None;
        let mut soak_seconds = None;
        let mut peers = Peer::ALL.to_vec();
        let mut http_peers = HttpPeer::ALL.to_vec();
        let mut http_seconds = None;
        let mut directory_size = None;
        let mut it = args.iter();
        while let Some(arg) = it.next() {
            let mut value = |name: &str| {
                it.next()
                    .cloned()
                    .ok_or_else(|| format!("{name} needs a value\n{USAGE}"))
            };
            match arg.as_str() {
                "--runs" => {
                    let v = value("--runs")?;
                    let n: usize = v.parse().map_err(|_| format!("bad --runs `{v}`"))?;
                    if n == 0 {
                        return Err("--runs must be at least 1".into());
                    }
                    runs = Some(n);
                }
                "--quick" => quick = true,
                "--readme" => readme = Some(Some(PathBuf::from(value("--readme")?))),
                "--no-readme" => readme = Some(None),
                "--bench" => {
                    let v = value("--bench")?;
                    let names: Vec<&str> = v.split(',').filter(|s| !s.is_empty()).collect();
                    http = names.contains(&"http");
                    process = names.contains(&"process");
                    link = names.contains(&"link");
                    load = names.contains(&"load");
                    directory = names.contains(&"directory");
                    executor = names.contains(&"executor");
                    pipeline = names.contains(&"pipeline");
                    lan = names.contains(&"lan");
                    reliability = names.contains(&"reliability");
                    let others: Vec<&str> = names
                        .into_iter()
                        .filter(|&s| {
                            !matches!(
                                s,
                                "http"
                                    | "process"
                                    | "link"
                                    | "load"
                                    | "directory"
                                    | "executor"
                                    | "pipeline"
                                    | "lan"
                                    | "reliability"
                            )
                        })
                        .collect();
                    benches = list(&others.join(","), Bench::from_key, "benchmark")?;
                }
                "--peer" => {
                    let v = value("--peer")?;
                    let names: Vec<&str> = v.split(',').filter(|s| !s.is_empty()).collect();
                    let (web, others): (Vec<&str>, Vec<&str>) = names
                        .into_iter()
                        .partition(|s| HttpPeer::from_key(s).is_some());
                    peers = list(&others.join(","), Peer::from_key, "peer")?;
                    http_peers = list(&web.join(","), HttpPeer::from_key, "peer")?;
                }
                "--http-seconds" => {
                    let v = value("--http-seconds")?;
                    let n: u64 = v.parse().map_err(|_| format!("bad --http-seconds `{v}`"))?;
                    if n == 0 {
                        return Err("--http-seconds must be at least 1".into());
                    }
                    http_seconds = Some(n);
                }
                "--directory-size" => {
                    let v = value("--directory-size")?;
                    let bad = || format!("bad --directory-size `{v}` (NAMES,PATTERNS)");
                    let (names, patterns) = v.split_once(',').ok_or_else(bad)?;
                    let names: u64 = names.trim().parse().map_err(|_| bad())?;
                    let patterns: u64 = patterns.trim().parse().map_err(|_| bad())?;
                    if names == 0
                        || !names.is_multiple_of(10)
                        || patterns == 0
                        || patterns > names / 10
                    {
                        return Err(format!(
                            "{}: NAMES a multiple of 10, 1 <= PATTERNS <= NAMES/10",
                            bad()
                        ));
                    }
                    directory_size = Some((names, patterns));
                }
                "--reliability-seconds" | "--soak-seconds" => {
                    let name = arg.clone();
                    let v = value(&name)?;
                    let n: u64 = v.parse().map_err(|_| format!("bad {name} `{v}`"))?;
                    if n == 0 {
                        return Err(format!("{name} must be at least 1"));
                    }
                    if name == "--soak-seconds" {
                        soak_seconds = Some(n);
                    } else {
                        reliability_seconds = Some(n);
                    }
                }
                other => return Err(format!("unknown argument `{other}`\n{USAGE}")),
            }
        }
        let readme = match readme {
            Some(choice) => choice,
            None if quick => None,
            None => Some(default_readme()),
        };
        Ok(Options {
            runs: runs.unwrap_or(if quick { 1 } else { 5 }),
            quick,
            readme,
            benches,
            peers,
            http,
            process,
            link,
            load,
            directory,
            executor,
            pipeline,
            lan,
            reliability,
            http_peers,
            http_seconds,
            directory_size,
            reliability_seconds,
            soak_seconds,
        })
    }

    /// N for a benchmark under these options.
    pub fn size(&self, bench: Bench) -> u64 {
        if self.quick {
            bench.quick_size()
        } else {
            bench.full_size()
        }
    }
}

fn list<T>(text: &str, parse: fn(&str) -> Option<T>, what: &str) -> Result<Vec<T>, String> {
    text.split(',')
        .filter(|s| !s.is_empty())
        .map(|s| parse(s).ok_or_else(|| format!("unknown {what} `{s}`\n{USAGE}")))
        .collect()
}

/// Runs the whole suite: the actor benchmarks, the parent-child link benchmark, the
/// directory's, the executor's, the HTTP benchmarks (with the directory's server of named workers), then
/// the load client's; prints their tables and rewrites them in the README.
pub fn run(options: &Options) -> Result<(), String> {
    let pairs = pairs(options);
    let http = !http::chosen_peers(options).is_empty();
    let load = !load::chosen_peers(options).is_empty();
    if pairs.is_empty()
        && !http
        && !options.link
        && !load
        && !options.directory
        && !options.executor
        && !options.pipeline
        && !options.lan
        && !options.reliability
    {
        return Err("nothing to run: no peer takes part in the chosen benchmarks".into());
    }
    if !pairs.is_empty() {
        run_actors(options, &pairs)?;
    }
    if options.link {
        link::run(options)?;
    }
    if options.pipeline {
        pipeline::run(options)?;
    }
    if options.directory {
        directory::run(options)?;
    }
    if options.executor {
        executor::run(options)?;
    }
    if options.lan {
        lan::run(options)?;
    }
    if http {
        http::run(options)?;
    }
    if load {
        load::run(options)?;
    }
    if options.reliability {
        reliability::run(options)?;
    }
    Ok(())
}

/// The (benchmark, peer) pairs of the actor benchmarks to run.
fn pairs(options: &Options) -> Vec<(Bench, Peer)> {
    options
        .benches
        .iter()
        .flat_map(|&b| {
            b.peers()
                .iter()
                .filter(|p| options.peers.contains(p))
                .map(move |&p| (b, p))
        })
        .collect()
}

/// Runs the actor benchmarks, prints their table, and rewrites it in the README.
fn run_actors(options: &Options, pairs: &[(Bench, Peer)]) -> Result<(), String> {
    let exe = std::env::current_exe().map_err(|e| format!("cannot find this binary: {e}"))?;
    let began = Instant::now();
    let load_at_start = report::load_average();
    let mut samples = Samples::default();
    for run in 1..=options.runs {
        for &(bench, peer) in pairs {
            let n = options.size(bench);
            let elapsed = measure_in_child(&exe, bench, peer, n)?;
            let figure = bench.figure(n, elapsed);
            eprintln!(
                "[run {run}/{}] {:<8} {:<12} {}",
                options.runs,
                bench.key(),
                peer.key(),
                report::format_figure(bench, figure)
            );
            samples.add(bench, peer, n, figure);
        }
    }
    let machine = report::Machine::detect(began.elapsed(), options, load_at_start);
    let table = report::table(&samples, &machine);
    println!("{table}");
    report::save_samples(&samples, &machine);
    if let Some(path) = &options.readme {
        report::rewrite_readme(path, &table)?;
        eprintln!("results table rewritten in {}", path.display());
    }
    Ok(())
}

/// Runs one measurement in a fresh process of this binary and gives the measured duration.
fn measure_in_child(
    exe: &std::path::Path,
    bench: Bench,
    peer: Peer,
    n: u64,
) -> Result<Duration, String> {
    let mut command = Command::new(exe);
    command.args(["measure", bench.key(), peer.key(), &n.to_string()]);
    let what = format!("measure {} {} {}", bench.key(), peer.key(), n);
    measured_by(command, &what)
}

/// Runs `command`, a measurement in a fresh process that prints `RESULT <nanoseconds>`
/// (such as `strata-bench measure` or `link-parent`), and gives that duration. `what`
/// names it in errors; it is killed after [`CHILD_TIMEOUT`].
pub fn measured_by(mut command: Command, what: &str) -> Result<Duration, String> {
    let child = command
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .map_err(|e| format!("cannot start `{what}`: {e}"))?;
    let output = finish(child, CHILD_TIMEOUT, &format!("`{what}`"))?.output;
    if !output.status.success() {
        return Err(format!("`{what}` failed: {}", output.status));
    }
    let stdout = String::from_utf8_lossy(&output.stdout);
    stdout
        .lines()
        .find_map(|l| l.strip_prefix("RESULT "))
        .and_then(|v| v.trim().parse::<u64>().ok())
        .map(Duration::from_nanos)
        .ok_or_else(|| format!("`{what}` printed no result: {stdout:?}"))
}

/// What a child process left when it ended.
pub struct Finished {
    /// Its exit status and whatever of its output was piped.
    pub output: Output,
    /// The CPU time (user + system, all its threads) it used, when known.
    pub cpu: Option<Duration>,
}

/// Waits for `child` to end and gives its output and CPU time; kills it if it runs longer
/// than `limit` (`what` names it in the error). The CPU time is the growth, over the wait,
/// of what this process's reaped children have used (`getrusage(RUSAGE_CHILDREN)`): the
/// child's own, as the harness reaps no other process while it waits (a server it started
/// earlier is reaped only when stopped).
pub fn finish(mut child: Child, limit: Duration, what: &str) -> Result<Finished, String> {
    let cpu_before = children_cpu();
    let started = Instant::now();
    loop {
        match child.try_wait() {
            Ok(Some(_)) => break,
            Ok(None) if started.elapsed() > limit => {
                let _ = child.kill();
                let _ = child.wait();
                return Err(format!("{what} ran longer than {limit:?}; killed"));
            }
            Ok(None) => std::thread::sleep(Duration::from_millis(20)),
            Err(e) => return Err(format!("waiting for {what}: {e}")),
        }
    }
    let cpu = match (cpu_before, children_cpu()) {
        (Some(a), Some(b)) => Some(b.saturating_sub(a)),
        _ => None,
    };
    let output = child
        .wait_with_output()
        .map_err(|e| format!("reading the output of {what}: {e}"))?;
    Ok(Finished { output, cpu })
}

/// The CPU time (user + system) used so far by the children this process has reaped.
fn children_cpu() -> Option<Duration> {
    let mut usage = std::mem::MaybeUninit::<libc::rusage>::zeroed();
    // SAFETY: getrusage only writes the struct it is given, which is large enough.
    if unsafe { libc::getrusage(libc::RUSAGE_CHILDREN, usage.as_mut_ptr()) } != 0 {
        return None;
    }
    // SAFETY: getrusage succeeded, so it filled the struct (which was zeroed anyway).
    let usage = unsafe { usage.assume_init() };
    let time = |t: libc::timeval| {
        let seconds = u64::try_from(t.tv_sec).ok()?;
        let micros = u32::try_from(t.tv_usec).ok()?;
        Some(Duration::new(seconds, micros.checked_mul(1000)?))
    };
    Some(time(usage.ru_utime)? + time(usage.ru_stime)?)
}

/// `strata-bench measure BENCH PEER N`: a warm-up pass of a tenth of N, then the measured
/// pass, in this process; prints `RESULT <nanoseconds>`.
pub fn measure_command(args: &[String]) -> Result<(), String> {
    let [bench, peer, n] = args else {
        return Err(format!("measure takes BENCH PEER N\n{USAGE}"));
    };
    let bench = Bench::from_key(bench).ok_or_else(|| format!("unknown benchmark `{bench}`"))?;
    let peer = Peer::from_key(peer).ok_or_else(|| format!("unknown peer `{peer}`"))?;
    let n: u64 = n.parse().map_err(|_| format!("bad N `{n}`"))?;
    if n == 0 {
        return Err("N must be at least 1".into());
    }
    let durations = workload::run(bench, peer, &[bench.warmup_size(n), n])?;
    if peer.is_strata() {
        let stats = strata::runtime::stats();
        if stats.refused_full != 0 || stats.faulted != 0 {
            return Err(format!(
                "strata refused {} sends for full mailboxes and {} objects faulted \
                 during `{} {}`: the measurement is void ({stats:?})",
                stats.refused_full,
                stats.faulted,
                bench.key(),
                peer.key()
            ));
        }
    }
    let measured = durations.last().expect("two passes ran");
    println!("RESULT {}", measured.as_nanos());
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(args: &[&str]) -> Options {
        let args: Vec<String> = args.iter().map(|s| s.to_string()).collect();
        Options::parse(&args).unwrap()
    }

    #[test]
    fn the_pipeline_benchmark_is_chosen_by_name_and_runs_by_default() {
        let o = parse(&["--bench", "pipeline"]);
        assert!(o.pipeline && !o.link && !o.http && !o.directory && o.benches.is_empty());
        assert!(parse(&[]).pipeline);
        assert!(!parse(&["--bench", "link"]).pipeline);
    }

    #[test]
    fn the_process_and_link_benchmarks_are_chosen_by_name() {
        let o = parse(&["--bench", "process,link"]);
        assert!(o.process && o.link && !o.http && !o.load);
        assert!(o.benches.is_empty());
        assert_eq!(http::chosen_peers(&o), HttpPeer::PROCESS.to_vec());

        let all = parse(&[]);
        assert!(all.http && all.process && all.link && all.load);
        // Servers shared by the two HTTP benchmarks are measured once.
        assert_eq!(http::chosen_peers(&all), HttpPeer::ALL.to_vec());

        let http_only = parse(&["--bench", "http"]);
        assert!(!http_only.process && !http_only.link && !http_only.load);
        assert_eq!(http::chosen_peers(&http_only), HttpPeer::HTTP.to_vec());

        let some = parse(&["--bench", "process", "--peer", "hyper,server_8"]);
        assert_eq!(
            http::chosen_peers(&some),
            vec![HttpPeer::Hyper, HttpPeer::Server8]
        );
    }

    #[test]
    fn the_load_benchmark_is_chosen_by_name() {
        let o = parse(&["--bench", "load"]);
        assert!(o.load && !o.http && !o.process && !o.link);
        assert!(o.benches.is_empty());
        assert!(http::chosen_peers(&o).is_empty());
        assert_eq!(load::chosen_peers(&o), load::SERVERS.to_vec());
        assert_eq!(load::chosen_peers(&parse(&[])), load::SERVERS.to_vec());

        let one = parse(&["--bench", "load", "--peer", "server_1"]);
        assert_eq!(load::chosen_peers(&one), vec![(HttpPeer::Server1, false)]);
        // Servers that load does not use are not measured by it.
        let other = parse(&["--bench", "load", "--peer", "server_4"]);
        assert!(load::chosen_peers(&other).is_empty());
    }

    #[test]
    fn the_executor_benchmark_is_chosen_by_name() {
        let o = parse(&["--bench", "executor"]);
        assert!(o.executor && !o.directory && !o.http && !o.process && !o.link && !o.load);
        assert!(o.benches.is_empty());
        assert!(http::chosen_peers(&o).is_empty());
        assert!(parse(&[]).executor);
        assert!(!parse(&["--bench", "link"]).executor);
    }

    #[test]
    fn the_reliability_benchmark_is_chosen_by_name_with_its_durations() {
        let o = parse(&["--bench", "reliability", "--reliability-seconds", "7"]);
        assert!(o.reliability && !o.http && !o.load && o.benches.is_empty());
        assert_eq!(reliability::durations(&o), (7, reliability::SOAK_SECONDS.0));
        let q = parse(&["--bench", "reliability", "--quick", "--soak-seconds", "9"]);
        assert_eq!(reliability::durations(&q), (reliability::SECONDS.1, 9));
        assert!(parse(&[]).reliability);
        assert!(!parse(&["--bench", "lan"]).reliability);
    }

    #[test]
    fn the_lan_benchmark_is_chosen_by_name() {
        let o = parse(&["--bench", "lan"]);
        assert!(o.lan && !o.directory && !o.http && !o.link && !o.executor);
        assert!(o.benches.is_empty());
        assert!(parse(&[]).lan);
        assert!(!parse(&["--bench", "directory"]).lan);
    }

    #[test]
    fn the_directory_benchmark_is_chosen_by_name() {
        let o = parse(&["--bench", "directory"]);
        assert!(o.directory && !o.http && !o.process && !o.link && !o.load);
        assert!(o.benches.is_empty());
        // Its HTTP table's servers, and no others.
        let chosen = http::chosen_peers(&o);
        assert_eq!(chosen.len(), HttpPeer::DIRECTORY.len());
        assert!(HttpPeer::DIRECTORY.iter().all(|p| chosen.contains(p)));
        assert!(parse(&[]).directory);
        assert!(!parse(&["--bench", "http"]).directory);
        // Shared with the process spool benchmark: measured once.
        let both = parse(&["--bench", "process,directory"]);
        let chosen = http::chosen_peers(&both);
        assert_eq!(
            chosen.iter().filter(|&&p| p == HttpPeer::Server8).count(),
            1
        );
        assert!(chosen.contains(&HttpPeer::Server10) && chosen.contains(&HttpPeer::Hyper));
    }

    #[test]
    fn a_childs_cpu_time_is_counted() {
        let child = Command::new("sh")
            .args(["-c", "i=0; while [ $i -lt 100000 ]; do i=$((i+1)); done"])
            .spawn()
            .unwrap();
        let finished = finish(child, Duration::from_secs(60), "a busy sh").unwrap();
        assert!(finished.output.status.success());
        let cpu = finished.cpu.expect("getrusage works here");
        assert!(cpu > Duration::from_millis(5), "{cpu:?}");

        let child = Command::new("sleep").arg("10").spawn().unwrap();
        let e = finish(child, Duration::from_millis(100), "a sleep")
            .err()
            .unwrap();
        assert!(e.contains("a sleep ran longer than"), "{e}");
    }
}
