//! The `[[output]]` pushes, each fed from the hub, and the probes that
//! measure the links of those that can be probed (their figures count like
//! a viewer's in the controller). Started together, stopped together, and
//! replaced together when a reload changes the outputs.

use crate::config::Config;
use crate::control::adapt::LinkId;
use crate::control::probe::{self, ProbeMode};
use crate::control::viewers::Viewers;
use crate::media::push::{redacted, Push, PushStats, Steering};
use crate::media::relay::Hub;
use crate::status::OutputStatus;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

/// What `/status` shows of one output.
struct View {
    /// As configured (secrets included), to mask them in ffmpeg's messages.
    url: String,
    shown: String,
    probe: &'static str,
    stats: Arc<PushStats>,
}

/// The outputs' figures, for the status reader; replaced on reload.
#[derive(Clone, Default)]
pub struct OutputViews(Arc<Mutex<Vec<View>>>);

impl OutputViews {
    pub fn status(&self, viewers: &Viewers) -> Vec<OutputStatus> {
        self.0
            .lock()
            .unwrap()
            .iter()
            .enumerate()
            .map(|(i, v)| {
                let mut push = v.stats.status();
                // ffmpeg names the URL in its errors: never show its secrets.
                if let Some(e) = &mut push.last_error {
                    *e = e.replace(&v.url, &v.shown);
                }
                let (rung, target_rung, adapt) = viewers.output_rung(i);
                OutputStatus {
                    url: v.shown.clone(),
                    probe: v.probe,
                    link: viewers.output_sample(i),
                    push,
                    rung,
                    target_rung,
                    adapt,
                }
            })
            .collect()
    }
}

/// The running pushes and probes.
pub struct Outputs {
    pushes: Vec<Push>,
    count: usize,
    /// Cancels this set's probes (and pushes); a child of the daemon's token.
    stop: CancellationToken,
}

impl Outputs {
    /// Starts a push for every `[[output]]` and a probe (on `tasks`) for every
    /// one whose host can be probed; publishes their figures in `views`.
    pub fn start(
        cfg: &Config,
        hub: &Arc<Hub>,
        viewers: &Arc<Viewers>,
        views: &OutputViews,
        tasks: &TaskTracker,
        parent: &CancellationToken,
    ) -> Outputs {
        let stop = parent.child_token();
        let mut shown = Vec::new();
        let mut pushes = Vec::new();
        for (i, o) in cfg.outputs.iter().enumerate() {
            viewers.join_output(i);
            let steering = Steering {
                want: {
                    let v = viewers.clone();
                    Arc::new(move || v.want(LinkId::Output(i)))
                },
                reached: {
                    let v = viewers.clone();
                    Arc::new(move |rung| v.reached(LinkId::Output(i), rung))
                },
            };
            let push = Push::start(cfg, o, hub.clone(), steering, stop.child_token());
            let target = o.probe_target();
            shown.push(View {
                url: o.url.0.clone(),
                shown: redacted(&o.url.0),
                probe: match target.map(|t| t.0) {
                    Some(ProbeMode::Udp) => "udp",
                    Some(_) => "icmp",
                    None => "none",
                },
                stats: push.stats.clone(),
            });
            pushes.push(push);
            let Some((mode, host)) = target else { continue };
            let (clock, report) = (viewers.clone(), viewers.clone());
            let probe = probe::run(
                format!("output {}", redacted(&o.url.0)),
                mode,
                host,
                o.probe_port,
                Duration::from_millis(o.probe_interval_ms),
                move || clock.now(),
                move |sample| report.output_link(i, sample),
            );
            let stop = stop.clone();
            tasks.spawn(async move {
                tokio::select! {
                    _ = stop.cancelled() => {}
                    _ = probe => {}
                }
            });
        }
        *views.0.lock().unwrap() = shown;
        Outputs {
            pushes,
            count: cfg.outputs.len(),
            stop,
        }
    }

    /// Stops the probes and the pushes (and their ffmpeg) and forgets the links.
    pub async fn stop(self, viewers: &Viewers) {
        self.stop.cancel();
        for i in 0..self.count {
            viewers.leave(LinkId::Output(i));
        }
        for p in self.pushes {
            p.stop().await;
        }
    }
}
