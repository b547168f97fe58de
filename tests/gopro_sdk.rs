//! Conformance: GoPro's own client code, unmodified, drives `livestreamd fake-gopro`, and its
//! flows succeed. GoPro's official Python SDK (open-gopro 0.22.0) opens each Open GoPro model as
//! a `WiredGoPro` at its real USB address 172.2X.1YZ.51:8080 and runs its webcam flow and the
//! preview stream's HTTP sequence; goprocam 4.2.0 detects and starts the legacy models at
//! 10.5.5.9:80. The camera and the client each have their own network namespace (tests/gopro/
//! sdk_flows.py says what each flow does). Needs root and the venv scripts/install-deps.sh
//! makes: ignored unless the `netns-tests` feature is on (scripts/test.sh).

mod common;

use common::camnet::CamNet;
use common::*;
use serde_json::Value;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

/// The venv of tests/gopro/requirements.txt (scripts/install-deps.sh).
fn venv_python() -> PathBuf {
    let venv = std::env::var("LIVESTREAMD_GOPRO_VENV")
        .unwrap_or_else(|_| "/opt/livestreamd/gopro-sdk-venv".into());
    let python = Path::new(&venv).join("bin/python");
    assert!(
        python.exists(),
        "no GoPro SDK venv at {venv}: run scripts/install-deps.sh (or set LIVESTREAMD_GOPRO_VENV)"
    );
    let pinned =
        std::fs::read_to_string(Path::new(&venv).join("requirements.txt")).unwrap_or_default();
    let wanted = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/gopro/requirements.txt"
    ))
    .unwrap();
    assert_eq!(
        pinned, wanted,
        "the venv at {venv} is not tests/gopro/requirements.txt: run scripts/install-deps.sh"
    );
    python
}

const FLOWS: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/gopro/sdk_flows.py");

/// The emulator of `model` at `http` inside the camera's namespace.
fn emulator(dir: &Path, net: &CamNet, model: &str, http: &str) -> (Proc, PathBuf) {
    let record = dir.join(format!("{model}.jsonl"));
    let mut cmd = net.in_cam(BIN);
    cmd.args([
        "fake-gopro",
        "--model",
        model,
        "--http",
        http,
        "--size",
        "320x180",
        "--fps",
        "15",
    ])
    .arg("--record")
    .arg(&record);
    let proc = Proc::spawn_command(dir, &format!("camera-{model}"), cmd, &[INFO_LOG]).unwrap();
    assert!(
        proc.wait_for_log("camera on http://", Duration::from_secs(10)),
        "fake-gopro did not start:\n{}",
        proc.log_text()
    );
    (proc, record)
}

/// Runs a flow of sdk_flows.py inside the Pi's namespace; its output, or a panic with it.
fn flow(dir: &Path, net: &CamNet, name: &str, args: &[&str]) -> String {
    let python = venv_python();
    let mut cmd = net.in_pi(python.to_str().unwrap());
    cmd.arg(FLOWS).args(args);
    let mut p = Proc::spawn_command(dir, name, cmd, &[]).unwrap();
    let end = Instant::now() + Duration::from_secs(120);
    let status = loop {
        if let Some(s) = p.try_wait() {
            break Some(s);
        }
        if Instant::now() > end {
            break None;
        }
        std::thread::sleep(Duration::from_millis(100));
    };
    let out = p.log_text();
    assert!(
        status.is_some_and(|s| s.success()),
        "{name} failed ({status:?}):\n{out}"
    );
    out
}

fn record(path: &Path) -> Vec<Value> {
    std::fs::read_to_string(path)
        .unwrap_or_default()
        .lines()
        .filter_map(|l| serde_json::from_str(l).ok())
        .collect()
}

/// "path?query status" of each HTTP request in the record.
fn requests(rec: &[Value]) -> Vec<String> {
    rec.iter()
        .filter(|e| e["type"] == "http")
        .map(|e| {
            let q = e["query"].as_str().unwrap_or("");
            let target = if q.is_empty() {
                e["path"].as_str().unwrap().to_string()
            } else {
                format!("{}?{q}", e["path"].as_str().unwrap())
            };
            format!("{target} {}", e["status"])
        })
        .collect()
}

/// `want` appear in `got` in this order (others may come between).
fn in_order(got: &[String], want: &[&str]) {
    let mut at = 0;
    for w in want {
        match got[at..].iter().position(|g| g == w) {
            Some(i) => at += i + 1,
            None => panic!("`{w}` not found in order in {got:#?}"),
        }
    }
}

fn wired_flows(model: &str, takes_port: bool, codec: &str) {
    netns::require();
    let dir = temp_dir(&format!("gopro-sdk-{model}"));
    let net = CamNet::create("172.21.145.51", "172.21.145.50", "usb0");
    let (_camera, rec_path) = emulator(&dir, &net, model, "172.21.145.51:8080");
    let mut args = vec!["wired", "C3500000000145", "--codec", codec, "--webcam"];
    if takes_port {
        args.extend(["--preview-port", "8556"]);
    }
    let out = flow(&dir, &net, "sdk", &args);
    assert!(out.contains("wired flows passed"), "{out}");
    let got = requests(&record(&rec_path));
    let wired = if model == "hero9" { "404" } else { "200" }; // HERO9 has no wired_usb
    let preview_start = if takes_port {
        "/gopro/camera/stream/start?port=8556 200"
    } else {
        "/gopro/camera/stream/start 200"
    };
    in_order(
        &got,
        &[
            &format!("/gopro/camera/control/wired_usb?p=1 {wired}"),
            "/gopro/camera/analytics/set_client_info 200",
            "/gopro/version 200",
            "/gopro/camera/state 200",
            "/gopro/webcam/status 200",
            "/gopro/webcam/start 200",
            "/gopro/webcam/stop 200",
            "/gopro/webcam/exit 200",
            "/gopro/camera/stream/stop 200",
            preview_start,
            "/gopro/camera/keep_alive 200",
            "/gopro/camera/stream/stop 200",
        ],
    );
}

#[test]
#[cfg_attr(
    not(feature = "netns-tests"),
    ignore = "needs root and network namespaces: cargo test --features netns-tests (scripts/test.sh)"
)]
fn the_sdk_opens_a_wired_hero9_and_runs_its_webcam_and_preview_flows() {
    wired_flows("hero9", false, "h264");
}

#[test]
#[cfg_attr(
    not(feature = "netns-tests"),
    ignore = "needs root and network namespaces: cargo test --features netns-tests (scripts/test.sh)"
)]
fn the_sdk_opens_a_wired_hero11_and_runs_its_webcam_and_preview_flows() {
    wired_flows("hero11", false, "h264");
}

#[test]
#[cfg_attr(
    not(feature = "netns-tests"),
    ignore = "needs root and network namespaces: cargo test --features netns-tests (scripts/test.sh)"
)]
fn the_sdk_opens_a_wired_hero12_and_runs_its_webcam_and_preview_flows() {
    wired_flows("hero12", true, "h264");
}

fn goprocam_flow(model: &str, name: &str) {
    netns::require();
    let dir = temp_dir(&format!("goprocam-{model}"));
    let net = CamNet::create("10.5.5.9", "10.5.5.100", "wlan0");
    let (_camera, rec_path) = emulator(&dir, &net, model, "10.5.5.9:80");
    let out = flow(
        &dir,
        &net,
        "goprocam",
        &["legacy", "10.5.5.9", "--model", name],
    );
    assert!(out.contains("goprocam flow passed"), "{out}");
    let rec = record(&rec_path);
    in_order(
        &requests(&rec),
        &[
            "/gp/gpControl 200",
            "/gp/gpControl/execute?p1=gpStream&c1=restart 200",
            "/gp/gpControl/execute?p1=gpStream&c1=stop 200",
        ],
    );
    assert!(
        rec.iter()
            .any(|e| e["type"] == "udp" && e["data"] == "_GPHD_:0:0:2:0.000000\n"),
        "goprocam's keep-alive arrived"
    );
}

#[test]
#[cfg_attr(
    not(feature = "netns-tests"),
    ignore = "needs root and network namespaces: cargo test --features netns-tests (scripts/test.sh)"
)]
fn goprocam_detects_and_starts_a_hero4() {
    goprocam_flow("hero4", "HERO4 Black");
}

#[test]
#[cfg_attr(
    not(feature = "netns-tests"),
    ignore = "needs root and network namespaces: cargo test --features netns-tests (scripts/test.sh)"
)]
fn goprocam_detects_and_starts_a_hero7() {
    goprocam_flow("hero7", "HERO7 Black");
}

#[test]
#[cfg_attr(
    not(feature = "netns-tests"),
    ignore = "needs root and network namespaces: cargo test --features netns-tests (scripts/test.sh)"
)]
fn the_sdk_opens_a_wired_hero13_whose_preview_is_hevc_and_webcam_h264() {
    wired_flows("hero13", true, "hevc");
}
