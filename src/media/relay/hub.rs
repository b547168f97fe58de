//! The hub itself: the tracks of every rung (one per encoder), which one each
//! rung's readers should be on, the sizing that bounds them, and their
//! figures. Tracks are fed here; readers (`reader`) and the HLS cut
//! (`hls_cut`) read them under the same lock.

use super::hls_cut::HlsState;
use super::track::Track;
use std::collections::BTreeMap;
use std::sync::atomic::{self, AtomicU64};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::sync::watch;

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

#[derive(Default)]
pub(super) struct Inner {
    pub(super) tracks: BTreeMap<u64, Track>,
    /// The track each rung's readers should be on (the newest encoder of that rung).
    pub(super) by_rung: BTreeMap<usize, u64>,
    pub(super) hls: HlsState,
}

pub struct Hub {
    pub(super) inner: Mutex<Inner>,
    pub(super) limits: Limits,
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

    pub(super) fn max_hold(&self) -> Duration {
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
}

#[cfg(test)]
mod tests {
    use super::super::testkit::*;
    use super::*;

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
    fn the_hold_covers_the_longest_keyframe_interval() {
        assert_eq!(switch_hold(0.5), Limits::default().max_hold);
        assert_eq!(switch_hold(1.0), Limits::default().max_hold);
        assert_eq!(switch_hold(2.0), Duration::from_millis(2500));
        assert_eq!(switch_hold(f64::NAN), Limits::default().max_hold);
    }
}
