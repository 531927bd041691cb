//! HTTP: a server front that turns requests into messages and replies into responses.
//!
//! See [`HttpServer`] for the mapping of replies and faults to status codes, and [`Api`]
//! for how paths and methods select message types (RPC style `GET /Xy?x=2&y=2`, or REST
//! routes with path parameters).

mod api;
mod fields;
mod server;

pub use api::Api;
pub use fields::InputError;
pub use hyper::Method;
pub use server::{HttpServer, HttpSettings};
