//! The `texture` example as a command-line program: the value as JSON on stdout, typed
//! output on request, and bad arguments refused with exit status 2 naming the argument.

use std::process::Command;

fn texture() -> Command {
    let exe = std::env::current_exe().expect("test binary path");
    let dir = exe.parent().and_then(|d| d.parent()).expect("target dir");
    let path = dir.join("examples").join("texture");
    assert!(
        path.exists(),
        "{} not built (run through cargo test)",
        path.display()
    );
    Command::new(path)
}

#[test]
fn prints_the_table_as_json() {
    let out = texture().args(["--x=3", "--y=2"]).output().unwrap();
    assert!(out.status.success());
    let table: Vec<Vec<f64>> = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!((table.len(), table[1].len()), (2, 3));
    assert!(table.iter().flatten().all(|v| (0.0..1.0).contains(v)));
    let out = texture()
        .args(["--x", "1", "--y", "1", "--full-output"])
        .output()
        .unwrap();
    let typed: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(typed["type"], "vec<vec<f64>>");
}

#[test]
fn bad_arguments_exit_2_naming_the_argument() {
    for (args, named) in [
        (vec!["--x=abc", "--y=2"], "--x"),
        (vec!["--x=2"], "--y"),
        (vec!["--x=2", "--y=2", "--z=1"], "--z"),
        (vec!["stray"], "stray"),
    ] {
        let out = texture().args(&args).output().unwrap();
        assert_eq!(out.status.code(), Some(2), "{args:?}");
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(err.contains(named), "{args:?}: {err}");
        assert_eq!(err.lines().count(), 1, "one line: {err}");
        assert!(out.stdout.is_empty());
    }
    let help = texture().arg("--help").output().unwrap();
    assert!(help.status.success());
    assert!(String::from_utf8_lossy(&help.stdout).contains("--x=VALUE"));
}
