//! The picture's path: the camera's datagrams let in (`gate`) and received
//! (`source`), MPEG-TS parsing (`ts`), the supervised encoders (`encoder`),
//! the hub that holds their output for viewers (`relay`), the HLS segments
//! and playlists cut from it (`hls`, pure) and the pushes fed from
//! it (`push`). Knows nothing of HTTP or of quality decisions.

pub mod encoder;
pub mod gate;
pub mod hls;
pub mod ladder;
pub mod picture;
pub mod push;
pub mod relay;
pub mod source;
pub mod sps;
pub mod ts;
