//! Per-viewer link measurement: the kernel's TCP_INFO for each viewer socket,
//! turned into windowed figures (RTT, loss, delivery rate, unsent bytes) that
//! the controller and `/status` use. Only `read_tcp_info` does I/O.

use serde::Serialize;
use std::collections::VecDeque;
use std::os::fd::RawFd;

/// The leading part of Linux's `struct tcp_info` (include/uapi/linux/tcp.h)
/// up to `tcpi_bytes_retrans`; older kernels fill less, which `len` tells.
#[repr(C)]
#[derive(Debug, Default, Clone, Copy)]
struct RawTcpInfo {
    state: u8,
    ca_state: u8,
    retransmits: u8,
    probes: u8,
    backoff: u8,
    options: u8,
    wscale: u8,
    /// Bit 0: tcpi_delivery_rate_app_limited.
    flags: u8,
    rto: u32,
    ato: u32,
    snd_mss: u32,
    rcv_mss: u32,
    unacked: u32,
    sacked: u32,
    lost: u32,
    retrans: u32,
    fackets: u32,
    last_data_sent: u32,
    last_ack_sent: u32,
    last_data_recv: u32,
    last_ack_recv: u32,
    pmtu: u32,
    rcv_ssthresh: u32,
    rtt: u32,
    rttvar: u32,
    snd_ssthresh: u32,
    snd_cwnd: u32,
    advmss: u32,
    reordering: u32,
    rcv_rtt: u32,
    rcv_space: u32,
    total_retrans: u32,
    pacing_rate: u64,
    max_pacing_rate: u64,
    bytes_acked: u64,
    bytes_received: u64,
    segs_out: u32,
    segs_in: u32,
    notsent_bytes: u32,
    min_rtt: u32,
    data_segs_in: u32,
    data_segs_out: u32,
    delivery_rate: u64,
    busy_time: u64,
    rwnd_limited: u64,
    sndbuf_limited: u64,
    delivered: u32,
    delivered_ce: u32,
    bytes_sent: u64,
    bytes_retrans: u64,
}

/// One reading of a socket's TCP state (cumulative counters as the kernel keeps them).
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct TcpReading {
    /// Smoothed RTT and its variation, microseconds.
    pub rtt_us: u32,
    pub rttvar_us: u32,
    pub total_retrans: u32,
    pub snd_cwnd: u32,
    /// Bytes per second, from the kernel's latest delivery-rate sample.
    pub delivery_rate: u64,
    /// The delivery-rate sample was limited by how much we sent, not by the link.
    pub app_limited: bool,
    pub notsent_bytes: u32,
    pub bytes_acked: u64,
    pub bytes_sent: u64,
    pub bytes_retrans: u64,
    /// Bytes in the send queue not yet acknowledged, unsent ones included
    /// (`SIOCOUTQ`).
    pub outq_bytes: u64,
    /// The lowest round trip seen, microseconds: the path without its queues.
    pub min_rtt_us: u32,
}

/// Reads TCP_INFO from a connected TCP socket.
pub fn read_tcp_info(fd: RawFd) -> std::io::Result<TcpReading> {
    let mut raw = RawTcpInfo::default();
    let mut len = std::mem::size_of::<RawTcpInfo>() as libc::socklen_t;
    // SAFETY: `raw` is a plain C struct of `len` bytes; the kernel writes at most `len`.
    let rc = unsafe {
        libc::getsockopt(
            fd,
            libc::IPPROTO_TCP,
            libc::TCP_INFO,
            &mut raw as *mut RawTcpInfo as *mut libc::c_void,
            &mut len,
        )
    };
    if rc != 0 {
        return Err(std::io::Error::last_os_error());
    }
    // Kernels before 4.19 fill less (no bytes_sent, bytes_retrans), and
    // qemu-user returns 4 bytes: figures that were not filled would read as
    // zero, so a reading that short is refused rather than reported.
    if (len as usize) < std::mem::size_of::<RawTcpInfo>() {
        return Err(std::io::Error::new(
            std::io::ErrorKind::Unsupported,
            format!(
                "TCP_INFO is {len} bytes here, fewer than the {} needed",
                std::mem::size_of::<RawTcpInfo>()
            ),
        ));
    }
    // The send queue from the kernel itself, not from bytes_sent - acked -
    // retrans: a retransmission dropped by a local qdisc (tbf, a Wi-Fi
    // driver's queue) counts as sent but not as retransmitted, and that
    // difference only grows.
    let mut outq: libc::c_int = 0;
    // SAFETY: SIOCOUTQ (= TIOCOUTQ) writes one int.
    if unsafe { libc::ioctl(fd, libc::TIOCOUTQ, &mut outq) } != 0 {
        return Err(std::io::Error::last_os_error());
    }
    Ok(TcpReading {
        outq_bytes: u64::try_from(outq).unwrap_or(0),
        min_rtt_us: raw.min_rtt,
        rtt_us: raw.rtt,
        rttvar_us: raw.rttvar,
        total_retrans: raw.total_retrans,
        snd_cwnd: raw.snd_cwnd,
        delivery_rate: raw.delivery_rate,
        app_limited: raw.flags & 1 != 0,
        notsent_bytes: raw.notsent_bytes,
        bytes_acked: raw.bytes_acked,
        bytes_sent: raw.bytes_sent,
        bytes_retrans: raw.bytes_retrans,
    })
}

/// What the relay knows about a viewer at the time of a reading.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct RelayView {
    /// Age of the viewer's next unsent chunk: its queue depth in media time.
    pub lag_ms: u64,
    /// Skips to a newer keyframe so far (cumulative).
    pub skips: u64,
}

/// A windowed link figure for one viewer: what the controller consumes.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize)]
pub struct LinkSample {
    /// Seconds on the daemon's monotonic clock.
    pub t: f64,
    pub rtt_ms: f64,
    pub rttvar_ms: f64,
    /// Retransmitted share of the bytes sent in the window, percent.
    pub loss_pct: f64,
    /// Bytes acknowledged per second over the window, as kbit/s.
    pub throughput_kbps: f64,
    /// The same over the newest reading interval alone: the window's figure
    /// slides down for a second after a link stops acknowledging, which
    /// looks like a slow link; this one tells a stall (next to nothing) and
    /// a backlog draining at the link's speed from a link that carries part
    /// of what it is sent.
    pub recent_kbps: f64,
    /// The kernel's highest delivery-rate sample in the window that was not
    /// limited by how much we sent, kbit/s: a measurement of the link's
    /// capacity. 0 when every sample was app-limited (the link had room).
    pub delivery_kbps: f64,
    pub notsent_bytes: u32,
    /// Bytes in the viewer's socket not yet acknowledged: unsent ones and
    /// those on the way (retransmissions not counted twice). Video waiting
    /// there is as late as video waiting in the hub.
    pub queued_bytes: u64,
    /// How far behind live the viewer's next unsent chunk in the hub is, ms.
    pub lag_ms: u64,
    /// Skips within the window.
    pub skips: u64,
}

/// Turns a viewer's successive readings into windowed samples.
#[derive(Debug)]
pub struct LinkWindow {
    window_s: f64,
    history: VecDeque<(f64, TcpReading, RelayView)>,
}

impl LinkWindow {
    pub fn new(window_s: f64) -> Self {
        LinkWindow {
            window_s,
            history: VecDeque::new(),
        }
    }

    /// Adds a reading taken at `t` seconds and returns the figures over the window.
    pub fn add(&mut self, t: f64, tcp: TcpReading, relay: RelayView) -> LinkSample {
        self.history.push_back((t, tcp, relay));
        while self.history.len() > 2 && t - self.history[1].0 >= self.window_s {
            self.history.pop_front();
        }
        let (t0, first, relay0) = self.history[0];
        let dt = (t - t0).max(1e-3);
        let sent = tcp.bytes_sent.saturating_sub(first.bytes_sent);
        let retrans = tcp.bytes_retrans.saturating_sub(first.bytes_retrans);
        let loss_pct = if sent > 0 {
            100.0 * retrans as f64 / sent as f64
        } else {
            0.0
        };
        let acked = tcp.bytes_acked.saturating_sub(first.bytes_acked);
        let kbps = |bytes: u64, secs: f64| bytes as f64 * 8.0 / secs.max(1e-3) / 1000.0;
        let recent_kbps = match self.history.len() {
            n if n > 1 => {
                let (t_prev, prev, _) = self.history[n - 2];
                kbps(tcp.bytes_acked.saturating_sub(prev.bytes_acked), t - t_prev)
            }
            _ => 0.0,
        };
        let delivery = self
            .history
            .iter()
            .filter(|(_, r, _)| !r.app_limited)
            .map(|(_, r, _)| r.delivery_rate)
            .max()
            .unwrap_or(0);
        LinkSample {
            t,
            rtt_ms: f64::from(tcp.rtt_us) / 1000.0,
            rttvar_ms: f64::from(tcp.rttvar_us) / 1000.0,
            loss_pct,
            throughput_kbps: if self.history.len() > 1 {
                kbps(acked, dt)
            } else {
                0.0
            },
            recent_kbps,
            delivery_kbps: delivery as f64 * 8.0 / 1000.0,
            notsent_bytes: tcp.notsent_bytes,
            queued_bytes: tcp.outq_bytes,
            lag_ms: relay.lag_ms,
            skips: relay.skips.saturating_sub(relay0.skips),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn reading(sent: u64, retrans: u64, acked: u64, rate: u64) -> TcpReading {
        TcpReading {
            rtt_us: 20_000,
            rttvar_us: 5_000,
            bytes_sent: sent,
            bytes_retrans: retrans,
            bytes_acked: acked,
            delivery_rate: rate,
            ..Default::default()
        }
    }

    #[test]
    fn the_struct_matches_the_kernel_layout() {
        // Offsets from include/uapi/linux/tcp.h (offset_of! would need a newer Rust).
        let raw = RawTcpInfo::default();
        let base = &raw as *const RawTcpInfo as usize;
        let at = |field: *const u8| field as usize - base;
        assert_eq!(at(std::ptr::addr_of!(raw.rtt).cast()), 68);
        assert_eq!(at(std::ptr::addr_of!(raw.total_retrans).cast()), 100);
        assert_eq!(at(std::ptr::addr_of!(raw.bytes_acked).cast()), 120);
        assert_eq!(at(std::ptr::addr_of!(raw.notsent_bytes).cast()), 144);
        assert_eq!(at(std::ptr::addr_of!(raw.delivery_rate).cast()), 160);
        assert_eq!(at(std::ptr::addr_of!(raw.bytes_sent).cast()), 200);
        assert_eq!(at(std::ptr::addr_of!(raw.bytes_retrans).cast()), 208);
        assert_eq!(std::mem::size_of::<RawTcpInfo>(), 216);
    }

    #[test]
    #[cfg_attr(
        feature = "qemu-user",
        ignore = "qemu-user treats every SOL_TCP option as an int: TCP_INFO comes back 4 bytes long, all counters zero"
    )]
    fn reads_a_real_socket() {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let mut c = std::net::TcpStream::connect(l.local_addr().unwrap()).unwrap();
        let (mut s, _) = l.accept().unwrap();
        use std::io::{Read, Write};
        use std::os::fd::AsRawFd;
        s.write_all(&[7u8; 100_000]).unwrap();
        let mut buf = vec![0u8; 100_000];
        c.read_exact(&mut buf).unwrap();
        let r = read_tcp_info(s.as_raw_fd()).unwrap();
        assert!(r.bytes_acked >= 100_000 && r.bytes_sent >= 100_000, "{r:?}");
        assert_eq!(r.outq_bytes, 0, "all read, so all acknowledged: {r:?}");
        // Unread by the peer: the data waits in the queue.
        let _idle_peer = std::net::TcpStream::connect(l.local_addr().unwrap()).unwrap();
        let (mut s2, _) = l.accept().unwrap();
        s2.set_nonblocking(true).unwrap();
        let mut written = 0;
        while let Ok(n) = s2.write(&[1u8; 65536]) {
            written += n;
        }
        let r = read_tcp_info(s2.as_raw_fd()).unwrap();
        assert!(r.outq_bytes > 0, "{written} written, unread: {r:?}");
        assert!(r.rtt_us > 0);
        assert!(read_tcp_info(-1).is_err());
    }

    #[test]
    fn window_figures_come_from_counter_deltas() {
        let mut w = LinkWindow::new(1.0);
        let relay = |skips| RelayView { lag_ms: 40, skips };
        let first = w.add(0.0, reading(0, 0, 0, 100_000), relay(0));
        assert_eq!(first.throughput_kbps, 0.0);
        w.add(0.5, reading(50_000, 1_000, 45_000, 150_000), relay(1));
        let mut app_limited = reading(80_000, 2_000, 80_000, 900_000);
        app_limited.app_limited = true;
        w.add(0.8, app_limited, relay(1));
        let s = w.add(1.0, reading(100_000, 5_000, 100_000, 120_000), relay(2));
        assert!((s.loss_pct - 5.0).abs() < 1e-9, "{s:?}");
        assert!((s.throughput_kbps - 800.0).abs() < 1e-6, "{s:?}");
        assert!(
            (s.recent_kbps - 800.0).abs() < 1e-6,
            "20 000 bytes in the newest 0.2 s: {s:?}"
        );
        assert_eq!(
            s.delivery_kbps, 1200.0,
            "max delivery-rate sample in the window"
        );
        assert_eq!(s.skips, 2);
        assert_eq!(s.rtt_ms, 20.0);
        // Older readings leave the window.
        let s = w.add(2.2, reading(200_000, 5_000, 200_000, 90_000), relay(2));
        assert_eq!(s.loss_pct, 0.0, "{s:?}");
        assert_eq!(s.skips, 0);
    }
}
