//! Scenarios on an emulated phone link, shared by the tests and the benchmark.

use super::netns::PhoneLink;
use super::phone::{FrameClient, Target};
use super::*;
use livestreamd::media::ts::pts_diff;
use std::net::SocketAddr;
use std::path::Path;
use std::time::{Duration, Instant};

pub const LADDER: &[Rung] = &[
    (640, 360, 30, 1000),
    (320, 180, 30, 350),
    (160, 90, 15, 120),
];

/// The test's own player: reads `/stream.ts` inside the phone's namespace
/// and measures how far the picture is behind live (wall clock against
/// stream time, from the first frame on).
pub struct PhoneClient {
    client: FrameClient,
    t0: Instant,
}

impl PhoneClient {
    pub fn start(link: &PhoneLink, port: u16) -> PhoneClient {
        let target = Target {
            addr: SocketAddr::new(link.host_ip.parse().unwrap(), port),
            path: Some("/stream.ts".into()),
        };
        let t0 = Instant::now();
        PhoneClient {
            client: FrameClient::start(link, target, t0, true),
            t0,
        }
    }

    pub fn elapsed(&self) -> f64 {
        self.t0.elapsed().as_secs_f64()
    }

    /// (seconds since the client started, lag in seconds) per frame, from
    /// the arrival of its first byte.
    pub fn lags(&self) -> Vec<(f64, f64)> {
        let frames = self.client.frames();
        let Some(first) = frames.first().copied() else {
            return Vec::new();
        };
        frames
            .iter()
            .map(|f| {
                let stream = pts_diff(f.pts, first.pts) as f64 / 90_000.0;
                (f.start, f.start - first.start - stream)
            })
            .collect()
    }

    /// Highest lag seen after `from` seconds.
    pub fn max_lag_after(&self, from: f64) -> f64 {
        self.lags()
            .iter()
            .filter(|(t, _)| *t >= from)
            .map(|(_, l)| *l)
            .fold(0.0, f64::max)
    }

    /// Share of the frames after `from` seconds that came more than
    /// `late_s` behind live, and the highest lag among them.
    pub fn late_share_after(&self, from: f64, late_s: f64) -> (f64, f64) {
        let lags: Vec<f64> = self
            .lags()
            .iter()
            .filter(|(t, _)| *t >= from)
            .map(|(_, l)| *l)
            .collect();
        let late = lags.iter().filter(|l| **l > late_s).count();
        (
            late as f64 / lags.len().max(1) as f64,
            lags.iter().copied().fold(0.0, f64::max),
        )
    }

    pub fn last_lag(&self) -> f64 {
        self.lags().last().map_or(0.0, |l| l.1)
    }

    /// Every body byte so far.
    pub fn bytes(&self) -> Vec<u8> {
        self.client.bytes()
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
