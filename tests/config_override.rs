//! The boot-partition override, with the real daemon: a good override wins
//! entirely, a bad one is reported with its file:line:col and ignored, both bad
//! refuse to start, and SIGHUP applies a good file but keeps the running
//! configuration when the file is bad.

mod sysd;

use std::time::Duration;
use sysd::*;

const START: Duration = Duration::from_secs(30);

fn demo_args<'a>(main: &'a str, over: &'a str) -> Vec<&'a str> {
    vec![
        "demo",
        "--config",
        main,
        "--override",
        over,
        "--size",
        "320x180",
        "--fps",
        "15",
    ]
}

fn stop(mut daemon: Daemon) {
    daemon.signal(libc::SIGTERM);
    let exit = daemon.wait_exit(Duration::from_secs(20));
    assert_eq!(exit.and_then(|s| s.code()), Some(0), "{}", daemon.stderr());
}

#[test]
fn good_override_wins_entirely() {
    let dir = TempDir::new("override-good");
    let (main, over) = (dir.path("main.toml"), dir.path("boot.toml"));
    let (main_http, over_http) = (free_tcp_port(), free_tcp_port());
    write(&main, &config_text(free_udp_port(), main_http, 4));
    write(&over, &config_text(free_udp_port(), over_http, 4));
    let daemon = Daemon::spawn(
        &demo_args(main.to_str().unwrap(), over.to_str().unwrap()),
        &[],
    );
    let status = wait_streaming(over_http, START);
    assert!(
        status.is_some(),
        "not serving on the override's port\n{}",
        daemon.stderr()
    );
    assert!(
        http_get(main_http, "/status").is_err(),
        "the main file's port must not be used"
    );
    assert!(
        daemon
            .stderr()
            .contains(&format!("configuration: {} (override)", over.display())),
        "{}",
        daemon.stderr()
    );
    stop(daemon);
}

#[test]
fn bad_override_is_reported_and_ignored() {
    let dir = TempDir::new("override-bad");
    let (main, over) = (dir.path("main.toml"), dir.path("boot.toml"));
    let main_http = free_tcp_port();
    write(&main, &config_text(free_udp_port(), main_http, 4));
    // A typo on line 3, column 1, as made on a laptop in the field.
    write(
        &over,
        "[server]\nlisten = \"127.0.0.1:1\"\nmax_veiwers = 2\n",
    );
    let daemon = Daemon::spawn(
        &demo_args(main.to_str().unwrap(), over.to_str().unwrap()),
        &[],
    );
    let status = wait_streaming(main_http, START);
    assert!(
        status.is_some(),
        "not serving on the main port\n{}",
        daemon.stderr()
    );
    let log = daemon.stderr();
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
    let dir = TempDir::new("override-both-bad");
    let (main, over) = (dir.path("main.toml"), dir.path("boot.toml"));
    write(&main, "[server]\nlisten = \"nowhere\"\n");
    write(&over, "[encoder\n");
    let mut daemon = Daemon::spawn(
        &demo_args(main.to_str().unwrap(), over.to_str().unwrap()),
        &[],
    );
    let exit = daemon.wait_exit(Duration::from_secs(10));
    assert_eq!(exit.and_then(|s| s.code()), Some(2));
    // Give the stderr reader a moment to see the pipe's end.
    std::thread::sleep(Duration::from_millis(200));
    let log = daemon.stderr();
    assert!(log.contains(&format!("{}:1:", over.display())), "{log}");
    assert!(log.contains(&format!("{}:2:", main.display())), "{log}");
}

#[test]
fn missing_override_is_normal() {
    let dir = TempDir::new("override-missing");
    let main = dir.path("main.toml");
    let http = free_tcp_port();
    write(&main, &config_text(free_udp_port(), http, 4));
    let absent = dir.path("no-such-boot.toml");
    let daemon = Daemon::spawn(
        &demo_args(main.to_str().unwrap(), absent.to_str().unwrap()),
        &[],
    );
    assert!(wait_streaming(http, START).is_some(), "{}", daemon.stderr());
    assert!(
        !daemon.stderr().contains("bad config"),
        "{}",
        daemon.stderr()
    );
    stop(daemon);
}

#[test]
fn sighup_applies_a_good_file_and_keeps_the_running_config_on_a_bad_one() {
    let dir = TempDir::new("override-hup");
    let (main, over) = (dir.path("main.toml"), dir.path("boot.toml"));
    let (udp, http) = (free_udp_port(), free_tcp_port());
    write(&main, &config_text(udp, http, 4));
    let daemon = Daemon::spawn(
        &demo_args(main.to_str().unwrap(), over.to_str().unwrap()),
        &[],
    );
    assert!(wait_streaming(http, START).is_some(), "{}", daemon.stderr());

    // An override appears with max_viewers = 1 and a different listen port:
    // the first applies now, the second is named as needing a restart.
    let other_http = free_tcp_port();
    write(&over, &config_text(udp, other_http, 1));
    daemon.signal(libc::SIGHUP);
    assert!(
        daemon.wait_for_log("reload: configuration from", Duration::from_secs(10)),
        "{}",
        daemon.stderr()
    );
    assert!(
        daemon.wait_for_log("server.listen changed", Duration::from_secs(5)),
        "{}",
        daemon.stderr()
    );
    let mut first = Viewer::connect(http).unwrap();
    assert_eq!(first.status(), 200, "{}", first.head);
    assert!(first.read_at_least(20_000) >= 20_000);
    let second = Viewer::connect(http).unwrap();
    assert_eq!(
        second.status(),
        503,
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
        daemon.stderr()
    );
    assert!(
        daemon.stderr().contains(&format!("{}:3:", over.display())),
        "{}",
        daemon.stderr()
    );
    // Still streaming to the first viewer, and still limited to one viewer
    // (falling back to the main file would have allowed four).
    assert!(
        first.read_at_least(50_000) >= 50_000,
        "stream stopped after a bad reload"
    );
    let again = Viewer::connect(http).unwrap();
    assert_eq!(again.status(), 503, "{}", again.head);
    drop(again);
    drop(first);
    assert_eq!(http_get(http, "/healthz").unwrap().0, 200);
    stop(daemon);
}
