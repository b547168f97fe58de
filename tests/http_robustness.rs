//! Bad requests, slow and idle clients, and too many viewers, against a running
//! daemon: each gets a proper answer, and none of them holds up the stream.

mod common;

use common::{connect, for_period, http_request, poll, read_head, wait_until, Daemon, Viewer};
use std::io::{Read, Write};
use std::time::{Duration, Instant};

#[test]
fn bad_requests_get_proper_answers() {
    let d = Daemon::web_demo("bad-requests", "request_timeout_s = 2.0");
    let r = d.get("/no/such/page");
    assert_eq!(r.code, 404, "{}", r.head);

    let r = d.request(b"POST /status HTTP/1.1\r\nContent-Length: 0\r\n\r\n");
    assert_eq!(r.code, 405);
    assert_eq!(r.header("Allow"), Some("GET, HEAD"));
    for path in ["/", "/stream.ts", "/metrics", "/events", "/app.js"] {
        let r = d.request(format!("DELETE {path} HTTP/1.1\r\n\r\n"));
        assert_eq!(r.code, 405, "DELETE {path}");
    }

    let r = d.request(b"\x16\x03\x01\x02\x00 not http\r\n\r\n");
    assert_eq!(r.code, 400, "a TLS hello or garbage is a bad request");
    let r = d.request(b"GET / HTTP/1.1\r\nBad Header Without Colon\r\n\r\n");
    assert_eq!(r.code, 400);

    let mut huge = b"GET / HTTP/1.1\r\nX-Filler: ".to_vec();
    huge.resize(20_000, b'a');
    huge.extend_from_slice(b"\r\n\r\n");
    let r = d.request(&huge);
    assert_eq!(r.code, 431);
    let mut many = b"GET / HTTP/1.1\r\n".to_vec();
    for i in 0..40 {
        many.extend_from_slice(format!("X-{i}: 1\r\n").as_bytes());
    }
    many.extend_from_slice(b"\r\n");
    assert_eq!(d.request(&many).code, 431, "too many headers");

    // HEAD: the head of the page without its body.
    let r = d.request(b"HEAD / HTTP/1.1\r\n\r\n");
    assert_eq!(r.code, 200);
    assert!(r.body.is_empty());
    let len: usize = r.header("Content-Length").unwrap().parse().unwrap();
    assert_eq!(len, d.get("/").body.len());

    let m = d.get("/metrics").text();
    for code in ["400", "404", "405", "431"] {
        let line = m
            .lines()
            .find(|l| {
                l.starts_with(&format!(
                    "livestreamd_http_responses_total{{code=\"{code}\"}}"
                ))
            })
            .unwrap_or_else(|| panic!("no count for {code}"));
        let n: f64 = line.rsplit(' ').next().unwrap().parse().unwrap();
        assert!(n >= 1.0, "{line}");
    }
}

/// Sends `partial`, then nothing; returns the answer and how long it took to come.
fn stall_after(d: &Daemon, partial: &[u8]) -> (u16, Duration, bool) {
    let mut s = connect(d.http);
    let t0 = Instant::now();
    s.write_all(partial).unwrap();
    let (code, _) = read_head(&mut s);
    let waited = t0.elapsed();
    // Then the server closes the connection.
    let mut rest = Vec::new();
    let closed = s.read_to_end(&mut rest).is_ok();
    (code, waited, closed)
}

#[test]
fn half_requests_and_idle_connections_get_408_and_are_closed() {
    let d = Daemon::web_demo("timeouts", "request_timeout_s = 1.5");
    let (code, waited, closed) = stall_after(&d, b"GET /stream.ts HTTP/1.1\r\nHost: pi\r\nUser-Ag");
    assert_eq!(code, 408);
    assert!(closed, "the connection is closed after the 408");
    assert!(
        waited >= Duration::from_millis(1400) && waited < Duration::from_secs(4),
        "answered after {waited:?}, request_timeout_s is 1.5"
    );
    let (code, waited, closed) = stall_after(&d, b"");
    assert_eq!(code, 408, "a connection that says nothing");
    assert!(closed && waited < Duration::from_secs(4));

    // A slowloris that keeps trickling bytes is bounded by the same deadline.
    let mut s = connect(d.http);
    let t0 = Instant::now();
    s.write_all(b"GET / HTTP/1.1\r\n").unwrap();
    let mut answered = None;
    // A header line every 100 ms, for up to 4 s, until the answer comes.
    for i in 0..40 {
        std::thread::sleep(Duration::from_millis(100));
        if s.write_all(format!("X-{i}: y\r\n").as_bytes()).is_err() {
            break;
        }
        s.set_nonblocking(true).unwrap();
        let mut b = [0u8; 64];
        if let Ok(n) = s.read(&mut b) {
            if n > 0 {
                answered = Some((String::from_utf8_lossy(&b[..n]).into_owned(), t0.elapsed()));
                break;
            }
        }
        s.set_nonblocking(false).unwrap();
    }
    let (head, at) = answered.expect("the trickler got an answer");
    assert!(head.starts_with("HTTP/1.1 408"), "{head}");
    assert!(at < Duration::from_secs(3), "after {at:?}");
}

#[test]
fn max_viewers_is_enforced_with_503() {
    let d = Daemon::web_demo("max-viewers", "max_viewers = 2");
    let mut s1 = Viewer::open(d.http, "/stream.ts");
    let s2 = Viewer::open(d.http, "/stream.ts");
    assert_eq!((s1.code, s2.code), (200, 200));
    let r = d.get("/stream.ts");
    assert_eq!(r.code, 503);
    assert_eq!(r.header("Retry-After"), Some("5"));
    // The two admitted viewers still get video.
    let mut buf = vec![0u8; 65536];
    let n = s1.sock.read(&mut buf).unwrap();
    assert!(n > 0);
    // One leaves: a place is free again (the server notices within a second).
    drop(s1);
    wait_until(
        "a free place once a viewer left",
        Duration::from_secs(5),
        || (Viewer::open(d.http, "/stream.ts").code == 200).then_some(()),
    );
    let m = d.get("/metrics").text();
    assert!(m.contains("\nlivestreamd_viewers_rejected_total "), "{m}");
    assert!(
        !m.contains("\nlivestreamd_viewers_rejected_total 0\n"),
        "{m}"
    );
}

#[test]
fn one_address_cannot_take_every_viewer_place() {
    let d = Daemon::web_demo(
        "viewers-per-address",
        "max_viewers = 4\nmax_viewers_per_address = 2",
    );
    let phone = std::net::Ipv4Addr::new(127, 0, 0, 2);
    let other = std::net::Ipv4Addr::new(127, 0, 0, 3);
    let a = Viewer::open_from(phone, d.http, "/stream.ts");
    let b = Viewer::open_from(phone, d.http, "/stream.ts");
    assert_eq!((a.code, b.code), (200, 200));
    let mut third = Viewer::open_from(phone, d.http, "/stream.ts");
    assert_eq!(third.code, 503, "{}", third.head);
    let mut body = String::new();
    let _ = third.sock.read_to_string(&mut body);
    assert_eq!(body, "too many viewers from your address\n");
    // Another device still gets in, and so do its event streams.
    let mut c = Viewer::open_from(other, d.http, "/stream.ts");
    assert_eq!(c.code, 200);
    assert!(c.read_for(Duration::from_secs(1)) > 0, "and gets video");
    // The page's event streams: two per allowed viewer from one address.
    let events: Vec<Viewer> = (0..5)
        .map(|_| Viewer::open_from(phone, d.http, "/events"))
        .collect();
    let codes: Vec<u16> = events.iter().map(|e| e.code).collect();
    assert_eq!(codes, [200, 200, 200, 200, 503]);
    assert_eq!(Viewer::open_from(other, d.http, "/events").code, 200);
}

/// Reads the stream for `dur` and returns (bytes, longest gap between reads).
fn watch(s: &mut std::net::TcpStream, dur: Duration) -> (usize, Duration) {
    let mut buf = vec![0u8; 65536];
    let mut last = Instant::now();
    let mut gap = Duration::ZERO;
    let mut total = 0;
    for_period(dur, |_| {
        let n = s.read(&mut buf).expect("the stream keeps coming");
        assert!(n > 0, "the stream ended");
        total += n;
        gap = gap.max(last.elapsed());
        last = Instant::now();
    });
    (total, gap)
}

#[test]
fn misbehaving_clients_do_not_stall_the_stream() {
    let d = Daemon::web_demo(
        "no-stall",
        "max_viewers = 4\nrequest_timeout_s = 5.0\nviewer_stall_timeout_s = 5.0",
    );
    let mut good = Viewer::open(d.http, "/stream.ts");
    assert_eq!(good.code, 200);
    let (_, base_gap) = watch(&mut good.sock, Duration::from_secs(2));

    // A viewer that never reads, an /events client that never reads, idle
    // and half-sent requests, oversized and garbage requests.
    let frozen = Viewer::open(d.http, "/stream.ts");
    assert_eq!(frozen.code, 200);
    let mut sse = connect(d.http);
    sse.write_all(b"GET /events HTTP/1.1\r\n\r\n").unwrap();
    let mut idle: Vec<_> = (0..50).map(|_| connect(d.http)).collect();
    for (i, s) in idle.iter_mut().enumerate() {
        if i % 2 == 0 {
            s.write_all(b"GET /status HTTP/1.1\r\nHo").unwrap();
        }
    }
    let mut huge = b"GET / HTTP/1.1\r\nX: ".to_vec();
    huge.resize(100_000, b'z');
    for _ in 0..5 {
        let _ = http_request(d.http, &huge);
        let _ = http_request(d.http, b"\x00\x01\x02\r\n\r\n");
    }

    let (bytes, gap) = watch(&mut good.sock, Duration::from_secs(6));
    // 400 kbit/s is 50 kB/s; allow for the encoder's own burstiness.
    assert!(bytes > 100_000, "only {bytes} bytes in 6 s");
    // A client holding the server up would show as a gap of a whole timeout
    // (5 s); allow for a loaded machine's jitter well below that.
    eprintln!("good viewer: {bytes} bytes in 6 s, longest gap {gap:?} (before: {base_gap:?})");
    assert!(
        gap < Duration::from_millis(2500),
        "a gap of {gap:?} in the stream (it was {base_gap:?} before)"
    );
    // The frozen viewer is dropped once its socket buffers are full and the
    // stall timeout has passed, which frees its place. The good viewer keeps
    // reading meanwhile (half a second between looks).
    let mut status = String::new();
    poll(Duration::from_secs(40), Duration::ZERO, || {
        status = d.get("/status").text();
        let parsed: serde_json::Value = serde_json::from_str(&status).unwrap();
        if parsed["viewers"].as_array().unwrap().len() == 1 {
            return Some(());
        }
        let _ = watch(&mut good.sock, Duration::from_millis(500));
        None
    })
    .unwrap_or_else(|| panic!("the frozen viewer was never dropped: {status}"));
    assert!(
        d.log_text().contains("stalled"),
        "the log says why it left:\n{}",
        d.log_text()
    );
    drop(frozen);
    drop(sse);
    drop(idle);
    // All of them were answered or dropped; the server still answers.
    assert_eq!(d.get("/healthz").code, 200);
}
