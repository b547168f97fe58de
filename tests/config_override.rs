//! The boot-partition override, with the real daemon: a good override wins
//! entirely, a bad one is reported with its file:line:col and ignored, both bad
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
fn good_override_wins_entirely() {
    let dir = temp_dir("override-good");
    let (main, over) = (dir.join("main.toml"), dir.join("boot.toml"));
    let (main_http, over_http) = (free_tcp_port(), free_tcp_port());
    write(&main, &config_text(free_udp_port(), main_http, 4));
    write(&over, &config_text(free_udp_port(), over_http, 4));
    let daemon = start(&dir, &main, &over, over_http);
    let status = wait_streaming(&daemon);
    assert!(
        status.is_some(),
        "not serving on the override's port\n{}",
        daemon.log_text()
    );
    assert!(
        http_get(main_http, "/status").is_err(),
        "the main file's port must not be used"
    );
    assert!(
        daemon
            .log_text()
            .contains(&format!("configuration: {} (override)", over.display())),
        "{}",
        daemon.log_text()
    );
    stop(daemon);
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
    assert!(wait_streaming(&daemon).is_some(), "{}", daemon.log_text());
    assert!(
        !daemon.log_text().contains("bad config"),
        "{}",
        daemon.log_text()
    );
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
