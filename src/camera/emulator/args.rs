//! `livestreamd fake-gopro` arguments and its `--help`.

use crate::camera::demo::DemoSource;
use crate::camera::models::{self, Api, Model, Transport};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

/// What `fake-gopro` was asked to be.
#[derive(Debug, Clone, PartialEq)]
pub struct Options {
    pub model: &'static Model,
    pub http: SocketAddr,
    pub record: Option<PathBuf>,
    /// Wi-Fi or USB: which operations the model offers (webcam over Wi-Fi on HERO9 to HERO11).
    pub transport: Transport,
    /// Where the video goes on the requesting host, unless the request names a port.
    pub udp_port: u16,
    /// The UDP port the camera hears keep-alives on and sends its video from.
    pub keepalive_port: u16,
    /// Silence of keep-alives after which the camera stops streaming; None: never (GoPro
    /// publishes no such figure, see docs/CAMERA.md).
    pub keepalive_timeout: Option<Duration>,
    /// Faults from the start: the first N start commands answered 409, the first N keep-alives
    /// dropped.
    pub refuse_starts: u32,
    pub drop_keepalives: u32,
    pub source: DemoSource,
    pub ffmpeg: PathBuf,
    /// The camera's clock against the host's, seconds (a camera set an hour
    /// ahead: 3600).
    pub clock_offset_s: i64,
}

/// What the command line asks for.
#[derive(Debug, Clone, PartialEq)]
pub enum Parsed {
    Run(Options),
    Help,
}

/// `fake-gopro --help`.
pub fn help() -> String {
    format!(
        "\
usage: livestreamd fake-gopro --model MODEL --http ADDR:PORT [options]

Emulates a GoPro for tests and demos: its HTTP API as GoPro publishes it (Open GoPro
HTTP 2.0 on port 8080 for HERO9 and later, legacy gpControl on port 80 before), and
its live view as MPEG-TS over UDP (a test pattern; HEVC for HERO13's preview) to the
host that asked, once asked. See docs/CAMERA.md.

  --model MODEL            {models}
  --http ADDR:PORT         where its HTTP API listens (a real camera: 10.5.5.9:80 legacy,
                           10.5.5.9:8080 Open GoPro on Wi-Fi, 172.2X.1YZ.51:8080 on USB)
  --record FILE            append every request, datagram and state change (JSON lines)
  --transport wifi|usb     the link it is reached over (default: usb for 172.2X.1YZ.51,
                           else wifi); HERO9 to HERO11 offer webcam mode only over usb
  --udp-port N             where the video goes on the asking host unless the request
                           names a port (default 8554)
  --keepalive-port N       its UDP port: keep-alives arrive and video leaves here (8554)
  --keepalive-timeout S    stop streaming after S s without a keep-alive (default: never;
                           GoPro publishes no figure)
  --refuse-starts N        answer the first N start commands with 409 Conflict
  --drop-keepalives N      leave the first N keep-alives unanswered
  --clock-offset S         the camera's clock S seconds ahead of this host's (negative:
                           behind; default 0): what get_date_time and status 40 say
  --size WxH, --fps N      the test pattern (default 848x480 at 30)
  --ffmpeg PATH            the ffmpeg to run (default: ffmpeg)
  -h, --help               this text

Test hooks on its HTTP port: POST /_test/refuse?n=N, /_test/drop_keepalives?n=N,
/_test/silent?s=S (no answers, no video), /_test/pause?s=S (no video),
/_test/restart (a new stream: new timestamps); GET /_test/state.",
        models = models::ids()
    )
}

fn parse_port(arg: &str, v: &str) -> Result<u16, String> {
    v.parse::<u16>()
        .ok()
        .filter(|p| *p != 0)
        .ok_or(format!("{arg} `{v}`: expected a port from 1 to 65535"))
}

fn parse_count(arg: &str, v: &str) -> Result<u32, String> {
    v.parse()
        .map_err(|_| format!("{arg} `{v}`: expected a count (0 or more)"))
}

/// Parses the arguments after `fake-gopro`.
pub fn parse_args(args: &[String]) -> Result<Parsed, String> {
    let mut model = None;
    let mut http = None;
    let mut record = None;
    let mut transport = None;
    let mut udp_port = 8554u16;
    let mut keepalive_port = 8554u16;
    let mut keepalive_timeout = None;
    let mut refuse_starts = 0;
    let mut drop_keepalives = 0;
    let mut source = DemoSource::default();
    let mut ffmpeg = PathBuf::from("ffmpeg");
    let mut clock_offset_s = 0i64;
    let mut it = args.iter();
    while let Some(arg) = it.next() {
        if matches!(arg.as_str(), "-h" | "--help") {
            return Ok(Parsed::Help);
        }
        let mut value = || it.next().ok_or(format!("{arg} needs a value"));
        match arg.as_str() {
            "--model" => {
                let v = value()?;
                model = Some(
                    models::by_id(v).ok_or(format!("--model `{v}`: one of {}", models::ids()))?,
                );
            }
            "--http" => {
                let v = value()?;
                http = Some(
                    v.parse::<SocketAddr>()
                        .map_err(|_| format!("--http `{v}`: expected IP:PORT"))?,
                );
            }
            "--record" => record = Some(PathBuf::from(value()?)),
            "--transport" => {
                transport = Some(match value()?.as_str() {
                    "wifi" => Transport::Wifi,
                    "usb" => Transport::Usb,
                    other => return Err(format!("--transport `{other}`: wifi or usb")),
                })
            }
            "--udp-port" => udp_port = parse_port(arg, value()?)?,
            "--keepalive-port" => keepalive_port = parse_port(arg, value()?)?,
            "--keepalive-timeout" => {
                let v = value()?;
                let s: f64 = v
                    .parse()
                    .ok()
                    .filter(|s: &f64| s.is_finite() && *s > 0.0)
                    .ok_or(format!("--keepalive-timeout `{v}`: seconds above 0"))?;
                keepalive_timeout = Some(Duration::from_secs_f64(s));
            }
            "--refuse-starts" => refuse_starts = parse_count(arg, value()?)?,
            "--drop-keepalives" => drop_keepalives = parse_count(arg, value()?)?,
            "--size" => {
                let v = value()?;
                let (w, h) = v
                    .split_once('x')
                    .ok_or(format!("--size `{v}`: expected WxH"))?;
                source.width = w.parse().map_err(|_| format!("--size `{v}`: bad width"))?;
                source.height = h.parse().map_err(|_| format!("--size `{v}`: bad height"))?;
            }
            "--fps" => {
                let v = value()?;
                source.fps = v
                    .parse()
                    .ok()
                    .filter(|f| *f > 0)
                    .ok_or(format!("--fps `{v}`: frames per second above 0"))?;
            }
            "--ffmpeg" => ffmpeg = PathBuf::from(value()?),
            "--clock-offset" => {
                let v = value()?;
                clock_offset_s = v
                    .parse()
                    .ok()
                    .filter(|s: &i64| s.abs() <= 100 * 365 * 86_400)
                    .ok_or(format!(
                        "--clock-offset `{v}`: whole seconds, within a century"
                    ))?;
            }
            _ => return Err(format!("unexpected argument `{arg}` for `fake-gopro`")),
        }
    }
    let http = http.ok_or("fake-gopro needs --http ADDR:PORT")?;
    let model = model.ok_or(format!(
        "fake-gopro needs --model {} (legacy models on port 80, the others on 8080)",
        models::ids()
    ))?;
    Ok(Parsed::Run(Options {
        model,
        transport: transport.unwrap_or(Transport::of_address(http.ip())),
        http,
        record,
        udp_port,
        keepalive_port,
        keepalive_timeout,
        refuse_starts,
        drop_keepalives,
        source,
        ffmpeg,
        clock_offset_s,
    }))
}

impl Options {
    pub fn api(&self) -> Api {
        self.model.api
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(s: &str) -> Result<Parsed, String> {
        parse_args(&s.split_whitespace().map(String::from).collect::<Vec<_>>())
    }

    fn run(s: &str) -> Options {
        match args(s) {
            Ok(Parsed::Run(o)) => o,
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn options_parse_with_defaults() {
        let o = run("--model hero4 --http 127.0.0.1:8080");
        assert_eq!(o.model.name, "HERO4 Black");
        assert_eq!((o.udp_port, o.keepalive_port), (8554, 8554));
        assert_eq!(o.keepalive_timeout, None, "no invented timeout");
        assert_eq!(o.record, None);
        assert_eq!(o.transport, Transport::Wifi);
        let o = run(
            "--model hero12 --http 172.21.145.51:8080 --record r --udp-port 9 --keepalive-port 10 --keepalive-timeout 2.5 --size 320x180 --fps 15 --refuse-starts 2 --drop-keepalives 1",
        );
        assert_eq!(o.api(), Api::OpenGoPro);
        assert_eq!(o.transport, Transport::Usb, "the wired address");
        assert_eq!((o.udp_port, o.keepalive_port), (9, 10));
        assert_eq!(o.keepalive_timeout, Some(Duration::from_millis(2500)));
        assert_eq!((o.refuse_starts, o.drop_keepalives), (2, 1));
        assert_eq!(
            (o.source.width, o.source.height, o.source.fps),
            (320, 180, 15)
        );
        let o = run("--model hero9 --http 172.21.145.51:8080 --transport wifi");
        assert_eq!(o.transport, Transport::Wifi);
    }

    #[test]
    fn help_is_asked_anywhere() {
        assert_eq!(args("--help").unwrap(), Parsed::Help);
        assert_eq!(args("--model hero4 -h").unwrap(), Parsed::Help);
        assert!(help().contains("hero4|hero5|hero7|hero9|hero10|hero11|hero12|hero13"));
    }

    #[test]
    fn bad_options_are_refused() {
        assert!(args("--http 127.0.0.1:1").unwrap_err().contains("--model"));
        assert!(args("--model hero8 --http 127.0.0.1:1")
            .unwrap_err()
            .contains("one of"));
        assert!(args("--model hero4 --http localhost").is_err());
        assert!(args("--model hero4 --http 127.0.0.1:1 --udp-port 0").is_err());
        assert!(args("--model hero4 --http 127.0.0.1:1 --keepalive-timeout -1").is_err());
        assert!(args("--model hero4 --http 127.0.0.1:1 --refuse-starts x").is_err());
        assert!(args("--model hero4 --http 127.0.0.1:1 --transport bt").is_err());
        assert!(args("--model hero4").unwrap_err().contains("--http"));
        assert!(args("--model hero4 --http 127.0.0.1:1 --kind legacy")
            .unwrap_err()
            .contains("unexpected argument"));
    }
}
