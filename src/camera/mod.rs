//! The camera: finding a GoPro (`discover`), what each model offers (`models`), what its API's
//! requests and answers mean (`protocol`), talking to one (`session`), the loop that keeps it
//! streaming (`control`), the GoPro emulator for tests and demos (`emulator`), and the demo's
//! simulated camera (`demo`). Knows nothing of ffmpeg's encoding or of viewers.

pub mod control;
pub mod demo;
pub mod discover;
pub mod emulator;
pub mod models;
pub mod protocol;
pub mod session;
