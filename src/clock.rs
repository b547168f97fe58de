//! Time as the daemon shows and measures it: wall-clock Unix time for
//! people and pages, and seconds since start on the monotonic clock for the
//! controllers (which must not jump when the Pi's clock is set).

use std::time::{Instant, SystemTime, UNIX_EPOCH};

/// Seconds since the Unix epoch (0 if the clock is before it).
pub fn unix_now() -> f64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs_f64())
        .unwrap_or(0.0)
}

/// Milliseconds since the Unix epoch, for the page's graphs.
pub fn unix_ms() -> u64 {
    (unix_now() * 1000.0) as u64
}

/// Monotonic seconds since the daemon started.
#[derive(Debug, Clone, Copy)]
pub struct Clock {
    started: Instant,
}

impl Default for Clock {
    fn default() -> Self {
        Clock {
            started: Instant::now(),
        }
    }
}

impl Clock {
    pub fn now(&self) -> f64 {
        self.started.elapsed().as_secs_f64()
    }
}
