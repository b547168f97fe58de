//! Benchmark (not a test): what serving viewers costs the daemon itself.
//! One run of the demo, measured with 0 viewers (the baseline: receiving the
//! camera, feeding ffmpeg, reading its output), then 1, 4 and 8 viewers reading
//! `/stream.ts` on loopback. The daemon's own CPU time (from /proc, children
//! excluded) per megabit served, and its resident memory.
//!
//!   cargo bench --bench relay_fanout            (results appended to benches/RESULTS.md)

#[path = "../tests/common/mod.rs"]
mod common;

use common::*;
use std::fmt::Write as _;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// The daemon's user+system CPU seconds so far.
fn cpu_seconds(pid: i32) -> f64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    let fields: Vec<&str> = stat
        .rsplit(')')
        .next()
        .unwrap_or("")
        .split_whitespace()
        .collect();
    let ticks: f64 = fields.get(11).and_then(|v| v.parse().ok()).unwrap_or(0.0)
        + fields.get(12).and_then(|v| v.parse().ok()).unwrap_or(0.0);
    ticks / unsafe { libc::sysconf(libc::_SC_CLK_TCK) } as f64
}

const PHASE: Duration = Duration::from_secs(15);

fn main() {
    let dir = temp_dir("bench-fanout");
    let ports = Ports::new();
    let config = write_config(&dir, &ports, "[adapt]\nmode = \"fixed\"\n");
    let daemon = Daemon::demo(&dir, &config, ports.http);
    daemon.wait_streaming();
    std::thread::sleep(Duration::from_secs(2));
    let mut rows = String::new();
    for viewers in [0usize, 1, 4, 8] {
        let stop = Arc::new(AtomicBool::new(false));
        let bytes = Arc::new(AtomicU64::new(0));
        let readers: Vec<_> = (0..viewers)
            .map(|_| {
                let (stop, bytes) = (stop.clone(), bytes.clone());
                let port = ports.http;
                std::thread::spawn(move || {
                    let mut v = Viewer::connect(port);
                    while !stop.load(Ordering::Relaxed) {
                        let n = v.read_for(Duration::from_millis(200));
                        bytes.fetch_add(n as u64, Ordering::Relaxed);
                        v.received.clear();
                    }
                })
            })
            .collect();
        std::thread::sleep(Duration::from_secs(2)); // let them join
        bytes.store(0, Ordering::Relaxed);
        let (cpu0, t0) = (cpu_seconds(daemon.pid()), Instant::now());
        let mut rss_max = 0;
        while t0.elapsed() < PHASE {
            std::thread::sleep(Duration::from_millis(250));
            rss_max = rss_max.max(rss_kib(daemon.pid()));
        }
        let cpu = cpu_seconds(daemon.pid()) - cpu0;
        let secs = t0.elapsed().as_secs_f64();
        let megabits = bytes.load(Ordering::Relaxed) as f64 * 8.0 / 1e6;
        stop.store(true, Ordering::Relaxed);
        for r in readers {
            let _ = r.join();
        }
        let per_mbit = if megabits > 0.0 {
            format!("{:.2} ms", cpu * 1000.0 / megabits)
        } else {
            "–".into()
        };
        writeln!(
            rows,
            "| {viewers} | {:.2} | {:.1} % | {per_mbit} | {} |",
            megabits / secs,
            100.0 * cpu / secs,
            rss_max
        )
        .unwrap();
        eprintln!(
            "{viewers} viewers: {:.2} Mbit/s served, CPU {:.1} %, RSS {rss_max} KiB",
            megabits / secs,
            100.0 * cpu / secs
        );
    }
    let date = utc_now();
    let report = format!(
        "\n## Relay fan-out, {date}\n\nCommand: `cargo bench --bench relay_fanout` (release build, demo camera 320x180, rung 320x180@30 600 kbit/s, viewers on loopback, {} s per row; the daemon's own CPU, ffmpeg excluded; the 0-viewer row is the baseline).\n\n\
| viewers | Mbit/s served | daemon CPU | CPU per Mbit served | max RSS (KiB) |\n| --- | --- | --- | --- | --- |\n{rows}",
        PHASE.as_secs()
    );
    record_bench(&report);
}
