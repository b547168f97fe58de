//! The camera as in the field: `livestreamd fake-gopro --model M` at the camera's real address in
//! its own network namespace (10.5.5.9 on Wi-Fi, 172.21.145.51 on USB), the daemon in the Pi's
//! namespace on the shipped configs/livestreamd.toml (its fixed ports 8080 and 8554 collide with
//! nothing there), and a viewer of `/stream.ts` inside the Pi's namespace. Needs root: ignored
//! unless the `netns-tests` feature is on (scripts/test.sh).

mod common;

use common::camnet::CamNet;
use common::*;
use serde_json::Value;
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

const SHIPPED: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/configs/livestreamd.toml");
/// The daemon's HTTP inside the Pi's namespace (the shipped `listen`).
const PI_HTTP: &str = "127.0.0.1:8080";

/// The shipped config with `[camera]` keys set (`key = value` lines): each replaces the key's
/// line in the shipped `[camera]` table, or comes right after the table's head.
fn shipped_with(dir: &Path, camera_lines: &str) -> PathBuf {
    let text = std::fs::read_to_string(SHIPPED).unwrap();
    let (head, camera) = text.split_once("[camera]\n").unwrap();
    assert!(
        !camera.contains("\n["),
        "[camera] is the shipped config's last table"
    );
    let mut lines: Vec<String> = camera.lines().map(String::from).collect();
    for set in camera_lines.lines().filter(|l| !l.trim().is_empty()) {
        let key = set.split('=').next().unwrap().trim();
        match lines
            .iter()
            .position(|l| l.split('=').next().map(str::trim) == Some(key))
        {
            Some(i) => lines[i] = set.to_string(),
            None => lines.insert(0, set.to_string()),
        }
    }
    let path = dir.join("livestreamd.toml");
    std::fs::write(&path, format!("{head}[camera]\n{}\n", lines.join("\n"))).unwrap();
    path
}

/// `livestreamd fake-gopro --model MODEL --http HTTP`, as the issue runs it (its own defaults:
/// 848x480 at 30 fps), in the camera's namespace.
fn emulator(dir: &Path, net: &CamNet, model: &str, http: &str, extra: &[&str]) -> (Proc, PathBuf) {
    let record = dir.join("camera.jsonl");
    let mut cmd = net.in_cam(BIN);
    cmd.args(["fake-gopro", "--model", model, "--http", http])
        .args(extra)
        .arg("--record")
        .arg(&record);
    let proc = Proc::spawn_command(dir, "camera", cmd, &[INFO_LOG]).unwrap();
    assert!(
        proc.wait_for_log("camera on http://", Duration::from_secs(10)),
        "fake-gopro did not start:\n{}",
        proc.log_text()
    );
    (proc, record)
}

/// `livestreamd run --config CONFIG` in the Pi's namespace; `sysfs`: a directory bound over
/// /sys/class/net first (a veth cannot look like a USB device to the kernel; see usb_tree).
fn daemon(dir: &Path, net: &CamNet, config: &Path, sysfs: Option<&Path>) -> Proc {
    let run = format!("exec {BIN} run --config {}", config.display());
    let script = match sysfs {
        Some(tree) => format!("mount --bind {} /sys/class/net && {run}", tree.display()),
        None => run,
    };
    let mut cmd = net.in_pi("sh");
    cmd.args(["-c", &script]).env("RUST_LOG", "info");
    Proc::spawn_command(dir, "daemon", cmd, &[]).unwrap()
}

/// One request made inside the Pi's namespace: status code and body.
fn ns_request(net: &CamNet, to: &str, method: &str, path: &str) -> Option<(u16, Vec<u8>)> {
    let to: SocketAddr = to.parse().unwrap();
    let mut s = net.pi.connect(to, Duration::from_secs(2)).ok()?;
    s.set_read_timeout(Some(Duration::from_secs(5))).ok()?;
    write!(
        s,
        "{method} {path} HTTP/1.1\r\nHost: pi\r\nConnection: close\r\n\r\n"
    )
    .ok()?;
    let mut buf = Vec::new();
    s.read_to_end(&mut buf).ok()?;
    let end = buf.windows(4).position(|w| w == b"\r\n\r\n")?;
    let head = String::from_utf8_lossy(&buf[..end]);
    let code = head.split_whitespace().nth(1)?.parse().ok()?;
    Some((code, buf[end + 4..].to_vec()))
}

fn pi_get(net: &CamNet, path: &str) -> Option<(u16, Vec<u8>)> {
    ns_request(net, PI_HTTP, "GET", path)
}

/// A test hook of the emulated camera, from the Pi's side of the link.
fn camera_hook(net: &CamNet, camera: &str, path: &str) {
    let r = ns_request(net, camera, "POST", path);
    assert_eq!(r.map(|r| r.0), Some(200), "POST {path} to the camera");
}

fn pi_status(net: &CamNet) -> Option<Value> {
    let (code, body) = pi_get(net, "/status")?;
    (code == 200).then(|| serde_json::from_slice(&body).ok())?
}

fn wait_pi_status(
    net: &CamNet,
    what: &str,
    within: Duration,
    pred: impl Fn(&Value) -> bool,
) -> Value {
    let end = Instant::now() + within;
    loop {
        let s = pi_status(net);
        if let Some(s) = s.as_ref().filter(|s| pred(s)) {
            return s.clone();
        }
        assert!(
            Instant::now() < end,
            "timed out waiting for {what}; last /status: {s:#?}"
        );
        std::thread::sleep(Duration::from_millis(200));
    }
}

/// A viewer of `/stream.ts` inside the Pi's namespace, read on a thread.
struct PiViewer {
    bytes: Arc<Mutex<Vec<u8>>>,
    ended: Arc<AtomicBool>,
}

impl PiViewer {
    fn connect(net: &CamNet, within: Duration) -> PiViewer {
        let to: SocketAddr = PI_HTTP.parse().unwrap();
        let end = Instant::now() + within;
        let mut s: TcpStream = loop {
            match net.pi.connect(to, Duration::from_secs(1)) {
                Ok(s) => break s,
                Err(e) => {
                    assert!(Instant::now() < end, "no daemon at {PI_HTTP}: {e}");
                    std::thread::sleep(Duration::from_millis(100));
                }
            }
        };
        write!(
            s,
            "GET /stream.ts HTTP/1.1\r\nHost: pi\r\nConnection: close\r\n\r\n"
        )
        .unwrap();
        let bytes = Arc::new(Mutex::new(Vec::new()));
        let ended = Arc::new(AtomicBool::new(false));
        let (b, e) = (bytes.clone(), ended.clone());
        std::thread::spawn(move || {
            let mut head = Vec::new();
            let mut in_body = false;
            let mut buf = [0u8; 16384];
            while let Ok(n) = s.read(&mut buf) {
                if n == 0 {
                    break;
                }
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
        PiViewer { bytes, ended }
    }

    fn bytes(&self) -> Vec<u8> {
        self.bytes.lock().unwrap().clone()
    }
}

/// Waits until the viewer's bytes decode as H.264; the time it took from `t0`.
fn h264_within(viewer: &PiViewer, dir: &Path, t0: Instant, within: Duration) -> Duration {
    loop {
        let bytes = viewer.bytes();
        if bytes.len() >= 40_000 {
            let (codec, w, h) = probe(dir, "viewer.ts", &bytes);
            if codec == "h264" && w > 0 && h > 0 && count_frames(dir, "viewer.ts", &bytes) >= 5 {
                return t0.elapsed();
            }
        }
        assert!(
            !viewer.ended.load(Ordering::SeqCst),
            "the viewer's connection ended"
        );
        assert!(
            t0.elapsed() < within,
            "no H.264 for the viewer within {within:?} ({} bytes)",
            bytes.len()
        );
        std::thread::sleep(Duration::from_millis(250));
    }
}

fn unix_now() -> f64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs_f64()
}

fn read_record(path: &Path) -> Vec<Value> {
    std::fs::read_to_string(path)
        .unwrap_or_default()
        .lines()
        .filter_map(|l| serde_json::from_str(l).ok())
        .collect()
}

/// Viewer bytes grow by `more` within 5 s of `since`.
fn picture_back(viewer: &PiViewer, more: usize, since: Instant, what: &str) {
    let had = viewer.bytes.lock().unwrap().len();
    loop {
        let now = viewer.bytes.lock().unwrap().len();
        if now >= had + more {
            return;
        }
        assert!(
            since.elapsed() < Duration::from_secs(5),
            "{what}: the picture was not back within 5 s ({} of {more} bytes)",
            now - had
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// The "done when", per model: `fake-gopro --model M --http 10.5.5.9:PORT` on the
/// camera's Wi-Fi, the daemon on the shipped config with only `[camera] address` set: H.264 for
/// a viewer within 15 s and `/status` names the model; then the emulator refusing the first two
/// starts with 409, dropping a keep-alive and restarting its stream: keep-alives never stop, the
/// picture is back within 5 s of each fault.
fn streams_on_the_shipped_config(model: &str, name: &str, port: u16, api: &str) {
    netns::require();
    let dir = temp_dir(&format!("field-{model}"));
    let net = CamNet::create("10.5.5.9", "10.5.5.100", "wlan0");
    let camera_at = format!("10.5.5.9:{port}");
    let (_camera, record) = emulator(&dir, &net, model, &camera_at, &["--refuse-starts", "2"]);
    let config = shipped_with(&dir, "address = \"10.5.5.9\"");
    let t0 = Instant::now();
    let _daemon = daemon(&dir, &net, &config, None);
    let s = wait_pi_status(&net, "a busy camera (409)", Duration::from_secs(5), |s| {
        s["camera"]["state"] == "busy"
    });
    assert!(
        s["camera"]["reason"].as_str().unwrap().contains("409"),
        "{s:#}"
    );
    let viewer = PiViewer::connect(&net, Duration::from_secs(10));
    let took = h264_within(&viewer, &dir, t0, Duration::from_secs(15));
    let picture_at = unix_now();
    eprintln!(
        "{model}: H.264 for the viewer {:.1} s after the daemon started",
        took.as_secs_f64()
    );
    let s = pi_status(&net).unwrap();
    let cam = &s["camera"];
    assert_eq!(cam["kind"], "auto", "{s:#}");
    assert_eq!(cam["model"], name, "{s:#}");
    assert_eq!(cam["api"], api, "{s:#}");
    assert_eq!(cam["state"], "live", "{s:#}");
    assert_eq!(cam["found_by"], "the configured address", "{s:#}");
    assert_eq!(cam["address"], format!("http://{camera_at}"), "{s:#}");
    let codec = if model == "hero13" { "hevc" } else { "h264" };
    assert_eq!(cam["codec"], codec, "{s:#}");
    // 1. Two starts refused: asked again (1 s, 2 s), the picture within 5 s of the first refusal.
    let rec = read_record(&record);
    let starts: Vec<&Value> = rec
        .iter()
        .filter(|e| {
            e["type"] == "http"
                && matches!(
                    e["path"].as_str(),
                    Some("/gopro/camera/stream/start" | "/gp/gpControl/execute")
                )
        })
        .collect();
    let codes: Vec<u64> = starts.iter().filter_map(|e| e["status"].as_u64()).collect();
    assert_eq!(codes[..3], [409, 409, 200], "{starts:#?}");
    let first_refusal = starts[0]["t"].as_f64().unwrap();
    assert!(
        picture_at - first_refusal < 5.5,
        "picture {:.1} s after the first refusal",
        picture_at - first_refusal
    );
    // 2. A keep-alive dropped: the picture goes on.
    camera_hook(&net, &camera_at, "/_test/drop_keepalives?n=1");
    picture_back(&viewer, 50_000, Instant::now(), "a dropped keep-alive");
    std::thread::sleep(Duration::from_secs(6));
    // 3. The camera restarts its stream: a new timeline, the picture back within 5 s.
    let timelines = |s: &Value| s["source"]["timelines"].as_u64().unwrap_or(0);
    let before = timelines(&pi_status(&net).unwrap());
    camera_hook(&net, &camera_at, "/_test/restart");
    let fault = Instant::now();
    wait_pi_status(&net, "the new timeline", Duration::from_secs(5), |s| {
        timelines(s) > before
    });
    picture_back(&viewer, 50_000, fault, "a stream restart");
    std::thread::sleep(Duration::from_secs(3));
    assert_eq!(pi_status(&net).unwrap()["camera"]["state"], "live");
    // Keep-alives every 2.5 s (the shipped interval) all along, the dropped one included.
    let rec = read_record(&record);
    let keepalives: Vec<f64> = rec
        .iter()
        .filter(|e| e["type"] == "udp" || e["path"] == "/gopro/camera/keep_alive")
        .map(|e| e["t"].as_f64().unwrap())
        .collect();
    assert!(keepalives.len() >= 5, "{keepalives:?}");
    for w in keepalives.windows(2) {
        assert!(
            (w[1] - w[0] - 2.5).abs() < 0.4,
            "keep-alives not every 2.5 s: {keepalives:?}"
        );
    }
    assert!(
        rec.iter().any(|e| e["dropped"] == true
            || (e["path"] == "/gopro/camera/keep_alive" && e["status"].is_null())),
        "a keep-alive was dropped"
    );
}

macro_rules! field_test {
    ($name:ident, $model:expr, $camera:expr, $port:expr, $api:expr) => {
        #[test]
        #[cfg_attr(
            not(feature = "netns-tests"),
            ignore = "needs root and network namespaces: cargo test --features netns-tests (scripts/test.sh)"
        )]
        fn $name() {
            streams_on_the_shipped_config($model, $camera, $port, $api);
        }
    };
}

field_test!(
    shipped_config_streams_a_hero4,
    "hero4",
    "HERO4 Black",
    80,
    "gopro-legacy"
);
field_test!(
    shipped_config_streams_a_hero7,
    "hero7",
    "HERO7 Black",
    80,
    "gopro-legacy"
);
field_test!(
    shipped_config_streams_a_hero9,
    "hero9",
    "HERO9 Black",
    8080,
    "open-gopro"
);
field_test!(
    shipped_config_streams_a_hero12,
    "hero12",
    "HERO12 Black",
    8080,
    "open-gopro"
);
// HEVC preview: decoded by the encoded rungs; phones get H.264 (no passthrough of HEVC).
field_test!(
    shipped_config_streams_a_hero13,
    "hero13",
    "HERO13 Black",
    8080,
    "open-gopro"
);

#[test]
#[cfg_attr(
    not(feature = "netns-tests"),
    ignore = "needs root and network namespaces: cargo test --features netns-tests (scripts/test.sh)"
)]
fn the_unchanged_shipped_config_finds_a_camera_on_its_wifi() {
    netns::require();
    let dir = temp_dir("field-auto-wifi");
    let net = CamNet::create("10.5.5.9", "10.5.5.100", "wlan0");
    let (_camera, _record) = emulator(&dir, &net, "hero11", "10.5.5.9:8080", &[]);
    let _daemon = daemon(&dir, &net, Path::new(SHIPPED), None);
    let s = wait_pi_status(&net, "a live camera", Duration::from_secs(20), |s| {
        s["camera"]["state"] == "live"
    });
    let cam = &s["camera"];
    assert_eq!(cam["found_by"], "the camera's Wi-Fi (10.5.5.9)", "{s:#}");
    assert_eq!(cam["model"], "HERO11 Black", "{s:#}");
    assert_eq!(cam["transport"], "wifi", "{s:#}");
    assert_eq!(cam["mode"], "preview", "{s:#}");
}

/// A sysfs-like tree for the Pi's namespace in which `usb0` sits on a USB bus: its `device`
/// resolves through `usb1`, as a cdc_ncm interface's does; the interface itself (name, index,
/// addresses) is the real veth.
fn usb_tree(dir: &Path, net: &CamNet) -> PathBuf {
    let root = dir.join("sys");
    let device = root.join("devices/platform/soc/3f980000.usb/usb1/1-1/1-1:1.0");
    let iface = root.join("class/net/usb0");
    std::fs::create_dir_all(&device).unwrap();
    std::fs::create_dir_all(&iface).unwrap();
    std::os::unix::fs::symlink(&device, iface.join("device")).unwrap();
    let out = net
        .in_pi("cat")
        .arg("/sys/class/net/usb0/ifindex")
        .output()
        .unwrap();
    std::fs::write(iface.join("ifindex"), out.stdout).unwrap();
    root.join("class/net")
}

fn usb_camera(
    name: &str,
    model: &str,
    extra: &[&str],
    camera_lines: &str,
) -> (PathBuf, Value, Vec<Value>) {
    netns::require();
    let dir = temp_dir(name);
    let net = CamNet::create("172.21.145.51", "172.21.145.50", "usb0");
    let (_camera, record_path) = emulator(&dir, &net, model, "172.21.145.51:8080", extra);
    let tree = usb_tree(&dir, &net);
    let config = shipped_with(&dir, camera_lines);
    let _daemon = daemon(&dir, &net, &config, Some(&tree));
    let viewer = PiViewer::connect(&net, Duration::from_secs(10));
    h264_within(&viewer, &dir, Instant::now(), Duration::from_secs(20));
    let s = pi_status(&net).unwrap();
    let rec: Vec<Value> = std::fs::read_to_string(&record_path)
        .unwrap()
        .lines()
        .filter_map(|l| serde_json::from_str(l).ok())
        .collect();
    (dir, s, rec)
}

fn http_targets(rec: &[Value]) -> Vec<String> {
    rec.iter()
        .filter(|e| e["type"] == "http")
        .map(|e| {
            let q = e["query"].as_str().unwrap_or("");
            let p = e["path"].as_str().unwrap();
            if q.is_empty() {
                p.to_string()
            } else {
                format!("{p}?{q}")
            }
        })
        .collect()
}

#[test]
#[cfg_attr(
    not(feature = "netns-tests"),
    ignore = "needs root and network namespaces: cargo test --features netns-tests (scripts/test.sh)"
)]
fn a_camera_on_a_usb_link_is_found_and_its_webcam_started_with_wired_control_off() {
    let (_dir, s, rec) = usb_camera("field-auto-usb", "hero12", &[], "mode = \"webcam\"");
    let cam = &s["camera"];
    assert_eq!(cam["state"], "live", "{s:#}");
    assert_eq!(
        cam["found_by"], "USB link usb0: 172.2X.1YZ.51 beside its address 172.21.145.50",
        "{s:#}"
    );
    assert_eq!(cam["transport"], "usb", "{s:#}");
    assert_eq!(cam["mode"], "webcam", "{s:#}");
    let targets = http_targets(&rec);
    let at = |t: &str| {
        targets
            .iter()
            .position(|x| x.starts_with(t))
            .unwrap_or_else(|| panic!("no {t} in {targets:#?}"))
    };
    // The spec's webcam section: wired USB control disabled before webcam commands.
    assert!(at("/gopro/camera/control/wired_usb?p=0") < at("/gopro/webcam/status"));
    assert!(at("/gopro/webcam/status") < at("/gopro/webcam/start"));
}

#[test]
#[cfg_attr(
    not(feature = "netns-tests"),
    ignore = "needs root and network namespaces: cargo test --features netns-tests (scripts/test.sh)"
)]
fn a_camera_that_answers_501_to_webcam_gets_the_preview_stream_instead() {
    // An Open GoPro camera at the USB address that answers webcam commands with 501 (the
    // emulated HERO11 told it is on Wi-Fi, where the spec has it answer so).
    let (_dir, s, rec) = usb_camera(
        "field-501",
        "hero11",
        &["--transport", "wifi"],
        "address = \"172.21.145.51\"\nmode = \"webcam\"",
    );
    let cam = &s["camera"];
    assert_eq!(cam["state"], "live", "{s:#}");
    assert_eq!(cam["mode"], "preview", "{s:#}");
    assert!(
        cam["mode_reason"].as_str().unwrap().contains("501"),
        "{s:#}"
    );
    let targets = http_targets(&rec);
    assert!(
        targets.iter().any(|t| t.starts_with("/gopro/webcam/start")),
        "{targets:#?}"
    );
    assert!(
        targets.contains(&"/gopro/camera/control/wired_usb?p=1".to_string()),
        "{targets:#?}"
    );
    assert!(
        targets.iter().any(|t| t == "/gopro/camera/stream/start"),
        "{targets:#?}"
    );
}
