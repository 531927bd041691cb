//! Entry points: a function or object that is also a command-line program.
//!
//! The arguments are one message type (a struct); its fields become `--name=value`
//! options, plain values written as they are and anything else as JSON
//! (`--rows='[1,2,3]'`). The value the object returns is printed on stdout as JSON — plain
//! by default, `{"type", "value"}` under `--full-output` — so every entry point is a tool
//! that pipes into `jq`. A fault prints one line on stderr and exits 1; bad arguments exit
//! 2 with a message naming the argument; `--help` lists the arguments.
//!
//! ```no_run
//! use strata::prelude::*;
//!
//! #[derive(Debug, Serialize, Deserialize, Message)]
//! struct Xy { x: usize, y: usize }
//!
//! fn texture(_cx: &mut ThreadContext, a: Xy) -> Vec<Vec<f64>> {
//!     vec![vec![0.5; a.x]; a.y]
//! }
//!
//! fn main() -> std::process::ExitCode {
//!     strata::process::entry("texture", texture) // texture --x=2 --y=2
//! }
//! ```

use std::process::ExitCode;

use serde::de::{self, Deserializer, Visitor};
use serde::forward_to_deserialize_any;

use super::program::{run_program, ProgramSettings};
use crate::message::fields::{decode_fields, InputError};
use crate::message::{codec, register, AnyMessage, Message};
use crate::object::{IntoValue, Object, Thread, ThreadContext};
use crate::standard::Aborted;

/// Runs a function as a program: `f` gets the arguments decoded as an `A`.
pub fn entry<A, R, F>(name: &str, f: F) -> ExitCode
where
    A: Message,
    R: IntoValue + 'static,
    F: FnOnce(&mut ThreadContext, A) -> R + Send + 'static,
{
    entry_object(name, move |a: A| {
        Thread::new(move |cx: &mut ThreadContext| f(cx, a))
    })
}

/// Runs an object (a machine, ...) as a program: `make` builds it from the arguments.
pub fn entry_object<A, O, F>(name: &str, make: F) -> ExitCode
where
    A: Message,
    O: Object,
    F: FnOnce(A) -> O,
{
    let (args, full_output) = match parse_arguments::<A>(name, std::env::args().skip(1).collect()) {
        Ok(Invocation::Run { args, full_output }) => (args, full_output),
        Ok(Invocation::Help(text)) => {
            println!("{text}");
            return ExitCode::SUCCESS;
        }
        Err(line) => {
            eprintln!("{line}");
            return ExitCode::from(2);
        }
    };
    if super::program::checking_arguments() {
        println!("{}", super::program::ARGUMENTS_CHECKED);
        return ExitCode::SUCCESS;
    }
    let (value, signal) = match run_program(make(args), &ProgramSettings::default()) {
        Ok(v) => v,
        Err(code) => return code,
    };
    print_value(name, &value, full_output, signal)
}

/// What an entry point makes of its command line, before it runs anything.
#[derive(Debug)]
pub enum Invocation<A> {
    /// `--help` was given: the text the entry point prints.
    Help(String),
    /// Run with these arguments.
    Run {
        /// The arguments, decoded.
        args: A,
        /// `--full-output` was given.
        full_output: bool,
    },
}

/// Parses an entry point's command line (`args`, without the program's own name) as
/// [`entry`] and [`entry_object`] named `name` do. The error is the line they print on
/// stderr before exiting 2, naming the argument at fault. Runs nothing, so arguments (and
/// what [`Process::args`](super::Process::args) makes of a value) can be checked on their
/// own.
pub fn parse_arguments<A: Message>(name: &str, args: Vec<String>) -> Result<Invocation<A>, String> {
    register::<A>();
    let fields = field_names::<A>();
    let parsed = match parse(name, args, &fields) {
        Ok(Parsed::Help) => return Ok(Invocation::Help(help(name, A::type_name(), &fields))),
        Ok(Parsed::Run(p)) => p,
        Err(e) => return Err(format!("{name}: {e}")),
    };
    match decode_fields(A::type_name(), parsed.pairs) {
        Ok(m) => Ok(Invocation::Run {
            args: m.downcast::<A>().expect("decoded as the registered type"),
            full_output: parsed.full_output,
        }),
        Err(InputError { field, reason }) if !field.is_empty() => Err(format!(
            "{name}: bad argument `--{}`: {reason}",
            field.split('.').next().unwrap_or(&field)
        )),
        Err(e) => Err(format!("{name}: bad arguments: {}", e.reason)),
    }
}

/// Prints an entry point's value (stdout) or fault (stderr) and gives the exit status.
fn print_value(name: &str, value: &AnyMessage, full: bool, signal: i32) -> ExitCode {
    if let Some(fault) = value.as_fault() {
        eprintln!("{name}: {}", fault.reason().replace('\n', " "));
        if signal != 0 && value.is::<Aborted>() {
            return ExitCode::from((128 + signal) as u8);
        }
        return ExitCode::from(1);
    }
    let text = if full {
        codec::to_json(value).map(|v| v.to_string())
    } else {
        codec::to_json_plain_bytes(value).map(|b| String::from_utf8(b).expect("JSON is UTF-8"))
    };
    match text {
        Ok(t) => {
            println!("{t}");
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("{name}: {e}");
            ExitCode::from(1)
        }
    }
}

struct Arguments {
    pairs: Vec<(String, String)>,
    full_output: bool,
}

enum Parsed {
    Help,
    Run(Arguments),
}

/// Splits `--name=value`, `--name value` and `--flag` arguments.
fn parse(name: &str, args: Vec<String>, fields: &[&str]) -> Result<Parsed, String> {
    let mut out = Arguments {
        pairs: Vec::new(),
        full_output: false,
    };
    let mut args = args.into_iter().peekable();
    while let Some(a) = args.next() {
        let Some(option) = a.strip_prefix("--") else {
            return Err(format!(
                "unexpected argument `{a}` (arguments are --name=value; see {name} --help)"
            ));
        };
        let (key, value) = match option.split_once('=') {
            Some((k, v)) => (k.to_string(), Some(v.to_string())),
            None => (option.to_string(), None),
        };
        match key.as_str() {
            "help" => return Ok(Parsed::Help),
            "full-output" => out.full_output = true,
            "log" => {
                if value.is_none() {
                    args.next();
                }
            }
            _ if fields.contains(&key.as_str()) => {
                let value = match value {
                    Some(v) => v,
                    None => match args.peek() {
                        Some(next) if !next.starts_with("--") => args.next().expect("peeked"),
                        _ => "true".to_string(),
                    },
                };
                out.pairs.push((key, value));
            }
            _ => {
                let expected: Vec<String> = fields.iter().map(|f| format!("--{f}")).collect();
                return Err(if expected.is_empty() {
                    format!("unknown argument `--{key}`: {name} takes no arguments")
                } else {
                    format!(
                        "unknown argument `--{key}`; expected {}",
                        expected.join(", ")
                    )
                });
            }
        }
    }
    Ok(Parsed::Run(out))
}

fn help(name: &str, args_type: &str, fields: &[&str]) -> String {
    let mut h = format!("usage: {name}");
    for f in fields {
        h.push_str(&format!(" --{f}=VALUE"));
    }
    h.push_str(" [--full-output] [--log=LEVEL]\n\n");
    h.push_str(&format!(
        "Runs {name} with the fields of `{args_type}` as arguments: plain values as they are,\n\
         lists and structures as JSON. Prints the value as JSON on stdout.\n\n\
         --full-output   print the value with its type name: {{\"type\": ..., \"value\": ...}}\n\
         --log=LEVEL     log level (error, warn, info, debug, trace); also STRATA_LOG\n\
         --help          this text"
    ));
    h
}

/// The field names of a struct type, read through serde.
pub(crate) fn field_names<A: Message>() -> Vec<&'static str> {
    let mut recorder = FieldRecorder(Vec::new());
    let _ = A::deserialize(&mut recorder);
    recorder.0
}

struct FieldRecorder(Vec<&'static str>);

impl<'de> Deserializer<'de> for &mut FieldRecorder {
    type Error = de::value::Error;

    fn deserialize_any<V: Visitor<'de>>(self, _v: V) -> Result<V::Value, Self::Error> {
        Err(de::Error::custom("only the field names are wanted"))
    }

    fn deserialize_struct<V: Visitor<'de>>(
        self,
        _name: &'static str,
        fields: &'static [&'static str],
        _v: V,
    ) -> Result<V::Value, Self::Error> {
        self.0.extend_from_slice(fields);
        Err(de::Error::custom("only the field names are wanted"))
    }

    forward_to_deserialize_any! {
        bool i8 i16 i32 i64 i128 u8 u16 u32 u64 u128 f32 f64 char str string bytes byte_buf
        option unit unit_struct newtype_struct seq tuple tuple_struct map enum identifier
        ignored_any
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde::{Deserialize, Serialize};

    #[derive(Debug, Serialize, Deserialize)]
    struct Args {
        x: usize,
        label: String,
    }

    impl Message for Args {
        fn type_name() -> &'static str {
            "test.EntryArgs"
        }
    }

    fn strings(a: &[&str]) -> Vec<String> {
        a.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn field_names_come_from_serde() {
        assert_eq!(field_names::<Args>(), vec!["x", "label"]);
        assert!(field_names::<()>().is_empty());
    }

    #[test]
    fn arguments_parse_and_bad_ones_are_named() {
        let fields = ["x", "label"];
        let Ok(Parsed::Run(a)) = parse(
            "t",
            strings(&["--x=2", "--label", "hi", "--full-output"]),
            &fields,
        ) else {
            panic!("parsed")
        };
        assert_eq!(
            a.pairs,
            vec![("x".into(), "2".into()), ("label".into(), "hi".into())]
        );
        assert!(a.full_output);
        let e = parse("t", strings(&["--z=1"]), &fields).err().unwrap();
        assert!(e.contains("`--z`") && e.contains("--x, --label"), "{e}");
        let e = parse("t", strings(&["stray"]), &fields).err().unwrap();
        assert!(e.contains("`stray`"), "{e}");
        assert!(matches!(
            parse("t", strings(&["--help"]), &fields),
            Ok(Parsed::Help)
        ));
    }
}
