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
//! * `strata create | add | update | edit | delete | list | destroy` keep a home of roles,
//!   and `strata run | start | stop | status | history | returned | log` run it as one
//!   supervised composite (see `home.rs` and `run.rs`).
//!
//! Three hidden commands are this program's own children: `texture-worker` (a worker
//! process of the demo's spool), `load-share` (the clients of one process of
//! `strata load --processes N`) and `pipe-worker` (a transport worker of
//! `strata pipe --processes`).

mod demo;
mod directory;
mod home;
mod key;
mod load;
mod network;
mod ping;
mod pipe;
mod run;

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

    #[command(flatten)]
    home: home::HomeArg,

    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Run the texture service under load and print a report.
    Demo(demo::DemoArgs),
    /// Drive an HTTP service with many clients and report throughput, errors and latency.
    Load(Box<load::LoadArgs>),
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
    /// Make a new home (default ./.strata; --home DIR or STRATA_HOME for another).
    Create,
    /// Add a role: EXE [ROLE] [--count N] [-- ARGS...] (the arguments are checked first).
    Add(home::AddArgs),
    /// Change a role's settings: ROLE --name=value ... (all or nothing; a running home
    /// applies them, resizing for --count).
    Update(home::UpdateArgs),
    /// Edit a role's settings in $EDITOR (checked before they are stored).
    Edit {
        /// The role.
        role: String,
    },
    /// Delete a role and its storage (not while the home runs).
    Delete {
        /// The role.
        role: String,
    },
    /// List the home's roles.
    List(home::ListArgs),
    /// Remove the whole home (not while it runs).
    Destroy,
    /// Run the home's roles (all, or those named) in the foreground, lines merged; Ctrl-C stops all.
    Run(run::RunArgs),
    /// Run the home's roles in the background.
    Start(run::RunArgs),
    /// Stop what the home started (SIGTERM, grace, SIGKILL), and nothing else.
    Stop,
    /// What runs: roles, or with -l every worker's pid, uptime, restarts and last exit.
    Status(run::StatusArgs),
    /// A role's starts and ends, with exit status or signal.
    History {
        /// The role.
        role: String,
    },
    /// The last value a role's worker returned, as JSON.
    Returned {
        /// The role.
        role: String,
    },
    /// A role's log lines (no terminal needed).
    Log(run::LogArgs),
    /// Print a systemd unit file that runs the home (readiness notified, reload on SIGHUP).
    Systemd {
        /// For a user's systemd (`systemctl --user`) rather than the system's.
        #[arg(long)]
        user: bool,
    },
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
    if std::env::var_os(strata::process::CHECK_ARGUMENTS_VARIABLE)
        .is_some_and(|v| v == strata::process::CHECK_ARGUMENTS_MARK)
    {
        // Asked by a home to check arguments (this program carries the mark): never run.
        println!("{}", strata::process::ARGUMENTS_UNCHECKED);
        return ExitCode::SUCCESS;
    }
    let cli = Cli::parse();
    let h = &cli.home;
    match cli.command {
        Command::Create => home::create(h),
        Command::Add(args) => home::add(h, args),
        Command::Update(args) => home::update(h, args),
        Command::Edit { role } => home::edit(h, &role),
        Command::Delete { role } => home::delete(h, &role),
        Command::List(args) => home::list(h, args),
        Command::Destroy => home::destroy(h),
        Command::Run(args) => run::run(h, args, cli.log),
        Command::Start(args) => run::start(h, args, cli.log),
        Command::Stop => run::stop(h),
        Command::Status(args) => run::status(h, args),
        Command::History { role } => run::history(h, &role),
        Command::Returned { role } => run::returned(h, &role),
        Command::Log(args) => run::log(h, args),
        Command::Systemd { user } => run::systemd(h, user),
        Command::Demo(args) => demo::run(args, cli.log),
        Command::Load(args) => load::run(*args, cli.log),
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
