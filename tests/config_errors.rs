//! `livestreamd check-config` and `run` refuse bad files with one clear line
//! (file:line:column: reason) and exit status 2.

mod common;

use common::*;
use std::process::Command;

fn check(dir: &std::path::Path, name: &str, text: &str) -> (Option<i32>, String, String) {
    let path = dir.join(name);
    std::fs::write(&path, text).unwrap();
    let out = Command::new(BIN)
        .args(["check-config", path.to_str().unwrap()])
        .output()
        .unwrap();
    (
        out.status.code(),
        String::from_utf8_lossy(&out.stdout).into(),
        String::from_utf8_lossy(&out.stderr).into(),
    )
}

#[test]
fn bad_configs_are_refused_with_their_location_and_reason() {
    let dir = temp_dir("bad-configs");
    // (name, text, expected "line:col", a word of the reason)
    let table = [
        (
            "syntax",
            "[server]\nlisten = \"0.0.0.0:8080\n",
            "2:",
            "string",
        ),
        (
            "unknown-key",
            "[server]\nlisten = \"0.0.0.0:8080\"\nmax_viewer = 3\n",
            "3:1",
            "unknown field `max_viewer`",
        ),
        (
            "unknown-table",
            "[encoderr]\npreset = \"fast\"\n",
            "1:",
            "unknown field `encoderr`",
        ),
        (
            "wrong-type",
            "[encoder]\nkeyframe_interval_s = \"two\"\n",
            "2:23",
            "invalid type",
        ),
        ("empty-ladder", "ladder = []\n", "1:10", "ladder is empty"),
        (
            "start-rung",
            "[encoder]\nstart_rung = 4\n",
            "2:14",
            "start_rung 4 is out of range",
        ),
        (
            "bad-listen",
            "[server]\nlisten = \"localhost:80\"\n",
            "2:10",
            "socket address",
        ),
        (
            "bad-source",
            "[source]\nurl = \"rtsp://10.5.5.9\"\n",
            "2:7",
            "not a udp:// address",
        ),
        (
            "bad-output",
            "[[output]]\nurl = \"udp://phone:5000\"\n",
            "2:7",
            "not an IP:PORT",
        ),
        (
            "odd-size",
            "[[ladder]]\nwidth = 641\nheight = 360\nfps = 30\nbitrate_kbps = 800\n",
            "1:1",
            "even",
        ),
        (
            "zero-interval",
            "[encoder]\nkeyframe_interval_s = 0.0\n",
            "2:1",
            "keyframe_interval_s",
        ),
    ];
    for (name, text, at, reason) in table {
        let file = format!("{name}.toml");
        let (code, stdout, stderr) = check(&dir, &file, text);
        assert_eq!(code, Some(2), "{name}: exit status; stderr: {stderr}");
        assert!(stdout.is_empty(), "{name}: nothing on stdout");
        let path = dir.join(&file);
        let expected = format!("{}:{at}", path.display());
        assert!(
            stderr.contains(&expected),
            "{name}: expected location {expected} in: {stderr}"
        );
        assert!(
            stderr.contains(reason),
            "{name}: expected `{reason}` in: {stderr}"
        );
        assert_eq!(
            stderr.trim().lines().count(),
            1,
            "{name}: one message: {stderr}"
        );
    }
}

#[test]
fn a_missing_file_is_refused() {
    let out = Command::new(BIN)
        .args(["check-config", "/nonexistent/livestreamd.toml"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr)
        .contains("/nonexistent/livestreamd.toml:1:1: cannot read"));
}

#[test]
fn run_with_a_bad_config_exits_2_before_starting_anything() {
    let dir = temp_dir("run-bad");
    let path = dir.join("bad.toml");
    std::fs::write(&path, "[server]\nlisten = 8080\n").unwrap();
    let out = Command::new(BIN)
        .args(["run", "--config", path.to_str().unwrap()])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains(&format!("{}:2:10", path.display())));
}

#[test]
fn the_shipped_config_is_valid_and_equals_the_defaults() {
    let shipped = concat!(env!("CARGO_MANIFEST_DIR"), "/configs/livestreamd.toml");
    let out = Command::new(BIN)
        .args(["check-config", shipped])
        .output()
        .unwrap();
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let cfg = livestreamd::config::load(std::path::Path::new(shipped)).unwrap();
    let defaults = livestreamd::config::Config::default();
    assert_eq!(
        cfg.to_toml(),
        defaults.to_toml(),
        "configs/livestreamd.toml documents the real defaults"
    );
}

#[test]
fn usage_errors_exit_2() {
    let out = Command::new(BIN).args(["launch"]).output().unwrap();
    assert_eq!(out.status.code(), Some(2));
    let out = Command::new(BIN).arg("--version").output().unwrap();
    assert_eq!(out.status.code(), Some(0));
    assert!(String::from_utf8_lossy(&out.stdout).starts_with("livestreamd 0.1.0"));
}
