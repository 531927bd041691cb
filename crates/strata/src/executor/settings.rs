//! An executor's parameters and their checks.

use std::time::Duration;

/// An executor parameter that is out of its sensible range.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("executor parameter `{parameter}`: {reason}")]
pub struct ExecutorError {
    /// The parameter's name.
    pub parameter: &'static str,
    /// What is wrong with its value.
    pub reason: String,
}

/// The parameters of an executor (set them with [`Executor`](super::Executor)'s builder
/// methods; they are checked when it starts).
#[derive(Debug, Clone, PartialEq)]
pub struct ExecutorSettings {
    /// Workers kept even when idle (default 0); started with the executor.
    pub min_workers: usize,
    /// Most workers at once (default: the number of CPUs this process may use). Workers
    /// are started when a job finds none idle, up to this many.
    pub max_workers: usize,
    /// How long a worker beyond `min_workers` may stay idle before it is stopped
    /// (default 10 s).
    pub idle_timeout: Duration,
    /// Jobs that may wait for a worker; `None` (default) for no limit. A job that finds
    /// the queue full is refused with [`Rejected`](super::Rejected).
    pub queue_size: Option<usize>,
    /// Refuse a job when this many are already waiting for a worker (futurist's
    /// `reject_when_reached`); `None` (default) for no such limit.
    pub reject_when_reached: Option<usize>,
}

impl Default for ExecutorSettings {
    fn default() -> Self {
        ExecutorSettings {
            min_workers: 0,
            max_workers: std::thread::available_parallelism().map_or(4, |n| n.get()),
            idle_timeout: Duration::from_secs(10),
            queue_size: None,
            reject_when_reached: None,
        }
    }
}

impl ExecutorSettings {
    /// Checks every parameter, naming the first improbable one.
    pub fn validate(&self) -> Result<(), ExecutorError> {
        let bad = |parameter, reason: String| Err(ExecutorError { parameter, reason });
        if self.max_workers == 0 || self.max_workers > 4096 {
            return bad(
                "max_workers",
                format!("{} is not between 1 and 4096", self.max_workers),
            );
        }
        if self.min_workers > self.max_workers {
            return bad(
                "min_workers",
                format!(
                    "{} is more than max_workers ({})",
                    self.min_workers, self.max_workers
                ),
            );
        }
        if self.idle_timeout < Duration::from_millis(1)
            || self.idle_timeout > Duration::from_secs(24 * 3600)
        {
            return bad(
                "idle_timeout",
                format!("{:?} is not between 1 ms and a day", self.idle_timeout),
            );
        }
        if let Some(q) = self.queue_size {
            if q > 10_000_000 {
                return bad(
                    "queue_size",
                    format!("{q} is more than 10,000,000 (use None for no limit)"),
                );
            }
        }
        if self.reject_when_reached == Some(0) {
            return bad(
                "reject_when_reached",
                "0 would refuse every job; the smallest backlog limit is 1".to_string(),
            );
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn improbable_settings_are_named() {
        assert!(ExecutorSettings::default().validate().is_ok());
        let with = |f: fn(&mut ExecutorSettings)| {
            let mut s = ExecutorSettings::default();
            f(&mut s);
            s.validate().unwrap_err().parameter
        };
        assert_eq!(with(|s| s.max_workers = 0), "max_workers");
        assert_eq!(with(|s| s.max_workers = 5000), "max_workers");
        assert_eq!(
            with(|s| {
                s.max_workers = 2;
                s.min_workers = 3
            }),
            "min_workers"
        );
        assert_eq!(with(|s| s.idle_timeout = Duration::ZERO), "idle_timeout");
        assert_eq!(with(|s| s.queue_size = Some(20_000_000)), "queue_size");
        assert_eq!(
            with(|s| s.reject_when_reached = Some(0)),
            "reject_when_reached"
        );
    }
}
