//! Step 10 of the teaching path: a spool of workers found by name.
//!
//! `cargo run --release --example server_10 [ADDRESS]` (default 127.0.0.1:5050), then, in
//! other terminals and in any order, `cargo run --release --example worker_10` as many
//! times as you like, and `curl -s 'http://127.0.0.1:5050/Xy?x=2&y=2'`.
//! `strata network --json` shows the workers' `texture:worker:<pid>` publications.
//!
//! What changed from `server_8`: the spool starts empty (`.workers(0)`), and one line — the
//! `Feed` — subscribes to `texture:worker:.*` at host scope and turns each `Available`
//! into `JoinSpool` and each `Dropped` into `LeaveSpool`. Workers come and go as their
//! processes start and end (`kill -9` too): a request held by a worker that is gone is
//! answered with a fault, and no later request is sent to it. Finding workers by name
//! costs nothing per request: the requests go over direct links to the workers.
//!
//! Across hosts (`--lan`, with `STRATA_LAN_DIRECTORY` naming a LAN directory): the one
//! line that changes is the Feed's scope, `Scope::Host` → `Scope::Lan`
//! (`strata_texture::example_scope()` below picks it from the flag); the workers run with
//! `--lan` on other hosts. `examples/lan_hosts.sh` runs it on three namespace hosts.
//!
//! `SPOOL_RETRY_ON_LOSS=1` in the environment turns on the spool's `retry_on_loss`: a
//! request whose worker process dies before answering (`kill -9`) is given once more to
//! another worker instead of being answered with a fault (`Xy` is idempotent). Off by
//! default; `bench/run --bench reliability` runs its worker-kill rows with and without it.

use std::process::ExitCode;
use std::time::Duration;

use strata::directory::Feed;
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
            .workers(0)
            .queue_size(Some(64))
            .responsiveness(Duration::from_millis(100))
            .busy_pass_rate(0.2)
            .retry_on_loss(retry_on_loss());
        self.spool = cx.create(spool);
        let scope = strata_texture::example_scope(); // Scope::Host, or Scope::Lan with --lan
        cx.create(Feed::new("texture:worker:.*", scope, self.spool).expect("a pattern"));
        let api = Api::new().message::<Xy>().message::<SpoolStats>();
        cx.create(HttpServer::new(self.address, api));
    }

    fn listening(&mut self, _cx: &mut Context<Self>, m: Listening) {
        println!("server_10 listening on http://{}/Xy?x=2&y=2", m.address);
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
    strata_texture::serve("server_10", |address| Server {
        address,
        spool: Address::NULL,
    })
}
