//! Where an encoder of the camera puts its keyframes, with the real ffmpeg:
//! on its first frame, on the grid of `keyframe_interval_s` after it, and,
//! fed from the start of the camera's group of pictures, on the first frame
//! at live and a few after it (a viewer stepping down to it moves at once).

mod common;

use common::*;
use livestreamd::media::encoder;
use std::process::Command;

/// A camera's 3 s of 640x360@30 H.264 in MPEG-TS, a keyframe every 2 s,
/// starting at the camera's own time (1000 s), not zero.
fn camera_clip(dir: &std::path::Path) -> std::path::PathBuf {
    let path = dir.join("camera.ts");
    let ok = Command::new("ffmpeg")
        .args(["-hide_banner", "-loglevel", "error", "-y", "-f", "lavfi"])
        .args(["-i", "testsrc2=size=640x360:rate=30", "-t", "3"])
        .args(["-c:v", "libx264", "-preset", "ultrafast", "-g", "60"])
        .args([
            "-output_ts_offset",
            "1000",
            "-muxdelay",
            "0",
            "-f",
            "mpegts",
        ])
        .arg(&path)
        .status()
        .unwrap()
        .success();
    assert!(ok, "no clip");
    path
}

/// The keyframes' times of the rung encoded from `clip`, seconds after its
/// first frame.
fn keyframes(clip: &std::path::Path, catch_up_s: Option<f64>) -> Vec<f64> {
    let cfg = livestreamd::config::parse(
        std::path::Path::new("t.toml"),
        "[encoder]\npreset = \"ultrafast\"\nkeyframe_interval_s = 1.0\n\
         [[ladder]]\nwidth = 320\nheight = 180\nfps = 30\nbitrate_kbps = 300\n",
    )
    .unwrap();
    let mut args = encoder::ffmpeg_args(&cfg, &cfg.ladder()[0], catch_up_s);
    let input = args.iter().position(|a| a == "pipe:0").unwrap();
    args[input] = clip.display().to_string();
    let out = clip.with_extension(format!("{catch_up_s:?}.ts"));
    *args.last_mut().unwrap() = out.display().to_string();
    let ok = Command::new("ffmpeg")
        .args(&args)
        .status()
        .unwrap()
        .success();
    assert!(ok, "ffmpeg {args:?}");
    let probe = Command::new("ffprobe")
        .args(["-v", "error", "-show_entries", "packet=pts_time,flags"])
        .args(["-of", "csv=p=0"])
        .arg(&out)
        .output()
        .unwrap();
    let lines = String::from_utf8_lossy(&probe.stdout).to_string();
    let packets: Vec<(f64, bool)> = lines
        .lines()
        .filter_map(|l| {
            let mut f = l.split(',');
            Some((f.next()?.parse().ok()?, f.next()?.starts_with('K')))
        })
        .collect();
    let first = packets[0].0;
    packets
        .iter()
        .filter(|p| p.1)
        .map(|p| ((p.0 - first) * 1000.0).round() / 1000.0)
        .collect()
}

#[test]
fn an_encoder_fed_a_catch_up_makes_the_frame_at_live_a_keyframe_and_keeps_its_grid() {
    let dir = temp_dir("encoder-keyframes");
    let clip = camera_clip(&dir);
    assert_eq!(
        keyframes(&clip, None),
        vec![0.0, 1.0, 2.0],
        "the first frame, then every second"
    );
    assert_eq!(
        keyframes(&clip, Some(0.4)),
        vec![0.0, 0.4, 0.6, 0.8, 1.0, 2.0],
        "and from the frame 0.4 s in, where the camera was when it started, every 0.2 s for 0.4 s"
    );
    assert_eq!(
        keyframes(&clip, Some(0.7)),
        vec![0.0, 0.7, 0.9, 1.0, 2.0],
        "never past the grid's own"
    );
    // A catch-up misjudged as longer than the grid's interval delays nothing.
    assert_eq!(keyframes(&clip, Some(5.0)), vec![0.0, 1.0, 2.0]);
}
