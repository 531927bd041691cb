//! `strata load` and `strata demo` as a user runs them: the JSON report's fields, clients
//! across processes, thresholds as the exit status, bad arguments named, HTTPS with a CA
//! file, the HTML report (opened in headless Chromium when there is one), and the demo
//! finishing on its own with no process left behind.

#[path = "../../strata/tests/support/recording_server.rs"]
mod recording_server;
#[path = "../../strata/tests/support/mod.rs"]
mod support;

use std::process::{Command, Output};
use std::time::Duration;

use support::programs::{example, run_bounded, Running};
use support::table_server::{Behaviour, TableServer};
use support::WAIT;

/// A run of the command (or an example) may take this long before it is killed.
const RUN_LIMIT: Duration = Duration::from_secs(120);

fn strata(args: &[&str]) -> Output {
    run_bounded(
        Command::new(env!("CARGO_BIN_EXE_strata")).args(args),
        RUN_LIMIT,
    )
}

fn json(out: &Output) -> serde_json::Value {
    serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
        panic!(
            "not JSON ({e}): {}\n{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        )
    })
}

#[test]
fn the_json_report_has_every_field() {
    let server = TableServer::start(Behaviour::default());
    let url = server.url("/Xy?x={1..4}&y=3");
    let out = strata(&[
        "load",
        &url,
        "--total=300",
        "--clients=4",
        "--requests=20",
        "--validate=table",
        "--json",
        "--max-p99=5s",
        "--max-error-rate=1%",
    ]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let r = json(&out);
    assert_eq!(r["url"], url);
    assert_eq!(r["mode"], "closed");
    assert_eq!(
        (r["requests"].as_u64(), r["ok"].as_u64()),
        (Some(300), Some(300))
    );
    assert_eq!(
        (r["clients"].as_u64(), r["processes"].as_u64()),
        (Some(4), Some(1))
    );
    assert!(r["sessions"].as_u64().unwrap() >= 15);
    assert!(r["throughput"].as_f64().unwrap() > 0.0);
    assert!(r["elapsed_s"].as_f64().unwrap() > 0.0);
    for kind in ["connect", "timeout", "status", "validation", "busy", "io"] {
        assert_eq!(r["errors"][kind], 0, "{kind}");
    }
    assert_eq!(r["error_rate"], 0.0);
    let l = &r["latency_ms"];
    let p: Vec<f64> = ["min", "p50", "p90", "p99", "p99_9", "max"]
        .iter()
        .map(|k| l[k].as_f64().unwrap_or_else(|| panic!("latency_ms.{k}")))
        .collect();
    assert!(p.windows(2).all(|w| w[0] <= w[1]), "{p:?}");
    assert!(l["mean"].as_f64().unwrap() > 0.0);
    assert_eq!(r["thresholds"].as_array().unwrap().len(), 2);
    assert_eq!(r["passed"], true);
    assert_eq!(r["interrupted"], false);
    assert_eq!(r["lost_processes"].as_array().unwrap().len(), 0);
}

#[test]
fn clients_run_across_processes() {
    let server = TableServer::start(Behaviour::default());
    let url = server.url("/Xy?x=2&y=2");
    let out = strata(&[
        "load",
        &url,
        "--processes=3",
        "--clients=6",
        "--total=600",
        "--validate=table",
        "--json",
    ]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let r = json(&out);
    assert_eq!(r["processes"], 3);
    assert_eq!(r["ok"], 600);
    assert_eq!(server.requests(), 600);
}

#[test]
fn a_threshold_that_cannot_be_met_fails_the_run() {
    let server = TableServer::start(Behaviour {
        wrong: true,
        ..Default::default()
    });
    let url = server.url("/Xy?x=2&y=2");
    let out = strata(&["load", &url, "--total=50", "--max-p99=1us"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stdout).contains("FAILED"));
    let out = strata(&[
        "load",
        &url,
        "--total=50",
        "--validate=table",
        "--max-error-rate=0.1",
        "--json",
    ]);
    assert_eq!(out.status.code(), Some(1));
    let r = json(&out);
    assert_eq!(r["errors"]["validation"], 50);
    assert_eq!(r["passed"], false);
}

#[test]
fn bad_arguments_exit_2_naming_what_is_wrong() {
    for (args, says) in [
        (
            vec!["load", "http://127.0.0.1:1/", "--clients=0"],
            "clients",
        ),
        (
            vec!["load", "http://127.0.0.1:1/x={1..", "--total=1"],
            "unclosed",
        ),
        (vec!["load", "ftp://127.0.0.1:1/"], "http://"),
        (
            vec!["load", "http://127.0.0.1:1/", "--duration=soon"],
            "soon",
        ),
        (
            vec!["load", "http://127.0.0.1:1/", "--max-error-rate=2"],
            "between 0 and 1",
        ),
        (vec!["load", "http://127.0.0.1:1/", "--validate=xml"], "xml"),
        (
            vec![
                "load",
                "http://127.0.0.1:1/",
                "--processes=5",
                "--clients=2",
            ],
            "processes",
        ),
        (
            vec!["load", "http://127.0.0.1:1/", "--rate=10", "--pause=1ms"],
            "pause",
        ),
    ] {
        let out = strata(&args);
        assert_eq!(out.status.code(), Some(2), "{args:?}");
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(err.contains(says), "{args:?}: {err}");
    }
}

#[test]
fn bad_request_input_exits_2_naming_it() {
    let dir = std::env::temp_dir().join(format!("strata-load-bad-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let bad_lines = dir.join("requests.jsonl");
    std::fs::write(&bad_lines, "{\"path\": \"/a\"}\n{\"path\": 7}\n").unwrap();
    let not_pem = dir.join("ca.pem");
    std::fs::write(&not_pem, "no certificate here").unwrap();
    let (lines, pem) = (bad_lines.to_str().unwrap(), not_pem.to_str().unwrap());
    let url = "http://127.0.0.1:1/";
    let tls_url = "https://127.0.0.1:1/";
    for (args, says) in [
        (
            vec!["--header", "no colon here"],
            "--header: `no colon here` is not a header",
        ),
        (vec!["--header", "Content-Length: 4"], "leave it out"),
        (
            vec!["--body-file", "/nonexistent/body"],
            "--body-file /nonexistent/body",
        ),
        (
            vec!["--body-json", r#"{"id": {5..1}}"#],
            "the range is empty",
        ),
        (
            vec!["--body-json", r#"{"id": {a,b}"#],
            "does not expand to JSON",
        ),
        (
            vec!["--body-json", "@/nonexistent/t.json"],
            "--body-json /nonexistent/t.json",
        ),
        (
            vec!["--request-file", "/nonexistent/r"],
            "--request-file /nonexistent/r",
        ),
        (vec!["--request-file", lines], "line 2: `path` is 7"),
        (
            vec!["--expect-json", "status=ok"],
            "--expect-json: `status` is not a JSON pointer",
        ),
        (
            vec!["--cacert", "/nonexistent/ca.pem"],
            "--cacert /nonexistent/ca.pem",
        ),
        (vec!["--method", "GE T"], "not an HTTP method"),
        (vec!["--stages", "30s"], "not DURATION:TARGET"),
        (vec!["--insecure"], "is not https://"),
    ] {
        let mut all = vec!["load", url, "--total=1"];
        all.extend(&args);
        let out = strata(&all);
        assert_eq!(out.status.code(), Some(2), "{args:?}");
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(err.contains(says), "{args:?}: {err}");
    }
    let out = strata(&["load", tls_url, "--total=1", "--cacert", pem]);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("no PEM certificate"));
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn https_with_a_ca_file_works_across_processes_and_is_refused_without_it() {
    use recording_server::{RecordingServer, TestCert};
    let cert = TestCert::make();
    let server = RecordingServer::start_tls(r#"{"status":"ok"}"#, &cert);
    let dir = std::env::temp_dir().join(format!("strata-load-tls-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let ca = dir.join("ca.pem");
    std::fs::write(&ca, &cert.ca_pem).unwrap();
    let url = server.url("/orders?id={1..9}");
    let out = strata(&[
        "load",
        &url,
        "--cacert",
        ca.to_str().unwrap(),
        "--processes=2",
        "--clients=2",
        "--total=40",
        "--method=POST",
        "--header=X-Client: strata",
        r#"--body-json={"id": {1..9}}"#,
        "--expect-json=/status=ok",
        "--json",
    ]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let r = json(&out);
    assert_eq!(
        (r["ok"].as_u64(), r["processes"].as_u64()),
        (Some(40), Some(2))
    );
    let got = server.taken();
    assert_eq!(got.len(), 40);
    assert!(got.iter().all(|q| q.method == "POST"
        && q.header("x-client") == Some("strata")
        && serde_json::from_slice::<serde_json::Value>(&q.body).unwrap()["id"].is_u64()));

    // Without the CA file the system's roots do not know the server.
    let out = strata(&["load", &url, "--total=5", "--clients=1", "--json"]);
    let r = json(&out);
    assert_eq!(r["ok"], 0, "{r}");
    assert_eq!(r["errors"]["connect"], 5);
    assert!(
        r["examples"][0].as_str().unwrap().contains("certificate"),
        "{r}"
    );

    // --insecure connects, and says loudly what it skips.
    let out = strata(&[
        "load",
        &url,
        "--total=5",
        "--clients=1",
        "--insecure",
        "--json",
    ]);
    assert_eq!(json(&out)["ok"], 5);
    assert!(String::from_utf8_lossy(&out.stderr).contains("certificate is NOT checked"));
    let _ = std::fs::remove_dir_all(&dir);
}

/// Chromium, if this machine has it.
fn chromium() -> Option<std::path::PathBuf> {
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .flat_map(|d| [d.join("chromium"), d.join("chromium-browser")])
        .find(|p| p.is_file())
}

#[test]
fn the_html_report_has_the_run_figures_and_opens_in_chromium() {
    let server = TableServer::start(Behaviour::default());
    let url = server.url("/Xy?x={1..4}&y=3");
    let dir = std::path::PathBuf::from(env!("CARGO_TARGET_TMPDIR"));
    let page_path = dir.join(format!("load-report-{}.html", std::process::id()));
    let out = strata(&[
        "load",
        &url,
        "--total=2000",
        "--rate=1000",
        "--clients=4",
        "--validate=table",
        "--max-error-rate=1%",
        "--report",
        page_path.to_str().unwrap(),
        "--json",
    ]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let printed = json(&out);
    let page = std::fs::read_to_string(&page_path).unwrap();
    let marker = r#"<script type="application/json" id="strata-report">"#;
    let start = page.find(marker).expect("the embedded report") + marker.len();
    let end = start + page[start..].find("</script>").unwrap();
    let embedded: serde_json::Value = serde_json::from_str(&page[start..end]).unwrap();
    assert_eq!(embedded, printed, "the page's report is the printed one");
    assert_eq!(embedded["requests"], 2000);
    assert!(!embedded["seconds"].as_array().unwrap().is_empty());
    assert!(page.contains("data-figure=\"requests\">2000<"));
    assert_eq!(page.matches("<svg").count(), 4);

    let Some(chromium) = chromium() else {
        eprintln!("skipping the Chromium part: no chromium here (Debian's package `chromium`; scripts/test installs it as root)");
        return;
    };
    let profile = dir.join(format!("chromium-profile-{}", std::process::id()));
    let shot = dir.join("load-report.png");
    let _ = std::fs::remove_file(&shot);
    let base = |extra: &[String]| {
        let mut c = Command::new(&chromium);
        c.args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-quic",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--enable-logging=stderr",
            "--v=0",
        ])
        .arg(format!("--user-data-dir={}", profile.display()))
        .args(extra)
        .arg(format!("file://{}", page_path.display()));
        run_bounded(&mut c, RUN_LIMIT)
    };
    let shown = base(&[
        format!("--screenshot={}", shot.display()),
        "--window-size=1200,2000".to_string(),
    ]);
    let log = String::from_utf8_lossy(&shown.stderr).to_string();
    assert!(shown.status.success(), "chromium failed: {log}");
    for bad in ["CONSOLE", "Uncaught", "net::ERR_"] {
        assert!(!log.contains(bad), "chromium reported {bad}: {log}");
    }
    let png = std::fs::read(&shot).expect("the screenshot");
    assert!(
        png.starts_with(b"\x89PNG") && png.len() > 10_000,
        "{} bytes",
        png.len()
    );
    // The page as Chromium parsed it still holds the charts and the figures.
    let dom = base(&["--dump-dom".to_string()]);
    let dom = String::from_utf8_lossy(&dom.stdout);
    assert_eq!(dom.matches("<svg").count(), 4, "the DOM lost a chart");
    assert!(dom.contains("data-figure=\"requests\">2000<"));
    let _ = std::fs::remove_dir_all(&profile);
    eprintln!("the report's screenshot: {}", shot.display());
}

/// Processes whose command line runs this strata binary as a demo worker.
fn workers() -> usize {
    let exe = env!("CARGO_BIN_EXE_strata");
    std::fs::read_dir("/proc")
        .unwrap()
        .filter_map(|e| std::fs::read(e.ok()?.path().join("cmdline")).ok())
        .filter(|c| {
            let text = String::from_utf8_lossy(c);
            text.starts_with(exe) && text.contains("texture-worker")
        })
        .count()
}

#[test]
fn the_demo_finishes_with_a_report_and_leaves_no_process() {
    // One test for both kinds of worker processes: `workers()` counts them process-wide.
    let dir = std::env::temp_dir().join(format!("strata-demo-{}", std::process::id()));
    for (kind, says) in [
        ("processes", "worker processes"),
        ("named", "worker processes found by name"),
    ] {
        let out = run_bounded(
            Command::new(env!("CARGO_BIN_EXE_strata"))
                .args([
                    "demo",
                    "--address=127.0.0.1:0",
                    "--duration=2s",
                    "--size=2",
                    "--clients=4",
                    &format!("--workers={kind}"),
                ])
                .env("STRATA_RUNTIME_DIR", &dir),
            RUN_LIMIT,
        );
        let stdout = String::from_utf8_lossy(&out.stdout);
        assert!(
            out.status.success(),
            "{kind}: {stdout}\n{}",
            String::from_utf8_lossy(&out.stderr)
        );
        for part in [says, "requests", "latency ms", "spool", "service stopped"] {
            assert!(stdout.contains(part), "{kind}: {part}: {stdout}");
        }
        assert!(stdout.contains("failed 0"), "{kind}: {stdout}");
        assert_eq!(workers(), 0, "{kind}: worker processes left behind");
    }
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn clients_of_three_kinds_share_one_run() {
    let out = run_bounded(&mut Command::new(example("load_users")), RUN_LIMIT);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(stdout.contains("validation 0"), "{stdout}");
    // kinds: watchdog W clients R requests, experts ..., typical ...
    let kinds = stdout
        .lines()
        .find_map(|l| l.strip_prefix("kinds: "))
        .unwrap_or_else(|| panic!("no kinds line: {stdout}"));
    for part in kinds.split(", ") {
        let words: Vec<&str> = part.split_whitespace().collect();
        let (clients, requests): (u64, u64) =
            (words[1].parse().unwrap(), words[3].parse().unwrap());
        assert!(clients > 0 && requests > 0, "{part}: {stdout}");
    }
    assert_eq!(kinds.split(", ").count(), 3, "{kinds}");
}

/// `server_4` (the spool of worker threads) on a port of its choosing; killed when
/// dropped.
struct Server4 {
    _process: Running,
    address: std::net::SocketAddr,
}

impl Server4 {
    fn start() -> Server4 {
        let process = Running::start(Command::new(example("server_4")).arg("127.0.0.1:0"));
        let address = process.announced_address("listening on ", WAIT);
        Server4 {
            _process: process,
            address,
        }
    }
}

#[test]
fn against_server_4_the_json_report_has_percentiles_and_thresholds_decide() {
    let server = Server4::start();
    let url = format!("http://{}/Xy?x={{1..8}}&y={{1..8}}", server.address);
    let out = strata(&["load", &url, "--total=400", "--validate=table", "--json"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let r = json(&out);
    assert_eq!(r["ok"], 400, "{r}");
    for p in ["p50", "p90", "p99", "p99_9", "max"] {
        assert!(r["latency_ms"][p].as_f64().unwrap() > 0.0, "{p}: {r}");
    }
    let out = strata(&["load", &url, "--total=100", "--max-p99=1us"]);
    assert_eq!(out.status.code(), Some(1));
}
