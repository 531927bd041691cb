//! `strata pipe`: the seed engine's default pipeline as a command — lines from standard
//! input, a logging transport (or `--transform CMD`, each line run through a program),
//! a logging backend that writes the lines to standard output — for shell pipelines.
//!
//! The stages are the library's (`strata::pipeline::lines`); this file parses, builds
//! the pipeline, runs it as the program's top object (Ctrl-C drains it), and prints the
//! report on stderr. With `--processes` the transport runs in worker processes: this
//! program again, as the hidden `pipe-worker` command.

use std::process::ExitCode;
use std::time::Duration;

use clap::Args;
use strata::pipeline::lines::{LogBackend, LogTransport, StdinLines};
use strata::pipeline::{
    DrainPipeline, ErrorPolicy, Outcome, Pipeline, PipelineReport, Progress, StageRunner, Workers,
};
use strata::prelude::*;
use strata::process::Process;

/// Options of `strata pipe`.
#[derive(Args, Debug)]
pub struct PipeArgs {
    /// Transport workers (with more than one, lines may come out in another order).
    #[arg(long, default_value_t = 3)]
    transport_workers: usize,
    /// Backend workers.
    #[arg(long, default_value_t = 1)]
    backend_workers: usize,
    /// Lines the transport's queue holds.
    #[arg(long, default_value_t = 100)]
    transport_queue: usize,
    /// Lines the backend's queue holds.
    #[arg(long, default_value_t = 100)]
    backend_queue: usize,
    /// Run each line through this shell command (`sh -c CMD`, the line on its stdin);
    /// the lines it prints go on instead. A command that fails skips its line (counted).
    #[arg(long, value_name = "CMD")]
    transform: Option<String>,
    /// Run the transport's workers as processes instead of threads.
    #[arg(long)]
    processes: bool,
    /// Retry a failed line this many times (10 ms apart, doubling) before skipping it.
    #[arg(long, default_value_t = 0)]
    retries: u32,
    /// Stop at the first failed line instead of skipping it.
    #[arg(long, conflicts_with = "retries")]
    stop_on_error: bool,
    /// Seconds a drain (Ctrl-C) may take before what is left is counted and dropped.
    #[arg(long, default_value_t = 5.0)]
    drain_timeout: f64,
    /// Draw progress on stderr: auto (a terminal, runs over 2 s), always, never.
    #[arg(long, default_value = "auto", value_parser = ["auto", "always", "never"])]
    progress: String,
    /// Do not print the report on stderr at the end.
    #[arg(long)]
    quiet: bool,
}

fn policy(args: &PipeArgs) -> ErrorPolicy {
    if args.stop_on_error {
        ErrorPolicy::stop()
    } else if args.retries > 0 {
        let backoff =
            strata::backoff::Backoff::growing(Duration::from_millis(10), Duration::from_secs(1));
        ErrorPolicy::retry(args.retries, backoff)
    } else {
        ErrorPolicy::skip()
    }
}

fn build(args: &PipeArgs) -> Result<Pipeline, String> {
    let drain = Duration::try_from_secs_f64(args.drain_timeout).map_err(|_| {
        format!(
            "--drain-timeout {}: not a number of seconds",
            args.drain_timeout
        )
    })?;
    let transport = if args.processes {
        let me = std::env::current_exe()
            .map_err(|e| format!("cannot find this program to start workers: {e}"))?;
        Workers::processes(
            args.transport_workers,
            Process::of(me.to_string_lossy().into_owned()).arg("pipe-worker"),
        )
    } else {
        Workers::threads(args.transport_workers)
    };
    let progress = match args.progress.as_str() {
        "always" => Progress::Always,
        "never" => Progress::Never,
        _ => Progress::Auto,
    };
    let pipeline = Pipeline::frontend(StdinLines, Workers::threads(1))
        .transport(
            LogTransport {
                command: args.transform.clone(),
            },
            transport.queue(args.transport_queue).on_error(policy(args)),
        )
        .backend(
            LogBackend,
            Workers::threads(args.backend_workers)
                .queue(args.backend_queue)
                .on_error(policy(args)),
        )
        .drain_timeout(drain)
        .progress(progress);
    pipeline.validate().map_err(|e| {
        // Name the flag, not the library's parameter.
        let text = e.to_string();
        text.replace("pipeline transport: `workers`", "--transport-workers")
            .replace("pipeline backend: `workers`", "--backend-workers")
            .replace("pipeline transport: `queue`", "--transport-queue")
            .replace("pipeline backend: `queue`", "--backend-queue")
            .replace("pipeline pipeline: `drain_timeout`", "--drain-timeout")
    })?;
    Ok(pipeline)
}

/// Runs `strata pipe`.
pub fn run(args: PipeArgs, log: Option<String>) -> ExitCode {
    let pipeline = match build(&args) {
        Ok(p) => p,
        Err(e) => {
            eprintln!("strata pipe: {e}");
            return ExitCode::from(2);
        }
    };
    let quiet = args.quiet;
    // The top object: runs the pipeline, turns Stop (Ctrl-C, SIGTERM) into a drain, and
    // ends with the exit status.
    let top = Thread::new(move |cx: &mut ThreadContext| -> i32 {
        let p = cx.create(pipeline);
        loop {
            let e = cx.select::<(Returned, Stop)>();
            if e.is::<Stop>() {
                cx.send(p, DrainPipeline);
                continue;
            }
            if e.sender() != p {
                continue;
            }
            let value = e.take::<Returned>().expect("selected").value;
            return match value.downcast::<PipelineReport>() {
                Ok(report) => finish(&report, quiet),
                Err(other) => {
                    let why = other
                        .as_fault()
                        .map_or_else(|| other.type_name().to_string(), |f| f.reason());
                    eprintln!("strata pipe: {why}");
                    1
                }
            };
        }
    });
    let settings = strata::ProgramSettings {
        log,
        ..Default::default()
    };
    strata::main_with(top, settings)
}

fn finish(report: &PipelineReport, quiet: bool) -> i32 {
    if !quiet {
        eprint!("{report}");
    }
    // Lines skipped after failing are counted in the report; the status says so too.
    let skipped: u64 = report.stages.iter().map(|s| s.skipped).sum();
    match &report.outcome {
        Outcome::Finished | Outcome::Drained if report.left() == 0 && skipped == 0 => 0,
        _ => 1,
    }
}

/// Runs `strata pipe-worker`: a transport worker process of `strata pipe --processes`.
pub fn worker() -> ExitCode {
    strata::main(Threaded(StageRunner::new().transport::<LogTransport>()))
}
