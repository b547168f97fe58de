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

/// The capability that setting the clock needs (CAP_SYS_TIME, granted by the
/// unit as an ambient capability) stays with the daemon and reaches none of
/// the ffmpeg it starts. Run as `nobody` with that ambient capability, as
/// systemd runs the unit; needs root to get there.
#[test]
#[cfg_attr(
    not(feature = "netns-tests"),
    ignore = "needs root (setpriv to another user): cargo test --features netns-tests (scripts/test.sh)"
)]
fn cap_sys_time_stays_with_the_daemon_and_no_ffmpeg_inherits_it() {
    const CAP_SYS_TIME: u64 = 1 << 25;
    let dir = temp_dir("clock-caps");
    let ports = Ports::new();
    let config = write_config(&dir, &ports, "");
    let mut cmd = std::process::Command::new("setpriv");
    cmd.args([
        "--reuid=65534",
        "--regid=65534",
        "--clear-groups",
        "--inh-caps=+sys_time",
        "--ambient-caps=+sys_time",
        BIN,
    ])
    .args(demo_args(&config, &["--size", "320x180"]));
    let proc = Proc::spawn_command(&dir, "daemon", cmd, &[INFO_LOG]).expect("setpriv");
    let daemon = Daemon {
        proc,
        http: ports.http,
    };
    let status = daemon
        .try_wait_status(std::time::Duration::from_secs(30), input_flowing)
        .unwrap_or_else(|| panic!("{}", daemon.proc.log_text()));
    let caps = |pid: i64| -> (u64, u64, u64) {
        let text = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
        let field = |name: &str| {
            let line = text.lines().find(|l| l.starts_with(name)).unwrap();
            u64::from_str_radix(line[name.len()..].trim(), 16).unwrap()
        };
        (field("CapPrm:"), field("CapEff:"), field("CapAmb:"))
    };
    let (prm, eff, amb) = caps(i64::from(daemon.proc.pid()));
    assert!(
        prm & CAP_SYS_TIME != 0 && eff & CAP_SYS_TIME != 0,
        "the daemon keeps CAP_SYS_TIME: {prm:x} {eff:x}"
    );
    assert_eq!(amb, 0, "its ambient set is cleared");
    let children = child_pids(&status);
    assert_eq!(
        children.len(),
        2,
        "an encoder and the demo camera: {status}"
    );
    for pid in children {
        assert_eq!(caps(pid), (0, 0, 0), "ffmpeg {pid} has capabilities");
    }
}
