//! What is let in from the camera's UDP port, and what counts as live video.
//!
//! Pure: datagrams and instants in, verdicts out. Anyone on the access point
//! can send to the camera port, so a datagram is admitted only when it comes
//! from the camera (its configured address, or else the one sender whose video
//! is live) and is whole MPEG-TS packets. The source is live while video
//! (H.264, or HEVC from HERO13 and later) with advancing timestamps arrives,
//! not while any byte does. A jump of the
//! camera's timestamps (it restarted its stream) or video returning after a
//! stall starts a new timeline, on which the encoders must be restarted.

use crate::media::picture::{Picture, PictureStatus};
use crate::media::ts::{pts_diff, Demux, Kind, PACKET_LEN, SYNC};
use std::net::IpAddr;
use std::time::{Duration, Instant};

/// 90 kHz ticks per second.
const TICKS: i64 = 90_000;
/// Timestamps that fall back further than this are a new timeline. B-frames
/// step back by a few frames only.
const MAX_BACKWARDS: i64 = TICKS;
/// Timestamps that run ahead of the wall clock by more than this are a new timeline.
const MAX_AHEAD: i64 = 3 * TICKS;

/// Why a datagram was not admitted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refused {
    /// Not from the camera.
    Foreign,
    /// Not whole MPEG-TS packets.
    Malformed,
}

/// What became of one datagram.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    Refused(Refused),
    Admitted {
        /// It carried the start of a video frame with an advancing timestamp.
        video: bool,
        /// It starts a new timeline; the reason, for the log.
        new_timeline: Option<String>,
        /// It holds the start of a keyframe of the camera's video.
        keyframe: bool,
    },
}

/// The gate's memory: the camera, its video PID and its timeline.
#[derive(Debug, Clone)]
pub struct Gate {
    /// The configured camera address; None: whoever sends live video.
    camera: Option<IpAddr>,
    /// The camera `kind = "auto"` found (camera::control): while set, admitted alone, as a
    /// configured address is.
    found: Option<IpAddr>,
    stall_after: Duration,
    /// The sender whose video was admitted last.
    sender: Option<IpAddr>,
    /// The sender of the last admitted datagram, whose tables `demux` follows.
    parsing: Option<IpAddr>,
    demux: Demux,
    /// Highest timestamp seen on this timeline, and when.
    high: Option<(u64, Instant)>,
    last_video: Option<Instant>,
    timelines: u64,
    /// The newest PAT and PMT packets: a decoder started at a keyframe needs them first.
    pat: Option<Vec<u8>>,
    pmt: Option<Vec<u8>>,
    /// The admitted stream's codec, size, frame rate and bitrate.
    picture: Picture,
}

impl Gate {
    pub fn new(camera: Option<IpAddr>, stall_after: Duration) -> Gate {
        Gate {
            camera,
            found: None,
            stall_after,
            sender: None,
            parsing: None,
            demux: Demux::default(),
            high: None,
            last_video: None,
            timelines: 0,
            pat: None,
            pmt: None,
            picture: Picture::default(),
        }
    }

    /// What the admitted stream is: codec, picture size, frame rate, bitrate.
    pub fn picture(&self, now: Instant) -> PictureStatus {
        self.picture.status(now)
    }

    /// When live video last arrived.
    pub fn last_video(&self) -> Option<Instant> {
        self.last_video
    }

    /// Timelines started so far (the first video starts the first).
    pub fn timelines(&self) -> u64 {
        self.timelines
    }

    /// The newest PAT and PMT of the admitted stream, as whole packets.
    pub fn psi(&self) -> Vec<u8> {
        [self.pat.as_deref(), self.pmt.as_deref()]
            .into_iter()
            .flatten()
            .flatten()
            .copied()
            .collect()
    }

    /// The sender the gate currently accepts video from.
    pub fn sender(&self) -> Option<IpAddr> {
        self.camera.or(self.found).or(self.sender)
    }

    /// Admits only `found` from now on (None: back to the sender of live video), unless an
    /// address is configured.
    pub fn follow(&mut self, found: Option<IpAddr>) {
        self.found = found;
    }

    fn live(&self, now: Instant) -> bool {
        self.last_video
            .is_some_and(|t| now.saturating_duration_since(t) <= self.stall_after)
    }

    /// Judges one datagram from `from`, received at `now`.
    pub fn admit(&mut self, from: IpAddr, datagram: &[u8], now: Instant) -> Verdict {
        match self.camera.or(self.found) {
            Some(camera) if camera != from => return Verdict::Refused(Refused::Foreign),
            // Without a configured address, the sender of live video holds the
            // port until its video stalls.
            None if self.sender.is_some_and(|s| s != from) && self.live(now) => {
                return Verdict::Refused(Refused::Foreign)
            }
            _ => {}
        }
        let whole_packets = !datagram.is_empty()
            && datagram.len() % PACKET_LEN == 0
            && datagram.chunks_exact(PACKET_LEN).all(|p| p[0] == SYNC);
        if !whole_packets {
            return Verdict::Refused(Refused::Malformed);
        }
        if self.parsing != Some(from) {
            // A different sender: its tables and timestamps start afresh.
            self.parsing = Some(from);
            self.demux = Demux::default();
            self.high = None;
            self.pat = None;
            self.pmt = None;
            self.picture.reset();
        }
        self.picture.datagram(datagram.len(), now);
        let mut video = false;
        let mut has_keyframe = false;
        let mut new_timeline = None;
        for pkt in datagram.chunks_exact(PACKET_LEN) {
            let kind = self.demux.classify(pkt);
            let (codec, pid) = (self.demux.codec(), self.demux.video_pid());
            self.picture.packet(pkt, kind, codec, pid, now);
            let (keyframe, pts) = match kind {
                Kind::Video { keyframe, pts } => (keyframe, pts),
                Kind::Pat => {
                    self.pat = Some(pkt.to_vec());
                    continue;
                }
                Kind::Pmt => {
                    self.pmt = Some(pkt.to_vec());
                    continue;
                }
                Kind::Other => continue,
            };
            has_keyframe |= keyframe;
            let Some(pts) = pts else { continue };
            match self.timeline(pts, now) {
                Step::Same { advanced } => video |= advanced,
                Step::New(why) => {
                    self.picture.new_timeline();
                    video = true;
                    new_timeline = Some(why);
                }
            }
        }
        if video {
            let returned = self
                .last_video
                .map(|t| now.saturating_duration_since(t))
                .filter(|gap| *gap > self.stall_after);
            if self.last_video.is_none() {
                self.timelines += 1;
            } else if let Some(gap) = returned {
                new_timeline.get_or_insert_with(|| {
                    format!("video returned after {:.1} s without", gap.as_secs_f64())
                });
            }
            if new_timeline.is_some() {
                self.timelines += 1;
            }
            self.last_video = Some(now);
            self.sender = Some(from);
        }
        Verdict::Admitted {
            video,
            new_timeline,
            keyframe: has_keyframe,
        }
    }

    /// Places a timestamp on the current timeline, or starts a new one.
    fn timeline(&mut self, pts: u64, now: Instant) -> Step {
        let Some((high, at)) = self.high else {
            self.high = Some((pts, now));
            return Step::Same { advanced: true };
        };
        let ahead = pts_diff(pts, high);
        let wall = (now.saturating_duration_since(at).as_secs_f64() * TICKS as f64) as i64;
        if ahead < -MAX_BACKWARDS || ahead > wall + MAX_AHEAD {
            self.high = Some((pts, now));
            let secs = ahead as f64 / TICKS as f64;
            return Step::New(format!(
                "the camera's timestamps jumped {} {:.1} s",
                if ahead < 0 { "back" } else { "ahead" },
                secs.abs()
            ));
        }
        if ahead > 0 {
            self.high = Some((pts, now));
        }
        Step::Same {
            advanced: ahead > 0,
        }
    }
}

enum Step {
    Same { advanced: bool },
    New(String),
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::media::ts::tests::{pat, pes_start, pmt};

    const VIDEO: u16 = 0x100;
    const CAMERA: &str = "10.5.5.9";
    const STRANGER: &str = "192.168.4.7";

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    fn psi() -> Vec<u8> {
        [pat(0x1000), pmt(0x1000, VIDEO)].concat()
    }

    fn frame(pts: u64, key: bool) -> Vec<u8> {
        pes_start(VIDEO, key, pts, if key { 5 } else { 1 })
    }

    /// A gate that has seen the tables and one frame at `pts` from `who`.
    fn started(camera: Option<&str>, who: &str, t0: Instant, pts: u64) -> Gate {
        let mut g = Gate::new(camera.map(ip), Duration::from_secs(3));
        assert!(matches!(
            g.admit(ip(who), &psi(), t0),
            Verdict::Admitted { video: false, .. }
        ));
        g.admit(ip(who), &frame(pts, true), t0);
        assert_eq!(g.psi(), psi(), "the tables are kept for a joining decoder");
        g
    }

    fn at(t0: Instant, secs: f64) -> Instant {
        t0 + Duration::from_secs_f64(secs)
    }

    #[test]
    fn hevc_from_the_camera_is_live_video_with_its_keyframes() {
        use crate::media::ts::tests::{hevc_pes_start, pmt_of};
        use crate::media::ts::VideoCodec;
        let t0 = Instant::now();
        let mut g = Gate::new(Some(ip(CAMERA)), Duration::from_secs(3));
        g.admit(
            ip(CAMERA),
            &[pat(0x1000), pmt_of(0x1000, VIDEO, 0x24)].concat(),
            t0,
        );
        // An IDR_W_RADL (19), then a trailing picture (1).
        assert_eq!(
            g.admit(ip(CAMERA), &hevc_pes_start(VIDEO, 0, 19), t0),
            Verdict::Admitted {
                video: true,
                new_timeline: None,
                keyframe: true
            }
        );
        assert_eq!(
            g.admit(ip(CAMERA), &hevc_pes_start(VIDEO, 3000, 1), at(t0, 0.03)),
            Verdict::Admitted {
                video: true,
                new_timeline: None,
                keyframe: false
            }
        );
        assert_eq!(g.last_video(), Some(at(t0, 0.03)));
        assert_eq!(g.picture(at(t0, 0.03)).codec, Some(VideoCodec::Hevc));
    }

    #[test]
    fn only_the_configured_camera_is_admitted() {
        let t0 = Instant::now();
        let mut g = started(Some(CAMERA), CAMERA, t0, 0);
        assert_eq!(
            g.admit(ip(STRANGER), &frame(3000, true), at(t0, 0.1)),
            Verdict::Refused(Refused::Foreign)
        );
        // Even while the camera is silent.
        assert_eq!(
            g.admit(ip(STRANGER), &frame(3000, true), at(t0, 60.0)),
            Verdict::Refused(Refused::Foreign)
        );
        assert_eq!(g.sender(), Some(ip(CAMERA)));
    }

    #[test]
    fn the_camera_auto_found_is_admitted_alone_until_it_is_lost() {
        let t0 = Instant::now();
        let mut g = started(None, CAMERA, t0, 0);
        g.follow(Some(ip(CAMERA)));
        // Silent for a minute: still nobody else's picture.
        assert_eq!(
            g.admit(ip(STRANGER), &frame(3000, true), at(t0, 60.0)),
            Verdict::Refused(Refused::Foreign)
        );
        assert_eq!(g.sender(), Some(ip(CAMERA)));
        // Lost: back to the sender of live video.
        g.follow(None);
        g.admit(ip(STRANGER), &psi(), at(t0, 61.0));
        assert!(matches!(
            g.admit(ip(STRANGER), &frame(0, true), at(t0, 61.1)),
            Verdict::Admitted { video: true, .. }
        ));
    }

    #[test]
    fn without_an_address_the_live_sender_holds_the_port_until_it_stalls() {
        let t0 = Instant::now();
        let mut g = started(None, CAMERA, t0, 0);
        assert_eq!(
            g.admit(ip(STRANGER), &frame(0, true), at(t0, 1.0)),
            Verdict::Refused(Refused::Foreign)
        );
        // Stalled: another sender may take over, on a new timeline.
        g.admit(ip(STRANGER), &psi(), at(t0, 5.0));
        match g.admit(ip(STRANGER), &frame(0, true), at(t0, 5.1)) {
            Verdict::Admitted {
                video: true,
                new_timeline: Some(why),
                ..
            } => assert!(why.contains("returned"), "{why}"),
            v => panic!("{v:?}"),
        }
        assert_eq!(g.sender(), Some(ip(STRANGER)));
    }

    #[test]
    fn bytes_that_are_not_whole_packets_are_refused() {
        let t0 = Instant::now();
        let mut g = started(Some(CAMERA), CAMERA, t0, 0);
        for bad in [vec![], vec![0x47; 100], vec![0u8; 188], vec![0x47; 189]] {
            assert_eq!(
                g.admit(ip(CAMERA), &bad, t0),
                Verdict::Refused(Refused::Malformed),
                "{} bytes",
                bad.len()
            );
        }
    }

    #[test]
    fn liveness_needs_video_with_advancing_timestamps() {
        let t0 = Instant::now();
        let mut g = started(Some(CAMERA), CAMERA, t0, 90_000);
        let seen = g.last_video();
        // Tables and a repeated timestamp keep nothing alive.
        g.admit(ip(CAMERA), &psi(), at(t0, 1.0));
        let v = g.admit(ip(CAMERA), &frame(90_000, false), at(t0, 2.0));
        assert!(matches!(v, Verdict::Admitted { video: false, .. }), "{v:?}");
        assert_eq!(g.last_video(), seen);
        // A B-frame stepping back a little is not a new timeline, nor live.
        g.admit(ip(CAMERA), &frame(93_000, false), at(t0, 2.1));
        let v = g.admit(ip(CAMERA), &frame(90_000 - 6000, false), at(t0, 2.2));
        assert!(
            matches!(
                v,
                Verdict::Admitted {
                    new_timeline: None,
                    ..
                }
            ),
            "{v:?}"
        );
        assert_eq!(g.last_video(), Some(at(t0, 2.1)));
        assert_eq!(g.timelines(), 1);
    }

    #[test]
    fn timestamps_jumping_back_start_a_new_timeline() {
        let t0 = Instant::now();
        // The camera streamed for 60 s, paused 1 s and restarted near zero.
        let mut g = started(Some(CAMERA), CAMERA, t0, 60 * 90_000);
        match g.admit(ip(CAMERA), &frame(126_000, true), at(t0, 1.0)) {
            Verdict::Admitted {
                video: true,
                new_timeline: Some(why),
                keyframe: true,
            } => assert!(why.contains("back 58.6 s"), "{why}"),
            v => panic!("{v:?}"),
        }
        assert_eq!(g.timelines(), 2);
        // And the new timeline continues normally.
        let v = g.admit(ip(CAMERA), &frame(129_000, false), at(t0, 1.03));
        assert!(
            matches!(
                v,
                Verdict::Admitted {
                    video: true,
                    new_timeline: None,
                    keyframe: false
                }
            ),
            "{v:?}"
        );
    }

    #[test]
    fn timestamps_running_far_ahead_of_the_clock_start_a_new_timeline() {
        let t0 = Instant::now();
        let mut g = started(Some(CAMERA), CAMERA, t0, 0);
        // 1 s later, 1 s ahead: the same timeline.
        let v = g.admit(ip(CAMERA), &frame(90_000, false), at(t0, 1.0));
        assert!(
            matches!(
                v,
                Verdict::Admitted {
                    new_timeline: None,
                    ..
                }
            ),
            "{v:?}"
        );
        // 0.1 s later, 20 s ahead: a new one.
        let v = g.admit(ip(CAMERA), &frame(21 * 90_000, true), at(t0, 1.1));
        assert!(
            matches!(&v, Verdict::Admitted { new_timeline: Some(w), .. } if w.contains("ahead")),
            "{v:?}"
        );
    }

    #[test]
    fn the_33_bit_wrap_is_not_a_new_timeline() {
        let t0 = Instant::now();
        let wrap = 1u64 << 33;
        let mut g = started(Some(CAMERA), CAMERA, t0, wrap - 1500);
        let v = g.admit(ip(CAMERA), &frame(1500, false), at(t0, 0.033));
        assert!(
            matches!(
                v,
                Verdict::Admitted {
                    video: true,
                    new_timeline: None,
                    ..
                }
            ),
            "{v:?}"
        );
    }

    #[test]
    fn video_after_a_stall_is_a_new_timeline_even_when_timestamps_continue() {
        let t0 = Instant::now();
        let mut g = started(Some(CAMERA), CAMERA, t0, 0);
        let v = g.admit(ip(CAMERA), &frame(10 * 90_000, true), at(t0, 10.0));
        assert!(
            matches!(&v, Verdict::Admitted { new_timeline: Some(w), .. } if w.contains("returned after 10.0 s")),
            "{v:?}"
        );
    }
}
