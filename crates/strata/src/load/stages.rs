//! Stages of a run, as k6 has them: `30s:100,1m:100,30s:0` moves the number of clients
//! (at a constant rate, the rate) linearly to 100 over 30 seconds, holds it for a minute
//! and brings it back to nothing over 30 seconds.
//!
//! In a closed loop the [`Load`](super::Load) looks up [`value_at`] ten times a second
//! and starts or stops clients to match; at a constant rate each request's due time comes
//! from [`due_offset`], the inverse of the ramped rate's running count, so the requests
//! follow the ramp exactly. The report judges its thresholds over each stage too.

use std::time::Duration;

use serde::{Deserialize, Serialize};

/// One stage: reach `target` (clients, or requests per second) by the end of `duration`.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Stage {
    /// How long the stage lasts.
    pub duration: Duration,
    /// Where the value is at its end.
    pub target: f64,
}

impl Stage {
    /// Parses `DURATION:TARGET,...` (durations like `500ms`, `30s`, `2m`, `1h`); the error
    /// names the stage that is wrong.
    pub fn parse_list(text: &str) -> Result<Vec<Stage>, String> {
        let mut out = Vec::new();
        for (i, part) in text.split(',').enumerate() {
            let part = part.trim();
            let (d, t) = part.split_once(':').ok_or_else(|| {
                format!(
                    "stage {} `{part}` is not DURATION:TARGET (like 30s:100)",
                    i + 1
                )
            })?;
            let duration = parse_duration(d).map_err(|e| format!("stage {}: {e}", i + 1))?;
            let target: f64 = t.trim().parse().map_err(|_| {
                format!(
                    "stage {}: `{t}` is not a number of clients or a rate",
                    i + 1
                )
            })?;
            out.push(Stage { duration, target });
        }
        check(&out, true)?;
        Ok(out)
    }
}

/// `500ms`, `1.5s`, `2m`, `1h`, or a bare number of seconds.
fn parse_duration(s: &str) -> Result<Duration, String> {
    let t = s.trim();
    let split = t
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(t.len());
    let (number, unit) = t.split_at(split);
    let n: f64 = number
        .parse()
        .map_err(|_| format!("`{s}` is not a duration (like 500ms, 30s or 2m)"))?;
    let scale = match unit {
        "" | "s" => 1.0,
        "ms" => 1e-3,
        "m" => 60.0,
        "h" => 3600.0,
        other => return Err(format!("`{other}` in `{s}` is not a unit (ms, s, m, h)")),
    };
    let secs = n * scale;
    if !secs.is_finite() || secs > 7.0 * 86_400.0 {
        return Err(format!("`{s}` is longer than a week"));
    }
    Ok(Duration::from_secs_f64(secs))
}

/// Checks stages (`rate`: their targets are rates, else numbers of clients).
pub(crate) fn check(stages: &[Stage], rate: bool) -> Result<(), String> {
    for (i, s) in stages.iter().enumerate() {
        if s.duration.is_zero() {
            return Err(format!("stage {} lasts no time", i + 1));
        }
        let most = if rate { 10_000_000.0 } else { 100_000.0 };
        if !(s.target.is_finite() && (0.0..=most).contains(&s.target)) {
            return Err(format!(
                "stage {}: {} is not between 0 and {most}",
                i + 1,
                s.target
            ));
        }
        if !rate && s.target.fract() != 0.0 {
            return Err(format!(
                "stage {}: {} is not a whole number of clients",
                i + 1,
                s.target
            ));
        }
    }
    let total: Duration = stages.iter().map(|s| s.duration).sum();
    if total > Duration::from_secs(7 * 86_400) {
        return Err("the stages last more than a week".into());
    }
    if !stages.is_empty() && stages.iter().all(|s| s.target == 0.0) && !rate {
        return Err("no stage has a client".into());
    }
    Ok(())
}

/// The value at `t` into the run, ramping from `start` at 0 (the last stage's target
/// after the end).
pub(crate) fn value_at(stages: &[Stage], start: f64, t: Duration) -> f64 {
    let mut from = start;
    let mut at = Duration::ZERO;
    for s in stages {
        if t < at + s.duration {
            let f = (t - at).as_secs_f64() / s.duration.as_secs_f64();
            return from + (s.target - from) * f;
        }
        at += s.duration;
        from = s.target;
    }
    from
}

/// Seconds into the run at which request `n` (from 0) is due when the rate ramps through
/// `stages` from `start`: the moment the running count of the rate reaches `n`. `None`
/// when that is after the last stage.
pub(crate) fn due_offset(stages: &[Stage], start: f64, n: u64) -> Option<f64> {
    let mut left = n as f64;
    let mut from = start;
    let mut at = 0.0;
    for s in stages {
        let d = s.duration.as_secs_f64();
        let count = (from + s.target) / 2.0 * d;
        if left < count || (left == 0.0 && count > 0.0) {
            // count(t) = from·t + a·t²/2 with a = (target − from)/d; solved for `left` in
            // the form that stays exact when a is near zero.
            let a = (s.target - from) / d;
            let root = (from * from + 2.0 * a * left).max(0.0).sqrt();
            let t = if from + root > 0.0 {
                2.0 * left / (from + root)
            } else {
                0.0
            };
            return Some(at + t.min(d));
        }
        left -= count;
        at += d;
        from = s.target;
    }
    None
}

/// Where each stage begins and ends, in seconds into the run.
pub fn bounds(stages: &[Stage]) -> Vec<(f64, f64)> {
    let mut at = 0.0;
    stages
        .iter()
        .map(|s| {
            let b = (at, at + s.duration.as_secs_f64());
            at = b.1;
            b
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stages_parse_ramp_and_pace() {
        let s = Stage::parse_list("2s:10, 1s:10,500ms:0").unwrap();
        assert_eq!(s.len(), 3);
        assert_eq!(s[2].duration, Duration::from_millis(500));
        assert_eq!(value_at(&s, 0.0, Duration::from_secs(1)), 5.0);
        assert_eq!(value_at(&s, 0.0, Duration::from_millis(2500)), 10.0);
        assert_eq!(value_at(&s, 0.0, Duration::from_millis(3250)), 5.0);
        assert_eq!(value_at(&s, 0.0, Duration::from_secs(9)), 0.0);
        // A steady 100/s for 2 s: request n is due at n/100.
        let steady = [Stage {
            duration: Duration::from_secs(2),
            target: 100.0,
        }];
        assert!((due_offset(&steady, 100.0, 50).unwrap() - 0.5).abs() < 1e-9);
        assert_eq!(due_offset(&steady, 100.0, 200), None);
        // 0 → 100/s over 2 s makes 100 requests; half of them by t = √2.
        let ramp = [Stage {
            duration: Duration::from_secs(2),
            target: 100.0,
        }];
        let t = due_offset(&ramp, 0.0, 50).unwrap();
        assert!((t - 2f64.sqrt()).abs() < 1e-6, "{t}");
        assert_eq!(due_offset(&ramp, 0.0, 0), Some(0.0));
        let mut last = 0.0;
        for n in 0..100 {
            let t = due_offset(&ramp, 0.0, n).unwrap();
            assert!(t >= last && t <= 2.0);
            last = t;
        }
        assert_eq!(bounds(&s), vec![(0.0, 2.0), (2.0, 3.0), (3.0, 3.5)]);
        for (bad, says) in [
            ("30s", "not DURATION:TARGET"),
            ("x:1", "not a duration"),
            ("1s:y", "not a number"),
            ("0s:1", "lasts no time"),
            ("1s:-1", "not between"),
            ("3w:1", "not a unit"),
        ] {
            let e = Stage::parse_list(bad).unwrap_err();
            assert!(e.contains(says), "{bad}: {e}");
        }
        assert!(check(&s, false).is_ok());
        let half = [Stage {
            duration: Duration::from_secs(1),
            target: 2.5,
        }];
        assert!(check(&half, false).unwrap_err().contains("whole number"));
    }
}
