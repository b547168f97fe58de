//! The camera's MPEG-TS arrives here as UDP datagrams. The daemon owns this
//! socket (not ffmpeg) so that it can tell a live source from a stalled one and
//! feed several encoders at once during a rung switch.

use bytes::Bytes;
use serde::Serialize;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::net::UdpSocket;
use tokio::sync::broadcast;

/// Datagrams queued per encoder before the slowest one starts losing them.
pub const QUEUE_DATAGRAMS: usize = 2048;

#[derive(Debug, Default)]
pub struct SourceStats {
    pub packets: u64,
    pub bytes: u64,
    pub last_packet: Option<Instant>,
    pub last_sender: Option<SocketAddr>,
}

#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct SourceStatus {
    pub listen: String,
    /// "waiting" (nothing yet), "live", or "stalled" (silent for longer than the stall timeout).
    pub state: &'static str,
    pub packets: u64,
    pub bytes: u64,
    pub last_packet_age_ms: Option<u64>,
    pub sender: Option<String>,
}

impl SourceStats {
    pub fn status(&self, listen: SocketAddr, stall_after: Duration) -> SourceStatus {
        let age = self.last_packet.map(|t| t.elapsed());
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
        }
    }
}

pub type SharedStats = Arc<Mutex<SourceStats>>;

/// Binds the source socket; fails early (bad address, port in use) with the OS reason.
pub async fn bind(addr: SocketAddr) -> std::io::Result<UdpSocket> {
    UdpSocket::bind(addr).await
}

/// Receives datagrams forever and fans them out to every subscribed encoder.
pub async fn receive(socket: Arc<UdpSocket>, out: broadcast::Sender<Bytes>, stats: SharedStats) {
    let mut buf = vec![0u8; 65536];
    loop {
        match socket.recv_from(&mut buf).await {
            Ok((n, from)) => {
                {
                    let mut s = stats.lock().unwrap();
                    s.packets += 1;
                    s.bytes += n as u64;
                    s.last_packet = Some(Instant::now());
                    s.last_sender = Some(from);
                }
                // No subscriber (between encoder restarts) is fine: the datagram is simply dropped.
                let _ = out.send(Bytes::copy_from_slice(&buf[..n]));
            }
            Err(e) => {
                log::warn!("source: receive failed: {e}");
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn state_follows_the_age_of_the_last_packet() {
        let listen: SocketAddr = "0.0.0.0:8554".parse().unwrap();
        let mut s = SourceStats::default();
        assert_eq!(s.status(listen, Duration::from_secs(3)).state, "waiting");
        s.last_packet = Some(Instant::now());
        assert_eq!(s.status(listen, Duration::from_secs(3)).state, "live");
        s.last_packet = Instant::now().checked_sub(Duration::from_secs(4));
        assert_eq!(s.status(listen, Duration::from_secs(3)).state, "stalled");
    }
}
