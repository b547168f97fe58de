//! The GoPro protocols, pure: which request starts, keeps alive and stops
//! the camera's stream, and where it goes. Three kinds (`[camera] kind`):
//! - `udp`: any MPEG-TS sender; no control, only the stall watch on the source.
//! - `gopro-legacy` (HERO4 to HERO7 class): `GET /gp/gpControl/execute?p1=gpStream&a1=proto_v2&c1=restart`
//!   on port 80, then the datagram `_GPHD_:0:0:2:0.000000\n` to the camera's UDP 8554 every
//!   `keepalive_interval_s`. The camera streams back to the sender of the keep-alive, so it is
//!   sent from the daemon's own source socket (the one bound to :8554).
//! - `open-gopro` (HERO9 and later): the Open GoPro HTTP API on port 8080, preview stream or
//!   webcam mode, `GET /gopro/camera/keep_alive`, and the matching stop command on shutdown.

use crate::config::{Camera as CameraConfig, CameraKind, OpenGoProMode};
use std::net::SocketAddr;

/// The legacy live-view keep-alive datagram.
pub const LEGACY_KEEPALIVE: &[u8] = b"_GPHD_:0:0:2:0.000000\n";
/// The port a GoPro sends its live view to unless told otherwise.
pub const GOPRO_STREAM_PORT: u16 = 8554;

/// Where the controlled kinds send their HTTP requests.
pub fn http_addr(cfg: &CameraConfig) -> SocketAddr {
    SocketAddr::new(cfg.control_address(), cfg.effective_http_port())
}

/// The port parameter for Open GoPro: only sent when the daemon does not listen on the
/// camera's default 8554, because older models (HERO9 to HERO11) do not accept it on the
/// preview stream.
fn port_param(source_port: u16) -> Option<u16> {
    (source_port != GOPRO_STREAM_PORT).then_some(source_port)
}

/// The request that makes the camera stream to us.
///
/// Open GoPro endpoints checked against the Open GoPro HTTP API 2.0 documentation,
/// https://gopro.github.io/OpenGoPro/http (sections "Preview Stream": Start Preview Stream
/// `GET /gopro/camera/stream/start` with optional `port`; "Webcam": Start Webcam
/// `GET /gopro/webcam/start` with `res` (4 = 480p, 7 = 720p, 12 = 1080p), `fov` (0 wide,
/// 2 narrow, 3 superview, 4 linear), `port` (default 8554) and `protocol` (default TS), given in
/// that order). Legacy: the gpControl command used by the GoPro app for HERO4 to HERO7
/// (unofficial; documented by the community, e.g. github.com/KonradIT/goprowifihack).
pub fn start_request(cfg: &CameraConfig, source_port: u16) -> Option<String> {
    match cfg.kind {
        CameraKind::Udp => None,
        CameraKind::GoproLegacy => {
            Some("/gp/gpControl/execute?p1=gpStream&a1=proto_v2&c1=restart".into())
        }
        CameraKind::OpenGopro => Some(match cfg.mode {
            OpenGoProMode::Preview => match port_param(source_port) {
                Some(p) => format!("/gopro/camera/stream/start?port={p}"),
                None => "/gopro/camera/stream/start".into(),
            },
            OpenGoProMode::Webcam => {
                let res = cfg.webcam_resolution_id().unwrap_or(12);
                let mut q = format!("/gopro/webcam/start?res={res}&fov={}", cfg.fov.id());
                if let Some(p) = port_param(source_port) {
                    q.push_str(&format!("&port={p}"));
                }
                q
            }
        }),
    }
}

/// The HTTP keep-alive (Open GoPro only; legacy keeps alive over UDP).
/// `GET /gopro/camera/keep_alive`, https://gopro.github.io/OpenGoPro/http ("Control": Keep
/// Alive). The BLE spec's best practice is one every 3.0 s
/// (https://gopro.github.io/OpenGoPro/ble/features/control.html), hence the 2.5 s default.
pub fn keepalive_request(cfg: &CameraConfig) -> Option<&'static str> {
    (cfg.kind == CameraKind::OpenGopro).then_some("/gopro/camera/keep_alive")
}

/// The requests that stop the stream on shutdown, in order.
/// `GET /gopro/camera/stream/stop` (Stop Preview Stream), `GET /gopro/webcam/stop` and
/// `GET /gopro/webcam/exit` (Stop Webcam, Exit Webcam), https://gopro.github.io/OpenGoPro/http.
/// Legacy cameras stop by themselves once the keep-alives stop.
pub fn stop_requests(cfg: &CameraConfig) -> &'static [&'static str] {
    match (cfg.kind, cfg.mode) {
        (CameraKind::OpenGopro, OpenGoProMode::Preview) => &["/gopro/camera/stream/stop"],
        (CameraKind::OpenGopro, OpenGoProMode::Webcam) => {
            &["/gopro/webcam/stop", "/gopro/webcam/exit"]
        }
        _ => &[],
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::WebcamFov;

    fn cam(kind: CameraKind, mode: OpenGoProMode) -> CameraConfig {
        CameraConfig {
            kind,
            mode,
            ..CameraConfig::default()
        }
    }

    #[test]
    fn legacy_starts_with_gpcontrol_and_keeps_alive_over_udp() {
        let c = cam(CameraKind::GoproLegacy, OpenGoProMode::Preview);
        assert_eq!(
            start_request(&c, 8554).unwrap(),
            "/gp/gpControl/execute?p1=gpStream&a1=proto_v2&c1=restart"
        );
        assert_eq!(keepalive_request(&c), None);
        assert!(stop_requests(&c).is_empty());
        assert_eq!(LEGACY_KEEPALIVE, b"_GPHD_:0:0:2:0.000000\n");
        assert_eq!(http_addr(&c).to_string(), "10.5.5.9:80");
    }

    #[test]
    fn open_gopro_preview_names_the_port_only_when_not_8554() {
        let c = cam(CameraKind::OpenGopro, OpenGoProMode::Preview);
        assert_eq!(
            start_request(&c, 8554).unwrap(),
            "/gopro/camera/stream/start"
        );
        assert_eq!(
            start_request(&c, 9000).unwrap(),
            "/gopro/camera/stream/start?port=9000"
        );
        assert_eq!(keepalive_request(&c), Some("/gopro/camera/keep_alive"));
        assert_eq!(stop_requests(&c), ["/gopro/camera/stream/stop"]);
        assert_eq!(http_addr(&c).to_string(), "10.5.5.9:8080");
    }

    #[test]
    fn open_gopro_webcam_passes_resolution_and_fov_ids_in_order() {
        let mut c = cam(CameraKind::OpenGopro, OpenGoProMode::Webcam);
        assert_eq!(
            start_request(&c, 8554).unwrap(),
            "/gopro/webcam/start?res=12&fov=0"
        );
        c.resolution = 720;
        c.fov = WebcamFov::Linear;
        assert_eq!(
            start_request(&c, 9000).unwrap(),
            "/gopro/webcam/start?res=7&fov=4&port=9000"
        );
        c.resolution = 480;
        c.fov = WebcamFov::Superview;
        assert_eq!(
            start_request(&c, 8554).unwrap(),
            "/gopro/webcam/start?res=4&fov=3"
        );
        assert_eq!(
            stop_requests(&c),
            ["/gopro/webcam/stop", "/gopro/webcam/exit"]
        );
    }

    #[test]
    fn plain_udp_sends_nothing() {
        let c = cam(CameraKind::Udp, OpenGoProMode::Preview);
        assert_eq!(start_request(&c, 8554), None);
        assert_eq!(keepalive_request(&c), None);
        assert!(stop_requests(&c).is_empty());
    }
}
