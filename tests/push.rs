//! `[[output]]` pushes are fed from the hub: a UDP push carries one continuous
//! stream across a rung switch, and an RTMP uplink is remuxed (not re-encoded)
//! by a supervised ffmpeg. Loopback only.

mod common;

use common::*;
use std::net::UdpSocket;
use std::process::{Command, Stdio};
use std::time::Duration;

#[test]
fn a_udp_push_is_one_continuous_stream_across_a_rung_switch() {
    let phone = UdpSocket::bind("127.0.0.1:0").unwrap();
    phone
        .set_read_timeout(Some(Duration::from_millis(200)))
        .unwrap();
    let extra = format!(
        "[adapt]\nmode = \"fixed\"\n[[output]]\nurl = \"udp://{}\"\n",
        phone.local_addr().unwrap()
    );
    let (dir, daemon) = Daemon::small_demo("push-udp", &extra);
    daemon.wait_streaming();
    let mut received = Vec::new();
    let mut sizes = std::collections::BTreeSet::new();
    let mut buf = [0u8; 65536];
    let mut switched = false;
    // 9 s of the push, with the switch at 3 s.
    for_period(Duration::from_secs(9), |elapsed| {
        if !switched && elapsed > Duration::from_secs(3) {
            let r =
                http_request(daemon.http, "POST /rung?set=1 HTTP/1.1\r\nHost: t\r\n\r\n").unwrap();
            assert_eq!(r.code, 200);
            switched = true;
        }
        if let Ok(n) = phone.recv(&mut buf) {
            sizes.insert(n);
            received.extend_from_slice(&buf[..n]);
        }
    });
    assert!(
        sizes.iter().all(|n| n % 188 == 0),
        "whole TS packets per datagram: {sizes:?}"
    );
    let frames = frames(&dir, "push.ts", &received);
    let widths: Vec<u32> = frames.iter().map(|f| f.1).collect();
    let changes = widths.windows(2).filter(|w| w[0] != w[1]).count();
    println!(
        "{} frames, first width {:?}, last {:?}, {changes} change(s)",
        frames.len(),
        widths.first(),
        widths.last()
    );
    assert_eq!(
        (widths.first(), widths.last(), changes),
        (Some(&320), Some(&160), 1),
        "one switch, one stream"
    );
    assert!(
        frames.windows(2).all(|w| w[1].0 > w[0].0),
        "timestamps only go forward: never two encoders at once"
    );
    let max_gap = frames
        .windows(2)
        .map(|w| w[1].0 - w[0].0)
        .fold(0.0, f64::max);
    assert!(
        max_gap <= 2.0 / 30.0 + 0.001,
        "gap of {:.1} ms",
        max_gap * 1000.0
    );
    let s = daemon.status().unwrap();
    assert!(s["outputs"][0]["push"]["bytes_sent"].as_u64().unwrap() as usize >= received.len());
}

#[test]
fn an_rtmp_uplink_is_remuxed_and_reaches_the_server() {
    let dir = temp_dir("push-rtmp");
    let ports = Ports::new();
    let rtmp_port = free_tcp_port();
    let url = format!("rtmp://127.0.0.1:{rtmp_port}/live/test");
    let flv = dir.join("received.flv");
    // ffmpeg as the RTMP server: it accepts one publisher and records 4 s of it.
    let mut server = Command::new("ffmpeg")
        .args([
            "-hide_banner",
            "-loglevel",
            "error",
            "-listen",
            "1",
            "-i",
            &url,
            "-t",
            "4",
            "-c",
            "copy",
            "-y",
        ])
        .arg(&flv)
        .stdin(Stdio::null())
        .spawn()
        .expect("ffmpeg as an RTMP server");
    wait_until("ffmpeg to listen for RTMP", Duration::from_secs(10), || {
        tcp_listening(rtmp_port).then_some(())
    });
    let config = write_config(&dir, &ports, &format!("[[output]]\nurl = \"{url}\"\n"));
    let daemon = Daemon::demo(&dir, &config, ports.http);
    daemon.wait_streaming();
    let done = poll(Duration::from_secs(30), Duration::from_millis(200), || {
        server.try_wait().unwrap()
    });
    let _ = server.kill();
    let _ = server.wait();
    assert!(
        done.is_some_and(|s| s.success()),
        "the RTMP server got a stream: {done:?}\n{}",
        daemon.log_text()
    );
    let bytes = std::fs::read(&flv).unwrap();
    let (codec, w, h) = probe(&dir, "received.flv", &bytes);
    assert_eq!((codec.as_str(), w, h), ("h264", 320, 180));
    let s = daemon.status().unwrap();
    println!("uplink: {}", s["outputs"][0]);
    assert!(s["outputs"][0]["push"]["remuxer_restarts"]
        .as_u64()
        .is_some());
    assert!(s["outputs"][0]["push"]["bytes_sent"].as_u64().unwrap() > 0);
}
