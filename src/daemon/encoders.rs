//! The encoder registry: which rungs are encoded now (the hot ladder), one
//! supervised encoder each, as a hub track under its own generation number.
//! A rung is started when a viewer or push wants it, kept while anyone reads
//! or wants it, and stopped once nobody has for a while; the start rung always
//! runs, so a new viewer has a picture at once. `max_encoders` bounds the set.
//! `/status` reads the encoders themselves here.

use crate::config::{Config, Figures};
use crate::media::encoder::{Encoder, Inputs};
use crate::status::EncoderStatus;
use crate::supervise::cpu_seconds;
use std::collections::{BTreeMap, BTreeSet};
use std::time::{Duration, Instant};
use tokio_util::sync::CancellationToken;

/// How long a replaced encoder (new settings on reload) may keep readers that
/// have not moved on before it is stopped anyway.
const RETIRE_WITHIN: Duration = Duration::from_secs(10);

/// CPU use of a process, from successive readings.
#[derive(Default)]
struct CpuMeter {
    last: Option<(u32, Instant, f64)>,
    pct: Option<f64>,
}

impl CpuMeter {
    fn sample(&mut self, pid: Option<u32>) -> Option<f64> {
        let Some(pid) = pid else {
            self.last = None;
            return None;
        };
        let now = Instant::now();
        let Some(cpu) = cpu_seconds(pid) else {
            return self.pct;
        };
        if let Some((p, t, c)) = self.last {
            let dt = now.duration_since(t).as_secs_f64();
            if p == pid && dt >= 0.5 {
                self.pct = Some(100.0 * (cpu - c).max(0.0) / dt);
                self.last = Some((pid, now, cpu));
            }
        } else {
            self.last = Some((pid, now, cpu));
        }
        self.pct
    }
}

struct Running {
    encoder: Encoder,
    /// Since when nobody reads or wants it.
    idle_since: Option<Instant>,
    cpu: CpuMeter,
}

/// The running encoders.
pub struct Encoders {
    inputs: Inputs,
    /// Every encoder's stop token is a child of this one.
    stop: CancellationToken,
    running: BTreeMap<usize, Running>,
    /// Encoders replaced by a new generation of their rung (reload), until
    /// their readers have moved on.
    retiring: Vec<(Encoder, Instant)>,
    next_generation: u64,
    /// The best rung offered now (1 while the passthrough rung is not: an
    /// HEVC camera); nothing above it is started.
    top: usize,
}

impl Encoders {
    /// Starts the registry with `rung` running (every rung offered: the
    /// camera's codec is not known yet).
    pub fn start(cfg: &Config, rung: usize, inputs: Inputs, stop: CancellationToken) -> Encoders {
        let mut e = Encoders {
            inputs,
            stop,
            running: BTreeMap::new(),
            retiring: Vec::new(),
            next_generation: 1,
            top: 0,
        };
        e.spawn(cfg, rung);
        e
    }

    /// The best rung offered is now `top`: the rungs above it are stopped
    /// (returned, their tracks gone from the hub, so their readers move), and
    /// the start rung as offered now runs.
    pub fn set_top(&mut self, cfg: &Config, top: usize) -> Vec<Encoder> {
        self.top = top;
        let above: Vec<usize> = self.running.range(..top).map(|(r, _)| *r).collect();
        let mut stopped = Vec::new();
        for rung in above {
            if let Some(r) = self.running.remove(&rung) {
                log::info!("rung {rung}: no longer offered; stopping it");
                self.inputs.hub.remove_track(r.encoder.generation);
                stopped.push(r.encoder);
            }
        }
        let start = cfg.start_rung().max(top);
        if !self.running.contains_key(&start) {
            self.spawn(cfg, start);
        }
        stopped
    }

    fn spawn(&mut self, cfg: &Config, rung: usize) {
        let generation = self.next_generation;
        self.next_generation += 1;
        self.inputs.hub.add_track(rung, generation);
        let encoder = Encoder::start(cfg, rung, generation, &self.inputs, self.stop.child_token());
        self.running.insert(
            rung,
            Running {
                encoder,
                idle_since: None,
                cpu: CpuMeter::default(),
            },
        );
    }

    /// The rung a link that wants `rung` gets: that one (started if needed),
    /// or, with `max` encoders already running, the nearest lower running rung
    /// (else the nearest running one).
    pub fn admit(&mut self, cfg: &Config, rung: usize, max: usize) -> usize {
        let rung = rung.max(self.top);
        if self.running.contains_key(&rung) {
            return rung;
        }
        if self.running.len() < max {
            log::info!("rung {rung}: starting its encoder (wanted)");
            self.spawn(cfg, rung);
            return rung;
        }
        let lower = self.running.range(rung..).next().map(|(r, _)| *r);
        let nearest = self
            .running
            .keys()
            .min_by_key(|r| r.abs_diff(rung))
            .copied();
        lower.or(nearest).unwrap_or(rung)
    }

    /// Stops the rungs nobody reads or wants (`in_use`) for `idle_for`, except
    /// `keep`, and replaced encoders once unread; returns them, to be stopped,
    /// their tracks already gone from the hub.
    pub fn reap(
        &mut self,
        in_use: &BTreeSet<usize>,
        keep: usize,
        idle_for: Duration,
    ) -> Vec<Encoder> {
        let now = Instant::now();
        let mut stopped = Vec::new();
        let idle: Vec<usize> = self
            .running
            .iter_mut()
            .filter_map(|(rung, r)| {
                if *rung == keep || in_use.contains(rung) {
                    r.idle_since = None;
                    return None;
                }
                let since = *r.idle_since.get_or_insert(now);
                (now.duration_since(since) >= idle_for).then_some(*rung)
            })
            .collect();
        for rung in idle {
            if let Some(r) = self.running.remove(&rung) {
                log::info!("rung {rung}: nobody watches it; stopping its encoder");
                self.inputs.hub.remove_track(r.encoder.generation);
                stopped.push(r.encoder);
            }
        }
        let hub = &self.inputs.hub;
        let (done, keep): (Vec<_>, Vec<_>) = self.retiring.drain(..).partition(|(e, since)| {
            hub.track_readers(e.generation) == 0 || since.elapsed() > RETIRE_WITHIN
        });
        self.retiring = keep;
        for (e, _) in done {
            hub.remove_track(e.generation);
            stopped.push(e);
        }
        stopped
    }

    /// New settings: every running rung (within the new ladder) gets a new
    /// encoder, make-before-break; its readers move over at its first
    /// keyframe. Rungs beyond the new ladder are retired.
    pub fn reencode(&mut self, cfg: &Config) {
        let old = std::mem::take(&mut self.running);
        let now = Instant::now();
        for (rung, r) in old {
            if rung < cfg.ladder().len() && rung >= self.top {
                self.spawn(cfg, rung);
            }
            self.retiring.push((r.encoder, now));
        }
        if self.running.is_empty() {
            self.spawn(cfg, cfg.start_rung().max(self.top));
        }
    }

    /// Restarts every encoder's ffmpeg at once (the camera's new timeline).
    pub fn restart_all(&self, reason: &'static str) {
        for r in self.running.values() {
            r.encoder.restart(reason);
        }
    }

    /// The running encoders, with their readers (`readers` per rung), CPU
    /// use and figures (`figures` per rung: a passthrough rung's as measured).
    pub fn status(
        &mut self,
        readers: &BTreeMap<usize, usize>,
        figures: &[Figures],
    ) -> Vec<EncoderStatus> {
        self.running
            .iter_mut()
            .map(|(rung, r)| {
                let pid = r.encoder.info.lock().unwrap().pid;
                let cpu = r.cpu.sample(pid);
                let f = figures
                    .get(*rung)
                    .copied()
                    .unwrap_or(r.encoder.settings.stated());
                let mut s = status_of(&r.encoder, f);
                s.viewers = readers.get(rung).copied().unwrap_or(0);
                s.cpu_pct = cpu;
                s
            })
            .collect()
    }

    /// Stops every encoder (their tasks are on the daemon's tracker, which
    /// shutdown waits for).
    pub fn stop_all(&self) {
        self.stop.cancel();
    }
}

/// What `/status` shows of one encoder, whose rung has figures `f`.
fn status_of(e: &Encoder, f: Figures) -> EncoderStatus {
    let i = e.info.lock().unwrap();
    EncoderStatus {
        generation: e.generation,
        rung: e.rung,
        passthrough: e.settings.passthrough,
        width: f.width,
        height: f.height,
        fps: f.fps,
        bitrate_kbps: f.bitrate_kbps,
        pid: i.pid,
        restarts: i.restarts,
        uptime_s: i.uptime().map(|d| d.as_secs_f64()),
        last_exit: i.last_exit.clone(),
        last_stderr: i.last_stderr.clone(),
        restarts_by_reason: i.restarts_by_reason.clone(),
        stderr_suppressed: i.stderr_suppressed,
        viewers: 0,
        cpu_pct: None,
        first_frame_s: i.first_output_s,
    }
}
