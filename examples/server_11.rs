//! Step 11 of the teaching path: workers coming and going under load, every request
//! answered.
//!
//! `cargo run --release --example server_11 [ADDRESS]` (default 127.0.0.1:5050), then load
//! it: `cargo run --release -- load 'http://127.0.0.1:5050/Xy?x={1..8}&y={1..8}' -d 10s`.
//!
//! What changed from `server_10`: the server churns its own workers. Every second it
//! starts a `worker_10` process (`Process::of("worker_10")`, which publishes itself as
//! `texture:worker:<pid>`) and, past four, stops the oldest. The spool learns of each
//! only through the directory, exactly as of workers started in other terminals: each
//! new one joins when its name is `Available`, each stopped one leaves on `Dropped`, and a
//! request it held is answered with a fault. The load client reports every request
//! answered (200, or 503 while the spool sheds load).

use std::collections::VecDeque;
use std::process::ExitCode;
use std::time::Duration;

use strata::directory::{Feed, Scope};
use strata::http::{Api, HttpServer};
use strata::net::Listening;
use strata::prelude::*;
use strata::process::Process;
use strata::spool::{Spool, SpoolStats};
use strata_texture::Xy;

/// How many workers the server keeps once it has churned up.
const WORKERS: usize = 4;

struct Server {
    address: std::net::SocketAddr,
    spool: Address,
    workers: VecDeque<Address>,
}

#[strata::machine]
impl Server {
    #[guard(sender == cx.address())]
    fn start(&mut self, cx: &mut Context<Self>, _: Start) {
        let spool = Spool::of(Process::of("worker"))
            .workers(0)
            .queue_size(Some(64))
            .responsiveness(Duration::from_millis(100))
            .busy_pass_rate(0.2);
        self.spool = cx.create(spool);
        cx.create(Feed::new("texture:worker:.*", Scope::Host, self.spool).expect("a pattern"));
        let api = Api::new().message::<Xy>().message::<SpoolStats>();
        cx.create(HttpServer::new(self.address, api));
        cx.start_repeating(T1, Duration::from_secs(1));
        self.churn(cx);
    }

    fn tick(&mut self, cx: &mut Context<Self>, _: T1) {
        self.churn(cx);
    }

    fn listening(&mut self, _cx: &mut Context<Self>, m: Listening) {
        println!("server_11 listening on http://{}/Xy?x=2&y=2", m.address);
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

    fn returned(&mut self, _cx: &mut Context<Self>, _: Returned) {}
}

impl Server {
    /// One more worker; the oldest stopped past [`WORKERS`].
    fn churn(&mut self, cx: &mut Context<Self>) {
        self.workers.push_back(cx.create(Process::of("worker_10")));
        if self.workers.len() > WORKERS {
            if let Some(oldest) = self.workers.pop_front() {
                cx.stop(oldest);
            }
        }
    }
}

fn main() -> ExitCode {
    strata_texture::serve("server_11", |address| Server {
        address,
        spool: Address::NULL,
        workers: VecDeque::new(),
    })
}
