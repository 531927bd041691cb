//! A word count over a file, with the producers and the transport in worker processes:
//! two producers read the file, each its own share of the lines (line n goes to producer
//! n mod 2, so no line is read into the pipeline twice); two worker processes split the
//! lines into words and count them per line; one backend thread adds up the counts.
//!
//! `cargo run --release --example pipeline_wordcount -- FILE [TOP]` prints the TOP (10)
//! most frequent words with their counts, the total, and the pipeline's report.
//!
//! The worker processes are this program started with `worker` (it then runs a
//! `StageRunner` that registers the `FileLines` and `Words` types: processes run
//! registered entry points). Moving a stage to threads is one argument: replace
//! `Workers::processes(2, me.clone())` by `Workers::threads(2)`.

use std::collections::HashMap;
use std::io::BufRead;
use std::process::ExitCode;
use std::sync::{Arc, Mutex};

use strata::pipeline::{
    Backend, Emit, Frontend, Pipeline, StageRunner, Transport, WorkerInfo, Workers,
};
use strata::prelude::*;
use strata::process::Process;

/// The lines of a file, each worker its share (line n to worker n mod workers).
#[derive(Debug, Serialize, Deserialize, Message)]
struct FileLines {
    path: String,
    #[serde(skip)]
    lines: Option<std::io::Lines<std::io::BufReader<std::fs::File>>>,
    #[serde(skip)]
    number: u64,
    #[serde(skip)]
    share: Option<WorkerInfo>,
}

/// Each worker gets a copy of the configuration (the path); its state is made by
/// `setup`, so it need not be `Clone`.
impl Clone for FileLines {
    fn clone(&self) -> Self {
        FileLines {
            path: self.path.clone(),
            lines: None,
            number: 0,
            share: None,
        }
    }
}

impl Frontend for FileLines {
    type Item = String;
    fn setup(&mut self, w: &WorkerInfo) -> Result<(), Faulted> {
        let file = std::fs::File::open(&self.path)
            .map_err(|e| Faulted::new(format!("cannot open {}: {e}", self.path)))?;
        self.lines = Some(std::io::BufReader::new(file).lines());
        self.share = Some(w.clone());
        Ok(())
    }
    fn produce(&mut self) -> Result<Option<String>, Faulted> {
        let (Some(lines), Some(share)) = (self.lines.as_mut(), self.share.as_ref()) else {
            return Ok(None);
        };
        // A replacement worker resumes after the lines its predecessor produced.
        let skip = share.resume_after;
        loop {
            let Some(line) = lines.next() else {
                return Ok(None);
            };
            let n = self.number;
            self.number += 1;
            if !share.owns(n) {
                continue;
            }
            if (n / share.workers as u64) < skip {
                continue;
            }
            return line
                .map(Some)
                .map_err(|e| Faulted::new(format!("line {}: {e}", n + 1)));
        }
    }
}

/// A word and how often it appears in one line.
#[derive(Debug, Clone, Serialize, Deserialize, Message)]
struct WordCount {
    word: String,
    count: u64,
}

/// Splits a line into lower-case words and counts them.
#[derive(Debug, Clone, Default, Serialize, Deserialize, Message)]
struct Words;

impl Transport for Words {
    type In = String;
    type Out = WordCount;
    fn transport(&mut self, line: &String, out: &mut Emit<WordCount>) -> Result<(), Faulted> {
        let mut counts: HashMap<String, u64> = HashMap::new();
        for word in line
            .split(|c: char| !c.is_alphanumeric() && c != '\'')
            .filter(|w| !w.is_empty())
        {
            *counts.entry(word.to_lowercase()).or_default() += 1;
        }
        for (word, count) in counts {
            out.send(WordCount { word, count });
        }
        Ok(())
    }
}

/// Adds the counts up (in this process: its table is shared with `main`).
#[derive(Debug, Clone, Default, Serialize, Deserialize, Message)]
struct Tally {
    #[serde(skip)]
    table: Arc<Mutex<HashMap<String, u64>>>,
}

impl Backend for Tally {
    type In = WordCount;
    fn process(&mut self, wc: &WordCount) -> Result<(), Faulted> {
        *self
            .table
            .lock()
            .unwrap()
            .entry(wc.word.clone())
            .or_default() += wc.count;
        Ok(())
    }
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if args.first().map(String::as_str) == Some("worker") {
        return strata::main(Threaded(
            StageRunner::new()
                .frontend::<FileLines>()
                .transport::<Words>(),
        ));
    }
    let Some(path) = args.first().cloned() else {
        eprintln!("usage: pipeline_wordcount FILE [TOP]");
        return ExitCode::from(2);
    };
    let top: usize = match args.get(1).map(|t| t.parse()) {
        None => 10,
        Some(Ok(n)) => n,
        Some(Err(_)) => {
            eprintln!(
                "pipeline_wordcount: TOP must be a number, not {:?}",
                args[1]
            );
            return ExitCode::from(2);
        }
    };
    let me = match std::env::current_exe() {
        Ok(p) => Process::of(p.to_string_lossy().into_owned()).arg("worker"),
        Err(e) => {
            eprintln!("cannot find this program: {e}");
            return ExitCode::FAILURE;
        }
    };
    let lines = FileLines {
        path,
        lines: None,
        number: 0,
        share: None,
    };
    let tally = Tally::default();
    let pipeline = Pipeline::frontend(lines, Workers::processes(2, me.clone()))
        .transport(Words, Workers::processes(2, me).queue(256))
        .backend(tally.clone(), Workers::threads(1).queue(1024));
    let report = match pipeline.run() {
        Ok(r) => r,
        Err(e) => {
            eprintln!("{e}");
            return ExitCode::FAILURE;
        }
    };
    let table = tally.table.lock().unwrap();
    let mut words: Vec<(&String, &u64)> = table.iter().collect();
    words.sort_by(|a, b| b.1.cmp(a.1).then(a.0.cmp(b.0)));
    for (word, count) in words.iter().take(top) {
        println!("{count:>8} {word}");
    }
    let total: u64 = table.values().sum();
    println!("{total} words, {} different", table.len());
    print!("{report}");
    if report.is_complete() {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    }
}
