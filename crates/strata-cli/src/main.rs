//! The `strata` command: parses arguments, calls the library, prints.
//!
//! `strata demo` runs the texture service under load. Until the HTTP front, spools and
//! child processes land, the service and its clients are objects in this one process: a
//! service machine forwarding `Xy` requests round-robin to worker machines on threads of
//! their own, driven by async client objects that validate every table they get back.

mod demo;

use std::process::ExitCode;

use clap::{Parser, Subcommand};

/// strata: concurrency across threads, processes and hosts under one message-passing model.
#[derive(Parser, Debug)]
#[command(name = "strata", version, about)]
struct Cli {
    /// Log filter (error, warn, info, debug, trace, or a tracing filter such as
    /// `strata::send=trace`); also read from STRATA_LOG.
    #[arg(long, global = true)]
    log: Option<String>,

    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Run the texture service under load and print a report.
    Demo(demo::DemoArgs),
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match cli.command {
        Command::Demo(args) => demo::run(args, cli.log),
    }
}
