//! HTTP: a server front that turns requests into messages and replies into responses, and
//! a client that does the reverse.
//!
//! See [`HttpServer`] for the mapping of replies and faults to status codes, [`Api`] for
//! how paths and methods select message types (RPC style `GET /Xy?x=2&y=2`, or REST
//! routes with path parameters), and [`HttpClient`] for sending messages to an HTTP server
//! (strata or not).
//!
//! Neither end trusts the other. The server bounds what one client can make it hold —
//! connections (in all and per IP address), the time to send a request and to take a
//! response, request and reply sizes — and counts what it turned away
//! ([`HttpCounters`]). The client bounds the responses it reads and never delivers a
//! reply that is one of the runtime's own messages (`Stop`, `Returned`, `Start`, ...).

mod api;
mod client;
mod server;

pub use api::{Api, Unmapped};
pub use client::{HttpClient, HttpRequest, HttpResponse};
pub use hyper::Method;
pub use server::{HttpCounters, HttpServer, HttpSettings};
