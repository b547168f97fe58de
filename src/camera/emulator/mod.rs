//! `livestreamd fake-gopro`: an emulated GoPro for tests and demos.
//!
//! It serves the camera's HTTP API as its model has it (`answers`), and only after a start
//! command does it send its live view in MPEG-TS over UDP (a supervised ffmpeg test pattern:
//! H.264, or HEVC for HERO13's preview) to the host that asked. Every HTTP request, every datagram
//! it receives and every change of its own state is appended to a JSON-lines record, so tests can
//! assert the protocol. Faults for tests: `--refuse-starts`, `--drop-keepalives` and the
//! `/_test/*` hooks (see `args::help`).

pub mod answers;
pub mod args;
pub mod state;

pub use args::{help, parse_args, Options, Parsed};

use crate::camera::demo;
use crate::camera::emulator::answers::{answer, Answer};
use crate::camera::emulator::state::{Cam, Recorder};
use crate::camera::models::{Api, Codec};
use crate::http::request::read_request;
use crate::http::response::write;
use crate::supervise::{self, Backoff, SharedInfo, Spec};
use log::info;
use serde_json::json;
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;
use tokio::net::{TcpListener, TcpStream, UdpSocket};
use tokio::signal::unix::{signal, SignalKind};
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

/// The longest a request is left unanswered (a dropped keep-alive, a silent camera).
const HOLD_MAX: Duration = Duration::from_secs(30);

/// Runs the emulator until SIGTERM or SIGINT; returns the exit code.
pub async fn run(opts: Options) -> i32 {
    let record = match Recorder::open(&opts) {
        Ok(r) => r,
        Err(e) => {
            eprintln!("fake-gopro: {e}");
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
    let cam = Arc::new(Cam::new(opts.clone(), record));
    let m = opts.model;
    cam.event(
        "listening",
        json!({"model": m.id, "name": m.name, "api": m.api.name(),
               "transport": opts.transport.name(),
               "http": opts.http.to_string(), "udp": udp_addr.to_string()}),
    );
    info!(
        "fake-gopro: {} ({}, {}) camera on http://{} and udp://{udp_addr}",
        m.name,
        m.api.name(),
        opts.transport.name(),
        opts.http
    );
    let http_task = tokio::spawn(serve(listener, cam.clone()));
    let udp_task = tokio::spawn(hear_udp(camera_udp.clone(), cam.clone()));
    let relay_task = tokio::spawn(relay(encoder_in, camera_udp, cam.clone()));

    let mut sigterm = signal(SignalKind::terminate()).expect("SIGTERM handler");
    let mut sigint = signal(SignalKind::interrupt()).expect("SIGINT handler");
    // The running encoder: what it makes (codec, generation) and how to stop it.
    let mut encoder: Option<((Codec, u64), CancellationToken, JoinHandle<()>)> = None;
    let mut tick = tokio::time::interval(Duration::from_millis(100));
    let mut was_paused = false;
    loop {
        tokio::select! {
            _ = sigterm.recv() => break,
            _ = sigint.recv() => break,
            _ = tick.tick() => {}
        }
        let (expired, paused, wanted) = {
            let s = cam.state.lock().unwrap();
            let expired = s.stream.is_some()
                && opts
                    .keepalive_timeout
                    .is_some_and(|t| s.last_keepalive.elapsed() > t);
            let wanted = s.stream.map(|st| (cam.codec(st.kind), s.generation));
            (expired, s.paused(), wanted)
        };
        if expired {
            cam.stop(None, "keep-alive timeout");
        }
        if was_paused && !paused {
            info!("fake-gopro: pause over");
            cam.event("pause_end", json!({}));
        }
        was_paused = paused;
        // Run the encoder exactly while the camera streams, one per stream codec and generation:
        // a new generation is a new ffmpeg, whose timestamps start again.
        let wanted = if expired { None } else { wanted };
        if encoder.as_ref().map(|e| e.0) != wanted {
            if let Some((_, stop, task)) = encoder.take() {
                stop.cancel();
                let _ = task.await;
            }
            if let Some((codec, generation)) = wanted {
                if generation > 0 {
                    cam.event("encoder_restart", json!({"generation": generation}));
                }
                let stop = CancellationToken::new();
                let spec = Spec {
                    name: "fake-gopro-encoder".into(),
                    program: opts.ffmpeg.clone(),
                    args: demo::ffmpeg_args_with(&opts.source, encoder_to, codec),
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
                let task = tokio::spawn(supervise::supervise(spec, info, stop.clone(), |_| {}));
                encoder = Some(((codec, generation), stop, task));
            }
        }
    }
    info!("fake-gopro: stopping");
    if let Some((_, stop, task)) = encoder.take() {
        stop.cancel();
        let _ = task.await;
    }
    cam.event("exit", json!({}));
    http_task.abort();
    udp_task.abort();
    relay_task.abort();
    0
}

/// Forwards the encoder's datagrams from the camera's UDP port to the viewer, unless paused or
/// silent.
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
            s.stream
                .map(|st| st.to)
                .filter(|_| !s.paused() && !s.silent())
        };
        if let Some(to) = target {
            // A viewer that is not listening yet is the viewer's problem, as with a real camera.
            let _ = out.send_to(&buf[..n], to).await;
        }
    }
}

/// Records every datagram on the camera's UDP port; the legacy keep-alive (`_GPHD_:…`) feeds the
/// keep-alive watch, unless dropped.
async fn hear_udp(sock: Arc<UdpSocket>, cam: Arc<Cam>) {
    let mut buf = vec![0u8; 2048];
    loop {
        match sock.recv_from(&mut buf).await {
            Ok((n, from)) => {
                let data = &buf[..n];
                let is_keepalive = cam.opts.api() == Api::Legacy && data.starts_with(b"_GPHD_:");
                let dropped = {
                    let silent = cam.state.lock().unwrap().silent();
                    silent || (is_keepalive && cam.take(|s| &mut s.drop_keepalives))
                };
                cam.record.write(json!({
                    "type": "udp",
                    "from": from.to_string(),
                    "data": String::from_utf8_lossy(data),
                    "dropped": dropped,
                }));
                if is_keepalive && !dropped {
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

async fn handle(mut sock: TcpStream, peer: SocketAddr, cam: Arc<Cam>) {
    let req = match tokio::time::timeout(Duration::from_secs(5), read_request(&mut sock)).await {
        Ok(Ok(r)) => r,
        _ => return,
    };
    let answer = answer(&cam, &req, peer);
    let status = match &answer {
        Answer::Reply(code, _) => Some(*code),
        Answer::Hold => None,
    };
    cam.record.write(json!({
        "type": "http",
        "method": req.method,
        "path": req.path,
        "query": req.query.as_deref().unwrap_or(""),
        "peer": peer.to_string(),
        "status": status,
    }));
    match answer {
        Answer::Reply(code, body) => {
            let body = body.to_string();
            let _ = write(&mut sock, code, "application/json", body.as_bytes(), &[]).await;
        }
        Answer::Hold => {
            // Held, unanswered, until the client gives up (or HOLD_MAX).
            use tokio::io::AsyncReadExt;
            let mut byte = [0u8; 1];
            let _ = tokio::time::timeout(HOLD_MAX, async {
                while let Ok(n) = sock.read(&mut byte).await {
                    if n == 0 {
                        break;
                    }
                }
            })
            .await;
        }
    }
}
