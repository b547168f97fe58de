//! The HTTP side: `/stream.ts` for players, `/status` and `/healthz` for people
//! and monitors, `/` (the web player, with its assets) for the phone, `/events`
//! for its live figures and `/metrics` for Prometheus. Requests are parsed with
//! httparse; responses are written by hand so each viewer's socket stays ours to
//! tune and measure.

use crate::daemon::Shared;
use crate::link::{read_tcp_info, LinkWindow, RelayView};
use crate::relay::Reader;
use crate::{events, metrics};
use log::{debug, info, warn};
use std::net::SocketAddr;
use std::os::fd::AsRawFd;
use std::sync::Arc;
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

const MAX_REQUEST: usize = 8192;
/// Connections allowed to be still sending their request at once; more are
/// refused at once, so a flood of idle connections cannot use up descriptors.
const MAX_PENDING_REQUESTS: usize = 256;
/// A whole non-stream answer (the largest is the player script) must be written within this.
const RESPONSE_TIMEOUT: Duration = Duration::from_secs(30);
/// How long, and how much, to read after answering an unfinished request.
const LINGER: Duration = Duration::from_secs(2);
const LINGER_BYTES: usize = 256 * 1024;
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

/// Aborts the task when dropped (the publisher lives as long as the server).
struct AbortOnDrop(tokio::task::JoinHandle<()>);
impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}

pub async fn serve(listener: TcpListener, shared: Arc<Shared>) {
    let _publisher = AbortOnDrop(tokio::spawn(events::publish(shared.clone())));
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

/// Counts a connection that is still sending its request.
struct Pending<'a>(&'a Shared);
impl Drop for Pending<'_> {
    fn drop(&mut self) {
        self.0
            .counters
            .pending_requests
            .fetch_sub(1, std::sync::atomic::Ordering::Relaxed);
    }
}

/// An embedded file of the web page.
struct Asset {
    path: &'static str,
    content_type: &'static str,
    body: &'static [u8],
    cache: &'static str,
    /// `body` is gzip-compressed: sent with `Content-Encoding: gzip`. Only for
    /// files that only browsers fetch (all accept gzip); it keeps the binary small.
    gzip: bool,
}

const ASSETS: &[Asset] = &[
    Asset {
        path: "/",
        content_type: "text/html; charset=utf-8",
        body: include_bytes!("../web/index.html"),
        cache: "no-cache",
        gzip: false,
    },
    Asset {
        path: "/app.js",
        content_type: "text/javascript; charset=utf-8",
        body: include_bytes!("../web/app.js"),
        cache: "no-cache",
        gzip: false,
    },
    Asset {
        path: "/app.css",
        content_type: "text/css; charset=utf-8",
        body: include_bytes!("../web/app.css"),
        cache: "no-cache",
        gzip: false,
    },
    // Versioned path: a phone may keep it for a day.
    Asset {
        path: "/vendor/mpegts-1.8.2.js",
        content_type: "text/javascript; charset=utf-8",
        // web/vendor/mpegts.js/mpegts.js, compressed with `gzip -9n` (a test checks they match).
        body: include_bytes!("../web/vendor/mpegts.js/mpegts.js.gz"),
        cache: "public, max-age=86400",
        gzip: true,
    },
    Asset {
        path: "/vendor/LICENSE.mpegts.js.txt",
        content_type: "text/plain; charset=utf-8",
        body: include_bytes!("../web/vendor/mpegts.js/LICENSE"),
        cache: "public, max-age=86400",
        gzip: false,
    },
];

async fn handle(mut sock: TcpStream, peer: SocketAddr, shared: Arc<Shared>) {
    use std::sync::atomic::Ordering;
    let pending = shared
        .counters
        .pending_requests
        .fetch_add(1, Ordering::Relaxed);
    let slot = Pending(&shared);
    if pending >= MAX_PENDING_REQUESTS {
        debug!("http: {peer} refused: {pending} connections are still sending requests");
        let _ = respond(
            &shared,
            &mut sock,
            503,
            "text/plain",
            b"server busy\n",
            &[("Retry-After", "1")],
        )
        .await;
        return;
    }
    let timeout = Duration::from_secs_f64(shared.config().server.request_timeout_s);
    let read = tokio::time::timeout(timeout, read_request(&mut sock)).await;
    drop(slot);
    let req = match read {
        Ok(Ok(req)) => req,
        Ok(Err(ParseError::TooLarge)) => {
            let _ = respond(
                &shared,
                &mut sock,
                431,
                "text/plain",
                b"request header too large\n",
                &[],
            )
            .await;
            linger(&mut sock).await;
            return;
        }
        Ok(Err(ParseError::Bad(why))) => {
            debug!("http: bad request from {peer}: {why}");
            let _ = respond(&shared, &mut sock, 400, "text/plain", b"bad request\n", &[]).await;
            linger(&mut sock).await;
            return;
        }
        Ok(Err(ParseError::Incomplete)) | Err(_) => {
            debug!("http: {peer} sent no complete request in time");
            let _ = respond(
                &shared,
                &mut sock,
                408,
                "text/plain",
                b"request timeout\n",
                &[],
            )
            .await;
            linger(&mut sock).await;
            return;
        }
    };
    let head = req.method == "HEAD";
    let get = req.method == "GET" || head;
    let asset = ASSETS.iter().find(|a| a.path == req.path);
    let result = match req.path.as_str() {
        "/stream.ts" if get => return serve_stream(sock, peer, shared, head, req.query).await,
        "/events" if head => respond(&shared, &mut sock, 200, "text/event-stream", b"", &[]).await,
        "/events" if get => return events::serve(sock, peer, shared, req.query).await,
        "/status" if get => {
            let body = serde_json::to_vec_pretty(&shared.status()).unwrap_or_default();
            respond(&shared, &mut sock, 200, "application/json", &body, &[]).await
        }
        "/metrics" if get => {
            let body = metrics::render(&shared.status());
            respond(
                &shared,
                &mut sock,
                200,
                metrics::CONTENT_TYPE,
                body.as_bytes(),
                &[],
            )
            .await
        }
        "/healthz" if get => {
            let (ok, why) = shared.health();
            let code = if ok { 200 } else { 503 };
            respond(
                &shared,
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
            respond(
                &shared,
                &mut sock,
                code,
                "application/json",
                body.as_bytes(),
                &[],
            )
            .await
        }
        "/rung" => method_not_allowed(&shared, &mut sock, "POST").await,
        _ if get && asset.is_some() => {
            let a = asset.expect("checked");
            let body = if head { &[][..] } else { a.body };
            let length = a.body.len().to_string();
            let mut headers = vec![
                ("Cache-Control", a.cache),
                ("Content-Length", length.as_str()),
            ];
            if a.gzip {
                headers.push(("Content-Encoding", "gzip"));
            }
            respond(&shared, &mut sock, 200, a.content_type, body, &headers).await
        }
        p if asset.is_some()
            || matches!(
                p,
                "/stream.ts" | "/events" | "/status" | "/metrics" | "/healthz"
            ) =>
        {
            method_not_allowed(&shared, &mut sock, "GET, HEAD").await
        }
        _ => respond(&shared, &mut sock, 404, "text/plain", b"not found\n", &[]).await,
    };
    if let Err(e) = result {
        debug!("http: answering {peer} failed: {e}");
    } else if !get {
        linger(&mut sock).await; // a body we did not read may follow
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

/// Writes a whole answer and closes the connection; counts it by status code.
/// `extra` headers replace the default `Content-Length` (of `body`) and
/// `Cache-Control: no-store` when they name them.
async fn method_not_allowed(
    shared: &Shared,
    sock: &mut TcpStream,
    allow: &str,
) -> std::io::Result<()> {
    respond(
        shared,
        sock,
        405,
        "text/plain",
        b"method not allowed\n",
        &[("Allow", allow)],
    )
    .await
}

pub(crate) async fn respond(
    shared: &Shared,
    sock: &mut TcpStream,
    code: u16,
    content_type: &str,
    body: &[u8],
    extra: &[(&str, &str)],
) -> std::io::Result<()> {
    shared.counters.response(code);
    let has = |name: &str| extra.iter().any(|(k, _)| k.eq_ignore_ascii_case(name));
    let mut head = format!(
        "HTTP/1.1 {code} {}\r\nContent-Type: {content_type}\r\n",
        reason(code)
    );
    if !has("Content-Length") {
        head.push_str(&format!("Content-Length: {}\r\n", body.len()));
    }
    if !has("Cache-Control") {
        head.push_str("Cache-Control: no-store\r\n");
    }
    head.push_str("Connection: close\r\n");
    for (k, v) in extra {
        head.push_str(&format!("{k}: {v}\r\n"));
    }
    head.push_str("\r\n");
    let write = async {
        sock.write_all(head.as_bytes()).await?;
        sock.write_all(body).await?;
        sock.shutdown().await
    };
    tokio::time::timeout(RESPONSE_TIMEOUT, write)
        .await
        .unwrap_or_else(|_| Err(std::io::ErrorKind::TimedOut.into()))
}

/// After an answer to a request we did not read in full: keep reading (and
/// dropping) what the client still sends for a moment, so that closing does not
/// reset the connection and destroy the answer before the client has read it.
async fn linger(sock: &mut TcpStream) {
    let drain = async {
        let mut buf = [0u8; 4096];
        let mut left = LINGER_BYTES;
        while left > 0 {
            match sock.read(&mut buf).await {
                Ok(0) | Err(_) => break,
                Ok(n) => left = left.saturating_sub(n),
            }
        }
    };
    let _ = tokio::time::timeout(LINGER, drain).await;
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

async fn serve_stream(
    mut sock: TcpStream,
    peer: SocketAddr,
    shared: Arc<Shared>,
    head_only: bool,
    query: Option<String>,
) {
    let Some(viewer) = shared.add_viewer(peer) else {
        shared.counters.viewer_rejected();
        let _ = respond(
            &shared,
            &mut sock,
            503,
            "text/plain",
            b"too many viewers\n",
            &[("Retry-After", "5")],
        )
        .await;
        return;
    };
    shared.counters.response(200);
    shared.counters.viewer_accepted();
    tune_viewer_socket(&sock);
    let head = "HTTP/1.1 200 OK\r\nContent-Type: video/mp2t\r\nCache-Control: no-store\r\nConnection: close\r\n\r\n";
    if sock.write_all(head.as_bytes()).await.is_err() || head_only {
        shared.remove_viewer(viewer);
        return;
    }
    info!("viewer {viewer} ({peer}) connected");
    // The web page tags its stream so that its `/events` can name it.
    let token = events::client_token(query.as_deref()).map(str::to_string);
    if let Some(t) = &token {
        shared.web.stream_started(t, peer);
    }
    let (max_lag, stall) = {
        let cfg = shared.config();
        (
            Duration::from_millis(cfg.server.viewer_max_lag_ms),
            Duration::from_secs_f64(cfg.server.viewer_stall_timeout_s),
        )
    };
    let mut newest = shared.hub.watch();
    let mut reader = Reader::new(shared.hub.clone(), max_lag);
    let mut buf = Vec::with_capacity(WRITE_BATCH + 4096);
    let mut link = ViewerLink::new(sock.as_raw_fd(), viewer, shared.clone());
    let mut pad_ticker = tokio::time::interval(PAD_EVERY);
    pad_ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let why = loop {
        newest.mark_unchanged();
        let Some(filled) = reader.fill(&mut buf, WRITE_BATCH) else {
            // Nothing new: wait for the hub, but notice a closed connection meanwhile.
            let mut probe = [0u8; 256];
            tokio::select! {
                _ = newest.changed() => continue,
                r = sock.read(&mut probe) => match r {
                    Ok(0) | Err(_) => break "closed by the viewer",
                    Ok(_) => continue, // players may send nothing; ignore anything they do
                },
                _ = link.ticker.tick() => {
                    link.sample(reader.age(), reader.skips);
                    continue;
                }
                _ = pad_ticker.tick(), if shared.padding_kbps() > 0 => {
                    if let Some(pad) = padding(sock.as_raw_fd(), shared.padding_kbps()) {
                        if tokio::time::timeout(PAD_EVERY * 10, sock.write_all(pad)).await.is_err() {
                            break "stalled while padding";
                        }
                    }
                    continue;
                }
            }
        };
        let write = sock.write_all(&buf);
        tokio::pin!(write);
        let deadline = tokio::time::sleep(stall);
        tokio::pin!(deadline);
        // Keep measuring while a slow link drains the batch.
        let written = loop {
            tokio::select! {
                r = &mut write => break r.map_err(|_| "closed by the viewer"),
                _ = link.ticker.tick() => link.sample(filled.oldest.elapsed(), reader.skips),
                _ = &mut deadline => break Err("stalled: it accepted no data for the stall timeout"),
            }
        };
        if let Err(why) = written {
            break why;
        }
        shared.counters.sent(buf.len(), filled.skipped);
        shared.viewer_progress(viewer, buf.len(), filled.skipped, filled.lag);
        if filled.skipped {
            debug!(
                "viewer {viewer} was {} ms behind; skipped to the newest keyframe",
                filled.lag.as_millis()
            );
        }
    };
    info!("viewer {viewer} ({peer}) left: {why}");
    if let Some(t) = &token {
        shared.web.stream_ended(t, peer);
    }
    shared.remove_viewer(viewer);
}

/// How often padding is written during a headroom probe.
const PAD_EVERY: Duration = Duration::from_millis(20);

/// Null TS packets (PID 0x1FFF), which every player discards.
static NULL_PACKETS: std::sync::OnceLock<Vec<u8>> = std::sync::OnceLock::new();

/// The padding to write now for `kbps`, or None while the socket still holds
/// unsent data: a link that cannot drain what it has is not asked for more.
fn padding(fd: std::os::fd::RawFd, kbps: u64) -> Option<&'static [u8]> {
    const MAX_PACKETS: usize = 64;
    let nulls = NULL_PACKETS.get_or_init(|| {
        let mut p = [0xffu8; 188];
        p[..4].copy_from_slice(&[0x47, 0x1f, 0xff, 0x10]);
        p.repeat(MAX_PACKETS)
    });
    let unsent = read_tcp_info(fd)
        .map(|t| t.notsent_bytes)
        .unwrap_or(u32::MAX);
    if unsent > 4096 {
        return None;
    }
    let bytes = kbps as f64 * 1000.0 / 8.0 * PAD_EVERY.as_secs_f64();
    let packets = ((bytes / 188.0).ceil() as usize).clamp(1, MAX_PACKETS);
    Some(&nulls[..packets * 188])
}

/// Samples one viewer's link on a timer and reports it.
struct ViewerLink {
    fd: std::os::fd::RawFd,
    viewer: u64,
    shared: Arc<Shared>,
    window: LinkWindow,
    ticker: tokio::time::Interval,
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
        }
    }

    fn sample(&mut self, lag: Duration, skips: u64) {
        let Ok(tcp) = read_tcp_info(self.fd) else {
            return;
        };
        let relay = RelayView {
            lag_ms: lag.as_millis() as u64,
            skips,
        };
        let s = self.window.add(self.shared.clock(), tcp, relay);
        self.shared.viewer_link(self.viewer, s);
    }
}

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
