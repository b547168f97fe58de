//! Faults of the field, with the real daemon, real ffmpeg and real sockets:
//! the camera restarting its stream, a hung encoder, strangers on the
//! hotspot sending pictures, garbage and floods to the camera port, holding
//! connections open or never reading, and a web page trying to take control.
//! Each test prints what it measured; docs/RELIABILITY.md collects the figures.

mod common;

use common::*;
use serde_json::Value;
use std::io::{Read, Write};
use std::net::{Ipv4Addr, UdpSocket};
use std::time::{Duration, Instant};

const CAMERA: &str = "127.0.0.1";
const STRANGER: &str = "127.0.0.2";

/// A daemon in `run` mode (no demo camera) whose camera is at `CAMERA`.
fn daemon_for_camera(dir: &std::path::Path, ports: &Ports, extra: &str) -> Daemon {
    let config = Config::new(ports)
        .ladder(ONE_RUNG)
        .source("stall_timeout_s = 2.0")
        .encoder("output_timeout_s = 2.0")
        .extra(&format!("[camera]\naddress = \"{CAMERA}\"\n{extra}"))
        .write(&dir.join("livestreamd.toml"));
    let args = ["run", "--config", config.to_str().unwrap()];
    Daemon::start_with(dir, &args, &[INFO_LOG], ports.http)
}

fn restarts(s: &Value, reason: &str) -> u64 {
    s["encoder"]["restarts_by_reason"][reason]
        .as_u64()
        .unwrap_or(0)
}

fn healthy(port: u16) -> bool {
    http_get(port, "/healthz").is_ok_and(|r| r.code == 200)
}

/// Frames in `bytes` that show the stranger's red picture.
fn red_frames(dir: &std::path::Path, name: &str, bytes: &[u8]) -> (usize, usize) {
    let chroma = frame_chroma(dir, name, bytes);
    let red = chroma.iter().filter(|(_, v)| *v > 180.0).count();
    (red, chroma.len())
}

#[test]
fn a_camera_that_restarts_its_stream_after_a_minute_is_followed_within_seconds() {
    let dir = temp_dir("fault-timeline");
    let ports = Ports::new();
    let mut d = daemon_for_camera(&dir, &ports, "");
    let camera = CameraSender::start(CAMERA, ports.source, "testsrc");
    d.wait_healthy();
    let viewer = BackgroundViewer::connect(ports.http);
    // At least a minute of streaming, so the old timeline is far ahead of the new one.
    std::thread::sleep(Duration::from_secs(62));
    assert!(healthy(ports.http));
    drop(camera);
    std::thread::sleep(Duration::from_secs(1)); // below the stall timeout
    let before = viewer.len();
    let restarted = Instant::now();
    let _camera = CameraSender::start(CAMERA, ports.source, "testsrc");
    let s = d.wait_status(
        "an encoder restart on the new timeline",
        Duration::from_secs(10),
        |s| restarts(s, "new timeline") >= 1,
    );
    println!(
        "new timeline noticed after {:.1} s (source timelines: {})",
        restarted.elapsed().as_secs_f64(),
        s["source"]["timelines"]
    );
    let first_bytes = poll(Duration::from_secs(10), Duration::from_millis(10), || {
        (viewer.len() > before).then(|| restarted.elapsed().as_secs_f64())
    })
    .expect("the viewer got nothing after the camera restarted");
    println!("first bytes at the viewer {first_bytes:.2} s after the camera restarted");
    // The same connection gets pictures of the new timeline (timestamps near
    // zero again, where the old ones were past 60 s).
    wait_until(
        "frames of the new timeline at the viewer",
        Duration::from_secs(10),
        || {
            let bytes = viewer.bytes_from(before);
            let fresh = frames(&dir, "after.ts", &bytes)
                .into_iter()
                .filter(|(pts, _)| *pts < 30.0)
                .count();
            (fresh >= 5).then_some(())
        },
    );
    let after = restarted.elapsed().as_secs_f64();
    println!(
        "viewer had decoded frames of the new timeline {after:.1} s after the camera restarted"
    );
    assert!(after < 8.0, "took {after:.1} s");
    assert!(!viewer.ended(), "the viewer kept its connection");
    wait_until("/healthz to answer 200", Duration::from_secs(5), || {
        healthy(ports.http).then_some(())
    });
    assert_eq!(d.terminate(Duration::from_secs(10)), Some(0));
}

#[test]
fn an_encoder_alive_but_silent_is_replaced() {
    let dir = temp_dir("fault-hung-encoder");
    let ports = Ports::new();
    let config = Config::new(&ports)
        .ladder(ONE_RUNG)
        .encoder("output_timeout_s = 2.0")
        .write(&dir.join("livestreamd.toml"));
    let mut d = Daemon::demo(&dir, &config, ports.http);
    d.wait_healthy();
    let viewer = BackgroundViewer::connect(ports.http);
    viewer.wait_bytes(20_000, Duration::from_secs(10));
    let hung = d.status().unwrap()["encoder"]["pid"].as_i64().unwrap();
    // SAFETY: kill(2) on our daemon's ffmpeg.
    unsafe { libc::kill(hung as i32, libc::SIGSTOP) };
    let stopped_at = Instant::now();
    let s = d.wait_status("a new encoder", Duration::from_secs(15), |s| {
        s["encoder"]["pid"].as_i64().is_some_and(|p| p != hung) && restarts(s, "no output") >= 1
    });
    let replaced = stopped_at.elapsed().as_secs_f64();
    assert!(
        wait_gone(&[hung], Duration::from_secs(5)),
        "the hung ffmpeg {hung} was left behind"
    );
    let before = viewer.len();
    viewer.wait_bytes(before + 20_000, Duration::from_secs(10));
    println!(
        "hung encoder replaced after {replaced:.1} s, video again after {:.1} s; last exit: {}",
        stopped_at.elapsed().as_secs_f64(),
        s["encoder"]["last_exit"]
    );
    let metrics = d.get("/metrics").text();
    assert!(
        metrics.contains(
            "livestreamd_encoder_restarts_by_reason_total{rung=\"0\",generation=\"1\",reason=\"no output\"} 1"
        ),
        "{metrics}"
    );
    assert!(!viewer.ended());
    assert_eq!(d.terminate(Duration::from_secs(10)), Some(0));
}

#[test]
fn only_the_cameras_picture_is_ever_shown() {
    let dir = temp_dir("fault-intruder");
    let ports = Ports::new();
    let mut d = daemon_for_camera(&dir, &ports, "");
    d.wait_status("the daemon", Duration::from_secs(10), |_| true);
    let viewer = BackgroundViewer::connect(ports.http);
    // The camera is silent; a stranger sends its own (red) picture.
    {
        let _intruder = CameraSender::start(STRANGER, ports.source, "color=c=red");
        // Watched for 6 s: the stranger's picture arrives all that time.
        std::thread::sleep(Duration::from_secs(6));
        let s = d.status().unwrap();
        assert_eq!(s["source"]["state"], "waiting", "{:#}", s["source"]);
        assert!(s["source"]["foreign_datagrams"].as_u64().unwrap() > 20);
        assert!(s["source"]["last_foreign_sender"]
            .as_str()
            .unwrap()
            .starts_with(STRANGER));
        assert_eq!(http_get(ports.http, "/healthz").unwrap().code, 503);
        assert_eq!(
            viewer.len(),
            0,
            "nothing to show while the camera is silent"
        );
    }
    assert!(d.wait_for_log("not from the camera (127.0.0.1)", Duration::from_secs(1)));
    assert_eq!(
        d.log_text().matches("not from the camera").count(),
        1,
        "one log line a minute, not one per datagram"
    );
    // The camera (blue) starts; then the stranger tries again for 10 s.
    let _camera = CameraSender::start(CAMERA, ports.source, "color=c=blue");
    d.wait_healthy();
    viewer.wait_bytes(20_000, Duration::from_secs(10));
    let mut during = Vec::new();
    {
        let _intruder = CameraSender::start(STRANGER, ports.source, "color=c=red");
        // The viewer's bytes counted second by second.
        for _ in 0..10 {
            let before = viewer.len();
            std::thread::sleep(Duration::from_secs(1));
            during.push(viewer.len() - before);
        }
    }
    println!("bytes per second to the viewer during the injection: {during:?}");
    assert!(
        during.iter().all(|n| *n > 0),
        "the viewer's picture stalled: {during:?}"
    );
    let (red, all) = red_frames(&dir, "viewer.ts", &viewer.bytes_from(0));
    println!("{all} frames decoded, {red} red");
    assert!(all > 100, "{all} frames");
    assert_eq!(red, 0, "the stranger's picture reached the viewer");
    assert_eq!(d.terminate(Duration::from_secs(10)), Some(0));
}

#[test]
fn stray_bytes_do_not_keep_a_silent_source_live_and_floods_stay_bounded() {
    let dir = temp_dir("fault-flood");
    let ports = Ports::new();
    // No camera address: the source locks onto the sender of live video.
    let config = Config::new(&ports)
        .ladder(ONE_RUNG)
        .source("stall_timeout_s = 2.0")
        .write(&dir.join("livestreamd.toml"));
    let args = ["run", "--config", config.to_str().unwrap()];
    let mut d = Daemon::start_with(&dir, &args, &[INFO_LOG], ports.http);
    let camera = CameraSender::start(CAMERA, ports.source, "testsrc");
    d.wait_healthy();
    drop(camera);
    // One byte a second from the camera's own address and from a stranger.
    let cam_sock = UdpSocket::bind((CAMERA, 0)).unwrap();
    let stranger = UdpSocket::bind((STRANGER, 0)).unwrap();
    for _ in 0..5 {
        cam_sock.send_to(b"x", ("127.0.0.1", ports.source)).unwrap();
        stranger.send_to(b"y", ("127.0.0.1", ports.source)).unwrap();
        std::thread::sleep(Duration::from_secs(1));
    }
    let s = d.status().unwrap();
    assert_eq!(s["source"]["state"], "stalled", "{:#}", s["source"]);
    let refused = |k: &str| s["source"][k].as_u64().unwrap();
    assert!(refused("malformed_datagrams") >= 5, "{:#}", s["source"]);
    assert_eq!(
        refused("malformed_datagrams") + refused("foreign_datagrams"),
        10
    );
    // A flood of the largest datagrams: whole TS packets (null PID) from the
    // camera's address, and garbage from a stranger, as fast as loopback takes them.
    let mut null_ts = Vec::new();
    for _ in 0..348 {
        null_ts.extend_from_slice(&[0x47, 0x1f, 0xff, 0x10]);
        null_ts.extend_from_slice(&[0xffu8; 184]);
    }
    let garbage = vec![0xabu8; 65_507];
    let rss_before = rss_kib(d.pid());
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let floods: Vec<_> = [(CAMERA, null_ts), (STRANGER, garbage)]
        .into_iter()
        .map(|(from, payload)| {
            let stop = stop.clone();
            let port = ports.source;
            std::thread::spawn(move || {
                let s = UdpSocket::bind((from, 0)).unwrap();
                let mut sent = 0u64;
                while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                    if s.send_to(&payload, ("127.0.0.1", port)).is_ok() {
                        sent += payload.len() as u64;
                    }
                }
                sent
            })
        })
        .collect();
    // 10 s of flood, the daemon's memory sampled four times a second.
    let mut rss_max = 0;
    for _ in 0..40 {
        std::thread::sleep(Duration::from_millis(250));
        rss_max = rss_max.max(rss_kib(d.pid()));
    }
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    let sent: u64 = floods.into_iter().map(|t| t.join().unwrap()).sum();
    println!(
        "flood: {} MB in 10 s; daemon RSS {rss_before} KiB before, at most {rss_max} KiB during",
        sent / 1_000_000
    );
    assert!(rss_max < 20 * 1024, "RSS {rss_max} KiB");
    assert!(
        healthy(ports.http) || d.status().is_some(),
        "the daemon still answers"
    );
    // And the camera is followed again afterwards.
    let _camera = CameraSender::start(CAMERA, ports.source, "testsrc");
    d.wait_healthy();
    assert_eq!(d.terminate(Duration::from_secs(10)), Some(0));
}

#[test]
fn one_address_cannot_lock_the_others_out() {
    let dir = temp_dir("fault-connections");
    let ports = Ports::new();
    // The half-sent requests must stay pending for the whole test.
    let config = Config::new(&ports)
        .ladder(ONE_RUNG)
        .server("request_timeout_s = 120.0")
        .write(&dir.join("livestreamd.toml"));
    let mut d = Daemon::demo(&dir, &config, ports.http);
    d.wait_healthy();
    let local = Ipv4Addr::LOCALHOST;
    // 260 half-sent requests from one address, renewed as they are answered.
    let half_open: Vec<_> = (0..260)
        .filter_map(|_| {
            let mut s = connect_from(Ipv4Addr::new(127, 0, 0, 2), local, ports.http).ok()?;
            s.write_all(b"GET / HTTP/1.1\r\nHost: x\r\n").ok()?;
            Some(s)
        })
        .collect();
    // 1500 idle connections from another.
    let idle: Vec<_> = (0..1500)
        .filter_map(|_| connect_from(Ipv4Addr::new(127, 0, 0, 3), local, ports.http).ok())
        .collect();
    println!(
        "opened {} half-sent and {} idle connections",
        half_open.len(),
        idle.len()
    );
    let t0 = Instant::now();
    for _ in 0..20 {
        assert_eq!(http_get(ports.http, "/healthz").unwrap().code, 200);
    }
    let v = Viewer::connect(ports.http);
    assert_eq!(v.code, 200);
    println!(
        "20 requests and a viewer from a third address served in {:?}",
        t0.elapsed()
    );
    let s = d.status().unwrap();
    let c = &s["http"]["connections"];
    println!("connections: {c}");
    assert!(c["pending_requests"].as_u64().unwrap() <= 2 * 8 + 1, "{c}");
    assert!(c["refused_connections"].as_u64().unwrap() >= 1700, "{c}");
    // The refused got an answer, not a hang.
    let mut refused = connect_from(Ipv4Addr::new(127, 0, 0, 2), local, ports.http).unwrap();
    refused
        .set_read_timeout(Some(Duration::from_secs(2)))
        .unwrap();
    let mut answer = String::new();
    let _ = refused.read_to_string(&mut answer);
    assert!(answer.starts_with("HTTP/1.1 503"), "{answer:?}");
    assert!(!d.log_text().contains("Too many open files"));
    drop((half_open, idle));
    assert_eq!(d.terminate(Duration::from_secs(10)), Some(0));
}

#[test]
fn a_viewer_that_never_reads_does_not_take_the_others_down() {
    let dir = temp_dir("fault-non-reader");
    let ports = Ports::new();
    let config = Config::new(&ports)
        .server("viewer_stall_timeout_s = 8.0")
        .write(&dir.join("livestreamd.toml"));
    let mut d = Daemon::demo(&dir, &config, ports.http);
    d.wait_healthy();
    let reader = BackgroundViewer::connect(ports.http);
    reader.wait_bytes(20_000, Duration::from_secs(10));
    let _non_reader = Viewer::connect_with_rcvbuf(ports.http, Some(4096));
    let t0 = Instant::now();
    let s = d.wait_status(
        "the non-reader marked stalled",
        Duration::from_secs(8),
        |s| {
            s["viewers"]
                .as_array()
                .is_some_and(|v| v.iter().any(|v| v["stalled"] == true))
        },
    );
    println!(
        "non-reading viewer left out of decisions after {:.1} s",
        t0.elapsed().as_secs_f64()
    );
    assert_eq!(s["adapt"]["rung"], 0);
    d.wait_status("the non-reader dropped", Duration::from_secs(15), |s| {
        s["viewers"].as_array().is_some_and(|v| v.len() == 1)
    });
    println!("dropped after {:.1} s", t0.elapsed().as_secs_f64());
    let s = d.status().unwrap();
    assert_eq!(s["adapt"]["switches"], 0, "{:#}", s["adapt"]);
    assert_eq!(s["adapt"]["rung"], 0);
    assert!(!reader.ended());
    assert_eq!(d.terminate(Duration::from_secs(10)), Some(0));
}

/// POST /rung from `from` to `to`, with extra header lines.
fn post_rung(from: Ipv4Addr, to: Ipv4Addr, port: u16, headers: &str) -> u16 {
    let mut s = connect_from(from, to, port).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    write!(
        s,
        "POST /rung?set=1 HTTP/1.1\r\nHost: {to}:{port}\r\n{headers}Content-Type: text/plain\r\nContent-Length: 0\r\n\r\n"
    )
    .unwrap();
    read_head(&mut s).0
}

#[test]
fn control_needs_the_token_and_no_page_of_another_origin_gets_it() {
    let Some(lan) = non_loopback_ipv4() else {
        panic!(
            "this test needs a non-loopback IPv4 address on the machine (a phone's view of the Pi)"
        );
    };
    let dir = temp_dir("fault-control");
    let token = "field-operator-0123456789";
    for with_token in [false, true] {
        let ports = Ports::new();
        let server = if with_token {
            format!("control_token = \"{token}\"")
        } else {
            String::new()
        };
        let config = Config::new(&ports)
            .listen_ip("0.0.0.0")
            .ladder(SMALL_LADDER)
            .server(&server)
            .extra("[[output]]\nurl = \"rtmp://127.0.0.1:9/live/SECRET-STREAM-KEY\"\n")
            .write(&dir.join(format!("livestreamd-{with_token}.toml")));
        let mut d = Daemon::demo(&dir, &config, ports.http);
        d.wait_healthy();
        let local = Ipv4Addr::LOCALHOST;
        let bearer = format!("Authorization: Bearer {token}\r\n");
        if with_token {
            assert_eq!(post_rung(lan, lan, ports.http, ""), 401);
            assert_eq!(
                post_rung(
                    lan,
                    lan,
                    ports.http,
                    "Authorization: Bearer wrong-token-000000\r\n"
                ),
                401
            );
            assert_eq!(
                post_rung(local, local, ports.http, ""),
                401,
                "the token is needed from the Pi too"
            );
            assert_eq!(post_rung(lan, lan, ports.http, &bearer), 200);
        } else {
            assert_eq!(post_rung(lan, lan, ports.http, ""), 403, "a phone may not");
            assert_eq!(
                post_rung(local, local, ports.http, ""),
                200,
                "the Pi itself may"
            );
        }
        // A page of another origin never may, token or not.
        let evil = format!("Origin: http://evil.example\r\n{bearer}");
        assert_eq!(post_rung(local, local, ports.http, &evil), 403);
        // Absolute-form targets are requests like any other.
        let r = d.request(format!(
            "GET http://127.0.0.1:{}/healthz HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n",
            ports.http
        ));
        assert_eq!(r.code, 200);
        // No stream key on any page, nor in the log.
        let mut events = Viewer::open(ports.http, "/events");
        events.read_for(Duration::from_millis(1500));
        let pages = [
            d.get("/status").text(),
            d.get("/metrics").text(),
            String::from_utf8_lossy(&events.received).into_owned(),
        ];
        assert!(
            pages[0].contains("rtmp://127.0.0.1:9/live/***"),
            "{}",
            pages[0]
        );
        for page in &pages {
            assert!(!page.contains("SECRET-STREAM-KEY"), "{page}");
        }
        assert!(d.wait_for_log("output rtmp://127.0.0.1:9/live/***", Duration::from_secs(5)));
        assert!(!d.log_text().contains("SECRET-STREAM-KEY"));
        assert_eq!(d.terminate(Duration::from_secs(10)), Some(0));
    }
}

/// Relays the camera's datagrams to the daemon, writing over part of the
/// video payload so that ffmpeg's decoder complains about every frame.
fn corrupting_relay(to: u16) -> (u16, std::sync::Arc<std::sync::atomic::AtomicBool>) {
    let sock = UdpSocket::bind((CAMERA, 0)).unwrap();
    sock.set_read_timeout(Some(Duration::from_millis(200)))
        .unwrap();
    let port = sock.local_addr().unwrap().port();
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let done = stop.clone();
    std::thread::spawn(move || {
        let mut buf = [0u8; 65536];
        let mut n_pkt = 0u64;
        while !done.load(std::sync::atomic::Ordering::Relaxed) {
            let Ok(n) = sock.recv(&mut buf) else { continue };
            for pkt in buf[..n].chunks_exact_mut(188) {
                let pid = (u16::from(pkt[1] & 0x1f) << 8) | u16::from(pkt[2]);
                n_pkt += 1;
                let start = pkt[1] & 0x40 != 0;
                if pid == 0x100 && !start && n_pkt % 3 == 0 {
                    pkt[20..188].fill(0xa5);
                }
            }
            let _ = sock.send_to(&buf[..n], ("127.0.0.1", to));
        }
    });
    (port, stop)
}

#[test]
fn a_complaining_encoder_does_not_flood_the_log() {
    let dir = temp_dir("fault-log-flood");
    let ports = Ports::new();
    let mut d = daemon_for_camera(&dir, &ports, "");
    let (relay, stop) = corrupting_relay(ports.source);
    let _camera = CameraSender::start(CAMERA, relay, "testsrc");
    d.wait_status("encoded output", Duration::from_secs(20), encoded_output);
    let t0 = Instant::now();
    let s = d.wait_status(
        "ffmpeg complaining beyond its budget",
        Duration::from_secs(30),
        |s| s["encoder"]["stderr_suppressed"].as_u64().unwrap_or(0) > 20,
    );
    // The complaints go on for 5 s more, beyond the budget.
    std::thread::sleep(Duration::from_secs(5));
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    let logged = d
        .log_text()
        .lines()
        .filter(|l| l.contains("encoder[0]#1:") && !l.contains("started pid"))
        .count();
    println!(
        "ffmpeg's complaints: {} not logged, {logged} lines logged in {:.0} s",
        d.status().unwrap()["encoder"]["stderr_suppressed"],
        t0.elapsed().as_secs_f64()
    );
    assert!(s["encoder"]["stderr_suppressed"].as_u64().unwrap() > 20);
    assert!(logged <= 22, "{logged} lines of ffmpeg stderr logged");
    assert_eq!(d.terminate(Duration::from_secs(10)), Some(0));
}
