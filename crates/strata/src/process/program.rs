//! Programs: run a top object as the whole process.
//!
//! [`main`] sets up logging, creates the top object, turns Ctrl-C and SIGTERM into
//! [`Stop`] for it, waits for it to return, then stops every object still running (waiting
//! a grace period for them) and converts the top object's value into the exit status:
//!
//! * an integer value (`i32`, `u8`, ...) is the exit status itself (clamped to 0..=255);
//! * a fault prints one line to stderr and exits 1 (or 128 + the signal number when the
//!   program was stopped by a signal and ended with `Aborted`);
//! * any other value exits 0.
//!
//! A second Ctrl-C while stopping exits at once.

use std::process::ExitCode;
use std::sync::atomic::{AtomicI32, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::message::AnyMessage;
use crate::object::{Object, Postbox, ThreadContext};
use crate::runtime::{self, node};
use crate::standard::Aborted;

/// The environment variable that asks a strata program to check its arguments and exit
/// instead of running (`strata add` and `strata update` use it before storing a role's
/// settings). Its value must be [`CHECK_ARGUMENTS_MARK`].
pub const CHECK_ARGUMENTS_VARIABLE: &str = "STRATA_CHECK_ARGUMENTS";

/// The value of [`CHECK_ARGUMENTS_VARIABLE`]; its bytes in an executable are how a home
/// tells a strata program (which answers the check) from any other (which is never run to
/// check it). An entry point prints [`ARGUMENTS_CHECKED`], a program that parses its own
/// arguments (`strata::main`) prints [`ARGUMENTS_UNCHECKED`]; both exit 0, and bad
/// arguments exit 2 with a line naming the argument.
pub const CHECK_ARGUMENTS_MARK: &str = "strata-check-arguments-v1";

/// What an entry point prints when its arguments decode (see [`CHECK_ARGUMENTS_MARK`]).
pub const ARGUMENTS_CHECKED: &str = "strata: arguments checked";

/// What a program run by [`main`] prints when asked to check its arguments: it parses
/// them itself, so they are checked when it starts.
pub const ARGUMENTS_UNCHECKED: &str = "strata: arguments not checked";

/// True when this process was started only to check its arguments.
pub(crate) fn checking_arguments() -> bool {
    std::env::var_os(CHECK_ARGUMENTS_VARIABLE).is_some_and(|v| v == CHECK_ARGUMENTS_MARK)
}

/// How [`main_with`] runs the program.
#[derive(Debug, Clone)]
pub struct ProgramSettings {
    /// How long objects still running after the top returns get to end after `Stop`.
    pub grace: Duration,
    /// The log filter; `None` reads `--log=LEVEL`, `STRATA_LOG` or `RUST_LOG`.
    pub log: Option<String>,
}

impl Default for ProgramSettings {
    fn default() -> Self {
        ProgramSettings {
            grace: Duration::from_secs(3),
            log: None,
        }
    }
}

/// Runs `top` as the program with default [`ProgramSettings`]; returns the exit status.
///
/// ```no_run
/// use strata::prelude::*;
/// fn main() -> std::process::ExitCode {
///     strata::main(Thread::new(|_cx: &mut ThreadContext| 0i32))
/// }
/// ```
pub fn main<O: Object>(top: O) -> ExitCode {
    main_with(top, ProgramSettings::default())
}

/// Runs `top` as the program; returns the exit status.
pub fn main_with<O: Object>(top: O, settings: ProgramSettings) -> ExitCode {
    match run_program(top, &settings) {
        Ok((value, signal)) => {
            let (value, signal) = if super::recycle::retired() {
                let served = crate::runtime::requests::count();
                (AnyMessage::new(super::Recycled { requests: served }), 0)
            } else {
                (value, signal)
            };
            if super::link::is_child() && !value.is_fault() {
                // The parent's `Process` object decodes the value from this line.
                match crate::message::codec::to_json(&value) {
                    Ok(json) => println!("{json}"),
                    Err(e) => eprintln!("strata: {e}"),
                }
            }
            exit_status(&value, signal)
        }
        Err(code) => code,
    }
}

/// Runs `top` as the program and returns its value and the signal (0 for none) that
/// stopped it, after stopping every other object. `Err` carries the exit status of a
/// program that could not start (a bad log filter).
pub(crate) fn run_program<O: Object>(
    top: O,
    settings: &ProgramSettings,
) -> Result<(AnyMessage, i32), ExitCode> {
    if checking_arguments() {
        // Got this far: whatever the program parsed before calling `main` was fine.
        println!("{ARGUMENTS_UNCHECKED}");
        return Err(ExitCode::SUCCESS);
    }
    // The link to a parent, if any, is read from the environment and checked first, once
    // (see `process::link`); the runtime's threads start later.
    super::link::inherited();
    let filter = settings
        .log
        .clone()
        .unwrap_or_else(crate::logging::filter_from_args_and_env);
    if let Err(e) = crate::logging::init(&filter) {
        eprintln!("strata: {e}");
        return Err(ExitCode::from(2));
    }
    // `STRATA_METRICS=ADDR`, read once: a bad value stops the program before it starts.
    match crate::metrics::serve_from_env() {
        Ok(_serving) => {} // dropping the handle leaves it serving until the process ends
        Err(e) => {
            eprintln!("strata: {e}");
            return Err(ExitCode::from(2));
        }
    }
    let recycle = match super::recycle::limit_from_env() {
        Ok(limit) => limit,
        Err(e) => {
            eprintln!("strata: {e}");
            return Err(ExitCode::from(2));
        }
    };
    let mut cx = ThreadContext::attach();
    let signalled = Arc::new(AtomicI32::new(0));
    let signals = install_signals();
    let top = cx.create(top);
    watch_signals(signals, cx.postbox(), top, signalled.clone());
    if let Some(limit) = recycle {
        super::recycle::install(limit, cx.postbox(), top);
    }
    super::link::child_end(&mut cx, top);

    let value = cx.wait_for(top);
    stop_everything(&cx, settings.grace);
    Ok((value, signalled.load(Ordering::SeqCst)))
}

type Signals = (tokio::signal::unix::Signal, tokio::signal::unix::Signal);

/// Installs the SIGINT and SIGTERM handlers; signals that arrive from now on are kept
/// until [`watch_signals`] reads them.
fn install_signals() -> Option<Signals> {
    use tokio::signal::unix::{signal, SignalKind};
    let _runtime = runtime::handle().enter();
    match (
        signal(SignalKind::interrupt()),
        signal(SignalKind::terminate()),
    ) {
        (Ok(int), Ok(term)) => Some((int, term)),
        (Err(e), _) | (_, Err(e)) => {
            tracing::error!(target: "strata::object", error = %e, "cannot watch for signals");
            None
        }
    }
}

fn watch_signals(
    signals: Option<Signals>,
    postbox: Postbox,
    top: crate::Address,
    signalled: Arc<AtomicI32>,
) {
    let Some((mut int, mut term)) = signals else {
        return;
    };
    runtime::handle().spawn(async move {
        loop {
            let signo = tokio::select! {
                _ = int.recv() => libc::SIGINT,
                _ = term.recv() => libc::SIGTERM,
            };
            if signalled.swap(signo, Ordering::SeqCst) != 0 {
                eprintln!("strata: second signal, exiting at once");
                std::process::exit(128 + signo);
            }
            tracing::info!(target: "strata::object", signal = signo, "signal received, stopping");
            postbox.stop(top);
        }
    });
}

/// Sends Stop to every object still running and waits up to `grace` for them to end.
fn stop_everything(cx: &ThreadContext, grace: Duration) {
    let me = cx.address();
    let others = || {
        node()
            .addresses()
            .into_iter()
            .filter(move |a| *a != me)
            .collect::<Vec<_>>()
    };
    let left = others();
    if left.is_empty() {
        return;
    }
    tracing::debug!(target: "strata::object", objects = left.len(), "stopping objects still running");
    for a in left {
        cx.stop(a);
    }
    let deadline = Instant::now() + grace;
    while Instant::now() < deadline {
        if others().is_empty() {
            return;
        }
        std::thread::sleep(Duration::from_millis(5));
    }
    tracing::warn!(target: "strata::object", objects = runtime::live_objects().saturating_sub(1),
        "objects still running after the grace period; exiting anyway");
}

fn exit_status(value: &AnyMessage, signal: i32) -> ExitCode {
    macro_rules! integer {
        ($($t:ty),*) => {$(
            if let Some(v) = value.downcast_ref::<$t>() {
                return ExitCode::from((*v as i128).clamp(0, 255) as u8);
            }
        )*};
    }
    integer!(i8, i16, i32, i64, u8, u16, u32, u64);
    if let Some(fault) = value.as_fault() {
        if signal != 0 && value.is::<Aborted>() {
            return ExitCode::from((128 + signal) as u8);
        }
        eprintln!("{}", fault.reason());
        return ExitCode::from(1);
    }
    ExitCode::SUCCESS
}
