//! MPEG-TS packets (ISO/IEC 13818-1): packet alignment, PAT/PMT, the video
//! PID (H.264, or HEVC as HERO13 and later send), random-access points and
//! continuity counters.
//!
//! Pure: no I/O, no async. The relay uses it to start viewers at a keyframe,
//! to skip a slow viewer to the next keyframe, and to splice between encoders.

pub const PACKET_LEN: usize = 188;
pub const SYNC: u8 = 0x47;
pub const PAT_PID: u16 = 0;
const STREAM_TYPE_H264: u8 = 0x1b;
const STREAM_TYPE_HEVC: u8 = 0x24;

/// The camera's video codec, from the PMT's stream type.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum VideoCodec {
    /// AVC, stream type 0x1b: what phones play, and what a passthrough rung needs.
    H264,
    /// Stream type 0x24: the preview of HERO13 and later. Encoded rungs decode
    /// it; phones are sent H.264 only.
    Hevc,
}

impl VideoCodec {
    fn of_stream_type(t: u8) -> Option<VideoCodec> {
        match t {
            STREAM_TYPE_H264 => Some(VideoCodec::H264),
            STREAM_TYPE_HEVC => Some(VideoCodec::Hevc),
            _ => None,
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            VideoCodec::H264 => "h264",
            VideoCodec::Hevc => "hevc",
        }
    }
}

/// Accessors for one 188-byte packet.
#[derive(Clone, Copy)]
pub struct Packet<'a>(pub &'a [u8]);

impl<'a> Packet<'a> {
    pub fn pid(&self) -> u16 {
        (u16::from(self.0[1] & 0x1f) << 8) | u16::from(self.0[2])
    }
    /// payload_unit_start_indicator: a PES or section starts here.
    pub fn unit_start(&self) -> bool {
        self.0[1] & 0x40 != 0
    }
    fn adaptation_control(&self) -> u8 {
        (self.0[3] >> 4) & 0x3
    }
    pub fn has_payload(&self) -> bool {
        self.adaptation_control() & 0x1 != 0
    }
    pub fn continuity_counter(&self) -> u8 {
        self.0[3] & 0x0f
    }
    fn adaptation(&self) -> Option<&'a [u8]> {
        if self.adaptation_control() & 0x2 == 0 {
            return None;
        }
        let len = usize::from(self.0[4]);
        self.0.get(5..5 + len)
    }
    /// The muxer marks a random-access point (a keyframe) in the adaptation field.
    pub fn random_access(&self) -> bool {
        self.adaptation()
            .and_then(|a| a.first())
            .is_some_and(|flags| flags & 0x40 != 0)
    }
    pub fn payload(&self) -> &'a [u8] {
        if !self.has_payload() {
            return &[];
        }
        let start = if self.adaptation_control() & 0x2 != 0 {
            5 + usize::from(self.0[4])
        } else {
            4
        };
        self.0.get(start..).unwrap_or(&[])
    }
}

/// Turns arbitrary reads into whole, aligned packets, resynchronising on garbage.
#[derive(Default)]
pub struct Aligner {
    pending: Vec<u8>,
    /// Bytes thrown away to regain sync, for the logs.
    pub dropped_bytes: u64,
}

impl Aligner {
    /// Appends `input` and returns the whole packets now available, in one buffer.
    pub fn push(&mut self, input: &[u8]) -> Vec<u8> {
        self.pending.extend_from_slice(input);
        let mut out = Vec::with_capacity(self.pending.len());
        let mut i = 0;
        while self.pending.len() - i >= PACKET_LEN {
            let synced = self.pending[i] == SYNC
                && (self.pending.len() - i < 2 * PACKET_LEN
                    || self.pending[i + PACKET_LEN] == SYNC);
            if synced {
                out.extend_from_slice(&self.pending[i..i + PACKET_LEN]);
                i += PACKET_LEN;
            } else {
                i += 1;
                self.dropped_bytes += 1;
            }
        }
        self.pending.drain(..i);
        out
    }
}

/// What a packet is, as far as the relay cares.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Pat,
    Pmt,
    /// A packet of the video PID; `keyframe` when it starts an IDR access unit.
    Video {
        keyframe: bool,
        pts: Option<u64>,
    },
    Other,
}

/// Follows PAT → PMT → video PID and classifies packets.
#[derive(Debug, Default, Clone)]
pub struct Demux {
    pmt_pid: Option<u16>,
    video_pid: Option<u16>,
    codec: Option<VideoCodec>,
    pcr_pid: Option<u16>,
}

impl Demux {
    pub fn video_pid(&self) -> Option<u16> {
        self.video_pid
    }

    /// The video's codec, once the PMT named it.
    pub fn codec(&self) -> Option<VideoCodec> {
        self.codec
    }

    /// The PID that carries the program's clock (PCR), once the PMT named it.
    pub fn pcr_pid(&self) -> Option<u16> {
        self.pcr_pid
    }

    pub fn classify(&mut self, pkt: &[u8]) -> Kind {
        if pkt.len() != PACKET_LEN || pkt[0] != SYNC {
            return Kind::Other;
        }
        let p = Packet(pkt);
        let pid = p.pid();
        if pid == PAT_PID {
            if p.unit_start() {
                if let Some(pmt) = section(p.payload()).and_then(parse_pat) {
                    self.pmt_pid = Some(pmt);
                }
            }
            return Kind::Pat;
        }
        if Some(pid) == self.pmt_pid {
            if p.unit_start() {
                let pmt = section(p.payload());
                if let Some((video, codec)) = pmt.and_then(parse_pmt_video) {
                    self.video_pid = Some(video);
                    self.codec = Some(codec);
                    self.pcr_pid = pmt.and_then(parse_pmt_pcr_pid);
                }
            }
            return Kind::Pmt;
        }
        if Some(pid) == self.video_pid {
            if !p.unit_start() {
                return Kind::Video {
                    keyframe: false,
                    pts: None,
                };
            }
            let (pts, es) = pes_header(p.payload());
            let keyframe = p.random_access()
                || es.is_some_and(|es| match self.codec {
                    Some(VideoCodec::Hevc) => starts_irap(es),
                    _ => starts_idr(es),
                });
            return Kind::Video { keyframe, pts };
        }
        Kind::Other
    }
}

/// The PSI section at the start of a payload (skipping the pointer field).
fn section(payload: &[u8]) -> Option<&[u8]> {
    let pointer = usize::from(*payload.first()?);
    let s = payload.get(1 + pointer..)?;
    let len = usize::from(u16::from(*s.get(1)? & 0x0f) << 8 | u16::from(*s.get(2)?));
    s.get(..3 + len)
}

/// First program's PMT PID from a PAT section.
fn parse_pat(s: &[u8]) -> Option<u16> {
    if *s.first()? != 0x00 {
        return None;
    }
    // 8 header bytes, then 4-byte entries, then a 4-byte CRC.
    let entries = s.get(8..s.len().checked_sub(4)?)?;
    entries.chunks_exact(4).find_map(|e| {
        let program = u16::from(e[0]) << 8 | u16::from(e[1]);
        (program != 0).then(|| (u16::from(e[2] & 0x1f) << 8) | u16::from(e[3]))
    })
}

/// The PCR PID of a PMT section.
fn parse_pmt_pcr_pid(s: &[u8]) -> Option<u16> {
    Some((u16::from(*s.get(8)? & 0x1f) << 8) | u16::from(*s.get(9)?))
}

/// The first H.264 or HEVC elementary stream's PID, and its codec, from a PMT section.
fn parse_pmt_video(s: &[u8]) -> Option<(u16, VideoCodec)> {
    if *s.first()? != 0x02 {
        return None;
    }
    let info_len = usize::from(u16::from(*s.get(10)? & 0x0f) << 8 | u16::from(*s.get(11)?));
    let end = s.len().checked_sub(4)?;
    let mut i = 12 + info_len;
    while i + 5 <= end {
        let stream_type = s[i];
        let pid = (u16::from(s[i + 1] & 0x1f) << 8) | u16::from(s[i + 2]);
        let es_info = usize::from(u16::from(s[i + 3] & 0x0f) << 8 | u16::from(s[i + 4]));
        if let Some(codec) = VideoCodec::of_stream_type(stream_type) {
            return Some((pid, codec));
        }
        i += 5 + es_info;
    }
    None
}

/// PTS (90 kHz) and the elementary-stream bytes of a PES packet start.
fn pes_header(payload: &[u8]) -> (Option<u64>, Option<&[u8]>) {
    if payload.len() < 9 || payload[..3] != [0, 0, 1] {
        return (None, None);
    }
    let header_len = usize::from(payload[8]);
    let es = payload.get(9 + header_len..);
    let pts = if payload[7] & 0x80 != 0 {
        payload.get(9..14).map(decode_timestamp)
    } else {
        None
    };
    (pts, es)
}

fn decode_timestamp(b: &[u8]) -> u64 {
    (u64::from(b[0] >> 1) & 0x07) << 30
        | u64::from(b[1]) << 22
        | u64::from(b[2] >> 1) << 15
        | u64::from(b[3]) << 7
        | u64::from(b[4] >> 1)
}

/// True when the Annex B bytes contain an IDR slice or an SPS before any other slice.
fn starts_idr(es: &[u8]) -> bool {
    let mut i = 0;
    while i + 3 < es.len() {
        if es[i] == 0 && es[i + 1] == 0 && es[i + 2] == 1 {
            match es[i + 3] & 0x1f {
                5 | 7 => return true,
                1 => return false,
                _ => {}
            }
            i += 3;
        } else {
            i += 1;
        }
    }
    false
}

/// True when the HEVC Annex B bytes contain a VPS, an SPS or an IRAP slice
/// (IDR, CRA, BLA: NAL unit types 16 to 23) before any other slice.
fn starts_irap(es: &[u8]) -> bool {
    let mut i = 0;
    while i + 3 < es.len() {
        if es[i] == 0 && es[i + 1] == 0 && es[i + 2] == 1 {
            match (es[i + 3] >> 1) & 0x3f {
                16..=23 | 32 | 33 => return true,
                0..=15 => return false,
                _ => {}
            }
            i += 3;
        } else {
            i += 1;
        }
    }
    false
}

/// The elementary-stream bytes of the first PES of `video_pid` in `packets`,
/// from at most its first `max_packets` packets (enough for the parameter
/// sets at a keyframe's start).
pub fn first_pes_bytes(packets: &[u8], video_pid: u16, max_packets: usize) -> Option<Vec<u8>> {
    let mut es: Vec<u8> = Vec::new();
    let mut started = false;
    let video = packets
        .chunks_exact(PACKET_LEN)
        .filter(|p| p[0] == SYNC && Packet(p).pid() == video_pid);
    for pkt in video.take(max_packets) {
        let p = Packet(pkt);
        if p.unit_start() {
            if started {
                break;
            }
            started = true;
            es.extend_from_slice(pes_header(p.payload()).1?);
        } else if started {
            es.extend_from_slice(p.payload());
        }
    }
    started.then_some(es)
}

/// The RFC 6381 codec of H.264 video (`avc1.PPCCLL`: profile, constraint
/// flags, level) from the SPS at the start of the first PES of `video_pid`
/// in `packets` (a keyframe's chunk); None when that PES has no SPS within
/// its first few packets.
pub fn avc_codec(packets: &[u8], video_pid: u16) -> Option<String> {
    let es = first_pes_bytes(packets, video_pid, 4)?;
    let i = es
        .windows(4)
        .position(|w| w[..3] == [0, 0, 1] && w[3] & 0x1f == 7)?;
    let sps = es.get(i + 4..i + 7)?;
    Some(format!("avc1.{:02x}{:02x}{:02x}", sps[0], sps[1], sps[2]))
}

/// The first video PTS in `packets` (whole packets, PSI first so the video
/// PID is known) and the newest, or None when there is no video PTS. The
/// newest is the furthest past the first, not the last in order: with
/// B-frames a later packet can carry an earlier picture.
pub fn video_pts_span<'a>(packets: impl IntoIterator<Item = &'a [u8]>) -> Option<(u64, u64)> {
    let mut demux = Demux::default();
    let mut span: Option<(u64, u64)> = None;
    for chunk in packets {
        for pkt in chunk.chunks_exact(PACKET_LEN) {
            if let Kind::Video { pts: Some(pts), .. } = demux.classify(pkt) {
                span = Some(match span {
                    None => (pts, pts),
                    Some((first, newest)) if pts_diff(pts, newest) > 0 => (first, pts),
                    Some(kept) => kept,
                });
            }
        }
    }
    span
}

/// Difference `a - b` of two 33-bit PTS values, allowing for wrap-around.
pub fn pts_diff(a: u64, b: u64) -> i64 {
    const WRAP: i64 = 1 << 33;
    let d = (a as i64 - b as i64).rem_euclid(WRAP);
    if d >= WRAP / 2 {
        d - WRAP
    } else {
        d
    }
}

/// Rewrites continuity counters so one viewer sees an unbroken sequence per PID,
/// whichever encoder or position in the stream the packets came from.
#[derive(Default)]
pub struct Continuity {
    next: std::collections::HashMap<u16, u8>,
}

impl Continuity {
    /// Rewrites every packet in `buf` (a whole number of packets) in place.
    pub fn rewrite(&mut self, buf: &mut [u8]) {
        for pkt in buf.chunks_exact_mut(PACKET_LEN) {
            let p = Packet(pkt);
            if !p.has_payload() {
                continue; // adaptation-only packets do not advance the counter
            }
            let counter = self.next.entry(p.pid()).or_insert(p.continuity_counter());
            pkt[3] = (pkt[3] & 0xf0) | *counter;
            *counter = (*counter + 1) & 0x0f;
        }
    }
}

#[cfg(test)]
pub mod tests {
    use super::*;

    /// Builds a packet: pid, unit start, optional RAI adaptation field, payload.
    pub fn packet(pid: u16, unit_start: bool, rai: bool, cc: u8, payload: &[u8]) -> Vec<u8> {
        let mut p = vec![
            SYNC,
            ((pid >> 8) as u8 & 0x1f) | if unit_start { 0x40 } else { 0 },
            pid as u8,
        ];
        let body_room = PACKET_LEN - 4;
        let need_af = rai || payload.len() < body_room;
        if need_af {
            p.push(0x30 | cc);
            let af_len = body_room - 1 - payload.len().min(body_room - 2);
            p.push(af_len as u8);
            if af_len > 0 {
                p.push(if rai { 0x40 } else { 0 });
                p.resize(p.len() + af_len - 1, 0xff);
            }
        } else {
            p.push(0x10 | cc);
        }
        p.extend_from_slice(&payload[..payload.len().min(PACKET_LEN - p.len())]);
        assert_eq!(p.len(), PACKET_LEN);
        p
    }

    fn with_crc(mut s: Vec<u8>) -> Vec<u8> {
        s.extend_from_slice(&[0, 0, 0, 0]); // CRC is not checked by the demuxer
        s
    }

    pub fn pat(pmt_pid: u16) -> Vec<u8> {
        let s = with_crc(vec![
            0x00,
            0xb0,
            13,
            0,
            1,
            0xc1,
            0,
            0,
            0,
            1,
            0xe0 | (pmt_pid >> 8) as u8,
            pmt_pid as u8,
        ]);
        packet(PAT_PID, true, false, 0, &[[0u8].as_slice(), &s].concat())
    }

    pub fn pmt(pmt_pid: u16, video_pid: u16) -> Vec<u8> {
        pmt_of(pmt_pid, video_pid, STREAM_TYPE_H264)
    }

    /// A PMT naming one video stream of `stream_type`.
    pub fn pmt_of(pmt_pid: u16, video_pid: u16, stream_type: u8) -> Vec<u8> {
        let s = with_crc(vec![
            0x02,
            0xb0,
            18,
            0,
            1,
            0xc1,
            0,
            0,
            0xe0 | (video_pid >> 8) as u8,
            video_pid as u8,
            0xf0,
            0,
            stream_type,
            0xe0 | (video_pid >> 8) as u8,
            video_pid as u8,
            0xf0,
            0,
        ]);
        packet(pmt_pid, true, false, 0, &[[0u8].as_slice(), &s].concat())
    }

    pub fn encode_pts(pts: u64) -> [u8; 5] {
        [
            0x21 | ((pts >> 29) as u8 & 0x0e),
            (pts >> 22) as u8,
            0x01 | ((pts >> 14) as u8 & 0xfe),
            (pts >> 7) as u8,
            0x01 | ((pts << 1) as u8 & 0xfe),
        ]
    }

    /// A video PES start with the given PTS and first NAL unit type.
    pub fn pes_start(video_pid: u16, rai: bool, pts: u64, nal: u8) -> Vec<u8> {
        let mut payload = vec![0, 0, 1, 0xe0, 0, 0, 0x80, 0x80, 5];
        payload.extend_from_slice(&encode_pts(pts));
        payload.extend_from_slice(&[0, 0, 0, 1, 9, 0xf0, 0, 0, 0, 1, nal]);
        payload.resize(150, 0xab);
        packet(video_pid, true, rai, 0, &payload)
    }

    /// An HEVC PES start: an access unit delimiter (type 35), then a NAL unit of `nal_type`.
    pub fn hevc_pes_start(video_pid: u16, pts: u64, nal_type: u8) -> Vec<u8> {
        let mut payload = vec![0, 0, 1, 0xe0, 0, 0, 0x80, 0x80, 5];
        payload.extend_from_slice(&encode_pts(pts));
        payload.extend_from_slice(&[0, 0, 0, 1, 35 << 1, 1, 0x50, 0, 0, 0, 1, nal_type << 1, 1]);
        payload.resize(150, 0xab);
        packet(video_pid, true, false, 0, &payload)
    }

    #[test]
    fn the_pts_span_runs_from_the_first_video_frame_to_the_newest_picture() {
        let psi = [pat(0x1000), pmt(0x1000, 0x100)].concat();
        let first = pes_start(0x100, true, 8_589_930_000, 5); // just before the wrap
        let later = [pes_start(0x100, false, 2_000, 1), pat(0x1000)].concat();
        let b_frame = pes_start(0x100, false, 1_000, 1);
        let span = video_pts_span([&psi[..], &first[..], &later[..], &b_frame[..]]);
        assert_eq!(span, Some((8_589_930_000, 2_000)));
        let (a, b) = span.unwrap();
        assert_eq!(pts_diff(b, a), 6_592, "across the wrap");
        assert_eq!(video_pts_span([&first[..]]), None, "no PMT: no video PID");
        assert_eq!(video_pts_span([&psi[..]]), None);
    }

    #[test]
    fn hevc_is_video_too_with_its_own_keyframes() {
        let mut d = Demux::default();
        d.classify(&pat(0x1000));
        assert_eq!(d.classify(&pmt_of(0x1000, 0x100, 0x24)), Kind::Pmt);
        assert_eq!(
            (d.video_pid(), d.codec()),
            (Some(0x100), Some(VideoCodec::Hevc))
        );
        let key = |nal| match d.clone().classify(&hevc_pes_start(0x100, 900, nal)) {
            Kind::Video { keyframe, pts } => {
                assert_eq!(pts, Some(900));
                keyframe
            }
            other => panic!("{other:?}"),
        };
        // VPS, SPS, IDR_W_RADL, IDR_N_LP, CRA: a decoder can start there.
        for nal in [32, 33, 19, 20, 21] {
            assert!(key(nal), "NAL type {nal}");
        }
        // TRAIL_R, TRAIL_N, RASL: it cannot. (An H.264 reading of these bytes
        // would see other types: the codec decides.)
        for nal in [1, 0, 9] {
            assert!(!key(nal), "NAL type {nal}");
        }
        let mut h264 = Demux::default();
        h264.classify(&pat(0x1000));
        h264.classify(&pmt(0x1000, 0x100));
        assert_eq!(h264.codec(), Some(VideoCodec::H264));
        let mut other = Demux::default();
        other.classify(&pat(0x1000));
        other.classify(&pmt_of(0x1000, 0x100, 0x02)); // MPEG-2 video
        assert_eq!((other.video_pid(), other.codec()), (None, None));
    }

    #[test]
    fn follows_pat_pmt_to_video_and_finds_keyframes() {
        let mut d = Demux::default();
        assert_eq!(
            d.classify(&pes_start(0x100, true, 900, 5)),
            Kind::Other,
            "video before PMT is unknown"
        );
        assert_eq!(d.classify(&pat(0x1000)), Kind::Pat);
        assert_eq!(d.classify(&pmt(0x1000, 0x100)), Kind::Pmt);
        assert_eq!(d.video_pid(), Some(0x100));
        assert_eq!(
            d.classify(&pes_start(0x100, true, 900, 1)),
            Kind::Video {
                keyframe: true,
                pts: Some(900)
            }
        );
        assert_eq!(
            d.classify(&pes_start(0x100, false, 3900, 5)),
            Kind::Video {
                keyframe: true,
                pts: Some(3900)
            }
        );
        assert_eq!(
            d.classify(&pes_start(0x100, false, 6900, 7)),
            Kind::Video {
                keyframe: true,
                pts: Some(6900)
            }
        );
        assert_eq!(
            d.classify(&pes_start(0x100, false, 9900, 1)),
            Kind::Video {
                keyframe: false,
                pts: Some(9900)
            }
        );
        assert_eq!(
            d.classify(&packet(0x100, false, false, 1, &[0; 184])),
            Kind::Video {
                keyframe: false,
                pts: None
            }
        );
        assert_eq!(
            d.classify(&packet(0x101, true, false, 1, &[0; 184])),
            Kind::Other
        );
    }

    #[test]
    fn the_codec_string_comes_from_the_sps() {
        let mut payload = vec![0, 0, 1, 0xe0, 0, 0, 0x80, 0x80, 5];
        payload.extend_from_slice(&encode_pts(900));
        // AUD, then an SPS: Main profile (77), constraints 0x40, level 3.1.
        payload.extend_from_slice(&[
            0, 0, 0, 1, 9, 0xf0, 0, 0, 0, 1, 0x67, 0x4d, 0x40, 0x1f, 0xec,
        ]);
        let pkt = packet(0x100, true, true, 0, &payload);
        let chunk = [pkt.clone(), packet(0x100, false, false, 1, &[0; 184])].concat();
        assert_eq!(avc_codec(&chunk, 0x100).as_deref(), Some("avc1.4d401f"));
        assert_eq!(avc_codec(&chunk, 0x101), None, "another PID");
        // No SPS (a keyframe without headers), or cut short.
        assert_eq!(avc_codec(&pes_start(0x100, true, 900, 5), 0x100), None);
        let short = &payload[..payload.len() - 3];
        assert_eq!(avc_codec(&packet(0x100, true, true, 0, short), 0x100), None);
        assert_eq!(avc_codec(&[], 0x100), None);
        assert_eq!(avc_codec(&[0x47; 100], 0x100), None, "not whole packets");
    }

    #[test]
    fn pts_round_trips_including_33_bits() {
        for pts in [
            0u64,
            1,
            90_000,
            (1 << 33) - 1,
            0x1_2345_6789 & ((1 << 33) - 1),
        ] {
            let p = pes_start(0x100, false, pts, 1);
            let (got, _) = pes_header(Packet(&p).payload());
            assert_eq!(got, Some(pts));
        }
    }

    #[test]
    fn garbage_never_panics() {
        let mut d = Demux::default();
        let mut buf = [0u8; PACKET_LEN];
        buf[0] = SYNC;
        for seed in 0..2000u32 {
            let mut x = seed.wrapping_mul(2_654_435_761);
            for b in buf[1..].iter_mut() {
                x ^= x << 13;
                x ^= x >> 17;
                x ^= x << 5;
                *b = x as u8;
            }
            d.classify(&buf);
            buf[1] = 0x40; // unit start on PAT PID with garbage section
            buf[2] = 0;
            d.classify(&buf);
        }
        assert_eq!(d.classify(&[SYNC, 0, 0]), Kind::Other);
    }

    #[test]
    fn aligner_resyncs_and_keeps_whole_packets() {
        let a = packet(0x100, false, false, 0, &[1; 184]);
        let b = packet(0x100, false, false, 1, &[2; 184]);
        let mut input = vec![0x00, 0x12, 0x47]; // junk, including a false sync byte
        input.extend_from_slice(&a);
        input.extend_from_slice(&b);
        let mut al = Aligner::default();
        let mut out = al.push(&input[..100]);
        out.extend(al.push(&input[100..]));
        assert_eq!(out, [a, b].concat());
        assert_eq!(al.dropped_bytes, 3);
    }

    #[test]
    fn continuity_is_rewritten_per_pid_and_skips_adaptation_only() {
        let mut c = Continuity::default();
        let mut buf = [
            packet(0x100, false, false, 7, &[0; 184]),
            packet(0x100, false, false, 3, &[0; 184]), // a jump: after a skip or a splice
            packet(0x200, false, false, 9, &[0; 184]),
        ]
        .concat();
        let mut af_only = packet(0x100, false, true, 0, &[]);
        af_only[3] = 0x20 | 0x0c;
        buf.extend_from_slice(&af_only);
        buf.extend_from_slice(&packet(0x100, false, false, 15, &[0; 184]));
        c.rewrite(&mut buf);
        let ccs: Vec<u8> = buf
            .chunks(PACKET_LEN)
            .map(|p| Packet(p).continuity_counter())
            .collect();
        assert_eq!(ccs, vec![7, 8, 9, 12, 9]);
    }

    #[test]
    fn continuity_wraps_at_sixteen() {
        let mut c = Continuity::default();
        let mut buf: Vec<u8> = (0..20)
            .flat_map(|_| packet(0x100, false, false, 14, &[0; 184]))
            .collect();
        c.rewrite(&mut buf);
        let ccs: Vec<u8> = buf
            .chunks(PACKET_LEN)
            .map(|p| Packet(p).continuity_counter())
            .collect();
        assert_eq!(&ccs[..4], &[14, 15, 0, 1]);
    }

    #[test]
    fn pts_diff_handles_wrap() {
        assert_eq!(pts_diff(100, 40), 60);
        assert_eq!(pts_diff(40, 100), -60);
        assert_eq!(pts_diff(5, (1 << 33) - 5), 10);
    }
}
