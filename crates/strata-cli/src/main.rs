//! The `strata` command: parses arguments, calls the library, prints.
//!
//! * `strata demo` runs the texture service (HTTP front, spool of worker processes) under
//!   the load client and prints the report;
//! * `strata load URL` drives any HTTP service and reports throughput, errors by kind and
//!   latency percentiles, with thresholds for CI;
//! * `strata key new|public|id` makes and reads the key files of authenticated links;
//! * `strata directory` serves the host directory in the foreground, `strata network`
//!   prints what the host's directories hold, and `strata ping NAME` times round trips to
//!   a published name.
//! * `strata pipe` runs lines from stdin through a transport (`--transform CMD`) to
//!   stdout, the seed's default three-stage engine.
//!
//! Three hidden commands are this program's own children: `texture-worker` (a worker
//! process of the demo's spool), `load-share` (the clients of one process of
//! `strata load --processes N`) and `pipe-worker` (a transport worker of
//! `strata pipe --processes`).

mod demo;
mod directory;
mod key;
mod load;
mod network;
mod ping;
mod pipe;

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
    /// Drive an HTTP service with many clients and report throughput, errors and latency.
    Load(load::LoadArgs),
    /// Make a static key or pre-shared key for links, or print a key file's public half or id.
    Key(key::KeyArgs),
    /// Serve the host directory in the foreground until Ctrl-C.
    Directory(directory::DirectoryArgs),
    /// Print the host's directory tree: the host directory, each process, what they hold.
    Network(network::NetworkArgs),
    /// Find a published name and time round trips to it.
    Ping(ping::PingArgs),
    /// Lines from stdin through a transport (logging, or --transform CMD) to stdout, each
    /// stage with its own workers and bounded queue; Ctrl-C drains.
    Pipe(pipe::PipeArgs),
    /// (internal) A transport worker process of `strata pipe --processes`.
    #[command(hide = true)]
    PipeWorker(Child),
    /// (internal) A worker process of the demo's spool.
    #[command(hide = true)]
    TextureWorker(TextureWorkerArgs),
    /// (internal) The clients of one process of `strata load --processes N`.
    #[command(hide = true)]
    LoadShare(Child),
}

/// What a parent's `Process` object passes to every child.
#[derive(clap::Args, Debug)]
struct Child {
    /// Print the value typed (always given by the parent).
    #[arg(long)]
    full_output: bool,
}

/// A demo worker's options.
#[derive(clap::Args, Debug)]
struct TextureWorkerArgs {
    #[command(flatten)]
    child: Child,
    /// Publish the worker as NAME at host scope (`strata demo --workers named`).
    #[arg(long)]
    name: Option<String>,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match cli.command {
        Command::Demo(args) => demo::run(args, cli.log),
        Command::Load(args) => load::run(args, cli.log),
        Command::Key(args) => key::run(args),
        Command::Directory(args) => directory::run(args, cli.log),
        Command::Network(args) => network::run(args, cli.log),
        Command::Ping(args) => ping::run(args, cli.log),
        Command::Pipe(args) => pipe::run(args, cli.log),
        Command::PipeWorker(_) => pipe::worker(),
        Command::TextureWorker(TextureWorkerArgs { name: None, .. }) => {
            strata::main(strata_texture::Worker::default())
        }
        Command::TextureWorker(TextureWorkerArgs {
            name: Some(name), ..
        }) => strata::main(strata_texture::NamedWorker::new(name)),
        Command::LoadShare(_) => strata::load::share_main(load::validations()),
    }
}
