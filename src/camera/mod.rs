//! The camera: keeping a GoPro streaming (`control`), the GoPro emulator for
//! tests and demos (`emulator`), and the demo's simulated camera (`demo`).
//! Knows nothing of ffmpeg's encoding or of viewers.

pub mod control;
pub mod demo;
pub mod emulator;
