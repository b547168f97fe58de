//! Benchmark (not a test): two phones on emulated Wi-Fi links watch one
//! camera through each system in turn — livestreamd per-viewer (also with a standby rung), weakest and
//! fixed, and the peers a user would pick instead (ffmpeg `-listen`, VLC,
//! GStreamer) — one system at a time so they never compete for the CPU.
//! Needs root (network namespaces); VLC runs as `nobody`.
//!
//! Phone A: an ample link with random loss throughout. Phone B: ample, then
//! capped at 1/4 of the top rung, then clean again. Each phone measures what
//! it gets, frame by frame (arrival, PTS, picture width from the SPS): time
//! until B's picture is on a lower rung, peak lag, largest frame gap, frames
//! per second per phase, lag at the end, time back on the top rung, the widths
//! each phone saw. livestreamd's `/status` only adds a column.
//!
//!   cargo bench --bench adapt_capacity                       (every system, results to benches/RESULTS.md)
//!   cargo bench --bench adapt_capacity -- --systems vlc,fixed --cap 30 --no-record
//!
//! Options: `--systems per-viewer,per-viewer-standby,weakest,fixed,ffmpeg-listen,vlc,gstreamer`,
//! `--runs N` (or a bare number), `--camera WxH@FPS` (default 960x540@30),
//! `--kbps N` (the camera's rate; default 2400 at 960x540, scaled with the
//! picture), `--ample S` (10), `--cap S` (60), `--clean S` (40), `--loss PCT`
//! (5), `--bin PATH` (another livestreamd build, e.g. the lead's work tree),
//! `--no-record` (print only). A full run of seven systems takes about 15 minutes.

#[path = "../tests/common/mod.rs"]
mod common;

use common::netns::{self, PhoneLink};
use common::peers::*;
use common::phone::{Frame, FrameClient, PhoneLog, Target};
use common::*;
use livestreamd::media::ts::pts_diff;
use serde_json::Value;
use std::collections::HashMap;
use std::fmt::Write as _;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

struct Args {
    common: BenchArgs,
    systems: Vec<System>,
    runs: usize,
    ample: f64,
    cap: f64,
    clean: f64,
    loss: u32,
}

fn parse_args() -> Result<Args, String> {
    let common = BenchArgs::parse()?;
    let rest = common.rest.clone();
    let mut a = Args {
        common,
        systems: all_systems(),
        runs: 1,
        ample: 10.0,
        cap: 60.0,
        clean: 40.0,
        loss: 5,
    };
    let mut it = rest.iter();
    while let Some(arg) = it.next() {
        let mut value = || it.next().cloned().ok_or(format!("{arg} needs a value"));
        let secs = |v: String| {
            v.parse::<f64>()
                .map_err(|_| format!("{arg}: seconds, not {v}"))
        };
        match arg.as_str() {
            "--systems" => {
                let want = value()?;
                let all = all_systems();
                a.systems = Vec::new();
                for key in want.split(',') {
                    let s = all.iter().find(|s| s.key() == key).ok_or_else(|| {
                        let keys: Vec<String> = all.iter().map(System::key).collect();
                        format!("no system `{key}`: {}", keys.join(", "))
                    })?;
                    a.systems.push(s.clone());
                }
            }
            "--runs" => a.runs = value()?.parse().map_err(|_| "--runs N")?,
            "--ample" => a.ample = secs(value()?)?,
            "--cap" => a.cap = secs(value()?)?,
            "--clean" => a.clean = secs(value()?)?,
            "--loss" => a.loss = value()?.parse().map_err(|_| "--loss PCT")?,
            n if n.parse::<usize>().is_ok() => a.runs = n.parse().unwrap(),
            other => {
                return Err(format!(
                    "unknown argument `{other}` (see benches/adapt_capacity.rs)"
                ))
            }
        }
    }
    Ok(a)
}

/// When each phase began, seconds since the epoch.
#[derive(Clone, Copy)]
struct Phases {
    start: f64,
    cap: f64,
    clean: f64,
    end: f64,
}

struct Ran {
    note: String,
    daemon: bool,
    /// A, then B.
    phones: [(PhoneLog, String, String); 2],
    phases: Phases,
    cpu_pct: f64,
    max_encoders: usize,
    status: Vec<(f64, Value)>,
    exit: Option<String>,
    log_notes: Vec<String>,
    load: (String, String),
}

enum Outcome {
    Ran(Box<Ran>),
    Skipped(String),
}

/// One system through the whole link profile.
fn run_system(
    sys: &System,
    a: &Args,
    camera: &Camera,
    epoch: Instant,
    dir: &std::path::Path,
) -> Outcome {
    let sdir = dir.join(sys.key());
    std::fs::create_dir_all(&sdir).unwrap();
    let (port, source_port) = (free_tcp_port(), free_udp_port());
    let launch = Launch {
        dir: &sdir,
        camera: &a.common.camera,
        source_port,
        port,
        bin: &a.common.bin,
    };
    let mut running = match sys.launch(&launch) {
        Ok(r) => r,
        Err(why) => return Outcome::Skipped(why),
    };
    camera.send_to(Some(source_port));
    if let Err(why) = running.wait_ready(Duration::from_secs(40)) {
        camera.send_to(None);
        return Outcome::Skipped(why);
    }
    sleep_until(Instant::now() + Duration::from_secs(2));
    let (link_a, link_b) = (PhoneLink::create(), PhoneLink::create());
    link_a.set_loss(a.loss);
    let target = |link: &PhoneLink| Target {
        addr: SocketAddr::new(link.host_ip.parse().unwrap(), port),
        path: running.path.clone(),
    };
    let load_start = load_average();
    let begun = Instant::now();
    let start = epoch.elapsed().as_secs_f64();
    // B first: ffmpeg -listen serves one client.
    let client_b = FrameClient::start(&link_b, target(&link_b), epoch, false);
    poll(Duration::from_secs(5), Duration::from_millis(20), || {
        client_b.connected().then_some(())
    });
    let client_a = FrameClient::start(&link_a, target(&link_a), epoch, false);
    let monitor = monitor(
        running.pids(),
        running.daemon.then_some(port),
        epoch,
        sdir.join("status.jsonl"),
    );
    let cap_kbps = a.common.camera.kbps / 4;
    sleep_until(begun + Duration::from_secs_f64(a.ample));
    link_b.set_rate(cap_kbps);
    let cap = epoch.elapsed().as_secs_f64();
    eprintln!("  phone B capped at {cap_kbps} kbit/s");
    sleep_until(begun + Duration::from_secs_f64(a.ample + a.cap));
    link_b.clear_rate();
    let clean = epoch.elapsed().as_secs_f64();
    eprintln!("  phone B clean again");
    sleep_until(begun + Duration::from_secs_f64(a.ample + a.cap + a.clean));
    let end = epoch.elapsed().as_secs_f64();
    let exit = running.exited();
    let (note, daemon) = (running.note.clone(), running.daemon);
    let mut log_notes = running.log_lines("overrun", 2);
    log_notes.extend(running.log_lines("panicked", 1));
    let (log_b, log_a) = (client_b.finish(), client_a.finish());
    for (name, log) in [("A", &log_a), ("B", &log_b)] {
        write_frames(&sdir.join(format!("phone-{name}.csv")), log);
    }
    let watched = monitor.finish();
    drop(running);
    camera.send_to(None);
    let load_end = load_average();
    let link_desc_a = format!("ample, {} % loss", a.loss);
    let link_desc_b = format!("cap {cap_kbps} kbit/s");
    let phones = [
        (log_a, link_a.phone_ip.clone(), link_desc_a),
        (log_b, link_b.phone_ip.clone(), link_desc_b),
    ];
    Outcome::Ran(Box::new(Ran {
        note,
        daemon,
        phones,
        phases: Phases {
            start,
            cap,
            clean,
            end,
        },
        cpu_pct: watched.cpu.as_ref().map_or(0.0, |c| c.percent(None)),
        max_encoders: watched.max_encoders,
        status: watched.status,
        exit,
        log_notes,
        load: (load_start, load_end),
    }))
}

/// Every frame a phone got, and its connection events, for a closer look.
fn write_frames(path: &std::path::Path, log: &PhoneLog) {
    let mut text = String::from("start_s,end_s,pts,keyframe,width,height,bytes,connection\n");
    for f in log.frames() {
        writeln!(
            text,
            "{:.4},{:.4},{},{},{},{},{},{}",
            f.start, f.end, f.pts, f.keyframe, f.width, f.height, f.bytes, f.conn
        )
        .unwrap();
    }
    for (t, what) in &log.events {
        writeln!(text, "# {t:.3} {what}").unwrap();
    }
    let _ = std::fs::write(path, text);
}

/// Where a phone's picture stood against the top rung.
enum Lower {
    /// Never on a smaller picture.
    Never,
    /// Already smaller when the cap began.
    Before,
    /// Seconds after the cap.
    After(f64),
}

enum Back {
    NeverLeft,
    /// Back on the top rung before the cap ended.
    DuringCap,
    After(f64),
    NotBy(f64),
}

/// What one phone saw.
struct Metrics {
    frames: usize,
    lower: Lower,
    peak_lag: f64,
    gap_wall: f64,
    gap_pts: f64,
    fps: [f64; 3],
    end_lag: f64,
    /// The lag at the end of a player that shows every frame at 1× speed
    /// once it has it (like VLC or ffplay: it never catches up by itself).
    player_end_lag: f64,
    back: Back,
    widths: Vec<u32>,
    /// Width changes in the cap phase and in the clean phase.
    switches_cap: usize,
    switches_clean: usize,
    /// Median camera-to-phone delay before the cap, when the PTS are the camera's.
    delay: Option<f64>,
}

/// Measurements start this long after the phones connect (startup excluded).
const SETTLE: f64 = 3.0;
/// The cap phase's frame rate is counted from this long after the cap.
const CAP_SETTLE: f64 = 5.0;

fn metrics(frames: &[Frame], p: Phases, top: u32, sent: &HashMap<u64, f64>) -> Option<Metrics> {
    let first = frames.first()?;
    let t = |f: &Frame| pts_diff(f.pts, first.pts) as f64 / 90_000.0;
    let from = p.start + SETTLE;
    let before: Vec<&Frame> = frames
        .iter()
        .filter(|f| f.end < p.cap && f.end >= from)
        .collect();
    let base_set: Vec<&Frame> = if before.is_empty() {
        frames.iter().collect()
    } else {
        before.clone()
    };
    let baseline = base_set
        .iter()
        .map(|f| f.end - t(f))
        .fold(f64::MAX, f64::min);
    // How far behind live each frame is when it is complete, against the
    // system's own best before the cap; a stream that stopped falls further
    // behind until the end.
    let mut peak_lag = p.end - t(frames.last().unwrap()) - baseline;
    let (mut gap_wall, mut gap_pts) = (p.end - frames.last().unwrap().end, 0.0f64);
    for w in frames.windows(2) {
        if w[1].end < from {
            continue;
        }
        peak_lag = peak_lag.max(w[1].end - t(&w[1]) - baseline);
        gap_wall = gap_wall.max(w[1].end - w[0].end);
        gap_pts = gap_pts.max(t(&w[1]) - t(&w[0]));
    }
    let count = |a: f64, b: f64| frames.iter().filter(|f| f.end >= a && f.end < b).count();
    let rate = |a: f64, b: f64| count(a, b) as f64 / (b - a).max(1e-3);
    let fps = [
        rate(from, p.cap),
        rate(p.cap + CAP_SETTLE, p.clean),
        rate(p.clean, p.end),
    ];
    let width_at = |time: f64| {
        frames
            .iter()
            .rev()
            .find(|f| f.end < time && f.width > 0)
            .map_or(0, |f| f.width)
    };
    let smaller = |f: &&Frame| f.width > 0 && f.width < top;
    let lower = if (1..top).contains(&width_at(p.cap)) {
        Lower::Before
    } else {
        match frames.iter().filter(|f| f.end >= p.cap).find(smaller) {
            Some(f) => Lower::After(f.end - p.cap),
            None => Lower::Never,
        }
    };
    let left = frames
        .iter()
        .filter(|f| f.end >= p.cap)
        .any(|f| smaller(&f));
    let back = if !left && !matches!(lower, Lower::Before) {
        Back::NeverLeft
    } else if width_at(p.clean) == top {
        Back::DuringCap
    } else {
        match frames.iter().find(|f| f.end >= p.clean && f.width == top) {
            Some(f) => Back::After(f.end - p.clean),
            None => Back::NotBy(p.end - p.clean),
        }
    };
    let mut widths: Vec<u32> = Vec::new();
    let (mut switches_cap, mut switches_clean, mut last) = (0, 0, 0);
    for f in frames.iter().filter(|f| f.width > 0) {
        if f.width != last {
            if last != 0 && f.end >= p.cap && f.end < p.clean {
                switches_cap += 1;
            } else if last != 0 && f.end >= p.clean {
                switches_clean += 1;
            }
            widths.push(f.width);
            last = f.width;
        }
    }
    // The 1x player: each frame shown a frame interval after the previous one,
    // or when it comes if that is later; a jump of more than a second in the
    // stream (a server's skip) is shown at once.
    let (mut shown, mut player_end_lag) = (f64::MIN, 0.0);
    for (i, f) in frames.iter().enumerate() {
        let step = if i == 0 {
            0.0
        } else {
            t(f) - t(&frames[i - 1])
        };
        let step = if (0.0..=1.0).contains(&step) {
            step
        } else {
            0.0
        };
        shown = f.end.max(shown + step);
        if shown > p.end {
            break;
        }
        player_end_lag = p.end - t(f) - baseline;
    }
    let mut delays: Vec<f64> = before
        .iter()
        .filter_map(|f| Some(f.end - sent.get(&f.pts)?))
        // The camera's PTS come round again for a system that restarts its
        // timestamps (ffmpeg -c copy): a match minutes old is not this frame.
        .filter(|d| (0.0..30.0).contains(d))
        .collect();
    delays.sort_by(f64::total_cmp);
    let delay = (delays.len() * 2 > before.len().max(1)).then(|| delays[delays.len() / 2]);
    Some(Metrics {
        frames: frames.len(),
        lower,
        peak_lag,
        gap_wall,
        gap_pts,
        fps,
        end_lag: p.end - t(frames.last().unwrap()) - baseline,
        player_end_lag,
        back,
        widths,
        switches_cap,
        switches_clean,
        delay,
    })
}

/// The targets of issue 13 this phone missed.
fn missed(m: &Metrics, phone_b: bool, fps: u32, whole_run_s: f64) -> Vec<&'static str> {
    let mut out = Vec::new();
    let full = 0.9 * f64::from(fps);
    if phone_b {
        match m.lower {
            Lower::After(s) if s <= 2.0 => {}
            Lower::After(_) => out.push("lower rung > 2 s"),
            _ => out.push("no lower rung"),
        }
        match m.back {
            Back::After(s) if s <= 20.0 => {}
            Back::DuringCap | Back::NeverLeft => {}
            _ => out.push("top rung > 20 s after"),
        }
        if m.switches_cap > 1 || m.switches_clean > 1 {
            out.push("flapping");
        }
    } else {
        if m.widths.len() > 1 {
            out.push("left the top rung");
        }
        let switches = m.widths.len().saturating_sub(1) as f64;
        if switches > (whole_run_s / 60.0).max(1.0) {
            out.push("flapping");
        }
    }
    if m.peak_lag > 1.0 {
        out.push("lag > 1 s");
    }
    if m.gap_wall > 0.5 {
        out.push("gap > 0.5 s");
    }
    if m.fps.iter().any(|&f| f < full) {
        out.push("frame rate");
    }
    out
}

fn secs(v: f64) -> String {
    format!("{v:.1} s")
}

/// The rungs `/status` gave the viewer from `ip` (livestreamd builds that list them).
fn status_rungs(status: &[(f64, Value)], ip: &str) -> String {
    let prefix = format!("{ip}:");
    let mut seq: Vec<i64> = Vec::new();
    for (_, s) in status {
        let Some(viewers) = s["viewers"].as_array() else {
            continue;
        };
        for v in viewers {
            let address = v["address"].as_str().unwrap_or("");
            if let (true, Some(r)) = (address.starts_with(&prefix), v["rung"].as_i64()) {
                if seq.last() != Some(&r) {
                    seq.push(r);
                }
            }
        }
    }
    if seq.is_empty() {
        return "–".into();
    }
    seq.iter().map(i64::to_string).collect::<Vec<_>>().join("→")
}

fn widths_text(w: &[u32]) -> String {
    let shown: Vec<String> = w.iter().take(6).map(u32::to_string).collect();
    let more = if w.len() > 6 { "→…" } else { "" };
    format!("{}{more} ({})", shown.join("→"), w.len().saturating_sub(1))
}

fn phone_row(
    sys: &str,
    rungs: bool,
    phone: &str,
    link: &str,
    log: &PhoneLog,
    m: Option<Metrics>,
    extra: (String, String),
) -> String {
    let Some(m) = m else {
        let why = match log.events.last() {
            Some((_, last)) => format!("{} attempts, the last: {last}", log.events.len()),
            None => "no connection".into(),
        };
        return format!(
            "| {sys} | {phone} | {link} | 0 | no picture: {} | | | | | | | | {} | {} | no picture |\n",
            why.replace('|', "/"),
            log.connections,
            extra.1
        );
    };
    let lower = match m.lower {
        Lower::Never if !rungs => "never (one rung)".into(),
        Lower::Never => "never".into(),
        Lower::Before => "before the cap".into(),
        Lower::After(s) => secs(s),
    };
    let back = match m.back {
        Back::NeverLeft => "never left".into(),
        Back::DuringCap => "during the cap".into(),
        Back::After(s) => secs(s),
        Back::NotBy(s) => format!("not in {s:.0} s"),
    };
    let delay = m
        .delay
        .map_or("n/a (own timestamps)".into(), |d| format!("{:.2} s", d));
    format!(
        "| {sys} | {phone} | {link} | {} | {lower} | {:+.2} s | {:.2} s / {:.2} s | {:.1} / {:.1} / {:.1} | {:+.2} s / {:+.2} s | {back} | {} | {delay} | {} | {} | {} |\n",
        m.frames,
        m.peak_lag,
        m.gap_wall,
        m.gap_pts,
        m.fps[0],
        m.fps[1],
        m.fps[2],
        m.end_lag,
        m.player_end_lag,
        widths_text(&m.widths),
        log.connections,
        extra.1,
        extra.0,
    )
}

fn main() {
    if let Some(why) = netns::unavailable() {
        eprintln!("adapt_capacity: cannot run here: {why}");
        std::process::exit(1);
    }
    let a = parse_args().unwrap_or_else(|e| {
        eprintln!("adapt_capacity: {e}");
        std::process::exit(2);
    });
    stop_on_interrupt();
    let began = Instant::now();
    let epoch = Instant::now();
    let dir = temp_dir("bench-capacity");
    let load_start = load_average();
    let mut camera = Camera::start(&dir, a.common.camera, epoch).unwrap_or_else(|e| panic!("{e}"));
    camera
        .wait_live(Duration::from_secs(20))
        .unwrap_or_else(|e| panic!("{e}"));
    // Is this build the per-viewer one? (Its check-config accepts the config.)
    let per_viewer_build = per_viewer_build(&a.common.bin, &a.common.camera, &dir);
    let build = match &per_viewer_build {
        Ok(()) => "per-viewer build".to_string(),
        Err(e) => format!("before per-viewer: its check-config refuses `policy = \"per-viewer\"` with a passthrough rung: {e}"),
    };
    let tag = if per_viewer_build.is_ok() {
        ""
    } else {
        " (before per-viewer)"
    };
    let top = a.common.camera.width;
    let mut results: Vec<(String, usize, Outcome)> = Vec::new();
    for run in 1..=a.runs {
        for sys in &a.systems {
            let name = match sys {
                System::Livestreamd(_) => format!("{}{tag}", sys.name()),
                _ => sys.name(),
            };
            eprintln!("run {run}/{}: {name}", a.runs);
            // Each run's files apart (logs, the phones' frames), when there are several.
            let run_dir = match a.runs {
                1 => dir.clone(),
                _ => dir.join(format!("run-{run}")),
            };
            let outcome = run_system(sys, &a, &camera, epoch, &run_dir);
            if let Outcome::Skipped(why) = &outcome {
                eprintln!("  could not run: {why}");
            }
            results.push((name, run, outcome));
        }
    }
    let camera_frames = camera.frames();
    let camera_secs = camera_frames.last().map_or(0.0, |l| l.start)
        - camera_frames.first().map_or(0.0, |f| f.start);
    let camera_mbit = camera.bytes() as f64 * 8.0 / 1e6 / camera_secs.max(1e-3);
    let camera_fps = camera_frames.len() as f64 / camera_secs.max(1e-3);
    let sent = camera.sent_times();
    drop(camera);

    let mut phone_rows = String::new();
    let mut system_rows = String::new();
    let mut skipped = String::new();
    for (name, run, outcome) in &results {
        let label = if a.runs > 1 {
            format!("{name} #{run}")
        } else {
            name.clone()
        };
        match outcome {
            Outcome::Skipped(why) => {
                writeln!(skipped, "- **{label}**: {}", why.replace('\n', " ")).unwrap();
                writeln!(system_rows, "| {label} | – | could not run | | | | |").unwrap();
            }
            Outcome::Ran(r) => {
                let whole = r.phases.end - r.phases.start;
                for (i, (log, ip, link)) in r.phones.iter().enumerate() {
                    let m = metrics(log.frames(), r.phases, top, &sent);
                    let miss = m.as_ref().map_or(String::new(), |m| {
                        let list = missed(m, i == 1, a.common.camera.fps, whole);
                        if list.is_empty() {
                            "none".into()
                        } else {
                            list.join(", ")
                        }
                    });
                    let phone = if i == 0 { "A" } else { "B" };
                    phone_rows.push_str(&phone_row(
                        &label,
                        r.daemon,
                        phone,
                        link,
                        log,
                        m,
                        (miss, status_rungs(&r.status, ip)),
                    ));
                }
                let mut notes: Vec<String> = r.exit.iter().cloned().collect();
                notes.extend(r.log_notes.iter().cloned());
                let encoders = if r.daemon {
                    r.max_encoders.to_string()
                } else {
                    "–".to_string()
                };
                writeln!(
                    system_rows,
                    "| {label} | {} | ran | {:.0} % | {encoders} | {} → {} | {} |",
                    r.note,
                    r.cpu_pct,
                    r.load.0,
                    r.load.1,
                    notes.join("; ").replace('|', "/")
                )
                .unwrap();
            }
        }
    }
    let minutes = began.elapsed().as_secs_f64() / 60.0;
    let ladder = a.common.camera.ladder();
    let ladder_desc: Vec<String> = ladder
        .iter()
        .enumerate()
        .map(|(i, (w, h, f, k))| {
            if i == 0 {
                format!("{w}x{h} (passthrough or re-encoded, see below) {k}")
            } else {
                format!("{w}x{h}@{f} {k}")
            }
        })
        .collect();
    let command = a.common.command("adapt_capacity");
    let mut report = format!(
        "\n## Two phones, one camera, every system, {date}\n\n\
Command: `{command}` (as root; release build; {minutes:.0} min for the whole run).\n\
Machine: 2 cores, shared with other work: load average {load_start} at the start, {load_end} at the end (each system's own below).\n\
Camera: ffmpeg test pattern {cam} (the demo camera's arguments — libx264 ultrafast — with light noise and a rate cap so it keeps its rate), measured {camera_mbit:.2} Mbit/s and {camera_fps:.1} frames/s, H.264 in MPEG-TS over UDP, 7 packets a datagram, relayed by the benchmark to one system at a time.\n\
livestreamd build: {commit}, {build}; `preset = \"ultrafast\"`; ladder {ladder} kbit/s.\n\
Link profile: phone A — a veth link, {loss} % random loss (nft numgen) throughout; phone B — ample for {ample:.0} s, then `tc tbf` at {capk} kbit/s (1/4 of the top rung) for {cap:.0} s, then clean for {clean:.0} s. Both phones connect at the start (B first, A once B has its answer or after 5 s: ffmpeg -listen serves one client) and reconnect a second after a stream ends.\n\
Measured at the phones, per frame (its last byte's arrival, its PTS, the width from the SPS before each keyframe): *lower rung* — first smaller picture after the cap; *peak lag* — how far behind live (wall clock against stream time) a frame is when its last byte comes, at its worst, against the system's own best before the cap (a stream that stops keeps falling behind until the end); *gap* — the longest wait between two frames (wall clock) and the largest PTS step (stream time skipped); *fps* — frames per second before the cap, from {cs:.0} s after the cap to its end, and after it; *lag at the end* — the newest frame's, and for a player that shows each frame at 1× speed once it has it and never skips by itself (a jump of over a second in the stream is shown at once); *back on top* — first top-size picture after the cap ends; *widths* — the picture widths in order (switches); *camera→phone* — median delay before the cap where the system keeps the camera's PTS; *targets missed* — issue 13's targets for that phone. Phone figures start {settle:.0} s after connecting.\n\n\
| system | phone | link | frames | on a lower rung after the cap | peak lag | largest gap wall / PTS | fps before / cap / after | lag at the end: arrival / 1× player | back on top after the cap | widths seen (switches) | camera→phone before the cap | connections | /status rungs | targets missed |\n\
| --- | --- | --- | ---: | --- | ---: | --- | --- | ---: | --- | --- | ---: | ---: | --- | --- |\n{phone_rows}\n\
| system | setup | ran | CPU, all its processes (% of one core) | encoders at once | load at start → end | notes |\n\
| --- | --- | --- | ---: | ---: | --- | --- |\n{system_rows}",
        date = utc_now(),
        load_end = load_average(),
        cam = a.common.camera.describe(),
        commit = git_commit(),
        ladder = ladder_desc.join(", "),
        loss = a.loss,
        ample = a.ample,
        capk = a.common.camera.kbps / 4,
        cap = a.cap,
        clean = a.clean,
        cs = CAP_SETTLE,
        settle = SETTLE,
    );
    if !skipped.is_empty() {
        write!(report, "\nCould not run:\n\n{skipped}").unwrap();
    }
    a.common.report(&dir, &report);
}
