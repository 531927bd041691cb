//! The texture service of strata's examples and of `strata demo`: asked for `Xy { x, y }`
//! it answers an x-by-y table of random floats in [0, 1).
//!
//! One place for what the examples, the `strata` command and the tests share: the message
//! ([`Xy`], whose tables are bounded by [`MAX_CELLS`]) and the answer ([`Table`]), the work
//! ([`texture`]) and the [`Worker`] machine
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

/// The most cells (x·y) a table asked for may have: one million.
///
/// Why a million: it is 1000 × 1000, the largest table `strata demo --max-size` asks
/// for. Such a table is 8 MB of floats while it is built and about 20 MB of JSON (a random
/// float in [0, 1) takes some 19 characters), within the HTTP front's default
/// `max_reply` (32 MiB). Without a bound, one request (`GET /Xy?x=100000&y=100000`:
/// 10¹⁰ cells, 80 GB) takes the process down.
pub const MAX_CELLS: usize = 1_000_000;

/// Ask for an x-by-y table: `GET /Xy?x=2&y=2`.
///
/// Decoding refuses a table of more than [`MAX_CELLS`] cells, wherever the `Xy` comes
/// from (a query string or JSON body at the HTTP front, which answers `400`; the
/// `texture` program's arguments, which exit 2; a link), with a reason naming the bound.
/// An `Xy` built in code is not checked.
#[derive(Debug, Clone, Copy, Serialize, Deserialize, Message)]
#[serde(try_from = "Asked")]
pub struct Xy {
    /// Columns.
    pub x: usize,
    /// Rows.
    pub y: usize,
}

/// An [`Xy`] as it arrives, before its size is checked.
#[derive(Deserialize)]
struct Asked {
    x: usize,
    y: usize,
}

impl TryFrom<Asked> for Xy {
    type Error = String;

    fn try_from(Asked { x, y }: Asked) -> Result<Xy, String> {
        match x.checked_mul(y) {
            Some(cells) if cells <= MAX_CELLS => Ok(Xy { x, y }),
            _ => Err(format!(
                "a table of x={x} by y={y} has more than {MAX_CELLS} cells, the bound \
                 (strata_texture::MAX_CELLS)"
            )),
        }
    }
}

/// What the service answers.
pub type Table = Vec<Vec<f64>>;

/// Builds the table (xorshift random numbers; each call moves `seed` on). Every cell is
/// allocated: callers pass sizes from a decoded [`Xy`], which [`MAX_CELLS`] bounds.
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

/// A worker found by name: publishes itself as `name` at host scope when it starts (the
/// `worker_10` example's, and `strata demo --workers named`'s), then answers `Xy` like
/// [`Worker`]. A name it cannot have ends it with the `NotPublished` fault.
pub struct NamedWorker {
    name: String,
    seed: u64,
}

impl NamedWorker {
    /// A worker to publish as `name`.
    pub fn new(name: impl Into<String>) -> NamedWorker {
        NamedWorker {
            name: name.into(),
            seed: seed(),
        }
    }
}

#[strata::machine]
impl NamedWorker {
    #[guard(sender == cx.address())]
    fn start(&mut self, cx: &mut Context<Self>, _: strata::standard::Start) {
        if let Err(e) = cx.publish(&self.name, strata::directory::Scope::Host) {
            cx.abort(strata::standard::NotPublished::new(e.to_string()));
        }
    }

    fn published(&mut self, _cx: &mut Context<Self>, _: strata::directory::Published) {}

    fn not_published(&mut self, cx: &mut Context<Self>, f: strata::standard::NotPublished) {
        cx.abort(f);
    }

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

/// The scope the name-finding examples (`server_10`, `worker_10`) use: `--lan` on the
/// command line makes it the LAN (workers on other hosts, found through the LAN
/// directory named by `STRATA_LAN_DIRECTORY`), else the host.
pub fn example_scope() -> strata::directory::Scope {
    if std::env::args().any(|a| a == "--lan") {
        strata::directory::Scope::Lan
    } else {
        strata::directory::Scope::Host
    }
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn absurd_tables_are_refused_when_decoded() {
        let decode = |json: &str| serde_json::from_str::<Xy>(json).map_err(|e| e.to_string());
        let xy = decode(r#"{"x": 1000, "y": 1000}"#).unwrap();
        assert_eq!((xy.x, xy.y), (1000, 1000));
        for json in [
            r#"{"x": 100000, "y": 100000}"#,
            r#"{"x": 1000001, "y": 1}"#,
            // x·y overflows: refused too, not wrapped around.
            r#"{"x": 4294967297, "y": 4294967297}"#,
        ] {
            let e = decode(json).unwrap_err();
            assert!(e.contains("1000000 cells, the bound"), "{json}: {e}");
        }
        assert!(decode(r#"{"x": 0, "y": 100000000}"#).is_ok());
    }
}
