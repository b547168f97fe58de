//! `/metrics` from a running daemon, read by a Prometheus text-format parser
//! (the `prometheus-parse` crate), must parse line by line and carry the names
//! documented in docs/WEB.md with the right types.

mod common;

use common::{poll, Daemon, Viewer};
use prometheus_parse::{LineInfo, SampleType, Scrape, Value};
use std::collections::HashMap;
use std::io::Read;
use std::time::Duration;

/// (name, type) of every family docs/WEB.md promises while a viewer watches.
const DOCUMENTED: &[(&str, SampleType)] = &[
    ("livestreamd_build_info", SampleType::Gauge),
    ("livestreamd_uptime_seconds", SampleType::Gauge),
    ("livestreamd_source_state", SampleType::Gauge),
    ("livestreamd_source_packets_total", SampleType::Counter),
    (
        "livestreamd_source_received_bytes_total",
        SampleType::Counter,
    ),
    (
        "livestreamd_source_last_packet_age_seconds",
        SampleType::Gauge,
    ),
    ("livestreamd_encoders", SampleType::Gauge),
    ("livestreamd_encoder_up", SampleType::Gauge),
    ("livestreamd_encoder_passthrough", SampleType::Gauge),
    ("livestreamd_encoder_viewers", SampleType::Gauge),
    ("livestreamd_encoder_cpu_ratio", SampleType::Gauge),
    ("livestreamd_encoder_width_pixels", SampleType::Gauge),
    ("livestreamd_encoder_height_pixels", SampleType::Gauge),
    ("livestreamd_encoder_frames_per_second", SampleType::Gauge),
    (
        "livestreamd_encoder_bitrate_bits_per_second",
        SampleType::Gauge,
    ),
    ("livestreamd_encoder_generation", SampleType::Gauge),
    ("livestreamd_encoder_restarts_total", SampleType::Counter),
    (
        "livestreamd_encoder_restarts_by_reason_total",
        SampleType::Counter,
    ),
    (
        "livestreamd_source_refused_datagrams_total",
        SampleType::Counter,
    ),
    ("livestreamd_source_timelines_total", SampleType::Counter),
    ("livestreamd_http_open_connections", SampleType::Gauge),
    ("livestreamd_http_pending_requests", SampleType::Gauge),
    (
        "livestreamd_http_refused_connections_total",
        SampleType::Counter,
    ),
    ("livestreamd_encoder_uptime_seconds", SampleType::Gauge),
    ("livestreamd_viewer_rung", SampleType::Gauge),
    ("livestreamd_rung_switches_total", SampleType::Counter),
    ("livestreamd_hub_input_bytes_total", SampleType::Counter),
    ("livestreamd_hub_buffered_bytes", SampleType::Gauge),
    ("livestreamd_hub_last_input_age_seconds", SampleType::Gauge),
    ("livestreamd_viewers", SampleType::Gauge),
    ("livestreamd_viewers_max", SampleType::Gauge),
    ("livestreamd_viewers_accepted_total", SampleType::Counter),
    ("livestreamd_viewers_rejected_total", SampleType::Counter),
    ("livestreamd_sent_bytes_total", SampleType::Counter),
    ("livestreamd_skips_total", SampleType::Counter),
    (
        "livestreamd_hls_playlists_served_total",
        SampleType::Counter,
    ),
    ("livestreamd_hls_segments_served_total", SampleType::Counter),
    ("livestreamd_events_clients", SampleType::Gauge),
    ("livestreamd_http_responses_total", SampleType::Counter),
    ("livestreamd_viewer_info", SampleType::Gauge),
    ("livestreamd_viewer_sent_bytes_total", SampleType::Counter),
    ("livestreamd_viewer_skips_total", SampleType::Counter),
    ("livestreamd_viewer_lag_seconds", SampleType::Gauge),
    ("livestreamd_viewer_connected_seconds", SampleType::Gauge),
    ("livestreamd_camera_state", SampleType::Gauge),
    ("livestreamd_camera_requests_total", SampleType::Counter),
    (
        "livestreamd_camera_start_requests_total",
        SampleType::Counter,
    ),
    ("livestreamd_camera_failures_total", SampleType::Counter),
    ("livestreamd_camera_keepalives_total", SampleType::Counter),
    (
        "livestreamd_camera_keepalive_failures_total",
        SampleType::Counter,
    ),
    ("livestreamd_adapt_target_rung", SampleType::Gauge),
    ("livestreamd_adapt_manual", SampleType::Gauge),
    ("livestreamd_adapt_up_backoff", SampleType::Gauge),
    ("livestreamd_viewer_link_rtt_seconds", SampleType::Gauge),
    ("livestreamd_viewer_link_rttvar_seconds", SampleType::Gauge),
    ("livestreamd_viewer_link_loss_ratio", SampleType::Gauge),
    (
        "livestreamd_viewer_link_throughput_bits_per_second",
        SampleType::Gauge,
    ),
    (
        "livestreamd_viewer_link_delivery_rate_bits_per_second",
        SampleType::Gauge,
    ),
    ("livestreamd_viewer_link_notsent_bytes", SampleType::Gauge),
];

fn value(v: &Value) -> f64 {
    match v {
        Value::Counter(x) | Value::Gauge(x) | Value::Untyped(x) => *x,
        other => panic!("unexpected histogram/summary {other:?}"),
    }
}

#[test]
fn metrics_parse_and_carry_the_documented_names() {
    let d = Daemon::web_demo("metrics", "max_viewers = 4");
    // A viewer watching, so that the per-viewer families exist.
    let mut viewer = Viewer::open(d.http, "/stream.ts");
    assert_eq!(viewer.code, 200);
    let got = viewer.read_at_least(50_000);
    assert!(got >= 50_000, "the viewer got only {got} bytes");
    assert_eq!(d.get("/no-such-thing").code, 404);

    // The link monitor samples the viewer a few times a second. The viewer
    // keeps reading between looks (a read waits by itself).
    let mut buf = vec![0u8; 65536];
    let r = poll(Duration::from_secs(10), Duration::ZERO, || {
        let r = d.get("/metrics");
        if r.text().contains("livestreamd_viewer_link_rtt_seconds{") {
            return Some(r);
        }
        let _ = viewer.sock.read(&mut buf).unwrap();
        None
    })
    // Without the link figures the checks below say which sample is missing.
    .unwrap_or_else(|| d.get("/metrics"));
    assert_eq!(r.code, 200);
    assert_eq!(
        r.header("Content-Type"),
        Some("text/plain; version=0.0.4; charset=utf-8")
    );
    let text = r.text();
    assert!(text.ends_with('\n'));

    // Every line is understood by the parser: nothing is silently ignored.
    let mut types: HashMap<String, SampleType> = HashMap::new();
    let mut sample_lines = 0;
    for line in text.lines() {
        match LineInfo::parse(line) {
            LineInfo::Doc { .. } => {}
            LineInfo::Type {
                metric_name,
                sample_type,
                ..
            } => {
                assert!(
                    types.insert(metric_name.clone(), sample_type).is_none(),
                    "{metric_name} has two TYPE lines"
                );
            }
            LineInfo::Sample {
                metric_name, value, ..
            } => {
                assert!(
                    types.contains_key(metric_name),
                    "sample before its TYPE: {line}"
                );
                assert!(value.parse::<f64>().is_ok() || value == "NaN", "{line}");
                sample_lines += 1;
            }
            LineInfo::Empty | LineInfo::Ignored => panic!("the parser cannot read `{line}`"),
        }
    }

    let scrape = Scrape::parse(text.lines().map(|l| Ok(l.to_string()))).unwrap();
    assert_eq!(scrape.samples.len(), sample_lines, "every sample parsed");
    for s in &scrape.samples {
        assert!(s.metric.starts_with("livestreamd_"), "{}", s.metric);
        let counter = matches!(s.value, Value::Counter(_));
        assert_eq!(counter, s.metric.ends_with("_total"), "{}", s.metric);
        assert!(
            scrape.docs.contains_key(&s.metric),
            "{} has no HELP",
            s.metric
        );
    }
    for (name, kind) in DOCUMENTED {
        assert_eq!(types.get(*name), Some(kind), "{name} missing or mistyped");
    }

    // A few values that must be true of a running demo with one viewer.
    let one = |name: &str, label: Option<(&str, &str)>| -> f64 {
        let s = scrape
            .samples
            .iter()
            .find(|s| s.metric == name && label.map_or(true, |(k, v)| s.labels.get(k) == Some(v)))
            .unwrap_or_else(|| panic!("no sample {name} {label:?}"));
        value(&s.value)
    };
    assert_eq!(one("livestreamd_viewers", None), 1.0);
    assert_eq!(one("livestreamd_viewers_max", None), 4.0);
    assert_eq!(
        one("livestreamd_source_state", Some(("state", "live"))),
        1.0
    );
    // The web demo's one rung, running and watched.
    assert!(one("livestreamd_encoders", None) >= 1.0);
    let rung0 = Some(("rung", "0"));
    assert_eq!(one("livestreamd_encoder_width_pixels", rung0), 320.0);
    assert_eq!(
        one("livestreamd_encoder_bitrate_bits_per_second", rung0),
        400_000.0
    );
    assert_eq!(one("livestreamd_encoder_up", rung0), 1.0);
    assert_eq!(one("livestreamd_encoder_viewers", rung0), 1.0);
    assert!(one("livestreamd_source_packets_total", None) > 0.0);
    assert!(one("livestreamd_sent_bytes_total", None) >= 50_000.0);
    assert!(one("livestreamd_http_responses_total", Some(("code", "404"))) >= 1.0);
    let series = scrape
        .samples
        .iter()
        .find(|s| s.metric == "livestreamd_viewer_sent_bytes_total")
        .expect("a per-viewer series");
    let id = series.labels.get("viewer").expect("a viewer label");
    assert!(id.parse::<u64>().is_ok(), "viewer=\"{id}\"");
    assert!(value(&series.value) >= 50_000.0);
    let rtt = one("livestreamd_viewer_link_rtt_seconds", Some(("viewer", id)));
    assert!(rtt > 0.0 && rtt < 0.5, "loopback rtt {rtt} s");
    assert_eq!(one("livestreamd_viewer_rung", Some(("viewer", id))), 0.0);
    assert_eq!(
        one("livestreamd_camera_state", Some(("state", "live"))),
        1.0
    );
    drop(viewer);
}
