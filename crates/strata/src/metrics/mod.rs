//! Metrics: every process's figures, in the Prometheus text format at `/metrics`.
//!
//! The objects that keep figures (spools, executors, HTTP servers, links, the process
//! directory) and the runtime itself (objects, mailboxes) put them in one process-wide
//! list when they start, and take them out when they end, so a scrape never shows an
//! object that is gone:
//!
//! * a [`Registration`] is one entry of that list; dropping it removes the entry. The
//!   objects keep theirs in their state (or in their task), so it goes when they end.
//! * an entry either **reads** counters the object already keeps in shared atomics (the
//!   HTTP server's, a link's) with [`Registration::read`], or **asks** the object with a
//!   message it already answers (`SpoolStats`, `ExecutorStats`, the directory's `Query`)
//!   with [`Registration::ask`]. Either way nothing is read or sent until a scrape, so the
//!   hot path pays only the counters the objects kept before metrics existed.
//! * [`gather`] makes one [`Figures`] from the whole list (the questions in parallel,
//!   each bounded by [`ANSWER`]; an object that does not answer in time is left out of
//!   that scrape and logged). [`Figures`] is itself a message: the process directory
//!   answers [`FiguresQuery`] with it, which is how `strata network` and
//!   `strata status -l` show the same figures as `/metrics`.
//!
//! With the `metrics` feature (on by default), [`Figures::to_prometheus_text`] encodes
//! them through the `prometheus-client` crate, and [`serve`] answers `GET /metrics` on an
//! address of your choice with hyper on the runtime's threads (any other path is `404`).
//! Every program run by [`crate::main`] serves them when the environment variable
//! [`METRICS_VARIABLE`] (`STRATA_METRICS=127.0.0.1:9464`) names an address; a bad value
//! stops the program at once with a line naming the variable and the value.
//!
//! ```no_run
//! # #[cfg(feature = "metrics")] {
//! let server = strata::metrics::serve("127.0.0.1:9464".parse().unwrap()).unwrap();
//! println!("figures at http://{}/metrics", server.address());
//! # }
//! ```
//!
//! The families (counters end in `_total`; `object` is the object's address):
//!
//! | family | labels | from |
//! | --- | --- | --- |
//! | `strata_objects_created_total`, `_ended_total`, `_faulted_total`, `strata_objects_live` | | the runtime |
//! | `strata_mailbox_refused_full_total`, `strata_messages_undeliverable_total`, `strata_messages_discarded_total`, `strata_messages_refused_inbound_total` | | the runtime |
//! | `strata_spool_admitted_total`, `_completed_total`, `_failed_total`, `_expired_total`, `_retried_total`, `_replaced_total` | `object` | each spool |
//! | `strata_spool_rejected_total` | `object`, `reason` (`busy`, `overloaded`) | each spool |
//! | `strata_spool_queued`, `_workers`, `_idle_workers`, `_busy` | `object` | each spool |
//! | `strata_spool_response_seconds` | `object`, `quantile` (0.5, 0.9, 0.99, 1) | each spool |
//! | `strata_spool_response_mean_seconds` | `object` | each spool |
//! | `strata_executor_*` (submitted, executed, failed, cancelled, rejected, lost; queued, running, workers...; `run_seconds` quantiles) | `object` | each executor |
//! | `strata_http_open_connections`, `_refused_connections_total`, `_write_timeouts_total`, `_replies_too_large_total` | `address` | each HTTP server |
//! | `strata_link_up`, `strata_link_held_bytes` | `link`, `peer` (node id), `remote` | each link while it is up |
//! | `strata_directory_publications`, `_subscriptions`, `_clients`, `_upstreams`, `_sessions` | `object`, `scope` | each directory (the process's, and a shared one it serves) |
//!
//! The quantiles of response and run times come from the histograms the spool and the
//! executor keep anyway (`hdrhistogram`, three significant digits, since the object
//! started). `prometheus-client` has no summary type, so they are gauges labelled
//! `quantile`; the matching count is the `completed` (or `executed`) counter.

mod figures;
mod registry;
#[cfg(feature = "metrics")]
mod server;
pub(crate) mod sources;

pub use figures::{Family, Figures, FiguresQuery, Kind, Sample, Value};
pub use registry::{gather, Labels, Registration, ANSWER};
#[cfg(feature = "metrics")]
pub use server::{serve, MetricsServer};

/// The environment variable naming the address every [`crate::main`] program serves its
/// metrics on (`HOST:PORT`; unset or empty: none).
pub const METRICS_VARIABLE: &str = "STRATA_METRICS";

/// Why metrics cannot be served.
#[derive(Debug, thiserror::Error)]
pub enum MetricsError {
    /// [`METRICS_VARIABLE`] holds something that is not an address.
    #[error("{METRICS_VARIABLE}={value:?} is not an address to serve metrics on (HOST:PORT, e.g. 127.0.0.1:9464): {why}")]
    BadAddress {
        /// The variable's value.
        value: String,
        /// What is wrong with it.
        why: String,
    },
    /// Nothing could listen on the address.
    #[error("cannot serve metrics on {address}: {why}")]
    CannotListen {
        /// Where it was asked to listen (the variable's value, when it came from there).
        address: String,
        /// The system's reason.
        why: String,
    },
    /// [`METRICS_VARIABLE`] is set, but this program was built without the feature.
    #[error("{METRICS_VARIABLE}={value:?} is set, but this program was built without strata's `metrics` feature")]
    NotBuiltIn {
        /// The variable's value.
        value: String,
    },
}

/// Reads [`METRICS_VARIABLE`] and, when it names an address, starts serving there
/// (what [`crate::main`] does once, before the top object starts). `Ok(None)` when the
/// variable is unset or empty.
#[cfg(feature = "metrics")]
pub fn serve_from_env() -> Result<Option<MetricsServer>, MetricsError> {
    let Some(value) = variable() else {
        return Ok(None);
    };
    let address = parse_address(&value)?;
    serve(address).map(Some).map_err(|e| match e {
        MetricsError::CannotListen { why, .. } => MetricsError::CannotListen {
            address: format!("{METRICS_VARIABLE}={value}"),
            why,
        },
        other => other,
    })
}

/// Reads [`METRICS_VARIABLE`]: without the `metrics` feature any value set is an error.
#[cfg(not(feature = "metrics"))]
pub fn serve_from_env() -> Result<Option<std::convert::Infallible>, MetricsError> {
    match variable() {
        None => Ok(None),
        Some(value) => Err(MetricsError::NotBuiltIn { value }),
    }
}

/// The variable's value, when set and not blank.
fn variable() -> Option<String> {
    let value = std::env::var_os(METRICS_VARIABLE)?;
    let value = value.to_string_lossy().trim().to_string();
    (!value.is_empty()).then_some(value)
}

/// `HOST:PORT` (an IP address, or a name such as `localhost`, which is resolved once).
#[cfg(feature = "metrics")]
fn parse_address(value: &str) -> Result<std::net::SocketAddr, MetricsError> {
    use std::net::ToSocketAddrs;
    let bad = |why: String| MetricsError::BadAddress {
        value: value.to_string(),
        why,
    };
    if let Ok(address) = value.parse() {
        return Ok(address);
    }
    if !value.contains(':') {
        return Err(bad("no port".into()));
    }
    let mut found = value.to_socket_addrs().map_err(|e| bad(e.to_string()))?;
    found
        .next()
        .ok_or_else(|| bad("the name has no address".into()))
}

#[cfg(all(test, feature = "metrics"))]
mod tests {
    use super::*;

    #[test]
    fn addresses_parse_and_bad_ones_are_named() {
        assert_eq!(
            parse_address("127.0.0.1:9464").unwrap(),
            "127.0.0.1:9464".parse().unwrap()
        );
        assert!(parse_address("localhost:9464").is_ok());
        for bad in ["9464", "127.0.0.1", "127.0.0.1:port", "127.0.0.1:70000"] {
            let e = parse_address(bad).unwrap_err().to_string();
            assert!(
                e.contains(METRICS_VARIABLE) && e.contains(bad),
                "{bad}: {e}"
            );
        }
    }
}
