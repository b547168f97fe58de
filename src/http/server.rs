//! The server: accepts connections within the admission caps, reads one
//! request head per connection and routes it: `/stream.ts` for players,
//! `/live.m3u8` and `/hls/...` for players without Media Source (HLS),
//! `/status` and `/healthz` for people and monitors, `/` (the web player and
//! its assets) for the phone, `/events` for its live figures, `/metrics` for
//! Prometheus, `POST /rung` for the operator, and the captive-portal probes of
//! phones that just joined the access point (a redirect to the page). Every
//! connection is a task on `tasks`, ended by `stop`.

use crate::http::admission::{self, Admission};
use crate::http::control::{control_allowed, rung_request};
use crate::http::request::{read_request, ParseError, Request};
use crate::http::response::{linger, method_not_allowed, respond};
use crate::http::{assets, captive, events, hls, metrics, stream, Context};
use crate::log_budget::{Allow, LogBudget};
use crate::media::hls::route as hls_route;
use log::{debug, info, warn};
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::net::{TcpListener, TcpStream};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

/// After `accept` fails (out of descriptors, say), wait this long before the next.
const ACCEPT_BACKOFF: Duration = Duration::from_millis(200);

/// Accepts and serves until `stop`; every connection task and the events
/// publisher run on `tasks`, so the owner can wait for all of them.
pub async fn serve(
    listener: TcpListener,
    ctx: Arc<Context>,
    stop: CancellationToken,
    tasks: TaskTracker,
) {
    tasks.spawn(events::publish(ctx.clone(), stop.clone()));
    let mut refused_log = LogBudget::new(5, Duration::from_secs(60));
    let mut accept_log = LogBudget::new(1, Duration::from_secs(60));
    loop {
        let accepted = tokio::select! {
            _ = stop.cancelled() => return,
            a = listener.accept() => a,
        };
        let (sock, peer) = match accepted {
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
            let cfg = ctx.config.get();
            admission::Limits {
                connections: cfg.server.max_connections,
                per_address: cfg.server.max_connections_per_address,
                pending_per_address: cfg.server.max_pending_per_address,
            }
        };
        match Admission::connect(&ctx.admission, peer.ip(), limits) {
            Ok(conn) => {
                tasks.spawn(handle(sock, peer, conn, ctx.clone(), stop.clone()));
            }
            Err(refusal) => {
                ctx.counters.response(503);
                if let Allow::Log { suppressed } = refused_log.allow(Instant::now()) {
                    info!(
                        "http: refused {peer}: {} ({suppressed} refusals not logged before)",
                        refusal.reason()
                    );
                }
                // One try, never a wait: the refused must not hold anything.
                let body = format!("{}\n", refusal.reason());
                let head = crate::http::response::head(
                    503,
                    "text/plain",
                    body.len(),
                    &[("Retry-After", "2")],
                );
                // A fresh socket's send buffer is empty: a plain non-blocking
                // write goes out at once (tokio's readiness is not known yet).
                if let Ok(sock) = sock.into_std() {
                    use std::io::Write;
                    let _ = (&sock).write(format!("{head}{body}").as_bytes());
                }
            }
        }
    }
}

/// Serves one connection; `conn` holds its place until it ends.
async fn handle(
    mut sock: TcpStream,
    peer: SocketAddr,
    mut conn: admission::Connection,
    ctx: Arc<Context>,
    stop: CancellationToken,
) {
    let timeout = Duration::from_secs_f64(ctx.config.get().server.request_timeout_s);
    let read = tokio::select! {
        _ = stop.cancelled() => return,
        r = tokio::time::timeout(timeout, read_request(&mut sock)) => r,
    };
    conn.request_read();
    let refusal = match read {
        Ok(Ok(req)) => return route(sock, peer, req, ctx, stop).await,
        Ok(Err(ParseError::TooLarge)) => (431, "request header too large\n"),
        Ok(Err(ParseError::Bad(why))) => {
            debug!("http: bad request from {peer}: {why}");
            (400, "bad request\n")
        }
        Ok(Err(ParseError::Incomplete)) | Err(_) => {
            debug!("http: {peer} sent no complete request in time");
            (408, "request timeout\n")
        }
    };
    let (code, body) = refusal;
    let _ = respond(
        &ctx.counters,
        &mut sock,
        code,
        "text/plain",
        body.as_bytes(),
        &[],
    )
    .await;
    linger(&mut sock).await;
}

/// Answers one request.
async fn route(
    mut sock: TcpStream,
    peer: SocketAddr,
    req: Request,
    ctx: Arc<Context>,
    stop: CancellationToken,
) {
    let counters = &ctx.counters;
    let head = req.method == "HEAD";
    let get = req.method == "GET" || head;
    let asset = assets::find(&req.path);
    let hls = hls_route(&req.path);
    let result = match req.path.as_str() {
        "/stream.ts" if get => {
            return stream::serve(sock, peer, ctx.clone(), head, req.query, stop).await
        }
        "/events" if head => respond(counters, &mut sock, 200, "text/event-stream", b"", &[]).await,
        "/events" if get => return events::serve(sock, peer, ctx.clone(), req.query, stop).await,
        "/status" if get => {
            let body = serde_json::to_vec_pretty(&ctx.status.status()).unwrap_or_default();
            respond(counters, &mut sock, 200, "application/json", &body, &[]).await
        }
        "/log" if get => {
            let body = serde_json::to_vec_pretty(&crate::log_ring::snapshot(0)).unwrap_or_default();
            respond(counters, &mut sock, 200, "application/json", &body, &[]).await
        }
        "/report.txt" if get => {
            // The field report, for a phone to save or share: the same text
            // `livestream-report` writes to the card.
            let status = serde_json::to_value(ctx.status.status()).map_err(|e| e.to_string());
            let log = serde_json::to_value(crate::log_ring::snapshot(0)).map_err(|e| e.to_string());
            let now = crate::clock::unix_now();
            let body = crate::field_report::render(now, "this daemon", &status, &log);
            let disposition = (
                "Content-Disposition",
                "attachment; filename=\"livestream-report.txt\"",
            );
            let ct = "text/plain; charset=utf-8";
            respond(
                counters,
                &mut sock,
                200,
                ct,
                body.as_bytes(),
                &[disposition],
            )
            .await
        }
        "/metrics" if get => {
            let body = metrics::render(&ctx.status.status());
            let ct = metrics::CONTENT_TYPE;
            respond(counters, &mut sock, 200, ct, body.as_bytes(), &[]).await
        }
        "/healthz" if get => {
            let (ok, why) = ctx.status.health();
            let code = if ok { 200 } else { 503 };
            let body = format!("{why}\n");
            respond(
                counters,
                &mut sock,
                code,
                "text/plain",
                body.as_bytes(),
                &[],
            )
            .await
        }
        "/rung" if req.method == "POST" => {
            let (code, body) = set_rung(&ctx, &req, peer.ip());
            let challenge = [("WWW-Authenticate", "Bearer")];
            let extra: &[(&str, &str)] = if code == 401 { &challenge } else { &[] };
            let ct = "application/json";
            respond(counters, &mut sock, code, ct, body.as_bytes(), extra).await
        }
        "/rung" => method_not_allowed(counters, &mut sock, "POST").await,
        p if get && captive::is_probe(p) => match sock.local_addr() {
            Ok(local) => captive::serve(&mut sock, &ctx, local, head).await,
            Err(e) => Err(e),
        },
        "/clock" if req.method == "POST" => {
            let (code, body) = offer_clock(&req, peer.ip());
            respond(
                counters,
                &mut sock,
                code,
                "application/json",
                body.as_bytes(),
                &[],
            )
            .await
        }
        "/clock" => method_not_allowed(counters, &mut sock, "POST").await,
        _ if get && hls.is_some() => hls::serve(&mut sock, &ctx, hls.expect("checked"), head).await,
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
            respond(counters, &mut sock, 200, a.content_type, body, &headers).await
        }
        p if asset.is_some()
            || hls.is_some()
            || matches!(
                p,
                "/stream.ts"
                    | "/events"
                    | "/status"
                    | "/log"
                    | "/report.txt"
                    | "/metrics"
                    | "/healthz"
            ) =>
        {
            method_not_allowed(counters, &mut sock, "GET, HEAD").await
        }
        _ => respond(counters, &mut sock, 404, "text/plain", b"not found\n", &[]).await,
    };
    if let Err(e) = result {
        debug!("http: answering {peer} failed: {e}");
    } else if !get {
        linger(&mut sock).await; // a body we did not read may follow
    }
}

/// Answers `POST /clock?t=UNIX_MS`: a phone offers its clock. Anyone on the
/// hotspot may; `timekeep::decide` bounds what an offer can do (forward,
/// once, only while the clock is plainly unset).
fn offer_clock(req: &Request, peer: IpAddr) -> (u16, String) {
    let t = crate::http::request::query_value(req.query.as_deref(), "t")
        .and_then(|t| t.parse::<f64>().ok())
        .filter(|t| t.is_finite());
    let Some(t) = t else {
        let why = "give the time as ?t=UNIX_MILLISECONDS";
        return (400, format!("{}\n", serde_json::json!({ "error": why })));
    };
    match crate::timekeep::offer(
        crate::timekeep::Source::Phone,
        &peer.to_string(),
        t / 1000.0,
    ) {
        Ok(step) => (
            200,
            format!("{}\n", serde_json::json!({ "taken": true, "step_s": step })),
        ),
        // Refused is an answer too, not an error of the request.
        Err(why) => (
            200,
            format!("{}\n", serde_json::json!({ "taken": false, "why": why })),
        ),
    }
}

/// Answers `POST /rung`: who may, and what they asked for.
fn set_rung(ctx: &Context, req: &Request, peer: IpAddr) -> (u16, String) {
    let error = |code, why: &str| (code, format!("{}\n", serde_json::json!({ "error": why })));
    let token = ctx.config.get().server.control_token.clone();
    if let Err((code, why)) = control_allowed(req, peer, token.as_deref()) {
        info!("http: control request from {peer} refused: {why}");
        return error(code, why);
    }
    match rung_request(req.query.as_deref()) {
        Ok(pin) => match ctx.viewers.pin(pin) {
            Ok(status) => {
                let rung = pin.map_or("auto".to_string(), |r| r.to_string());
                info!("operator ({peer}): rung {rung}");
                (
                    200,
                    serde_json::to_string_pretty(&status).unwrap_or_default(),
                )
            }
            Err(why) => error(400, &why),
        },
        Err(why) => error(400, why),
    }
}
