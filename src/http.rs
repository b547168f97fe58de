//! The HTTP side: `/stream.ts` for players, `/status` and `/healthz` for people
//! and monitors, `/` for the phone. Requests are parsed with httparse; responses
//! are written by hand so each viewer's socket stays ours to tune and measure.

use crate::daemon::Shared;
use crate::link::{read_tcp_info, LinkWindow, RelayView};
use crate::ts::Continuity;
use log::{debug, info, warn};
use std::net::SocketAddr;
use std::os::fd::AsRawFd;
use std::sync::Arc;
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

const MAX_REQUEST: usize = 8192;
const REQUEST_TIMEOUT: Duration = Duration::from_secs(10);
/// Bytes handed to one viewer's socket per write; lag is re-checked between writes.
const WRITE_BATCH: usize = 16 * 1024;
/// A small kernel send buffer keeps a slow viewer's backlog in the hub, where it
/// can be skipped, and makes the kernel's unsent-bytes figure an honest signal.
const SEND_BUFFER: libc::c_int = 128 * 1024;
const NOTSENT_LOWAT: libc::c_int = 16 * 1024;

/// A parsed request line; headers are not needed by any route.
#[derive(Debug, PartialEq, Eq)]
pub struct Request {
    pub method: String,
    pub path: String,
    pub query: Option<String>,
}

#[derive(Debug, PartialEq, Eq)]
pub enum ParseError {
    Incomplete,
    TooLarge,
    Bad(String),
}

/// Parses a request head; pure, for unit tests.
pub fn parse_request(buf: &[u8]) -> Result<Request, ParseError> {
    let mut headers = [httparse::EMPTY_HEADER; 32];
    let mut req = httparse::Request::new(&mut headers);
    match req.parse(buf) {
        Ok(httparse::Status::Complete(_)) => {
            let target = req.path.unwrap_or("/");
            let (path, query) = match target.split_once('?') {
                Some((p, q)) => (p, Some(q.to_string())),
                None => (target, None),
            };
            Ok(Request {
                method: req.method.unwrap_or("").to_string(),
                path: path.to_string(),
                query,
            })
        }
        Ok(httparse::Status::Partial) if buf.len() >= MAX_REQUEST => Err(ParseError::TooLarge),
        Ok(httparse::Status::Partial) => Err(ParseError::Incomplete),
        Err(httparse::Error::TooManyHeaders) => Err(ParseError::TooLarge),
        Err(e) => Err(ParseError::Bad(e.to_string())),
    }
}

pub async fn serve(listener: TcpListener, shared: Arc<Shared>) {
    loop {
        match listener.accept().await {
            Ok((sock, peer)) => {
                tokio::spawn(handle(sock, peer, shared.clone()));
            }
            Err(e) => {
                // Out of file descriptors and the like: back off, never spin.
                warn!("http: accept failed: {e}");
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
        }
    }
}

async fn read_request(sock: &mut TcpStream) -> Result<Request, ParseError> {
    let mut buf = Vec::with_capacity(1024);
    let mut tmp = [0u8; 1024];
    loop {
        let n = sock
            .read(&mut tmp)
            .await
            .map_err(|e| ParseError::Bad(e.to_string()))?;
        if n == 0 {
            return Err(ParseError::Bad(
                "connection closed before a full request".into(),
            ));
        }
        buf.extend_from_slice(&tmp[..n]);
        match parse_request(&buf) {
            Err(ParseError::Incomplete) => continue,
            other => return other,
        }
    }
}

async fn handle(mut sock: TcpStream, peer: SocketAddr, shared: Arc<Shared>) {
    let req = match tokio::time::timeout(REQUEST_TIMEOUT, read_request(&mut sock)).await {
        Ok(Ok(req)) => req,
        Ok(Err(ParseError::TooLarge)) => {
            let _ = respond(
                &mut sock,
                431,
                "text/plain",
                b"request header too large\n",
                &[],
            )
            .await;
            return;
        }
        Ok(Err(ParseError::Bad(why))) => {
            debug!("http: bad request from {peer}: {why}");
            let _ = respond(&mut sock, 400, "text/plain", b"bad request\n", &[]).await;
            return;
        }
        Ok(Err(ParseError::Incomplete)) | Err(_) => {
            let _ = respond(&mut sock, 408, "text/plain", b"request timeout\n", &[]).await;
            return;
        }
    };
    let head = req.method == "HEAD";
    let get = req.method == "GET" || head;
    let result = match req.path.as_str() {
        "/stream.ts" if get => return serve_stream(sock, peer, shared, head).await,
        "/status" if get => {
            let body = serde_json::to_vec_pretty(&shared.status()).unwrap_or_default();
            respond(&mut sock, 200, "application/json", &body, &[]).await
        }
        "/healthz" if get => {
            let (ok, why) = shared.health();
            let code = if ok { 200 } else { 503 };
            respond(
                &mut sock,
                code,
                "text/plain",
                format!("{why}\n").as_bytes(),
                &[],
            )
            .await
        }
        "/rung" if req.method == "POST" => {
            let (code, body) = shared.set_rung(req.query.as_deref().unwrap_or(""));
            respond(&mut sock, code, "application/json", body.as_bytes(), &[]).await
        }
        "/rung" => {
            respond(
                &mut sock,
                405,
                "text/plain",
                b"method not allowed\n",
                &[("Allow", "POST")],
            )
            .await
        }
        "/" if get => {
            respond(
                &mut sock,
                200,
                "text/html; charset=utf-8",
                INDEX_HTML.as_bytes(),
                &[],
            )
            .await
        }
        "/stream.ts" | "/status" | "/healthz" | "/" => {
            respond(
                &mut sock,
                405,
                "text/plain",
                b"method not allowed\n",
                &[("Allow", "GET, HEAD")],
            )
            .await
        }
        _ => respond(&mut sock, 404, "text/plain", b"not found\n", &[]).await,
    };
    if let Err(e) = result {
        debug!("http: answering {peer} failed: {e}");
    }
}

fn reason(code: u16) -> &'static str {
    match code {
        200 => "OK",
        400 => "Bad Request",
        404 => "Not Found",
        405 => "Method Not Allowed",
        408 => "Request Timeout",
        431 => "Request Header Fields Too Large",
        503 => "Service Unavailable",
        _ => "Error",
    }
}

async fn respond(
    sock: &mut TcpStream,
    code: u16,
    content_type: &str,
    body: &[u8],
    extra: &[(&str, &str)],
) -> std::io::Result<()> {
    let mut head = format!(
        "HTTP/1.1 {code} {}\r\nContent-Type: {content_type}\r\nContent-Length: {}\r\nCache-Control: no-store\r\nConnection: close\r\n",
        reason(code),
        body.len()
    );
    for (k, v) in extra {
        head.push_str(&format!("{k}: {v}\r\n"));
    }
    head.push_str("\r\n");
    sock.write_all(head.as_bytes()).await?;
    sock.write_all(body).await?;
    sock.shutdown().await
}

fn tune_viewer_socket(sock: &TcpStream) {
    let fd = sock.as_raw_fd();
    let set = |level, name, value: libc::c_int| {
        // SAFETY: a valid fd and a c_int option value of the right size.
        let rc = unsafe {
            libc::setsockopt(
                fd,
                level,
                name,
                &value as *const _ as *const libc::c_void,
                std::mem::size_of::<libc::c_int>() as libc::socklen_t,
            )
        };
        if rc != 0 {
            debug!(
                "setsockopt({name}) failed: {}",
                std::io::Error::last_os_error()
            );
        }
    };
    set(libc::SOL_SOCKET, libc::SO_SNDBUF, SEND_BUFFER);
    set(libc::IPPROTO_TCP, libc::TCP_NOTSENT_LOWAT, NOTSENT_LOWAT);
    let _ = sock.set_nodelay(true);
}

async fn serve_stream(mut sock: TcpStream, peer: SocketAddr, shared: Arc<Shared>, head_only: bool) {
    let Some(viewer) = shared.add_viewer(peer) else {
        let _ = respond(
            &mut sock,
            503,
            "text/plain",
            b"too many viewers\n",
            &[("Retry-After", "5")],
        )
        .await;
        return;
    };
    tune_viewer_socket(&sock);
    let head = "HTTP/1.1 200 OK\r\nContent-Type: video/mp2t\r\nCache-Control: no-store\r\nConnection: close\r\n\r\n";
    if sock.write_all(head.as_bytes()).await.is_err() || head_only {
        shared.remove_viewer(viewer);
        return;
    }
    info!("viewer {viewer} ({peer}) connected");
    let (max_lag, stall) = {
        let cfg = shared.config();
        (
            Duration::from_millis(cfg.server.viewer_max_lag_ms),
            Duration::from_secs_f64(cfg.server.viewer_stall_timeout_s),
        )
    };
    let hub = shared.hub.clone();
    let mut newest = hub.watch();
    let mut cursor = None;
    let mut continuity = Continuity::default();
    let mut buf = Vec::with_capacity(WRITE_BATCH + 4096);
    let mut link = ViewerLink::new(sock.as_raw_fd(), viewer, shared.clone());
    let why = loop {
        newest.mark_unchanged();
        let batch = hub.read(&mut cursor, max_lag, WRITE_BATCH);
        if batch.skipped {
            link.skips += 1;
        }
        if batch.chunks.is_empty() {
            // Nothing new: wait for the hub, but notice a closed connection meanwhile.
            let mut probe = [0u8; 256];
            tokio::select! {
                _ = newest.changed() => continue,
                r = sock.read(&mut probe) => match r {
                    Ok(0) | Err(_) => break "closed by the viewer",
                    Ok(_) => continue, // players may send nothing; ignore anything they do
                },
                _ = link.ticker.tick() => {
                    link.sample(hub.age_at(cursor));
                    continue;
                }
            }
        }
        buf.clear();
        if let Some(psi) = &batch.psi {
            buf.extend_from_slice(psi);
        }
        for chunk in &batch.chunks {
            buf.extend_from_slice(&chunk.data);
        }
        continuity.rewrite(&mut buf);
        let oldest = batch.chunks[0].at;
        let write = sock.write_all(&buf);
        tokio::pin!(write);
        let deadline = tokio::time::sleep(stall);
        tokio::pin!(deadline);
        // Keep measuring while a slow link drains the batch.
        let written = loop {
            tokio::select! {
                r = &mut write => break r.map_err(|_| "closed by the viewer"),
                _ = link.ticker.tick() => link.sample(oldest.elapsed()),
                _ = &mut deadline => break Err("stalled: it accepted no data for the stall timeout"),
            }
        };
        if let Err(why) = written {
            break why;
        }
        shared.viewer_progress(viewer, buf.len(), batch.skipped, batch.lag);
        if batch.skipped {
            debug!(
                "viewer {viewer} was {} ms behind; skipped to the newest keyframe",
                batch.lag.as_millis()
            );
        }
    };
    info!("viewer {viewer} ({peer}) left: {why}");
    shared.remove_viewer(viewer);
}

/// Samples one viewer's link on a timer and reports it.
struct ViewerLink {
    fd: std::os::fd::RawFd,
    viewer: u64,
    shared: Arc<Shared>,
    window: LinkWindow,
    ticker: tokio::time::Interval,
    skips: u64,
}

impl ViewerLink {
    fn new(fd: std::os::fd::RawFd, viewer: u64, shared: Arc<Shared>) -> Self {
        let every = Duration::from_millis(shared.config().adapt.sample_interval_ms);
        let mut ticker = tokio::time::interval(every);
        ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        ViewerLink {
            fd,
            viewer,
            shared,
            window: LinkWindow::new(1.0),
            ticker,
            skips: 0,
        }
    }

    fn sample(&mut self, lag: Duration) {
        let Ok(tcp) = read_tcp_info(self.fd) else {
            return;
        };
        let relay = RelayView {
            lag_ms: lag.as_millis() as u64,
            skips: self.skips,
        };
        let s = self.window.add(self.shared.clock(), tcp, relay);
        self.shared.viewer_link(self.viewer, s);
    }
}

/// Placeholder page until the web player lands: how to open the stream.
const INDEX_HTML: &str = r#"<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width,initial-scale=1">
<title>livestreamd</title></head>
<body style="font-family:sans-serif;max-width:40em;margin:1em auto;padding:0 1em">
<h1>livestreamd</h1>
<p>The live stream is at <a href="/stream.ts">/stream.ts</a>: open it in VLC (Media &rarr; Open Network Stream), mpv or ffplay.</p>
<p>State: <a href="/status">/status</a> &middot; health: <a href="/healthz">/healthz</a></p>
</body></html>
"#;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_a_player_request() {
        let r =
            parse_request(b"GET /stream.ts?x=1 HTTP/1.1\r\nHost: pi\r\nUser-Agent: VLC\r\n\r\n")
                .unwrap();
        assert_eq!(
            r,
            Request {
                method: "GET".into(),
                path: "/stream.ts".into(),
                query: Some("x=1".into())
            }
        );
    }

    #[test]
    fn incomplete_bad_and_oversized_requests() {
        assert_eq!(
            parse_request(b"GET / HTTP/1.1\r\nHost"),
            Err(ParseError::Incomplete)
        );
        assert!(matches!(
            parse_request(b"\x00\x01 nonsense\r\n\r\n"),
            Err(ParseError::Bad(_))
        ));
        let mut huge = b"GET / HTTP/1.1\r\nX: ".to_vec();
        huge.resize(MAX_REQUEST + 10, b'a');
        assert_eq!(parse_request(&huge), Err(ParseError::TooLarge));
    }
}
