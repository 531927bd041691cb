//! Wall-clock times as the home writes them: UTC, ISO 8601 with milliseconds
//! (`2026-12-01T18:03:13.123Z`), which sort as text; and spans like `1h`, `90s`, `2d12h`.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// Milliseconds since the Unix epoch, now.
pub fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
}

/// `ms` since the epoch as `YYYY-MM-DDTHH:MM:SS.mmmZ`.
pub fn iso(ms: u64) -> String {
    let secs = ms / 1000;
    let (days, rest) = (secs / 86_400, secs % 86_400);
    let (y, m, d) = civil_from_days(days as i64);
    format!(
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}.{:03}Z",
        rest / 3600,
        rest / 60 % 60,
        rest % 60,
        ms % 1000
    )
}

/// Parses `YYYY-MM-DD`, `YYYY-MM-DDTHH:MM[:SS[.fff]]`, with an optional `Z` (always UTC),
/// into ms since the epoch.
pub fn parse_iso(text: &str) -> Result<u64, String> {
    let bad = || {
        format!("`{text}` is not a UTC time like 2026-12-01T18:03:13Z (or 2026-12-01, 18:03 UTC)")
    };
    let t = text.trim().trim_end_matches('Z');
    let (date, clock) = t.split_once(['T', ' ']).unwrap_or((t, "00:00:00"));
    let d: Vec<&str> = date.split('-').collect();
    if d.len() != 3 {
        return Err(bad());
    }
    let num = |s: &str| s.parse::<u64>().map_err(|_| bad());
    let (y, mo, da) = (num(d[0])?, num(d[1])?, num(d[2])?);
    if !(1..=12).contains(&mo) || !(1..=31).contains(&da) || y < 1970 {
        return Err(bad());
    }
    let c: Vec<&str> = clock.split(':').collect();
    if c.len() < 2 || c.len() > 3 {
        return Err(bad());
    }
    let (h, mi) = (num(c[0])?, num(c[1])?);
    let (s, frac) = match c.get(2) {
        Some(sec) => match sec.split_once('.') {
            Some((s, f)) => {
                let digits: String = f.chars().chain("000".chars()).take(3).collect();
                (num(s)?, num(&digits)?)
            }
            None => (num(sec)?, 0),
        },
        None => (0, 0),
    };
    if h > 23 || mi > 59 || s > 60 {
        return Err(bad());
    }
    let days = days_from_civil(y as i64, mo as u32, da as u32) as u64;
    Ok(((days * 86_400 + h * 3600 + mi * 60 + s) * 1000) + frac)
}

/// Parses a span: numbers each followed by `d`, `h`, `m`, `s` or `ms` (`1h`, `2d12h`, `90s`).
pub fn parse_span(text: &str) -> Result<Duration, String> {
    let bad = || format!("`{text}` is not a span like 1h, 30m, 90s or 2d12h");
    let mut total = Duration::ZERO;
    let mut digits = String::new();
    let mut chars = text.trim().chars().peekable();
    let mut any = false;
    while let Some(c) = chars.next() {
        if c.is_ascii_digit() || c == '.' {
            digits.push(c);
            continue;
        }
        let n: f64 = digits.parse().map_err(|_| bad())?;
        digits.clear();
        let unit = match c {
            'd' => 86_400.0,
            'h' => 3600.0,
            's' => 1.0,
            'm' if chars.peek() == Some(&'s') => {
                chars.next();
                0.001
            }
            'm' => 60.0,
            _ => return Err(bad()),
        };
        total += Duration::from_secs_f64(n * unit);
        any = true;
    }
    if !digits.is_empty() || !any {
        return Err(bad());
    }
    Ok(total)
}

/// A short span for people: `950ms`, `12.3s`, `4m05s`, `3h02m`, `2d04h`.
pub fn short_span(d: Duration) -> String {
    let s = d.as_secs();
    match s {
        0 => format!("{}ms", d.as_millis()),
        1..=59 => format!("{:.1}s", d.as_secs_f64()),
        60..=3599 => format!("{}m{:02}s", s / 60, s % 60),
        3600..=86_399 => format!("{}h{:02}m", s / 3600, s / 60 % 60),
        _ => format!("{}d{:02}h", s / 86_400, s / 3600 % 24),
    }
}

// Howard Hinnant's civil-from-days and days-from-civil algorithms (public domain math).
fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    (if m <= 2 { y + 1 } else { y }, m, d)
}

fn days_from_civil(y: i64, m: u32, d: u32) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y.rem_euclid(400);
    let mp = (m as i64 + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d as i64 - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn times_go_round_and_sort_as_text() {
        for ms in [0, 1_764_612_193_123, 951_782_400_000, 4_102_444_799_999] {
            assert_eq!(parse_iso(&iso(ms)).unwrap(), ms, "{}", iso(ms));
        }
        assert_eq!(iso(1_764_612_193_123), "2025-12-01T18:03:13.123Z");
        assert_eq!(parse_iso("2025-12-01").unwrap(), 1_764_547_200_000);
        assert!(iso(1_000) < iso(20_000));
        assert!(parse_iso("yesterday").unwrap_err().contains("`yesterday`"));
        assert!(parse_iso("2025-13-01").is_err());
    }

    #[test]
    fn spans_parse_and_bad_ones_are_named() {
        assert_eq!(parse_span("1h").unwrap(), Duration::from_secs(3600));
        assert_eq!(parse_span("2d12h").unwrap(), Duration::from_secs(216_000));
        assert_eq!(parse_span("250ms").unwrap(), Duration::from_millis(250));
        assert_eq!(parse_span("1m30s").unwrap(), Duration::from_secs(90));
        for bad in ["", "1", "h", "1y", "1.2.3s"] {
            assert!(parse_span(bad).is_err(), "{bad}");
        }
        assert_eq!(short_span(Duration::from_secs(245)), "4m05s");
    }
}
