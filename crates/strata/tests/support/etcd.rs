//! A real etcd cluster for the tests of the LAN scope on etcd: `n` members of Debian's
//! `etcd` on loopback ports of their own, each with a data folder under one temporary
//! folder, started together and waited for until every member answers as healthy. A
//! member can be killed and started again; everything is killed and removed when the
//! cluster is dropped (and the members die with the thread that started them). When
//! there is no `etcd` program, [`Cluster::or_skip`] says so and the test skips.

use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// How long a cluster may take to become healthy.
const HEALTHY_WITHIN: Duration = Duration::from_secs(20);

/// One member.
struct Member {
    name: String,
    client: u16,
    peer: u16,
    child: Option<Child>,
}

/// A running cluster (see the module doc).
pub struct Cluster {
    members: Vec<Member>,
    dir: PathBuf,
    token: String,
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

fn program() -> Option<PathBuf> {
    ["/usr/bin/etcd", "/usr/local/bin/etcd"]
        .iter()
        .map(PathBuf::from)
        .find(|p| p.exists())
}

impl Cluster {
    /// A healthy cluster of `n` members, or `None` (said on stderr) when this machine has
    /// no `etcd` (`scripts/test` installs Debian's `etcd-server`).
    pub fn or_skip(n: usize, test: &str) -> Option<Cluster> {
        let mut cluster = Cluster::planned(n, test)?;
        cluster.start();
        Some(cluster)
    }

    /// A cluster of `n` members with their ports chosen, not started yet ([`start`]
    /// does), or `None` as for [`or_skip`].
    pub fn planned(n: usize, test: &str) -> Option<Cluster> {
        if program().is_none() {
            eprintln!("{test}: skipped: no etcd on this machine (apt-get install etcd-server)");
            return None;
        }
        let token = format!("strata-test-{}-{}", std::process::id(), free_port());
        let dir = std::env::temp_dir().join(&token);
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        let members = (0..n)
            .map(|i| Member {
                name: format!("m{i}"),
                client: free_port(),
                peer: free_port(),
                child: None,
            })
            .collect();
        Some(Cluster {
            members,
            dir,
            token,
        })
    }

    /// Starts every member and waits until the cluster is healthy.
    pub fn start(&mut self) {
        for i in 0..self.members.len() {
            self.launch(i, "new");
        }
        self.wait_healthy();
    }

    /// The members, as `STRATA_LAN_DIRECTORY` names them.
    pub fn url(&self) -> String {
        let members: Vec<String> = self
            .members
            .iter()
            .map(|m| format!("127.0.0.1:{}", m.client))
            .collect();
        format!("etcd://{}", members.join(","))
    }

    fn launch(&mut self, i: usize, state: &str) {
        let initial: Vec<String> = self
            .members
            .iter()
            .map(|m| format!("{}=http://127.0.0.1:{}", m.name, m.peer))
            .collect();
        let m = &self.members[i];
        let log = std::fs::File::create(self.dir.join(format!("{}.log", m.name))).unwrap();
        let mut c = Command::new(program().expect("checked"));
        c.arg("--name")
            .arg(&m.name)
            .arg("--data-dir")
            .arg(self.dir.join(&m.name))
            .arg("--listen-peer-urls")
            .arg(format!("http://127.0.0.1:{}", m.peer))
            .arg("--initial-advertise-peer-urls")
            .arg(format!("http://127.0.0.1:{}", m.peer))
            .arg("--listen-client-urls")
            .arg(format!("http://127.0.0.1:{}", m.client))
            .arg("--advertise-client-urls")
            .arg(format!("http://127.0.0.1:{}", m.client))
            .arg("--initial-cluster")
            .arg(initial.join(","))
            .arg("--initial-cluster-state")
            .arg(state)
            .arg("--initial-cluster-token")
            .arg(&self.token)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(log);
        // SAFETY: prctl only, between fork and exec.
        unsafe {
            use std::os::unix::process::CommandExt;
            c.pre_exec(|| {
                libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL);
                Ok(())
            });
        }
        let child = c.spawn().expect("etcd starts");
        self.members[i].child = Some(child);
    }

    /// Waits until every running member takes a client connection and the cluster
    /// answers a read through each (`etcdctl endpoint health`, when there is one).
    fn wait_healthy(&self) {
        let deadline = Instant::now() + HEALTHY_WITHIN;
        for m in self.members.iter().filter(|m| m.child.is_some()) {
            let endpoint = format!("127.0.0.1:{}", m.client);
            loop {
                let up = std::net::TcpStream::connect(&endpoint).is_ok()
                    && Command::new("etcdctl")
                        .env("ETCDCTL_API", "3")
                        .args(["--endpoints", &endpoint, "--command-timeout=1s"])
                        .args(["endpoint", "health"])
                        .stdout(Stdio::null())
                        .stderr(Stdio::null())
                        .status()
                        .map(|s| s.success())
                        // No etcdctl: the port answering is all that is checked.
                        .unwrap_or(true);
                if up {
                    break;
                }
                assert!(
                    Instant::now() < deadline,
                    "etcd member {} not healthy within {HEALTHY_WITHIN:?}; its log: {}",
                    m.name,
                    std::fs::read_to_string(self.dir.join(format!("{}.log", m.name)))
                        .unwrap_or_default()
                );
                std::thread::sleep(Duration::from_millis(100));
            }
        }
    }

    /// Kills member `i` with SIGKILL.
    pub fn kill(&mut self, i: usize) {
        if let Some(mut c) = self.members[i].child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    /// Starts member `i` again, with its data, and waits for the cluster to be healthy.
    pub fn restart(&mut self, i: usize) {
        self.kill(i);
        self.launch(i, "existing");
        self.wait_healthy();
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        for i in 0..self.members.len() {
            self.kill(i);
        }
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}
