//! Step 9 of the teaching path: one worker found by name instead of started.
//!
//! `cargo run --release --example server_9 [ADDRESS]` (default 127.0.0.1:5050), then, in
//! another terminal and in either order, `cargo run --release --example worker_9`, and
//! `curl -s 'http://127.0.0.1:5050/Xy?x=2&y=2'`.
//!
//! What changed from `server_8`: no spool and no `Process`; the server subscribes to
//! `texture:worker` at host scope, keeps the address `Available` gives it, and forgets it
//! on `Dropped`. Without a worker it answers `503` (`TemporarilyUnavailable`).

use std::process::ExitCode;

use strata::directory::{Available, Dropped, Scope, Subscribed};
use strata::http::{Api, HttpServer};
use strata::net::Listening;
use strata::prelude::*;
use strata::standard::TemporarilyUnavailable;
use strata_texture::Xy;

struct Server {
    address: std::net::SocketAddr,
    worker: Option<Address>,
}

#[strata::machine]
impl Server {
    fn start(&mut self, cx: &mut Context<Self>, _: Start) {
        cx.subscribe("texture:worker", Scope::Host)
            .expect("a pattern");
        cx.create(HttpServer::new(self.address, Api::new().message::<Xy>()));
    }

    fn listening(&mut self, _cx: &mut Context<Self>, m: Listening) {
        println!("server_9 listening on http://{}/Xy?x=2&y=2", m.address);
    }

    fn not_listening(&mut self, cx: &mut Context<Self>, m: NotListening) {
        cx.complete(m);
    }

    fn subscribed(&mut self, _cx: &mut Context<Self>, _: Subscribed) {}

    fn available(&mut self, _cx: &mut Context<Self>, a: Available) {
        println!("server_9: {} available at {}", a.name, a.address);
        self.worker = Some(a.address);
    }

    fn dropped(&mut self, _cx: &mut Context<Self>, d: Dropped) {
        println!("server_9: {} dropped", d.name);
        self.worker = None;
    }

    fn xy(&mut self, cx: &mut Context<Self>, m: Xy) {
        match self.worker {
            Some(w) => cx.forward(w, m),
            None => cx.reply(TemporarilyUnavailable::new(
                "no texture:worker is published",
            )),
        }
    }
}

fn main() -> ExitCode {
    strata_texture::serve("server_9", |address| Server {
        address,
        worker: None,
    })
}
