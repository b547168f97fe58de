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

use crate::media::ts::{pts_diff, Continuity, Demux, Kind, PACKET_LEN};
use bytes::Bytes;
use std::cmp::Ordering;
use std::collections::{BTreeMap, VecDeque};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::sync::watch;

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
    fn when(&self) -> Option<Stamp> {
        self.pts.map(|pts| Stamp {
            epoch: self.epoch,
            pts,
        })
    }
}

/// A frame's place in time, comparable across tracks of the same camera.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Stamp {
    epoch: u64,
    pts: u64,
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

/// Hub sizing.
#[derive(Debug, Clone)]
pub struct Limits {
    /// How long chunks stay readable (a reader further behind has skipped anyway).
    pub keep_for: Duration,
    /// Cap on buffered bytes over all tracks, whatever the bitrates.
    pub max_bytes: usize,
    /// How long a reader waits for its current track to reach the target's
    /// keyframe before it switches with a gap.
    pub max_hold: Duration,
    /// A reader this far behind live when it switches goes straight to the
    /// target's newest keyframe: a switch down is usually made because it fell
    /// behind, so its backlog at the old rate is dropped.
    pub switch_catch_up: Duration,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            keep_for: Duration::from_secs(4),
            max_bytes: 16 << 20,
            max_hold: Duration::from_millis(1500),
            switch_catch_up: Duration::from_millis(300),
        }
    }
}

/// One encoder's output.
struct Track {
    rung: usize,
    demux: Demux,
    pat: Option<Vec<u8>>,
    pmt: Option<Vec<u8>>,
    /// PAT then PMT, rebuilt only when either changes.
    psi: Bytes,
    ring: VecDeque<Arc<Chunk>>,
    ring_bytes: usize,
    next_seq: u64,
    /// Sequence number of the newest keyframe chunk (it may since have been
    /// evicted under the byte cap: check against the ring's front).
    newest_keyframe: Option<u64>,
    last_pts: Option<u64>,
    bytes_in: u64,
    last_input: Option<Instant>,
    readers: usize,
}

impl Track {
    fn new(rung: usize) -> Track {
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
        }
    }

    /// Appends whole packets, a new chunk at every frame start. True when a
    /// frame with a new timestamp came (the encoder is making progress).
    fn push(&mut self, packets: &[u8], epoch: u64, at: Instant) -> bool {
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
                    self.append(data, fs, key, p, epoch, at);
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
            self.append(data, fs, key, p, epoch, at);
        }
        progressed
    }

    fn append(
        &mut self,
        data: Vec<u8>,
        frame_start: bool,
        keyframe: bool,
        pts: Option<u64>,
        epoch: u64,
        at: Instant,
    ) {
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
    }

    fn rebuild_psi(&mut self) {
        let pat = self.pat.as_deref().unwrap_or(&[]);
        let pmt = self.pmt.as_deref().unwrap_or(&[]);
        self.psi = Bytes::from([pat, pmt].concat());
    }

    fn front_seq(&self) -> Option<u64> {
        self.ring.front().map(|c| c.seq)
    }

    fn get(&self, seq: u64) -> Option<&Arc<Chunk>> {
        let front = self.front_seq()?;
        self.ring.get(seq.checked_sub(front)? as usize)
    }

    /// The newest keyframe still in the ring.
    fn newest_keyframe(&self) -> Option<&Arc<Chunk>> {
        self.get(self.newest_keyframe?)
    }

    /// The first keyframe after `after` (in presentation order).
    fn keyframe_after(&self, after: Option<Stamp>) -> Option<&Arc<Chunk>> {
        self.ring
            .iter()
            .find(|c| c.keyframe && after.is_none_or_lt(c.when()))
    }

    fn evict(&mut self, keep_for: Duration, max_bytes: usize, now: Instant) {
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
trait After {
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

#[derive(Default)]
struct Inner {
    tracks: BTreeMap<u64, Track>,
    /// The track each rung's readers should be on (the newest encoder of that rung).
    by_rung: BTreeMap<usize, u64>,
}

pub struct Hub {
    inner: Mutex<Inner>,
    limits: Limits,
    newest: watch::Sender<u64>,
}

/// One track's figures.
#[derive(Debug, Clone, Default, serde::Serialize, PartialEq)]
pub struct TrackStats {
    pub rung: usize,
    pub generation: u64,
    pub readers: usize,
    pub bytes_in: u64,
    pub buffered_bytes: usize,
    pub buffered_chunks: usize,
    pub last_input_age_ms: Option<u64>,
}

/// Hub-wide figures for `/status` and `/metrics`.
#[derive(Debug, Clone, Default, serde::Serialize, PartialEq)]
pub struct HubStats {
    pub bytes_in: u64,
    pub buffered_bytes: usize,
    pub buffered_chunks: usize,
    /// The newest output of any track.
    pub last_input_age_ms: Option<u64>,
    pub tracks: Vec<TrackStats>,
}

impl Hub {
    pub fn new(limits: Limits) -> Arc<Hub> {
        Arc::new(Hub {
            inner: Mutex::new(Inner::default()),
            limits,
            newest: watch::channel(0).0,
        })
    }

    /// Announces encoder `generation`'s output for `rung`: readers of that rung
    /// move to it (at its first keyframe) from any older track of the rung.
    pub fn add_track(&self, rung: usize, generation: u64) {
        let mut g = self.inner.lock().unwrap();
        g.tracks.insert(generation, Track::new(rung));
        g.by_rung.insert(rung, generation);
    }

    /// Forgets a track (its encoder stopped). Its readers move to their rung's
    /// current track, or wait.
    pub fn remove_track(&self, generation: u64) {
        let mut g = self.inner.lock().unwrap();
        if let Some(t) = g.tracks.remove(&generation) {
            if g.by_rung.get(&t.rung) == Some(&generation) {
                g.by_rung.remove(&t.rung);
            }
        }
        drop(g);
        self.newest.send_modify(|n| *n += 1);
    }

    /// Subscribes to "new chunks are readable".
    pub fn watch(&self) -> watch::Receiver<u64> {
        self.newest.subscribe()
    }

    /// Output of encoder `generation`, started on the camera's timeline
    /// `epoch`: whole TS packets. True when it carried a video frame with a
    /// new timestamp (the encoder is making progress).
    pub fn push(&self, generation: u64, epoch: u64, packets: &[u8]) -> bool {
        let now = Instant::now();
        let mut g = self.inner.lock().unwrap();
        let tracks = g.tracks.len().max(1);
        let Some(t) = g.tracks.get_mut(&generation) else {
            return false;
        };
        let progressed = t.push(packets, epoch, now);
        // Every track to its share, not just this one: a track added since
        // the others last grew shrinks their share.
        for t in g.tracks.values_mut() {
            t.evict(self.limits.keep_for, self.limits.max_bytes / tracks, now);
        }
        drop(g);
        self.newest.send_modify(|n| *n += 1);
        progressed
    }

    /// Readers per rung (all tracks of the rung).
    pub fn readers(&self) -> BTreeMap<usize, usize> {
        let g = self.inner.lock().unwrap();
        let mut out = BTreeMap::new();
        for t in g.tracks.values() {
            *out.entry(t.rung).or_default() += t.readers;
        }
        out
    }

    /// Readers of one track.
    pub fn track_readers(&self, generation: u64) -> usize {
        let g = self.inner.lock().unwrap();
        g.tracks.get(&generation).map_or(0, |t| t.readers)
    }

    pub fn stats(&self) -> HubStats {
        let g = self.inner.lock().unwrap();
        let tracks: Vec<TrackStats> = g
            .tracks
            .iter()
            .map(|(gen, t)| TrackStats {
                rung: t.rung,
                generation: *gen,
                readers: t.readers,
                bytes_in: t.bytes_in,
                buffered_bytes: t.ring_bytes,
                buffered_chunks: t.ring.len(),
                last_input_age_ms: t.last_input.map(|i| i.elapsed().as_millis() as u64),
            })
            .collect();
        HubStats {
            bytes_in: tracks.iter().map(|t| t.bytes_in).sum(),
            buffered_bytes: tracks.iter().map(|t| t.buffered_bytes).sum(),
            buffered_chunks: g.tracks.values().map(|t| t.ring.len()).sum(),
            last_input_age_ms: tracks.iter().filter_map(|t| t.last_input_age_ms).min(),
            tracks,
        }
    }

    /// One read for `r`: the next chunks, at most about `max_bytes`.
    fn read(&self, r: &mut Position, max_lag: Duration, max_bytes: usize) -> Batch {
        let mut g = self.inner.lock().unwrap();
        let mut batch = Batch::default();
        let current = r.track.filter(|gen| g.tracks.contains_key(gen));
        let Some(gen) = current else {
            // Joining, or its track is gone: the newest keyframe of the wanted
            // rung, else of the nearest rung that has one.
            let mut rungs: Vec<(usize, u64)> =
                g.by_rung.iter().map(|(r, gen)| (*r, *gen)).collect();
            rungs.sort_by_key(|(rung, _)| rung.abs_diff(r.want));
            let start = rungs.iter().find_map(|(_, gen)| {
                let k = g.tracks[gen].newest_keyframe()?;
                Some((*gen, k.seq))
            });
            let Some((to, k)) = start else {
                return batch;
            };
            move_reader(&mut g, r, to, k);
            batch.psi = Some(g.tracks[&to].psi.clone());
            batch.switched = r.track_was.is_some();
            batch.skipped = r.track_was.is_some();
            return self.take(&g, r, batch, None, max_bytes);
        };
        let t = &g.tracks[&gen];
        let lag = match t.get(r.next) {
            Some(c) => c.at.elapsed(),
            None if r.next < t.front_seq().unwrap_or(r.next) => Duration::MAX, // evicted
            None => Duration::ZERO,
        }
        .saturating_add(r.outside);
        let want = g.by_rung.get(&r.want).copied();
        let target = want.filter(|w| *w != gen);
        if let Some(w) = target {
            let tt = &g.tracks[&w];
            let behind = lag > self.limits.switch_catch_up;
            let newest = tt
                .newest_keyframe()
                .filter(|k| r.last.is_none_or_lt(k.when()))
                .map(|c| c.seq);
            // Behind: straight to the target's newest keyframe, dropping the backlog.
            if let (true, Some(k)) = (behind, newest) {
                move_reader(&mut g, r, w, k);
                batch.psi = Some(g.tracks[&w].psi.clone());
                batch.switched = true;
                batch.skipped = true;
                return self.take(&g, r, batch, None, max_bytes);
            }
            // Gapless: the current track's frames before the target's next
            // keyframe, then the target's from there.
            if let Some((k_seq, Some(k_when))) =
                tt.keyframe_after(r.last).map(|c| (c.seq, c.when()))
            {
                let next_frame = t
                    .ring
                    .iter()
                    .skip_while(|c| c.seq < r.next)
                    .find(|c| c.frame_start)
                    .and_then(|c| c.when());
                let reached = next_frame.is_some_and(|w| w >= k_when);
                let waited = r.hold_since.get_or_insert_with(Instant::now).elapsed();
                if reached || waited > self.limits.max_hold {
                    move_reader(&mut g, r, w, k_seq);
                    batch.psi = Some(g.tracks[&w].psi.clone());
                    batch.switched = true;
                    return self.take(&g, r, batch, None, max_bytes);
                }
                return self.take(&g, r, batch, Some(k_when), max_bytes);
            }
            // The target is behind the reader (an encoder has more latency than
            // the camera's remux): keep to its pace, so that its next keyframe
            // finds the reader before it, not past it. Not for longer than
            // max_hold, in case the target is stuck.
            // (A reader behind live does not wait: it reads on and jumps at
            // the target's first keyframe past what it was sent.)
            let target_last = tt.ring.iter().rev().find_map(|c| c.when());
            let waited = r.hold_since.get_or_insert_with(Instant::now).elapsed();
            if let (Some(last), true) = (target_last, !behind && waited <= self.limits.max_hold) {
                let until = Stamp {
                    pts: (last.pts + 1) & ((1 << 33) - 1),
                    ..last
                };
                return self.take(&g, r, batch, Some(until), max_bytes);
            }
        }
        if lag > max_lag {
            // Too far behind live: the newest keyframe of its track.
            if let Some(k) = t.newest_keyframe().map(|c| c.seq).filter(|k| *k > r.next) {
                r.next = k;
                batch.psi = Some(t.psi.clone());
                batch.skipped = true;
            }
        }
        self.take(&g, r, batch, None, max_bytes)
    }

    /// Fills `batch` from the reader's track, from `r.next`, stopping before
    /// the first frame at or after `until`.
    fn take(
        &self,
        g: &Inner,
        r: &mut Position,
        mut batch: Batch,
        until: Option<Stamp>,
        max_bytes: usize,
    ) -> Batch {
        let Some(t) = r.track.and_then(|gen| g.tracks.get(&gen)) else {
            return batch;
        };
        let Some(front) = t.front_seq() else {
            return batch;
        };
        if r.next < front {
            // Evicted under the byte cap: its newest keyframe, as a skip.
            match t.newest_keyframe() {
                Some(k) => {
                    r.next = k.seq;
                    batch.psi = Some(t.psi.clone());
                    batch.skipped = true;
                }
                None => return batch,
            }
        }
        let mut bytes = 0;
        for chunk in t
            .ring
            .iter()
            .skip((r.next - t.front_seq().unwrap_or(r.next)) as usize)
        {
            if let (Some(u), true) = (until, chunk.frame_start) {
                if chunk.when().is_some_and(|w| w >= u) {
                    break;
                }
            }
            if bytes > 0 && bytes + chunk.data.len() > max_bytes {
                break;
            }
            bytes += chunk.data.len();
            if let Some(w) = chunk.when() {
                r.last = Some(w);
            }
            r.next = chunk.seq + 1;
            batch.chunks.push(chunk.clone());
        }
        batch.rung = Some(t.rung);
        batch
    }

    /// How long the chunk at the reader's position has waited: its lag behind live.
    fn lag_of(&self, r: &Position) -> Duration {
        let g = self.inner.lock().unwrap();
        let Some(t) = r.track.and_then(|gen| g.tracks.get(&gen)) else {
            return Duration::ZERO;
        };
        match t.get(r.next) {
            Some(c) => c.at.elapsed(),
            None if r.next < t.front_seq().unwrap_or(r.next) => {
                t.ring.front().map_or(Duration::ZERO, |c| c.at.elapsed())
            }
            None => Duration::ZERO,
        }
    }

    fn leave(&self, r: &Position) {
        if let Some(gen) = r.track {
            let mut g = self.inner.lock().unwrap();
            if let Some(t) = g.tracks.get_mut(&gen) {
                t.readers = t.readers.saturating_sub(1);
            }
        }
    }
}

/// Moves a reader to `seq` of track `to`, keeping the tracks' reader counts.
fn move_reader(g: &mut Inner, r: &mut Position, to: u64, seq: u64) {
    log::debug!(
        "hub: reader moves from track {:?} to {to} at chunk {seq} (last sent {:?}, want rung {})",
        r.track,
        r.last,
        r.want
    );
    if let Some(t) = r.track.and_then(|gen| g.tracks.get_mut(&gen)) {
        t.readers = t.readers.saturating_sub(1);
    }
    if let Some(t) = g.tracks.get_mut(&to) {
        t.readers += 1;
    }
    r.track_was = r.track.or(r.track_was);
    r.track = Some(to);
    r.next = seq;
    r.hold_since = None;
}

/// Where a reader is.
#[derive(Debug, Default)]
struct Position {
    /// The rung it should be on.
    want: usize,
    track: Option<u64>,
    /// Whether it has been on a track before (a later join is a switch).
    track_was: Option<u64>,
    next: u64,
    /// The newest frame it was sent.
    last: Option<Stamp>,
    /// Since when it waits for its track to reach the target's keyframe.
    hold_since: Option<Instant>,
    /// What waits for it outside the hub (in its socket), as time.
    outside: Duration,
}

/// What a reader gets from one read.
#[derive(Debug, Default)]
struct Batch {
    chunks: Vec<Arc<Chunk>>,
    /// The reader jumped ahead, dropping frames (too far behind, or a switch while behind).
    skipped: bool,
    /// It moved to another track.
    switched: bool,
    /// Start of a stream, or a jump: send PAT/PMT first.
    psi: Option<Bytes>,
    /// The rung of the track read.
    rung: Option<usize>,
}

/// One consumer's place in the hub (a viewer, a push): turns its batches into
/// continuous MPEG-TS bytes, PAT/PMT first and continuity counters rewritten.
pub struct Reader {
    hub: Arc<Hub>,
    pos: Position,
    continuity: Continuity,
    max_lag: Duration,
    /// Skips to a newer keyframe so far.
    pub skips: u64,
}

/// What one `Reader::fill` produced.
pub struct Filled {
    pub skipped: bool,
    /// It moved to this rung with this fill.
    pub switched_to: Option<usize>,
    /// When the oldest chunk in it reached the hub: its age is the
    /// consumer's lag behind live.
    pub oldest: Instant,
}

impl Reader {
    /// A reader that joins `rung` at its newest keyframe.
    pub fn new(hub: Arc<Hub>, rung: usize, max_lag: Duration) -> Self {
        Reader {
            hub,
            pos: Position {
                want: rung,
                ..Position::default()
            },
            continuity: Continuity::default(),
            max_lag,
            skips: 0,
        }
    }

    /// Asks to move to `rung` (at the target's next keyframe).
    pub fn set_rung(&mut self, rung: usize) {
        if self.pos.want != rung {
            self.pos.want = rung;
            self.pos.hold_since = None;
        }
    }

    /// How much of its video waits outside the hub (in its socket, say): it
    /// counts in its lag, for skips and for how it switches.
    pub fn set_outside_lag(&mut self, lag: Duration) {
        self.pos.outside = lag;
    }

    /// Its wanted rung's track has a keyframe after what it was sent: the
    /// next read can move there.
    pub fn can_move(&self) -> bool {
        let g = self.hub.inner.lock().unwrap();
        let Some(want) = g.by_rung.get(&self.pos.want) else {
            return false;
        };
        Some(*want) != self.pos.track && g.tracks[want].keyframe_after(self.pos.last).is_some()
    }

    /// The rung it reads now (None before its first keyframe).
    pub fn rung(&self) -> Option<usize> {
        let g = self.hub.inner.lock().unwrap();
        self.pos
            .track
            .and_then(|gen| g.tracks.get(&gen))
            .map(|t| t.rung)
    }

    /// Replaces `buf` with the next bytes (about `max_bytes`); None when nothing is new.
    pub fn fill(&mut self, buf: &mut Vec<u8>, max_bytes: usize) -> Option<Filled> {
        let batch = self.hub.read(&mut self.pos, self.max_lag, max_bytes);
        self.skips += u64::from(batch.skipped);
        let switched_to = batch.rung.filter(|_| batch.switched);
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
            switched_to,
            oldest,
        })
    }

    /// The consumer's lag behind live: how long its next unsent chunk has
    /// waited, and what waits outside the hub.
    pub fn lag(&self) -> Duration {
        self.hub_lag().saturating_add(self.pos.outside)
    }

    /// How long its next unsent chunk has waited in the hub.
    pub fn hub_lag(&self) -> Duration {
        self.hub.lag_of(&self.pos)
    }
}

impl Drop for Reader {
    fn drop(&mut self) {
        self.hub.leave(&self.pos);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::media::ts::tests::{packet, pat, pes_start, pmt};
    use crate::media::ts::Packet;

    const VIDEO: u16 = 0x100;
    /// 30 fps in 90 kHz ticks.
    const FRAME: u64 = 3000;

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

    fn hub() -> Arc<Hub> {
        Hub::new(Limits {
            keep_for: Duration::from_secs(60),
            ..Limits::default()
        })
    }

    /// Announces a track and sends its PAT/PMT, as ffmpeg does first.
    fn start(hub: &Hub, rung: usize, generation: u64) {
        hub.add_track(rung, generation);
        hub.push(generation, 0, &psi());
    }

    /// Frames `from..to` (frame numbers), a keyframe every `gop`.
    fn frames(hub: &Hub, generation: u64, from: u64, to: u64, gop: u64) {
        for n in from..to {
            hub.push(generation, 0, &frame(n * FRAME, n % gop == 0));
        }
    }

    /// Reads everything there is; returns the video PTS of the frames sent,
    /// in order, and whether any fill switched or skipped.
    fn drain(r: &mut Reader) -> (Vec<u64>, Vec<usize>, bool) {
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

    fn n(pts: &[u64]) -> Vec<u64> {
        pts.iter().map(|p| p / FRAME).collect()
    }

    #[test]
    fn a_new_reader_starts_at_the_newest_keyframe_with_psi() {
        let hub = hub();
        start(&hub, 0, 1);
        frames(&hub, 1, 0, 6, 3);
        let mut r = Reader::new(hub.clone(), 0, Duration::from_secs(10));
        let mut buf = Vec::new();
        r.fill(&mut buf, 1 << 20).unwrap();
        assert_eq!(Packet(&buf[..188]).pid(), 0, "PAT first");
        assert_eq!(Packet(&buf[188..376]).pid(), 0x1000, "then the PMT");
        frames(&hub, 1, 6, 7, 3);
        assert_eq!(n(&drain(&mut r).0), vec![6]);
        assert_eq!(r.rung(), Some(0));
        assert_eq!(hub.readers()[&0], 1);
        drop(r);
        assert_eq!(hub.readers()[&0], 0);
    }

    #[test]
    fn nothing_to_read_before_a_keyframe() {
        let hub = hub();
        start(&hub, 0, 1);
        hub.push(1, 0, &frame(0, false));
        let mut r = Reader::new(hub.clone(), 0, Duration::from_secs(1));
        assert!(r.fill(&mut Vec::new(), 1 << 20).is_none());
        assert_eq!(r.rung(), None);
    }

    #[test]
    fn progress_is_a_frame_with_a_new_timestamp_even_on_a_new_timeline() {
        let hub = hub();
        start(&hub, 0, 1);
        assert!(hub.push(1, 0, &frame(90_000, true)));
        assert!(!hub.push(1, 0, &psi()), "tables alone are no progress");
        assert!(
            !hub.push(1, 0, &frame(90_000, false)),
            "nor a repeated frame"
        );
        assert!(hub.push(1, 0, &frame(93_000, false)));
        // The encoder restarted on the camera's new timeline, near zero.
        assert!(hub.push(1, 1, &frame(3000, true)));
        assert!(!hub.push(9, 0, &frame(0, true)), "no such track");
    }

    #[test]
    fn a_reader_behind_skips_to_the_newest_keyframe() {
        let hub = hub();
        start(&hub, 0, 1);
        frames(&hub, 1, 0, 1, 4);
        let mut r = Reader::new(hub.clone(), 0, Duration::from_millis(50));
        drain(&mut r);
        frames(&hub, 1, 1, 10, 4);
        std::thread::sleep(Duration::from_millis(80));
        let (pts, _, skipped) = drain(&mut r);
        assert!(skipped);
        assert_eq!(n(&pts), vec![8, 9]);
        assert_eq!(r.skips, 1);
    }

    #[test]
    fn reads_are_bounded_in_size() {
        let hub = hub();
        start(&hub, 0, 1);
        frames(&hub, 1, 0, 10, 30);
        let mut r = Reader::new(hub.clone(), 0, Duration::from_secs(10));
        let mut buf = Vec::new();
        r.fill(&mut buf, 3 * 376).unwrap();
        assert!(buf.len() <= 3 * 376 + 376, "{} bytes", buf.len());
    }

    #[test]
    fn memory_is_bounded_by_bytes_over_all_tracks() {
        let hub = Hub::new(Limits {
            max_bytes: 20 * 376,
            ..Limits::default()
        });
        start(&hub, 0, 1);
        start(&hub, 1, 2);
        for i in 0..1000u64 {
            hub.push(1, 0, &frame(i * FRAME, i % 30 == 0));
            hub.push(2, 0, &frame(i * FRAME, i % 30 == 0));
        }
        assert!(hub.stats().buffered_bytes <= 20 * 376);
    }

    #[test]
    fn a_switch_at_the_targets_keyframe_has_no_gap_and_no_repeat() {
        let hub = hub();
        start(&hub, 0, 1);
        start(&hub, 1, 2);
        frames(&hub, 1, 0, 5, 30);
        let mut r = Reader::new(hub.clone(), 0, Duration::from_secs(10));
        let (first, _, _) = drain(&mut r);
        assert_eq!(n(&first), vec![0, 1, 2, 3, 4]);
        r.set_rung(1);
        // The target has its keyframes every 3 frames; the current track
        // goes on meanwhile.
        frames(&hub, 2, 0, 8, 3);
        frames(&hub, 1, 5, 8, 30);
        let (pts, switches, skipped) = drain(&mut r);
        assert_eq!(
            n(&pts),
            vec![5, 6, 7],
            "frames 5 from rung 0, then rung 1 from its keyframe 6"
        );
        assert_eq!(switches, vec![1]);
        assert!(!skipped);
        assert_eq!(r.rung(), Some(1));
        assert_eq!(hub.readers()[&1], 1);
        assert_eq!(hub.readers()[&0], 0);
    }

    #[test]
    fn a_target_ahead_of_the_current_track_waits_for_it() {
        let hub = hub();
        start(&hub, 0, 1);
        start(&hub, 1, 2);
        frames(&hub, 1, 0, 3, 30);
        let mut r = Reader::new(hub.clone(), 0, Duration::from_secs(10));
        drain(&mut r);
        r.set_rung(1);
        // The target (say, the camera's remux) is ahead: keyframe at 6 already there.
        frames(&hub, 2, 4, 9, 6);
        assert_eq!(
            n(&drain(&mut r).0),
            Vec::<u64>::new(),
            "the current track has nothing new"
        );
        frames(&hub, 1, 3, 6, 30);
        let (pts, switches, _) = drain(&mut r);
        assert_eq!(
            n(&pts),
            vec![3, 4, 5],
            "not yet: frame 6 of the current track is not there"
        );
        assert!(switches.is_empty());
        frames(&hub, 1, 6, 7, 30);
        let (pts, switches, _) = drain(&mut r);
        assert_eq!(n(&pts), vec![6, 7, 8], "the target from its keyframe 6");
        assert_eq!(switches, vec![1]);
    }

    #[test]
    fn a_reader_ahead_of_its_target_keeps_to_its_pace_and_switches_without_a_gap() {
        let hub = hub();
        start(&hub, 0, 1);
        start(&hub, 1, 2);
        // The current track (the camera's remux) is ahead of the target (an encoder).
        frames(&hub, 1, 0, 10, 30);
        frames(&hub, 2, 0, 4, 6);
        let mut r = Reader::new(hub.clone(), 0, Duration::from_secs(10));
        assert_eq!(n(&drain(&mut r).0), (0..10).collect::<Vec<_>>());
        r.set_rung(1);
        frames(&hub, 1, 10, 14, 30);
        // The target reaches frame 5: the reader holds at its pace (nothing past 5).
        frames(&hub, 2, 4, 6, 6);
        assert_eq!(n(&drain(&mut r).0), Vec::<u64>::new());
        // Now its keyframe 12 comes: the current track up to 11, then the target.
        frames(&hub, 2, 6, 13, 6);
        let (pts, switches, skipped) = drain(&mut r);
        assert_eq!(n(&pts), vec![10, 11, 12]);
        assert_eq!(switches, vec![1]);
        assert!(!skipped);
    }

    #[test]
    fn a_reader_behind_when_it_switches_goes_to_the_targets_newest_keyframe() {
        let hub = Hub::new(Limits {
            keep_for: Duration::from_secs(60),
            switch_catch_up: Duration::from_millis(30),
            ..Limits::default()
        });
        start(&hub, 0, 1);
        start(&hub, 1, 2);
        frames(&hub, 1, 0, 1, 30);
        let mut r = Reader::new(hub.clone(), 0, Duration::from_secs(10));
        drain(&mut r);
        frames(&hub, 1, 1, 20, 30);
        frames(&hub, 2, 0, 20, 5);
        std::thread::sleep(Duration::from_millis(50));
        r.set_rung(1);
        let (pts, switches, skipped) = drain(&mut r);
        assert_eq!(n(&pts), vec![15, 16, 17, 18, 19]);
        assert_eq!(switches, vec![1]);
        assert!(skipped);
    }

    #[test]
    fn a_cold_target_is_waited_for_on_the_current_track() {
        let hub = hub();
        start(&hub, 0, 1);
        frames(&hub, 1, 0, 3, 30);
        let mut r = Reader::new(hub.clone(), 0, Duration::from_secs(10));
        r.set_rung(2);
        frames(&hub, 1, 3, 5, 30);
        let (pts, switches, _) = drain(&mut r);
        assert_eq!(n(&pts), vec![0, 1, 2, 3, 4]);
        assert!(switches.is_empty());
        start(&hub, 2, 3);
        frames(&hub, 3, 5, 8, 5);
        frames(&hub, 1, 5, 8, 30);
        let (pts, switches, _) = drain(&mut r);
        assert_eq!(n(&pts), vec![5, 6, 7]);
        assert_eq!(switches, vec![2]);
    }

    #[test]
    fn a_new_encoder_for_the_same_rung_takes_its_readers_over() {
        let hub = hub();
        start(&hub, 0, 1);
        frames(&hub, 1, 0, 4, 30);
        let mut r = Reader::new(hub.clone(), 0, Duration::from_secs(10));
        drain(&mut r);
        // Re-encoded with new settings (a reload): generation 2 of rung 0.
        start(&hub, 0, 2);
        frames(&hub, 2, 4, 8, 2);
        frames(&hub, 1, 4, 8, 30);
        let (pts, switches, _) = drain(&mut r);
        assert_eq!(n(&pts), vec![4, 5, 6, 7]);
        assert_eq!(switches, vec![0]);
        assert_eq!(hub.track_readers(2), 1);
        assert_eq!(hub.track_readers(1), 0);
    }

    #[test]
    fn a_removed_track_sends_its_readers_to_their_rung() {
        let hub = hub();
        start(&hub, 0, 1);
        start(&hub, 1, 2);
        frames(&hub, 1, 0, 4, 30);
        frames(&hub, 2, 0, 4, 2);
        let mut r = Reader::new(hub.clone(), 0, Duration::from_secs(10));
        drain(&mut r);
        r.set_rung(1);
        hub.remove_track(1);
        frames(&hub, 2, 4, 6, 2);
        let (pts, switches, _) = drain(&mut r);
        assert_eq!(n(&pts), vec![4, 5]);
        assert_eq!(switches, vec![1]);
    }

    #[test]
    fn a_new_timeline_is_later_than_any_frame_of_the_old_one() {
        let hub = hub();
        start(&hub, 0, 1);
        start(&hub, 1, 2);
        frames(&hub, 1, 100, 103, 10);
        let mut r = Reader::new(hub.clone(), 0, Duration::from_secs(10));
        assert_eq!(n(&drain(&mut r).0), vec![100, 101, 102]);
        r.set_rung(1);
        // Both encoders restarted on the camera's new timeline (epoch 1), near zero.
        hub.push(2, 1, &frame(0, true));
        hub.push(1, 1, &frame(0, true));
        let (pts, switches, _) = drain(&mut r);
        assert_eq!(pts, vec![0]);
        assert_eq!(switches, vec![1]);
    }
}
