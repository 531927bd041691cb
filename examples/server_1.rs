//! Step 1 of the teaching path: an HTTP service that answers inline.
//!
//! `cargo run --release --example server_1 [ADDRESS]` (default 127.0.0.1:5050), then
//! `curl -s 'http://127.0.0.1:5050/Xy?x=2&y=2'` prints a 2x2 table of random floats.
//!
//! The service is one machine. It creates the HTTP front; each request arrives as an `Xy`
//! message and the handler's return value is the reply, which the front sends back as JSON.

use std::process::ExitCode;

use strata::http::{Api, HttpServer};
use strata::net::Listening;
use strata::prelude::*;
use strata_texture::{Table, Xy};

struct Server {
    address: std::net::SocketAddr,
    seed: u64,
}

#[strata::machine]
impl Server {
    fn start(&mut self, cx: &mut Context<Self>, _: Start) {
        cx.create(HttpServer::new(self.address, Api::new().message::<Xy>()));
    }

    fn listening(&mut self, _cx: &mut Context<Self>, m: Listening) {
        println!("server_1 listening on http://{}/Xy?x=2&y=2", m.address);
    }

    fn not_listening(&mut self, cx: &mut Context<Self>, m: NotListening) {
        cx.complete(m);
    }

    fn xy(&mut self, _cx: &mut Context<Self>, m: Xy) -> Table {
        strata_texture::texture(m.x, m.y, &mut self.seed)
    }
}

fn main() -> ExitCode {
    strata_texture::serve("server_1", |address| Server {
        address,
        seed: strata_texture::seed(),
    })
}
