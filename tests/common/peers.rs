//! The systems a benchmark compares, each serving one simulated camera to
//! phones: livestreamd in its modes, and the peers a user would pick instead —
//! ffmpeg `-listen` (the seed's way), VLC's HTTP stream output and GStreamer's
//! `tcpserversink`. The peers serve the camera's own stream (no re-encode).
//! Also: the camera (one ffmpeg test pattern for the whole run, relayed by
//! the benchmark so it knows when each frame left), the CPU of a process
//! tree from /proc, and stopping cleanly on Ctrl-C.

use super::phone::{Frame, FrameParser, Worker};
use super::*;
use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::atomic::AtomicU64;

/// The simulated camera: size, frame rate and nominal bitrate.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CameraSpec {
    pub width: u32,
    pub height: u32,
    pub fps: u32,
    pub kbps: u32,
}

impl Default for CameraSpec {
    /// Small enough that this 2-core machine carries the camera and three or
    /// four live encoders: 960x540@30 at 2.4 Mbit/s.
    fn default() -> Self {
        CameraSpec {
            width: 960,
            height: 540,
            fps: 30,
            kbps: 2400,
        }
    }
}

impl CameraSpec {
    /// `WxH@FPS`; the bitrate scales with the picture (2.4 Mbit/s at 960x540)
    /// unless `kbps` is given.
    pub fn parse(text: &str, kbps: Option<u32>) -> Result<CameraSpec, String> {
        let bad = || format!("camera `{text}`: expected WxH@FPS, e.g. 1280x720@30");
        let (size, fps) = text.split_once('@').unwrap_or((text, "30"));
        let (w, h) = size.split_once('x').ok_or_else(bad)?;
        let (width, height, fps): (u32, u32, u32) = (
            w.parse().map_err(|_| bad())?,
            h.parse().map_err(|_| bad())?,
            fps.parse().map_err(|_| bad())?,
        );
        if width < 64 || height < 64 || width % 2 + height % 2 != 0 || !(1..=60).contains(&fps) {
            return Err(bad());
        }
        let scaled = 2400.0 * f64::from(width * height) / (960.0 * 540.0);
        let kbps = kbps.unwrap_or(((scaled / 100.0).round() as u32).max(1) * 100);
        Ok(CameraSpec {
            width,
            height,
            fps,
            kbps,
        })
    }

    /// The ladder under this camera, best first: the camera's size and rate,
    /// then 2/3, 1/2 and 1/3 of the size at 1/2, 1/4 and 1/8 of the rate
    /// (1280x720 gives 720p/480p/360p/240p at 4000/2000/1000/500 kbit/s).
    pub fn ladder(&self) -> Vec<Rung> {
        [(1, 1, 1), (2, 3, 2), (1, 2, 4), (1, 3, 8)]
            .iter()
            .map(|&(n, d, div)| {
                (
                    (self.width * n / d) & !1,
                    (self.height * n / d) & !1,
                    self.fps,
                    self.kbps / div,
                )
            })
            .collect()
    }

    pub fn describe(&self) -> String {
        format!(
            "{}x{}@{} {} kbit/s",
            self.width, self.height, self.fps, self.kbps
        )
    }
}

/// The camera: ffmpeg's test pattern as H.264 in MPEG-TS over UDP, 7 packets
/// a datagram (the demo camera's own arguments, with noise and a rate cap), sent to the benchmark, which
/// notes when each frame left and passes every datagram on to the system
/// under test (or drops it while there is none). One camera for the whole run.
pub struct Camera {
    pub spec: CameraSpec,
    proc: Proc,
    target: Arc<Mutex<Option<SocketAddr>>>,
    sent: Arc<Mutex<FrameParser>>,
    bytes: Arc<AtomicU64>,
    stop: Arc<AtomicBool>,
    relay: Option<std::thread::JoinHandle<()>>,
}

impl Camera {
    /// Starts the camera; times are seconds since `epoch`.
    pub fn start(dir: &Path, spec: CameraSpec, epoch: Instant) -> Result<Camera, String> {
        let sock = UdpSocket::bind("127.0.0.1:0").map_err(|e| format!("camera relay: {e}"))?;
        sock.set_read_timeout(Some(Duration::from_millis(200)))
            .unwrap();
        // The camera's keyframe bursts overflow the default receive buffer on
        // loopback: the relay would lose part of every keyframe.
        let rcvbuf: libc::c_int = 4 << 20;
        // SAFETY: a valid socket and a c_int of the stated size.
        unsafe {
            use std::os::fd::AsRawFd;
            libc::setsockopt(
                sock.as_raw_fd(),
                libc::SOL_SOCKET,
                libc::SO_RCVBUF,
                (&rcvbuf as *const libc::c_int).cast(),
                std::mem::size_of::<libc::c_int>() as libc::socklen_t,
            );
        }
        let to = sock.local_addr().unwrap();
        let demo = livestreamd::camera::demo::DemoSource {
            width: spec.width,
            height: spec.height,
            fps: spec.fps,
        };
        let mut args = livestreamd::camera::demo::ffmpeg_args(&demo, to);
        // A camera's picture is busy: light noise keeps the encoder at its
        // rate (the bare test pattern gets by with half of it), capped like a camera's.
        let rate = args.iter().position(|a| a == "-b:v").ok_or("no -b:v")? + 1;
        let kbps = format!("{}k", spec.kbps);
        args[rate] = kbps.clone();
        let more = [
            "-maxrate",
            &kbps,
            "-bufsize",
            &kbps,
            "-vf",
            "noise=alls=8:allf=t",
        ];
        args.splice(rate + 1..rate + 1, more.iter().map(|s| s.to_string()));
        let proc = spawn(dir, "camera", "ffmpeg", &args, &[], None)?;
        let target: Arc<Mutex<Option<SocketAddr>>> = Arc::default();
        let sent: Arc<Mutex<FrameParser>> = Arc::default();
        let bytes = Arc::new(AtomicU64::new(0));
        let stop = Arc::new(AtomicBool::new(false));
        let (t, s, b, st) = (target.clone(), sent.clone(), bytes.clone(), stop.clone());
        let relay = std::thread::spawn(move || {
            let mut buf = [0u8; 2048];
            while !st.load(Ordering::Relaxed) {
                let Ok(n) = sock.recv(&mut buf) else { continue };
                let now = epoch.elapsed().as_secs_f64();
                if let Some(to) = *t.lock().unwrap() {
                    let _ = sock.send_to(&buf[..n], to);
                }
                b.fetch_add(n as u64, Ordering::Relaxed);
                s.lock().unwrap().push(&buf[..n], now);
            }
        });
        Ok(Camera {
            spec,
            proc,
            target,
            sent,
            bytes,
            stop,
            relay: Some(relay),
        })
    }

    /// Waits until the camera's frames come, and checks their size (read from
    /// the SPS the way the phones read it) against what was asked.
    pub fn wait_live(&mut self, timeout: Duration) -> Result<(), String> {
        let size = poll(timeout, Duration::from_millis(100), || {
            let p = self.sent.lock().unwrap();
            p.frames
                .iter()
                .find(|f| f.width > 0)
                .map(|f| (f.width, f.height))
        });
        match size {
            Some(s) if s == (self.spec.width, self.spec.height) => Ok(()),
            Some(s) => Err(format!(
                "the camera's SPS says {}x{}, asked for {}x{}: the SPS reader is wrong",
                s.0, s.1, self.spec.width, self.spec.height
            )),
            None => Err(format!(
                "the camera sent no video in {timeout:?}:\n{}",
                self.proc.log_text()
            )),
        }
    }

    /// Sends the camera to `127.0.0.1:port` from now on (None: to nobody).
    pub fn send_to(&self, port: Option<u16>) {
        *self.target.lock().unwrap() = port.map(|p| SocketAddr::from(([127, 0, 0, 1], p)));
    }

    /// When each frame (by PTS) left the camera, seconds since the epoch.
    pub fn sent_times(&self) -> HashMap<u64, f64> {
        let p = self.sent.lock().unwrap();
        p.frames.iter().map(|f| (f.pts, f.start)).collect()
    }

    /// The camera's frames so far.
    pub fn frames(&self) -> Vec<Frame> {
        self.sent.lock().unwrap().frames.clone()
    }

    /// Bytes sent so far (UDP payload).
    pub fn bytes(&self) -> u64 {
        self.bytes.load(Ordering::Relaxed)
    }

    pub fn pid(&self) -> i32 {
        self.proc.pid()
    }
}

impl Drop for Camera {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(r) = self.relay.take() {
            let _ = r.join();
        }
    }
}

/// Which top rung a livestreamd config asks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Top {
    /// The camera's own H.264 (`passthrough = true`); the system cannot run without it.
    Passthrough,
    /// Passthrough where this build accepts it, else re-encoded at the camera's size.
    PassthroughIfSupported,
    /// Re-encoded at the camera's size.
    Reencode,
}

/// livestreamd in one configuration.
#[derive(Debug, Clone)]
pub struct DaemonSetup {
    pub name: String,
    /// Lines of the `[adapt]` table.
    pub adapt: String,
    pub top: Top,
}

/// A system under test.
#[derive(Debug, Clone)]
pub enum System {
    Livestreamd(DaemonSetup),
    /// `ffmpeg -i udp://… -c copy -f mpegts -listen 1 http://0.0.0.0:PORT/`
    FfmpegListen,
    /// `cvlc udp://@:PORT --sout '#std{access=http,mux=ts,dst=:PORT/}'`, as `nobody`.
    Vlc,
    /// `gst-launch-1.0 udpsrc ! tsparse ! tcpserversink` (a bare TCP stream).
    Gstreamer,
}

/// Every system, in the order they are run.
pub fn all_systems() -> Vec<System> {
    let daemon = |name: &str, adapt: &str, top| {
        System::Livestreamd(DaemonSetup {
            name: name.into(),
            adapt: adapt.into(),
            top,
        })
    };
    vec![
        daemon("per-viewer", "policy = \"per-viewer\"", Top::Passthrough),
        // The lowest rung kept encoded: a step down never waits for an encoder.
        daemon(
            "per-viewer-standby",
            "policy = \"per-viewer\"\nstandby_rung = 3",
            Top::Passthrough,
        ),
        daemon(
            "weakest",
            "policy = \"weakest\"",
            Top::PassthroughIfSupported,
        ),
        daemon("fixed", "mode = \"fixed\"", Top::PassthroughIfSupported),
        System::FfmpegListen,
        System::Vlc,
        System::Gstreamer,
    ]
}

/// Where a system's parts go and what they read.
pub struct Launch<'a> {
    pub dir: &'a Path,
    pub camera: &'a CameraSpec,
    /// The UDP port the system receives the camera on.
    pub source_port: u16,
    /// The TCP port it serves phones on (every address).
    pub port: u16,
    /// The livestreamd binary.
    pub bin: &'a Path,
}

impl System {
    pub fn name(&self) -> String {
        match self {
            System::Livestreamd(d) => format!("livestreamd {}", d.name),
            System::FfmpegListen => "ffmpeg -listen".into(),
            System::Vlc => "VLC".into(),
            System::Gstreamer => "GStreamer".into(),
        }
    }

    /// The short name used on the command line.
    pub fn key(&self) -> String {
        match self {
            System::Livestreamd(d) => d.name.clone(),
            System::FfmpegListen => "ffmpeg-listen".into(),
            System::Vlc => "vlc".into(),
            System::Gstreamer => "gstreamer".into(),
        }
    }

    /// Starts the system; Err says why it cannot run here.
    pub fn launch(&self, l: &Launch) -> Result<Running, String> {
        match self {
            System::Livestreamd(setup) => launch_daemon(setup, l),
            System::FfmpegListen => {
                need("ffmpeg", "Debian package `ffmpeg`")?;
                let input = format!("udp://0.0.0.0:{}", l.source_port);
                let output = format!("http://0.0.0.0:{}/", l.port);
                let args = [
                    "-hide_banner",
                    "-nostdin",
                    "-loglevel",
                    "error",
                    "-i",
                    &input,
                    "-c",
                    "copy",
                    "-f",
                    "mpegts",
                    "-listen",
                    "1",
                    &output,
                ];
                let proc = spawn(l.dir, "ffmpeg-listen", "ffmpeg", &args, &[], None)?;
                Ok(Running::peer(proc, l.port, Some("/"), String::new()))
            }
            System::Vlc => {
                need("cvlc", "Debian packages `vlc-bin` and `vlc-plugin-base`")?;
                let user = user_ids("nobody")
                    .ok_or("VLC refuses to run as root and there is no user `nobody`")?;
                let home =
                    std::env::temp_dir().join(format!("lsd-bench-vlc-{}", std::process::id()));
                std::fs::create_dir_all(&home).map_err(|e| e.to_string())?;
                use std::os::unix::fs::PermissionsExt;
                let _ = std::fs::set_permissions(&home, std::fs::Permissions::from_mode(0o777));
                let input = format!("udp://@:{}", l.source_port);
                let sout = format!("#std{{access=http,mux=ts,dst=:{}/}}", l.port);
                let home_s = home.display().to_string();
                let proc = spawn(
                    l.dir,
                    "vlc",
                    "cvlc",
                    &[input.as_str(), "--sout", &sout],
                    &[("HOME", home_s.as_str())],
                    Some(user),
                )?;
                let mut r = Running::peer(proc, l.port, Some("/"), "as user `nobody`".into());
                r.cleanup = Some(home);
                Ok(r)
            }
            System::Gstreamer => {
                need("gst-launch-1.0", "Debian package `gstreamer1.0-tools`")?;
                for (element, package) in [
                    ("udpsrc", "gstreamer1.0-plugins-good"),
                    ("tsparse", "gstreamer1.0-plugins-bad"),
                    ("tcpserversink", "gstreamer1.0-plugins-base"),
                ] {
                    if !gst_has(element) {
                        return Err(format!(
                            "GStreamer has no `{element}`: Debian package `{package}`"
                        ));
                    }
                }
                let src = format!("port={}", l.source_port);
                let sink = format!("port={}", l.port);
                let args = [
                    "-q",
                    "udpsrc",
                    &src,
                    "caps=video/mpegts,systemstream=(boolean)true,packetsize=(int)188",
                    "!",
                    "tsparse",
                    "!",
                    "tcpserversink",
                    "host=0.0.0.0",
                    &sink,
                    "sync=false",
                ];
                let proc = spawn(l.dir, "gstreamer", "gst-launch-1.0", &args, &[], None)?;
                Ok(Running::peer(
                    proc,
                    l.port,
                    None,
                    "`sync=false` on the sink".into(),
                ))
            }
        }
    }
}

/// A livestreamd config for `setup` on this camera: its ladder (the top rung
/// the camera's own stream or a re-encode of it; the two lower rungs with
/// keyframes twice a second, as in the shipped ladder), the `[adapt]` lines.
pub fn daemon_config(setup: &DaemonSetup, l: &Launch, passthrough: bool) -> String {
    let ladder = l.camera.ladder();
    let mut tables = String::new();
    if passthrough {
        // The camera's own picture, its size and rate stated (the daemon wants them).
        let (w, h, fps, kbps) = ladder[0];
        tables.push_str(&format!(
            "\n[[ladder]]\npassthrough = true\nwidth = {w}\nheight = {h}\nfps = {fps}\nbitrate_kbps = {kbps}\n"
        ));
        tables.push_str(&ladder_text(&ladder[1..2]));
    } else {
        tables.push_str(&ladder_text(&ladder[..2]));
    }
    for rung in &ladder[2..] {
        tables.push_str(&ladder_text(std::slice::from_ref(rung)));
        tables.push_str("keyframe_interval_s = 0.5\n");
    }
    tables.push_str(&format!("\n[adapt]\n{}\n", setup.adapt));
    let ports = Ports {
        http: l.port,
        source: l.source_port,
    };
    Config::new(&ports)
        .listen_ip("0.0.0.0")
        .ladder(&[])
        .extra(&tables)
        .text()
}

/// `livestreamd check-config`: Err with its message when the file is refused.
pub fn check_config(bin: &Path, path: &Path) -> Result<(), String> {
    let out = Command::new(bin)
        .arg("check-config")
        .arg(path)
        .output()
        .map_err(|e| format!("{}: {e}", bin.display()))?;
    if out.status.success() {
        return Ok(());
    }
    let text =
        String::from_utf8_lossy(&out.stderr).into_owned() + &String::from_utf8_lossy(&out.stdout);
    Err(text
        .lines()
        .find(|l| !l.trim().is_empty())
        .unwrap_or("refused")
        .trim()
        .to_string())
}

fn launch_daemon(setup: &DaemonSetup, l: &Launch) -> Result<Running, String> {
    let path = l.dir.join(format!("livestreamd-{}.toml", setup.name));
    let write = |passthrough| {
        std::fs::write(&path, daemon_config(setup, l, passthrough)).unwrap();
        check_config(l.bin, &path)
    };
    let note = match setup.top {
        Top::Passthrough => {
            write(true).map_err(|e| format!("this livestreamd build refuses the config: {e}"))?;
            "top rung passthrough".to_string()
        }
        Top::PassthroughIfSupported => match write(true) {
            Ok(()) => "top rung passthrough".into(),
            Err(e) => {
                write(false)
                    .map_err(|e| format!("this livestreamd build refuses the config: {e}"))?;
                format!("top rung re-encoded (this build refuses passthrough: {e})")
            }
        },
        Top::Reencode => {
            write(false).map_err(|e| format!("this livestreamd build refuses the config: {e}"))?;
            "top rung re-encoded".into()
        }
    };
    let args = [
        "run".to_string(),
        "--config".into(),
        path.display().to_string(),
    ];
    let bin = l.bin.display().to_string();
    // The level a user runs at, unless LIVESTREAMD_TEST_LOG asks for more.
    let level = log_level("livestreamd=info");
    let proc = spawn(
        l.dir,
        &format!("livestreamd-{}", setup.name),
        &bin,
        &args,
        &[("RUST_LOG", &level)],
        None,
    )?;
    let mut r = Running::peer(proc, l.port, Some("/stream.ts"), note);
    r.daemon = true;
    Ok(r)
}

/// A system while it runs; its processes are stopped when it is dropped.
pub struct Running {
    pub procs: Vec<Proc>,
    pub port: u16,
    /// HTTP path the phones ask for; None: a bare TCP stream.
    pub path: Option<String>,
    /// livestreamd: `/status` and `/healthz` answer on loopback at `port`.
    pub daemon: bool,
    /// How it was set up, for the report.
    pub note: String,
    cleanup: Option<PathBuf>,
}

impl Running {
    fn peer(proc: Proc, port: u16, path: Option<&str>, note: String) -> Running {
        Running {
            procs: vec![proc],
            port,
            path: path.map(String::from),
            daemon: false,
            note,
            cleanup: None,
        }
    }

    pub fn pids(&self) -> Vec<i32> {
        self.procs.iter().map(|p| p.pid()).collect()
    }

    /// Waits until it serves: livestreamd's `/healthz` says 200, a peer listens on its port.
    pub fn wait_ready(&mut self, timeout: Duration) -> Result<(), String> {
        let deadline = Instant::now() + timeout;
        while Instant::now() < deadline {
            if let Some(why) = self.exited() {
                return Err(why);
            }
            let ready = if self.daemon {
                http_get(self.port, "/healthz").is_ok_and(|r| r.code == 200)
            } else {
                listening(self.port)
            };
            if ready {
                return Ok(());
            }
            std::thread::sleep(Duration::from_millis(200));
        }
        Err(format!("not serving after {timeout:?}"))
    }

    /// `/status`, for livestreamd.
    pub fn status(&self) -> Option<Value> {
        if !self.daemon {
            return None;
        }
        let r = http_get(self.port, "/status").ok()?;
        (r.code == 200).then(|| serde_json::from_slice(&r.body).ok())?
    }

    /// If a process has exited: how, and the last line of its log.
    pub fn exited(&mut self) -> Option<String> {
        self.procs.iter_mut().find_map(|p| {
            let status = p.try_wait()?;
            let log = p.log_text();
            let last = log
                .lines()
                .rev()
                .find(|l| !l.trim().is_empty())
                .unwrap_or("");
            Some(format!("{} exited ({status}): {}", p.name, last.trim()))
        })
    }

    /// Lines of the logs that mention `needle` (case-insensitive), at most `max`.
    pub fn log_lines(&self, needle: &str, max: usize) -> Vec<String> {
        let needle = needle.to_lowercase();
        let mut out = Vec::new();
        for p in &self.procs {
            for l in p.log_text().lines() {
                if l.to_lowercase().contains(&needle) && !out.iter().any(|o: &String| o == l.trim())
                {
                    out.push(l.trim().to_string());
                }
            }
        }
        out.truncate(max);
        out
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        self.procs.clear();
        if let Some(dir) = self.cleanup.take() {
            let _ = std::fs::remove_dir_all(dir);
        }
    }
}

/// Whether some socket listens on TCP `port` (from /proc/net/tcp and tcp6,
/// so nothing connects: ffmpeg `-listen 1` would take that connection as its one client).
pub fn listening(port: u16) -> bool {
    let hex = format!(":{port:04X} ");
    ["/proc/net/tcp", "/proc/net/tcp6"].iter().any(|f| {
        std::fs::read_to_string(f)
            .unwrap_or_default()
            .lines()
            .any(|l| {
                let cols: Vec<&str> = l.split_whitespace().collect();
                cols.len() > 3 && format!("{} ", cols[1]).ends_with(&hex) && cols[3] == "0A"
            })
    })
}

/// Runs `program` with its output in `dir/<name>.log`, dying with the
/// benchmark (`setpriv --pdeathsig KILL`; call it from the main thread: the
/// signal follows the thread that started it), as `user` (uid, gid) if given.
pub fn spawn(
    dir: &Path,
    name: &str,
    program: &str,
    args: &[impl AsRef<std::ffi::OsStr>],
    envs: &[(&str, &str)],
    user: Option<(u32, u32)>,
) -> Result<Proc, String> {
    let mut cmd = Command::new("setpriv");
    cmd.arg("--pdeathsig=KILL");
    if let Some((uid, gid)) = user {
        cmd.args([
            format!("--reuid={uid}"),
            format!("--regid={gid}"),
            "--clear-groups".into(),
        ]);
    }
    cmd.arg("--").arg(program).args(args);
    Proc::spawn_command(dir, name, cmd, envs)
        .map_err(|e| format!("cannot start {program} (through setpriv): {e}"))
}

/// Err naming the package when `program` is not on PATH.
fn need(program: &str, package: &str) -> Result<(), String> {
    let found = std::env::var_os("PATH")
        .is_some_and(|path| std::env::split_paths(&path).any(|d| d.join(program).is_file()));
    if found {
        Ok(())
    } else {
        Err(format!("`{program}` is not installed ({package})"))
    }
}

fn gst_has(element: &str) -> bool {
    Command::new("gst-inspect-1.0")
        .arg(element)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

/// A user's uid and gid.
fn user_ids(name: &str) -> Option<(u32, u32)> {
    let id = |flag: &str| -> Option<u32> {
        let out = Command::new("id").args([flag, name]).output().ok()?;
        String::from_utf8_lossy(&out.stdout).trim().parse().ok()
    };
    Some((id("-u")?, id("-g")?))
}

/// A process's user+system CPU time so far, in clock ticks.
pub fn cpu_ticks(pid: i32) -> Option<u64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let fields: Vec<&str> = stat.rsplit(')').next()?.split_whitespace().collect();
    Some(fields.get(11)?.parse::<u64>().ok()? + fields.get(12)?.parse::<u64>().ok()?)
}

pub fn ticks_per_second() -> f64 {
    // SAFETY: sysconf has no preconditions.
    unsafe { libc::sysconf(libc::_SC_CLK_TCK) as f64 }
}

/// A process's user+system CPU seconds so far (children excluded).
pub fn cpu_seconds(pid: i32) -> f64 {
    cpu_ticks(pid).unwrap_or(0) as f64 / ticks_per_second()
}

/// (pid, parent pid, command name) of every process.
fn processes() -> Vec<(i32, i32, String)> {
    let Ok(dir) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    dir.filter_map(|e| {
        let pid: i32 = e.ok()?.file_name().to_str()?.parse().ok()?;
        let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
        let (head, rest) = stat.rsplit_once(')')?;
        let comm = head.split_once('(')?.1.to_string();
        let ppid = rest.split_whitespace().nth(1)?.parse().ok()?;
        Some((pid, ppid, comm))
    })
    .collect()
}

/// `roots` and all their descendants, with their command names.
pub fn process_tree(roots: &[i32]) -> Vec<(i32, String)> {
    let all = processes();
    let mut tree: Vec<(i32, String)> = all
        .iter()
        .filter(|(p, _, _)| roots.contains(p))
        .map(|(p, _, c)| (*p, c.clone()))
        .collect();
    let mut i = 0;
    while i < tree.len() {
        let parent = tree[i].0;
        for (p, pp, c) in &all {
            if *pp == parent && !tree.iter().any(|(t, _)| t == p) {
                tree.push((*p, c.clone()));
            }
        }
        i += 1;
    }
    tree
}

/// The ffmpeg processes below `pid` (livestreamd's encoders).
pub fn ffmpeg_below(pid: i32) -> Vec<i32> {
    process_tree(&[pid])
        .into_iter()
        .filter(|(p, c)| *p != pid && c == "ffmpeg")
        .map(|(p, _)| p)
        .collect()
}

/// CPU used by a set of processes over a window, sampled: each process
/// counts from the first sample that saw it (from 0 if it started since).
pub struct CpuMeter {
    first: HashMap<i32, u64>,
    last: HashMap<i32, u64>,
    started: Instant,
}

impl CpuMeter {
    pub fn start(pids: &[i32]) -> CpuMeter {
        let first: HashMap<i32, u64> = pids
            .iter()
            .filter_map(|&p| Some((p, cpu_ticks(p)?)))
            .collect();
        CpuMeter {
            last: first.clone(),
            first,
            started: Instant::now(),
        }
    }

    /// Notes the processes now in the set (old ones keep their last figure).
    pub fn sample(&mut self, pids: &[i32]) {
        for &p in pids {
            if let Some(t) = cpu_ticks(p) {
                self.first.entry(p).or_insert(0);
                self.last.insert(p, t);
            }
        }
    }

    /// CPU seconds of `pid` (or of all, None) since the start.
    pub fn seconds(&self, pid: Option<i32>) -> f64 {
        let ticks: u64 = self
            .last
            .iter()
            .filter(|(p, _)| pid.map_or(true, |q| q == **p))
            .map(|(p, t)| t.saturating_sub(self.first[p]))
            .sum();
        ticks as f64 / ticks_per_second()
    }

    /// Percent of one core, of `pid` or of all.
    pub fn percent(&self, pid: Option<i32>) -> f64 {
        100.0 * self.seconds(pid) / self.started.elapsed().as_secs_f64().max(1e-3)
    }
}

/// The 1-, 5- and 15-minute load averages.
pub fn load_average() -> String {
    let text = std::fs::read_to_string("/proc/loadavg").unwrap_or_default();
    text.split_whitespace()
        .take(3)
        .collect::<Vec<_>>()
        .join(" ")
}

static INTERRUPTED: AtomicBool = AtomicBool::new(false);

extern "C" fn on_signal(_: libc::c_int) {
    INTERRUPTED.store(true, Ordering::SeqCst);
}

/// From now on Ctrl-C (or SIGTERM) makes `sleep_until` panic, so that every
/// process, namespace and file the benchmark made is removed on the way out.
pub fn stop_on_interrupt() {
    // SAFETY: the handler only stores to an atomic.
    unsafe {
        libc::signal(libc::SIGINT, on_signal as *const () as libc::sighandler_t);
        libc::signal(libc::SIGTERM, on_signal as *const () as libc::sighandler_t);
    }
}

/// Sleeps until `deadline`; panics (cleaning up on the way) on Ctrl-C.
pub fn sleep_until(deadline: Instant) {
    while Instant::now() < deadline {
        assert!(
            !INTERRUPTED.load(Ordering::SeqCst),
            "interrupted: cleaning up"
        );
        std::thread::sleep(
            deadline
                .saturating_duration_since(Instant::now())
                .min(Duration::from_millis(100)),
        );
    }
}

/// The short commit of the work tree, `+` when it has changes.
pub fn git_commit() -> String {
    let git = |args: &[&str]| {
        Command::new("git")
            .args(args)
            .current_dir(env!("CARGO_MANIFEST_DIR"))
            .output()
            .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
            .unwrap_or_default()
    };
    let commit = git(&["rev-parse", "--short", "HEAD"]);
    let dirty = !git(&["status", "--porcelain", "--", "src"]).is_empty();
    format!("{commit}{}", if dirty { "+ (src changed)" } else { "" })
}

/// What a `Monitor` saw.
#[derive(Default)]
pub struct Watched {
    /// CPU of the system's processes (all of them, and each by pid).
    pub cpu: Option<CpuMeter>,
    /// Most ffmpeg processes below the daemon at one time (its encoders).
    pub max_encoders: usize,
    /// Every ffmpeg pid seen below the daemon.
    pub encoders: Vec<i32>,
    /// (seconds since the epoch, `/status`) every half second, livestreamd only.
    pub status: Vec<(f64, Value)>,
}

/// Samples a running system every half second on a thread: the CPU of its
/// process tree, livestreamd's encoders (ffmpeg processes below it) and its
/// `/status` (also appended to `jsonl`). Nothing here measures the phones.
pub fn monitor(
    roots: Vec<i32>,
    daemon: Option<u16>,
    epoch: Instant,
    jsonl: PathBuf,
) -> Worker<Watched> {
    let start = Watched {
        cpu: Some(CpuMeter::start(
            &process_tree(&roots).iter().map(|p| p.0).collect::<Vec<_>>(),
        )),
        ..Watched::default()
    };
    Worker::start(start, move |data, stop| {
        let mut file = std::fs::File::create(&jsonl).ok();
        while !stop.load(Ordering::Relaxed) {
            let tree = process_tree(&roots);
            let pids: Vec<i32> = tree.iter().map(|p| p.0).collect();
            let encoders: Vec<i32> = tree
                .iter()
                .filter(|(p, c)| daemon.is_some() && !roots.contains(p) && c == "ffmpeg")
                .map(|p| p.0)
                .collect();
            let status = daemon.and_then(|port| {
                let r = http_get(port, "/status").ok()?;
                serde_json::from_slice::<Value>(&r.body).ok()
            });
            let now = epoch.elapsed().as_secs_f64();
            let mut g = data.lock().unwrap();
            if let Some(cpu) = g.cpu.as_mut() {
                cpu.sample(&pids);
            }
            g.max_encoders = g.max_encoders.max(encoders.len());
            for e in encoders {
                if !g.encoders.contains(&e) {
                    g.encoders.push(e);
                }
            }
            if let Some(v) = status {
                if let Some(f) = file.as_mut() {
                    let _ = writeln!(f, "{{\"t\":{now:.3},\"status\":{v}}}");
                }
                g.status.push((now, v));
            }
            drop(g);
            let next = Instant::now() + Duration::from_millis(500);
            while Instant::now() < next && !stop.load(Ordering::Relaxed) {
                std::thread::sleep(Duration::from_millis(50));
            }
        }
    })
}

/// The options both benchmarks take after `--`: `--camera WxH@FPS`,
/// `--kbps N`, `--bin PATH` (another livestreamd build), `--no-record`
/// (print the report, leave benches/RESULTS.md alone). The rest is the
/// benchmark's own.
pub struct BenchArgs {
    pub camera: CameraSpec,
    pub bin: PathBuf,
    pub record: bool,
    /// Everything after `--`, for the report's command line.
    pub text: String,
    pub rest: Vec<String>,
}

impl BenchArgs {
    pub fn parse() -> Result<BenchArgs, String> {
        // cargo bench passes --bench to a benchmark without the test harness.
        let raw: Vec<String> = std::env::args()
            .skip(1)
            .filter(|a| a != "--bench")
            .collect();
        let (mut camera, mut kbps, mut bin, mut record) = (None, None, PathBuf::from(BIN), true);
        let mut rest = Vec::new();
        let mut it = raw.iter();
        while let Some(arg) = it.next() {
            let mut value = || it.next().cloned().ok_or(format!("{arg} needs a value"));
            match arg.as_str() {
                "--camera" => camera = Some(value()?),
                "--kbps" => kbps = Some(value()?.parse().map_err(|_| "--kbps N")?),
                "--bin" => bin = PathBuf::from(value()?),
                "--no-record" => record = false,
                _ => rest.push(arg.clone()),
            }
        }
        let camera = match (camera, kbps) {
            (None, None) => CameraSpec::default(),
            (c, k) => CameraSpec::parse(c.as_deref().unwrap_or("960x540@30"), k)?,
        };
        Ok(BenchArgs {
            camera,
            bin,
            record,
            text: raw.join(" "),
            rest,
        })
    }

    /// The command that ran, for the report.
    pub fn command(&self, bench: &str) -> String {
        if self.text.is_empty() {
            format!("cargo bench --bench {bench}")
        } else {
            format!("cargo bench --bench {bench} -- {}", self.text)
        }
    }

    /// Appends the report to benches/RESULTS.md (or, with --no-record, only
    /// prints it); a copy goes to `dir/report.md` either way.
    pub fn report(&self, dir: &Path, report: &str) {
        std::fs::write(dir.join("report.md"), report).unwrap();
        if self.record {
            record_bench(report);
        } else {
            print!("{report}");
            eprintln!(
                "(not recorded: --no-record; also in {})",
                dir.join("report.md").display()
            );
        }
    }
}

/// Whether `bin`'s `check-config` takes a per-viewer config with a
/// passthrough top rung (the build of issue 13); Err with its complaint.
pub fn per_viewer_build(bin: &Path, camera: &CameraSpec, dir: &Path) -> Result<(), String> {
    let setup = DaemonSetup {
        name: "probe".into(),
        adapt: "policy = \"per-viewer\"".into(),
        top: Top::Passthrough,
    };
    let launch = Launch {
        dir,
        camera,
        source_port: 1,
        port: 1,
        bin,
    };
    let path = dir.join("probe.toml");
    std::fs::write(&path, daemon_config(&setup, &launch, true)).unwrap();
    check_config(bin, &path)
}
