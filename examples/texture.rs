//! The texture service's work as a command-line program (an entry point).
//!
//! `cargo run --release --example texture -- --x=2 --y=2 | jq '.[1][1]'` prints a number.
//! `--full-output` adds the type name; `--x=abc` exits 2 naming `x`; `--help` lists the
//! arguments. The same program is what later steps start as a child process.

use std::process::ExitCode;

use strata::ThreadContext;
use strata_texture::{Table, Xy};

fn work(_cx: &mut ThreadContext, m: Xy) -> Table {
    strata_texture::texture(m.x, m.y, &mut strata_texture::seed())
}

fn main() -> ExitCode {
    strata::process::entry("texture", work)
}
