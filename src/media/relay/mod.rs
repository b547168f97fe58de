//! The hub: the last few seconds of every running rung's MPEG-TS, one track
//! per encoder, cut at frame starts into chunks in a ring. Any number of
//! readers (viewers, pushes) read at their own pace; each reader follows the
//! rung it is told to and moves to another on its own, at a keyframe of the
//! target, without a gap or a repeated frame: it sends its current track's
//! frames up to the keyframe's timestamp and the target's from there.
//!
//! No sockets here: readers pull with `Reader::fill`, so a slow reader only
//! ever costs itself (it skips to the newest keyframe) and memory is bounded
//! by the rings.
//!
//! HLS is cut from the same rings: every run of a track from one keyframe to
//! the next is offered to its rung's playlist and to the one that follows the
//! rung everyone is given (`media::hls` decides and writes the text); a
//! segment is served as the ring's own `Bytes`, and is gone with them.
//!
//! One job per file:
//! - `track`: one encoder's output as a ring of chunks (frame starts,
//!   keyframes, PAT/PMT, eviction by age and bytes);
//! - `hub`: the tracks of every rung, the newest per rung, sizing, figures;
//! - `reader`: one consumer's place, its reads and its moves between rungs;
//! - `hls_cut`: the keyframe-to-keyframe runs offered to the HLS playlists,
//!   and the playlists and segments served from the rings.

mod hls_cut;
mod hub;
mod reader;
mod track;

pub use hls_cut::{HlsRung, HlsStats};
pub use hub::{switch_hold, Hub, HubStats, Limits, TrackStats};
pub use reader::{Filled, Reader};
pub use track::Chunk;

#[cfg(test)]
mod testkit;
