//! The GoPro models the daemon knows and the emulator plays, pure: which API each speaks, what it
//! offers over which link, and which codec its preview stream is in. One table for both sides, so
//! that the daemon's choices and the emulator's answers come from the same reading of GoPro's
//! documents:
//! - Open GoPro HTTP spec 2.0 (gopro/OpenGoPro, `x-supported-cameras` of each operation, the
//!   "Not supported on WiFi" notes of the webcam operations, the `port`/`protocol` parameter notes,
//!   the Preview Stream tag: "AVC/h264 for Hero 12 and earlier, HEVC for Hero 13 and later");
//! - the BLE spec's table of model IDs and model codes (HERO9 Black 55 HD9.01 … HERO13 Black 65
//!   H24.01);
//! - for the legacy models (no published spec) the community's gpControl documents
//!   (KonradIT/goprowifihack: HERO4 Black model 13 HD4.02, HERO7 Black model 30 HD7.01), which also
//!   say that HERO9 to HERO11 still answer the legacy `/gp/gpControl`.

use std::net::{IpAddr, Ipv4Addr};

/// Which HTTP API a camera speaks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Api {
    /// gpControl on port 80, the UDP `_GPHD_` keep-alive (HERO4 to HERO8).
    Legacy,
    /// Open GoPro HTTP API 2.0 on port 8080 (HERO9 and later).
    OpenGoPro,
}

impl Api {
    pub fn name(self) -> &'static str {
        match self {
            Api::Legacy => "gopro-legacy",
            Api::OpenGoPro => "open-gopro",
        }
    }

    /// The port the API is served on.
    pub fn default_port(self) -> u16 {
        match self {
            Api::Legacy => 80,
            Api::OpenGoPro => 8080,
        }
    }
}

/// How the daemon reaches the camera.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Transport {
    /// The camera's own access point (10.5.5.9) or a network it joined.
    Wifi,
    /// USB networking (NCM): the camera at 172.2X.1YZ.51.
    Usb,
}

impl Transport {
    pub fn name(self) -> &'static str {
        match self {
            Transport::Wifi => "wifi",
            Transport::Usb => "usb",
        }
    }

    /// USB for an address of the Open GoPro wired form 172.2X.1YZ.51 (X, Y, Z: the last three
    /// digits of the serial number), else Wi-Fi.
    pub fn of_address(ip: IpAddr) -> Transport {
        if is_wired_address(ip) {
            Transport::Usb
        } else {
            Transport::Wifi
        }
    }
}

/// 172.2X.1YZ.51 with X, Y, Z digits: where an Open GoPro camera puts itself on USB.
pub fn is_wired_address(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => {
            let [a, b, c, d] = v4.octets();
            a == 172 && (20..=29).contains(&b) && (100..=199).contains(&c) && d == 51
        }
        IpAddr::V6(_) => false,
    }
}

/// The wired address of a camera whose serial number ends in `digits` (its last three).
pub fn wired_address(digits: &str) -> Option<Ipv4Addr> {
    let d: Vec<u8> = digits
        .chars()
        .rev()
        .take(3)
        .map(|c| c.to_digit(10).map(|d| d as u8))
        .collect::<Option<Vec<u8>>>()?;
    let [z, y, x] = d[..] else { return None };
    Some(Ipv4Addr::new(172, 20 + x, 100 + 10 * y + z, 51))
}

/// The preview stream's video codec.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Codec {
    H264,
    Hevc,
}

impl Codec {
    pub fn name(self) -> &'static str {
        match self {
            Codec::H264 => "h264",
            Codec::Hevc => "hevc",
        }
    }
}

/// One camera model and what it offers.
#[derive(Debug, PartialEq, Eq)]
pub struct Model {
    /// The emulator's name for it (`--model hero12`).
    pub id: &'static str,
    /// As the camera names itself (`model_name`).
    pub name: &'static str,
    /// GoPro's model ID (`model_number`).
    pub number: u32,
    /// The start of its firmware versions (the model code).
    pub firmware_code: &'static str,
    /// A firmware version the emulator reports.
    pub firmware: &'static str,
    pub api: Api,
    /// The preview stream's codec (the webcam stream is H.264 on every model).
    pub preview_codec: Codec,
    /// `GET /gopro/camera/info` (HERO12 and later).
    pub camera_info: bool,
    /// `GET /gopro/camera/control/wired_usb` (HERO10 and later).
    pub wired_usb: bool,
    /// `GET /gopro/camera/shutter/{mode}` (HERO10 and later).
    pub shutter: bool,
    /// Webcam mode over Wi-Fi (not HERO9 to HERO11) and over USB.
    pub webcam_wifi: bool,
    pub webcam_usb: bool,
    /// The preview stream's `port` parameter (not HERO9 to HERO11).
    pub preview_port: bool,
    /// The webcam's `port` (not HERO9, HERO10) and `protocol` (not HERO9 to HERO11) parameters.
    pub webcam_port: bool,
    pub webcam_protocol: bool,
    /// Webcam `res` ids it accepts (4 = 480p, 7 = 720p, 12 = 1080p).
    pub webcam_res: &'static [u32],
    /// It answers the legacy `GET /gp/gpControl` with its `info` (model, firmware).
    pub gpcontrol_info: bool,
    /// Status 32 "Preview Stream" is in its state (HERO12 and earlier).
    pub preview_status: bool,
    /// `GET /gopro/camera/get_date_time` (HERO11 and later; the legacy models
    /// give their clock as status 40 instead).
    pub date_time: bool,
}

impl Model {
    /// Whether webcam mode is offered over `t`.
    pub fn webcam(&self, t: Transport) -> bool {
        match t {
            Transport::Wifi => self.webcam_wifi,
            Transport::Usb => self.webcam_usb,
        }
    }
}

const LEGACY: Model = Model {
    id: "",
    name: "",
    number: 0,
    firmware_code: "",
    firmware: "",
    api: Api::Legacy,
    preview_codec: Codec::H264,
    camera_info: false,
    wired_usb: false,
    shutter: false,
    webcam_wifi: false,
    webcam_usb: false,
    preview_port: false,
    webcam_port: false,
    webcam_protocol: false,
    webcam_res: &[],
    gpcontrol_info: true,
    preview_status: false,
    date_time: false,
};

const OPEN_GOPRO: Model = Model {
    api: Api::OpenGoPro,
    camera_info: true,
    wired_usb: true,
    shutter: true,
    webcam_wifi: true,
    webcam_usb: true,
    preview_port: true,
    webcam_port: true,
    webcam_protocol: true,
    webcam_res: &[7, 12],
    gpcontrol_info: false,
    preview_status: true,
    date_time: true,
    ..LEGACY
};

/// Every model, oldest first.
pub const MODELS: &[Model] = &[
    Model {
        id: "hero4",
        name: "HERO4 Black",
        number: 13,
        firmware_code: "HD4.02",
        firmware: "HD4.02.05.00.00",
        ..LEGACY
    },
    Model {
        id: "hero5",
        name: "HERO5 Black",
        number: 19,
        firmware_code: "HD5.02",
        firmware: "HD5.02.02.60.00",
        ..LEGACY
    },
    Model {
        id: "hero7",
        name: "HERO7 Black",
        number: 30,
        firmware_code: "HD7.01",
        firmware: "HD7.01.01.90.00",
        ..LEGACY
    },
    Model {
        id: "hero9",
        name: "HERO9 Black",
        number: 55,
        firmware_code: "HD9.01",
        firmware: "HD9.01.01.72.00",
        camera_info: false,
        wired_usb: false,
        shutter: false,
        webcam_wifi: false,
        preview_port: false,
        webcam_port: false,
        webcam_protocol: false,
        webcam_res: &[4, 7, 12],
        gpcontrol_info: true,
        date_time: false,
        ..OPEN_GOPRO
    },
    Model {
        id: "hero10",
        name: "HERO10 Black",
        number: 57,
        firmware_code: "H21.01",
        firmware: "H21.01.01.62.00",
        camera_info: false,
        webcam_wifi: false,
        preview_port: false,
        webcam_port: false,
        webcam_protocol: false,
        webcam_res: &[4, 7, 12],
        gpcontrol_info: true,
        date_time: false,
        ..OPEN_GOPRO
    },
    Model {
        id: "hero11",
        name: "HERO11 Black",
        number: 58,
        firmware_code: "H22.01",
        firmware: "H22.01.02.32.00",
        camera_info: false,
        webcam_wifi: false,
        preview_port: false,
        webcam_protocol: false,
        gpcontrol_info: true,
        ..OPEN_GOPRO
    },
    Model {
        id: "hero12",
        name: "HERO12 Black",
        number: 62,
        firmware_code: "H23.01",
        firmware: "H23.01.02.32.00",
        ..OPEN_GOPRO
    },
    Model {
        id: "hero13",
        name: "HERO13 Black",
        number: 65,
        firmware_code: "H24.01",
        firmware: "H24.01.02.02.00",
        preview_codec: Codec::Hevc,
        preview_status: false,
        ..OPEN_GOPRO
    },
];

/// The model the emulator calls `id`.
pub fn by_id(id: &str) -> Option<&'static Model> {
    MODELS.iter().find(|m| m.id.eq_ignore_ascii_case(id))
}

/// The model a camera describes: by model number, else by name, else by firmware's model code.
pub fn identify(
    number: Option<u32>,
    name: Option<&str>,
    firmware: Option<&str>,
) -> Option<&'static Model> {
    let by_number = number.and_then(|n| MODELS.iter().find(|m| m.number == n));
    let by_name = || name.and_then(|n| MODELS.iter().find(|m| m.name.eq_ignore_ascii_case(n)));
    let by_firmware = || {
        firmware.and_then(|f| {
            MODELS
                .iter()
                .find(|m| f.len() >= m.firmware_code.len() && f.starts_with(m.firmware_code))
        })
    };
    by_number.or_else(by_name).or_else(by_firmware)
}

/// The emulator's model names, for its usage line.
pub fn ids() -> String {
    MODELS.iter().map(|m| m.id).collect::<Vec<_>>().join("|")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_spec_s_webcam_limits_are_in_the_table() {
        for id in ["hero9", "hero10", "hero11"] {
            let m = by_id(id).unwrap();
            assert!(
                !m.webcam(Transport::Wifi) && m.webcam(Transport::Usb),
                "{id}"
            );
            assert!(!m.preview_port && !m.camera_info, "{id}");
        }
        for id in ["hero12", "hero13"] {
            let m = by_id(id).unwrap();
            assert!(
                m.webcam(Transport::Wifi) && m.webcam(Transport::Usb),
                "{id}"
            );
            assert!(m.preview_port && m.camera_info && m.wired_usb, "{id}");
        }
        assert_eq!(by_id("hero13").unwrap().preview_codec, Codec::Hevc);
        assert!(MODELS
            .iter()
            .filter(|m| m.id != "hero13")
            .all(|m| m.preview_codec == Codec::H264));
        assert!(!by_id("hero9").unwrap().wired_usb);
        assert_eq!(by_id("HERO7").unwrap().api, Api::Legacy);
        assert_eq!(by_id("hero8"), None);
    }

    #[test]
    fn a_camera_is_identified_by_number_name_or_firmware() {
        assert_eq!(identify(Some(62), None, None).unwrap().id, "hero12");
        assert_eq!(
            identify(None, Some("HERO4 Black"), None).unwrap().id,
            "hero4"
        );
        assert_eq!(
            identify(None, None, Some("H22.01.02.01.00")).unwrap().id,
            "hero11"
        );
        assert_eq!(
            identify(Some(999), Some("HERO9 Black"), None).unwrap().id,
            "hero9"
        );
        assert_eq!(identify(Some(999), Some("MAX"), Some("H19.03")), None);
    }

    #[test]
    fn wired_addresses_follow_the_serial_number() {
        assert_eq!(
            wired_address("C3501324645145").unwrap().to_string(),
            "172.21.145.51"
        );
        assert_eq!(wired_address("909").unwrap().to_string(), "172.29.109.51");
        assert_eq!(wired_address("5a4"), None);
        assert_eq!(wired_address("12"), None);
        assert!(is_wired_address("172.21.145.51".parse().unwrap()));
        assert!(!is_wired_address("172.21.145.52".parse().unwrap()));
        assert!(!is_wired_address("10.5.5.9".parse().unwrap()));
        assert_eq!(
            Transport::of_address("172.29.199.51".parse().unwrap()),
            Transport::Usb
        );
        assert_eq!(
            Transport::of_address("10.5.5.9".parse().unwrap()),
            Transport::Wifi
        );
    }
}
