//! The daemon's `Status`, gathered from the parts that own each figure (the
//! source, the camera, the encoder registry, the hub, the viewer registry, the
//! outputs, the HTTP counters), and its health. This is the `StatusSource`
//! the HTTP side is handed, and the line systemd shows.

use crate::camera::control::SharedCamera;
use crate::config::source::Current;
use crate::control::viewers::Viewers;
use crate::daemon::encoders::Encoders;
use crate::daemon::outputs::OutputViews;
use crate::http::admission::Admission;
use crate::http::events::Web;
use crate::http::StatusSource;
use crate::media::ladder::ladder_now;
use crate::media::relay::Hub;
use crate::media::source::SharedStats;
use crate::network::NetworkFile;
use crate::status::{Counters, EncoderStatus, Status};
use crate::supervise::SharedInfo;
use crate::VERSION;
use std::net::IpAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// Encoded output older than this is no output: `/healthz` says 503.
const HEALTHY_OUTPUT_AGE_MS: u64 = 5000;

/// Read-only handles on every part that has figures to show.
pub struct Report {
    pub started: Instant,
    pub config: Arc<Current>,
    /// The only sender the source admits, if any.
    pub camera_address: Option<IpAddr>,
    pub source: SharedStats,
    pub camera: SharedCamera,
    pub encoders: Arc<Mutex<Encoders>>,
    pub hub: Arc<Hub>,
    pub viewers: Arc<Viewers>,
    pub demo_source: Option<SharedInfo>,
    pub outputs: OutputViews,
    pub counters: Arc<Counters>,
    pub admission: Arc<Admission>,
    pub web: Arc<Web>,
    pub network: Arc<NetworkFile>,
}

impl StatusSource for Report {
    fn status(&self) -> Status {
        let cfg = self.config.get();
        let source = self.source.lock().unwrap().status(
            cfg.source.url.addr,
            self.camera_address,
            Duration::from_secs_f64(cfg.source.stall_timeout_s),
        );
        let ladder = ladder_now(cfg.ladder(), &source.picture);
        let readers = self.hub.readers();
        let (encoders, decoder) = {
            let mut e = self.encoders.lock().unwrap();
            (e.status(&readers, &ladder.figures), e.decoder_status())
        };
        let start = ladder.start(cfg.start_rung());
        let encoder = encoders
            .iter()
            .find(|e| e.rung == start)
            .or(encoders.first())
            .cloned();
        Status {
            version: VERSION,
            uptime_s: self.started.elapsed().as_secs_f64(),
            source,
            camera: self.camera.lock().unwrap().clone(),
            encoder,
            encoders,
            decoder,
            passthrough: ladder.passthrough,
            hub: self.hub.stats(),
            hls: self.hub.hls_stats(),
            adapt: self.viewers.adapt_status(),
            demo_source: self.demo_source.as_ref().map(|i| i.lock().unwrap().clone()),
            viewers: self.viewers.status(),
            outputs: self.outputs.status(&self.viewers),
            http: self.counters.snapshot(
                cfg.server.max_viewers,
                self.admission.stats(),
                self.web.open_streams(),
            ),
            network: self.network.read(),
            clock: crate::timekeep::status(),
        }
    }

    fn health(&self) -> (bool, String) {
        let s = self.status();
        // A passthrough rung has no process: the camera's stream is its output.
        let running = |e: &EncoderStatus| e.pid.is_some() || e.passthrough;
        match (&s.encoder, s.hub.last_input_age_ms) {
            (Some(e), Some(age)) if running(e) && age < HEALTHY_OUTPUT_AGE_MS => {
                (true, format!("ok: streaming rung {}", e.rung))
            }
            (Some(e), _) if !running(e) => (
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

impl Report {
    /// One line for systemd's `STATUS=`: source state, rung, viewers.
    pub fn summary(&self) -> String {
        let s = self.status();
        let encoder = match &s.encoder {
            Some(e) if e.pid.is_some() || e.passthrough => format!(
                "rung {} {}x{}@{} {} kb/s",
                e.rung, e.width, e.height, e.fps, e.bitrate_kbps
            ),
            Some(e) if e.restarts == 0 => format!("rung {} encoder starting", e.rung),
            Some(e) => format!("rung {} encoder restarting", e.rung),
            None => "no encoder".into(),
        };
        // The camera by its model once known, else by its API or configured kind.
        let camera = s
            .camera
            .model
            .as_deref()
            .or(s.camera.api)
            .unwrap_or(s.camera.kind);
        format!(
            "source {}, {encoder}, {} viewer(s), camera ({camera}) {}",
            s.source.state,
            s.viewers.len(),
            s.camera.state
        )
    }
}
