//! The LAN scope across three hosts made of network namespaces (needs root; skips with a
//! message without it): a LAN directory, a publisher and a subscriber each on a host of
//! its own, links encrypted with a pre-shared key. A publisher's host cut off (nftables
//! drops everything both ways) gives the subscriber `Dropped` once its links go stale;
//! healed, the name is `Available` again.

#[path = "support/netns.rs"]
mod netns;
mod support;

use std::path::PathBuf;
use std::time::{Duration, Instant};

use netns::{Host, Lan};
use support::programs::{testbin, Running};
use support::WAIT;

const PORT: u16 = 47_100;

fn expect_line(p: &Running, prefix: &str, limit: Duration) -> (String, Duration) {
    let began = Instant::now();
    let deadline = began + limit;
    let mut seen = Vec::new();
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        let line = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| p.line(left)))
            .unwrap_or_else(|_| {
                panic!("no line starting {prefix:?} within {limit:?}; saw {seen:?}")
            });
        if line.starts_with(prefix) {
            return (line, began.elapsed());
        }
        seen.push(line);
    }
}

struct Run {
    dir: PathBuf,
    key: PathBuf,
}

impl Run {
    fn new() -> Run {
        let dir = std::env::temp_dir().join(format!("strata-lanhosts-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        let key = dir.join("lan.psk");
        strata::net::keys::save_psk(&key, &strata::net::keys::generate_psk().unwrap()).unwrap();
        Run { dir, key }
    }

    /// A peer on `host` with a runtime folder of that host's own.
    fn peer(&self, host: &Host, lan: &str, args: &[&str]) -> Running {
        let runtime = self.dir.join(host.name());
        let mut c = host.command(testbin("directory_peer"));
        c.args(args)
            .env("STRATA_RUNTIME_DIR", runtime)
            .env("STRATA_LAN_DIRECTORY", lan)
            .env("STRATA_LAN_KEY", &self.key);
        Running::start_interactive(&mut c)
    }
}

impl Drop for Run {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

#[test]
fn a_host_cut_off_is_dropped_and_found_again_when_healed() {
    let Some(net) = Lan::or_skip(3) else { return };
    let run = Run::new();
    let [lan_host, a, b] = net.hosts() else {
        unreachable!()
    };
    let lan = format!("{}:{PORT}", lan_host.address());
    let directory = run.peer(lan_host, &lan, &["--serve-lan", &format!("0.0.0.0:{PORT}")]);
    expect_line(&directory, "serving-lan", WAIT);
    let publisher = run.peer(a, &lan, &["--publish", "hosts:svc@lan"]);
    expect_line(&publisher, "published hosts:svc lan", WAIT);
    let subscriber = run.peer(b, &lan, &["--subscribe", "hosts:svc@lan", "--confirm"]);
    expect_line(&subscriber, "available hosts:svc lan", WAIT);
    expect_line(&subscriber, "answered hosts:svc", WAIT);
    // Cut off: nothing more is heard from it, its links go stale.
    a.cut().expect("cut the publisher's host");
    let (_, took) = expect_line(&subscriber, "dropped hosts:svc lan", WAIT);
    eprintln!("cut off -> Dropped after {took:?}");
    a.heal().expect("heal it");
    let (_, took) = expect_line(&subscriber, "available hosts:svc lan", WAIT);
    eprintln!("healed -> Available after {took:?}");
    drop((directory, publisher, subscriber));
}
