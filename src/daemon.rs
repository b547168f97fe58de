//! Wiring: the source socket, the encoders, the hub, the HTTP server, signals.

use crate::camera::control::{self as camera, CameraStatus, SharedCamera};
use crate::camera::demo::{self, DemoSource};
use crate::config::{AdaptMode, Config};
use crate::config_source::{self, Sources};
use crate::control::adapt::{AdaptStatus, Controller};
use crate::control::link::LinkSample;
use crate::http::server as http;
use crate::media::encoder::{Encoder, NEW_TIMELINE};
use crate::media::push::Push;
use crate::media::relay::{Event, Hub, HubStats, Limits};
use crate::media::source::{self, Expect, Feed, SharedStats, SourceStatus};
use crate::notify::Notifier;
use crate::supervise::{self, ChildInfo, SharedInfo};
use crate::VERSION;
use log::{error, info, warn};
use serde::Serialize;
use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::signal::unix::{signal, SignalKind};
use tokio::sync::watch;

/// One viewer's figures, for `/status`.
#[derive(Debug, Clone, Serialize)]
pub struct ViewerStats {
    pub id: u64,
    pub address: String,
    #[serde(skip)]
    pub connected_at: Instant,
    pub connected_s: f64,
    pub bytes_sent: u64,
    pub skips: u64,
    /// How far behind live the viewer's next chunk was at its last write.
    pub lag_ms: u64,
    /// The newest link figures (TCP_INFO over the last second).
    pub link: Option<LinkSample>,
    /// Nothing acknowledged for seconds: not counted in quality decisions.
    pub stalled: bool,
}

#[derive(Debug, Clone, Serialize)]
pub struct EncoderStatus {
    pub generation: u64,
    pub rung: usize,
    pub width: u32,
    pub height: u32,
    pub fps: u32,
    pub bitrate_kbps: u32,
    pub pid: Option<u32>,
    pub restarts: u64,
    pub uptime_s: Option<f64>,
    pub last_exit: Option<String>,
    pub last_stderr: Option<String>,
    /// Restarts by reason: "exited", "no output", "new timeline".
    pub restarts_by_reason: BTreeMap<&'static str, u64>,
    /// ffmpeg's stderr lines not logged (over the log budget).
    pub stderr_suppressed: u64,
}

#[derive(Debug, Clone, Serialize)]
pub struct Status {
    pub version: &'static str,
    pub uptime_s: f64,
    pub source: SourceStatus,
    pub camera: CameraStatus,
    pub encoder: Option<EncoderStatus>,
    pub pending_encoder: Option<EncoderStatus>,
    pub hub: HubStats,
    pub adapt: AdaptStatus,
    pub demo_source: Option<ChildInfo>,
    pub viewers: Vec<ViewerStats>,
    /// `[[output]]` pushes and their probed links.
    pub outputs: Vec<OutputStatus>,
    /// Server-wide totals (answers, viewers served and refused, bytes sent).
    pub http: crate::http::metrics::Totals,
}

/// One `[[output]]` and what its probe measured.
#[derive(Debug, Clone, Serialize)]
pub struct OutputStatus {
    pub url: String,
    /// "icmp", "udp" or "none".
    pub probe: &'static str,
    pub link: Option<LinkSample>,
    pub push: crate::media::push::PushStatus,
}

/// Controller ids for outputs count down from the top, viewers up from 1.
fn output_controller_id(index: usize) -> u64 {
    u64::MAX - index as u64
}

/// The encoders the daemon runs: one active, and one pending during a switch.
#[derive(Default)]
pub struct Encoders {
    pub active: Option<EncoderSlot>,
    pub pending: Option<EncoderSlot>,
}

/// What `/status` shows of a running encoder.
pub struct EncoderSlot {
    pub generation: u64,
    pub rung: usize,
    pub settings: crate::config::Rung,
    pub info: SharedInfo,
}

impl EncoderSlot {
    fn of(e: &Encoder) -> Self {
        EncoderSlot {
            generation: e.generation,
            rung: e.rung,
            settings: e.settings.clone(),
            info: e.info.clone(),
        }
    }
}

/// State the HTTP side reads; everything else stays in `run`.
pub struct Shared {
    config: Mutex<Arc<Config>>,
    pub hub: Arc<Hub>,
    pub source: SharedStats,
    pub camera: SharedCamera,
    pub encoders: Mutex<Encoders>,
    viewers: Mutex<BTreeMap<u64, ViewerStats>>,
    next_viewer: AtomicU64,
    started: Instant,
    demo_source: Option<SharedInfo>,
    pub controller: Mutex<Controller>,
    /// Totals for `/metrics`, bumped by the HTTP side.
    pub counters: crate::http::metrics::Counters,
    /// Open connections, per address and in all.
    pub admission: Arc<crate::http::admission::Admission>,
    /// The only sender the source admits, if any.
    camera_address: Option<std::net::IpAddr>,
    /// The web page's clients and the `/events` fan-out.
    pub web: crate::http::events::Web,
    outputs: Mutex<Vec<OutputStatus>>,
    pushes: Mutex<Vec<Arc<crate::media::push::PushStats>>>,
    /// Padding each viewer adds while the controller probes for headroom, kbit/s.
    padding_kbps: AtomicU64,
}

impl Shared {
    pub fn config(&self) -> Arc<Config> {
        self.config.lock().unwrap().clone()
    }

    /// Replaces the configuration that readers of `config()` see (SIGHUP reload).
    pub fn set_config(&self, c: Arc<Config>) {
        *self.config.lock().unwrap() = c;
    }

    /// One line for systemd's `STATUS=`: source state, rung, viewers.
    pub fn status_summary(&self) -> String {
        let s = self.status();
        let encoder = match &s.encoder {
            Some(e) if e.pid.is_some() => format!(
                "rung {} {}x{}@{} {} kb/s",
                e.rung, e.width, e.height, e.fps, e.bitrate_kbps
            ),
            Some(e) if e.restarts == 0 => format!("rung {} encoder starting", e.rung),
            Some(e) => format!("rung {} encoder restarting", e.rung),
            None => "no encoder".into(),
        };
        format!(
            "source {}, {encoder}, {} viewer(s), camera ({}) {}",
            s.source.state,
            s.viewers.len(),
            s.camera.kind,
            s.camera.state
        )
    }

    /// Registers a viewer unless the server is full.
    pub fn add_viewer(&self, peer: SocketAddr) -> Option<u64> {
        let max = self.config().server.max_viewers;
        let mut v = self.viewers.lock().unwrap();
        if v.len() >= max {
            return None;
        }
        let id = self.next_viewer.fetch_add(1, Ordering::Relaxed) + 1;
        let now = Instant::now();
        v.insert(
            id,
            ViewerStats {
                id,
                address: peer.to_string(),
                connected_at: now,
                connected_s: 0.0,
                bytes_sent: 0,
                skips: 0,
                lag_ms: 0,
                link: None,
                stalled: false,
            },
        );
        Some(id)
    }

    /// Padding each viewer should add to its video now (0: none), kbit/s.
    pub fn padding_kbps(&self) -> u64 {
        self.padding_kbps.load(Ordering::Relaxed)
    }

    /// Seconds since the daemon started: the controller's clock.
    pub fn clock(&self) -> f64 {
        self.started.elapsed().as_secs_f64()
    }

    /// A probe's figures for output `index` (None: it cannot probe right now).
    pub fn output_link(&self, index: usize, sample: Option<LinkSample>) {
        if let Some(o) = self.outputs.lock().unwrap().get_mut(index) {
            o.link = sample;
        }
        let mut c = self.controller.lock().unwrap();
        match sample {
            Some(s) => c.observe(output_controller_id(index), s),
            None => c.remove(output_controller_id(index)),
        }
    }

    /// A viewer that makes no progress at all leaves the controller's view
    /// until it does again.
    pub fn viewer_stalled(&self, id: u64, stalled: bool) {
        if let Some(s) = self.viewers.lock().unwrap().get_mut(&id) {
            s.stalled = stalled;
        }
        if stalled {
            self.controller.lock().unwrap().remove(id);
        }
    }

    /// A viewer's newest link figures, for `/status` and, when it `counts`
    /// (warmed up, making progress), for the controller.
    pub fn viewer_link(&self, id: u64, sample: LinkSample, counts: bool) {
        if let Some(s) = self.viewers.lock().unwrap().get_mut(&id) {
            s.link = Some(sample);
        }
        if counts {
            self.controller.lock().unwrap().observe(id, sample);
        }
    }

    /// Pins a rung (the operator's override) or, with None, returns to
    /// automatic; the controller's state afterwards as JSON.
    pub fn pin_rung(&self, pin: Option<usize>) -> Result<String, String> {
        let mut c = self.controller.lock().unwrap();
        c.pin(pin)?;
        info!(
            "operator: rung {}",
            pin.map_or("auto".to_string(), |r| r.to_string())
        );
        Ok(serde_json::to_string_pretty(&c.status()).unwrap_or_default())
    }

    pub fn viewer_progress(&self, id: u64, bytes: usize, skipped: bool, lag: Duration) {
        if let Some(s) = self.viewers.lock().unwrap().get_mut(&id) {
            s.bytes_sent += bytes as u64;
            s.skips += u64::from(skipped);
            s.lag_ms = lag.as_millis() as u64;
        }
    }

    pub fn remove_viewer(&self, id: u64) {
        self.viewers.lock().unwrap().remove(&id);
        self.controller.lock().unwrap().remove(id);
    }

    fn encoder_status(&self, slot: &Option<EncoderSlot>) -> Option<EncoderStatus> {
        let slot = slot.as_ref()?;
        let r = &slot.settings;
        let i = slot.info.lock().unwrap();
        Some(EncoderStatus {
            generation: slot.generation,
            rung: slot.rung,
            width: r.width,
            height: r.height,
            fps: r.fps,
            bitrate_kbps: r.bitrate_kbps,
            pid: i.pid,
            restarts: i.restarts,
            uptime_s: i.uptime().map(|d| d.as_secs_f64()),
            last_exit: i.last_exit.clone(),
            last_stderr: i.last_stderr.clone(),
            restarts_by_reason: i.restarts_by_reason.clone(),
            stderr_suppressed: i.stderr_suppressed,
        })
    }

    pub fn status(&self) -> Status {
        let cfg = self.config();
        let source = self.source.lock().unwrap().status(
            cfg.source.url.addr,
            self.camera_address,
            Duration::from_secs_f64(cfg.source.stall_timeout_s),
        );
        let (encoder, pending_encoder) = {
            let e = self.encoders.lock().unwrap();
            (
                self.encoder_status(&e.active),
                self.encoder_status(&e.pending),
            )
        };
        let viewers = self
            .viewers
            .lock()
            .unwrap()
            .values()
            .map(|v| ViewerStats {
                connected_s: v.connected_at.elapsed().as_secs_f64(),
                ..v.clone()
            })
            .collect();
        Status {
            version: VERSION,
            uptime_s: self.started.elapsed().as_secs_f64(),
            source,
            camera: self.camera.lock().unwrap().clone(),
            encoder,
            pending_encoder,
            hub: self.hub.stats(),
            adapt: self.controller.lock().unwrap().status(),
            demo_source: self.demo_source.as_ref().map(|i| i.lock().unwrap().clone()),
            viewers,
            outputs: {
                let pushes = self.pushes.lock().unwrap();
                let mut outputs = self.outputs.lock().unwrap().clone();
                for ((o, p), c) in outputs.iter_mut().zip(pushes.iter()).zip(&cfg.outputs) {
                    o.push = p.status();
                    // ffmpeg names the URL in its errors: never show its secrets.
                    if let Some(e) = &mut o.push.last_error {
                        *e = e.replace(&c.url.0, &o.url);
                    }
                }
                outputs
            },
            http: self
                .counters
                .snapshot(cfg.server.max_viewers, self.admission.stats()),
        }
    }

    /// Healthy while the encoder is running and producing output.
    pub fn health(&self) -> (bool, String) {
        let s = self.status();
        match (&s.encoder, s.hub.last_input_age_ms) {
            (Some(e), Some(age)) if e.pid.is_some() && age < 5000 => {
                (true, format!("ok: streaming rung {}", e.rung))
            }
            (Some(e), _) if e.pid.is_none() => (
                false,
                format!(
                    "encoder not running: {}",
                    e.last_exit.clone().unwrap_or_default()
                ),
            ),
            _ => (
                false,
                format!("no encoded output yet (source {})", s.source.state),
            ),
        }
    }
}

/// Starts a probe for every `[[output]]` whose host can be probed; their
/// figures go to `/status` and, like a viewer's, to the controller.
fn start_probes(cfg: &Config, shared: &Arc<Shared>) -> Vec<tokio::task::JoinHandle<()>> {
    let mut statuses = Vec::new();
    let mut tasks = Vec::new();
    for (i, o) in cfg.outputs.iter().enumerate() {
        let target = o.probe_target();
        let kind = match target.map(|t| t.0) {
            Some(crate::control::probe::ProbeMode::Udp) => "udp",
            Some(_) => "icmp",
            None => "none",
        };
        statuses.push(OutputStatus {
            url: crate::media::push::redacted(&o.url.0),
            probe: kind,
            link: None,
            push: Default::default(),
        });
        let Some((mode, host)) = target else { continue };
        let (clock, report) = (shared.clone(), shared.clone());
        tasks.push(tokio::spawn(crate::control::probe::run(
            format!("output {}", crate::media::push::redacted(&o.url.0)),
            mode,
            host,
            o.probe_port,
            Duration::from_millis(o.probe_interval_ms),
            move || clock.clock(),
            move |sample| report.output_link(i, sample),
        )));
    }
    *shared.outputs.lock().unwrap() = statuses;
    tasks
}

/// Starts every `[[output]]` push, fed from the hub.
fn start_pushes(cfg: &Config, shared: &Arc<Shared>) -> Vec<Push> {
    let pushes: Vec<Push> = cfg
        .outputs
        .iter()
        .map(|o| Push::start(cfg, o, shared.hub.clone()))
        .collect();
    *shared.pushes.lock().unwrap() = pushes.iter().map(|p| p.stats.clone()).collect();
    pushes
}

/// What every encoder is given: the camera's stream, and whether it is live
/// (the encoders' watchdogs expect output only then).
#[derive(Clone)]
struct EncoderInput {
    feed: Arc<Feed>,
    live: Arc<dyn Fn() -> bool + Send + Sync>,
}

impl EncoderInput {
    fn start(&self, cfg: &Config, rung: usize, generation: u64, hub: &Arc<Hub>) -> Encoder {
        Encoder::start(
            cfg,
            rung,
            generation,
            self.feed.clone(),
            hub.clone(),
            self.live.clone(),
        )
    }
}

/// Starts the encoder for `rung` as the hub's pending track: make-before-break.
fn start_switch(
    cfg: &Config,
    rung: usize,
    next_generation: &mut u64,
    hub: &Arc<Hub>,
    input: &EncoderInput,
    shared: &Shared,
) -> (Encoder, Instant) {
    let generation = *next_generation;
    *next_generation += 1;
    hub.add_track(generation);
    let enc = input.start(cfg, rung, generation, hub);
    shared.encoders.lock().unwrap().pending = Some(EncoderSlot::of(&enc));
    (enc, Instant::now())
}

/// Options that only the `demo` command sets.
#[derive(Debug, Clone, Default)]
pub struct RunOptions {
    pub demo: Option<DemoSource>,
    /// Files to re-read on SIGHUP.
    pub sources: Sources,
}

/// Descriptors the daemon needs besides its HTTP connections: sockets,
/// ffmpeg pipes, probes, the log.
const SPARE_DESCRIPTORS: u64 = 128;

/// Raises the soft limit on open files to the hard one (systemd's
/// `LimitNOFILE=`), and says when it cannot cover `server.max_connections`.
fn raise_open_files_limit(connections: usize) {
    let mut lim = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit/setrlimit with a valid rlimit struct.
    unsafe {
        if libc::getrlimit(libc::RLIMIT_NOFILE, &mut lim) != 0 {
            return;
        }
        if lim.rlim_cur < lim.rlim_max {
            let raised = libc::rlimit {
                rlim_cur: lim.rlim_max,
                rlim_max: lim.rlim_max,
            };
            if libc::setrlimit(libc::RLIMIT_NOFILE, &raised) == 0 {
                lim = raised;
            }
        }
    }
    let needed = connections as u64 + SPARE_DESCRIPTORS;
    if lim.rlim_cur < needed {
        warn!(
            "open files are limited to {}: fewer than server.max_connections = {connections} needs ({needed}); raise LimitNOFILE= or lower max_connections",
            lim.rlim_cur
        );
    }
}

/// Runs until SIGTERM or SIGINT; returns the process exit code.
pub async fn run(config: Config, opts: RunOptions) -> i32 {
    let config = Arc::new(config);
    raise_open_files_limit(config.server.max_connections);
    let socket = match source::bind(config.source.url.addr).await {
        Ok(s) => Arc::new(s),
        Err(e) => {
            error!(
                "cannot listen for the camera on udp://{}: {e}",
                config.source.url.addr
            );
            return 1;
        }
    };
    let listener = match tokio::net::TcpListener::bind(config.server.listen).await {
        Ok(l) => l,
        Err(e) => {
            error!("cannot serve HTTP on {}: {e}", config.server.listen);
            return 1;
        }
    };
    // A viewer allowed to lag further than the default window needs the data kept for it.
    let keep_for = Duration::from_millis(config.server.viewer_max_lag_ms + 2000)
        .max(Limits::default().keep_for);
    let (hub, mut events) = Hub::new(Limits {
        keep_for,
        ..Limits::default()
    });
    let feed = Arc::new(Feed::default());
    let source_stats: SharedStats = Default::default();
    let stall_after = Duration::from_secs_f64(config.source.stall_timeout_s);
    let (timeline_tx, mut timeline) = watch::channel(0u64);
    // The demo's camera is the demo's own sender.
    let camera_address = config.camera.address().or(opts
        .demo
        .as_ref()
        .map(|_| demo::target(config.source.url.addr).ip()));
    tokio::spawn(source::receive(
        socket.clone(),
        feed.clone(),
        source_stats.clone(),
        Expect {
            camera: camera_address,
            stall_after,
        },
        timeline_tx,
    ));
    let input_tx = EncoderInput {
        feed,
        live: {
            let stats = source_stats.clone();
            Arc::new(move || stats.lock().unwrap().live(stall_after))
        },
    };

    let (stop_tx, stop_rx) = watch::channel(false);
    // The camera shares the source socket: a legacy GoPro streams back to its keep-alive's sender.
    let camera::CameraTask {
        status: camera_status,
        task: camera_task,
    } = camera::spawn(&config, socket, source_stats.clone(), stop_rx.clone());
    let mut demo_task = None;
    let demo_info = opts.demo.as_ref().map(|d| {
        let info: SharedInfo = Default::default();
        let spec = demo::spec(&config, d);
        demo_task = Some(tokio::spawn(supervise::supervise(
            spec,
            info.clone(),
            stop_rx.clone(),
            |_| {},
        )));
        info
    });

    let shared = Arc::new(Shared {
        config: Mutex::new(config.clone()),
        hub: hub.clone(),
        source: source_stats,
        camera: camera_status,
        encoders: Mutex::new(Encoders::default()),
        viewers: Mutex::new(BTreeMap::new()),
        next_viewer: AtomicU64::new(0),
        started: Instant::now(),
        demo_source: demo_info,
        controller: Mutex::new(Controller::new(
            config.adapt.params(),
            config.ladder().iter().map(|r| r.bitrate_kbps).collect(),
            config.start_rung(),
        )),
        counters: Default::default(),
        admission: Default::default(),
        camera_address,
        web: Default::default(),
        outputs: Mutex::new(Vec::new()),
        pushes: Mutex::new(Vec::new()),
        padding_kbps: AtomicU64::new(0),
    });
    let mut pushes = start_pushes(&config, &shared);
    let mut probes = start_probes(&config, &shared);

    let mut next_generation = 2u64;
    let first_generation = 1u64;
    let start_rung = config.start_rung();
    hub.add_track(first_generation);
    let mut active = input_tx.start(&config, start_rung, first_generation, &hub);
    shared.encoders.lock().unwrap().active = Some(EncoderSlot::of(&active));
    let mut pending: Option<(Encoder, Instant)> = None;
    let mut tick = tokio::time::interval(Duration::from_millis(config.adapt.sample_interval_ms));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);

    let http_task = tokio::spawn(http::serve(listener, shared.clone()));
    info!(
        "livestreamd {VERSION}: camera on udp://{}, viewers on http://{}/stream.ts, rung {start_rung}",
        config.source.url.addr, config.server.listen
    );

    let mut sigterm = signal(SignalKind::terminate()).expect("SIGTERM handler");
    let mut sigint = signal(SignalKind::interrupt()).expect("SIGINT handler");
    let mut sighup = signal(SignalKind::hangup()).expect("SIGHUP handler");

    // systemd: ready once HTTP listens and the first encoder is started; then
    // STATUS= and WATCHDOG=1 from a task that pings only while this loop ticks.
    let notifier = Arc::new(Notifier::from_env());
    notifier.ready(&shared.status_summary());
    let heartbeat = Arc::new(Mutex::new(Instant::now()));
    let mut heartbeat_tick = tokio::time::interval(HEARTBEAT);
    let notify_task = notifier.enabled().then(|| {
        tokio::spawn(notify_loop(
            notifier.clone(),
            shared.clone(),
            heartbeat.clone(),
        ))
    });

    loop {
        tokio::select! {
            _ = heartbeat_tick.tick() => { *heartbeat.lock().unwrap() = Instant::now(); }
            _ = sigterm.recv() => { info!("SIGTERM: stopping"); break; }
            _ = sigint.recv() => { info!("SIGINT: stopping"); break; }
            _ = sighup.recv() => {
                info!("SIGHUP: reloading the configuration");
                let old = shared.config();
                if let Some(new) = config_source::reload_config(&opts.sources, &old) {
                    let new = Arc::new(new);
                    shared.set_config(new.clone());
                    let reencode = old.encoder != new.encoder || old.ladder() != new.ladder();
                    if reencode || old.adapt != new.adapt {
                        // A new ladder or new thresholds: a fresh controller, keeping an operator's pin if it still fits.
                        let rung = active.rung.min(new.ladder().len() - 1);
                        let mut c = shared.controller.lock().unwrap();
                        let pin = c.status().pinned.filter(|p| *p < new.ladder().len());
                        *c = Controller::new(new.adapt.params(), new.ladder().iter().map(|r| r.bitrate_kbps).collect(), rung);
                        let _ = c.pin(pin);
                    }
                    if old.outputs != new.outputs {
                        for p in probes.drain(..) {
                            p.abort();
                        }
                        let mut c = shared.controller.lock().unwrap();
                        for i in 0..old.outputs.len() {
                            c.remove(output_controller_id(i));
                        }
                        drop(c);
                        probes = start_probes(&new, &shared);
                        for p in std::mem::replace(&mut pushes, start_pushes(&new, &shared)) {
                            tokio::spawn(p.stop());
                        }
                    }
                    if reencode {
                        // Re-encode with the new settings, make-before-break like any rung switch.
                        if let Some((p, _)) = pending.take() {
                            hub.cancel_pending(p.generation);
                            tokio::spawn(p.stop());
                        }
                        let rung = active.rung.min(new.ladder().len() - 1);
                        info!("new encoder settings: re-encoding rung {rung}");
                        shared.controller.lock().unwrap().begin_switch(rung);
                        pending = Some(start_switch(&new, rung, &mut next_generation, &hub, &input_tx, &shared));
                    }
                }
            }
            Ok(()) = timeline.changed() => {
                // The camera's timestamps jumped, or its video returned after a
                // stall: an encoder running -copyts cannot bridge that.
                active.restart(NEW_TIMELINE);
                if let Some((p, _)) = &pending {
                    p.restart(NEW_TIMELINE);
                }
            }
            Some(event) = events.recv() => match event {
                Event::Switched { from, to } => {
                    if let Some((new, _)) = pending.take().filter(|(p, _)| p.generation == to) {
                        info!("switched viewers from encoder #{from} (rung {}) to #{to} (rung {})", active.rung, new.rung);
                        shared.controller.lock().unwrap().switched(shared.clock());
                        let old = std::mem::replace(&mut active, new);
                        let mut e = shared.encoders.lock().unwrap();
                        e.active = Some(EncoderSlot::of(&active));
                        e.pending = None;
                        drop(e);
                        tokio::spawn(old.stop());
                    } else {
                        warn!("hub switched to unknown encoder #{to}");
                    }
                }
            },
            _ = tick.tick() => {
                let now = shared.clock();
                if let Some((_, since)) = &pending {
                    let timeout = shared.config().adapt.switch_timeout_s;
                    if since.elapsed().as_secs_f64() > timeout {
                        let (p, _) = pending.take().expect("pending");
                        let why = {
                            let i = p.info.lock().unwrap();
                            i.last_exit.clone().or(i.last_stderr.clone()).unwrap_or_else(|| "no keyframe in time".into())
                        };
                        warn!("rung {} encoder #{} gave no splice point within {timeout} s ({why}); staying on rung {}", p.rung, p.generation, active.rung);
                        hub.cancel_pending(p.generation);
                        shared.controller.lock().unwrap().switch_failed(now);
                        shared.encoders.lock().unwrap().pending = None;
                        tokio::spawn(p.stop());
                    }
                    continue;
                }
                let decision = {
                    let mut c = shared.controller.lock().unwrap();
                    let automatic = shared.config().adapt.mode == AdaptMode::Auto || c.status().pinned.is_some();
                    let d = if automatic { c.tick(now) } else { None };
                    let padding = c.padding_kbps().unwrap_or(0.0);
                    shared.padding_kbps.store(padding.round() as u64, Ordering::Relaxed);
                    if let Some(d) = &d {
                        c.begin_switch(d.to);
                    }
                    d
                };
                if let Some(d) = decision {
                    info!("rung {} -> {}: {}", active.rung, d.to, d.reason);
                    pending = Some(start_switch(&shared.config(), d.to, &mut next_generation, &hub, &input_tx, &shared));
                }
            }
        }
    }

    notifier.stopping("stopping: ending ffmpeg");
    if let Some(t) = notify_task {
        t.abort();
    }
    let _ = stop_tx.send(true);
    http_task.abort();
    let mut stops = vec![active.stop()];
    if let Some((p, _)) = pending.take() {
        stops.push(p.stop());
    }
    for s in stops {
        s.await;
    }
    for p in pushes {
        p.stop().await;
    }
    if let Some(t) = demo_task {
        let _ = t.await;
    }
    // Bounded by the camera's request timeout: it tells the camera to stop streaming.
    let _ = camera_task.await;
    info!("stopped");
    0
}

/// How often the main loop proves it is alive.
const HEARTBEAT: Duration = Duration::from_millis(250);

/// Sends STATUS= when it changes (or with every ping), and WATCHDOG=1 at half of
/// `WatchdogSec=` while the main loop's heartbeat is fresh. A loop stuck in an
/// await stops the pings and systemd restarts the service; a blocked thread
/// stops this task too, with the same result.
async fn notify_loop(notifier: Arc<Notifier>, shared: Arc<Shared>, heartbeat: Arc<Mutex<Instant>>) {
    let watchdog = notifier.watchdog_period();
    let period = watchdog.map_or(STATUS_PERIOD, |w| w.min(STATUS_PERIOD));
    let mut every = tokio::time::interval(period);
    let mut last_status = String::new();
    let mut stale_reported = false;
    loop {
        every.tick().await;
        let status = shared.status_summary();
        let changed = status != last_status;
        let healthy = crate::notify::loop_healthy(heartbeat.lock().unwrap().elapsed(), HEARTBEAT);
        let mut msg = Vec::new();
        if watchdog.is_some() {
            if healthy {
                msg.push("WATCHDOG=1".to_string());
                stale_reported = false;
            } else if !stale_reported {
                warn!("main loop stalled: withholding the systemd watchdog ping");
                stale_reported = true;
            }
        }
        if changed || !msg.is_empty() {
            msg.push(crate::notify::status_line(&status));
            last_status = status;
        }
        if !msg.is_empty() {
            notifier.notify(&msg.join("\n"));
        }
    }
}

/// STATUS= is refreshed at least this often when there is no watchdog.
const STATUS_PERIOD: Duration = Duration::from_secs(5);
