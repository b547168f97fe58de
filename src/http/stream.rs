//! `/stream.ts`: one viewer's live MPEG-TS. The viewer reads the hub at its
//! own pace (a slow one skips to the newest keyframe, never holding anyone
//! up), its link is sampled while it is written to, and the padding of a
//! headroom probe goes out on its own socket.

use crate::control::viewer_link::{
    buffer_rate_kbps, has_room, padding, resize_worthwhile, send_buffer_for, size_send_buffer,
    tune_viewer_socket, ViewerLink, PAD_EVERY, ROOM_EVERY,
};
use crate::control::viewers::{Full, Places};
use crate::http::response::respond;
use crate::http::{events, Context};
use crate::media::relay::Reader;
use log::{debug, info};
use std::net::SocketAddr;
use std::os::fd::AsRawFd;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio_util::sync::CancellationToken;

/// Bytes handed to one viewer's socket per write; lag is re-checked between writes.
const WRITE_BATCH: usize = 16 * 1024;
/// A batch is written in pieces of whole packets (43 × 188 bytes).
const TS_PACKET: usize = 188;
const PIECE: usize = 43 * TS_PACKET;
/// A viewer this far behind live that must move to a lower rung stops the
/// frame it is being sent (see `must_move_down`).
const MOVE_DOWN_BEHIND: Duration = Duration::from_millis(300);

/// Leaves the registry however the viewer's task ends.
struct Joined<'a> {
    ctx: &'a Context,
    id: u64,
}

impl Drop for Joined<'_> {
    fn drop(&mut self) {
        self.ctx.viewers.leave(self.id);
    }
}

/// Serves one viewer until it leaves, stalls, or the daemon stops.
pub async fn serve(
    mut sock: TcpStream,
    peer: SocketAddr,
    ctx: Arc<Context>,
    head_only: bool,
    query: Option<String>,
    stop: CancellationToken,
) {
    let cfg = ctx.config.get();
    let viewer = match ctx.viewers.join(peer, Places::of(&cfg.server)) {
        Ok(id) => id,
        Err(full) => {
            ctx.counters.viewer_rejected();
            let body: &[u8] = match full {
                Full::Everyone => b"too many viewers\n",
                Full::Address => b"too many viewers from your address\n",
            };
            let _ = respond(
                &ctx.counters,
                &mut sock,
                503,
                "text/plain",
                body,
                &[("Retry-After", "5")],
            )
            .await;
            return;
        }
    };
    let _joined = Joined {
        ctx: &ctx,
        id: viewer,
    };
    ctx.counters.response(200);
    ctx.counters.viewer_accepted();
    tune_viewer_socket(sock.as_raw_fd());
    let head = "HTTP/1.1 200 OK\r\nContent-Type: video/mp2t\r\nCache-Control: no-store\r\nConnection: close\r\n\r\n";
    if sock.write_all(head.as_bytes()).await.is_err() || head_only {
        return;
    }
    info!("viewer {viewer} ({peer}) connected");
    // The web page tags its stream so that its `/events` can name it.
    let token = events::client_token(query.as_deref()).map(str::to_string);
    if let Some(t) = &token {
        ctx.web.stream_started(t, peer);
    }
    let max_lag = Duration::from_millis(cfg.server.viewer_max_lag_ms);
    let stall = Duration::from_secs_f64(cfg.server.viewer_stall_timeout_s);
    let every = Duration::from_millis(cfg.adapt.sample_interval_ms);
    let mut newest = ctx.hub.watch();
    let start = ctx.viewers.want(viewer).unwrap_or(cfg.start_rung());
    let mut reader = Reader::new(ctx.hub.clone(), start, max_lag);
    let mut on: Option<usize> = None;
    let mut sized_for: Option<u64> = None;
    let mut buf = Vec::with_capacity(WRITE_BATCH + 4096);
    let mut link = ViewerLink::new(sock.as_raw_fd(), viewer, ctx.viewers.clone(), every);
    let mut pad_ticker = tokio::time::interval(PAD_EVERY);
    pad_ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let why = loop {
        newest.mark_unchanged();
        follow_controller(&ctx, viewer, &mut reader);
        let filled = reader.fill(&mut buf, WRITE_BATCH);
        if let Some(rung) = filled
            .as_ref()
            .and_then(|f| f.switched_to)
            .or(reader.rung())
        {
            if on != Some(rung) {
                on = Some(rung);
                ctx.viewers.reached(viewer, rung);
            }
        }
        // The socket holds a few round trips of what this viewer is sent, and
        // no more than its link lately carried in that time.
        let rung_kbps = reader.rung().and_then(|r| ctx.viewers.bitrate_kbps(r));
        if let Some(rung_kbps) = rung_kbps {
            let padding = ctx.viewers.padding_kbps(viewer);
            let kbps = buffer_rate_kbps(u64::from(rung_kbps), padding, link.carried_kbps());
            let bytes = send_buffer_for(kbps, link.min_rtt());
            if resize_worthwhile(sized_for, bytes) {
                sized_for = Some(bytes);
                size_send_buffer(sock.as_raw_fd(), bytes);
                debug!("viewer {viewer}: send buffer {bytes} bytes, for {kbps} kbit/s");
            }
        }
        let Some(filled) = filled else {
            // Nothing new: wait for the hub, but notice a closed connection meanwhile.
            let mut probe = [0u8; 256];
            tokio::select! {
                _ = stop.cancelled() => break STOPPING,
                _ = newest.changed() => continue,
                r = sock.read(&mut probe) => match r {
                    Ok(0) | Err(_) => break CLOSED,
                    Ok(_) => continue, // players may send nothing; ignore anything they do
                },
                _ = link.ticker.tick() => {
                    sample(&mut link, &mut reader, &ctx, None);
                    continue;
                }
                _ = pad_ticker.tick(), if ctx.viewers.padding_kbps(viewer) > 0 => {
                    // Padding is whole packets like the video, so it is written
                    // whole, and a link it fills is watched as one the video
                    // fills: only the stall timeout drops the viewer.
                    if let Some(pad) = padding(sock.as_raw_fd(), ctx.viewers.padding_kbps(viewer)) {
                        let mut w = Writer { sock: &mut sock, link: &mut link, reader: &mut reader, ctx: &ctx, viewer, stall, stop: &stop };
                        if let Err(why) = w.write(pad, None).await {
                            break why;
                        }
                    }
                    continue;
                }
            }
        };
        // In pieces of whole packets, measuring while a slow link drains them.
        // A viewer told to move down while a big frame crawls over its link,
        // far behind live, leaves the rest of that frame unsent.
        let mut sent = 0;
        let written = loop {
            if sent == buf.len() {
                break Ok(());
            }
            let end = (sent + PIECE).min(buf.len());
            let mut w = Writer {
                sock: &mut sock,
                link: &mut link,
                reader: &mut reader,
                ctx: &ctx,
                viewer,
                stall,
                stop: &stop,
            };
            match w.write(&buf[sent..end], Some(filled.oldest)).await {
                Ok(Wrote::All) => sent = end,
                Ok(Wrote::MovingDown(part)) => {
                    sent += part;
                    debug!(
                        "viewer {viewer}: moving down; {} bytes of the old rung left unsent",
                        buf.len() - sent
                    );
                    break Ok(());
                }
                Err(why) => break Err(why),
            }
        };
        if let Err(why) = written {
            break why;
        }
        let lag = filled.oldest.elapsed();
        ctx.counters.sent(sent, filled.skipped);
        ctx.viewers.progress(viewer, sent, filled.skipped, lag);
        if filled.skipped {
            debug!(
                "viewer {viewer} was behind; skipped to the newest keyframe ({} ms old)",
                lag.as_millis()
            );
        }
    };
    info!("viewer {viewer} ({peer}) left: {why}");
    if let Some(t) = &token {
        ctx.web.stream_ended(t, peer);
    }
}

/// Writes to one viewer's socket while its link goes on being sampled.
struct Writer<'a> {
    sock: &'a mut TcpStream,
    link: &'a mut ViewerLink,
    reader: &'a mut Reader,
    ctx: &'a Context,
    viewer: u64,
    stall: Duration,
    stop: &'a CancellationToken,
}

/// How a write of video ended (an error drops the viewer).
enum Wrote {
    All,
    /// Only this many bytes (whole TS packets) were written: the viewer moves
    /// down (see `must_move_down`) and its link is better spent on the lower
    /// rung's keyframe than on the rest.
    MovingDown(usize),
}

impl Writer<'_> {
    /// Writes `data` whole, unless it is video (`oldest`: when the oldest
    /// video in it reached the hub; None for padding) and the viewer is told
    /// to move down while it waits for room, before or part way through the
    /// write (it then stops at the end of a TS packet); the reason to drop
    /// the viewer if it closes, accepts nothing for the stall timeout, or the
    /// daemon stops.
    async fn write(&mut self, data: &[u8], oldest: Option<Instant>) -> Result<Wrote, &'static str> {
        let deadline = tokio::time::sleep(self.stall);
        tokio::pin!(deadline);
        let fd = self.sock.as_raw_fd();
        let mut at = 0;
        while at < data.len() {
            let packet_end = at % TS_PACKET == 0;
            if oldest.is_some() && packet_end && must_move_down(self.ctx, self.viewer, self.reader)
            {
                return Ok(Wrote::MovingDown(at));
            }
            // First room in the socket, then the write: what the kernel would
            // take beyond it would wait there, out of the hub's reach. Then
            // as much as the kernel takes at a time: a write waiting for the
            // send buffer to drain, on a link that just fell, hears of a step
            // down between its parts, not after the whole piece.
            let room = at > 0 || has_room(fd);
            let wrote = match room {
                true => self.sock.try_write(&data[at..]),
                false => Err(std::io::ErrorKind::WouldBlock.into()),
            };
            match wrote {
                Ok(0) => return Err(CLOSED),
                Ok(n) => {
                    at += n;
                    continue;
                }
                Err(e) if e.kind() != std::io::ErrorKind::WouldBlock => return Err(CLOSED),
                Err(_) => {}
            }
            // A viewer that went away is noticed meanwhile: it reads nothing
            // more, so no write would tell.
            tokio::select! {
                _ = tokio::time::sleep(ROOM_EVERY) => {}
                r = self.sock.writable(), if room => if r.is_err() {
                    return Err(CLOSED);
                },
                r = self.sock.readable() => if r.is_err() || closed(self.sock) {
                    return Err(CLOSED);
                },
                _ = self.link.ticker.tick() => sample(self.link, self.reader, self.ctx, oldest),
                _ = &mut deadline => return Err(STALLED),
                _ = self.stop.cancelled() => return Err(STOPPING),
            }
        }
        Ok(Wrote::All)
    }
}

/// Samples a viewer's link while a write waits: how late the video being
/// written is (`oldest`, or the hub's lag for padding), and what its socket holds.
fn sample(link: &mut ViewerLink, reader: &mut Reader, ctx: &Context, oldest: Option<Instant>) {
    let lag = oldest.map_or_else(|| reader.hub_lag(), |o| o.elapsed());
    let queued = link.sample(lag, reader.skips);
    reader.set_outside_lag(socket_lag(ctx, reader, queued));
}

/// Whether the viewer closed its end (or reset it). Players may send
/// anything or nothing; what they send is ignored.
fn closed(sock: &TcpStream) -> bool {
    let mut ignored = [0u8; 256];
    match sock.try_read(&mut ignored) {
        Ok(0) => true,
        Ok(_) => false,
        Err(e) => e.kind() != std::io::ErrorKind::WouldBlock,
    }
}

const CLOSED: &str = "closed by the viewer";
const STALLED: &str = "stalled: it accepted no data for the stall timeout";
const STOPPING: &str = "the daemon is stopping";

/// How long the video in the viewer's socket (`queued` bytes, not yet
/// acknowledged) takes to play at its rung's rate: that much later than what
/// waits in the hub it is.
fn socket_lag(ctx: &Context, reader: &Reader, queued: Option<u64>) -> Duration {
    let kbps = reader.rung().and_then(|r| ctx.viewers.bitrate_kbps(r));
    match (queued, kbps) {
        (Some(bytes), Some(kbps)) if kbps > 0 => Duration::from_millis(bytes * 8 / u64::from(kbps)),
        _ => Duration::ZERO,
    }
}

/// The viewer should be on a lower rung than its reader is, is behind live
/// or steps down because its link does not carry the rung, and that rung is
/// ready for it: what is left of the old rung's frame is not worth the wait.
/// The reader is told the rung now, not when the write is done: a decision
/// taken while a write waits for room counts at once.
fn must_move_down(ctx: &Context, viewer: u64, reader: &mut Reader) -> bool {
    follow_controller(ctx, viewer, reader);
    let stepping_down = ctx.viewers.stepping_down(viewer);
    match (ctx.viewers.want(viewer), reader.rung()) {
        (Some(want), Some(on)) if want > on => {
            (reader.lag() > MOVE_DOWN_BEHIND || stepping_down) && reader.can_move()
        }
        _ => false,
    }
}

/// Tells the viewer's reader the rung its controller wants for it, and
/// whether a move down is urgent.
fn follow_controller(ctx: &Context, viewer: u64, reader: &mut Reader) {
    if let Some(rung) = ctx.viewers.want(viewer) {
        reader.set_rung(rung);
    }
    reader.set_urgent(ctx.viewers.stepping_down(viewer));
}
