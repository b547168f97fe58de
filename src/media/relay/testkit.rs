//! What the relay's tests share: a hub with a long memory, tracks fed with
//! two-packet frames, and a reader drained into frame numbers.

use super::{Hub, Limits, Reader};
use crate::media::ts::tests::{packet, pat, pes_start, pmt};
use crate::media::ts::{Demux, Kind, PACKET_LEN};
use std::sync::Arc;
use std::time::Duration;

pub(super) const VIDEO: u16 = 0x100;
/// 30 fps in 90 kHz ticks.
pub(super) const FRAME: u64 = 3000;

/// One "frame": a PES start (keyframe or not) and one continuation packet.
pub(super) fn frame(pts: u64, key: bool) -> Vec<u8> {
    [
        pes_start(VIDEO, key, pts, if key { 5 } else { 1 }),
        packet(VIDEO, false, false, 0, &[0x55; 184]),
    ]
    .concat()
}

pub(super) fn psi() -> Vec<u8> {
    [pat(0x1000), pmt(0x1000, VIDEO)].concat()
}

pub(super) fn hub() -> Arc<Hub> {
    Hub::new(Limits {
        keep_for: Duration::from_secs(60),
        ..Limits::default()
    })
}

/// Announces a track and sends its PAT/PMT, as ffmpeg does first.
pub(super) fn start(hub: &Hub, rung: usize, generation: u64) {
    hub.add_track(rung, generation);
    hub.push(generation, 0, &psi());
}

/// Frames `from..to` (frame numbers), a keyframe every `gop`.
pub(super) fn frames(hub: &Hub, generation: u64, from: u64, to: u64, gop: u64) {
    for n in from..to {
        hub.push(generation, 0, &frame(n * FRAME, n % gop == 0));
    }
}

/// Reads everything there is; returns the video PTS of the frames sent,
/// in order, and whether any fill switched or skipped.
pub(super) fn drain(r: &mut Reader) -> (Vec<u64>, Vec<usize>, bool) {
    let mut pts = Vec::new();
    let mut switches = Vec::new();
    let mut skipped = false;
    let mut buf = Vec::new();
    // Every track has the same tables: a demuxer that knows them.
    let mut demux = Demux::default();
    for p in psi().chunks_exact(PACKET_LEN) {
        demux.classify(p);
    }
    while let Some(f) = r.fill(&mut buf, 1 << 20) {
        skipped |= f.skipped;
        switches.extend(f.switched_to);
        for p in buf.chunks_exact(PACKET_LEN) {
            if let Kind::Video { pts: Some(t), .. } = demux.classify(p) {
                pts.push(t);
            }
        }
    }
    (pts, switches, skipped)
}

pub(super) fn n(pts: &[u64]) -> Vec<u64> {
    pts.iter().map(|p| p / FRAME).collect()
}
