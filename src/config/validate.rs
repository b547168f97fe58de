//! The checks serde cannot express: ranges, cross-field rules, codec limits.
//! Each refusal names the key at fault as a path; `locate` finds it in the file.

use super::locate::{quoted, KeyPath, Seg};
use super::{Camera, Codec, Config, Server, MAX_CONNECTIONS_LIMIT};
use crate::config::ProbeMode;
use std::fmt::Debug;
use std::ops::RangeInclusive;

/// A refused configuration: the reason, and where it points (the first of
/// `places` that is written in the file).
#[derive(Debug, Clone, PartialEq)]
pub struct Invalid {
    pub places: Vec<KeyPath>,
    pub reason: String,
}

fn fail(place: KeyPath, reason: String) -> Result<(), Invalid> {
    Err(Invalid {
        places: vec![place],
        reason,
    })
}

/// `value` must lie in `range` (NaN and infinities never do). Numbers are
/// printed with `{:?}`, which writes 1e308 as such rather than in 309 digits.
fn within<T: PartialOrd + Debug>(
    path: KeyPath,
    value: T,
    range: RangeInclusive<T>,
    what: &str,
) -> Result<(), Invalid> {
    if range.contains(&value) {
        return Ok(());
    }
    let (lo, hi) = range.into_inner();
    fail(
        path.clone(),
        format!("{path} = {value:?} must be {what} from {lo:?} to {hi:?}"),
    )
}

const SECONDS: &str = "a number of seconds";
const MILLISECONDS: &str = "milliseconds";

/// Each row `(key, value, allowed, what)` of `table` must be in its range.
fn ranges<T: PartialOrd + Debug + Copy>(
    table: &'static str,
    rows: &[(&'static str, T, RangeInclusive<T>, &str)],
) -> Result<(), Invalid> {
    for (key, value, range, what) in rows {
        within(KeyPath::key(table, key), *value, range.clone(), what)?;
    }
    Ok(())
}

/// `small` must not exceed `large`; the error points at whichever of the two is
/// written, the limit `large` when both are.
fn at_most<T: PartialOrd + Debug>(small: (KeyPath, T), large: (KeyPath, T)) -> Result<(), Invalid> {
    if small.1 <= large.1 {
        return Ok(());
    }
    Err(Invalid {
        reason: format!(
            "{} = {:?} must not exceed {} = {:?}",
            small.0, small.1, large.0, large.1
        ),
        places: vec![large.0, small.0],
    })
}

fn port(path: KeyPath, port: u16) -> Result<(), Invalid> {
    if port == 0 {
        return fail(
            path.clone(),
            format!("{path}: port 0 is not a port (1 to 65535)"),
        );
    }
    Ok(())
}

/// The largest picture each encoder takes, (width, height).
///
/// libx264: 4096x2304 is the largest frame any H.264 level allows (level 5.2:
/// 36 864 macroblocks), so phones refuse anything bigger, and a Pi could not
/// encode it live anyway. h264_v4l2m2m: the Pi's hardware encoder takes at most
/// 1920x1088 (H.264 level 4.2 in 16-line macroblocks).
fn max_picture(codec: Codec) -> (u32, u32) {
    match codec {
        Codec::Libx264 => (4096, 2304),
        Codec::H264V4l2m2m => (1920, 1088),
    }
}

/// Every check; the first refusal is reported. The ladder comes before the
/// encoder, whose `start_rung` indexes it.
pub fn validate(c: &Config) -> Result<(), Invalid> {
    let stall = c.source.stall_timeout_s;
    ranges(
        "source",
        &[("stall_timeout_s", stall, 0.1..=3600.0, SECONDS)],
    )?;
    validate_ladder(c)?;
    validate_encoder(c)?;
    validate_server(&c.server)?;
    validate_outputs(c)?;
    validate_adapt(c)?;
    validate_camera(&c.camera)
}

fn validate_encoder(c: &Config) -> Result<(), Invalid> {
    let e = &c.encoder;
    let key = |k| KeyPath::key("encoder", k);
    if e.ffmpeg.as_os_str().to_string_lossy().trim().is_empty() {
        return fail(
            key("ffmpeg"),
            "encoder.ffmpeg is empty: give the ffmpeg binary's name or full path".into(),
        );
    }
    if e.preset.is_empty() || e.preset.contains(char::is_whitespace) {
        return fail(
            key("preset"),
            format!(
                "encoder.preset {} is not a preset name (e.g. \"veryfast\")",
                quoted(&e.preset)
            ),
        );
    }
    ranges(
        "encoder",
        &[
            (
                "keyframe_interval_s",
                e.keyframe_interval_s,
                0.1..=10.0,
                SECONDS,
            ),
            (
                "restart_initial_s",
                e.restart_initial_s,
                0.01..=3600.0,
                SECONDS,
            ),
            ("restart_max_s", e.restart_max_s, 0.01..=3600.0, SECONDS),
            ("restart_reset_s", e.restart_reset_s, 0.01..=3600.0, SECONDS),
            // The systemd unit gives the whole stop 15 s (TimeoutStopSec).
            ("stop_grace_s", e.stop_grace_s, 0.01..=10.0, SECONDS),
            (
                "output_timeout_s",
                e.output_timeout_s,
                0.5..=3600.0,
                SECONDS,
            ),
        ],
    )?;
    at_most(
        (key("restart_initial_s"), e.restart_initial_s),
        (key("restart_max_s"), e.restart_max_s),
    )?;
    let start = c.start_rung();
    if start >= c.ladder().len() {
        return fail(
            key("start_rung"),
            format!(
                "encoder.start_rung = {start} is out of range: the ladder has {} rung(s), numbered from 0",
                c.ladder().len()
            ),
        );
    }
    Ok(())
}

fn validate_ladder(c: &Config) -> Result<(), Invalid> {
    let ladder = c.ladder();
    if ladder.is_empty() {
        return fail(
            KeyPath(vec![Seg::Key("ladder")]),
            "the ladder is empty: give at least one [[ladder]] rung".into(),
        );
    }
    let codec = c.encoder.codec;
    let (max_w, max_h) = max_picture(codec);
    for (i, r) in ladder.iter().enumerate() {
        let key = |k| KeyPath::item("ladder", i, k);
        if r.passthrough && i > 0 {
            return fail(
                key("passthrough"),
                format!(
                    "ladder[{i}].passthrough: only the first rung can be the camera's own stream"
                ),
            );
        }
        if let Some(k) = r.keyframe_interval_s {
            if r.passthrough {
                return fail(
                    key("keyframe_interval_s"),
                    "ladder[0].keyframe_interval_s: a passthrough rung has the camera's keyframes"
                        .into(),
                );
            }
            within(key("keyframe_interval_s"), k, 0.1..=10.0, SECONDS)?;
        }
        if !r.passthrough {
            // An encoded rung is made here: it says what to make.
            let stated = [
                ("width", r.width),
                ("height", r.height),
                ("fps", r.fps),
                ("bitrate_kbps", r.bitrate_kbps),
            ];
            if let Some((k, _)) = stated.iter().find(|(_, v)| v.is_none()) {
                return fail(
                    key(k),
                    format!(
                        "ladder[{i}].{k} is missing: an encoded rung states width, height, fps and bitrate_kbps (only a passthrough rung may take them from the camera's stream)"
                    ),
                );
            }
        }
        // The camera's stream is not encoded here: no encoder limit applies.
        let (max_w, max_h) = if r.passthrough {
            (8192, 4320)
        } else {
            (max_w, max_h)
        };
        for (k, v, max) in [("width", r.width, max_w), ("height", r.height, max_h)] {
            let Some(v) = v else { continue };
            if !(16..=max).contains(&v) || v % 2 != 0 {
                return fail(
                    key(k),
                    format!(
                        "ladder[{i}].{k} = {v} must be an even number from 16 to {max} ({} takes up to {max_w}x{max_h})",
                        codec.ffmpeg_name()
                    ),
                );
            }
        }
        if let Some(fps) = r.fps {
            within(key("fps"), fps, 1..=120, "a frame rate")?;
        }
        let Some(kbps) = r.bitrate_kbps else { continue };
        within(key("bitrate_kbps"), kbps, 50..=100_000, "a bitrate in kb/s")?;
        // Against the rung above, when it states one (a passthrough rung's
        // measured bitrate is not known here: the daemon keeps it above).
        let above = i.checked_sub(1).and_then(|j| ladder[j].bitrate_kbps);
        if let Some(above) = above.filter(|a| kbps >= *a) {
            return fail(
                key("bitrate_kbps"),
                format!(
                    "ladder[{i}].bitrate_kbps = {kbps}: rungs go from best to lowest, so bitrate_kbps must fall (below {above} of ladder[{}])",
                    i - 1
                ),
            );
        }
    }
    Ok(())
}

fn validate_server(s: &Server) -> Result<(), Invalid> {
    let key = |k| KeyPath::key("server", k);
    port(key("listen"), s.listen.port())?;
    let counts = [
        ("max_viewers", s.max_viewers),
        ("max_viewers_per_address", s.max_viewers_per_address),
        ("max_connections", s.max_connections),
        ("max_connections_per_address", s.max_connections_per_address),
        ("max_pending_per_address", s.max_pending_per_address),
    ];
    for (k, v) in counts {
        if v == 0 {
            return fail(key(k), format!("server.{k} = 0 must be at least 1"));
        }
    }
    if s.max_connections > MAX_CONNECTIONS_LIMIT {
        return fail(
            key("max_connections"),
            format!(
                "server.max_connections = {} must be at most {MAX_CONNECTIONS_LIMIT} (the systemd unit allows 8192 open files)",
                s.max_connections
            ),
        );
    }
    let total = (key("max_connections"), s.max_connections);
    at_most((key("max_viewers"), s.max_viewers), total.clone())?;
    at_most(
        (
            key("max_connections_per_address"),
            s.max_connections_per_address,
        ),
        total,
    )?;
    at_most(
        (key("max_pending_per_address"), s.max_pending_per_address),
        (
            key("max_connections_per_address"),
            s.max_connections_per_address,
        ),
    )?;
    if let Some(t) = &s.control_token {
        let len = t.chars().count();
        let visible = t.chars().all(|c| c.is_ascii_graphic());
        if !(16..=128).contains(&len) || !visible {
            // The token itself is never repeated: logs and terminals are not for secrets.
            return fail(
                key("control_token"),
                format!(
                    "server.control_token must be 16 to 128 visible ASCII characters without spaces (this one has {len} character(s){})",
                    if visible { "" } else { ", not all visible ASCII" }
                ),
            );
        }
    }
    let lag = s.viewer_max_lag_ms;
    ranges(
        "server",
        &[("viewer_max_lag_ms", lag, 100..=600_000, MILLISECONDS)],
    )?;
    ranges(
        "server",
        &[
            (
                "viewer_stall_timeout_s",
                s.viewer_stall_timeout_s,
                0.1..=3600.0,
                SECONDS,
            ),
            (
                "request_timeout_s",
                s.request_timeout_s,
                0.1..=3600.0,
                SECONDS,
            ),
        ],
    )
}

fn validate_outputs(c: &Config) -> Result<(), Invalid> {
    for (i, o) in c.outputs.iter().enumerate() {
        let key = |k| KeyPath::item("output", i, k);
        within(
            key("probe_interval_ms"),
            o.probe_interval_ms,
            50..=10_000,
            MILLISECONDS,
        )?;
        port(key("probe_port"), o.probe_port)?;
        if !matches!(o.probe, ProbeMode::None | ProbeMode::Auto) && o.probe_target().is_none() {
            return fail(
                key("probe"),
                format!(
                    "output[{i}].probe: probing {} needs an IP address in the URL (or probe = \"none\")",
                    quoted(&o.url.0)
                ),
            );
        }
    }
    Ok(())
}

fn validate_adapt(c: &Config) -> Result<(), Invalid> {
    let a = &c.adapt;
    let interval = a.sample_interval_ms;
    ranges(
        "adapt",
        &[("sample_interval_ms", interval, 50..=5000, MILLISECONDS)],
    )?;
    ranges(
        "adapt",
        &[
            ("down_after_s", a.down_after_s, 0.1..=3600.0, SECONDS),
            ("up_after_s", a.up_after_s, 0.1..=3600.0, SECONDS),
            ("min_dwell_s", a.min_dwell_s, 0.1..=3600.0, SECONDS),
            (
                "capacity_memory_s",
                a.capacity_memory_s,
                0.1..=3600.0,
                SECONDS,
            ),
            ("probe_s", a.probe_s, 0.1..=60.0, SECONDS),
            (
                "switch_timeout_s",
                a.switch_timeout_s,
                0.1..=3600.0,
                SECONDS,
            ),
            ("max_lag_ms", a.max_lag_ms, 1.0..=60_000.0, MILLISECONDS),
            ("max_rtt_ms", a.max_rtt_ms, 1.0..=60_000.0, MILLISECONDS),
            ("max_loss_pct", a.max_loss_pct, 0.01..=100.0, "a percentage"),
            ("headroom", a.headroom, 1.0..=10.0, "a factor"),
            ("max_up_backoff", a.max_up_backoff, 1.0..=1000.0, "a factor"),
            ("idle_rung_s", a.idle_rung_s, 0.1..=3600.0, SECONDS),
        ],
    )?;
    within(
        KeyPath::key("adapt", "max_encoders"),
        a.max_encoders,
        1..=8,
        "a number of encoders",
    )?;
    if let Some(standby) = a.standby_rung {
        let key = KeyPath::key("adapt", "standby_rung");
        let below_top = c.ladder.len().saturating_sub(1);
        if below_top == 0 {
            return fail(
                key,
                format!("adapt.standby_rung = {standby}: the ladder has one rung, none below the top to keep ready"),
            );
        }
        within(key, standby, 1..=below_top, "a rung below the top")?;
    }
    Ok(())
}

fn validate_camera(c: &Camera) -> Result<(), Invalid> {
    let key = |k| KeyPath::key("camera", k);
    ranges(
        "camera",
        &[
            (
                "keepalive_interval_s",
                c.keepalive_interval_s,
                0.1..=60.0,
                SECONDS,
            ),
            (
                "request_timeout_s",
                c.request_timeout_s,
                0.1..=60.0,
                SECONDS,
            ),
            ("retry_initial_s", c.retry_initial_s, 0.1..=3600.0, SECONDS),
            ("retry_max_s", c.retry_max_s, 0.1..=3600.0, SECONDS),
        ],
    )?;
    at_most(
        (key("retry_initial_s"), c.retry_initial_s),
        (key("retry_max_s"), c.retry_max_s),
    )?;
    if let Some(p) = c.http_port {
        port(key("http_port"), p)?;
    }
    port(key("keepalive_port"), c.keepalive_port)?;
    if c.webcam_resolution_id().is_none() {
        return fail(
            key("resolution"),
            format!(
                "camera.resolution = {} is not a webcam resolution (480, 720 or 1080)",
                c.resolution
            ),
        );
    }
    if let Some(a) = c.address {
        if a.is_unspecified() || a.is_multicast() {
            return fail(
                key("address"),
                format!("camera.address = {a} is not a camera's address (give the camera's unicast IP, or leave it unset)"),
            );
        }
    }
    Ok(())
}
