//! Sizing: how many workers to start, and which idle ones to let go.
//!
//! An executor keeps between `min_workers` and `max_workers`. It starts a worker when a
//! job finds none idle (admission's `Grow`), and after a worker ended it starts enough to
//! cover the jobs waiting and the minimum ([`to_start`]). A worker beyond the minimum
//! that stays idle for `idle_timeout` is stopped ([`to_trim`]); since jobs go to the
//! worker idle *shortest*, a light load keeps a few workers warm and lets the others age
//! out (futurist's pool never shrank). Pure: no clock is read here.

use std::time::{Duration, Instant};

/// How many workers to start now so that the jobs waiting, and the minimum, are covered
/// (never beyond the maximum).
pub(crate) fn to_start(
    min: usize,
    max: usize,
    workers: usize,
    busy: usize,
    queued: usize,
) -> usize {
    let wanted = min.max((busy + queued).min(max));
    wanted.saturating_sub(workers)
}

/// Which idle workers to stop at `now`: those idle at least `timeout`, longest idle
/// first, while more than `min` workers remain. Also when to look again (the next idle
/// worker's expiry), if any idle worker beyond the minimum is left.
///
/// `idle` lists the idle workers, longest idle first, with when each became idle.
pub(crate) fn to_trim<K: Copy>(
    min: usize,
    workers: usize,
    timeout: Duration,
    now: Instant,
    idle: impl IntoIterator<Item = (K, Instant)>,
) -> (Vec<K>, Option<Instant>) {
    let mut left = workers;
    let mut trim = Vec::new();
    for (worker, since) in idle {
        if left <= min {
            return (trim, None);
        }
        let expires = since + timeout;
        if expires > now {
            return (trim, Some(expires));
        }
        trim.push(worker);
        left -= 1;
    }
    (trim, None)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn enough_workers_start_for_what_waits_and_the_minimum() {
        assert_eq!(to_start(0, 8, 0, 0, 0), 0);
        assert_eq!(to_start(2, 8, 0, 0, 0), 2);
        assert_eq!(to_start(0, 8, 3, 3, 2), 2);
        assert_eq!(to_start(0, 4, 3, 3, 10), 1, "never beyond the maximum");
        assert_eq!(to_start(1, 4, 4, 1, 0), 0);
    }

    #[test]
    fn idle_workers_go_oldest_first_after_the_timeout_down_to_the_minimum() {
        let t0 = Instant::now();
        let s = Duration::from_secs(1);
        let idle = [(1, t0), (2, t0 + s), (3, t0 + 3 * s)];
        // At t0 + 2.5 s: 1 and 2 have been idle over a second; 3 expires at t0 + 4 s.
        let now = t0 + s * 5 / 2;
        assert_eq!(to_trim(0, 5, s, now, idle), (vec![1, 2], Some(t0 + 4 * s)));
        // The minimum holds: of 3 workers with a minimum of 2, one goes.
        assert_eq!(to_trim(2, 3, s, now, idle), (vec![1], None));
        assert_eq!(to_trim(3, 3, s, now, idle), (vec![], None));
        // Nobody expired yet: look again at the first expiry.
        assert_eq!(to_trim(0, 3, s, t0, idle), (vec![], Some(t0 + s)));
        assert_eq!(to_trim::<u8>(0, 3, s, t0, []), (vec![], None));
    }
}
