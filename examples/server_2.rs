//! Step 2 of the teaching path: a thread per request, answered from a callback.
//!
//! `cargo run --release --example server_2 [ADDRESS]` (default 127.0.0.1:5050), then
//! `curl -s 'http://127.0.0.1:5050/Xy?x=2&y=2'`.
//!
//! For each `Xy` the service creates a function object (its own OS thread) that builds the
//! table and returns it. `on_return` runs when that thread ends, with the context saved
//! when the request came in, so `reply` answers the right HTTP request even though many
//! are in flight at once.

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
        println!("server_2 listening on http://{}/Xy?x=2&y=2", m.address);
    }

    fn not_listening(&mut self, cx: &mut Context<Self>, m: NotListening) {
        cx.complete(m);
    }

    fn xy(&mut self, cx: &mut Context<Self>, m: Xy) {
        self.seed = self
            .seed
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        let mut seed = self.seed | 1;
        let worker = cx.create(Thread::new(move |_cx: &mut ThreadContext| {
            strata_texture::texture(m.x, m.y, &mut seed)
        }));
        cx.on_return(
            worker,
            |_: &mut Server, cx: &mut Context<Server>, value: AnyMessage| {
                // The saved context: `sender` is the HTTP request this table is for.
                match value.downcast::<Table>() {
                    Ok(table) => cx.reply(table),
                    Err(fault) => cx.send_any(cx.sender(), fault),
                }
            },
        );
    }
}

fn main() -> ExitCode {
    strata_texture::serve("server_2", |address| Server {
        address,
        seed: strata_texture::seed(),
    })
}
