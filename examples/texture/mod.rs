//! The work of the texture service, shared by the examples: an x-by-y table of random
//! floats in [0, 1).

// Each example uses a different part of this module.
#![allow(dead_code)]

use serde::{Deserialize, Serialize};
use strata::{Context, Message};

/// Ask for an x-by-y table: `GET /Xy?x=2&y=2`.
#[derive(Debug, Clone, Copy, Serialize, Deserialize, Message)]
pub struct Xy {
    /// Columns.
    pub x: usize,
    /// Rows.
    pub y: usize,
}

/// What the service answers.
pub type Table = Vec<Vec<f64>>;

/// Builds the table (xorshift random numbers; each call moves `seed` on).
pub fn texture(x: usize, y: usize, seed: &mut u64) -> Table {
    (0..y)
        .map(|_| {
            (0..x)
                .map(|_| {
                    *seed ^= *seed << 13;
                    *seed ^= *seed >> 7;
                    *seed ^= *seed << 17;
                    (*seed >> 11) as f64 / (1u64 << 53) as f64
                })
                .collect()
        })
        .collect()
}

/// The worker of every step that has one: a machine that answers `Xy` with a table.
pub struct Worker {
    seed: u64,
}

impl Default for Worker {
    fn default() -> Self {
        Worker { seed: seed() }
    }
}

#[strata::machine]
impl Worker {
    fn xy(&mut self, _cx: &mut Context<Self>, m: Xy) -> Table {
        texture(m.x, m.y, &mut self.seed)
    }
}

/// A seed that differs from run to run.
pub fn seed() -> u64 {
    let t = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos() as u64)
        .unwrap_or(1);
    (t ^ u64::from(std::process::id())).max(1)
}

/// Runs a server example: `make` builds its top object from the listening address (the
/// first argument that is not an option, or 127.0.0.1:5050); a bad address exits 2.
pub fn serve<O: strata::Object>(
    name: &str,
    make: impl FnOnce(std::net::SocketAddr) -> O,
) -> std::process::ExitCode {
    match address() {
        Ok(address) => strata::main(make(address)),
        Err(e) => {
            eprintln!("{name}: {e}");
            std::process::ExitCode::from(2)
        }
    }
}

/// The listening address: the first argument that is not an option, or 127.0.0.1:5050.
pub fn address() -> Result<std::net::SocketAddr, String> {
    let arg = std::env::args().skip(1).find(|a| !a.starts_with("--"));
    let text = arg.unwrap_or_else(|| "127.0.0.1:5050".to_string());
    text.parse()
        .map_err(|_| format!("`{text}` is not a socket address (like 127.0.0.1:5050)"))
}
