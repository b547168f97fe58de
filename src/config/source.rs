//! Which configuration file the daemon runs with.
//!
//! The main file (the image's) lives at `/etc/livestreamd/livestreamd.toml`. An
//! override on the Pi's FAT boot partition (`/boot/livestreamd.toml`), editable
//! from any laptop, is laid over it when it exists and is valid: each key it
//! writes replaces the main file's, the rest is kept, and an array of tables
//! it writes replaces the main file's whole (see `layer`). A bad override is
//! reported with its file:line:col and ignored, so a typo made in the field
//! never stops the stream; only when
//! nothing usable is left does the daemon refuse to start. On SIGHUP the same
//! choice is made again, and on failure the running configuration stays.

use crate::config::{self, Config, ConfigError};
use log::{error, info};
use std::fmt;
use std::path::{Path, PathBuf};

/// The running configuration, replaced as a whole on reload; readers take a
/// snapshot (`get`) and keep it for the work at hand.
#[derive(Debug)]
pub struct Current(std::sync::Mutex<std::sync::Arc<Config>>);

impl Current {
    pub fn new(config: std::sync::Arc<Config>) -> Current {
        Current(std::sync::Mutex::new(config))
    }
    pub fn get(&self) -> std::sync::Arc<Config> {
        self.0.lock().unwrap().clone()
    }
    pub fn set(&self, config: std::sync::Arc<Config>) {
        *self.0.lock().unwrap() = config;
    }
}

/// Where the configuration comes from, as given on the command line.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Sources {
    /// The main file; `None` means the built-in defaults (`demo` without `--config`).
    pub main: Option<PathBuf>,
    /// The override, usually on the boot partition; absent is normal.
    pub override_file: Option<PathBuf>,
}

/// Which file the chosen configuration came from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Origin {
    Defaults,
    Main(PathBuf),
    /// The override laid over the main file, or over the built-in defaults
    /// (`lower` = `None`: no main file given, or a bad one).
    Override {
        upper: PathBuf,
        lower: Option<PathBuf>,
    },
}

impl fmt::Display for Origin {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Origin::Defaults => write!(f, "built-in defaults"),
            Origin::Main(p) => write!(f, "{}", p.display()),
            Origin::Override { upper, lower } => {
                write!(f, "{} laid over ", upper.display())?;
                match lower {
                    Some(p) => write!(f, "{}", p.display()),
                    None => write!(f, "the built-in defaults"),
                }
            }
        }
    }
}

/// One file read and parsed, or the reason it could not be.
#[derive(Debug, Clone)]
pub struct Candidate {
    pub origin: Origin,
    pub result: Result<Config, ConfigError>,
}

/// The configuration to run with, and the problems that were reported and ignored.
#[derive(Debug, Clone)]
pub struct Loaded {
    pub config: Config,
    pub origin: Origin,
    /// Files that were bad but not needed (a bad override, or a bad main file
    /// behind a good override). Each must be logged.
    pub ignored: Vec<ConfigError>,
}

/// The choice, pure: a present override that is good (laid over the main file,
/// or over the defaults when the main file is bad) wins; a bad one
/// is ignored in favour of the main file; with no usable file, every error is
/// returned (override first, as that is the file most likely just edited).
pub fn choose(main: Candidate, over: Option<Candidate>) -> Result<Loaded, Vec<ConfigError>> {
    match (over, main.result) {
        (
            Some(Candidate {
                origin,
                result: Ok(config),
            }),
            main_result,
        ) => Ok(Loaded {
            config,
            origin,
            ignored: main_result.err().into_iter().collect(),
        }),
        (Some(Candidate { result: Err(o), .. }), Ok(config)) => Ok(Loaded {
            config,
            origin: main.origin,
            ignored: vec![o],
        }),
        (Some(Candidate { result: Err(o), .. }), Err(m)) => Err(vec![o, m]),
        (None, Ok(config)) => Ok(Loaded {
            config,
            origin: main.origin,
            ignored: Vec::new(),
        }),
        (None, Err(m)) => Err(vec![m]),
    }
}

/// The choice on reload (SIGHUP), pure: stricter than at start. A present but
/// bad override (a half-saved edit, a typo) keeps the running configuration
/// rather than falling back to the main file, which may differ from what is
/// running; so does a bad main file when there is no override.
pub fn choose_reload(main: Candidate, over: Option<Candidate>) -> Result<Loaded, Vec<ConfigError>> {
    match over {
        Some(Candidate { result: Err(o), .. }) => {
            Err(std::iter::once(o).chain(main.result.err()).collect())
        }
        over => choose(main, over),
    }
}

/// Parses a file's text. A UTF-8 byte-order mark, which Windows editors put at
/// the start of files on the boot partition, is skipped.
pub fn parse_text(file: &Path, text: &str) -> Result<Config, ConfigError> {
    config::parse(file, text.strip_prefix('\u{feff}').unwrap_or(text))
}

fn read(file: &Path) -> Result<Option<String>, ConfigError> {
    match std::fs::read(file) {
        Ok(bytes) => String::from_utf8(bytes).map(Some).map_err(|e| {
            let before = &e.as_bytes()[..e.utf8_error().valid_up_to()];
            let line = before.iter().filter(|&&b| b == b'\n').count() + 1;
            let column = before.len()
                - before
                    .iter()
                    .rposition(|&b| b == b'\n')
                    .map_or(0, |i| i + 1)
                + 1;
            ConfigError {
                file: file.to_path_buf(),
                line,
                column,
                reason: "not UTF-8 text (save the file as UTF-8)".into(),
            }
        }),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(ConfigError {
            file: file.to_path_buf(),
            line: 1,
            column: 1,
            reason: format!("cannot read: {e}"),
        }),
    }
}

/// Reads the main file's text; a missing main file is an error.
fn read_main(file: &Path) -> Result<String, ConfigError> {
    read(file)?.ok_or_else(|| ConfigError {
        file: file.to_path_buf(),
        line: 1,
        column: 1,
        reason: "cannot read: no such file".into(),
    })
}

/// Reads the override and lays it over `lower` (the main file's name and text,
/// already known to be good; `None`: the built-in defaults). `None` when the
/// override does not exist (the normal case).
pub fn read_override(
    file: &Path,
    lower: Option<(&Path, &str)>,
) -> Option<Result<Config, ConfigError>> {
    match read(file) {
        Ok(None) => None,
        Ok(Some(text)) => {
            let text = text.strip_prefix('\u{feff}').unwrap_or(&text);
            Some(config::parse_over(lower, (file, text)))
        }
        Err(e) => Some(Err(e)),
    }
}

/// Reads every source and chooses (at start).
pub fn load(sources: &Sources) -> Result<Loaded, Vec<ConfigError>> {
    let (main, over) = read_all(sources);
    choose(main, over)
}

fn read_all(sources: &Sources) -> (Candidate, Option<Candidate>) {
    // The main file's text is kept: the override is laid over it.
    let (main, lower_text) = match &sources.main {
        Some(p) => {
            let text = read_main(p);
            let result = text.clone().and_then(|t| parse_text(p, &t));
            let lower = match (&result, text) {
                (Ok(_), Ok(t)) => Some((p.clone(), t)),
                _ => None,
            };
            let origin = Origin::Main(p.clone());
            (Candidate { origin, result }, lower)
        }
        None => (
            Candidate {
                origin: Origin::Defaults,
                result: Ok(Config::default()),
            },
            None,
        ),
    };
    let lower = lower_text.as_ref().map(|(p, t)| {
        (
            p.as_path(),
            t.strip_prefix('\u{feff}').unwrap_or(t.as_str()),
        )
    });
    let over = sources.override_file.as_ref().and_then(|p| {
        read_override(p, lower).map(|result| Candidate {
            origin: Origin::Override {
                upper: p.clone(),
                lower: lower.map(|(l, _)| l.to_path_buf()),
            },
            result,
        })
    });
    (main, over)
}

/// Logs the files that were bad but not needed. Logged at error level: a
/// broken override is something the operator must see even with `level = "error"`.
pub fn report_ignored(loaded: &Loaded) {
    for e in &loaded.ignored {
        error!("bad config, ignored: {e}; running with {}", loaded.origin);
    }
}

/// SIGHUP: reads main + override again and chooses with `choose_reload`. On
/// failure every error is logged with its file:line:col and `None` is returned:
/// the running configuration stays.
/// On success the new configuration is returned; the daemon applies it part
/// by part (see `daemon::reload`).
pub fn reload_config(sources: &Sources, running: &Config) -> Option<Config> {
    let (main, over) = read_all(sources);
    match choose_reload(main, over) {
        Err(errors) => {
            for e in &errors {
                error!("reload: bad config: {e}");
            }
            error!("reload: keeping the running configuration");
            None
        }
        Ok(loaded) => {
            report_ignored(&loaded);
            if loaded.config == *running {
                info!("reload: {} read; nothing changed", loaded.origin);
            } else {
                info!("reload: configuration from {} accepted", loaded.origin);
            }
            Some(loaded.config)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cfg(port: u16) -> Config {
        parse_text(
            Path::new("x"),
            &format!("[server]\nlisten = \"127.0.0.1:{port}\"\n"),
        )
        .unwrap()
    }
    fn bad(file: &str) -> ConfigError {
        ConfigError {
            file: file.into(),
            line: 3,
            column: 7,
            reason: "boom".into(),
        }
    }
    fn main_ok(port: u16) -> Candidate {
        Candidate {
            origin: Origin::Main("/etc/l.toml".into()),
            result: Ok(cfg(port)),
        }
    }
    fn main_bad() -> Candidate {
        Candidate {
            origin: Origin::Main("/etc/l.toml".into()),
            result: Err(bad("/etc/l.toml")),
        }
    }
    fn over_ok(port: u16) -> Option<Candidate> {
        Some(Candidate {
            origin: Origin::Override {
                upper: "/boot/l.toml".into(),
                lower: Some("/etc/l.toml".into()),
            },
            result: Ok(cfg(port)),
        })
    }
    fn over_bad() -> Option<Candidate> {
        Some(Candidate {
            origin: Origin::Override {
                upper: "/boot/l.toml".into(),
                lower: Some("/etc/l.toml".into()),
            },
            result: Err(bad("/boot/l.toml")),
        })
    }

    #[test]
    fn no_override_uses_main() {
        let l = choose(main_ok(1), None).unwrap();
        assert_eq!(l.config, cfg(1));
        assert_eq!(l.origin, Origin::Main("/etc/l.toml".into()));
        assert!(l.ignored.is_empty());
    }

    #[test]
    fn good_override_wins() {
        let l = choose(main_ok(1), over_ok(2)).unwrap();
        assert_eq!(l.config, cfg(2));
        assert_eq!(l.origin.to_string(), "/boot/l.toml laid over /etc/l.toml");
        assert!(l.ignored.is_empty());
    }

    #[test]
    fn good_override_rescues_a_bad_main_file_but_reports_it() {
        let l = choose(main_bad(), over_ok(2)).unwrap();
        assert_eq!(l.config, cfg(2));
        assert_eq!(l.ignored, vec![bad("/etc/l.toml")]);
    }

    #[test]
    fn bad_override_is_reported_and_main_used() {
        let l = choose(main_ok(1), over_bad()).unwrap();
        assert_eq!(l.config, cfg(1));
        assert_eq!(l.origin, Origin::Main("/etc/l.toml".into()));
        assert_eq!(l.ignored, vec![bad("/boot/l.toml")]);
    }

    #[test]
    fn nothing_usable_returns_every_error_override_first() {
        assert_eq!(
            choose(main_bad(), over_bad()).unwrap_err(),
            vec![bad("/boot/l.toml"), bad("/etc/l.toml")]
        );
        assert_eq!(
            choose(main_bad(), None).unwrap_err(),
            vec![bad("/etc/l.toml")]
        );
    }

    #[test]
    fn reload_keeps_the_running_config_when_the_override_is_bad() {
        assert_eq!(
            choose_reload(main_ok(1), over_bad()).unwrap_err(),
            vec![bad("/boot/l.toml")]
        );
        assert_eq!(
            choose_reload(main_bad(), over_bad()).unwrap_err(),
            vec![bad("/boot/l.toml"), bad("/etc/l.toml")]
        );
        assert_eq!(choose_reload(main_bad(), None).unwrap_err().len(), 1);
        assert_eq!(choose_reload(main_ok(1), None).unwrap().config, cfg(1));
        let l = choose_reload(main_bad(), over_ok(2)).unwrap();
        assert_eq!((l.config, l.ignored.len()), (cfg(2), 1));
    }

    #[test]
    fn byte_order_mark_is_skipped() {
        let c = parse_text(
            Path::new("x"),
            "\u{feff}[server]\nlisten = \"127.0.0.1:9\"\n",
        )
        .unwrap();
        assert_eq!(c.server.listen.port(), 9);
    }

    #[test]
    fn windows_line_endings_parse() {
        let c = parse_text(Path::new("x"), "[server]\r\nlisten = \"127.0.0.1:9\"\r\n").unwrap();
        assert_eq!(c.server.listen.port(), 9);
    }

    struct TempDir(PathBuf);
    impl TempDir {
        fn new(tag: &str) -> TempDir {
            let d = std::env::temp_dir().join(format!("lsd-cs-{tag}-{}", std::process::id()));
            let _ = std::fs::remove_dir_all(&d);
            std::fs::create_dir_all(&d).unwrap();
            TempDir(d)
        }
    }
    impl Drop for TempDir {
        fn drop(&mut self) {
            let _ = std::fs::remove_dir_all(&self.0);
        }
    }

    #[test]
    fn loader_reads_files_and_treats_a_missing_override_as_absent() {
        let d = TempDir::new("load");
        let main = d.0.join("main.toml");
        let over = d.0.join("boot.toml");
        std::fs::write(
            &main,
            "[server]\nlisten = \"127.0.0.1:1\"\n[log]\nlevel = \"warn\"\n",
        )
        .unwrap();
        let sources = Sources {
            main: Some(main.clone()),
            override_file: Some(over.clone()),
        };
        let l = load(&sources).unwrap();
        assert_eq!((l.config.server.listen.port(), l.ignored.len()), (1, 0));

        std::fs::write(&over, "[server]\nlisten = \"127.0.0.1:2\"\n").unwrap();
        let l = load(&sources).unwrap();
        assert_eq!(l.config.server.listen.port(), 2);
        // Laid over the main file: its [log] stays.
        assert_eq!(l.config.log.level, crate::config::LogLevel::Warn);
        assert_eq!(
            l.origin.to_string(),
            format!("{} laid over {}", over.display(), main.display())
        );

        std::fs::write(
            &over,
            "[server]\nlisten = \"127.0.0.1:2\"\nlisten_typo = 1\n",
        )
        .unwrap();
        let l = load(&sources).unwrap();
        assert_eq!(l.config.server.listen.port(), 1);
        assert_eq!(
            (l.ignored[0].file.as_path(), l.ignored[0].line),
            (over.as_path(), 3)
        );

        std::fs::write(&over, b"[server]\nlisten = \"\xff\"\n").unwrap();
        let e = &load(&sources).unwrap().ignored[0];
        assert_eq!((e.line, e.column), (2, 11), "{e}");

        std::fs::remove_file(&main).unwrap();
        let errs = load(&sources).unwrap_err();
        assert_eq!(errs.len(), 2);
        assert!(errs[1].reason.contains("no such file"), "{}", errs[1]);
    }

    #[test]
    fn reload_keeps_nothing_on_error_and_returns_the_new_config() {
        let d = TempDir::new("reload");
        let main = d.0.join("main.toml");
        std::fs::write(&main, "[server]\nmax_viewers = 3\n").unwrap();
        let sources = Sources {
            main: Some(main.clone()),
            override_file: None,
        };
        let running = Config::default();
        assert_eq!(
            reload_config(&sources, &running)
                .unwrap()
                .server
                .max_viewers,
            3
        );
        std::fs::write(&main, "[server]\nmax_viewers = \n").unwrap();
        assert!(reload_config(&sources, &running).is_none());
        std::fs::write(&main, "[server]\nmax_viewers = 3\n").unwrap();
        let over = d.0.join("boot.toml");
        std::fs::write(&over, "[server]\nmax_viewers = x\n").unwrap();
        let sources = Sources {
            override_file: Some(over),
            ..sources
        };
        // At start the main file stands in; on reload the running config stays.
        assert!(reload_config(&sources, &running).is_none());
        assert_eq!(load(&sources).unwrap().config.server.max_viewers, 3);
    }

    #[test]
    fn defaults_stand_in_for_a_missing_main_path() {
        let l = load(&Sources::default()).unwrap();
        assert_eq!(l.origin, Origin::Defaults);
        assert_eq!(l.config, Config::default());
    }
}
