//! HTTP: a server front that turns requests into messages and replies into responses, and
//! a client that does the reverse.
//!
//! See [`HttpServer`] for the mapping of replies and faults to status codes, [`Api`] for
//! how paths and methods select message types (RPC style `GET /Xy?x=2&y=2`, or REST
//! routes with path parameters), and [`HttpClient`] for sending messages to an HTTP server
//! (strata or not).

mod api;
mod client;
mod server;

pub use api::Api;
pub use client::{HttpClient, HttpRequest, HttpResponse};
pub use hyper::Method;
pub use server::{HttpCounters, HttpServer, HttpSettings};
