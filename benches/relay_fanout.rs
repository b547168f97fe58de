//! Benchmark (not a test): what serving viewers costs, in three sections.
//!
//! - `fanout`: the daemon's own CPU (ffmpeg excluded) per megabit served and
//!   its memory, with 0 (the baseline), 1, 4 and 8 viewers reading
//!   `/stream.ts` on loopback (`livestreamd demo`, 320x180).
//! - `rungs`: each encoder's CPU, rung by rung: one viewer, the rung pinned
//!   with `POST /rung?set=N`, every ffmpeg below the daemon measured from
//!   /proc (`/status` names each encoder's rung where the build lists them).
//! - `passthrough`: everything the daemon and its encoders take with two
//!   viewers on the top rung, the top rung re-encoded versus the camera's own
//!   stream passed through (two configs; the second needs a build that
//!   accepts `passthrough = true`).
//!
//! `rungs` and `passthrough` use the benchmark's camera (ffmpeg test pattern,
//! 960x540@30 at 2.4 Mbit/s unless `--camera WxH@FPS` / `--kbps N`).
//!
//!   cargo bench --bench relay_fanout                     (all three, appended to benches/RESULTS.md)
//!   cargo bench --bench relay_fanout -- rungs passthrough --secs 20 --bin PATH --no-record

#[path = "../tests/common/mod.rs"]
mod common;

use common::peers::*;
use common::*;
use std::fmt::Write as _;
use std::path::Path;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Viewers reading `/stream.ts` on loopback on threads, counting bytes.
struct Readers {
    stop: Arc<AtomicBool>,
    bytes: Arc<AtomicU64>,
    threads: Vec<std::thread::JoinHandle<()>>,
}

impl Readers {
    fn start(port: u16, n: usize) -> Readers {
        let stop = Arc::new(AtomicBool::new(false));
        let bytes = Arc::new(AtomicU64::new(0));
        let threads = (0..n)
            .map(|_| {
                let (stop, bytes) = (stop.clone(), bytes.clone());
                std::thread::spawn(move || {
                    let mut v = Viewer::connect(port);
                    while !stop.load(Ordering::Relaxed) {
                        let n = v.read_for(Duration::from_millis(200));
                        bytes.fetch_add(n as u64, Ordering::Relaxed);
                        v.received.clear();
                    }
                })
            })
            .collect();
        Readers {
            stop,
            bytes,
            threads,
        }
    }

    /// Bytes read since the last call.
    fn take_bytes(&self) -> u64 {
        self.bytes.swap(0, Ordering::Relaxed)
    }
}

impl Drop for Readers {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        for t in self.threads.drain(..) {
            let _ = t.join();
        }
    }
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

/// The daemon's own CPU per megabit served and its memory (the section as
/// it was before: `livestreamd demo`, its own small camera).
fn fanout(window: Duration) -> String {
    let dir = temp_dir("bench-fanout");
    let ports = Ports::new();
    // Every viewer is on 127.0.0.1: the per-address cap must let 8 in.
    let config = Config::new(&ports)
        .encoder("restart_initial_s = 0.3")
        .server("max_viewers_per_address = 16")
        .extra("[adapt]\nmode = \"fixed\"\n")
        .write(&dir.join("livestreamd.toml"));
    let daemon = Daemon::demo(&dir, &config, ports.http);
    daemon.wait_streaming();
    sleep_until(Instant::now() + Duration::from_secs(2));
    let mut rows = String::new();
    for viewers in [0usize, 1, 4, 8] {
        let readers = Readers::start(ports.http, viewers);
        sleep_until(Instant::now() + Duration::from_secs(2)); // let them join
        readers.take_bytes();
        let (cpu0, t0) = (cpu_seconds(daemon.pid()), Instant::now());
        let mut rss_max = 0;
        while t0.elapsed() < window {
            sleep_until(Instant::now() + Duration::from_millis(250));
            rss_max = rss_max.max(rss_kib(daemon.pid()));
        }
        let cpu = cpu_seconds(daemon.pid()) - cpu0;
        let secs = t0.elapsed().as_secs_f64();
        let megabits = readers.take_bytes() as f64 * 8.0 / 1e6;
        drop(readers);
        let per_mbit = if megabits > 0.0 {
            format!("{:.2} ms", cpu * 1000.0 / megabits)
        } else {
            "–".into()
        };
        writeln!(
            rows,
            "| {viewers} | {:.2} | {:.1} % | {per_mbit} | {} |",
            megabits / secs,
            100.0 * cpu / secs,
            rss_max
        )
        .unwrap();
        eprintln!(
            "{viewers} viewers: {:.2} Mbit/s served, CPU {:.1} %, RSS {rss_max} KiB",
            megabits / secs,
            100.0 * cpu / secs
        );
    }
    format!(
        "\nRelay fan-out (`livestreamd demo`, demo camera 320x180, rung 320x180@30 600 kbit/s, viewers on loopback, {} s per row; the daemon's own CPU, ffmpeg excluded; the 0-viewer row is the baseline):\n\n\
| viewers | Mbit/s served | daemon CPU | CPU per Mbit served | max RSS (KiB) |\n| --- | --- | --- | --- | --- |\n{rows}",
        window.as_secs()
    )
}

/// livestreamd on the benchmark's camera, serving; Err says why it cannot run.
fn start_daemon(
    args: &BenchArgs,
    camera: &Camera,
    dir: &Path,
    setup: DaemonSetup,
) -> Result<Running, String> {
    let (port, source_port) = (free_tcp_port(), free_udp_port());
    let launch = Launch {
        dir,
        camera: &args.camera,
        source_port,
        port,
        bin: &args.bin,
    };
    let mut running = System::Livestreamd(setup).launch(&launch)?;
    camera.send_to(Some(source_port));
    running.wait_ready(Duration::from_secs(40))?;
    Ok(running)
}

/// The rung `/status` gives the encoder with this pid, where the build lists encoders.
fn status_rung(status: &Option<serde_json::Value>, pid: i32) -> Option<i64> {
    let encoders = status.as_ref()?["encoders"].as_array()?;
    let e = encoders
        .iter()
        .find(|e| e["pid"].as_i64() == Some(i64::from(pid)))?;
    e["rung"].as_i64()
}

/// Each rung's encoder CPU, one rung at a time.
fn rungs(args: &BenchArgs, camera: &Camera, dir: &Path, window: Duration) -> String {
    let setup = DaemonSetup {
        name: "rungs".into(),
        adapt: "mode = \"fixed\"".into(),
        top: Top::Reencode,
    };
    let running = match start_daemon(args, camera, dir, setup) {
        Ok(r) => r,
        Err(why) => return format!("\nEncoder CPU per rung: could not run: {why}\n"),
    };
    let daemon = running.pids()[0];
    let _viewer = Readers::start(running.port, 1);
    let mut rows = String::new();
    for (i, (w, h, fps, kbps)) in args.camera.ladder().iter().enumerate() {
        let pin = http_method(running.port, "POST", &format!("/rung?set={i}"));
        if !pin.as_ref().is_ok_and(|r| r.code == 200) {
            let answer = pin.map_or_else(|e| e.to_string(), |r| r.head);
            writeln!(
                rows,
                "| {i} | {w}x{h}@{fps} {kbps} kbit/s | could not pin: {answer} | | | |"
            )
            .unwrap();
            continue;
        }
        // The switch starts the new encoder before it stops the old one.
        sleep_until(Instant::now() + Duration::from_secs(8));
        let cpu = measure(daemon, window);
        let status = running.status();
        let encoders = ffmpeg_below(daemon);
        let each: Vec<String> = encoders
            .iter()
            .map(|&p| {
                let rung = status_rung(&status, p).map_or(String::new(), |r| format!("rung {r}: "));
                format!("{rung}{:.1} %", cpu.percent(Some(p)))
            })
            .collect();
        let encoder_total: f64 = encoders.iter().map(|&p| cpu.percent(Some(p))).sum();
        eprintln!("rung {i} ({w}x{h}): encoders {each:?}");
        writeln!(
            rows,
            "| {i} | {w}x{h}@{fps} {kbps} kbit/s | {} | {} | {encoder_total:.1} % | {:.1} % |",
            encoders.len(),
            each.join(", "),
            cpu.percent(Some(daemon)),
        )
        .unwrap();
    }
    format!(
        "\nEncoder CPU per rung (`adapt.mode = \"fixed\"`, one viewer on loopback, the rung pinned with `POST /rung?set=N`, 8 s to switch, then {} s measured; each ffmpeg below the daemon from /proc; % of one core):\n\n\
| rung | picture | encoders running | CPU of each | encoders together | daemon itself |\n| ---: | --- | ---: | --- | ---: | ---: |\n{rows}",
        window.as_secs()
    )
}

/// Two viewers on the top rung: re-encoded, then passed through.
fn passthrough(args: &BenchArgs, camera: &Camera, dir: &Path, window: Duration) -> String {
    let mut rows = String::new();
    for (name, top) in [
        ("re-encoded", Top::Reencode),
        ("passthrough", Top::Passthrough),
    ] {
        let sdir = dir.join(name);
        std::fs::create_dir_all(&sdir).unwrap();
        let setup = DaemonSetup {
            name: name.into(),
            adapt: "mode = \"fixed\"".into(),
            top,
        };
        let running = match start_daemon(args, camera, &sdir, setup) {
            Ok(r) => r,
            Err(why) => {
                eprintln!("top rung {name}: could not run: {why}");
                writeln!(
                    rows,
                    "| {name} | could not run: {} | | | | | |",
                    why.replace('|', "/")
                )
                .unwrap();
                continue;
            }
        };
        let daemon = running.pids()[0];
        let readers = Readers::start(running.port, 2);
        sleep_until(Instant::now() + Duration::from_secs(6));
        readers.take_bytes();
        let t0 = Instant::now();
        let cpu = measure(daemon, window);
        let mbit = readers.take_bytes() as f64 * 8.0 / 1e6 / t0.elapsed().as_secs_f64();
        let encoders = ffmpeg_below(daemon);
        let encoder_cpu: f64 = encoders.iter().map(|&p| cpu.percent(Some(p))).sum();
        eprintln!(
            "top rung {name}: {} encoders, {encoder_cpu:.1} % encoders, {:.1} % in all",
            encoders.len(),
            cpu.percent(None)
        );
        writeln!(
            rows,
            "| {name} | {} | {encoder_cpu:.1} % | {:.1} % | {:.1} % | {mbit:.2} | {} |",
            encoders.len(),
            cpu.percent(Some(daemon)),
            cpu.percent(None),
            running.note.replace('|', "/"),
        )
        .unwrap();
        drop(readers);
        drop(running);
        camera.send_to(None);
    }
    format!(
        "\nTop rung re-encoded versus passed through (`adapt.mode = \"fixed\"`, two viewers on loopback on the top rung, 6 s to settle, then {} s measured; % of one core):\n\n\
| top rung | encoders running | encoders' CPU | daemon itself | daemon and encoders | Mbit/s served | setup |\n| --- | ---: | ---: | ---: | ---: | ---: | --- |\n{rows}",
        window.as_secs()
    )
}

fn main() {
    let args = BenchArgs::parse().unwrap_or_else(|e| {
        eprintln!("relay_fanout: {e}");
        std::process::exit(2);
    });
    stop_on_interrupt();
    let mut sections: Vec<String> = Vec::new();
    let mut window = Duration::from_secs(15);
    let mut it = args.rest.iter();
    while let Some(a) = it.next() {
        match a.as_str() {
            "fanout" | "rungs" | "passthrough" => sections.push(a.clone()),
            "--secs" => {
                let v = it.next().and_then(|v| v.parse().ok());
                window = Duration::from_secs(v.unwrap_or_else(|| {
                    eprintln!("relay_fanout: --secs N");
                    std::process::exit(2)
                }));
            }
            other => {
                eprintln!("relay_fanout: unknown argument `{other}` (see benches/relay_fanout.rs)");
                std::process::exit(2);
            }
        }
    }
    if sections.is_empty() {
        sections = vec!["fanout".into(), "rungs".into(), "passthrough".into()];
    }
    let began = Instant::now();
    let load_start = load_average();
    let dir = temp_dir("bench-relay");
    let mut body = String::new();
    if sections.iter().any(|s| s == "fanout") {
        body.push_str(&fanout(window));
    }
    if sections.iter().any(|s| s != "fanout") {
        let mut camera =
            Camera::start(&dir, args.camera, Instant::now()).unwrap_or_else(|e| panic!("{e}"));
        camera
            .wait_live(Duration::from_secs(20))
            .unwrap_or_else(|e| panic!("{e}"));
        if sections.iter().any(|s| s == "rungs") {
            body.push_str(&rungs(&args, &camera, &dir, window));
        }
        if sections.iter().any(|s| s == "passthrough") {
            body.push_str(&passthrough(&args, &camera, &dir, window));
        }
    }
    let build = match per_viewer_build(&args.bin, &args.camera, &dir) {
        Ok(()) => "per-viewer build".to_string(),
        Err(e) => format!("before per-viewer (check-config: {e})"),
    };
    let report = format!(
        "\n## Relay fan-out and encoder CPU, {date}\n\n\
Command: `{command}` (release build; {minutes:.1} min). livestreamd build {commit}, {build}; `preset = \"ultrafast\"`.\n\
Machine: 2 cores, shared with other work: load average {load_start} at the start, {load_end} at the end.\n\
Camera (encoder sections): ffmpeg test pattern {cam}, sent over UDP by the benchmark (its own CPU is not counted); ladder {ladder}.\n{body}",
        date = utc_now(),
        command = args.command("relay_fanout"),
        minutes = began.elapsed().as_secs_f64() / 60.0,
        commit = git_commit(),
        load_end = load_average(),
        cam = args.camera.describe(),
        ladder = args
            .camera
            .ladder()
            .iter()
            .map(|(w, h, f, k)| format!("{w}x{h}@{f} {k}"))
            .collect::<Vec<_>>()
            .join(", ")
            + " kbit/s",
    );
    args.report(&dir, &report);
}
