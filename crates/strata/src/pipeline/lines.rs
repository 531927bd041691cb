//! Ready-made stages for text: the seed engine's defaults, which `strata pipe` runs.
//!
//! * [`StdinLines`]: a frontend of the lines of standard input;
//! * [`LogTransport`]: logs each line (target `strata::pipe`, level info) and passes it
//!   on — or runs it through a shell command, whose output lines go on instead;
//! * [`LogBackend`]: logs each line and writes it to standard output.
//!
//! The transport is a message, so it runs in worker processes as well
//! (`StageRunner::new().transport::<LogTransport>()`); the frontend and backend use this
//! process's standard input and output.

use std::io::{BufRead, Write};
use std::process::{Command, Stdio};

use serde::{Deserialize, Serialize};

use super::roles::{Backend, Emit, Frontend, Transport};
use crate::standard::Faulted;
use crate::Message;

/// The lines of standard input, without their line ends (each line read once, whatever
/// the number of workers). A line that is not UTF-8 is an error (the policy decides).
#[derive(Debug, Clone, Default, Serialize, Deserialize, Message)]
#[message(name = "pipeline.StdinLines")]
pub struct StdinLines;

impl Frontend for StdinLines {
    type Item = String;
    fn produce(&mut self) -> Result<Option<String>, Faulted> {
        let mut line = String::new();
        match std::io::stdin().lock().read_line(&mut line) {
            Ok(0) => Ok(None),
            Ok(_) => {
                if line.ends_with('\n') {
                    line.pop();
                    if line.ends_with('\r') {
                        line.pop();
                    }
                }
                Ok(Some(line))
            }
            Err(e) => Err(Faulted::new(format!("cannot read standard input: {e}"))),
        }
    }
}

/// Logs each line and passes it on; with a `command`, runs each line through it instead
/// (`sh -c COMMAND`, the line on its standard input) and passes on the lines it prints —
/// none, one or several. A command that exits with a failure status fails the line.
#[derive(Debug, Clone, Default, Serialize, Deserialize, Message)]
#[message(name = "pipeline.LogTransport")]
pub struct LogTransport {
    /// The shell command each line goes through, if any.
    pub command: Option<String>,
}

impl LogTransport {
    fn run(&self, command: &str, line: &str, out: &mut Emit<String>) -> Result<(), Faulted> {
        let mut child = Command::new("sh")
            .arg("-c")
            .arg(command)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .map_err(|e| Faulted::new(format!("cannot run `{command}`: {e}")))?;
        let mut stdin = child.stdin.take().expect("piped");
        let input = format!("{line}\n");
        // Written from a thread, so a command that prints before it reads cannot block us.
        let writer = std::thread::spawn(move || {
            let _ = stdin.write_all(input.as_bytes());
        });
        let output = child
            .wait_with_output()
            .map_err(|e| Faulted::new(format!("cannot wait for `{command}`: {e}")))?;
        let _ = writer.join();
        if !output.status.success() {
            let err = String::from_utf8_lossy(&output.stderr);
            let last = err
                .lines()
                .rev()
                .find(|l| !l.trim().is_empty())
                .unwrap_or("");
            return Err(Faulted::new(format!(
                "`{command}` failed ({}) on {line:?}{}{last}",
                output.status,
                if last.is_empty() { "" } else { ": " }
            )));
        }
        for l in String::from_utf8_lossy(&output.stdout).lines() {
            out.send(l.to_string());
        }
        Ok(())
    }
}

impl Transport for LogTransport {
    type In = String;
    type Out = String;
    fn transport(&mut self, line: &String, out: &mut Emit<String>) -> Result<(), Faulted> {
        tracing::info!(target: "strata::pipe", stage = "transport", %line);
        match &self.command {
            Some(command) => self.run(command, line, out),
            None => {
                out.send(line.clone());
                Ok(())
            }
        }
    }
}

/// Logs each line and writes it to standard output.
#[derive(Debug, Clone, Default, Serialize, Deserialize, Message)]
#[message(name = "pipeline.LogBackend")]
pub struct LogBackend;

impl Backend for LogBackend {
    type In = String;
    fn process(&mut self, line: &String) -> Result<(), Faulted> {
        tracing::info!(target: "strata::pipe", stage = "backend", %line);
        let mut out = std::io::stdout().lock();
        writeln!(out, "{line}")
            .map_err(|e| Faulted::new(format!("cannot write standard output: {e}")))
    }

    fn cleanup(&mut self, _: &super::WorkerInfo) {
        let _ = std::io::stdout().flush();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_transform_command_turns_a_line_into_its_output_lines_or_fails_it() {
        let mut t = LogTransport {
            command: Some("tr a-z A-Z; echo second".into()),
        };
        let mut out = Emit::new_for_tests();
        t.transport(&"hello".to_string(), &mut out).unwrap();
        assert_eq!(out.taken::<String>(), ["HELLO", "second"]);
        let mut t = LogTransport {
            command: Some("echo nope >&2; exit 3".into()),
        };
        let e = t.transport(&"x".to_string(), &mut out).unwrap_err();
        assert!(
            e.reason.contains("exit status: 3") && e.reason.contains("nope"),
            "{e}"
        );
        let mut plain = LogTransport::default();
        plain.transport(&"as is".to_string(), &mut out).unwrap();
        assert_eq!(out.taken::<String>(), ["as is"]);
    }
}
