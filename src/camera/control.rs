//! Keeping the camera streaming: start it, keep it awake, notice when its
//! video stops and ask again, and tell it to stop on shutdown. Which request
//! does what is in `protocol`; this is the loop that sends them.
//!
//! Knows nothing of ffmpeg or viewers: it reads the source's video statistics and talks to the
//! camera. While the source is stalled the encoders and viewers stay connected; the picture
//! resumes by itself when video returns (see docs/CAMERA.md).

use crate::camera::protocol::{
    http_addr, keepalive_request, start_request, stop_requests, LEGACY_KEEPALIVE,
};
use crate::clock::unix_now;
use crate::config::{Camera as CameraConfig, CameraKind, Config};
use crate::http::client::http_get;
use crate::media::source::SharedStats;
use crate::supervise::Backoff;
use log::{debug, info, warn};
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::net::UdpSocket;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

/// How often the source's packet age is looked at.
const TICK: Duration = Duration::from_millis(200);

pub use crate::status::CameraStatus;

/// A camera status for `cfg` before anything happened.
pub fn new_status(cfg: &CameraConfig) -> CameraStatus {
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

pub type SharedCamera = Arc<Mutex<CameraStatus>>;

/// The running camera task.
pub struct CameraTask {
    pub status: SharedCamera,
    /// Ends after the stop command was sent; await it before exiting.
    pub task: JoinHandle<()>,
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

/// Starts the camera task: it runs until `stop` is cancelled, then sends the stop command where
/// the protocol has one and returns.
pub fn spawn(
    config: &Config,
    socket: Arc<UdpSocket>,
    stats: SharedStats,
    stop: CancellationToken,
) -> CameraTask {
    let status: SharedCamera = Arc::new(Mutex::new(new_status(&config.camera)));
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

async fn run(ctx: Ctx, stop: CancellationToken) {
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
    watch_and_start(&ctx, &stop).await;
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
async fn watch_and_start(ctx: &Ctx, stop: &CancellationToken) {
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
                            // The Pi has no clock of its own: the camera's, once (src/timekeep.rs).
                            crate::timekeep::from_camera(
                                http_addr(&ctx.cfg),
                                ctx.cfg.kind.name(),
                                ctx.timeout(),
                            )
                            .await;
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
            _ = stop.cancelled() => return,
        }
    }
}

/// Sends the keep-alive every `keepalive_interval_s` until stopped.
async fn keep_alive(ctx: Ctx, stop: CancellationToken) {
    let period = Duration::from_secs_f64(ctx.cfg.keepalive_interval_s);
    let mut ticker = tokio::time::interval(period);
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let udp_to = SocketAddr::new(ctx.cfg.control_address(), ctx.cfg.keepalive_port);
    let mut udp_error_logged = false;
    loop {
        tokio::select! {
            _ = ticker.tick() => {}
            _ = stop.cancelled() => return,
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
    use crate::config::OpenGoProMode;

    #[test]
    fn a_plain_udp_camera_has_no_control_address() {
        let c = CameraConfig {
            kind: CameraKind::Udp,
            mode: OpenGoProMode::Preview,
            ..CameraConfig::default()
        };
        assert_eq!(new_status(&c).address, None);
    }
}
