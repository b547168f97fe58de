//! The boot-partition override, with the real daemon: a good override is laid
//! over the main file (its keys replace the main file's, the rest stays), a
//! bad one is reported with its file:line:col and ignored, both bad
//! refuse to start, and SIGHUP applies a good file but keeps the running
//! configuration when the file is bad.

mod common;

use common::*;
use std::path::Path;
use std::time::Duration;

const START: Duration = Duration::from_secs(30);

/// A config on one 320x180@15 rung with source `udp` and server `http`.
fn config_text(udp: u16, http: u16, max_viewers: usize) -> String {
    let ports = Ports { http, source: udp };
    Config::new(&ports)
        .ladder(ONE_RUNG)
        .server(&format!("max_viewers = {max_viewers}"))
        .text()
}

fn write(path: &Path, text: &str) {
    std::fs::write(path, text).unwrap();
}

/// The demo with `main` overridden by `over`, serving on `http`, logging at info.
fn start(dir: &Path, main: &Path, over: &Path, http: u16) -> Daemon {
    let over = over.display().to_string();
    Daemon::start_with(
        dir,
        &demo_args(
            main,
            &["--override", &over, "--size", "320x180", "--fps", "15"],
        ),
        &[INFO_LOG],
        http,
    )
}

/// Waits until the encoder runs and input flows.
fn wait_streaming(daemon: &Daemon) -> Option<serde_json::Value> {
    daemon.try_wait_status(START, input_flowing)
}

fn stop(mut daemon: Daemon) {
    let exit = daemon.terminate(Duration::from_secs(20));
    assert_eq!(exit, Some(0), "{}", daemon.log_text());
}

#[test]
fn an_override_with_only_camera_keeps_the_main_ladder_and_server() {
    let dir = temp_dir("override-camera-only");
    let (main, over) = (dir.join("main.toml"), dir.join("boot.toml"));
    let http = free_tcp_port();
    write(&main, &config_text(free_udp_port(), http, 4));
    // What a user writes on the boot partition: the camera, nothing else. The
    // demo camera sends from 127.0.0.1, so its datagrams are now refused.
    write(&over, "[camera]\naddress = \"127.0.0.2\"\n");
    let daemon = start(&dir, &main, &over, http);
    let status = daemon
        .try_wait_status(START, |s| {
            s["source"]["foreign_datagrams"].as_u64() > Some(0) && s["encoder"]["pid"].is_number()
        })
        .unwrap_or_else(|| panic!("not serving on the main file's port\n{}", daemon.log_text()));
    // The override's camera is in force...
    let source = &status["source"];
    assert_eq!(source["camera_address"], "127.0.0.2", "{status}");
    assert_eq!(source["state"], "waiting", "{status}");
    // ...and the main file's one rung, not the built-in four (1280x720 first).
    let e = &status["encoder"];
    assert_eq!(
        (&e["width"], &e["height"], &e["fps"], &e["bitrate_kbps"]),
        (&320.into(), &180.into(), &15.into(), &300.into()),
        "{status}"
    );
    assert_eq!(status["encoders"].as_array().map(Vec::len), Some(1));
    assert_eq!(status["http"]["max_viewers"], 4);
    assert!(
        daemon.log_text().contains(&format!(
            "configuration: {} laid over {}",
            over.display(),
            main.display()
        )),
        "{}",
        daemon.log_text()
    );
    stop(daemon);
}

#[test]
fn check_config_prints_the_layered_configuration_and_names_a_bad_override() {
    let dir = temp_dir("override-check-config");
    let (main, over) = (dir.join("main.toml"), dir.join("boot.toml"));
    write(&main, &config_text(free_udp_port(), free_tcp_port(), 4));
    write(&over, "[camera]\nkind = \"gopro-legacy\"\n");
    let check = || {
        let out = std::process::Command::new(BIN)
            .args(["check-config", main.to_str().unwrap(), "--override"])
            .arg(&over)
            .output()
            .unwrap();
        let stdout = String::from_utf8_lossy(&out.stdout).to_string();
        let stderr = String::from_utf8_lossy(&out.stderr).to_string();
        (out.status.code(), stdout, stderr)
    };
    let (code, stdout, stderr) = check();
    assert_eq!(code, Some(0), "{stderr}");
    let printed: toml::Table = toml::from_str(&stdout).unwrap();
    assert_eq!(printed["camera"]["kind"].as_str(), Some("gopro-legacy"));
    let ladder = printed["ladder"].as_array().unwrap();
    assert_eq!(ladder.len(), 1, "{stdout}");
    assert_eq!(ladder[0]["width"].as_integer(), Some(320));
    assert_eq!(printed["server"]["max_viewers"].as_integer(), Some(4));

    // A typo: named at its place in the override, exit 2, and the main file
    // alone is what the daemon would run (and what is printed).
    write(
        &over,
        "[camera]\nkind = \"gopro-legacy\"\nadress = \"10.5.5.9\"\n",
    );
    let (code, stdout, stderr) = check();
    assert_eq!(code, Some(2), "{stdout}");
    assert!(
        stderr.starts_with(&format!("{}:3:1: unknown field `adress`", over.display())),
        "{stderr}"
    );
    let printed: toml::Table = toml::from_str(&stdout).unwrap();
    assert_eq!(printed["camera"]["kind"].as_str(), Some("auto"));
    assert_eq!(printed["ladder"].as_array().map(Vec::len), Some(1));
}

#[test]
fn bad_override_is_reported_and_ignored() {
    let dir = temp_dir("override-bad");
    let (main, over) = (dir.join("main.toml"), dir.join("boot.toml"));
    let main_http = free_tcp_port();
    write(&main, &config_text(free_udp_port(), main_http, 4));
    // A typo on line 3, column 1, as made on a laptop in the field.
    write(
        &over,
        "[server]\nlisten = \"127.0.0.1:1\"\nmax_veiwers = 2\n",
    );
    let daemon = start(&dir, &main, &over, main_http);
    let status = wait_streaming(&daemon);
    assert!(
        status.is_some(),
        "not serving on the main port\n{}",
        daemon.log_text()
    );
    let log = daemon.log_text();
    assert!(
        log.contains(&format!(
            "{}:3:1: unknown field `max_veiwers`",
            over.display()
        )),
        "{log}"
    );
    assert!(
        log.contains(&format!("configuration: {}", main.display())),
        "{log}"
    );
    stop(daemon);
}

#[test]
fn both_bad_refuse_to_start_with_exit_2() {
    let dir = temp_dir("override-both-bad");
    let (main, over) = (dir.join("main.toml"), dir.join("boot.toml"));
    write(&main, "[server]\nlisten = \"nowhere\"\n");
    write(&over, "[encoder\n");
    // It never serves: no port.
    let mut daemon = start(&dir, &main, &over, 0);
    let exit = daemon.wait_exit(Duration::from_secs(10));
    assert_eq!(exit.and_then(|s| s.code()), Some(2));
    let log = daemon.log_text();
    assert!(log.contains(&format!("{}:1:", over.display())), "{log}");
    assert!(log.contains(&format!("{}:2:", main.display())), "{log}");
}

#[test]
fn missing_override_is_normal() {
    let dir = temp_dir("override-missing");
    let main = dir.join("main.toml");
    let http = free_tcp_port();
    write(&main, &config_text(free_udp_port(), http, 4));
    let absent = dir.join("no-such-boot.toml");
    let daemon = start(&dir, &main, &absent, http);
    let status = wait_streaming(&daemon).unwrap_or_else(|| panic!("{}", daemon.log_text()));
    // The main file alone: its one rung, named as the configuration.
    assert_eq!(status["encoder"]["width"], 320, "{status}");
    let log = daemon.log_text();
    assert!(
        log.contains(&format!("configuration: {}\n", main.display())),
        "{log}"
    );
    assert!(!log.contains("bad config"), "{log}");
    assert!(!log.contains("laid over"), "{log}");
    stop(daemon);
}

#[test]
fn sighup_applies_a_good_file_and_keeps_the_running_config_on_a_bad_one() {
    let dir = temp_dir("override-hup");
    let (main, over) = (dir.join("main.toml"), dir.join("boot.toml"));
    let (udp, http) = (free_udp_port(), free_tcp_port());
    write(&main, &config_text(udp, http, 4));
    let daemon = start(&dir, &main, &over, http);
    assert!(wait_streaming(&daemon).is_some(), "{}", daemon.log_text());

    // An override appears with max_viewers = 1 and a different listen port:
    // the first applies now, the second is named as needing a restart.
    let other_http = free_tcp_port();
    write(&over, &config_text(udp, other_http, 1));
    daemon.signal(libc::SIGHUP);
    assert!(
        daemon.wait_for_log("reload: configuration from", Duration::from_secs(10)),
        "{}",
        daemon.log_text()
    );
    assert!(
        daemon.wait_for_log("server.listen changed", Duration::from_secs(5)),
        "{}",
        daemon.log_text()
    );
    let mut first = Viewer::open(http, "/stream.ts");
    assert_eq!(first.code, 200, "{}", first.head);
    assert!(first.read_at_least(20_000) >= 20_000);
    let second = Viewer::open(http, "/stream.ts");
    assert_eq!(
        second.code, 503,
        "max_viewers = 1 must be in force: {}",
        second.head
    );
    drop(second);

    // A half-finished edit: reported with file:line:col, the running config stays.
    write(&over, "[server]\nmax_viewers = 1\nlisten = \n");
    daemon.signal(libc::SIGHUP);
    assert!(
        daemon.wait_for_log("keeping the running configuration", Duration::from_secs(10)),
        "{}",
        daemon.log_text()
    );
    assert!(
        daemon
            .log_text()
            .contains(&format!("{}:3:", over.display())),
        "{}",
        daemon.log_text()
    );
    // Still streaming to the first viewer, and still limited to one viewer
    // (falling back to the main file would have allowed four).
    assert!(
        first.read_at_least(50_000) >= 50_000,
        "stream stopped after a bad reload"
    );
    let again = Viewer::open(http, "/stream.ts");
    assert_eq!(again.code, 503, "{}", again.head);
    drop(again);
    drop(first);
    assert_eq!(http_get(http, "/healthz").unwrap().code, 200);
    stop(daemon);
}
