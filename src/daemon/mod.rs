//! The wiring on top: starts every part from a configuration, runs the loop
//! that reacts to signals, the hub, the camera's timelines and the
//! controller's ticks, applies a reload by the table in `reload`, and shuts
//! everything down with one cancellation token and a join of every task.

mod encoders;
mod outputs;
mod reload;
mod report;

use crate::camera::control::{self as camera, CameraTask};
use crate::camera::demo::{self, DemoSource};
use crate::clock::Clock;
use crate::config::source::{self as config_source, Current, Sources};
use crate::config::{AdaptMode, Config};
use crate::control::viewers::{standby, Viewers};
use crate::http::admission::Admission;
use crate::http::events::Web;
use crate::http::{server, Context};
use crate::media::encoder::{Inputs, NEW_TIMELINE};
use crate::media::ladder::{ladder_now, LadderNow};
use crate::media::passthrough::Passthrough;
use crate::media::picture::PictureStatus;
use crate::media::relay::{switch_hold, Hub, Limits};
use crate::media::source::{self, Expect, Feed, SharedStats};
use crate::network::NetworkFile;
use crate::notify::Notifier;
use crate::supervise::{self, SharedInfo};
use crate::VERSION;
use encoders::Encoders;
use log::{error, info, warn};
use outputs::{OutputViews, Outputs};
use reload::Apply;
use report::Report;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::signal::unix::{signal, SignalKind};
use tokio::sync::watch;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

/// Options that only the `demo` command sets.
#[derive(Debug, Clone, Default)]
pub struct RunOptions {
    pub demo: Option<DemoSource>,
    /// Files to re-read on SIGHUP.
    pub sources: Sources,
}

/// How often the main loop proves it is alive (systemd's watchdog).
const HEARTBEAT: Duration = Duration::from_millis(250);
/// STATUS= is refreshed at least this often when there is no watchdog.
const STATUS_PERIOD: Duration = Duration::from_secs(5);
/// Descriptors the daemon needs besides its HTTP connections: sockets,
/// ffmpeg pipes, probes, the log.
const SPARE_DESCRIPTORS: u64 = 128;
/// A rung whose HLS playlist or segments were asked for this recently is
/// watched (a player reloads its playlist about once a segment); after that
/// it is stopped like any other after `idle_rung_s`.
const HLS_WATCHED: Duration = Duration::from_secs(5);

/// Runs until SIGTERM or SIGINT; returns the process exit code.
pub async fn run(config: Config, opts: RunOptions) -> i32 {
    raise_open_files_limit(config.server.max_connections);
    let mut daemon = match Daemon::start(config, &opts).await {
        Ok(d) => d,
        Err(code) => return code,
    };
    daemon.serve(&opts.sources).await;
    daemon.shutdown().await;
    info!("stopped");
    0
}

/// Every running part.
struct Daemon {
    config: Arc<Current>,
    /// Cancelled once, on shutdown: every task and child ends.
    stop: CancellationToken,
    /// Every task, so that shutdown can wait for all of them.
    tasks: TaskTracker,
    hub: Arc<Hub>,
    /// Feeds the passthrough rung from the source.
    passthrough: Arc<Passthrough>,
    encoders: Arc<Mutex<Encoders>>,
    viewers: Arc<Viewers>,
    outputs: Option<Outputs>,
    output_views: OutputViews,
    web: Arc<Web>,
    report: Arc<Report>,
    /// Counts the camera's timelines: each new one restarts the encoders.
    timeline: watch::Receiver<u64>,
    /// The ladder as last applied to the encoders and controllers.
    ladder: LadderNow,
    camera_task: JoinHandle<()>,
    notifier: Arc<Notifier>,
    heartbeat: Arc<Mutex<Instant>>,
}

impl Daemon {
    /// Binds the sockets (failing with exit code 1 and the OS's reason) and
    /// starts the source, camera, encoders, outputs, HTTP server and systemd
    /// notifications.
    async fn start(config: Config, opts: &RunOptions) -> Result<Daemon, i32> {
        let config = Arc::new(config);
        let socket = source::bind(config.source.url.addr).await.map_err(|e| {
            error!(
                "cannot listen for the camera on udp://{}: {e}",
                config.source.url.addr
            );
            1
        })?;
        let socket = Arc::new(socket);
        let listener = tokio::net::TcpListener::bind(config.server.listen)
            .await
            .map_err(|e| {
                error!("cannot serve HTTP on {}: {e}", config.server.listen);
                1
            })?;
        let stop = CancellationToken::new();
        let tasks = TaskTracker::new();
        let current = Arc::new(Current::new(config.clone()));

        // A viewer allowed to lag further than the default window needs the data kept for it.
        let keep_for = Duration::from_millis(config.server.viewer_max_lag_ms + 2000)
            .max(Limits::default().keep_for);
        let hub = Hub::new(Limits {
            keep_for,
            max_hold: switch_hold(config.longest_keyframe_interval_s()),
            ..Limits::default()
        });

        // The source: only the camera's datagrams, fanned out to the encoders.
        let feed = Arc::new(Feed::default());
        let passthrough = Passthrough::new(hub.clone());
        let source_stats: SharedStats = Default::default();
        let stall_after = Duration::from_secs_f64(config.source.stall_timeout_s);
        let (timeline_tx, timeline) = watch::channel(0u64);
        // The camera `auto` finds: the source admits it alone.
        let (found_tx, found_rx) = watch::channel(None);
        // The demo's camera is the demo's own sender.
        let camera_address = config.camera.address().or(opts
            .demo
            .as_ref()
            .map(|_| demo::target(config.source.url.addr).ip()));
        let receive = source::receive(
            socket.clone(),
            feed.clone(),
            passthrough.clone(),
            source_stats.clone(),
            Expect {
                camera: camera_address,
                stall_after,
            },
            timeline_tx,
            found_rx,
        );
        tasks.spawn(until(stop.clone(), receive));

        // The camera shares the source socket: a legacy GoPro streams back to its keep-alive's sender.
        let CameraTask {
            status: camera_status,
            task: camera_task,
        } = camera::spawn(
            &camera::for_demo(&config, opts.demo.is_some()),
            socket,
            source_stats.clone(),
            found_tx,
            stop.clone(),
        );
        let demo_source = opts.demo.as_ref().map(|d| {
            let info: SharedInfo = Default::default();
            let spec = demo::spec(&config, d);
            tasks.spawn(supervise::supervise(
                spec,
                info.clone(),
                stop.clone(),
                |_| {},
            ));
            info
        });

        // Every rung offered until the camera's codec is known.
        let ladder = ladder_now(config.ladder(), &PictureStatus::default());
        let viewers = Arc::new(Viewers::new(
            Clock::default(),
            config.adapt.clone(),
            ladder.bitrates.clone(),
            config.start_rung(),
        ));
        let inputs = Inputs {
            feed,
            live: {
                let stats = source_stats.clone();
                Arc::new(move || stats.lock().unwrap().live(stall_after))
            },
            timeline: timeline.clone(),
            hub: hub.clone(),
            passthrough: passthrough.clone(),
            tasks: tasks.clone(),
        };
        let encoders = Arc::new(Mutex::new(Encoders::start(
            &config,
            config.start_rung(),
            inputs,
            stop.child_token(),
        )));
        let output_views = OutputViews::default();
        let outputs = Outputs::start(&config, &hub, &viewers, &output_views, &tasks, &stop);

        let web = Arc::new(Web::new(config.server.max_viewers));
        let counters = Arc::new(Default::default());
        let admission = Arc::new(Admission::default());
        let network = Arc::new(NetworkFile::from_env());
        let report = Arc::new(Report {
            started: Instant::now(),
            config: current.clone(),
            camera_address,
            source: source_stats,
            camera: camera_status,
            encoders: encoders.clone(),
            hub: hub.clone(),
            viewers: viewers.clone(),
            demo_source,
            outputs: output_views.clone(),
            counters: Arc::clone(&counters),
            admission: admission.clone(),
            web: web.clone(),
            network: network.clone(),
        });
        let ctx = Arc::new(Context {
            config: current.clone(),
            hub: hub.clone(),
            viewers: viewers.clone(),
            status: report.clone(),
            counters,
            admission,
            web: web.clone(),
            network,
        });
        tasks.spawn(server::serve(listener, ctx, stop.clone(), tasks.clone()));
        info!(
            "livestreamd {VERSION}: camera on udp://{}, viewers on http://{}/stream.ts, rung {}",
            config.source.url.addr,
            config.server.listen,
            config.start_rung()
        );

        // systemd: ready once HTTP listens and the first encoder is started; then
        // STATUS= and WATCHDOG=1 from a task that pings only while the loop ticks.
        let notifier = Arc::new(Notifier::from_env());
        notifier.ready(&report.summary());
        let heartbeat = Arc::new(Mutex::new(Instant::now()));
        if notifier.enabled() {
            let (n, r, h) = (notifier.clone(), report.clone(), heartbeat.clone());
            tasks.spawn(until(stop.clone(), notify_loop(n, r, h)));
        }
        Ok(Daemon {
            config: current,
            stop,
            tasks,
            hub,
            passthrough,
            encoders,
            viewers,
            outputs: Some(outputs),
            output_views,
            web,
            report,
            timeline,
            ladder,
            camera_task,
            notifier,
            heartbeat,
        })
    }

    /// The main loop, until SIGTERM or SIGINT.
    async fn serve(&mut self, sources: &Sources) {
        let mut sigterm = signal(SignalKind::terminate()).expect("SIGTERM handler");
        let mut sigint = signal(SignalKind::interrupt()).expect("SIGINT handler");
        let mut sighup = signal(SignalKind::hangup()).expect("SIGHUP handler");
        let every = Duration::from_millis(self.config.get().adapt.sample_interval_ms);
        let mut tick = tokio::time::interval(every);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let mut heartbeat_tick = tokio::time::interval(HEARTBEAT);
        let viewers = self.viewers.clone();
        let trouble = &viewers.trouble;
        loop {
            tokio::select! {
                _ = heartbeat_tick.tick() => { *self.heartbeat.lock().unwrap() = Instant::now(); }
                _ = sigterm.recv() => { info!("SIGTERM: stopping"); return; }
                _ = sigint.recv() => { info!("SIGINT: stopping"); return; }
                _ = sighup.recv() => {
                    info!("SIGHUP: reloading the configuration");
                    let old = self.config.get();
                    if let Some(new) = config_source::reload_config(sources, &old) {
                        crate::log_ring::remember_secrets(&new);
                        self.reload(&old, Arc::new(new)).await;
                    }
                }
                Ok(()) = self.timeline.changed() => {
                    // The camera's timestamps jumped, or its video returned after a
                    // stall: an encoder running -copyts cannot bridge that.
                    self.encoders.lock().unwrap().restart_all(NEW_TIMELINE);
                }
                _ = tick.tick() => self.tick(),
                // A link in trouble: its step down may be due now.
                _ = trouble.notified() => self.tick(),
            }
        }
    }

    /// The controllers' tick: each link's wanted rung, the encoders those
    /// need (within `max_encoders`), and the rungs nobody uses any more stopped.
    fn tick(&mut self) {
        let cfg = self.config.get();
        self.follow_the_camera(&cfg);
        let a = &cfg.adapt;
        let timeout = Duration::from_secs_f64(a.switch_timeout_s);
        let mut wanted = self.viewers.tick(a.mode == AdaptMode::Auto, timeout);
        if !a.policy.shared() {
            wanted.extend(standby(a.standby_rung, &self.viewers.rungs_in_use()));
        }
        // One rung for everyone: the current one and the one being moved to.
        let (max, idle) = if a.policy.shared() {
            (2, Duration::ZERO)
        } else {
            (a.max_encoders, Duration::from_secs_f64(a.idle_rung_s))
        };
        let mut encoders = self.encoders.lock().unwrap();
        for &rung in &wanted {
            let got = encoders.admit(&cfg, rung, max);
            if got != rung {
                self.viewers.redirect(rung, got);
            }
        }
        // HLS: `/hls/live/` follows the rung everyone is given (the pin, the
        // shared policy's rung, else the start rung), started for its readers
        // within `max_encoders` like any wanted rung; the rungs HLS clients
        // read are kept. No HLS request starts any other encoder.
        let shared = self.viewers.shared_rung();
        let start = self.ladder.start(cfg.start_rung());
        let follow = (self.viewers.adapt_status().pinned)
            .or(shared)
            .unwrap_or(start)
            .max(self.ladder.top);
        self.hub.hls_follow(follow);
        let (hls_rungs, hls_live) = self.hub.hls_watched(HLS_WATCHED);
        if hls_live {
            encoders.admit(&cfg, follow, max);
        }
        let keep = shared.unwrap_or(start).max(self.ladder.top);
        let mut in_use = self.viewers.rungs_in_use();
        in_use.extend(wanted);
        if hls_live {
            in_use.insert(follow);
        }
        if !a.policy.shared() {
            in_use.extend(hls_rungs);
        }
        in_use.extend(
            self.hub
                .readers()
                .into_iter()
                .filter_map(|(rung, n)| (n > 0).then_some(rung)),
        );
        let stopped = encoders.reap(&cfg, &in_use, keep, idle);
        for e in stopped.encoders {
            self.tasks.spawn(e.stop());
        }
        for d in stopped.decoders {
            self.tasks.spawn(d.stop());
        }
    }

    /// The ladder for what the camera sends now (the passthrough rung offered
    /// only for H.264, its figures measured): applied to the controllers and
    /// the encoders when it changed.
    fn follow_the_camera(&mut self, cfg: &Config) {
        let picture = self.report.source.lock().unwrap().picture.clone();
        let now = ladder_now(cfg.ladder(), &picture);
        let offered = now.passthrough.as_ref().is_some_and(|p| p.offered);
        self.passthrough.set_offered(offered);
        if now.top != self.ladder.top {
            match &now.passthrough {
                Some(p) if !p.offered => warn!("passthrough rung not offered: {}", p.reason),
                Some(p) => info!("passthrough rung offered: {}", p.reason),
                None => {}
            }
        }
        // A measured bitrate wanders a little from second to second: the
        // controllers are told when it moved by more than 5 %.
        let moved = |a: u32, b: u32| a.abs_diff(b) * 20 > a.max(b);
        let bitrates_moved = now.bitrates.len() != self.ladder.bitrates.len()
            || now
                .bitrates
                .iter()
                .zip(&self.ladder.bitrates)
                .any(|(a, b)| moved(*a, *b));
        if now.top != self.ladder.top {
            for stopped in self.encoders.lock().unwrap().set_top(cfg, now.top) {
                self.tasks.spawn(stopped.stop());
            }
        }
        if bitrates_moved || now.top != self.ladder.top {
            self.viewers.set_ladder(now.bitrates.clone(), now.top);
            self.ladder = now;
        }
    }

    /// Applies a new configuration, component by component (see `reload`).
    async fn reload(&mut self, old: &Config, new: Arc<Config>) {
        self.config.set(new.clone());
        let changes = reload::changes(old, &new);
        let later: Vec<&str> = changes
            .iter()
            .filter_map(|c| match c {
                Apply::NeedsRestart(key) => Some(*key),
                _ => None,
            })
            .collect();
        if !later.is_empty() {
            warn!(
                "reload: {} changed; this takes effect after a restart (systemctl restart livestreamd)",
                later.join(", ")
            );
        }
        if changes.contains(&Apply::NewController) {
            // New thresholds or a new ladder: fresh controllers, keeping each
            // link's rung (within the ladder) and an operator's pin if it still fits.
            let picture = self.report.source.lock().unwrap().picture.clone();
            let ladder = ladder_now(new.ladder(), &picture);
            self.viewers
                .reconfigure(new.adapt.clone(), ladder.bitrates.clone(), new.start_rung());
            self.viewers.set_ladder(ladder.bitrates.clone(), ladder.top);
            for stopped in self.encoders.lock().unwrap().set_top(&new, ladder.top) {
                self.tasks.spawn(stopped.stop());
            }
            self.ladder = ladder;
        }
        if changes.contains(&Apply::RestartOutputs) {
            if let Some(o) = self.outputs.take() {
                o.stop(&self.viewers).await;
            }
            self.outputs = Some(Outputs::start(
                &new,
                &self.hub,
                &self.viewers,
                &self.output_views,
                &self.tasks,
                &self.stop,
            ));
        }
        if changes.contains(&Apply::ResizeEvents) {
            self.web.resize(new.server.max_viewers);
        }
        if changes.contains(&Apply::Reencode) {
            // New encoders for every running rung; readers move over at their
            // first keyframe, make-before-break.
            info!("new encoder settings: re-encoding the running rungs");
            self.hub
                .set_max_hold(switch_hold(new.longest_keyframe_interval_s()));
            self.encoders.lock().unwrap().reencode(&new);
        }
    }

    /// Stops everything and waits for every task; the camera is told to stop.
    async fn shutdown(mut self) {
        self.notifier.stopping("stopping: ending ffmpeg");
        self.stop.cancel();
        self.encoders.lock().unwrap().stop_all();
        if let Some(o) = self.outputs.take() {
            o.stop(&self.viewers).await;
        }
        self.tasks.close();
        self.tasks.wait().await;
        // Bounded by the camera's request timeout: it tells the camera to stop streaming.
        let _ = self.camera_task.await;
        drop(self.report);
    }
}

/// Runs `work` until `stop` is cancelled.
async fn until(stop: CancellationToken, work: impl std::future::Future<Output = ()>) {
    tokio::select! {
        _ = stop.cancelled() => {}
        _ = work => {}
    }
}

/// Sends STATUS= when it changes (or with every ping), and WATCHDOG=1 at half of
/// `WatchdogSec=` while the main loop's heartbeat is fresh. A loop stuck in an
/// await stops the pings and systemd restarts the service; a blocked thread
/// stops this task too, with the same result.
async fn notify_loop(notifier: Arc<Notifier>, report: Arc<Report>, heartbeat: Arc<Mutex<Instant>>) {
    let watchdog = notifier.watchdog_period();
    let period = watchdog.map_or(STATUS_PERIOD, |w| w.min(STATUS_PERIOD));
    let mut every = tokio::time::interval(period);
    let mut last_status = String::new();
    let mut stale_reported = false;
    loop {
        every.tick().await;
        let status = report.summary();
        let healthy = crate::notify::loop_healthy(heartbeat.lock().unwrap().elapsed(), HEARTBEAT);
        let ping = watchdog.is_some() && healthy;
        if watchdog.is_some() && !healthy && !stale_reported {
            warn!("main loop stalled: withholding the systemd watchdog ping");
        }
        stale_reported = watchdog.is_some() && !healthy;
        let changed = status != last_status;
        notifier.heartbeat(ping, (changed || ping).then_some(status.as_str()));
        last_status = status;
    }
}

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
    // rlim_t is u32 on 32-bit glibc (armv7), u64 elsewhere.
    #[allow(clippy::useless_conversion)]
    let current = u64::from(lim.rlim_cur);
    if current < needed {
        warn!(
            "open files are limited to {}: fewer than server.max_connections = {connections} needs ({needed}); raise LimitNOFILE= or lower max_connections",
            lim.rlim_cur
        );
    }
}
