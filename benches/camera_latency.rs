//! Benchmark (not a test): how long a frame takes from the camera to a viewer,
//! frame by frame, matched by PTS, on loopback: through the passthrough rung
//! and through an encoded rung at the camera's size, for the build under test
//! ("after") and an older one ("before") in the same run, in alternating rounds.
//!
//! The camera is ffmpeg's test pattern (1280x720@30 by default), relayed by the
//! benchmark, which notes when each frame's first and last packets left it; one
//! viewer reads `/stream.ts` on loopback and notes when each frame's first and
//! last packets came. A frame's latency is last packet to last packet (the frame
//! is whole, and decodable, then); first packet to first packet is shown beside.
//!
//!   cargo bench --bench camera_latency                (results to benches/RESULTS.md)
//!   cargo bench --bench camera_latency -- --seconds 20 --rounds 3 --no-record
//!
//! Options: `--baseline PATH` (the "before" livestreamd binary), or
//! `--baseline-rev REV` (built from the repository at REV into
//! target/latency-baseline/; default `ee43201`, the last commit whose
//! passthrough rung was `ffmpeg -c:v copy` and whose hub waited for nothing
//! else), `--seconds S` measured per case and round (10), `--rounds N` (2),
//! `--camera WxH@FPS`, `--kbps N`, `--bin PATH` (the "after" build),
//! `--no-record`. Run it under the heavy lock: it is timing-sensitive.

#[path = "../tests/common/mod.rs"]
mod common;

use common::peers::*;
use common::phone::{Frame, FrameParser};
use common::*;
use std::collections::HashMap;
use std::fmt::Write as _;
use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// Seconds of each case not measured: the viewer joins, the encoder settles.
const WARM_UP: f64 = 3.0;

struct Args {
    common: BenchArgs,
    baseline: Option<PathBuf>,
    baseline_rev: String,
    seconds: f64,
    rounds: usize,
}

fn parse_args() -> Result<Args, String> {
    let mut common = BenchArgs::parse()?;
    if !common.text.contains("--camera") && !common.text.contains("--kbps") {
        common.camera = CameraSpec::parse("1280x720@30", None)?;
    }
    let rest = common.rest.clone();
    let mut a = Args {
        common,
        baseline: None,
        baseline_rev: baseline::BEFORE_ISSUE_23.into(),
        seconds: 10.0,
        rounds: 2,
    };
    let mut it = rest.iter();
    while let Some(arg) = it.next() {
        let mut value = || it.next().cloned().ok_or(format!("{arg} needs a value"));
        match arg.as_str() {
            "--baseline" => a.baseline = Some(PathBuf::from(value()?)),
            "--baseline-rev" => a.baseline_rev = value()?,
            "--seconds" => a.seconds = value()?.parse().map_err(|_| "--seconds S")?,
            "--rounds" => a.rounds = value()?.parse().map_err(|_| "--rounds N")?,
            other => return Err(format!("unknown option {other}")),
        }
    }
    Ok(a)
}

/// One viewer of `/stream.ts` on loopback, noting frames as they come.
struct LoopbackViewer {
    parser: Arc<Mutex<FrameParser>>,
    stop: Arc<AtomicBool>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl LoopbackViewer {
    fn start(port: u16, epoch: Instant) -> Result<LoopbackViewer, String> {
        let mut sock = TcpStream::connect(("127.0.0.1", port)).map_err(|e| e.to_string())?;
        sock.set_nodelay(true).ok();
        sock.write_all(b"GET /stream.ts HTTP/1.1\r\nHost: bench\r\n\r\n")
            .map_err(|e| e.to_string())?;
        sock.set_read_timeout(Some(Duration::from_millis(200))).ok();
        let parser: Arc<Mutex<FrameParser>> = Arc::default();
        let stop = Arc::new(AtomicBool::new(false));
        let (p, s) = (parser.clone(), stop.clone());
        let thread = std::thread::spawn(move || {
            let mut buf = vec![0u8; 256 * 1024];
            let mut head = Vec::new();
            let mut in_body = false;
            while !s.load(Ordering::Relaxed) {
                let n = match sock.read(&mut buf) {
                    Ok(0) => return,
                    Ok(n) => n,
                    Err(_) => continue,
                };
                let now = epoch.elapsed().as_secs_f64();
                let mut body = &buf[..n];
                if !in_body {
                    head.extend_from_slice(body);
                    let Some(end) = head.windows(4).position(|w| w == b"\r\n\r\n") else {
                        continue;
                    };
                    in_body = true;
                    let rest = head.split_off(end + 4);
                    p.lock().unwrap().push(&rest, now);
                    continue;
                }
                p.lock().unwrap().push(std::mem::take(&mut body), now);
            }
        });
        Ok(LoopbackViewer {
            parser,
            stop,
            thread: Some(thread),
        })
    }

    fn frames(&self) -> Vec<Frame> {
        self.parser.lock().unwrap().frames.clone()
    }
}

impl Drop for LoopbackViewer {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// Per frame: (last packet to last packet, first to first), milliseconds.
type Latencies = Vec<(f64, f64)>;

/// One case: `bin` serving the camera on rung `rung` (0 passthrough, 1 the
/// encoded rung at the camera's size) for `secs` after the warm-up.
fn run_case(
    dir: &Path,
    bin: &Path,
    name: &str,
    rung: usize,
    camera: &Camera,
    epoch: Instant,
    secs: f64,
) -> Result<Latencies, String> {
    let ports = Ports::new();
    let c = &camera.spec;
    let config = format!(
        "[source]\nurl = \"udp://127.0.0.1:{}\"\n\n[encoder]\npreset = \"ultrafast\"\nstart_rung = {rung}\n\n[server]\nlisten = \"127.0.0.1:{}\"\n\n[adapt]\nmode = \"fixed\"\n\n[[ladder]]\npassthrough = true\n\n[[ladder]]\nwidth = {}\nheight = {}\nfps = {}\nbitrate_kbps = {}\n",
        ports.source,
        ports.http,
        c.width,
        c.height,
        c.fps,
        c.kbps * 2 / 3
    );
    let path = dir.join(format!("{name}.toml"));
    std::fs::write(&path, config).unwrap();
    check_config(bin, &path)?;
    let args = [
        "run".to_string(),
        "--config".into(),
        path.display().to_string(),
    ];
    let level = log_level("livestreamd=info");
    let mut daemon = spawn(
        dir,
        name,
        &bin.display().to_string(),
        &args,
        &[("RUST_LOG", &level)],
        None,
    )?;
    camera.send_to(Some(ports.source));
    let healthy = poll(Duration::from_secs(30), WAIT_EVERY, || {
        http_get(ports.http, "/healthz")
            .is_ok_and(|r| r.code == 200)
            .then_some(())
    });
    if healthy.is_none() {
        camera.send_to(None);
        return Err(format!(
            "{name}: not healthy in 30 s:\n{}",
            daemon.log_text()
        ));
    }
    let viewer = LoopbackViewer::start(ports.http, epoch)?;
    let from = epoch.elapsed().as_secs_f64() + WARM_UP;
    std::thread::sleep(Duration::from_secs_f64(WARM_UP + secs));
    let to = epoch.elapsed().as_secs_f64();
    let got = viewer.frames();
    drop(viewer);
    camera.send_to(None);
    daemon.terminate(Duration::from_secs(10));
    let sent: HashMap<u64, Frame> = camera.frames().into_iter().map(|f| (f.pts, f)).collect();
    let latencies: Latencies = got
        .iter()
        // The last frame may still be coming.
        .take(got.len().saturating_sub(1))
        .filter(|f| f.start >= from && f.end <= to)
        .filter_map(|f| {
            let s = sent.get(&f.pts)?;
            Some(((f.end - s.end) * 1000.0, (f.start - s.start) * 1000.0))
        })
        .collect();
    if latencies.len() < 10 {
        return Err(format!(
            "{name}: only {} frames matched by PTS ({} received)",
            latencies.len(),
            got.len()
        ));
    }
    Ok(latencies)
}

fn quantile(sorted: &[f64], q: f64) -> f64 {
    let i = ((sorted.len() - 1) as f64 * q).round() as usize;
    sorted[i]
}

fn summary(values: &[f64]) -> (f64, f64, f64) {
    let mut v = values.to_vec();
    v.sort_by(f64::total_cmp);
    (quantile(&v, 0.5), quantile(&v, 0.95), *v.last().unwrap())
}

fn main() {
    let args = match parse_args() {
        Ok(a) => a,
        Err(e) => {
            eprintln!("camera_latency: {e}");
            std::process::exit(2);
        }
    };
    let baseline = match args.baseline.clone() {
        Some(b) => Ok(b),
        None => baseline::build(&args.baseline_rev),
    };
    let baseline = baseline.unwrap_or_else(|e| {
        eprintln!("camera_latency: no baseline: {e}");
        std::process::exit(1);
    });
    let dir = temp_dir("camera-latency");
    let epoch = Instant::now();
    let mut camera = Camera::start(&dir, args.common.camera, epoch).unwrap_or_else(|e| {
        eprintln!("camera_latency: {e}");
        std::process::exit(1);
    });
    if let Err(e) = camera.wait_live(Duration::from_secs(20)) {
        eprintln!("camera_latency: {e}");
        std::process::exit(1);
    }
    let builds = [
        ("before", baseline.clone()),
        ("after", args.common.bin.clone()),
    ];
    let rungs = [(0, "passthrough"), (1, "encoded")];
    let mut results: HashMap<(&str, &str), Latencies> = HashMap::new();
    for round in 0..args.rounds {
        for (build, bin) in &builds {
            for (rung, kind) in rungs {
                let name = format!("{build}-{kind}-{round}");
                eprintln!("{name} ...");
                match run_case(&dir, bin, &name, rung, &camera, epoch, args.seconds) {
                    Ok(l) => results.entry((build, kind)).or_default().extend(l),
                    Err(e) => eprintln!("{e}"),
                }
            }
        }
    }
    let c = &camera.spec;
    let mut report = String::new();
    let _ = writeln!(
        report,
        "\n## Camera to viewer latency, {} (loopback)\n\n`{}`\n",
        utc_now(),
        args.common.command("camera_latency")
    );
    let _ = writeln!(
        report,
        "Camera {} (ffmpeg test pattern with noise, relayed by the benchmark); one viewer of `/stream.ts` on loopback; the encoded rung is {}x{}@{} at {} kbit/s, preset ultrafast; {} round(s) of {} s per case after {} s of warm-up, builds alternating. \"before\": `{}`; \"after\": this tree. Latency per frame matched by PTS: the frame's last packet leaving the camera to its last packet at the viewer (first packet to first packet beside).\n",
        c.describe(),
        c.width,
        c.height,
        c.fps,
        c.kbps * 2 / 3,
        args.rounds,
        args.seconds,
        WARM_UP,
        args.baseline
            .as_ref()
            .map_or(args.baseline_rev.clone(), |b| b.display().to_string()),
    );
    let _ = writeln!(
        report,
        "| rung | build | frames | median ms | p95 ms | max ms | first packet, median ms |\n| --- | --- | --- | --- | --- | --- | --- |"
    );
    for (_, kind) in rungs {
        for (build, _) in &builds {
            let Some(l) = results.get(&(*build, kind)) else {
                let _ = writeln!(report, "| {kind} | {build} | – | – | – | – | – |");
                continue;
            };
            let ends: Vec<f64> = l.iter().map(|x| x.0).collect();
            let starts: Vec<f64> = l.iter().map(|x| x.1).collect();
            let (median, p95, max) = summary(&ends);
            let (first, _, _) = summary(&starts);
            let _ = writeln!(
                report,
                "| {kind} | {build} | {} | {median:.1} | {p95:.1} | {max:.1} | {first:.1} |",
                l.len()
            );
        }
    }
    drop(camera);
    args.common.report(&dir, &report);
}
