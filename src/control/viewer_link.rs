//! One viewer's link, measured on its own socket: the socket tuned so that
//! the backlog stays in the hub (where it can be skipped), TCP_INFO sampled
//! on a timer into windowed figures for the controller, the viewer judged
//! warming up, counted or stalled, and the padding written during a
//! headroom probe. The HTTP side owns the socket and calls in here.

use crate::control::link::{read_tcp_info, LinkSample, LinkWindow, RelayView};
use crate::control::viewers::{Standing, Viewers};
use log::{debug, info};
use std::os::fd::RawFd;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// A small kernel send buffer keeps a slow viewer's backlog in the hub, where it
/// can be skipped, and makes the kernel's unsent-bytes figure an honest signal.
/// It is sized to what the viewer's rung sends in `SEND_BUFFER_RTTS` of the
/// path's lowest round trip, between `SEND_BUFFER_TIME_MIN` and
/// `SEND_BUFFER_TIME` (see `send_buffer_for`), within these bounds in bytes.
const SEND_BUFFER: libc::c_int = 128 * 1024;
/// The kernel doubles it: room for five or six full segments in flight, so
/// that a lost one is repaired by duplicate acknowledgements (three), not a
/// retransmission timeout. More than that, on a short path whose link fell,
/// is video queued in front of the step down (8 KiB: 0.2 s at 600 kbit/s).
const SEND_BUFFER_MIN: u64 = 4 * 1024;
const SEND_BUFFER_MAX: u64 = 256 * 1024;
/// Before the path's round trip is known, and on a path with a long one.
const SEND_BUFFER_TIME: f64 = 0.1;
/// On a short path: what the buffer holds beyond the path's own needs is
/// queue in front of the viewer's next picture. When the link falls, the
/// buffer's bytes in flight fill the access point's queue and must all reach
/// the phone before its first picture of a lower rung: 0.1 s of a 2400
/// kbit/s rung (doubled by the kernel) was 0.5 s at 600 kbit/s.
const SEND_BUFFER_TIME_MIN: f64 = 0.02;
/// Round trips of the rung a send buffer holds: TCP keeps about one in
/// flight, and the rest covers acknowledgements that come in bursts (Wi-Fi
/// aggregation) and a keyframe's burst.
const SEND_BUFFER_RTTS: f64 = 4.0;
const NOTSENT_LOWAT: libc::c_int = 16 * 1024;
/// How often padding is written during a headroom probe.
pub const PAD_EVERY: Duration = Duration::from_millis(20);
/// A viewer whose socket has had data outstanding without a single byte
/// acknowledged for this long is not slow but gone: it stops counting in the
/// controller's decisions at once (it is dropped at `viewer_stall_timeout_s`).
/// A link that carries anything at all acknowledges within a second.
const NO_PROGRESS: Duration = Duration::from_secs(1);
/// A new viewer counts in the controller's decisions only after this long:
/// its first figures show the keyframe it joined at (up to a keyframe
/// interval old) and its first burst, not its link.
const WARM_UP: Duration = Duration::from_secs(2);

/// Sets the viewer socket's send buffer, unsent-bytes low-water mark and no-delay.
pub fn tune_viewer_socket(fd: RawFd) {
    set(fd, libc::SOL_SOCKET, libc::SO_SNDBUF, SEND_BUFFER);
    set(
        fd,
        libc::IPPROTO_TCP,
        libc::TCP_NOTSENT_LOWAT,
        NOTSENT_LOWAT,
    );
    set(fd, libc::IPPROTO_TCP, libc::TCP_NODELAY, 1);
    // Between frames a live stream is often "thin" (under four segments in
    // flight), where a lost tail segment waits for a retransmission timeout;
    // linear timeouts retry such a segment every RTO instead of doubling the
    // wait each time (0.2 + 0.4 + 0.8 s on a lossy link).
    if !left_off("thin_linear_timeouts") {
        set(fd, libc::IPPROTO_TCP, libc::TCP_THIN_LINEAR_TIMEOUTS, 1);
    }
}

/// The viewer socket options a measurement asks the daemon to leave off, to
/// see what each does on a lossy link (benches/adapt_capacity.rs, stall
/// remedies): `LIVESTREAMD_VIEWER_TCP_OFF=thin_linear_timeouts`. Read once.
fn left_off(option: &str) -> bool {
    static OFF: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    OFF.get_or_init(|| std::env::var("LIVESTREAMD_VIEWER_TCP_OFF").unwrap_or_default())
        .split(',')
        .any(|o| o.trim() == option)
}

/// The send buffer for a viewer sent `kbps` (its rung, and any probe padding)
/// over a path whose lowest round trip is `min_rtt` (None: not known yet):
/// `SEND_BUFFER_RTTS` round trips of it, at least `SEND_BUFFER_TIME_MIN` and
/// at most `SEND_BUFFER_TIME`, so that little video waits in the socket and
/// the network, out of the hub's reach, however slow the link. (The kernel
/// doubles the value for its own bookkeeping; payload fits in about the half.)
pub fn send_buffer_for(kbps: u64, min_rtt: Option<Duration>) -> u64 {
    let time = min_rtt.map_or(SEND_BUFFER_TIME, |rtt| {
        (SEND_BUFFER_RTTS * rtt.as_secs_f64()).clamp(SEND_BUFFER_TIME_MIN, SEND_BUFFER_TIME)
    });
    let bytes = (kbps as f64 * 1000.0 / 8.0 * time) as u64;
    bytes.clamp(SEND_BUFFER_MIN, SEND_BUFFER_MAX)
}

/// The rate a viewer's send buffer is sized for: its rung's (with any probe
/// padding), but no more than half again what its link carried lately. When
/// the link falls to a quarter of the rung, a buffer sized for the rung would
/// hold a second of video the viewer must still receive after it moves down.
pub fn buffer_rate_kbps(rung_kbps: u64, padding_kbps: u64, carried_kbps: Option<f64>) -> u64 {
    let sent = rung_kbps + padding_kbps;
    match carried_kbps {
        // A probe measures the link: it needs the room.
        Some(carried) if carried > 0.0 && padding_kbps == 0 => sent.min((carried * 1.5) as u64),
        _ => sent,
    }
}

/// What a link lately carried, kbit/s, for sizing its send buffer: over the
/// window, or over the newest interval if less and data was waiting for the
/// link then (so the interval measured the link, not a pause in the video).
/// The window takes a second to slide down to a link that fell; meanwhile a
/// send buffer sized for the rung fills with video the viewer must receive
/// before it can move down. A stall (nothing acknowledged) is not a rate.
pub fn carried_lately(s: &LinkSample) -> Option<f64> {
    let waiting = s.notsent_bytes > 0 || s.lag_ms > 0;
    let window = Some(s.throughput_kbps).filter(|k| *k > 0.0);
    let recent = Some(s.recent_kbps).filter(|k| waiting && *k > 0.0);
    match (window, recent) {
        (Some(w), Some(r)) => Some(w.min(r)),
        (w, r) => w.or(r),
    }
}

/// Whether a send buffer of `was` bytes should be resized to `now`: on a
/// change of more than a fifth (a setsockopt per sample would gain nothing).
pub fn resize_worthwhile(was: Option<u64>, now: u64) -> bool {
    was.map_or(true, |was| now.abs_diff(was) * 5 > was)
}

/// Sets the viewer socket's send buffer to `bytes` (see `send_buffer_for`).
pub fn size_send_buffer(fd: RawFd, bytes: u64) {
    set(fd, libc::SOL_SOCKET, libc::SO_SNDBUF, bytes as libc::c_int);
}

fn set(fd: RawFd, level: libc::c_int, name: libc::c_int, value: libc::c_int) {
    // SAFETY: a valid fd and a c_int option value of the right size.
    let rc = unsafe {
        libc::setsockopt(
            fd,
            level,
            name,
            &value as *const _ as *const libc::c_void,
            std::mem::size_of::<libc::c_int>() as libc::socklen_t,
        )
    };
    if rc != 0 {
        debug!(
            "setsockopt({name}) failed: {}",
            std::io::Error::last_os_error()
        );
    }
}

/// Unsent bytes in a viewer's socket up to which more video is written. The
/// kernel's own limits do not hold this: while the congestion window is full,
/// a write is appended to the unsent tail segment past SO_SNDBUF and
/// TCP_NOTSENT_LOWAT, up to a whole GSO segment (64 KiB) — a second of video
/// at 600 kbit/s that a viewer moving down must still receive. 8 KiB keeps a
/// link carrying up to 13 Mbit/s busy between checks `ROOM_EVERY` apart.
pub const UNSENT_MAX: u32 = 8 * 1024;
/// How often a writer waiting for `UNSENT_MAX` looks again.
pub const ROOM_EVERY: Duration = Duration::from_millis(5);

/// Whether the viewer's socket has room for more video (see `UNSENT_MAX`).
/// A socket TCP_INFO cannot be read from has room: its write will tell.
pub fn has_room(fd: RawFd) -> bool {
    read_tcp_info(fd).map_or(true, |t| t.notsent_bytes < UNSENT_MAX)
}

/// Null TS packets (PID 0x1FFF), which every player discards.
static NULL_PACKETS: std::sync::OnceLock<Vec<u8>> = std::sync::OnceLock::new();
/// Most null packets written at once.
const PAD_PACKETS_MAX: usize = 64;

/// What a probe may have on its way to the viewer, unacknowledged, as time
/// at its padding's rate: `PAD_QUEUE_RTTS` of the path's lowest round trip,
/// and at least `PAD_QUEUE_MIN`. A link with room carries the padding within
/// that; a link without it holds no more than that ahead of the video in
/// its queues (30 ms of 3.7 Mbit/s is 0.2 s at 600 kbit/s), where it was a
/// whole send buffer and a shaper's queue (0.7 s of lag at each probe).
const PAD_QUEUE_RTTS: f64 = 4.0;
const PAD_QUEUE_MIN: Duration = Duration::from_millis(30);

/// Bytes of padding to write now for `kbps`, given what the socket holds
/// (`notsent`, `outq` bytes: unsent, and not yet acknowledged) and the
/// path's lowest round trip: none while unsent data waits (a link that cannot
/// drain what it has is not asked for more), and never more than keeps the
/// unacknowledged bytes within `PAD_QUEUE_RTTS` round trips of padding.
pub fn pad_bytes(kbps: u64, notsent: u32, outq: u64, min_rtt_us: u32) -> usize {
    if notsent > 4096 {
        return 0;
    }
    let per_second = kbps as f64 * 1000.0 / 8.0;
    let window = (PAD_QUEUE_RTTS * f64::from(min_rtt_us) / 1e6).max(PAD_QUEUE_MIN.as_secs_f64());
    let room = ((per_second * window).max(2.0 * 188.0) - outq as f64).max(0.0);
    let bytes = (per_second * PAD_EVERY.as_secs_f64()).max(188.0).min(room);
    ((bytes / 188.0).floor() as usize).min(PAD_PACKETS_MAX) * 188
}

/// The padding to write now for `kbps` (see `pad_bytes`), or None.
pub fn padding(fd: RawFd, kbps: u64) -> Option<&'static [u8]> {
    let nulls = NULL_PACKETS.get_or_init(|| {
        let mut p = [0xffu8; 188];
        p[..4].copy_from_slice(&[0x47, 0x1f, 0xff, 0x10]);
        p.repeat(PAD_PACKETS_MAX)
    });
    let tcp = read_tcp_info(fd).ok()?;
    let bytes = pad_bytes(kbps, tcp.notsent_bytes, tcp.outq_bytes, tcp.min_rtt_us);
    (bytes > 0).then(|| &nulls[..bytes])
}

/// Samples one viewer's link on a timer and reports it.
pub struct ViewerLink {
    fd: RawFd,
    viewer: u64,
    viewers: Arc<Viewers>,
    window: LinkWindow,
    pub ticker: tokio::time::Interval,
    /// Bytes acknowledged so far, and when that figure last grew.
    acked: (u64, Instant),
    stalled: bool,
    connected: Instant,
    /// What the link lately carried, kbit/s (see `carried_lately`; None
    /// before the second sample).
    carried_kbps: Option<f64>,
    /// The path's lowest round trip so far (None before a sample has one).
    min_rtt: Option<Duration>,
}

impl ViewerLink {
    pub fn new(fd: RawFd, viewer: u64, viewers: Arc<Viewers>, every: Duration) -> Self {
        let mut ticker = tokio::time::interval(every);
        ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        ViewerLink {
            fd,
            viewer,
            viewers,
            window: LinkWindow::new(1.0),
            ticker,
            acked: (0, Instant::now()),
            stalled: false,
            connected: Instant::now(),
            carried_kbps: None,
            min_rtt: None,
        }
    }

    /// What the link lately carried, kbit/s (see `carried_lately`).
    pub fn carried_kbps(&self) -> Option<f64> {
        self.carried_kbps
    }

    /// The path's lowest round trip so far, as the kernel measured it.
    pub fn min_rtt(&self) -> Option<Duration> {
        self.min_rtt
    }

    /// Reads TCP_INFO now; `lag` and `skips` are the hub's view of the
    /// viewer. Returns the bytes waiting in its socket.
    pub fn sample(&mut self, lag: Duration, skips: u64) -> Option<u64> {
        let Ok(tcp) = read_tcp_info(self.fd) else {
            return None;
        };
        let now = Instant::now();
        // Zero until the kernel has timed a round trip.
        if tcp.min_rtt_us > 0 {
            self.min_rtt = Some(Duration::from_micros(u64::from(tcp.min_rtt_us)));
        }
        if tcp.bytes_acked > self.acked.0 {
            self.acked = (tcp.bytes_acked, now);
        }
        let outstanding = tcp.notsent_bytes > 0 || tcp.bytes_sent > tcp.bytes_acked;
        let stalled = outstanding && now.duration_since(self.acked.1) >= NO_PROGRESS;
        if stalled && !self.stalled {
            info!(
                "viewer {}: nothing acknowledged for {} s; left out of quality decisions",
                self.viewer,
                NO_PROGRESS.as_secs()
            );
        }
        self.stalled = stalled;
        let standing = if stalled {
            Standing::Stalled
        } else if now.duration_since(self.connected) < WARM_UP {
            Standing::WarmingUp
        } else {
            Standing::Counted
        };
        let relay = RelayView {
            lag_ms: lag.as_millis() as u64,
            skips,
        };
        let s = self.window.add(self.viewers.now(), tcp, relay);
        log::trace!("viewer {}: {standing:?} {s:?}", self.viewer);
        self.carried_kbps = carried_lately(&s);
        self.viewers.link(self.viewer, s, standing);
        Some(s.queued_bytes)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// An int socket option, read back.
    fn option(fd: RawFd, level: libc::c_int, name: libc::c_int) -> libc::c_int {
        let mut value: libc::c_int = -1;
        let mut len = std::mem::size_of::<libc::c_int>() as libc::socklen_t;
        // SAFETY: a valid fd; value and len describe a c_int.
        let rc = unsafe {
            libc::getsockopt(
                fd,
                level,
                name,
                (&mut value as *mut libc::c_int).cast(),
                &mut len,
            )
        };
        assert_eq!(rc, 0, "{}", std::io::Error::last_os_error());
        value
    }

    #[test]
    fn a_viewer_socket_gets_no_delay_and_linear_timeouts_while_thin() {
        use std::os::fd::AsRawFd;
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let sock = std::net::TcpStream::connect(listener.local_addr().unwrap()).unwrap();
        let fd = sock.as_raw_fd();
        tune_viewer_socket(fd);
        assert_eq!(option(fd, libc::IPPROTO_TCP, libc::TCP_NODELAY), 1);
        assert_eq!(
            option(fd, libc::IPPROTO_TCP, libc::TCP_THIN_LINEAR_TIMEOUTS),
            1
        );
        assert_eq!(
            option(fd, libc::IPPROTO_TCP, libc::TCP_NOTSENT_LOWAT),
            NOTSENT_LOWAT
        );
    }

    #[test]
    fn the_buffer_follows_the_link_down_but_not_a_probe() {
        assert_eq!(
            buffer_rate_kbps(2400, 0, None),
            2400,
            "nothing measured yet"
        );
        assert_eq!(buffer_rate_kbps(2400, 0, Some(3000.0)), 2400, "a good link");
        assert_eq!(buffer_rate_kbps(2400, 0, Some(400.0)), 600, "a link at 1/6");
        assert_eq!(buffer_rate_kbps(800, 400, Some(400.0)), 1200, "probing");
        assert!(resize_worthwhile(None, 600));
        assert!(!resize_worthwhile(Some(600), 650));
        assert!(resize_worthwhile(Some(2400), 600));
    }

    #[test]
    fn the_buffer_follows_the_newest_interval_only_when_it_measured_the_link() {
        let fell = LinkSample {
            throughput_kbps: 2000.0,
            recent_kbps: 600.0,
            notsent_bytes: 9000,
            ..LinkSample::default()
        };
        assert_eq!(
            carried_lately(&fell),
            Some(600.0),
            "data waited: the link fell"
        );
        let idle = LinkSample {
            notsent_bytes: 0,
            lag_ms: 0,
            ..fell
        };
        assert_eq!(
            carried_lately(&idle),
            Some(2000.0),
            "nothing waited: a pause in the video"
        );
        let behind = LinkSample {
            lag_ms: 400,
            ..idle
        };
        assert_eq!(
            carried_lately(&behind),
            Some(600.0),
            "data waited in the hub"
        );
        let stalled = LinkSample {
            recent_kbps: 0.0,
            ..fell
        };
        assert_eq!(
            carried_lately(&stalled),
            Some(2000.0),
            "a stall is not a rate"
        );
        let faster = LinkSample {
            recent_kbps: 3000.0,
            ..fell
        };
        assert_eq!(carried_lately(&faster), Some(2000.0));
        assert_eq!(carried_lately(&LinkSample::default()), None);
    }

    #[test]
    fn a_probe_keeps_little_padding_on_its_way() {
        // 3.7 Mbit/s of padding, 20 ms of it a write: 9250 bytes, 49 packets.
        assert_eq!(pad_bytes(3700, 0, 0, 50), 49 * 188);
        // Up to 30 ms of it unacknowledged (13 875 bytes) on a short path.
        assert_eq!(pad_bytes(3700, 0, 10_000, 50), 20 * 188);
        assert_eq!(pad_bytes(3700, 0, 14_000, 50), 0, "a queue builds");
        // A path with a 20 ms round trip may have 80 ms of it on its way.
        assert_eq!(pad_bytes(3700, 0, 14_000, 20_000), 49 * 188);
        assert_eq!(pad_bytes(3700, 0, 37_000, 20_000), 0);
        // Unsent data waiting: nothing.
        assert_eq!(pad_bytes(3700, 5000, 0, 50), 0);
        assert_eq!(pad_bytes(100_000, 0, 0, 50), 64 * 188, "at most 64 packets");
        assert_eq!(pad_bytes(20, 0, 0, 50), 188, "at least one packet");
    }

    #[test]
    fn the_send_buffer_holds_a_few_round_trips_of_the_rung() {
        let ms = |m: u64| Some(Duration::from_millis(m));
        assert_eq!(
            send_buffer_for(4000, None),
            50_000,
            "0.1 s before a round trip is timed"
        );
        assert_eq!(
            send_buffer_for(4000, ms(10)),
            20_000,
            "four round trips of 10 ms"
        );
        assert_eq!(send_buffer_for(4000, ms(100)), 50_000, "at most 0.1 s");
        assert_eq!(send_buffer_for(4000, ms(0)), 10_000, "at least 20 ms");
        assert_eq!(send_buffer_for(2400, ms(0)), 6000, "20 ms of 2400 kbit/s");
        assert_eq!(send_buffer_for(600, ms(0)), SEND_BUFFER_MIN, "never tiny");
        assert_eq!(
            send_buffer_for(100_000, None),
            SEND_BUFFER_MAX,
            "never huge"
        );
    }
}
