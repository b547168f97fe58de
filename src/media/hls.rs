//! HLS from the hub (pure): which keyframe-to-keyframe runs of the hub's
//! tracks become the segments of which playlist, their numbers, durations,
//! dates and discontinuities, and the playlists' text (RFC 8216).
//!
//! A segment is a run of a track's chunks from one keyframe to the next,
//! served from the ring as it is (with the track's PAT/PMT first): nothing
//! here holds video, only where it is. A playlist lists the segments of one
//! source track at a time: the newest encoder of its rung (`/hls/<rung>/`),
//! or the track of the rung everyone is given (`/hls/live/`); when its source
//! changes, or the camera's timeline does, the next segment carries a
//! discontinuity. Numbers are per playlist, never reused.
//!
//! No I/O: the hub offers completed runs under its lock and asks for text.

use crate::media::ts::pts_diff;
use std::collections::VecDeque;
use std::fmt::Write;
use std::time::{Duration, Instant};

/// PTS ticks per second.
pub const HZ: u64 = 90_000;
/// Segments one playlist keeps track of at most, whatever the ring holds.
pub const MAX_SEGMENTS: usize = 256;
/// A run longer than this (in PTS) is not believed: its frames' own span is used.
const MAX_RUN: u64 = 60 * HZ;
/// Two segments meet when the second starts this close to where the first
/// ended; a segment of a new source that starts this much before the end of
/// what was listed would show pictures again, and is left out.
const JOIN: i64 = (HZ / 10) as i64;
/// Between a run's last frame and the keyframe after it, more than this plus
/// a few frame intervals is a gap (the encoder restarted, the camera paused).
const GAP: i64 = (HZ / 10) as i64;
const PTS_MASK: u64 = (1 << 33) - 1;

/// A run of one track from a keyframe to the next, as the hub saw it.
#[derive(Debug, Clone, PartialEq)]
pub struct Run {
    /// The track (encoder generation) and its rung.
    pub generation: u64,
    pub rung: usize,
    /// Chunk sequence numbers: its keyframe, and the next keyframe (not in it).
    pub first_chunk: u64,
    pub end_chunk: u64,
    /// The camera's timeline of its frames.
    pub epoch: u64,
    /// PTS of its first frame (the keyframe) and of its last frame.
    pub first_pts: u64,
    pub last_pts: u64,
    /// Frames in it.
    pub frames: u32,
    /// Timeline and PTS of the keyframe that ended it.
    pub next: (u64, u64),
    pub bytes: usize,
    /// When its first chunk reached the hub.
    pub at: Instant,
    /// The wall-clock date of its first frame, Unix milliseconds.
    pub date_ms: u64,
}

impl Run {
    /// Its duration in PTS ticks, and whether a gap in time follows it.
    /// Normally the distance to the next keyframe; when that keyframe is on
    /// another timeline, far away, or after a pause, the span of its own
    /// frames plus one frame interval.
    pub fn duration(&self) -> (u64, bool) {
        let span = pts_diff(self.last_pts, self.first_pts).max(0);
        let frame = (self.frames >= 2).then(|| span / i64::from(self.frames - 1));
        let own = span + frame.unwrap_or((HZ / 30) as i64);
        let (next_epoch, next_pts) = self.next;
        let to_next = pts_diff(next_pts, self.first_pts);
        let believable = next_epoch == self.epoch && to_next > 0 && to_next as u64 <= MAX_RUN;
        if !believable {
            return (own.max(1) as u64, true);
        }
        let after_last = pts_diff(next_pts, self.last_pts);
        if frame.is_some_and(|f| after_last > 4 * f + GAP) {
            return (own.max(1) as u64, true);
        }
        (to_next as u64, false)
    }
}

/// One listed segment: where its bytes are and how it is described.
#[derive(Debug, Clone, PartialEq)]
pub struct Segment {
    pub number: u64,
    pub generation: u64,
    pub rung: usize,
    pub first_chunk: u64,
    pub end_chunk: u64,
    pub epoch: u64,
    pub pts: u64,
    /// PTS ticks.
    pub duration: u64,
    pub bytes: usize,
    /// Not a continuation of the segment before it (new source, new camera
    /// timeline, a gap in time).
    pub discontinuity: bool,
    pub at: Instant,
    pub date_ms: u64,
}

impl Segment {
    pub fn duration_ms(&self) -> u64 {
        (self.duration + 45) / 90
    }

    /// Its bit rate, bits per second.
    pub fn bits_per_second(&self) -> u64 {
        (self.bytes as u64 * 8 * 1000) / self.duration_ms().max(1)
    }
}

/// Why a segment cannot be served.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Missing {
    /// It was listed once and has left the window (410).
    Gone,
    /// No such segment or playlist (yet): 404.
    Unknown,
    /// The playlist exists but lists nothing yet (503: try again).
    Empty,
}

/// One media playlist's segments, in order, numbered without gaps.
#[derive(Debug, Default)]
pub struct Playlist {
    next_number: u64,
    /// The track whose segments it lists now.
    source: Option<u64>,
    segments: VecDeque<Segment>,
    /// Discontinuities among the segments no longer kept.
    dropped_discontinuities: u64,
    /// Timeline and PTS where the newest segment ends.
    end: Option<(u64, u64)>,
    /// The next segment comes from a new source.
    changed: bool,
}

/// What `Playlist::render` lists and how.
#[derive(Debug, Clone, Copy)]
pub struct Window {
    /// Segments that reached the hub longer ago than this are not listed
    /// (they stay servable while the ring holds them).
    pub list_for: Duration,
    pub now: Instant,
}

impl Playlist {
    /// Offers a completed run; `wanted` is the track this playlist should list
    /// (None: keep to its source). A run of the source is listed; a run of
    /// `wanted` makes it the source from there. True when it was listed.
    pub fn offer(&mut self, run: &Run, wanted: Option<u64>) -> bool {
        if self.source != Some(run.generation) {
            if wanted != Some(run.generation) {
                return false;
            }
            self.changed |= self.source.is_some();
            self.source = Some(run.generation);
        }
        let (duration, _) = run.duration();
        let discontinuity = match self.end {
            None => self.changed,
            Some((epoch, pts)) => {
                let offset = pts_diff(run.first_pts, pts);
                if self.changed && epoch == run.epoch && offset < -JOIN {
                    // A new encoder's first runs may go back before what was
                    // listed: wait until it catches up.
                    return false;
                }
                self.changed || epoch != run.epoch || offset.abs() > JOIN
            }
        };
        self.segments.push_back(Segment {
            number: self.next_number,
            generation: run.generation,
            rung: run.rung,
            first_chunk: run.first_chunk,
            end_chunk: run.end_chunk,
            epoch: run.epoch,
            pts: run.first_pts,
            duration,
            bytes: run.bytes,
            discontinuity,
            at: run.at,
            date_ms: run.date_ms,
        });
        self.next_number += 1;
        // After a gap (its own frames' span) the next one cannot meet this
        // end: it is a discontinuity.
        self.end = Some((run.epoch, (run.first_pts + duration) & PTS_MASK));
        self.changed = false;
        while self.segments.len() > MAX_SEGMENTS {
            self.drop_front();
        }
        true
    }

    fn drop_front(&mut self) {
        if let Some(s) = self.segments.pop_front() {
            self.dropped_discontinuities += u64::from(s.discontinuity);
        }
    }

    /// Forgets the oldest segments while `available` says they are gone.
    pub fn prune(&mut self, available: impl Fn(&Segment) -> bool) {
        while self.segments.front().is_some_and(|s| !available(s)) {
            self.drop_front();
        }
    }

    /// The track it lists now.
    pub fn source(&self) -> Option<u64> {
        self.source
    }

    /// Segment `number`, if it is still kept.
    pub fn get(&self, number: u64) -> Result<&Segment, Missing> {
        let Some(front) = self.segments.front() else {
            return Err(if number < self.next_number {
                Missing::Gone
            } else {
                Missing::Unknown
            });
        };
        match number.checked_sub(front.number) {
            None => Err(Missing::Gone),
            Some(i) => self.segments.get(i as usize).ok_or(Missing::Unknown),
        }
    }

    /// The segments listed now: from the first within the window on.
    pub fn listed(&self, w: Window) -> impl Iterator<Item = &Segment> {
        let skip = self
            .segments
            .iter()
            .position(|s| w.now.saturating_duration_since(s.at) <= w.list_for)
            .unwrap_or(self.segments.len());
        self.segments.iter().skip(skip)
    }

    /// The newest segment listed, if any.
    pub fn newest(&self) -> Option<&Segment> {
        self.segments.back()
    }

    /// Figures for `/status`: segments listed, the first one's number, the
    /// target duration.
    pub fn summary(&self, w: Window) -> Option<(usize, u64, u64)> {
        let listed: Vec<&Segment> = self.listed(w).collect();
        let first = listed.first()?;
        Some((listed.len(), first.number, target_duration(&listed)))
    }

    /// The media playlist, segment URIs made by `uri` from their numbers;
    /// None while no segment is listed.
    pub fn render(&self, w: Window, uri: impl Fn(u64) -> String) -> Option<String> {
        let skip = self
            .segments
            .iter()
            .position(|s| w.now.saturating_duration_since(s.at) <= w.list_for)?;
        let listed: Vec<&Segment> = self.segments.iter().skip(skip).collect();
        let first = listed.first()?;
        // The first listed segment's discontinuity number: every discontinuity
        // before it, its own included (its tag is not written: nothing precedes it).
        let before = self
            .segments
            .iter()
            .take(skip + 1)
            .filter(|s| s.discontinuity)
            .count() as u64;
        let mut out = String::with_capacity(128 + 96 * listed.len());
        let _ = write!(
            out,
            "#EXTM3U\n#EXT-X-VERSION:3\n#EXT-X-TARGETDURATION:{}\n#EXT-X-MEDIA-SEQUENCE:{}\n#EXT-X-DISCONTINUITY-SEQUENCE:{}\n",
            target_duration(&listed),
            first.number,
            self.dropped_discontinuities + before
        );
        for (i, s) in listed.iter().enumerate() {
            if s.discontinuity && i > 0 {
                out.push_str("#EXT-X-DISCONTINUITY\n");
            }
            let ms = s.duration_ms();
            let _ = write!(
                out,
                "#EXT-X-PROGRAM-DATE-TIME:{}\n#EXTINF:{}.{:03},\n{}\n",
                date(s.date_ms),
                ms / 1000,
                ms % 1000,
                uri(s.number)
            );
        }
        Some(out)
    }
}

/// `#EXT-X-TARGETDURATION`: the longest segment, rounded up to whole seconds
/// (from its duration in milliseconds, as written), at least 1.
pub fn target_duration(segments: &[&Segment]) -> u64 {
    let ms = segments.iter().map(|s| s.duration_ms()).max().unwrap_or(0);
    ms.div_ceil(1000).max(1)
}

/// One variant of the multivariant playlist.
#[derive(Debug, Clone, PartialEq)]
pub struct Variant {
    pub uri: String,
    /// Peak bits per second (`BANDWIDTH`).
    pub bandwidth: u64,
    /// The rung's bit rate, bits per second (`AVERAGE-BANDWIDTH`).
    pub average: u64,
    pub width: u32,
    pub height: u32,
    pub fps: u32,
    /// `avc1.PPCCLL`, when known from the stream's SPS.
    pub codecs: Option<String>,
}

/// The multivariant playlist: one `#EXT-X-STREAM-INF` per variant, in order
/// (a player starts with the first).
pub fn multivariant(variants: &[Variant]) -> String {
    let mut out = String::from("#EXTM3U\n#EXT-X-VERSION:3\n");
    for v in variants {
        let _ = write!(
            out,
            "#EXT-X-STREAM-INF:BANDWIDTH={},AVERAGE-BANDWIDTH={},RESOLUTION={}x{},FRAME-RATE={}.000",
            v.bandwidth.max(v.average).max(1),
            v.average.max(1),
            v.width,
            v.height,
            v.fps
        );
        if let Some(c) = &v.codecs {
            let _ = write!(out, ",CODECS=\"{c}\"");
        }
        let _ = write!(out, "\n{}\n", v.uri);
    }
    out
}

/// Which media playlist.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Which {
    /// One rung's newest encoder.
    Rung(usize),
    /// The rung everyone is given (pinned, or the shared policy's, else the start rung).
    Live,
}

impl Which {
    /// Its path segment under `/hls/`.
    pub fn name(self) -> String {
        match self {
            Which::Rung(r) => r.to_string(),
            Which::Live => "live".to_string(),
        }
    }
}

/// An HLS request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Route {
    /// `/live.m3u8`
    Multivariant,
    /// `/hls/<which>/index.m3u8`
    Media(Which),
    /// `/hls/<which>/<number>.ts`
    Segment(Which, u64),
}

/// The multivariant playlist's path.
pub const MULTIVARIANT: &str = "/live.m3u8";

/// A media playlist's path.
pub fn media_path(which: Which) -> String {
    format!("/hls/{}/index.m3u8", which.name())
}

/// Reads an HLS path: exactly the forms above, numbers in canonical decimal
/// (no sign, no leading zero, no overflow). Anything else is not HLS.
pub fn route(path: &str) -> Option<Route> {
    if path == MULTIVARIANT {
        return Some(Route::Multivariant);
    }
    let rest = path.strip_prefix("/hls/")?;
    let (which, file) = rest.split_once('/')?;
    let which = match which {
        "live" => Which::Live,
        n => Which::Rung(usize::try_from(number(n, 3)?).ok()?),
    };
    if file == "index.m3u8" {
        return Some(Route::Media(which));
    }
    let n = number(file.strip_suffix(".ts")?, 20)?;
    Some(Route::Segment(which, n))
}

/// A canonical decimal of at most `max_digits` digits.
fn number(s: &str, max_digits: usize) -> Option<u64> {
    let canonical = !s.is_empty()
        && s.len() <= max_digits
        && s.bytes().all(|b| b.is_ascii_digit())
        && (s == "0" || !s.starts_with('0'));
    canonical.then(|| s.parse().ok()).flatten()
}

/// Unix milliseconds as `YYYY-MM-DDThh:mm:ss.sssZ` (ISO 8601, UTC).
pub fn date(unix_ms: u64) -> String {
    let c = crate::clock::civil((unix_ms / 1000) as i64);
    format!(
        "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}.{:03}Z",
        c.year,
        c.month,
        c.day,
        c.hour,
        c.minute,
        c.second,
        unix_ms % 1000
    )
}

/// Wall-clock dates for PTS: one anchor per camera timeline, shared by every
/// track, so the same frame has the same date in every rung's playlist (a
/// player that changes variants lines them up by date).
#[derive(Debug, Default)]
pub struct Dates {
    /// Timeline, PTS and its date in ticks since the Unix epoch.
    anchor: Option<(u64, u64, u128)>,
}

impl Dates {
    /// The date (Unix ms) of the frame at `pts` on timeline `epoch`, which
    /// reached the hub at `arrival_ms`. The first frame of a newer timeline
    /// anchors it; an older timeline's frames get their arrival time.
    pub fn date_ms(&mut self, epoch: u64, pts: u64, arrival_ms: u64) -> u64 {
        match self.anchor {
            Some((e, a_pts, a_ticks)) if e == epoch => {
                let ticks = a_ticks as i128 + i128::from(pts_diff(pts, a_pts));
                let ticks = ticks.max(0) as u128;
                // Re-anchored at every frame, so the difference never nears a wrap.
                self.anchor = Some((e, pts, ticks));
                (ticks * 1000 / u128::from(HZ)) as u64
            }
            Some((e, _, _)) if e > epoch => arrival_ms,
            _ => {
                self.anchor = Some((epoch, pts, u128::from(arrival_ms) * u128::from(HZ) / 1000));
                arrival_ms
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const S: u64 = HZ;

    /// A one-second run (30 frames) of track `gen` starting at `sec` seconds
    /// of timeline `epoch`, chunks numbered by the second (30 a second).
    fn run(gen: u64, rung: usize, epoch: u64, sec: u64, at: Instant) -> Run {
        Run {
            generation: gen,
            rung,
            first_chunk: sec * 30,
            end_chunk: sec * 30 + 30,
            epoch,
            first_pts: sec * S,
            last_pts: sec * S + 29 * 3000,
            frames: 30,
            next: (epoch, (sec + 1) * S),
            bytes: 75_000,
            at: at + Duration::from_secs(sec),
            date_ms: 1_700_000_000_000 + sec * 1000,
        }
    }

    fn window(now: Instant) -> Window {
        Window {
            list_for: Duration::from_secs(6),
            now,
        }
    }

    fn uri(n: u64) -> String {
        format!("{n}.ts")
    }

    /// The tags of a playlist that matter here, one string per line kind.
    fn lines(text: &str, prefix: &str) -> Vec<String> {
        text.lines()
            .filter(|l| l.starts_with(prefix))
            .map(|l| l[prefix.len()..].to_string())
            .collect()
    }

    #[test]
    fn runs_last_until_the_next_keyframe() {
        let t = Instant::now();
        assert_eq!(run(1, 0, 0, 5, t).duration(), (S, false));
        let mut r = run(1, 0, 0, 5, t);
        r.next = (0, 5 * S + 3003 * 30);
        assert_eq!(r.duration(), (90_090, false), "29.97 fps: 1.001 s");
    }

    #[test]
    fn a_run_before_a_pause_or_a_new_timeline_lasts_as_long_as_its_frames() {
        let t = Instant::now();
        let mut r = run(1, 0, 0, 5, t);
        r.next = (0, 9 * S); // the encoder restarted: 3 s without frames
        assert_eq!(r.duration(), (30 * 3000, true));
        r.next = (1, 100); // the camera's new timeline
        assert_eq!(r.duration(), (30 * 3000, true));
        r.next = (0, 4 * S); // backwards
        assert_eq!(r.duration(), (30 * 3000, true));
        r.next = (0, 5 * S + 200 * S); // absurd
        assert!(r.duration().1);
        // One frame a second (fps = 1): its only frame lasts until the next keyframe.
        let mut one = run(1, 0, 0, 5, t);
        one.last_pts = one.first_pts;
        one.frames = 1;
        assert_eq!(one.duration(), (S, false));
    }

    #[test]
    fn numbers_increase_and_the_text_lists_the_window() {
        let t = Instant::now();
        let mut p = Playlist::default();
        for sec in 0..10 {
            assert!(p.offer(&run(1, 0, 0, sec, t), Some(1)));
        }
        let now = t + Duration::from_secs(10);
        let text = p.render(window(now), uri).unwrap();
        assert!(text.starts_with("#EXTM3U\n#EXT-X-VERSION:3\n#EXT-X-TARGETDURATION:1\n"));
        // Segments 4..=9 reached the hub within the last 6 s.
        assert_eq!(lines(&text, "#EXT-X-MEDIA-SEQUENCE:"), ["4"]);
        assert_eq!(lines(&text, "#EXT-X-DISCONTINUITY-SEQUENCE:"), ["0"]);
        assert_eq!(lines(&text, "#EXTINF:"), vec!["1.000,"; 6]);
        let uris: Vec<&str> = text.lines().filter(|l| l.ends_with(".ts")).collect();
        assert_eq!(uris, ["4.ts", "5.ts", "6.ts", "7.ts", "8.ts", "9.ts"]);
        assert_eq!(
            lines(&text, "#EXT-X-PROGRAM-DATE-TIME:")[0],
            "2023-11-14T22:13:24.000Z"
        );
        assert!(!text.contains("#EXT-X-DISCONTINUITY\n"));
        assert_eq!(p.summary(window(now)), Some((6, 4, 1)));
    }

    #[test]
    fn the_target_duration_is_the_longest_segment_rounded_up() {
        let t = Instant::now();
        let mut p = Playlist::default();
        p.offer(&run(1, 0, 0, 0, t), Some(1));
        let mut long = run(1, 0, 0, 1, t);
        long.next = (0, S + 3003 * 30);
        p.offer(&long, Some(1));
        let text = p.render(window(t), uri).unwrap();
        assert_eq!(lines(&text, "#EXT-X-TARGETDURATION:"), ["2"]);
        assert_eq!(lines(&text, "#EXTINF:"), ["1.000,", "1.001,"]);
        assert_eq!(target_duration(&[]), 1, "never 0");
    }

    #[test]
    fn the_window_slides_and_old_segments_are_gone() {
        let t = Instant::now();
        let mut p = Playlist::default();
        for sec in 0..20 {
            p.offer(&run(1, 0, 0, sec, t), Some(1));
        }
        // The ring lost everything before chunk 300 (second 10).
        p.prune(|s| s.first_chunk >= 300);
        assert_eq!(p.get(9), Err(Missing::Gone));
        assert_eq!(p.get(0), Err(Missing::Gone));
        assert_eq!(p.get(10).unwrap().first_chunk, 300);
        assert_eq!(p.get(19).unwrap().end_chunk, 600);
        assert_eq!(p.get(20), Err(Missing::Unknown), "not yet");
        assert_eq!(p.get(u64::MAX), Err(Missing::Unknown));
        let text = p.render(window(t + Duration::from_secs(30)), uri);
        assert_eq!(text, None, "nothing within the window");
        let text = p.render(window(t + Duration::from_secs(20)), uri).unwrap();
        assert_eq!(lines(&text, "#EXT-X-MEDIA-SEQUENCE:"), ["14"]);
        // Everything gone: numbers are still not reused.
        p.prune(|_| false);
        assert_eq!(p.get(19), Err(Missing::Gone));
        assert!(p.offer(&run(1, 0, 0, 20, t), Some(1)));
        assert_eq!(p.get(20).unwrap().pts, 20 * S);
    }

    #[test]
    fn a_new_generation_takes_over_with_a_discontinuity_and_without_repeating_pictures() {
        let t = Instant::now();
        let mut p = Playlist::default();
        for sec in 0..5 {
            p.offer(&run(1, 0, 0, sec, t), Some(1));
        }
        // Generation 2 of the rung starts (a reload): until its first run,
        // generation 1 goes on being listed.
        assert!(p.offer(&run(1, 0, 0, 5, t), Some(2)));
        // Its first run repeats second 5, already listed: left out.
        assert!(!p.offer(&run(2, 0, 0, 5, t), Some(2)));
        assert_eq!(p.source(), Some(2));
        // The old generation is no longer listed.
        assert!(!p.offer(&run(1, 0, 0, 6, t), Some(2)));
        assert!(p.offer(&run(2, 0, 0, 6, t), Some(2)));
        assert!(p.offer(&run(2, 0, 0, 7, t), Some(2)));
        let text = p.render(window(t + Duration::from_secs(6)), uri).unwrap();
        let body: Vec<&str> = text
            .lines()
            .filter(|l| l.ends_with(".ts") || *l == "#EXT-X-DISCONTINUITY")
            .collect();
        assert_eq!(
            body,
            [
                "0.ts",
                "1.ts",
                "2.ts",
                "3.ts",
                "4.ts",
                "5.ts",
                "#EXT-X-DISCONTINUITY",
                "6.ts",
                "7.ts"
            ]
        );
        assert_eq!(p.get(6).unwrap().generation, 2);
        assert!(!p.get(7).unwrap().discontinuity, "continuous again");
    }

    #[test]
    fn the_discontinuity_sequence_counts_the_tags_that_left() {
        let t = Instant::now();
        let mut p = Playlist::default();
        p.offer(&run(1, 0, 0, 0, t), Some(1));
        p.offer(&run(1, 0, 0, 1, t), Some(1));
        // The camera restarted its stream: a new timeline, near zero.
        p.offer(&run(1, 0, 1, 2, t), Some(1));
        p.offer(&run(1, 0, 1, 3, t), Some(1));
        // Then a new encoder of the rung.
        p.offer(&run(3, 0, 1, 4, t), Some(3));
        p.offer(&run(3, 0, 1, 5, t), Some(3));
        let seq = |p: &Playlist, now: u64| {
            let text = p.render(window(t + Duration::from_secs(now)), uri).unwrap();
            (
                lines(&text, "#EXT-X-MEDIA-SEQUENCE:")[0].clone(),
                lines(&text, "#EXT-X-DISCONTINUITY-SEQUENCE:")[0].clone(),
                text.matches("#EXT-X-DISCONTINUITY\n").count(),
            )
        };
        assert_eq!(seq(&p, 6), ("0".into(), "0".into(), 2));
        assert_eq!(
            seq(&p, 8),
            ("2".into(), "1".into(), 1),
            "segment 2 starts it: its tag is counted"
        );
        assert_eq!(seq(&p, 9), ("3".into(), "1".into(), 1));
        assert_eq!(seq(&p, 10), ("4".into(), "2".into(), 0));
        // Pruned segments count the same way.
        p.prune(|s| s.number >= 3);
        assert_eq!(seq(&p, 9), ("3".into(), "1".into(), 1));
        p.prune(|s| s.number >= 5);
        assert_eq!(seq(&p, 10), ("5".into(), "2".into(), 0));
    }

    #[test]
    fn a_pause_in_one_track_is_a_discontinuity() {
        let t = Instant::now();
        let mut p = Playlist::default();
        let mut before = run(1, 0, 0, 0, t);
        before.next = (0, 5 * S); // the encoder died after frame 29; the next keyframe came 4 s later
        p.offer(&before, Some(1));
        p.offer(&run(1, 0, 0, 5, t), Some(1));
        assert_eq!(p.get(0).unwrap().duration, 30 * 3000);
        assert!(p.get(1).unwrap().discontinuity);
    }

    #[test]
    fn a_followed_rung_change_switches_sources_only_when_wanted() {
        let t = Instant::now();
        let mut p = Playlist::default();
        // Rung 1 runs too, but only rung 0's track (generation 1) is wanted.
        p.offer(&run(1, 0, 0, 0, t), Some(1));
        assert!(!p.offer(&run(2, 1, 0, 0, t), Some(1)));
        p.offer(&run(1, 0, 0, 1, t), Some(1));
        // Now rung 1 (generation 2) is wanted; its next run starts where rung 0's ended.
        assert!(
            !p.offer(&run(2, 1, 0, 1, t), Some(2)),
            "it would repeat second 1"
        );
        assert!(p.offer(&run(2, 1, 0, 2, t), Some(2)));
        let s = p.get(2).unwrap();
        assert_eq!((s.rung, s.discontinuity), (1, true));
        // A wanted track gone (None): the source goes on.
        assert!(p.offer(&run(2, 1, 0, 3, t), None));
    }

    #[test]
    fn it_keeps_at_most_max_segments() {
        let t = Instant::now();
        let mut p = Playlist::default();
        for sec in 0..(MAX_SEGMENTS as u64 + 50) {
            let mut r = run(1, 0, 0, sec, t);
            if sec == 10 {
                r.epoch = 0;
                r.first_pts += 30 * S; // a jump: a discontinuity, later dropped
            }
            p.offer(&r, Some(1));
        }
        assert_eq!(p.segments.len(), MAX_SEGMENTS);
        assert_eq!(p.get(49), Err(Missing::Gone));
        assert!(p.get(50).is_ok());
        assert_eq!(p.dropped_discontinuities, 2, "to the jump and back");
    }

    #[test]
    fn the_multivariant_names_each_variant() {
        let text = multivariant(&[
            Variant {
                uri: "/hls/0/index.m3u8".into(),
                bandwidth: 2_900_000,
                average: 2_500_000,
                width: 1280,
                height: 720,
                fps: 30,
                codecs: Some("avc1.4d401f".into()),
            },
            Variant {
                uri: "/hls/2/index.m3u8".into(),
                bandwidth: 0,
                average: 800_000,
                width: 640,
                height: 360,
                fps: 30,
                codecs: None,
            },
        ]);
        assert_eq!(
            text,
            "#EXTM3U\n#EXT-X-VERSION:3\n\
             #EXT-X-STREAM-INF:BANDWIDTH=2900000,AVERAGE-BANDWIDTH=2500000,RESOLUTION=1280x720,FRAME-RATE=30.000,CODECS=\"avc1.4d401f\"\n\
             /hls/0/index.m3u8\n\
             #EXT-X-STREAM-INF:BANDWIDTH=800000,AVERAGE-BANDWIDTH=800000,RESOLUTION=640x360,FRAME-RATE=30.000\n\
             /hls/2/index.m3u8\n"
        );
    }

    #[test]
    fn routes_are_exact_and_numbers_canonical() {
        assert_eq!(route("/live.m3u8"), Some(Route::Multivariant));
        assert_eq!(
            route("/hls/0/index.m3u8"),
            Some(Route::Media(Which::Rung(0)))
        );
        assert_eq!(
            route("/hls/live/index.m3u8"),
            Some(Route::Media(Which::Live))
        );
        assert_eq!(
            route("/hls/3/17.ts"),
            Some(Route::Segment(Which::Rung(3), 17))
        );
        assert_eq!(
            route("/hls/live/18446744073709551615.ts"),
            Some(Route::Segment(Which::Live, u64::MAX))
        );
        for bad in [
            "/hls/0/18446744073709551616.ts",
            "/hls/0/99999999999999999999999.ts",
            "/hls/0/-1.ts",
            "/hls/0/+1.ts",
            "/hls/0/01.ts",
            "/hls/00/1.ts",
            "/hls/1000/1.ts",
            "/hls/0/1.ts/",
            "/hls/0/.ts",
            "/hls/0/1.m3u8",
            "/hls/0/../index.m3u8",
            "/hls/../live.m3u8",
            "/hls/%30/index.m3u8",
            "/hls/0/1 .ts",
            "/hls//index.m3u8",
            "/hls/0",
            "/hls/",
            "/hls/LIVE/index.m3u8",
            "/live.m3u8/",
            "/hls/0/index.m3u8/x",
            "/hls/٣/1.ts",
        ] {
            assert_eq!(route(bad), None, "{bad}");
        }
    }

    #[test]
    fn dates_are_utc_iso_8601() {
        assert_eq!(date(0), "1970-01-01T00:00:00.000Z");
        assert_eq!(date(951_782_400_123), "2000-02-29T00:00:00.123Z");
        assert_eq!(date(1_798_761_599_999), "2026-12-31T23:59:59.999Z");
        assert_eq!(date(4_107_542_400_000), "2100-03-01T00:00:00.000Z");
    }

    #[test]
    fn dates_follow_the_pts_on_one_timeline_alike_for_every_track() {
        let mut d = Dates::default();
        assert_eq!(d.date_ms(0, 10 * S, 1_000_000), 1_000_000);
        // Another track's frame one second later, arriving late: dated by its PTS.
        assert_eq!(d.date_ms(0, 11 * S, 1_000_900), 1_001_000);
        assert_eq!(d.date_ms(0, 10 * S + 3000, 1_002_000), 1_000_033);
        // Across the 33-bit wrap.
        let mut w = Dates::default();
        w.date_ms(0, PTS_MASK - S + 1, 5_000_000);
        assert_eq!(w.date_ms(0, S, 5_000_000), 5_002_000);
        // A new timeline anchors anew; a late frame of the old one gets its arrival time.
        assert_eq!(d.date_ms(1, 0, 2_000_000), 2_000_000);
        assert_eq!(d.date_ms(0, 12 * S, 2_000_100), 2_000_100);
        assert_eq!(d.date_ms(1, S, 0), 2_001_000);
    }
}
