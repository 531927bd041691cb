//! Logs through `tracing`: object create, send, receive, timer and destroy events.
//!
//! Targets: `strata::object` (create/destroy, unhandled messages, panics),
//! `strata::send`, `strata::receive`, `strata::timer`. Creation and destruction log at
//! `debug`; every send, receive and timer at `trace`; refusals (full mailboxes) at `warn`.
//! A disabled level costs one comparison on the hot path.
//!
//! [`init`] installs a subscriber whose level comes from, in order: the `--log=LEVEL`
//! (or `--log LEVEL`) command-line argument, the `STRATA_LOG` environment variable, then
//! `RUST_LOG`, defaulting to `warn`. Any `tracing` filter is accepted
//! (`debug`, `strata::send=trace,info`).

use tracing_subscriber::EnvFilter;

/// The log filter chosen by the command line (`--log=LEVEL`) or the environment.
pub fn filter_from_args_and_env() -> String {
    let mut args = std::env::args().skip(1);
    while let Some(a) = args.next() {
        if let Some(v) = a.strip_prefix("--log=") {
            return v.to_string();
        }
        if a == "--log" {
            if let Some(v) = args.next() {
                return v;
            }
        }
    }
    std::env::var("STRATA_LOG")
        .or_else(|_| std::env::var("RUST_LOG"))
        .unwrap_or_else(|_| "warn".to_string())
}

/// Installs a stderr subscriber with `filter` (see [`filter_from_args_and_env`]).
///
/// Returns an error naming the filter when it does not parse. Does nothing when a global
/// subscriber is already set.
pub fn init(filter: &str) -> Result<(), String> {
    let parsed =
        EnvFilter::try_new(filter).map_err(|e| format!("bad log filter `{filter}`: {e}"))?;
    let _ = tracing_subscriber::fmt()
        .with_env_filter(parsed)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .try_init();
    Ok(())
}
