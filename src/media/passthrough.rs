//! The passthrough rung without a process: the camera's H.264 in MPEG-TS,
//! relayed from the source to the hub as each datagram arrives (no child, no
//! pipe, no demuxer holding a frame until the next one begins).
//!
//! The camera's stream is laid out as the encoded rungs' muxer (ffmpeg's)
//! lays out theirs: the same PAT and PMT (program 1, PMT on 0x1000, video on
//! 0x100, the clock on the video), the video packets moved to 0x100, a clock
//! the camera sends on another PID carried by adaptation-only packets on
//! 0x100, everything else (audio, other tables) dropped. A viewer then moves
//! between this rung and an encoded one on one stream, gapless, as between
//! two encoded rungs; the hub finds frame starts and keyframes in it as in
//! theirs. Nothing is relayed while the camera sends anything but H.264.
//!
//! While the rung is not running, the packets since the camera's newest
//! keyframe are kept (bounded in bytes), so that a track that starts has a
//! picture at once.

use crate::media::relay::Hub;
use crate::media::source::MAX_GOP_BYTES;
use crate::media::ts::{Demux, Kind, Packet, VideoCodec, PACKET_LEN, PAT_PID, SYNC};
use std::sync::{Arc, Mutex};
use tokio_util::sync::CancellationToken;

/// The PIDs of ffmpeg's MPEG-TS muxer, which makes every encoded rung.
pub const PMT_PID: u16 = 0x1000;
pub const VIDEO_PID: u16 = 0x100;
const STREAM_TYPE_H264: u8 = 0x1b;

/// Feeds the passthrough rung's hub track from the source.
pub struct Passthrough {
    hub: Arc<Hub>,
    state: Mutex<State>,
}

#[derive(Default)]
struct State {
    /// The ladder has a passthrough rung offered: the camera's current group
    /// of pictures is kept for it (see `set_offered`).
    offered: bool,
    /// The hub track fed now (None: the rung is not running).
    generation: Option<u64>,
    remux: Remux,
    /// While not running: the camera's timeline and the remuxed packets
    /// since its newest keyframe (None over `MAX_GOP_BYTES`, or before one).
    gop: Option<(u64, Vec<u8>)>,
}

impl Passthrough {
    pub fn new(hub: Arc<Hub>) -> Arc<Passthrough> {
        Arc::new(Passthrough {
            hub,
            state: Mutex::default(),
        })
    }

    /// Whether the ladder has a passthrough rung that is offered: only then is
    /// the camera's stream laid out and its group of pictures kept.
    pub fn set_offered(&self, offered: bool) {
        let mut s = self.state.lock().unwrap();
        s.offered = offered;
        if !offered {
            s.gop = None;
        }
    }

    /// One datagram the source admitted from the camera, on the camera's
    /// timeline `epoch` (the encoders' numbering). Called as it arrives.
    pub fn datagram(&self, datagram: &[u8], epoch: u64) {
        let mut s = self.state.lock().unwrap();
        if !s.offered && s.generation.is_none() {
            return;
        }
        let mut out = Vec::with_capacity(datagram.len() + 2 * PACKET_LEN);
        let keyframe = s.remux.push(datagram, &mut out);
        if out.is_empty() {
            return;
        }
        match s.generation {
            Some(generation) => {
                self.hub.push(generation, epoch, &out);
            }
            None => {
                if keyframe {
                    s.gop = Some((epoch, Vec::new()));
                }
                if let Some((e, gop)) = &mut s.gop {
                    if *e != epoch || gop.len() + out.len() > MAX_GOP_BYTES {
                        s.gop = None;
                    } else {
                        gop.extend_from_slice(&out);
                    }
                }
            }
        }
    }

    /// Feeds hub track `generation` (announced with `Hub::add_track`) from
    /// now on, starting with the camera's current group of pictures.
    pub fn start(&self, generation: u64) {
        let mut s = self.state.lock().unwrap();
        if let Some((epoch, gop)) = s.gop.take() {
            self.hub.push(generation, epoch, &gop);
        }
        s.generation = Some(generation);
        log::info!("passthrough: relaying the camera's stream to track {generation}");
    }

    /// Stops feeding track `generation` (if it is the one fed).
    pub fn stop(&self, generation: u64) {
        let mut s = self.state.lock().unwrap();
        if s.generation == Some(generation) {
            s.generation = None;
            s.gop = None;
        }
    }

    /// Feeds track `generation` until `stop` is cancelled: the passthrough
    /// rung's "encoder".
    pub async fn run(self: Arc<Self>, generation: u64, stop: CancellationToken) {
        self.start(generation);
        stop.cancelled().await;
        self.stop(generation);
    }
}

/// Lays the camera's packets out as the encoded rungs' are (see the module).
#[derive(Default)]
pub struct Remux {
    demux: Demux,
    /// Continuity counters of the PAT and PMT written here.
    pat_cc: u8,
    pmt_cc: u8,
    /// The last counter of a video packet: an adaptation-only packet repeats it.
    video_cc: u8,
}

impl Remux {
    /// Appends `datagram`'s packets, laid out anew, to `out`; true when a
    /// keyframe starts in it (its PAT and PMT are written just before it).
    pub fn push(&mut self, datagram: &[u8], out: &mut Vec<u8>) -> bool {
        let mut keyframe = false;
        for pkt in datagram.chunks_exact(PACKET_LEN) {
            let kind = self.demux.classify(pkt);
            if self.demux.codec() != Some(VideoCodec::H264) {
                continue;
            }
            let pid = Packet(pkt).pid();
            match kind {
                Kind::Video { keyframe: key, pts } => {
                    if key && pts.is_some() {
                        keyframe = true;
                        self.psi(out);
                    }
                    let at = out.len();
                    out.extend_from_slice(pkt);
                    set_pid(&mut out[at..], VIDEO_PID);
                    if Packet(pkt).has_payload() {
                        self.video_cc = Packet(pkt).continuity_counter();
                    }
                }
                _ if Some(pid) == self.demux.pcr_pid() && pid != PAT_PID => {
                    if let Some(pcr) = pcr_bytes(pkt) {
                        out.extend_from_slice(&clock_packet(pcr, self.video_cc));
                    }
                }
                _ => {}
            }
        }
        keyframe
    }

    /// The PAT and PMT of ffmpeg's muxer.
    fn psi(&mut self, out: &mut Vec<u8>) {
        let pat = [
            0x00,
            0xb0,
            0x0d,
            0x00,
            0x01,
            0xc1,
            0x00,
            0x00,
            0x00,
            0x01,
            0xe0 | (PMT_PID >> 8) as u8,
            PMT_PID as u8,
        ];
        let pmt = [
            0x02,
            0xb0,
            0x12,
            0x00,
            0x01,
            0xc1,
            0x00,
            0x00,
            0xe0 | (VIDEO_PID >> 8) as u8,
            VIDEO_PID as u8,
            0xf0,
            0x00,
            STREAM_TYPE_H264,
            0xe0 | (VIDEO_PID >> 8) as u8,
            VIDEO_PID as u8,
            0xf0,
            0x00,
        ];
        out.extend_from_slice(&section_packet(PAT_PID, self.pat_cc, &pat));
        out.extend_from_slice(&section_packet(PMT_PID, self.pmt_cc, &pmt));
        self.pat_cc = (self.pat_cc + 1) & 0x0f;
        self.pmt_cc = (self.pmt_cc + 1) & 0x0f;
    }
}

fn set_pid(pkt: &mut [u8], pid: u16) {
    pkt[1] = (pkt[1] & 0xe0) | (pid >> 8) as u8 & 0x1f;
    pkt[2] = pid as u8;
}

/// One packet holding a PSI section (CRC appended), padded with 0xff.
fn section_packet(pid: u16, cc: u8, section: &[u8]) -> [u8; PACKET_LEN] {
    let mut p = [0xffu8; PACKET_LEN];
    p[0] = SYNC;
    p[1] = 0x40 | (pid >> 8) as u8 & 0x1f;
    p[2] = pid as u8;
    p[3] = 0x10 | cc;
    p[4] = 0; // pointer field
    p[5..5 + section.len()].copy_from_slice(section);
    let crc = crc32_mpeg2(section).to_be_bytes();
    p[5 + section.len()..9 + section.len()].copy_from_slice(&crc);
    p
}

/// The 6 PCR bytes of a packet's adaptation field, if it has a PCR.
fn pcr_bytes(pkt: &[u8]) -> Option<[u8; 6]> {
    let adaptation = pkt[3] & 0x20 != 0;
    let len = usize::from(*pkt.get(4)?);
    if !adaptation || len < 7 || pkt.get(5)? & 0x10 == 0 {
        return None;
    }
    pkt.get(6..12)?.try_into().ok()
}

/// An adaptation-only packet on the video PID carrying `pcr` (its counter
/// repeats the last video packet's, as the standard asks of one without payload).
fn clock_packet(pcr: [u8; 6], cc: u8) -> [u8; PACKET_LEN] {
    let mut p = [0xffu8; PACKET_LEN];
    p[0] = SYNC;
    p[1] = (VIDEO_PID >> 8) as u8 & 0x1f;
    p[2] = VIDEO_PID as u8;
    p[3] = 0x20 | cc;
    p[4] = 183;
    p[5] = 0x10; // PCR flag
    p[6..12].copy_from_slice(&pcr);
    p
}

/// CRC-32/MPEG-2, as PSI sections carry it.
fn crc32_mpeg2(data: &[u8]) -> u32 {
    let mut crc = 0xffff_ffffu32;
    for &b in data {
        crc ^= u32::from(b) << 24;
        for _ in 0..8 {
            crc = if crc & 0x8000_0000 != 0 {
                (crc << 1) ^ 0x04c1_1db7
            } else {
                crc << 1
            };
        }
    }
    crc
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::media::relay::{Limits, Reader};
    use crate::media::ts::tests::{packet, pat, pes_start, pmt_of};
    use std::time::Duration;

    /// A camera's tables: PMT on 0x20, video on 0x1011, the clock on 0x1100
    /// (an audio PID, as some cameras have it).
    fn camera_psi(stream_type: u8) -> Vec<u8> {
        let mut pmt = pmt_of(0x20, 0x1011, stream_type);
        // PCR_PID: section bytes 8 and 9, after the pointer field.
        let section = PACKET_LEN - Packet(&pmt).payload().len() + 1;
        pmt[section + 8] = 0xe0 | 0x11;
        pmt[section + 9] = 0x00;
        [pat(0x20), pmt].concat()
    }

    fn with_pcr(pid: u16, pcr: [u8; 6]) -> Vec<u8> {
        let mut p = packet(pid, false, false, 3, &[0xaa; 100]);
        // Rewrite the adaptation field: PCR flag and six bytes.
        p[5] = 0x10;
        p[6..12].copy_from_slice(&pcr);
        p
    }

    #[test]
    fn psi_is_ffmpegs_byte_for_byte() {
        // `ffmpeg -f lavfi -i testsrc -c:v libx264 -f mpegts`: its first PAT and PMT.
        let mut out = Vec::new();
        Remux::default().psi(&mut out);
        let hex = |b: &[u8]| b.iter().map(|x| format!("{x:02x}")).collect::<String>();
        assert_eq!(
            hex(&out[..22]),
            "474000100000b00d0001c100000001f0002ab104b2ff"
        );
        assert_eq!(
            hex(&out[PACKET_LEN..PACKET_LEN + 27]),
            "475000100002b0120001c10000e100f0001be100f00015bd4d56ff"
        );
        assert!(out[22..PACKET_LEN].iter().all(|b| *b == 0xff));
    }

    #[test]
    fn the_cameras_stream_is_laid_out_as_the_encoded_rungs_are() {
        let mut r = Remux::default();
        let mut out = Vec::new();
        assert!(!r.push(&camera_psi(0x1b), &mut out));
        assert!(out.is_empty(), "the camera's tables are not passed on");
        let pcr = [1, 2, 3, 4, 5, 6];
        let datagram = [
            pes_start(0x1011, true, 9000, 5),
            packet(0x1011, false, false, 7, &[0x55; 184]),
            with_pcr(0x1100, pcr),
            packet(0x1200, true, false, 0, &[0x66; 184]), // audio, say
        ]
        .concat();
        assert!(r.push(&datagram, &mut out));
        let pids: Vec<u16> = out.chunks(PACKET_LEN).map(|p| Packet(p).pid()).collect();
        assert_eq!(pids, [0, PMT_PID, VIDEO_PID, VIDEO_PID, VIDEO_PID]);
        let clock = &out[4 * PACKET_LEN..];
        assert_eq!(clock[3], 0x20 | 7, "adaptation only, the video's counter");
        assert_eq!(pcr_bytes(clock), Some(pcr));
        // Read back as the hub does: the video, its keyframe, its timestamp.
        let mut d = Demux::default();
        let kinds: Vec<Kind> = out.chunks(PACKET_LEN).map(|p| d.classify(p)).collect();
        assert_eq!(
            kinds[2],
            Kind::Video {
                keyframe: true,
                pts: Some(9000)
            }
        );
        assert_eq!(
            (d.video_pid(), d.pcr_pid()),
            (Some(VIDEO_PID), Some(VIDEO_PID))
        );
        // A frame that is not a keyframe: no tables before it.
        let mut more = Vec::new();
        assert!(!r.push(&pes_start(0x1011, false, 12000, 1), &mut more));
        assert_eq!(more.len(), PACKET_LEN);
    }

    #[test]
    fn nothing_but_h264_is_relayed() {
        let mut r = Remux::default();
        let mut out = Vec::new();
        r.push(&camera_psi(0x24), &mut out);
        r.push(&pes_start(0x1011, true, 9000, 19), &mut out);
        assert!(out.is_empty());
    }

    #[test]
    fn a_track_that_starts_begins_with_the_cameras_group_of_pictures_then_follows_it() {
        let hub = Hub::new(Limits::default());
        let p = Passthrough::new(hub.clone());
        p.set_offered(true);
        p.datagram(&camera_psi(0x1b), 0);
        for n in 0..5u64 {
            p.datagram(&pes_start(0x1011, n % 3 == 0, n * 3000, 1), 0);
        }
        hub.add_track(0, 7);
        p.start(7);
        let mut reader = Reader::new(hub.clone(), 0, Duration::from_secs(5));
        let mut buf = Vec::new();
        let filled = reader.fill(&mut buf, 1 << 20).expect("a picture at once");
        assert!(!filled.skipped);
        let mut d = Demux::default();
        let pts: Vec<u64> = buf
            .chunks(PACKET_LEN)
            .filter_map(|pkt| match d.classify(pkt) {
                Kind::Video { pts: Some(t), .. } => Some(t / 3000),
                _ => None,
            })
            .collect();
        assert_eq!(pts, [3, 4], "from the newest keyframe");
        // Relayed as it arrives: each datagram readable at once.
        p.datagram(&pes_start(0x1011, false, 5 * 3000, 1), 0);
        assert!(reader.fill(&mut buf, 1 << 20).is_some());
        p.stop(7);
        p.datagram(&pes_start(0x1011, false, 6 * 3000, 1), 0);
        assert!(reader.fill(&mut buf, 1 << 20).is_none(), "stopped");
    }

    #[test]
    fn nothing_is_kept_while_no_passthrough_rung_is_offered() {
        let hub = Hub::new(Limits::default());
        let p = Passthrough::new(hub.clone());
        p.datagram(&camera_psi(0x1b), 0);
        p.datagram(&pes_start(0x1011, true, 0, 5), 0);
        assert!(p.state.lock().unwrap().gop.is_none());
        p.set_offered(true);
        p.datagram(&camera_psi(0x1b), 0);
        p.datagram(&pes_start(0x1011, true, 3000, 5), 0);
        assert!(p.state.lock().unwrap().gop.is_some());
        p.set_offered(false);
        assert!(p.state.lock().unwrap().gop.is_none(), "dropped at once");
    }

    #[test]
    fn crc_is_mpeg2s() {
        // The check value of CRC-32/MPEG-2.
        assert_eq!(crc32_mpeg2(b"123456789"), 0x0376_e6e7);
    }
}
