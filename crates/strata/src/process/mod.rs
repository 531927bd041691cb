//! Processes: entry points (objects that are also command-line programs), and soon child
//! processes as objects.

mod entry;

pub use entry::{entry, entry_object};
