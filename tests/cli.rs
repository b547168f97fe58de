//! The command line's conventions, walked from what `livestreamd --help` lists:
//! `SUBCOMMAND --help` exits 0 with that subcommand's usage for every one,
//! `--version` names the version, the commit and the target.

mod common;

use common::BIN;
use std::process::Command;

fn run(args: &[&str]) -> (Option<i32>, String, String) {
    let out = Command::new(BIN).args(args).output().unwrap();
    (
        out.status.code(),
        String::from_utf8_lossy(&out.stdout).into(),
        String::from_utf8_lossy(&out.stderr).into(),
    )
}

/// The subcommands `livestreamd --help` lists (`  livestreamd NAME …`).
fn listed_subcommands() -> Vec<String> {
    let (code, stdout, stderr) = run(&["--help"]);
    assert_eq!(code, Some(0), "{stderr}");
    let names: Vec<String> = stdout
        .lines()
        .filter_map(|l| l.strip_prefix("  livestreamd "))
        .filter_map(|rest| rest.split_whitespace().next())
        .filter(|name| !name.starts_with('-'))
        .map(String::from)
        .collect();
    assert!(names.len() >= 5, "{stdout}");
    names
}

#[test]
fn every_subcommand_answers_help_with_exit_0() {
    for name in listed_subcommands() {
        for args in [
            vec![name.as_str(), "--help"],
            vec![name.as_str(), "-h"],
            vec!["help", name.as_str()],
        ] {
            let (code, stdout, stderr) = run(&args);
            assert_eq!(code, Some(0), "{args:?}: {stderr}");
            assert!(stderr.is_empty(), "{args:?}: {stderr}");
            assert!(
                stdout.starts_with(&format!("usage: livestreamd {name}"))
                    || (name == "help" && stdout.contains("usage:")),
                "{args:?}: {stdout}"
            );
        }
    }
    // And an unknown one is a usage error, with the list.
    let (code, _, stderr) = run(&["launch", "--help"]);
    assert_eq!(code, Some(2));
    assert!(stderr.contains("unknown command `launch`"), "{stderr}");
}

#[test]
fn version_names_the_commit_and_the_target() {
    let (code, stdout, _) = run(&["--version"]);
    assert_eq!(code, Some(0));
    let line = stdout.trim_end();
    let rest = line
        .strip_prefix(&format!(
            "livestreamd {} (commit ",
            env!("CARGO_PKG_VERSION")
        ))
        .unwrap_or_else(|| panic!("{line}"));
    let (commit, target) = rest
        .strip_suffix(')')
        .and_then(|r| r.split_once(", "))
        .unwrap_or_else(|| panic!("{line}"));
    // The target is a triple for Linux; the commit is this checkout's HEAD
    // when the tests run in one (CI's clone), else what the build was told.
    assert!(
        target.split('-').count() >= 3 && target.contains("linux"),
        "{line}"
    );
    let head = Command::new("git")
        .args(["rev-parse", "--short=12", "HEAD"])
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .output()
        .ok()
        .filter(|o| o.status.success())
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string());
    match head {
        Some(head) if std::env::var_os("LIVESTREAMD_COMMIT").is_none() => {
            assert_eq!(commit, head, "{line}")
        }
        _ => assert!(!commit.is_empty(), "{line}"),
    }
}

/// `report` asks a running daemon and prints what the page's diagnosis panel
/// shows; a daemon that does not answer is reported, not fatal.
#[test]
fn report_prints_the_daemons_state_and_warnings() {
    let (_dir, mut daemon) = common::Daemon::small_demo("cli-report", "");
    daemon.wait_healthy();
    let address = format!("127.0.0.1:{}", daemon.http);
    let (code, stdout, stderr) = run(&["report", "--address", &address]);
    assert_eq!(code, Some(0), "{stderr}");
    for want in [
        "livestreamd field report, ",
        "== camera",
        "== source",
        "state: live",
        "== network",
        "== encoders",
        "running",
        "== phones watching: 0",
        "== warnings and errors: ",
    ] {
        assert!(stdout.contains(want), "{want}\n{stdout}");
    }
    // The page offers the same text for a phone to save.
    let saved = daemon.get("/report.txt");
    assert_eq!(saved.code, 200);
    assert_eq!(
        saved.header("content-disposition"),
        Some("attachment; filename=\"livestream-report.txt\"")
    );
    let text = String::from_utf8_lossy(&saved.body);
    for want in ["livestreamd field report, ", "== camera", "== encoders"] {
        assert!(text.contains(want), "{want}\n{text}");
    }
    // Nothing listens on port 1.
    let (code, stdout, _) = run(&["report", "--address", "127.0.0.1:1"]);
    assert_eq!(code, Some(0));
    assert!(
        stdout.contains("the daemon does not answer: cannot connect"),
        "{stdout}"
    );
    // Without the image's boot-partition writer, --to-boot fails and says why.
    if !std::path::Path::new(livestreamd::field_report::BOOTFS_WRITER).exists() {
        let (code, _, stderr) = run(&["report", "--address", &address, "--to-boot"]);
        assert_eq!(code, Some(1));
        assert!(
            stderr.contains("cannot run /usr/sbin/livestream-bootfs"),
            "{stderr}"
        );
    }
}
