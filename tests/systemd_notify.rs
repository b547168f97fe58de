//! The daemon speaks systemd's notify protocol to a real socket: READY=1 once it
//! serves, STATUS= lines, WATCHDOG=1 at half of WATCHDOG_USEC, STOPPING=1 on
//! SIGTERM, then exit 0 with no ffmpeg left.

mod common;

use common::*;
use std::os::unix::net::UnixDatagram;
use std::path::Path;
use std::time::{Duration, Instant};

/// Every datagram received, with its arrival time.
struct Received(Vec<(Instant, String)>);

impl Received {
    /// Collects until what came satisfies `until`, for up to `timeout` (the
    /// caller checks what it got).
    fn collect(
        sock: &UnixDatagram,
        until: impl Fn(&[(Instant, String)]) -> bool,
        timeout: Duration,
    ) -> Received {
        let mut got = Vec::new();
        // No pause between looks: a receive waits by itself.
        poll(timeout, Duration::ZERO, || {
            if until(&got) {
                return Some(());
            }
            Received::receive(sock, &mut got);
            None
        });
        Received(got)
    }

    /// Collects for `dur`.
    fn during(sock: &UnixDatagram, dur: Duration) -> Received {
        let mut got = Vec::new();
        for_period(dur, |_| Received::receive(sock, &mut got));
        Received(got)
    }

    /// One datagram, if one comes within the socket's read timeout.
    fn receive(sock: &UnixDatagram, got: &mut Vec<(Instant, String)>) {
        let mut buf = [0u8; 4096];
        if let Ok(n) = sock.recv(&mut buf) {
            let msg = String::from_utf8_lossy(&buf[..n]).into_owned();
            eprintln!("[notify] {msg:?}");
            got.push((Instant::now(), msg));
        }
    }
}

fn has(msgs: &[(Instant, String)], line: &str) -> bool {
    msgs.iter().any(|(_, m)| m.lines().any(|l| l == line))
}

/// The demo on one 320x180@15 rung with `envs`, logging at info.
fn start_demo(dir: &Path, envs: &[(&str, &str)]) -> Daemon {
    let ports = Ports::new();
    let cfg = Config::new(&ports)
        .ladder(ONE_RUNG)
        .server("max_viewers = 4")
        .write(&dir.join("livestreamd.toml"));
    let envs: Vec<(&str, &str)> = [INFO_LOG].iter().chain(envs).copied().collect();
    Daemon::start_with(
        dir,
        &demo_args(&cfg, &["--size", "320x180", "--fps", "15"]),
        &envs,
        ports.http,
    )
}

fn run_with(notify_socket: &str, sock: &UnixDatagram, dir: &Path) {
    sock.set_read_timeout(Some(Duration::from_millis(200)))
        .unwrap();
    let mut daemon = start_demo(
        dir,
        &[
            ("NOTIFY_SOCKET", notify_socket),
            ("WATCHDOG_USEC", "1000000"),
        ],
    );
    let http = daemon.http;

    // READY=1 comes with a STATUS= in the same datagram, once HTTP listens.
    let first = Received::collect(sock, |m| has(m, "READY=1"), Duration::from_secs(20));
    assert!(
        has(&first.0, "READY=1"),
        "no READY=1; got {:?}\n{}",
        first.0,
        daemon.log_text()
    );
    let (_, ready) = first.0.iter().find(|(_, m)| m.contains("READY=1")).unwrap();
    assert!(
        ready.lines().any(|l| l.starts_with("STATUS=source ")),
        "{ready:?}"
    );
    // The listener was bound before READY=1: a request is answered at once.
    assert!(
        http_get(http, "/healthz").is_ok(),
        "HTTP not serving after READY=1"
    );

    // Pings every 0.5 s (half of WATCHDOG_USEC): at least 5 within 4 s, evenly spaced.
    let later = Received::during(sock, Duration::from_secs(4));
    let pings: Vec<Instant> = later
        .0
        .iter()
        .filter(|(_, m)| m.lines().any(|l| l == "WATCHDOG=1"))
        .map(|(t, _)| *t)
        .collect();
    assert!(
        pings.len() >= 5,
        "only {} WATCHDOG=1 in 4 s: {:?}",
        pings.len(),
        later.0
    );
    let widest = pings.windows(2).map(|w| w[1] - w[0]).max().unwrap();
    assert!(
        widest < Duration::from_millis(900),
        "gap of {widest:?} between pings (WatchdogSec would be 1 s)"
    );
    let statuses: Vec<&str> = later
        .0
        .iter()
        .flat_map(|(_, m)| m.lines())
        .filter(|l| l.starts_with("STATUS="))
        .collect();
    assert!(!statuses.is_empty());
    // Once the demo camera's video flows, the status says so, with the rung.
    let status = daemon
        .try_wait_status(Duration::from_secs(20), input_flowing)
        .expect("stream starts");
    let again = Received::collect(
        sock,
        |m| m.iter().any(|(_, s)| s.contains("STATUS=source live")),
        Duration::from_secs(5),
    );
    let live = again
        .0
        .iter()
        .flat_map(|(_, m)| m.lines())
        .find(|l| l.starts_with("STATUS=source live"))
        .unwrap_or_else(|| panic!("no live STATUS: {:?}", again.0));
    assert!(
        live.contains("rung 0 320x180@15 300 kb/s") && live.contains("0 viewer(s)"),
        "{live}"
    );
    let children = child_pids(&status);
    assert_eq!(children.len(), 2, "encoder and demo camera: {status}");

    daemon.signal(libc::SIGTERM);
    let last = Received::collect(sock, |m| has(m, "STOPPING=1"), Duration::from_secs(10));
    assert!(has(&last.0, "STOPPING=1"), "no STOPPING=1: {:?}", last.0);
    let exit = daemon
        .wait_exit(Duration::from_secs(20))
        .expect("exits after SIGTERM");
    assert_eq!(exit.code(), Some(0), "{}", daemon.log_text());
    for pid in children {
        assert!(!alive(pid), "ffmpeg {pid} outlived the daemon");
    }
}

#[test]
fn notify_on_a_path_socket() {
    let dir = temp_dir("notify");
    let path = dir.join("notify.sock");
    let sock = UnixDatagram::bind(&path).unwrap();
    run_with(path.to_str().unwrap(), &sock, &dir);
}

#[test]
fn notify_on_an_abstract_socket() {
    use std::os::linux::net::SocketAddrExt;
    let dir = temp_dir("notify-abstract");
    let name = format!("livestreamd-test-notify-{}", std::process::id());
    let addr = std::os::unix::net::SocketAddr::from_abstract_name(name.as_bytes()).unwrap();
    let sock = UnixDatagram::bind_addr(&addr).unwrap();
    run_with(&format!("@{name}"), &sock, &dir);
}

/// No usable `$NOTIFY_SOCKET`: unset, or a relative path (which systemd
/// never gives). A socket listens at that relative path: it must receive
/// nothing, and the daemon streams and stops as usual.
#[test]
fn no_usable_notify_socket_means_no_notifications_and_a_normal_run() {
    let dir = temp_dir("notify-none");
    let path = dir.join("relative.sock");
    let cwd = std::env::current_dir().unwrap();
    let relative = path
        .strip_prefix(&cwd)
        .expect("the test directory is below the working directory")
        .to_str()
        .unwrap()
        .to_string();
    let sock = UnixDatagram::bind(&path).unwrap();
    sock.set_read_timeout(Some(Duration::from_millis(200)))
        .unwrap();
    for notify in [None, Some(relative.as_str())] {
        let mut envs = vec![("WATCHDOG_USEC", "1000000")];
        envs.extend(notify.map(|n| ("NOTIFY_SOCKET", n)));
        let mut daemon = start_demo(&dir, &envs);
        assert!(
            daemon
                .try_wait_status(Duration::from_secs(20), input_flowing)
                .is_some(),
            "{}",
            daemon.log_text()
        );
        assert_eq!(daemon.terminate(Duration::from_secs(20)), Some(0));
        let got = Received::during(&sock, Duration::from_millis(500));
        assert!(
            got.0.is_empty(),
            "NOTIFY_SOCKET={notify:?}: notifications sent: {:?}",
            got.0
        );
        // Unset: not a word of systemd; unusable: said once, as a warning.
        let log = daemon.log_text();
        let said: Vec<&str> = log.lines().filter(|l| l.contains("systemd:")).collect();
        match notify {
            None => assert!(said.is_empty(), "{log}"),
            Some(n) => assert!(
                said.len() == 1
                    && said[0].contains(&format!("ignoring unusable NOTIFY_SOCKET={n}")),
                "{log}"
            ),
        }
    }
}
