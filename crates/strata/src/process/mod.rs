//! Processes: programs made of objects, child processes as objects, and the private link
//! between a parent and its children.
//!
//! - [`main`] runs a top object as the whole program: signals
//!   become `Stop`, the value becomes the exit status, and a program started as a child
//!   connects back to its parent.
//! - [`entry`] makes a function or object a command-line program whose typed arguments are
//!   `--name=value` options and whose value is printed as JSON.
//! - [`Process`] runs a program as a child *object*: the parent receives its value as
//!   `Returned`; messages sent to it reach the child's top object over the private
//!   link, so a long-lived child is a loadable library, and `Spool::of(Process::of(..))`
//!   is a pool of worker processes.
//! - [`recycle`] makes a program retire after N requests without losing one (what a
//!   supervisor's `--recycle-after` asks for).

mod child;
mod entry;
pub(crate) mod link;
mod program;
pub mod recycle;

pub(crate) use child::signal_name;
pub use child::{ChildObserver, Process, Stream};
pub use entry::{entry, entry_object, parse_arguments, Invocation};
pub use program::{
    main, main_with, ProgramSettings, ARGUMENTS_CHECKED, ARGUMENTS_UNCHECKED, CHECK_ARGUMENTS_MARK,
    CHECK_ARGUMENTS_VARIABLE,
};
pub use recycle::{Recycled, RECYCLE_VARIABLE};
