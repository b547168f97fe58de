//! Adaptive quality on an emulated bad Wi-Fi link: a phone in its own network
//! namespace, a capacity limit (tc tbf) and random loss (nft numgen), the real
//! daemon, real ffmpeg. Needs root; skipped with a message otherwise.

mod common;

use common::netns::{self, PhoneLink};
use common::*;
use livestreamd::ts::{Aligner, Demux, Kind};
use std::io::Read;
use std::path::Path;
use std::process::{Child, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

const LADDER: &str = "
[[ladder]]
width = 640
height = 360
fps = 30
bitrate_kbps = 1000

[[ladder]]
width = 320
height = 180
fps = 30
bitrate_kbps = 350

[[ladder]]
width = 160
height = 90
fps = 15
bitrate_kbps = 120
";

macro_rules! need_root {
    () => {
        if let Some(why) = netns::unavailable() {
            eprintln!("SKIPPED: {why}");
            return;
        }
    };
}

/// The test's own player: reads the stream inside the phone's namespace and
/// measures how far the picture is behind live (wall clock against stream time).
struct PhoneClient {
    child: Child,
    data: Arc<Mutex<ClientData>>,
    t0: Instant,
}

#[derive(Default)]
struct ClientData {
    bytes: Vec<u8>,
    /// (seconds since the client started, lag in seconds)
    lag: Vec<(f64, f64)>,
}

impl PhoneClient {
    fn start(link: &PhoneLink, port: u16) -> PhoneClient {
        let url = format!("http://{}:{port}/stream.ts", link.host_ip);
        let mut child = link
            .command("curl")
            .args(["-sN", &url])
            .stdout(Stdio::piped())
            .spawn()
            .expect("curl in the phone namespace");
        let mut out = child.stdout.take().unwrap();
        let data = Arc::new(Mutex::new(ClientData::default()));
        let d = data.clone();
        let t0 = Instant::now();
        std::thread::spawn(move || {
            let (mut aligner, mut demux) = (Aligner::default(), Demux::default());
            let mut first: Option<(Instant, u64)> = None;
            let mut buf = vec![0u8; 65536];
            while let Ok(n) = out.read(&mut buf) {
                if n == 0 {
                    break;
                }
                let now = Instant::now();
                let packets = aligner.push(&buf[..n]);
                let mut g = d.lock().unwrap();
                g.bytes.extend_from_slice(&buf[..n]);
                for pkt in packets.chunks_exact(188) {
                    if let Kind::Video { pts: Some(pts), .. } = demux.classify(pkt) {
                        let (t_first, pts_first) = *first.get_or_insert((now, pts));
                        let lag = now.duration_since(t_first).as_secs_f64()
                            - (pts as f64 - pts_first as f64) / 90_000.0;
                        g.lag.push((now.duration_since(t0).as_secs_f64(), lag));
                    }
                }
            }
        });
        PhoneClient { child, data, t0 }
    }

    fn elapsed(&self) -> f64 {
        self.t0.elapsed().as_secs_f64()
    }

    /// Highest lag seen after `from` seconds.
    fn max_lag_after(&self, from: f64) -> f64 {
        self.data
            .lock()
            .unwrap()
            .lag
            .iter()
            .filter(|(t, _)| *t >= from)
            .map(|(_, l)| *l)
            .fold(0.0, f64::max)
    }

    fn last_lag(&self) -> f64 {
        self.data.lock().unwrap().lag.last().map_or(0.0, |l| l.1)
    }

    fn bytes(&self) -> Vec<u8> {
        self.data.lock().unwrap().bytes.clone()
    }
}

impl Drop for PhoneClient {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn start_daemon(dir: &Path, extra: &str) -> (Daemon, u16) {
    start_daemon_with(dir, extra, "")
}

fn start_daemon_with(dir: &Path, extra: &str, server_extra: &str) -> (Daemon, u16) {
    let ports = Ports::new();
    let text = format!(
        "[source]\nurl = \"udp://127.0.0.1:{}\"\n[encoder]\npreset = \"ultrafast\"\n[server]\nlisten = \"0.0.0.0:{}\"\n{server_extra}\n{LADDER}\n{extra}\n",
        ports.source, ports.http
    );
    let config = dir.join("livestreamd.toml");
    std::fs::write(&config, text).unwrap();
    let daemon = Daemon::start(
        dir,
        &[
            "demo",
            "--config",
            config.to_str().unwrap(),
            "--size",
            "640x360",
        ],
        ports.http,
    );
    daemon.wait_streaming();
    (daemon, ports.http)
}

fn rung(d: &Daemon) -> i64 {
    d.status()
        .map_or(-1, |s| s["encoder"]["rung"].as_i64().unwrap_or(-1))
}

/// Per-frame (pts seconds, width) of a capture, by ffprobe.
fn frames(dir: &Path, name: &str, bytes: &[u8]) -> Vec<(f64, u32)> {
    let path = dir.join(name);
    std::fs::write(&path, bytes).unwrap();
    let out = std::process::Command::new("ffprobe")
        .args([
            "-v",
            "quiet",
            "-select_streams",
            "v:0",
            "-show_entries",
            "frame=pts_time,width",
            "-of",
            "csv=p=0",
        ])
        .arg(&path)
        .output()
        .unwrap();
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter_map(|l| {
            let mut f = l.split(',');
            Some((f.next()?.parse().ok()?, f.next()?.parse().ok()?))
        })
        .collect()
}

/// Runs the capacity-drop scenario: ample for 10 s, then 600 kbit/s until 60 s.
/// Returns (max lag after the drop, lag at the end, seconds to the first rung drop).
fn capacity_drop(dir: &Path, extra: &str, server_extra: &str) -> (f64, f64, Option<f64>, Daemon) {
    let (daemon, port) = start_daemon_with(dir, extra, server_extra);
    let link = PhoneLink::create();
    let client = PhoneClient::start(&link, port);
    std::thread::sleep(Duration::from_secs(10));
    link.set_rate(600);
    let dropped_at = client.elapsed();
    let mut reaction = None;
    while client.elapsed() < 60.0 {
        std::thread::sleep(Duration::from_millis(250));
        if reaction.is_none() && rung(&daemon) > 0 {
            reaction = Some(client.elapsed() - dropped_at);
        }
    }
    let max_lag = client.max_lag_after(dropped_at + 5.0);
    (max_lag, client.last_lag(), reaction, daemon)
}

#[test]
fn a_capacity_drop_steps_down_and_stays_live_where_fixed_quality_falls_behind() {
    need_root!();
    let adaptive = std::thread::spawn(|| {
        let dir = temp_dir("capacity-adaptive");
        let (max_lag, end_lag, reaction, daemon) = capacity_drop(&dir, "", "");
        let switches = daemon.status().unwrap()["adapt"]["switches"]
            .as_u64()
            .unwrap();
        (max_lag, end_lag, reaction, switches, rung(&daemon))
    });
    let fixed = std::thread::spawn(|| {
        let dir = temp_dir("capacity-fixed");
        // The old way: one quality, and a viewer that is never skipped ahead.
        let (max_lag, end_lag, _, _) = capacity_drop(
            &dir,
            "[adapt]\nmode = \"fixed\"\n",
            "viewer_max_lag_ms = 120000",
        );
        (max_lag, end_lag)
    });
    let (a_max, a_end, reaction, switches, a_rung) = adaptive.join().unwrap();
    let (f_max, f_end) = fixed.join().unwrap();
    println!("adaptive: reacted after {reaction:?} s, {switches} switch(es), final rung {a_rung}, max lag {a_max:.2} s, final lag {a_end:.2} s");
    println!("fixed:    max lag {f_max:.2} s, final lag {f_end:.2} s");
    let reaction = reaction.expect("the rung dropped");
    assert!(reaction < 5.0, "reacted after {reaction:.1} s");
    assert!(a_rung >= 1, "on a rung that fits 600 kbit/s");
    assert!(a_max < 2.0, "adaptive lag stayed bounded: {a_max:.2} s");
    assert!(
        f_end > a_max + 1.0,
        "fixed quality fell behind: {f_end:.2} s vs {a_max:.2} s"
    );
}

#[test]
fn when_the_link_recovers_the_rung_climbs_back_without_oscillating() {
    need_root!();
    let dir = temp_dir("recovery");
    let (daemon, port) = start_daemon(&dir, "[adapt]\nup_after_s = 6.0\n");
    let link = PhoneLink::create();
    link.set_rate(300);
    let client = PhoneClient::start(&link, port);
    let t0 = Instant::now();
    while rung(&daemon) < 1 && t0.elapsed() < Duration::from_secs(20) {
        std::thread::sleep(Duration::from_millis(250));
    }
    let low = rung(&daemon);
    assert!(
        low >= 1,
        "stepped down on a 300 kbit/s link: {:?}",
        daemon.status()
    );
    std::thread::sleep(Duration::from_secs(5));
    link.clear_rate();
    let restored = client.elapsed();
    let t1 = Instant::now();
    while rung(&daemon) != 0 && t1.elapsed() < Duration::from_secs(60) {
        std::thread::sleep(Duration::from_millis(250));
    }
    let climbed = t1.elapsed().as_secs_f64();
    assert_eq!(
        rung(&daemon),
        0,
        "back to the top rung: {:?}",
        daemon.status()
    );
    // Then it stays there.
    let switches_at_top = daemon.status().unwrap()["adapt"]["switches"]
        .as_u64()
        .unwrap();
    std::thread::sleep(Duration::from_secs(15));
    let s = daemon.status().unwrap();
    println!(
        "down to rung {low}, climbed back {climbed:.1} s after the restore; switches {}",
        s["adapt"]["switches"]
    );
    assert_eq!(
        s["adapt"]["switches"].as_u64().unwrap(),
        switches_at_top,
        "no oscillation at the top"
    );
    assert_eq!(s["encoder"]["rung"], 0);
    assert!(
        client.max_lag_after(restored + 3.0) < 2.0,
        "live after the recovery"
    );
    // The climbs were seen by the client as resolution changes on its one connection.
    let widths: Vec<u32> = frames(&dir, "recovery.ts", &client.bytes())
        .iter()
        .map(|f| f.1)
        .collect();
    assert_eq!(widths.last(), Some(&640));
    assert!(
        widths.iter().any(|w| *w < 640),
        "lower resolution seen on the same connection"
    );
}

#[test]
fn random_loss_steps_down_and_a_clean_link_never_does() {
    need_root!();
    let lossy = std::thread::spawn(|| {
        let dir = temp_dir("loss");
        let (daemon, port) = start_daemon(&dir, "");
        let link = PhoneLink::create();
        link.set_loss(6);
        let _client = PhoneClient::start(&link, port);
        let t0 = Instant::now();
        while rung(&daemon) < 1 && t0.elapsed() < Duration::from_secs(30) {
            std::thread::sleep(Duration::from_millis(250));
        }
        let s = daemon.status().unwrap();
        (
            t0.elapsed().as_secs_f64(),
            s["encoder"]["rung"].as_i64().unwrap(),
            s["adapt"]["last_reason"].clone(),
            s["viewers"][0]["link"].clone(),
        )
    });
    let clean = std::thread::spawn(|| {
        let dir = temp_dir("clean");
        let (daemon, port) = start_daemon(&dir, "");
        let link = PhoneLink::create();
        let _client = PhoneClient::start(&link, port);
        std::thread::sleep(Duration::from_secs(30));
        let s = daemon.status().unwrap();
        (
            s["adapt"]["switches"].as_u64().unwrap(),
            s["encoder"]["rung"].as_i64().unwrap(),
            s["viewers"][0]["link"].clone(),
        )
    });
    let (after, lossy_rung, reason, lossy_link) = lossy.join().unwrap();
    let (clean_switches, clean_rung, clean_link) = clean.join().unwrap();
    println!("6% loss: rung {lossy_rung} after {after:.1} s ({reason}); link {lossy_link}");
    println!("clean: {clean_switches} switches, rung {clean_rung}; link {clean_link}");
    assert!(lossy_rung >= 1, "loss made it step down");
    assert_eq!(
        (clean_switches, clean_rung),
        (0, 0),
        "a clean link never steps down"
    );
    assert!(
        clean_link["rtt_ms"].as_f64().is_some(),
        "link figures are in /status"
    );
}

/// Not netns: a switch on a clean loopback link, driven by the operator, must be
/// seamless: same connection, new resolution, no gap in the timestamps.
#[test]
fn a_rung_switch_changes_resolution_on_the_same_connection_without_a_gap() {
    let dir = temp_dir("seamless");
    let ports = Ports::new();
    let config = write_config(&dir, &ports, "[adapt]\nmode = \"fixed\"\n");
    let daemon = Daemon::demo(&dir, &config, ports.http);
    daemon.wait_streaming();
    let mut viewer = Viewer::connect(ports.http);
    viewer.read_for(Duration::from_secs(3));
    let (code, body) =
        http_request(ports.http, "POST /rung?set=1 HTTP/1.1\r\nHost: t\r\n\r\n").unwrap();
    assert_eq!(code, 200, "{}", String::from_utf8_lossy(&body));
    viewer.read_for(Duration::from_secs(4));
    assert_eq!(rung(&daemon), 1);
    http_request(ports.http, "POST /rung?set=0 HTTP/1.1\r\nHost: t\r\n\r\n").unwrap();
    viewer.read_for(Duration::from_secs(4));
    assert_eq!(rung(&daemon), 0);
    let frames = frames(&dir, "seamless.ts", &viewer.received);
    let changes: Vec<(f64, u32, u32)> = frames
        .windows(2)
        .filter(|w| w[0].1 != w[1].1)
        .map(|w| (w[1].0, w[0].1, w[1].1))
        .collect();
    println!("resolution changes (pts, from, to): {changes:?}");
    assert_eq!(
        changes.iter().map(|c| (c.1, c.2)).collect::<Vec<_>>(),
        vec![(320, 160), (160, 320)]
    );
    let max_gap = frames
        .windows(2)
        .map(|w| w[1].0 - w[0].0)
        .fold(0.0, f64::max);
    let backwards = frames.windows(2).any(|w| w[1].0 <= w[0].0);
    println!(
        "largest gap between frames: {:.1} ms over {} frames",
        max_gap * 1000.0,
        frames.len()
    );
    assert!(
        max_gap <= 2.0 / 30.0 + 0.001,
        "gap of {:.1} ms",
        max_gap * 1000.0
    );
    assert!(!backwards, "timestamps only go forward");
    let (code, _) =
        http_request(ports.http, "POST /rung?set=7 HTTP/1.1\r\nHost: t\r\n\r\n").unwrap();
    assert_eq!(code, 400);
    let (code, _) = http_request(ports.http, "GET /rung HTTP/1.1\r\nHost: t\r\n\r\n").unwrap();
    assert_eq!(code, 405);
}
