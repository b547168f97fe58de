//! The encoder registry: which rungs are encoded now (the hot ladder), one
//! supervised encoder each, as a hub track under its own generation number.
//! A rung is started when a viewer or push wants it, kept while anyone reads
//! or wants it, and stopped once nobody has for a while; the start rung always
//! runs, so a new viewer has a picture at once. `max_encoders` bounds the set.
//! `/status` reads the encoders themselves here.
//!
//! While two or more encoded rungs run, they read one shared decoder's frames
//! (`media::decoder`) instead of each decoding the camera: the decoder is
//! started with the second encoded rung, and the rung that was decoding for
//! itself is handed over to a new encoder reading frames, make-before-break
//! (its readers move at the new one's first keyframe, as on a reload). Back
//! to one encoded rung, it is handed back to an encoder of the camera and
//! the decoder stops once no encoder reads it.

use crate::config::{Config, Figures};
use crate::media::decoder::{self, Decoder};
use crate::media::encoder::{Encoder, Input, Inputs};
use crate::media::frames::Frames;
use crate::status::{DecoderStatus, EncoderStatus};
use crate::supervise::cpu_seconds;
use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio_util::sync::CancellationToken;

/// How long a replaced encoder (new settings on reload) may keep readers that
/// have not moved on before it is stopped anyway.
const RETIRE_WITHIN: Duration = Duration::from_secs(10);
/// How long the output of a replaced encoder that nobody reads any more stays
/// in the hub after it stopped: HLS players may still be fetching the
/// segments listed from it (the hub lists 6 s of them).
const LINGER: Duration = Duration::from_secs(8);

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
    /// Encoders replaced by a new generation of their rung (reload, or a
    /// hand-over between decoding and reading frames), until their readers
    /// have moved on.
    retiring: Vec<(Encoder, Instant)>,
    /// Hub tracks of replaced encoders that stopped unread, until `LINGER`.
    lingering: Vec<(u64, Instant)>,
    next_generation: u64,
    /// The shared decoder, while encoders read it.
    decoder: Option<Decoder>,
    /// Decoders of an older ladder, until their encoders are gone.
    old_decoders: Vec<Decoder>,
    decoder_cpu: CpuMeter,
    next_decoder: u64,
    /// The shared decoder was given up on (it never gave a frame, e.g. an
    /// ffmpeg without the NUT muxer): encoders decode the camera themselves
    /// until the configuration changes.
    decoder_failed: bool,
    /// The best rung offered now (1 while the passthrough rung is not: an
    /// HEVC camera); nothing above it is started.
    top: usize,
}

/// Runs of a decoder ended without a single frame after which it is given up on.
const DECODER_TRIES: u64 = 3;

/// Whether encoded rungs read one shared decoder's frames, with `encoded` of
/// them running: from two on, when the configuration allows it and the
/// ladder's largest encoded rung is small enough to hold frames of.
pub fn decode_once(cfg: &Config, encoded: usize) -> bool {
    cfg.encoder.shared_decoder && encoded >= 2 && decoder::picture(cfg).is_some()
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
            lingering: Vec::new(),
            next_generation: 1,
            decoder: None,
            old_decoders: Vec::new(),
            decoder_cpu: CpuMeter::default(),
            next_decoder: 1,
            decoder_failed: false,
            top: 0,
        };
        e.spawn(cfg, rung, Input::Camera);
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
            let encoded = self.encoded() + usize::from(!cfg.ladder()[start].passthrough);
            let input = self.input_for(cfg, start, encoded);
            self.spawn(cfg, start, input);
        }
        self.settle(cfg);
        stopped
    }

    fn decode_once(&self, cfg: &Config, encoded: usize) -> bool {
        !self.decoder_failed && decode_once(cfg, encoded)
    }

    /// Gives the shared decoder up when it has started `DECODER_TRIES` times
    /// without giving a frame; its encoders are handed over to encoders of
    /// the camera.
    fn give_up_a_failing_decoder(&mut self, cfg: &Config) {
        let Some(d) = &self.decoder else { return };
        let (restarts, last) = {
            let i = d.info.lock().unwrap();
            (i.restarts, i.last_stderr.clone().or(i.last_exit.clone()))
        };
        if restarts < DECODER_TRIES || d.frames.counts().frames > 0 {
            return;
        }
        log::warn!(
            "the shared decoder gave no frame in {DECODER_TRIES} starts ({}); each encoder decodes the camera itself from now on",
            last.unwrap_or_default()
        );
        self.decoder_failed = true;
        self.settle(cfg);
    }

    /// Encoded rungs running (the passthrough rung is not encoded).
    fn encoded(&self) -> usize {
        self.running
            .values()
            .filter(|r| !r.encoder.settings.passthrough)
            .count()
    }

    /// The input a new encoder of `rung` gets with `encoded` encoded rungs
    /// running (itself included); starts the decoder if that input needs it.
    fn input_for(&mut self, cfg: &Config, rung: usize, encoded: usize) -> Input {
        if cfg.ladder()[rung].passthrough || !self.decode_once(cfg, encoded) {
            return Input::Camera;
        }
        let size = decoder::picture(cfg).expect("decode_once checked it");
        if self.decoder.as_ref().is_some_and(|d| d.size != size) {
            // A new ladder: the old decoder serves its encoders until they stop.
            self.old_decoders.extend(self.decoder.take());
        }
        let decoder = self.decoder.get_or_insert_with(|| {
            let id = self.next_decoder;
            self.next_decoder += 1;
            log::info!(
                "{} encoded rungs: decoding the camera once for them",
                encoded
            );
            Decoder::start(cfg, size, id, &self.inputs, self.stop.child_token())
        });
        Input::Decoded(decoder.frames.clone())
    }

    /// Hands every running encoded rung whose input is not the one `encoded`
    /// rungs call for over to a new encoder with that input, make-before-break.
    fn settle(&mut self, cfg: &Config) {
        let encoded = self.encoded();
        let want_frames = self.decode_once(cfg, encoded);
        let current = self.decoder.as_ref().map(|d| d.frames.clone());
        let stale: Vec<usize> = self
            .running
            .iter()
            .filter(|(_, r)| !r.encoder.settings.passthrough)
            .filter(|(_, r)| match &r.encoder.input {
                Input::Camera => want_frames,
                Input::Decoded(f) => {
                    !want_frames || !current.as_ref().is_some_and(|c| Arc::ptr_eq(c, f))
                }
            })
            .map(|(rung, _)| *rung)
            .collect();
        for rung in stale {
            let Some(old) = self.running.remove(&rung) else {
                continue;
            };
            let input = self.input_for(cfg, rung, encoded);
            log::info!(
                "rung {rung}: handing its encoder over to one reading the {}",
                input.name()
            );
            self.spawn(cfg, rung, input);
            self.retiring.push((old.encoder, Instant::now()));
        }
    }

    fn spawn(&mut self, cfg: &Config, rung: usize, input: Input) {
        let generation = self.next_generation;
        self.next_generation += 1;
        self.inputs.hub.add_track(rung, generation);
        let stop = self.stop.child_token();
        let encoder = Encoder::start(cfg, rung, generation, &self.inputs, input, stop);
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
            let encoded = self.encoded() + usize::from(!cfg.ladder()[rung].passthrough);
            let input = self.input_for(cfg, rung, encoded);
            self.spawn(cfg, rung, input);
            self.settle(cfg);
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
    /// their tracks already gone from the hub, with the decoders no encoder
    /// reads any more.
    pub fn reap(
        &mut self,
        cfg: &Config,
        in_use: &BTreeSet<usize>,
        keep: usize,
        idle_for: Duration,
    ) -> Stopped {
        self.give_up_a_failing_decoder(cfg);
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
        for rung in &idle {
            if let Some(r) = self.running.remove(rung) {
                log::info!("rung {rung}: nobody watches it; stopping its encoder");
                self.inputs.hub.remove_track(r.encoder.generation);
                stopped.push(r.encoder);
            }
        }
        if !idle.is_empty() {
            self.settle(cfg);
        }
        let hub = &self.inputs.hub;
        let (done, keep): (Vec<_>, Vec<_>) = self.retiring.drain(..).partition(|(e, since)| {
            hub.track_readers(e.generation) == 0 || since.elapsed() > RETIRE_WITHIN
        });
        self.retiring = keep;
        for (e, _) in done {
            if hub.track_readers(e.generation) == 0 {
                self.lingering.push((e.generation, now));
            } else {
                hub.remove_track(e.generation);
            }
            stopped.push(e);
        }
        self.lingering.retain(|(generation, since)| {
            let keep = now.duration_since(*since) < LINGER;
            if !keep {
                hub.remove_track(*generation);
            }
            keep
        });
        Stopped {
            decoders: self.unread_decoders(),
            encoders: stopped,
        }
    }

    /// Encoders (running or retiring) reading `frames`.
    fn readers_of(&self, frames: &Arc<Frames>) -> usize {
        let running = self.running.values().map(|r| &r.encoder);
        running
            .chain(self.retiring.iter().map(|(e, _)| e))
            .filter(|e| matches!(&e.input, Input::Decoded(f) if Arc::ptr_eq(f, frames)))
            .count()
    }

    /// Takes the decoders no running or retiring encoder reads any more.
    fn unread_decoders(&mut self) -> Vec<Decoder> {
        let old = std::mem::take(&mut self.old_decoders);
        let (keep, mut done): (Vec<_>, Vec<_>) = old
            .into_iter()
            .partition(|d| self.readers_of(&d.frames) > 0);
        self.old_decoders = keep;
        if self
            .decoder
            .as_ref()
            .is_some_and(|d| self.readers_of(&d.frames) == 0)
        {
            log::info!("no encoder reads the shared decoder; stopping it");
            done.extend(self.decoder.take());
        }
        done
    }

    /// New settings: every running rung (within the new ladder) gets a new
    /// encoder, make-before-break; its readers move over at its first
    /// keyframe. Rungs beyond the new ladder are retired.
    pub fn reencode(&mut self, cfg: &Config) {
        let old = std::mem::take(&mut self.running);
        let now = Instant::now();
        let mut rungs: Vec<usize> = old
            .keys()
            .copied()
            .filter(|r| *r < cfg.ladder().len() && *r >= self.top)
            .collect();
        if rungs.is_empty() {
            rungs.push(cfg.start_rung().max(self.top));
        }
        // New settings may mean a new decoder (another picture size) or none,
        // and another chance for one that failed.
        self.old_decoders.extend(self.decoder.take());
        self.decoder_failed = false;
        let encoded = rungs
            .iter()
            .filter(|r| !cfg.ladder()[**r].passthrough)
            .count();
        for rung in rungs {
            let input = self.input_for(cfg, rung, encoded);
            self.spawn(cfg, rung, input);
        }
        for (_, r) in old {
            self.retiring.push((r.encoder, now));
        }
    }

    /// Restarts every encoder's ffmpeg at once (the camera's new timeline):
    /// the decoders, and the encoders of the camera; encoders reading a
    /// decoder follow its restart, counting it by the same reason.
    pub fn restart_all(&self, reason: &'static str) {
        for d in self.decoder.iter().chain(&self.old_decoders) {
            d.restart(reason);
        }
        let encoders = self.running.values().map(|r| &r.encoder);
        for e in encoders.chain(self.retiring.iter().map(|(e, _)| e)) {
            if matches!(e.input, Input::Camera) {
                e.restart(reason);
            }
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

    /// The shared decoder, while it runs.
    pub fn decoder_status(&mut self) -> Option<DecoderStatus> {
        let d = self.decoder.as_ref()?;
        let encoders = self.readers_of(&d.frames);
        let i = d.info.lock().unwrap().clone();
        let counts = d.frames.counts();
        Some(DecoderStatus {
            name: d.name.clone(),
            width: d.size.0,
            height: d.size.1,
            pid: i.pid,
            restarts: i.restarts,
            uptime_s: i.uptime().map(|d| d.as_secs_f64()),
            last_exit: i.last_exit.clone(),
            last_stderr: i.last_stderr.clone(),
            restarts_by_reason: i.restarts_by_reason.clone(),
            stderr_suppressed: i.stderr_suppressed,
            encoders,
            frames: counts.frames,
            frames_skipped: counts.skipped,
            cpu_pct: self.decoder_cpu.sample(i.pid),
        })
    }

    /// Stops every encoder (their tasks are on the daemon's tracker, which
    /// shutdown waits for).
    pub fn stop_all(&self) {
        self.stop.cancel();
    }
}

/// What `reap` took out of service, to be stopped.
pub struct Stopped {
    pub encoders: Vec<Encoder>,
    pub decoders: Vec<Decoder>,
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
        input: e.input.name(),
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config;
    use std::path::Path;

    fn cfg(toml: &str) -> Config {
        config::parse(Path::new("t.toml"), toml).unwrap()
    }

    #[test]
    fn the_camera_is_decoded_once_from_two_encoded_rungs_on() {
        let c = cfg("");
        assert!(!decode_once(&c, 1), "one rung decodes for itself");
        assert!(decode_once(&c, 2));
        assert!(decode_once(&c, 4));
        let off = cfg("[encoder]\nshared_decoder = false\n");
        assert!(!decode_once(&off, 3), "as configured");
        let big = "[[ladder]]\nwidth = 2560\nheight = 1440\nfps = 30\nbitrate_kbps = 9000\n[[ladder]]\nwidth = 1280\nheight = 720\nfps = 30\nbitrate_kbps = 3000\n";
        assert!(!decode_once(&cfg(big), 2), "frames too large to hold");
    }
}
