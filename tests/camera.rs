//! Camera control end to end, with real processes: the built `livestreamd` binary runs both as
//! the daemon and as `fake-gopro`, on free loopback ports, with real ffmpeg on both sides.
//! Nothing here contacts 10.5.5.9: every camera address is 127.0.0.1.

use serde_json::Value;
use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream, UdpSocket};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::{Duration, Instant};

const BIN: &str = env!("CARGO_BIN_EXE_livestreamd");

fn free_tcp_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

fn free_udp_port() -> u16 {
    UdpSocket::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// A scratch directory and every process started in it; Drop stops them all.
struct Rig {
    dir: PathBuf,
    children: Vec<(String, Child)>,
}

impl Rig {
    fn new(name: &str) -> Rig {
        static N: AtomicUsize = AtomicUsize::new(0);
        let dir = std::env::temp_dir().join(format!(
            "livestreamd-camera-{name}-{}-{}",
            std::process::id(),
            N.fetch_add(1, Ordering::Relaxed)
        ));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        Rig {
            dir,
            children: Vec::new(),
        }
    }

    fn spawn(&mut self, name: &str, args: &[String]) {
        let log = std::fs::File::create(self.dir.join(format!("{name}.log"))).unwrap();
        let child = Command::new(BIN)
            .args(args)
            .env("RUST_LOG", "info")
            .stdin(Stdio::null())
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {BIN}: {e}"));
        self.children.push((name.to_string(), child));
    }

    fn child(&mut self, name: &str) -> &mut Child {
        &mut self
            .children
            .iter_mut()
            .find(|(n, _)| n == name)
            .unwrap_or_else(|| panic!("no process {name}"))
            .1
    }

    /// SIGTERM and wait (up to `within`); returns the exit code.
    fn terminate(&mut self, name: &str, within: Duration) -> Option<i32> {
        let child = self.child(name);
        unsafe {
            libc::kill(child.id() as i32, libc::SIGTERM);
        }
        let until = Instant::now() + within;
        while Instant::now() < until {
            if let Some(status) = child.try_wait().unwrap() {
                return status.code();
            }
            thread::sleep(Duration::from_millis(50));
        }
        None
    }

    fn log(&self, name: &str) -> String {
        std::fs::read_to_string(self.dir.join(format!("{name}.log"))).unwrap_or_default()
    }
}

impl Drop for Rig {
    fn drop(&mut self) {
        for (_, c) in &mut self.children {
            if c.try_wait().ok().flatten().is_none() {
                // TERM first so each stops its ffmpeg; KILL whatever is left.
                unsafe {
                    libc::kill(c.id() as i32, libc::SIGTERM);
                }
            }
        }
        let until = Instant::now() + Duration::from_secs(5);
        for (_, c) in &mut self.children {
            while c.try_wait().ok().flatten().is_none() && Instant::now() < until {
                thread::sleep(Duration::from_millis(50));
            }
            let _ = c.kill();
            let _ = c.wait();
        }
        if std::thread::panicking() {
            eprintln!("test files kept in {}", self.dir.display());
            for (name, _) in &self.children {
                eprintln!("---- {name}.log ----\n{}", self.log(name));
            }
        } else {
            let _ = std::fs::remove_dir_all(&self.dir);
        }
    }
}

/// Ports of one daemon + camera setup.
struct Ports {
    source: u16,
    server: u16,
    cam_http: u16,
    cam_udp: u16,
}

impl Ports {
    fn new() -> Ports {
        Ports {
            source: free_udp_port(),
            server: free_tcp_port(),
            cam_http: free_tcp_port(),
            cam_udp: free_udp_port(),
        }
    }
}

fn write_config(rig: &Rig, p: &Ports, camera: &str) -> PathBuf {
    let path = rig.dir.join("livestreamd.toml");
    let text = format!(
        r#"
[source]
url = "udp://127.0.0.1:{source}"
stall_timeout_s = 2.0

[encoder]
preset = "ultrafast"
keyframe_interval_s = 1.0

[[ladder]]
width = 320
height = 180
fps = 15
bitrate_kbps = 300

[server]
listen = "127.0.0.1:{server}"

[camera]
address = "127.0.0.1"
http_port = {http}
keepalive_port = {udp}
keepalive_interval_s = 1.0
request_timeout_s = 1.0
retry_initial_s = 0.5
retry_max_s = 2.0
{camera}
"#,
        source = p.source,
        server = p.server,
        http = p.cam_http,
        udp = p.cam_udp,
    );
    std::fs::write(&path, text).unwrap();
    path
}

fn start_daemon(rig: &mut Rig, config: &Path) {
    rig.spawn(
        "daemon",
        &[
            "run".into(),
            "--config".into(),
            config.display().to_string(),
        ],
    );
}

fn start_camera(rig: &mut Rig, kind: &str, p: &Ports) -> PathBuf {
    let record = rig.dir.join("camera.jsonl");
    rig.spawn(
        "camera",
        &[
            "fake-gopro",
            "--kind",
            kind,
            "--http",
            &format!("127.0.0.1:{}", p.cam_http),
            "--keepalive-port",
            &p.cam_udp.to_string(),
            "--udp-port",
            &p.source.to_string(),
            "--record",
            &record.display().to_string(),
            "--size",
            "320x180",
            "--fps",
            "15",
        ]
        .map(String::from),
    );
    record
}

/// One HTTP exchange; returns the status and body.
fn http(port: u16, method: &str, target: &str) -> Option<(u16, String)> {
    let mut s = TcpStream::connect(("127.0.0.1", port)).ok()?;
    s.set_read_timeout(Some(Duration::from_secs(5))).ok()?;
    write!(
        s,
        "{method} {target} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n"
    )
    .ok()?;
    let mut out = Vec::new();
    s.read_to_end(&mut out).ok()?;
    let text = String::from_utf8_lossy(&out).to_string();
    let (head, body) = text.split_once("\r\n\r\n")?;
    let status = head.split_whitespace().nth(1)?.parse().ok()?;
    Some((status, body.to_string()))
}

fn status(p: &Ports) -> Option<Value> {
    let (code, body) = http(p.server, "GET", "/status")?;
    (code == 200).then(|| serde_json::from_str(&body).ok())?
}

/// Polls `/status` until `check` holds; panics with the last status after `within`.
fn wait_status(p: &Ports, within: Duration, what: &str, check: impl Fn(&Value) -> bool) -> Value {
    let until = Instant::now() + within;
    let mut last = None;
    while Instant::now() < until {
        if let Some(s) = status(p) {
            if check(&s) {
                return s;
            }
            last = Some(s);
        }
        thread::sleep(Duration::from_millis(100));
    }
    panic!("timed out waiting for {what}; last /status: {last:#?}");
}

/// One viewer on `/stream.ts`, read on a thread for as long as the test runs.
struct Viewer {
    bytes: Arc<Mutex<Vec<u8>>>,
    /// Whether the connection ended (EOF or error): the same connection must last throughout.
    ended: Arc<AtomicBool>,
}

impl Viewer {
    fn connect(port: u16) -> Viewer {
        let mut s = TcpStream::connect(("127.0.0.1", port)).unwrap();
        write!(
            s,
            "GET /stream.ts HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n"
        )
        .unwrap();
        let bytes = Arc::new(Mutex::new(Vec::new()));
        let ended = Arc::new(AtomicBool::new(false));
        let (b, e) = (bytes.clone(), ended.clone());
        thread::spawn(move || {
            // The response head is kept apart; only the body (MPEG-TS) is collected.
            let mut head: Vec<u8> = Vec::new();
            let mut in_body = false;
            let mut buf = [0u8; 16384];
            loop {
                let n = match s.read(&mut buf) {
                    Ok(0) | Err(_) => break,
                    Ok(n) => n,
                };
                if in_body {
                    b.lock().unwrap().extend_from_slice(&buf[..n]);
                    continue;
                }
                head.extend_from_slice(&buf[..n]);
                if let Some(i) = head.windows(4).position(|w| w == b"\r\n\r\n") {
                    b.lock().unwrap().extend_from_slice(&head[i + 4..]);
                    in_body = true;
                }
            }
            e.store(true, Ordering::SeqCst);
        });
        Viewer { bytes, ended }
    }

    fn len(&self) -> usize {
        self.bytes.lock().unwrap().len()
    }

    fn wait_bytes(&self, at_least: usize, within: Duration) {
        let until = Instant::now() + within;
        while Instant::now() < until {
            if self.len() >= at_least {
                return;
            }
            assert!(
                !self.ended.load(Ordering::SeqCst),
                "viewer connection ended"
            );
            thread::sleep(Duration::from_millis(100));
        }
        panic!(
            "viewer got only {} bytes in {within:?} (wanted {at_least})",
            self.len()
        );
    }

    /// Saves what arrived and checks that ffprobe decodes H.264 at the ladder's size.
    fn assert_decodes(&self, file: &Path) {
        std::fs::write(file, &*self.bytes.lock().unwrap()).unwrap();
        let out = Command::new("ffprobe")
            .args([
                "-v",
                "error",
                "-select_streams",
                "v:0",
                "-count_frames",
                "-show_entries",
                "stream=codec_name,width,height,nb_read_frames",
                "-of",
                "json",
            ])
            .arg(file)
            .output()
            .expect("ffprobe runs");
        let v: Value = serde_json::from_slice(&out.stdout)
            .unwrap_or_else(|e| panic!("ffprobe output: {e}: {out:?}"));
        let s = &v["streams"][0];
        assert_eq!(s["codec_name"], "h264", "{v}");
        assert_eq!(
            (s["width"].as_u64(), s["height"].as_u64()),
            (Some(320), Some(180))
        );
        let frames: u64 = s["nb_read_frames"]
            .as_str()
            .and_then(|n| n.parse().ok())
            .unwrap_or(0);
        assert!(frames >= 10, "only {frames} frames decoded: {v}");
    }
}

/// Video frame timestamps (s) of the bytes from `from` on (aligned down to a TS packet).
fn frame_pts(viewer: &Viewer, from: usize, file: &Path) -> Vec<f64> {
    let bytes = viewer.bytes.lock().unwrap();
    std::fs::write(file, &bytes[from - from % 188..]).unwrap();
    drop(bytes);
    let out = Command::new("ffprobe")
        .args(["-v", "error", "-select_streams", "v:0"])
        .args(["-show_entries", "packet=pts_time", "-of", "csv=p=0"])
        .arg(file)
        .output()
        .expect("ffprobe runs");
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter_map(|l| l.trim().trim_end_matches(',').parse().ok())
        .collect()
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
    let mut rig = Rig::new("legacy");
    let p = Ports::new();
    let record_path = start_camera(&mut rig, "legacy", &p);
    let config = write_config(&rig, &p, "kind = \"gopro-legacy\"");
    start_daemon(&mut rig, &config);

    let s = wait_status(&p, Duration::from_secs(20), "a live camera", |s| {
        s["camera"]["state"] == "live"
    });
    assert_eq!(s["camera"]["kind"], "gopro-legacy");
    let viewer = Viewer::connect(p.server);
    viewer.wait_bytes(60_000, Duration::from_secs(20));
    // Let several keep-alives go by.
    thread::sleep(Duration::from_secs(4));
    viewer.assert_decodes(&rig.dir.join("viewer.ts"));

    let rec = record(&record_path);
    let starts = http_requests(&rec, "/gp/gpControl/execute");
    assert_eq!(starts.len(), 1, "one start command while live: {starts:?}");
    assert_eq!(starts[0]["query"], "p1=gpStream&a1=proto_v2&c1=restart");
    let keepalives: Vec<&Value> = rec.iter().filter(|e| e["type"] == "udp").collect();
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
    assert_eq!(rig.terminate("daemon", Duration::from_secs(10)), Some(0));
}

#[test]
fn open_gopro_preview_is_started_kept_alive_streamed_and_stopped_on_shutdown() {
    let mut rig = Rig::new("opengopro");
    let p = Ports::new();
    let record_path = start_camera(&mut rig, "open-gopro", &p);
    let config = write_config(&rig, &p, "kind = \"open-gopro\"\nmode = \"preview\"");
    start_daemon(&mut rig, &config);

    wait_status(&p, Duration::from_secs(20), "a live camera", |s| {
        s["camera"]["state"] == "live"
    });
    let viewer = Viewer::connect(p.server);
    viewer.wait_bytes(60_000, Duration::from_secs(20));
    thread::sleep(Duration::from_secs(4));
    viewer.assert_decodes(&rig.dir.join("viewer.ts"));

    let s = status(&p).unwrap();
    assert!(s["camera"]["keepalives"].as_u64().unwrap() >= 3, "{s:#}");
    assert_eq!(s["camera"]["failures"], 0, "{s:#}");

    let exit = rig.terminate("daemon", Duration::from_secs(10));
    assert_eq!(exit, Some(0), "clean shutdown");
    let rec = record(&record_path);
    let starts = http_requests(&rec, "/gopro/camera/stream/start");
    assert_eq!(starts.len(), 1, "{rec:#?}");
    // The daemon does not listen on 8554, so it names its port.
    assert_eq!(starts[0]["query"], format!("port={}", p.source));
    let keepalives = http_requests(&rec, "/gopro/camera/keep_alive");
    assert_interval_about(&gaps(&keepalives), 1.0, "keep-alives");
    let stops = http_requests(&rec, "/gopro/camera/stream/stop");
    assert_eq!(stops.len(), 1, "stop sent once on shutdown: {rec:#?}");
    let last_keepalive = keepalives.last().unwrap()["t"].as_f64().unwrap();
    assert!(stops[0]["t"].as_f64().unwrap() >= last_keepalive);
    assert!(rec
        .iter()
        .any(|e| e["event"] == "stream_stop" && e["detail"]["reason"] == "preview stream stop"));
}

#[test]
fn a_ten_second_stall_is_reported_and_the_same_viewer_gets_video_again() {
    let mut rig = Rig::new("stall");
    let p = Ports::new();
    let record_path = start_camera(&mut rig, "legacy", &p);
    let config = write_config(&rig, &p, "kind = \"gopro-legacy\"");
    start_daemon(&mut rig, &config);

    wait_status(&p, Duration::from_secs(20), "a live camera", |s| {
        s["camera"]["state"] == "live"
    });
    let viewer = Viewer::connect(p.server);
    viewer.wait_bytes(30_000, Duration::from_secs(20));

    let (code, _) = http(p.cam_http, "POST", "/_test/pause?s=10").unwrap();
    assert_eq!(code, 200);
    let paused_at = Instant::now();
    let s = wait_status(&p, Duration::from_secs(8), "a stalled camera", |s| {
        s["camera"]["state"] == "stalled"
    });
    assert_eq!(s["source"]["state"], "stalled", "{s:#}");
    assert!(s["camera"]["stalled_since"].as_f64().is_some(), "{s:#}");
    let bytes_in_stall = viewer.len();

    let s = wait_status(&p, Duration::from_secs(25), "the camera live again", |s| {
        s["camera"]["state"] == "live"
    });
    assert!(
        paused_at.elapsed() >= Duration::from_secs(9),
        "live again before the pause ended"
    );
    assert!(s["camera"]["stalled_since"].is_null(), "{s:#}");
    assert_eq!(s["source"]["state"], "live");
    // The daemon was not restarted and the viewer kept its one connection.
    assert!(rig.child("daemon").try_wait().unwrap().is_none());
    let after_resume = viewer.len();
    let resumed_at = Instant::now();
    viewer.wait_bytes(after_resume + 40_000, Duration::from_secs(20));
    thread::sleep(Duration::from_secs(3));
    assert!(!viewer.ended.load(Ordering::SeqCst));
    assert!(after_resume >= bytes_in_stall);
    viewer.assert_decodes(&rig.dir.join("viewer.ts"));
    // The viewer is live again, not a stall's length behind: no burst of frames standing in
    // for the gap (the encoder restarts on the camera's new timeline).
    let pts = frame_pts(&viewer, after_resume, &rig.dir.join("after.ts"));
    let wall = resumed_at.elapsed().as_secs_f64();
    assert!(pts.len() >= 15, "too few frames after resume: {pts:?}");
    assert!(
        (pts.len() as f64) <= (wall + 2.0) * 15.0,
        "{} frames in {wall:.1} s after resume: a burst",
        pts.len()
    );

    // While stalled the start command was re-sent, with backoff (0.5, 1, 2, 2, ... s) over
    // about 8 s of stall: a handful, not a flood.
    let rec = record(&record_path);
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
        rig.log("daemon").matches("stalled").count() == 1,
        "stall logged once"
    );
}

#[test]
fn an_unreachable_camera_is_retried_with_backoff_and_streams_once_it_appears() {
    let mut rig = Rig::new("unreachable");
    let p = Ports::new();
    let config = write_config(
        &rig,
        &p,
        "kind = \"open-gopro\"\nmode = \"webcam\"\nresolution = 720\nfov = \"linear\"",
    );
    start_daemon(&mut rig, &config);

    // Nothing listens on the camera's port for 8 s.
    thread::sleep(Duration::from_secs(8));
    assert!(
        rig.child("daemon").try_wait().unwrap().is_none(),
        "the daemon keeps running"
    );
    let s = status(&p).expect("/status answers while the camera is away");
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
    assert_eq!(
        cam["requests"], cam["start_requests"],
        "no keep-alives to a dead camera"
    );

    let record_path = start_camera(&mut rig, "open-gopro", &p);
    let s = wait_status(&p, Duration::from_secs(20), "a live camera", |s| {
        s["camera"]["state"] == "live"
    });
    assert!(s["camera"]["last_ok_unix"].as_f64().is_some());
    let viewer = Viewer::connect(p.server);
    viewer.wait_bytes(60_000, Duration::from_secs(20));
    viewer.assert_decodes(&rig.dir.join("viewer.ts"));

    assert_eq!(rig.terminate("daemon", Duration::from_secs(10)), Some(0));
    let rec = record(&record_path);
    let starts = http_requests(&rec, "/gopro/webcam/start");
    assert_eq!(starts.len(), 1, "{rec:#?}");
    assert_eq!(starts[0]["query"], format!("res=7&fov=4&port={}", p.source));
    let stop = http_requests(&rec, "/gopro/webcam/stop");
    let exit = http_requests(&rec, "/gopro/webcam/exit");
    assert_eq!((stop.len(), exit.len()), (1, 1), "{rec:#?}");
}

#[test]
fn a_camera_that_restarts_its_stream_is_followed_on_the_same_viewer_connection() {
    let mut rig = Rig::new("restart");
    let p = Ports::new();
    let record_path = start_camera(&mut rig, "legacy", &p);
    let config = write_config(&rig, &p, "kind = \"gopro-legacy\"");
    start_daemon(&mut rig, &config);

    wait_status(&p, Duration::from_secs(20), "a live camera", |s| {
        s["camera"]["state"] == "live"
    });
    let viewer = Viewer::connect(p.server);
    viewer.wait_bytes(60_000, Duration::from_secs(20));
    let before = frame_pts(&viewer, 0, &rig.dir.join("before.ts"));
    let last_before = *before.last().unwrap();
    assert!(last_before > 3.0, "{before:?}");

    // The camera stops its stream (as after a keep-alive timeout or a sleep); when asked again
    // it starts a new one whose timestamps begin again near zero.
    let (code, _) = http(
        p.cam_http,
        "GET",
        "/gp/gpControl/execute?p1=gpStream&c1=stop",
    )
    .unwrap();
    assert_eq!(code, 200);
    wait_status(&p, Duration::from_secs(8), "a stalled camera", |s| {
        s["camera"]["state"] == "stalled"
    });
    wait_status(&p, Duration::from_secs(20), "the camera live again", |s| {
        s["camera"]["state"] == "live"
    });
    wait_status(&p, Duration::from_secs(5), "the encoder restarted", |s| {
        s["encoder"]["restarts"].as_u64() >= Some(1)
    });
    let at_resume = viewer.len();
    viewer.wait_bytes(at_resume + 40_000, Duration::from_secs(20));
    assert!(!viewer.ended.load(Ordering::SeqCst), "same connection");
    let after = frame_pts(&viewer, at_resume, &rig.dir.join("after.ts"));
    assert!(after.len() >= 15, "{after:?}");
    // New frames from the restarted stream: earlier timestamps than before the stop.
    assert!(
        after.iter().any(|t| *t < last_before),
        "no frames from the new stream: before ended at {last_before}, after: {after:?}"
    );
    let rec = record(&record_path);
    assert!(rec
        .iter()
        .any(|e| e["event"] == "stream_stop" && e["detail"]["reason"] == "stop command"));
    assert_eq!(
        rec.iter().filter(|e| e["event"] == "stream_start").count(),
        2,
        "the daemon started the camera again"
    );
}
