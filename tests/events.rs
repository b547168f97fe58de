//! `/events` (Server-Sent Events) from a running daemon: the hello, the status
//! snapshots, the page's own viewer, the cap on streams, and clients that never
//! read do not slow down the others.

mod common;

use common::{poll, wait_until, Daemon, Viewer};
use std::io::Read;
use std::net::TcpStream;
use std::time::{Duration, Instant};

/// Reads SSE frames until `until` returns true for one, or `dur` is up (with
/// an `until` that never holds: the frames of a period of `dur`).
fn read_events(
    s: &mut TcpStream,
    dur: Duration,
    mut until: impl FnMut(&str, &serde_json::Value) -> bool,
) -> Vec<(String, serde_json::Value, Instant)> {
    let mut out = Vec::new();
    let mut rest = Vec::new();
    let mut buf = [0u8; 16384];
    s.set_read_timeout(Some(Duration::from_millis(500)))
        .unwrap();
    // No pause between looks: the read waits by itself.
    poll(dur, Duration::ZERO, || {
        while let Some(end) = rest.windows(2).position(|w| w == b"\n\n") {
            let frame = String::from_utf8(rest[..end].to_vec()).unwrap();
            rest.drain(..end + 2);
            let mut event = None;
            let mut data = None;
            for line in frame.lines() {
                if let Some(e) = line.strip_prefix("event: ") {
                    event = Some(e.to_string());
                } else if let Some(d) = line.strip_prefix("data: ") {
                    data = Some(serde_json::from_str(d).expect("data is JSON"));
                }
            }
            if let (Some(e), Some(d)) = (event, data) {
                let stop = until(&e, &d);
                out.push((e, d, Instant::now()));
                if stop {
                    return Some(());
                }
            }
        }
        match s.read(&mut buf) {
            Ok(0) => panic!("the event stream ended"),
            Ok(n) => rest.extend_from_slice(&buf[..n]),
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {}
            Err(e) if e.kind() == std::io::ErrorKind::TimedOut => {}
            Err(e) => panic!("{e}"),
        }
        None
    });
    out
}

/// `/events`: the status code and the connection, the response head read.
fn open_events(d: &Daemon, query: &str) -> (u16, TcpStream) {
    let v = Viewer::request(
        d.http,
        format!("GET /events{query} HTTP/1.1\r\nAccept: text/event-stream\r\n\r\n").as_bytes(),
    );
    (v.code, v.sock)
}

#[test]
fn events_carry_hello_status_and_the_pages_own_viewer() {
    let d = Daemon::web_demo("events", "max_viewers = 2");
    // The page tags its stream and its events with the same token.
    let stream = Viewer::request(d.http, b"GET /stream.ts?client=page1 HTTP/1.1\r\n\r\n");
    assert_eq!(stream.code, 200);
    let own = stream.sock.local_addr().unwrap().to_string();

    let (code, mut ev) = open_events(&d, "?client=page1");
    assert_eq!(code, 200);
    let mut seen_me = None;
    let frames = read_events(&mut ev, Duration::from_secs(10), |e, d| {
        if e == "me" {
            seen_me = d["address"].as_str().map(str::to_string);
        }
        seen_me.is_some() && e == "status"
    });
    let names: Vec<&str> = frames.iter().map(|(e, _, _)| e.as_str()).collect();
    assert_eq!(names[0], "hello", "{names:?}");
    let hello = &frames[0].1;
    assert_eq!(hello["ladder"].as_array().unwrap().len(), 2);
    assert_eq!(hello["ladder"][0]["width"], 320);
    assert!(hello["history"].is_array());
    assert_eq!(seen_me.as_deref(), Some(own.as_str()), "{names:?}");
    let status = &frames.last().unwrap().1;
    assert_eq!(status["encoder"]["rung"], 0);
    assert_eq!(status["source"]["state"], "live");
    assert!(status["t"].as_u64().unwrap() > 1_600_000_000_000, "unix ms");
    let viewers = status["viewers"].as_array().unwrap();
    assert!(viewers.iter().any(|v| v["address"] == own.as_str()));

    // Status comes about once a second.
    let frames = read_events(&mut ev, Duration::from_secs(4), |_, _| false);
    let statuses = frames.iter().filter(|(e, _, _)| e == "status").count();
    assert!(
        (3..=5).contains(&statuses),
        "{statuses} status frames in 4 s"
    );

    // When the stream ends, the page is told it has none.
    drop(stream);
    let frames = read_events(&mut ev, Duration::from_secs(5), |e, d| {
        e == "me" && d["address"].is_null()
    });
    assert_eq!(frames.last().map(|f| f.0.as_str()), Some("me"));
}

#[test]
fn event_streams_are_capped_and_idle_ones_slow_nobody() {
    // max_viewers = 2 allows 4 event streams.
    let d = Daemon::web_demo("events-cap", "max_viewers = 2");
    let (code, mut reader) = open_events(&d, "");
    assert_eq!(code, 200);
    // Three clients that never read.
    let idle: Vec<_> = (0..3)
        .map(|_| {
            let (code, s) = open_events(&d, "");
            assert_eq!(code, 200);
            s
        })
        .collect();
    let (code, _) = open_events(&d, "");
    assert_eq!(code, 503, "a fifth stream is refused");

    let frames = read_events(&mut reader, Duration::from_secs(5), |_, _| false);
    let times: Vec<Instant> = frames
        .iter()
        .filter(|(e, _, _)| e == "status")
        .map(|f| f.2)
        .collect();
    assert!(times.len() >= 4, "{} status frames in 5 s", times.len());
    let gap = times.windows(2).map(|w| w[1] - w[0]).max().unwrap();
    assert!(gap < Duration::from_millis(1600), "gap {gap:?}");

    drop(idle);
    wait_until(
        "the places of the idle streams to be freed",
        Duration::from_secs(5),
        || (open_events(&d, "").0 == 200).then_some(()),
    );
}
