//! One consumer's place in the hub (a viewer, a push): where it is, what it
//! is sent next, and how it moves to the rung it is told to: gapless at the
//! target's keyframe, straight to the newest keyframe when it is behind or
//! the step down is urgent. Its bytes leave as continuous MPEG-TS.

use super::hub::{Hub, Inner};
use super::track::{After, Chunk, Stamp};
use crate::media::ts::Continuity;
use bytes::Bytes;
use std::sync::Arc;
use std::time::{Duration, Instant};

impl Hub {
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
    let at = g
        .tracks
        .get(&to)
        .and_then(|t| t.get(seq))
        .and_then(|c| c.when());
    log::debug!(
        "hub: reader moves from track {:?} to {to} at chunk {seq} ({:?}; last sent {:?}, want rung {})",
        r.track,
        at.map(|s| s.pts),
        r.last.map(|s| s.pts),
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
    use super::super::testkit::*;
    use super::*;
    use crate::media::relay::Limits;
    use crate::media::ts::Packet;

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
}
