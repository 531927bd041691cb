//! Step 8 of the teaching path: a spool of worker processes that sheds load.
//!
//! `cargo build --release --examples && cargo run --release --example server_8 [ADDRESS]` (default 127.0.0.1:5050), then
//! `curl -s 'http://127.0.0.1:5050/Xy?x=2&y=2'`.
//!
//! One argument changed from step 4: the spool's workers are `Process::of("worker")`,
//! eight worker processes behind one address. The service forwards each request to the spool (keeping the
//! HTTP request as the sender, so the answer goes straight back). Under overload the spool
//! answers at once — `Overloaded` when its queue is full, `Busy` when answers are slower
//! than the target — and the HTTP front turns both into `503` with `Retry-After`.
//!
//! `SPOOL_RETRY_ON_LOSS=1` in the environment turns on the spool's `retry_on_loss`: a
//! request whose worker process dies before answering (`kill -9`) is given once more to
//! another worker instead of being answered with a fault (`Xy` is idempotent). Off by
//! default; `bench/run --bench reliability` runs its worker-kill rows with and without it.
//! A request given to a worker in the moment after its process died, before the spool
//! knows, comes back `Unread` from the `Process` object and is retried too.

use std::process::ExitCode;
use std::time::Duration;

use strata::http::{Api, HttpServer};
use strata::net::Listening;
use strata::prelude::*;
use strata::process::Process;
use strata::spool::{Spool, SpoolStats};
use strata_texture::Xy;

struct Server {
    address: std::net::SocketAddr,
    spool: Address,
}

#[strata::machine]
impl Server {
    fn start(&mut self, cx: &mut Context<Self>, _: Start) {
        let spool = Spool::of(Process::of("worker"))
            .workers(8)
            .queue_size(Some(64))
            .responsiveness(Duration::from_millis(100))
            .busy_pass_rate(0.2)
            .retry_on_loss(retry_on_loss());
        self.spool = cx.create(spool);
        let api = Api::new().message::<Xy>().message::<SpoolStats>();
        cx.create(HttpServer::new(self.address, api));
    }

    fn listening(&mut self, _cx: &mut Context<Self>, m: Listening) {
        println!("server_8 listening on http://{}/Xy?x=2&y=2", m.address);
    }

    fn not_listening(&mut self, cx: &mut Context<Self>, m: NotListening) {
        cx.complete(m);
    }

    fn xy(&mut self, cx: &mut Context<Self>, m: Xy) {
        cx.forward(self.spool, m);
    }

    fn stats(&mut self, cx: &mut Context<Self>, m: SpoolStats) {
        cx.forward(self.spool, m);
    }
}

/// `SPOOL_RETRY_ON_LOSS=1` (or `true`) turns on the spool's `retry_on_loss`.
fn retry_on_loss() -> bool {
    std::env::var("SPOOL_RETRY_ON_LOSS").is_ok_and(|v| v == "1" || v.eq_ignore_ascii_case("true"))
}

fn main() -> ExitCode {
    strata_texture::serve("server_8", |address| Server {
        address,
        spool: Address::NULL,
    })
}
