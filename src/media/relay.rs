//! The hub: holds the last few seconds of encoded MPEG-TS as keyframe-aligned
//! chunks in a ring, lets any number of viewers read at their own pace, and
//! splices from one encoder to the next at a shared keyframe.
//!
//! No sockets here: viewers pull with `read`, so a slow viewer only ever costs
//! itself (it skips to the newest keyframe) and memory is bounded by the ring.

use crate::media::ts::{pts_diff, Continuity, Demux, Kind, PACKET_LEN};
use bytes::Bytes;
use std::collections::VecDeque;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::sync::{mpsc, watch};

/// A run of whole TS packets; `keyframe` chunks begin with an IDR access unit.
#[derive(Debug)]
pub struct Chunk {
    pub seq: u64,
    pub data: Bytes,
    pub keyframe: bool,
    /// Last video PTS seen in the chunk (90 kHz).
    pub pts: Option<u64>,
    /// When the hub received it: a viewer's lag is measured against this.
    pub at: Instant,
}

/// A chunk before it has a place in the ring.
#[derive(Debug, Clone)]
struct Unit {
    data: Vec<u8>,
    keyframe: bool,
    /// PTS of the keyframe that starts it, else of the last video packet.
    first_pts: Option<u64>,
    pts: Option<u64>,
    at: Instant,
}

/// One encoder's output stream.
#[derive(Default)]
struct Track {
    demux: Demux,
    pat: Option<Vec<u8>>,
    pmt: Option<Vec<u8>>,
    /// PAT then PMT, rebuilt only when either changes (they repeat unchanged
    /// ten times a second).
    psi: Bytes,
    /// For a pending track: its output since its oldest kept keyframe.
    buffer: VecDeque<Unit>,
    last_keyframe_pts: Option<u64>,
    /// The last video PTS seen: output with another one is progress (a new
    /// timeline restarts lower, so "higher" would not do).
    last_pts: Option<u64>,
}

impl Track {
    /// Splits whole packets into units, each keyframe starting a new one.
    /// Also says whether a video frame with a new timestamp came.
    fn cut(&mut self, packets: &[u8], at: Instant) -> (Vec<Unit>, bool) {
        let mut units: Vec<Unit> = Vec::new();
        let mut progressed = false;
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
            let (keyframe, pts) = match kind {
                Kind::Video { keyframe, pts } => (keyframe, pts),
                _ => (false, None),
            };
            if keyframe || units.is_empty() {
                units.push(Unit {
                    data: Vec::new(),
                    keyframe,
                    first_pts: pts,
                    pts,
                    at,
                });
            }
            let unit = units.last_mut().expect("a unit was just ensured");
            unit.data.extend_from_slice(pkt);
            if let Some(p) = pts {
                unit.pts = pts;
                if self.last_pts != Some(p) {
                    self.last_pts = Some(p);
                    progressed = true;
                }
            }
            if keyframe {
                self.last_keyframe_pts = pts;
            }
        }
        (units, progressed)
    }

    fn rebuild_psi(&mut self) {
        let pat = self.pat.as_deref().unwrap_or(&[]);
        let pmt = self.pmt.as_deref().unwrap_or(&[]);
        self.psi = Bytes::from([pat, pmt].concat());
    }
}

/// Hub sizing.
#[derive(Debug, Clone)]
pub struct Limits {
    /// How long chunks stay readable (a viewer further behind has skipped anyway).
    pub keep_for: Duration,
    /// Hard cap on buffered bytes, whatever the bitrate.
    pub max_bytes: usize,
    /// Two encoders' keyframes closer than this (90 kHz ticks) are the same frame.
    pub pts_tolerance: u64,
    /// How long the old encoder's output may be held back waiting for the new one.
    pub max_hold: Duration,
    /// A viewer still this far behind in the old encoder's output when a splice
    /// happens jumps straight to the new encoder: a switch down is usually made
    /// because viewers fell behind, so their backlog at the old rate is dropped.
    pub splice_catch_up: Duration,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            keep_for: Duration::from_secs(4),
            max_bytes: 16 << 20,
            pts_tolerance: 1500, // half a frame at 30 fps
            max_hold: Duration::from_millis(1500),
            splice_catch_up: Duration::from_millis(300),
        }
    }
}

/// Something the daemon must act on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Event {
    /// Viewers now get `to`'s output; encoder `from` can be stopped.
    Switched { from: u64, to: u64 },
}

struct Inner {
    ring: VecDeque<Arc<Chunk>>,
    ring_bytes: usize,
    next_seq: u64,
    /// Sequence number of the newest keyframe chunk appended (it may since
    /// have been evicted under the byte cap: check against the ring's front).
    newest_keyframe: Option<u64>,
    active: Option<(u64, Track)>,
    pending: Option<(u64, Track)>,
    /// Active-track units held back while the pending track catches up to `hold_pts`.
    held: Vec<Unit>,
    hold: Option<(u64, Instant)>,
    psi: Bytes,
    /// Sequence number of the first chunk of the newest splice.
    splice_seq: Option<u64>,
    bytes_in: u64,
    last_input: Option<Instant>,
    switches: u64,
}

pub struct Hub {
    inner: Mutex<Inner>,
    limits: Limits,
    newest: watch::Sender<u64>,
    events: mpsc::UnboundedSender<Event>,
}

/// What a viewer gets from one `read`.
#[derive(Debug, Default)]
pub struct Batch {
    pub chunks: Vec<Arc<Chunk>>,
    /// The viewer was too far behind and jumped to the newest keyframe.
    pub skipped: bool,
    /// Start of a viewer's stream (or after a skip): send PAT/PMT first.
    pub psi: Option<Bytes>,
    /// How far behind live the viewer was before this read.
    pub lag: Duration,
}

/// Hub-wide figures for `/status` and `/metrics`.
#[derive(Debug, Clone, Default, serde::Serialize)]
pub struct HubStats {
    pub bytes_in: u64,
    pub buffered_bytes: usize,
    pub buffered_chunks: usize,
    pub active_generation: Option<u64>,
    pub pending_generation: Option<u64>,
    pub switches: u64,
    pub last_input_age_ms: Option<u64>,
}

impl Hub {
    pub fn new(limits: Limits) -> (Arc<Hub>, mpsc::UnboundedReceiver<Event>) {
        let (events, rx) = mpsc::unbounded_channel();
        let hub = Hub {
            inner: Mutex::new(Inner {
                ring: VecDeque::new(),
                ring_bytes: 0,
                next_seq: 0,
                newest_keyframe: None,
                active: None,
                pending: None,
                held: Vec::new(),
                hold: None,
                psi: Bytes::new(),
                splice_seq: None,
                bytes_in: 0,
                last_input: None,
                switches: 0,
            }),
            limits,
            newest: watch::channel(0).0,
            events,
        };
        (Arc::new(hub), rx)
    }

    /// Announces an encoder generation: the first becomes active at once, a later
    /// one is pending until the hub can splice to it. Returns a replaced pending one.
    pub fn add_track(&self, generation: u64) -> Option<u64> {
        let mut g = self.inner.lock().unwrap();
        if g.active.is_none() {
            g.active = Some((generation, Track::default()));
            return None;
        }
        let old = g
            .pending
            .replace((generation, Track::default()))
            .map(|(gen, _)| gen);
        Self::release_hold(&mut g);
        old
    }

    /// Gives up on a pending generation (it failed or took too long).
    pub fn cancel_pending(&self, generation: u64) -> bool {
        let mut g = self.inner.lock().unwrap();
        if g.pending
            .as_ref()
            .is_some_and(|(gen, _)| *gen == generation)
        {
            g.pending = None;
            Self::release_hold(&mut g);
            self.publish(&g);
            return true;
        }
        false
    }

    /// Subscribes to "new chunks are readable".
    pub fn watch(&self) -> watch::Receiver<u64> {
        self.newest.subscribe()
    }

    /// Output of encoder `generation`: whole TS packets. True when it carried
    /// a video frame with a new timestamp (the encoder is making progress).
    pub fn push(&self, generation: u64, packets: &[u8]) -> bool {
        let now = Instant::now();
        let mut g = self.inner.lock().unwrap();
        let g = &mut *g;
        g.bytes_in += packets.len() as u64;
        g.last_input = Some(now);
        let mut progressed = false;
        if g.active.as_ref().is_some_and(|(gen, _)| *gen == generation) {
            let (units, p) = g.active.as_mut().unwrap().1.cut(packets, now);
            progressed = p;
            g.psi = g.active.as_ref().unwrap().1.psi.clone();
            for unit in units {
                if self.active_unit(g, unit, now) {
                    break; // spliced: the rest of the old encoder's output is not used
                }
            }
        } else if g
            .pending
            .as_ref()
            .is_some_and(|(gen, _)| *gen == generation)
        {
            let (units, p) = g.pending.as_mut().unwrap().1.cut(packets, now);
            progressed = p;
            for unit in units {
                self.pending_unit(g, unit, now);
            }
        }
        Self::evict(g, &self.limits, now);
        self.publish(g);
        progressed
    }

    /// Handles one unit of the pending track (which may become active on the way).
    fn pending_unit(&self, g: &mut Inner, unit: Unit, now: Instant) {
        let Some((_, track)) = g.pending.as_mut() else {
            Self::append(g, unit); // spliced earlier in this push: this track is active now
            return;
        };
        if let (true, Some(pts), Some((hold_pts, _))) = (unit.keyframe, unit.first_pts, g.hold) {
            if pts_diff(pts, hold_pts).unsigned_abs() <= self.limits.pts_tolerance {
                track.buffer.clear();
                track.buffer.push_back(unit);
                g.held.clear();
                g.hold = None;
                self.splice(g);
                return;
            }
            if pts_diff(pts, hold_pts) > 0 {
                Self::release_hold(g); // it went past: try again at the next keyframe
            }
        }
        let track = &mut g.pending.as_mut().expect("still pending").1;
        track.buffer.push_back(unit);
        // Keep the newest few seconds, always starting at a keyframe.
        while track.buffer.len() > 1
            && now.duration_since(track.buffer[0].at) > self.limits.keep_for
        {
            track.buffer.pop_front();
        }
        while track.buffer.front().is_some_and(|u| !u.keyframe) {
            track.buffer.pop_front();
        }
    }

    /// Handles one unit of the active track; true when it caused a splice.
    fn active_unit(&self, g: &mut Inner, unit: Unit, now: Instant) -> bool {
        if let Some((_, since)) = g.hold {
            if now.duration_since(since) > self.limits.max_hold {
                Self::release_hold(g);
            } else {
                g.held.push(unit);
                return false;
            }
        }
        if let (true, Some(pts), Some((_, pending))) =
            (unit.keyframe, unit.first_pts, g.pending.as_mut())
        {
            let tol = self.limits.pts_tolerance;
            if let Some(at) = pending.buffer.iter().position(|u| {
                u.keyframe
                    && u.first_pts
                        .is_some_and(|p| pts_diff(p, pts).unsigned_abs() <= tol)
            }) {
                pending.buffer.drain(..at);
                self.splice(g);
                return true;
            }
            let behind = pending
                .last_keyframe_pts
                .map_or(true, |p| pts_diff(p, pts) < 0);
            if behind {
                g.hold = Some((pts, now));
                g.held.push(unit);
                return false;
            }
        }
        Self::append(g, unit);
        false
    }

    /// The pending track's buffer (starting at the splice keyframe) replaces the active track.
    fn splice(&self, g: &mut Inner) {
        let (to, track) = g.pending.take().expect("splice needs a pending track");
        let from = g.active.as_ref().map(|(gen, _)| *gen).unwrap_or(to);
        let mut track = track;
        let units: Vec<Unit> = track.buffer.drain(..).collect();
        g.psi = track.psi.clone();
        g.active = Some((to, track));
        g.splice_seq = Some(g.next_seq);
        for unit in units {
            Self::append(g, unit);
        }
        g.switches += 1;
        let _ = self.events.send(Event::Switched { from, to });
    }

    fn release_hold(g: &mut Inner) {
        g.hold = None;
        for unit in std::mem::take(&mut g.held) {
            Self::append(g, unit);
        }
    }

    fn append(g: &mut Inner, unit: Unit) {
        let chunk = Chunk {
            seq: g.next_seq,
            data: Bytes::from(unit.data),
            keyframe: unit.keyframe,
            pts: unit.pts,
            at: unit.at,
        };
        if chunk.keyframe {
            g.newest_keyframe = Some(chunk.seq);
        }
        g.next_seq += 1;
        g.ring_bytes += chunk.data.len();
        g.ring.push_back(Arc::new(chunk));
    }

    fn evict(g: &mut Inner, limits: &Limits, now: Instant) {
        let newest_keyframe = g.newest_keyframe;
        while let Some(front) = g.ring.front() {
            let too_big = g.ring_bytes > limits.max_bytes && g.ring.len() > 1;
            let too_old = now.duration_since(front.at) > limits.keep_for
                && newest_keyframe.is_some_and(|k| front.seq < k);
            if !(too_big || too_old) {
                break;
            }
            g.ring_bytes -= front.data.len();
            g.ring.pop_front();
        }
    }

    fn publish(&self, g: &Inner) {
        self.newest.send_replace(g.next_seq);
    }

    /// The next chunks for a viewer whose next chunk is `cursor` (None: just joined).
    /// A viewer more than `max_lag` behind, or whose data was evicted, jumps to the
    /// newest keyframe. At most about `max_bytes` are returned at once.
    pub fn read(&self, cursor: &mut Option<u64>, max_lag: Duration, max_bytes: usize) -> Batch {
        let g = self.inner.lock().unwrap();
        let mut batch = Batch::default();
        let Some(front_seq) = g.ring.front().map(|c| c.seq) else {
            return batch;
        };
        let newest_keyframe = g.newest_keyframe.filter(|k| *k >= front_seq);
        let start = match *cursor {
            None => match newest_keyframe {
                Some(k) => {
                    batch.psi = Some(g.psi.clone());
                    k
                }
                None => return batch, // wait for the first keyframe
            },
            Some(c) if c >= g.next_seq => return batch,
            Some(c) => {
                let lag = g
                    .ring
                    .get((c.max(front_seq) - front_seq) as usize)
                    .map(|ch| ch.at.elapsed())
                    .unwrap_or_default();
                batch.lag = lag;
                let evicted = c < front_seq;
                let behind = lag > max_lag && newest_keyframe.is_some_and(|k| k > c);
                let before_splice =
                    g.splice_seq.is_some_and(|s| s > c) && lag > self.limits.splice_catch_up;
                if evicted || behind || before_splice {
                    let Some(k) = newest_keyframe else {
                        return batch;
                    };
                    batch.skipped = true;
                    batch.psi = Some(g.psi.clone());
                    k
                } else {
                    c
                }
            }
        };
        let mut bytes = 0;
        for chunk in g.ring.iter().skip((start - front_seq) as usize) {
            if bytes > 0 && bytes + chunk.data.len() > max_bytes {
                break;
            }
            bytes += chunk.data.len();
            batch.chunks.push(chunk.clone());
        }
        *cursor = Some(start + batch.chunks.len() as u64);
        batch
    }

    /// How long the chunk at `cursor` has waited: a viewer's queue depth in time.
    pub fn age_at(&self, cursor: Option<u64>) -> Duration {
        let g = self.inner.lock().unwrap();
        let (Some(c), Some(front)) = (cursor, g.ring.front()) else {
            return Duration::ZERO;
        };
        match c.checked_sub(front.seq) {
            Some(i) => g
                .ring
                .get(i as usize)
                .map_or(Duration::ZERO, |ch| ch.at.elapsed()),
            None => front.at.elapsed(), // already evicted: at least as old as the oldest
        }
    }

    pub fn stats(&self) -> HubStats {
        let g = self.inner.lock().unwrap();
        HubStats {
            bytes_in: g.bytes_in,
            buffered_bytes: g.ring_bytes,
            buffered_chunks: g.ring.len(),
            active_generation: g.active.as_ref().map(|(gen, _)| *gen),
            pending_generation: g.pending.as_ref().map(|(gen, _)| *gen),
            switches: g.switches,
            last_input_age_ms: g.last_input.map(|t| t.elapsed().as_millis() as u64),
        }
    }
}

/// One consumer's place in the hub (a viewer, a push): turns its batches into
/// continuous MPEG-TS bytes, PAT/PMT first and continuity counters rewritten.
pub struct Reader {
    hub: Arc<Hub>,
    cursor: Option<u64>,
    continuity: Continuity,
    max_lag: Duration,
    /// Skips to a newer keyframe so far.
    pub skips: u64,
}

/// What one `Reader::fill` produced.
pub struct Filled {
    pub skipped: bool,
    /// When the oldest chunk in it reached the hub: its age is the
    /// consumer's lag behind live.
    pub oldest: Instant,
}

impl Reader {
    pub fn new(hub: Arc<Hub>, max_lag: Duration) -> Self {
        Reader {
            hub,
            cursor: None,
            continuity: Continuity::default(),
            max_lag,
            skips: 0,
        }
    }

    /// Replaces `buf` with the next bytes (about `max_bytes`); None when nothing is new.
    pub fn fill(&mut self, buf: &mut Vec<u8>, max_bytes: usize) -> Option<Filled> {
        let batch = self.hub.read(&mut self.cursor, self.max_lag, max_bytes);
        self.skips += u64::from(batch.skipped);
        let oldest = batch.chunks.first()?.at;
        buf.clear();
        if let Some(psi) = &batch.psi {
            buf.extend_from_slice(psi);
        }
        for chunk in &batch.chunks {
            buf.extend_from_slice(&chunk.data);
        }
        self.continuity.rewrite(buf);
        Some(Filled {
            skipped: batch.skipped,
            oldest,
        })
    }

    /// The consumer's lag behind live: how long its next unsent chunk has waited.
    pub fn lag(&self) -> Duration {
        self.hub.age_at(self.cursor)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::media::ts::tests::{packet, pat, pes_start, pmt};
    use crate::media::ts::Packet;

    const VIDEO: u16 = 0x100;

    /// One "frame": a PES start (keyframe or not) and one continuation packet.
    fn frame(pts: u64, key: bool) -> Vec<u8> {
        [
            pes_start(VIDEO, key, pts, if key { 5 } else { 1 }),
            packet(VIDEO, false, false, 0, &[0x55; 184]),
        ]
        .concat()
    }

    fn psi() -> Vec<u8> {
        [pat(0x1000), pmt(0x1000, VIDEO)].concat()
    }

    fn pts_of(batch: &Batch) -> Vec<u64> {
        batch.chunks.iter().filter_map(|c| c.pts).collect()
    }

    /// Announces a track and sends its PAT/PMT, as ffmpeg does first.
    fn start(hub: &Hub, generation: u64) -> Option<u64> {
        let replaced = hub.add_track(generation);
        hub.push(generation, &psi());
        replaced
    }

    fn hub() -> (Arc<Hub>, mpsc::UnboundedReceiver<Event>) {
        Hub::new(Limits {
            keep_for: Duration::from_secs(60),
            ..Limits::default()
        })
    }

    #[test]
    fn a_new_viewer_starts_at_the_newest_keyframe_with_psi() {
        let (hub, _) = hub();
        start(&hub, 1);
        for (i, pts) in (0..6u64).map(|i| i * 3000).enumerate() {
            hub.push(1, &frame(pts, i % 3 == 0));
        }
        let mut cursor = None;
        let b = hub.read(&mut cursor, Duration::from_secs(10), 1 << 20);
        assert_eq!(pts_of(&b), vec![9000, 12000, 15000]);
        assert!(b.chunks[0].keyframe);
        let psi_bytes = b.psi.expect("PAT/PMT first");
        assert_eq!(Packet(&psi_bytes[..188]).pid(), 0);
        assert_eq!(Packet(&psi_bytes[188..]).pid(), 0x1000);
        assert!(hub
            .read(&mut cursor, Duration::from_secs(10), 1 << 20)
            .chunks
            .is_empty());
        hub.push(1, &frame(18000, false));
        assert_eq!(
            pts_of(&hub.read(&mut cursor, Duration::from_secs(10), 1 << 20)),
            vec![18000]
        );
    }

    #[test]
    fn output_with_a_new_timestamp_is_progress_even_on_a_new_timeline() {
        let (hub, _) = hub();
        start(&hub, 1);
        assert!(hub.push(1, &frame(90_000, true)));
        assert!(!hub.push(1, &psi()), "tables alone are no progress");
        assert!(!hub.push(1, &frame(90_000, false)), "nor a repeated frame");
        assert!(hub.push(1, &frame(93_000, false)));
        // The encoder restarted on the camera's new timeline, near zero.
        assert!(hub.push(1, &frame(3000, true)));
    }

    #[test]
    fn no_keyframe_yet_means_nothing_to_read() {
        let (hub, _) = hub();
        start(&hub, 1);
        hub.push(1, &frame(0, false));
        let mut cursor = None;
        assert!(hub
            .read(&mut cursor, Duration::from_secs(1), 1 << 20)
            .chunks
            .is_empty());
        assert_eq!(cursor, None);
    }

    #[test]
    fn a_viewer_behind_skips_to_the_newest_keyframe() {
        let (hub, _) = hub();
        start(&hub, 1);
        hub.push(1, &frame(0, true));
        let mut cursor = None;
        hub.read(&mut cursor, Duration::from_millis(50), 1 << 20);
        for i in 1..10u64 {
            hub.push(1, &frame(i * 3000, i % 4 == 0));
        }
        std::thread::sleep(Duration::from_millis(80));
        let b = hub.read(&mut cursor, Duration::from_millis(50), 1 << 20);
        assert!(b.skipped);
        assert!(b.lag >= Duration::from_millis(50));
        assert_eq!(pts_of(&b), vec![24000, 27000]);
        assert!(b.psi.is_some());
    }

    #[test]
    fn reads_are_bounded_in_size() {
        let (hub, _) = hub();
        start(&hub, 1);
        hub.push(1, &frame(0, true));
        for i in 1..10u64 {
            hub.push(1, &frame(i * 3000, false));
        }
        let mut cursor = None;
        let b = hub.read(&mut cursor, Duration::from_secs(10), 3 * 376);
        assert_eq!(b.chunks.len(), 3);
        assert_eq!(
            pts_of(&hub.read(&mut cursor, Duration::from_secs(10), 3 * 376)),
            vec![9000, 12000, 15000]
        );
    }

    #[test]
    fn memory_is_bounded_by_bytes() {
        let (hub, _) = Hub::new(Limits {
            max_bytes: 10 * 376,
            ..Limits::default()
        });
        start(&hub, 1);
        for i in 0..1000u64 {
            hub.push(1, &frame(i * 3000, i % 30 == 0));
        }
        assert!(hub.stats().buffered_bytes <= 10 * 376);
    }

    #[test]
    fn splice_at_a_keyframe_the_new_encoder_already_has() {
        let (hub, mut events) = hub();
        start(&hub, 1);
        hub.push(1, &frame(0, true));
        let mut cursor = None;
        hub.read(&mut cursor, Duration::from_secs(10), 1 << 20);
        assert_eq!(start(&hub, 2), None);
        // The new encoder runs ahead: it has its keyframe at 9000 before the old one.
        hub.push(2, &frame(6000, false));
        hub.push(2, &frame(9000, true));
        hub.push(2, &frame(12000, false));
        hub.push(1, &frame(3000, false));
        hub.push(1, &frame(6000, false));
        hub.push(1, &frame(9000, true)); // splice point
        hub.push(1, &frame(12000, false)); // ignored: old generation
        assert_eq!(
            events.try_recv().unwrap(),
            Event::Switched { from: 1, to: 2 }
        );
        let b = hub.read(&mut cursor, Duration::from_secs(10), 1 << 20);
        assert_eq!(
            pts_of(&b),
            vec![3000, 6000, 9000, 12000],
            "no gap, no repeat"
        );
        assert_eq!(hub.stats().active_generation, Some(2));
        hub.push(2, &frame(15000, false));
        assert_eq!(
            pts_of(&hub.read(&mut cursor, Duration::from_secs(10), 1 << 20)),
            vec![15000]
        );
    }

    #[test]
    fn the_old_encoder_waits_for_a_slower_new_one() {
        let (hub, mut events) = hub();
        start(&hub, 1);
        hub.push(1, &frame(0, true));
        let mut cursor = None;
        hub.read(&mut cursor, Duration::from_secs(10), 1 << 20);
        start(&hub, 2);
        hub.push(2, &frame(0, true)); // warming up, behind
        hub.push(1, &frame(3000, false));
        hub.push(1, &frame(6000, true)); // new one has no 6000 yet: hold
        hub.push(1, &frame(9000, false));
        assert_eq!(
            pts_of(&hub.read(&mut cursor, Duration::from_secs(10), 1 << 20)),
            vec![3000]
        );
        hub.push(2, &frame(3000, false));
        hub.push(2, &frame(6000, true)); // catches up: splice here
        hub.push(2, &frame(9000, false));
        assert_eq!(
            events.try_recv().unwrap(),
            Event::Switched { from: 1, to: 2 }
        );
        assert_eq!(
            pts_of(&hub.read(&mut cursor, Duration::from_secs(10), 1 << 20)),
            vec![6000, 9000]
        );
    }

    #[test]
    fn a_hold_is_released_when_the_new_encoder_misses_the_keyframe() {
        let (hub, mut events) = hub();
        start(&hub, 1);
        hub.push(1, &frame(0, true));
        let mut cursor = None;
        hub.read(&mut cursor, Duration::from_secs(10), 1 << 20);
        start(&hub, 2);
        hub.push(2, &frame(0, true));
        hub.push(1, &frame(6000, true)); // hold for 6000
        hub.push(2, &frame(9000, true)); // went past it
        assert!(events.try_recv().is_err());
        assert_eq!(
            pts_of(&hub.read(&mut cursor, Duration::from_secs(10), 1 << 20)),
            vec![6000]
        );
        hub.push(1, &frame(9000, true)); // next keyframe: the new one has it
        assert_eq!(
            events.try_recv().unwrap(),
            Event::Switched { from: 1, to: 2 }
        );
        assert_eq!(
            pts_of(&hub.read(&mut cursor, Duration::from_secs(10), 1 << 20)),
            vec![9000]
        );
    }

    #[test]
    fn a_viewer_behind_at_a_splice_jumps_to_the_new_encoder() {
        let (hub, _) = Hub::new(Limits {
            keep_for: Duration::from_secs(60),
            splice_catch_up: Duration::from_millis(30),
            ..Limits::default()
        });
        start(&hub, 1);
        hub.push(1, &frame(0, true));
        let (mut slow, mut fast) = (None, None);
        hub.read(&mut slow, Duration::from_secs(10), 1 << 20);
        hub.read(&mut fast, Duration::from_secs(10), 1 << 20);
        hub.push(1, &frame(3000, false));
        std::thread::sleep(Duration::from_millis(50));
        hub.read(&mut fast, Duration::from_secs(10), 1 << 20); // the fast one is up to date
        start(&hub, 2);
        hub.push(2, &frame(6000, true));
        hub.push(1, &frame(6000, true)); // splice
        let b = hub.read(&mut slow, Duration::from_secs(10), 1 << 20);
        assert!(b.skipped, "the backlog at the old rung is dropped");
        assert_eq!(pts_of(&b), vec![6000]);
        let b = hub.read(&mut fast, Duration::from_secs(10), 1 << 20);
        assert!(!b.skipped);
        assert_eq!(
            pts_of(&b),
            vec![6000],
            "an up-to-date viewer just continues"
        );
    }

    #[test]
    fn cancelling_a_pending_track_releases_held_output() {
        let (hub, _) = hub();
        start(&hub, 1);
        hub.push(1, &frame(0, true));
        let mut cursor = None;
        hub.read(&mut cursor, Duration::from_secs(10), 1 << 20);
        start(&hub, 2);
        hub.push(1, &frame(3000, true)); // held: the new encoder has nothing yet
        assert!(hub.cancel_pending(2));
        assert!(!hub.cancel_pending(2));
        hub.push(1, &frame(6000, false));
        assert_eq!(
            pts_of(&hub.read(&mut cursor, Duration::from_secs(10), 1 << 20)),
            vec![3000, 6000]
        );
        assert_eq!(hub.stats().pending_generation, None);
    }
}
