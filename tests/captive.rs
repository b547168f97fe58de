//! The field network's side of the daemon, against a running daemon: the
//! image's network status file shown in `/status` as `network` (bounded, absent
//! → null, a new file seen at once), and the captive-portal probes of phones
//! that just joined the access point answered with a redirect to the live page,
//! never to a place the request names.

mod common;

use common::{demo_args, temp_dir, write_config, Daemon, Ports};
use serde_json::{json, Value};
use std::io::Write;
use std::path::{Path, PathBuf};

const NETWORK_ENV: &str = "LIVESTREAMD_NETWORK_FILE";

/// A demo daemon reading its network status file at `dir/network.json`.
fn daemon(name: &str) -> (PathBuf, Daemon) {
    let dir = temp_dir(name);
    let ports = Ports::new();
    let config = write_config(&dir, &ports, "");
    let network = dir.join("network.json");
    let mut d = Daemon::start_with(
        &dir,
        &demo_args(&config, &["--size", "320x180"]),
        &[(NETWORK_ENV, network.to_str().unwrap())],
        ports.http,
    );
    d.wait_healthy();
    (network, d)
}

/// Replaces the file the way livestream-net does: a new file renamed over it.
fn write_network(path: &Path, text: &[u8]) {
    let tmp = path.with_extension("new");
    std::fs::File::create(&tmp)
        .unwrap()
        .write_all(text)
        .unwrap();
    std::fs::rename(&tmp, path).unwrap();
}

fn network(d: &Daemon) -> Value {
    d.status().expect("/status")["network"].clone()
}

/// What the images write (docs/IMAGES.md), abridged.
fn sample() -> Value {
    json!({
        "version": 1,
        "access_point": {
            "state": "up",
            "mode": "own-chip",
            "interface": "wlan0",
            "ssid": "livestream",
            "password": "abcd-efgh-jkmn",
            "channel": 6,
            "why": "the camera is not on Wi-Fi: the Pi's own Wi-Fi serves the phones"
        },
        "address": "192.168.4.1",
        "short_name": "livestream.lan",
        "page": "http://livestream.lan/",
        "page_by_address": "http://192.168.4.1:8080/"
    })
}

#[test]
fn status_shows_the_network_file_as_it_is_now() {
    let (file, d) = daemon("network-status");
    assert_eq!(network(&d), Value::Null, "no file: null");

    write_network(&file, sample().to_string().as_bytes());
    assert_eq!(network(&d), sample());

    let mut changed = sample();
    changed["access_point"]["channel"] = json!(11);
    write_network(&file, changed.to_string().as_bytes());
    assert_eq!(
        network(&d)["access_point"]["channel"],
        11,
        "a new file is seen"
    );

    // Not an object, not JSON, too large: null, and the daemon goes on.
    write_network(&file, b"[\"a\"]");
    assert_eq!(network(&d), Value::Null);
    write_network(&file, b"{\"cut\": ");
    assert_eq!(network(&d), Value::Null);
    let mut big = br#"{"pad": ""#.to_vec();
    big.resize(64 * 1024, b'x');
    big.extend_from_slice(b"\"}");
    write_network(&file, &big);
    assert_eq!(network(&d), Value::Null);
    let log = d.log_text();
    assert!(log.contains("not a JSON object"), "{log}");
    assert!(log.contains("more than 16384"), "{log}");

    std::fs::remove_file(&file).unwrap();
    assert_eq!(network(&d), Value::Null, "file gone: null");
    assert_eq!(d.get("/healthz").code, 200);
}

#[test]
fn captive_probes_are_sent_to_the_live_page() {
    let (file, d) = daemon("captive");
    let probes = [
        ("connectivitycheck.gstatic.com", "/generate_204"),
        ("clients3.google.com", "/gen_204"),
        ("captive.apple.com", "/hotspot-detect.html"),
        ("www.apple.com", "/library/test/success.html"),
        ("www.msftconnecttest.com", "/connecttest.txt"),
        ("www.msftconnecttest.com", "/redirect"),
        ("www.msftncsi.com", "/ncsi.txt"),
        ("detectportal.firefox.com", "/canonical.html"),
        ("detectportal.firefox.com", "/success.txt"),
        ("spectrum.s3.amazonaws.com", "/kindle-wifi/wifistub.html"),
    ];

    // No network file (a laptop, not an image): the address the probe reached.
    let here = format!("http://127.0.0.1:{}/", d.http);
    for (host, path) in probes {
        let r = d.request(format!("GET {path} HTTP/1.1\r\nHost: {host}\r\n\r\n"));
        assert_eq!(r.code, 302, "{host}{path}: {}", r.head);
        assert_eq!(r.header("Location"), Some(here.as_str()), "{host}{path}");
    }

    // The image's page, whatever the request says about hosts.
    write_network(&file, sample().to_string().as_bytes());
    for raw in [
        "GET /generate_204 HTTP/1.1\r\nHost: connectivitycheck.gstatic.com\r\n\r\n".to_string(),
        "GET /hotspot-detect.html HTTP/1.0\r\nHost: evil.example\r\n\r\n".to_string(),
        "GET http://evil.example/generate_204?next=http://evil.example/ HTTP/1.1\r\nHost: evil.example\r\n\r\n"
            .to_string(),
        "GET /generate_204 HTTP/1.1\r\nX-Forwarded-Host: evil.example\r\n\r\n".to_string(),
    ] {
        let r = d.request(&raw);
        assert_eq!(r.code, 302, "{raw:?}");
        assert_eq!(r.header("Location"), Some("http://livestream.lan/"), "{raw:?}");
        assert_eq!(r.header("Cache-Control"), Some("no-store"));
        let body = r.text();
        assert!(body.contains("href=\"http://livestream.lan/\""), "{body}");
        assert!(!body.contains("evil"), "{body}");
    }
    let r = d.request(b"HEAD /generate_204 HTTP/1.1\r\n\r\n");
    assert_eq!(r.code, 302);
    assert!(r.body.is_empty());
    assert_eq!(r.header("Location"), Some("http://livestream.lan/"));

    // A page the daemon must not put in a header: the probe's address instead.
    let mut bad = sample();
    bad["page"] = json!("http://livestream.lan/\r\nSet-Cookie: owned=1");
    write_network(&file, bad.to_string().as_bytes());
    let r = d.request(b"GET /generate_204 HTTP/1.1\r\n\r\n");
    assert_eq!(r.header("Location"), Some(here.as_str()));
    assert!(!r.head.contains("owned"), "{}", r.head);

    // Only the probes: the page itself, and other paths, are what they were.
    assert_eq!(d.get("/").code, 200);
    assert_eq!(d.get("/generate_204/more").code, 404);
    assert_eq!(
        d.request(b"POST /generate_204 HTTP/1.1\r\nContent-Length: 0\r\n\r\n")
            .code,
        404
    );
}
