//! The emulated camera's answers, per model: the Open GoPro HTTP spec's status codes and bodies
//! (with the `error` field GoPro's SDK reads from every webcam answer), the webcam state machine,
//! 409 where the camera would be busy, the legacy gpControl, and the test hooks.
//!
//! Where GoPro publishes nothing, the choice is said here and in docs/CAMERA.md:
//! - 409 `{}` to a preview start while the camera records, runs the webcam, or still streams (the
//!   3-byte JSON body users saw, gopro/OpenGoPro#577); webcam answers carry `status` and `error`.
//! - 404 `{}` for an operation the model lacks (not in its `x-supported-cameras`); 501 `{}` where
//!   the spec says so (webcam over Wi-Fi on HERO9 to HERO11).
//! - A webcam start with a `res` the model does not list: 400 with error 6 (INVALID_PARAM).
//! - `port`/`protocol` a model does not take are ignored (it sends to 8554).

use crate::camera::emulator::state::{Cam, State, StreamKind};
use crate::camera::models::{Api, Transport};
use crate::http::request::{query_value, Request};
use log::info;
use serde_json::{json, Value};
use std::net::SocketAddr;
use std::time::{Duration, Instant};

/// What the camera does with one request.
#[derive(Debug, Clone, PartialEq)]
pub enum Answer {
    Reply(u16, Value),
    /// No answer: the connection is held open (a lost keep-alive, a camera out of range).
    Hold,
}

fn reply(code: u16, body: Value) -> Answer {
    Answer::Reply(code, body)
}

/// The camera's clock now: the host's, moved by `--clock-offset`.
fn camera_clock(cam: &Cam) -> crate::clock::Civil {
    crate::clock::civil(crate::clock::unix_now() as i64 + cam.opts.clock_offset_s)
}

/// Legacy status 40, the camera's date and time: year-2000, month, day, hour,
/// minute, second, each `%` and two hex digits (as HERO4 to HERO7 send it).
fn legacy_date(cam: &Cam) -> String {
    let c = camera_clock(cam);
    [c.year - 2000, c.month, c.day, c.hour, c.minute, c.second]
        .iter()
        .map(|v| format!("%{v:02X}"))
        .collect()
}

fn param<'a>(req: &'a Request, name: &str) -> Option<&'a str> {
    query_value(req.query.as_deref(), name)
}

/// The camera's answer to `req` from `peer`; starts and stops streams as a side effect.
pub fn answer(cam: &Cam, req: &Request, peer: SocketAddr) -> Answer {
    if req.path.starts_with("/_test/") {
        return test_hook(cam, req);
    }
    if cam.state.lock().unwrap().silent() {
        return Answer::Hold;
    }
    if req.method != "GET" {
        return reply(405, json!({}));
    }
    match cam.opts.api() {
        Api::Legacy => legacy(cam, req, peer),
        Api::OpenGoPro => open_gopro(cam, req, peer),
    }
}

/// `/gp/gpControl`'s `info`.
fn gpcontrol(cam: &Cam) -> Value {
    let m = cam.opts.model;
    json!({
        "version": 2,
        "info": {
            "model_number": m.number,
            "model_name": m.name,
            "firmware_version": m.firmware,
            "serial_number": "C3000000000000",
            "board_type": "0x05",
            "ap_mac": "0641690000aa",
            "ap_ssid": "GP-EMULATED",
            "ap_has_default_credentials": "0",
            "capabilities": "16"
        }
    })
}

fn legacy(cam: &Cam, req: &Request, peer: SocketAddr) -> Answer {
    match req.path.as_str() {
        "/gp/gpControl" => reply(200, gpcontrol(cam)),
        "/gp/gpControl/status" => {
            let s = cam.state.lock().unwrap();
            reply(
                200,
                json!({"status": {"1": 1, "8": u8::from(s.encoding), "31": 1,
                                   "32": u8::from(s.stream.is_some()),
                                   "40": legacy_date(cam)},
                       "settings": {}}),
            )
        }
        "/gp/gpControl/execute" => match (param(req, "p1"), param(req, "c1")) {
            (Some("gpStream"), Some("restart" | "start")) => {
                if cam.take(|s| &mut s.refuse_starts) {
                    info!("fake-gopro: refusing a start (409), as told");
                    return reply(409, json!({}));
                }
                let to = SocketAddr::new(peer.ip(), cam.opts.udp_port);
                cam.start(to, StreamKind::LiveView);
                reply(200, json!({}))
            }
            (Some("gpStream"), Some("stop")) => {
                cam.stop(None, "stop command");
                reply(200, json!({}))
            }
            _ => reply(400, json!({})),
        },
        _ => reply(404, json!({})),
    }
}

/// `GET /gopro/camera/state`: the statuses a client waits on (8 busy, 10 encoding), a few others.
fn camera_state(cam: &Cam, s: &State) -> Value {
    let mut status = json!({
        "1": 1, "2": 3, "6": 0, "8": 0, "10": u8::from(s.encoding), "55": 1, "70": 87,
        "114": if s.wired_usb == Some(true) { 2 } else { 0 }
    });
    if cam.opts.model.preview_status {
        status["32"] = json!(u8::from(
            s.stream.is_some_and(|st| st.kind == StreamKind::Preview)
        ));
    }
    json!({"status": status, "settings": {"2": 9, "3": 8, "59": 4}})
}

fn webcam_body(s: &State, error: u8) -> Value {
    json!({"status": s.webcam, "error": error})
}

fn open_gopro(cam: &Cam, req: &Request, peer: SocketAddr) -> Answer {
    let m = cam.opts.model;
    let webcam_here = m.webcam(cam.opts.transport);
    let port = |supported: bool| -> Result<u16, ()> {
        match param(req, "port") {
            None => Ok(cam.opts.udp_port),
            Some(p) => {
                let p = p.parse::<u16>().ok().filter(|p| *p != 0).ok_or(())?;
                Ok(if supported { p } else { cam.opts.udp_port })
            }
        }
    };
    match req.path.as_str() {
        "/gopro/version" => reply(200, json!({"version": "2.0"})),
        "/gopro/camera/info" if m.camera_info => reply(
            200,
            json!({
                "model_number": m.number.to_string(),
                "model_name": m.name,
                "firmware_version": m.firmware,
                "serial_number": "C3500000000145",
                "ap_mac_addr": "0657470000aa",
                "ap_ssid": "GP-EMULATED"
            }),
        ),
        "/gp/gpControl" if m.gpcontrol_info => reply(200, gpcontrol(cam)),
        "/gopro/camera/get_date_time" if m.date_time => {
            // Local time with its zone: the emulator's zone is UTC.
            let c = camera_clock(cam);
            reply(
                200,
                json!({
                    "date": format!("{:04}_{:02}_{:02}", c.year, c.month, c.day),
                    "time": format!("{:02}_{:02}_{:02}", c.hour, c.minute, c.second),
                    "tzone": 0,
                    "dst": 0
                }),
            )
        }
        "/gopro/camera/state" => {
            let s = cam.state.lock().unwrap();
            reply(200, camera_state(cam, &s))
        }
        "/gopro/camera/keep_alive" => {
            if cam.take(|s| &mut s.drop_keepalives) {
                info!("fake-gopro: leaving a keep-alive unanswered, as told");
                return Answer::Hold;
            }
            cam.keepalive();
            reply(200, json!({}))
        }
        "/gopro/camera/analytics/set_client_info" => reply(200, json!({})),
        "/gopro/camera/control/wired_usb" if m.wired_usb => match param(req, "p") {
            Some(p @ ("0" | "1")) => {
                cam.state.lock().unwrap().wired_usb = Some(p == "1");
                cam.event("wired_usb", json!({"p": p}));
                reply(200, json!({}))
            }
            _ => reply(400, json!({})),
        },
        "/gopro/camera/shutter/start" if m.shutter => {
            cam.state.lock().unwrap().encoding = true;
            // A camera that records sends no preview (gopro/OpenGoPro#352).
            cam.stop(Some(StreamKind::Preview), "recording");
            cam.event("shutter", json!({"on": true}));
            reply(200, json!({}))
        }
        "/gopro/camera/shutter/stop" if m.shutter => {
            cam.state.lock().unwrap().encoding = false;
            cam.event("shutter", json!({"on": false}));
            reply(200, json!({}))
        }
        "/gopro/camera/stream/start" => {
            let Ok(to_port) = port(m.preview_port) else {
                return reply(400, json!({}));
            };
            if cam.take(|s| &mut s.refuse_starts) {
                info!("fake-gopro: refusing a start (409), as told");
                return reply(409, json!({}));
            }
            {
                let s = cam.state.lock().unwrap();
                let busy = s.encoding || s.webcam >= 2 || s.stream.is_some();
                if busy {
                    return reply(409, json!({}));
                }
            }
            cam.start(SocketAddr::new(peer.ip(), to_port), StreamKind::Preview);
            reply(200, json!({}))
        }
        "/gopro/camera/stream/stop" => {
            cam.stop(Some(StreamKind::Preview), "preview stream stop");
            reply(200, json!({}))
        }
        "/gopro/webcam/status" => {
            let s = cam.state.lock().unwrap();
            reply(200, webcam_body(&s, 0))
        }
        "/gopro/webcam/start"
        | "/gopro/webcam/preview"
        | "/gopro/webcam/stop"
        | "/gopro/webcam/exit"
            if !webcam_here =>
        {
            reply(501, json!({}))
        }
        "/gopro/webcam/start" => {
            let res_ok = param(req, "res")
                .map_or(true, |r| r.parse().is_ok_and(|r| m.webcam_res.contains(&r)));
            let fov_ok = param(req, "fov").map_or(true, |f| matches!(f, "0" | "2" | "3" | "4"));
            let proto_ok = !m.webcam_protocol || param(req, "protocol").map_or(true, |p| p == "TS");
            let to_port = port(m.webcam_port);
            if cam.take(|s| &mut s.refuse_starts) {
                info!("fake-gopro: refusing a start (409), as told");
                let s = cam.state.lock().unwrap();
                return reply(409, webcam_body(&s, 7));
            }
            let mut s = cam.state.lock().unwrap();
            let (Ok(to_port), true, true, true) = (to_port, res_ok, fov_ok, proto_ok) else {
                return reply(400, webcam_body(&s, 6));
            };
            if s.encoding {
                return reply(409, webcam_body(&s, 4));
            }
            if s.webcam == 2 || s.stream.is_some_and(|st| st.kind == StreamKind::Preview) {
                return reply(409, webcam_body(&s, 7));
            }
            s.webcam = 2;
            let body = webcam_body(&s, 0);
            drop(s);
            cam.start(SocketAddr::new(peer.ip(), to_port), StreamKind::Webcam);
            reply(200, body)
        }
        "/gopro/webcam/preview" => {
            let mut s = cam.state.lock().unwrap();
            if s.webcam < 2 {
                s.webcam = 3;
                drop(s);
                let to = SocketAddr::new(peer.ip(), cam.opts.udp_port);
                cam.start(to, StreamKind::Webcam);
                s = cam.state.lock().unwrap();
            }
            reply(200, webcam_body(&s, 0))
        }
        "/gopro/webcam/stop" => {
            let streaming = {
                let mut s = cam.state.lock().unwrap();
                let streaming = s.webcam >= 2;
                if streaming {
                    s.webcam = 1;
                }
                streaming
            };
            if streaming {
                cam.stop(Some(StreamKind::Webcam), "webcam stop");
            }
            let s = cam.state.lock().unwrap();
            reply(200, webcam_body(&s, 0))
        }
        "/gopro/webcam/exit" => {
            cam.state.lock().unwrap().webcam = 0;
            cam.stop(Some(StreamKind::Webcam), "webcam exit");
            let s = cam.state.lock().unwrap();
            reply(200, webcam_body(&s, 0))
        }
        _ => reply(404, json!({})),
    }
}

fn seconds(req: &Request, default: f64) -> Duration {
    let s: f64 = param(req, "s")
        .and_then(|s| s.parse().ok())
        .unwrap_or(default);
    Duration::from_secs_f64(s.clamp(0.0, 3600.0))
}

fn count(req: &Request) -> u32 {
    param(req, "n").and_then(|n| n.parse().ok()).unwrap_or(1)
}

/// The test hooks (not a camera's API).
fn test_hook(cam: &Cam, req: &Request) -> Answer {
    let mut s = cam.state.lock().unwrap();
    let (name, detail) = match (req.method.as_str(), req.path.as_str()) {
        ("GET", "/_test/state") => {
            return reply(
                200,
                json!({
                    "model": cam.opts.model.id,
                    "transport": match cam.opts.transport { Transport::Wifi => "wifi", Transport::Usb => "usb" },
                    "streaming_to": s.stream.map(|st| st.to.to_string()),
                    "stream": s.stream.map(|st| st.kind.name()),
                    "webcam": s.webcam,
                    "encoding": s.encoding,
                    "wired_usb": s.wired_usb,
                    "paused": s.paused(),
                    "silent": s.silent(),
                    "refuse_starts": s.refuse_starts,
                    "drop_keepalives": s.drop_keepalives,
                    "keepalive_age_s": s.last_keepalive.elapsed().as_secs_f64(),
                    "generation": s.generation,
                }),
            )
        }
        ("POST", "/_test/pause") => {
            let d = seconds(req, 10.0);
            s.paused_until = Some(Instant::now() + d);
            ("pause", json!({"s": d.as_secs_f64()}))
        }
        ("POST", "/_test/silent") => {
            let d = seconds(req, 10.0);
            s.silent_until = Some(Instant::now() + d);
            ("silent", json!({"s": d.as_secs_f64()}))
        }
        ("POST", "/_test/refuse") => {
            s.refuse_starts = count(req);
            ("refuse", json!({"n": s.refuse_starts}))
        }
        ("POST", "/_test/drop_keepalives") => {
            s.drop_keepalives = count(req);
            ("drop_keepalives", json!({"n": s.drop_keepalives}))
        }
        ("POST", "/_test/restart") => {
            s.generation += 1;
            ("restart", json!({"generation": s.generation}))
        }
        _ => return reply(404, json!({})),
    };
    drop(s);
    info!("fake-gopro: test hook {name} {detail}");
    cam.event(name, detail.clone());
    reply(200, detail)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::camera::emulator::args::{parse_args, Parsed};
    use crate::camera::emulator::state::Recorder;

    fn cam(args: &str) -> Cam {
        let v: Vec<String> = args.split_whitespace().map(String::from).collect();
        let Ok(Parsed::Run(o)) = parse_args(&v) else {
            panic!()
        };
        let r = Recorder::open(&o).unwrap();
        Cam::new(o, r)
    }

    fn get(cam: &Cam, target: &str) -> (u16, Value) {
        let (path, query) = match target.split_once('?') {
            Some((p, q)) => (p.to_string(), Some(q.to_string())),
            None => (target.to_string(), None),
        };
        let req = Request {
            method: if path.starts_with("/_test/") && path != "/_test/state" {
                "POST".into()
            } else {
                "GET".into()
            },
            path,
            query,
            ..Request::default()
        };
        match answer(cam, &req, "10.5.5.100:40000".parse().unwrap()) {
            Answer::Reply(code, body) => (code, body),
            Answer::Hold => (0, Value::Null),
        }
    }

    fn streaming(cam: &Cam) -> Option<String> {
        cam.state
            .lock()
            .unwrap()
            .stream
            .map(|s| format!("{} {}", s.kind.name(), s.to))
    }

    #[test]
    fn open_gopro_identifies_itself_per_model() {
        let c = cam("--model hero12 --http 10.5.5.9:8080");
        assert_eq!(get(&c, "/gopro/version"), (200, json!({"version": "2.0"})));
        let (code, info) = get(&c, "/gopro/camera/info");
        assert_eq!((code, info["model_number"].clone()), (200, json!("62")));
        assert_eq!(get(&c, "/gp/gpControl").0, 404);
        let (code, state) = get(&c, "/gopro/camera/state");
        assert_eq!(
            (
                code,
                state["status"]["8"].clone(),
                state["status"]["10"].clone()
            ),
            (200, json!(0), json!(0))
        );
        let c = cam("--model hero9 --http 10.5.5.9:8080");
        assert_eq!(get(&c, "/gopro/camera/info").0, 404);
        assert_eq!(
            get(&c, "/gp/gpControl").1["info"]["model_name"],
            "HERO9 Black"
        );
        assert_eq!(get(&c, "/gopro/camera/control/wired_usb?p=1").0, 404);
        let c = cam("--model hero4 --http 10.5.5.9:80");
        assert_eq!(get(&c, "/gopro/version").0, 404);
        assert_eq!(
            get(&c, "/gp/gpControl").1["info"]["firmware_version"],
            "HD4.02.05.00.00"
        );
    }

    #[test]
    fn preview_start_is_refused_while_busy_and_after_stop_accepted() {
        let c = cam("--model hero12 --http 10.5.5.9:8080 --refuse-starts 1");
        assert_eq!(get(&c, "/gopro/camera/stream/start"), (409, json!({})));
        assert_eq!(get(&c, "/gopro/camera/stream/start?port=9000").0, 200);
        assert_eq!(streaming(&c).unwrap(), "preview 10.5.5.100:9000");
        assert_eq!(
            get(&c, "/gopro/camera/stream/start").0,
            409,
            "still streaming"
        );
        assert_eq!(get(&c, "/gopro/camera/stream/stop").0, 200);
        assert_eq!(get(&c, "/gopro/camera/stream/start").0, 200);
        assert_eq!(streaming(&c).unwrap(), "preview 10.5.5.100:8554");
        // Recording stops the preview, and a start is refused until the shutter stops.
        assert_eq!(get(&c, "/gopro/camera/shutter/start").0, 200);
        assert_eq!(streaming(&c), None);
        assert_eq!(get(&c, "/gopro/camera/state").1["status"]["10"], 1);
        assert_eq!(get(&c, "/gopro/camera/stream/start").0, 409);
        get(&c, "/gopro/camera/shutter/stop");
        assert_eq!(get(&c, "/gopro/camera/stream/start").0, 200);
        // HERO11 takes no port: it sends to 8554.
        let c = cam("--model hero11 --http 10.5.5.9:8080");
        assert_eq!(get(&c, "/gopro/camera/stream/start?port=9000").0, 200);
        assert_eq!(streaming(&c).unwrap(), "preview 10.5.5.100:8554");
    }

    #[test]
    fn the_webcam_state_machine_answers_with_status_and_error() {
        let c = cam("--model hero12 --http 10.5.5.9:8080");
        assert_eq!(
            get(&c, "/gopro/webcam/status"),
            (200, json!({"status": 0, "error": 0}))
        );
        assert_eq!(
            get(&c, "/gopro/webcam/start?res=4"),
            (400, json!({"status": 0, "error": 6}))
        );
        assert_eq!(
            get(&c, "/gopro/webcam/start?res=12&fov=0&port=9000"),
            (200, json!({"status": 2, "error": 0}))
        );
        assert_eq!(streaming(&c).unwrap(), "webcam 10.5.5.100:9000");
        assert_eq!(
            get(&c, "/gopro/webcam/start?res=12"),
            (409, json!({"status": 2, "error": 7}))
        );
        assert_eq!(
            get(&c, "/gopro/camera/stream/start").0,
            409,
            "the webcam holds the stream"
        );
        assert_eq!(
            get(&c, "/gopro/webcam/stop"),
            (200, json!({"status": 1, "error": 0}))
        );
        assert_eq!(streaming(&c), None);
        assert_eq!(
            get(&c, "/gopro/webcam/preview"),
            (200, json!({"status": 3, "error": 0}))
        );
        assert_eq!(
            get(&c, "/gopro/webcam/exit"),
            (200, json!({"status": 0, "error": 0}))
        );
        assert_eq!(streaming(&c), None);
        // HERO9 to HERO11: no webcam over Wi-Fi (501), but over USB.
        let c = cam("--model hero11 --http 10.5.5.9:8080");
        assert_eq!(get(&c, "/gopro/webcam/start").0, 501);
        assert_eq!(get(&c, "/gopro/webcam/status").0, 200);
        let c = cam("--model hero11 --http 172.21.145.51:8080");
        assert_eq!(get(&c, "/gopro/webcam/start?res=7&fov=4").0, 200);
    }

    #[test]
    fn keepalives_and_silence_can_go_unanswered() {
        let c = cam("--model hero12 --http 10.5.5.9:8080 --drop-keepalives 1");
        assert_eq!(get(&c, "/gopro/camera/keep_alive").0, 0, "held");
        assert_eq!(get(&c, "/gopro/camera/keep_alive").0, 200);
        assert_eq!(get(&c, "/_test/drop_keepalives?n=2").0, 200);
        assert_eq!(get(&c, "/gopro/camera/keep_alive").0, 0);
        assert_eq!(get(&c, "/_test/silent?s=5").0, 200);
        assert_eq!(get(&c, "/gopro/version").0, 0, "a camera out of range");
        assert_eq!(get(&c, "/_test/state").1["silent"], true);
    }

    #[test]
    fn legacy_live_view_restarts_and_stops() {
        let c = cam("--model hero7 --http 10.5.5.9:80 --udp-port 9100");
        assert_eq!(
            get(
                &c,
                "/gp/gpControl/execute?p1=gpStream&a1=proto_v2&c1=restart"
            )
            .0,
            200
        );
        assert_eq!(streaming(&c).unwrap(), "live-view 10.5.5.100:9100");
        assert_eq!(
            get(&c, "/gp/gpControl/execute?p1=gpStream&c1=restart").0,
            200,
            "again"
        );
        assert_eq!(get(&c, "/gp/gpControl/status").1["status"]["32"], 1);
        assert_eq!(get(&c, "/gp/gpControl/execute?p1=gpStream&c1=stop").0, 200);
        assert_eq!(streaming(&c), None);
        assert_eq!(get(&c, "/gopro/camera/stream/start").0, 404);
    }
}
