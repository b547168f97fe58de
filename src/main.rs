//! Command line: `run`, `demo`, `check-config`, `report`, `fake-gopro`.

use livestreamd::camera::demo::DemoSource;
use livestreamd::camera::emulator as fake_gopro;
use livestreamd::config::source::{self as config_source, Sources};
use livestreamd::daemon::{self, RunOptions};
use livestreamd::{COMMIT, TARGET, VERSION};
use std::path::PathBuf;
use std::process::ExitCode;

const DEFAULT_CONFIG: &str = "/etc/livestreamd/livestreamd.toml";

/// Each subcommand's help: its usage line first, as `livestreamd --help` lists it.
const RUN_HELP: &str = "\
usage: livestreamd run [--config FILE] [--override FILE] [--set-clock]
  Run the daemon (under systemd: see systemd/livestreamd.service).
  --config FILE    the configuration (default /etc/livestreamd/livestreamd.toml)
  --override FILE  laid over it when it exists and is valid: each [section] or
                   [[array]] it writes replaces the config's one of that name
                   (e.g. /boot/livestreamd.toml on the SD card). A bad one is
                   logged with FILE:LINE:COLUMN and the config is used alone.
  --set-clock      set the system clock from the camera's or a phone's when it
                   is plainly unset (needs CAP_SYS_TIME; /status `clock`)
  --check-args     check these arguments and exit (scripts/verify-unit.sh)
  SIGHUP reads both again; a bad file then keeps the running configuration.";

const DEMO_HELP: &str = "\
usage: livestreamd demo [--config FILE] [--override FILE] [--size WxH] [--fps N]
  Run the daemon on a simulated GoPro (an ffmpeg test pattern); without
  --config on the built-in defaults. --config and --override as for `run`.
  --size WxH  the simulated camera's picture (default 1280x720)
  --fps N     its frame rate (default 30)";

const CHECK_HELP: &str = "\
usage: livestreamd check-config FILE [--override FILE]
  Check FILE (and the override laid over it) and print the configuration the
  daemon would run with. Each bad file is named on stderr as one line
  FILE:LINE:COLUMN: reason, and the exit status is 2.";

const REPORT_HELP: &str = "\
usage: livestreamd report [--address ADDR:PORT] [--to-boot]
  Ask the running daemon for what the page's diagnosis panel shows (camera,
  source, encoders, network, phones, recent warnings and errors, secrets
  masked) and print it as text. Installed as `livestream-report`, it does
  --to-boot: the text goes to livestream-report.txt on the boot partition
  through /usr/sbin/livestream-bootfs.
  --address ADDR:PORT  the daemon (default: server.listen of the configuration
                       the daemon runs with, on 127.0.0.1)";

/// fake-gopro's help: the emulator's own (its options belong to it, src/camera/emulator/).
fn fake_gopro_help() -> String {
    fake_gopro::help()
}

/// A subcommand's help text; its first line is its usage.
type Help = fn() -> String;

/// Each subcommand and its help.
const SUBCOMMANDS: [(&str, Help); 5] = [
    ("run", || RUN_HELP.to_string()),
    ("demo", || DEMO_HELP.to_string()),
    ("check-config", || CHECK_HELP.to_string()),
    ("report", || REPORT_HELP.to_string()),
    ("fake-gopro", fake_gopro_help),
];

/// The override the systemd unit gives (`--override`), read by `report`.
const DEFAULT_OVERRIDE: &str = "/boot/livestreamd.toml";

/// `livestreamd --help`: every subcommand's usage line.
fn usage() -> String {
    let mut text = String::from("usage:\n");
    for (_, help) in SUBCOMMANDS {
        let help = help();
        let line = help.lines().next().unwrap_or_default();
        text += "  ";
        text += line.strip_prefix("usage: ").unwrap_or(line);
        text += "\n";
    }
    text += "  livestreamd help SUBCOMMAND | SUBCOMMAND --help\n";
    text += "  livestreamd --version | --help\n\n";
    text += "exit status: 0 ok, 1 runtime failure, 2 bad config or usage";
    text
}

/// `--version`: the version, the commit and the target it was built for.
fn version() -> String {
    format!("livestreamd {VERSION} (commit {COMMIT}, {TARGET})")
}

/// Parsed command line.
#[derive(Debug, PartialEq)]
enum Command {
    Run {
        config: Option<PathBuf>,
        override_file: Option<PathBuf>,
        demo: Option<DemoSource>,
        set_clock: bool,
    },
    /// `run … --check-args`: the arguments parse.
    ArgsOk,
    CheckConfig {
        file: PathBuf,
        override_file: Option<PathBuf>,
    },
    FakeGoPro(fake_gopro::Options),
    Report {
        address: Option<std::net::SocketAddr>,
        to_boot: bool,
    },
    Version,
    Help,
    /// One subcommand's help.
    HelpFor(String),
}

fn help_for(name: &str) -> Result<Command, String> {
    if name == "help" {
        return Ok(Command::Help);
    }
    SUBCOMMANDS
        .iter()
        .find(|(n, _)| *n == name)
        .map(|(_, help)| Command::HelpFor(help()))
        .ok_or(format!("unknown command `{name}`"))
}

fn parse_args(args: &[String]) -> Result<Command, String> {
    // `SUBCOMMAND --help` anywhere among its arguments, before they are checked.
    if let Some(name) = args.first() {
        if args[1..].iter().any(|a| a == "--help" || a == "-h") {
            return help_for(name);
        }
    }
    let mut it = args.iter();
    let cmd = match it.next().map(String::as_str) {
        Some("help") => {
            return match it.next() {
                Some(name) => help_for(name),
                None => Ok(Command::Help),
            }
        }
        None | Some("--help") | Some("-h") => return Ok(Command::Help),
        Some("--version") | Some("-V") => return Ok(Command::Version),
        Some("check-config") => {
            let mut file = None;
            let mut override_file = None;
            while let Some(arg) = it.next() {
                match arg.as_str() {
                    "--override" => {
                        let v = it.next().ok_or("--override needs a value")?;
                        override_file = Some(PathBuf::from(v));
                    }
                    a if file.is_none() && !a.starts_with('-') => file = Some(PathBuf::from(a)),
                    _ => return Err(format!("unexpected argument `{arg}`")),
                }
            }
            let file = file.ok_or("check-config needs a FILE")?;
            return Ok(Command::CheckConfig {
                file,
                override_file,
            });
        }
        Some("report") => {
            let mut address = None;
            let mut to_boot = false;
            while let Some(arg) = it.next() {
                match arg.as_str() {
                    "--to-boot" => to_boot = true,
                    "--address" => {
                        let v = it.next().ok_or("--address needs a value")?;
                        address = Some(
                            v.parse()
                                .map_err(|_| format!("--address `{v}`: expected ADDR:PORT"))?,
                        );
                    }
                    _ => return Err(format!("unexpected argument `{arg}` for `report`")),
                }
            }
            return Ok(Command::Report { address, to_boot });
        }
        Some("fake-gopro") => {
            let rest: Vec<String> = it.cloned().collect();
            return fake_gopro::parse_args(&rest).map(|p| match p {
                fake_gopro::Parsed::Run(o) => Command::FakeGoPro(o),
                fake_gopro::Parsed::Help => Command::HelpFor(fake_gopro::help()),
            });
        }
        Some(c @ ("run" | "demo")) => c,
        Some(other) => return Err(format!("unknown command `{other}`")),
    };
    let mut config = None;
    let mut override_file = None;
    let mut demo = (cmd == "demo").then(DemoSource::default);
    let mut set_clock = false;
    let mut check_only = false;
    while let Some(arg) = it.next() {
        let mut value = || it.next().ok_or(format!("{arg} needs a value"));
        match (arg.as_str(), demo.as_mut()) {
            ("--set-clock", None) => set_clock = true,
            ("--check-args", _) => check_only = true,
            ("--config" | "-c", _) => config = Some(PathBuf::from(value()?)),
            ("--override", _) => override_file = Some(PathBuf::from(value()?)),
            ("--size", Some(d)) => {
                let v = value()?;
                let (w, h) = v
                    .split_once('x')
                    .ok_or(format!("--size `{v}`: expected WxH"))?;
                d.width = w.parse().map_err(|_| format!("--size `{v}`: bad width"))?;
                d.height = h.parse().map_err(|_| format!("--size `{v}`: bad height"))?;
            }
            ("--fps", Some(d)) => {
                let v = value()?;
                d.fps = v
                    .parse()
                    .map_err(|_| format!("--fps `{v}`: not a number"))?;
            }
            _ => return Err(format!("unexpected argument `{arg}` for `{cmd}`")),
        }
    }
    if check_only {
        return Ok(Command::ArgsOk);
    }
    Ok(Command::Run {
        config,
        override_file,
        demo,
        set_clock,
    })
}

fn init_logging(level: log::LevelFilter) {
    let mut b = env_logger::Builder::new();
    b.filter_level(level);
    if let Ok(spec) = std::env::var("RUST_LOG") {
        b.parse_filters(&spec);
    }
    // journald stamps every line itself.
    if std::env::var_os("JOURNAL_STREAM").is_some() {
        b.format_timestamp(None);
    } else {
        b.format_timestamp_millis();
    }
    // Warnings and errors are also kept for the phone's page (log_ring).
    let logger = b.build();
    let level = logger.filter();
    livestreamd::log_ring::install(logger, level);
}

/// Writes `text` and a newline to stdout. A reader that went away
/// (`check-config FILE | head`) is not an error; println! would panic there.
fn print_out(text: &str) -> ExitCode {
    use std::io::Write;
    let mut out = std::io::stdout().lock();
    match writeln!(out, "{text}").and_then(|()| out.flush()) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("livestreamd: cannot write to stdout: {e}");
            ExitCode::from(1)
        }
    }
}

/// `check-config`: the same choice as the daemon's start. Every bad file is
/// reported (exit 2); the configuration the daemon would run with, if any, is
/// printed all the same.
fn check_config(sources: Sources) -> ExitCode {
    match config_source::load(&sources) {
        Err(errors) => {
            for e in errors {
                eprintln!("{e}");
            }
            ExitCode::from(2)
        }
        Ok(loaded) => {
            for e in &loaded.ignored {
                eprintln!("{e}");
            }
            let verdict = if loaded.ignored.is_empty() {
                "ok".to_string()
            } else {
                format!("{} bad file(s) ignored", loaded.ignored.len())
            };
            let printed = print_out(&format!(
                "# {}: {verdict}; effective configuration:\n{}",
                loaded.origin,
                loaded.config.to_toml()
            ));
            if loaded.ignored.is_empty() {
                printed
            } else {
                ExitCode::from(2)
            }
        }
    }
}

/// `report`: asks the daemon, prints the text or writes it to the boot partition.
fn report(address: Option<std::net::SocketAddr>, to_boot: bool) -> ExitCode {
    use livestreamd::field_report;
    let address = address.unwrap_or_else(|| {
        let sources = Sources {
            main: Some(PathBuf::from(DEFAULT_CONFIG)),
            override_file: Some(PathBuf::from(DEFAULT_OVERRIDE)),
        };
        let mut listen = config_source::load(&sources)
            .map(|l| l.config.server.listen)
            .unwrap_or_else(|_| livestreamd::config::Config::default().server.listen);
        if listen.ip().is_unspecified() {
            listen.set_ip(std::net::Ipv4Addr::LOCALHOST.into());
        }
        listen
    });
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(r) => r,
        Err(e) => {
            eprintln!("livestreamd: cannot start the runtime: {e}");
            return ExitCode::from(1);
        }
    };
    let text = runtime.block_on(field_report::collect(address));
    if !to_boot {
        return print_out(text.trim_end());
    }
    match field_report::write_to_boot(field_report::REPORT_NAME, &text) {
        Ok(()) => print_out(&format!(
            "livestream-report: written to {} on the boot partition",
            field_report::REPORT_NAME
        )),
        Err(e) => {
            eprintln!("livestream-report: {e}");
            ExitCode::from(1)
        }
    }
}

fn main() -> ExitCode {
    let mut args: Vec<String> = std::env::args().skip(1).collect();
    // Installed under the name `livestream-report`: `report --to-boot`.
    let name = std::env::args_os().next().unwrap_or_default();
    if std::path::Path::new(&name).file_name() == Some("livestream-report".as_ref()) {
        args.splice(0..0, ["report".to_string(), "--to-boot".to_string()]);
    }
    let command = match parse_args(&args) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("livestreamd: {e}\n{}", usage());
            return ExitCode::from(2);
        }
    };
    match command {
        Command::Help => print_out(&format!("{}\n{}", version(), usage())),
        Command::HelpFor(help) => print_out(&help),
        Command::Version => print_out(&version()),
        Command::ArgsOk => print_out("livestreamd: arguments ok"),
        Command::FakeGoPro(opts) => {
            init_logging(log::LevelFilter::Info);
            match tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
            {
                Ok(rt) => ExitCode::from(rt.block_on(fake_gopro::run(opts)) as u8),
                Err(e) => {
                    eprintln!("livestreamd: cannot start the runtime: {e}");
                    ExitCode::from(1)
                }
            }
        }
        Command::Report { address, to_boot } => report(address, to_boot),
        Command::CheckConfig {
            file,
            override_file,
        } => check_config(Sources {
            main: Some(file),
            override_file,
        }),
        Command::Run {
            config,
            override_file,
            demo,
            set_clock,
        } => {
            // CAP_SYS_TIME (for --set-clock) comes as an ambient capability:
            // kept by the daemon, not passed on to the ffmpeg it starts.
            // SAFETY: prctl with these arguments only clears the ambient set.
            unsafe {
                libc::prctl(
                    libc::PR_CAP_AMBIENT,
                    libc::PR_CAP_AMBIENT_CLEAR_ALL,
                    0,
                    0,
                    0,
                )
            };
            livestreamd::timekeep::allow_setting(set_clock);
            let sources = Sources {
                // `demo` without --config runs on the built-in defaults.
                main: config.or_else(|| demo.is_none().then(|| PathBuf::from(DEFAULT_CONFIG))),
                override_file,
            };
            let loaded = match config_source::load(&sources) {
                Ok(l) => l,
                Err(errors) => {
                    for e in errors {
                        eprintln!("livestreamd: bad config: {e}");
                    }
                    return ExitCode::from(2);
                }
            };
            livestreamd::log_ring::remember_secrets(&loaded.config);
            init_logging(loaded.config.log.level.as_filter());
            config_source::report_ignored(&loaded);
            log::info!("configuration: {}", loaded.origin);
            let cfg = loaded.config;
            if let Some(d) = &demo {
                let port = cfg.server.listen.port();
                log::info!(
                    "demo: simulated GoPro {}x{}@{} -> udp://{}; open http://127.0.0.1:{port}/stream.ts in VLC or run: ffplay -fflags nobuffer http://127.0.0.1:{port}/stream.ts",
                    d.width,
                    d.height,
                    d.fps,
                    livestreamd::camera::demo::target(cfg.source.url.addr)
                );
            }
            let runtime = match tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
            {
                Ok(r) => r,
                Err(e) => {
                    eprintln!("livestreamd: cannot start the runtime: {e}");
                    return ExitCode::from(1);
                }
            };
            let code = runtime.block_on(daemon::run(cfg, RunOptions { demo, sources }));
            ExitCode::from(code as u8)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(s: &str) -> Result<Command, String> {
        parse_args(&s.split_whitespace().map(String::from).collect::<Vec<_>>())
    }

    #[test]
    fn commands_parse() {
        assert_eq!(parse("").unwrap(), Command::Help);
        assert_eq!(parse("--version").unwrap(), Command::Version);
        assert_eq!(
            parse("check-config a.toml").unwrap(),
            Command::CheckConfig {
                file: "a.toml".into(),
                override_file: None
            }
        );
        assert_eq!(
            parse("check-config a.toml --override b.toml").unwrap(),
            Command::CheckConfig {
                file: "a.toml".into(),
                override_file: Some("b.toml".into())
            }
        );
        assert_eq!(
            parse("run --config x.toml").unwrap(),
            Command::Run {
                config: Some("x.toml".into()),
                override_file: None,
                demo: None,
                set_clock: false,
            }
        );
        assert_eq!(
            parse("demo --size 640x360 --fps 25").unwrap(),
            Command::Run {
                config: None,
                override_file: None,
                demo: Some(DemoSource {
                    width: 640,
                    height: 360,
                    fps: 25
                }),
                set_clock: false,
            }
        );
    }

    #[test]
    fn override_is_accepted_by_run_and_demo() {
        assert_eq!(
            parse("run --config a.toml --override /boot/b.toml").unwrap(),
            Command::Run {
                config: Some("a.toml".into()),
                override_file: Some("/boot/b.toml".into()),
                demo: None,
                set_clock: false,
            }
        );
        assert!(matches!(
            parse("demo --override /boot/b.toml").unwrap(),
            Command::Run {
                override_file: Some(_),
                demo: Some(_),
                ..
            }
        ));
    }

    #[test]
    fn fake_gopro_parses() {
        match parse("fake-gopro --model hero12 --http 127.0.0.1:18080 --record r.jsonl") {
            Ok(Command::FakeGoPro(o)) => assert_eq!(o.http.port(), 18080),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn every_subcommand_has_help_with_its_usage_listed() {
        for (name, help) in SUBCOMMANDS {
            let help = help();
            assert_eq!(
                parse(&format!("{name} --help")),
                Ok(Command::HelpFor(help.clone()))
            );
            assert_eq!(
                parse(&format!("help {name}")),
                Ok(Command::HelpFor(help.clone()))
            );
            let usage_line = help.lines().next().unwrap();
            assert!(usage_line.starts_with(&format!("usage: livestreamd {name}")));
            assert!(usage().contains(usage_line.strip_prefix("usage: ").unwrap()));
        }
        assert_eq!(
            parse("run --config x.toml -h"),
            Ok(Command::HelpFor(RUN_HELP.to_string()))
        );
        assert!(parse("fly --help").is_err());
    }

    /// The options `--help` names for each subcommand are the ones its parser
    /// takes (fake-gopro's parser lives with the emulator).
    #[test]
    fn every_option_in_a_help_is_known_to_its_parser() {
        for (name, help) in SUBCOMMANDS {
            let help = help();
            let options = help
                .split(|c: char| c.is_whitespace() || c == '[' || c == ']')
                .map(|w| w.trim_end_matches([':', ',', '.']))
                .filter(|w| w.starts_with("--") && *w != "--help");
            for option in options {
                let args = [name.to_string(), option.to_string()];
                if let Err(e) = parse_args(&args) {
                    assert!(!e.contains("unexpected argument"), "{name} {option}: {e}");
                }
            }
        }
    }

    #[test]
    fn bad_usage_is_refused() {
        assert!(parse("run --override")
            .unwrap_err()
            .contains("needs a value"));
        assert!(parse("check-config").is_err());
        assert!(parse("run --size 1x1")
            .unwrap_err()
            .contains("unexpected argument"));
        assert!(parse("demo --size 640").unwrap_err().contains("WxH"));
        assert!(parse("fly").unwrap_err().contains("unknown command"));
        assert!(parse("fake-gopro --model hero4")
            .unwrap_err()
            .contains("--http"));
        assert!(parse("run --config").unwrap_err().contains("needs a value"));
    }
}
