//! Camera control end to end, with real processes: the built `livestreamd` binary runs both as
//! the daemon and as `fake-gopro --model …`, on free loopback ports, with real ffmpeg on both
//! sides. Nothing here contacts 10.5.5.9: every camera address is 127.0.0.1 (tests/camera_netns.rs
//! puts cameras at their real addresses in network namespaces).

mod common;

use common::*;
use serde_json::Value;
use std::path::{Path, PathBuf};
use std::thread;
use std::time::{Duration, Instant};

fn write_config(dir: &Path, p: &Ports, cam: &CameraPorts, camera: &str) -> PathBuf {
    Config::new(p)
        .source("stall_timeout_s = 2.0")
        .encoder("keyframe_interval_s = 1.0")
        .ladder(ONE_RUNG)
        .extra(&format!(
            r#"[camera]
address = "127.0.0.1"
http_port = {http}
keepalive_port = {udp}
keepalive_interval_s = 1.0
request_timeout_s = 1.0
retry_initial_s = 0.5
retry_max_s = 2.0
{camera}"#,
            http = cam.http,
            udp = cam.keepalive,
        ))
        .write(&dir.join("livestreamd.toml"))
}

fn start_daemon(dir: &Path, config: &Path, p: &Ports) -> Daemon {
    Daemon::start_with(
        dir,
        &["run", "--config", &config.display().to_string()],
        &[INFO_LOG],
        p.http,
    )
}

/// A `fake-gopro` and the daemon that controls it, once the daemon reports the camera live.
struct LiveCamera {
    dir: PathBuf,
    p: Ports,
    gopro: CameraPorts,
    camera: FakeGopro,
    daemon: Daemon,
    /// The `/status` that showed the camera live.
    status: Value,
}

/// Emulates a camera of `model` (`hero4`, `hero12`, …; `extra`: more emulator arguments) in a
/// fresh `temp_dir(name)`; `camera` is the daemon's `[camera]` kind and mode.
fn live_camera(name: &str, model: &str, camera: &str) -> LiveCamera {
    live_camera_with(name, model, &[], camera)
}

fn live_camera_with(name: &str, model: &str, extra: &[&str], camera: &str) -> LiveCamera {
    let dir = temp_dir(name);
    let p = Ports::new();
    let gopro = CameraPorts::new();
    let fake = FakeGopro::start_with(&dir, model, &p, &gopro, extra);
    let config = write_config(&dir, &p, &gopro, camera);
    let daemon = start_daemon(&dir, &config, &p);
    let status = daemon.wait_status("a live camera", Duration::from_secs(20), |s| {
        s["camera"]["state"] == "live"
    });
    LiveCamera {
        dir,
        p,
        gopro,
        camera: fake,
        daemon,
        status,
    }
}

/// Saves what arrived and checks that ffprobe decodes H.264 at the ladder's size.
fn assert_decodes(viewer: &BackgroundViewer, dir: &Path, name: &str) {
    let bytes = viewer.bytes_from(0);
    let (codec, width, height) = probe(dir, name, &bytes);
    assert_eq!(codec, "h264");
    assert_eq!((width, height), (320, 180));
    let frames = count_frames(dir, name, &bytes);
    assert!(frames >= 10, "only {frames} frames decoded");
}

/// Video frame timestamps (s) of the bytes from `from` on (aligned down to a TS packet).
fn frame_pts(viewer: &BackgroundViewer, from: usize, dir: &Path, name: &str) -> Vec<f64> {
    packet_pts(dir, name, &viewer.bytes_from(from - from % 188))
}

/// The emulator's record, parsed.
fn record(path: &Path) -> Vec<Value> {
    std::fs::read_to_string(path)
        .unwrap_or_default()
        .lines()
        .filter_map(|l| serde_json::from_str(l).ok())
        .collect()
}

fn http_requests<'a>(rec: &'a [Value], path: &str) -> Vec<&'a Value> {
    rec.iter()
        .filter(|e| e["type"] == "http" && e["path"] == path)
        .collect()
}

/// Gaps between consecutive entries, in seconds.
fn gaps(entries: &[&Value]) -> Vec<f64> {
    entries
        .windows(2)
        .map(|w| w[1]["t"].as_f64().unwrap() - w[0]["t"].as_f64().unwrap())
        .collect()
}

/// The keep-alives in the emulator's record: UDP datagrams (legacy) or
/// requests to `/gopro/camera/keep_alive` (Open GoPro).
fn keepalives(rec: &[Value]) -> Vec<&Value> {
    rec.iter()
        .filter(|e| e["type"] == "udp" || e["path"] == "/gopro/camera/keep_alive")
        .collect()
}

/// Waits until the camera has recorded `more` keep-alives than it had.
fn wait_keepalives(record_path: &Path, more: usize) {
    let had = keepalives(&record(record_path)).len();
    wait_until(
        &format!("{more} more keep-alives at the camera"),
        Duration::from_secs(10),
        || (keepalives(&record(record_path)).len() >= had + more).then_some(()),
    );
}

fn assert_interval_about(gaps: &[f64], expected: f64, what: &str) {
    assert!(gaps.len() >= 3, "too few {what}: {gaps:?}");
    for g in gaps {
        assert!(
            (g - expected).abs() < 0.35,
            "{what} not every {expected} s: gaps {gaps:?}"
        );
    }
}

#[test]
fn legacy_camera_is_started_kept_alive_and_its_video_reaches_a_viewer() {
    let LiveCamera {
        dir,
        p,
        camera,
        mut daemon,
        status,
        ..
    } = live_camera("camera-legacy", "hero4", "kind = \"gopro-legacy\"");
    assert_eq!(status["camera"]["kind"], "gopro-legacy");
    assert_eq!(
        status["camera"]["model"], "HERO4 Black",
        "asked with /gp/gpControl"
    );
    assert_eq!(status["camera"]["firmware"], "HD4.02.05.00.00");
    assert_eq!(status["camera"]["mode"], "live-view");
    let viewer = BackgroundViewer::connect(p.http);
    viewer.wait_bytes(60_000, Duration::from_secs(20));
    // Several keep-alives go by while the camera is live.
    wait_keepalives(&camera.record, 4);
    assert_decodes(&viewer, &dir, "viewer.ts");

    let rec = record(&camera.record);
    let starts = http_requests(&rec, "/gp/gpControl/execute");
    assert_eq!(starts.len(), 1, "one start command while live: {starts:?}");
    assert_eq!(starts[0]["query"], "p1=gpStream&a1=proto_v2&c1=restart");
    let keepalives = keepalives(&rec);
    for k in &keepalives {
        assert_eq!(k["data"], "_GPHD_:0:0:2:0.000000\n");
        // From the daemon's source socket: the camera streams back to the keep-alive's sender.
        assert_eq!(k["from"], format!("127.0.0.1:{}", p.source));
    }
    assert_interval_about(&gaps(&keepalives), 1.0, "keep-alives");
    assert!(
        !rec.iter().any(|e| e["event"] == "stream_stop"),
        "the camera never timed out: {rec:#?}"
    );
    assert_eq!(daemon.terminate(Duration::from_secs(10)), Some(0));
}

#[test]
fn open_gopro_preview_is_started_kept_alive_streamed_and_stopped_on_shutdown() {
    let LiveCamera {
        dir,
        p,
        camera,
        mut daemon,
        ..
    } = live_camera(
        "camera-opengopro",
        "hero12",
        "kind = \"open-gopro\"\nmode = \"preview\"",
    );
    let viewer = BackgroundViewer::connect(p.http);
    viewer.wait_bytes(60_000, Duration::from_secs(20));
    wait_keepalives(&camera.record, 4);
    assert_decodes(&viewer, &dir, "viewer.ts");

    let s = daemon.status().unwrap();
    assert!(s["camera"]["keepalives"].as_u64().unwrap() >= 3, "{s:#}");
    assert_eq!(s["camera"]["failures"], 0, "{s:#}");

    let exit = daemon.terminate(Duration::from_secs(10));
    assert_eq!(exit, Some(0), "clean shutdown");
    let rec = record(&camera.record);
    let starts = http_requests(&rec, "/gopro/camera/stream/start");
    assert_eq!(starts.len(), 1, "{rec:#?}");
    // The daemon does not listen on 8554, and HERO12 takes `port`: it names its port.
    assert_eq!(starts[0]["query"], format!("port={}", p.source));
    let keepalives = http_requests(&rec, "/gopro/camera/keep_alive");
    assert_interval_about(&gaps(&keepalives), 1.0, "keep-alives");
    // As GoPro's SDK does: the preview is stopped before it is started; and once on shutdown.
    let stops = http_requests(&rec, "/gopro/camera/stream/stop");
    assert_eq!(
        stops.len(),
        2,
        "stop before the start and on shutdown: {rec:#?}"
    );
    assert!(stops[0]["t"].as_f64() <= starts[0]["t"].as_f64());
    let last_keepalive = keepalives.last().unwrap()["t"].as_f64().unwrap();
    assert!(stops[1]["t"].as_f64().unwrap() >= last_keepalive);
    assert!(rec
        .iter()
        .any(|e| e["event"] == "stream_stop" && e["detail"]["reason"] == "preview stream stop"));
}

#[test]
fn a_ten_second_stall_is_reported_and_the_same_viewer_gets_video_again() {
    let LiveCamera {
        dir,
        p,
        gopro,
        camera,
        mut daemon,
        ..
    } = live_camera("camera-stall", "hero4", "kind = \"gopro-legacy\"");
    let viewer = BackgroundViewer::connect(p.http);
    viewer.wait_bytes(30_000, Duration::from_secs(20));

    let r = http_method(gopro.http, "POST", "/_test/pause?s=10").unwrap();
    assert_eq!(r.code, 200);
    let paused_at = Instant::now();
    let s = daemon.wait_status("a stalled camera", Duration::from_secs(8), |s| {
        s["camera"]["state"] == "stalled"
    });
    assert_eq!(s["source"]["state"], "stalled", "{s:#}");
    assert!(s["camera"]["stalled_since"].as_f64().is_some(), "{s:#}");
    let bytes_in_stall = viewer.len();

    let s = daemon.wait_status("the camera live again", Duration::from_secs(25), |s| {
        s["camera"]["state"] == "live"
    });
    assert!(
        paused_at.elapsed() >= Duration::from_secs(9),
        "live again before the pause ended"
    );
    assert!(s["camera"]["stalled_since"].is_null(), "{s:#}");
    assert_eq!(s["source"]["state"], "live");
    // The daemon was not restarted and the viewer kept its one connection.
    assert!(daemon.proc.try_wait().is_none());
    let after_resume = viewer.len();
    let resumed_at = Instant::now();
    viewer.wait_bytes(after_resume + 40_000, Duration::from_secs(20));
    // Watched 3 s more: the connection stays, and the frames since the resume
    // are counted against the wall time below.
    thread::sleep(Duration::from_secs(3));
    assert!(!viewer.ended());
    assert!(after_resume >= bytes_in_stall);
    assert_decodes(&viewer, &dir, "viewer.ts");
    // The viewer is live again, not a stall's length behind: no burst of frames standing in
    // for the gap (the encoder restarts on the camera's new timeline).
    let pts = frame_pts(&viewer, after_resume, &dir, "after.ts");
    let wall = resumed_at.elapsed().as_secs_f64();
    assert!(pts.len() >= 15, "too few frames after resume: {pts:?}");
    assert!(
        (pts.len() as f64) <= (wall + 2.0) * 15.0,
        "{} frames in {wall:.1} s after resume: a burst",
        pts.len()
    );

    // While stalled the start command was re-sent, with backoff (0.5, 1, 2, 2, ... s) over
    // about 8 s of stall: a handful, not a flood.
    let rec = record(&camera.record);
    let starts = http_requests(&rec, "/gp/gpControl/execute");
    assert!(
        (3..=10).contains(&starts.len()),
        "{} start commands: {starts:?}",
        starts.len()
    );
    let retry_gaps = gaps(&starts[1..]);
    assert!(
        retry_gaps.iter().all(|g| *g >= 0.4),
        "retries too close: {retry_gaps:?}"
    );
    assert!(
        daemon.log_text().matches("stalled").count() == 1,
        "stall logged once"
    );
}

#[test]
fn an_unreachable_camera_is_retried_with_backoff_and_streams_once_it_appears() {
    let dir = temp_dir("camera-unreachable");
    let p = Ports::new();
    let gopro = CameraPorts::new();
    let config = write_config(
        &dir,
        &p,
        &gopro,
        "kind = \"open-gopro\"\nmode = \"webcam\"\nresolution = 720\nfov = \"linear\"",
    );
    let mut daemon = start_daemon(&dir, &config, &p);

    // Nothing listens on the camera's port for 8 s.
    thread::sleep(Duration::from_secs(8));
    assert!(daemon.proc.try_wait().is_none(), "the daemon keeps running");
    let s = daemon
        .status()
        .expect("/status answers while the camera is away");
    let cam = &s["camera"];
    assert_eq!(cam["state"], "unreachable", "{s:#}");
    assert!(
        cam["last_error"]
            .as_str()
            .unwrap()
            .contains("cannot connect"),
        "{s:#}"
    );
    assert!(cam["last_ok_unix"].is_null());
    // Backoff 0.5, 1, 2, 2, 2 s: attempts at about 0, 0.5, 1.5, 3.5, 5.5, 7.5 s.
    let attempts = cam["start_requests"].as_u64().unwrap();
    assert!(
        (4..=8).contains(&attempts),
        "{attempts} attempts in 8 s: {s:#}"
    );
    // Keep-alives go on every second whatever the camera answers (or not): one failed
    // keep-alive never silences the next.
    let keepalives = cam["keepalives"].as_u64().unwrap();
    assert!(
        (6..=9).contains(&keepalives),
        "{keepalives} keep-alives in 8 s: {s:#}"
    );
    assert_eq!(cam["keepalive_failures"], cam["keepalives"], "{s:#}");
    // One request per start sequence (webcam/status fails first) and per keep-alive (up to
    // two of which may still be on their way).
    let requests = cam["requests"].as_u64().unwrap();
    assert!(
        (attempts + keepalives - 2..=attempts + keepalives).contains(&requests),
        "{requests} requests: {s:#}"
    );

    let camera = FakeGopro::start(&dir, "hero12", &p, &gopro);
    let s = daemon.wait_status("a live camera", Duration::from_secs(20), |s| {
        s["camera"]["state"] == "live"
    });
    assert!(s["camera"]["last_ok_unix"].as_f64().is_some());
    let viewer = BackgroundViewer::connect(p.http);
    viewer.wait_bytes(60_000, Duration::from_secs(20));
    assert_decodes(&viewer, &dir, "viewer.ts");

    assert_eq!(s["camera"]["model"], "HERO12 Black");
    assert_eq!(s["camera"]["mode"], "webcam");
    assert_eq!(daemon.terminate(Duration::from_secs(10)), Some(0));
    let rec = record(&camera.record);
    let starts = http_requests(&rec, "/gopro/webcam/start");
    assert_eq!(starts.len(), 1, "{rec:#?}");
    assert_eq!(starts[0]["query"], format!("res=7&fov=4&port={}", p.source));
    // The SDK's webcam flow: the status is read before the start.
    let status_reads = http_requests(&rec, "/gopro/webcam/status");
    assert!(
        status_reads[0]["t"].as_f64() <= starts[0]["t"].as_f64(),
        "{rec:#?}"
    );
    let stop = http_requests(&rec, "/gopro/webcam/stop");
    let exit = http_requests(&rec, "/gopro/webcam/exit");
    assert_eq!((stop.len(), exit.len()), (1, 1), "{rec:#?}");
}

#[test]
fn a_camera_that_restarts_its_stream_is_followed_on_the_same_viewer_connection() {
    let LiveCamera {
        dir,
        p,
        gopro,
        camera,
        daemon,
        ..
    } = live_camera("camera-restart", "hero7", "kind = \"gopro-legacy\"");
    let viewer = BackgroundViewer::connect(p.http);
    // A few seconds of the first stream (its timestamps start near 1.4 s),
    // so that the restarted stream's are told from them.
    viewer.wait_bytes(150_000, Duration::from_secs(30));
    let before = frame_pts(&viewer, 0, &dir, "before.ts");
    let last_before = *before.last().unwrap();
    assert!(last_before > 3.0, "{before:?}");

    // The camera stops its stream (as after a keep-alive timeout or a sleep); when asked again
    // it starts a new one whose timestamps begin again near zero.
    let r = http_get(gopro.http, "/gp/gpControl/execute?p1=gpStream&c1=stop").unwrap();
    assert_eq!(r.code, 200);
    daemon.wait_status("a stalled camera", Duration::from_secs(8), |s| {
        s["camera"]["state"] == "stalled"
    });
    daemon.wait_status("the camera live again", Duration::from_secs(20), |s| {
        s["camera"]["state"] == "live"
    });
    daemon.wait_status("the encoder restarted", Duration::from_secs(5), |s| {
        s["encoder"]["restarts"].as_u64() >= Some(1)
    });
    let at_resume = viewer.len();
    viewer.wait_bytes(at_resume + 40_000, Duration::from_secs(20));
    assert!(!viewer.ended(), "same connection");
    let after = frame_pts(&viewer, at_resume, &dir, "after.ts");
    assert!(after.len() >= 15, "{after:?}");
    // New frames from the restarted stream: earlier timestamps than before the stop.
    assert!(
        after.iter().any(|t| *t < last_before),
        "no frames from the new stream: before ended at {last_before}, after: {after:?}"
    );
    let rec = record(&camera.record);
    assert!(rec
        .iter()
        .any(|e| e["event"] == "stream_stop" && e["detail"]["reason"] == "stop command"));
    assert_eq!(
        rec.iter().filter(|e| e["event"] == "stream_start").count(),
        2,
        "the daemon started the camera again"
    );
}

/// About a second of the test pattern at 320x180, 15 fps, as the one-rung ladder encodes it.
const PICTURE: usize = 4_000;

/// Body bytes reach the viewer again: `more` bytes within `within` of `since`.
fn picture_back(
    viewer: &BackgroundViewer,
    more: usize,
    since: Instant,
    within: Duration,
    what: &str,
) {
    let had = viewer.len();
    let left = within.saturating_sub(since.elapsed());
    poll_until(left, || viewer.len() >= had + more).unwrap_or_else(|| {
        panic!(
            "{what}: the picture was not back within {within:?} ({} of {more} bytes)",
            viewer.len() - had
        )
    });
}

fn poll_until(within: Duration, mut f: impl FnMut() -> bool) -> Option<()> {
    let end = Instant::now() + within;
    loop {
        if f() {
            return Some(());
        }
        if Instant::now() >= end {
            return None;
        }
        thread::sleep(Duration::from_millis(50));
    }
}

/// The emulator refuses the first two starts with 409, then drops a keep-alive, then restarts
/// its stream: keep-alives never stop, and the picture is back within 5 s of each fault.
fn faults_are_ridden_through(name: &str, model: &str, kind: &str) {
    let dir = temp_dir(name);
    let p = Ports::new();
    let gopro = CameraPorts::new();
    let camera = FakeGopro::start_with(&dir, model, &p, &gopro, &["--refuse-starts", "2"]);
    let config = write_config(&dir, &p, &gopro, &format!("kind = \"{kind}\""));
    let started = Instant::now();
    let daemon = start_daemon(&dir, &config, &p);
    // 1. Two starts refused: the daemon says why and asks again.
    let s = daemon.wait_status("a busy camera", Duration::from_secs(10), |s| {
        s["camera"]["state"] == "busy"
    });
    let reason = s["camera"]["reason"].as_str().unwrap().to_string();
    assert!(reason.contains("409"), "{s:#}");
    assert!(reason.contains("asking again"), "{s:#}");
    assert!(
        s["camera"]["last_answer"]
            .as_str()
            .unwrap()
            .contains("HTTP 409"),
        "{s:#}"
    );
    daemon.wait_status("a live camera", Duration::from_secs(10), |s| {
        s["camera"]["state"] == "live"
    });
    let viewer = BackgroundViewer::connect(p.http);
    viewer.wait_bytes(20_000, Duration::from_secs(20));
    let rec = record(&camera.record);
    let start_path = if kind == "gopro-legacy" {
        "/gp/gpControl/execute"
    } else {
        "/gopro/camera/stream/start"
    };
    let starts = http_requests(&rec, start_path);
    assert_eq!(
        starts
            .iter()
            .map(|s| s["status"].as_u64().unwrap())
            .collect::<Vec<_>>(),
        [409, 409, 200],
        "{rec:#?}"
    );
    // Retried with backoff (0.5, then 1 s), the picture within 5 s of the first refusal.
    let first_refusal = starts[0]["t"].as_f64().unwrap();
    let accepted = starts[2]["t"].as_f64().unwrap();
    assert!(accepted - first_refusal >= 1.4, "{starts:?}");
    assert!(started.elapsed() < Duration::from_secs(15));
    if kind != "gopro-legacy" {
        // Each start was preceded by a stop, as GoPro's SDK does.
        let stops = http_requests(&rec, "/gopro/camera/stream/stop");
        assert!(stops.len() >= 3, "{rec:#?}");
    }

    // 2. A keep-alive dropped (an HTTP one left unanswered; a datagram ignored).
    let r = http_method(gopro.http, "POST", "/_test/drop_keepalives?n=1").unwrap();
    assert_eq!(r.code, 200);
    let fault = Instant::now();
    picture_back(
        &viewer,
        PICTURE,
        fault,
        Duration::from_secs(5),
        "a dropped keep-alive",
    );
    wait_keepalives(&camera.record, 4);
    if kind != "gopro-legacy" {
        let s = daemon.status().unwrap();
        assert!(
            s["camera"]["keepalive_failures"].as_u64() >= Some(1),
            "{s:#}"
        );
    }

    // 3. The camera restarts its stream: new timestamps.
    let restarts = |s: &Value| {
        s["encoder"]["restarts_by_reason"]["new timeline"]
            .as_u64()
            .unwrap_or(0)
    };
    let before = restarts(&daemon.status().unwrap());
    let r = http_method(gopro.http, "POST", "/_test/restart").unwrap();
    assert_eq!(r.code, 200);
    let fault = Instant::now();
    daemon.wait_status(
        "the encoder on the new timeline",
        Duration::from_secs(5),
        |s| restarts(s) > before,
    );
    picture_back(
        &viewer,
        PICTURE,
        fault,
        Duration::from_secs(5),
        "a stream restart",
    );
    assert!(!viewer.ended());

    // Keep-alives never stopped: one every second, the dropped one included.
    wait_keepalives(&camera.record, 2);
    let rec = record(&camera.record);
    assert_interval_about(&gaps(&keepalives(&rec)), 1.0, "keep-alives");
    assert!(
        rec.iter().any(|e| e["dropped"] == true
            || (e["path"] == "/gopro/camera/keep_alive" && e["status"].is_null())),
        "a keep-alive was dropped: {rec:#?}"
    );
    assert_eq!(daemon.status().unwrap()["camera"]["state"], "live");
}

#[test]
fn open_gopro_rides_through_refused_starts_a_dropped_keepalive_and_a_stream_restart() {
    faults_are_ridden_through("camera-faults-ogp", "hero12", "open-gopro");
}

#[test]
fn legacy_rides_through_refused_starts_a_dropped_keepalive_and_a_stream_restart() {
    faults_are_ridden_through("camera-faults-legacy", "hero7", "gopro-legacy");
}

#[test]
fn webcam_is_asked_only_where_the_model_offers_it_and_a_streaming_webcam_is_stopped_first() {
    // HERO11 over Wi-Fi: no webcam mode (Open GoPro spec); the preview instead, said in /status.
    let LiveCamera { camera, status, .. } = live_camera(
        "camera-hero11-webcam",
        "hero11",
        "kind = \"open-gopro\"\nmode = \"webcam\"",
    );
    let cam = &status["camera"];
    assert_eq!(cam["model"], "HERO11 Black", "{status:#}");
    assert_eq!(cam["mode"], "preview", "{status:#}");
    assert!(
        cam["mode_reason"]
            .as_str()
            .unwrap()
            .contains("only over USB"),
        "{status:#}"
    );
    let rec = record(&camera.record);
    assert!(
        http_requests(&rec, "/gopro/webcam/start").is_empty(),
        "{rec:#?}"
    );
    // HERO11 takes no `port` for the preview: none is sent (the emulator sends to the daemon's port).
    let starts = http_requests(&rec, "/gopro/camera/stream/start");
    assert_eq!(starts[0]["query"], "", "{rec:#?}");
    drop(camera);

    // HERO12, whose webcam is already streaming: status read, stopped, then started.
    let dir = temp_dir("camera-webcam-busy");
    let p = Ports::new();
    let gopro = CameraPorts::new();
    let camera = FakeGopro::start(&dir, "hero12", &p, &gopro);
    let r = http_get(gopro.http, "/gopro/webcam/start?res=12&fov=0").unwrap();
    assert_eq!(r.code, 200);
    let config = write_config(&dir, &p, &gopro, "kind = \"open-gopro\"\nmode = \"webcam\"");
    let daemon = start_daemon(&dir, &config, &p);
    daemon.wait_status("a live camera", Duration::from_secs(20), |s| {
        s["camera"]["state"] == "live"
    });
    let rec = record(&camera.record);
    let daemon_calls: Vec<String> = rec
        .iter()
        .filter(|e| {
            e["type"] == "http" && e["path"].as_str().unwrap().starts_with("/gopro/webcam/")
        })
        .skip(1) // the test's own start
        .map(|e| format!("{} {}", e["path"].as_str().unwrap(), e["status"]))
        .collect();
    assert_eq!(
        daemon_calls[..4],
        [
            "/gopro/webcam/status 200",
            "/gopro/webcam/stop 200",
            "/gopro/webcam/status 200",
            "/gopro/webcam/start 200"
        ],
        "{rec:#?}"
    );
}

#[test]
fn auto_finds_the_camera_and_a_different_one_that_comes_later_without_a_restart() {
    let dir = temp_dir("camera-auto-swap");
    let p = Ports::new();
    let gopro = CameraPorts::new();
    let camera = FakeGopro::start(&dir, "hero12", &p, &gopro);
    // No kind: auto. Only the address (and, on loopback, the ports).
    let config = write_config(&dir, &p, &gopro, "");
    let mut daemon = start_daemon(&dir, &config, &p);
    let s = daemon.wait_status("a live HERO12", Duration::from_secs(20), |s| {
        s["camera"]["state"] == "live"
    });
    let cam = &s["camera"];
    assert_eq!(cam["kind"], "auto");
    assert_eq!(cam["api"], "open-gopro");
    assert_eq!(cam["api_version"], "2.0");
    assert_eq!(cam["model"], "HERO12 Black");
    assert_eq!(cam["model_number"], 62);
    assert_eq!(cam["firmware"], "H23.01.02.32.00");
    assert_eq!(cam["found_by"], "the configured address");
    assert_eq!(cam["transport"], "wifi");
    assert_eq!(cam["codec"], "h264");
    assert_eq!(cam["address"], format!("http://127.0.0.1:{}", gopro.http));
    let pid = daemon.pid();
    drop(camera);

    // The HERO12 goes (no answer to three start sequences: searching again); a HERO4 comes at
    // the same address.
    let s = daemon.wait_status("a search again", Duration::from_secs(15), |s| {
        s["camera"]["state"] == "searching"
    });
    assert!(s["camera"]["mode"].is_null(), "{s:#}");
    let _legacy = FakeGopro::start(&dir, "hero4", &p, &gopro);
    let s = daemon.wait_status("a live HERO4", Duration::from_secs(30), |s| {
        s["camera"]["state"] == "live" && s["camera"]["model"] == "HERO4 Black"
    });
    assert_eq!(s["camera"]["api"], "gopro-legacy");
    assert_eq!(s["camera"]["mode"], "live-view");
    assert!(s["camera"]["searches"].as_u64() >= Some(1), "{s:#}");
    assert_eq!(daemon.pid(), pid);
    assert!(daemon.proc.try_wait().is_none(), "not restarted");
    let log = daemon.log_text();
    assert!(log.contains("searching again"), "{log}");
}

#[test]
fn auto_takes_a_sender_without_an_http_api_as_plain_udp() {
    let dir = temp_dir("camera-auto-udp");
    let p = Ports::new();
    let nothing = CameraPorts::new(); // nobody listens on its HTTP port
    let config = write_config(&dir, &p, &nothing, "");
    let daemon = start_daemon(&dir, &config, &p);
    let s = daemon.wait_status("searching", Duration::from_secs(10), |s| {
        s["camera"]["searches"].as_u64() >= Some(1)
    });
    assert_eq!(s["camera"]["state"], "searching", "{s:#}");
    assert!(
        s["camera"]["reason"]
            .as_str()
            .unwrap()
            .contains("no camera found"),
        "{s:#}"
    );
    let mut sender = std::process::Command::new("ffmpeg");
    sender.args([
        "-hide_banner",
        "-loglevel",
        "error",
        "-re",
        "-f",
        "lavfi",
        "-i",
        "testsrc=size=320x180:rate=15",
        "-c:v",
        "libx264",
        "-preset",
        "ultrafast",
        "-tune",
        "zerolatency",
        "-g",
        "15",
        "-f",
        "mpegts",
    ]);
    sender.arg(format!("udp://127.0.0.1:{}?pkt_size=1316", p.source));
    let _sender = Proc::spawn_command(&dir, "sender", sender, &[]).unwrap();
    let s = daemon.wait_status("a live plain sender", Duration::from_secs(20), |s| {
        s["camera"]["state"] == "live"
    });
    assert_eq!(s["camera"]["api"], "udp", "{s:#}");
    assert!(
        s["camera"]["found_by"]
            .as_str()
            .unwrap()
            .contains("no GoPro HTTP API"),
        "{s:#}"
    );
    let viewer = BackgroundViewer::connect(p.http);
    viewer.wait_bytes(30_000, Duration::from_secs(20));
}

#[test]
fn the_shipped_config_and_every_image_leave_kind_to_auto() {
    let root = env!("CARGO_MANIFEST_DIR");
    let cfg = livestreamd::config::load(&Path::new(root).join("configs/livestreamd.toml")).unwrap();
    assert_eq!(cfg.camera.kind, livestreamd::config::CameraKind::Auto);
    // The Debian image changes only the ladder and the preset; Buildroot and Yocto install the
    // shipped file as it is.
    let changes =
        std::fs::read_to_string(Path::new(root).join("debian-image/config-changes.toml")).unwrap();
    assert!(
        !changes.lines().any(|l| l.trim_start().starts_with("kind")),
        "{changes}"
    );
    for (file, needle) in [
        (
            "buildroot/package/livestreamd/livestreamd.mk",
            "$(@D)/configs/livestreamd.toml",
        ),
        (
            "yocto/meta-livestream/recipes-multimedia/livestreamd/livestreamd_0.1.0.bb",
            "${S}/configs/livestreamd.toml",
        ),
    ] {
        let text = std::fs::read_to_string(Path::new(root).join(file)).unwrap();
        assert!(
            text.contains(needle),
            "{file} installs configs/livestreamd.toml"
        );
    }
}

#[test]
fn a_camera_out_of_range_for_a_while_is_driven_again_when_it_answers() {
    let LiveCamera {
        p,
        gopro,
        camera,
        daemon,
        ..
    } = live_camera("camera-silent", "hero12", "kind = \"open-gopro\"");
    let viewer = BackgroundViewer::connect(p.http);
    viewer.wait_bytes(PICTURE, Duration::from_secs(20));
    // No answers and no video for 5 s, as a camera out of Wi-Fi range.
    let r = http_method(gopro.http, "POST", "/_test/silent?s=5").unwrap();
    assert_eq!(r.code, 200);
    let silent_from = Instant::now();
    let s = daemon.wait_status("the camera unanswering", Duration::from_secs(5), |s| {
        s["camera"]["state"] == "unreachable"
    });
    assert!(
        s["camera"]["last_error"]
            .as_str()
            .unwrap()
            .contains("no answer from"),
        "{s:#}"
    );
    assert!(s["camera"]["stalled_since"].is_number(), "{s:#}");
    daemon.wait_status("the camera live again", Duration::from_secs(15), |s| {
        s["camera"]["state"] == "live"
    });
    assert!(silent_from.elapsed() >= Duration::from_secs(5));
    picture_back(
        &viewer,
        PICTURE,
        Instant::now(),
        Duration::from_secs(5),
        "after the silence",
    );
    // Keep-alives went on throughout (unanswered while silent).
    let rec = record(&camera.record);
    assert_interval_about(&gaps(&keepalives(&rec)), 1.0, "keep-alives");
    assert!(daemon.status().unwrap()["camera"]["keepalive_failures"].as_u64() >= Some(3));
}

/// The camera's clock is read as GoPro publishes it (Open GoPro `get_date_time`, legacy
/// status 40) and offered to the clock keeper: here, without `--set-clock`, refused with the
/// step it would have made (or because this machine's clock is NTP-synchronized).
#[test]
fn the_cameras_clock_is_read_and_offered() {
    for (model, camera) in [("hero12", ""), ("hero7", "kind = \"gopro-legacy\"")] {
        let LiveCamera { mut daemon, .. } = live_camera_with(
            &format!("camera-clock-{model}"),
            model,
            &["--clock-offset", "3600"],
            camera,
        );
        let s = daemon.wait_status("the camera's clock offered", Duration::from_secs(15), |s| {
            s["clock"]["last_refusal"].is_string()
        });
        let why = s["clock"]["last_refusal"].as_str().unwrap();
        assert!(why.starts_with("Camera (127.0.0.1)"), "{model}: {why}");
        if let Some(rest) = why.split("would move the clock ").nth(1) {
            let step: f64 = rest.split(' ').next().unwrap().parse().unwrap();
            assert!((step - 3600.0).abs() < 10.0, "{model}: {why}");
        } else {
            assert!(why.contains("synchronized (NTP)"), "{model}: {why}");
        }
        assert_eq!(daemon.terminate(Duration::from_secs(10)), Some(0));
    }
}
