//! The recent warnings and errors, kept in memory for the phone's page.
//!
//! In the field there is no screen and no shell: the page (through `/events`
//! and `/log`) is the only place a person sees why the picture is missing. So
//! every warning and error logged through the `log` facade, the camera
//! client's included, is also kept here, whatever the configured log level:
//! bounded in bytes (the oldest lines go first; a line repeated at once is
//! counted, not stored again), and with secrets masked before it is stored,
//! since anyone on the hotspot may read it.
//!
//! `Recorder` wraps the logger that writes to stderr (journald): that one
//! still gets what its own filter allows, and the ring gets warnings and
//! errors besides.

use serde::Serialize;
use std::collections::VecDeque;
use std::sync::{Mutex, OnceLock, RwLock};

/// The most bytes of text the ring keeps (messages and targets).
pub const RING_BYTES: usize = 16 * 1024;
/// A longer message is cut to this many bytes (at a character boundary).
pub const LINE_BYTES: usize = 400;
/// What a secret is replaced with.
pub const MASK: &str = "***";

/// One kept line.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct LogLine {
    /// Numbers lines in the order they were first logged.
    pub id: u64,
    /// When it was (last) logged, Unix seconds.
    pub t: f64,
    /// "WARN" or "ERROR".
    pub level: &'static str,
    /// The module that logged it, e.g. `livestreamd::camera::control`.
    pub target: String,
    pub message: String,
    /// How many times in a row it was logged (1 = once).
    pub repeats: u64,
    /// The ring's change counter when this line was added or last repeated.
    #[serde(skip)]
    pub changed: u64,
}

impl LogLine {
    fn bytes(&self) -> usize {
        self.message.len() + self.target.len()
    }
}

/// The lines and what was dropped.
#[derive(Debug, Default)]
pub struct Ring {
    lines: VecDeque<LogLine>,
    bytes: usize,
    cap: usize,
    next_id: u64,
    /// Counts every change (a line added or repeated).
    changes: u64,
    /// Lines pushed out to stay within the cap.
    pub dropped: u64,
    pub warnings: u64,
    pub errors: u64,
}

/// A copy of the ring for the page or a report.
#[derive(Debug, Clone, Serialize)]
pub struct Snapshot {
    pub lines: Vec<LogLine>,
    pub dropped: u64,
    pub warnings: u64,
    pub errors: u64,
    /// Give this back as `since` to get only what changed after it.
    pub changes: u64,
    pub cap_bytes: usize,
}

impl Ring {
    pub fn new(cap: usize) -> Ring {
        Ring {
            cap,
            ..Ring::default()
        }
    }

    /// Keeps one line (already masked); `error` tells its level.
    pub fn push(&mut self, t: f64, error: bool, target: &str, message: &str) {
        let level = if error { "ERROR" } else { "WARN" };
        if error {
            self.errors += 1;
        } else {
            self.warnings += 1;
        }
        self.changes += 1;
        let message = cut(message, LINE_BYTES);
        if let Some(last) = self.lines.back_mut() {
            if last.level == level && last.target == target && last.message == message {
                last.repeats += 1;
                last.t = t;
                last.changed = self.changes;
                return;
            }
        }
        let line = LogLine {
            id: self.next_id,
            t,
            level,
            target: cut(target, 80),
            message,
            repeats: 1,
            changed: self.changes,
        };
        self.next_id += 1;
        self.bytes += line.bytes();
        self.lines.push_back(line);
        while self.bytes > self.cap {
            match self.lines.pop_front() {
                Some(old) => {
                    self.bytes -= old.bytes();
                    self.dropped += 1;
                }
                None => break,
            }
        }
    }

    /// The lines added or repeated after change `since` (all for 0).
    pub fn snapshot(&self, since: u64) -> Snapshot {
        Snapshot {
            lines: self
                .lines
                .iter()
                .filter(|l| l.changed > since)
                .cloned()
                .collect(),
            dropped: self.dropped,
            warnings: self.warnings,
            errors: self.errors,
            changes: self.changes,
            cap_bytes: self.cap,
        }
    }

    pub fn changes(&self) -> u64 {
        self.changes
    }

    pub fn bytes(&self) -> usize {
        self.bytes
    }
}

/// `s` cut to at most `max` bytes at a character boundary, marked when cut.
fn cut(s: &str, max: usize) -> String {
    if s.len() <= max {
        return s.to_string();
    }
    let mut end = max.saturating_sub('…'.len_utf8());
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}…", &s[..end])
}

/// Words after which a value is a secret (`psk=…`, `password: …`, `Bearer …`).
const SECRET_KEYS: [&str; 7] = [
    "password",
    "passphrase",
    "passwd",
    "psk",
    "secret",
    "token",
    "bearer",
];

/// Masks `text`: each known secret (`known`: the text and what is shown
/// instead), then every value that follows a word of `SECRET_KEYS` and `=`,
/// `:` or a space (`wpa_passphrase=x`, `"password": "x"`, `Bearer x`).
pub fn mask(text: &str, known: &[(String, String)]) -> String {
    let mut out = text.to_string();
    for (secret, shown) in known {
        if !secret.is_empty() {
            out = out.replace(secret.as_str(), shown);
        }
    }
    let lower = out.to_ascii_lowercase();
    let mut masked = String::with_capacity(out.len());
    let mut i = 0;
    while i < out.len() {
        let key = SECRET_KEYS
            .iter()
            .find(|k| lower[i..].starts_with(*k) && word_start(&lower, i));
        let Some(key) = key else {
            let c = out[i..].chars().next().expect("i is a boundary");
            masked.push(c);
            i += c.len_utf8();
            continue;
        };
        // The key and the rest of its word (`_path`, `s`), then separators.
        let mut j = i + key.len();
        while j < out.len()
            && (out.as_bytes()[j].is_ascii_alphanumeric() || out.as_bytes()[j] == b'_')
        {
            j += 1;
        }
        let mut k = j;
        while k < out.len() && matches!(out.as_bytes()[k], b'=' | b':' | b' ' | b'"' | b'\'') {
            k += 1;
        }
        masked.push_str(&out[i..k]);
        let separators = &out[j..k];
        // `=` or `:` is needed (a space is enough only after "Bearer"), and
        // a value after it: up to its closing quote when quoted.
        let assigned =
            separators.contains(['=', ':']) || (*key == "bearer" && !separators.is_empty());
        let quote = separators
            .chars()
            .last()
            .filter(|c| matches!(c, '"' | '\''));
        let end = match quote {
            Some(q) => out[k..].find(q).map_or(out.len(), |n| k + n),
            None => out[k..]
                .find(|c: char| {
                    c.is_whitespace() || matches!(c, '"' | '\'' | ',' | '&' | ';' | ')')
                })
                .map_or(out.len(), |n| k + n),
        };
        if assigned && end > k {
            masked.push_str(MASK);
        } else {
            masked.push_str(&out[k..end]);
        }
        i = end;
    }
    masked
}

/// Whether a key word may start at `i`: at the start, or after anything but a
/// letter (`wpa_passphrase`, `CAMERA_PASSWORD` and `"password"` count;
/// `bypassword` does not).
fn word_start(lower: &str, i: usize) -> bool {
    i == 0 || !lower.as_bytes()[i - 1].is_ascii_alphabetic()
}

// ---- the process's ring and the logger that feeds it -----------------------

fn ring() -> &'static Mutex<Ring> {
    static RING: OnceLock<Mutex<Ring>> = OnceLock::new();
    RING.get_or_init(|| Mutex::new(Ring::new(RING_BYTES)))
}

fn secrets() -> &'static RwLock<Vec<(String, String)>> {
    static SECRETS: OnceLock<RwLock<Vec<(String, String)>>> = OnceLock::new();
    SECRETS.get_or_init(|| RwLock::new(Vec::new()))
}

/// The secrets of a configuration that may appear in a message: the control
/// token, and each output URL (ffmpeg names it) with its key and password.
pub fn remember_secrets(cfg: &crate::config::Config) {
    let mut known = Vec::new();
    if let Some(token) = &cfg.server.control_token {
        known.push((token.clone(), MASK.to_string()));
    }
    for o in &cfg.outputs {
        let url = o.url.0.clone();
        let shown = crate::media::push::redacted(&url);
        if shown != url {
            known.push((url, shown));
        }
    }
    *secrets().write().unwrap() = known;
}

/// Keeps a message in the process's ring, masked.
pub fn record(error: bool, target: &str, message: &str) {
    let masked = mask(message, &secrets().read().unwrap());
    let t = crate::clock::unix_ms() as f64 / 1000.0;
    ring().lock().unwrap().push(t, error, target, &masked);
}

/// The process's ring: lines changed after `since`.
pub fn snapshot(since: u64) -> Snapshot {
    ring().lock().unwrap().snapshot(since)
}

/// The process's ring's change counter.
pub fn changes() -> u64 {
    ring().lock().unwrap().changes()
}

/// The logger: `inner` writes what its filter allows; warnings and errors
/// are kept in the ring besides.
pub struct Recorder<L> {
    pub inner: L,
}

impl<L: log::Log> log::Log for Recorder<L> {
    fn enabled(&self, metadata: &log::Metadata) -> bool {
        metadata.level() <= log::Level::Warn || self.inner.enabled(metadata)
    }

    fn log(&self, record: &log::Record) {
        if self.inner.enabled(record.metadata()) {
            self.inner.log(record);
        }
        if record.level() <= log::Level::Warn {
            record_args(record);
        }
    }

    fn flush(&self) {
        self.inner.flush();
    }
}

fn record_args(r: &log::Record) {
    record(
        r.level() == log::Level::Error,
        r.target(),
        &r.args().to_string(),
    );
}

/// Installs `inner` behind a `Recorder` as the process's logger; warnings
/// pass the facade whatever `inner`'s level.
pub fn install<L: log::Log + 'static>(inner: L, level: log::LevelFilter) {
    let max = level.max(log::LevelFilter::Warn);
    if log::set_boxed_logger(Box::new(Recorder { inner })).is_ok() {
        log::set_max_level(max);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_ring_stays_within_its_bytes_and_drops_the_oldest() {
        let mut r = Ring::new(1000);
        for i in 0..100 {
            r.push(
                i as f64,
                i % 10 == 0,
                "t",
                &format!("line {i} {}", "x".repeat(40)),
            );
        }
        assert!(r.bytes() <= 1000, "{}", r.bytes());
        let s = r.snapshot(0);
        assert_eq!(
            s.lines.last().unwrap().message,
            format!("line 99 {}", "x".repeat(40))
        );
        assert_eq!(s.dropped as usize + s.lines.len(), 100);
        assert_eq!((s.warnings, s.errors), (90, 10));
        // A huge line is cut, and still fits.
        r.push(1.0, true, "t", &"é".repeat(10_000));
        let last = r.snapshot(0).lines.pop().unwrap();
        assert!(last.message.len() <= LINE_BYTES && last.message.ends_with('…'));
        assert!(r.bytes() <= 1000);
    }

    #[test]
    fn a_repeated_line_is_counted_not_stored_again() {
        let mut r = Ring::new(1000);
        r.push(1.0, false, "cam", "camera unreachable");
        let seen = r.changes();
        r.push(2.0, false, "cam", "camera unreachable");
        r.push(3.0, false, "cam", "camera unreachable");
        let s = r.snapshot(0);
        assert_eq!(s.lines.len(), 1);
        assert_eq!((s.lines[0].repeats, s.lines[0].t), (3, 3.0));
        // What changed since `seen`: the same line, repeated.
        let d = r.snapshot(seen);
        assert_eq!(d.lines.len(), 1);
        assert_eq!(d.lines[0].id, s.lines[0].id);
        r.push(4.0, true, "cam", "camera unreachable");
        assert_eq!(
            r.snapshot(0).lines.len(),
            2,
            "another level is another line"
        );
        assert!(r.snapshot(r.changes()).lines.is_empty());
    }

    #[test]
    fn secrets_are_masked() {
        let known = vec![(
            "rtmp://a.example/live/streamkey123".to_string(),
            "rtmp://a.example/live/***".to_string(),
        )];
        let cases = [
            ("wpa_passphrase=hunter22 ok", "wpa_passphrase=*** ok"),
            ("CAMERA_PASSWORD=\"abc def\"", "CAMERA_PASSWORD=\"***\""),
            ("the password is wrong", "the password is wrong"),
            (
                "{\"password\": \"s3cret\", \"ssid\": \"x\"}",
                "{\"password\": \"***\", \"ssid\": \"x\"}",
            ),
            (
                "Authorization: Bearer abcdefabcdef1234",
                "Authorization: Bearer ***",
            ),
            ("psk: 12345678", "psk: ***"),
            (
                "push rtmp://a.example/live/streamkey123 failed",
                "push rtmp://a.example/live/*** failed",
            ),
            ("tokens are fine to name", "tokens are fine to name"),
            (
                "no secret here: camera at 10.5.5.9",
                "no secret here: camera at 10.5.5.9",
            ),
            ("the password", "the password"),
            ("é password=ü", "é password=***"),
        ];
        for (text, want) in cases {
            assert_eq!(mask(text, &known), want, "{text}");
        }
    }

    #[test]
    fn the_recorder_keeps_warnings_whatever_the_inner_level() {
        struct Quiet;
        impl log::Log for Quiet {
            fn enabled(&self, m: &log::Metadata) -> bool {
                m.level() <= log::Level::Error
            }
            fn log(&self, _: &log::Record) {}
            fn flush(&self) {}
        }
        let rec = Recorder { inner: Quiet };
        let meta = log::MetadataBuilder::new().level(log::Level::Warn).build();
        assert!(log::Log::enabled(&rec, &meta));
        let meta = log::MetadataBuilder::new().level(log::Level::Info).build();
        assert!(!log::Log::enabled(&rec, &meta));
        let before = changes();
        log::Log::log(
            &rec,
            &log::Record::builder()
                .level(log::Level::Warn)
                .target("test::recorder")
                .args(format_args!("psk=abcdefgh lost"))
                .build(),
        );
        let s = snapshot(before);
        let line = s
            .lines
            .iter()
            .find(|l| l.target == "test::recorder")
            .unwrap();
        assert_eq!(line.message, "psk=*** lost");
    }
}
