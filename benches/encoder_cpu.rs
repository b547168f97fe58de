//! Benchmark (not a test): the CPU the encoded rungs cost, with 1, 2 and 3
//! of them running, decoding the camera once per encoder (`shared_decoder =
//! false`, how every encoder worked before the shared decoder) and once for
//! all (`shared_decoder = true`, the default), in one run.
//!
//! The ladder and preset are the Debian image's (debian-image/config-changes.toml).
//! The camera is a clip encoded the way a camera's encoder does (High
//! profile, CABAC, B-frames, a keyframe a second; 848x480@30 at 4 Mbit/s
//! unless `--camera WxH@FPS` / `--kbps N`), looped in real time over UDP by
//! an ffmpeg of its own (not counted). The image's ladder starts with the
//! camera's own stream (rung 0, passthrough: the start rung, not encoded);
//! one viewer on loopback; the encoded rungs are brought up by pinning
//! (`POST /rung?set=N`: 1, then 2, then 3) with idle rungs kept, so 1, 2 and
//! then 3 encoded rungs run. Each step settles for 8 s and is measured for
//! `--secs` (20): the CPU of the daemon and of every ffmpeg below it that
//! decodes or encodes (its encoders and the shared decoder; the passthrough
//! rung's remux, the same in both modes, is left out), from /proc.
//!
//! The build before issue 23 (`--baseline-rev`, default `ee43201`, built
//! once into target/latency-baseline/, or `--baseline PATH`) runs the same
//! steps first: "today's CPU" of the issue, every encoder decoding the
//! camera and encoding with x264's own thread count, its passthrough rung a
//! remux process (left out as above).
//!
//!   cargo bench --bench encoder_cpu                      (appended to benches/RESULTS.md)
//!   cargo bench --bench encoder_cpu -- --secs 10 --no-record

#[path = "../tests/common/mod.rs"]
mod common;

use common::peers::*;
use common::*;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

const IMAGE_CONFIG: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/debian-image/config-changes.toml"
);

/// The image's `[encoder]` preset and `[[ladder]]` tables, as TOML text.
fn image_settings() -> (String, String) {
    let text = std::fs::read_to_string(IMAGE_CONFIG).expect("debian-image/config-changes.toml");
    let lines: Vec<&str> = text
        .lines()
        .map(|l| l.split('#').next().unwrap().trim())
        .filter(|l| !l.is_empty())
        .collect();
    let preset = lines
        .iter()
        .find(|l| l.starts_with("preset"))
        .map(|l| l.to_string())
        .expect("the image sets a preset");
    let first = lines
        .iter()
        .position(|l| *l == "[[ladder]]")
        .expect("the image sets a ladder");
    let ladder = lines[first..].join("\n") + "\n";
    (preset, ladder)
}

/// The camera: a clip encoded once, then looped in real time to `port` by
/// the returned process (stopped when dropped).
fn camera(dir: &Path, spec: &CameraSpec, port: u16) -> Proc {
    let clip = dir.join("camera.ts");
    let size = format!(
        "testsrc2=size={}x{}:rate={}",
        spec.width, spec.height, spec.fps
    );
    let kbps = format!("{}k", spec.kbps);
    let gop = spec.fps.to_string();
    let status = std::process::Command::new("ffmpeg")
        .args([
            "-hide_banner",
            "-loglevel",
            "error",
            "-y",
            "-f",
            "lavfi",
            "-i",
            &size,
        ])
        .args(["-t", "10", "-vf", "noise=alls=8:allf=t", "-c:v", "libx264"])
        .args([
            "-preset",
            "veryfast",
            "-profile:v",
            "high",
            "-pix_fmt",
            "yuv420p",
        ])
        .args([
            "-b:v", &kbps, "-maxrate", &kbps, "-bufsize", &kbps, "-g", &gop,
        ])
        .args(["-f", "mpegts"])
        .arg(&clip)
        .status()
        .expect("ffmpeg");
    assert!(status.success(), "could not encode the camera's clip");
    let url = format!("udp://127.0.0.1:{port}?pkt_size=1316");
    let clip_s = clip.display().to_string();
    let args = [
        "-hide_banner",
        "-nostdin",
        "-loglevel",
        "error",
        "-re",
        "-stream_loop",
        "-1",
        "-i",
        &clip_s,
        "-c",
        "copy",
        "-f",
        "mpegts",
        &url,
    ];
    spawn(dir, "camera", "ffmpeg", &args, &[], None).unwrap_or_else(|e| panic!("{e}"))
}

/// One viewer reading `/stream.ts` on a thread until dropped.
struct Viewer {
    stop: Arc<AtomicBool>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Viewer {
    fn start(port: u16) -> Viewer {
        let stop = Arc::new(AtomicBool::new(false));
        let s = stop.clone();
        let thread = std::thread::spawn(move || {
            let mut v = common::Viewer::connect(port);
            while !s.load(Ordering::Relaxed) {
                v.read_for(Duration::from_millis(200));
                v.received.clear();
            }
        });
        Viewer {
            stop,
            thread: Some(thread),
        }
    }
}

impl Drop for Viewer {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// What one step measured.
struct Step {
    /// The encoded rungs running.
    rungs: Vec<i64>,
    /// ffmpeg processes decoding or encoding.
    processes: usize,
    /// Percent of one core: those processes and the daemon, the daemon
    /// alone, the decoder alone.
    total: f64,
    daemon: f64,
    decoder: Option<f64>,
    skipped: Option<u64>,
}

/// Samples the daemon's process tree every half second for `window`.
fn measure(daemon: i32, window: Duration) -> CpuMeter {
    let tree = || -> Vec<i32> { process_tree(&[daemon]).iter().map(|p| p.0).collect() };
    let mut cpu = CpuMeter::start(&tree());
    let until = Instant::now() + window;
    while Instant::now() < until {
        sleep_until((Instant::now() + Duration::from_millis(500)).min(until));
        cpu.sample(&tree());
    }
    cpu
}

fn status(port: u16) -> serde_json::Value {
    let r = http_get(port, "/status").expect("/status");
    serde_json::from_slice(&r.body).expect("/status is JSON")
}

/// A build and how it decodes: `shared_decoder` set to `Some(x)`, or left
/// out (a build that has no such setting).
struct Mode {
    name: &'static str,
    bin: PathBuf,
    shared_decoder: Option<bool>,
}

/// One mode: its daemon with 1, 2 then 3 encoded rungs.
fn run_mode(
    dir: &Path,
    mode: &Mode,
    spec: &CameraSpec,
    window: Duration,
) -> Result<Vec<Step>, String> {
    let (name, bin) = (mode.name, mode.bin.as_path());
    let dir = dir.join(name);
    std::fs::create_dir_all(&dir).unwrap();
    let ports = Ports::new();
    let (preset, ladder) = image_settings();
    let decoding = mode
        .shared_decoder
        .map_or(String::new(), |s| format!("\nshared_decoder = {s}"));
    let config = Config::new(&ports)
        .encoder(&format!("{preset}{decoding}"))
        .ladder(&[])
        .extra(&format!(
            "{ladder}\n[adapt]\nmode = \"fixed\"\nmax_encoders = 4\nidle_rung_s = 3600.0\n"
        ))
        .text()
        .replacen("preset = \"ultrafast\"\n", "", 1);
    let path = dir.join("livestreamd.toml");
    std::fs::write(&path, config).unwrap();
    check_config(bin, &path)?;
    let _camera = camera(&dir, spec, ports.source);
    let args = [
        "run".to_string(),
        "--config".into(),
        path.display().to_string(),
    ];
    let level = log_level("livestreamd=info");
    let bin_s = bin.display().to_string();
    let daemon = spawn(
        &dir,
        "livestreamd",
        &bin_s,
        &args,
        &[("RUST_LOG", &level)],
        None,
    )?;
    let port = ports.http;
    let ready = poll(Duration::from_secs(30), Duration::from_millis(200), || {
        let s = http_get(port, "/status").ok()?;
        let s: serde_json::Value = serde_json::from_slice(&s.body).ok()?;
        // The start rung is the camera's own (passthrough, no process): the
        // picture is there once the source is live.
        (s["source"]["state"] == "live").then_some(())
    });
    ready.ok_or_else(|| format!("{name}: no picture in 30 s:\n{}", daemon.log_text()))?;
    let _viewer = Viewer::start(port);
    let mut steps = Vec::new();
    for rung in 1..=3 {
        let r =
            http_method(port, "POST", &format!("/rung?set={rung}")).map_err(|e| e.to_string())?;
        if r.code != 200 {
            return Err(format!("POST /rung?set={rung}: {}", r.head));
        }
        sleep_until(Instant::now() + Duration::from_secs(8));
        let cpu = measure(daemon.pid(), window);
        let s = status(port);
        let encoders = s["encoders"].as_array().unwrap();
        let encoded = |e: &&serde_json::Value| e["passthrough"] != true;
        let rungs: Vec<i64> = encoders
            .iter()
            .filter(encoded)
            .filter_map(|e| e["rung"].as_i64())
            .collect();
        let remux: Vec<i32> = encoders
            .iter()
            .filter(|e| !encoded(e))
            .filter_map(|e| e["pid"].as_i64())
            .map(|p| p as i32)
            .collect();
        let working: Vec<i32> = ffmpeg_below(daemon.pid())
            .into_iter()
            .filter(|p| !remux.contains(p))
            .collect();
        let decoder = s["decoder"]["pid"]
            .as_i64()
            .map(|p| cpu.percent(Some(p as i32)));
        let daemon_cpu = cpu.percent(Some(daemon.pid()));
        let step = Step {
            processes: working.len(),
            total: daemon_cpu + working.iter().map(|p| cpu.percent(Some(*p))).sum::<f64>(),
            daemon: daemon_cpu,
            decoder,
            skipped: s["decoder"]["frames_skipped"].as_u64(),
            rungs,
        };
        eprintln!(
            "{name}: encoded rungs {:?}, {} ffmpeg decoding or encoding, {:.1} % with the daemon",
            step.rungs, step.processes, step.total
        );
        steps.push(step);
    }
    Ok(steps)
}

fn usage(what: &str) -> ! {
    eprintln!("encoder_cpu: {what} (see benches/encoder_cpu.rs)");
    std::process::exit(2)
}

fn main() {
    let args = BenchArgs::parse().unwrap_or_else(|e| usage(&e));
    stop_on_interrupt();
    let mut window = Duration::from_secs(20);
    let (mut baseline, mut baseline_rev) = (None, baseline::BEFORE_ISSUE_23.to_string());
    let mut it = args.rest.iter();
    while let Some(a) = it.next() {
        let mut value = || {
            it.next()
                .cloned()
                .unwrap_or_else(|| usage(&format!("{a} needs a value")))
        };
        match a.as_str() {
            "--secs" => {
                let secs = value().parse().unwrap_or_else(|_| usage("--secs N"));
                window = Duration::from_secs(secs);
            }
            "--baseline" => baseline = Some(PathBuf::from(value())),
            "--baseline-rev" => baseline_rev = value(),
            other => usage(&format!("unknown argument `{other}`")),
        }
    }
    // The camera of issue 23's measurement unless one is given.
    let spec = if args.text.contains("--camera") || args.text.contains("--kbps") {
        args.camera
    } else {
        CameraSpec::parse("848x480@30", Some(4000)).unwrap()
    };
    let baseline_bin = baseline
        .map(Ok)
        .unwrap_or_else(|| baseline::build(&baseline_rev))
        .unwrap_or_else(|e| usage(&format!("no baseline build: {e}")));
    let baseline_name = if args.text.contains("--baseline ") {
        baseline_bin.display().to_string()
    } else {
        baseline_rev
    };
    let began = Instant::now();
    let load_start = load_average();
    let dir = temp_dir("bench-encoder-cpu");
    let modes = [
        Mode {
            name: "today",
            bin: baseline_bin,
            shared_decoder: None,
        },
        Mode {
            name: "per-encoder",
            bin: args.bin.clone(),
            shared_decoder: Some(false),
        },
        Mode {
            name: "shared",
            bin: args.bin.clone(),
            shared_decoder: Some(true),
        },
    ];
    let runs: Vec<Result<Vec<Step>, String>> = modes
        .iter()
        .map(|m| run_mode(&dir, m, &spec, window))
        .collect();
    let mut rows = String::new();
    match &runs[..] {
        [Ok(today), Ok(per_encoder), Ok(shared)] => {
            for ((t, p), a) in today.iter().zip(per_encoder).zip(shared) {
                let decoder = a.decoder.map_or("–".into(), |d| format!("{d:.1} %"));
                let skipped = a.skipped.map_or("–".into(), |s| s.to_string());
                let ratio = |x: f64, y: f64| 100.0 * x / y.max(1e-3);
                writeln!(
                    rows,
                    "| {} | {:?} | {} | {:.1} % | {:.1} % | {} | {:.1} % | {} | {:.1} % | {:.1} % | {decoder} | {skipped} | **{:.0} %** | {:.0} % |",
                    t.rungs.len(),
                    a.rungs,
                    t.processes,
                    t.total,
                    t.daemon,
                    p.processes,
                    p.total,
                    a.processes,
                    a.total,
                    a.daemon,
                    ratio(a.total, t.total),
                    ratio(a.total, p.total),
                )
                .unwrap();
            }
        }
        _ => {
            for (mode, r) in modes.iter().zip(&runs) {
                if let Err(e) = r {
                    let e = e.replace('|', "/");
                    writeln!(rows, "| {}: could not run: {e} |", mode.name).unwrap();
                }
            }
        }
    }
    let (preset, _) = image_settings();
    let report = format!(
        "\n## Encoder CPU: today's build, the camera decoded once per encoder, and once for all, {date}\n\n\
Command: `{command}` (release build; {minutes:.1} min). livestreamd build {commit}; *today's build*: {baseline_name}.\n\
Machine: 2 cores, shared with other work: load average {load_start} at the start, {load_end} at the end.\n\
Camera: {camera}, sent over UDP by its own ffmpeg (not counted).\n\
Ladder and preset: the Debian image's (`{preset}`; the camera's own stream as rung 0, the start rung, then 640x360@30 1000, 480x270@30 600, 320x180@15 250 kbit/s encoded); `adapt.mode = \"fixed\"`, one viewer on loopback; encoded rungs brought up by pinning 1, then 2, then 3 (idle rungs kept), 8 s to settle, then {secs} s measured; the three setups one after the other. CPU from /proc, % of one core: the daemon and every ffmpeg below it that decodes or encodes (a passthrough rung's remux process, in today's build only, left out). *Today's build*: the build before issue 23 (each encoder decodes the camera; x264 with its own thread count); *per encoder*: this build with `shared_decoder = false` (each encoder decodes the camera; rungs up to 640x360 encode in one thread); *shared*: this build's default (one decoder for all while two or more encoded rungs run; one encoded rung alone still decodes for itself).\n\n\
| encoded rungs | running | today's build: ffmpeg decoding or encoding | today's build: CPU with the daemon | today's build: daemon | per encoder: ffmpeg | per encoder: CPU with the daemon | shared: ffmpeg | shared: CPU with the daemon | shared: daemon | shared: decoder | frames skipped | shared / today's build | shared / per encoder |\n| ---: | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |\n{rows}",
        date = utc_now(),
        command = args.command("encoder_cpu"),
        minutes = began.elapsed().as_secs_f64() / 60.0,
        commit = git_commit(),
        load_end = load_average(),
        camera = camera_description(&spec),
        secs = window.as_secs(),
    );
    args.report(&dir, &report);
}

fn camera_description(spec: &CameraSpec) -> String {
    format!(
        "{} (x264 veryfast, High profile, a keyframe a second), a 10 s clip looped in real time",
        spec.describe()
    )
}
