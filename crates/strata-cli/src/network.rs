//! `strata network`: the host's directory tree, as the directories themselves tell it.
//!
//! It links to the host directory's socket (the `Connected` message's sender is the host
//! directory) and asks it `Query` → `DirectoryView`: its clients (one per process that
//! joined, with the endpoint where that process takes session links), the host-scope
//! publications and the subscriptions that look that far. Then it links to each client's
//! endpoint (that `Connected`'s sender is the process's own directory) and asks it too:
//! its publications (its own and those it heard of), subscriptions, upstreams and
//! sessions. The process that serves the host directory is already at the other end of
//! the first link, so its directory is asked over that one.
//!
//! Nothing here joins the directory: looking does not change what is listed. Every link
//! and every question is bounded ([`ANSWER`]); a process that does not answer (it may
//! have just ended) is reported as such and the rest still printed. With `--json` the
//! tree is one JSON document, `{"socket", "host", "processes": [{"client", "view",
//! "figures", "error"}]}`, in the views' own serde forms.
//!
//! Each process directory is also asked `FiguresQuery`: the process's figures, the same
//! ones its `/metrics` serves (`strata::metrics`), printed under the process as the
//! samples of the Prometheus text format. `strata status -l` shows them per worker
//! through [`figures_by_pid`].

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::{Duration, Instant};

use clap::Args;
use serde::Serialize;
use strata::directory::{host, ClientView, DirectoryView, PublicationView, Query};
use strata::metrics::{Figures, FiguresQuery};
use strata::net::{Connect, Connected};
use strata::prelude::*;

/// How long one link or one question may take.
pub const ANSWER: Duration = Duration::from_secs(2);

/// Options of `strata network`.
#[derive(Args, Debug)]
pub struct NetworkArgs {
    /// Print the tree as one JSON document.
    #[arg(long)]
    json: bool,
}

/// What `--json` prints.
#[derive(Debug, Serialize)]
struct Network {
    /// The host directory's socket.
    socket: PathBuf,
    /// The host directory's view.
    host: DirectoryView,
    /// Each client of the host directory, with its own view when it answered.
    processes: Vec<ProcessEntry>,
}

#[derive(Debug, Serialize)]
struct ProcessEntry {
    /// As the host directory lists it.
    client: ClientView,
    /// As its process directory tells it.
    view: Option<DirectoryView>,
    /// The process's figures (what its `/metrics` would serve), when it told them.
    figures: Option<Figures>,
    /// Why there is no view.
    error: Option<String>,
}

/// Runs `strata network`.
pub fn run(args: NetworkArgs, log: Option<String>) -> ExitCode {
    let settings = strata::ProgramSettings {
        log,
        ..Default::default()
    };
    strata::main_with(
        Thread::new(move |cx: &mut ThreadContext| match gather(cx) {
            Ok(network) => {
                if args.json {
                    println!(
                        "{}",
                        serde_json::to_string_pretty(&network).expect("views encode")
                    );
                } else {
                    print!("{}", tree(&network));
                }
                0
            }
            Err(e) => {
                eprintln!("strata network: {e}");
                1
            }
        }),
        settings,
    )
}

/// Asks the host directory and each of its clients.
fn gather(cx: &mut ThreadContext) -> Result<Network, String> {
    let socket = host::host_socket()?;
    let nobody = |why: Option<String>| {
        let mut e = format!(
            "no host directory at {} (nothing is published on this host)",
            socket.display()
        );
        if let Some(why) = why {
            e.push_str(&format!(": {why}"));
        }
        e
    };
    if std::fs::symlink_metadata(&socket).is_err() {
        return Err(nobody(None));
    }
    let directory = match connect(cx, &socket) {
        Ok(d) => d,
        Err(Link::Refused(why)) => return Err(nobody(Some(why))),
        Err(Link::Silent) => {
            return Err(format!(
                "the host directory at {} did not link within {} s",
                socket.display(),
                ANSWER.as_secs()
            ))
        }
    };
    let host = query(cx, directory).map_err(|why| {
        format!(
            "the host directory at {} (object {directory}) {why}",
            socket.display()
        )
    })?;
    let mut processes = Vec::with_capacity(host.clients.len());
    for client in &host.clients {
        let (view, figures, error) = match process_view(cx, client, directory) {
            Ok((view, asked)) => match figures(cx, asked) {
                Ok(f) => (Some(view), Some(f), None),
                Err(e) => (Some(view), None, Some(format!("its figures: {e}"))),
            },
            Err(e) => {
                eprintln!("strata network: {e}");
                (None, None, Some(e))
            }
        };
        processes.push(ProcessEntry {
            client: client.clone(),
            view,
            figures,
            error,
        });
    }
    Ok(Network {
        socket,
        host,
        processes,
    })
}

/// The view of one client's process directory, asked over a link to its endpoint (or
/// over the host directory's link, when it is the process serving that), and the address
/// it was asked at.
fn process_view(
    cx: &mut ThreadContext,
    client: &ClientView,
    host_directory: Address,
) -> Result<(DirectoryView, Address), String> {
    let what = match &client.endpoint {
        Some(e) => format!("the process directory {} at {e}", client.address),
        None => format!("the process directory {}", client.address),
    };
    let directory = match &client.endpoint {
        Some(endpoint) if client.address.node() != host_directory.node() => {
            match connect(cx, Path::new(endpoint)) {
                Ok(d) => d,
                Err(Link::Refused(why)) => return Err(format!("{what} cannot be reached: {why}")),
                Err(Link::Silent) => {
                    return Err(format!("{what} did not link within {} s", ANSWER.as_secs()))
                }
            }
        }
        // Its node is at the other end of the host directory's link (it serves it), or
        // it takes no links: ask through the host directory's link, which named it.
        _ => client.address,
    };
    query(cx, directory)
        .map(|view| (view, directory))
        .map_err(|why| format!("{what} {why}"))
}

/// Asks a process directory for its process's figures; says why not.
fn figures(cx: &mut ThreadContext, directory: Address) -> Result<Figures, String> {
    // It asks its process's objects first, each within `strata::metrics::ANSWER`.
    let patience = ANSWER + strata::metrics::ANSWER;
    let answer = cx.ask_timeout(directory, FiguresQuery, patience);
    if answer.is::<TimedOut>() {
        return Err(format!(
            "no answer to FiguresQuery within {} s",
            patience.as_secs()
        ));
    }
    answer
        .downcast::<Figures>()
        .map_err(|other| format!("answered FiguresQuery with {}", describe(&other)))
}

/// The figures of every process of this host that joined the host directory, by pid
/// (what `strata status -l` shows under each worker).
pub fn figures_by_pid(
    cx: &mut ThreadContext,
) -> Result<std::collections::HashMap<u32, Figures>, String> {
    let network = gather(cx)?;
    Ok(network
        .processes
        .into_iter()
        .filter_map(|p| p.figures)
        .map(|f| (f.pid, f))
        .collect())
}

/// The samples of `figures` in the Prometheus text format (its `# HELP` and `# TYPE`
/// lines left out), each line indented by `indent`.
pub fn write_figures(out: &mut String, figures: &Figures, indent: &str) {
    for line in figures.to_prometheus_text().lines() {
        if !line.starts_with('#') && !line.is_empty() {
            out.push_str(indent);
            out.push_str(line);
            out.push('\n');
        }
    }
}

/// Why a link did not come up.
enum Link {
    /// Refused, or nothing listens: why.
    Refused(String),
    /// Nothing was heard within [`ANSWER`].
    Silent,
}

/// Links to the Unix socket `path`; gives the object at the other end that listens.
fn connect(cx: &mut ThreadContext, path: &Path) -> Result<Address, Link> {
    let link = cx.create(Connect::unix(path).connect_timeout(ANSWER));
    let deadline = Instant::now() + ANSWER;
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        match cx.select_timeout::<(Connected, NotConnected)>(left) {
            Ok(e) if e.is::<Connected>() => return Ok(e.sender()),
            Ok(e) if e.sender() == link => {
                let f = e.take::<NotConnected>().expect("selected");
                return Err(Link::Refused(f.reason));
            }
            Ok(_) => {} // a late answer to a link given up on
            Err(_) => {
                cx.stop(link);
                return Err(Link::Silent);
            }
        }
    }
}

/// Asks `directory` for its view; says why not.
fn query(cx: &mut ThreadContext, directory: Address) -> Result<DirectoryView, String> {
    let answer = cx.ask_timeout(directory, Query, ANSWER);
    if answer.is::<TimedOut>() {
        return Err(format!(
            "did not answer Query within {} s",
            ANSWER.as_secs()
        ));
    }
    answer
        .downcast::<DirectoryView>()
        .map_err(|other| format!("answered Query with {}", describe(&other)))
}

fn describe(m: &AnyMessage) -> String {
    match m.as_fault() {
        Some(f) => format!("{} ({})", m.type_name(), f.reason()),
        None => m.type_name().to_string(),
    }
}

fn node(a: Address) -> String {
    format!("{:016x}", a.node())
}

/// The tree as text.
fn tree(n: &Network) -> String {
    use std::fmt::Write;
    let mut out = String::new();
    let h = &n.host;
    let _ = writeln!(
        out,
        "host directory at {} (pid {}): {} {}",
        n.socket.display(),
        h.pid,
        n.processes.len(),
        if n.processes.len() == 1 {
            "process"
        } else {
            "processes"
        }
    );
    if !h.publications.is_empty() {
        let _ = writeln!(out, "  publications at host scope:");
        for p in &h.publications {
            let _ = writeln!(
                out,
                "    {}  {}  node {}",
                p.name,
                p.address,
                node(p.address)
            );
        }
    }
    if !h.subscriptions.is_empty() {
        let _ = writeln!(out, "  subscriptions that look as far:");
        for s in &h.subscriptions {
            let _ = writeln!(
                out,
                "    {}  from node {}  holds {}",
                s.pattern,
                node(s.owner),
                s.holds
            );
        }
    }
    for p in &n.processes {
        let c = &p.client;
        let endpoint = c.endpoint.as_deref().unwrap_or("no endpoint");
        let Some(v) = &p.view else {
            let _ = writeln!(
                out,
                "  process ? (node {}, {endpoint}): {}",
                node(c.address),
                p.error.as_deref().unwrap_or("no answer")
            );
            continue;
        };
        let _ = writeln!(
            out,
            "  process {} (node {}, {endpoint})",
            v.pid,
            node(c.address)
        );
        // A process directory lists what it publishes at process scope and what it heard
        // of; what it offered the host directory, the host directory lists.
        // One line per publication: the nearest copy of each (a process directory holds
        // its own and hears them back from the wider directories it joined).
        let mut publications: Vec<PublicationView> = Vec::new();
        for p in v.publications.iter().chain(&h.publications) {
            let same = |q: &PublicationView| q.name == p.name && q.address == p.address;
            let mine = p.address.node() == c.address.node();
            if !publications.iter().any(same) && (mine || v.publications.contains(p)) {
                publications.push(p.clone());
            }
        }
        publications.sort_by(|a, b| (&a.name, a.from).cmp(&(&b.name, b.from)));
        process_tree(&mut out, v, &publications, c.address.node());
        match (&p.figures, &p.error) {
            (Some(f), _) => {
                let _ = writeln!(out, "    figures:");
                write_figures(&mut out, f, "      ");
            }
            (None, Some(e)) => {
                let _ = writeln!(out, "    no figures: {e}");
            }
            (None, None) => {}
        }
    }
    out
}

/// One process directory's part of the tree: `publications` are its view's and its own
/// at the host directory.
fn process_tree(out: &mut String, v: &DirectoryView, publications: &[PublicationView], own: u64) {
    use std::fmt::Write;
    if publications.is_empty() && v.subscriptions.is_empty() {
        let _ = writeln!(out, "    nothing published or subscribed");
    }
    if !publications.is_empty() {
        let _ = writeln!(out, "    publications:");
        for p in publications {
            let whose = if p.address.node() == own {
                String::new()
            } else {
                format!("  (heard: node {})", node(p.address))
            };
            let _ = writeln!(out, "      {}  {}  {}{whose}", p.name, p.scope, p.address);
        }
    }
    if !v.subscriptions.is_empty() {
        let _ = writeln!(out, "    subscriptions:");
        for s in &v.subscriptions {
            let _ = writeln!(
                out,
                "      {}  {}  holds {}  (by {})",
                s.pattern, s.scope, s.holds, s.owner
            );
        }
    }
    for u in &v.upstreams {
        let at = u.directory.map(|d| format!(" {d}")).unwrap_or_default();
        let _ = writeln!(out, "    {} directory: {}{at}", u.scope, u.state);
    }
    if !v.sessions.is_empty() {
        let _ = writeln!(out, "    sessions:");
        for s in &v.sessions {
            let _ = writeln!(
                out,
                "      node {:016x}  {}  {}",
                s.node,
                s.state,
                s.endpoint.as_deref().unwrap_or("")
            );
        }
    }
}
