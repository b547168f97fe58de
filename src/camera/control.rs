//! Keeping the camera streaming: start it, keep it awake, notice when its
//! video stops and ask again, and tell it to stop on shutdown.
//!
//! Three kinds (`[camera] kind`):
//! - `udp`: any MPEG-TS sender; no control, only the stall watch on the source.
//! - `gopro-legacy` (HERO4 to HERO7 class): `GET /gp/gpControl/execute?p1=gpStream&a1=proto_v2&c1=restart`
//!   on port 80, then the datagram `_GPHD_:0:0:2:0.000000\n` to the camera's UDP 8554 every
//!   `keepalive_interval_s`. The camera streams back to the sender of the keep-alive, so it is
//!   sent from the daemon's own source socket (the one bound to :8554).
//! - `open-gopro` (HERO9 and later): the Open GoPro HTTP API on port 8080, preview stream or
//!   webcam mode, `GET /gopro/camera/keep_alive`, and the matching stop command on shutdown.
//!
//! Knows nothing of ffmpeg or viewers: it reads the source's packet statistics and talks to the
//! camera. While the source is stalled the encoders and viewers stay connected; the picture
//! resumes by itself when packets return (see docs/CAMERA.md).

use crate::config::{Camera as CameraConfig, CameraKind, Config, OpenGoProMode};
use crate::media::source::SharedStats;
use crate::supervise::Backoff;
use crate::VERSION;
use log::{debug, info, warn};
use serde::Serialize;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpStream, UdpSocket};
use tokio::sync::watch;
use tokio::task::JoinHandle;

/// The legacy live-view keep-alive datagram.
pub const LEGACY_KEEPALIVE: &[u8] = b"_GPHD_:0:0:2:0.000000\n";
/// The port a GoPro sends its live view to unless told otherwise.
pub const GOPRO_STREAM_PORT: u16 = 8554;
/// How often the source's packet age is looked at.
const TICK: Duration = Duration::from_millis(200);
/// The most of a camera's answer that is read.
const MAX_REPLY: usize = 64 * 1024;

/// The camera's side, for `/status`.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct CameraStatus {
    pub kind: &'static str,
    /// `waiting` (nothing yet), `starting` (asked, no video yet), `live`, `stalled`
    /// (video stopped; asking again), `unreachable` (the last request failed), `stopped`.
    pub state: &'static str,
    /// The camera's HTTP base, for the controlled kinds.
    pub address: Option<String>,
    pub last_error: Option<String>,
    /// Unix time (s) of the last request the camera accepted.
    pub last_ok_unix: Option<f64>,
    /// HTTP requests sent to the camera (start, keep-alive, stop).
    pub requests: u64,
    /// Of those, start commands (the retried ones).
    pub start_requests: u64,
    /// Requests that failed (no connection, timeout, error status).
    pub failures: u64,
    /// Keep-alives sent (UDP datagrams for legacy, HTTP requests for Open GoPro).
    pub keepalives: u64,
    /// Unix time (s) the video stopped arriving, while it stays stopped.
    pub stalled_since: Option<f64>,
    /// Seconds until the start command is sent again, while it is being retried.
    pub next_retry_s: Option<f64>,
    /// Whether the camera answered the last request (a keep-alive needs an awake camera).
    #[serde(skip)]
    pub reachable: bool,
}

impl CameraStatus {
    pub fn new(cfg: &CameraConfig) -> Self {
        let controlled = cfg.kind != CameraKind::Udp;
        CameraStatus {
            kind: cfg.kind.name(),
            state: "waiting",
            address: controlled.then(|| format!("http://{}", http_addr(cfg))),
            last_error: None,
            last_ok_unix: None,
            requests: 0,
            start_requests: 0,
            failures: 0,
            keepalives: 0,
            stalled_since: None,
            next_retry_s: None,
            reachable: false,
        }
    }
}

pub type SharedCamera = Arc<Mutex<CameraStatus>>;

/// The running camera task.
pub struct CameraTask {
    pub status: SharedCamera,
    /// Ends after the stop command was sent; await it before exiting.
    pub task: JoinHandle<()>,
}

fn http_addr(cfg: &CameraConfig) -> SocketAddr {
    SocketAddr::new(cfg.control_address(), cfg.effective_http_port())
}

fn unix_now() -> f64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs_f64())
        .unwrap_or(0.0)
}

// ---------------------------------------------------------------------------
// The protocol: which request does what. Pure, for unit tests.
// ---------------------------------------------------------------------------

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

// ---------------------------------------------------------------------------
// A minimal HTTP/1.1 client: one GET, Connection: close, bounded in time and size.
// ---------------------------------------------------------------------------

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reply {
    pub status: u16,
    pub body: String,
}

/// Parses a complete or partial answer; `None` while the head is incomplete.
/// Returns the status, the head's length and the Content-Length if given.
fn parse_head(buf: &[u8]) -> Result<Option<(u16, usize, Option<usize>)>, String> {
    let mut headers = [httparse::EMPTY_HEADER; 32];
    let mut resp = httparse::Response::new(&mut headers);
    match resp.parse(buf) {
        Ok(httparse::Status::Complete(len)) => {
            let length = resp
                .headers
                .iter()
                .find(|h| h.name.eq_ignore_ascii_case("content-length"))
                .and_then(|h| std::str::from_utf8(h.value).ok())
                .and_then(|v| v.trim().parse().ok());
            Ok(Some((resp.code.unwrap_or(0), len, length)))
        }
        Ok(httparse::Status::Partial) => Ok(None),
        Err(e) => Err(format!("bad HTTP answer: {e}")),
    }
}

/// `GET target` from `addr`; any status is a `Reply`, only transport failures are errors.
pub async fn http_get(addr: SocketAddr, target: &str, timeout: Duration) -> Result<Reply, String> {
    let exchange = async {
        let mut sock = TcpStream::connect(addr)
            .await
            .map_err(|e| format!("cannot connect to {addr}: {e}"))?;
        let request = format!(
            "GET {target} HTTP/1.1\r\nHost: {addr}\r\nUser-Agent: livestreamd/{VERSION}\r\nAccept: */*\r\nConnection: close\r\n\r\n"
        );
        sock.write_all(request.as_bytes())
            .await
            .map_err(|e| format!("cannot send to {addr}: {e}"))?;
        let mut buf = Vec::with_capacity(1024);
        let mut chunk = [0u8; 4096];
        loop {
            let n = sock
                .read(&mut chunk)
                .await
                .map_err(|e| format!("reading from {addr}: {e}"))?;
            buf.extend_from_slice(&chunk[..n]);
            let head = parse_head(&buf)?;
            let done = match head {
                Some((_, len, Some(body))) => buf.len() >= len + body,
                _ => n == 0 || buf.len() >= MAX_REPLY,
            };
            if done {
                return match head {
                    Some((status, len, body)) => {
                        let end = body.map_or(buf.len(), |b| (len + b).min(buf.len()));
                        Ok(Reply {
                            status,
                            body: String::from_utf8_lossy(&buf[len..end]).trim().to_string(),
                        })
                    }
                    None => Err(format!("{addr} closed the connection without an answer")),
                };
            }
        }
    };
    tokio::time::timeout(timeout, exchange)
        .await
        .unwrap_or_else(|_| {
            Err(format!(
                "no answer from {addr} within {:.1} s",
                timeout.as_secs_f64()
            ))
        })
}

// ---------------------------------------------------------------------------
// The control loop.
// ---------------------------------------------------------------------------

/// Everything the camera task needs; cloned into its two tasks.
#[derive(Clone)]
struct Ctx {
    cfg: CameraConfig,
    source_port: u16,
    stall_after: Duration,
    socket: Arc<UdpSocket>,
    stats: SharedStats,
    status: SharedCamera,
}

impl Ctx {
    fn timeout(&self) -> Duration {
        Duration::from_secs_f64(self.cfg.request_timeout_s)
    }

    /// One request to the camera, accounted in the status. A non-2xx answer is a failure.
    async fn request(&self, target: &str) -> Result<(), String> {
        let addr = http_addr(&self.cfg);
        let result = match http_get(addr, target, self.timeout()).await {
            Ok(r) if (200..300).contains(&r.status) => Ok(()),
            Ok(r) => Err(format!(
                "GET {target}: HTTP {} {}",
                r.status,
                r.body.chars().take(120).collect::<String>()
            )),
            Err(e) => Err(format!("GET {target}: {e}")),
        };
        let mut s = self.status.lock().unwrap();
        s.requests += 1;
        match &result {
            Ok(()) => {
                s.last_ok_unix = Some(unix_now());
                s.reachable = true;
            }
            Err(e) => {
                s.failures += 1;
                s.reachable = false;
                s.last_error = Some(e.clone());
            }
        }
        result
    }

    fn source_age(&self) -> Option<Duration> {
        self.stats.lock().unwrap().video_age()
    }
}

fn retry_backoff(cfg: &CameraConfig) -> Backoff {
    let s = Duration::from_secs_f64;
    // Never "healthy" by duration: it is reset when video arrives.
    Backoff::new(s(cfg.retry_initial_s), s(cfg.retry_max_s), Duration::MAX)
}

/// Starts the camera task: it runs until `stop` turns true, then sends the stop command where
/// the protocol has one and returns.
pub fn spawn(
    config: &Config,
    socket: Arc<UdpSocket>,
    stats: SharedStats,
    stop: watch::Receiver<bool>,
) -> CameraTask {
    let status: SharedCamera = Arc::new(Mutex::new(CameraStatus::new(&config.camera)));
    let ctx = Ctx {
        cfg: config.camera.clone(),
        source_port: config.source.url.addr.port(),
        stall_after: Duration::from_secs_f64(config.source.stall_timeout_s),
        socket,
        stats,
        status: status.clone(),
    };
    CameraTask {
        status,
        task: tokio::spawn(run(ctx, stop)),
    }
}

async fn stopped(stop: &mut watch::Receiver<bool>) {
    let _ = stop.wait_for(|s| *s).await;
}

async fn run(ctx: Ctx, mut stop: watch::Receiver<bool>) {
    let controlled = ctx.cfg.kind != CameraKind::Udp;
    if controlled {
        info!(
            "camera: {} at {}; video expected on udp port {}",
            ctx.cfg.kind.name(),
            http_addr(&ctx.cfg),
            ctx.source_port
        );
    }
    let keepalive = controlled.then(|| tokio::spawn(keep_alive(ctx.clone(), stop.clone())));
    watch_and_start(&ctx, &mut stop).await;
    if let Some(k) = keepalive {
        let _ = k.await;
    }
    let mut ever_ok = ctx.status.lock().unwrap().last_ok_unix.is_some();
    for target in stop_requests(&ctx.cfg) {
        if !ever_ok {
            break; // never reached it: nothing to stop, and no reason to wait
        }
        match ctx.request(target).await {
            Ok(()) => info!("camera: sent stop ({target})"),
            Err(e) => {
                warn!("camera: stop command failed: {e}");
                ever_ok = false;
            }
        }
    }
    let mut s = ctx.status.lock().unwrap();
    s.state = "stopped";
    s.next_retry_s = None;
}

/// Watches the source; (re)sends the start command while no video arrives.
async fn watch_and_start(ctx: &Ctx, stop: &mut watch::Receiver<bool>) {
    let controlled = ctx.cfg.kind != CameraKind::Udp;
    let start = start_request(&ctx.cfg, ctx.source_port);
    let mut backoff = retry_backoff(&ctx.cfg);
    let mut next_start = Some(Instant::now());
    let mut was_live = false;
    let mut last_logged_error: Option<String> = None;
    loop {
        let live = ctx.source_age().is_some_and(|a| a <= ctx.stall_after);
        if live {
            if !was_live {
                let since = ctx.status.lock().unwrap().stalled_since.take();
                match since {
                    Some(t) => {
                        // The source restarts the encoders on the returning timeline.
                        info!(
                            "camera: video is back after {:.1} s without",
                            unix_now() - t
                        );
                    }
                    None => info!("camera: video arriving"),
                }
                backoff = retry_backoff(&ctx.cfg);
                last_logged_error = None;
            }
            was_live = true;
            next_start = None;
            let mut s = ctx.status.lock().unwrap();
            s.state = "live";
            s.next_retry_s = None;
        } else {
            if was_live {
                let msg = if controlled {
                    "; asking the camera again"
                } else {
                    ""
                };
                warn!(
                    "camera: no video for {:.1} s: stalled{msg}; viewers stay connected",
                    ctx.stall_after.as_secs_f64()
                );
                let mut s = ctx.status.lock().unwrap();
                s.stalled_since = Some(unix_now() - ctx.stall_after.as_secs_f64());
                s.state = "stalled";
                was_live = false;
                next_start = Some(Instant::now());
            }
            match (&start, next_start) {
                (Some(target), Some(at)) if Instant::now() >= at => {
                    ctx.status.lock().unwrap().start_requests += 1;
                    let result = ctx.request(target).await;
                    let stalled = ctx.status.lock().unwrap().stalled_since.is_some();
                    match &result {
                        Ok(()) => {
                            info!("camera: start command accepted ({target})");
                            last_logged_error = None;
                        }
                        // Log a failure when it changes, not on every retry.
                        Err(e) if last_logged_error.as_ref() != Some(e) => {
                            warn!("camera: {e}; retrying with backoff");
                            last_logged_error = Some(e.clone());
                        }
                        Err(e) => debug!("camera: {e}"),
                    }
                    let delay = backoff.delay_after(Duration::ZERO);
                    next_start = Some(Instant::now() + delay);
                    let mut s = ctx.status.lock().unwrap();
                    s.state = match (&result, stalled) {
                        (Err(_), _) => "unreachable",
                        (Ok(()), true) => "stalled",
                        (Ok(()), false) => "starting",
                    };
                }
                (None, _) => {
                    let mut s = ctx.status.lock().unwrap();
                    if s.state != "stalled" {
                        s.state = "waiting";
                    }
                }
                _ => {}
            }
            if let Some(at) = next_start {
                ctx.status.lock().unwrap().next_retry_s =
                    Some(at.saturating_duration_since(Instant::now()).as_secs_f64());
            }
        }
        tokio::select! {
            _ = tokio::time::sleep(TICK) => {}
            _ = stopped(stop) => return,
        }
    }
}

/// Sends the keep-alive every `keepalive_interval_s` until stopped.
async fn keep_alive(ctx: Ctx, mut stop: watch::Receiver<bool>) {
    let period = Duration::from_secs_f64(ctx.cfg.keepalive_interval_s);
    let mut ticker = tokio::time::interval(period);
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let udp_to = SocketAddr::new(ctx.cfg.control_address(), ctx.cfg.keepalive_port);
    let mut udp_error_logged = false;
    loop {
        tokio::select! {
            _ = ticker.tick() => {}
            _ = stopped(&mut stop) => return,
        }
        match ctx.cfg.kind {
            CameraKind::GoproLegacy => {
                // From the source socket: the camera streams back to where this comes from.
                match ctx.socket.send_to(LEGACY_KEEPALIVE, udp_to).await {
                    Ok(_) => {
                        ctx.status.lock().unwrap().keepalives += 1;
                        udp_error_logged = false;
                    }
                    Err(e) if !udp_error_logged => {
                        warn!("camera: keep-alive to udp://{udp_to} failed: {e}");
                        udp_error_logged = true;
                    }
                    Err(_) => {}
                }
            }
            CameraKind::OpenGopro => {
                // Only to a camera that answers; an unreachable one is retried by the start loop.
                if !ctx.status.lock().unwrap().reachable {
                    continue;
                }
                if let Some(target) = keepalive_request(&ctx.cfg) {
                    ctx.status.lock().unwrap().keepalives += 1;
                    if let Err(e) = ctx.request(target).await {
                        warn!("camera: keep-alive failed: {e}");
                    }
                }
            }
            CameraKind::Udp => return,
        }
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
        assert_eq!(CameraStatus::new(&c).address, None);
    }

    #[test]
    fn answer_heads_are_parsed() {
        let full = b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\n{}";
        assert_eq!(parse_head(full).unwrap(), Some((200, 38, Some(2))));
        assert_eq!(parse_head(b"HTTP/1.1 200 OK\r\nContent-").unwrap(), None);
        assert_eq!(
            parse_head(b"HTTP/1.0 404 Not Found\r\n\r\n").unwrap(),
            Some((404, 26, None))
        );
        assert!(parse_head(b"SSH-2.0-OpenSSH\r\n\r\n").is_err());
    }

    #[tokio::test(flavor = "current_thread")]
    async fn client_reads_a_reply_and_times_out_on_silence() {
        use tokio::net::TcpListener;
        let l = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = l.local_addr().unwrap();
        let server = tokio::spawn(async move {
            // First connection: a proper answer. Second: accept and say nothing.
            let (mut s, _) = l.accept().await.unwrap();
            let mut buf = [0u8; 1024];
            let n = s.read(&mut buf).await.unwrap();
            let req = String::from_utf8_lossy(&buf[..n]).to_string();
            s.write_all(b"HTTP/1.1 500 Internal\r\nContent-Length: 13\r\n\r\n{\"error\":\"x\"}\n")
                .await
                .unwrap();
            let (_silent, _) = l.accept().await.unwrap();
            tokio::time::sleep(Duration::from_secs(2)).await;
            req
        });
        let r = http_get(addr, "/gopro/camera/keep_alive", Duration::from_secs(2))
            .await
            .unwrap();
        assert_eq!(r.status, 500);
        assert_eq!(r.body, "{\"error\":\"x\"}");
        let e = http_get(addr, "/x", Duration::from_millis(300))
            .await
            .unwrap_err();
        assert!(e.contains("no answer"), "{e}");
        let req = server.await.unwrap();
        assert!(
            req.starts_with("GET /gopro/camera/keep_alive HTTP/1.1\r\n"),
            "{req}"
        );
        assert!(req.contains(&format!("Host: {addr}\r\n")), "{req}");
    }

    #[tokio::test(flavor = "current_thread")]
    async fn client_reports_a_refused_connection_at_once() {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = l.local_addr().unwrap();
        drop(l);
        let e = http_get(addr, "/", Duration::from_secs(2))
            .await
            .unwrap_err();
        assert!(e.contains("cannot connect"), "{e}");
    }
}
