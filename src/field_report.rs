//! `livestream-report` (`livestreamd report`): what the phone's diagnosis
//! panel shows, as a text file for later: the camera, the source, the
//! encoders, the network, the phones and the recent warnings and errors
//! (masked by the daemon before they were kept). It asks the running daemon
//! over loopback, so it needs no journal and no privilege beyond writing the
//! file; with `--to-boot` it hands the text to the image's boot-partition
//! writer, the one way anything reaches the read-only card.

use serde_json::Value;
use std::fmt::Write as _;
use std::net::SocketAddr;
use std::time::Duration;

/// The image's writer for the FAT boot partition: `write NAME` takes the
/// file's content on stdin and replaces NAME atomically.
pub const BOOTFS_WRITER: &str = "/usr/sbin/livestream-bootfs";
/// The file name on the boot partition.
pub const REPORT_NAME: &str = "livestream-report.txt";
/// Upper bound on the report (the daemon's answers are bounded too).
const MAX_REPORT: usize = 96 * 1024;
const ASK_TIMEOUT: Duration = Duration::from_secs(5);

/// Keys whose values are never written, whatever object carries them.
fn secret_key(k: &str) -> bool {
    let k = k.to_ascii_lowercase();
    ["pass", "psk", "secret", "token", "key"]
        .iter()
        .any(|s| k.contains(s))
}

fn plain(v: &Value) -> Option<String> {
    match v {
        Value::String(s) if !s.is_empty() => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        Value::Bool(b) => Some(b.to_string()),
        // A list of words (the network file's problems), one after another.
        Value::Array(items) if !items.is_empty() => {
            let words: Option<Vec<String>> = items.iter().map(plain).collect();
            words.map(|w| w.join("; "))
        }
        _ => None,
    }
}

/// `key: value` lines of an object's plain fields (one level of nesting), secrets left out.
fn facts(out: &mut String, v: &Value, prefix: &str) {
    let Some(map) = v.as_object() else {
        let _ = writeln!(
            out,
            "  {}",
            plain(v).unwrap_or_else(|| "not reported".into())
        );
        return;
    };
    for (k, v) in map {
        if secret_key(k) {
            continue;
        }
        match v {
            Value::Object(_) if prefix.is_empty() => facts(out, v, k),
            _ => {
                if let Some(p) = plain(v) {
                    let name = if prefix.is_empty() {
                        k.clone()
                    } else {
                        format!("{prefix}.{k}")
                    };
                    let _ = writeln!(out, "  {name}: {p}");
                }
            }
        }
    }
}

/// `YYYY-MM-DD HH:MM:SS` (UTC) of Unix seconds.
pub fn utc(t: f64) -> String {
    let c = crate::clock::civil(t.max(0.0) as i64);
    format!(
        "{:04}-{:02}-{:02} {:02}:{:02}:{:02}",
        c.year, c.month, c.day, c.hour, c.minute, c.second
    )
}

/// The report's text from the daemon's `/status` and `/log` answers (either
/// may be an error: the report says so and goes on).
pub fn render(
    now: f64,
    daemon: &str,
    status: &Result<Value, String>,
    log: &Result<Value, String>,
) -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "livestreamd field report, {} UTC (the Pi's clock)\nwritten by livestreamd {} (commit {}, {})\ndaemon: {daemon}",
        utc(now),
        crate::VERSION,
        crate::COMMIT,
        crate::TARGET
    );
    match status {
        Err(e) => {
            let _ = writeln!(out, "\nthe daemon does not answer: {e}");
        }
        Ok(s) => {
            if let Some(up) = s["uptime_s"].as_f64() {
                let _ = writeln!(out, "up {up:.0} s");
            }
            for (title, key) in [("camera", "camera"), ("source", "source")] {
                let _ = writeln!(out, "\n== {title}");
                facts(&mut out, &s[key], "");
            }
            let _ = writeln!(out, "\n== network");
            match &s["network"] {
                Value::Null if s.get("network").is_some() => {
                    let _ = writeln!(out, "  not reported (no network status file)");
                }
                Value::Null => {
                    let _ = writeln!(out, "  not reported by this daemon");
                }
                n => facts(&mut out, n, ""),
            }
            let _ = writeln!(out, "\n== encoders");
            for e in s["encoders"].as_array().into_iter().flatten() {
                let _ = writeln!(
                    out,
                    "  rung {} {}x{}@{} {} kbit/s: {}{}",
                    e["rung"],
                    e["width"],
                    e["height"],
                    e["fps"],
                    e["bitrate_kbps"],
                    if e["pid"].is_number() {
                        "running"
                    } else {
                        "NOT running"
                    },
                    plain(&e["last_exit"])
                        .map(|x| format!(", last exit: {x}"))
                        .unwrap_or_default()
                );
            }
            let viewers = s["viewers"].as_array().map_or(&[][..], |v| v.as_slice());
            let _ = writeln!(out, "\n== phones watching: {}", viewers.len());
            for v in viewers {
                let l = &v["link"];
                let _ = writeln!(
                    out,
                    "  {} rung {} rtt {} ms loss {} % lag {} ms",
                    v["address"].as_str().unwrap_or("?"),
                    v["rung"],
                    l["rtt_ms"],
                    l["loss_pct"],
                    v["lag_ms"]
                );
            }
        }
    }
    match log {
        Err(e) => {
            let _ = writeln!(out, "\n== warnings and errors: not available ({e})");
        }
        Ok(l) => {
            let _ = writeln!(
                out,
                "\n== warnings and errors: {} warnings, {} errors since start, {} older lines not kept",
                l["warnings"], l["errors"], l["dropped"]
            );
            for line in l["lines"].as_array().into_iter().flatten() {
                let repeats = line["repeats"].as_u64().unwrap_or(1);
                let _ = writeln!(
                    out,
                    "  {} {:5} {}: {}{}",
                    utc(line["t"].as_f64().unwrap_or(0.0)),
                    line["level"].as_str().unwrap_or(""),
                    line["target"].as_str().unwrap_or(""),
                    line["message"].as_str().unwrap_or(""),
                    if repeats > 1 {
                        format!(" (x{repeats})")
                    } else {
                        String::new()
                    }
                );
            }
        }
    }
    if out.len() > MAX_REPORT {
        let mut end = MAX_REPORT;
        while !out.is_char_boundary(end) {
            end -= 1;
        }
        out.truncate(end);
        out.push_str("\n[report cut here]\n");
    }
    out
}

async fn ask(addr: SocketAddr, path: &str) -> Result<Value, String> {
    let reply = crate::http::client::http_get(addr, path, ASK_TIMEOUT).await?;
    if reply.status != 200 {
        return Err(format!("{path}: HTTP {}", reply.status));
    }
    serde_json::from_str(&reply.body).map_err(|e| format!("{path}: {e}"))
}

/// Asks the daemon at `addr` and returns the report.
pub async fn collect(addr: SocketAddr) -> String {
    let status = ask(addr, "/status").await;
    let log = ask(addr, "/log").await;
    let now = crate::clock::unix_now();
    render(now, &format!("http://{addr}"), &status, &log)
}

/// The one way the report reaches the card: the image's boot-partition writer.
pub fn write_to_boot(name: &str, text: &str) -> Result<(), String> {
    use std::io::Write;
    let mut child = std::process::Command::new(BOOTFS_WRITER)
        .args(["write", name])
        .stdin(std::process::Stdio::piped())
        .spawn()
        .map_err(|e| format!("cannot run {BOOTFS_WRITER}: {e}"))?;
    let written = child
        .stdin
        .take()
        .expect("stdin is piped")
        .write_all(text.as_bytes());
    let status = child.wait().map_err(|e| format!("{BOOTFS_WRITER}: {e}"))?;
    match (written, status.success()) {
        (Ok(()), true) => Ok(()),
        (Err(e), _) => Err(format!("{BOOTFS_WRITER} write {name}: {e}")),
        (_, false) => Err(format!("{BOOTFS_WRITER} write {name}: {status}")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn utc_dates() {
        assert_eq!(utc(0.0), "1970-01-01 00:00:00");
        assert_eq!(utc(951_782_400.0), "2000-02-29 00:00:00");
        assert_eq!(utc(1_735_689_599.0), "2024-12-31 23:59:59");
    }

    #[test]
    fn the_report_names_each_part_and_leaves_secrets_out() {
        let status = json!({
            "uptime_s": 12.0, "version": "0.1.0",
            "camera": { "state": "unreachable", "last_error": "timed out", "model": "HERO12" },
            "source": { "state": "waiting" },
            "network": { "ssid": "livestream", "password": "hunter22", "access_point": { "why": "no second chip", "psk": "x" },
                         "problems": ["no camera on USB", "channel 13 not allowed"] },
            "encoders": [{ "rung": 0, "width": 640, "height": 360, "fps": 30, "bitrate_kbps": 800, "pid": null, "last_exit": "exited 1" }],
            "viewers": [{ "address": "192.168.4.20:5000", "rung": 1, "lag_ms": 40, "link": { "rtt_ms": 12.5, "loss_pct": 0.0 } }],
        });
        let log = json!({ "warnings": 2, "errors": 1, "dropped": 0, "lines": [
            { "t": 0.0, "level": "ERROR", "target": "livestreamd::camera", "message": "camera gone", "repeats": 3 },
        ]});
        let text = render(0.0, "http://127.0.0.1:8080", &Ok(status), &Ok(log));
        for want in [
            "== camera\n",
            "state: unreachable",
            "model: HERO12",
            "ssid: livestream",
            "access_point.why: no second chip",
            "problems: no camera on USB; channel 13 not allowed",
            "rung 0 640x360@30 800 kbit/s: NOT running, last exit: exited 1",
            "== phones watching: 1",
            "192.168.4.20:5000 rung 1 rtt 12.5 ms",
            "1970-01-01 00:00:00 ERROR livestreamd::camera: camera gone (x3)",
        ] {
            assert!(text.contains(want), "{want}\n{text}");
        }
        assert!(
            !text.contains("hunter22") && !text.contains("psk"),
            "{text}"
        );
    }

    #[test]
    fn a_silent_daemon_is_reported_not_fatal() {
        let text = render(
            0.0,
            "http://127.0.0.1:1",
            &Err("cannot connect".into()),
            &Err("cannot connect".into()),
        );
        assert!(text.contains("the daemon does not answer: cannot connect"));
        assert!(text.contains("warnings and errors: not available"));
    }
}
