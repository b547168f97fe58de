//! Bounded randomized tests of what comes from outside: config files (the SD
//! card) and MPEG-TS (the network). Never a panic; every refusal of a config is
//! one line `FILE:LINE:COLUMN: reason`; the gate lets in only the camera's whole
//! packets, and the TS path keeps whole packets, unbroken continuity counters
//! and the hub within its byte cap.
//!
//! Each test prints its seed; `FUZZ_SEED=<n> cargo test --test fuzz_inputs`
//! replays a run, `FUZZ_CASES=<n>` runs more (or fewer) cases.

mod common;

use common::{temp_dir, BIN};
use livestreamd::config;
use livestreamd::media::encoder::SourceJoin;
use livestreamd::media::gate::{Gate, Refused, Verdict};
use livestreamd::media::hls::Which;
use livestreamd::media::relay::{Hub, Limits, Reader};
use livestreamd::media::ts::{Aligner, Continuity, Demux, Kind, PACKET_LEN, SYNC};
use std::collections::HashMap;
use std::net::IpAddr;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

const SHIPPED: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/configs/livestreamd.toml");

/// xorshift64*: small, seeded, good enough to pick mutations.
struct Rng(u64);

impl Rng {
    fn new(seed: u64) -> Rng {
        Rng(seed.max(1))
    }
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }
    /// 0..n (n > 0).
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
    fn chance(&mut self, percent: usize) -> bool {
        self.below(100) < percent
    }
    fn pick<'a, T>(&mut self, items: &'a [T]) -> &'a T {
        &items[self.below(items.len())]
    }
}

fn env_number(name: &str) -> Option<u64> {
    std::env::var(name).ok()?.parse().ok()
}

/// The seed from `FUZZ_SEED`, else from the clock; printed either way.
fn seed(test: &str) -> u64 {
    let seed = env_number("FUZZ_SEED").unwrap_or_else(|| {
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(1, |d| d.as_nanos() as u64)
    });
    println!("{test}: FUZZ_SEED={seed}");
    seed
}

fn cases(default: u64) -> usize {
    env_number("FUZZ_CASES").unwrap_or(default) as usize
}

// ---------------------------------------------------------------- config files

/// Values a field-edited file might hold where a number or string was.
const EDGE_VALUES: &[&str] = &[
    "0",
    "-1",
    "-0.0",
    "nan",
    "-nan",
    "inf",
    "-inf",
    "1e308",
    "-1e308",
    "5e-324",
    "100000",
    "4294967296",
    "18446744073709551616",
    "9223372036854775807",
    "0.5",
    "\"\"",
    "\" \"",
    "\"udp://0.0.0.0:0\"",
    "\"rtmp://h:0/x\"",
    "\"udp://[::]:65535\"",
    "\"\\u0000\"",
    "\"a\\nb\"",
    "\"0.0.0.0:0\"",
    "\"224.0.0.1\"",
    "true",
    "[]",
    "[1, \"a\"]",
    "{}",
    "{ width = 2 }",
    "1979-05-27T07:32:00Z",
    "'''\nx'''",
];

/// The value part of a `key = value` line (commented or not): (start, key).
fn value_of(line: &str) -> Option<(usize, &str)> {
    let body = line.trim_start_matches(['#', ' ']);
    let (key, _) = body.split_once('=')?;
    let key = key.trim();
    if key.is_empty() || !key.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') {
        return None;
    }
    Some((line.find('=')? + 1, key))
}

/// `[table]` sections (not arrays of tables): (header line, first line after).
fn sections(lines: &[String]) -> Vec<(usize, usize)> {
    let mut out = Vec::new();
    for (i, l) in lines.iter().enumerate() {
        if l.starts_with('[') && !l.starts_with("[[") {
            let end = (i + 1..lines.len())
                .find(|&j| lines[j].starts_with('['))
                .unwrap_or(lines.len());
            out.push((i, end));
        }
    }
    out
}

/// One mutation of the file's lines (or bytes).
fn mutate(rng: &mut Rng, lines: &mut Vec<String>) {
    if lines.is_empty() {
        lines.push(rng.pick(EDGE_VALUES).to_string());
        return;
    }
    let i = rng.below(lines.len());
    match rng.below(12) {
        // A number or string replaced by an edge value.
        0..=3 => {
            let candidates: Vec<usize> = (0..lines.len())
                .filter(|&j| value_of(&lines[j]).is_some())
                .collect();
            if let Some(&j) = candidates.get(rng.below(candidates.len().max(1))) {
                let (at, _) = value_of(&lines[j]).unwrap();
                let keep = lines[j][..at].to_string();
                let value = match rng.below(8) {
                    0 => format!("\"{}\"", "x".repeat(1 + rng.below(20_000))),
                    _ => rng.pick(EDGE_VALUES).to_string(),
                };
                lines[j] = format!("{keep} {value}");
            }
        }
        4 => {
            lines.remove(i);
        }
        5 => {
            let l = lines[i].clone();
            lines.insert(i, l);
        }
        // A commented example (say an [[output]]) switched on.
        6 => {
            let l = lines[i].trim_start_matches('#').trim_start().to_string();
            lines[i] = l;
        }
        7 => {
            let j = rng.below(lines.len());
            lines.swap(i, j);
        }
        // A table's keys moved into an inline table at the top of the file.
        8 => {
            let secs = sections(lines);
            if !secs.is_empty() {
                let (start, end) = *rng.pick(&secs);
                let name = lines[start].trim().trim_matches(['[', ']']).to_string();
                let keys: Vec<String> = lines[start + 1..end]
                    .iter()
                    .map(|l| l.trim())
                    .filter(|l| !l.is_empty() && !l.starts_with('#'))
                    .map(String::from)
                    .collect();
                lines.drain(start..end);
                lines.insert(0, format!("{name} = {{ {} }}", keys.join(", ")));
            }
        }
        // All [[ladder]] tables as one inline array.
        9 => {
            let mut rungs = Vec::new();
            let mut j = 0;
            while j < lines.len() {
                if lines[j].trim() == "[[ladder]]" {
                    lines.remove(j);
                    let mut keys = Vec::new();
                    while j < lines.len() && !lines[j].starts_with('[') {
                        let l = lines.remove(j);
                        if value_of(&l).is_some() && !l.starts_with('#') {
                            keys.push(l);
                        }
                    }
                    rungs.push(format!("{{ {} }}", keys.join(", ")));
                } else {
                    j += 1;
                }
            }
            if !rungs.is_empty() {
                lines.insert(0, format!("ladder = [{}]", rungs.join(", ")));
            }
        }
        // Stray TOML punctuation.
        10 => {
            let bits = [
                "[",
                "]]",
                "=",
                "\"",
                "{",
                "}",
                ",",
                ".",
                "[[output]]",
                "'''",
                "\\",
            ];
            let l = &mut lines[i];
            let at = (0..=l.len())
                .filter(|&k| l.is_char_boundary(k))
                .nth(rng.below(l.chars().count() + 1))
                .unwrap_or(0);
            let bit = *rng.pick(&bits);
            l.insert_str(at, bit);
        }
        // A random byte somewhere (the text may stop being UTF-8).
        _ => {
            let mut bytes = std::mem::take(&mut lines[i]).into_bytes();
            let at = rng.below(bytes.len() + 1);
            let byte = (rng.next() & 0xff) as u8;
            if at < bytes.len() && rng.chance(50) {
                bytes[at] = byte;
            } else {
                bytes.insert(at, byte);
            }
            lines[i] = String::from_utf8_lossy(&bytes).into_owned();
        }
    }
}

/// The shipped file with a few random mutations.
fn mutated_config(rng: &mut Rng, shipped: &str) -> String {
    let mut lines: Vec<String> = shipped.lines().map(String::from).collect();
    for _ in 0..1 + rng.below(4) {
        mutate(rng, &mut lines);
    }
    let mut text = lines.join("\n");
    if rng.chance(80) {
        text.push('\n');
    }
    text
}

/// Checks one error line `FILE:LINE:COLUMN: reason` against the text it is about.
fn check_error_line(message: &str, file: &str, text: &str) -> Result<(), String> {
    if message.contains(['\n', '\r']) {
        return Err("more than one line".into());
    }
    let rest = message
        .strip_prefix(&format!("{file}:"))
        .ok_or("does not start with the file name")?;
    let mut parts = rest.splitn(3, ':');
    let line: usize = parts
        .next()
        .and_then(|l| l.parse().ok())
        .ok_or("no line number")?;
    let column: usize = parts
        .next()
        .and_then(|c| c.parse().ok())
        .ok_or("no column number")?;
    let reason = parts
        .next()
        .and_then(|r| r.strip_prefix(' '))
        .ok_or("no reason")?;
    if reason.trim().is_empty() {
        return Err("empty reason".into());
    }
    let lines: Vec<&str> = text.split('\n').collect();
    let Some(at) = line.checked_sub(1).and_then(|l| lines.get(l)) else {
        return Err(format!("line {line} is not in the text"));
    };
    if column == 0 || column > at.chars().count() + 1 {
        return Err(format!("column {column} is not in line {line}"));
    }
    Ok(())
}

#[test]
fn mutated_config_files_are_accepted_or_refused_on_one_line() {
    let shipped = std::fs::read_to_string(SHIPPED).unwrap();
    let mut rng = Rng::new(seed("config"));
    let file = "mutated.toml";
    let dir = temp_dir("fuzz-config");
    let started = Instant::now();
    let (mut accepted, mut refused) = (0, 0);
    for case in 0..cases(3000) {
        let text = mutated_config(&mut rng, &shipped);
        let result = catch_unwind(AssertUnwindSafe(|| config::parse(Path::new(file), &text)));
        let keep = |why: &str| {
            let path = dir.join(format!("case-{case}.toml"));
            std::fs::write(&path, &text).unwrap();
            panic!("case {case} ({}): {why}", path.display());
        };
        match result {
            Err(_) => keep("config::parse panicked"),
            Ok(Ok(c)) => {
                accepted += 1;
                // What check-config prints must itself be a valid config.
                if let Err(e) = config::parse(Path::new("printed"), &c.to_toml()) {
                    keep(&format!("the printed effective config is refused: {e}"));
                }
            }
            Ok(Err(e)) => {
                refused += 1;
                if let Err(why) = check_error_line(&e.to_string(), file, &text) {
                    keep(&format!("{why}: {e}"));
                }
            }
        }
    }
    println!(
        "{accepted} accepted, {refused} refused in {:?}",
        started.elapsed()
    );
    assert!(
        accepted > 0 && refused > 0,
        "the mutations reach both outcomes"
    );
}

/// The shipped file cut into its top-level sections (each `[table]` or
/// `[[array]]` element with its lines; the comments above the first header
/// are left out).
fn top_level_sections(shipped: &str) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    for line in shipped.lines() {
        if line.starts_with('[') {
            out.push(String::new());
        }
        if let Some(s) = out.last_mut() {
            s.push_str(line);
            s.push('\n');
        }
    }
    out
}

/// A boot-partition file of a few of the shipped sections, mutated, laid over
/// the shipped file: accepted (and what is printed is valid again) or refused
/// on one line that points into the file that holds the key at fault.
#[test]
fn mutated_overrides_laid_over_the_shipped_file_are_accepted_or_refused_on_one_line() {
    let shipped = std::fs::read_to_string(SHIPPED).unwrap();
    let parts = top_level_sections(&shipped);
    assert!(
        parts.len() >= 8,
        "the shipped file's sections: {}",
        parts.len()
    );
    let mut rng = Rng::new(seed("override").wrapping_add(2));
    let dir = temp_dir("fuzz-override");
    let (image, boot) = ("image.toml", "boot.toml");
    let (mut accepted, mut refused) = (0, 0);
    for case in 0..cases(3000) {
        let picked: String = parts.iter().filter(|_| rng.chance(33)).cloned().collect();
        let upper = if rng.chance(50) {
            mutated_config(&mut rng, &picked)
        } else {
            picked
        };
        let result = catch_unwind(AssertUnwindSafe(|| {
            config::parse_over(
                Some((Path::new(image), &shipped)),
                (Path::new(boot), &upper),
            )
        }));
        let keep = |why: &str| {
            let path = dir.join(format!("case-{case}.toml"));
            std::fs::write(&path, &upper).unwrap();
            panic!("case {case} ({}): {why}", path.display());
        };
        match result {
            Err(_) => keep("config::parse_over panicked"),
            Ok(Ok(c)) => {
                accepted += 1;
                if let Err(e) = config::parse(Path::new("printed"), &c.to_toml()) {
                    keep(&format!("the printed effective config is refused: {e}"));
                }
            }
            Ok(Err(e)) => {
                refused += 1;
                let message = e.to_string();
                let checked = if message.starts_with(boot) {
                    check_error_line(&message, boot, &upper)
                } else {
                    check_error_line(&message, image, &shipped)
                };
                if let Err(why) = checked {
                    keep(&format!("{why}: {e}"));
                }
            }
        }
    }
    println!("overrides: {accepted} accepted, {refused} refused");
    assert!(
        accepted > 0 && refused > 0,
        "the mutations reach both outcomes"
    );
}

#[test]
fn check_config_exits_0_or_2_with_one_line_on_mutated_files() {
    let shipped = std::fs::read_to_string(SHIPPED).unwrap();
    let mut rng = Rng::new(seed("check-config").wrapping_add(1));
    let dir = temp_dir("fuzz-check-config");
    for case in 0..cases(3000).min(50) {
        let mut bytes = mutated_config(&mut rng, &shipped).into_bytes();
        if rng.chance(10) {
            // Not UTF-8 at all: a half-written file.
            let at = rng.below(bytes.len() + 1);
            bytes.insert(at, 0xff);
        }
        let path = dir.join(format!("case-{case}.toml"));
        std::fs::write(&path, &bytes).unwrap();
        let out = Command::new(BIN)
            .arg("check-config")
            .arg(&path)
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        match out.status.code() {
            Some(0) => assert!(stderr.is_empty(), "case {case}: {stderr}"),
            Some(2) => {
                assert_eq!(stderr.lines().count(), 1, "case {case}: {stderr}");
                // Exactly `FILE:LINE:COLUMN: reason`, as editors and compilers write it.
                let message = stderr.trim_end();
                let text = String::from_utf8_lossy(&bytes);
                let file = path.display().to_string();
                if let Err(why) = check_error_line(message, &file, &text) {
                    panic!("case {case} ({file}): {why}: {stderr}");
                }
            }
            other => panic!("case {case} ({}): exit {other:?}: {stderr}", path.display()),
        }
    }
}

// ---------------------------------------------------------------- MPEG-TS

const PMT_PID: u16 = 0x1000;
const VIDEO_PID: u16 = 0x100;

/// One packet: header, an adaptation field (with the random-access flag, or
/// stuffing) when needed, then as much of `payload` as fits.
fn packet(pid: u16, unit_start: bool, rai: bool, cc: u8, payload: &[u8]) -> Vec<u8> {
    let mut p = vec![
        SYNC,
        (pid >> 8) as u8 & 0x1f | if unit_start { 0x40 } else { 0 },
        pid as u8,
    ];
    let room = PACKET_LEN - 4;
    let body = payload.len().min(room - usize::from(rai) * 2);
    if rai || body < room {
        p.push(0x30 | (cc & 0x0f));
        let field = room - 1 - body; // bytes after the length byte
        p.push(field as u8);
        if field > 0 {
            p.push(if rai { 0x40 } else { 0x00 });
            p.resize(p.len() + field - 1, 0xff);
        }
    } else {
        p.push(0x10 | (cc & 0x0f));
    }
    p.extend_from_slice(&payload[..body]);
    assert_eq!(p.len(), PACKET_LEN);
    p
}

/// A PSI section after a zero pointer field, with a dummy CRC.
fn section(table_id: u8, body: &[u8]) -> Vec<u8> {
    let len = body.len() + 4 + 5; // 5 header bytes after the length, CRC
    let mut s = vec![
        0,
        table_id,
        0xb0 | (len >> 8) as u8,
        len as u8,
        0,
        1,
        0xc1,
        0,
        0,
    ];
    s.extend_from_slice(body);
    s.extend_from_slice(&[0; 4]);
    s
}

fn pat() -> Vec<u8> {
    let body = [0, 1, 0xe0 | (PMT_PID >> 8) as u8, PMT_PID as u8];
    packet(0, true, false, 0, &section(0x00, &body))
}

fn pmt() -> Vec<u8> {
    let v = [0xe0 | (VIDEO_PID >> 8) as u8, VIDEO_PID as u8];
    let body = [v[0], v[1], 0xf0, 0, 0x1b, v[0], v[1], 0xf0, 0];
    packet(PMT_PID, true, false, 0, &section(0x02, &body))
}

fn pts_bytes(pts: u64) -> [u8; 5] {
    [
        0x21 | ((pts >> 29) as u8 & 0x0e),
        (pts >> 22) as u8,
        0x01 | ((pts >> 14) as u8 & 0xfe),
        (pts >> 7) as u8,
        0x01 | ((pts << 1) as u8 & 0xfe),
    ]
}

/// A camera-like stream: PAT/PMT and an IDR every `gop` frames, each frame a
/// PES start and a few more packets. Returns whole packets.
fn stream(rng: &mut Rng, first_frame: u64, frames: u64, gop: u64) -> Vec<u8> {
    let mut out = Vec::new();
    let mut cc: HashMap<u16, u8> = HashMap::new();
    let mut next_cc = |pid: u16| {
        let c = cc.entry(pid).or_insert(0);
        *c = (*c + 1) & 0x0f;
        *c
    };
    for f in first_frame..first_frame + frames {
        let key = f % gop == 0;
        if key {
            out.extend(pat());
            out.extend(pmt());
        }
        let mut pes = vec![0, 0, 1, 0xe0, 0, 0, 0x80, 0x80, 5];
        pes.extend_from_slice(&pts_bytes((f * 3000) & ((1 << 33) - 1)));
        pes.extend_from_slice(&[0, 0, 0, 1, if key { 0x65 } else { 0x41 }]);
        pes.resize(150, 0xab);
        out.extend(packet(VIDEO_PID, true, key, next_cc(VIDEO_PID), &pes));
        for _ in 0..rng.below(6) {
            let data: Vec<u8> = (0..184).map(|_| rng.next() as u8).collect();
            out.extend(packet(VIDEO_PID, false, false, next_cc(VIDEO_PID), &data));
        }
    }
    out
}

/// Damage as the network or a confused sender would do it.
fn damage(rng: &mut Rng, data: &mut Vec<u8>) {
    for _ in 0..rng.below(8) {
        if data.is_empty() {
            return;
        }
        let at = rng.below(data.len());
        let packet_start = at - at % PACKET_LEN;
        match rng.below(8) {
            0 => data[at] ^= 1 << rng.below(8),
            1 => data[at] = rng.next() as u8,
            // Headers: PID, flags, adaptation control, lengths, pointer fields.
            2 => {
                let field = packet_start + rng.below(6);
                if field < data.len() {
                    data[field] = *rng.pick(&[0x00, 0xff, 0x47, 0x20, 0xb7, 0x1f]);
                }
            }
            3 => {
                let end = (at + rng.below(400)).min(data.len());
                data.drain(at..end);
            }
            4 => {
                let junk: Vec<u8> = (0..rng.below(400)).map(|_| rng.next() as u8).collect();
                data.splice(at..at, junk);
            }
            5 => {
                let syncs = vec![SYNC; rng.below(400)];
                data.splice(at..at, syncs);
            }
            6 => {
                let end = (packet_start + PACKET_LEN).min(data.len());
                let copy = data[packet_start..end].to_vec();
                data.splice(packet_start..packet_start, copy);
            }
            _ => data.truncate(at),
        }
    }
}

/// Whole, synchronised packets (none at all counts).
fn assert_packets(what: &str, buf: &[u8]) {
    assert_eq!(
        buf.len() % PACKET_LEN,
        0,
        "{what}: a whole number of packets"
    );
    for p in buf.chunks(PACKET_LEN) {
        assert_eq!(p[0], SYNC, "{what}: every packet starts with the sync byte");
    }
}

/// After `Continuity::rewrite`, each PID's payload packets count on by one.
#[derive(Default)]
struct CcCheck(HashMap<u16, u8>);

impl CcCheck {
    fn check(&mut self, buf: &[u8]) {
        for p in buf.chunks_exact(PACKET_LEN) {
            if (p[3] >> 4) & 1 == 0 {
                continue; // no payload: the counter does not advance
            }
            let pid = u16::from(p[1] & 0x1f) << 8 | u16::from(p[2]);
            let cc = p[3] & 0x0f;
            if let Some(prev) = self.0.insert(pid, cc) {
                assert_eq!(cc, (prev + 1) & 0x0f, "continuity of PID {pid:#x}");
            }
        }
    }
}

#[test]
fn damaged_mpeg_ts_never_panics_and_the_hub_stays_bounded() {
    let mut rng = Rng::new(seed("mpeg-ts"));
    let started = Instant::now();
    let limits = Limits {
        max_bytes: 48 * 1024,
        ..Limits::default()
    };
    let cap = limits.max_bytes;
    let rounds = cases(3000) / 10;
    // Admitted, foreign, malformed.
    let mut verdicts = [0u64; 3];
    let mut hls_segments = 0u64;
    for round in 0..rounds {
        let hub = Hub::new(limits.clone());
        hub.add_track(0, 1);
        let mut generation = 1;
        let mut aligner = Aligner::default();
        let mut demux = Demux::default();
        let mut join = SourceJoin::default();
        let mut continuity = Continuity::default();
        let mut cc_check = CcCheck::default();
        let mut readers: Vec<(Reader, CcCheck)> = (0..1 + rng.below(3))
            .map(|_| {
                let lag = Duration::from_millis(rng.below(2000) as u64);
                let rung = rng.below(3);
                (Reader::new(hub.clone(), rung, lag), CcCheck::default())
            })
            .collect();
        let camera: IpAddr = "10.5.5.9".parse().unwrap();
        let stranger: IpAddr = "192.168.4.7".parse().unwrap();
        let configured = rng.chance(50).then_some(camera);
        let mut gate = Gate::new(configured, Duration::from_secs(3));
        let t0 = Instant::now();
        let mut clock = Duration::ZERO;
        let mut frame = rng.below(1 << 20) as u64;
        for _ in 0..4 + rng.below(8) {
            let frames = 1 + rng.below(40) as u64;
            let gop = 1 + rng.below(30) as u64;
            let mut input = if rng.chance(10) {
                (0..rng.below(3000)).map(|_| rng.next() as u8).collect()
            } else {
                stream(&mut rng, frame, frames, gop)
            };
            // What an encoder would give the hub: the same, aligned and undamaged.
            let whole = Aligner::default().push(&input);
            damage(&mut rng, &mut input);
            // The source: datagrams of any size, joined at a keyframe, aligned.
            let mut rest = input.as_slice();
            while !rest.is_empty() {
                // Mostly whole packets, as a camera sends them (7 a datagram).
                let n = match rng.below(10) {
                    0..=6 => PACKET_LEN * (1 + rng.below(7)),
                    _ => 1 + rng.below(7 * PACKET_LEN + 40),
                }
                .min(rest.len());
                let (datagram, tail) = rest.split_at(n);
                rest = tail;
                // The gate: only the camera's whole packets, at a clock that
                // sometimes stalls.
                clock += Duration::from_millis(match rng.below(100) {
                    0 => 4000,
                    _ => rng.below(40) as u64,
                });
                let from = if rng.chance(80) { camera } else { stranger };
                let verdict = gate.admit(from, datagram, t0 + clock);
                verdicts[match verdict {
                    Verdict::Admitted { .. } => 0,
                    Verdict::Refused(Refused::Foreign) => 1,
                    Verdict::Refused(Refused::Malformed) => 2,
                }] += 1;
                match verdict {
                    Verdict::Admitted { .. } => {
                        assert!(configured.map_or(true, |c| c == from), "only the camera");
                        assert_packets("admitted", datagram);
                    }
                    Verdict::Refused(Refused::Foreign) => assert_ne!(Some(from), gate.sender()),
                    Verdict::Refused(Refused::Malformed) => {}
                }
                assert_packets("gate's PAT/PMT", &gate.psi());
                if configured.is_some() {
                    assert_eq!(gate.sender(), configured);
                }
                join.admit(datagram);
                let packets = aligner.push(datagram);
                assert_packets("aligner", &packets);
                for p in packets.chunks(PACKET_LEN) {
                    if let Kind::Video { pts: Some(pts), .. } = demux.classify(p) {
                        assert!(pts < 1 << 33, "a PTS has 33 bits");
                    }
                    demux.classify(&p[..rng.below(PACKET_LEN + 1)]);
                }
                let mut rewritten = packets.clone();
                continuity.rewrite(&mut rewritten);
                cc_check.check(&rewritten);
                hub.push(generation, 0, &packets);
            }
            // Another rung's encoder, or a new one of the same rung, or one
            // stopped: readers move between them.
            if rng.chance(30) {
                if rng.chance(20) {
                    hub.remove_track(generation - rng.below(2) as u64);
                }
                generation += 1;
                hub.add_track(rng.below(3), generation);
                let epoch = rng.below(2) as u64;
                hub.push(generation, epoch, &whole);
                hub.push(generation - 1, epoch, &whole);
            }
            frame += frames;
            let stats = hub.stats();
            // Each track keeps to its share of the cap; only its newest
            // chunk (one read from an encoder, bounded) may stand alone above it.
            let share = cap / stats.tracks.len().max(1);
            for t in &stats.tracks {
                assert!(
                    t.buffered_bytes <= share || t.buffered_chunks <= 1,
                    "round {round}: track {} holds {} bytes in {} chunks (share {share} of {cap})",
                    t.generation,
                    t.buffered_bytes,
                    t.buffered_chunks
                );
            }
            for (reader, check) in &mut readers {
                let mut buf = Vec::new();
                if rng.chance(30) {
                    reader.set_rung(rng.below(3));
                }
                while reader.fill(&mut buf, 1 + rng.below(64 * 1024)).is_some() {
                    assert_packets("reader", &buf);
                    if !buf.is_empty() {
                        check.check(&buf);
                    }
                }
            }
            // HLS from the same damaged stream: playlists that parse, and
            // segments of whole packets that start with the tables.
            hub.hls_follow(rng.below(3));
            for which in [Which::Rung(rng.below(3)), Which::Live] {
                let Ok(text) = hub.hls_playlist(which) else {
                    continue;
                };
                assert!(text.starts_with("#EXTM3U\n"), "{text}");
                for n in text.lines().filter_map(|l| l.strip_suffix(".ts")) {
                    let n: u64 = n.parse().expect("a segment number");
                    if let Ok(parts) = hub.hls_segment(which, n) {
                        let bytes: Vec<u8> = parts.concat();
                        assert_packets("HLS segment", &bytes);
                        hls_segments += 1;
                    }
                }
                let _ = hub.hls_segment(which, rng.next());
            }
        }
    }
    println!(
        "{rounds} rounds in {:?}; gate: {} admitted, {} foreign, {} malformed; {hls_segments} HLS segments read",
        started.elapsed(),
        verdicts[0],
        verdicts[1],
        verdicts[2]
    );
    assert!(verdicts.iter().all(|&n| n > 0), "every verdict is reached");
}
