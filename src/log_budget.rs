//! A budget of log lines per time window, so that a repeating fault (garbage
//! on the camera port, an encoder complaining about every frame) is logged
//! enough to be seen but cannot fill the SD card through journald.
//!
//! Pure: the caller passes the time.

use std::time::{Duration, Instant};

/// Up to `burst` lines per `window`; the rest are counted and summarised.
#[derive(Debug, Clone)]
pub struct LogBudget {
    window: Duration,
    burst: u32,
    window_start: Option<Instant>,
    used: u32,
    suppressed: u64,
}

/// What to do with one line.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Allow {
    /// Log it; first say that `suppressed` lines were dropped before it (if any).
    Log { suppressed: u64 },
    /// Drop it (it is counted).
    Drop,
}

impl LogBudget {
    pub fn new(burst: u32, window: Duration) -> LogBudget {
        LogBudget {
            window,
            burst,
            window_start: None,
            used: 0,
            suppressed: 0,
        }
    }

    /// Asks to log one line at `now`.
    pub fn allow(&mut self, now: Instant) -> Allow {
        let fresh = self
            .window_start
            .map_or(true, |s| now.saturating_duration_since(s) >= self.window);
        if fresh {
            self.window_start = Some(now);
            self.used = 0;
        }
        if self.used < self.burst {
            self.used += 1;
            return Allow::Log {
                suppressed: std::mem::take(&mut self.suppressed),
            };
        }
        self.suppressed += 1;
        Allow::Drop
    }

    /// Lines dropped since the last logged one, once the window they were
    /// dropped in is over (for a summary when no new line comes); resets the count.
    pub fn take_summary(&mut self, now: Instant) -> Option<u64> {
        let over = self
            .window_start
            .is_some_and(|s| now.saturating_duration_since(s) >= self.window);
        (over && self.suppressed > 0).then(|| std::mem::take(&mut self.suppressed))
    }

    /// When the current window ends (a summary may be due then).
    pub fn window_end(&self) -> Option<Instant> {
        self.window_start.map(|s| s + self.window)
    }

    pub fn suppressed(&self) -> u64 {
        self.suppressed
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_burst_is_logged_then_lines_are_counted_until_the_window_ends() {
        let t0 = Instant::now();
        let s = |x: f64| t0 + Duration::from_secs_f64(x);
        let mut b = LogBudget::new(3, Duration::from_secs(60));
        let first: Vec<Allow> = (0..5).map(|i| b.allow(s(f64::from(i)))).collect();
        assert_eq!(
            first,
            vec![
                Allow::Log { suppressed: 0 },
                Allow::Log { suppressed: 0 },
                Allow::Log { suppressed: 0 },
                Allow::Drop,
                Allow::Drop
            ]
        );
        assert_eq!(b.take_summary(s(30.0)), None, "the window is not over");
        assert_eq!(b.allow(s(61.0)), Allow::Log { suppressed: 2 });
        assert_eq!(b.suppressed(), 0);
    }

    #[test]
    fn a_summary_comes_when_the_window_ends_without_a_new_line() {
        let t0 = Instant::now();
        let mut b = LogBudget::new(1, Duration::from_secs(10));
        assert_eq!(b.allow(t0), Allow::Log { suppressed: 0 });
        assert_eq!(b.allow(t0), Allow::Drop);
        assert_eq!(b.allow(t0), Allow::Drop);
        assert_eq!(b.window_end(), Some(t0 + Duration::from_secs(10)));
        assert_eq!(b.take_summary(t0 + Duration::from_secs(10)), Some(2));
        assert_eq!(b.take_summary(t0 + Duration::from_secs(11)), None);
        assert_eq!(
            b.allow(t0 + Duration::from_secs(12)),
            Allow::Log { suppressed: 0 }
        );
    }
}
