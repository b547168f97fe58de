//! HLS for players without Media Source (iOS Safari before 17.1, in-app and
//! TV browsers): `/live.m3u8` lists the running rungs (or, while one rung is
//! given to everyone, the playlist that follows it), `/hls/<rung>/index.m3u8`
//! and `/hls/live/index.m3u8` are media playlists, `/hls/.../<n>.ts` their
//! segments, written from the hub's ring as they are. Each request is a
//! short answer on its own connection, within the server's per-address caps;
//! nothing is kept per client. What is listed and how: `media::hls`.

use crate::http::response::{self, respond};
use crate::http::Context;
use crate::media::hls::{self, Missing, Route, Variant};
use bytes::Bytes;
use std::time::Duration;
use tokio::io::AsyncWriteExt;
use tokio::net::TcpStream;

pub const PLAYLIST_TYPE: &str = "application/vnd.apple.mpegurl";
pub const SEGMENT_TYPE: &str = "video/mp2t";
/// A segment must be written within this: a client that reads slower holds
/// ring memory (its `Bytes`) no longer than that.
const SEGMENT_TIMEOUT: Duration = Duration::from_secs(10);

/// Answers one HLS request (GET or HEAD).
pub async fn serve(
    sock: &mut TcpStream,
    ctx: &Context,
    route: Route,
    head: bool,
) -> std::io::Result<()> {
    let text = match route {
        Route::Multivariant => multivariant(ctx).ok_or(Missing::Empty),
        Route::Media(which) => ctx.hub.hls_playlist(which),
        Route::Segment(which, n) => {
            return match ctx.hub.hls_segment(which, n) {
                Ok(parts) => segment(sock, ctx, parts, head).await,
                Err(m) => refuse(sock, ctx, m).await,
            }
        }
    };
    match text {
        Ok(body) => {
            // HEAD: the same head, Content-Length included, and no body.
            let length = body.len().to_string();
            let extra = [("Cache-Control", "no-cache"), ("Content-Length", &length)];
            let body = if head { "" } else { body.as_str() };
            respond(
                &ctx.counters,
                sock,
                200,
                PLAYLIST_TYPE,
                body.as_bytes(),
                &extra,
            )
            .await
        }
        Err(m) => refuse(sock, ctx, m).await,
    }
}

/// 404 for what does not exist, 410 for a segment that has left the window,
/// 503 (try again in a second) while nothing is listed yet.
async fn refuse(sock: &mut TcpStream, ctx: &Context, why: Missing) -> std::io::Result<()> {
    let retry = [("Retry-After", "1"), ("Cache-Control", "no-cache")];
    let (code, body, extra): (u16, &[u8], &[(&str, &str)]) = match why {
        Missing::Gone => (410, b"gone: this segment has left the window\n", &[]),
        Missing::Unknown => (404, b"not found\n", &[]),
        Missing::Empty => (503, b"no segments yet\n", &retry),
    };
    respond(&ctx.counters, sock, code, "text/plain", body, extra).await
}

/// Writes a segment from the ring's own buffers.
async fn segment(
    sock: &mut TcpStream,
    ctx: &Context,
    parts: Vec<Bytes>,
    head: bool,
) -> std::io::Result<()> {
    let len: usize = parts.iter().map(Bytes::len).sum();
    let length = len.to_string();
    let extra = [
        ("Content-Length", length.as_str()),
        ("Cache-Control", "max-age=10"),
    ];
    ctx.counters.response(200);
    let head_text = response::head(200, SEGMENT_TYPE, len, &extra);
    let write = async {
        sock.write_all(head_text.as_bytes()).await?;
        if !head {
            for p in &parts {
                sock.write_all(p).await?;
            }
        }
        sock.shutdown().await
    };
    let written = tokio::time::timeout(SEGMENT_TIMEOUT, write)
        .await
        .unwrap_or_else(|_| Err(std::io::ErrorKind::TimedOut.into()));
    if written.is_ok() && !head {
        ctx.counters.sent(len, false);
    }
    written
}

/// The multivariant playlist: every running rung with segments (the start
/// rung first: a player begins with the first), or only the playlist that
/// follows the rung everyone is given while the operator pins one or a shared
/// policy decides one rung for all. None while nothing is listed.
fn multivariant(ctx: &Context) -> Option<String> {
    let cfg = ctx.config.get();
    let ladder = cfg.ladder();
    let stats = ctx.hub.hls_stats();
    let one_for_all = cfg.adapt.policy.shared() || ctx.viewers.adapt_status().pinned.is_some();
    let listed = if one_for_all {
        vec![stats.live]
            .into_iter()
            .filter(|l| l.segments > 0)
            .collect()
    } else {
        let start = cfg.start_rung();
        let mut rungs = stats.rungs;
        rungs.sort_by_key(|r| (r.rung != start, r.rung));
        rungs
    };
    // A passthrough rung's figures may be measured from the camera's stream:
    // the running encoders' figures are the ones in effect.
    let running = match ladder.iter().any(|r| r.passthrough) {
        true => ctx.status.status().encoders,
        false => Vec::new(),
    };
    let variants: Vec<Variant> = listed
        .into_iter()
        .filter_map(|r| {
            let mut rung = ladder.get(r.rung)?.stated();
            if let Some(e) = running.iter().find(|e| e.rung == r.rung) {
                (rung.width, rung.height) = (e.width, e.height);
                (rung.fps, rung.bitrate_kbps) = (e.fps, e.bitrate_kbps);
            }
            let configured = u64::from(rung.bitrate_kbps) * 1000;
            Some(Variant {
                uri: r.playlist,
                bandwidth: r.peak_bps.max(configured),
                average: if r.average_bps > 0 {
                    r.average_bps
                } else {
                    configured
                },
                width: rung.width,
                height: rung.height,
                fps: rung.fps,
                codecs: r.codec,
            })
        })
        .collect();
    (!variants.is_empty()).then(|| hls::multivariant(&variants))
}
