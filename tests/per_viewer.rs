//! Per-viewer rungs: each phone gets the rung its own link carries, on its own
//! connection, moving between rungs at keyframes without a gap; a passthrough
//! top rung (the camera's own stream, remuxed) splices with the encoded ones;
//! the hot ladder starts rungs when wanted, bounds them, and stops unwatched ones.

mod common;

use common::netns::{self, PhoneLink};
use common::scenario::*;
use common::*;
use serde_json::Value;
use std::time::{Duration, Instant};

/// The rung each viewer receives, by viewer address host.
fn rungs_by_host(s: &Value) -> Vec<(String, i64)> {
    s["viewers"]
        .as_array()
        .map(|v| {
            v.iter()
                .map(|v| {
                    let addr = v["address"].as_str().unwrap_or("");
                    let host = addr.rsplit_once(':').map_or(addr, |h| h.0).to_string();
                    (host, v["rung"].as_i64().unwrap_or(-1))
                })
                .collect()
        })
        .unwrap_or_default()
}

fn rung_of(s: &Value, host: &str) -> i64 {
    rungs_by_host(s)
        .into_iter()
        .find(|(h, _)| h == host)
        .map_or(-1, |(_, r)| r)
}

fn widths(dir: &std::path::Path, name: &str, bytes: &[u8]) -> Vec<u32> {
    frames(dir, name, bytes).iter().map(|f| f.1).collect()
}

#[test]
#[cfg_attr(
    not(feature = "netns-tests"),
    ignore = "needs root and network namespaces: cargo test --features netns-tests (scripts/test.sh)"
)]
fn two_phones_get_different_rungs_at_once_on_their_own_connections() {
    netns::require();
    let dir = temp_dir("two-phones");
    let (daemon, port) = start_daemon(&dir, "");
    let (a, b) = (PhoneLink::create(), PhoneLink::create());
    let phone_a = PhoneClient::start(&a, port);
    let phone_b = PhoneClient::start(&b, port);
    std::thread::sleep(Duration::from_secs(6));
    // B's link carries 300 kbit/s: below the 350 kbit/s rung, above the 120 one.
    b.set_rate(300);
    let capped = Instant::now();
    println!("capped at {}", utc_now_ms());
    let s = daemon.wait_status("B on a lower rung", Duration::from_secs(20), |s| {
        rung_of(s, &b.phone_ip) >= 1
    });
    println!(
        "B on rung {} {:.1} s after the cap; rungs {:?}",
        rung_of(&s, &b.phone_ip),
        capped.elapsed().as_secs_f64(),
        rungs_by_host(&s)
    );
    std::thread::sleep(Duration::from_secs(10));
    let s = daemon.status().unwrap();
    assert_eq!(
        rung_of(&s, &a.phone_ip),
        0,
        "A's link carries the top rung: {s:#}"
    );
    assert_eq!(
        rung_of(&s, &b.phone_ip),
        2,
        "B gets the rung that fits: {s:#}"
    );
    let running: Vec<i64> = s["encoders"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["rung"].as_i64().unwrap())
        .collect();
    assert!(running.contains(&0) && running.contains(&2), "{running:?}");
    assert_eq!(
        s["viewers"].as_array().unwrap().len(),
        2,
        "each phone on its one connection"
    );
    // What the phones received: A at 640 wide throughout, B lower at the end.
    let wa = widths(&dir, "a.ts", &phone_a.bytes());
    let wb = widths(&dir, "b.ts", &phone_b.bytes());
    assert!(wa.iter().all(|w| *w == 640), "A never left the top rung");
    assert_eq!(wb.first(), Some(&640));
    assert_eq!(wb.last(), Some(&160));
    assert!(
        phone_b.last_lag() < 1.5,
        "B stays live: {:.2} s",
        phone_b.last_lag()
    );
}

/// A ladder whose top rung is the camera's own stream (the demo camera sends
/// 640x360@30), and an encoded rung below it.
const PASSTHROUGH: &str = "[[ladder]]\npassthrough = true\nwidth = 640\nheight = 360\nfps = 30\nbitrate_kbps = 3000\n\n[[ladder]]\nwidth = 320\nheight = 180\nfps = 30\nbitrate_kbps = 400\n";

fn pin(port: u16, rung: &str) {
    let r = http_request(
        port,
        format!("POST /rung?set={rung} HTTP/1.1\r\nHost: t\r\n\r\n"),
    )
    .unwrap();
    assert_eq!(r.code, 200, "{}", r.text());
}

#[test]
fn a_passthrough_rung_splices_to_and_from_an_encoded_one_without_a_gap() {
    let dir = temp_dir("passthrough");
    let ports = Ports::new();
    let config = Config::new(&ports)
        .ladder(&[])
        .extra(PASSTHROUGH)
        .write(&dir.join("livestreamd.toml"));
    let daemon = Daemon::start(&dir, &demo_args_path(&config), ports.http);
    daemon.wait_streaming();
    let s = daemon.status().unwrap();
    assert_eq!(s["encoder"]["passthrough"], true, "{:#}", s["encoder"]);
    // A viewer that reads all the time (one that stops reading moves nowhere).
    let viewer = BackgroundViewer::connect(ports.http);
    viewer.wait_bytes(100_000, Duration::from_secs(10));
    pin(ports.http, "1");
    daemon.wait_status("the viewer on rung 1", Duration::from_secs(10), |s| {
        s["viewers"][0]["rung"] == 1
    });
    let at = viewer.len();
    viewer.wait_bytes(at + 50_000, Duration::from_secs(10));
    pin(ports.http, "0");
    daemon.wait_status(
        "the viewer back on the camera's stream",
        Duration::from_secs(10),
        |s| s["viewers"][0]["rung"] == 0,
    );
    let at = viewer.len();
    viewer.wait_bytes(at + 100_000, Duration::from_secs(10));
    let frames = frames(&dir, "passthrough.ts", &viewer.bytes_from(0));
    let changes: Vec<(u32, u32)> = frames
        .windows(2)
        .filter(|w| w[0].1 != w[1].1)
        .map(|w| (w[0].1, w[1].1))
        .collect();
    let max_gap = frames
        .windows(2)
        .map(|w| w[1].0 - w[0].0)
        .fold(0.0, f64::max);
    println!(
        "changes {changes:?}, largest gap {:.1} ms over {} frames",
        max_gap * 1000.0,
        frames.len()
    );
    assert_eq!(changes, vec![(640, 320), (320, 640)]);
    assert!(
        frames.windows(2).all(|w| w[1].0 > w[0].0),
        "timestamps only go forward: no repeated frame"
    );
    assert!(
        max_gap <= 2.0 / 30.0 + 0.001,
        "gap of {:.1} ms",
        max_gap * 1000.0
    );
}

/// A rung started between two of the camera's keyframes (6 s apart here)
/// shows its first frame at once, encoded from the frames since the camera's
/// last keyframe, instead of at the camera's next keyframe: a viewer stepping
/// down to a cold rung waits for ffmpeg, not for the camera. Three rungs are
/// started 2 s apart, so had they waited for the next keyframe, one would have
/// waited 4 s or more.
#[test]
fn a_cold_rung_starts_from_the_cameras_last_keyframe_not_its_next() {
    let dir = temp_dir("cold-rung");
    let ports = Ports::new();
    let ladder = [
        (320, 180, 15, 500),
        (256, 144, 15, 300),
        (192, 108, 15, 200),
        (160, 90, 15, 120),
    ];
    let config = Config::new(&ports)
        .ladder(&ladder)
        .extra("[adapt]\nmax_encoders = 4\nidle_rung_s = 60.0\n")
        .write(&dir.join("livestreamd.toml"));
    let _camera = CameraSender::with_gop("127.0.0.1", ports.source, "testsrc", 90);
    let args = ["run", "--config", config.to_str().unwrap()];
    let daemon = Daemon::start(&dir, &args, ports.http);
    daemon.wait_streaming();
    let viewer = BackgroundViewer::connect(ports.http);
    viewer.wait_bytes(20_000, Duration::from_secs(15));
    let t0 = Instant::now();
    for rung in 1..=3u32 {
        let at = Duration::from_secs(2 * u64::from(rung - 1));
        std::thread::sleep(at.saturating_sub(t0.elapsed()));
        pin(ports.http, &rung.to_string());
    }
    let s = daemon.wait_status(
        "a first frame from every rung",
        Duration::from_secs(20),
        |s| {
            let e = s["encoders"].as_array().unwrap();
            e.len() == 4 && e.iter().all(|e| e["first_frame_s"].is_number())
        },
    );
    let firsts: Vec<(i64, f64)> = s["encoders"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| {
            (
                e["rung"].as_i64().unwrap(),
                e["first_frame_s"].as_f64().unwrap(),
            )
        })
        .collect();
    println!("first frame after each encoder's start (rung, s): {firsts:?}");
    for (rung, first) in firsts.iter().filter(|(rung, _)| *rung > 0) {
        assert!(
            *first < 2.0,
            "rung {rung}: first frame {first:.2} s after its start; the camera's keyframes are 6 s apart"
        );
    }
    daemon.wait_status("the viewer on rung 3", Duration::from_secs(10), |s| {
        s["viewers"][0]["rung"] == 3
    });
}

#[test]
fn the_hot_ladder_is_bounded_and_unwatched_rungs_stop() {
    let daemon = demo_streaming(
        "hot-ladder",
        "[adapt]\nmax_encoders = 2\nidle_rung_s = 2.0\n",
    );
    let http = daemon.http;
    assert_eq!(
        running_rungs(&daemon.status().unwrap()),
        vec![0],
        "the start rung only"
    );
    let viewer = BackgroundViewer::connect(http);
    viewer.wait_bytes(20_000, Duration::from_secs(10));
    // The operator asks for rung 1: it is started and the viewer moves there.
    pin(http, "1");
    let s = daemon.wait_status("rung 1 watched", Duration::from_secs(10), |s| {
        s["viewers"][0]["rung"] == 1
    });
    assert_eq!(running_rungs(&s), vec![0, 1]);
    // Back to rung 0: rung 1 is stopped once nobody watched it for idle_rung_s.
    pin(http, "0");
    let t0 = Instant::now();
    let s = daemon.wait_status("rung 1 stopped", Duration::from_secs(10), |s| {
        s["viewers"][0]["rung"] == 0 && running_rungs(s) == vec![0]
    });
    println!(
        "unwatched rung stopped after {:.1} s",
        t0.elapsed().as_secs_f64()
    );
    assert!(t0.elapsed() >= Duration::from_secs(2));
    assert_eq!(s["viewers"].as_array().unwrap().len(), 1);
    drop(viewer);
}

#[test]
fn a_standby_rung_is_encoded_while_someone_watches_a_better_one() {
    let daemon = demo_streaming("standby", "[adapt]\nstandby_rung = 1\nidle_rung_s = 1.0\n");
    let http = daemon.http;
    assert_eq!(
        running_rungs(&daemon.status().unwrap()),
        vec![0],
        "nobody watches"
    );
    let mut viewer = Viewer::connect(http);
    viewer.read_for(Duration::from_secs(2));
    daemon.wait_status("the standby rung started", Duration::from_secs(10), |s| {
        running_rungs(s) == vec![0, 1]
    });
    // Unwatched, it is kept for as long as the viewer stays above it.
    std::thread::sleep(Duration::from_secs(3));
    let s = daemon.status().unwrap();
    assert_eq!(running_rungs(&s), vec![0, 1], "kept past idle_rung_s");
    assert_eq!(s["viewers"][0]["rung"], 0);
    drop(viewer); // closes its connection
    daemon.wait_status(
        "stopped with nobody above it",
        Duration::from_secs(10),
        |s| running_rungs(s) == vec![0],
    );
}

#[test]
fn with_max_encoders_reached_a_viewer_shares_a_running_rung() {
    let daemon = demo_streaming("max-encoders", "[adapt]\nmax_encoders = 1\n");
    let http = daemon.http;
    let viewer = BackgroundViewer::connect(http);
    viewer.wait_bytes(20_000, Duration::from_secs(10));
    pin(http, "1");
    std::thread::sleep(Duration::from_secs(3));
    let s = daemon.status().unwrap();
    assert_eq!(
        s["encoders"].as_array().unwrap().len(),
        1,
        "{:#}",
        s["encoders"]
    );
    assert_eq!(
        s["viewers"][0]["rung"], 0,
        "no room for rung 1: it shares rung 0"
    );
    // And it keeps its picture.
    let at = viewer.len();
    viewer.wait_bytes(at + 10_000, Duration::from_secs(5));
}

/// The demo at 640x360 on the small ladder with `adapt` appended, in a fresh
/// `temp_dir(name)`, once it streams.
fn demo_streaming(name: &str, adapt: &str) -> Daemon {
    let dir = temp_dir(name);
    let ports = Ports::new();
    let config = Config::new(&ports)
        .extra(adapt)
        .write(&dir.join("livestreamd.toml"));
    let daemon = Daemon::start(&dir, &demo_args_path(&config), ports.http);
    daemon.wait_streaming();
    daemon
}

/// `demo --config FILE` at 640x360.
fn demo_args_path(config: &std::path::Path) -> Vec<String> {
    demo_args(config, &["--size", "640x360"])
}

/// Wall-clock time with milliseconds, to read beside the daemon's log.
fn utc_now_ms() -> String {
    std::process::Command::new("date")
        .args(["-u", "+%H:%M:%S.%3N"])
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
        .unwrap_or_default()
}

/// The rungs with a running encoder, in a `/status` document.
fn running_rungs(s: &Value) -> Vec<i64> {
    s["encoders"]
        .as_array()
        .map(|e| e.iter().map(|e| e["rung"].as_i64().unwrap()).collect())
        .unwrap_or_default()
}
