//! `livestreamd check-config` and `run` refuse bad files with one clear line
//! (file:line:column: reason) and exit status 2.

mod common;

use common::*;
use std::process::Command;

fn check(dir: &std::path::Path, name: &str, text: &str) -> (Option<i32>, String, String) {
    let path = dir.join(name);
    std::fs::write(&path, text).unwrap();
    let out = Command::new(BIN)
        .args(["check-config", path.to_str().unwrap()])
        .output()
        .unwrap();
    (
        out.status.code(),
        String::from_utf8_lossy(&out.stdout).into(),
        String::from_utf8_lossy(&out.stderr).into(),
    )
}

#[test]
fn bad_configs_are_refused_with_their_location_and_reason() {
    let dir = temp_dir("bad-configs");
    // (name, text, expected "line:col", a word of the reason)
    let table = [
        (
            "syntax",
            "[server]\nlisten = \"0.0.0.0:8080\n",
            "2:",
            "string",
        ),
        (
            "unknown-key",
            "[server]\nlisten = \"0.0.0.0:8080\"\nmax_viewer = 3\n",
            "3:1",
            "unknown field `max_viewer`",
        ),
        (
            "unknown-table",
            "[encoderr]\npreset = \"fast\"\n",
            "1:",
            "unknown field `encoderr`",
        ),
        (
            "wrong-type",
            "[encoder]\nkeyframe_interval_s = \"two\"\n",
            "2:23",
            "invalid type",
        ),
        ("empty-ladder", "ladder = []\n", "1:1", "ladder is empty"),
        (
            "start-rung",
            "[encoder]\nstart_rung = 5\n",
            "2:1",
            "start_rung = 5 is out of range",
        ),
        (
            "bad-listen",
            "[server]\nlisten = \"localhost:80\"\n",
            "2:10",
            "socket address",
        ),
        (
            "bad-source",
            "[source]\nurl = \"rtsp://10.5.5.9\"\n",
            "2:7",
            "not a udp:// address",
        ),
        (
            "bad-output",
            "[[output]]\nurl = \"udp://phone:5000\"\n",
            "2:7",
            "not an IP:PORT",
        ),
        (
            "odd-size",
            "[[ladder]]\nwidth = 641\nheight = 360\nfps = 30\nbitrate_kbps = 800\n",
            "2:1",
            "ladder[0].width = 641 must be an even number",
        ),
        (
            "zero-interval",
            "[encoder]\nkeyframe_interval_s = 0.0\n",
            "2:1",
            "keyframe_interval_s",
        ),
    ];
    let table = table
        .into_iter()
        .map(|(name, text, at, reason)| (name, text.to_string(), at, reason))
        .chain(range_and_location_cases());
    for (name, text, at, reason) in table {
        let file = format!("{name}.toml");
        let (code, stdout, stderr) = check(&dir, &file, &text);
        assert_eq!(code, Some(2), "{name}: exit status; stderr: {stderr}");
        assert!(stdout.is_empty(), "{name}: nothing on stdout");
        let path = dir.join(&file);
        let expected = format!("{}:{at}", path.display());
        assert!(
            stderr.contains(&expected),
            "{name}: expected location {expected} in: {stderr}"
        );
        assert!(
            stderr.contains(reason),
            "{name}: expected `{reason}` in: {stderr}"
        );
        assert_eq!(
            stderr.trim().lines().count(),
            1,
            "{name}: one message: {stderr}"
        );
        assert!(
            !stderr.contains("secret") && !stderr.contains("horse"),
            "{name}: a token is never repeated: {stderr}"
        );
    }
}

/// A `[[ladder]]` rung.
fn rung(width: u32, height: u32, fps: u32, kbps: u32) -> String {
    format!("[[ladder]]\nwidth = {width}\nheight = {height}\nfps = {fps}\nbitrate_kbps = {kbps}\n")
}

/// Two UDP pushes; `second` is added to the second one (which starts on line 4).
fn two_outputs(second: &str) -> String {
    format!("[[output]]\nurl = \"udp://10.0.0.2:5000\"\n\n[[output]]\nurl = \"udp://10.0.0.3:5000\"\n{second}")
}

/// Ranges, codec limits, ports and cross-field rules, each located at its key
/// in any [[array]] element, inline table or dotted key: (name, text, "line:col", reason).
fn range_and_location_cases() -> Vec<(&'static str, String, &'static str, &'static str)> {
    let t = |s: &str| s.to_string();
    let third_rung_bad =
        rung(640, 360, 30, 800) + &rung(480, 270, 30, 600) + &rung(320, 180, 0, 400);
    vec![
        // Where: the second [[output]], [[ladder]] element 3, inline tables, dotted keys.
        ("second-output", two_outputs("probe = \"udp\"\nprobe_port = 0\n"), "7:1", "output[1].probe_port: port 0"),
        ("second-output-range", two_outputs("probe_interval_ms = 10\n"), "6:1", "output[1].probe_interval_ms = 10 must be milliseconds from 50 to 10000"),
        ("second-output-unknown", two_outputs("\nprob = \"udp\"\n"), "7:1", "unknown field `prob`"),
        ("third-rung", third_rung_bad, "14:1", "ladder[2].fps = 0 must be a frame rate from 1 to 120"),
        ("third-rung-missing", rung(640, 360, 30, 800) + &rung(480, 270, 30, 600) + "[[ladder]]\nwidth = 320\nheight = 180\n", "11:1", "ladder[2].fps is missing: an encoded rung states width, height, fps and bitrate_kbps"),
        ("inline-ladder", t("ladder = [{ width = 640, height = 360, fps = 30, bitrate_kbps = 800 },\n  { width = 641, height = 360, fps = 30, bitrate_kbps = 500 }]\n"), "2:5", "ladder[1].width = 641"),
        ("inline-ladder-unknown", t("ladder = [{ width = 640, height = 360, fps = 30, bitrate_kbps = 800, x = 1 }]\n"), "1:70", "unknown field `x`"),
        ("inline-camera", t("camera = { kind = \"udp\", keepalive_interval_s = 0 }\n"), "1:26", "camera.keepalive_interval_s = 0.0 must be a number of seconds from 0.1 to 60.0"),
        ("inline-camera-kind", t("camera = { kind = \"x\" }\n"), "1:19", "camera.kind: unknown variant `x`"),
        ("dotted-key", t("# viewers\nserver.max_viewers = 0\n"), "2:8", "server.max_viewers = 0 must be at least 1"),
        // Parser errors name their key, or say they are TOML syntax.
        ("type-in-output", two_outputs("probe_port = \"seven\"\n"), "6:14", "output[1].probe_port: invalid type: string \"seven\", expected u16"),
        ("control-character", t("# a comment with a \u{14} in it\n"), "1:20", "control character U+0014 is not allowed"),
        ("not-toml", t("[server]\nmax viewers = 3\n"), "2:5", "TOML syntax: expected `.`, `=`"),
        // Durations: finite, positive, bounded; all adapt.* seconds keys.
        ("nan-down", t("[adapt]\ndown_after_s = nan\n"), "2:1", "adapt.down_after_s = NaN must be a number of seconds from 0.1 to 3600.0"),
        ("inf-up", t("[adapt]\nup_after_s = inf\n"), "2:1", "adapt.up_after_s = inf must be"),
        ("negative-dwell", t("[adapt]\nmin_dwell_s = -1.0\n"), "2:1", "adapt.min_dwell_s = -1.0 must be"),
        ("zero-memory", t("[adapt]\ncapacity_memory_s = 0\n"), "2:1", "adapt.capacity_memory_s = 0.0 must be"),
        ("huge-probe", t("[adapt]\nprobe_s = 1e308\n"), "2:1", "adapt.probe_s = 1e308 must be a number of seconds from 0.1 to 60.0"),
        ("minus-inf-switch", t("[adapt]\nswitch_timeout_s = -inf\n"), "2:1", "adapt.switch_timeout_s = -inf must be"),
        ("nan-lag", t("[adapt]\nmax_lag_ms = nan\n"), "2:1", "adapt.max_lag_ms = NaN must be milliseconds"),
        ("output-timeout", t("[encoder]\noutput_timeout_s = 0\n"), "2:1", "encoder.output_timeout_s = 0.0 must be a number of seconds from 0.5"),
        ("keyframe-long", t("[encoder]\nkeyframe_interval_s = 11\n"), "2:1", "encoder.keyframe_interval_s = 11.0 must be a number of seconds from 0.1 to 10.0"),
        ("camera-retry", t("[camera]\nretry_initial_s = nan\n"), "2:1", "camera.retry_initial_s = NaN"),
        ("source-stall", t("[source]\nstall_timeout_s = -3\n"), "2:1", "source.stall_timeout_s = -3.0"),
        // Rungs: even, within the codec's limits, fps and bitrate in range.
        ("huge-rung", rung(100000, 100000, 30, 800), "2:1", "ladder[0].width = 100000 must be an even number from 16 to 4096 (libx264 takes up to 4096x2304)"),
        ("tall-rung", rung(1920, 2306, 30, 800), "3:1", "ladder[0].height = 2306 must be an even number from 16 to 2304"),
        ("tiny-rung", rung(8, 8, 30, 800), "2:1", "from 16"),
        ("hardware-limit", t("[encoder]\ncodec = \"h264_v4l2m2m\"\n") + &rung(1920, 1090, 30, 800), "5:1", "ladder[0].height = 1090 must be an even number from 16 to 1088 (h264_v4l2m2m"),
        ("fast-rung", rung(640, 360, 121, 800), "4:1", "ladder[0].fps = 121 must be a frame rate from 1 to 120"),
        ("bitrate", rung(640, 360, 30, 0), "5:1", "ladder[0].bitrate_kbps = 0 must be a bitrate in kb/s from 50 to 100000"),
        ("rising", rung(640, 360, 30, 800) + &rung(320, 180, 30, 900), "10:1", "ladder[1].bitrate_kbps = 900: rungs go from best to lowest"),
        // ffmpeg, ports.
        ("empty-ffmpeg", t("[encoder]\nffmpeg = \"\"\n"), "2:1", "encoder.ffmpeg is empty"),
        ("listen-port", t("[server]\nlisten = \"0.0.0.0:0\"\n"), "2:1", "server.listen: port 0 is not a port (1 to 65535)"),
        ("source-port", t("[source]\nurl = \"udp://0.0.0.0:0\"\n"), "2:7", "port 0 is not a port"),
        ("output-port", t("[[output]]\nurl = \"rtmp://example.org:0/live\"\n"), "2:7", "port \"0\" is not a port"),
        ("keepalive-port", t("[camera]\nkind = \"gopro-legacy\"\nkeepalive_port = 0\n"), "3:1", "camera.keepalive_port: port 0"),
        ("http-port", t("[camera]\nhttp_port = 0\n"), "2:1", "camera.http_port: port 0"),
        // Connections, token, camera address.
        ("max-connections", t("[server]\nmax_connections = 5000\n"), "2:1", "must be at most 4096 (the systemd unit allows 8192 open files)"),
        ("viewers-over-connections", t("[server]\nmax_viewers = 600\n"), "2:1", "server.max_viewers = 600 must not exceed server.max_connections = 512"),
        ("per-address", t("[server]\nmax_connections = 16\nmax_connections_per_address = 17\n"), "2:1", "server.max_connections_per_address = 17 must not exceed server.max_connections = 16"),
        ("pending", t("[server]\nmax_pending_per_address = 0\n"), "2:1", "server.max_pending_per_address = 0 must be at least 1"),
        ("short-token", t("[server]\ncontrol_token = \"secret\"\n"), "2:1", "16 to 128 visible ASCII characters"),
        ("spaced-token", t("[server]\ncontrol_token = \"correct horse battery staple\"\n"), "2:1", "without spaces"),
        ("multicast-camera", t("[camera]\naddress = \"224.0.0.1\"\n"), "2:1", "camera.address = 224.0.0.1 is not a camera's address"),
    ]
}

#[test]
fn a_missing_file_is_refused() {
    let out = Command::new(BIN)
        .args(["check-config", "/nonexistent/livestreamd.toml"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr)
        .contains("/nonexistent/livestreamd.toml:1:1: cannot read"));
}

#[test]
fn run_with_a_bad_config_exits_2_before_starting_anything() {
    let dir = temp_dir("run-bad");
    let path = dir.join("bad.toml");
    std::fs::write(&path, "[server]\nlisten = 8080\n").unwrap();
    let out = Command::new(BIN)
        .args(["run", "--config", path.to_str().unwrap()])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains(&format!("{}:2:10", path.display())));
}

#[test]
fn the_shipped_config_is_valid_and_equals_the_defaults() {
    let shipped = concat!(env!("CARGO_MANIFEST_DIR"), "/configs/livestreamd.toml");
    let out = Command::new(BIN)
        .args(["check-config", shipped])
        .output()
        .unwrap();
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let cfg = livestreamd::config::load(std::path::Path::new(shipped)).unwrap();
    let defaults = livestreamd::config::Config::default();
    assert_eq!(
        cfg.to_toml(),
        defaults.to_toml(),
        "configs/livestreamd.toml documents the real defaults"
    );
}

#[test]
fn check_config_into_a_pipe_closed_early_is_quiet() {
    // `livestreamd check-config FILE | head -1`: the reader leaves after a line.
    let shipped = concat!(env!("CARGO_MANIFEST_DIR"), "/configs/livestreamd.toml");
    let out = Command::new("sh")
        .arg("-c")
        .arg(format!(
            "'{BIN}' check-config '{shipped}' | head -c 10 >/dev/null; true"
        ))
        .stderr(std::process::Stdio::piped())
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!err.contains("panicked"), "{err}");
    assert!(err.is_empty(), "nothing to complain about: {err}");
}

#[test]
fn usage_errors_exit_2() {
    let out = Command::new(BIN).args(["launch"]).output().unwrap();
    assert_eq!(out.status.code(), Some(2));
    let out = Command::new(BIN).arg("--version").output().unwrap();
    assert_eq!(out.status.code(), Some(0));
    assert!(String::from_utf8_lossy(&out.stdout).starts_with("livestreamd 0.1.0"));
}
