//! A real etcd cluster for the tests of the LAN scope on etcd: `n` members of Debian's
//! `etcd` on loopback ports of their own (or one in each of a list of network-namespace
//! hosts, on the standard ports), each with a data folder under one temporary folder,
//! started together and waited for until every member answers as healthy. A
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
    /// Its IP, and the network namespace it runs in (none: this one, on loopback).
    ip: String,
    netns: Option<String>,
    client: u16,
    peer: u16,
    child: Option<Child>,
}

/// A running cluster (see the module doc).
pub struct Cluster {
    members: Vec<Member>,
    dir: PathBuf,
    token: String,
    /// Serving its clients over TLS only, with client certificates (see [`Cluster::tls`]).
    tls: Option<Tls>,
}

/// The files of a test CA and of certificates it signed (PEM), made with `openssl`.
#[derive(Clone)]
pub struct Tls {
    /// The CA's certificate.
    pub ca: PathBuf,
    /// The members' certificate and key (for 127.0.0.1).
    pub server: (PathBuf, PathBuf),
    /// A client's certificate and key.
    pub client: (PathBuf, PathBuf),
}

impl Tls {
    /// A CA, and a server and a client certificate it signed, in `dir`; `None` (said)
    /// without `openssl`.
    pub fn make(dir: &std::path::Path) -> Option<Tls> {
        let run = |args: &[&str]| {
            let out = Command::new("openssl")
                .args(args)
                .current_dir(dir)
                .output()
                .ok()?;
            assert!(
                out.status.success(),
                "openssl {args:?}: {}",
                String::from_utf8_lossy(&out.stderr)
            );
            Some(())
        };
        let ec = [
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:prime256v1",
            "-nodes",
        ];
        let ca = [
            &["req", "-x509"][..],
            &ec,
            &["-keyout", "ca.key", "-out", "ca.pem"],
        ];
        if run(&[
            ca.concat(),
            vec!["-days", "2", "-subj", "/CN=strata test CA"],
        ]
        .concat())
        .is_none()
        {
            eprintln!("no openssl: the TLS test skips");
            return None;
        }
        for (who, ext) in [
            (
                "server",
                "subjectAltName=IP:127.0.0.1\nextendedKeyUsage=serverAuth",
            ),
            ("client", "extendedKeyUsage=clientAuth"),
        ] {
            let (key, csr, pem, extfile) = (
                format!("{who}.key"),
                format!("{who}.csr"),
                format!("{who}.pem"),
                format!("{who}.ext"),
            );
            std::fs::write(dir.join(&extfile), ext).unwrap();
            run(&[
                &["req"][..],
                &ec,
                &["-keyout", &key, "-out", &csr, "-subj"],
                &[&format!("/CN={who}")],
            ]
            .concat())?;
            run(&[
                "x509",
                "-req",
                "-in",
                &csr,
                "-CA",
                "ca.pem",
                "-CAkey",
                "ca.key",
                "-CAcreateserial",
                "-out",
                &pem,
                "-days",
                "2",
                "-extfile",
                &extfile,
            ])?;
        }
        Some(Tls {
            ca: dir.join("ca.pem"),
            server: (dir.join("server.pem"), dir.join("server.key")),
            client: (dir.join("client.pem"), dir.join("client.key")),
        })
    }
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
                ip: "127.0.0.1".into(),
                netns: None,
                client: free_port(),
                peer: free_port(),
                child: None,
            })
            .collect();
        Some(Cluster {
            members,
            dir,
            token,
            tls: None,
        })
    }

    /// The folder the cluster keeps its files in (removed with it).
    pub fn dir(&self) -> &std::path::Path {
        &self.dir
    }

    /// Serves clients over TLS only, asking them for a certificate signed by `tls`'s CA
    /// (before [`start`](Self::start)).
    pub fn tls(&mut self, tls: Tls) {
        self.tls = Some(tls);
    }

    fn scheme(&self) -> &'static str {
        if self.tls.is_some() {
            "https"
        } else {
            "http"
        }
    }

    /// A cluster with one member in each network namespace `hosts` names (its name and
    /// IP), on ports 2379 and 2380 there; not started yet. `None` as for [`or_skip`].
    pub fn planned_in(hosts: &[(String, std::net::Ipv4Addr)], test: &str) -> Option<Cluster> {
        let mut cluster = Cluster::planned(hosts.len(), test)?;
        for (m, (netns, ip)) in cluster.members.iter_mut().zip(hosts) {
            m.ip = ip.to_string();
            m.netns = Some(netns.clone());
            m.client = 2379;
            m.peer = 2380;
        }
        Some(cluster)
    }

    /// A command that runs `program` where member `i` runs.
    fn command(&self, i: usize, program: &std::path::Path) -> Command {
        match &self.members[i].netns {
            Some(ns) => {
                let mut c = Command::new("ip");
                c.args(["netns", "exec", ns]).arg(program);
                c
            }
            None => Command::new(program),
        }
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
            .map(|m| format!("{}:{}", m.ip, m.client))
            .collect();
        format!("etcd://{}", members.join(","))
    }

    fn launch(&mut self, i: usize, state: &str) {
        let initial: Vec<String> = self
            .members
            .iter()
            .map(|m| format!("{}=http://{}:{}", m.name, m.ip, m.peer))
            .collect();
        let mut c = self.command(i, &program().expect("checked"));
        let m = &self.members[i];
        let log = std::fs::File::create(self.dir.join(format!("{}.log", m.name))).unwrap();
        c.arg("--name")
            .arg(&m.name)
            .arg("--data-dir")
            .arg(self.dir.join(&m.name))
            .arg("--listen-peer-urls")
            .arg(format!("http://{}:{}", m.ip, m.peer))
            .arg("--initial-advertise-peer-urls")
            .arg(format!("http://{}:{}", m.ip, m.peer))
            .arg("--listen-client-urls")
            .arg(format!("{}://{}:{}", self.scheme(), m.ip, m.client))
            .arg("--advertise-client-urls")
            .arg(format!("{}://{}:{}", self.scheme(), m.ip, m.client))
            .arg("--initial-cluster")
            .arg(initial.join(","))
            .arg("--initial-cluster-state")
            .arg(state)
            .arg("--initial-cluster-token")
            .arg(&self.token)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(log);
        if let Some(tls) = &self.tls {
            c.arg("--cert-file")
                .arg(&tls.server.0)
                .arg("--key-file")
                .arg(&tls.server.1)
                .arg("--client-cert-auth")
                .arg("--trusted-ca-file")
                .arg(&tls.ca);
        }
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
        for (i, m) in self.members.iter().enumerate() {
            if m.child.is_none() {
                continue;
            }
            let endpoint = format!("{}:{}", m.ip, m.client);
            loop {
                let port_open =
                    m.netns.is_some() || std::net::TcpStream::connect(&endpoint).is_ok();
                let mut check = self.command(i, std::path::Path::new("etcdctl"));
                if let Some(tls) = &self.tls {
                    check
                        .arg("--cacert")
                        .arg(&tls.ca)
                        .arg("--cert")
                        .arg(&tls.client.0)
                        .arg("--key")
                        .arg(&tls.client.1);
                }
                let up = port_open
                    && check
                        .env("ETCDCTL_API", "3")
                        .arg(format!("--endpoints={}://{endpoint}", self.scheme()))
                        .arg("--command-timeout=1s")
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
