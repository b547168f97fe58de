//! systemd: READY, STATUS, WATCHDOG and STOPPING through the `sd-notify`
//! crate (which speaks `sd_notify(3)`: path and abstract sockets, the
//! watchdog variables). What stays here is our policy: STATUS is one line,
//! and the watchdog is pinged only while the main loop ticks.
//!
//! Without `$NOTIFY_SOCKET` (not started by systemd, or `Type=simple`) every
//! call is a no-op, so the daemon runs the same way from a shell.

use sd_notify::NotifyState;
use std::time::Duration;

/// `STATUS=` carries one line: a newline would start a new assignment.
pub fn one_line(text: &str) -> String {
    text.chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect()
}

/// Whether the main loop, which ticks every `heartbeat`, ticked recently enough
/// (`since_tick` ago) to vouch for the daemon: a few missed ticks are scheduling
/// noise, a second more is a stuck loop, and the watchdog ping is withheld.
pub fn loop_healthy(since_tick: Duration, heartbeat: Duration) -> bool {
    since_tick <= heartbeat * 4 + Duration::from_secs(1)
}

/// The service manager's notify socket, when there is one.
#[derive(Debug)]
pub struct Notifier {
    enabled: bool,
    watchdog: Option<Duration>,
}

impl Notifier {
    /// Reads `$NOTIFY_SOCKET`, `$WATCHDOG_USEC` and `$WATCHDOG_PID` (left set:
    /// systemd ignores the children's messages under `NotifyAccess=main`).
    pub fn from_env() -> Notifier {
        let enabled = std::env::var_os("NOTIFY_SOCKET").is_some();
        let mut usec = 0;
        // A watchdog without a socket to ping is no watchdog.
        let watchdog = (enabled && sd_notify::watchdog_enabled(false, &mut usec) && usec > 0)
            .then(|| Duration::from_micros(usec / 2));
        Notifier { enabled, watchdog }
    }

    pub fn enabled(&self) -> bool {
        self.enabled
    }

    /// Half of the service's `WatchdogSec=`, when systemd asked for pings.
    pub fn watchdog_period(&self) -> Option<Duration> {
        self.watchdog
    }

    /// Sends one message; a failure is logged, never fatal: the stream
    /// matters more than the notifications.
    fn send(&self, states: &[NotifyState]) {
        if !self.enabled {
            return;
        }
        if let Err(e) = sd_notify::notify(false, states) {
            log::warn!("systemd: notify failed: {e}");
        }
    }

    pub fn ready(&self, status: &str) {
        self.send(&[NotifyState::Ready, NotifyState::Status(&one_line(status))]);
    }

    /// `WATCHDOG=1` (when `ping`) and the status line (when given), in one message.
    pub fn heartbeat(&self, ping: bool, status: Option<&str>) {
        let status = status.map(one_line);
        let mut states = Vec::with_capacity(2);
        if ping {
            states.push(NotifyState::Watchdog);
        }
        if let Some(s) = &status {
            states.push(NotifyState::Status(s));
        }
        if !states.is_empty() {
            self.send(&states);
        }
    }

    pub fn stopping(&self, status: &str) {
        self.send(&[
            NotifyState::Stopping,
            NotifyState::Status(&one_line(status)),
        ]);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

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
        assert_eq!(one_line("a\nb\tc"), "a b c");
    }
}
