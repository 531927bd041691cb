//! `strata-bench`: measures strata against actix, ractor and a raw tokio-channel baseline on
//! the same three workloads, strata's HTTP servers (the front, the thread spool, the
//! process spool) against bare hyper and Python layer-cake spools, and strata's link
//! between a parent and its child process against a raw socket pair, strata's executor
//! against rayon, threadpool, tokio and Python's pools, and reports medians side by side.
//!
//! Run it through `bench/run` (which builds in release mode first). Without arguments the
//! binary runs the whole suite: every benchmark for every peer, several runs each, each run
//! in a fresh child process (`strata-bench measure BENCH PEER N`), then prints the results
//! table and rewrites the table in `bench/README.md`. See the README for what each benchmark
//! measures exactly.

mod directory;
mod executor;
mod http;
mod lan;
mod link;
mod peers;
mod pipeline;
mod reliability;
mod report;
mod suite;
mod workload;

use std::process::ExitCode;

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if args.iter().any(|a| a == "-h" || a == "--help") {
        println!("{}", suite::USAGE);
        return ExitCode::SUCCESS;
    }
    let result = if args.first().map(String::as_str) == Some("measure") {
        suite::measure_command(&args[1..])
    } else if args.first().map(String::as_str) == Some("executor-measure") {
        executor::measure::command(&args[1..])
    } else if args.first().map(String::as_str) == Some("serve-hyper") {
        http::hyper_texture::serve_command(&args[1..])
    } else if args.first().map(String::as_str) == Some(http::hyper_pool::WORKER_COMMAND) {
        http::hyper_pool::worker_command()
    } else {
        suite::Options::parse(&args).and_then(|options| suite::run(&options))
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("strata-bench: {e}");
            ExitCode::FAILURE
        }
    }
}
