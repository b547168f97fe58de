//! A plausible wall clock on a Pi with no real-time clock and a read-only
//! card (nothing may write a saved time there every hour, as fake-hwclock
//! does), from the camera's clock or the first phone's.
//!
//! Who may move the clock, and how far (pure: `decide`):
//! - nobody while the kernel says the clock is synchronized (NTP did it);
//! - only to a time between this source's date (a clock before the code was
//!   written is wrong) and twenty years after it;
//! - a phone on the hotspot (untrusted): only forward, once per boot, and
//!   only while neither a phone nor the camera has set it;
//! - the camera (the user's own, on its cable or Wi-Fi): once per boot,
//!   forward, or either way over a time a phone gave.
//!
//! Setting the clock needs CAP_SYS_TIME (the systemd unit grants it) and
//! `run --set-clock`; without that flag the decision is shown in `/status`
//! `clock` but the clock is left alone (tests, a desktop running the demo).
//! The daemon's controllers run on the monotonic clock, so a step of the wall
//! clock moves only log times and HLS dates.

use serde::Serialize;
use std::sync::{Mutex, OnceLock};

/// Seconds since the epoch of this source's date (build.rs).
pub const SOURCE_UNIX: i64 = parse_const(env!("LIVESTREAMD_SOURCE_UNIX"));
/// How far after `SOURCE_UNIX` a time is still plausible.
const MAX_AHEAD_S: f64 = 20.0 * 365.25 * 86_400.0;
/// A smaller difference is not worth a step.
const MIN_STEP_S: f64 = 2.0;

const fn parse_const(s: &str) -> i64 {
    let b = s.as_bytes();
    let mut i = 0;
    let mut n: i64 = 0;
    while i < b.len() {
        n = n * 10 + (b[i] - b'0') as i64;
        i += 1;
    }
    n
}

/// Who offers a time.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Source {
    Camera,
    Phone,
}

/// What `/status` says of the clock.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct ClockStatus {
    /// Who set the clock this boot: "camera", "phone", or null (the kernel's
    /// clock as it was: NTP's when `synchronized`, else a guess).
    pub set_by: Option<Source>,
    /// Who offered it (a phone's address, the camera's).
    pub from: Option<String>,
    /// How far the clock was moved, seconds.
    pub step_s: Option<f64>,
    /// Whether the kernel says NTP synchronized the clock.
    pub synchronized: bool,
    /// Whether the daemon may set the clock (`run --set-clock`).
    pub may_set: bool,
    /// Whether a phone's offer could be taken now (the page sends its clock then).
    pub wants_phone: bool,
    /// The last offer not taken, and why.
    pub last_refusal: Option<String>,
}

/// Whether the clock may be moved from `now` to `offered`; the step if so.
pub fn decide(
    now: f64,
    offered: f64,
    synchronized: bool,
    set_by: Option<Source>,
    source: Source,
) -> Result<f64, String> {
    if synchronized {
        return Err("the clock is synchronized (NTP)".into());
    }
    let floor = SOURCE_UNIX as f64;
    if !offered.is_finite() || offered < floor {
        return Err("before this software was written: not a plausible time".into());
    }
    if offered > floor + MAX_AHEAD_S {
        return Err("more than twenty years after this software: not a plausible time".into());
    }
    let step = offered - now;
    match (set_by, source) {
        (Some(Source::Camera), _) => Err("already set from the camera".into()),
        (Some(Source::Phone), Source::Phone) => Err("already set from a phone".into()),
        // The camera corrects a phone's time, either way.
        (Some(Source::Phone), Source::Camera) if step.abs() >= MIN_STEP_S => Ok(step),
        (None, _) if step >= MIN_STEP_S => Ok(step),
        (None, Source::Phone) if step < 0.0 => {
            Err("behind the clock: a phone only moves it forward".into())
        }
        _ => Err("the clock already agrees".into()),
    }
}

// ---- the process's keeper ------------------------------------------------------

#[derive(Default)]
struct Keeper {
    status: ClockStatus,
}

fn keeper() -> &'static Mutex<Keeper> {
    static K: OnceLock<Mutex<Keeper>> = OnceLock::new();
    K.get_or_init(Mutex::default)
}

/// `run --set-clock`: the daemon may set the system clock.
pub fn allow_setting(yes: bool) {
    keeper().lock().unwrap().status.may_set = yes;
}

/// Whether the kernel's clock is synchronized (`adjtimex`: STA_UNSYNC clear).
fn kernel_synchronized() -> bool {
    // SAFETY: adjtimex with modes = 0 only reads; tx is a plain C struct.
    let mut tx: libc::timex = unsafe { std::mem::zeroed() };
    let state = unsafe { libc::adjtimex(&mut tx) };
    state != -1 && state != libc::TIME_ERROR && tx.status & libc::STA_UNSYNC == 0
}

fn set_system_clock(unix: f64) -> Result<(), String> {
    let ts = libc::timespec {
        // time_t's width differs between targets (musl, glibc armv7).
        tv_sec: unix.floor() as _,
        tv_nsec: ((unix - unix.floor()) * 1e9) as _,
    };
    // SAFETY: a valid timespec; the call only reads it.
    if unsafe { libc::clock_settime(libc::CLOCK_REALTIME, &ts) } == 0 {
        Ok(())
    } else {
        let e = std::io::Error::last_os_error();
        Err(match e.raw_os_error() {
            Some(libc::EPERM) => {
                format!("cannot set the clock: {e} (the unit grants CAP_SYS_TIME)")
            }
            _ => format!("cannot set the clock: {e}"),
        })
    }
}

/// Offers a time (Unix seconds) from `source`, named `from`; returns whether
/// it was taken. Decided and applied under one lock, so two phones at once
/// cannot both set it.
pub fn offer(source: Source, from: &str, offered: f64) -> Result<f64, String> {
    let mut k = keeper().lock().unwrap();
    let synchronized = kernel_synchronized();
    k.status.synchronized = synchronized;
    let now = crate::clock::unix_now();
    let result = decide(now, offered, synchronized, k.status.set_by, source).and_then(|step| {
        if k.status.may_set {
            set_system_clock(offered).map(|()| step)
        } else {
            Err(format!(
                "would move the clock {step:+.0} s, but the daemon runs without --set-clock"
            ))
        }
    });
    match &result {
        Ok(step) => {
            log::info!("clock: set from the {source:?} ({from}), moved {step:+.1} s");
            k.status.set_by = Some(source);
            k.status.from = Some(from.to_string());
            k.status.step_s = Some(*step);
            k.status.last_refusal = None;
        }
        Err(why) => {
            log::debug!("clock: {source:?} ({from}) not taken: {why}");
            k.status.last_refusal = Some(format!("{source:?} ({from}): {why}"));
        }
    }
    result
}

/// The clock's state for `/status`.
pub fn status() -> ClockStatus {
    let mut k = keeper().lock().unwrap();
    k.status.synchronized = kernel_synchronized();
    let mut s = k.status.clone();
    s.wants_phone = !s.synchronized && s.set_by.is_none() && s.may_set;
    s
}

/// A camera's clock answer, as UTC Unix seconds: Open GoPro's
/// `/gopro/camera/get_date_time` (`{"date":"2023_12_31","time":"11_05_45",
/// "tzone":-480,"dst":0}`, local time with the zone's offset in minutes) or a
/// legacy status's field 40 (`%17%0C%1F%0B%05%2D`: year-2000, month, day, hour,
/// minute, second, in the camera's local time, taken as UTC).
pub fn parse_camera_time(body: &str) -> Option<f64> {
    let v: serde_json::Value = serde_json::from_str(body).ok()?;
    if let (Some(date), Some(time)) = (v["date"].as_str(), v["time"].as_str()) {
        let d: Vec<i64> = date.split('_').filter_map(|x| x.parse().ok()).collect();
        let t: Vec<i64> = time.split('_').filter_map(|x| x.parse().ok()).collect();
        let ([y, mo, day], [h, mi, s]) = (d.as_slice(), t.as_slice()) else {
            return None;
        };
        let offset_min = v["tzone"].as_i64().unwrap_or(0) + 60 * v["dst"].as_i64().unwrap_or(0);
        return unix_of(*y, *mo, *day, *h, *mi, *s).map(|u| u - offset_min as f64 * 60.0);
    }
    let field = v["status"]["40"].as_str()?;
    let b: Vec<i64> = field
        .split('%')
        .filter(|x| !x.is_empty())
        .map(|x| i64::from_str_radix(x, 16).ok())
        .collect::<Option<_>>()?;
    let [y, mo, day, h, mi, s] = b.as_slice() else {
        return None;
    };
    unix_of(2000 + y, *mo, *day, *h, *mi, *s)
}

/// Unix seconds of a UTC civil time, if it is one.
fn unix_of(y: i64, mo: i64, d: i64, h: i64, mi: i64, s: i64) -> Option<f64> {
    if !(1..=12).contains(&mo) || !(1..=31).contains(&d) || h > 23 || mi > 59 || s > 60 {
        return None;
    }
    // Days from civil (H. Hinnant's algorithm).
    let y = if mo <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (mo + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    let days = era * 146_097 + doe - 719_468;
    Some((days * 86_400 + h * 3600 + mi * 60 + s) as f64)
}

/// The request that reads a camera's clock, by the API it speaks (the names
/// `/status` `camera.api` uses).
pub fn camera_time_request(api: &str) -> Option<&'static str> {
    match api {
        "open-gopro" => Some("/gopro/camera/get_date_time"),
        "gopro-legacy" => Some("/gp/gpControl/status"),
        _ => None,
    }
}

/// The camera side, in one call for the camera's control loop, once it knows
/// the camera's HTTP address and API (`open-gopro`, `gopro-legacy`): reads
/// the camera's clock and offers it. Once per process; quiet when the camera
/// has no clock to read.
pub async fn from_camera(addr: std::net::SocketAddr, api: &str, timeout: std::time::Duration) {
    static ASKED: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);
    let Some(target) = camera_time_request(api) else {
        return;
    };
    if ASKED.swap(true, std::sync::atomic::Ordering::Relaxed) {
        return;
    }
    match crate::http::client::http_get(addr, target, timeout).await {
        Ok(r) if r.status == 200 => match parse_camera_time(&r.body) {
            Some(t) => {
                let _ = offer(Source::Camera, &addr.ip().to_string(), t);
            }
            None => log::debug!("clock: the camera's answer to {target} holds no time"),
        },
        Ok(r) => log::debug!("clock: {target}: HTTP {}", r.status),
        Err(e) => log::debug!("clock: {target}: {e}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const DAY: f64 = 86_400.0;

    fn at(days_after_source: f64) -> f64 {
        SOURCE_UNIX as f64 + days_after_source * DAY
    }

    #[test]
    fn a_phone_moves_an_unset_clock_forward_once() {
        let now = at(-400.0); // the image's guess: before this software
        assert_eq!(
            decide(now, at(30.0), false, None, Source::Phone),
            Ok(at(30.0) - now)
        );
        // Already set by a phone: no second phone.
        assert!(decide(now, at(31.0), false, Some(Source::Phone), Source::Phone).is_err());
        // Never backward, never implausible, never over NTP.
        let now = at(10.0);
        assert!(decide(now, at(5.0), false, None, Source::Phone)
            .unwrap_err()
            .contains("forward"));
        assert!(decide(now, at(-1.0), false, None, Source::Phone).is_err());
        assert!(decide(now, at(365.0 * 21.0), false, None, Source::Phone).is_err());
        assert!(decide(now, at(11.0), true, None, Source::Phone)
            .unwrap_err()
            .contains("NTP"));
        assert!(decide(now, f64::NAN, false, None, Source::Phone).is_err());
        assert!(decide(now, now + 1.0, false, None, Source::Phone)
            .unwrap_err()
            .contains("agrees"));
    }

    #[test]
    fn the_camera_corrects_a_phone_but_nothing_corrects_the_camera() {
        let now = at(40.0);
        assert_eq!(
            decide(now, at(39.0), false, Some(Source::Phone), Source::Camera),
            Ok(at(39.0) - now)
        );
        assert!(decide(now, at(41.0), false, Some(Source::Camera), Source::Camera).is_err());
        assert!(decide(now, at(41.0), false, Some(Source::Camera), Source::Phone).is_err());
        // Unset: forward only for the camera too.
        assert!(decide(now, at(39.0), false, None, Source::Camera).is_err());
    }

    #[test]
    fn camera_clocks_are_read_in_both_dialects() {
        let open = r#"{"date":"2024_02_29","time":"23_05_45","tzone":-480,"dst":0}"#;
        // 23:05:45 at UTC-8 is 07:05:45 UTC the next day.
        assert_eq!(parse_camera_time(open), unix_of(2024, 3, 1, 7, 5, 45));
        assert_eq!(unix_of(2024, 3, 1, 7, 5, 45), Some(1_709_276_745.0));
        let legacy = r#"{"status":{"40":"%18%02%1D%17%05%2D","8":0}}"#;
        assert_eq!(parse_camera_time(legacy), unix_of(2024, 2, 29, 23, 5, 45));
        assert_eq!(
            parse_camera_time(r#"{"date":"2024_13_01","time":"00_00_00"}"#),
            None
        );
        assert_eq!(parse_camera_time(r#"{"status":{"40":"%zz"}}"#), None);
        assert_eq!(parse_camera_time("not json"), None);
    }

    #[test]
    fn without_set_clock_an_offer_is_decided_but_not_applied() {
        allow_setting(false);
        let offered = crate::clock::unix_now() + 3600.0;
        match offer(Source::Phone, "test", offered) {
            // On a machine whose clock NTP keeps, the offer is refused first.
            Err(why) => assert!(
                why.contains("--set-clock") || why.contains("NTP") || why.contains("already"),
                "{why}"
            ),
            Ok(_) => panic!("the clock must not be set without --set-clock"),
        }
        assert!(!status().wants_phone);
    }
}
