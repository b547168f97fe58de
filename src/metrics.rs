//! `/metrics`: the daemon's figures in the Prometheus text format (version 0.0.4).
//!
//! `render` is a pure function of a `Status` snapshot, so the exact output is
//! unit-tested here and parsed by a real Prometheus parser in `tests/metrics.rs`.
//! Names follow the Prometheus conventions: a `livestreamd_` prefix, base units
//! in the name (`_bytes`, `_seconds`, `_bits_per_second`), `_total` on counters.
//!
//! `Counters` are the server-wide totals that outlive a single viewer (bytes sent
//! to viewers who have left, answers by status code); the HTTP side bumps them.

use crate::daemon::Status;
use serde::Serialize;
use serde_json::Value;
use std::collections::BTreeMap;
use std::fmt::Write;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};

/// Status codes counted one by one; anything else is counted as `other`.
const CODES: [u16; 8] = [200, 400, 404, 405, 408, 431, 500, 503];

/// Server-wide counters, updated lock-free by the HTTP side.
#[derive(Debug, Default)]
pub struct Counters {
    viewers_accepted: AtomicU64,
    viewers_rejected: AtomicU64,
    bytes_sent: AtomicU64,
    skips: AtomicU64,
    responses: [AtomicU64; CODES.len()],
    other_responses: AtomicU64,
    /// Connections still sending their request head.
    pub pending_requests: AtomicUsize,
    /// Open `/events` streams.
    pub events_clients: AtomicUsize,
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

    pub fn snapshot(&self, max_viewers: usize) -> Totals {
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
            pending_requests: self.pending_requests.load(Ordering::Relaxed),
            events_clients: self.events_clients.load(Ordering::Relaxed),
        }
    }
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
    pub pending_requests: usize,
    pub events_clients: usize,
}

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
            "Seconds since the last datagram from the camera.",
            age as f64 / 1000.0,
        );
    }

    // The encoder and its rung.
    if let Some(e) = &status.encoder {
        let generation = e.generation.to_string();
        let g = [("generation", generation.as_str())];
        o.single(
            "livestreamd_encoder_rung",
            "gauge",
            "Index of the ladder rung being encoded (0 = the best).",
            e.rung as f64,
        );
        o.single(
            "livestreamd_encoder_width_pixels",
            "gauge",
            "Width of the encoded picture.",
            f64::from(e.width),
        );
        o.single(
            "livestreamd_encoder_height_pixels",
            "gauge",
            "Height of the encoded picture.",
            f64::from(e.height),
        );
        o.single(
            "livestreamd_encoder_frames_per_second",
            "gauge",
            "Frame rate of the current rung.",
            f64::from(e.fps),
        );
        o.single(
            "livestreamd_encoder_bitrate_bits_per_second",
            "gauge",
            "Video bitrate of the current rung.",
            f64::from(e.bitrate_kbps) * 1000.0,
        );
        o.single(
            "livestreamd_encoder_generation",
            "gauge",
            "Number of the active encoder; it grows by one with every encoder started.",
            e.generation as f64,
        );
        o.single(
            "livestreamd_encoder_up",
            "gauge",
            "1 while the active encoder's ffmpeg is running.",
            f64::from(u8::from(e.pid.is_some())),
        );
        o.family(
            "livestreamd_encoder_restarts_total",
            "counter",
            "Restarts of the active encoder's ffmpeg after it exited; a new series per encoder generation.",
        );
        o.sample("livestreamd_encoder_restarts_total", &g, e.restarts as f64);
        if let Some(up) = e.uptime_s {
            o.single(
                "livestreamd_encoder_uptime_seconds",
                "gauge",
                "Seconds the active encoder's ffmpeg has been running.",
                up,
            );
        }
    }
    o.single(
        "livestreamd_encoder_switch_pending",
        "gauge",
        "1 while a new encoder is starting for a rung switch.",
        f64::from(u8::from(status.pending_encoder.is_some())),
    );

    // The hub.
    let hub = &status.hub;
    o.single(
        "livestreamd_rung_switches_total",
        "counter",
        "Rung switches: splices from one encoder to the next.",
        hub.switches as f64,
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
        "livestreamd_events_clients",
        "gauge",
        "Open /events (Server-Sent Events) streams.",
        t.events_clients as f64,
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
    type Field = fn(&crate::daemon::ViewerStats) -> f64;
    let per_viewer: [(&str, &str, &str, Field); 4] = [
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

    // Link figures, when the link monitor provides them: each viewer's `link`
    // object is read field by field, so new figures appear without a change here.
    type Samples = Vec<(String, f64)>;
    let mut links: BTreeMap<String, (&'static str, Samples)> = BTreeMap::new();
    for (v, id) in status.viewers.iter().zip(&ids) {
        let viewer = serde_json::to_value(v).unwrap_or(Value::Null);
        for (name, kind, x) in link_samples(&viewer) {
            links
                .entry(name)
                .or_insert_with(|| (kind, Vec::new()))
                .1
                .push((id.clone(), x));
        }
    }
    for (name, (kind, samples)) in &links {
        o.family(
            name,
            kind,
            "Link figure of this viewer's connection, from the link monitor.",
        );
        for (id, x) in samples {
            o.sample(name, &[("viewer", id)], *x);
        }
    }
    o.text
}

/// The numeric fields of a viewer's `link` object (its JSON form) as
/// (metric name, type, value in base units); nothing when there is no `link`.
pub fn link_samples(viewer: &Value) -> Vec<(String, &'static str, f64)> {
    let Some(Value::Object(link)) = viewer.get("link") else {
        return Vec::new();
    };
    link.iter()
        .filter_map(|(key, value)| {
            let x = value.as_f64()?;
            let (name, scale, kind) = link_metric(key)?;
            Some((name, kind, x * scale))
        })
        .collect()
}

/// Maps a field of a viewer's `link` object to a metric name in base units, the
/// factor to get there and the metric type; None for names that cannot be made valid.
pub fn link_metric(key: &str) -> Option<(String, f64, &'static str)> {
    if key.is_empty()
        || !key.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
        || key.starts_with(|c: char| c.is_ascii_digit())
    {
        return None;
    }
    let conversions: [(&str, &str, f64); 9] = [
        ("_us", "_seconds", 1e-6),
        ("_ms", "_seconds", 1e-3),
        ("_s", "_seconds", 1.0),
        ("_kbps", "_bits_per_second", 1e3),
        ("_mbps", "_bits_per_second", 1e6),
        ("_bps", "_bits_per_second", 1.0),
        ("_bytes_per_s", "_bytes_per_second", 1.0),
        ("_bytes_per_sec", "_bytes_per_second", 1.0),
        ("_bytes", "_bytes", 1.0),
    ];
    let lower = key.to_ascii_lowercase();
    let (base, unit, scale) = conversions
        .iter()
        .find_map(|(from, to, scale)| lower.strip_suffix(from).map(|b| (b, *to, *scale)))
        .unwrap_or((&lower, "", 1.0));
    let (base, kind) = match base.strip_suffix("_total") {
        Some(b) => (b, "counter"),
        None => (base, "gauge"),
    };
    let suffix = if kind == "counter" { "_total" } else { "" };
    Some((
        format!("livestreamd_viewer_link_{base}{unit}{suffix}"),
        scale,
        kind,
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::daemon::{EncoderStatus, ViewerStats};
    use crate::relay::HubStats;
    use crate::source::SourceStatus;
    use std::time::Instant;

    pub(crate) fn sample_status() -> Status {
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
            },
            encoder: Some(EncoderStatus {
                generation: 2,
                rung: 1,
                width: 960,
                height: 540,
                fps: 30,
                bitrate_kbps: 1500,
                pid: Some(42),
                restarts: 3,
                uptime_s: Some(4.0),
                last_exit: None,
                last_stderr: None,
            }),
            pending_encoder: None,
            hub: HubStats {
                bytes_in: 5000,
                buffered_bytes: 2000,
                buffered_chunks: 3,
                active_generation: Some(2),
                pending_generation: None,
                switches: 1,
                last_input_age_ms: Some(5),
            },
            demo_source: None,
            viewers: vec![ViewerStats {
                id: 7,
                address: "192.168.4.2:51000".into(),
                connected_at: Instant::now(),
                connected_s: 3.25,
                bytes_sent: 1000,
                skips: 1,
                lag_ms: 40,
            }],
            http: counters.snapshot(16),
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
            "livestreamd_encoder_rung 1",
            "livestreamd_encoder_width_pixels 960",
            "livestreamd_encoder_height_pixels 540",
            "livestreamd_encoder_bitrate_bits_per_second 1500000",
            "livestreamd_encoder_up 1",
            "livestreamd_encoder_restarts_total{generation=\"2\"} 3",
            "livestreamd_encoder_switch_pending 0",
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
        let text = render(&s);
        assert!(!text.contains("livestreamd_viewer_"));
        assert!(!text.contains("livestreamd_encoder_rung"));
        assert!(text.contains("livestreamd_viewers 0\n"));
    }

    #[test]
    fn link_fields_become_metrics_in_base_units() {
        assert_eq!(
            link_metric("rtt_ms"),
            Some(("livestreamd_viewer_link_rtt_seconds".into(), 1e-3, "gauge"))
        );
        assert_eq!(
            link_metric("rttvar_us").unwrap().0,
            "livestreamd_viewer_link_rttvar_seconds"
        );
        assert_eq!(
            link_metric("delivery_rate_bps"),
            Some((
                "livestreamd_viewer_link_delivery_rate_bits_per_second".into(),
                1.0,
                "gauge"
            ))
        );
        assert_eq!(
            link_metric("delivery_rate_kbps").unwrap().1,
            1e3,
            "kilobits to bits"
        );
        assert_eq!(
            link_metric("retransmits_total"),
            Some((
                "livestreamd_viewer_link_retransmits_total".into(),
                1.0,
                "counter"
            ))
        );
        assert_eq!(
            link_metric("unsent_bytes").unwrap().0,
            "livestreamd_viewer_link_unsent_bytes"
        );
        assert_eq!(link_metric("bad-name"), None);
        assert_eq!(link_metric("9lives"), None);
    }

    #[test]
    fn a_link_object_is_read_field_by_field() {
        let viewer = serde_json::json!({
            "id": 3,
            "link": {"rtt_ms": 25.0, "delivery_rate_bps": 2_000_000, "state": "ok", "retransmits_total": 4}
        });
        let mut got = link_samples(&viewer);
        got.sort_by(|a, b| a.0.cmp(&b.0));
        assert_eq!(
            got,
            vec![
                (
                    "livestreamd_viewer_link_delivery_rate_bits_per_second".into(),
                    "gauge",
                    2e6
                ),
                (
                    "livestreamd_viewer_link_retransmits_total".into(),
                    "counter",
                    4.0
                ),
                ("livestreamd_viewer_link_rtt_seconds".into(), "gauge", 0.025),
            ]
        );
        assert!(link_samples(&serde_json::json!({"id": 3})).is_empty());
        assert!(link_samples(&serde_json::json!({"link": null})).is_empty());
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
