//! Per-role rolling log files with a byte cap, and reading them back by time.
//!
//! Each line is `TIME WORKER LEVEL TEXT`, TIME in UTC ISO 8601 (so lines sort and compare
//! as text). A role's folder `roles/ROLE/logs/` holds numbered files; the newest is written
//! until it holds an eighth of the cap, then a new one is begun, and the oldest are removed
//! while all of them together exceed the cap.

use std::io::Write;
use std::path::{Path, PathBuf};

use super::time;

/// The smallest file before a new one is begun.
const SMALLEST_FILE: u64 = 8 << 10;

/// Appends lines to a role's log folder, keeping it under its cap.
#[derive(Debug)]
pub struct RollingLog {
    folder: PathBuf,
    cap: u64,
    file: Option<std::fs::File>,
    written: u64,
    next: u64,
}

impl RollingLog {
    /// The log in `folder` (made if missing), at most `cap` bytes in all.
    pub fn open(folder: &Path, cap: u64) -> std::io::Result<RollingLog> {
        std::fs::create_dir_all(folder)?;
        let last = files(folder).last().map(|(n, _)| *n).unwrap_or(0);
        Ok(RollingLog {
            folder: folder.to_path_buf(),
            cap,
            file: None,
            written: 0,
            next: last + 1,
        })
    }

    /// Changes the cap (applied at the next file).
    pub fn set_cap(&mut self, cap: u64) {
        self.cap = cap;
    }

    /// Writes one line, stamped now, for `worker` at `level`.
    pub fn line(&mut self, worker: &str, level: &str, text: &str) {
        let line = format!("{} {worker} {level} {text}\n", time::iso(time::now_ms()));
        if let Err(e) = self.write(line.as_bytes()) {
            tracing::warn!(target: "strata::home", folder = %self.folder.display(), error = %e, "cannot write a log line");
        }
    }

    fn write(&mut self, bytes: &[u8]) -> std::io::Result<()> {
        let per_file = (self.cap / 8).max(SMALLEST_FILE);
        if self.file.is_none() || self.written + bytes.len() as u64 > per_file {
            let path = self.folder.join(format!("{:08}.log", self.next));
            self.next += 1;
            self.file = Some(
                std::fs::OpenOptions::new()
                    .create(true)
                    .append(true)
                    .open(&path)?,
            );
            self.written = 0;
            self.trim();
        }
        let file = self.file.as_mut().expect("opened above");
        file.write_all(bytes)?;
        self.written += bytes.len() as u64;
        Ok(())
    }

    /// Removes the oldest files while all of them exceed the cap.
    fn trim(&self) {
        let all = files(&self.folder);
        let mut total: u64 = all.iter().map(|(_, p)| size(p)).sum();
        for (_, path) in &all[..all.len().saturating_sub(1)] {
            if total <= self.cap {
                break;
            }
            total -= size(path);
            let _ = std::fs::remove_file(path);
        }
    }
}

fn size(p: &Path) -> u64 {
    std::fs::metadata(p).map(|m| m.len()).unwrap_or(0)
}

/// The log files of a folder, oldest first.
pub fn files(folder: &Path) -> Vec<(u64, PathBuf)> {
    let mut all: Vec<(u64, PathBuf)> = std::fs::read_dir(folder)
        .into_iter()
        .flatten()
        .filter_map(|e| e.ok())
        .filter_map(|e| {
            let name = e.file_name().to_string_lossy().into_owned();
            let n = name.strip_suffix(".log")?.parse::<u64>().ok()?;
            Some((n, e.path()))
        })
        .collect();
    all.sort();
    all
}

/// The total size of a role's log files.
pub fn total_bytes(folder: &Path) -> u64 {
    files(folder).iter().map(|(_, p)| size(p)).sum()
}

/// Which lines to read back.
#[derive(Debug, Clone, Default)]
pub struct Window {
    /// From this time (ms since the epoch), inclusive.
    pub from_ms: Option<u64>,
    /// Up to this time, exclusive.
    pub to_ms: Option<u64>,
    /// At most this many lines: the first ones from `from_ms`, else the last ones.
    pub count: Option<usize>,
}

/// The lines of `folder` inside `window`, oldest first.
pub fn read(folder: &Path, window: &Window) -> Vec<String> {
    let from = window.from_ms.map(time::iso);
    let to = window.to_ms.map(time::iso);
    let mut lines = Vec::new();
    for (_, path) in files(folder) {
        let Ok(text) = std::fs::read_to_string(&path) else {
            continue;
        };
        for line in text.lines() {
            let stamp = line.split(' ').next().unwrap_or("");
            if from.as_deref().is_some_and(|f| stamp < f) {
                continue;
            }
            if to.as_deref().is_some_and(|t| stamp >= t) {
                continue;
            }
            lines.push(line.to_string());
            if window.from_ms.is_some() && window.count.is_some_and(|c| lines.len() >= c) {
                return lines;
            }
        }
    }
    if let Some(c) = window.count {
        let drop = lines.len().saturating_sub(c);
        lines.drain(..drop);
    }
    lines
}

/// The level of a line a strata program logged (tracing's `LEVEL` word), else `fallback`.
pub fn level_of<'a>(line: &str, fallback: &'a str) -> &'a str {
    for word in line.split_whitespace().take(3) {
        match word {
            "ERROR" => return "ERROR",
            "WARN" => return "WARN",
            "INFO" => return "INFO",
            "DEBUG" => return "DEBUG",
            "TRACE" => return "TRACE",
            _ => {}
        }
    }
    fallback
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn files_stay_under_the_cap_and_read_back_in_order() {
        let dir = std::env::temp_dir().join(format!("strata-logs-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        let cap = 64 << 10;
        let mut log = RollingLog::open(&dir, cap).unwrap();
        for i in 0..5000 {
            log.line("w-0", "INFO", &format!("line {i:05} {}", "x".repeat(40)));
        }
        let total = total_bytes(&dir);
        assert!(total <= cap + (cap / 8).max(SMALLEST_FILE), "{total} bytes");
        let last = read(
            &dir,
            &Window {
                count: Some(3),
                ..Default::default()
            },
        );
        assert_eq!(last.len(), 3);
        assert!(last[2].contains("line 04999"), "{}", last[2]);
        assert!(read(
            &dir,
            &Window {
                to_ms: Some(0),
                ..Default::default()
            }
        )
        .is_empty());
        assert_eq!(
            level_of("2026-01-01T00:00:00Z  WARN strata: x", "out"),
            "WARN"
        );
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
