//! Step 9 of the teaching path: one texture worker found by name.
//!
//! `cargo run --release --example worker_9` in another terminal, before or after
//! `server_9`. It publishes itself as `texture:worker` at host scope, so `server_9` finds
//! it through the host directory, and answers `Xy` like the worker of step 8. The name is
//! unique on the host: a second `worker_9` is refused, naming the first.
//!
//! What changed from `worker.rs`: the top object publishes its name when it starts (the
//! `start` handler below), and it is started on its own rather than by `Process`.

use std::process::ExitCode;

use strata::directory::{Published, Scope};
use strata::prelude::*;
use strata::standard::NotPublished;
use strata_texture::{texture, Table, Xy};

struct NamedWorker {
    name: String,
    seed: u64,
}

#[strata::machine]
impl NamedWorker {
    #[guard(sender == cx.address())]
    fn start(&mut self, cx: &mut Context<Self>, _: Start) {
        cx.publish(&self.name, Scope::Host).expect("a valid name");
    }

    fn published(&mut self, _cx: &mut Context<Self>, p: Published) {
        println!("worker_9 published {} at {} scope", p.name, p.scope);
    }

    fn not_published(&mut self, cx: &mut Context<Self>, f: NotPublished) {
        eprintln!("worker_9: {}", f.reason);
        cx.complete(f);
    }

    fn xy(&mut self, _cx: &mut Context<Self>, m: Xy) -> Table {
        texture(m.x, m.y, &mut self.seed)
    }
}

fn main() -> ExitCode {
    strata::main(NamedWorker {
        name: "texture:worker".to_string(),
        seed: strata_texture::seed(),
    })
}
