//! Processes: entry points (objects that are also command-line programs) and child
//! processes as objects (function-call style, or long-lived loadable libraries).

mod child;
mod entry;

pub(crate) use child::{link_to_parent, PRIVATE_MAX_FRAME};
pub use child::{Process, LINK_FD_VARIABLE};
pub use entry::{entry, entry_object};
