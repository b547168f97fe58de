//! The camera's MPEG-TS arrives here as UDP datagrams. The daemon owns this
//! socket (not ffmpeg) so that it can let in only the camera (see `gate`),
//! tell live video from a stall, notice when the camera starts a new
//! timeline, and feed several encoders at once.
//!
//! Memory is bounded in bytes whatever arrives: datagrams are split into
//! pieces of at most `PIECE` bytes before they are queued, the queue holds at
//! most `QUEUE_PIECES` of them, and the copy of the current group of pictures
//! kept for encoders that start (`Feed::subscribe`) is capped at `MAX_GOP_BYTES`.

use crate::log_budget::{Allow, LogBudget};
use crate::media::gate::{Gate, Refused, Verdict};
use crate::media::passthrough::Passthrough;
use crate::media::picture::PictureStatus;
use bytes::Bytes;
use serde::Serialize;
use std::net::{IpAddr, SocketAddr};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::net::UdpSocket;
use tokio::sync::{broadcast, watch};

/// Pieces queued per encoder before the slowest one starts losing them.
pub const QUEUE_PIECES: usize = 2048;
/// Seven TS packets: what cameras put in one datagram.
pub const PIECE: usize = 7 * crate::media::ts::PACKET_LEN;
/// Cap on the copy of the current group of pictures; a camera with rarer
/// keyframes gets none (new encoders then wait for its next keyframe).
pub const MAX_GOP_BYTES: usize = 4 << 20;
/// Refused datagrams are logged at most this often (with a count).
const REFUSED_LOG_WINDOW: Duration = Duration::from_secs(60);
/// The camera's picture figures are refreshed this often.
const PICTURE_EVERY: Duration = Duration::from_millis(250);

#[derive(Debug, Default)]
pub struct SourceStats {
    /// Admitted datagrams and their bytes.
    pub packets: u64,
    pub bytes: u64,
    /// Datagrams from other senders than the camera, dropped.
    pub foreign: u64,
    pub last_foreign_sender: Option<SocketAddr>,
    /// Datagrams that were not whole MPEG-TS packets, dropped.
    pub malformed: u64,
    /// When video with advancing timestamps last arrived: what "live" means.
    pub last_video: Option<Instant>,
    pub last_sender: Option<SocketAddr>,
    /// Timelines the camera started (the first video is the first).
    pub timelines: u64,
    /// What the camera sends: codec, picture size, frame rate, bitrate.
    pub picture: PictureStatus,
}

#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct SourceStatus {
    pub listen: String,
    /// "waiting" (no video yet), "live", or "stalled" (no video for longer than the stall timeout).
    pub state: &'static str,
    pub packets: u64,
    pub bytes: u64,
    /// Age of the newest video frame start.
    pub last_packet_age_ms: Option<u64>,
    pub sender: Option<String>,
    /// The only address admitted, when configured.
    pub camera_address: Option<String>,
    pub foreign_datagrams: u64,
    pub last_foreign_sender: Option<String>,
    pub malformed_datagrams: u64,
    pub timelines: u64,
    /// The camera's codec ("h264", "hevc"), and its picture as measured.
    pub picture: PictureStatus,
}

impl SourceStats {
    pub fn status(
        &self,
        listen: SocketAddr,
        camera: Option<IpAddr>,
        stall_after: Duration,
    ) -> SourceStatus {
        let age = self.video_age();
        let state = match age {
            None => "waiting",
            Some(a) if a > stall_after => "stalled",
            Some(_) => "live",
        };
        SourceStatus {
            listen: format!("udp://{listen}"),
            state,
            packets: self.packets,
            bytes: self.bytes,
            last_packet_age_ms: age.map(|a| a.as_millis() as u64),
            sender: self.last_sender.map(|s| s.to_string()),
            camera_address: camera.map(|a| a.to_string()),
            foreign_datagrams: self.foreign,
            last_foreign_sender: self.last_foreign_sender.map(|s| s.to_string()),
            malformed_datagrams: self.malformed,
            timelines: self.timelines,
            picture: self.picture.clone(),
        }
    }

    /// How long ago live video last arrived.
    pub fn video_age(&self) -> Option<Duration> {
        self.last_video.map(|t| t.elapsed())
    }

    /// Video arrived within `stall_after`.
    pub fn live(&self, stall_after: Duration) -> bool {
        self.video_age().is_some_and(|a| a <= stall_after)
    }
}

pub type SharedStats = Arc<Mutex<SourceStats>>;

/// The receive buffer asked for the camera's socket. A camera sends each
/// keyframe as a burst (150 KB and more at 720p); on a fast link (USB,
/// loopback) it arrives faster than the loop reads, and the kernel's default
/// (208 KiB of buffer, about 90 datagrams of accounted memory) dropped part
/// of every keyframe: every encoder then lost its keyframes, and so did the
/// passthrough rung's viewers. Bounded: the kernel caps it at
/// `net.core.rmem_max`.
pub const RECEIVE_BUFFER: usize = 4 << 20;

/// Binds the source socket; fails early (bad address, port in use) with the
/// OS reason. Its receive buffer is enlarged (see `RECEIVE_BUFFER`); a
/// kernel that allows less says so in the log.
pub async fn bind(addr: SocketAddr) -> std::io::Result<UdpSocket> {
    let socket = UdpSocket::bind(addr).await?;
    let got = set_receive_buffer(&socket, RECEIVE_BUFFER);
    // Linux reports twice the size asked (its bookkeeping).
    match got {
        Some(bytes) if bytes / 2 >= RECEIVE_BUFFER => {
            log::debug!("source: receive buffer {} KiB", bytes / 2048)
        }
        Some(bytes) => log::warn!(
            "source: the camera socket's receive buffer is {} KiB, not the {} KiB asked for (net.core.rmem_max): a keyframe burst may be partly lost",
            bytes / 2048,
            RECEIVE_BUFFER >> 10
        ),
        None => log::warn!("source: could not size the camera socket's receive buffer"),
    }
    Ok(socket)
}

/// Asks for `bytes` of receive buffer; the size in effect, as the kernel reports it.
fn set_receive_buffer(socket: &UdpSocket, bytes: usize) -> Option<usize> {
    use std::os::fd::AsRawFd;
    let fd = socket.as_raw_fd();
    let want = libc::c_int::try_from(bytes).ok()?;
    let len = std::mem::size_of::<libc::c_int>() as libc::socklen_t;
    // SAFETY: a valid socket and a c_int of the stated size, for both calls.
    unsafe {
        let p = (&want as *const libc::c_int).cast();
        libc::setsockopt(fd, libc::SOL_SOCKET, libc::SO_RCVBUF, p, len);
        let mut got: libc::c_int = 0;
        let mut got_len = len;
        let q = (&mut got as *mut libc::c_int).cast();
        let ok = libc::getsockopt(fd, libc::SOL_SOCKET, libc::SO_RCVBUF, q, &mut got_len) == 0;
        ok.then(|| usize::try_from(got).ok()).flatten()
    }
}

/// The camera's admitted stream, for every encoder: live pieces, and the
/// current group of pictures so that an encoder that starts now begins at once.
pub struct Feed {
    /// PAT, PMT and every piece since the newest keyframe; None while over the cap.
    gop: Mutex<Option<GopCopy>>,
    live: broadcast::Sender<Bytes>,
}

#[derive(Default)]
struct GopCopy {
    pieces: Vec<Bytes>,
    bytes: usize,
}

impl Default for Feed {
    fn default() -> Self {
        Feed {
            gop: Mutex::new(None),
            live: broadcast::channel(QUEUE_PIECES).0,
        }
    }
}

impl Feed {
    /// The pieces since the newest keyframe and a receiver for all that follow,
    /// with nothing lost or repeated between the two.
    pub fn subscribe(&self) -> (Vec<Bytes>, broadcast::Receiver<Bytes>) {
        let gop = self.gop.lock().unwrap();
        let rx = self.live.subscribe();
        (
            gop.as_ref().map(|g| g.pieces.clone()).unwrap_or_default(),
            rx,
        )
    }

    /// How far the newest frame is past the start of the current group of
    /// pictures, seconds: what an encoder starting now is fed before it is
    /// live (see `encoder::ffmpeg_args`). None without a group to start at.
    pub fn catch_up_s(&self) -> Option<f64> {
        // Read outside the lock: the camera's datagrams wait for it.
        let pieces = self.gop.lock().unwrap().as_ref()?.pieces.clone();
        let (first, newest) = crate::media::ts::video_pts_span(pieces.iter().map(|p| &p[..]))?;
        Some(crate::media::ts::pts_diff(newest, first) as f64 / 90_000.0)
    }

    /// Publishes one admitted datagram. `keyframe`: it holds a keyframe start
    /// (the copy restarts with `psi` and it); `new_timeline`: what was kept belongs
    /// to the old timeline and is dropped.
    fn publish(&self, datagram: &[u8], keyframe: bool, new_timeline: bool, psi: &[u8]) {
        let mut gop = self.gop.lock().unwrap();
        if new_timeline {
            *gop = None;
        }
        if keyframe {
            let mut g = GopCopy::default();
            for piece in psi.chunks(PIECE) {
                g.pieces.push(Bytes::copy_from_slice(piece));
                g.bytes += piece.len();
            }
            *gop = Some(g);
        }
        for piece in datagram.chunks(PIECE) {
            let piece = Bytes::copy_from_slice(piece);
            if let Some(g) = gop.as_mut() {
                g.bytes += piece.len();
                g.pieces.push(piece.clone());
                if g.bytes > MAX_GOP_BYTES {
                    *gop = None;
                }
            }
            // No subscriber (between encoder restarts) is fine: the piece is simply dropped.
            let _ = self.live.send(piece);
        }
    }
}

/// What the receive loop is told about the camera.
#[derive(Debug, Clone, Copy)]
pub struct Expect {
    /// Only this address is admitted; None: the sender of live video.
    pub camera: Option<IpAddr>,
    pub stall_after: Duration,
}

/// Receives datagrams forever, admits the camera's through the gate,
/// relays them to the passthrough rung at once and publishes them for the
/// encoders. `timeline` counts the camera's timelines: the encoders are
/// restarted on each new one. `found`: the camera `kind = "auto"` found,
/// which the gate then admits alone.
pub async fn receive(
    socket: Arc<UdpSocket>,
    feed: Arc<Feed>,
    passthrough: Arc<Passthrough>,
    stats: SharedStats,
    expect: Expect,
    timeline: watch::Sender<u64>,
    mut found: watch::Receiver<Option<IpAddr>>,
) {
    let mut gate = Gate::new(expect.camera, expect.stall_after);
    let mut refused_log = LogBudget::new(1, REFUSED_LOG_WINDOW);
    let mut buf = vec![0u8; 65536];
    let mut picture_at: Option<Instant> = None;
    loop {
        let (n, from) = match socket.recv_from(&mut buf).await {
            Ok(r) => r,
            Err(e) => {
                log::warn!("source: receive failed: {e}");
                tokio::time::sleep(Duration::from_millis(100)).await;
                continue;
            }
        };
        if found.has_changed().unwrap_or(false) {
            gate.follow(*found.borrow_and_update());
        }
        let now = Instant::now();
        match gate.admit(from.ip(), &buf[..n], now) {
            Verdict::Refused(why) => {
                let total = {
                    let mut s = stats.lock().unwrap();
                    match why {
                        Refused::Foreign => {
                            s.foreign += 1;
                            s.last_foreign_sender = Some(from);
                        }
                        Refused::Malformed => s.malformed += 1,
                    }
                    s.foreign + s.malformed
                };
                if let Allow::Log { suppressed } = refused_log.allow(now) {
                    let what = match why {
                        Refused::Foreign => match gate.sender() {
                            Some(camera) => format!("not from the camera ({camera})"),
                            None => "not from the camera".to_string(),
                        },
                        Refused::Malformed => "not whole MPEG-TS packets".to_string(),
                    };
                    log::warn!(
                        "source: dropped {n} bytes from {from}: {what} ({total} dropped in all, {suppressed} not logged since the last line)"
                    );
                }
            }
            Verdict::Admitted {
                video,
                new_timeline,
                keyframe,
            } => {
                {
                    let mut s = stats.lock().unwrap();
                    s.packets += 1;
                    s.bytes += n as u64;
                    s.last_sender = Some(from);
                    if video {
                        s.last_video = Some(now);
                    }
                    s.timelines = gate.timelines();
                    if picture_at.map_or(true, |t| now.duration_since(t) >= PICTURE_EVERY) {
                        s.picture = gate.picture(now);
                        picture_at = Some(now);
                    }
                }
                if let Some(why) = &new_timeline {
                    log::warn!("source: new camera timeline: {why}; restarting the encoders");
                    timeline.send_replace(gate.timelines());
                }
                // The passthrough rung first: nothing waits there.
                passthrough.datagram(&buf[..n], *timeline.borrow());
                feed.publish(&buf[..n], keyframe, new_timeline.is_some(), &gate.psi());
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn state_follows_the_age_of_the_last_video() {
        let listen: SocketAddr = "0.0.0.0:8554".parse().unwrap();
        let stall = Duration::from_secs(3);
        let mut s = SourceStats::default();
        assert_eq!(s.status(listen, None, stall).state, "waiting");
        s.last_video = Some(Instant::now());
        assert_eq!(s.status(listen, None, stall).state, "live");
        assert!(s.live(stall));
        s.last_video = Instant::now().checked_sub(Duration::from_secs(4));
        assert_eq!(s.status(listen, None, stall).state, "stalled");
        assert!(!s.live(stall));
    }

    #[test]
    fn a_starting_subscriber_gets_the_tables_and_the_group_of_pictures() {
        let feed = Feed::default();
        let psi = vec![0x47u8; 376];
        feed.publish(&[1u8; 1316], false, false, &psi);
        let (gop, _) = feed.subscribe();
        assert!(gop.is_empty(), "nothing before the first keyframe");
        feed.publish(&[2u8; 3000], true, false, &psi);
        feed.publish(&[3u8; 100], false, false, &psi);
        let (gop, mut rx) = feed.subscribe();
        let lens: Vec<usize> = gop.iter().map(|p| p.len()).collect();
        assert_eq!(lens, vec![376, PIECE, PIECE, 3000 - 2 * PIECE, 100]);
        feed.publish(&[4u8; 10], false, false, &psi);
        assert_eq!(rx.try_recv().unwrap().as_ref(), &[4u8; 10]);
        feed.publish(&[5u8; 10], false, true, &psi);
        assert!(
            feed.subscribe().0.is_empty(),
            "a new timeline drops the old one's pictures"
        );
    }

    #[tokio::test]
    async fn the_camera_socket_gets_a_larger_receive_buffer_within_the_kernels_cap() {
        let socket = bind("127.0.0.1:0".parse().unwrap()).await.unwrap();
        let got = set_receive_buffer(&socket, 0).unwrap(); // the kernel's floor
        let max: usize = std::fs::read_to_string("/proc/sys/net/core/rmem_max")
            .ok()
            .and_then(|s| s.trim().parse().ok())
            .unwrap_or(212_992);
        let after = set_receive_buffer(&socket, RECEIVE_BUFFER).unwrap();
        assert!(after > got, "{after} > {got}");
        assert_eq!(after / 2, RECEIVE_BUFFER.min(max), "asked, within rmem_max");
    }

    #[test]
    fn the_copy_is_capped_in_bytes() {
        let feed = Feed::default();
        feed.publish(&[2u8; 1316], true, false, &[]);
        for _ in 0..(MAX_GOP_BYTES / 60_000 + 1) {
            feed.publish(&[0u8; 60_000], false, false, &[]);
        }
        assert!(feed.subscribe().0.is_empty());
        let queued = QUEUE_PIECES * PIECE;
        assert!(
            queued < 3 << 20,
            "the live queue holds at most {queued} bytes"
        );
    }
}
