//! A phone's clock offered over the hotspot (`POST /clock?t=UNIX_MS`): the
//! daemon answers with its decision and shows it in `/status` `clock`. Run
//! without `--set-clock`, as tests are, it never sets this machine's clock:
//! a plausible offer is refused with that reason (or with NTP's, on a machine
//! whose clock NTP keeps), an implausible one for being implausible.

mod common;

use common::*;

fn post(port: u16, target: &str) -> (u16, serde_json::Value) {
    let r = http_method(port, "POST", target).unwrap();
    let body = serde_json::from_slice(&r.body).unwrap_or(serde_json::Value::Null);
    (r.code, body)
}

#[test]
fn a_phones_clock_is_decided_bounded_and_shown() {
    let (_dir, mut daemon) = Daemon::small_demo("clock-offer", "");
    daemon.wait_healthy();
    let port = daemon.http;
    let status = daemon.status().unwrap();
    let clock = &status["clock"];
    assert_eq!(clock["set_by"], serde_json::Value::Null, "{clock}");
    assert_eq!(clock["may_set"], false);
    assert_eq!(
        clock["wants_phone"], false,
        "without --set-clock no page is asked"
    );

    // A plausible time, an hour ahead.
    let now_ms = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as f64;
    let (code, answer) = post(port, &format!("/clock?t={}", now_ms + 3_600_000.0));
    assert_eq!(code, 200);
    assert_eq!(answer["taken"], false, "{answer}");
    let why = answer["why"].as_str().unwrap();
    assert!(why.contains("--set-clock") || why.contains("NTP"), "{why}");
    let clock = &daemon.status().unwrap()["clock"];
    assert!(
        clock["last_refusal"].as_str().unwrap().contains(why),
        "{clock}"
    );
    assert_eq!(clock["set_by"], serde_json::Value::Null);

    // 1990: before this software, refused whatever the machine.
    let (_, answer) = post(port, "/clock?t=631152000000");
    assert_eq!(answer["taken"], false);
    let why = answer["why"].as_str().unwrap();
    assert!(why.contains("plausible") || why.contains("NTP"), "{why}");

    // Malformed and wrong-method requests are refused as such.
    assert_eq!(post(port, "/clock?t=soon").0, 400);
    assert_eq!(post(port, "/clock").0, 400);
    assert_eq!(http_get(port, "/clock").unwrap().code, 405);
}
