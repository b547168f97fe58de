//! Benchmark (not a test): two phones on emulated Wi-Fi links watch one
//! camera through each system in turn — livestreamd per-viewer (also with a standby rung), weakest and
//! fixed, and the peers a user would pick instead (ffmpeg `-listen`, VLC,
//! GStreamer) — one system at a time so they never compete for the CPU.
//! Needs root (network namespaces); VLC runs as `nobody`.
//!
//! Phone A: an ample link with random loss throughout. Phone B: ample, then
//! capped at 1/4 of the top rung, then clean again. Phone C: capped like B,
//! then a spell of random loss on an otherwise ample link, then clean. Each
//! phone measures what it gets, frame by frame (arrival, PTS, picture width
//! from the SPS): time until its picture is on a lower rung, peak lag, largest
//! frame gap, frames per second per phase, lag at the end, time back on the top
//! rung, the widths each phone saw. livestreamd's `/status` and log only add
//! columns (the rungs it gave, when it decided). The host's routes to the
//! phones carry the route metrics the images set on their access point's
//! subnet (`--route`).
//!
//! Then the stall remedies (`adapt_capacity/stalls.rs`): livestreamd
//! per-viewer with several phones on links like A's, once per remedy, each
//! phone's frame gaps counted.
//!
//!   cargo bench --bench adapt_capacity                       (every system, results to benches/RESULTS.md)
//!   cargo bench --bench adapt_capacity -- --systems vlc,fixed --cap 30 --no-record
//!   cargo bench --bench adapt_capacity -- --systems none --stalls 60 --remedies none,image
//!
//! Options: `--systems per-viewer,per-viewer-standby,weakest,fixed,ffmpeg-listen,vlc,gstreamer`
//! (or `none`), `--runs N` (or a bare number), `--camera WxH@FPS` (default 960x540@30),
//! `--kbps N` (the camera's rate; default 2400 at 960x540, scaled with the
//! picture), `--ample S` (10), `--cap S` (60), `--clean S` (40), `--lossy S`
//! (C's lossy spell at the start of the clean phase: 20), `--loss PCT` (5),
//! `--route METRICS` (the host's route metrics to each phone, `ip route` words,
//! or `none`; default the images' `rto_min 10ms quickack 1`), `--stalls S`
//! (seconds per stall remedy, 0: none; 60), `--stall-phones N` (3),
//! `--remedies KEY,…` (see stalls.rs), `--baseline PATH` (another build, run
//! as `per-viewer-baseline` after `per-viewer`), `--bin PATH` (another livestreamd
//! build, e.g. the lead's work tree), `--no-record` (print only). A full run
//! of seven systems and the remedies takes about 25 minutes.

#[path = "../tests/common/mod.rs"]
mod common;
#[path = "adapt_capacity/stalls.rs"]
mod stalls;

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

/// The route metrics the images set on their access point's subnet
/// (buildroot/board/livestreamd/rootfs-overlay/usr/sbin/livestream-net).
const IMAGE_ROUTE: &str = "rto_min 10ms quickack 1";

struct Args {
    common: BenchArgs,
    systems: Vec<System>,
    runs: usize,
    ample: f64,
    cap: f64,
    clean: f64,
    lossy: f64,
    loss: u32,
    route: String,
    stalls: stalls::Plan,
    /// Another livestreamd build run as `per-viewer-baseline` right after
    /// `per-viewer` (the old behaviour in the same run).
    baseline: Option<std::path::PathBuf>,
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
        lossy: 20.0,
        loss: 5,
        route: IMAGE_ROUTE.into(),
        stalls: stalls::Plan::default(),
        baseline: None,
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
                for key in want.split(',').filter(|k| *k != "none") {
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
            "--lossy" => a.lossy = secs(value()?)?,
            "--loss" => a.loss = value()?.parse().map_err(|_| "--loss PCT")?,
            "--route" => {
                let v = value()?;
                a.route = if v == "none" { String::new() } else { v };
            }
            "--stalls" => a.stalls.secs = secs(value()?)?,
            "--baseline" => a.baseline = Some(value()?.into()),
            "--stall-phones" => {
                a.stalls.phones = value()?.parse().map_err(|_| "--stall-phones N")?
            }
            "--remedies" => a.stalls.remedies = stalls::parse_remedies(&value()?)?,
            n if n.parse::<usize>().is_ok() => a.runs = n.parse().unwrap(),
            other => {
                return Err(format!(
                    "unknown argument `{other}` (see benches/adapt_capacity.rs)"
                ))
            }
        }
    }
    if a.lossy > a.clean {
        return Err(format!(
            "--lossy {} is longer than the clean phase (--clean {})",
            a.lossy, a.clean
        ));
    }
    a.stalls.loss = a.loss;
    if a.baseline.is_some() {
        let at = a.systems.iter().position(|s| s.key() == "per-viewer");
        let baseline = System::Livestreamd(DaemonSetup {
            name: format!("per-viewer{BASELINE}"),
            adapt: "policy = \"per-viewer\"".into(),
            top: Top::Passthrough,
        });
        a.systems.insert(at.map_or(0, |i| i + 1), baseline);
    }
    Ok(a)
}

/// The name ending of the systems run with `--baseline`'s build.
const BASELINE: &str = "-baseline";

/// When each phase began, seconds since the epoch.
#[derive(Clone, Copy)]
struct Phases {
    start: f64,
    cap: f64,
    clean: f64,
    /// The end of C's lossy spell.
    dry: f64,
    end: f64,
}

struct Ran {
    note: String,
    daemon: bool,
    /// A, B, C.
    phones: [(PhoneLog, String, String); 3],
    /// livestreamd's rung decisions from its log: (seconds since the epoch,
    /// the viewer's address or None for every viewer, from, to).
    decisions: Vec<(f64, Option<String>, usize, usize)>,
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
    let bin = match (&a.baseline, sys.key().ends_with(BASELINE)) {
        (Some(baseline), true) => baseline,
        _ => &a.common.bin,
    };
    let launch = Launch {
        dir: &sdir,
        camera: &a.common.camera,
        source_port,
        port,
        bin,
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
    let links = [
        PhoneLink::create(),
        PhoneLink::create(),
        PhoneLink::create(),
    ];
    for link in &links {
        link.set_route_metrics(&a.route);
    }
    let [link_a, link_b, link_c] = &links;
    link_a.set_loss(a.loss);
    let target = |link: &PhoneLink| Target {
        addr: SocketAddr::new(link.host_ip.parse().unwrap(), port),
        path: running.path.clone(),
    };
    let load_start = load_average();
    let begun = Instant::now();
    let start = epoch.elapsed().as_secs_f64();
    // B first: ffmpeg -listen serves one client.
    let client_b = FrameClient::start(link_b, target(link_b), epoch, false);
    poll(Duration::from_secs(5), Duration::from_millis(20), || {
        client_b.connected().then_some(())
    });
    let client_a = FrameClient::start(link_a, target(link_a), epoch, false);
    let client_c = FrameClient::start(link_c, target(link_c), epoch, false);
    let monitor = monitor(
        running.pids(),
        running.daemon.then_some(port),
        epoch,
        sdir.join("status.jsonl"),
    );
    let cap_kbps = a.common.camera.kbps / 4;
    sleep_until(begun + Duration::from_secs_f64(a.ample));
    link_b.set_rate(cap_kbps);
    link_c.set_rate(cap_kbps);
    let cap = epoch.elapsed().as_secs_f64();
    eprintln!("  phones B and C capped at {cap_kbps} kbit/s");
    sleep_until(begun + Duration::from_secs_f64(a.ample + a.cap));
    link_b.clear_rate();
    link_c.clear_rate();
    link_c.set_loss(a.loss);
    let clean = epoch.elapsed().as_secs_f64();
    eprintln!("  phone B clean again, phone C with {} % loss", a.loss);
    sleep_until(begun + Duration::from_secs_f64(a.ample + a.cap + a.lossy));
    link_c.clear_loss();
    let dry = epoch.elapsed().as_secs_f64();
    eprintln!("  phone C clean again");
    sleep_until(begun + Duration::from_secs_f64(a.ample + a.cap + a.clean));
    let end = epoch.elapsed().as_secs_f64();
    let exit = running.exited();
    let (note, daemon) = (running.note.clone(), running.daemon);
    let mut log_notes = running.log_lines("overrun", 2);
    log_notes.extend(running.log_lines("panicked", 1));
    let decisions = match daemon {
        true => rung_decisions(&running.procs[0].log_text(), epoch),
        false => Vec::new(),
    };
    let (log_b, log_a, log_c) = (client_b.finish(), client_a.finish(), client_c.finish());
    for (name, log) in [("A", &log_a), ("B", &log_b), ("C", &log_c)] {
        write_frames(&sdir.join(format!("phone-{name}.csv")), log);
    }
    let watched = monitor.finish();
    drop(running);
    camera.send_to(None);
    let load_end = load_average();
    let link_desc_a = format!("ample, {} % loss", a.loss);
    let link_desc_b = format!("cap {cap_kbps} kbit/s");
    let link_desc_c = format!("cap {cap_kbps} kbit/s, then {} % loss", a.loss);
    let phones = [
        (log_a, link_a.phone_ip.clone(), link_desc_a),
        (log_b, link_b.phone_ip.clone(), link_desc_b),
        (log_c, link_c.phone_ip.clone(), link_desc_c),
    ];
    Outcome::Ran(Box::new(Ran {
        note,
        daemon,
        phones,
        decisions,
        phases: Phases {
            start,
            cap,
            clean,
            dry,
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
    /// Changes of direction within a phase (down then up, or up then down):
    /// flapping. A climb in two steps is two switches and no reversal.
    reversals: usize,
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
    // Per phase (0 before the cap, 1 in it, 2 after it): the direction of
    // its last switch (true: up).
    let mut rising: [Option<bool>; 3] = [None; 3];
    let mut reversals = 0;
    for f in frames.iter().filter(|f| f.width > 0) {
        if f.width != last {
            let phase = match f.end {
                e if e < p.cap => 0,
                e if e < p.clean => 1,
                _ => 2,
            };
            if last != 0 && phase == 1 {
                switches_cap += 1;
            } else if last != 0 && phase == 2 {
                switches_clean += 1;
            }
            if last != 0 {
                let up = f.width > last;
                if rising[phase].is_some_and(|was| was != up) {
                    reversals += 1;
                }
                rising[phase] = Some(up);
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
        reversals,
        delay,
    })
}

/// The longest wait between two frames that came between `from` and `to`.
fn largest_gap(frames: &[Frame], from: f64, to: f64) -> Option<f64> {
    let during: Vec<f64> = frames
        .iter()
        .map(|f| f.end)
        .filter(|t| (from..to).contains(t))
        .collect();
    during.windows(2).map(|w| w[1] - w[0]).reduce(f64::max)
}

/// One system's row of the issue 23 summary: C through its cap and lossy
/// spell, B's climb, A's largest gap.
type Seen = (Option<Metrics>, (Option<f64>, Option<f64>), Option<f64>);

fn summary_row(sys: &str, rungs: bool, seen: &[Seen]) -> String {
    let (Some(a), Some(b), Some(c)) = (&seen[0].0, &seen[1].0, &seen[2].0) else {
        return format!("| {sys} | no picture on some phone | | | | | |\n");
    };
    let (down, up) = seen[2].1;
    let said = |t: Option<f64>| t.map_or(String::new(), |t| format!(" (decided {t:.1} s)"));
    let lower = match c.lower {
        Lower::After(s) => secs(s) + &said(down),
        Lower::Never if !rungs => "never (one rung)".into(),
        Lower::Never => "never".into(),
        Lower::Before => "before the cap".into(),
    };
    let back = |m: &Metrics, up: Option<f64>| match m.back {
        Back::After(s) => secs(s) + &said(up),
        Back::NeverLeft if !rungs => "never left (one rung)".into(),
        Back::NeverLeft => "never left".into(),
        Back::DuringCap => "during the cap".into(),
        Back::NotBy(s) => format!("**not in {s:.0} s**"),
    };
    let gap = seen[2].2.map_or("–".into(), |g| format!("{g:.2} s"));
    format!(
        "| {sys} | {lower} | {} | {} / {} | {gap} | {:+.2} s | {} | {:.2} s |\n",
        back(c, up),
        c.switches_cap,
        c.switches_clean,
        c.peak_lag,
        back(b, seen[1].1 .1),
        a.gap_wall,
    )
}

/// Which phone: A (lossy), B (capped, then clean), C (capped, then lossy).
#[derive(Clone, Copy, PartialEq)]
enum Phone {
    A,
    B,
    C,
}

impl Phone {
    const ALL: [Phone; 3] = [Phone::A, Phone::B, Phone::C];

    fn name(self) -> &'static str {
        match self {
            Phone::A => "A",
            Phone::B => "B",
            Phone::C => "C",
        }
    }
}

/// The targets of issues 13 (A, B) and 23 (A's gap, C) this phone missed.
fn missed(m: &Metrics, phone: Phone, fps: u32, whole_run_s: f64) -> Vec<&'static str> {
    let mut out = Vec::new();
    let full = 0.9 * f64::from(fps);
    if phone != Phone::A {
        match m.lower {
            Lower::After(s) if s <= 1.0 => {}
            Lower::After(s) if s <= 2.0 => out.push("lower rung > 1 s"),
            Lower::After(_) => out.push("lower rung > 2 s"),
            _ => out.push("no lower rung"),
        }
        let (back_within, late) = match phone {
            Phone::C => (10.0, "top rung > 10 s after"),
            _ => (20.0, "top rung > 20 s after"),
        };
        match m.back {
            Back::After(s) if s <= back_within => {}
            Back::DuringCap | Back::NeverLeft => {}
            _ => out.push(late),
        }
        if m.reversals > 0 {
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

/// Seconds since the Unix epoch of an RFC 3339 UTC stamp as env_logger
/// writes it (`2026-12-04T08:44:01.123Z`).
fn unix_secs(stamp: &str) -> Option<f64> {
    let stamp = stamp.strip_suffix('Z')?;
    let (date, time) = stamp.split_once('T')?;
    let mut d = date.split('-').map(|x| x.parse::<i64>().ok());
    let (y, mo, da) = (d.next()??, d.next()??, d.next()??);
    let mut t = time.split(':');
    let (h, mi) = (
        t.next()?.parse::<f64>().ok()?,
        t.next()?.parse::<f64>().ok()?,
    );
    let sec = t.next()?.parse::<f64>().ok()?;
    // Days from the civil date (Howard Hinnant's algorithm).
    let y = if mo <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let doy = (153 * (mo + if mo > 2 { -3 } else { 9 }) + 2) / 5 + da - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    let days = era * 146_097 + doe - 719_468;
    Some(days as f64 * 86_400.0 + h * 3600.0 + mi * 60.0 + sec)
}

/// livestreamd's rung decisions, from its log: when (seconds since the
/// benchmark's epoch), for which viewer's address (None: every viewer, a
/// shared controller), from which rung to which.
fn rung_decisions(log: &str, epoch: Instant) -> Vec<(f64, Option<String>, usize, usize)> {
    let now_unix = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0.0, |d| d.as_secs_f64());
    let epoch_unix = now_unix - epoch.elapsed().as_secs_f64();
    let from_to = |text: &str| {
        let (a, rest) = text.split_once(" -> ")?;
        let b = rest.split(|c: char| !c.is_ascii_digit()).next()?;
        Some((a.trim().parse::<usize>().ok()?, b.parse::<usize>().ok()?))
    };
    let mut address: HashMap<String, String> = HashMap::new();
    let mut out = Vec::new();
    for line in log.lines() {
        let Some((stamp, rest)) = line.strip_prefix('[').and_then(|l| l.split_once(' ')) else {
            continue;
        };
        let (Some(t), Some((_, msg))) = (unix_secs(stamp), rest.split_once("] ")) else {
            continue;
        };
        let t = t - epoch_unix;
        if let Some(v) = msg.strip_prefix("viewer ") {
            // "viewer 3 (10.20.0.6:41234) connected", "viewer 3: rung 0 -> 3: why"
            if let Some((id, peer)) = v
                .strip_suffix(") connected")
                .and_then(|v| v.split_once(" ("))
            {
                let ip = peer.rsplit_once(':').map_or(peer, |(ip, _)| ip);
                address.insert(id.to_string(), ip.to_string());
            } else if let Some((id, rest)) = v.split_once(": rung ") {
                if let Some((a, b)) = from_to(rest) {
                    out.push((t, address.get(id).cloned(), a, b));
                }
            }
        } else if let Some(rest) = msg.strip_prefix("rung ") {
            // "rung 0 -> 3 for every viewer: why"
            if let (true, Some((a, b))) = (rest.contains(" for every viewer"), from_to(rest)) {
                out.push((t, None, a, b));
            }
        }
    }
    out
}

/// When the daemon decided a phone's first step down after `from`, and its
/// first climb to the top after `top_from`, in seconds after each.
fn decided(
    decisions: &[(f64, Option<String>, usize, usize)],
    ip: &str,
    from: f64,
    top_from: f64,
) -> (Option<f64>, Option<f64>) {
    let mine = || {
        decisions
            .iter()
            .filter(move |d| d.1.as_deref().map_or(true, |a| a == ip))
    };
    let down = mine()
        .find(|d| d.0 >= from && d.3 > d.2)
        .map(|d| d.0 - from);
    let up = mine()
        .find(|d| d.0 >= top_from && d.3 == 0)
        .map(|d| d.0 - top_from);
    (down, up)
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

#[allow(clippy::too_many_arguments)]
fn phone_row(
    sys: &str,
    rungs: bool,
    phone: &str,
    link: &str,
    log: &PhoneLog,
    m: Option<&Metrics>,
    extra: (String, String),
    decided: (Option<f64>, Option<f64>),
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
    let said = |t: Option<f64>| t.map_or(String::new(), |t| format!(" (decided {t:.1} s)"));
    let lower = match m.lower {
        Lower::Never if !rungs => "never (one rung)".into(),
        Lower::Never => "never".into(),
        Lower::Before => "before the cap".into(),
        Lower::After(s) => secs(s) + &said(decided.0),
    };
    let back = match m.back {
        Back::NeverLeft => "never left".into(),
        Back::DuringCap => "during the cap".into(),
        Back::After(s) => secs(s) + &said(decided.1),
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
    let stall_section = stalls::run(&a.stalls, &a.common, &camera, epoch, &dir);
    let camera_frames = camera.frames();
    let camera_secs = camera_frames.last().map_or(0.0, |l| l.start)
        - camera_frames.first().map_or(0.0, |f| f.start);
    let camera_mbit = camera.bytes() as f64 * 8.0 / 1e6 / camera_secs.max(1e-3);
    let camera_fps = camera_frames.len() as f64 / camera_secs.max(1e-3);
    let sent = camera.sent_times();
    drop(camera);

    let mut phone_rows = String::new();
    let mut system_rows = String::new();
    let mut summary_rows = String::new();
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
                let mut seen = Vec::new();
                for (phone, (log, ip, link)) in Phone::ALL.into_iter().zip(&r.phones) {
                    let m = metrics(log.frames(), r.phases, top, &sent);
                    let miss = m.as_ref().map_or(String::new(), |m| {
                        let list = missed(m, phone, a.common.camera.fps, whole);
                        if list.is_empty() {
                            "none".into()
                        } else {
                            list.join(", ")
                        }
                    });
                    let when = decided(&r.decisions, ip, r.phases.cap, r.phases.clean);
                    phone_rows.push_str(&phone_row(
                        &label,
                        r.daemon,
                        phone.name(),
                        link,
                        log,
                        m.as_ref(),
                        (miss, status_rungs(&r.status, ip)),
                        when,
                    ));
                    let lossy_gap = largest_gap(log.frames(), r.phases.clean, r.phases.dry);
                    seen.push((m, when, lossy_gap));
                }
                summary_rows.push_str(&summary_row(&label, r.daemon, &seen));
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
    let route = match a.route.is_empty() {
        true => "none (the kernel's defaults)".to_string(),
        false => format!("`{}`", a.route),
    };
    let title = match results.is_empty() {
        true => "Stall remedies on a lossy link",
        false => "Three phones, one camera, every system",
    };
    let mut report = format!(
        "\n## {title}, {date}\n\n\
Command: `{command}` (as root; release build; {minutes:.0} min for the whole run).\n\
Machine: 2 cores, shared with other work: load average {load_start} at the start, {load_end} at the end (each system's own below). Congestion control: the host's default, `{cc}` (the Pi images' kernels default to cubic).\n\
Camera: ffmpeg test pattern {cam} (the demo camera's arguments — libx264 ultrafast — with light noise and a rate cap so it keeps its rate), measured {camera_mbit:.2} Mbit/s and {camera_fps:.1} frames/s, H.264 in MPEG-TS over UDP, 7 packets a datagram, relayed by the benchmark to one system at a time.\n\
livestreamd build: {commit}, {build}{baseline}; `preset = \"ultrafast\"`; ladder {ladder} kbit/s.\n",
        baseline = a.baseline.as_ref().map_or(String::new(), |b| format!(
            "; `per-viewer{BASELINE}` is the build at `{}` (`--baseline`)",
            b.display()
        )),
        date = utc_now(),
        load_end = load_average(),
        cc = std::fs::read_to_string("/proc/sys/net/ipv4/tcp_congestion_control")
            .unwrap_or_default()
            .trim(),
        cam = a.common.camera.describe(),
        commit = git_commit(),
        ladder = ladder_desc.join(", "),
    );
    if !results.is_empty() {
        write!(
            report,
            "Link profile: every phone on its own veth link; the host's route to each carries the route metrics {route} (standing for the image's route to its access point's subnet). Phone A — {loss} % random loss (nft numgen) throughout; phone B — ample for {ample:.0} s, then `tc tbf` at {capk} kbit/s (1/4 of the top rung) for {cap:.0} s, then clean for {clean:.0} s; phone C — as B, but the first {lossy:.0} s after the cap with {loss} % random loss on the otherwise ample link. The phones connect at the start (B first, A and C once B has its answer or after 5 s: ffmpeg -listen serves one client) and reconnect a second after a stream ends.\n\
Measured at the phones, per frame (its last byte's arrival, its PTS, the width from the SPS before each keyframe): *lower rung* — first smaller picture after the cap, and when livestreamd's log says it decided the step; *peak lag* — how far behind live (wall clock against stream time) a frame is when its last byte comes, at its worst, against the system's own best before the cap (a stream that stops keeps falling behind until the end); *gap* — the longest wait between two frames (wall clock) and the largest PTS step (stream time skipped); *fps* — frames per second before the cap, from {cs:.0} s after the cap to its end, and after it; *lag at the end* — the newest frame's, and for a player that shows each frame at 1× speed once it has it and never skips by itself (a jump of over a second in the stream is shown at once); *back on top* — first top-size picture after the cap ends (and when the log says it decided the climb); *widths* — the picture widths in order (switches); *camera→phone* — median delay before the cap where the system keeps the camera's PTS; *targets missed* — issue 13's targets for A and B, issue 23's for B and C (a lower rung ≤ 1 s after the cap), C (back on top ≤ 10 s after the cap) and A (gap ≤ 0.5 s); *flapping* — a change of direction within a phase (a climb in two steps is none). Phone figures start {settle:.0} s after connecting.\n\n\
Issue 23 at a glance (from the rows below):\n\n\
| system | C on a lower rung after the cap | C back on top after the cap, through its lossy spell | C switches: in the cap / after it | C's largest gap in its lossy spell | C's peak lag | B back on top after the cap | A's largest gap |\n\
| --- | --- | --- | --- | ---: | ---: | --- | ---: |\n{summary_rows}\n\
| system | phone | link | frames | on a lower rung after the cap | peak lag | largest gap wall / PTS | fps before / cap / after | lag at the end: arrival / 1× player | back on top after the cap | widths seen (switches) | camera→phone before the cap | connections | /status rungs | targets missed |\n\
| --- | --- | --- | ---: | --- | ---: | --- | --- | ---: | --- | --- | ---: | ---: | --- | --- |\n{phone_rows}\n\
| system | setup | ran | CPU, all its processes (% of one core) | encoders at once | load at start → end | notes |\n\
| --- | --- | --- | ---: | ---: | --- | --- |\n{system_rows}",
            loss = a.loss,
            ample = a.ample,
            capk = a.common.camera.kbps / 4,
            cap = a.cap,
            clean = a.clean,
            lossy = a.lossy,
            cs = CAP_SETTLE,
            settle = SETTLE,
        )
        .unwrap();
    }
    report.push_str(&stall_section);
    if !skipped.is_empty() {
        write!(report, "\nCould not run:\n\n{skipped}").unwrap();
    }
    a.common.report(&dir, &report);
}
