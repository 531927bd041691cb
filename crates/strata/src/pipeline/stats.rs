//! What a pipeline tells about its run: per stage counts and times, the outcome, and the
//! progress line drawn on a terminal.

use std::fmt;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::Message;

/// One stage's figures. Every item a stage took in is, at the end, exactly one of:
/// handled (`done`), `skipped` after failing, or `left` (still queued, waiting for a
/// retry or running when the pipeline was halted); what the handled items became went on
/// (`items_out`) or was `dropped` at a halt.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, Message)]
#[message(name = "pipeline.StageStatistics")]
pub struct StageStatistics {
    /// `frontend`, `transport` or `backend`.
    pub stage: String,
    /// `threads`, `async` or `processes`.
    pub kind: String,
    /// Workers the stage runs.
    pub workers: u64,
    /// Items taken from the previous stage (for a frontend: produced).
    pub items_in: u64,
    /// Items handled to the end (for a frontend: produced; for a backend: consumed).
    pub done: u64,
    /// Items sent on to the next stage (a transport's outputs; 0 for a backend).
    pub items_out: u64,
    /// Failures (errors returned, panics, a worker process dying with the item).
    pub errors: u64,
    /// Attempts made again after a failure.
    pub retries: u64,
    /// Items dropped after failing, as the error policy said.
    pub skipped: u64,
    /// Items in the stage when it was halted without finishing them (0 after a clean
    /// end): queued, waiting for a retry or being handled.
    pub left: u64,
    /// Items handled (a frontend's produced, a transport's outputs) that could not go on
    /// to the next stage because the pipeline was halted (0 after a clean end).
    pub dropped: u64,
    /// A frontend's items received twice (from a producer that died and the one that
    /// replaced it) and dropped: not counted in `items_in`.
    pub duplicates: u64,
    /// Workers that ended unexpectedly and were replaced.
    pub replaced: u64,
    /// Items waiting for a worker now.
    pub queued: u64,
    /// Items being handled now.
    pub running: u64,
    /// Items waiting for the next stage's room now.
    pub waiting_to_go_on: u64,
    /// Time the workers spent in the user's code, summed over workers.
    pub busy_seconds: f64,
    /// Since the stage started.
    pub seconds: f64,
}

impl StageStatistics {
    /// Items handled per second of the stage's life.
    pub fn items_per_second(&self) -> f64 {
        if self.seconds > 0.0 {
            self.done as f64 / self.seconds
        } else {
            0.0
        }
    }
}

impl fmt::Display for StageStatistics {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{:<9} {} {:<9} in {:>8}  done {:>8}  out {:>8}  errors {}  retries {}  skipped {}  left {}  dropped {}  replaced {}  busy {:.2}s  {:.0}/s",
            self.stage,
            self.workers,
            self.kind,
            self.items_in,
            self.done,
            self.items_out,
            self.errors,
            self.retries,
            self.skipped,
            self.left,
            self.dropped,
            self.replaced,
            self.busy_seconds,
            self.items_per_second()
        )
    }
}

/// How a pipeline's run ended (or that it is still running).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum Outcome {
    /// Still running (a report asked for with [`PipelineStats`](super::PipelineStats)).
    Running,
    /// The frontend ran out and every item went through.
    Finished,
    /// Asked to stop (`Stop`, Ctrl-C, [`DrainPipeline`](super::DrainPipeline)): the
    /// frontend stopped and every item already produced went through.
    Drained,
    /// A drain did not end within the drain time-out: the stages were halted and `left`
    /// counts what remained.
    TimedOut,
    /// A stage could not go on (an error policy said stop, a worker could not be set up,
    /// a stage failed); the others were halted.
    Failed {
        /// Why, naming the stage.
        reason: String,
    },
}

/// A pipeline's value: how it ended and each stage's figures, frontend first.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Message)]
#[message(name = "pipeline.PipelineReport")]
pub struct PipelineReport {
    /// How it ended.
    pub outcome: Outcome,
    /// Per stage, in order.
    pub stages: Vec<StageStatistics>,
    /// Since the pipeline started.
    pub seconds: f64,
}

impl PipelineReport {
    /// The figures of the stage named `stage` (`frontend`, `transport`, `backend`).
    pub fn stage(&self, stage: &str) -> Option<&StageStatistics> {
        self.stages.iter().find(|s| s.stage == stage)
    }

    /// Items left unfinished or dropped at a halt, in all stages.
    pub fn left(&self) -> u64 {
        self.stages.iter().map(|s| s.left + s.dropped).sum()
    }

    /// True when the run finished or drained with nothing left.
    pub fn is_complete(&self) -> bool {
        matches!(self.outcome, Outcome::Finished | Outcome::Drained) && self.left() == 0
    }
}

impl fmt::Display for PipelineReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let outcome = match &self.outcome {
            Outcome::Running => "running".to_string(),
            Outcome::Finished => "finished".to_string(),
            Outcome::Drained => "drained".to_string(),
            Outcome::TimedOut => format!("timed out draining, {} items left", self.left()),
            Outcome::Failed { reason } => format!("failed: {reason}"),
        };
        writeln!(f, "pipeline {outcome} after {:.2}s", self.seconds)?;
        for s in &self.stages {
            writeln!(f, "  {s}")?;
        }
        Ok(())
    }
}

/// When to draw the progress line on stderr.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Progress {
    /// When stderr is a terminal and the run has lasted two seconds (the default).
    #[default]
    Auto,
    /// Always (every half second).
    Always,
    /// Never.
    Never,
}

/// How long a run lasts before [`Progress::Auto`] draws.
pub(crate) const PROGRESS_AFTER: Duration = Duration::from_secs(2);

/// The progress line: a bar when the length is known, counts always.
pub(crate) fn progress_line(
    stages: &[StageStatistics],
    length: Option<u64>,
    seconds: f64,
) -> String {
    let last = stages.last().map_or(0, |s| s.done);
    let rate = if seconds > 0.0 {
        last as f64 / seconds
    } else {
        0.0
    };
    let counts: Vec<String> = stages
        .iter()
        .map(|s| format!("{} {} (q {})", s.stage, s.done, s.queued))
        .collect();
    let counts = counts.join(" · ");
    match length {
        Some(n) if n > 0 => {
            let share = (last as f64 / n as f64).clamp(0.0, 1.0);
            let width = 30;
            let full = (share * width as f64).round() as usize;
            let eta = if rate > 0.0 && last < n {
                format!(" eta {:.0}s", (n - last) as f64 / rate)
            } else {
                String::new()
            };
            format!(
                "[{}{}] {:>3.0}% {last}/{n} {rate:.0}/s{eta}  {counts}",
                "#".repeat(full),
                "-".repeat(width - full),
                share * 100.0
            )
        }
        _ => format!("{last} items {rate:.0}/s  {counts}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_progress_line_draws_a_bar_only_when_the_length_is_known() {
        let s = StageStatistics {
            stage: "backend".into(),
            done: 50,
            ..Default::default()
        };
        let line = progress_line(std::slice::from_ref(&s), Some(100), 5.0);
        assert!(
            line.starts_with("[###############---------------]  50% 50/100 10/s eta 5s"),
            "{line}"
        );
        let line = progress_line(&[s], None, 5.0);
        assert!(line.starts_with("50 items 10/s"), "{line}");
    }
}
