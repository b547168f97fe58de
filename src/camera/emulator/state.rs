//! What the emulated camera is doing, and its record.

use crate::camera::emulator::args::Options;
use crate::camera::models::Codec;
use crate::clock::unix_now;
use log::{info, warn};
use serde_json::{json, Value};
use std::io::Write;
use std::net::SocketAddr;
use std::sync::Mutex;
use std::time::Instant;

/// Which stream the camera sends.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StreamKind {
    /// Open GoPro's preview stream (HEVC on HERO13).
    Preview,
    /// Webcam mode (H.264 on every model, spec: Webcam).
    Webcam,
    /// The legacy live view.
    LiveView,
}

impl StreamKind {
    pub fn name(self) -> &'static str {
        match self {
            StreamKind::Preview => "preview",
            StreamKind::Webcam => "webcam",
            StreamKind::LiveView => "live-view",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Stream {
    pub to: SocketAddr,
    pub kind: StreamKind,
}

/// The camera's state.
#[derive(Debug)]
pub struct State {
    pub stream: Option<Stream>,
    /// Open GoPro webcam status: 0 OFF, 1 IDLE, 2 HIGH_POWER_PREVIEW, 3 LOW_POWER_PREVIEW.
    pub webcam: u8,
    /// Recording (status 10, set by the shutter).
    pub encoding: bool,
    /// The last wired-control setting (`wired_usb?p=`).
    pub wired_usb: Option<bool>,
    /// The last keep-alive (or start command), for `--keepalive-timeout`.
    pub last_keepalive: Instant,
    pub paused_until: Option<Instant>,
    pub silent_until: Option<Instant>,
    /// Faults still to come.
    pub refuse_starts: u32,
    pub drop_keepalives: u32,
    /// Bumped by `/_test/restart`: the encoder starts again, with new timestamps.
    pub generation: u64,
}

impl State {
    pub fn silent(&self) -> bool {
        self.silent_until.is_some_and(|t| Instant::now() < t)
    }

    pub fn paused(&self) -> bool {
        self.paused_until.is_some_and(|t| Instant::now() < t)
    }
}

/// The JSON-lines record: one object per line, each with `t` (unix seconds) and `type`.
pub struct Recorder {
    file: Option<Mutex<std::fs::File>>,
}

impl Recorder {
    pub fn open(opts: &Options) -> Result<Recorder, String> {
        let file = match &opts.record {
            None => None,
            Some(path) => Some(Mutex::new(
                std::fs::OpenOptions::new()
                    .create(true)
                    .append(true)
                    .open(path)
                    .map_err(|e| format!("cannot open the record {}: {e}", path.display()))?,
            )),
        };
        Ok(Recorder { file })
    }

    pub fn write(&self, mut entry: Value) {
        let Some(file) = &self.file else { return };
        entry["t"] = json!(unix_now());
        let mut line = entry.to_string();
        line.push('\n');
        if let Err(e) = file.lock().unwrap().write_all(line.as_bytes()) {
            warn!("fake-gopro: cannot write the record: {e}");
        }
    }
}

/// The emulated camera.
pub struct Cam {
    pub opts: Options,
    pub record: Recorder,
    pub state: Mutex<State>,
}

impl Cam {
    pub fn new(opts: Options, record: Recorder) -> Cam {
        let state = State {
            stream: None,
            webcam: 0,
            encoding: false,
            wired_usb: None,
            last_keepalive: Instant::now(),
            paused_until: None,
            silent_until: None,
            refuse_starts: opts.refuse_starts,
            drop_keepalives: opts.drop_keepalives,
            generation: 0,
        };
        Cam {
            opts,
            record,
            state: Mutex::new(state),
        }
    }

    pub fn event(&self, name: &str, detail: Value) {
        self.record
            .write(json!({"type": "event", "event": name, "detail": detail}));
    }

    /// The codec of a stream of `kind`: the model's preview codec, H.264 otherwise.
    pub fn codec(&self, kind: StreamKind) -> Codec {
        match kind {
            StreamKind::Preview => self.opts.model.preview_codec,
            StreamKind::Webcam | StreamKind::LiveView => Codec::H264,
        }
    }

    /// Streams `kind` to `to` (from now on).
    pub fn start(&self, to: SocketAddr, kind: StreamKind) {
        let mut s = self.state.lock().unwrap();
        s.last_keepalive = Instant::now();
        let stream = Stream { to, kind };
        if s.stream != Some(stream) {
            s.stream = Some(stream);
            drop(s);
            let codec = self.codec(kind).name();
            info!(
                "fake-gopro: streaming its {} ({codec}) to udp://{to}",
                kind.name()
            );
            self.event(
                "stream_start",
                json!({"to": to.to_string(), "stream": kind.name(), "codec": codec}),
            );
        }
    }

    /// Stops the stream (any, or only one of `kind`).
    pub fn stop(&self, only: Option<StreamKind>, reason: &str) {
        let mut s = self.state.lock().unwrap();
        let Some(stream) = s.stream.filter(|st| only.map_or(true, |k| k == st.kind)) else {
            return;
        };
        s.stream = None;
        drop(s);
        info!(
            "fake-gopro: stopped its {} to udp://{}: {reason}",
            stream.kind.name(),
            stream.to
        );
        self.event(
            "stream_stop",
            json!({"to": stream.to.to_string(), "stream": stream.kind.name(), "reason": reason}),
        );
    }

    pub fn keepalive(&self) {
        self.state.lock().unwrap().last_keepalive = Instant::now();
    }

    /// Takes one fault from a counter: true when this request is to suffer it.
    pub fn take(&self, which: impl FnOnce(&mut State) -> &mut u32) -> bool {
        let mut s = self.state.lock().unwrap();
        let n = which(&mut s);
        if *n > 0 {
            *n -= 1;
            true
        } else {
            false
        }
    }
}
