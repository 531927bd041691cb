//! The texture service of strata's examples and of `strata demo`: asked for `Xy { x, y }`
//! it answers an x-by-y table of random floats in [0, 1).
//!
//! One place for what the examples, the `strata` command and the tests share: the message
//! ([`Xy`]) and the answer ([`Table`]), the work ([`texture`]) and the [`Worker`] machine
//! that does it, the check that an answer has the asked-for shape ([`check_table`], as the
//! load client's [`table_check`] validation), and the small helpers of the server examples
//! ([`serve`], [`address`], [`seed`]). It is not part of the library: the library knows
//! nothing of textures.

mod check;

use serde::{Deserialize, Serialize};
use strata::load::Validation;
use strata::{Context, Message};

pub use check::check_table;

/// The name of the [`table_check`] validation (`strata load --validate table`).
pub const TABLE_CHECK: &str = "table";

/// The load client's validation of texture answers: the body is a JSON table of numbers
/// with as many rows as the request's `y` and as many columns as its `x` (see
/// [`check_table`]); named [`TABLE_CHECK`].
pub fn table_check() -> Validation {
    Validation::new(TABLE_CHECK, check_table)
}

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
