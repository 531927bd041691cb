//! A role's history: each worker's starts and ends, how it ended, and the value it
//! returned (`roles/ROLE/history.json`, the newest [`KEPT`] runs).

use std::collections::VecDeque;

use serde::{Deserialize, Serialize};

/// How many runs a role's history keeps.
pub const KEPT: usize = 64;

pub use crate::supervisor::Exit;

/// One run of one worker.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Run {
    /// The worker (`ROLE-N`).
    pub worker: String,
    /// Its process id.
    pub pid: u32,
    /// When it started (ms since the epoch).
    pub started_ms: u64,
    /// When it ended, if it did.
    #[serde(default)]
    pub ended_ms: Option<u64>,
    /// How it ended.
    #[serde(default)]
    pub exit: Option<Exit>,
    /// The value it returned, as JSON (a fault is `{"type", "value"}` with its reason).
    #[serde(default)]
    pub returned: Option<serde_json::Value>,
    /// What the supervisor made of the end (`possible out-of-memory kill`, `stopped`,
    /// `restart in 1.2s`, `failed: ...`).
    #[serde(default)]
    pub note: Option<String>,
}

/// A role's runs, oldest first.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct History {
    /// The runs kept.
    pub runs: VecDeque<Run>,
}

impl History {
    /// Notes a start.
    pub fn started(&mut self, worker: &str, pid: u32, at_ms: u64) {
        self.runs.push_back(Run {
            worker: worker.to_string(),
            pid,
            started_ms: at_ms,
            ended_ms: None,
            exit: None,
            returned: None,
            note: None,
        });
        while self.runs.len() > KEPT {
            self.runs.pop_front();
        }
    }

    /// Notes the end of the run of `worker` with `pid`.
    pub fn ended(
        &mut self,
        worker: &str,
        pid: u32,
        at_ms: u64,
        exit: Option<Exit>,
        returned: Option<serde_json::Value>,
        note: Option<String>,
    ) {
        let run = self
            .runs
            .iter_mut()
            .rev()
            .find(|r| r.worker == worker && r.pid == pid && r.ended_ms.is_none());
        if let Some(run) = run {
            run.ended_ms = Some(at_ms);
            run.exit = exit;
            run.returned = returned;
            run.note = note;
        }
    }

    /// The last value returned by any worker of the role.
    pub fn last_returned(&self) -> Option<&Run> {
        self.runs.iter().rev().find(|r| r.returned.is_some())
    }
}
