//! Keeping the camera streaming: find it (`kind = "auto"`), ask what it is, start its stream the
//! way GoPro's SDK does, keep it awake for as long as the daemon runs, notice when its video stops
//! and ask again, find it again when it goes away, and tell it to stop on shutdown. Which request
//! does what is in `protocol`, how each is sent in `session`, where to look in `discover`.
//!
//! Knows nothing of ffmpeg or viewers: it reads the source's video statistics and talks to the
//! camera. While the source is stalled the encoders and viewers stay connected; the picture
//! resumes by itself when video returns (see docs/CAMERA.md).

use crate::camera::discover::{self, Candidate, Host};
use crate::camera::models::{Api, Transport};
use crate::camera::protocol::{Plan, LEGACY_KEEPALIVE, OGP_KEEPALIVE};
use crate::camera::session::{self, Identity, Link, Probe, Started};
use crate::clock::unix_now;
use crate::config::{Camera as CameraConfig, CameraKind, Config};
use crate::media::source::SharedStats;
use crate::supervise::Backoff;
use log::{debug, info, warn};
use std::collections::BTreeSet;
use std::net::{IpAddr, SocketAddr};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::net::UdpSocket;
use tokio::sync::watch;
use tokio::task::{JoinHandle, JoinSet};
use tokio_util::sync::CancellationToken;

pub use crate::camera::session::SharedCamera;
pub use crate::status::CameraStatus;

/// How often the source's packet age is looked at.
const TICK: Duration = Duration::from_millis(200);
/// Start sequences that got no answer at all before a camera found by `auto` counts as gone and
/// the search begins again (with the backoff of 1, 2, 4 s: about 7 s without an answer).
const LOST_AFTER: u32 = 3;
/// Senders of video asked whether they are a GoPro, remembered so that each is asked once.
const MAX_ASKED_SENDERS: usize = 64;
/// HTTP keep-alives outstanding at once: a camera that holds one does not delay the next, and a
/// camera that holds them all gets no pile of connections.
const KEEPALIVES_IN_FLIGHT: usize = 2;

/// A camera status for `cfg` before anything happened.
pub fn new_status(cfg: &CameraConfig) -> CameraStatus {
    let api = match cfg.kind {
        CameraKind::Auto => None,
        CameraKind::Udp => Some("udp"),
        CameraKind::GoproLegacy => Some(Api::Legacy.name()),
        CameraKind::OpenGopro => Some(Api::OpenGoPro.name()),
    };
    let address = configured_api(cfg).map(|a| {
        format!(
            "http://{}",
            SocketAddr::new(cfg.control_address(), cfg.port_for(a))
        )
    });
    CameraStatus {
        kind: cfg.kind.name(),
        state: if cfg.kind == CameraKind::Auto {
            "searching"
        } else {
            "waiting"
        },
        api,
        address,
        ..CameraStatus::default()
    }
}

/// The API of an explicit GoPro kind.
fn configured_api(cfg: &CameraConfig) -> Option<Api> {
    match cfg.kind {
        CameraKind::GoproLegacy => Some(Api::Legacy),
        CameraKind::OpenGopro => Some(Api::OpenGoPro),
        CameraKind::Auto | CameraKind::Udp => None,
    }
}

/// The running camera task.
pub struct CameraTask {
    pub status: SharedCamera,
    /// Ends after the stop command was sent; await it before exiting.
    pub task: JoinHandle<()>,
}

/// Where the keep-alives go.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Target {
    api: Api,
    http: SocketAddr,
    udp: SocketAddr,
}

/// Everything the camera tasks need.
#[derive(Clone)]
struct Ctx {
    cfg: CameraConfig,
    source_port: u16,
    stall_after: Duration,
    socket: Arc<UdpSocket>,
    stats: SharedStats,
    status: SharedCamera,
    target: Arc<Mutex<Option<Target>>>,
    /// Tells the source which sender is the camera found (auto).
    found: Arc<watch::Sender<Option<IpAddr>>>,
    host: Host,
}

impl Ctx {
    fn timeout(&self) -> Duration {
        Duration::from_secs_f64(self.cfg.request_timeout_s)
    }

    fn live(&self) -> bool {
        self.stats
            .lock()
            .unwrap()
            .video_age()
            .is_some_and(|a| a <= self.stall_after)
    }

    fn set(&self, f: impl FnOnce(&mut CameraStatus)) {
        f(&mut self.status.lock().unwrap())
    }

    /// Keep-alives go to `id`, and the source admits only its video (None: nobody's).
    fn aim_keepalives(&self, id: Option<&Identity>) {
        self.found.send_replace(id.map(|id| id.ip));
        *self.target.lock().unwrap() = id.map(|id| Target {
            api: id.api,
            http: SocketAddr::new(id.ip, id.port),
            udp: SocketAddr::new(id.ip, self.cfg.keepalive_port),
        });
    }
}

fn retry_backoff(cfg: &CameraConfig) -> Backoff {
    let s = Duration::from_secs_f64;
    // Never "healthy" by duration: it is reset when video arrives.
    Backoff::new(s(cfg.retry_initial_s), s(cfg.retry_max_s), Duration::MAX)
}

/// The config the camera task runs on: the demo's camera is the demo's own ffmpeg, a plain
/// sender with nothing to find or drive.
pub fn for_demo(config: &Config, demo: bool) -> Config {
    let mut c = config.clone();
    if demo {
        c.camera.kind = CameraKind::Udp;
    }
    c
}

/// Starts the camera task: it runs until `stop` is cancelled, then sends the stop command where
/// the protocol has one and returns.
pub fn spawn(
    config: &Config,
    socket: Arc<UdpSocket>,
    stats: SharedStats,
    found: watch::Sender<Option<IpAddr>>,
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
        target: Arc::new(Mutex::new(None)),
        found: Arc::new(found),
        host: Host::default(),
    };
    CameraTask {
        status,
        task: tokio::spawn(run(ctx, stop)),
    }
}

async fn run(ctx: Ctx, stop: CancellationToken) {
    let keepalive = tokio::spawn(keep_alive(ctx.clone(), stop.clone()));
    let answered = match ctx.cfg.kind {
        CameraKind::Udp => {
            ctx.set(|s| s.found_by = Some("kind = \"udp\": any sender".into()));
            watch_plain_udp(&ctx, &stop).await;
            None
        }
        _ => control(&ctx, &stop).await,
    };
    let _ = keepalive.await;
    if let Some((link, plan)) = answered {
        match session::stop(&link, &plan).await {
            Ok(()) => info!("camera: sent stop ({})", plan.stop_requests().join(", ")),
            Err(e) => warn!("camera: stop command failed: {e}"),
        }
    }
    ctx.set(|s| {
        s.state = "stopped";
        s.reason = None;
        s.next_retry_s = None;
    });
}

/// A camera found, and how.
struct Found {
    id: Identity,
    found_by: String,
}

/// How driving one camera ended.
enum Ended {
    Stopped,
    /// No answer for `LOST_AFTER` start sequences (auto only): search again.
    Lost,
    /// It answered as a different camera (another model or API at that address).
    Changed(Found),
}

/// The camera kinds that are driven: find (or take the configured one), drive, and again.
/// Returns the camera that last answered a start sequence, for the stop on shutdown.
async fn control(ctx: &Ctx, stop: &CancellationToken) -> Option<(Link, Plan)> {
    let mut answered = None;
    let mut next: Option<Found> = None;
    loop {
        let found = match next.take() {
            Some(f) => f,
            None => match configured_api(&ctx.cfg) {
                Some(api) => configured(ctx, api).await,
                None => match search(ctx, stop).await {
                    Some(f) => f,
                    None => return answered,
                },
            },
        };
        match drive(ctx, found, stop, &mut answered).await {
            Ended::Stopped => return answered,
            Ended::Lost => {
                ctx.aim_keepalives(None);
                ctx.set(|s| {
                    s.state = "searching";
                    s.reason = Some("the camera stopped answering: searching again".into());
                    s.mode = None;
                    s.mode_reason = None;
                });
            }
            Ended::Changed(f) => next = Some(f),
        }
    }
}

/// The camera of an explicit kind at its configured address: asked what it is (for `/status`);
/// one that does not say is driven as configured.
async fn configured(ctx: &Ctx, api: Api) -> Found {
    let ip = ctx.cfg.control_address();
    let transport = Transport::of_address(ip);
    let found_by = if ctx.cfg.address.is_some() {
        "the configured address".to_string()
    } else {
        format!("the default address of kind \"{}\"", ctx.cfg.kind.name())
    };
    let id =
        match session::identify(ip, ctx.cfg.http_port, Some(api), transport, ctx.timeout()).await {
            Probe::Found(id) => id,
            _ => Identity::assumed(api, ip, ctx.cfg.port_for(api), transport),
        };
    Found { id, found_by }
}

/// `auto`: asks every candidate address, in rounds with backoff, until a camera answers. Video
/// that arrives meanwhile is looked at: its sender is asked once whether it is a GoPro; one that
/// is not is plain `udp`, and no rounds are run while its video flows. None: stopped.
async fn search(ctx: &Ctx, stop: &CancellationToken) -> Option<Found> {
    let mut backoff = retry_backoff(&ctx.cfg);
    let mut next_round = Instant::now();
    let mut asked_senders: BTreeSet<IpAddr> = BTreeSet::new();
    let mut last_candidates: Vec<IpAddr> = Vec::new();
    let mut plain: Option<IpAddr> = None;
    loop {
        let sender = ctx.stats.lock().unwrap().last_sender.map(|s| s.ip());
        if let Some(ip) = sender.filter(|_| ctx.live()) {
            if asked_senders.len() >= MAX_ASKED_SENDERS {
                // Senders come one per stall at most (the source holds the port for a live one);
                // a long run of strangers still only ever costs this much memory.
                asked_senders.clear();
            }
            if asked_senders.insert(ip) {
                let probe = session::identify(
                    ip,
                    ctx.cfg.http_port,
                    None,
                    Transport::of_address(ip),
                    ctx.timeout(),
                )
                .await;
                if let Probe::Found(id) = probe {
                    return Some(Found {
                        id,
                        found_by: format!("the video it sends ({ip})"),
                    });
                }
                info!("camera: video from {ip}, which has no GoPro HTTP API: a plain UDP sender");
            }
            plain = Some(ip);
            ctx.set(|s| {
                s.state = "live";
                s.reason = None;
                s.api = Some("udp");
                s.found_by = Some(format!("the video it sends ({ip}); no GoPro HTTP API"));
                s.stalled_since = None;
                s.next_retry_s = None;
            });
            backoff = retry_backoff(&ctx.cfg);
            next_round = Instant::now() + ctx.stall_after;
        } else {
            if let Some(ip) = plain.take() {
                warn!(
                    "camera: no video from {ip} for {:.1} s: stalled; searching for a camera",
                    ctx.stall_after.as_secs_f64()
                );
                ctx.set(|s| {
                    s.state = "stalled";
                    s.stalled_since = Some(unix_now() - ctx.stall_after.as_secs_f64());
                });
            }
            if Instant::now() >= next_round {
                let links = discover::usb_links(&ctx.host, &discover::interface_addrs());
                let candidates = discover::candidates(&ctx.cfg, &links);
                let ips: Vec<IpAddr> = candidates.iter().map(|c| c.ip).collect();
                if ips != last_candidates {
                    info!(
                        "camera: searching at {}",
                        candidates
                            .iter()
                            .map(|c| format!("{} ({})", c.ip, c.found_by))
                            .collect::<Vec<_>>()
                            .join(", ")
                    );
                    last_candidates = ips;
                }
                ctx.set(|s| s.searches += 1);
                match round(ctx, &candidates).await {
                    Ok(found) => return Some(found),
                    Err(misses) => {
                        let delay = backoff.delay_after(Duration::ZERO);
                        next_round = Instant::now() + delay;
                        debug!("camera: no camera found: {misses}");
                        ctx.set(|s| {
                            if s.state != "stalled" {
                                s.state = "searching";
                            }
                            s.reason = Some(format!(
                                "no camera found ({misses}); searching again in {:.0} s",
                                delay.as_secs_f64()
                            ));
                        });
                    }
                }
            }
            ctx.set(|s| {
                s.next_retry_s = Some(
                    next_round
                        .saturating_duration_since(Instant::now())
                        .as_secs_f64(),
                )
            });
        }
        tokio::select! {
            _ = tokio::time::sleep(TICK) => {}
            _ = stop.cancelled() => return None,
        }
    }
}

/// One discovery round: each candidate asked once. `Err`: what each said.
async fn round(ctx: &Ctx, candidates: &[Candidate]) -> Result<Found, String> {
    let mut misses = Vec::new();
    for c in candidates {
        match session::identify(c.ip, ctx.cfg.http_port, None, c.transport, ctx.timeout()).await {
            Probe::Found(id) => {
                return Ok(Found {
                    id,
                    found_by: c.found_by.clone(),
                })
            }
            Probe::NoApi(e) => misses.push(format!("{}: no GoPro API: {e}", c.ip)),
            Probe::Unreachable(e) => misses.push(format!("{}: {e}", c.ip)),
        }
    }
    Err(misses.join("; "))
}

/// Shows an identified camera in the status and logs it.
fn publish(ctx: &Ctx, found: &Found, plan: &Plan) {
    let id = &found.id;
    let model = id.model_name();
    let codec = match plan.mode {
        crate::camera::protocol::Mode::Webcam => Some("h264"),
        _ => id.model.map(|m| m.preview_codec.name()),
    };
    info!(
        "camera: {} ({}{}) at http://{}:{} over {}, found at {}; asking for its {}{}",
        model
            .as_deref()
            .unwrap_or("a camera that did not say its model"),
        id.api.name(),
        id.description
            .firmware
            .as_deref()
            .map(|f| format!(", firmware {f}"))
            .unwrap_or_default(),
        id.ip,
        id.port,
        id.transport.name(),
        found.found_by,
        plan.mode.name(),
        plan.mode_reason
            .as_deref()
            .map(|r| format!(" ({r})"))
            .unwrap_or_default()
    );
    ctx.set(|s| {
        s.api = Some(id.api.name());
        s.api_version = id.api_version.clone();
        s.model = model;
        s.model_number = id.description.model_number.or(id.model.map(|m| m.number));
        s.firmware = id.description.firmware.clone();
        s.address = Some(format!("http://{}", SocketAddr::new(id.ip, id.port)));
        s.transport = Some(id.transport.name());
        s.found_by = Some(found.found_by.clone());
        s.mode = Some(plan.mode.name());
        s.mode_reason = plan.mode_reason.clone();
        s.codec = codec;
    });
}

/// Drives one camera: start sequences (with backoff) while no video arrives, keep-alives all
/// along, the stall watch.
async fn drive(
    ctx: &Ctx,
    found: Found,
    stop: &CancellationToken,
    answered: &mut Option<(Link, Plan)>,
) -> Ended {
    let id = found.id.clone();
    let auto = ctx.cfg.kind == CameraKind::Auto;
    let link = Link::new(
        SocketAddr::new(id.ip, id.port),
        ctx.timeout(),
        ctx.status.clone(),
    );
    let mut plan = Plan::new(
        &ctx.cfg,
        id.api,
        id.model,
        id.transport,
        id.info_absent,
        ctx.source_port,
    );
    publish(ctx, &found, &plan);
    ctx.aim_keepalives(Some(&id));
    let mut backoff = retry_backoff(&ctx.cfg);
    let mut next_start = Some(Instant::now());
    let mut was_live = false;
    let mut unanswered = 0u32;
    let mut needs_identify = false;
    let mut last_logged: Option<String> = None;
    loop {
        if ctx.live() {
            if !was_live {
                match ctx.status.lock().unwrap().stalled_since.take() {
                    Some(t) => info!(
                        "camera: video is back after {:.1} s without",
                        unix_now() - t
                    ),
                    None => info!("camera: video arriving"),
                }
                backoff = retry_backoff(&ctx.cfg);
                last_logged = None;
                unanswered = 0;
            }
            was_live = true;
            next_start = None;
            ctx.set(|s| {
                s.state = "live";
                s.reason = None;
                s.next_retry_s = None;
            });
        } else {
            if was_live {
                warn!(
                    "camera: no video for {:.1} s: stalled; asking the camera again; viewers stay connected",
                    ctx.stall_after.as_secs_f64()
                );
                ctx.set(|s| {
                    s.stalled_since = Some(unix_now() - ctx.stall_after.as_secs_f64());
                    s.state = "stalled";
                });
                was_live = false;
                next_start = Some(Instant::now());
            }
            if next_start.is_some_and(|at| Instant::now() >= at) {
                if needs_identify {
                    let only = configured_api(&ctx.cfg);
                    let probe = session::identify(
                        id.ip,
                        ctx.cfg.http_port,
                        only,
                        id.transport,
                        ctx.timeout(),
                    )
                    .await;
                    if let Probe::Found(new) = probe {
                        needs_identify = false;
                        if !new.same_camera(&id) {
                            info!("camera: a different camera answers at {}", id.ip);
                            return Ended::Changed(Found {
                                id: new,
                                found_by: found.found_by.clone(),
                            });
                        }
                    }
                }
                ctx.set(|s| s.start_requests += 1);
                let started = session::start(&link, &mut plan, id.model, ctx.source_port).await;
                if started == Started::Accepted {
                    // The Pi has no clock of its own: the camera's, once (src/timekeep.rs).
                    crate::timekeep::from_camera(link.addr, id.api.name(), ctx.timeout()).await;
                }
                let stalled = ctx.status.lock().unwrap().stalled_since.is_some();
                let delay = match &started {
                    Started::FellBack(_) => Duration::ZERO,
                    _ => backoff.delay_after(Duration::ZERO),
                };
                let again = format!("asking again in {:.1} s", delay.as_secs_f64());
                let (state, reason, message) = match &started {
                    Started::Accepted => (
                        if stalled { "stalled" } else { "starting" },
                        format!("asked for its {}; waiting for video", plan.mode.name()),
                        format!(
                            "start accepted ({}); waiting for video",
                            plan.start_request()
                        ),
                    ),
                    Started::Busy(why) => (
                        "busy",
                        format!("busy: {why}; {again}"),
                        format!("the camera is busy: {why}; {again}"),
                    ),
                    Started::Refused(why) => (
                        "refused",
                        format!("refused: {why}; {again}"),
                        format!("the camera refused: {why}; {again}"),
                    ),
                    Started::FellBack(why) => (
                        "starting",
                        format!("{why}: asking for the preview stream"),
                        format!("{why}: asking for the preview stream instead"),
                    ),
                    Started::Unreachable(e) => (
                        "unreachable",
                        format!("{e}; {again}"),
                        format!("no answer: {e}; {again}"),
                    ),
                };
                // Each new situation once in the log, not every retry.
                let key = message
                    .split("; asking again")
                    .next()
                    .unwrap_or("")
                    .to_string();
                if last_logged.as_ref() != Some(&key) {
                    match &started {
                        Started::Accepted | Started::FellBack(_) => info!("camera: {message}"),
                        _ => warn!("camera: {message}"),
                    }
                    last_logged = Some(key);
                } else {
                    debug!("camera: {message}");
                }
                if !matches!(started, Started::Unreachable(_)) {
                    unanswered = 0;
                    *answered = Some((link.clone(), plan.clone()));
                }
                ctx.set(|s| {
                    s.state = state;
                    s.reason = Some(reason);
                    if let Started::FellBack(_) = started {
                        s.mode = Some(plan.mode.name());
                        s.mode_reason = plan.mode_reason.clone();
                        s.codec = id.model.map(|m| m.preview_codec.name());
                    }
                });
                next_start = Some(Instant::now() + delay);
                if let Started::Unreachable(_) = started {
                    unanswered += 1;
                    needs_identify = true;
                    if auto && unanswered >= LOST_AFTER {
                        warn!(
                            "camera: {} answered none of {LOST_AFTER} start sequences: searching again",
                            id.ip
                        );
                        return Ended::Lost;
                    }
                }
            }
            if let Some(at) = next_start {
                ctx.set(|s| {
                    s.next_retry_s =
                        Some(at.saturating_duration_since(Instant::now()).as_secs_f64())
                });
            }
        }
        tokio::select! {
            _ = tokio::time::sleep(TICK) => {}
            _ = stop.cancelled() => return Ended::Stopped,
        }
    }
}

/// `kind = "udp"`: nothing to ask; only the stall watch.
async fn watch_plain_udp(ctx: &Ctx, stop: &CancellationToken) {
    let mut was_live = false;
    loop {
        let live = ctx.live();
        if live && !was_live {
            let since = ctx.status.lock().unwrap().stalled_since.take();
            match since {
                Some(t) => info!(
                    "camera: video is back after {:.1} s without",
                    unix_now() - t
                ),
                None => info!("camera: video arriving"),
            }
            ctx.set(|s| s.state = "live");
        } else if !live && was_live {
            warn!(
                "camera: no video for {:.1} s: stalled; viewers stay connected",
                ctx.stall_after.as_secs_f64()
            );
            ctx.set(|s| {
                s.stalled_since = Some(unix_now() - ctx.stall_after.as_secs_f64());
                s.state = "stalled";
            });
        }
        was_live = live;
        tokio::select! {
            _ = tokio::time::sleep(TICK) => {}
            _ = stop.cancelled() => return,
        }
    }
}

/// Sends the keep-alive every `keepalive_interval_s` to the camera being driven, until stopped,
/// whatever the last one got: a camera that missed one is kept awake by the next.
async fn keep_alive(ctx: Ctx, stop: CancellationToken) {
    let period = Duration::from_secs_f64(ctx.cfg.keepalive_interval_s);
    let mut ticker = tokio::time::interval(period);
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let failing = Arc::new(Mutex::new(false));
    let mut in_flight: JoinSet<()> = JoinSet::new();
    loop {
        tokio::select! {
            _ = ticker.tick() => {}
            _ = stop.cancelled() => break,
        }
        while in_flight.try_join_next().is_some() {}
        let Some(t) = *ctx.target.lock().unwrap() else {
            continue;
        };
        ctx.set(|s| s.keepalives += 1);
        match t.api {
            Api::Legacy => {
                // From the source socket: the camera streams back to where this comes from.
                let r = ctx
                    .socket
                    .send_to(LEGACY_KEEPALIVE, t.udp)
                    .await
                    .map(|_| ())
                    .map_err(|e| format!("keep-alive to udp://{}: {e}", t.udp));
                keepalive_result(&ctx, &failing, r);
            }
            Api::OpenGoPro => {
                if in_flight.len() >= KEEPALIVES_IN_FLIGHT {
                    keepalive_result(
                        &ctx,
                        &failing,
                        Err(format!(
                            "{KEEPALIVES_IN_FLIGHT} keep-alives still unanswered; this one not sent"
                        )),
                    );
                    continue;
                }
                let link = Link::new(t.http, ctx.timeout(), ctx.status.clone());
                let (ctx, failing) = (ctx.clone(), failing.clone());
                in_flight.spawn(async move {
                    let r = match link.get(OGP_KEEPALIVE).await {
                        Ok(r) if (200..300).contains(&r.status) => Ok(()),
                        Ok(r) => Err(format!("GET {OGP_KEEPALIVE}: HTTP {}", r.status)),
                        Err(e) => Err(e),
                    };
                    keepalive_result(&ctx, &failing, r);
                });
            }
        }
    }
    in_flight.abort_all();
}

/// Accounts one keep-alive; logs when they start failing and when they are answered again.
fn keepalive_result(ctx: &Ctx, failing: &Mutex<bool>, r: Result<(), String>) {
    let mut was_failing = failing.lock().unwrap();
    match r {
        Ok(()) => {
            if *was_failing {
                info!("camera: keep-alives answered again");
            }
            *was_failing = false;
        }
        Err(e) => {
            if !*was_failing {
                warn!(
                    "camera: keep-alive failed: {e}; they go on every {:.1} s",
                    ctx.cfg.keepalive_interval_s
                );
            }
            *was_failing = true;
            ctx.set(|s| {
                s.keepalive_failures += 1;
                s.last_error = Some(e);
            });
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_new_status_says_what_is_known_before_anything_is_asked() {
        let udp = CameraConfig {
            kind: CameraKind::Udp,
            ..CameraConfig::default()
        };
        let s = new_status(&udp);
        assert_eq!((s.state, s.api, s.address), ("waiting", Some("udp"), None));
        let auto = new_status(&CameraConfig::default());
        assert_eq!(
            (auto.kind, auto.state, auto.api),
            ("auto", "searching", None)
        );
        let ogp = new_status(&CameraConfig {
            kind: CameraKind::OpenGopro,
            ..CameraConfig::default()
        });
        assert_eq!(ogp.address.as_deref(), Some("http://10.5.5.9:8080"));
        assert_eq!(ogp.api, Some("open-gopro"));
        let legacy = new_status(&CameraConfig {
            kind: CameraKind::GoproLegacy,
            address: Some("192.168.1.20".parse().unwrap()),
            ..CameraConfig::default()
        });
        assert_eq!(legacy.address.as_deref(), Some("http://192.168.1.20:80"));
    }
}
