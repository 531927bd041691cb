//! The texture worker as a loadable library: a long-lived child process.
//!
//! Its top object is the texture `Worker`, a machine that answers `Xy`. Run by a parent's
//! `Process::of("worker")`, it is connected back to the parent over a private socket, and
//! the parent sends it requests exactly as it would to an object of its own (steps 7 and 8
//! of the teaching path). Run on its own it simply waits until Ctrl-C.

use std::process::ExitCode;

use strata_texture::Worker;

fn main() -> ExitCode {
    strata::main(Worker::default())
}
