//! The texture worker as a loadable library: a long-lived child process.
//!
//! Its top object is a machine that answers `Xy`. Run by a parent's
//! `Process::of("worker")`, it is connected back to the parent over a private socket, and
//! the parent sends it requests exactly as it would to an object of its own (steps 7 and 8
//! of the teaching path). Run on its own it simply waits until Ctrl-C.

#[path = "texture/mod.rs"]
mod texture;

use std::process::ExitCode;

use strata::prelude::*;
use texture::{Table, Xy};

struct Worker {
    seed: u64,
}

#[strata::machine]
impl Worker {
    fn xy(&mut self, _cx: &mut Context<Self>, m: Xy) -> Table {
        texture::texture(m.x, m.y, &mut self.seed)
    }
}

fn main() -> ExitCode {
    strata::main(Worker {
        seed: texture::seed(),
    })
}
