//! What a link between two hosts shows on the wire: tcpdump captures a link between two
//! network-namespace hosts while one peer sends the other a known marker. Encrypted with
//! a pre-shared key, the capture holds the link's plaintext preamble but never the
//! marker; a plaintext link (allowed off loopback only when asked) shows it. A peer with
//! the wrong key is refused, with the reason.
//!
//! Needs root, iproute2 and tcpdump (`scripts/test` installs them): elsewhere each test
//! prints one `skipping: ...` line and returns.

#[path = "support/netns.rs"]
mod netns;
mod support;

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use netns::{Host, Lan};
use support::programs::{testbin, wait_bounded, Running};
use support::WAIT;

const KEY: &str = "5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a";
const OTHER_KEY: &str = "0101010101010101010101010101010101010101010101010101010101010101";

fn tcpdump() -> Option<PathBuf> {
    ["/usr/bin/tcpdump", "/usr/sbin/tcpdump", "/sbin/tcpdump"]
        .into_iter()
        .map(PathBuf::from)
        .find(|p| p.exists())
}

/// Two hosts and tcpdump, or `None` after printing why not.
fn setup() -> Option<(Lan, PathBuf)> {
    let net = Lan::or_skip(2)?;
    let Some(dump) = tcpdump() else {
        println!("skipping: no tcpdump (package tcpdump; scripts/test installs it)");
        return None;
    };
    Some((net, dump))
}

/// A capture of `port` on `host`'s eth0, written to `file` as it comes.
struct Capture {
    child: std::process::Child,
    file: PathBuf,
}

impl Capture {
    fn start(dump: &Path, host: &Host, port: u16, file: PathBuf) -> Capture {
        let _ = std::fs::remove_file(&file);
        let mut child = host
            .command(dump)
            .args([
                "-i",
                "eth0",
                "--immediate-mode",
                "-U",
                "-n",
                "-s",
                "0",
                "-w",
            ])
            .arg(&file)
            .args(["tcp", "port", &port.to_string()])
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("tcpdump starts");
        // Immediate mode hands each packet over as it comes: otherwise the kernel passes
        // them in blocks up to a second late, and a capture stopped soon after the
        // exchange holds none. tcpdump says `listening on eth0 ...` on stderr once its filter is in place (the
        // file's header comes earlier, before packets are seen).
        let stderr = child.stderr.take().expect("piped stderr");
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            use std::io::BufRead;
            for line in std::io::BufReader::new(stderr)
                .lines()
                .map_while(Result::ok)
            {
                let _ = tx.send(line);
            }
        });
        let capture = Capture { child, file };
        let mut said = Vec::new();
        loop {
            match rx.recv_timeout(WAIT) {
                Ok(line) if line.contains("listening on") => break,
                Ok(line) => said.push(line),
                Err(_) => panic!("tcpdump did not start capturing: {said:?}"),
            }
        }
        capture
    }

    /// Stops the capture and gives what it holds.
    fn finish(mut self) -> Vec<u8> {
        // Let the last packets reach the file, then end tcpdump cleanly.
        std::thread::sleep(Duration::from_millis(300));
        support::programs::signal(self.child.id(), libc::SIGINT);
        wait_bounded(&mut self.child, WAIT, "tcpdump");
        let bytes = std::fs::read(&self.file).expect("the capture file");
        let _ = std::fs::remove_file(&self.file);
        bytes
    }
}

impl Drop for Capture {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_file(&self.file);
    }
}

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    haystack.windows(needle.len()).any(|w| w == needle)
}

/// A listening `link_peer` on `host`:`port` with `args`.
fn listener(host: &Host, port: u16, args: &[&str]) -> Running {
    let mut c = host.command(testbin("link_peer"));
    c.arg("--listen")
        .arg(format!("{}:{port}", host.address()))
        .args(args);
    let p = Running::start(&mut c);
    p.announced_address("listening", WAIT);
    p
}

/// Runs a connecting `link_peer` on `host` to `to` with `args`; gives its stdout lines.
fn dial(host: &Host, to: String, args: &[&str]) -> Vec<String> {
    let mut c = host.command(testbin("link_peer"));
    c.arg("--connect").arg(to).args(args);
    let mut p = Running::start(&mut c);
    let (status, lines, stderr) = p.finish(WAIT);
    assert!(
        status.success() || lines.iter().any(|l| l.starts_with("not connected")),
        "the dialer failed: {status:?} {lines:?} {stderr}"
    );
    lines
}

/// One run: a capture on the listener's host while the dialer sends `marker`.
fn captured(
    dump: &Path,
    net: &Lan,
    port: u16,
    listen: &[&str],
    connect: &[&str],
    marker: &str,
) -> Vec<u8> {
    let [server, client] = net.hosts() else {
        unreachable!()
    };
    let file = std::env::temp_dir().join(format!("strata-wire-{}-{port}.pcap", std::process::id()));
    let capture = Capture::start(dump, server, port, file);
    let peer = listener(server, port, listen);
    let mut args = connect.to_vec();
    args.extend(["--say", marker]);
    let lines = dial(client, format!("{}:{port}", server.address()), &args);
    assert!(
        lines.iter().any(|l| l == &format!("echoed {marker}")),
        "the marker went there and back: {lines:?}"
    );
    let bytes = capture.finish();
    drop(peer);
    bytes
}

#[test]
fn an_encrypted_link_shows_no_plaintext_on_the_wire_and_a_plaintext_one_does() {
    let Some((net, dump)) = setup() else { return };
    let marker = format!("strata-wire-marker-{}", std::process::id());
    let encrypted = captured(
        &dump,
        &net,
        47_210,
        &["--encrypted", "--key", KEY],
        &["--encrypted", "--key", KEY],
        &marker,
    );
    assert!(
        contains(&encrypted, b"STRT"),
        "the capture holds the link (its plaintext preamble): {} bytes",
        encrypted.len()
    );
    assert!(
        !contains(&encrypted, marker.as_bytes()),
        "no plaintext of the marker on an encrypted link"
    );
    let plain = captured(
        &dump,
        &net,
        47_211,
        &["--allow-unauthenticated"],
        &["--allow-unauthenticated"],
        &marker,
    );
    assert!(
        contains(&plain, marker.as_bytes()),
        "a plaintext link shows the marker (the capture sees the payload): {} bytes, preamble {}",
        plain.len(),
        contains(&plain, b"STRT")
    );
}

#[test]
fn a_peer_with_the_wrong_key_is_refused_across_hosts_with_a_reason() {
    let Some((net, _)) = setup() else { return };
    let [server, client] = net.hosts() else {
        unreachable!()
    };
    let port = 47_212;
    let mut peer = listener(server, port, &["--encrypted", "--key", KEY, "--log=info"]);
    let lines = dial(
        client,
        format!("{}:{port}", server.address()),
        &["--encrypted", "--key", OTHER_KEY, "--say", "never"],
    );
    let refused = lines
        .iter()
        .find(|l| l.starts_with("not connected"))
        .unwrap_or_else(|| panic!("refused: {lines:?}"));
    assert!(refused.contains("pre-shared key"), "{refused}");
    assert!(!lines.iter().any(|l| l.starts_with("echoed")), "{lines:?}");
    // The listening end says so too (in its log), and still serves the right key.
    let ok = dial(
        client,
        format!("{}:{port}", server.address()),
        &["--encrypted", "--key", KEY, "--say", "welcome"],
    );
    assert!(ok.iter().any(|l| l == "echoed welcome"), "{ok:?}");
    peer.signal(libc::SIGTERM);
    let (_, _, log) = peer.finish(WAIT);
    assert!(
        log.contains("pre-shared key"),
        "the listener logs the refusal: {log}"
    );
}
