//! A first strata program: the three kinds of object, a request and a callback.
//!
//! Run it with `cargo run --example hello` (add `-- --log=debug` to watch objects being
//! created and destroyed).
//!
//! * `Texture` is a machine: one handler per message type, on the shared runtime.
//! * `Front` is a machine that answers each request by creating a function object (its own
//!   OS thread) and replying from an `on_return` callback, with the saved context.
//! * `main` is a function object too: `strata::main` runs it as the whole program, and its
//!   return value becomes the exit status.

use std::time::Duration;

use strata::prelude::*;

/// Ask for an x-by-y table.
#[derive(Debug, Clone, Copy, Serialize, Deserialize, Message)]
struct Xy {
    x: usize,
    y: usize,
}

type Table = Vec<Vec<f64>>;

/// Computes a table on a thread of its own, as a function object.
fn table(m: Xy) -> Thread<impl FnOnce(&mut ThreadContext) -> Table + Send> {
    Thread::new(move |_cx: &mut ThreadContext| {
        (0..m.y)
            .map(|r| (0..m.x).map(|c| (r * m.x + c) as f64 / 10.0).collect())
            .collect::<Table>()
    })
}

struct Front;

#[strata::machine]
impl Front {
    fn xy(&mut self, cx: &mut Context<Self>, m: Xy) {
        let worker = cx.create(table(m));
        // The callback runs when the worker returns; `reply` still goes to whoever sent Xy.
        cx.on_return(
            worker,
            |_front: &mut Front, cx: &mut Context<Front>, value: AnyMessage| match value
                .downcast::<Table>()
            {
                Ok(t) => cx.reply(t),
                Err(fault) => cx.send_any(cx.sender(), fault),
            },
        );
    }
}

fn main() -> std::process::ExitCode {
    strata::main(Thread::new(|cx: &mut ThreadContext| {
        let front = cx.create(Front);
        let answer = cx.ask_timeout(front, Xy { x: 2, y: 2 }, Duration::from_secs(5));
        match answer.downcast::<Table>() {
            Ok(t) => {
                println!("{}", serde_json::to_string(&t).expect("tables encode"));
                0
            }
            Err(other) => {
                eprintln!("no table: {other:?}");
                1
            }
        }
    }))
}
