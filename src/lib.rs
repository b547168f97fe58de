//! livestreamd: keeps a GoPro streaming, re-encodes its live view with ffmpeg,
//! serves it to phones and adapts the quality to each viewer's link.
//! docs/ARCHITECTURE.md draws the modules and the data path.

pub mod camera;
pub mod clock;
pub mod config;
pub mod control;
pub mod daemon;
pub mod field_report;
pub mod http;
pub mod log_budget;
pub mod log_ring;
pub mod media;
pub mod network;
pub mod notify;
pub mod status;
pub mod supervise;
pub mod timekeep;

pub const VERSION: &str = env!("CARGO_PKG_VERSION");
/// The commit built (12 hex digits), or "unknown" (see build.rs).
pub const COMMIT: &str = env!("LIVESTREAMD_COMMIT");
/// The target triple built for, e.g. `aarch64-unknown-linux-musl`.
pub const TARGET: &str = env!("LIVESTREAMD_TARGET");
