//! `[[output]]` UDP pushes to a phone: the tee output really delivers MPEG-TS to
//! the phone's namespace, the daemon probes the phone with ICMP echo, and loss
//! on that link makes the controller step down even with no HTTP viewer. Root only.

mod common;

use common::netns::{self, PhoneLink};
use common::scenario::start_daemon;
use common::temp_dir;
use std::process::Stdio;
use std::time::{Duration, Instant};

/// Receives UDP on the phone for `secs` seconds; returns (bytes, first byte).
fn receive_on_phone(link: &PhoneLink, port: u16, secs: u32) -> std::process::Child {
    let script = format!(
        "import socket,time\ns=socket.socket(socket.AF_INET,socket.SOCK_DGRAM)\ns.bind(('0.0.0.0',{port}))\ns.settimeout(0.5)\n\
end=time.time()+{secs}\nn=0\nfirst=-1\nsizes=set()\nwhile time.time()<end:\n    try:\n        d=s.recv(65536)\n    except socket.timeout:\n        continue\n    n+=len(d)\n    sizes.add(len(d)%188)\n    first=d[0] if first<0 else first\nprint(n, first, sorted(sizes))\n"
    );
    link.command("python3")
        .args(["-c", &script])
        .stdout(Stdio::piped())
        .spawn()
        .expect("python3 in the phone namespace")
}

#[test]
#[cfg_attr(
    not(feature = "netns-tests"),
    ignore = "needs root and network namespaces: cargo test --features netns-tests (scripts/test.sh)"
)]
fn a_udp_push_reaches_the_phone_and_its_probed_loss_steps_the_rung_down() {
    netns::require();
    let dir = temp_dir("output-probe");
    let link = PhoneLink::create();
    let output = format!("[[output]]\nurl = \"udp://{}:5000\"\n", link.phone_ip);
    let (daemon, _) = start_daemon(&dir, &output);
    let receiver = receive_on_phone(&link, 5000, 6);
    let out = receiver.wait_with_output().unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    println!("phone received: {text}");
    let mut f = text.split_whitespace();
    let bytes: u64 = f.next().and_then(|v| v.parse().ok()).unwrap_or(0);
    let first: i64 = f.next().and_then(|v| v.parse().ok()).unwrap_or(-1);
    assert!(
        bytes > 100_000,
        "the push carried video: {bytes} bytes in 6 s"
    );
    assert_eq!(first, 0x47, "MPEG-TS sync byte");
    assert!(
        text.contains("[0]"),
        "whole TS packets per datagram: {text}"
    );

    let s = daemon.status().unwrap();
    let probed = &s["outputs"][0];
    println!("clean link: {probed}");
    assert_eq!(probed["probe"], "icmp");
    assert_eq!(probed["link"]["loss_pct"].as_f64(), Some(0.0), "{probed}");
    assert!(
        probed["link"]["rtt_ms"].as_f64().unwrap() < 50.0,
        "{probed}"
    );
    // The push has its own rung, as a viewer has.
    let output_rung = |s: &serde_json::Value| s["outputs"][0]["rung"].as_i64().unwrap_or(-1);
    assert_eq!(output_rung(&s), 0, "a clean push link keeps the top rung");

    link.set_loss(25);
    let t0 = Instant::now();
    let s = daemon
        .try_wait_status(Duration::from_secs(20), |s| output_rung(s) >= 1)
        .unwrap_or_else(|| daemon.status().unwrap());
    let stepped = output_rung(&s);
    println!(
        "after 25% loss: rung {stepped} after {:.1} s; {}",
        t0.elapsed().as_secs_f64(),
        s["outputs"][0]
    );
    assert!(
        stepped >= 1,
        "loss on the push link stepped down: {}",
        s["outputs"][0]
    );
    // The push's probed loss was the reason (the window's figure itself is random).
    // Under the per-viewer policy the push has its own controller.
    let reason = s["outputs"][0]["adapt"]["last_reason"]
        .as_str()
        .unwrap_or("");
    assert!(reason.starts_with("output 0: packet loss"), "{reason}");
}
