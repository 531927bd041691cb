//! The texture service's work as a command-line program (an entry point).
//!
//! `cargo run --release --example texture -- --x=2 --y=2 | jq '.[1][1]'` prints a number.
//! `--full-output` adds the type name; `--x=abc` exits 2 naming `x`; `--help` lists the
//! arguments. The same program is what later steps start as a child process.

#[path = "texture/mod.rs"]
mod texture;

use std::process::ExitCode;

use strata::ThreadContext;
use texture::{Table, Xy};

fn work(_cx: &mut ThreadContext, m: Xy) -> Table {
    texture::texture(m.x, m.y, &mut texture::seed())
}

fn main() -> ExitCode {
    strata::process::entry("texture", work)
}
