//! The load generators of the HTTP benchmarks, `wrk` and `strata load`, run the same way:
//! a fresh process with its output piped, killed if it runs well past its own duration,
//! its report read into a [`Report`] along with the CPU time it used.

use std::process::{Command, Stdio};
use std::time::Duration;

use super::server::die_with_parent;
use super::wrk::{self, Report};
use super::{oha, strata_load};
use crate::suite;

/// A load generator.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Loader {
    /// `wrk -t2 -c16 --latency`.
    Wrk,
    /// `strata load --clients 16 --requests 0 --validate table --json`.
    StrataLoad,
    /// `oha -c 16 --no-tui --output-format json` (the load client benchmark's second peer).
    Oha,
}

impl Loader {
    /// The name used in file names and progress lines.
    pub fn key(self) -> &'static str {
        match self {
            Loader::Wrk => "wrk",
            Loader::StrataLoad => "strata-load",
            Loader::Oha => "oha",
        }
    }

    /// The loader's label in the tables.
    pub fn label(self) -> String {
        match self {
            Loader::Wrk => format!("`wrk -t{} -c{}`", wrk::THREADS, wrk::CONNECTIONS),
            Loader::StrataLoad => format!(
                "`strata load --clients {} --requests 0 --validate table`",
                strata_load::CLIENTS
            ),
            Loader::Oha => format!("`oha -c{}`", oha::CONNECTIONS),
        }
    }

    /// The program and its arguments for a run against `url` over `seconds`.
    fn command(self, url: &str, seconds: u64) -> Command {
        let (mut command, args) = match self {
            Loader::Wrk => (Command::new("wrk"), wrk::command_line(url, seconds)),
            Loader::StrataLoad => (
                Command::new(strata_load::program()),
                strata_load::command_line(url, seconds),
            ),
            Loader::Oha => (Command::new("oha"), oha::command_line(url, seconds)),
        };
        command.args(args);
        command
    }

    /// Where the program comes from, for an error when it cannot be started.
    fn hint(self) -> &'static str {
        match self {
            Loader::Wrk => "is it installed? bench/run installs it",
            Loader::StrataLoad => "bench/run builds it: `cargo build --release -p strata-cli`",
            Loader::Oha => {
                "is it installed? bench/run installs it with `cargo install --locked oha`"
            }
        }
    }

    /// Reads the loader's report from its standard output.
    fn parse(self, stdout: &str) -> Result<Report, String> {
        match self {
            Loader::Wrk => {
                wrk::parse(stdout).ok_or_else(|| format!("cannot read wrk's report:\n{stdout}"))
            }
            Loader::StrataLoad => strata_load::parse(stdout),
            Loader::Oha => oha::parse(stdout),
        }
    }

    /// Runs the loader against `url` for `seconds` and reads its report, with the CPU time
    /// it used in [`Report::loader_cpu`]. It is killed if it runs 20 s past its duration.
    pub fn run(self, url: &str, seconds: u64) -> Result<Report, String> {
        let mut command = self.command(url, seconds);
        command
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        die_with_parent(&mut command);
        let child = command
            .spawn()
            .map_err(|e| format!("cannot start {} ({}): {e}", self.key(), self.hint()))?;
        let limit = Duration::from_secs(seconds + 20);
        let finished = suite::finish(child, limit, &format!("{} on {url}", self.key()))?;
        let output = &finished.output;
        let stdout = String::from_utf8_lossy(&output.stdout);
        if !output.status.success() {
            return Err(format!(
                "{} failed ({}) on {url}: {}{}",
                self.key(),
                output.status,
                stdout.trim(),
                String::from_utf8_lossy(&output.stderr).trim()
            ));
        }
        let mut report = self.parse(&stdout)?;
        report.loader_cpu = finished.cpu;
        Ok(report)
    }
}
