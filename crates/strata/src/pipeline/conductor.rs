//! The pipeline object: it creates the stages, wires them, and ends them in order.
//!
//! The stages are its children, created backend first so each knows where its items
//! go. A stage ends of itself when its work is done (the frontend when its producers are
//! exhausted, the others when the previous stage said `End` and their queue is empty),
//! which cascades. A drain (`Stop`, Ctrl-C, [`DrainPipeline`]) tells the frontend to stop
//! producing and starts the drain time-out; when it passes, the stages still running are
//! halted and count what they held. A stage that fails (an error policy said stop, a
//! worker could not be set up, the stage itself faulted) halts the others, so no stage
//! waits for one that is gone: os-m3-engine's transport hangs when its backend dies.

use std::io::{IsTerminal, Write};
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};

use super::builder::Pipeline;
use super::messages::{Drain, DrainPipeline, End, Failure, Halt, PipelineStats, StageStats, Wire};
use super::stage::Stage;
use super::stats::{
    progress_line, Outcome, PipelineReport, Progress, StageStatistics, PROGRESS_AFTER,
};
use crate::object::{Context, Core, Object, Options};
use crate::standard::{Faulted, Returned, Start, Stop};
use crate::{Address, Message};

/// How often the pipeline refreshes its figures (and the progress line).
const TICK: Duration = Duration::from_millis(500);

#[derive(Debug, Clone, Copy, Serialize, Deserialize, Message)]
#[message(name = "pipeline.Tick")]
struct Tick;

#[derive(Debug, Clone, Copy, Serialize, Deserialize, Message)]
#[message(name = "pipeline.DrainDeadline")]
struct DrainDeadline;

struct Running {
    address: Address,
    name: &'static str,
    /// The last figures (final once ended).
    stats: StageStatistics,
    ended: bool,
}

/// The pipeline machine.
pub(crate) struct Conductor {
    pipeline: Option<Pipeline>,
    stages: Vec<Running>,
    outcome: Option<Outcome>,
    began: Instant,
    drew: bool,
    length: Option<u64>,
    progress: Progress,
    drain_timeout: Duration,
}

impl Object for Pipeline {
    fn kind(&self) -> &'static str {
        "pipeline"
    }

    fn run(self, core: Core) {
        let conductor = Conductor {
            length: self.length,
            progress: self.progress,
            drain_timeout: self.drain_timeout,
            pipeline: Some(self),
            stages: Vec::new(),
            outcome: None,
            began: Instant::now(),
            drew: false,
        };
        conductor.run(core)
    }
}

impl Conductor {
    fn begin(&mut self, cx: &mut Context<Self>) {
        let pipeline = self.pipeline.take().expect("started once");
        if let Err(e) = pipeline.validate() {
            tracing::error!(target: "strata::pipeline", error = %e, "pipeline not started");
            cx.complete(Faulted::new(e.to_string()));
            return;
        }
        self.began = Instant::now();
        let mut made = Vec::new();
        for spec in pipeline.stages.into_iter().rev() {
            let name = spec.role.name();
            let capacity = 4 * (spec.workers.queue + spec.workers.count) + 1024;
            let address = cx.create_with(Stage::new(spec), Options::default().capacity(capacity));
            made.push(Running {
                address,
                name,
                stats: StageStatistics {
                    stage: name.to_string(),
                    ..Default::default()
                },
                ended: false,
            });
        }
        made.reverse();
        for i in 0..made.len() {
            let upstream = i.checked_sub(1).map(|j| made[j].address);
            let downstream = made.get(i + 1).map(|r| r.address);
            cx.send(
                made[i].address,
                Wire {
                    upstream,
                    downstream,
                },
            );
        }
        self.stages = made;
        cx.start_repeating(Tick, TICK);
    }

    fn drain(&mut self, cx: &mut Context<Self>) {
        if self.outcome.is_some() {
            return;
        }
        self.outcome = Some(Outcome::Drained);
        tracing::info!(target: "strata::pipeline", pipeline = %cx.address(), "draining");
        if let Some(front) = self.stages.first().filter(|s| !s.ended) {
            cx.send(front.address, Drain);
        }
        cx.start(DrainDeadline, self.drain_timeout);
    }

    fn halt_all(&mut self, cx: &mut Context<Self>) {
        for s in self.stages.iter().filter(|s| !s.ended) {
            cx.send(s.address, Halt);
        }
    }

    fn failed(&mut self, cx: &mut Context<Self>, reason: String) {
        if !matches!(
            self.outcome,
            Some(Outcome::Failed { .. }) | Some(Outcome::TimedOut)
        ) {
            self.outcome = Some(Outcome::Failed { reason });
        }
        self.halt_all(cx);
    }

    fn stage_ended(&mut self, cx: &mut Context<Self>, from: Address, value: crate::AnyMessage) {
        let Some(i) = self.stages.iter().position(|s| s.address == from) else {
            return;
        };
        self.stages[i].ended = true;
        let name = self.stages[i].name;
        match value.downcast::<StageStatistics>() {
            Ok(s) => self.stages[i].stats = s,
            Err(other) => {
                let why = other
                    .as_fault()
                    .map_or_else(|| other.type_name().to_string(), |f| f.reason());
                self.failed(cx, format!("the {name} stage failed: {why}"));
            }
        }
        // The cascade: the next stage learns that nothing more will come once this one
        // has ended, its workers cleaned up, so the stages end in order.
        let cascading = matches!(self.outcome, None | Some(Outcome::Drained));
        if let Some(next) = self.stages.get(i + 1).filter(|s| !s.ended && cascading) {
            cx.send(next.address, End);
        }
        if self.stages.iter().all(|s| s.ended) {
            let report = self.report();
            self.end_progress();
            tracing::info!(target: "strata::pipeline", pipeline = %cx.address(), outcome = ?report.outcome, "pipeline ended");
            cx.complete(report);
        }
    }

    fn report(&self) -> PipelineReport {
        let outcome = match &self.outcome {
            None if self.stages.iter().all(|s| s.ended) => Outcome::Finished,
            None => Outcome::Running,
            Some(o) => o.clone(),
        };
        PipelineReport {
            outcome,
            stages: self.stages.iter().map(|s| s.stats.clone()).collect(),
            seconds: self.began.elapsed().as_secs_f64(),
        }
    }

    fn tick(&mut self, cx: &mut Context<Self>) {
        for s in self.stages.iter().filter(|s| !s.ended) {
            cx.send(s.address, StageStats);
        }
        let seconds = self.began.elapsed();
        let draw = match self.progress {
            Progress::Never => false,
            Progress::Always => true,
            Progress::Auto => seconds >= PROGRESS_AFTER && std::io::stderr().is_terminal(),
        };
        if draw {
            let stats: Vec<StageStatistics> = self.stages.iter().map(|s| s.stats.clone()).collect();
            let line = progress_line(&stats, self.length, seconds.as_secs_f64());
            let mut err = std::io::stderr().lock();
            let _ = write!(err, "\r{line}\x1b[K");
            let _ = err.flush();
            self.drew = true;
        }
    }

    fn end_progress(&mut self) {
        if self.drew {
            eprintln!();
            self.drew = false;
        }
    }
}

#[crate::machine]
impl Conductor {
    #[guard(sender == cx.address())]
    fn on_start(&mut self, cx: &mut Context<Self>, _: Start) {
        self.begin(cx);
    }

    fn on_returned(&mut self, cx: &mut Context<Self>, r: Returned) {
        let from = cx.sender();
        self.stage_ended(cx, from, r.value);
    }

    fn on_failure(&mut self, cx: &mut Context<Self>, f: Failure) {
        self.failed(cx, f.reason);
    }

    fn on_stats_of_stage(&mut self, cx: &mut Context<Self>, s: StageStatistics) {
        let from = cx.sender();
        if let Some(r) = self
            .stages
            .iter_mut()
            .find(|r| r.address == from && !r.ended)
        {
            r.stats = s;
        }
    }

    fn on_stats(&mut self, _cx: &mut Context<Self>, _: PipelineStats) -> PipelineReport {
        self.report()
    }

    fn on_drain(&mut self, cx: &mut Context<Self>, _: DrainPipeline) {
        self.drain(cx);
    }

    fn on_stop(&mut self, cx: &mut Context<Self>, _: Stop) {
        self.drain(cx);
    }

    #[guard(sender == cx.address())]
    fn on_tick(&mut self, cx: &mut Context<Self>, _: Tick) {
        self.tick(cx);
    }

    #[guard(sender == cx.address())]
    fn on_drain_deadline(&mut self, cx: &mut Context<Self>, _: DrainDeadline) {
        if self.stages.iter().any(|s| !s.ended) {
            tracing::warn!(target: "strata::pipeline", pipeline = %cx.address(), "drain time-out: halting the stages");
            self.outcome = Some(Outcome::TimedOut);
            self.halt_all(cx);
        }
    }
}
