//! `[[output]]` pushes, fed from the hub like a viewer, so that they get the
//! spliced stream: one continuous MPEG-TS across rung switches, never two
//! encoders' outputs at once, and a failing push never touches the encoder.
//!
//! - `udp://` is sent by the daemon itself: 7 TS packets a datagram.
//! - `rtmp://`, `rtmps://`, `srt://` go through a supervised `ffmpeg -c copy`
//!   (remuxing only: FLV for RTMP, MPEG-TS for SRT) that reads from a pipe.

use crate::config::{Config, Output};
use crate::media::relay::{Hub, Reader};
use crate::supervise::{self, Backoff, ChildInfo, Pipes, SharedInfo, Spec};
use serde::Serialize;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::io::AsyncWriteExt;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

/// Datagram payload for UDP pushes: 7 whole TS packets, as cameras and ffmpeg send.
pub const DATAGRAM: usize = 7 * 188;
/// A push further behind live than this skips to the newest keyframe.
const MAX_LAG: Duration = Duration::from_millis(1500);

/// A push's running figures.
#[derive(Debug, Default)]
pub struct PushStats {
    pub bytes_sent: AtomicU64,
    pub skips: AtomicU64,
    pub send_errors: AtomicU64,
    /// The remuxing ffmpeg, for uplinks.
    pub remuxer: Mutex<Option<SharedInfo>>,
}

/// What `/status` shows of a push.
#[derive(Debug, Clone, Default, Serialize, PartialEq)]
pub struct PushStatus {
    pub bytes_sent: u64,
    pub skips: u64,
    pub send_errors: u64,
    /// The remuxing ffmpeg (uplinks only).
    pub remuxer_pid: Option<u32>,
    pub remuxer_restarts: Option<u64>,
    pub last_error: Option<String>,
}

impl PushStats {
    pub fn status(&self) -> PushStatus {
        let remuxer = self
            .remuxer
            .lock()
            .unwrap()
            .as_ref()
            .map(|i| i.lock().unwrap().clone());
        PushStatus {
            bytes_sent: self.bytes_sent.load(Ordering::Relaxed),
            skips: self.skips.load(Ordering::Relaxed),
            send_errors: self.send_errors.load(Ordering::Relaxed),
            remuxer_pid: remuxer.as_ref().and_then(|r| r.pid),
            remuxer_restarts: remuxer.as_ref().map(|r| r.restarts),
            last_error: remuxer.and_then(|r| r.last_stderr.or(r.last_exit)),
        }
    }
}

/// An output URL fit to show on status pages and in logs: user info, the
/// query (SRT's `passphrase` and `streamid`) and an RTMP stream key (the path
/// after the application name) become `***`. Pure.
pub fn redacted(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else {
        return "***".into();
    };
    let (rest, query) = match rest.split_once('?') {
        Some((r, q)) if !q.is_empty() => (r, Some("***")),
        Some((r, _)) => (r, None),
        None => (rest, None),
    };
    let (authority, path) = match rest.find('/') {
        Some(i) => rest.split_at(i),
        None => (rest, ""),
    };
    let host = match authority.rsplit_once('@') {
        Some((_, host)) => format!("***@{host}"),
        None => authority.to_string(),
    };
    let path = if scheme.to_ascii_lowercase().starts_with("rtmp") {
        // /app/key... keeps the application, hides the key.
        let mut segments = path.trim_start_matches('/').splitn(2, '/');
        match (segments.next(), segments.next()) {
            (Some(app), Some(key)) if !key.is_empty() => format!("/{app}/***"),
            _ => path.to_string(),
        }
    } else {
        path.to_string()
    };
    let mut out = format!("{scheme}://{host}{path}");
    if let Some(q) = query {
        out.push('?');
        out.push_str(q);
    }
    out
}

/// ffmpeg's arguments to remux the hub's MPEG-TS (stdin) to an uplink.
pub fn remux_args(o: &Output) -> Vec<String> {
    let mut a: Vec<String> = [
        "-hide_banner",
        "-nostdin",
        "-loglevel",
        "warning",
        "-f",
        "mpegts",
        "-i",
        "pipe:0",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    a.extend(["-map", "0:v:0", "-c", "copy", "-f", o.url.format()].map(String::from));
    a.push(o.url.ffmpeg_url());
    a
}

/// Which rung a push follows: asked before every read, told after every move.
/// (The rung is decided elsewhere; a push only follows.)
#[derive(Clone)]
pub struct Steering {
    pub want: Arc<dyn Fn() -> Option<usize> + Send + Sync>,
    pub reached: Arc<dyn Fn(usize) + Send + Sync>,
}

/// A running push: stops (and stops its ffmpeg) when dropped through `stop`.
pub struct Push {
    pub stats: Arc<PushStats>,
    task: JoinHandle<()>,
    stop: CancellationToken,
}

impl Push {
    /// Starts pushing to `o`; cancelling `stop` (or calling `stop`) ends it.
    pub fn start(
        cfg: &Config,
        o: &Output,
        hub: Arc<Hub>,
        steering: Steering,
        stop: CancellationToken,
    ) -> Push {
        let stats = Arc::new(PushStats::default());
        let task = match o.url.udp_target() {
            Some(addr) => {
                let (stop, push) = (stop.clone(), udp_push(addr, hub, steering, stats.clone()));
                tokio::spawn(async move {
                    tokio::select! {
                        _ = stop.cancelled() => {}
                        _ = push => {}
                    }
                })
            }
            None => {
                let info: SharedInfo = Arc::new(Mutex::new(ChildInfo::default()));
                *stats.remuxer.lock().unwrap() = Some(info.clone());
                let e = &cfg.encoder;
                let secs = Duration::from_secs_f64;
                let spec = Spec {
                    name: format!("output {}", redacted(&o.url.0)),
                    program: e.ffmpeg.clone(),
                    args: remux_args(o),
                    pipe_stdin: true,
                    pipe_stdout: false,
                    backoff: Backoff::new(
                        secs(e.restart_initial_s),
                        secs(e.restart_max_s),
                        secs(e.restart_reset_s),
                    ),
                    stop_grace: secs(e.stop_grace_s),
                    watchdog: None,
                    redact: vec![(o.url.0.clone(), redacted(&o.url.0))],
                };
                let feeder: Arc<Mutex<Option<JoinHandle<()>>>> = Arc::default();
                let (st, slot) = (stats.clone(), feeder.clone());
                let on_start = move |pipes: Pipes| {
                    if let Some(stdin) = pipes.stdin {
                        let old = slot.lock().unwrap().replace(tokio::spawn(pipe_push(
                            stdin,
                            hub.clone(),
                            steering.clone(),
                            st.clone(),
                        )));
                        if let Some(old) = old {
                            old.abort();
                        }
                    }
                };
                let supervised = supervise::supervise(spec, info, stop.clone(), on_start);
                tokio::spawn(async move {
                    supervised.await;
                    if let Some(f) = feeder.lock().unwrap().take() {
                        f.abort();
                    }
                })
            }
        };
        Push { stats, task, stop }
    }

    pub async fn stop(self) {
        self.stop.cancel();
        let _ = self.task.await;
    }
}

/// Where a push's bytes go.
trait Sink {
    /// Delivers `buf` (whole TS packets); the bytes delivered, or Err to stop.
    async fn send(&mut self, buf: &[u8]) -> Result<usize, ()>;
}

/// Feeds `sink` from the hub, like a viewer, until the sink gives up.
async fn feed_from_hub(
    hub: Arc<Hub>,
    steering: Steering,
    stats: Arc<PushStats>,
    mut sink: impl Sink,
) {
    let mut newest = hub.watch();
    let mut reader = Reader::new(hub, (steering.want)().unwrap_or(0), MAX_LAG);
    let mut buf = Vec::new();
    let mut on = None;
    loop {
        newest.mark_unchanged();
        if let Some(rung) = (steering.want)() {
            reader.set_rung(rung);
        }
        let filled = reader.fill(&mut buf, 64 * 1024);
        if reader.rung() != on {
            on = reader.rung();
            if let Some(rung) = on {
                (steering.reached)(rung);
            }
        }
        let Some(filled) = filled else {
            if newest.changed().await.is_err() {
                return;
            }
            continue;
        };
        stats
            .skips
            .fetch_add(u64::from(filled.skipped), Ordering::Relaxed);
        match sink.send(&buf).await {
            Ok(n) => stats.bytes_sent.fetch_add(n as u64, Ordering::Relaxed),
            Err(()) => return,
        };
    }
}

/// A UDP push: datagrams of whole TS packets, sent by the daemon.
struct UdpSink {
    sock: tokio::net::UdpSocket,
    addr: SocketAddr,
    stats: Arc<PushStats>,
    complained: bool,
}

impl Sink for UdpSink {
    async fn send(&mut self, buf: &[u8]) -> Result<usize, ()> {
        let mut sent = 0;
        for datagram in buf.chunks(DATAGRAM) {
            match self.sock.send_to(datagram, self.addr).await {
                Ok(n) => {
                    sent += n;
                    self.complained = false;
                }
                Err(e) => {
                    // The phone is away (unreachable, refused): keep going, it may come back.
                    self.stats.send_errors.fetch_add(1, Ordering::Relaxed);
                    if !self.complained {
                        log::warn!("output udp://{}: {e}", self.addr);
                        self.complained = true;
                    }
                }
            }
        }
        Ok(sent)
    }
}

/// An uplink: the stdin of the remuxing ffmpeg.
struct PipeSink(tokio::process::ChildStdin);

impl Sink for PipeSink {
    async fn send(&mut self, buf: &[u8]) -> Result<usize, ()> {
        // An error means ffmpeg ended; the supervisor restarts it with a new pipe.
        self.0
            .write_all(buf)
            .await
            .map(|()| buf.len())
            .map_err(|_| ())
    }
}

/// Sends the hub's stream to `addr` as datagrams of whole TS packets.
async fn udp_push(addr: SocketAddr, hub: Arc<Hub>, steering: Steering, stats: Arc<PushStats>) {
    let any: SocketAddr = if addr.is_ipv4() {
        "0.0.0.0:0".parse().unwrap()
    } else {
        "[::]:0".parse().unwrap()
    };
    match tokio::net::UdpSocket::bind(any).await {
        Ok(sock) => {
            feed_from_hub(
                hub,
                steering,
                stats.clone(),
                UdpSink {
                    sock,
                    addr,
                    stats,
                    complained: false,
                },
            )
            .await
        }
        Err(e) => log::warn!("output udp://{addr}: cannot open a socket: {e}"),
    }
}

/// Writes the hub's stream into a remuxing ffmpeg's stdin until it goes away.
async fn pipe_push(
    stdin: tokio::process::ChildStdin,
    hub: Arc<Hub>,
    steering: Steering,
    stats: Arc<PushStats>,
) {
    feed_from_hub(hub, steering, stats, PipeSink(stdin)).await
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::Path;

    fn output(url: &str) -> Output {
        let cfg = crate::config::parse(Path::new("t"), &format!("[[output]]\nurl = \"{url}\"\n"))
            .unwrap();
        cfg.outputs[0].clone()
    }

    #[test]
    fn uplinks_are_remuxed_without_reencoding() {
        let a = remux_args(&output("rtmp://ingest.example/live/key"));
        assert_eq!(
            &a[a.len() - 3..],
            ["-f", "flv", "rtmp://ingest.example/live/key"]
        );
        assert!(a.windows(2).any(|w| w == ["-c", "copy"]));
        assert!(a.windows(2).any(|w| w == ["-i", "pipe:0"]));
        let a = remux_args(&output("srt://10.0.0.5:9000?mode=caller"));
        assert_eq!(
            &a[a.len() - 2..],
            ["mpegts", "srt://10.0.0.5:9000?mode=caller"]
        );
    }

    #[test]
    fn secrets_in_output_urls_are_masked() {
        for (url, shown) in [
            ("udp://192.168.4.2:5000", "udp://192.168.4.2:5000"),
            (
                "rtmp://ingest.example/live/s3cr3t-key",
                "rtmp://ingest.example/live/***",
            ),
            (
                "rtmps://u:pw@a.example:443/app/key/more?auth=1",
                "rtmps://***@a.example:443/app/***?***",
            ),
            ("rtmp://ingest.example/live", "rtmp://ingest.example/live"),
            (
                "srt://10.0.0.5:9000?mode=caller&passphrase=abc&streamid=x",
                "srt://10.0.0.5:9000?***",
            ),
            ("srt://[fd00::5]:9000", "srt://[fd00::5]:9000"),
            ("nonsense", "***"),
        ] {
            assert_eq!(redacted(url), shown, "{url}");
        }
    }

    #[test]
    fn udp_outputs_are_sent_by_the_daemon() {
        assert_eq!(
            output("udp://192.168.4.2:5000").url.udp_target(),
            Some("192.168.4.2:5000".parse().unwrap())
        );
        assert_eq!(output("srt://10.0.0.5:9000").url.udp_target(), None);
    }
}
