//! Talking to one camera: asking what it is, and the start and stop sequences of `protocol` sent
//! in order, each answer read (status and `error` field) and accounted in the status.

use crate::camera::models::{self, Api, Model, Transport};
use crate::camera::protocol::{self as p, Activity, Description, Mode, Outcome, Plan};
use crate::clock::unix_now;
use crate::http::client::{http_get, Reply};
use crate::status::CameraStatus;
use std::net::{IpAddr, SocketAddr};
use std::sync::{Arc, Mutex};
use std::time::Duration;

pub type SharedCamera = Arc<Mutex<CameraStatus>>;

/// How long a stopping webcam is given to reach IDLE before it is told to exit.
const WEBCAM_STOP_WAIT: Duration = Duration::from_secs(3);
const WEBCAM_POLL: Duration = Duration::from_millis(500);

/// The camera's HTTP server, with the accounting of every request.
#[derive(Clone)]
pub struct Link {
    pub addr: SocketAddr,
    timeout: Duration,
    status: SharedCamera,
}

impl Link {
    pub fn new(addr: SocketAddr, timeout: Duration, status: SharedCamera) -> Link {
        Link {
            addr,
            timeout,
            status,
        }
    }

    /// One request; a transport failure is an `Err`. Counted in the status.
    pub async fn get(&self, target: &str) -> Result<Reply, String> {
        let r = http_get(self.addr, target, self.timeout)
            .await
            .map_err(|e| format!("GET {target}: {e}"));
        let mut s = self.status.lock().unwrap();
        s.requests += 1;
        match &r {
            Ok(r) if (200..300).contains(&r.status) => s.last_ok_unix = Some(unix_now()),
            Ok(_) => {}
            Err(e) => {
                s.failures += 1;
                s.last_error = Some(e.clone());
            }
        }
        r
    }

    /// A command: the request, and what its answer means. A refusal is kept in the status
    /// (`last_answer`, `last_error`).
    pub async fn command(&self, target: &str) -> Result<(Outcome, Reply), String> {
        let reply = self.get(target).await?;
        let outcome = p::judge(target, reply.status, &reply.body);
        let path = target.split('?').next().unwrap_or(target);
        let answer = match p::body_error(target, &reply.body) {
            Some(e) => format!("GET {path}: HTTP {}, {e}", reply.status),
            None => format!("GET {path}: HTTP {}", reply.status),
        };
        let mut s = self.status.lock().unwrap();
        s.last_answer = Some(answer);
        if let Outcome::Busy(why) | Outcome::Unsupported(why) | Outcome::Refused(why) = &outcome {
            s.failures += 1;
            s.last_error = Some(why.clone());
        }
        Ok((outcome, reply))
    }
}

/// What a camera said about itself.
#[derive(Debug, Clone, PartialEq)]
pub struct Identity {
    pub api: Api,
    pub ip: IpAddr,
    pub port: u16,
    pub transport: Transport,
    pub model: Option<&'static Model>,
    pub description: Description,
    pub api_version: Option<String>,
    /// An Open GoPro camera without `/gopro/camera/info`: a HERO9 to HERO11.
    pub info_absent: bool,
    pub activity: Option<Activity>,
}

impl Identity {
    /// A camera of a configured kind that has not said what it is (yet).
    pub fn assumed(api: Api, ip: IpAddr, port: u16, transport: Transport) -> Identity {
        Identity {
            api,
            ip,
            port,
            transport,
            model: None,
            description: Description::default(),
            api_version: None,
            info_absent: false,
            activity: None,
        }
    }

    /// The model's name for `/status`: as the camera says, or as inferred.
    pub fn model_name(&self) -> Option<String> {
        self.description
            .model_name
            .clone()
            .or_else(|| self.model.map(|m| m.name.to_string()))
            .or_else(|| {
                (self.api == Api::OpenGoPro && self.info_absent)
                    .then(|| "HERO9 to HERO11 (no /gopro/camera/info)".to_string())
            })
    }

    /// Whether `other` is the same camera (API, address and model).
    pub fn same_camera(&self, other: &Identity) -> bool {
        self.api == other.api
            && self.ip == other.ip
            && self.port == other.port
            && self.description == other.description
    }
}

/// What asking an address found.
#[derive(Debug, Clone, PartialEq)]
pub enum Probe {
    Found(Identity),
    /// Something answered (or refused the connection) but speaks neither API.
    NoApi(String),
    /// Nothing answered.
    Unreachable(String),
}

async fn ask(ip: IpAddr, port: u16, target: &str, timeout: Duration) -> Result<Reply, String> {
    http_get(SocketAddr::new(ip, port), target, timeout).await
}

/// An error that says the host is there but the port is closed.
fn refused(e: &str) -> bool {
    e.contains("refused")
}

/// Asks `ip` what it is: Open GoPro (`/gopro/version`, `/gopro/camera/info` where the model has
/// it, else the legacy `/gp/gpControl` HERO9 to HERO11 still answer, `/gopro/camera/state`), else
/// legacy (`/gp/gpControl`). `only`: the configured API (no probing for the other). `port`: the
/// configured `http_port`, else each API's own.
pub async fn identify(
    ip: IpAddr,
    port: Option<u16>,
    only: Option<Api>,
    transport: Transport,
    timeout: Duration,
) -> Probe {
    let mut reachable = false;
    let mut last_error = String::new();
    if only.map_or(true, |a| a == Api::OpenGoPro) {
        let at = port.unwrap_or(Api::OpenGoPro.default_port());
        match ask(ip, at, p::OGP_VERSION, timeout).await {
            Ok(r) if r.status == 200 && p::api_version(&r.body).is_some() => {
                let mut id = Identity::assumed(Api::OpenGoPro, ip, at, transport);
                id.api_version = p::api_version(&r.body);
                describe_open_gopro(&mut id, port.is_none(), timeout).await;
                return Probe::Found(id);
            }
            Ok(r) => {
                reachable = true;
                last_error = format!("GET {}: HTTP {}", p::OGP_VERSION, r.status);
            }
            Err(e) => {
                reachable |= refused(&e);
                last_error = e;
                if !reachable && only.is_none() {
                    // Nobody there: the legacy port would only cost another timeout.
                    return Probe::Unreachable(last_error);
                }
            }
        }
    }
    if only.map_or(true, |a| a == Api::Legacy) {
        let at = port.unwrap_or(Api::Legacy.default_port());
        match ask(ip, at, p::LEGACY_INFO, timeout).await {
            Ok(r) if r.status == 200 => {
                if let Some(d) = p::gpcontrol_info(&r.body) {
                    let mut id = Identity::assumed(Api::Legacy, ip, at, transport);
                    id.model = models::identify(
                        d.model_number,
                        d.model_name.as_deref(),
                        d.firmware.as_deref(),
                    );
                    id.description = d;
                    return Probe::Found(id);
                }
                reachable = true;
                last_error = format!("GET {}: no camera info in the answer", p::LEGACY_INFO);
            }
            Ok(r) => {
                reachable = true;
                last_error = format!("GET {}: HTTP {}", p::LEGACY_INFO, r.status);
            }
            Err(e) => {
                reachable |= refused(&e);
                last_error = e;
            }
        }
    }
    if reachable {
        Probe::NoApi(last_error)
    } else {
        Probe::Unreachable(last_error)
    }
}

/// Model, firmware and activity of an Open GoPro camera.
async fn describe_open_gopro(id: &mut Identity, own_ports: bool, timeout: Duration) {
    match ask(id.ip, id.port, p::OGP_INFO, timeout).await {
        Ok(r) if r.status == 200 => {
            if let Some(d) = p::camera_info(&r.body) {
                id.description = d;
            }
        }
        Ok(_) => id.info_absent = true,
        Err(_) => {}
    }
    if id.info_absent {
        // HERO9 to HERO11 have no /gopro/camera/info but still serve the legacy gpControl
        // info: on the API's port, and over Wi-Fi on port 80.
        let mut ports = vec![id.port];
        if own_ports && id.port != Api::Legacy.default_port() {
            ports.push(Api::Legacy.default_port());
        }
        for port in ports {
            if let Ok(r) = ask(id.ip, port, p::LEGACY_INFO, timeout).await {
                if let Some(d) = p::gpcontrol_info(&r.body).filter(|_| r.status == 200) {
                    id.description = d;
                    break;
                }
            }
        }
    }
    let d = &id.description;
    id.model = models::identify(
        d.model_number,
        d.model_name.as_deref(),
        d.firmware.as_deref(),
    );
    if let Ok(r) = ask(id.ip, id.port, p::OGP_STATE, timeout).await {
        id.activity = p::camera_activity(&r.body).filter(|_| r.status == 200);
    }
}

/// How a start sequence ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Started {
    /// The camera accepted the start command.
    Accepted,
    /// It answered 409: busy, with the reason (its state, where it says).
    Busy(String),
    /// It refused, with the reason.
    Refused(String),
    /// It has no webcam mode here: the plan now asks for the preview stream.
    FellBack(String),
    /// No answer.
    Unreachable(String),
}

/// The start sequence of `plan`: wired control (USB), then preview stop and start, or webcam
/// status, stop when not idle (exit if it stays busy), start; or the legacy restart.
pub async fn start(
    link: &Link,
    plan: &mut Plan,
    model: Option<&Model>,
    source_port: u16,
) -> Started {
    if let Some(w) = plan.wired_usb_request() {
        // The answer matters less than the start's; a camera without it says 404.
        if let Err(e) = link.command(&w).await {
            return Started::Unreachable(e);
        }
    }
    let result = match plan.mode {
        Mode::LiveView => link.command(&plan.start_request()).await,
        Mode::Preview => {
            // The SDK stops the preview before starting it: a camera still holding an old
            // stream answers the start with 409 (gopro/OpenGoPro#577).
            if let Err(e) = link.command(p::OGP_PREVIEW_STOP).await {
                return Started::Unreachable(e);
            }
            link.command(&plan.start_request()).await
        }
        Mode::Webcam => {
            match webcam_ready(link).await {
                Err(e) => return Started::Unreachable(e),
                Ok(Some(why)) => {
                    plan.fall_back_to_preview(&why, model, source_port);
                    return Started::FellBack(why);
                }
                Ok(None) => {}
            }
            link.command(&plan.start_request()).await
        }
    };
    match result {
        Err(e) => Started::Unreachable(e),
        Ok((Outcome::Ok, _)) => Started::Accepted,
        Ok((Outcome::Busy(why), _)) => {
            let state = match plan.api {
                Api::OpenGoPro => link
                    .get(p::OGP_STATE)
                    .await
                    .ok()
                    .and_then(|r| p::camera_activity(&r.body))
                    .and_then(Activity::describe),
                Api::Legacy => None,
            };
            Started::Busy(match state {
                Some(s) => format!("{why}: {s}"),
                None => why,
            })
        }
        Ok((Outcome::Unsupported(why), _)) if plan.mode == Mode::Webcam => {
            plan.fall_back_to_preview(&why, model, source_port);
            Started::FellBack(why)
        }
        Ok((Outcome::Unsupported(why) | Outcome::Refused(why), _)) => Started::Refused(why),
    }
}

/// Reads the webcam's status and brings it to OFF or IDLE: stop when it streams, exit when it
/// will not stop. `Ok(Some(why))`: the camera has no webcam mode.
async fn webcam_ready(link: &Link) -> Result<Option<String>, String> {
    let (outcome, reply) = link.command(p::OGP_WEBCAM_STATUS).await?;
    if let Outcome::Unsupported(why) = outcome {
        return Ok(Some(why));
    }
    let Some((status, _)) = p::webcam_state(&reply.body) else {
        return Ok(None);
    };
    if !p::webcam_needs_stop(status) {
        return Ok(None);
    }
    if let (Outcome::Unsupported(why), _) = link.command(p::OGP_WEBCAM_STOP).await? {
        return Ok(Some(why));
    }
    let mut waited = Duration::ZERO;
    while waited < WEBCAM_STOP_WAIT {
        tokio::time::sleep(WEBCAM_POLL).await;
        waited += WEBCAM_POLL;
        let (_, r) = link.command(p::OGP_WEBCAM_STATUS).await?;
        if p::webcam_state(&r.body).is_some_and(|(s, _)| !p::webcam_needs_stop(s)) {
            return Ok(None);
        }
    }
    link.command(p::OGP_WEBCAM_EXIT).await?;
    Ok(None)
}

/// The stop requests of `plan`, in order; stops at the first the camera does not answer.
pub async fn stop(link: &Link, plan: &Plan) -> Result<(), String> {
    for target in plan.stop_requests() {
        link.command(target).await?;
    }
    Ok(())
}
