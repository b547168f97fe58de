//! `livestreamd fake-gopro`: an emulated GoPro for tests and demos.
//!
//! It serves the camera's HTTP endpoints (legacy gpControl or Open GoPro), and only after the
//! start command does it send H.264 in MPEG-TS over UDP (a supervised ffmpeg test pattern) to
//! the host that asked. Like a real camera it stops sending when the keep-alives stop for longer
//! than `--keepalive-timeout`. Every HTTP request, every datagram it receives and every change of
//! its own state is appended to a JSON-lines record, so tests can assert the protocol.
//!
//! Test hooks on its HTTP port: `POST /_test/pause?s=N` drops its video for N seconds (the
//! encoder keeps running, as when the Wi-Fi drops), `GET /_test/state` shows its state.

use crate::camera::control::LEGACY_KEEPALIVE;
use crate::camera::demo::{self, DemoSource};
use crate::supervise::{self, Backoff, SharedInfo, Spec};
use log::{info, warn};
use serde_json::{json, Value};
use std::io::Write;
use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream, UdpSocket};
use tokio::signal::unix::{signal, SignalKind};
use tokio::sync::watch;
use tokio::task::JoinHandle;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Legacy,
    OpenGoPro,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Options {
    pub kind: Kind,
    pub http: SocketAddr,
    pub record: PathBuf,
    /// Where the video goes on the requesting host, unless the request names a port.
    pub udp_port: u16,
    /// The UDP port the camera hears keep-alives on and sends its video from.
    pub keepalive_port: u16,
    /// Silence of keep-alives after which the camera stops streaming.
    pub keepalive_timeout: Duration,
    pub source: DemoSource,
    pub ffmpeg: PathBuf,
}

/// Parses the arguments after `fake-gopro`.
pub fn parse_args(args: &[String]) -> Result<Options, String> {
    let mut kind = None;
    let mut http = None;
    let mut record = None;
    let mut udp_port = 8554u16;
    let mut keepalive_port = 8554u16;
    // No official figure for how long a GoPro keeps streaming without keep-alives; clients
    // send one every 2.5 s (legacy) or 3 s (Open GoPro's advice), so a camera that waits
    // for two missed ones plus slack is a fair, strict model.
    let mut keepalive_timeout = Duration::from_secs(6);
    let mut source = DemoSource::default();
    let mut ffmpeg = PathBuf::from("ffmpeg");
    let mut it = args.iter();
    while let Some(arg) = it.next() {
        let mut value = || it.next().ok_or(format!("{arg} needs a value"));
        match arg.as_str() {
            "--kind" => {
                kind = Some(match value()?.as_str() {
                    "legacy" | "gopro-legacy" => Kind::Legacy,
                    "open-gopro" => Kind::OpenGoPro,
                    other => return Err(format!("--kind `{other}`: legacy or open-gopro")),
                })
            }
            "--http" => {
                let v = value()?;
                http = Some(
                    v.parse::<SocketAddr>()
                        .map_err(|_| format!("--http `{v}`: expected IP:PORT"))?,
                );
            }
            "--record" => record = Some(PathBuf::from(value()?)),
            "--udp-port" => udp_port = parse_port(arg, value()?)?,
            "--keepalive-port" => keepalive_port = parse_port(arg, value()?)?,
            "--keepalive-timeout" => {
                let v = value()?;
                let s: f64 = v
                    .parse()
                    .ok()
                    .filter(|s: &f64| s.is_finite() && *s > 0.0)
                    .ok_or(format!("--keepalive-timeout `{v}`: seconds above 0"))?;
                keepalive_timeout = Duration::from_secs_f64(s);
            }
            "--size" => {
                let v = value()?;
                let (w, h) = v
                    .split_once('x')
                    .ok_or(format!("--size `{v}`: expected WxH"))?;
                source.width = w.parse().map_err(|_| format!("--size `{v}`: bad width"))?;
                source.height = h.parse().map_err(|_| format!("--size `{v}`: bad height"))?;
            }
            "--fps" => {
                let v = value()?;
                source.fps = v
                    .parse()
                    .map_err(|_| format!("--fps `{v}`: not a number"))?;
            }
            "--ffmpeg" => ffmpeg = PathBuf::from(value()?),
            _ => return Err(format!("unexpected argument `{arg}` for `fake-gopro`")),
        }
    }
    Ok(Options {
        kind: kind.ok_or("fake-gopro needs --kind legacy|open-gopro")?,
        http: http.ok_or("fake-gopro needs --http ADDR:PORT")?,
        record: record.ok_or("fake-gopro needs --record FILE")?,
        udp_port,
        keepalive_port,
        keepalive_timeout,
        source,
        ffmpeg,
    })
}

fn parse_port(arg: &str, v: &str) -> Result<u16, String> {
    v.parse::<u16>()
        .ok()
        .filter(|p| *p != 0)
        .ok_or(format!("{arg} `{v}`: expected a port from 1 to 65535"))
}

fn unix_now() -> f64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs_f64())
        .unwrap_or(0.0)
}

/// The JSON-lines record: one object per line, each with `t` (unix seconds) and `type`.
struct Recorder {
    file: Mutex<std::fs::File>,
}

impl Recorder {
    fn write(&self, mut entry: Value) {
        entry["t"] = json!(unix_now());
        let mut line = entry.to_string();
        line.push('\n');
        let mut f = self.file.lock().unwrap();
        if let Err(e) = f.write_all(line.as_bytes()) {
            warn!("fake-gopro: cannot write the record: {e}");
        }
    }
}

/// What the camera is doing.
struct State {
    /// Where the live view goes while the camera streams.
    target: Option<SocketAddr>,
    /// The last keep-alive (or start command), for the keep-alive watchdog.
    last_keepalive: Instant,
    paused_until: Option<Instant>,
    /// Webcam mode's state per the Open GoPro webcam status codes (1 idle, 2 streaming).
    webcam: bool,
}

struct Cam {
    opts: Options,
    record: Recorder,
    state: Mutex<State>,
}

impl Cam {
    fn event(&self, name: &str, detail: Value) {
        self.record
            .write(json!({"type": "event", "event": name, "detail": detail}));
    }

    fn start(&self, to: SocketAddr, webcam: bool) {
        let mut s = self.state.lock().unwrap();
        s.last_keepalive = Instant::now();
        s.webcam = webcam;
        if s.target != Some(to) {
            info!("fake-gopro: streaming to udp://{to}");
            s.target = Some(to);
            drop(s);
            self.event("stream_start", json!({"to": to.to_string()}));
        }
    }

    fn stop(&self, reason: &str) {
        let mut s = self.state.lock().unwrap();
        if let Some(to) = s.target.take() {
            s.webcam = false;
            drop(s);
            info!("fake-gopro: stopped streaming to udp://{to}: {reason}");
            self.event(
                "stream_stop",
                json!({"to": to.to_string(), "reason": reason}),
            );
        }
    }

    fn keepalive(&self) {
        self.state.lock().unwrap().last_keepalive = Instant::now();
    }
}

/// Runs the emulator until SIGTERM or SIGINT; returns the exit code.
pub async fn run(opts: Options) -> i32 {
    let file = match std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(&opts.record)
    {
        Ok(f) => f,
        Err(e) => {
            eprintln!(
                "fake-gopro: cannot open the record {}: {e}",
                opts.record.display()
            );
            return 1;
        }
    };
    let listener = match TcpListener::bind(opts.http).await {
        Ok(l) => l,
        Err(e) => {
            eprintln!("fake-gopro: cannot serve HTTP on {}: {e}", opts.http);
            return 1;
        }
    };
    // The camera's own UDP port: keep-alives arrive here and the video leaves from here.
    let udp_addr = SocketAddr::new(opts.http.ip(), opts.keepalive_port);
    let camera_udp = match UdpSocket::bind(udp_addr).await {
        Ok(s) => Arc::new(s),
        Err(e) => {
            eprintln!("fake-gopro: cannot bind udp://{udp_addr}: {e}");
            return 1;
        }
    };
    // ffmpeg sends its MPEG-TS here; the relay forwards it unless paused.
    let loopback = match opts.http.ip() {
        IpAddr::V6(_) => "[::1]:0",
        IpAddr::V4(_) => "127.0.0.1:0",
    };
    let encoder_in = match UdpSocket::bind(loopback).await {
        Ok(s) => s,
        Err(e) => {
            eprintln!("fake-gopro: cannot bind the relay socket: {e}");
            return 1;
        }
    };
    let encoder_to = encoder_in
        .local_addr()
        .expect("bound socket has an address");
    let cam = Arc::new(Cam {
        opts: opts.clone(),
        record: Recorder {
            file: Mutex::new(file),
        },
        state: Mutex::new(State {
            target: None,
            last_keepalive: Instant::now(),
            paused_until: None,
            webcam: false,
        }),
    });
    cam.event(
        "listening",
        json!({"kind": match opts.kind { Kind::Legacy => "legacy", Kind::OpenGoPro => "open-gopro" },
               "http": opts.http.to_string(), "udp": udp_addr.to_string()}),
    );
    info!(
        "fake-gopro: {:?} camera on http://{} and udp://{udp_addr}",
        opts.kind, opts.http
    );
    let http_task = tokio::spawn(serve(listener, cam.clone()));
    let udp_task = tokio::spawn(hear_udp(camera_udp.clone(), cam.clone()));
    let relay_task = tokio::spawn(relay(encoder_in, camera_udp, cam.clone()));

    let mut sigterm = signal(SignalKind::terminate()).expect("SIGTERM handler");
    let mut sigint = signal(SignalKind::interrupt()).expect("SIGINT handler");
    let mut encoder: Option<(watch::Sender<bool>, JoinHandle<()>)> = None;
    let mut tick = tokio::time::interval(Duration::from_millis(100));
    loop {
        tokio::select! {
            _ = sigterm.recv() => break,
            _ = sigint.recv() => break,
            _ = tick.tick() => {}
        }
        // The keep-alive watchdog, and the end of a pause.
        let (expired, pause_over) = {
            let mut s = cam.state.lock().unwrap();
            let expired =
                s.target.is_some() && s.last_keepalive.elapsed() > cam.opts.keepalive_timeout;
            let pause_over = s.paused_until.is_some_and(|t| Instant::now() >= t);
            if pause_over {
                s.paused_until = None;
            }
            (expired, pause_over)
        };
        if expired {
            cam.stop("keep-alive timeout");
        }
        if pause_over {
            info!("fake-gopro: pause over");
            cam.event("pause_end", json!({}));
        }
        // Run the encoder exactly while the camera streams.
        let streaming = cam.state.lock().unwrap().target.is_some();
        match (&encoder, streaming) {
            (None, true) => {
                let (tx, rx) = watch::channel(false);
                let spec = Spec {
                    name: "fake-gopro-encoder".into(),
                    program: opts.ffmpeg.clone(),
                    args: demo::ffmpeg_args(&opts.source, encoder_to),
                    pipe_stdin: false,
                    pipe_stdout: false,
                    backoff: Backoff::new(
                        Duration::from_millis(500),
                        Duration::from_secs(5),
                        Duration::from_secs(30),
                    ),
                    stop_grace: Duration::from_secs(2),
                    watchdog: None,
                    redact: Vec::new(),
                };
                let info: SharedInfo = Default::default();
                let task = tokio::spawn(supervise::supervise(spec, info, rx, |_| {}));
                encoder = Some((tx, task));
            }
            (Some(_), false) => {
                if let Some((tx, task)) = encoder.take() {
                    let _ = tx.send(true);
                    let _ = task.await;
                }
            }
            _ => {}
        }
    }
    info!("fake-gopro: stopping");
    if let Some((tx, task)) = encoder.take() {
        let _ = tx.send(true);
        let _ = task.await;
    }
    cam.event("exit", json!({}));
    http_task.abort();
    udp_task.abort();
    relay_task.abort();
    0
}

/// Forwards the encoder's datagrams from the camera's UDP port to the viewer, unless paused.
async fn relay(from_encoder: UdpSocket, out: Arc<UdpSocket>, cam: Arc<Cam>) {
    let mut buf = vec![0u8; 65536];
    loop {
        let n = match from_encoder.recv(&mut buf).await {
            Ok(n) => n,
            Err(_) => {
                tokio::time::sleep(Duration::from_millis(50)).await;
                continue;
            }
        };
        let target = {
            let s = cam.state.lock().unwrap();
            let paused = s.paused_until.is_some_and(|t| Instant::now() < t);
            s.target.filter(|_| !paused)
        };
        if let Some(to) = target {
            // A viewer that is not listening yet is the viewer's problem, as with a real camera.
            let _ = out.send_to(&buf[..n], to).await;
        }
    }
}

/// Records every datagram on the camera's UDP port; the legacy keep-alive feeds the watchdog.
async fn hear_udp(sock: Arc<UdpSocket>, cam: Arc<Cam>) {
    let mut buf = vec![0u8; 2048];
    loop {
        match sock.recv_from(&mut buf).await {
            Ok((n, from)) => {
                let data = &buf[..n];
                cam.record.write(json!({
                    "type": "udp",
                    "from": from.to_string(),
                    "data": String::from_utf8_lossy(data),
                }));
                if cam.opts.kind == Kind::Legacy && data == LEGACY_KEEPALIVE {
                    cam.keepalive();
                }
            }
            Err(_) => tokio::time::sleep(Duration::from_millis(50)).await,
        }
    }
}

async fn serve(listener: TcpListener, cam: Arc<Cam>) {
    loop {
        match listener.accept().await {
            Ok((sock, peer)) => {
                tokio::spawn(handle(sock, peer, cam.clone()));
            }
            Err(_) => tokio::time::sleep(Duration::from_millis(100)).await,
        }
    }
}

/// A parsed request: method, path, and the query's pairs in order.
#[derive(Debug, PartialEq)]
pub struct Request {
    pub method: String,
    pub path: String,
    pub query: String,
}

impl Request {
    pub fn param(&self, name: &str) -> Option<&str> {
        self.query
            .split('&')
            .filter_map(|kv| kv.split_once('='))
            .find(|(k, _)| *k == name)
            .map(|(_, v)| v)
    }
}

async fn read_request(sock: &mut TcpStream) -> Option<Request> {
    let mut buf = Vec::with_capacity(1024);
    let mut tmp = [0u8; 1024];
    loop {
        let n = sock.read(&mut tmp).await.ok()?;
        if n == 0 || buf.len() > 16 * 1024 {
            return None;
        }
        buf.extend_from_slice(&tmp[..n]);
        let mut headers = [httparse::EMPTY_HEADER; 32];
        let mut req = httparse::Request::new(&mut headers);
        match req.parse(&buf) {
            Ok(httparse::Status::Complete(_)) => {
                let target = req.path.unwrap_or("/");
                let (path, query) = target.split_once('?').unwrap_or((target, ""));
                return Some(Request {
                    method: req.method.unwrap_or("").to_string(),
                    path: path.to_string(),
                    query: query.to_string(),
                });
            }
            Ok(httparse::Status::Partial) => continue,
            Err(_) => return None,
        }
    }
}

async fn handle(mut sock: TcpStream, peer: SocketAddr, cam: Arc<Cam>) {
    let req = match tokio::time::timeout(Duration::from_secs(5), read_request(&mut sock)).await {
        Ok(Some(r)) => r,
        _ => return,
    };
    let (status, body) = route(&cam, &req, peer);
    cam.record.write(json!({
        "type": "http",
        "method": req.method,
        "path": req.path,
        "query": req.query,
        "peer": peer.to_string(),
        "status": status,
    }));
    let reason = match status {
        200 => "OK",
        400 => "Bad Request",
        404 => "Not Found",
        _ => "Error",
    };
    let body = body.to_string();
    let head = format!(
        "HTTP/1.1 {status} {reason}\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
        body.len()
    );
    let _ = sock.write_all(head.as_bytes()).await;
    let _ = sock.write_all(body.as_bytes()).await;
    let _ = sock.shutdown().await;
}

/// The camera's answer to one request; starts and stops streaming as a side effect.
fn route(cam: &Cam, req: &Request, peer: SocketAddr) -> (u16, Value) {
    let to = |port: u16| SocketAddr::new(peer.ip(), port);
    let requested_port = |req: &Request| -> Result<u16, ()> {
        match req.param("port") {
            None => Ok(cam.opts.udp_port),
            Some(p) => p.parse::<u16>().ok().filter(|p| *p != 0).ok_or(()),
        }
    };
    match (cam.opts.kind, req.method.as_str(), req.path.as_str()) {
        (_, "POST", "/_test/pause") => {
            let secs: f64 = req.param("s").and_then(|s| s.parse().ok()).unwrap_or(10.0);
            cam.state.lock().unwrap().paused_until =
                Some(Instant::now() + Duration::from_secs_f64(secs.clamp(0.0, 3600.0)));
            info!("fake-gopro: pausing video for {secs} s");
            cam.event("pause", json!({"s": secs}));
            (200, json!({"paused_s": secs}))
        }
        (_, "GET", "/_test/state") => {
            let s = cam.state.lock().unwrap();
            (
                200,
                json!({
                    "streaming_to": s.target.map(|t| t.to_string()),
                    "paused": s.paused_until.is_some_and(|t| Instant::now() < t),
                    "keepalive_age_s": s.last_keepalive.elapsed().as_secs_f64(),
                }),
            )
        }
        (Kind::Legacy, "GET", "/gp/gpControl/execute") => {
            match (req.param("p1"), req.param("c1")) {
                (Some("gpStream"), Some("restart")) => {
                    cam.start(to(cam.opts.udp_port), false);
                    (200, json!({}))
                }
                (Some("gpStream"), Some("stop")) => {
                    cam.stop("stop command");
                    (200, json!({}))
                }
                _ => (400, json!({"error": "unsupported gpControl command"})),
            }
        }
        (Kind::Legacy, "GET", "/gp/gpControl/status") => {
            let streaming = cam.state.lock().unwrap().target.is_some();
            (200, json!({"status": {"32": u8::from(streaming)}}))
        }
        (Kind::OpenGoPro, "GET", "/gopro/camera/stream/start") => match requested_port(req) {
            Ok(port) => {
                cam.start(to(port), false);
                (200, json!({}))
            }
            Err(()) => (400, json!({"error": "bad port"})),
        },
        (Kind::OpenGoPro, "GET", "/gopro/camera/stream/stop") => {
            cam.stop("preview stream stop");
            (200, json!({}))
        }
        (Kind::OpenGoPro, "GET", "/gopro/webcam/start") => {
            let res_ok = req
                .param("res")
                .map_or(true, |r| matches!(r, "4" | "7" | "12"));
            let fov_ok = req
                .param("fov")
                .map_or(true, |f| matches!(f, "0" | "2" | "3" | "4"));
            let proto_ok = req
                .param("protocol")
                .map_or(true, |p| matches!(p, "TS" | "RTSP"));
            match requested_port(req) {
                Ok(port) if res_ok && fov_ok && proto_ok => {
                    cam.start(to(port), true);
                    (200, json!({}))
                }
                // Webcam error 6: INVALID_PARAM.
                _ => (400, json!({"status": 1, "error": 6})),
            }
        }
        (Kind::OpenGoPro, "GET", "/gopro/webcam/stop" | "/gopro/webcam/exit") => {
            cam.stop(&format!(
                "webcam {}",
                req.path.rsplit('/').next().unwrap_or("")
            ));
            (200, json!({}))
        }
        (Kind::OpenGoPro, "GET", "/gopro/webcam/status") => {
            let webcam = cam.state.lock().unwrap().webcam;
            (
                200,
                json!({"status": if webcam { 2 } else { 1 }, "error": 0}),
            )
        }
        (Kind::OpenGoPro, "GET", "/gopro/camera/keep_alive") => {
            cam.keepalive();
            (200, json!({}))
        }
        _ => (404, json!({"error": "not found"})),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(s: &str) -> Result<Options, String> {
        parse_args(&s.split_whitespace().map(String::from).collect::<Vec<_>>())
    }

    #[test]
    fn options_parse_with_defaults() {
        let o = args("--kind legacy --http 127.0.0.1:8080 --record r.jsonl").unwrap();
        assert_eq!(o.kind, Kind::Legacy);
        assert_eq!((o.udp_port, o.keepalive_port), (8554, 8554));
        assert_eq!(o.keepalive_timeout, Duration::from_secs(6));
        let o = args(
            "--kind open-gopro --http 127.0.0.1:1 --record r --udp-port 9 --keepalive-port 10 --keepalive-timeout 2.5 --size 320x180 --fps 15",
        )
        .unwrap();
        assert_eq!(o.kind, Kind::OpenGoPro);
        assert_eq!((o.udp_port, o.keepalive_port), (9, 10));
        assert_eq!(o.keepalive_timeout, Duration::from_millis(2500));
        assert_eq!(
            (o.source.width, o.source.height, o.source.fps),
            (320, 180, 15)
        );
    }

    #[test]
    fn bad_options_are_refused() {
        assert!(args("--http 127.0.0.1:1 --record r")
            .unwrap_err()
            .contains("--kind"));
        assert!(args("--kind hero --http 127.0.0.1:1 --record r").is_err());
        assert!(args("--kind legacy --http localhost --record r").is_err());
        assert!(args("--kind legacy --http 127.0.0.1:1 --record r --udp-port 0").is_err());
        assert!(
            args("--kind legacy --http 127.0.0.1:1 --record r --keepalive-timeout -1").is_err()
        );
        assert!(args("--kind legacy --http 127.0.0.1:1")
            .unwrap_err()
            .contains("--record"));
    }

    #[test]
    fn query_parameters_are_found_by_name() {
        let r = Request {
            method: "GET".into(),
            path: "/gopro/webcam/start".into(),
            query: "res=7&fov=4&port=9000".into(),
        };
        assert_eq!(r.param("res"), Some("7"));
        assert_eq!(r.param("port"), Some("9000"));
        assert_eq!(r.param("protocol"), None);
    }
}
