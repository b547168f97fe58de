//! What `/status`, `/events`, `/metrics` and systemd's `STATUS=` show: plain
//! snapshot types, and the server-wide counters the HTTP side bumps. A leaf:
//! the daemon fills a `Status`, the HTTP side reads it, neither imports the other.

use crate::control::adapt::AdaptStatus;
use crate::control::link::LinkSample;
pub use crate::control::viewers::ViewerStatus;
use crate::media::ladder::PassthroughStatus;
use crate::media::push::PushStatus;
use crate::media::relay::{HlsStats, HubStats};
use crate::media::source::SourceStatus;
use crate::supervise::ChildInfo;
use serde::Serialize;
use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};

/// The whole daemon at one moment.
#[derive(Debug, Clone, Serialize)]
pub struct Status {
    pub version: &'static str,
    pub uptime_s: f64,
    pub source: SourceStatus,
    pub camera: CameraStatus,
    /// The start rung's encoder (always running): what a new viewer gets first.
    pub encoder: Option<EncoderStatus>,
    /// Every running encoder, one per hot rung.
    pub encoders: Vec<EncoderStatus>,
    /// The decoder shared by the encoded rungs, while two or more run.
    pub decoder: Option<DecoderStatus>,
    /// The ladder's passthrough rung, if it has one: offered or not, and why.
    pub passthrough: Option<PassthroughStatus>,
    pub hub: HubStats,
    /// HLS: the multivariant playlist's path, the playlists and their windows.
    pub hls: HlsStats,
    pub adapt: AdaptStatus,
    pub demo_source: Option<ChildInfo>,
    pub viewers: Vec<ViewerStatus>,
    /// `[[output]]` pushes and their probed links.
    pub outputs: Vec<OutputStatus>,
    /// Server-wide totals (answers, viewers served and refused, bytes sent).
    pub http: Totals,
    /// The field network as the image set it up (`/run/livestream/network.json`,
    /// docs/IMAGES.md); `null` without that file.
    pub network: Option<serde_json::Value>,
    /// The wall clock: who set it this boot (the camera, a phone) or nobody.
    pub clock: crate::timekeep::ClockStatus,
}

/// One running encoder.
#[derive(Debug, Clone, Serialize)]
pub struct EncoderStatus {
    pub generation: u64,
    pub rung: usize,
    /// The camera's own stream, remuxed (no encoding).
    pub passthrough: bool,
    pub width: u32,
    pub height: u32,
    pub fps: u32,
    pub bitrate_kbps: u32,
    /// What it reads: "camera" (it decodes the camera's stream itself) or
    /// "decoder" (the shared decoder's frames).
    pub input: &'static str,
    pub pid: Option<u32>,
    pub restarts: u64,
    pub uptime_s: Option<f64>,
    pub last_exit: Option<String>,
    pub last_stderr: Option<String>,
    /// Restarts by reason: "exited", "no output", "new timeline", "decoder restarted".
    pub restarts_by_reason: BTreeMap<&'static str, u64>,
    /// ffmpeg's stderr lines not logged (over the log budget).
    pub stderr_suppressed: u64,
    /// Viewers and pushes reading this rung.
    pub viewers: usize,
    /// Its ffmpeg's CPU use, percent of one core.
    pub cpu_pct: Option<f64>,
    /// Seconds from its ffmpeg's (latest) start to its first frame: how long
    /// a viewer stepping to this rung while it was cold waited for it.
    pub first_frame_s: Option<f64>,
}

/// The shared decoder: one ffmpeg decoding the camera for every encoded rung.
#[derive(Debug, Clone, Serialize)]
pub struct DecoderStatus {
    pub name: String,
    /// The picture it hands out (the largest encoded rung's).
    pub width: u32,
    pub height: u32,
    pub pid: Option<u32>,
    pub restarts: u64,
    pub uptime_s: Option<f64>,
    pub last_exit: Option<String>,
    pub last_stderr: Option<String>,
    /// Restarts by reason: "exited", "no output", "new timeline", "bad output".
    pub restarts_by_reason: BTreeMap<&'static str, u64>,
    pub stderr_suppressed: u64,
    /// Encoders reading its frames.
    pub encoders: usize,
    /// Frames handed out, and frames slow encoders skipped.
    pub frames: u64,
    pub frames_skipped: u64,
    /// Its ffmpeg's CPU use, percent of one core.
    pub cpu_pct: Option<f64>,
}

/// The camera's side, for `/status` and `/events` (docs/CAMERA.md explains every field).
#[derive(Debug, Clone, Serialize, PartialEq, Default)]
pub struct CameraStatus {
    /// The configured kind: `auto`, `udp`, `gopro-legacy` or `open-gopro`.
    pub kind: &'static str,
    /// `searching` (auto: no camera found yet), `waiting` (udp: nothing received yet),
    /// `starting` (asked, no video yet), `live`, `busy` (the camera answered 409: retrying),
    /// `refused` (it answered another error: retrying), `stalled` (video stopped; asking
    /// again), `unreachable` (no answer), `stopped`.
    pub state: &'static str,
    /// Why it is in that state and what the daemon does next, in words.
    pub reason: Option<String>,
    /// The API the camera speaks: `open-gopro`, `gopro-legacy`, or `udp` (a sender without an
    /// HTTP API); null until known.
    pub api: Option<&'static str>,
    /// Open GoPro's API version (`/gopro/version`).
    pub api_version: Option<String>,
    /// The model as the camera names itself, or as the daemon infers it.
    pub model: Option<String>,
    pub model_number: Option<u32>,
    pub firmware: Option<String>,
    /// The camera's HTTP base (`http://10.5.5.9:8080`), once known.
    pub address: Option<String>,
    /// `wifi` or `usb`.
    pub transport: Option<&'static str>,
    /// How the camera was found: the configured address, the camera's Wi-Fi, a USB link, the
    /// video it sent.
    pub found_by: Option<String>,
    /// What the daemon asks for: `preview`, `webcam` or `live-view` (legacy).
    pub mode: Option<&'static str>,
    /// Why the mode differs from the configured one, or what the camera cannot do here.
    pub mode_reason: Option<String>,
    /// The codec the model sends its stream in (`h264`; `hevc` for HERO13's preview).
    pub codec: Option<&'static str>,
    /// The camera's last answer to a command: request, status and its `error` field.
    pub last_answer: Option<String>,
    pub last_error: Option<String>,
    /// Unix time (s) of the last request the camera accepted.
    pub last_ok_unix: Option<f64>,
    /// HTTP requests sent to the camera (commands and keep-alives; not discovery's probes).
    pub requests: u64,
    /// Start sequences sent (the retried ones).
    pub start_requests: u64,
    /// Requests that failed (no connection, timeout, error status or error field).
    pub failures: u64,
    /// Keep-alives sent (UDP datagrams for legacy, HTTP requests for Open GoPro), and those
    /// that got no good answer.
    pub keepalives: u64,
    pub keepalive_failures: u64,
    /// Discovery rounds (auto): each asks every candidate address once.
    pub searches: u64,
    /// Unix time (s) the video stopped arriving, while it stays stopped.
    pub stalled_since: Option<f64>,
    /// Seconds until the start sequence (or, while searching, the next round) is sent again.
    pub next_retry_s: Option<f64>,
}

/// One `[[output]]` and what its probe measured.
#[derive(Debug, Clone, Serialize)]
pub struct OutputStatus {
    /// The URL with its secrets masked.
    pub url: String,
    /// "icmp", "udp" or "none".
    pub probe: &'static str,
    pub link: Option<LinkSample>,
    pub push: PushStatus,
    /// The rung it sends now, and the one it moves to.
    pub rung: Option<usize>,
    pub target_rung: Option<usize>,
    /// Its own controller's state (per-viewer policy), with the last reason
    /// it moved.
    pub adapt: Option<AdaptStatus>,
}

/// Status codes counted one by one; anything else is counted as `other`.
const CODES: [u16; 11] = [200, 400, 401, 403, 404, 405, 408, 410, 431, 500, 503];

/// Server-wide counters, updated lock-free by the HTTP side.
#[derive(Debug, Default)]
pub struct Counters {
    viewers_accepted: AtomicU64,
    viewers_rejected: AtomicU64,
    bytes_sent: AtomicU64,
    skips: AtomicU64,
    responses: [AtomicU64; CODES.len()],
    other_responses: AtomicU64,
}

impl Counters {
    pub fn viewer_accepted(&self) {
        self.viewers_accepted.fetch_add(1, Ordering::Relaxed);
    }
    pub fn viewer_rejected(&self) {
        self.viewers_rejected.fetch_add(1, Ordering::Relaxed);
    }
    pub fn sent(&self, bytes: usize, skipped: bool) {
        self.bytes_sent.fetch_add(bytes as u64, Ordering::Relaxed);
        self.skips.fetch_add(u64::from(skipped), Ordering::Relaxed);
    }
    /// Counts one answer (including the 200 that starts a stream).
    pub fn response(&self, code: u16) {
        match CODES.iter().position(|c| *c == code) {
            Some(i) => self.responses[i].fetch_add(1, Ordering::Relaxed),
            None => self.other_responses.fetch_add(1, Ordering::Relaxed),
        };
    }

    pub fn snapshot(
        &self,
        max_viewers: usize,
        connections: AdmissionStats,
        events_clients: usize,
    ) -> Totals {
        let mut responses: BTreeMap<String, u64> = CODES
            .iter()
            .zip(&self.responses)
            .map(|(c, n)| (c.to_string(), n.load(Ordering::Relaxed)))
            .collect();
        responses.insert("other".into(), self.other_responses.load(Ordering::Relaxed));
        Totals {
            max_viewers,
            viewers_accepted: self.viewers_accepted.load(Ordering::Relaxed),
            viewers_rejected: self.viewers_rejected.load(Ordering::Relaxed),
            bytes_sent: self.bytes_sent.load(Ordering::Relaxed),
            skips: self.skips.load(Ordering::Relaxed),
            responses,
            connections,
            events_clients,
        }
    }
}

/// Open connections, counted by the HTTP side's admission.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct AdmissionStats {
    pub open_connections: usize,
    pub pending_requests: usize,
    pub refused_connections: u64,
    pub addresses: usize,
}

/// A snapshot of `Counters`, part of `/status` (as `http`).
#[derive(Debug, Clone, Default, Serialize, PartialEq)]
pub struct Totals {
    pub max_viewers: usize,
    /// `/stream.ts` connections served since start.
    pub viewers_accepted: u64,
    /// `/stream.ts` connections refused with 503 because `max_viewers` were watching.
    pub viewers_rejected: u64,
    /// Bytes written to all viewers since start, including those who left.
    pub bytes_sent: u64,
    /// Skips to the newest keyframe, all viewers, since start.
    pub skips: u64,
    /// Answers by status code.
    pub responses: BTreeMap<String, u64>,
    /// Open connections, those still sending a request, refusals.
    pub connections: AdmissionStats,
    /// Open `/events` streams.
    pub events_clients: usize,
}
