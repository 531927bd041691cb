//! Periodic jobs: run something every N seconds, on an executor of your choice.
//!
//! A [`Periodic`] is an object (a machine) holding [`PeriodicJob`]s. When a job is due it
//! submits one run to its executor — its own executor of threads, or any
//! [`Executor`](super::Executor) you give it ([`Periodic::on`],
//! [`Periodic::with_executor`]): threads, async workers, or worker processes for
//! [`every_job`](PeriodicJob::every_job) jobs — and when the run is done it places the
//! next one by the job's [`Schedule`]:
//!
//! * **strategies** ([`Strategy`]): from the last start, from the last finish, or aligned
//!   to the wall clock; optional **jitter** (each run after the first delayed by up to a
//!   share of the spacing); an optional **immediate** first run;
//! * a job **never overlaps itself**: the next run is placed only once the last is done;
//! * a run that returns [`NeverAgain`] **retires** the job;
//! * a run that fails (a fault, a panic, the executor refusing it) goes to the **failure
//!   handler** ([`Periodic::on_failure`]) and is logged; the schedule goes on (a refused
//!   run is retried within a second);
//! * jobs are **added and removed while it runs** ([`AddPeriodic`], [`RemovePeriodic`],
//!   or the [`PeriodicHandle`]);
//! * **per-job statistics** ([`JobStatistics`]: runs, successes, failures, time running
//!   and time waiting past the due time), by message ([`PeriodicStats`]) or the handle.
//!
//! ```
//! use std::sync::atomic::{AtomicU32, Ordering};
//! use std::sync::Arc;
//! use std::time::Duration;
//! use strata::executor::periodic::{NeverAgain, Periodic, PeriodicJob};
//!
//! let runs = Arc::new(AtomicU32::new(0));
//! let counted = runs.clone();
//! let job = PeriodicJob::every(Duration::from_millis(5), "three times", move || {
//!     if counted.fetch_add(1, Ordering::SeqCst) == 2 { Some(NeverAgain) } else { None }
//! })
//! .run_immediately();
//! let periodic = Periodic::new().job(job).start();
//! while periodic.statistics().unwrap()[0].active {
//!     std::thread::sleep(Duration::from_millis(5));
//! }
//! let stats = periodic.stop().unwrap();
//! assert_eq!((stats[0].runs, runs.load(Ordering::SeqCst)), (3, 3));
//! ```
//!
//! One timer serves all the jobs of a `Periodic` (set for the earliest due); the schedule
//! arithmetic is pure (`schedule.rs`), the machine in `periodic.rs`, its messages in
//! `messages.rs`, the handle in `handle.rs`, the statistics in `stats.rs`.

mod handle;
mod messages;
#[allow(clippy::module_inception)]
mod periodic;
mod schedule;
mod stats;

pub use handle::PeriodicHandle;
pub use messages::{AddPeriodic, Failure, NeverAgain, PeriodicStats, RemovePeriodic};
pub use periodic::{Periodic, PeriodicJob};
pub use schedule::{Schedule, Strategy};
pub use stats::JobStatistics;
