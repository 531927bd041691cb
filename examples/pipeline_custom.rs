//! The seed's custom engine in strata: a frontend, a transport and a backend of our own,
//! each with setup and cleanup per worker and the user's configuration (os-m3-engine's
//! `app_config`, here the fields of each stage's value: every worker gets a copy).
//!
//! `cargo run --example pipeline_custom` prints, in some order across the workers,
//!
//! ```text
//! backend 0: setup (prefix "got")
//! transport 0: setup
//! frontend 0: setup, producing 3 greetings
//! got HELLO WORLD! (1)
//! ...
//! frontend 0: cleanup after 3
//! transport 1: cleanup after 2
//! backend 0: cleanup after 6
//! pipeline finished after 0.00s
//! ```
//!
//! then the report. Every worker sets up once and cleans up once, whatever happens.

use std::process::ExitCode;

use strata::pipeline::{
    Backend, Emit, Frontend, Pipeline, Progress, Transport, WorkerInfo, Workers,
};
use strata::prelude::*;

/// Produces `Hello world!` `times` times per worker (os-m3-engine's `produce` generator).
#[derive(Debug, Clone, Serialize, Deserialize, Message)]
struct Greetings {
    text: String,
    times: u32,
    #[serde(skip)]
    made: u32,
}

impl Frontend for Greetings {
    type Item = String;
    fn setup(&mut self, w: &WorkerInfo) -> Result<(), Faulted> {
        println!(
            "frontend {}: setup, producing {} greetings",
            w.index, self.times
        );
        Ok(())
    }
    fn produce(&mut self) -> Result<Option<String>, Faulted> {
        if self.made == self.times {
            return Ok(None);
        }
        self.made += 1;
        Ok(Some(format!("{} ({})", self.text, self.made)))
    }
    fn cleanup(&mut self, w: &WorkerInfo) {
        println!("frontend {}: cleanup after {}", w.index, self.made);
    }
}

/// Shouts each item and sends it on twice (a transport may send none, one or several).
#[derive(Debug, Clone, Default, Serialize, Deserialize, Message)]
struct Shout {
    #[serde(skip)]
    handled: u32,
}

impl Transport for Shout {
    type In = String;
    type Out = String;
    fn setup(&mut self, w: &WorkerInfo) -> Result<(), Faulted> {
        println!("transport {}: setup", w.index);
        Ok(())
    }
    fn transport(&mut self, data: &String, out: &mut Emit<String>) -> Result<(), Faulted> {
        self.handled += 1;
        out.send(data.to_uppercase());
        out.send(data.to_lowercase());
        Ok(())
    }
    fn cleanup(&mut self, w: &WorkerInfo) {
        println!("transport {}: cleanup after {}", w.index, self.handled);
    }
}

/// Prints what it gets, with the configured prefix.
#[derive(Debug, Clone, Serialize, Deserialize, Message)]
struct Print {
    prefix: String,
    #[serde(skip)]
    printed: u32,
}

impl Backend for Print {
    type In = String;
    fn setup(&mut self, w: &WorkerInfo) -> Result<(), Faulted> {
        println!("backend {}: setup (prefix {:?})", w.index, self.prefix);
        Ok(())
    }
    fn process(&mut self, data: &String) -> Result<(), Faulted> {
        self.printed += 1;
        println!("{} {data}", self.prefix);
        Ok(())
    }
    fn cleanup(&mut self, w: &WorkerInfo) {
        println!("backend {}: cleanup after {}", w.index, self.printed);
    }
}

fn main() -> ExitCode {
    let greetings = Greetings {
        text: "Hello world!".into(),
        times: 3,
        made: 0,
    };
    let print = Print {
        prefix: "got".into(),
        printed: 0,
    };
    // os-m3-engine's defaults: 1 frontend thread, 3 transport threads, 1 backend thread.
    let pipeline = Pipeline::frontend(greetings, Workers::threads(1))
        .transport(Shout::default(), Workers::threads(3))
        .backend(print, Workers::threads(1))
        .progress(Progress::Never);
    match pipeline.run() {
        Ok(report) => {
            print!("{report}");
            if report.is_complete() {
                ExitCode::SUCCESS
            } else {
                ExitCode::FAILURE
            }
        }
        Err(e) => {
            eprintln!("{e}");
            ExitCode::FAILURE
        }
    }
}
