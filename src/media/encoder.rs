//! The ffmpeg command for one rung (pure), and a running, supervised encoder
//! that reads the camera's stream on stdin and hands MPEG-TS to the hub. An
//! encoder that gives no output while the camera is live is restarted by its
//! watchdog; the owner restarts it on a new camera timeline.

use crate::config::{Codec, Config, Rung};
use crate::media::relay::Hub;
use crate::media::source::Feed;
use crate::media::ts::{Aligner, Demux, Kind, VideoCodec, PACKET_LEN};
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

/// ffmpeg's arguments (without the program) to encode `rung` from MPEG-TS on
/// stdin to MPEG-TS on stdout (pushes are fed from the hub, not from here).
pub fn ffmpeg_args(cfg: &Config, rung: &Rung) -> Vec<String> {
    let e = &cfg.encoder;
    let k = rung.keyframe_interval_s.unwrap_or(e.keyframe_interval_s);
    let mut a: Vec<String> = Vec::new();
    let mut push = |items: &[&str]| a.extend(items.iter().map(|s| s.to_string()));
    push(&["-hide_banner", "-nostdin", "-loglevel", "warning"]);
    // Input: the camera's MPEG-TS as the daemon received it, from the current
    // group of pictures on (see `feed`). A small probe and analysis: ffmpeg
    // starts once it has the keyframe's parameters. No `nobuffer`: it drops
    // what the probe read, so ffmpeg would wait for the camera's *next*
    // keyframe (up to a group of pictures, 0.5-1 s on cameras); kept, the
    // first frame comes about 0.1 s after the start, from the frames held.
    push(&["-fflags", "+discardcorrupt", "-flags", "low_delay"]);
    push(&["-probesize", "65536", "-analyzeduration", "200000"]);
    // Keep the camera's timestamps, so every encoder (one per rung) stamps the
    // same frame alike and the hub can splice between them on one timeline.
    push(&["-copyts"]);
    push(&["-f", "mpegts", "-i", "pipe:0"]);
    push(&["-map", "0:v:0", "-an", "-sn", "-dn"]);
    if rung.passthrough {
        // The camera's own H.264, remuxed: the same muxer and PIDs as the
        // encoded rungs, so a viewer moves between them on one stream.
        push(&["-c:v", "copy"]);
        push(&["-flush_packets", "1", "-muxdelay", "0", "-muxpreload", "0"]);
        push(&["-f", "mpegts", "pipe:1"]);
        return a;
    }
    // An encoded rung states all four (validation).
    let f = rung.stated();
    let vf = format!(
        "scale={}:{}:flags=fast_bilinear,fps={},format=yuv420p",
        f.width, f.height, f.fps
    );
    push(&["-vf", &vf]);
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
        }
        Codec::H264V4l2m2m => {
            push(&["-num_output_buffers", "8", "-num_capture_buffers", "8"]);
        }
    }
    // Keyframes on a grid of absolute source time (multiples of k seconds), so the
    // encoders of different rungs place them on the same frames: splice points.
    let gop = ((f64::from(f.fps) * k).round() as u64).max(1);
    let force = format!("expr:if(isnan(prev_forced_t),1,gte(t,(trunc(prev_forced_t/{k})+1)*{k}))");
    push(&["-g", &(gop * 2).to_string(), "-force_key_frames", &force]);
    let extra: Vec<&str> = e.extra_args.iter().map(String::as_str).collect();
    push(&extra);
    push(&["-flush_packets", "1", "-muxdelay", "0", "-muxpreload", "0"]);
    // Extra outputs are fed from the hub, after the splice (see push.rs).
    push(&["-f", "mpegts", "pipe:1"]);
    a
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
    pub tasks: TaskTracker,
}

/// One encoder process for one rung, identified by its generation number.
pub struct Encoder {
    pub generation: u64,
    /// Index into the ladder it was started from, and that rung's settings.
    pub rung: usize,
    pub settings: Rung,
    pub info: SharedInfo,
    stop: CancellationToken,
    restart_tx: mpsc::Sender<&'static str>,
    task: JoinHandle<()>,
}

impl Encoder {
    /// Starts a supervised ffmpeg for `rung`; it reads the camera's stream and
    /// feeds the hub under `generation`. Cancelling `stop` (or calling `stop`)
    /// ends it: input first, so ffmpeg finishes at once even when the camera
    /// is silent, then its process group.
    pub fn start(
        cfg: &Config,
        rung: usize,
        generation: u64,
        inputs: &Inputs,
        stop: CancellationToken,
    ) -> Encoder {
        let e = &cfg.encoder;
        let secs = Duration::from_secs_f64;
        let progress = Progress::default();
        let spec = Spec {
            name: format!(
                "{}[{rung}]#{generation}",
                if cfg.ladder()[rung].passthrough {
                    "remux"
                } else {
                    "encoder"
                }
            ),
            program: e.ffmpeg.clone(),
            args: ffmpeg_args(cfg, &cfg.ladder()[rung]),
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
                expected: inputs.live.clone(),
            }),
            redact: Vec::new(),
        };
        let info: SharedInfo = Arc::new(Mutex::new(ChildInfo::default()));
        let (restart_tx, restart_rx) = mpsc::channel(1);
        let i = inputs.clone();
        let feed_stop = stop.clone();
        let info_out = info.clone();
        let join = SourceJoin {
            h264_only: cfg.ladder()[rung].passthrough,
            ..SourceJoin::default()
        };
        let on_start = move |pipes: Pipes| {
            if let Some(stdin) = pipes.stdin {
                let (i, join) = (i.clone(), join.clone());
                i.tasks
                    .spawn(feed(i.feed.subscribe(), stdin, join, feed_stop.clone()));
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

/// Copies the camera's stream into ffmpeg's stdin, from the current group of
/// pictures on. A lagging ffmpeg loses whole pieces instead of holding up the
/// receiver (overruns are not fatal).
async fn feed(
    (gop, mut rx): (Vec<Bytes>, broadcast::Receiver<Bytes>),
    mut stdin: tokio::process::ChildStdin,
    mut join: SourceJoin,
    stop: CancellationToken,
) {
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
#[derive(Default, Clone)]
pub struct SourceJoin {
    demux: Demux,
    started: bool,
    held: usize,
    /// A remux (passthrough) takes H.264 only: phones are never sent another codec.
    pub h264_only: bool,
}

impl SourceJoin {
    const GIVE_UP_AFTER: usize = 3000; // datagrams: a few seconds of video

    /// True when `datagram` should go to the encoder.
    pub fn admit(&mut self, datagram: &[u8]) -> bool {
        if self.h264_only {
            for pkt in datagram.chunks_exact(PACKET_LEN) {
                self.demux.classify(pkt);
            }
            if self.demux.codec().is_some_and(|c| c != VideoCodec::H264) {
                return false;
            }
        }
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
        ffmpeg_args(&cfg, &ladder[rung])
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
        assert!(value_after(&a, "-vf").starts_with("scale=1280:720"));
        assert!(value_after(&a, "-vf").contains("fps=30"));
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
        assert!(
            !value_after(&a, "-fflags").contains("nobuffer"),
            "nobuffer drops the frames probed: the first frame would wait for the next keyframe"
        );
    }

    #[test]
    fn chosen_rung_and_keyframe_interval_are_used() {
        let a = args_for(
            "[encoder]\nstart_rung = 2\nkeyframe_interval_s = 2.0\npreset = \"ultrafast\"\nextra_args = [\"-threads\", \"1\"]\n",
        );
        assert!(value_after(&a, "-vf").starts_with("scale=960:540"));
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
    fn a_passthrough_rung_is_remuxed_not_encoded() {
        let cfg = config::parse(
            Path::new("t.toml"),
            "[[ladder]]\npassthrough = true\nwidth = 1280\nheight = 720\nfps = 30\nbitrate_kbps = 4000\n[[ladder]]\nwidth = 640\nheight = 360\nfps = 30\nbitrate_kbps = 800\nkeyframe_interval_s = 0.5\n",
        )
        .unwrap();
        let a = ffmpeg_args(&cfg, &cfg.ladder()[0]);
        assert_eq!(value_after(&a, "-c:v"), "copy");
        assert!(!a
            .iter()
            .any(|x| x == "-vf" || x == "-b:v" || x == "-force_key_frames"));
        assert!(
            a.contains(&"-copyts".to_string()),
            "the camera's timestamps, like every rung"
        );
        assert_eq!(&a[a.len() - 3..], ["-f", "mpegts", "pipe:1"]);
        let b = ffmpeg_args(&cfg, &cfg.ladder()[1]);
        assert!(
            value_after(&b, "-force_key_frames").contains("/0.5)+1)*0.5"),
            "the rung's own interval"
        );
        assert_eq!(value_after(&b, "-g"), "30");
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
