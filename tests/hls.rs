//! HLS from the hub, read by clients no one here wrote: ffmpeg's HLS demuxer
//! plays `/live.m3u8` from the real daemon on the demo camera (live H.264
//! whose timestamps advance over many segments, also across rung switches
//! made by the operator's pin, with the playlist's discontinuities), and
//! ffprobe decodes what it got. Playlists and segments are checked as text
//! and bytes; HLS readers keep their rung running but never start one.

mod common;

use common::*;
use livestreamd::media::ts::{Aligner, Demux, Kind, PACKET_LEN};
use std::collections::HashMap;
use std::io::Read;
use std::net::TcpStream;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// The test config: the small ladder, rungs stopped 3 s after nobody reads them.
const IDLE: &str = "[adapt]\nidle_rung_s = 3.0\n";

/// MPEG-TS read on a thread as it arrives: every byte, and when each video
/// frame (by PTS) first came.
struct Capture {
    bytes: Arc<Mutex<Vec<u8>>>,
    frames: Arc<Mutex<Vec<(Instant, u64)>>>,
    ended: Arc<AtomicBool>,
}

impl Capture {
    /// Reads `r`; with `http`, a response head comes first and is skipped.
    fn start(mut r: impl Read + Send + 'static, http: bool) -> Capture {
        let bytes = Arc::new(Mutex::new(Vec::new()));
        let frames = Arc::new(Mutex::new(Vec::new()));
        let ended = Arc::new(AtomicBool::new(false));
        let (b, f, e) = (bytes.clone(), frames.clone(), ended.clone());
        std::thread::spawn(move || {
            let mut head = Vec::new();
            let mut in_body = !http;
            let mut aligner = Aligner::default();
            let mut demux = Demux::default();
            let mut buf = vec![0u8; 65536];
            loop {
                let n = match r.read(&mut buf) {
                    Ok(0) | Err(_) => break,
                    Ok(n) => n,
                };
                let now = Instant::now();
                let rest: Vec<u8>;
                let body: &[u8] = if in_body {
                    &buf[..n]
                } else {
                    head.extend_from_slice(&buf[..n]);
                    let Some(i) = head.windows(4).position(|w| w == b"\r\n\r\n") else {
                        continue;
                    };
                    in_body = true;
                    rest = head.split_off(i + 4);
                    &rest
                };
                b.lock().unwrap().extend_from_slice(body);
                for p in aligner.push(body).chunks_exact(PACKET_LEN) {
                    if let Kind::Video { pts: Some(pts), .. } = demux.classify(p) {
                        f.lock().unwrap().push((now, pts));
                    }
                }
            }
            e.store(true, Ordering::SeqCst);
        });
        Capture {
            bytes,
            frames,
            ended,
        }
    }

    fn frames(&self) -> Vec<(Instant, u64)> {
        self.frames.lock().unwrap().clone()
    }

    fn bytes(&self) -> Vec<u8> {
        self.bytes.lock().unwrap().clone()
    }
}

/// ffmpeg as an HLS client: it plays `url` and writes what it gets, the
/// timestamps kept, as MPEG-TS to a pipe the test reads. Killed when dropped.
struct FfmpegHls {
    child: Child,
    out: Capture,
}

impl FfmpegHls {
    fn start(dir: &Path, name: &str, url: &str) -> FfmpegHls {
        let log = std::fs::File::create(dir.join(format!("{name}.log"))).unwrap();
        let mut child = Command::new("ffmpeg")
            .args(["-hide_banner", "-nostdin", "-loglevel", "info", "-i", url])
            .args(["-map", "0:v:0", "-c", "copy", "-copyts"])
            // The muxer would add 1.4 s to every timestamp otherwise.
            .args(["-muxdelay", "0", "-muxpreload", "0"])
            .args(["-flush_packets", "1", "-f", "mpegts", "pipe:1"])
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(log)
            .spawn()
            .expect("run ffmpeg");
        let out = Capture::start(child.stdout.take().unwrap(), false);
        FfmpegHls { child, out }
    }

    /// Waits until ffmpeg has written `n` frames.
    fn wait_frames(&self, n: usize, within: Duration) {
        wait_until(&format!("{n} frames from ffmpeg"), within, || {
            assert!(!self.out.ended.load(Ordering::SeqCst), "ffmpeg ended");
            (self.out.frames().len() >= n).then_some(())
        });
    }
}

impl Drop for FfmpegHls {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// `/stream.ts` read on a thread: when each frame reached a viewer of the
/// daemon itself (the live edge, to measure the HLS client's lag against).
fn live_edge(port: u16) -> Capture {
    let mut s = TcpStream::connect(("127.0.0.1", port)).unwrap();
    std::io::Write::write_all(
        &mut s,
        b"GET /stream.ts HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n",
    )
    .unwrap();
    Capture::start(s, true)
}

/// How long after the live edge each of `frames` came: median, p95, max (s).
fn lag(frames: &[(Instant, u64)], live: &[(Instant, u64)]) -> (usize, f64, f64, f64) {
    let first: HashMap<u64, Instant> = live.iter().rev().map(|(t, p)| (*p, *t)).collect();
    let mut lags: Vec<f64> = frames
        .iter()
        .filter_map(|(t, p)| Some(t.saturating_duration_since(*first.get(p)?).as_secs_f64()))
        .collect();
    assert!(!lags.is_empty(), "no frame of the HLS client was seen live");
    lags.sort_by(f64::total_cmp);
    let at = |q: f64| lags[((lags.len() as f64 * q) as usize).min(lags.len() - 1)];
    (lags.len(), at(0.5), at(0.95), lags[lags.len() - 1])
}

/// A playlist's value of tag `name` (`#EXT-X-NAME:value`).
fn tag<'a>(text: &'a str, name: &str) -> Option<&'a str> {
    let prefix = format!("#{name}:");
    text.lines().find_map(|l| l.strip_prefix(prefix.as_str()))
}

fn tag_u64(text: &str, name: &str) -> u64 {
    tag(text, name)
        .and_then(|v| v.parse().ok())
        .unwrap_or_else(|| panic!("no {name} in\n{text}"))
}

/// The segment URIs of a media playlist.
fn uris(text: &str) -> Vec<String> {
    text.lines()
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .map(String::from)
        .collect()
}

fn post(port: u16, target: &str) -> Response {
    http_method(port, "POST", target).unwrap()
}

/// Rungs with an encoder, from `/status`.
fn running(d: &Daemon) -> Vec<u64> {
    let s = d.status().unwrap();
    let mut r: Vec<u64> = s["encoders"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|e| e["rung"].as_u64())
        .collect();
    r.sort();
    r
}

#[test]
fn ffmpeg_plays_the_live_playlist_and_stays_live() {
    let (dir, daemon) = Daemon::small_demo("hls-ffmpeg", IDLE);
    daemon.wait_streaming();
    let port = daemon.http;
    let master = wait_until("/live.m3u8", Duration::from_secs(20), || {
        let r = daemon.get("/live.m3u8");
        (r.code == 200).then_some(r)
    });
    assert_eq!(
        master.header("Content-Type"),
        Some("application/vnd.apple.mpegurl")
    );
    assert_eq!(master.header("Cache-Control"), Some("no-cache"));
    let text = master.text();
    println!("{text}");
    assert!(text.starts_with("#EXTM3U\n#EXT-X-VERSION:3\n"));
    let inf = tag(&text, "EXT-X-STREAM-INF").unwrap();
    assert!(inf.contains("RESOLUTION=320x180"), "{inf}");
    assert!(inf.contains("FRAME-RATE=30.000"), "{inf}");
    assert!(
        inf.contains("CODECS=\"avc1."),
        "the codec from the SPS: {inf}"
    );
    assert_eq!(
        uris(&text),
        ["/hls/0/index.m3u8"],
        "the start rung alone runs"
    );

    // The media playlist: one-second segments, a window that slides.
    let media = wait_until("three segments listed", Duration::from_secs(20), || {
        let r = daemon.get("/hls/0/index.m3u8");
        (r.code == 200 && uris(&r.text()).len() >= 3).then_some(r)
    });
    assert_eq!(media.header("Cache-Control"), Some("no-cache"));
    let first = media.text();
    println!("{first}");
    assert_eq!(tag_u64(&first, "EXT-X-TARGETDURATION"), 1);
    for d in first.lines().filter_map(|l| l.strip_prefix("#EXTINF:")) {
        let d: f64 = d.trim_end_matches(',').parse().unwrap();
        assert!((0.9..=1.1).contains(&d), "a segment of {d} s");
    }
    assert!(tag(&first, "EXT-X-PROGRAM-DATE-TIME").is_some());
    let seq0 = tag_u64(&first, "EXT-X-MEDIA-SEQUENCE");
    let uri0 = uris(&first)[0].clone();
    assert_eq!(uri0, format!("{seq0}.ts"));

    // A segment: PAT/PMT, then H.264 from a keyframe, as ffprobe reads it.
    let seg = daemon.get(&format!("/hls/0/{uri0}"));
    assert_eq!(seg.code, 200);
    assert_eq!(seg.header("Content-Type"), Some("video/mp2t"));
    assert_eq!(seg.body.len() % 188, 0);
    assert_eq!(
        seg.header("Content-Length"),
        Some(seg.body.len().to_string().as_str())
    );
    assert_eq!((seg.body[1] & 0x1f, seg.body[2]), (0, 0), "PAT first");
    let (codec, w, h) = probe(&dir, "segment.ts", &seg.body);
    assert_eq!((codec.as_str(), w, h), ("h264", 320, 180));
    let frames = count_frames(&dir, "segment.ts", &seg.body);
    assert!(
        (25..=35).contains(&frames),
        "{frames} frames in a 1 s segment"
    );

    // ffmpeg plays /live.m3u8; a viewer of /stream.ts marks the live edge.
    let live = live_edge(port);
    let ff = FfmpegHls::start(
        &dir,
        "ffmpeg-hls",
        &format!("http://127.0.0.1:{port}/live.m3u8"),
    );
    ff.wait_frames(30, Duration::from_secs(30));
    let t0 = ff.out.frames().len();
    std::thread::sleep(Duration::from_secs(12));
    let frames = ff.out.frames();
    let got = frames.len() - t0;
    println!("ffmpeg wrote {got} frames in 12 s");
    assert!(got >= 12 * 30 * 7 / 10, "only {got} frames in 12 s");
    let backwards = frames.windows(2).filter(|w| w[1].1 <= w[0].1).count();
    assert_eq!(backwards, 0, "PTS only go forward");
    let span = (frames.last().unwrap().1 - frames[0].1) as f64 / 90_000.0;
    assert!(span > 12.0, "timestamps advanced {span:.1} s");
    let (n, median, p95, max) = lag(&frames[t0..], &live.frames());
    println!(
        "ffmpeg's HLS client behind a /stream.ts viewer (frames out of ffmpeg vs. into the viewer): median {median:.2} s, p95 {p95:.2} s, max {max:.2} s over {n} frames"
    );
    // Live: within the playlist's window. A client further behind than every
    // segment listed plus one target duration would be asking for segments
    // that have left it. (How far behind it is, is measured by the web
    // benchmark, benches/RESULTS.md, not asserted here.)
    let window_s: f64 = first
        .lines()
        .filter_map(|l| l.strip_prefix("#EXTINF:"))
        .map(|d| d.trim_end_matches(',').parse::<f64>().unwrap())
        .sum();
    let target = tag_u64(&first, "EXT-X-TARGETDURATION") as f64;
    assert!(
        max <= window_s + target,
        "ffmpeg fell {max:.2} s behind live, past the window of {window_s:.1} s + {target} s"
    );
    // And it stays live: no drift from the first third of the run to the last.
    let played = &frames[t0..];
    let third = played.len() / 3;
    let (_, early, _, _) = lag(&played[..third], &live.frames());
    let (_, late, _, _) = lag(&played[played.len() - third..], &live.frames());
    assert!(
        late <= early + target,
        "the HLS client drifted behind: median {early:.2} s in the first third, {late:.2} s in the last"
    );

    // The window moved on; media sequence numbers only grow.
    let later = daemon.get("/hls/0/index.m3u8").text();
    let seq1 = tag_u64(&later, "EXT-X-MEDIA-SEQUENCE");
    assert!(seq1 >= seq0 + 10, "media sequence {seq0} -> {seq1} in 12 s");
    let old = daemon.get(&format!("/hls/0/{seq0}.ts"));
    assert_eq!(old.code, 410, "a segment that left the ring is gone");
    assert!(old.head.starts_with("HTTP/1.1 410 Gone"), "{}", old.head);
    let captured = ff.out.bytes();
    drop(ff);
    let decoded = common::frames(&dir, "ffmpeg-hls.ts", &captured);
    assert!(
        decoded.len() >= got,
        "ffprobe decoded {} frames",
        decoded.len()
    );
    assert!(decoded.iter().all(|(_, w)| *w == 320));
    let s = daemon.status().unwrap();
    println!("status hls: {}", s["hls"]);
    assert_eq!(s["hls"]["playlist"], "/live.m3u8");
    assert!(s["hls"]["segments_served"].as_u64().unwrap() >= 10);
    assert_eq!(s["hls"]["rungs"][0]["playlist"], "/hls/0/index.m3u8");
}

/// A media playlist read every 300 ms on a thread, every answer kept.
struct PlaylistWatch {
    texts: Arc<Mutex<Vec<String>>>,
    stop: Arc<AtomicBool>,
}

impl PlaylistWatch {
    fn start(port: u16, path: &'static str) -> PlaylistWatch {
        let texts = Arc::new(Mutex::new(Vec::new()));
        let stop = Arc::new(AtomicBool::new(false));
        let (t, s) = (texts.clone(), stop.clone());
        std::thread::spawn(move || {
            while !s.load(Ordering::SeqCst) {
                if let Ok(r) = http_get(port, path) {
                    if r.code == 200 {
                        t.lock().unwrap().push(r.text());
                    }
                }
                std::thread::sleep(Duration::from_millis(300));
            }
        });
        PlaylistWatch { texts, stop }
    }

    fn texts(&self) -> Vec<String> {
        self.texts.lock().unwrap().clone()
    }
}

impl Drop for PlaylistWatch {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
    }
}

/// The rung `/hls/live/` lists now, from `/status`.
fn live_rung(d: &Daemon) -> Option<u64> {
    d.status()?["hls"]["live"]["rung"].as_u64()
}

#[test]
fn ffmpeg_follows_the_operators_rung_switches_across_discontinuities() {
    let (dir, daemon) = Daemon::small_demo("hls-switch", IDLE);
    daemon.wait_streaming();
    let port = daemon.http;
    // The operator gives everyone rung 0: /live.m3u8 names the one playlist
    // that follows the rung everyone is given.
    assert_eq!(post(port, "/rung?set=0").code, 200);
    let master = wait_until("the live playlist", Duration::from_secs(20), || {
        let r = daemon.get("/live.m3u8");
        (r.code == 200).then(|| r.text())
    });
    println!("{master}");
    assert_eq!(uris(&master), ["/hls/live/index.m3u8"]);
    assert!(master.contains("RESOLUTION=320x180"), "{master}");
    let watch = PlaylistWatch::start(port, "/hls/live/index.m3u8");
    let ff = FfmpegHls::start(
        &dir,
        "ffmpeg-switch",
        &format!("http://127.0.0.1:{port}/live.m3u8"),
    );
    ff.wait_frames(60, Duration::from_secs(30));
    std::thread::sleep(Duration::from_secs(3));

    // Rung 1 for everyone: nobody watches /stream.ts, so only the HLS
    // client's reads of /hls/live get its encoder started.
    assert_eq!(post(port, "/rung?set=1").code, 200);
    let t = Instant::now();
    wait_until("/hls/live on rung 1", Duration::from_secs(40), || {
        (live_rung(&daemon) == Some(1)).then_some(())
    });
    println!(
        "/hls/live moved to rung 1 after {:.1} s",
        t.elapsed().as_secs_f64()
    );
    assert_eq!(running(&daemon), [0, 1]);
    let on_one = ff.out.frames().len();
    // Long enough for ffmpeg, three segments behind, to play into rung 1.
    std::thread::sleep(Duration::from_secs(8));
    assert!(
        ff.out.frames().len() > on_one + 150,
        "ffmpeg stalled on the switch"
    );

    // Back to automatic: /hls/live follows the start rung again.
    assert_eq!(post(port, "/rung?set=auto").code, 200);
    wait_until("/hls/live back on rung 0", Duration::from_secs(40), || {
        (live_rung(&daemon) == Some(0)).then_some(())
    });
    std::thread::sleep(Duration::from_secs(8));
    let captured = ff.out.bytes();
    let written = ff.out.frames();
    drop(ff);
    let texts = watch.texts();
    drop(watch);

    // What ffmpeg got, decoded by ffprobe: 320 wide, then 160, then 320,
    // timestamps only forward and no hole.
    let frames = common::frames(&dir, "ffmpeg-switch.ts", &captured);
    let mut widths: Vec<u32> = frames.iter().map(|f| f.1).collect();
    widths.dedup();
    let max_gap = frames
        .windows(2)
        .map(|w| w[1].0 - w[0].0)
        .fold(0.0, f64::max);
    let backwards = frames.windows(2).filter(|w| w[1].0 <= w[0].0).count();
    println!(
        "ffmpeg: {} frames decoded (of {} written), widths {widths:?}, largest gap {:.0} ms, {backwards} backwards",
        frames.len(),
        written.len(),
        max_gap * 1000.0
    );
    assert_eq!(widths, [320, 160, 320], "rung 0, rung 1, rung 0");
    assert_eq!(backwards, 0, "timestamps only go forward");
    assert!(max_gap < 0.5, "a hole of {:.0} ms", max_gap * 1000.0);
    assert!(frames.len() > 25 * 30 * 7 / 10, "{} frames", frames.len());

    // The playlist, as it was read every 300 ms: media sequence numbers only
    // grow, both switches came with a discontinuity, and the discontinuity
    // sequence counted the tags that left the window.
    let seqs: Vec<(u64, u64)> = texts
        .iter()
        .map(|t| {
            (
                tag_u64(t, "EXT-X-MEDIA-SEQUENCE"),
                tag_u64(t, "EXT-X-DISCONTINUITY-SEQUENCE"),
            )
        })
        .collect();
    assert!(
        seqs.windows(2)
            .all(|w| w[1].0 >= w[0].0 && w[1].1 >= w[0].1),
        "{seqs:?}"
    );
    let tagged = texts
        .iter()
        .filter(|t| t.contains("#EXT-X-DISCONTINUITY\n"))
        .count();
    let last = seqs.last().unwrap();
    println!(
        "{} playlists read: media sequence {} -> {}, discontinuity sequence {} -> {}, {tagged} with a discontinuity tag",
        texts.len(),
        seqs[0].0,
        last.0,
        seqs[0].1,
        last.1
    );
    assert!(tagged > 0);
    assert!(last.1 >= 1, "the first switch's tag has left the window");
    // Segment numbers are never reused: each number always named the same segment.
    let mut dates: HashMap<String, String> = HashMap::new();
    for t in &texts {
        let mut date = None;
        for l in t.lines() {
            if let Some(d) = l.strip_prefix("#EXT-X-PROGRAM-DATE-TIME:") {
                date = Some(d.to_string());
            } else if l.ends_with(".ts") {
                let d = date.take().unwrap();
                let seen = dates.entry(l.to_string()).or_insert_with(|| d.clone());
                assert_eq!(*seen, d, "segment {l} changed");
            }
        }
    }
}

#[test]
fn hls_readers_keep_their_rung_but_start_none_and_bad_requests_get_answers() {
    let (_dir, daemon) = Daemon::small_demo("hls-rungs", IDLE);
    daemon.wait_streaming();
    let port = daemon.http;
    wait_until("/live.m3u8", Duration::from_secs(20), || {
        (daemon.get("/live.m3u8").code == 200).then_some(())
    });
    for (path, code) in [
        ("/hls/1/index.m3u8", 404), // rung 1 has no encoder
        ("/hls/1/0.ts", 404),
        ("/hls/7/index.m3u8", 404),
        ("/hls/0/99999999999999999999999.ts", 404),
        ("/hls/0/18446744073709551615.ts", 404),
        ("/hls/0/-1.ts", 404),
        ("/hls/0/01.ts", 404),
        ("/hls/0/../../status", 404),
        ("/hls/../status", 404),
        ("/hls/%2e%2e/status", 404),
        ("/hls/live/x.ts", 404),
        ("/live.m3u8x", 404),
        ("/hls/0/index.m3u8?x=1", 200),
        ("/hls/0/0.ts", 200),
    ] {
        let r = daemon.get(path);
        assert_eq!(r.code, code, "{path}: {}", r.head);
    }
    let r = post(port, "/live.m3u8");
    assert_eq!((r.code, r.header("Allow")), (405, Some("GET, HEAD")));
    let r = http_method(port, "HEAD", "/live.m3u8").unwrap();
    assert_eq!(r.code, 200);
    assert!(r.body.is_empty());
    assert!(
        r.header("Content-Length")
            .unwrap()
            .parse::<usize>()
            .unwrap()
            > 20
    );
    std::thread::sleep(Duration::from_secs(2));
    assert_eq!(running(&daemon), [0], "no HLS request started an encoder");

    // Pinned to rung 1 with only HLS clients: reading /hls/live starts it.
    assert_eq!(post(port, "/rung?set=1").code, 200);
    wait_until("rung 1 for /hls/live", Duration::from_secs(40), || {
        let _ = http_get(port, "/hls/live/index.m3u8");
        (live_rung(&daemon) == Some(1)).then_some(())
    });
    assert_eq!(post(port, "/rung?set=auto").code, 200);
    // A client of /hls/1 keeps rung 1 running past idle_rung_s (3 s) ...
    let kept = for_period(Duration::from_secs(12), |_| {
        let r = http_get(port, "/hls/1/index.m3u8").unwrap();
        assert_eq!(r.code, 200, "rung 1's playlist while it is read");
        std::thread::sleep(Duration::from_millis(700));
    });
    assert_eq!(
        running(&daemon),
        [0, 1],
        "kept for {kept:?} by its HLS reader"
    );
    // ... and once nobody reads it, it stops like any unwatched rung.
    let t = Instant::now();
    wait_until("rung 1 stopped", Duration::from_secs(30), || {
        (running(&daemon) == [0]).then_some(())
    });
    println!(
        "rung 1 stopped {:.1} s after its last HLS read",
        t.elapsed().as_secs_f64()
    );
    assert_eq!(daemon.get("/hls/1/index.m3u8").code, 404);
}

#[test]
fn an_hls_client_gets_no_encoder_beyond_max_encoders() {
    let (_dir, daemon) = Daemon::small_demo("hls-max", &format!("{IDLE}max_encoders = 1\n"));
    daemon.wait_streaming();
    let port = daemon.http;
    assert_eq!(post(port, "/rung?set=1").code, 200);
    for_period(Duration::from_secs(6), |_| {
        let _ = http_get(port, "/hls/live/index.m3u8");
        std::thread::sleep(Duration::from_millis(500));
    });
    assert_eq!(running(&daemon), [0], "max_encoders = 1");
    let master = daemon.get("/live.m3u8").text();
    assert_eq!(uris(&master), ["/hls/live/index.m3u8"]);
    assert!(
        master.contains("RESOLUTION=320x180"),
        "still rung 0: {master}"
    );
    assert_eq!(daemon.get("/hls/live/index.m3u8").code, 200);
}
