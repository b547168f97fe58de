//! Starts the real daemon (`livestreamd demo`, ffmpeg's test pattern as the
//! camera) on free loopback ports, and speaks raw HTTP to it.
#![allow(dead_code)]

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream, UdpSocket};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

pub struct Daemon {
    child: Child,
    pub addr: SocketAddr,
    dir: PathBuf,
}

fn free_tcp_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

fn free_udp_port() -> u16 {
    UdpSocket::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

impl Daemon {
    /// Starts the demo with a small two-rung ladder; `server_extra` is added to
    /// the `[server]` table (e.g. `max_viewers = 2`).
    pub fn start(name: &str, server_extra: &str) -> Daemon {
        let dir = std::env::temp_dir().join(format!("livestreamd-{name}-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let port = free_tcp_port();
        let config = format!(
            r#"[source]
url = "udp://127.0.0.1:{udp}"
[encoder]
preset = "ultrafast"
[[ladder]]
width = 320
height = 180
fps = 25
bitrate_kbps = 400
[[ladder]]
width = 256
height = 144
fps = 15
bitrate_kbps = 200
[server]
listen = "127.0.0.1:{port}"
{server_extra}
[log]
level = "debug"
"#,
            udp = free_udp_port()
        );
        let path = dir.join("livestreamd.toml");
        std::fs::write(&path, config).unwrap();
        let log = std::fs::File::create(dir.join("daemon.log")).unwrap();
        let child = Command::new(env!("CARGO_BIN_EXE_livestreamd"))
            .args(["demo", "--config"])
            .arg(&path)
            .args(["--size", "320x180", "--fps", "25"])
            .stdin(Stdio::null())
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .spawn()
            .expect("start livestreamd");
        let mut d = Daemon {
            child,
            addr: format!("127.0.0.1:{port}").parse().unwrap(),
            dir,
        };
        d.wait_healthy();
        d
    }

    fn wait_healthy(&mut self) {
        let deadline = Instant::now() + Duration::from_secs(30);
        while Instant::now() < deadline {
            if let Some(status) = self.child.try_wait().unwrap() {
                panic!("livestreamd exited early ({status}):\n{}", self.log());
            }
            if let Ok(r) = try_request(self.addr, b"GET /healthz HTTP/1.1\r\n\r\n") {
                if r.code == 200 {
                    return;
                }
            }
            std::thread::sleep(Duration::from_millis(200));
        }
        panic!("livestreamd never became healthy:\n{}", self.log());
    }

    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.join("daemon.log")).unwrap_or_default()
    }

    pub fn connect(&self) -> TcpStream {
        let s = TcpStream::connect(self.addr).unwrap();
        s.set_read_timeout(Some(Duration::from_secs(15))).unwrap();
        s
    }

    pub fn get(&self, path: &str) -> Response {
        request(
            self.addr,
            format!("GET {path} HTTP/1.1\r\nHost: test\r\n\r\n").as_bytes(),
        )
    }

    /// Opens `/stream.ts`, reads the head, and returns the socket for more reading.
    pub fn open_stream(&self) -> (u16, TcpStream, Vec<u8>) {
        let mut s = self.connect();
        s.write_all(b"GET /stream.ts HTTP/1.1\r\nHost: test\r\n\r\n")
            .unwrap();
        let (code, rest) = read_head(&mut s);
        (code, s, rest)
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        // SIGTERM, as systemd would; KILL only if it does not stop.
        unsafe {
            libc::kill(self.child.id() as i32, libc::SIGTERM);
        }
        let deadline = Instant::now() + Duration::from_secs(10);
        while Instant::now() < deadline {
            if let Ok(Some(_)) = self.child.try_wait() {
                let _ = std::fs::remove_dir_all(&self.dir);
                return;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
        eprintln!("livestreamd did not stop on SIGTERM:\n{}", self.log());
    }
}

pub struct Response {
    pub code: u16,
    pub head: String,
    pub body: Vec<u8>,
}

impl Response {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.head.lines().find_map(|l| {
            let (k, v) = l.split_once(':')?;
            k.trim().eq_ignore_ascii_case(name).then(|| v.trim())
        })
    }
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }
}

/// Reads up to the end of the response head; returns the status code and any body bytes read.
pub fn read_head(s: &mut TcpStream) -> (u16, Vec<u8>) {
    let mut buf = Vec::new();
    let mut tmp = [0u8; 4096];
    loop {
        let n = s.read(&mut tmp).expect("read the response head");
        assert!(
            n > 0,
            "closed before a response head: {:?}",
            String::from_utf8_lossy(&buf)
        );
        buf.extend_from_slice(&tmp[..n]);
        if let Some(end) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            let head = String::from_utf8_lossy(&buf[..end]).into_owned();
            let code = head.split(' ').nth(1).unwrap().parse().unwrap();
            return (code, buf[end + 4..].to_vec());
        }
    }
}

pub fn try_request(addr: SocketAddr, raw: &[u8]) -> std::io::Result<Response> {
    let mut s = TcpStream::connect(addr)?;
    s.set_read_timeout(Some(Duration::from_secs(15)))?;
    s.write_all(raw)?;
    let mut all = Vec::new();
    s.read_to_end(&mut all)?;
    let end = all
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .ok_or_else(|| std::io::Error::other(format!("no response head in {all:?}")))?;
    let head = String::from_utf8_lossy(&all[..end]).into_owned();
    let code = head
        .split(' ')
        .nth(1)
        .and_then(|c| c.parse().ok())
        .ok_or_else(|| std::io::Error::other(format!("bad status line: {head}")))?;
    Ok(Response {
        code,
        head,
        body: all[end + 4..].to_vec(),
    })
}

pub fn request(addr: SocketAddr, raw: &[u8]) -> Response {
    try_request(addr, raw).unwrap()
}
