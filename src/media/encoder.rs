//! The ffmpeg command for one rung (pure), and a running, supervised encoder
//! that reads on stdin either the camera's stream (and decodes it itself) or
//! the shared decoder's frames (`decoder`, `frames`), and hands MPEG-TS to
//! the hub. An encoder that gives no output while its input flows is
//! restarted by its watchdog; the owner restarts it on a new camera timeline
//! (one reading frames follows the decoder's restart instead).

use crate::config::{Codec, Config, Rung};
use crate::media::decoder::widen_pipe;
use crate::media::frames::{self, Frames};
use crate::media::passthrough::Passthrough;
use crate::media::relay::Hub;
use crate::media::source::Feed;
use crate::media::ts::{Aligner, Demux, Kind, PACKET_LEN};
use crate::supervise::{
    self, Backoff, ChildInfo, Control, Pipes, Progress, SharedInfo, Spec, Watchdog,
};
use bytes::Bytes;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::sync::{broadcast, mpsc, watch};
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

/// Why the owner restarts an encoder: the camera started a new timeline.
pub const NEW_TIMELINE: &str = "new timeline";

/// Where an encoder's picture comes from.
#[derive(Clone)]
pub enum Input {
    /// The camera's MPEG-TS: the encoder decodes it itself.
    Camera,
    /// Raw frames from the shared decoder.
    Decoded(Arc<Frames>),
}

impl Input {
    pub fn name(&self) -> &'static str {
        match self {
            Input::Camera => "camera",
            Input::Decoded(_) => "decoder",
        }
    }
}

/// ffmpeg's arguments (without the program) to encode `rung` (an encoded
/// one: a passthrough rung has no process, see `media::passthrough`) from
/// MPEG-TS on stdin to MPEG-TS on stdout (pushes are fed from the hub, not
/// from here). `catch_up_s`: how far the camera's newest frame is past the
/// keyframe the input starts at (`Feed::catch_up_s`); the frame that far in
/// is made a keyframe too (see `keyframes`).
pub fn ffmpeg_args(cfg: &Config, rung: &Rung, catch_up_s: Option<f64>) -> Vec<String> {
    let mut a: Vec<String> = Vec::new();
    let mut push = |items: &[&str]| a.extend(items.iter().map(|s| s.to_string()));
    push(&["-hide_banner", "-nostdin", "-loglevel", "warning"]);
    // Input: the camera's MPEG-TS as the daemon received it, from the current
    // group of pictures on (see `feed`). A small probe and analysis: ffmpeg
    // starts once it has the keyframe's parameters. No `nobuffer`: it drops
    // what the probe read, so ffmpeg would wait for the camera's *next*
    // keyframe (up to a group of pictures, 0.5-1 s on cameras); kept, the
    // first frame comes about 0.1 s after the start, from the frames held.
    // No parser (`noparse`, with `nofillin`, which it needs): each PES is a
    // whole frame, as cameras send it, and goes to the decoder as it ends.
    // The H.264/HEVC parser would look for the start of the *next* frame in
    // it first: one more frame interval (33 ms at 30 fps) of latency.
    push(&["-fflags", "+discardcorrupt+noparse+nofillin"]);
    push(&["-flags", "low_delay"]);
    push(&["-probesize", "65536", "-analyzeduration", "200000"]);
    // Keep the camera's timestamps, so every encoder (one per rung) stamps the
    // same frame alike and the hub can splice between them on one timeline.
    push(&["-copyts"]);
    push(&["-f", "mpegts", "-i", "pipe:0"]);
    output_args(cfg, rung, catch_up_s, a)
}

/// ffmpeg's arguments to encode `rung` from the shared decoder's frames (NUT
/// on stdin, the camera's timestamps in it) to MPEG-TS on stdout.
pub fn ffmpeg_args_from_frames(cfg: &Config, rung: &Rung) -> Vec<String> {
    let mut a: Vec<String> = Vec::new();
    let mut push = |items: &[&str]| a.extend(items.iter().map(|s| s.to_string()));
    push(&["-hide_banner", "-nostdin", "-loglevel", "warning"]);
    // The header says all there is to know: ffmpeg starts on the first frame
    // instead of reading ahead to probe (5 MB: half a second of frames).
    push(&["-probesize", "32", "-analyzeduration", "0"]);
    push(&["-copyts", "-f", "nut", "-i", "pipe:0"]);
    // Fed from the newest frames: its first keyframe is live already.
    output_args(cfg, rung, None, a)
}

/// What follows the input: the rung's filters, encoder, keyframe grid, muxer.
fn output_args(
    cfg: &Config,
    rung: &Rung,
    catch_up_s: Option<f64>,
    mut a: Vec<String>,
) -> Vec<String> {
    let e = &cfg.encoder;
    let k = rung.keyframe_interval_s.unwrap_or(e.keyframe_interval_s);
    let mut push = |items: &[&str]| a.extend(items.iter().map(|s| s.to_string()));
    push(&["-map", "0:v:0", "-an", "-sn", "-dn"]);
    // An encoded rung states all four (validation).
    let f = rung.stated();
    // At most `fps` frames a second, kept with the camera's timestamps: a
    // frame is kept when it falls in a later 1/fps slot of source time than
    // the last one kept (slots a quarter slot early, so that a camera's
    // frames, on multiples of its own interval, never sit on a boundary).
    // Decided on each frame alone: the `fps` filter holds every frame until
    // the next one comes, a frame interval of latency. Dropped frames are
    // dropped before they are scaled. `-r` tells the encoder the rate.
    let fps = f.fps;
    let slot = |t: &str| format!("floor({t}*{fps}+0.25)");
    let vf = format!(
        "select='isnan(prev_selected_t)+gt({},{})',scale={}:{}:flags=fast_bilinear,format=yuv420p",
        slot("t"),
        slot("prev_selected_t"),
        f.width,
        f.height
    );
    push(&["-vf", &vf, "-r", &fps.to_string()]);
    push(&["-c:v", e.codec.ffmpeg_name()]);
    let kbps = f.bitrate_kbps;
    let rate = format!("{kbps}k");
    // The rate cap and a buffer of about one second keep bursts within what the link was measured to carry.
    push(&["-b:v", &rate, "-maxrate", &rate, "-bufsize", &rate]);
    match e.codec {
        Codec::Libx264 => {
            push(&[
                "-preset",
                &e.preset,
                "-tune",
                "zerolatency",
                "-profile:v",
                "main",
            ]);
            // No scene-cut keyframes: keyframes come only from the shared time grid below.
            push(&["-sc_threshold", "0", "-x264-params", "repeat-headers=1"]);
            if single_threaded(f.width, f.height) {
                push(&["-threads", "1"]);
            }
        }
        Codec::H264V4l2m2m => {
            push(&["-num_output_buffers", "8", "-num_capture_buffers", "8"]);
        }
    }
    let gop = ((f64::from(f.fps) * k).round() as u64).max(1);
    push(&[
        "-g",
        &(gop * 2).to_string(),
        "-force_key_frames",
        &keyframes(k, catch_up_s),
    ]);
    let extra: Vec<&str> = e.extra_args.iter().map(String::as_str).collect();
    push(&extra);
    push(&["-flush_packets", "1", "-muxdelay", "0", "-muxpreload", "0"]);
    // Extra outputs are fed from the hub, after the splice (see push.rs).
    push(&["-f", "mpegts", "pipe:1"]);
    a
}

/// When keyframes are forced: on the first frame, then every `k` seconds of
/// source time (ffmpeg's `t` counts from the first frame). An encoder fed
/// from the start of the camera's group of pictures (`catch_up_s` before
/// live) also gets them on the first frame past that catch-up and every
/// `LIVE_KEYFRAME_EVERY` for `LIVE_KEYFRAMES_FOR` after it: it is started when
/// a link shows trouble, and a viewer stepping down to it a sample or two
/// later, already sent frames about that new on its old rung, can then move
/// at once instead of waiting for the grid's next keyframe (up to `k` seconds
/// of the old rung piling up on a link that cannot carry it). Never later
/// than the grid's point, so a catch-up misjudged cannot delay the grid.
fn keyframes(k: f64, catch_up_s: Option<f64>) -> String {
    let grid = format!("(trunc(prev_forced_t/{k})+1)*{k}");
    match catch_up_s {
        Some(live) if live > 0.0 => {
            // A millisecond early: `t` of a frame on the camera's grid is a
            // sum of floats that can land just short of the figure.
            let (live, every) = (live - 0.001, LIVE_KEYFRAME_EVERY - 0.001);
            let until = live + LIVE_KEYFRAMES_FOR + 0.01;
            let after = format!("prev_forced_t+{every:.3}");
            let next = format!(
                "if(lt(prev_forced_t,{live:.3}),min({live:.3},{grid}),\
                 if(lte({after},{until:.3}),min({after},{grid}),{grid}))"
            );
            format!("expr:if(isnan(prev_forced_t),1,gte(t,{next}))")
        }
        _ => format!("expr:if(isnan(prev_forced_t),1,gte(t,{grid}))"),
    }
}

/// See `keyframes`: about the controller's sample interval, over the time
/// its step down is confirmed in.
const LIVE_KEYFRAME_EVERY: f64 = 0.2;
const LIVE_KEYFRAMES_FOR: f64 = 0.4;

/// The largest picture x264 encodes in one thread: with `zerolatency` its
/// threads split each frame into slices and meet at every frame, which on a
/// picture this small costs more than it saves (a fifth of the CPU of the
/// Debian image's three encoded rungs, measured in benches/RESULTS.md) and
/// adds nothing to latency worth having. Larger rungs keep x264's own count,
/// which a Pi needs for 720p and up. `extra_args` can still say otherwise.
const ONE_THREAD_MAX_PIXELS: u32 = 640 * 360;

fn single_threaded(width: u32, height: u32) -> bool {
    width.saturating_mul(height) <= ONE_THREAD_MAX_PIXELS
}

/// What every encoder is given: the camera's stream, whether it is live
/// (the watchdog expects output only then), the hub for its output and the
/// task tracker its tasks run on (so that shutdown can wait for them).
#[derive(Clone)]
pub struct Inputs {
    pub feed: Arc<Feed>,
    pub live: Arc<dyn Fn() -> bool + Send + Sync>,
    /// The camera's timeline: output is stamped with the one ffmpeg started on.
    pub timeline: watch::Receiver<u64>,
    pub hub: Arc<Hub>,
    /// Feeds the passthrough rung's track: it has no process.
    pub passthrough: Arc<Passthrough>,
    pub tasks: TaskTracker,
}

/// One encoder process for one rung, identified by its generation number.
pub struct Encoder {
    pub generation: u64,
    /// Index into the ladder it was started from, and that rung's settings.
    pub rung: usize,
    pub settings: Rung,
    pub input: Input,
    pub info: SharedInfo,
    stop: CancellationToken,
    restart_tx: mpsc::Sender<&'static str>,
    task: JoinHandle<()>,
}

impl Encoder {
    /// Starts a supervised ffmpeg for `rung`; it reads `input` and feeds the
    /// hub under `generation`. Cancelling `stop` (or calling `stop`) ends it:
    /// input first, so ffmpeg finishes at once even when the camera is
    /// silent, then its process group.
    pub fn start(
        cfg: &Config,
        rung: usize,
        generation: u64,
        inputs: &Inputs,
        input: Input,
        stop: CancellationToken,
    ) -> Encoder {
        let (restart_tx, restart_rx) = mpsc::channel(1);
        if cfg.ladder()[rung].passthrough {
            // No process: the source relays the camera's stream into the hub.
            let relay = inputs.passthrough.clone();
            return Encoder {
                generation,
                rung,
                settings: cfg.ladder()[rung].clone(),
                input,
                info: SharedInfo::default(),
                stop: stop.clone(),
                restart_tx,
                task: inputs.tasks.spawn(relay.run(generation, stop)),
            };
        }
        let e = &cfg.encoder;
        let secs = Duration::from_secs_f64;
        let progress = Progress::default();
        let spec = Spec {
            name: format!("encoder[{rung}]#{generation}"),
            program: e.ffmpeg.clone(),
            args: match input {
                Input::Camera => {
                    let catch_up = inputs.feed.catch_up_s();
                    log::debug!("encoder[{rung}]#{generation}: fed {catch_up:?} s of catch-up");
                    ffmpeg_args(cfg, &cfg.ladder()[rung], catch_up)
                }
                Input::Decoded(_) => ffmpeg_args_from_frames(cfg, &cfg.ladder()[rung]),
            },
            pipe_stdin: true,
            pipe_stdout: true,
            backoff: Backoff::new(
                secs(e.restart_initial_s),
                secs(e.restart_max_s),
                secs(e.restart_reset_s),
            ),
            stop_grace: secs(e.stop_grace_s),
            watchdog: Some(Watchdog {
                progress: progress.clone(),
                timeout: secs(e.output_timeout_s),
                expected: expected(inputs, &input, secs(e.output_timeout_s)),
            }),
            redact: Vec::new(),
        };
        let info: SharedInfo = Arc::new(Mutex::new(ChildInfo::default()));
        let i = inputs.clone();
        let feed_stop = stop.clone();
        let info_out = info.clone();
        let (source, again) = (input.clone(), restart_tx.clone());
        let on_start = move |pipes: Pipes| {
            if let Some(stdin) = pipes.stdin {
                match &source {
                    Input::Camera => {
                        let i = i.clone();
                        let f = feed_camera(i.feed.subscribe(), stdin, feed_stop.clone());
                        i.tasks.spawn(f);
                    }
                    Input::Decoded(frames) => {
                        widen_pipe(&stdin);
                        let f =
                            frames::feed(frames.clone(), stdin, feed_stop.clone(), again.clone());
                        i.tasks.spawn(f);
                    }
                }
            }
            if let Some(stdout) = pipes.stdout {
                let epoch = *i.timeline.borrow();
                let out = Output {
                    hub: i.hub.clone(),
                    generation,
                    epoch,
                    progress: progress.clone(),
                    info: info_out.clone(),
                };
                i.tasks.spawn(drain(stdout, out));
            }
        };
        let control = Control {
            stop: stop.clone(),
            restart: Some(restart_rx),
        };
        let task = inputs
            .tasks
            .spawn(supervise::supervise(spec, info.clone(), control, on_start));
        Encoder {
            generation,
            rung,
            settings: cfg.ladder()[rung].clone(),
            input,
            info,
            stop,
            restart_tx,
            task,
        }
    }

    /// Starts ffmpeg afresh at once (requests while one is pending are merged).
    pub fn restart(&self, reason: &'static str) {
        let _ = self.restart_tx.try_send(reason);
    }

    /// Stops ffmpeg (end of input, TERM, grace, KILL) and waits for it.
    pub async fn stop(self) {
        self.stop.cancel();
        let _ = self.task.await;
    }
}

/// When an encoder is expected to give output: while the camera is live and,
/// reading the decoder's frames, while those come.
fn expected(
    inputs: &Inputs,
    input: &Input,
    within: Duration,
) -> Arc<dyn Fn() -> bool + Send + Sync> {
    match input {
        Input::Camera => inputs.live.clone(),
        Input::Decoded(frames) => {
            let (live, frames) = (inputs.live.clone(), frames.clone());
            Arc::new(move || live() && frames.flowing(within))
        }
    }
}

/// Copies the camera's stream into ffmpeg's stdin, from the current group of
/// pictures on. A lagging ffmpeg loses whole pieces instead of holding up the
/// receiver (overruns are not fatal).
pub(crate) async fn feed_camera(
    (gop, mut rx): (Vec<Bytes>, broadcast::Receiver<Bytes>),
    mut stdin: tokio::process::ChildStdin,
    stop: CancellationToken,
) {
    let mut join = SourceJoin::default();
    for piece in gop {
        if join.admit(&piece) && stdin.write_all(&piece).await.is_err() {
            return;
        }
    }
    loop {
        // Dropping stdin on stop ends ffmpeg's input: it finishes at once.
        let received = tokio::select! {
            _ = stop.cancelled() => return,
            r = rx.recv() => r,
        };
        match received {
            Ok(datagram) => {
                if !join.admit(&datagram) {
                    continue;
                }
                if stdin.write_all(&datagram).await.is_err() {
                    return; // ffmpeg went away; the supervisor restarts it
                }
            }
            Err(broadcast::error::RecvError::Lagged(n)) => {
                log::debug!("encoder input lagged; {n} datagrams dropped")
            }
            Err(broadcast::error::RecvError::Closed) => return,
        }
    }
}

/// Holds back the camera's stream from a new encoder until a keyframe, so the
/// encoder's decoder starts clean (no "non-existing PPS" errors, a faster
/// first frame). A source without detectable keyframes is let through after a while.
#[derive(Default)]
pub struct SourceJoin {
    demux: Demux,
    started: bool,
    held: usize,
}

impl SourceJoin {
    const GIVE_UP_AFTER: usize = 3000; // datagrams: a few seconds of video

    /// True when `datagram` should go to the encoder.
    pub fn admit(&mut self, datagram: &[u8]) -> bool {
        if self.started {
            return true;
        }
        let mut psi = false;
        for pkt in datagram.chunks_exact(PACKET_LEN) {
            match self.demux.classify(pkt) {
                Kind::Video { keyframe: true, .. } => {
                    self.started = true;
                    return true;
                }
                Kind::Pat | Kind::Pmt => psi = true,
                _ => {}
            }
        }
        self.held += 1;
        if self.held >= Self::GIVE_UP_AFTER {
            self.started = true;
        }
        psi || self.started
    }
}

/// Where one ffmpeg's output goes.
struct Output {
    hub: Arc<Hub>,
    generation: u64,
    /// The camera's timeline this ffmpeg was started on.
    epoch: u64,
    progress: Progress,
    /// Where the first frame's delay is shown (`/status`).
    info: SharedInfo,
}

/// Reads ffmpeg's MPEG-TS and hands whole packets to the hub; marks progress
/// when a new video frame came out.
async fn drain(mut stdout: tokio::process::ChildStdout, out: Output) {
    let Output {
        hub,
        generation,
        epoch,
        progress,
        info,
    } = out;
    let started = std::time::Instant::now();
    let mut first = true;
    let mut aligner = Aligner::default();
    let mut buf = vec![0u8; 64 * 1024];
    loop {
        match stdout.read(&mut buf).await {
            Ok(0) | Err(_) => return,
            Ok(n) => {
                let packets = aligner.push(&buf[..n]);
                if !packets.is_empty() && hub.push(generation, epoch, &packets) {
                    progress.mark();
                    if std::mem::take(&mut first) {
                        let after = started.elapsed().as_secs_f64();
                        info.lock().unwrap().first_output_s = Some(after);
                        log::info!(
                            "encoder #{generation}: first frame {after:.2} s after its ffmpeg started"
                        );
                    }
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config;
    use std::path::Path;

    /// The arguments for the start rung, or the first encoded rung below it
    /// (the default ladder's top rung is the camera's own).
    fn args_for(toml: &str) -> Vec<String> {
        let cfg = config::parse(Path::new("t.toml"), toml).unwrap();
        let ladder = cfg.ladder();
        let rung = (cfg.start_rung()..ladder.len())
            .find(|r| !ladder[*r].passthrough)
            .unwrap();
        ffmpeg_args(&cfg, &ladder[rung], None)
    }

    fn value_after<'a>(args: &'a [String], flag: &str) -> &'a str {
        let i = args
            .iter()
            .position(|a| a == flag)
            .unwrap_or_else(|| panic!("{flag} missing in {args:?}"));
        &args[i + 1]
    }

    #[test]
    fn default_rung_is_scaled_rate_capped_and_keyframed() {
        let a = args_for("");
        assert_eq!(value_after(&a, "-i"), "pipe:0");
        assert_eq!(value_after(&a, "-f"), "mpegts", "input format comes first");
        let vf = value_after(&a, "-vf");
        assert!(vf.contains(",scale=1280:720:"), "{vf}");
        assert!(
            vf.starts_with("select='isnan(prev_selected_t)+gt(floor(t*30+0.25),"),
            "frames dropped on their own timestamps, before scaling: {vf}"
        );
        assert!(!vf.contains("fps="), "the fps filter holds a frame: {vf}");
        assert_eq!(value_after(&a, "-r"), "30");
        assert_eq!(value_after(&a, "-c:v"), "libx264");
        assert_eq!(value_after(&a, "-b:v"), "2500k");
        assert_eq!(value_after(&a, "-maxrate"), "2500k");
        assert_eq!(value_after(&a, "-bufsize"), "2500k");
        assert_eq!(value_after(&a, "-preset"), "veryfast");
        assert_eq!(value_after(&a, "-tune"), "zerolatency");
        assert_eq!(value_after(&a, "-g"), "60");
        assert!(value_after(&a, "-force_key_frames").contains("prev_forced_t/1)+1)*1"));
        assert!(a.contains(&"-copyts".to_string()));
        assert_eq!(a.last().unwrap(), "pipe:1");
        assert_eq!(a[a.len() - 2], "mpegts");
    }

    #[test]
    fn low_latency_input_options_come_before_the_input() {
        let a = args_for("");
        let input = a.iter().position(|x| x == "-i").unwrap();
        for flag in ["-fflags", "-probesize", "-analyzeduration", "-copyts"] {
            let at = a.iter().position(|x| x == flag).unwrap();
            assert!(at < input, "{flag} must be an input option");
        }
        assert_eq!(value_after(&a, "-probesize"), "65536");
        let fflags = value_after(&a, "-fflags");
        assert!(
            !fflags.contains("nobuffer"),
            "nobuffer drops the frames probed: the first frame would wait for the next keyframe"
        );
        assert!(
            fflags.contains("+noparse+nofillin"),
            "a parser holds each frame until the next one begins: {fflags}"
        );
    }

    #[test]
    fn chosen_rung_and_keyframe_interval_are_used() {
        let a = args_for(
            "[encoder]\nstart_rung = 2\nkeyframe_interval_s = 2.0\npreset = \"ultrafast\"\nextra_args = [\"-threads\", \"1\"]\n",
        );
        assert!(value_after(&a, "-vf").contains("scale=960:540"));
        assert_eq!(value_after(&a, "-b:v"), "1500k");
        assert_eq!(
            value_after(&a, "-g"),
            "120",
            "the encoder's interval: the rung has none"
        );
        assert_eq!(value_after(&a, "-preset"), "ultrafast");
        assert_eq!(value_after(&a, "-threads"), "1");
        let extra = a.iter().position(|x| x == "-threads").unwrap();
        assert!(
            extra > a.iter().position(|x| x == "-c:v").unwrap(),
            "extra args are output options"
        );
    }

    #[test]
    fn a_rung_below_a_passthrough_one_has_its_own_keyframe_interval() {
        let cfg = config::parse(
            Path::new("t.toml"),
            "[[ladder]]\npassthrough = true\n[[ladder]]\nwidth = 640\nheight = 360\nfps = 30\nbitrate_kbps = 800\nkeyframe_interval_s = 0.5\n",
        )
        .unwrap();
        let b = ffmpeg_args(&cfg, &cfg.ladder()[1], None);
        assert!(
            value_after(&b, "-force_key_frames").contains("/0.5)+1)*0.5"),
            "the rung's own interval"
        );
        assert_eq!(value_after(&b, "-g"), "30");
    }

    #[test]
    fn small_rungs_encode_in_one_thread_and_large_ones_in_x264s_own_count() {
        let cfg = config::parse(
            Path::new("t.toml"),
            "[encoder]\nextra_args = [\"-threads\", \"2\"]\n[[ladder]]\nwidth = 1280\nheight = 720\nfps = 30\nbitrate_kbps = 2500\n[[ladder]]\nwidth = 640\nheight = 360\nfps = 30\nbitrate_kbps = 800\n",
        )
        .unwrap();
        let threads = |r: usize| -> Vec<String> {
            let a = ffmpeg_args(&cfg, &cfg.ladder()[r], None);
            let at = a.iter().enumerate().filter(|(_, x)| *x == "-threads");
            at.map(|(i, _)| a[i + 1].clone()).collect()
        };
        assert_eq!(threads(0), ["2"], "720p: only the user's own setting");
        assert_eq!(
            threads(1),
            ["1", "2"],
            "640x360: one thread, and the user's extra args after it win"
        );
        let frames = ffmpeg_args_from_frames(&cfg, &cfg.ladder()[1]);
        assert!(frames.windows(2).any(|w| w == ["-threads", "1"]));
    }

    #[test]
    fn an_encoder_of_decoded_frames_reads_nut_and_encodes_alike() {
        let cfg = config::parse(Path::new("t.toml"), "").unwrap();
        let rung = &cfg.ladder()[1];
        let a = ffmpeg_args_from_frames(&cfg, rung);
        let camera = ffmpeg_args(&cfg, rung, None);
        let input = a.iter().position(|x| x == "-i").unwrap();
        assert_eq!(&a[input - 2..=input + 1], ["-f", "nut", "-i", "pipe:0"]);
        assert!(
            a[..input].contains(&"-copyts".to_string()),
            "the camera's time"
        );
        assert_eq!(
            value_after(&a, "-probesize"),
            "32",
            "no reading ahead to probe"
        );
        let output = |v: &[String]| v[v.iter().position(|x| x == "-map").unwrap()..].to_vec();
        assert_eq!(
            output(&a),
            output(&camera),
            "the same filters, encoder, keyframe grid and muxer as an encoder of the camera"
        );
    }

    #[test]
    fn hardware_encoder_has_no_x264_options() {
        let a = args_for("[encoder]\ncodec = \"h264_v4l2m2m\"\n");
        assert_eq!(value_after(&a, "-c:v"), "h264_v4l2m2m");
        assert!(!a
            .iter()
            .any(|x| x == "-preset" || x == "-tune" || x == "-x264-params"));
    }

    #[test]
    fn a_new_encoder_joins_the_source_at_a_keyframe() {
        use crate::media::ts::tests::{pat, pes_start, pmt};
        let mut j = SourceJoin::default();
        assert!(
            j.admit(&[pat(0x1000), pmt(0x1000, 0x100)].concat()),
            "tables pass"
        );
        assert!(
            !j.admit(&pes_start(0x100, false, 3000, 1)),
            "a P-frame is held back"
        );
        assert!(
            j.admit(&pes_start(0x100, true, 6000, 5)),
            "the keyframe starts it"
        );
        assert!(
            j.admit(&pes_start(0x100, false, 9000, 1)),
            "then everything passes"
        );
    }

    #[test]
    fn outputs_are_not_the_encoders_business() {
        let a = args_for("[[output]]\nurl = \"udp://192.168.4.2:5000\"\n");
        assert_eq!(
            &a[a.len() - 3..],
            ["-f", "mpegts", "pipe:1"],
            "pushes are fed from the hub, not by tee"
        );
    }
}
