//! `/events`: live figures for the web page as Server-Sent Events.
//!
//! One publisher task samples the daemon's status four times a second and
//! broadcasts pre-rendered SSE frames:
//! - `status` (every second): the whole `/status` snapshot plus `t` (Unix ms);
//! - `rung` (at once, on change): the encoded rung, its size and bitrate;
//! - `camera` (at once, on change): the source state and, when present, the camera's;
//! - `log` (with `status`, when there is something new): the warnings and errors
//!   kept since the last `log` frame (`log_ring`), secrets masked.
//!
//! Each `/events` client gets a `hello` first (the ladder and the last minutes
//! of rung history, for the graphs, and every kept warning and error) and then the broadcast frames. A client also
//! gets `me` (the address of its own `/stream.ts` connection) when the page tagged
//! both requests with the same `?client=` token, so the page can find its own
//! viewer entry and link figures among all viewers.
//!
//! A slow client never holds anything up: the broadcast channel drops frames for
//! a client that lags (it simply gets the newer ones), and a client whose socket
//! accepts nothing for `WRITE_TIMEOUT` is disconnected.

use crate::clock::unix_ms;
use crate::http::response::respond;
use crate::http::Context;
use crate::status::Status;
use log::debug;
use serde_json::{json, Value};
use std::collections::{HashMap, VecDeque};
use std::net::{IpAddr, SocketAddr};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::sync::{broadcast, Semaphore};
use tokio_util::sync::CancellationToken;

const TICK: Duration = Duration::from_millis(250);
/// Status frames go out every this many ticks.
const STATUS_EVERY: u64 = 4;
/// Rung history kept for a page that opens later (one point per second).
const HISTORY_POINTS: usize = 600;
const WRITE_TIMEOUT: Duration = Duration::from_secs(10);
/// Frames buffered per client before it starts missing some.
const CHANNEL_FRAMES: usize = 32;
/// How many `/events` streams per allowed viewer (a page reconnecting briefly has two).
pub const CLIENTS_PER_VIEWER: usize = 2;

/// The web page's side of the shared state.
pub struct Web {
    /// Page token -> address of that page's `/stream.ts` connection.
    clients: Mutex<HashMap<String, SocketAddr>>,
    tx: broadcast::Sender<Arc<str>>,
    /// The newest `status` frame, sent to a client as soon as it connects.
    last_status: Mutex<Option<Arc<str>>>,
    history: Mutex<VecDeque<Value>>,
    /// One permit per open `/events` stream.
    slots: Semaphore,
    /// Open `/events` streams by client address (entries removed at zero).
    by_address: Mutex<HashMap<IpAddr, usize>>,
    capacity: Mutex<usize>,
}

impl Web {
    /// Room for `max_viewers` pages' event streams.
    pub fn new(max_viewers: usize) -> Web {
        let capacity = max_viewers * CLIENTS_PER_VIEWER;
        Web {
            clients: Mutex::default(),
            tx: broadcast::channel(CHANNEL_FRAMES).0,
            last_status: Mutex::default(),
            history: Mutex::default(),
            slots: Semaphore::new(capacity),
            by_address: Mutex::default(),
            capacity: Mutex::new(capacity),
        }
    }

    /// A place for one more stream from `ip`, if it has fewer than `most`.
    fn take_address_place(&self, ip: IpAddr, most: usize) -> Option<AddressPlace<'_>> {
        let mut m = self.by_address.lock().unwrap();
        let n = m.entry(ip).or_default();
        if *n >= most {
            return None;
        }
        *n += 1;
        Some(AddressPlace { web: self, ip })
    }

    /// Follows a new `server.max_viewers` (reload); streams already open stay.
    pub fn resize(&self, max_viewers: usize) {
        let new = max_viewers * CLIENTS_PER_VIEWER;
        let mut cap = self.capacity.lock().unwrap();
        if new > *cap {
            self.slots.add_permits(new - *cap);
        } else {
            self.slots.forget_permits(*cap - new);
        }
        *cap = new;
    }

    /// Open `/events` streams.
    pub fn open_streams(&self) -> usize {
        self.capacity
            .lock()
            .unwrap()
            .saturating_sub(self.slots.available_permits())
    }
}

/// One open `/events` stream counted against its address; freed on drop.
struct AddressPlace<'a> {
    web: &'a Web,
    ip: IpAddr,
}

impl Drop for AddressPlace<'_> {
    fn drop(&mut self) {
        let mut m = self.web.by_address.lock().unwrap();
        if let Some(n) = m.get_mut(&self.ip) {
            *n -= 1;
            if *n == 0 {
                m.remove(&self.ip);
            }
        }
    }
}

/// The `client` token of a query string, if well-formed (1-64 of `[A-Za-z0-9_-]`).
pub fn client_token(query: Option<&str>) -> Option<&str> {
    let token = crate::http::request::query_value(query, "client")?;
    let ok = (1..=64).contains(&token.len())
        && token
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
    ok.then_some(token)
}

impl Web {
    /// A tagged `/stream.ts` connection started.
    pub fn stream_started(&self, token: &str, peer: SocketAddr) {
        let mut c = self.clients.lock().unwrap();
        // Bounded: a page has one token; drop the oldest-looking entries if flooded.
        if c.len() >= 1024 {
            c.clear();
        }
        c.insert(token.to_string(), peer);
    }

    /// A tagged `/stream.ts` connection ended (a newer one of the same page is kept).
    pub fn stream_ended(&self, token: &str, peer: SocketAddr) {
        let mut c = self.clients.lock().unwrap();
        if c.get(token) == Some(&peer) {
            c.remove(token);
        }
    }

    fn stream_of(&self, token: &str) -> Option<SocketAddr> {
        self.clients.lock().unwrap().get(token).copied()
    }
}

/// One SSE frame; `data` is JSON (one line, so no escaping is needed).
pub fn frame(event: &str, data: &Value) -> String {
    format!("event: {event}\ndata: {data}\n\n")
}

/// What decides a `rung` event: the start rung's encoder (what a new viewer
/// gets) and the rungs running. Each viewer's own rung is in `status`.
fn rung_of(s: &Status) -> Value {
    let running: Vec<usize> = s.encoders.iter().map(|e| e.rung).collect();
    match &s.encoder {
        Some(e) => json!({
            "rung": e.rung,
            "generation": e.generation,
            "width": e.width,
            "height": e.height,
            "fps": e.fps,
            "bitrate_kbps": e.bitrate_kbps,
            "running": running,
        }),
        None => json!({ "rung": null, "running": running }),
    }
}

/// What decides a `camera` event: the source state and the camera's, if the
/// status has one (the camera module adds it as `camera`).
fn camera_of(s: &Status, status_json: &Value) -> Value {
    json!({
        "source": s.source.state,
        "camera": status_json.get("camera").cloned().unwrap_or(Value::Null),
    })
}

/// Samples the status and broadcasts frames until `stop`.
pub async fn publish(ctx: Arc<Context>, stop: CancellationToken) {
    let web = &ctx.web;
    let mut tick = tokio::time::interval(TICK);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
    let mut last_rung = Value::Null;
    let mut last_camera = Value::Null;
    let mut last_log = 0;
    for n in 0u64.. {
        tokio::select! {
            _ = stop.cancelled() => return,
            _ = tick.tick() => {}
        }
        let status_tick = n % STATUS_EVERY == 0;
        let listening = web.tx.receiver_count() > 0;
        if !listening && !status_tick {
            continue;
        }
        let status = ctx.status.status();
        let t = unix_ms();
        let mut value = serde_json::to_value(&status).unwrap_or(Value::Null);
        let rung = rung_of(&status);
        let camera = camera_of(&status, &value);
        if rung != last_rung {
            let mut ev = rung.clone();
            ev["t"] = json!(t);
            let _ = web.tx.send(Arc::from(frame("rung", &ev)));
            last_rung = rung;
        }
        if camera != last_camera {
            let mut ev = camera.clone();
            ev["t"] = json!(t);
            let _ = web.tx.send(Arc::from(frame("camera", &ev)));
            last_camera = camera;
        }
        if status_tick {
            {
                let mut h = web.history.lock().unwrap();
                if h.len() >= HISTORY_POINTS {
                    h.pop_front();
                }
                h.push_back(json!({
                    "t": t,
                    "rung": status.encoder.as_ref().map(|e| e.rung),
                    "bitrate_kbps": status.encoder.as_ref().map(|e| e.bitrate_kbps),
                    "viewers": status.viewers.len(),
                    "source": status.source.state,
                }));
            }
            let log_changes = crate::log_ring::changes();
            if log_changes != last_log && listening {
                let log = crate::log_ring::snapshot(last_log);
                let _ = web.tx.send(Arc::from(frame("log", &json!(log))));
                last_log = log_changes;
            }
            value["t"] = json!(t);
            let f: Arc<str> = Arc::from(frame("status", &value));
            *web.last_status.lock().unwrap() = Some(f.clone());
            let _ = web.tx.send(f);
        }
    }
}

/// Serves one `/events` client until it leaves or stops reading.
pub async fn serve(
    mut sock: TcpStream,
    peer: SocketAddr,
    ctx: Arc<Context>,
    query: Option<String>,
    stop: CancellationToken,
) {
    // As for viewers: one device cannot take every place.
    let per_address = ctx.config.get().server.max_viewers_per_address * CLIENTS_PER_VIEWER;
    let address_place = ctx.web.take_address_place(peer.ip(), per_address);
    let slot = ctx.web.slots.try_acquire();
    let (Some(_address_place), Ok(_slot)) = (address_place, slot) else {
        let _ = respond(
            &ctx.counters,
            &mut sock,
            503,
            "text/plain",
            b"too many event streams\n",
            &[("Retry-After", "5")],
        )
        .await;
        return;
    };
    let token = client_token(query.as_deref()).map(str::to_string);
    let mut rx = ctx.web.tx.subscribe();
    ctx.counters.response(200);
    let hello = {
        let cfg = ctx.config.get();
        let history: Vec<Value> = ctx.web.history.lock().unwrap().iter().cloned().collect();
        let log = crate::log_ring::snapshot(0);
        json!({ "ladder": cfg.ladder(), "history": history, "log": log, "t": unix_ms() })
    };
    let mut start = String::from(
        "HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nCache-Control: no-store\r\nConnection: close\r\nX-Accel-Buffering: no\r\n\r\nretry: 2000\n\n",
    );
    start.push_str(&frame("hello", &hello));
    if let Some(f) = ctx.web.last_status.lock().unwrap().clone() {
        start.push_str(&f);
    }
    let mut me: Option<SocketAddr> = None;
    let mut pending = start;
    let why = loop {
        if let Some(t) = &token {
            let now = ctx.web.stream_of(t);
            if now != me {
                me = now;
                pending.push_str(&frame(
                    "me",
                    &json!({ "address": me.map(|a| a.to_string()) }),
                ));
            }
        }
        if !pending.is_empty() {
            match tokio::time::timeout(WRITE_TIMEOUT, sock.write_all(pending.as_bytes())).await {
                Ok(Ok(())) => pending.clear(),
                Ok(Err(_)) => break "closed by the client",
                Err(_) => break "stalled: it read nothing for the write timeout",
            }
        }
        let mut probe = [0u8; 256];
        tokio::select! {
            _ = stop.cancelled() => break "the daemon is stopping",
            r = rx.recv() => match r {
                Ok(f) => pending.push_str(&f),
                Err(broadcast::error::RecvError::Lagged(n)) => {
                    debug!("events: {peer} missed {n} frames");
                }
                Err(broadcast::error::RecvError::Closed) => break "shutting down",
            },
            r = sock.read(&mut probe) => match r {
                Ok(0) | Err(_) => break "closed by the client",
                Ok(_) => {}
            },
        }
    };
    debug!("events: {peer} left: {why}");
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_are_checked() {
        assert_eq!(client_token(Some("client=abc-1_Z")), Some("abc-1_Z"));
        assert_eq!(client_token(Some("x=1&client=q")), Some("q"));
        assert_eq!(client_token(Some("client=")), None);
        assert_eq!(client_token(Some("client=a%20b")), None);
        assert_eq!(
            client_token(Some(&format!("client={}", "a".repeat(65)))),
            None
        );
        assert_eq!(client_token(None), None);
    }

    #[test]
    fn frames_are_single_line_json_events() {
        let f = frame("rung", &json!({"rung": 1, "note": "a\nb"}));
        assert_eq!(f, "event: rung\ndata: {\"note\":\"a\\nb\",\"rung\":1}\n\n");
    }

    #[test]
    fn a_page_finds_its_stream_by_token() {
        let web = Web::new(4);
        let a: SocketAddr = "10.0.0.2:5000".parse().unwrap();
        let b: SocketAddr = "10.0.0.2:5001".parse().unwrap();
        web.stream_started("t1", a);
        assert_eq!(web.stream_of("t1"), Some(a));
        web.stream_started("t1", b); // the page reconnected before the old one ended
        web.stream_ended("t1", a);
        assert_eq!(web.stream_of("t1"), Some(b));
        web.stream_ended("t1", b);
        assert_eq!(web.stream_of("t1"), None);
    }
}
