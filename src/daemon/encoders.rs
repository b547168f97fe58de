//! The encoder registry: the encoder viewers get (active) and, during a
//! switch, the one they are about to get (pending), each a hub track under
//! its own generation number. `/status` reads the encoders themselves here.

use crate::config::Config;
use crate::media::encoder::{Encoder, Inputs};
use crate::status::EncoderStatus;
use std::time::{Duration, Instant};
use tokio_util::sync::CancellationToken;

/// The running encoders.
pub struct Encoders {
    inputs: Inputs,
    /// Every encoder's stop token is a child of this one.
    stop: CancellationToken,
    active: Encoder,
    pending: Option<(Encoder, Instant)>,
    next_generation: u64,
}

impl Encoders {
    /// Starts the first encoder, on `rung`; it is active at once.
    pub fn start(cfg: &Config, rung: usize, inputs: Inputs, stop: CancellationToken) -> Encoders {
        inputs.hub.add_track(1);
        let active = Encoder::start(cfg, rung, 1, &inputs, stop.child_token());
        Encoders {
            inputs,
            stop,
            active,
            pending: None,
            next_generation: 2,
        }
    }

    /// The rung viewers get.
    pub fn active_rung(&self) -> usize {
        self.active.rung
    }

    pub fn switching(&self) -> bool {
        self.pending.is_some()
    }

    /// Starts `rung`'s encoder as the hub's pending track: make-before-break.
    /// A switch already under way is abandoned (and returned, to be stopped).
    pub fn switch_to(&mut self, cfg: &Config, rung: usize) -> Option<Encoder> {
        let abandoned = self.abandon();
        let generation = self.next_generation;
        self.next_generation += 1;
        self.inputs.hub.add_track(generation);
        let enc = Encoder::start(cfg, rung, generation, &self.inputs, self.stop.child_token());
        self.pending = Some((enc, Instant::now()));
        abandoned
    }

    /// The hub spliced to generation `to`: the pending encoder becomes the
    /// active one; the old one is returned, to be stopped. None when `to` is
    /// not the pending encoder.
    pub fn switched(&mut self, to: u64) -> Option<(usize, usize, Encoder)> {
        if self.pending.as_ref()?.0.generation != to {
            return None;
        }
        let (new, _) = self.pending.take()?;
        let from = self.active.rung;
        let old = std::mem::replace(&mut self.active, new);
        Some((from, self.active.rung, old))
    }

    /// The pending encoder, if it has had `within` to give a splice point and has not.
    pub fn overdue(&self, within: Duration) -> Option<&Encoder> {
        self.pending
            .as_ref()
            .filter(|(_, since)| since.elapsed() > within)
            .map(|(e, _)| e)
    }

    /// Gives up the switch under way; returns its encoder, to be stopped.
    pub fn abandon(&mut self) -> Option<Encoder> {
        let (p, _) = self.pending.take()?;
        self.inputs.hub.cancel_pending(p.generation);
        Some(p)
    }

    /// Restarts every encoder's ffmpeg at once (the camera's new timeline).
    pub fn restart_all(&self, reason: &'static str) {
        self.active.restart(reason);
        if let Some((p, _)) = &self.pending {
            p.restart(reason);
        }
    }

    pub fn status(&self) -> (EncoderStatus, Option<EncoderStatus>) {
        (
            status_of(&self.active),
            self.pending.as_ref().map(|(p, _)| status_of(p)),
        )
    }

    /// Stops every encoder (their tasks are on the daemon's tracker, which
    /// shutdown waits for).
    pub fn stop_all(&self) {
        self.stop.cancel();
    }
}

/// What `/status` shows of one encoder.
fn status_of(e: &Encoder) -> EncoderStatus {
    let r = &e.settings;
    let i = e.info.lock().unwrap();
    EncoderStatus {
        generation: e.generation,
        rung: e.rung,
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
    }
}
