//! The HTTP side: `/stream.ts` for players, `/status` and `/healthz` for people
//! and monitors, `/` (the web player, with its assets) for the phone, `/events`
//! for its live figures and `/metrics` for Prometheus. Requests are parsed with
//! httparse; responses are written by hand so each viewer's socket stays ours to
//! tune and measure.

use crate::control::link::{read_tcp_info, LinkWindow, RelayView};
use crate::daemon::Shared;
use crate::http::admission;
use crate::http::{events, metrics};
use crate::log_budget::{Allow, LogBudget};
use crate::media::relay::Reader;
use log::{debug, info, warn};
use std::net::{IpAddr, SocketAddr};
use std::os::fd::AsRawFd;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

const MAX_REQUEST: usize = 8192;
/// After `accept` fails (out of descriptors, say), wait this long before the next.
const ACCEPT_BACKOFF: Duration = Duration::from_millis(200);
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

/// A parsed request head: its line and the few headers a route needs.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Request {
    pub method: String,
    pub path: String,
    pub query: Option<String>,
    pub host: Option<String>,
    pub origin: Option<String>,
    pub authorization: Option<String>,
}

/// The origin form (`/path?query`) of a request target; the absolute form
/// (`http://host/path?query`, RFC 9112 section 3.2.2) is accepted too.
fn origin_form(target: &str) -> String {
    let scheme = ["http://", "https://"]
        .into_iter()
        .find(|s| target.len() >= s.len() && target[..s.len()].eq_ignore_ascii_case(s));
    let Some(scheme) = scheme else {
        return target.to_string();
    };
    let rest = &target[scheme.len()..];
    match rest.find(['/', '?']) {
        Some(i) if rest.as_bytes()[i] == b'/' => rest[i..].to_string(),
        Some(i) => format!("/{}", &rest[i..]),
        None => "/".to_string(),
    }
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
            let target = origin_form(req.path.unwrap_or("/"));
            let (path, query) = match target.split_once('?') {
                Some((p, q)) => (p.to_string(), Some(q.to_string())),
                None => (target, None),
            };
            let header = |name: &str| {
                req.headers
                    .iter()
                    .find(|h| h.name.eq_ignore_ascii_case(name))
                    .and_then(|h| std::str::from_utf8(h.value).ok())
                    .map(|v| v.trim().to_string())
            };
            Ok(Request {
                method: req.method.unwrap_or("").to_string(),
                path,
                query,
                host: header("host"),
                origin: header("origin"),
                authorization: header("authorization"),
            })
        }
        Ok(httparse::Status::Partial) if buf.len() >= MAX_REQUEST => Err(ParseError::TooLarge),
        Ok(httparse::Status::Partial) => Err(ParseError::Incomplete),
        Err(httparse::Error::TooManyHeaders) => Err(ParseError::TooLarge),
        Err(e) => Err(ParseError::Bad(e.to_string())),
    }
}

/// Whether a `POST /rung` may change the rung (pure): never for a page of
/// another origin (any web page a phone opens could otherwise send it); with
/// `token` set, only with `Authorization: Bearer <token>`; without one, only
/// from the Pi itself. Refusals carry their status code and reason.
pub fn control_allowed(
    req: &Request,
    peer: IpAddr,
    token: Option<&str>,
) -> Result<(), (u16, &'static str)> {
    if let Some(origin) = &req.origin {
        let own = req
            .host
            .as_deref()
            .is_some_and(|h| origin.eq_ignore_ascii_case(&format!("http://{h}")));
        if !own {
            return Err((403, "control from a page of another origin is refused"));
        }
    }
    match token {
        Some(token) => {
            let given = req
                .authorization
                .as_deref()
                .and_then(|a| a.split_once(' '))
                .filter(|(scheme, _)| scheme.eq_ignore_ascii_case("bearer"))
                .map(|(_, t)| t.trim());
            match given {
                Some(t) if same_secret(t, token) => Ok(()),
                _ => Err((
                    401,
                    "control needs Authorization: Bearer <server.control_token>",
                )),
            }
        }
        None if peer.to_canonical().is_loopback() => Ok(()),
        None => Err((
            403,
            "control is accepted only from the Pi itself unless server.control_token is set",
        )),
    }
}

/// Compares a given secret with the configured one in time that does not
/// depend on where they differ.
fn same_secret(given: &str, secret: &str) -> bool {
    let (a, b) = (given.as_bytes(), secret.as_bytes());
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// `?set=N` or `?set=auto` of a `POST /rung`: Some(pin) or None for automatic.
fn rung_request(query: Option<&str>) -> Result<Option<usize>, &'static str> {
    match query_value(query, "set") {
        Some("auto") => Ok(None),
        Some(v) => v
            .parse()
            .map(Some)
            .map_err(|_| "use ?set=N (a rung number) or ?set=auto"),
        None => Err("use ?set=N (a rung number) or ?set=auto"),
    }
}

/// The value of `key` in a query string (`a=1&b=2`), undecoded.
pub fn query_value<'a>(query: Option<&'a str>, key: &str) -> Option<&'a str> {
    query?
        .split('&')
        .find_map(|kv| kv.strip_prefix(key)?.strip_prefix('='))
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
    let mut refused_log = LogBudget::new(5, Duration::from_secs(60));
    let mut accept_log = LogBudget::new(1, Duration::from_secs(60));
    loop {
        let (sock, peer) = match listener.accept().await {
            Ok(accepted) => accepted,
            Err(e) => {
                // Out of file descriptors and the like: back off, never spin.
                if let Allow::Log { suppressed } = accept_log.allow(Instant::now()) {
                    warn!("http: accept failed: {e} ({suppressed} more since the last line)");
                }
                tokio::time::sleep(ACCEPT_BACKOFF).await;
                continue;
            }
        };
        let limits = {
            let cfg = shared.config();
            admission::Limits {
                connections: cfg.server.max_connections,
                per_address: cfg.server.max_connections_per_address,
                pending_per_address: cfg.server.max_pending_per_address,
            }
        };
        match shared.admission.connect(peer.ip(), limits) {
            Ok(conn) => {
                tokio::spawn(handle(sock, peer, conn, shared.clone()));
            }
            Err(refusal) => {
                shared.counters.response(503);
                if let Allow::Log { suppressed } = refused_log.allow(Instant::now()) {
                    info!(
                        "http: refused {peer}: {} ({suppressed} refusals not logged before)",
                        refusal.reason()
                    );
                }
                // One try, never a wait: the refused must not hold anything.
                let answer = format!("HTTP/1.1 503 Service Unavailable\r\nContent-Type: text/plain\r\nContent-Length: {}\r\nRetry-After: 2\r\nConnection: close\r\n\r\n{}\n", refusal.reason().len() + 1, refusal.reason());
                let _ = sock.try_write(answer.as_bytes());
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
        body: include_bytes!("../../web/index.html"),
        cache: "no-cache",
        gzip: false,
    },
    Asset {
        path: "/app.js",
        content_type: "text/javascript; charset=utf-8",
        body: include_bytes!("../../web/app.js"),
        cache: "no-cache",
        gzip: false,
    },
    Asset {
        path: "/app.css",
        content_type: "text/css; charset=utf-8",
        body: include_bytes!("../../web/app.css"),
        cache: "no-cache",
        gzip: false,
    },
    // Versioned path: a phone may keep it for a day.
    Asset {
        path: "/vendor/mpegts-1.8.2.js",
        content_type: "text/javascript; charset=utf-8",
        // web/vendor/mpegts.js/mpegts.js, compressed with `gzip -9n` (a test checks they match).
        body: include_bytes!("../../web/vendor/mpegts.js/mpegts.js.gz"),
        cache: "public, max-age=86400",
        gzip: true,
    },
    Asset {
        path: "/vendor/LICENSE.mpegts.js.txt",
        content_type: "text/plain; charset=utf-8",
        body: include_bytes!("../../web/vendor/mpegts.js/LICENSE"),
        cache: "public, max-age=86400",
        gzip: false,
    },
];

/// Serves one connection; `conn` holds its place until it ends.
async fn handle(
    mut sock: TcpStream,
    peer: SocketAddr,
    mut conn: admission::Connection,
    shared: Arc<Shared>,
) {
    let timeout = Duration::from_secs_f64(shared.config().server.request_timeout_s);
    let read = tokio::time::timeout(timeout, read_request(&mut sock)).await;
    conn.request_read();
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
            let (code, body) = set_rung(&shared, &req, peer.ip());
            let challenge = [("WWW-Authenticate", "Bearer")];
            let extra: &[(&str, &str)] = if code == 401 { &challenge } else { &[] };
            respond(
                &shared,
                &mut sock,
                code,
                "application/json",
                body.as_bytes(),
                extra,
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

/// Answers `POST /rung`: who may, and what they asked for.
fn set_rung(shared: &Shared, req: &Request, peer: IpAddr) -> (u16, String) {
    let error = |code, why: &str| (code, format!("{}\n", serde_json::json!({ "error": why })));
    let token = shared.config().server.control_token.clone();
    if let Err((code, why)) = control_allowed(req, peer, token.as_deref()) {
        info!("http: control request from {peer} refused: {why}");
        return error(code, why);
    }
    match rung_request(req.query.as_deref()) {
        Ok(pin) => match shared.pin_rung(pin) {
            Ok(status) => (200, status),
            Err(why) => error(400, &why),
        },
        Err(why) => error(400, why),
    }
}

fn reason(code: u16) -> &'static str {
    match code {
        200 => "OK",
        400 => "Bad Request",
        401 => "Unauthorized",
        403 => "Forbidden",
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

/// A viewer whose socket has had data outstanding without a single byte
/// acknowledged for this long is not slow but gone: it stops counting in the
/// controller's decisions at once (it is dropped at `viewer_stall_timeout_s`).
/// A link that carries anything at all acknowledges within a second.
const NO_PROGRESS: Duration = Duration::from_secs(1);
/// A new viewer counts in the controller's decisions only after this long:
/// its first figures show the keyframe it joined at (up to a keyframe
/// interval old) and its first burst, not its link.
const WARM_UP: Duration = Duration::from_secs(2);

/// Samples one viewer's link on a timer and reports it.
struct ViewerLink {
    fd: std::os::fd::RawFd,
    viewer: u64,
    shared: Arc<Shared>,
    window: LinkWindow,
    ticker: tokio::time::Interval,
    /// Bytes acknowledged so far, and when that figure last grew.
    acked: (u64, Instant),
    stalled: bool,
    connected: Instant,
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
            acked: (0, Instant::now()),
            stalled: false,
            connected: Instant::now(),
        }
    }

    fn sample(&mut self, lag: Duration, skips: u64) {
        let Ok(tcp) = read_tcp_info(self.fd) else {
            return;
        };
        let now = Instant::now();
        if tcp.bytes_acked > self.acked.0 {
            self.acked = (tcp.bytes_acked, now);
        }
        let outstanding = tcp.notsent_bytes > 0 || tcp.bytes_sent > tcp.bytes_acked;
        let stalled = outstanding && now.duration_since(self.acked.1) >= NO_PROGRESS;
        if stalled != self.stalled {
            self.stalled = stalled;
            self.shared.viewer_stalled(self.viewer, stalled);
            if stalled {
                info!(
                    "viewer {}: nothing acknowledged for {} s; left out of quality decisions",
                    self.viewer,
                    NO_PROGRESS.as_secs()
                );
            }
        }
        let counts = !stalled && now.duration_since(self.connected) >= WARM_UP;
        let relay = RelayView {
            lag_ms: lag.as_millis() as u64,
            skips,
        };
        let s = self.window.add(self.shared.clock(), tcp, relay);
        self.shared.viewer_link(self.viewer, s, counts);
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
                query: Some("x=1".into()),
                host: Some("pi".into()),
                ..Request::default()
            }
        );
    }

    #[test]
    fn absolute_form_targets_are_accepted() {
        for (target, path, query) in [
            ("http://192.168.4.1:8080/stream.ts", "/stream.ts", None),
            ("HTTP://pi/rung?set=1", "/rung", Some("set=1")),
            ("http://pi", "/", None),
            ("http://pi?x=1", "/", Some("x=1")),
            ("https://pi/status", "/status", None),
            ("/plain", "/plain", None),
        ] {
            let r = parse_request(format!("GET {target} HTTP/1.1\r\n\r\n").as_bytes()).unwrap();
            assert_eq!(
                (r.path.as_str(), r.query.as_deref()),
                (path, query),
                "{target}"
            );
        }
    }

    fn control(origin: Option<&str>, auth: Option<&str>) -> Request {
        Request {
            method: "POST".into(),
            path: "/rung".into(),
            query: Some("set=1".into()),
            host: Some("192.168.4.1:8080".into()),
            origin: origin.map(str::to_string),
            authorization: auth.map(str::to_string),
        }
    }

    #[test]
    fn control_without_a_token_is_for_the_pi_itself() {
        let phone: IpAddr = "192.168.4.7".parse().unwrap();
        let local: IpAddr = "127.0.0.1".parse().unwrap();
        assert_eq!(control_allowed(&control(None, None), local, None), Ok(()));
        assert_eq!(
            control_allowed(
                &control(None, None),
                "::ffff:127.0.0.1".parse().unwrap(),
                None
            ),
            Ok(())
        );
        assert_eq!(
            control_allowed(&control(None, None), phone, None)
                .unwrap_err()
                .0,
            403
        );
    }

    #[test]
    fn control_with_a_token_needs_the_bearer_token() {
        let phone: IpAddr = "192.168.4.7".parse().unwrap();
        let token = Some("0123456789abcdef");
        let ok = control(None, Some("Bearer 0123456789abcdef"));
        assert_eq!(control_allowed(&ok, phone, token), Ok(()));
        let lower = control(None, Some("bearer 0123456789abcdef"));
        assert_eq!(control_allowed(&lower, phone, token), Ok(()));
        for bad in [
            None,
            Some("Bearer 0123456789abcdeX"),
            Some("Basic 0123456789abcdef"),
            Some("Bearer"),
        ] {
            assert_eq!(
                control_allowed(&control(None, bad), phone, token)
                    .unwrap_err()
                    .0,
                401,
                "{bad:?}"
            );
        }
        // The token is needed from loopback too.
        assert_eq!(
            control_allowed(&control(None, None), "127.0.0.1".parse().unwrap(), token)
                .unwrap_err()
                .0,
            401
        );
    }

    #[test]
    fn control_from_another_origin_is_refused_even_with_the_token() {
        let local: IpAddr = "127.0.0.1".parse().unwrap();
        let auth = Some("Bearer 0123456789abcdef");
        let token = Some("0123456789abcdef");
        for origin in ["http://evil.example", "null", "http://192.168.4.1:9090"] {
            assert_eq!(
                control_allowed(&control(Some(origin), auth), local, token)
                    .unwrap_err()
                    .0,
                403,
                "{origin}"
            );
        }
        let own = control(Some("http://192.168.4.1:8080"), auth);
        assert_eq!(control_allowed(&own, local, token), Ok(()));
    }

    #[test]
    fn rung_requests_are_parsed() {
        assert_eq!(rung_request(Some("set=2")), Ok(Some(2)));
        assert_eq!(rung_request(Some("x=1&set=auto")), Ok(None));
        assert!(rung_request(Some("set=two")).is_err());
        assert!(rung_request(Some("setx=1")).is_err());
        assert!(rung_request(None).is_err());
        assert_eq!(query_value(Some("a=1&client=xy"), "client"), Some("xy"));
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
