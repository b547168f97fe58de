//! Active probes of the hosts that `[[output]]` UDP pushes go to. A push has no
//! TCP connection to measure, so the daemon sends small probes (ICMP echo or a
//! UDP echo) to the phone and turns the answers into the same link figures the
//! controller gets for HTTP viewers: round-trip time and loss.

use crate::control::link::LinkSample;
use std::collections::VecDeque;
use std::net::{IpAddr, SocketAddr};
use std::time::{Duration, Instant};

pub use crate::config::ProbeMode;

/// Probes sent and answered over a sliding window; pure.
#[derive(Debug)]
pub struct ProbeWindow {
    window: usize,
    timeout: Duration,
    /// (sequence, sent at, round trip once answered)
    probes: VecDeque<(u16, Instant, Option<Duration>)>,
}

impl ProbeWindow {
    pub fn new(window: usize, timeout: Duration) -> Self {
        ProbeWindow {
            window,
            timeout,
            probes: VecDeque::new(),
        }
    }

    pub fn sent(&mut self, seq: u16, at: Instant) {
        self.probes.push_back((seq, at, None));
        while self.probes.len() > self.window {
            self.probes.pop_front();
        }
    }

    /// An answer to `seq` arrived at `at`; late or unknown answers are ignored.
    pub fn answered(&mut self, seq: u16, at: Instant) {
        let timeout = self.timeout;
        if let Some(p) = self.probes.iter_mut().find(|p| p.0 == seq && p.2.is_none()) {
            let rtt = at.saturating_duration_since(p.1);
            if rtt <= timeout {
                p.2 = Some(rtt);
            }
        }
    }

    /// The figures at `now` (`t`: the daemon's clock): probes younger than the
    /// timeout are not counted yet. None until one probe is decided.
    pub fn sample(&self, now: Instant, t: f64) -> Option<LinkSample> {
        let decided: Vec<Option<Duration>> = self
            .probes
            .iter()
            .filter(|p| p.2.is_some() || now.saturating_duration_since(p.1) > self.timeout)
            .map(|p| p.2)
            .collect();
        if decided.is_empty() {
            return None;
        }
        let rtts: Vec<f64> = decided
            .iter()
            .flatten()
            .map(|d| d.as_secs_f64() * 1000.0)
            .collect();
        let lost = decided.len() - rtts.len();
        let mean = if rtts.is_empty() {
            0.0
        } else {
            rtts.iter().sum::<f64>() / rtts.len() as f64
        };
        let var = if rtts.is_empty() {
            0.0
        } else {
            rtts.iter().map(|r| (r - mean).abs()).sum::<f64>() / rtts.len() as f64
        };
        Some(LinkSample {
            t,
            rtt_ms: mean,
            rttvar_ms: var,
            loss_pct: 100.0 * lost as f64 / decided.len() as f64,
            ..LinkSample::default()
        })
    }
}

/// The Internet checksum (RFC 1071).
fn checksum(data: &[u8]) -> u16 {
    let mut sum: u32 = data
        .chunks(2)
        .map(|c| u32::from(u16::from_be_bytes([c[0], *c.get(1).unwrap_or(&0)])))
        .sum();
    while sum > 0xffff {
        sum = (sum & 0xffff) + (sum >> 16);
    }
    !(sum as u16)
}

/// An ICMP echo request. On an ICMP datagram socket the kernel replaces the
/// identifier and checksum; on a raw socket they are used as written.
pub fn icmp_echo(seq: u16, id: u16) -> [u8; 16] {
    let mut p = [0u8; 16];
    p[0] = 8; // echo request
    p[4..6].copy_from_slice(&id.to_be_bytes());
    p[6..8].copy_from_slice(&seq.to_be_bytes());
    p[8..16].copy_from_slice(b"lsdprobe");
    let sum = checksum(&p);
    p[2..4].copy_from_slice(&sum.to_be_bytes());
    p
}

/// The sequence number of an ICMP echo reply. A raw socket hands over the IPv4
/// header too and sees every echo reply, so there the identifier must match.
pub fn icmp_reply_seq(p: &[u8], raw_id: Option<u16>) -> Option<u16> {
    let p = match raw_id {
        Some(_) => p.get(usize::from(p.first()? & 0x0f) * 4..)?,
        None => p,
    };
    if p.len() < 8 || p[0] != 0 {
        return None;
    }
    if raw_id.is_some_and(|id| id != u16::from_be_bytes([p[4], p[5]])) {
        return None;
    }
    Some(u16::from_be_bytes([p[6], p[7]]))
}

/// A UDP echo probe and its answer carry `LSDP` and the sequence number.
pub fn udp_probe(seq: u16) -> [u8; 6] {
    let s = seq.to_be_bytes();
    [b'L', b'S', b'D', b'P', s[0], s[1]]
}

pub fn udp_reply_seq(p: &[u8]) -> Option<u16> {
    (p.len() == 6 && &p[..4] == b"LSDP").then(|| u16::from_be_bytes([p[4], p[5]]))
}

/// An open probe socket; `raw_id` is set for a raw ICMP socket.
pub struct ProbeSocket {
    pub sock: tokio::net::UdpSocket,
    pub raw_id: Option<u16>,
}

fn icmp_socket(host: IpAddr, kind: libc::c_int) -> std::io::Result<std::net::UdpSocket> {
    use std::os::fd::FromRawFd;
    let (domain, proto) = match host {
        IpAddr::V4(_) => (libc::AF_INET, libc::IPPROTO_ICMP),
        IpAddr::V6(_) => (libc::AF_INET6, libc::IPPROTO_ICMPV6),
    };
    // SAFETY: plain socket(2); the fd is owned by the UdpSocket from here on.
    let fd = unsafe {
        libc::socket(
            domain,
            kind | libc::SOCK_NONBLOCK | libc::SOCK_CLOEXEC,
            proto,
        )
    };
    if fd < 0 {
        return Err(std::io::Error::last_os_error());
    }
    // An ICMP socket takes the UDP socket calls (send, recv, connect).
    Ok(unsafe { std::net::UdpSocket::from_raw_fd(fd) })
}

/// Opens the probe socket, connected to the host: for ICMP an unprivileged
/// datagram socket (allowed by `net.ipv4.ping_group_range`), else a raw socket
/// (needs CAP_NET_RAW; IPv4 only); for UDP a plain socket.
pub fn open(mode: ProbeMode, host: IpAddr, port: u16) -> std::io::Result<ProbeSocket> {
    let mut raw_id = None;
    let std_sock = match mode {
        ProbeMode::Icmp | ProbeMode::Auto => match icmp_socket(host, libc::SOCK_DGRAM) {
            Ok(s) => s,
            Err(dgram) if host.is_ipv4() => {
                let s = icmp_socket(host, libc::SOCK_RAW).map_err(|raw| {
                    std::io::Error::new(
                        raw.kind(),
                        format!("ICMP datagram socket: {dgram} (see net.ipv4.ping_group_range); raw socket: {raw} (needs CAP_NET_RAW)"),
                    )
                })?;
                // Our echo identifier, to pick our replies out of all the raw socket sees.
                raw_id = Some((std::process::id() as u16) ^ port.rotate_left(8));
                s
            }
            Err(e) => return Err(e),
        },
        ProbeMode::Udp | ProbeMode::None => {
            let any: SocketAddr = if host.is_ipv4() {
                "0.0.0.0:0".parse().unwrap()
            } else {
                "[::]:0".parse().unwrap()
            };
            let s = std::net::UdpSocket::bind(any)?;
            s.set_nonblocking(true)?;
            s
        }
    };
    std_sock.connect(SocketAddr::new(host, port))?;
    Ok(ProbeSocket {
        sock: tokio::net::UdpSocket::from_std(std_sock)?,
        raw_id,
    })
}

/// Probes `host` every `every` until the task is dropped, reporting each
/// window's figures to `report`. Errors (no route, a refused ICMP socket) are
/// logged once and retried, never fatal: the push itself goes on regardless.
pub async fn run(
    name: String,
    mode: ProbeMode,
    host: IpAddr,
    port: u16,
    every: Duration,
    clock: impl Fn() -> f64,
    report: impl Fn(Option<LinkSample>),
) {
    let mut window = ProbeWindow::new(20, Duration::from_secs(1));
    let mut ticker = tokio::time::interval(every);
    let mut seq: u16 = 0;
    let mut complained = false;
    let mut sock = None;
    let mut buf = [0u8; 1500];
    loop {
        if sock.is_none() {
            match open(mode, host, port) {
                Ok(s) => sock = Some(s),
                Err(e) => {
                    if !complained {
                        log::warn!("{name}: cannot probe {host}: {e}");
                        complained = true;
                    }
                    report(None);
                    tokio::time::sleep(Duration::from_secs(5)).await;
                    continue;
                }
            }
        }
        let ProbeSocket { sock: s, raw_id } = sock.as_ref().expect("opened above");
        tokio::select! {
            _ = ticker.tick() => {
                seq = seq.wrapping_add(1);
                let sent = match mode {
                    ProbeMode::Udp => s.send(&udp_probe(seq)).await,
                    _ => s.send(&icmp_echo(seq, raw_id.unwrap_or(0))).await,
                };
                if let Err(e) = sent {
                    // Unreachable host or network: counts as a lost probe.
                    log::debug!("{name}: probe to {host} failed: {e}");
                }
                window.sent(seq, Instant::now());
                report(window.sample(Instant::now(), clock()));
            }
            r = s.recv(&mut buf) => {
                if let Ok(n) = r {
                    let answer = match mode {
                        ProbeMode::Udp => udp_reply_seq(&buf[..n]),
                        _ => icmp_reply_seq(&buf[..n], *raw_id),
                    };
                    if let Some(seq) = answer {
                        window.answered(seq, Instant::now());
                    }
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn window_counts_answers_losses_and_pending_probes() {
        let t0 = Instant::now();
        let ms = Duration::from_millis;
        let mut w = ProbeWindow::new(4, ms(1000));
        assert!(w.sample(t0, 0.0).is_none());
        w.sent(1, t0);
        w.sent(2, t0 + ms(250));
        w.sent(3, t0 + ms(500));
        w.answered(1, t0 + ms(20));
        w.answered(3, t0 + ms(540));
        w.answered(9, t0 + ms(540)); // unknown: ignored
        let s = w.sample(t0 + ms(600), 1.0).unwrap();
        assert_eq!(
            (s.loss_pct, s.rtt_ms.round()),
            (0.0, 30.0),
            "2 is still pending: {s:?}"
        );
        let s = w.sample(t0 + ms(1300), 1.3).unwrap();
        assert!(
            (s.loss_pct - 100.0 / 3.0).abs() < 1e-9,
            "2 timed out: {s:?}"
        );
        assert_eq!(s.rttvar_ms.round(), 10.0);
        w.answered(2, t0 + ms(1300)); // too late to count
        assert!((w.sample(t0 + ms(1300), 1.3).unwrap().loss_pct - 100.0 / 3.0).abs() < 1e-9);
        for seq in 4..10 {
            w.sent(seq, t0 + ms(2000));
            w.answered(seq, t0 + ms(2010));
        }
        assert_eq!(
            w.sample(t0 + ms(2100), 2.1).unwrap().loss_pct,
            0.0,
            "old probes leave the window"
        );
    }

    #[test]
    fn packets_round_trip() {
        let req = icmp_echo(0x1234, 0xbeef);
        assert_eq!(req[0], 8);
        assert_eq!(checksum(&req), 0, "a valid checksum sums to zero");
        let mut reply = req;
        reply[0] = 0;
        assert_eq!(icmp_reply_seq(&reply, None), Some(0x1234));
        assert_eq!(icmp_reply_seq(&req, None), None, "a request is not a reply");
        // A raw socket: IPv4 header first, and only our identifier counts.
        let mut ip = vec![0x45u8; 1];
        ip.resize(20, 0);
        ip.extend_from_slice(&reply);
        assert_eq!(icmp_reply_seq(&ip, Some(0xbeef)), Some(0x1234));
        assert_eq!(icmp_reply_seq(&ip, Some(0xcafe)), None);
        assert_eq!(udp_reply_seq(&udp_probe(7)), Some(7));
        assert_eq!(udp_reply_seq(b"nonsense"), None);
    }

    #[test]
    fn udp_echo_probe_over_loopback() {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        rt.block_on(async {
            let echo = tokio::net::UdpSocket::bind("127.0.0.1:0").await.unwrap();
            let port = echo.local_addr().unwrap().port();
            let sock = open(ProbeMode::Udp, "127.0.0.1".parse().unwrap(), port)
                .unwrap()
                .sock;
            sock.send(&udp_probe(5)).await.unwrap();
            let mut buf = [0u8; 64];
            let (n, from) = echo.recv_from(&mut buf).await.unwrap();
            echo.send_to(&buf[..n], from).await.unwrap();
            let n = sock.recv(&mut buf).await.unwrap();
            assert_eq!(udp_reply_seq(&buf[..n]), Some(5));
        });
    }
}
