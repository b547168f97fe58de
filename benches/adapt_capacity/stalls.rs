//! The stall remedies: livestreamd per-viewer serving several phones, each
//! on its own ample link with random loss (like phone A), once per remedy on
//! the same kind of link; every phone's frame gaps counted. A gap there is a
//! TCP retransmission stall: the video behind the lost segment waits for it.
//!
//! Remedies (`--remedies`, comma-separated keys):
//! - `none`: the kernel's defaults on the route to the phones (minimum
//!   retransmission timeout 200 ms), as the images had them;
//! - `quickack`: route metric `quickack 1`;
//! - `rto_min=TIME`: route metric `rto_min TIME` (e.g. `rto_min=50ms`);
//! - `image`: what the images set now (`IMAGE_ROUTE`);
//! - `no-linear`: no route metrics, and the daemon without its
//!   `TCP_THIN_LINEAR_TIMEOUTS` on viewer sockets (it is on in every other
//!   row; `LIVESTREAMD_VIEWER_TCP_OFF` tells the daemon to leave it off).

use crate::common::netns::PhoneLink;
use crate::common::peers::*;
use crate::common::phone::{FrameClient, PhoneLog, Target};
use crate::common::*;
use std::fmt::Write as _;
use std::net::SocketAddr;
use std::path::Path;
use std::time::{Duration, Instant};

/// One remedy: its key and the route metrics it puts on the host's route to
/// each phone.
#[derive(Debug, Clone)]
pub struct Remedy {
    pub key: String,
    pub route: String,
    /// Viewer socket options the daemon leaves off (`LIVESTREAMD_VIEWER_TCP_OFF`).
    pub daemon_off: &'static str,
}

/// What to run.
#[derive(Debug, Clone)]
pub struct Plan {
    /// Seconds per remedy (0: none).
    pub secs: f64,
    pub phones: usize,
    pub remedies: Vec<Remedy>,
    pub loss: u32,
}

impl Default for Plan {
    fn default() -> Self {
        Plan {
            secs: 60.0,
            phones: 3,
            remedies: parse_remedies("no-linear,none,quickack,rto_min=50ms,rto_min=10ms,image")
                .unwrap(),
            loss: 5,
        }
    }
}

/// `no-linear,none,quickack,rto_min=10ms,image`.
pub fn parse_remedies(text: &str) -> Result<Vec<Remedy>, String> {
    text.split(',')
        .map(|key| {
            let daemon_off = match key {
                "no-linear" => "thin_linear_timeouts",
                _ => "",
            };
            let route = match key {
                "none" | "no-linear" => String::new(),
                "quickack" => "quickack 1".into(),
                "image" => super::IMAGE_ROUTE.into(),
                k => match k.strip_prefix("rto_min=") {
                    Some(time) if !time.is_empty() => format!("rto_min {time}"),
                    _ => {
                        return Err(format!(
                            "no remedy `{key}`: no-linear, none, quickack, rto_min=TIME, image"
                        ))
                    }
                },
            };
            Ok(Remedy {
                key: key.into(),
                route,
                daemon_off,
            })
        })
        .collect()
}

/// Measurements start this long after the phones connect.
const SETTLE: f64 = 3.0;

/// The gaps a phone saw: every wait between two frames, seconds.
fn gaps(log: &PhoneLog, from: f64) -> Vec<f64> {
    let ends: Vec<f64> = log
        .frames()
        .iter()
        .map(|f| f.end)
        .filter(|t| *t >= from)
        .collect();
    ends.windows(2).map(|w| w[1] - w[0]).collect()
}

/// One remedy's row, or why it could not run.
fn run_remedy(
    remedy: &Remedy,
    plan: &Plan,
    common: &BenchArgs,
    camera: &Camera,
    epoch: Instant,
    dir: &Path,
) -> Result<String, String> {
    let sdir = dir.join(format!("stalls-{}", remedy.key.replace('=', "-")));
    std::fs::create_dir_all(&sdir).unwrap();
    let (port, source_port) = (free_tcp_port(), free_udp_port());
    let launch = Launch {
        dir: &sdir,
        camera: &common.camera,
        source_port,
        port,
        bin: &common.bin,
    };
    let system = System::Livestreamd(DaemonSetup {
        name: "per-viewer".into(),
        adapt: "policy = \"per-viewer\"".into(),
        top: Top::Passthrough,
    });
    // The daemon reads it when it starts; nothing else in this process does.
    std::env::set_var("LIVESTREAMD_VIEWER_TCP_OFF", remedy.daemon_off);
    let launched = system.launch(&launch);
    std::env::remove_var("LIVESTREAMD_VIEWER_TCP_OFF");
    let mut running = launched?;
    camera.send_to(Some(source_port));
    let ready = running.wait_ready(Duration::from_secs(40));
    if let Err(why) = ready {
        camera.send_to(None);
        return Err(why);
    }
    sleep_until(Instant::now() + Duration::from_secs(2));
    let links: Vec<PhoneLink> = (0..plan.phones).map(|_| PhoneLink::create()).collect();
    for link in &links {
        link.set_route_metrics(&remedy.route);
        link.set_loss(plan.loss);
    }
    let load_start = load_average();
    let start = epoch.elapsed().as_secs_f64();
    let clients: Vec<FrameClient> = links
        .iter()
        .map(|link| {
            let target = Target {
                addr: SocketAddr::new(link.host_ip.parse().unwrap(), port),
                path: running.path.clone(),
            };
            FrameClient::start(link, target, epoch, false)
        })
        .collect();
    sleep_until(Instant::now() + Duration::from_secs_f64(SETTLE + plan.secs));
    let logs: Vec<PhoneLog> = clients.into_iter().map(FrameClient::finish).collect();
    let exit = running.exited();
    drop(running);
    camera.send_to(None);
    drop(links);
    let load_end = load_average();
    let from = start + SETTLE;
    let per_phone: Vec<Vec<f64>> = logs.iter().map(|l| gaps(l, from)).collect();
    let mut all: Vec<f64> = per_phone.iter().flatten().copied().collect();
    all.sort_by(f64::total_cmp);
    let frames: usize = per_phone.iter().map(|g| g.len() + 1).sum();
    let over = |s: f64| all.iter().filter(|g| **g > s).count();
    let pct = |q: f64| {
        all.get(((all.len() as f64 - 1.0) * q).round() as usize)
            .copied()
    };
    let largest: Vec<String> = per_phone
        .iter()
        .map(|g| format!("{:.2}", g.iter().copied().fold(0.0, f64::max)))
        .collect();
    let minutes = plan.secs * plan.phones as f64 / 60.0;
    let mut route = match remedy.route.is_empty() {
        true => "kernel defaults".to_string(),
        false => format!("`{}`", remedy.route),
    };
    if !remedy.daemon_off.is_empty() {
        route += &format!("; the daemon without `{}`", remedy.daemon_off);
    }
    Ok(format!(
        "| {} | {route} | {} × {:.0} s | {frames} | {} s | {:.1} | {} | {:.3} s | {:.3} s | {} → {} | {} |\n",
        remedy.key,
        plan.phones,
        plan.secs,
        largest.join(" / "),
        over(0.25) as f64 / minutes.max(1e-3),
        over(0.5),
        pct(0.99).unwrap_or(0.0),
        pct(0.999).unwrap_or(0.0),
        load_start,
        load_end,
        exit.unwrap_or_default().replace('|', "/"),
    ))
}

/// Runs every remedy in turn; the report section (empty when there is none).
pub fn run(plan: &Plan, common: &BenchArgs, camera: &Camera, epoch: Instant, dir: &Path) -> String {
    if plan.secs <= 0.0 || plan.remedies.is_empty() || plan.phones == 0 {
        return String::new();
    }
    let mut rows = String::new();
    for remedy in &plan.remedies {
        eprintln!("stall remedy: {} ({} phones)", remedy.key, plan.phones);
        match run_remedy(remedy, plan, common, camera, epoch, dir) {
            Ok(row) => rows.push_str(&row),
            Err(why) => writeln!(
                rows,
                "| {} | could not run: {} | | | | | | | | | |",
                remedy.key,
                why.replace('|', "/").replace('\n', " ")
            )
            .unwrap(),
        }
    }
    format!(
        "\nStall remedies: livestreamd per-viewer (the same config and camera), {phones} phones at once, each on its own veth link with {loss} % random loss (nft numgen) and nothing else, {secs:.0} s each after {settle:.0} s to settle; one remedy at a time, in this order. The route metrics are set on the host's route to each phone's /30 (`ip route replace … proto kernel scope link src …`), standing for the image's route to its access point's subnet. The daemon sets `TCP_THIN_LINEAR_TIMEOUTS` on viewer sockets in every row but `no-linear`. A gap is the wait between two frames' last bytes at the phone (30 frames/s: 0.033 s without loss).\n\n\
| remedy | route metrics (and daemon) | phones × time | frames | largest gap per phone | gaps > 0.25 s per phone-minute | gaps > 0.5 s | 99th percentile gap | 99.9th percentile gap | load at start → end | notes |\n\
| --- | --- | --- | ---: | --- | ---: | ---: | ---: | ---: | --- | --- |\n{rows}",
        phones = plan.phones,
        loss = plan.loss,
        secs = plan.secs,
        settle = SETTLE,
    )
}
