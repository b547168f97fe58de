//! systemd's notify protocol (`sd_notify(3)`), written by hand: one datagram of
//! `KEY=VALUE` lines sent to the Unix socket named by `$NOTIFY_SOCKET`, which is
//! either a path or, when it starts with `@`, a name in the abstract namespace.
//! Why not the `sd-notify` crate: its releases that build with Rust 1.75
//! (Yocto scarthgap's; clippy.toml keeps the std API within it) connect an
//! abstract name as a path and honour `$WATCHDOG_USEC` only with
//! `$WATCHDOG_PID` set, where systemd's own `sd_watchdog_enabled` accepts it
//! unset; its current release needs Rust 1.82. No `rust-version` is claimed
//! (only one toolchain exists here to prove it), but the reason stands:
//! these few lines do both right and are tested against a real socket
//! (tests/systemd_notify.rs).
//!
//! Without `$NOTIFY_SOCKET` (not started by systemd, or `Type=simple`) every
//! call is a no-op, so the daemon runs the same way from a shell.

use std::io;
use std::os::unix::net::{SocketAddr, UnixDatagram};
use std::path::Path;
use std::time::Duration;

/// Where notifications go, parsed from `$NOTIFY_SOCKET`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Target {
    Path(std::path::PathBuf),
    /// The name without the leading `@`.
    Abstract(Vec<u8>),
}

/// Parses `$NOTIFY_SOCKET`; `None` for a value systemd would not give
/// (empty, relative path, or a bare `@`).
pub fn parse_target(value: &str) -> Option<Target> {
    if let Some(name) = value.strip_prefix('@') {
        return (!name.is_empty()).then(|| Target::Abstract(name.as_bytes().to_vec()));
    }
    // vsock:… exists too (for VMs); a Pi never gets one.
    value
        .starts_with('/')
        .then(|| Target::Path(Path::new(value).to_path_buf()))
}

/// How often to send `WATCHDOG=1`: half of `$WATCHDOG_USEC`, as `sd_watchdog_enabled(3)`
/// recommends, and only if `$WATCHDOG_PID` is unset or names this process.
pub fn watchdog_period(usec: Option<&str>, pid: Option<&str>, my_pid: u32) -> Option<Duration> {
    let usec: u64 = usec?.trim().parse().ok().filter(|&u| u > 0)?;
    if let Some(pid) = pid {
        if pid.trim().parse::<u32>().ok()? != my_pid {
            return None;
        }
    }
    Some(Duration::from_micros(usec / 2))
}

/// `STATUS=` carries one line: newlines would start new assignments.
pub fn status_line(text: &str) -> String {
    let one_line: String = text
        .chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect();
    format!("STATUS={one_line}")
}

/// Whether the main loop, which ticks every `heartbeat`, ticked recently enough
/// (`since_tick` ago) to vouch for the daemon: a few missed ticks are scheduling
/// noise, a second more is a stuck loop, and the watchdog ping is withheld.
pub fn loop_healthy(since_tick: Duration, heartbeat: Duration) -> bool {
    since_tick <= heartbeat * 4 + Duration::from_secs(1)
}

/// A connection to systemd's notify socket (or nothing, outside systemd).
#[derive(Debug)]
pub struct Notifier {
    inner: Option<(UnixDatagram, SocketAddr)>,
    watchdog: Option<Duration>,
}

impl Notifier {
    /// Reads `$NOTIFY_SOCKET`, `$WATCHDOG_USEC` and `$WATCHDOG_PID`. Errors are
    /// logged, never fatal: the stream matters more than the notifications.
    pub fn from_env() -> Notifier {
        let watchdog = watchdog_period(
            std::env::var("WATCHDOG_USEC").ok().as_deref(),
            std::env::var("WATCHDOG_PID").ok().as_deref(),
            std::process::id(),
        );
        let inner = match std::env::var("NOTIFY_SOCKET") {
            Err(_) => None,
            Ok(v) => match parse_target(&v).map(|t| Self::open(&t)) {
                Some(Ok(pair)) => Some(pair),
                Some(Err(e)) => {
                    log::warn!("systemd: cannot use NOTIFY_SOCKET={v}: {e}");
                    None
                }
                None => {
                    log::warn!("systemd: ignoring unusable NOTIFY_SOCKET={v}");
                    None
                }
            },
        };
        Notifier {
            // A watchdog without a socket to ping is no watchdog.
            watchdog: watchdog.filter(|_| inner.is_some()),
            inner,
        }
    }

    /// A notifier that sends nothing.
    pub fn disabled() -> Notifier {
        Notifier {
            inner: None,
            watchdog: None,
        }
    }

    fn open(target: &Target) -> io::Result<(UnixDatagram, SocketAddr)> {
        let addr = match target {
            Target::Path(p) => SocketAddr::from_pathname(p)?,
            Target::Abstract(name) => {
                use std::os::linux::net::SocketAddrExt;
                SocketAddr::from_abstract_name(name)?
            }
        };
        Ok((UnixDatagram::unbound()?, addr))
    }

    pub fn enabled(&self) -> bool {
        self.inner.is_some()
    }

    /// Half of the service's `WatchdogSec=`, when systemd asked for pings.
    pub fn watchdog_period(&self) -> Option<Duration> {
        self.watchdog
    }

    /// Sends one datagram of newline-separated assignments. A datagram send on a
    /// Unix socket does not block for long; a full queue is reported, not waited on.
    pub fn send(&self, state: &str) -> io::Result<()> {
        match &self.inner {
            None => Ok(()),
            Some((sock, addr)) => {
                let n = sock.send_to_addr(state.as_bytes(), addr)?;
                if n != state.len() {
                    return Err(io::Error::new(io::ErrorKind::WriteZero, "short datagram"));
                }
                Ok(())
            }
        }
    }

    /// Like `send`, logging a failure instead of returning it.
    pub fn notify(&self, state: &str) {
        if let Err(e) = self.send(state) {
            log::warn!(
                "systemd: notify `{}` failed: {e}",
                state.lines().next().unwrap_or("")
            );
        }
    }

    pub fn ready(&self, status: &str) {
        self.notify(&format!("READY=1\n{}", status_line(status)));
    }

    pub fn status(&self, status: &str) {
        self.notify(&status_line(status));
    }

    pub fn watchdog(&self) {
        self.notify("WATCHDOG=1");
    }

    /// `WATCHDOG=1` (when `ping`) and the status line (when given), in one datagram.
    pub fn heartbeat(&self, ping: bool, status: Option<&str>) {
        let mut msg = Vec::new();
        if ping {
            msg.push("WATCHDOG=1".to_string());
        }
        if let Some(s) = status {
            msg.push(status_line(s));
        }
        if !msg.is_empty() {
            self.notify(&msg.join("\n"));
        }
    }

    pub fn stopping(&self, status: &str) {
        self.notify(&format!("STOPPING=1\n{}", status_line(status)));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn targets_are_paths_or_abstract_names() {
        assert_eq!(
            parse_target("/run/systemd/notify"),
            Some(Target::Path("/run/systemd/notify".into()))
        );
        assert_eq!(
            parse_target("@/org/freedesktop/systemd1/notify/42"),
            Some(Target::Abstract(
                b"/org/freedesktop/systemd1/notify/42".to_vec()
            ))
        );
        assert_eq!(parse_target(""), None);
        assert_eq!(parse_target("@"), None);
        assert_eq!(parse_target("relative/sock"), None);
    }

    #[test]
    fn watchdog_pings_at_half_the_timeout_for_this_pid_only() {
        let half = Some(Duration::from_secs(10));
        assert_eq!(watchdog_period(Some("20000000"), None, 7), half);
        assert_eq!(watchdog_period(Some("20000000"), Some("7"), 7), half);
        assert_eq!(watchdog_period(Some("20000000"), Some("8"), 7), None);
        assert_eq!(watchdog_period(Some("20000000"), Some("x"), 7), None);
        assert_eq!(watchdog_period(Some("0"), None, 7), None);
        assert_eq!(watchdog_period(Some("soon"), None, 7), None);
        assert_eq!(watchdog_period(None, Some("7"), 7), None);
    }

    #[test]
    fn a_loop_that_stopped_ticking_is_not_vouched_for() {
        let beat = Duration::from_millis(250);
        assert!(loop_healthy(Duration::ZERO, beat));
        assert!(loop_healthy(Duration::from_millis(1900), beat));
        assert!(!loop_healthy(Duration::from_millis(2100), beat));
        assert!(!loop_healthy(Duration::from_secs(30), beat));
    }

    #[test]
    fn status_is_one_line() {
        assert_eq!(status_line("a\nb\tc"), "STATUS=a b c");
    }

    fn roundtrip(target: &Target, listener: &UnixDatagram) {
        let (sock, addr) = Notifier::open(target).unwrap();
        let n = Notifier {
            inner: Some((sock, addr)),
            watchdog: None,
        };
        n.ready("streaming");
        n.watchdog();
        let mut buf = [0u8; 256];
        let k = listener.recv(&mut buf).unwrap();
        assert_eq!(&buf[..k], b"READY=1\nSTATUS=streaming");
        let k = listener.recv(&mut buf).unwrap();
        assert_eq!(&buf[..k], b"WATCHDOG=1");
    }

    #[test]
    fn sends_to_a_path_socket() {
        let dir = std::env::temp_dir().join(format!("lsd-notify-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("notify");
        let _ = std::fs::remove_file(&path);
        let listener = UnixDatagram::bind(&path).unwrap();
        roundtrip(&Target::Path(path.clone()), &listener);
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn sends_to_an_abstract_socket() {
        use std::os::linux::net::SocketAddrExt;
        let name = format!("livestreamd-test-{}", std::process::id());
        let addr = SocketAddr::from_abstract_name(name.as_bytes()).unwrap();
        let listener = UnixDatagram::bind_addr(&addr).unwrap();
        roundtrip(&parse_target(&format!("@{name}")).unwrap(), &listener);
    }

    #[test]
    fn disabled_sends_nothing_and_succeeds() {
        let n = Notifier::disabled();
        assert!(!n.enabled());
        assert!(n.send("READY=1").is_ok());
    }
}
