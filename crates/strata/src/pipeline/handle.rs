//! The handle: a pipeline for plain Rust code.

use std::time::{Duration, Instant};

use parking_lot::Mutex;

use super::builder::{Pipeline, PipelineError};
use super::messages::{DrainPipeline, PipelineStats};
use super::stats::PipelineReport;
use crate::message::AnyMessage;
use crate::object::{Postbox, ThreadContext};
use crate::standard::Returned;
use crate::Address;

impl Pipeline {
    /// Starts the pipeline for plain Rust code. It is a child of the handle: dropping the
    /// handle drains it. Bad parameters are refused here, naming the stage and parameter.
    pub fn start(self) -> Result<PipelineHandle, PipelineError> {
        self.validate()?;
        let mut cx = ThreadContext::attach();
        let pipeline = cx.create(self);
        Ok(PipelineHandle {
            pipeline,
            postbox: cx.postbox(),
            state: Mutex::new(State { cx, ended: None }),
        })
    }

    /// Runs the pipeline to its end (or until it is drained) and gives its report.
    pub fn run(self) -> Result<PipelineReport, PipelineError> {
        self.start()?.wait()
    }
}

/// A running pipeline, for plain Rust code: wait for its report, ask how it goes, drain
/// it.
pub struct PipelineHandle {
    pipeline: Address,
    postbox: Postbox,
    state: Mutex<State>,
}

struct State {
    cx: ThreadContext,
    ended: Option<Result<PipelineReport, PipelineError>>,
}

impl std::fmt::Debug for PipelineHandle {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PipelineHandle")
            .field("pipeline", &self.pipeline)
            .finish()
    }
}

fn to_report(value: AnyMessage) -> Result<PipelineReport, PipelineError> {
    value.downcast::<PipelineReport>().map_err(|other| {
        PipelineError::Ended(
            other
                .as_fault()
                .map_or_else(|| other.type_name().to_string(), |f| f.reason()),
        )
    })
}

impl PipelineHandle {
    /// The pipeline object's address (objects may send it [`PipelineStats`] and
    /// [`DrainPipeline`]).
    pub fn address(&self) -> Address {
        self.pipeline
    }

    /// Waits for the pipeline to end and gives its report.
    pub fn wait(self) -> Result<PipelineReport, PipelineError> {
        loop {
            if let Some(r) = self.wait_timeout(Duration::from_secs(3600)) {
                return r;
            }
        }
    }

    /// Waits at most `timeout` for the pipeline to end; `None` if it still runs.
    pub fn wait_timeout(&self, timeout: Duration) -> Option<Result<PipelineReport, PipelineError>> {
        let mut state = self.state.lock();
        if let Some(r) = &state.ended {
            return Some(r.clone());
        }
        let deadline = Instant::now() + timeout;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            let e = state.cx.select_timeout::<(Returned,)>(left).ok()?;
            if e.sender() == self.pipeline {
                let value = e.take::<Returned>().expect("selected").value;
                let r = to_report(value);
                state.ended = Some(r.clone());
                return Some(r);
            }
        }
    }

    /// Asks the pipeline to drain: the frontend stops producing and what was produced
    /// flows through; [`wait`](Self::wait) then gives the report.
    pub fn drain(&self) {
        self.postbox.send(self.pipeline, DrainPipeline);
    }

    /// The run so far (figures at most half a second old), or the final report once it
    /// ended.
    pub fn statistics(&self) -> Result<PipelineReport, PipelineError> {
        let mut state = self.state.lock();
        if let Some(r) = &state.ended {
            return r.clone();
        }
        let answer = state
            .cx
            .ask_timeout(self.pipeline, PipelineStats, Duration::from_secs(10));
        to_report(answer)
    }
}
