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

use crate::media::hls::{self, Dates, Missing, Playlist, Run, Which, Window};
use crate::media::ts::{avc_codec, pts_diff, Continuity, Demux, Kind, PACKET_LEN};
use bytes::Bytes;
use std::cmp::Ordering;
use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::sync::atomic::{self, AtomicU64};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};
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
    /// keyframe before it switches with a gap (at the start: see
    /// `Hub::set_max_hold`, which follows the ladder's keyframe intervals).
    pub max_hold: Duration,
    /// A reader this far behind live when it switches goes straight to the
    /// target's newest keyframe: a switch down is usually made because it fell
    /// behind, so its backlog at the old rate is dropped.
    pub switch_catch_up: Duration,
    /// HLS playlists list the segments that reached the hub within this; they
    /// stay servable while the ring holds them (`keep_for`, longer), so a
    /// player that read the playlist a moment ago still finds its first one.
    pub hls_list_for: Duration,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            // Long enough for HLS: a window of three segments or more (RFC
            // 8216 section 6.2.2) plus the time to fetch them.
            keep_for: Duration::from_secs(8),
            max_bytes: 16 << 20,
            max_hold: Duration::from_millis(1500),
            switch_catch_up: Duration::from_millis(300),
            hls_list_for: Duration::from_secs(6),
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
    /// The run since its newest keyframe, not yet an HLS segment.
    open: Option<Run>,
    /// `avc1.PPCCLL` from its first keyframe's SPS.
    codec: Option<String>,
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
            open: None,
            codec: None,
        }
    }

    /// Appends whole packets, a new chunk at every frame start. True when a
    /// frame with a new timestamp came (the encoder is making progress); the
    /// runs from keyframe to keyframe it completed go to `runs`.
    fn push(&mut self, packets: &[u8], epoch: u64, at: Instant, runs: &mut Vec<Run>) -> bool {
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
        let completed = self.follow_run(self.next_seq, data.len(), keyframe, pts, epoch, at);
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

    /// Follows the open run with chunk `seq`: a keyframe ends it (returned)
    /// and opens the next; a frame or a piece of one adds to it.
    fn follow_run(
        &mut self,
        seq: u64,
        len: usize,
        keyframe: bool,
        pts: Option<u64>,
        epoch: u64,
        at: Instant,
    ) -> Option<Run> {
        let Some(pts) = pts else {
            if let Some(run) = &mut self.open {
                run.bytes += len;
            }
            return None;
        };
        if !keyframe {
            if let Some(run) = &mut self.open {
                run.frames += 1;
                run.last_pts = pts;
                run.bytes += len;
            }
            return None;
        }
        let completed = self.open.take().map(|mut run| {
            run.end_chunk = seq;
            run.next = (epoch, pts);
            run
        });
        self.open = Some(Run {
            generation: 0, // set by the hub, which knows the track's number
            rung: self.rung,
            first_chunk: seq,
            end_chunk: seq,
            epoch,
            first_pts: pts,
            last_pts: pts,
            frames: 1,
            next: (epoch, pts),
            bytes: len,
            at,
            date_ms: 0, // dated by the hub when complete
        });
        completed
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
    hls: HlsState,
}

/// The HLS playlists (segment indexes: no video) and who asked for them.
#[derive(Default)]
struct HlsState {
    /// One per rung that ever had a track: numbers go on across its encoders.
    rungs: BTreeMap<usize, Playlist>,
    /// `/hls/live/`: the rung everyone is given.
    live: Playlist,
    /// The rung `live` follows.
    follow: usize,
    dates: Dates,
    /// When a playlist or segment of each rung was last asked for.
    asked: BTreeMap<usize, Instant>,
    live_asked: Option<Instant>,
    playlists_served: u64,
    segments_served: u64,
}

impl HlsState {
    fn playlist(&self, which: Which) -> Option<&Playlist> {
        match which {
            Which::Rung(r) => self.rungs.get(&r),
            Which::Live => Some(&self.live),
        }
    }

    /// Notes a request for `which`, reading `rung`: that rung is watched.
    fn asked(&mut self, which: Which, rung: Option<usize>, now: Instant) {
        if which == Which::Live {
            self.live_asked = Some(now);
        }
        if let Some(r) = rung {
            self.asked.insert(r, now);
        }
    }
}

/// One rung's HLS playlist, for the multivariant playlist and `/status`.
#[derive(Debug, Clone, Default, serde::Serialize, PartialEq)]
pub struct HlsRung {
    pub rung: usize,
    /// Its media playlist.
    pub playlist: String,
    /// Segments listed now, the first one's number, `#EXT-X-TARGETDURATION`.
    pub segments: usize,
    pub media_sequence: u64,
    pub target_duration_s: u64,
    /// `avc1.PPCCLL` from the stream's SPS.
    pub codec: Option<String>,
    /// The highest and the mean bit rate of the listed segments (transport
    /// stream included).
    pub peak_bps: u64,
    pub average_bps: u64,
    /// Since an HLS client last asked for it.
    pub last_request_age_ms: Option<u64>,
}

/// HLS figures for `/status`.
#[derive(Debug, Clone, Default, serde::Serialize, PartialEq)]
pub struct HlsStats {
    /// The multivariant playlist.
    pub playlist: &'static str,
    /// The playlist that follows the rung everyone is given, and that rung.
    pub live: HlsRung,
    /// Every running rung with segments.
    pub rungs: Vec<HlsRung>,
    pub playlists_served: u64,
    pub segments_served: u64,
}

/// The track `/hls/live` should list: the followed rung's, or while it has
/// no encoder (`max_encoders` reached, or starting), the nearest lower
/// running rung's, else the nearest one's (as a viewer would be given).
fn live_source(by_rung: &BTreeMap<usize, u64>, follow: usize) -> Option<u64> {
    by_rung
        .range(follow..)
        .next()
        .or_else(|| by_rung.iter().min_by_key(|(r, _)| r.abs_diff(follow)))
        .map(|(_, gen)| *gen)
}

/// Unix milliseconds of a moment on the monotonic clock.
fn unix_ms_of(at: Instant) -> u64 {
    let wall = SystemTime::now() - at.elapsed();
    wall.duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}

impl Inner {
    /// Dates the runs tracks completed and offers them to the playlists.
    fn list(&mut self, generation: u64, runs: Vec<Run>) {
        let hls = &mut self.hls;
        for mut run in runs {
            run.generation = generation;
            run.date_ms = hls
                .dates
                .date_ms(run.epoch, run.first_pts, unix_ms_of(run.at));
            let newest = self.by_rung.get(&run.rung).copied();
            hls.rungs.entry(run.rung).or_default().offer(&run, newest);
            hls.live.offer(&run, live_source(&self.by_rung, hls.follow));
        }
    }

    /// Forgets the segments whose chunks have left the ring.
    fn prune_segments(&mut self) {
        let tracks = &self.tracks;
        let hls = &mut self.hls;
        let available = |s: &hls::Segment| {
            tracks
                .get(&s.generation)
                .and_then(Track::front_seq)
                .is_some_and(|front| front <= s.first_chunk)
        };
        hls.live.prune(available);
        for p in hls.rungs.values_mut() {
            p.prune(available);
        }
    }

    /// What the HLS side shows of one playlist.
    fn hls_rung(&self, which: Which, w: Window) -> Option<HlsRung> {
        let p = self.hls.playlist(which)?;
        let (segments, media_sequence, target_duration_s) = p.summary(w)?;
        let newest = p.newest()?;
        let codec = self
            .tracks
            .get(&newest.generation)
            .and_then(|t| t.codec.clone());
        let asked = match which {
            Which::Rung(r) => self.hls.asked.get(&r).copied(),
            Which::Live => self.hls.live_asked,
        };
        Some(HlsRung {
            rung: newest.rung,
            playlist: hls::media_path(which),
            segments,
            media_sequence,
            target_duration_s,
            codec,
            peak_bps: p
                .listed(w)
                .map(hls::Segment::bits_per_second)
                .max()
                .unwrap_or(0),
            average_bps: {
                let (bytes, ms) = p.listed(w).fold((0, 0), |(b, m), s| {
                    (b + s.bytes as u64, m + s.duration_ms())
                });
                bytes * 8 * 1000 / ms.max(1)
            },
            last_request_age_ms: asked
                .map(|t| w.now.saturating_duration_since(t).as_millis() as u64),
        })
    }
}

pub struct Hub {
    inner: Mutex<Inner>,
    limits: Limits,
    /// `Limits::max_hold` as set now, in milliseconds.
    max_hold_ms: AtomicU64,
    newest: watch::Sender<u64>,
}

/// The hold before a gapless switch for a ladder whose longest keyframe
/// interval is `keyframe_interval_s`: the target's next keyframe comes within
/// one interval, plus half a second for one encoder running behind another;
/// never under the default.
pub fn switch_hold(keyframe_interval_s: f64) -> Duration {
    let default = Limits::default().max_hold;
    Duration::try_from_secs_f64(keyframe_interval_s + 0.5).map_or(default, |hold| hold.max(default))
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
            max_hold_ms: AtomicU64::new(limits.max_hold.as_millis() as u64),
            limits,
            newest: watch::channel(0).0,
        })
    }

    /// A new hold before gapless switches (the ladder's keyframe intervals changed).
    pub fn set_max_hold(&self, hold: Duration) {
        self.max_hold_ms
            .store(hold.as_millis() as u64, atomic::Ordering::Relaxed);
    }

    fn max_hold(&self) -> Duration {
        Duration::from_millis(self.max_hold_ms.load(atomic::Ordering::Relaxed))
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
        g.prune_segments();
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
        let mut runs = Vec::new();
        let progressed = t.push(packets, epoch, now, &mut runs);
        if !runs.is_empty() {
            g.list(generation, runs);
        }
        // Every track to its share, not just this one: a track added since
        // the others last grew shrinks their share.
        for t in g.tracks.values_mut() {
            t.evict(self.limits.keep_for, self.limits.max_bytes / tracks, now);
        }
        g.prune_segments();
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

    // --- HLS ----------------------------------------------------------------

    fn hls_window(&self, now: Instant) -> Window {
        Window {
            list_for: self.limits.hls_list_for,
            now,
        }
    }

    /// The rung `/hls/live/` follows from now on (it moves at that rung's
    /// next segment, with a discontinuity).
    pub fn hls_follow(&self, rung: usize) {
        self.inner.lock().unwrap().hls.follow = rung;
    }

    /// The rungs an HLS client read within `within`, and whether one read
    /// `/hls/live/`.
    pub fn hls_watched(&self, within: Duration) -> (BTreeSet<usize>, bool) {
        let g = self.inner.lock().unwrap();
        let now = Instant::now();
        let recent = |t: Instant| now.saturating_duration_since(t) <= within;
        let rungs = g
            .hls
            .asked
            .iter()
            .filter(|(_, t)| recent(**t))
            .map(|(r, _)| *r)
            .collect();
        (rungs, g.hls.live_asked.is_some_and(recent))
    }

    /// HLS figures: every running rung with segments listed, in ladder
    /// order, and the live playlist.
    pub fn hls_stats(&self) -> HlsStats {
        let g = self.inner.lock().unwrap();
        let w = self.hls_window(Instant::now());
        HlsStats {
            playlist: hls::MULTIVARIANT,
            live: g.hls_rung(Which::Live, w).unwrap_or_else(|| HlsRung {
                rung: g.hls.follow,
                playlist: hls::media_path(Which::Live),
                ..HlsRung::default()
            }),
            rungs: g
                .by_rung
                .keys()
                .filter_map(|r| g.hls_rung(Which::Rung(*r), w))
                .collect(),
            playlists_served: g.hls.playlists_served,
            segments_served: g.hls.segments_served,
        }
    }

    /// A media playlist's text, segment URIs relative to it: `Unknown` when
    /// the rung has no encoder running, `Empty` while nothing is listed.
    /// Counts as a request for the rung it reads.
    pub fn hls_playlist(&self, which: Which) -> Result<String, Missing> {
        let mut g = self.inner.lock().unwrap();
        if let Which::Rung(r) = which {
            g.by_rung.get(&r).ok_or(Missing::Unknown)?;
        }
        let now = Instant::now();
        let p = g.hls.playlist(which).ok_or(Missing::Empty)?;
        let text = p.render(self.hls_window(now), |n| format!("{n}.ts"));
        let rung = p.newest().map(|s| s.rung);
        g.hls.asked(which, rung, now);
        g.hls.playlists_served += u64::from(text.is_some());
        text.ok_or(Missing::Empty)
    }

    /// Segment `number` of a media playlist: the track's PAT/PMT, then its
    /// chunks from one keyframe to the next, as the ring holds them (no copy).
    /// Counts as a request for the rung it reads.
    pub fn hls_segment(&self, which: Which, number: u64) -> Result<Vec<Bytes>, Missing> {
        let mut g = self.inner.lock().unwrap();
        if let Which::Rung(r) = which {
            g.by_rung.get(&r).ok_or(Missing::Unknown)?;
        }
        let s = g.hls.playlist(which).ok_or(Missing::Unknown)?.get(number)?;
        let t = g.tracks.get(&s.generation).ok_or(Missing::Gone)?;
        if !t.front_seq().is_some_and(|front| front <= s.first_chunk) {
            return Err(Missing::Gone);
        }
        let mut parts = Vec::with_capacity(1 + s.end_chunk.saturating_sub(s.first_chunk) as usize);
        parts.push(t.psi.clone());
        for seq in s.first_chunk..s.end_chunk {
            parts.push(t.get(seq).ok_or(Missing::Gone)?.data.clone());
        }
        let rung = s.rung;
        g.hls.asked(which, Some(rung), Instant::now());
        g.hls.segments_served += 1;
        Ok(parts)
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
            // A step down because its link does not carry its rung: every
            // further frame of the old rung would only reach the viewer later
            // than the last, so it moves as one behind live does.
            let urgent = r.urgent && tt.rung > t.rung;
            let behind = urgent || lag > self.limits.switch_catch_up;
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
            if let Some((k_seq, Some(k_when))) = tt
                .keyframe_after(r.last)
                .filter(|_| !urgent)
                .map(|c| (c.seq, c.when()))
            {
                let next_frame = t
                    .ring
                    .iter()
                    .skip_while(|c| c.seq < r.next)
                    .find(|c| c.frame_start)
                    .and_then(|c| c.when());
                let reached = next_frame.is_some_and(|w| w >= k_when);
                let waited = r.hold_since.get_or_insert_with(Instant::now).elapsed();
                if reached || waited > self.max_hold() {
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
            // The hold is timed from the target's first frame: an encoder that
            // is still starting has not kept anyone waiting for its keyframes.
            let target_last = tt.ring.iter().rev().find_map(|c| c.when());
            let waited = match target_last {
                Some(_) => r.hold_since.get_or_insert_with(Instant::now).elapsed(),
                None => Duration::ZERO,
            };
            // An urgent step down waits with nothing more of the old rung (what
            // its socket holds drains meanwhile) until the target has a
            // keyframe past what it was sent.
            let hold_from = match urgent {
                true => r.last,
                false => target_last.filter(|_| !behind),
            };
            if let (Some(from), true, true) =
                (hold_from, target_last.is_some(), waited <= self.max_hold())
            {
                let until = Stamp {
                    pts: (from.pts + 1) & ((1 << 33) - 1),
                    ..from
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
    /// Its move to `want`, if down, is urgent (see `Reader::set_urgent`).
    urgent: bool,
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

    /// Whether a move down to the wanted rung is urgent: its link does not
    /// carry the rung it is on. It is then sent nothing more of that rung
    /// and moves to the target's newest keyframe once it has one past what
    /// it was sent (frames are skipped; none repeated). Otherwise a move is
    /// gapless, unless it is behind live.
    pub fn set_urgent(&mut self, urgent: bool) {
        self.pos.urgent = urgent;
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
    fn the_hold_is_timed_from_the_targets_first_frame_not_from_its_start() {
        let hub = Hub::new(Limits {
            keep_for: Duration::from_secs(60),
            max_hold: Duration::from_millis(40),
            ..Limits::default()
        });
        start(&hub, 0, 1);
        frames(&hub, 1, 0, 10, 30);
        let mut r = Reader::new(hub.clone(), 0, Duration::from_secs(10));
        drain(&mut r);
        // The target's encoder is starting: announced, no frame yet, for
        // longer than max_hold, while the reader reads on.
        start(&hub, 1, 2);
        r.set_rung(1);
        frames(&hub, 1, 10, 12, 30);
        drain(&mut r);
        std::thread::sleep(Duration::from_millis(60));
        drain(&mut r);
        // Its first frames come behind the reader (more latency): the reader
        // keeps to its pace and moves at its next keyframe, without a gap.
        frames(&hub, 2, 8, 11, 6);
        frames(&hub, 1, 12, 14, 30);
        assert_eq!(n(&drain(&mut r).0), Vec::<u64>::new());
        frames(&hub, 2, 11, 13, 6);
        let (pts, switches, skipped) = drain(&mut r);
        assert_eq!(n(&pts), vec![12]);
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
    fn an_urgent_step_down_sends_nothing_more_of_the_old_rung_and_moves_to_the_newest_keyframe() {
        let hub = hub();
        start(&hub, 0, 1);
        start(&hub, 1, 2);
        frames(&hub, 1, 0, 10, 30);
        frames(&hub, 2, 0, 8, 5);
        let mut r = Reader::new(hub.clone(), 0, Duration::from_secs(10));
        assert_eq!(n(&drain(&mut r).0), (0..10).collect::<Vec<_>>());
        // The link does not carry rung 0: down to rung 1, urgently. The
        // target has no keyframe past frame 9 yet: nothing more is sent.
        r.set_rung(1);
        r.set_urgent(true);
        frames(&hub, 1, 10, 16, 30);
        frames(&hub, 2, 8, 10, 5);
        assert_eq!(n(&drain(&mut r).0), Vec::<u64>::new());
        // Its keyframes 10 and 15 come: straight to the newest.
        frames(&hub, 2, 10, 16, 5);
        let (pts, switches, skipped) = drain(&mut r);
        assert_eq!(n(&pts), vec![15]);
        assert_eq!(switches, vec![1]);
        assert!(skipped, "frames 10 to 14 were never sent");
        // Back up (not urgent, whatever it is told): gapless as ever.
        r.set_rung(0);
        frames(&hub, 1, 16, 31, 30);
        frames(&hub, 2, 16, 31, 5);
        let (pts, switches, skipped) = drain(&mut r);
        assert_eq!(n(&pts), (16..31).collect::<Vec<_>>());
        assert_eq!(switches, vec![0]);
        assert!(!skipped);
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

    // --- HLS ------------------------------------------------------------------

    /// The segment numbers a playlist lists, and whether each follows a discontinuity.
    fn listed(hub: &Hub, which: Which) -> Vec<(u64, bool)> {
        let Ok(text) = hub.hls_playlist(which) else {
            return Vec::new();
        };
        let mut out = Vec::new();
        let mut disc = false;
        for l in text.lines() {
            if l == "#EXT-X-DISCONTINUITY" {
                disc = true;
            } else if let Some(n) = l.strip_suffix(".ts") {
                out.push((n.parse().unwrap(), disc));
                disc = false;
            }
        }
        out
    }

    /// The video PTS (in frames) in a served segment, and whether it starts with PAT/PMT.
    fn segment_frames(parts: &[Bytes]) -> (Vec<u64>, bool) {
        let bytes: Vec<u8> = parts.iter().flat_map(|b| b.iter().copied()).collect();
        assert_eq!(bytes.len() % PACKET_LEN, 0, "whole packets");
        let psi_first =
            Packet(&bytes[..188]).pid() == 0 && Packet(&bytes[188..376]).pid() == 0x1000;
        let mut demux = Demux::default();
        let pts = bytes
            .chunks_exact(PACKET_LEN)
            .filter_map(|p| match demux.classify(p) {
                Kind::Video { pts: Some(t), .. } => Some(t / FRAME),
                _ => None,
            })
            .collect();
        (pts, psi_first)
    }

    #[test]
    fn hls_segments_run_from_keyframe_to_keyframe_out_of_the_ring() {
        let hub = hub();
        start(&hub, 0, 1);
        assert_eq!(
            hub.hls_playlist(Which::Rung(0)),
            Err(Missing::Empty),
            "nothing complete yet"
        );
        frames(&hub, 1, 0, 10, 3);
        // Keyframes at 0, 3, 6, 9: three complete segments, the fourth open.
        assert_eq!(
            listed(&hub, Which::Rung(0)),
            [(0, false), (1, false), (2, false)]
        );
        let text = hub.hls_playlist(Which::Rung(0)).unwrap();
        assert!(
            text.contains("#EXT-X-TARGETDURATION:1\n#EXT-X-MEDIA-SEQUENCE:0\n"),
            "{text}"
        );
        assert!(text.contains("#EXTINF:0.100,\n0.ts\n"), "{text}");
        let (pts, psi_first) = segment_frames(&hub.hls_segment(Which::Rung(0), 1).unwrap());
        assert_eq!(pts, [3, 4, 5]);
        assert!(psi_first, "PAT and PMT first");
        assert_eq!(
            hub.hls_segment(Which::Rung(0), 3).err(),
            Some(Missing::Unknown),
            "still open"
        );
        assert_eq!(
            hub.hls_segment(Which::Rung(1), 0).err(),
            Some(Missing::Unknown),
            "no such rung"
        );
        assert_eq!(hub.hls_playlist(Which::Rung(1)), Err(Missing::Unknown));
        let stats = hub.hls_stats();
        assert_eq!(
            (
                stats.rungs.len(),
                stats.rungs[0].segments,
                stats.segments_served
            ),
            (1, 3, 1)
        );
        assert!(hub.hls_watched(Duration::from_secs(1)).0.contains(&0));
    }

    #[test]
    fn hls_segments_leave_with_the_ring() {
        let hub = Hub::new(Limits {
            max_bytes: 20 * 376,
            ..Limits::default()
        });
        start(&hub, 0, 1);
        frames(&hub, 1, 0, 40, 3);
        let listed = listed(&hub, Which::Rung(0));
        let first = listed.first().unwrap().0;
        assert!(first > 0, "the oldest have left the ring: {listed:?}");
        assert_eq!(
            hub.hls_segment(Which::Rung(0), first - 1).err(),
            Some(Missing::Gone)
        );
        assert!(hub.hls_segment(Which::Rung(0), first).is_ok());
    }

    #[test]
    fn hls_numbers_go_on_across_encoders_of_a_rung() {
        let hub = hub();
        start(&hub, 0, 1);
        frames(&hub, 1, 0, 7, 3);
        assert_eq!(listed(&hub, Which::Rung(0)), [(0, false), (1, false)]);
        // The encoder is replaced (a reload): generation 2, same rung, same timeline.
        start(&hub, 0, 2);
        frames(&hub, 2, 6, 13, 3);
        frames(&hub, 1, 7, 13, 3);
        hub.remove_track(1);
        assert_eq!(
            listed(&hub, Which::Rung(0)),
            [(2, false), (3, false)],
            "generation 1's segments left with it"
        );
        let text = hub.hls_playlist(Which::Rung(0)).unwrap();
        assert!(
            text.contains("#EXT-X-MEDIA-SEQUENCE:2\n#EXT-X-DISCONTINUITY-SEQUENCE:1\n"),
            "2 starts at frame 6 after a discontinuity, now the first listed: {text}"
        );
        let (pts, _) = segment_frames(&hub.hls_segment(Which::Rung(0), 2).unwrap());
        assert_eq!(pts, [6, 7, 8]);
        assert_eq!(
            hub.hls_segment(Which::Rung(0), 1).err(),
            Some(Missing::Gone)
        );
    }

    #[test]
    fn hls_live_follows_the_rung_it_is_told_to() {
        let hub = hub();
        start(&hub, 0, 1);
        start(&hub, 1, 2);
        hub.hls_follow(0);
        let both = |from: u64, to: u64| {
            for n in from..to {
                hub.push(1, 0, &frame(n * FRAME, n % 6 == 0));
                hub.push(2, 0, &frame(n * FRAME, n % 6 == 0));
            }
        };
        both(0, 13);
        hub.hls_follow(1);
        both(13, 25);
        // Rung 0's 0-5, 6-11, and 12-17 (done before rung 1's); rung 1's
        // 12-17 would repeat it, so rung 1 from 18-23 on.
        assert_eq!(
            listed(&hub, Which::Live),
            [(0, false), (1, false), (2, false), (3, true)]
        );
        let (pts, _) = segment_frames(&hub.hls_segment(Which::Live, 3).unwrap());
        assert_eq!(pts, (18..24).collect::<Vec<_>>());
        assert_eq!(hub.hls_stats().live.rung, 1);
        let (rungs, live) = hub.hls_watched(Duration::from_secs(1));
        assert!(live && rungs.contains(&1));
    }

    #[test]
    fn hls_live_lists_the_nearest_running_rung_while_the_followed_one_has_none() {
        let hub = hub();
        start(&hub, 0, 1);
        start(&hub, 2, 2);
        hub.hls_follow(1);
        for n in 0..7 {
            hub.push(1, 0, &frame(n * FRAME, n % 3 == 0));
            hub.push(2, 0, &frame(n * FRAME, n % 3 == 0));
        }
        // Rung 1 has no encoder (max_encoders, say): the lower one, rung 2.
        assert_eq!(hub.hls_stats().live.rung, 2);
        hub.remove_track(2);
        frames(&hub, 1, 7, 13, 3);
        assert_eq!(hub.hls_stats().live.rung, 0, "else the nearest");
    }

    #[test]
    fn the_hold_covers_the_longest_keyframe_interval() {
        assert_eq!(switch_hold(0.5), Limits::default().max_hold);
        assert_eq!(switch_hold(1.0), Limits::default().max_hold);
        assert_eq!(switch_hold(2.0), Duration::from_millis(2500));
        assert_eq!(switch_hold(f64::NAN), Limits::default().max_hold);
    }
}
