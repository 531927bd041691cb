//! Step 7 of the teaching path: one long-lived worker process, asked through GetResponse.
//!
//! `cargo build --release --examples && cargo run --release --example server_7 [ADDRESS]` (default 127.0.0.1:5050), then
//! `curl -s 'http://127.0.0.1:5050/Xy?x=2&y=2'`.
//!
//! The worker is now the `worker` program: a child process created once and linked back to
//! this one (a loadable library). Requests reach its top machine through the `Process`
//! object, and answers come straight back. The only change from step 3 is the object
//! created for the worker.

use std::process::ExitCode;
use std::time::Duration;

use strata::http::{Api, HttpServer};
use strata::net::Listening;
use strata::prelude::*;
use strata::process::Process;
use strata_texture::Xy;

struct Server {
    address: std::net::SocketAddr,
    worker: Address,
}

#[strata::machine]
impl Server {
    fn start(&mut self, cx: &mut Context<Self>, _: Start) {
        self.worker = cx.create(Process::of("worker"));
        cx.create(HttpServer::new(self.address, Api::new().message::<Xy>()));
    }

    fn listening(&mut self, _cx: &mut Context<Self>, m: Listening) {
        println!("server_7 listening on http://{}/Xy?x=2&y=2", m.address);
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
    strata_texture::serve("server_7", |address| Server {
        address,
        worker: Address::NULL,
    })
}
