//! The TOML configuration: schema, defaults and validation.
//!
//! Pure: no processes, no sockets. Every error names the file, line, column and
//! reason, because the person reading it is usually editing a file on an SD card
//! in the field.

use serde::{Deserialize, Serialize};
use std::fmt;
use std::net::{IpAddr, SocketAddr};
use std::path::{Path, PathBuf};

mod layer;
mod locate;
pub mod source;
mod validate;

#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    #[serde(default)]
    pub source: Source,
    #[serde(default)]
    pub encoder: Encoder,
    /// The rungs, best first; read through `ladder()`.
    #[serde(default = "default_ladder")]
    pub ladder: Vec<Rung>,
    #[serde(default)]
    pub server: Server,
    #[serde(default, rename = "output", skip_serializing_if = "Vec::is_empty")]
    pub outputs: Vec<Output>,
    #[serde(default)]
    pub adapt: Adapt,
    #[serde(default)]
    pub log: Log,
    #[serde(default)]
    pub camera: Camera,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum AdaptMode {
    /// The controller picks the rung from the viewers' links.
    #[default]
    Auto,
    /// Stay on `encoder.start_rung` unless an operator pins another with `POST /rung`.
    Fixed,
}

/// Whose link decides the rung.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum Policy {
    /// Each viewer gets the rung its own link carries; every rung someone
    /// watches is encoded (default).
    #[default]
    #[serde(rename = "per-viewer")]
    PerViewer,
    /// One rung for everyone, for one-encoder hardware: the weakest viewer's,
    /// so everyone stays live.
    Weakest,
    /// One rung for everyone: the strongest viewer's, the best picture for
    /// whoever can take it; weaker viewers stay live by skipping frames.
    Strongest,
}

impl Policy {
    /// Everyone on one rung (one encoder at a time, make-before-break).
    pub fn shared(self) -> bool {
        self != Policy::PerViewer
    }
}

/// `[adapt]`: the adaptive-quality controller's parameters, used as they
/// are by the controller (`control::adapt::Params`).
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct Adapt {
    pub mode: AdaptMode,
    pub policy: Policy,
    /// TCP_INFO sampling and controller tick, milliseconds.
    pub sample_interval_ms: u64,
    /// Trouble must last this long before stepping down.
    pub down_after_s: f64,
    /// A clean period this long (times the climb backoff) before stepping up.
    pub up_after_s: f64,
    /// No two switches closer than this.
    pub min_dwell_s: f64,
    pub max_lag_ms: f64,
    pub max_rtt_ms: f64,
    pub max_loss_pct: f64,
    /// Measured capacity must exceed the next rung's bitrate by this factor to climb.
    pub headroom: f64,
    /// A climb that fails soon after doubles the clean period required, up to this factor.
    pub max_up_backoff: f64,
    /// How long a capacity measurement is trusted; older, a probe measures again.
    pub capacity_memory_s: f64,
    /// Length of a headroom probe: viewers get padding on top of the video so
    /// that the link shows whether it carries the next rung.
    pub probe_s: f64,
    /// A viewer whose new rung has not reached it in this time stays where it is.
    pub switch_timeout_s: f64,
    /// Most rungs encoded at once (per-viewer); beyond it, viewers share the
    /// nearest lower running rung. For small Pis.
    pub max_encoders: usize,
    /// A rung nobody watched for this long is no longer encoded (per-viewer;
    /// the start rung always is).
    pub idle_rung_s: f64,
    /// Per-viewer: a rung kept encoded while anyone watches a better one, so
    /// that a step down to it never waits for an encoder to start (it costs
    /// that encoder's CPU all along). None: rungs start when wanted.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub standby_rung: Option<usize>,
}

impl Default for Adapt {
    fn default() -> Self {
        Adapt {
            mode: AdaptMode::Auto,
            policy: Policy::PerViewer,
            sample_interval_ms: 200,
            down_after_s: 1.0,
            up_after_s: 10.0,
            min_dwell_s: 2.0,
            max_lag_ms: 700.0,
            max_rtt_ms: 300.0,
            max_loss_pct: 2.0,
            headroom: 1.4,
            max_up_backoff: 8.0,
            capacity_memory_s: 60.0,
            probe_s: 2.0,
            switch_timeout_s: 10.0,
            max_encoders: 4,
            idle_rung_s: 20.0,
            standby_rung: None,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Source {
    /// Where the camera's MPEG-TS arrives, e.g. `udp://0.0.0.0:8554`.
    #[serde(default = "default_source_url")]
    pub url: UdpUrl,
    /// Silence after which the source counts as stalled, in seconds.
    #[serde(default = "default_stall_timeout")]
    pub stall_timeout_s: f64,
}

#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Encoder {
    #[serde(default = "default_ffmpeg")]
    pub ffmpeg: PathBuf,
    #[serde(default)]
    pub codec: Codec,
    /// x264 preset; ignored by the hardware encoder.
    #[serde(default = "default_preset")]
    pub preset: String,
    #[serde(default = "default_keyframe_interval")]
    pub keyframe_interval_s: f64,
    /// Index into `[[ladder]]` (0 = first, the best rung).
    #[serde(default = "default_start_rung")]
    pub start_rung: usize,
    /// Extra ffmpeg arguments placed just before the output.
    #[serde(default)]
    pub extra_args: Vec<String>,
    #[serde(default = "default_restart_initial")]
    pub restart_initial_s: f64,
    #[serde(default = "default_restart_max")]
    pub restart_max_s: f64,
    /// After this long running, the next crash restarts with the initial delay again.
    #[serde(default = "default_restart_reset")]
    pub restart_reset_s: f64,
    /// Time between TERM and KILL when stopping ffmpeg.
    #[serde(default = "default_stop_grace")]
    pub stop_grace_s: f64,
    /// An encoder that is alive but gives no output (or no advancing timestamps)
    /// for this long while the source is live is killed and restarted.
    #[serde(default = "default_output_timeout")]
    pub output_timeout_s: f64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum Codec {
    #[default]
    Libx264,
    H264V4l2m2m,
}

impl Codec {
    pub fn ffmpeg_name(self) -> &'static str {
        match self {
            Codec::Libx264 => "libx264",
            Codec::H264V4l2m2m => "h264_v4l2m2m",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Rung {
    /// The camera's own H.264, relayed, not re-encoded: the first rung only.
    /// Its size, rate and bitrate are the camera's: as the operator states
    /// them, or (any left out) as measured from the stream.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub passthrough: bool,
    /// An encoded rung states all four (validation); a passthrough rung may
    /// leave any out.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub width: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub height: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fps: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bitrate_kbps: Option<u32>,
    /// Seconds between this rung's keyframes (lower rungs may use shorter, so
    /// a step down waits less); unset: `encoder.keyframe_interval_s`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub keyframe_interval_s: Option<f64>,
}

/// A rung's picture and bitrate.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize)]
pub struct Figures {
    pub width: u32,
    pub height: u32,
    pub fps: u32,
    pub bitrate_kbps: u32,
}

impl Rung {
    /// The figures it states; one it leaves out (a passthrough rung's, taken
    /// from the stream) is 0. An encoded rung states all four (validation).
    pub fn stated(&self) -> Figures {
        Figures {
            width: self.width.unwrap_or(0),
            height: self.height.unwrap_or(0),
            fps: self.fps.unwrap_or(0),
            bitrate_kbps: self.bitrate_kbps.unwrap_or(0),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Server {
    #[serde(default = "default_listen")]
    pub listen: SocketAddr,
    #[serde(default = "default_max_viewers")]
    pub max_viewers: usize,
    /// Viewers from one IP address, so that one device cannot take every place
    /// (no more than `max_viewers` in effect).
    #[serde(default = "default_max_viewers_per_address")]
    pub max_viewers_per_address: usize,
    /// A viewer further behind live than this skips ahead to the newest keyframe.
    #[serde(default = "default_viewer_max_lag")]
    pub viewer_max_lag_ms: u64,
    /// A viewer that accepts no data at all for this long is disconnected.
    #[serde(default = "default_viewer_stall_timeout")]
    pub viewer_stall_timeout_s: f64,
    /// A connection must send its whole request head within this many seconds (else 408).
    #[serde(default = "default_request_timeout")]
    pub request_timeout_s: f64,
    /// When set, `POST /rung` needs `Authorization: Bearer <token>`; when unset,
    /// control is accepted only from loopback. 16 to 128 visible ASCII characters.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub control_token: Option<String>,
    /// Open HTTP connections in total (at most 4096: the systemd unit allows
    /// 8192 open files, and each connection is one).
    #[serde(default = "default_max_connections")]
    pub max_connections: usize,
    /// Open connections from one IP address (a phone's browser opens several
    /// for the page's assets, plus /events and /stream.ts, plus reconnects).
    #[serde(default = "default_max_connections_per_address")]
    pub max_connections_per_address: usize,
    /// Connections from one IP address still sending their request head.
    #[serde(default = "default_max_pending_per_address")]
    pub max_pending_per_address: usize,
}

/// How an output's host is probed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum ProbeMode {
    /// ICMP echo for `udp://` outputs, nothing for uplinks (their TCP is ffmpeg's).
    #[default]
    Auto,
    /// ICMP echo through an unprivileged ICMP socket (no capability needed where
    /// `net.ipv4.ping_group_range` admits the daemon's group).
    Icmp,
    /// A datagram to `probe_port` on the host, which must send it back (an echo service).
    Udp,
    None,
}

#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Output {
    /// `udp://host:port`, `rtmp://…`, `rtmps://…` or `srt://…`.
    pub url: OutputUrl,
    /// How the link to a pushed-to phone is measured: "auto" (ICMP echo for
    /// udp://, none for uplinks), "icmp", "udp" (an echo service on probe_port) or "none".
    #[serde(default)]
    pub probe: ProbeMode,
    #[serde(default = "default_probe_port")]
    pub probe_port: u16,
    #[serde(default = "default_probe_interval")]
    pub probe_interval_ms: u64,
}

impl Output {
    /// The probe this output really gets, and its host.
    pub fn probe_target(&self) -> Option<(ProbeMode, std::net::IpAddr)> {
        let mode = match self.probe {
            ProbeMode::Auto if self.url.0.starts_with("udp://") => ProbeMode::Icmp,
            ProbeMode::Auto | ProbeMode::None => return None,
            m => m,
        };
        Some((mode, self.url.host()?))
    }
}

fn default_probe_port() -> u16 {
    7
}
fn default_probe_interval() -> u64 {
    250
}

#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Log {
    #[serde(default = "default_log_level")]
    pub level: LogLevel,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum LogLevel {
    Error,
    Warn,
    Info,
    Debug,
    Trace,
}

impl LogLevel {
    pub fn as_filter(self) -> log::LevelFilter {
        match self {
            LogLevel::Error => log::LevelFilter::Error,
            LogLevel::Warn => log::LevelFilter::Warn,
            LogLevel::Info => log::LevelFilter::Info,
            LogLevel::Debug => log::LevelFilter::Debug,
            LogLevel::Trace => log::LevelFilter::Trace,
        }
    }
}

/// `[camera]`: who keeps the camera streaming (see docs/CAMERA.md).
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Camera {
    #[serde(default)]
    pub kind: CameraKind,
    /// The camera's IP address as written; read it through `address()` and
    /// `control_address()`. When set, datagrams from any other address are
    /// never accepted, and "auto" looks for the camera only there. Unset: for
    /// "auto" and "udp" any sender (the daemon locks onto one while it is
    /// live; "auto" onto the camera it found); for the GoPro kinds 10.5.5.9 (a
    /// GoPro's own access point).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub address: Option<IpAddr>,
    /// The camera's HTTP port; unset means the API's own (80 legacy, 8080 Open GoPro). With
    /// "auto" both APIs are asked on it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub http_port: Option<u16>,
    /// The camera's UDP port for the legacy `_GPHD_` keep-alive.
    #[serde(default = "default_camera_keepalive_port")]
    pub keepalive_port: u16,
    #[serde(default = "default_camera_keepalive_interval")]
    pub keepalive_interval_s: f64,
    /// Upper bound on one HTTP request to the camera (connect, send, answer).
    #[serde(default = "default_camera_request_timeout")]
    pub request_timeout_s: f64,
    /// Delay before re-sending the start command, doubling up to `retry_max_s`.
    #[serde(default = "default_camera_retry_initial")]
    pub retry_initial_s: f64,
    #[serde(default = "default_camera_retry_max")]
    pub retry_max_s: f64,
    /// Open GoPro only: the preview stream or webcam mode.
    #[serde(default)]
    pub mode: OpenGoProMode,
    /// Open GoPro webcam mode: 480, 720 or 1080 (lines).
    #[serde(default = "default_webcam_resolution")]
    pub resolution: u32,
    /// Open GoPro webcam mode: the digital lens.
    #[serde(default)]
    pub fov: WebcamFov,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize, Default)]
#[serde(rename_all = "kebab-case")]
pub enum CameraKind {
    /// Find the camera (the configured address, the camera's Wi-Fi 10.5.5.9, the peer of each
    /// USB network link), ask it what it is, and drive it with its own API; a sender without an
    /// HTTP API is plain `udp`.
    #[default]
    Auto,
    /// Any MPEG-TS sender; the daemon only listens.
    Udp,
    /// HERO4 to HERO7 class: gpControl over HTTP and the UDP keep-alive.
    GoproLegacy,
    /// HERO9 and later: the Open GoPro HTTP API.
    OpenGopro,
}

impl CameraKind {
    pub fn name(self) -> &'static str {
        match self {
            CameraKind::Auto => "auto",
            CameraKind::Udp => "udp",
            CameraKind::GoproLegacy => "gopro-legacy",
            CameraKind::OpenGopro => "open-gopro",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum OpenGoProMode {
    #[default]
    Preview,
    Webcam,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum WebcamFov {
    #[default]
    Wide,
    Narrow,
    Superview,
    Linear,
}

impl WebcamFov {
    /// The Open GoPro webcam `fov` parameter value.
    pub fn id(self) -> u32 {
        match self {
            WebcamFov::Wide => 0,
            WebcamFov::Narrow => 2,
            WebcamFov::Superview => 3,
            WebcamFov::Linear => 4,
        }
    }
}

impl Camera {
    /// The only address the source accepts datagrams from, or `None`: any
    /// sender (kinds "auto" and "udp" with no address set). The GoPro kinds
    /// default to 10.5.5.9.
    pub fn address(&self) -> Option<IpAddr> {
        match (self.address, self.kind) {
            (Some(a), _) => Some(a),
            (None, CameraKind::Udp | CameraKind::Auto) => None,
            (None, CameraKind::GoproLegacy | CameraKind::OpenGopro) => Some(GOPRO_ADDRESS),
        }
    }

    /// Where the GoPro kinds send HTTP requests and UDP keep-alives: the
    /// configured address, else 10.5.5.9. Meaningless for kind "udp", which
    /// sends nothing; "auto" finds its camera (see camera::discover).
    pub fn control_address(&self) -> IpAddr {
        self.address().unwrap_or(GOPRO_ADDRESS)
    }

    /// The HTTP port in effect for this kind of camera.
    pub fn effective_http_port(&self) -> u16 {
        self.http_port.unwrap_or(match self.kind {
            CameraKind::OpenGopro => 8080,
            _ => 80,
        })
    }

    /// The port a camera speaking `api` is asked on: `http_port` if set, else the API's own.
    pub fn port_for(&self, api: crate::camera::models::Api) -> u16 {
        self.http_port.unwrap_or(api.default_port())
    }

    /// The Open GoPro webcam `res` parameter value for `resolution`.
    pub fn webcam_resolution_id(&self) -> Option<u32> {
        match self.resolution {
            480 => Some(4),
            720 => Some(7),
            1080 => Some(12),
            _ => None,
        }
    }
}

/// Where a GoPro puts itself on its own Wi-Fi access point.
pub const GOPRO_ADDRESS: IpAddr = IpAddr::V4(std::net::Ipv4Addr::new(10, 5, 5, 9));
fn default_camera_keepalive_port() -> u16 {
    8554
}
fn default_camera_keepalive_interval() -> f64 {
    2.5
}
fn default_camera_request_timeout() -> f64 {
    3.0
}
fn default_camera_retry_initial() -> f64 {
    1.0
}
fn default_camera_retry_max() -> f64 {
    30.0
}
fn default_webcam_resolution() -> u32 {
    1080
}

impl Default for Camera {
    fn default() -> Self {
        Camera {
            kind: CameraKind::default(),
            address: None,
            http_port: None,
            keepalive_port: default_camera_keepalive_port(),
            keepalive_interval_s: default_camera_keepalive_interval(),
            request_timeout_s: default_camera_request_timeout(),
            retry_initial_s: default_camera_retry_initial(),
            retry_max_s: default_camera_retry_max(),
            mode: OpenGoProMode::default(),
            resolution: default_webcam_resolution(),
            fov: WebcamFov::default(),
        }
    }
}

/// `udp://HOST:PORT`, checked when the file is read.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize)]
#[serde(try_from = "String", into = "String")]
pub struct UdpUrl {
    pub addr: SocketAddr,
}

impl TryFrom<String> for UdpUrl {
    type Error = String;
    fn try_from(s: String) -> Result<Self, String> {
        let shown = locate::quoted(&s);
        let rest = s
            .strip_prefix("udp://")
            .ok_or_else(|| format!("{shown} is not a udp:// address (expected udp://HOST:PORT)"))?;
        let hostport = rest.split('?').next().unwrap_or(rest);
        let addr = hostport.parse::<SocketAddr>().map_err(|_| {
            format!(
                "{shown}: {} is not an IP:PORT (e.g. udp://0.0.0.0:8554)",
                locate::quoted(hostport)
            )
        })?;
        if addr.port() == 0 {
            return Err(format!("{shown}: port 0 is not a port (1 to 65535)"));
        }
        Ok(UdpUrl { addr })
    }
}

impl From<UdpUrl> for String {
    fn from(u: UdpUrl) -> String {
        format!("udp://{}", u.addr)
    }
}

/// An extra ffmpeg output; the scheme decides the container.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize)]
#[serde(try_from = "String", into = "String")]
pub struct OutputUrl(pub String);

impl OutputUrl {
    /// The host an output sends to, when it has a literal IP (udp:// always has one).
    pub fn host(&self) -> Option<std::net::IpAddr> {
        let rest = self.0.split_once("://")?.1;
        let hostport = rest.split(['/', '?']).next()?;
        hostport
            .parse::<SocketAddr>()
            .ok()
            .map(|a| a.ip())
            .or_else(|| hostport.parse().ok())
    }

    /// The URL as ffmpeg gets it: UDP pushes carry 7 whole TS packets per
    /// datagram (ffmpeg's default size would split packets across datagrams).
    pub fn ffmpeg_url(&self) -> String {
        if !self.0.starts_with("udp://") || self.0.contains("pkt_size=") {
            return self.0.clone();
        }
        let sep = if self.0.contains('?') { '&' } else { '?' };
        format!("{}{sep}pkt_size=1316", self.0)
    }

    /// Where a `udp://` output's datagrams go (the daemon sends them itself).
    pub fn udp_target(&self) -> Option<SocketAddr> {
        UdpUrl::try_from(self.0.clone()).ok().map(|u| u.addr)
    }

    /// The ffmpeg muxer for this destination.
    pub fn format(&self) -> &'static str {
        if self.0.starts_with("rtmp://") || self.0.starts_with("rtmps://") {
            "flv"
        } else {
            "mpegts"
        }
    }
}

impl TryFrom<String> for OutputUrl {
    type Error = String;
    fn try_from(s: String) -> Result<Self, String> {
        let shown = locate::quoted(&s);
        let (scheme, rest) = s.split_once("://").ok_or_else(|| {
            format!("{shown} has no scheme (expected udp://, rtmp://, rtmps:// or srt://)")
        })?;
        if !matches!(scheme, "udp" | "rtmp" | "rtmps" | "srt") {
            return Err(format!(
                "{shown}: scheme {} is not supported (udp, rtmp, rtmps, srt)",
                locate::quoted(scheme)
            ));
        }
        if rest.is_empty() || rest.starts_with(['/', ':', '?']) {
            return Err(format!("{shown} has no host"));
        }
        if s.chars().any(|c| c.is_whitespace() || c.is_control()) {
            return Err(format!("{shown} contains white space"));
        }
        if scheme == "udp" {
            UdpUrl::try_from(s.clone())?;
        } else if let Some(port) = authority_port(rest) {
            if !matches!(port.parse::<u16>(), Ok(1..)) {
                return Err(format!(
                    "{shown}: port {} is not a port (1 to 65535)",
                    locate::quoted(port)
                ));
            }
        }
        Ok(OutputUrl(s))
    }
}

/// The port written in a URL's authority (`user@host:port`, `[v6]:port`), if any.
fn authority_port(after_scheme: &str) -> Option<&str> {
    let authority = after_scheme.split(['/', '?']).next().unwrap_or("");
    let host_port = authority.rsplit('@').next().unwrap_or(authority);
    let after_host = match host_port.strip_prefix('[') {
        Some(v6) => v6.split_once(']').map_or("", |(_, after)| after),
        None => host_port,
    };
    after_host.rsplit_once(':').map(|(_, port)| port)
}

impl From<OutputUrl> for String {
    fn from(u: OutputUrl) -> String {
        u.0
    }
}

fn default_source_url() -> UdpUrl {
    UdpUrl {
        addr: "0.0.0.0:8554".parse().unwrap(),
    }
}
fn default_stall_timeout() -> f64 {
    3.0
}
fn default_ffmpeg() -> PathBuf {
    PathBuf::from("ffmpeg")
}
fn default_preset() -> String {
    "veryfast".into()
}
fn default_keyframe_interval() -> f64 {
    1.0
}
fn default_start_rung() -> usize {
    0
}
fn default_restart_initial() -> f64 {
    0.5
}
fn default_restart_max() -> f64 {
    10.0
}
fn default_restart_reset() -> f64 {
    30.0
}
fn default_stop_grace() -> f64 {
    2.0
}
fn default_listen() -> SocketAddr {
    "0.0.0.0:8080".parse().unwrap()
}
fn default_max_viewers() -> usize {
    16
}
fn default_viewer_max_lag() -> u64 {
    1500
}
fn default_viewer_stall_timeout() -> f64 {
    20.0
}
fn default_request_timeout() -> f64 {
    10.0
}
fn default_output_timeout() -> f64 {
    3.0
}
fn default_max_viewers_per_address() -> usize {
    4
}
fn default_max_connections() -> usize {
    512
}
fn default_max_connections_per_address() -> usize {
    24
}
fn default_max_pending_per_address() -> usize {
    8
}
/// The most `server.max_connections` may be: the systemd unit sets
/// `LimitNOFILE=8192`, and the daemon needs file descriptors besides the
/// connections (sockets, ffmpeg pipes, probes).
pub const MAX_CONNECTIONS_LIMIT: usize = 4096;
fn default_log_level() -> LogLevel {
    LogLevel::Info
}

/// The ladder used when the file has no `[[ladder]]`, best first: the
/// camera's own picture (its size, rate and bitrate measured from its stream;
/// offered while it is H.264), then four encoded 16:9 rungs. The two lowest
/// have keyframes twice a second: a viewer moves down at the lower rung's
/// keyframe, so a struggling phone waits half as long for it.
pub fn default_ladder() -> Vec<Rung> {
    let camera = Rung {
        passthrough: true,
        width: None,
        height: None,
        fps: None,
        bitrate_kbps: None,
        keyframe_interval_s: None,
    };
    let encoded = [
        (1280, 720, 30, 2500, None),
        (960, 540, 30, 1500, None),
        (640, 360, 30, 800, Some(0.5)),
        (426, 240, 15, 300, Some(0.5)),
    ]
    .into_iter()
    .map(
        |(width, height, fps, bitrate_kbps, keyframe_interval_s)| Rung {
            passthrough: false,
            keyframe_interval_s,
            width: Some(width),
            height: Some(height),
            fps: Some(fps),
            bitrate_kbps: Some(bitrate_kbps),
        },
    );
    std::iter::once(camera).chain(encoded).collect()
}

impl Default for Source {
    fn default() -> Self {
        Source {
            url: default_source_url(),
            stall_timeout_s: default_stall_timeout(),
        }
    }
}
impl Default for Encoder {
    fn default() -> Self {
        Encoder {
            ffmpeg: default_ffmpeg(),
            codec: Codec::default(),
            preset: default_preset(),
            keyframe_interval_s: default_keyframe_interval(),
            start_rung: default_start_rung(),
            extra_args: Vec::new(),
            restart_initial_s: default_restart_initial(),
            restart_max_s: default_restart_max(),
            restart_reset_s: default_restart_reset(),
            stop_grace_s: default_stop_grace(),
            output_timeout_s: default_output_timeout(),
        }
    }
}
impl Default for Server {
    fn default() -> Self {
        Server {
            listen: default_listen(),
            max_viewers: default_max_viewers(),
            max_viewers_per_address: default_max_viewers_per_address(),
            viewer_max_lag_ms: default_viewer_max_lag(),
            viewer_stall_timeout_s: default_viewer_stall_timeout(),
            request_timeout_s: default_request_timeout(),
            control_token: None,
            max_connections: default_max_connections(),
            max_connections_per_address: default_max_connections_per_address(),
            max_pending_per_address: default_max_pending_per_address(),
        }
    }
}
impl Default for Log {
    fn default() -> Self {
        Log {
            level: default_log_level(),
        }
    }
}

impl Default for Config {
    fn default() -> Self {
        // Parsing an empty document yields every default in one place.
        toml::from_str("").expect("the empty config is valid")
    }
}

impl Config {
    pub fn ladder(&self) -> &[Rung] {
        &self.ladder
    }
    pub fn start_rung(&self) -> usize {
        self.encoder.start_rung
    }

    /// The longest keyframe interval of an encoded rung, in seconds (the
    /// passthrough rung keeps the camera's).
    pub fn longest_keyframe_interval_s(&self) -> f64 {
        self.ladder
            .iter()
            .filter(|r| !r.passthrough)
            .map(|r| {
                r.keyframe_interval_s
                    .unwrap_or(self.encoder.keyframe_interval_s)
            })
            .fold(0.0, f64::max)
    }

    /// The effective configuration as TOML, for `check-config`: the GoPro
    /// kinds show the camera address in effect, and a control token is not
    /// printed (only that one is set).
    pub fn to_toml(&self) -> String {
        let mut shown = self.clone();
        shown.camera.address = self.camera.address();
        let hidden = shown.server.control_token.take().is_some();
        let text =
            toml::to_string(&shown).unwrap_or_else(|e| format!("# cannot print config: {e}\n"));
        if hidden {
            format!("# server.control_token is set (not shown)\n{text}")
        } else {
            text
        }
    }
}

/// A config error, located in its file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigError {
    pub file: PathBuf,
    pub line: usize,
    pub column: usize,
    pub reason: String,
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}:{}:{}: {}",
            self.file.display(),
            self.line,
            self.column,
            self.reason
        )
    }
}

impl std::error::Error for ConfigError {}

/// An error at byte `offset` of `text`, the text of `file`.
fn error_at(file: &Path, text: &str, offset: usize, reason: &str) -> ConfigError {
    let (line, column) = locate::line_col(text, offset);
    ConfigError {
        file: file.to_path_buf(),
        line,
        column,
        reason: locate::one_line(reason),
    }
}

/// Parses `text` as `T` (the whole schema, or a bare table), with a TOML or
/// serde error located in `file`.
fn parse_as<T: serde::de::DeserializeOwned>(file: &Path, text: &str) -> Result<T, ConfigError> {
    // toml's message is the reason; its own rendering repeats the location.
    toml::from_str(text).map_err(|e| {
        let offset = e.span().map_or(0, |s| s.start);
        error_at(
            file,
            text,
            offset,
            &locate::parser_reason(text, offset, e.message()),
        )
    })
}

/// Parses and validates a config document. `file` only labels errors.
pub fn parse(file: &Path, text: &str) -> Result<Config, ConfigError> {
    let config: Config = parse_as(file, text)?;
    validate::validate(&config)
        .map_err(|e| error_at(file, text, locate::offset_of(text, &e.places), &e.reason))?;
    Ok(config)
}

pub use layer::parse_over;

/// Reads and parses a file; I/O failures are reported at line 1, column 1.
pub fn load(file: &Path) -> Result<Config, ConfigError> {
    let text = std::fs::read_to_string(file).map_err(|e| ConfigError {
        file: file.to_path_buf(),
        line: 1,
        column: 1,
        reason: format!("cannot read: {e}"),
    })?;
    parse(file, &text)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn err(text: &str) -> ConfigError {
        parse(Path::new("t.toml"), text).expect_err("should be refused")
    }

    #[test]
    fn hosts_of_outputs() {
        let host = |u: &str| OutputUrl(u.into()).host();
        assert_eq!(
            host("udp://192.168.4.2:5000"),
            Some("192.168.4.2".parse().unwrap())
        );
        assert_eq!(
            host("udp://[fe80::1]:5000?pkt_size=1316"),
            Some("fe80::1".parse().unwrap())
        );
        assert_eq!(host("rtmp://ingest.example/live/key"), None);
        assert_eq!(
            host("srt://10.0.0.5:9000?mode=caller"),
            Some("10.0.0.5".parse().unwrap())
        );
    }

    #[test]
    fn empty_file_gives_documented_defaults() {
        let c = parse(Path::new("t.toml"), "").unwrap();
        assert_eq!(c.source.url.addr, "0.0.0.0:8554".parse().unwrap());
        assert_eq!(c.server.listen, "0.0.0.0:8080".parse().unwrap());
        assert_eq!(c.encoder.codec, Codec::Libx264);
        assert_eq!(c.ladder().len(), 5);
        assert!(c.ladder()[0].passthrough, "the camera's own picture on top");
        assert_eq!(
            c.ladder()[0].stated(),
            Figures::default(),
            "from its stream"
        );
        assert_eq!(c.start_rung(), 0);
        assert_eq!(c.log.level, LogLevel::Info);
        assert!(c.outputs.is_empty());
    }

    #[test]
    fn full_file_parses() {
        let c = parse(
            Path::new("t.toml"),
            r#"
[source]
url = "udp://127.0.0.1:9000"
[encoder]
codec = "h264_v4l2m2m"
start_rung = 1
extra_args = ["-threads", "2"]
[[ladder]]
width = 640
height = 360
fps = 25
bitrate_kbps = 800
[[ladder]]
width = 320
height = 180
fps = 15
bitrate_kbps = 200
[server]
listen = "127.0.0.1:9090"
[[output]]
url = "udp://192.168.4.2:5000"
[[output]]
url = "rtmp://example.org/live/key"
[log]
level = "debug"
"#,
        )
        .unwrap();
        assert_eq!(c.start_rung(), 1);
        assert_eq!(c.encoder.codec.ffmpeg_name(), "h264_v4l2m2m");
        assert_eq!(c.outputs[0].url.format(), "mpegts");
        assert_eq!(c.outputs[1].url.format(), "flv");
        assert_eq!(c.ladder()[1].width, Some(320));
    }

    #[test]
    fn syntax_error_is_located() {
        let e = err("[server]\nlisten = \"0.0.0.0:8080\n");
        assert_eq!((e.line, e.file.as_path()), (2, Path::new("t.toml")));
        assert!(e.to_string().starts_with("t.toml:2:"), "{e}");
    }

    #[test]
    fn unknown_key_is_refused_at_its_line() {
        let e = err("[server]\nlisten = \"0.0.0.0:8080\"\nmax_viewer = 3\n");
        assert_eq!((e.line, e.column), (3, 1), "{e}");
        assert!(e.reason.contains("unknown field `max_viewer`"), "{e}");
    }

    #[test]
    fn unknown_section_is_refused() {
        let e = err("[sever]\nlisten = \"0.0.0.0:8080\"\n");
        assert_eq!(e.line, 1);
        assert!(e.reason.contains("sever"), "{e}");
    }

    #[test]
    fn wrong_type_is_located_at_the_value() {
        let e = err("[encoder]\nkeyframe_interval_s = \"two\"\n");
        assert_eq!((e.line, e.column), (2, 23), "{e}");
        assert!(e.reason.contains("invalid type"), "{e}");
    }

    #[test]
    fn empty_ladder_is_refused() {
        let e = err("ladder = []\n");
        assert_eq!(e.line, 1);
        assert!(e.reason.contains("ladder is empty"), "{e}");
    }

    #[test]
    fn start_rung_out_of_range_points_at_it() {
        let e = err("[encoder]\npreset = \"fast\"\nstart_rung = 7\n");
        assert_eq!((e.line, e.column), (3, 1), "{e}");
        assert!(e.reason.contains("out of range"), "{e}");
    }

    #[test]
    fn bad_addresses_are_refused() {
        let e = err("[server]\nlisten = \"localhost\"\n");
        assert_eq!(e.line, 2, "{e}");
        let e = err("[source]\nurl = \"tcp://0.0.0.0:8554\"\n");
        assert!(e.reason.contains("not a udp:// address"), "{e}");
        let e = err("[[output]]\nurl = \"udp://phone:5000\"\n");
        assert!(e.reason.contains("not an IP:PORT"), "{e}");
        let e = err("[[output]]\nurl = \"http://x/y\"\n");
        assert!(e.reason.contains("not supported"), "{e}");
        let e = err("[[output]]\nurl = \"udp://1.2.3.4:5 x\"\n");
        assert!(e.reason.contains("white space"), "{e}");
        for url in [
            "udp://1.2.3.4:0",
            "rtmp://example.org:0/live",
            "srt://[::1]:0?mode=caller",
            "rtmps://u:p@host:x/app",
        ] {
            let e = err(&format!("[[output]]\nurl = \"{url}\"\n"));
            assert!(e.reason.contains("not a port"), "{url}: {e}");
        }
        for url in [
            "rtmp://u:p@host/app",
            "srt://[::1]:9000",
            "rtmp://h:1935/a:b",
        ] {
            parse(Path::new("t"), &format!("[[output]]\nurl = \"{url}\"\n")).unwrap();
        }
        assert!(err("[source]\nurl = \"udp://0.0.0.0:0\"\n")
            .reason
            .contains("port 0"));
    }

    #[test]
    fn ladder_must_fall_and_be_even() {
        let rung = |w: u32, h: u32, b: u32| {
            format!("[[ladder]]\nwidth = {w}\nheight = {h}\nfps = 30\nbitrate_kbps = {b}\n")
        };
        let e = err(&(rung(640, 360, 800) + &rung(320, 180, 900)));
        assert!(e.reason.contains("must fall"), "{e}");
        let e = err(&rung(641, 360, 800));
        assert!(e.reason.contains("even"), "{e}");
        assert_eq!((e.line, e.column), (2, 1), "{e}");
    }

    #[test]
    fn unknown_codec_and_level_are_refused() {
        assert!(err("[encoder]\ncodec = \"h265\"\n")
            .reason
            .contains("unknown variant"));
        assert!(err("[log]\nlevel = \"loud\"\n")
            .reason
            .contains("unknown variant"));
    }

    #[test]
    fn nonsense_numbers_are_refused() {
        assert!(err("[encoder]\nkeyframe_interval_s = 0.0\n")
            .reason
            .contains("keyframe_interval_s"));
        let e = err("[server]\nlisten = \"0.0.0.0:1\"\n  max_viewers = 0\n");
        assert_eq!(
            (e.line, e.column, e.reason.contains("max_viewers")),
            (3, 3, true),
            "{e}"
        );
    }

    #[test]
    fn effective_config_round_trips() {
        let c = Config::default();
        let again = parse(Path::new("x"), &c.to_toml()).unwrap();
        assert_eq!(again.ladder(), c.ladder());
        assert_eq!(again.server, c.server);
    }

    #[test]
    fn adapt_section_parses_and_is_checked() {
        let c = parse(
            Path::new("t.toml"),
            "[adapt]\nmode = \"fixed\"\npolicy = \"strongest\"\nup_after_s = 20.0\n",
        )
        .unwrap();
        assert_eq!(c.adapt.mode, AdaptMode::Fixed);
        assert_eq!(c.adapt.policy, Policy::Strongest);
        assert_eq!(c.adapt.up_after_s, 20.0);
        assert_eq!(c.adapt.down_after_s, 1.0);
        let e = err("[adapt]\nheadroom = 0.5\n");
        assert_eq!(e.line, 2, "{e}");
        assert!(err("[adapt]\nmode = \"sometimes\"\n")
            .reason
            .contains("unknown variant"));
        assert!(err("[adapt]\nmax_lag = 3\n")
            .reason
            .contains("unknown field"));
    }

    #[test]
    fn a_passthrough_rung_may_take_its_figures_from_the_stream() {
        let encoded = "[[ladder]]\nwidth = 640\nheight = 360\nfps = 30\nbitrate_kbps = 800\n";
        let c = parse(
            Path::new("t.toml"),
            &format!("[[ladder]]\npassthrough = true\n{encoded}"),
        )
        .unwrap();
        let top = &c.ladder()[0];
        assert!(top.passthrough);
        assert_eq!((top.width, top.fps, top.bitrate_kbps), (None, None, None));
        assert_eq!(top.stated(), Figures::default());
        let again = parse(Path::new("x"), &c.to_toml()).unwrap();
        assert_eq!(again.ladder(), c.ladder(), "{}", c.to_toml());
        // What it does state is checked as ever.
        let e = err(&format!(
            "[[ladder]]\npassthrough = true\nbitrate_kbps = 500\n{encoded}"
        ));
        assert_eq!(e.line, 8, "{e}");
        assert!(e.reason.contains("must fall"), "{e}");
        // An encoded rung states all four: the error points at its table.
        let e = err("[[ladder]]\npassthrough = true\n[[ladder]]\nheight = 360\nfps = 30\nbitrate_kbps = 800\n");
        assert_eq!((e.line, e.column), (3, 1), "{e}");
        assert!(e.reason.starts_with("ladder[1].width is missing"), "{e}");
    }

    #[test]
    fn the_longest_keyframe_interval_is_of_an_encoded_rung() {
        let c = Config::default();
        assert_eq!(
            c.longest_keyframe_interval_s(),
            c.encoder.keyframe_interval_s
        );
        let c = parse(
            Path::new("t.toml"),
            "[encoder]\nkeyframe_interval_s = 0.5\n[[ladder]]\npassthrough = true\nwidth = 1280\nheight = 720\nfps = 30\nbitrate_kbps = 4000\n[[ladder]]\nwidth = 640\nheight = 360\nfps = 30\nbitrate_kbps = 800\nkeyframe_interval_s = 2.0\n",
        )
        .unwrap();
        assert_eq!(c.longest_keyframe_interval_s(), 2.0);
    }

    #[test]
    fn a_standby_rung_is_one_below_the_top() {
        assert_eq!(Config::default().adapt.standby_rung, None);
        let c = parse(Path::new("t.toml"), "[adapt]\nstandby_rung = 3\n").unwrap();
        assert_eq!(c.adapt.standby_rung, Some(3));
        for bad in ["0", "5"] {
            let e = err(&format!("[adapt]\nstandby_rung = {bad}\n"));
            assert_eq!((e.line, e.column), (2, 1), "{e}");
            assert!(e.reason.contains("a rung below the top from 1 to 4"), "{e}");
        }
        let one = "[adapt]\nstandby_rung = 1\n[[ladder]]\nwidth = 640\nheight = 360\nfps = 30\nbitrate_kbps = 800\n";
        assert!(err(one).reason.contains("one rung"), "{}", err(one));
    }

    #[test]
    fn camera_defaults_are_the_documented_ones() {
        let c = Config::default().camera;
        assert_eq!(c.kind, CameraKind::Auto);
        assert_eq!((c.address, c.address()), (None, None));
        let gopro = Camera {
            kind: CameraKind::GoproLegacy,
            ..Camera::default()
        };
        assert_eq!(gopro.address(), Some(GOPRO_ADDRESS));
        assert_eq!(gopro.control_address().to_string(), "10.5.5.9");
        assert_eq!(c.http_port, None);
        assert_eq!(c.keepalive_port, 8554);
        assert_eq!(c.keepalive_interval_s, 2.5);
        assert_eq!(c.request_timeout_s, 3.0);
        assert_eq!((c.retry_initial_s, c.retry_max_s), (1.0, 30.0));
        assert_eq!(c.mode, OpenGoProMode::Preview);
        assert_eq!((c.resolution, c.fov), (1080, WebcamFov::Wide));
    }

    #[test]
    fn camera_http_port_follows_the_kind_unless_given() {
        let mut c = Camera {
            kind: CameraKind::GoproLegacy,
            ..Camera::default()
        };
        assert_eq!(c.effective_http_port(), 80);
        c.kind = CameraKind::OpenGopro;
        assert_eq!(c.effective_http_port(), 8080);
        c.http_port = Some(18080);
        assert_eq!(c.effective_http_port(), 18080);
    }

    #[test]
    fn camera_section_parses() {
        let c = parse(
            Path::new("t.toml"),
            r#"
[camera]
kind = "open-gopro"
address = "127.0.0.1"
http_port = 18080
keepalive_port = 18554
keepalive_interval_s = 1.0
request_timeout_s = 0.5
retry_initial_s = 0.5
retry_max_s = 4.0
mode = "webcam"
resolution = 720
fov = "linear"
"#,
        )
        .unwrap()
        .camera;
        assert_eq!(c.kind, CameraKind::OpenGopro);
        assert_eq!(c.kind.name(), "open-gopro");
        assert_eq!(c.effective_http_port(), 18080);
        assert_eq!(c.keepalive_port, 18554);
        assert_eq!(c.mode, OpenGoProMode::Webcam);
        assert_eq!(c.webcam_resolution_id(), Some(7));
        assert_eq!(c.fov.id(), 4);
        let legacy = parse(Path::new("t"), "[camera]\nkind = \"gopro-legacy\"\n").unwrap();
        assert_eq!(legacy.camera.kind, CameraKind::GoproLegacy);
        let auto = parse(Path::new("t"), "[camera]\nkind = \"auto\"\n").unwrap();
        assert_eq!(auto.camera.kind, CameraKind::Auto);
        assert_eq!(auto.camera.address(), None);
        let none = parse(Path::new("t"), "[camera]\naddress = \"10.5.5.9\"\n").unwrap();
        assert_eq!(none.camera.kind, CameraKind::Auto, "an absent kind is auto");
    }

    #[test]
    fn camera_mistakes_are_located() {
        let e = err("[camera]\nkind = \"gopro-legacy\"\nkeepalive = 2\n");
        assert_eq!((e.line, e.column), (3, 1), "{e}");
        assert!(e.reason.contains("unknown field `keepalive`"), "{e}");
        let e = err("[camera]\nkind = \"hero4\"\n");
        assert_eq!(e.line, 2, "{e}");
        assert!(e.reason.contains("unknown variant"), "{e}");
        let e = err("[camera]\nkind = \"open-gopro\"\nresolution = 4\n");
        assert_eq!((e.line, e.column), (3, 1), "{e}");
        assert!(e.reason.contains("480, 720 or 1080"), "{e}");
        let e = err("[camera]\nretry_initial_s = 5.0\nretry_max_s = 2.0\n");
        assert_eq!(e.line, 3, "{e}");
        let e = err("[camera]\nkeepalive_interval_s = 0\n");
        assert!(e.reason.contains("keepalive_interval_s"), "{e}");
        let e = err("[camera]\naddress = \"gopro.local\"\n");
        assert_eq!(e.line, 2, "{e}");
        let e = err("[camera]\naddress = \"0.0.0.0\"\n");
        assert!(e.reason.contains("not a camera"), "{e}");
        let e = err("[camera]\nmode = \"live\"\n");
        assert!(e.reason.contains("unknown variant"), "{e}");
    }

    #[test]
    fn camera_config_round_trips() {
        let mut c = Config::default();
        c.camera.kind = CameraKind::OpenGopro;
        c.camera.http_port = Some(9000);
        let printed = c.to_toml();
        assert!(printed.contains("address = \"10.5.5.9\""), "{printed}");
        let again = parse(Path::new("x"), &printed).unwrap();
        assert_eq!(again.camera.address(), c.camera.address());
        c.camera.address = Some(GOPRO_ADDRESS);
        assert_eq!(again.camera, c.camera);
    }

    #[test]
    fn camera_address_is_optional_for_udp_and_exclusive_when_set() {
        let c = parse(Path::new("t"), "[camera]\naddress = \"192.168.4.7\"\n").unwrap();
        assert_eq!(c.camera.address().unwrap().to_string(), "192.168.4.7");
        let c = parse(
            Path::new("t"),
            "[camera]\nkind = \"open-gopro\"\naddress = \"172.20.145.51\"\n",
        )
        .unwrap();
        assert_eq!(c.camera.control_address().to_string(), "172.20.145.51");
        assert!(!Config::default().to_toml().contains("\naddress ="));
    }

    #[test]
    fn connection_limits_and_token_are_checked() {
        let c = Config::default();
        assert_eq!(c.encoder.output_timeout_s, 3.0);
        assert_eq!(c.server.control_token, None);
        assert_eq!(
            (
                c.server.max_connections,
                c.server.max_connections_per_address,
                c.server.max_pending_per_address
            ),
            (512, 24, 8)
        );
        let e = err("[server]\nmax_connections = 5000\n");
        assert_eq!((e.line, e.column), (2, 1), "{e}");
        assert!(e.reason.contains("8192"), "{e}");
        // Both written: the limit is blamed; one written: that one.
        let e = err("[server]\nmax_connections = 10\nmax_viewers = 16\n");
        assert_eq!(e.line, 2, "{e}");
        let e = err("[server]\nmax_viewers = 600\n");
        assert_eq!(e.line, 2, "{e}");
        let e = err("[server]\nmax_viewers = 6\nmax_connections = 10\n");
        assert!(e.reason.contains("max_connections_per_address = 24"), "{e}");
        assert_eq!(e.line, 3, "{e}");
        let e = err("[server]\nmax_connections = 10\nmax_viewers = 4\n");
        assert!(e.reason.contains("max_connections_per_address"), "{e}");
        let e = err("[server]\nmax_pending_per_address = 0\n");
        assert_eq!(e.line, 2, "{e}");
        let e = err("[server]\nmax_pending_per_address = 30\n");
        assert!(e.reason.contains("max_connections_per_address"), "{e}");
        for bad in ["short", "has a space in it ok", "\u{e9}\u{e9}\u{e9}\u{e9}\u{e9}\u{e9}\u{e9}\u{e9}\u{e9}\u{e9}\u{e9}\u{e9}\u{e9}\u{e9}\u{e9}\u{e9}"] {
            let e = err(&format!("[server]\n\ncontrol_token = \"{bad}\"\n"));
            assert_eq!((e.line, e.column), (3, 1), "{e}");
            assert!(!e.reason.contains(bad), "the token is not repeated: {e}");
        }
        let long = "x".repeat(129);
        assert!(err(&format!("[server]\ncontrol_token = \"{long}\"\n"))
            .reason
            .contains("16 to 128"));
        let token = "0123456789abcdef-_~!";
        let c = parse(
            Path::new("t"),
            &format!("[server]\ncontrol_token = \"{token}\"\n"),
        )
        .unwrap();
        assert_eq!(c.server.control_token.as_deref(), Some(token));
        let printed = c.to_toml();
        assert!(!printed.contains(token), "{printed}");
        assert!(
            printed.starts_with("# server.control_token is set"),
            "{printed}"
        );
        let e = err("[encoder]\noutput_timeout_s = -1\n");
        assert!(e.reason.contains("output_timeout_s"), "{e}");
    }
}
