//! `/metrics`: the daemon's figures in the Prometheus text format (version 0.0.4).
//!
//! `render` is a pure function of a `Status` snapshot, so the exact output is
//! unit-tested here and parsed by a real Prometheus parser in `tests/metrics.rs`.
//! Names follow the Prometheus conventions: a `livestreamd_` prefix, base units
//! in the name (`_bytes`, `_seconds`, `_bits_per_second`), `_total` on counters.

use crate::status::Status;
use std::fmt::Write;

/// The content type of `render`'s output.
pub const CONTENT_TYPE: &str = "text/plain; version=0.0.4; charset=utf-8";

/// One metric family being written: HELP and TYPE first, then its samples.
struct Out {
    text: String,
}

impl Out {
    fn family(&mut self, name: &str, kind: &str, help: &str) {
        let _ = writeln!(self.text, "# HELP {name} {}", escape_help(help));
        let _ = writeln!(self.text, "# TYPE {name} {kind}");
    }

    fn sample(&mut self, name: &str, labels: &[(&str, &str)], value: f64) {
        self.text.push_str(name);
        if !labels.is_empty() {
            self.text.push('{');
            for (i, (k, v)) in labels.iter().enumerate() {
                if i > 0 {
                    self.text.push(',');
                }
                let _ = write!(self.text, "{k}=\"{}\"", escape_label(v));
            }
            self.text.push('}');
        }
        self.text.push(' ');
        self.text.push_str(&number(value));
        self.text.push('\n');
    }

    /// A family with one unlabelled sample.
    fn single(&mut self, name: &str, kind: &str, help: &str, value: f64) {
        self.family(name, kind, help);
        self.sample(name, &[], value);
    }
}

fn number(v: f64) -> String {
    if v.is_nan() {
        "NaN".into()
    } else if v.is_infinite() {
        if v > 0.0 { "+Inf" } else { "-Inf" }.into()
    } else if v == v.trunc() && v.abs() < 1e15 {
        format!("{}", v as i64)
    } else {
        format!("{v}")
    }
}

fn escape_label(v: &str) -> String {
    v.replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

fn escape_help(v: &str) -> String {
    v.replace('\\', "\\\\").replace('\n', "\\n")
}

/// The source states, each exported as its own series (1 for the current one).
const SOURCE_STATES: [&str; 3] = ["waiting", "live", "stalled"];
/// The camera states, likewise.
const CAMERA_STATES: [&str; 9] = [
    "searching",
    "waiting",
    "starting",
    "live",
    "busy",
    "refused",
    "stalled",
    "unreachable",
    "stopped",
];

/// Renders every figure of `status` in the Prometheus text format.
pub fn render(status: &Status) -> String {
    let mut o = Out {
        text: String::with_capacity(8192),
    };
    o.family(
        "livestreamd_build_info",
        "gauge",
        "Always 1; the version is a label.",
    );
    o.sample(
        "livestreamd_build_info",
        &[("version", status.version)],
        1.0,
    );
    o.single(
        "livestreamd_uptime_seconds",
        "gauge",
        "Seconds since the daemon started.",
        status.uptime_s,
    );

    // The camera's stream as it arrives.
    let src = &status.source;
    o.family(
        "livestreamd_source_state",
        "gauge",
        "1 for the source's current state (waiting: nothing received yet, live, stalled: silent for longer than source.stall_timeout_s), else 0.",
    );
    for s in SOURCE_STATES {
        o.sample(
            "livestreamd_source_state",
            &[("state", s)],
            f64::from(u8::from(src.state == s)),
        );
    }
    o.single(
        "livestreamd_source_packets_total",
        "counter",
        "UDP datagrams received from the camera.",
        src.packets as f64,
    );
    o.single(
        "livestreamd_source_received_bytes_total",
        "counter",
        "Bytes received from the camera.",
        src.bytes as f64,
    );
    if let Some(age) = src.last_packet_age_ms {
        o.single(
            "livestreamd_source_last_packet_age_seconds",
            "gauge",
            "Seconds since the last video frame from the camera.",
            age as f64 / 1000.0,
        );
    }
    o.family(
        "livestreamd_source_refused_datagrams_total",
        "counter",
        "Datagrams dropped at the camera port: foreign (not from the camera) or malformed (not whole MPEG-TS packets).",
    );
    for (reason, n) in [
        ("foreign", src.foreign_datagrams),
        ("malformed", src.malformed_datagrams),
    ] {
        o.sample(
            "livestreamd_source_refused_datagrams_total",
            &[("reason", reason)],
            n as f64,
        );
    }
    o.single(
        "livestreamd_source_timelines_total",
        "counter",
        "Timelines the camera started: its first video, a restart of its stream (timestamps jumped), video after a stall.",
        src.timelines as f64,
    );

    // The camera, as the camera module drives it.
    let cam = &status.camera;
    o.family(
        "livestreamd_camera_state",
        "gauge",
        "1 for the camera's current state (searching, waiting, starting, live, busy, refused, stalled, unreachable, stopped), else 0; kind is auto, udp, gopro-legacy or open-gopro.",
    );
    let mut states: Vec<&str> = CAMERA_STATES.to_vec();
    if !states.contains(&cam.state) {
        states.push(cam.state);
    }
    for st in states {
        o.sample(
            "livestreamd_camera_state",
            &[("kind", cam.kind), ("state", st)],
            f64::from(u8::from(cam.state == st)),
        );
    }
    for (name, help, n) in [
        (
            "livestreamd_camera_requests_total",
            "HTTP requests sent to the camera (start, keep-alive, stop).",
            cam.requests,
        ),
        (
            "livestreamd_camera_start_requests_total",
            "Start commands sent to the camera.",
            cam.start_requests,
        ),
        (
            "livestreamd_camera_failures_total",
            "Camera requests that failed (no connection, timeout, error status).",
            cam.failures,
        ),
        (
            "livestreamd_camera_keepalives_total",
            "Keep-alives sent to the camera.",
            cam.keepalives,
        ),
        (
            "livestreamd_camera_keepalive_failures_total",
            "Keep-alives that got no good answer (they go on regardless).",
            cam.keepalive_failures,
        ),
    ] {
        o.single(name, "counter", help, n as f64);
    }

    // The encoders: one per running rung.
    o.single(
        "livestreamd_encoders",
        "gauge",
        "Encoders running: one per rung someone watches (and the start rung).",
        status.encoders.len() as f64,
    );
    type EncoderField = fn(&crate::status::EncoderStatus) -> Option<f64>;
    let per_encoder: [(&str, &str, &str, EncoderField); 11] = [
        (
            "livestreamd_encoder_up",
            "gauge",
            "1 while the rung's ffmpeg is running.",
            |e| Some(f64::from(u8::from(e.pid.is_some()))),
        ),
        (
            "livestreamd_encoder_passthrough",
            "gauge",
            "1 for the camera's own stream, remuxed, not encoded.",
            |e| Some(f64::from(u8::from(e.passthrough))),
        ),
        (
            "livestreamd_encoder_width_pixels",
            "gauge",
            "Width of the rung's picture.",
            |e| Some(f64::from(e.width)),
        ),
        (
            "livestreamd_encoder_height_pixels",
            "gauge",
            "Height of the rung's picture.",
            |e| Some(f64::from(e.height)),
        ),
        (
            "livestreamd_encoder_frames_per_second",
            "gauge",
            "Frame rate of the rung.",
            |e| Some(f64::from(e.fps)),
        ),
        (
            "livestreamd_encoder_bitrate_bits_per_second",
            "gauge",
            "Video bitrate of the rung.",
            |e| Some(f64::from(e.bitrate_kbps) * 1000.0),
        ),
        (
            "livestreamd_encoder_generation",
            "gauge",
            "Number of the rung's encoder; it grows by one with every encoder started.",
            |e| Some(e.generation as f64),
        ),
        (
            "livestreamd_encoder_viewers",
            "gauge",
            "Viewers and pushes reading the rung.",
            |e| Some(e.viewers as f64),
        ),
        (
            "livestreamd_encoder_cpu_ratio",
            "gauge",
            "CPU used by the rung's ffmpeg, in cores (1 = one core busy).",
            |e| e.cpu_pct.map(|p| p / 100.0),
        ),
        (
            "livestreamd_encoder_uptime_seconds",
            "gauge",
            "Seconds the rung's ffmpeg has been running.",
            |e| e.uptime_s,
        ),
        (
            "livestreamd_encoder_first_frame_seconds",
            "gauge",
            "Seconds from the rung's ffmpeg's start to its first frame.",
            |e| e.first_frame_s,
        ),
    ];
    for (name, kind, help, field) in per_encoder {
        o.family(name, kind, help);
        for e in &status.encoders {
            let rung = e.rung.to_string();
            if let Some(v) = field(e) {
                o.sample(name, &[("rung", rung.as_str())], v);
            }
        }
    }
    o.family(
        "livestreamd_encoder_restarts_total",
        "counter",
        "Restarts of the rung's ffmpeg; a new series per encoder generation.",
    );
    let labels = |e: &crate::status::EncoderStatus| (e.rung.to_string(), e.generation.to_string());
    for e in &status.encoders {
        let (rung, generation) = labels(e);
        let g = [("rung", rung.as_str()), ("generation", generation.as_str())];
        o.sample("livestreamd_encoder_restarts_total", &g, e.restarts as f64);
    }
    o.family(
        "livestreamd_encoder_restarts_by_reason_total",
        "counter",
        "Restarts of the rung's ffmpeg by reason: exited, no output (alive but silent), new timeline (the camera restarted its stream), decoder restarted (the shared decoder it reads did).",
    );
    for e in &status.encoders {
        let (rung, generation) = labels(e);
        for reason in [
            crate::supervise::EXITED,
            crate::supervise::NO_OUTPUT,
            crate::media::encoder::NEW_TIMELINE,
            crate::media::frames::DECODER_RESTARTED,
        ] {
            let n = e.restarts_by_reason.get(reason).copied().unwrap_or(0);
            let l = [
                ("rung", rung.as_str()),
                ("generation", generation.as_str()),
                ("reason", reason),
            ];
            o.sample("livestreamd_encoder_restarts_by_reason_total", &l, n as f64);
        }
    }
    // The shared decoder, while two or more encoded rungs read it.
    let d = status.decoder.as_ref();
    o.single(
        "livestreamd_decoder_up",
        "gauge",
        "1 while one ffmpeg decodes the camera for the encoded rungs (two or more run).",
        f64::from(u8::from(d.is_some_and(|d| d.pid.is_some()))),
    );
    if let Some(d) = d {
        for (name, kind, help, v) in [
            (
                "livestreamd_decoder_encoders",
                "gauge",
                "Encoders reading the shared decoder's frames.",
                d.encoders as f64,
            ),
            (
                "livestreamd_decoder_frames_total",
                "counter",
                "Frames the shared decoder handed out.",
                d.frames as f64,
            ),
            (
                "livestreamd_decoder_frames_skipped_total",
                "counter",
                "Frames encoders behind the others skipped.",
                d.frames_skipped as f64,
            ),
            (
                "livestreamd_decoder_restarts_total",
                "counter",
                "Restarts of the shared decoder's ffmpeg.",
                d.restarts as f64,
            ),
        ] {
            o.single(name, kind, help, v);
        }
        if let Some(p) = d.cpu_pct {
            o.single(
                "livestreamd_decoder_cpu_ratio",
                "gauge",
                "CPU used by the shared decoder's ffmpeg, in cores.",
                p / 100.0,
            );
        }
    }

    // The controller.
    let a = &status.adapt;
    o.single(
        "livestreamd_adapt_target_rung",
        "gauge",
        "The rung the shared controller wants (policies weakest, strongest); under per-viewer, the start rung (each viewer's own rung is a per-viewer series).",
        a.switching_to.unwrap_or(a.rung) as f64,
    );
    o.single(
        "livestreamd_adapt_manual",
        "gauge",
        "1 while the rung is pinned by hand (POST /rung), 0 while the controller chooses.",
        f64::from(u8::from(a.pinned.is_some())),
    );
    o.single(
        "livestreamd_adapt_up_backoff",
        "gauge",
        "Factor on the clean period the controller waits for before climbing (grows after failed climbs).",
        a.up_backoff,
    );

    // The hub.
    let hub = &status.hub;
    o.single(
        "livestreamd_rung_switches_total",
        "counter",
        "Rung switches decided (per-viewer: over every viewer's controller, of those connected now).",
        a.switches as f64,
    );
    o.single(
        "livestreamd_hub_input_bytes_total",
        "counter",
        "Encoded bytes received by the hub from the encoders.",
        hub.bytes_in as f64,
    );
    o.single(
        "livestreamd_hub_buffered_bytes",
        "gauge",
        "Encoded bytes held for viewers.",
        hub.buffered_bytes as f64,
    );
    if let Some(age) = hub.last_input_age_ms {
        o.single(
            "livestreamd_hub_last_input_age_seconds",
            "gauge",
            "Seconds since the encoder last produced output.",
            age as f64 / 1000.0,
        );
    }

    // The server and its viewers.
    let t = &status.http;
    o.single(
        "livestreamd_viewers",
        "gauge",
        "Viewers connected to /stream.ts.",
        status.viewers.len() as f64,
    );
    o.single(
        "livestreamd_viewers_max",
        "gauge",
        "The most viewers served at once (server.max_viewers).",
        t.max_viewers as f64,
    );
    o.single(
        "livestreamd_viewers_accepted_total",
        "counter",
        "/stream.ts connections served.",
        t.viewers_accepted as f64,
    );
    o.single(
        "livestreamd_viewers_rejected_total",
        "counter",
        "/stream.ts connections refused with 503 because max_viewers were watching.",
        t.viewers_rejected as f64,
    );
    o.single(
        "livestreamd_sent_bytes_total",
        "counter",
        "Bytes written to all viewers, including those who have left.",
        t.bytes_sent as f64,
    );
    o.single(
        "livestreamd_skips_total",
        "counter",
        "Times a viewer that fell behind skipped to the newest keyframe.",
        t.skips as f64,
    );
    o.single(
        "livestreamd_hls_playlists_served_total",
        "counter",
        "HLS media playlists served (/hls/<rung or live>/index.m3u8).",
        status.hls.playlists_served as f64,
    );
    o.single(
        "livestreamd_hls_segments_served_total",
        "counter",
        "HLS segments served (their bytes count in livestreamd_sent_bytes_total).",
        status.hls.segments_served as f64,
    );
    o.single(
        "livestreamd_events_clients",
        "gauge",
        "Open /events (Server-Sent Events) streams.",
        t.events_clients as f64,
    );
    o.single(
        "livestreamd_http_open_connections",
        "gauge",
        "Open HTTP connections (viewers, event streams, requests being answered).",
        t.connections.open_connections as f64,
    );
    o.single(
        "livestreamd_http_pending_requests",
        "gauge",
        "Connections still sending their request head.",
        t.connections.pending_requests as f64,
    );
    o.single(
        "livestreamd_http_refused_connections_total",
        "counter",
        "Connections refused at once because the server or their address had its maximum open.",
        t.connections.refused_connections as f64,
    );
    o.family(
        "livestreamd_http_responses_total",
        "counter",
        "HTTP answers by status code.",
    );
    for (code, n) in &t.responses {
        o.sample(
            "livestreamd_http_responses_total",
            &[("code", code.as_str())],
            *n as f64,
        );
    }

    let ids: Vec<String> = status.viewers.iter().map(|v| v.id.to_string()).collect();
    type Field = fn(&crate::status::ViewerStatus) -> f64;
    let per_viewer: [(&str, &str, &str, Field); 5] = [
        (
            "livestreamd_viewer_rung",
            "gauge",
            "The rung this viewer receives (0 = the best; -1 before its first keyframe).",
            |v| v.rung.map_or(-1.0, |r| r as f64),
        ),
        (
            "livestreamd_viewer_sent_bytes_total",
            "counter",
            "Bytes written to this viewer.",
            |v| v.bytes_sent as f64,
        ),
        (
            "livestreamd_viewer_skips_total",
            "counter",
            "Times this viewer skipped to the newest keyframe.",
            |v| v.skips as f64,
        ),
        (
            "livestreamd_viewer_lag_seconds",
            "gauge",
            "How far behind live this viewer's last write was.",
            |v| v.lag_ms as f64 / 1000.0,
        ),
        (
            "livestreamd_viewer_connected_seconds",
            "gauge",
            "Seconds since this viewer connected.",
            |v| v.connected_s,
        ),
    ];
    if !status.viewers.is_empty() {
        o.family(
            "livestreamd_viewer_info",
            "gauge",
            "Always 1; the viewer's address is a label.",
        );
        for (v, id) in status.viewers.iter().zip(&ids) {
            o.sample(
                "livestreamd_viewer_info",
                &[("viewer", id), ("address", &v.address)],
                1.0,
            );
        }
        for (name, kind, help, get) in per_viewer {
            o.family(name, kind, help);
            for (v, id) in status.viewers.iter().zip(&ids) {
                o.sample(name, &[("viewer", id)], get(v));
            }
        }
    }

    // Link figures, for the viewers the link monitor has sampled.
    type Link = fn(&crate::control::link::LinkSample) -> f64;
    let link: [(&str, &str, Link); 6] = [
        (
            "livestreamd_viewer_link_rtt_seconds",
            "Smoothed round-trip time of this viewer's TCP connection (TCP_INFO).",
            |l| l.rtt_ms / 1000.0,
        ),
        (
            "livestreamd_viewer_link_rttvar_seconds",
            "Round-trip time variation of this viewer's TCP connection.",
            |l| l.rttvar_ms / 1000.0,
        ),
        (
            "livestreamd_viewer_link_loss_ratio",
            "Retransmitted share of the bytes sent to this viewer over the last window (0-1).",
            |l| l.loss_pct / 100.0,
        ),
        (
            "livestreamd_viewer_link_throughput_bits_per_second",
            "Bytes this viewer acknowledged per second over the last window, in bits per second.",
            |l| l.throughput_kbps * 1000.0,
        ),
        (
            "livestreamd_viewer_link_delivery_rate_bits_per_second",
            "The kernel's highest delivery rate sample that was not limited by the sender, in bits per second; 0 when the link had room to spare.",
            |l| l.delivery_kbps * 1000.0,
        ),
        (
            "livestreamd_viewer_link_notsent_bytes",
            "Bytes in this viewer's socket not yet sent.",
            |l| f64::from(l.notsent_bytes),
        ),
    ];
    let sampled: Vec<_> = status
        .viewers
        .iter()
        .zip(&ids)
        .filter_map(|(v, id)| Some((v.link.as_ref()?, id)))
        .collect();
    if !sampled.is_empty() {
        for (name, help, get) in link {
            o.family(name, "gauge", help);
            for (l, id) in &sampled {
                o.sample(name, &[("viewer", id)], get(l));
            }
        }
    }
    o.text
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::camera::control::CameraStatus;
    use crate::control::adapt::AdaptStatus;
    use crate::control::link::LinkSample;
    use crate::media::relay::HubStats;
    use crate::media::source::SourceStatus;
    use crate::status::{Counters, EncoderStatus, ViewerStatus};

    pub(crate) fn sample_status() -> Status {
        let encoder = EncoderStatus {
            generation: 2,
            rung: 1,
            passthrough: false,
            width: 960,
            height: 540,
            fps: 30,
            bitrate_kbps: 1500,
            input: "camera",
            pid: Some(42),
            restarts: 3,
            uptime_s: Some(4.0),
            last_exit: None,
            last_stderr: None,
            restarts_by_reason: [("exited", 1), ("no output", 2)].into_iter().collect(),
            stderr_suppressed: 0,
            viewers: 1,
            cpu_pct: Some(50.0),
            first_frame_s: Some(0.2),
        };
        let counters = Counters::default();
        counters.viewer_accepted();
        counters.viewer_accepted();
        counters.viewer_rejected();
        counters.sent(1000, true);
        counters.response(200);
        counters.response(404);
        counters.response(418);
        Status {
            version: "0.1.0",
            uptime_s: 12.5,
            source: SourceStatus {
                listen: "udp://0.0.0.0:8554".into(),
                state: "live",
                packets: 10,
                bytes: 13160,
                last_packet_age_ms: Some(20),
                sender: Some("10.5.5.9:5000".into()),
                camera_address: Some("10.5.5.9".into()),
                foreign_datagrams: 7,
                last_foreign_sender: Some("192.168.4.9:4000".into()),
                malformed_datagrams: 2,
                timelines: 3,
                picture: Default::default(),
            },
            camera: CameraStatus {
                kind: "gopro-legacy",
                state: "live",
                address: Some("http://10.5.5.9".into()),
                last_error: None,
                last_ok_unix: None,
                requests: 5,
                start_requests: 1,
                failures: 2,
                keepalives: 40,
                stalled_since: None,
                next_retry_s: None,
                ..CameraStatus::default()
            },
            adapt: AdaptStatus {
                mode: "auto",
                rung: 1,
                switching_to: Some(2),
                pinned: None,
                policy: Default::default(),
                switches: 1,
                up_backoff: 2.0,
                last_reason: None,
                probing_kbps: None,
            },
            encoder: Some(encoder.clone()),
            encoders: vec![encoder],
            decoder: None,
            passthrough: None,
            hub: HubStats {
                bytes_in: 5000,
                buffered_bytes: 2000,
                buffered_chunks: 3,
                last_input_age_ms: Some(5),
                tracks: Vec::new(),
            },
            hls: Default::default(),
            demo_source: None,
            viewers: vec![ViewerStatus {
                id: 7,
                address: "192.168.4.2:51000".into(),
                connected_s: 3.25,
                bytes_sent: 1000,
                skips: 1,
                lag_ms: 40,
                rung: Some(1),
                target_rung: None,
                adapt: None,
                stalled: false,
                link: Some(LinkSample {
                    t: 100.0,
                    rtt_ms: 25.0,
                    rttvar_ms: 5.0,
                    loss_pct: 1.5,
                    throughput_kbps: 1400.0,
                    recent_kbps: 1400.0,
                    delivery_kbps: 3000.0,
                    notsent_bytes: 1200,
                    queued_bytes: 3000,
                    lag_ms: 40,
                    skips: 0,
                }),
            }],
            outputs: Vec::new(),
            http: counters.snapshot(16, Default::default(), 0),
            network: None,
            clock: Default::default(),
        }
    }

    #[test]
    fn renders_the_documented_families() {
        let text = render(&sample_status());
        for line in [
            "# TYPE livestreamd_build_info gauge",
            "livestreamd_build_info{version=\"0.1.0\"} 1",
            "livestreamd_uptime_seconds 12.5",
            "livestreamd_source_state{state=\"waiting\"} 0",
            "livestreamd_source_state{state=\"live\"} 1",
            "livestreamd_source_state{state=\"stalled\"} 0",
            "# TYPE livestreamd_source_packets_total counter",
            "livestreamd_source_packets_total 10",
            "livestreamd_source_received_bytes_total 13160",
            "livestreamd_source_last_packet_age_seconds 0.02",
            "livestreamd_encoders 1",
            "livestreamd_encoder_width_pixels{rung=\"1\"} 960",
            "livestreamd_encoder_height_pixels{rung=\"1\"} 540",
            "livestreamd_encoder_bitrate_bits_per_second{rung=\"1\"} 1500000",
            "livestreamd_encoder_up{rung=\"1\"} 1",
            "livestreamd_encoder_viewers{rung=\"1\"} 1",
            "livestreamd_encoder_cpu_ratio{rung=\"1\"} 0.5",
            "livestreamd_encoder_first_frame_seconds{rung=\"1\"} 0.2",
            "livestreamd_encoder_restarts_total{rung=\"1\",generation=\"2\"} 3",
            "livestreamd_encoder_restarts_by_reason_total{rung=\"1\",generation=\"2\",reason=\"no output\"} 2",
            "livestreamd_encoder_restarts_by_reason_total{rung=\"1\",generation=\"2\",reason=\"new timeline\"} 0",
            "livestreamd_viewer_rung{viewer=\"7\"} 1",
            "livestreamd_source_refused_datagrams_total{reason=\"foreign\"} 7",
            "livestreamd_source_timelines_total 3",
            "livestreamd_rung_switches_total 1",
            "livestreamd_viewers 1",
            "livestreamd_viewers_max 16",
            "livestreamd_viewers_accepted_total 2",
            "livestreamd_viewers_rejected_total 1",
            "livestreamd_sent_bytes_total 1000",
            "livestreamd_skips_total 1",
            "livestreamd_http_responses_total{code=\"200\"} 1",
            "livestreamd_http_responses_total{code=\"404\"} 1",
            "livestreamd_http_responses_total{code=\"other\"} 1",
            "livestreamd_viewer_info{viewer=\"7\",address=\"192.168.4.2:51000\"} 1",
            "livestreamd_viewer_sent_bytes_total{viewer=\"7\"} 1000",
            "livestreamd_viewer_skips_total{viewer=\"7\"} 1",
            "livestreamd_viewer_lag_seconds{viewer=\"7\"} 0.04",
            "livestreamd_viewer_connected_seconds{viewer=\"7\"} 3.25",
            "livestreamd_camera_state{kind=\"gopro-legacy\",state=\"live\"} 1",
            "livestreamd_camera_state{kind=\"gopro-legacy\",state=\"stalled\"} 0",
            "livestreamd_camera_requests_total 5",
            "livestreamd_camera_start_requests_total 1",
            "livestreamd_camera_failures_total 2",
            "livestreamd_camera_keepalives_total 40",
            "livestreamd_adapt_target_rung 2",
            "livestreamd_adapt_manual 0",
            "livestreamd_adapt_up_backoff 2",
            "livestreamd_viewer_link_rtt_seconds{viewer=\"7\"} 0.025",
            "livestreamd_viewer_link_rttvar_seconds{viewer=\"7\"} 0.005",
            "livestreamd_viewer_link_loss_ratio{viewer=\"7\"} 0.015",
            "livestreamd_viewer_link_throughput_bits_per_second{viewer=\"7\"} 1400000",
            "livestreamd_viewer_link_delivery_rate_bits_per_second{viewer=\"7\"} 3000000",
            "livestreamd_viewer_link_notsent_bytes{viewer=\"7\"} 1200",
        ] {
            assert!(
                text.lines().any(|l| l == line),
                "missing `{line}` in:\n{text}"
            );
        }
    }

    #[test]
    fn every_family_is_declared_once_before_its_samples() {
        let text = render(&sample_status());
        let mut declared: Vec<String> = Vec::new();
        for line in text.lines() {
            if let Some(rest) = line.strip_prefix("# TYPE ") {
                let name = rest.split(' ').next().unwrap().to_string();
                assert!(!declared.contains(&name), "{name} declared twice");
                declared.push(name);
            } else if !line.starts_with('#') {
                let name = line.split(['{', ' ']).next().unwrap();
                assert_eq!(
                    Some(&name.to_string()),
                    declared.last(),
                    "sample `{line}` is outside its family"
                );
                assert!(name.starts_with("livestreamd_"));
            }
        }
        for name in &declared {
            let counter = text.contains(&format!("# TYPE {name} counter"));
            assert_eq!(counter, name.ends_with("_total"), "{name}");
        }
    }

    #[test]
    fn no_viewers_no_viewer_families() {
        let mut s = sample_status();
        s.viewers.clear();
        s.encoder = None;
        s.camera.state = "rebooting";
        let text = render(&s);
        assert!(!text.contains("livestreamd_viewer_"));
        assert!(!text.contains("livestreamd_encoder_rung"));
        assert!(text.contains("livestreamd_viewers 0\n"));
        assert!(
            text.contains("livestreamd_camera_state{kind=\"gopro-legacy\",state=\"rebooting\"} 1"),
            "an unknown state still shows"
        );
    }

    #[test]
    fn escapes_label_values_and_formats_numbers() {
        assert_eq!(escape_label("a\"b\\c\nd"), "a\\\"b\\\\c\\nd");
        assert_eq!(number(3.0), "3");
        assert_eq!(number(0.25), "0.25");
        assert_eq!(number(f64::NAN), "NaN");
        assert_eq!(number(f64::INFINITY), "+Inf");
        assert_eq!(number(1e20), "100000000000000000000");
    }
}
