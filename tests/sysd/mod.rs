//! Helpers for tests that run the real daemon binary on loopback.
#![allow(dead_code)]

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream, UdpSocket};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

pub const BIN: &str = env!("CARGO_BIN_EXE_livestreamd");

/// A free loopback TCP port (a short race with other processes is accepted).
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

/// A temporary directory removed on drop.
pub struct TempDir(pub PathBuf);

impl TempDir {
    pub fn new(tag: &str) -> TempDir {
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .subsec_nanos();
        let d =
            std::env::temp_dir().join(format!("livestreamd-{tag}-{}-{nanos}", std::process::id()));
        std::fs::create_dir_all(&d).unwrap();
        TempDir(d)
    }
    pub fn path(&self, name: &str) -> PathBuf {
        self.0.join(name)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// A small config on loopback ports: one 320x180 rung, fast x264.
pub fn config_text(udp: u16, http: u16, max_viewers: usize) -> String {
    format!(
        r#"[source]
url = "udp://127.0.0.1:{udp}"

[encoder]
preset = "ultrafast"

[[ladder]]
width = 320
height = 180
fps = 15
bitrate_kbps = 300

[server]
listen = "127.0.0.1:{http}"
max_viewers = {max_viewers}
"#
    )
}

/// The daemon as a child process; killed (with its ffmpeg children, through
/// their parent-death signal) when dropped. Its stderr is collected.
pub struct Daemon {
    pub child: Child,
    pub stderr: Arc<Mutex<String>>,
}

impl Daemon {
    pub fn spawn(args: &[&str], envs: &[(&str, &str)]) -> Daemon {
        let mut cmd = Command::new(BIN);
        cmd.args(args)
            .env("RUST_LOG", "info")
            .env_remove("NOTIFY_SOCKET")
            .env_remove("WATCHDOG_USEC")
            .env_remove("WATCHDOG_PID")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped());
        for (k, v) in envs {
            cmd.env(k, v);
        }
        let mut child = cmd.spawn().expect("start livestreamd");
        let stderr = Arc::new(Mutex::new(String::new()));
        let pipe = child.stderr.take().unwrap();
        let sink = stderr.clone();
        std::thread::spawn(move || {
            for line in BufReader::new(pipe).lines() {
                let Ok(line) = line else { break };
                eprintln!("[daemon] {line}");
                let mut s = sink.lock().unwrap();
                s.push_str(&line);
                s.push('\n');
            }
        });
        Daemon { child, stderr }
    }

    pub fn pid(&self) -> i32 {
        self.child.id() as i32
    }

    pub fn signal(&self, sig: libc::c_int) {
        // SAFETY: plain kill(2) on our own child.
        assert_eq!(unsafe { libc::kill(self.pid(), sig) }, 0);
    }

    pub fn stderr(&self) -> String {
        self.stderr.lock().unwrap().clone()
    }

    /// Waits until stderr contains `needle`.
    pub fn wait_for_log(&self, needle: &str, timeout: Duration) -> bool {
        let end = Instant::now() + timeout;
        while Instant::now() < end {
            if self.stderr().contains(needle) {
                return true;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        false
    }

    /// Waits for the exit status, up to `timeout`.
    pub fn wait_exit(&mut self, timeout: Duration) -> Option<std::process::ExitStatus> {
        let end = Instant::now() + timeout;
        while Instant::now() < end {
            if let Some(s) = self.child.try_wait().unwrap() {
                return Some(s);
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        None
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        if self.child.try_wait().ok().flatten().is_none() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

/// GET `path`; returns (status code, body). `Connection: close` responses only.
pub fn http_get(port: u16, path: &str) -> std::io::Result<(u16, String)> {
    let mut s = TcpStream::connect(("127.0.0.1", port))?;
    s.set_read_timeout(Some(Duration::from_secs(5)))?;
    write!(s, "GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")?;
    let mut buf = String::new();
    s.read_to_string(&mut buf)?;
    let code = buf
        .split_whitespace()
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or(0);
    let body = buf
        .split_once("\r\n\r\n")
        .map_or("", |(_, b)| b)
        .to_string();
    Ok((code, body))
}

/// Polls `/status` until the encoder is running and output flows.
pub fn wait_streaming(port: u16, timeout: Duration) -> Option<serde_json::Value> {
    let end = Instant::now() + timeout;
    while Instant::now() < end {
        if let Ok((200, body)) = http_get(port, "/status") {
            let v: serde_json::Value = serde_json::from_str(&body).unwrap();
            let running = v["encoder"]["pid"].is_number();
            let flowing = v["hub"]["last_input_age_ms"]
                .as_u64()
                .is_some_and(|a| a < 2000);
            if running && flowing {
                return Some(v);
            }
        }
        std::thread::sleep(Duration::from_millis(200));
    }
    None
}

/// An open `/stream.ts` connection: the response head, then TS bytes.
pub struct Viewer {
    pub sock: TcpStream,
    pub head: String,
}

impl Viewer {
    pub fn connect(port: u16) -> std::io::Result<Viewer> {
        let mut sock = TcpStream::connect(("127.0.0.1", port))?;
        sock.set_read_timeout(Some(Duration::from_secs(10)))?;
        write!(sock, "GET /stream.ts HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")?;
        let mut head = Vec::new();
        let mut byte = [0u8; 1];
        while !head.ends_with(b"\r\n\r\n") {
            if sock.read(&mut byte)? == 0 {
                break;
            }
            head.push(byte[0]);
        }
        Ok(Viewer {
            sock,
            head: String::from_utf8_lossy(&head).into_owned(),
        })
    }

    pub fn status(&self) -> u16 {
        self.head
            .split_whitespace()
            .nth(1)
            .and_then(|c| c.parse().ok())
            .unwrap_or(0)
    }

    /// Reads at least `n` bytes of stream; returns how many arrived.
    pub fn read_at_least(&mut self, n: usize) -> usize {
        let mut got = 0;
        let mut buf = [0u8; 16384];
        while got < n {
            match self.sock.read(&mut buf) {
                Ok(0) | Err(_) => break,
                Ok(k) => got += k,
            }
        }
        got
    }
}

/// Whether a process still exists (and is not a zombie we could ignore).
pub fn process_alive(pid: u64) -> bool {
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        Err(_) => false,
        Ok(stat) => {
            // The state follows the parenthesised command name.
            let state = stat.rsplit_once(") ").map(|(_, r)| r.chars().next());
            !matches!(state, Some(Some('Z')) | Some(Some('X')))
        }
    }
}

/// The pids of the encoder and the demo camera from a `/status` document.
pub fn child_pids(status: &serde_json::Value) -> Vec<u64> {
    [&status["encoder"]["pid"], &status["demo_source"]["pid"]]
        .into_iter()
        .filter_map(|p| p.as_u64())
        .collect()
}

pub fn write(path: &Path, text: &str) {
    std::fs::write(path, text).unwrap();
}
