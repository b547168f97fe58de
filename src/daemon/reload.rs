//! What a reload (SIGHUP) does, per component, in one table: which change
//! of the configuration restarts or adjusts which part. Pure.

use crate::config::Config;

/// What a changed setting asks of the running daemon.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Apply {
    /// Re-encode the current rung with the new settings, make-before-break.
    Reencode,
    /// A fresh controller (new thresholds or ladder), keeping an operator's pin.
    NewController,
    /// Stop the pushes and probes and start the new ones.
    RestartOutputs,
    /// Room for more or fewer `/events` streams.
    ResizeEvents,
    /// Only a restart applies it; the key is named in the log.
    NeedsRestart(&'static str),
}

type Changed = fn(&Config, &Config) -> bool;

/// Per component: what change counts, and what it asks for. Everything not
/// listed (server limits and timeouts, viewer lag, stall timeouts of viewers,
/// the control token) is read afresh where it is used.
const TABLE: &[(Changed, Apply)] = &[
    (
        |o, n| o.encoder != n.encoder || o.ladder() != n.ladder(),
        Apply::Reencode,
    ),
    (
        |o, n| o.adapt != n.adapt || o.ladder() != n.ladder(),
        Apply::NewController,
    ),
    (|o, n| o.outputs != n.outputs, Apply::RestartOutputs),
    (
        |o, n| o.server.max_viewers != n.server.max_viewers,
        Apply::ResizeEvents,
    ),
    (
        |o, n| o.source.url != n.source.url,
        Apply::NeedsRestart("source.url"),
    ),
    // The source's gate judges liveness with the stall timeout it started with.
    (
        |o, n| o.source.stall_timeout_s != n.source.stall_timeout_s,
        Apply::NeedsRestart("source.stall_timeout_s"),
    ),
    (|o, n| o.camera != n.camera, Apply::NeedsRestart("[camera]")),
    (
        |o, n| o.server.listen != n.server.listen,
        Apply::NeedsRestart("server.listen"),
    ),
    (
        |o, n| o.adapt.sample_interval_ms != n.adapt.sample_interval_ms,
        Apply::NeedsRestart("adapt.sample_interval_ms"),
    ),
    (
        |o, n| o.log.level != n.log.level,
        Apply::NeedsRestart("log.level"),
    ),
];

/// What going from `old` to `new` asks for, in the table's order.
pub fn changes(old: &Config, new: &Config) -> Vec<Apply> {
    TABLE
        .iter()
        .filter(|(changed, _)| changed(old, new))
        .map(|(_, apply)| *apply)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::{self, LogLevel};
    use std::path::Path;

    fn cfg(text: &str) -> Config {
        config::parse(Path::new("t.toml"), text).unwrap()
    }

    #[test]
    fn nothing_changed_asks_for_nothing() {
        assert!(changes(&cfg(""), &cfg("")).is_empty());
    }

    #[test]
    fn settings_read_where_used_ask_for_nothing() {
        let new = cfg("[server]\nviewer_max_lag_ms = 900\nrequest_timeout_s = 3.0\n");
        assert!(changes(&cfg(""), &new).is_empty());
    }

    #[test]
    fn encoder_and_ladder_changes_reencode_and_renew_the_controller() {
        let new = cfg("[encoder]\npreset = \"fast\"\n");
        assert_eq!(changes(&cfg(""), &new), vec![Apply::Reencode]);
        let new = cfg("[[ladder]]\nwidth = 640\nheight = 360\nfps = 30\nbitrate_kbps = 800\n");
        assert_eq!(
            changes(&cfg(""), &new),
            vec![Apply::Reencode, Apply::NewController]
        );
        let new = cfg("[adapt]\nup_after_s = 20.0\n");
        assert_eq!(changes(&cfg(""), &new), vec![Apply::NewController]);
    }

    #[test]
    fn restart_only_settings_are_named() {
        let old = cfg("");
        let mut new = cfg("[server]\nlisten = \"127.0.0.1:9\"\nmax_viewers = 3\n");
        new.source.url = "udp://127.0.0.1:1".to_string().try_into().unwrap();
        new.log.level = LogLevel::Debug;
        assert_eq!(
            changes(&old, &new),
            vec![
                Apply::ResizeEvents,
                Apply::NeedsRestart("source.url"),
                Apply::NeedsRestart("server.listen"),
                Apply::NeedsRestart("log.level")
            ]
        );
    }

    #[test]
    fn new_outputs_restart_the_outputs() {
        let new = cfg("[[output]]\nurl = \"udp://192.168.4.2:5000\"\n");
        assert_eq!(changes(&cfg(""), &new), vec![Apply::RestartOutputs]);
    }
}
