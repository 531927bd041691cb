//! Step 3 of the teaching path: one long-lived worker thread, asked through GetResponse.
//!
//! `cargo run --release --example server_3 [ADDRESS]` (default 127.0.0.1:5050), then
//! `curl -s 'http://127.0.0.1:5050/Xy?x=2&y=2'`.
//!
//! The worker is a machine on a thread of its own, created once. For each request the
//! service creates a `GetResponse` (a tiny object that asks and returns the answer) and
//! replies from its `on_return` callback. One worker means one table at a time: the next
//! step puts a pool of them behind the same address.

use std::process::ExitCode;
use std::time::Duration;

use strata::http::{Api, HttpServer};
use strata::net::Listening;
use strata::prelude::*;
use strata_texture::{Worker, Xy};

struct Server {
    address: std::net::SocketAddr,
    worker: Address,
}

#[strata::machine]
impl Server {
    fn start(&mut self, cx: &mut Context<Self>, _: Start) {
        self.worker = cx.create(Threaded(Worker::default()));
        cx.create(HttpServer::new(self.address, Api::new().message::<Xy>()));
    }

    fn listening(&mut self, _cx: &mut Context<Self>, m: Listening) {
        println!("server_3 listening on http://{}/Xy?x=2&y=2", m.address);
    }

    fn not_listening(&mut self, cx: &mut Context<Self>, m: NotListening) {
        cx.complete(m);
    }

    fn xy(&mut self, cx: &mut Context<Self>, m: Xy) {
        let ask = cx.create(GetResponse::new(m, self.worker).timeout(Duration::from_secs(10)));
        cx.on_return(
            ask,
            |_: &mut Server, cx: &mut Context<Server>, answer: AnyMessage| {
                cx.send_any(cx.sender(), answer);
            },
        );
    }
}

fn main() -> ExitCode {
    strata_texture::serve("server_3", |address| Server {
        address,
        worker: Address::NULL,
    })
}
