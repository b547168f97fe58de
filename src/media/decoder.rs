//! The shared decoder: one supervised ffmpeg that decodes the camera's stream
//! once for all encoded rungs while two or more run, instead of once per
//! encoder. It reads the camera's MPEG-TS on stdin like an encoder (from the
//! current group of pictures on), scales it to the largest encoded rung of
//! the ladder, and writes raw frames as NUT on stdout, keeping the camera's
//! timestamps; the daemon cuts that into frames (`nut`) and hands them to the
//! encoders (`frames`), which scale, encode and put keyframes on the same
//! source-time grid as before. Supervised like an encoder: process group,
//! restart with backoff, a watchdog on its frames while the camera is live,
//! restarted by its owner on a new camera timeline, stderr within a budget.

use crate::config::Config;
use crate::media::encoder::{feed_camera, Inputs};
use crate::media::frames::Frames;
use crate::media::nut::{Piece, Splitter};
use crate::supervise::{
    self, Backoff, ChildInfo, Control, Pipes, Progress, SharedInfo, Spec, Watchdog,
};
use std::os::fd::AsRawFd;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::io::AsyncReadExt;
use tokio::sync::mpsc;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

/// Why the decoder was restarted: what it wrote could not be cut into frames.
pub const BAD_OUTPUT: &str = "bad output";
/// The largest picture decoded once for all: 1920x1088 in 4:2:0, 3 MiB a
/// frame. A ladder with a larger encoded rung has each encoder decode the
/// camera itself, so that the frames held here stay a few megabytes.
pub const MAX_FRAME_BYTES: usize = 1920 * 1088 * 3 / 2;
/// Room for the packets that come with a frame (its syncpoint, headers
/// repeated now and then).
const FRAME_SLACK: usize = 64 << 10;
/// A pipe this large carries a frame in a few reads and writes instead of
/// dozens (Linux's default is 64 KiB; an unprivileged process may set 1 MiB).
pub const PIPE_BYTES: i32 = 1 << 20;

/// The size the decoder scales to: the largest encoded rung of the ladder
/// (by area). None when the ladder has no encoded rung, or one too large to
/// hold frames of (see `MAX_FRAME_BYTES`).
pub fn picture(cfg: &Config) -> Option<(u32, u32)> {
    let largest = cfg
        .ladder()
        .iter()
        .filter(|r| !r.passthrough)
        .map(|r| r.stated())
        .map(|f| (f.width, f.height))
        .max_by_key(|&(w, h)| u64::from(w) * u64::from(h))?;
    (frame_bytes(largest) <= MAX_FRAME_BYTES).then_some(largest)
}

/// Bytes of one raw frame (4:2:0, even sizes as the ladder's are).
pub fn frame_bytes((w, h): (u32, u32)) -> usize {
    w as usize * h as usize * 3 / 2
}

/// ffmpeg's arguments (without the program) to decode the camera's MPEG-TS
/// on stdin into raw frames of `size` as NUT on stdout.
pub fn ffmpeg_args(size: (u32, u32)) -> Vec<String> {
    let mut a: Vec<String> = Vec::new();
    let mut push = |items: &[&str]| a.extend(items.iter().map(|s| s.to_string()));
    push(&["-hide_banner", "-nostdin", "-loglevel", "warning"]);
    // The input exactly as an encoder of the camera reads it (see
    // `encoder::ffmpeg_args`): a quick start from the current group of
    // pictures, the camera's timestamps kept.
    push(&["-fflags", "+discardcorrupt", "-flags", "low_delay"]);
    push(&["-probesize", "65536", "-analyzeduration", "200000"]);
    push(&["-copyts", "-f", "mpegts", "-i", "pipe:0"]);
    push(&["-map", "0:v:0", "-an", "-sn", "-dn"]);
    // Scaled once to the largest rung: every encoder scales down from there
    // (the largest not at all), and the pipes carry no more than it needs.
    let vf = format!(
        "scale={}:{}:flags=fast_bilinear,format=yuv420p",
        size.0, size.1
    );
    push(&["-vf", &vf]);
    // Raw frames with the camera's own timestamps (its 90 kHz time base, no
    // frame dropped or repeated): the encoders' frame-rate filters and
    // keyframe grid then see what they would see decoding the camera.
    push(&[
        "-c:v",
        "rawvideo",
        "-enc_time_base",
        "-1",
        "-fps_mode",
        "passthrough",
    ]);
    push(&["-flush_packets", "1", "-f", "nut", "pipe:1"]);
    a
}

/// The running decoder.
pub struct Decoder {
    pub frames: Arc<Frames>,
    pub info: SharedInfo,
    /// The size it scales to.
    pub size: (u32, u32),
    pub name: String,
    stop: CancellationToken,
    restart_tx: mpsc::Sender<&'static str>,
    task: JoinHandle<()>,
}

impl Decoder {
    /// Starts a supervised decoder of `size` (see `picture`), named after `id`.
    pub fn start(
        cfg: &Config,
        size: (u32, u32),
        id: u64,
        inputs: &Inputs,
        stop: CancellationToken,
    ) -> Decoder {
        let e = &cfg.encoder;
        let secs = Duration::from_secs_f64;
        let progress = Progress::default();
        let name = format!("decoder#{id}");
        let spec = Spec {
            name: name.clone(),
            program: e.ffmpeg.clone(),
            args: ffmpeg_args(size),
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
        let frames = Arc::new(Frames::default());
        let info: SharedInfo = Arc::new(Mutex::new(ChildInfo::default()));
        let (restart_tx, restart_rx) = mpsc::channel(1);
        let (i, f, feed_stop, again) = (
            inputs.clone(),
            frames.clone(),
            stop.clone(),
            restart_tx.clone(),
        );
        let max_frame = frame_bytes(size) + FRAME_SLACK;
        let on_start = move |pipes: Pipes| {
            let run = f.begin_run();
            if let Some(stdin) = pipes.stdin {
                i.tasks
                    .spawn(feed_camera(i.feed.subscribe(), stdin, feed_stop.clone()));
            }
            if let Some(stdout) = pipes.stdout {
                widen_pipe(&stdout);
                let out = Output {
                    frames: f.clone(),
                    run,
                    progress: progress.clone(),
                    restart: again.clone(),
                    max_frame,
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
        Decoder {
            frames,
            info,
            size,
            name,
            stop,
            restart_tx,
            task,
        }
    }

    /// Starts ffmpeg afresh at once; the encoders reading it follow, counting
    /// their restart by the same `reason`.
    pub fn restart(&self, reason: &'static str) {
        self.frames.restart_reason(reason);
        let _ = self.restart_tx.try_send(reason);
    }

    /// Stops ffmpeg (end of input, TERM, grace, KILL) and waits for it.
    pub async fn stop(self) {
        self.stop.cancel();
        let _ = self.task.await;
    }
}

/// Sets a pipe's capacity to `PIPE_BYTES` (best effort: the default works,
/// with more reads and writes).
pub fn widen_pipe(fd: &impl AsRawFd) {
    // SAFETY: fcntl on a descriptor we own; a failure changes nothing.
    unsafe {
        libc::fcntl(fd.as_raw_fd(), libc::F_SETPIPE_SZ, PIPE_BYTES);
    }
}

/// Where one run of the decoder goes.
struct Output {
    frames: Arc<Frames>,
    run: u64,
    progress: Progress,
    restart: mpsc::Sender<&'static str>,
    max_frame: usize,
}

/// Reads the decoder's NUT, cuts it and hands out each frame as soon as its
/// last byte is in; marks progress per frame. Output that is not the NUT
/// expected restarts the decoder.
async fn drain(mut stdout: tokio::process::ChildStdout, out: Output) {
    let mut split = Splitter::new(out.max_frame);
    loop {
        // Room for a whole frame: one allocation per frame, handed out as is.
        let want = out.max_frame.saturating_sub(split.held()).max(64 << 10);
        split.input().reserve(want);
        match stdout.read_buf(split.input()).await {
            Ok(0) | Err(_) => return,
            Ok(_) => {}
        }
        loop {
            match split.next_piece() {
                Ok(None) => break,
                Ok(Some(Piece::Header(h))) => out.frames.set_header(out.run, h),
                Ok(Some(Piece::Frame(f))) => {
                    out.frames.publish(out.run, f);
                    out.progress.mark();
                }
                Err(e) => {
                    log::warn!("decoder: its output is not the NUT expected ({e}); restarting it");
                    let _ = out.restart.try_send(BAD_OUTPUT);
                    return;
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

    fn cfg(toml: &str) -> Config {
        config::parse(Path::new("t.toml"), toml).unwrap()
    }

    #[test]
    fn the_picture_is_the_largest_encoded_rung() {
        let ladder = "[[ladder]]\npassthrough = true\nwidth = 1920\nheight = 1080\nfps = 30\nbitrate_kbps = 6000\n[[ladder]]\nwidth = 640\nheight = 360\nfps = 30\nbitrate_kbps = 1000\n[[ladder]]\nwidth = 480\nheight = 270\nfps = 15\nbitrate_kbps = 500\n";
        assert_eq!(
            picture(&cfg(ladder)),
            Some((640, 360)),
            "passthrough is not decoded"
        );
        assert_eq!(picture(&cfg("")), Some((1280, 720)));
        let big = "[[ladder]]\nwidth = 2560\nheight = 1440\nfps = 30\nbitrate_kbps = 9000\n";
        assert_eq!(picture(&cfg(big)), None, "too large to hold frames of");
        let only = "[[ladder]]\npassthrough = true\nwidth = 640\nheight = 360\nfps = 30\nbitrate_kbps = 3000\n";
        assert_eq!(picture(&cfg(only)), None);
    }

    #[test]
    fn the_decoder_keeps_the_cameras_time_and_writes_raw_nut() {
        let a = ffmpeg_args((640, 360));
        let at = |flag: &str| a.iter().position(|x| x == flag).unwrap();
        assert!(at("-copyts") < at("-i"));
        assert_eq!(a[at("-i") + 1], "pipe:0");
        assert_eq!(
            a[at("-vf") + 1],
            "scale=640:360:flags=fast_bilinear,format=yuv420p"
        );
        assert!(
            !a[at("-vf") + 1].contains("fps"),
            "no frame-rate filter: no frame of delay"
        );
        assert_eq!(a[at("-c:v") + 1], "rawvideo");
        assert_eq!(a[at("-enc_time_base") + 1], "-1", "the camera's 90 kHz");
        assert_eq!(a[at("-fps_mode") + 1], "passthrough");
        assert_eq!(&a[a.len() - 3..], ["-f", "nut", "pipe:1"]);
    }
}
