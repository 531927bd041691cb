//! What each kind of object lists, and how its figures read: the one place that names
//! the families (the table in the module docs).

use super::figures::{Figures, Value};
use super::registry::{Labels, Registration};
use crate::Address;

/// The runtime's own counters (objects, mailboxes, deliveries): always there.
pub(crate) fn runtime(f: &mut Figures) {
    let s = crate::runtime::stats();
    let none: &[(&str, &str)] = &[];
    f.counter(
        "strata_objects_created",
        "Objects created in this process",
        none,
        s.created,
    );
    f.counter(
        "strata_objects_ended",
        "Objects that ended in this process",
        none,
        s.ended,
    );
    f.counter(
        "strata_objects_faulted",
        "Objects that ended by a panic",
        none,
        s.faulted,
    );
    f.gauge(
        "strata_objects_live",
        "Objects running now",
        none,
        Value::Count(crate::runtime::live_objects() as u64),
    );
    f.counter(
        "strata_mailbox_refused_full",
        "Sends refused because the receiver's mailbox was full",
        none,
        s.refused_full,
    );
    f.counter(
        "strata_messages_undeliverable",
        "Sends to an address with no object or no route",
        none,
        s.undeliverable,
    );
    f.counter(
        "strata_messages_discarded",
        "Messages still queued when their receiver ended",
        none,
        s.discarded,
    );
    f.counter(
        "strata_messages_refused_inbound",
        "Messages from other processes refused because they may not come from there",
        none,
        s.refused_inbound,
    );
}

/// A spool's figures, asked with `SpoolStats` at each scrape.
pub(crate) fn spool(address: Address) -> Registration {
    use crate::spool::{SpoolStatistics, SpoolStats};
    Registration::ask::<SpoolStats, SpoolStatistics>(address, Labels::object(address), |s, l, f| {
        let me = l.pairs();
        f.counter(
            "strata_spool_admitted",
            "Requests a spool accepted (sent to a worker or queued)",
            &me,
            s.admitted,
        );
        f.counter(
            "strata_spool_completed",
            "Requests a spool's workers answered",
            &me,
            s.completed,
        );
        f.counter(
            "strata_spool_failed",
            "Requests answered with a fault because their worker or the spool ended",
            &me,
            s.failed,
        );
        let rejected = "Requests a spool turned away";
        f.counter(
            "strata_spool_rejected",
            rejected,
            &l.and("reason", "busy"),
            s.rejected_busy,
        );
        f.counter(
            "strata_spool_rejected",
            rejected,
            &l.and("reason", "overloaded"),
            s.rejected_overloaded,
        );
        f.counter(
            "strata_spool_expired",
            "Requests answered TimedOut because their deadline passed while they waited",
            &me,
            s.expired,
        );
        f.counter(
            "strata_spool_retried",
            "Requests given to a second worker after the first ended (retry_on_loss)",
            &me,
            s.retried,
        );
        f.counter(
            "strata_spool_replaced",
            "Workers a spool replaced after they ended",
            &me,
            s.replaced,
        );
        f.gauge(
            "strata_spool_queued",
            "Requests waiting for a worker",
            &me,
            Value::Count(s.queued),
        );
        f.gauge(
            "strata_spool_workers",
            "A spool's workers",
            &me,
            Value::Count(s.workers),
        );
        f.gauge(
            "strata_spool_idle_workers",
            "A spool's idle workers",
            &me,
            Value::Count(s.idle),
        );
        f.gauge(
            "strata_spool_busy",
            "1 while a spool's recent response time is over its target",
            &me,
            Value::Count(u64::from(s.busy)),
        );
        quantiles(
            f,
            l,
            "strata_spool_response_seconds",
            "Response time quantiles since the spool started (arrival to answer)",
            [s.p50, s.p90, s.p99, s.max],
        );
        f.gauge(
            "strata_spool_response_mean_seconds",
            "Mean response time since the spool started",
            &me,
            Value::Real(s.mean),
        );
    })
}

/// Quantile gauges 0.5, 0.9, 0.99 and 1 (the largest).
fn quantiles(f: &mut Figures, l: &Labels, name: &str, help: &str, values: [f64; 4]) {
    for (q, v) in ["0.5", "0.9", "0.99", "1"].into_iter().zip(values) {
        f.gauge(name, help, &l.and("quantile", q), Value::Real(v));
    }
}

/// An executor's figures, asked with `ExecutorStats` at each scrape.
pub(crate) fn executor(address: Address) -> Registration {
    use crate::executor::{ExecutorStatistics, ExecutorStats};
    Registration::ask::<ExecutorStats, ExecutorStatistics>(
        address,
        Labels::object(address),
        |s, l, f| {
            let me = l.pairs();
            for (name, help, n) in [
                ("submitted", "Jobs submitted to an executor", s.submitted),
                ("executed", "Jobs that ran to an end", s.executed),
                ("failed", "Jobs that failed", s.failed),
                (
                    "cancelled",
                    "Jobs cancelled before they started",
                    s.cancelled,
                ),
                ("rejected", "Jobs refused at submission", s.rejected),
                ("workers_started", "Workers started", s.started),
                ("workers_shrunk", "Workers stopped after idling", s.shrunk),
                ("workers_lost", "Workers that ended unexpectedly", s.lost),
            ] {
                f.counter(&format!("strata_executor_{name}"), help, &me, n);
            }
            for (name, help, n) in [
                ("queued", "Jobs waiting for a worker", s.queued),
                ("delayed", "Jobs waiting out a delay", s.delayed),
                ("running", "Jobs running", s.running),
                ("workers", "An executor's workers", s.workers),
                ("idle_workers", "An executor's idle workers", s.idle),
            ] {
                f.gauge(
                    &format!("strata_executor_{name}"),
                    help,
                    &me,
                    Value::Count(n),
                );
            }
            quantiles(
                f,
                l,
                "strata_executor_run_seconds",
                "Job run time quantiles since the executor started",
                [s.p50, s.p90, s.p99, s.max],
            );
            f.gauge(
                "strata_executor_wait_mean_seconds",
                "Mean time a job waited for a worker",
                &me,
                Value::Real(s.waited),
            );
        },
    )
}

/// A directory's figures (a process directory's, or a shared one's), asked with `Query`.
pub(crate) fn directory(address: Address) -> Registration {
    use crate::directory::{DirectoryView, Query};
    Registration::ask::<Query, DirectoryView>(address, Labels::object(address), |v, l, f| {
        let level = v.level.to_string();
        let me = l.and("scope", &level);
        for (name, help, n) in [
            (
                "publications",
                "Names a directory lists",
                v.publications.len(),
            ),
            (
                "subscriptions",
                "Subscriptions a directory holds",
                v.subscriptions.len(),
            ),
            (
                "clients",
                "A shared directory's client processes",
                v.clients.len(),
            ),
            (
                "upstreams",
                "A process directory's wider directories",
                v.upstreams.len(),
            ),
            (
                "sessions",
                "A process directory's session links",
                v.sessions.len(),
            ),
        ] {
            f.gauge(
                &format!("strata_directory_{name}"),
                help,
                &me,
                Value::Count(n as u64),
            );
        }
    })
}

/// An HTTP server's counters, read in place.
#[cfg(feature = "http")]
pub(crate) fn http(address: &str, c: crate::http::HttpCounters) -> Registration {
    Registration::read(Labels::new(&[("address", address)]), move |l, f| {
        let me = l.pairs();
        f.gauge(
            "strata_http_open_connections",
            "An HTTP server's open connections",
            &me,
            Value::Count(c.open_connections() as u64),
        );
        f.counter(
            "strata_http_refused_connections",
            "Connections an HTTP server closed at once because a cap was reached",
            &me,
            c.refused_connections(),
        );
        f.counter(
            "strata_http_write_timeouts",
            "Connections dropped because the client did not take its response in time",
            &me,
            c.write_timeouts(),
        );
        f.counter(
            "strata_http_replies_too_large",
            "Replies answered with 500 because they were larger than max_reply",
            &me,
            c.replies_too_large(),
        );
    })
}

/// A link's figures while it is up: the bytes of its messages waiting in this process's
/// mailboxes (the count its inbound budget is checked against), read in place.
pub(crate) fn link(
    link: Address,
    peer: u64,
    remote: &str,
    held: std::sync::Arc<std::sync::atomic::AtomicUsize>,
) -> Registration {
    let peer = format!("{peer:016x}");
    Registration::read(
        Labels::new(&[
            ("link", &link.to_string()),
            ("peer", &peer),
            ("remote", remote),
        ]),
        move |l, f| {
            let me = l.pairs();
            f.gauge(
                "strata_link_up",
                "1 for each link up (its labels name the peer node and where it was reached)",
                &me,
                Value::Count(1),
            );
            f.gauge(
                "strata_link_held_bytes",
                "Bytes of a link's messages waiting in this process's mailboxes",
                &me,
                Value::Count(held.load(std::sync::atomic::Ordering::Relaxed) as u64),
            );
        },
    )
}
