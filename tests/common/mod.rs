//! Test harness: runs the real daemon binary on free loopback ports with the
//! real ffmpeg, and talks to it over real sockets.
#![allow(dead_code)] // each test file uses a different part of it

use serde_json::Value;
use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream, UdpSocket};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

pub const BIN: &str = env!("CARGO_BIN_EXE_livestreamd");

pub fn free_tcp_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

pub fn free_udp_port() -> u16 {
    UdpSocket::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// A fresh directory under the target dir, removed by nobody (inspect after a failure).
pub fn temp_dir(name: &str) -> PathBuf {
    let dir =
        PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join(format!("{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// Small, cheap rungs so tests run on two cores next to other work.
pub const SMALL_LADDER: &str = "
[[ladder]]
width = 320
height = 180
fps = 30
bitrate_kbps = 600

[[ladder]]
width = 160
height = 90
fps = 30
bitrate_kbps = 200
";

pub struct Ports {
    pub http: u16,
    pub source: u16,
}

impl Ports {
    pub fn new() -> Ports {
        Ports {
            http: free_tcp_port(),
            source: free_udp_port(),
        }
    }
}

/// A config on loopback ports; `extra` is appended verbatim.
pub fn write_config(dir: &Path, ports: &Ports, extra: &str) -> PathBuf {
    let text = format!(
        "[source]\nurl = \"udp://127.0.0.1:{}\"\n\n[encoder]\npreset = \"ultrafast\"\nrestart_initial_s = 0.3\n\n[server]\nlisten = \"127.0.0.1:{}\"\n{SMALL_LADDER}\n{extra}\n",
        ports.source, ports.http
    );
    let path = dir.join("livestreamd.toml");
    std::fs::write(&path, text).unwrap();
    path
}

/// The daemon under test; killed (with everything it started) when dropped.
pub struct Daemon {
    pub child: Child,
    pub http: u16,
    pub log: PathBuf,
}

impl Daemon {
    /// `livestreamd demo` with a small simulated camera.
    pub fn demo(dir: &Path, config: &Path, http: u16) -> Daemon {
        Daemon::start(
            dir,
            &[
                "demo",
                "--config",
                config.to_str().unwrap(),
                "--size",
                "320x180",
            ],
            http,
        )
    }

    pub fn start(dir: &Path, args: &[&str], http: u16) -> Daemon {
        let log = dir.join("daemon.log");
        let child = Command::new(BIN)
            .args(args)
            .env("RUST_LOG", "livestreamd=debug")
            .stdin(Stdio::null())
            .stdout(std::fs::File::create(dir.join("daemon.out")).unwrap())
            .stderr(std::fs::File::create(&log).unwrap())
            .spawn()
            .expect("start livestreamd");
        Daemon { child, http, log }
    }

    pub fn pid(&self) -> i32 {
        self.child.id() as i32
    }

    pub fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    pub fn status(&self) -> Option<Value> {
        let body = http_get(self.http, "/status").ok()?;
        serde_json::from_slice(&body.1).ok()
    }

    /// Polls `/status` until `pred` holds; panics with the log after `timeout`.
    pub fn wait_status(
        &self,
        what: &str,
        timeout: Duration,
        pred: impl Fn(&Value) -> bool,
    ) -> Value {
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(s) = self.status() {
                if pred(&s) {
                    return s;
                }
            }
            if Instant::now() > deadline {
                panic!(
                    "timed out waiting for {what}; status: {:?}\nlog:\n{}",
                    self.status(),
                    self.log_text()
                );
            }
            std::thread::sleep(Duration::from_millis(200));
        }
    }

    /// Waits until the encoder produces output viewers can join.
    pub fn wait_streaming(&self) -> Value {
        self.wait_status("encoded output", Duration::from_secs(30), |s| {
            s["hub"]["buffered_chunks"].as_u64().unwrap_or(0) > 10 && s["encoder"]["pid"].is_u64()
        })
    }

    pub fn signal(&self, sig: i32) {
        unsafe { libc::kill(self.pid(), sig) };
    }

    /// Waits for exit; None on timeout.
    pub fn wait_exit(&mut self, timeout: Duration) -> Option<std::process::ExitStatus> {
        let deadline = Instant::now() + timeout;
        while Instant::now() < deadline {
            if let Some(status) = self.child.try_wait().unwrap() {
                return Some(status);
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        None
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// True while `pid` is a live (non-zombie) process.
pub fn alive(pid: i64) -> bool {
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        Ok(stat) => {
            let state = stat
                .rsplit(')')
                .next()
                .and_then(|r| r.split_whitespace().next())
                .unwrap_or("");
            state != "Z" && state != "X"
        }
        Err(_) => false,
    }
}

/// Waits until none of `pids` is alive.
pub fn wait_gone(pids: &[i64], timeout: Duration) -> bool {
    let deadline = Instant::now() + timeout;
    while Instant::now() < deadline {
        if pids.iter().all(|p| !alive(*p)) {
            return true;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    false
}

/// Resident memory of `pid` in KiB.
pub fn rss_kib(pid: i32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.split_whitespace().next())
        .and_then(|v| v.parse().ok())
        .unwrap_or(0)
}

/// A one-shot HTTP request; returns (status code, body).
pub fn http_request(port: u16, raw: &str) -> std::io::Result<(u16, Vec<u8>)> {
    let mut s = TcpStream::connect(("127.0.0.1", port))?;
    s.set_read_timeout(Some(Duration::from_secs(10)))?;
    s.write_all(raw.as_bytes())?;
    let mut buf = Vec::new();
    s.read_to_end(&mut buf)?;
    let head_end = buf
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .map_or(buf.len(), |i| i + 4);
    let code = std::str::from_utf8(&buf[..head_end.min(buf.len())])
        .ok()
        .and_then(|h| h.split_whitespace().nth(1))
        .and_then(|c| c.parse().ok())
        .unwrap_or(0);
    Ok((code, buf[head_end..].to_vec()))
}

pub fn http_get(port: u16, path: &str) -> std::io::Result<(u16, Vec<u8>)> {
    http_request(port, &format!("GET {path} HTTP/1.1\r\nHost: test\r\n\r\n"))
}

/// An open `/stream.ts` connection whose body the test reads at will.
pub struct Viewer {
    pub sock: TcpStream,
    pub received: Vec<u8>,
}

impl Viewer {
    pub fn connect(port: u16) -> Viewer {
        Viewer::connect_with_rcvbuf(port, None)
    }

    /// `rcvbuf`: a small receive buffer makes a non-reading viewer stall quickly.
    pub fn connect_with_rcvbuf(port: u16, rcvbuf: Option<i32>) -> Viewer {
        let sock = TcpStream::connect(("127.0.0.1", port)).unwrap();
        if let Some(size) = rcvbuf {
            use std::os::fd::AsRawFd;
            unsafe {
                libc::setsockopt(
                    sock.as_raw_fd(),
                    libc::SOL_SOCKET,
                    libc::SO_RCVBUF,
                    &size as *const i32 as *const libc::c_void,
                    4,
                )
            };
        }
        let mut v = Viewer {
            sock,
            received: Vec::new(),
        };
        v.sock
            .write_all(b"GET /stream.ts HTTP/1.1\r\nHost: test\r\n\r\n")
            .unwrap();
        v.read_head();
        v
    }

    fn read_head(&mut self) {
        let mut head = Vec::new();
        let mut byte = [0u8; 1];
        while !head.ends_with(b"\r\n\r\n") {
            self.sock.read_exact(&mut byte).expect("response head");
            head.push(byte[0]);
        }
        assert!(
            head.starts_with(b"HTTP/1.1 200"),
            "{}",
            String::from_utf8_lossy(&head)
        );
    }

    /// Reads for `dur`; returns the bytes read in that time.
    pub fn read_for(&mut self, dur: Duration) -> usize {
        let deadline = Instant::now() + dur;
        let mut total = 0;
        let mut buf = vec![0u8; 65536];
        while Instant::now() < deadline {
            self.sock
                .set_read_timeout(Some(
                    deadline
                        .saturating_duration_since(Instant::now())
                        .max(Duration::from_millis(10)),
                ))
                .unwrap();
            match self.sock.read(&mut buf) {
                Ok(0) => break,
                Ok(n) => {
                    self.received.extend_from_slice(&buf[..n]);
                    total += n;
                }
                Err(e)
                    if matches!(
                        e.kind(),
                        std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                    ) => {}
                Err(e) => panic!("viewer read failed: {e}"),
            }
        }
        total
    }
}

/// Writes `bytes` to `dir/name` and returns ffprobe's CSV lines for the first
/// video stream with `entries` (e.g. `stream=width,height`), empty lines dropped.
pub fn ffprobe(
    dir: &Path,
    name: &str,
    bytes: &[u8],
    entries: &str,
    count_frames: bool,
) -> Vec<String> {
    let path = dir.join(name);
    std::fs::write(&path, bytes).unwrap();
    let mut cmd = Command::new("ffprobe");
    cmd.args(["-v", "quiet", "-select_streams", "v:0"]);
    if count_frames {
        cmd.arg("-count_frames");
    }
    let out = cmd
        .args(["-show_entries", entries, "-of", "csv=p=0"])
        .arg(&path)
        .output()
        .expect("run ffprobe");
    // A stream shows up once for its program and once by itself: the first is enough.
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .map(String::from)
        .collect()
}

/// ffprobe's view of the first video stream in `bytes`: (codec, width, height).
pub fn probe(dir: &Path, name: &str, bytes: &[u8]) -> (String, u32, u32) {
    let lines = ffprobe(dir, name, bytes, "stream=codec_name,width,height", false);
    let mut f = lines.first().map_or("", String::as_str).split(',');
    let codec = f.next().unwrap_or("").to_string();
    let w = f.next().and_then(|v| v.parse().ok()).unwrap_or(0);
    let h = f.next().and_then(|v| v.parse().ok()).unwrap_or(0);
    (codec, w, h)
}

/// Number of decoded video frames in `bytes`, by ffprobe.
pub fn count_frames(dir: &Path, name: &str, bytes: &[u8]) -> usize {
    let lines = ffprobe(dir, name, bytes, "stream=nb_read_frames", true);
    lines.first().and_then(|l| l.parse().ok()).unwrap_or(0)
}

/// Per-frame (pts seconds, width) of a capture.
pub fn frames(dir: &Path, name: &str, bytes: &[u8]) -> Vec<(f64, u32)> {
    ffprobe(dir, name, bytes, "frame=pts_time,width", false)
        .iter()
        .filter_map(|l| {
            let mut f = l.split(',');
            Some((f.next()?.parse().ok()?, f.next()?.parse().ok()?))
        })
        .collect()
}

pub mod netns;
pub mod scenario;
