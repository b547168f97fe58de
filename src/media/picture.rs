//! What the camera sends, measured from its stream: the codec (from the PMT),
//! the picture size (from the H.264 SPS at each keyframe), the frame rate
//! (from the timestamps) and the bitrate (from the bytes). A passthrough rung
//! that does not state these takes them from here.
//!
//! Pure: packets, sizes and instants in, figures out. Memory is bounded: the
//! windows hold at most `MAX_ENTRIES` entries each.

use crate::media::sps::h264_picture_size;
use crate::media::ts::{first_pes_bytes, pts_diff, Kind, VideoCodec, PACKET_LEN};
use serde::Serialize;
use std::collections::VecDeque;
use std::time::{Duration, Instant};

/// Frame rate and bitrate are measured over this much of the newest stream.
pub const WINDOW: Duration = Duration::from_secs(4);
/// Figures are given once this much of the stream was seen.
pub const MIN_SPAN: Duration = Duration::from_secs(2);
/// Frames or datagrams kept per window (a 240 fps camera for 4 s is 960).
const MAX_ENTRIES: usize = 4096;
/// Packets of a keyframe's PES read for its SPS.
const SPS_PACKETS: usize = 4;

/// The camera's picture, as far as it is known.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct PictureStatus {
    /// "h264" or "hevc", once the PMT named it.
    pub codec: Option<VideoCodec>,
    /// From the newest H.264 SPS (HEVC's is not read: no rung shows it as it is).
    pub width: Option<u32>,
    pub height: Option<u32>,
    /// Frames per second over the newest `WINDOW`, from the timestamps.
    pub fps: Option<f64>,
    /// kbit/s of the camera's MPEG-TS (video, audio, tables) over the newest `WINDOW`.
    pub bitrate_kbps: Option<u32>,
}

/// Measures one sender's stream; `reset` when another sender or nothing came.
#[derive(Debug, Clone, Default)]
pub struct Picture {
    codec: Option<VideoCodec>,
    size: Option<(u32, u32)>,
    /// Frame starts: when, and their PTS.
    frames: VecDeque<(Instant, u64)>,
    /// Admitted datagrams: when, and their length.
    datagrams: VecDeque<(Instant, usize)>,
    window_bytes: usize,
    /// The packets of the keyframe whose SPS is being read, and its PID.
    keyframe: Option<(u16, Vec<u8>)>,
}

impl Picture {
    /// Forgets everything (a new sender).
    pub fn reset(&mut self) {
        *self = Picture::default();
    }

    /// The camera's timestamps jumped: frames before and after do not compare.
    pub fn new_timeline(&mut self) {
        self.frames.clear();
    }

    /// One admitted datagram of `len` bytes, received at `now`.
    pub fn datagram(&mut self, len: usize, now: Instant) {
        self.datagrams.push_back((now, len));
        self.window_bytes += len;
        self.expire(now);
    }

    /// One packet of it, as the demuxer classified it; `codec` and
    /// `video_pid` are the demuxer's after it.
    pub fn packet(
        &mut self,
        pkt: &[u8],
        kind: Kind,
        codec: Option<VideoCodec>,
        video_pid: Option<u16>,
        now: Instant,
    ) {
        self.codec = codec;
        let Kind::Video { keyframe, pts } = kind else {
            return;
        };
        if pts.is_some() {
            self.read_sps();
        }
        if let Some((_, packets)) = &mut self.keyframe {
            packets.extend_from_slice(pkt);
            if packets.len() >= SPS_PACKETS * PACKET_LEN {
                self.read_sps();
            }
        }
        if let (true, Some(_), Some(pid), Some(VideoCodec::H264)) =
            (keyframe, pts, video_pid, codec)
        {
            self.keyframe = Some((pid, pkt.to_vec()));
        }
        if let Some(pts) = pts {
            if self.frames.back().map(|f| f.1) != Some(pts) {
                self.frames.push_back((now, pts));
            }
        }
        self.expire(now);
    }

    /// Reads the picture size from the keyframe being collected, if any.
    fn read_sps(&mut self) {
        if let Some((pid, packets)) = self.keyframe.take() {
            let es = first_pes_bytes(&packets, pid, SPS_PACKETS);
            if let Some(size) = es.as_deref().and_then(h264_picture_size) {
                self.size = Some(size);
            }
        }
    }

    fn expire(&mut self, now: Instant) {
        let old = |at: Instant| now.saturating_duration_since(at) > WINDOW;
        while self.frames.front().is_some_and(|f| old(f.0)) || self.frames.len() > MAX_ENTRIES {
            self.frames.pop_front();
        }
        while self.datagrams.front().is_some_and(|d| old(d.0)) || self.datagrams.len() > MAX_ENTRIES
        {
            if let Some((_, len)) = self.datagrams.pop_front() {
                self.window_bytes -= len;
            }
        }
    }

    /// The figures known at `now`.
    pub fn status(&self, now: Instant) -> PictureStatus {
        let h264 = self.codec == Some(VideoCodec::H264);
        let size = self.size.filter(|_| h264);
        PictureStatus {
            codec: self.codec,
            width: size.map(|s| s.0),
            height: size.map(|s| s.1),
            fps: self.fps(now),
            bitrate_kbps: self.bitrate_kbps(now),
        }
    }

    /// Frames over the span of their timestamps (B-frames come out of order:
    /// the span is from the lowest to the highest).
    fn fps(&self, now: Instant) -> Option<f64> {
        let first = self.frames.front()?;
        if now.saturating_duration_since(first.0) < MIN_SPAN || self.frames.len() < 3 {
            return None;
        }
        let offsets = self.frames.iter().map(|f| pts_diff(f.1, first.1));
        let (lo, hi) = offsets.fold((0, 0), |(lo, hi), d| (lo.min(d), hi.max(d)));
        let span = (hi - lo) as f64 / 90_000.0;
        (span > 0.0).then(|| (self.frames.len() - 1) as f64 / span)
    }

    /// Bytes over the time from the window's first datagram to now.
    fn bitrate_kbps(&self, now: Instant) -> Option<u32> {
        let first = self.datagrams.front()?.0;
        let span = now.saturating_duration_since(first);
        if span < MIN_SPAN {
            return None;
        }
        let kbps = self.window_bytes as f64 * 8.0 / span.as_secs_f64() / 1000.0;
        Some(kbps.round() as u32)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::media::ts::tests::{packet, pat, pmt, pmt_of};
    use crate::media::ts::Demux;

    /// A keyframe PES start carrying the SPS of a 848x480 picture (libx264's).
    fn keyframe_with_sps(pts: u64) -> Vec<u8> {
        let sps = [
            0x00, 0x00, 0x00, 0x01, 0x67, 0x64, 0x00, 0x1f, 0xac, 0xd9, 0x40, 0xd4, 0x3d, 0xb0,
            0x11, 0x00, 0x00, 0x03, 0x00, 0x01, 0x00, 0x00, 0x03, 0x00, 0x3c, 0x0f, 0x18, 0x31,
            0x96, 0x00,
        ];
        let mut payload = vec![0, 0, 1, 0xe0, 0, 0, 0x80, 0x80, 5];
        payload.extend_from_slice(&crate::media::ts::tests::encode_pts(pts));
        payload.extend_from_slice(&sps);
        payload.extend_from_slice(&[0, 0, 0, 1, 0x65, 0x88]);
        packet(0x100, true, true, 0, &payload)
    }

    fn frame(pts: u64) -> Vec<u8> {
        crate::media::ts::tests::pes_start(0x100, false, pts, 1)
    }

    /// Feeds datagrams through a demuxer, as the gate does.
    fn feed(p: &mut Picture, d: &mut Demux, datagram: &[u8], now: Instant) {
        p.datagram(datagram.len(), now);
        for pkt in datagram.chunks_exact(PACKET_LEN) {
            let kind = d.classify(pkt);
            p.packet(pkt, kind, d.codec(), d.video_pid(), now);
        }
    }

    #[test]
    fn size_rate_and_bitrate_come_from_the_stream() {
        let (mut p, mut d) = (Picture::default(), Demux::default());
        let t0 = Instant::now();
        feed(
            &mut p,
            &mut d,
            &[pat(0x1000), pmt(0x1000, 0x100)].concat(),
            t0,
        );
        assert_eq!(p.status(t0).codec, Some(VideoCodec::H264));
        // 3 s at 30 fps, a keyframe a second, each frame one datagram of 7 packets.
        for n in 0..90u64 {
            let at = t0 + Duration::from_millis(n * 1000 / 30);
            let first = if n % 30 == 0 {
                keyframe_with_sps(n * 3000)
            } else {
                frame(n * 3000)
            };
            let mut datagram = first;
            for _ in 0..6 {
                datagram.extend(packet(0x100, false, false, 0, &[0; 184]));
            }
            feed(&mut p, &mut d, &datagram, at);
        }
        let s = p.status(t0 + Duration::from_secs(3));
        assert_eq!((s.width, s.height), (Some(848), Some(480)));
        let fps = s.fps.unwrap();
        assert!((fps - 30.0).abs() < 0.01, "{fps}");
        // 7 packets a frame, 30 a second: 7 * 188 * 8 * 30 = 315.84 kbit/s.
        let kbps = s.bitrate_kbps.unwrap();
        assert!((310..=320).contains(&kbps), "{kbps}");
    }

    #[test]
    fn nothing_is_claimed_before_two_seconds_of_stream() {
        let (mut p, mut d) = (Picture::default(), Demux::default());
        let t0 = Instant::now();
        feed(
            &mut p,
            &mut d,
            &[pat(0x1000), pmt(0x1000, 0x100)].concat(),
            t0,
        );
        for n in 0..30u64 {
            feed(
                &mut p,
                &mut d,
                &frame(n * 3000),
                t0 + Duration::from_millis(n * 33),
            );
        }
        let s = p.status(t0 + Duration::from_secs(1));
        assert_eq!((s.fps, s.bitrate_kbps, s.width), (None, None, None));
    }

    #[test]
    fn hevc_is_named_and_its_size_is_not_claimed() {
        let (mut p, mut d) = (Picture::default(), Demux::default());
        let t0 = Instant::now();
        feed(
            &mut p,
            &mut d,
            &[pat(0x1000), pmt_of(0x1000, 0x100, 0x24)].concat(),
            t0,
        );
        feed(&mut p, &mut d, &keyframe_with_sps(0), t0);
        let s = p.status(t0);
        assert_eq!((s.codec, s.width), (Some(VideoCodec::Hevc), None));
    }

    #[test]
    fn the_windows_are_bounded() {
        let mut p = Picture::default();
        let t0 = Instant::now();
        for _ in 0..3 * MAX_ENTRIES {
            p.datagram(1316, t0);
        }
        assert!(p.datagrams.len() <= MAX_ENTRIES);
        assert_eq!(p.window_bytes, p.datagrams.len() * 1316);
    }
}
