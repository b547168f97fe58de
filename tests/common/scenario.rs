//! Scenarios on an emulated phone link, shared by the tests and the benchmark.

use super::netns::PhoneLink;
use super::*;
use livestreamd::media::ts::{Aligner, Demux, Kind};
use std::io::Read;
use std::path::Path;
use std::process::{Child, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

pub const LADDER: &[Rung] = &[
    (640, 360, 30, 1000),
    (320, 180, 30, 350),
    (160, 90, 15, 120),
];

/// The test's own player: reads the stream inside the phone's namespace and
/// measures how far the picture is behind live (wall clock against stream time).
pub struct PhoneClient {
    pub child: Child,
    pub data: Arc<Mutex<ClientData>>,
    t0: Instant,
}

#[derive(Default)]
pub struct ClientData {
    pub bytes: Vec<u8>,
    /// (seconds since the client started, lag in seconds)
    pub lag: Vec<(f64, f64)>,
}

impl PhoneClient {
    pub fn start(link: &PhoneLink, port: u16) -> PhoneClient {
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

    pub fn elapsed(&self) -> f64 {
        self.t0.elapsed().as_secs_f64()
    }

    /// Highest lag seen after `from` seconds.
    pub fn max_lag_after(&self, from: f64) -> f64 {
        self.data
            .lock()
            .unwrap()
            .lag
            .iter()
            .filter(|(t, _)| *t >= from)
            .map(|(_, l)| *l)
            .fold(0.0, f64::max)
    }

    pub fn last_lag(&self) -> f64 {
        self.data.lock().unwrap().lag.last().map_or(0.0, |l| l.1)
    }

    pub fn bytes(&self) -> Vec<u8> {
        self.data.lock().unwrap().bytes.clone()
    }
}

impl Drop for PhoneClient {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

pub fn start_daemon(dir: &Path, extra: &str) -> (Daemon, u16) {
    start_daemon_with(dir, extra, "")
}

pub fn start_daemon_with(dir: &Path, extra: &str, server_extra: &str) -> (Daemon, u16) {
    let ports = Ports::new();
    let config = Config::new(&ports)
        .listen_ip("0.0.0.0")
        .server(server_extra)
        .ladder(LADDER)
        .extra(extra)
        .write(&dir.join("livestreamd.toml"));
    let daemon = Daemon::start(dir, &demo_args(&config, &["--size", "640x360"]), ports.http);
    daemon.wait_streaming();
    (daemon, ports.http)
}

/// The rung the (first) viewer receives in a `/status` document; -1 when
/// there is no viewer or it has had no keyframe yet.
pub fn rung_of(s: &serde_json::Value) -> i64 {
    s["viewers"][0]["rung"].as_i64().unwrap_or(-1)
}

/// The (first) viewer's rung now (-1 if `/status` does not answer).
pub fn rung(d: &Daemon) -> i64 {
    d.status().map_or(-1, |s| rung_of(&s))
}

/// Waits up to `timeout` until the viewer's rung is `pred`; the rung it ended
/// on, for the caller to assert on (-1 if `/status` does not answer).
pub fn wait_rung(d: &Daemon, timeout: Duration, pred: impl Fn(i64) -> bool) -> i64 {
    d.try_wait_status(timeout, |s| pred(rung_of(s)))
        .map_or_else(|| rung(d), |s| rung_of(&s))
}

/// What one capacity-drop run showed.
pub struct DropRun {
    /// Seconds from the capacity drop until viewers were on a lower rung.
    pub reaction_s: Option<f64>,
    /// Highest lag behind live from 5 s after the drop to the end, seconds.
    pub max_lag_s: f64,
    pub end_lag_s: f64,
    pub switches: u64,
    pub final_rung: i64,
    pub skips: u64,
    pub daemon: Daemon,
}

/// The capacity-drop scenario: an ample link for 10 s, then 600 kbit/s (below
/// the top rung's 1000) until 60 s, watched by the test's own client.
pub fn capacity_drop(dir: &Path, extra: &str, server_extra: &str) -> DropRun {
    let (daemon, port) = start_daemon_with(dir, extra, server_extra);
    let link = PhoneLink::create();
    let client = PhoneClient::start(&link, port);
    // The scenario's first part: an ample link.
    std::thread::sleep(Duration::from_secs(10));
    link.set_rate(600);
    let dropped_at = client.elapsed();
    let mut reaction_s = None;
    // Watched to the end (60 s after the client started), whenever it reacts.
    let rest = Duration::from_secs_f64((60.0 - dropped_at).max(0.0));
    for_period(rest, |_| {
        std::thread::sleep(Duration::from_millis(100));
        if reaction_s.is_none() && rung(&daemon) > 0 {
            reaction_s = Some(client.elapsed() - dropped_at);
        }
    });
    let status = daemon.status().unwrap_or_default();
    DropRun {
        reaction_s,
        max_lag_s: client.max_lag_after(dropped_at + 5.0),
        end_lag_s: client.last_lag(),
        switches: status["adapt"]["switches"].as_u64().unwrap_or(0),
        final_rung: status["viewers"][0]["rung"].as_i64().unwrap_or(-1),
        skips: status["viewers"][0]["skips"].as_u64().unwrap_or(0),
        daemon,
    }
}
