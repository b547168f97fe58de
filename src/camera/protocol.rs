//! The GoPro protocols, pure: which requests start, keep alive and stop a camera's stream, in which
//! order, and what the camera's answers mean. `session` sends them; `models` says what each model
//! offers.
//!
//! - Legacy (HERO4 to HERO8, gpControl on port 80): `GET /gp/gpControl/execute?p1=gpStream&a1=proto_v2&c1=restart`
//!   (a restart is the camera's own stop-then-start), then the datagram `_GPHD_:0:0:2:0.000000\n`
//!   to the camera's UDP 8554 every `keepalive_interval_s`, from the daemon's source socket.
//! - Open GoPro (HERO9 and later, port 8080), as GoPro's Python SDK (open-gopro 0.22.0) drives it:
//!   the preview stream is stopped, then started (`PreviewStreamController.start`); webcam mode
//!   reads `/gopro/webcam/status`, stops a webcam that is not idle, then starts it
//!   (`WebcamStreamController.start`); on USB, wired control is set first (`WiredGoPro.open`
//!   enables it; the spec asks for it disabled before webcam commands). Keep-alive:
//!   `GET /gopro/camera/keep_alive`, which the spec advises every 3 s.
//!
//! Every URL, parameter and id here is checked against the Open GoPro HTTP spec 2.0
//! (https://gopro.github.io/OpenGoPro/http) and GoPro's SDK; see docs/CAMERA.md.

use crate::camera::models::{Api, Model, Transport};
use crate::config::{Camera as CameraConfig, OpenGoProMode};
use serde_json::Value;

/// The legacy live-view keep-alive datagram.
pub const LEGACY_KEEPALIVE: &[u8] = b"_GPHD_:0:0:2:0.000000\n";
/// The port a GoPro sends its live view to unless told otherwise.
pub const GOPRO_STREAM_PORT: u16 = 8554;

pub const OGP_VERSION: &str = "/gopro/version";
pub const OGP_INFO: &str = "/gopro/camera/info";
pub const OGP_STATE: &str = "/gopro/camera/state";
pub const OGP_KEEPALIVE: &str = "/gopro/camera/keep_alive";
pub const OGP_PREVIEW_STOP: &str = "/gopro/camera/stream/stop";
pub const OGP_WEBCAM_STATUS: &str = "/gopro/webcam/status";
pub const OGP_WEBCAM_STOP: &str = "/gopro/webcam/stop";
pub const OGP_WEBCAM_EXIT: &str = "/gopro/webcam/exit";
pub const LEGACY_INFO: &str = "/gp/gpControl";
pub const LEGACY_START: &str = "/gp/gpControl/execute?p1=gpStream&a1=proto_v2&c1=restart";
pub const LEGACY_STOP: &str = "/gp/gpControl/execute?p1=gpStream&c1=stop";

/// What the daemon asks the camera for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// Open GoPro's preview stream.
    Preview,
    /// Open GoPro's webcam mode.
    Webcam,
    /// The legacy live view (gpStream).
    LiveView,
}

impl Mode {
    pub fn name(self) -> &'static str {
        match self {
            Mode::Preview => "preview",
            Mode::Webcam => "webcam",
            Mode::LiveView => "live-view",
        }
    }
}

/// How one identified camera is driven.
#[derive(Debug, Clone, PartialEq)]
pub struct Plan {
    pub api: Api,
    pub mode: Mode,
    /// Why the mode is not the configured one, or what the camera cannot do here.
    pub mode_reason: Option<String>,
    /// USB only: the wired-control state to set before streaming (`p` of `wired_usb`).
    pub wired_usb: Option<bool>,
    /// The `port` parameter, when the daemon does not listen on 8554 and the model takes it.
    pub port: Option<u16>,
    /// Webcam `res` and `fov` ids.
    pub res: u32,
    pub fov: u32,
}

impl Plan {
    /// The plan for a camera speaking `api`, of `model` if known, reached over `transport`.
    /// `info_absent`: it answered no `/gopro/camera/info`, which every model from HERO12 on has,
    /// so it is a HERO9 to HERO11.
    pub fn new(
        cfg: &CameraConfig,
        api: Api,
        model: Option<&Model>,
        transport: Transport,
        info_absent: bool,
        source_port: u16,
    ) -> Plan {
        let mut plan = Plan {
            api,
            mode: Mode::LiveView,
            mode_reason: None,
            wired_usb: None,
            port: None,
            res: cfg.webcam_resolution_id().unwrap_or(12),
            fov: cfg.fov.id(),
        };
        if api == Api::Legacy {
            return plan;
        }
        plan.mode = match cfg.mode {
            OpenGoProMode::Preview => Mode::Preview,
            OpenGoProMode::Webcam => Mode::Webcam,
        };
        if plan.mode == Mode::Webcam {
            let why_not = match (model, transport) {
                (Some(m), t) if !m.webcam(t) => Some(format!(
                    "{} offers webcam mode only over USB (Open GoPro spec): preview stream instead",
                    m.name
                )),
                (None, Transport::Wifi) if info_absent => Some(
                    "a camera without /gopro/camera/info is a HERO9 to HERO11, whose webcam mode works only over USB: preview stream instead"
                        .to_string(),
                ),
                _ => None,
            };
            if why_not.is_some() {
                plan.mode = Mode::Preview;
                plan.mode_reason = why_not;
            }
        }
        if transport == Transport::Usb && model.map_or(true, |m| m.wired_usb) {
            // WiredGoPro.open enables wired control; the spec's webcam section asks for it off.
            plan.wired_usb = Some(plan.mode == Mode::Preview);
        }
        if source_port != GOPRO_STREAM_PORT {
            let takes_port = model.map_or(true, |m| match plan.mode {
                Mode::Webcam => m.webcam_port,
                _ => m.preview_port,
            });
            if takes_port {
                plan.port = Some(source_port);
            } else if let Some(m) = model {
                let note = format!(
                    "{} takes no `port` for its {} stream: it sends to {GOPRO_STREAM_PORT}, not to [source] port {source_port}",
                    m.name,
                    plan.mode.name()
                );
                plan.mode_reason = Some(match plan.mode_reason.take() {
                    Some(r) => format!("{r}; {note}"),
                    None => note,
                });
            }
        }
        plan
    }

    /// The request that falls back from webcam mode to the preview stream after the camera
    /// answered that it has no webcam mode.
    pub fn fall_back_to_preview(&mut self, why: &str, model: Option<&Model>, source_port: u16) {
        self.mode = Mode::Preview;
        self.mode_reason = Some(format!("{why}: preview stream instead"));
        if self.wired_usb.is_some() {
            self.wired_usb = Some(true);
        }
        self.port = (source_port != GOPRO_STREAM_PORT && model.map_or(true, |m| m.preview_port))
            .then_some(source_port);
    }

    /// The wired-control request, if one is due.
    pub fn wired_usb_request(&self) -> Option<String> {
        self.wired_usb
            .map(|on| format!("/gopro/camera/control/wired_usb?p={}", u8::from(on)))
    }

    /// The request that makes the camera stream to us.
    pub fn start_request(&self) -> String {
        match self.mode {
            Mode::LiveView => LEGACY_START.to_string(),
            Mode::Preview => match self.port {
                Some(p) => format!("/gopro/camera/stream/start?port={p}"),
                None => "/gopro/camera/stream/start".to_string(),
            },
            Mode::Webcam => {
                // Parameters in the spec's order: res, fov, port (protocol: TS, the default).
                let mut q = format!("/gopro/webcam/start?res={}&fov={}", self.res, self.fov);
                if let Some(p) = self.port {
                    q.push_str(&format!("&port={p}"));
                }
                q
            }
        }
    }

    /// The keep-alive: an HTTP request for Open GoPro; None for legacy (a UDP datagram).
    pub fn keepalive_request(&self) -> Option<&'static str> {
        (self.api == Api::OpenGoPro).then_some(OGP_KEEPALIVE)
    }

    /// What stops the stream, in order: on shutdown, and before a restart.
    pub fn stop_requests(&self) -> &'static [&'static str] {
        match self.mode {
            Mode::Preview => &[OGP_PREVIEW_STOP],
            Mode::Webcam => &[OGP_WEBCAM_STOP, OGP_WEBCAM_EXIT],
            Mode::LiveView => &[LEGACY_STOP],
        }
    }
}

/// What one answer of the camera means for the daemon.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// Accepted: 2xx and, for webcam commands, `error` 0.
    Ok,
    /// 409 Conflict: the camera is busy (recording, another stream, a stream not yet
    /// released). Wait and ask again.
    Busy(String),
    /// 501 Not Implemented, or 404: this camera does not offer the operation.
    Unsupported(String),
    /// Any other refusal, with the camera's reason.
    Refused(String),
}

/// Open GoPro webcam error codes (spec: Get Webcam Status; SDK: `WebcamError`).
pub fn webcam_error_name(code: i64) -> &'static str {
    match code {
        0 => "SUCCESS",
        1 => "SET_PRESET",
        2 => "SET_WINDOW_SIZE",
        3 => "EXEC_STREAM",
        4 => "SHUTTER",
        5 => "COM_TIMEOUT",
        6 => "INVALID_PARAM",
        7 => "UNAVAILABLE",
        8 => "EXIT",
        _ => "unknown",
    }
}

/// Open GoPro webcam status codes (0 to 3; some HERO13 firmware reports 4, "unavailable").
pub fn webcam_status_name(code: i64) -> &'static str {
    match code {
        0 => "OFF",
        1 => "IDLE",
        2 => "HIGH_POWER_PREVIEW",
        3 => "LOW_POWER_PREVIEW",
        4 => "UNAVAILABLE",
        _ => "unknown",
    }
}

fn json(body: &str) -> Option<Value> {
    serde_json::from_str(body).ok()
}

/// The `error` field of an answer, described: webcam commands' codes by name.
pub fn body_error(target: &str, body: &str) -> Option<String> {
    let e = json(body)?.get("error").cloned()?;
    match e {
        Value::Number(n) => {
            let code = n.as_i64()?;
            if target.starts_with("/gopro/webcam/") {
                Some(format!("error {code} ({})", webcam_error_name(code)))
            } else {
                Some(format!("error {code}"))
            }
        }
        Value::String(s) if !s.is_empty() => Some(format!("error \"{}\"", clip(&s))),
        _ => None,
    }
}

/// The numeric `error` of an answer (0 when absent).
pub fn body_error_code(body: &str) -> i64 {
    json(body)
        .and_then(|v| v.get("error").and_then(Value::as_i64))
        .unwrap_or(0)
}

fn clip(s: &str) -> String {
    s.chars().take(120).collect()
}

fn reason_phrase(status: u16) -> &'static str {
    match status {
        400 => " Bad Request",
        403 => " Forbidden",
        404 => " Not Found",
        409 => " Conflict",
        500 => " Internal Server Error",
        501 => " Not Implemented",
        503 => " Service Unavailable",
        _ => "",
    }
}

/// Judges the camera's answer `status`/`body` to `GET target`.
pub fn judge(target: &str, status: u16, body: &str) -> Outcome {
    let what = target.split('?').next().unwrap_or(target);
    let detail = match body_error(target, body) {
        Some(e) => format!("HTTP {status}{}, {e}", reason_phrase(status)),
        None => format!("HTTP {status}{}", reason_phrase(status)),
    };
    let webcam = target.starts_with("/gopro/webcam/");
    match status {
        200..=299 if webcam && body_error_code(body) != 0 => {
            Outcome::Refused(format!("{what}: {detail}"))
        }
        200..=299 => Outcome::Ok,
        409 => Outcome::Busy(format!("{what}: {detail}")),
        404 | 501 => Outcome::Unsupported(format!("{what}: {detail}")),
        _ => Outcome::Refused(format!("{what}: {detail}")),
    }
}

/// `GET /gopro/webcam/status`: (status, error).
pub fn webcam_state(body: &str) -> Option<(i64, i64)> {
    let v = json(body)?;
    Some((
        v.get("status")?.as_i64()?,
        v.get("error").and_then(Value::as_i64).unwrap_or(0),
    ))
}

/// Whether a webcam in `status` must be stopped before it can be started (it streams).
pub fn webcam_needs_stop(status: i64) -> bool {
    !matches!(status, 0 | 1)
}

/// `GET /gopro/version`: the API version.
pub fn api_version(body: &str) -> Option<String> {
    let v = json(body)?.get("version")?.clone();
    match v {
        Value::String(s) => Some(clip(&s)),
        Value::Number(n) => Some(n.to_string()),
        _ => None,
    }
}

/// Model and firmware as a camera describes itself.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Description {
    pub model_name: Option<String>,
    pub model_number: Option<u32>,
    pub firmware: Option<String>,
}

fn description(v: &Value) -> Description {
    let text = |k: &str| v.get(k).and_then(Value::as_str).map(clip);
    // The spec gives model_number as a string ("62"); legacy cameras give a number.
    let number = v.get("model_number").and_then(|n| match n {
        Value::Number(n) => n.as_u64().and_then(|n| u32::try_from(n).ok()),
        Value::String(s) => s.trim().parse().ok(),
        _ => None,
    });
    Description {
        model_name: text("model_name"),
        model_number: number,
        firmware: text("firmware_version"),
    }
}

/// `GET /gopro/camera/info` (HERO12 and later).
pub fn camera_info(body: &str) -> Option<Description> {
    let d = description(&json(body)?);
    (d.model_name.is_some() || d.model_number.is_some()).then_some(d)
}

/// `GET /gp/gpControl`: its `info` object.
pub fn gpcontrol_info(body: &str) -> Option<Description> {
    let d = description(json(body)?.get("info")?);
    (d.model_name.is_some() || d.firmware.is_some()).then_some(d)
}

/// From `GET /gopro/camera/state`: whether the camera is busy (status 8) or recording
/// (status 10, encoding).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Activity {
    pub busy: bool,
    pub encoding: bool,
}

pub fn camera_activity(body: &str) -> Option<Activity> {
    let v = json(body)?;
    let status = v.get("status")?;
    let flag = |id: &str| status.get(id).and_then(Value::as_i64).unwrap_or(0) != 0;
    Some(Activity {
        busy: flag("8"),
        encoding: flag("10"),
    })
}

impl Activity {
    /// Why a camera in this state refuses to stream, if it says so.
    pub fn describe(self) -> Option<&'static str> {
        match (self.encoding, self.busy) {
            (true, _) => Some("the camera is recording (status 10, encoding); it sends no preview while it records"),
            (false, true) => Some("the camera is busy (status 8)"),
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::camera::models::by_id;
    use crate::config::WebcamFov;

    fn cfg(mode: OpenGoProMode) -> CameraConfig {
        CameraConfig {
            mode,
            ..CameraConfig::default()
        }
    }

    #[test]
    fn legacy_restarts_its_live_view_and_stops_it() {
        let p = Plan::new(
            &cfg(OpenGoProMode::Webcam),
            Api::Legacy,
            by_id("hero4"),
            Transport::Wifi,
            false,
            8554,
        );
        assert_eq!(p.mode, Mode::LiveView);
        assert_eq!(
            p.start_request(),
            "/gp/gpControl/execute?p1=gpStream&a1=proto_v2&c1=restart"
        );
        assert_eq!(p.keepalive_request(), None);
        assert_eq!(p.stop_requests(), [LEGACY_STOP]);
        assert_eq!(p.wired_usb_request(), None);
        assert_eq!(LEGACY_KEEPALIVE, b"_GPHD_:0:0:2:0.000000\n");
    }

    #[test]
    fn preview_names_the_port_only_when_not_8554_and_the_model_takes_it() {
        let c = cfg(OpenGoProMode::Preview);
        let hero12 = by_id("hero12");
        let p = Plan::new(&c, Api::OpenGoPro, hero12, Transport::Wifi, false, 8554);
        assert_eq!(p.start_request(), "/gopro/camera/stream/start");
        assert_eq!(p.keepalive_request(), Some("/gopro/camera/keep_alive"));
        assert_eq!(p.stop_requests(), [OGP_PREVIEW_STOP]);
        let p = Plan::new(&c, Api::OpenGoPro, hero12, Transport::Wifi, false, 9000);
        assert_eq!(p.start_request(), "/gopro/camera/stream/start?port=9000");
        assert_eq!(p.mode_reason, None);
        // HERO11 takes no port for its preview: it is not sent, and the reason is shown.
        let p = Plan::new(
            &c,
            Api::OpenGoPro,
            by_id("hero11"),
            Transport::Wifi,
            true,
            9000,
        );
        assert_eq!(p.start_request(), "/gopro/camera/stream/start");
        assert!(p.mode_reason.unwrap().contains("takes no `port`"));
        // Unknown model: sent, the camera will say.
        let p = Plan::new(&c, Api::OpenGoPro, None, Transport::Wifi, false, 9000);
        assert_eq!(p.start_request(), "/gopro/camera/stream/start?port=9000");
    }

    #[test]
    fn webcam_only_where_the_model_offers_it() {
        let mut c = cfg(OpenGoProMode::Webcam);
        c.resolution = 720;
        c.fov = WebcamFov::Linear;
        let p = Plan::new(
            &c,
            Api::OpenGoPro,
            by_id("hero12"),
            Transport::Wifi,
            false,
            9000,
        );
        assert_eq!(p.mode, Mode::Webcam);
        assert_eq!(
            p.start_request(),
            "/gopro/webcam/start?res=7&fov=4&port=9000"
        );
        assert_eq!(p.stop_requests(), [OGP_WEBCAM_STOP, OGP_WEBCAM_EXIT]);
        for id in ["hero9", "hero10", "hero11"] {
            let p = Plan::new(&c, Api::OpenGoPro, by_id(id), Transport::Wifi, true, 8554);
            assert_eq!(p.mode, Mode::Preview, "{id}");
            assert!(p.mode_reason.as_ref().unwrap().contains("only over USB"));
            let p = Plan::new(&c, Api::OpenGoPro, by_id(id), Transport::Usb, true, 8554);
            assert_eq!(p.mode, Mode::Webcam, "{id}");
        }
        // No /gopro/camera/info over Wi-Fi: a HERO9 to HERO11.
        let p = Plan::new(&c, Api::OpenGoPro, None, Transport::Wifi, true, 8554);
        assert_eq!(p.mode, Mode::Preview);
        assert!(p.mode_reason.unwrap().contains("HERO9 to HERO11"));
        let p = Plan::new(&c, Api::OpenGoPro, None, Transport::Wifi, false, 8554);
        assert_eq!(p.mode, Mode::Webcam);
    }

    #[test]
    fn usb_sets_wired_control_as_the_sdk_and_the_spec_ask() {
        let p = Plan::new(
            &cfg(OpenGoProMode::Preview),
            Api::OpenGoPro,
            by_id("hero12"),
            Transport::Usb,
            false,
            8554,
        );
        assert_eq!(
            p.wired_usb_request().unwrap(),
            "/gopro/camera/control/wired_usb?p=1"
        );
        let mut p = Plan::new(
            &cfg(OpenGoProMode::Webcam),
            Api::OpenGoPro,
            by_id("hero12"),
            Transport::Usb,
            false,
            8554,
        );
        assert_eq!(
            p.wired_usb_request().unwrap(),
            "/gopro/camera/control/wired_usb?p=0"
        );
        p.fall_back_to_preview("webcam: HTTP 501", by_id("hero12"), 8554);
        assert_eq!(p.mode, Mode::Preview);
        assert_eq!(
            p.wired_usb_request().unwrap(),
            "/gopro/camera/control/wired_usb?p=1"
        );
        // HERO9 has no wired_usb; Wi-Fi needs none.
        let p = Plan::new(
            &cfg(OpenGoProMode::Webcam),
            Api::OpenGoPro,
            by_id("hero9"),
            Transport::Usb,
            true,
            8554,
        );
        assert_eq!(p.wired_usb_request(), None);
        let p = Plan::new(
            &cfg(OpenGoProMode::Preview),
            Api::OpenGoPro,
            by_id("hero12"),
            Transport::Wifi,
            false,
            8554,
        );
        assert_eq!(p.wired_usb_request(), None);
    }

    #[test]
    fn answers_are_judged_with_their_error_field() {
        assert_eq!(judge("/gopro/camera/stream/start", 200, "{}"), Outcome::Ok);
        assert_eq!(
            judge("/gopro/camera/stream/start?port=9000", 409, "{}"),
            Outcome::Busy("/gopro/camera/stream/start: HTTP 409 Conflict".into())
        );
        assert_eq!(
            judge(
                "/gopro/webcam/start?res=4",
                200,
                r#"{"status":1,"error":6}"#
            ),
            Outcome::Refused("/gopro/webcam/start: HTTP 200, error 6 (INVALID_PARAM)".into())
        );
        assert_eq!(
            judge("/gopro/webcam/start", 200, r#"{"status":2,"error":0}"#),
            Outcome::Ok
        );
        assert!(matches!(
            judge("/gopro/webcam/start", 501, "{}"),
            Outcome::Unsupported(_)
        ));
        assert_eq!(
            judge("/gopro/camera/stream/start", 500, r#"{"error":"boom"}"#),
            Outcome::Refused(
                "/gopro/camera/stream/start: HTTP 500 Internal Server Error, error \"boom\"".into()
            )
        );
        assert_eq!(
            judge("/gp/gpControl/execute?p1=gpStream", 200, "not json"),
            Outcome::Ok
        );
    }

    #[test]
    fn bodies_are_read() {
        assert_eq!(webcam_state(r#"{"status":2,"error":0}"#), Some((2, 0)));
        assert_eq!(webcam_state(r#"{"error":0}"#), None);
        assert!(webcam_needs_stop(2) && webcam_needs_stop(3) && webcam_needs_stop(4));
        assert!(!webcam_needs_stop(0) && !webcam_needs_stop(1));
        assert_eq!(api_version(r#"{"version":"2.0"}"#).unwrap(), "2.0");
        assert_eq!(api_version("{}"), None);
        let d = camera_info(
            r#"{"model_number":"62","model_name":"HERO12 Black","firmware_version":"H23.01.02.32.00"}"#,
        )
        .unwrap();
        assert_eq!(d.model_number, Some(62));
        assert_eq!(d.model_name.as_deref(), Some("HERO12 Black"));
        let d = gpcontrol_info(
            r#"{"info":{"model_number":13,"model_name":"HERO4 Black","firmware_version":"HD4.02.05.00.00"}}"#,
        )
        .unwrap();
        assert_eq!(d.model_number, Some(13));
        assert_eq!(d.firmware.as_deref(), Some("HD4.02.05.00.00"));
        assert_eq!(gpcontrol_info(r#"{"status":{}}"#), None);
        let a = camera_activity(r#"{"status":{"8":0,"10":1},"settings":{}}"#).unwrap();
        assert!(a.encoding && !a.busy);
        assert!(a.describe().unwrap().contains("recording"));
        let a = camera_activity(r#"{"status":{"8":0,"10":0}}"#).unwrap();
        assert_eq!(a.describe(), None);
    }
}
