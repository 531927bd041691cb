//! Step 6 of the teaching path: a process per request, answered from a callback.
//!
//! `cargo build --release --examples && cargo run --release --example server_6 [ADDRESS]`,
//! then `curl -s 'http://127.0.0.1:5050/Xy?x=2&y=2'`.
//!
//! The same as step 2 with one argument changed: the object created per request is
//! `Process::of("texture")` instead of a thread. `on_return` still replies with the saved
//! context when the child process ends.

use std::process::ExitCode;

use strata::http::{Api, HttpServer};
use strata::net::Listening;
use strata::prelude::*;
use strata::process::Process;
use strata_texture::Xy;

struct Server {
    address: std::net::SocketAddr,
}

#[strata::machine]
impl Server {
    fn start(&mut self, cx: &mut Context<Self>, _: Start) {
        cx.create(HttpServer::new(self.address, Api::new().message::<Xy>()));
    }

    fn listening(&mut self, _cx: &mut Context<Self>, m: Listening) {
        println!("server_6 listening on http://{}/Xy?x=2&y=2", m.address);
    }

    fn not_listening(&mut self, cx: &mut Context<Self>, m: NotListening) {
        cx.complete(m);
    }

    fn xy(&mut self, cx: &mut Context<Self>, m: Xy) {
        let child = cx.create(Process::of("texture").args(&m));
        cx.on_return(
            child,
            |_: &mut Server, cx: &mut Context<Server>, value: AnyMessage| {
                cx.send_any(cx.sender(), value);
            },
        );
    }
}

fn main() -> ExitCode {
    strata_texture::serve("server_6", |address| Server { address })
}
