//! Step 5 of the teaching path: a process per request, waited for.
//!
//! `cargo build --release --examples && cargo run --release --example server_5 [ADDRESS]`,
//! then `curl -s 'http://127.0.0.1:5050/Xy?x=2&y=2'`.
//!
//! Each request gets a function object (a thread) that starts the `texture` program as a
//! child process with `--x=.. --y=..` and waits for it; the child's printed value comes
//! back as the thread's value, which the service relays. Compare step 2: the thread is
//! now a process.

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
        println!("server_5 listening on http://{}/Xy?x=2&y=2", m.address);
    }

    fn not_listening(&mut self, cx: &mut Context<Self>, m: NotListening) {
        cx.complete(m);
    }

    fn xy(&mut self, cx: &mut Context<Self>, m: Xy) {
        let client = cx.sender();
        cx.create(Thread::new(move |cx: &mut ThreadContext| {
            let child = cx.create(Process::of("texture").args(&m));
            let value = cx.wait_for(child); // blocks this thread only
            cx.send_any(client, value);
        }));
    }
}

fn main() -> ExitCode {
    strata_texture::serve("server_5", |address| Server { address })
}
