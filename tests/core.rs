//! The core, end to end: simulated camera → daemon → ffmpeg → hub → HTTP viewers.
//! Real ffmpeg, real sockets, real signals.

mod common;

use common::*;
use std::time::{Duration, Instant};

#[test]
fn a_viewer_gets_h264_at_the_start_rung() {
    let (dir, daemon) = Daemon::small_demo("start-rung", "");
    daemon.wait_streaming();
    let mut viewer = Viewer::connect(daemon.http);
    let n = viewer.read_for(Duration::from_secs(4));
    assert!(n > 50_000, "only {n} bytes in 4 s");
    assert_eq!(
        probe(&dir, "start.ts", &viewer.received),
        ("h264".to_string(), 320, 180)
    );
    assert!(
        count_frames(&dir, "start.ts", &viewer.received) > 60,
        "frames decode from the first keyframe on"
    );
    let status = daemon.status().unwrap();
    assert_eq!(status["encoder"]["rung"], 0);
    assert_eq!(status["source"]["state"], "live");
    assert_eq!(status["viewers"].as_array().unwrap().len(), 1);
    assert!(status["viewers"][0]["bytes_sent"].as_u64().unwrap() > 0);
    let r = http_get(daemon.http, "/healthz").unwrap();
    assert_eq!(r.code, 200, "{}", r.text());
}

#[test]
fn the_start_rung_comes_from_the_config() {
    let dir = temp_dir("start-rung-1");
    let ports = Ports::new();
    let config = write_config(&dir, &ports, "");
    let text = std::fs::read_to_string(&config)
        .unwrap()
        .replace("[encoder]\n", "[encoder]\nstart_rung = 1\n");
    std::fs::write(&config, text).unwrap();
    let daemon = Daemon::demo(&dir, &config, ports.http);
    daemon.wait_streaming();
    let mut viewer = Viewer::connect(ports.http);
    viewer.read_for(Duration::from_secs(3));
    assert_eq!(
        probe(&dir, "rung1.ts", &viewer.received),
        ("h264".to_string(), 160, 90)
    );
}

#[test]
fn a_stalled_viewer_neither_slows_the_others_nor_grows_memory() {
    let (dir, daemon) = Daemon::small_demo("three-viewers", "");
    daemon.wait_streaming();
    // The stalled viewer asks for the stream and then never reads again.
    let _stalled = Viewer::connect_with_rcvbuf(daemon.http, Some(4096));
    let mut a = Viewer::connect(daemon.http);
    let mut b = Viewer::connect(daemon.http);
    a.read_for(Duration::from_secs(2));
    b.read_for(Duration::from_secs(1));
    let rss_start = rss_kib(daemon.pid());
    let mut rss_max = rss_start;
    let (mut got_a, mut got_b) = (0, 0);
    let secs = for_period(Duration::from_secs(12), |_| {
        got_a += a.read_for(Duration::from_millis(500));
        got_b += b.read_for(Duration::from_millis(500));
        rss_max = rss_max.max(rss_kib(daemon.pid()));
    })
    .as_secs_f64();
    let (rate_a, rate_b) = (
        got_a as f64 * 8.0 / secs / 1000.0,
        got_b as f64 * 8.0 / secs / 1000.0,
    );
    println!("reading viewers: {rate_a:.0} and {rate_b:.0} kbit/s; daemon RSS {rss_start} -> max {rss_max} KiB");
    // The rung is 600 kbit/s; the readers must keep getting the live stream.
    assert!(
        rate_a > 150.0 && rate_b > 150.0,
        "readers slowed down: {rate_a:.0} / {rate_b:.0} kbit/s"
    );
    let status = daemon.status().unwrap();
    let viewers = status["viewers"].as_array().unwrap();
    assert_eq!(
        viewers.len(),
        3,
        "the stalled viewer is still connected: {viewers:?}"
    );
    assert!(
        rss_max < rss_start + 16 * 1024,
        "memory grew: {rss_start} -> {rss_max} KiB"
    );
    // Both readers stayed live: their bytes decode and their lag is small.
    for v in viewers
        .iter()
        .filter(|v| v["bytes_sent"].as_u64().unwrap() > 100_000)
    {
        assert!(
            v["lag_ms"].as_u64().unwrap() < 1500,
            "reader fell behind: {v}"
        );
    }
    assert_eq!(probe(&dir, "a.ts", &a.received).1, 320);
}

#[test]
fn a_killed_encoder_is_restarted_and_the_same_viewer_gets_video_again() {
    let (dir, daemon) = Daemon::small_demo("kill-encoder", "");
    let status = daemon.wait_streaming();
    let old_pid = status["encoder"]["pid"].as_i64().unwrap();
    let mut viewer = Viewer::connect(daemon.http);
    assert!(viewer.read_for(Duration::from_secs(2)) > 0);
    unsafe { libc::kill(old_pid as i32, libc::SIGKILL) };
    let status = daemon.wait_status("a restarted encoder", Duration::from_secs(15), |s| {
        s["encoder"]["restarts"].as_u64() >= Some(1)
            && s["encoder"]["pid"].as_i64().is_some_and(|p| p != old_pid)
    });
    assert!(
        status["encoder"]["last_exit"]
            .as_str()
            .unwrap()
            .contains("signal 9"),
        "{status}"
    );
    let before = viewer.received.len();
    let t0 = Instant::now();
    let mut after = 0;
    // No pause between looks: the viewer reads half a second each time.
    poll(Duration::from_secs(10), Duration::ZERO, || {
        after += viewer.read_for(Duration::from_millis(500));
        (after >= 50_000).then_some(())
    });
    assert!(
        after >= 50_000,
        "the same connection got only {after} bytes after the restart"
    );
    println!(
        "video again on the same connection {:.1} s after the restart was seen",
        t0.elapsed().as_secs_f64()
    );
    let tail = &viewer.received[before..];
    assert!(
        count_frames(&dir, "after-restart.ts", tail) > 10,
        "video after the restart decodes"
    );
    assert!(
        daemon.log_text().contains("killed by signal 9"),
        "the exit is logged"
    );
}

/// The encoder's and the demo camera's pids; both must be there and alive.
fn live_child_pids(status: &serde_json::Value) -> Vec<i64> {
    let pids = child_pids(status);
    assert_eq!(pids.len(), 2, "{status}");
    assert!(pids.iter().all(|p| alive(*p)));
    pids
}

#[test]
fn sigterm_exits_zero_quickly_and_leaves_no_child() {
    let (_dir, mut daemon) = Daemon::small_demo("sigterm", "");
    let pids = live_child_pids(&daemon.wait_streaming());
    let _viewer = Viewer::connect(daemon.http);
    let t0 = Instant::now();
    daemon.signal(libc::SIGTERM);
    let status = daemon
        .wait_exit(Duration::from_secs(5))
        .expect("exit within 5 s of SIGTERM");
    println!(
        "exited {status} {:.2} s after SIGTERM",
        t0.elapsed().as_secs_f64()
    );
    assert_eq!(status.code(), Some(0));
    assert!(
        wait_gone(&pids, Duration::from_millis(500)),
        "children left: {pids:?}"
    );
}

#[test]
fn sigint_stops_like_sigterm() {
    let (_dir, mut daemon) = Daemon::small_demo("sigint", "");
    let pids = live_child_pids(&daemon.wait_streaming());
    assert_eq!(daemon.stop(libc::SIGINT, Duration::from_secs(5)), Some(0));
    assert!(
        wait_gone(&pids, Duration::from_millis(500)),
        "children left: {pids:?}"
    );
}

#[test]
fn sigkill_of_the_daemon_leaves_no_child() {
    let (_dir, mut daemon) = Daemon::small_demo("sigkill", "");
    let pids = live_child_pids(&daemon.wait_streaming());
    daemon.signal(libc::SIGKILL);
    daemon.wait_exit(Duration::from_secs(5)).expect("killed");
    assert!(
        wait_gone(&pids, Duration::from_secs(3)),
        "children outlived a SIGKILLed daemon: {pids:?}"
    );
}

#[test]
fn a_missing_ffmpeg_is_reported_and_retried_without_crashing() {
    let dir = temp_dir("no-ffmpeg");
    let ports = Ports::new();
    let config = write_config(&dir, &ports, "");
    let text = std::fs::read_to_string(&config).unwrap().replace(
        "[encoder]\n",
        "[encoder]\nffmpeg = \"/nonexistent/ffmpeg\"\n",
    );
    std::fs::write(&config, text).unwrap();
    let mut daemon = Daemon::start(
        &dir,
        &["run", "--config", config.to_str().unwrap()],
        ports.http,
    );
    let status = daemon.wait_status("the failure in /status", Duration::from_secs(10), |s| {
        s["encoder"]["restarts"].as_u64() >= Some(2)
    });
    assert!(
        status["encoder"]["last_exit"]
            .as_str()
            .unwrap()
            .contains("cannot start"),
        "{status}"
    );
    assert_eq!(http_get(ports.http, "/healthz").unwrap().code, 503);
    assert_eq!(daemon.terminate(Duration::from_secs(5)), Some(0));
}

#[test]
fn a_busy_port_is_a_clear_error() {
    let dir = temp_dir("busy-port");
    let ports = Ports::new();
    let _taken = std::net::TcpListener::bind(("127.0.0.1", ports.http)).unwrap();
    let config = write_config(&dir, &ports, "");
    let mut daemon = Daemon::start(
        &dir,
        &["run", "--config", config.to_str().unwrap()],
        ports.http,
    );
    let status = daemon.wait_exit(Duration::from_secs(5)).expect("exits");
    assert_eq!(status.code(), Some(1));
    assert!(
        daemon
            .log_text()
            .contains(&format!("cannot serve HTTP on 127.0.0.1:{}", ports.http)),
        "{}",
        daemon.log_text()
    );
}

#[test]
fn a_reload_with_a_new_ladder_reencodes_without_dropping_the_viewer() {
    let (dir, daemon) = Daemon::small_demo("reload-ladder", "[adapt]\nmode = \"fixed\"\n");
    let config = dir.join("livestreamd.toml");
    daemon.wait_streaming();
    let mut viewer = Viewer::connect(daemon.http);
    viewer.read_for(Duration::from_secs(2));
    let text = std::fs::read_to_string(&config).unwrap().replacen(
        "width = 320\nheight = 180",
        "width = 256\nheight = 144",
        1,
    );
    std::fs::write(&config, text).unwrap();
    daemon.signal(libc::SIGHUP);
    let status = daemon.wait_status("the re-encoded rung", Duration::from_secs(15), |s| {
        s["encoder"]["width"] == 256
    });
    assert_eq!(status["encoder"]["rung"], 0);
    // The viewer moves to the new encoder at its first keyframe after what it
    // was sent: its start, catching up with the camera, and one keyframe interval.
    let widths = poll(Duration::from_secs(10), Duration::ZERO, || {
        viewer.read_for(Duration::from_secs(1));
        let widths: Vec<u32> = frames(&dir, "reload.ts", &viewer.received)
            .iter()
            .map(|f| f.1)
            .collect();
        (widths.last() == Some(&256)).then_some(widths)
    })
    .unwrap_or_default();
    assert_eq!(widths.first(), Some(&320));
    assert_eq!(
        widths.last(),
        Some(&256),
        "the same connection carries the new size"
    );
    // A bad file on the next reload changes nothing, once the daemon has read it.
    std::fs::write(&config, "[encoder]\npreset = 3\n").unwrap();
    daemon.signal(libc::SIGHUP);
    assert!(
        daemon.wait_for_log("livestreamd.toml:2:10", Duration::from_secs(10)),
        "the bad file is named: {}",
        daemon.log_text()
    );
    let status = daemon.status().unwrap();
    assert_eq!(status["encoder"]["width"], 256);
}
