//! Fuzzes an entry point's argument parsing (`strata::process::parse_arguments`, what
//! `entry` and `entry_object` run on their command line before anything else): any list of
//! arguments must give the arguments, `--help` or the line naming what is wrong — never
//! a panic.
//!
//! Checked:
//! - an argument list that is accepted gives back the same value when that value is passed
//!   the way a parent passes it (`Process::args`, then parsed again);
//! - any value of the argument type survives that trip (generated from the input), for
//!   every kind of field `Process::args` writes as text or as JSON;
//! - `--help` is answered only when it was asked for, and every refusal names the program.
//!
//! Input: one byte picks the mode (even: the rest is arguments separated by NUL bytes; odd:
//! the rest is read as a value of the argument type).

#![no_main]

use libfuzzer_sys::arbitrary::{self, Arbitrary, Unstructured};
use libfuzzer_sys::fuzz_target;
use strata::prelude::*;
use strata::process::{parse_arguments, Invocation, Process};

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Arbitrary)]
enum Mode {
    Fast,
    Limit(u8),
    Named { label: String, weight: i16 },
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Arbitrary)]
struct Inner {
    a: i32,
    s: String,
}

/// One field of each kind. No `Option<String>`: `Process::args` writes `Some("")` and
/// `Some("null")` as `--field=` and `--field=null`, which an entry point reads as `None`
/// (documented on `Process::args`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Arbitrary, Message)]
struct Args {
    count: u64,
    offset: i64,
    label: String,
    ratio: f64,
    narrow: f32,
    on: bool,
    mark: char,
    limit: Option<u32>,
    rows: Vec<i16>,
    names: Vec<String>,
    mode: Mode,
    inner: Inner,
}

const NAME: &str = "fuzzed";

/// What a parent writes for `args`, parsed again by the entry point.
fn through_a_parent(args: &Args) -> Args {
    let written = Process::of("child").args(args).arguments().to_vec();
    match parse_arguments::<Args>(NAME, written.clone()) {
        Ok(Invocation::Run {
            args: again,
            full_output,
        }) => {
            assert!(!full_output, "{written:?}");
            again
        }
        Ok(Invocation::Help(_)) => panic!("{written:?} asked for help"),
        Err(line) => panic!("{args:?} written as {written:?} is refused: {line}"),
    }
}

/// Floats JSON cannot hold (NaN, infinities) are no values a parent can pass.
fn finite(mut args: Args) -> Args {
    if !args.ratio.is_finite() {
        args.ratio = 0.0;
    }
    if !args.narrow.is_finite() {
        args.narrow = 0.0;
    }
    args
}

fuzz_target!(|data: &[u8]| {
    let Some((&mode, rest)) = data.split_first() else {
        return;
    };
    if mode % 2 == 1 {
        let Ok(args) = Args::arbitrary(&mut Unstructured::new(rest)) else {
            return;
        };
        let args = finite(args);
        assert_eq!(through_a_parent(&args), args);
        return;
    }
    let line: Vec<String> = rest
        .split(|&b| b == 0)
        .map(|a| String::from_utf8_lossy(a).into_owned())
        .collect();
    match parse_arguments::<Args>(NAME, line.clone()) {
        Ok(Invocation::Run { args, .. }) => {
            assert!(
                args.ratio.is_finite() && args.narrow.is_finite(),
                "{args:?}"
            );
            assert_eq!(through_a_parent(&args), args, "from {line:?}");
        }
        Ok(Invocation::Help(text)) => {
            assert!(
                line.iter()
                    .any(|a| a == "--help" || a.starts_with("--help=")),
                "help without --help: {line:?}"
            );
            assert!(text.contains("--count=VALUE"), "{text}");
        }
        Err(refusal) => {
            assert!(refusal.starts_with("fuzzed: "), "{refusal}");
        }
    }
});
