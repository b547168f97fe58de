//! livestreamd: keeps a GoPro streaming, re-encodes its live view with ffmpeg,
//! serves it to phones and adapts the quality to each viewer's link.
//! See DESIGN.md (shared) and README.md for the picture.

pub mod camera;
pub mod config;
pub mod config_source;
pub mod daemon;
pub mod demo;
pub mod encoder;
pub mod events;
pub mod fake_gopro;
pub mod gate;
pub mod http;
pub mod log_budget;
pub mod metrics;
pub mod notify;
pub mod probe;
pub mod push;
pub mod relay;
pub mod source;
pub mod supervise;
pub mod ts;

pub const VERSION: &str = env!("CARGO_PKG_VERSION");
pub mod adapt;
pub mod admission;
pub mod link;
