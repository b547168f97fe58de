//! A simulated GoPro: ffmpeg's test pattern with a running clock, sent as
//! H.264 (or HEVC, as HERO13's preview) in MPEG-TS over UDP to the source
//! port, the way the camera sends it.

use crate::camera::models::Codec;
use crate::config::Config;
use crate::supervise::{Backoff, Spec};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::time::Duration;

#[derive(Debug, Clone, PartialEq)]
pub struct DemoSource {
    pub width: u32,
    pub height: u32,
    pub fps: u32,
}

impl Default for DemoSource {
    fn default() -> Self {
        // The legacy GoPro live view's size.
        DemoSource {
            width: 848,
            height: 480,
            fps: 30,
        }
    }
}

/// Where to send so that the daemon's source socket receives it.
pub fn target(listen: SocketAddr) -> SocketAddr {
    let ip = match listen.ip() {
        IpAddr::V4(v4) if v4.is_unspecified() => IpAddr::V4(Ipv4Addr::LOCALHOST),
        IpAddr::V6(v6) if v6.is_unspecified() => IpAddr::V6(Ipv6Addr::LOCALHOST),
        ip => ip,
    };
    SocketAddr::new(ip, listen.port())
}

/// ffmpeg's arguments for the simulated camera (H.264).
pub fn ffmpeg_args(d: &DemoSource, to: SocketAddr) -> Vec<String> {
    ffmpeg_args_with(d, to, Codec::H264)
}

/// ffmpeg's arguments for a simulated camera sending `codec`.
pub fn ffmpeg_args_with(d: &DemoSource, to: SocketAddr, codec: Codec) -> Vec<String> {
    let pattern = format!("testsrc=size={}x{}:rate={}", d.width, d.height, d.fps);
    let gop = d.fps.to_string();
    let encoder: &[&str] = match codec {
        Codec::H264 => &[
            "-c:v",
            "libx264",
            "-preset",
            "ultrafast",
            "-tune",
            "zerolatency",
        ],
        // Debian's ffmpeg has libx265; quiet, one keyframe a second like the H.264 one.
        Codec::Hevc => &[
            "-c:v",
            "libx265",
            "-preset",
            "ultrafast",
            "-tune",
            "zerolatency",
            "-x265-params",
            "log-level=error",
        ],
    };
    let head = [
        "-hide_banner",
        "-nostdin",
        "-loglevel",
        "warning",
        "-re",
        "-f",
        "lavfi",
        "-i",
        &pattern,
    ];
    let tail = [
        "-pix_fmt", "yuv420p", "-g", &gop, "-b:v", "3M", "-f", "mpegts",
    ];
    let mut v: Vec<String> = head
        .iter()
        .chain(encoder)
        .chain(&tail)
        .map(|s| s.to_string())
        .collect();
    // 7 TS packets per datagram, as cameras send.
    v.push(format!("udp://{to}?pkt_size=1316"));
    v
}

pub fn spec(cfg: &Config, d: &DemoSource) -> Spec {
    Spec {
        name: "demo-camera".into(),
        program: cfg.encoder.ffmpeg.clone(),
        args: ffmpeg_args(d, target(cfg.source.url.addr)),
        pipe_stdin: false,
        pipe_stdout: false,
        backoff: Backoff::new(
            Duration::from_millis(500),
            Duration::from_secs(10),
            Duration::from_secs(30),
        ),
        stop_grace: Duration::from_secs(2),
        watchdog: None,
        redact: Vec::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sends_to_loopback_when_the_daemon_listens_everywhere() {
        assert_eq!(
            target("0.0.0.0:8554".parse().unwrap()),
            "127.0.0.1:8554".parse().unwrap()
        );
        assert_eq!(
            target("[::]:8554".parse().unwrap()),
            "[::1]:8554".parse().unwrap()
        );
        assert_eq!(
            target("10.0.0.2:9000".parse().unwrap()),
            "10.0.0.2:9000".parse().unwrap()
        );
    }

    #[test]
    fn sends_mpegts_over_udp_at_the_given_size() {
        let a = ffmpeg_args(
            &DemoSource {
                width: 640,
                height: 360,
                fps: 25,
            },
            "127.0.0.1:9000".parse().unwrap(),
        );
        assert!(a.contains(&"testsrc=size=640x360:rate=25".to_string()));
        assert!(a.contains(&"-re".to_string()), "real time, like a camera");
        assert_eq!(a.last().unwrap(), "udp://127.0.0.1:9000?pkt_size=1316");
        assert!(a.contains(&"libx264".to_string()));
        let hevc = ffmpeg_args_with(
            &DemoSource::default(),
            "127.0.0.1:9000".parse().unwrap(),
            Codec::Hevc,
        );
        assert!(hevc.contains(&"libx265".to_string()));
        assert!(!hevc.contains(&"libx264".to_string()));
    }
}
