//! What the camera sends shapes the ladder: an HEVC camera (HERO13 and
//! later) is live video whose picture every encoded rung decodes and sends
//! as H.264, with no passthrough rung offered; an H.264 camera's own picture
//! is the top rung, its size, frame rate and bitrate taken from its stream.
//! Real ffmpeg as the camera (libx264, libx265), real viewers.

mod common;

use common::*;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

/// A camera: ffmpeg sending `codec` (libx264 or libx265) in MPEG-TS over UDP,
/// 320x180 at 15 fps, a keyframe a second, 7 packets a datagram. Killed when dropped.
struct Camera(Child);

impl Camera {
    fn start(port: u16, codec: &str) -> Camera {
        let url = format!("udp://127.0.0.1:{port}?pkt_size=1316");
        let mut cmd = Command::new("ffmpeg");
        cmd.args(["-hide_banner", "-nostdin", "-loglevel", "error", "-re"])
            .args(["-f", "lavfi", "-i", "testsrc=size=320x180:rate=15"])
            .args(["-c:v", codec, "-preset", "ultrafast", "-pix_fmt", "yuv420p"]);
        match codec {
            "libx265" => cmd.args(["-x265-params", "log-level=error:keyint=15:bframes=0"]),
            _ => cmd.args(["-tune", "zerolatency", "-g", "15"]),
        };
        let child = cmd
            .args(["-b:v", "400k", "-f", "mpegts", &url])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .spawn()
            .expect("start ffmpeg as a camera");
        Camera(child)
    }
}

impl Drop for Camera {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// The passthrough rung without any figure, and one encoded rung below it.
const LADDER: &str = "[[ladder]]\npassthrough = true\n\n[[ladder]]\nwidth = 160\nheight = 90\nfps = 15\nbitrate_kbps = 150\n";

fn start(name: &str) -> (std::path::PathBuf, Ports, Daemon) {
    let dir = temp_dir(name);
    let ports = Ports::new();
    let config = Config::new(&ports)
        .ladder(&[])
        .extra(LADDER)
        .write(&dir.join("livestreamd.toml"));
    let args = ["run", "--config", config.to_str().unwrap()];
    let daemon = Daemon::start_with(&dir, &args, &[INFO_LOG], ports.http);
    (dir, ports, daemon)
}

#[test]
fn an_hevc_camera_is_live_and_phones_get_it_encoded_as_h264() {
    let (dir, ports, daemon) = start("camera-hevc");
    let _camera = Camera::start(ports.source, "libx265");
    let s = daemon.wait_status(
        "the HEVC camera live, the passthrough rung not offered",
        Duration::from_secs(20),
        |s| {
            s["source"]["state"] == "live"
                && s["passthrough"]["offered"] == false
                && s["encoder"]["rung"] == 1
                && s["encoder"]["pid"].is_u64()
        },
    );
    assert_eq!(s["source"]["picture"]["codec"], "hevc", "{:#}", s["source"]);
    let reason = s["passthrough"]["reason"].as_str().unwrap();
    assert!(
        reason.contains("HEVC") && reason.contains("H.264"),
        "{reason}"
    );
    // A viewer who asks for the top rung gets the best offered, in H.264.
    let viewer = BackgroundViewer::connect(ports.http);
    viewer.wait_bytes(60_000, Duration::from_secs(20));
    let bytes = viewer.bytes_from(0);
    let (codec, width, height) = probe(&dir, "hevc-viewer.ts", &bytes);
    assert_eq!(
        (codec.as_str(), width, height),
        ("h264", 160, 90),
        "{} bytes",
        bytes.len()
    );
    assert!(count_frames(&dir, "hevc-viewer.ts", &bytes) >= 10);
    let s = daemon.status().unwrap();
    let passthrough_running = s["encoders"]
        .as_array()
        .unwrap()
        .iter()
        .any(|e| e["passthrough"] == true);
    assert!(!passthrough_running, "{:#}", s["encoders"]);
    assert_eq!(s["viewers"][0]["rung"], 1, "{:#}", s["viewers"]);
    assert!(daemon.wait_for_log("passthrough rung not offered", Duration::from_secs(1)));
}

#[test]
fn an_h264_cameras_own_picture_is_the_top_rung_with_its_figures_from_the_stream() {
    let (dir, ports, daemon) = start("camera-h264");
    let _camera = Camera::start(ports.source, "libx264");
    let s = daemon.wait_status(
        "the passthrough rung's figures measured",
        Duration::from_secs(20),
        |s| {
            s["passthrough"]["offered"] == true
                && s["passthrough"]["bitrate_kbps"].as_u64() > Some(0)
        },
    );
    let p = &s["passthrough"];
    assert_eq!(
        (&p["width"], &p["height"], &p["fps"]),
        (&320.into(), &180.into(), &15.into()),
        "{p:#}"
    );
    assert_eq!(s["source"]["picture"]["codec"], "h264");
    // The camera sends 400 kbit/s of video, and a little more in MPEG-TS.
    let kbps = p["bitrate_kbps"].as_u64().unwrap();
    assert!((200..=900).contains(&kbps), "{kbps} kbit/s");
    let viewer = BackgroundViewer::connect(ports.http);
    viewer.wait_bytes(100_000, Duration::from_secs(20));
    let bytes = viewer.bytes_from(0);
    assert_eq!(
        probe(&dir, "h264-viewer.ts", &bytes),
        ("h264".to_string(), 320, 180),
        "the camera's own picture"
    );
    let s = daemon.status().unwrap();
    assert_eq!(s["viewers"][0]["rung"], 0, "{:#}", s["viewers"]);
    let top = &s["encoders"].as_array().unwrap()[0];
    assert_eq!(
        (&top["passthrough"], &top["width"], &top["height"]),
        (&true.into(), &320.into(), &180.into()),
        "{top:#}"
    );
    // HLS players are told the picture as measured.
    let listed = poll(Duration::from_secs(10), WAIT_EVERY, || {
        let text = daemon.get("/live.m3u8").text();
        text.contains("RESOLUTION=320x180,FRAME-RATE=15.000")
            .then_some(())
    });
    assert!(listed.is_some(), "{}", daemon.get("/live.m3u8").text());
}
