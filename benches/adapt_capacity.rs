//! Benchmark (not a test): the capacity-drop scenario on an emulated phone link,
//! adaptive against a fixed-quality baseline in the same run. Needs root.
//!
//!   cargo bench --bench adapt_capacity            (3 runs each, results to benches/RESULTS.md)
//!   cargo bench --bench adapt_capacity -- 1       (1 run each)
//!
//! Per run: time until viewers are on a lower rung, the highest lag behind live
//! after the drop (measured by the benchmark's own client from stream time
//! against wall clock), the lag at the end, the number of switches, skips.

#[path = "../tests/common/mod.rs"]
mod common;

use common::scenario::{capacity_drop, DropRun};
use common::{netns, record_bench, temp_dir, utc_now};
use std::fmt::Write as _;

fn summary(name: &str, runs: &[DropRun]) -> String {
    let mut out = String::new();
    for (i, r) in runs.iter().enumerate() {
        let reaction = r
            .reaction_s
            .map_or("never".to_string(), |s| format!("{s:.2} s"));
        writeln!(
            out,
            "| {name} | {} | {reaction} | {:.2} s | {:.2} s | {} | {} | {} |",
            i + 1,
            r.max_lag_s,
            r.end_lag_s,
            r.switches,
            r.final_rung,
            r.skips
        )
        .unwrap();
    }
    out
}

fn main() {
    if let Some(why) = netns::unavailable() {
        eprintln!("adapt_capacity: cannot run here: {why}");
        std::process::exit(1);
    }
    let runs: usize = std::env::args()
        .skip(1)
        .find_map(|a| a.parse().ok())
        .unwrap_or(3);
    let mut adaptive = Vec::new();
    let mut fixed = Vec::new();
    // One at a time, so the two never compete for the CPU.
    for i in 0..runs {
        eprintln!("run {}/{runs}: adaptive", i + 1);
        adaptive.push(capacity_drop(
            &temp_dir(&format!("bench-adaptive-{i}")),
            "",
            "",
        ));
        eprintln!("run {}/{runs}: fixed quality", i + 1);
        fixed.push(capacity_drop(
            &temp_dir(&format!("bench-fixed-{i}")),
            "[adapt]\nmode = \"fixed\"\n",
            "viewer_max_lag_ms = 120000",
        ));
    }
    let date = utc_now();
    let mut report = format!(
        "\n## Capacity drop, {date}\n\nCommand: `cargo bench --bench adapt_capacity -- {runs}` (as root; release build, real ffmpeg, libx264 ultrafast).\n\
Scenario: demo camera 640x360@30, ladder 1000/350/120 kbit/s, viewer in a network namespace; link ample for 10 s, then `tc tbf rate 600kbit` until 60 s.\n\
Baseline: `adapt.mode = \"fixed\"` and `viewer_max_lag_ms = 120000` (one quality, the viewer never skipped ahead: the old ffserver way).\n\n\
| mode | run | time to lower rung | max lag after drop | lag at 60 s | switches | final rung | skips |\n| --- | --- | --- | --- | --- | --- | --- | --- |\n"
    );
    report.push_str(&summary("adaptive", &adaptive));
    report.push_str(&summary("fixed", &fixed));
    record_bench(&report);
}
