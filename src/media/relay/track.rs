//! One encoder's output as the hub keeps it: its packets cut at frame starts
//! into chunks, in a ring bounded by age and bytes, with its PAT/PMT, its
//! newest keyframe and its codec. Knows nothing of readers' moves or of HLS
//! beyond handing each keyframe-to-keyframe run to `hls_cut`.

use super::hls_cut::RunCut;
use crate::media::hls::Run;
use crate::media::ts::{avc_codec, pts_diff, Demux, Kind, PACKET_LEN};
use bytes::Bytes;
use std::cmp::Ordering;
use std::collections::VecDeque;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// A run of whole TS packets. A chunk either starts a video frame
/// (`frame_start`, with its PTS) or continues the one before.
#[derive(Debug)]
pub struct Chunk {
    pub seq: u64,
    pub data: Bytes,
    pub frame_start: bool,
    /// It starts an IDR access unit: a reader can join or switch here.
    pub keyframe: bool,
    /// PTS of the frame it starts (90 kHz).
    pub pts: Option<u64>,
    /// The camera's timeline the encoder was started on: timestamps compare
    /// only within one.
    pub epoch: u64,
    /// When the hub received it: a reader's lag is measured against this.
    pub at: Instant,
}

impl Chunk {
    /// Its place in presentation order across tracks: (timeline, PTS).
    pub(super) fn when(&self) -> Option<Stamp> {
        self.pts.map(|pts| Stamp {
            epoch: self.epoch,
            pts,
        })
    }
}

/// A frame's place in time, comparable across tracks of the same camera.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct Stamp {
    pub(super) epoch: u64,
    pub(super) pts: u64,
}

impl PartialOrd for Stamp {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for Stamp {
    fn cmp(&self, other: &Self) -> Ordering {
        self.epoch
            .cmp(&other.epoch)
            .then_with(|| pts_diff(self.pts, other.pts).cmp(&0))
    }
}

/// One encoder's output.
pub(super) struct Track {
    pub(super) rung: usize,
    demux: Demux,
    pat: Option<Vec<u8>>,
    pmt: Option<Vec<u8>>,
    /// PAT then PMT, rebuilt only when either changes.
    pub(super) psi: Bytes,
    pub(super) ring: VecDeque<Arc<Chunk>>,
    pub(super) ring_bytes: usize,
    next_seq: u64,
    /// Sequence number of the newest keyframe chunk (it may since have been
    /// evicted under the byte cap: check against the ring's front).
    newest_keyframe: Option<u64>,
    last_pts: Option<u64>,
    pub(super) bytes_in: u64,
    pub(super) last_input: Option<Instant>,
    pub(super) readers: usize,
    /// The run since its newest keyframe, not yet an HLS segment.
    pub(super) cut: RunCut,
    /// `avc1.PPCCLL` from its first keyframe's SPS.
    pub(super) codec: Option<String>,
}

impl Track {
    pub(super) fn new(rung: usize) -> Track {
        Track {
            rung,
            demux: Demux::default(),
            pat: None,
            pmt: None,
            psi: Bytes::new(),
            ring: VecDeque::new(),
            ring_bytes: 0,
            next_seq: 0,
            newest_keyframe: None,
            last_pts: None,
            bytes_in: 0,
            last_input: None,
            readers: 0,
            cut: RunCut::new(rung),
            codec: None,
        }
    }

    /// Appends whole packets, a new chunk at every frame start. True when a
    /// frame with a new timestamp came (the encoder is making progress); the
    /// runs from keyframe to keyframe it completed go to `runs`.
    pub(super) fn push(
        &mut self,
        packets: &[u8],
        epoch: u64,
        at: Instant,
        runs: &mut Vec<Run>,
    ) -> bool {
        self.bytes_in += packets.len() as u64;
        self.last_input = Some(at);
        let mut progressed = false;
        let mut pending: Option<(Vec<u8>, bool, bool, Option<u64>)> = None;
        for pkt in packets.chunks_exact(PACKET_LEN) {
            let kind = self.demux.classify(pkt);
            match kind {
                Kind::Pat if self.pat.as_deref() != Some(pkt) => {
                    self.pat = Some(pkt.to_vec());
                    self.rebuild_psi();
                }
                Kind::Pmt if self.pmt.as_deref() != Some(pkt) => {
                    self.pmt = Some(pkt.to_vec());
                    self.rebuild_psi();
                }
                _ => {}
            }
            let start = match kind {
                Kind::Video {
                    keyframe,
                    pts: Some(pts),
                } => Some((keyframe, pts)),
                _ => None,
            };
            if let Some((keyframe, pts)) = start {
                if let Some((data, fs, key, p)) = pending.take() {
                    runs.extend(self.append(data, fs, key, p, epoch, at));
                }
                pending = Some((Vec::new(), true, keyframe, Some(pts)));
                if self.last_pts != Some(pts) {
                    self.last_pts = Some(pts);
                    progressed = true;
                }
            }
            pending
                .get_or_insert_with(|| (Vec::new(), false, false, None))
                .0
                .extend_from_slice(pkt);
        }
        if let Some((data, fs, key, p)) = pending {
            runs.extend(self.append(data, fs, key, p, epoch, at));
        }
        progressed
    }

    /// Appends a chunk; a keyframe completes the run before it.
    fn append(
        &mut self,
        data: Vec<u8>,
        frame_start: bool,
        keyframe: bool,
        pts: Option<u64>,
        epoch: u64,
        at: Instant,
    ) -> Option<Run> {
        let completed = self
            .cut
            .follow(self.next_seq, data.len(), keyframe, pts, epoch, at);
        if keyframe && self.codec.is_none() {
            self.codec = self.demux.video_pid().and_then(|pid| avc_codec(&data, pid));
        }
        let chunk = Chunk {
            seq: self.next_seq,
            data: Bytes::from(data),
            frame_start,
            keyframe,
            pts,
            epoch,
            at,
        };
        if keyframe {
            self.newest_keyframe = Some(chunk.seq);
        }
        self.next_seq += 1;
        self.ring_bytes += chunk.data.len();
        self.ring.push_back(Arc::new(chunk));
        completed
    }

    fn rebuild_psi(&mut self) {
        let pat = self.pat.as_deref().unwrap_or(&[]);
        let pmt = self.pmt.as_deref().unwrap_or(&[]);
        self.psi = Bytes::from([pat, pmt].concat());
    }

    pub(super) fn front_seq(&self) -> Option<u64> {
        self.ring.front().map(|c| c.seq)
    }

    pub(super) fn get(&self, seq: u64) -> Option<&Arc<Chunk>> {
        let front = self.front_seq()?;
        self.ring.get(seq.checked_sub(front)? as usize)
    }

    /// The newest keyframe still in the ring.
    pub(super) fn newest_keyframe(&self) -> Option<&Arc<Chunk>> {
        self.get(self.newest_keyframe?)
    }

    /// The first keyframe after `after` (in presentation order).
    pub(super) fn keyframe_after(&self, after: Option<Stamp>) -> Option<&Arc<Chunk>> {
        self.ring
            .iter()
            .find(|c| c.keyframe && after.is_none_or_lt(c.when()))
    }

    pub(super) fn evict(&mut self, keep_for: Duration, max_bytes: usize, now: Instant) {
        let newest_keyframe = self.newest_keyframe;
        while let Some(front) = self.ring.front() {
            let too_big = self.ring_bytes > max_bytes && self.ring.len() > 1;
            let too_old = now.duration_since(front.at) > keep_for
                && newest_keyframe.is_some_and(|k| front.seq < k);
            if !(too_big || too_old) {
                break;
            }
            self.ring_bytes -= front.data.len();
            self.ring.pop_front();
        }
    }
}

/// `None < Some(stamp)`: anything comes after nothing.
pub(super) trait After {
    fn is_none_or_lt(&self, other: Option<Stamp>) -> bool;
}

impl After for Option<Stamp> {
    fn is_none_or_lt(&self, other: Option<Stamp>) -> bool {
        match (self, other) {
            (None, _) => true,
            (Some(_), None) => false,
            (Some(a), Some(b)) => *a < b,
        }
    }
}
