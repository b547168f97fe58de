//! The HLS cut: every run of a track from one keyframe to the next, offered
//! to its rung's playlist and to `/hls/live/` (the rung everyone is given);
//! playlists rendered and segments served as the ring's own `Bytes`, gone
//! with them. `media::hls` decides what is listed and writes the text.

use super::hub::{Hub, Inner};
use super::track::Track;
use crate::media::hls::{self, Dates, Missing, Playlist, Run, Which, Window};
use bytes::Bytes;
use std::collections::{BTreeMap, BTreeSet};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

/// A track's run since its newest keyframe, not yet an HLS segment.
#[derive(Debug)]
pub(super) struct RunCut {
    /// The track's rung, named in every run.
    rung: usize,
    open: Option<Run>,
}

impl RunCut {
    pub(super) fn new(rung: usize) -> RunCut {
        RunCut { rung, open: None }
    }

    /// Follows the open run with chunk `seq`: a keyframe ends it (returned)
    /// and opens the next; a frame or a piece of one adds to it.
    pub(super) fn follow(
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
}

/// The HLS playlists (segment indexes: no video) and who asked for them.
#[derive(Default)]
pub(super) struct HlsState {
    /// One per rung that ever had a track: numbers go on across its encoders.
    rungs: BTreeMap<usize, Playlist>,
    /// `/hls/live/`: the rung everyone is given.
    live: Playlist,
    /// The rung `live` follows.
    pub(super) follow: usize,
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
    pub(super) fn list(&mut self, generation: u64, runs: Vec<Run>) {
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
    pub(super) fn prune_segments(&mut self) {
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

impl Hub {
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
}

#[cfg(test)]
mod tests {
    use super::super::testkit::*;
    use super::*;
    use crate::media::relay::Limits;
    use crate::media::ts::{Demux, Kind, Packet, PACKET_LEN};

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
}
