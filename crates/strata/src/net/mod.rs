//! Networking: links between processes and hosts that carry messages.
//!
//! A link is a byte stream (TCP, or a private local socket to a child process) cut into
//! [`frame`]s. Messages keep their addresses across the link: an address names its node,
//! so a reply to an address that came from another process is routed back over the link
//! it came from.

pub mod frame;
