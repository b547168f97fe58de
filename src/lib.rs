//! livestreamd: keeps a GoPro streaming, re-encodes its live view with ffmpeg,
//! serves it to phones and adapts the quality to each viewer's link.
//! README.md's architecture section draws the modules and the data path.

pub mod camera;
pub mod clock;
pub mod config;
pub mod control;
pub mod daemon;
pub mod http;
pub mod log_budget;
pub mod media;
pub mod network;
pub mod notify;
pub mod status;
pub mod supervise;

pub const VERSION: &str = env!("CARGO_PKG_VERSION");
