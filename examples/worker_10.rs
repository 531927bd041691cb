//! Step 10 of the teaching path: a texture worker found by name.
//!
//! `cargo run --release --example worker_10`, as many times as you like, in other
//! terminals, before or after `server_10`. Each publishes itself as
//! `texture:worker:<pid>` at host scope, so `server_10`'s spool finds every one of them
//! through the host directory; each answers `Xy` like the worker of step 8.
//!
//! What changed from `worker.rs`: the top object publishes its name when it starts (the
//! `start` handler below), and it is started on its own rather than by `Process`. With
//! `--lan` it publishes at LAN scope instead (the one line: `Scope::Host` → `Scope::Lan`),
//! for a `server_10 --lan` on another host.

use std::process::ExitCode;

use strata::directory::Published;
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
        let scope = strata_texture::example_scope(); // Scope::Host, or Scope::Lan with --lan
        cx.publish(&self.name, scope).expect("a valid name");
    }

    fn published(&mut self, _cx: &mut Context<Self>, p: Published) {
        println!("worker_10 published {} at {} scope", p.name, p.scope);
    }

    fn not_published(&mut self, cx: &mut Context<Self>, f: NotPublished) {
        eprintln!("worker_10: {}", f.reason);
        cx.complete(f);
    }

    fn xy(&mut self, _cx: &mut Context<Self>, m: Xy) -> Table {
        texture(m.x, m.y, &mut self.seed)
    }
}

fn main() -> ExitCode {
    strata::main(NamedWorker {
        name: format!("texture:worker:{}", std::process::id()),
        seed: strata_texture::seed(),
    })
}
