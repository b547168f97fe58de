//! The shared decoder: while two or more encoded rungs run, one ffmpeg decodes
//! the camera for all of them; its NUT output is cut into whole frames that
//! keep the camera's timestamps (H.264 and HEVC cameras alike); rungs start
//! and stop, and a viewer moves between them, without a gap; the decoder is
//! supervised like an encoder (a hung one is replaced, a new camera timeline
//! restarts it, the encoders reading it follow), and a stuck encoder costs
//! only itself.

mod common;

use common::*;
use livestreamd::media::nut::{Piece, Splitter};
use livestreamd::media::{decoder, encoder};
use serde_json::Value;
use std::io::{Read, Write};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

fn pin(port: u16, rung: &str) {
    let r = http_request(
        port,
        format!("POST /rung?set={rung} HTTP/1.1\r\nHost: t\r\n\r\n"),
    )
    .unwrap();
    assert_eq!(r.code, 200, "{}", r.text());
}

/// (rung, input) of every running encoder.
fn inputs(s: &Value) -> Vec<(i64, String)> {
    s["encoders"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| {
            let input = e["input"].as_str().unwrap_or("").to_string();
            (e["rung"].as_i64().unwrap(), input)
        })
        .collect()
}

/// The ffmpeg processes below the daemon that decode the camera (read
/// MPEG-TS on stdin), and those that read the decoder's frames.
fn decoding_processes(daemon: i32) -> (usize, usize) {
    let mut camera = 0;
    let mut frames = 0;
    for pid in ffmpeg_children(daemon) {
        let cmd = std::fs::read(format!("/proc/{pid}/cmdline")).unwrap_or_default();
        let args: Vec<String> = cmd
            .split(|b| *b == 0)
            .map(|a| String::from_utf8_lossy(a).into_owned())
            .collect();
        let input = args.iter().position(|a| a == "-i").map(|i| &args[i - 1]);
        match input.map(String::as_str) {
            Some("mpegts") => camera += 1,
            Some("nut") => frames += 1,
            _ => {}
        }
    }
    (camera, frames)
}

fn ffmpeg_children(daemon: i32) -> Vec<i32> {
    let Ok(dir) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    dir.filter_map(|e| {
        let pid: i32 = e.ok()?.file_name().to_str()?.parse().ok()?;
        let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
        let (head, rest) = stat.rsplit_once(')')?;
        let ppid: i32 = rest.split_whitespace().nth(1)?.parse().ok()?;
        (ppid == daemon && head.ends_with("(ffmpeg")).then_some(pid)
    })
    .collect()
}

/// The demo (640x360) on the small ladder (320x180@30, 160x90@30) with
/// `extra` appended, once it streams.
fn demo(name: &str, encoder_lines: &str, extra: &str) -> (std::path::PathBuf, Daemon) {
    let dir = temp_dir(name);
    let ports = Ports::new();
    let config = Config::new(&ports)
        .encoder(encoder_lines)
        .extra(extra)
        .write(&dir.join("livestreamd.toml"));
    let daemon = Daemon::start_with(
        &dir,
        &demo_args(&config, &["--size", "640x360"]),
        &[INFO_LOG],
        ports.http,
    );
    daemon.wait_streaming();
    (dir, daemon)
}

/// Frames (pts, width) of a capture: timestamps only go forward, and the
/// largest step is at most two frames of 30 fps.
fn assert_gapless(frames: &[(f64, u32)]) {
    assert!(frames.len() > 30, "{} frames", frames.len());
    assert!(
        frames.windows(2).all(|w| w[1].0 > w[0].0),
        "timestamps only go forward: no repeated frame"
    );
    let gap = frames
        .windows(2)
        .map(|w| w[1].0 - w[0].0)
        .fold(0.0, f64::max);
    assert!(gap <= 2.0 / 30.0 + 0.001, "a gap of {:.1} ms", gap * 1000.0);
}

#[test]
fn two_rungs_share_one_decoder_and_one_rung_decodes_for_itself_again() {
    let (dir, daemon) = demo("shared-two", "", "[adapt]\nidle_rung_s = 2.0\n");
    let http = daemon.http;
    let s = daemon.status().unwrap();
    assert_eq!(inputs(&s), [(0, "camera".to_string())]);
    assert!(s["decoder"].is_null());
    let viewer = BackgroundViewer::connect(http);
    viewer.wait_bytes(50_000, Duration::from_secs(10));

    pin(http, "1");
    let s = daemon.wait_status("both rungs on the decoder", Duration::from_secs(15), |s| {
        inputs(s) == [(0, "decoder".into()), (1, "decoder".into())]
            && s["decoder"]["encoders"] == 2
            && s["viewers"][0]["rung"] == 1
    });
    println!("decoder: {:#}", s["decoder"]);
    // Once the encoder handed over has stopped: one ffmpeg decodes the
    // camera, two encode its frames.
    wait_until("one decoding process", Duration::from_secs(10), || {
        (decoding_processes(daemon.proc.pid()) == (1, 2)).then_some(())
    });
    assert_eq!(s["decoder"]["width"], 320, "scaled to the largest rung");
    let metrics = daemon.get("/metrics").text();
    assert!(
        metrics.contains("\nlivestreamd_decoder_up 1\n"),
        "{metrics}"
    );
    assert!(
        metrics.contains("\nlivestreamd_decoder_encoders 2\n"),
        "{metrics}"
    );
    let at = viewer.len();
    viewer.wait_bytes(at + 30_000, Duration::from_secs(10));

    pin(http, "0");
    let s = daemon.wait_status(
        "one rung, decoding for itself",
        Duration::from_secs(20),
        |s| inputs(s) == [(0, "camera".into())] && s["decoder"].is_null(),
    );
    assert_eq!(s["viewers"][0]["rung"], 0);
    assert!(daemon
        .get("/metrics")
        .text()
        .contains("\nlivestreamd_decoder_up 0\n"));
    wait_until("the decoder gone", Duration::from_secs(10), || {
        (decoding_processes(daemon.proc.pid()) == (1, 0)).then_some(())
    });
    let at = viewer.len();
    viewer.wait_bytes(at + 50_000, Duration::from_secs(10));

    let frames = frames(&dir, "shared.ts", &viewer.bytes_from(0));
    let widths: Vec<(u32, u32)> = frames
        .windows(2)
        .filter(|w| w[0].1 != w[1].1)
        .map(|w| (w[0].1, w[1].1))
        .collect();
    println!("{} frames, changes {widths:?}", frames.len());
    assert_eq!(widths, [(320, 160), (160, 320)]);
    assert_gapless(&frames);
    assert!(!viewer.ended());
}

#[test]
fn a_hung_decoder_is_replaced_and_only_it_is_blamed() {
    let (_dir, daemon) = demo(
        "shared-hung",
        "output_timeout_s = 2.0",
        "[adapt]\nidle_rung_s = 60.0\n",
    );
    let http = daemon.http;
    let viewer = BackgroundViewer::connect(http);
    viewer.wait_bytes(20_000, Duration::from_secs(10));
    pin(http, "1");
    let s = daemon.wait_status("both rungs on the decoder", Duration::from_secs(15), |s| {
        s["decoder"]["encoders"] == 2 && s["viewers"][0]["rung"] == 1
    });
    let hung = s["decoder"]["pid"].as_i64().unwrap();
    // SAFETY: kill(2) on our daemon's ffmpeg.
    unsafe { libc::kill(hung as i32, libc::SIGSTOP) };
    let stopped = Instant::now();
    let s = daemon.wait_status("a new decoder", Duration::from_secs(15), |s| {
        s["decoder"]["pid"].as_i64().is_some_and(|p| p != hung)
            && s["decoder"]["restarts_by_reason"]["no output"] == 1
            && s["encoders"]
                .as_array()
                .unwrap()
                .iter()
                .all(|e| e["restarts_by_reason"]["decoder restarted"].as_u64() >= Some(1))
    });
    println!(
        "hung decoder replaced after {:.1} s: {:#}",
        stopped.elapsed().as_secs_f64(),
        s["decoder"]
    );
    assert!(
        wait_gone(&[hung], Duration::from_secs(5)),
        "the hung decoder {hung} was left behind"
    );
    for e in s["encoders"].as_array().unwrap() {
        assert!(
            e["restarts_by_reason"]["no output"].is_null(),
            "an encoder waiting for frames is not hung: {e:#}"
        );
    }
    let at = viewer.len();
    viewer.wait_bytes(at + 30_000, Duration::from_secs(10));
}

#[test]
fn a_new_camera_timeline_restarts_the_decoder_and_its_encoders_count_it() {
    let dir = temp_dir("shared-timeline");
    let ports = Ports::new();
    let config = Config::new(&ports)
        .source("stall_timeout_s = 2.0")
        .extra("[adapt]\nidle_rung_s = 60.0\n")
        .write(&dir.join("livestreamd.toml"));
    let camera = CameraSender::start("127.0.0.1", ports.source, "testsrc");
    let args = ["run", "--config", config.to_str().unwrap()];
    let daemon = Daemon::start_with(&dir, &args, &[INFO_LOG], ports.http);
    daemon.wait_streaming();
    let viewer = BackgroundViewer::connect(ports.http);
    viewer.wait_bytes(20_000, Duration::from_secs(10));
    pin(ports.http, "1");
    daemon.wait_status("both rungs on the decoder", Duration::from_secs(15), |s| {
        s["decoder"]["encoders"] == 2 && s["viewers"][0]["rung"] == 1
    });
    // Several seconds in, the camera starts its stream again: timestamps from zero.
    std::thread::sleep(Duration::from_secs(4));
    drop(camera);
    let before = viewer.len();
    let restarted = Instant::now();
    let _camera = CameraSender::start("127.0.0.1", ports.source, "testsrc");
    let s = daemon.wait_status(
        "restarts on the new timeline",
        Duration::from_secs(15),
        |s| {
            s["decoder"]["restarts_by_reason"]["new timeline"] == 1
                && s["encoders"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .all(|e| e["restarts_by_reason"]["new timeline"] == 1)
        },
    );
    println!("{:#}", s["encoders"]);
    wait_until(
        "frames of the new timeline",
        Duration::from_secs(10),
        || {
            let fresh = frames(&dir, "after.ts", &viewer.bytes_from(before))
                .into_iter()
                .filter(|(pts, _)| *pts < 4.0)
                .count();
            (fresh >= 10).then_some(())
        },
    );
    println!(
        "new-timeline frames at the viewer {:.1} s after the camera restarted",
        restarted.elapsed().as_secs_f64()
    );
    assert!(!viewer.ended(), "the viewer kept its connection");
}

#[test]
fn a_stuck_encoder_costs_only_itself_and_memory_stays_bounded() {
    let (dir, daemon) = demo(
        "shared-stuck",
        "output_timeout_s = 3.0",
        "[adapt]\nidle_rung_s = 60.0\n",
    );
    let http = daemon.http;
    let viewer = BackgroundViewer::connect(http);
    viewer.wait_bytes(20_000, Duration::from_secs(10));
    // Rung 1 starts (sharing the decoder), then the viewer goes back to rung 0;
    // rung 1 keeps running, unwatched.
    pin(http, "1");
    daemon.wait_status("the viewer on rung 1", Duration::from_secs(15), |s| {
        s["decoder"]["encoders"] == 2 && s["viewers"][0]["rung"] == 1
    });
    pin(http, "0");
    let s = daemon.wait_status("the viewer back on rung 0", Duration::from_secs(15), |s| {
        s["viewers"][0]["rung"] == 0 && s["decoder"]["encoders"] == 2
    });
    let stuck = s["encoders"]
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["rung"] == 1)
        .and_then(|e| e["pid"].as_i64())
        .unwrap();
    let skipped = &s["decoder"]["frames_skipped"];
    let rss_before = rss_kib(daemon.proc.pid());
    let from = viewer.len();
    // SAFETY: kill(2) on our daemon's ffmpeg.
    unsafe { libc::kill(stuck as i32, libc::SIGSTOP) };
    let mut rss_max = 0;
    for_period(Duration::from_secs(2), |_| {
        rss_max = rss_max.max(rss_kib(daemon.proc.pid()));
    });
    let s = daemon.wait_status("the stuck encoder replaced", Duration::from_secs(15), |s| {
        s["encoders"]
            .as_array()
            .unwrap()
            .iter()
            .any(|e| e["rung"] == 1 && e["restarts_by_reason"]["no output"] == 1)
    });
    rss_max = rss_max.max(rss_kib(daemon.proc.pid()));
    println!(
        "frames skipped {} (before {skipped}); RSS {rss_before} KiB before, at most {rss_max} KiB",
        s["decoder"]["frames_skipped"]
    );
    assert!(
        rss_max < rss_before + 8 * 1024,
        "the daemon grew from {rss_before} to {rss_max} KiB"
    );
    let frames = frames(&dir, "stuck.ts", &viewer.bytes_from(from));
    println!("rung 0's viewer meanwhile: {} frames", frames.len());
    assert!(frames.iter().all(|f| f.1 == 320));
    assert_gapless(&frames);
}

/// Decodes `camera` (MPEG-TS) with the shared decoder's arguments and cuts
/// its output: (header bytes, frames as (pts, bytes)).
fn decode(camera: &[u8], size: (u32, u32)) -> (usize, Vec<(Option<u64>, usize)>) {
    let mut child = Command::new("ffmpeg")
        .args(decoder::ffmpeg_args(size))
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut stdin = child.stdin.take().unwrap();
    let input = camera.to_vec();
    let writer = std::thread::spawn(move || {
        let _ = stdin.write_all(&input);
    });
    let mut out = Vec::new();
    child.stdout.take().unwrap().read_to_end(&mut out).unwrap();
    writer.join().unwrap();
    child.wait().unwrap();
    let mut split = Splitter::new(decoder::frame_bytes(size) + 65536);
    let mut header = 0;
    let mut frames = Vec::new();
    for part in out.chunks(65536) {
        split.push(part);
        while let Some(p) = split.next_piece().unwrap() {
            match p {
                Piece::Header(h) => header = h.len(),
                Piece::Frame(f) => frames.push((f.pts, f.data.len())),
            }
        }
    }
    (header, frames)
}

/// A camera's stream: 2 s of test pattern at 30 fps in MPEG-TS, with `codec`.
fn camera_clip(codec: &[&str]) -> Vec<u8> {
    let out = Command::new("ffmpeg")
        .args(["-hide_banner", "-loglevel", "error", "-f", "lavfi"])
        .args(["-i", "testsrc2=size=640x360:rate=30", "-t", "2"])
        .args(codec)
        .args(["-pix_fmt", "yuv420p", "-g", "30", "-f", "mpegts", "pipe:1"])
        .output()
        .unwrap();
    assert!(out.status.success() && !out.stdout.is_empty(), "no clip");
    out.stdout
}

#[test]
fn h264_and_hevc_cameras_are_cut_into_whole_raw_frames_on_the_cameras_clock() {
    for (name, codec) in [
        ("H.264", &["-c:v", "libx264", "-profile:v", "high"][..]),
        (
            "HEVC",
            &["-c:v", "libx265", "-x265-params", "log-level=error"][..],
        ),
    ] {
        let clip = camera_clip(codec);
        let (header, cut) = decode(&clip, (320, 180));
        println!("{name}: header {header} bytes, {} frames", cut.len());
        assert!(header > 25, "{name}: a header");
        assert_eq!(cut.len(), 60, "{name}: every frame, whole");
        let raw = decoder::frame_bytes((320, 180));
        assert!(
            cut.iter().all(|(_, len)| (raw..raw + 64).contains(len)),
            "{name}: each piece is one raw frame and its syncpoint"
        );
        let pts: Vec<u64> = cut.iter().map(|f| f.0.expect("a syncpoint")).collect();
        assert!(
            pts.windows(2).all(|w| w[1] - w[0] == 3000),
            "{name}: the camera's 90 kHz timestamps, one frame apart: {pts:?}"
        );
        // The camera's time, not zero: its first frame's own timestamp.
        let dir = temp_dir("shared-cut");
        let first = frames(&dir, "clip.ts", &clip)[0].0;
        assert_eq!(pts[0], (first * 90_000.0).round() as u64, "{name}");
    }
}

#[test]
fn an_encoder_of_decoded_frames_stamps_them_with_the_cameras_time() {
    let clip = camera_clip(&["-c:v", "libx264"]);
    let dir = temp_dir("shared-stamps");
    let first = frames(&dir, "clip.ts", &clip)[0].0;
    let cfg = livestreamd::config::parse(
        std::path::Path::new("t.toml"),
        "[encoder]\npreset = \"ultrafast\"\n[[ladder]]\nwidth = 160\nheight = 90\nfps = 15\nbitrate_kbps = 200\n",
    )
    .unwrap();
    // The decoder's NUT, through an encoder of the rung, to MPEG-TS.
    let mut dec = Command::new("ffmpeg")
        .args(decoder::ffmpeg_args((320, 180)))
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let enc = Command::new("ffmpeg")
        .args(encoder::ffmpeg_args_from_frames(&cfg, &cfg.ladder()[0]))
        .stdin(dec.stdout.take().unwrap())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdin = dec.stdin.take().unwrap();
    let writer = std::thread::spawn(move || {
        let _ = stdin.write_all(&clip);
    });
    let out = enc.wait_with_output().unwrap();
    writer.join().unwrap();
    dec.wait().unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let frames = frames(&dir, "rung.ts", &out.stdout);
    let pts: Vec<f64> = frames.iter().map(|f| f.0).collect();
    println!(
        "{} frames from {:?} to {:?}",
        pts.len(),
        pts.first(),
        pts.last()
    );
    assert!(pts.len() >= 28, "15 fps of 2 s");
    assert!(
        (pts[0] - first).abs() < 0.001,
        "the camera's first timestamp, {first}: {pts:?}"
    );
    assert!(
        pts.windows(2)
            .all(|w| ((w[1] - w[0]) - 1.0 / 15.0).abs() < 0.001),
        "on the rung's 15 fps grid of camera time: {pts:?}"
    );
    assert!(frames.iter().all(|f| f.1 == 160));
}

#[test]
fn a_decoder_that_never_gives_a_frame_is_given_up_for_encoders_of_the_camera() {
    // An ffmpeg without the NUT format: the decoder fails at every start.
    let dir = temp_dir("shared-broken");
    let wrapper = dir.join("ffmpeg-without-nut");
    std::fs::write(
        &wrapper,
        "#!/bin/sh\nfor a in \"$@\"; do [ \"$a\" = nut ] && { echo \"Unknown format 'nut'\" >&2; exit 1; }; done\nexec ffmpeg \"$@\"\n",
    )
    .unwrap();
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&wrapper, std::fs::Permissions::from_mode(0o755)).unwrap();
    let ports = Ports::new();
    let config = Config::new(&ports)
        .encoder(&format!(
            "ffmpeg = \"{}\"\nrestart_initial_s = 0.2",
            wrapper.display()
        ))
        .extra("[adapt]\nidle_rung_s = 60.0\n")
        .write(&dir.join("livestreamd.toml"));
    let daemon = Daemon::start_with(
        &dir,
        &demo_args(&config, &["--size", "640x360"]),
        &[INFO_LOG],
        ports.http,
    );
    daemon.wait_streaming();
    let viewer = BackgroundViewer::connect(ports.http);
    viewer.wait_bytes(20_000, Duration::from_secs(10));
    pin(ports.http, "1");
    let s = daemon.wait_status(
        "both rungs encoding from the camera",
        Duration::from_secs(20),
        |s| {
            inputs(s) == [(0, "camera".into()), (1, "camera".into())]
                && s["decoder"].is_null()
                && s["viewers"][0]["rung"] == 1
        },
    );
    println!("{:#}", s["encoders"]);
    assert!(daemon
        .log_text()
        .contains("the shared decoder gave no frame"));
    let at = viewer.len();
    viewer.wait_bytes(at + 30_000, Duration::from_secs(10));
}

#[test]
fn a_viewer_watching_a_rung_handed_over_to_the_decoder_sees_no_gap() {
    // A standby rung (1) starts as soon as someone watches rung 0: rung 0,
    // watched, is handed over from decoding the camera to the decoder's frames.
    let dir = temp_dir("shared-handover");
    let ports = Ports::new();
    let config = Config::new(&ports)
        .extra("[adapt]\nmode = \"fixed\"\nstandby_rung = 1\n")
        .write(&dir.join("livestreamd.toml"));
    let daemon = Daemon::start_with(
        &dir,
        &demo_args(&config, &["--size", "640x360"]),
        &[INFO_LOG],
        ports.http,
    );
    daemon.wait_streaming();
    let viewer = BackgroundViewer::connect(ports.http);
    let s = daemon.wait_status("rung 0 handed over", Duration::from_secs(20), |s| {
        inputs(s) == [(0, "decoder".into()), (1, "decoder".into())]
            && s["viewers"][0]["rung"] == 0
            && s["hub"]["tracks"]
                .as_array()
                .is_some_and(|t| t.iter().filter(|t| t["rung"] == 0).count() == 1)
    });
    let generation = s["encoders"][0]["generation"].as_u64().unwrap();
    assert!(
        generation > 1,
        "a new encoder of rung 0: {:#}",
        s["encoders"]
    );
    let at = viewer.len();
    viewer.wait_bytes(at + 50_000, Duration::from_secs(10));
    let frames = frames(&dir, "handover.ts", &viewer.bytes_from(0));
    println!("{} frames across the hand-over", frames.len());
    assert!(frames.iter().all(|f| f.1 == 320), "rung 0 throughout");
    assert_gapless(&frames);
}
